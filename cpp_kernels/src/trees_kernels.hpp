// Per-SIMD-tier loops of the oblivious-tree answers (defined in trees.simd.cpp, called
// through GRIMSIM_DISPATCH from trees.cpp, which validates the arguments first).
#pragma once
#include <cstdint>

#include "grimsim/simd.hpp"

namespace grimsim {

// out[i] += the trees' leaves for rows i < n_out of x: row r at x + offset(r), feature f at
// + f * col_stride, where offset(r) = rows[r] * row_stride if rows is not null, else
// r * row_stride. Arguments are already validated.
GRIMSIM_MV_DECLARE(void oblivious_sum(const double* x, std::int64_t row_stride,
                                      std::int64_t col_stride, const std::int64_t* rows,
                                      std::int64_t n_out, const std::int64_t* features,
                                      const double* thresholds, const double* leaves,
                                      std::int64_t n_trees, int depth, double* out))

}  // namespace grimsim
