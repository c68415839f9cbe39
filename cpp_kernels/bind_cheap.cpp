// Bindings of the cheap ops (grimsim/cheap.hpp): permute, resize, softmax, activations and
// per-channel affine, each writing into `out` when given (the runner times them on
// preallocated arrays, as an engine runs them on its own buffers).
#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "bind_common.hpp"
#include "grimsim/cheap.hpp"

namespace grimsim_bind {

namespace {

// A float32 C-contiguous input of any rank >= 1 with at least one element.
py::array_t<float> input_f32(const py::array& a, const char* name) {
  grimsim::check(a.ndim() >= 1, std::string(name) + " must have at least one dimension");
  auto x = require_f32(a, name, static_cast<int>(a.ndim()));
  grimsim::check(x.size() >= 1, std::string(name) + " must not be empty");
  return x;
}

py::array_t<float> permute(const py::array& in, const std::vector<std::int64_t>& perm,
                           const py::object& out_arr, int threads) {
  grimsim::check_threads(threads);
  auto x = input_f32(in, "input");
  const auto shape = shape_of(x);
  const int rank = static_cast<int>(shape.size());
  grimsim::check(rank <= grimsim::kMaxPermuteRank,
                 "permute supports up to " + std::to_string(grimsim::kMaxPermuteRank) +
                     " dimensions, got " + std::to_string(rank));
  grimsim::check(static_cast<int>(perm.size()) == rank,
                 "perm must have one entry per input axis (" + std::to_string(rank) +
                     "), got " + std::to_string(perm.size()));
  std::vector<bool> seen(static_cast<std::size_t>(rank), false);
  std::vector<std::int64_t> out_shape(shape.size());
  for (int i = 0; i < rank; ++i) {
    const std::int64_t a = perm[static_cast<std::size_t>(i)];
    grimsim::check(a >= 0 && a < rank && !seen[static_cast<std::size_t>(a)],
                   "perm must be a permutation of 0.." + std::to_string(rank - 1) + ", got " +
                       shape_text(perm));
    seen[static_cast<std::size_t>(a)] = true;
    out_shape[static_cast<std::size_t>(i)] = shape[static_cast<std::size_t>(a)];
  }
  auto out = output_f32(out_arr, out_shape, x, /*in_place_ok=*/true);
  grimsim::check(out.data() != x.data() || rank == 1,
                 "permute cannot write into its input (pass another array as out)");
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::permute(x.data(), shape.data(), perm.data(), rank, op, threads);
  }
  return out;
}

py::array_t<float> resize2d(const py::array& in, std::pair<std::int64_t, std::int64_t> out_hw,
                            const std::string& mode, const py::object& out_arr, int threads) {
  grimsim::check_threads(threads);
  grimsim::check(mode == "nearest" || mode == "bilinear",
                 "resize mode must be 'nearest' or 'bilinear', got '" + mode + "'");
  grimsim::check(in.ndim() == 4, "input must be (N, C, H, W), got " + shape_str(in));
  auto x = input_f32(in, "input");
  grimsim::check(out_hw.first >= 1 && out_hw.second >= 1,
                 "out_hw must be >= (1, 1), got (" + std::to_string(out_hw.first) + ", " +
                     std::to_string(out_hw.second) + ")");
  const std::vector<std::int64_t> out_shape = {x.shape(0), x.shape(1), out_hw.first,
                                               out_hw.second};
  auto out = output_f32(out_arr, out_shape, x, /*in_place_ok=*/true);
  grimsim::check(out.data() != x.data(), "resize cannot write into its input");
  float* op = out.mutable_data();
  const auto m = mode == "nearest" ? grimsim::ResizeMode::nearest : grimsim::ResizeMode::bilinear;
  {
    py::gil_scoped_release release;
    grimsim::resize2d(x.data(), x.shape(0) * x.shape(1), x.shape(2), x.shape(3), out_hw.first,
                      out_hw.second, m, op, threads);
  }
  return out;
}

py::array_t<float> softmax(const py::array& in, int axis, const py::object& out_arr,
                           int threads) {
  grimsim::check_threads(threads);
  auto x = input_f32(in, "input");
  const auto shape = shape_of(x);
  const int rank = static_cast<int>(shape.size());
  grimsim::check(axis >= -rank && axis < rank, "axis " + std::to_string(axis) +
                                                   " is out of range for " + shape_text(shape));
  const int ax = axis < 0 ? axis + rank : axis;
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; ++i) outer *= shape[static_cast<std::size_t>(i)];
  for (int i = ax + 1; i < rank; ++i) inner *= shape[static_cast<std::size_t>(i)];
  auto out = output_f32(out_arr, shape, x, /*in_place_ok=*/true);
  grimsim::check(out.data() != x.data() || inner == 1,
                 "a strided softmax cannot write into its input");
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::softmax(x.data(), outer, shape[static_cast<std::size_t>(ax)], inner, op, threads);
  }
  return out;
}

grimsim::Unary unary_kind(const std::string& kind) {
  static const std::pair<const char*, grimsim::Unary> kinds[] = {
      {"relu", grimsim::Unary::relu},          {"relu6", grimsim::Unary::relu6},
      {"leakyrelu", grimsim::Unary::leakyrelu}, {"sigmoid", grimsim::Unary::sigmoid},
      {"tanh", grimsim::Unary::tanh},          {"swish", grimsim::Unary::swish},
      {"hardswish", grimsim::Unary::hardswish}, {"hardsigmoid", grimsim::Unary::hardsigmoid},
      {"gelu", grimsim::Unary::gelu},          {"elu", grimsim::Unary::elu},
      {"mish", grimsim::Unary::mish},          {"exp", grimsim::Unary::exp}};
  std::string names;
  for (const auto& [name, k] : kinds) {
    if (kind == name) return k;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  throw grimsim::InvalidArgument("unknown activation '" + kind + "' (known: " + names + ")");
}

py::array_t<float> unary(const py::array& in, const std::string& kind, float alpha,
                         const py::object& out_arr, int threads) {
  grimsim::check_threads(threads);
  const grimsim::Unary k = unary_kind(kind);
  auto x = input_f32(in, "input");
  auto out = output_f32(out_arr, shape_of(x), x, /*in_place_ok=*/true);
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::unary(x.data(), x.size(), k, alpha, op, threads);
  }
  return out;
}

py::array_t<float> channel_affine(const py::array& in, const py::array& scale_in,
                                  const py::array& shift_in, const py::object& out_arr,
                                  int threads) {
  grimsim::check_threads(threads);
  grimsim::check(in.ndim() >= 2, "input must have a channel axis (N, C, ...), got " +
                                     shape_str(in));
  auto x = input_f32(in, "input");
  auto scale = require_f32(scale_in, "scale", 1);
  auto shift = require_f32(shift_in, "shift", 1);
  const std::int64_t channels = x.shape(1);
  grimsim::check(scale.shape(0) == channels && shift.shape(0) == channels,
                 "scale and shift must hold one value per channel (" +
                     std::to_string(channels) + "), got " + shape_str(scale) + " and " +
                     shape_str(shift));
  auto out = output_f32(out_arr, shape_of(x), x, /*in_place_ok=*/true);
  float* op = out.mutable_data();
  const std::int64_t inner = x.size() / (x.shape(0) * channels);
  {
    py::gil_scoped_release release;
    grimsim::channel_affine(x.data(), x.shape(0), channels, inner, scale.data(), shift.data(),
                            op, threads);
  }
  return out;
}

// An optional 1-D float32 parameter of `n` values (None -> null).
const float* optional_vector(const py::object& v, std::int64_t n, const char* name,
                             py::array_t<float>& keep) {
  if (v.is_none()) return nullptr;
  if (!py::isinstance<py::array>(v))
    throw grimsim::InvalidArgument(std::string(name) + " must be None or a float32 array");
  keep = require_f32(v.cast<py::array>(), name, 1);
  grimsim::check(keep.shape(0) == n, std::string(name) + " must hold " + std::to_string(n) +
                                         " values (the last axis), got " + shape_str(keep));
  return keep.data();
}

py::array_t<float> layernorm(const py::array& in, const py::object& gamma_in,
                             const py::object& beta_in, float eps, const py::object& out_arr,
                             int threads) {
  grimsim::check_threads(threads);
  auto x = input_f32(in, "input");
  const std::int64_t dim = x.shape(x.ndim() - 1);
  py::array_t<float> gamma_keep, beta_keep;
  const float* gamma = optional_vector(gamma_in, dim, "gamma", gamma_keep);
  const float* beta = optional_vector(beta_in, dim, "beta", beta_keep);
  auto out = output_f32(out_arr, shape_of(x), x, /*in_place_ok=*/true);
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::layernorm(x.data(), x.size() / dim, dim, gamma, beta, eps, op, threads);
  }
  return out;
}

py::array_t<float> lrn(const py::array& in, std::int64_t size, float alpha, float beta, float k,
                       const py::object& out_arr, int threads) {
  grimsim::check_threads(threads);
  grimsim::check(in.ndim() >= 2, "input must have a channel axis (N, C, ...), got " +
                                     shape_str(in));
  auto x = input_f32(in, "input");
  auto out = output_f32(out_arr, shape_of(x), x, /*in_place_ok=*/true);
  grimsim::check(out.data() != x.data(), "lrn cannot write into its input");
  float* op = out.mutable_data();
  const std::int64_t channels = x.shape(1), plane = x.size() / (x.shape(0) * channels);
  {
    py::gil_scoped_release release;
    grimsim::lrn_across_channels(x.data(), x.shape(0), channels, plane, size, alpha, beta, k,
                                 op, threads);
  }
  return out;
}

}  // namespace

void register_cheap(py::module_& m) {
  m.def("layernorm", &layernorm, py::arg("input"), py::arg("gamma") = py::none(),
        py::arg("beta") = py::none(), py::arg("eps") = 1e-5f, py::arg("out") = py::none(),
        py::arg("threads") = 1,
        "Layer norm over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta.");
  m.def("lrn", &lrn, py::arg("input"), py::arg("size") = 5, py::arg("alpha") = 1e-4f,
        py::arg("beta") = 0.75f, py::arg("k") = 1.0f, py::arg("out") = py::none(),
        py::arg("threads") = 1,
        "Local response norm across channels of (N, C, ...): x / (k + alpha / size * window "
        "sum of x^2)^beta, windows clipped at the first and last channel.");
  m.def("permute", &permute, py::arg("input"), py::arg("perm"), py::arg("out") = py::none(),
        py::arg("threads") = 1,
        "input.transpose(perm) copied into a C-contiguous array (`out` when given): "
        "contiguous runs copied whole, a moved innermost axis in 16x16 tiles.");
  m.def("resize2d", &resize2d, py::arg("input"), py::arg("out_hw"),
        py::arg("mode") = "nearest", py::arg("out") = py::none(), py::arg("threads") = 1,
        "Resize (N, C, H, W) to (N, C, out_h, out_w): 'nearest' takes floor(i * H / out_h); "
        "'bilinear' uses half-pixel centres with clamped edges (align_corners=False).");
  m.def("softmax", &softmax, py::arg("input"), py::arg("axis") = -1,
        py::arg("out") = py::none(), py::arg("threads") = 1,
        "Softmax along `axis` (max-subtracted), one pass per plane with a vectorised exp.");
  m.def("unary", &unary, py::arg("input"), py::arg("kind"), py::arg("alpha") = 0.01f,
        py::arg("out") = py::none(), py::arg("threads") = 1,
        "Element-wise activation: relu, relu6, leakyrelu (slope alpha), sigmoid, tanh, "
        "swish, hardswish, hardsigmoid, gelu (tanh form), elu (alpha), mish, exp.");
  m.def("channel_affine", &channel_affine, py::arg("input"), py::arg("scale"),
        py::arg("shift"), py::arg("out") = py::none(), py::arg("threads") = 1,
        "Batch norm / scale at inference: input (N, C, ...) * scale[c] + shift[c].");
}

}  // namespace grimsim_bind
