"""The analytical mobile-GPU model: ALU throughput, occupancy, shared DRAM, dispatch cost.

Per row: the GEMM's FLOPs (kept weights only) at the GPU's fp32 peak times a per-kernel
efficiency, divided by the occupancy of its work-groups (one output tile of
``gpu_workgroup_tile`` x ``gpu_workgroup_tile`` per work-group; BCR: one per block row and N
tile; small GEMMs fill only part of the last wave), stretched by the imbalance of sparse
work across a wave; traffic (weights or format, activations in and out) over the DRAM
bandwidth the GPU shares with the CPU; a fixed dispatch cost per kernel launch (per step for
RNN rows). Cheap ops are traffic plus one dispatch. There is no GPU calibration yet, so every
estimate's provenance says ``uncalibrated`` and the band is wide.
"""

from __future__ import annotations

import numpy as np

from grimsim.cost.kernel_params import DEFAULT_PARAMS, KernelParams
from grimsim.cost.profile import DeviceProfile
from grimsim.cost.protocol import EstimateBatch
from grimsim.cost.rows import FORMATS, CostRows, op_code
from grimsim.errors import GrimsimError
from grimsim.network.workload import Op

__all__ = ["GPU_KERNELS", "AnalyticalGPUModel"]

GPU_KERNELS = ("gpu:gemm", "gpu:bcr", "gpu:csr", "gpu:nm", "gpu:pattern", "gpu:eltwise")
_KERNEL_NAMES = np.asarray(GPU_KERNELS, dtype=object)
_EFF_KEYS = ("gemm", "bcr", "csr", "nm", "pattern", "eltwise")
_CONV_CODES = np.asarray([op_code(Op.CONV), op_code(Op.DWCONV)], dtype=np.int8)
_F4 = 4.0


class AnalyticalGPUModel:
    """The analytical GPU model of a profile with a ``gpu`` section (``CostModel``)."""

    unit = "gpu"

    def __init__(self, profile: DeviceProfile, *, params: KernelParams = DEFAULT_PARAMS) -> None:
        if profile.gpu is None:
            raise GrimsimError(f"device {profile.id} has no GPU in its profile; use unit 'cpu' "
                               "or add a gpu section (see `grimsim devices --template`)")
        self.profile = profile
        self.params = params
        gpu = profile.gpu
        self._peak = gpu.fp32_gflops * 1e9
        alus = gpu.alus if gpu.alus else params.gpu_alus_per_core
        self._cores = gpu.shader_cores or max(1, alus // params.gpu_alus_per_core)
        self._slots = self._cores * params.gpu_workgroups_per_core
        self._bw = profile.dram.effective_bandwidth_gbs * 1e9
        self._dispatch = gpu.dispatch_overhead_us * 1e-6
        self._eff = np.array([params.gpu_efficiency[k] for k in _EFF_KEYS])

    @property
    def name(self) -> str:
        return f"analytical-gpu:{self.profile.id}"

    @property
    def provenance(self) -> str:
        return f"analytical-gpu:{self.profile.id} (uncalibrated: no GPU calibration)"

    def estimate(self, rows: object) -> EstimateBatch:
        """Estimate every row (a ``CostRows`` built for unit ``gpu``)."""
        if not isinstance(rows, CostRows):
            raise GrimsimError(f"AnalyticalGPUModel.estimate needs CostRows, got "
                               f"{type(rows).__name__}")
        if rows.unit != "gpu":
            raise GrimsimError(f"rows were built for unit {rows.unit!r}; the GPU model answers "
                               "unit 'gpu' rows")
        p = self.params
        tile = float(p.gpu_workgroup_tile)
        gemm = rows.is_gemm
        is_conv = np.isin(rows.op, _CONV_CODES)
        batch = np.where(is_conv, np.maximum(rows.batch, 1), 1).astype(np.float64)
        groups = rows.groups.astype(np.float64)
        reps = rows.repeats.astype(np.float64)
        m_call = rows.M / groups
        n_call = rows.N / batch
        # kernel: dense GEMM (convs run as implicit GEMMs), or the sparse format's kernel
        kind = np.where(gemm, rows.fmt, len(_EFF_KEYS) - 1).astype(np.int64)
        kind = np.where(gemm & (rows.fmt == FORMATS.index("dense")), 0, kind)
        flops = 2.0 * np.where(gemm, rows.nnz * rows.N * reps, 0.0)
        # work-groups of one dispatch (all groups and images of a step at once)
        bcr = gemm & (rows.fmt == FORMATS.index("bcr"))
        row_units = np.where(bcr, np.ceil(m_call / np.maximum(rows.block_r, 1)),
                             np.ceil(m_call / tile))
        wg = groups * batch * row_units * np.ceil(n_call / tile)
        waves = np.ceil(wg / self._slots)
        occupancy = np.where(gemm, wg / (waves * self._slots), 1.0)
        mean = np.maximum(rows.work_mean, 1e-9)
        imb = np.where(gemm & (rows.fmt != 0), np.maximum(rows.work_max, mean) / mean, 1.0)
        spread = 1.0 + (imb - 1.0) / np.maximum(waves, 1.0)
        eff = self._eff[kind]
        compute = np.where(gemm, flops / (self._peak * eff * occupancy) * spread,
                           rows.elementwise_ops / (self._peak * eff))
        w_bytes = np.where(rows.fmt == 0, np.where(gemm, rows.weight_bytes, 0),
                           rows.format_bytes).astype(np.float64)
        x_bytes = np.where(gemm & ~is_conv, rows.groups * rows.K * rows.N * _F4,
                           rows.act_bytes_in).astype(np.float64)
        y_bytes = rows.act_bytes_out.astype(np.float64)
        # weights once per inference (RNN steps re-read them), activations once per step
        memory = (w_bytes * reps + (x_bytes + y_bytes) * np.where(gemm, reps, 1.0)) / self._bw
        overhead = self._dispatch * np.where(gemm, reps, 1.0)
        big = np.maximum(compute, memory)
        small = np.minimum(compute, memory)
        analytical = big + p.overlap_penalty * small + overhead
        overlap = analytical - compute - memory - overhead
        bound = np.where(overhead > big, 2, np.where(memory > compute, 1, 0)).astype(np.int8)
        lo, hi = p.gpu_band
        return EstimateBatch(
            latency_s=analytical, analytical_s=analytical.copy(), compute_s=compute,
            memory_s=memory, overhead_s=overhead, overlap_s=overlap, bound=bound,
            band_lo_s=analytical * lo, band_hi_s=analytical * hi,
            kernel=_KERNEL_NAMES[kind], provenance=self.provenance,
            meta={"model": "analytical-gpu", "device": self.profile.id, "calibrated": False,
                  "band": f"x{lo:g}..x{hi:g} (uncalibrated)"})
