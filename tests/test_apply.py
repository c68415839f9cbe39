"""grimsim.execute.apply: masks, compact formats and summary on disk, and pruned ONNX files."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grimsim.errors import GrimsimError, MappingError, ModelFormatError, SchemeError, ShapeError
from grimsim.execute import apply as apply_mod
from grimsim.execute.apply import (
    apply_mapping,
    apply_model,
    apply_onnx,
    gaussian_weights,
    load_formats,
    load_weights,
)
from grimsim.network import NetworkBuilder
from grimsim.network import workload as wl
from grimsim.pruning import (
    BCRFormat,
    CSRFormat,
    DenseFormat,
    NMFormat,
    PatternFormat,
    decode,
    encode,
    make_mask,
    parse_spec,
    retained_norm,
)

# every scheme kind, each on a layer where it is legal
MAPPING = {
    "c3": "pattern:4:0.7",
    "c1": "block_punched:4x4:0.5",
    "c3b": "bcr:4x8:0.6",
    "c1b": "filter:0.5",
    "fc1": "column:0.5",
    "fc2": "unstructured:0.8",
    "gru": "nm:2:4",
}


def small_net(name: str = "small"):
    b = NetworkBuilder(name)
    b.input("x", (1, 8, 6, 6))
    b.add(wl.conv2d("c3", (1, 8, 6, 6), 16, 3, padding=1), ["x"], ["y1"])
    b.add(wl.conv2d("c1", (1, 16, 6, 6), 16, 1), ["y1"], ["y2"])
    b.add(wl.conv2d("c3b", (1, 16, 6, 6), 12, 3, padding=1), ["y2"], ["y3"])
    b.add(wl.conv2d("c1b", (1, 12, 6, 6), 8, 1), ["y3"], ["y4"])
    b.add(wl.conv2d("dw", (1, 8, 6, 6), 8, 3, padding=1, groups=8), ["y4"], ["y5"])
    b.add(wl.reshape("flat", (1, 8, 6, 6), (1, 288)), ["y5"], ["f"])
    b.add(wl.linear("fc1", (1, 288), 40), ["f"], ["h"])
    b.add(wl.reshape("seq", (1, 40), (1, 5, 8)), ["h"], ["s"])
    b.add(wl.recurrent("gru", "gru", (1, 5, 8), 8), ["s"], ["g"])
    b.add(wl.reshape("last", (1, 5, 8), (1, 40)), ["g"], ["gl"])
    b.add(wl.linear("fc2", (1, 40), 10), ["gl"], ["out"])
    return b.build()


def given_weights(net, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {g.name: rng.standard_normal((g.M, g.K)).astype(np.float32)
            for _, g in net.prunable_rows()}


def expected_schemes(net, mapping) -> dict[str, str]:
    """GEMM row -> spec, worked out independently of the code under test."""
    out = {g.name: "dense" for _, g in net.prunable_rows()}
    for layer, g in net.prunable_rows():
        if layer.name in mapping:
            out[g.name] = parse_spec(mapping[layer.name]).spec
    for key, spec in mapping.items():
        if key in out and key not in net:
            out[key] = parse_spec(spec).spec
    return out


def kernel(layer):
    return layer.gemms[0].kernel if layer.op in ("conv", "dwconv") else None


# --------------------------------------------------------------------------- npz files


def test_masks_formats_and_summary_follow_the_mapping(tmp_path: Path) -> None:
    net = small_net()
    weights = given_weights(net)
    result = apply_mapping(net, MAPPING, weights, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["formats.npz", "masks.npz", "summary.json"]
    schemes = expected_schemes(net, MAPPING)
    formats = load_formats(out / "formats.npz")
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["gemms"]}
    with np.load(out / "masks.npz") as masks:
        assert sorted(masks.files) == sorted(schemes)
        for layer, g in net.prunable_rows():
            w = weights[g.name]
            mask = masks[g.name]
            assert mask.dtype == bool and mask.shape == (g.M, g.K)
            np.testing.assert_array_equal(mask, make_mask(w, schemes[g.name],
                                                          kernel=kernel(layer)))
            np.testing.assert_array_equal(mask, result.masks[g.name])
            # the stored format holds exactly the kept weights, bit for bit
            fmt = formats[g.name]
            np.testing.assert_array_equal(decode(fmt), np.where(mask, w, np.float32(0)))
            ref = encode(w, mask, schemes[g.name], kernel=kernel(layer))
            assert type(fmt) is type(ref) and fmt.nbytes == ref.nbytes
            row = rows[g.name]
            nnz = int(mask.sum())
            assert row["scheme"] == schemes[g.name] and row["layer"] == layer.name
            assert row["weights"] == "given"
            assert row["nnz"] == nnz
            assert row["reached_sparsity"] == pytest.approx(1 - nnz / (g.M * g.K))
            assert row["format_bytes"] == fmt.nbytes
            assert row["dense_bytes"] == g.M * g.K * 4
            assert row["retained_norm"] == pytest.approx(retained_norm(w, mask))
    kinds = {type(f) for f in formats.values()}
    assert kinds == {DenseFormat, CSRFormat, NMFormat, PatternFormat, BCRFormat}
    totals = summary["totals"]
    assert totals["nnz"] == sum(r["nnz"] for r in rows.values())
    assert totals["format_bytes"] == sum(r["format_bytes"] for r in rows.values())
    assert totals["pruned_gemms"] == sum(s != "dense" for s in schemes.values())
    assert summary["_meta"]["grimsim"]
    assert summary["network"] == "small"


def test_gemm_row_name_overrides_its_layer(tmp_path: Path) -> None:
    net = small_net()
    mapping = {"gru": "bcr:4x4:0.75", "gru.r.hh": "dense", "gru.z.ih": "unstructured:0.25"}
    result = apply_mapping(net, mapping, None, tmp_path)
    by_name = {g.name: g for g in result.gemms}
    assert by_name["gru.r.hh"].scheme == "dense" and by_name["gru.r.hh"].nnz == 64
    assert by_name["gru.z.ih"].scheme == "unstructured:0.25"
    assert by_name["gru.n.hh"].scheme == "bcr:4x4:0.75"
    assert by_name["gru.n.hh"].reached_sparsity == pytest.approx(0.75)


def test_gaussian_weights_are_seeded_and_flagged(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    net = small_net()
    with caplog.at_level(logging.WARNING, logger="grimsim.execute.apply"):
        a = apply_mapping(net, MAPPING, None, tmp_path / "a", seed=3)
    assert "structural only" in caplog.text
    b = apply_mapping(net, MAPPING, None, tmp_path / "b", seed=3)
    c = apply_mapping(net, MAPPING, None, tmp_path / "c", seed=4)
    assert {g.weights for g in a.gemms} == {"gaussian"}
    for name in a.masks:
        np.testing.assert_array_equal(a.masks[name], b.masks[name])
    assert any(not np.array_equal(a.masks[n], c.masks[n]) for n in a.masks)
    # the stand-in weights are what the formats store
    g = next(g for _, g in net.prunable_rows() if g.name == "fc2")
    w = gaussian_weights("fc2", (g.M, g.K), 3)
    np.testing.assert_array_equal(decode(load_formats(tmp_path / "a" / "formats.npz")["fc2"]),
                                  np.where(a.masks["fc2"], w, np.float32(0)))


def test_given_weights_pick_the_kept_weights(tmp_path: Path) -> None:
    net = small_net()
    g = next(g for _, g in net.prunable_rows() if g.name == "fc2")
    w = np.full((g.M, g.K), 0.01, dtype=np.float32)
    big = np.zeros((g.M, g.K), dtype=bool)
    big.flat[::5] = True  # 20% of the entries are large: exactly what unstructured:0.8 keeps
    w[big] = 5.0
    result = apply_mapping(net, {"fc2": "unstructured:0.8"}, {"fc2": w}, tmp_path)
    np.testing.assert_array_equal(result.masks["fc2"], big)
    row = next(r for r in result.gemms if r.name == "fc2")
    assert row.weights == "given" and row.retained_norm > 0.99
    # the rows without given weights fall back to the Gaussian stand-in
    assert {r.weights for r in result.gemms if r.name != "fc2"} == {"gaussian"}


def test_conv_weights_may_be_given_as_oihw(tmp_path: Path) -> None:
    net = small_net()
    w4 = np.random.default_rng(0).standard_normal((16, 8, 3, 3)).astype(np.float32)
    result = apply_mapping(net, {"c3": "unstructured:0.5"}, {"c3": w4}, tmp_path)
    np.testing.assert_array_equal(result.masks["c3"],
                                  make_mask(w4.reshape(16, 72), "unstructured:0.5"))


@settings(max_examples=20, deadline=None)
@given(M=st.integers(1, 24), K=st.integers(1, 40), seed=st.integers(0, 2**16),
       spec=st.sampled_from(["dense", "unstructured:0.7", "filter:0.4", "column:0.3",
                             "bcr:4x4:0.5", "bcr:3x5:0.8:rows=0.5", "nm:1:2",
                             "block_punched:2x3:0.5"]))
def test_formats_round_trip_through_the_file(M: int, K: int, seed: int, spec: str) -> None:
    b = NetworkBuilder("fc")
    b.input("x", (2, K))
    b.add(wl.linear("fc", (2, K), M), ["x"], ["y"])
    net = b.build()
    if spec.startswith("nm") and K < 2:
        spec = "dense"
    w = np.random.default_rng(seed).standard_normal((M, K)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        result = apply_mapping(net, {"fc": spec}, {"fc": w}, tmp)
        fmt = load_formats(Path(tmp) / "formats.npz")["fc"]
    ref = encode(w, result.masks["fc"], spec)
    assert type(fmt) is type(ref)
    np.testing.assert_array_equal(decode(fmt), decode(ref))
    for name, value in vars(ref).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(fmt, name), value)
            assert getattr(fmt, name).dtype == value.dtype
        else:
            assert getattr(fmt, name) == value


# --------------------------------------------------------------------------- bad input


def _bad_inputs():
    net = small_net()
    w = given_weights(net)
    return [
        ("unknown layer", {"nope": "bcr:4x4:0.5"}, None, MappingError, "nope"),
        ("illegal scheme", {"fc1": "pattern:4"}, None, SchemeError, "fc1"),
        ("malformed spec", {"fc1": "bcr:4:0.5"}, None, SchemeError, "bcr:4:0.5"),
        ("wrong shape", MAPPING, {"fc1": w["fc1"].T}, ShapeError, "(40, 288)"),
        ("unknown weights", MAPPING, {"fc9": w["fc1"]}, MappingError, "fc9"),
        ("NaN weights", MAPPING, {"fc2": np.full((10, 40), np.nan)}, GrimsimError, "NaN"),
        ("not a GEMM", MAPPING, {"flat": np.zeros((1, 1))}, MappingError, "flat"),
    ]


@pytest.mark.parametrize(("case", "mapping", "weights", "error", "says"), _bad_inputs(),
                         ids=[c[0] for c in _bad_inputs()])
def test_bad_input_raises_before_writing(tmp_path: Path, case: str, mapping, weights, error,
                                         says: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("old")
    with pytest.raises(error) as info:
        apply_mapping(small_net(), mapping, weights, out)
    assert says in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert (out / "summary.json").read_text() == "old"


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(GrimsimError, match="is a file"):
        apply_mapping(small_net(), MAPPING, None, blocker / "out")
    with pytest.raises(GrimsimError, match="not a directory"):
        apply_mapping(small_net(), MAPPING, None, blocker)


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(apply_mod.np, "savez", fail)  # formats.npz fails after masks.npz
    with pytest.raises(GrimsimError, match="No space left"):
        apply_mapping(small_net(), MAPPING, None, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_load_formats_and_weights_reject_foreign_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(GrimsimError, match="not written by grimsim apply"):
        load_formats(tmp_path / "plain.npz")
    with pytest.raises(GrimsimError, match="not a readable"):
        load_formats(tmp_path / "text.npz")
    with pytest.raises(GrimsimError, match="single array"):
        load_weights(tmp_path / "single.npy")
    with pytest.raises(GrimsimError, match="not found"):
        load_weights(tmp_path / "missing.npz")
    assert set(load_weights(tmp_path / "plain.npz")) == {"a"}


def test_mapping_errors_name_the_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"maps/m\.json"):
        apply_model(small_net(), {"nope": "dense"}, tmp_path, mapping_source="maps/m.json")
    assert list(tmp_path.iterdir()) == []


def test_apply_model_reads_a_weights_file(tmp_path: Path) -> None:
    net = small_net()
    weights = given_weights(net, seed=7)
    np.savez(tmp_path / "w.npz", **weights)
    result = apply_model(net, MAPPING, tmp_path / "out", weights=tmp_path / "w.npz")
    assert {g.weights for g in result.gemms} == {"given"}
    np.testing.assert_array_equal(decode(load_formats(result.formats_path)["fc1"]),
                                  np.where(result.masks["fc1"], weights["fc1"], np.float32(0)))


# --------------------------------------------------------------------------- ONNX

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

# "/features/conv2": PyTorch exports name nodes like paths; the npz keys must survive that
ONNX_MAPPING = {"/features/conv2": "bcr:4x8:0.5", "fc": "nm:2:4", "proj": "unstructured:0.6"}


def make_onnx(path: Path, computed_weight: bool = False) -> dict[str, np.ndarray]:
    """conv(3->8, 3x3) + relu -> conv(8->16, 3x3) + relu -> flatten -> Gemm(transB) + relu
    -> MatMul with a constant weight. Returns the initializers."""
    rng = np.random.default_rng(42)
    inits = {
        "w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "b1": rng.standard_normal(8).astype(np.float32),
        "w2": rng.standard_normal((16, 8, 3, 3)).astype(np.float32),
        "b2": rng.standard_normal(16).astype(np.float32),
        "wf": rng.standard_normal((32, 16 * 6 * 6)).astype(np.float32) * 0.05,
        "bf": rng.standard_normal(32).astype(np.float32),
        "wp": rng.standard_normal((32, 10)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="/features/conv2",
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["g"], name="fc", transB=1),
        helper.make_node("Relu", ["g"], ["rg"], name="relu3"),
    ]
    if computed_weight:
        nodes.append(helper.make_node("Transpose", ["wpt"], ["wp_c"], name="tw", perm=[1, 0]))
        nodes.append(helper.make_node("MatMul", ["rg", "wp_c"], ["y"], name="proj"))
        inits["wpt"] = inits.pop("wp").T.copy()
    else:
        nodes.append(helper.make_node("MatMul", ["rg", "wp"], ["y"], name="proj"))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return inits


def run(path_or_bytes: Path | bytes, x: np.ndarray) -> np.ndarray:
    src = str(path_or_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_pruned_onnx_runs_like_the_masked_reference(tmp_path: Path) -> None:
    src = tmp_path / "tiny.onnx"
    inits = make_onnx(src)
    result = apply_model(src, ONNX_MAPPING, tmp_path / "out")
    pruned_path = tmp_path / "out" / "tiny.pruned.onnx"
    assert result.onnx_path == pruned_path and pruned_path.is_file()
    assert {g.weights for g in result.gemms} == {"onnx"}
    with np.load(tmp_path / "out" / "masks.npz") as masks:
        m = {k: masks[k] for k in masks.files}
    # the masks come from the initializers' magnitudes, in each weight's GEMM view
    views = {"conv1": inits["w1"].reshape(8, 27), "/features/conv2": inits["w2"].reshape(16, 72),
             "fc": inits["wf"], "proj": inits["wp"].T}
    for row, view in views.items():
        spec = ONNX_MAPPING.get(row, "dense")
        np.testing.assert_array_equal(m[row], make_mask(view, spec,
                                                        kernel=(3, 3) if "conv" in row else None))
    # zeros exactly where the masks say, every other initializer and node unchanged
    pruned = onnx.load(str(pruned_path))
    original = onnx.load(str(src))
    got = {t.name: numpy_helper.to_array(t) for t in pruned.graph.initializer}
    masked = {
        "w1": inits["w1"],
        "w2": np.where(m["/features/conv2"], views["/features/conv2"], 0).reshape(16, 8, 3, 3),
        "wf": np.where(m["fc"], views["fc"], 0),
        "wp": np.where(m["proj"], views["proj"], 0).T,
    }
    for name, value in inits.items():
        expect = masked.get(name, value)
        np.testing.assert_array_equal(got[name], expect)
        assert got[name].dtype == value.dtype
    assert np.array_equal(got["w2"] == 0, ~m["/features/conv2"].reshape(16, 8, 3, 3))
    assert np.array_equal(got["wf"] == 0, ~m["fc"])
    assert np.array_equal(got["wp"] == 0, ~m["proj"].T)
    assert [n.SerializeToString() for n in pruned.graph.node] == \
        [n.SerializeToString() for n in original.graph.node]
    # onnxruntime: pruned file == original model with the masked weights substituted
    reference = onnx.load(str(src))
    for t in reference.graph.initializer:
        t.CopyFrom(numpy_helper.from_array(masked.get(t.name, inits[t.name]), t.name))
    xs = np.random.default_rng(0).standard_normal((3, 1, 3, 6, 6)).astype(np.float32)
    for x in xs:
        y_pruned = run(pruned_path, x)
        y_ref = run(reference.SerializeToString(), x)
        np.testing.assert_allclose(y_pruned, y_ref, rtol=1e-5, atol=1e-5)
        assert not np.allclose(y_pruned, run(src, x), atol=1e-3)  # pruning changed something
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["files"]["onnx"] == "tiny.pruned.onnx"
    formats = load_formats(tmp_path / "out" / "formats.npz")
    np.testing.assert_array_equal(decode(formats["/features/conv2"]), masked["w2"].reshape(16, 72))


def test_apply_onnx_alone(tmp_path: Path) -> None:
    src = tmp_path / "tiny.onnx"
    inits = make_onnx(src)
    path = apply_onnx(src, {"proj": "unstructured:0.5"}, tmp_path / "o")
    assert path == tmp_path / "o" / "tiny.pruned.onnx"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["tiny.pruned.onnx"]
    got = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    assert int(np.count_nonzero(got["wp"])) == 160
    np.testing.assert_array_equal(got["wf"], inits["wf"])


def test_onnx_weights_that_are_not_initializers(tmp_path: Path) -> None:
    src = tmp_path / "computed.onnx"
    make_onnx(src, computed_weight=True)
    out = tmp_path / "out"
    with pytest.raises(ModelFormatError, match="proj"):
        apply_model(src, {"proj": "unstructured:0.5"}, out)
    assert not out.exists() or list(out.iterdir()) == []
    # kept dense, the computed weight is no obstacle
    result = apply_model(src, {"/features/conv2": "bcr:4x8:0.5"}, out)
    assert result.onnx_path is not None and result.onnx_path.is_file()
