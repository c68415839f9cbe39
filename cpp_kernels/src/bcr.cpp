// BCR SpMM: validation, scalar reference, the threaded driver and the packed layout.
#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "cache_sizes.hpp"
#include "grimsim/parallel.hpp"
#include "sparse_checks.hpp"
#include "sparse_driver.hpp"

namespace grimsim {

using detail::fail;
using sparse_detail::i64;

void validate_bcr(const BcrMatrix& w) {
  const char* fmt = "bcr";
  detail::check_dims(fmt, w.rows, w.cols);
  if (w.block_rows < 1 || w.block_cols < 1)
    fail("bcr: block must be at least 1 x 1, got " + std::to_string(w.block_rows) + " x " +
         std::to_string(w.block_cols));
  const i64 nbr = w.n_block_rows(), nbc = w.n_block_cols(), nb = w.n_blocks();
  detail::check_pointers(fmt, "block_row_ptr", w.block_row_ptr, nbr, nb, "block_col");
  detail::check_pointers(fmt, "row_ptr", w.row_ptr, nb, w.row_idx.size, "row_idx");
  detail::check_pointers(fmt, "col_ptr", w.col_ptr, nb, w.col_idx.size, "col_idx");
  detail::check_length(fmt, "val_ptr", w.val_ptr, nb + 1);
  if (w.values.size > 0 && w.values.data == nullptr) fail("bcr: values is null");
  if (w.val_ptr[0] != 0) fail("bcr: val_ptr[0] = " + std::to_string(w.val_ptr[0]) + ", must be 0");
  for (i64 br = 0; br < nbr; ++br) {
    detail::check_sorted_range(fmt, "block_col", w.block_col, w.block_row_ptr[br],
                               w.block_row_ptr[br + 1], 0, nbc, [&] {
                                 return "block row " + std::to_string(br) + "'s column blocks";
                               });
    for (i64 b = w.block_row_ptr[br]; b < w.block_row_ptr[br + 1]; ++b) {
      const i64 bc = w.block_col[b];
      const i64 r0 = br * w.block_rows, r1 = std::min(w.rows, r0 + w.block_rows);
      const i64 c0 = bc * w.block_cols, c1 = std::min(w.cols, c0 + w.block_cols);
      auto name = [&] {
        return "block " + std::to_string(b) + " (block row " + std::to_string(br) +
               ", block column " + std::to_string(bc) + ")";
      };
      detail::check_sorted_range(fmt, "row_idx", w.row_idx, w.row_ptr[b], w.row_ptr[b + 1], r0,
                                 r1, [&] { return name() + "'s rows"; });
      detail::check_sorted_range(fmt, "col_idx", w.col_idx, w.col_ptr[b], w.col_ptr[b + 1], c0,
                                 c1, [&] { return name() + "'s columns"; });
      const i64 start = w.val_ptr[b], stop = w.val_ptr[b + 1];
      const i64 need =
          i64{w.row_ptr[b + 1] - w.row_ptr[b]} * i64{w.col_ptr[b + 1] - w.col_ptr[b]};
      if (start % 16 != 0)
        fail(detail::at(fmt, "val_ptr", b) + " = " + std::to_string(start) +
             " is not a multiple of 16 floats (block starts are 64-byte aligned)");
      if (stop < start || stop - start < need)
        fail(detail::at(fmt, "val_ptr", b + 1) + " = " + std::to_string(stop) + ": " + name() +
             " needs " + std::to_string(need) + " values from val_ptr[" + std::to_string(b) +
             "] = " + std::to_string(start));
      if (stop > w.values.size)
        fail(detail::at(fmt, "val_ptr", b + 1) + " = " + std::to_string(stop) +
             " is past the end of values (" + std::to_string(w.values.size) + " elements)");
    }
  }
  // reorder: a permutation of 0..M-1 that keeps every row inside its own block row.
  detail::check_length(fmt, "reorder", w.reorder, w.rows);
  std::vector<bool> seen(static_cast<std::size_t>(w.rows), false);
  for (i64 i = 0; i < w.rows; ++i) {
    const i64 v = w.reorder[i];
    const i64 lo = (i / w.block_rows) * w.block_rows, hi = std::min(w.rows, lo + w.block_rows);
    if (v < lo || v >= hi)
      fail(detail::at(fmt, "reorder", i) + " = " + std::to_string(v) +
           " is outside block row " + std::to_string(i / w.block_rows) + " [" +
           std::to_string(lo) + ", " + std::to_string(hi) +
           ") (reorder permutes rows within their block row)");
    if (seen[static_cast<std::size_t>(v)])
      fail(detail::at(fmt, "reorder", i) + " = " + std::to_string(v) +
           " appears twice (reorder must be a permutation)");
    seen[static_cast<std::size_t>(v)] = true;
  }
}

void bcr_spmm_reference(const BcrMatrix& w, const float* x, i64 n, float* y) {
  std::fill(y, y + w.rows * n, 0.0f);
  for (i64 b = 0; b < w.n_blocks(); ++b) {
    const i64 c = w.col_ptr[b + 1] - w.col_ptr[b];
    for (i64 i = w.row_ptr[b]; i < w.row_ptr[b + 1]; ++i)
      for (i64 k = 0; k < c; ++k) {
        const float a = w.values[w.val_ptr[b] + (i - w.row_ptr[b]) * c + k];
        const float* xr = x + static_cast<i64>(w.col_idx[w.col_ptr[b] + k]) * n;
        float* yr = y + static_cast<i64>(w.row_idx[i]) * n;
        for (i64 j = 0; j < n; ++j) yr[j] += a * xr[j];
      }
  }
}

namespace {

using sparse_detail::kBandRows;

i64 bands_per_block_row(i64 block_rows) { return (block_rows + kBandRows - 1) / kBandRows; }

sparse_detail::BcrRaw raw_view(const BcrMatrix& w) {
  return {w.rows,          w.cols,           w.block_rows,   w.block_cols,
          bands_per_block_row(w.block_rows), w.block_row_ptr.data, w.block_col.data,
          w.row_ptr.data,  w.row_idx.data,   w.col_ptr.data, w.col_idx.data,
          w.val_ptr.data,  w.values.data};
}

// First row of raw unit u (band u % bands of block row u / bands); u may be n_units.
i64 raw_unit_row(const BcrMatrix& w, i64 bands, i64 u) {
  const i64 br = u / bands, band = u % bands;
  return std::min(w.rows, br * w.block_rows + std::min(w.block_rows, band * kBandRows));
}

// Multiply-adds per unit plus a per-block overhead, as prefix sums (thread balance).
std::vector<i64> bcr_work_prefix(const BcrMatrix& w, i64 bands) {
  const i64 nbr = w.n_block_rows();
  std::vector<i64> prefix(static_cast<std::size_t>(nbr * bands) + 1, 0);
  for (i64 br = 0; br < nbr; ++br)
    for (i64 b = w.block_row_ptr[br]; b < w.block_row_ptr[br + 1]; ++b) {
      const i64 c = w.col_ptr[b + 1] - w.col_ptr[b];
      for (i64 q = w.row_ptr[b]; q < w.row_ptr[b + 1]; ++q) {
        const i64 band = (w.row_idx[q] - br * w.block_rows) / kBandRows;
        prefix[static_cast<std::size_t>(br * bands + band) + 1] += c + 1;
      }
      prefix[static_cast<std::size_t>(br * bands) + 1] += c + 8;
    }
  for (std::size_t u = 1; u < prefix.size(); ++u) prefix[u] += prefix[u - 1];
  return prefix;
}

}  // namespace

void bcr_spmm_unchecked(const BcrMatrix& w, const float* x, i64 n, float* y, int threads) {
  if (w.rows == 0 || n == 0) return;
  const sparse_detail::BcrRaw raw = raw_view(w);
  const SimdLevel level = simd_runtime_level();
  const int lanes = GRIMSIM_DISPATCH_AT(level, sparse_lanes);
  const i64 bands = raw.bands, n_units = w.n_block_rows() * bands;
  std::vector<i64> prefix;
  if (threads > 1 && n_units > 1) prefix = bcr_work_prefix(w, bands);
  auto row_start = [&](i64 u) { return raw_unit_row(w, bands, u); };
  // Narrow N (below one vector; the narrow kernels are specialised up to N = 7).
  if (n < std::min(lanes, 8)) {
    sparse_detail::run_chunks(n_units, prefix, threads, [&](i64 u0, i64 u1) {
      std::fill(y + row_start(u0) * n, y + row_start(u1) * n, 0.0f);
      GRIMSIM_DISPATCH_AT(level, bcr_raw_narrow, raw, u0, u1, x, n, y);
    });
    return;
  }
  // X rows loaded per N tile: each block's kept columns once per band it covers.
  i64 x_row_reads = 0;
  for (i64 b = 0; b < w.n_blocks(); ++b) x_row_reads += i64{w.col_ptr[b + 1] - w.col_ptr[b]};
  x_row_reads *= bands;
  sparse_detail::run_panels(w.rows, w.cols, n_units, row_start, prefix, x, n, n, y, threads, lanes,
                            false, nullptr, x_row_reads,
                            sparse_detail::panel_layout(w.cols, lanes),
                            [&](i64 u0, i64 u1, const sparse_detail::Panel& p) {
                              GRIMSIM_DISPATCH_AT(level, bcr_raw_panel, raw, u0, u1, p);
                            });
}

void bcr_spmm(const BcrMatrix& w, const float* x, i64 n, float* y, int threads) {
  validate_bcr(w);
  detail::check_gemm_args("bcr", x, y, n, threads);
  bcr_spmm_unchecked(w, x, n, y, threads);
}

// ------------------------------------------------------------------------ packing -----

namespace {

// Appends bytes to the word stream (a vector of uint32 keeps every record 4-byte aligned).
class StreamWriter {
 public:
  explicit StreamWriter(std::vector<std::uint32_t>& words) : words_(words) {}
  i64 size_bytes() const { return bytes_; }
  void put(const void* p, i64 nbytes) {
    grow(nbytes);
    std::memcpy(reinterpret_cast<unsigned char*>(words_.data()) + bytes_, p,
                static_cast<std::size_t>(nbytes));
    bytes_ += nbytes;
  }
  void zeros(i64 nbytes) {
    grow(nbytes);
    bytes_ += nbytes;  // new words are zero already
  }
  void align4() { zeros(sparse_detail::round4(bytes_) - bytes_); }

 private:
  void grow(i64 nbytes) {
    const auto need = static_cast<std::size_t>((bytes_ + nbytes + 3) / 4);
    if (words_.size() < need) words_.resize(std::max(need, 2 * words_.size()), 0);
  }
  std::vector<std::uint32_t>& words_;
  i64 bytes_ = 0;
};

// A tile: kept rows x kept columns (absolute, increasing), values row-major.
struct Tile {
  std::vector<i64> rows, cols;
  std::vector<float> vals;
};

// Writes rows [i0, i1) x columns [k0, k1) of a tile (rows inside one band starting at
// row_base) as one record (layout in sparse_simd.hpp).
void put_tile(StreamWriter& out, const Tile& t, i64 i0, i64 i1, i64 k0, i64 k1, i64 row_base,
              int col_bytes) {
  const i64 r = i1 - i0, c = k1 - k0, tc = static_cast<i64>(t.cols.size());
  unsigned mask = 0;
  for (i64 i = i0; i < i1; ++i) mask |= 1u << (t.rows[static_cast<std::size_t>(i)] - row_base);
  const i64 col_bytes_padded = sparse_detail::round4(col_bytes * c);
  const i64 words = (8 + col_bytes_padded + 4 * sparse_detail::packed_values_floats(r, c)) / 4;
  const std::uint16_t hdr[4] = {static_cast<std::uint16_t>(mask), static_cast<std::uint16_t>(r),
                                static_cast<std::uint16_t>(c), static_cast<std::uint16_t>(words)};
  const i64 start = out.size_bytes();
  out.put(hdr, sizeof(hdr));
  if (col_bytes == 2) {
    std::vector<std::uint16_t> cols(t.cols.begin() + k0, t.cols.begin() + k1);
    out.put(cols.data(), 2 * c);
  } else {
    std::vector<std::uint32_t> cols(t.cols.begin() + k0, t.cols.begin() + k1);
    out.put(cols.data(), 4 * c);
  }
  out.align4();
  std::vector<float> cm(static_cast<std::size_t>(sparse_detail::packed_values_floats(r, c)), 0.0f);
  for (i64 i = 0; i < r; ++i)
    for (i64 k = 0; k < c; ++k)
      cm[static_cast<std::size_t>(k * r + i)] =
          t.vals[static_cast<std::size_t>((i0 + i) * tc + k0 + k)];
  out.put(cm.data(), static_cast<i64>(sizeof(float) * cm.size()));
  if (out.size_bytes() - start != 4 * words) fail("bcr_pack: internal record size mismatch");
}

// The tiles of block row br: merged row groups first, then the remaining blocks.
std::vector<Tile> block_row_tiles(const BcrMatrix& w, i64 br) {
  const i64 r0 = br * w.block_rows, nrows = std::min(w.block_rows, w.rows - r0);
  const i64 b0 = w.block_row_ptr[br], b1 = w.block_row_ptr[br + 1];
  // Rows kept in exactly the same blocks have the same column set (a reorder group). A group
  // that is exactly the kept rows of each of its (>= 2) blocks becomes one tile over all
  // those blocks' columns; no block is ever split.
  std::vector<std::vector<i64>> member(static_cast<std::size_t>(nrows));
  for (i64 b = b0; b < b1; ++b)
    for (i64 q = w.row_ptr[b]; q < w.row_ptr[b + 1]; ++q)
      member[static_cast<std::size_t>(w.row_idx[q] - r0)].push_back(b);
  std::map<std::vector<i64>, std::vector<i64>> groups;  // blocks -> rows
  for (std::size_t i = 0; i < member.size(); ++i)
    if (member[i].size() >= 2) groups[member[i]].push_back(r0 + static_cast<i64>(i));
  std::vector<bool> merged(static_cast<std::size_t>(b1 - b0), false);
  std::vector<Tile> tiles;
  for (const auto& [blocks, rows] : groups) {
    const i64 r = static_cast<i64>(rows.size());
    bool exact = true;
    for (i64 b : blocks) exact = exact && (w.row_ptr[b + 1] - w.row_ptr[b]) == r;
    if (!exact) continue;
    Tile t;
    t.rows = rows;
    for (i64 b : blocks)
      for (i64 q = w.col_ptr[b]; q < w.col_ptr[b + 1]; ++q) t.cols.push_back(w.col_idx[q]);
    const i64 c = static_cast<i64>(t.cols.size());
    t.vals.resize(static_cast<std::size_t>(r * c));
    i64 k0 = 0;
    for (i64 b : blocks) {
      const i64 cb = w.col_ptr[b + 1] - w.col_ptr[b];
      for (i64 i = 0; i < r; ++i)
        std::copy_n(w.values.data + w.val_ptr[b] + i * cb, cb,
                    t.vals.begin() + static_cast<std::ptrdiff_t>(i * c + k0));
      k0 += cb;
      merged[static_cast<std::size_t>(b - b0)] = true;
    }
    tiles.push_back(std::move(t));
  }
  for (i64 b = b0; b < b1; ++b) {
    if (merged[static_cast<std::size_t>(b - b0)]) continue;
    Tile t;
    for (i64 q = w.row_ptr[b]; q < w.row_ptr[b + 1]; ++q) t.rows.push_back(w.row_idx[q]);
    for (i64 q = w.col_ptr[b]; q < w.col_ptr[b + 1]; ++q) t.cols.push_back(w.col_idx[q]);
    if (t.rows.empty() || t.cols.empty()) continue;
    const i64 n = static_cast<i64>(t.rows.size() * t.cols.size());
    t.vals.assign(w.values.data + w.val_ptr[b], w.values.data + w.val_ptr[b] + n);
    tiles.push_back(std::move(t));
  }
  return tiles;
}

}  // namespace

namespace {

// Indices [begin, end) of an int32 array as int64, or empty when they are exactly 0..full-1.
std::vector<i64> index_list(const std::int32_t* begin, const std::int32_t* end, i64 full) {
  std::vector<i64> out(begin, end);
  bool identity = static_cast<i64>(out.size()) == full;
  for (i64 i = 0; identity && i < full; ++i) identity = out[static_cast<std::size_t>(i)] == i;
  if (identity) out.clear();
  return out;
}

}  // namespace

BcrPacked BcrPacked::pack(const BcrMatrix& w) {
  validate_bcr(w);
  BcrPacked p;
  p.rows_ = w.rows;
  p.cols_ = w.cols;
  if (w.n_blocks() == 1 && w.block_rows >= w.rows && w.block_cols >= w.cols) {
    // One block over the whole matrix (validated: its indices are in range and distinct).
    const i64 r = w.row_ptr[1] - w.row_ptr[0], c = w.col_ptr[1] - w.col_ptr[0];
    p.single_block_ = true;
    const float* block = w.values.data + w.val_ptr[0];
    p.dense_ = pack_gemm_weights(block, r, c, 1);
    p.dense_values_ = AlignedArray<float>(static_cast<std::size_t>(std::max<i64>(1, r * c)));
    std::copy_n(block, r * c, p.dense_values_.data());
    const std::vector<i64> kept_rows = index_list(
        w.row_idx.data + w.row_ptr[0], w.row_idx.data + w.row_ptr[1], w.rows);
    if (!kept_rows.empty()) {
      p.dense_slot_.assign(static_cast<std::size_t>(w.rows), -1);
      for (i64 i = 0; i < r; ++i) p.dense_slot_[static_cast<std::size_t>(kept_rows[i])] = i;
    }
    p.dense_cols_ = index_list(w.col_idx.data + w.col_ptr[0], w.col_idx.data + w.col_ptr[1],
                               w.cols);
    p.nnz_ = r * c;
    p.n_tiles_ = 1;
    p.tile_cols_ = c;
    return p;
  }
  p.col_bytes_ = w.cols <= 65536 ? 2 : 4;
  const i64 nbr = w.n_block_rows(), band_rows = sparse_detail::kPackedBandRows;
  const i64 bands = (w.block_rows + band_rows - 1) / band_rows;
  if (w.cols > UINT32_MAX) fail("bcr_pack: K = " + std::to_string(w.cols) + " is too large");
  p.unit_row0_.assign(1, 0);
  p.unit_offset_.assign(1, 0);
  p.work_.assign(1, 0);
  StreamWriter out(p.stream_);
  for (i64 br = 0; br < nbr; ++br) {
    const std::vector<Tile> tiles = block_row_tiles(w, br);
    const i64 r0 = br * w.block_rows, r1 = std::min(w.rows, r0 + w.block_rows);
    // Each band gets the rows of every tile that fall inside it (rows are sorted).
    std::vector<std::size_t> next(tiles.size(), 0);
    for (i64 band = 0; band < bands; ++band) {
      const i64 lo = std::min(r1, r0 + band * band_rows), hi = std::min(r1, lo + band_rows);
      if (lo >= hi) break;
      // The band's rows of every tile, then its records (pieces of at most kMaxTileCols
      // columns) in order of first column, as the panel kernel's K chunks visit them.
      struct Piece {
        i64 first, ti, i0, i1, k0, k1;
      };
      std::vector<Piece> pieces;
      for (std::size_t ti = 0; ti < tiles.size(); ++ti) {
        const Tile& t = tiles[ti];
        const std::size_t i0 = next[ti];
        std::size_t i1 = i0;
        while (i1 < t.rows.size() && t.rows[i1] < hi) ++i1;
        next[ti] = i1;
        if (i1 == i0) continue;
        const i64 c = static_cast<i64>(t.cols.size());
        for (i64 k0 = 0; k0 < c; k0 += sparse_detail::kMaxTileCols)
          pieces.push_back({t.cols[static_cast<std::size_t>(k0)], static_cast<i64>(ti),
                            static_cast<i64>(i0), static_cast<i64>(i1), k0,
                            std::min(c, k0 + sparse_detail::kMaxTileCols)});
        p.nnz_ += static_cast<i64>(i1 - i0) * c;
      }
      std::stable_sort(pieces.begin(), pieces.end(),
                       [](const Piece& a, const Piece& b) { return a.first < b.first; });
      i64 work = 0;
      for (const Piece& q : pieces) {
        put_tile(out, tiles[static_cast<std::size_t>(q.ti)], q.i0, q.i1, q.k0, q.k1, lo,
                 p.col_bytes_);
        const i64 r = q.i1 - q.i0, c = q.k1 - q.k0;
        work += r * c + r + c + 8;
        ++p.n_tiles_;
        p.tile_cols_ += c;
      }
      p.unit_row0_.push_back(hi);
      p.unit_offset_.push_back(out.size_bytes());
      p.work_.push_back(p.work_.back() + work);
    }
  }
  // Bands are contiguous, so each band's end is the next one's start: unit_row0_ is complete.
  out.zeros(64);  // slack past the last tile
  p.stream_.resize(static_cast<std::size_t>(out.size_bytes() / 4));
  p.stream_.shrink_to_fit();
  return p;
}

std::int64_t BcrPacked::nbytes() const {
  return static_cast<std::int64_t>(
      stream_.size() * sizeof(std::uint32_t) +
      (dense_.panels.size() + dense_values_.size()) * sizeof(float) +
      (unit_row0_.size() + unit_offset_.size() + work_.size() + dense_slot_.size() +
       dense_cols_.size()) * sizeof(std::int64_t));
}

void BcrPacked::spmm_single_block(const float* x, i64 n, float* y, int threads) const {
  const i64* x_rows = dense_cols_.empty() ? nullptr : dense_cols_.data();
  std::vector<float> xg;
  auto product = [&](float* out) {
    if (n != 1) {
      dense_gemm_packed(dense_, x, out, n, threads, nullptr, x_rows);
      return;
    }
    const float* xv = x;
    if (x_rows != nullptr) {  // the GEMV's x: the kept columns' entries, gathered
      xg.resize(static_cast<std::size_t>(dense_.K));
      for (i64 k = 0; k < dense_.K; ++k) xg[static_cast<std::size_t>(k)] = x[x_rows[k]];
      xv = xg.data();
    }
    dense_gemm(dense_values_.data(), xv, out, dense_.M, dense_.K, 1, threads);
  };
  if (dense_slot_.empty()) {  // every row kept, in order: the product lands in y
    product(y);
    return;
  }
  // Kept rows computed together, then placed; the pruned rows are zero.
  std::vector<float> kept(static_cast<std::size_t>(dense_.M * n));
  product(kept.data());
  const i64 per_task = std::max<i64>(1, 16384 / std::max<i64>(1, n));  // ~64 KiB of Y a task
  parallel_for((rows_ + per_task - 1) / per_task, threads, [&](i64 task) {
    const i64 r0 = task * per_task, r1 = std::min(rows_, r0 + per_task);
    for (i64 r = r0; r < r1; ++r) {
      const i64 s = dense_slot_[static_cast<std::size_t>(r)];
      float* dst = y + r * n;
      if (s < 0)
        std::fill_n(dst, n, 0.0f);
      else
        std::memcpy(dst, kept.data() + s * n, sizeof(float) * static_cast<std::size_t>(n));
    }
  });
}

void BcrPacked::spmm(const float* x, i64 n, float* y, int threads) const {
  check_threads(threads);
  check(n >= 0, "bcr_spmm_packed: negative N");
  if (rows_ == 0 || n == 0) return;
  if (single_block_) {
    spmm_single_block(x, n, y, threads);
    return;
  }
  const sparse_detail::BcrStream s{rows_, cols_, unit_row0_.data(), unit_offset_.data(),
                                   reinterpret_cast<const unsigned char*>(stream_.data()),
                                   col_bytes_};
  const SimdLevel level = simd_runtime_level();
  const int lanes = GRIMSIM_DISPATCH_AT(level, sparse_lanes);
  const i64 n_units = static_cast<i64>(unit_offset_.size()) - 1;
  auto row_start = [&](i64 u) { return unit_row0_[static_cast<std::size_t>(u)]; };
  // Narrow N: the stream read once (specialised up to N = 7); xn (K x nn) and yn (M x nn)
  // row-major with row stride nn.
  auto narrow = [&](const float* xn, i64 nn, float* yn) {
    sparse_detail::run_chunks(n_units, work_, threads, [&](i64 u0, i64 u1) {
      std::fill(yn + row_start(u0) * nn, yn + row_start(u1) * nn, 0.0f);
      GRIMSIM_DISPATCH_AT(level, bcr_stream_narrow, s, u0, u1, xn, nn, yn);
    });
  };
  if (n < std::min(lanes, 8)) {
    narrow(x, n, y);
    return;
  }
  // With 8-lane vectors (AVX2), a ragged end of 1-7 columns (N = 49, 196) runs on the narrow
  // kernel, which reads the stream once more, instead of as a zero-padded vector through
  // copies of X and Y: measured on Zen 3 (2026-11-26, vs numpy in one process) 512x4608 at
  // 75 % went from 2.6-3.1x to 3.0-3.4x for N = 49..55. 4-lane tiers pad at most 3 columns
  // and keep the padded vector. AVX-512 computes a ragged end of 8-15 columns in place with
  // masks once N spans more than 3 vectors; the copies cost about as much as the whole X then
  // (one N tile holds it), while for narrower N they are small and give the kernel aligned
  // rows. Measured on a Sapphire Rapids VM (2026-11-27, 16x32 at 75 / 90 %, best of 6
  // interleaved runs, masked vs padded): N = 56 and 200 1.04-1.67x faster with masks;
  // N = 8-40 0.73-1.03x on 1024x1024 and 512x4608 (256x2304 at 90 %: up to 1.23x), so they
  // keep the copies. For 1-7 columns masks were no better than the narrow pass (N = 49, 196:
  // 0.95-0.98x; N = 33: 0.77-0.89x); there AVX-512 folds them into the panel pass instead
  // (Panel::fold, fold_tile in bcr.simd.cpp): no second pass over the stream and no copies.
  // Against the narrow pass (same VM, 2026-11-27, 16x32, 1 thread, the two builds in
  // alternating processes, best of 8 rounds; N = 17, 33, 49, 196, 785, 3139): 0.99-1.07x at
  // 90 % and 75 %, 1.02-1.16x at 50 % (N = 48, without a ragged end: 0.99-1.0x).
  const i64 tail = n % lanes;
  const bool masked_tier = GRIMSIM_DISPATCH_AT(level, bcr_stream_masked_tail);  // 16 lanes
  const bool masked = tail >= 8 && n > 3 * lanes && masked_tier;
  const i64 wide = lanes >= 8 && tail < 8 ? n - tail : n;
  // (wide < n needs n >= 17 on 16 lanes: there is a whole vector beside the ragged end)
  const bool fold = wide < n && masked_tier;
  sparse_detail::PanelLayout layout = sparse_detail::bcr_panel_layout(
      rows_, cols_, (wide + lanes - 1) / lanes, threads, lanes, cache_sizes().l2);
  layout.in_place_tail = masked;
  layout.fold_cols = fold ? n - wide : 0;
  sparse_detail::run_panels(rows_, cols_, n_units, row_start, work_, x, wide, n, y, threads,
                            lanes, false, nullptr, tile_cols_, layout,
                            [&](i64 u0, i64 u1, const sparse_detail::Panel& p) {
                              GRIMSIM_DISPATCH_AT(level, bcr_stream_panel, s, u0, u1, p);
                            });
  if (wide == n || fold) return;
  std::vector<float> xt(static_cast<std::size_t>(cols_ * tail));
  std::vector<float> yt(static_cast<std::size_t>(rows_ * tail));
  for (i64 r = 0; r < cols_; ++r)
    std::memcpy(xt.data() + r * tail, x + r * n + wide, sizeof(float) * tail);
  narrow(xt.data(), tail, yt.data());
  for (i64 r = 0; r < rows_; ++r)
    std::memcpy(y + r * n + wide, yt.data() + r * tail, sizeof(float) * tail);
}

}  // namespace grimsim
