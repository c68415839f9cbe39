"""The ``grimsim`` command line: argument parsing and output formatting only."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from typing import Any

from grimsim import __version__
from grimsim.errors import GrimsimError

log = logging.getLogger(__name__)


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _fmt_int(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for j, r in enumerate(cells):
        parts = [c.rjust(w) if right[i] else c.ljust(w) for i, (c, w) in
                 enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- zoo


def cmd_zoo(args: argparse.Namespace) -> int:
    from grimsim.network.zoo import ZOO_NAMES, zoo_entry

    entries = [zoo_entry(n) for n in ZOO_NAMES]
    if args.json:
        from grimsim.meta import run_meta

        _print_json({"networks": [{"name": e.name, "kind": e.kind,
                                   "description": e.description,
                                   "input_shape": list(e.input_shape),
                                   "published_params": e.published_params,
                                   "published_params_source": e.params_source,
                                   "published_macs": e.published_macs,
                                   "published_macs_source": e.macs_source,
                                   "published_macs_input_shape": list(e.macs_input_shape),
                                   "definition": e.source} for e in entries],
                     "_meta": run_meta()})
        return 0
    rows = [(e.name, e.kind, "x".join(map(str, e.input_shape)), e.description)
            for e in entries]
    print(_table(["name", "kind", "input", "description"], rows, [False] * 4))
    return 0


# --------------------------------------------------------------------------- info


def _load(args: argparse.Namespace) -> Any:
    from grimsim.api import load_network

    return load_network(args.model, input_shape=args.input, seq_len=args.seq_len)


def _scheme_columns(net: Any, spec: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per prunable GEMM row: reached sparsity, format bytes and proxy under ``spec``;
    the layers where the scheme is illegal are returned as skipped."""
    from grimsim.pruning import is_legal, parse_spec, sparse_workload

    scheme = parse_spec(spec)
    extra: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for wl in net.layers():
        prunable = [g for g in wl.gemms if g.prunable]
        if not prunable:
            continue
        if not is_legal(scheme, wl):
            skipped.append(wl.name)
            continue
        for g in prunable:
            sw = sparse_workload(g, scheme)
            extra[g.name] = {"scheme": scheme.spec, "sparsity": round(sw.sparsity, 6),
                             "format_bytes": sw.format_bytes, "dense_bytes": sw.dense_bytes,
                             "proxy": round(sw.proxy, 6), "effective_macs": sw.macs}
    return extra, skipped


def cmd_info(args: argparse.Namespace) -> int:
    from grimsim.network.workload import summary_rows

    net = _load(args)
    rows = [(wl, r) for wl in net.layers() for r in summary_rows(wl)]
    totals = net.totals
    scheme_cols, skipped = _scheme_columns(net, args.scheme) if args.scheme else ({}, [])
    if args.json:
        from grimsim.meta import run_meta

        layers = []
        for wl, r in rows:
            layers.append({"name": r.name, "op": r.op, "M": r.M, "K": r.K, "N": r.N,
                           "params": r.params, "macs": r.macs, "groups": r.groups,
                           "repeats": r.repeats, "prunable": r.prunable,
                           "output_shape": list(r.output_shape),
                           "fused": list(wl.fused), "activation": wl.activation,
                           **scheme_cols.get(r.name, {})})
        doc: dict[str, Any] = {"name": net.name, "total_params": totals.params,
                               "total_macs": totals.macs,
                               "total_elementwise_ops": totals.elementwise_ops,
                               "input_shapes": {k: list(v) for k, v in net.inputs.items()},
                               "layers": layers}
        if args.scheme:
            doc["scheme"] = args.scheme
            doc["skipped"] = skipped
            doc.update(_scheme_totals(rows, scheme_cols))
        doc["_meta"] = run_meta(source=net.source)
        _print_json(doc)
        return 0
    table_rows = []
    for wl, r in rows:
        extra = []
        if r.groups > 1:
            extra.append(f"g={r.groups}")
        if r.repeats > 1:
            extra.append(f"x{r.repeats}")
        if wl.activation and wl.gemms and r.name == wl.gemms[0].name:
            extra.append(f"+{wl.activation}")
        row: tuple[Any, ...] = (r.name, r.op, "x".join(map(str, r.output_shape)),
                                _fmt_int(r.M), _fmt_int(r.K), _fmt_int(r.N), " ".join(extra),
                                _fmt_int(r.params), f"{r.macs / 1e6:,.1f}")
        if args.scheme:
            s = scheme_cols.get(r.name)
            row += (("-", "-", "-") if s is None else
                    (f"{s['sparsity']:.3f}", _fmt_int(s["format_bytes"]), f"{s['proxy']:.3f}"))
        table_rows.append(row)
    headers = ["layer", "op", "output", "M", "K", "N", "", "params", "MMACs"]
    right = [False, False, False, True, True, True, False, True, True]
    if args.scheme:
        headers += ["sparsity", "format bytes", "proxy"]
        right += [True, True, True]
    print(_table(headers, table_rows, right))
    print()
    ins = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in net.inputs.items())
    print(f"{net.name}: {len(net)} layers, input {ins}")
    print(f"  params        {totals.params:>16,}  ({totals.params / 1e6:.2f} M)")
    print(f"  MACs (GEMM)   {totals.macs:>16,}  ({totals.macs / 1e9:.3f} G)")
    print(f"  cheap-op ops  {totals.elementwise_ops:>16,}  (pooling, eltwise, activations...)")
    if args.scheme:
        t = _scheme_totals(rows, scheme_cols)
        print(f"  under {args.scheme}: weights {t['dense_weight_bytes']:,} -> "
              f"{t['format_bytes']:,} bytes, sparsity {t['sparsity']:.3f}, "
              f"effective MACs {t['effective_macs'] / 1e9:.3f} G")
        if skipped:
            print(f"  skipped (scheme illegal, kept dense): {', '.join(skipped)}")
    return 0


def _scheme_totals(rows: Sequence[tuple[Any, Any]], extra: dict[str, dict[str, Any]]
                   ) -> dict[str, Any]:
    """Whole-network figures under a scheme: pruned rows as encoded, the rest dense."""
    dense_bytes = fmt_bytes = weights = kept = macs = 0
    for _, r in rows:
        if r.M is None:
            continue
        s = extra.get(r.name)
        w = r.M * r.K if r.prunable else 0
        weights += w
        dense_bytes += 4 * w
        if s is None:
            fmt_bytes += 4 * w
            kept += w
            macs += r.macs
        else:
            fmt_bytes += s["format_bytes"]
            kept += round(w * (1 - s["sparsity"]))
            macs += s["effective_macs"]
    return {"dense_weight_bytes": dense_bytes, "format_bytes": fmt_bytes,
            "sparsity": 1 - kept / weights if weights else 0.0, "effective_macs": macs}


# --------------------------------------------------------------------------- devices


def _device_summary(profile: Any) -> dict[str, Any]:
    return {
        "id": profile.id, "name": profile.name, "version": profile.version, "soc": profile.soc,
        "clusters": [{"name": c.name, "core": c.core, "count": c.count,
                      "max_clock_ghz": c.max_clock_ghz, "simd": c.simd,
                      "fp32_flops_per_cycle": c.fp32_flops_per_cycle,
                      "l1d_kib": c.l1d_kib, "l2_kib": c.l2_kib} for c in profile.clusters],
        "peak_fp32_gflops_1t": round(profile.peak_fp32_gflops(1), 1),
        "peak_fp32_gflops_all": round(profile.peak_fp32_gflops(), 1),
        "dram_gbs": round(profile.dram.effective_bandwidth_gbs, 2),
        "l3_kib": profile.l3_kib,
        "thread_barrier_us": profile.thread_barrier_us,
        "gpu": None if profile.gpu is None else {"name": profile.gpu.name,
                                                 "fp32_gflops": profile.gpu.fp32_gflops},
        "calibrated": profile.calibration is not None,
        "origin": profile.origin,
    }


def cmd_devices(args: argparse.Namespace) -> int:
    from grimsim.api import load_device
    from grimsim.cost.profile import list_profiles, profile_template

    if args.template:
        sys.stdout.write(profile_template())
        return 0
    if args.measure_host:
        if args.device not in (None, "host"):
            raise GrimsimError(f"--measure-host measures this machine; drop {args.device!r}")
        from grimsim.calibration.host import measured_host_profile

        args.device = measured_host_profile(remeasure=True).id
    names = [args.device] if args.device else list_profiles()
    profiles = [load_device(n) for n in names]
    if args.json:
        from grimsim.meta import run_meta

        _print_json({"devices": [_device_summary(p) for p in profiles], "_meta": run_meta()})
        return 0
    rows = []
    for p in profiles:
        cpu = " + ".join(f"{c.count}x{c.core}@{c.max_clock_ghz:g}" for c in p.clusters)
        rows.append((p.id, p.soc, cpu, f"{p.peak_fp32_gflops(1):.0f}",
                     f"{p.peak_fp32_gflops():.0f}", f"{p.dram.effective_bandwidth_gbs:.1f}",
                     p.gpu.name if p.gpu else "-", "yes" if p.calibration else "no"))
    print(_table(["device", "SoC", "CPU (cores x type @ GHz)", "GFLOP/s 1T", "GFLOP/s all",
                  "DRAM GB/s", "GPU", "calibrated"], rows,
                 [False, False, False, True, True, True, False, False]))
    return 0


# --------------------------------------------------------------------------- predict


def _assignment(args: argparse.Namespace, net: Any) -> dict[str, str]:
    """--scheme SPEC on every GEMM layer (illegal ones are skipped by the model), or the
    layers of a --mapping file."""
    if getattr(args, "scheme", None) and getattr(args, "mapping", None):
        raise GrimsimError("give either --scheme or --mapping, not both")
    if getattr(args, "scheme", None):
        from grimsim.pruning import parse_spec

        spec = parse_spec(args.scheme).spec
        return {wl.name: spec for wl in net.gemm_layers()}
    if getattr(args, "mapping", None):
        from grimsim.search.result import read_mapping_file

        return read_mapping_file(args.mapping, network=net).as_dict()
    return {}


def cmd_predict(args: argparse.Namespace) -> int:
    from grimsim.api import estimate, load_device
    from grimsim.meta import run_meta

    net = _load(args)
    device = load_device(args.device)
    est = estimate(net, device, _assignment(args, net), threads=args.threads, unit=args.unit)
    if args.json:
        doc = est.to_dict()
        doc["_meta"] = run_meta(device=device.id, cost_model=est.provenance, source=net.source)
        _print_json(doc)
        return 0
    rows = [(lay.name, lay.op, lay.scheme, lay.kernel, f"{lay.latency_s * 1e3:.3f}",
             f"{lay.compute_s * 1e3:.3f}", f"{lay.memory_s * 1e3:.3f}",
             f"{lay.overhead_s * 1e3:.3f}", lay.bound) for lay in est.layers]
    print(_table(["layer", "op", "scheme", "kernel", "ms", "compute", "memory", "overhead",
                  "bound"], rows, [False, False, False, False, True, True, True, True, False]))
    print()
    lo, hi = est.band_s
    print(f"{net.name} on {device.id} ({args.unit}, {args.threads} thread"
          f"{'s' if args.threads > 1 else ''}): {est.latency_s * 1e3:.2f} ms "
          f"[{lo * 1e3:.2f}, {hi * 1e3:.2f}]  ({est.provenance})")
    print(f"  model {est.model_bytes / 1e6:.2f} MB (dense {est.dense_model_bytes / 1e6:.2f} MB), "
          f"loss {est.loss:.4f}")
    if est.skipped:
        print(f"  skipped (scheme illegal, kept dense): {', '.join(est.skipped)}")
    return 0


# --------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    from grimsim.api import run
    from grimsim.meta import run_meta

    net = _load(args)
    doc = run(net, _assignment(args, net), threads=args.threads, device=args.device,
              min_time_s=args.min_time_s, check=args.check, statistic=args.statistic)
    if args.json:
        doc["_meta"] = run_meta(device=doc["device"], cost_model=doc["provenance"],
                                source=net.source)
        _print_json(doc)
        return 0
    rows = [(r["name"], r["op"], r["scheme"], r["kernel"], f"{r['measured_ms']:.3f}",
             f"{r['predicted_ms']:.3f}",
             f"{r['predicted_ms'] / r['measured_ms']:.2f}" if r["measured_ms"] > 0 else "-")
            for r in doc["layers"]]
    print(_table(["layer", "op", "scheme", "kernel", "measured ms", "predicted ms",
                  "pred/meas"], rows, [False, False, False, False, True, True, True]))
    print()
    ratio = doc["predicted_ms"] / doc["measured_ms"] if doc["measured_ms"] else float("nan")
    print(f"{doc['network']} here ({doc['simd']}, {doc['threads']} thread"
          f"{'s' if doc['threads'] > 1 else ''}): measured {doc['measured_ms']:.2f} ms, "
          f"predicted {doc['predicted_ms']:.2f} ms by {doc['provenance']} "
          f"(pred/meas {ratio:.2f})")
    if doc["skipped"]:
        print(f"  skipped (scheme illegal, kept dense): {', '.join(doc['skipped'])}")
    return 0


# --------------------------------------------------------------------------- search


def cmd_search(args: argparse.Namespace) -> int:
    from grimsim.api import load_device, search
    from grimsim.meta import run_meta

    net = _load(args)
    device = load_device(args.device)
    sensitivity = None
    if args.sensitivity:
        from grimsim.search.sensitivity import check_table_against, read_sensitivity_csv

        sensitivity = read_sensitivity_csv(args.sensitivity)
        check_table_against(sensitivity, net)
    result = search(net, device, latency_ms=args.latency_ms, max_loss=args.max_loss,
                    pareto=args.pareto, threads=args.threads, unit=args.unit,
                    solver=args.solver, sensitivity=sensitivity)
    meta = run_meta(device=device.id, cost_model=_model_name(device, args.unit),
                    source=net.source)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(json.dumps(result.to_mapping_file(net.name, meta), indent=2)
                                  + "\n")
    if args.json:
        _print_json(result.summary(meta))
        return 0
    rows = [(c.name, c.scheme, f"{c.latency_s * 1e3:.3f}", f"{c.loss:.4f}")
            for c in result.layers]
    print(_table(["layer", "scheme", "latency ms", "loss"], rows, [False, False, True, True]))
    print()
    print(f"{net.name} on {device.id} ({args.unit}, {args.threads} thread"
          f"{'s' if args.threads > 1 else ''}), {result.objective} by {result.solver} in "
          f"{result.search_s:.2f} s:")
    print(f"  latency {result.latency_s * 1e3:.2f} ms (dense {result.dense_latency_s * 1e3:.2f}"
          f" ms, {result.dense_latency_s / result.latency_s:.2f}x), loss {result.loss:.4f}, "
          f"model {result.model_bytes / 1e6:.2f} MB (dense {result.dense_model_bytes / 1e6:.2f}"
          f" MB)")
    print(f"  Pareto front: {len(result.pareto)} points"
          + (f"; mapping written to {args.out}" if args.out else ""))
    return 0


def _model_name(device: Any, unit: str) -> str:
    from grimsim.api import cost_model

    return str(cost_model(device, unit).name)


# --------------------------------------------------------------------------- calibrate, fit


def cmd_calibrate(args: argparse.Namespace) -> int:
    from grimsim.calibration.run import calibrate

    threads = tuple(int(t) for t in args.threads.split(",") if t)
    kwargs: dict[str, Any] = {}
    if args.schemes:
        kwargs["schemes"] = tuple(s for s in args.schemes.split(",") if s)
    res = calibrate(args.device, args.out, budget_s=args.budget_s,
                    exclude_networks=[n for n in (args.exclude_networks or "").split(",") if n],
                    threads=threads, progress=not args.json, passes=args.passes,
                    pass_gap_s=args.pass_gap_s, max_wait_s=args.max_wait_s, **kwargs)
    if args.json:
        from grimsim.meta import run_meta

        _print_json({"summary": res.summary(), "points": res.total_points,
                     "stopped": res.stopped, "_meta": run_meta(device=args.device)})
    else:
        print(res.summary())
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from grimsim.calibration.fit import fit

    report = fit(args.points_dir, args.out, statistic=args.statistic)
    if args.json:
        from grimsim.meta import run_meta

        _print_json({**report.to_dict(), "_meta": run_meta()})
    else:
        print(report.to_markdown())
    return 0


# --------------------------------------------------------------------------- apply, sweep


def cmd_apply(args: argparse.Namespace) -> int:
    from grimsim.execute.apply import apply_model
    from grimsim.network.loader import parse_shape
    from grimsim.search.result import read_mapping_file

    mapping = read_mapping_file(args.mapping).as_dict()
    res = apply_model(args.model, mapping, args.out, weights=args.weights, seed=args.seed,
                      input_shape=parse_shape(args.input) if args.input else None,
                      seq_len=args.seq_len, mapping_source=args.mapping)
    summary = res.summary()
    if args.json:
        _print_json(summary)
        return 0
    rows = [(g["name"], g["scheme"], f"{g['reached_sparsity']:.3f}", _fmt_int(g["format_bytes"]),
             _fmt_int(g["dense_bytes"]), f"{g['retained_norm']:.3f}")
            for g in summary["gemms"]]
    print(_table(["GEMM", "scheme", "sparsity", "format bytes", "dense bytes", "retained norm"],
                 rows, [False, False, True, True, True, True]))
    t = summary["totals"]
    print(f"\nwrote {', '.join(summary['files'].values())} to {summary['out_dir']}; "
          f"sparsity {t['reached_sparsity']:.3f}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from grimsim.sweep import parse_numbers, sweep

    index = sweep(
        [n for n in args.networks.split(",") if n], [d for d in args.devices.split(",") if d],
        args.out, latency_fractions=parse_numbers(args.latency_fractions, "--latency-fractions"),
        max_losses=parse_numbers(args.max_loss, "--max-loss"), pareto=args.pareto,
        threads=args.threads, unit=args.unit, address=args.address, workers=args.workers,
        progress=None if args.json else
        lambda e: print(f"  {e['key']}: {e['status']}", file=sys.stderr))
    if args.json:
        _print_json(index)
    else:
        entries = index["tasks"]
        ok = index["counts"]["ok"]
        print(f"{ok} of {len(entries)} searches done; results in {args.out}")
        for e in entries:
            if e["status"] != "ok":
                print(f"  {e['key']}: {e['error']}")
    entries = index["tasks"]
    return 1 if entries and all(e.get("status") != "ok" for e in entries) else 0


# --------------------------------------------------------------------------- explore


def cmd_explore(args: argparse.Namespace) -> int:
    from grimsim.explorer import run_explorer

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving the explorer on %s: reachable from other machines", args.host)
    print(f"grimsim explorer: http://{args.host}:{args.port}/  (Ctrl-C to stop)",
          file=sys.stderr)
    kwargs: dict[str, Any] = {"model": args.model, "device": args.device,
                              "threads": args.threads}
    if args.results:
        kwargs["results_dir"] = args.results
    run_explorer(host=args.host, port=args.port, **kwargs)
    return 0


# --------------------------------------------------------------------------- bench-kernels


def cmd_bench_kernels(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from grimsim.execute import bench
    from grimsim.meta import run_meta

    shapes = bench.SHAPES[:1] + bench.SHAPES[5:6] if args.quick else bench.SHAPES
    threads = tuple(int(t) for t in args.threads.split(","))
    rows = bench.bench_kernels(
        shapes, bench.SPARSITIES, threads, min_time_s=0.02 if args.quick else args.min_time_s,
        rounds=1 if args.quick else args.rounds,
        progress=None if args.json else lambda msg: print(f"  {msg}", file=sys.stderr))
    command = (f"grimsim bench-kernels --threads {args.threads} --rounds {args.rounds} "
               f"--min-time-s {args.min_time_s}" + (" --quick" if args.quick else ""))
    meta = run_meta(command=command, **bench.bench_meta())
    summary = bench.summarize(rows)
    summary_min = bench.summarize(rows, statistic="min_s")
    if args.markdown:
        from pathlib import Path

        Path(args.markdown).write_text(bench.markdown(rows, meta, summary, summary_min))
    if args.json:
        _print_json({"rows": [asdict(r) for r in rows], "summary": summary,
                     "summary_fastest_call": summary_min, "_meta": meta})
        return 0
    table = [(r.kernel, r.spec, f"{r.M}x{r.K}x{r.N}", f"{r.sparsity:.3f}", r.threads,
              f"{r.time_s * 1e3:.3f}", f"{r.numpy_dense_time_s * 1e3:.3f}",
              f"{r.speedup_vs_numpy_dense:.2f}x",
              "-" if r.scipy_csr_time_s is None else f"{r.scipy_csr_time_s / r.time_s:.1f}x")
             for r in rows]
    print(_table(["kernel", "spec", "MxKxN", "sparsity", "T", "ours ms", "numpy ms",
                  "vs numpy", "vs scipy CSR"], table,
                 [False, False, False, True, True, True, True, True, True]))
    print()
    for key, value in summary.items():
        print(f"  {key:32s} {'-' if value is None else f'{value:.2f}'}")
    return 0


# --------------------------------------------------------------------------- parser


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name (see `grimsim zoo`) or path to .onnx / ncnn .param")
    p.add_argument("--input", metavar="SHAPE",
                   help="input shape such as 1x3x224x224 (resolves symbolic dims)")
    p.add_argument("--seq-len", type=int, metavar="L",
                   help="sequence length / time steps for RNN and transformer zoo networks")


def _device_args(p: argparse.ArgumentParser, default_device: str = "host") -> None:
    p.add_argument("--device", default=default_device,
                   help="built-in profile name, name@version or a profile YAML path "
                        f"(default {default_device}: this machine)")
    p.add_argument("--unit", choices=("cpu", "gpu"), default="cpu", help="CPU or mobile GPU")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grimsim",
        description="Cost-model design-space explorer for pruned DNNs (BCR, pattern, N:M...) "
                    "on mobile CPUs and GPUs.")
    parser.add_argument("--version", action="version", version=f"grimsim {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("zoo", help="list the built-in networks")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("info", help="per-layer table of a network (GEMM view, params, MACs)")
    _model_args(p)
    p.add_argument("--scheme", metavar="SPEC",
                   help="prune every layer where legal (e.g. bcr:16x32:0.75, nm:2:4) and add "
                        "reached sparsity, format bytes and the norm proxy per layer")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("devices", help="device profiles (built in, fitted, or a file)")
    p.add_argument("device", nargs="?", help="one profile: name, name@version or YAML path")
    p.add_argument("--template", action="store_true",
                   help="print a profile to fill in for your own phone or board")
    p.add_argument("--measure-host", action="store_true",
                   help="measure this machine again (clock, DRAM bandwidth, effective LLC; a "
                        "few seconds) and save it as a new host profile version (calibrate "
                        "that version again)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("predict", help="predicted latency of a network on a device")
    _model_args(p)
    _device_args(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--scheme", metavar="SPEC",
                       help="prune every layer where legal (e.g. bcr:16x32:0.75)")
    group.add_argument("--mapping", metavar="FILE", help="a mapping file from `grimsim search`")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("run", help="run a (pruned) network here with the kernels: measured "
                                   "vs predicted per layer")
    _model_args(p)
    p.add_argument("--device", default="host",
                   help="profile whose prediction is compared (default host)")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--scheme", metavar="SPEC",
                       help="prune every layer where legal (e.g. bcr:16x32:0.75)")
    group.add_argument("--mapping", metavar="FILE", help="a mapping file from `grimsim search`")
    p.add_argument("--min-time-s", type=float, default=0.05,
                   help="minimum timed time per layer measurement")
    p.add_argument("--statistic", choices=("min_s", "median_s"), default="min_s",
                   help="per timing, the fastest call (default; what calibration fits) or the "
                        "median call")
    p.add_argument("--check", action="store_true",
                   help="also check every GEMM's output against numpy")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("search", help="best pruning scheme per layer for a latency target, a "
                                      "loss budget, or the Pareto front")
    _model_args(p)
    _device_args(p)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--latency-ms", type=float, metavar="X",
                       help="minimum loss under this latency")
    group.add_argument("--max-loss", type=float, metavar="Y",
                       help="minimum latency under this loss budget")
    group.add_argument("--pareto", action="store_true", help="the latency/loss Pareto front")
    p.add_argument("--solver", choices=("exact", "evolutionary", "rules"), default="exact",
                   help="exact (multiple-choice knapsack), NSGA-II, or the rule-based mapper")
    p.add_argument("--sensitivity", metavar="CSV",
                   help="measured accuracy drops (layer,scheme,rate,accuracy_drop) that "
                        "replace the proxy")
    p.add_argument("--out", metavar="FILE", help="write the mapping file here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("calibrate", help="measure the kernels on this device (resumable)")
    p.add_argument("--device", default="host", help="profile to calibrate (default host)")
    p.add_argument("--out", required=True, metavar="DIR", help="points folder (resumed)")
    p.add_argument("--budget-s", type=float, default=600, help="time budget in seconds")
    p.add_argument("--exclude-networks", metavar="A,B",
                   help="zoo networks whose layer shapes stay out of the sweep")
    p.add_argument("--threads", default="1,2", help="thread counts, comma separated")
    p.add_argument("--schemes", metavar="SPEC,...", help="schemes to sweep (default: all)")
    p.add_argument("--passes", type=_positive_int, default=3,
                   help="passes each point is timed in, --pass-gap-s apart; the fastest call "
                        "is kept (default 3: one pass does not repeat on a shared machine)")
    p.add_argument("--pass-gap-s", type=_non_negative_float, default=2.0,
                   help="seconds at least between a point's passes (default 2)")
    p.add_argument("--max-wait-s", type=_non_negative_float, default=10.0,
                   help="seconds to idle when the drift probe finds the machine slower "
                        "(default 10)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("fit", help="fit the learned correction on calibration points")
    p.add_argument("points_dir", help="the folder `grimsim calibrate --out` wrote")
    p.add_argument("--statistic", choices=("min_s", "median_s", "mean_s"), default="min_s",
                   help="the measurement fitted (default min_s, the fastest call)")
    p.add_argument("--out", metavar="PROFILE",
                   help="new profile file (default: the user data folder, where --device "
                        "finds it)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("apply", help="masks and compact formats of a mapping on real weights")
    _model_args(p)
    p.add_argument("--mapping", required=True, metavar="FILE", help="mapping file to apply")
    p.add_argument("--weights", metavar="FILE",
                   help=".npz of GEMM-view weights (default: the ONNX initializers, else "
                        "seeded Gaussian weights: structural masks only)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the Gaussian weights")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("sweep", help="many searches (networks x devices x targets) on a Dask "
                                     "cluster (local by default)")
    p.add_argument("--networks", required=True, help="comma-separated zoo names or files")
    p.add_argument("--devices", required=True, help="comma-separated device profiles")
    p.add_argument("--latency-fractions", metavar="F,...",
                   help="latency targets as fractions of each dense latency, e.g. 0.5,0.3")
    p.add_argument("--max-loss", metavar="L,...", help="loss budgets, e.g. 0.2,0.4")
    p.add_argument("--pareto", action="store_true", help="also the Pareto front of each pair")
    p.add_argument("--unit", choices=("cpu", "gpu"), default="cpu", help="CPU or mobile GPU")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads")
    p.add_argument("--address", help="an existing Dask scheduler (tcp://host:port); default: "
                                     "a local cluster on 127.0.0.1")
    p.add_argument("--workers", type=_positive_int, default=2, help="local cluster workers")
    p.add_argument("--out", required=True, metavar="DIR", help="results folder")
    p.add_argument("--json", action="store_true", help="print the results index")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("explore", help="the web explorer (Dash), on 127.0.0.1 by default")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    p.add_argument("--port", type=_positive_int, default=8050, help="port (default 8050)")
    p.add_argument("--model", default="resnet18", help="network shown first")
    p.add_argument("--device", default="sd855", help="device shown first")
    p.add_argument("--threads", type=_positive_int, default=4, help="threads shown first")
    p.add_argument("--results", metavar="DIR",
                   help="folder of saved search/sweep results to open (default "
                        "$GRIMSIM_RESULTS_DIR)")
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser("bench-kernels",
                       help="time our kernels against numpy, scipy and onnxruntime")
    p.add_argument("--threads", default="1,2", help="thread counts, comma separated")
    p.add_argument("--min-time-s", type=float, default=0.1,
                   help="minimum timed time per measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per row")
    p.add_argument("--quick", action="store_true", help="two shapes, short timings (a smoke run)")
    p.add_argument("--markdown", metavar="FILE", help="also write the recorded table here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_bench_kernels)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except GrimsimError as exc:
        print(f"grimsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
