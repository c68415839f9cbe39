"""Cheap ops (pooling, permutes, resizes, softmax, activations, concat, ...): measured here
as ``grimsim run`` runs them, against the analytical model.

Every non-GEMM layer of ncnn's 27 benchmark networks (``shared/reference/ncnn/models``) is
run with the runner's kernel or stand-in (``grimsim.execute.cheap_ops``) on one thread, warm
(the fastest call of three 10 ms timings a pass over all networks apart), and predicted by
the host profile's analytical model.
Per op kind the table gives the totals, the spread of measured / predicted, and the cycles
per output value the model leaves unexplained (median over the layers): the figure
``KernelParams.cheap_cycles_per_value`` records for the kinds whose kernel does more than
one vector op per value (gathers, transposes, short rows, window reductions).

    .venv/bin/python benchmarks/cheap_ops.py [--out benchmarks/cheap_ops.md]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import json
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import grimsim._kernels as K  # noqa: N812
import numpy as np
from threadpoolctl import threadpool_info

from grimsim.api import load_device, load_network
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.kernel_params import DEFAULT_PARAMS, KernelParams
from grimsim.cost.network import estimate_network
from grimsim.cost.profile import DeviceProfile
from grimsim.execute.cheap_ops import cheap_op
from grimsim.network.graph import Network

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "ncnn" / "models"


def load_networks(models: Path) -> dict[str, Network]:
    """The networks of every ``.param`` file in ``models``, by file stem (parsed once)."""
    return {path.stem: load_network(str(path)) for path in sorted(models.glob("*.param"))}


def predictions(nets: dict[str, Network], profile: DeviceProfile,
                params: KernelParams = DEFAULT_PARAMS) -> dict[tuple[str, str], float]:
    """Predicted seconds of every layer of the networks by the analytical model under
    ``params`` (cheap layers get no learned correction, calibrated profile or not)."""
    model = AnalyticalCPUModel(profile, params=params)
    return {(name, le.name): le.latency_s for name, net in nets.items()
            for le in estimate_network(net, model, threads=1).layers}


def collect(nets: dict[str, Network], profile: DeviceProfile, min_time_s: float,
            rounds: int) -> list[dict[str, Any]]:
    """Every cheap layer timed once per round (rounds a network apart, so a busy spell on
    the shared machine does not hit all of them); its fastest round is kept."""
    predicted = predictions(nets, profile)
    plans = []
    for name, net in nets.items():
        rng = np.random.default_rng(0)
        for layer in net.layers():
            if layer.gemms or (name, layer.name) not in predicted:
                continue
            op = cheap_op(layer, rng)
            if op is None:
                continue
            values_out = sum(int(np.prod(s)) for s in layer.output_shapes)
            plans.append(({"model": name, "layer": layer.name, "op": layer.op,
                           "kernel": op.kernel, "values_out": values_out,
                           "measured_s": float("inf"),
                           "predicted_s": predicted[(name, layer.name)]}, op.fn))
    for _ in range(rounds):
        for row, fn in plans:
            timing = K.time_callable(fn, threads=1, min_time_s=min_time_s, warmup=1)
            row["measured_s"] = min(row["measured_s"], timing["min_s"])
    return [row for row, _ in plans]


def fit(nets: dict[str, Network], profile: DeviceProfile, rows: list[dict[str, Any]],
        steps: int = 24) -> dict[str, float]:
    """Per op kind, the cheap_cycles_per_value that makes the median measured / predicted of
    its layers 1 (bisection on all kinds at once: a kind's value moves only its rows)."""
    ops = sorted({r["op"] for r in rows})
    lo = dict.fromkeys(ops, 0.0)
    hi = dict.fromkeys(ops, 64.0)
    for _ in range(steps):
        mid = {op: (lo[op] + hi[op]) / 2 for op in ops}
        pred = predictions(nets, profile,
                           dataclasses.replace(DEFAULT_PARAMS, cheap_cycles_per_value=mid))
        for op in ops:
            ratio = statistics.median(r["measured_s"] / pred[(r["model"], r["layer"])]
                                      for r in rows if r["op"] == op)
            if ratio > 1.0:
                lo[op] = mid[op]
            else:
                hi[op] = mid[op]
    return {op: round((lo[op] + hi[op]) / 2, 2) for op in ops}


def summarize(rows: list[dict[str, Any]], clock_hz: float) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        groups[(r["op"], r["kernel"])].append(r)
    out = []
    for (op, kernel), rs in groups.items():
        ratio = [r["measured_s"] / r["predicted_s"] for r in rs]
        residual = [max(0.0, r["measured_s"] - r["predicted_s"]) * clock_hz / r["values_out"]
                    for r in rs]
        out.append({"op": op, "kernel": kernel, "layers": len(rs),
                    "measured_ms": 1e3 * sum(r["measured_s"] for r in rs),
                    "predicted_ms": 1e3 * sum(r["predicted_s"] for r in rs),
                    "ratio_median": statistics.median(ratio),
                    "ratio_p10": float(np.percentile(ratio, 10)),
                    "ratio_p90": float(np.percentile(ratio, 90)),
                    "within_25pct": sum(0.8 <= x <= 1.25 for x in ratio) / len(ratio),
                    "residual_cycles_per_value": statistics.median(residual)})
    return sorted(out, key=lambda s: -s["measured_ms"])


def markdown(summary: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["# Cheap ops: measured vs the analytical model", "",
             f"Recorded {meta['date']} on {meta['machine']} ({meta['simd']}); "
             f"host profile {meta['profile']}, clock {meta['clock_ghz']:.2f} GHz.", "",
             "Command: `.venv/bin/python benchmarks/cheap_ops.py`. Every non-GEMM layer of "
             "ncnn's 27 benchmark networks, one thread, warm: per layer the fastest call of "
             f"{meta['rounds']} timings of {meta['min_time_s'] * 1e3:.0f} ms, taken a pass "
             "over all networks apart.", "",
             "| op | runs as | layers | measured ms | predicted ms | measured / predicted "
             "(median, p10-p90) | within +-25 % | unexplained cycles per value |",
             "|---|---|---:|---:|---:|---|---:|---:|"]
    for s in summary:
        lines.append(f"| {s['op']} | `{s['kernel']}` | {s['layers']} | {s['measured_ms']:.3f} "
                     f"| {s['predicted_ms']:.3f} | {s['ratio_median']:.2f} "
                     f"({s['ratio_p10']:.2f}-{s['ratio_p90']:.2f}) | "
                     f"{100 * s['within_25pct']:.0f} % | "
                     f"{s['residual_cycles_per_value']:.2f} |")
    total_m = sum(s["measured_ms"] for s in summary)
    total_p = sum(s["predicted_ms"] for s in summary)
    lines += ["", f"All layers: measured {total_m:.2f} ms, predicted {total_p:.2f} ms.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=MODELS)
    ap.add_argument("--min-time-s", type=float, default=0.01)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).with_name("cheap_ops.md")),
                    help="markdown file to write ('-' prints only)")
    ap.add_argument("--fit", action="store_true",
                    help="also print the cheap_cycles_per_value that fit these measurements")
    args = ap.parse_args(argv)
    if not args.models.is_dir():
        print(f"no models at {args.models}: pass --models DIR (ncnn .param files)",
              file=sys.stderr)
        return 2
    profile = load_device("host")
    clock = profile.clusters_big_first()[0].max_clock_ghz
    nets = load_networks(args.models)
    rows = collect(nets, profile, args.min_time_s, args.rounds)
    summary = summarize(rows, clock * 1e9)
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} / {platform.processor() or platform.machine()}",
            "simd": f"{K.simd_level()}, {K.parallel_backend()}",
            "profile": profile.id, "clock_ghz": clock, "min_time_s": args.min_time_s,
            "rounds": args.rounds,
            "blas": blas}
    text = markdown(summary, meta)
    print(text)
    if args.fit:
        fitted = fit(nets, profile, rows)
        print("cheap_cycles_per_value fitted here:", json.dumps(fitted))
        meta["fitted_cheap_cycles_per_value"] = fitted
    if args.out != "-":
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(
            json.dumps({"summary": summary, "rows": rows, "_meta": meta}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
