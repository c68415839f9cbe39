#include "cache_sizes.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace grimsim {

namespace {

CacheSizes detect_caches() {
  CacheSizes c;
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (l1 >= 8 * 1024 && l1 <= 1024 * 1024) c.l1 = l1;
  if (l2 >= 64 * 1024 && l2 <= 64 * 1024 * 1024) c.l2 = l2;
#endif
  return c;
}

}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes c = detect_caches();
  return c;
}

}  // namespace grimsim
