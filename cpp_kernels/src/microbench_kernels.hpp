// Inner loops of the host microbenchmarks, one build per SIMD tier (microbench.simd.cpp).
#pragma once
#include <cstdint>

#include "grimsim/simd.hpp"

namespace grimsim {
GRIMSIM_MV_DECLARE(std::int64_t fma_loop(std::int64_t iterations, float* sink))
GRIMSIM_MV_DECLARE(float stream_sum(const float* p, std::int64_t n))
GRIMSIM_MV_DECLARE(int simd_tier_lanes())
}  // namespace grimsim
