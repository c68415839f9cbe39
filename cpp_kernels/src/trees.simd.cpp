// The oblivious-tree loops for one SIMD tier (see trees_kernels.hpp).
#include <cstdint>

#include "grimsim/simd.hpp"
#include "trees_kernels.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

namespace {

constexpr std::int64_t kBlock = 512;

// Rows in blocks whose leaf indices stay in L1 across all trees. `at(i)` is the offset of
// the block's row i in a column; with contiguous columns each level is one compare loop
// the compiler vectorises (8 doubles a compare on AVX-512).
template <class At>
void blocks(const double* x, std::int64_t col_stride, std::int64_t n_out,
            const std::int64_t* features, const double* thresholds, const double* leaves,
            std::int64_t n_trees, int depth, double* out, At at) {
  const std::int64_t n_leaves = std::int64_t{1} << depth;
  std::uint32_t leaf[kBlock];
  for (std::int64_t r0 = 0; r0 < n_out; r0 += kBlock) {
    const std::int64_t b = n_out - r0 < kBlock ? n_out - r0 : kBlock;
    for (std::int64_t t = 0; t < n_trees; ++t) {
      for (std::int64_t i = 0; i < b; ++i) leaf[i] = 0u;
      for (int d = 0; d < depth; ++d) {
        const double* GRIMSIM_RESTRICT col = x + features[t * depth + d] * col_stride;
        const double thr = thresholds[t * depth + d];
        const std::uint32_t bit = std::uint32_t{1} << d;
        for (std::int64_t i = 0; i < b; ++i) leaf[i] |= col[at(r0 + i)] > thr ? bit : 0u;
      }
      const double* lt = leaves + t * n_leaves;
      double* GRIMSIM_RESTRICT o = out + r0;
      for (std::int64_t i = 0; i < b; ++i) o[i] += lt[leaf[i]];
    }
  }
}

}  // namespace

void oblivious_sum(const double* x, std::int64_t row_stride, std::int64_t col_stride,
                   const std::int64_t* rows, std::int64_t n_out, const std::int64_t* features,
                   const double* thresholds, const double* leaves, std::int64_t n_trees,
                   int depth, double* out) {
  if (rows != nullptr)
    blocks(x, col_stride, n_out, features, thresholds, leaves, n_trees, depth, out,
           [rows, row_stride](std::int64_t i) { return rows[i] * row_stride; });
  else if (row_stride == 1)
    blocks(x, col_stride, n_out, features, thresholds, leaves, n_trees, depth, out,
           [](std::int64_t i) { return i; });
  else
    blocks(x, col_stride, n_out, features, thresholds, leaves, n_trees, depth, out,
           [row_stride](std::int64_t i) { return i * row_stride; });
}

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
