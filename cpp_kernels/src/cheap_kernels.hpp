// Per-tier inner loops of the cheap ops (cheap.simd.cpp), called from cheap.cpp.
#pragma once
#include <cstdint>

#include "grimsim/simd.hpp"

namespace grimsim {

// y[0..n) = f(x[0..n)) for the activation `kind` (a grimsim::Unary value).
GRIMSIM_MV_DECLARE(void unary_span(int kind, float alpha, const float* x, float* y,
                                   std::int64_t n))

// One (len, inner) slice of a softmax; scratch holds 2 * inner floats when inner > 1.
GRIMSIM_MV_DECLARE(void softmax_slice(const float* x, float* y, std::int64_t len,
                                      std::int64_t inner, float* scratch))

// Softmax of `rows` contiguous rows of `len` values each.
GRIMSIM_MV_DECLARE(void softmax_rows(const float* x, float* y, std::int64_t rows,
                                     std::int64_t len))

// y[0..n) = x[0..n) * scale + shift.
GRIMSIM_MV_DECLARE(void affine_span(const float* x, float* y, std::int64_t n, float scale,
                                    float shift))

// y[0..n) = a[0..n) * (1 - t) + b[0..n) * t.
GRIMSIM_MV_DECLARE(void blend_span(const float* a, const float* b, float t, float* y,
                                   std::int64_t n))

// One row of a layer norm (gamma, beta may be null).
GRIMSIM_MV_DECLARE(void layernorm_row(const float* x, float* y, std::int64_t dim,
                                      const float* gamma, const float* beta, float eps))

// LRN across channels of one image (x, y at its first channel) over plane positions
// [p0, p1).
GRIMSIM_MV_DECLARE(void lrn_span(const float* x, float* y, std::int64_t channels,
                                 std::int64_t plane, std::int64_t p0, std::int64_t p1,
                                 std::int64_t size, float alpha, float beta, float k))

}  // namespace grimsim
