"""Masks: each scheme hits its rate within its stated granularity, keeps its structure, and
keeps the largest groups."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import GrimsimError, SchemeError, ShapeError
from grimsim.pruning import (
    PATTERN_LIBRARY,
    PruningScheme,
    encode,
    make_mask,
    parse_spec,
    reached_sparsity,
)
from grimsim.pruning._plan import fixed_count

rates = st.floats(0.0, 0.99, allow_nan=False)
seeds = st.integers(0, 2**32 - 1)


def _weights(seed: int, M: int, K: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((M, K)).astype(np.float32)


def _blocks(M: int, K: int, R: int, C: int) -> Iterator[tuple[slice, slice]]:
    for i, j in itertools.product(range(0, M, R), range(0, K, C)):
        yield slice(i, min(i + R, M)), slice(j, min(j + C, K))


# --------------------------------------------------------------------------- rate per scheme


def assert_rate(scheme: PruningScheme, mask: np.ndarray, positions: int = 1) -> None:
    """|kept - target| within the scheme's granularity (module docstring of masks.py)."""
    M, K = mask.shape
    nnz = int(mask.sum())
    kept = 1.0 - scheme.target_sparsity
    kind = scheme.kind
    if kind == "dense":
        assert nnz == M * K
    elif kind == "unstructured":
        assert abs(nnz - kept * M * K) <= 0.5 + 1e-9 or nnz == 1
    elif kind == "filter":
        rows = int(mask.any(axis=1).sum())
        assert nnz == rows * K and (abs(rows - kept * M) <= 0.5 + 1e-9 or rows == 1)
    elif kind == "column":
        cols = int(mask.any(axis=0).sum())
        assert nnz == cols * M and (abs(cols - kept * K) <= 0.5 + 1e-9 or cols == 1)
    elif kind == "pattern":
        kernels = nnz / 4
        nk = M * K // 9
        if scheme.sparsity is None:
            assert kernels == nk
        else:
            assert abs(kernels - kept * 9 / 4 * nk) <= 0.5 + 1e-9 or kernels == 1
    elif kind == "nm":
        assert scheme.n is not None and scheme.m is not None
        full, rem = divmod(K, scheme.m)
        assert nnz == M * (full * scheme.n + min(scheme.n, rem))
    else:
        assert scheme.block is not None
        R, C = scheme.block
        unit = max(R, C) if kind == "bcr" else (R * C if positions > 1 else R)
        # half a unit, or the single unit kept when the target rounds to nothing
        assert abs(nnz - kept * M * K) <= unit / 2 + 1e-6 or nnz <= unit
    assert reached_sparsity(mask) == pytest.approx(1.0 - nnz / (M * K))


# --------------------------------------------------------------------------- structure checks


def assert_bcr_structure(mask: np.ndarray, w: np.ndarray, scheme: PruningScheme) -> None:
    assert scheme.block is not None
    R, C = scheme.block
    cols_first = scheme.keep_cols is not None and scheme.keep_rows is None
    sq = np.square(w.astype(np.float64))
    M, K = mask.shape
    for rs, cs in _blocks(M, K, R, C):
        sub, e = mask[rs, cs], sq[rs, cs]
        rows, cols = sub.any(axis=1), sub.any(axis=0)
        assert np.array_equal(sub, np.outer(rows, cols)), "kept entries are a full grid"
        if not sub.any() or sub.all():
            continue
        # the first dimension is chosen on the whole block, the second on the kept part
        if cols_first:
            first, second = e.sum(axis=0), e[:, cols].sum(axis=1)
            kf, ks = cols, rows
        else:
            first, second = e.sum(axis=1), e[rows].sum(axis=0)
            kf, ks = rows, cols
        if (~kf).any():
            assert first[kf].min() >= first[~kf].max() - 1e-9
        if (~ks).any():
            assert second[ks].min() >= second[~ks].max() - 1e-9


def assert_punched_structure(mask: np.ndarray, scheme: PruningScheme, positions: int) -> None:
    assert scheme.block is not None
    R, C = scheme.block
    M, K = mask.shape
    cube = mask.reshape(M, K // positions, positions)
    for rs, cs in _blocks(M, K // positions, R, C):
        sub = cube[rs, cs]  # (rows, channels, positions)
        if positions > 1:
            assert (sub == sub[:1, :1]).all(), "same positions for every filter and channel"
        else:
            col = sub[..., 0]
            assert np.array_equal(col.all(axis=0), col.any(axis=0)), "whole block columns"


def assert_pattern_structure(mask: np.ndarray, w: np.ndarray) -> None:
    M, K = mask.shape
    cube = mask.reshape(M, K // 9, 9)
    library = {frozenset(p) for p in PATTERN_LIBRARY}
    sq = np.square(w.astype(np.float64)).reshape(M, K // 9, 9)
    for f, c in itertools.product(range(M), range(K // 9)):
        kept = frozenset(np.nonzero(cube[f, c])[0].tolist())
        assert not kept or kept in library
        if kept:
            energy = sq[f, c, sorted(kept)].sum()
            assert all(energy >= sq[f, c, list(p)].sum() - 1e-9 for p in PATTERN_LIBRARY)


# --------------------------------------------------------------------------- properties


@given(seeds, st.integers(1, 40), st.integers(1, 60), rates,
       st.sampled_from(["unstructured", "filter", "column"]))
def test_global_topk_schemes(seed: int, M: int, K: int, s: float, kind: str) -> None:
    w = _weights(seed, M, K)
    scheme = PruningScheme(kind, s)
    mask = make_mask(w, scheme)
    assert mask.dtype == bool and mask.shape == (M, K)
    assert_rate(scheme, mask)
    a = np.abs(w.astype(np.float64))
    if kind == "unstructured" and not mask.all():
        assert a[mask].min() >= a[~mask].max()
    if kind == "filter":
        norms = (a * a).sum(axis=1)
        rows = np.asarray(mask.any(axis=1))
        assert (mask == rows[:, None]).all()
        assert rows.all() or norms[rows].min() >= norms[~rows].max()
    if kind == "column":
        norms = (a * a).sum(axis=0)
        cols = np.asarray(mask.any(axis=0))
        assert (mask == cols[None, :]).all()
        assert cols.all() or norms[cols].min() >= norms[~cols].max()
    assert np.array_equal(mask, make_mask(w, scheme)), "deterministic"


@given(seeds, st.integers(1, 40), st.integers(1, 70), rates, st.integers(1, 8),
       st.sampled_from(["none", "rows", "cols"]), st.integers(1, 20), st.integers(1, 20))
def test_bcr_masks(seed: int, M: int, K: int, s: float, R: int, which: str, C: int,
                   frac: int) -> None:
    kept = 1.0 - s
    a = kept + (1.0 - kept) * frac / 20 if which == "rows" else None
    b = kept + (1.0 - kept) * frac / 20 if which == "cols" else None
    scheme = PruningScheme.bcr(R, C, s, a, b)
    w = _weights(seed, M, K)
    mask = make_mask(w, scheme)
    assert_rate(scheme, mask)
    assert_bcr_structure(mask, w, scheme)


@given(seeds, st.integers(1, 30), st.integers(1, 12), st.sampled_from([None, (3, 3), (1, 1),
                                                                         (2, 2)]),
       rates, st.integers(1, 9), st.integers(1, 9))
def test_block_punched_masks(seed: int, M: int, cin: int, kernel: tuple[int, int] | None,
                             s: float, R: int, C: int) -> None:
    positions = 1 if kernel is None else kernel[0] * kernel[1]
    w = _weights(seed, M, cin * positions)
    scheme = PruningScheme.block_punched(R, C, s)
    mask = make_mask(w, scheme, kernel=kernel)
    assert_rate(scheme, mask, positions)
    assert_punched_structure(mask, scheme, positions)


@given(seeds, st.integers(1, 12), st.integers(1, 10), st.one_of(st.none(),
                                                               st.floats(5 / 9, 0.99)))
def test_pattern_masks(seed: int, M: int, cin: int, s: float | None) -> None:
    w = _weights(seed, M, cin * 9)
    scheme = PruningScheme.pattern(s)
    mask = make_mask(w, scheme, kernel=(3, 3))
    assert_rate(scheme, mask)
    assert_pattern_structure(mask, w)
    if s is not None:  # connectivity pruning drops the kernels of least pattern energy
        sq = np.square(w.astype(np.float64)).reshape(M, cin, 9)
        energy = np.where(mask.reshape(M, cin, 9), sq, 0).sum(axis=-1)
        kept = mask.reshape(M, cin, 9).any(axis=-1)
        best = np.max(np.stack([sq[..., list(p)].sum(-1) for p in PATTERN_LIBRARY]), axis=0)
        assert kept.all() or energy[kept].min() >= best[~kept].max() - 1e-9


@given(seeds, st.integers(1, 20), st.integers(1, 50), st.integers(1, 9).flatmap(
    lambda m: st.tuples(st.integers(1, m), st.just(m))))
def test_nm_masks(seed: int, M: int, K: int, nm: tuple[int, int]) -> None:
    n, m = nm
    if m > K:
        K = m + K % m
    w = _weights(seed, M, K)
    scheme = PruningScheme.nm(n, m)
    mask = make_mask(w, scheme)
    assert_rate(scheme, mask)
    a = np.abs(w)
    for g in range(0, K, m):
        sub, aa = mask[:, g:g + m], a[:, g:g + m]
        assert (sub.sum(axis=1) == min(n, sub.shape[1])).all(), "N (or the partial size) kept"
        for i in range(M):
            if not sub[i].all():
                assert aa[i][sub[i]].min() >= aa[i][~sub[i]].max()


# --------------------------------------------------------------------------- explicit rules


def test_bcr_partial_blocks_use_their_real_size() -> None:
    """Blocks at the bottom/right edge are not padded: their kept rows come from their own
    height (round(sqrt(1-S) r), clamped as in fixed_count), and their columns from the
    target of their own size."""
    M, K, R, C, s = 10, 13, 4, 5, 0.5
    w = _weights(7, M, K)
    mask = make_mask(w, PruningScheme.bcr(R, C, s))
    for rs, cs in _blocks(M, K, R, C):
        r, c = rs.stop - rs.start, cs.stop - cs.start
        sub = mask[rs, cs]
        rows_kept = int(sub.any(axis=1).sum())
        if sub.any():
            assert rows_kept == fixed_count(r, c, math.sqrt(1 - s), s), (rs, cs)
    # 10x13 in 4x5 blocks: heights 4, 4, 2 and widths 5, 5, 3
    assert mask[8:10, 10:13].any(axis=1).sum() == fixed_count(2, 3, math.sqrt(0.5), 0.5)


def test_bcr_counts_balanced_in_full_blocks() -> None:
    w = _weights(1, 64, 96)
    mask = make_mask(w, parse_spec("bcr:8x16:0.7"))
    cols = [int(mask[rs, cs].any(axis=0).sum()) for rs, cs in _blocks(64, 96, 8, 16)]
    rows = {int(mask[rs, cs].any(axis=1).sum()) for rs, cs in _blocks(64, 96, 8, 16)}
    assert max(cols) - min(cols) <= 1 and len(rows) == 1
    assert rows == {round(math.sqrt(0.3) * 8)}


def test_bcr_keeps_the_strongest_block_content() -> None:
    """Plant a strong 2x3 sub-grid in one block: BCR must keep it."""
    w = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32) * 0.01
    w[np.ix_([1, 2], [0, 3, 5])] = 5.0
    mask = make_mask(w, PruningScheme.bcr(4, 8, 0.8125, keep_rows=0.5))  # 2 rows x 3 cols
    assert mask[:4].sum() == 6 and mask[np.ix_([1, 2], [0, 3, 5])].all()


def test_pattern_alone_is_five_ninths() -> None:
    mask = make_mask(_weights(3, 16, 64 * 9), "pattern:4")
    assert reached_sparsity(mask) == pytest.approx(5 / 9)
    assert 0 < make_mask(np.zeros((4, 18)), "pattern:4").sum() == 4 * 8  # ties still 4 of 9


def test_dense_and_specs_as_strings() -> None:
    w = _weights(0, 5, 7)
    assert make_mask(w, "dense").all()
    assert np.array_equal(make_mask(w, "unstructured:0.5"),
                          make_mask(w, PruningScheme.unstructured(0.5)))


def test_bad_inputs() -> None:
    with pytest.raises(ShapeError):
        make_mask(np.zeros(5), "unstructured:0.5")
    with pytest.raises(ShapeError):
        make_mask(np.zeros((0, 3)), "unstructured:0.5")
    bad = np.ones((3, 3))
    bad[1, 1] = np.nan
    with pytest.raises(GrimsimError, match="NaN"):
        make_mask(bad, "filter:0.5")
    with pytest.raises(SchemeError, match="K >= M"):
        make_mask(np.ones((3, 3)), "nm:2:4")
    with pytest.raises(SchemeError, match="in_channels"):
        make_mask(np.ones((3, 10)), "pattern:4")
    with pytest.raises(SchemeError, match="3x3"):
        make_mask(np.ones((3, 9)), "pattern:4", kernel=(1, 1))
    with pytest.raises(SchemeError, match="kernel"):
        make_mask(np.ones((3, 10)), "block_punched:2x2:0.5", kernel=(3, 3))
    with pytest.raises(SchemeError):
        make_mask(np.ones((3, 3)), "bcr:2x2")


def test_large_bcr_mask_and_encode_are_fast() -> None:
    """resnet18's largest conv GEMM (512 x 4608): mask + encode well under a second."""
    w = _weights(0, 512, 4608)
    start = time.perf_counter()
    mask = make_mask(w, "bcr:16x32:0.75")
    fmt = encode(w, mask, "bcr:16x32:0.75")
    elapsed = time.perf_counter() - start
    assert fmt.nnz == mask.sum()
    assert elapsed < 1.0, f"{elapsed:.2f}s"
