"""Named features of cost rows for the learned models (numpy only, vectorised).

Two feature sets over the same rows:

* ``CORRECTION_FEATURES``: what the learned correction sees - the GEMM shape per call, the
  scheme's structure (sparsity, block dims, kept rows/columns per block, N:M, imbalance),
  threads, and the analytical model's answer (its latency, the compute/memory/overhead shares
  of its breakdown, the kernel it picked). The correction predicts ``log(measured /
  analytical)``, so the analytical prior carries the physics and the model learns what it
  misses.
* ``BASELINE_FEATURES``: shape/FLOP features only, no analytical prior, for the nn-Meter-style
  random-forest baseline that predicts ``log(latency)`` directly (nn-Meter, MobiSys 2021,
  uses per-kernel random forests on such configuration features).

Sizes enter as log2, so a tree split means "twice as large" anywhere in the range.
"""

from __future__ import annotations

import numpy as np

from grimsim.cost.kernel_params import CPU_KERNELS
from grimsim.cost.protocol import EstimateBatch
from grimsim.cost.rows import OPS, CostRows
from grimsim.network.workload import Op
from grimsim.pruning import KINDS

__all__ = [
    "BASELINE_FEATURES",
    "CORRECTION_FEATURES",
    "GEMM_KERNELS",
    "baseline_features",
    "correction_features",
]

#: Kernels the correction is trained on (every CPU kernel but the cheap element-wise ops).
GEMM_KERNELS: tuple[str, ...] = tuple(k for k in CPU_KERNELS if k != "eltwise")

_SHAPE = ("log2_M", "log2_K", "log2_N", "log2_groups", "threads")
_STRUCTURE = ("density", "log2_block_r", "log2_block_c", "log2_kept_rows_per_block",
              "log2_kept_cols_per_block", "kept_row_fraction", "kept_col_fraction", "nm_n",
              "nm_m", "imbalance", "log2_macs", "log2_format_bytes", "log2_act_bytes_in")
_CONV = ("kh", "stride", "ragged_n_share")
_PRIOR = ("log2_analytical_us", "compute_share", "memory_share", "overhead_share")

CORRECTION_FEATURES: tuple[str, ...] = (
    _SHAPE + _STRUCTURE + _CONV + _PRIOR + tuple(f"kernel={k}" for k in GEMM_KERNELS))

_BASE_OPS = (Op.FC, Op.CONV, Op.DWCONV)
BASELINE_FEATURES: tuple[str, ...] = (
    "log2_M", "log2_K", "log2_N", "log2_groups", "threads", "density", "log2_block_r",
    "log2_block_c", "nm_n", "nm_m", "kh", "kw", "stride", "log2_macs", "log2_dense_macs",
    "log2_weight_bytes", "log2_format_bytes", "log2_act_bytes_in", "log2_act_bytes_out",
    "im2col", "winograd_shape", *(f"scheme={k}" for k in KINDS),
    *(f"op={o}" for o in (*_BASE_OPS, "other")))


def _log2(x: np.ndarray) -> np.ndarray:
    return np.log2(np.maximum(np.asarray(x, dtype=np.float64), 1.0))


def _per_call(rows: CostRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, K, N) of one kernel call: one group, and one image for convolutions."""
    conv = np.isin(rows.op, [OPS.index(Op.CONV), OPS.index(Op.DWCONV)])
    batch = np.where(conv, np.maximum(rows.batch, 1), 1)
    m = rows.M / np.maximum(rows.groups, 1)
    n = rows.N / batch
    return m.astype(np.float64), rows.K.astype(np.float64), n.astype(np.float64)


def _structure(rows: CostRows) -> dict[str, np.ndarray]:
    block_r = rows.block_r.astype(np.float64)
    block_c = rows.block_c.astype(np.float64)
    rows_mean = rows.rows_mean.astype(np.float64)
    cols_mean = rows.cols_mean.astype(np.float64)
    _, _, n = _per_call(rows)
    groups = np.maximum(rows.groups, 1).astype(np.float64)
    nnz_call = rows.nnz / groups
    return {
        "density": 1.0 - rows.sparsity.astype(np.float64),
        "log2_block_r": _log2(block_r), "log2_block_c": _log2(block_c),
        "log2_kept_rows_per_block": np.log2(rows_mean + 1.0),
        "log2_kept_cols_per_block": np.log2(cols_mean + 1.0),
        "kept_row_fraction": np.where(block_r > 0, rows_mean / np.maximum(block_r, 1.0), 1.0),
        "kept_col_fraction": np.where(block_c > 0, cols_mean / np.maximum(block_c, 1.0), 1.0),
        "nm_n": rows.nm_n.astype(np.float64), "nm_m": rows.nm_m.astype(np.float64),
        "imbalance": rows.imbalance.astype(np.float64),
        "log2_macs": _log2(nnz_call * n),
        "log2_format_bytes": _log2(np.where(rows.format_bytes > 0, rows.format_bytes,
                                            rows.weight_bytes) / groups),
        "log2_act_bytes_in": _log2(rows.act_bytes_in),
    }


def correction_features(rows: CostRows, estimate: EstimateBatch, lanes: int) -> np.ndarray:
    """The ``CORRECTION_FEATURES`` matrix (rows x features, float64) of ``rows`` given the
    analytical ``estimate`` of the same rows; ``lanes`` is the fp32 SIMD width of the device
    (for the share of N left in a ragged last vector)."""
    if len(estimate) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(estimate)} estimates")
    m, k, n = _per_call(rows)
    cols: dict[str, np.ndarray] = {
        "log2_M": _log2(m), "log2_K": _log2(k), "log2_N": _log2(n),
        "log2_groups": _log2(rows.groups), "threads": rows.threads.astype(np.float64),
        **_structure(rows),
        "kh": rows.kh.astype(np.float64), "stride": rows.stride_h.astype(np.float64),
        "ragged_n_share": np.mod(n, lanes) / lanes,
    }
    parts = estimate.compute_s + estimate.memory_s + estimate.overhead_s
    safe = np.where(parts > 0, parts, 1.0)
    cols["log2_analytical_us"] = np.log2(np.maximum(estimate.analytical_s * 1e6, 1e-3))
    cols["compute_share"] = estimate.compute_s / safe
    cols["memory_share"] = estimate.memory_s / safe
    cols["overhead_share"] = estimate.overhead_s / safe
    kernel = np.asarray(estimate.kernel, dtype=object)
    for name in GEMM_KERNELS:
        cols[f"kernel={name}"] = (kernel == name).astype(np.float64)
    return np.column_stack([cols[f] for f in CORRECTION_FEATURES])


def baseline_features(rows: CostRows) -> np.ndarray:
    """The ``BASELINE_FEATURES`` matrix: shape, FLOP and byte counts, scheme and op one-hots."""
    m, k, n = _per_call(rows)
    st = _structure(rows)
    op_names = rows.op_names()
    cols: dict[str, np.ndarray] = {
        "log2_M": _log2(m), "log2_K": _log2(k), "log2_N": _log2(n),
        "log2_groups": _log2(rows.groups), "threads": rows.threads.astype(np.float64),
        "density": st["density"], "log2_block_r": st["log2_block_r"],
        "log2_block_c": st["log2_block_c"], "nm_n": st["nm_n"], "nm_m": st["nm_m"],
        "kh": rows.kh.astype(np.float64), "kw": rows.kw.astype(np.float64),
        "stride": rows.stride_h.astype(np.float64), "log2_macs": st["log2_macs"],
        "log2_dense_macs": _log2(m * k * n), "log2_weight_bytes": _log2(rows.weight_bytes),
        "log2_format_bytes": st["log2_format_bytes"],
        "log2_act_bytes_in": st["log2_act_bytes_in"],
        "log2_act_bytes_out": _log2(rows.act_bytes_out),
        "im2col": rows.im2col.astype(np.float64),
        "winograd_shape": rows.winograd.astype(np.float64),
    }
    for i, kind in enumerate(KINDS):
        cols[f"scheme={kind}"] = (rows.scheme == i).astype(np.float64)
    known = np.zeros(len(rows), bool)
    for o in _BASE_OPS:
        hit = op_names == o
        known |= hit
        cols[f"op={o}"] = hit.astype(np.float64)
    cols["op=other"] = (~known).astype(np.float64)
    return np.column_stack([cols[f] for f in BASELINE_FEATURES])
