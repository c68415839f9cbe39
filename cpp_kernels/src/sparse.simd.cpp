// Row-wise inner loops of the CSR, N:M and pattern kernels, compiled once per SIMD tier.
//
// Each output row is a list of (weight, X row) pairs. Wide N: the row's accumulators cover up
// to 4 vectors along N, in two sets fed by alternate pairs (so the FMA latency is hidden), and
// are stored once. Narrow N: scalar dot products with independent partial sums.
#include <cstdint>

#include "next_panel.hpp"
#include "sparse_simd.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

namespace {

using namespace simd;
using sparse_detail::CsrRaw;
using sparse_detail::NmRaw;
using sparse_detail::Panel;
using sparse_detail::PatternRaw;
using i64 = std::int64_t;

constexpr int L = kLanes;

// Accumulates VV vectors of one output row; feed pairs with two(), a last odd entry with one().
template <int VV>
struct RowAcc {
  vf a[VV], b[VV];
  const float* x;
  i64 ldx;
  GRIMSIM_INLINE RowAcc(const float* x_, i64 ldx_) : x(x_), ldx(ldx_) {
#pragma GCC unroll 4
    for (int j = 0; j < VV; ++j) a[j] = b[j] = zero();
  }
  GRIMSIM_INLINE void two(float w0, i64 c0, float w1, i64 c1) {
    const float* x0 = x + c0 * ldx;
    const float* x1 = x + c1 * ldx;
    const vf v0 = set1(w0), v1 = set1(w1);
#pragma GCC unroll 4
    for (int j = 0; j < VV; ++j) {
      a[j] = fma(v0, load(x0 + j * L), a[j]);
      b[j] = fma(v1, load(x1 + j * L), b[j]);
    }
  }
  GRIMSIM_INLINE void one(float w0, i64 c0) {
    const float* x0 = x + c0 * ldx;
    const vf v0 = set1(w0);
#pragma GCC unroll 4
    for (int j = 0; j < VV; ++j) a[j] = fma(v0, load(x0 + j * L), a[j]);
  }
  GRIMSIM_INLINE void store_to(float* y) const {
#pragma GCC unroll 4
    for (int j = 0; j < VV; ++j) store(y + j * L, a[j] + b[j]);
  }
};

// Runs body(acc) for the row over the panel in tiles of up to 4 vectors, storing each tile.
template <class Body>
GRIMSIM_INLINE void row_panel(const Panel& p, i64 row, Body&& body) {
  float* yrow = p.y + (row - p.y_row0) * p.ldy;
  i64 v = 0;
  for (; v + 4 <= p.nv; v += 4) {
    RowAcc<4> acc(p.x + v * L, p.ldx);
    body(acc);
    acc.store_to(yrow + v * L);
  }
  const i64 rest = p.nv - v;
  if (rest == 3) {
    RowAcc<3> acc(p.x + v * L, p.ldx);
    body(acc);
    acc.store_to(yrow + v * L);
  } else if (rest == 2) {
    RowAcc<2> acc(p.x + v * L, p.ldx);
    body(acc);
    acc.store_to(yrow + v * L);
  } else if (rest == 1) {
    RowAcc<1> acc(p.x + v * L, p.ldx);
    body(acc);
    acc.store_to(yrow + v * L);
  }
}

// Narrow-N accumulation of one row over columns [0, n) of x (row stride ldx), n <= kNarrow:
// y_row[0..n) = sum w * x[col, 0..n).
constexpr i64 kNarrow = 64;
struct NarrowAcc {
  const float* x;
  i64 n, ldx;
  float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // n == 1: four partial sums
  float acc[kNarrow];
  GRIMSIM_INLINE NarrowAcc(const float* x_, i64 n_, i64 ldx_) : x(x_), n(n_), ldx(ldx_) {
    for (i64 j = 0; j < n; ++j) acc[j] = 0.0f;
  }
  GRIMSIM_INLINE void two(float w0, i64 c0, float w1, i64 c1) {
    if (n == 1) {
      s[0] += w0 * x[c0 * ldx];
      s[1] += w1 * x[c1 * ldx];
    } else {
      one(w0, c0);
      one(w1, c1);
    }
  }
  GRIMSIM_INLINE void one(float w0, i64 c0) {
    if (n == 1) {
      s[2] += w0 * x[c0 * ldx];
    } else {
      const float* xr = x + c0 * ldx;
      for (i64 j = 0; j < n; ++j) acc[j] += w0 * xr[j];
    }
  }
  GRIMSIM_INLINE void store_to(float* y) const {
    if (n == 1)
      y[0] = (s[0] + s[1]) + (s[2] + s[3]);
    else
      for (i64 j = 0; j < n; ++j) y[j] = acc[j];
  }
};

// The same for n = NN known at compile time (2 <= NN < 16): the row's sums stay in
// registers, in two sets (even and odd nonzeros) so consecutive multiply-adds do not wait on
// each other. With a runtime n, NarrowAcc's sums live in memory, and each nonzero's
// multiply-add waited for the previous one's store to forward: 13 cycles per nonzero for
// every n from 2 to 5 (Zen 4 VM, 2026-11-27), where the FMA alone takes 4.
template <int NN>
struct NarrowAccN {
  const float* x;
  i64 ldx;
  float a[NN], b[NN];
  GRIMSIM_INLINE NarrowAccN(const float* x_, i64 ldx_) : x(x_), ldx(ldx_) {
#pragma GCC unroll 16
    for (int j = 0; j < NN; ++j) a[j] = b[j] = 0.0f;
  }
  GRIMSIM_INLINE void two(float w0, i64 c0, float w1, i64 c1) {
    const float* GRIMSIM_RESTRICT x0 = x + c0 * ldx;
    const float* GRIMSIM_RESTRICT x1 = x + c1 * ldx;
#pragma GCC unroll 16
    for (int j = 0; j < NN; ++j) {
      a[j] += w0 * x0[j];
      b[j] += w1 * x1[j];
    }
  }
  GRIMSIM_INLINE void one(float w0, i64 c0) {
    const float* GRIMSIM_RESTRICT x0 = x + c0 * ldx;
#pragma GCC unroll 16
    for (int j = 0; j < NN; ++j) a[j] += w0 * x0[j];
  }
  GRIMSIM_INLINE void store_to(float* y) const {
#pragma GCC unroll 16
    for (int j = 0; j < NN; ++j) y[j] = a[j] + b[j];
  }
};

template <int NN, class Body>
GRIMSIM_INLINE void row_fixed(const float* x, float* yrow, Body& body) {
  NarrowAccN<NN> acc(x, NN);
  body(acc);
  acc.store_to(yrow);
}

// Runs body(acc) for one output row in column chunks of at most kNarrow (the drivers only
// send n < lanes here; wider n stays correct).
template <class Body>
GRIMSIM_INLINE void row_narrow(const float* x, i64 n, float* yrow, Body&& body) {
  if (n >= 2 && n < L) {
    switch (n) {
      case 2: return row_fixed<2>(x, yrow, body);
      case 3: return row_fixed<3>(x, yrow, body);
      case 4: return row_fixed<4>(x, yrow, body);
      case 5: return row_fixed<5>(x, yrow, body);
      case 6: return row_fixed<6>(x, yrow, body);
      case 7: return row_fixed<7>(x, yrow, body);
      case 8: return row_fixed<8>(x, yrow, body);
      case 9: return row_fixed<9>(x, yrow, body);
      case 10: return row_fixed<10>(x, yrow, body);
      case 11: return row_fixed<11>(x, yrow, body);
      case 12: return row_fixed<12>(x, yrow, body);
      case 13: return row_fixed<13>(x, yrow, body);
      case 14: return row_fixed<14>(x, yrow, body);
      case 15: return row_fixed<15>(x, yrow, body);
      default: break;
    }
  }
  for (i64 j0 = 0; j0 < n; j0 += kNarrow) {
    NarrowAcc acc(x + j0, n - j0 < kNarrow ? n - j0 : kNarrow, n);
    body(acc);
    acc.store_to(yrow + j0);
  }
}

template <class Acc>
GRIMSIM_INLINE void csr_row(const CsrRaw& w, i64 i, Acc& acc) {
  const i64 p0 = w.indptr[i], p1 = w.indptr[i + 1];
  i64 p = p0;
  for (; p + 2 <= p1; p += 2)
    acc.two(w.data[p], w.indices[p], w.data[p + 1], w.indices[p + 1]);
  if (p < p1) acc.one(w.data[p], w.indices[p]);
}

template <class Acc>
GRIMSIM_INLINE void nm_row(const NmRaw& w, i64 i, Acc& acc) {
  const i64 G = (w.cols + w.m - 1) / w.m, n = w.n;
  const float* v = w.values + i * G * n;
  const std::int32_t* idx = w.indices + i * G * n;
  // All groups but the last are complete: every slot is inside K.
  for (i64 g = 0; g + 1 < G; ++g) {
    const i64 base = g * w.m;
    i64 s = 0;
    for (; s + 2 <= n; s += 2)
      acc.two(v[g * n + s], base + idx[g * n + s], v[g * n + s + 1], base + idx[g * n + s + 1]);
    if (s < n) acc.one(v[g * n + s], base + idx[g * n + s]);
  }
  if (G > 0) {
    const i64 g = G - 1, base = g * w.m;
    for (i64 s = 0; s < n; ++s) {
      const i64 col = base + idx[g * n + s];
      if (col < w.cols) acc.one(v[g * n + s], col);  // slots past K hold zeros
    }
  }
}

template <class Acc>
GRIMSIM_INLINE void pattern_row(const PatternRaw& w, i64 t, Acc& acc) {
  for (i64 q = w.kernel_ptr[t]; q < w.kernel_ptr[t + 1]; ++q) {
    const i64 base = static_cast<i64>(w.kernel_channel[q]) * 9;
    const std::int32_t* pos = w.library + static_cast<i64>(w.kernel_pattern[q]) * 4;
    const float* v = w.values + q * 4;
    acc.two(v[0], base + pos[0], v[1], base + pos[1]);
    acc.two(v[2], base + pos[2], v[3], base + pos[3]);
  }
}

// Runs unit(u) for the units [u0, u1) of a panel task, prefetching the next task's X rows
// (Panel::pf_*) as they go.
template <class Unit>
GRIMSIM_INLINE void panel_units(const Panel& p, i64 u0, i64 u1, Unit&& unit) {
  NextPanel next(p);
  for (i64 u = u0; u < u1; ++u) {
    unit(u);
    next.advance(u + 1 - u0, u1 - u0);
  }
}

}  // namespace

void csr_rows_panel(const CsrRaw& w, i64 i0, i64 i1, const Panel& p) {
  panel_units(p, i0, i1, [&](i64 i) { row_panel(p, i, [&](auto& acc) { csr_row(w, i, acc); }); });
}

void nm_rows_panel(const NmRaw& w, i64 i0, i64 i1, const Panel& p) {
  panel_units(p, i0, i1, [&](i64 i) { row_panel(p, i, [&](auto& acc) { nm_row(w, i, acc); }); });
}

void pattern_rows_panel(const PatternRaw& w, i64 i0, i64 i1, const Panel& p) {
  panel_units(p, i0, i1, [&](i64 t) {
    row_panel(p, p.row_map ? p.row_map[t] : t, [&](auto& acc) { pattern_row(w, t, acc); });
  });
}

void csr_rows_narrow(const CsrRaw& w, i64 i0, i64 i1, const float* x, i64 n, float* y) {
  for (i64 i = i0; i < i1; ++i) row_narrow(x, n, y + i * n, [&](auto& acc) { csr_row(w, i, acc); });
}

void nm_rows_narrow(const NmRaw& w, i64 i0, i64 i1, const float* x, i64 n, float* y) {
  for (i64 i = i0; i < i1; ++i) row_narrow(x, n, y + i * n, [&](auto& acc) { nm_row(w, i, acc); });
}

void pattern_rows_narrow(const PatternRaw& w, i64 i0, i64 i1, const float* x, i64 n, float* y) {
  for (i64 t = i0; t < i1; ++t)
    row_narrow(x, n, y + static_cast<i64>(w.filter_order[t]) * n,
               [&](auto& acc) { pattern_row(w, t, acc); });
}

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
