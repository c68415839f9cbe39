"""The callbacks: plain functions of the inputs (testable by calling them), and ``register``
which wires them to an app. No callback keeps anything between calls except the shared,
content-keyed caches of ``Queries`` and the job-id-keyed ``JobRunner``; a session's choices
travel with its requests."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dash import Dash, Input, Output, Patch, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from grimsim import api
from grimsim.errors import GrimsimError
from grimsim.explorer import figures as F  # noqa: N812 - short, used everywhere
from grimsim.explorer.data import (
    UPLOAD_PREFIX,
    ExplorerError,
    Queries,
    mask_spec_options,
    saved_result,
    search_view,
    soc_tokens,
)
from grimsim.explorer.jobs import JobRunner
from grimsim.explorer.layout import (
    DEVICES_HEIGHT,
    LAB_HEIGHT,
    NCNN_HEIGHT,
    NETWORK_HEIGHT,
    SEARCH_HEIGHT,
    NetworkView,
)

log = logging.getLogger(__name__)

#: A saved result file larger than this is refused (a result is a few hundred kB at most).
MAX_RESULT_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Context:
    """What the callbacks share: the memoised queries, the job runner, the results folder."""

    queries: Queries
    jobs: JobRunner
    results_dir: Path | None = None


def message(text: str | None, kind: str = "error") -> html.Div | None:
    if not text:
        return None
    return html.Div(text, className=f"msg {kind}", role="alert" if kind == "error" else None)


def _threads(value: Any) -> int:
    try:
        t = int(value)
    except (TypeError, ValueError):
        return 1
    return max(1, min(t, 64))


def _unit(value: Any) -> str:
    return "gpu" if value == "gpu" else "cpu"


# ------------------------------------------------------------------------- header


def upload_model(c: Context, contents: str | None, filename: str | None,
                 input_shape: str | None, options: Sequence[Mapping[str, str]] | None
                 ) -> tuple[Any, Any, Any]:
    """A dropped file -> (model options, model value, message)."""
    if not contents:
        raise PreventUpdate
    try:
        value, label = c.queries.add_upload(contents, filename or "", input_shape)
    except GrimsimError as exc:
        return no_update, no_update, message(f"Upload failed: {exc}")
    opts = [o for o in (options or []) if o.get("value") != value]
    opts.append({"label": label, "value": value})
    return opts, value, message(f"Loaded {label}.", "info")


# ------------------------------------------------------------------------- network view


def network_view(c: Context, model: str, device: str, unit: str, threads: Any,
                 selected: str | None = None) -> tuple[Any, Any, Any, Any, Any]:
    """(summary, graph, table rows, layer-lab options, message); ``selected``: the layer the
    graph rings."""
    unit, t = _unit(unit), _threads(threads)
    try:
        view = c.queries.network_view(model, device, unit, t)
    except GrimsimError as exc:
        return (None, F.empty_figure(str(exc), height=NETWORK_HEIGHT), [], no_update,
                message(str(exc)))
    label = view["network"]
    if model.startswith(UPLOAD_PREFIX):
        label += " (uploaded)"
    summary = summary_line(view, label)
    fig = F.network_graph_figure(view["layers"], height=NETWORK_HEIGHT, selected=selected,
                                 title=f"{label}: layers coloured by share of the predicted "
                                       f"latency")
    rows = [{**r, "id": r["name"]} for r in view["table"]]
    lab = lab_options(view)
    note = None
    if view.get("skipped"):
        note = message("Not estimated: " + "; ".join(view["skipped"][:5]), "info")
    return summary, fig, rows, lab, note


def lab_options(view: Mapping[str, Any]) -> list[dict[str, str]]:
    """The layer lab's choices: the prunable layers, labelled with their latency share."""
    return [{"label": f"{n['name']}  ({n['op']}, {n['gemm']}, {100 * n['share']:.1f}%)",
             "value": n["name"]} for n in view["layers"] if n["prunable"]]


def initial_network(c: Context, model: str, device: str, unit: str, threads: Any
                    ) -> NetworkView:
    """The Network tab the page embeds for its default choices, with the layer lab's layer
    already chosen and ringed - what the network and layer-selection callbacks would answer
    on load, so the first paint needs no round trip. Memoised per choice (the figure is kept
    as plain JSON data)."""
    unit, t = _unit(unit), _threads(threads)

    def make() -> NetworkView:
        try:
            layer = select_layer(None, None, lab_options(
                c.queries.network_view(model, device, unit, t)), None, None)
        except GrimsimError:
            layer = None  # network_view below says why
        summary, fig, rows, lab, note = network_view(c, model, device, unit, t, layer)
        return NetworkView(summary=summary, figure=fig.to_plotly_json(), rows=rows,
                           layer_options=lab if isinstance(lab, list) else [], layer=layer,
                           message=note)

    return c.queries.memo(("page", model, device, unit, t), make)


def highlight(c: Context, model: str, device: str, unit: str, threads: Any,
              selected: str | None) -> Patch:
    """Move the graph's selection ring to ``selected`` (a Patch: the figure is not resent)."""
    try:
        view = c.queries.network_view(model, device, _unit(unit), _threads(threads))
    except GrimsimError:
        raise PreventUpdate from None
    pos = F.graph_positions(view["layers"])
    x, y = pos.get(selected or "", (None, None))
    patch = Patch()
    patch["data"][F.HIGHLIGHT_TRACE]["x"] = [x]
    patch["data"][F.HIGHLIGHT_TRACE]["y"] = [y]
    return patch


def summary_line(view: Mapping[str, Any], label: str) -> list[Any]:
    band = view.get("band_s")
    band_txt = (f" (error band {F.fmt_ms(band[0])} - {F.fmt_ms(band[1])})" if band else "")
    return [
        html.B(label), " on ", html.B(view["device"]),
        f" {view['unit'].upper()}, {view['threads']} thread(s): predicted ",
        html.B(F.fmt_ms(view["latency_s"])), band_txt,
        f"; {view['macs'] / 1e9:.3g} GMACs, {view['params'] / 1e6:.3g} M params, weights "
        f"{F.fmt_bytes(view.get('model_bytes'))}",
        html.Br(), html.Span(f"provenance: {view.get('provenance') or 'n/a'}", className="note"),
    ]


def clicked_layer(click: Mapping[str, Any] | None, cell: Mapping[str, Any] | None,
                  valid: Sequence[str], trigger: str | None) -> str | None:
    """The prunable layer a click on a graph node or a table row points at (a GEMM row of a
    multi-GEMM layer points at its layer), or None."""
    wanted: str | None = None
    if trigger == "net-graph" and click:
        pts = click.get("points") or []
        if pts and pts[0].get("customdata") is not None:
            wanted = str(pts[0]["customdata"])
    elif trigger == "layer-table" and cell:
        wanted = str(cell.get("row_id") or "")
        if wanted not in valid:
            wanted = next((v for v in valid if wanted.startswith(v + ".")), None)
    return wanted if wanted in valid else None


def select_layer(click: Mapping[str, Any] | None, cell: Mapping[str, Any] | None,
                 options: Sequence[Mapping[str, str]] | None, current: str | None,
                 trigger: str | None) -> Any:
    """The layer-lab layer: a clicked graph node or table row, else keep a valid one, else
    the most expensive prunable layer."""
    valid = [o["value"] for o in options or []]
    if not valid:
        return None
    wanted = clicked_layer(click, cell, valid, trigger)
    if wanted is not None:
        return wanted
    if trigger in ("net-graph", "layer-table"):
        raise PreventUpdate  # a layer without prunable weights: nothing to show there
    if current in valid:
        return current

    def share(o: Mapping[str, str]) -> float:
        try:
            return float(str(o["label"]).rsplit(", ", 1)[1].rstrip("%)"))
        except (IndexError, ValueError):
            return 0.0

    return max(options or [], key=share)["value"]


def open_lab(click: Mapping[str, Any] | None, cell: Mapping[str, Any] | None,
             options: Sequence[Mapping[str, str]] | None, trigger: str | None) -> str:
    """Switch to the Layer lab when a prunable layer was clicked."""
    valid = [o["value"] for o in options or []]
    if clicked_layer(click, cell, valid, trigger) is None:
        raise PreventUpdate
    return "layer"


# ------------------------------------------------------------------------- layer lab


def layer_lab(c: Context, tab: str, model: str, device: str, unit: str, threads: Any,
              layer: str | None, blocks: Sequence[str] | None, rate: float | None
              ) -> tuple[Any, Any, Any, Any, Any]:
    """(summary, curves, roofline, breakdown, message) for one layer."""
    if tab != "layer":
        raise PreventUpdate  # computed when the tab is opened
    if not layer:
        empty = F.empty_figure("choose a layer", height=LAB_HEIGHT)
        return None, empty, empty, empty, None
    unit, t = _unit(unit), _threads(threads)
    try:
        lab = c.queries.layer_lab(model, device, unit, t, layer, list(blocks or []))
    except GrimsimError as exc:
        empty = F.empty_figure(str(exc), height=LAB_HEIGHT)
        return None, empty, empty, empty, message(str(exc))
    records = lab["records"]
    r = float(rate or 0.75)
    at_rate = [x for x in records if x["scheme"] == "dense" or _at_rate(x["scheme"], r)]
    curves = F.sparsity_curves_figure(records, lab["dense_latency_s"], height=LAB_HEIGHT,
                                      title=f"{layer}: latency vs sparsity, every scheme")
    roof = F.roofline_figure([{"label": x["scheme"], "flops": x["flops"], "bytes": x["bytes"],
                               "latency_s": x["latency_s"]} for x in at_rate],
                             lab["peak_gflops"], lab["bandwidth_gbs"], height=LAB_HEIGHT,
                             title=f"roofline at {100 * r:g}% (and dense, N:M)")
    brk = F.breakdown_figure(sorted(at_rate, key=lambda x: x["latency_s"]), height=LAB_HEIGHT,
                             title=f"breakdown at {100 * r:g}%")
    g = lab["gemms"]
    shape = ", ".join(f"{x['name']}: M={x['M']} K={x['K']} N={x['N']}"
                      + (f" groups={x['groups']}" if x["groups"] > 1 else "") for x in g)
    best = min(records, key=lambda x: x["latency_s"]) if records else None
    summary: list[Any] = [html.B(layer), f" ({lab['op']}) GEMM {shape}; dense ",
                          html.B(F.fmt_ms(lab["dense_latency_s"]))]
    if best is not None:
        summary += ["; fastest candidate ", html.B(best["scheme"]),
                    f" {F.fmt_ms(best['latency_s'])}"]
    return summary, curves, roof, brk, None


def _at_rate(spec: str, rate: float) -> bool:
    parts = spec.split(":")
    if parts[0] == "nm":
        return True
    try:
        return abs(float(parts[-1]) - rate) < 1e-6
    except ValueError:
        return parts[0] == "pattern"


def mask_view(c: Context, tab: str, model: str, layer: str | None, spec: str | None) -> Any:
    if tab != "layer":
        raise PreventUpdate
    if not layer or not spec:
        return F.empty_figure("choose a layer and a scheme", height=LAB_HEIGHT)
    try:
        pic = c.queries.mask_picture(model, layer, spec)
    except GrimsimError as exc:
        return F.empty_figure(str(exc), height=LAB_HEIGHT)
    return F.mask_figure(pic, height=LAB_HEIGHT)


# ------------------------------------------------------------------------- search


def start_search(c: Context, n_clicks: int | None, mode: str, target: Any, model: str,
                 device: str, unit: str, threads: Any) -> tuple[Any, Any, Any, Any]:
    """(job store, poll disabled, progress text, message)."""
    if not n_clicks:
        raise PreventUpdate
    value: float | None
    try:
        value = None if target in (None, "") else float(target)
    except (TypeError, ValueError):
        value = None
    if mode in ("latency", "loss") and value is None:
        what = "latency target in ms" if mode == "latency" else "loss budget"
        return no_update, True, "", message(f"Give a {what} first.")
    unit, t = _unit(unit), _threads(threads)

    def job(progress: Any) -> dict[str, Any]:
        return c.queries.run_search(model, device, unit, t, mode, value, progress)

    try:
        jid = c.jobs.submit(job)
    except GrimsimError as exc:
        return no_update, True, "", message(str(exc))
    return {"job": jid}, False, "queued", None


def poll_search(c: Context, job: Mapping[str, Any] | None
                ) -> tuple[Any, Any, Any, Any, Any, Any]:
    """(result store, poll disabled, progress text, bar style, run disabled, message)."""
    if not job:
        raise PreventUpdate
    st = c.jobs.status(job.get("job"))
    pct = f"{100 * st['fraction']:.0f}%"
    if st["state"] in ("queued", "running"):
        text = f"{st['message'] or st['state']} ({pct}, {st['elapsed_s']:.1f} s)"
        return no_update, False, text, {"width": pct}, True, None
    c.jobs.forget(str(job.get("job")))
    if st["state"] == "done":
        return (st["result"], True, f"done in {st['elapsed_s']:.1f} s", {"width": "100%"},
                False, None)
    return no_update, True, "failed", {"width": "0%"}, False, message(st["error"])


def select_point(click: Mapping[str, Any] | None, trigger: str | None) -> Any:
    """The clicked Pareto point's index (reset when a new result arrives)."""
    if trigger != "search-pareto" or not click:
        return None
    pts = click.get("points") or []
    if not pts or pts[0].get("customdata") is None:
        raise PreventUpdate
    return int(pts[0]["customdata"])


def render_search(c: Context, store: Mapping[str, Any] | None, point: int | None
                  ) -> tuple[Any, Any, Any, Any, Any]:
    """(summary, Pareto figure, scheme chart, mapping download disabled, result download
    disabled)."""
    if not store:
        raise PreventUpdate
    res = store["result"]
    lat: dict[str, float] | None = None
    if point is not None:
        try:
            lat = c.queries.point_latencies(store, point)
        except (GrimsimError, IndexError, KeyError) as exc:
            log.info("no per-layer latencies for point %s: %s", point, exc)
    view = search_view(store, point, lat)
    target = res.get("target") if res.get("objective") == "min_loss" else None
    pareto = F.pareto_figure(res.get("pareto") or [], chosen=res,
                             dense_latency_s=float(res["dense_latency_s"]), selected=view["point"],
                             target_latency_s=target, height=SEARCH_HEIGHT,
                             title=f"{store.get('network')} on {store.get('device')}: "
                                   "latency vs loss")
    which = ("the search's answer" if view["point"] is None
             else f"Pareto point {view['point'] + 1} of {len(res.get('pareto') or [])}")
    schemes = F.scheme_chart_figure(view["layers"], title=f"per-layer schemes of {which}",
                                    height=SEARCH_HEIGHT)
    speed = view["speedup"]
    summary = [
        html.B(which.capitalize()), ": predicted ", html.B(F.fmt_ms(view["latency_s"])),
        f" vs dense {F.fmt_ms(view['dense_latency_s'])} (",
        html.B(f"{speed:.2f}x faster" if speed else "-"), f"), loss {view['loss']:.4g}, "
        f"weights {F.fmt_bytes(view['model_bytes'])} (dense "
        f"{F.fmt_bytes(view['dense_model_bytes'])}); solver {res.get('solver')}, "
        f"objective {res.get('objective')}, {float(res.get('search_s', 0)):.2f} s.",
    ]
    if view["point"] is None and res.get("pareto"):
        summary.append(html.Span(" Click a point of the front to see its mapping.",
                                 className="note"))
    return summary, pareto, schemes, False, False


def download(c: Context, which: str | None, store: Mapping[str, Any] | None,
             point: int | None) -> Any:
    if not store or which not in ("download-mapping", "download-result"):
        raise PreventUpdate
    stem = f"{store.get('network', 'network')}_{store.get('device_name', 'device')}"
    if which == "download-result":
        return {"content": json.dumps(saved_result(store), indent=1),
                "filename": f"{stem}_result.json", "type": "application/json"}
    mapping = c.queries.mapping_download(store, point)
    suffix = "" if point is None else f"_point{point + 1}"
    return {"content": json.dumps(mapping, indent=1), "filename": f"{stem}_mapping{suffix}.json",
            "type": "application/json"}


def saved_results(results_dir: Path | None) -> list[str]:
    if results_dir is None or not results_dir.is_dir():
        return []
    return sorted(p.name for p in results_dir.glob("*.json") if p.is_file())


def load_saved(c: Context, name: str | None) -> tuple[Any, Any]:
    """A saved result file -> (result store, message)."""
    if not name:
        raise PreventUpdate
    if c.results_dir is None or name not in saved_results(c.results_dir):
        return no_update, message(f"{name!r} is not a saved result of this server")
    path = c.results_dir / name
    try:
        return read_result_file(c, path), None
    except GrimsimError as exc:
        return no_update, message(f"{name}: {exc}")


def check_result(result: Any) -> None:
    """A clear error unless ``result`` is a search result's JSON (``SearchResult.to_dict``)."""
    if not isinstance(result, dict) or not str(result.get("format", "")).startswith(
            "grimsim.search_result/"):
        raise ExplorerError("not a grimsim search result (no 'format': "
                            "'grimsim.search_result/1'); save one with 'Download result JSON'")
    parse = getattr(api, "search_result_from_json", None)
    if parse is not None:
        parse(json.dumps(result))  # the API's own validation, with its message
        return
    missing = [k for k in ("layers", "pareto", "latency_s", "loss", "dense_latency_s")
               if k not in result]
    if missing:
        raise ExplorerError(f"malformed search result: missing {', '.join(missing)}")


def read_result_file(c: Context, path: Path) -> dict[str, Any]:
    """A result store from a file written by the explorer's "Download result JSON" (or a
    bare search result with ``network``/``device`` beside it)."""
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise ExplorerError(f"larger than {MAX_RESULT_BYTES // 2**20} MB")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExplorerError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ExplorerError("expected a JSON object")
    result = data.get("result", data)
    check_result(result)
    raw_meta = data.get("_meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    model = str(data.get("model") or data.get("network") or meta.get("network") or "")
    device = str(data.get("device_name") or data.get("device") or meta.get("device") or "")
    if not model or not device:
        raise ExplorerError("the file does not say which network and device it is for "
                            "(keys 'network' and 'device')")
    device_name = device.split("@", 1)[0]
    unit = _unit(data.get("unit", "cpu"))
    threads = _threads(data.get("threads", 1))
    dense = data.get("dense_layers")
    if not isinstance(dense, dict):
        try:
            view = c.queries.network_view(model, device_name, unit, threads)
            dense = {r["name"]: r["latency_s"] for r in view["layers"]}
        except GrimsimError:
            dense = {}
    return {"model": model, "network": str(data.get("network") or model), "device": device,
            "device_name": device_name, "unit": unit, "threads": threads,
            "mode": data.get("mode"), "target": data.get("target"), "result": result,
            "dense_layers": dense}


# ------------------------------------------------------------------------- devices


def devices_view(c: Context, tab: str, model: str, device: str, unit: str, threads: Any
                 ) -> tuple[Any, Any, Any, Any, Any, Any, Any]:
    """(compare, peaks, table rows, fidelity scatter, error histogram, ncnn, message)."""
    if tab != "devices":
        raise PreventUpdate
    unit, t = _unit(unit), _threads(threads)
    msg = None
    try:
        rows = c.queries.device_rows(model, unit, t)
        name = c.queries.network(model).name
    except GrimsimError as exc:
        rows, name, msg = [], model, message(str(exc))
    compare = F.device_compare_figure(rows, f"{name}, {unit.upper()} {t} thread(s),",
                                      height=DEVICES_HEIGHT)
    peaks = F.device_peaks_figure(rows, height=DEVICES_HEIGHT)
    table = [{**{k: v for k, v in r.items() if k not in ("band_s", "error")},
              "latency_ms": round(1e3 * r["latency_s"], 3) if r.get("latency_s") else None,
              "peak_gflops": round(r["peak_gflops"], 1) if r.get("peak_gflops") else None,
              "bandwidth_gbs": round(r["bandwidth_gbs"], 1) if r.get("bandwidth_gbs") else None}
             for r in rows]
    points = c.queries.fidelity(device)
    scatter = F.fidelity_scatter_figure(points, title=f"{device}: predicted vs measured",
                                        height=DEVICES_HEIGHT)
    hist = F.error_histogram_figure(points, title=f"{device}: prediction error",
                                    height=DEVICES_HEIGHT)
    mine = next((r for r in rows if r["device"] == device), None)
    try:
        tokens = soc_tokens(c.queries.device(device))
    except GrimsimError:
        tokens = []
    ncnn = F.ncnn_reference_figure(c.queries.ncnn_points(), name, t,
                                   prediction_s=mine.get("latency_s") if mine else None,
                                   device=device, soc_tokens=tokens, height=NCNN_HEIGHT)
    return compare, peaks, table, scatter, hist, ncnn, msg


# ------------------------------------------------------------------------- wiring


def register(app: Dash, c: Context) -> None:
    """Wire every callback to ``app``."""

    @app.callback(Output("model", "options"), Output("model", "value"),
                  Output("upload-msg", "children"),
                  Input("upload", "contents"), State("upload", "filename"),
                  State("input-shape", "value"), State("model", "options"),
                  prevent_initial_call=True)
    def _upload(contents: Any, filename: Any, shape: Any, options: Any) -> Any:
        return upload_model(c, contents, filename, shape, options)

    @app.callback(Output("net-summary", "children"), Output("net-graph", "figure"),
                  Output("layer-table", "data"), Output("lab-layer", "options"),
                  Output("net-msg", "children"),
                  Input("model", "value"), Input("device", "value"), Input("unit", "value"),
                  Input("threads", "value"),
                  prevent_initial_call=True)  # the page embeds the default view
    def _network(model: Any, device: Any, unit: Any, threads: Any) -> Any:
        return network_view(c, model, device, unit, threads)

    @app.callback(Output("net-graph", "figure", allow_duplicate=True),
                  Input("lab-layer", "value"), State("model", "value"), State("device", "value"),
                  State("unit", "value"), State("threads", "value"), prevent_initial_call=True)
    def _highlight(selected: Any, model: Any, device: Any, unit: Any, threads: Any) -> Any:
        return highlight(c, model, device, unit, threads, selected)

    @app.callback(Output("lab-layer", "value"),
                  Input("net-graph", "clickData"), Input("layer-table", "active_cell"),
                  Input("lab-layer", "options"), State("lab-layer", "value"),
                  prevent_initial_call=True)  # the page embeds the default layer
    def _select(click: Any, cell: Any, options: Any, current: Any) -> Any:
        return select_layer(click, cell, options, current, ctx.triggered_id)

    @app.callback(Output("tabs", "value"),
                  Input("net-graph", "clickData"), Input("layer-table", "active_cell"),
                  State("lab-layer", "options"), prevent_initial_call=True)
    def _open_lab(click: Any, cell: Any, options: Any) -> Any:
        return open_lab(click, cell, options, ctx.triggered_id)

    @app.callback(Output("lab-spec", "options"), Output("lab-spec", "value"),
                  Input("lab-blocks", "value"), Input("lab-rate", "value"),
                  State("lab-spec", "value"), prevent_initial_call=True)
    def _specs(blocks: Any, rate: Any, current: Any) -> Any:
        return mask_spec_options(blocks, rate, current)

    @app.callback(Output("lab-summary", "children"), Output("lab-curves", "figure"),
                  Output("lab-roofline", "figure"), Output("lab-breakdown", "figure"),
                  Output("lab-msg", "children"),
                  Input("tabs", "value"), Input("model", "value"), Input("device", "value"),
                  Input("unit", "value"), Input("threads", "value"),
                  Input("lab-layer", "value"), Input("lab-blocks", "value"),
                  Input("lab-rate", "value"),
                  prevent_initial_call=True)
    def _lab(tab: Any, model: Any, device: Any, unit: Any, threads: Any, layer: Any,
             blocks: Any, rate: Any) -> Any:
        return layer_lab(c, tab, model, device, unit, threads, layer, blocks, rate)

    @app.callback(Output("lab-mask", "figure"),
                  Input("tabs", "value"), Input("model", "value"),
                  Input("lab-layer", "value"), Input("lab-spec", "value"),
                  prevent_initial_call=True)
    def _mask(tab: Any, model: Any, layer: Any, spec: Any) -> Any:
        return mask_view(c, tab, model, layer, spec)

    @app.callback(Output("search-job", "data"), Output("search-poll", "disabled"),
                  Output("search-progress", "children"), Output("search-msg", "children"),
                  Input("search-run", "n_clicks"), State("search-mode", "value"),
                  State("search-target", "value"), State("model", "value"),
                  State("device", "value"), State("unit", "value"), State("threads", "value"),
                  prevent_initial_call=True)
    def _start(n: Any, mode: Any, target: Any, model: Any, device: Any, unit: Any,
               threads: Any) -> Any:
        return start_search(c, n, mode, target, model, device, unit, threads)

    @app.callback(Output("search-result", "data"),
                  Output("search-poll", "disabled", allow_duplicate=True),
                  Output("search-progress", "children", allow_duplicate=True),
                  Output("search-bar", "style"), Output("search-run", "disabled"),
                  Output("search-msg", "children", allow_duplicate=True),
                  Input("search-poll", "n_intervals"), State("search-job", "data"),
                  prevent_initial_call=True)
    def _poll(n: Any, job: Any) -> Any:
        return poll_search(c, job)

    @app.callback(Output("search-result", "data", allow_duplicate=True),
                  Output("search-msg", "children", allow_duplicate=True),
                  Input("saved-result", "value"), prevent_initial_call=True)
    def _saved(name: Any) -> Any:
        return load_saved(c, name)

    @app.callback(Output("search-point", "data"),
                  Input("search-pareto", "clickData"), Input("search-result", "data"),
                  prevent_initial_call=True)
    def _point(click: Any, store: Any) -> Any:
        return select_point(click, ctx.triggered_id)

    @app.callback(Output("search-summary", "children"), Output("search-pareto", "figure"),
                  Output("search-schemes", "figure"), Output("download-mapping", "disabled"),
                  Output("download-result", "disabled"),
                  Input("search-result", "data"), Input("search-point", "data"),
                  prevent_initial_call=True)
    def _render(store: Any, point: Any) -> Any:
        return render_search(c, store, point)

    @app.callback(Output("download", "data"),
                  Output("search-msg", "children", allow_duplicate=True),
                  Input("download-mapping", "n_clicks"), Input("download-result", "n_clicks"),
                  State("search-result", "data"), State("search-point", "data"),
                  prevent_initial_call=True)
    def _download(n1: Any, n2: Any, store: Any, point: Any) -> Any:
        try:
            return download(c, ctx.triggered_id, store, point), None
        except GrimsimError as exc:
            return no_update, message(str(exc))

    @app.callback(Output("dev-compare", "figure"), Output("dev-peaks", "figure"),
                  Output("dev-table", "data"), Output("fid-scatter", "figure"),
                  Output("fid-hist", "figure"), Output("ncnn-ref", "figure"),
                  Output("dev-msg", "children"),
                  Input("tabs", "value"), Input("model", "value"), Input("device", "value"),
                  Input("unit", "value"), Input("threads", "value"),
                  prevent_initial_call=True)
    def _devices(tab: Any, model: Any, device: Any, unit: Any, threads: Any) -> Any:
        return devices_view(c, tab, model, device, unit, threads)
