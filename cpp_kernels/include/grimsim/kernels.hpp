// grimsim kernels: Y = W @ X in fp32, W the M x K GEMM view of a layer, X the K x N activations.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace grimsim {

// Thrown when an argument is invalid; the bindings turn it into Python's ValueError.
struct InvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Reference dense GEMM (row-major, contiguous): y[M x N] = w[M x K] @ x[K x N].
// Straightforward loop order i-k-j so the compiler vectorises along N; the tuned kernels
// are checked against this one.
void dense_gemm_reference(const float* w, const float* x, float* y, std::int64_t M,
                          std::int64_t K, std::int64_t N);

}  // namespace grimsim
