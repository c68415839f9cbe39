"""Keep numpy's BLAS and OpenMP thread pools out of the kernels' way while they are timed.

After a multi-threaded call, OpenBLAS leaves its worker threads spinning for a while, and
a kernel timed on all cores meanwhile shares them: on the 2-vCPU development VM (Zen 4,
2026-11-28) a 2-thread 16x16 BCR GEMM (512x128x784 at 75 %) took 158 us (fastest of 12
10 ms passes) 0.2 s after any other work, 315 us right after a 400x400 float64 matmul on
numpy's two BLAS threads, and 197 us after the same matmul with the pools held to one
thread. Calibration builds operands with numpy (a pattern mask is a matmul) and fits its
adaptive correction with scikit-learn (OpenMP) between timings; ``grimsim run`` runs
cheap ops in numpy between layers. Both hold the pools to one thread while they measure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_thread_pools"]


@contextmanager
def quiet_thread_pools() -> Iterator[None]:
    """Hold every BLAS and OpenMP pool of the process (threadpoolctl) to one thread inside
    the block, so none of their workers spins beside the kernels' own threads."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
