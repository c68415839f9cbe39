// The AVX-512 shapes of the CSR, N:M and pattern inner loops (16 lanes: other tile widths,
// other narrow/wide cut-over) checked on any CPU: the tier sources are compiled once more
// with plain 64-byte vectors (GRIMSIM_TU_EMU512, see grimsim/simd.hpp) and driven here over
// one panel, like the drivers do per task.
#define GRIMSIM_TU_EMU512 1
#include "../src/sparse.simd.cpp"
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
  constexpr int L = 16;  // the emulated AVX-512 width
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

void test_rowwise() {
  std::uint32_t seed = 50;
  const sparsetest::NmOwned nm(19, 30, 2, 4, seed++);
  const sparsetest::PatternOwned pat(21, 5, 0.6, seed++);
  auto w = random_vector(static_cast<std::size_t>(23 * 41), seed++);
  for (std::size_t i = 0; i < w.size(); ++i)
    if (i % 3 != 0) w[i] = 0.0f;
  const sparsetest::CsrOwned csr(w, 23, 41);
  const grimsim::NmMatrix nmm = nm.matrix();
  const grimsim::PatternMatrix pm = pat.matrix();
  const grimsim::CsrMatrix cm = csr.matrix();
  const sd::NmRaw nraw{nmm.rows, nmm.cols, nmm.n, nmm.m, nmm.values.data, nmm.indices.data};
  const sd::PatternRaw praw{pm.rows,           pm.cols,          pm.library.data,
                            pm.kernel_ptr.data, pm.kernel_channel.data, pm.kernel_pattern.data,
                            pm.values.data,    pm.filter_order.data};
  const sd::CsrRaw craw{cm.rows, cm.cols, cm.indptr.data, cm.indices.data, cm.data.data};
  for (i64 N : {1, 3, 16, 17, 70}) {
    auto x = random_vector(static_cast<std::size_t>(30 * N), seed++);
    auto ref = dense_ref(nm.dense, x, 19, 30, N);
    auto y = run_panel(19, 30, N, x, nullptr,
                       [&](const sd::Panel& p) { emu::nm_rows_panel(nraw, 0, 19, p); });
    EXPECT(rel_err(y, ref) < kTol, "emu512 nm panel N=%lld", (long long)N);
    emu::nm_rows_narrow(nraw, 0, 19, x.data(), N, y.data());
    EXPECT(rel_err(y, ref) < kTol, "emu512 nm narrow N=%lld", (long long)N);

    x = random_vector(static_cast<std::size_t>(45 * N), seed++);
    ref = dense_ref(pat.dense, x, 21, 45, N);
    y = run_panel(21, 45, N, x, pat.filter_order.data(),
                  [&](const sd::Panel& p) { emu::pattern_rows_panel(praw, 0, 21, p); });
    EXPECT(rel_err(y, ref) < kTol, "emu512 pattern panel N=%lld", (long long)N);
    emu::pattern_rows_narrow(praw, 0, 21, x.data(), N, y.data());
    EXPECT(rel_err(y, ref) < kTol, "emu512 pattern narrow N=%lld", (long long)N);

    x = random_vector(static_cast<std::size_t>(41 * N), seed++);
    ref = dense_ref(w, x, 23, 41, N);
    y = run_panel(23, 41, N, x, nullptr,
                  [&](const sd::Panel& p) { emu::csr_rows_panel(craw, 0, 23, p); });
    EXPECT(rel_err(y, ref) < kTol, "emu512 csr panel N=%lld", (long long)N);
    emu::csr_rows_narrow(craw, 0, 23, x.data(), N, y.data());
    EXPECT(rel_err(y, ref) < kTol, "emu512 csr narrow N=%lld", (long long)N);
  }
}

}  // namespace

int main() {
  test_rowwise();
  return testutil::finish("test_sparse_rows_emu512");
}
