# ctest helper: fails if an AVX2/AVX-512 object of the kernel library defines a weak (COMDAT)
# function outside its tier namespace (nm type W; weak data, type V, holds no instructions).
# Such a function (an inline function or template, e.g. a std::vector member) could be picked
# by the linker for baseline code too, and then crash on a CPU without AVX2 (see the rules in
# grimsim/simd.hpp).
# Usage: cmake -DNM=<nm> -DOBJECTS="<obj>;<obj>..." -P check_simd_odr.cmake
set(_bad "")
foreach(_obj IN LISTS OBJECTS)
  if(NOT _obj MATCHES "_(avx2|avx512)\\.cpp\\.o(bj)?$")
    continue()
  endif()
  execute_process(COMMAND ${NM} -C ${_obj} OUTPUT_VARIABLE _syms RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${_obj}")
  endif()
  string(REPLACE "\n" ";" _lines "${_syms}")
  foreach(_line IN LISTS _lines)
    if(_line MATCHES "^[0-9a-fA-F]* *W " AND NOT _line MATCHES "isa_avx2|isa_avx512")
      string(APPEND _bad "  ${_obj}: ${_line}\n")
    endif()
  endforeach()
endforeach()
if(_bad)
  message(FATAL_ERROR "SIMD translation units define shared weak functions:\n${_bad}")
endif()
message(STATUS "no shared weak functions in the SIMD translation units")
