// The AVX-512 tile logic (16 lanes, 14 x 32 GEMM tile, Winograd panels of 32 tiles) checked
// on any CPU: the tier sources are compiled here once more with plain 64-byte vectors
// (GRIMSIM_TU_EMU512), which the compiler lowers to whatever the CPU has. The real AVX-512
// build shares these sources and differs only in the instructions chosen.
#define GRIMSIM_TU_EMU512 1
#include "../src/dense_gemm.simd.cpp"
#include "../src/winograd.simd.cpp"
// The files above define their functions in grimsim::isa_emu512.

#include <vector>

#include "grimsim/dense.hpp"
#include "test_util.hpp"

using testutil::random_vector;
using testutil::rel_err;
namespace emu = grimsim::isa_emu512;

namespace {

std::vector<float> gemm_emu(const std::vector<float>& w, const std::vector<float>& x,
                            std::int64_t M, std::int64_t K, std::int64_t N, std::int64_t kc,
                            std::int64_t mc, bool packed) {
  const grimsim::GemmTile t = emu::gemm_tile();
  const std::int64_t mpanels = (M + t.mr - 1) / t.mr;
  std::vector<float> apack(static_cast<std::size_t>(mpanels * K * t.mr + 1));
  emu::gemm_pack_a(w.data(), M, K, 0, mpanels, apack.data());
  std::vector<float> y(static_cast<std::size_t>(M * N), 7.0f);
  grimsim::GemmJob job;
  job.apack = packed ? apack.data() : nullptr;
  job.w = w.data();
  job.x = x.data();
  job.ldx = N;
  job.y = y.data();
  job.ldy = N;
  job.M = M;
  job.K = K;
  job.kc = kc;
  job.mc = mc;
  const std::int64_t ncols = (N + t.nr - 1) / t.nr * t.nr;
  std::vector<float> scratch(static_cast<std::size_t>(kc * ncols));
  emu::gemm_compute(job, 0, M, 0, N, scratch.data());
  return y;
}

void test_gemm() {
  const grimsim::GemmTile t = emu::gemm_tile();
  EXPECT(t.mr == 14 && t.nr == 32 && t.lanes == 16, "tile %dx%d lanes %d", t.mr, t.nr, t.lanes);
  const std::int64_t shapes[][3] = {{14, 32, 32}, {15, 33, 31}, {3, 70, 65},
                                    {29, 300, 49}, {1, 5, 100}, {40, 16, 8}};
  std::uint32_t seed = 10;
  for (const auto& s : shapes) {
    const std::int64_t M = s[0], K = s[1], N = s[2];
    const auto w = random_vector(static_cast<std::size_t>(M * K), seed++);
    const auto x = random_vector(static_cast<std::size_t>(K * N), seed++);
    std::vector<float> ref(static_cast<std::size_t>(M * N));
    grimsim::dense_gemm_reference(w.data(), x.data(), ref.data(), M, K, N);
    // Small kc and mc so the K and M blocking loops run several times.
    for (bool packed : {true, false}) {
      const auto y = gemm_emu(w, x, M, K, N, 64, 28, packed);
      EXPECT(rel_err(y, ref) < 1e-5, "emu512 gemm M=%lld K=%lld N=%lld packed=%d err %g",
             (long long)M, (long long)K, (long long)N, packed, rel_err(y, ref));
    }
    std::vector<float> yv(static_cast<std::size_t>(M));
    const auto xv = random_vector(static_cast<std::size_t>(K), seed++);
    std::vector<float> refv(yv.size());
    grimsim::dense_gemm_reference(w.data(), xv.data(), refv.data(), M, K, 1);
    emu::gemv_rows(w.data(), K, xv.data(), nullptr, yv.data(), 0, M);
    EXPECT(rel_err(yv, refv) < 1e-5, "emu512 gemv M=%lld K=%lld err %g", (long long)M,
           (long long)K, rel_err(yv, refv));
  }
}

void test_winograd() {
  const grimsim::GemmTile t = emu::gemm_tile();
  struct Case {
    std::int64_t cin, cout, h, w, pad;
    int tile;
  };
  const Case cases[] = {{3, 15, 9, 30, 1, 4}, {17, 5, 13, 6, 0, 4}, {6, 29, 7, 7, 1, 2},
                        {2, 3, 25, 23, 2, 2}};
  std::uint32_t seed = 50;
  for (const Case& c : cases) {
    grimsim::ConvGeometry g;
    g.channels = c.cin;
    g.height = c.h;
    g.width = c.w;
    g.kernel_h = g.kernel_w = 3;
    g.pad_h = g.pad_w = c.pad;
    const auto in = random_vector(static_cast<std::size_t>(c.cin * c.h * c.w), seed++);
    const auto wt = random_vector(static_cast<std::size_t>(c.cout * c.cin * 9), seed++);
    const auto bias = random_vector(static_cast<std::size_t>(c.cout), seed++);
    std::vector<float> ref(static_cast<std::size_t>(c.cout * g.out_h() * g.out_w()));
    grimsim::conv2d_reference(in.data(), g, wt.data(), c.cout, 1, bias.data(), ref.data());

    const int m = c.tile, points = (m + 2) * (m + 2);
    const std::int64_t mpanels = (c.cout + t.mr - 1) / t.mr;
    std::vector<float> panels(static_cast<std::size_t>(points * mpanels * c.cin * t.mr), 0.0f);
    emu::winograd_pack(wt.data(), c.cout, c.cin, m, 0, c.cout, panels.data());
    grimsim::WinogradJob job;
    job.out_tile = m;
    job.upack = panels.data();
    job.cin = c.cin;
    job.cout = c.cout;
    job.out_h = g.out_h();
    job.out_w = g.out_w();
    job.tiles_w = (job.out_w + m - 1) / m;
    const std::int64_t tiles_h = (job.out_h + m - 1) / m;
    job.tiles = tiles_h * job.tiles_w;
    job.hp = tiles_h * m + 2;
    job.wp = job.tiles_w * m + 2;
    job.kc = 8;  // several K blocks
    std::vector<float> padded(static_cast<std::size_t>(c.cin * job.hp * job.wp), 0.0f);
    for (std::int64_t ch = 0; ch < c.cin; ++ch)
      for (std::int64_t y = 0; y < c.h; ++y)
        for (std::int64_t x = 0; x < c.w; ++x)
          padded[static_cast<std::size_t>((ch * job.hp + y + c.pad) * job.wp + x + c.pad)] =
              in[static_cast<std::size_t>((ch * c.h + y) * c.w + x)];
    job.input = padded.data();
    std::vector<float> out(ref.size(), 3.0f);
    job.output = out.data();
    job.bias = bias.data();
    std::vector<float> vbuf(static_cast<std::size_t>(emu::winograd_vbuf_floats(c.cin)));
    std::vector<float> mbuf(static_cast<std::size_t>(emu::winograd_mbuf_floats()));
    const std::int64_t panels_n = (job.tiles + t.nr - 1) / t.nr;
    for (std::int64_t p = 0; p < panels_n; ++p)
      emu::winograd_panel(job, p, 0, mpanels, vbuf.data(), mbuf.data());
    EXPECT(rel_err(out, ref) < 1e-5, "emu512 winograd F(%d,3) cin=%lld cout=%lld err %g", m,
           (long long)c.cin, (long long)c.cout, rel_err(out, ref));
  }
}

}  // namespace

int main() {
  test_gemm();
  test_winograd();
  return testutil::finish("test_dense_emu512");
}
