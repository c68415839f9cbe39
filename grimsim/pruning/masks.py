"""Magnitude (group-norm) masks for every scheme, and the retained-norm proxy on real weights.

``w2d`` is the M x K GEMM view (for conv, columns ordered input channel, kernel row, kernel
column). Every mask keeps a count fixed by the shapes and the scheme (never by the weights),
so ``sparse_workload`` without weights predicts the kept count exactly; the weights only pick
which groups are kept (largest L2 norm; ties go to the lower index). Kept counts and the
granularity bound |reached - S| per scheme (exceeded only when the target rounds to nothing:
every scheme keeps at least one group, or one unit for bcr/block_punched, in the matrix):

* unstructured: k = round((1-S) M K) weights, global top-k by |w|; bound 1/(2MK).
* filter / column: k = round((1-S) M) rows / round((1-S) K) columns by L2 norm; bound
  1/(2M) / 1/(2K).
* pattern: every 3x3 kernel keeps its best pattern of ``PATTERN_LIBRARY`` (largest retained
  energy): 5/9 exactly. With S > 5/9, connectivity pruning then drops whole kernels of
  least retained energy, keeping round((1-S) 9/4 nk) of the nk kernels; bound 2/(9 nk).
* block_punched: blocks of R filters x C input channels; a block drops the same kernel
  positions for all its filters and channels (group norm over the block at that position);
  with one position (1x1 conv, FC) the unit is one column of the block. Counts per block from
  ``_plan`` (punched mode; a block may keep nothing); bound: half a unit, R*C/(2MK)
  (R/(2MK) for one position).
* bcr: in each R x C block the kept rows (largest row norm in the block) and then the kept
  columns (largest column norm over the kept rows) form a full grid; with only ``cols=b`` the
  columns are chosen first. Counts from ``_plan`` (partial edge blocks use their real size;
  a block may keep nothing); bound: half a unit, max(R, C)/(2MK).
* nm: in each group of M consecutive columns of a row, the N largest |w|; a partial last
  group (K not a multiple of M) keeps min(N, its size). Reached: 1 - nnz/(MK) exactly.
"""

from __future__ import annotations

import math

import numpy as np

from grimsim.errors import GrimsimError, SchemeError, ShapeError
from grimsim.pruning import _plan
from grimsim.pruning.scheme import PruningScheme, as_scheme

#: PatDNN-style library of 4-of-9 patterns of a 3x3 kernel (positions kr*3 + kc), each with the
#: centre: the four "T" shapes (centre + three of its four neighbours) and the four 2x2
#: squares holding the centre. PatDNN (Niu et al., ASPLOS 2020) uses 8 such patterns.
PATTERN_LIBRARY: tuple[tuple[int, int, int, int], ...] = (
    (1, 3, 4, 5), (1, 4, 5, 7), (3, 4, 5, 7), (1, 3, 4, 7),
    (0, 1, 3, 4), (1, 2, 4, 5), (3, 4, 6, 7), (4, 5, 7, 8),
)


def pattern_library() -> np.ndarray:
    """The library as int32[P, 4] (what PatternFormat stores)."""
    return np.array(PATTERN_LIBRARY, dtype=np.int32)


def _library_onehot() -> np.ndarray:
    onehot = np.zeros((9, len(PATTERN_LIBRARY)), dtype=np.float64)
    for p, positions in enumerate(PATTERN_LIBRARY):
        onehot[list(positions), p] = 1.0
    return onehot


def _as_weights(w2d: np.ndarray) -> np.ndarray:
    w = np.asarray(w2d)
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise ShapeError(f"weights must be a non-empty 2-D M x K GEMM view, got shape {w.shape}")
    if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
        raise GrimsimError(f"weights must be real numbers, got dtype {w.dtype}")
    if not np.all(np.isfinite(w)):
        raise GrimsimError("weights contain NaN or inf; a magnitude mask needs finite weights")
    return w


def kernel_positions(scheme: PruningScheme, K: int, kernel: tuple[int, int] | None) -> int:
    """Kernel positions per input channel (1 when no kernel is given)."""
    if kernel is None:
        return 1
    kh, kw = (int(v) for v in kernel)
    if kh < 1 or kw < 1:
        raise SchemeError(f"kernel {kernel!r} must be positive")
    if K % (kh * kw):
        raise SchemeError(f"{scheme.spec}: K={K} is not in_channels x {kh}x{kw} kernel "
                          "positions")
    return kh * kw


def keep_count(n: int, s: float) -> int:
    """round((1-S) n) clamped to [1, n]: the kept groups of a global top-k rule."""
    return int(_plan.clamp(_plan.rhu((1.0 - s) * n), 1, n))


def pattern_kernels_kept(n_kernels: int, scheme: PruningScheme) -> int:
    """Kernels kept by pattern pruning (all of them unless S adds connectivity pruning)."""
    if scheme.sparsity is None:
        return n_kernels
    kept = _plan.rhu((1.0 - scheme.sparsity) * 9.0 / 4.0 * n_kernels)
    return int(_plan.clamp(kept, 1, n_kernels))


def bcr_plan(scheme: PruningScheme, M: int, K: int, positions: int = 1) -> _plan.Plan:
    """The count plan of a bcr or block_punched scheme on an M x K matrix."""
    assert scheme.block is not None and scheme.sparsity is not None
    R, C = scheme.block
    s = scheme.sparsity
    if scheme.kind == "block_punched":
        return _plan.make_plan("punched", M, K, R, C, s, 1.0, positions)
    if scheme.keep_rows is not None or scheme.keep_cols is None:
        frac = scheme.keep_rows if scheme.keep_rows is not None else math.sqrt(1.0 - s)
        return _plan.make_plan("rows_fixed", M, K, R, C, s, frac)
    return _plan.make_plan("cols_fixed", M, K, R, C, s, scheme.keep_cols)


def _top_k_along_last(scores: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Bool mask of the k[...] largest scores along the last axis (ties: lower index)."""
    order = np.argsort(-scores, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(scores.shape[-1]), order.shape),
                      axis=-1)
    return ranks < k[..., None]


def _top_k_flat(scores: np.ndarray, k: int) -> np.ndarray:
    flat = scores.ravel()
    keep = np.zeros(flat.size, dtype=bool)
    if k >= flat.size:
        keep[:] = True
    else:
        keep[np.argpartition(-flat, k - 1)[:k]] = True
    return keep.reshape(scores.shape)


def _unstructured(sq: np.ndarray, s: float) -> np.ndarray:
    return _top_k_flat(sq, keep_count(sq.size, s))


def _filter(sq: np.ndarray, s: float) -> np.ndarray:
    norms = sq.sum(axis=1)
    keep = _top_k_along_last(norms, np.array(keep_count(norms.size, s)))
    return np.repeat(keep[:, None], sq.shape[1], axis=1)


def _column(sq: np.ndarray, s: float) -> np.ndarray:
    norms = sq.sum(axis=0)
    keep = _top_k_along_last(norms, np.array(keep_count(norms.size, s)))
    return np.repeat(keep[None, :], sq.shape[0], axis=0)


def _nm(sq: np.ndarray, n: int, m: int) -> np.ndarray:
    M, K = sq.shape
    groups = _plan.ceil_div(K, m)
    padded = np.full((M, groups * m), -1.0)
    padded[:, :K] = sq
    keep = _top_k_along_last(padded.reshape(M, groups, m), np.array(n))
    return keep.reshape(M, groups * m)[:, :K]


def pattern_choice(sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best pattern id, its retained energy) per kernel, from squared weights (M, K)."""
    M, K = sq.shape
    energy = sq.reshape(M, K // 9, 9) @ _library_onehot()
    best = np.argmax(energy, axis=-1)
    return best, np.take_along_axis(energy, best[..., None], axis=-1)[..., 0]


def _pattern(sq: np.ndarray, scheme: PruningScheme) -> np.ndarray:
    M, K = sq.shape
    best, energy = pattern_choice(sq)
    lib = _library_onehot().T.astype(bool)  # (P, 9)
    mask = lib[best]  # (M, Cin, 9)
    kept = pattern_kernels_kept(best.size, scheme)
    if kept < best.size:
        mask &= _top_k_flat(energy, kept)[..., None]
    return mask.reshape(M, K)


def _bcr(sq: np.ndarray, scheme: PruningScheme) -> np.ndarray:
    M, K = sq.shape
    plan = bcr_plan(scheme, M, K)
    assert scheme.block is not None
    R, C = scheme.block
    nrb, ncb = int(plan.n_block_rows), int(plan.n_block_cols)
    n_rows, n_cols, _ = _plan.block_counts(plan)
    padded = np.zeros((nrb * R, ncb * C))
    padded[:M, :K] = sq
    blocks = padded.reshape(nrb, R, ncb, C).transpose(0, 2, 1, 3)  # (nrb, ncb, R, C)
    real_rows = (np.arange(nrb * R) < M).reshape(nrb, 1, R)
    real_cols = (np.arange(ncb * C) < K).reshape(1, ncb, C)
    # the fixed dimension is chosen first on the whole block (in blocks one column/row wide,
    # where the roles swap, the order makes no difference)
    if plan.mode == "rows_fixed":
        rows = _top_k_along_last(np.where(real_rows, blocks.sum(axis=3), -1.0), n_rows)
        col_scores = np.einsum("abrc,abr->abc", blocks, rows.astype(np.float64))
        cols = _top_k_along_last(np.where(real_cols, col_scores, -1.0), n_cols)
    else:
        cols = _top_k_along_last(np.where(real_cols, blocks.sum(axis=2), -1.0), n_cols)
        row_scores = np.einsum("abrc,abc->abr", blocks, cols.astype(np.float64))
        rows = _top_k_along_last(np.where(real_rows, row_scores, -1.0), n_rows)
    grid = rows[..., :, None] & cols[..., None, :]
    return grid.transpose(0, 2, 1, 3).reshape(nrb * R, ncb * C)[:M, :K]


def _block_punched(sq: np.ndarray, scheme: PruningScheme, positions: int) -> np.ndarray:
    M, K = sq.shape
    plan = bcr_plan(scheme, M, K, positions)
    assert scheme.block is not None
    R, C = scheme.block
    nrb, ncb = int(plan.n_block_rows), int(plan.n_block_cols)
    _, _, derived = _plan.block_counts(plan)
    cin = K // positions
    padded = np.zeros((nrb * R, ncb * C, positions))
    padded[:M, :cin] = sq.reshape(M, cin, positions)
    blocks = padded.reshape(nrb, R, ncb, C, positions)
    if positions > 1:
        keep = _top_k_along_last(blocks.sum(axis=(1, 3)), derived)  # (nrb, ncb, P)
        full = np.broadcast_to(keep[:, None, :, None, :], blocks.shape)
    else:
        real_cols = (np.arange(ncb * C) < cin).reshape(1, ncb, C)
        scores = np.where(real_cols, blocks[..., 0].sum(axis=1), -1.0)  # (nrb, ncb, C)
        keep = _top_k_along_last(scores, derived)
        full = np.broadcast_to(keep[:, None, :, :, None], blocks.shape)
    return full.reshape(nrb * R, ncb * C, positions)[:M, :cin].reshape(M, K)


def make_mask(w2d: np.ndarray, scheme: PruningScheme | str, *,
              kernel: tuple[int, int] | None = None) -> np.ndarray:
    """Bool mask (True = kept) of ``scheme`` on the M x K weights ``w2d``.

    ``kernel`` (kh, kw) gives the kernel positions for block_punched (None: one position, as
    for FC and 1x1 conv) and pattern (None: 3x3 assumed, K must be in_channels x 9).
    """
    scheme = as_scheme(scheme)
    w = _as_weights(w2d)
    M, K = w.shape
    sq = np.square(w, dtype=np.float64)
    kind = scheme.kind
    if kind == "dense":
        return np.ones((M, K), dtype=bool)
    if kind == "unstructured":
        assert scheme.sparsity is not None
        return _unstructured(sq, scheme.sparsity)
    if kind == "filter":
        assert scheme.sparsity is not None
        return _filter(sq, scheme.sparsity)
    if kind == "column":
        assert scheme.sparsity is not None
        return _column(sq, scheme.sparsity)
    if kind == "nm":
        assert scheme.n is not None and scheme.m is not None
        if scheme.m > K:
            raise SchemeError(f"{scheme.spec}: N:M needs K >= M, got K={K}")
        return _nm(sq, scheme.n, scheme.m)
    if kind == "pattern":
        if kernel is not None and tuple(kernel) != (3, 3):
            raise SchemeError(f"{scheme.spec}: pattern pruning needs a 3x3 kernel, got {kernel}")
        if K % 9:
            raise SchemeError(f"{scheme.spec}: pattern pruning needs K = in_channels*9, "
                              f"got K={K}")
        return _pattern(sq, scheme)
    if kind == "bcr":
        return _bcr(sq, scheme)
    return _block_punched(sq, scheme, kernel_positions(scheme, K, kernel))


def reached_sparsity(mask: np.ndarray) -> float:
    """Fraction of entries the mask removes."""
    mask = np.asarray(mask, dtype=bool)
    return 1.0 - float(np.count_nonzero(mask)) / mask.size if mask.size else 0.0


def retained_norm(w2d: np.ndarray, mask: np.ndarray) -> float:
    """||w * mask||^2 / ||w||^2 (1.0 for an all-zero w): the accuracy-side proxy."""
    w = np.asarray(w2d, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if w.shape != mask.shape:
        raise ShapeError(f"weights {w.shape} and mask {mask.shape} differ in shape")
    total = float(np.sum(w * w))
    if total == 0.0:
        return 1.0
    return float(np.sum(np.where(mask, w * w, 0.0))) / total
