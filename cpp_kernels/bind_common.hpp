// Shared helpers for the pybind11 bindings: every array is validated before a kernel runs,
// and every kernel has a bench_* twin timed by the C++ harness (grimsim/harness.hpp).
//
// HOW TO BIND A KERNEL AND ITS BENCHMARK
//     auto w = require_f32(w_in, "w", 2);               // dtype, rank, C-contiguity
//     ... check shapes with grimsim::check(...) ...
//     {
//       py::gil_scoped_release release;                 // kernels never touch Python objects
//       my_kernel(w.data(), ..., threads);
//     }
//   and for the benchmark, same validation, then
//     grimsim::TimingOptions opt = bench_options(threads, min_time_s, warmup, max_reps,
//                                                flush_cache_bytes);
//     grimsim::TimingResult r;
//     { py::gil_scoped_release release; r = grimsim::time_kernel([&] { my_kernel(...); }, opt); }
//     return timing_dict(r);
//   registered with `..., py::arg("threads") = 1, GRIMSIM_BENCH_ARGS`.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "grimsim/harness.hpp"
#include "grimsim/kernels.hpp"

namespace grimsim_bind {
namespace py = pybind11;

// The rank and C-contiguity every array argument must have (never converted silently).
inline void require_layout(const py::array& a, const char* name, int ndim) {
  if (a.ndim() != ndim)
    throw grimsim::InvalidArgument(std::string(name) + " must have " + std::to_string(ndim) +
                                   " dimensions, got " + std::to_string(a.ndim()));
  if (!(a.flags() & py::array::c_style))
    throw grimsim::InvalidArgument(std::string(name) +
                                   " must be C-contiguous (use numpy.ascontiguousarray)");
}

// Accepts only C-contiguous float32 arrays of the given rank; never converts silently,
// so a caller passing float64 or a strided view learns what to fix.
inline py::array_t<float> require_f32(const py::array& a, const char* name, int ndim) {
  if (a.dtype().kind() != 'f' || a.itemsize() != 4)
    throw grimsim::InvalidArgument(std::string(name) + " must be float32, got dtype " +
                                   std::string(py::str(a.dtype())));
  require_layout(a, name, ndim);
  return py::reinterpret_borrow<py::array_t<float>>(a);
}

// Same for an integer array of exactly this itemsize (4: int32, 8: int64) and kind 'i'/'u'.
template <class T>
inline py::array_t<T> require_int(const py::array& a, const char* name, int ndim) {
  const char kind = a.dtype().kind();
  if ((kind != 'i' && kind != 'u') || a.itemsize() != static_cast<py::ssize_t>(sizeof(T)))
    throw grimsim::InvalidArgument(std::string(name) + " must be int" +
                                   std::to_string(8 * sizeof(T)) + ", got dtype " +
                                   std::string(py::str(a.dtype())));
  require_layout(a, name, ndim);
  return py::reinterpret_borrow<py::array_t<T>>(a);
}

// A new C-contiguous float32 array (uninitialised) whose data starts on a cache line, as an
// inference engine allocates its activations (numpy's large arrays start 16 bytes past one):
// rows of whole lines are then read and written without 64-byte vector accesses split over
// two lines (large ones start on a huge page: grimsim::alloc_aligned). Every kernel output
// is made here. Measured on a Sapphire Rapids VM (2026-11-26, 16x32 BCR at 75 / 90 %,
// interleaved A/B): a cache-line-aligned Y alone 2-7 % faster for 1024x1024x32 and
// 128x1152x784, with an aligned X as well 9-25 % (N = 32, 784, 3136).
inline py::array_t<float> new_f32(const std::vector<std::int64_t>& shape) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  std::size_t count = 1;
  for (const py::ssize_t d : dims) {
    if (d < 0) throw grimsim::InvalidArgument("negative array dimension");
    count *= static_cast<std::size_t>(d);
  }
  auto buffer = std::make_unique<grimsim::AlignedArray<float>>(std::max<std::size_t>(count, 1));
  py::capsule owner(buffer.get(),
                    [](void* p) { delete static_cast<grimsim::AlignedArray<float>*>(p); });
  float* data = buffer.release()->data();  // the capsule owns it from here
  return py::array_t<float>(dims, data, owner);
}

inline std::vector<std::int64_t> shape_of(const py::array& a) {
  std::vector<std::int64_t> s(static_cast<std::size_t>(a.ndim()));
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s[static_cast<std::size_t>(i)] = a.shape(i);
  return s;
}

inline std::string shape_text(const std::vector<std::int64_t>& s) {
  std::string t = "(";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

// "name has shape (a, b, c)" for error messages.
inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// `out` validated against the expected shape (float32, C-contiguous, writeable, not
// overlapping the input; the very same array only where `in_place_ok`, for element-wise
// ops), or a new array of that shape. Lets a caller reuse one buffer call after call, as an
// engine's memory plan does, instead of paying for fresh pages each time.
inline py::array_t<float> output_f32(const py::object& out_arr,
                                     const std::vector<std::int64_t>& shape,
                                     const py::array& input, bool in_place_ok) {
  if (out_arr.is_none()) return new_f32(shape);
  if (!py::isinstance<py::array>(out_arr))
    throw grimsim::InvalidArgument("out must be None or a float32 numpy array");
  auto out = require_f32(out_arr.cast<py::array>(), "out", static_cast<int>(shape.size()));
  grimsim::check(shape_of(out) == shape, "out has shape " + shape_str(out) + ", expected " +
                                             shape_text(shape));
  grimsim::check(out.writeable(), "out must be writeable");
  const auto* o0 = reinterpret_cast<const char*>(out.data());
  const auto* i0 = static_cast<const char*>(input.data());
  const bool apart = o0 + out.nbytes() <= i0 || i0 + input.nbytes() <= o0;
  grimsim::check(apart || (in_place_ok && o0 == i0),
                 in_place_ok ? "out must not partly overlap the input (the same array is fine "
                               "only for element-wise ops)"
                             : "out must not overlap the input");
  return out;
}

// The keyword arguments every bench_* function takes after its kernel's own arguments.
#define GRIMSIM_BENCH_ARGS                                                      \
  pybind11::arg("min_time_s") = 0.2, pybind11::arg("warmup") = 1,               \
      pybind11::arg("max_reps") = 1000, pybind11::arg("flush_cache_bytes") = 0

inline grimsim::TimingOptions bench_options(int threads, double min_time_s, int warmup,
                                            std::int64_t max_reps,
                                            std::int64_t flush_cache_bytes) {
  grimsim::check_threads(threads);
  grimsim::check(flush_cache_bytes >= 0, "flush_cache_bytes must be >= 0");
  grimsim::TimingOptions o;
  o.threads = threads;
  o.min_time_s = min_time_s;
  o.warmup = warmup;
  o.max_reps = max_reps;
  o.flush_cache_bytes = static_cast<std::size_t>(flush_cache_bytes);
  return o;
}

// {"median_s", "min_s", "mean_s", "max_s", "reps"} (samples left out: they can be many).
inline py::dict timing_dict(const grimsim::TimingResult& r) {
  py::dict d;
  d["median_s"] = r.median_s;
  d["min_s"] = r.min_s;
  d["mean_s"] = r.mean_s;
  d["max_s"] = r.max_s;
  d["reps"] = r.reps;
  d["short_reps"] = r.short_reps;
  d["full_min_s"] = r.full_min_s;
  return d;
}

void register_dense(py::module_& m);
void register_sparse(py::module_& m);
void register_cheap(py::module_& m);

}  // namespace grimsim_bind
