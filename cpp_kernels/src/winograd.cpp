// Winograd F(4,3) 3x3 stride-1 convolution: weight transform (once), padding, threads.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "dense_kernels.hpp"
#include "grimsim/dense.hpp"
#include "grimsim/parallel.hpp"

namespace grimsim {

namespace {

void check_tile(int out_tile) {
  check(out_tile == 2 || out_tile == 4,
        "Winograd output tile must be 2 (F(2,3)) or 4 (F(4,3)), got " + std::to_string(out_tile));
}

GemmTile tile_at(SimdLevel level) { return GRIMSIM_DISPATCH_AT(level, gemm_tile); }

}  // namespace

int winograd_preferred_tile(std::int64_t out_h, std::int64_t out_w) {
  check(out_h >= 1 && out_w >= 1, "winograd_preferred_tile: output size must be >= 1");
  // GEMM work ~ points x tiles rounded up to whole NR-tile panels: F(4,3) does 36 products
  // per 4x4 outputs, F(2,3) 16 per 2x2, but on a tiny map F(4,3) pays for empty lanes.
  const std::int64_t nr = tile_at(simd_runtime_level()).nr;
  auto work = [&](std::int64_t m) {
    const std::int64_t tiles = ((out_h + m - 1) / m) * ((out_w + m - 1) / m);
    return (m + 2) * (m + 2) * ((tiles + nr - 1) / nr) * nr;
  };
  return work(2) < work(4) ? 2 : 4;
}

WinogradWeights winograd_pack_weights(const float* weight, std::int64_t out_channels,
                                      std::int64_t in_channels, int threads, int out_tile) {
  check_tile(out_tile);
  check(out_channels >= 1 && in_channels >= 1,
        "winograd_pack_weights: channels must be >= 1, got out=" + std::to_string(out_channels) +
            " in=" + std::to_string(in_channels));
  check_threads(threads);
  check(weight != nullptr, "winograd_pack_weights: weight is null");
  WinogradWeights w;
  w.out_channels = out_channels;
  w.in_channels = in_channels;
  w.level = simd_runtime_level();
  w.out_tile = out_tile;
  const int points = (out_tile + 2) * (out_tile + 2);
  const GemmTile t = tile_at(w.level);
  w.mr = t.mr;
  const std::int64_t mpanels = (out_channels + t.mr - 1) / t.mr;
  const std::int64_t cin = in_channels;
  w.panels = AlignedArray<float>(static_cast<std::size_t>(points * mpanels * cin * t.mr), true);
  float* out = w.panels.data();
  // Tasks of ~16 output channels.
  const std::int64_t tasks = (out_channels + 15) / 16;
  parallel_for(tasks, threads, [&](std::int64_t task) {
    const std::int64_t co0 = task * 16, co1 = std::min(out_channels, co0 + 16);
    GRIMSIM_DISPATCH_AT(w.level, winograd_pack, weight, out_channels, in_channels, out_tile, co0,
                        co1, out);
  });
  return w;
}

void winograd_conv3x3(const float* input, std::int64_t height, std::int64_t width,
                      const WinogradWeights& w, const float* bias, std::int64_t pad_h,
                      std::int64_t pad_w, float* output, int threads) {
  check_threads(threads);
  check(w.out_channels >= 1 && w.in_channels >= 1 && w.panels.size() > 0,
        "winograd_conv3x3: weights are not packed (use winograd_pack_weights)");
  const GemmTile t = tile_at(w.level);
  check(w.mr == t.mr, "winograd_conv3x3: packed weights do not match this build's tile");
  check(height >= 1 && width >= 1, "winograd_conv3x3: height and width must be >= 1, got " +
                                       std::to_string(height) + "x" + std::to_string(width));
  check(pad_h >= 0 && pad_w >= 0, "winograd_conv3x3: padding must be >= 0");
  const std::int64_t out_h = height + 2 * pad_h - 2, out_w = width + 2 * pad_w - 2;
  check(out_h >= 1 && out_w >= 1, "winograd_conv3x3: input " + std::to_string(height) + "x" +
                                      std::to_string(width) + " with padding (" +
                                      std::to_string(pad_h) + ", " + std::to_string(pad_w) +
                                      ") is smaller than the 3x3 kernel");
  check(input != nullptr && output != nullptr, "winograd_conv3x3: null input or output");

  check_tile(w.out_tile);
  const std::int64_t cin = w.in_channels, cout = w.out_channels;
  const int m = w.out_tile;
  WinogradJob job;
  job.out_tile = m;
  job.kc = gemm_block_k(t.nr);
  job.tiles_w = (out_w + m - 1) / m;
  const std::int64_t tiles_h = (out_h + m - 1) / m;
  job.tiles = tiles_h * job.tiles_w;
  // Padded so every tile reads 6x6 in-bounds values: zeros stand for the conv padding and
  // for the overhang of the last tiles.
  job.hp = tiles_h * m + 2;
  job.wp = job.tiles_w * m + 2;
  job.cin = cin;
  job.cout = cout;
  job.out_h = out_h;
  job.out_w = out_w;
  job.output = output;
  job.bias = bias;
  job.upack = w.panels.data();

  AlignedArray<float> padded(static_cast<std::size_t>(cin * job.hp * job.wp));
  float* pp = padded.data();
  const std::int64_t hp = job.hp, wp = job.wp;
  parallel_for(cin, threads, [&](std::int64_t c) {
    float* dst = pp + c * hp * wp;
    std::fill(dst, dst + hp * wp, 0.0f);
    const float* src = input + c * height * width;
    for (std::int64_t y = 0; y < height; ++y)
      std::memcpy(dst + (y + pad_h) * wp + pad_w, src + y * width,
                  static_cast<std::size_t>(width) * sizeof(float));
  });
  job.input = pp;

  const std::int64_t panels = (job.tiles + t.nr - 1) / t.nr;
  const std::int64_t mpanels = (cout + t.mr - 1) / t.mr;
  // Split output channels too when there are too few tile panels to keep threads busy.
  std::int64_t cchunks = 1;
  if (panels < 2 * threads)
    cchunks = std::min<std::int64_t>(mpanels, (2 * threads + panels - 1) / panels);
  const std::int64_t vfloats = GRIMSIM_DISPATCH_AT(w.level, winograd_vbuf_floats, cin);
  const std::int64_t mfloats = GRIMSIM_DISPATCH_AT(w.level, winograd_mbuf_floats);
  const int team = static_cast<int>(std::min<std::int64_t>(threads, panels * cchunks));
  std::vector<AlignedArray<float>> vbuf, mbuf;
  for (int i = 0; i < team; ++i) {
    vbuf.emplace_back(static_cast<std::size_t>(vfloats));
    mbuf.emplace_back(static_cast<std::size_t>(mfloats));
  }
  parallel_for(panels * cchunks, team, [&](std::int64_t task, int thread) {
    const std::int64_t panel = task / cchunks, cc = task % cchunks;
    const std::int64_t cp0 = mpanels * cc / cchunks, cp1 = mpanels * (cc + 1) / cchunks;
    if (cp0 >= cp1) return;
    GRIMSIM_DISPATCH_AT(w.level, winograd_panel, job, panel, cp0, cp1,
                        vbuf[static_cast<std::size_t>(thread)].data(),
                        mbuf[static_cast<std::size_t>(thread)].data());
  });
}

}  // namespace grimsim
