// Internal interface between the sparse kernels' driver code (csr.cpp, bcr.cpp, ...: checks,
// scratch, threads) and their SIMD inner loops (*.simd.cpp, compiled once per ISA tier).
// Plain structs of raw pointers only: the SIMD translation units must not instantiate inline
// functions that baseline code could share (see grimsim/simd.hpp).
#pragma once
#include <cstdint>

#include "grimsim/simd.hpp"

namespace grimsim::sparse_detail {

// Rows of a BCR block row are processed in bands of at most kBandRows rows (the kernels'
// "units"): bounded register-tile bookkeeping, and threads for a single tall block (filter
// and column pruning are stored as one M x K block).
constexpr std::int64_t kBandRows = 64;

// The BCR arrays as given by the caller (validated): row-major kept sub-blocks. Unit u is
// band u % bands of block row u / bands, rows [br*R + band*kBandRows, ...) within the block row.
struct BcrRaw {
  std::int64_t rows, cols, block_rows, block_cols, bands;
  const std::int32_t* block_row_ptr;
  const std::int32_t* block_col;
  const std::int32_t* row_ptr;
  const std::int32_t* row_idx;
  const std::int32_t* col_ptr;
  const std::int32_t* col_idx;
  const std::int64_t* val_ptr;
  const float* values;
};

// Rows per unit of the packed stream: a tile's rows in its band are a 16-bit mask.
constexpr std::int64_t kPackedBandRows = 16;

// The packed BCR stream (see BcrPacked in grimsim/sparse.hpp). Unit (band) u covers rows
// [unit_row0[u], unit_row0[u + 1]) (at most 16) and is the byte range
// [unit_offset[u], unit_offset[u + 1]) of `stream`, a sequence of tile records:
//   uint16 row mask over the band's rows | uint16 r (= popcount) | uint16 c |
//   uint16 record length in 4-byte words |
//   col index[c] (uint16 if col_bytes == 2 else uint32), zero-padded to a multiple of 4 bytes |
//   float values[c][r] (column-major) + (ceil(r/8)*8 - r) zero floats.
// The narrow-N kernels read whole 8- (or 4-) float vectors from each column's first value;
// the padding keeps the last column's read inside the record. Tiles hold at most
// kMaxTileCols columns (wider merged tiles are split), so the sizes fit 16 bits.
// 256 rather than the 16-bit limit: a wide merged tile (filter or column pruning) then
// yields records that fit the panel kernel's K chunks (bcr_panel_layout), so their X rows are read
// from L2, not L3 (filter:0.5 on 512x512x3136 at 48-vector tiles: 13.6 -> 11.2 ms on Zen 3).
constexpr std::int64_t kMaxTileCols = 256;
struct BcrStream {
  std::int64_t rows, cols;
  const std::int64_t* unit_row0;
  const std::int64_t* unit_offset;
  const unsigned char* stream;
  int col_bytes;
};

// Floats a packed tile stores for its values, padding included (packer and kernels agree).
// (static: internal linkage, so SIMD and baseline units never share one compiled copy.)
static inline std::int64_t packed_values_floats(std::int64_t r, std::int64_t c) {
  return r * c + ((r + 7) / 8) * 8 - r;
}
static inline std::int64_t round4(std::int64_t bytes) { return (bytes + 3) & ~std::int64_t{3}; }

struct CsrRaw {
  std::int64_t rows, cols;
  const std::int32_t* indptr;
  const std::int32_t* indices;
  const float* data;
};

struct NmRaw {
  std::int64_t rows, cols, n, m;
  const float* values;
  const std::int32_t* indices;
};

struct PatternRaw {
  std::int64_t rows, cols;
  const std::int32_t* library;
  const std::int32_t* kernel_ptr;
  const std::int32_t* kernel_channel;
  const std::int32_t* kernel_pattern;
  const float* values;
  const std::int32_t* filter_order;
};

// Where a kernel reads X and writes Y: X row k starts at x + k * ldx, Y row i at
// y + (i - y_row0) * ldy; `nv` vectors of the tier's width are computed (the caller pads).
// row_map (pattern only; null = identity) maps a kernel's output position to its Y row.
struct Panel {
  const float* x;
  std::int64_t ldx;
  float* y;
  std::int64_t ldy;
  std::int64_t y_row0;
  std::int64_t nv;
  const std::int32_t* row_map;
  // The X tile this thread is likely to run next (pf_x null: none): rows [pf_row0, pf_row1),
  // pf_bytes each, row k at pf_x + k * pf_ldx. The kernels prefetch them as their work
  // advances (next_panel.hpp), so a panel whose X comes from DRAM arrives while the one before
  // it is computed (run_panels sets them for short runs; see PanelLayout::prefetch_next).
  const float* pf_x = nullptr;
  std::int64_t pf_ldx = 0, pf_row0 = 0, pf_row1 = 0, pf_bytes = 0;
  // Packed BCR: the units' tiles are visited in chunks of kc columns of W (rows of X), all
  // units per chunk, so the chunk's X rows stay in L2 (0: each unit's tiles in one go).
  std::int64_t kc = 0;
  // Valid floats in the panel's last vector when N's ragged end is computed in place (packed
  // BCR on tiers with masked loads, bcr_stream_masked_tail); 0: every vector is whole.
  std::int64_t tail = 0;
  // Packed BCR: columns [nv * lanes, nv * lanes + fold) of X and Y, N's ragged end of 1-7
  // columns, computed per tile beside the whole vectors (0: none).
  std::int64_t fold = 0;
};

}  // namespace grimsim::sparse_detail

namespace grimsim {
// Floats per vector of the tier (the drivers size N tiles with it).
GRIMSIM_MV_DECLARE(int sparse_lanes())
// Whether bcr_stream_panel can compute a ragged last vector in place (Panel::tail): tiers
// with masked loads and stores that cost no more than whole ones (AVX-512).
GRIMSIM_MV_DECLARE(bool bcr_stream_masked_tail())
// BCR, raw arrays: units [u0, u1); y += W x over the panel (y zeroed by the caller).
GRIMSIM_MV_DECLARE(void bcr_raw_panel(const sparse_detail::BcrRaw& w, std::int64_t u0,
                                      std::int64_t u1, const sparse_detail::Panel& p))
// BCR, raw arrays, any N (meant for N < lanes): y rows of units [u0, u1) += W x; y zeroed.
GRIMSIM_MV_DECLARE(void bcr_raw_narrow(const sparse_detail::BcrRaw& w, std::int64_t u0,
                                       std::int64_t u1, const float* x, std::int64_t n,
                                       float* y))
// BCR, packed stream: the same two paths.
GRIMSIM_MV_DECLARE(void bcr_stream_panel(const sparse_detail::BcrStream& w, std::int64_t u0,
                                         std::int64_t u1, const sparse_detail::Panel& p))
GRIMSIM_MV_DECLARE(void bcr_stream_narrow(const sparse_detail::BcrStream& w, std::int64_t u0,
                                          std::int64_t u1, const float* x, std::int64_t n,
                                          float* y))
// CSR / N:M / pattern, rows [i0, i1) (pattern: positions in filter_order), y zeroed by the
// callee for those rows; over the panel's columns (nv vectors) ...
GRIMSIM_MV_DECLARE(void csr_rows_panel(const sparse_detail::CsrRaw& w, std::int64_t i0,
                                       std::int64_t i1, const sparse_detail::Panel& p))
GRIMSIM_MV_DECLARE(void nm_rows_panel(const sparse_detail::NmRaw& w, std::int64_t i0,
                                      std::int64_t i1, const sparse_detail::Panel& p))
GRIMSIM_MV_DECLARE(void pattern_rows_panel(const sparse_detail::PatternRaw& w, std::int64_t i0,
                                           std::int64_t i1, const sparse_detail::Panel& p))
// ... or for narrow N (any n, meant for n < lanes) straight on x (K x n) and y (M x n).
GRIMSIM_MV_DECLARE(void csr_rows_narrow(const sparse_detail::CsrRaw& w, std::int64_t i0,
                                        std::int64_t i1, const float* x, std::int64_t n,
                                        float* y))
GRIMSIM_MV_DECLARE(void nm_rows_narrow(const sparse_detail::NmRaw& w, std::int64_t i0,
                                       std::int64_t i1, const float* x, std::int64_t n,
                                       float* y))
GRIMSIM_MV_DECLARE(void pattern_rows_narrow(const sparse_detail::PatternRaw& w, std::int64_t i0,
                                            std::int64_t i1, const float* x, std::int64_t n,
                                            float* y))
}  // namespace grimsim
