"""Fixed cost of one kernel call on this machine, for ``call_cycles`` in
``grimsim/cost/kernel_params.py``.

Times each kernel on tiny GEMMs (M, K, N of 8-64, where a call is well under a microsecond
of work) on one thread with the C++ harness, in interleaved rounds keeping each shape's
fastest call, and fits time = fixed + per-MAC x kept MACs by least squares: the intercept is
the call's fixed cost (argument checks, the driver's set-up, the thread pool's bypass),
given in seconds and in cycles of the host profile's measured clock.

    .venv/bin/python benchmarks/call_overhead.py [--rounds 5] [--out FILE]

Writes ``benchmarks/call_overhead.md`` (machine, date, table) unless ``--out -``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from grimsim import load_device
from grimsim.cost.analytical_cpu import cpu_machine
from grimsim.execute.kernels import PreparedGemm, prepare
from grimsim.meta import run_meta
from grimsim.pruning import encode, make_mask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity_host import machine  # the benchmarks' shared machine line

SHAPES = ((8, 16, 16), (16, 16, 16), (16, 32, 32), (32, 32, 16), (16, 64, 32), (32, 64, 64),
          (64, 64, 32))
SPECS = ("dense", "bcr:8x16:0.5", "bcr:16x32:0.75", "unstructured:0.5", "unstructured:0.9",
         "nm:2:4", "nm:1:8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--out", default=str(Path(__file__).with_name("call_overhead.md")))
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    clock_hz = cpu_machine(load_device("host")).clock_hz
    rng = np.random.default_rng(0)
    # per spec: (prepared kernel, X, kept MACs) of each shape
    cases: dict[str, list[tuple[PreparedGemm, np.ndarray, int]]] = {}
    for spec in SPECS:
        for m, k, n in SHAPES:
            w = rng.standard_normal((m, k)).astype(np.float32)
            mask = make_mask(w, spec)
            cases.setdefault(spec, []).append(
                (prepare(encode(w, mask, spec)), rng.standard_normal((k, n)).astype(np.float32),
                 int(mask.sum()) * n))
    best = {spec: [math.inf] * len(SHAPES) for spec in SPECS}
    for rnd in range(args.rounds):
        for spec, runs in cases.items():
            for i, (kernel, x, _) in enumerate(runs):
                best[spec][i] = min(best[spec][i], float(
                    kernel.bench(x, 1, warmup=50, min_time_s=0.01)["min_s"]))
        print(f"round {rnd + 1}/{args.rounds}", file=sys.stderr, flush=True)
    info = machine()
    lines = [
        "# Fixed cost of a kernel call",
        "",
        f"Machine: {info['cpu']} ({info['simd']}); clock {clock_hz / 1e9:.2f} GHz (the host "
        f"profile's measured one); {run_meta()['created']}.",
        f"Reproduce: `.venv/bin/python benchmarks/call_overhead.py --rounds {args.rounds}`",
        "",
        "One thread, fastest call of each shape over the rounds; fixed cost = intercept of a "
        "least-squares line of time against kept MACs over the shapes "
        f"({', '.join(f'{m}x{k}x{n}' for m, k, n in SHAPES)}).",
        "",
        "| kernel | spec | fastest call | fixed cost | cycles | per kept MAC |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for spec, runs in cases.items():
        t = np.array(best[spec])
        macs = np.array([kept for _, _, kept in runs], dtype=np.float64)
        fixed, per_mac = np.linalg.lstsq(np.c_[np.ones(t.size), macs], t, rcond=None)[0]
        lines.append(f"| {runs[0][0].kernel} | `{spec}` | {t.min() * 1e9:.0f} ns | "
                     f"{fixed * 1e9:.0f} ns | {fixed * clock_hz:.0f} | "
                     f"{per_mac * 1e12:.1f} ps |")
    report = "\n".join(lines) + "\n"
    if args.out != "-":
        Path(args.out).write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
