// Python bindings: validate every array before any kernel touches its memory.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "grimsim/kernels.hpp"

namespace py = pybind11;
using FArray = py::array;

namespace {

// Accepts only C-contiguous float32 arrays of the given rank; never converts silently,
// so a caller passing float64 or a strided view learns what to fix.
py::array_t<float> require_f32(const py::array& a, const char* name, int ndim) {
  if (!py::isinstance<py::array_t<float>>(a) || a.dtype().kind() != 'f' || a.itemsize() != 4)
    throw grimsim::InvalidArgument(std::string(name) + " must be float32, got dtype " +
                                   std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw grimsim::InvalidArgument(std::string(name) + " must have " + std::to_string(ndim) +
                                   " dimensions, got " + std::to_string(a.ndim()));
  if (!(a.flags() & py::array::c_style))
    throw grimsim::InvalidArgument(std::string(name) +
                                   " must be C-contiguous (use numpy.ascontiguousarray)");
  return py::reinterpret_borrow<py::array_t<float>>(a);
}

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

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "grimsim C++ kernels (fp32): dense, CSR and BCR sparse GEMM";
  py::register_exception<grimsim::InvalidArgument>(m, "KernelArgumentError", PyExc_ValueError);
  m.def("dense_reference", &dense_reference, py::arg("w"), py::arg("x"),
        "Reference dense GEMM y = w @ x (float32, C-contiguous).");
#ifdef GRIMSIM_VERSION
  m.attr("__version__") = GRIMSIM_VERSION;
#endif
}
