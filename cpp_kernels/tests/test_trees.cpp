// Standalone tests of the oblivious-tree answers (no Python): against a plain traversal on
// every SIMD tier this CPU runs, in both layouts, on listed rows and a column offset, with
// NaN features going left; and the argument checks (under ASan/UBSan a bad call must be
// refused before any access).
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "grimsim/simd.hpp"
#include "grimsim/trees.hpp"
#include "test_util.hpp"

using testutil::throws_invalid;

namespace {

struct Forest {
  std::int64_t trees = 0;
  int depth = 0;
  std::vector<std::int64_t> features;
  std::vector<double> thresholds, leaves;
};

Forest random_forest(std::int64_t trees, int depth, std::int64_t n_cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::int64_t> col(0, n_cols - 1);
  std::normal_distribution<double> normal;
  Forest f;
  f.trees = trees;
  f.depth = depth;
  for (std::int64_t i = 0; i < trees * depth; ++i) {
    f.features.push_back(col(gen));
    f.thresholds.push_back(normal(gen));
  }
  for (std::int64_t i = 0; i < trees << depth; ++i) f.leaves.push_back(normal(gen));
  return f;
}

// The plain traversal: row r's value of feature c is value(r, c).
template <class Value>
double naive(const Forest& f, Value value, std::int64_t r) {
  double sum = 0.0;
  for (std::int64_t t = 0; t < f.trees; ++t) {
    std::int64_t leaf = 0;
    for (int d = 0; d < f.depth; ++d)
      if (value(r, f.features[t * f.depth + d]) > f.thresholds[t * f.depth + d])
        leaf |= std::int64_t{1} << d;
    sum += f.leaves[(t << f.depth) + leaf];
  }
  return sum;
}

void test_answers(const std::string& tier) {
  // 1100 rows: two full blocks of 512 and a ragged one
  const std::int64_t n = 1100, cols = 9, offset = 2;
  std::mt19937 gen(7);
  std::normal_distribution<double> normal;
  std::vector<double> row_major(n * cols), col_major(n * cols);
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const double v = (r * 13 + c) % 37 == 0 ? std::numeric_limits<double>::quiet_NaN()
                                               : normal(gen);
      row_major[r * cols + c] = v;
      col_major[c * n + r] = v;
    }
  const auto value = [&](std::int64_t r, std::int64_t c) { return row_major[r * cols + c]; };
  for (int depth : {0, 1, 6, 9}) {
    const Forest f = random_forest(23, depth, cols - offset, 11u + depth);
    std::vector<double> want(n);
    for (std::int64_t r = 0; r < n; ++r)
      want[r] = naive(f, [&](std::int64_t rr, std::int64_t c) { return value(rr, c + offset); }, r);
    // columns contiguous, then rows contiguous: the trees read from column `offset` on
    for (int layout = 0; layout < 2; ++layout) {
      const bool f_order = layout == 0;
      const double* x = (f_order ? col_major.data() : row_major.data()) +
                        offset * (f_order ? n : 1);
      std::vector<double> out(n, 0.5);
      grimsim::oblivious_predict(x, n, cols - offset, f_order ? 1 : cols, f_order ? n : 1,
                                 nullptr, n, f.features.data(), f.thresholds.data(),
                                 f.leaves.data(), f.trees, f.depth, out.data());
      double err = 0.0;
      for (std::int64_t r = 0; r < n; ++r) err = std::fmax(err, std::fabs(out[r] - 0.5 - want[r]));
      EXPECT(err < 1e-12, "[%s] depth %d, %s order: max error %g", tier.c_str(), depth,
             f_order ? "column" : "row", err);
      // listed rows, repeated and out of order
      const std::vector<std::int64_t> rows = {1099, 0, 512, 0, 37, 511};
      std::vector<double> some(rows.size(), 0.0);
      grimsim::oblivious_predict(x, n, cols - offset, f_order ? 1 : cols, f_order ? n : 1,
                                 rows.data(), static_cast<std::int64_t>(rows.size()),
                                 f.features.data(), f.thresholds.data(), f.leaves.data(),
                                 f.trees, f.depth, some.data());
      bool same = true;
      for (std::size_t i = 0; i < rows.size(); ++i)
        same = same && std::fabs(some[i] - want[rows[i]]) < 1e-12;
      EXPECT(same, "[%s] depth %d, %s order: listed rows", tier.c_str(), depth,
             f_order ? "column" : "row");
    }
  }
}

void test_checks() {
  const Forest f = random_forest(3, 4, 5, 3);
  std::vector<double> x(50, 0.0), out(10, 0.0);
  const auto call = [&](std::int64_t n_cols, const std::int64_t* rows, std::int64_t n_out,
                        const std::int64_t* features, int depth) {
    return [=, &x, &out, &f] {
      grimsim::oblivious_predict(x.data(), 10, n_cols, 1, 10, rows, n_out, features,
                                 f.thresholds.data(), f.leaves.data(), f.trees, depth,
                                 out.data());
    };
  };
  EXPECT(throws_invalid(call(3, nullptr, 10, f.features.data(), 4)),
         "a feature index past the columns");
  std::vector<std::int64_t> negative = f.features;
  negative[5] = -1;
  EXPECT(throws_invalid(call(5, nullptr, 10, negative.data(), 4)), "a negative feature index");
  EXPECT(throws_invalid(call(5, nullptr, 10, f.features.data(), 17)), "depth 17");
  EXPECT(throws_invalid(call(5, nullptr, 10, f.features.data(), -1)), "depth -1");
  EXPECT(throws_invalid(call(5, nullptr, 9, f.features.data(), 4)),
         "no rows listed and fewer outputs than rows");
  const std::int64_t bad_rows[2] = {3, 10};
  EXPECT(throws_invalid(call(5, bad_rows, 2, f.features.data(), 4)), "a row index past n");
  const std::int64_t good_rows[2] = {3, 9};
  EXPECT(!throws_invalid(call(5, good_rows, 2, f.features.data(), 4)), "valid listed rows");
}

}  // namespace

int main() {
  for (const std::string& tier : testutil::tiers()) {
    testutil::set_tier(tier);
    test_answers(tier);
  }
  test_checks();
  return testutil::finish("test_trees");
}
