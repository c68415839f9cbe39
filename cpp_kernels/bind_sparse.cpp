// Bindings of the sparse kernels (CSR, BCR, pattern, N:M).
#include "bind_common.hpp"

namespace grimsim_bind {

void register_sparse(py::module_& m) { (void)m; }

}  // namespace grimsim_bind
