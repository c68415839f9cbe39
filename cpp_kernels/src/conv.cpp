// Convolutions: geometry checks, im2col, conv through the GEMM, direct depthwise, and the
// naive reference used by the tests.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "dense_kernels.hpp"
#include "grimsim/dense.hpp"
#include "grimsim/parallel.hpp"

namespace grimsim {

void check_conv_geometry(const ConvGeometry& g) {
  check(g.channels >= 1 && g.height >= 1 && g.width >= 1,
        "conv input must have C, H, W >= 1, got (" + std::to_string(g.channels) + ", " +
            std::to_string(g.height) + ", " + std::to_string(g.width) + ")");
  check(g.kernel_h >= 1 && g.kernel_w >= 1, "conv kernel must be >= 1x1, got " +
                                                std::to_string(g.kernel_h) + "x" +
                                                std::to_string(g.kernel_w));
  check(g.stride_h >= 1 && g.stride_w >= 1, "conv stride must be >= 1");
  check(g.dilation_h >= 1 && g.dilation_w >= 1, "conv dilation must be >= 1");
  check(g.pad_h >= 0 && g.pad_w >= 0, "conv padding must be >= 0");
  // Sizes far beyond any network; keeps the int64 index arithmetic far from overflow.
  constexpr std::int64_t kMax = std::int64_t{1} << 24;
  check(g.channels <= kMax && g.height <= kMax && g.width <= kMax && g.kernel_h <= kMax &&
            g.kernel_w <= kMax && g.stride_h <= kMax && g.stride_w <= kMax &&
            g.pad_h <= kMax && g.pad_w <= kMax && g.dilation_h <= kMax && g.dilation_w <= kMax,
        "conv geometry values must be <= 2^24");
  const std::int64_t span_h = g.dilation_h * (g.kernel_h - 1) + 1;
  const std::int64_t span_w = g.dilation_w * (g.kernel_w - 1) + 1;
  check(g.height + 2 * g.pad_h >= span_h && g.width + 2 * g.pad_w >= span_w,
        "conv kernel (span " + std::to_string(span_h) + "x" + std::to_string(span_w) +
            ") is larger than the padded input (" + std::to_string(g.height + 2 * g.pad_h) +
            "x" + std::to_string(g.width + 2 * g.pad_w) + ")");
}

namespace {

// Output rows up to this wide (twice as wide when strided, where the row copy below gathers
// one float at a time too) go through im2col_narrow: at stride 1, rows of 14 floats copied
// by memcpy ran 1.7x faster than its gather, rows of 7 1.2x slower (Sapphire Rapids VM).
constexpr std::int64_t kGatherMaxWidth = 8;
// ... in tasks of whole channels of at least this many output values: a task per output row
// (an atomic hand-out each) made a late layer's im2col slower on two threads than on one.
constexpr std::int64_t kMinTaskFloats = 1 << 14;

// im2col of a narrow output: a table of where each of a channel's taps x N values comes from
// (or padding), shared by all channels, then one branch-free gather per value. The row by row
// copy spends a mispredicted branch or a call per row of 2-16 floats. On the Sapphire Rapids
// VM, 2026-11-27, against that copy: 198x4x4 k3 s2 33 -> 8 us on one thread (110 -> 8 us on
// two), 512x7x7 k3 s1 219 -> 186 us (450 -> 100 us), 256x14x14 k3 s2 103 -> 87 us.
void im2col_narrow(const float* input, const ConvGeometry& g, float* x, int threads) {
  const std::int64_t Ho = g.out_h(), Wo = g.out_w();
  const std::int64_t per_channel = g.kernel_h * g.kernel_w * Ho * Wo;
  std::vector<std::int32_t> from(static_cast<std::size_t>(per_channel));
  std::int32_t* f = from.data();
  for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
    for (std::int64_t kx = 0; kx < g.kernel_w; ++kx)
      for (std::int64_t oy = 0; oy < Ho; ++oy) {
        const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
        for (std::int64_t ox = 0; ox < Wo; ++ox) {
          const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
          const bool inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
          *f++ = inside ? static_cast<std::int32_t>(iy * g.width + ix) : -1;
        }
      }
  const std::int64_t block = (kMinTaskFloats + per_channel - 1) / per_channel;
  parallel_for_blocks(g.channels, block, threads,
                      [&](std::int64_t c0, std::int64_t c1, int /*thread*/) {
    const std::int32_t* GRIMSIM_RESTRICT tab = from.data();
    for (std::int64_t c = c0; c < c1; ++c) {
      const float* GRIMSIM_RESTRICT plane = input + c * g.height * g.width;
      float* GRIMSIM_RESTRICT dst = x + c * per_channel;
      for (std::int64_t i = 0; i < per_channel; ++i) {
        const std::int32_t j = tab[i];
        const float v = plane[j < 0 ? 0 : j];  // always a valid load; padding reads 0
        dst[i] = j < 0 ? 0.0f : v;
      }
    }
  });
}

}  // namespace

void im2col(const float* input, const ConvGeometry& g, float* x, int threads) {
  check_conv_geometry(g);
  check_threads(threads);
  check(input != nullptr && x != nullptr, "im2col: null input or output");
  const std::int64_t Ho = g.out_h(), Wo = g.out_w(), N = Ho * Wo;
  if ((Wo <= kGatherMaxWidth || (g.stride_w != 1 && Wo <= 2 * kGatherMaxWidth)) &&
      g.height * g.width < (std::int64_t{1} << 31)) {
    im2col_narrow(input, g, x, threads);
    return;
  }
  const std::int64_t rows = g.channels * g.kernel_h * g.kernel_w;
  const SimdLevel level = simd_runtime_level();
  // Tasks of whole runs of rows (kMinTaskFloats values or more), as in im2col_narrow: with a
  // task per row, two threads wrote interleaved rows and shared a cache line at every row
  // end not on a line boundary. Zen 4, 2026-11-28, 3x3 s1, 2 threads against 1: 192x13x13
  // 0.64-0.69 -> 1.91x, 256x14x14 0.77-0.92 -> 1.93x, 128x28x28 1.06-1.11 -> 1.92x; the
  // conv through the GEMM on 192x13x13 -> 256 1.54 -> 1.80x.
  parallel_for_blocks(rows, (kMinTaskFloats + N - 1) / N, threads,
                      [&](std::int64_t row0, std::int64_t row1, int /*thread*/) {
    for (std::int64_t row = row0; row < row1; ++row) {
      const std::int64_t c = row / (g.kernel_h * g.kernel_w);
      const std::int64_t ky = (row / g.kernel_w) % g.kernel_h, kx = row % g.kernel_w;
      const float* plane = input + c * g.height * g.width;
      float* dst = x + row * N;
      const std::int64_t off = kx * g.dilation_w - g.pad_w;  // ix = ox * sw + off
      // Output columns [lo, hi) read inside the row; the rest read padding.
      const std::int64_t sw = g.stride_w;
      const std::int64_t lo = std::min(Wo, off >= 0 ? 0 : (-off + sw - 1) / sw);
      const std::int64_t hi =
          g.width - 1 - off < 0 ? lo : std::max(lo, std::min(Wo, (g.width - 1 - off) / sw + 1));
      for (std::int64_t oy = 0; oy < Ho; ++oy) {
        float* d = dst + oy * Wo;
        const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
        if (iy < 0 || iy >= g.height) {
          std::fill(d, d + Wo, 0.0f);
          continue;
        }
        const float* s = plane + iy * g.width + off;
        std::fill(d, d + lo, 0.0f);
        if (sw == 1)
          GRIMSIM_DISPATCH_AT(level, copy_row, s + lo, d + lo, hi - lo);
        else if (sw == 2)
          GRIMSIM_DISPATCH_AT(level, copy_stride2, s + 2 * lo, d + lo, hi - lo);
        else
          for (std::int64_t ox = lo; ox < hi; ++ox) d[ox] = s[ox * sw];
        std::fill(d + hi, d + Wo, 0.0f);
      }
    }
  });
}

void conv2d_gemm(const float* input, const ConvGeometry& g, const float* w2d,
                 std::int64_t out_channels, std::int64_t groups, const float* bias,
                 float* output, int threads) {
  check_conv_geometry(g);
  check_threads(threads);
  check(groups >= 1, "conv groups must be >= 1, got " + std::to_string(groups));
  check(out_channels >= 1, "conv out_channels must be >= 1");
  check(g.channels % groups == 0, "conv in channels (" + std::to_string(g.channels) +
                                      ") not divisible by groups (" + std::to_string(groups) + ")");
  check(out_channels % groups == 0, "conv out channels (" + std::to_string(out_channels) +
                                        ") not divisible by groups (" +
                                        std::to_string(groups) + ")");
  check(input != nullptr && w2d != nullptr && output != nullptr, "conv2d_gemm: null pointer");
  const std::int64_t N = g.out_h() * g.out_w();
  const std::int64_t cg = g.channels / groups, mg = out_channels / groups;
  const std::int64_t kg = cg * g.kernel_h * g.kernel_w;
  const bool pointwise = g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 &&
                         g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
  AlignedArray<float> cols;
  const float* x = input;  // a 1x1 stride-1 conv is already a GEMM on the input
  if (!pointwise) {
    cols = AlignedArray<float>(static_cast<std::size_t>(g.channels * g.kernel_h * g.kernel_w * N));
    im2col(input, g, cols.data(), threads);
    x = cols.data();
  }
  for (std::int64_t grp = 0; grp < groups; ++grp)
    gemm_rowmajor(w2d + grp * mg * kg, x + grp * kg * N, output + grp * mg * N, mg, kg, N,
                  bias != nullptr ? bias + grp * mg : nullptr, threads);
}

namespace {
constexpr std::int64_t kPageFloats = 4096 / sizeof(float);

// The first page boundary at or after p (p has a page of slack for it).
float* page_start(float* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  return reinterpret_cast<float*>((a + 4095) & ~std::uintptr_t{4095});
}

// Which of two copies of the phase planes, starting 0 and half a page into their pages, a
// plane of input at `src` is copied into: the one whose start is further from src's modulo
// 4 KiB (at least a quarter of a page apart). Loads whose address matches an older store's in
// its low 12 bits wait for it (4K aliasing): the stride-2 phase copy of a plane ran 1.4x
// slower for some placements of the input than for others (Zen 4, 2026-11-28, 96x112x112
// 3x3 s2: 374-541 us over input offsets 0-448 bytes). Every plane starts at its own page
// offset, so the copy is picked per plane.
int far_placement(const float* src) {
  const auto offset = reinterpret_cast<std::uintptr_t>(src) & 4095;
  return offset >= 1024 && offset < 3072 ? 0 : 1;
}
}  // namespace

void depthwise_conv2d(const float* input, const ConvGeometry& g, const float* weight,
                      const float* bias, float* output, int threads) {
  check_conv_geometry(g);
  check_threads(threads);
  check(input != nullptr && weight != nullptr && output != nullptr,
        "depthwise_conv2d: null pointer");
  DepthwiseJob job;
  job.height = g.height;
  job.width = g.width;
  job.out_h = g.out_h();
  job.out_w = g.out_w();
  job.kernel_h = g.kernel_h;
  job.kernel_w = g.kernel_w;
  job.stride_h = g.stride_h;
  job.stride_w = g.stride_w;
  job.pad_h = g.pad_h;
  job.pad_w = g.pad_w;
  job.dilation_h = g.dilation_h;
  job.dilation_w = g.dilation_w;
  // Phase planes (see DepthwiseJob): rows cover every padded row a tap reads; columns
  // cover the output width rounded up to 16 lanes (the widest SIMD tier, so whole vectors
  // never read past the plane) plus the taps' reach.
  constexpr std::int64_t kMaxLanes = 16;
  job.phase_rows = (job.out_h - 1) * job.stride_h + (g.kernel_h - 1) * g.dilation_h + 1;
  const std::int64_t out_w_padded = (job.out_w + kMaxLanes - 1) / kMaxLanes * kMaxLanes;
  job.phase_cols = out_w_padded + (g.kernel_w - 1) * g.dilation_w / g.stride_w + 1;
  const std::int64_t taps = g.kernel_h * g.kernel_w;
  std::vector<std::int64_t> tap_offset(static_cast<std::size_t>(taps));
  for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
    for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
      const std::int64_t col = kx * g.dilation_w;
      tap_offset[static_cast<std::size_t>(ky * g.kernel_w + kx)] =
          ((col % g.stride_w) * job.phase_rows + ky * g.dilation_h) * job.phase_cols +
          col / g.stride_w;
    }
  job.tap_offset = tap_offset.data();
  // Each thread's phase planes in two copies (far_placement): the first on a page boundary,
  // the second half a page into its page. Their zero padding is the same for every channel,
  // so it is written once per run of channels and each channel copies in only its input: on
  // 14x14 planes at stride 2 the zeros were most of a channel's stores.
  const std::int64_t planes = g.stride_w * job.phase_rows * job.phase_cols;
  const std::int64_t copy_stride = (planes + kPageFloats - 1) / kPageFloats * kPageFloats;
  const std::int64_t scratch = 2 * copy_stride + kPageFloats;  // a whole number of pages
  const int team = static_cast<int>(std::min<std::int64_t>(threads, g.channels));
  AlignedArray<float> buf(static_cast<std::size_t>(team * scratch + kPageFloats));
  float* const pages = page_start(buf.data());
  const std::int64_t plane = g.height * g.width, oplane = job.out_h * job.out_w;
  const SimdLevel level = simd_runtime_level();
  // About 4 runs of whole channels a thread: with a task per channel, two threads wrote
  // neighbouring output planes (Zen 4, 2026-11-28, 3x3, 2 threads against 1, two rounds:
  // 576x14x14 1.43-1.58 -> 1.91-1.93x, 960x7x7 1.12-1.29 -> 1.63-1.65x, 384x28x28 1.60-1.67
  // -> 1.90-2.07x; 112x112 and 56x56 maps unchanged).
  parallel_for_blocks(g.channels, g.channels / (4 * team), team,
                      [&](std::int64_t c0, std::int64_t c1, int thread) {
    float* own = pages + static_cast<std::int64_t>(thread) * scratch;
    float* copies[2] = {own, own + copy_stride + kPageFloats / 2};
    for (float* copy : copies) std::fill(copy, copy + planes, 0.0f);
    for (std::int64_t c = c0; c < c1; ++c) {
      const float* in = input + c * plane;
      GRIMSIM_DISPATCH_AT(level, depthwise_plane, job, in, weight + c * taps,
                          bias != nullptr ? bias[c] : 0.0f, output + c * oplane,
                          copies[far_placement(in)]);
    }
  });
}

void check_pool_geometry(const PoolGeometry& g) {
  check(g.channels >= 1 && g.height >= 1 && g.width >= 1,
        "pool input must have C, H, W >= 1, got (" + std::to_string(g.channels) + ", " +
            std::to_string(g.height) + ", " + std::to_string(g.width) + ")");
  check(g.kernel_h >= 1 && g.kernel_w >= 1 && g.stride_h >= 1 && g.stride_w >= 1,
        "pool kernel and stride must be >= 1, got kernel " + std::to_string(g.kernel_h) + "x" +
            std::to_string(g.kernel_w) + ", stride " + std::to_string(g.stride_h) + "x" +
            std::to_string(g.stride_w));
  check(g.out_h >= 1 && g.out_w >= 1, "pool output must be >= 1x1, got " +
                                          std::to_string(g.out_h) + "x" +
                                          std::to_string(g.out_w));
  constexpr std::int64_t kMax = std::int64_t{1} << 24;
  check(g.channels <= kMax && g.height <= kMax && g.width <= kMax && g.kernel_h <= kMax &&
            g.kernel_w <= kMax && g.stride_h <= kMax && g.stride_w <= kMax &&
            g.out_h <= kMax && g.out_w <= kMax,
        "pool geometry values must be <= 2^24");
  // Every window overlaps the input: the first ends inside it, the last starts inside it.
  check(g.pad_top >= 0 && g.pad_left >= 0 && g.pad_top < g.kernel_h && g.pad_left < g.kernel_w,
        "pool padding must be in [0, kernel), got top " + std::to_string(g.pad_top) +
            ", left " + std::to_string(g.pad_left));
  check((g.out_h - 1) * g.stride_h - g.pad_top < g.height &&
            (g.out_w - 1) * g.stride_w - g.pad_left < g.width,
        "pool output " + std::to_string(g.out_h) + "x" + std::to_string(g.out_w) +
            " has windows that start past the input (" + std::to_string(g.height) + "x" +
            std::to_string(g.width) + ")");
}

void pool2d(const float* input, const PoolGeometry& g, bool is_max, float* output,
            int threads) {
  check_pool_geometry(g);
  check_threads(threads);
  check(input != nullptr && output != nullptr, "pool2d: null input or output");
  const std::int64_t plane = g.height * g.width, oplane = g.out_h * g.out_w;
  const std::int64_t per_thread = pool_scratch_floats(g);
  std::vector<float> rows(static_cast<std::size_t>(threads * per_thread));
  const SimdLevel level = simd_runtime_level();
  // Tasks of several planes when they are small (a 7x7 plane is ~100 ns of work, about what
  // handing out a task and dispatching to the SIMD tier costs).
  parallel_for_blocks(g.channels, 4096 / plane, threads,
                      [&](std::int64_t c0, std::int64_t c1, int thread) {
    GRIMSIM_DISPATCH_AT(level, pool_planes, g, is_max, input + c0 * plane, output + c0 * oplane,
                        c1 - c0, rows.data() + static_cast<std::int64_t>(thread) * per_thread);
  });
}

void conv2d_reference(const float* input, const ConvGeometry& g, const float* w,
                      std::int64_t out_channels, std::int64_t groups, const float* bias,
                      float* output) {
  check_conv_geometry(g);
  check(groups >= 1 && g.channels % groups == 0 && out_channels % groups == 0,
        "conv2d_reference: channels not divisible by groups");
  const std::int64_t Ho = g.out_h(), Wo = g.out_w();
  const std::int64_t cg = g.channels / groups, mg = out_channels / groups;
  for (std::int64_t co = 0; co < out_channels; ++co) {
    const std::int64_t grp = co / mg;
    for (std::int64_t oy = 0; oy < Ho; ++oy)
      for (std::int64_t ox = 0; ox < Wo; ++ox) {
        double s = bias != nullptr ? bias[co] : 0.0;
        for (std::int64_t ci = 0; ci < cg; ++ci)
          for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
            const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
            if (iy < 0 || iy >= g.height) continue;
            for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
              const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
              if (ix < 0 || ix >= g.width) continue;
              s += static_cast<double>(
                       w[((co * cg + ci) * g.kernel_h + ky) * g.kernel_w + kx]) *
                   input[((grp * cg + ci) * g.height + iy) * g.width + ix];
            }
          }
        output[(co * Ho + oy) * Wo + ox] = static_cast<float>(s);
      }
  }
}

}  // namespace grimsim
