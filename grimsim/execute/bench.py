"""``grimsim bench-kernels``: our kernels against numpy, scipy and onnxruntime in one process.

Every row times a peer and ours on the same data, interleaved round by round (the machines
this runs on are shared and noisy, so ratios measured side by side are what counts), with the
same C++ harness for all (warm-up, repetitions up to a minimum time, median and min).

Each time is kept two ways: the typical call (median over rounds of the harness medians,
``time_s`` and its peers) and the fastest call seen (minimum over rounds of the harness minima,
``*_min_s``). On a shared VM whose neighbours come and go, the two can differ by tens of per
cent; the fastest call is the best estimate of what the hardware does undisturbed, the
typical one of what a user gets on that machine at that time. Both sets of target figures are
reported (``summarize(rows, statistic=...)``).

Rows at more than one thread also time our kernel at one thread in the same rounds
(``one_thread_time_s``), so the thread scaling is a ratio measured side by side too: the 1- and
2-thread rows of a shape run tens of seconds apart, long enough for a neighbour's slow spell to
hit one and not the other.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grimsim.aligned import CACHE_LINE_BYTES, aligned_copy
from grimsim.execute.kernels import TIMING_STATISTICS, prepare
from grimsim.meta import cpu_model
from grimsim.pruning import encode, make_mask, parse_spec, reached_sparsity

log = logging.getLogger(__name__)

#: The issue's shapes (M, K, N): ResNet-style 3x3 convs at 56..7 pixels, then FC/RNN shapes.
SHAPES: tuple[tuple[int, int, int], ...] = (
    (64, 576, 3136), (128, 1152, 784), (256, 2304, 196), (512, 4608, 49),
    (1024, 1024, 32), (1024, 1024, 1), (3072, 1024, 1))
SPARSITIES = (0.5, 0.75, 0.9)

#: The sparse schemes per nominal sparsity; N:M and pattern have fixed rates (the row says
#: the reached one). Filter (50 %) and column (75 %) pruning run as the dense GEMM of what
#: they keep (one block over the whole matrix), beside them for comparison.
SCHEMES: dict[float, tuple[str, ...]] = {
    0.5: ("unstructured:0.5", "bcr:16x32:0.5", "nm:2:4", "pattern:4", "filter:0.5"),
    0.75: ("unstructured:0.75", "bcr:16x32:0.75", "nm:1:4", "pattern:4:0.75", "column:0.75"),
    0.9: ("unstructured:0.9", "bcr:16x32:0.9", "nm:1:8", "pattern:4:0.9"),
}


@dataclass(frozen=True)
class BenchRow:
    kernel: str
    spec: str
    M: int
    K: int
    N: int
    sparsity: float
    block: str | None
    threads: int
    time_s: float
    numpy_dense_time_s: float
    speedup_vs_numpy_dense: float
    scipy_csr_time_s: float | None
    onnxruntime_conv_time_s: float | None
    max_abs_err: float
    time_min_s: float
    numpy_dense_time_min_s: float
    scipy_csr_time_min_s: float | None
    onnxruntime_conv_time_min_s: float | None
    format_bytes: int
    prepare_s: float
    prepared_bytes: int
    # rows at threads > 1 (not Winograd's): ours at one thread, timed in the same rounds
    one_thread_time_s: float | None = None
    one_thread_time_min_s: float | None = None


def _conv_geometry(M: int, K: int, N: int) -> tuple[int, int] | None:
    """(in_channels, side) when (M, K, N) is a square 3x3 stride-1 'same' conv."""
    if K % 9:
        return None
    side = round(N ** 0.5)
    return (K // 9, side) if side * side == N and side >= 3 else None


Timing = tuple[float, float]  # (median_s, min_s) of one harness run


def _timing(res: Any) -> Timing:
    return float(res["median_s"]), float(res["min_s"])


def _rounds(timers: Sequence[Callable[[], Timing]], rounds: int) -> list[Timing]:
    """Run each timer once per round, interleaved; per timer, the median over rounds of the
    harness medians and the minimum over rounds of the harness minima."""
    samples: list[list[Timing]] = [[] for _ in timers]
    for _ in range(rounds):
        for i, timer in enumerate(timers):
            samples[i].append(timer())
    return [(statistics.median(m for m, _ in s), min(f for _, f in s)) for s in samples]


def _ort_conv(weight: np.ndarray, side: int, threads: int) -> Callable[[np.ndarray], Any] | None:
    """onnxruntime's Conv for a 3x3 'same' conv, or None when onnxruntime is missing."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    cout, cin = weight.shape[:2]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, side, side])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x})


def bench_kernels(shapes: Iterable[tuple[int, int, int]] = SHAPES,
                  sparsities: Iterable[float] = SPARSITIES, threads: Iterable[int] = (1, 2), *,
                  min_time_s: float = 0.1, rounds: int = 3, seed: int = 0,
                  progress: Callable[[str], None] | None = None) -> list[BenchRow]:
    """Time every kernel on every shape, sparsity and thread count (see module docstring)."""
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    import grimsim._kernels as k

    rng = np.random.default_rng(seed)
    rows: list[BenchRow] = []
    opts = {"min_time_s": min_time_s, "warmup": 1}

    def timed(fn: Callable[[], Any], t: int) -> Callable[[], Timing]:
        def run() -> Timing:
            if t > 1:  # let OpenBLAS's spinning workers go idle before the next contender
                time.sleep(0.2)
            return _timing(k.time_callable(fn, threads=t, **opts))
        return run

    for M, K, N in shapes:
        w = rng.standard_normal((M, K)).astype(np.float32)
        # activations on a cache line, as an engine allocates them (for every peer alike)
        x = aligned_copy(rng.standard_normal((K, N)))
        geom = _conv_geometry(M, K, N)
        # conv rows: Winograd and onnxruntime take the image, not its im2col
        image = (aligned_copy(rng.standard_normal((1, geom[0], geom[1], geom[1])))
                 if geom is not None else None)
        cases: list[tuple[str, str]] = [("dense", "dense")]
        if geom is not None:
            cases.append(("winograd", "dense"))
        for s in sparsities:
            for spec in SCHEMES[s]:
                if spec.startswith("pattern") and K % 9:
                    continue
                cases.append((spec.split(":")[0], spec))
        for t in threads:
            with threadpool_limits(limits=t):
                def numpy_fn(w: np.ndarray = w, x: np.ndarray = x) -> np.ndarray:
                    return w @ x

                for kernel, spec in cases:
                    if progress:
                        progress(f"{M}x{K}x{N} {spec} ({kernel}) {t}T")
                    rows.append(_bench_case(k, sp, kernel, spec, w, x, image, t, numpy_fn,
                                            timed, rounds, opts))
    return rows


def _bench_case(k: Any, sp: Any, kernel: str, spec: str, w: np.ndarray, x: np.ndarray,
                image: np.ndarray | None, t: int, numpy_fn: Callable[[], Any],
                timed: Callable[[Callable[[], Any], int], Callable[[], Timing]], rounds: int,
                opts: dict[str, Any]) -> BenchRow:
    M, K = w.shape
    N = x.shape[1]
    scheme = parse_spec(spec)
    kernel_size = (3, 3) if K % 9 == 0 else None
    mask = make_mask(w, scheme, kernel=kernel_size) if spec != "dense" else np.ones_like(w, bool)
    wm = np.where(mask, w, 0).astype(np.float32)
    reference = wm.astype(np.float64) @ x.astype(np.float64)
    ort_time: Timing | None = None
    prepare_s, prepared_bytes = 0.0, 0
    if kernel == "winograd":
        assert image is not None
        cin, side = image.shape[1], image.shape[2]
        w4 = np.ascontiguousarray(w.reshape(M, cin, 3, 3))
        inp = image
        packed = k.winograd_pack_weights(w4, threads=t,
                                         output_tile=k.winograd_preferred_tile(side, side))
        y = np.asarray(k.winograd_conv3x3(inp, packed, pad=1, threads=t))
        ref = np.asarray(k.conv2d_gemm(inp, np.ascontiguousarray(w), kernel=3, pad=1,
                                       threads=t))
        err = float(np.abs(y - ref).max())
        ours = timed(lambda: k.winograd_conv3x3(inp, packed, pad=1, threads=t), t)
        ort_run = _ort_conv(w4, side, t)
        timers = [timed(numpy_fn, t), ours]
        if ort_run is not None:
            timers.append(timed(lambda: ort_run(inp), t))
        times = _rounds(timers, rounds)
        ort_time = times[2] if ort_run is not None else None
        fmt_bytes = int(w.nbytes)
        block = None
        scipy_time: Timing | None = None
        one_thread = None
    else:
        fmt = encode(w, mask, scheme, kernel=kernel_size)
        gemm = prepare(fmt)
        prepare_s, prepared_bytes = gemm.prepare_s, gemm.prepared_bytes
        y = gemm.run(x, t)
        err = float(np.abs(y - reference).max())
        csr = sp.csr_matrix(wm)
        def ours() -> Timing:
            if t > 1:
                time.sleep(0.2)
            return _timing(gemm.bench(x, t, **opts))

        timers = [timed(numpy_fn, t), ours, timed(lambda: csr @ x, t)]
        ort_at: int | None = None
        if image is not None and kernel == "dense":
            cin, side = image.shape[1], image.shape[2]
            ort = _ort_conv(np.ascontiguousarray(w.reshape(M, cin, 3, 3)), side, t)
            if ort is not None:
                ort_at = len(timers)
                timers.append(timed(lambda: ort(image), t))
        if t > 1:
            timers.append(lambda: _timing(gemm.bench(x, 1, **opts)))
        times = _rounds(timers, rounds)
        scipy_time = times[2] if spec != "dense" else None
        ort_time = times[ort_at] if ort_at is not None else None
        one_thread = times[-1] if t > 1 else None
        fmt_bytes = int(fmt.nbytes)
        block = "x".join(map(str, scheme.block)) if scheme.block else None
    numpy_time, ours_time = times[0], times[1]
    return BenchRow(kernel=kernel, spec=spec, M=M, K=K, N=N,
                    sparsity=round(reached_sparsity(mask), 4), block=block, threads=t,
                    time_s=ours_time[0], numpy_dense_time_s=numpy_time[0],
                    speedup_vs_numpy_dense=numpy_time[0] / ours_time[0],
                    scipy_csr_time_s=scipy_time[0] if scipy_time else None,
                    onnxruntime_conv_time_s=ort_time[0] if ort_time else None,
                    max_abs_err=err,
                    time_min_s=ours_time[1], numpy_dense_time_min_s=numpy_time[1],
                    scipy_csr_time_min_s=scipy_time[1] if scipy_time else None,
                    onnxruntime_conv_time_min_s=ort_time[1] if ort_time else None,
                    format_bytes=fmt_bytes, prepare_s=prepare_s, prepared_bytes=prepared_bytes,
                    one_thread_time_s=one_thread[0] if one_thread else None,
                    one_thread_time_min_s=one_thread[1] if one_thread else None)


def bench_meta() -> dict[str, Any]:
    """Machine, compiler flags, SIMD tier, BLAS and its kernel (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    import grimsim._kernels as k

    cpu = cpu_model()
    return {
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "kernels": {"simd": k.simd_level(), "threads_backend": k.parallel_backend(),
                    "build": getattr(k, "build_info", lambda: {})()},
        "blas": [{key: info.get(key) for key in ("internal_api", "version", "architecture",
                                                 "threading_layer", "num_threads")}
                 for info in threadpool_info()],
        "env": {v: os.environ.get(v) for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OMP_NUM_THREADS")},
        "activations": f"inputs and outputs start on a {CACHE_LINE_BYTES}-byte cache line "
                       "(grimsim.aligned), the same arrays for every peer",
    }


def _times(r: BenchRow, statistic: str) -> tuple[float, float, float | None, float | None]:
    """(ours, numpy, scipy CSR, onnxruntime) times of a row under the statistic."""
    if statistic == "min_s":
        return (r.time_min_s, r.numpy_dense_time_min_s, r.scipy_csr_time_min_s,
                r.onnxruntime_conv_time_min_s)
    if statistic == "median_s":
        return r.time_s, r.numpy_dense_time_s, r.scipy_csr_time_s, r.onnxruntime_conv_time_s
    raise ValueError(f"statistic must be one of {TIMING_STATISTICS}, got {statistic!r}")


def _one_thread_time(r: BenchRow, statistic: str) -> float | None:
    """Ours at one thread timed alongside a multi-thread row, under the statistic."""
    return r.one_thread_time_min_s if statistic == "min_s" else r.one_thread_time_s


def summarize(rows: Sequence[BenchRow], statistic: str = "median_s") -> dict[str, Any]:
    """The issue's targets as measured figures (1 thread unless said; N >= 32 medians), from
    the typical calls (``median_s``) or the fastest ones (``min_s``)."""

    def med(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    def speedup(r: BenchRow) -> float:
        ours, numpy, _, _ = _times(r, statistic)
        return numpy / ours

    one = [r for r in rows if r.threads == 1]
    bcr = [r for r in one if r.kernel == "bcr" and r.block == "16x32"]
    big_n = [r for r in bcr if r.N >= 32]
    at75 = [speedup(r) for r in big_n if abs(r.sparsity - 0.75) < 0.02]
    at90 = [speedup(r) for r in big_n if 0.895 <= r.sparsity <= 0.91]
    n1_75 = [speedup(r) for r in bcr if r.N == 1 and abs(r.sparsity - 0.75) < .02]
    n1_90 = [speedup(r) for r in bcr if r.N == 1 and 0.895 <= r.sparsity <= 0.91]
    vs_csr = [csr / ours for ours, _, csr, _ in (_times(r, statistic) for r in bcr) if csr]
    dense = [speedup(r) for r in one if r.kernel == "dense" and r.N >= 32]
    wino = [ort / ours for ours, _, _, ort in
            (_times(r, statistic) for r in one if r.kernel == "winograd") if ort]
    scaling: list[float] = []
    for r2 in (r for r in rows if r.threads == 2 and r.N >= 196
               and r.kernel in ("bcr", "dense")):
        one_thread = _one_thread_time(r2, statistic)
        if one_thread is not None:  # timed in the same rounds as the 2-thread row
            scaling.append(one_thread / _times(r2, statistic)[0])
            continue
        for r1 in one:
            if (r1.spec, r1.M, r1.K, r1.N, r1.kernel) == (r2.spec, r2.M, r2.K, r2.N, r2.kernel):
                scaling.append(_times(r1, statistic)[0] / _times(r2, statistic)[0])
    return {
        "bcr16x32_75_median_speedup": med(at75), "bcr16x32_75_min_speedup": min(at75, default=None),
        "bcr16x32_90_median_speedup": med(at90),
        "bcr_n1_75_median_speedup": med(n1_75), "bcr_n1_90_median_speedup": med(n1_90),
        "bcr_vs_scipy_csr_median": med(vs_csr), "bcr_vs_scipy_csr_min": min(vs_csr, default=None),
        "dense_vs_numpy_median": med(dense), "dense_vs_numpy_min": min(dense, default=None),
        "winograd_vs_onnxruntime_median": med(wino),
        "winograd_vs_onnxruntime_min": min(wino, default=None),
        "two_thread_scaling_median": med(scaling),
        "two_thread_scaling_min": min(scaling, default=None),
    }


def markdown(rows: Sequence[BenchRow], meta: dict[str, Any], summary: dict[str, Any],
             summary_min: dict[str, Any] | None = None) -> str:
    """The recorded benchmark table (benchmarks/kernels.md); ``summary_min`` (the fastest-call
    figures) adds a column to the targets."""
    lines = ["# Kernel benchmark", "",
             f"Recorded {meta.get('created', '')} by `grimsim bench-kernels` on "
             f"{meta['machine']['cpu']} ({meta['machine']['cores']} cores), kernels "
             f"{meta['kernels']['simd']} / {meta['kernels']['threads_backend']}; BLAS: "
             + ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']})"
                         for b in meta["blas"]) + ".", "",
             *([f"Command: `{meta['command']}` (numpy's BLAS environment variables "
                "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for this run only).", ""]
               if meta.get("command") else []),
             "Speedups are numpy dense time / our time, timed interleaved in one process. "
             "Typical call: median over rounds of the harness medians (the row times below). "
             "Fastest call: minimum over rounds of the harness minima, the best estimate of the "
             "undisturbed hardware on a shared machine. Thread scaling: each 2-thread row's "
             "time against ours at one thread timed in the same rounds (last column). "
             f"Activations: {meta.get('activations', 'as numpy allocates them')}.", "",
             "## Targets", ""]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    if summary_min is None:
        lines += ["| figure | typical call |", "|---|---|"]
        lines += [f"| {key} | {fmt(value)} |" for key, value in summary.items()]
    else:
        lines += ["| figure | typical call | fastest call |", "|---|---|---|"]
        lines += [f"| {key} | {fmt(value)} | {fmt(summary_min.get(key))} |"
                  for key, value in summary.items()]
    lines += ["", "## Rows", "",
              "| kernel | spec | M | K | N | sparsity | threads | ours ms | numpy ms | speedup "
              "| scipy CSR ms | onnxruntime ms | max abs err | ours at 1 thread ms |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1e3:.3f}"
        lines.append(f"| {r.kernel} | {r.spec} | {r.M} | {r.K} | {r.N} | {r.sparsity:.3f} | "
                     f"{r.threads} | {ms(r.time_s)} | {ms(r.numpy_dense_time_s)} | "
                     f"{r.speedup_vs_numpy_dense:.2f} | {ms(r.scipy_csr_time_s)} | "
                     f"{ms(r.onnxruntime_conv_time_s)} | {r.max_abs_err:.1e} | "
                     f"{ms(r.one_thread_time_s)} |")
    return "\n".join(lines) + "\n"
