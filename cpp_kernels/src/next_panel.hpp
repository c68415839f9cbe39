// Software prefetch of the X tile a sparse kernel's thread runs next (included only by
// *.simd.cpp files, so each SIMD tier gets its own copy in its own namespace).
#pragma once
#include <cstdint>

#include "grimsim/simd.hpp"
#include "sparse_simd.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

// Prefetches the rows of the X tile a thread runs next (Panel::pf_*) in step with its work on
// the current one, so the next panel streams in from L3 or DRAM while this one is computed.
// X rows of a panel are short strided runs, which the hardware prefetchers do not follow:
// without this, a panel of X out of cache costs a DRAM latency per few lines. The BCR kernels
// advance it per tile record, the row kernels (CSR, N:M, pattern) per output row.
class NextPanel {
 public:
  explicit NextPanel(const sparse_detail::Panel& p)
      : x_(reinterpret_cast<const char*>(p.pf_x)), ld_bytes_(p.pf_ldx * 4), row0_(p.pf_row0),
        rows_(p.pf_row1 - p.pf_row0), bytes_(p.pf_bytes), row_(p.pf_row0) {}
  // Prefetches the share done / total of the rows (done <= total).
  GRIMSIM_INLINE void advance(std::int64_t done, std::int64_t total) {
    if (x_ == nullptr || total <= 0) return;
    const std::int64_t due = row0_ + rows_ * done / total;
    for (; row_ < due; ++row_) {
      const char* a = x_ + row_ * ld_bytes_;
      const auto last = reinterpret_cast<std::uintptr_t>(a + bytes_ - 1);
      for (auto q = reinterpret_cast<std::uintptr_t>(a) & ~std::uintptr_t{63}; q <= last; q += 64)
        __builtin_prefetch(reinterpret_cast<const void*>(q), 0, 2);
    }
  }

 private:
  const char* x_;
  std::int64_t ld_bytes_, row0_, rows_, bytes_, row_;
};

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
