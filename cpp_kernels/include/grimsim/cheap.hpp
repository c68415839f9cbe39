// grimsim/cheap.hpp -- the cheap (non-GEMM) ops of a network as an inference engine runs
// them: one pass over the data, SIMD where there is arithmetic, no temporaries. grimsim times
// these when it runs a network, so its measurements (and the traffic-based model of cheap
// ops) describe an engine rather than numpy's one-pass-per-operation stand-ins, which ran
// channel shuffles 8x, resizes 30x and a channel softmax 15-30x slower than their traffic.
//
// Every function validates its arguments (InvalidArgument) before touching memory, takes a
// thread count (parallel_for over independent slices) and writes its whole output.
#pragma once
#include <cstdint>

namespace grimsim {

// Highest tensor rank permute() accepts.
constexpr int kMaxPermuteRank = 8;

// y = x with its axes permuted, as numpy's x.transpose(perm) copied out: y's axis i is x's
// axis perm[i]. x has `rank` axes of sizes shape[0..rank), both arrays are C-contiguous.
// Runs that stay contiguous (e.g. a channel shuffle's planes) are copied whole; a permute
// that moves the innermost axis is copied in cache-sized 2-D tiles.
void permute(const float* x, const std::int64_t* shape, const std::int64_t* perm, int rank,
             float* y, int threads);

enum class ResizeMode : int {
  // y[i, j] = x[floor(i * h / out_h), floor(j * w / out_w)] (ncnn's Interp, ONNX 'asymmetric'
  // with 'floor').
  nearest = 0,
  // Half-pixel centres, edges clamped (ncnn's Interp with align_corner 0, ONNX 'half_pixel',
  // torch align_corners=False): each output row blends two input rows resampled along w.
  bilinear = 1,
};

// Resizes `planes` planes of h x w to out_h x out_w (NCHW with planes = N * C).
void resize2d(const float* x, std::int64_t planes, std::int64_t h, std::int64_t w,
              std::int64_t out_h, std::int64_t out_w, ResizeMode mode, float* y, int threads);

// Softmax over the middle axis of x viewed as (outer, len, inner), max-subtracted:
// y[o, l, i] = exp(x[o, l, i] - m) / sum_l exp(x[o, l, i] - m), m the max over l.
void softmax(const float* x, std::int64_t outer, std::int64_t len, std::int64_t inner,
             float* y, int threads);

// Element-wise activations (exp-based ones use a vectorised exp, relative error < 2e-7).
enum class Unary : int {
  relu = 0,
  relu6 = 1,
  leakyrelu = 2,    // x > 0 ? x : alpha * x
  sigmoid = 3,
  tanh = 4,
  swish = 5,        // x * sigmoid(x) (SiLU)
  hardswish = 6,    // x * relu6(x + 3) / 6
  hardsigmoid = 7,  // relu6(x + 3) / 6
  gelu = 8,         // the tanh approximation
  elu = 9,          // x > 0 ? x : alpha * (exp(x) - 1)
  mish = 10,        // x * tanh(softplus(x))
  exp = 11,
};
void unary(const float* x, std::int64_t n, Unary kind, float alpha, float* y, int threads);

// Per-channel affine (batch norm and scale at inference): x viewed as (outer, channels,
// inner), y[o, c, i] = x[o, c, i] * scale[c] + shift[c].
void channel_affine(const float* x, std::int64_t outer, std::int64_t channels,
                    std::int64_t inner, const float* scale, const float* shift, float* y,
                    int threads);

// Layer norm over the last axis: x viewed as (rows, dim), y = (x - mean) / sqrt(var + eps)
// * gamma + beta per row (gamma, beta: dim values each, or null for 1 and 0).
void layernorm(const float* x, std::int64_t rows, std::int64_t dim, const float* gamma,
               const float* beta, float eps, float* y, int threads);

// Local response norm across channels (AlexNet, GoogLeNet): x viewed as (outer, channels,
// plane), y = x / (k + alpha / size * sum of x^2 over the `size` channels centred on c)^beta,
// the window clipped at the first and last channel (Caffe, ncnn, ONNX).
void lrn_across_channels(const float* x, std::int64_t outer, std::int64_t channels,
                         std::int64_t plane, std::int64_t size, float alpha, float beta,
                         float k, float* y, int threads);

}  // namespace grimsim
