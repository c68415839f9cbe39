// CSR SpMM / SpMV: validation, scalar reference and the threaded kernel.
#include <algorithm>
#include <cstring>

#include "cache_sizes.hpp"
#include "sparse_checks.hpp"
#include "sparse_driver.hpp"

namespace grimsim {

using detail::fail;

void validate_csr(const CsrMatrix& w) {
  const char* fmt = "csr";
  detail::check_dims(fmt, w.rows, w.cols);
  detail::check_length(fmt, "data", w.data, w.indices.size);
  detail::check_pointers(fmt, "indptr", w.indptr, w.rows, w.indices.size, "indices");
  for (std::int64_t i = 0; i < w.rows; ++i)
    detail::check_sorted_range(fmt, "indices", w.indices, w.indptr[i], w.indptr[i + 1], 0,
                               w.cols, [&] { return "row " + std::to_string(i) + "'s columns"; });
}

void csr_spmm_reference(const CsrMatrix& w, const float* x, std::int64_t n, float* y) {
  std::fill(y, y + w.rows * n, 0.0f);
  for (std::int64_t i = 0; i < w.rows; ++i)
    for (std::int64_t p = w.indptr[i]; p < w.indptr[i + 1]; ++p) {
      const float a = w.data[p];
      const float* xr = x + static_cast<std::int64_t>(w.indices[p]) * n;
      for (std::int64_t j = 0; j < n; ++j) y[i * n + j] += a * xr[j];
    }
}

void csr_spmm_unchecked(const CsrMatrix& w, const float* x, std::int64_t n, float* y,
                        int threads) {
  if (w.rows == 0 || n == 0) return;
  const sparse_detail::CsrRaw raw{w.rows, w.cols, w.indptr.data, w.indices.data, w.data.data};
  const SimdLevel level = simd_runtime_level();
  const int lanes = GRIMSIM_DISPATCH_AT(level, sparse_lanes);
  // Work per row: its nonzeros plus a fixed cost; indptr is the prefix sum already.
  std::vector<std::int64_t> prefix;
  if (threads > 1) {
    prefix.resize(static_cast<std::size_t>(w.rows) + 1);
    for (std::int64_t i = 0; i <= w.rows; ++i)
      prefix[static_cast<std::size_t>(i)] = std::int64_t{w.indptr[i]} + 4 * i;
  }
  if (n < lanes) {
    sparse_detail::run_chunks(w.rows, prefix, threads, [&](std::int64_t i0, std::int64_t i1) {
      GRIMSIM_DISPATCH_AT(level, csr_rows_narrow, raw, i0, i1, x, n, y);
    });
    return;
  }
  auto identity = [](std::int64_t u) { return u; };
  sparse_detail::run_panels(w.rows, w.cols, w.rows, identity, prefix, x, n, n, y, threads, lanes,
                            true, nullptr, std::int64_t{w.indptr[w.rows]},
                            sparse_detail::row_kernel_layout(w.cols, n, lanes, cache_sizes().l2),
                            [&](std::int64_t i0, std::int64_t i1, const sparse_detail::Panel& p) {
                              GRIMSIM_DISPATCH_AT(level, csr_rows_panel, raw, i0, i1, p);
                            });
}

void csr_spmm(const CsrMatrix& w, const float* x, std::int64_t n, float* y, int threads) {
  validate_csr(w);
  detail::check_gemm_args("csr", x, y, n, threads);
  csr_spmm_unchecked(w, x, n, y, threads);
}

}  // namespace grimsim
