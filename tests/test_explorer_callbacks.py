"""The explorer's callbacks called directly (no browser), on the real API."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("dash")

from dash.exceptions import PreventUpdate

from grimsim import api
from grimsim.errors import GrimsimError
from grimsim.explorer import callbacks as cb
from grimsim.explorer.data import (
    UPLOAD_PREFIX,
    ExplorerError,
    Queries,
    decode_upload,
    safe_stem,
)
from grimsim.explorer.jobs import JobRunner


@pytest.fixture
def ctx(tmp_path: Path) -> cb.Context:
    c = cb.Context(Queries(), JobRunner(workers=1), results_dir=tmp_path)
    yield c
    c.jobs.shutdown()


def _data_url(data: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(data).decode()


def _text(component: object) -> str:
    """All the text inside a dash component tree (or a list of them)."""
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return "".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def test_import_of_the_explorer_is_light() -> None:
    code = ("import sys, grimsim.explorer\n"
            "print(','.join(m for m in ('dash', 'plotly', 'flask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


def test_the_app_builds_with_every_callback_wired(tmp_path: Path) -> None:
    from grimsim.explorer import create_app

    app = create_app(results_dir=tmp_path)
    assert app.server.config["MAX_CONTENT_LENGTH"] > 20 * 2**20
    outputs = " ".join(app.callback_map)
    for target in ("net-graph.figure", "layer-table.data", "lab-curves.figure",
                   "lab-mask.figure", "search-pareto.figure", "download.data",
                   "dev-compare.figure", "model.options"):
        assert target in outputs, target


# ----------------------------------------------------------------------------- network view


def test_default_network_view(ctx: cb.Context) -> None:
    summary, fig, rows, lab, msg = cb.network_view(ctx, "resnet18", "sd855", "cpu", 4)
    assert msg is None
    assert "resnet18" in _text(summary) and "sd855" in _text(summary)
    est = api.estimate("resnet18", "sd855", threads=4)
    assert len(rows) == len(est.layers)
    assert sum(r["share_pct"] for r in rows) == pytest.approx(100.0, abs=0.5)
    by_name = {r["name"]: r for r in rows}
    conv1 = by_name["conv1"]
    assert conv1["gemm"] == "64x147x12544" and conv1["out_shape"] == "1x64x112x112"
    assert conv1["latency_ms"] == pytest.approx(
        1e3 * next(x.latency_s for x in est.layers if x.name == "conv1"), rel=1e-3)
    assert all(r["id"] == r["name"] for r in rows)
    # the layer lab offers exactly the prunable layers
    net = api.load_network("resnet18")
    prunable = {wl.name for wl in net.layers() if any(g.prunable for g in wl.gemms)}
    assert {o["value"] for o in lab} == prunable
    nodes = fig.data[1]
    assert len(nodes.customdata) == len(net)


def test_switching_device_threads_and_unit_changes_the_numbers(ctx: cb.Context) -> None:
    a = cb.network_view(ctx, "resnet18", "sd855", "cpu", 4)[2]
    b = cb.network_view(ctx, "resnet18", "rpi4", "cpu", 4)[2]
    c = cb.network_view(ctx, "resnet18", "sd855", "cpu", 1)[2]
    total = {k: sum(r["latency_ms"] for r in rows) for k, rows in
             {"a": a, "b": b, "c": c}.items()}
    assert total["b"] > total["a"]  # a Raspberry Pi 4 is slower than a Snapdragon 855
    assert total["c"] > total["a"]  # one thread is slower than four
    summary, _, rows, _, msg = cb.network_view(ctx, "resnet18", "sd855", "gpu", 4)
    assert msg is None and rows and "GPU" in _text(summary)


def test_a_bad_model_or_device_is_a_message_not_a_crash(ctx: cb.Context) -> None:
    _summary, _fig, rows, _, msg = cb.network_view(ctx, "no_such_net", "sd855", "cpu", 4)
    assert rows == [] and "no_such_net" in _text(msg)
    _, _, rows, _, msg = cb.network_view(ctx, "resnet18", "no_such_device", "cpu", 4)
    assert rows == [] and _text(msg)
    lost = cb.network_view(ctx, UPLOAD_PREFIX + "0" * 20, "sd855", "cpu", 4)[4]
    assert "upload it again" in _text(lost)


def test_select_layer_from_graph_table_or_default(ctx: cb.Context) -> None:
    _, _, rows, options, _ = cb.network_view(ctx, "resnet18", "sd855", "cpu", 4)
    click = {"points": [{"customdata": "layer2.0.conv1"}]}
    assert cb.select_layer(click, None, options, None, "net-graph") == "layer2.0.conv1"
    assert cb.open_lab(click, None, options, "net-graph") == "layer"
    cell = {"row": 3, "column": 0, "row_id": "layer3.1.conv2"}
    assert cb.select_layer(None, cell, options, None, "layer-table") == "layer3.1.conv2"
    with pytest.raises(PreventUpdate):  # maxpool has no weights: nothing to open
        cb.select_layer({"points": [{"customdata": "maxpool"}]}, None, options, "conv1",
                        "net-graph")
    with pytest.raises(PreventUpdate):
        cb.open_lab({"points": [{"customdata": "maxpool"}]}, None, options, "net-graph")
    # when the network changes, a still-valid choice stays, else the costliest layer
    assert cb.select_layer(None, None, options, "layer1.0.conv1", "lab-layer") == \
        "layer1.0.conv1"
    costliest = max((r for r in rows if r["name"] in {o["value"] for o in options}),
                    key=lambda r: r["share_pct"])["name"]
    assert cb.select_layer(None, None, options, "gone", "lab-layer") == costliest
    assert cb.select_layer(None, None, [], "x", None) is None


def test_highlight_patches_only_the_ring(ctx: cb.Context) -> None:
    from grimsim.explorer import figures as F  # noqa: N812

    patch = cb.highlight(ctx, "resnet18", "sd855", "cpu", 4, "conv1")
    ops = patch.to_plotly_json()["operations"]
    view = ctx.queries.network_view("resnet18", "sd855", "cpu", 4)
    x, y = F.graph_positions(view["layers"])["conv1"]
    assert {(tuple(o["location"]), o["params"]["value"][0]) for o in ops} == {
        (("data", F.HIGHLIGHT_TRACE, "x"), x), (("data", F.HIGHLIGHT_TRACE, "y"), y)}


# ----------------------------------------------------------------------------- uploads


@pytest.fixture(scope="module")
def squeezenet_param(reference_dir: Path) -> bytes:
    return (reference_dir / "ncnn" / "models" / "squeezenet.param").read_bytes()


def _upload_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("grimsim-upload-*")}


def test_an_uploaded_param_file_becomes_a_network(ctx: cb.Context,
                                                 squeezenet_param: bytes) -> None:
    before = _upload_dirs()
    options = [{"label": "resnet18", "value": "resnet18"}]
    opts, value, msg = cb.upload_model(ctx, _data_url(squeezenet_param), "squeezenet.param",
                                       None, options)
    assert value.startswith(UPLOAD_PREFIX)
    assert opts[-1] == {"label": "squeezenet.param (uploaded)", "value": value}
    assert "Loaded" in _text(msg)
    assert _upload_dirs() == before  # the temporary folder is gone
    summary, _, rows, _, err = cb.network_view(ctx, value, "sd855", "cpu", 4)
    assert err is None and "squeezenet" in _text(summary) and len(rows) > 20
    # the same file again: same token, no duplicate option
    opts2, value2, _ = cb.upload_model(ctx, _data_url(squeezenet_param), "squeezenet.param",
                                       None, opts)
    assert value2 == value and len(opts2) == len(opts)


@pytest.mark.parametrize(("name", "data", "expect"), [
    ("bad.param", b"garbage\n", "wrong magic number"),
    ("bad.param", b"7767517\n2 2\nInput data 0 1 data 0=227\nConvolution c 1 1 data out 0=8 "
                  b"1=3\n", "Convolution"),
    ("bad.onnx", b"\x00\x01not a protobuf", "not a readable ONNX model"),
    ("model.exe", b"MZ", "upload an ONNX model"),
    ("empty.param", b"", "empty"),
])
def test_a_malformed_upload_shows_the_parsers_message(ctx: cb.Context, name: str, data: bytes,
                                                      expect: str) -> None:
    before = _upload_dirs()
    opts, value, msg = cb.upload_model(ctx, _data_url(data), name, None, [])
    text = _text(msg)
    assert opts is cb.no_update and value is cb.no_update
    assert text.startswith("Upload failed") and expect in text
    assert "/tmp" not in text and "grimsim-upload" not in text  # no server paths leak
    assert _upload_dirs() == before
    # the app keeps working
    assert cb.network_view(ctx, "resnet18", "sd855", "cpu", 4)[4] is None


def test_upload_limits_and_names() -> None:
    big = _data_url(b"x" * 2048)
    with pytest.raises(ExplorerError, match="larger than"):
        decode_upload(big, "m.param", max_bytes=1024)
    with pytest.raises(ExplorerError, match="base64"):
        decode_upload("data:;base64,@@@@", "m.param")
    assert safe_stem("../../etc/passwd.param") == "passwd"
    assert safe_stem("C:\\x\\..\\evil name!.onnx") == "evil_name"
    assert safe_stem("....param") == "model"


# ----------------------------------------------------------------------------- layer lab


def test_layer_lab_curves_roofline_and_breakdown(ctx: cb.Context) -> None:
    with pytest.raises(PreventUpdate):
        cb.layer_lab(ctx, "network", "resnet18", "sd855", "cpu", 4, "conv1", ["4x16"], 0.75)
    summary, curves, roof, brk, msg = cb.layer_lab(
        ctx, "layer", "resnet18", "sd855", "cpu", 4, "layer3.0.conv2", ["4x16", "16x32"], 0.75)
    assert msg is None
    families = {t.name for t in curves.data}
    assert {"bcr 4x16", "bcr 16x32", "unstructured", "pattern"} <= families
    assert "bcr 8x16" not in families
    assert "layer3.0.conv2" in _text(summary)
    # latency falls as more weights go (BCR 16x32 curve)
    bcr = next(t for t in curves.data if t.name == "bcr 16x32")
    assert list(bcr.y) == sorted(bcr.y, reverse=True)
    labels = {t.name for t in roof.data[1:]}
    assert {"dense", "bcr:4x16:0.75", "bcr:16x32:0.75", "nm:2:4"} <= labels
    assert all("0.5" not in lab for lab in labels if lab.startswith("bcr"))
    bars = {t.name for t in brk.data}
    assert {"compute", "memory", "overhead"} <= bars


def test_layer_lab_on_a_depthwise_layer_has_no_pattern(ctx: cb.Context) -> None:
    _, _, _, _, options, = (None, *cb.network_view(ctx, "mobilenet_v2", "sd855", "cpu", 4)[:4])
    dw = next(o["value"] for o in options if "dwconv" in o["label"])
    _, curves, _, _, msg = cb.layer_lab(ctx, "layer", "mobilenet_v2", "sd855", "cpu", 4, dw,
                                        ["4x16"], 0.75)
    assert msg is None
    assert "pattern" not in {t.name for t in curves.data}


def test_mask_view(ctx: cb.Context) -> None:
    with pytest.raises(PreventUpdate):
        cb.mask_view(ctx, "network", "resnet18", "conv1", "bcr:4x16:0.75")
    fig = cb.mask_view(ctx, "layer", "resnet18", "layer2.0.conv1", "bcr:4x16:0.75")
    if not hasattr(api, "mask_picture"):
        assert "api.mask_picture" in fig.layout.annotations[0].text
        return
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2
    bad = cb.mask_view(ctx, "layer", "resnet18", "fc", "pattern:4")  # fc has no 3x3 kernel
    assert bad.layout.annotations and bad.layout.annotations[0].text


def test_mask_spec_options_follow_blocks_and_rate() -> None:
    opts, value = cb.mask_spec_options(["8x16"], 0.9, "bcr:4x16:0.75")
    specs = [o["value"] for o in opts]
    assert specs[0] == "bcr:8x16:0.9" and value == "bcr:8x16:0.9"
    assert "unstructured:0.9" in specs and "nm:2:4" in specs
    assert cb.mask_spec_options(["8x16"], 0.9, "nm:2:4")[1] == "nm:2:4"


# ----------------------------------------------------------------------------- devices


def test_devices_view(ctx: cb.Context) -> None:
    with pytest.raises(PreventUpdate):
        cb.devices_view(ctx, "network", "resnet18", "sd855", "cpu", 4)
    compare, _peaks, table, scatter, hist, _ncnn, msg = cb.devices_view(
        ctx, "devices", "resnet18", "sd855", "cpu", 4)
    assert msg is None
    names = {r["device"] for r in table}
    assert names == set(api.device_names()) - {"host"}
    sd855 = next(r for r in table if r["device"] == "sd855")
    est = api.estimate("resnet18", "sd855", threads=4)
    assert sd855["latency_ms"] == pytest.approx(1e3 * est.latency_s, rel=1e-3)
    assert set(compare.data[0].x) == names
    # sd855 ships uncalibrated: the fidelity views say so instead of plotting nothing
    assert "no calibration" in scatter.layout.annotations[0].text
    assert hist.layout.annotations


# ----------------------------------------------------------------------------- jobs


def test_job_runner_reports_progress_results_and_errors() -> None:
    jobs = JobRunner(workers=2)
    gate = threading.Event()

    def slow(progress: cb.Any) -> int:
        progress(0.5, "half way")
        gate.wait(5)
        return 42

    def failing(progress: cb.Any) -> int:
        raise GrimsimError("target too tight: fastest is 3 ms")

    a, b = jobs.submit(slow), jobs.submit(failing)
    assert a != b
    for _ in range(200):
        st = jobs.status(a)
        if st["message"] == "half way":
            break
        time.sleep(0.01)
    assert st["state"] == "running" and st["fraction"] == 0.5
    gate.set()
    assert jobs.wait(a)["result"] == 42
    failed = jobs.wait(b)
    assert failed["state"] == "failed" and "fastest is 3 ms" in failed["error"]
    jobs.forget(a)
    assert jobs.status(a)["state"] == "unknown"
    assert jobs.status(None)["state"] == "unknown"
    jobs.shutdown()


def test_job_runner_bounds_active_jobs_and_expires_finished_ones() -> None:
    jobs = JobRunner(workers=1, max_jobs=2, keep_s=0.0)
    gate = threading.Event()
    ids = [jobs.submit(lambda p: gate.wait(5)) for _ in range(2)]
    with pytest.raises(GrimsimError, match="busy"):
        jobs.submit(lambda p: None)
    gate.set()
    for jid in ids:
        jobs.wait(jid)
    time.sleep(0.01)
    jobs.submit(lambda p: None)  # room again; the finished ones expired
    assert all(jobs.status(jid)["state"] == "unknown" for jid in ids)
    jobs.shutdown()


def test_poll_of_an_unknown_job_is_a_message(ctx: cb.Context) -> None:
    out = cb.poll_search(ctx, {"job": "nope"})
    assert out[1] is True and "run it again" in _text(out[5])
    with pytest.raises(PreventUpdate):
        cb.poll_search(ctx, None)


def test_start_search_needs_a_target(ctx: cb.Context) -> None:
    job, disabled, _, msg = cb.start_search(ctx, 1, "latency", None, "resnet18", "sd855",
                                            "cpu", 4)
    assert job is cb.no_update and disabled is True and "latency target" in _text(msg)
    with pytest.raises(PreventUpdate):
        cb.start_search(ctx, 0, "latency", 10, "resnet18", "sd855", "cpu", 4)


def _run_search(ctx: cb.Context, mode: str, target: float | None) -> dict:
    job, disabled, _, msg = cb.start_search(ctx, 1, mode, target, "resnet18", "sd855", "cpu", 4)
    assert msg is None and disabled is False
    ctx.jobs.wait(job["job"], timeout_s=120)
    store, disabled, text, _bar, run_disabled, msg = cb.poll_search(ctx, job)
    assert msg is None, _text(msg)
    assert disabled is True and text.startswith("done") and run_disabled is False
    return store


def test_search_runs_renders_and_downloads(ctx: cb.Context, tmp_path: Path) -> None:
    dense = api.estimate("resnet18", "sd855", threads=4).latency_s
    store = _run_search(ctx, "latency", 0.6 * dense * 1e3)
    res = store["result"]
    assert res["latency_s"] <= 0.6 * dense * (1 + 1e-6)
    summary, pareto, schemes, dl_off, res_off = cb.render_search(ctx, store, None)
    assert not dl_off and not res_off
    assert "faster" in _text(summary)
    assert len(pareto.data[0].x) == len(res["pareto"])
    assert {t.name for t in schemes.data} >= {"dense baseline"}
    # clicking a front point shows that mapping, with per-layer latencies re-estimated
    i = len(res["pareto"]) // 2
    point = cb.select_point({"points": [{"customdata": i}]}, "search-pareto")
    assert point == i
    summary_p, _, schemes_p, _, _ = cb.render_search(ctx, store, point)
    assert f"Pareto point {i + 1}" in _text(summary_p)
    total = sum(y for t in schemes_p.data if t.name != "dense baseline" for y in t.y
                if y is not None)
    fixed = 1e3 * res["fixed_latency_s"]
    assert total + fixed == pytest.approx(1e3 * res["pareto"][i]["latency_s"], rel=0.02)
    # downloads: the mapping file of DESIGN.md, and the result file that reopens here
    mapping = json.loads(cb.download(ctx, "download-mapping", store, None)["content"])
    assert set(mapping) >= {"_meta", "network", "layers"}
    assert mapping["layers"] == {c["name"]: c["scheme"] for c in res["layers"]}
    point_map = json.loads(cb.download(ctx, "download-mapping", store, i)["content"])
    assert list(point_map["layers"].values()) == res["pareto"][i]["schemes"]
    saved = cb.download(ctx, "download-result", store, None)
    (tmp_path / saved["filename"]).write_text(saved["content"])
    assert cb.saved_results(tmp_path) == [saved["filename"]]
    reopened, msg = cb.load_saved(ctx, saved["filename"])
    assert msg is None and reopened["result"] == res
    assert cb.select_point(None, "search-result") is None


def test_pareto_and_loss_budget_searches(ctx: cb.Context) -> None:
    store = _run_search(ctx, "pareto", None)
    assert len(store["result"]["pareto"]) >= 2
    budget = store["result"]["pareto"][-1]["loss"]
    store = _run_search(ctx, "loss", budget)
    assert store["result"]["loss"] <= budget + 1e-9


def test_an_infeasible_target_is_a_message(ctx: cb.Context) -> None:
    job = cb.start_search(ctx, 1, "latency", 1e-6, "resnet18", "sd855", "cpu", 4)[0]
    ctx.jobs.wait(job["job"], timeout_s=120)
    out = cb.poll_search(ctx, job)
    assert out[0] is cb.no_update and out[2] == "failed" and _text(out[5])


def test_saved_results_reject_bad_files(ctx: cb.Context, tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something/else"}))
    for name in ("broken.json", "list.json", "other.json"):
        store, msg = cb.load_saved(ctx, name)
        assert store is cb.no_update and name in _text(msg)
    store, msg = cb.load_saved(ctx, "../../etc/passwd")
    assert store is cb.no_update and "not a saved result" in _text(msg)
    with pytest.raises(PreventUpdate):
        cb.load_saved(ctx, None)


def test_two_sessions_do_not_share_choices(ctx: cb.Context) -> None:
    """Everything a session chose travels with its request: interleaved calls for two
    sessions each get their own answer."""
    results: dict[str, list[float]] = {"a": [], "b": []}

    def session(key: str, model: str, device: str) -> None:
        for _ in range(5):
            rows = cb.network_view(ctx, model, device, "cpu", 4)[2]
            results[key].append(sum(r["latency_ms"] for r in rows))

    threads = [threading.Thread(target=session, args=("a", "resnet18", "sd855")),
               threading.Thread(target=session, args=("b", "mobilenet_v2", "rpi4"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results["a"])) == 1 and len(set(results["b"])) == 1
    assert results["a"][0] != results["b"][0]


def test_estimate_rows_are_attributed_to_their_graph_layer() -> None:
    from grimsim.explorer.data import _layer_of

    names = {"gru1", "gru10", "layer1", "layer1.0.conv1"}
    assert _layer_of("gru1.update.ih", names) == "gru1"
    assert _layer_of("gru10.reset.hh", names) == "gru10"
    assert _layer_of("layer1.0.conv1", names) == "layer1.0.conv1"
    assert _layer_of("layer1.0.conv1.elementwise", names) == "layer1.0.conv1"
    assert _layer_of("other", names) is None


def test_saved_result_carries_meta_and_reads_back(ctx: cb.Context, tmp_path: Path) -> None:
    from grimsim.explorer.data import RESULT_FORMAT, saved_result

    shipped = Path(__file__).resolve().parents[1] / "dashboards" / "results"
    files = sorted(shipped.glob("*.json"))
    assert files, "dashboards/results should ship at least one saved result"
    store = cb.read_result_file(ctx, files[0])
    data = saved_result(store)
    assert data["format"] == RESULT_FORMAT
    assert data["_meta"]["grimsim"] and data["_meta"]["device"] == store["device"]
    path = tmp_path / "again.json"
    path.write_text(json.dumps(data))
    again = cb.read_result_file(ctx, path)
    assert again["result"] == store["result"] and again["model"] == store["model"]
    summary, pareto, _, _, _ = cb.render_search(ctx, again, None)
    assert len(pareto.data[0].x) == len(store["result"]["pareto"]) and "faster" in _text(summary)
