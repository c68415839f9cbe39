"""The page: a header with the network / device / unit / threads choices, and four tabs
(Network, Layer lab, Search, Devices and fidelity). Only component trees here; the callbacks
fill them, except the Network tab's default view, which the page embeds (``NetworkView``) so
the first paint needs no callback round trip. Imported by ``create_app`` only (it imports
dash)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape as html_escape
from typing import Any

from dash import dcc, html
from dash.dash_table.DataTable import DataTable

from grimsim.explorer.data import (
    LAB_BLOCKS,
    LAB_DEFAULT_BLOCKS,
    LAB_DEFAULT_RATE,
    LAB_RATES,
    mask_spec_options,
)
from grimsim.explorer.figures import placeholder_figure

THREAD_CHOICES = (1, 2, 3, 4, 6, 8)
#: Figure heights (px) chosen so each tab's main figures fit a 1366 x 768 screen.
NETWORK_HEIGHT = 290
LAB_HEIGHT = 320
SEARCH_HEIGHT = 400
DEVICES_HEIGHT = 300
NCNN_HEIGHT = 340
GRAPH_CONFIG: Any = {"displaylogo": False, "responsive": True,
                "toImageButtonOptions": {"format": "png", "scale": 2}}

CSS = """
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
       font-size: 13px; color: #222; background: #f6f7f9; }
.header { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 14px;
          padding: 8px 14px; background: #1f2d3d; color: #fff; }
.header h1 { font-size: 17px; margin: 0 6px 0 0; font-weight: 600; white-space: nowrap; }
.header .ctl { display: flex; align-items: center; gap: 6px; }
.header label.lbl { font-size: 12px; color: #c8d3df; }
.header .dash-dropdown, .header .Select { color: #222; }
/* dash 4's invisible keyboard-focus input is absolutely placed and would widen the page */
.dash-dropdown-focus-target { width: 0; height: 0; padding: 0; border: 0; }
.unit-radio label { color: #fff; font-size: 13px; }
.upload { border: 1px dashed #8aa0b8; border-radius: 4px; padding: 4px 10px;
          cursor: pointer; color: #dbe6f1; font-size: 12px; white-space: nowrap; }
.shape-input { width: 140px; padding: 4px 6px; border-radius: 4px; border: 1px solid #8aa0b8;
               font-size: 12px; }
.msg { padding: 6px 14px; font-size: 12px; }
.msg.error { background: #fdecea; color: #8a1c12; border-bottom: 1px solid #f5c2bd; }
.msg.info { background: #eef5fb; color: #1d4f7a; border-bottom: 1px solid #cfe1f0; }
.tabpage { padding: 8px 14px 14px 14px; }
.summary { font-size: 13px; margin: 2px 0 6px 0; line-height: 1.5; }
.summary b { font-weight: 600; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 10px; }
.card { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: 4px; }
.row { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; margin-bottom: 6px; }
.row label.lbl { font-size: 12px; color: #444; }
.progress-outer { width: 140px; height: 10px; background: #e1e4e8; border-radius: 5px;
                  overflow: hidden; display: inline-block; vertical-align: middle; }
.progress-inner { height: 100%; background: #1f77b4; transition: width 0.3s; }
button.btn { background: #1f77b4; color: #fff; border: 0; border-radius: 4px;
             padding: 6px 14px; cursor: pointer; font-size: 13px; }
button.btn:disabled { background: #9bb7d0; cursor: default; }
button.btn.secondary { background: #fff; color: #1f77b4; border: 1px solid #1f77b4; }
.note { color: #666; font-size: 12px; }
@media (max-width: 1100px) { .grid2 { grid-template-columns: 1fr; } }
"""

INDEX = """<!DOCTYPE html>
<html>
<head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}<style>""" + CSS + """</style>
<!--preload--></head>
<body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer></body>
</html>"""


def index_html(preload_js: str | None = None) -> str:
    """The page's HTML shell; ``preload_js``: a script URL the browser should start fetching
    at once (the full plotly.js, which dcc.Graph would only ask for after the first render)."""
    if not preload_js:
        return INDEX.replace("<!--preload-->", "")
    return INDEX.replace("<!--preload-->",
                         f'<link rel="preload" as="script" href="{html_escape(preload_js)}">')


@dataclass(frozen=True)
class Defaults:
    """What the page shows on first load (no file or calibration needed)."""

    model: str = "resnet18"
    device: str = "sd855"
    unit: str = "cpu"
    threads: int = 4


@dataclass(frozen=True)
class NetworkView:
    """The Network tab's contents (the outputs of its callback, plus the layer-lab layer)."""

    summary: Any = None
    figure: Any = None
    rows: Sequence[Any] = ()  # the table's rows (dicts)
    layer_options: Sequence[Mapping[str, str]] = ()
    layer: str | None = None
    message: Any = None


def _graph(id_: str, height: int, message: str = "loading...", figure: Any = None
           ) -> dcc.Graph:
    return dcc.Graph(id=id_, figure=figure or placeholder_figure(message, height=height),
                     config=GRAPH_CONFIG, style={"height": f"{height}px"})


def _ctl(label: str, child: Any) -> html.Div:
    return html.Div([html.Label(label, className="lbl"), child], className="ctl")


def header(zoo: Sequence[str], devices: Sequence[str], d: Defaults,
           max_upload_bytes: int) -> html.Div:
    return html.Div([
        html.H1("grimsim explorer"),
        _ctl("network", dcc.Dropdown(id="model", options=[{"label": n, "value": n} for n in zoo],
                                     value=d.model, clearable=False, style={"width": "180px"})),
        dcc.Upload(id="upload", className="upload", max_size=max_upload_bytes,
                   accept=".onnx,.param", multiple=False,
                   children=html.Span(f"upload .onnx / .param "
                                      f"(max {max_upload_bytes // 2**20} MB)",
                                      title="an ONNX model or an ncnn .param file; it is "
                                            "parsed, never run")),
        html.Div(dcc.Input(id="input-shape", className="shape-input", type="text",
                           debounce=True, placeholder="input e.g. 1x3x224x224"),
                 title="input shape for an uploaded model (optional)"),
        _ctl("device", dcc.Dropdown(id="device",
                                    options=[{"label": n, "value": n} for n in devices],
                                    value=d.device, clearable=False, style={"width": "140px"})),
        _ctl("unit", dcc.RadioItems(id="unit", options=[{"label": "CPU", "value": "cpu"},
                                                         {"label": "GPU", "value": "gpu"}],
                                    value=d.unit, inline=True, className="unit-radio",
                                    inputStyle={"marginLeft": "6px", "marginRight": "3px"})),
        _ctl("threads", dcc.Dropdown(id="threads",
                                     options=[{"label": str(t), "value": t}
                                              for t in THREAD_CHOICES],
                                     value=d.threads, clearable=False, style={"width": "70px"})),
    ], className="header")


TABLE_COLUMNS = [
    ("name", "layer", "text"), ("op", "op", "text"), ("in_shape", "input", "text"),
    ("out_shape", "output", "text"), ("gemm", "GEMM M x K x N", "text"),
    ("mmacs", "MMACs", "numeric"), ("latency_ms", "latency (ms)", "numeric"),
    ("share_pct", "share (%)", "numeric"), ("band_ms", "band (ms)", "text"),
    ("bound", "bound", "text"), ("kernel", "kernel", "text"),
]


def _columns(spec: Sequence[tuple[str, str, str]]) -> Any:
    return [{"id": c, "name": n, "type": t} for c, n, t in spec]


def network_tab(view: NetworkView) -> html.Div:
    return html.Div([
        html.Div(view.message, id="net-msg"),
        html.Div(view.summary, id="net-summary", className="summary"),
        html.Div(dcc.Loading(_graph("net-graph", NETWORK_HEIGHT, figure=view.figure),
                             type="circle", delay_show=400), className="card"),
        html.Div(DataTable(
            id="layer-table", columns=_columns(TABLE_COLUMNS),
            data=list(view.rows), sort_action="native", filter_action="native",
            page_action="none", fixed_rows={"headers": True}, row_selectable=False,
            cell_selectable=True,
            # the rest of the screen below the graph, at least 280 px
            style_table={"height": "max(280px, calc(100vh - 480px))", "overflowY": "auto",
                         "overflowX": "auto"},
            style_cell={"fontSize": "12px", "padding": "3px 6px", "textAlign": "left",
                        "fontFamily": "inherit", "minWidth": "60px", "maxWidth": "240px",
                        "overflow": "hidden", "textOverflow": "ellipsis"},
            style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "right"}
                                    for c in ("mmacs", "latency_ms", "share_pct")],
            style_header={"fontWeight": "600", "backgroundColor": "#eef1f4",
                          "whiteSpace": "normal", "height": "auto"},
            style_data_conditional=[
                {"if": {"filter_query": "{share_pct} >= 5"}, "backgroundColor": "#fff3e0"},
                {"if": {"filter_query": "{share_pct} >= 10"}, "backgroundColor": "#ffe0b2"},
            ],
            tooltip_delay=300, tooltip_duration=None,
        ), className="card", style={"marginTop": "8px"}),
        html.Div("Click a column header to sort, type in the row under it to filter "
                 "(e.g. > 1 under latency); click a row or a graph node to open the layer in "
                 "the Layer lab tab.", className="note"),
    ], className="tabpage")


def layer_tab(view: NetworkView) -> html.Div:
    rates = [{"label": f"{100 * r:g}%", "value": r} for r in LAB_RATES]
    spec_options, spec_value = mask_spec_options(LAB_DEFAULT_BLOCKS, LAB_DEFAULT_RATE, None)
    return html.Div([
        html.Div(id="lab-msg"),
        html.Div([
            html.Label("layer", className="lbl"),
            dcc.Dropdown(id="lab-layer", options=list(view.layer_options), value=view.layer,
                         clearable=False,
                         style={"width": "300px"}),
            html.Label("BCR blocks", className="lbl"),
            dcc.Checklist(id="lab-blocks", options=list(LAB_BLOCKS),
                          value=list(LAB_DEFAULT_BLOCKS), inline=True,
                          inputStyle={"marginLeft": "8px", "marginRight": "3px"}),
            html.Label("rate", className="lbl", title="pruning rate of the roofline, the "
                                                       "breakdown and the mask"),
            dcc.Dropdown(id="lab-rate", options=rates, value=LAB_DEFAULT_RATE, clearable=False,
                         style={"width": "95px"}),
            html.Label("mask", className="lbl"),
            dcc.Dropdown(id="lab-spec", options=spec_options, value=spec_value, clearable=False,
                         style={"width": "200px"}),
        ], className="row"),
        html.Div(id="lab-summary", className="summary"),
        html.Div([
            html.Div(_graph("lab-curves", LAB_HEIGHT), className="card"),
            html.Div(_graph("lab-roofline", LAB_HEIGHT), className="card"),
            html.Div(_graph("lab-breakdown", LAB_HEIGHT), className="card"),
            html.Div(_graph("lab-mask", LAB_HEIGHT), className="card"),
        ], className="grid2"),
    ], className="tabpage")


def search_tab(saved: Sequence[str]) -> html.Div:
    return html.Div([
        html.Div(id="search-msg"),
        html.Div([
            dcc.RadioItems(id="search-mode", value="latency", inline=True,
                           options=[{"label": " latency target (ms)", "value": "latency"},
                                    {"label": " loss budget", "value": "loss"},
                                    {"label": " Pareto front only", "value": "pareto"}],
                           inputStyle={"marginLeft": "10px"}),
            dcc.Input(id="search-target", type="number", min=0, step="any",
                      placeholder="e.g. 20", style={"width": "130px"}),
            html.Button("Run search", id="search-run", className="btn", n_clicks=0),
            html.Div([html.Div(html.Div(id="search-bar", className="progress-inner",
                                        style={"width": "0%"}), className="progress-outer"),
                      html.Span(id="search-progress", className="note",
                                style={"marginLeft": "8px"})]),
            dcc.Dropdown(id="saved-result", options=[{"label": s, "value": s} for s in saved],
                         value=None, placeholder="or open a saved result" if saved else
                         "no saved results", style={"width": "250px"}),
        ], className="row"),
        html.Div(id="search-summary", className="summary"),
        html.Div([
            html.Div(_graph("search-pareto", SEARCH_HEIGHT, "run a search to see the Pareto "
                                                            "front"), className="card"),
            html.Div(_graph("search-schemes", SEARCH_HEIGHT, "run a search to see the "
                                                             "per-layer schemes"),
                     className="card"),
        ], className="grid2"),
        html.Div([
            html.Button("Download mapping JSON", id="download-mapping", className="btn",
                        n_clicks=0, disabled=True),
            html.Button("Download result JSON", id="download-result",
                        className="btn secondary", n_clicks=0, disabled=True),
            html.Span("The mapping file is what `grimsim predict`, `apply` and `run` take with "
                      "--mapping; the result file can be put in the dashboards' results "
                      "folder to reopen it here.", className="note"),
        ], className="row", style={"marginTop": "8px"}),
        dcc.Download(id="download"),
        dcc.Store(id="search-job"),
        dcc.Store(id="search-result"),
        dcc.Store(id="search-point"),
        dcc.Interval(id="search-poll", interval=400, disabled=True),
    ], className="tabpage")


def devices_tab() -> html.Div:
    cols = [("device", "device", "text"), ("id", "profile", "text"), ("soc", "SoC", "text"),
            ("cpu", "CPU clusters", "text"), ("peak_gflops", "peak GFLOP/s", "numeric"),
            ("bandwidth_gbs", "DRAM GB/s", "numeric"), ("gpu", "GPU", "text"),
            ("latency_ms", "latency (ms)", "numeric"), ("calibrated", "calibrated", "text")]
    return html.Div([
        html.Div(id="dev-msg"),
        html.Div([
            html.Div(_graph("dev-compare", DEVICES_HEIGHT), className="card"),
            html.Div(_graph("dev-peaks", DEVICES_HEIGHT), className="card"),
        ], className="grid2"),
        html.Div(DataTable(
            id="dev-table", columns=_columns(cols),
            data=[], sort_action="native", page_action="none",
            style_table={"overflowX": "auto", "width": "100%"},
            style_cell={"fontSize": "12px", "padding": "3px 6px", "textAlign": "left",
                        "fontFamily": "inherit", "whiteSpace": "normal", "height": "auto",
                        "maxWidth": "360px"},
            style_header={"fontWeight": "600", "backgroundColor": "#eef1f4"},
        ), className="card", style={"margin": "8px 0"}),
        html.Div([
            html.Div(_graph("fid-scatter", DEVICES_HEIGHT), className="card"),
            html.Div(_graph("fid-hist", DEVICES_HEIGHT), className="card"),
        ], className="grid2"),
        html.Div(_graph("ncnn-ref", NCNN_HEIGHT), className="card", style={"marginTop": "8px"}),
    ], className="tabpage")


def page(zoo: Sequence[str], devices: Sequence[str], saved: Sequence[str], d: Defaults,
         max_upload_bytes: int, view: NetworkView | None = None) -> html.Div:
    """The whole page; ``view``: the default Network tab to embed (else an empty one)."""
    view = view or NetworkView()
    tab_style = {"padding": "6px 14px"}
    return html.Div([
        header(zoo, devices, d, max_upload_bytes),
        html.Div(id="upload-msg"),
        dcc.Tabs(id="tabs", value="network", children=[
            dcc.Tab(network_tab(view), label="Network", value="network", style=tab_style,
                    selected_style=tab_style),
            dcc.Tab(layer_tab(view), label="Layer lab", value="layer", style=tab_style,
                    selected_style=tab_style),
            dcc.Tab(search_tab(saved), label="Search", value="search", style=tab_style,
                    selected_style=tab_style),
            dcc.Tab(devices_tab(), label="Devices and fidelity", value="devices",
                    style=tab_style, selected_style=tab_style),
        ]),
    ])
