"""The sparse C++ kernels (CSR, BCR raw and packed, pattern, N:M) against numpy, and their
rejection of malformed formats.

Inputs are built two ways: by a tiny local encoder written from the formats note (so the
kernels are checked against the layout itself, including shapes the pruning code never
makes: partial blocks, empty blocks, tall blocks), and by ``grimsim.pruning.encode`` (so
its output feeds the kernels unchanged).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grimsim.cost.features import bcr_tile_layout
from grimsim.pruning import encode, make_mask

K_ = pytest.importorskip("grimsim._kernels")


# ------------------------------------------------------------------------ local encoders


def _i32(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int32)


def bcr_arrays(w: np.ndarray, block: tuple[int, int]) -> dict[str, Any]:
    """BCR arrays of the nonzero pattern of ``w`` (each block must be a full row x column
    grid), straight from the formats note; reorder groups equal column sets per block row."""
    M, K = w.shape
    R, C = block
    nz = w != 0
    brp, bcol, rptr, ridx, cptr, cidx, vptr = [0], [], [0], [], [0], [], [0]
    vals: list[float] = []
    for r0 in range(0, M, R):
        for bc, c0 in enumerate(range(0, K, C)):
            sub = nz[r0:r0 + R, c0:c0 + C]
            rows, cols = np.nonzero(sub.any(1))[0], np.nonzero(sub.any(0))[0]
            if rows.size == 0:
                continue
            assert sub[np.ix_(rows, cols)].all(), "not a BCR grid"
            bcol.append(bc)
            ridx += list(r0 + rows)
            cidx += list(c0 + cols)
            rptr.append(len(ridx))
            cptr.append(len(cidx))
            vals += list(w[np.ix_(r0 + rows, c0 + cols)].ravel())
            vals += [0.0] * (-len(vals) % 16)
            vptr.append(len(vals))
        brp.append(len(bcol))
    reorder: list[int] = []
    for r0 in range(0, M, R):
        reorder += sorted(range(r0, min(M, r0 + R)),
                          key=lambda i: (tuple(np.nonzero(nz[i])[0]), i))
    return {"block_row_ptr": _i32(brp), "block_col": _i32(bcol), "row_ptr": _i32(rptr),
            "row_idx": _i32(ridx), "col_ptr": _i32(cptr), "col_idx": _i32(cidx),
            "val_ptr": np.asarray(vptr, dtype=np.int64),
            "values": np.asarray(vals, dtype=np.float32), "reorder": _i32(reorder),
            "shape": (M, K), "block": (R, C)}


def bcr_matrix(rng: np.random.Generator, M: int, K: int, block: tuple[int, int],
               keep_rows: float, keep_cols: float, empty: float) -> np.ndarray:
    """Random weights with a BCR mask: per block a random subset of rows x columns."""
    R, C = block
    w = np.zeros((M, K), dtype=np.float32)
    for r0 in range(0, M, R):
        for c0 in range(0, K, C):
            if rng.random() < empty:
                continue
            rr, cc = min(R, M - r0), min(C, K - c0)
            rows = r0 + rng.choice(rr, max(1, round(rr * keep_rows)), replace=False)
            cols = c0 + rng.choice(cc, max(1, round(cc * keep_cols)), replace=False)
            w[np.ix_(rows, cols)] = rng.uniform(0.5, 1.5, (rows.size, cols.size)) * \
                rng.choice([-1, 1], (rows.size, cols.size))
    return w


def csr_arrays(w: np.ndarray) -> dict[str, Any]:
    rows, cols = np.nonzero(w)
    indptr = np.zeros(w.shape[0] + 1, dtype=np.int32)
    np.cumsum(np.count_nonzero(w, axis=1), out=indptr[1:])
    return {"indptr": indptr, "indices": _i32(cols),
            "data": np.ascontiguousarray(w[rows, cols], dtype=np.float32), "shape": w.shape}


def fields_of(fmt: Any) -> dict[str, Any]:
    return {f.name: getattr(fmt, f.name) for f in fields(fmt)}


def reference(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return w.astype(np.float64) @ x.astype(np.float64)


def assert_close(y: np.ndarray, ref: np.ndarray, k: int) -> None:
    assert y.dtype == np.float32 and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5 * (1 + k))


def x_for(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    return rng.standard_normal((k, n)).astype(np.float32)


# ------------------------------------------------------------------- correctness: BCR

ns = st.sampled_from([1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 24, 31, 33, 49, 57, 62])


@given(M=st.integers(1, 90), K=st.integers(1, 100),
       R=st.sampled_from([1, 2, 3, 4, 7, 8, 16, 30, 64, 70]),
       C=st.sampled_from([1, 2, 5, 8, 16, 32, 33]),
       keep=st.tuples(st.floats(0.05, 1.0), st.floats(0.05, 1.0)),
       empty=st.sampled_from([0.0, 0.3, 1.0]), n=ns, threads=st.integers(1, 3),
       seed=st.integers(0, 2**31))
def test_bcr_matches_numpy(M: int, K: int, R: int, C: int, keep: tuple[float, float],
                           empty: float, n: int, threads: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = bcr_matrix(rng, M, K, (R, C), keep[0], keep[1], empty)
    arrays = bcr_arrays(w, (R, C))
    x = x_for(rng, K, n)
    ref = reference(w, x)
    assert_close(K_.bcr_spmm(**arrays, x=x, threads=threads), ref, K)
    packed = K_.bcr_pack(**arrays)
    assert packed.nnz == np.count_nonzero(w)
    assert_close(K_.bcr_spmm_packed(packed, x, threads=threads), ref, K)


@given(spec=st.sampled_from(["bcr:16x32:0.75", "bcr:16x32:0.9", "bcr:4x8:0.5",
                             "bcr:8x16:0.8:rows=0.5,cols=0.4", "filter:0.5", "column:0.6",
                             "block_punched:4x2:0.5", "block_punched:8x1:0.75"]),
       M=st.integers(1, 150), cin=st.integers(1, 24), n=ns, threads=st.integers(1, 3),
       seed=st.integers(0, 2**31))
def test_bcr_from_pruning_encode(spec: str, M: int, cin: int, n: int, threads: int,
                                 seed: int) -> None:
    """grimsim.pruning.encode's BCR output (incl. the single M x K block of filter/column
    pruning and block-punched blocks) goes into the kernels unchanged."""
    rng = np.random.default_rng(seed)
    K = cin * 9
    w = rng.standard_normal((M, K)).astype(np.float32)
    mask = make_mask(w, spec, kernel=(3, 3))
    fmt = encode(w, mask, spec, kernel=(3, 3))
    x = x_for(rng, K, n)
    ref = reference(np.where(mask, w, 0), x)
    assert_close(K_.bcr_spmm(**fields_of(fmt), x=x, threads=threads), ref, K)
    packed = K_.bcr_pack(**fields_of(fmt))
    assert_close(K_.bcr_spmm_packed(packed, x, threads=threads), ref, K)


@settings(max_examples=12, deadline=None)
@given(M=st.integers(300, 500), K=st.integers(700, 1500), keep_rows=st.sampled_from([0.5, 1.0]),
       n=st.sampled_from([8, 17, 49, 100]), threads=st.integers(1, 2),
       seed=st.integers(0, 2**31))
def test_bcr_packed_over_k_chunks(M: int, K: int, keep_rows: float, n: int, threads: int,
                                  seed: int) -> None:
    """With a few hundred rows the packed kernel visits W in chunks of K (so the chunk's X
    rows stay in L2); tiles of whole rows (keep_rows=1 merges a block row's blocks) reach
    across every chunk."""
    rng = np.random.default_rng(seed)
    w = bcr_matrix(rng, M, K, (16, 32), keep_rows, 0.5, 0.1)
    x = x_for(rng, K, n)
    packed = K_.bcr_pack(**bcr_arrays(w, (16, 32)))
    assert_close(K_.bcr_spmm_packed(packed, x, threads=threads), reference(w, x), K)


def assert_packed_16x32_product(w: np.ndarray, x: np.ndarray) -> None:
    """Packed 16x32 BCR of w times x on one and two threads against numpy."""
    packed = K_.bcr_pack(**bcr_arrays(w, (16, 32)))
    ref = reference(w, x)
    for threads in (1, 2):
        assert_close(K_.bcr_spmm_packed(packed, x, threads=threads), ref, w.shape[1])


@pytest.mark.parametrize("n", [16, 32, 48, 64, 72, 80, 96, 112, 120, 200, 256, 264, 272])
@pytest.mark.parametrize("rows_kept", [1, 5, 8, 11])
def test_bcr_packed_panels_of_every_width_and_tile_height(n: int, rows_kept: int) -> None:
    """Panels of up to 16 vectors run tiles of up to 8 rows (AVX-512) in groups of 3 and 2
    vectors straight from the packed records; taller tiles and wider panels take the generic
    path. Every cut of N into groups (3 + 1 as 2 + 2, masked ragged ends of 8-15 columns) and
    both paths on one and two threads must give the product."""
    rng = np.random.default_rng(n * 100 + rows_kept)
    M, K = 96, 320
    w = bcr_matrix(rng, M, K, (16, 32), rows_kept / 16, 10 / 32, 0.1)
    assert_packed_16x32_product(w, x_for(rng, K, n))


@pytest.mark.parametrize("n", [17, 23, 33, 39, 49, 55, 196, 199, 785])
@pytest.mark.parametrize("rows_kept", [1, 5, 16])
def test_bcr_packed_ragged_ends_of_one_to_seven_columns(n: int, rows_kept: int) -> None:
    """A ragged end of 1-7 columns beside whole vectors: AVX-512 folds it into the panel pass
    (per tile, summed per band and K chunk), other tiers run it as a second narrow pass. Every
    width of it, tiles of 1 to 16 rows (16: the generic path), over K chunks (K = 1600), one
    and two threads."""
    rng = np.random.default_rng(n * 100 + rows_kept)
    M, K = 96, 1600
    w = bcr_matrix(rng, M, K, (16, 32), rows_kept / 16, 10 / 32, 0.1)
    assert_packed_16x32_product(w, x_for(rng, K, n))


def test_bcr_packed_ragged_end_in_the_last_of_several_n_tiles() -> None:
    """With 1024 rows an N tile holds at most 12 vectors (L2 up to 2 MiB): only the last of
    several tiles carries the ragged columns, and each thread's share of its rows adds them."""
    rng = np.random.default_rng(3)
    M, K, n = 1024, 96, 12 * 16 * 3 + 5
    w = bcr_matrix(rng, M, K, (16, 32), 5 / 16, 10 / 32, 0.0)
    assert_packed_16x32_product(w, x_for(rng, K, n))


def test_bcr_pack_merges_rows_sharing_their_columns() -> None:
    """Column pruning keeps every row of a block row with the same columns: the packed form
    holds one tile per 64-row band instead of one per block (load-redundancy elimination)."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 256)).astype(np.float32)
    w[:, rng.choice(256, 128, replace=False)] = 0
    arrays = bcr_arrays(w, (16, 32))
    packed = K_.bcr_pack(**arrays)
    assert arrays["block_col"].size == 4 * 8
    assert packed.n_tiles == 4
    x = x_for(rng, 256, 40)
    assert_close(K_.bcr_spmm_packed(packed, x), reference(w, x), 256)
    # Random BCR rows rarely share a column set: blocks stay tiles.
    w2 = bcr_matrix(rng, 64, 256, (16, 32), 0.5, 0.5, 0.0)
    arrays2 = bcr_arrays(w2, (16, 32))
    assert K_.bcr_pack(**arrays2).n_tiles == arrays2["block_col"].size


def test_bcr_packed_reports_size_and_time() -> None:
    rng = np.random.default_rng(2)
    w = bcr_matrix(rng, 48, 96, (16, 32), 0.5, 0.5, 0.0)
    packed = K_.bcr_pack(**bcr_arrays(w, (16, 32)))
    nnz = np.count_nonzero(w)
    assert packed.shape == (48, 96) and packed.block == (16, 32)
    assert 4 * nnz < packed.nbytes < 4 * nnz + 8192
    assert packed.pack_time_s >= 0.0
    assert "BcrPacked" in repr(packed)


def test_vector_x_and_empty_shapes() -> None:
    rng = np.random.default_rng(3)
    w = bcr_matrix(rng, 20, 30, (4, 8), 0.5, 0.5, 0.2)
    arrays = bcr_arrays(w, (4, 8))
    x = rng.standard_normal(30).astype(np.float32)
    y = K_.bcr_spmm(**arrays, x=x)
    assert y.shape == (20,)
    assert_close(y, reference(w, x), 30)
    assert_close(K_.bcr_spmm_packed(K_.bcr_pack(**arrays), x), reference(w, x), 30)
    assert K_.bcr_spmm(**arrays, x=np.zeros((30, 0), np.float32)).shape == (20, 0)
    empty = bcr_arrays(np.zeros((0, 5), np.float32), (4, 4))
    assert K_.bcr_spmm(**empty, x=np.ones((5, 3), np.float32)).shape == (0, 3)


@pytest.mark.parametrize("tier", ["sse2", "avx2"])
def test_simd_fallback_tiers_agree(monkeypatch: pytest.MonkeyPatch, tier: str) -> None:
    """GRIMSIM_SIMD caps the tier (x86: the baseline SSE2 build has 4 lanes, AVX2 8): every
    sparse kernel must give the same result on each."""
    rng = np.random.default_rng(4)
    monkeypatch.setenv("GRIMSIM_SIMD", tier)
    w = bcr_matrix(rng, 70, 90, (16, 32), 0.5, 0.5, 0.1)
    arrays = bcr_arrays(w, (16, 32))
    for n in (1, 3, 4, 6, 8, 13, 40):
        x = x_for(rng, 90, n)
        ref = reference(w, x)
        assert_close(K_.bcr_spmm(**arrays, x=x, threads=2), ref, 90)
        assert_close(K_.bcr_spmm_packed(K_.bcr_pack(**arrays), x, threads=2), ref, 90)
        assert_close(K_.csr_spmm(**csr_arrays(w), x=x, threads=2), ref, 90)


# ------------------------------------------------------------- correctness: CSR, N:M, pattern


@given(M=st.integers(0, 60), K=st.integers(1, 80), density=st.floats(0.0, 1.0), n=ns,
       threads=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_csr_matches_numpy(M: int, K: int, density: float, n: int, threads: int,
                           seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((M, K)) * (rng.random((M, K)) < density)).astype(np.float32)
    x = x_for(rng, K, n)
    assert_close(K_.csr_spmm(**csr_arrays(w), x=x, threads=threads), reference(w, x), K)
    xv = x[:, 0].copy()
    assert_close(K_.csr_spmv(**csr_arrays(w), x=xv, threads=threads), reference(w, xv), K)


@given(nm=st.sampled_from([(2, 4), (1, 4), (1, 8), (3, 5), (4, 4)]), M=st.integers(1, 50),
       K=st.integers(8, 90), n=ns, threads=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_nm_matches_numpy(nm: tuple[int, int], M: int, K: int, n: int, threads: int,
                          seed: int) -> None:
    """N:M from grimsim.pruning (K not a multiple of m: the last group is padded)."""
    rng = np.random.default_rng(seed)
    spec = f"nm:{nm[0]}:{nm[1]}"
    w = rng.standard_normal((M, K)).astype(np.float32)
    mask = make_mask(w, spec)
    fmt = encode(w, mask, spec)
    x = x_for(rng, K, n)
    y = K_.nm_spmm(**fields_of(fmt), x=x, threads=threads)
    assert_close(y, reference(np.where(mask, w, 0), x), K)


@given(spec=st.sampled_from(["pattern:4", "pattern:4:0.7", "pattern:4:0.9"]),
       M=st.integers(1, 40), cin=st.integers(1, 20), n=ns, threads=st.integers(1, 3),
       seed=st.integers(0, 2**31))
def test_pattern_matches_numpy(spec: str, M: int, cin: int, n: int, threads: int,
                               seed: int) -> None:
    rng = np.random.default_rng(seed)
    K = cin * 9
    w = rng.standard_normal((M, K)).astype(np.float32)
    mask = make_mask(w, spec, kernel=(3, 3))
    fmt = encode(w, mask, spec, kernel=(3, 3))
    x = x_for(rng, K, n)
    y = K_.pattern_conv_spmm(**fields_of(fmt), x=x, threads=threads)
    assert_close(y, reference(np.where(mask, w, 0), x), K)


@pytest.mark.parametrize("n", range(1, 18))
def test_row_kernels_at_every_narrow_width(n: int) -> None:
    """Each narrow N has its own compiled accumulator (sums in registers, two sets), and the
    SIMD tier decides which N reach it: every N up to one past 16 lanes, odd and even nonzero
    counts per row, rows with no nonzero, through CSR, N:M and pattern."""
    rng = np.random.default_rng(100 + n)
    M, cin = 23, 7
    K = cin * 9
    w = rng.standard_normal((M, K)).astype(np.float32)
    x = x_for(rng, K, n)
    for spec, run in (("unstructured:0.6", K_.csr_spmm), ("nm:1:4", K_.nm_spmm),
                      ("pattern:4:0.7", K_.pattern_conv_spmm)):
        mask = make_mask(w, spec, kernel=(3, 3))
        if spec.startswith("unstructured"):
            mask[3] = False  # an empty row
            mask[4] = False
            mask[4, :5] = True  # an odd count
        fmt = encode(w, mask, spec, kernel=(3, 3))
        for threads in (1, 2):
            assert_close(run(**fields_of(fmt), x=x, threads=threads),
                         reference(np.where(mask, w, 0), x), K)


def test_csr_from_pruning_encode() -> None:
    rng = np.random.default_rng(5)
    w = rng.standard_normal((33, 70)).astype(np.float32)
    mask = make_mask(w, "unstructured:0.8")
    fmt = encode(w, mask, "unstructured:0.8")
    x = x_for(rng, 70, 19)
    assert_close(K_.csr_spmm(**fields_of(fmt), x=x, threads=2),
                 reference(np.where(mask, w, 0), x), 70)


def test_bench_functions_return_timings() -> None:
    rng = np.random.default_rng(6)
    w = bcr_matrix(rng, 32, 64, (16, 32), 0.5, 0.5, 0.0)
    arrays = bcr_arrays(w, (16, 32))
    x = x_for(rng, 64, 8)
    opts = {"min_time_s": 0.0, "warmup": 0, "max_reps": 3}
    results = [K_.bench_bcr(**arrays, x=x, **opts),
               K_.bench_bcr_packed(K_.bcr_pack(**arrays), x, **opts),
               K_.bench_csr(**csr_arrays(w), x=x, **opts)]
    m9 = rng.standard_normal((8, 27)).astype(np.float32)
    pmask = make_mask(m9, "pattern:4", kernel=(3, 3))
    results.append(K_.bench_pattern(**fields_of(encode(m9, pmask, "pattern:4")),
                                    x=x_for(rng, 27, 8), **opts))
    nmask = make_mask(m9, "nm:2:4")
    results.append(K_.bench_nm(**fields_of(encode(m9, nmask, "nm:2:4")), x=x_for(rng, 27, 8),
                               **opts))
    for r in results:
        assert r["reps"] == 3 and 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
    with pytest.raises(ValueError, match="row_idx"):
        bad = dict(arrays, row_idx=arrays["row_idx"][::-1].copy())
        K_.bench_bcr(**bad, x=x, **opts)


# ------------------------------------------------------------------ malformed formats


def small_bcr() -> dict[str, Any]:
    w = np.zeros((20, 40), dtype=np.float32)
    w[np.ix_([1, 3], [2, 5, 9])] = 1.0  # block (0, 0)
    w[np.ix_([0, 2, 3], [33, 39])] = 2.0  # block (0, 1), partial in K
    w[np.ix_([17, 19], [8])] = 3.0  # block (2, 0), partial in M
    return bcr_arrays(w, (8, 32))


def _set(arrays: dict[str, Any], key: str, index: int, value: int) -> dict[str, Any]:
    a = arrays[key].copy()
    a[index] = value
    return dict(arrays, **{key: a})


BCR_BAD = [
    ("block_row_ptr short", lambda a: dict(a, block_row_ptr=a["block_row_ptr"][:-1]),
     "block_row_ptr has 3 elements, expected 4"),
    ("block_row_ptr start", lambda a: _set(a, "block_row_ptr", 0, 1), r"block_row_ptr\[0\] = 1"),
    ("block_row_ptr decreasing", lambda a: _set(a, "block_row_ptr", 1, 3), "must not decrease"),
    ("block_row_ptr end", lambda a: _set(a, "block_row_ptr", 3, 2), "block_col has 3"),
    ("block_col range", lambda a: _set(a, "block_col", 1, 2), r"block_col\[1\] = 2 is outside"),
    ("block_col order", lambda a: _set(a, "block_col", 1, 0), "strictly increasing"),
    ("row_ptr end", lambda a: _set(a, "row_ptr", 3, 6), "row_idx has 7"),
    ("row_idx outside block", lambda a: _set(a, "row_idx", 0, 9), r"row_idx\[0\] = 9 is outside"),
    ("row_idx outside (negative)", lambda a: _set(a, "row_idx", 0, -1), "outside"),
    ("row_idx unsorted", lambda a: _set(a, "row_idx", 1, 1), "strictly increasing"),
    ("col_idx outside block", lambda a: _set(a, "col_idx", 3, 31), r"col_idx\[3\] = 31"),
    ("col_idx past K", lambda a: _set(a, "col_idx", 4, 40), "outside"),
    ("val_ptr alignment", lambda a: _set(a, "val_ptr", 1, 8), "multiple of 16"),
    ("val_ptr too small", lambda a: _set(a, "val_ptr", 2, 20), "needs 6 values"),
    ("val_ptr past values", lambda a: dict(a, values=a["values"][:40]), "past the end"),
    ("val_ptr start", lambda a: _set(a, "val_ptr", 0, 16), r"val_ptr\[0\] = 16"),
    ("val_ptr length", lambda a: dict(a, val_ptr=a["val_ptr"][:-1]), "val_ptr has 3"),
    ("reorder length", lambda a: dict(a, reorder=a["reorder"][:-1]), "reorder has 19"),
    ("reorder duplicate", lambda a: _set(a, "reorder", 1, int(a["reorder"][0])), "twice"),
    ("reorder crosses block rows", lambda a: _set(a, "reorder", 0, 12), "outside block row 0"),
    ("block zero", lambda a: dict(a, block=(0, 32)), "at least 1 x 1"),
    ("shape negative", lambda a: dict(a, shape=(-1, 40)), "non-negative"),
    ("index dtype", lambda a: dict(a, row_idx=a["row_idx"].astype(np.int64)), "must be int32"),
    ("value dtype", lambda a: dict(a, values=a["values"].astype(np.float64)),
     "must be float32"),
    ("val_ptr dtype", lambda a: dict(a, val_ptr=a["val_ptr"].astype(np.int32)),
     "must be int64"),
    ("non-contiguous", lambda a: dict(a, col_idx=np.repeat(a["col_idx"], 2)[::2]),
     "C-contiguous"),
    ("index rank", lambda a: dict(a, col_idx=a["col_idx"][None, :]), "1 dimensions"),
]


@pytest.mark.parametrize(("case", "mutate", "message"), BCR_BAD, ids=[c[0] for c in BCR_BAD])
def test_bcr_rejects_malformed(case: str, mutate: Any, message: str) -> None:
    good = small_bcr()
    x = np.ones((40, 5), dtype=np.float32)
    K_.bcr_spmm(**good, x=x)  # the unmutated arrays are fine
    bad = mutate(good)
    with pytest.raises(ValueError, match=message):
        K_.bcr_spmm(**bad, x=x)
    with pytest.raises(ValueError, match=message):
        K_.bcr_pack(**bad)


def test_kernels_reject_bad_x_and_threads() -> None:
    arrays = small_bcr()
    packed = K_.bcr_pack(**arrays)
    x = np.ones((40, 6), dtype=np.float32)
    for call in (lambda x_: K_.bcr_spmm(**arrays, x=x_), lambda x_: K_.bcr_spmm_packed(packed, x_),
                 lambda x_: K_.csr_spmm(**csr_arrays(np.ones((3, 40), np.float32)), x=x_)):
        with pytest.raises(ValueError, match="K = 40"):
            call(np.ones((39, 6), dtype=np.float32))
        with pytest.raises(ValueError, match="float32"):
            call(x.astype(np.float64))
        with pytest.raises(ValueError, match="C-contiguous"):
            call(np.asfortranarray(x))
    with pytest.raises(ValueError, match="threads"):
        K_.bcr_spmm(**arrays, x=x, threads=0)
    with pytest.raises(ValueError, match="threads"):
        K_.bcr_spmm_packed(packed, x, threads=0)


def csr_good() -> dict[str, Any]:
    """A small valid CSR matrix (4 x 7, rows of 2, 0, 3 and 1 nonzeros)."""
    w = np.zeros((4, 7), dtype=np.float32)
    w[0, [1, 4]] = 1
    w[2, [0, 3, 6]] = 2
    w[3, 5] = 3
    return csr_arrays(w)


CSR_BAD = [
    ("indptr length", lambda a: dict(a, indptr=a["indptr"][:-1]), "indptr has 4"),
    ("indptr decreasing", lambda a: _set(a, "indptr", 2, 0), "must not decrease"),
    ("indptr end", lambda a: _set(a, "indptr", 4, 5), "indices has 6"),
    ("index range", lambda a: _set(a, "indices", 0, 7), r"indices\[0\] = 7 is outside"),
    ("index unsorted", lambda a: _set(a, "indices", 1, 0), "strictly increasing"),
    ("data length", lambda a: dict(a, data=a["data"][:-1]), "data has 5"),
]


@pytest.mark.parametrize(("case", "mutate", "message"), CSR_BAD, ids=[c[0] for c in CSR_BAD])
def test_csr_rejects_malformed(case: str, mutate: Any, message: str) -> None:
    good = csr_good()
    x = np.ones((7, 3), dtype=np.float32)
    K_.csr_spmm(**good, x=x)
    with pytest.raises(ValueError, match=message):
        K_.csr_spmm(**mutate(good), x=x)


def nm_good() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    w = rng.standard_normal((3, 10)).astype(np.float32)
    return fields_of(encode(w, make_mask(w, "nm:2:4"), "nm:2:4"))


NM_BAD = [
    ("position range", lambda a: _set3(a, "indices", (0, 0, 1), 4), "outside the group"),
    ("positions order", lambda a: _set3(a, "indices", (0, 0, 1), 0), "strictly increasing"),
    ("padding value", lambda a: _padding_value(a), "past K"),
    ("n > m", lambda a: dict(a, n=5), "n <= m"),
    ("values shape", lambda a: dict(a, values=a["values"][:, :2].copy()), "must have shape"),
    ("index dtype", lambda a: dict(a, indices=a["indices"].astype(np.uint8)), "int32"),
]


def _set3(arrays: dict[str, Any], key: str, index: tuple[int, int, int], value: int
          ) -> dict[str, Any]:
    a = arrays[key].copy()
    a[index] = value
    return dict(arrays, **{key: a})


def _padding_value(arrays: dict[str, Any]) -> dict[str, Any]:
    # K = 10, m = 4: the last group holds columns 8, 9 and padding 10, 11.
    idx = arrays["indices"].copy()
    vals = arrays["values"].copy()
    idx[0, 2] = [2, 3]
    vals[0, 2] = [1.0, 1.0]
    return dict(arrays, indices=idx, values=vals)


@pytest.mark.parametrize(("case", "mutate", "message"), NM_BAD, ids=[c[0] for c in NM_BAD])
def test_nm_rejects_malformed(case: str, mutate: Any, message: str) -> None:
    good = nm_good()
    x = np.ones((10, 2), dtype=np.float32)
    K_.nm_spmm(**good, x=x)
    with pytest.raises(ValueError, match=message):
        K_.nm_spmm(**mutate(good), x=x)


def pattern_good() -> dict[str, Any]:
    rng = np.random.default_rng(8)
    w = rng.standard_normal((5, 27)).astype(np.float32)
    return fields_of(encode(w, make_mask(w, "pattern:4", kernel=(3, 3)), "pattern:4"))


PATTERN_BAD = [
    ("K not 9k", lambda a: dict(a, shape=(5, 26)), "multiple of 9"),
    ("library position", lambda a: _set2(a, "library", (0, 3), 9), "outside pattern 0"),
    ("library order", lambda a: _set2(a, "library", (0, 1), 0), "strictly increasing"),
    ("library shape", lambda a: dict(a, library=a["library"][:, :3].copy()), r"\(P, 4\)"),
    ("pattern id", lambda a: _set(a, "kernel_pattern", 0, 10**6), "outside the library"),
    ("channel range", lambda a: _set(a, "kernel_channel", 0, 3), "outside"),
    ("filter_order twice", lambda a: _set(a, "filter_order", 0, int(a["filter_order"][1])),
     "twice"),
    ("kernel_ptr end", lambda a: dict(a, kernel_ptr=a["kernel_ptr"][:-1]), "kernel_ptr has 5"),
    ("values rows", lambda a: dict(a, values=a["values"][:-1].copy()), "values has"),
]


def _set2(arrays: dict[str, Any], key: str, index: tuple[int, int], value: int
          ) -> dict[str, Any]:
    a = arrays[key].copy()
    a[index] = value
    return dict(arrays, **{key: a})


@pytest.mark.parametrize(("case", "mutate", "message"), PATTERN_BAD,
                         ids=[c[0] for c in PATTERN_BAD])
def test_pattern_rejects_malformed(case: str, mutate: Any, message: str) -> None:
    good = pattern_good()
    K_.pattern_conv_spmm(**good, x=np.ones((27, 4), dtype=np.float32))
    bad = mutate(good)
    with pytest.raises(ValueError, match=message):
        K_.pattern_conv_spmm(**bad, x=np.ones((bad["shape"][1], 4), dtype=np.float32))


# ---------------------------------------------------------- prepared (validated once) handles


@pytest.mark.parametrize(("case", "mutate", "message"), CSR_BAD, ids=[c[0] for c in CSR_BAD])
def test_csr_prepare_rejects_malformed(case: str, mutate: Any, message: str) -> None:
    K_.csr_prepare(**csr_good())
    with pytest.raises(ValueError, match=message):
        K_.csr_prepare(**mutate(csr_good()))


@pytest.mark.parametrize(("case", "mutate", "message"), NM_BAD, ids=[c[0] for c in NM_BAD])
def test_nm_prepare_rejects_malformed(case: str, mutate: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        K_.nm_prepare(**mutate(nm_good()))


@pytest.mark.parametrize(("case", "mutate", "message"), PATTERN_BAD,
                         ids=[c[0] for c in PATTERN_BAD])
def test_pattern_prepare_rejects_malformed(case: str, mutate: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        K_.pattern_prepare(**mutate(pattern_good()))


@given(spec=st.sampled_from(["unstructured:0.7", "nm:2:4", "nm:1:8", "pattern:4:0.7"]),
       M=st.integers(1, 40), cin=st.integers(1, 12), n=ns, threads=st.integers(1, 3),
       seed=st.integers(0, 2**31))
def test_prepared_handles_match_numpy(spec: str, M: int, cin: int, n: int, threads: int,
                                      seed: int) -> None:
    """grimsim.execute.prepare's CSR / N:M / pattern path (copied and validated once)."""
    from grimsim.execute.kernels import prepare

    rng = np.random.default_rng(seed)
    K = cin * 9
    kernel = (3, 3) if spec.startswith("pattern") else None
    w = rng.standard_normal((M, K)).astype(np.float32)
    mask = make_mask(w, spec, kernel=kernel)
    gemm = prepare(encode(w, mask, spec, kernel=kernel))
    x = x_for(rng, K, n)
    assert_close(gemm.run(x, threads), reference(np.where(mask, w, 0), x), K)
    assert gemm.prepared_bytes > 0 and gemm.prepare_s >= 0


def test_prepared_copy_is_private_and_checks_x() -> None:
    rng = np.random.default_rng(9)
    w = (rng.standard_normal((20, 30)) * (rng.random((20, 30)) < 0.3)).astype(np.float32)
    arrays = csr_arrays(w)
    handle = K_.csr_prepare(**arrays)
    x = x_for(rng, 30, 5)
    arrays["data"][:] = 0.0  # the caller's arrays change after preparing
    arrays["indices"][:] = 0
    assert_close(K_.spmm_prepared(handle, x, threads=2), reference(w, x), 30)
    assert handle.shape == (20, 30) and handle.nbytes >= arrays["data"].nbytes
    with pytest.raises(ValueError, match="rows but the matrix has K = 30"):
        K_.spmm_prepared(handle, np.ones((29, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="threads"):
        K_.spmm_prepared(handle, x, threads=0)
    timing = K_.bench_prepared(handle, x, threads=1, min_time_s=0.001)
    assert 0 < timing["min_s"] <= timing["median_s"]


@given(rows=st.integers(1, 8192), k=st.integers(1, 20000), nv=st.integers(1, 1000),
       threads=st.integers(1, 8), lanes=st.sampled_from([4, 8, 16]),
       l2_kib=st.sampled_from([0, 128, 256, 512, 1024, 1280, 2048, 4096]))
def test_the_cost_model_lays_out_packed_bcr_as_the_kernel_does(
        rows: int, k: int, nv: int, threads: int, lanes: int, l2_kib: int) -> None:
    """The analytical model's copy of the N tile / K chunk choice (features.bcr_tile_layout)
    agrees with the kernel's own (sparse_driver.hpp bcr_panel_layout)."""
    nt, kc = K_.bcr_panel_layout(rows, k, nv, threads, lanes, l2_kib * 1024)
    m_nt, _, _, m_kc = bcr_tile_layout(np.array([float(rows)]), np.array([float(k)]),
                                       np.array([float(nv)]), float(lanes), l2_kib * 1024,
                                       np.array([threads]))
    assert m_nt[0] == nt
    assert m_kc[0] == (kc if kc else k)  # the kernel says 0 when one chunk covers K


def test_bcr_panel_layout_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="nv_total must be >= 1"):
        K_.bcr_panel_layout(128, 1152, 0, 1, 16, 1 << 21)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        K_.bcr_panel_layout(128, 1152, 49, 0, 16, 1 << 21)
    assert K_.l2_cache_bytes() >= 64 * 1024
