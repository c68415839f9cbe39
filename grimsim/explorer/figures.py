"""Figure builders: plain data (lists of dicts, numbers) in, plotly figures out.

Nothing here calls grimsim: the callbacks turn API results into plain rows (``views``) and
these functions only draw them, so each one can be tested with hand-made data. Every axis
carries its unit; every figure says what it shows when it has nothing to show.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

#: Margins sized for a laptop screen (1366 x 768): small, but room for axis titles.
MARGIN = {"l": 60, "r": 20, "t": 40, "b": 50}
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}
#: One colour per scheme kind, the same in every figure.
SCHEME_COLOURS = {
    "dense": "#7f7f7f",
    "bcr": "#1f77b4",
    "block_punched": "#17becf",
    "unstructured": "#d62728",
    "nm": "#2ca02c",
    "pattern": "#9467bd",
    "filter": "#ff7f0e",
    "column": "#8c564b",
}
#: A legend in one row between the title and the plot (``_base`` leaves room for it).
TOP_LEGEND = {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom",
              "font": {"size": 11}}
BOUND_COLOURS = {"compute": "#1f77b4", "memory": "#ff7f0e", "overhead": "#7f7f7f"}


def _base(fig: go.Figure, title: str, height: int) -> go.Figure:
    top = fig.layout.legend.orientation == "h" and fig.layout.legend.yanchor == "bottom"
    fig.update_layout(title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 14},
                             "y": 1.0, "yref": "container", "yanchor": "top", "pad": {"t": 8}},
                      height=height, margin={**MARGIN, "t": 66 if top else MARGIN["t"]},
                      font=FONT, template="plotly_white")
    if not top:
        fig.update_layout(legend={"font": {"size": 11}})
    return fig


def empty_figure(message: str, title: str = "", height: int = 320) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper",
                       showarrow=False, font={"size": 13, "color": "#555"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base(fig, title, height)


def placeholder_figure(message: str, height: int = 320) -> dict[str, Any]:
    """``empty_figure`` as a plain dict without a template: the page embeds one per graph,
    and the ``plotly_white`` template would add ~7 kB of JSON to each (the blank figure has no
    axes, so only its white background is kept)."""
    return {
        "data": [],
        "layout": {
            "height": height, "margin": MARGIN, "font": FONT,
            "paper_bgcolor": "white", "plot_bgcolor": "white",
            "xaxis": {"visible": False}, "yaxis": {"visible": False},
            "annotations": [{"text": message, "x": 0.5, "y": 0.5, "xref": "paper",
                             "yref": "paper", "showarrow": False,
                             "font": {"size": 13, "color": "#555"}}],
        },
    }


def scheme_kind(spec: str) -> str:
    """``bcr:16x32:0.75`` -> ``bcr``."""
    return spec.split(":", 1)[0] if spec else "dense"


def scheme_family(spec: str) -> str:
    """A curve's name: the kind plus its block or N:M shape, without the rate
    (``bcr:16x32:0.75`` -> ``bcr 16x32``, ``nm:2:4`` -> ``nm``)."""
    parts = spec.split(":")
    kind = parts[0]
    if kind in ("bcr", "block_punched") and len(parts) > 1:
        return f"{kind} {parts[1]}"
    return kind


def fmt_ms(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g} ms" if ms >= 0.01 else f"{seconds * 1e6:.3g} us"


def _ms(seconds: Any) -> float | None:
    """Seconds -> milliseconds; None (unknown) stays None so plots leave a gap."""
    return None if seconds is None else 1e3 * float(seconds)


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


# ------------------------------------------------------------------------------ network graph


def graph_positions(layers: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """(x, y) per layer for a left-to-right drawing of a DAG given in topological order.

    x is the longest path from an input (so every edge points right); within one column,
    layers are ordered by the mean height of their predecessors (fewer crossings) and
    centred on y = 0.
    """
    depth: dict[str, int] = {}
    for layer in layers:
        preds = [p for p in layer.get("preds", ()) if p in depth]
        depth[layer["name"]] = 1 + max((depth[p] for p in preds), default=-1)
    columns: dict[int, list[str]] = {}
    for layer in layers:
        columns.setdefault(depth[layer["name"]], []).append(layer["name"])
    preds_of = {layer["name"]: list(layer.get("preds", ())) for layer in layers}
    pos: dict[str, tuple[float, float]] = {}
    for d in sorted(columns):
        names = columns[d]

        def barycentre(name: str) -> float:
            ys = [pos[p][1] for p in preds_of[name] if p in pos]
            return sum(ys) / len(ys) if ys else 0.0

        order = sorted(names, key=lambda n: (barycentre(n), names.index(n)))
        offset = (len(order) - 1) / 2
        for i, name in enumerate(order):
            pos[name] = (float(d), offset - i)
    return pos


#: Index of the selected-layer ring in ``network_graph_figure``'s traces.
HIGHLIGHT_TRACE = 2


def network_graph_figure(layers: Sequence[Mapping[str, Any]], title: str = "",
                         selected: str | None = None, height: int = 300) -> go.Figure:
    """The network as a DAG, each layer coloured and sized by its share of the latency.

    ``layers``: dicts with ``name``, ``op``, ``preds`` (names), ``share`` (0..1),
    ``latency_s`` and optional ``shape``/``gemm`` strings for the hover text.
    """
    if not layers:
        return empty_figure("no layers to draw", title, height)
    pos = graph_positions(layers)
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for layer in layers:
        x1, y1 = pos[layer["name"]]
        for p in layer.get("preds", ()):
            if p in pos:
                x0, y0 = pos[p]
                edge_x += [x0, x1, None]
                edge_y += [y0, y1, None]
    share_pct = [100.0 * float(layer.get("share") or 0.0) for layer in layers]
    hover = [
        f"<b>{layer['name']}</b> ({layer.get('op', '?')})<br>"
        f"latency {fmt_ms(layer.get('latency_s'))} ({s:.1f}% of total)<br>"
        f"out {layer.get('shape', '')}" + (f"<br>GEMM {layer['gemm']}" if layer.get("gemm") else "")
        for layer, s in zip(layers, share_pct, strict=True)]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=edge_x, y=edge_y, mode="lines", hoverinfo="skip",
                               line={"color": "#bbb", "width": 1}, showlegend=False))
    fig.add_trace(go.Scatter(
        x=[pos[layer["name"]][0] for layer in layers],
        y=[pos[layer["name"]][1] for layer in layers],
        mode="markers", customdata=[layer["name"] for layer in layers],
        hovertext=hover, hoverinfo="text", showlegend=False,
        marker={"size": [7 + 28 * math.sqrt(s / 100.0) for s in share_pct],
                "color": share_pct, "colorscale": "YlOrRd", "cmin": 0,
                "cmax": max(max(share_pct), 1e-9), "line": {"width": 1, "color": "#444"},
                "colorbar": {"title": {"text": "latency<br>share (%)"}, "thickness": 12}}))
    # trace HIGHLIGHT_TRACE rings the selected layer; a callback moves it with a Patch
    ring = pos.get(selected or "")
    fig.add_trace(go.Scatter(x=[ring[0] if ring else None], y=[ring[1] if ring else None],
                             mode="markers", hoverinfo="skip", showlegend=False,
                             marker={"size": 26, "color": "rgba(0,0,0,0)",
                                     "line": {"width": 2.5, "color": "#1f77b4"}}))
    depth = max(x for x, _ in pos.values())
    fig.update_xaxes(title={"text": "depth (layers from the input) - click a layer to open it "
                                    "in the Layer lab"}, showgrid=False, zeroline=False,
                     tick0=0, dtick=max(1, math.ceil(depth / 12)))
    fig.update_yaxes(visible=False)
    return _base(fig, title, height)


# ------------------------------------------------------------------------------ layer lab


def sparsity_curves_figure(records: Sequence[Mapping[str, Any]], dense_latency_s: float | None,
                           title: str = "", height: int = 330) -> go.Figure:
    """Latency vs sparsity, one line per scheme family (kind + block size).

    ``records``: dicts with ``scheme`` (spec), ``sparsity`` (reached, 0..1), ``latency_s``
    and optional ``band_s`` (lo, hi).
    """
    families: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        if scheme_kind(str(r["scheme"])) == "dense":
            continue
        families.setdefault(scheme_family(str(r["scheme"])), []).append(r)
    if not families and dense_latency_s is None:
        return empty_figure("no legal scheme for this layer", title, height)
    fig = go.Figure()
    for fam, rows in sorted(families.items()):
        rows = sorted(rows, key=lambda r: float(r["sparsity"]))
        kind = fam.split(" ")[0]
        fig.add_trace(go.Scatter(
            x=[100 * float(r["sparsity"]) for r in rows],
            y=[1e3 * float(r["latency_s"]) for r in rows], mode="lines+markers", name=fam,
            text=[str(r["scheme"]) for r in rows],
            hovertemplate="%{text}<br>sparsity %{x:.1f}%<br>%{y:.3g} ms<extra></extra>",
            line={"color": SCHEME_COLOURS.get(kind), "dash": _dash_for(fam)},
            marker={"size": 6}))
    if dense_latency_s is not None:
        fig.add_hline(y=1e3 * dense_latency_s, line={"dash": "dot", "color": "#333"},
                      annotation_text=f"dense {fmt_ms(dense_latency_s)}",
                      annotation_position="top left")
    fig.update_xaxes(title={"text": "sparsity reached (% of weights removed)"})
    fig.update_yaxes(title={"text": "predicted latency (ms)"}, rangemode="tozero")
    return _base(fig, title, height)


def _dash_for(family: str) -> str:
    """Different block sizes of one kind get different dash styles."""
    if " " not in family:
        return "solid"
    styles = ("solid", "dash", "dashdot", "dot", "longdash", "longdashdot")
    block = family.split(" ", 1)[1]
    return styles[sum(map(ord, block)) % len(styles)]


def roofline_figure(points: Sequence[Mapping[str, Any]], peak_gflops: float | None,
                    bandwidth_gbs: float | None, title: str = "",
                    height: int = 330) -> go.Figure:
    """Roofline: attained GFLOP/s vs arithmetic intensity (FLOP per DRAM byte), log-log.

    ``points``: dicts with ``label``, ``flops``, ``bytes`` and ``latency_s`` (> 0);
    the roof is ``min(peak, bandwidth x intensity)``.
    """
    pts = [p for p in points if p.get("flops") and p.get("bytes") and p.get("latency_s")]
    if not pts:
        return empty_figure("no FLOP / byte counts for this layer", title, height)
    ai = np.array([float(p["flops"]) / float(p["bytes"]) for p in pts])
    perf = np.array([float(p["flops"]) / float(p["latency_s"]) / 1e9 for p in pts])
    fig = go.Figure()
    if peak_gflops and bandwidth_gbs:
        lo = min(float(ai.min()) / 4, peak_gflops / bandwidth_gbs / 10)
        hi = max(float(ai.max()) * 4, peak_gflops / bandwidth_gbs * 10)
        xs = np.geomspace(lo, hi, 200)
        fig.add_trace(go.Scatter(x=xs, y=np.minimum(peak_gflops, bandwidth_gbs * xs),
                                 mode="lines", name="roof", line={"color": "#333"},
                                 hovertemplate="roof %{y:.3g} GFLOP/s<extra></extra>"))
        ridge = peak_gflops / bandwidth_gbs
        fig.add_annotation(x=math.log10(ridge), y=math.log10(peak_gflops),
                           text=f"peak {peak_gflops:.3g} GFLOP/s, {bandwidth_gbs:.3g} GB/s",
                           showarrow=False, yshift=10, font={"size": 11})
    symbols = ("circle", "square", "diamond", "triangle-up", "triangle-down", "cross", "x",
               "pentagon", "hexagon", "star")
    seen: dict[str, int] = {}
    for p, x, y in zip(pts, ai, perf, strict=True):
        label = str(p["label"])
        kind = scheme_kind(label)
        n = seen[kind] = seen.get(kind, -1) + 1
        fig.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers", name=label,
            marker={"size": 10, "color": SCHEME_COLOURS.get(kind, "#000"),
                    "symbol": symbols[n % len(symbols)], "line": {"width": 1, "color": "#222"}},
            hovertemplate=f"{label}<br>%{{x:.3g}} FLOP/B<br>%{{y:.3g}} GFLOP/s<extra></extra>"))
    fig.update_xaxes(type="log", title={"text": "arithmetic intensity (useful FLOP / DRAM byte)"})
    fig.update_yaxes(type="log", title={"text": "attained (GFLOP/s)"})
    fig.update_layout(legend={"font": {"size": 10}, "tracegroupgap": 0})
    return _base(fig, title, height)


def breakdown_figure(records: Sequence[Mapping[str, Any]], title: str = "",
                     height: int = 330) -> go.Figure:
    """Stacked horizontal bars: compute, memory and overhead time per scheme (ms)."""
    if not records:
        return empty_figure("no estimates", title, height)
    labels = [str(r["scheme"]) for r in records]
    fig = go.Figure()
    for part in ("compute", "memory", "overhead"):
        fig.add_trace(go.Bar(
            y=labels, x=[1e3 * float(r.get(f"{part}_s") or 0.0) for r in records],
            name=part, orientation="h", marker={"color": BOUND_COLOURS[part]},
            hovertemplate=f"{part} %{{x:.3g}} ms<extra>%{{y}}</extra>"))
    totals = [1e3 * float(r["latency_s"]) for r in records]
    fig.add_trace(go.Scatter(y=labels, x=totals, mode="markers", name="predicted total",
                             marker={"symbol": "line-ns-open", "size": 14, "color": "#000",
                                     "line": {"width": 2}},
                             hovertemplate="total %{x:.3g} ms<extra>%{y}</extra>"))
    fig.update_layout(barmode="stack", legend={**TOP_LEGEND, "traceorder": "normal"})
    fig.update_xaxes(title={"text": "time (ms): analytical parts; | = predicted total"})
    fig.update_yaxes(autorange="reversed", automargin=True, tickfont={"size": 10},
                     title={"text": "scheme"})
    return _base(fig, title, height)


def packed_blocks(mask: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """The compact picture of a block-structured mask: each R x C block keeps its kept rows x
    kept columns as a dense rectangle in its top-left corner (what BCR stores), 0 elsewhere.

    Cells of the result: 1 = stored weight, 0 = nothing stored.
    """
    m = np.asarray(mask, dtype=bool)
    R, C = block
    out = np.zeros(m.shape, dtype=np.int8)
    for i in range(0, m.shape[0], R):
        for j in range(0, m.shape[1], C):
            sub = m[i:i + R, j:j + C]
            rows = int(sub.any(axis=1).sum())
            cols = int(sub.any(axis=0).sum())
            out[i:i + rows, j:j + cols] = 1
    return out


def mask_figure(picture: Mapping[str, Any] | None, title: str = "",
                height: int = 330) -> go.Figure:
    """The mask (kept weights dark), its compact format, and the stored bytes.

    ``picture``: ``mask`` (2-D 0/1, a top-left crop of the M x K weights), ``spec``,
    ``block`` ((R, C) or None), ``shape`` (the full M x K), ``sparsity`` (reached),
    ``format`` (name), ``format_bytes`` ({array: bytes}) and ``dense_bytes``.
    """
    if not picture or picture.get("mask") is None:
        reason = (picture or {}).get("message") or "no mask for this layer and scheme"
        return empty_figure(str(reason), title, height)
    mask = np.asarray(picture["mask"], dtype=np.int8)
    raw_block = picture.get("block")
    block = (int(raw_block[0]), int(raw_block[1])) if raw_block is not None else None
    has_pack = block is not None
    titles = [f"mask, top-left {mask.shape[0]}x{mask.shape[1]} (dark = kept)"]
    if block is not None:
        titles.append(f"stored: kept rows x cols per {block[0]}x{block[1]} block")
    titles.append("bytes")
    cols = len(titles)
    widths = [0.42, 0.42, 0.16] if has_pack else [0.75, 0.25]
    fig = make_subplots(rows=1, cols=cols, column_widths=widths, subplot_titles=titles,
                        horizontal_spacing=0.08)
    scale = [[0, "#f4f4f4"], [1, "#08306b"]]
    fig.add_trace(go.Heatmap(z=mask, colorscale=scale, showscale=False, zmin=0, zmax=1,
                             hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>"), 1, 1)
    if block is not None:
        packed = packed_blocks(mask, block)
        fig.add_trace(go.Heatmap(z=packed, colorscale=scale, showscale=False, zmin=0, zmax=1,
                                 hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>"), 1, 2)
        for c in (1, 2):
            _block_grid(fig, mask.shape, block, c)
    fig.update_yaxes(autorange="reversed", row=1, col=1, title={"text": "row of W"})
    if block is not None:  # the packed picture has the mask's rows
        fig.update_yaxes(autorange="reversed", matches="y", row=1, col=2)
    for c in range(1, cols):
        fig.update_xaxes(title={"text": "column of W"}, row=1, col=c)
    fmt_name = str(picture.get("format") or "compact").removesuffix("Format")
    fb = {str(k): float(v) for k, v in dict(picture.get("format_bytes") or {}).items()}
    dense_b = float(picture.get("dense_bytes") or 0.0)
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#17becf", "#bcbd22")
    for i, (name, nbytes) in enumerate(fb.items()):
        fig.add_trace(go.Bar(x=[fmt_name], y=[nbytes / 1e3], name=name,
                             marker={"color": palette[i % len(palette)]},
                             hovertemplate=f"{name}: %{{y:.4g}} kB<extra></extra>"), 1, cols)
    fig.add_trace(go.Bar(x=["dense"], y=[dense_b / 1e3], name="dense", marker={"color": "#999"},
                         hovertemplate="dense float32: %{y:.4g} kB<extra></extra>"), 1, cols)
    fig.update_yaxes(title={"text": "kB (whole layer)"}, row=1, col=cols)
    fig.update_xaxes(tickfont={"size": 10}, title={"text": "format"}, row=1, col=cols)
    fig.update_layout(showlegend=False, barmode="stack")
    shape = picture.get("shape", mask.shape)
    sp = picture.get("sparsity")
    head = (f"{picture.get('spec', '')} on {shape[0]}x{shape[1]} W"
            + (f": {100 * float(sp):.1f}% removed" if sp is not None else "")
            + (f", {sum(fb.values()) / 1e3:.3g} kB vs {dense_b / 1e3:.3g} kB dense" if fb
               else ""))
    _base(fig, f"{title} {head}".strip(), height)
    fig.update_annotations(font={"size": 11})
    return fig


def _block_grid(fig: go.Figure, shape: tuple[int, ...], block: tuple[int, int], col: int) -> None:
    rows, cols = shape[0], shape[1]
    R, C = block
    for i in range(R, rows, R):
        fig.add_shape(type="line", x0=-0.5, x1=cols - 0.5, y0=i - 0.5, y1=i - 0.5,
                      line={"color": "#e6550d", "width": 1}, row=1, col=col)
    for j in range(C, cols, C):
        fig.add_shape(type="line", x0=j - 0.5, x1=j - 0.5, y0=-0.5, y1=rows - 0.5,
                      line={"color": "#e6550d", "width": 1}, row=1, col=col)


# ------------------------------------------------------------------------------ search


def pareto_figure(points: Sequence[Mapping[str, Any]], chosen: Mapping[str, Any] | None = None,
                  dense_latency_s: float | None = None, selected: int | None = None,
                  target_latency_s: float | None = None, title: str = "",
                  height: int = 330) -> go.Figure:
    """Predicted latency (ms) vs predicted accuracy loss of the Pareto-optimal mappings.

    ``points``: dicts with ``latency_s`` and ``loss``; ``chosen`` the search's answer;
    ``selected`` the index of the point the user clicked. Points carry their index as
    ``customdata`` so a click can be traced back.
    """
    if not points and not chosen:
        return empty_figure("run a search to see the Pareto front", title, height)
    fig = go.Figure()
    if points:
        order = sorted(range(len(points)), key=lambda i: float(points[i]["latency_s"]))
        fig.add_trace(go.Scatter(
            x=[1e3 * float(points[i]["latency_s"]) for i in order],
            y=[float(points[i]["loss"]) for i in order], customdata=order,
            mode="lines+markers", name="Pareto front", line={"shape": "hv", "color": "#1f77b4"},
            marker={"size": 8},
            hovertemplate="%{x:.3g} ms, loss %{y:.3g}<br>click to see this mapping"
                          "<extra></extra>"))
    if chosen is not None:
        fig.add_trace(go.Scatter(x=[1e3 * float(chosen["latency_s"])],
                                 y=[float(chosen["loss"])], mode="markers",
                                 name="search answer",
                                 marker={"symbol": "star", "size": 16, "color": "#d62728"},
                                 hovertemplate="answer: %{x:.3g} ms, loss %{y:.3g}"
                                               "<extra></extra>"))
    if selected is not None and 0 <= selected < len(points):
        p = points[selected]
        fig.add_trace(go.Scatter(x=[1e3 * float(p["latency_s"])], y=[float(p["loss"])],
                                 mode="markers", name="selected",
                                 marker={"size": 18, "color": "rgba(0,0,0,0)",
                                         "line": {"width": 2.5, "color": "#2ca02c"}},
                                 hoverinfo="skip"))
    if dense_latency_s is not None:
        fig.add_trace(go.Scatter(x=[1e3 * dense_latency_s], y=[0.0], mode="markers",
                                 name="dense", marker={"symbol": "square", "size": 10,
                                                       "color": "#7f7f7f"},
                                 hovertemplate="dense: %{x:.3g} ms<extra></extra>"))
    if target_latency_s is not None:
        fig.add_vline(x=1e3 * target_latency_s, line={"dash": "dot", "color": "#d62728"},
                      annotation_text="latency target", annotation_position="bottom right")
    fig.update_xaxes(title={"text": "predicted latency (ms)"})
    fig.update_yaxes(title={"text": "predicted loss (proxy)"}, rangemode="tozero")
    fig.update_layout(legend=TOP_LEGEND, clickmode="event")
    return _base(fig, title, height)


def scheme_chart_figure(layers: Sequence[Mapping[str, Any]], title: str = "",
                        height: int = 330) -> go.Figure:
    """Per-layer latency, dense vs the mapping's scheme (grouped bars, coloured by kind).

    ``layers``: dicts with ``name``, ``scheme``, ``latency_s`` and ``dense_latency_s``.
    """
    if not layers:
        return empty_figure("no layers in this mapping", title, height)
    names = [str(r["name"]) for r in layers]
    specs = [str(r.get("scheme") or "dense") for r in layers]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=[_ms(r.get("dense_latency_s")) for r in layers],
                         name="dense baseline", marker={"color": "#dddddd"},
                         hovertemplate="%{x}: dense %{y:.3g} ms<extra></extra>"))
    kinds = [scheme_kind(s) for s in specs]
    for kind in dict.fromkeys(kinds):
        idx = [i for i, k in enumerate(kinds) if k == kind]
        fig.add_trace(go.Bar(
            x=[names[i] for i in idx], y=[_ms(layers[i].get("latency_s")) for i in idx],
            name=kind, marker={"color": SCHEME_COLOURS.get(kind, "#000")},
            text=[specs[i] for i in idx], textposition="none",
            hovertemplate="%{x}: %{text}<br>%{y:.3g} ms<extra></extra>"))
    fig.update_layout(barmode="group", bargap=0.15, bargroupgap=0.0,
                      legend=TOP_LEGEND)
    fig.update_xaxes(tickangle=-50, automargin=True, categoryorder="array", categoryarray=names,
                     tickfont={"size": 9}, title={"text": "layer (network order)"})
    fig.update_yaxes(title={"text": "predicted latency (ms)"})
    return _base(fig, title, height)


# ------------------------------------------------------------------------------ devices


def device_compare_figure(rows: Sequence[Mapping[str, Any]], network: str = "",
                          height: int = 330) -> go.Figure:
    """Predicted latency of one network on every device (bars with the error band).

    ``rows``: dicts with ``device``, ``latency_s`` and optional ``band_s`` (lo, hi) or
    ``error`` (why there is no estimate).
    """
    ok = [r for r in rows if r.get("latency_s")]
    if not ok:
        return empty_figure("no device estimates", f"{network} on each device", height)
    ok = sorted(ok, key=lambda r: float(r["latency_s"]))
    y = [1e3 * float(r["latency_s"]) for r in ok]
    lo = [1e3 * float(r["band_s"][0]) if r.get("band_s") else v for r, v in zip(ok, y, strict=True)]
    hi = [1e3 * float(r["band_s"][1]) if r.get("band_s") else v for r, v in zip(ok, y, strict=True)]
    fig = go.Figure(go.Bar(
        x=[str(r["device"]) for r in ok], y=y, marker={"color": "#1f77b4"},
        error_y={"type": "data", "symmetric": False,
                 "array": [h - v for h, v in zip(hi, y, strict=True)],
                 "arrayminus": [v - low for v, low in zip(y, lo, strict=True)]},
        customdata=[[low, h] for low, h in zip(lo, hi, strict=True)],
        hovertemplate="%{x}: %{y:.3g} ms (band %{customdata[0]:.3g}-%{customdata[1]:.3g} ms)"
                      "<extra></extra>"))
    fig.update_yaxes(title={"text": "predicted latency (ms)"}, rangemode="tozero")
    fig.update_xaxes(title={"text": "device profile"})
    return _base(fig, f"{network} on each device (whiskers: error band)", height)


def device_peaks_figure(rows: Sequence[Mapping[str, Any]], height: int = 330) -> go.Figure:
    """Each device's CPU peak fp32 GFLOP/s vs its DRAM bandwidth (the two roofline numbers)."""
    ok = [r for r in rows if r.get("peak_gflops") and r.get("bandwidth_gbs")]
    if not ok:
        return empty_figure("no device facts", "peak compute vs bandwidth", height)
    ok = sorted(ok, key=lambda r: (float(r["bandwidth_gbs"]), float(r["peak_gflops"])))
    # neighbours alternate above/below so close devices keep readable labels
    where = ["top center" if i % 2 == 0 else "bottom center" for i in range(len(ok))]
    fig = go.Figure(go.Scatter(
        x=[float(r["bandwidth_gbs"]) for r in ok], y=[float(r["peak_gflops"]) for r in ok],
        mode="markers+text", text=[str(r["device"]) for r in ok], textposition=where,
        cliponaxis=False,
        marker={"size": 11, "color": "#2ca02c"},
        hovertemplate="%{text}<br>%{x:.3g} GB/s<br>%{y:.3g} GFLOP/s<extra></extra>"))
    fig.update_xaxes(title={"text": "DRAM bandwidth (GB/s)"},
                     range=[0, 1.15 * max(float(r["bandwidth_gbs"]) for r in ok)])
    fig.update_yaxes(title={"text": "peak fp32 (GFLOP/s)"}, rangemode="tozero")
    return _base(fig, "peak compute at these threads vs DRAM bandwidth", height)


def fidelity_scatter_figure(points: Sequence[Mapping[str, Any]], title: str = "",
                            height: int = 330) -> go.Figure:
    """Predicted vs measured latency (ms, log-log) with the y = x line and a +-10% band.

    ``points``: dicts with ``predicted_s``, ``measured_s`` and optional ``label``.
    """
    pts = [p for p in points if p.get("predicted_s") and p.get("measured_s")]
    if not pts:
        return empty_figure("no calibration yet for this device: run `grimsim calibrate` and "
                            "`grimsim fit`", title, height)
    meas = np.array([1e3 * float(p["measured_s"]) for p in pts])
    pred = np.array([1e3 * float(p["predicted_s"]) for p in pts])
    lo = float(min(meas.min(), pred.min())) / 1.5
    hi = float(max(meas.max(), pred.max())) * 1.5
    xs = np.geomspace(lo, hi, 50)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=xs, mode="lines", name="predicted = measured",
                             line={"color": "#333"}))
    for f, name in ((1.1, "+10%"), (0.9, "-10%")):
        fig.add_trace(go.Scatter(x=xs, y=xs * f, mode="lines", name=name, showlegend=False,
                                 line={"color": "#999", "dash": "dot"}, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=meas, y=pred, mode="markers", name="rows",
                               text=[str(p.get("label", "")) for p in pts],
                               marker={"size": 5, "color": "#1f77b4", "opacity": 0.7},
                               hovertemplate="%{text}<br>measured %{x:.3g} ms<br>"
                                             "predicted %{y:.3g} ms<extra></extra>"))
    fig.update_xaxes(type="log", title={"text": "measured latency (ms)"})
    fig.update_yaxes(type="log", title={"text": "predicted latency (ms)"})
    fig.update_layout(legend=TOP_LEGEND)
    return _base(fig, title, height)


def error_histogram_figure(points: Sequence[Mapping[str, Any]], title: str = "",
                           height: int = 330) -> go.Figure:
    """Histogram of the relative error (predicted / measured - 1, in %)."""
    pts = [p for p in points if p.get("predicted_s") and p.get("measured_s")]
    if not pts:
        return empty_figure("no calibration yet for this device", title, height)
    err = np.array([100.0 * (float(p["predicted_s"]) / float(p["measured_s"]) - 1.0)
                    for p in pts])
    within = float(np.mean(np.abs(err) <= 10.0)) * 100
    fig = go.Figure(go.Histogram(x=err, nbinsx=40, marker={"color": "#1f77b4"},
                                 hovertemplate="%{x} %: %{y} rows<extra></extra>"))
    fig.add_vrect(x0=-10, x1=10, fillcolor="#2ca02c", opacity=0.12, line_width=0)
    fig.update_xaxes(title={"text": "prediction error (% of measured)"})
    fig.update_yaxes(title={"text": "rows (count)"})
    full = f"{title} - {within:.0f}% of {len(pts)} rows within +-10%".strip(" -")
    return _base(fig, full, height)


def ncnn_reference_figure(points: Sequence[Mapping[str, Any]], network: str, threads: int,
                          prediction_s: float | None = None, device: str = "",
                          soc_tokens: Sequence[str] = (), height: int = 330) -> go.Figure:
    """ncnn's published CPU fp32 timings of ``network`` at ``threads`` threads on every device
    benchmarked, fastest first (filled: measured; hollow: a prediction when the points carry
    one), with grimsim's prediction for ``device`` as a line. Devices whose benchmark heading
    names one of ``soc_tokens`` (e.g. ``SM8150``) are drawn in red.

    ``points``: dicts with ``device``, ``network`` (zoo name), ``threads``, ``measured_s``
    and optional ``predicted_s``.
    """
    rows = [p for p in points if p.get("network") == network and p.get("measured_s")]
    title = f"ncnn benchncnn, CPU fp32: {network}"
    if not rows:
        nets = sorted({str(p.get("network")) for p in points if p.get("network")})
        why = ("ncnn reference data not available" if not points else
               f"ncnn has no benchmark of {network}; it has {', '.join(nets)}")
        return empty_figure(why, title, height)
    have = sorted({int(p["threads"]) for p in rows if p.get("threads")})
    t = threads if threads in have else min(have, key=lambda x: (abs(x - threads), x))
    rows = sorted([p for p in rows if p.get("threads") == t],
                  key=lambda p: float(p["measured_s"]))
    rank = list(range(1, len(rows) + 1))
    tokens = [tok.lower() for tok in soc_tokens if tok]
    hit = [any(tok in str(p["device"]).lower() for tok in tokens) for p in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=rank, y=[1e3 * float(p["measured_s"]) for p in rows], mode="markers",
        name="ncnn measured", text=[str(p["device"]) for p in rows],
        marker={"size": [11 if h else 7 for h in hit],
                "color": ["#d62728" if h else "#1f77b4" for h in hit]},
        hovertemplate="%{text}<br>measured %{y:.3g} ms<extra></extra>"))
    pred = [(r, p) for r, p in zip(rank, rows, strict=True) if p.get("predicted_s")]
    if pred:
        fig.add_trace(go.Scatter(
            x=[r for r, _ in pred], y=[1e3 * float(p["predicted_s"]) for _, p in pred],
            mode="markers", name="grimsim predicted (ncnn device fit)",
            text=[str(p["device"]) for _, p in pred],
            marker={"size": 8, "symbol": "circle-open", "color": "#2ca02c"},
            hovertemplate="%{text}<br>predicted %{y:.3g} ms<extra></extra>"))
    if prediction_s:
        # a trace, not add_hline: hline annotations misplace on log axes
        fig.add_trace(go.Scatter(x=[0.5, len(rows) + 0.5], y=[1e3 * prediction_s] * 2,
                                 mode="lines", line={"dash": "dot", "color": "#d62728"},
                                 name=f"grimsim: {device} predicted {fmt_ms(prediction_s)}",
                                 hoverinfo="name"))
    if any(hit):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"same SoC as {device}",
                                 marker={"size": 11, "color": "#d62728"}))
    fig.update_xaxes(title={"text": f"device benchmarked by ncnn, fastest first "
                                    f"({len(rows)} devices; hover for the name)"})
    fig.update_yaxes(type="log", title={"text": "latency (ms)"})
    fig.update_layout(legend=TOP_LEGEND)
    return _base(fig, f"{title}, {t} thread(s)", height)
