"""Named features of cost rows for the learned models (numpy only, vectorised).

Two feature sets over the same rows:

* ``CORRECTION_FEATURES``: what the learned correction sees - the GEMM shape per call, the
  scheme's structure (sparsity, block dims, kept rows/columns per block, N:M, imbalance),
  threads, the analytical model's answer (its latency, the compute/memory/overhead shares
  of its breakdown, the kernel it picked, and the speed-up over one thread it predicts -
  ``_THREADS``: on the 2-core host calibration the measured speed-up fell short of the
  predicted one by 0-50 %, the larger part of the 2-thread error), and descriptors of the
  work as the engine's kernels lay it out on this device (``_KERNEL``: operand sizes
  against L2 and the last-level cache, the X panel of an N tile against L2, the pages an N
  tile's X rows span, the X-panel copy, reuse of X and row lengths, N tiles and parallel
  tasks). The correction predicts ``log(measured / analytical)``, so the analytical prior
  carries the physics and the model learns what it misses - on the host calibration, mostly
  the regimes where operands spill a cache level or the TLB (see benchmarks/fidelity.md). A
  recurrent step's GEMM counts the step's weights (all its gates, ``step_bytes``) as its
  weight working set.
* ``BASELINE_FEATURES``: shape/FLOP features only, no analytical prior, for the nn-Meter-style
  random-forest baseline that predicts ``log(latency)`` directly (nn-Meter, MobiSys 2021,
  uses per-kernel random forests on such configuration features).

Sizes enter as log2, so a tree split means "twice as large" anywhere in the range.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from grimsim.cost.kernel_params import CPU_KERNELS
from grimsim.cost.profile import DeviceProfile
from grimsim.cost.protocol import CostModel, EstimateBatch
from grimsim.cost.rows import FORMATS, OPS, CostRows
from grimsim.network.workload import Op
from grimsim.pruning import KINDS

__all__ = [
    "BASELINE_FEATURES",
    "BCR_BAND_ROWS",
    "CORRECTION_FEATURES",
    "GEMM_KERNELS",
    "STACKED_FEATURES",
    "FeatureMachine",
    "baseline_features",
    "correction_features",
    "feature_machine",
    "one_thread_estimate",
    "one_thread_name",
    "stacked_features",
]

#: Kernels the correction is trained on (every CPU kernel but the cheap element-wise ops).
GEMM_KERNELS: tuple[str, ...] = tuple(k for k in CPU_KERNELS if k != "eltwise")

_SHAPE = ("log2_M", "log2_K", "log2_N", "log2_groups", "threads")
_STRUCTURE = ("density", "log2_block_r", "log2_block_c", "log2_kept_rows_per_block",
              "log2_kept_cols_per_block", "kept_row_fraction", "kept_col_fraction", "nm_n",
              "nm_m", "imbalance", "log2_macs", "log2_format_bytes", "log2_act_bytes_in")
_CONV = ("kh", "stride", "ragged_n_share")
_PRIOR = ("log2_call_us", "compute_share", "memory_share", "overhead_share")
_THREADS = ("log2_prior_speedup", "log2_compute_speedup")
_KERNEL = ("log2_x_over_l2", "log2_x_over_llc", "log2_w_over_l2", "log2_w_over_llc",
           "log2_y_over_l2", "log2_operands_over_llc", "log2_panel_over_l2", "log2_x_pages",
           "log2_x_row_bytes", "copy_panels", "log2_x_reuse", "log2_row_nnz", "log2_n_tiles",
           "narrow_n", "log2_tasks", "task_imbalance")

CORRECTION_FEATURES: tuple[str, ...] = (
    _SHAPE + _STRUCTURE + _CONV + _PRIOR + _THREADS + _KERNEL
    + tuple(f"kernel={k}" for k in GEMM_KERNELS))


def one_thread_name(name: str) -> str:
    """The name of feature ``name`` computed for the row on one thread."""
    return f"one_thread:{name}"


#: ``CORRECTION_FEATURES`` of a row, then the same features of the row on one thread (what a
#: stacked correction reads: ``CorrectionRegressor(stack_threads=True)``).
STACKED_FEATURES: tuple[str, ...] = CORRECTION_FEATURES + tuple(
    one_thread_name(n) for n in CORRECTION_FEATURES)

_BASE_OPS = (Op.FC, Op.CONV, Op.DWCONV)
BASELINE_FEATURES: tuple[str, ...] = (
    "log2_M", "log2_K", "log2_N", "log2_groups", "threads", "density", "log2_block_r",
    "log2_block_c", "nm_n", "nm_m", "kh", "kw", "stride", "log2_macs", "log2_dense_macs",
    "log2_weight_bytes", "log2_format_bytes", "log2_act_bytes_in", "log2_act_bytes_out",
    "im2col", "winograd_shape", *(f"scheme={k}" for k in KINDS),
    *(f"op={o}" for o in (*_BASE_OPS, "other")))

# How the sparse kernels lay out their work (cpp_kernels/src/sparse_driver.hpp run_panels):
# N is cut into tiles of whole SIMD vectors whose X panel (K x tile) takes about
# _PANEL_BYTES, 6..24 vectors in multiples of 6; a panel wider than the TLB reach is copied
# into a contiguous buffer when the kernel loads each X row >= 32 times per tile (CSR, N:M,
# pattern: once per nonzero; packed BCR: once per kept column of each tile record, i.e. per
# block and 16-row band); packed BCR works in bands of 16 rows, CSR/N:M/pattern one row per
# unit; 2+ threads split each tile's units into about 4 x threads / tiles chunks.
# Packed BCR (sparse_driver.hpp bcr_panel_layout) sizes its tile by Y instead: as many vectors
# (6..192) as keep the M rows of Y in half of the core's L2, and visits W in chunks of columns
# whose X rows take min(256 KiB, L2 / 2) (none when the chunk would cover K); with chunks, 2+
# threads split a tile's units into about threads / tiles chunks only.
_PANEL_BYTES = 256 * 1024
MIN_TILE_VECTORS, MAX_TILE_VECTORS = 6, 24  # sparse_driver.hpp panel_layout clamp
BCR_MAX_TILE_VECTORS = 192
_BCR_MIN_BUDGET_BYTES, _BCR_MAX_X_BYTES = 64 * 1024, 256 * 1024
_TLB_REACH_BYTES = 64 * 4096
_PAGE_BYTES = 4096
#: rows of a packed BCR band, the threads' unit of work (sparse_simd.hpp kPackedBandRows)
BCR_BAND_ROWS = 16


def n_tile_layout(k: np.ndarray, nv: np.ndarray,
                  lanes: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors per N tile, tiles, vectors of the last tile) of a panel kernel call with K
    rows and nv SIMD vectors along N, as run_panels cuts it: tiles of nt vectors, the last
    one taking the rest, a rest under nt / 2 joining the tile before it (so the last tile
    holds between nt / 2 and 1.5 nt vectors once there are two or more)."""
    nt = np.clip(np.floor(_PANEL_BYTES / (np.maximum(k, 1.0) * lanes * 4.0)),
                 MIN_TILE_VECTORS, MAX_TILE_VECTORS)
    nt -= np.mod(nt, MIN_TILE_VECTORS)
    return _tiles(nt, nv)


def bcr_tile_layout(m: np.ndarray, k: np.ndarray, nv: np.ndarray, lanes: float,
                    l2_bytes: float, threads: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Packed BCR's (vectors per N tile, tiles, vectors of the last tile, columns of W per
    K chunk) for M rows, K columns and nv vectors along N on a core with ``l2_bytes`` of L2
    and ``threads`` threads; the chunk is K when W is not visited in chunks. On several
    threads the tiles get equal widths, a whole number per thread once there are at least as
    many tiles as threads, and two per thread rather than one while tiles keep 24 vectors;
    a single tile over too few rows for the threads to share (under two bands a thread) is
    cut into two a thread when they keep 24 vectors."""
    per_vector = lanes * 4.0
    y_budget = max(l2_bytes // 2, _BCR_MIN_BUDGET_BYTES)
    x_budget = min(max(l2_bytes // 2, _BCR_MIN_BUDGET_BYTES), _BCR_MAX_X_BYTES)
    nt = np.clip(np.floor(y_budget / (np.maximum(m, 1.0) * per_vector)),
                 MIN_TILE_VECTORS, BCR_MAX_TILE_VECTORS)
    nt -= np.mod(nt, MIN_TILE_VECTORS)
    t = np.maximum(np.asarray(threads, dtype=np.float64), 1.0)
    _, tiles, _ = _tiles(nt, nv)
    even = np.where(tiles >= t, np.ceil(tiles / t) * t, tiles)
    # one tile a thread becomes two while tiles keep 24 vectors (not side by side)
    even = np.where((even == t) & (np.ceil(nv / (2.0 * t)) >= 24), 2.0 * t, even)
    nt = np.where((t > 1) & (tiles > 1), np.maximum(MIN_TILE_VECTORS, np.ceil(nv / even)), nt)
    # one tile but too few rows to share between the threads: two tiles a thread
    few_rows = (t > 1) & (tiles <= 1) & (m < 2.0 * BCR_BAND_ROWS * t) & (nv >= 48.0 * t)
    nt = np.where(few_rows, np.ceil(nv / (2.0 * t)), nt)
    width = np.maximum(np.minimum(nt, nv), 1.0)  # the tile as wide as N really is
    kc = np.maximum(64.0, np.floor(x_budget / (width * per_vector)))
    return (*_tiles(nt, nv), np.minimum(kc, np.maximum(k, 1.0)))


def _tiles(nt: np.ndarray, nv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_tiles = np.maximum(1.0, np.floor(nv / nt + 0.5))
    return nt, n_tiles, nv - (n_tiles - 1.0) * nt


def panel_row_chunks(units: np.ndarray, threads: np.ndarray, n_tiles: np.ndarray,
                     chunked: np.ndarray) -> np.ndarray:
    """How many row chunks run_panels cuts each N tile's units into: about 4 tasks per
    thread, one when W goes in K chunks (``chunked``: each task reads its tile's X); one
    chunk on a single thread."""
    per_thread = np.where(chunked, 1.0, 4.0)
    return np.where(threads > 1, np.minimum(units, np.maximum(1.0, _cdiv(per_thread * threads,
                                                                         n_tiles))), 1.0)


@dataclass(frozen=True)
class FeatureMachine:
    """The device facts the kernel descriptors need (from the profile's fastest cluster):
    fp32 lanes per SIMD vector, the L2 one core sees and the last-level cache, in bytes."""

    lanes: int
    l2_bytes: int
    llc_bytes: int


def feature_machine(profile: DeviceProfile) -> FeatureMachine:
    """The ``FeatureMachine`` of a device profile (its fastest cluster; a device without an
    L3/SLC counts its L2 as the last level)."""
    big = profile.clusters_big_first()[0]
    l2 = big.l2_kib * 1024 // max(1, big.l2_shared_by)
    llc = ((profile.l3_kib or 0) + (profile.slc_kib or 0)) * 1024 or big.l2_kib * 1024
    return FeatureMachine(lanes=max(1, big.simd_fp32_lanes), l2_bytes=max(1, l2),
                          llc_bytes=max(1, llc))


def _log2(x: np.ndarray) -> np.ndarray:
    return np.log2(np.maximum(np.asarray(x, dtype=np.float64), 1.0))


def _log2_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log2(a / b), 0 where either is not positive."""
    ok = (a > 0) & (b > 0)
    return np.where(ok, np.log2(np.where(ok, a, 1.0) / np.where(ok, b, 1.0)), 0.0)


def _cdiv(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    return np.floor((a + b - 1) / b)


def _images(rows: CostRows) -> np.ndarray:
    """Images per row that a convolution runs one kernel call each for (1 for other ops)."""
    conv = np.isin(rows.op, [OPS.index(Op.CONV), OPS.index(Op.DWCONV)])
    return np.where(conv, np.maximum(rows.batch, 1), 1)


def _per_call(rows: CostRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, K, N) of one kernel call: one group, and one image for convolutions."""
    m = rows.M / np.maximum(rows.groups, 1)
    n = rows.N / _images(rows)
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


def _kernel_layout(rows: CostRows, machine: FeatureMachine) -> dict[str, np.ndarray]:
    """Operand sizes against the caches and the N-tile/task layout of one call."""
    m, k, n = _per_call(rows)
    groups = np.maximum(rows.groups, 1).astype(np.float64)
    nnz = rows.nnz / groups
    w_bytes = np.where(rows.format_bytes > 0, rows.format_bytes, rows.weight_bytes) / groups
    # a recurrent step's GEMMs stream all the step's weights before this one's come again
    w_bytes = np.maximum(w_bytes, rows.step_bytes / groups)
    x_bytes = k * n * 4.0
    y_bytes = m * n * 4.0
    lanes = float(machine.lanes)
    nv = _cdiv(n, lanes)
    bcr = rows.fmt == FORMATS.index("bcr")
    nt, n_tiles, _ = n_tile_layout(k, nv, lanes)
    b_nt, b_tiles, _, b_kc = bcr_tile_layout(m, k, nv, lanes, machine.l2_bytes,
                                             rows.threads)
    nt, n_tiles = np.where(bcr, b_nt, nt), np.where(bcr, b_tiles, n_tiles)
    narrow = n < lanes
    panel = np.where(bcr, b_kc, k) * np.minimum(nt, nv) * lanes * 4.0
    block_r = np.maximum(rows.block_r.astype(np.float64), 1.0)
    block_c = np.maximum(rows.block_c.astype(np.float64), 1.0)
    bcr_reads = (_cdiv(m, block_r) * _cdiv(k, block_c) * rows.cols_mean
                 * _cdiv(block_r, float(BCR_BAND_ROWS)))
    x_row_reads = np.where(bcr, bcr_reads, nnz)
    copy = (n_tiles > 1) & (x_bytes > _TLB_REACH_BYTES) & (x_row_reads >= 32.0 * k)
    # pages one N tile's X rows lie on: every row its own page once a row is a page long
    pages = np.minimum(x_bytes / _PAGE_BYTES, k)
    units = np.where(bcr, _cdiv(m, BCR_BAND_ROWS), m)
    t = np.maximum(rows.threads, 1).astype(np.float64)
    chunks = panel_row_chunks(units, t, n_tiles, bcr & (b_kc < k))
    tasks = np.where(narrow, np.minimum(units, t), n_tiles * chunks)
    return {
        "log2_x_over_l2": np.log2(np.maximum(x_bytes, 1.0) / machine.l2_bytes),
        "log2_x_over_llc": np.log2(np.maximum(x_bytes, 1.0) / machine.llc_bytes),
        "log2_w_over_l2": np.log2(np.maximum(w_bytes, 1.0) / machine.l2_bytes),
        "log2_w_over_llc": np.log2(np.maximum(w_bytes, 1.0) / machine.llc_bytes),
        "log2_y_over_l2": np.log2(np.maximum(y_bytes, 1.0) / machine.l2_bytes),
        "log2_operands_over_llc": np.log2(np.maximum(x_bytes + w_bytes + y_bytes, 1.0)
                                          / machine.llc_bytes),
        "log2_panel_over_l2": np.log2(np.maximum(panel, 1.0) / machine.l2_bytes),
        "log2_x_pages": _log2(pages),
        "log2_x_row_bytes": _log2(n * 4.0),
        "copy_panels": copy.astype(np.float64),
        "log2_x_reuse": np.log2(np.maximum(nnz, 1.0) / np.maximum(k, 1.0)),
        "log2_row_nnz": np.log2(np.maximum(nnz, 1.0) / np.maximum(m, 1.0)),
        "log2_n_tiles": _log2(n_tiles),
        "narrow_n": narrow.astype(np.float64),
        "log2_tasks": _log2(tasks),
        "task_imbalance": _cdiv(tasks, t) * t / np.maximum(tasks, 1.0),
    }


def one_thread_estimate(model: CostModel, rows: CostRows,
                        estimate: EstimateBatch) -> EstimateBatch:
    """The analytical ``estimate`` of ``rows`` as if each ran on one thread (what
    ``correction_features`` compares the estimate with): ``estimate`` itself where every row
    already has one thread, else the model asked again for the rows with more."""
    multi = np.flatnonzero(rows.threads > 1)
    if multi.size == 0:
        return estimate
    return _with_one_thread(estimate, multi, model.estimate(rows.take(multi).with_threads(1)))


def _with_one_thread(estimate: EstimateBatch, multi: np.ndarray,
                     one: EstimateBatch) -> EstimateBatch:
    """``estimate`` with the rows ``multi`` answered as ``one`` (their one-thread estimate)
    answers them, for the fields ``correction_features`` reads of it."""
    fields = {}
    for name in ("analytical_s", "compute_s"):
        col = getattr(estimate, name).copy()
        col[multi] = getattr(one, name)
        fields[name] = col
    return replace(estimate, **fields)


def stacked_features(model: CostModel, rows: CostRows, estimate: EstimateBatch,
                     device: DeviceProfile | FeatureMachine) -> np.ndarray:
    """The ``STACKED_FEATURES`` matrix (column-major) of ``rows``: their
    ``correction_features`` given ``model``'s ``estimate`` of them, then the same rows' on
    one thread (for rows already on one thread, a copy of their own)."""
    machine = device if isinstance(device, FeatureMachine) else feature_machine(device)
    multi = np.flatnonzero(rows.threads > 1)
    w = len(CORRECTION_FEATURES)
    out = np.empty((len(rows), 2 * w), order="F")  # column-major, as the trees read it
    one_thread = estimate
    if multi.size:
        rows_one = rows.take(multi).with_threads(1)
        est_one = model.estimate(rows_one)
        one_thread = _with_one_thread(estimate, multi, est_one)
    out[:, :w] = correction_features(rows, estimate, machine, one_thread=one_thread)
    out[:, w:] = out[:, :w]
    if multi.size:
        out[multi, w:] = correction_features(rows_one, est_one, machine, one_thread=est_one)
    return out


def correction_features(rows: CostRows, estimate: EstimateBatch,
                        device: DeviceProfile | FeatureMachine, *,
                        one_thread: EstimateBatch) -> np.ndarray:
    """The ``CORRECTION_FEATURES`` matrix (rows x features, float64, column-major so the
    trees read each feature contiguously) of ``rows`` given the analytical ``estimate`` of
    the same rows and ``one_thread``, their estimate on one thread (``one_thread_estimate``),
    for the device (a profile or its ``FeatureMachine``)."""
    if len(estimate) != len(rows) or len(one_thread) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(estimate)} estimates and "
                         f"{len(one_thread)} one-thread estimates")
    machine = device if isinstance(device, FeatureMachine) else feature_machine(device)
    kernel = np.asarray(estimate.kernel, dtype=object)
    # A pruned depthwise conv still runs the dense depthwise kernel (zeros included): describe
    # it as the dense rows calibration measured, not by a sparse structure never seen there.
    rows = rows.as_dense(kernel == "depthwise")
    m, k, n = _per_call(rows)
    cols: dict[str, np.ndarray] = {
        "log2_M": _log2(m), "log2_K": _log2(k), "log2_N": _log2(n),
        "log2_groups": _log2(rows.groups), "threads": rows.threads.astype(np.float64),
        **_structure(rows),
        "kh": rows.kh.astype(np.float64), "stride": rows.stride_h.astype(np.float64),
        "ragged_n_share": np.mod(n, machine.lanes) / machine.lanes,
        **_kernel_layout(rows, machine),
    }
    parts = estimate.compute_s + estimate.memory_s + estimate.overhead_s
    safe = np.where(parts > 0, parts, 1.0)
    # the analytical time of one call (one step of a recurrent layer, one image of a conv),
    # as calibration times it: a row's total over 100 GRU steps lay far outside every
    # calibrated point, and the trees' flat extrapolation there moved gru_timit's predicted
    # step GEMVs by 20 % between two fits of the same points
    calls = np.maximum(rows.repeats, 1) * _images(rows)
    cols["log2_call_us"] = np.log2(np.maximum(estimate.analytical_s * 1e6 / calls, 1e-3))
    cols["compute_share"] = estimate.compute_s / safe
    cols["memory_share"] = estimate.memory_s / safe
    cols["overhead_share"] = estimate.overhead_s / safe
    cols["log2_prior_speedup"] = _log2_ratio(one_thread.analytical_s, estimate.analytical_s)
    cols["log2_compute_speedup"] = _log2_ratio(one_thread.compute_s, estimate.compute_s)
    for name in GEMM_KERNELS:
        cols[f"kernel={name}"] = (kernel == name).astype(np.float64)
    out = np.empty((len(rows), len(CORRECTION_FEATURES)), dtype=np.float64, order="F")
    for j, name in enumerate(CORRECTION_FEATURES):
        out[:, j] = cols[name]
    return out


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
