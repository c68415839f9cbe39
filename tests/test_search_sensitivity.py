"""Sensitivity tables, the per-candidate loss, and the numpy digits training code."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import MappingError, SearchError
from grimsim.network.graph import NetworkBuilder
from grimsim.network.workload import conv2d, linear
from grimsim.pruning import expected_retained_norm, make_mask, parse_spec, retained_norm
from grimsim.search import sensitivity as sens

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
HEADER = "layer,scheme,rate,accuracy_drop\n"


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dn() -> ModuleType:
    return _load("digits_nets")


# --------------------------------------------------------------------------- CSV


def _table() -> sens.SensitivityTable:
    return sens.table_from_measurements([
        ("conv1", "bcr:4x4:0.75", 0.75, 0.0123),
        ("conv1", "pattern:4", 5 / 9, 0.004),
        ("conv1", "bcr:8x8:0.5:rows=0.5", 0.5, -0.002),
        ("fc, last", "nm:2:4", 0.5, 0.1),
        ("fc, last", "unstructured:0.9", 0.9031, 1 / 3),
    ], "mem")


def test_csv_round_trip(tmp_path: Path) -> None:
    table = _table()
    path = tmp_path / "sens.csv"
    sens.write_sensitivity_csv(table, path)
    assert path.read_text().splitlines()[0] == "layer,scheme,rate,accuracy_drop"
    back = sens.read_sensitivity_csv(path)
    assert back.entries == table.entries
    assert [e.line for e in back.entries] == [2, 3, 4, 5, 6]
    assert back.layers() == ("conv1", "fc, last")
    assert back.drop("fc, last", "unstructured:0.9") == pytest.approx(1 / 3, abs=0)


_layer_names = st.text(alphabet="abc.,_/ \"'019", min_size=1, max_size=12).filter(
    lambda s: s == s.strip() and s != "")
_specs = st.sampled_from(["dense", "unstructured:0.5", "filter:0.875", "column:0.25",
                          "pattern:4", "pattern:4:0.9", "block_punched:4x8:0.5",
                          "bcr:16x32:0.75", "bcr:4x4:0.5:rows=0.5,cols=1.0", "nm:1:4"])


@given(st.lists(st.tuples(_layer_names, _specs,
                          st.floats(0, 1, exclude_max=True),
                          st.floats(-1, 1)), max_size=8,
                unique_by=lambda r: (r[0], parse_spec(r[1]))))
def test_csv_round_trip_property(rows: list[tuple[str, str, float, float]]) -> None:
    table = sens.table_from_measurements(rows)
    back = sens.parse_sensitivity_csv(sens.format_sensitivity_csv(table))
    assert back.entries == table.entries
    for layer, spec, _, drop in rows:
        assert back.drop(layer, spec) == drop


def test_lookup_accepts_any_spelling_of_the_scheme() -> None:
    table = sens.parse_sensitivity_csv(HEADER + "conv1, BCR:4x4:0.50 ,0.5,0.25\n")
    assert table.drop("conv1", "bcr:4x4:0.5") == 0.25
    assert table.drop("conv1", parse_spec("bcr:4x4:0.5")) == 0.25
    assert table.drop("conv1", "bcr:4x4:0.75") is None
    assert table.drop("conv2", "bcr:4x4:0.5") is None


def test_extra_columns_any_order_and_blank_lines() -> None:
    text = "note,accuracy_drop,layer,rate,scheme\n\nhi,0.5,fc,0.5,nm:2:4\n"
    table = sens.parse_sensitivity_csv(text, "t.csv")
    assert table.drop("fc", "nm:2:4") == 0.5
    assert table.entries[0].line == 3


@pytest.mark.parametrize(("text", "line", "words"), [
    ("layer,scheme,accuracy_drop\nfc,nm:2:4,0.1\n", 1, ["rate", "lacks column"]),
    ("", None, ["empty"]),
    (HEADER + "fc,nm:2:4,0.5,0.1\nfc,unstructured:0.5,abc,0.1\n", 3, ["rate", "abc"]),
    (HEADER + "fc,unstructured:0.5,1.5,0.1\n", 2, ["rate", "[0, 1)"]),
    (HEADER + "fc,unstructured:0.5,-0.1,0.1\n", 2, ["rate"]),
    (HEADER + "fc,unstructured:0.5,0.5,nan\n", 2, ["accuracy_drop", "finite"]),
    (HEADER + "fc,foo:0.5,0.5,0.1\n", 2, ["scheme", "foo"]),
    (HEADER + "fc,bcr:4y4:0.5,0.5,0.1\n", 2, ["scheme", "block"]),
    (HEADER + "fc,unstructured:0.5,0.5,lots\n", 2, ["accuracy_drop", "lots"]),
    (HEADER + "fc,unstructured:0.5,0.5,2.0\n", 2, ["accuracy_drop", "[-1, 1]"]),
    (HEADER + "fc,unstructured:0.5,0.5\n", 2, ["3 field"]),
    (HEADER + ",unstructured:0.5,0.5,0.1\n", 2, ["layer name"]),
    (HEADER + "fc,nm:2:4,0.5,0.1\n\nfc,NM:2:4,0.5,0.2\n", 4, ["twice", "first on line 2"]),
    ("layer,scheme,rate,rate,accuracy_drop\n", 1, ["rate", "twice"]),
])
def test_malformed_csv_names_file_line_and_problem(text: str, line: int | None,
                                                   words: list[str]) -> None:
    with pytest.raises(MappingError) as err:
        sens.parse_sensitivity_csv(text, "my.csv")
    msg = str(err.value)
    assert msg.startswith(f"my.csv:{line}:" if line is not None else "my.csv:"), msg
    for word in words:
        assert word in msg, msg


def test_missing_file_is_a_mapping_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read"):
        sens.read_sensitivity_csv(tmp_path / "nope.csv")


def test_check_table_against_network() -> None:
    b = NetworkBuilder("tiny")
    b.input("x", (1, 8, 8, 8))
    b.add(conv2d("conv", (1, 8, 8, 8), 16, 3, padding=1), ["x"], ["y"])
    net = b.build()
    ok = sens.parse_sensitivity_csv(HEADER + "conv,pattern:4,0.5556,0.01\n", "t.csv")
    sens.check_table_against(ok, net)
    unknown = sens.parse_sensitivity_csv(HEADER + "conv,nm:2:4,0.5,0\nfc2,nm:2:4,0.5,0\n",
                                         "t.csv")
    with pytest.raises(MappingError, match=r"t\.csv:3: .*no prunable layer or GEMM named 'fc2'"):
        sens.check_table_against(unknown, net)
    b2 = NetworkBuilder("fc")
    b2.input("x", (1, 64))
    b2.add(linear("fc", (1, 64), 10), ["x"], ["y"])
    illegal = sens.parse_sensitivity_csv(HEADER + "fc,pattern:4,0.5556,0.01\n", "t.csv")
    with pytest.raises(MappingError, match=r"t\.csv:2: .*pattern"):
        sens.check_table_against(illegal, b2.build())


# --------------------------------------------------------------------------- loss


def test_table_overrides_proxy_only_where_present() -> None:
    table = sens.parse_sensitivity_csv(
        HEADER + "conv1,bcr:4x4:0.75,0.75,0.03\nconv1,nm:2:4,0.5,-0.01\n")
    # measured value wins over any proxy and weight
    assert sens.candidate_loss("conv1", "bcr:4x4:0.75", 0.2, 5.0, table) == 0.03
    # a negative measured drop counts as no loss
    assert sens.candidate_loss("conv1", "nm:2:4", 0.2, 5.0, table) == 0.0
    # other scheme, other layer, or no table: weight x (1 - retained norm)
    assert sens.candidate_loss("conv1", "bcr:4x4:0.5", 0.8, 2.0, table) == pytest.approx(0.4)
    assert sens.candidate_loss("conv2", "bcr:4x4:0.75", 0.8, 2.0, table) == pytest.approx(0.4)
    assert sens.candidate_loss("conv1", "bcr:4x4:0.75", 0.8) == pytest.approx(0.2)
    with pytest.raises(SearchError, match="retained norm"):
        sens.candidate_loss("conv1", "bcr:4x4:0.75", 1.5)
    with pytest.raises(SearchError, match="sensitivity weight"):
        sens.candidate_loss("conv1", "bcr:4x4:0.75", 0.5, -1.0)


def test_proxy_retained_norm_real_and_expected() -> None:
    layer = conv2d("c", (1, 4, 6, 6), 8, 3, padding=1)
    w = np.random.default_rng(0).normal(size=(8, 36))
    real = sens.proxy_retained_norm(layer, "pattern:4", w)
    assert real == retained_norm(w, make_mask(w, "pattern:4", kernel=(3, 3)))
    assert sens.proxy_retained_norm(layer, "pattern:4") == expected_retained_norm("pattern:4",
                                                                                  layer)
    assert 4 / 9 < real < 1.0  # the best pattern keeps more than an average 4 of 9


def test_weights_uniform_and_fitted() -> None:
    assert sens.uniform_weights(["a", "b"]) == {"a": 1.0, "b": 1.0}
    retained = {("a", "unstructured:0.5"): 0.9, ("a", "unstructured:0.9"): 0.5,
                ("b", "unstructured:0.5"): 0.8, ("b", "unstructured:0.9"): 0.4,
                ("c", "dense"): 1.0}
    rows = [("a", "unstructured:0.5", 0.5, 0.3 * 0.1), ("a", "unstructured:0.9", 0.9, 0.3 * 0.5),
            ("b", "unstructured:0.5", 0.5, 0.01), ("b", "unstructured:0.9", 0.9, -0.05),
            ("c", "dense", 0.0, 0.0)]
    table = sens.table_from_measurements(rows)
    weights = sens.fit_sensitivity_weights(table, lambda layer, s: retained[(layer, s.spec)])
    assert weights["a"] == pytest.approx(0.3)
    assert weights["b"] == 0.0  # the best slope is negative: clamped
    assert "c" not in weights  # nothing removed: no slope to fit


# --------------------------------------------------------------------------- numpy nets


def _grad_check(dn: ModuleType, net: object, seed: int) -> float:
    rng = np.random.default_rng(seed)
    params = dn.init_params(net, seed)
    for k in params:  # nonzero biases keep pre-activations away from ReLU's kink at 0
        if k.endswith(".b"):
            params[k] = rng.normal(0.0, 0.1, params[k].shape)
    x = rng.uniform(0.0, 1.0, (3, 1, 8, 8))
    y = np.array([0, 3, 7])
    _, grads = dn.loss_and_grads(net, params, x, y)
    worst = 0.0
    h = 1e-6
    for k, v in params.items():
        for _ in range(6):
            i = tuple(int(rng.integers(0, s)) for s in v.shape)
            old = v[i]
            v[i] = old + h
            up, _ = dn.loss_and_grads(net, params, x, y)
            v[i] = old - h
            down, _ = dn.loss_and_grads(net, params, x, y)
            v[i] = old
            num = (up - down) / (2 * h)
            worst = max(worst, abs(num - grads[k][i]) / max(1e-8, abs(num) + abs(grads[k][i])))
    return worst


def test_mlp_and_cnn_gradients_match_finite_differences(dn: ModuleType) -> None:
    assert _grad_check(dn, dn.mlp(), 0) < 1e-5
    assert _grad_check(dn, dn.cnn(), 1) < 1e-5


def test_im2col_matches_a_direct_convolution(dn: ModuleType) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 5, 4))
    w = rng.normal(size=(4, 27))
    y, _ = dn.Conv3x3("c", 3, 4).forward({"c.w": w, "c.b": np.zeros(4)}, x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    w4 = w.reshape(4, 3, 3, 3)  # (out, in, kr, kc): grimsim's GEMM column order
    ref = np.zeros((2, 4, 5, 4))
    for r, c in itertools.product(range(5), range(4)):
        ref[:, :, r, c] = np.einsum("nikl,oikl->no", xp[:, :, r:r + 3, c:c + 3], w4)
    np.testing.assert_allclose(y, ref, atol=1e-12)


def test_mlp_learns_digits_and_masks_stay_zero(dn: ModuleType) -> None:
    data = dn.load_digits_split()
    net = dn.mlp()
    params = dn.train(net, dn.init_params(net, 0), data.x_train, data.y_train,
                      dn.TrainConfig(epochs=2, lr=3e-3))
    assert dn.accuracy(net, params, data.x_test, data.y_test) > 0.8
    mask = make_mask(params["mlp.fc1.w"], "bcr:4x4:0.75")
    tuned = dn.train(net, params, data.x_train, data.y_train, dn.TrainConfig(epochs=1),
                     masks={"mlp.fc1": mask})
    assert np.all(tuned["mlp.fc1.w"][~mask] == 0.0)
    assert np.any(tuned["mlp.fc1.w"][mask] != params["mlp.fc1.w"][mask])  # the rest trains


def test_grimsim_twin_has_the_same_gemms(dn: ModuleType) -> None:
    for net in (dn.cnn(), dn.mlp()):
        params = dn.init_params(net, 0)
        gnet = dn.grimsim_network(net)
        for name in net.prunable:
            g = gnet.layer(name).gemms[0]
            assert params[f"{name}.w"].shape == (g.M, g.K)
            assert net.kernel(name) == g.kernel
    cnn = dn.grimsim_network(dn.cnn())
    # output positions per image: 8x8, 8x8, 4x4 after one pool, 1 for the FC
    assert [cnn.layer(n).gemms[0].N for n in dn.cnn().prunable] == [64, 64, 16, 1]


def test_benchmark_solver_equals_brute_force() -> None:
    bench = _load("accuracy_digits")
    rng = np.random.default_rng(3)
    for _ in range(20):
        options = [[(float(rng.integers(1, 20)), float(rng.uniform(0, 1)), f"o{j}")
                    for j in range(int(rng.integers(1, 5)))] for _ in range(4)]
        budget = float(rng.integers(4, 60))
        best = None
        for combo in itertools.product(*[range(len(o)) for o in options]):
            cost = sum(options[i][c][0] for i, c in enumerate(combo))
            loss = sum(options[i][c][1] for i, c in enumerate(combo))
            if cost <= budget and (best is None or loss < best - 1e-12):
                best = loss
        got = bench.solve_exact(options, budget)
        if best is None:
            assert got is None
        else:
            assert got is not None and got[2] == pytest.approx(best)
            assert got[1] <= budget
