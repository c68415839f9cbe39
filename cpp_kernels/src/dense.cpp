#include "grimsim/kernels.hpp"

#include <algorithm>

namespace grimsim {

void dense_gemm_reference(const float* w, const float* x, float* y, std::int64_t M,
                          std::int64_t K, std::int64_t N) {
  if (M < 0 || K < 0 || N < 0) throw InvalidArgument("negative GEMM dimension");
  std::fill(y, y + M * N, 0.0f);
  for (std::int64_t i = 0; i < M; ++i) {
    float* yrow = y + i * N;
    for (std::int64_t k = 0; k < K; ++k) {
      const float a = w[i * K + k];
      const float* xrow = x + k * N;
      for (std::int64_t j = 0; j < N; ++j) yrow[j] += a * xrow[j];
    }
  }
}

}  // namespace grimsim
