"""run_network on tiny networks: every layer measured with the right kernel, schemes reach
their sparsity, outputs match numpy, bad input is a clear error."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from grimsim.errors import GrimsimError, MappingError, SchemeError, ShapeError
from grimsim.execute import KernelCheckError, legal_assignment, resolve_assignment, run_network
from grimsim.execute.cheap_ops import cheap_op, supported_ops
from grimsim.network import Network, NetworkBuilder, Op, fuse
from grimsim.network import workload as wl
from grimsim.pruning import parse_spec, sparse_workload

sys.path.insert(0, str(Path(__file__).parent))
from pool_reference import pool_reference

FAST = {"min_time_s": 0.001, "max_reps": 20}


def _cnn() -> Network:
    b = NetworkBuilder("tiny_cnn")
    b.input("x", (1, 3, 12, 12))

    def add(layer: wl.LayerWorkload, bottoms: list[str]) -> str:
        b.add(layer, bottoms, [layer.name])
        return layer.name

    x = add(wl.conv2d("stem", b.shape("x"), 16, 3, padding=1), ["x"])
    x = add(wl.batchnorm("stem.bn", b.shape(x)), [x])
    x = add(wl.activation_op("stem.relu", b.shape(x)), [x])
    y = add(wl.conv2d("c3", b.shape(x), 16, 3, padding=1, activation="relu"), [x])
    y = add(wl.conv2d("dw", b.shape(y), 16, 3, padding=1, groups=16), [y])
    y = add(wl.conv2d("pw", b.shape(y), 16, 1), [y])
    s = add(wl.eltwise("add", [b.shape(x), b.shape(y)]), [x, y])
    s = add(wl.conv2d("grouped", b.shape(s), 32, 3, stride=2, padding=(1, 1, 0, 0),
                      groups=2), [s])
    p = add(wl.pool2d("pool", b.shape(s), 2, 2, ceil_mode=True), [s])
    up = add(wl.deconv2d("up", b.shape(p), 8, 2, stride=2), [p])
    g = add(wl.global_pool("gap", b.shape(up)), [up])
    f = add(wl.reshape("flat", b.shape(g), (1, 8)), [g])
    f = add(wl.linear("fc", b.shape(f), 10), [f])
    add(wl.softmax("prob", b.shape(f)), [f])
    return fuse(b.build())


def _seq() -> Network:
    b = NetworkBuilder("tiny_seq")
    b.input("x", (1, 6, 16))

    def add(layer: wl.LayerWorkload, bottoms: list[str]) -> str:
        b.add(layer, bottoms, [layer.name])
        return layer.name

    x = add(wl.recurrent("gru", "gru", b.shape("x"), 32), ["x"])
    a = add(wl.attention("attn", b.shape(x), 2), [x])
    x = add(wl.eltwise("res", [b.shape(a), b.shape(x)]), [a, x])
    x = add(wl.layernorm("ln", b.shape(x)), [x])
    x = add(wl.recurrent("lstm", "lstm", b.shape(x), 8, bidirectional=True), [x])
    add(wl.linear("head", b.shape(x), 4), [x])
    return b.build()


CNN_KERNELS = {"stem": "im2col+gemm", "c3": "winograd", "dw": "depthwise", "pw": "gemm",
               "add": "numpy:eltwise", "grouped": "im2col+gemm", "pool": "cpp:pool",
               "up": "gemm", "gap": "numpy:global_pool", "flat": "none", "fc": "gemv",
               "prob": "cpp:softmax", "x": "none"}
SEQ_KERNELS = {"gru": "gemm+gemv", "attn": "gemm", "res": "numpy:eltwise",
               "ln": "cpp:layernorm", "lstm": "gemm+gemv", "head": "gemm", "x": "none"}


@pytest.fixture(scope="module")
def cnn() -> Network:
    return _cnn()


@pytest.fixture(scope="module")
def seq() -> Network:
    return _seq()


@pytest.mark.parametrize(("builder", "kernels"), [(_cnn, CNN_KERNELS), (_seq, SEQ_KERNELS)])
def test_every_layer_measured_with_its_kernel(builder, kernels) -> None:  # type: ignore[no-untyped-def]
    net = builder()
    result = run_network(net, check=True, **FAST)
    assert [r.name for r in result.layers] == [layer.name for layer in net.layers()]
    assert {r.name: r.kernel for r in result.layers} == kernels
    for row in result.layers:
        if row.kernel == "none":
            assert row.measured_s == 0.0
            continue
        assert row.measured_s > 0, row
        assert math.isclose(row.measured_s, sum(v for _, v in row.parts), rel_tol=1e-12)
        for g in row.gemms:
            assert g.measured_s > 0 and g.max_rel_err is not None
    assert result.measured_s == pytest.approx(sum(r.measured_s for r in result.layers))
    assert result.checked and result.threads == 1 and result.simd


def test_recurrent_and_attention_parts(seq: Network) -> None:
    result = run_network(seq, **FAST)
    gru = result.layer("gru")
    assert {name for name, _ in gru.parts} == {"r.ih_s", "z.ih_s", "n.ih_s",
                                                "recurrent_steps_s"}
    hh = [g for g in gru.gemms if g.name.endswith(".hh")]
    assert len(hh) == 3 and all(g.repeats == 6 and g.kernel == "gemv" for g in hh)
    for g in hh:  # the GEMM row is one step timed alone x the time steps
        assert g.measured_s == pytest.approx(dict(g.parts)["step_s"] * 6)
    lstm = result.layer("lstm")
    assert {"recurrent_steps_s", "reverse.recurrent_steps_s"} <= {n for n, _ in lstm.parts}
    assert len(lstm.gemms) == 16
    attn = result.layer("attn")
    assert {n for n, _ in attn.parts} == {"q_s", "k_s", "v_s", "qk_s", "av_s", "out_s",
                                          "softmax_s"}
    qk = next(g for g in attn.gemms if g.name == "attn.qk")
    assert not qk.prunable and qk.sparsity is None and qk.format_bytes == 0


def test_fused_network_runs_no_batchnorm(cnn: Network) -> None:
    names = [layer.name for layer in cnn.layers()]
    assert "stem.bn" not in names and "stem.relu" not in names


@pytest.mark.parametrize("spec", ["bcr:4x8:0.75", "unstructured:0.75", "nm:2:4", "pattern:4",
                                  "filter:0.5"])
def test_schemes_reach_their_sparsity_and_match_numpy(cnn: Network, spec: str) -> None:
    assignment, skipped = legal_assignment(cnn, spec)
    assert assignment, spec
    result = run_network(cnn, assignment, check=True, **FAST)
    target = parse_spec(spec).target_sparsity
    kind = {"unstructured": "csr", "nm": "nm", "pattern": "pattern"}.get(spec.split(":")[0],
                                                                         "bcr")
    pruned = [g for g in result.gemm_rows() if g.scheme == spec]
    assert pruned
    for g in pruned:
        layer = cnn.layer(g.name)
        assert g.sparsity is not None
        if g.groups == 1 or layer.op == Op.DWCONV:  # one mask over the M x K matrix
            assert g.sparsity == pytest.approx(sparse_workload(layer, spec).sparsity), g
        else:  # each group is its own GEMM with its own mask
            assert abs(g.sparsity - target) <= 0.05, g
        if g.K % 4 == 0 or not spec.startswith("nm"):  # no partial N:M group
            assert abs(g.sparsity - target) <= 0.05, g
        assert g.max_rel_err is not None and g.max_rel_err < 1e-3
        if layer.op == Op.DWCONV:
            assert g.kernel == "depthwise"  # no sparse depthwise kernel: zeros in the direct one
        else:
            assert g.kernel == kind, g
    for name in assignment:
        row = result.layer(name)
        assert row.scheme == spec and row.format_bytes > 0
        if cnn.layer(name).op == Op.CONV and row.kernel == kind:
            parts = dict(row.parts)
            assert set(parts) == {"im2col_s", "spmm_s"} and parts["spmm_s"] > 0
    dense = run_network(cnn, **FAST)
    assert {r.name for r in dense.layers} == {r.name for r in result.layers}
    listed = {s.name for s in skipped}
    assert not listed & set(assignment)


def test_legal_assignment_skips_depthwise_and_small_k(cnn: Network, seq: Network) -> None:
    assignment, skipped = legal_assignment(cnn, "bcr:4x8:0.75", skip_depthwise=True, min_k=32)
    reasons = {s.name: s.reason for s in skipped}
    assert "depthwise" in reasons["dw"]
    assert "K=27" in reasons["stem"]  # 3 channels x 3x3
    assert "K=16" in reasons["pw"] and "K=8" in reasons["fc"]
    assert set(assignment) == {"c3", "grouped", "up"}  # deconv K = 32 input channels
    # without the extra rules it mirrors is_legal: bcr is legal everywhere
    everywhere, none_skipped = legal_assignment(cnn, "bcr:4x8:0.75")
    assert none_skipped == () and "dw" in everywhere and "stem" in everywhere
    # pattern is legal on 3x3 convs only (not depthwise); the others are listed with why
    pattern, skipped_p = legal_assignment(cnn, "pattern:4")
    assert set(pattern) == {"stem", "c3", "grouped"}
    assert {"dw", "pw", "up", "fc"} <= {s.name for s in skipped_p}
    # a GRU with few input features keeps its .ih GEMMs dense, by GEMM name
    rnn, skipped_r = legal_assignment(seq, "unstructured:0.5", min_k=24)
    assert "gru.r.hh" in rnn and "gru.r.ih" not in rnn and "gru" not in rnn
    assert "gru.r.ih" in {s.name for s in skipped_r}
    assert legal_assignment(cnn, "dense") == ({}, ())
    with pytest.raises(GrimsimError, match="min_k"):
        legal_assignment(cnn, "bcr:4x8:0.5", min_k=0)


def test_gemm_row_assignment_prunes_only_that_gemm(seq: Network) -> None:
    schemes = resolve_assignment(seq, {"gru": "unstructured:0.5",
                                       "gru.z.hh": "nm:1:4"})
    assert schemes["gru.z.hh"] == parse_spec("nm:1:4")
    assert schemes["gru.r.ih"] == parse_spec("unstructured:0.5")
    assert schemes["attn.q"].is_dense
    result = run_network(seq, {"gru.z.hh": "nm:1:4"}, check=True, **FAST)
    gru = result.layer("gru")
    assert gru.scheme == "mixed"
    kinds = {g.name: g.kernel for g in gru.gemms}
    assert kinds["gru.z.hh"] == "nm" and kinds["gru.r.hh"] == "gemv"
    assert 0 < (gru.sparsity or 0) < 0.75


def test_illegal_and_unknown_assignments_are_clear_errors(cnn: Network, seq: Network) -> None:
    with pytest.raises(SchemeError, match="'pw'"):
        run_network(cnn, {"pw": "pattern:4"}, **FAST)
    with pytest.raises(SchemeError, match="attn"):
        run_network(seq, {"attn.qk": "bcr:4x8:0.5"}, **FAST)
    with pytest.raises(SchemeError, match="'pool'"):
        run_network(cnn, {"pool": "unstructured:0.5"}, **FAST)
    with pytest.raises(MappingError, match="nope"):
        run_network(cnn, {"nope": "dense"}, **FAST)
    with pytest.raises(SchemeError, match="fc"):
        run_network(cnn, {"fc": "bcr:banana"}, **FAST)


def test_kernel_choice(cnn: Network) -> None:
    result = run_network(cnn, kernel_choice={"c3": "im2col+gemm", "stem": "winograd"},
                         check=True, **FAST)
    assert result.layer("c3").kernel == "im2col+gemm"
    assert result.layer("stem").kernel == "winograd"
    assert result.layer("stem").gemms[0].prepared_bytes > 0
    with pytest.raises(GrimsimError, match="'dw'"):
        run_network(cnn, kernel_choice={"dw": "winograd"}, **FAST)
    with pytest.raises(GrimsimError, match="dense weights only"):
        run_network(cnn, {"c3": "bcr:4x8:0.5"}, kernel_choice={"c3": "winograd"}, **FAST)
    with pytest.raises(GrimsimError, match="unknown kernel"):
        run_network(cnn, kernel_choice={"c3": "fft"}, **FAST)
    with pytest.raises(MappingError):
        run_network(cnn, kernel_choice={"nope": "auto"}, **FAST)


def test_given_weights(cnn: Network) -> None:
    fc = cnn.layer("fc").gemms[0]
    w = np.zeros((fc.M, fc.K), dtype=np.float64)
    w[:, :4] = 1.0  # filter pruning at 50% keeps the 5 largest rows -> all rows tie
    result = run_network(cnn, {"fc": "column:0.5"}, weights={"fc": w}, check=True, **FAST)
    assert result.layer("fc").sparsity == pytest.approx(0.5)
    with pytest.raises(ShapeError, match=r"\(10, 8\)"):
        run_network(cnn, weights={"fc": np.ones((8, 10))}, **FAST)
    with pytest.raises(ShapeError, match="in_channels/groups"):
        run_network(cnn, weights={"c3": np.ones((16, 16))}, **FAST)
    with pytest.raises(MappingError, match="not a GEMM"):
        run_network(cnn, weights={"pool": np.ones((1, 1))}, **FAST)
    bad = np.ones((fc.M, fc.K))
    bad[0, 0] = np.nan
    with pytest.raises(GrimsimError, match="NaN"):
        run_network(cnn, weights={"fc": bad}, **FAST)


def test_check_catches_a_wrong_kernel(cnn: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    import grimsim.execute.runner as runner

    real = runner.prepare

    def broken(fmt):  # type: ignore[no-untyped-def]
        p = real(fmt)
        return runner.replace(p, _run=lambda x, t: np.zeros((p.shape[0], x.shape[1]),
                                                            dtype=np.float32))

    monkeypatch.setattr(runner, "prepare", broken)
    # the first GEMM layer run through a prepared GEMM (the deconvolution) is caught
    with pytest.raises(KernelCheckError, match=r"GEMM 'up'.*differs from numpy"):
        run_network(cnn, check=True, **FAST)


def test_bad_options(cnn: Network) -> None:
    for bad in ({"threads": 0}, {"threads": 1.5}, {"threads": True}, {"min_time_s": -1.0},
                {"min_time_s": float("nan")}):
        with pytest.raises(GrimsimError):
            run_network(cnn, **{**FAST, **bad})  # type: ignore[arg-type]


def test_two_threads_and_json(seq: Network) -> None:
    result = run_network(seq, {"attn": "bcr:4x8:0.5"}, threads=2, **FAST)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["threads"] == 2 and data["measured_s"] == pytest.approx(result.measured_s)
    attn = next(row for row in data["layers"] if row["name"] == "attn")
    assert attn["scheme"] == "bcr:4x8:0.5" and attn["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert {g["name"] for g in attn["gemms"]} >= {"attn.q", "attn.qk"}


# --------------------------------------------------------------------------- cheap ops


def _ops() -> list[wl.LayerWorkload]:
    x = (1, 4, 7, 7)
    return [
        wl.pool2d("maxpool_ceil", x, 3, 2, 1, ceil_mode=True),
        wl.pool2d("avgpool", x, 2, 2, kind="avg"),
        wl.elementwise_op("adaptive", Op.POOL, [x], [(1, 4, 3, 3)],
                          attrs={"kind": "avg", "adaptive": True, "output_size": (3, 3)}),
        wl.global_pool("gmax", x, "max"),
        wl.eltwise("mul_bcast", [x, (1, 4, 1, 1)], "mul"),
        # ncnn's BinaryOp aligns a (1, C) operand with the channels of (1, C, H, W)
        wl.elementwise_op("mul_ncnn", Op.ELTWISE, [x, (1, 4)], [x], attrs={"kind": "mul"}),
        wl.elementwise_op("scalar", Op.ELTWISE, [x], [x], attrs={"kind": "add", "scalar": 2.0}),
        *(wl.activation_op(f"act_{k}", x, k) for k in ("relu", "relu6", "leakyrelu", "sigmoid",
                                                        "tanh", "swish", "hardswish", "gelu",
                                                        "elu", "weird")),
        wl.batchnorm("bn", x),
        wl.concat("cat", [x, (1, 2, 7, 7)]),
        wl.elementwise_op("split", Op.SPLIT, [x], [(1, 2, 7, 7), (1, 2, 7, 7)]),
        wl.elementwise_op("slice", Op.SLICE, [x], [(1, 4, 3, 7)]),
        wl.elementwise_op("first_token", Op.SLICE, [(1, 5, 8)], [(1, 8)],
                          attrs={"axis": 1, "index": 0}),
        wl.softmax("softmax", x, axis=1),
        wl.layernorm("layernorm", (1, 5, 8)),
        wl.elementwise_op("permute", Op.PERMUTE, [x], [(1, 7, 7, 4)]),
        wl.elementwise_op("pad", Op.PAD, [x], [(1, 4, 9, 9)]),
        wl.elementwise_op("resize", Op.RESIZE, [x], [(1, 4, 14, 14)],
                          attrs={"mode": "linear"}),
        wl.elementwise_op("reduce", Op.REDUCE, [x], [(1, 4, 1, 1)],
                          attrs={"kind": "reducemean", "axes": (2, 3)}),
        wl.embedding("embed", (1, 5), 50, 8),
        wl.elementwise_op("lrn", Op.LRN, [x], [x]),
        wl.elementwise_op("norm", Op.NORM, [x], [x]),
        wl.elementwise_op("other", Op.OTHER, [x, (1, 3)], [(1, 9, 7, 7)]),
        wl.elementwise_op("odd_slice", Op.SLICE, [x], [(2, 9)]),
    ]


@pytest.mark.parametrize("layer", _ops(), ids=lambda layer: layer.name)
def test_cheap_op_stand_ins_run(layer: wl.LayerWorkload) -> None:
    op = cheap_op(layer, np.random.default_rng(0))
    assert op is not None
    op.fn()
    if layer.name in ("other", "odd_slice"):
        expected = "numpy:copy"
    elif layer.name in _CPP_OPS:
        expected = f"cpp:{layer.op}"
    else:
        expected = f"numpy:{layer.op}"
    assert op.kernel == expected
    assert layer.op in supported_ops() or op.kernel == "numpy:copy"


#: The layers of _ops() that a C++ kernel runs (the rest are numpy stand-ins).
_CPP_OPS = {"maxpool_ceil", "avgpool", "bn", "softmax", "permute", "resize", "layernorm",
            "lrn", "reduce",
            *(f"act_{k}" for k in ("relu", "relu6", "leakyrelu", "sigmoid", "tanh", "swish",
                                   "hardswish", "gelu", "elu"))}


def _run_op(layer: wl.LayerWorkload) -> tuple[list[np.ndarray], list[np.ndarray]]:
    op = cheap_op(layer, np.random.default_rng(1))
    assert op is not None and op.kernel.endswith(f":{layer.op}")
    op.fn()
    return list(op.inputs), list(op.outputs)


def test_cheap_stand_ins_compute_the_op() -> None:
    (x,), (y,) = _run_op(wl.pool2d("p", (1, 2, 4, 4), 2, 2))
    np.testing.assert_allclose(y, x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)))
    (x,), (y,) = _run_op(wl.pool2d("a", (1, 2, 4, 4), 2, 2, kind="avg"))
    np.testing.assert_allclose(y, x.reshape(1, 2, 2, 2, 2, 2).mean(axis=(3, 5)), rtol=1e-6)
    (a, b), (y,) = _run_op(wl.eltwise("e", [(1, 3, 2, 2), (1, 3, 1, 1)], "mul"))
    np.testing.assert_allclose(y, a * b)
    (x,), (y,) = _run_op(wl.softmax("s", (2, 5)))
    np.testing.assert_allclose(y, np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True), rtol=1e-5)
    (a, b), (y,) = _run_op(wl.concat("c", [(1, 2, 3), (1, 1, 3)]))
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=1))
    (x,), (y,) = _run_op(wl.activation_op("r", (3, 4), "relu"))
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    (x,), (y,) = _run_op(wl.layernorm("l", (2, 6)))
    assert y.shape == x.shape and np.all(np.isfinite(y))
    (ids,), (y,) = _run_op(wl.embedding("emb", (1, 4), 7, 3))
    assert ids.max() < 7 and y.shape == (1, 4, 3)
    (x,), (y,) = _run_op(wl.softmax("s1", (1, 5, 3, 2), axis=1))
    np.testing.assert_allclose(y, np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), rtol=1e-5)
    (x,), (y,) = _run_op(wl.activation_op("sig", (2, 3, 5), "sigmoid"))
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-5)


def test_permutes_move_the_data_the_layer_names() -> None:
    x = (1, 6, 2, 3)
    shuffle = wl.elementwise_op("shuffle", Op.PERMUTE, [x], [x], ops_per_output=0,
                                attrs={"kind": "shuffle_channel", "group": 2})
    (a,), (y,) = _run_op(shuffle)
    # channel c of the output is channel (c % 2) * 3 + c // 2 of the input
    np.testing.assert_array_equal(y, a[:, [0, 3, 1, 4, 2, 5]])
    transpose = wl.elementwise_op("t", Op.PERMUTE, [x], [(1, 3, 6, 2)],
                                  attrs={"perm": (0, 3, 1, 2)})
    (a,), (y,) = _run_op(transpose)
    np.testing.assert_array_equal(y, a.transpose(0, 3, 1, 2))
    d2s = wl.elementwise_op("d2s", Op.PERMUTE, [(1, 8, 2, 3)], [(1, 2, 4, 6)],
                            attrs={"blocksize": 2})
    (a,), (y,) = _run_op(d2s)
    # ONNX DepthToSpace, DCR mode
    want = a.reshape(1, 2, 2, 2, 2, 3).transpose(0, 3, 4, 1, 5, 2).reshape(1, 2, 4, 6)
    np.testing.assert_array_equal(y, want)
    # a layout change without an order (ncnn Reshape with permute): channels last
    (a,), (y,) = _run_op(wl.elementwise_op("cl", Op.PERMUTE, [x], [(1, 6, 6)]))
    np.testing.assert_array_equal(y.reshape(-1), a.reshape(1, 6, 6).transpose(0, 2, 1).ravel())


def test_reduce_stand_in_follows_the_shapes_when_axes_skip_the_batch() -> None:
    # ncnn's Reduction counts axes without the batch: (1, 2) = h, w of (1, C, H, W)
    keep = wl.elementwise_op("r", Op.REDUCE, [(1, 3, 4, 5)], [(1, 3, 1, 1)],
                             attrs={"axes": (1, 2), "kind": "mean"})
    op = cheap_op(keep, np.random.default_rng(1))
    assert op is not None and op.kernel == "cpp:reduce"  # a spatial reduce is a global pool
    (x,), (y,) = _run_op(keep)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True), rtol=1e-6)
    drop = wl.elementwise_op("d", Op.REDUCE, [(1, 3, 4, 5)], [(1, 3)],
                             attrs={"axes": (1, 2), "kind": "max"})
    (x,), (y,) = _run_op(drop)
    np.testing.assert_array_equal(y, x.max(axis=(2, 3)))


def test_resize_stand_ins_follow_the_mode() -> None:
    (x,), (y,) = _run_op(wl.elementwise_op("up", Op.RESIZE, [(1, 2, 3, 4)], [(1, 2, 6, 8)],
                                           attrs={"mode": "nearest"}))
    np.testing.assert_array_equal(y, x.repeat(2, axis=2).repeat(2, axis=3))
    (x,), (y,) = _run_op(wl.elementwise_op("bl", Op.RESIZE, [(1, 1, 2, 2)], [(1, 1, 4, 4)],
                                           attrs={"mode": "bilinear"}))
    # half-pixel centres: output row 1 sits at input row 0.25
    np.testing.assert_allclose(y[0, 0, 1, 0], 0.75 * x[0, 0, 0, 0] + 0.25 * x[0, 0, 1, 0],
                               rtol=1e-6)
    (x,), (y,) = _run_op(wl.elementwise_op("bc", Op.RESIZE, [(1, 1, 3, 3)], [(1, 1, 6, 6)],
                                           attrs={"mode": "bicubic"}))
    assert y.shape == (1, 1, 6, 6) and np.all(np.isfinite(y))


def test_views_and_inputs_cost_nothing() -> None:
    assert cheap_op(wl.reshape("r", (1, 4, 2), (1, 8)), np.random.default_rng(0)) is None
    assert cheap_op(wl.zero_cost("in", "input", [], [(1, 3)]), np.random.default_rng(0)) is None


def test_batch_of_images_runs_one_image_per_call() -> None:
    b = NetworkBuilder("batch2")
    b.input("x", (2, 8, 6, 6))
    b.add(wl.conv2d("c", (2, 8, 6, 6), 8, 3, padding=1), ["x"], ["c"])
    b.add(wl.conv2d("s", (2, 8, 6, 6), 16, 3, stride=2, padding=1), ["c"], ["s"])
    net = b.build()
    result = run_network(net, {"s": "unstructured:0.5"}, check=True, **FAST)
    assert result.layer("c").kernel == "winograd" and result.layer("s").kernel == "csr"
    s = result.layer("s").gemms[0]
    assert s.N == 2 * 3 * 3 and s.measured_s > 0 and s.max_rel_err is not None


# --------------------------------------------------------------------------- recurrence


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_gate_math_in_place_matches_the_formulas(kind: str) -> None:
    from grimsim.execute.runner import _GateMath

    gates = ("r", "z", "n") if kind == "gru" else ("i", "f", "g", "o")
    hidden, batch = 5, 2
    rng = np.random.default_rng(3)
    gi = rng.standard_normal((len(gates), hidden, batch), dtype=np.float32)
    gh = [rng.standard_normal((hidden, batch), dtype=np.float32) for _ in gates]
    h = rng.standard_normal((hidden, batch), dtype=np.float32)
    c = rng.standard_normal((hidden, batch), dtype=np.float32)
    a, b, h0, c0 = (np.asarray(v, dtype=np.float64) for v in (gi, np.stack(gh), h, c))
    if kind == "gru":  # PyTorch GRU: n = tanh(W_in x + r * (W_hn h)), h' = (1 - z) n + z h
        r, z = _sig(a[0] + b[0]), _sig(a[1] + b[1])
        n = np.tanh(a[2] + r * b[2])
        want_h, want_c = (1 - z) * n + z * h0, c0
    else:
        i, f, g, o = _sig(a[0] + b[0]), _sig(a[1] + b[1]), np.tanh(a[2] + b[2]), \
            _sig(a[3] + b[3])
        want_c = f * c0 + i * g
        want_h = o * np.tanh(want_c)
    step = _GateMath(gates, hidden, batch)
    for _ in range(2):  # the buffers are reused: a second call must not see the first one
        hh, cc = h.copy(), c.copy()
        step(gi, gh, hh, cc)
        np.testing.assert_allclose(hh, want_h, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cc, want_c, rtol=1e-5, atol=1e-6)
        assert hh.dtype == np.float32


def test_gate_math_calls_are_the_cost_models() -> None:
    """The cost model charges each step the numpy calls the runner's gate math makes."""
    from grimsim.cost.kernel_params import DEFAULT_PARAMS
    from grimsim.execute.runner import _GateMath

    for kind, n in DEFAULT_PARAMS.recurrent_numpy_calls.items():
        assert _GateMath.CALLS[kind] == n


def test_recurrence_carries_its_state_between_steps() -> None:
    from grimsim.execute.kernels import prepare
    from grimsim.execute.runner import _GateMath, _Recurrence
    from grimsim.pruning import DenseFormat

    rng = np.random.default_rng(0)
    hidden, steps = 6, 3
    w = [rng.standard_normal((hidden, hidden), dtype=np.float32) for _ in range(3)]
    gi = rng.standard_normal((steps, 3, hidden, 1), dtype=np.float32)
    h0 = rng.standard_normal((hidden, 1), dtype=np.float32)
    rec = _Recurrence([prepare(DenseFormat(m, m.shape)) for m in w], gi,
                      _GateMath(("r", "z", "n"), hidden, 1), h0, 1)
    h = h0.astype(np.float64)
    for t in range(steps + 1):  # wraps around to step 0
        rec()
        gh = np.stack([m.astype(np.float64) @ h for m in w])
        a = gi[t % steps].astype(np.float64)
        r, z = _sig(a[0] + gh[0]), _sig(a[1] + gh[1])
        n = np.tanh(a[2] + r * gh[2])
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(rec.h, h, rtol=1e-4, atol=1e-5)
    assert np.array_equal(h0, h0.copy())  # the caller's initial state is not mutated


# --------------------------------------------------------------------------- cheap ops


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding", "ceil", "kind"), [
    ((1, 3, 9, 9), 3, 2, 1, False, "max"),
    ((1, 3, 9, 9), 3, 2, 1, True, "max"),
    ((2, 2, 7, 6), 2, 2, 0, True, "avg"),
    ((1, 4, 8, 8), 3, 1, 1, False, "avg"),
    ((1, 2, 6, 10), (1, 3), (1, 2), 0, False, "max"),
])
def test_separable_pool_matches_the_windows(shape: tuple[int, ...], kernel: object,
                                            stride: object, padding: int, ceil: bool,
                                            kind: str) -> None:
    layer = wl.pool2d("p", shape, kernel, stride, padding, ceil_mode=ceil, kind=kind)
    (x,), (y,) = _run_op(layer)
    want = pool_reference(x.astype(np.float64), layer.attr("kernel"), layer.attr("stride"),
                          layer.attr("padding")[:2], y.shape[2:], kind)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_global_pool_and_clipped_activations_compute_the_op() -> None:
    (x,), (y,) = _run_op(wl.global_pool("g", (1, 3, 5, 4)))
    np.testing.assert_allclose(y.reshape(1, 3), x.mean(axis=(2, 3)), rtol=1e-5)
    (x,), (y,) = _run_op(wl.global_pool("m", (1, 3, 5, 4), "max"))
    np.testing.assert_array_equal(y.reshape(1, 3), x.max(axis=(2, 3)))
    (x,), (y,) = _run_op(wl.activation_op("r6", (2, 50), "relu6"))
    np.testing.assert_array_equal(y, np.clip(x, 0, 6))
    (x,), (y,) = _run_op(wl.activation_op("hs", (2, 50), "hardswish"))
    np.testing.assert_allclose(y, x * np.clip(x + 3, 0, 6) / 6, rtol=1e-5, atol=1e-6)


def _tiny_fc() -> Network:
    b = NetworkBuilder("tiny_fc")
    b.input("x", (1, 64))
    b.add(wl.linear("fc", (1, 64), 32), ["x"], ["y"])
    return b.build()


def test_run_statistic_is_recorded_and_validated() -> None:
    net = _tiny_fc()
    fast = run_network(net, threads=1, min_time_s=0.001)
    assert fast.statistic == "min_s" and fast.to_dict()["statistic"] == "min_s"
    med = run_network(net, threads=1, min_time_s=0.001, statistic="median_s")
    assert med.statistic == "median_s" and med.measured_s > 0
    with pytest.raises(GrimsimError, match="statistic must be one of"):
        run_network(net, threads=1, statistic="mean_s")


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [int(p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"]


def test_run_network_holds_blas_to_one_thread_while_measuring(monkeypatch):
    # a BLAS worker left spinning after a numpy call shares the cores with a 2-thread kernel
    from threadpoolctl import threadpool_limits

    import grimsim.execute.runner as runner

    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        if not before or max(before) < 2:
            pytest.skip("numpy has no BLAS thread pool to hold")
        seen: list[list[int]] = []
        real = runner._run_layer

        def spy(ctx, layer):
            seen.append(_blas_threads())
            return real(ctx, layer)

        monkeypatch.setattr(runner, "_run_layer", spy)
        run_network(_cnn(), threads=2, **FAST)
        assert seen and all(t == [1] * len(t) for t in seen)
        assert _blas_threads() == before  # restored afterwards
