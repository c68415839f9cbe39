"""What a pruned GEMM costs to run and store: ``SparseWorkload`` (one GEMM) and
``SparseWorkloadBatch`` (many GEMM shapes, one scheme; what the cost model consumes).

With weights, the figures come from the real mask and its encoded format. Without weights
they are computed from the scheme's counting rules (``_expected``): exact for nnz, reached
sparsity, MACs, blocks, kept rows/columns per block, bytes and per-block-row work, except the
per-row spread of unstructured and connectivity-pruned pattern masks (approximated); the
proxy is then its expectation under i.i.d. Gaussian weights.

Units of the distributions: ``rows_per_block`` / ``cols_per_block`` are kept rows/columns per
stored block of the format: BCR blocks; CSR rows (1 x kept); N:M groups (1 x kept); pattern
kernels (1 x 4); dense: the whole matrix. ``row_work`` is kept weights per BCR block row, per
matrix row (dense, CSR, N:M) or per filter (pattern): what one unit of thread work holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grimsim.errors import SchemeError, ShapeError
from grimsim.network.workload import FLOAT32_BYTES, GemmView, LayerWorkload
from grimsim.pruning import _expected
from grimsim.pruning.formats import (
    BCRFormat,
    CSRFormat,
    DenseFormat,
    NMFormat,
    PatternFormat,
    encode,
    format_block,
    format_name,
)
from grimsim.pruning.masks import make_mask, reached_sparsity, retained_norm
from grimsim.pruning.scheme import PruningScheme, as_scheme, check_legal, kernel_of


@dataclass(frozen=True)
class Dist:
    """Mean, min and max of a per-block (or per-row) count."""

    mean: float
    min: float
    max: float

    @classmethod
    def of(cls, values: np.ndarray) -> Dist:
        if values.size == 0:
            return cls(0.0, 0.0, 0.0)
        return cls(float(values.mean()), float(values.min()), float(values.max()))

    @property
    def imbalance(self) -> float:
        """max / mean (1.0 = perfectly balanced; 1.0 when empty)."""
        return self.max / self.mean if self.mean > 0 else 1.0


@dataclass(frozen=True)
class SparseWorkload:
    """A GEMM ``Y[M x N] = W[M x K] @ X[K x N]`` with ``W`` pruned by ``scheme``.

    ``macs`` = nnz x N x repeats (grouped GEMMs already count K per group). ``format`` and
    ``block``: the compact format (``'bcr'`` with its (R, C), ``'csr'``, ``'nm'``,
    ``'pattern'``, ``'dense'``). ``proxy``: retained squared norm, measured when
    ``from_weights`` else expected under Gaussian weights.
    """

    name: str
    scheme: PruningScheme
    M: int
    K: int
    N: int
    groups: int
    repeats: int
    nnz: int
    sparsity: float
    macs: int
    dense_macs: int
    format: str
    block: tuple[int, int] | None
    n_blocks: int
    rows_per_block: Dist
    cols_per_block: Dist
    row_work: Dist
    format_bytes: int
    dense_bytes: int
    proxy: float
    from_weights: bool

    @property
    def compression(self) -> float:
        """dense_bytes / format_bytes."""
        return self.dense_bytes / self.format_bytes if self.format_bytes else 1.0


def _resolve(target: LayerWorkload | GemmView) -> tuple[GemmView, tuple[int, int] | None]:
    if isinstance(target, LayerWorkload):
        if len(target.gemms) != 1:
            raise SchemeError(f"layer {target.name!r} has {len(target.gemms)} GEMMs; call "
                              "sparse_workload on each of layer.gemms")
        return target.gemms[0], kernel_of(target)
    if isinstance(target, GemmView):
        return target, target.kernel
    raise TypeError(f"expected a LayerWorkload or GemmView, got {type(target).__name__}")


def _positions(scheme: PruningScheme, kernel: tuple[int, int] | None) -> int:
    return kernel[0] * kernel[1] if kernel is not None and scheme.kind == "block_punched" else 1


def sparse_workload(target: LayerWorkload | GemmView, scheme: PruningScheme | str,
                    w2d: np.ndarray | None = None) -> SparseWorkload:
    """The pruned workload of a GEMM (or a single-GEMM layer) under ``scheme``.

    With ``w2d`` (the M x K weights) the mask is made and encoded; without, the statistics
    follow from the scheme's rules (module docstring). Illegal schemes raise SchemeError.
    """
    scheme = as_scheme(scheme)
    gemm, kernel = _resolve(target)
    check_legal(scheme, target)
    M, K = gemm.M, gemm.K
    dense_macs = gemm.macs
    weight_bytes = gemm.weight_count * FLOAT32_BYTES
    if w2d is None:
        st = _expected.expected_stats_cached(scheme, M, K, _positions(scheme, kernel))
        nnz = int(st["nnz"])
        return SparseWorkload(
            name=gemm.name, scheme=scheme, M=M, K=K, N=gemm.N, groups=gemm.groups,
            repeats=gemm.repeats, nnz=nnz, sparsity=1.0 - nnz / (M * K),
            macs=nnz * gemm.N * gemm.repeats, dense_macs=dense_macs, format=format_name(scheme),
            block=format_block(scheme, M, K, kernel), n_blocks=int(st["n_blocks"]),
            rows_per_block=Dist(float(st["rows_mean"]), float(st["rows_min"]),
                                float(st["rows_max"])),
            cols_per_block=Dist(float(st["cols_mean"]), float(st["cols_min"]),
                                float(st["cols_max"])),
            row_work=Dist(float(st["work_mean"]), float(st["work_min"]), float(st["work_max"])),
            format_bytes=int(st["format_bytes"]) if gemm.prunable else 0,
            dense_bytes=weight_bytes, proxy=float(st["proxy"]), from_weights=False)
    w = np.asarray(w2d)
    if w.shape != (M, K):
        raise ShapeError(f"GEMM {gemm.name!r}: weights have shape {w.shape}, expected "
                         f"(M, K) = ({M}, {K})")
    mask = make_mask(w, scheme, kernel=kernel)
    fmt = encode(w, mask, scheme, kernel=kernel)
    nnz = int(np.count_nonzero(mask))
    n_blocks, rows, cols, work = format_stats(fmt, mask)
    return SparseWorkload(
        name=gemm.name, scheme=scheme, M=M, K=K, N=gemm.N, groups=gemm.groups,
        repeats=gemm.repeats, nnz=nnz, sparsity=reached_sparsity(mask),
        macs=nnz * gemm.N * gemm.repeats, dense_macs=dense_macs, format=format_name(scheme),
        block=format_block(scheme, M, K, kernel), n_blocks=n_blocks, rows_per_block=rows,
        cols_per_block=cols, row_work=work, format_bytes=fmt.nbytes if gemm.prunable else 0,
        dense_bytes=weight_bytes, proxy=retained_norm(w, mask), from_weights=True)


def format_stats(fmt: object, mask: np.ndarray) -> tuple[int, Dist, Dist, Dist]:
    M, K = mask.shape
    row_counts = np.count_nonzero(mask, axis=1)
    if isinstance(fmt, BCRFormat):
        rows, cols = fmt.rows_per_block, fmt.cols_per_block
        nrb = fmt.block_row_ptr.size - 1
        block_row = np.repeat(np.arange(nrb), np.diff(fmt.block_row_ptr))
        work = np.bincount(block_row, weights=rows.astype(np.float64) * cols, minlength=nrb)
        return fmt.n_blocks, Dist.of(rows), Dist.of(cols), Dist.of(work)
    if isinstance(fmt, CSRFormat):
        ones = np.ones(M)
        return M, Dist.of(ones), Dist.of(row_counts), Dist.of(row_counts)
    if isinstance(fmt, NMFormat):
        groups = fmt.values.shape[1]
        padded = np.zeros((M, groups * fmt.m), dtype=bool)
        padded[:, :K] = mask
        per_group = padded.reshape(M, groups, fmt.m).sum(axis=-1)
        return M * groups, Dist.of(np.ones(1)), Dist.of(per_group), Dist.of(row_counts)
    if isinstance(fmt, PatternFormat):
        nk = fmt.kernel_channel.size
        per_filter = 4 * np.diff(fmt.kernel_ptr)
        unit = np.ones(1) if nk else np.zeros(0)
        return nk, Dist.of(unit), Dist.of(4 * unit), Dist.of(per_filter)
    assert isinstance(fmt, DenseFormat)
    return 1, Dist(M, M, M), Dist(K, K, K), Dist.of(np.full(M, K))


# --------------------------------------------------------------------------- batch


@dataclass(frozen=True, eq=False)
class SparseWorkloadBatch:
    """``SparseWorkload`` fields as arrays over a batch of GEMM shapes with one scheme.

    Distributions are split into ``*_mean``/``*_min``/``*_max`` arrays; ``proxy`` is NaN
    when not requested.
    """

    scheme: PruningScheme
    M: np.ndarray
    K: np.ndarray
    N: np.ndarray
    groups: np.ndarray
    repeats: np.ndarray
    nnz: np.ndarray
    sparsity: np.ndarray
    macs: np.ndarray
    dense_macs: np.ndarray
    n_blocks: np.ndarray
    rows_mean: np.ndarray
    rows_min: np.ndarray
    rows_max: np.ndarray
    cols_mean: np.ndarray
    cols_min: np.ndarray
    cols_max: np.ndarray
    work_mean: np.ndarray
    work_min: np.ndarray
    work_max: np.ndarray
    format_bytes: np.ndarray
    dense_bytes: np.ndarray
    proxy: np.ndarray

    def __len__(self) -> int:
        return int(self.M.size)


def _int_array(value: object, n: int, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.shape != (n,):
        raise ShapeError(f"sparse_workload_batch: {what} must be a scalar or have {n} values, "
                         f"got shape {arr.shape}")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 1):
        raise ShapeError(f"sparse_workload_batch: {what} must hold positive integers")
    return arr.astype(np.int64)


def _batch_legality(scheme: PruningScheme, M: np.ndarray, K: np.ndarray, groups: np.ndarray,
                    positions: np.ndarray) -> None:
    bad = np.zeros(M.shape, dtype=bool)
    reason = ""
    if scheme.kind == "nm":
        assert scheme.m is not None
        bad, reason = scheme.m > K, f"N:M needs K >= M={scheme.m}"
    elif scheme.kind == "pattern":
        bad = (positions != 9) | (K % 9 != 0) | ((K == 9) & (groups > 1))
        reason = "pattern needs a non-depthwise 3x3 conv (kernel_size 9, K = in_channels*9)"
    elif scheme.kind == "block_punched":
        bad, reason = K % positions != 0, "K must be in_channels x kernel_size"
    if np.any(bad):
        i = int(np.argmax(bad))
        raise SchemeError(f"scheme {scheme.spec!r} is illegal for batch row {i} "
                          f"(M={M[i]}, K={K[i]}): {reason}")


def sparse_workload_batch(M: Sequence[int] | np.ndarray, K: Sequence[int] | np.ndarray,
                          N: Sequence[int] | np.ndarray, scheme: PruningScheme | str, *,
                          groups: object = 1, repeats: object = 1, kernel_size: object = 1,
                          proxy: bool = True) -> SparseWorkloadBatch:
    """Expected ``SparseWorkload`` figures for many prunable GEMM shapes under one scheme,
    vectorised (no weights). ``kernel_size`` = kh*kw per row (9 for 3x3 conv; used by
    pattern and block_punched). ``proxy=False`` skips the Gaussian proxy (NaN)."""
    scheme = as_scheme(scheme)
    try:
        n = max(1, int(np.broadcast(np.asarray(M), np.asarray(K), np.asarray(N)).size))
    except ValueError:
        raise ShapeError("sparse_workload_batch: M, K and N must be scalars or arrays of one "
                         "length") from None
    m_arr = _int_array(M, n, "M")
    k_arr = _int_array(K, n, "K")
    n_arr = _int_array(N, n, "N")
    g_arr = _int_array(groups, n, "groups")
    r_arr = _int_array(repeats, n, "repeats")
    p_arr = _int_array(kernel_size, n, "kernel_size")
    if np.any(m_arr % g_arr):
        raise ShapeError("sparse_workload_batch: groups must divide M")
    _batch_legality(scheme, m_arr, k_arr, g_arr, p_arr)
    positions = p_arr if scheme.kind == "block_punched" else np.ones(n, np.int64)
    st = _expected.expected_stats(scheme, m_arr, k_arr, positions, proxy=False)
    proxy_arr = _batch_proxy(scheme, m_arr, k_arr, positions) if proxy else np.full(n, math.nan)

    def arr(key: str, dtype: type = np.float64) -> np.ndarray:
        return np.broadcast_to(np.asarray(st[key], dtype=dtype), (n,)).copy()

    nnz = arr("nnz", np.int64)
    dense = m_arr * k_arr
    return SparseWorkloadBatch(
        scheme=scheme, M=m_arr, K=k_arr, N=n_arr, groups=g_arr, repeats=r_arr, nnz=nnz,
        sparsity=1.0 - nnz / dense, macs=nnz * n_arr * r_arr, dense_macs=dense * n_arr * r_arr,
        n_blocks=arr("n_blocks", np.int64), rows_mean=arr("rows_mean"),
        rows_min=arr("rows_min"), rows_max=arr("rows_max"), cols_mean=arr("cols_mean"),
        cols_min=arr("cols_min"), cols_max=arr("cols_max"), work_mean=arr("work_mean"),
        work_min=arr("work_min"), work_max=arr("work_max"),
        format_bytes=arr("format_bytes", np.int64), dense_bytes=dense * FLOAT32_BYTES,
        proxy=proxy_arr)


def _batch_proxy(scheme: PruningScheme, M: np.ndarray, K: np.ndarray,
                 positions: np.ndarray) -> np.ndarray:
    """The expected proxy per row, computed once per distinct (M, K, positions)."""
    if M.size == 0:
        return np.zeros(0)
    k_span, p_span = int(K.max()) + 1, int(positions.max()) + 1
    if int(M.max()) * k_span * p_span < 2 ** 62:
        # one int64 key per row sorts far faster than np.unique over rows
        keys, inverse = np.unique((M * k_span + K) * p_span + positions, return_inverse=True)
        uniq = np.stack([keys // (k_span * p_span), keys // p_span % k_span, keys % p_span],
                        axis=1)
    else:
        uniq, inverse = np.unique(np.stack([M, K, positions], axis=1), axis=0,
                                  return_inverse=True)
    values = _expected.expected_stats(scheme, uniq[:, 0], uniq[:, 1], uniq[:, 2])["proxy"]
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (uniq.shape[0],))[
        inverse.reshape(-1)].copy()
