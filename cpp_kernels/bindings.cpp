// The grimsim._kernels module: each kernel family registers its functions.
#include "bind_common.hpp"
#include "grimsim_source_hash.hpp"

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "grimsim C++ kernels (fp32): dense, Winograd, CSR, BCR, pattern and N:M GEMM, and the cheap ops";
  pybind11::register_exception<grimsim::InvalidArgument>(m, "KernelArgumentError",
                                                         PyExc_ValueError);
  grimsim_bind::register_dense(m);
  grimsim_bind::register_sparse(m);
  grimsim_bind::register_cheap(m);
#ifdef GRIMSIM_VERSION
  m.attr("__version__") = GRIMSIM_VERSION;
#endif
  // Which kernel sources this module was built from (calibration points pool per build).
  m.attr("__source_hash__") = GRIMSIM_KERNELS_SOURCE_HASH;
}
