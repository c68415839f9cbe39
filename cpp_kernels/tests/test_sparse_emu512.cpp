// The AVX-512 shapes of the BCR inner loops (16 lanes, 32 registers: other register tiles,
// other narrow/wide cut-over, packed padding read by 16-float loads) checked on any CPU: the
// tier sources are compiled once more with plain 64-byte vectors (GRIMSIM_TU_EMU512, see
// grimsim/simd.hpp) and driven here over one panel, like the drivers do per task.
#define GRIMSIM_TU_EMU512 1
#include "../src/bcr.simd.cpp"
// The file above defines its functions in grimsim::isa_emu512.

#include <vector>

#include "grimsim/sparse.hpp"
#include "sparse_test_util.hpp"
#include "test_util.hpp"

using sparsetest::i64;
using testutil::random_vector;
using testutil::rel_err;
namespace emu = grimsim::isa_emu512;
namespace sd = grimsim::sparse_detail;

namespace {

constexpr double kTol = 2e-5;

std::vector<float> dense_ref(const std::vector<float>& w, const std::vector<float>& x, i64 M,
                             i64 K, i64 N) {
  std::vector<float> y(static_cast<std::size_t>(M * N));
  grimsim::dense_gemm_reference(w.data(), x.data(), y.data(), M, K, N);
  return y;
}

// Runs a panel kernel over all units on X padded to whole 16-float vectors; returns y (M x N).
template <class Kernel>
std::vector<float> run_panel(i64 M, i64 K, i64 N, const std::vector<float>& x,
                             const std::int32_t* row_map, Kernel&& kernel) {
  const int L = emu::sparse_lanes();
  const i64 nv = (N + L - 1) / L, width = nv * L;
  std::vector<float> xp(static_cast<std::size_t>(K * width), 0.0f);
  for (i64 k = 0; k < K; ++k)
    for (i64 j = 0; j < N; ++j)
      xp[static_cast<std::size_t>(k * width + j)] = x[static_cast<std::size_t>(k * N + j)];
  std::vector<float> yp(static_cast<std::size_t>(M * width), 0.0f);
  kernel(sd::Panel{xp.data(), width, yp.data(), width, 0, nv, row_map});
  std::vector<float> y(static_cast<std::size_t>(M * N));
  for (i64 i = 0; i < M; ++i)
    for (i64 j = 0; j < N; ++j)
      y[static_cast<std::size_t>(i * N + j)] = yp[static_cast<std::size_t>(i * width + j)];
  return y;
}

void test_bcr() {
  struct Case {
    i64 M, K, R, C;
    double keep_r, keep_c;
  };
  const Case cases[] = {{37, 50, 16, 32, 0.5, 0.5}, {70, 90, 16, 32, 0.9, 0.3},
                        {150, 40, 70, 16, 0.6, 0.8}, {33, 70, 4, 8, 0.7, 0.4},
                        {20, 300, 20, 150, 0.5, 0.5}};  // (one whole-matrix block would
                                                         // be packed dense, with no stream)
  std::uint32_t seed = 1;
  for (const Case& c : cases) {
    const auto w = sparsetest::random_bcr_dense(c.M, c.K, c.R, c.C, c.keep_r, c.keep_c, 0.1,
                                                seed++);
    const sparsetest::BcrOwned f(w, c.M, c.K, c.R, c.C);
    const grimsim::BcrMatrix m = f.matrix();
    const i64 bands = (c.R + sd::kBandRows - 1) / sd::kBandRows;
    const sd::BcrRaw raw{m.rows,           m.cols,          m.block_rows,   m.block_cols,
                         bands,            m.block_row_ptr.data, m.block_col.data,
                         m.row_ptr.data,   m.row_idx.data,  m.col_ptr.data, m.col_idx.data,
                         m.val_ptr.data,   m.values.data};
    const i64 units = m.n_block_rows() * bands;
    const grimsim::BcrPacked p = grimsim::BcrPacked::pack(m);
    const sd::BcrStream s{p.rows_, p.cols_, p.unit_row0_.data(), p.unit_offset_.data(),
                          reinterpret_cast<const unsigned char*>(p.stream_.data()),
                          p.col_bytes_};
    const i64 stream_units = static_cast<i64>(p.unit_offset_.size()) - 1;
    for (i64 N : {1, 2, 3, 7, 8, 15, 16, 17, 40, 49}) {
      const auto x = random_vector(static_cast<std::size_t>(c.K * N), seed++);
      const auto ref = dense_ref(w, x, c.M, c.K, N);
      auto y = run_panel(c.M, c.K, N, x, nullptr,
                         [&](const sd::Panel& pan) { emu::bcr_raw_panel(raw, 0, units, pan); });
      EXPECT(rel_err(y, ref) < kTol, "emu512 bcr raw panel %lldx%lld N=%lld", (long long)c.M,
             (long long)c.K, (long long)N);
      y = run_panel(c.M, c.K, N, x, nullptr, [&](const sd::Panel& pan) {
        emu::bcr_stream_panel(s, 0, stream_units, pan);
      });
      EXPECT(rel_err(y, ref) < kTol, "emu512 bcr packed panel N=%lld", (long long)N);
      std::fill(y.begin(), y.end(), 0.0f);
      emu::bcr_raw_narrow(raw, 0, units, x.data(), N, y.data());
      EXPECT(rel_err(y, ref) < kTol, "emu512 bcr raw narrow N=%lld", (long long)N);
      std::fill(y.begin(), y.end(), 0.0f);
      emu::bcr_stream_narrow(s, 0, stream_units, x.data(), N, y.data());
      EXPECT(rel_err(y, ref) < kTol, "emu512 bcr packed narrow N=%lld", (long long)N);
    }
  }
}

}  // namespace

int main() {
  EXPECT(emu::sparse_lanes() == 16, "emulated tier has %d lanes", emu::sparse_lanes());
  test_bcr();
  return testutil::finish("test_sparse_emu512");
}
