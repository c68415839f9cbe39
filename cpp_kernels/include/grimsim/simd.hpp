// grimsim/simd.hpp -- a tiny portable SIMD layer with runtime ISA dispatch.
//
// HOW TO USE
// 1. Put a hot kernel in a file named `src/<name>.simd.cpp`. kernels.cmake compiles that file
//    once per ISA tier: as is (baseline flags: SSE2 on x86-64, NEON on aarch64, plain C++
//    elsewhere) and, on x86 with GCC/Clang, again with `-mavx2 -mfma` and with
//    `-mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma` (wrappers generated in the build dir
//    define GRIMSIM_TU_AVX2 / GRIMSIM_TU_AVX512). Wheels are built without -march=native, so
//    this is how AVX2/AVX-512 code reaches users.
// 2. Inside that file write the kernel in the per-tier namespace, against `simd::`:
//        namespace grimsim { namespace GRIMSIM_ISA_NS {
//        void axpy(std::int64_t n, float a, const float* x, float* y) {
//          using namespace simd;
//          const vf va = set1(a);
//          std::int64_t i = 0;
//          for (; i + kLanes <= n; i += kLanes) store(y + i, fma(va, load(x + i), load(y + i)));
//          for (; i < n; ++i) y[i] += a * x[i];
//        } } }
//    `vf` holds kLanes floats (16 AVX-512, 8 AVX2, 4 SSE2/NEON, 4 generic); kRegisters is the
//    number of architectural vector registers (for sizing register tiles). Helpers: zero,
//    set1, load/store (unaligned), load_partial/store_partial (tails), fma, max, hsum, lane,
//    fma_lane<L> (NEON multiply-by-element), prefetch, imin/imax; + - * / work on vf.
//    Also use GRIMSIM_DISPATCH_AT(level, fn, ...) for data packed for one tier.
// 3. Declare it for every tier in a header, inside namespace grimsim:
//        GRIMSIM_MV_DECLARE(void axpy(std::int64_t n, float a, const float* x, float* y))
//    and call it from ordinary code with `GRIMSIM_DISPATCH(axpy, n, a, x, y)`, which picks the
//    best tier this CPU supports (checked at run time; env GRIMSIM_SIMD=sse2|avx2|... caps it,
//    e.g. to test a fallback on a big machine).
// RULES for *.simd.cpp files (One Definition Rule): code compiled with -mavx2 must not emit an
// inline function that baseline code could also use, or the linker may keep the AVX2 copy and
// an old CPU would crash. So: put everything in GRIMSIM_ISA_NS (or an anonymous namespace),
// use raw pointers, no std::vector / std::function / std::thread there; allocate scratch and
// spawn threads in ordinary .cpp files (parallel_for is out of line; calling it from a
// *.simd.cpp file is fine). Helpers here are always_inline for the same reason. The ctest
// `simd_odr_check` (cpp_kernels/tests) fails if a tier object defines a shared weak symbol.
// Tests: GRIMSIM_TU_EMU512 compiles a tier source with 16-lane vectors on any CPU (see
// tests/test_dense_emu512.cpp), so the AVX-512 tile logic is tested without the hardware.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

#if (defined(__AVX2__) || defined(__AVX512F__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>  // masked tail loads (load_partial)
#endif

#if (defined(__aarch64__) || defined(__ARM_NEON)) && !defined(GRIMSIM_TU_EMU512) && \
    !defined(GRIMSIM_TU_AVX2) && !defined(GRIMSIM_TU_AVX512) && \
    (defined(__GNUC__) || defined(__clang__))
#include <arm_neon.h>
// fma_lane maps to NEON's multiply-by-element (fmla v.4s, v.4s, v.s[i]).
#define GRIMSIM_NEON_LANES 1
#endif

// ---------------------------------------------------------------- which tier this file is --
#if defined(GRIMSIM_TU_EMU512)
// Tests only: the AVX-512 tile shapes (16 lanes, 32 registers) built from plain vectors on
// any CPU, so the wide-tile logic is checked where no AVX-512 hardware is at hand.
#define GRIMSIM_ISA_NS isa_emu512
#define GRIMSIM_SIMD_BYTES 64
#define GRIMSIM_SIMD_REGS 32
#elif defined(GRIMSIM_TU_AVX512)
#define GRIMSIM_ISA_NS isa_avx512
#define GRIMSIM_SIMD_BYTES 64
#define GRIMSIM_SIMD_REGS 32
#elif defined(GRIMSIM_TU_AVX2)
#define GRIMSIM_ISA_NS isa_avx2
#define GRIMSIM_SIMD_BYTES 32
#define GRIMSIM_SIMD_REGS 16
#else
#define GRIMSIM_ISA_NS isa_base
#if defined(__AVX512F__)
#define GRIMSIM_SIMD_BYTES 64
#define GRIMSIM_SIMD_REGS 32
#elif defined(__AVX__)
#define GRIMSIM_SIMD_BYTES 32
#define GRIMSIM_SIMD_REGS 16
#elif defined(__aarch64__) || defined(__ARM_NEON)
#define GRIMSIM_SIMD_BYTES 16
#define GRIMSIM_SIMD_REGS 32
#else  // SSE2 (x86-64 baseline) or generic: the compiler lowers 16-byte vectors as it can
#define GRIMSIM_SIMD_BYTES 16
#define GRIMSIM_SIMD_REGS 16
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define GRIMSIM_INLINE inline __attribute__((always_inline))
#define GRIMSIM_LAMBDA_INLINE __attribute__((always_inline))
#define GRIMSIM_RESTRICT __restrict__
#else
#define GRIMSIM_INLINE inline
#define GRIMSIM_LAMBDA_INLINE
#define GRIMSIM_RESTRICT
#endif

namespace grimsim {

// ------------------------------------------------------------------ run-time dispatch -----
// Ordered: a higher value can run everything below it on the same architecture.
enum class SimdLevel : int { scalar = 0, sse2 = 1, neon = 2, avx2 = 3, avx512 = 4 };

// The best tier compiled into this binary that this CPU (and OS) can run, capped by the
// environment variable GRIMSIM_SIMD if set (names as in simd_level_name).
SimdLevel simd_runtime_level();
// "avx512", "avx2", "sse2", "neon" or "scalar".
const char* simd_level_name(SimdLevel level);
// Name of simd_runtime_level(): what the kernels actually use here.
std::string simd_level();
// Vector width in floats of a tier (1 for scalar).
int simd_lanes(SimdLevel level);

// Declares a function in every tier namespace (use inside namespace grimsim).
#define GRIMSIM_MV_DECLARE(...)   \
  namespace isa_base {            \
  __VA_ARGS__;                    \
  }                               \
  namespace isa_avx2 {            \
  __VA_ARGS__;                    \
  }                               \
  namespace isa_avx512 {          \
  __VA_ARGS__;                    \
  }

// Calls the best tier's version of FN (an expression; works for void and non-void).
#if defined(GRIMSIM_X86_DISPATCH)
#define GRIMSIM_DISPATCH(FN, ...)                                                   \
  (::grimsim::simd_runtime_level() >= ::grimsim::SimdLevel::avx512                  \
       ? ::grimsim::isa_avx512::FN(__VA_ARGS__)                                     \
       : ::grimsim::simd_runtime_level() >= ::grimsim::SimdLevel::avx2              \
             ? ::grimsim::isa_avx2::FN(__VA_ARGS__)                                 \
             : ::grimsim::isa_base::FN(__VA_ARGS__))
// Calls the version of FN of a given tier (e.g. the tier some data was packed for).
#define GRIMSIM_DISPATCH_AT(LEVEL, FN, ...)                                         \
  ((LEVEL) >= ::grimsim::SimdLevel::avx512 ? ::grimsim::isa_avx512::FN(__VA_ARGS__) \
   : (LEVEL) >= ::grimsim::SimdLevel::avx2 ? ::grimsim::isa_avx2::FN(__VA_ARGS__)   \
                                           : ::grimsim::isa_base::FN(__VA_ARGS__))
#else
#define GRIMSIM_DISPATCH(FN, ...) (::grimsim::isa_base::FN(__VA_ARGS__))
#define GRIMSIM_DISPATCH_AT(LEVEL, FN, ...) ((void)(LEVEL), ::grimsim::isa_base::FN(__VA_ARGS__))
#endif

// ----------------------------------------------------------------- the vector helpers -----
namespace GRIMSIM_ISA_NS {
namespace simd {

constexpr int kBytes = GRIMSIM_SIMD_BYTES;
constexpr int kLanes = GRIMSIM_SIMD_BYTES / 4;
constexpr int kRegisters = GRIMSIM_SIMD_REGS;

#if defined(__GNUC__) || defined(__clang__)
// GCC/Clang vector extensions: element-wise + - * / and v[i] work; the compiler picks the
// instructions for the flags of this translation unit (and contracts a*b+c into an FMA).
typedef float vf __attribute__((vector_size(GRIMSIM_SIMD_BYTES)));

GRIMSIM_INLINE vf zero() { return vf{}; }
GRIMSIM_INLINE vf set1(float x) { return x - vf{}; }  // x - 0 == x for every x, even -0
GRIMSIM_INLINE vf load(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof(vf));  // unaligned, alias-safe; compiles to one load
  return v;
}
GRIMSIM_INLINE void store(float* p, vf v) { __builtin_memcpy(p, &v, sizeof(vf)); }
GRIMSIM_INLINE vf fma(vf a, vf b, vf c) { return a * b + c; }  // c + a*b
GRIMSIM_INLINE vf max(vf a, vf b) { return a > b ? a : b; }
GRIMSIM_INLINE float lane(vf v, int i) { return v[i]; }
GRIMSIM_INLINE void prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }
#else
// Portable fallback (e.g. MSVC): a plain struct; the optimiser may still vectorise the loops.
struct vf {
  float v[kLanes];
  float& operator[](int i) { return v[i]; }
  float operator[](int i) const { return v[i]; }
};
inline vf zero() { return vf{}; }
inline vf set1(float x) {
  vf r;
  for (int i = 0; i < kLanes; ++i) r.v[i] = x;
  return r;
}
inline vf load(const float* p) {
  vf r;
  std::memcpy(r.v, p, sizeof(r.v));
  return r;
}
inline void store(float* p, vf v) { std::memcpy(p, v.v, sizeof(v.v)); }
inline vf operator+(vf a, vf b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] += b.v[i];
  return a;
}
inline vf operator-(vf a, vf b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] -= b.v[i];
  return a;
}
inline vf operator*(vf a, vf b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] *= b.v[i];
  return a;
}
inline vf& operator+=(vf& a, vf b) { return a = a + b; }
inline vf fma(vf a, vf b, vf c) {
  for (int i = 0; i < kLanes; ++i) c.v[i] += a.v[i] * b.v[i];
  return c;
}
inline vf max(vf a, vf b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
  return a;
}
inline float lane(vf v, int i) { return v.v[i]; }
inline void prefetch(const void*) {}
#endif

// acc + b * a[L] for a lane L of a, a compile-time constant after unrolling. On NEON this is
// one fmla by element, so a register tile needs no broadcast registers; elsewhere it is a
// broadcast and an FMA.
template <int L>
GRIMSIM_INLINE vf fma_lane(vf acc, vf b, vf a) {
#if defined(GRIMSIM_NEON_LANES)
  static_assert(GRIMSIM_SIMD_BYTES == 16, "NEON vectors hold 4 floats");
  return (vf)vfmaq_laneq_f32((float32x4_t)acc, (float32x4_t)b, (float32x4_t)a, L);
#else
  return fma(set1(lane(a, L)), b, acc);
#endif
}

// Loads n <= kLanes floats (the rest zero) / stores the first n lanes: for loop tails. On
// x86 a masked load reads them in one instruction and never faults on the lanes it skips;
// the scalar copy into a zeroed buffer it replaces stalled on store forwarding, and a GEMV
// whose rows end in such tails ran 3-5x slower than one of whole vectors (136 x 247: 10.2 us
// against 3.0 us for 128 x 256; Sapphire Rapids VM, 2026-11-27). AVX2's masked store is
// slow on AMD cores (microcoded), so AVX2 keeps the scalar store.
//
// load_masked / store_masked take the lane mask of the first n lanes ((1 << n) - 1) instead,
// for kernels that compute it once for a whole ragged column (packed BCR's tails).
#if defined(__AVX512F__) && GRIMSIM_SIMD_BYTES == 64 && (defined(__GNUC__) || defined(__clang__))
GRIMSIM_INLINE vf load_masked(const float* p, unsigned mask) {
  return reinterpret_cast<vf>(_mm512_maskz_loadu_ps(static_cast<__mmask16>(mask), p));
}
GRIMSIM_INLINE void store_masked(float* p, vf v, unsigned mask) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>(mask), reinterpret_cast<__m512>(v));
}
GRIMSIM_INLINE vf load_partial(const float* p, int n) { return load_masked(p, (1u << n) - 1u); }
GRIMSIM_INLINE void store_partial(float* p, vf v, int n) {
  store_masked(p, v, (1u << n) - 1u);
}
#else
#if defined(__AVX2__) && GRIMSIM_SIMD_BYTES == 32 && (defined(__GNUC__) || defined(__clang__))
GRIMSIM_INLINE vf load_partial(const float* p, int n) {
  const __m256i mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  return reinterpret_cast<vf>(_mm256_maskload_ps(p, mask));
}
#else
GRIMSIM_INLINE vf load_partial(const float* p, int n) {
  float tmp[kLanes] = {};
  for (int i = 0; i < n; ++i) tmp[i] = p[i];
  return load(tmp);
}
#endif
GRIMSIM_INLINE void store_partial(float* p, vf v, int n) {
  float tmp[kLanes];
  store(tmp, v);
  for (int i = 0; i < n; ++i) p[i] = tmp[i];
}
GRIMSIM_INLINE int mask_lanes(unsigned mask) {  // the n of a mask (1 << n) - 1
  int n = 0;
  for (; mask & 1u; mask >>= 1) ++n;
  return n;
}
GRIMSIM_INLINE vf load_masked(const float* p, unsigned mask) {
  return load_partial(p, mask_lanes(mask));
}
GRIMSIM_INLINE void store_masked(float* p, vf v, unsigned mask) {
  store_partial(p, v, mask_lanes(mask));
}
#endif
// Integer min/max for loop bounds (so kernels need no <algorithm> instantiation).
GRIMSIM_INLINE std::int64_t imin(std::int64_t a, std::int64_t b) { return a < b ? a : b; }
GRIMSIM_INLINE std::int64_t imax(std::int64_t a, std::int64_t b) { return a > b ? a : b; }

// Sum of the lanes.
GRIMSIM_INLINE float hsum(vf v) {
  float tmp[kLanes];
  store(tmp, v);
  float s = 0.0f;
  for (int i = 0; i < kLanes; ++i) s += tmp[i];
  return s;
}

}  // namespace simd
}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
