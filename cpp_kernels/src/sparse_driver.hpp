// Internal: how the sparse kernels split Y = W X into tasks (baseline translation units only;
// the SIMD inner loops are in *.simd.cpp).
//
// Rows are grouped into "units" (a band of at most 64 rows of a block row for raw BCR, 16 for
// packed BCR, one row for CSR/N:M/pattern); unit u covers rows [row_start(u), row_start(u+1)).
// Consecutive units form chunks of about equal work (multiply-adds), and N is cut into tiles
// of whole SIMD vectors whose X panel (K x tile) fits in L2 next to the weights, so every
// unit's pass reuses X from L2. Full tiles read X and write Y in place; the one tile holding
// N's ragged end goes through zero-padded copies of X and Y, so the inner loops need no
// masked loads, unless the kernel has them and computes that end in place
// (PanelLayout::in_place_tail: packed BCR on AVX-512). Tasks are (tile, chunk) pairs,
// tile-major, so the threads work on the same X panel at the same time; tiles go out in
// spread_order (parallel.hpp), so threads on different tiles are not on neighbouring ones:
// two threads on neighbouring tiles of the same Y rows slowed each other down. Zen 4,
// 2026-11-28, 2 threads against 1, best of 3 alternating processes: 256x64x3136 at 16x32
// 75 % 1.12 -> 1.92x (at times the neighbours ran slower than one thread), 96x16x12544
// 1.37 -> 1.96x, 128x256x3136 at 32x32 90 % 1.43 -> 1.94x, CSR at 75 % 1.59-1.74 -> 1.91x;
// shapes of under 4 tiles a thread unchanged (+-2 %).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "grimsim/kernels.hpp"
#include "grimsim/parallel.hpp"
#include "sparse_simd.hpp"

namespace grimsim::sparse_detail {

using i64 = std::int64_t;

// Splits units [0, n_units) into `parts` contiguous ranges of about equal work, given the
// prefix sums of the units' work (prefix[0] = 0, size n_units + 1); returns the part bounds.
inline std::vector<i64> balanced_bounds(const std::vector<i64>& prefix, i64 parts) {
  const i64 n_units = static_cast<i64>(prefix.size()) - 1;
  parts = std::max<i64>(1, std::min(parts, n_units));
  std::vector<i64> bounds(static_cast<std::size_t>(parts) + 1, 0);
  bounds[static_cast<std::size_t>(parts)] = n_units;
  const i64 total = prefix.back();
  for (i64 p = 1; p < parts; ++p) {
    // First unit whose prefix reaches the p-th share (equal unit counts if all work is 0).
    const i64 target = total > 0 ? (total * p + parts - 1) / parts : 0;
    i64 u = total > 0 ? static_cast<i64>(std::lower_bound(prefix.begin(), prefix.end(), target) -
                                         prefix.begin())
                      : n_units * p / parts;
    u = std::clamp(u, bounds[static_cast<std::size_t>(p - 1)], n_units);
    // The unit boundary nearer the share, not the first one past it: with few units the
    // first one past it can hand a whole unit's work to this part (two 16-row bands of a
    // 32-row BCR matrix, the second slightly heavier: both went to the first thread, and
    // 2 threads ran no faster than 1; Zen 4, 2026-11-28).
    if (total > 0 && u > bounds[static_cast<std::size_t>(p - 1)] &&
        target - prefix[static_cast<std::size_t>(u - 1)] <
            prefix[static_cast<std::size_t>(u)] - target)
      --u;
    bounds[static_cast<std::size_t>(p)] = u;
  }
  return bounds;
}

// How many N tiles run_panels cuts nv_total vectors into with tiles of nt: nt each, the last
// one taking the rest, a rest under nt / 2 joining the tile before it.
inline i64 panel_tiles(i64 nv_total, i64 nt) {
  return std::max<i64>(1, (nv_total + nt / 2) / nt);
}

// How run_panels cuts the work: vectors per N tile, and columns of W per K chunk (0: W is
// not visited in chunks); in_place_tail: the kernel computes N's ragged end in place
// (Panel::tail), so it needs no zero-padded copies of X and Y.
struct PanelLayout {
  i64 nt, kc;
  bool in_place_tail = false;
  // packed BCR: the last N tile also computes the fold_cols (1-7) columns after its vectors
  // (Panel::fold)
  i64 fold_cols = 0;
  // whether a task prefetches the X rows of the next one when they are short runs (Panel::pf_x)
  bool prefetch_next = true;
};

// The row kernels' layout (CSR, N:M, pattern, raw BCR), no K chunks: vectors per N tile such
// that the X panel of K rows takes about half of a 512 KiB L2 (this machine's Zen 3,
// `lscpu`: 1 MiB L2 over 2 cores; Cortex-A76 class cores have 256-512 KiB), and at most 24
// vectors (the Y rows of a unit stay in L1). At least 6, and a multiple of 6, so the panel
// splits evenly into register tiles of 3 vectors (4-row tiles, 75%-sparse 16x32 BCR blocks)
// and of 2 (5-row tiles, 90%): measured on Zen 3, 6 vectors beat 3 even when the panel then
// spills from L2 (K = 2304, 4608: +20-35% at 90%).
inline PanelLayout panel_layout(i64 k, int lanes) {
  constexpr i64 kPanelBytes = 256 * 1024;
  const i64 per_vector = std::max<i64>(1, k) * lanes * 4;
  const i64 nt = std::clamp<i64>(kPanelBytes / per_vector, 6, 24);
  return {nt - nt % 6, 0};
}

// The layout of the CSR, N:M and pattern kernels: panel_layout, prefetching the next tile's X
// rows only when X (K x N) takes over 8 times the core's L2, beyond what a shared last-level
// cache keeps for it. There the prefetch hides a DRAM latency per few lines: 1 thread, Zen 4
// (1 MiB L2), A/B in alternating processes, 2026-11-28, 128x576 with N = 4704-12544 (X 11-29
// MB): CSR at 90 % 1.1-1.9x faster, N:M 1:8 1.1-1.6x, pattern at 75 % 1.1-1.2x; 2 threads
// 1.1-1.3x. With X in cache its instructions only add work: 64x147x12544 (7.4 MB) CSR at
// 90 % 3-8 % slower, 32x27x12544 4 %.
// (The BCR kernels read each X row for a whole register tile and always prefetch short runs.)
inline PanelLayout row_kernel_layout(i64 k, i64 n, int lanes, i64 l2_bytes) {
  constexpr i64 kPrefetchL2s = 8;
  PanelLayout layout = panel_layout(k, lanes);
  layout.prefetch_next = k * n * 4 > kPrefetchL2s * l2_bytes;
  return layout;
}

// Packed BCR's N tile and K chunk for a core with l2_bytes of L2: the tile as wide as keeps
// Y's panel (all M rows, which one task covers unless N is short) in half of L2 (6 to 192
// vectors, a multiple of 6 as above), and W's columns cut into chunks whose X rows take
// min(256 KiB, L2 / 2). A tile record's fixed work (header, row and X-row set-up, the ramp-up
// and Y update of each register-tile pass) is then spread over many passes, while each
// chunk's X rows still come from L2. Measured on Zen 3 (512 KiB L2; 2026-11-26, fastest of 3
// interleaved runs, 16x32 BCR at 75 %): 128x1152x784 1.14 -> 0.88 ms, 256x2304x196 1.10 ->
// 0.85 ms, 512x4608x49 1.16 -> 1.00 ms against K-sized panels; Y budgets of 128-192 KiB or at
// most 24 vectors were 2-10 % slower. On a Sapphire Rapids VM (2 MiB L2; 2026-11-27, best of
// 8 interleaved rounds, 16x32 BCR) a 1 MiB Y budget against the former fixed 256 KiB:
// 128x1152x784 347 -> 282 us at 90 % (one N tile instead of 30 + 19 vectors), 512x256x784
// 382 -> 275 us, 512x4608x196 1458 -> 1143 us; up to 192 vectors instead of 48: 64x576x3136
// 376 -> 333 us; a larger X budget changed nothing (+-2 %).
inline PanelLayout bcr_panel_layout(i64 rows, i64 k, i64 nv_total, int threads, int lanes,
                                    i64 l2_bytes) {
  const i64 y_bytes = std::max<i64>(l2_bytes / 2, 64 * 1024);
  const i64 x_bytes = std::clamp<i64>(l2_bytes / 2, 64 * 1024, 256 * 1024);
  const i64 per_vector = static_cast<i64>(lanes) * 4;
  i64 nt = std::clamp<i64>(y_bytes / (std::max<i64>(1, rows) * per_vector), 6, 192);
  nt -= nt % 6;
  // Several threads: tiles of equal width, as many as run_panels would cut rounded up to a
  // whole number per thread. Fewer tiles than threads
  // stay that many (the threads then split their rows): N tiles under ~25 vectors cost more in
  // per-tile work than they save (2 threads, 128x1152x784, 16x32 at 75 %: halves of 25 + 24
  // vectors 367 us, rows split 261 us; Sapphire Rapids VM, 2026-11-27).
  // Exactly one tile a thread becomes two a thread while tiles keep 24 vectors: the two
  // threads' tiles are then not side by side on the same Y rows (spread_order), which at
  // times made them no faster than one thread (Zen 4, 2026-11-28, 2 threads against 1 in
  // alternating processes, 16x32 BCR on 64x576x3136: 75 % 0.99-1.93 -> 1.61-1.97x, 90 %
  // 1.44-1.80 -> 1.48-1.90x; 64x256x3136 at 75 % 1.86-1.92 -> 1.94x and up).
  const i64 tiles = panel_tiles(nv_total, nt);
  if (threads > 1 && tiles > 1) {
    i64 even = tiles >= threads ? (tiles + threads - 1) / threads * threads : tiles;
    if (even == threads && (nv_total + 2 * threads - 1) / (2 * threads) >= 24) even *= 2;
    nt = std::max<i64>(6, (nv_total + even - 1) / even);
  } else if (threads > 1 && rows < 2 * kPackedBandRows * threads &&
             nv_total >= 48 * threads) {
    // One tile over too few rows to share (under two bands a thread: a 24-row matrix is a
    // band of 16 rows and one of 8): two tiles a thread, not side by side (as above). 2
    // threads, 16x32 BCR at 75 %, fastest of 5 interleaved rounds (Zen 4, 2026-11-28):
    // 24x144x3136 1.51 -> 1.86x one thread's speed, 48x144x3136 1.49 -> 1.88x; one tile a
    // thread instead made 48-96 x 576 x 784 (tiles of 25 + 24 vectors) 1.9 -> 1.1-1.5x.
    nt = (nv_total + 2 * threads - 1) / (2 * threads);
  }
  // the chunk's X rows as wide as the tile really is (N may be narrower than nt)
  const i64 width = std::max<i64>(1, std::min(nt, nv_total));
  const i64 kc = std::max<i64>(64, x_bytes / (width * per_vector));
  return {nt, kc >= k ? 0 : kc};
}

// Runs kernel(unit0, unit1, panel) over all (N tile, chunk) tasks for n >= lanes; columns
// [0, n) of y (rows x n, row stride ld >= n, as x's) are fully written. N tiles hold
// layout.nt vectors (panel_layout, bcr_panel_layout); layout.kc > 0 visits W in K chunks
// (Panel::kc). `prefix` holds per-unit work prefix sums (may be empty when threads == 1).
// Kernels either accumulate into Y (zeroed here first) or, with `overwrite`, store every row
// of their units; `row_map` (overwrite kernels with one row per unit only; null = identity)
// names the Y row of each unit. `x_row_reads` is how many X rows the kernel loads per N tile
// (one per nonzero for CSR, N:M and pattern; one per kept column of each tile for BCR).
template <class RowStart, class Kernel>
void run_panels(i64 rows, i64 k, i64 n_units, RowStart&& row_start, const std::vector<i64>& prefix,
                const float* x, i64 n, i64 ld, float* y, int threads, int lanes, bool overwrite,
                const std::int32_t* row_map, i64 x_row_reads, PanelLayout layout,
                Kernel&& kernel) {
  const i64 nt = layout.nt, kc = layout.kc;
  const i64 nv_total = (n + lanes - 1) / lanes;
  // Tiles of nt vectors (panel_tiles); the last one takes the rest and holds the ragged end
  // of N, if any.
  const i64 n_tiles = panel_tiles(nv_total, nt);
  std::vector<i64> tile_v0(static_cast<std::size_t>(n_tiles) + 1);
  for (i64 t = 0; t < n_tiles; ++t) tile_v0[static_cast<std::size_t>(t)] = t * nt;
  tile_v0.back() = nv_total;
  const bool ragged = n % lanes != 0 && !layout.in_place_tail;
  const i64 tail = layout.in_place_tail ? n % lanes : 0;
  i64 max_width = 0;
  for (i64 t = 0; t < n_tiles; ++t)
    max_width = std::max(max_width, (tile_v0[static_cast<std::size_t>(t + 1)] -
                                     tile_v0[static_cast<std::size_t>(t)]) * lanes);

  // About 4 tasks per thread for dynamic balance, but one per thread when W is visited in K
  // chunks: every task of a tile reads nearly all of its X rows, so a tile cut into 8 row
  // chunks made each core pull the panel from L3 four times (measured on Zen 3, 2 threads,
  // 16x32 BCR: 256x2304x196 at 75 % 0.48 -> 0.44 ms, 512x4608x49 0.57 -> 0.52 ms).
  const i64 per_thread = kc > 0 ? 1 : 4;
  i64 n_chunks = 1;
  if (threads > 1)
    n_chunks = std::min(n_units,
                        std::max<i64>(1, (per_thread * threads + n_tiles - 1) / n_tiles));
  std::vector<i64> bounds;
  if (n_chunks > 1 && !prefix.empty()) {
    bounds = balanced_bounds(prefix, n_chunks);
  } else {
    bounds.resize(static_cast<std::size_t>(n_chunks) + 1);
    for (i64 c = 0; c <= n_chunks; ++c)
      bounds[static_cast<std::size_t>(c)] = n_units * c / n_chunks;
  }
  n_chunks = static_cast<i64>(bounds.size()) - 1;

  // A panel whose rows lie on more pages than the L1 TLB covers (wide X rows) is copied into
  // a contiguous per-thread buffer first when its rows are loaded often enough per tile
  // (x_row_reads / K >= 32): one TLB miss per X row per tile instead of one per load. Measured
  // on Zen 3 (interleaved A/B, 2026-11-26): CSR at 75 % on 128x1152x784 (32 loads per row)
  // 1.7x faster with the copy; BCR 16x32 (4-8 loads per row, each feeding a whole register
  // tile) 10-30 % slower with it, so BCR stays below the threshold.
  constexpr i64 kTlbReachBytes = 64 * 4096;
  const bool copy_panels =
      n_tiles > 1 && k * ld * 4 > kTlbReachBytes && x_row_reads >= 32 * k;
  const i64 n_tasks = n_tiles * n_chunks;
  const int team = static_cast<int>(std::min<i64>(threads, n_tasks));
  AlignedArray<float> panels(copy_panels ? static_cast<std::size_t>(team * k * max_width) : 0);

  // The ragged tile's zero-padded X copy and Y scratch (rows x width, chunks write their own
  // rows). Each thread copies X for itself on its first task of that tile: one copy made
  // before the parallel region was serial, and the other core then pulled it out of the
  // first one's caches (32x128x729 CSR at 75 %, 2 threads: 25 us against 18 us at N = 720;
  // Zen 4, 2026-11-28).
  const i64 last_v0 = tile_v0[static_cast<std::size_t>(n_tiles - 1)];
  const i64 last_width = (nv_total - last_v0) * lanes;
  const i64 pad_floats = ragged ? k * last_width : 0;
  AlignedArray<float> xpad(static_cast<std::size_t>(team * pad_floats)), ypad;
  std::vector<char> xpad_made(static_cast<std::size_t>(ragged ? team : 0), 0);
  if (ragged) ypad = AlignedArray<float>(static_cast<std::size_t>(rows * last_width));
  auto thread_xpad = [&](int thread) {
    float* dst = xpad.data() + static_cast<i64>(thread) * pad_floats;
    if (!xpad_made[static_cast<std::size_t>(thread)]) {
      const i64 c0 = last_v0 * lanes, cols = n - c0;
      for (i64 r = 0; r < k; ++r) {
        std::memcpy(dst + r * last_width, x + r * ld + c0, sizeof(float) * cols);
        std::fill(dst + r * last_width + cols, dst + (r + 1) * last_width, 0.0f);
      }
      xpad_made[static_cast<std::size_t>(thread)] = 1;
    }
    return dst;
  };

  // The next panel is prefetched in software only when its X rows are short runs. Hardware
  // L2 streamers follow a run once they have seen a few of its lines, so long runs arrive
  // anyway, and there the software prefetches only compete with the kernel's own L2 loads
  // for the core's L1 fill buffers (Intel's take one per line until it arrives). Measured
  // 2026-11-26, 16x32 and 32x32 BCR at 75 %, best of 4 interleaved rounds, 1 thread: on a
  // Sapphire Rapids VM (AVX-512: runs of 64 B per vector) runs of 3 KiB (M = 64) and 1.9 KiB
  // (M = 128) ran 14-16 % and 6 % faster without it, runs of 768 B (M = 256) and 384 B
  // (M = 512) 1-10 % slower; on Zen 3 (AVX2, runs of at most 1.5 KiB) it saved a DRAM
  // latency per line.
  constexpr i64 kStreamedRunBytes = 1536;
  const std::vector<i64> order = spread_order(n_tiles, team);
  parallel_for(n_tasks, threads, [&](i64 task, int thread) {
    const i64 t = order[static_cast<std::size_t>(task / n_chunks)], ch = task % n_chunks;
    const i64 u0 = bounds[static_cast<std::size_t>(ch)];
    const i64 u1 = bounds[static_cast<std::size_t>(ch + 1)];
    const i64 r0 = row_start(u0), r1 = row_start(u1);
    const i64 v0 = tile_v0[static_cast<std::size_t>(t)];
    const i64 v1 = tile_v0[static_cast<std::size_t>(t + 1)];
    const i64 c0 = v0 * lanes;
    if (ragged && t == n_tiles - 1) {
      float* yp = ypad.data() + r0 * last_width;
      if (!overwrite) std::fill(yp, yp + (r1 - r0) * last_width, 0.0f);
      // Rows by unit position here; row_map applies on the way back.
      Panel padded{thread_xpad(thread), last_width, yp, last_width, r0, v1 - v0, nullptr};
      padded.kc = kc;
      kernel(u0, u1, padded);
      for (i64 r = r0; r < r1; ++r) {
        const i64 dst = row_map ? row_map[r] : r;
        std::memcpy(y + dst * ld + c0, yp + (r - r0) * last_width, sizeof(float) * (n - c0));
      }
      return;
    }
    const i64 width = (v1 - v0) * lanes;
    const i64 cols = std::min(width, n - c0);  // the columns of Y this tile owns
    Panel panel_view{x + c0, ld, y + c0, ld, 0, v1 - v0, row_map};
    panel_view.kc = kc;
    panel_view.tail = t == n_tiles - 1 ? tail : 0;
    // This thread's likely next task is `team` tasks on (tasks are handed out in order); its
    // chunk's share of that tile's X rows is prefetched during this task (when its rows are
    // short runs, above). The ragged tile reads its own small copy, so it is not prefetched.
    const i64 next = task + team;
    const bool has_next = next < n_tasks;
    const i64 next_t = has_next ? order[static_cast<std::size_t>(next / n_chunks)] : 0;
    const i64 next_ch = next % n_chunks;
    if (has_next && !(ragged && next_t == n_tiles - 1)) {
      const i64 nv0 = tile_v0[static_cast<std::size_t>(next_t)];
      const i64 nv1 = tile_v0[static_cast<std::size_t>(next_t + 1)];
      const i64 run_bytes = (nv1 - nv0) * lanes * static_cast<i64>(sizeof(float));
      if (layout.prefetch_next && run_bytes <= kStreamedRunBytes) {
        panel_view.pf_x = x + nv0 * lanes;
        panel_view.pf_ldx = ld;
        panel_view.pf_row0 = k * next_ch / n_chunks;
        panel_view.pf_row1 = k * (next_ch + 1) / n_chunks;
        panel_view.pf_bytes = run_bytes;
      }
    }
    const i64 fold = t == n_tiles - 1 ? layout.fold_cols : 0;
    panel_view.fold = fold;
    if (!overwrite)
      for (i64 r = r0; r < r1; ++r)
        std::fill(y + r * ld + c0, y + r * ld + c0 + cols + fold, 0.0f);
    if (copy_panels && panel_view.tail == 0 && fold == 0) {
      float* panel = panels.data() + static_cast<i64>(thread) * k * max_width;
      for (i64 r = 0; r < k; ++r)
        std::memcpy(panel + r * width, x + r * ld + c0, sizeof(float) * width);
      panel_view.x = panel;
      panel_view.ldx = width;
    }
    kernel(u0, u1, panel_view);
  });
}


// Runs kernel(unit0, unit1) over `threads` chunks of about equal work (narrow N: one pass);
// an empty `prefix` means every unit has the same work.
template <class Kernel>
void run_chunks(i64 n_units, const std::vector<i64>& prefix, int threads, Kernel&& kernel) {
  if (threads <= 1 || n_units <= 1) {
    kernel(i64{0}, n_units);
    return;
  }
  std::vector<i64> bounds;
  if (!prefix.empty()) {
    bounds = balanced_bounds(prefix, threads);
  } else {
    const i64 parts = std::min<i64>(threads, n_units);
    for (i64 p = 0; p <= parts; ++p) bounds.push_back(n_units * p / parts);
  }
  const i64 parts = static_cast<i64>(bounds.size()) - 1;
  parallel_for(parts, threads, [&](i64 p) {
    kernel(bounds[static_cast<std::size_t>(p)], bounds[static_cast<std::size_t>(p + 1)]);
  });
}

}  // namespace grimsim::sparse_detail
