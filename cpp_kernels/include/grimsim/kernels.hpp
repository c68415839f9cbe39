// grimsim kernels: Y = W @ X in fp32, W the M x K GEMM view of a layer, X the K x N activations.
// Common vocabulary of every kernel family: the error type, argument checks, sizes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace grimsim {

// Thrown when an argument is invalid; the bindings turn it into Python's ValueError.
struct InvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Validation helper: `check(k >= 0, "k must be >= 0")`. Kernels validate every argument
// with it before touching memory, so a bad call never reads or writes out of bounds.
inline void check(bool cond, const char* msg) {
  if (!cond) throw InvalidArgument(msg);
}
inline void check(bool cond, const std::string& msg) {
  if (!cond) throw InvalidArgument(msg);
}

// Validates a thread count (kernels take `threads >= 1`; more threads than tasks is fine).
inline void check_threads(int threads) {
  if (threads <= 0)
    throw InvalidArgument("threads must be >= 1, got " + std::to_string(threads));
}

// Large buffers (im2col columns, big activations, packed weights) are aligned to a 2 MiB page
// and advised as transparent huge pages on Linux, as numpy does from 4 MiB. glibc serves
// allocations over 32 MiB with a fresh mmap on every call, and faulting those in 4 KiB at a
// time dominated the big layers: a 58 MB im2col took 26 ms with 14113 page faults against
// 6 ms to refill a reused buffer (Sapphire Rapids VM under KVM, 2026-11-27).
inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kHugePage = std::size_t{1} << 21;
inline constexpr std::size_t kHugeFrom = std::size_t{1} << 22;

inline std::size_t alloc_alignment(std::size_t bytes) {
  return bytes >= kHugeFrom ? kHugePage : kCacheLine;
}

// Allocates `bytes` (> 0) aligned to alloc_alignment(bytes); free with free_aligned(p, bytes).
inline void* alloc_aligned(std::size_t bytes) {
  void* p = ::operator new(bytes, std::align_val_t{alloc_alignment(bytes)});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // advice only: where THP is off (or not built in), the call fails and 4 KiB pages serve
  if (bytes >= kHugeFrom) (void)::madvise(p, bytes & ~(std::size_t{4096} - 1), MADV_HUGEPAGE);
#endif
  return p;
}

inline void free_aligned(void* p, std::size_t bytes) {
  ::operator delete(p, std::align_val_t{alloc_alignment(bytes)});
}

// A heap array aligned to 64 bytes (a cache line, an AVX-512 vector; large ones to a huge
// page, see alloc_aligned), uninitialised unless zeroed. Move-only; for packed operands,
// scratch and the kernels' outputs.
template <class T>
class AlignedArray {
 public:
  static constexpr std::size_t kAlign = kCacheLine;
  AlignedArray() = default;
  explicit AlignedArray(std::size_t n, bool zeroed = false) : n_(n) {
    if (n == 0) return;
    p_ = static_cast<T*>(alloc_aligned(n * sizeof(T)));
    if (zeroed) std::memset(static_cast<void*>(p_), 0, n * sizeof(T));
  }
  AlignedArray(AlignedArray&& o) noexcept : p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  AlignedArray& operator=(AlignedArray&& o) noexcept {
    if (this != &o) {
      release();
      p_ = o.p_;
      n_ = o.n_;
      o.p_ = nullptr;
      o.n_ = 0;
    }
    return *this;
  }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  ~AlignedArray() { release(); }

  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }
  T& operator[](std::size_t i) { return p_[i]; }
  const T& operator[](std::size_t i) const { return p_[i]; }

 private:
  void release() {
    if (p_ != nullptr) free_aligned(static_cast<void*>(p_), n_ * sizeof(T));
    p_ = nullptr;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// Reference dense GEMM (row-major, contiguous): y[M x N] = w[M x K] @ x[K x N].
// Straightforward loop order i-k-j so the compiler vectorises along N; the tuned kernels
// are checked against this one.
void dense_gemm_reference(const float* w, const float* x, float* y, std::int64_t M,
                          std::int64_t K, std::int64_t N);

}  // namespace grimsim
