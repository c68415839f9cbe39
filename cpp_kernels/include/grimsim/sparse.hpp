// Sparse kernels: Y[M x N] = W[M x K] @ X[K x N] in fp32 with W in one of the compact formats
// of grimsim.pruning (CSR, BCR, pattern, N:M; the layouts are described in the Python module
// and mirrored in the structs below). X and Y are row-major and contiguous.
//
// Every kernel's entry point validates its format first (validate_*; O(format size)) and only
// then touches X, Y or the value arrays: an out-of-range or unsorted index, a wrong length or a
// non-monotone pointer array throws InvalidArgument naming the array, the position and the
// reason. The *_unchecked variants skip that pass for callers that validated once already (a
// packed object, a benchmark loop).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "grimsim/dense.hpp"
#include "grimsim/kernels.hpp"

namespace grimsim {

// A read-only view of a contiguous array (pointer + element count); never owns memory.
template <class T>
struct ArrayView {
  const T* data = nullptr;
  std::int64_t size = 0;
  const T& operator[](std::int64_t i) const { return data[i]; }
};

// ---------------------------------------------------------------------------------------------
// CSR (unstructured): indptr int32[M+1], indices int32[nnz] sorted within a row, data f32[nnz].
struct CsrMatrix {
  std::int64_t rows = 0, cols = 0;
  ArrayView<std::int32_t> indptr, indices;
  ArrayView<float> data;
};
void validate_csr(const CsrMatrix& w);
// Scalar, obviously-correct version the optimised kernels are tested against.
void csr_spmm_reference(const CsrMatrix& w, const float* x, std::int64_t n, float* y);
void csr_spmm(const CsrMatrix& w, const float* x, std::int64_t n, float* y, int threads);
void csr_spmm_unchecked(const CsrMatrix& w, const float* x, std::int64_t n, float* y,
                        int threads);

// ---------------------------------------------------------------------------------------------
// BCR (block-based column-row) with blocks of block_rows x block_cols; only non-empty blocks
// are stored, CSR-style over block rows. Row/column indices are absolute; each block's kept
// sub-block is dense row-major at values[val_ptr[b]] (starts are multiples of 16 floats).
// reorder is a block-row-major permutation of 0..M-1 grouping rows with equal column sets.
struct BcrMatrix {
  std::int64_t rows = 0, cols = 0, block_rows = 0, block_cols = 0;
  ArrayView<std::int32_t> block_row_ptr, block_col, row_ptr, row_idx, col_ptr, col_idx;
  ArrayView<std::int64_t> val_ptr;
  ArrayView<float> values;
  ArrayView<std::int32_t> reorder;
  std::int64_t n_block_rows() const {
    return block_rows > 0 ? (rows + block_rows - 1) / block_rows : 0;
  }
  std::int64_t n_block_cols() const {
    return block_cols > 0 ? (cols + block_cols - 1) / block_cols : 0;
  }
  std::int64_t n_blocks() const { return block_col.size; }
};
void validate_bcr(const BcrMatrix& w);
void bcr_spmm_reference(const BcrMatrix& w, const float* x, std::int64_t n, float* y);
void bcr_spmm(const BcrMatrix& w, const float* x, std::int64_t n, float* y, int threads);
void bcr_spmm_unchecked(const BcrMatrix& w, const float* x, std::int64_t n, float* y,
                        int threads);

// A BCR matrix converted once into the kernels' own streamed layout (validated at pack time).
// Rows of a block row that share their whole column set (the reorder groups, found from the
// blocks themselves) and make up every block they are kept in are merged into one wide tile,
// so they load their X rows and update Y once for all those blocks (load-redundancy
// elimination: block-punched pruning becomes one dense tile per block row; filter and column
// pruning arrive as a single M x K block already). Other blocks stay tiles of their own. Rows
// are stored in bands of at most 16 rows (the threads' work units); each band is one
// contiguous run of tile records [row mask, sizes | column indices | values column-major], so
// the small-N path streams it once.
//
// A single block covering the whole matrix (filter and column pruning) is instead packed as
// the dense GEMM it is: its kept rows x kept columns in the dense kernel's panels, X's kept
// rows read in place while B is packed, and Y's kept rows placed after the product. (In
// 16-row bands of the original rows, filter pruning at 50 % left ~8 rows per band: 64 x 576 x
// 3136 ran at 0.76x numpy's dense time instead of ~2x.)
class BcrPacked {
 public:
  static BcrPacked pack(const BcrMatrix& w);  // validates w first
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t nnz() const { return nnz_; }
  std::int64_t n_tiles() const { return n_tiles_; }
  std::int64_t nbytes() const;  // memory held by the packed layout
  // y[M x n] = W @ x[K x n] (x, y row-major and contiguous; the caller checks their shapes).
  void spmm(const float* x, std::int64_t n, float* y, int threads) const;

  // Layout (public so tests can inspect it; the tile record is described in
  // src/sparse_simd.hpp): band u covers rows [unit_row0_[u], unit_row0_[u+1]) and is the byte
  // range [unit_offset_[u], unit_offset_[u+1]) of stream_; work_ holds prefix sums of
  // multiply-adds per band, used to balance threads.
  std::int64_t rows_ = 0, cols_ = 0, nnz_ = 0, n_tiles_ = 0;
  std::int64_t tile_cols_ = 0;  // kept columns summed over tiles (X rows read per N tile)
  int col_bytes_ = 4;
  std::vector<std::int64_t> unit_row0_, unit_offset_, work_;
  std::vector<std::uint32_t> stream_;
  // The single-block layout (dense_ holds the kept rows x kept columns in GEMM panels for
  // N > 1, dense_values_ row-major for the GEMV, whose row kernel streams rows faster than
  // the panels; empty otherwise). dense_cols_: the kept columns in the block's order;
  // dense_slot_: per row of Y, its row of the product or -1 (pruned). Each is empty when
  // the block keeps all rows (columns) in order, so that side needs no placing (gathering).
  bool single_block_ = false;
  PackedGemmWeights dense_;
  AlignedArray<float> dense_values_;
  std::vector<std::int64_t> dense_slot_, dense_cols_;

 private:
  void spmm_single_block(const float* x, std::int64_t n, float* y, int threads) const;
};

// ---------------------------------------------------------------------------------------------
// Pattern (3x3 conv, 4 of 9 positions kept per kernel), K = Cin * 9.
struct PatternMatrix {
  std::int64_t rows = 0, cols = 0;
  ArrayView<std::int32_t> library;  // [P, 4]
  ArrayView<std::int32_t> kernel_ptr, kernel_channel, kernel_pattern;
  ArrayView<float> values;  // [nk, 4]
  ArrayView<std::int32_t> filter_order;
  std::int64_t n_patterns() const { return library.size / 4; }
};
void validate_pattern(const PatternMatrix& w);
void pattern_spmm_reference(const PatternMatrix& w, const float* x, std::int64_t n, float* y);
void pattern_spmm(const PatternMatrix& w, const float* x, std::int64_t n, float* y, int threads);
void pattern_spmm_unchecked(const PatternMatrix& w, const float* x, std::int64_t n, float* y,
                            int threads);

// ---------------------------------------------------------------------------------------------
// N:M along K: groups of m consecutive columns keep at most n; values f32[M, G, n] and
// indices int32[M, G, n] (position in the group, strictly increasing), G = ceil(K / m).
struct NmMatrix {
  std::int64_t rows = 0, cols = 0, n = 0, m = 0;
  ArrayView<float> values;
  ArrayView<std::int32_t> indices;
  std::int64_t groups() const { return m ? (cols + m - 1) / m : 0; }
};
void validate_nm(const NmMatrix& w);
void nm_spmm_reference(const NmMatrix& w, const float* x, std::int64_t n, float* y);
void nm_spmm(const NmMatrix& w, const float* x, std::int64_t n, float* y, int threads);
void nm_spmm_unchecked(const NmMatrix& w, const float* x, std::int64_t n, float* y,
                       int threads);

}  // namespace grimsim
