// Bindings of the oblivious-tree answers (grimsim/trees.hpp) used by the learned correction.
#include <string>

#include "bind_common.hpp"
#include "grimsim/trees.hpp"

namespace grimsim_bind {
namespace {

// A float64 / int64 array of the given rank (dtype checked, never converted).
py::array require_dtype(const py::array& a, const char* name, int ndim, char kind) {
  if (a.dtype().kind() != kind || a.itemsize() != 8)
    throw grimsim::InvalidArgument(std::string(name) + " must be " +
                                   (kind == 'f' ? "float64" : "int64") + ", got dtype " +
                                   std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw grimsim::InvalidArgument(std::string(name) + " must have " + std::to_string(ndim) +
                                   " dimensions, got " + std::to_string(a.ndim()));
  return a;
}

// base + every tree's leaf for each row of x (n x features, float64, C- or Fortran-
// contiguous; Fortran order is the fast one), or for the rows listed in `rows` only; the
// trees read x's columns from `first_column` on (a stacked correction's one-thread half).
py::array_t<double> oblivious_predict(const py::array& x_in, const py::array& features_in,
                                      const py::array& thresholds_in,
                                      const py::array& leaves_in, double base,
                                      const py::object& rows_in, std::int64_t first_column) {
  auto x = require_dtype(x_in, "x", 2, 'f');
  const bool c_order = (x.flags() & py::array::c_style) != 0;
  const bool f_order = (x.flags() & py::array::f_style) != 0;
  grimsim::check(c_order || f_order,
                 "x must be C- or Fortran-contiguous (use numpy.asfortranarray)");
  auto feats = require_dtype(features_in, "features", 2, 'i');
  auto thr = require_dtype(thresholds_in, "thresholds", 2, 'f');
  auto leaves = require_dtype(leaves_in, "leaves", 2, 'f');
  for (const auto* a : {&feats, &thr, &leaves})
    grimsim::check((a->flags() & py::array::c_style) != 0,
                   "tree arrays must be C-contiguous (use numpy.ascontiguousarray)");
  const std::int64_t n = x.shape(0), n_cols = x.shape(1);
  const std::int64_t n_trees = feats.shape(0), depth = feats.shape(1);
  grimsim::check(depth <= grimsim::kMaxTreeDepth,
                 "tree depth must be <= " + std::to_string(grimsim::kMaxTreeDepth));
  grimsim::check(thr.shape(0) == n_trees && thr.shape(1) == depth,
                 "thresholds has shape " + shape_str(thr) + ", features " + shape_str(feats));
  grimsim::check(leaves.shape(0) == n_trees && leaves.shape(1) == (std::int64_t{1} << depth),
                 "leaves has shape " + shape_str(leaves) + ", expected (" +
                     std::to_string(n_trees) + ", " +
                     std::to_string(std::int64_t{1} << depth) + ")");
  grimsim::check(first_column >= 0 && first_column <= n_cols,
                 "first_column " + std::to_string(first_column) + " outside [0, " +
                     std::to_string(n_cols) + "]");
  py::array rows;
  const std::int64_t* row_ptr = nullptr;
  std::int64_t n_out = n;
  if (!rows_in.is_none()) {
    if (!py::isinstance<py::array>(rows_in))
      throw grimsim::InvalidArgument("rows must be None or an int64 numpy array");
    rows = require_dtype(rows_in.cast<py::array>(), "rows", 1, 'i');
    grimsim::check((rows.flags() & py::array::c_style) != 0, "rows must be contiguous");
    row_ptr = static_cast<const std::int64_t*>(rows.data());
    n_out = rows.shape(0);
  }
  // a single row or column is both C- and Fortran-contiguous: either stride pair serves
  const std::int64_t row_stride = f_order ? 1 : n_cols;
  const std::int64_t col_stride = f_order ? n : 1;
  py::array_t<double> out(static_cast<py::ssize_t>(n_out));
  double* o = out.mutable_data();
  for (std::int64_t i = 0; i < n_out; ++i) o[i] = base;
  {
    py::gil_scoped_release release;
    grimsim::oblivious_predict(static_cast<const double*>(x.data()) + first_column * col_stride,
                               n, n_cols - first_column, row_stride, col_stride, row_ptr, n_out,
                               static_cast<const std::int64_t*>(feats.data()),
                               static_cast<const double*>(thr.data()),
                               static_cast<const double*>(leaves.data()), n_trees,
                               static_cast<int>(depth), o);
  }
  return out;
}

}  // namespace

void register_trees(py::module_& m) {
  m.def("oblivious_predict", &oblivious_predict, py::arg("x"), py::arg("features"),
        py::arg("thresholds"), py::arg("leaves"), py::arg("base") = 0.0,
        py::arg("rows") = py::none(), py::arg("first_column") = 0,
        "base + the leaf of every oblivious tree for each row of x (float64, n x features): "
        "a row goes right at level d of tree t when x[features[t, d]] > thresholds[t, d] "
        "(its leaf index then has bit d set). features (int64) and thresholds are trees x "
        "depth, leaves trees x 2**depth. rows (int64): answer only these rows of x, in this "
        "order; first_column: the trees' feature 0 is x's column first_column.");
}

}  // namespace grimsim_bind
