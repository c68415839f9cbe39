"""The ONNX importer on real .onnx files built with onnx.helper.

Shapes are checked against onnx's own shape inference, MACs against hand counts, params
against the sizes of the initializers, and weights against the initializers' values.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from grimsim.errors import GrimsimError, ModelFormatError, ShapeError, UnsupportedOpError
from grimsim.network import Op, fuse
from grimsim.network.graph import Network
from grimsim.network.onnx_import import load_onnx, onnx_weight_refs, read_onnx_weights
from grimsim.network.workload import recurrent

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


# --------------------------------------------------------------------------- helpers


def _weights(rng: np.random.Generator, **shapes: Sequence[int]) -> list[Any]:
    return [numpy_helper.from_array(rng.standard_normal(tuple(s)).astype(np.float32), name)
            for name, s in shapes.items()]


def _ints(name: str, values: Sequence[int] | int) -> Any:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _save(path: Path, nodes: list[Any], inputs: list[tuple[str, int, Sequence[Any] | None]],
          outputs: Sequence[str], inits: Sequence[Any] = (), opset: int = 17) -> Path:
    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info(n, t, d) for n, t, d in inputs],
        [helper.make_tensor_value_info(o, FLOAT, None) for o in outputs], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return path


def _onnx_shapes(path: Path, input_shapes: Mapping[str, Sequence[int]] | None = None
                 ) -> dict[str, tuple[int, ...]]:
    """Static tensor shapes by onnx.shape_inference (inputs fixed to ``input_shapes``)."""
    model = onnx.load(str(path))
    for vi in model.graph.input:
        if input_shapes and vi.name in input_shapes:
            for dim, value in zip(vi.type.tensor_type.shape.dim, input_shapes[vi.name],
                                  strict=True):
                dim.dim_value = int(value)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    shapes = {}
    for vi in (*inferred.graph.value_info, *inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


def _assert_shapes_match_onnx(net: Network, path: Path,
                              input_shapes: Mapping[str, Sequence[int]] | None = None) -> int:
    """Every named node's outputs and every edge's blob have onnx's inferred shape."""
    expected = _onnx_shapes(path, input_shapes)
    checked = 0
    for node in onnx.load(str(path)).graph.node:
        layer_name = f"{node.name}.to_onnx" if node.op_type in ("GRU", "LSTM") else node.name
        if not node.name or layer_name not in net:
            continue
        named = [o for o in node.output if o]
        assert len(net.layer(layer_name).output_shapes) == len(named)
        for tensor, shape in zip(named, net.layer(layer_name).output_shapes, strict=True):
            assert shape == expected[tensor], (node.name, tensor)
            checked += 1
    for _, _, data in net.graph.edges(data=True):
        if data["blob"] in expected:
            assert data["shape"] == expected[data["blob"]], data["blob"]
            checked += 1
    assert checked > 0
    return checked


def _initializer_sizes(path: Path, exclude: Sequence[str] = ()) -> int:
    model = onnx.load(str(path))
    return sum(math.prod(t.dims) for t in model.graph.initializer if t.name not in exclude)


def _assert_weights_fit_rows(net: Network, path: Path) -> dict[str, np.ndarray]:
    """read_onnx_weights gives one W per prunable GEMM row, shaped (M, K)."""
    weights = read_onnx_weights(path)
    rows = {g.name: g for _, g in net.prunable_rows()}
    assert set(weights) == set(rows)
    for name, w in weights.items():
        assert w.shape == rows[name].weight_shape, name
    return weights


# --------------------------------------------------------------------------- a small CNN


def _small_cnn(path: Path, rng: np.random.Generator, batch: Any = 1) -> Path:
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = _weights(rng, w=(8, 3, 3, 3), b=(8,), s=(8,), bb=(8,), m=(8,), v=(8,),
                     fw=(10, 8), fb=(10,))
    return _save(path, nodes, [("x", FLOAT, [batch, 3, 32, 32])], ["y"], inits)


def test_small_cnn_shapes_macs_params_and_weights(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = _small_cnn(tmp_path / "cnn.onnx", rng)
    net = load_onnx(path)
    assert [wl.op for wl in net.layers()] == ["input", Op.CONV, Op.BATCHNORM, Op.ACTIVATION,
                                              Op.POOL, Op.GLOBAL_POOL, Op.RESHAPE, Op.FC]
    _assert_shapes_match_onnx(net, path)
    conv, fc = net.layer("conv"), net.layer("fc")
    # conv: 8 filters of 3x3x3 over 32x32 outputs (pad 1); FC 8 -> 10
    assert (conv.gemms[0].M, conv.gemms[0].K, conv.gemms[0].N) == (8, 27, 1024)
    assert conv.macs == 8 * 27 * 32 * 32
    assert fc.macs == 10 * 8
    assert net.total_macs == 8 * 27 * 32 * 32 + 10 * 8
    # params: every initializer except BN's running mean and variance (buffers)
    assert net.total_params == _initializer_sizes(path, exclude=("m", "v"))
    assert net.total_params == (8 * 27 + 8) + 2 * 8 + (10 * 8 + 10)
    weights = _assert_weights_fit_rows(net, path)
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(weights["conv"], inits["w"].reshape(8, 27))
    np.testing.assert_array_equal(weights["fc"], inits["fw"])  # transB=1: B is already W
    # fusion folds BN and ReLU into the conv as an engine does; totals do not move
    fused = fuse(net)
    assert fused.layer("conv").fused == ("bn", "relu")
    assert (fused.total_macs, fused.total_params) == (net.total_macs, net.total_params)


def test_network_inputs_outputs_and_source(tmp_path: Path) -> None:
    path = _small_cnn(tmp_path / "cnn.onnx", np.random.default_rng(1))
    net = load_onnx(str(path), name="tiny")
    assert net.name == "tiny"
    assert net.source == str(path)
    # the initializers are not network inputs
    assert net.inputs == {"x": (1, 3, 32, 32)}
    assert net.outputs == ("y",)
    assert load_onnx(path).name == "cnn"


# --------------------------------------------------------------------------- convolutions


CONV_CASES = {
    "grouped": dict(cin=8, cout=12, k=3, group=4, pads=[1, 1, 1, 1]),
    "depthwise": dict(cin=16, cout=16, k=3, group=16, pads=[1, 1, 1, 1]),
    "dilated": dict(cin=4, cout=6, k=3, dilations=[2, 2], pads=[2, 2, 2, 2]),
    "strided_asym_pads": dict(cin=3, cout=5, k=5, strides=[2, 3], pads=[1, 0, 2, 3]),
    "same_upper": dict(cin=3, cout=4, k=4, strides=[2, 2], auto_pad="SAME_UPPER"),
    "same_lower": dict(cin=3, cout=4, k=4, strides=[3, 3], auto_pad="SAME_LOWER"),
    "valid": dict(cin=3, cout=4, k=3, strides=[2, 2], auto_pad="VALID"),
    "pointwise": dict(cin=16, cout=32, k=1),
}


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv_variants(tmp_path: Path, case: str) -> None:
    p = dict(CONV_CASES[case])
    cin, cout, k = p.pop("cin"), p.pop("cout"), p.pop("k")
    group = p.get("group", 1)
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **p)]
    inits = _weights(rng, w=(cout, cin // group, k, k))
    path = _save(tmp_path / f"{case}.onnx", nodes, [("x", FLOAT, [2, cin, 23, 19])], ["y"],
                 inits)
    net = load_onnx(path)
    _assert_shapes_match_onnx(net, path)
    layer = net.layer("conv")
    n, _, ho, wo = _onnx_shapes(path)["y"]
    gemm = layer.gemms[0]
    assert (gemm.M, gemm.K, gemm.N, gemm.groups) == (cout, cin // group * k * k, n * ho * wo,
                                                     group)
    assert layer.macs == cout * (cin // group) * k * k * n * ho * wo
    assert layer.op == (Op.DWCONV if case == "depthwise" else Op.CONV)
    assert net.total_params == _initializer_sizes(path)
    weights = _assert_weights_fit_rows(net, path)
    w = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])
    np.testing.assert_array_equal(weights["conv"], w.reshape(cout, -1))


def test_conv1d_keeps_rank3_shapes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", strides=[2],
                              pads=[1, 1]),
             helper.make_node("MaxPool", ["c"], ["y"], name="pool", kernel_shape=[2],
                              strides=[2])]
    path = _save(tmp_path / "c1d.onnx", nodes, [("x", FLOAT, [1, 4, 50])], ["y"],
                 _weights(rng, w=(6, 4, 3), b=(6,)))
    net = load_onnx(path)
    _assert_shapes_match_onnx(net, path)
    assert net.layer("conv").output_shape == (1, 6, 25)
    assert net.layer("conv").macs == 6 * 4 * 3 * 25



@given(
    cin_per_group=st.integers(1, 3), groups=st.integers(1, 3), cout_per_group=st.integers(1, 3),
    h=st.integers(1, 17), w=st.integers(1, 17), k=st.integers(1, 5), s=st.integers(1, 3),
    d=st.integers(1, 3), pads=st.lists(st.integers(0, 3), min_size=4, max_size=4),
    auto_pad=st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]),
)
def test_conv_shapes_agree_with_onnx_inference(cin_per_group: int, groups: int,
                                               cout_per_group: int, h: int, w: int, k: int,
                                               s: int, d: int, pads: list[int],
                                               auto_pad: str) -> None:
    span = (k - 1) * d + 1
    fits = {"NOTSET": min(h + pads[0] + pads[2], w + pads[1] + pads[3]) >= span,
            "VALID": min(h, w) >= span}.get(auto_pad, True)
    assume(fits)
    cin, cout = cin_per_group * groups, cout_per_group * groups
    attrs: dict[str, Any] = dict(strides=[s, s], dilations=[d, d], group=groups)
    if auto_pad == "NOTSET":
        attrs["pads"] = pads
    else:
        attrs["auto_pad"] = auto_pad
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)]
    inits = _weights(np.random.default_rng(0), w=(cout, cin_per_group, k, k))
    with tempfile.TemporaryDirectory() as tmp:
        path = _save(Path(tmp) / "conv.onnx", nodes, [("x", FLOAT, [1, cin, h, w])], ["y"],
                     inits)
        expected = _onnx_shapes(path)["y"]
        layer = load_onnx(path).layer("conv")
    assert layer.output_shape == expected
    assert layer.macs == cout * cin_per_group * k * k * expected[2] * expected[3]


# --------------------------------------------------------------------------- ConvTranspose


@pytest.mark.parametrize(("group", "attrs"), [
    (1, dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    (2, dict(strides=[2, 2], pads=[0, 1, 0, 1])),
    (1, dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    (1, dict(strides=[3, 3], output_shape=[20, 22])),
    (1, dict(strides=[1, 1], dilations=[2, 2])),
])
def test_conv_transpose(tmp_path: Path, group: int, attrs: dict[str, Any]) -> None:
    cin, cout_per_group, k = 4, 3, 3
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="up", group=group,
                              **attrs)]
    inits = _weights(rng, w=(cin, cout_per_group, k, k), b=(cout_per_group * group,))
    path = _save(tmp_path / "deconv.onnx", nodes, [("x", FLOAT, [2, cin, 7, 8])], ["y"], inits)
    net = load_onnx(path)
    _assert_shapes_match_onnx(net, path)
    layer = net.layer("up")
    gemm = layer.gemms[0]
    cout = cout_per_group * group
    # GEMM + col2im: every input pixel times a (cout/g*k*k) x (cin/g) weight block
    assert (gemm.M, gemm.K, gemm.N, gemm.groups) == (cout * k * k, cin // group, 2 * 7 * 8,
                                                     group)
    assert layer.macs == cin * cout_per_group * k * k * 2 * 7 * 8
    assert net.total_params == _initializer_sizes(path)
    weights = _assert_weights_fit_rows(net, path)
    w = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])
    view = weights["up"]
    # row (group, out channel in group, kernel row, kernel col), column = input channel
    # within the group
    cin_g = cin // group
    for g_idx, co, ky, kx, ci in [(0, 0, 0, 0, 0), (group - 1, 2, 1, 2, cin_g - 1),
                                  (0, 1, 2, 1, 0)]:
        row = ((g_idx * cout_per_group + co) * k + ky) * k + kx
        assert view[row, ci] == w[g_idx * cin_g + ci, co, ky, kx]
    (ref,) = onnx_weight_refs(path)
    np.testing.assert_array_equal(ref.from_gemm(w, view), w)


# --------------------------------------------------------------------------- DAG structure


def test_residual_add_and_concat(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["ar"], name="relu1"),
        helper.make_node("Conv", ["ar", "w2"], ["b"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["b", "x"], ["res"], name="add"),
        helper.make_node("Conv", ["res", "w3"], ["c"], name="conv3"),
        helper.make_node("Concat", ["res", "c"], ["cat"], name="cat", axis=1),
        helper.make_node("Relu", ["cat"], ["y"], name="relu2"),
    ]
    inits = _weights(rng, w1=(8, 8, 3, 3), w2=(8, 8, 3, 3), w3=(4, 8, 1, 1))
    path = _save(tmp_path / "res.onnx", nodes, [("x", FLOAT, [1, 8, 14, 14])], ["y"], inits)
    net = load_onnx(path)
    _assert_shapes_match_onnx(net, path)
    assert sorted(net.predecessors("add")) == ["conv2", "x"]
    assert sorted(net.predecessors("cat")) == ["add", "conv3"]
    assert net.layer("add").op == Op.ELTWISE and net.layer("add").params == 0
    assert net.layer("cat").output_shape == (1, 12, 14, 14)
    assert net.total_macs == 2 * (8 * 72 * 196) + 4 * 8 * 196
    assert net.total_params == _initializer_sizes(path)


# --------------------------------------------------------------------------- symbolic dims


def _dynamic_batch_model(path: Path) -> Path:
    """A conv net exported with a symbolic batch and a Shape-based flatten."""
    rng = np.random.default_rng(6)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", strides=[2, 2]),
        helper.make_node("Shape", ["c"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["n"], name="take_batch", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["c", "target"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "fw"], ["y"], name="fc"),
    ]
    inits = [*_weights(rng, w=(4, 3, 3, 3), fw=(4 * 7 * 7, 5)), _ints("zero", 0),
             _ints("axes0", [0]), _ints("minus_one", [-1])]
    return _save(path, nodes, [("x", FLOAT, ["batch", 3, 15, 15])], ["y"], inits)


def test_symbolic_batch_resolved_by_input_shapes(tmp_path: Path) -> None:
    path = _dynamic_batch_model(tmp_path / "dyn.onnx")
    for given_shape in [(3, 3, 15, 15), {"x": (3, 3, 15, 15)}]:
        net = load_onnx(path, given_shape)
        assert net.inputs == {"x": (3, 3, 15, 15)}
        # Shape -> Gather -> Unsqueeze -> Concat fold to the constant (3, -1): no layers
        assert "shape" not in net and "target" not in net
        assert net.layer("flatten").output_shape == (3, 4 * 7 * 7)
        assert net.layer("fc").gemms[0].N == 3
        assert net.layer("conv").gemms[0].N == 3 * 7 * 7
        assert net.total_macs == 4 * 27 * 3 * 49 + 5 * 196 * 3
        _assert_shapes_match_onnx(net, path, {"x": (3, 3, 15, 15)})


def test_symbolic_batch_without_input_shape_names_input_and_dim(tmp_path: Path) -> None:
    path = _dynamic_batch_model(tmp_path / "dyn.onnx")
    with pytest.raises(ShapeError) as err:
        load_onnx(path)
    msg = str(err.value)
    assert "'x'" in msg and "'batch'" in msg and "dimension 0" in msg and "--input" in msg
    assert str(path) in msg


def test_bad_input_shapes(tmp_path: Path) -> None:
    path = _dynamic_batch_model(tmp_path / "dyn.onnx")
    with pytest.raises(ShapeError, match="rank 4"):
        load_onnx(path, (1, 3, 15))
    with pytest.raises(ShapeError, match=r"'y_in'.*inputs are \['x'\]"):
        load_onnx(path, {"y_in": (1, 3, 15, 15)})
    with pytest.raises(ShapeError, match="positive"):
        load_onnx(path, (0, 3, 15, 15))
    # a conv that no longer fits its input names the node
    with pytest.raises(ShapeError, match="'conv'"):
        load_onnx(path, (1, 3, 2, 2))


def test_shared_symbol_resolves_every_input(tmp_path: Path) -> None:
    """BERT-style inputs share 'batch' and 'seq': one --input resolves them all."""
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], name="add")]
    path = _save(tmp_path / "two.onnx", nodes,
                 [("a", FLOAT, ["batch", "seq"]), ("b", FLOAT, ["batch", "seq"])], ["y"])
    net = load_onnx(path, (2, 9))
    assert net.inputs == {"a": (2, 9), "b": (2, 9)}
    path2 = _save(tmp_path / "two2.onnx", nodes,
                  [("a", FLOAT, ["batch", 4]), ("b", FLOAT, ["other", 4])], ["y"])
    with pytest.raises(ShapeError, match=r"'b'.*'other'.*input_shapes"):
        load_onnx(path2, (2, 4))
    assert load_onnx(path2, {"a": (2, 4), "b": (1, 4)}).layer("add").output_shape == (2, 4)


# --------------------------------------------------------------------------- recurrent


def _rnn_model(path: Path, kind: str, direction: str, layout: int, peepholes: bool = False
               ) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    gates = {"GRU": 3, "LSTM": 4}[kind]
    dirs = 2 if direction == "bidirectional" else 1
    seq, batch, feat, hidden = 5, 2, 12, 16
    arrays = {"W": rng.standard_normal((dirs, gates * hidden, feat)),
              "R": rng.standard_normal((dirs, gates * hidden, hidden)),
              "B": rng.standard_normal((dirs, 2 * gates * hidden))}
    inputs = ["x", "W", "R", "B"]
    if peepholes:
        arrays["P"] = rng.standard_normal((dirs, 3 * hidden))
        inputs += ["", "", "", "P"]
    outputs = ["y", "y_h"] + (["y_c"] if kind == "LSTM" else [])
    node = helper.make_node(kind, inputs, outputs, name="rnn", hidden_size=hidden,
                            direction=direction, layout=layout)
    # downstream ops read the ONNX-layout outputs
    post = [helper.make_node("Relu", ["y"], ["out"], name="after_y"),
            helper.make_node("Relu", ["y_h"], ["out_h"], name="after_h")]
    x_shape = [seq, batch, feat] if layout == 0 else [batch, seq, feat]
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()]
    _save(path, [node, *post], [("x", FLOAT, x_shape)], ["out", "out_h"], inits,
          opset=14)
    return path, {n: a.astype(np.float32) for n, a in arrays.items()}


@pytest.mark.parametrize(("kind", "direction", "layout"), [
    ("GRU", "forward", 0), ("GRU", "bidirectional", 0), ("LSTM", "forward", 0),
    ("LSTM", "bidirectional", 1), ("LSTM", "reverse", 0), ("GRU", "forward", 1),
])
def test_recurrent_rows_match_the_workload(tmp_path: Path, kind: str, direction: str,
                                           layout: int) -> None:
    path, arrays = _rnn_model(tmp_path / "rnn.onnx", kind, direction, layout)
    net = load_onnx(path)
    _assert_shapes_match_onnx(net, path)
    layer = net.layer("rnn")
    # grimsim's convention inside: (batch, time, features)
    assert layer.input_shapes == ((2, 5, 12),)
    reference = recurrent("rnn", kind.lower(), (2, 5, 12), 16, bias=True,
                          bidirectional=direction == "bidirectional")
    assert layer.gemms == reference.gemms
    dirs = 2 if direction == "bidirectional" else 1
    gates = {"GRU": 3, "LSTM": 4}[kind]
    assert len(layer.gemms) == 2 * gates * dirs
    # per gate and direction: ih over all 2*5 (batch x time) columns, hh once per step
    assert layer.macs == dirs * gates * (16 * 12 * 10 + 16 * 16 * 2 * 5)
    assert net.total_params == _initializer_sizes(path)
    if layout == 0:
        assert net.layer("rnn.to_btf").op == Op.PERMUTE
    else:
        assert "rnn.to_btf" not in net
    assert net.layer("rnn.to_onnx").macs == 0
    weights = _assert_weights_fit_rows(net, path)
    hidden = 16
    # ONNX gate blocks: GRU z, r, h; LSTM i, o, f, c
    onnx_index = {"GRU": {"z": 0, "r": 1, "n": 2}, "LSTM": {"i": 0, "o": 1, "f": 2, "g": 3}}
    for gate, k in onnx_index[kind].items():
        rows = slice(k * hidden, (k + 1) * hidden)
        np.testing.assert_array_equal(weights[f"rnn.{gate}.ih"], arrays["W"][0, rows])
        np.testing.assert_array_equal(weights[f"rnn.{gate}.hh"], arrays["R"][0, rows])
        if dirs == 2:
            np.testing.assert_array_equal(weights[f"rnn.reverse.{gate}.ih"],
                                          arrays["W"][1, rows])


def test_lstm_peepholes_count_as_params(tmp_path: Path) -> None:
    path, _ = _rnn_model(tmp_path / "lstm.onnx", "LSTM", "forward", 0, peepholes=True)
    net = load_onnx(path)
    assert net.total_params == _initializer_sizes(path)
    assert net.layer("rnn").params - sum(g.params for g in net.layer("rnn").gemms) == 3 * 16


def test_rnn_weight_refs_write_back(tmp_path: Path) -> None:
    path, arrays = _rnn_model(tmp_path / "gru.onnx", "GRU", "bidirectional", 0)
    refs = {r.row: r for r in onnx_weight_refs(path)}
    ref = refs["rnn.reverse.n.hh"]
    assert (ref.tensor, ref.initializer) == ("R", True)
    zeros = np.zeros((16, 16), dtype=np.float32)
    updated = ref.from_gemm(arrays["R"], zeros)
    assert not updated[1, 32:48].any()
    np.testing.assert_array_equal(updated[0], arrays["R"][0])
    np.testing.assert_array_equal(updated[1, :32], arrays["R"][1, :32])
    with pytest.raises(ShapeError):
        ref.from_gemm(arrays["R"], np.zeros((16, 12), dtype=np.float32))


# --------------------------------------------------------------------------- transformer


def test_transformer_block_with_weight_matmuls(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    seq, d = 8, 16
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln_g", "ln_b"], ["h"], name="ln",
                         axis=-1),
        helper.make_node("MatMul", ["h", "wq"], ["q0"], name="q_proj"),
        helper.make_node("Add", ["q0", "bq"], ["q"], name="q_bias"),
        helper.make_node("MatMul", ["h", "wk"], ["k"], name="k_proj"),
        helper.make_node("MatMul", ["h", "wv"], ["v"], name="v_proj"),
        helper.make_node("Transpose", ["k"], ["kt"], name="k_t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="qk"),
        helper.make_node("Div", ["scores", "scale"], ["scaled"], name="scale"),
        helper.make_node("Softmax", ["scaled"], ["probs"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["ctx"], name="av"),
        helper.make_node("MatMul", ["ctx", "wo"], ["o"], name="o_proj"),
        helper.make_node("Add", ["o", "x"], ["y"], name="residual"),
    ]
    inits = [*_weights(rng, ln_g=(d,), ln_b=(d,), wq=(d, d), bq=(d,), wk=(d, d), wv=(d, d),
                       wo=(d, d)),
             numpy_helper.from_array(np.array(4.0, dtype=np.float32), "scale")]
    path = _save(tmp_path / "attn.onnx", nodes, [("x", FLOAT, [1, seq, d])], ["y"], inits)
    net = load_onnx(path)
    _assert_shapes_match_onnx(net, path)
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        layer = net.layer(proj)
        assert layer.op == Op.FC
        g = layer.gemms[0]
        assert (g.M, g.K, g.N, g.prunable) == (d, d, seq, True)
    for mm in ("qk", "av"):
        assert net.layer(mm).op == Op.MATMUL
        assert not net.layer(mm).gemms[0].prunable
        assert net.layer(mm).params == 0
    assert net.layer("qk").macs == seq * d * seq
    assert net.layer("av").macs == seq * seq * d
    assert net.total_macs == 4 * d * d * seq + 2 * seq * seq * d
    assert net.layer("ln").op == Op.LAYERNORM and net.layer("ln").params == 2 * d
    assert net.layer("softmax").op == Op.SOFTMAX
    assert net.layer("q_bias").params == d  # a MatMul's bias is a learned parameter
    assert net.layer("scale").params == 0  # the scalar 1/sqrt(d) is not
    assert net.total_params == _initializer_sizes(path, exclude=("scale",))
    weights = _assert_weights_fit_rows(net, path)
    wq = numpy_helper.to_array(next(t for t in onnx.load(str(path)).graph.initializer
                                    if t.name == "wq"))
    np.testing.assert_array_equal(weights["q_proj"], wq.T)  # MatMul: W = B^T


@pytest.mark.parametrize("variant", ["gemm_transA", "gemm_plain", "gemm_left_weight",
                                     "matmul_left_weight", "matmul_vector"])
def test_gemm_and_matmul_weight_views(tmp_path: Path, variant: str) -> None:
    rng = np.random.default_rng(9)
    if variant == "gemm_transA":  # A is (K, N) transposed, B (K, M): W = B^T
        node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="g", transA=1)
        x_shape, inits = [6, 3], _weights(rng, w=(6, 5), c=(5,))
        expected_w, mkn = lambda a: a["w"].T, (5, 6, 3)
    elif variant == "gemm_plain":  # B (K, M), scalar-broadcast bias
        node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="g")
        x_shape, inits = [3, 6], _weights(rng, w=(6, 5), c=(1,))
        expected_w, mkn = lambda a: a["w"].T, (5, 6, 3)
    elif variant == "gemm_left_weight":  # Y = A B with A a (M, K) weight
        node = helper.make_node("Gemm", ["w", "x"], ["y"], name="g")
        x_shape, inits = [6, 3], _weights(rng, w=(5, 6))
        expected_w, mkn = lambda a: a["w"], (5, 6, 3)
    elif variant == "matmul_left_weight":
        node = helper.make_node("MatMul", ["w", "x"], ["y"], name="g")
        x_shape, inits = [2, 6, 3], _weights(rng, w=(5, 6))
        expected_w, mkn = lambda a: a["w"], (5, 6, 6)
    else:  # a vector weight: one output feature
        node = helper.make_node("MatMul", ["x", "w"], ["y"], name="g")
        x_shape, inits = [4, 6], _weights(rng, w=(6,))
        expected_w, mkn = lambda a: a["w"].reshape(1, 6), (1, 6, 4)
    path = _save(tmp_path / f"{variant}.onnx", [node], [("x", FLOAT, x_shape)], ["y"], inits)
    net = load_onnx(path)
    _assert_shapes_match_onnx(net, path)
    g = net.layer("g").gemms[0]
    assert mkn == (g.M, g.K, g.N)
    assert net.layer("g").macs == math.prod(mkn)
    assert net.total_params == _initializer_sizes(path)
    weights = _assert_weights_fit_rows(net, path)
    arrays = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    np.testing.assert_array_equal(weights["g"], expected_w(arrays))
    (ref,) = onnx_weight_refs(path)
    np.testing.assert_array_equal(ref.from_gemm(arrays[ref.tensor], weights["g"]),
                                  arrays[ref.tensor])


def test_gather_embedding(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"], name="embed", axis=0),
        helper.make_node("ReduceMean", ["emb"], ["pooled"], name="mean", axes=[1],
                         keepdims=0),
        helper.make_node("Gemm", ["pooled", "w", "b"], ["y"], name="classifier", transB=1),
    ]
    inits = _weights(rng, table=(100, 16), w=(3, 16), b=(3,))
    path = _save(tmp_path / "emb.onnx", nodes, [("ids", INT64, [1, 6])], ["y"], inits)
    net = load_onnx(path)
    _assert_shapes_match_onnx(net, path)
    emb = net.layer("embed")
    assert emb.op == Op.EMBEDDING and emb.macs == 0 and emb.params == 100 * 16
    assert emb.output_shape == (1, 6, 16)
    assert net.layer("mean").op == Op.REDUCE
    assert net.total_macs == 3 * 16
    assert net.total_params == _initializer_sizes(path)
    assert set(read_onnx_weights(path)) == {"classifier"}  # tables are not GEMM weights


# --------------------------------------------------------------------------- cheap ops


def test_many_cheap_ops_agree_with_onnx_inference(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["padded"], name="pad"),
        helper.make_node("Clip", ["padded", "zero_f", "six_f"], ["clipped"], name="relu6"),
        helper.make_node("AveragePool", ["clipped"], ["ap"], name="avgpool",
                         kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        helper.make_node("HardSwish", ["ap"], ["hs"], name="hswish"),
        helper.make_node("Resize", ["hs", "", "scales"], ["up"], name="resize", mode="nearest"),
        helper.make_node("Resize", ["up", "", "", "sizes"], ["up2"], name="resize_sizes",
                         mode="linear"),
        helper.make_node("Slice", ["up2", "starts", "ends", "axes", "steps"], ["sl"],
                         name="slice"),
        helper.make_node("Split", ["sl", "split"], ["s0", "s1"], name="split", axis=1),
        helper.make_node("Mul", ["s0", "gamma"], ["m"], name="scale_mul"),
        helper.make_node("Sub", ["m", "s1"], ["diff"], name="sub"),
        helper.make_node("Sigmoid", ["diff"], ["sig"], name="sigmoid"),
        helper.make_node("LeakyRelu", ["sig"], ["lr"], name="leaky", alpha=0.1),
        helper.make_node("GlobalMaxPool", ["lr"], ["gmp"], name="gmp"),
        helper.make_node("Squeeze", ["gmp", "sq_axes"], ["sq"], name="squeeze"),
        helper.make_node("Unsqueeze", ["sq", "unsq_axes"], ["unsq"], name="unsqueeze"),
        helper.make_node("Transpose", ["unsq"], ["tr"], name="transpose", perm=[1, 0, 2]),
        helper.make_node("Dropout", ["tr"], ["dr"], name="dropout"),
        helper.make_node("Identity", ["dr"], ["idn"], name="identity"),
        helper.make_node("Constant", [], ["const_shape"], name="const",
                         value=numpy_helper.from_array(np.array([2, -1], dtype=np.int64))),
        helper.make_node("Reshape", ["idn", "const_shape"], ["rs"], name="reshape"),
        helper.make_node("Tanh", ["rs"], ["th"], name="tanh"),
        helper.make_node("Div", ["th", "two"], ["half"], name="div"),
        helper.make_node("Erf", ["half"], ["erf"], name="erf"),
        helper.make_node("ReduceMean", ["erf", "rm_axes"], ["y"], name="reduce", keepdims=1),
    ]
    inits = [_ints("pads", [0, 0, 1, 2, 0, 0, 1, 2]),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"),
             numpy_helper.from_array(np.array(6.0, np.float32), "six_f"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
             _ints("sizes", [2, 8, 20, 17]), _ints("starts", [1, -15]),
             _ints("ends", [7, 100]), _ints("axes", [1, 3]), _ints("steps", [1, 2]),
             _ints("split", [3, 3]), *_weights(rng, gamma=(1, 3, 1, 1)),
             _ints("sq_axes", [2, 3]), _ints("unsq_axes", [0]),
             numpy_helper.from_array(np.array(2.0, np.float32), "two"),
             _ints("rm_axes", [-1])]
    path = _save(tmp_path / "ops.onnx", nodes, [("x", FLOAT, [2, 8, 11, 13])], ["y"], inits,
                 opset=18)
    net = load_onnx(path)
    checked = _assert_shapes_match_onnx(net, path)
    assert checked >= 2 * (len(nodes) - 2)
    assert "const" not in net  # Constant nodes fold away
    assert net.layer("relu6").attr("kind") == "relu6"
    assert net.layer("erf").op == Op.ELTWISE  # not an activation an engine fuses
    assert net.layer("reshape").activation_bytes_read == 0  # a view
    assert net.layer("scale_mul").params == 3
    assert net.total_macs == 0
    assert net.total_params == 3


@pytest.mark.parametrize("opset", [17, 22])
@pytest.mark.parametrize(("size", "k", "s", "p"), [(5, 1, 2, 1), (6, 2, 2, 1), (7, 3, 2, 1),
                                                   (112, 3, 2, 0), (9, 2, 3, 1)])
def test_pool_ceil_mode_follows_the_opset(tmp_path: Path, opset: int, size: int, k: int,
                                          s: int, p: int) -> None:
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[k, k],
                              strides=[s, s], pads=[p, p, p, p], ceil_mode=1)]
    path = _save(tmp_path / "pool.onnx", nodes, [("x", FLOAT, [1, 2, size, size])], ["y"],
                 opset=opset)
    net = load_onnx(path)
    assert net.layer("pool").output_shape == _onnx_shapes(path)["y"]


def test_layer_names_default_and_unique(tmp_path: Path) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Relu", ["a"], ["b"], name="act"),
             helper.make_node("Relu", ["b"], ["c"], name="act"),
             helper.make_node("Sigmoid", ["c"], ["d"], name="x"),
             helper.make_node("Relu", ["d"], ["y"])]
    path = _save(tmp_path / "names.onnx", nodes, [("x", FLOAT, [1, 4])], ["y"])
    net = load_onnx(path)
    assert [wl.name for wl in net.layers()] == ["x", "Relu_0", "act", "act_1", "x_1",
                                                "Relu_4"]


# --------------------------------------------------------------------------- errors


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    good = _small_cnn(tmp_path / "cnn.onnx", np.random.default_rng(12))
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an onnx model \xff\xfe" * 10)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for bad in (truncated, garbage, empty, tmp_path / "missing.onnx"):
        with pytest.raises(ModelFormatError) as err:
            load_onnx(bad)
        assert str(bad) in str(err.value)
        with pytest.raises(ModelFormatError):
            read_onnx_weights(bad)


def test_unknown_op_names_op_node_and_file(tmp_path: Path) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok"),
             helper.make_node("FluxCapacitor", ["a"], ["y"], name="mystery")]
    path = _save(tmp_path / "unknown.onnx", nodes, [("x", FLOAT, [1, 4])], ["y"])
    with pytest.raises(UnsupportedOpError) as err:
        load_onnx(path)
    msg = str(err.value)
    assert "FluxCapacitor" in msg and "'mystery'" in msg and str(path) in msg
    custom = [helper.make_node("Relu", ["x"], ["y"], name="custom_relu", domain="com.acme")]
    path2 = _save(tmp_path / "custom.onnx", custom, [("x", FLOAT, [1, 4])], ["y"])
    with pytest.raises(UnsupportedOpError, match=r"com\.acme"):
        load_onnx(path2)


def test_shape_mismatch_names_the_node(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="bad_conv")]
    path = _save(tmp_path / "mismatch.onnx", nodes, [("x", FLOAT, [1, 3, 8, 8])], ["y"],
                 _weights(rng, w=(4, 5, 3, 3)))
    with pytest.raises(ShapeError, match=r"'bad_conv'.*3 channels"):
        load_onnx(path)
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="bad_reshape")]
    path = _save(tmp_path / "reshape.onnx", nodes, [("x", FLOAT, [1, 3, 8, 8])], ["y"],
                 [_ints("shape", [5, -1])])
    with pytest.raises(ShapeError, match="'bad_reshape'"):
        load_onnx(path)
    nodes = [helper.make_node("Add", ["x", "bias"], ["y"], name="bad_add")]
    path = _save(tmp_path / "add.onnx", nodes, [("x", FLOAT, [1, 3, 8, 8])], ["y"],
                 _weights(rng, bias=(5,)))
    with pytest.raises(ShapeError, match="'bad_add'"):
        load_onnx(path)


def test_runtime_weight_and_dangling_tensor(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    path = _save(tmp_path / "wdyn.onnx", nodes,
                 [("x", FLOAT, [1, 3, 8, 8]), ("w", FLOAT, [4, 3, 3, 3])], ["y"])
    with pytest.raises(UnsupportedOpError, match=r"'conv'.*weight"):
        load_onnx(path)
    nodes = [helper.make_node("Add", ["x", "nowhere"], ["y"], name="orphan")]
    path = _save(tmp_path / "dangling.onnx", nodes, [("x", FLOAT, [1, 3])], ["y"])
    with pytest.raises(ModelFormatError, match=r"'orphan'.*'nowhere'"):
        load_onnx(path)


def test_missing_onnx_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(GrimsimError, match=r"pip install grimsim\[onnx\]"):
        load_onnx(tmp_path / "any.onnx")


def test_importing_the_module_does_not_import_onnx() -> None:
    code = ("import sys, grimsim, grimsim.network.onnx_import; "
            "assert 'onnx' not in sys.modules, 'onnx imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- a real-size net


def _resnet18(path: Path) -> Path:
    """torchvision's resnet18 written as ONNX nodes (zero weights keep the file quick)."""
    nodes: list[Any] = []
    inits: list[Any] = []

    def tensor(name: str, *shape: int) -> str:
        inits.append(numpy_helper.from_array(np.zeros(shape, np.float32), name))
        return name

    def conv_bn(x: str, name: str, cin: int, cout: int, k: int, stride: int, relu: bool
                ) -> str:
        w = tensor(f"{name}.weight", cout, cin, k, k)
        nodes.append(helper.make_node("Conv", [x, w], [f"{name}.out"], name=name,
                                      strides=[stride, stride], pads=[k // 2] * 4))
        bn = name.replace("conv", "bn").replace("downsample.0", "downsample.1")
        params = [tensor(f"{bn}.{p}", cout) for p in ("weight", "bias", "mean", "var")]
        nodes.append(helper.make_node("BatchNormalization", [f"{name}.out", *params],
                                      [f"{bn}.out"], name=bn))
        if not relu:
            return f"{bn}.out"
        nodes.append(helper.make_node("Relu", [f"{bn}.out"], [f"{bn}.relu"]))
        return f"{bn}.relu"

    x = conv_bn("input", "conv1", 3, 64, 7, 2, relu=True)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], name="maxpool",
                                  kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = "pool", 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            prefix = f"layer{stage}.{block}"
            h = conv_bn(x, f"{prefix}.conv1", cin, cout, 3, stride, relu=True)
            h = conv_bn(h, f"{prefix}.conv2", cout, cout, 3, 1, relu=False)
            skip = (conv_bn(x, f"{prefix}.downsample.0", cin, cout, 1, stride, relu=False)
                    if stride != 1 or cin != cout else x)
            nodes.append(helper.make_node("Add", [h, skip], [f"{prefix}.add"]))
            nodes.append(helper.make_node("Relu", [f"{prefix}.add"], [f"{prefix}.out"]))
            x, cin = f"{prefix}.out", cout
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="avgpool"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"))
    nodes.append(helper.make_node("Gemm", ["flat", tensor("fc.weight", 1000, 512),
                                           tensor("fc.bias", 1000)], ["logits"], name="fc",
                                  transB=1))
    return _save(path, nodes, [("input", FLOAT, ["batch_size", 3, 224, 224])], ["logits"],
                 inits, opset=13)


def test_resnet18_matches_torchvision_figures(tmp_path: Path) -> None:
    path = _resnet18(tmp_path / "resnet18.onnx")
    net = load_onnx(path, (1, 3, 224, 224))
    # torchvision's model table: resnet18 has 11,689,512 params and 1.81 GFLOPS (counted
    # as multiply-accumulates) at 224x224,
    # https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet18.html
    assert net.total_params == 11_689_512
    assert net.total_macs == pytest.approx(1.81e9, rel=0.02)
    _assert_shapes_match_onnx(net, path, {"input": (1, 3, 224, 224)})
    assert len(net.prunable_rows()) == 21  # 20 convs (3 downsample) + fc
    fused = fuse(net)
    assert all(wl.op not in (Op.BATCHNORM,) for wl in fused.layers())
    assert (fused.total_macs, fused.total_params) == (net.total_macs, net.total_params)


def test_file_shape_annotations_cross_checked(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    path = _small_cnn(tmp_path / "cnn.onnx", np.random.default_rng(14))
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    annotated = tmp_path / "annotated.onnx"
    onnx.save(inferred, str(annotated))
    with caplog.at_level("WARNING", logger="grimsim.network.onnx_import"):
        load_onnx(annotated)
    assert not caplog.records
    # a stale annotation (the file says the conv output is 16x16) is reported, not trusted
    for vi in inferred.graph.value_info:
        if vi.name == "c":
            vi.type.tensor_type.shape.dim[2].dim_value = 16
    onnx.save(inferred, str(annotated))
    with caplog.at_level("WARNING", logger="grimsim.network.onnx_import"):
        net = load_onnx(annotated)
    assert net.layer("conv").output_shape == (1, 8, 32, 32)
    assert any("'c'" in r.getMessage() for r in caplog.records)


def test_opset9_attributes_folded_weight_and_runtime_rnn_state(tmp_path: Path) -> None:
    """Old-opset attribute forms, a weight computed from an initializer (Transpose), and an
    LSTM whose initial state is a graph input (kept as a dependency)."""
    rng = np.random.default_rng(15)
    nodes = [
        helper.make_node("Transpose", ["w_t"], ["w"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "w"], ["y0"], name="mm"),
        helper.make_node("Unsqueeze", ["y0"], ["y1"], name="unsq", axes=[0]),
        helper.make_node("LSTM", ["y1", "W", "R", "", "", "h0"], ["ys", "yh"], name="lstm",
                         hidden_size=4),
        helper.make_node("Slice", ["ys"], ["y"], name="slice", starts=[0], ends=[1], axes=[1]),
        helper.make_node("Upsample", ["img", "scales"], ["up"], name="upsample"),
    ]
    inits = [*_weights(rng, w_t=(5, 6), W=(1, 16, 5), R=(1, 16, 4)),
             numpy_helper.from_array(np.array([1, 1, 2, 3], np.float32), "scales")]
    path = _save(tmp_path / "old.onnx", nodes,
                 [("x", FLOAT, [3, 6]), ("h0", FLOAT, [1, 3, 4]), ("img", FLOAT, [1, 2, 3, 3])],
                 ["y", "yh", "up"], inits, opset=9)
    net = load_onnx(path)
    _assert_shapes_match_onnx(net, path)
    assert net.layer("upsample").output_shape == (1, 2, 6, 9)
    assert sorted(net.predecessors("lstm.to_btf")) == ["h0", "unsq"]
    assert net.layer("mm").params == 30 and net.layer("mm").macs == 5 * 6 * 3
    weights = _assert_weights_fit_rows(net, path)
    w_t = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])
    np.testing.assert_array_equal(weights["mm"], w_t)  # W = (w_t^T)^T
    mm_ref = next(r for r in onnx_weight_refs(path) if r.row == "mm")
    assert (mm_ref.tensor, mm_ref.initializer) == ("w", False)


def test_external_weights_and_local_functions(tmp_path: Path) -> None:
    rng = np.random.default_rng(16)
    body = [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Add", ["r", "a"], ["o"])]
    block = helper.make_function("acme", "ResidualRelu", ["a"], ["o"], body,
                                 [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("ResidualRelu", ["c"], ["y"], name="block", domain="acme")]
    graph = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info("x", FLOAT,
                                                                           [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", FLOAT, None)],
                              _weights(rng, w=(4, 2, 3, 3)))
    model = helper.make_model(graph, functions=[block],
                              opset_imports=[helper.make_opsetid("", 17),
                                             helper.make_opsetid("acme", 1)])
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="ext.bin",
              size_threshold=0)
    assert (tmp_path / "ext.bin").is_file()
    net = load_onnx(path)
    assert net.layer("conv").output_shape == (1, 4, 4, 4)
    assert {wl.op for wl in net.layers()} == {"input", Op.CONV, Op.ACTIVATION, Op.ELTWISE}
    weights = read_onnx_weights(path)
    w = numpy_helper.to_array(graph.initializer[0])
    np.testing.assert_array_equal(weights["conv"], w.reshape(4, 18))
