// Bindings of the dense kernels, the timing harness and the host microbenchmarks.
#include <memory>
#include <tuple>
#include <utility>

#include "bind_common.hpp"
#include "grimsim/dense.hpp"
#include "grimsim/parallel.hpp"
#include "grimsim/simd.hpp"

namespace grimsim_bind {

namespace {

py::array_t<float> dense_reference(const py::array& w_in, const py::array& x_in) {
  auto w = require_f32(w_in, "w", 2);
  auto x = require_f32(x_in, "x", 2);
  const auto M = w.shape(0), K = w.shape(1), N = x.shape(1);
  if (x.shape(0) != K)
    throw grimsim::InvalidArgument("x has " + std::to_string(x.shape(0)) +
                                   " rows but w has K=" + std::to_string(K) + " columns");
  py::array_t<float> y = new_f32({M, N});
  const float* wp = w.data();
  const float* xp = x.data();
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::dense_gemm_reference(wp, xp, yp, M, K, N);
  }
  return y;
}

struct GemmArgs {
  py::array_t<float> w, x;
  std::int64_t M, K, N;
};

GemmArgs gemm_args(const py::array& w_in, const py::array& x_in, int threads) {
  grimsim::check_threads(threads);
  auto w = require_f32(w_in, "w", 2);
  auto x = require_f32(x_in, "x", 2);
  const auto M = w.shape(0), K = w.shape(1), N = x.shape(1);
  grimsim::check(x.shape(0) == K, "x has shape " + shape_str(x) + " but w has shape " +
                                      shape_str(w) + ": x needs K=" + std::to_string(K) +
                                      " rows");
  return GemmArgs{w, x, M, K, N};
}

py::array_t<float> dense_gemm(const py::array& w_in, const py::array& x_in, int threads) {
  const GemmArgs a = gemm_args(w_in, x_in, threads);
  py::array_t<float> y = new_f32({a.M, a.N});
  const float* wp = a.w.data();
  const float* xp = a.x.data();
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::dense_gemm(wp, xp, yp, a.M, a.K, a.N, threads);
  }
  return y;
}

py::dict bench_dense(const py::array& w_in, const py::array& x_in, int threads,
                     double min_time_s, int warmup, std::int64_t max_reps,
                     std::int64_t flush_cache_bytes) {
  const GemmArgs a = gemm_args(w_in, x_in, threads);
  const auto opt = bench_options(threads, min_time_s, warmup, max_reps, flush_cache_bytes);
  py::array_t<float> y = new_f32({a.M, a.N});
  const float* wp = a.w.data();
  const float* xp = a.x.data();
  float* yp = y.mutable_data();
  grimsim::TimingResult r;
  {
    py::gil_scoped_release release;
    r = grimsim::time_kernel([&] { grimsim::dense_gemm(wp, xp, yp, a.M, a.K, a.N, threads); },
                             opt);
  }
  return timing_dict(r);
}

// ---------------------------------------------------------------- convolutions ----------

// An int or a pair of ints (height, width) -> pair.
std::pair<std::int64_t, std::int64_t> int_pair(const py::handle& v, const char* name) {
  if (py::isinstance<py::int_>(v) && !py::isinstance<py::bool_>(v)) {
    const auto x = v.cast<std::int64_t>();
    return {x, x};
  }
  if (py::isinstance<py::sequence>(v) && !py::isinstance<py::str>(v)) {
    auto seq = v.cast<py::sequence>();
    if (seq.size() == 2 && py::isinstance<py::int_>(seq[0]) && py::isinstance<py::int_>(seq[1]))
      return {seq[0].cast<std::int64_t>(), seq[1].cast<std::int64_t>()};
  }
  throw grimsim::InvalidArgument(std::string(name) + " must be an int or a pair of ints, got " +
                                 std::string(py::repr(v)));
}

// input (1, C, H, W) float32 -> validated array and its geometry (kernel etc. filled later).
py::array_t<float> conv_input(const py::array& in, grimsim::ConvGeometry& g) {
  auto x = require_f32(in, "input", 4);
  grimsim::check(x.shape(0) == 1, "input must have batch 1 (shape (1, C, H, W)), got shape " +
                                      shape_str(x));
  g.channels = x.shape(1);
  g.height = x.shape(2);
  g.width = x.shape(3);
  return x;
}

void set_window(grimsim::ConvGeometry& g, const py::handle& kernel, const py::handle& stride,
                const py::handle& pad, const py::handle& dilation) {
  std::tie(g.kernel_h, g.kernel_w) = int_pair(kernel, "kernel");
  std::tie(g.stride_h, g.stride_w) = int_pair(stride, "stride");
  std::tie(g.pad_h, g.pad_w) = int_pair(pad, "pad");
  std::tie(g.dilation_h, g.dilation_w) = int_pair(dilation, "dilation");
  grimsim::check_conv_geometry(g);
}

// None or float32[n].
const float* optional_bias(const py::object& bias, std::int64_t n, py::array_t<float>& keep) {
  if (bias.is_none()) return nullptr;
  if (!py::isinstance<py::array>(bias))
    throw grimsim::InvalidArgument("bias must be None or a float32 numpy array");
  keep = require_f32(bias.cast<py::array>(), "bias", 1);
  grimsim::check(keep.shape(0) == n, "bias has shape " + shape_str(keep) + ", expected (" +
                                         std::to_string(n) + ",)");
  return keep.data();
}

// im2col --------------------------------------------------------------------------------
py::array_t<float> im2col(const py::array& in, const py::object& kernel,
                          const py::object& stride, const py::object& pad,
                          const py::object& dilation, int threads, const py::object& out) {
  grimsim::check_threads(threads);
  grimsim::ConvGeometry g;
  auto x = conv_input(in, g);
  set_window(g, kernel, stride, pad, dilation);
  py::array_t<float> cols =
      output_f32(out, {g.channels * g.kernel_h * g.kernel_w, g.out_h() * g.out_w()}, x,
                 /*in_place_ok=*/false);
  const float* xp = x.data();
  float* cp = cols.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::im2col(xp, g, cp, threads);
  }
  return cols;
}

// conv2d_gemm ---------------------------------------------------------------------------
struct ConvGemmArgs {
  grimsim::ConvGeometry g;
  py::array_t<float> x, w, b;
  const float* bias = nullptr;
  std::int64_t out_channels = 0, groups = 1;
};

ConvGemmArgs conv_gemm_args(const py::array& in, const py::array& w2d, const py::object& kernel,
                            const py::object& stride, const py::object& pad,
                            const py::object& dilation, std::int64_t groups,
                            const py::object& bias, int threads) {
  grimsim::check_threads(threads);
  ConvGemmArgs a;
  a.x = conv_input(in, a.g);
  set_window(a.g, kernel, stride, pad, dilation);
  grimsim::check(groups >= 1, "groups must be >= 1, got " + std::to_string(groups));
  grimsim::check(a.g.channels % groups == 0, "input channels (" + std::to_string(a.g.channels) +
                                                 ") not divisible by groups (" +
                                                 std::to_string(groups) + ")");
  a.w = require_f32(w2d, "w2d", 2);
  a.out_channels = a.w.shape(0);
  a.groups = groups;
  const std::int64_t kg = a.g.channels / groups * a.g.kernel_h * a.g.kernel_w;
  grimsim::check(a.out_channels >= 1 && a.out_channels % groups == 0,
                 "w2d rows (out channels, " + std::to_string(a.out_channels) +
                     ") must be >= 1 and divisible by groups (" + std::to_string(groups) + ")");
  grimsim::check(a.w.shape(1) == kg,
                 "w2d has shape " + shape_str(a.w) + ", expected (Cout, " + std::to_string(kg) +
                     ") = (Cout, C/groups * kh * kw)");
  a.bias = optional_bias(bias, a.out_channels, a.b);
  return a;
}

py::array_t<float> conv2d_gemm(const py::array& in, const py::array& w2d,
                               const py::object& kernel, const py::object& stride,
                               const py::object& pad, const py::object& dilation,
                               std::int64_t groups, const py::object& bias, int threads) {
  auto a = conv_gemm_args(in, w2d, kernel, stride, pad, dilation, groups, bias, threads);
  py::array_t<float> out = new_f32({std::int64_t{1}, a.out_channels, a.g.out_h(), a.g.out_w()});
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::conv2d_gemm(a.x.data(), a.g, a.w.data(), a.out_channels, a.groups, a.bias, op,
                         threads);
  }
  return out;
}

py::dict bench_conv2d_gemm(const py::array& in, const py::array& w2d, const py::object& kernel,
                           const py::object& stride, const py::object& pad,
                           const py::object& dilation, std::int64_t groups,
                           const py::object& bias, int threads, double min_time_s, int warmup,
                           std::int64_t max_reps, std::int64_t flush_cache_bytes) {
  auto a = conv_gemm_args(in, w2d, kernel, stride, pad, dilation, groups, bias, threads);
  const auto opt = bench_options(threads, min_time_s, warmup, max_reps, flush_cache_bytes);
  py::array_t<float> out = new_f32({std::int64_t{1}, a.out_channels, a.g.out_h(), a.g.out_w()});
  float* op = out.mutable_data();
  grimsim::TimingResult r;
  {
    py::gil_scoped_release release;
    r = grimsim::time_kernel(
        [&] {
          grimsim::conv2d_gemm(a.x.data(), a.g, a.w.data(), a.out_channels, a.groups, a.bias,
                               op, threads);
        },
        opt);
  }
  return timing_dict(r);
}

// depthwise -----------------------------------------------------------------------------
struct DepthwiseArgs {
  grimsim::ConvGeometry g;
  py::array_t<float> x, w, b;
  const float* bias = nullptr;
};

DepthwiseArgs depthwise_args(const py::array& in, const py::array& weight,
                             const py::object& stride, const py::object& pad,
                             const py::object& dilation, const py::object& bias, int threads) {
  grimsim::check_threads(threads);
  DepthwiseArgs a;
  a.x = conv_input(in, a.g);
  a.w = require_f32(weight, "weight", 4);
  grimsim::check(a.w.shape(0) == a.g.channels && a.w.shape(1) == 1,
                 "depthwise weight has shape " + shape_str(a.w) + ", expected (" +
                     std::to_string(a.g.channels) + ", 1, kh, kw)");
  set_window(a.g, py::make_tuple(a.w.shape(2), a.w.shape(3)), stride, pad, dilation);
  a.bias = optional_bias(bias, a.g.channels, a.b);
  return a;
}

py::array_t<float> depthwise_conv2d(const py::array& in, const py::array& weight,
                                    const py::object& stride, const py::object& pad,
                                    const py::object& dilation, const py::object& bias,
                                    int threads) {
  auto a = depthwise_args(in, weight, stride, pad, dilation, bias, threads);
  py::array_t<float> out = new_f32({std::int64_t{1}, a.g.channels, a.g.out_h(), a.g.out_w()});
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::depthwise_conv2d(a.x.data(), a.g, a.w.data(), a.bias, op, threads);
  }
  return out;
}

py::dict bench_depthwise(const py::array& in, const py::array& weight, const py::object& stride,
                         const py::object& pad, const py::object& dilation,
                         const py::object& bias, int threads, double min_time_s, int warmup,
                         std::int64_t max_reps, std::int64_t flush_cache_bytes) {
  auto a = depthwise_args(in, weight, stride, pad, dilation, bias, threads);
  const auto opt = bench_options(threads, min_time_s, warmup, max_reps, flush_cache_bytes);
  py::array_t<float> out = new_f32({std::int64_t{1}, a.g.channels, a.g.out_h(), a.g.out_w()});
  float* op = out.mutable_data();
  grimsim::TimingResult r;
  {
    py::gil_scoped_release release;
    r = grimsim::time_kernel(
        [&] { grimsim::depthwise_conv2d(a.x.data(), a.g, a.w.data(), a.bias, op, threads); },
        opt);
  }
  return timing_dict(r);
}

// pooling -------------------------------------------------------------------------------
py::array_t<float> pool2d(const py::array& in, const py::object& kernel, const py::object& stride,
                          const py::object& padding, const py::object& out_hw,
                          const std::string& kind, int threads, const py::object& out_arr) {
  grimsim::check_threads(threads);
  grimsim::check(kind == "max" || kind == "avg",
                 "pool kind must be 'max' or 'avg', got '" + kind + "'");
  grimsim::ConvGeometry c;
  auto x = conv_input(in, c);
  grimsim::PoolGeometry g;
  g.channels = c.channels;
  g.height = c.height;
  g.width = c.width;
  std::tie(g.kernel_h, g.kernel_w) = int_pair(kernel, "kernel");
  std::tie(g.stride_h, g.stride_w) = int_pair(stride, "stride");
  std::tie(g.pad_top, g.pad_left) = int_pair(padding, "padding");
  std::tie(g.out_h, g.out_w) = int_pair(out_hw, "out_hw");
  grimsim::check_pool_geometry(g);
  py::array_t<float> out;
  if (out_arr.is_none()) {
    out = new_f32({std::int64_t{1}, g.channels, g.out_h, g.out_w});
  } else {
    if (!py::isinstance<py::array>(out_arr))
      throw grimsim::InvalidArgument("out must be None or a float32 numpy array");
    out = require_f32(out_arr.cast<py::array>(), "out", 4);
    grimsim::check(out.shape(0) == 1 && out.shape(1) == g.channels && out.shape(2) == g.out_h &&
                       out.shape(3) == g.out_w,
                   "out has shape " + shape_str(out) + ", expected (1, " +
                       std::to_string(g.channels) + ", " + std::to_string(g.out_h) + ", " +
                       std::to_string(g.out_w) + ")");
    grimsim::check(out.writeable(), "out must be writeable");
  }
  float* op = out.mutable_data();
  const bool is_max = kind == "max";
  {
    py::gil_scoped_release release;
    grimsim::pool2d(x.data(), g, is_max, op, threads);
  }
  return out;
}

// Winograd ------------------------------------------------------------------------------
std::shared_ptr<grimsim::WinogradWeights> winograd_pack(const py::array& weight, int threads,
                                                        int output_tile) {
  grimsim::check_threads(threads);
  auto w = require_f32(weight, "weight", 4);
  grimsim::check(w.shape(2) == 3 && w.shape(3) == 3 && w.shape(0) >= 1 && w.shape(1) >= 1,
                 "Winograd weight must have shape (Cout, C, 3, 3), got " + shape_str(w));
  const float* wp = w.data();
  auto packed = std::make_shared<grimsim::WinogradWeights>();
  {
    py::gil_scoped_release release;
    *packed = grimsim::winograd_pack_weights(wp, w.shape(0), w.shape(1), threads, output_tile);
  }
  return packed;
}

struct WinogradArgs {
  py::array_t<float> x, b;
  std::shared_ptr<grimsim::WinogradWeights> w;
  const float* bias = nullptr;
  std::int64_t height = 0, width = 0, pad_h = 0, pad_w = 0, out_h = 0, out_w = 0;
};

WinogradArgs winograd_args(const py::array& in, const py::object& weight, const py::object& bias,
                           const py::object& pad, int threads) {
  grimsim::check_threads(threads);
  WinogradArgs a;
  grimsim::ConvGeometry g;
  a.x = conv_input(in, g);
  std::tie(a.pad_h, a.pad_w) = int_pair(pad, "pad");
  g.kernel_h = g.kernel_w = 3;
  g.pad_h = a.pad_h;
  g.pad_w = a.pad_w;
  grimsim::check_conv_geometry(g);
  if (py::isinstance<grimsim::WinogradWeights>(weight)) {
    a.w = weight.cast<std::shared_ptr<grimsim::WinogradWeights>>();
  } else if (py::isinstance<py::array>(weight)) {
    a.w = winograd_pack(weight.cast<py::array>(), threads,
                        grimsim::winograd_preferred_tile(g.out_h(), g.out_w()));
  } else {
    throw grimsim::InvalidArgument(
        "weight must be a float32 array (Cout, C, 3, 3) or winograd_pack_weights(...)");
  }
  grimsim::check(a.w->in_channels == g.channels,
                 "input has " + std::to_string(g.channels) + " channels but the weights expect " +
                     std::to_string(a.w->in_channels));
  a.height = g.height;
  a.width = g.width;
  a.out_h = g.out_h();
  a.out_w = g.out_w();
  a.bias = optional_bias(bias, a.w->out_channels, a.b);
  return a;
}

py::array_t<float> winograd_conv3x3(const py::array& in, const py::object& weight,
                                    const py::object& bias, const py::object& pad, int threads) {
  auto a = winograd_args(in, weight, bias, pad, threads);
  py::array_t<float> out = new_f32({std::int64_t{1}, a.w->out_channels, a.out_h, a.out_w});
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::winograd_conv3x3(a.x.data(), a.height, a.width, *a.w, a.bias, a.pad_h, a.pad_w, op,
                              threads);
  }
  return out;
}

py::dict bench_winograd(const py::array& in, const py::object& weight, const py::object& bias,
                        const py::object& pad, int threads, double min_time_s, int warmup,
                        std::int64_t max_reps, std::int64_t flush_cache_bytes) {
  auto a = winograd_args(in, weight, bias, pad, threads);
  const auto opt = bench_options(threads, min_time_s, warmup, max_reps, flush_cache_bytes);
  py::array_t<float> out = new_f32({std::int64_t{1}, a.w->out_channels, a.out_h, a.out_w});
  float* op = out.mutable_data();
  grimsim::TimingResult r;
  {
    py::gil_scoped_release release;
    r = grimsim::time_kernel(
        [&] {
          grimsim::winograd_conv3x3(a.x.data(), a.height, a.width, *a.w, a.bias, a.pad_h,
                                    a.pad_w, op, threads);
        },
        opt);
  }
  return timing_dict(r);
}

// Packed weights ---------------------------------------------------------------------------
std::shared_ptr<grimsim::PackedGemmWeights> pack_weights(const py::array& w_in, int threads) {
  grimsim::check_threads(threads);
  auto w = require_f32(w_in, "w", 2);
  const float* wp = w.data();
  auto packed = std::make_shared<grimsim::PackedGemmWeights>();
  {
    py::gil_scoped_release release;
    *packed = grimsim::pack_gemm_weights(wp, w.shape(0), w.shape(1), threads);
  }
  return packed;
}

struct PackedArgs {
  std::shared_ptr<grimsim::PackedGemmWeights> w;
  py::array_t<float> x, b;
  const float* bias = nullptr;
  std::int64_t N = 0;
};

PackedArgs packed_args(const std::shared_ptr<grimsim::PackedGemmWeights>& w,
                       const py::array& x_in, const py::object& bias, int threads) {
  grimsim::check_threads(threads);
  grimsim::check(w != nullptr, "packed weights are None");
  PackedArgs a;
  a.w = w;
  a.x = require_f32(x_in, "x", 2);
  grimsim::check(a.x.shape(0) == w->K, "x has shape " + shape_str(a.x) +
                                           " but the packed weights have K=" +
                                           std::to_string(w->K));
  a.N = a.x.shape(1);
  a.bias = optional_bias(bias, w->M, a.b);
  return a;
}

py::array_t<float> dense_gemm_packed(const std::shared_ptr<grimsim::PackedGemmWeights>& w,
                                     const py::array& x_in, const py::object& bias,
                                     int threads) {
  auto a = packed_args(w, x_in, bias, threads);
  py::array_t<float> y = new_f32({w->M, a.N});
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    grimsim::dense_gemm_packed(*a.w, a.x.data(), yp, a.N, threads, a.bias);
  }
  return y;
}

py::dict bench_dense_packed(const std::shared_ptr<grimsim::PackedGemmWeights>& w,
                            const py::array& x_in, const py::object& bias, int threads,
                            double min_time_s, int warmup, std::int64_t max_reps,
                            std::int64_t flush_cache_bytes) {
  auto a = packed_args(w, x_in, bias, threads);
  const auto opt = bench_options(threads, min_time_s, warmup, max_reps, flush_cache_bytes);
  py::array_t<float> y = new_f32({w->M, a.N});
  float* yp = y.mutable_data();
  grimsim::TimingResult r;
  {
    py::gil_scoped_release release;
    r = grimsim::time_kernel(
        [&] { grimsim::dense_gemm_packed(*a.w, a.x.data(), yp, a.N, threads, a.bias); }, opt);
  }
  return timing_dict(r);
}

// Times a Python callable with the same harness as the kernels (peers such as numpy, timed
// the same way). The GIL is held: the callable is Python.
py::dict time_callable(const py::function& fn, int threads, double min_time_s, int warmup,
                       std::int64_t max_reps, std::int64_t flush_cache_bytes) {
  const auto opt = bench_options(threads, min_time_s, warmup, max_reps, flush_cache_bytes);
  return timing_dict(grimsim::time_kernel([&] { fn(); }, opt));
}

py::dict fma_peak(int threads, double seconds) {
  grimsim::FmaPeak r;
  {
    py::gil_scoped_release release;
    r = grimsim::measure_fma_peak(threads, seconds);
  }
  return py::dict(py::arg("gflops") = r.gflops, py::arg("clock_ghz") = r.clock_ghz,
                  py::arg("flops_per_cycle") = r.flops_per_cycle, py::arg("lanes") = r.lanes,
                  py::arg("simd") = std::string(r.simd), py::arg("threads") = r.threads,
                  py::arg("seconds") = r.seconds);
}

py::dict read_bandwidth(std::int64_t bytes, int threads, double seconds) {
  grimsim::check(bytes > 0, "bytes must be > 0");
  grimsim::Bandwidth r;
  {
    py::gil_scoped_release release;
    r = grimsim::measure_read_bandwidth(static_cast<std::size_t>(bytes), threads, seconds);
  }
  return py::dict(py::arg("gbytes_per_s") = r.gbytes_per_s, py::arg("bytes") = r.bytes,
                  py::arg("threads") = r.threads, py::arg("passes") = r.passes);
}

py::dict fork_join(int threads, double seconds) {
  grimsim::ForkJoin r;
  {
    py::gil_scoped_release release;
    r = grimsim::measure_fork_join(threads, seconds);
  }
  return py::dict(py::arg("min_s") = r.min_s, py::arg("median_s") = r.median_s,
                  py::arg("threads") = r.threads, py::arg("calls") = r.calls);
}

}  // namespace

void register_dense(py::module_& m) {
  m.def("dense_reference", &dense_reference, py::arg("w"), py::arg("x"),
        "Reference dense GEMM y = w @ x (float32, C-contiguous).");

  m.def("dense_gemm", &dense_gemm, py::arg("w"), py::arg("x"), py::arg("threads") = 1,
        "y = w @ x (float32, C-contiguous, w M x K, x K x N) by the packed SIMD GEMM "
        "(GEMV when N == 1). Releases the GIL.");
  m.def("bench_dense", &bench_dense, py::arg("w"), py::arg("x"), py::arg("threads") = 1,
        GRIMSIM_BENCH_ARGS, "Times dense_gemm with the C++ harness: {median_s, min_s, ...}.");

  py::class_<grimsim::PackedGemmWeights, std::shared_ptr<grimsim::PackedGemmWeights>>(
      m, "PackedGemmWeights",
      "GEMM weights packed once into register-tile panels for this machine's SIMD tier "
      "(opaque; from pack_gemm_weights).")
      .def_property_readonly("M", [](const grimsim::PackedGemmWeights& w) { return w.M; })
      .def_property_readonly("K", [](const grimsim::PackedGemmWeights& w) { return w.K; })
      .def_property_readonly("simd", [](const grimsim::PackedGemmWeights& w) {
        return std::string(grimsim::simd_level_name(w.level));
      })
      .def_property_readonly("nbytes", [](const grimsim::PackedGemmWeights& w) {
        return w.panels.size() * sizeof(float);
      });
  m.def("pack_gemm_weights", &pack_weights, py::arg("w"), py::arg("threads") = 1,
        "Packs w (M x K float32) once for dense_gemm_packed (inference weights).");
  m.def("dense_gemm_packed", &dense_gemm_packed, py::arg("w"), py::arg("x"),
        py::arg("bias") = py::none(), py::arg("threads") = 1,
        "y = W @ x (+ bias per row) for packed W; N == 1 streams the panels (GEMV).");
  m.def("bench_dense_packed", &bench_dense_packed, py::arg("w"), py::arg("x"),
        py::arg("bias") = py::none(), py::arg("threads") = 1, GRIMSIM_BENCH_ARGS,
        "Times dense_gemm_packed (packing not included).");

  m.def("im2col", &im2col, py::arg("input"), py::arg("kernel"), py::arg("stride") = 1,
        py::arg("pad") = 0, py::arg("dilation") = 1, py::arg("threads") = 1,
        py::arg("out") = py::none(),
        "im2col of input (1, C, H, W): (C*kh*kw, Ho*Wo), rows ordered channel, kernel row, "
        "kernel column; zeros over the padding. kernel/stride/pad/dilation: int or (h, w). "
        "out: a float32 (C*kh*kw, Ho*Wo) array to fill and return (reused across calls).");
  m.def("conv2d_gemm", &conv2d_gemm, py::arg("input"), py::arg("w2d"), py::arg("kernel"),
        py::arg("stride") = 1, py::arg("pad") = 0, py::arg("dilation") = 1,
        py::arg("groups") = 1, py::arg("bias") = py::none(), py::arg("threads") = 1,
        "Convolution by im2col + the packed GEMM: input (1, C, H, W), w2d (Cout, "
        "C/groups*kh*kw) -> (1, Cout, Ho, Wo).");
  m.def("bench_conv2d_gemm", &bench_conv2d_gemm, py::arg("input"), py::arg("w2d"),
        py::arg("kernel"), py::arg("stride") = 1, py::arg("pad") = 0, py::arg("dilation") = 1,
        py::arg("groups") = 1, py::arg("bias") = py::none(), py::arg("threads") = 1,
        GRIMSIM_BENCH_ARGS, "Times conv2d_gemm (im2col included).");
  m.def("depthwise_conv2d", &depthwise_conv2d, py::arg("input"), py::arg("weight"),
        py::arg("stride") = 1, py::arg("pad") = 0, py::arg("dilation") = 1,
        py::arg("bias") = py::none(), py::arg("threads") = 1,
        "Direct depthwise convolution: input (1, C, H, W), weight (C, 1, kh, kw).");
  m.def("bench_depthwise", &bench_depthwise, py::arg("input"), py::arg("weight"),
        py::arg("stride") = 1, py::arg("pad") = 0, py::arg("dilation") = 1,
        py::arg("bias") = py::none(), py::arg("threads") = 1, GRIMSIM_BENCH_ARGS,
        "Times depthwise_conv2d.");

  m.def("pool2d", &pool2d, py::arg("input"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("out_hw"), py::arg("kind") = "max", py::arg("threads") = 1,
        py::arg("out") = py::none(),
        "Max or average pooling: input (1, C, H, W) -> (1, C, out_h, out_w), written to `out` "
        "when given; padding = (top, left); outside the input counts as -inf (max) or 0 (avg "
        "divides by kh*kw).");
  py::class_<grimsim::WinogradWeights, std::shared_ptr<grimsim::WinogradWeights>>(
      m, "WinogradWeights",
      "3x3 weights transformed once for Winograd F(4,3) and packed for this machine's SIMD "
      "tier (opaque; from winograd_pack_weights).")
      .def_property_readonly("out_channels",
                             [](const grimsim::WinogradWeights& w) { return w.out_channels; })
      .def_property_readonly("in_channels",
                             [](const grimsim::WinogradWeights& w) { return w.in_channels; })
      .def_property_readonly("output_tile",
                             [](const grimsim::WinogradWeights& w) { return w.out_tile; })
      .def_property_readonly("simd", [](const grimsim::WinogradWeights& w) {
        return std::string(grimsim::simd_level_name(w.level));
      })
      .def_property_readonly("nbytes", [](const grimsim::WinogradWeights& w) {
        return w.panels.size() * sizeof(float);
      });
  m.def("winograd_pack_weights", &winograd_pack, py::arg("weight"), py::arg("threads") = 1,
        py::arg("output_tile") = 4,
        "Transforms (Cout, C, 3, 3) float32 weights once for winograd_conv3x3, for F(4,3) "
        "(output_tile=4) or F(2,3) (output_tile=2; see winograd_preferred_tile).");
  m.def("winograd_preferred_tile", &grimsim::winograd_preferred_tile, py::arg("out_h"),
        py::arg("out_w"),
        "Output tile (2 or 4) with less GEMM work for an out_h x out_w conv output.");
  m.def("winograd_conv3x3", &winograd_conv3x3, py::arg("input"), py::arg("weight"),
        py::arg("bias") = py::none(), py::arg("pad") = 1, py::arg("threads") = 1,
        "Stride-1 3x3 convolution by Winograd F(4,3): input (1, C, H, W), weight a "
        "WinogradWeights (or a (Cout, C, 3, 3) array, transformed on the fly) -> "
        "(1, Cout, H+2p-2, W+2p-2).");
  m.def("bench_winograd", &bench_winograd, py::arg("input"), py::arg("weight"),
        py::arg("bias") = py::none(), py::arg("pad") = 1, py::arg("threads") = 1,
        GRIMSIM_BENCH_ARGS, "Times winograd_conv3x3 (weights packed beforehand, not timed).");

  m.def("simd_level", &grimsim::simd_level,
        "SIMD tier the kernels use on this CPU: avx512, avx2, sse2, neon or scalar "
        "(env GRIMSIM_SIMD caps it).");
  m.def("parallel_backend", &grimsim::parallel_backend,
        "How kernels run threads: 'openmp' or 'std::thread'.");
  m.def("hardware_threads", &grimsim::hardware_threads, "Hardware threads of this machine.");

  m.def("time_callable", &time_callable, py::arg("fn"), py::arg("threads") = 1,
        GRIMSIM_BENCH_ARGS,
        "Times a Python callable with the kernels' harness (threads: flush threads). Returns "
        "{median_s, min_s, mean_s, max_s, reps}.");
  m.def("measure_fma_peak", &fma_peak, py::arg("threads") = 1, py::arg("seconds") = 0.3,
        "Peak fp32 FMA GFLOP/s on `threads` threads and the core clock measured by a "
        "dependent add chain: {gflops, clock_ghz, flops_per_cycle, lanes, simd, ...}.");
  m.def("measure_clock_ghz", [](double seconds) {
          py::gil_scoped_release release;
          return grimsim::measure_clock_ghz(seconds);
        }, py::arg("seconds") = 0.1, "Core clock (GHz) from a dependent integer add chain.");
  m.def("measure_read_bandwidth", &read_bandwidth, py::arg("bytes") = 256 << 20,
        py::arg("threads") = 1, py::arg("seconds") = 0.3,
        "Streaming read bandwidth (GB/s, 1e9 bytes) over a buffer of `bytes`: "
        "{gbytes_per_s, bytes, threads, passes}.");
  m.def("measure_fork_join", &fork_join, py::arg("threads") = 2, py::arg("seconds") = 0.1,
        "Seconds a parallel_for of one empty task per thread costs, called back to back "
        "(workers still spinning): {min_s, median_s, threads, calls}.");
}

}  // namespace grimsim_bind
