// Internal helpers shared by the sparse formats' validators: every message names the format,
// the array, the position and what is wrong, and strings are only built on failure so the
// checks stay a cheap O(format size) pass.
#pragma once
#include <cstdint>
#include <string>

#include "grimsim/sparse.hpp"

namespace grimsim::detail {

[[noreturn]] inline void fail(const std::string& msg) { throw InvalidArgument(msg); }

inline std::string at(const char* fmt, const char* name, std::int64_t i) {
  return std::string(fmt) + ": " + name + "[" + std::to_string(i) + "]";
}

template <class T>
void check_length(const char* fmt, const char* name, const ArrayView<T>& a,
                  std::int64_t expected) {
  if (a.size != expected)
    fail(std::string(fmt) + ": " + name + " has " + std::to_string(a.size) +
         " elements, expected " + std::to_string(expected));
  if (a.size > 0 && a.data == nullptr) fail(std::string(fmt) + ": " + name + " is null");
}

// A CSR-style pointer array: n_segments + 1 entries, starts at 0, never decreases, ends at
// `end` (the length of the array it points into).
template <class T>
void check_pointers(const char* fmt, const char* name, const ArrayView<T>& ptr,
                    std::int64_t n_segments, std::int64_t end, const char* target) {
  check_length(fmt, name, ptr, n_segments + 1);
  if (ptr[0] != 0)
    fail(at(fmt, name, 0) + " = " + std::to_string(ptr[0]) + ", must be 0");
  for (std::int64_t i = 0; i < n_segments; ++i)
    if (ptr[i + 1] < ptr[i])
      fail(at(fmt, name, i + 1) + " = " + std::to_string(ptr[i + 1]) + " is smaller than " +
           name + "[" + std::to_string(i) + "] = " + std::to_string(ptr[i]) +
           " (pointers must not decrease)");
  if (ptr[n_segments] != end)
    fail(at(fmt, name, n_segments) + " = " + std::to_string(ptr[n_segments]) +
         " but " + target + " has " + std::to_string(end) + " elements");
}

// Indices idx[begin:end) strictly increasing and inside [lo, hi); `what()` names the segment
// (a lambda, so its string is only built when the check fails).
template <class What>
void check_sorted_range(const char* fmt, const char* name, const ArrayView<std::int32_t>& idx,
                        std::int64_t begin, std::int64_t end, std::int64_t lo, std::int64_t hi,
                        const What& what) {
  std::int64_t prev = lo - 1;
  for (std::int64_t p = begin; p < end; ++p) {
    const std::int64_t v = idx[p];
    if (v < lo || v >= hi)
      fail(at(fmt, name, p) + " = " + std::to_string(v) + " is outside " + what() + " [" +
           std::to_string(lo) + ", " + std::to_string(hi) + ")");
    if (v <= prev)
      fail(at(fmt, name, p) + " = " + std::to_string(v) + " is not greater than the previous " +
           "index " + std::to_string(prev) + " of " + what() +
           " (indices must be strictly increasing)");
    prev = v;
  }
}

inline void check_dims(const char* fmt, std::int64_t rows, std::int64_t cols) {
  if (rows < 0 || cols < 0)
    fail(std::string(fmt) + ": negative shape (" + std::to_string(rows) + ", " +
         std::to_string(cols) + ")");
  if (rows > INT32_MAX || cols > INT32_MAX)
    fail(std::string(fmt) + ": shape (" + std::to_string(rows) + ", " + std::to_string(cols) +
         ") exceeds the int32 index range");
}

inline void check_gemm_args(const char* fmt, const void* x, const float* y, std::int64_t n,
                            int threads) {
  if (n < 0) fail(std::string(fmt) + ": negative N = " + std::to_string(n));
  check_threads(threads);
  (void)x;
  (void)y;
}

}  // namespace grimsim::detail
