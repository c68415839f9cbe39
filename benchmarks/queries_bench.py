"""Query throughput of the analytical CPU model: rows per second, batched, distinct rows.

Builds 1e6 distinct rows (random GEMM and conv shapes under dense, Winograd-eligible 3x3
convs, depthwise, BCR, CSR, N:M and pattern; expected-mask statistics), shuffles them so the
kernel families interleave, and times one ``estimate`` call over the whole batch on a fresh
model (nothing memoised: every row is new to it). Building the rows is timed separately.

    .venv/bin/python benchmarks/queries_bench.py [--rows 1000000] [--device host]

Writes ``benchmarks/queries.md`` (machine, date, figures) unless ``--out -``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from grimsim.api import load_device
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.profile import DeviceProfile
from grimsim.cost.rows import CostRows, gemm_rows
from grimsim.network.workload import Op


def build_rows(n: int, seed: int = 0) -> CostRows:
    rng = np.random.default_rng(seed)
    parts = []
    per = n // 8

    def shapes(count: int, k_mult: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = rng.integers(8, 2048, count)
        k = rng.integers(4, 1024, count) * k_mult
        nn = rng.integers(1, 4096, count)
        return m, k, nn

    threads = rng.integers(1, 5, per)
    for spec in ("dense", "bcr:16x32:0.75", "unstructured:0.8", "nm:2:4"):
        m, k, nn = shapes(per)
        parts.append(gemm_rows(m, k, nn, spec, threads=threads))
    hw = rng.integers(2, 112, per)
    cin = rng.integers(3, 512, per)
    for spec in ("dense", "pattern:4", "bcr:8x8:0.6"):
        parts.append(gemm_rows(rng.integers(8, 512, per), cin * 9, hw * hw, spec, op=Op.CONV,
                               kernel=(3, 3), out_hw=(hw, hw), padded=True, threads=threads))
    rest = n - 7 * per
    ch = rng.integers(8, 1024, rest)
    hw2 = rng.integers(2, 112, rest)
    parts.append(gemm_rows(ch, 9, hw2 * hw2, op=Op.DWCONV, groups=ch, kernel=(3, 3),
                           out_hw=(hw2, hw2), padded=True, threads=rng.integers(1, 5, rest)))
    rows = CostRows.concat(parts)
    return rows.take(rng.permutation(len(rows)))


def _with_correction(profile: DeviceProfile, n: int, repeats: int) -> list[str]:
    """Rows/s of the calibrated model (analytical model + learned correction) on ``n``
    distinct BCR rows with random M, K, N and 1-4 threads (rows on several threads cost one
    more analytical pass: the correction compares them with one thread); a fresh model per
    run."""
    from grimsim.cost.learned import load_cost_model

    rng = np.random.default_rng(1)
    rows = gemm_rows(rng.integers(16, 4096, n), rng.integers(32, 4096, n),
                     rng.integers(1, 4096, n), "bcr:16x32:0.75",
                     threads=rng.integers(1, 5, n))
    load_cost_model(profile).estimate(rows.take(np.arange(1000)))
    times = []
    for _ in range(repeats):
        model = load_cost_model(profile)
        t0 = time.perf_counter()
        est = model.estimate(rows)
        times.append(time.perf_counter() - t0)
        assert len(est) == n and np.all(est.latency_s > 0)
    best = min(times)
    return ["## With the learned correction", "",
            f"- model: {est.provenance} on {n:,} "
            f"`bcr:16x32:0.75` rows with random M, K, N and 1-4 threads "
            "(`grimsim.cost.rows.gemm_rows`)",
            f"- best of {repeats} runs {best:.3f} s -> **{n / best:,.0f} rows/s** (all runs: "
            f"{', '.join(f'{t:.3f}' for t in times)} s)",
            "- target (issue 5): >= 2e5 rows/s with the correction"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--device", default="host")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs (fresh model each)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("queries.md")))
    ap.add_argument("--correction-rows", type=int, default=200_000,
                    help="distinct bcr:16x32:0.75 rows timed with the profile's learned "
                         "correction (0: skip; skipped too when the profile has none)")
    args = ap.parse_args(argv)
    profile = load_device(args.device)
    t0 = time.perf_counter()
    rows = build_rows(args.rows)
    build_s = time.perf_counter() - t0
    keys = np.stack([rows.M, rows.K, rows.N, rows.scheme.astype(np.int64),
                     rows.threads.astype(np.int64), rows.op.astype(np.int64)], axis=1)
    distinct = len(np.unique(keys, axis=0))
    AnalyticalCPUModel(profile).estimate(build_rows(1000, seed=99))  # imports, first calls
    times, cpu = [], []
    for _ in range(args.repeats):
        model = AnalyticalCPUModel(profile)
        t0, c0 = time.perf_counter(), time.process_time()
        est = model.estimate(rows)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert len(est) == len(rows) and np.all(est.latency_s > 0)
    best = min(times)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    kernels, counts = np.unique(est.kernel.astype(str), return_counts=True)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Cost-query throughput (analytical CPU model)", "",
        f"- machine: {platform.node()} / {platform.machine()}, profile {profile}",
        f"- date: {now}; numpy {np.__version__}, Python {platform.python_version()}",
        f"- command: `.venv/bin/python benchmarks/queries_bench.py --rows {args.rows} "
        f"--repeats {args.repeats}`",
        f"- rows: {len(rows)} ({distinct} distinct (M, K, N, scheme, threads, op)), built in "
        f"{build_s:.2f} s ({len(rows) / build_s:,.0f} rows/s, expected-mask statistics)",
        f"- estimate: best of {args.repeats} runs {best:.3f} s wall -> **{len(rows) / best:,.0f} "
        f"rows/s** (all runs: {', '.join(f'{t:.3f}' for t in times)} s); CPU time of the "
        f"process {min(cpu):.3f} s -> {len(rows) / min(cpu):,.0f} rows per CPU-second "
        f"(one thread; load average {load:.1f} on {os.cpu_count()} CPUs during the run)",
        "- kernels in the batch: " + ", ".join(f"{k} {c}" for k, c in
                                              zip(kernels, counts, strict=True)),
        "- target (issue 5): >= 1e6 rows/s analytical",
    ]
    if args.correction_rows > 0 and profile.calibration is not None:
        lines += ["", *_with_correction(profile, args.correction_rows, args.repeats)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
