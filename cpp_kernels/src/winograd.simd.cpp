// Winograd F(m,3) inner parts for one SIMD tier, m = 4 (6x6 tiles, 36 points) or m = 2
// (4x4 tiles, 16 points, for small maps): input transform of a panel of NR tiles (vectorised
// across tiles), the transformed-domain GEMMs with the GEMM micro-kernel, output transform.
// Transform matrices: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"
// (CVPR 2016), F(2x2, 3x3) and F(4x4, 3x3) with interpolation points 0, +-1, +-2.
#include "dense_kernels.hpp"
#include "gemm_ukernel.hpp"
#include "grimsim/simd.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

using gemm::kMR;
using gemm::kNR;
using gemm::kNV;
using simd::vf;

using simd::imin;

namespace {

// Floats between the B panels of consecutive points in vbuf: one cache line more than the
// panel, so the stores of a transformed tile do not all map to one L1 set (cin * NR * 4
// bytes is a multiple of 4 KiB for cin = 64, 128, ...).
inline std::int64_t vbuf_stride(std::int64_t cin) { return cin * kNR + 16; }

// G of F(4x4, 3x3) and F(2x2, 3x3): U = G g G^T maps a 3x3 kernel to the (m+2)^2 points.
constexpr double kG4[6][3] = {
    {1.0 / 4, 0.0, 0.0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0.0, 0.0, 1.0},
};
constexpr double kG2[4][3] = {
    {1.0, 0.0, 0.0},
    {0.5, 0.5, 0.5},
    {0.5, -0.5, 0.5},
    {0.0, 0.0, 1.0},
};

// u[(m+2)^2] = G g G^T for one 3x3 kernel g (in double: the weights are transformed once).
void transform_kernel(const float* g, int m, float* u) {
  const int n = m + 2;
  const double(*G)[3] = m == 4 ? kG4 : kG2;
  double t[6][3];
  for (int i = 0; i < n; ++i)
    for (int b = 0; b < 3; ++b) {
      double s = 0.0;
      for (int a = 0; a < 3; ++a) s += G[i][a] * g[a * 3 + b];
      t[i][b] = s;
    }
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0.0;
      for (int b = 0; b < 3; ++b) s += t[i][b] * G[j][b];
      u[i * n + j] = static_cast<float>(s);
    }
}

template <int M>
struct Wino;

// F(4,3): B^T (6x6) and A^T (4x6).
template <>
struct Wino<4> {
  static constexpr int kTile = 6;
  GRIMSIM_INLINE static void bt(const vf* d, vf* r) {
    const vf four = simd::set1(4.0f), five = simd::set1(5.0f), two = simd::set1(2.0f);
    r[0] = four * d[0] - five * d[2] + d[4];
    r[1] = d[3] + d[4] - four * (d[1] + d[2]);
    r[2] = four * (d[1] - d[2]) + d[4] - d[3];
    r[3] = two * (d[3] - d[1]) + d[4] - d[2];
    r[4] = two * (d[1] - d[3]) + d[4] - d[2];
    r[5] = four * d[1] - five * d[3] + d[5];
  }
  GRIMSIM_INLINE static void at(const vf* m, vf* o) {
    const vf two = simd::set1(2.0f), four = simd::set1(4.0f), eight = simd::set1(8.0f);
    const vf s12 = m[1] + m[2], d12 = m[1] - m[2];
    const vf s34 = m[3] + m[4], d34 = m[3] - m[4];
    o[0] = m[0] + s12 + s34;
    o[1] = d12 + two * d34;
    o[2] = s12 + four * s34;
    o[3] = d12 + eight * d34 + m[5];
  }
};

// F(2,3): B^T (4x4) and A^T (2x4).
template <>
struct Wino<2> {
  static constexpr int kTile = 4;
  GRIMSIM_INLINE static void bt(const vf* d, vf* r) {
    r[0] = d[0] - d[2];
    r[1] = d[1] + d[2];
    r[2] = d[2] - d[1];
    r[3] = d[1] - d[3];
  }
  GRIMSIM_INLINE static void at(const vf* m, vf* o) {
    o[0] = m[0] + m[1] + m[2];
    o[1] = m[1] - m[2] - m[3];
  }
};

// Transforms the input of tiles [t0, t0 + NR) (all channels) into vbuf laid out as B panels:
// vbuf[xi * vbuf_stride(cin) + c * NR + lane], xi = T * i + j the transformed point.
template <int M>
void input_transform(const WinogradJob& job, std::int64_t t0, float* vbuf) {
  constexpr int T = Wino<M>::kTile;
  const int lanes = static_cast<int>(imin(kNR, job.tiles - t0));
  // Offsets of each tile's top-left corner in a padded channel plane (spare lanes repeat
  // the first tile: valid reads, results dropped).
  std::int64_t origin[kNR];
  for (int l = 0; l < kNR; ++l) {
    const std::int64_t t = t0 + (l < lanes ? l : 0);
    origin[l] = (t / job.tiles_w) * M * job.wp + (t % job.tiles_w) * M;
  }
  alignas(64) float patch[T * T * kNR];
  const std::int64_t plane = job.hp * job.wp;
  const std::int64_t vstride = vbuf_stride(job.cin);
  for (std::int64_t c = 0; c < job.cin; ++c) {
    const float* src = job.input + c * plane;
    for (int l = 0; l < kNR; ++l) {
      const float* p = src + origin[l];
      for (int i = 0; i < T; ++i)
        for (int j = 0; j < T; ++j) patch[(i * T + j) * kNR + l] = p[i * job.wp + j];
    }
    for (int v = 0; v < kNV; ++v) {
      vf d[T], r[T], tmp[T * T];
      // Columns: tmp = B^T d.
      for (int j = 0; j < T; ++j) {
        for (int i = 0; i < T; ++i) d[i] = simd::load(patch + (i * T + j) * kNR + v * simd::kLanes);
        Wino<M>::bt(d, r);
        for (int i = 0; i < T; ++i) tmp[i * T + j] = r[i];
      }
      // Rows: V = tmp B.
      for (int i = 0; i < T; ++i) {
        for (int j = 0; j < T; ++j) d[j] = tmp[i * T + j];
        Wino<M>::bt(d, r);
        for (int j = 0; j < T; ++j)
          simd::store(vbuf + (i * T + j) * vstride + c * kNR + v * simd::kLanes, r[j]);
      }
    }
  }
}

// Output transform of one MR x NR block: mbuf[(xi * MR + r) * NR + lane] -> output (+ bias).
template <int M>
void output_transform(const WinogradJob& job, std::int64_t t0, std::int64_t co0, int rows,
                      const float* mbuf) {
  constexpr int T = Wino<M>::kTile;
  const int lanes = static_cast<int>(imin(kNR, job.tiles - t0));
  alignas(64) float out[M * M * kNR];
  for (int r = 0; r < rows; ++r) {
    const std::int64_t co = co0 + r;
    const vf bv = simd::set1(job.bias != nullptr ? job.bias[co] : 0.0f);
    for (int v = 0; v < kNV; ++v) {
      vf m[T], o[M], tmp[M * T];
      for (int j = 0; j < T; ++j) {
        for (int i = 0; i < T; ++i)
          m[i] = simd::load(mbuf + ((i * T + j) * kMR + r) * kNR + v * simd::kLanes);
        Wino<M>::at(m, o);
        for (int i = 0; i < M; ++i) tmp[i * T + j] = o[i];
      }
      for (int i = 0; i < M; ++i) {
        for (int j = 0; j < T; ++j) m[j] = tmp[i * T + j];
        Wino<M>::at(m, o);
        for (int j = 0; j < M; ++j)
          simd::store(out + (i * M + j) * kNR + v * simd::kLanes, o[j] + bv);
      }
    }
    float* dst = job.output + co * job.out_h * job.out_w;
    for (int l = 0; l < lanes; ++l) {
      const std::int64_t t = t0 + l;
      const std::int64_t oy = (t / job.tiles_w) * M, ox = (t % job.tiles_w) * M;
      const int ni = static_cast<int>(imin(M, job.out_h - oy));
      const int nj = static_cast<int>(imin(M, job.out_w - ox));
      for (int i = 0; i < ni; ++i)
        for (int j = 0; j < nj; ++j)
          dst[(oy + i) * job.out_w + ox + j] = out[(i * M + j) * kNR + l];
    }
  }
}

template <int M>
void panel(const WinogradJob& job, std::int64_t pnl, std::int64_t cp0, std::int64_t cp1,
           float* vbuf, float* mbuf) {
  constexpr int kPoints = Wino<M>::kTile * Wino<M>::kTile;
  const std::int64_t t0 = pnl * kNR;
  input_transform<M>(job, t0, vbuf);
  const std::int64_t mpanels = (job.cout + kMR - 1) / kMR;
  const std::int64_t cin = job.cin;
  for (std::int64_t cp = cp0; cp < cp1; ++cp) {
    for (int xi = 0; xi < kPoints; ++xi) {
      const float* a = job.upack + (xi * mpanels + cp) * cin * kMR;
      const float* b = vbuf + xi * vbuf_stride(cin);
      float* c = mbuf + xi * kMR * kNR;
      for (std::int64_t pc = 0; pc < cin; pc += job.kc) {
        const std::int64_t kb = imin(job.kc, cin - pc);
        gemm::tile(kb, gemm::panel_at(a + pc * kMR), b + pc * kNR, c, kNR, kMR, kNR, pc > 0);
      }
    }
    const int rows = static_cast<int>(imin(kMR, job.cout - cp * kMR));
    output_transform<M>(job, t0, cp * kMR, rows, mbuf);
  }
}

}  // namespace

void winograd_pack(const float* weight, std::int64_t cout, std::int64_t cin, int out_tile,
                   std::int64_t co0, std::int64_t co1, float* panels) {
  const int points = (out_tile + 2) * (out_tile + 2);
  const std::int64_t mpanels = (cout + kMR - 1) / kMR;
  float u[kWinoMaxPoints];
  for (std::int64_t co = co0; co < co1; ++co) {
    const std::int64_t pnl = co / kMR, r = co % kMR;
    for (std::int64_t ci = 0; ci < cin; ++ci) {
      transform_kernel(weight + (co * cin + ci) * 9, out_tile, u);
      for (int xi = 0; xi < points; ++xi)
        panels[((xi * mpanels + pnl) * cin + ci) * kMR + r] = u[xi];
    }
  }
}

std::int64_t winograd_vbuf_floats(std::int64_t cin) { return kWinoMaxPoints * vbuf_stride(cin); }
std::int64_t winograd_mbuf_floats() { return kWinoMaxPoints * kMR * kNR; }

void winograd_panel(const WinogradJob& job, std::int64_t pnl, std::int64_t cp0,
                    std::int64_t cp1, float* vbuf, float* mbuf) {
  if (job.out_tile == 2)
    panel<2>(job, pnl, cp0, cp1, vbuf, mbuf);
  else
    panel<4>(job, pnl, cp0, cp1, vbuf, mbuf);
}

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
