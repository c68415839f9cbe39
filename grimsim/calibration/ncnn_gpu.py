"""The analytical GPU model against ncnn's public Vulkan benchmarks.

ncnn's benchmark table also times each network on a device's GPU through Vulkan
(``gpu_device >= 0``). grimsim has no GPU calibration, so these rows check the *uncalibrated*
analytical GPU model, and only where a built-in profile describes the same GPU: a heading
that names a shipped profile's SoC (and, if it names its GPU, the profile's ``gpu.name``) is
predicted with that profile's ``AnalyticalGPUModel`` over the ncnn network, fused
as ncnn runs it. Every other GPU row is counted under the reason it was not checked.

Two figures per device: the model as shipped, and the model times one scale factor fitted on
the *other* GPUs' rows (leave-one-GPU-out: what a single calibration factor would buy on an
unseen GPU). ncnn's Vulkan path stores and computes in fp16 where the GPU supports it (its
``Option`` defaults: use_fp16_packed/storage/arithmetic), the model counts fp32 FLOPs, so a
measured / predicted ratio below 1 is expected on such GPUs.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grimsim.calibration.ncnn_fit import network_rows
from grimsim.calibration.ncnn_reference import NcnnBenchmarkRow, load_ncnn_benchmarks
from grimsim.cost.analytical_gpu import AnalyticalGPUModel
from grimsim.cost.kernel_params import DEFAULT_PARAMS
from grimsim.cost.profile import DeviceProfile, builtin_profiles
from grimsim.cost.rows import CostRows

__all__ = ["GpuCase", "GpuReport", "gpu_cases", "gpu_key", "run_ncnn_gpu_validation", "soc_keys",
           "validate_gpu"]

REASON_NO_PROFILE = "no built-in profile of this GPU"
REASON_OVERCLOCKED = "overclocked (the profile's clocks do not apply)"
REASON_SEVERAL_GPUS = "several Vulkan GPUs in one table (which one is which is not stated)"
REASON_INT8 = "int8 model"
REASON_NO_STRUCTURE = "no modelled .param structure for the network"
REASON_IMPOSSIBLE = ("faster than the GPU's fp16 peak allows for the network's FLOPs "
                     "(a failed or skipped run)")

# "Mali-G610 MP4", "Mali-G720-Immortalis MC12", "Immortalis-G720", "Adreno 640",
# "VideoCore VII": the family and the model number (Immortalis is Arm's name for its largest
# Mali configurations: the same architecture as the Mali of that number).
_GPU_MODEL = re.compile(r"\b(adreno|mali|immortalis|videocore|xclipse|powervr)[\s-]*"
                        r"([a-z]*\d+|[ivx]+)\b", re.IGNORECASE)
# SoC part numbers as headings and profiles write them ("RK3588S" is an RK3588 package).
_SOC = re.compile(r"\b(rk\d{4}|bcm\d{4}|mt\d{4}|sm\d{4}|exynos\s*\d{4}|dimensity\s*\d{3,4})",
                  re.IGNORECASE)


def gpu_key(text: str | None) -> str | None:
    """The GPU named in ``text`` as ``family model`` (``mali g720``), None if none is named."""
    if not text:
        return None
    m = _GPU_MODEL.search(text)
    if m is None:
        return None
    family = m.group(1).lower()
    return f"{'mali' if family == 'immortalis' else family} {m.group(2).lower()}"


def soc_keys(text: str | None) -> frozenset[str]:
    """SoC part numbers named in ``text`` (``rk3588``, ``bcm2712``, ``dimensity 9300``)."""
    if not text:
        return frozenset()
    return frozenset(re.sub(r"\s+", " ", m.group(1).lower()) for m in _SOC.finditer(text))


@dataclass(frozen=True)
class GpuCase:
    """One Vulkan benchmark row (the fastest of repeated tables) with the model's prediction."""

    device: str
    profile: str
    network: str
    measured_ms: float
    predicted_ms: float


def _match(heading: str, profiles: Sequence[DeviceProfile]) -> DeviceProfile | None:
    """The profile of the same SoC (and, if the heading names its GPU, the same GPU): a GPU
    name alone is not enough (a Mali-G720 MC10 of another SoC is not the MC12 of the
    Dimensity 9300)."""
    named = gpu_key(heading)
    socs = soc_keys(heading)
    for prof in profiles:
        if prof.gpu is None or not socs & soc_keys(prof.soc):
            continue
        if named is None or gpu_key(prof.gpu.name) == named:
            return prof
    return None


def gpu_cases(rows: Sequence[NcnnBenchmarkRow] | None = None, *,
              profiles: Sequence[DeviceProfile] | None = None,
              ) -> tuple[list[GpuCase], dict[str, dict[str, int]]]:
    """Predictions for the Vulkan rows of devices whose GPU a built-in profile describes.

    Returns ``(cases, skipped)``: ``skipped[reason][device]`` counts the GPU rows not checked.
    """
    rows = list(rows) if rows is not None else load_ncnn_benchmarks()
    profiles = list(profiles) if profiles is not None else builtin_profiles()
    skipped: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    gpu_rows = [r for r in rows if not r.on_cpu]
    indices: dict[str, set[int]] = defaultdict(set)
    for r in gpu_rows:
        indices[r.device].add(r.gpu_device)
    matched: dict[str, DeviceProfile | None] = {}
    best: dict[tuple[str, str], float] = {}
    for r in gpu_rows:
        if r.device not in matched:
            matched[r.device] = _match(r.device, profiles)
        reason = None
        if matched[r.device] is None:
            reason = REASON_NO_PROFILE
        elif "overclock" in r.device.lower():
            reason = REASON_OVERCLOCKED
        elif len(indices[r.device]) > 1:
            reason = REASON_SEVERAL_GPUS
        elif r.int8:
            reason = REASON_INT8
        if reason is not None:
            skipped[reason][r.device] += 1
            continue
        key = (r.device, r.network)
        best[key] = min(best.get(key, math.inf), r.min_ms)
    net_cache: dict[tuple[str, str], CostRows | None] = {}
    models: dict[str, AnalyticalGPUModel] = {}
    cases = []
    for (device, network), measured in sorted(best.items()):
        prof = matched[device]
        assert prof is not None
        net = network_rows(network, net_cache, unit="gpu")
        if net is None:
            skipped[REASON_NO_STRUCTURE][device] += 1
            continue
        assert prof.gpu is not None
        # fp16 at twice the fp32 rate is the fastest any of these GPUs computes
        bound_ms = float(net.macs.sum()) / (prof.gpu.fp32_gflops * 1e9) * 1e3
        if measured < bound_ms:
            skipped[REASON_IMPOSSIBLE][device] += 1
            continue
        if prof.name not in models:
            models[prof.name] = AnalyticalGPUModel(prof)
        predicted_ms = float(models[prof.name].estimate(net).latency_s.sum()) * 1e3
        cases.append(GpuCase(device, prof.name, network, measured, predicted_ms))
    return cases, {k: dict(v) for k, v in skipped.items()}


@dataclass(frozen=True)
class GpuReport:
    """Per device: rows, median measured / predicted, MAPE of the model as shipped and with
    one scale factor fitted on the other GPUs (leave-one-GPU-out, GPUs = profiles)."""

    per_device: dict[str, dict[str, float | str]]
    median_mape: float
    median_mape_scaled: float
    skipped: dict[str, dict[str, int]]
    band: tuple[float, float] = DEFAULT_PARAMS.gpu_band
    in_band: float = math.nan  # share of rows whose measurement lies in the model's band

    @property
    def n_rows(self) -> int:
        return sum(int(d["rows"]) for d in self.per_device.values())

    def to_markdown(self) -> str:
        n_profiles = len({d["profile"] for d in self.per_device.values()})
        lines = [
            f"ncnn Vulkan rows against the analytical GPU model (uncalibrated): {self.n_rows} "
            f"rows on {len(self.per_device)} devices whose GPU a built-in profile describes "
            f"({n_profiles} profiles)",
            "",
            f"- median over devices of the MAPE: {100 * self.median_mape:.1f}% as shipped, "
            f"{100 * self.median_mape_scaled:.1f}% with one scale factor fitted on the other "
            "GPUs (leave-one-GPU-out)",
            f"- the model's band x{self.band[0]:g}..x{self.band[1]:g} holds "
            f"{100 * self.in_band:.0f}% of the rows (the band is set from these rows: "
            "`KernelParams.gpu_band`)",
            "- ncnn's Vulkan path runs in fp16 where the GPU supports it; the model counts "
            "fp32 FLOPs",
            "",
            "| device | profile | rows | measured / predicted (median) | MAPE | MAPE, one "
            "scale (other GPUs) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for dev, d in sorted(self.per_device.items()):
            lines.append(f"| {dev[:70]} | {d['profile']} | {int(d['rows'])} | "
                         f"{float(d['ratio']):.2f} | {100 * float(d['mape']):.1f}% | "
                         f"{100 * float(d['mape_scaled']):.1f}% |")
        if self.skipped:
            lines += ["", "GPU rows not checked:", "", "| reason | devices | rows |",
                      "|---|---:|---:|"]
            lines += [f"| {reason} | {len(devs)} | {sum(devs.values())} |"
                      for reason, devs in sorted(self.skipped.items())]
        return "\n".join(lines) + "\n"


def validate_gpu(cases: Sequence[GpuCase],
                 skipped: dict[str, dict[str, int]] | None = None) -> GpuReport:
    """The per-device report of :func:`gpu_cases`' predictions (see :class:`GpuReport`)."""
    if not cases:
        return GpuReport({}, math.nan, math.nan, dict(skipped or {}))
    log_ratio = np.log([c.measured_ms / c.predicted_ms for c in cases])
    profile = np.array([c.profile for c in cases])
    per_device: dict[str, dict[str, float | str]] = {}
    for dev in sorted({c.device for c in cases}):
        idx = np.array([c.device == dev for c in cases])
        others = profile != profile[idx][0]
        # with a single GPU there is nothing to fit the scale on: the model as shipped
        scale = float(np.exp(np.median(log_ratio[others]))) if others.any() else 1.0
        ratio = np.exp(log_ratio[idx])
        per_device[dev] = {
            "profile": str(profile[idx][0]), "rows": float(idx.sum()),
            "ratio": float(np.median(ratio)), "scale": scale,
            "mape": float(np.mean(np.abs(1.0 / ratio - 1.0))),
            "mape_scaled": float(np.mean(np.abs(scale / ratio - 1.0))),
        }
    lo, hi = DEFAULT_PARAMS.gpu_band
    ratio = np.exp(log_ratio)
    return GpuReport(
        per_device,
        float(np.median([float(d["mape"]) for d in per_device.values()])),
        float(np.median([float(d["mape_scaled"]) for d in per_device.values()])),
        dict(skipped or {}), (lo, hi), float(np.mean((ratio >= lo) & (ratio <= hi))))


def run_ncnn_gpu_validation(path: str | Path | None = None, *,
                            profiles: Sequence[DeviceProfile] | None = None) -> GpuReport:
    """Load the table (default: the reference folder's), predict the Vulkan rows of devices a
    built-in profile describes and report them (see :class:`GpuReport`)."""
    cases, skipped = gpu_cases(load_ncnn_benchmarks(path), profiles=profiles)
    return validate_gpu(cases, skipped)
