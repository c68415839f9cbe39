"""Running networks and kernels on this machine: ``run_network`` (a pruned network layer by
layer with the C++ kernels), ``prepare`` (one GEMM's kernel) and ``bench`` (bench-kernels).

The runner is imported lazily so ``import grimsim.execute`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GemmRun",
    "KernelCheckError",
    "LayerRun",
    "RunResult",
    "SkippedLayer",
    "legal_assignment",
    "resolve_assignment",
    "run_network",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from grimsim.execute import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'grimsim.execute' has no attribute {name!r}")
