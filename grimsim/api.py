"""The Python API: wiring of the packages for scripts and the explorer (no algorithms here).

Networks and devices may be given as objects or by name everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grimsim.cost.profile import DeviceProfile
from grimsim.errors import GrimsimError
from grimsim.network.graph import Network
from grimsim.network.loader import load_network as _load_network

__all__ = ["cost_model", "cost_table", "device_names", "estimate", "load_device",
           "load_network", "zoo_names"]


def load_network(model: str | Path | Network, input_shape: Sequence[int] | str | None = None,
                 seq_len: int | None = None, fuse: bool = True) -> Network:
    """Load a zoo network by name, or an ``.onnx`` / ncnn ``.param`` file.

    ``input_shape`` may be a tuple or a string such as ``"1x3x224x224"``.
    """
    if isinstance(model, Network):
        return model
    if isinstance(input_shape, str):
        from grimsim.network.loader import parse_shape

        input_shape = parse_shape(input_shape)
    return _load_network(model, input_shape=input_shape, seq_len=seq_len, fuse=fuse)


def zoo_names() -> tuple[str, ...]:
    from grimsim.network.zoo import ZOO_NAMES

    return ZOO_NAMES


def load_device(name_or_path: str | Path | DeviceProfile = "host") -> DeviceProfile:
    """A device profile: a built-in name (``sd855``), ``name@version``, a YAML path, or
    ``host`` (this machine: detected and measured once, then read from the user data folder)."""
    from grimsim.cost.profile import load_profile

    if isinstance(name_or_path, DeviceProfile):
        return name_or_path
    if str(name_or_path) == "host":
        from grimsim.calibration.host import measured_host_profile

        return measured_host_profile()
    return load_profile(name_or_path)


def device_names() -> list[str]:
    from grimsim.cost.profile import list_profiles

    return list_profiles()


def cost_model(device: str | Path | DeviceProfile, unit: str = "cpu") -> Any:
    """The best model for a device: its fitted correction when the profile has one (CPU),
    else the analytical model."""
    from grimsim.cost.analytical import analytical_model

    profile = load_device(device)
    if profile.calibration is not None and unit == "cpu":
        try:
            from grimsim.cost.learned import load_cost_model
        except ImportError as exc:  # scikit-learn missing on a minimal install
            raise GrimsimError(f"{profile.id} is calibrated but its correction cannot be "
                               f"loaded ({exc}); pip install scikit-learn") from None
        return load_cost_model(profile, unit)
    return analytical_model(profile, unit)


def estimate(network: str | Network, device: str | DeviceProfile = "host",
             assignment: Mapping[str, Any] | None = None, *, threads: int = 1,
             unit: str = "cpu") -> Any:
    """Predicted latency of ``network`` on ``device`` with ``assignment`` (layer name ->
    scheme spec or PruningScheme; others dense): a ``NetworkEstimate``."""
    from grimsim.cost.network import estimate_network

    net = load_network(network)
    profile = load_device(device)
    return estimate_network(net, cost_model(profile, unit), assignment, threads=threads,
                            unit=unit, device=profile.id)


def cost_table(network: str | Network, device: str | DeviceProfile, schemes: Sequence[Any],
               *, threads: int = 1, unit: str = "cpu") -> Any:
    """One row per (GEMM row, scheme) with its estimate: a ``CostTable`` (``len()`` = rows,
    ``records()`` = plain dicts). Schemes as spec strings or PruningScheme objects."""
    from grimsim.cost.network import cost_table as _cost_table

    net = load_network(network)
    profile = load_device(device)
    return _cost_table(net, cost_model(profile, unit), schemes, threads=threads, unit=unit,
                       device=profile.id)


def run(network: str | Network, assignment: Mapping[str, Any] | None = None, *,
        threads: int = 1, device: str | DeviceProfile = "host", min_time_s: float = 0.05,
        check: bool = False, statistic: str = "min_s") -> dict[str, Any]:
    """Run ``network`` here with the kernels (random weights pruned by ``assignment``) and
    set each layer's measured time beside the prediction of ``device``'s model.

    The kernels run what the model predicted for each GEMM (e.g. Winograd or im2col for a
    dense 3x3 conv), so the comparison is kernel for kernel. ``statistic``: per timing the
    fastest call (``min_s``, what calibration fits by default) or ``median_s``.
    """
    from grimsim.cost.network import cost_table as _cost_table
    from grimsim.cost.network import estimate_from_table
    from grimsim.execute.runner import KERNEL_CHOICES, run_network

    net = load_network(network)
    profile = load_device(device)
    plan = dict(assignment or {})
    table = _cost_table(net, cost_model(profile, "cpu"), plan, threads=threads,
                        device=profile.id)
    predicted = estimate_from_table(net, table, threads=threads)
    choice = {r["gemm"]: r["kernel"] for r in table.records() if r["kernel"] in KERNEL_CHOICES}
    legal = {name: spec for name, spec in plan.items()
             if name not in {s.split(":")[0] for s in predicted.skipped}}
    measured = run_network(net, legal, threads=threads, kernel_choice=choice,
                           min_time_s=min_time_s, check=check, statistic=statistic)
    pred = {lay.name: lay for lay in predicted.layers}
    layers = []
    for lay in measured.layers:
        p = pred.get(lay.name)
        if p is None and lay.measured_s == 0.0:
            continue  # views and inputs: nothing to run, nothing predicted
        layers.append({"name": lay.name, "op": lay.op, "scheme": lay.scheme,
                       "kernel": lay.kernel, "measured_ms": lay.measured_s * 1e3,
                       "predicted_ms": (p.latency_s * 1e3) if p else 0.0})
    return {"network": net.name, "device": profile.id, "threads": threads,
            "measured_ms": measured.measured_s * 1e3, "predicted_ms": predicted.latency_s * 1e3,
            "predicted_band_ms": [predicted.band_s[0] * 1e3, predicted.band_s[1] * 1e3],
            "provenance": predicted.provenance, "simd": measured.simd,
            "statistic": measured.statistic,
            "skipped": list(predicted.skipped), "layers": layers}


def candidate_table(network: str | Network, device: str | DeviceProfile, *, threads: int = 1,
                    unit: str = "cpu", rates: Sequence[float] | None = None,
                    sensitivity: Any = None) -> Any:
    """The search's ``CandidateTable``: per prunable layer, every legal candidate scheme with
    its predicted latency (the layer's scheme-independent rows included), loss and bytes.

    ``sensitivity``: a ``grimsim.search.sensitivity.SensitivityTable`` whose measured drops
    replace the proxy loss where present.
    """
    import numpy as np

    from grimsim.cost.network import cost_table as _cost_table
    from grimsim.search.candidates import DEFAULT_RATES, candidate_specs, decision_layers
    from grimsim.search.table import CandidateTable

    net = load_network(network)
    profile = load_device(device)
    layers = decision_layers(net)
    cands = {wl.name: candidate_specs(wl, rates or DEFAULT_RATES) for wl in layers}
    table = _cost_table(net, cost_model(profile, unit), cands, threads=threads, unit=unit,
                        device=profile.id)
    r, lat, loss = table.rows, table.estimates.latency_s, table.loss
    decided = set(cands)
    in_decided = np.array([str(name) in decided for name in r.layer], dtype=bool)
    varying = in_decided & r.prunable & r.is_gemm
    fixed_latency = float(lat[~in_decided].sum())
    base: dict[str, float] = {}
    for i in np.flatnonzero(in_decided & ~varying):
        base[str(r.layer[i])] = base.get(str(r.layer[i]), 0.0) + float(lat[i])
    acc: dict[tuple[str, str], list[float]] = {}
    for i in np.flatnonzero(varying):
        key = (str(r.layer[i]), str(r.spec[i]))
        lat_i, loss_i, bytes_i = acc.setdefault(key, [0.0, 0.0, 0.0])
        if sensitivity is not None:
            measured = sensitivity.drop(key[0], key[1])
            loss_i = loss_i + (max(0.0, measured) if measured is not None
                               else float(loss[i]))
        else:
            loss_i = loss_i + float(loss[i])
        acc[key] = [lat_i + float(lat[i]), loss_i, bytes_i + float(r.format_bytes[i])]
    dense_decided_bytes = float(r.weight_bytes[varying & (r.spec == "dense")].sum())
    rows = [(layer, spec, v[0] + base.get(layer, 0.0), v[1] if spec != "dense" else 0.0, v[2])
            for (layer, spec), v in acc.items()]
    return CandidateTable.from_rows(rows, fixed_latency_s=fixed_latency,
                                    fixed_bytes=4.0 * net.total_params - dense_decided_bytes)


def search(network: str | Network, device: str | DeviceProfile = "host", *,
           latency_ms: float | None = None, max_loss: float | None = None,
           pareto: bool = False, threads: int = 1, unit: str = "cpu", solver: str = "exact",
           rates: Sequence[float] | None = None, sensitivity: Any = None,
           seed: int = 0) -> Any:
    """Per-layer scheme mapping of ``network`` on ``device``: minimum loss under
    ``latency_ms``, minimum latency under ``max_loss``, or the Pareto front (``pareto``).
    Returns a ``grimsim.search.SearchResult`` (its ``pareto`` holds the front either way)."""
    from grimsim.search.objectives import MIN_LATENCY, MIN_LOSS, PARETO
    from grimsim.search.solve import solve

    given = [latency_ms is not None, max_loss is not None, bool(pareto)]
    if sum(given) != 1:
        raise GrimsimError("give exactly one of latency_ms, max_loss or pareto")
    net = load_network(network)
    table = candidate_table(net, device, threads=threads, unit=unit, rates=rates,
                            sensitivity=sensitivity)
    if latency_ms is not None:
        objective, target = MIN_LOSS, latency_ms / 1e3
    elif max_loss is not None:
        objective, target = MIN_LATENCY, max_loss
    else:
        objective, target = PARETO, None
    return solve(table, objective, target, solver, network=net, seed=seed)


def search_result_from_json(text: str) -> Any:
    from grimsim.search.result import SearchResult

    return SearchResult.from_json(text)


def mask_picture(shape: tuple[int, int], spec: str, *, seed: int = 0,
                 kernel: tuple[int, int] | None = None,
                 crop: tuple[int, int] = (64, 128)) -> dict[str, Any]:
    """The top-left crop of a mask under ``spec`` on Gaussian weights, and the whole
    matrix's format figures (from the expected-mask statistics, no full weights made)."""
    import numpy as np

    from grimsim.network.workload import GemmView
    from grimsim.pruning import encode, format_block, format_name, make_mask, parse_spec
    from grimsim.pruning import sparse_workload as _sparse_workload

    M, K = int(shape[0]), int(shape[1])
    scheme = parse_spec(spec)
    gemm = GemmView(name="layer", M=M, K=K, N=1, kernel=kernel)
    sw = _sparse_workload(gemm, scheme)
    per_kernel = kernel[0] * kernel[1] if kernel else 1
    kc = min(K, max(per_kernel, crop[1] // per_kernel * per_kernel))
    if scheme.kind == "nm" and scheme.m:
        kc = min(K, max(kc, scheme.m))
    mc = min(M, crop[0])
    w = np.random.default_rng(seed).standard_normal((mc, kc)).astype(np.float32)
    mask = make_mask(w, scheme, kernel=kernel)
    # the whole layer's format bytes, split over the format's arrays as in the crop's encoding
    fmt = encode(w, mask, scheme, kernel=kernel)
    parts = {name: int(getattr(fmt, name).nbytes) for name in vars(fmt)
             if isinstance(getattr(fmt, name), np.ndarray)}
    crop_total = sum(parts.values()) or 1
    return {"mask": mask, "shape": (M, K), "block": format_block(scheme, M, K, kernel),
            "sparsity": sw.sparsity, "format": format_name(scheme), "spec": scheme.spec,
            "format_bytes": {k: v * sw.format_bytes / crop_total for k, v in parts.items()},
            "format_bytes_total": sw.format_bytes, "dense_bytes": 4 * M * K}


#: ncnn benchmark model -> its zoo twin (the same network family; see the import tests).
_NCNN_TWINS = {"resnet18": "resnet18", "resnet50": "resnet50", "vgg16": "vgg16",
               "mobilenet": "mobilenet_v1", "mobilenet_v2": "mobilenet_v2",
               "alexnet": "alexnet", "googlenet": "googlenet", "squeezenet": "squeezenet1_1"}


def ncnn_reference_points() -> list[dict[str, Any]]:
    """ncnn's public CPU fp32 latencies (shared/reference): device, model, its zoo twin,
    threads and the measured time."""
    from grimsim.calibration.ncnn_reference import load_ncnn_benchmarks

    return [{"device": r.device, "model": r.network, "network": _NCNN_TWINS.get(r.network),
             "threads": r.threads, "measured_s": r.avg_ms / 1e3, "predicted_s": None}
            for r in load_ncnn_benchmarks() if r.on_cpu and not r.int8]


def fidelity_points(device: str | DeviceProfile) -> list[dict[str, Any]]:
    """Held-out (predicted, measured) points of a calibrated device; [] when uncalibrated."""
    import json

    profile = load_device(device)
    if profile.calibration is None or not profile.origin:
        return []
    path = Path(profile.origin).with_name(f"{Path(profile.origin).stem}.heldout.json")
    if not path.is_file():
        return []
    points: list[dict[str, Any]] = json.loads(path.read_text())["points"]
    return points
