// N:M SpMM (at most n of every m consecutive columns of a row kept): validation, scalar
// reference and the threaded driver.
#include <algorithm>
#include <vector>

#include "cache_sizes.hpp"
#include "sparse_checks.hpp"
#include "sparse_driver.hpp"

namespace grimsim {

using detail::fail;
using sparse_detail::i64;

void validate_nm(const NmMatrix& w) {
  const char* fmt = "nm";
  detail::check_dims(fmt, w.rows, w.cols);
  if (w.m < 1 || w.n < 1 || w.n > w.m || w.m > 256)
    fail("nm: need 1 <= n <= m <= 256, got n=" + std::to_string(w.n) +
         ", m=" + std::to_string(w.m));
  const i64 G = w.groups(), slots = w.rows * G * w.n;
  detail::check_length(fmt, "values", w.values, slots);
  detail::check_length(fmt, "indices", w.indices, slots);
  for (i64 i = 0; i < w.rows; ++i)
    for (i64 g = 0; g < G; ++g) {
      const i64 base = (i * G + g) * w.n;
      i64 prev = -1;
      for (i64 s = 0; s < w.n; ++s) {
        const i64 v = w.indices[base + s];
        auto where = [&] {
          return detail::at(fmt, "indices", base + s) + " (row " + std::to_string(i) +
                 ", group " + std::to_string(g) + ", slot " + std::to_string(s) + ") = " +
                 std::to_string(v);
        };
        if (v < 0 || v >= w.m)
          fail(where() + " is outside the group [0, " + std::to_string(w.m) + ")");
        if (v <= prev)
          fail(where() + " is not greater than the previous slot's " + std::to_string(prev) +
               " (positions must be strictly increasing)");
        // In the last group positions past K are only allowed as empty (zero) slots.
        if (g * w.m + v >= w.cols && w.values[base + s] != 0.0f)
          fail(where() + " points past K = " + std::to_string(w.cols) +
               " but its value is not 0 (only empty slots may lie in the padding)");
        prev = v;
      }
    }
}

void nm_spmm_reference(const NmMatrix& w, const float* x, i64 n, float* y) {
  std::fill(y, y + w.rows * n, 0.0f);
  const i64 G = w.groups();
  for (i64 i = 0; i < w.rows; ++i)
    for (i64 g = 0; g < G; ++g)
      for (i64 s = 0; s < w.n; ++s) {
        const i64 slot = (i * G + g) * w.n + s;
        const i64 col = g * w.m + w.indices[slot];
        if (col >= w.cols) continue;
        for (i64 j = 0; j < n; ++j) y[i * n + j] += w.values[slot] * x[col * n + j];
      }
}

void nm_spmm_unchecked(const NmMatrix& w, const float* x, i64 n, float* y, int threads) {
  if (w.rows == 0 || n == 0) return;
  const sparse_detail::NmRaw raw{w.rows, w.cols, w.n, w.m, w.values.data, w.indices.data};
  const SimdLevel level = simd_runtime_level();
  const int lanes = GRIMSIM_DISPATCH_AT(level, sparse_lanes);
  // Every row has the same number of slots: equal row counts balance the threads.
  const std::vector<i64> prefix;
  if (n < lanes) {
    sparse_detail::run_chunks(w.rows, prefix, threads, [&](i64 i0, i64 i1) {
      GRIMSIM_DISPATCH_AT(level, nm_rows_narrow, raw, i0, i1, x, n, y);
    });
    return;
  }
  auto identity = [](std::int64_t u) { return u; };
  sparse_detail::run_panels(w.rows, w.cols, w.rows, identity, prefix, x, n, n, y, threads, lanes,
                            true, nullptr, w.values.size,
                            sparse_detail::row_kernel_layout(w.cols, n, lanes, cache_sizes().l2),
                            [&](i64 i0, i64 i1, const sparse_detail::Panel& p) {
                              GRIMSIM_DISPATCH_AT(level, nm_rows_panel, raw, i0, i1, p);
                            });
}

void nm_spmm(const NmMatrix& w, const float* x, i64 n, float* y, int threads) {
  validate_nm(w);
  detail::check_gemm_args("nm", x, y, n, threads);
  nm_spmm_unchecked(w, x, n, y, threads);
}

}  // namespace grimsim
