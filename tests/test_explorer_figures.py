"""The explorer's figure builders, on hand-made data (no grimsim model involved)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("plotly")

from grimsim.explorer import figures as F  # noqa: N812

# a small DAG: in -> a -> (b, c) -> d
LAYERS = [
    {"name": "in", "op": "input", "preds": [], "share": 0.0, "latency_s": 0.0},
    {"name": "a", "op": "conv", "preds": ["in"], "share": 0.5, "latency_s": 5e-3,
     "shape": "1x8x4x4", "gemm": "8x27x16"},
    {"name": "b", "op": "conv", "preds": ["a"], "share": 0.2, "latency_s": 2e-3},
    {"name": "c", "op": "pool", "preds": ["a"], "share": 0.1, "latency_s": 1e-3},
    {"name": "d", "op": "eltwise", "preds": ["b", "c"], "share": 0.2, "latency_s": 2e-3},
]


def _titled_axes(fig) -> list[tuple[str, str]]:
    """(axis name, title) of every visible cartesian axis."""
    out = []
    for key in fig.layout:
        if key.startswith(("xaxis", "yaxis")):
            axis = fig.layout[key]
            if axis.visible is False or axis.matches:
                continue  # hidden, or shares another axis (and its title)
            out.append((key, axis.title.text or ""))
    return out


def test_graph_positions_point_every_edge_right_and_keep_nodes_apart() -> None:
    pos = F.graph_positions(LAYERS)
    for layer in LAYERS:
        for p in layer["preds"]:
            assert pos[p][0] < pos[layer["name"]][0]
    assert len(set(pos.values())) == len(LAYERS)
    # the two branches share a column, centred on y = 0
    assert pos["b"][0] == pos["c"][0]
    assert pos["b"][1] + pos["c"][1] == pytest.approx(0.0)


@given(st.lists(st.lists(st.integers(0, 30), max_size=3), min_size=1, max_size=30))
def test_graph_positions_on_random_dags(preds_idx: list[list[int]]) -> None:
    layers = [{"name": f"n{i}", "preds": [f"n{j}" for j in ps if j < i]}
              for i, ps in enumerate(preds_idx)]
    pos = F.graph_positions(layers)
    assert len(set(pos.values())) == len(layers)
    for layer in layers:
        for p in layer["preds"]:
            assert pos[p][0] < pos[layer["name"]][0]


def test_network_graph_colours_by_share_and_rings_the_selected_layer() -> None:
    fig = F.network_graph_figure(LAYERS, title="t", selected="b")
    nodes = fig.data[1]
    assert list(nodes.customdata) == [layer["name"] for layer in LAYERS]
    assert list(nodes.marker.color) == pytest.approx([100 * layer["share"] for layer in LAYERS])
    # bigger share, bigger marker
    assert nodes.marker.size[1] > nodes.marker.size[2] > nodes.marker.size[0]
    ring = fig.data[F.HIGHLIGHT_TRACE]
    pos = F.graph_positions(LAYERS)
    assert (ring.x[0], ring.y[0]) == pos["b"]
    assert "latency share (%)" in nodes.marker.colorbar.title.text.replace("<br>", " ")
    # each edge is one segment (x0, x1, None)
    assert len(fig.data[0].x) == 3 * sum(len(layer["preds"]) for layer in LAYERS)


def test_network_graph_without_selection_has_an_empty_ring() -> None:
    fig = F.network_graph_figure(LAYERS)
    assert fig.data[F.HIGHLIGHT_TRACE].x == (None,)


RECORDS = [
    {"scheme": "dense", "sparsity": 0.0, "latency_s": 4e-3, "compute_s": 3e-3,
     "memory_s": 1e-3, "overhead_s": 0.0, "flops": 8e6, "bytes": 1e5},
    {"scheme": "bcr:4x16:0.5", "sparsity": 0.5, "latency_s": 3e-3, "compute_s": 2e-3,
     "memory_s": 0.8e-3, "overhead_s": 0.2e-3, "flops": 4e6, "bytes": 6e4},
    {"scheme": "bcr:4x16:0.75", "sparsity": 0.75, "latency_s": 2e-3, "compute_s": 1.2e-3,
     "memory_s": 0.6e-3, "overhead_s": 0.2e-3, "flops": 2e6, "bytes": 4e4},
    {"scheme": "bcr:16x32:0.75", "sparsity": 0.75, "latency_s": 1.5e-3, "compute_s": 1e-3,
     "memory_s": 0.4e-3, "overhead_s": 0.1e-3, "flops": 2e6, "bytes": 3e4},
    {"scheme": "unstructured:0.75", "sparsity": 0.75, "latency_s": 2.5e-3, "compute_s": 1e-3,
     "memory_s": 1e-3, "overhead_s": 0.5e-3, "flops": 2e6, "bytes": 5e4},
    {"scheme": "nm:2:4", "sparsity": 0.5, "latency_s": 2.8e-3, "compute_s": 2e-3,
     "memory_s": 0.5e-3, "overhead_s": 0.3e-3, "flops": 4e6, "bytes": 6e4},
]


def test_scheme_family_and_kind() -> None:
    assert F.scheme_kind("bcr:16x32:0.75") == "bcr"
    assert F.scheme_family("bcr:16x32:0.75") == "bcr 16x32"
    assert F.scheme_family("block_punched:4x4:0.5") == "block_punched 4x4"
    assert F.scheme_family("nm:2:4") == "nm"
    assert F.scheme_family("unstructured:0.5") == "unstructured"


def test_sparsity_curves_one_line_per_family_sorted_by_sparsity() -> None:
    fig = F.sparsity_curves_figure(list(reversed(RECORDS)), 4e-3, title="x")
    names = sorted(t.name for t in fig.data)
    assert names == ["bcr 16x32", "bcr 4x16", "nm", "unstructured"]
    bcr = next(t for t in fig.data if t.name == "bcr 4x16")
    assert list(bcr.x) == [50.0, 75.0]
    assert list(bcr.y) == pytest.approx([3.0, 2.0])  # milliseconds
    # the dense reference line sits at the dense latency in ms
    assert fig.layout.shapes[0].y0 == pytest.approx(4.0)
    titles = dict(_titled_axes(fig))
    assert "(ms)" in titles["yaxis"] and "%" in titles["xaxis"]


def test_roofline_points_are_attained_flops_and_the_roof_bends_at_the_ridge() -> None:
    pts = [{"label": r["scheme"], "flops": r["flops"], "bytes": r["bytes"],
            "latency_s": r["latency_s"]} for r in RECORDS]
    fig = F.roofline_figure(pts, peak_gflops=100.0, bandwidth_gbs=10.0)
    roof = fig.data[0]
    xs, ys = np.asarray(roof.x), np.asarray(roof.y)
    assert np.allclose(ys, np.minimum(100.0, 10.0 * xs))
    by_name = {t.name: t for t in fig.data[1:]}
    for r in RECORDS:
        t = by_name[r["scheme"]]
        assert t.x[0] == pytest.approx(r["flops"] / r["bytes"])
        assert t.y[0] == pytest.approx(r["flops"] / r["latency_s"] / 1e9)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "GFLOP/s" in fig.layout.yaxis.title.text


def test_roofline_without_counts_says_so() -> None:
    fig = F.roofline_figure([{"label": "dense", "flops": 0, "bytes": 0, "latency_s": 1}],
                            100.0, 10.0)
    assert "no FLOP" in fig.layout.annotations[0].text


def test_breakdown_stacks_the_three_parts() -> None:
    fig = F.breakdown_figure(RECORDS)
    parts = {t.name: t for t in fig.data if t.type == "bar"}
    assert set(parts) == {"compute", "memory", "overhead"}
    for i, r in enumerate(RECORDS):
        total = sum(parts[p].x[i] for p in parts)
        assert total == pytest.approx(1e3 * (r["compute_s"] + r["memory_s"] + r["overhead_s"]))
    assert fig.layout.barmode == "stack"


def _bcr_mask(rng: np.random.Generator, shape: tuple[int, int], block: tuple[int, int]
              ) -> np.ndarray:
    M, K = shape
    R, C = block
    mask = np.zeros(shape, dtype=bool)
    for i in range(0, M, R):
        for j in range(0, K, C):
            h, w = min(R, M - i), min(C, K - j)
            rows = rng.random(h) < 0.5
            cols = rng.random(w) < 0.5
            mask[i:i + h, j:j + w] = np.outer(rows, cols)
    return mask


@given(st.integers(1, 20), st.integers(1, 40), st.sampled_from([(2, 4), (4, 4), (4, 16)]),
       st.integers(0, 2**16))
def test_packed_blocks_stores_exactly_the_kept_grid_of_each_block(M: int, K: int,
                                                                  block: tuple[int, int],
                                                                  seed: int) -> None:
    mask = _bcr_mask(np.random.default_rng(seed), (M, K), block)
    packed = F.packed_blocks(mask, block)
    assert packed.shape == mask.shape
    R, C = block
    for i in range(0, M, R):
        for j in range(0, K, C):
            sub, pk = mask[i:i + R, j:j + C], packed[i:i + R, j:j + C]
            assert int(pk.sum()) == int(sub.sum())  # BCR keeps a full rows x cols grid
            r, c = int(sub.any(axis=1).sum()), int(sub.any(axis=0).sum())
            assert pk[:r, :c].all()


def test_mask_figure_with_and_without_blocks() -> None:
    mask = _bcr_mask(np.random.default_rng(0), (16, 32), (4, 16))
    pic = {"mask": mask, "block": (4, 16), "shape": (64, 147), "sparsity": 0.75,
           "spec": "bcr:4x16:0.75", "format": "BCRFormat",
           "format_bytes": {"values": 3000, "col_idx": 400}, "dense_bytes": 64 * 147 * 4}
    fig = F.mask_figure(pic)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2
    assert np.asarray(heat[0].z).shape == (16, 32)
    bars = {t.name: t.y[0] for t in fig.data if t.type == "bar"}
    assert bars == pytest.approx({"values": 3.0, "col_idx": 0.4, "dense": 64 * 147 * 4 / 1e3})
    assert "75.0% removed" in fig.layout.title.text
    # block grid lines on both heatmaps: (16/4 - 1) horizontal + (32/16 - 1) vertical each
    assert len(fig.layout.shapes) == 2 * (3 + 1)
    flat = F.mask_figure({**pic, "block": None, "spec": "unstructured:0.75"})
    assert len([t for t in flat.data if t.type == "heatmap"]) == 1


def test_mask_figure_shows_the_reason_when_there_is_no_mask() -> None:
    fig = F.mask_figure({"mask": None, "message": "pattern needs a 3x3 kernel"})
    assert fig.layout.annotations[0].text == "pattern needs a 3x3 kernel"


PARETO = [{"latency_s": 0.010, "loss": 0.30}, {"latency_s": 0.020, "loss": 0.05},
          {"latency_s": 0.015, "loss": 0.10}]


def test_pareto_points_carry_their_index_for_clicks() -> None:
    fig = F.pareto_figure(PARETO, chosen={"latency_s": 0.015, "loss": 0.10},
                          dense_latency_s=0.025, selected=1, target_latency_s=0.016)
    front = fig.data[0]
    assert list(front.x) == pytest.approx([10.0, 15.0, 20.0])  # sorted, in ms
    for x, i in zip(front.x, front.customdata, strict=True):
        assert 1e3 * PARETO[i]["latency_s"] == pytest.approx(x)
    names = [t.name for t in fig.data]
    assert {"search answer", "selected", "dense"} <= set(names)
    sel = next(t for t in fig.data if t.name == "selected")
    assert (sel.x[0], sel.y[0]) == pytest.approx((20.0, 0.05))
    assert fig.layout.shapes[0].x0 == pytest.approx(16.0)


def test_pareto_without_a_result_asks_for_a_search() -> None:
    fig = F.pareto_figure([])
    assert "run a search" in fig.layout.annotations[0].text


def test_scheme_chart_groups_dense_and_chosen_per_layer() -> None:
    layers = [{"name": "a", "scheme": "bcr:4x16:0.75", "latency_s": 1e-3,
               "dense_latency_s": 3e-3},
              {"name": "b", "scheme": "dense", "latency_s": 2e-3, "dense_latency_s": 2e-3},
              {"name": "c", "scheme": "bcr:16x32:0.5", "latency_s": None,
               "dense_latency_s": 1e-3}]
    fig = F.scheme_chart_figure(layers)
    by = {t.name: t for t in fig.data}
    assert list(by["dense baseline"].y) == pytest.approx([3.0, 2.0, 1.0])
    assert list(by["dense"].x) == ["b"]  # the layer the mapping leaves dense
    assert list(by["bcr"].x) == ["a", "c"]
    assert by["bcr"].y[0] == pytest.approx(1.0)
    assert by["bcr"].y[1] is None or math.isnan(by["bcr"].y[1])  # unknown, not zero
    assert list(fig.layout.xaxis.categoryarray) == ["a", "b", "c"]


def test_device_figures() -> None:
    rows = [{"device": "x", "latency_s": 0.02, "band_s": [0.01, 0.04], "peak_gflops": 100.0,
             "bandwidth_gbs": 10.0},
            {"device": "y", "latency_s": 0.01, "band_s": None, "peak_gflops": 200.0,
             "bandwidth_gbs": 20.0},
            {"device": "z", "error": "no GPU"}]
    fig = F.device_compare_figure(rows, "net")
    bar = fig.data[0]
    assert list(bar.x) == ["y", "x"]  # fastest first; z has no estimate
    assert list(bar.y) == pytest.approx([10.0, 20.0])
    assert list(bar.error_y.array) == pytest.approx([0.0, 20.0])
    assert list(bar.error_y.arrayminus) == pytest.approx([0.0, 10.0])
    peaks = F.device_peaks_figure(rows)
    assert list(peaks.data[0].text) == ["x", "y"]
    assert "(GB/s)" in peaks.layout.xaxis.title.text


def test_fidelity_figures_and_the_share_within_ten_percent() -> None:
    pts = [{"predicted_s": 1.05e-3, "measured_s": 1e-3}, {"predicted_s": 1.3e-3,
                                                          "measured_s": 1e-3},
           {"predicted_s": 0.95e-3, "measured_s": 1e-3}, {"predicted_s": 0.5e-3,
                                                          "measured_s": 1e-3}]
    fig = F.error_histogram_figure(pts, title="dev")
    assert list(fig.data[0].x) == pytest.approx([5.0, 30.0, -5.0, -50.0])
    assert "50% of 4 rows within +-10%" in fig.layout.title.text
    sc = F.fidelity_scatter_figure(pts)
    rows = next(t for t in sc.data if t.name == "rows")
    assert list(rows.x) == pytest.approx([1.0] * 4)
    assert "no calibration" in F.fidelity_scatter_figure([]).layout.annotations[0].text
    assert "no calibration" in F.error_histogram_figure([]).layout.annotations[0].text


NCNN = [{"device": f"Phone {i} SM8150", "network": "resnet18", "threads": 4,
         "measured_s": 0.01 * (i + 1)} for i in range(3)] + [
        {"device": "Board RK3588", "network": "resnet18", "threads": 4, "measured_s": 0.005,
         "predicted_s": 0.006},
        {"device": "Board RK3588", "network": "resnet18", "threads": 1, "measured_s": 0.02},
        {"device": "Board RK3588", "network": "googlenet", "threads": 4, "measured_s": 0.02}]


def test_ncnn_reference_sorted_with_soc_highlight_and_prediction_line() -> None:
    fig = F.ncnn_reference_figure(NCNN, "resnet18", 4, prediction_s=0.012, device="sd855",
                                  soc_tokens=["SM8150"])
    meas = fig.data[0]
    assert list(meas.y) == pytest.approx([5.0, 10.0, 20.0, 30.0])
    assert list(meas.marker.color) == ["#1f77b4", "#d62728", "#d62728", "#d62728"]
    pred = next(t for t in fig.data if t.name.startswith("grimsim predicted"))
    assert list(pred.x) == [1] and pred.y[0] == pytest.approx(6.0)
    line = next(t for t in fig.data if t.name.startswith("grimsim: sd855"))
    assert list(line.y) == pytest.approx([12.0, 12.0])
    assert "4 thread(s)" in fig.layout.title.text


def test_ncnn_reference_falls_back_to_the_nearest_thread_count_and_explains_gaps() -> None:
    fig = F.ncnn_reference_figure(NCNN, "resnet18", 2)
    assert "1 thread(s)" in fig.layout.title.text  # 1 and 4 are both 2 away: the smaller
    missing = F.ncnn_reference_figure(NCNN, "bert_base", 4)
    assert "no benchmark of bert_base" in missing.layout.annotations[0].text
    assert "not available" in F.ncnn_reference_figure([], "resnet18", 4).layout.annotations[0].text


def test_every_figure_labels_its_axes() -> None:
    mask = _bcr_mask(np.random.default_rng(1), (8, 16), (4, 4))
    figs = [
        F.network_graph_figure(LAYERS),
        F.sparsity_curves_figure(RECORDS, 4e-3),
        F.roofline_figure([{"label": "dense", "flops": 1e6, "bytes": 1e4, "latency_s": 1e-3}],
                          100.0, 10.0),
        F.breakdown_figure(RECORDS),
        F.mask_figure({"mask": mask, "block": (4, 4), "format_bytes": {"values": 10},
                       "dense_bytes": 512}),
        F.pareto_figure(PARETO),
        F.scheme_chart_figure([{"name": "a", "scheme": "dense", "latency_s": 1e-3,
                                "dense_latency_s": 1e-3}]),
        F.device_compare_figure([{"device": "x", "latency_s": 1e-3}]),
        F.device_peaks_figure([{"device": "x", "peak_gflops": 1.0, "bandwidth_gbs": 1.0}]),
        F.fidelity_scatter_figure([{"predicted_s": 1e-3, "measured_s": 1e-3}]),
        F.error_histogram_figure([{"predicted_s": 1e-3, "measured_s": 1e-3}]),
        F.ncnn_reference_figure(NCNN, "resnet18", 4),
    ]
    for n, fig in enumerate(figs):
        axes = _titled_axes(fig)
        assert axes, n
        for name, title in axes:
            if name == "yaxis" and n == 0:
                continue  # the graph's rows carry no quantity (its y axis is hidden)
            assert title.strip(), f"figure {n}: {name} has no title"
