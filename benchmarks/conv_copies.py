"""The convolutions' copies (im2col, depthwise phase planes) at every placement of their
buffers, against numpy in the same process.

A copy loop whose loads follow stores to addresses equal in their low 12 bits waits for
those stores (4K aliasing), so the same im2col or depthwise call can run 1.4x slower for one
placement of its buffers in their 4 KiB pages than for another: which placement a buffer
gets depends on the allocator's history, so such timings did not repeat between processes.
Each layer here is timed with its input (depthwise) or its output buffer (im2col, reused
call to call as an engine's memory plan does) at 16 page offsets, 256 bytes apart, on one
thread, in rounds over all the placements (a slow spell of the shared machine then does not
hit every timing of one placement); the spread is the slowest placement over the fastest.
numpy does the same work (a strided window view copied into the buffer; the depthwise taps
summed over strided slices) in the same process, at one placement.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/conv_copies.py
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grimsim._kernels as K  # noqa: N812
import numpy as np

from grimsim.execute.bench import bench_meta
from grimsim.meta import run_meta

PAGE = 4096
#: (name, channels, height/width, kernel, stride, pad): layers of resnet18, mobilenet_v2 and
#: their kind - the stem's 7x7 and 3x3 stride-2 unfolds, stride-1 3x3 unfolds, depthwise
#: 3x3 at stride 1 and 2
LAYERS = (
    ("im2col", 3, 224, 7, 2, 3), ("im2col", 3, 224, 3, 2, 1), ("im2col", 64, 56, 3, 2, 1),
    ("im2col", 64, 56, 3, 1, 1), ("im2col", 128, 28, 3, 1, 1), ("im2col", 32, 112, 3, 1, 1),
    ("depthwise", 96, 112, 3, 2, 1), ("depthwise", 144, 56, 3, 2, 1),
    ("depthwise", 32, 112, 3, 1, 1), ("depthwise", 144, 56, 3, 1, 1),
)


def at_offset(count: int, offset_bytes: int) -> np.ndarray:
    """``count`` float32 starting ``offset_bytes`` (a multiple of 64) past a page boundary."""
    raw = np.empty(count * 4 + 2 * PAGE, dtype=np.uint8)
    start = (-raw.ctypes.data) % PAGE + offset_bytes
    return raw[start:start + count * 4].view(np.float32)


def numpy_im2col(x: np.ndarray, k: int, s: int, p: int, out: np.ndarray) -> None:
    padded = np.pad(x[0], ((0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(1, 2))[:, ::s, ::s]
    c, oh, ow = win.shape[:3]
    np.copyto(out.reshape(c, k, k, oh, ow), win.transpose(0, 3, 4, 1, 2))


def numpy_depthwise(x: np.ndarray, w: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    padded = np.pad(x[0], ((0, 0), (p, p), (p, p)))
    oh = (padded.shape[1] - k) // s + 1
    ow = (padded.shape[2] - k) // s + 1
    y = np.zeros((x.shape[1], oh, ow), np.float32)
    for i in range(k):
        for j in range(k):
            y += w[:, 0, i, j, None, None] * padded[:, i:i + s * oh:s, j:j + s * ow:s]
    return y


def time_s(fn: Callable[[], Any], min_time_s: float) -> float:
    return float(K.time_callable(fn, threads=1, min_time_s=min_time_s, warmup=2,
                                 max_reps=100000)["min_s"])


def layer_row(kind: str, c: int, hw: int, k: int, s: int, p: int, min_time_s: float,
              rounds: int, rng: np.random.Generator) -> dict[str, Any]:
    o = (hw + 2 * p - k) // s + 1
    x = rng.standard_normal((1, c, hw, hw), dtype=np.float32)
    w = rng.standard_normal((c, 1, k, k), dtype=np.float32)
    geo = {"stride": (s, s), "pad": (p, p), "dilation": (1, 1), "threads": 1}
    calls: dict[int, Callable[[], Any]] = {}  # our call with its buffer at each page offset
    if kind == "im2col":
        rows, cols = c * k * k, o * o
        out = at_offset(rows * cols, 0).reshape(rows, cols)
        numpy_im2col(x, k, s, p, out)
        np.testing.assert_array_equal(out, K.im2col(x, (k, k), **geo))  # the same work
        baseline: Callable[[], Any] = lambda: numpy_im2col(x, k, s, p, out)  # noqa: E731
        for off in range(0, PAGE, 256):
            buf = at_offset(rows * cols, off).reshape(rows, cols)
            calls[off] = lambda buf=buf: K.im2col(x, kernel=(k, k), out=buf, **geo)
    else:
        np.testing.assert_allclose(K.depthwise_conv2d(x, w, **geo)[0],
                                   numpy_depthwise(x, w, k, s, p), rtol=1e-4, atol=1e-4)
        baseline = lambda: numpy_depthwise(x, w, k, s, p)  # noqa: E731
        for off in range(0, PAGE, 256):
            inp = at_offset(c * hw * hw, off).reshape(1, c, hw, hw)
            inp[...] = x
            calls[off] = lambda inp=inp: K.depthwise_conv2d(inp, w, **geo)
    # rounds over all placements in turn, so that a slow spell of the shared machine does
    # not hit every round of one placement
    numpy_s = float("inf")
    ours = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        numpy_s = min(numpy_s, time_s(baseline, min_time_s))
        for off, call in calls.items():
            ours[off] = min(ours[off], time_s(call, min_time_s))
    times = list(ours.values())
    return {"kind": kind, "layer": f"{c}x{hw}x{hw} k{k} s{s}", "floats_out":
            (c * k * k if kind == "im2col" else c) * o * o,
            "ours_median_us": statistics.median(times) * 1e6, "ours_min_us": min(times) * 1e6,
            "ours_max_us": max(times) * 1e6, "spread": max(times) / min(times),
            "numpy_us": numpy_s * 1e6, "speedup_vs_numpy": numpy_s / statistics.median(times),
            "by_offset_us": {str(k_): v * 1e6 for k_, v in ours.items()}}


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    machine, kernels = meta["machine"], meta["kernels"]
    blas = ", ".join(" ".join(str(b[k]) for k in ("internal_api", "version", "architecture")
                              if b.get(k)) for b in meta["blas"]) or "none"
    lines = ["# Convolution copies at every buffer placement", "",
             f"Recorded {meta['created']} on {machine['cpu']} ({machine['cores']} CPUs), "
             f"kernels {kernels['simd']} / {kernels['threads_backend']}; BLAS: {blas}.", "",
             "Command: `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python "
             "benchmarks/conv_copies.py`. One thread; per placement the fastest call of "
             f"{meta['rounds']} timings of {meta['min_time_s'] * 1e3:.0f} ms, taken in rounds "
             "over all placements. The im2col "
             "output buffer (reused call to call) or the depthwise input sits at 16 offsets "
             "in its 4 KiB page, 256 bytes apart; spread = slowest placement / fastest. "
             "numpy: the same work in the same process, at one placement.", "",
             "| copy | layer | values out | ours us (median over placements) | fastest - "
             "slowest us | spread | numpy us | ours vs numpy |",
             "|---|---|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['layer']} | {r['floats_out']} | "
                     f"{r['ours_median_us']:.1f} | {r['ours_min_us']:.1f} - "
                     f"{r['ours_max_us']:.1f} | {r['spread']:.2f} | {r['numpy_us']:.1f} | "
                     f"{r['speedup_vs_numpy']:.1f}x |")
    worst = max(rows, key=lambda r: r["spread"])
    lines += ["", f"Largest spread over placements: {worst['spread']:.2f} ({worst['kind']} "
              f"{worst['layer']}).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-time-s", type=float, default=0.02)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).with_name("conv_copies.md")),
                    help="markdown file to write ('-' prints only); the JSON goes to "
                    "benchmarks/results/conv_copies.json")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = [layer_row(*layer, args.min_time_s, args.rounds, rng) for layer in LAYERS]
    meta = {**run_meta(), **bench_meta(), "min_time_s": args.min_time_s,
            "rounds": args.rounds}
    text = markdown(rows, meta)
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)
        results = Path(__file__).with_name("results") / "conv_copies.json"
        results.write_text(json.dumps({"rows": rows, "_meta": meta}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
