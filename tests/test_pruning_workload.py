"""SparseWorkload from real masks vs from the scheme alone, the batch variant, and model size."""

from __future__ import annotations

import math
import timeit

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import MappingError, SchemeError, ShapeError
from grimsim.network import Network, NetworkBuilder
from grimsim.network import workload as wl
from grimsim.network.workload import GemmView
from grimsim.pruning import (
    PruningScheme,
    encode,
    make_mask,
    model_bytes,
    parse_spec,
    sparse_workload,
    sparse_workload_batch,
)

rates = st.floats(0.0, 0.99, allow_nan=False)


@st.composite
def gemm_cases(draw: st.DrawFn) -> tuple[GemmView, PruningScheme]:
    kind = draw(st.sampled_from(["dense", "unstructured", "filter", "column", "pattern",
                                 "block_punched", "bcr", "nm"]))
    M = draw(st.integers(1, 48))
    kernel = draw(st.sampled_from([None, (1, 1), (3, 3), (1, 3)]))
    if kind == "pattern":
        kernel = (3, 3)
    positions = 1 if kernel is None else kernel[0] * kernel[1]
    K = positions * draw(st.integers(2 if kind == "pattern" else 1, 12))
    if kind == "pattern":
        scheme = PruningScheme.pattern(draw(st.one_of(st.none(), st.floats(5 / 9, 0.99))))
    elif kind == "nm":
        m = draw(st.integers(1, min(K, 8)))
        scheme = PruningScheme.nm(draw(st.integers(1, m)), m)
    elif kind == "bcr":
        s = draw(rates)
        which = draw(st.sampled_from(["none", "rows", "cols"]))
        frac = draw(st.floats(1 - s, 1.0))
        scheme = PruningScheme.bcr(draw(st.integers(1, 12)), draw(st.integers(1, 12)), s,
                                   frac if which == "rows" else None,
                                   frac if which == "cols" else None)
    elif kind == "block_punched":
        scheme = PruningScheme.block_punched(draw(st.integers(1, 8)), draw(st.integers(1, 8)),
                                             draw(rates))
    elif kind == "dense":
        scheme = PruningScheme.dense()
    else:
        scheme = PruningScheme(kind, draw(rates))
    gemm = GemmView("g", M, K, draw(st.integers(1, 200)), repeats=draw(st.integers(1, 3)),
                    kernel=kernel)
    return gemm, scheme


# which statistics are random (weight-dependent) per scheme: only their mean is exact
RANDOM_SPREAD = {"unstructured": ("cols_per_block", "row_work")}


@given(gemm_cases(), st.integers(0, 2**32 - 1))
def test_expected_statistics_equal_real_mask_statistics(case: tuple[GemmView, PruningScheme],
                                                        seed: int) -> None:
    gemm, scheme = case
    w = np.random.default_rng(seed).standard_normal((gemm.M, gemm.K)).astype(np.float32)
    real = sparse_workload(gemm, scheme, w)
    guess = sparse_workload(gemm, scheme)
    assert real.from_weights and not guess.from_weights
    for key in ("nnz", "sparsity", "macs", "dense_macs", "n_blocks", "format_bytes",
                "dense_bytes", "format", "block", "rows_per_block"):
        assert getattr(real, key) == getattr(guess, key), key
    random: tuple[str, ...] = RANDOM_SPREAD.get(scheme.kind, ())
    if scheme.kind == "pattern" and scheme.sparsity is not None:
        random = ("row_work",)
    for key in ("cols_per_block", "row_work"):
        a, b = getattr(real, key), getattr(guess, key)
        if key in random:
            assert a.mean == pytest.approx(b.mean)
            assert b.min <= b.mean <= b.max
        else:
            assert a == pytest.approx(b), key
    assert real.macs == real.nnz * gemm.N * gemm.repeats
    assert real.dense_macs == gemm.macs
    assert 0.0 <= real.proxy <= 1.0 and 0.0 <= guess.proxy <= 1.0
    assert real.sparsity == pytest.approx(1 - real.nnz / (gemm.M * gemm.K))
    mask = make_mask(w, scheme, kernel=gemm.kernel)
    assert real.format_bytes == encode(w, mask, scheme, kernel=gemm.kernel).nbytes


@given(st.sampled_from(["dense", "unstructured:0.9", "filter:0.3", "column:0.6", "nm:2:4",
                        "pattern:4", "pattern:4:0.8", "block_punched:4x8:0.7",
                        "bcr:16x32:0.75", "bcr:5x7:0.6", "bcr:8x4:0.5:cols=0.8",
                        "bcr:1x6:0.5", "bcr:6x1:0.5:cols=1.0"]),
       st.lists(st.tuples(st.integers(1, 300), st.integers(1, 80), st.integers(1, 500),
                          st.sampled_from([1, 9])), min_size=1, max_size=12))
def test_batch_equals_single_calls(spec: str, rows: list[tuple[int, int, int, int]]) -> None:
    scheme = parse_spec(spec)
    if scheme.kind == "pattern":
        rows = [(m, 9 * k, n, 9) for m, k, n, _ in rows]
    else:
        rows = [(m, k * p + 3, n, p) if scheme.kind == "nm" else (m, k * p, n, p)
                for m, k, n, p in rows]
    M, K, N, P = (np.array(c) for c in zip(*rows, strict=True))
    batch = sparse_workload_batch(M, K, N, scheme, repeats=2, kernel_size=P)
    assert len(batch) == len(rows)
    for i, (m, k, n, p) in enumerate(rows):
        one = sparse_workload(GemmView("g", m, k, n, repeats=2,
                                       kernel=(3, 3) if p == 9 else None), scheme)
        assert batch.nnz[i] == one.nnz and batch.macs[i] == one.macs
        assert batch.n_blocks[i] == one.n_blocks
        assert batch.format_bytes[i] == one.format_bytes
        assert batch.dense_bytes[i] == one.dense_bytes
        assert batch.sparsity[i] == pytest.approx(one.sparsity)
        for key in ("rows", "cols"):
            dist = getattr(one, f"{key}_per_block")
            got = [getattr(batch, f"{key}_{f}")[i] for f in ("mean", "min", "max")]
            assert got == pytest.approx([dist.mean, dist.min, dist.max])
        got = [getattr(batch, f"work_{f}")[i] for f in ("mean", "min", "max")]
        assert got == pytest.approx([one.row_work.mean, one.row_work.min, one.row_work.max])
        assert batch.proxy[i] == pytest.approx(one.proxy, abs=1e-12)
    no_proxy = sparse_workload_batch(M, K, N, scheme, kernel_size=P, proxy=False)
    assert np.isnan(no_proxy.proxy).all() and np.array_equal(no_proxy.nnz, batch.nnz)


def test_batch_rejects_bad_rows() -> None:
    with pytest.raises(SchemeError, match="row 1"):
        sparse_workload_batch([8, 8], [8, 2], [1, 1], "nm:2:4")
    with pytest.raises(SchemeError, match="pattern"):
        sparse_workload_batch([8], [18], [1], "pattern:4")  # kernel_size defaults to 1
    with pytest.raises(ShapeError):
        sparse_workload_batch([8, 8], [8], [1, 1], "dense")
    with pytest.raises(ShapeError):
        sparse_workload_batch([0], [8], [1], "dense")


def test_workload_units() -> None:
    lstm = wl.recurrent("rnn", "lstm", (2, 7, 16), 32)
    hh = next(g for g in lstm.gemms if g.name == "rnn.i.hh")
    work = sparse_workload(hh, "bcr:8x8:0.75")
    assert work.macs == work.nnz * 2 * 7 and work.repeats == 7
    conv = wl.conv2d("dw", (1, 32, 8, 8), 32, 3, padding=1, groups=32)
    work = sparse_workload(conv, "filter:0.5")
    assert work.dense_macs == 32 * 9 * 64 and work.macs == 16 * 9 * 64
    assert work.block == (32, 9) and work.format == "bcr"
    mm = wl.matmul("mm", (1, 8, 16), (1, 16, 4))
    dense = sparse_workload(mm, "dense")
    assert dense.format_bytes == dense.dense_bytes == 0 and dense.macs == mm.macs
    assert sparse_workload(conv, "dense").compression == 1.0


def test_workload_errors() -> None:
    lstm = wl.recurrent("rnn", "gru", (1, 3, 8), 8)
    with pytest.raises(SchemeError, match="GEMMs"):
        sparse_workload(lstm, "unstructured:0.5")
    fc = wl.linear("fc", (1, 16), 8)
    with pytest.raises(ShapeError, match="expected"):
        sparse_workload(fc, "unstructured:0.5", np.ones((16, 8)))
    with pytest.raises(SchemeError, match="3x3"):
        sparse_workload(fc, "pattern:4")


def test_single_calls_are_fast() -> None:
    """The cost model calls this in loops: well under 50 us once a shape has been seen."""
    gemm = GemmView("g", 512, 4608, 196, kernel=(3, 3))
    scheme = parse_spec("bcr:16x32:0.75")
    sparse_workload(gemm, scheme)
    per_call = min(timeit.repeat(lambda: sparse_workload(gemm, scheme), number=500,
                                 repeat=3)) / 500
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} us"


def test_batch_is_fast() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    M = rng.choice([64, 128, 256, 512], n)
    K = rng.choice([576, 1152, 2304, 4608], n)
    N = rng.integers(1, 3136, n)
    best = min(timeit.repeat(lambda: sparse_workload_batch(M, K, N, "bcr:16x32:0.75",
                                                           proxy=False), number=1, repeat=2))
    assert n / best > 2e5, f"{n / best:.3g} rows/s"


# --------------------------------------------------------------------------- model size


def _tiny() -> Network:
    b = NetworkBuilder("tiny")
    b.input("data", (1, 16, 14, 14))
    b.add(wl.conv2d("conv1", (1, 16, 14, 14), 32, 3, padding=1), ["data"], ["c1"])
    b.add(wl.batchnorm("bn1", (1, 32, 14, 14)), ["c1"], ["b1"])
    b.add(wl.global_pool("gp", (1, 32, 14, 14), keepdims=False), ["b1"], ["g"])
    b.add(wl.linear("fc", (1, 32), 10), ["g"], ["out"])
    return b.build()


def test_model_bytes_per_layer_and_total() -> None:
    net = _tiny()
    dense = model_bytes(net, {})
    assert dense.dense_bytes == dense.compressed_bytes == net.total_params * 4
    assert dense.ratio == 1.0
    sized = model_bytes(net, {"conv1": "bcr:4x8:0.75", "fc": parse_spec("dense")})
    conv = sized.layer("conv1")
    gemm = net.layer("conv1").gemms[0]
    fmt_bytes = sparse_workload(gemm, "bcr:4x8:0.75").format_bytes
    assert conv.dense_bytes == (32 * 16 * 9 + 32) * 4
    assert conv.compressed_bytes == conv.dense_bytes - 32 * 144 * 4 + fmt_bytes
    assert conv.schemes == (("conv1", "bcr:4x8:0.75"),)
    assert sized.layer("fc").compressed_bytes == sized.layer("fc").dense_bytes
    assert sized.layer("bn1").compressed_bytes == 64 * 4
    assert sized.compressed_bytes == dense.dense_bytes - conv.dense_bytes + conv.compressed_bytes
    assert sized.ratio > 1.0
    with pytest.raises(KeyError):
        sized.layer("nope")


def test_model_bytes_names_and_errors() -> None:
    b = NetworkBuilder("rnn")
    b.input("x", (1, 6, 24))
    b.add(wl.recurrent("lstm", "lstm", (1, 6, 24), 32), ["x"], ["h"])
    b.add(wl.linear("head", (1, 6, 32), 4), ["h"], ["y"])
    net = b.build()
    whole = model_bytes(net, {"lstm": "unstructured:0.8"})
    assert len(whole.layer("lstm").schemes) == 8  # every gate, input and recurrent
    one = model_bytes(net, {"lstm.f.ih": "unstructured:0.8"})
    assert one.layer("lstm").schemes == (("lstm.f.ih", "unstructured:0.8"),)
    mixed = model_bytes(net, {"lstm": "unstructured:0.8", "lstm.f.ih": "dense"})
    assert len(mixed.layer("lstm").schemes) == 7
    assert one.dense_bytes == whole.dense_bytes > whole.compressed_bytes
    assert one.compressed_bytes > whole.compressed_bytes
    with pytest.raises(MappingError, match="nope"):
        model_bytes(net, {"nope": "dense"})
    with pytest.raises(SchemeError, match="3x3"):
        model_bytes(net, {"head": "pattern:4"})
    with pytest.raises(SchemeError):
        model_bytes(net, {"head": "bcr:4x4"})
    with pytest.raises(SchemeError, match="prunable"):
        model_bytes(_tiny(), {"gp": "filter:0.5"})
    assert math.isfinite(whole.ratio)
