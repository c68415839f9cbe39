// Shared helpers for the pybind11 bindings: every array is validated before a kernel runs.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "grimsim/kernels.hpp"

namespace grimsim_bind {
namespace py = pybind11;

// Accepts only C-contiguous float32 arrays of the given rank; never converts silently,
// so a caller passing float64 or a strided view learns what to fix.
inline py::array_t<float> require_f32(const py::array& a, const char* name, int ndim) {
  if (a.dtype().kind() != 'f' || a.itemsize() != 4)
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

void register_dense(py::module_& m);
void register_sparse(py::module_& m);

}  // namespace grimsim_bind
