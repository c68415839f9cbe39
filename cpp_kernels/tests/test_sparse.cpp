// Standalone tests of the sparse kernels (no Python): CSR, BCR (raw and packed), pattern and
// N:M against a dense reference on odd shapes, thread counts and every SIMD tier this CPU
// runs, and every malformed-format rejection (built for the sanitizer and aarch64 runs).
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "grimsim/simd.hpp"
#include "grimsim/sparse.hpp"
#include "../src/sparse_driver.hpp"
#include "sparse_test_util.hpp"
#include "test_util.hpp"

using sparsetest::i64;
using testutil::random_vector;
using testutil::rel_err;
using testutil::set_tier;
using testutil::throws_invalid;
using testutil::tiers;

namespace {

std::vector<float> dense_ref(const std::vector<float>& w, const std::vector<float>& x, i64 M,
                             i64 K, i64 N) {
  std::vector<float> y(static_cast<std::size_t>(M * N));
  grimsim::dense_gemm_reference(w.data(), x.data(), y.data(), M, K, N);
  return y;
}

constexpr double kTol = 2e-5;
const i64 kNs[] = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33, 41, 49, 57, 100};

void test_bcr(const std::string& tier) {
  struct Case {
    i64 M, K, R, C;
    double keep_r, keep_c, empty;
  };
  const Case cases[] = {{1, 1, 1, 1, 1, 1, 0},        {37, 50, 16, 32, 0.5, 0.5, 0.2},
                        {64, 96, 16, 32, 0.3, 0.3, 0}, {33, 70, 4, 8, 0.7, 0.4, 0.3},
                        {150, 40, 70, 16, 0.6, 0.8, 0}, {130, 29, 130, 29, 0.5, 0.5, 0},
                        {20, 300, 8, 64, 0.9, 0.2, 0.1}, {9, 17, 3, 5, 1, 1, 0.5},
                        {16, 32, 16, 32, 1, 1, 0},      {40, 60, 16, 32, 0.5, 0.5, 1.0},
                        // K longer than a packed K chunk (bcr_panel_layout's kc), with tiles
                        // of whole rows spanning every chunk (keep_r = 1 merges a block row's
                        // blocks)
                        {600, 1100, 16, 32, 0.5, 0.5, 0.1}, {300, 900, 16, 32, 1, 0.4, 0},
                        // one block over the whole matrix: filter-like (rows pruned, placed
                        // after the product), column-like (X rows read through the map)
                        {70, 300, 70, 300, 0.5, 1, 0}, {70, 300, 70, 300, 1, 0.3, 0}};
  std::uint32_t seed = 10;
  for (const Case& c : cases) {
    const auto w = sparsetest::random_bcr_dense(c.M, c.K, c.R, c.C, c.keep_r, c.keep_c, c.empty,
                                                seed++);
    const sparsetest::BcrOwned f(w, c.M, c.K, c.R, c.C);
    const grimsim::BcrMatrix m = f.matrix();
    grimsim::validate_bcr(m);
    const grimsim::BcrPacked packed = grimsim::BcrPacked::pack(m);
    for (i64 N : kNs) {
      const auto x = random_vector(static_cast<std::size_t>(c.K * N), seed++);
      const auto ref = dense_ref(w, x, c.M, c.K, N);
      std::vector<float> y(ref.size(), 99.0f);
      grimsim::bcr_spmm_reference(m, x.data(), N, y.data());
      EXPECT(rel_err(y, ref) < kTol, "bcr reference %lldx%lld N=%lld", (long long)c.M,
             (long long)c.K, (long long)N);
      for (int threads : {1, 2, 3}) {
        std::fill(y.begin(), y.end(), 99.0f);
        grimsim::bcr_spmm(m, x.data(), N, y.data(), threads);
        EXPECT(rel_err(y, ref) < kTol, "[%s] bcr %lldx%lld block %lldx%lld N=%lld threads=%d",
               tier.c_str(), (long long)c.M, (long long)c.K, (long long)c.R, (long long)c.C,
               (long long)N, threads);
        std::fill(y.begin(), y.end(), 99.0f);
        packed.spmm(x.data(), N, y.data(), threads);
        EXPECT(rel_err(y, ref) < kTol,
               "[%s] bcr packed %lldx%lld block %lldx%lld N=%lld threads=%d", tier.c_str(),
               (long long)c.M, (long long)c.K, (long long)c.R, (long long)c.C, (long long)N,
               threads);
      }
    }
  }
}

// A single block over the whole matrix (filter and column pruning) is packed as a dense GEMM
// of its kept rows x kept columns, with no stream.
void test_bcr_single_block() {
  const i64 M = 40, K = 64;
  const auto w = sparsetest::random_bcr_dense(M, K, M, K, 0.5, 0.75, 0, 3);
  const sparsetest::BcrOwned f(w, M, K, M, K);
  const grimsim::BcrPacked packed = grimsim::BcrPacked::pack(f.matrix());
  i64 rows = 0, cols = 0;
  for (i64 i = 0; i < M; ++i) {
    bool any = false;
    for (i64 k = 0; k < K; ++k) any = any || w[static_cast<std::size_t>(i * K + k)] != 0.0f;
    rows += any;
  }
  for (i64 k = 0; k < K; ++k) {
    bool any = false;
    for (i64 i = 0; i < M; ++i) any = any || w[static_cast<std::size_t>(i * K + k)] != 0.0f;
    cols += any;
  }
  EXPECT(rows < M && cols < K, "the test matrix should prune rows and columns");
  EXPECT(packed.single_block_ && packed.stream_.empty(), "single block not packed dense");
  EXPECT(packed.dense_.M == rows && packed.dense_.K == cols,
         "dense block %lldx%lld, kept %lldx%lld", (long long)packed.dense_.M,
         (long long)packed.dense_.K, (long long)rows, (long long)cols);
  EXPECT(packed.nnz() == rows * cols && packed.nbytes() >= 2 * rows * cols * 4,
         "nnz %lld bytes %lld", (long long)packed.nnz(), (long long)packed.nbytes());
}

// Rows sharing their column set across all their blocks are merged into one tile.
void test_bcr_merge() {
  const i64 M = 48, K = 128;
  std::vector<float> w(static_cast<std::size_t>(M * K), 0.0f);
  const auto v = random_vector(w.size(), 5);
  for (i64 i = 0; i < M; ++i)
    for (i64 k = 0; k < K; k += 3) {
      const auto at = static_cast<std::size_t>(i * K + k);
      w[at] = v[at] + 2.0f;
    }
  const sparsetest::BcrOwned f(w, M, K, 16, 32);
  const grimsim::BcrPacked packed = grimsim::BcrPacked::pack(f.matrix());
  EXPECT(packed.n_tiles() == 3, "column pruning: %lld tiles, expected one per block row",
         (long long)packed.n_tiles());
  EXPECT(packed.nnz() == M * 43, "nnz %lld", (long long)packed.nnz());
  const auto x = random_vector(static_cast<std::size_t>(K * 20), 6);
  std::vector<float> y(static_cast<std::size_t>(M * 20));
  packed.spmm(x.data(), 20, y.data(), 2);
  EXPECT(rel_err(y, dense_ref(w, x, M, K, 20)) < kTol, "merged tiles");
}

void test_csr(const std::string& tier) {
  const i64 shapes[][2] = {{1, 1}, {0, 5}, {17, 33}, {64, 200}, {5, 1000}};
  std::uint32_t seed = 100;
  for (const auto& s : shapes) {
    const i64 M = s[0], K = s[1];
    auto w = random_vector(static_cast<std::size_t>(M * K), seed++);
    for (std::size_t i = 0; i < w.size(); ++i)
      if ((i * 7919) % 5 < 3) w[i] = 0.0f;
    const sparsetest::CsrOwned f(w, M, K);
    for (i64 N : kNs) {
      const auto x = random_vector(static_cast<std::size_t>(K * N), seed++);
      const auto ref = dense_ref(w, x, M, K, N);
      std::vector<float> y(ref.size(), 99.0f);
      grimsim::csr_spmm_reference(f.matrix(), x.data(), N, y.data());
      EXPECT(rel_err(y, ref) < kTol, "csr reference");
      for (int threads : {1, 3}) {
        std::fill(y.begin(), y.end(), 99.0f);
        grimsim::csr_spmm(f.matrix(), x.data(), N, y.data(), threads);
        EXPECT(rel_err(y, ref) < kTol, "[%s] csr %lldx%lld N=%lld threads=%d", tier.c_str(),
               (long long)M, (long long)K, (long long)N, threads);
      }
    }
  }
}

void test_nm(const std::string& tier) {
  const i64 cases[][4] = {{2, 4, 9, 30}, {1, 4, 16, 64}, {1, 8, 5, 13}, {3, 5, 33, 11},
                          {4, 4, 2, 8}};
  std::uint32_t seed = 200;
  for (const auto& c : cases) {
    const sparsetest::NmOwned f(c[2], c[3], c[0], c[1], seed++);
    for (i64 N : kNs) {
      const auto x = random_vector(static_cast<std::size_t>(f.K * N), seed++);
      const auto ref = dense_ref(f.dense, x, f.M, f.K, N);
      std::vector<float> y(ref.size(), 99.0f);
      grimsim::nm_spmm_reference(f.matrix(), x.data(), N, y.data());
      EXPECT(rel_err(y, ref) < kTol, "nm reference");
      for (int threads : {1, 2}) {
        std::fill(y.begin(), y.end(), 99.0f);
        grimsim::nm_spmm(f.matrix(), x.data(), N, y.data(), threads);
        EXPECT(rel_err(y, ref) < kTol, "[%s] nm %lld:%lld %lldx%lld N=%lld", tier.c_str(),
               (long long)c[0], (long long)c[1], (long long)c[2], (long long)c[3],
               (long long)N);
      }
    }
  }
}

void test_pattern(const std::string& tier) {
  const double cases[][3] = {{1, 1, 1.0}, {8, 3, 0.7}, {33, 16, 0.5}, {5, 40, 0.2}};
  std::uint32_t seed = 300;
  for (const auto& c : cases) {
    const sparsetest::PatternOwned f(static_cast<i64>(c[0]), static_cast<i64>(c[1]), c[2],
                                     seed++);
    for (i64 N : kNs) {
      const auto x = random_vector(static_cast<std::size_t>(f.K * N), seed++);
      const auto ref = dense_ref(f.dense, x, f.M, f.K, N);
      std::vector<float> y(ref.size(), 99.0f);
      grimsim::pattern_spmm_reference(f.matrix(), x.data(), N, y.data());
      EXPECT(rel_err(y, ref) < kTol, "pattern reference");
      for (int threads : {1, 2}) {
        std::fill(y.begin(), y.end(), 99.0f);
        grimsim::pattern_spmm(f.matrix(), x.data(), N, y.data(), threads);
        EXPECT(rel_err(y, ref) < kTol, "[%s] pattern %gx%g N=%lld threads=%d", tier.c_str(),
               c[0], c[1], (long long)N, threads);
      }
    }
  }
}

// --------------------------------------------------------------------- malformed formats

// Runs `mutate` on a copy of a valid format and expects the kernel (and pack) to refuse it
// before touching X or Y (both are null here: any access would crash under ASan).
void expect_bcr_rejects(const char* what,
                        const std::function<void(sparsetest::BcrOwned&)>& mutate) {
  const auto w = sparsetest::random_bcr_dense(20, 40, 8, 32, 0.5, 0.5, 0.0, 7);
  sparsetest::BcrOwned f(w, 20, 40, 8, 32);
  mutate(f);
  const grimsim::BcrMatrix m = f.matrix();
  EXPECT(throws_invalid([&] { grimsim::bcr_spmm(m, nullptr, 4, nullptr, 1); }),
         "bcr accepted: %s", what);
  EXPECT(throws_invalid([&] { (void)grimsim::BcrPacked::pack(m); }), "bcr_pack accepted: %s",
         what);
}

void test_bcr_rejections() {
  using F = sparsetest::BcrOwned;
  expect_bcr_rejects("block_row_ptr short", [](F& f) { f.block_row_ptr.pop_back(); });
  expect_bcr_rejects("block_row_ptr[0] != 0", [](F& f) { f.block_row_ptr[0] = 1; });
  expect_bcr_rejects("block_row_ptr decreasing", [](F& f) {
    f.block_row_ptr[1] = 5;
    f.block_row_ptr[2] = 1;
  });
  expect_bcr_rejects("block_row_ptr end", [](F& f) { f.block_row_ptr.back() -= 1; });
  expect_bcr_rejects("block_col out of range", [](F& f) { f.block_col[1] = 2; });
  expect_bcr_rejects("block_col negative", [](F& f) { f.block_col[0] = -1; });
  expect_bcr_rejects("block_col unsorted", [](F& f) { f.block_col[1] = 0; });
  expect_bcr_rejects("row_ptr end", [](F& f) { f.row_ptr.back() += 1; });
  expect_bcr_rejects("row_ptr decreasing", [](F& f) { f.row_ptr[1] = f.row_ptr[2] + 1; });
  expect_bcr_rejects("row_idx outside block", [](F& f) { f.row_idx[0] = 8; });
  expect_bcr_rejects("row_idx past M", [](F& f) { f.row_idx.back() = 20; });
  expect_bcr_rejects("row_idx unsorted", [](F& f) { std::swap(f.row_idx[0], f.row_idx[1]); });
  expect_bcr_rejects("col_idx outside block", [](F& f) { f.col_idx[0] = 32; });
  expect_bcr_rejects("col_idx past K", [](F& f) { f.col_idx.back() = 40; });
  expect_bcr_rejects("col_idx duplicate", [](F& f) { f.col_idx[1] = f.col_idx[0]; });
  expect_bcr_rejects("val_ptr misaligned", [](F& f) { f.val_ptr[1] += 1; });
  expect_bcr_rejects("val_ptr[0] != 0", [](F& f) { f.val_ptr[0] = 16; });
  expect_bcr_rejects("val_ptr short block", [](F& f) { f.val_ptr[1] = 0; });
  expect_bcr_rejects("val_ptr past values", [](F& f) { f.values.resize(f.values.size() - 17); });
  expect_bcr_rejects("val_ptr length", [](F& f) { f.val_ptr.pop_back(); });
  expect_bcr_rejects("reorder length", [](F& f) { f.reorder.pop_back(); });
  expect_bcr_rejects("reorder duplicate", [](F& f) { f.reorder[1] = f.reorder[0]; });
  expect_bcr_rejects("reorder crosses block rows",
                     [](F& f) { std::swap(f.reorder[0], f.reorder[10]); });
  expect_bcr_rejects("zero block", [](F& f) { f.R = 0; });
  expect_bcr_rejects("negative shape", [](F& f) { f.M = -1; });
  expect_bcr_rejects("block count vs shape", [](F& f) { f.M = 30; });
  // Valid arrays, bad call arguments.
  const auto w = sparsetest::random_bcr_dense(20, 40, 8, 32, 0.5, 0.5, 0.0, 7);
  const sparsetest::BcrOwned f(w, 20, 40, 8, 32);
  std::vector<float> x(40 * 4), y(20 * 4);
  EXPECT(throws_invalid([&] { grimsim::bcr_spmm(f.matrix(), x.data(), -1, y.data(), 1); }),
         "negative N accepted");
  EXPECT(throws_invalid([&] { grimsim::bcr_spmm(f.matrix(), x.data(), 4, y.data(), 0); }),
         "0 threads accepted");
  const grimsim::BcrPacked p = grimsim::BcrPacked::pack(f.matrix());
  EXPECT(throws_invalid([&] { p.spmm(x.data(), 4, y.data(), 0); }), "packed: 0 threads");
}

void test_csr_rejections() {
  std::vector<float> w(4 * 7, 0.0f);
  w[1] = w[4] = w[14] = w[17] = w[20] = w[26] = 1.0f;
  auto expect = [&](const char* what, const std::function<void(sparsetest::CsrOwned&)>& mutate) {
    sparsetest::CsrOwned f(w, 4, 7);
    mutate(f);
    EXPECT(throws_invalid([&] { grimsim::csr_spmm(f.matrix(), nullptr, 3, nullptr, 1); }),
           "csr accepted: %s", what);
  };
  using F = sparsetest::CsrOwned;
  expect("indptr short", [](F& f) { f.indptr.pop_back(); });
  expect("indptr[0]", [](F& f) { f.indptr[0] = 1; });
  expect("indptr decreasing", [](F& f) { f.indptr[2] = 0; });
  expect("indptr end", [](F& f) { f.indptr.back() = 5; });
  expect("index range", [](F& f) { f.indices[0] = 7; });
  expect("index negative", [](F& f) { f.indices[0] = -3; });
  expect("index unsorted", [](F& f) { std::swap(f.indices[0], f.indices[1]); });
  expect("data length", [](F& f) { f.data.pop_back(); });
  expect("negative cols", [](F& f) { f.K = -2; });
}

void test_nm_rejections() {
  auto expect = [&](const char* what, const std::function<void(sparsetest::NmOwned&)>& mutate) {
    sparsetest::NmOwned f(3, 10, 2, 4, 9);
    mutate(f);
    EXPECT(throws_invalid([&] { grimsim::nm_spmm(f.matrix(), nullptr, 3, nullptr, 1); }),
           "nm accepted: %s", what);
  };
  using F = sparsetest::NmOwned;
  expect("position >= m", [](F& f) { f.indices[1] = 4; });
  expect("position negative", [](F& f) { f.indices[0] = -1; });
  expect("positions not increasing", [](F& f) { f.indices[1] = f.indices[0]; });
  expect("values length", [](F& f) { f.values.pop_back(); });
  expect("indices length", [](F& f) { f.indices.push_back(0); });
  expect("n > m", [](F& f) { f.n = 5; });
  expect("m = 0", [](F& f) { f.m = 0; });
  // K = 10, m = 4: group 2 covers columns 8..11; a nonzero in the padding is an error.
  expect("padding value", [](F& f) {
    f.indices[4] = 2;
    f.indices[5] = 3;
    f.values[4] = 1.0f;
  });
}

void test_pattern_rejections() {
  auto expect = [&](const char* what,
                    const std::function<void(sparsetest::PatternOwned&)>& mutate) {
    sparsetest::PatternOwned f(6, 4, 0.8, 11);
    mutate(f);
    EXPECT(throws_invalid([&] { grimsim::pattern_spmm(f.matrix(), nullptr, 3, nullptr, 1); }),
           "pattern accepted: %s", what);
  };
  using F = sparsetest::PatternOwned;
  expect("K not 9k", [](F& f) { f.K = 35; });
  expect("library position 9", [](F& f) { f.library[3] = 9; });
  expect("library unsorted", [](F& f) { std::swap(f.library[0], f.library[1]); });
  expect("library ragged", [](F& f) { f.library.pop_back(); });
  expect("pattern id", [](F& f) { f.kernel_pattern[0] = 4; });
  expect("channel range", [](F& f) { f.kernel_channel[0] = 4; });
  expect("channel order", [](F& f) {
    for (std::size_t t = 0; t + 1 < f.kernel_ptr.size(); ++t)
      if (f.kernel_ptr[t + 1] - f.kernel_ptr[t] >= 2) {
        const auto q = static_cast<std::size_t>(f.kernel_ptr[t]);
        std::swap(f.kernel_channel[q], f.kernel_channel[q + 1]);
        return;
      }
    f.kernel_channel.clear();  // no filter with two kernels: break the lengths instead
  });
  expect("kernel_ptr end", [](F& f) { f.kernel_ptr.back() += 1; });
  expect("kernel_pattern length", [](F& f) { f.kernel_pattern.pop_back(); });
  expect("values length", [](F& f) { f.values.pop_back(); });
  expect("filter_order duplicate", [](F& f) { f.filter_order[0] = f.filter_order[1]; });
  expect("filter_order range", [](F& f) { f.filter_order[0] = 6; });
}

// Packed BCR's N tile and K chunk follow the core's L2 (Y panel in half of it, X chunk in
// min(256 KiB, half)) and give each thread whole tiles of equal width.
void test_bcr_panel_layout() {
  namespace sd = grimsim::sparse_detail;
  constexpr i64 kKiB = 1024;
  // 512 KiB (Zen 3): the layout tuned there, 30 vectors (16 lanes) and chunks of 136 columns
  sd::PanelLayout a = sd::bcr_panel_layout(128, 1152, 49, 1, 16, 512 * kKiB);
  EXPECT(a.nt == 30 && a.kc == 136, "512 KiB: nt=%lld kc=%lld", static_cast<long long>(a.nt),
         static_cast<long long>(a.kc));
  // 2 MiB: Y's 128 rows x 126 vectors fill half of it; X chunks stay at 256 KiB, sized by
  // the 49 vectors N really has
  sd::PanelLayout b = sd::bcr_panel_layout(128, 1152, 49, 1, 16, 2048 * kKiB);
  EXPECT(b.nt == 126 && b.kc == 83, "2 MiB: nt=%lld kc=%lld", static_cast<long long>(b.nt),
         static_cast<long long>(b.kc));
  EXPECT(b.nt * 128 * 16 * 4 <= 1024 * kKiB, "Y panel over half of L2");
  // K within one chunk: W is not visited in chunks
  EXPECT(sd::bcr_panel_layout(128, 32, 49, 1, 16, 2048 * kKiB).kc == 0, "short K chunked");
  // 400 vectors on 2 threads: three tiles of 126 become four of 100
  EXPECT(sd::bcr_panel_layout(128, 1152, 400, 2, 16, 2048 * kKiB).nt == 100, "uneven tiles");
  // 196 vectors on 2 threads: two tiles (126 + 70), one a thread, become four of 49
  EXPECT(sd::bcr_panel_layout(128, 1152, 196, 2, 16, 2048 * kKiB).nt == 49, "one a thread");
  // ... unless the four would be under 24 vectors: 90 vectors stay two tiles of 45
  EXPECT(sd::bcr_panel_layout(256, 1152, 90, 2, 16, 2048 * kKiB).nt == 45, "narrow tiles");
  // one tile for 2 threads stays whole (the threads split its rows instead)
  EXPECT(sd::bcr_panel_layout(128, 1152, 49, 2, 16, 2048 * kKiB).nt == 126, "tile split");
  // one tile over rows too few for 2 threads to share (48: three bands): two tiles a thread
  EXPECT(sd::bcr_panel_layout(48, 144, 150, 2, 16, 1024 * kKiB).nt == 38, "few rows");
  // ... unless the tiles would be under 24 vectors, or on one thread
  EXPECT(sd::bcr_panel_layout(48, 144, 90, 2, 16, 1024 * kKiB).nt == 168, "few rows, narrow");
  EXPECT(sd::bcr_panel_layout(48, 144, 150, 1, 16, 1024 * kKiB).nt == 168, "one thread");
  // a tiny or unknown L2 still gives the minimum tile
  EXPECT(sd::bcr_panel_layout(100000, 1152, 49, 1, 4, 0).nt == 6, "minimum tile");
}

// The row kernels prefetch the next tile's X rows only when X is out of cache (over 8 L2s),
// with the same tiles either way; packed BCR always may.
void test_row_kernel_layout() {
  namespace sd = grimsim::sparse_detail;
  constexpr i64 kMiB = 1024 * 1024;
  // 576 x 12544 floats (28.9 MB) against a 1 MiB L2: prefetched
  const sd::PanelLayout big = sd::row_kernel_layout(576, 12544, 16, kMiB);
  EXPECT(big.prefetch_next, "X of 29 MB not prefetched");
  EXPECT(big.nt == sd::panel_layout(576, 16).nt && big.kc == 0, "tiles changed");
  // 147 x 12544 (7.4 MB): in cache, not prefetched; the same X on a 512 KiB L2 is
  EXPECT(!sd::row_kernel_layout(147, 12544, 16, kMiB).prefetch_next, "X of 7.4 MB prefetched");
  EXPECT(sd::row_kernel_layout(147, 12544, 16, kMiB / 2).prefetch_next, "512 KiB L2");
  EXPECT(sd::bcr_panel_layout(128, 576, 784, 1, 16, kMiB).prefetch_next, "BCR not prefetched");
}

void test_balanced_bounds() {
  using grimsim::sparse_detail::balanced_bounds;
  using V = std::vector<i64>;
  // two units, the second a little heavier: one each (cutting past the half gave both to
  // the first part, and 2 threads ran no faster than 1)
  EXPECT((balanced_bounds(V{0, 48, 100}, 2) == V{0, 1, 2}), "two units, second heavier");
  EXPECT((balanced_bounds(V{0, 52, 100}, 2) == V{0, 1, 2}), "two units, first heavier");
  // four units in two parts: the cut nearest the half, not the first past it
  EXPECT((balanced_bounds(V{0, 24, 49, 75, 100}, 2) == V{0, 2, 4}), "four units");
  // one heavy unit: the light ones beside it make the other part
  EXPECT((balanced_bounds(V{0, 10, 100}, 2) == V{0, 1, 2}), "one heavy unit");
  // equal units cut evenly; no work cuts by count; parts capped at the units
  EXPECT((balanced_bounds(V{0, 1, 2, 3, 4, 5, 6}, 3) == V{0, 2, 4, 6}), "equal units");
  EXPECT((balanced_bounds(V{0, 0, 0, 0, 0}, 2) == V{0, 2, 4}), "no work");
  EXPECT((balanced_bounds(V{0, 5, 9}, 4) == V{0, 1, 2}), "more parts than units");
  // bounds always rise from 0 to the unit count
  for (i64 parts = 1; parts <= 6; ++parts) {
    const V b = balanced_bounds(V{0, 3, 3, 50, 51, 90, 91, 200}, parts);
    bool ok = b.front() == 0 && b.back() == 7;
    for (std::size_t i = 1; i < b.size(); ++i) ok = ok && b[i] >= b[i - 1];
    EXPECT(ok, "bounds not monotone for %lld parts", static_cast<long long>(parts));
  }
}

void test_spread_order() {
  using grimsim::spread_order;
  // 8 tiles on 2 threads: the two halves in turn, so the first two tasks are far apart
  const std::vector<i64> two = spread_order(8, 2);
  EXPECT((two == std::vector<i64>{0, 4, 1, 5, 2, 6, 3, 7}), "8 tiles, 2 threads");
  // every tile exactly once, for uneven splits and for more threads than tiles
  for (i64 n_tiles = 1; n_tiles <= 13; ++n_tiles)
    for (i64 team = 1; team <= 5; ++team) {
      std::vector<i64> order = spread_order(n_tiles, team);
      std::vector<int> seen(static_cast<std::size_t>(n_tiles), 0);
      bool ok = static_cast<i64>(order.size()) == n_tiles;
      for (i64 t : order)
        ok = ok && t >= 0 && t < n_tiles && ++seen[static_cast<std::size_t>(t)] == 1;
      EXPECT(ok, "spread_order(%lld, %lld) is not a permutation", static_cast<long long>(n_tiles),
             static_cast<long long>(team));
    }
  // one thread: in order
  EXPECT((spread_order(4, 1) == std::vector<i64>{0, 1, 2, 3}), "one thread");
}

}  // namespace

int main() {
  for (const std::string& tier : tiers()) {
    set_tier(tier);
    test_bcr(tier);
    test_csr(tier);
    test_nm(tier);
    test_pattern(tier);
  }
  unsetenv("GRIMSIM_SIMD");
  test_bcr_panel_layout();
  test_row_kernel_layout();
  test_spread_order();
  test_balanced_bounds();
  test_bcr_single_block();
  test_bcr_merge();
  test_bcr_rejections();
  test_csr_rejections();
  test_nm_rejections();
  test_pattern_rejections();
  return testutil::finish("test_sparse");
}
