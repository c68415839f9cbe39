// Cheap-op inner loops, compiled once per SIMD tier (see grimsim/simd.hpp): activations,
// softmax, per-channel affine and the row blend of bilinear resize. Each is one pass over
// its data with the arithmetic in registers, as an engine's fused loop runs it.
#include <cmath>
#include <cstdint>

#include "cheap_kernels.hpp"
#include "grimsim/cheap.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

namespace {

using namespace simd;
using i64 = std::int64_t;
constexpr int L = kLanes;

#if defined(__GNUC__) || defined(__clang__)
typedef std::int32_t vi __attribute__((vector_size(GRIMSIM_SIMD_BYTES)));

// exp(x): x = n ln2 + r with |r| <= ln2 / 2 (n rounded to nearest by adding and removing
// 1.5 * 2^23), exp(r) by its Taylor series to degree 6 (relative error < 1.2e-7 on that
// interval), times 2^n built in the exponent bits. x is clamped to the range where 2^n is a
// normal float (results below ~1.2e-38 become that, above ~2.4e38 saturate); NaN stays NaN
// because comparisons with NaN are false.
GRIMSIM_INLINE vf vexp(vf x) {
  const vf hi = set1(88.37626f), lo = set1(-87.33654f);
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const vf shifter = set1(12582912.0f);
  const vf n = (x * set1(1.44269504f) + shifter) - shifter;
  // ln2 in two parts (Cody and Waite): n * 0.693359375 is exact for |n| <= 128.
  vf r = x - n * set1(0.693359375f);
  r = r - n * set1(-2.12194440e-4f);
  vf p = set1(1.0f / 720.0f);
  p = p * r + set1(1.0f / 120.0f);
  p = p * r + set1(1.0f / 24.0f);
  p = p * r + set1(1.0f / 6.0f);
  p = p * r + set1(0.5f);
  p = p * r + set1(1.0f);
  p = p * r + set1(1.0f);
  const vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  return p * (vf)e;  // a vector cast reinterprets the bits
}

// log(x) for positive normal x: x = m 2^e with m in [sqrt(1/2), sqrt(2)), and
// log(m) = 2 atanh(z), z = (m - 1) / (m + 1), |z| < 0.172, by its odd series to z^9
// (relative error < 1e-7).
GRIMSIM_INLINE vf vlog(vf x) {
  const vi bits = (vi)x;
  vi e = ((bits >> 23) & 0xff) - 127;
  vf m = (vf)((bits & 0x007fffff) | 0x3f800000);
  const vi big = m > set1(1.41421356f);  // lanes all ones where true
  m = big ? m * set1(0.5f) : m;
  e = e - big;
  const vf z = (m - set1(1.0f)) / (m + set1(1.0f));
  const vf z2 = z * z;
  vf p = set1(2.0f / 9.0f);
  p = p * z2 + set1(2.0f / 7.0f);
  p = p * z2 + set1(2.0f / 5.0f);
  p = p * z2 + set1(2.0f / 3.0f);
  p = p * z2 + set1(2.0f);
  return p * z + __builtin_convertvector(e, vf) * set1(0.693147181f);
}

GRIMSIM_INLINE vf vsigmoid(vf x) { return set1(1.0f) / (set1(1.0f) + vexp(-x)); }

GRIMSIM_INLINE vf vclamp(vf x, float a, float b) {
  x = x < set1(a) ? set1(a) : x;
  return x > set1(b) ? set1(b) : x;
}

template <int K>
GRIMSIM_INLINE vf apply(vf x, float alpha) {
  const vf zero_v = zero();
  if constexpr (K == static_cast<int>(Unary::relu)) {
    return x < zero_v ? zero_v : x;
  } else if constexpr (K == static_cast<int>(Unary::relu6)) {
    return vclamp(x, 0.0f, 6.0f);
  } else if constexpr (K == static_cast<int>(Unary::leakyrelu)) {
    return x < zero_v ? x * set1(alpha) : x;
  } else if constexpr (K == static_cast<int>(Unary::sigmoid)) {
    return vsigmoid(x);
  } else if constexpr (K == static_cast<int>(Unary::tanh)) {
    // 2 sigmoid(2x) - 1; absolute error ~1e-7 near 0
    return set1(2.0f) * vsigmoid(x + x) - set1(1.0f);
  } else if constexpr (K == static_cast<int>(Unary::swish)) {
    return x * vsigmoid(x);
  } else if constexpr (K == static_cast<int>(Unary::hardswish)) {
    return x * vclamp(x * set1(1.0f / 6.0f) + set1(0.5f), 0.0f, 1.0f);
  } else if constexpr (K == static_cast<int>(Unary::hardsigmoid)) {
    return vclamp(x * set1(1.0f / 6.0f) + set1(0.5f), 0.0f, 1.0f);
  } else if constexpr (K == static_cast<int>(Unary::gelu)) {
    // 0.5 x (1 + tanh(z)) = x sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3)
    const vf z = x * (set1(1.5957691f) + set1(0.0713548f) * x * x);
    return x * vsigmoid(z);
  } else if constexpr (K == static_cast<int>(Unary::elu)) {
    return x > zero_v ? x : set1(alpha) * (vexp(x) - set1(1.0f));
  } else if constexpr (K == static_cast<int>(Unary::mish)) {
    // tanh(log(1 + e)) = e (e + 2) / (e (e + 2) + 2), e = exp(x); past x = 20 it is 1
    const vf e = vexp(x);
    const vf q = e * (e + set1(2.0f));
    const vf t = q / (q + set1(2.0f));
    return x > set1(20.0f) ? x : x * t;
  } else {
    return vexp(x);
  }
}

template <int K>
void unary_loop(float alpha, const float* GRIMSIM_RESTRICT x, float* GRIMSIM_RESTRICT y, i64 n) {
  i64 i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    store(y + i, apply<K>(load(x + i), alpha));
    store(y + i + L, apply<K>(load(x + i + L), alpha));
  }
  for (; i + L <= n; i += L) store(y + i, apply<K>(load(x + i), alpha));
  if (i < n) {
    const int t = static_cast<int>(n - i);
    store_partial(y + i, apply<K>(load_partial(x + i, t), alpha), t);
  }
}


#else   // portable fallback: scalar loops over std:: math

float scalar_apply(int kind, float x, float alpha) {
  auto sig = [](float v) { return 1.0f / (1.0f + std::exp(-v)); };
  switch (static_cast<Unary>(kind)) {
    case Unary::relu: return x < 0.0f ? 0.0f : x;
    case Unary::relu6: return x < 0.0f ? 0.0f : x > 6.0f ? 6.0f : x;
    case Unary::leakyrelu: return x < 0.0f ? alpha * x : x;
    case Unary::sigmoid: return sig(x);
    case Unary::tanh: return std::tanh(x);
    case Unary::swish: return x * sig(x);
    case Unary::hardswish: { float t = x / 6.0f + 0.5f; t = t < 0 ? 0 : t > 1 ? 1 : t; return x * t; }
    case Unary::hardsigmoid: { float t = x / 6.0f + 0.5f; return t < 0 ? 0 : t > 1 ? 1 : t; }
    case Unary::gelu: return x * sig(x * (1.5957691f + 0.0713548f * x * x));
    case Unary::elu: return x > 0.0f ? x : alpha * (std::exp(x) - 1.0f);
    case Unary::mish: return x > 20.0f ? x : x * std::tanh(std::log1p(std::exp(x)));
    default: return std::exp(x);
  }
}
#endif

}  // namespace

void unary_span(int kind, float alpha, const float* x, float* y, i64 n) {
#if defined(__GNUC__) || defined(__clang__)
  switch (static_cast<Unary>(kind)) {
    case Unary::relu: return unary_loop<0>(alpha, x, y, n);
    case Unary::relu6: return unary_loop<1>(alpha, x, y, n);
    case Unary::leakyrelu: return unary_loop<2>(alpha, x, y, n);
    case Unary::sigmoid: return unary_loop<3>(alpha, x, y, n);
    case Unary::tanh: return unary_loop<4>(alpha, x, y, n);
    case Unary::swish: return unary_loop<5>(alpha, x, y, n);
    case Unary::hardswish: return unary_loop<6>(alpha, x, y, n);
    case Unary::hardsigmoid: return unary_loop<7>(alpha, x, y, n);
    case Unary::gelu: return unary_loop<8>(alpha, x, y, n);
    case Unary::elu: return unary_loop<9>(alpha, x, y, n);
    case Unary::mish: return unary_loop<10>(alpha, x, y, n);
    default: return unary_loop<11>(alpha, x, y, n);
  }
#else
  for (i64 i = 0; i < n; ++i) y[i] = scalar_apply(kind, x[i], alpha);
#endif
}

void softmax_slice(const float* x, float* y, i64 len, i64 inner, float* scratch) {
#if defined(__GNUC__) || defined(__clang__)
  if (inner == 1) {
    // One contiguous row: its max, exp(x - max) and their sum in one pass, then the scale.
    // The max may skip a NaN (branch-free max): exp(NaN - m) makes the sum, and so every
    // output of the row, NaN anyway.
    vf m = set1(-__builtin_inff());
    i64 k = 0;
    for (; k + L <= len; k += L) m = max(m, load(x + k));
    float lanes[kLanes];
    store(lanes, m);
    float mx = lanes[0];
    for (int l = 1; l < L; ++l) mx = lanes[l] > mx ? lanes[l] : mx;
    for (; k < len; ++k) mx = x[k] > mx ? x[k] : mx;
    const vf vm = set1(mx);
    vf s = zero();
    k = 0;
    for (; k + L <= len; k += L) {
      const vf e = vexp(load(x + k) - vm);
      store(y + k, e);
      s = s + e;
    }
    float sum = hsum(s);
    if (k < len) {
      const int t = static_cast<int>(len - k);
      float tail[kLanes] = {};
      store(tail, vexp(load_partial(x + k, t) - vm));
      for (int l = 0; l < t; ++l) {
        y[k + l] = tail[l];
        sum += tail[l];
      }
    }
    const vf inv = set1(1.0f / sum);
    k = 0;
    for (; k + L <= len; k += L) store(y + k, load(y + k) * inv);
    for (; k < len; ++k) y[k] *= 1.0f / sum;
    return;
  }
  // Strided softmax (e.g. over the channels of a CHW tensor): vectors run along the inner
  // axis, so each of the len planes is read once for the max and once for the exp (a NaN
  // skipped by the max still turns its column's outputs NaN, as above).
  float* GRIMSIM_RESTRICT mx = scratch;
  float* GRIMSIM_RESTRICT sum = scratch + inner;
  for (i64 i = 0; i < inner; ++i) {
    mx[i] = -__builtin_inff();
    sum[i] = 0.0f;
  }
  const i64 vec_end = inner - inner % L;
  for (i64 l = 0; l < len; ++l) {
    const float* xl = x + l * inner;
    i64 i = 0;
    for (; i < vec_end; i += L) store(mx + i, max(load(xl + i), load(mx + i)));
    for (; i < inner; ++i) mx[i] = xl[i] > mx[i] ? xl[i] : mx[i];
  }
  for (i64 l = 0; l < len; ++l) {
    const float* xl = x + l * inner;
    float* yl = y + l * inner;
    i64 i = 0;
    for (; i < vec_end; i += L) {
      const vf e = vexp(load(xl + i) - load(mx + i));
      store(yl + i, e);
      store(sum + i, load(sum + i) + e);
    }
    if (i < inner) {
      const int t = static_cast<int>(inner - i);
      const vf e = vexp(load_partial(xl + i, t) - load_partial(mx + i, t));
      store_partial(yl + i, e, t);
      store_partial(sum + i, load_partial(sum + i, t) + e, t);
    }
  }
  for (i64 i = 0; i < inner; ++i) sum[i] = 1.0f / sum[i];
  for (i64 l = 0; l < len; ++l) {
    float* yl = y + l * inner;
    i64 i = 0;
    for (; i < vec_end; i += L) store(yl + i, load(yl + i) * load(sum + i));
    for (; i < inner; ++i) yl[i] *= sum[i];
  }
#else
  for (i64 i = 0; i < inner; ++i) {
    float m = -HUGE_VALF;
    for (i64 l = 0; l < len; ++l) m = x[l * inner + i] > m ? x[l * inner + i] : m;
    float s = 0.0f;
    for (i64 l = 0; l < len; ++l) s += (y[l * inner + i] = std::exp(x[l * inner + i] - m));
    for (i64 l = 0; l < len; ++l) y[l * inner + i] /= s;
  }
  (void)scratch;
#endif
}

void softmax_rows(const float* x, float* y, i64 rows, i64 len) {
  // A short row is a serial chain (max, exp, sum, divide) of a few vectors: rows of up to
  // kShortRow values go kLanes at a time through the strided path on a transposed tile, so
  // the lanes run across rows (an SSD head's 8030 rows of 21 classes: 2x faster).
  constexpr i64 kShortRow = 32;  // past ~32 the whole-row path is faster again
  i64 r = 0;
  if (len <= kShortRow) {
    float tin[kShortRow * kLanes], tout[kShortRow * kLanes], scratch[2 * kLanes];
    for (; r + L <= rows; r += L) {
      const float* xr = x + r * len;
      for (i64 k = 0; k < len; ++k)
        for (int l = 0; l < L; ++l) tin[k * L + l] = xr[l * len + k];
      softmax_slice(tin, tout, len, L, scratch);
      float* yr = y + r * len;
      for (i64 k = 0; k < len; ++k)
        for (int l = 0; l < L; ++l) yr[l * len + k] = tout[k * L + l];
    }
  }
  for (; r < rows; ++r) softmax_slice(x + r * len, y + r * len, len, 1, nullptr);
}

void affine_span(const float* GRIMSIM_RESTRICT x, float* GRIMSIM_RESTRICT y, i64 n, float scale,
                 float shift) {
  const vf a = set1(scale), b = set1(shift);
  i64 i = 0;
  for (; i + L <= n; i += L) store(y + i, fma(load(x + i), a, b));
  for (; i < n; ++i) y[i] = x[i] * scale + shift;
}

void blend_span(const float* GRIMSIM_RESTRICT a, const float* GRIMSIM_RESTRICT b, float t,
                float* GRIMSIM_RESTRICT y, i64 n) {
  const vf vt = set1(t), vs = set1(1.0f - t);
  i64 i = 0;
  for (; i + L <= n; i += L) store(y + i, fma(load(a + i), vs, load(b + i) * vt));
  for (; i < n; ++i) y[i] = a[i] * (1.0f - t) + b[i] * t;
}

void layernorm_row(const float* GRIMSIM_RESTRICT x, float* GRIMSIM_RESTRICT y, i64 dim,
                   const float* gamma, const float* beta, float eps) {
  // Two passes for the moments (the mean first: the one-pass sum of squares cancels badly
  // when the mean is large), one for the output; the row stays in L1.
  const i64 vec_end = dim - dim % L;
  vf s = zero();
  i64 i = 0;
  for (; i < vec_end; i += L) s = s + load(x + i);
  float sum = hsum(s);
  for (; i < dim; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(dim);
  const vf vm = set1(mean);
  vf q = zero();
  for (i = 0; i < vec_end; i += L) {
    const vf d = load(x + i) - vm;
    q = fma(d, d, q);
  }
  float var = hsum(q);
  for (; i < dim; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float rstd = 1.0f / std::sqrt(var / static_cast<float>(dim) + eps);
  const vf vr = set1(rstd);
  for (i = 0; i < vec_end; i += L) {
    vf v = (load(x + i) - vm) * vr;
    if (gamma != nullptr) v = v * load(gamma + i);
    if (beta != nullptr) v = v + load(beta + i);
    store(y + i, v);
  }
  for (; i < dim; ++i) {
    float v = (x[i] - mean) * rstd;
    if (gamma != nullptr) v *= gamma[i];
    if (beta != nullptr) v += beta[i];
    y[i] = v;
  }
}

void lrn_span(const float* x, float* y, i64 channels, i64 plane, i64 p0, i64 p1, i64 size,
              float alpha, float beta, float k) {
  // Each output sums its window's squares afresh: a running sum (add the channel entering,
  // subtract the one leaving) drifts by float rounding over hundreds of channels.
  const i64 before = (size - 1) / 2, after = size / 2;
  const float scale = alpha / static_cast<float>(size);
  for (i64 c = 0; c < channels; ++c) {
    const i64 lo = imax(c - before, 0), hi = imin(c + after + 1, channels);
    const float* xc = x + c * plane;
    float* yc = y + c * plane;
    i64 i = p0;
#if defined(__GNUC__) || defined(__clang__)
    const vf vk = set1(k), vscale = set1(scale), vnb = set1(-beta);
    for (; i + L <= p1; i += L) {
      vf t = zero();
      for (i64 w = lo; w < hi; ++w) {
        const vf v = load(x + w * plane + i);
        t = fma(v, v, t);
      }
      store(yc + i, load(xc + i) * vexp(vnb * vlog(fma(t, vscale, vk))));
    }
#endif
    for (; i < p1; ++i) {
      float t = 0.0f;
      for (i64 w = lo; w < hi; ++w) t += x[w * plane + i] * x[w * plane + i];
      yc[i] = xc[i] * std::pow(k + scale * t, -beta);
    }
  }
}

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
