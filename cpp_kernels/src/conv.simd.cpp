// Depthwise convolution of one channel plane for one SIMD tier.
#include "dense_kernels.hpp"
#include "grimsim/dense.hpp"  // PoolGeometry (plain fields)
#include "grimsim/simd.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

using simd::imax;
using simd::imin;

void copy_stride2(const float* GRIMSIM_RESTRICT src, float* GRIMSIM_RESTRICT dst,
                  std::int64_t n) {
  // A compile-time stride: the compiler de-interleaves with vector permutes, where the
  // run-time stride of the generic copy stays one float at a time. Zen 4 (2026-11-28), one
  // thread: depthwise 3x3 s2 on 96x112x112 890 -> 405 us; im2col 3x224x224 k3 s2 into a
  // reused buffer 118-163 -> 59 us, now at every offset of the buffer against the input.
  for (std::int64_t i = 0; i < n; ++i) dst[i] = src[2 * i];
}

// In place of memcpy: glibc's copy of a short row ran 1.4x slower when source and destination
// rows sat at nearly the same offset in their 4 KiB pages, where a load waits for an older
// store whose address matches in its low 12 bits (4K aliasing). Zen 4, 2026-11-28, im2col of
// 64x56x56 k3 s1 into a reused buffer: memcpy 235 us at most offsets, 320-350 us within about
// 200 bytes of the input's; this copy, which loads each run of vectors before storing it,
// 235-241 us at every offset.
void copy_row(const float* GRIMSIM_RESTRICT src, float* GRIMSIM_RESTRICT dst, std::int64_t n) {
  using simd::vf;
  constexpr std::int64_t L = simd::kLanes;
  if (n < L) {
    if (n > 0) simd::store_partial(dst, simd::load_partial(src, static_cast<int>(n)),
                                   static_cast<int>(n));
    return;
  }
  std::int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    const vf a = simd::load(src + i), b = simd::load(src + i + L),
             c = simd::load(src + i + 2 * L), d = simd::load(src + i + 3 * L);
    simd::store(dst + i, a);
    simd::store(dst + i + L, b);
    simd::store(dst + i + 2 * L, c);
    simd::store(dst + i + 3 * L, d);
  }
  // the 0 .. 4L - 1 floats left: up to three whole vectors from i and one ending at n
  // (n >= L, so it starts inside the row), all loaded before any is stored
  const std::int64_t rest = n - i;
  if (rest == 0) return;
  const vf last = simd::load(src + n - L);
  if (rest > 3 * L) {
    const vf a = simd::load(src + i), b = simd::load(src + i + L), c = simd::load(src + i + 2 * L);
    simd::store(dst + i, a);
    simd::store(dst + i + L, b);
    simd::store(dst + i + 2 * L, c);
  } else if (rest > 2 * L) {
    const vf a = simd::load(src + i), b = simd::load(src + i + L);
    simd::store(dst + i, a);
    simd::store(dst + i + L, b);
  } else if (rest > L) {
    const vf a = simd::load(src + i);
    simd::store(dst + i, a);
  }
  simd::store(dst + n - L, last);
}

namespace {
using simd::kLanes;
using simd::vf;

// Copies the plane into the job's phase planes: phase q, row r, column x holds padded column
// stride_w * x + q of padded row r (input row r - pad_h, column stride_w * x + q - pad_w).
// Only the input is written: the zeros around it are the same for every channel and already
// in place (depthwise_conv2d writes them once per run of channels).
void fill_phases(const DepthwiseJob& job, const float* in, float* scratch) {
  const std::int64_t W = job.width, sw = job.stride_w, cols = job.phase_cols;
  for (std::int64_t q = 0; q < sw; ++q) {
    // the columns x of this phase that read inside the input: 0 <= sw * x + q - pad_w < W
    const std::int64_t first = q >= job.pad_w ? 0 : (job.pad_w - q + sw - 1) / sw;
    const std::int64_t last = W - 1 + job.pad_w - q;  // largest sw * x with a valid column
    const std::int64_t end = last < 0 ? first : imax(first, imin(cols, last / sw + 1));
    for (std::int64_t r = 0; r < job.phase_rows; ++r) {
      float* dst = scratch + (q * job.phase_rows + r) * cols;
      const std::int64_t iy = r - job.pad_h;
      if (iy < 0 || iy >= job.height || first >= end) continue;
      const float* src = in + iy * W + (sw * first + q - job.pad_w);
      // vector copies: these rows are short (7-112 floats), where a memcpy call costs more
      // than the copy
      if (sw == 1) {
        copy_row(src, dst + first, end - first);
      } else if (sw == 2) {
        copy_stride2(src, dst + first, end - first);
      } else {
        for (std::int64_t x = first; x < end; ++x) dst[x] = src[(x - first) * sw];
      }
    }
  }
}

// RB output rows x VB vectors: every tap is one broadcast weight and RB * VB contiguous
// loads into RB * VB independent accumulators (enough chains to cover the FMA latency),
// stored once; lanes past the output width are computed on the zero padding and dropped.
template <int RB, int VB>
void dw_block(const DepthwiseJob& job, const float* scratch, const float* kernel, float bias,
              float* out, std::int64_t oy, std::int64_t ox) {
  const std::int64_t taps = job.kernel_h * job.kernel_w;
  const std::int64_t row_step = job.stride_h * job.phase_cols;
  const float* base = scratch + oy * row_step + ox;
  vf acc[RB][VB];
#pragma GCC unroll 8
  for (int i = 0; i < RB; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < VB; ++v) acc[i][v] = simd::set1(bias);
  for (std::int64_t t = 0; t < taps; ++t) {
    const vf w = simd::set1(kernel[t]);
    const float* src = base + job.tap_offset[t];
#pragma GCC unroll 8
    for (int i = 0; i < RB; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < VB; ++v)
        acc[i][v] = simd::fma(w, simd::load(src + i * row_step + v * kLanes), acc[i][v]);
  }
  // A vector past the row's end is stored whole when it stays inside the plane: its extra
  // lanes land on the start of the next rows, which are stored later (blocks run right to
  // left, rows top to bottom) and overwrite them; only the plane's last vectors are cut.
  const std::int64_t Wo = job.out_w, plane_end = job.out_h * Wo;
#pragma GCC unroll 8
  for (int i = 0; i < RB; ++i) {
    const std::int64_t row = (oy + i) * Wo;
#pragma GCC unroll 8
    for (int v = 0; v < VB; ++v) {
      const std::int64_t x0 = ox + v * kLanes;
      if (x0 >= Wo) continue;
      if (row + x0 + kLanes <= plane_end)
        simd::store(out + row + x0, acc[i][v]);
      else
        simd::store_partial(out + row + x0, acc[i][v], static_cast<int>(Wo - x0));
    }
  }
}

// One group of RB output rows, its vectors in blocks of at most 8 / RB, run right to left
// (see dw_block's stores).
template <int RB>
void dw_rows(const DepthwiseJob& job, const float* scratch, const float* kernel, float bias,
             float* out, std::int64_t oy) {
  const std::int64_t nvec = (job.out_w + kLanes - 1) / kLanes;
  const std::int64_t n8 = RB == 1 ? nvec / 8 : 0;
  const std::int64_t n4 = RB <= 2 ? (nvec - 8 * n8) / 4 : 0;
  const std::int64_t n2 = RB <= 4 ? (nvec - 8 * n8 - 4 * n4) / 2 : 0;
  const std::int64_t end8 = 8 * n8, end4 = end8 + 4 * n4, end2 = end4 + 2 * n2;
  for (std::int64_t v = nvec - 1; v >= end2; --v)
    dw_block<RB, 1>(job, scratch, kernel, bias, out, oy, v * kLanes);
  if constexpr (RB <= 4) {
    for (std::int64_t v = end2 - 2; v >= end4; v -= 2)
      dw_block<RB, 2>(job, scratch, kernel, bias, out, oy, v * kLanes);
  }
  if constexpr (RB <= 2) {
    for (std::int64_t v = end4 - 4; v >= end8; v -= 4)
      dw_block<RB, 4>(job, scratch, kernel, bias, out, oy, v * kLanes);
  }
  if constexpr (RB == 1) {
    for (std::int64_t v = end8 - 8; v >= 0; v -= 8)
      dw_block<1, 8>(job, scratch, kernel, bias, out, oy, v * kLanes);
  }
}
}  // namespace

// The plane's padded phases first (one pass over it), then blocks of at most 8 accumulators:
// a narrow plane (7 to 28 columns in mobile networks) takes several output rows per block,
// so its taps' FMA chains stay independent too.
void depthwise_plane(const DepthwiseJob& job, const float* in, const float* kernel, float bias,
                     float* out, float* scratch) {
  fill_phases(job, in, scratch);
  const std::int64_t nvec = (job.out_w + kLanes - 1) / kLanes;
  std::int64_t oy = 0;
  if (nvec < 2)
    for (; oy + 8 <= job.out_h; oy += 8) dw_rows<8>(job, scratch, kernel, bias, out, oy);
  if (nvec < 4)
    for (; oy + 4 <= job.out_h; oy += 4) dw_rows<4>(job, scratch, kernel, bias, out, oy);
  if (nvec < 8)
    for (; oy + 2 <= job.out_h; oy += 2) dw_rows<2>(job, scratch, kernel, bias, out, oy);
  for (; oy < job.out_h; ++oy) dw_rows<1>(job, scratch, kernel, bias, out, oy);
}

namespace {
// max that propagates NaN from either side (as numpy's maximum and PyTorch's max pooling);
// two selects the compiler turns into vector max + blend (no branch).
struct NanMax {
  float operator()(float a, float b) const {
    const float m = a > b ? a : b;  // b when either is NaN
    return a != a ? a : m;
  }
#if defined(__GNUC__) || defined(__clang__)
  vf operator()(vf a, vf b) const {
    const vf m = a > b ? a : b;
    return a != a ? a : m;
  }
#endif
};
struct Plus {
  float operator()(float a, float b) const { return a + b; }
#if defined(__GNUC__) || defined(__clang__)
  vf operator()(vf a, vf b) const { return a + b; }
#endif
};

// orow[ox] = reduce of row[ox * SW .. ox * SW + KW) times scale.
template <int KW, int SW, class Reduce>
GRIMSIM_INLINE void windows(const float* GRIMSIM_RESTRICT row, float* GRIMSIM_RESTRICT orow,
                            std::int64_t out_w, Reduce reduce, float scale) {
  for (std::int64_t ox = 0; ox < out_w; ++ox) {
    const float* w = row + ox * SW;
    float m = w[0];
#pragma GCC unroll 4
    for (int j = 1; j < KW; ++j) m = reduce(m, w[j]);
    orow[ox] = m * scale;
  }
}

// p[i] = reduce of p[i + j * step], j < taps, for i < n, in place (the usual tap counts
// unrolled so the loop vectorises).
template <int T, class Reduce>
GRIMSIM_INLINE void reduce_taps_fixed(float* p, std::int64_t n, std::int64_t step,
                                      Reduce reduce) {
  std::int64_t i = 0;
#if defined(__GNUC__) || defined(__clang__)
  // Explicit vectors: the compiler cannot prove the in-place update safe for a run-time
  // step. A vector's taps are all loaded before it is stored, and later vectors read only
  // positions not yet stored.
  for (; i + kLanes <= n; i += kLanes) {
    vf m = simd::load(p + i);
#pragma GCC unroll 8
    for (int j = 1; j < T; ++j) m = reduce(m, simd::load(p + i + j * step));
    simd::store(p + i, m);
  }
#endif
  for (; i < n; ++i) {
    float m = p[i];
#pragma GCC unroll 8
    for (int j = 1; j < T; ++j) m = reduce(m, p[i + j * step]);
    p[i] = m;
  }
}

template <class Reduce>
void reduce_taps(float* p, std::int64_t n, std::int64_t step, std::int64_t taps,
                 Reduce reduce) {
  switch (taps) {
    case 1: return;
    case 2: return reduce_taps_fixed<2>(p, n, step, reduce);
    case 3: return reduce_taps_fixed<3>(p, n, step, reduce);
    case 5: return reduce_taps_fixed<5>(p, n, step, reduce);
    default: break;
  }
  for (std::int64_t i = 0; i < n; ++i) {
    float m = p[i];
    for (std::int64_t j = 1; j < taps; ++j) m = reduce(m, p[i + j * step]);
    p[i] = m;
  }
}

// Stride 1 both ways: the plane, copied into the scratch with `fill` margins, is reduced in
// place as long contiguous runs (first over kernel_h rows, then over kernel_w columns), so a
// 14x14 plane costs no per-row loop set-up; the output rows are read out of the result.
template <class Reduce>
void pool_plane_stride1(const PoolGeometry& g, Reduce reduce, float fill, float scale,
                        const float* in, float* out, float* buf) {
  const std::int64_t W = g.width, H = g.height, kh = g.kernel_h, kw = g.kernel_w;
  const std::int64_t wp = pool_padded_width(g), hp = pool_padded_height(g);
  float* GRIMSIM_RESTRICT p = buf;
  for (std::int64_t y = 0; y < hp; ++y) {
    float* GRIMSIM_RESTRICT row = p + y * wp;
    const std::int64_t iy = y - g.pad_top;
    if (iy < 0 || iy >= H) {
      for (std::int64_t x = 0; x < wp; ++x) row[x] = fill;
      continue;
    }
    for (std::int64_t x = 0; x < g.pad_left; ++x) row[x] = fill;
    const float* GRIMSIM_RESTRICT src = in + iy * W;
    for (std::int64_t x = 0; x < W; ++x) row[g.pad_left + x] = src[x];
    for (std::int64_t x = g.pad_left + W; x < wp; ++x) row[x] = fill;
  }
  // In place and front to back, each element reduced over all its taps in one pass (it
  // reads only elements after it, not yet overwritten).
  const std::int64_t n = g.out_h * wp;
  reduce_taps(p, n, wp, kh, reduce);
  reduce_taps(p, n - kw + 1, 1, kw, reduce);
  for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
    const float* GRIMSIM_RESTRICT src = p + oy * wp;
    float* GRIMSIM_RESTRICT dst = out + oy * g.out_w;
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) dst[ox] = src[ox] * scale;
  }
}

#if defined(__GNUC__) || defined(__clang__)
// The even and odd lanes of the 2 * kLanes floats a, b (GCC >= 12 and Clang have
// __builtin_shufflevector).
GRIMSIM_INLINE void deinterleave(vf a, vf b, vf& even, vf& odd) {
#if GRIMSIM_SIMD_BYTES == 16
  even = __builtin_shufflevector(a, b, 0, 2, 4, 6);
  odd = __builtin_shufflevector(a, b, 1, 3, 5, 7);
#elif GRIMSIM_SIMD_BYTES == 32
  even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
  odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
#else
  even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
#endif
}
#endif

// Stride-2 windows of 2 or 3 columns, kLanes outputs at a time from deinterleaved loads
// (the scalar loop ran ~3 cycles per output). A window of 3 reads one float past the last
// window's start pair; rowbuf has room for it (the window row follows the padded row).
template <int KW, class Reduce>
GRIMSIM_INLINE void windows_stride2(const float* GRIMSIM_RESTRICT row,
                                    float* GRIMSIM_RESTRICT orow, std::int64_t out_w,
                                    Reduce reduce, float scale) {
  static_assert(KW == 2 || KW == 3, "windows of 2 or 3 columns");
  std::int64_t ox = 0;
#if defined(__GNUC__) || defined(__clang__)
  const vf vs = simd::set1(scale);
  for (; ox + kLanes <= out_w; ox += kLanes) {
    const float* w = row + 2 * ox;
    vf even, odd;
    deinterleave(simd::load(w), simd::load(w + kLanes), even, odd);
    vf m = reduce(even, odd);
    if constexpr (KW == 3) {
      vf next, unused;
      deinterleave(simd::load(w + 2), simd::load(w + 2 + kLanes), next, unused);
      m = reduce(m, next);
    }
    simd::store(orow + ox, m * vs);
  }
#endif
  windows<KW, 2>(row + 2 * ox, orow + ox, out_w - ox, reduce, scale);
}

// One window over the whole plane (ResNet's and GoogLeNet's final 7x7 pools): a reduction
// of its h * w contiguous values.
template <class Reduce>
GRIMSIM_INLINE float reduce_plane(const float* GRIMSIM_RESTRICT in, std::int64_t n,
                                  Reduce reduce) {
  std::int64_t i = 0;
  float m = in[0];
#if defined(__GNUC__) || defined(__clang__)
  if (n >= kLanes) {
    vf acc = simd::load(in);
    for (i = kLanes; i + kLanes <= n; i += kLanes) acc = reduce(acc, simd::load(in + i));
    float lanes[kLanes];
    simd::store(lanes, acc);
    m = lanes[0];
    for (int l = 1; l < kLanes; ++l) m = reduce(m, lanes[l]);
  } else {
    i = 1;
  }
#else
  i = 1;
#endif
  for (; i < n; ++i) m = reduce(m, in[i]);
  return m;
}

// One plane: a single window over all of it is a plain reduction, stride 1 both ways goes
// through the whole padded plane (pool_plane_stride1). Otherwise separable and branch-free:
// per output row, the window's input rows are reduced into one row (rows outside the input
// skipped), laid out with kernel-sized `fill` margins (-inf for max, 0 for a sum) so every
// window reads kernel_w values; the windows are then reduced along the row (vector code for
// the usual 2- and 3-column windows, else every column start with kernel_w - 1 shifted
// passes read out every stride_w), times `scale`.
template <class Reduce>
void pool_plane_with(const PoolGeometry& g, Reduce reduce, float fill, float scale,
                     const float* in, float* out, float* rowbuf) {
  if (g.out_h == 1 && g.out_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
      g.kernel_h >= g.height && g.kernel_w >= g.width) {
    out[0] = reduce_plane(in, g.height * g.width, reduce) * scale;
    return;
  }
  if (g.stride_h == 1 && g.stride_w == 1) {
    pool_plane_stride1(g, reduce, fill, scale, in, out, rowbuf);
    return;
  }
  const std::int64_t W = g.width, kw = g.kernel_w, sw = g.stride_w, pl = g.pad_left;
  const std::int64_t span = pool_span(g), len = pool_padded_width(g);
  float* GRIMSIM_RESTRICT row = rowbuf;         // len floats
  float* GRIMSIM_RESTRICT win = rowbuf + len;   // span - kw + 1 floats
  for (std::int64_t x = 0; x < pl; ++x) row[x] = fill;
  for (std::int64_t x = pl + W; x < len; ++x) row[x] = fill;
  float* GRIMSIM_RESTRICT mid = row + pl;
  const std::int64_t starts = span - kw + 1;
  for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
    const std::int64_t y0 = oy * g.stride_h - g.pad_top;
    const std::int64_t r0 = imax(y0, 0), r1 = imin(y0 + g.kernel_h, g.height);
    const float* first = in + r0 * W;
    for (std::int64_t x = 0; x < W; ++x) mid[x] = first[x];
    for (std::int64_t r = r0 + 1; r < r1; ++r) {
      const float* GRIMSIM_RESTRICT src = in + r * W;
      for (std::int64_t x = 0; x < W; ++x) mid[x] = reduce(mid[x], src[x]);
    }
    float* orow = out + oy * g.out_w;
    // The usual windows (3x3 and 2x2, stride 2; 3x3 stride 1) straight from the row with
    // compile-time strides the compiler vectorises; others through all window starts.
    if (kw == 3 && sw == 2) {
      windows_stride2<3>(row, orow, g.out_w, reduce, scale);
    } else if (kw == 2 && sw == 2) {
      windows_stride2<2>(row, orow, g.out_w, reduce, scale);
    } else if (kw == 3 && sw == 1) {
      windows<3, 1>(row, orow, g.out_w, reduce, scale);
    } else {
      for (std::int64_t x = 0; x < starts; ++x) win[x] = row[x];
      for (std::int64_t j = 1; j < kw; ++j) {
        const float* GRIMSIM_RESTRICT shifted = row + j;
        for (std::int64_t x = 0; x < starts; ++x) win[x] = reduce(win[x], shifted[x]);
      }
      for (std::int64_t ox = 0; ox < g.out_w; ++ox) orow[ox] = win[ox * sw] * scale;
    }
  }
}
}  // namespace

void pool_planes(const PoolGeometry& g, bool is_max, const float* in, float* out,
                 std::int64_t planes, float* rowbuf) {
  const std::int64_t plane = g.height * g.width, oplane = g.out_h * g.out_w;
  const float avg = 1.0f / static_cast<float>(g.kernel_h * g.kernel_w);
  for (std::int64_t p = 0; p < planes; ++p) {
    if (is_max)
      pool_plane_with(g, NanMax{}, -__builtin_inff(), 1.0f, in + p * plane, out + p * oplane,
                      rowbuf);
    else
      pool_plane_with(g, Plus{}, 0.0f, avg, in + p * plane, out + p * oplane, rowbuf);
  }
}

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
