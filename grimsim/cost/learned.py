"""The learned correction: a residual model on top of the analytical CPU model.

``CorrectionRegressor`` is a scikit-learn estimator (``get_params``/``set_params``, ``fit``/
``predict``, no work in ``__init__``) predicting ``log(measured / analytical)`` from the named
``CORRECTION_FEATURES``. It is gradient boosting over *oblivious* trees (every node of a
level splits on the same feature and threshold, as in CatBoost): a tree is D (feature,
threshold) pairs and 2**D leaf values, so a batch of rows is scored with one vectorised
comparison per level and one table lookup per tree - no per-node gathers - which keeps the
calibrated model near the analytical model's throughput. Its spread comes from held-out
residuals: out-of-fold residuals (folds grouped by GEMM shape when groups are given) train a
small second ensemble for the residual scale, and the band is the conformal quantiles of the
residuals over that scale.

Everything fitted is plain arrays, persisted as JSON (``save_correction`` /
``load_correction``; never a pickle) with training metadata. Predicting needs only numpy;
scikit-learn is used when installed for input validation and the estimator checks.

``CalibratedModel(analytical, correction)`` implements the ``CostModel`` protocol: latency =
analytical x exp(correction), band from the spread, provenance ``calibrated:<profile id>``.
``load_cost_model(profile, unit)`` gives the right model for a profile (calibrated when the
profile names a correction artefact, else analytical).
"""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grimsim.cost.features import (
    CORRECTION_FEATURES,
    GEMM_KERNELS,
    STACKED_FEATURES,
    correction_features,
    feature_machine,
    one_thread_estimate,
    one_thread_name,
    stacked_features,
)
from grimsim.cost.profile import DeviceProfile, user_data_dir
from grimsim.cost.protocol import CostModel, EstimateBatch
from grimsim.cost.rows import CostRows
from grimsim.errors import CalibrationError, GrimsimError


@functools.cache
def _sklearn_validation() -> Any:
    """``sklearn.utils.validation`` when scikit-learn is installed (imported on first use:
    predicting with a fitted correction never needs it), else None."""
    try:
        from sklearn.utils import validation
    except ImportError:  # pragma: no cover - minimal installs
        return None
    return validation


class _Estimator:
    """The scikit-learn estimator contract without importing scikit-learn: parameters from
    the ``__init__`` signature (``get_params``/``set_params``), tags, ``score`` (R^2)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Any:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator "
                                 f"{type(self).__name__}. Valid parameters are: {valid!r}.")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()
                            if defaults.get(k) is not v and defaults.get(k) != v)
        return f"{type(self).__name__}({changed})"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True),
                    transformer_tags=None, classifier_tags=None,
                    regressor_tags=RegressorTags(), input_tags=InputTags())

    def score(self, X: Any, y: Any) -> float:
        """Coefficient of determination R^2 of ``predict(X)`` against ``y``."""
        y = np.asarray(y, dtype=np.float64).ravel()
        pred = self.predict(X)  # type: ignore[attr-defined]
        total = float(np.sum((y - y.mean()) ** 2))
        resid = float(np.sum((y - pred) ** 2))
        return 1.0 - resid / total if total > 0 else (1.0 if resid == 0 else 0.0)


__all__ = [
    "ARTEFACT_FORMAT",
    "CalibratedModel",
    "CalibrationError",
    "Correction",
    "CorrectionRegressor",
    "FamilyEnsemble",
    "GroupedEnsemble",
    "ObliviousEnsemble",
    "StaleCorrectionError",
    "artefact_path",
    "fit_ensemble",
    "load_correction",
    "load_cost_model",
    "save_correction",
]

log = logging.getLogger(__name__)


class StaleCorrectionError(CalibrationError):
    """A correction artefact written by a grimsim with other features or another schema:
    valid once, but this grimsim cannot apply it (fit the calibration points again)."""


ARTEFACT_FORMAT = "grimsim-correction"
ARTEFACT_SCHEMA = 1
#: Largest |log correction| a model may predict: x0.05..x20 (beyond that the analytical model
#: is wrong in kind, not degree, and a clip keeps one bad leaf from producing absurd numbers).
_MAX_LOG = math.log(20.0)
#: Kernel families of the correction's members (``kernel_families``): packed BCR; the
#: row-wise sparse formats; the dense engine's kernels.
DEFAULT_KERNEL_FAMILIES = "bcr;csr,nm,pattern;gemm,gemv,im2col+gemm,winograd,depthwise"
#: Most values a split column may take (thread counts: 1, 2, 4, 8, ...).
_MAX_SPLIT_VALUES = 16
_NEVER = float(np.finfo(np.float64).max)  # threshold of a level that sends every row left



# --------------------------------------------------------------------------------------------
# Oblivious gradient-boosted trees (numpy)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ObliviousEnsemble:
    """Fitted oblivious trees: ``features``/``thresholds`` (trees x depth) and ``leaves``
    (trees x 2**depth); a row goes right at level d when ``x[features[t, d]] >
    thresholds[t, d]``, and its leaf index has bit d set then."""

    base: float
    features: np.ndarray
    thresholds: np.ndarray
    leaves: np.ndarray

    @property
    def n_trees(self) -> int:
        return int(self.features.shape[0])

    @property
    def depth(self) -> int:
        return int(self.features.shape[1])

    def predict(self, X: np.ndarray, chunk: int = 16384) -> np.ndarray:
        """Sum of the base and every tree's leaf for each row of ``X`` (n x features)."""
        X = np.asfortranarray(X, dtype=np.float64)  # columns contiguous: one pass per level
        n = X.shape[0]
        out = np.full(n, self.base, dtype=np.float64)
        if self.n_trees == 0 or n == 0:
            return out
        feats = self.features.tolist()
        thrs = self.thresholds.tolist()
        # leaf indices as bytes (depth <= 8) and chunks that stay in L2: the loop is bound
        # by memory traffic, not arithmetic
        dtype = np.uint8 if self.depth <= 8 else np.uint16
        weights = [dtype(1 << d) for d in range(self.depth)]
        leaf_buf = np.empty(min(n, chunk), dtype)
        bit_buf = np.empty(min(n, chunk), bool)
        step_buf = np.empty(min(n, chunk), dtype)
        for start in range(0, n, chunk):
            xc = X[start:start + chunk]
            m = xc.shape[0]
            acc = out[start:start + chunk]
            leaf, bit, step = leaf_buf[:m], bit_buf[:m], step_buf[:m]
            columns = [xc[:, f] for f in range(xc.shape[1])]
            for t in range(self.n_trees):
                f_t, th_t = feats[t], thrs[t]
                np.greater(columns[f_t[0]], th_t[0], out=bit)
                leaf[...] = bit
                for d in range(1, self.depth):
                    np.greater(columns[f_t[d]], th_t[d], out=bit)
                    np.multiply(bit, weights[d], out=step)
                    leaf |= step
                acc += self.leaves[t][leaf]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"base": float(self.base), "depth": self.depth,
                "features": self.features.tolist(),
                "thresholds": self.thresholds.tolist(), "leaves": self.leaves.tolist()}

    @staticmethod
    def from_dict(data: Any, n_features: int, where: str) -> ObliviousEnsemble:
        """Validate and rebuild (CalibrationError naming ``where`` on anything odd)."""
        if not isinstance(data, Mapping):
            raise CalibrationError(f"{where}: expected an object with base, features, "
                                   "thresholds, leaves")
        try:
            base = float(data["base"])
            depth = int(data["depth"])
            feats = np.asarray(data["features"], dtype=np.int64)
            thr = np.asarray(data["thresholds"], dtype=np.float64)
            leaves = np.asarray(data["leaves"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{where}: malformed tree arrays ({exc})") from None
        if not 0 <= depth <= 16:
            raise CalibrationError(f"{where}: tree depth {depth} must be in [0, 16]")
        if feats.size == 0:
            feats = feats.reshape(0, depth)
            thr = thr.reshape(0, depth)
            leaves = leaves.reshape(0, 1 << depth)
        if feats.ndim != 2 or thr.shape != feats.shape or feats.shape[1] != depth:
            raise CalibrationError(f"{where}: features and thresholds must be equal 2-D "
                                   f"arrays, got {feats.shape} and {thr.shape}")
        if leaves.shape != (feats.shape[0], 1 << depth):
            raise CalibrationError(f"{where}: leaves must have shape "
                                   f"({feats.shape[0]}, {1 << depth}), got {leaves.shape}")
        if feats.size and (feats.min() < 0 or feats.max() >= n_features):
            raise CalibrationError(f"{where}: feature indices must lie in [0, {n_features})")
        if not (math.isfinite(base) and np.isfinite(leaves).all() and not np.isnan(thr).any()):
            raise CalibrationError(f"{where}: non-finite values")
        return ObliviousEnsemble(base=base, features=feats.astype(np.intp), thresholds=thr,
                                 leaves=leaves)


@dataclass(frozen=True, eq=False)
class GroupedEnsemble:
    """One ``ObliviousEnsemble`` per value of a split column (``column``; None: one
    ensemble for every row): a row takes the member whose ``values`` entry is nearest its
    own on a log scale (so 3 threads take the 2- or 4-thread member), ties to the lower.

    Stacked (``stack_width`` = w, the rows' columns being w features followed by the same w
    features of the row on one thread, ``STACKED_FEATURES``): every row gets the ``base``
    member's (the one-thread one's) answer on its one-thread columns - for a one-thread row,
    its own - and a row of another member adds that member's answer on its first w columns
    (the members then learn the multi-thread correction over the one-thread one)."""

    column: int | None
    values: np.ndarray
    members: tuple[ObliviousEnsemble, ...]
    stack_width: int | None = None
    base: int = 0

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.column is None or len(self.members) == 1:
            return self.members[0].predict(X)
        X = np.asfortranarray(X, dtype=np.float64)
        pick = self.member_of(X[:, self.column])
        w = self.stack_width
        own = X if w is None else X[:, :w]
        # stacked: every row's one-thread answer first (a one-thread row's columns are its own)
        out = np.zeros(X.shape[0]) if w is None else self.members[self.base].predict(X[:, w:])
        for i, member in enumerate(self.members):
            rows = np.flatnonzero(pick == i)
            if rows.size and not (w is not None and i == self.base):
                out[rows] += member.predict(own[rows])
        return out

    def member_of(self, v: np.ndarray) -> np.ndarray:
        """Index of the member each value takes."""
        key = np.log2(np.maximum(np.asarray(v, dtype=np.float64), 1e-9))
        ref = np.log2(np.maximum(self.values, 1e-9))
        return np.argmin(np.abs(key[:, None] - ref[None, :]), axis=1)

    def to_dict(self) -> dict[str, Any]:
        """A single member as a plain ``ObliviousEnsemble`` (the format before the split)."""
        if self.column is None and self.stack_width is None:
            return self.members[0].to_dict()
        out: dict[str, Any] = {"column": self.column,
                               "values": [float(v) for v in self.values],
                               "members": [m.to_dict() for m in self.members]}
        if self.stack_width is not None:
            out.update(stack_width=self.stack_width, base=self.base)
        return out

    @staticmethod
    def from_dict(data: Any, n_features: int, where: str) -> GroupedEnsemble:
        """Validate and rebuild; a plain ``ObliviousEnsemble`` (artefacts before the split)
        becomes a single member."""
        if isinstance(data, Mapping) and "members" not in data:
            return GroupedEnsemble(None, np.zeros(1),
                                   (ObliviousEnsemble.from_dict(data, n_features, where),))
        if not isinstance(data, Mapping):
            raise CalibrationError(f"{where}: expected an object with column, values, members")
        column, values, members = data.get("column"), data.get("values"), data.get("members")
        width, base = data.get("stack_width"), data.get("base", 0)
        if column is not None and (not isinstance(column, int) or not
                                   0 <= column < n_features):
            raise CalibrationError(f"{where}: column must be null or a feature index in "
                                   f"[0, {n_features})")
        if (not isinstance(values, list) or not isinstance(members, list) or not members
                or len(values) != len(members)
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)):
            raise CalibrationError(f"{where}: values and members must be equal non-empty "
                                   "lists (finite values)")
        if width is not None and (not isinstance(width, int) or 2 * width != n_features
                                  or (column is not None and column >= width)):
            raise CalibrationError(f"{where}: stack_width must be half the {n_features} "
                                   "features, past the split column")
        if not isinstance(base, int) or not 0 <= base < len(members):
            raise CalibrationError(f"{where}: base must index one of the {len(members)} "
                                   "members")
        per_member = n_features if width is None else width
        return GroupedEnsemble(column, np.asarray(values, dtype=np.float64), tuple(
            ObliviousEnsemble.from_dict(m, per_member, f"{where}.members[{i}]")
            for i, m in enumerate(members)), stack_width=width, base=base)


@dataclass(frozen=True, eq=False)
class FamilyEnsemble:
    """One ``GroupedEnsemble`` per family of kernels: a row whose one-hot kernel columns
    ``columns[i]`` (``kernel=<name>`` features) hold a 1 takes ``members[i]``; a row of no
    family (a kernel whose family had too few training rows) takes ``rest``, fitted on every
    row (None when every family has its member)."""

    columns: tuple[tuple[int, ...], ...]
    members: tuple[GroupedEnsemble, ...]
    rest: GroupedEnsemble | None = None

    def family_of(self, X: np.ndarray) -> np.ndarray:
        """Index of each row's family (-1: none)."""
        return _family_index(X, self.columns)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asfortranarray(X, dtype=np.float64)
        family = self.family_of(X)
        out = np.zeros(X.shape[0])
        for key, member in [*enumerate(self.members), (-1, self.rest)]:
            rows = np.flatnonzero(family == key)
            if rows.size == 0:
                continue
            if member is None:
                raise GrimsimError("a row of no kernel family reached a correction without "
                                   "a member for such rows")
            # a batch of one family (a query of one scheme) is answered without a copy
            out[rows] = member.predict(X if rows.size == out.size else X[rows])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"families": [list(c) for c in self.columns],
                "members": [m.to_dict() for m in self.members],
                "rest": None if self.rest is None else self.rest.to_dict()}

    @staticmethod
    def from_dict(data: Any, n_features: int, where: str) -> GroupedEnsemble | FamilyEnsemble:
        """Validate and rebuild; an ensemble without families (artefacts before them) comes
        back as the ``GroupedEnsemble`` it is."""
        if not isinstance(data, Mapping) or "families" not in data:
            return GroupedEnsemble.from_dict(data, n_features, where)
        families, members, rest = data["families"], data.get("members"), data.get("rest")
        if (not isinstance(families, list) or not isinstance(members, list)
                or len(families) != len(members) or not families):
            raise CalibrationError(f"{where}: families and members must be equal non-empty "
                                   "lists")
        columns = []
        for i, cols in enumerate(families):
            if (not isinstance(cols, list) or not cols
                    or not all(isinstance(c, int) and 0 <= c < n_features for c in cols)):
                raise CalibrationError(f"{where}.families[{i}]: must list feature indices in "
                                       f"[0, {n_features})")
            columns.append(tuple(cols))
        return FamilyEnsemble(tuple(columns), tuple(
            GroupedEnsemble.from_dict(m, n_features, f"{where}.members[{i}]")
            for i, m in enumerate(members)),
            None if rest is None else GroupedEnsemble.from_dict(rest, n_features,
                                                                f"{where}.rest"))


def _family_index(X: np.ndarray, columns: Sequence[tuple[int, ...]]) -> np.ndarray:
    """Index into ``columns`` of the family whose one-hot kernel columns hold a 1 in each
    row of ``X`` (-1: none)."""
    family = np.full(X.shape[0], -1)
    for i, cols in enumerate(columns):
        family[np.any(X[:, list(cols)] > 0.5, axis=1)] = i
    return family


def _thresholds(x: np.ndarray, max_bins: int) -> np.ndarray:
    """Candidate split thresholds of one feature: midpoints between distinct quantiles."""
    values = np.unique(x)
    if values.size > max_bins:
        values = np.unique(np.quantile(x, np.linspace(0.0, 1.0, max_bins + 1)))
    if values.size < 2:
        return np.zeros(0)
    mids = np.unique((values[:-1] + values[1:]) / 2.0)
    return mids[mids < values[-1]]


def fit_ensemble(X: np.ndarray, y: np.ndarray, *, n_estimators: int = 200, max_depth: int = 5,
                 learning_rate: float = 0.1, max_bins: int = 64, l2: float = 1.0,
                 subsample: float = 0.8, colsample: float = 1.0, loss: str = "huber",
                 rng: np.random.Generator | None = None) -> ObliviousEnsemble:
    """Gradient boosting of oblivious trees on (X, y), squared or Huber loss.

    Each level picks the (feature, threshold) with the largest drop of the L2-regularised
    squared error summed over all current leaves, from histograms of the residuals over the
    feature bins; leaves take the regularised mean residual times ``learning_rate``. Huber
    clips residuals at their 90th percentile each round (robust to noisy timings).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, n_feat = X.shape
    base = float(np.median(y) if loss == "huber" else np.mean(y))
    if n == 0:
        return ObliviousEnsemble(base, np.zeros((0, max_depth), np.intp),
                                 np.zeros((0, max_depth)), np.zeros((0, 1 << max_depth)))
    thr = [_thresholds(X[:, f], max_bins) for f in range(n_feat)]
    nb = np.array([t.size + 1 for t in thr])  # bins per feature
    off = np.concatenate([[0], np.cumsum(nb)[:-1]])
    total_bins = int(nb.sum())
    # bin(x) = number of thresholds below x, so "x > thr[j]" is "bin > j"
    xb = np.column_stack([np.searchsorted(thr[f], X[:, f], side="left")
                          for f in range(n_feat)]).astype(np.int64)
    gidx = xb + off[None, :]
    # split position p (global bin index) is valid unless it is the last bin of its feature
    valid = np.ones(total_bins, bool)
    valid[off + nb - 1] = False
    feat_of = np.repeat(np.arange(n_feat), nb)
    seg_first = np.repeat(off, nb)
    pred = np.full(n, base)
    feats = np.zeros((n_estimators, max_depth), np.intp)
    thrs = np.full((n_estimators, max_depth), _NEVER)
    leaves = np.zeros((n_estimators, 1 << max_depth))
    for t in range(n_estimators):
        r = y - pred
        if loss == "huber":
            delta = float(np.quantile(np.abs(r), 0.9)) or 1e-12
            r = np.clip(r, -delta, delta)
        sel = np.less(rng.random(n), subsample) if subsample < 1.0 else np.ones(n, bool)
        if sel.sum() < 2:
            sel[:] = True
        allowed = valid.copy()
        if colsample < 1.0:
            keep = np.less(rng.random(n_feat), colsample)
            if not keep.any():
                keep[rng.integers(n_feat)] = True
            allowed &= keep[feat_of]
        rs, gs = r[sel], gidx[sel]
        rs_rep = np.repeat(rs, n_feat)
        leaf = np.zeros(int(sel.sum()), np.int64)
        leaf_all = np.zeros(n, np.int64)
        for d in range(max_depth):
            n_leaves = 1 << d
            index = (leaf[:, None] * total_bins + gs).ravel()
            hs = np.bincount(index, weights=rs_rep,
                             minlength=n_leaves * total_bins).reshape(n_leaves, total_bins)
            hc = np.bincount(index, minlength=n_leaves * total_bins).reshape(
                n_leaves, total_bins).astype(np.float64)
            cs, cc = np.cumsum(hs, axis=1), np.cumsum(hc, axis=1)
            # cumulative sums restart at each feature's first bin
            before_s = np.where(seg_first > 0, cs[:, np.maximum(seg_first - 1, 0)], 0.0)
            before_c = np.where(seg_first > 0, cc[:, np.maximum(seg_first - 1, 0)], 0.0)
            left_s, left_c = cs - before_s, cc - before_c
            tot_s = hs[:, off[0]:off[0] + nb[0]].sum(axis=1, keepdims=True)
            tot_c = hc[:, off[0]:off[0] + nb[0]].sum(axis=1, keepdims=True)
            right_s, right_c = tot_s - left_s, tot_c - left_c
            gain = (left_s ** 2 / (left_c + l2) + right_s ** 2 / (right_c + l2)).sum(axis=0)
            separates = (left_c.sum(axis=0) > 0) & (right_c.sum(axis=0) > 0)
            gain = np.where(allowed & separates, gain, -np.inf)
            best = int(np.argmax(gain))
            if not np.isfinite(gain[best]):
                continue  # nothing left to split: this level sends every row left
            f = int(feat_of[best])
            j = best - int(off[f])
            feats[t, d] = f
            thrs[t, d] = thr[f][j]
            leaf |= (gs[:, f] - off[f] > j).astype(np.int64) << d
            leaf_all |= (xb[:, f] > j).astype(np.int64) << d
        sums = np.bincount(leaf, weights=rs, minlength=1 << max_depth)
        counts = np.bincount(leaf, minlength=1 << max_depth)
        values = learning_rate * sums / (counts + l2)
        leaves[t] = values
        pred += values[leaf_all]
    return ObliviousEnsemble(base=base, features=feats, thresholds=thrs, leaves=leaves)


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------
def _check_X(est: Any, X: Any, *, reset: bool, y: Any = None) -> Any:
    validation = _sklearn_validation()
    if validation is not None:
        if reset:
            return validation.validate_data(est, X, y, y_numeric=True)
        return validation.validate_data(est, X, reset=False)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError("X must be a finite 2-D array")
    if reset:
        y_arr = np.asarray(y, dtype=np.float64).ravel()
        if y_arr.shape[0] != X.shape[0] or not np.isfinite(y_arr).all():
            raise ValueError("y must be finite with one value per row of X")
        est.n_features_in_ = X.shape[1]
        return X, y_arr
    if X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is "
                         f"expecting {est.n_features_in_} features as input")
    return X


def _group_folds(n: int, groups: np.ndarray | None, folds: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Fold number of each row; rows of one group share a fold (held-out shapes)."""
    if groups is None:
        return rng.permutation(n) % folds
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(inverse.max()) + 1 if n else 0
    fold_of_group = rng.permutation(n_groups) % folds
    return np.asarray(fold_of_group[inverse])


class CorrectionRegressor(_Estimator):
    """Gradient-boosted oblivious trees predicting log(measured / analytical), with a band.

    Parameters: ``n_estimators``, ``max_depth``, ``learning_rate``, ``max_bins``,
    ``l2_regularization``, ``subsample``, ``colsample``, ``loss`` (``huber`` or ``squared``)
    for the main ensemble; ``band_level`` (central coverage of the band, 0.9 = 5%..95%),
    ``band_folds`` (out-of-fold refits for held-out residuals; below 2, in-sample residuals)
    and ``scale_estimators`` (trees of the residual-scale model); ``feature_names`` (names
    of the columns, kept in the artefact); ``split_feature``: one ensemble per value of
    this named column when it takes 2-16 values with at least ``min_split_rows`` training
    rows each (else, or None, one ensemble; needs ``feature_names``); ``stack_threads``:
    when the columns are ``STACKED_FEATURES`` (each row's features, then the same row's on
    one thread) and the split has a one-thread member, the other members learn what remains
    over that member's answer on the row's one-thread columns; ``kernel_families``:
    families of kernels (``"bcr;csr,nm,pattern;..."``, found through the ``kernel=<name>``
    one-hot features) each with its own ensemble (split and stacked as above) when it has at
    least ``min_family_rows`` training rows - rows of other families take an ensemble fitted
    on every row (None: one for all); ``random_state``.

    Stacking lets the multi-thread answers start from the one-thread model, trained on the
    timings that repeat best: on held-out shapes of two host calibrations (Zen 4,
    2026-11-28, three shape splits each) the 2-thread rows gained 2.3-2.7 points within 10 %
    (all rows 1.1-1.3).

    The split is on ``threads`` by default: the 1-thread timings repeat within 5 % far more
    often than the multi-thread ones (88 % against 50 % on the 2-vCPU development VM), and one
    ensemble over both let the multi-thread noise into the 1-thread answers - separate ones
    scored 1.8-1.9 points more within 10 % on held-out shapes of two host calibrations (mean
    of three shape splits each; 1 thread +2-3 points, 2 threads +1).

    ``fit(X, y, groups=None)``: ``groups`` (e.g. the GEMM shape of each row) keeps the rows
    of a group in one fold, so the band reflects unseen shapes.

    A kernel family's residuals follow laws of their own (packed BCR's tiles, the row-wise
    formats' gathers, the dense engine's packing and Winograd transforms): with one ensemble
    per family, the held-out shapes of five host calibrations (Zen 4, 2026-11-28, three shape
    splits each) scored 77.7 / 79.0 / 77.7 / 68.4 / 69.9 % within 10 % against 76.3 / 78.5 /
    77.0 / 68.2 / 68.6 % with one ensemble, RMSPE 12.6 / 10.5 / 11.4 / 12.9 / 12.5 against
    12.5 / 9.8 / 11.5 / 12.6 / 12.7 % (the last two on a busier machine).

    Defaults (depth 6, squared loss, 200 trees) were chosen on the host calibration's
    held-out shapes (three random shape splits): depth 5 underfits (+1-2 points of RMSPE),
    Huber clipping discounts real, large residuals (operands spilling a cache or the TLB)
    along with the noisy ones (with the families and 400 trees, 0.8 points more within 10 %
    but 0.3 more RMSPE), and 400 trees at rate 0.05 gain about half a point while halving
    the rows a second that batched queries get.
    """

    # fitted attributes (set by fit / from_dict)
    n_features_in_: int
    ensemble_: GroupedEnsemble | FamilyEnsemble
    scale_: ObliviousEnsemble
    scale_floor_: float
    band_quantiles_: tuple[float, float]
    oof_residuals_: np.ndarray

    def __init__(self, n_estimators: int = 200, max_depth: int = 6, learning_rate: float = 0.1,
                 max_bins: int = 64, l2_regularization: float = 1.0, subsample: float = 0.8,
                 colsample: float = 1.0, loss: str = "squared", band_level: float = 0.9,
                 band_folds: int = 5, scale_estimators: int = 40,
                 feature_names: Sequence[str] | None = None,
                 split_feature: str | None = "threads", min_split_rows: int = 200,
                 stack_threads: bool = True,
                 kernel_families: str | None = DEFAULT_KERNEL_FAMILIES,
                 min_family_rows: int = 400, random_state: int | None = 0) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.max_bins = max_bins
        self.l2_regularization = l2_regularization
        self.subsample = subsample
        self.colsample = colsample
        self.loss = loss
        self.band_level = band_level
        self.band_folds = band_folds
        self.scale_estimators = scale_estimators
        self.feature_names = feature_names
        self.split_feature = split_feature
        self.min_split_rows = min_split_rows
        self.stack_threads = stack_threads
        self.kernel_families = kernel_families
        self.min_family_rows = min_family_rows
        self.random_state = random_state

    # ----------------------------------------------------------------- fitting
    def _check_params(self) -> None:
        if self.loss not in ("huber", "squared"):
            raise ValueError(f"loss must be 'huber' or 'squared', got {self.loss!r}")
        for name, low in (("n_estimators", 0), ("max_depth", 1), ("max_bins", 2),
                          ("scale_estimators", 0), ("band_folds", 0), ("min_split_rows", 1),
                          ("min_family_rows", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.max_depth > 12:
            raise ValueError(f"max_depth must be <= 12, got {self.max_depth}")
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if not 0 < self.subsample <= 1 or not 0 < self.colsample <= 1:
            raise ValueError("subsample and colsample must be in (0, 1]")
        if not 0 < self.band_level < 1:
            raise ValueError(f"band_level must be in (0, 1), got {self.band_level}")
        if self.l2_regularization < 0:
            raise ValueError("l2_regularization must be >= 0")
        self._families()

    def _families(self) -> list[list[str]]:
        """``kernel_families`` parsed: families split by ';', kernels by ','."""
        if self.kernel_families is None:
            return []
        if not isinstance(self.kernel_families, str):
            raise ValueError("kernel_families must be None or a string such as "
                             f"{DEFAULT_KERNEL_FAMILIES!r}")
        families = [[k.strip() for k in part.split(",")]
                    for part in self.kernel_families.split(";")]
        names = [k for fam in families for k in fam]
        if not all(names) or len(set(names)) != len(names):
            raise ValueError(f"kernel_families {self.kernel_families!r}: families are "
                             "';'-separated lists of distinct ','-separated kernel names")
        return families

    def _family_columns(self) -> list[tuple[int, ...]]:
        """The one-hot ``kernel=<name>`` columns of each family whose kernels the feature
        names carry (none without feature names)."""
        names = list(self.feature_names or [])
        out = []
        for fam in self._families():
            cols = tuple(names.index(f"kernel={k}") for k in fam if f"kernel={k}" in names)
            if cols:
                out.append(cols)
        return out

    def _split_column(self) -> int | None:
        names = self.feature_names
        if self.split_feature is None or names is None or self.split_feature not in names:
            return None
        return list(names).index(self.split_feature)

    def _stack_width(self) -> int | None:
        """w when stacking applies: ``stack_threads`` and feature names that are w names
        followed by the same names on one thread (``STACKED_FEATURES``)."""
        names = self.feature_names
        if not self.stack_threads or names is None or len(names) % 2:
            return None
        w = len(names) // 2
        return w if list(names[w:]) == [one_thread_name(n) for n in names[:w]] else None

    def _fit_main(self, X: np.ndarray, y: np.ndarray, seed: int
                  ) -> GroupedEnsemble | FamilyEnsemble:
        """One ensemble per kernel family with ``min_family_rows`` rows, the rest (if any
        family has fewer) on every row; one ensemble when no family applies."""
        columns = self._family_columns()
        if not columns:
            return self._fit_grouped(X, y, seed)
        family = _family_index(X, columns)
        counts = np.bincount(family + 1, minlength=len(columns) + 1)[1:]
        keep = [i for i in range(len(columns)) if counts[i] >= self.min_family_rows]
        if not keep:
            return self._fit_grouped(X, y, seed)
        # rows of no kept family (a small family's, or none) need an ensemble over every row
        rest = None if np.isin(family, keep).all() else self._fit_grouped(X, y, seed)
        # a random stream of its own per family (the rest takes the fit's own)
        return FamilyEnsemble(tuple(columns[i] for i in keep), tuple(
            self._fit_grouped(X[family == i], y[family == i], seed + 7 * (i + 1))
            for i in keep), rest)

    def _fit_grouped(self, X: np.ndarray, y: np.ndarray, seed: int) -> GroupedEnsemble:
        width = self._stack_width()

        def one(rows: np.ndarray | slice, cols: slice, target: np.ndarray) -> ObliviousEnsemble:
            return fit_ensemble(X[rows][:, cols], target, n_estimators=self.n_estimators,
                                max_depth=self.max_depth, learning_rate=self.learning_rate,
                                max_bins=self.max_bins, l2=self.l2_regularization,
                                subsample=self.subsample, colsample=self.colsample,
                                loss=self.loss, rng=np.random.default_rng(seed))

        own = slice(None) if width is None else slice(0, width)
        column = self._split_column()
        if column is not None:
            values, counts = np.unique(X[:, column], return_counts=True)
            if 2 <= values.size <= _MAX_SPLIT_VALUES and counts.min() >= self.min_split_rows:
                groups = [np.flatnonzero(X[:, column] == v) for v in values]
                if width is None or values[0] != 1.0:
                    return GroupedEnsemble(column, values.astype(np.float64), tuple(
                        one(rows, own, y[rows]) for rows in groups))
                # the one-thread member first; the others learn what remains on their rows
                # (their target less its answer on their one-thread columns, in sample)
                base = one(groups[0], own, y[groups[0]])
                members = [base] + [
                    one(rows, own, y[rows] - base.predict(X[rows, width:]))
                    for rows in groups[1:]]
                return GroupedEnsemble(column, values.astype(np.float64), tuple(members),
                                       stack_width=width, base=0)
        return GroupedEnsemble(None, np.zeros(1), (one(slice(None), own, y),))

    def fit(self, X: Any, y: Any, groups: Any = None) -> CorrectionRegressor:
        """Fit the ensemble on all rows, then the band from out-of-fold residuals."""
        self._check_params()
        X, y = _check_X(self, X, reset=True, y=y)
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        seed = int(np.random.default_rng(self.random_state).integers(2**31))
        rng = np.random.default_rng(seed)
        n = X.shape[0]
        grp = None if groups is None else np.asarray(groups)
        if grp is not None and grp.shape[0] != n:
            raise ValueError(f"groups has {grp.shape[0]} values for {n} rows")
        self.ensemble_ = self._fit_main(X, y, seed)
        n_groups = n if grp is None else np.unique(grp).size
        folds = min(self.band_folds, n_groups)
        if folds >= 2:
            fold = _group_folds(n, grp, folds, rng)
            oof = np.empty(n)
            for k in range(folds):
                test = fold == k
                part = self._fit_main(X[~test], y[~test], seed + k + 1)
                oof[test] = part.predict(X[test])
            resid = y - oof
        else:
            resid = y - self.ensemble_.predict(X)
        self.oof_residuals_ = resid
        self._fit_band(X, resid, seed)
        return self

    def _fit_band(self, X: np.ndarray, resid: np.ndarray, seed: int) -> None:
        magnitude = np.abs(resid)
        floor = max(float(np.median(magnitude)) * 0.25, 1e-4)
        if self.scale_estimators > 0 and resid.size >= 4:
            self.scale_ = fit_ensemble(X, magnitude, n_estimators=self.scale_estimators,
                                       max_depth=3, learning_rate=0.1,
                                       max_bins=self.max_bins, l2=self.l2_regularization,
                                       subsample=1.0, loss="squared",
                                       rng=np.random.default_rng(seed + 101))
        else:
            self.scale_ = ObliviousEnsemble(float(np.mean(magnitude)) if resid.size else floor,
                                            np.zeros((0, 1), np.intp), np.zeros((0, 1)),
                                            np.zeros((0, 2)))
        self.scale_floor_ = floor
        z = resid / np.maximum(self.scale_.predict(X), floor)
        tail = (1.0 - self.band_level) / 2.0
        self.band_quantiles_ = (float(np.quantile(z, tail)) if z.size else 0.0,
                                float(np.quantile(z, 1.0 - tail)) if z.size else 0.0)

    # ----------------------------------------------------------------- predicting
    def predict(self, X: Any) -> np.ndarray:
        """The log correction of each row."""
        self._require_fitted()
        X = _check_X(self, X, reset=False)
        return np.clip(self.ensemble_.predict(np.asarray(X, dtype=np.float64)),
                       -_MAX_LOG, _MAX_LOG)

    def predict_band(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log correction, low, high) per row: the band covers ``band_level`` of held-out
        residuals."""
        self._require_fitted()
        return self._band(np.asarray(_check_X(self, X, reset=False), dtype=np.float64))

    def _band(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``predict_band`` on an already valid float64 matrix (the cost model's own)."""
        pred = np.clip(self.ensemble_.predict(X), -_MAX_LOG, _MAX_LOG)
        scale = np.maximum(self.scale_.predict(X), self.scale_floor_)
        q_lo, q_hi = self.band_quantiles_
        return pred, pred + min(q_lo, 0.0) * scale, pred + max(q_hi, 0.0) * scale

    def _require_fitted(self) -> None:
        if hasattr(self, "ensemble_"):
            return
        validation = _sklearn_validation()
        if validation is not None:
            validation.check_is_fitted(self, "ensemble_")
        raise GrimsimError("CorrectionRegressor is not fitted yet; call fit first")

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """Plain data of the fitted model (parameters and arrays), for JSON."""
        self._require_fitted()
        params = self.get_params()
        if params["feature_names"] is not None:
            params["feature_names"] = list(params["feature_names"])
        return {"kind": "oblivious-boosting", "params": params,
                "n_features_in": int(self.n_features_in_),
                "ensemble": self.ensemble_.to_dict(), "scale": self.scale_.to_dict(),
                "scale_floor": float(self.scale_floor_),
                "band_quantiles": [float(q) for q in self.band_quantiles_]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "correction") -> CorrectionRegressor:
        """Rebuild a fitted regressor from ``to_dict`` output (validated)."""
        if not isinstance(data, Mapping) or data.get("kind") != "oblivious-boosting":
            raise CalibrationError(f"{where}: not an oblivious-boosting model (key 'kind')")
        params = data.get("params")
        if not isinstance(params, Mapping):
            raise CalibrationError(f"{where}: key 'params' must be an object")
        try:
            est = cls(**dict(params))
            est._check_params()
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{where}: bad parameters ({exc})") from None
        n_feat = data.get("n_features_in")
        if not isinstance(n_feat, int) or n_feat < 1:
            raise CalibrationError(f"{where}: key 'n_features_in' must be a positive integer")
        bq = data.get("band_quantiles")
        floor = data.get("scale_floor")
        if (not isinstance(bq, list) or len(bq) != 2
                or not all(isinstance(q, (int, float)) and math.isfinite(q) for q in bq)):
            raise CalibrationError(f"{where}: key 'band_quantiles' must be two numbers")
        if not isinstance(floor, (int, float)) or not floor > 0:
            raise CalibrationError(f"{where}: key 'scale_floor' must be a positive number")
        est.n_features_in_ = n_feat
        est.ensemble_ = FamilyEnsemble.from_dict(data.get("ensemble"), n_feat,
                                                 f"{where}.ensemble")
        est.scale_ = ObliviousEnsemble.from_dict(data.get("scale"), n_feat, f"{where}.scale")
        est.scale_floor_ = float(floor)
        est.band_quantiles_ = (float(bq[0]), float(bq[1]))
        return est


# --------------------------------------------------------------------------------------------
# The artefact: a fitted correction with its training metadata
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Correction:
    """A fitted correction and what it was trained on.

    ``meta`` holds at least ``profile`` (the profile id calibrated), ``cache_state`` (of the
    analytical model it corrects), ``kernels`` (kernel kinds seen in training; other rows keep
    the analytical estimate and band), ``n_points``, ``created``, ``grimsim``,
    ``fingerprint`` (the device's).
    """

    regressor: CorrectionRegressor
    feature_names: tuple[str, ...] = CORRECTION_FEATURES
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cache_state(self) -> str:
        return str(self.meta.get("cache_state", "warm"))

    @property
    def kernels(self) -> tuple[str, ...]:
        return tuple(self.meta.get("kernels", GEMM_KERNELS))

    def to_dict(self) -> dict[str, Any]:
        return {"format": ARTEFACT_FORMAT, "schema": ARTEFACT_SCHEMA,
                "feature_names": list(self.feature_names), "meta": dict(self.meta),
                "model": self.regressor.to_dict()}


def save_correction(correction: Correction, path: str | os.PathLike[str]) -> Path:
    """Write ``correction`` as JSON (atomically: a temporary file, then a rename)."""
    target = Path(path)
    text = json.dumps(correction.to_dict(), allow_nan=False, separators=(",", ":"))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def load_correction(path: str | os.PathLike[str]) -> Correction:
    """Read a correction artefact written by ``save_correction`` (JSON only, validated)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalibrationError(f"correction artefact {p}: cannot read it ({exc.strerror}); "
                               "run `grimsim fit` again or fix the profile's "
                               "calibration.artefact") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != ARTEFACT_FORMAT:
        raise CalibrationError(f"{p}: not a grimsim correction artefact (key 'format' must be "
                               f"{ARTEFACT_FORMAT!r})")
    if data.get("schema") != ARTEFACT_SCHEMA:
        raise StaleCorrectionError(f"{p}: artefact schema {data.get('schema')!r}; this grimsim "
                               f"reads schema {ARTEFACT_SCHEMA} (run `grimsim fit` again)")
    names = data.get("feature_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CalibrationError(f"{p}: key 'feature_names' must be a list of names")
    unknown = [n for n in names if n not in STACKED_FEATURES]
    if unknown or len(set(names)) != len(names):
        # an artefact on a subset of today's features still applies (older grimsims had
        # fewer); one naming features this grimsim does not compute does not
        raise StaleCorrectionError(
            f"{p}: trained on features this grimsim does not compute "
            f"({', '.join(unknown[:3]) or 'repeated names'}); run `grimsim fit` on the "
            "calibration points again")
    meta = data.get("meta")
    if not isinstance(meta, dict):
        raise CalibrationError(f"{p}: key 'meta' must be an object")
    reg = CorrectionRegressor.from_dict(data.get("model"), f"{p}: model")
    if reg.n_features_in_ != len(names):
        raise CalibrationError(f"{p}: model has {reg.n_features_in_} inputs for "
                               f"{len(names)} feature names")
    return Correction(regressor=reg, feature_names=tuple(names), meta=meta)


# --------------------------------------------------------------------------------------------
# The calibrated cost model
# --------------------------------------------------------------------------------------------
class CalibratedModel:
    """The analytical CPU model times the learned correction (a ``CostModel``).

    ``analytical`` is an ``AnalyticalCPUModel`` (anything with ``estimate(rows)`` and a
    ``profile``); ``correction`` a ``Correction`` (or a fitted ``CorrectionRegressor``).
    Rows whose kernel the correction never saw (cheap element-wise ops, kernels absent from
    the calibration) keep the analytical estimate and its band.
    """

    unit = "cpu"

    def __init__(self, analytical: Any, correction: Correction | CorrectionRegressor) -> None:
        self.analytical = analytical
        self.correction = (correction if isinstance(correction, Correction)
                           else Correction(regressor=correction))
        self.profile: DeviceProfile = analytical.profile
        self._machine = feature_machine(self.profile)
        names = tuple(self.correction.feature_names)
        # a stacked correction reads each row's features on one thread too
        self._stacked = any(n.startswith(one_thread_name("")) for n in names)
        computed = STACKED_FEATURES if self._stacked else CORRECTION_FEATURES
        unknown = sorted(set(names) - set(computed))
        if unknown:
            raise StaleCorrectionError(f"{self.name}: the correction takes features this "
                                       f"grimsim does not compute ({', '.join(unknown[:3])})")
        # the artefact's columns among today's features (older artefacts use a subset)
        self._columns = (None if names == computed
                         else np.asarray([computed.index(n) for n in names]))
        self._kernels = np.asarray(self.correction.kernels, dtype=object)

    @property
    def name(self) -> str:
        return f"calibrated:{self.profile.id}"

    @property
    def provenance(self) -> str:
        return f"calibrated:{self.profile.id}"

    def estimate(self, rows: object) -> EstimateBatch:
        if not isinstance(rows, CostRows):
            raise GrimsimError(f"CalibratedModel.estimate needs CostRows, got "
                               f"{type(rows).__name__}")
        est: EstimateBatch = self.analytical.estimate(rows)
        latency = est.analytical_s.copy()
        lo, hi = est.band_lo_s.copy(), est.band_hi_s.copy()
        known = np.isin(est.kernel, self._kernels) & rows.is_gemm
        idx = np.flatnonzero(known)
        if idx.size:
            sub = rows.take(idx) if idx.size < len(rows) else rows
            sub_est = est if idx.size == len(rows) else _take(est, idx)
            X = (stacked_features(self.analytical, sub, sub_est, self._machine)
                 if self._stacked else
                 correction_features(sub, sub_est, self._machine, one_thread=one_thread_estimate(
                     self.analytical, sub, sub_est)))
            if self._columns is not None:
                X = np.asfortranarray(X[:, self._columns])
            if X.shape[1] != self.correction.regressor.n_features_in_:
                raise CalibrationError(f"{self.name}: the correction takes "
                                       f"{self.correction.regressor.n_features_in_} features, "
                                       f"the rows give {X.shape[1]}")
            corr, c_lo, c_hi = self.correction.regressor._band(X)
            base = est.analytical_s[idx]
            latency[idx] = base * np.exp(corr)
            lo[idx] = base * np.exp(c_lo)
            hi[idx] = base * np.exp(c_hi)
        meta = dict(est.meta)
        meta.update({"model": "calibrated-cpu", "device": self.profile.id, "calibrated": True,
                     "correction": dict(self.correction.meta),
                     "band": f"{self.correction.regressor.band_level:.0%} of held-out "
                             "residuals (calibrated rows)"})
        return replace(est, latency_s=latency, band_lo_s=lo, band_hi_s=hi,
                       provenance=self.provenance, meta=meta)


def _take(est: EstimateBatch, idx: np.ndarray) -> EstimateBatch:
    return replace(est, latency_s=est.latency_s[idx], analytical_s=est.analytical_s[idx],
                   compute_s=est.compute_s[idx], memory_s=est.memory_s[idx],
                   overhead_s=est.overhead_s[idx], overlap_s=est.overlap_s[idx],
                   bound=est.bound[idx], band_lo_s=est.band_lo_s[idx],
                   band_hi_s=est.band_hi_s[idx], kernel=est.kernel[idx])


def artefact_path(profile: DeviceProfile) -> Path | None:
    """Where the profile's correction artefact is: its ``calibration.artefact`` as written
    (absolute), else beside the profile file, else in ``<user data>/corrections``."""
    if profile.calibration is None:
        return None
    given = Path(profile.calibration.artefact).expanduser()
    if given.is_absolute():
        return given
    candidates = []
    if profile.origin:
        candidates.append(Path(profile.origin).parent / given)
    candidates.append(user_data_dir() / "corrections" / given)
    for c in candidates:
        if c.is_file():
            return c
    return candidates[0]


def load_cost_model(profile: DeviceProfile, unit: str = "cpu", *,
                    cache_state: str | None = None) -> CostModel:
    """The cost model for ``profile`` on ``unit``: calibrated when the profile carries a
    correction (CPU only; GPU estimates stay analytical and say so), else analytical.

    ``cache_state`` overrides the one the correction was fitted with (the correction then
    corrects an analytical model in a state it was not trained on: a warning).
    """
    from grimsim.cost.analytical import analytical_model

    if unit == "gpu":
        return analytical_model(profile, "gpu")
    if unit != "cpu":
        raise GrimsimError(f"unit {unit!r} must be 'cpu' or 'gpu'")
    if profile.calibration is None:
        return analytical_model(profile, "cpu", cache_state=cache_state or "warm")
    path = artefact_path(profile)
    assert path is not None
    try:
        correction = load_correction(path)
    except StaleCorrectionError as exc:
        # the calibration points are still good; only the fit is out of date, so the
        # profile stays usable with its analytical model until `grimsim fit` runs again
        log.warning("%s: %s; using the analytical model", profile.id, exc)
        return analytical_model(profile, "cpu", cache_state=cache_state or "warm")
    trained_on = correction.meta.get("profile")
    if isinstance(trained_on, str) and trained_on.split("@")[0] != profile.name:
        log.warning("%s: correction %s was fitted on %s", profile.id, path, trained_on)
    state = cache_state or correction.cache_state
    if state != correction.cache_state:
        log.warning("%s: the correction was fitted against cache state %r, used with %r",
                    profile.id, correction.cache_state, state)
    winograd = str(correction.meta.get("winograd", "engine"))
    return CalibratedModel(analytical_model(profile, "cpu", cache_state=state,
                                            winograd=winograd), correction)


def utc_now() -> str:
    """The current UTC time (ISO 8601, seconds) for artefact metadata."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
