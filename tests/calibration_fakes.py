"""Fakes for the calibration tests: a synthetic measurer, a fake clock, a small plan."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grimsim.calibration.measure import Measurement, TimingOptions, unit_rows
from grimsim.calibration.plan import PlanUnit, build_plan
from grimsim.calibration.run import run_calibration
from grimsim.cost.profile import load_profile

SCHEMES = ("dense", "bcr:16x32:0.75", "unstructured:0.5", "nm:2:4")
ONLY_GRU = [n for n in ("vgg16", "resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2",
                        "squeezenet1_1", "alexnet", "googlenet", "lstm_2x1024", "bert_base",
                        "minilm_l6")]


def small_plan(space_filling: int = 12, schemes: Sequence[str] = SCHEMES) -> Any:
    return build_plan(ONLY_GRU, (1, 2), schemes=schemes, space_filling=space_filling, seed=1)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeMeasurer:
    """Synthetic times (a smooth function of the shape), a scripted reference kernel."""

    timing = TimingOptions(min_time_s=0.001, warmup=0, max_reps=3)

    def __init__(self, clock: FakeClock, step_s: float = 0.5,
                 reference: Callable[[int], float] = lambda i: 1e-3,
                 interrupt_after: int | None = None,
                 stream: Callable[[int], float] | None = None) -> None:
        self.clock = clock
        self.step_s = step_s
        self.reference_fn = reference
        self.stream_fn = stream  # the streaming-read part of the probe (None: none)
        self.ref_calls = 0
        self.units = 0
        self.interrupt_after = interrupt_after

    def fingerprint(self, profile: Any) -> dict[str, Any]:
        return {"machine": "fake|test", "cpu_model": "fake", "flags": [], "simd_level": "fake",
                "parallel_backend": "none", "hardware_threads": 2}

    def reference(self) -> dict[str, Any]:
        v = self.reference_fn(self.ref_calls)
        out: dict[str, Any] = {"median_s": v, "min_s": v, "mean_s": v, "reps": 3}
        if self.stream_fn is not None:
            out["stream_min_s"] = self.stream_fn(self.ref_calls)
        self.ref_calls += 1
        self.clock.t += 0.05
        return out

    def measure(self, unit: PlanUnit, threads: Sequence[int],
                kernels_by_thread: Sequence[str]) -> list[Measurement]:
        if self.interrupt_after is not None and self.units >= self.interrupt_after:
            raise KeyboardInterrupt
        self.units += 1
        self.clock.t += self.step_s
        rows = unit_rows([unit] * len(threads), list(threads))
        out = []
        for i, (t, k) in enumerate(zip(threads, kernels_by_thread, strict=True)):
            stats = {key: float(getattr(rows, key)[i]) for key in (
                "sparsity", "nnz", "n_blocks", "rows_mean", "cols_mean", "work_mean",
                "work_max", "format_bytes", "block_r", "block_c")}
            s = unit.shape
            v = 1e-9 * float(rows.nnz[i]) * s.N / t ** 0.8 + 5e-6
            out.append(Measurement(t, k, v, 0.97 * v, v, 3, stats))
        return out


def run_fake(out: Path, budget_s: float, measurer: FakeMeasurer, plan: Any = None,
             **kw: Any) -> Any:
    return run_calibration(plan or small_plan(), load_profile("sd855"), measurer, out,
                           budget_s=budget_s, progress=False, clock=measurer.clock,
                           adaptive=kw.pop("adaptive", False), **kw)


def point_lines(path: Path) -> list[dict[str, Any]]:
    return [r for r in (json.loads(line) for line in path.read_text().splitlines())
            if r["type"] == "point"]
