# The kernel library, shared by the Python extension and the standalone C++ tests.
set(GRIMSIM_KERNEL_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/dense.cpp
)
add_library(grimsim_kernels_core STATIC ${GRIMSIM_KERNEL_SOURCES})
target_include_directories(grimsim_kernels_core PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
set_target_properties(grimsim_kernels_core PROPERTIES POSITION_INDEPENDENT_CODE ON)
if(MSVC)
  target_compile_options(grimsim_kernels_core PRIVATE /O2)
else()
  target_compile_options(grimsim_kernels_core PRIVATE -O3 -ffp-contract=fast)
  if(GRIMSIM_NATIVE)
    target_compile_options(grimsim_kernels_core PRIVATE -march=native)
  endif()
endif()
