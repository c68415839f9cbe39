"""The CostModel protocol and the values it exchanges (what the search may depend on).

Queries and answers are batched as struct-of-arrays so a model can answer millions of rows per
second with numpy; ``CostEstimate`` is the per-row view of an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

#: What bounds an estimate, in the order of the ``bound`` codes of ``EstimateBatch``.
BOUNDS = ("compute", "memory", "overhead")


@dataclass(frozen=True)
class CostEstimate:
    """One latency estimate with its breakdown, bound, error band and provenance.

    ``latency_s`` is the model's point estimate; ``compute_s + memory_s + overhead_s`` is the
    analytical breakdown before any learned correction, so the correction shows as
    ``correction = latency_s / (compute_s + memory_s + overhead_s)``... unless the model
    overlaps compute and memory, in which case ``overlap_s`` (<= 0) makes the parts add up:
    ``compute_s + memory_s + overhead_s + overlap_s == analytical_s``.
    """

    latency_s: float
    analytical_s: float
    compute_s: float
    memory_s: float
    overhead_s: float
    overlap_s: float
    bound: str
    band_s: tuple[float, float]
    kernel: str
    provenance: str


@dataclass(frozen=True)
class EstimateBatch:
    """Answers for a batch of rows (arrays of equal length)."""

    latency_s: np.ndarray
    analytical_s: np.ndarray
    compute_s: np.ndarray
    memory_s: np.ndarray
    overhead_s: np.ndarray
    overlap_s: np.ndarray
    bound: np.ndarray  # int8 index into BOUNDS
    band_lo_s: np.ndarray
    band_hi_s: np.ndarray
    kernel: np.ndarray  # object array of kernel names
    provenance: str
    meta: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.latency_s.shape[0])

    def row(self, i: int) -> CostEstimate:
        return CostEstimate(
            latency_s=float(self.latency_s[i]), analytical_s=float(self.analytical_s[i]),
            compute_s=float(self.compute_s[i]), memory_s=float(self.memory_s[i]),
            overhead_s=float(self.overhead_s[i]), overlap_s=float(self.overlap_s[i]),
            bound=BOUNDS[int(self.bound[i])],
            band_s=(float(self.band_lo_s[i]), float(self.band_hi_s[i])),
            kernel=str(self.kernel[i]), provenance=self.provenance)


@runtime_checkable
class CostModel(Protocol):
    """Anything that turns a batch of workload rows into latency estimates."""

    @property
    def name(self) -> str:
        """``<device>@<version>`` plus the model kind, for provenance."""
        ...

    def estimate(self, rows: object) -> EstimateBatch:
        """Estimate every row of a batch (a ``grimsim.cost.rows.CostRows``)."""
        ...
