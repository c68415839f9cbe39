// Per-SIMD-tier entry points of the dense kernels (defined in dense_gemm.simd.cpp,
// winograd.simd.cpp and conv.simd.cpp; called through GRIMSIM_DISPATCH from dense.cpp,
// winograd.cpp and conv.cpp, which own threads and scratch memory).
#pragma once
#include <cstdint>

#include "grimsim/dense.hpp"  // PoolGeometry (plain fields)
#include "grimsim/simd.hpp"

namespace grimsim {

// One GEMM y = A @ x, A packed in MR-row panels (panel stride K * MR) or row-major.
struct GemmJob {
  const float* apack = nullptr;  // A packed in panels, or null: then A is w, read in place
  const float* w = nullptr;      // row-major M x K A (when apack is null)
  const float* x = nullptr;
  std::int64_t ldx = 0;
  // Row p of the product's B is row x_rows[p] of x (null: row p): a column-pruned matrix
  // reads its kept columns' X rows while packing B, with no gathered copy of X.
  const std::int64_t* x_rows = nullptr;
  float* y = nullptr;
  std::int64_t ldy = 0;
  const float* bias = nullptr;  // optional, M floats
  std::int64_t M = 0, K = 0;
  std::int64_t kc = 256, mc = 120;  // cache blocking (KC x NR B micro-panel in L1, MC x KC A in L2)
};

// Register tile of a tier.
struct GemmTile {
  int mr = 0, nr = 0, lanes = 0;
};

GRIMSIM_MV_DECLARE(GemmTile gemm_tile())
// Packs A panels [panel0, panel1) of w (M x K, row-major) into out (panel p at p * K * MR).
GRIMSIM_MV_DECLARE(void gemm_pack_a(const float* w, std::int64_t M, std::int64_t K,
                                    std::int64_t panel0, std::int64_t panel1, float* out))
// y[m0:m1, n0:n1] of a GemmJob; m0 a multiple of MR, n0 of NR. bscratch holds
// kc * round_up(n1 - n0, NR) floats.
GRIMSIM_MV_DECLARE(void gemm_compute(const GemmJob& job, std::int64_t m0, std::int64_t m1,
                                     std::int64_t n0, std::int64_t n1, float* bscratch))
// y[r] = W[r, :] . x (+ bias[r]) for the rows of A panels [panel0, panel1) (packed as by
// gemm_pack_a); xe holds x expanded to the panel layout (xe[k * MR + r] = x[k], K * MR floats).
GRIMSIM_MV_DECLARE(void gemv_packed(const float* apack, std::int64_t M, std::int64_t K,
                                    const float* xe, const float* bias, float* y,
                                    std::int64_t panel0, std::int64_t panel1))
// y[r] = w[r, :] . x (+ bias[r]) for rows [r0, r1) of a row-major M x K matrix.
GRIMSIM_MV_DECLARE(void gemv_rows(const float* w, std::int64_t K, const float* x,
                                  const float* bias, float* y, std::int64_t r0, std::int64_t r1))

}  // namespace grimsim

namespace grimsim {

// Winograd F(m,3), m = 4 (6x6 input tiles, 36 points) or 2 (4x4 tiles, 16 points).
constexpr int kWinoMaxPoints = 36;

struct WinogradJob {
  int out_tile = 4;              // m
  const float* upack = nullptr;  // [(m+2)^2][mpanels][cin][MR] transformed, packed weights
  const float* input = nullptr;  // zero-padded input [cin][hp][wp], tile (ty, tx) at (m ty, m tx)
  std::int64_t cin = 0, cout = 0, hp = 0, wp = 0;
  std::int64_t tiles_w = 0, tiles = 0;  // tiles per row, in all
  std::int64_t out_h = 0, out_w = 0;
  float* output = nullptr;  // [cout][out_h][out_w]
  const float* bias = nullptr;
  std::int64_t kc = 256;  // blocking of cin for the GEMMs
};

// Transforms the 3x3 kernels of output channels [co0, co1) of weight[cout][cin][3][3] and
// stores them in panels ([(m+2)^2][ceil(cout / MR)][cin][MR], zeroed beforehand).
GRIMSIM_MV_DECLARE(void winograd_pack(const float* weight, std::int64_t cout, std::int64_t cin,
                                      int out_tile, std::int64_t co0, std::int64_t co1,
                                      float* panels))
// Scratch floats a tier needs per thread: the transformed input of one tile panel and the
// GEMM results of one (MR x NR) output block for all points (sized for m = 4).
GRIMSIM_MV_DECLARE(std::int64_t winograd_vbuf_floats(std::int64_t cin))
GRIMSIM_MV_DECLARE(std::int64_t winograd_mbuf_floats())
// Tiles [panel * NR, panel * NR + NR) for output-channel panels [cp0, cp1).
GRIMSIM_MV_DECLARE(void winograd_panel(const WinogradJob& job, std::int64_t panel,
                                       std::int64_t cp0, std::int64_t cp1, float* vbuf,
                                       float* mbuf))

}  // namespace grimsim

namespace grimsim {

// Depthwise convolution of one channel plane (geometry as ConvGeometry, one channel).
// The plane is first copied into stride_w "phase" planes (phase q holds the padded columns
// q, q + stride_w, ...: phase_rows x phase_cols each; their zero padding is the caller's, who
// writes it once for all channels), so every tap of every output vector is one contiguous load; tap_offset[t] (kernel_h * kernel_w entries) is where
// tap t of output (0, 0) reads in that scratch (stride_w * phase_rows * phase_cols floats).
struct DepthwiseJob {
  std::int64_t height = 0, width = 0, out_h = 0, out_w = 0;
  std::int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  std::int64_t phase_rows = 0, phase_cols = 0;
  const std::int64_t* tap_offset = nullptr;
};
GRIMSIM_MV_DECLARE(void depthwise_plane(const DepthwiseJob& job, const float* in,
                                        const float* kernel, float bias, float* out,
                                        float* scratch))

// dst[i] = src[2 * i] for i < n: the stride-2 row copy of im2col and of the depthwise phase
// planes, vectorised (two loads, a permute, one store a vector); reads src[0 .. 2n - 2] only.
GRIMSIM_MV_DECLARE(void copy_stride2(const float* src, float* dst, std::int64_t n))
// dst[i] = src[i] for i < n in whole vectors, the last one ending at n (a masked copy under
// a vector): the stride-1 row copy of im2col and of the depthwise phase planes.
GRIMSIM_MV_DECLARE(void copy_row(const float* src, float* dst, std::int64_t n))

// Pooling of `planes` consecutive channel planes (the geometry's channels are ignored);
// rowbuf holds pool_scratch_floats(g) floats. (The helpers are static: each translation unit,
// of every SIMD tier, keeps its own copy.)
static inline std::int64_t pool_span(const PoolGeometry& g) {
  return (g.out_w - 1) * g.stride_w + g.kernel_w;  // padded columns the windows cover
}
static inline std::int64_t pool_padded_width(const PoolGeometry& g) {
  const std::int64_t span = pool_span(g), w = g.pad_left + g.width;
  return span > w ? span : w;
}
static inline std::int64_t pool_padded_height(const PoolGeometry& g) {
  const std::int64_t rows = (g.out_h - 1) * g.stride_h + g.kernel_h, h = g.pad_top + g.height;
  return rows > h ? rows : h;
}
static inline std::int64_t pool_scratch_floats(const PoolGeometry& g) {
  // the row path: the padded row and the window row; stride 1: the padded plane
  const std::int64_t rows = pool_padded_width(g) + pool_span(g);
  const std::int64_t plane = pool_padded_width(g) * pool_padded_height(g);
  return g.stride_h == 1 && g.stride_w == 1 && plane > rows ? plane : rows;
}
GRIMSIM_MV_DECLARE(void pool_planes(const PoolGeometry& g, bool is_max, const float* in,
                                    float* out, std::int64_t planes, float* rowbuf))

}  // namespace grimsim

namespace grimsim {
// y[M x N] = w[M x K] @ x[K x N] (+ bias[M] per row), all row-major and contiguous, arguments
// already validated: packs w, splits over threads, GEMV for N == 1 (dense.cpp).
void gemm_rowmajor(const float* w, const float* x, float* y, std::int64_t M, std::int64_t K,
                   std::int64_t N, const float* bias, int threads);
// Cache blocking from this machine's L1/L2 sizes: KC for a tile NR wide, MC for MR-row panels.
std::int64_t gemm_block_k(int nr);
std::int64_t gemm_block_m(int mr, std::int64_t kc);
}  // namespace grimsim
