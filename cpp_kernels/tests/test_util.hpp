// Minimal test helpers for the standalone kernel tests (no framework: plain asserts that
// report and count failures; main returns non-zero if any failed).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "grimsim/kernels.hpp"
#include "grimsim/simd.hpp"

namespace testutil {

inline int& failures() {
  static int n = 0;
  return n;
}
inline int& checks() {
  static int n = 0;
  return n;
}

#define EXPECT(cond, ...)                                              \
  do {                                                                 \
    ++::testutil::checks();                                            \
    if (!(cond)) {                                                     \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
      std::printf(__VA_ARGS__);                                        \
      std::printf("\n");                                               \
      ++::testutil::failures();                                        \
    }                                                                  \
  } while (0)

// Expects `fn` to throw grimsim::InvalidArgument.
template <class F>
bool throws_invalid(F&& fn) {
  try {
    fn();
  } catch (const grimsim::InvalidArgument&) {
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

inline std::vector<float> random_vector(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// max |a - b| / (1 + max |b|): a relative error robust to tiny references.
inline double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  // Plain comparisons, not std::fmax: GCC 12 for aarch64 crashes vectorising fmax
  // reductions. A NaN in a makes the error NaN, which fails every "< tol" check.
  double diff = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(d <= diff)) diff = d;
    const double s = std::fabs(static_cast<double>(b[i]));
    if (s > scale) scale = s;
  }
  return diff / (1.0 + scale);
}

// SIMD tiers to exercise: on x86 every one this CPU runs (GRIMSIM_SIMD caps the dispatcher),
// elsewhere the single tier compiled in.
inline std::vector<std::string> tiers() {
  std::vector<std::string> out;
  const grimsim::SimdLevel best = grimsim::simd_runtime_level();
#if defined(GRIMSIM_X86_DISPATCH)
  for (grimsim::SimdLevel l :
       {grimsim::SimdLevel::sse2, grimsim::SimdLevel::avx2, grimsim::SimdLevel::avx512})
    if (static_cast<int>(l) <= static_cast<int>(best)) out.push_back(grimsim::simd_level_name(l));
#else
  out.push_back(grimsim::simd_level_name(best));
#endif
  return out;
}

// Caps the dispatcher at a tier (names as in grimsim::simd_level_name).
inline void set_tier(const std::string& name) {
#if defined(_WIN32)
  _putenv_s("GRIMSIM_SIMD", name.c_str());
#else
  setenv("GRIMSIM_SIMD", name.c_str(), 1);
#endif
}

inline int finish(const char* name) {
  if (failures() == 0) {
    std::printf("%s: all %d checks passed\n", name, checks());
    return 0;
  }
  std::printf("%s: %d of %d checks failed\n", name, failures(), checks());
  return 1;
}

}  // namespace testutil
