"""How reproducible is one calibration measurement on this machine?

    .venv/bin/python benchmarks/measurement_noise.py [--units 48] [--rounds 6]
        [--min-time-s 0.01] [--md benchmarks/fidelity.md]

Takes ``--units`` calibration units (headline schemes on plan shapes, spread evenly over
the analytical model's predicted time, calls up to 20 ms) and times each of them at 1 and 2
threads once per round, for ``--rounds`` rounds in a fresh random order each (so two timings
of a point lie several seconds apart, as the passes of ``grimsim calibrate`` do), with the
calibration's own ``KernelMeasurer``. Reports, per thread count and statistic:

- one pass: the share of pairs of single timings of the same point that agree within +-5 and
  +-10 %, and the RMS relative gap of one timing from the point's median over the rounds;
- three passes: the same agreement between the minimum over rounds 1, 3, 5 and the minimum
  over rounds 2, 4, 6 (what ``--passes 3`` keeps);
- the CPU pressure during the timings (Linux PSI: share of the time other tasks waited for a
  CPU), so a busy machine shows.

Writes the "Measurement noise" section of ``benchmarks/fidelity.md`` and
``benchmarks/results/measurement_noise.json`` (``{"rows", "_meta"}``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from grimsim.calibration.measure import KernelMeasurer, TimingOptions, unit_rows
from grimsim.calibration.plan import PlanUnit, build_plan
from grimsim.calibration.run import resolve_profile
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.meta import run_meta

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity_host import EXCLUDE, machine, replace_section

HERE = Path(__file__).resolve().parent
SECTION = "measurement_noise"
SCHEMES = ("dense", "unstructured:0.75", "bcr:16x32:0.75", "bcr:8x16:0.9", "nm:2:4")
THREADS = (1, 2)


def pick_units(n: int, seed: int) -> tuple[list[PlanUnit], list[list[str]]]:
    """``n`` plan units evenly spread over log predicted time (calls up to 20 ms) and the
    kernel the analytical model names for each at each thread count."""
    plan = build_plan(EXCLUDE.split(","), THREADS, schemes=SCHEMES, space_filling=96,
                      seed=seed)
    model = AnalyticalCPUModel(resolve_profile("host"), cache_state="warm")
    units = list(plan.units)
    est = model.estimate(unit_rows([u for u in units for _ in THREADS],
                                   [t for _ in units for t in THREADS]))
    lat = est.latency_s.reshape(len(units), len(THREADS))
    kernels = np.asarray(est.kernel, dtype=object).reshape(len(units), len(THREADS))
    ok = np.flatnonzero(lat.max(axis=1) <= 0.02)
    order = ok[np.argsort(lat[ok, 0])]
    take = np.unique(np.linspace(0, order.size - 1, min(n, order.size)).round().astype(int))
    return ([units[int(order[i])] for i in take],
            [[str(k) for k in kernels[int(order[i])]] for i in take])


def timings(units: list[PlanUnit], kernels: list[list[str]], rounds: int, min_time_s: float,
            seed: int) -> dict[str, list[list[dict[str, Any]]]]:
    """{unit key: [round][thread index] -> {min_s, median_s, cpu_pressure}}."""
    measurer = KernelMeasurer(TimingOptions(min_time_s=min_time_s), seed=seed)
    rng = np.random.default_rng(seed)
    out: dict[str, list[list[dict[str, Any]]]] = {u.key: [] for u in units}
    t0 = time.monotonic()
    for r in range(rounds):
        for i in rng.permutation(len(units)):
            ms = measurer.measure(units[i], THREADS, kernels[i])
            out[units[i].key].append([{"min_s": m.min_s, "median_s": m.median_s,
                                       "cpu_pressure": m.cpu_pressure} for m in ms])
        print(f"round {r + 1}/{rounds}: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return out


def _share(gaps: list[float], tol: float) -> float:
    return float(np.mean(np.asarray(gaps) <= math.log1p(tol))) if gaps else float("nan")


def analyse(data: dict[str, list[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    rows = []
    for ti, t in enumerate(THREADS):
        for stat in ("min_s", "median_s"):
            pair_gaps: list[float] = []
            rel: list[float] = []
            best_gaps: list[float] = []
            pressure: list[float] = []
            for rounds in data.values():
                v = np.asarray([r[ti][stat] for r in rounds])
                pressure += [r[ti]["cpu_pressure"] for r in rounds
                             if r[ti]["cpu_pressure"] is not None]
                pair_gaps += [abs(math.log(a / b)) for a, b in itertools.combinations(v, 2)]
                rel += list(v / np.median(v) - 1.0)
                if v.size >= 6:
                    best_gaps.append(abs(math.log(v[0:6:2].min() / v[1:6:2].min())))
            rows.append({
                "threads": t, "statistic": stat, "points": len(data),
                "one_pass_agree_5": _share(pair_gaps, 0.05),
                "one_pass_agree_10": _share(pair_gaps, 0.10),
                "one_pass_rms": float(np.sqrt(np.mean(np.square(rel)))),
                "three_pass_min_agree_5": _share(best_gaps, 0.05),
                "three_pass_min_agree_10": _share(best_gaps, 0.10),
                "cpu_pressure_median": float(np.median(pressure)) if pressure else None,
                "contended_share": float(np.mean(np.asarray(pressure) > 0.1))
                if pressure else None})
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.0f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--min-time-s", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--md", default=str(HERE / "fidelity.md"))
    ap.add_argument("--json", default=str(HERE / "results" / "measurement_noise.json"))
    args = ap.parse_args(argv)
    info = machine()
    units, kernels = pick_units(args.units, args.seed)
    t0 = time.monotonic()
    data = timings(units, kernels, args.rounds, args.min_time_s, args.seed)
    seconds = time.monotonic() - t0
    rows = analyse(data)
    lines = [
        "## Measurement noise (how well one calibration timing repeats)", "",
        f"Machine: {info['cpu']} ({info['simd']}, {info['hardware_threads']} hardware threads, "
        f"{info['threads_backend']}); {run_meta()['created']}, {seconds:.0f} s.",
        f"{len(units)} units ({', '.join(SCHEMES)}; calls up to 20 ms) timed at 1 and 2 "
        f"threads in {args.rounds} rounds of one {args.min_time_s * 1e3:.0f} ms pass each, in "
        "a new random order per round (timings of a point several seconds apart).",
        f"Reproduce: `.venv/bin/python benchmarks/measurement_noise.py --units {args.units} "
        f"--rounds {args.rounds}`", "",
        "| threads | statistic | one pass: pairs within 5% | within 10% | RMS gap to the "
        "point's median | min of 3 passes vs min of 3: within 5% | within 10% | CPU pressure "
        "(median) | timings under contention |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['threads']} | `{r['statistic']}` | {_pct(r['one_pass_agree_5'])} | "
                     f"{_pct(r['one_pass_agree_10'])} | {_pct(r['one_pass_rms'])} | "
                     f"{_pct(r['three_pass_min_agree_5'])} | "
                     f"{_pct(r['three_pass_min_agree_10'])} | "
                     f"{_pct(r['cpu_pressure_median'])} | {_pct(r['contended_share'])} |")
    body = "\n".join(lines)
    replace_section(Path(args.md), SECTION, body, "Cost-model fidelity")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(
        {"rows": rows, "_meta": run_meta(machine=info["cpu"], blas=info["blas"],
                                         units=[u.key for u in units])},
        indent=1) + "\n", encoding="utf-8")
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
