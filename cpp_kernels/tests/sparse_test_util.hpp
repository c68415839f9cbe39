// Builders of the compact sparse formats from dense masked matrices, for the standalone
// sparse kernel tests (written from the formats note, like the Python tests' encoder).
#pragma once
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "grimsim/sparse.hpp"

namespace sparsetest {

using i64 = std::int64_t;

template <class T>
grimsim::ArrayView<T> view(const std::vector<T>& v) {
  return {v.data(), static_cast<i64>(v.size())};
}

// A dense M x K matrix whose nonzeros form a BCR pattern for R x C blocks: per block, with
// probability 1 - empty, a random subset of rows x a random subset of columns.
inline std::vector<float> random_bcr_dense(i64 M, i64 K, i64 R, i64 C, double keep_rows,
                                           double keep_cols, double empty, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  std::vector<float> w(static_cast<std::size_t>(M * K), 0.0f);
  for (i64 r0 = 0; r0 < M; r0 += R)
    for (i64 c0 = 0; c0 < K; c0 += C) {
      if (u(gen) < empty) continue;
      const i64 rr = std::min(R, M - r0), cc = std::min(C, K - c0);
      std::vector<i64> rows, cols;
      for (i64 i = 0; i < rr; ++i)
        if (u(gen) < keep_rows) rows.push_back(r0 + i);
      for (i64 k = 0; k < cc; ++k)
        if (u(gen) < keep_cols) cols.push_back(c0 + k);
      if (rows.empty()) rows.push_back(r0);
      if (cols.empty()) cols.push_back(c0 + cc - 1);
      for (i64 i : rows)
        for (i64 k : cols) {
          float v = val(gen);
          if (v == 0.0f) v = 0.5f;
          w[static_cast<std::size_t>(i * K + k)] = v;
        }
    }
  return w;
}

// Owns the BCR arrays of a dense matrix's nonzero pattern.
struct BcrOwned {
  i64 M = 0, K = 0, R = 1, C = 1;
  std::vector<std::int32_t> block_row_ptr{0}, block_col, row_ptr{0}, row_idx, col_ptr{0},
      col_idx, reorder;
  std::vector<std::int64_t> val_ptr{0};
  std::vector<float> values;

  BcrOwned(const std::vector<float>& w, i64 M_, i64 K_, i64 R_, i64 C_)
      : M(M_), K(K_), R(R_), C(C_) {
    for (i64 r0 = 0; r0 < M; r0 += R) {
      for (i64 bc = 0, c0 = 0; c0 < K; ++bc, c0 += C) {
        std::vector<i64> rows, cols;
        for (i64 i = r0; i < std::min(M, r0 + R); ++i)
          for (i64 k = c0; k < std::min(K, c0 + C); ++k)
            if (w[static_cast<std::size_t>(i * K + k)] != 0.0f) {
              if (rows.empty() || rows.back() != i) rows.push_back(i);
              break;
            }
        for (i64 k = c0; k < std::min(K, c0 + C); ++k)
          for (i64 i = r0; i < std::min(M, r0 + R); ++i)
            if (w[static_cast<std::size_t>(i * K + k)] != 0.0f) {
              cols.push_back(k);
              break;
            }
        if (rows.empty()) continue;
        block_col.push_back(static_cast<std::int32_t>(bc));
        for (i64 i : rows) row_idx.push_back(static_cast<std::int32_t>(i));
        for (i64 k : cols) col_idx.push_back(static_cast<std::int32_t>(k));
        row_ptr.push_back(static_cast<std::int32_t>(row_idx.size()));
        col_ptr.push_back(static_cast<std::int32_t>(col_idx.size()));
        for (i64 i : rows)
          for (i64 k : cols) values.push_back(w[static_cast<std::size_t>(i * K + k)]);
        while (values.size() % 16 != 0) values.push_back(0.0f);
        val_ptr.push_back(static_cast<std::int64_t>(values.size()));
      }
      block_row_ptr.push_back(static_cast<std::int32_t>(block_col.size()));
      // reorder: rows with equal column sets next to each other (sorted by their pattern).
      std::vector<i64> rows;
      for (i64 i = r0; i < std::min(M, r0 + R); ++i) rows.push_back(i);
      std::stable_sort(rows.begin(), rows.end(), [&](i64 a, i64 b) {
        for (i64 k = 0; k < K; ++k) {
          const bool na = w[static_cast<std::size_t>(a * K + k)] != 0.0f;
          const bool nb = w[static_cast<std::size_t>(b * K + k)] != 0.0f;
          if (na != nb) return na;
        }
        return false;
      });
      for (i64 i : rows) reorder.push_back(static_cast<std::int32_t>(i));
    }
  }

  grimsim::BcrMatrix matrix() const {
    grimsim::BcrMatrix m;
    m.rows = M;
    m.cols = K;
    m.block_rows = R;
    m.block_cols = C;
    m.block_row_ptr = view(block_row_ptr);
    m.block_col = view(block_col);
    m.row_ptr = view(row_ptr);
    m.row_idx = view(row_idx);
    m.col_ptr = view(col_ptr);
    m.col_idx = view(col_idx);
    m.val_ptr = view(val_ptr);
    m.values = view(values);
    m.reorder = view(reorder);
    return m;
  }
};

struct CsrOwned {
  i64 M = 0, K = 0;
  std::vector<std::int32_t> indptr{0}, indices;
  std::vector<float> data;
  CsrOwned(const std::vector<float>& w, i64 M_, i64 K_) : M(M_), K(K_) {
    for (i64 i = 0; i < M; ++i) {
      for (i64 k = 0; k < K; ++k)
        if (w[static_cast<std::size_t>(i * K + k)] != 0.0f) {
          indices.push_back(static_cast<std::int32_t>(k));
          data.push_back(w[static_cast<std::size_t>(i * K + k)]);
        }
      indptr.push_back(static_cast<std::int32_t>(indices.size()));
    }
  }
  grimsim::CsrMatrix matrix() const {
    grimsim::CsrMatrix m;
    m.rows = M;
    m.cols = K;
    m.indptr = view(indptr);
    m.indices = view(indices);
    m.data = view(data);
    return m;
  }
};

// N:M: a random n-of-m pattern per group (the last group only over columns inside K).
struct NmOwned {
  i64 M = 0, K = 0, n = 0, m = 0;
  std::vector<float> values;
  std::vector<std::int32_t> indices;
  std::vector<float> dense;
  NmOwned(i64 M_, i64 K_, i64 n_, i64 m_, std::uint32_t seed) : M(M_), K(K_), n(n_), m(m_) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> val(-1.0f, 1.0f);
    const i64 G = (K + m - 1) / m;
    dense.assign(static_cast<std::size_t>(M * K), 0.0f);
    for (i64 i = 0; i < M; ++i)
      for (i64 g = 0; g < G; ++g) {
        std::vector<std::int32_t> pos(static_cast<std::size_t>(m));
        for (i64 p = 0; p < m; ++p) pos[static_cast<std::size_t>(p)] = static_cast<std::int32_t>(p);
        std::shuffle(pos.begin(), pos.end(), gen);
        pos.resize(static_cast<std::size_t>(n));
        std::sort(pos.begin(), pos.end());
        for (std::int32_t p : pos) {
          const i64 col = g * m + p;
          const float v = col < K ? val(gen) : 0.0f;  // slots in the padding stay empty
          indices.push_back(p);
          values.push_back(v);
          if (col < K) dense[static_cast<std::size_t>(i * K + col)] = v;
        }
      }
  }
  grimsim::NmMatrix matrix() const {
    grimsim::NmMatrix w;
    w.rows = M;
    w.cols = K;
    w.n = n;
    w.m = m;
    w.values = view(values);
    w.indices = view(indices);
    return w;
  }
};

// Pattern: library of a few 4-position patterns; each (filter, channel) kept with prob. keep;
// filters in reversed order.
struct PatternOwned {
  i64 M = 0, K = 0;
  std::vector<std::int32_t> library{0, 1, 3, 4, 1, 4, 5, 7, 0, 2, 6, 8, 3, 4, 5, 8};
  std::vector<std::int32_t> kernel_ptr{0}, kernel_channel, kernel_pattern, filter_order;
  std::vector<float> values, dense;
  PatternOwned(i64 M_, i64 cin, double keep, std::uint32_t seed) : M(M_), K(cin * 9) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::uniform_real_distribution<float> val(-1.0f, 1.0f);
    dense.assign(static_cast<std::size_t>(M * K), 0.0f);
    for (i64 t = 0; t < M; ++t) {
      const i64 f = M - 1 - t;
      filter_order.push_back(static_cast<std::int32_t>(f));
      for (i64 c = 0; c < cin; ++c) {
        if (u(gen) >= keep) continue;
        const auto p = static_cast<std::int32_t>(gen() % 4);
        kernel_channel.push_back(static_cast<std::int32_t>(c));
        kernel_pattern.push_back(p);
        for (int s = 0; s < 4; ++s) {
          const float v = val(gen);
          values.push_back(v);
          const i64 pos = library[static_cast<std::size_t>(p * 4 + s)];
          dense[static_cast<std::size_t>(f * K + c * 9 + pos)] = v;
        }
      }
      kernel_ptr.push_back(static_cast<std::int32_t>(kernel_channel.size()));
    }
  }
  grimsim::PatternMatrix matrix() const {
    grimsim::PatternMatrix w;
    w.rows = M;
    w.cols = K;
    w.library = view(library);
    w.kernel_ptr = view(kernel_ptr);
    w.kernel_channel = view(kernel_channel);
    w.kernel_pattern = view(kernel_pattern);
    w.values = view(values);
    w.filter_order = view(filter_order);
    return w;
  }
};

}  // namespace sparsetest
