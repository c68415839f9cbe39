"""Compact formats: exact encode/decode round trips, the layout invariants the kernels rely on,
and clear errors for masks a format cannot hold."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import SchemeError, ShapeError
from grimsim.pruning import (
    BCRFormat,
    CSRFormat,
    DenseFormat,
    NMFormat,
    PatternFormat,
    PruningScheme,
    check_format,
    decode,
    encode,
    format_block,
    make_mask,
    parse_spec,
)

seeds = st.integers(0, 2**32 - 1)
rates = st.floats(0.0, 0.99, allow_nan=False)


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, PruningScheme, tuple[int, int] | None]:
    """(weights, scheme, kernel) over every scheme, odd shapes and non-dividing blocks."""
    kind = draw(st.sampled_from(["dense", "unstructured", "filter", "column", "pattern",
                                 "block_punched", "bcr", "nm"]))
    M = draw(st.integers(1, 24))
    kernel: tuple[int, int] | None = None
    if kind == "pattern":
        kernel = (3, 3)
        s = draw(st.one_of(st.none(), st.floats(5 / 9, 0.99)))
        scheme = PruningScheme.pattern(s)
        K = 9 * draw(st.integers(1, 8))
    elif kind == "block_punched":
        kernel = draw(st.sampled_from([None, (3, 3), (1, 3)]))
        positions = 1 if kernel is None else kernel[0] * kernel[1]
        K = positions * draw(st.integers(1, 12))
        scheme = PruningScheme.block_punched(draw(st.integers(1, 8)), draw(st.integers(1, 8)),
                                             draw(rates))
    elif kind == "nm":
        m = draw(st.integers(1, 8))
        scheme = PruningScheme.nm(draw(st.integers(1, m)), m)
        K = draw(st.integers(m, 40))
    elif kind == "bcr":
        K = draw(st.integers(1, 40))
        s = draw(rates)
        rows = draw(st.one_of(st.none(), st.floats(1 - s, 1.0)))
        scheme = PruningScheme.bcr(draw(st.integers(1, 12)), draw(st.integers(1, 12)), s, rows)
    else:
        K = draw(st.integers(1, 40))
        scheme = PruningScheme.dense() if kind == "dense" else PruningScheme(kind, draw(rates))
    rng = np.random.default_rng(draw(seeds))
    w = rng.standard_normal((M, K)).astype(np.float32)
    if draw(st.booleans()):  # exact zeros and negative zeros among the kept weights
        w[rng.random((M, K)) < 0.2] = 0.0
        w[rng.random((M, K)) < 0.1] = -0.0
    return w, scheme, kernel


def _arrays_bytes(fmt: object) -> int:
    return sum(v.nbytes for v in vars(fmt).values() if isinstance(v, np.ndarray))


@given(cases())
def test_round_trip_is_exact(case: tuple[np.ndarray, PruningScheme, tuple[int, int] | None]
                             ) -> None:
    w, scheme, kernel = case
    mask = make_mask(w, scheme, kernel=kernel)
    fmt = encode(w, mask, scheme, kernel=kernel)
    check_format(fmt)
    out = decode(fmt)
    want = np.where(mask, w, np.float32(0))
    assert out.dtype == np.float32 and out.shape == w.shape == fmt.shape
    assert out.tobytes() == want.tobytes(), "bit-exact, removed weights +0.0"
    assert np.array_equal(out, w * mask)
    assert fmt.nbytes == _arrays_bytes(fmt) > 0
    expected_type = {"dense": DenseFormat, "unstructured": CSRFormat, "nm": NMFormat,
                     "pattern": PatternFormat}.get(scheme.kind, BCRFormat)
    assert isinstance(fmt, expected_type)
    if isinstance(fmt, BCRFormat):
        _check_bcr_extras(fmt, mask, scheme, kernel)


def _check_bcr_extras(fmt: BCRFormat, mask: np.ndarray, scheme: PruningScheme,
                      kernel: tuple[int, int] | None) -> None:
    M, K = mask.shape
    assert fmt.block == format_block(scheme, M, K, kernel)
    assert fmt.nnz == mask.sum()
    assert fmt.values.ctypes.data % 64 == 0 and (fmt.val_ptr[:-1] % 16 == 0).all()
    R = fmt.block[0]
    if scheme.kind == "block_punched":  # every row of a stored block is kept
        heights = np.minimum(R, M - R * np.repeat(np.arange(len(fmt.block_row_ptr) - 1),
                                                  np.diff(fmt.block_row_ptr)))
        assert np.array_equal(fmt.rows_per_block, heights)
    # reorder: inside each block row, each kept-column set forms one contiguous run, runs by
    # non-increasing size, fully pruned rows last
    for b in range(0, M, R):
        rows = fmt.reorder[b:b + R]
        assert sorted(rows.tolist()) == list(range(b, min(b + R, M)))
        keys = [mask[r].tobytes() if mask[r].any() else None for r in rows]
        runs: list[tuple[object, int]] = []
        for key in keys:
            if runs and runs[-1][0] == key:
                runs[-1] = (key, runs[-1][1] + 1)
            else:
                runs.append((key, 1))
        assert len({k for k, _ in runs}) == len(runs), "one run per column set"
        sizes = [n for k, n in runs if k is not None]
        assert sizes == sorted(sizes, reverse=True)
        assert None not in [k for k, _ in runs[:-1]], "empty rows last"


def test_csr_matches_scipy() -> None:
    w = np.random.default_rng(0).standard_normal((30, 45)).astype(np.float32)
    mask = make_mask(w, "unstructured:0.8")
    fmt = encode(w, mask, "unstructured:0.8")
    assert isinstance(fmt, CSRFormat)
    ref = scipy.sparse.csr_matrix(np.where(mask, w, 0))
    assert np.array_equal(fmt.indptr, ref.indptr) and np.array_equal(fmt.indices, ref.indices)
    assert np.array_equal(fmt.data, ref.data)
    assert fmt.nbytes == 31 * 4 + mask.sum() * 8


def test_nm_padding_and_fillers() -> None:
    w = np.arange(1, 31, dtype=np.float32).reshape(3, 10)  # |w| grows along K
    fmt = encode(w, make_mask(w, "nm:3:4"), "nm:3:4")
    assert isinstance(fmt, NMFormat)
    assert fmt.values.shape == fmt.indices.shape == (3, 3, 3)
    # groups [0..3], [4..7] keep positions 1,2,3; the partial group [8, 9] keeps both and
    # fills its third slot with a zero at a padding position
    assert fmt.indices[0].tolist() == [[1, 2, 3], [1, 2, 3], [0, 1, 2]]
    assert fmt.values[0, 2].tolist() == [9.0, 10.0, 0.0]
    sparse = np.zeros((1, 8), np.float32)
    sparse[0, 3] = 1.0  # one kept weight at the end of a group: fillers go before it
    fmt = encode(sparse, sparse != 0, "nm:2:4")
    assert isinstance(fmt, NMFormat)
    assert fmt.indices[0, 0].tolist() == [0, 3] and fmt.values[0, 0].tolist() == [0.0, 1.0]
    check_format(fmt)


def test_pattern_format_fields() -> None:
    w = np.random.default_rng(1).standard_normal((6, 5 * 9)).astype(np.float32)
    mask = make_mask(w, "pattern:4:0.8", kernel=(3, 3))
    fmt = encode(w, mask, "pattern:4:0.8")
    assert isinstance(fmt, PatternFormat)
    assert fmt.library.shape == (8, 4) and (fmt.library[:, None] == 4).any(axis=-1).all()
    per_filter = np.diff(fmt.kernel_ptr)
    assert per_filter.sum() == mask.sum() // 4
    kept = mask.reshape(6, 5, 9).any(axis=-1).sum(axis=1)
    assert np.array_equal(per_filter, kept[fmt.filter_order])
    assert list(per_filter) == sorted(per_filter, reverse=True), "busiest filters first"


def test_filter_and_column_are_single_bcr_blocks() -> None:
    w = np.random.default_rng(2).standard_normal((20, 30)).astype(np.float32)
    for spec, rows, cols in (("filter:0.5", 10, 30), ("column:0.5", 20, 15)):
        fmt = encode(w, make_mask(w, spec), spec)
        assert isinstance(fmt, BCRFormat)
        assert fmt.block == (20, 30) and fmt.n_blocks == 1
        assert fmt.rows_per_block.tolist() == [rows] and fmt.cols_per_block.tolist() == [cols]


def test_float64_weights_store_float32() -> None:
    w = np.random.default_rng(3).standard_normal((8, 16))
    mask = make_mask(w, "bcr:4x4:0.5")
    out = decode(encode(w, mask, "bcr:4x4:0.5"))
    assert np.array_equal(out, np.where(mask, w, 0).astype(np.float32))


def test_masks_that_do_not_fit_the_format() -> None:
    rng = np.random.default_rng(4)
    w = rng.standard_normal((8, 8)).astype(np.float32)
    holes = np.ones((8, 8), dtype=bool)
    holes[1, 1] = False  # not a full rows x cols grid
    with pytest.raises(SchemeError, match="BCR"):
        encode(w, holes, "bcr:4x4:0.5")
    with pytest.raises(SchemeError, match="2:4"):
        encode(w, np.ones((8, 8), dtype=bool), "nm:2:4")
    corners = np.zeros((8, 9), dtype=bool)
    corners[:, [0, 2, 6, 8]] = True  # 4 of 9, but not a library pattern
    with pytest.raises(SchemeError, match="pattern"):
        encode(rng.standard_normal((8, 9)), corners, "pattern:4")
    with pytest.raises(ShapeError):
        encode(w, np.ones((8, 7), dtype=bool), "unstructured:0.5")
    with pytest.raises(ShapeError, match="boolean"):
        encode(w, np.ones((8, 8)), "unstructured:0.5")
    with pytest.raises(TypeError):
        decode("not a format")  # type: ignore[arg-type]


def test_check_format_catches_broken_layouts() -> None:
    w = np.random.default_rng(5).standard_normal((8, 8)).astype(np.float32)
    good = encode(w, make_mask(w, "bcr:4x4:0.5"), "bcr:4x4:0.5")
    assert isinstance(good, BCRFormat)
    check_format(good)
    broken = BCRFormat(**{**vars(good), "row_idx": good.row_idx[::-1].copy()})
    with pytest.raises(SchemeError, match="invariant"):
        check_format(broken)
    misaligned = BCRFormat(**{**vars(good), "val_ptr": good.val_ptr + 1})
    with pytest.raises(SchemeError, match="invariant"):
        check_format(misaligned)


def test_encoded_arrays_are_read_only() -> None:
    w = np.ones((4, 4), np.float32)
    fmt = encode(w, make_mask(w, parse_spec("unstructured:0.5")), "unstructured:0.5")
    assert isinstance(fmt, CSRFormat)
    with pytest.raises(ValueError):
        fmt.data[0] = 2.0
