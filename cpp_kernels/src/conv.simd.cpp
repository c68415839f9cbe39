// Depthwise convolution of one channel plane for one SIMD tier.
#include "dense_kernels.hpp"
#include "grimsim/simd.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

using simd::imax;
using simd::imin;

namespace {
// Smallest x >= 0 with x * s + o >= 0 (o may be negative), s >= 1.
inline std::int64_t first_valid(std::int64_t o, std::int64_t s) {
  return o >= 0 ? 0 : (-o + s - 1) / s;
}
}  // namespace

// Each output row accumulates kernel taps one at a time over the output x range where the
// tap reads inside the input (the padding contributes zeros, so it is simply skipped);
// with stride 1 that inner loop is a contiguous, vectorised axpy.
void depthwise_plane(const DepthwiseJob& job, const float* in, const float* kernel,
                     float bias, float* out) {
  using namespace simd;
  const std::int64_t W = job.width, Wo = job.out_w;
  for (std::int64_t oy = 0; oy < job.out_h; ++oy) {
    float* orow = out + oy * Wo;
    for (std::int64_t ox = 0; ox < Wo; ++ox) orow[ox] = bias;
    for (std::int64_t ky = 0; ky < job.kernel_h; ++ky) {
      const std::int64_t iy = oy * job.stride_h - job.pad_h + ky * job.dilation_h;
      if (iy < 0 || iy >= job.height) continue;
      const float* irow = in + iy * W;
      for (std::int64_t kx = 0; kx < job.kernel_w; ++kx) {
        const float wv = kernel[ky * job.kernel_w + kx];
        const std::int64_t off = kx * job.dilation_w - job.pad_w;  // ix = ox * sw + off
        const std::int64_t lo = first_valid(off, job.stride_w);
        // Largest ox with ox * sw + off <= W - 1.
        const std::int64_t hi = W - 1 - off < 0 ? 0 : imin(Wo, (W - 1 - off) / job.stride_w + 1);
        if (lo >= hi) continue;
        if (job.stride_w == 1) {
          const float* src = irow + off;
          const vf wvec = set1(wv);
          std::int64_t ox = lo;
          for (; ox + kLanes <= hi; ox += kLanes)
            store(orow + ox, fma(wvec, load(src + ox), load(orow + ox)));
          for (; ox < hi; ++ox) orow[ox] += wv * src[ox];
        } else {
          for (std::int64_t ox = imax(lo, 0); ox < hi; ++ox)
            orow[ox] += wv * irow[ox * job.stride_w + off];
        }
      }
    }
  }
}

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
