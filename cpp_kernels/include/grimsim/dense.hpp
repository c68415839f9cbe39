// grimsim/dense.hpp -- dense fp32 kernels: packed GEMM, Winograd 3x3 conv, im2col conv,
// depthwise conv. All arrays are row-major and contiguous; every function validates its
// arguments (InvalidArgument) before touching memory and takes a thread count (>= 1).
#pragma once
#include <cstdint>

#include "grimsim/kernels.hpp"
#include "grimsim/simd.hpp"

namespace grimsim {

// ------------------------------------------------------------------------------ GEMM -----

// y[M x N] = w[M x K] @ x[K x N]. Packs w into register-tile panels, then runs the SIMD
// micro-kernel with cache blocking; N == 1 takes a bandwidth-bound GEMV path.
void dense_gemm(const float* w, const float* x, float* y, std::int64_t M, std::int64_t K,
                std::int64_t N, int threads);

// w packed once for repeated products (inference weights). Opaque: the layout is that of the
// SIMD tier it was packed for (panels of MR rows, k-major), valid on this machine only.
struct PackedGemmWeights {
  std::int64_t M = 0, K = 0;
  SimdLevel level = SimdLevel::scalar;
  int mr = 0;
  AlignedArray<float> panels;  // ceil(M / mr) panels of K x mr floats
};

PackedGemmWeights pack_gemm_weights(const float* w, std::int64_t M, std::int64_t K,
                                    int threads);
// y[M x N] = W @ x[K x N] for packed W (bias: optional, M floats, added to every column).
// x_rows (optional, K indices into x's rows, the caller checks them): W's column k multiplies
// row x_rows[k] of x, for a column-pruned W whose X is not gathered first.
void dense_gemm_packed(const PackedGemmWeights& w, const float* x, float* y, std::int64_t N,
                       int threads, const float* bias = nullptr,
                       const std::int64_t* x_rows = nullptr);

// ----------------------------------------------------------------------- convolutions -----

// 2-D convolution geometry (NCHW, batch 1). Output size per axis:
// (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1, which must be >= 1.
struct ConvGeometry {
  std::int64_t channels = 0, height = 0, width = 0;  // input C, H, W
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t out_h() const {
    return (height + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  std::int64_t out_w() const {
    return (width + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
};

// Throws InvalidArgument naming the problem (non-positive sizes, negative pad, empty output).
void check_conv_geometry(const ConvGeometry& g);

// im2col: x[(C * kh * kw) x (out_h * out_w)], rows ordered channel, kernel row, kernel col
// (the GEMM view's column order), zero where the window hangs over the padding.
void im2col(const float* input, const ConvGeometry& g, float* x, int threads);

// Convolution through im2col + the packed GEMM: w2d[Cout x (C/groups * kh * kw)], output
// [Cout x out_h x out_w]; bias optional (Cout floats). Cout must be divisible by groups.
void conv2d_gemm(const float* input, const ConvGeometry& g, const float* w2d,
                 std::int64_t out_channels, std::int64_t groups, const float* bias,
                 float* output, int threads);

// Depthwise convolution, direct: weight[C x kh x kw] (one filter per channel), bias optional.
void depthwise_conv2d(const float* input, const ConvGeometry& g, const float* weight,
                      const float* bias, float* output, int threads);

// Max or average pooling of one image (NCHW, batch 1) into output[C x out_h x out_w]. Window
// (oy, ox) covers input rows oy * stride_h - pad_top + [0, kernel_h) and the columns alike;
// outside the input counts as -inf (max) or 0 (average, which always divides by
// kernel_h * kernel_w: padding included, as PyTorch's default). The output size is given, so
// ceil-mode pooling (one more window at the end) is expressed too; every window must
// overlap the input.
struct PoolGeometry {
  std::int64_t channels = 0, height = 0, width = 0;
  std::int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  std::int64_t pad_top = 0, pad_left = 0, out_h = 1, out_w = 1;
};
void check_pool_geometry(const PoolGeometry& g);
void pool2d(const float* input, const PoolGeometry& g, bool is_max, float* output, int threads);

// ------------------------------------------------------------------------ Winograd -----

// Weights of a stride-1 3x3 convolution transformed once for Winograd F(m,3): m = 4 (6x6
// tiles, 36 points; the default) or m = 2 (4x4 tiles, 16 points; better on tiny maps such as
// 7x7, see winograd_preferred_tile). U = G g G^T for every (out channel, in channel), stored
// as (m+2)^2 GEMM-ready packed matrices.
struct WinogradWeights {
  std::int64_t out_channels = 0, in_channels = 0;
  int out_tile = 4;
  SimdLevel level = SimdLevel::scalar;
  int mr = 0;
  AlignedArray<float> panels;  // [(m+2)^2][ceil(Cout / mr)][Cin][mr]
};

WinogradWeights winograd_pack_weights(const float* weight, std::int64_t out_channels,
                                      std::int64_t in_channels, int threads, int out_tile = 4);

// The output tile (2 or 4) with less GEMM work for an out_h x out_w output on this machine.
int winograd_preferred_tile(std::int64_t out_h, std::int64_t out_w);

// output[Cout x Ho x Wo] = conv3x3(input[C x H x W], stride 1, pad (pad_h, pad_w)) + bias.
void winograd_conv3x3(const float* input, std::int64_t height, std::int64_t width,
                      const WinogradWeights& w, const float* bias, std::int64_t pad_h,
                      std::int64_t pad_w, float* output, int threads);

// Naive direct convolution (any geometry, groups), the reference of the tests:
// w[Cout x (C / groups) x kh x kw].
void conv2d_reference(const float* input, const ConvGeometry& g, const float* w,
                      std::int64_t out_channels, std::int64_t groups, const float* bias,
                      float* output);

}  // namespace grimsim
