// The GEMM register tile shared by the dense GEMM and Winograd (included only by *.simd.cpp
// files, so each SIMD tier gets its own copy in its own namespace).
//
// Packed operands: an A panel holds MR rows of W, k-major (a[k * MR + r]); a B panel holds NR
// columns of X, k-major (b[k * NR + j]). Partial panels are zero-padded, so the micro-kernel
// always runs a full MR x NR tile and only the store is clipped.
#pragma once
#include <cstdint>
#include <type_traits>

#include "grimsim/simd.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {
namespace gemm {

using simd::vf;
constexpr int kLanes = simd::kLanes;
// Register tile: MR x NV vectors of accumulators + NV B vectors + 1 broadcast A must fit the
// register file. 16 registers (SSE2, AVX2): 6 x 2 -> 12 + 2 + 1; 32 registers: AVX-512
// 14 x 2 -> 28 + 2 + 1, NEON 8 x 3 -> 24 + 3 + 1.
#if GRIMSIM_SIMD_REGS >= 32
constexpr int kNV = kLanes >= 16 ? 2 : 3;
constexpr int kMR = kLanes >= 16 ? 14 : 8;
#else
constexpr int kNV = 2;
constexpr int kMR = 6;
#endif
constexpr int kNR = kNV * kLanes;

// Where the A values of a tile come from: a packed panel (a[p * MR + r]) or MR rows of a
// row-major matrix (rows[r][p]), read in place when packing would not pay (small N).
struct APanel {
  const float* a;
};
struct ARows {
  const float* rows[kMR];
};
GRIMSIM_INLINE float a_at(const APanel& s, int r, std::int64_t p) { return s.a[p * kMR + r]; }
GRIMSIM_INLINE float a_at(const ARows& s, int r, std::int64_t p) { return s.rows[r][p]; }

// c[MR x NV*L] (+)= A (k x MR) * the first NV vectors of a B panel (k x NR); c row stride
// ldc. NV < kNV serves narrow right-edge tiles (e.g. N = 49) at lower cost.
template <int NV, bool kAccumulate, class A>
GRIMSIM_INLINE void ukernel(std::int64_t k, const A& a, const float* GRIMSIM_RESTRICT b,
                            float* GRIMSIM_RESTRICT c, std::int64_t ldc) {
  vf acc[kMR][NV];
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
  for (int r = 0; r < kMR; ++r)
#if defined(__GNUC__)
#pragma GCC unroll 4
#endif
    for (int v = 0; v < NV; ++v) acc[r][v] = simd::zero();
  for (std::int64_t p = 0; p < k; ++p) {
    vf bv[NV];
#if defined(__GNUC__)
#pragma GCC unroll 4
#endif
    for (int v = 0; v < NV; ++v) bv[v] = simd::load(b + v * kLanes);
#if defined(GRIMSIM_NEON_LANES)
    if constexpr (std::is_same<A, APanel>::value) {
      // Four A values per vector, each used by lane: 8 x 3 tile = 24 + 3 + 2 registers.
      static_assert(kMR % 4 == 0, "NEON tile rows come in fours");
#pragma GCC unroll 4
      for (int q = 0; q < kMR / 4; ++q) {
        const vf av = simd::load(a.a + p * kMR + 4 * q);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          acc[4 * q + 0][v] = simd::fma_lane<0>(acc[4 * q + 0][v], bv[v], av);
          acc[4 * q + 1][v] = simd::fma_lane<1>(acc[4 * q + 1][v], bv[v], av);
          acc[4 * q + 2][v] = simd::fma_lane<2>(acc[4 * q + 2][v], bv[v], av);
          acc[4 * q + 3][v] = simd::fma_lane<3>(acc[4 * q + 3][v], bv[v], av);
        }
      }
    } else
#endif
    {
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
      for (int r = 0; r < kMR; ++r) {
        const vf ar = simd::set1(a_at(a, r, p));
#if defined(__GNUC__)
#pragma GCC unroll 4
#endif
        for (int v = 0; v < NV; ++v) acc[r][v] = simd::fma(ar, bv[v], acc[r][v]);
      }
    }
    b += kNR;
  }
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
  for (int r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
#if defined(__GNUC__)
#pragma GCC unroll 4
#endif
    for (int v = 0; v < NV; ++v) {
      if (kAccumulate) acc[r][v] = acc[r][v] + simd::load(cr + v * kLanes);
      simd::store(cr + v * kLanes, acc[r][v]);
    }
  }
}

// The same for a clipped tile: only the first mr rows and nr columns of c are written.
template <int NV, class A>
GRIMSIM_INLINE void ukernel_edge(std::int64_t k, const A& a, const float* b, float* c,
                                 std::int64_t ldc, int mr, int nr, bool accumulate) {
  alignas(64) float tmp[kMR * kNR];
  ukernel<NV, false>(k, a, b, tmp, kNR);
  for (int r = 0; r < mr; ++r) {
    float* cr = c + r * ldc;
    const float* tr = tmp + r * kNR;
    if (accumulate)
      for (int j = 0; j < nr; ++j) cr[j] += tr[j];
    else
      for (int j = 0; j < nr; ++j) cr[j] = tr[j];
  }
}

// Computes a tile of mr <= MR rows and nr <= NR columns with the cheapest kernel.
template <class A>
GRIMSIM_INLINE void tile(std::int64_t k, const A& a, const float* b, float* c, std::int64_t ldc,
                         int mr, int nr, bool accumulate) {
  if (mr == kMR && nr == kNR) {
    if (accumulate)
      ukernel<kNV, true>(k, a, b, c, ldc);
    else
      ukernel<kNV, false>(k, a, b, c, ldc);
  } else if (kNV > 1 && nr <= kLanes) {
    if (mr == kMR && nr == kLanes) {
      if (accumulate)
        ukernel<1, true>(k, a, b, c, ldc);
      else
        ukernel<1, false>(k, a, b, c, ldc);
    } else {
      ukernel_edge<1>(k, a, b, c, ldc, mr, nr, accumulate);
    }
  } else {
    ukernel_edge<kNV>(k, a, b, c, ldc, mr, nr, accumulate);
  }
}

// A packed A panel (k x MR) as a tile source.
GRIMSIM_INLINE APanel panel_at(const float* a) { return APanel{a}; }

// Rows [r0, r0 + mr) of a row-major matrix (row stride lda) from column p0, as a tile source;
// rows past mr repeat the first (in bounds; their results are dropped by the edge kernel).
GRIMSIM_INLINE ARows rows_at(const float* w, std::int64_t lda, std::int64_t r0, int mr,
                             std::int64_t p0) {
  ARows s;
  for (int r = 0; r < kMR; ++r) s.rows[r] = w + (r0 + (r < mr ? r : 0)) * lda + p0;
  return s;
}

// Packs rows [0, rows) (rows <= MR) x columns [0, k) of w (row stride ldw) into one A panel
// (k x MR, zero rows beyond `rows`).
GRIMSIM_INLINE void pack_a_panel(const float* w, std::int64_t ldw, int rows, std::int64_t k,
                                 float* GRIMSIM_RESTRICT out) {
  if (rows == kMR) {
    for (std::int64_t p = 0; p < k; ++p)
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
      for (int r = 0; r < kMR; ++r) out[p * kMR + r] = w[r * ldw + p];
    return;
  }
  for (std::int64_t p = 0; p < k; ++p) {
    for (int r = 0; r < rows; ++r) out[p * kMR + r] = w[r * ldw + p];
    for (int r = rows; r < kMR; ++r) out[p * kMR + r] = 0.0f;
  }
}

// Packs rows [0, k) x columns [0, cols) of x (row stride ldx) into B panels of NR columns
// (the last one zero-padded): panel j at out + j * k * NR.
// Row p of the packed block is x + row(p) * ldx (row(p) = rows[p], or p without a map).
GRIMSIM_INLINE void pack_b(const float* x, std::int64_t ldx, const std::int64_t* rows,
                           std::int64_t k, std::int64_t cols, float* GRIMSIM_RESTRICT out) {
  auto row = [&](std::int64_t p) { return x + (rows != nullptr ? rows[p] : p) * ldx; };
  const std::int64_t full = cols / kNR;
  for (std::int64_t j = 0; j < full; ++j) {
    float* dst = out + j * k * kNR;
    for (std::int64_t p = 0; p < k; ++p) {
      const float* src = row(p) + j * kNR;
#if defined(__GNUC__)
#pragma GCC unroll 4
#endif
      for (int v = 0; v < kNV; ++v)
        simd::store(dst + p * kNR + v * kLanes, simd::load(src + v * kLanes));
    }
  }
  const int rest = static_cast<int>(cols - full * kNR);
  if (rest > 0) {
    float* dst = out + full * k * kNR;
    for (std::int64_t p = 0; p < k; ++p) {
      const float* src = row(p) + full * kNR;
      for (int j = 0; j < rest; ++j) dst[p * kNR + j] = src[j];
      for (int j = rest; j < kNR; ++j) dst[p * kNR + j] = 0.0f;
    }
  }
}

}  // namespace gemm
}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
