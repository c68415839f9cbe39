// Internal: the per-core data cache sizes the kernels size their blocking by.
#pragma once
#include <cstdint>

namespace grimsim {

struct CacheSizes {
  std::int64_t l1 = 32 * 1024;   // per core; typical of x86 and of Cortex-A7x big cores
  std::int64_t l2 = 512 * 1024;  // per core (Zen 3: 512 KiB; Cortex-A76: 256-512 KiB)
};

// This machine's sizes where the OS reports them (glibc's sysconf), else the defaults above
// (Android's bionic and macOS report none); detected once.
const CacheSizes& cache_sizes();

}  // namespace grimsim
