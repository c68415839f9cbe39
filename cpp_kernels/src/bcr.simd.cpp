// BCR inner loops, compiled once per SIMD tier (see grimsim/simd.hpp).
//
// Wide N (the panel kernels): a tile of r kept rows x c kept columns is a small dense GEMM
// (r x c) @ X[cols, n-tile]. Its rows are cut into register tiles of RR rows x VV vectors
// along N; the RR*VV accumulators take one FMA per kept column (each X vector loaded once
// serves all RR rows, each broadcast weight all VV vectors) and are added to Y once. A tile's
// X rows and its rows of Y stay in L1 across its register tiles.
//
// Narrow N (N < lanes: RNN steps, batch-1 FC) on the packed stream: lanes run over a tile's
// kept rows instead. Values are column-major, so column k of the tile is one vector load at
// values + k*r (lanes past r read the next column or the zero padding and are never used),
// multiplied by the broadcast x[col_k]; the r results are added to the band's rows once per
// tile. The stream is read once, front to back, as a dense GEMV reads its matrix.
#include <cstdint>
#include <type_traits>
#include <utility>

#include "next_panel.hpp"
#include "sparse_simd.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace grimsim {
namespace GRIMSIM_ISA_NS {

namespace {

using namespace simd;
using sparse_detail::BcrRaw;
using sparse_detail::BcrStream;
using sparse_detail::Panel;
using i64 = std::int64_t;

constexpr int L = kLanes;
constexpr int kMaxRR = 8;
// Rows per register tile for VV vectors: accumulators + VV X vectors + one broadcast.
constexpr int rmax(int vv) {
  return (kRegisters - vv - 1) / vv > kMaxRR ? kMaxRR : (kRegisters - vv - 1) / vv;
}

// One register tile: Y[RR rows, VV vectors from column off] += W[RR x c] @ X[cols, same].
// xrow(k) is the X row of kept column k, yrow(i) the Y row of tile row i (called for
// i = 0, 1, ... in turn); element (i, k) of W is v[k * stride + i] (column-major) or
// v[i * stride + k]. With kRagged the last vector holds only the lanes of tail_mask (N's
// ragged end). With `prefetch`, the X lines at pf_off of each row (the next group's) are
// prefetched into L1 while this one runs: the rows of a tile are scattered, so the hardware
// prefetchers miss them, and each group's first loads would otherwise wait on L2. AVX-512 only:
// measured there (Sapphire Rapids VM, 2026-11-26, 16x32 BCR, best of 4 alternating runs: +2
// to +9 % on N >= 196, within +-5 % on N = 32, 49), while the AVX2 tier showed no gain on that
// core and keeps its Zen 3 tuning.
template <int RR, int VV, bool kColMajor, bool kRagged, class XRow, class YRow>
GRIMSIM_INLINE void register_tile(const float* GRIMSIM_RESTRICT v, i64 stride, i64 c,
                                  XRow&& xrow, YRow&& yrow, i64 off, bool prefetch, i64 pf_off,
                                  unsigned tail_mask) {
  constexpr int kPfLines = L >= 16 ? (VV * L * 4 + 63) / 64 : 0;
  // The accumulators start at zero and are added to Y at the end, so the FMA chains do not
  // wait for the previous tile's stores to the same Y rows.
  vf acc[RR][VV];
#pragma GCC unroll 8
  for (int i = 0; i < RR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < VV; ++j) acc[i][j] = zero();
  // c >= 1 (empty tiles are skipped): a do-while keeps the accumulators in registers.
  i64 k = 0;
  do {
    const float* xk = xrow(k);
    vf xv[VV];
#pragma GCC unroll 4
    for (int j = 0; j < VV; ++j)
      xv[j] = kRagged && j == VV - 1 ? load_masked(xk + off + j * L, tail_mask)
                                     : load(xk + off + j * L);
    if (kPfLines > 0 && prefetch) {
#pragma GCC unroll 4
      for (int j = 0; j < kPfLines; ++j) __builtin_prefetch(xk + pf_off + j * 16, 0, 3);
    }
    const float* vk = kColMajor ? v + k * stride : v + k;
#pragma GCC unroll 8
    for (int i = 0; i < RR; ++i) {
      const vf w = set1(kColMajor ? vk[i] : vk[i * stride]);
#pragma GCC unroll 4
      for (int j = 0; j < VV; ++j) acc[i][j] = fma(w, xv[j], acc[i][j]);
    }
  } while (++k < c);
#pragma GCC unroll 8
  for (int i = 0; i < RR; ++i) {
    float* yi = yrow(i) + off;
#pragma GCC unroll 4
    for (int j = 0; j < VV; ++j) {
      if (kRagged && j == VV - 1)
        store_masked(yi + j * L, load_masked(yi + j * L, tail_mask) + acc[i][j], tail_mask);
      else
        store(yi + j * L, load(yi + j * L) + acc[i][j]);
    }
  }
}

// Runs group(s, ragged) for the nsub groups of a register-tile pass in order; with kTail the
// last one gets ragged = std::true_type (its last vector is N's ragged end).
template <bool kTail, class Group>
GRIMSIM_INLINE void for_each_group(i64 nsub, Group&& group) {
  const i64 whole = kTail ? nsub - 1 : nsub;
  for (i64 s = 0; s < whole; ++s) group(s, std::false_type{});
  if constexpr (kTail) group(nsub - 1, std::true_type{});
}

// Register tiles of one tile's RR rows over nsub consecutive groups of VV vectors along N,
// group after group (the X rows and weights stay in L1 between groups), from pointer arrays:
// xr[k] + xoff is the X row of kept column k at the first group's columns, yr[i] the Y row of
// tile row i there. With kTail, the last vector of the last group is ragged (tail_mask). Each
// group prefetches the next one's X lines (the last group its own, already there).
template <int RR, int VV, bool kColMajor, bool kTail>
void ukr(const float* GRIMSIM_RESTRICT v, i64 stride, i64 c,
         const float* const* GRIMSIM_RESTRICT xr, i64 xoff, float* const* yr, i64 nsub,
         unsigned tail_mask) {
  auto xrow = [&](i64 k) GRIMSIM_LAMBDA_INLINE { return xr[k] + xoff; };
  auto yrow = [&](int i) GRIMSIM_LAMBDA_INLINE { return yr[i]; };
  auto group = [&](i64 s, auto ragged) GRIMSIM_LAMBDA_INLINE {
    const i64 off = s * VV * L;
    register_tile<RR, VV, kColMajor, decltype(ragged)::value>(
        v, stride, c, xrow, yrow, off, true, off + (s + 1 < nsub ? VV * L : 0), tail_mask);
  };
  for_each_group<kTail>(nsub, group);
}

// The micro-kernels of one register-tile width, indexed by rows (null beyond its rmax).
template <class Fn>
struct ByRows {
  Fn fn[kMaxRR + 1];
};
using RowSeq = std::make_integer_sequence<int, kMaxRR>;

using UkrFn = void (*)(const float*, i64, i64, const float* const*, i64, float* const*, i64,
                       unsigned);

template <bool kColMajor, bool kTail, int VV, int... RRs>
constexpr ByRows<UkrFn> ukr_row(std::integer_sequence<int, RRs...>) {
  return {{nullptr, (RRs + 1 <= rmax(VV) ? &ukr<RRs + 1, VV, kColMajor, kTail> : nullptr)...}};
}

// ukr by [VV - 1][RR]
template <bool kColMajor, bool kTail = false>
struct UkrTable {
  static constexpr ByRows<UkrFn> width[3] = {ukr_row<kColMajor, kTail, 1>(RowSeq{}),
                                             ukr_row<kColMajor, kTail, 2>(RowSeq{}),
                                             ukr_row<kColMajor, kTail, 3>(RowSeq{})};
  static UkrFn get(int rr, int vv) { return width[vv - 1].fn[rr]; }
};

// A tile of RR rows (one register tile) over nsub consecutive groups of VV vectors along N,
// straight from its packed record (column-major values, r = RR): X rows addressed from the
// column indices and Y rows from the row mask as the pass goes; with kTail the last vector of
// the last group is ragged (tail_mask). For narrow panels the generic path's set-up per tile
// (row list, X- and Y-row pointer arrays, split lookup, the width and chunk loops) took about
// as long as the tile's FMAs: at 90 % (5 rows x 10 columns a tile) a profile put 44 % of the
// time outside the micro-kernel, and tiles merged across blocks ran twice as fast.
template <int RR, int VV, bool kTail, class Idx>
void tile_groups(const float* GRIMSIM_RESTRICT v, const Idx* GRIMSIM_RESTRICT cols, i64 c,
                 unsigned mask, const float* GRIMSIM_RESTRICT x, i64 ldx, float* y, i64 ldy,
                 i64 nsub, unsigned tail_mask) {
  auto xrow = [&](i64 k) GRIMSIM_LAMBDA_INLINE { return x + static_cast<i64>(cols[k]) * ldx; };
  auto group = [&](i64 s, auto ragged) GRIMSIM_LAMBDA_INLINE {
    unsigned m = mask;
    auto yrow = [&](int) GRIMSIM_LAMBDA_INLINE {
      float* yi = y + static_cast<i64>(__builtin_ctz(m)) * ldy;
      m &= m - 1;
      return yi;
    };
    const i64 off = s * VV * L;
    register_tile<RR, VV, true, decltype(ragged)::value>(v, RR, c, xrow, yrow, off,
                                                          s + 1 < nsub, off + VV * L, tail_mask);
  };
  for_each_group<kTail>(nsub, group);
}

template <class Idx>
using GroupsFn = void (*)(const float*, const Idx*, i64, unsigned, const float*, i64, float*,
                          i64, i64, unsigned);

template <class Idx, int VV, bool kTail, int... RRs>
constexpr ByRows<GroupsFn<Idx>> groups_row(std::integer_sequence<int, RRs...>) {
  return {{nullptr, (RRs + 1 <= rmax(VV) ? &tile_groups<RRs + 1, VV, kTail, Idx> : nullptr)...}};
}

// tile_groups by [tail][VV - 1][RR]
template <class Idx>
struct GroupsTable {
  static constexpr ByRows<GroupsFn<Idx>> fn[2][3] = {
      {groups_row<Idx, 1, false>(RowSeq{}), groups_row<Idx, 2, false>(RowSeq{}),
       groups_row<Idx, 3, false>(RowSeq{})},
      {groups_row<Idx, 1, true>(RowSeq{}), groups_row<Idx, 2, true>(RowSeq{}),
       groups_row<Idx, 3, true>(RowSeq{})}};
};

// Estimated cycles of r rows over VV vectors for a typical 16 kept columns, cut into balanced
// register tiles: 2 FMA and 2 load pipes, an FMA latency of 4-5 cycles (fewer than ~10
// accumulators stall), and a fixed cost per register-tile pass (ramp-up, the Y update and
// drain: about 32 cycles, measured on this Zen 3 for 10-12 accumulators).
double row_cost(i64 r, int vv) {
  constexpr double kCols = 16.0;
  const i64 q = (r + rmax(vv) - 1) / rmax(vv);
  double cost = 0.0;
  for (i64 t = 0; t < q; ++t) {
    const i64 rr = r / q + (t < r % q ? 1 : 0);
    const double fma_c = 0.5 * static_cast<double>(rr * vv);
    const double load_c = 0.5 * static_cast<double>(rr + vv);
    double c = fma_c > load_c ? fma_c : load_c;
    c = c > 5.0 ? c : 5.0;
    cost += kCols * c + 32.0;
  }
  return cost;
}

// How a tile of r rows is cut for a panel of nv vectors: n[0] register tiles of 3 vectors,
// then n[1] of 2 and n[2] of 1 (the mix row_cost says is cheapest); for VV = 3, 2, 1 the rows
// go in q[] chunks of base[] rows, the first extra[] of them one row more (precomputed: a
// division per register tile would cost as much as a short tile's FMAs).
struct Split {
  int n[3], q[3], base[3], extra[3];
};

Split best_split(i64 r, i64 nv) {
  const double c3 = row_cost(r, 3), c2 = row_cost(r, 2), c1 = row_cost(r, 1);
  Split best{};
  double best_cost = 1e300;
  for (i64 n3 = 0; 3 * n3 <= nv; ++n3) {
    const i64 rest = nv - 3 * n3;
    for (i64 n2 = rest / 2; n2 >= 0 && n2 >= rest / 2 - 1; --n2) {
      const i64 n1 = rest - 2 * n2;
      const double cost = static_cast<double>(n3) * c3 + static_cast<double>(n2) * c2 +
                          static_cast<double>(n1) * c1;
      if (cost < best_cost) {
        best_cost = cost;
        best.n[0] = static_cast<int>(n3);
        best.n[1] = static_cast<int>(n2);
        best.n[2] = static_cast<int>(n1);
      }
    }
  }
  for (int w = 0; w < 3; ++w) {
    const i64 vv = 3 - w;
    const i64 q = (r + rmax(static_cast<int>(vv)) - 1) / rmax(static_cast<int>(vv));
    best.q[w] = static_cast<int>(q);
    best.base[w] = static_cast<int>(q > 0 ? r / q : 0);
    best.extra[w] = static_cast<int>(q > 0 ? r % q : 0);
  }
  return best;
}

// Remembers the split per row count (tiles of a matrix have few distinct row counts).
class SplitCache {
 public:
  explicit SplitCache(i64 nv) : nv_(nv) {}
  const Split& get(i64 r) {
    if (r < kSize) {
      if (!known_[r]) {
        split_[r] = best_split(r, nv_);
        known_[r] = true;
      }
      return split_[r];
    }
    other_ = best_split(r, nv_);
    return other_;
  }

 private:
  static constexpr int kSize = 72;
  i64 nv_;
  Split split_[kSize];  // filled lazily; only known_ is initialised up front
  Split other_;
  bool known_[kSize] = {};
};

// One tile over the whole panel: rows[i] + row_base is the absolute row of tile row i, element
// (i, k) of the values is vals[k * r + i] (column-major) or vals[i * c + k]. The X row pointers
// of the tile's columns are computed once (in chunks of kPtrChunk columns) and shared by all
// its register-tile passes.
template <bool kColMajor, class Idx, class RowT>
void panel_tile(i64 r, i64 c, const float* vals, const Idx* cols, const RowT* rows, i64 row_base,
                const Panel& p, SplitCache& splits) {
  if (r == 0 || c == 0) return;
  const Split& s = splits.get(r);
  const i64 rb = row_base - p.y_row0;
  const i64 vstride = kColMajor ? r : c;
  // The widths' register tiles run left to right, so the ragged vector (if any) is the last
  // one of the last width in use.
  const int last_w = s.n[2] > 0 ? 2 : s.n[1] > 0 ? 1 : 0;
  const unsigned tail_mask = (1u << p.tail) - 1u;
  constexpr i64 kPtrChunk = 256;
  const float* xr[kPtrChunk];
  float* yr[kMaxRR];
  for (i64 k0 = 0; k0 < c; k0 += kPtrChunk) {
    const i64 kn = c - k0 < kPtrChunk ? c - k0 : kPtrChunk;
    for (i64 k = 0; k < kn; ++k) xr[k] = p.x + static_cast<i64>(cols[k0 + k]) * p.ldx;
    const float* vk = kColMajor ? vals + k0 * r : vals + k0;
    i64 voff = 0;
    for (int w = 0; w < 3; ++w) {
      if (s.n[w] == 0) continue;
      const int vv = 3 - w;
      i64 i0 = 0;
      for (int chunk = 0; chunk < s.q[w]; ++chunk) {
        const int rr = s.base[w] + (chunk < s.extra[w] ? 1 : 0);
        for (int i = 0; i < rr; ++i)
          yr[i] = p.y + (rb + static_cast<i64>(rows[i0 + i])) * p.ldy + voff * L;
        const float* vp = kColMajor ? vk + i0 : vk + i0 * vstride;
        UkrFn fn = UkrTable<kColMajor>::get(rr, vv);
        // only the packed stream (column-major) computes ragged ends in place, so the tail
        // kernels are instantiated for it alone
        if constexpr (kColMajor)
          if (p.tail > 0 && w == last_w) fn = UkrTable<true, true>::get(rr, vv);
        fn(vp, vstride, kn, xr, voff * L, yr, s.n[w], tail_mask);
        i0 += rr;
      }
      voff += s.n[w] * vv;
    }
  }
}

// ------------------------------------------------------------------------ narrow N -----
//
// A packed tile record (see sparse_simd.hpp): its rows are the set bits of a 16-bit mask over
// the band's rows; its values are column-major, so kept column k is the r floats at
// vals + k*r. The tile's rows go in groups of up to 8 lanes; lanes past r read the next
// column or the zero padding and are never used.

// The band's rows of a tile, in order, from its mask (for the paths that want indices).
GRIMSIM_INLINE int mask_rows(unsigned mask, std::uint8_t* rows) {
  int r = 0;
  while (mask != 0) {
    rows[r++] = static_cast<std::uint8_t>(__builtin_ctz(mask));
    mask &= mask - 1;
  }
  return r;
}

#if defined(__AVX2__)
// x86 with AVX2 (also the AVX-512 build): 8-lane groups. Each group's accumulator is
// expanded onto the band's 16 rows with a lane permutation (vpermps; one vexpandps with
// AVX-512, see BandAcc), so the band's Y rows stay in registers and no scalar scatter runs.
struct PermTable {
  alignas(32) std::int32_t idx[256][8];   // lane l <- accumulator lane (# set bits below l)
  alignas(32) std::int32_t keep[256][8];  // lane l: all ones if bit l is set, else zero
  std::uint8_t pop[256];
};
constexpr PermTable make_perm_table() {
  PermTable t{};
  for (int m = 0; m < 256; ++m) {
    int below = 0;
    for (int l = 0; l < 8; ++l) {
      const bool set = (m >> l) & 1;
      t.idx[m][l] = set ? below : 0;
      t.keep[m][l] = set ? -1 : 0;
      below += set;
    }
    t.pop[m] = static_cast<std::uint8_t>(below);
  }
  return t;
}
constexpr PermTable kPerm = make_perm_table();

GRIMSIM_INLINE __m256 lane_mask(unsigned m) {
  return _mm256_load_ps(reinterpret_cast<const float*>(kPerm.keep[m]));
}

// ylo/yhi (the band's rows 0-7 / 8-15) += acc's lanes placed on the rows of submask sm.
GRIMSIM_INLINE void expand_add(__m256 acc, unsigned sm, __m256& ylo, __m256& yhi) {
  const unsigned lo = sm & 0xFFu, hi = sm >> 8;
  if (lo != 0) {
    const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPerm.idx[lo]));
    ylo = _mm256_add_ps(ylo, _mm256_and_ps(_mm256_permutevar8x32_ps(acc, idx), lane_mask(lo)));
  }
  if (hi != 0) {
    const __m256i idx = _mm256_add_epi32(
        _mm256_load_si256(reinterpret_cast<const __m256i*>(kPerm.idx[hi])),
        _mm256_set1_epi32(kPerm.pop[lo]));
    yhi = _mm256_add_ps(yhi, _mm256_and_ps(_mm256_permutevar8x32_ps(acc, idx), lane_mask(hi)));
  }
}

// The submask holding the first 8 set bits of m (the rows of a tile's first lane group).
GRIMSIM_INLINE unsigned first8(unsigned m) {
  unsigned rest = m;
  for (int i = 0; i < 8 && rest != 0; ++i) rest &= rest - 1;
  return m ^ rest;
}

// One group of up to 8 of a tile's rows (submask sm, first value at va, column stride r):
// NN columns of X, placed onto the band's rows (BandAcc::place).
template <int NN, class Idx, class Band>
GRIMSIM_INLINE void narrow_group(unsigned sm, i64 r, i64 c, const float* GRIMSIM_RESTRICT va,
                                 const Idx* GRIMSIM_RESTRICT ck, const float* GRIMSIM_RESTRICT x,
                                 Band& band) {
  // Independent accumulator sets hide the FMA latency for small NN.
  constexpr int S = NN >= 4 ? 1 : NN >= 2 ? 2 : 4;
  __m256 acc[S][NN];
#pragma GCC unroll 4
  for (int s = 0; s < S; ++s)
#pragma GCC unroll 8
    for (int n = 0; n < NN; ++n) acc[s][n] = _mm256_setzero_ps();
  auto column = [&](int s) {
    const __m256 v = _mm256_loadu_ps(va);
    const float* xr = x + static_cast<i64>(*ck) * NN;
#pragma GCC unroll 8
    for (int n = 0; n < NN; ++n)
      acc[s][n] = _mm256_fmadd_ps(v, _mm256_broadcast_ss(xr + n), acc[s][n]);
    va += r;
    ++ck;
  };
  // The c % S leading columns first, then whole rounds of S.
  const i64 lead = S == 4 ? c & 3 : S == 2 ? c & 1 : 0;
  switch (lead) {
    case 3: column(S > 2 ? 2 : 0); [[fallthrough]];
    case 2: column(S > 1 ? 1 : 0); [[fallthrough]];
    case 1: column(0); [[fallthrough]];
    default: break;
  }
  for (i64 k = lead; k < c; k += S) {
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) column(s);
  }
#pragma GCC unroll 8
  for (int n = 0; n < NN; ++n) {
    __m256 t = acc[0][n];
#pragma GCC unroll 4
    for (int s = 1; s < S; ++s) t = _mm256_add_ps(t, acc[s][n]);
    band.place(n, t, sm);
  }
}

// One tile, NN columns of X: the band's 16 rows of column n += W_tile x[:, n].
template <int NN, class Idx, class Band>
GRIMSIM_INLINE void narrow_tile(unsigned mask, i64 r, i64 c, const float* vals, const Idx* cols,
                                const float* x, Band& band) {
  if (r <= 8) {  // the common case: one group, straight line
    narrow_group<NN>(mask, r, c, vals, cols, x, band);
    return;
  }
  unsigned rest = mask;
  for (i64 a = 0; a < r; a += 8) {
    const unsigned sm = r - a > 8 ? first8(rest) : rest;
    rest ^= sm;
    narrow_group<NN>(sm, r, c, vals + a, cols, x, band);
  }
}

// The band's 16 rows, one set per column of X. With AVX-512 they are one vector per column
// and a group's sums go onto them with one vexpandps (lane i onto the i-th set bit of the
// submask) instead of two 8-lane permutes, masks and adds from lookup tables.
template <int NN>
struct BandAcc {
#if defined(__AVX512F__) && GRIMSIM_SIMD_BYTES == 64
  __m512 rows[NN];
  GRIMSIM_INLINE void clear() {
#pragma GCC unroll 8
    for (int n = 0; n < NN; ++n) rows[n] = _mm512_setzero_ps();
  }
  GRIMSIM_INLINE void place(int n, __m256 t, unsigned sm) {
    rows[n] = _mm512_add_ps(rows[n], _mm512_maskz_expand_ps(static_cast<__mmask16>(sm),
                                                            _mm512_castps256_ps512(t)));
  }
  GRIMSIM_INLINE void store(float (&t)[NN][16]) const {
#pragma GCC unroll 8
    for (int n = 0; n < NN; ++n) _mm512_store_ps(t[n], rows[n]);
  }
#else
  __m256 lo[NN], hi[NN];
  GRIMSIM_INLINE void clear() {
#pragma GCC unroll 8
    for (int n = 0; n < NN; ++n) lo[n] = hi[n] = _mm256_setzero_ps();
  }
  GRIMSIM_INLINE void place(int n, __m256 t, unsigned sm) { expand_add(t, sm, lo[n], hi[n]); }
  GRIMSIM_INLINE void store(float (&t)[NN][16]) const {
#pragma GCC unroll 8
    for (int n = 0; n < NN; ++n) {
      _mm256_store_ps(t[n], lo[n]);
      _mm256_store_ps(t[n] + 8, hi[n]);
    }
  }
#endif
  // Writes the band's rows [0, n_rows) to y (M x NN, row-major) from row row0.
  GRIMSIM_INLINE void write(float* y, i64 row0, i64 n_rows) const {
    alignas(64) float t[NN][16];
    store(t);
    for (i64 j = 0; j < n_rows; ++j)
#pragma GCC unroll 8
      for (int n = 0; n < NN; ++n) y[(row0 + j) * NN + n] = t[n][j];
  }
  template <class Idx>
  GRIMSIM_INLINE void tile(unsigned mask, i64 r, i64 c, const float* vals, const Idx* cols,
                           const float* x) {
    narrow_tile<NN>(mask, r, c, vals, cols, x, *this);
  }
};
#else
// Other tiers (SSE2 baseline, NEON, generic): groups of kLanes rows; each group's results go
// to a small band buffer in L1 by row index.
template <int NN>
struct BandAcc {
  float yl[16][NN];
  GRIMSIM_INLINE void clear() {
    for (int j = 0; j < 16; ++j)
      for (int n = 0; n < NN; ++n) yl[j][n] = 0.0f;
  }
  GRIMSIM_INLINE void write(float* y, i64 row0, i64 rows) const {
    for (i64 j = 0; j < rows; ++j)
      for (int n = 0; n < NN; ++n) y[(row0 + j) * NN + n] = yl[j][n];
  }
  template <class Idx>
  GRIMSIM_INLINE void tile(unsigned mask, i64 r, i64 c, const float* GRIMSIM_RESTRICT vals,
                           const Idx* GRIMSIM_RESTRICT cols, const float* GRIMSIM_RESTRICT x) {
    constexpr int S = NN >= 4 ? 1 : NN >= 2 ? 2 : 4;
    std::uint8_t rows[16];
    mask_rows(mask, rows);
    for (i64 a = 0; a < r; a += L) {
      const int rn = static_cast<int>(r - a < L ? r - a : L);
      vf acc[S][NN];
      for (int s = 0; s < S; ++s)
        for (int n = 0; n < NN; ++n) acc[s][n] = zero();
      const float* va = vals + a;
      i64 k = 0;
      for (; k + S <= c; k += S)
        for (int s = 0; s < S; ++s) {
          const vf v = load(va + (k + s) * r);
          const float* xr = x + static_cast<i64>(cols[k + s]) * NN;
          for (int n = 0; n < NN; ++n) acc[s][n] = fma(v, set1(xr[n]), acc[s][n]);
        }
      for (; k < c; ++k) {
        const vf v = load(va + k * r);
        const float* xr = x + static_cast<i64>(cols[k]) * NN;
        for (int n = 0; n < NN; ++n) acc[0][n] = fma(v, set1(xr[n]), acc[0][n]);
      }
      float t[NN][L];
      for (int n = 0; n < NN; ++n) {
        vf sum = acc[0][n];
        for (int s = 1; s < S; ++s) sum = sum + acc[s][n];
        store(t[n], sum);
      }
      for (int j = 0; j < rn; ++j)
        for (int n = 0; n < NN; ++n) yl[rows[a + j]][n] += t[n][j];
    }
  }
};
#endif

// One tile record of the packed stream (layout in sparse_simd.hpp), read from its header.
template <class Idx>
struct Record {
  unsigned mask;
  i64 r, c;
  const Idx* cols;
  const float* vals;
  const unsigned char* next;  // the record after it
};

template <class Idx>
GRIMSIM_INLINE Record<Idx> read_record(const unsigned char* p) {
  std::uint64_t hdr;
  __builtin_memcpy(&hdr, p, sizeof(hdr));
  const auto c = static_cast<i64>((hdr >> 32) & 0xFFFFu);
  return {static_cast<unsigned>(hdr & 0xFFFFu), static_cast<i64>((hdr >> 16) & 0xFFFFu), c,
          reinterpret_cast<const Idx*>(p + 8),
          reinterpret_cast<const float*>(
              p + 8 + sparse_detail::round4(static_cast<i64>(sizeof(Idx)) * c)),
          p + 4 * static_cast<i64>(hdr >> 48)};
}

// Walks units [u0, u1) of the stream: start(row0) / finish(row0, rows) bracket each unit (its
// first row and row count), fn(mask, r, c, vals, cols) runs per tile.
template <class Idx, class Start, class Tile, class Finish>
GRIMSIM_INLINE void walk_stream(const BcrStream& w, i64 u0, i64 u1, Start&& start, Tile&& fn,
                                Finish&& finish) {
  for (i64 u = u0; u < u1; ++u) {
    const unsigned char* p = w.stream + w.unit_offset[u];
    const unsigned char* end = w.stream + w.unit_offset[u + 1];
    start(w.unit_row0[u]);
    while (p < end) {
      const Record<Idx> rec = read_record<Idx>(p);
      fn(rec.mask, rec.r, rec.c, rec.vals, rec.cols);
      p = rec.next;
    }
    finish(w.unit_row0[u], w.unit_row0[u + 1] - w.unit_row0[u]);
  }
}

template <int NN, class Idx>
void stream_narrow_nn(const BcrStream& w, i64 u0, i64 u1, const float* x, float* y) {
  BandAcc<NN> band;
  walk_stream<Idx>(
      w, u0, u1, [&](i64) { band.clear(); },
      [&](unsigned mask, i64 r, i64 c, const float* vals, const Idx* cols) {
        band.tile(mask, r, c, vals, cols, x);
      },
      [&](i64 row0, i64 rows) { band.write(y, row0, rows); });
}

template <class Idx>
void stream_narrow_typed(const BcrStream& w, i64 u0, i64 u1, const float* x, i64 n, float* y) {
  switch (n) {
    case 1: return stream_narrow_nn<1, Idx>(w, u0, u1, x, y);
    case 2: return stream_narrow_nn<2, Idx>(w, u0, u1, x, y);
    case 3: return stream_narrow_nn<3, Idx>(w, u0, u1, x, y);
    case 4: return stream_narrow_nn<4, Idx>(w, u0, u1, x, y);
    case 5: return stream_narrow_nn<5, Idx>(w, u0, u1, x, y);
    case 6: return stream_narrow_nn<6, Idx>(w, u0, u1, x, y);
    case 7: return stream_narrow_nn<7, Idx>(w, u0, u1, x, y);
    default: break;
  }
  // Wider N is not routed here by the drivers (it reaches 8..15 only with AVX-512, which
  // takes the panel path): column by column, into y zeroed by the caller.
  std::uint8_t rows[16];
  i64 row0 = 0;
  walk_stream<Idx>(
      w, u0, u1, [&](i64 start) { row0 = start; },
      [&](unsigned mask, i64 r, i64 c, const float* vals, const Idx* cols) {
        mask_rows(mask, rows);
        for (i64 j = 0; j < n; ++j)
          for (i64 i = 0; i < r; ++i) {
            float s = 0.0f;
            for (i64 k = 0; k < c; ++k) s += vals[k * r + i] * x[static_cast<i64>(cols[k]) * n + j];
            y[(row0 + rows[i]) * n + j] += s;
          }
      },
      [](i64, i64) {});
}

// Panels of up to kLeanMaxVectors vectors run tiles of up to rmax(3) rows (rmax(VV) for a
// panel of VV <= 3 vectors) through tile_groups: n3 groups of 3 vectors, then n2 of 2 (3 + 1
// vectors run as 2 + 2, as best_split has it for such rows). Against the generic path
// (Sapphire Rapids VM, 2026-11-27, 16x32 BCR, 1 thread, best of 5-8 interleaved rounds):
// at 90 % N = 16 2.4x, 32 1.7x, 48 1.6x, 49 1.2-1.4x, 64 1.1x, 128 1.07x, 196 1.03x faster;
// at 75 % 1.0-1.7x; at 50 % (tiles of 11 rows) unchanged. A panel of 49 vectors ran 0.97x:
// there the generic path's pointer arrays serve many groups, so wider panels keep it.
constexpr i64 kLeanMaxVectors = 16;

template <class Idx>
class LeanPanel {
 public:
  explicit LeanPanel(const Panel& p) : p_(p), tail_mask_((1u << p.tail) - 1u) {
    if (p.nv < 1 || p.nv > kLeanMaxVectors || (p.nv <= 3 && p.tail > 0)) return;
    rows_ = rmax(static_cast<int>(p.nv < 3 ? p.nv : 3));
    const auto& table = GroupsTable<Idx>::fn;
    i64 off = 0;
    auto add = [&](int vv, i64 groups) {
      if (groups <= 0) return;
      // the ragged vector (if any) is the panel's last: the last run's last group
      const bool ragged = p.tail > 0 && off + vv * groups == p.nv;
      runs_[n_runs_++] = {groups, off * L, &table[ragged ? 1 : 0][vv - 1]};
      off += vv * groups;
    };
    if (p.nv <= 3) {
      add(static_cast<int>(p.nv), 1);
    } else {
      const i64 rem = p.nv % 3;
      add(3, rem == 1 ? p.nv / 3 - 1 : p.nv / 3);
      add(2, rem == 0 ? 0 : rem == 2 ? 1 : 2);
    }
  }
  // Whether a tile of r rows takes this path.
  bool takes(i64 r) const { return r >= 1 && r <= rows_; }
  // Runs one tile (r <= rows_, c >= 1) of the band whose first Y row is yband.
  void run(const Record<Idx>& t, float* yband) const {
    for (int i = 0; i < n_runs_; ++i) {
      const Run& u = runs_[i];
      u.kernels->fn[t.r](t.vals, t.cols, t.c, t.mask, p_.x + u.col0, p_.ldx, yband + u.col0,
                         p_.ldy, u.groups, tail_mask_);
    }
  }

 private:
  // `groups` consecutive groups of one width from float column col0 of the panel, and the
  // tile_groups kernels for them by rows
  struct Run {
    i64 groups, col0;
    const ByRows<GroupsFn<Idx>>* kernels;
  };
  const Panel& p_;
  unsigned tail_mask_;
  i64 rows_ = 0;  // 0: no tile takes this path
  Run runs_[2] = {};
  int n_runs_ = 0;
};

// N's ragged end of T (1-7) columns beside a panel of whole vectors (Panel::fold), one tile
// at a time right after its register tiles: lanes over the tile's kept rows as in the narrow
// kernel (kept column k of the column-major values is one vector, times the broadcast
// x[col_k, j]); the r results per column are placed on the band's rows (a vector of 16) and
// summed there over the unit's tiles, then added to Y once per unit and K chunk. The tile's X
// rows were just loaded by its register tiles, so the ragged values come from L1. Before, the
// ragged end was a second pass of the narrow kernel over the whole stream plus strided copies
// of those columns in and out (e.g. N = 49: 3 vectors + 1 column). It does not reuse the narrow
// kernel's BandAcc: that one works in 8-lane groups placed by permutes, and run here it was
// 1.1-1.3x slower at 50 % (tiles of ~11 rows, two groups; Sapphire Rapids VM, 2026-11-27,
// alternating builds, 10 rounds), where one 16-lane group and vexpandps serve a whole tile.
constexpr int kFoldMax = 7;
struct FoldBand {
  alignas(64) float acc[kFoldMax][sparse_detail::kPackedBandRows];
  void clear(i64 cols) {
    for (i64 j = 0; j < cols; ++j)
      for (i64 i = 0; i < sparse_detail::kPackedBandRows; ++i) acc[j][i] = 0.0f;
  }
  // y (the band's first row, rows ldy floats apart) += the band's rows [0, rows)
  void add_to(float* y, i64 ldy, i64 rows, i64 cols) const {
    for (i64 i = 0; i < rows; ++i)
      for (i64 j = 0; j < cols; ++j) y[i * ldy + j] += acc[j][i];
  }
};

// Lanes [0, popcount(mask)) of v (at most 16) added onto the band rows of mask's set bits.
GRIMSIM_INLINE void add_on_rows(vf v, unsigned mask, float* band) {
#if defined(__AVX512F__) && GRIMSIM_SIMD_BYTES == 64
  const __m512 e =
      _mm512_maskz_expand_ps(static_cast<__mmask16>(mask), reinterpret_cast<__m512>(v));
  _mm512_store_ps(band, _mm512_add_ps(_mm512_load_ps(band), e));
#else
  float t[L];
  store(t, v);
  for (int i = 0; i < L && mask != 0; ++i) {
    band[__builtin_ctz(mask)] += t[i];
    mask &= mask - 1;
  }
#endif
}

template <int T, class Idx>
void fold_tile(const float* GRIMSIM_RESTRICT vals, const Idx* GRIMSIM_RESTRICT cols, i64 r,
               i64 c, unsigned mask, const float* GRIMSIM_RESTRICT x, i64 ldx, FoldBand& band) {
  // independent accumulator sets hide the FMA latency for small T
  constexpr int S = T >= 4 ? 1 : T >= 2 ? 2 : 4;
  // groups of L kept rows (one on 16-lane tiers, the only ones that fold: r <= 16)
  unsigned rest = mask;
  for (i64 a = 0; a < r; a += L) {
    const i64 rn = r - a < L ? r - a : L;
    const unsigned lanes = (1u << rn) - 1u;  // rn <= 16
    vf acc[S][T];
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s)
#pragma GCC unroll 8
      for (int j = 0; j < T; ++j) acc[s][j] = zero();
    const float* va = vals + a;
    const Idx* ck = cols;
    auto column = [&](int s) GRIMSIM_LAMBDA_INLINE {
      const vf v = load_masked(va, lanes);
      const float* xr = x + static_cast<i64>(*ck) * ldx;
#pragma GCC unroll 8
      for (int j = 0; j < T; ++j) acc[s][j] = fma(v, set1(xr[j]), acc[s][j]);
      va += r;
      ++ck;
    };
    i64 k = S;
    for (; k <= c; k += S) {
#pragma GCC unroll 4
      for (int s = 0; s < S; ++s) column(s);
    }
    for (k -= S; k < c; ++k) column(0);
    // the group's rows: the next rn set bits of the mask
    unsigned sm = rest;
    if (rn == r) {
      rest = 0;
    } else {
      for (i64 i = 0; i < rn; ++i) rest &= rest - 1;
      sm ^= rest;
    }
#pragma GCC unroll 8
    for (int j = 0; j < T; ++j) {
      vf sum = acc[0][j];
#pragma GCC unroll 4
      for (int s = 1; s < S; ++s) sum = sum + acc[s][j];
      add_on_rows(sum, sm, band.acc[j]);
    }
  }
}

template <class Idx>
using FoldFn = void (*)(const float*, const Idx*, i64, i64, unsigned, const float*, i64,
                        FoldBand&);

// fold_tile by T (null for 0)
template <class Idx>
struct FoldTable {
  static constexpr FoldFn<Idx> fn[kFoldMax + 1] = {nullptr,
                                                   &fold_tile<1, Idx>,
                                                   &fold_tile<2, Idx>,
                                                   &fold_tile<3, Idx>,
                                                   &fold_tile<4, Idx>,
                                                   &fold_tile<5, Idx>,
                                                   &fold_tile<6, Idx>,
                                                   &fold_tile<7, Idx>};
};

// Panels visit W in K chunks (Panel::kc; one chunk when 0): per chunk, every unit's tiles that
// start in it (tiles are sorted by first column within a unit; a tile reaching past the chunk
// runs whole, and the last chunk takes whatever is left). With one chunk each unit's Y rows
// stay in L1 over its tiles, with several the units' Y rows stay in L2 across chunks. Units
// go in groups of kGroup (a task usually holds fewer), whose stream cursors live on the stack.
template <class Idx>
void stream_panel_typed(const BcrStream& w, i64 u0, i64 u1, const Panel& p) {
  SplitCache splits(p.nv);
  NextPanel next(p);
  const i64 total = w.unit_offset[u1] - w.unit_offset[u0];
  const i64 kc = p.kc > 0 ? p.kc : w.cols;
  const LeanPanel<Idx> lean(p);
  const FoldFn<Idx> fold =
      p.fold > 0 && p.fold <= kFoldMax ? FoldTable<Idx>::fn[p.fold] : nullptr;
  const float* x_fold = p.x + p.nv * L;
  FoldBand band;
  constexpr i64 kGroup = 256;
  const unsigned char* cursor[kGroup];
  i64 done = 0;
  for (i64 g0 = u0; g0 < u1; g0 += kGroup) {
    const i64 g1 = u1 - g0 < kGroup ? u1 : g0 + kGroup;
    for (i64 u = g0; u < g1; ++u) cursor[u - g0] = w.stream + w.unit_offset[u];
    for (i64 k1 = kc;; k1 += kc) {
      const bool last = k1 >= w.cols;
      for (i64 u = g0; u < g1; ++u) {
        const unsigned char* q = cursor[u - g0];
        const unsigned char* end = w.stream + w.unit_offset[u + 1];
        float* yband = p.y + (w.unit_row0[u] - p.y_row0) * p.ldy;
        if (fold != nullptr) band.clear(p.fold);
        while (q < end) {
          const Record<Idx> rec = read_record<Idx>(q);
          if (!last && static_cast<i64>(rec.cols[0]) >= k1) break;
          if (rec.c > 0 && lean.takes(rec.r)) {
            lean.run(rec, yband);
          } else {
            std::uint8_t rows[16];
            mask_rows(rec.mask, rows);
            panel_tile<true>(rec.r, rec.c, rec.vals, rec.cols, rows, w.unit_row0[u], p, splits);
          }
          if (fold != nullptr && rec.c > 0 && rec.r > 0)
            fold(rec.vals, rec.cols, rec.r, rec.c, rec.mask, x_fold, p.ldx, band);
          // Progress by stream position: the record's work ends where the next one starts.
          done += rec.next - q;
          next.advance(done, total);
          q = rec.next;
        }
        cursor[u - g0] = q;
        if (fold != nullptr)
          band.add_to(yband + p.nv * L, p.ldy, w.unit_row0[u + 1] - w.unit_row0[u], p.fold);
      }
      if (last) break;
    }
  }
  next.advance(total, total);
}

void stream_dispatch(const BcrStream& w, i64 u0, i64 u1, const Panel* p, const float* x, i64 n,
                     float* y) {
  if (w.col_bytes == 2) {
    if (p)
      stream_panel_typed<std::uint16_t>(w, u0, u1, *p);
    else
      stream_narrow_typed<std::uint16_t>(w, u0, u1, x, n, y);
  } else {
    if (p)
      stream_panel_typed<std::uint32_t>(w, u0, u1, *p);
    else
      stream_narrow_typed<std::uint32_t>(w, u0, u1, x, n, y);
  }
}

// The sub-range [*i0, *i1) of a block's sorted row list rows[0..r) inside rows [lo, hi).
GRIMSIM_INLINE void band_range(const std::int32_t* rows, i64 r, i64 lo, i64 hi, i64* i0,
                               i64* i1) {
  i64 a = 0;
  while (a < r && rows[a] < lo) ++a;
  i64 b = a;
  while (b < r && rows[b] < hi) ++b;
  *i0 = a;
  *i1 = b;
}

// Calls fn(r, c, vals, cols, rows) for the part of every block of units [u0, u1) inside the
// unit's band (row-major values: a band's rows are a contiguous run of the block's values).
template <class Fn>
GRIMSIM_INLINE void walk_raw(const BcrRaw& w, i64 u0, i64 u1, Fn&& fn) {
  for (i64 u = u0; u < u1; ++u) {
    const i64 br = u / w.bands, band = u % w.bands;
    const i64 lo = br * w.block_rows + band * sparse_detail::kBandRows;
    const i64 hi = lo + sparse_detail::kBandRows;
    for (i64 b = w.block_row_ptr[br]; b < w.block_row_ptr[br + 1]; ++b) {
      const std::int32_t* rows = w.row_idx + w.row_ptr[b];
      const i64 r = w.row_ptr[b + 1] - w.row_ptr[b];
      const i64 c = w.col_ptr[b + 1] - w.col_ptr[b];
      i64 i0 = 0, i1 = r;
      if (w.bands > 1) band_range(rows, r, lo, hi, &i0, &i1);
      if (i1 > i0)
        fn(i1 - i0, c, w.values + w.val_ptr[b] + i0 * c, w.col_idx + w.col_ptr[b], rows + i0);
    }
  }
}

}  // namespace

int sparse_lanes() { return L; }

bool bcr_stream_masked_tail() {
#if defined(__AVX512F__)
  return L == 16;
#else
  return false;
#endif
}

void bcr_raw_panel(const BcrRaw& w, i64 u0, i64 u1, const Panel& p) {
  SplitCache splits(p.nv);
  NextPanel next(p);
  i64 total = 0, done = 0;  // blocks visited (once per band), the progress measure
  for (i64 u = u0; u < u1; ++u)
    total += w.block_row_ptr[u / w.bands + 1] - w.block_row_ptr[u / w.bands];
  walk_raw(w, u0, u1,
           [&](i64 r, i64 c, const float* vals, const std::int32_t* cols,
               const std::int32_t* rows) {
             panel_tile<false>(r, c, vals, cols, rows, i64{0}, p, splits);
             next.advance(++done, total);
           });
  next.advance(total, total);
}

void bcr_raw_narrow(const BcrRaw& w, i64 u0, i64 u1, const float* x, i64 n, float* y) {
  // Row-major blocks: each kept row is a dot product over the block's kept columns; the
  // columns' x values are gathered once per block into a small contiguous buffer.
  constexpr i64 kChunk = 64;
  float xg[kChunk];
  walk_raw(w, u0, u1,
           [&](i64 r, i64 c, const float* vals, const std::int32_t* cols,
               const std::int32_t* rows) {
             for (i64 j = 0; j < n; ++j)
               for (i64 k0 = 0; k0 < c; k0 += kChunk) {
                 const i64 kc = c - k0 < kChunk ? c - k0 : kChunk;
                 for (i64 k = 0; k < kc; ++k) xg[k] = x[static_cast<i64>(cols[k0 + k]) * n + j];
                 for (i64 i = 0; i < r; ++i) {
                   const float* v = vals + i * c + k0;
                   vf s = zero();
                   i64 k = 0;
                   for (; k + L <= kc; k += L) s = fma(load(v + k), load(xg + k), s);
                   float t = hsum(s);
                   for (; k < kc; ++k) t += v[k] * xg[k];
                   y[static_cast<i64>(rows[i]) * n + j] += t;
                 }
               }
           });
}

void bcr_stream_panel(const BcrStream& w, i64 u0, i64 u1, const Panel& p) {
  stream_dispatch(w, u0, u1, &p, nullptr, 0, nullptr);
}

void bcr_stream_narrow(const BcrStream& w, i64 u0, i64 u1, const float* x, i64 n, float* y) {
  stream_dispatch(w, u0, u1, nullptr, x, n, y);
}

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
