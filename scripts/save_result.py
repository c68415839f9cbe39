"""Run a search the way the explorer's Search tab does and save it as a result file the
explorer lists (dashboards/results/).

    .venv/bin/python scripts/save_result.py resnet18 sd855 --threads 4 --pareto \
        --out dashboards/results/resnet18_sd855_cpu4_pareto.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grimsim.errors import GrimsimError
from grimsim.explorer.data import Queries, saved_result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="zoo name")
    ap.add_argument("device", help="device profile name")
    ap.add_argument("--unit", choices=("cpu", "gpu"), default="cpu")
    ap.add_argument("--threads", type=int, default=4)
    goal = ap.add_mutually_exclusive_group(required=True)
    goal.add_argument("--latency-ms", type=float)
    goal.add_argument("--max-loss", type=float)
    goal.add_argument("--pareto", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    mode, target = (("latency", args.latency_ms) if args.latency_ms is not None else
                    ("loss", args.max_loss) if args.max_loss is not None else ("pareto", None))
    try:
        store = Queries().run_search(args.model, args.device, args.unit, args.threads, mode,
                                     target)
    except GrimsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(saved_result(store), indent=1) + "\n")
    res = store["result"]
    print(f"{args.out}: {res['objective']} {1e3 * res['latency_s']:.3g} ms, loss "
          f"{res['loss']:.4g}, {len(res['pareto'])} Pareto points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
