// grimsim/trees.hpp -- answers of the learned correction's oblivious trees (grimsim.cost.
// learned.ObliviousEnsemble) for a batch of feature rows.
//
// An oblivious tree of depth D asks the same question at every node of a level: a row goes
// right at level d when x[features[d]] > thresholds[d], and its leaf index has bit d set
// then (a NaN feature goes left). The cost queries (`grimsim.estimate`, the search) answer
// hundreds of thousands of rows a second through a few hundred such trees; numpy's pass per
// tree level over the whole batch was half the time of a calibrated query.
#pragma once
#include <cstdint>

namespace grimsim {

// Deepest tree oblivious_predict takes (leaf indices fit 16 bits).
constexpr int kMaxTreeDepth = 16;

// out[i] += sum over trees t of leaves[t * 2^depth + leaf_t(row r_i)] for i < n_out, where
// r_i = rows[i] (or i when rows is null, and then n_out == n_rows): row r, feature f of x
// lies at x[r * row_stride + f * col_stride] (columns contiguous, row_stride 1, is the fast
// layout). features and thresholds are n_trees x depth (row-major), leaves
// n_trees x 2^depth. Throws InvalidArgument, before reading x, on a negative size, a depth
// outside [0, kMaxTreeDepth], or a feature or row index out of range.
void oblivious_predict(const double* x, std::int64_t n_rows, std::int64_t n_cols,
                       std::int64_t row_stride, std::int64_t col_stride,
                       const std::int64_t* rows, std::int64_t n_out,
                       const std::int64_t* features, const double* thresholds,
                       const double* leaves, std::int64_t n_trees, int depth, double* out);

}  // namespace grimsim
