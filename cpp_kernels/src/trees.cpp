// Oblivious-tree answers (see grimsim/trees.hpp).
#include "grimsim/trees.hpp"

#include <cstdint>
#include <string>

#include "grimsim/kernels.hpp"
#include "trees_kernels.hpp"

namespace grimsim {

void oblivious_predict(const double* x, std::int64_t n_rows, std::int64_t n_cols,
                       std::int64_t row_stride, std::int64_t col_stride,
                       const std::int64_t* rows, std::int64_t n_out,
                       const std::int64_t* features, const double* thresholds,
                       const double* leaves, std::int64_t n_trees, int depth, double* out) {
  check(n_rows >= 0 && n_cols >= 0 && n_out >= 0 && n_trees >= 0, "sizes must be >= 0");
  check(depth >= 0 && depth <= kMaxTreeDepth,
        "tree depth must be in [0, " + std::to_string(kMaxTreeDepth) + "], got " +
            std::to_string(depth));
  check(rows != nullptr || n_out == n_rows, "without rows, out must have one value per row");
  // (messages built only on failure: these loops run over every row of a query batch)
  for (std::int64_t i = 0; i < n_trees * depth; ++i)
    if (features[i] < 0 || features[i] >= n_cols)
      throw InvalidArgument("tree feature index " + std::to_string(features[i]) +
                            " outside [0, " + std::to_string(n_cols) + ")");
  if (rows != nullptr)
    for (std::int64_t i = 0; i < n_out; ++i)
      if (rows[i] < 0 || rows[i] >= n_rows)
        throw InvalidArgument("row index " + std::to_string(rows[i]) + " outside [0, " +
                              std::to_string(n_rows) + ")");
  if (n_out == 0 || n_trees == 0) return;
  GRIMSIM_DISPATCH(oblivious_sum, x, row_stride, col_stride, rows, n_out, features,
                   thresholds, leaves, n_trees, depth, out);
}

}  // namespace grimsim
