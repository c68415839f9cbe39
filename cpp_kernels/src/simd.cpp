// Run-time choice of the SIMD tier (see grimsim/simd.hpp).
#include "grimsim/simd.hpp"

#include <cstdlib>
#include <cstring>

namespace grimsim {

namespace {

// Best tier this binary contains and this CPU runs. The CPU does not change while we run,
// so it is detected once.
SimdLevel detect() {
#if defined(GRIMSIM_X86_DISPATCH)
  __builtin_cpu_init();
  // The AVX-512 translation units are compiled for F+VL+BW+DQ (Skylake-SP and later, Zen 4).
  // libgcc/compiler-rt also check that the OS saves the zmm/ymm state (XCR0).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("fma"))
    return SimdLevel::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::avx2;
  return SimdLevel::sse2;
#elif defined(__x86_64__) || defined(_M_X64) || defined(__SSE2__)
  return SimdLevel::sse2;
#elif defined(__aarch64__) || defined(__ARM_NEON)
  return SimdLevel::neon;
#else
  return SimdLevel::scalar;
#endif
}

SimdLevel parse(const char* name, SimdLevel fallback) {
  for (SimdLevel l : {SimdLevel::scalar, SimdLevel::sse2, SimdLevel::neon, SimdLevel::avx2,
                      SimdLevel::avx512})
    if (std::strcmp(name, simd_level_name(l)) == 0) return l;
  return fallback;
}

}  // namespace

SimdLevel simd_runtime_level() {
  static const SimdLevel cpu = detect();
  // A cap from the environment (tests of the fallbacks); read per call so a test can set it.
  // Only x86 has several tiers in one binary; elsewhere the cap cannot change anything.
  const char* cap = std::getenv("GRIMSIM_SIMD");
  if (cap == nullptr || *cap == '\0') return cpu;
  const SimdLevel want = parse(cap, cpu);
  if (static_cast<int>(want) >= static_cast<int>(cpu)) return cpu;
#if defined(GRIMSIM_X86_DISPATCH)
  // Tiers present on x86: sse2 (baseline), avx2, avx512.
  return want == SimdLevel::avx2 ? SimdLevel::avx2 : SimdLevel::sse2;
#else
  return cpu;  // a single tier is compiled in
#endif
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512:
      return "avx512";
    case SimdLevel::avx2:
      return "avx2";
    case SimdLevel::sse2:
      return "sse2";
    case SimdLevel::neon:
      return "neon";
    case SimdLevel::scalar:
      return "scalar";
  }
  return "scalar";
}

std::string simd_level() { return simd_level_name(simd_runtime_level()); }

int simd_lanes(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512:
      return 16;
    case SimdLevel::avx2:
      return 8;
    case SimdLevel::sse2:
    case SimdLevel::neon:
      return 4;
    case SimdLevel::scalar:
      return 1;
  }
  return 1;
}

}  // namespace grimsim
