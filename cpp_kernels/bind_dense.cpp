// Bindings of the dense kernels.
#include "bind_common.hpp"

namespace grimsim_bind {

namespace {

py::array_t<float> dense_reference(const py::array& w_in, const py::array& x_in) {
  auto w = require_f32(w_in, "w", 2);
  auto x = require_f32(x_in, "x", 2);
  const auto M = w.shape(0), K = w.shape(1), N = x.shape(1);
  if (x.shape(0) != K)
    throw grimsim::InvalidArgument("x has " + std::to_string(x.shape(0)) +
                                   " rows but w has K=" + std::to_string(K) + " columns");
  py::array_t<float> y({M, N});
  const float* wp = w.data();
  const float* xp = x.data();
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::dense_gemm_reference(wp, xp, yp, M, K, N);
  }
  return y;
}

}  // namespace

void register_dense(py::module_& m) {
  m.def("dense_reference", &dense_reference, py::arg("w"), py::arg("x"),
        "Reference dense GEMM y = w @ x (float32, C-contiguous).");
}

}  // namespace grimsim_bind
