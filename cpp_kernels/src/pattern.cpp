// Pattern SpMM for 3x3 convolutions (PatDNN style: each kept kernel keeps the 4 positions of
// one library pattern), on the im2col'd input X (K = Cin * 9 rows, N = output pixels).
#include <algorithm>
#include <vector>

#include "cache_sizes.hpp"
#include "sparse_checks.hpp"
#include "sparse_driver.hpp"

namespace grimsim {

using detail::fail;
using sparse_detail::i64;

void validate_pattern(const PatternMatrix& w) {
  const char* fmt = "pattern";
  detail::check_dims(fmt, w.rows, w.cols);
  if (w.cols % 9 != 0)
    fail("pattern: K = " + std::to_string(w.cols) +
         " is not a multiple of 9 (pattern pruning applies to 3x3 kernels only)");
  const i64 cin = w.cols / 9;
  if (w.library.size % 4 != 0)
    fail("pattern: library has " + std::to_string(w.library.size) +
         " elements, expected P x 4 (4 kept positions per pattern)");
  if (w.library.size > 0 && w.library.data == nullptr) fail("pattern: library is null");
  const i64 P = w.n_patterns();
  for (i64 p = 0; p < P; ++p)
    detail::check_sorted_range(fmt, "library", w.library, 4 * p, 4 * p + 4, 0, 9,
                               [&] { return "pattern " + std::to_string(p) + "'s positions"; });
  const i64 nk = w.kernel_channel.size;
  detail::check_pointers(fmt, "kernel_ptr", w.kernel_ptr, w.rows, nk, "kernel_channel");
  detail::check_length(fmt, "kernel_pattern", w.kernel_pattern, nk);
  detail::check_length(fmt, "values", w.values, 4 * nk);
  detail::check_length(fmt, "filter_order", w.filter_order, w.rows);
  for (i64 t = 0; t < w.rows; ++t)
    detail::check_sorted_range(fmt, "kernel_channel", w.kernel_channel, w.kernel_ptr[t],
                               w.kernel_ptr[t + 1], 0, cin, [&] {
                                 return "the input channels of filter position " +
                                        std::to_string(t);
                               });
  for (i64 q = 0; q < nk; ++q)
    if (w.kernel_pattern[q] < 0 || w.kernel_pattern[q] >= P)
      fail(detail::at(fmt, "kernel_pattern", q) + " = " + std::to_string(w.kernel_pattern[q]) +
           " is outside the library [0, " + std::to_string(P) + ")");
  std::vector<bool> seen(static_cast<std::size_t>(w.rows), false);
  for (i64 t = 0; t < w.rows; ++t) {
    const i64 f = w.filter_order[t];
    if (f < 0 || f >= w.rows)
      fail(detail::at(fmt, "filter_order", t) + " = " + std::to_string(f) + " is outside [0, " +
           std::to_string(w.rows) + ")");
    if (seen[static_cast<std::size_t>(f)])
      fail(detail::at(fmt, "filter_order", t) + " = " + std::to_string(f) +
           " appears twice (filter_order must be a permutation)");
    seen[static_cast<std::size_t>(f)] = true;
  }
}

void pattern_spmm_reference(const PatternMatrix& w, const float* x, i64 n, float* y) {
  std::fill(y, y + w.rows * n, 0.0f);
  for (i64 t = 0; t < w.rows; ++t) {
    float* yr = y + static_cast<i64>(w.filter_order[t]) * n;
    for (i64 q = w.kernel_ptr[t]; q < w.kernel_ptr[t + 1]; ++q)
      for (i64 s = 0; s < 4; ++s) {
        const i64 row = i64{w.kernel_channel[q]} * 9 + w.library[i64{w.kernel_pattern[q]} * 4 + s];
        for (i64 j = 0; j < n; ++j) yr[j] += w.values[4 * q + s] * x[row * n + j];
      }
  }
}

void pattern_spmm_unchecked(const PatternMatrix& w, const float* x, i64 n, float* y,
                            int threads) {
  if (w.rows == 0 || n == 0) return;
  const sparse_detail::PatternRaw raw{w.rows,
                                      w.cols,
                                      w.library.data,
                                      w.kernel_ptr.data,
                                      w.kernel_channel.data,
                                      w.kernel_pattern.data,
                                      w.values.data,
                                      w.filter_order.data};
  const SimdLevel level = simd_runtime_level();
  const int lanes = GRIMSIM_DISPATCH_AT(level, sparse_lanes);
  std::vector<i64> prefix;
  if (threads > 1) {
    prefix.resize(static_cast<std::size_t>(w.rows) + 1);
    for (i64 t = 0; t <= w.rows; ++t)
      prefix[static_cast<std::size_t>(t)] = 4 * i64{w.kernel_ptr[t]} + 4 * t;
  }
  if (n < lanes) {
    sparse_detail::run_chunks(w.rows, prefix, threads, [&](i64 t0, i64 t1) {
      GRIMSIM_DISPATCH_AT(level, pattern_rows_narrow, raw, t0, t1, x, n, y);
    });
    return;
  }
  auto identity = [](std::int64_t u) { return u; };
  sparse_detail::run_panels(w.rows, w.cols, w.rows, identity, prefix, x, n, n, y, threads, lanes,
                            true, w.filter_order.data, w.values.size,
                            sparse_detail::row_kernel_layout(w.cols, n, lanes, cache_sizes().l2),
                            [&](i64 t0, i64 t1, const sparse_detail::Panel& p) {
                              GRIMSIM_DISPATCH_AT(level, pattern_rows_panel, raw, t0, t1, p);
                            });
}

void pattern_spmm(const PatternMatrix& w, const float* x, i64 n, float* y, int threads) {
  validate_pattern(w);
  detail::check_gemm_args("pattern", x, y, n, threads);
  pattern_spmm_unchecked(w, x, n, y, threads);
}

}  // namespace grimsim
