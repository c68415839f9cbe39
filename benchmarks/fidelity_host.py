"""Host fidelity: calibrate this machine, fit, and record the held-out report.

    .venv/bin/python benchmarks/fidelity_host.py [--budget-s 600] [--out DIR]
        [--exclude-networks googlenet,alexnet,mobilenet_v1,bert_base] [--skip-calibrate]
        [--passes 3] [--statistic min_s] [--profile-out PATH] [--md benchmarks/fidelity.md]

Runs ``grimsim calibrate --device host`` for the budget (resuming if DIR already holds
points; each point timed in ``--passes`` separated passes, the fastest call kept), then
``grimsim fit`` (held-out split by unseen (op, M, K, N) shapes), and writes the
"Host calibration" section of ``benchmarks/fidelity.md`` and
``benchmarks/results/fidelity_host.json`` (``{"rows", "_meta"}``). Targets (issue 5): on
held-out rows under dense, unstructured, BCR and N:M at 50/75/90 %: >= 95 % within +-10 %,
RMSPE <= 7 %, and a lower RMSPE than the random-forest baseline.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from grimsim.calibration.fit import STATISTICS, FitReport, fit
from grimsim.calibration.measure import PointsFile
from grimsim.calibration.run import calibrate
from grimsim.meta import cpu_model, run_meta

HERE = Path(__file__).resolve().parent
SECTION = "fidelity_host"
EXCLUDE = "googlenet,alexnet,mobilenet_v1,bert_base"


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                         for i in threadpool_info() if i.get("user_api") == "blas") or blas
    except ImportError:
        pass
    import grimsim._kernels as kernels

    return {"cpu": cpu, "os": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas, "simd": kernels.simd_level(),
            "threads_backend": kernels.parallel_backend(),
            "hardware_threads": kernels.hardware_threads()}


def replace_section(path: Path, name: str, body: str, title: str) -> None:
    """Write ``body`` between this script's markers in ``path``, keeping other sections."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else f"# {title}\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def folder_summary(out: str) -> str:
    """What an earlier calibration left in ``out`` (for a refit with --skip-calibrate)."""
    state = PointsFile(out).load()
    first = state.sessions[0] if state.sessions else {}
    timing = first.get("timing") or {}
    return (f"Calibration: refit of the points already in {out} (--skip-calibrate): "
            f"{len(state.sessions)} session(s), the first started {first.get('started', '?')} "
            f"with a {first.get('budget_s', 0):.0f} s budget and {timing.get('passes', '?')} "
            f"passes; {len(state.points)} valid points, {state.n_drift_records} drift events.")


def verdict(report: FitReport) -> list[str]:
    head = report.heldout.get("headline", {})
    cal, rf = head.get("calibrated"), head.get("baseline_rf")
    if cal is None or cal.n == 0:
        return ["- no held-out headline rows"]
    out = [f"- >= 95 % within +-10 %: {100 * cal.within_10:.1f}% "
           f"({'met' if cal.within_10 >= 0.95 else 'NOT met'})",
           f"- RMSPE <= 7 %: {100 * cal.rmspe:.1f}% ({'met' if cal.rmspe <= 0.07 else 'NOT met'})"]
    if rf is not None:
        out.append(f"- RMSPE below the random forest's ({100 * rf.rmspe:.1f}%): "
                   f"{'met' if cal.rmspe < rf.rmspe else 'NOT met'}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=600.0)
    ap.add_argument("--out", default=str(HERE / "results" / "calibration_host"))
    ap.add_argument("--exclude-networks", default=EXCLUDE)
    ap.add_argument("--skip-calibrate", action="store_true", help="fit the points already in --out")
    ap.add_argument("--statistic", default="min_s", choices=STATISTICS,
                    help="the measurement fitted and compared (default: the fastest call over "
                         "a point's passes, the one that repeats best)")
    ap.add_argument("--passes", type=int, default=3,
                    help="passes each point is timed in, a few seconds apart")
    ap.add_argument("--profile-out", default=None,
                    help="profile YAML to write (default: the user data folder, where "
                         "--device host finds it)")
    ap.add_argument("--schemes", default=None,
                    help="comma-separated specs to sweep (default: the calibration's own list)")
    ap.add_argument("--md", default=str(HERE / "fidelity.md"))
    ap.add_argument("--json", default=str(HERE / "results" / "fidelity_host.json"))
    args = ap.parse_args(argv)
    info = machine()
    t0 = time.monotonic()
    cal = None
    if not args.skip_calibrate:
        extra = {"schemes": tuple(args.schemes.split(","))} if args.schemes else {}
        cal = calibrate("host", args.out, budget_s=args.budget_s,
                        exclude_networks=[n for n in args.exclude_networks.split(",") if n],
                        passes=args.passes, **extra)
        print(cal.summary(), file=sys.stderr)
    report = fit(args.out, args.profile_out, statistic=args.statistic)
    seconds = time.monotonic() - t0
    md = report.to_markdown()
    body = "\n".join([
        "## Host calibration (held-out shapes)", "",
        f"Machine: {info['cpu']} ({info['simd']}, {info['hardware_threads']} hardware threads, "
        f"{info['threads_backend']}); {info['os']}; run {report.created}, {seconds:.0f} s.",
        (f"Calibration: budget {args.budget_s:.0f} s, networks left out: "
         f"{args.exclude_networks}; {cal.summary()}." if cal else folder_summary(args.out)),
        f"Reproduce: `.venv/bin/python benchmarks/fidelity_host.py --budget-s "
        f"{args.budget_s:.0f} --exclude-networks {args.exclude_networks} --passes "
        f"{args.passes} --statistic {args.statistic}`", "",
        "Targets (issue 5), headline rows:", *verdict(report), "", md])
    replace_section(Path(args.md), SECTION, body, "Cost-model fidelity")
    rows = [{"subset": s, "model": m, **vars(v)} for s, d in report.heldout.items()
            for m, v in d.items()]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(
        {"rows": rows, "report": report.to_dict(),
         "_meta": run_meta(machine=info["cpu"], blas=info["blas"], device=report.profile,
                           cost_model=f"calibrated:{report.profile}")},
        indent=1, default=str) + "\n", encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
