# Writes OUT: a header defining GRIMSIM_KERNELS_SOURCE_HASH, a SHA-256 (first 16 hex digits)
# over the kernel library's sources and headers (relative path + content, in sorted order).
# Run at build time (CMakeLists.txt) so that every edit of a kernel source changes it: the
# calibration pools points only from one kernel build (grimsim/calibration/measure.py).
file(GLOB_RECURSE _files RELATIVE ${ROOT} ${ROOT}/cpp_kernels/src/* ${ROOT}/cpp_kernels/include/*
     ${ROOT}/cpp_kernels/kernels.cmake)
list(SORT _files)
set(_blob "")
foreach(_f IN LISTS _files)
  file(SHA256 ${ROOT}/${_f} _h)
  string(APPEND _blob "${_f}:${_h}\n")
endforeach()
string(SHA256 _all "${_blob}")
string(SUBSTRING "${_all}" 0 16 _short)
set(_text "#pragma once\n#define GRIMSIM_KERNELS_SOURCE_HASH \"${_short}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} _old)
endif()
if(NOT "${_old}" STREQUAL "${_text}")
  file(WRITE ${OUT} "${_text}")
endif()
