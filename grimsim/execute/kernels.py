"""One face for the C++ kernels: a compact format in, a prepared GEMM out.

``prepare(fmt)`` picks the kernel a format runs on (dense GEMM, CSR, BCR packed once, N:M,
pattern) and does its one-time work (BCR ``pack()``; CSR, N:M and pattern arrays copied and
validated once; timed and sized apart); the prepared
GEMM then runs or times ``Y = W @ X`` for any X with the harness of the kernels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grimsim.pruning import BCRFormat, CSRFormat, DenseFormat, Format, NMFormat, PatternFormat

#: What a harness timing reports per run that a caller may keep: the fastest call or the
#: median call (``grimsim run``, ``bench-kernels``).
TIMING_STATISTICS = ("min_s", "median_s")

#: Keyword arguments of every ``bench_*`` binding (the C++ harness's options).
BENCH_DEFAULTS: dict[str, Any] = {"min_time_s": 0.2, "warmup": 1, "max_reps": 1000,
                                  "flush_cache_bytes": 0}


def _k() -> Any:
    import grimsim._kernels as kernels  # deferred: import grimsim stays light

    return kernels


def _bcr_args(fmt: BCRFormat) -> dict[str, Any]:
    return {"block_row_ptr": fmt.block_row_ptr, "block_col": fmt.block_col,
            "row_ptr": fmt.row_ptr, "row_idx": fmt.row_idx, "col_ptr": fmt.col_ptr,
            "col_idx": fmt.col_idx, "val_ptr": fmt.val_ptr, "values": fmt.values,
            "reorder": fmt.reorder, "shape": fmt.shape, "block": fmt.block}


def _pattern_args(fmt: PatternFormat) -> dict[str, Any]:
    return {"library": fmt.library, "kernel_ptr": fmt.kernel_ptr,
            "kernel_channel": fmt.kernel_channel, "kernel_pattern": fmt.kernel_pattern,
            "values": fmt.values, "filter_order": fmt.filter_order, "shape": fmt.shape}


@dataclass(frozen=True, eq=False)
class PreparedGemm:
    """A weight matrix ready for its kernel.

    ``kernel``: ``dense``, ``csr``, ``bcr``, ``nm`` or ``pattern``; ``prepare_s`` and
    ``prepared_bytes`` are the one-time layout work (BCR pack) and its memory, reported apart
    from the format's own bytes.
    """

    kernel: str
    shape: tuple[int, int]
    format_bytes: int
    prepare_s: float
    prepared_bytes: int
    _run: Any = field(repr=False)
    _bench: Any = field(repr=False)

    def run(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """``W @ x`` (x float32 C-contiguous, K x N)."""
        return np.asarray(self._run(np.ascontiguousarray(x, dtype=np.float32), threads))

    def bench(self, x: np.ndarray, threads: int = 1, **options: Any) -> dict[str, Any]:
        """Time ``W @ x`` with the C++ harness: {median_s, min_s, reps, ...}."""
        opts = {**BENCH_DEFAULTS, **options}
        result: dict[str, Any] = self._bench(np.ascontiguousarray(x, dtype=np.float32),
                                             threads, opts)
        return result


def _prepared(kernel: str, fmt: Format, handle: Any) -> PreparedGemm:
    """A CSR / N:M / pattern matrix copied and validated once in C++ (``*_prepare``): its
    calls skip the validation pass of the array-taking kernels (at 1024 x 1024, 75 %
    unstructured, a CSR GEMV call took 830 us validated each time and 330 us prepared)."""
    k = _k()
    return PreparedGemm(
        kernel, fmt.shape, fmt.nbytes, float(handle.prepare_time_s), int(handle.nbytes),
        lambda x, t: k.spmm_prepared(handle, x, threads=t),
        lambda x, t, o: k.bench_prepared(handle, x, threads=t, **o))


def prepare(fmt: Format) -> PreparedGemm:
    """The kernel for ``fmt`` and its one-time preparation."""
    k = _k()
    if isinstance(fmt, DenseFormat):
        w = np.ascontiguousarray(fmt.values, dtype=np.float32)
        return PreparedGemm(
            "dense", fmt.shape, fmt.nbytes, 0.0, 0,
            lambda x, t: k.dense_gemm(w, x, threads=t),
            lambda x, t, o: k.bench_dense(w, x, threads=t, **o))
    if isinstance(fmt, CSRFormat):
        return _prepared("csr", fmt, k.csr_prepare(fmt.indptr, fmt.indices, fmt.data, fmt.shape))
    if isinstance(fmt, BCRFormat):
        start = time.perf_counter()
        packed = k.bcr_pack(**_bcr_args(fmt))
        pack_s = time.perf_counter() - start
        return PreparedGemm(
            "bcr", fmt.shape, fmt.nbytes, pack_s, int(packed.nbytes),
            lambda x, t: k.bcr_spmm_packed(packed, x, threads=t),
            lambda x, t, o: k.bench_bcr_packed(packed, x, threads=t, **o))
    if isinstance(fmt, NMFormat):
        return _prepared("nm", fmt, k.nm_prepare(fmt.values, fmt.indices, fmt.n, fmt.m,
                                                  fmt.shape))
    if isinstance(fmt, PatternFormat):
        return _prepared("pattern", fmt, k.pattern_prepare(**_pattern_args(fmt)))
    raise TypeError(f"no kernel for format {type(fmt).__name__}")
