// Standalone tests of the dense kernels (no Python): GEMM against the reference on odd
// shapes and every SIMD tier this CPU runs, Winograd and im2col conv against the direct
// reference, depthwise, the harness, parallel_for, and invalid-argument checks.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "grimsim/dense.hpp"
#include "grimsim/harness.hpp"
#include "grimsim/parallel.hpp"
#include "grimsim/simd.hpp"
#include "test_util.hpp"

using grimsim::ConvGeometry;
using testutil::random_vector;
using testutil::rel_err;
using testutil::set_tier;
using testutil::throws_invalid;
using testutil::tiers;

namespace {

void test_gemm(const std::string& tier) {
  const std::int64_t shapes[][3] = {{1, 1, 1},   {1, 7, 1},    {5, 3, 2},    {7, 13, 17},
                                    {6, 16, 16}, {13, 1, 40},  {19, 33, 1},  {33, 300, 5},
                                    {64, 70, 49}, {3, 600, 33}, {50, 257, 100}, {2, 0, 3},
                                    // N above the read-w-in-place limit: w is packed.
                                    {31, 45, 300}, {7, 520, 161}, {2, 0, 400}};
  std::uint32_t seed = 1;
  for (const auto& s : shapes) {
    const std::int64_t M = s[0], K = s[1], N = s[2];
    const auto w = random_vector(static_cast<std::size_t>(M * K), seed++);
    const auto x = random_vector(static_cast<std::size_t>(K * N), seed++);
    std::vector<float> ref(static_cast<std::size_t>(M * N)), y(ref.size(), 123.0f);
    grimsim::dense_gemm_reference(w.data(), x.data(), ref.data(), M, K, N);
    for (int threads : {1, 2, 3}) {
      std::fill(y.begin(), y.end(), 123.0f);
      grimsim::dense_gemm(w.data(), x.data(), y.data(), M, K, N, threads);
      EXPECT(rel_err(y, ref) < 1e-5, "%s dense_gemm M=%lld K=%lld N=%lld threads=%d err %g",
             tier.c_str(), (long long)M, (long long)K, (long long)N, threads, rel_err(y, ref));
    }
    // Packed weights with a bias.
    const auto bias = random_vector(static_cast<std::size_t>(M), seed++);
    auto packed = grimsim::pack_gemm_weights(w.data(), M, K, 2);
    grimsim::dense_gemm_packed(packed, x.data(), y.data(), N, 2, bias.data());
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) ref[i * N + j] += bias[i];
    EXPECT(rel_err(y, ref) < 1e-5, "%s dense_gemm_packed M=%lld K=%lld N=%lld err %g",
           tier.c_str(), (long long)M, (long long)K, (long long)N, rel_err(y, ref));
  }
}

void test_winograd(const std::string& tier) {
  struct Case {
    std::int64_t cin, cout, h, w, pad;
  };
  const Case cases[] = {{3, 5, 7, 9, 1}, {16, 20, 13, 6, 0}, {8, 14, 1, 1, 1},
                        {5, 7, 10, 11, 2}, {9, 6, 3, 3, 0},  {4, 33, 8, 8, 1}};
  std::uint32_t seed = 100;
  for (const Case& c : cases) {
    ConvGeometry g;
    g.channels = c.cin;
    g.height = c.h;
    g.width = c.w;
    g.kernel_h = g.kernel_w = 3;
    g.pad_h = g.pad_w = c.pad;
    const auto in = random_vector(static_cast<std::size_t>(c.cin * c.h * c.w), seed++);
    const auto wt = random_vector(static_cast<std::size_t>(c.cout * c.cin * 9), seed++);
    const auto bias = random_vector(static_cast<std::size_t>(c.cout), seed++);
    const std::size_t out_n = static_cast<std::size_t>(c.cout * g.out_h() * g.out_w());
    std::vector<float> ref(out_n), y(out_n);
    grimsim::conv2d_reference(in.data(), g, wt.data(), c.cout, 1, bias.data(), ref.data());
    for (int tile : {2, 4})
      for (int threads : {1, 2, 3}) {
        auto packed = grimsim::winograd_pack_weights(wt.data(), c.cout, c.cin, threads, tile);
        std::fill(y.begin(), y.end(), 99.0f);
        grimsim::winograd_conv3x3(in.data(), c.h, c.w, packed, bias.data(), c.pad, c.pad,
                                  y.data(), threads);
        EXPECT(rel_err(y, ref) < 1e-5,
               "%s winograd F(%d,3) cin=%lld cout=%lld %lldx%lld pad=%lld threads=%d err %g",
               tier.c_str(), tile, (long long)c.cin, (long long)c.cout, (long long)c.h,
               (long long)c.w, (long long)c.pad, threads, rel_err(y, ref));
      }
  }
  // Asymmetric padding.
  ConvGeometry g;
  g.channels = 4;
  g.height = 9;
  g.width = 6;
  g.kernel_h = g.kernel_w = 3;
  g.pad_h = 0;
  g.pad_w = 2;
  const auto in = random_vector(4 * 9 * 6, 7);
  const auto wt = random_vector(3 * 4 * 9, 8);
  std::vector<float> ref(static_cast<std::size_t>(3 * g.out_h() * g.out_w())), y(ref.size());
  grimsim::conv2d_reference(in.data(), g, wt.data(), 3, 1, nullptr, ref.data());
  auto packed = grimsim::winograd_pack_weights(wt.data(), 3, 4, 1);
  grimsim::winograd_conv3x3(in.data(), 9, 6, packed, nullptr, 0, 2, y.data(), 2);
  EXPECT(rel_err(y, ref) < 1e-5, "%s winograd asymmetric pad err %g", tier.c_str(),
         rel_err(y, ref));
}

ConvGeometry geometry(std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t kh,
                      std::int64_t kw, std::int64_t sh, std::int64_t sw, std::int64_t ph,
                      std::int64_t pw, std::int64_t dh, std::int64_t dw) {
  ConvGeometry g;
  g.channels = c;
  g.height = h;
  g.width = w;
  g.kernel_h = kh;
  g.kernel_w = kw;
  g.stride_h = sh;
  g.stride_w = sw;
  g.pad_h = ph;
  g.pad_w = pw;
  g.dilation_h = dh;
  g.dilation_w = dw;
  return g;
}

void test_conv_gemm_and_depthwise(const std::string& tier) {
  struct Case {
    ConvGeometry g;
    std::int64_t cout, groups;
  };
  const Case cases[] = {
      {geometry(3, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1), 5, 1},
      {geometry(4, 10, 7, 3, 3, 2, 2, 1, 1, 1, 1), 6, 2},
      {geometry(6, 12, 12, 5, 3, 1, 2, 2, 0, 2, 1), 4, 1},
      {geometry(8, 6, 6, 1, 1, 1, 1, 0, 0, 1, 1), 16, 1},  // pointwise: no im2col
      {geometry(8, 7, 5, 1, 1, 2, 1, 0, 0, 1, 1), 8, 4},
      {geometry(5, 4, 4, 3, 3, 1, 1, 3, 3, 1, 1), 5, 5},   // padding wider than the kernel
      {geometry(2, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1), 3, 1},
  };
  std::uint32_t seed = 200;
  for (const Case& c : cases) {
    const ConvGeometry& g = c.g;
    const std::int64_t cg = g.channels / c.groups;
    const auto in =
        random_vector(static_cast<std::size_t>(g.channels * g.height * g.width), seed++);
    const auto wt =
        random_vector(static_cast<std::size_t>(c.cout * cg * g.kernel_h * g.kernel_w), seed++);
    const auto bias = random_vector(static_cast<std::size_t>(c.cout), seed++);
    const std::size_t out_n = static_cast<std::size_t>(c.cout * g.out_h() * g.out_w());
    std::vector<float> ref(out_n), y(out_n);
    grimsim::conv2d_reference(in.data(), g, wt.data(), c.cout, c.groups, bias.data(), ref.data());
    for (int threads : {1, 2}) {
      std::fill(y.begin(), y.end(), 5.0f);
      grimsim::conv2d_gemm(in.data(), g, wt.data(), c.cout, c.groups, bias.data(), y.data(),
                           threads);
      EXPECT(rel_err(y, ref) < 1e-5, "%s conv2d_gemm case C=%lld cout=%lld groups=%lld err %g",
             tier.c_str(), (long long)g.channels, (long long)c.cout, (long long)c.groups,
             rel_err(y, ref));
    }
    if (c.groups == g.channels && c.cout == g.channels) {
      for (int threads : {1, 3}) {
        std::fill(y.begin(), y.end(), 5.0f);
        grimsim::depthwise_conv2d(in.data(), g, wt.data(), bias.data(), y.data(), threads);
        EXPECT(rel_err(y, ref) < 1e-5, "%s depthwise err %g", tier.c_str(), rel_err(y, ref));
      }
    }
  }
  // Depthwise on its own geometries (stride, dilation, wide kernels).
  const ConvGeometry dw[] = {geometry(5, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1),
                             geometry(4, 12, 7, 3, 3, 2, 2, 1, 1, 1, 1),
                             geometry(3, 10, 10, 5, 5, 1, 1, 2, 2, 2, 2),
                             geometry(6, 8, 8, 3, 3, 2, 2, 0, 0, 1, 1),
                             geometry(2, 30, 37, 7, 3, 1, 1, 3, 1, 1, 1)};
  for (const ConvGeometry& g : dw) {
    const auto in =
        random_vector(static_cast<std::size_t>(g.channels * g.height * g.width), seed++);
    const auto wt =
        random_vector(static_cast<std::size_t>(g.channels * g.kernel_h * g.kernel_w), seed++);
    const std::size_t out_n = static_cast<std::size_t>(g.channels * g.out_h() * g.out_w());
    std::vector<float> ref(out_n), y(out_n);
    grimsim::conv2d_reference(in.data(), g, wt.data(), g.channels, g.channels, nullptr, ref.data());
    grimsim::depthwise_conv2d(in.data(), g, wt.data(), nullptr, y.data(), 2);
    EXPECT(rel_err(y, ref) < 1e-5, "%s depthwise %lldx%lld err %g", tier.c_str(),
           (long long)g.kernel_h, (long long)g.kernel_w, rel_err(y, ref));
  }
}

void test_im2col() {
  // Hand-checked: 1 channel 3x3 input, 2x2 kernel, pad 1, stride 2 -> 2x2 output.
  const float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const ConvGeometry g = geometry(1, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1);
  EXPECT(g.out_h() == 2 && g.out_w() == 2, "out size %lld", (long long)g.out_h());
  std::vector<float> x(4 * 4, -1.0f);
  grimsim::im2col(in, g, x.data(), 1);
  // Rows: (ky, kx) = (0,0), (0,1), (1,0), (1,1); columns: output (0,0), (0,1), (1,0), (1,1).
  const float want[16] = {0, 0, 0, 5, 0, 0, 4, 6, 0, 2, 0, 8, 1, 3, 7, 9};
  for (int i = 0; i < 16; ++i)
    EXPECT(x[i] == want[i], "im2col[%d] = %g, want %g", i, x[i], want[i]);
}

// Holds the pool from another thread (a region whose first task waits) until destroyed.
class PoolHolder {
 public:
  PoolHolder()
      : thread_([this] {
          grimsim::parallel_for(2, 2, [this](std::int64_t t) {
            if (t != 0) return;
            holding_ = true;
            while (!release_) std::this_thread::yield();
          });
        }) {
    while (!holding_) std::this_thread::yield();
  }
  ~PoolHolder() {
    release_ = true;
    thread_.join();
  }
  PoolHolder(const PoolHolder&) = delete;
  PoolHolder& operator=(const PoolHolder&) = delete;

 private:
  std::atomic<bool> holding_{false}, release_{false};
  std::thread thread_;
};

void test_parallel_and_harness() {
  std::vector<int> hits(100, 0);
  grimsim::parallel_for(100, 3, [&](std::int64_t t, int thread) {
    hits[static_cast<std::size_t>(t)] += 1;
    EXPECT(thread >= 0 && thread < 3, "thread id %d", thread);
  });
  for (int h : hits) EXPECT(h == 1, "task ran %d times", h);
  grimsim::parallel_for(0, 2, [&](std::int64_t) { EXPECT(false, "no task expected"); });
  grimsim::parallel_for(1, 8, [&](std::int64_t t) { hits[static_cast<std::size_t>(t)] = 7; });
  EXPECT(hits[0] == 7, "single task");
  EXPECT(throws_invalid([] { grimsim::parallel_for(4, 0, [](std::int64_t) {}); }), "threads 0");
  // An exception in a task reaches the caller, whatever the thread.
  bool caught = false;
  try {
    grimsim::parallel_for(50, 2, [](std::int64_t t) {
      if (t == 37) throw grimsim::InvalidArgument("task 37");
    });
  } catch (const grimsim::InvalidArgument& e) {
    caught = std::string(e.what()) == "task 37";
  }
  EXPECT(caught, "exception from a task not rethrown");

  // Stress: many short jobs from several threads at once (one holds the pool, the others run
  // serially), nested calls, and team sizes that change from call to call.
  {
    std::vector<std::thread> callers;
    std::vector<long long> totals(3, 0);
    for (int c = 0; c < 3; ++c)
      callers.emplace_back([c, &totals] {
        for (int rep = 0; rep < 300; ++rep) {
          std::vector<int> out(17, 0);
          grimsim::parallel_for(17, 1 + (rep + c) % 3, [&](std::int64_t t) {
            // The inner call may run on the pool (when this caller runs serially because
            // another thread holds it), so it adds atomically.
            std::atomic<int> inner{0};
            grimsim::parallel_for(3, 2, [&](std::int64_t u) { inner += static_cast<int>(u); });
            out[static_cast<std::size_t>(t)] = static_cast<int>(t) + inner.load();
          });
          for (int v : out) totals[static_cast<std::size_t>(c)] += v;
        }
      });
    for (auto& t : callers) t.join();
    // Each rep: sum(0..16) + 17 * (0 + 1 + 2) = 136 + 51.
    for (long long t : totals) EXPECT(t == 300 * 187, "stress total %lld", t);
  }

  // Short-handed regions: counted per calling thread when a region runs with fewer threads
  // than it had room for. A region on one thread never is; one issued while another thread's
  // region holds the pool runs alone and is (deterministic: the holder waits for it).
  {
    const std::int64_t before = grimsim::short_handed_regions();
    grimsim::parallel_for(8, 1, [](std::int64_t) {});
    EXPECT(grimsim::short_handed_regions() == before, "one thread counted short-handed");
    std::int64_t refused = 0;
    grimsim::TimingResult tr;
    {
      PoolHolder hold;
      const std::int64_t mine = grimsim::short_handed_regions();
      grimsim::parallel_for(4, 2, [](std::int64_t) {});
      refused = grimsim::short_handed_regions() - mine;
      // the harness: runs 0 and 2 issue a region (short-handed here), 1 and 3 none
      grimsim::TimingOptions o;
      o.min_time_s = 0.0;
      o.min_reps = 4;
      o.max_reps = 4;
      o.warmup = 0;
      int k = 0;
      tr = grimsim::time_kernel([&] {
        if (k++ % 2 == 0) grimsim::parallel_for(4, 2, [](std::int64_t) {});
      }, o);
    }
    EXPECT(refused == 1, "a region refused by a busy pool counted %lld times",
           (long long)refused);
    EXPECT(tr.short_reps == 2, "short_reps %lld, want 2", (long long)tr.short_reps);
    EXPECT(tr.full_min_s > 0.0 && tr.full_min_s >= tr.min_s, "full_min_s %g min_s %g",
           tr.full_min_s, tr.min_s);
  }

  grimsim::TimingOptions opt;
  opt.min_time_s = 0.0;
  opt.min_reps = 5;
  opt.max_reps = 5;
  opt.warmup = 2;
  opt.flush_cache_bytes = 1 << 20;
  opt.threads = 2;
  int calls = 0;
  const auto r = grimsim::time_kernel([&] { ++calls; }, opt);
  EXPECT(r.reps == 5 && calls == 7, "reps %lld calls %d", (long long)r.reps, calls);
  EXPECT(r.min_s <= r.median_s && r.median_s <= r.max_s && r.samples_s.size() == 5,
         "timing order");
  opt.max_reps = 0;
  EXPECT(throws_invalid([&] { grimsim::time_kernel([] {}, opt); }), "max_reps 0");
  opt.max_reps = 3;
  opt.min_time_s = -1.0;
  EXPECT(throws_invalid([&] { grimsim::time_kernel([] {}, opt); }), "negative min_time_s");

  const auto peak = grimsim::measure_fma_peak(1, 0.02);
  EXPECT(peak.gflops > 0.0 && peak.clock_ghz > 0.0 && peak.lanes >= 1, "fma peak %g GFLOP/s",
         peak.gflops);
  const auto bw = grimsim::measure_read_bandwidth(1 << 20, 2, 0.01);
  EXPECT(bw.gbytes_per_s > 0.0 && bw.passes >= 2, "bandwidth %g", bw.gbytes_per_s);
  EXPECT(throws_invalid([] { grimsim::measure_fma_peak(0, 0.1); }), "fma threads 0");
  EXPECT(throws_invalid([] { grimsim::measure_read_bandwidth(16, 1, 0.1); }), "tiny buffer");
}

// Pooling against explicit windows (outside the input: -inf for max, 0 for the average).
void test_pool(const std::string& tier) {
  struct Case {
    std::int64_t c, h, w, kh, kw, sh, sw, pt, pl, oh, ow;
  };
  const Case cases[] = {{3, 9, 11, 3, 3, 2, 2, 1, 1, 5, 6},   // ResNet's stem pool
                        {2, 8, 8, 2, 2, 2, 2, 0, 0, 4, 4},    // VGG's
                        {2, 7, 7, 3, 3, 2, 2, 0, 0, 3, 3},    // floor mode
                        {2, 7, 7, 3, 3, 2, 2, 0, 0, 4, 4},    // ceil mode: one more window
                        {1, 5, 13, 3, 1, 1, 1, 1, 0, 5, 13},  // 3x1, stride 1
                        {4, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},
                        // stride 1, the whole-plane path: GoogLeNet's 3x3 pad 1, SPP's 5x5
                        // pad 2, and a 4x6 window whose ceil-mode windows pass the input
                        {3, 14, 14, 3, 3, 1, 1, 1, 1, 14, 14},
                        {2, 13, 11, 5, 5, 1, 1, 2, 2, 13, 11},
                        {2, 9, 9, 4, 6, 1, 1, 3, 2, 10, 6},
                        // stride 2 on wide rows: the deinterleaving vector path + its tail
                        {2, 6, 45, 3, 3, 2, 2, 1, 1, 3, 23},
                        {2, 6, 41, 2, 2, 2, 2, 0, 0, 3, 21},
                        // one window over the whole plane (ResNet's final pool), and one
                        // larger than the plane (ceil mode)
                        {5, 7, 7, 7, 7, 1, 1, 0, 0, 1, 1},
                        {3, 3, 5, 4, 6, 2, 2, 0, 0, 1, 1}};
  std::uint32_t seed = 7;
  for (const Case& k : cases) {
    grimsim::PoolGeometry g;
    g.channels = k.c, g.height = k.h, g.width = k.w, g.kernel_h = k.kh, g.kernel_w = k.kw;
    g.stride_h = k.sh, g.stride_w = k.sw, g.pad_top = k.pt, g.pad_left = k.pl;
    g.out_h = k.oh, g.out_w = k.ow;
    const auto x = random_vector(static_cast<std::size_t>(k.c * k.h * k.w), seed++);
    for (bool is_max : {true, false})
      for (int threads : {1, 3}) {
        std::vector<float> y(static_cast<std::size_t>(k.c * k.oh * k.ow), 99.0f);
        grimsim::pool2d(x.data(), g, is_max, y.data(), threads);
        double worst = 0.0;
        for (std::int64_t c = 0; c < k.c; ++c)
          for (std::int64_t oy = 0; oy < k.oh; ++oy)
            for (std::int64_t ox = 0; ox < k.ow; ++ox) {
              double acc = is_max ? -1e30 : 0.0;
              for (std::int64_t ky = 0; ky < k.kh; ++ky)
                for (std::int64_t kx = 0; kx < k.kw; ++kx) {
                  const std::int64_t iy = oy * k.sh - k.pt + ky, ix = ox * k.sw - k.pl + kx;
                  if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                  const double v = x[static_cast<std::size_t>((c * k.h + iy) * k.w + ix)];
                  acc = is_max ? std::max(acc, v) : acc + v;
                }
              if (!is_max) acc /= static_cast<double>(k.kh * k.kw);
              const double got = y[static_cast<std::size_t>((c * k.oh + oy) * k.ow + ox)];
              worst = std::max(worst, std::abs(got - acc));
            }
        EXPECT(worst < 1e-5, "[%s] pool %s %lldx%lld k%lldx%lld s%lld threads=%d: err %g",
               tier.c_str(), is_max ? "max" : "avg", (long long)k.h, (long long)k.w,
               (long long)k.kh, (long long)k.kw, (long long)k.sh, threads, worst);
      }
  }
}

void test_invalid_arguments() {
  float a[64] = {}, b[64] = {}, c[64] = {};
  EXPECT(throws_invalid([&] { grimsim::dense_gemm(a, b, c, -1, 2, 2, 1); }), "negative M");
  EXPECT(throws_invalid([&] { grimsim::dense_gemm(a, b, c, 2, 2, 2, 0); }), "threads 0");
  EXPECT(throws_invalid([&] { grimsim::dense_gemm(nullptr, b, c, 2, 2, 2, 1); }), "null w");
  EXPECT(throws_invalid([&] { grimsim::dense_gemm(a, b, c, 2, 2, 2, -3); }), "threads < 0");

  ConvGeometry ok = geometry(2, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1);
  auto bad = ok;
  bad.kernel_h = 7;  // larger than the padded input (6)
  EXPECT(throws_invalid([&] { grimsim::im2col(a, bad, c, 1); }), "kernel too large");
  bad = ok;
  bad.stride_w = 0;
  EXPECT(throws_invalid([&] { grimsim::im2col(a, bad, c, 1); }), "stride 0");
  bad = ok;
  bad.pad_h = -1;
  EXPECT(throws_invalid([&] { grimsim::depthwise_conv2d(a, bad, b, nullptr, c, 1); }),
         "negative pad");
  bad = ok;
  bad.dilation_h = 0;
  EXPECT(throws_invalid([&] { grimsim::depthwise_conv2d(a, bad, b, nullptr, c, 1); }),
         "dilation 0");
  EXPECT(throws_invalid([&] { grimsim::conv2d_gemm(a, ok, b, 3, 2, nullptr, c, 1); }),
         "out channels not divisible by groups");
  EXPECT(throws_invalid([&] { grimsim::conv2d_gemm(a, ok, b, 4, 3, nullptr, c, 1); }),
         "in channels not divisible by groups");
  EXPECT(throws_invalid([&] { grimsim::conv2d_gemm(a, ok, b, 2, 1, nullptr, c, 0); }),
         "conv threads 0");

  EXPECT(throws_invalid([&] { grimsim::winograd_pack_weights(a, 0, 2, 1); }), "cout 0");
  EXPECT(throws_invalid([&] { grimsim::winograd_pack_weights(a, 2, 2, 1, 3); }), "tile 3");
  auto packed = grimsim::winograd_pack_weights(a, 2, 2, 1);
  EXPECT(throws_invalid([&] { grimsim::winograd_conv3x3(a, 1, 1, packed, nullptr, 0, 0, c, 1); }),
         "1x1 input without padding");
  EXPECT(throws_invalid([&] { grimsim::winograd_conv3x3(a, 4, 4, packed, nullptr, -1, 1, c, 1); }),
         "negative pad");
  EXPECT(throws_invalid([&] { grimsim::winograd_conv3x3(a, 4, 4, packed, nullptr, 1, 1, c, 0); }),
         "winograd threads 0");
  grimsim::PoolGeometry pool;
  pool.channels = 1, pool.height = 4, pool.width = 4, pool.kernel_h = 3, pool.kernel_w = 3;
  pool.stride_h = 2, pool.stride_w = 2, pool.pad_top = 1, pool.pad_left = 1;
  pool.out_h = 2, pool.out_w = 2;
  grimsim::pool2d(a, pool, true, c, 1);  // valid
  auto badp = pool;
  badp.pad_top = 3;
  EXPECT(throws_invalid([&] { grimsim::pool2d(a, badp, true, c, 1); }), "pool pad >= kernel");
  badp = pool;
  badp.out_w = 4;  // the last window would start at 5 > 3
  EXPECT(throws_invalid([&] { grimsim::pool2d(a, badp, true, c, 1); }), "pool window past input");
  badp = pool;
  badp.stride_h = 0;
  EXPECT(throws_invalid([&] { grimsim::pool2d(a, badp, false, c, 1); }), "pool stride 0");
  EXPECT(throws_invalid([&] { grimsim::pool2d(a, pool, true, c, 0); }), "pool threads 0");
  EXPECT(throws_invalid([&] { grimsim::pool2d(nullptr, pool, true, c, 1); }), "pool null input");

  grimsim::WinogradWeights empty;
  EXPECT(throws_invalid([&] { grimsim::winograd_conv3x3(a, 4, 4, empty, nullptr, 1, 1, c, 1); }),
         "unpacked weights");
}

}  // namespace

int main() {
  std::printf("SIMD tier %s, parallel backend %s\n", grimsim::simd_level().c_str(),
              grimsim::parallel_backend());
  for (const std::string& tier : tiers()) {
    set_tier(tier);
    EXPECT(grimsim::simd_level() == tier, "tier %s not selected (got %s)", tier.c_str(),
           grimsim::simd_level().c_str());
    test_gemm(tier);
    test_winograd(tier);
    test_conv_gemm_and_depthwise(tier);
    test_pool(tier);
  }
  test_im2col();
  test_parallel_and_harness();
  test_invalid_arguments();
  return testutil::finish("test_dense");
}
