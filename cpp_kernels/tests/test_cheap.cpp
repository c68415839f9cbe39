// Standalone tests of the cheap-op kernels (no Python): permute, resize, softmax,
// activations and channel affine against plain loops on every SIMD tier this CPU runs, and
// their argument checks (under ASan/UBSan a bad call must be refused before any access).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "grimsim/cheap.hpp"
#include "grimsim/simd.hpp"
#include "test_util.hpp"

using testutil::random_vector;
using testutil::throws_invalid;

namespace {

void test_permute() {
  // (2, 3, 4, 5) -> perm (2, 0, 3, 1): the innermost axis moves (tiled transpose path)
  const std::int64_t shape[4] = {2, 3, 4, 5}, perm[4] = {2, 0, 3, 1};
  const auto x = random_vector(120, 1);
  std::vector<float> y(120, -1.0f);
  for (int threads : {1, 2}) {
    grimsim::permute(x.data(), shape, perm, 4, y.data(), threads);
    bool ok = true;
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 3; ++b)
        for (int c = 0; c < 4; ++c)
          for (int d = 0; d < 5; ++d) {
            // y[c, a, d, b] = x[a, b, c, d]
            const float want = x[((a * 3 + b) * 4 + c) * 5 + d];
            ok = ok && y[((c * 2 + a) * 5 + d) * 3 + b] == want;
          }
    EXPECT(ok, "permute (2,3,4,5) by (2,0,3,1), threads %d", threads);
  }
  // a channel shuffle: (2, 3, 7) -> (3, 2, 7), runs of 7 copied whole
  const std::int64_t s2[3] = {2, 3, 7}, p2[3] = {1, 0, 2};
  const auto x2 = random_vector(42, 2);
  std::vector<float> y2(42);
  grimsim::permute(x2.data(), s2, p2, 3, y2.data(), 1);
  bool ok = true;
  for (int g = 0; g < 2; ++g)
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 7; ++i) ok = ok && y2[(c * 2 + g) * 7 + i] == x2[(g * 3 + c) * 7 + i];
  EXPECT(ok, "channel shuffle");
  float a[4] = {}, b[4] = {};
  const std::int64_t bad_perm[2] = {0, 0}, good_perm[2] = {1, 0}, sh[2] = {2, 2};
  const std::int64_t zero_shape[2] = {0, 2}, huge_shape[2] = {std::int64_t{1} << 40,
                                                             std::int64_t{1} << 40};
  EXPECT(throws_invalid([&] { grimsim::permute(a, sh, bad_perm, 2, b, 1); }), "repeated axis");
  EXPECT(throws_invalid([&] { grimsim::permute(a, zero_shape, good_perm, 2, b, 1); }),
         "zero size");
  EXPECT(throws_invalid([&] { grimsim::permute(a, huge_shape, good_perm, 2, b, 1); }),
         "overflowing size");
  EXPECT(throws_invalid([&] { grimsim::permute(a, sh, good_perm, 9, b, 1); }), "rank 9");
  EXPECT(throws_invalid([&] { grimsim::permute(nullptr, sh, good_perm, 2, b, 1); }), "null");
  EXPECT(throws_invalid([&] { grimsim::permute(a, sh, good_perm, 2, b, 0); }), "threads 0");
}

void test_resize(const std::string& tier) {
  // 2x2 -> 4x4 bilinear, half-pixel centres (torch align_corners=False values)
  const float x[4] = {0, 1, 2, 3};
  float y[16];
  grimsim::resize2d(x, 1, 2, 2, 4, 4, grimsim::ResizeMode::bilinear, y, 1);
  const float want[16] = {0.0f, 0.25f, 0.75f, 1.0f, 0.5f, 0.75f, 1.25f, 1.5f,
                          1.5f, 1.75f, 2.25f, 2.5f, 2.0f, 2.25f, 2.75f, 3.0f};
  double err = 0.0;
  for (int i = 0; i < 16; ++i) err = std::max(err, static_cast<double>(std::fabs(y[i] - want[i])));
  EXPECT(err < 1e-6, "%s bilinear 2x2 -> 4x4 err %g", tier.c_str(), err);
  // nearest 3 planes of 5x3 -> 7x8
  const auto x2 = random_vector(45, 3);
  std::vector<float> y2(3 * 56);
  grimsim::resize2d(x2.data(), 3, 5, 3, 7, 8, grimsim::ResizeMode::nearest, y2.data(), 2);
  bool ok = true;
  for (int p = 0; p < 3; ++p)
    for (int i = 0; i < 7; ++i)
      for (int j = 0; j < 8; ++j)
        ok = ok && y2[(p * 7 + i) * 8 + j] == x2[(p * 5 + i * 5 / 7) * 3 + j * 3 / 8];
  EXPECT(ok, "nearest 5x3 -> 7x8");
  EXPECT(throws_invalid([&] {
           grimsim::resize2d(x, 1, 2, 2, 0, 4, grimsim::ResizeMode::nearest, y, 1);
         }),
         "out_h 0");
  EXPECT(throws_invalid([&] {
           grimsim::resize2d(x, 1, 2, 2, 4, 4, static_cast<grimsim::ResizeMode>(7), y, 1);
         }),
         "unknown mode");
}

void test_softmax(const std::string& tier) {
  // (2, 5, 3) over the middle axis (strided) and (4, 37) over rows
  for (const auto& dims : {std::vector<std::int64_t>{2, 5, 3}, {4, 37, 1}, {1, 3, 19}}) {
    const std::int64_t outer = dims[0], len = dims[1], inner = dims[2];
    const auto x = random_vector(static_cast<std::size_t>(outer * len * inner), 4);
    std::vector<float> y(x.size());
    grimsim::softmax(x.data(), outer, len, inner, y.data(), 2);
    double err = 0.0;
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        double m = -1e30, s = 0.0;
        for (std::int64_t l = 0; l < len; ++l) m = std::max(m, double(x[(o * len + l) * inner + i]));
        for (std::int64_t l = 0; l < len; ++l) s += std::exp(x[(o * len + l) * inner + i] - m);
        for (std::int64_t l = 0; l < len; ++l) {
          const std::int64_t at = (o * len + l) * inner + i;
          err = std::max(err, std::fabs(y[at] - std::exp(x[at] - m) / s));
        }
      }
    EXPECT(err < 1e-6, "%s softmax (%lld, %lld, %lld) err %g", tier.c_str(), (long long)outer,
           (long long)len, (long long)inner, err);
  }
  float a[2] = {}, b[2] = {};
  EXPECT(throws_invalid([&] { grimsim::softmax(a, 1, 0, 2, b, 1); }), "len 0");
}

void test_unary(const std::string& tier) {
  std::vector<float> x = random_vector(1003, 5);
  for (auto& v : x) v *= 10.0f;
  std::vector<float> y(x.size());
  grimsim::unary(x.data(), static_cast<std::int64_t>(x.size()), grimsim::Unary::sigmoid, 0.0f,
                 y.data(), 2);
  double err = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i)
    err = std::max(err, std::fabs(y[i] - 1.0 / (1.0 + std::exp(-double(x[i])))));
  EXPECT(err < 2e-7, "%s sigmoid err %g", tier.c_str(), err);
  grimsim::unary(x.data(), static_cast<std::int64_t>(x.size()), grimsim::Unary::tanh, 0.0f,
                 y.data(), 1);
  err = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i)
    err = std::max(err, std::fabs(y[i] - std::tanh(double(x[i]))));
  EXPECT(err < 5e-7, "%s tanh err %g", tier.c_str(), err);
  float a[2] = {}, b[2] = {};
  EXPECT(throws_invalid([&] { grimsim::unary(a, 2, static_cast<grimsim::Unary>(99), 0, b, 1); }),
         "unknown activation");
  EXPECT(throws_invalid([&] { grimsim::unary(a, 0, grimsim::Unary::relu, 0, b, 1); }), "n 0");
  EXPECT(throws_invalid([&] { grimsim::unary(a, 2, grimsim::Unary::elu, NAN, b, 1); }),
         "alpha NaN");
}

void test_affine() {
  const auto x = random_vector(2 * 3 * 5, 6);
  const float scale[3] = {1.5f, -2.0f, 0.5f}, shift[3] = {0.1f, 0.2f, 0.3f};
  std::vector<float> y(x.size());
  grimsim::channel_affine(x.data(), 2, 3, 5, scale, shift, y.data(), 2);
  bool ok = true;
  for (int o = 0; o < 2; ++o)
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 5; ++i) {
        const int at = (o * 3 + c) * 5 + i;
        ok = ok && std::fabs(y[at] - (x[at] * scale[c] + shift[c])) < 1e-6f;
      }
  EXPECT(ok, "channel affine");
  EXPECT(throws_invalid([&] {
           grimsim::channel_affine(x.data(), 2, 3, 5, nullptr, shift, y.data(), 1);
         }),
         "null scale");
}

void test_norms(const std::string& tier) {
  // layer norm of rows with a large mean, and LRN across 7 channels, against double loops
  std::vector<float> x = random_vector(3 * 37, 7);
  for (auto& v : x) v += 100.0f;
  std::vector<float> y(x.size());
  grimsim::layernorm(x.data(), 3, 37, nullptr, nullptr, 1e-5f, y.data(), 2);
  double err = 0.0;
  for (int r = 0; r < 3; ++r) {
    double m = 0.0, v = 0.0;
    for (int i = 0; i < 37; ++i) m += x[r * 37 + i] / 37.0;
    for (int i = 0; i < 37; ++i) v += (x[r * 37 + i] - m) * (x[r * 37 + i] - m) / 37.0;
    for (int i = 0; i < 37; ++i)
      err = std::max(err, std::fabs(y[r * 37 + i] - (x[r * 37 + i] - m) / std::sqrt(v + 1e-5)));
  }
  EXPECT(err < 1e-4, "%s layernorm err %g", tier.c_str(), err);
  const auto z = random_vector(2 * 7 * 11, 8);
  std::vector<float> w(z.size());
  grimsim::lrn_across_channels(z.data(), 2, 7, 11, 5, 1.0f, 0.75f, 1.0f, w.data(), 2);
  err = 0.0;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 7; ++c)
      for (int i = 0; i < 11; ++i) {
        double s = 0.0;
        for (int d = std::max(0, c - 2); d <= std::min(6, c + 2); ++d) {
          const double v = z[(n * 7 + d) * 11 + i];
          s += v * v;
        }
        const int at = (n * 7 + c) * 11 + i;
        err = std::max(err, std::fabs(w[at] - z[at] / std::pow(1.0 + s / 5.0, 0.75)));
      }
  EXPECT(err < 1e-6, "%s lrn err %g", tier.c_str(), err);
  float a[2] = {}, b[2] = {};
  EXPECT(throws_invalid([&] { grimsim::layernorm(a, 1, 2, nullptr, nullptr, -1.0f, b, 1); }),
         "negative eps");
  EXPECT(throws_invalid([&] { grimsim::lrn_across_channels(a, 1, 2, 1, 0, 1, 1, 1, b, 1); }),
         "lrn size 0");
  EXPECT(throws_invalid([&] { grimsim::lrn_across_channels(a, 1, 2, 1, 3, 1, 1, 0, b, 1); }),
         "lrn k 0");
}

}  // namespace

int main() {
  for (const std::string& tier : testutil::tiers()) {
    testutil::set_tier(tier);
    test_resize(tier);
    test_softmax(tier);
    test_unary(tier);
    test_norms(tier);
  }
  test_permute();
  test_affine();
  return testutil::finish("test_cheap");
}
