// Dense GEMM driver: validation, cache blocking, threads, scratch (the SIMD inner parts are
// in dense_gemm.simd.cpp).
#include <algorithm>
#include <string>
#include <vector>

#include "cache_sizes.hpp"
#include "dense_kernels.hpp"
#include "grimsim/dense.hpp"
#include "grimsim/parallel.hpp"

namespace grimsim {

void dense_gemm_reference(const float* w, const float* x, float* y, std::int64_t M,
                          std::int64_t K, std::int64_t N) {
  if (M < 0 || K < 0 || N < 0) throw InvalidArgument("negative GEMM dimension");
  std::fill(y, y + M * N, 0.0f);
  for (std::int64_t i = 0; i < M; ++i) {
    float* yrow = y + i * N;
    for (std::int64_t k = 0; k < K; ++k) {
      const float a = w[i * K + k];
      const float* xrow = x + k * N;
      for (std::int64_t j = 0; j < N; ++j) yrow[j] += a * xrow[j];
    }
  }
}

namespace {

void set_blocking(GemmJob& job, const GemmTile& t) {
  job.kc = gemm_block_k(t.nr);
  job.mc = gemm_block_m(t.mr, job.kc);
}

// Up to this many NR-column panels, the micro-kernel reads w in place: packing w (a pass
// over M x K) would be used by too few panels to pay for itself.
constexpr std::int64_t kReadAInPlaceMaxPanels = 8;

// W rows a multiple of 4 KiB apart all fall in one set of a 4 KiB-per-way L1 (32 KiB, 8
// ways), so the micro-kernel's MR rows read in place (12-14 on AVX-512) evict one another:
// then W is packed whatever N. Measured on Zen 4 (2026-11-28, one thread): 256 x K x 196 ran
// at 101 GFLOP/s for K = 256-768 and 70 for K = 1024 and 2048; 512 x 2048 x 49 at 61.
inline bool reads_alias(std::int64_t K) { return K >= 1024 && K % 1024 == 0; }

// Columns of one task at most: its packed B block (KC x NC) stays well inside L2 + L3 share.
constexpr std::int64_t kMaxTaskCols = 256;

void check_gemm_args(const void* w, const void* x, const void* y, std::int64_t M,
                     std::int64_t K, std::int64_t N, int threads) {
  check(M >= 0 && K >= 0 && N >= 0, "GEMM dimensions must be >= 0, got M=" +
                                        std::to_string(M) + " K=" + std::to_string(K) +
                                        " N=" + std::to_string(N));
  check_threads(threads);
  check(M * K == 0 || w != nullptr, "w is null");
  check(K * N == 0 || x != nullptr, "x is null");
  check(M * N == 0 || y != nullptr, "y is null");
}

SimdLevel dispatch_level() { return simd_runtime_level(); }

GemmTile tile_at(SimdLevel level) { return GRIMSIM_DISPATCH_AT(level, gemm_tile); }

// Runs job over all of y[M x N] with `threads` threads at SIMD tier `level`.
void run_gemm(SimdLevel level, GemmJob job, std::int64_t N, int threads) {
  const GemmTile t = tile_at(level);
  set_blocking(job, t);
  const std::int64_t M = job.M;
  const std::int64_t panels = (N + t.nr - 1) / t.nr;
  const std::int64_t mpanels = (M + t.mr - 1) / t.mr;
  const std::int64_t max_chunk_panels = std::max<std::int64_t>(1, kMaxTaskCols / t.nr);
  // Split N first (B is packed once per task, so no duplicated work); a multiple of the
  // thread count keeps the threads balanced. Split M too only when N is too narrow.
  std::int64_t n_chunks = (panels + max_chunk_panels - 1) / max_chunk_panels;
  if (threads > 1) {
    n_chunks = std::max<std::int64_t>(n_chunks, std::min<std::int64_t>(panels, threads));
    if (panels >= threads) n_chunks = (n_chunks + threads - 1) / threads * threads;
  }
  n_chunks = std::min(n_chunks, panels);
  std::int64_t m_chunks = 1;
  if (n_chunks < threads)
    m_chunks = std::min<std::int64_t>(mpanels, (threads + n_chunks - 1) / n_chunks);
  if (threads > 1 && m_chunks == 1 && mpanels >= 4 * threads) {
    // Whole panels per thread can be uneven (N = 196 is 13 panels of 16; N = 49 ends in a
    // 1-column panel): then split M instead, each thread packing all of B (cheap when N is
    // small, which is when this happens). Work in half panels: a narrow one costs about half.
    const std::int64_t rest = N % t.nr;
    const std::int64_t half_units = 2 * (N / t.nr) + (rest == 0 ? 0 : rest <= t.lanes ? 1 : 2);
    // Panels of the biggest chunk.
    const std::int64_t per_chunk = (panels + n_chunks - 1) / n_chunks;
    const std::int64_t chunks_per_thread = (n_chunks + threads - 1) / threads;
    const double worst = static_cast<double>(2 * per_chunk * chunks_per_thread);
    const double fair = static_cast<double>(half_units) / threads;
    if (worst > 1.1 * fair) {
      n_chunks = (panels + max_chunk_panels - 1) / max_chunk_panels;
      m_chunks = threads;
    }
  }
  const std::int64_t chunk_panels = (panels + n_chunks - 1) / n_chunks;
  const int team = static_cast<int>(std::min<std::int64_t>(threads, n_chunks * m_chunks));
  std::vector<AlignedArray<float>> scratch;
  scratch.reserve(static_cast<std::size_t>(team));
  for (int i = 0; i < team; ++i)
    scratch.emplace_back(static_cast<std::size_t>(job.kc * chunk_panels * t.nr));
  parallel_for(n_chunks * m_chunks, team, [&](std::int64_t task, int thread) {
    const std::int64_t nc = task % n_chunks, mcn = task / n_chunks;
    const std::int64_t p0 = panels * nc / n_chunks, p1 = panels * (nc + 1) / n_chunks;
    const std::int64_t q0 = mpanels * mcn / m_chunks, q1 = mpanels * (mcn + 1) / m_chunks;
    const std::int64_t n0 = p0 * t.nr, n1 = std::min(N, p1 * t.nr);
    const std::int64_t m0 = q0 * t.mr, m1 = std::min(M, q1 * t.mr);
    if (n0 >= n1 || m0 >= m1) return;
    GRIMSIM_DISPATCH_AT(level, gemm_compute, job, m0, m1, n0, n1,
                        scratch[static_cast<std::size_t>(thread)].data());
  });
}

void pack_panels(SimdLevel level, const float* w, std::int64_t M, std::int64_t K, int mr,
                 float* out, int threads) {
  const std::int64_t mpanels = (M + mr - 1) / mr;
  // Tasks of ~64k floats so the team is worth waking up.
  const std::int64_t per_task =
      std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(1, K * mr));
  const std::int64_t tasks = (mpanels + per_task - 1) / per_task;
  parallel_for(tasks, threads, [&](std::int64_t task) {
    const std::int64_t p0 = task * per_task, p1 = std::min(mpanels, p0 + per_task);
    GRIMSIM_DISPATCH_AT(level, gemm_pack_a, w, M, K, p0, p1, out);
  });
}

void gemv(SimdLevel level, const float* w, const float* x, const float* bias, float* y,
          std::int64_t M, std::int64_t K, int threads) {
  // Row blocks of ~128 KiB of w per task.
  const std::int64_t rows =
      std::max<std::int64_t>(4, (32768 / std::max<std::int64_t>(1, K)) / 4 * 4);
  const std::int64_t tasks = (M + rows - 1) / rows;
  parallel_for(tasks, threads, [&](std::int64_t task) {
    const std::int64_t r0 = task * rows, r1 = std::min(M, r0 + rows);
    GRIMSIM_DISPATCH_AT(level, gemv_rows, w, K, x, bias, y, r0, r1);
  });
}

}  // namespace

// KC: a KC x NR B micro-panel takes half of L1 (A and C lines use the rest).
std::int64_t gemm_block_k(int nr) {
  return std::clamp<std::int64_t>(cache_sizes().l1 / (2 * 4 * nr) / 8 * 8, 64, 512);
}

// MC: an MC x KC A block takes half of L2.
std::int64_t gemm_block_m(int mr, std::int64_t kc) {
  return std::max<std::int64_t>(mr, cache_sizes().l2 / (2 * 4 * kc) / mr * mr);
}

void gemm_rowmajor(const float* w, const float* x, float* y, std::int64_t M, std::int64_t K,
                   std::int64_t N, const float* bias, int threads) {
  if (M == 0 || N == 0) return;
  const SimdLevel level = dispatch_level();
  if (N == 1) {
    gemv(level, w, x, bias, y, M, K, threads);
    return;
  }
  const GemmTile t = tile_at(level);
  GemmJob job;
  AlignedArray<float> apack;
  if (N > kReadAInPlaceMaxPanels * t.nr || reads_alias(K)) {
    const std::int64_t mpanels = (M + t.mr - 1) / t.mr;
    apack = AlignedArray<float>(
        static_cast<std::size_t>(std::max<std::int64_t>(1, mpanels * K * t.mr)));
    pack_panels(level, w, M, K, t.mr, apack.data(), threads);
    job.apack = apack.data();
  } else {
    job.w = w;
  }
  job.x = x;
  job.ldx = N;
  job.y = y;
  job.ldy = N;
  job.bias = bias;
  job.M = M;
  job.K = K;
  run_gemm(level, job, N, threads);
}

void dense_gemm(const float* w, const float* x, float* y, std::int64_t M, std::int64_t K,
                std::int64_t N, int threads) {
  check_gemm_args(w, x, y, M, K, N, threads);
  gemm_rowmajor(w, x, y, M, K, N, nullptr, threads);
}

PackedGemmWeights pack_gemm_weights(const float* w, std::int64_t M, std::int64_t K,
                                    int threads) {
  check_gemm_args(w, w, w, M, K, 0, threads);
  PackedGemmWeights p;
  p.M = M;
  p.K = K;
  p.level = dispatch_level();
  const GemmTile t = tile_at(p.level);
  p.mr = t.mr;
  const std::int64_t mpanels = (M + t.mr - 1) / t.mr;
  p.panels = AlignedArray<float>(
      static_cast<std::size_t>(std::max<std::int64_t>(1, mpanels * K * t.mr)));
  pack_panels(p.level, w, M, K, t.mr, p.panels.data(), threads);
  return p;
}

void dense_gemm_packed(const PackedGemmWeights& w, const float* x, float* y, std::int64_t N,
                       int threads, const float* bias, const std::int64_t* x_rows) {
  check_gemm_args(w.panels.data(), x, y, w.M, w.K, N, threads);
  check(w.mr == tile_at(w.level).mr, "packed weights do not match this build's tile");
  if (w.M == 0 || N == 0) return;
  if (N == 1) {
    // x expanded to the panel layout once, then a streaming pass over the panels.
    std::vector<float> xe(static_cast<std::size_t>(w.K * w.mr));
    for (std::int64_t k = 0; k < w.K; ++k)
      std::fill_n(xe.begin() + k * w.mr, w.mr, x[x_rows != nullptr ? x_rows[k] : k]);
    const std::int64_t mpanels = (w.M + w.mr - 1) / w.mr;
    // ~128 KiB of panels per task.
    const std::int64_t per_task =
        std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(1, w.K * w.mr));
    const std::int64_t tasks = (mpanels + per_task - 1) / per_task;
    parallel_for(tasks, threads, [&](std::int64_t task) {
      const std::int64_t p0 = task * per_task, p1 = std::min(mpanels, p0 + per_task);
      GRIMSIM_DISPATCH_AT(w.level, gemv_packed, w.panels.data(), w.M, w.K, xe.data(), bias, y,
                          p0, p1);
    });
    return;
  }
  GemmJob job;
  job.apack = w.panels.data();
  job.x = x;
  job.ldx = N;
  job.x_rows = x_rows;
  job.y = y;
  job.ldy = N;
  job.bias = bias;
  job.M = w.M;
  job.K = w.K;
  run_gemm(w.level, job, N, threads);
}

}  // namespace grimsim
