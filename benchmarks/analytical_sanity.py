"""Sanity check of the analytical CPU model against grimsim's kernels on this machine.

Times a handful of shapes per kernel family with the C++ harness (warm caches: the kernel is
repeated without flushing, so the model runs with ``cache_state="warm"``), prints measured vs
predicted, and the per-family efficiency that would make the median ratio 1 (what
``grimsim/cost/kernel_params.py`` records). This is a sanity check, not a fit: the learned
correction is trained on a calibration sweep elsewhere.

    .venv/bin/python benchmarks/analytical_sanity.py [--quick] [--threads 1,2] [--out FILE]

Writes ``benchmarks/analytical_sanity.md`` (machine, date, table) unless ``--out -``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grimsim._kernels as K  # noqa: N812 (short name for the many bench calls)
import numpy as np

from grimsim.api import load_device
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.kernel_params import CPU_KERNELS, DEFAULT_PARAMS
from grimsim.cost.rows import CostRows, gemm_rows
from grimsim.network.workload import Op
from grimsim.pruning import encode, make_mask, parse_spec

RNG = np.random.default_rng(0)


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


@dataclasses.dataclass
class Case:
    label: str
    family: str
    rows: CostRows
    run: Callable[[int], dict[str, Any]]


def _bench_opts(quick: bool) -> dict[str, Any]:
    return {"min_time_s": 0.03 if quick else 0.1, "warmup": 1, "max_reps": 200}


def dense_cases(opts: dict[str, Any]) -> list[Case]:
    out = []
    for m, k, n in [(256, 256, 256), (128, 1152, 784), (512, 2304, 49), (768, 768, 128),
                    (64, 64, 49), (1024, 1024, 1), (1000, 512, 1)]:
        w, x = _f32(m, k), _f32(k, n)
        fam = "gemv" if n == 1 else "gemm"
        out.append(Case(f"dense {m}x{k}x{n}", fam, gemm_rows(m, k, n),
                        lambda t, w=w, x=x: K.bench_dense(w, x, threads=t, **opts)))
    return out


def conv_cases(opts: dict[str, Any]) -> list[Case]:
    out = []
    # (cin, h, cout, kernel, stride, pad)
    for cin, h, cout, kk, s, pad in [(64, 56, 64, 3, 1, 1), (64, 56, 128, 3, 2, 1),
                                     (256, 14, 256, 3, 1, 1), (3, 224, 64, 7, 2, 3),
                                     (128, 28, 256, 1, 2, 0)]:
        x = _f32(1, cin, h, h)
        w2d = _f32(cout, cin * kk * kk)
        oh = (h + 2 * pad - kk) // s + 1
        rows = gemm_rows(cout, cin * kk * kk, oh * oh, op=Op.CONV, kernel=(kk, kk), stride=s,
                         out_hw=(oh, oh), padded=pad > 0)
        rows = dataclasses.replace(rows, winograd=np.zeros(1, bool), _checked=False)
        out.append(Case(f"conv im2col {cin}x{h}x{h} -> {cout} k{kk} s{s}", "im2col+gemm", rows,
                        lambda t, x=x, w=w2d, kk=kk, s=s, pad=pad: K.bench_conv2d_gemm(
                            x, w, kernel=kk, stride=s, pad=pad, threads=t, **opts)))
    for cin, h, cout in [(64, 56, 64), (128, 28, 128), (256, 14, 256), (512, 7, 512),
                         (32, 112, 32)]:
        x = _f32(1, cin, h, h)
        w = _f32(cout, cin, 3, 3)
        rows = gemm_rows(cout, cin * 9, h * h, op=Op.CONV, kernel=(3, 3), out_hw=(h, h),
                         padded=True)
        out.append(Case(f"winograd {cin}x{h}x{h} -> {cout}", "winograd", rows,
                        lambda t, x=x, w=w: K.bench_winograd(x, w, pad=1, threads=t, **opts)))
    for c, h, s in [(32, 112, 1), (144, 56, 2), (576, 14, 1), (960, 7, 1)]:
        x = _f32(1, c, h, h)
        w = _f32(c, 1, 3, 3)
        oh = (h + 2 - 3) // s + 1
        rows = gemm_rows(c, 9, oh * oh, op=Op.DWCONV, groups=c, kernel=(3, 3), stride=s,
                         out_hw=(oh, oh), padded=True)
        out.append(Case(f"depthwise {c}x{h}x{h} s{s}", "depthwise", rows,
                        lambda t, x=x, w=w, s=s: K.bench_depthwise(x, w, stride=s, pad=1,
                                                                   threads=t, **opts)))
    return out


def _sparse_rows(m: int, k: int, n: int, spec: str, w: np.ndarray, kernel: Any) -> CostRows:
    op = Op.CONV if kernel is not None else Op.FC
    rows = gemm_rows(m, k, n, spec, op=op, kernel=kernel or (1, 1),
                     out_hw=(n, 1) if kernel else None)
    # the sparse kernels are timed on an already unfolded X: no im2col pass
    rows = dataclasses.replace(rows, im2col=np.zeros(1, bool), winograd=np.zeros(1, bool),
                               _checked=False)
    # statistics from the real mask, like rows_for(weights=...)
    from grimsim.network.workload import GemmView
    from grimsim.pruning import sparse_workload
    sw = sparse_workload(GemmView("g", m, k, n, kernel=kernel), spec, w)
    cols = {"nnz": [sw.nnz], "n_blocks": [sw.n_blocks], "rows_mean": [sw.rows_per_block.mean],
            "cols_mean": [sw.cols_per_block.mean], "work_mean": [sw.row_work.mean],
            "work_max": [sw.row_work.max], "format_bytes": [sw.format_bytes],
            "sparsity": [sw.sparsity]}
    return dataclasses.replace(rows, **{k2: np.asarray(v) for k2, v in cols.items()},
                               _checked=False)


def sparse_cases(opts: dict[str, Any]) -> list[Case]:
    out = []
    shapes = [(256, 2304, 196, None), (512, 512, 3136, None), (768, 768, 128, None),
              (1024, 1024, 1, None), (128, 1152, 784, (3, 3))]
    specs = ["bcr:16x32:0.75", "bcr:16x32:0.9", "bcr:4x16:0.5", "unstructured:0.75",
             "unstructured:0.9", "nm:2:4", "pattern:4", "filter:0.5"]
    for m, k, n, kernel in shapes:
        w = _f32(m, k)
        x = _f32(k, n)
        for spec in specs:
            s = parse_spec(spec)
            if s.kind == "pattern" and kernel is None:
                continue
            mask = make_mask(w, s, kernel=kernel)
            fmt = encode(w, mask, s, kernel=kernel)
            rows = _sparse_rows(m, k, n, spec, w, kernel)
            fam = {"unstructured": "csr", "nm": "nm", "pattern": "pattern"}.get(s.kind, "bcr")
            if fam == "bcr":
                packed = K.bcr_pack(fmt.block_row_ptr, fmt.block_col, fmt.row_ptr, fmt.row_idx,
                                    fmt.col_ptr, fmt.col_idx, fmt.val_ptr, fmt.values,
                                    fmt.reorder, fmt.shape, fmt.block)

                def run(t: int, p: Any = packed, x: np.ndarray = x) -> dict[str, Any]:
                    return K.bench_bcr_packed(p, x, threads=t, **opts)
            elif fam == "csr":
                def run(t: int, f: Any = fmt, x: np.ndarray = x) -> dict[str, Any]:
                    return K.bench_csr(f.indptr, f.indices, f.data, f.shape, x, threads=t,
                                       **opts)
            elif fam == "nm":
                def run(t: int, f: Any = fmt, x: np.ndarray = x) -> dict[str, Any]:
                    return K.bench_nm(f.values, f.indices, f.n, f.m, f.shape, x, threads=t,
                                      **opts)
            else:
                def run(t: int, f: Any = fmt, x: np.ndarray = x) -> dict[str, Any]:
                    return K.bench_pattern(f.library, f.kernel_ptr, f.kernel_channel,
                                           f.kernel_pattern, f.values, f.filter_order,
                                           f.shape, x, threads=t, **opts)
            out.append(Case(f"{spec} {m}x{k}x{n}", fam, rows, run))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter timings")
    ap.add_argument("--threads", default="1",
                    help="thread counts, comma-separated (on a shared, loaded VM multi-thread "
                         "timings stall in the OpenMP barriers and mean little)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("analytical_sanity.md")))
    ap.add_argument("--only", default="", help="families to run, comma-separated")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    args = ap.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    profile = load_device("host")
    opts = _bench_opts(args.quick)
    cases = dense_cases(opts) + conv_cases(opts) + sparse_cases(opts)
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c.family in keep]
    unit_eff = dataclasses.replace(DEFAULT_PARAMS,
                                   efficiency=dict.fromkeys(CPU_KERNELS, 1.0))
    raw_model = AnalyticalCPUModel(profile, cache_state="warm", params=unit_eff)
    model = AnalyticalCPUModel(profile, cache_state="warm")
    # The dev VM is shared: interleaved rounds, keeping each case's fastest, filter out the
    # time slices other processes took.
    best: dict[tuple[int, int], float] = {}
    for rnd in range(args.rounds):
        for i, case in enumerate(cases):
            for t in threads:
                meas = float(case.run(t)["min_s"])
                best[(i, t)] = min(best.get((i, t), math.inf), meas)
        print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    results = []
    for i, case in enumerate(cases):
        for t in threads:
            rows = case.rows.with_threads(t)
            meas = best[(i, t)]
            raw = raw_model.estimate(rows)
            est = model.estimate(rows)
            results.append({"case": case.label, "family": case.family, "threads": t,
                            "kernel": str(est.kernel[0]), "measured_s": meas,
                            "predicted_s": float(est.latency_s[0]),
                            "raw": raw.row(0), "bound": est.row(0).bound})
            r = results[-1]
            print(f"{case.label:44s} t{t} {r['kernel']:12s} meas {meas * 1e3:8.3f} ms  "
                  f"pred {r['predicted_s'] * 1e3:8.3f} ms  ratio "
                  f"{r['predicted_s'] / meas:5.2f}  ({r['bound']})", flush=True)
    lines = _report(results, profile)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


def _fit_efficiency(rs: list[dict[str, Any]]) -> float:
    """Efficiency e making the median of predicted/measured 1, where only the compute and
    side cycles scale with 1/e (grid search)."""
    best, best_err = 1.0, math.inf
    for e in np.linspace(0.15, 1.5, 271):
        ratios = []
        for r in rs:
            raw = r["raw"]
            compute = raw.compute_s / e
            big = max(compute, raw.memory_s)
            small = min(compute, raw.memory_s)
            over = raw.overhead_s  # side cycles are in overhead; approximate as unscaled
            pred = big + DEFAULT_PARAMS.overlap_penalty * small + over
            ratios.append(math.log(pred / r["measured_s"]))
        err = abs(statistics.median(ratios))
        if err < best_err:
            best, best_err = float(e), err
    return best


def _report(results: list[dict[str, Any]], profile: Any) -> list[str]:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Analytical CPU model: sanity check on this machine", "",
             f"- machine: {platform.node()} / {platform.processor() or platform.machine()}, "
             f"profile {profile} (SIMD tier {K.simd_level()}, {K.parallel_backend()})",
             f"- date: {now}",
             "- kernels timed with the C++ harness (min of repeated runs over interleaved "
             "rounds, warm caches); model with cache_state='warm'",
             "- command: `.venv/bin/python benchmarks/analytical_sanity.py`", "",
             "| case | threads | kernel | measured ms | predicted ms | pred/meas | bound |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['case']} | {r['threads']} | {r['kernel']} | "
                     f"{r['measured_s'] * 1e3:.3f} | {r['predicted_s'] * 1e3:.3f} | "
                     f"{r['predicted_s'] / r['measured_s']:.2f} | {r['bound']} |")
    single = [r for r in results if r["threads"] == 1] or results
    lines += ["", f"Summary over the {len(single)} single-thread rows:", "",
              "| family | rows | median pred/meas | within x1.5 | within x2 | "
              "efficiency making the median 1 (current) |", "|---|---|---|---|---|---|"]
    fams = sorted({r["family"] for r in single})
    all_ratios = []
    for fam in fams:
        rs = [r for r in single if r["family"] == fam]
        ratios = [r["predicted_s"] / r["measured_s"] for r in rs]
        all_ratios += ratios
        w15 = sum(1 / 1.5 <= x <= 1.5 for x in ratios) / len(ratios)
        w2 = sum(0.5 <= x <= 2 for x in ratios) / len(ratios)
        eff = _fit_efficiency(rs)
        cur = DEFAULT_PARAMS.efficiency.get(fam, float("nan"))
        lines.append(f"| {fam} | {len(rs)} | {statistics.median(ratios):.2f} | {w15:.0%} | "
                     f"{w2:.0%} | {eff:.2f} ({cur:.2f}) |")
    logs = [math.log(x) for x in all_ratios]
    mape = statistics.mean(abs(x - 1) for x in all_ratios)
    lines += ["", f"All {len(all_ratios)} single-thread rows: median pred/meas "
              f"{statistics.median(all_ratios):.2f}, geometric-mean error "
              f"x{math.exp(statistics.mean(abs(v) for v in logs)):.2f}, MAPE {mape:.0%}, "
              f"within x2: {sum(0.5 <= x <= 2 for x in all_ratios) / len(all_ratios):.0%}"]
    return lines


if __name__ == "__main__":
    sys.exit(main())
