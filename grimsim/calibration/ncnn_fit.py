"""Device-level efficiency on ncnn's public benchmarks, validated leave-one-device-out.

For every device of ``benchmarks.csv`` whose heading names its CPU core types, counts and
clocks (``ncnn_reference.usable_devices``; the others are listed with the reason), an ad-hoc
``DeviceProfile`` is built from the heading: clusters from the sourced microarchitecture table,
DRAM bandwidth *assumed* (the heading never gives it; see ``DRAM_ASSUMPTIONS``). The
analytical CPU model predicts each (device, network, threads) dense fp32 latency over the
ncnn ``.param`` network (fused as ncnn runs it), and a small ridge regression learns
``log(measured / predicted)`` from device-level features (core type class, clock, threads,
use of little cores, ISA) plus a per-network offset (ncnn's kernels are not grimsim's: each
network's mix of Winograd, depthwise and 1x1 convs runs at its own efficiency there).

Validation holds out every device sharing a CPU configuration (``cpu_key``: several RK3588
boards are one CPU) together: fit on the others, predict the held-out ones. The headline is
the median over held-out devices of their MAPE. GPU (Vulkan) rows are counted here and
checked against the uncalibrated GPU model in ``ncnn_gpu``.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grimsim.calibration.ncnn_reference import (
    DeviceHeading,
    NcnnBenchmarkRow,
    load_ncnn_benchmarks,
    network_param_path,
    summarize_devices,
)
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.microarch import core_types
from grimsim.cost.profile import DeviceProfile, parse_profile
from grimsim.cost.rows import CostRows, rows_for
from grimsim.errors import GrimsimError
from grimsim.network.fusion import fuse
from grimsim.network.ncnn_import import load_ncnn_param

__all__ = [
    "DRAM_ASSUMPTIONS",
    "LodoReport",
    "NcnnCase",
    "device_profile",
    "efficiency_features",
    "fit_efficiency",
    "lodo_predictions",
    "ncnn_cases",
    "network_rows",
    "validate_lodo",
]

log = logging.getLogger(__name__)

#: DRAM peak bandwidth assumed per ISA (no heading states it), with the sustained share.
#: arm: 32-bit LPDDR4-3200 = 12.8 GB/s, the board class of most headings (Raspberry Pi 4 and
#: RK3399/RK3568 boards; the RPi documentation gives sdram_freq 3200 on a 32-bit bus);
#: x86: dual-channel DDR4-3200 = 51.2 GB/s (2 x 64 bit x 3200 MT/s / 8), a desktop default.
DRAM_ASSUMPTIONS: Mapping[str, tuple[float, float, str]] = {
    "arm": (12.8, 0.6, "32-bit LPDDR4-3200 (12.8 GB/s) assumed: the heading gives no memory; "
                       "https://github.com/raspberrypi/documentation (config_txt/overclocking: "
                       "sdram_freq 3200)"),
    "x86": (51.2, 0.6, "dual-channel DDR4-3200 (2 x 64 bit x 3200 MT/s = 51.2 GB/s) assumed: "
                       "the heading gives no memory"),
}
#: Fork/join cost of ncnn's OpenMP pool, assumed like the built-in board profiles' placeholder.
BARRIER_US = 5.0
#: Ridge penalty of the efficiency regression (on standardised features; intercept free).
RIDGE = 0.3


@dataclass(frozen=True)
class NcnnCase:
    """One CPU fp32 benchmark row with the analytical prediction for it."""

    device: str
    cpu_key: tuple[tuple[str, int, float], ...]
    network: str
    threads: int
    measured_ms: float
    predicted_ms: float
    features: tuple[float, ...] = ()


@dataclass(frozen=True)
class LodoReport:
    """Leave-one-device-out results.

    ``per_device``: held-out MAPE (and the analytical model's alone) per device heading;
    ``median_mape``: the median of the per-device MAPEs (the headline); ``excluded``: device
    headings that could not be used and why; ``gpu_rows``: GPU benchmark rows per device.
    """

    n_cases: int
    n_devices: int
    n_groups: int
    median_mape: float
    median_mape_analytical: float
    row_median_ape: float
    per_device: dict[str, dict[str, float]]
    excluded: dict[str, str]
    gpu_rows: dict[str, int]
    feature_names: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_markdown(self) -> str:
        lines = [
            f"ncnn leave-one-device-out (CPU, fp32): {self.n_cases} benchmark rows on "
            f"{self.n_devices} devices ({self.n_groups} distinct CPU configurations held out "
            "in turn)",
            "",
            f"- median over devices of the held-out MAPE: **{100 * self.median_mape:.1f}%** "
            f"(analytical model alone: {100 * self.median_mape_analytical:.1f}%)",
            f"- median absolute percentage error over all rows: "
            f"{100 * self.row_median_ape:.1f}%",
            *[f"- {n}" for n in self.notes],
            "",
            "| device | rows | MAPE (fitted) | MAPE (analytical) |",
            "|---|---:|---:|---:|",
        ]
        for dev, d in sorted(self.per_device.items(), key=lambda kv: kv[1]["mape"]):
            lines.append(f"| {dev[:70]} | {int(d['rows'])} | {100 * d['mape']:.1f}% | "
                         f"{100 * d['mape_analytical']:.1f}% |")
        if self.gpu_rows:
            lines += ["", f"GPU (Vulkan) rows: {sum(self.gpu_rows.values())} on "
                      f"{len(self.gpu_rows)} devices, not part of this fit (see "
                      "`ncnn_gpu`: the uncalibrated GPU model where a built-in profile "
                      "describes the GPU)."]
        if self.excluded:
            lines += ["", "Devices left out:", "", "| device | reason |", "|---|---|"]
            lines += [f"| {d[:70]} | {r} |" for d, r in sorted(self.excluded.items())]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Profiles from headings
# --------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")[:48] or "device"


def device_profile(heading: DeviceHeading) -> DeviceProfile:
    """An ad-hoc profile from a parsed heading (clusters from the microarchitecture table,
    DRAM assumed per ISA; every assumption sourced as ``assumed``)."""
    if not heading.usable:
        raise GrimsimError(f"device {heading.heading!r} is not usable: {heading.reason}")
    table = core_types()
    clusters = []
    sources: dict[str, Any] = {}
    for i, c in enumerate(heading.clusters):
        if c.core not in table:
            raise GrimsimError(f"device {heading.heading!r}: core {c.core!r} is not in the "
                               "microarchitecture table")
        name = f"c{i}"
        clusters.append({"name": name, "core": c.core, "count": c.count,
                         "max_clock_ghz": c.clock_ghz})
        sources[f"cpu.{name}"] = {"ref": "ncnn benchmark/README.md heading",
                                  "says": f"{heading.heading}: {c.label or c.core} x{c.count} "
                                          f"at {c.clock_ghz} GHz", "kind": "published"}
    x86 = heading.isa in ("x86_64", "x86")
    peak, fraction, why = DRAM_ASSUMPTIONS["x86" if x86 else "arm"]
    sources["dram"] = {"ref": "grimsim/calibration/ncnn_fit.py", "says": why,
                       "kind": "assumed"}
    sources["system.thread_barrier_us"] = {
        "ref": "cost_models/README.md", "says": "fork/join barrier placeholder of the board "
                                                "profiles", "kind": "assumed"}
    data = {"name": _slug(heading.product or heading.heading), "version": 1,
            "soc": heading.product or heading.heading,
            "system": {"os": "linux", "thread_barrier_us": BARRIER_US},
            "cpu": {"clusters": clusters},
            "dram": {"type": "assumed", "peak_bandwidth_gbs": peak,
                     "sustained_fraction": fraction},
            "sources": sources}
    return parse_profile(data, f"ncnn heading {heading.heading!r}")


# --------------------------------------------------------------------------------------------
# Cases and features
# --------------------------------------------------------------------------------------------
def _used_cores(profile: DeviceProfile, threads: int) -> list[tuple[Any, int]]:
    left = threads
    used = []
    for c in profile.clusters_big_first():
        n = min(left, c.count)
        if n > 0:
            used.append((c, n))
        left -= n
    return used


#: Names of the device-level features (the per-network offsets are appended).
DEVICE_FEATURES = ("log2_big_clock_ghz", "big_in_order", "log2_threads", "little_share",
                   "fp16_share", "log2_big_flops_per_cycle", "armv7", "x86",
                   "threads_over_cores", "log2_predicted_ms", "table_era",
                   "table_era_x_fp16")


def _fp16_arithmetic(core: str) -> bool:
    """Whether ncnn computes "fp32" models in fp16 on this core: ncnn's default Option has
    use_fp16_arithmetic = true (Tencent/ncnn src/option.cpp) and uses it on cores with the
    Armv8.2-A half-precision extension, which every Armv8.2+/Armv9 core of the table has."""
    isa = core_types()[core].isa
    if not isa.startswith("armv"):
        return False
    major, _, minor = isa[4:].partition("-")[0].partition(".")
    return (int(major), int(minor or 0)) >= (8, 2)


def efficiency_features(profile: DeviceProfile, heading: DeviceHeading, threads: int,
                        predicted_ms: float, era: float) -> tuple[float, ...]:
    """``DEVICE_FEATURES`` of one (device, threads, prediction).

    ``era``: the share of the table's benchmark networks the device's own table ran. The
    README's tables span 2017-2025 and ncnn's kernels sped up meanwhile; newer tables run
    newer networks, so the share is the only hint of the ncnn version a heading used.
    """
    used = _used_cores(profile, threads)
    big = profile.clusters_big_first()[0]
    n_used = sum(n for _, n in used)
    little = sum(n for c, n in used if c is not big and c.fp32_flops_per_cycle
                 * c.max_clock_ghz < 0.8 * big.fp32_flops_per_cycle * big.max_clock_ghz)
    fp16 = sum(n for c, n in used if _fp16_arithmetic(c.core))
    isa = heading.isa or ""
    return (math.log2(big.max_clock_ghz), float(not big.out_of_order),
            math.log2(max(n_used, 1)), little / max(n_used, 1), fp16 / max(n_used, 1),
            math.log2(big.fp32_flops_per_cycle), float(isa == "armv7"),
            float(isa in ("x86_64", "x86")), float(threads > profile.total_cores),
            math.log2(max(predicted_ms, 1e-3)), era, era * fp16 / max(n_used, 1))


def network_rows(network: str, cache: dict[tuple[str, str], CostRows | None],
                 unit: str = "cpu") -> CostRows | None:
    """Dense cost rows (for ``unit``) of an ncnn network's ``.param`` structure, fused as
    ncnn runs it (None when the reference has no structure for it or it cannot be
    modelled); memoised in ``cache``."""
    key = (network, unit)
    if key not in cache:
        path = network_param_path(network)
        if path is None:
            cache[key] = None
        else:
            try:
                net = fuse(load_ncnn_param(path))
                cache[key] = rows_for(net, ["dense"], unit=unit)
            except GrimsimError as exc:
                log.warning("ncnn network %s cannot be modelled: %s", network, exc)
                cache[key] = None
    return cache[key]


def ncnn_cases(rows: Sequence[NcnnBenchmarkRow] | None = None, *,
               devices: Sequence[str] | None = None, networks: Sequence[str] | None = None,
               ) -> tuple[list[NcnnCase], dict[str, str], dict[str, int]]:
    """Analytical predictions for the usable CPU fp32 rows.

    Returns ``(cases, excluded devices -> reason, GPU rows per device)``; ``devices`` /
    ``networks`` restrict the set (headings and network names).
    """
    rows = list(rows) if rows is not None else load_ncnn_benchmarks()
    table = set(core_types())
    summaries = summarize_devices(rows, microarchitectures=table)
    excluded = {s.device.heading: s.reason for s in summaries if not s.usable}
    headings = {s.device.heading: s.device for s in summaries if s.usable}
    if devices is not None:
        headings = {h: d for h, d in headings.items() if h in set(devices)}
    gpu_rows: dict[str, int] = defaultdict(int)
    ran: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if not r.on_cpu:
            gpu_rows[r.device] += 1
        elif not r.int8:
            ran[r.device].add(r.network)
    all_networks = max(1, len({n for nets in ran.values() for n in nets}))
    net_cache: dict[tuple[str, str], CostRows | None] = {}
    models: dict[str, tuple[DeviceProfile, AnalyticalCPUModel]] = {}
    # one benchmark row per (device, network, threads): the fastest of repeated tables
    best: dict[tuple[str, str, int], float] = {}
    for r in rows:
        if not r.on_cpu or r.int8 or r.device not in headings:
            continue
        if networks is not None and r.network not in networks:
            continue
        key = (r.device, r.network, r.threads)
        best[key] = min(best.get(key, math.inf), r.min_ms)
    cases = []
    unmodelled: dict[str, int] = defaultdict(int)
    for (device, network, threads), measured in sorted(best.items()):
        net_rows = network_rows(network, net_cache)
        if net_rows is None:
            unmodelled[network] += 1
            continue
        heading = headings[device]
        if device not in models:
            try:
                prof = device_profile(heading)
            except GrimsimError as exc:
                excluded[device] = str(exc)
                continue
            models[device] = (prof, AnalyticalCPUModel(prof, cache_state="network"))
        if device in excluded:
            continue
        prof, model = models[device]
        t = min(threads, prof.total_cores)
        pred_ms = float(model.estimate(net_rows.with_threads(t)).latency_s.sum()) * 1e3
        key_ = heading.cpu_key
        assert key_ is not None
        cases.append(NcnnCase(device=device, cpu_key=key_, network=network, threads=threads,
                              measured_ms=measured, predicted_ms=pred_ms,
                              features=efficiency_features(
                                  prof, heading, threads, pred_ms,
                                  len(ran[device]) / all_networks)))
    for network, n in sorted(unmodelled.items()):
        log.info("%d rows of %s skipped: no modelled .param structure", n, network)
    return cases, excluded, dict(gpu_rows)


# --------------------------------------------------------------------------------------------
# The efficiency regression
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class EfficiencyModel:
    """Ridge regression of log(measured / predicted) on device features + network offsets."""

    networks: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def design(self, cases: Sequence[NcnnCase]) -> np.ndarray:
        dev = np.asarray([c.features for c in cases], dtype=np.float64)
        onehot = np.asarray([[float(c.network == n) for n in self.networks] for c in cases])
        return np.hstack([(dev - self.mean) / self.scale, onehot.reshape(len(cases), -1)])

    def predict_log(self, cases: Sequence[NcnnCase]) -> np.ndarray:
        return np.asarray(self.design(cases) @ self.coef + self.intercept)

    def predict_ms(self, cases: Sequence[NcnnCase]) -> np.ndarray:
        pred = np.asarray([c.predicted_ms for c in cases])
        return np.asarray(pred * np.exp(self.predict_log(cases)))


def fit_efficiency(cases: Sequence[NcnnCase], ridge: float = RIDGE) -> EfficiencyModel:
    """Fit the efficiency regression on ``cases`` (closed-form weighted ridge, intercept
    free; each device's rows share one unit of weight)."""
    if not cases:
        raise GrimsimError("no ncnn cases to fit")
    dev = np.asarray([c.features for c in cases], dtype=np.float64)
    mean = dev.mean(axis=0)
    scale = np.where(dev.std(axis=0) > 1e-12, dev.std(axis=0), 1.0)
    networks = tuple(sorted({c.network for c in cases}))
    model = EfficiencyModel(networks, mean, scale, np.zeros(0), 0.0)
    X = model.design(cases)
    y = np.log(np.asarray([c.measured_ms / c.predicted_ms for c in cases]))
    # every device weighs the same (the validation's unit), whatever its number of rows
    per_device: dict[str, int] = defaultdict(int)
    for c in cases:
        per_device[c.device] += 1
    w = np.asarray([len(cases) / (len(per_device) * per_device[c.device]) for c in cases])
    x_mean = np.average(X, axis=0, weights=w)
    y_mean = float(np.average(y, weights=w))
    Xc = X - x_mean
    coef = np.linalg.solve(Xc.T @ (w[:, None] * Xc) + ridge * np.eye(X.shape[1]),
                           Xc.T @ (w * (y - y_mean)))
    intercept = y_mean - float(x_mean @ coef)
    return EfficiencyModel(networks, mean, scale, coef, intercept)


def lodo_predictions(cases: Sequence[NcnnCase], ridge: float = RIDGE,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Predicted ms of every case by a model fitted without its CPU configuration."""
    groups: dict[tuple[tuple[str, int, float], ...], list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        groups[c.cpu_key].append(i)
    if len(groups) < 2:
        raise GrimsimError("leave-one-device-out needs at least two CPU configurations")
    fitted = np.empty(len(cases))
    for g, (_, idx) in enumerate(sorted(groups.items())):
        held = set(idx)
        train = [c for i, c in enumerate(cases) if i not in held]
        fitted[idx] = fit_efficiency(train, ridge).predict_ms([cases[i] for i in idx])
        if progress is not None:
            progress(g + 1, len(groups))
    return fitted


def validate_lodo(cases: Sequence[NcnnCase], *, excluded: Mapping[str, str] | None = None,
                  gpu_rows: Mapping[str, int] | None = None, ridge: float = RIDGE,
                  progress: Callable[[int, int], None] | None = None) -> LodoReport:
    """Leave-one-CPU-configuration-out: each group of devices sharing a ``cpu_key`` is
    predicted by a model fitted on all other devices."""
    fitted = lodo_predictions(cases, ridge, progress)
    n_groups = len({c.cpu_key for c in cases})
    measured = np.asarray([c.measured_ms for c in cases])
    analytical = np.asarray([c.predicted_ms for c in cases])
    ape = np.abs(fitted - measured) / measured
    ape_a = np.abs(analytical - measured) / measured
    per_device: dict[str, dict[str, float]] = {}
    by_device: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        by_device[c.device].append(i)
    for dev, idx in by_device.items():
        per_device[dev] = {"rows": float(len(idx)), "mape": float(ape[idx].mean()),
                           "mape_analytical": float(ape_a[idx].mean())}
    notes = (f"features: {', '.join(DEVICE_FEATURES)} + one offset per network "
             f"(ridge {ridge:g}); DRAM bandwidth assumed per ISA",
             "measured = benchncnn's min_ms (fastest of the loop), the best of repeated tables",
             "the feature set and ridge were chosen among a dozen variants on this same "
             "leave-one-out split, so the figure is slightly optimistic")
    return LodoReport(
        n_cases=len(cases), n_devices=len(by_device), n_groups=n_groups,
        median_mape=float(np.median([d["mape"] for d in per_device.values()])),
        median_mape_analytical=float(np.median([d["mape_analytical"]
                                                for d in per_device.values()])),
        row_median_ape=float(np.median(ape)), per_device=per_device,
        excluded=dict(excluded or {}), gpu_rows=dict(gpu_rows or {}),
        feature_names=DEVICE_FEATURES, notes=notes)


def run_ncnn_validation(path: str | Path | None = None, **kw: Any) -> LodoReport:
    """Load the table, predict every usable row and validate leave-one-device-out."""
    rows = load_ncnn_benchmarks(path)
    cases, excluded, gpu = ncnn_cases(rows, **kw)
    return validate_lodo(cases, excluded=excluded, gpu_rows=gpu)
