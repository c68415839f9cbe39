// Bindings of the sparse kernels (CSR, BCR, pattern, N:M) and their bench_* twins.
//
// Every array must already have the format's dtype and be C-contiguous (never converted
// silently); the format is validated in full (indices, ordering, lengths, pointer arrays)
// before a kernel touches X, Y or the values, with the GIL released. Errors are ValueError
// (KernelArgumentError) naming the array, the position and the reason. The fast paths
// without that pass are bcr_spmm_packed and spmm_prepared: their matrices were validated
// once, when packed or prepared. Every format goes through the same two templates (spmm,
// bench) over its validate/run/shape_of overloads.
#include <algorithm>
#include <chrono>
#include <vector>
#include <memory>
#include <utility>

#include "bind_common.hpp"
#include "grimsim/sparse.hpp"
#include "src/cache_sizes.hpp"
#include "src/sparse_driver.hpp"

namespace grimsim_bind {

namespace {

using grimsim::ArrayView;
using i64 = std::int64_t;

// Holds the checked arrays of one call alive while the GIL is released.
struct Arrays {
  std::vector<py::array> keep;
  template <class T>
  ArrayView<T> view(const py::array_t<T>& a) {
    keep.push_back(a);
    return ArrayView<T>{a.data(), static_cast<i64>(a.size())};
  }
};

// Holds private read-only copies of a prepared matrix's arrays: the caller's arrays may change
// after validation, the copies cannot (nothing hands them back to Python).
struct OwnedArrays {
  std::vector<py::array> keep;
  template <class T>
  ArrayView<T> view(const py::array_t<T>& a) {
    py::array_t<T> c(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
    std::copy_n(a.data(), a.size(), c.mutable_data());  // a is C-contiguous (checked)
    c.attr("setflags")(py::arg("write") = false);
    keep.push_back(c);
    return ArrayView<T>{c.data(), static_cast<i64>(c.size())};
  }
};

// A sparse matrix validated once (csr_prepare, nm_prepare, pattern_prepare): its calls skip
// the validation pass that the array-taking functions run on every call.
template <class Matrix>
struct Prepared {
  OwnedArrays arrays;
  Matrix w;
  double prepare_time_s = 0.0;
};
using PreparedCsr = Prepared<grimsim::CsrMatrix>;
using PreparedNm = Prepared<grimsim::NmMatrix>;
using PreparedPattern = Prepared<grimsim::PatternMatrix>;

// Each format's kernels, for the generic entry points below (validate: the full format
// check the array-taking functions run on every call; run: the kernel without it).
void validate(const grimsim::CsrMatrix& w) { grimsim::validate_csr(w); }
void validate(const grimsim::BcrMatrix& w) { grimsim::validate_bcr(w); }
void validate(const grimsim::NmMatrix& w) { grimsim::validate_nm(w); }
void validate(const grimsim::PatternMatrix& w) { grimsim::validate_pattern(w); }
void validate(const grimsim::BcrPacked&) {}  // validated when packed
void run(const grimsim::CsrMatrix& w, const float* x, i64 n, float* y, int t) {
  grimsim::csr_spmm_unchecked(w, x, n, y, t);
}
void run(const grimsim::BcrMatrix& w, const float* x, i64 n, float* y, int t) {
  grimsim::bcr_spmm_unchecked(w, x, n, y, t);
}
void run(const grimsim::NmMatrix& w, const float* x, i64 n, float* y, int t) {
  grimsim::nm_spmm_unchecked(w, x, n, y, t);
}
void run(const grimsim::PatternMatrix& w, const float* x, i64 n, float* y, int t) {
  grimsim::pattern_spmm_unchecked(w, x, n, y, t);
}
void run(const grimsim::BcrPacked& w, const float* x, i64 n, float* y, int t) {
  w.spmm(x, n, y, t);
}
template <class Matrix>
std::pair<i64, i64> shape_of(const Matrix& w) { return {w.rows, w.cols}; }
std::pair<i64, i64> shape_of(const grimsim::BcrPacked& w) { return {w.rows(), w.cols()}; }
// A matrix already validated (prepared): the generic entry points skip the check.
template <class Matrix>
struct Checked {
  const Matrix& w;
};
template <class Matrix>
void validate(const Checked<Matrix>&) {}
template <class Matrix>
void run(const Checked<Matrix>& c, const float* x, i64 n, float* y, int t) {
  run(c.w, x, n, y, t);
}
template <class Matrix>
std::pair<i64, i64> shape_of(const Checked<Matrix>& c) { return shape_of(c.w); }

// Validates p's matrix (GIL released) and records how long preparing took.
template <class Matrix>
std::shared_ptr<Prepared<Matrix>> finish_prepare(std::shared_ptr<Prepared<Matrix>> p,
                                                 std::chrono::steady_clock::time_point t0) {
  {
    py::gil_scoped_release release;
    validate(p->w);
  }
  p->prepare_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return p;
}

std::pair<i64, i64> pair_arg(const py::tuple& t, const char* name) {
  if (t.size() != 2)
    throw grimsim::InvalidArgument(std::string(name) + " must be a pair of integers, got " +
                                   std::to_string(t.size()) + " items");
  const i64 a = t[0].cast<i64>(), b = t[1].cast<i64>();
  if (a < 0 || b < 0)
    throw grimsim::InvalidArgument(std::string(name) + " must be non-negative, got (" +
                                   std::to_string(a) + ", " + std::to_string(b) + ")");
  return {a, b};
}

// x must be float32 C-contiguous (K x N); returns N.
i64 check_x(const py::array_t<float>& x, i64 k) {
  if (x.shape(0) != k)
    throw grimsim::InvalidArgument("x has " + std::to_string(x.shape(0)) +
                                   " rows but the matrix has K = " + std::to_string(k) +
                                   " columns");
  return x.ndim() == 2 ? x.shape(1) : 1;
}

py::array_t<float> make_y(i64 m, i64 n, bool vector) {
  if (vector) return new_f32({m});
  return new_f32({m, n});
}

// y = W @ x, with x float32 C-contiguous of `x_ndim` dimensions (0: (K, N) or (K,)); the
// format is validated first (GIL released) unless it was when prepared or packed.
template <class Matrix>
py::array_t<float> spmm(const Matrix& w, const py::array& x_in, int threads, int x_ndim = 0) {
  grimsim::check_threads(threads);
  const auto [rows, cols] = shape_of(w);
  const auto x = require_f32(x_in, "x", x_ndim ? x_ndim : (x_in.ndim() == 1 ? 1 : 2));
  const i64 n = check_x(x, cols);
  auto y = make_y(rows, n, x.ndim() == 1);
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    validate(w);
    run(w, x.data(), n, yp, threads);
  }
  return y;
}

// Times spmm with the C++ harness (the format validated once, before the timed calls).
template <class Matrix>
py::dict bench(const Matrix& w, const py::array& x_in, int threads, double min_time_s,
               int warmup, i64 max_reps, i64 flush) {
  const auto [rows, cols] = shape_of(w);
  const auto x = require_f32(x_in, "x", x_in.ndim() == 1 ? 1 : 2);
  const i64 n = check_x(x, cols);
  const auto opt = bench_options(threads, min_time_s, warmup, max_reps, flush);
  grimsim::AlignedArray<float> y(static_cast<std::size_t>(rows * n));
  grimsim::TimingResult r;
  {
    py::gil_scoped_release release;
    validate(w);
    r = grimsim::time_kernel([&] { run(w, x.data(), n, y.data(), threads); }, opt);
  }
  return timing_dict(r);
}

// ------------------------------------------------------------------------------ CSR -----

template <class Holder>
grimsim::CsrMatrix csr_from(Holder& a, const py::array& indptr, const py::array& indices,
                            const py::array& data, const py::tuple& shape) {
  grimsim::CsrMatrix w;
  std::tie(w.rows, w.cols) = pair_arg(shape, "shape");
  w.indptr = a.view(require_int<std::int32_t>(indptr, "indptr", 1));
  w.indices = a.view(require_int<std::int32_t>(indices, "indices", 1));
  w.data = a.view(require_f32(data, "data", 1));
  return w;
}

py::array_t<float> csr_call(const py::array& indptr, const py::array& indices,
                            const py::array& data, const py::tuple& shape, const py::array& x_in,
                            int threads, int x_ndim) {
  Arrays a;
  return spmm(csr_from(a, indptr, indices, data, shape), x_in, threads, x_ndim);
}

py::dict bench_csr(const py::array& indptr, const py::array& indices, const py::array& data,
                   const py::tuple& shape, const py::array& x_in, int threads, double min_time_s,
                   int warmup, i64 max_reps, i64 flush) {
  Arrays a;
  return bench(csr_from(a, indptr, indices, data, shape), x_in, threads, min_time_s, warmup,
               max_reps, flush);
}

// ------------------------------------------------------------------------------ BCR -----

grimsim::BcrMatrix bcr_from(Arrays& a, const py::array& block_row_ptr, const py::array& block_col,
                            const py::array& row_ptr, const py::array& row_idx,
                            const py::array& col_ptr, const py::array& col_idx,
                            const py::array& val_ptr, const py::array& values,
                            const py::array& reorder, const py::tuple& shape,
                            const py::tuple& block) {
  grimsim::BcrMatrix w;
  std::tie(w.rows, w.cols) = pair_arg(shape, "shape");
  std::tie(w.block_rows, w.block_cols) = pair_arg(block, "block");
  w.block_row_ptr = a.view(require_int<std::int32_t>(block_row_ptr, "block_row_ptr", 1));
  w.block_col = a.view(require_int<std::int32_t>(block_col, "block_col", 1));
  w.row_ptr = a.view(require_int<std::int32_t>(row_ptr, "row_ptr", 1));
  w.row_idx = a.view(require_int<std::int32_t>(row_idx, "row_idx", 1));
  w.col_ptr = a.view(require_int<std::int32_t>(col_ptr, "col_ptr", 1));
  w.col_idx = a.view(require_int<std::int32_t>(col_idx, "col_idx", 1));
  w.val_ptr = a.view(require_int<std::int64_t>(val_ptr, "val_ptr", 1));
  w.values = a.view(require_f32(values, "values", 1));
  w.reorder = a.view(require_int<std::int32_t>(reorder, "reorder", 1));
  return w;
}

#define GRIMSIM_BCR_PARAMS                                                                     \
  const py::array &block_row_ptr, const py::array &block_col, const py::array &row_ptr,        \
      const py::array &row_idx, const py::array &col_ptr, const py::array &col_idx,            \
      const py::array &val_ptr, const py::array &values, const py::array &reorder,             \
      const py::tuple &shape, const py::tuple &block
#define GRIMSIM_BCR_ARGS                                                                     \
  block_row_ptr, block_col, row_ptr, row_idx, col_ptr, col_idx, val_ptr, values, reorder, \
      shape, block
#define GRIMSIM_BCR_PYARGS                                                                   \
  py::arg("block_row_ptr"), py::arg("block_col"), py::arg("row_ptr"), py::arg("row_idx"),   \
      py::arg("col_ptr"), py::arg("col_idx"), py::arg("val_ptr"), py::arg("values"),        \
      py::arg("reorder"), py::arg("shape"), py::arg("block")

py::array_t<float> bcr_spmm(GRIMSIM_BCR_PARAMS, const py::array& x_in, int threads) {
  Arrays a;
  return spmm(bcr_from(a, GRIMSIM_BCR_ARGS), x_in, threads);
}

py::dict bench_bcr(GRIMSIM_BCR_PARAMS, const py::array& x_in, int threads, double min_time_s,
                   int warmup, i64 max_reps, i64 flush) {
  Arrays a;
  return bench(bcr_from(a, GRIMSIM_BCR_ARGS), x_in, threads, min_time_s, warmup, max_reps,
               flush);
}

// A BcrPacked plus what Python reports about it.
struct PackedBcr {
  grimsim::BcrPacked packed;
  i64 block_rows = 0, block_cols = 0;
  double pack_time_s = 0.0;
};

std::shared_ptr<PackedBcr> bcr_pack(GRIMSIM_BCR_PARAMS) {
  Arrays a;
  const grimsim::BcrMatrix w = bcr_from(a, GRIMSIM_BCR_ARGS);
  auto out = std::make_shared<PackedBcr>();
  out->block_rows = w.block_rows;
  out->block_cols = w.block_cols;
  {
    py::gil_scoped_release release;
    const auto t0 = std::chrono::steady_clock::now();
    out->packed = grimsim::BcrPacked::pack(w);
    out->pack_time_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return out;
}

py::array_t<float> bcr_spmm_packed(const PackedBcr& p, const py::array& x_in, int threads) {
  return spmm(p.packed, x_in, threads);
}

py::dict bench_bcr_packed(const PackedBcr& p, const py::array& x_in, int threads,
                          double min_time_s, int warmup, i64 max_reps, i64 flush) {
  return bench(p.packed, x_in, threads, min_time_s, warmup, max_reps, flush);
}

// -------------------------------------------------------------------------- pattern -----

template <class Holder>
grimsim::PatternMatrix pattern_from(Holder& a, const py::array& library,
                                    const py::array& kernel_ptr, const py::array& kernel_channel,
                                    const py::array& kernel_pattern, const py::array& values,
                                    const py::array& filter_order, const py::tuple& shape) {
  grimsim::PatternMatrix w;
  std::tie(w.rows, w.cols) = pair_arg(shape, "shape");
  const auto lib = require_int<std::int32_t>(library, "library", 2);
  if (lib.shape(1) != 4)
    throw grimsim::InvalidArgument("library must have shape (P, 4), got " + shape_str(lib));
  w.library = a.view(lib);
  w.kernel_ptr = a.view(require_int<std::int32_t>(kernel_ptr, "kernel_ptr", 1));
  w.kernel_channel = a.view(require_int<std::int32_t>(kernel_channel, "kernel_channel", 1));
  w.kernel_pattern = a.view(require_int<std::int32_t>(kernel_pattern, "kernel_pattern", 1));
  const auto vals = require_f32(values, "values", 2);
  if (vals.shape(1) != 4)
    throw grimsim::InvalidArgument("values must have shape (nk, 4), got " + shape_str(vals));
  w.values = a.view(vals);
  w.filter_order = a.view(require_int<std::int32_t>(filter_order, "filter_order", 1));
  return w;
}

#define GRIMSIM_PATTERN_PARAMS                                                                \
  const py::array &library, const py::array &kernel_ptr, const py::array &kernel_channel,     \
      const py::array &kernel_pattern, const py::array &values, const py::array &filter_order, \
      const py::tuple &shape
#define GRIMSIM_PATTERN_ARGS \
  library, kernel_ptr, kernel_channel, kernel_pattern, values, filter_order, shape
#define GRIMSIM_PATTERN_PYARGS                                                                \
  py::arg("library"), py::arg("kernel_ptr"), py::arg("kernel_channel"),                      \
      py::arg("kernel_pattern"), py::arg("values"), py::arg("filter_order"), py::arg("shape")

py::array_t<float> pattern_conv_spmm(GRIMSIM_PATTERN_PARAMS, const py::array& x_in,
                                     int threads) {
  Arrays a;
  return spmm(pattern_from(a, GRIMSIM_PATTERN_ARGS), x_in, threads);
}

py::dict bench_pattern(GRIMSIM_PATTERN_PARAMS, const py::array& x_in, int threads,
                       double min_time_s, int warmup, i64 max_reps, i64 flush) {
  Arrays a;
  return bench(pattern_from(a, GRIMSIM_PATTERN_ARGS), x_in, threads, min_time_s, warmup,
               max_reps, flush);
}

// ------------------------------------------------------------------------------ N:M -----

template <class Holder>
grimsim::NmMatrix nm_from(Holder& a, const py::array& values, const py::array& indices, i64 n,
                          i64 m, const py::tuple& shape) {
  grimsim::NmMatrix w;
  std::tie(w.rows, w.cols) = pair_arg(shape, "shape");
  w.n = n;
  w.m = m;
  if (m < 1 || n < 1 || n > m || m > 256)
    throw grimsim::InvalidArgument("nm: need 1 <= n <= m <= 256, got n=" + std::to_string(n) +
                                   ", m=" + std::to_string(m));
  const auto v = require_f32(values, "values", 3);
  const auto idx = require_int<std::int32_t>(indices, "indices", 3);
  const i64 g = m > 0 ? (w.cols + m - 1) / m : 0;
  const std::pair<const py::array*, const char*> arrays[] = {{&v, "values"}, {&idx, "indices"}};
  for (const auto& [arr, name] : arrays)
    if (arr->shape(0) != w.rows || arr->shape(1) != g || arr->shape(2) != n)
      throw grimsim::InvalidArgument(std::string(name) +
                                     " must have shape (M, ceil(K/m), n) = (" +
                                     std::to_string(w.rows) + ", " + std::to_string(g) + ", " +
                                     std::to_string(n) + "), got " + shape_str(*arr));
  w.values = a.view(v);
  w.indices = a.view(idx);
  return w;
}

py::array_t<float> nm_spmm(const py::array& values, const py::array& indices, i64 n, i64 m,
                           const py::tuple& shape, const py::array& x_in, int threads) {
  Arrays a;
  return spmm(nm_from(a, values, indices, n, m, shape), x_in, threads);
}

py::dict bench_nm(const py::array& values, const py::array& indices, i64 n, i64 m,
                  const py::tuple& shape, const py::array& x_in, int threads, double min_time_s,
                  int warmup, i64 max_reps, i64 flush) {
  Arrays a;
  return bench(nm_from(a, values, indices, n, m, shape), x_in, threads, min_time_s, warmup,
               max_reps, flush);
}

// ------------------------------------------------------------------- prepared (CSR/N:M/pattern)

std::shared_ptr<PreparedCsr> csr_prepare(const py::array& indptr, const py::array& indices,
                                         const py::array& data, const py::tuple& shape) {
  const auto t0 = std::chrono::steady_clock::now();
  auto p = std::make_shared<PreparedCsr>();
  p->w = csr_from(p->arrays, indptr, indices, data, shape);
  return finish_prepare(std::move(p), t0);
}

std::shared_ptr<PreparedNm> nm_prepare(const py::array& values, const py::array& indices, i64 n,
                                       i64 m, const py::tuple& shape) {
  const auto t0 = std::chrono::steady_clock::now();
  auto p = std::make_shared<PreparedNm>();
  p->w = nm_from(p->arrays, values, indices, n, m, shape);
  return finish_prepare(std::move(p), t0);
}

std::shared_ptr<PreparedPattern> pattern_prepare(GRIMSIM_PATTERN_PARAMS) {
  const auto t0 = std::chrono::steady_clock::now();
  auto p = std::make_shared<PreparedPattern>();
  p->w = pattern_from(p->arrays, GRIMSIM_PATTERN_ARGS);
  return finish_prepare(std::move(p), t0);
}

template <class Matrix>
py::array_t<float> prepared_spmm(const Prepared<Matrix>& p, const py::array& x_in, int threads) {
  return spmm(Checked<Matrix>{p.w}, x_in, threads);
}

template <class Matrix>
py::dict prepared_bench(const Prepared<Matrix>& p, const py::array& x_in, int threads,
                        double min_time_s, int warmup, i64 max_reps, i64 flush) {
  return bench(Checked<Matrix>{p.w}, x_in, threads, min_time_s, warmup, max_reps, flush);
}

template <class Matrix>
void bind_prepared(py::module_& m, const char* name, const char* doc) {
  using P = Prepared<Matrix>;
  py::class_<P, std::shared_ptr<P>>(m, name, doc)
      .def_property_readonly("shape", [](const P& p) { return py::make_tuple(p.w.rows, p.w.cols); })
      .def_property_readonly("prepare_time_s", [](const P& p) { return p.prepare_time_s; },
                             "Seconds the copy and the validation took.")
      .def_property_readonly(
          "nbytes",
          [](const P& p) {
            i64 b = 0;
            for (const auto& a : p.arrays.keep) b += static_cast<i64>(a.nbytes());
            return b;
          },
          "Bytes of the private copies of the arrays.")
      .def("__repr__", [name](const P& p) {
        return "<" + std::string(name) + " shape=(" + std::to_string(p.w.rows) + ", " +
               std::to_string(p.w.cols) + ")>";
      });
  m.def("spmm_prepared", &prepared_spmm<Matrix>, py::arg("prepared"), py::arg("x"),
        py::arg("threads") = 1,
        "y = W @ x on a prepared CSR, N:M or pattern matrix (validated once, when prepared); "
        "x float32 C-contiguous (K, N) or (K,).");
  m.def("bench_prepared", &prepared_bench<Matrix>, py::arg("prepared"), py::arg("x"),
        py::arg("threads") = 1, GRIMSIM_BENCH_ARGS,
        "Times spmm_prepared with the C++ harness; returns the timing dict.");
}

}  // namespace

void register_sparse(py::module_& m) {
  m.def(
      "bcr_panel_layout",
      [](std::int64_t rows, std::int64_t k, std::int64_t nv_total, int threads, int lanes,
         std::int64_t l2_bytes) {
        grimsim::check(rows >= 0 && k >= 0, "rows and k must be >= 0, got rows=" +
                                                  std::to_string(rows) + " k=" + std::to_string(k));
        grimsim::check(nv_total >= 1, "nv_total must be >= 1, got " + std::to_string(nv_total));
        grimsim::check(threads >= 1, "threads must be >= 1, got " + std::to_string(threads));
        grimsim::check(lanes >= 1, "lanes must be >= 1, got " + std::to_string(lanes));
        grimsim::check(l2_bytes >= 0, "l2_bytes must be >= 0, got " + std::to_string(l2_bytes));
        const auto layout = grimsim::sparse_detail::bcr_panel_layout(rows, k, nv_total, threads,
                                                                     lanes, l2_bytes);
        return py::make_tuple(layout.nt, layout.kc);
      },
      py::arg("rows"), py::arg("k"), py::arg("nv_total"), py::arg("threads"), py::arg("lanes"),
      py::arg("l2_bytes"),
      "Packed BCR's (vectors per N tile, columns per K chunk; 0: W not chunked) for a matrix "
      "of `rows` x `k` over nv_total SIMD vectors of N, as BcrPacked::spmm picks them (the "
      "cost model's bcr_tile_layout mirrors it).");
  m.def("l2_cache_bytes", [] { return grimsim::cache_sizes().l2; },
        "The per-core L2 size the kernels size their blocking by (the OS's figure, else 512 KiB).");
  bind_prepared<grimsim::CsrMatrix>(m, "CsrPrepared", "A CSR matrix copied and validated once.");
  bind_prepared<grimsim::NmMatrix>(m, "NmPrepared", "An N:M matrix copied and validated once.");
  bind_prepared<grimsim::PatternMatrix>(m, "PatternPrepared",
                                        "A pattern-pruned conv matrix copied and validated once.");
  m.def("csr_prepare", &csr_prepare, py::arg("indptr"), py::arg("indices"), py::arg("data"),
        py::arg("shape"),
        "Copies and validates CSR arrays (as csr_spmm takes them) once; returns a CsrPrepared "
        "for spmm_prepared / bench_prepared.");
  m.def("nm_prepare", &nm_prepare, py::arg("values"), py::arg("indices"), py::arg("n"),
        py::arg("m"), py::arg("shape"),
        "Copies and validates N:M arrays (as nm_spmm takes them) once; returns an NmPrepared.");
  m.def("pattern_prepare", &pattern_prepare, GRIMSIM_PATTERN_PYARGS,
        "Copies and validates pattern arrays (as pattern_conv_spmm takes them) once; returns a "
        "PatternPrepared.");
  const char* y_doc = " x is float32 C-contiguous (K, N) or (K,); returns y = W @ x, float32.";
  m.def(
      "csr_spmm",
      [](const py::array& indptr, const py::array& indices, const py::array& data,
         const py::tuple& shape, const py::array& x, int threads) {
        return csr_call(indptr, indices, data, shape, x, threads, 2);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("shape"), py::arg("x"),
      py::arg("threads") = 1,
      (std::string("CSR SpMM: indptr int32[M+1], indices int32[nnz] (sorted per row), data "
                   "float32[nnz], shape (M, K); x float32 C-contiguous (K, N).")).c_str());
  m.def(
      "csr_spmv",
      [](const py::array& indptr, const py::array& indices, const py::array& data,
         const py::tuple& shape, const py::array& x, int threads) {
        return csr_call(indptr, indices, data, shape, x, threads, 1);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("shape"), py::arg("x"),
      py::arg("threads") = 1, "CSR SpMV: as csr_spmm with x float32 (K,); returns (M,).");
  m.def("bench_csr", &bench_csr, py::arg("indptr"), py::arg("indices"), py::arg("data"),
        py::arg("shape"), py::arg("x"), py::arg("threads") = 1, GRIMSIM_BENCH_ARGS,
        "Times csr_spmm (validated once) with the C++ harness; returns the timing dict.");

  m.def("bcr_spmm", &bcr_spmm, GRIMSIM_BCR_PYARGS, py::arg("x"), py::arg("threads") = 1,
        (std::string("BCR SpMM from the compact BCR arrays (grimsim.pruning), shape (M, K), "
                     "block (R, C).") + y_doc).c_str());
  m.def("bench_bcr", &bench_bcr, GRIMSIM_BCR_PYARGS, py::arg("x"), py::arg("threads") = 1,
        GRIMSIM_BENCH_ARGS, "Times bcr_spmm (validated once); returns the timing dict.");

  py::class_<PackedBcr, std::shared_ptr<PackedBcr>>(
      m, "BcrPacked",
      "A BCR matrix validated and converted once (bcr_pack) into the kernels' streamed layout.")
      .def_property_readonly("nbytes", [](const PackedBcr& p) { return p.packed.nbytes(); },
                             "Bytes held by the packed layout.")
      .def_property_readonly("pack_time_s", [](const PackedBcr& p) { return p.pack_time_s; },
                             "Seconds bcr_pack took (validation included).")
      .def_property_readonly("shape",
                             [](const PackedBcr& p) {
                               return py::make_tuple(p.packed.rows(), p.packed.cols());
                             })
      .def_property_readonly(
          "block", [](const PackedBcr& p) { return py::make_tuple(p.block_rows, p.block_cols); })
      .def_property_readonly("nnz", [](const PackedBcr& p) { return p.packed.nnz(); })
      .def_property_readonly("n_tiles", [](const PackedBcr& p) { return p.packed.n_tiles(); },
                             "Tiles after merging rows that share their column set.")
      .def("__repr__", [](const PackedBcr& p) {
        return "<BcrPacked shape=(" + std::to_string(p.packed.rows()) + ", " +
               std::to_string(p.packed.cols()) + ") block=(" + std::to_string(p.block_rows) +
               ", " + std::to_string(p.block_cols) + ") nnz=" + std::to_string(p.packed.nnz()) +
               " nbytes=" + std::to_string(p.packed.nbytes()) + ">";
      });
  m.def("bcr_pack", &bcr_pack, GRIMSIM_BCR_PYARGS,
        "Validates the BCR arrays and packs them (rows sharing a column set merged, one "
        "streamed record per block row); returns a BcrPacked.");
  m.def("bcr_spmm_packed", &bcr_spmm_packed, py::arg("packed"), py::arg("x"),
        py::arg("threads") = 1,
        (std::string("BCR SpMM on a BcrPacked (no validation pass: done at pack time).") + y_doc)
            .c_str());
  m.def("bench_bcr_packed", &bench_bcr_packed, py::arg("packed"), py::arg("x"),
        py::arg("threads") = 1, GRIMSIM_BENCH_ARGS,
        "Times bcr_spmm_packed; returns the timing dict.");

  m.def("pattern_conv_spmm", &pattern_conv_spmm, GRIMSIM_PATTERN_PYARGS, py::arg("x"),
        py::arg("threads") = 1,
        (std::string("Pattern-pruned 3x3 conv as SpMM on the im2col'd input (K = Cin*9 rows): "
                     "library int32[P,4], kernel_ptr int32[M+1] over filter_order, "
                     "kernel_channel/kernel_pattern int32[nk], values float32[nk,4], "
                     "filter_order int32[M].") + y_doc).c_str());
  m.def("bench_pattern", &bench_pattern, GRIMSIM_PATTERN_PYARGS, py::arg("x"),
        py::arg("threads") = 1, GRIMSIM_BENCH_ARGS,
        "Times pattern_conv_spmm (validated once); returns the timing dict.");

  m.def("nm_spmm", &nm_spmm, py::arg("values"), py::arg("indices"), py::arg("n"), py::arg("m"),
        py::arg("shape"), py::arg("x"), py::arg("threads") = 1,
        (std::string("N:M SpMM along K: values float32[M, ceil(K/m), n], indices int32[M, "
                     "ceil(K/m), n] (positions in the group, increasing).") + y_doc).c_str());
  m.def("bench_nm", &bench_nm, py::arg("values"), py::arg("indices"), py::arg("n"),
        py::arg("m"), py::arg("shape"), py::arg("x"), py::arg("threads") = 1, GRIMSIM_BENCH_ARGS,
        "Times nm_spmm (validated once); returns the timing dict.");
}

}  // namespace grimsim_bind
