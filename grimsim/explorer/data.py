"""The explorer's only door to grimsim: calls ``grimsim.api`` and turns the answers into plain
rows (dicts of numbers and strings) for the figure builders and the browser.

State: a ``Queries`` object (one per app) memoises pure results - a loaded zoo network, a
device profile, the estimate of (network, device, unit, threads) - in small bounded LRU caches
shared by every session. Nothing here depends on who asks: a session's choices live in its
browser, and an uploaded model is cached under a token derived from its content, which only
the uploader's page knows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import json
import logging
import math
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from grimsim import api
from grimsim.errors import GrimsimError
from grimsim.meta import run_meta

log = logging.getLogger(__name__)

#: Largest model file the page accepts (an ONNX file of a mobile network with its weights is
#: a few MB to ~15 MB; ResNet-18's float32 weights alone are 45 MB, so those are refused).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
UPLOAD_PREFIX = "upload:"
UPLOAD_SUFFIXES = (".onnx", ".param")
#: Rates of the layer lab's curves (fraction removed): the search's candidate rates.
LAB_RATES = (0.5, 0.67, 0.75, 0.8, 0.875, 0.9, 0.9375)
#: BCR block sizes offered in the layer lab (rows x columns); GRIM studies 4x4 upwards.
LAB_BLOCKS = ("4x4", "4x16", "8x16", "16x32", "32x32")
#: Layout version of a saved result file (a session's result store).
RESULT_FORMAT = "grimsim.explorer_result/1"
LAB_DEFAULT_BLOCKS = ("4x16", "8x16", "16x32")
LAB_DEFAULT_RATE = 0.75
#: Mask picture crop (rows x columns of W drawn).
MASK_CROP = (64, 128)

#: ncnn's model names whose zoo twin is named differently (benchncnn's models/*.param).
NCNN_ZOO_NAMES = {"mobilenet": "mobilenet_v1", "squeezenet": "squeezenet1_1"}

T = TypeVar("T")


class ExplorerError(GrimsimError):
    """Something the page asked for cannot be done (bad upload, lost upload, bad input)."""


def field(obj: Any, key: str, default: Any = None) -> Any:
    """``obj.key`` or ``obj[key]``: API values are dataclasses, their ``to_dict`` dicts."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def shape_text(shape: Sequence[int] | None) -> str:
    return "x".join(str(d) for d in shape) if shape else ""


class LRU:
    """A small thread-safe LRU memo. Values are computed outside the lock; a thread asking for
    a key another thread is computing waits for that answer instead of computing it again (on
    two cores, the start-up warm-up and the first page request would otherwise each pay for
    the default view)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def get_or(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            busy = self._computing.setdefault(key, threading.Lock())
        with busy:  # one thread computes a key; the others wait here, then find it
            with self._lock:
                if key in self._data:
                    self._data.move_to_end(key)
                    return self._data[key]
            try:
                value = make()
                self.put(key, value)
            finally:
                with self._lock:
                    self._computing.pop(key, None)
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data


def api_function(name: str) -> Callable[..., Any]:
    """``grimsim.api.<name>``, or a clear error when this grimsim does not have it."""
    fn = getattr(api, name, None)
    if fn is None:
        raise ExplorerError(f"this grimsim has no grimsim.api.{name}; update grimsim")
    return fn


def safe_stem(filename: str) -> str:
    """A file stem safe inside a temp folder (no separators, no dots at the front)."""
    stem = Path(filename.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:64]
    return stem or "model"


def decode_upload(contents: str, filename: str, max_bytes: int = MAX_UPLOAD_BYTES
                  ) -> tuple[bytes, str]:
    """The bytes and suffix of a ``dcc.Upload`` data URL, checked (type and size)."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ExplorerError(f"{filename!r}: upload an ONNX model (.onnx) or an ncnn structure "
                            "file (.param)")
    if not isinstance(contents, str) or "," not in contents:
        raise ExplorerError(f"{filename!r}: the upload arrived empty or garbled; try again")
    payload = contents.split(",", 1)[1]
    if len(payload) > (max_bytes + 2) * 4 // 3 + 4:
        raise ExplorerError(f"{filename!r} is larger than the {max_bytes // 2**20} MB limit")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ExplorerError(f"{filename!r}: the upload is not valid base64; try again") from None
    if len(data) > max_bytes:
        raise ExplorerError(f"{filename!r} is larger than the {max_bytes // 2**20} MB limit")
    if not data:
        raise ExplorerError(f"{filename!r} is empty")
    return data, suffix


def _lab_specs(kind_blocks: Sequence[str]) -> list[str]:
    specs = ["dense"]
    specs += [f"unstructured:{r:g}" for r in LAB_RATES]
    for block in kind_blocks:
        specs += [f"bcr:{block}:{r:g}" for r in LAB_RATES]
    specs += ["nm:2:4", "nm:1:4", "nm:1:8", "pattern:4"]
    specs += [f"pattern:4:{r:g}" for r in LAB_RATES if r > 0.56]
    specs += [f"filter:{r:g}" for r in LAB_RATES]
    specs += [f"column:{r:g}" for r in LAB_RATES]
    return specs


def mask_spec_options(blocks: Sequence[str] | None, rate: float | None, current: str | None
                      ) -> tuple[list[dict[str, str]], str]:
    """The schemes the mask picture offers at ``rate`` (the current one kept if offered)."""
    r = float(rate or LAB_DEFAULT_RATE)
    specs = [f"bcr:{b}:{r:g}" for b in (blocks or [])]
    specs += [f"block_punched:4x4:{r:g}", f"unstructured:{r:g}", "nm:2:4", "pattern:4",
              f"filter:{r:g}", f"column:{r:g}"]
    value = current if current in specs else specs[0]
    return [{"label": s, "value": s} for s in specs], value


class Queries:
    """Memoised API calls, and the conversions to plain rows."""

    def __init__(self, max_networks: int = 32, max_views: int = 128,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.max_upload_bytes = max_upload_bytes
        self._networks = LRU(max_networks)
        self._devices = LRU(16)
        self._views = LRU(max_views)

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """A value derived from these queries (e.g. a page's embedded view), memoised beside
        them; ``key`` must name everything the value depends on."""
        return self._views.get_or(key, make)

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def zoo_names() -> list[str]:
        return list(api.zoo_names())

    @staticmethod
    def device_names() -> list[str]:
        return list(api.device_names())

    def network(self, model: str) -> Any:
        """A zoo network by name, or an uploaded one by its ``upload:<token>`` value."""
        if model.startswith(UPLOAD_PREFIX):
            net = self._networks.get(model)
            if net is None:
                raise ExplorerError("the uploaded model is no longer in this server's memory "
                                    "(the server restarted or many models were uploaded since); "
                                    "upload it again")
            return net
        return self._networks.get_or(model, lambda: api.load_network(model))

    def device(self, name: str) -> Any:
        return self._devices.get_or(name, lambda: api.load_device(name))

    def add_upload(self, contents: str, filename: str, input_shape: str | None = None
                   ) -> tuple[str, str]:
        """Parse an uploaded model; returns its dropdown value and label.

        The bytes are written only inside a private temporary folder that is removed before
        returning; the file is parsed by grimsim's importers (never executed or unpickled).
        """
        data, suffix = decode_upload(contents, filename, self.max_upload_bytes)
        shape = (input_shape or "").strip() or None
        digest = hashlib.sha256(data + b"\0" + (shape or "").encode()).hexdigest()[:20]
        value = f"{UPLOAD_PREFIX}{digest}"
        label = f"{Path(filename).name} (uploaded)"
        if value in self._networks:
            return value, label
        with tempfile.TemporaryDirectory(prefix="grimsim-upload-") as tmp:
            path = Path(tmp) / f"{safe_stem(filename)}{suffix}"
            path.write_bytes(data)
            try:
                net = api.load_network(path, input_shape=shape)
            except GrimsimError as exc:
                raise ExplorerError(str(exc).replace(str(path), Path(filename).name)
                                    .replace(tmp, "")) from None
            except Exception as exc:  # an importer bug must not take the page down
                log.exception("importer failed on an uploaded %s", suffix)
                raise ExplorerError(f"{Path(filename).name}: could not be read "
                                    f"({type(exc).__name__}: {exc})") from None
        self._networks.put(value, net)
        return value, label

    # ------------------------------------------------------------------ network view
    def network_view(self, model: str, device: str, unit: str, threads: int) -> dict[str, Any]:
        key = ("view", model, device, unit, int(threads))
        return self._views.get_or(key, lambda: self._network_view(model, device, unit, threads))

    def _network_view(self, model: str, device: str, unit: str, threads: int) -> dict[str, Any]:
        net = self.network(model)
        dev = self.device(device)
        est = api.estimate(net, dev, threads=int(threads), unit=unit)
        return network_rows(net, est, device=str(field(dev, "id", device)), unit=unit,
                            threads=int(threads))

    # ------------------------------------------------------------------ layer lab
    def layer_lab(self, model: str, device: str, unit: str, threads: int, layer: str,
                  blocks: Sequence[str]) -> dict[str, Any]:
        key = ("lab", model, device, unit, int(threads), layer, tuple(sorted(blocks)))
        return self._views.get_or(
            key, lambda: self._layer_lab(model, device, unit, threads, layer, blocks))

    def _layer_lab(self, model: str, device: str, unit: str, threads: int, layer: str,
                   blocks: Sequence[str]) -> dict[str, Any]:
        net = self.network(model)
        dev = self.device(device)
        wl = net.layer(layer)
        specs = _lab_specs(blocks)
        # a mapping layer -> schemes: only this layer gets candidates (illegal ones skipped)
        schemes: Any = {layer: specs}
        table = api.cost_table(net, dev, schemes, threads=int(threads), unit=unit)
        records = layer_records(table.records(), layer)
        dense = next((r for r in records if r["scheme"] == "dense"), None)
        return {
            "layer": layer, "op": wl.op,
            "gemms": [{"name": g.name, "M": g.M, "K": g.K, "N": g.N, "groups": g.groups,
                       "kernel": list(g.kernel) if g.kernel else None}
                      for g in wl.gemms if g.prunable],
            "records": records,
            "dense_latency_s": dense["latency_s"] if dense else None,
            "peak_gflops": device_peak_gflops(dev, unit, int(threads)),
            "bandwidth_gbs": device_bandwidth_gbs(dev),
        }

    def mask_picture(self, model: str, layer: str, spec: str, seed: int = 0) -> dict[str, Any]:
        """The mask of ``spec`` on random weights of the layer's first prunable GEMM."""
        key = ("mask", model, layer, spec, seed)
        return self._views.get_or(key, lambda: self._mask_picture(model, layer, spec, seed))

    def _mask_picture(self, model: str, layer: str, spec: str, seed: int) -> dict[str, Any]:
        make = getattr(api, "mask_picture", None)
        if make is None:
            # TODO(lead): grimsim.api.mask_picture (see the explorer's report)
            return {"mask": None, "message": "mask picture needs grimsim.api.mask_picture"}
        wl = self.network(model).layer(layer)
        gemm = next((g for g in wl.gemms if g.prunable), None)
        if gemm is None:
            return {"mask": None, "message": f"{layer} has no prunable weights"}
        try:
            pic = make((gemm.M // gemm.groups, gemm.K), spec, seed=seed, kernel=gemm.kernel,
                       crop=MASK_CROP)
        except GrimsimError as exc:
            return {"mask": None, "message": str(exc)}
        return {**dict(pic), "spec": spec}

    # ------------------------------------------------------------------ devices
    def device_rows(self, model: str, unit: str, threads: int) -> list[dict[str, Any]]:
        key = ("devices", model, unit, int(threads))
        return self._views.get_or(key, lambda: self._device_rows(model, unit, threads))

    def _device_rows(self, model: str, unit: str, threads: int) -> list[dict[str, Any]]:
        net = self.network(model)
        rows = []
        for name in self.device_names():
            if name == "host":
                continue  # measuring this machine takes seconds; it has its own choice
            row: dict[str, Any] = {"device": name}
            try:
                dev = self.device(name)
                row.update(device_facts(dev, unit, int(threads)))
                est = api.estimate(net, dev, threads=int(threads), unit=unit)
                row["latency_s"] = _num(field(est, "latency_s"))
                band = field(est, "band_s")
                row["band_s"] = [float(band[0]), float(band[1])] if band else None
            except GrimsimError as exc:
                row["error"] = str(exc)
            rows.append(row)
        return rows

    def fidelity(self, device: str) -> list[dict[str, Any]]:
        fn = getattr(api, "fidelity_points", None)
        if fn is None:
            return []
        try:
            points = fn(self.device(device))
        except GrimsimError as exc:
            log.info("no fidelity points for %s: %s", device, exc)
            return []
        out = []
        for p in points or ():
            pred, meas = _num(field(p, "predicted_s")), _num(field(p, "measured_s"))
            if pred and meas:
                out.append({"predicted_s": pred, "measured_s": meas,
                            "label": str(field(p, "label", "") or "")})
        return out

    def ncnn_points(self) -> list[dict[str, Any]]:
        return self._views.get_or(("ncnn",), self._ncnn_points)

    @staticmethod
    def _ncnn_points() -> list[dict[str, Any]]:
        fn = getattr(api, "ncnn_reference_points", None)
        if fn is None:
            return []
        try:
            points = fn()
        except GrimsimError as exc:
            log.info("ncnn reference points unavailable: %s", exc)
            return []
        out = []
        for p in points or ():
            meas = _num(field(p, "measured_s"))
            if meas is None and _num(field(p, "min_ms")) is not None:
                meas = float(field(p, "min_ms")) / 1e3
            if not meas:
                continue
            model = str(field(p, "model", ""))
            out.append({"device": str(field(p, "device", "")), "model": model,
                        "network": str(field(p, "network", None) or field(p, "zoo", None)
                                       or NCNN_ZOO_NAMES.get(model, model)),
                        "threads": field(p, "threads"), "measured_s": meas,
                        "predicted_s": _num(field(p, "predicted_s"))})
        return out

    # ------------------------------------------------------------------ search
    def run_search(self, model: str, device: str, unit: str, threads: int, mode: str,
                   target: float | None, progress: Callable[[float, str], None] | None = None
                   ) -> dict[str, Any]:
        """Run a search; returns the session's result store (plain JSON)."""
        net = self.network(model)
        dev = self.device(device)
        kwargs: dict[str, Any] = {"threads": int(threads), "unit": unit}
        if mode == "latency":
            if target is None or not target > 0:
                raise ExplorerError("give a latency target in ms (a number > 0)")
            kwargs["latency_ms"] = float(target)
        elif mode == "loss":
            if target is None or not target >= 0:
                raise ExplorerError("give a loss budget (a number >= 0)")
            kwargs["max_loss"] = float(target)
        else:
            kwargs["pareto"] = True
        search = api_function("search")
        report = progress or (lambda fraction, message: None)
        if "progress" in inspect.signature(search).parameters:
            kwargs["progress"] = report
        else:  # no finer progress from this grimsim: say what is running
            report(0.05, "estimating every candidate and solving")
        result = search(net, dev, **kwargs)
        report(0.95, "dense reference")
        dense = self.network_view(model, device, unit, threads)
        return {
            "model": model, "network": net.name, "device": str(field(dev, "id", device)),
            "device_name": device, "unit": unit, "threads": int(threads), "mode": mode,
            "target": target, "result": json.loads(result.to_json()),
            "dense_layers": {r["name"]: r["latency_s"] for r in dense["layers"]},
        }

    def point_latencies(self, store: Mapping[str, Any], point: int) -> dict[str, float]:
        """Per-layer latency of Pareto point ``point`` of a result (an estimate of its
        mapping; the result stores only the point's totals)."""
        res = store["result"]
        schemes = res["pareto"][point]["schemes"]
        mapping = {c["name"]: s for c, s in zip(res["layers"], schemes, strict=True)}
        key = ("point", store["model"], store.get("device_name") or store["device"],
               store["unit"], int(store["threads"]), tuple(sorted(mapping.items())))

        def make() -> dict[str, float]:
            net = self.network(str(store["model"]))
            dev = self.device(str(store.get("device_name") or store["device"]))
            est = api.estimate(net, dev, mapping, threads=int(store["threads"]),
                               unit=str(store["unit"]))
            view = network_rows(net, est, device="", unit="", threads=0)
            return {n["name"]: n["latency_s"] for n in view["layers"]}

        return self._views.get_or(key, make)

    def mapping_download(self, store: Mapping[str, Any], point: int | None) -> dict[str, Any]:
        """The DESIGN.md mapping file of the result (or of its Pareto point ``point``)."""
        res = dict(store["result"])
        if point is not None:
            # the point's schemes in the result's layer order make the mapping of that point
            schemes = res["pareto"][point]["schemes"]
            res["layers"] = [{**c, "scheme": s} for c, s in zip(res["layers"], schemes,
                                                                 strict=True)]
        result = api_function("search_result_from_json")(json.dumps(res))
        net = self.network(str(store["model"]))
        dev = self.device(str(store.get("device_name") or store["device"]))
        make = getattr(api, "mapping_file", None)
        if make is not None:
            return dict(make(result, net, dev))
        return dict(result.to_mapping_file(net.name, {"device": str(field(dev, "id", ""))}))


# ---------------------------------------------------------------------- conversions


def _layer_of(row_name: str, names: set[str]) -> str | None:
    """The graph layer an estimate row belongs to: itself, else the longest layer name that
    prefixes it (``gru1.update.ih`` -> ``gru1``)."""
    if row_name in names:
        return row_name
    best = None
    for n in names:
        if row_name.startswith(n + ".") and (best is None or len(n) > len(best)):
            best = n
    return best


def network_rows(net: Any, est: Any, *, device: str, unit: str, threads: int) -> dict[str, Any]:
    """One network estimate as plain rows: ``layers`` (graph nodes with their latency share)
    and ``table`` (the estimate's rows with shapes, GEMM view, MACs, latency, bound)."""
    layers = net.layers()
    names = {wl.name for wl in layers}
    total = _num(field(est, "latency_s")) or 0.0
    per_layer: dict[str, float] = {}
    table = []
    for r in field(est, "layers", ()) or ():
        name = str(field(r, "name"))
        lat = _num(field(r, "latency_s")) or 0.0
        owner = _layer_of(name, names)
        if owner is not None:
            per_layer[owner] = per_layer.get(owner, 0.0) + lat
        wl = net.layer(owner) if owner is not None else None
        M, K, N = field(r, "M"), field(r, "K"), field(r, "N")
        band = field(r, "band_s")
        table.append({
            "name": name, "op": str(field(r, "op", wl.op if wl else "")),
            "in_shape": shape_text(wl.input_shapes[0]) if wl and wl.input_shapes else "",
            "out_shape": shape_text(wl.output_shapes[0]) if wl and wl.output_shapes else "",
            "gemm": (f"{M}x{K}x{N}" if M else
                     f"{len(wl.gemms)} GEMMs" if wl is not None and wl.gemms else ""),
            "mmacs": round((_num(field(r, "macs")) or 0.0) / 1e6, 3),
            "latency_ms": round(lat * 1e3, 4),
            "share_pct": round(100 * lat / total, 2) if total > 0 else 0.0,
            "band_ms": (f"{1e3 * float(band[0]):.3g}-{1e3 * float(band[1]):.3g}"
                        if band else ""),
            "bound": str(field(r, "bound", "") or ""),
            "kernel": str(field(r, "kernel", "") or ""),
            "scheme": str(field(r, "scheme", "dense") or "dense"),
        })
    nodes = []
    for wl in layers:
        lat = per_layer.get(wl.name, 0.0)
        g = next(iter(wl.gemms), None)
        nodes.append({
            "name": wl.name, "op": wl.op, "preds": list(net.predecessors(wl.name)),
            "latency_s": lat, "share": lat / total if total > 0 else 0.0,
            "shape": shape_text(wl.output_shapes[0]) if wl.output_shapes else "",
            "gemm": f"{g.M}x{g.K}x{g.N}" if g else "",
            "prunable": any(gg.prunable for gg in wl.gemms),
        })
    band = field(est, "band_s")
    totals = net.totals
    return {
        "network": net.name, "device": device, "unit": unit, "threads": threads,
        "latency_s": total, "band_s": [float(band[0]), float(band[1])] if band else None,
        "provenance": str(field(est, "provenance", "") or ""),
        "model_bytes": _num(field(est, "model_bytes")),
        "macs": int(totals.macs), "params": int(totals.params),
        "layers": nodes, "table": table,
        "skipped": [str(s) for s in field(est, "skipped", ()) or ()],
    }


def layer_records(records: Sequence[Mapping[str, Any]], layer: str) -> list[dict[str, Any]]:
    """The cost-table rows of one layer, summed over its GEMMs, one per scheme."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if str(r.get("layer")) != layer:
            continue
        spec = str(r["scheme"])
        acc = out.setdefault(spec, {"scheme": spec, "sparsity": 0.0, "latency_s": 0.0,
                                    "compute_s": 0.0, "memory_s": 0.0, "overhead_s": 0.0,
                                    "flops": 0.0, "bytes": 0.0, "format_bytes": 0.0,
                                    "bound": r.get("bound"), "kernel": r.get("kernel"),
                                    "_w": 0.0})
        for k in ("latency_s", "compute_s", "memory_s", "overhead_s", "flops", "bytes",
                  "format_bytes"):
            acc[k] += _num(r.get(k)) or 0.0
        # the layer's sparsity: the GEMMs' sparsities weighted by their weight counts
        w = float((_num(r.get("M")) or 1.0) * (_num(r.get("K")) or 1.0))
        acc["sparsity"] += w * (_num(r.get("sparsity")) or 0.0)
        acc["_w"] += w
    rows = []
    for acc in out.values():
        acc["sparsity"] = acc["sparsity"] / acc.pop("_w") if acc["_w"] else 0.0
        rows.append(acc)
    return rows


def device_peak_gflops(dev: Any, unit: str, threads: int) -> float | None:
    if unit == "gpu":
        gpu = field(dev, "gpu")
        return _num(field(gpu, "fp32_gflops")) if gpu is not None else None
    fn = getattr(dev, "peak_fp32_gflops", None)
    return _num(fn(threads)) if callable(fn) else None


def device_bandwidth_gbs(dev: Any) -> float | None:
    return _num(field(field(dev, "dram"), "effective_bandwidth_gbs"))


def soc_tokens(dev: Any) -> list[str]:
    """Part numbers in a profile's SoC name (``SM8150``, ``RK3588``): how a public benchmark
    heading names the same chip."""
    text = f"{field(dev, 'soc', '')} {field(dev, 'description', '')}"
    return sorted({t for t in re.findall(r"[A-Za-z0-9]+", text)
                   if len(t) >= 4 and any(ch.isdigit() for ch in t)})


def device_facts(dev: Any, unit: str, threads: int) -> dict[str, Any]:
    """A profile's headline numbers for the comparison table."""
    clusters = field(dev, "clusters", ()) or ()
    gpu = field(dev, "gpu")
    return {
        "id": str(field(dev, "id", "")),
        "soc": str(field(dev, "soc", "")),
        "cpu": ", ".join(f"{field(c, 'count')}x {field(c, 'core')} @ "
                         f"{field(c, 'max_clock_ghz')} GHz" for c in clusters),
        "peak_gflops": device_peak_gflops(dev, unit, threads),
        "bandwidth_gbs": device_bandwidth_gbs(dev),
        "gpu": str(field(gpu, "name", "")) if gpu is not None else "none",
        "calibrated": "yes" if field(dev, "calibration") is not None else "no",
    }


def saved_result(store: Mapping[str, Any]) -> dict[str, Any]:
    """A session's result store as the file "Download result JSON" writes (and the Search
    tab reopens from a results folder)."""
    body = {k: v for k, v in store.items() if k not in ("format", "_meta")}
    meta = run_meta(network=store.get("network"), device=store.get("device"),
                    unit=store.get("unit"), threads=store.get("threads"))
    return {"format": RESULT_FORMAT, **body, "_meta": meta}


def search_view(store: Mapping[str, Any], point: int | None = None,
                point_latency_s: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The mapping to draw: the search's answer, or Pareto point ``point`` of it (whose
    per-layer latencies ``point_latency_s`` come from an estimate of that mapping)."""
    res = store["result"]
    dense_layers: Mapping[str, float] = store.get("dense_layers") or {}
    layers = [{"name": c["name"], "scheme": c["scheme"], "latency_s": c["latency_s"],
               "loss": c["loss"], "dense_latency_s": dense_layers.get(c["name"])}
              for c in res["layers"]]
    latency_s, loss = float(res["latency_s"]), float(res["loss"])
    model_bytes = _num(res.get("model_bytes"))
    pareto = res.get("pareto") or []
    chosen = point if point is not None and 0 <= point < len(pareto) else None
    if chosen is not None:
        p = pareto[chosen]
        lat = point_latency_s or {}
        for row, spec in zip(layers, p["schemes"], strict=True):
            row.update(scheme=spec, latency_s=lat.get(row["name"]), loss=None)
        latency_s, loss = float(p["latency_s"]), float(p["loss"])
        model_bytes = _num(p.get("model_bytes"))
    dense_s = float(res["dense_latency_s"])
    return {"layers": layers, "latency_s": latency_s, "loss": loss, "model_bytes": model_bytes,
            "dense_latency_s": dense_s, "dense_model_bytes": _num(res.get("dense_model_bytes")),
            "speedup": dense_s / latency_s if latency_s > 0 else None, "point": chosen}
