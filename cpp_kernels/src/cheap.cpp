// The cheap ops (grimsim/cheap.hpp): argument checks, the data-movement ops (permute,
// resize) and the split over threads; the arithmetic inner loops are per SIMD tier in
// cheap.simd.cpp.
#include "grimsim/cheap.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cheap_kernels.hpp"
#include "grimsim/kernels.hpp"
#include "grimsim/parallel.hpp"

namespace grimsim {

namespace {

using i64 = std::int64_t;

// Element counts above this are refused: far beyond any activation, and every product of
// sizes below stays far from overflowing 64 bits.
constexpr i64 kMaxElements = i64{1} << 46;

// Elements per task when a flat range is split over threads (~64 KiB of floats: long enough
// that handing out a task costs nothing, short enough to balance two cores).
constexpr i64 kChunk = 16384;

i64 checked_product(const i64* sizes, int n, const char* what) {
  i64 total = 1;
  for (int i = 0; i < n; ++i) {
    check(sizes[i] >= 1, std::string(what) + ": every size must be >= 1, got " +
                             std::to_string(sizes[i]) + " at axis " + std::to_string(i));
    check(sizes[i] <= kMaxElements && total <= kMaxElements / sizes[i],
          std::string(what) + ": more than 2^46 elements");
    total *= sizes[i];
  }
  return total;
}

void check_count(i64 n, const char* what) {
  check(n >= 1 && n <= kMaxElements,
        std::string(what) + ": element count must be in [1, 2^46], got " + std::to_string(n));
}

// ------------------------------------------------------------------------- permute -----

// The same permute with axes of size 1 dropped and runs of input axes that stay adjacent
// and in order in the output merged: a channel shuffle (1, 2, C/2, H, W) -> (1, C/2, 2, H, W)
// becomes (2, C/2, H*W) with perm (1, 0, 2).
struct Perm {
  int rank = 0;
  i64 shape[kMaxPermuteRank] = {};  // input sizes
  int perm[kMaxPermuteRank] = {};   // output axis i is input axis perm[i]
};

Perm canonical(const i64* shape, const i64* perm, int rank) {
  int kept_index[kMaxPermuteRank];
  int kept = 0;
  for (int a = 0; a < rank; ++a) kept_index[a] = shape[a] > 1 ? kept++ : -1;
  int p[kMaxPermuteRank];
  i64 s[kMaxPermuteRank];
  int q = 0;
  for (int a = 0; a < rank; ++a)
    if (kept_index[a] >= 0) s[kept_index[a]] = shape[a];
  for (int i = 0; i < rank; ++i)
    if (kept_index[perm[i]] >= 0) p[q++] = kept_index[perm[i]];
  // Groups of output positions whose input axes are consecutive.
  int group_first[kMaxPermuteRank], group_len[kMaxPermuteRank];
  int groups = 0;
  for (int i = 0; i < q; ++i) {
    if (groups > 0 && p[i] == group_first[groups - 1] + group_len[groups - 1]) {
      ++group_len[groups - 1];
    } else {
      group_first[groups] = p[i];
      group_len[groups] = 1;
      ++groups;
    }
  }
  // A group's new input axis number is its rank by first input axis.
  Perm out;
  out.rank = groups;
  for (int g = 0; g < groups; ++g) {
    int before = 0;
    for (int h = 0; h < groups; ++h) before += group_first[h] < group_first[g] ? 1 : 0;
    out.perm[g] = before;
    i64 size = 1;
    for (int k = 0; k < group_len[g]; ++k) size *= s[group_first[g] + k];
    out.shape[before] = size;
  }
  return out;
}

// Decodes a linear index over `n` axes (sizes, outermost first) into the matching offset
// along per-axis strides.
i64 offset_of(i64 index, const i64* sizes, const i64* strides, int n) {
  i64 off = 0;
  for (int j = n - 1; j >= 0; --j) {
    off += (index % sizes[j]) * strides[j];
    index /= sizes[j];
  }
  return off;
}

void permute_canonical(const float* x, const Perm& c, float* y, i64 total, int threads) {
  const int R = c.rank;
  if (R <= 1) {  // nothing moves: a copy
    parallel_for_blocks(total, kChunk, threads, [&](i64 a, i64 b, int) {
      std::memcpy(y + a, x + a, static_cast<std::size_t>(b - a) * sizeof(float));
    });
    return;
  }
  i64 in_stride[kMaxPermuteRank];
  in_stride[R - 1] = 1;
  for (int a = R - 2; a >= 0; --a) in_stride[a] = in_stride[a + 1] * c.shape[a + 1];
  i64 out_size[kMaxPermuteRank], out_in_stride[kMaxPermuteRank], out_stride[kMaxPermuteRank];
  for (int j = 0; j < R; ++j) {
    out_size[j] = c.shape[c.perm[j]];
    out_in_stride[j] = in_stride[c.perm[j]];
  }
  out_stride[R - 1] = 1;
  for (int j = R - 2; j >= 0; --j) out_stride[j] = out_stride[j + 1] * out_size[j + 1];

  if (c.perm[R - 1] == R - 1) {
    // The innermost axis stays innermost: copy runs of it whole.
    const i64 run = c.shape[R - 1];
    const i64 runs = total / run;
    parallel_for_blocks(runs, kChunk / run, threads, [&](i64 r0, i64 r1, int) {
      for (i64 r = r0; r < r1; ++r)
        std::memcpy(y + r * run, x + offset_of(r, out_size, out_in_stride, R - 1),
                    static_cast<std::size_t>(run) * sizeof(float));
    });
    return;
  }
  // The innermost axis moves: per combination of the other axes, a 2-D transpose between
  // input axis R-1 (contiguous in x, output axis b) and input axis a = perm[R-1]
  // (contiguous in y), in square tiles that stay in L1.
  const int a = c.perm[R - 1];
  int b = 0;
  while (c.perm[b] != R - 1) ++b;
  i64 other_size[kMaxPermuteRank], other_in[kMaxPermuteRank], other_out[kMaxPermuteRank];
  int no = 0;
  for (int j = 0; j < R - 1; ++j) {
    if (j == b) continue;
    other_size[no] = out_size[j];
    other_in[no] = out_in_stride[j];
    other_out[no] = out_stride[j];
    ++no;
  }
  const i64 ni = c.shape[R - 1], nj = c.shape[a];
  const i64 sa = in_stride[a], sb = out_stride[b];
  constexpr i64 T = 16;
  const i64 jtiles = (nj + T - 1) / T;
  const i64 combos = total / (ni * nj);
  parallel_for(combos * jtiles, threads, [&](i64 task) {
    const i64 combo = task / jtiles, j0 = (task % jtiles) * T;
    const float* xb = x + offset_of(combo, other_size, other_in, no);
    float* yb = y + offset_of(combo, other_size, other_out, no);
    const i64 j1 = std::min(nj, j0 + T);
    for (i64 i0 = 0; i0 < ni; i0 += T) {
      const i64 i1 = std::min(ni, i0 + T);
      for (i64 i = i0; i < i1; ++i) {
        float* yr = yb + i * sb;
        const float* xc = xb + i;
        for (i64 j = j0; j < j1; ++j) yr[j] = xc[j * sa];
      }
    }
  });
}

// -------------------------------------------------------------------------- resize -----

// y[j * F + r] = x[j] for r < F.
template <int F>
void repeat_values(const float* GRIMSIM_RESTRICT x, float* GRIMSIM_RESTRICT y, i64 n) {
  for (i64 j = 0; j < n; ++j)
    for (int r = 0; r < F; ++r) y[j * F + r] = x[j];
}

// Half-pixel source coordinate of output index i (clamped to [0, in - 1]): its lower
// neighbour and the weight of the upper one.
std::pair<i64, float> half_pixel(i64 i, i64 in, i64 out) {
  const double f = (static_cast<double>(i) + 0.5) * static_cast<double>(in) /
                       static_cast<double>(out) - 0.5;
  if (f <= 0.0) return {0, 0.0f};
  const i64 lo = static_cast<i64>(f);
  if (lo >= in - 1) return {in - 1, 0.0f};
  return {lo, static_cast<float>(f - static_cast<double>(lo))};
}

}  // namespace

void permute(const float* x, const std::int64_t* shape, const std::int64_t* perm, int rank,
             float* y, int threads) {
  check_threads(threads);
  check(rank >= 1 && rank <= kMaxPermuteRank,
        "permute: rank must be in [1, " + std::to_string(kMaxPermuteRank) + "], got " +
            std::to_string(rank));
  check(shape != nullptr && perm != nullptr, "permute: null shape or perm");
  const i64 total = checked_product(shape, rank, "permute");
  bool seen[kMaxPermuteRank] = {};
  for (int i = 0; i < rank; ++i) {
    check(perm[i] >= 0 && perm[i] < rank && !seen[perm[i]],
          "permute: perm must hold each axis 0.." + std::to_string(rank - 1) +
              " once, got " + std::to_string(perm[i]) + " at position " + std::to_string(i));
    seen[perm[i]] = true;
  }
  check(x != nullptr && y != nullptr, "permute: null input or output");
  permute_canonical(x, canonical(shape, perm, rank), y, total, threads);
}

void resize2d(const float* x, std::int64_t planes, std::int64_t h, std::int64_t w,
              std::int64_t out_h, std::int64_t out_w, ResizeMode mode, float* y, int threads) {
  check_threads(threads);
  const i64 in_sizes[3] = {planes, h, w}, out_sizes[3] = {planes, out_h, out_w};
  checked_product(in_sizes, 3, "resize2d input");
  checked_product(out_sizes, 3, "resize2d output");
  constexpr i64 kMaxSide = (i64{1} << 31) - 1;  // column tables hold 32-bit indices
  check(h <= kMaxSide && w <= kMaxSide && out_h <= kMaxSide && out_w <= kMaxSide,
        "resize2d: sides must be < 2^31");
  check(mode == ResizeMode::nearest || mode == ResizeMode::bilinear,
        "resize2d: mode must be nearest or bilinear");
  check(x != nullptr && y != nullptr, "resize2d: null input or output");
  const i64 plane = h * w, oplane = out_h * out_w;
  if (mode == ResizeMode::nearest) {
    // An integer upscale along w (2x in FPN/YOLO necks) repeats each value: a loop the
    // compiler vectorises, ~5x faster than the gather through a column table.
    const i64 factor = out_w % w == 0 ? out_w / w : 0;
    std::vector<std::int32_t> col(static_cast<std::size_t>(out_w));
    for (i64 j = 0; j < out_w; ++j) col[j] = static_cast<std::int32_t>(j * w / out_w);
    parallel_for(planes, threads, [&](i64 p) {
      const float* xp = x + p * plane;
      float* yp = y + p * oplane;
      i64 prev = -1;
      for (i64 i = 0; i < out_h; ++i) {
        const i64 src = i * h / out_h;
        float* yr = yp + i * out_w;
        if (src == prev) {  // upsampling: the row above is the same input row
          std::memcpy(yr, yr - out_w, static_cast<std::size_t>(out_w) * sizeof(float));
          continue;
        }
        const float* xr = xp + src * w;
        if (factor == 2)
          repeat_values<2>(xr, yr, w);
        else if (factor == 1)
          std::memcpy(yr, xr, static_cast<std::size_t>(w) * sizeof(float));
        else
          for (i64 j = 0; j < out_w; ++j) yr[j] = xr[col[j]];
        prev = src;
      }
    });
    return;
  }
  std::vector<std::int32_t> x0(static_cast<std::size_t>(out_w)), x1(x0.size());
  std::vector<float> ax(x0.size());
  for (i64 j = 0; j < out_w; ++j) {
    const auto [lo, t] = half_pixel(j, w, out_w);
    x0[j] = static_cast<std::int32_t>(lo);
    x1[j] = static_cast<std::int32_t>(std::min(lo + 1, w - 1));
    ax[j] = t;
  }
  // Per thread, the two input rows resampled along w (reused by the next output row when it
  // reads the same ones, as in 2x upsampling).
  std::vector<float> rows(static_cast<std::size_t>(threads) * 2 * out_w);
  const SimdLevel level = simd_runtime_level();  // once: it reads the environment
  parallel_for(planes, threads, [&](i64 p, int thread) {
    const float* xp = x + p * plane;
    float* yp = y + p * oplane;
    float* top = rows.data() + static_cast<i64>(thread) * 2 * out_w;
    float* bottom = top + out_w;
    i64 top_row = -1, bottom_row = -1;
    auto resample = [&](i64 r, float* dst) {
      const float* xr = xp + r * w;
      for (i64 j = 0; j < out_w; ++j) dst[j] = xr[x0[j]] + (xr[x1[j]] - xr[x0[j]]) * ax[j];
    };
    for (i64 i = 0; i < out_h; ++i) {
      const auto [r0, t] = half_pixel(i, h, out_h);
      const i64 r1 = std::min(r0 + 1, h - 1);
      if (top_row != r0) {
        if (bottom_row == r0) {
          std::swap(top, bottom);
          std::swap(top_row, bottom_row);
        } else {
          resample(r0, top);
          top_row = r0;
        }
      }
      if (bottom_row != r1) {
        resample(r1, bottom);
        bottom_row = r1;
      }
      GRIMSIM_DISPATCH_AT(level, blend_span, top, bottom, t, yp + i * out_w, out_w);
    }
  });
}

void softmax(const float* x, std::int64_t outer, std::int64_t len, std::int64_t inner,
             float* y, int threads) {
  check_threads(threads);
  const i64 sizes[3] = {outer, len, inner};
  checked_product(sizes, 3, "softmax");
  check(x != nullptr && y != nullptr, "softmax: null input or output");
  const i64 slice = len * inner;
  std::vector<float> scratch(inner > 1 ? static_cast<std::size_t>(threads) * 2 * inner : 0);
  const SimdLevel level = simd_runtime_level();
  parallel_for_blocks(outer, kChunk / slice, threads, [&](i64 o0, i64 o1, int thread) {
    float* s = inner > 1 ? scratch.data() + static_cast<i64>(thread) * 2 * inner : nullptr;
    if (inner == 1) {
      GRIMSIM_DISPATCH_AT(level, softmax_rows, x + o0 * len, y + o0 * len, o1 - o0, len);
      return;
    }
    for (i64 o = o0; o < o1; ++o)
      GRIMSIM_DISPATCH_AT(level, softmax_slice, x + o * slice, y + o * slice, len, inner, s);
  });
}

void unary(const float* x, std::int64_t n, Unary kind, float alpha, float* y, int threads) {
  check_threads(threads);
  check_count(n, "unary");
  const int k = static_cast<int>(kind);
  check(k >= static_cast<int>(Unary::relu) && k <= static_cast<int>(Unary::exp),
        "unary: unknown activation " + std::to_string(k));
  check(std::isfinite(alpha), "unary: alpha must be finite");
  check(x != nullptr && y != nullptr, "unary: null input or output");
  const SimdLevel level = simd_runtime_level();
  parallel_for_blocks(n, kChunk, threads, [&](i64 a, i64 b, int) {
    GRIMSIM_DISPATCH_AT(level, unary_span, k, alpha, x + a, y + a, b - a);
  });
}

void channel_affine(const float* x, std::int64_t outer, std::int64_t channels,
                    std::int64_t inner, const float* scale, const float* shift, float* y,
                    int threads) {
  check_threads(threads);
  const i64 sizes[3] = {outer, channels, inner};
  checked_product(sizes, 3, "channel_affine");
  check(x != nullptr && y != nullptr && scale != nullptr && shift != nullptr,
        "channel_affine: null input, output, scale or shift");
  const i64 planes = outer * channels;
  const SimdLevel level = simd_runtime_level();
  parallel_for_blocks(planes, kChunk / inner, threads, [&](i64 p0, i64 p1, int) {
    for (i64 p = p0; p < p1; ++p) {
      const i64 ch = p % channels;
      GRIMSIM_DISPATCH_AT(level, affine_span, x + p * inner, y + p * inner, inner, scale[ch],
                          shift[ch]);
    }
  });
}

void layernorm(const float* x, std::int64_t rows, std::int64_t dim, const float* gamma,
               const float* beta, float eps, float* y, int threads) {
  check_threads(threads);
  const i64 sizes[2] = {rows, dim};
  checked_product(sizes, 2, "layernorm");
  check(std::isfinite(eps) && eps >= 0.0f, "layernorm: eps must be finite and >= 0");
  check(x != nullptr && y != nullptr, "layernorm: null input or output");
  const SimdLevel level = simd_runtime_level();
  parallel_for_blocks(rows, kChunk / dim, threads, [&](i64 r0, i64 r1, int) {
    for (i64 r = r0; r < r1; ++r)
      GRIMSIM_DISPATCH_AT(level, layernorm_row, x + r * dim, y + r * dim, dim, gamma, beta, eps);
  });
}

void lrn_across_channels(const float* x, std::int64_t outer, std::int64_t channels,
                         std::int64_t plane, std::int64_t size, float alpha, float beta,
                         float k, float* y, int threads) {
  check_threads(threads);
  const i64 sizes[3] = {outer, channels, plane};
  checked_product(sizes, 3, "lrn");
  check(size >= 1 && size <= kMaxElements,
        "lrn: local size must be >= 1, got " + std::to_string(size));
  check(std::isfinite(alpha) && std::isfinite(beta) && std::isfinite(k) && k > 0.0f &&
            alpha >= 0.0f,
        "lrn: alpha, beta and k must be finite, k > 0 and alpha >= 0");
  check(x != nullptr && y != nullptr, "lrn: null input or output");
  // Tasks: one image's channels over a span of plane positions (the window's planes of the
  // span stay in L1).
  constexpr i64 kSpan = 512;
  const i64 spans = (plane + kSpan - 1) / kSpan;
  const SimdLevel level = simd_runtime_level();
  parallel_for(outer * spans, threads, [&](i64 t) {
    const i64 img = t / spans, p0 = (t % spans) * kSpan, p1 = std::min(plane, p0 + kSpan);
    const i64 off = img * channels * plane;
    GRIMSIM_DISPATCH_AT(level, lrn_span, x + off, y + off, channels, plane, p0, p1, size, alpha,
                        beta, k);
  });
}

}  // namespace grimsim
