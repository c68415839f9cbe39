"""Workload statistics of a scheme on an M x K matrix WITHOUT weights (pure arithmetic).

Works on Python scalars (one GEMM) and elementwise on numpy arrays (a batch of GEMMs with one
scheme). Kept counts are fixed by the shapes and the scheme (see ``masks`` and ``_plan``), so
nnz, reached sparsity, block counts, kept rows/columns per block, BCR/N:M/CSR/pattern bytes
and per-block-row work are the values a real mask gives, exactly, for every scheme except
where the weights decide how kept entries spread over rows:

* unstructured (CSR): nnz per row is random; mean exact, min/max approximated as the expected
  extremes of M normal draws with the binomial's mean and spread (Blom's plotting position).
* pattern with connectivity pruning: kept kernels per filter, same approximation.

The retained-norm proxy is its expectation under i.i.d. Gaussian weights (``_stats``):

* unstructured: top_fraction(MK, k, 1); filter: top_fraction(M, k, K); column:
  top_fraction(K, k, M); nm: top_fraction(M, N, 1) per group (partial group by its size).
* bcr (rows fixed): rows of a block compete on their energy over the block's c columns, then
  columns on their energy over the kept rows, treated as independent chi2(kept rows) draws:
  top_fraction(r, kr, c) * top_fraction(c, kc, kr); mirrored when columns are fixed.
* block_punched: positions compete on chi2(r x c) energies: top_fraction(P, kept, r c); with
  one position, columns on chi2(r): top_fraction(c, kept, r).
* pattern: a kernel keeps E[max over the library of the pattern energy] / 9 of its energy,
  ``PATTERN_RETAINED``; connectivity pruning then ranks kernels by that pattern energy, whose
  distribution is matched by a scaled chi2 with ``PATTERN_DOF`` degrees of freedom (same mean
  and variance): PATTERN_RETAINED * top_fraction(nk, k, PATTERN_DOF).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from grimsim.pruning import _plan
from grimsim.pruning._plan import clamp, rhu, vmax, vmin, where
from grimsim.pruning._stats import normal_ppf, topf
from grimsim.pruning.scheme import PruningScheme

# Energy of the best library pattern of a 3x3 kernel of i.i.d. N(0,1) weights: mean 6.2763 and
# variance 10.409, by Monte Carlo over 8e6 kernels (numpy default_rng(0); standard error of
# the mean 0.0009); tests/test_pruning_proxy.py re-estimates them.
PATTERN_ENERGY_MEAN = 6.2763
PATTERN_ENERGY_VAR = 10.409
PATTERN_RETAINED = PATTERN_ENERGY_MEAN / 9.0
PATTERN_DOF = 2.0 * PATTERN_ENERGY_MEAN ** 2 / PATTERN_ENERGY_VAR

Stats = dict[str, Any]


def _like(ref: Any, value: Any) -> Any:
    """``value`` broadcast to the shape of ``ref`` (a no-op for scalars)."""
    return value + 0 * ref


def bcr_bytes(n_block_rows: Any, n_blocks: Any, sum_rows: Any, sum_cols: Any,
              stored_values: Any, M: Any) -> Any:
    """BCRFormat.nbytes from its array lengths (formats note)."""
    int32 = 4 * ((n_block_rows + 1) + n_blocks + (n_blocks + 1) + sum_rows + (n_blocks + 1)
                 + sum_cols + M)
    return int32 + 8 * (n_blocks + 1) + 4 * stored_values


def _extremes(mean: Any, sd: Any, count: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
    """Approximate expected min and max of ``count`` draws with this mean and spread."""
    z = normal_ppf((count - 0.375) / (count + 0.25))
    return clamp(mean - z * sd, lo, hi), clamp(mean + z * sd, lo, hi)


def _dist(prefix: str, mean: Any, lo: Any, hi: Any) -> Stats:
    return {f"{prefix}_mean": mean, f"{prefix}_min": lo, f"{prefix}_max": hi}


def expected_stats(scheme: PruningScheme, M: Any, K: Any, positions: Any = 1,
                   proxy: bool = True) -> Stats:
    """nnz, n_blocks, kept rows/cols per block, per-block-row work (``work``), format bytes
    and (when ``proxy``) the expected retained norm of ``scheme`` on M x K."""
    kind = scheme.kind
    one = _like(M, 1)
    if kind == "dense":
        out = {"nnz": M * K, "n_blocks": one, **_dist("rows", M, M, M), **_dist("cols", K, K, K),
               **_dist("work", K, K, K), "format_bytes": 4 * M * K, "proxy": 1.0 * one}
        return out
    if kind == "nm":
        return _nm(scheme, M, K, proxy)
    if kind == "pattern":
        return _pattern(scheme, M, K, proxy)
    s = scheme.sparsity
    assert s is not None
    if kind == "unstructured":
        k = clamp(rhu((1.0 - s) * M * K), 1, M * K)
        mean = k / M
        p = k / (M * K)
        lo, hi = _extremes(mean, (K * p * (1.0 - p)) ** 0.5, M, 0, K)
        return {"nnz": k, "n_blocks": M, **_dist("rows", one, one, one),
                **_dist("cols", mean, lo, hi), **_dist("work", mean, lo, hi),
                "format_bytes": 4 * (M + 1) + 8 * k,
                "proxy": topf(M * K, k, one) if proxy else None}
    if kind in ("filter", "column"):
        rows_kept = clamp(rhu((1.0 - s) * M), 1, M) if kind == "filter" else M
        cols_kept = clamp(rhu((1.0 - s) * K), 1, K) if kind == "column" else K
        nnz = rows_kept * cols_kept
        value = (topf(M, rows_kept, K) if kind == "filter" else topf(K, cols_kept, M)) \
            if proxy else None
        return {"nnz": nnz, "n_blocks": one, **_dist("rows", rows_kept, rows_kept, rows_kept),
                **_dist("cols", cols_kept, cols_kept, cols_kept), **_dist("work", nnz, nnz, nnz),
                "format_bytes": bcr_bytes(1, 1, rows_kept, cols_kept, _plan.ceil16(nnz), M),
                "proxy": value}
    return _blocked(scheme, M, K, positions, proxy)


@lru_cache(maxsize=4096)
def expected_stats_cached(scheme: PruningScheme, M: int, K: int, positions: int) -> Stats:
    """``expected_stats`` of one GEMM, memoised (a pure function of hashable arguments; the
    cost model and the search ask for the same shapes over and over). Do not mutate."""
    return expected_stats(scheme, M, K, positions)


def _nm(scheme: PruningScheme, M: Any, K: Any, proxy: bool) -> Stats:
    n, m = scheme.n, scheme.m
    assert n is not None and m is not None
    full = K // m
    rem = K - full * m
    has_rem = where(rem > 0, 1, 0)
    groups = full + has_rem
    rem_kept = vmin(n, rem)
    per_row = full * n + rem_kept
    value = None
    if proxy:
        value = (full * m * topf(_like(K, m), _like(K, n), _like(K, 1))
                 + rem * topf(rem, rem_kept, _like(K, 1))) / K
    return {"nnz": M * per_row, "n_blocks": M * groups, **_dist("rows", 1 + 0 * M, 1, 1),
            **_dist("cols", per_row / groups, where(rem > 0, rem_kept, n), _like(M, n)),
            **_dist("work", per_row + 0 * M, per_row, per_row),
            "format_bytes": 8 * M * groups * n, "proxy": value}


def _pattern(scheme: PruningScheme, M: Any, K: Any, proxy: bool) -> Stats:
    cin = K // 9
    nk = M * cin
    s = scheme.sparsity
    k = nk if s is None else clamp(rhu((1.0 - s) * 9.0 / 4.0 * nk), 1, nk)
    mean = 4 * k / M
    p = k / nk
    lo, hi = _extremes(mean, 4 * (cin * p * (1.0 - p)) ** 0.5, M, 0, 4 * cin)
    value = PATTERN_RETAINED * topf(nk, k, _like(nk, PATTERN_DOF)) if proxy else None
    n_patterns = 8
    return {"nnz": 4 * k, "n_blocks": k, **_dist("rows", _like(M, 1), 1, 1),
            **_dist("cols", _like(M, 4), 4, 4), **_dist("work", mean, lo, hi),
            "format_bytes": 16 * n_patterns + 4 * (M + 1) + 24 * k + 4 * M, "proxy": value}


def _class_proxy(plan: _plan.Plan, cls: _plan.BlockClass, k: Any) -> Any:
    if plan.mode == "punched":
        return where(plan.positions > 1, topf(plan.positions, k, cls.r * cls.c),
                     topf(cls.c, k, cls.r))
    # the fixed dimension competes first on the whole block, then the derived units on the
    # kept part of the fixed dimension
    return where(cls.derived_rows,
                 topf(cls.c, cls.fixed, cls.r) * topf(cls.r, k, cls.fixed),
                 topf(cls.r, cls.fixed, cls.c) * topf(cls.c, k, cls.fixed))


def _blocked(scheme: PruningScheme, M: Any, K: Any, positions: Any, proxy: bool) -> Stats:
    from grimsim.pruning.masks import bcr_plan

    plan = bcr_plan(scheme, M, K, positions)
    big = math.inf
    sums: dict[str, Any] = {"rows": 0, "cols": 0}
    lows: dict[str, Any] = {"rows": big, "cols": big}
    highs: dict[str, Any] = {"rows": -big, "cols": -big}
    nb: Any = 0
    stored = 0
    retained = 0.0
    scalar = not isinstance(M, np.ndarray)
    for cls in plan.classes:
        for k, blocks in ((cls.q, cls.n - cls.extra), (cls.q + 1, cls.extra)):
            if scalar and (blocks == 0 or k == 0):
                continue  # the fast path for one GEMM: absent classes add nothing
            count = where(k > 0, blocks, 0)  # blocks keeping nothing are not stored
            nb = nb + count
            kept = {"rows": cls.rows_kept(k), "cols": cls.cols_kept(k)}
            for key, value in kept.items():
                sums[key] = sums[key] + count * value
                lows[key] = vmin(lows[key], where(count > 0, value, big))
                highs[key] = vmax(highs[key], where(count > 0, value, -big))
            stored = stored + count * _plan.ceil16(kept["rows"] * kept["cols"])
            if proxy:
                retained = retained + count * cls.entries * _class_proxy(plan, cls, k)
    nnz = plan.nnz
    work_lo, work_hi = _plan.row_work(plan)
    out: Stats = {"nnz": nnz, "n_blocks": nb}
    for key in ("rows", "cols"):
        out.update(_dist(key, sums[key] / vmax(nb, 1), lows[key], highs[key]))
    out.update(_dist("work", nnz / plan.n_block_rows, work_lo, work_hi))
    out["format_bytes"] = bcr_bytes(plan.n_block_rows, nb, sums["rows"], sums["cols"], stored, M)
    out["proxy"] = retained / (M * K) if proxy else None
    return out
