"""Compact weight formats the C++ kernels read (layouts agreed in the formats note).

All index arrays are int32 (value pointers int64), C-contiguous; values float32. ``encode``
stores ``where(mask, w, 0)`` as float32, so ``decode(encode(w, mask, s))`` equals it bit for
bit (for float32 input, exactly w * mask with +0.0 for removed weights).

Which format a scheme uses:

* dense -> ``DenseFormat``; unstructured -> ``CSRFormat``; nm -> ``NMFormat``;
  pattern -> ``PatternFormat``;
* bcr -> ``BCRFormat`` with the scheme's R x C blocks;
* block_punched -> ``BCRFormat`` with blocks of R rows x C*P columns (C channels times the P
  kernel positions): every row of a block is kept and its kept columns are the kept positions
  of all its channels;
* filter and column -> ``BCRFormat`` with a single M x K block: filter pruning is the block
  whose kept columns are all columns, column pruning the block whose kept rows are all rows
  (the kernels run it as one dense GEMM of the kept rows x kept columns, reading X's kept
  rows in place and placing Y's kept rows after it).

BCR ``reorder``: within each block row, rows are grouped by their kept-column set over the
whole row (identical sets together); groups are ordered by size (largest first, ties by their
first row), rows inside a group ascending, and fully pruned rows last.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from grimsim.aligned import CACHE_LINE_BYTES, aligned_empty
from grimsim.errors import SchemeError, ShapeError
from grimsim.pruning import _plan
from grimsim.pruning.masks import PATTERN_LIBRARY, kernel_positions, pattern_library
from grimsim.pruning.scheme import PruningScheme, as_scheme

#: Alignment of BCR values (bytes) and of each block's start (floats).
VALUE_ALIGN_BYTES = CACHE_LINE_BYTES
BLOCK_ALIGN_FLOATS = 16


def _arrays_nbytes(obj: object) -> int:
    return sum(getattr(obj, f.name).nbytes for f in fields(obj)  # type: ignore[arg-type]
               if isinstance(getattr(obj, f.name), np.ndarray))


@dataclass(frozen=True, eq=False)
class DenseFormat:
    """Plain row-major float32 weights (the masked matrix)."""

    values: np.ndarray
    shape: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return _arrays_nbytes(self)

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.values))


@dataclass(frozen=True, eq=False)
class CSRFormat:
    """Compressed sparse rows: ``indptr`` int32[M+1], ``indices`` int32[nnz] (sorted per
    row), ``data`` float32[nnz]."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return _arrays_nbytes(self)

    @property
    def nnz(self) -> int:
        return int(self.indices.size)


@dataclass(frozen=True, eq=False)
class NMFormat:
    """N:M along K: ``values`` float32[M, G, n] and ``indices`` int32[M, G, n] (position in
    the group, strictly increasing; unused slots hold 0.0 at a non-kept position, inside the
    matrix when the group has room), G = ceil(K / m)."""

    values: np.ndarray
    indices: np.ndarray
    shape: tuple[int, int]
    n: int
    m: int

    @property
    def nbytes(self) -> int:
        return _arrays_nbytes(self)

    @property
    def nnz(self) -> int:
        """Stored slots (the kernels' work), kept weights plus unused slots."""
        return int(self.values.size)


@dataclass(frozen=True, eq=False)
class PatternFormat:
    """3x3 pattern + connectivity pruning (PatDNN style); see the formats note."""

    library: np.ndarray
    kernel_ptr: np.ndarray
    kernel_channel: np.ndarray
    kernel_pattern: np.ndarray
    values: np.ndarray
    filter_order: np.ndarray
    shape: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return _arrays_nbytes(self)

    @property
    def nnz(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True, eq=False)
class BCRFormat:
    """Block-based column-row: CSR over the non-empty R x C blocks, each a dense grid of its
    kept rows x kept columns (absolute indices), values 64-byte aligned; see the formats
    note and the module docstring for ``reorder``."""

    block_row_ptr: np.ndarray
    block_col: np.ndarray
    row_ptr: np.ndarray
    row_idx: np.ndarray
    col_ptr: np.ndarray
    col_idx: np.ndarray
    val_ptr: np.ndarray
    values: np.ndarray
    reorder: np.ndarray
    shape: tuple[int, int]
    block: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return _arrays_nbytes(self)

    @property
    def n_blocks(self) -> int:
        return int(self.block_col.size)

    @property
    def rows_per_block(self) -> np.ndarray:
        return np.diff(self.row_ptr)

    @property
    def cols_per_block(self) -> np.ndarray:
        return np.diff(self.col_ptr)

    @property
    def nnz(self) -> int:
        return int(np.sum(self.rows_per_block.astype(np.int64) * self.cols_per_block))


Format = DenseFormat | CSRFormat | NMFormat | PatternFormat | BCRFormat


# --------------------------------------------------------------------------- helpers


def _frozen(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


def _ptr(counts: np.ndarray, dtype: type = np.int32) -> np.ndarray:
    out: np.ndarray = np.zeros(counts.size + 1, dtype=dtype)
    np.cumsum(counts, out=out[1:])
    return out


def format_block(scheme: PruningScheme | str, M: int, K: int,
                 kernel: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The BCR block (R, C) a scheme is stored with, or None for non-BCR formats."""
    scheme = as_scheme(scheme)
    if scheme.kind in ("filter", "column"):
        return (M, K)
    if scheme.kind == "bcr":
        return scheme.block
    if scheme.kind == "block_punched":
        assert scheme.block is not None
        return (scheme.block[0], scheme.block[1] * kernel_positions(scheme, K, kernel))
    return None


def format_name(scheme: PruningScheme | str) -> str:
    """'dense', 'csr', 'nm', 'pattern' or 'bcr'."""
    kind = as_scheme(scheme).kind
    return {"dense": "dense", "unstructured": "csr", "nm": "nm",
            "pattern": "pattern"}.get(kind, "bcr")


# --------------------------------------------------------------------------- encode


def _encode_dense(w: np.ndarray, mask: np.ndarray) -> DenseFormat:
    values = np.where(mask, w, np.float32(0)).astype(np.float32)
    _frozen(values)
    return DenseFormat(values, w.shape)


def _encode_csr(w: np.ndarray, mask: np.ndarray) -> CSRFormat:
    rows, cols = np.nonzero(mask)
    indptr = _ptr(np.count_nonzero(mask, axis=1))
    indices = cols.astype(np.int32)
    data = np.ascontiguousarray(w[rows, cols], dtype=np.float32)
    _frozen(indptr, indices, data)
    return CSRFormat(indptr, indices, data, w.shape)


def _encode_nm(w: np.ndarray, mask: np.ndarray, n: int, m: int) -> NMFormat:
    M, K = w.shape
    groups = _plan.ceil_div(K, m)
    pm = np.zeros((M, groups * m), dtype=bool)
    pm[:, :K] = mask
    pw = np.zeros((M, groups * m), dtype=np.float32)
    pw[:, :K] = np.where(mask, w, np.float32(0))
    pm3, pw3 = pm.reshape(M, groups, m), pw.reshape(M, groups, m)
    counts = pm3.sum(axis=-1)
    if np.any(counts > n):
        r, g = np.argwhere(counts > n)[0]
        raise SchemeError(f"mask is not {n}:{m}: row {r}, group {g} keeps {counts[r, g]} > {n}")
    pos = np.arange(m)
    real = (np.arange(groups)[:, None] * m + pos[None, :]) < K  # (G, m)
    # kept positions first, then free positions inside the matrix, then padding
    priority = np.where(pm3, 0, np.where(real[None], 1, 2)) * m + pos
    chosen = np.sort(np.argsort(priority, axis=-1, kind="stable")[..., :n], axis=-1)
    values = np.ascontiguousarray(np.take_along_axis(pw3, chosen, axis=-1), dtype=np.float32)
    indices = np.ascontiguousarray(chosen, dtype=np.int32)
    _frozen(values, indices)
    return NMFormat(values, indices, w.shape, n, m)


def _pattern_lookup() -> np.ndarray:
    """Position bitmask (0..511) -> pattern id; -1 not a pattern, -2 empty kernel."""
    lut = np.full(512, -1, dtype=np.int64)
    lut[0] = -2
    for p, positions in enumerate(PATTERN_LIBRARY):
        lut[sum(1 << q for q in positions)] = p
    return lut


def _encode_pattern(w: np.ndarray, mask: np.ndarray) -> PatternFormat:
    M, K = w.shape
    if K % 9:
        raise SchemeError(f"pattern format needs K = in_channels*9, got K={K}")
    cin = K // 9
    codes = (mask.reshape(M, cin, 9).astype(np.int64) << np.arange(9)).sum(axis=-1)
    pid = _pattern_lookup()[codes]
    if np.any(pid == -1):
        f, c = np.argwhere(pid == -1)[0]
        kept = np.nonzero(mask.reshape(M, cin, 9)[f, c])[0].tolist()
        raise SchemeError(f"mask is not a pattern mask: filter {f}, channel {c} keeps "
                          f"positions {kept}, not one of the library's patterns")
    kept = pid >= 0
    n_pat = len(PATTERN_LIBRARY)
    hist = (pid[..., None] == np.arange(n_pat)).sum(axis=1)  # (M, P)
    keys = [np.arange(M)] + [-hist[:, p] for p in reversed(range(n_pat))] + [-kept.sum(axis=1)]
    filter_order = np.lexsort(keys).astype(np.int32)
    kept_o = kept[filter_order]
    fi, ch = np.nonzero(kept_o)
    kernel_pattern = pid[filter_order][fi, ch].astype(np.int32)
    lib = pattern_library()
    w3 = np.where(mask, w, np.float32(0)).astype(np.float32).reshape(M, cin, 9)
    values = np.ascontiguousarray(
        np.take_along_axis(w3[filter_order[fi], ch], lib[kernel_pattern], axis=1),
        dtype=np.float32)
    kernel_ptr = _ptr(kept_o.sum(axis=1))
    kernel_channel = ch.astype(np.int32)
    _frozen(lib, kernel_ptr, kernel_channel, kernel_pattern, values, filter_order)
    return PatternFormat(lib, kernel_ptr, kernel_channel, kernel_pattern, values, filter_order,
                         w.shape)


def bcr_reorder(mask: np.ndarray, R: int) -> np.ndarray:
    """Row permutation grouping rows with the same kept-column set inside each block row
    (the rule in the module docstring)."""
    M = mask.shape[0]
    rows = np.arange(M)
    block_row = rows // R
    keys = np.hstack([block_row.astype(">u4").view(np.uint8).reshape(M, 4),
                      np.packbits(mask, axis=1)])
    _, first, inverse, counts = np.unique(keys, axis=0, return_index=True,
                                          return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    empty = ~mask.any(axis=1)
    order = np.lexsort((rows, first[inverse], -counts[inverse], empty, block_row))
    return order.astype(np.int32)


def _encode_bcr(w: np.ndarray, mask: np.ndarray, block: tuple[int, int]) -> BCRFormat:
    M, K = w.shape
    R, C = block
    nrb, ncb = _plan.ceil_div(M, R), _plan.ceil_div(K, C)
    pm = np.zeros((nrb * R, ncb * C), dtype=bool)
    pm[:M, :K] = mask
    mb = pm.reshape(nrb, R, ncb, C).transpose(0, 2, 1, 3)
    rows_any: np.ndarray = np.asarray(mb.any(axis=3))
    cols_any: np.ndarray = np.asarray(mb.any(axis=2))
    n_rows = rows_any.sum(axis=-1)
    n_cols = cols_any.sum(axis=-1)
    count = mb.sum(axis=(2, 3))
    bad = count != n_rows * n_cols
    if np.any(bad):
        br, bc = np.argwhere(bad)[0]
        raise SchemeError(f"mask is not a BCR mask for {R}x{C} blocks: block ({br}, {bc}) "
                          f"(rows {br * R}.., cols {bc * C}..) keeps {count[br, bc]} entries, "
                          f"not a full grid of its {n_rows[br, bc]} kept rows x "
                          f"{n_cols[br, bc]} kept columns")
    stored = count > 0
    brow, bcol = np.nonzero(stored)
    block_row_ptr = _ptr(stored.sum(axis=1))
    block_col = bcol.astype(np.int32)
    nr, nc = n_rows[stored], n_cols[stored]
    bi, local_r = np.nonzero(rows_any[stored])
    row_idx = (brow[bi] * R + local_r).astype(np.int32)
    bj, local_c = np.nonzero(cols_any[stored])
    col_idx = (bcol[bj] * C + local_c).astype(np.int32)
    sizes = (nr * nc).astype(np.int64)
    val_ptr = _ptr(_plan.ceil16(sizes), np.int64)
    values = aligned_empty(int(val_ptr[-1]), zeroed=True)
    pw = np.zeros((nrb * R, ncb * C), dtype=np.float32)
    pw[:M, :K] = w
    kept_values = pw.reshape(nrb, R, ncb, C).transpose(0, 2, 1, 3)[stored][mb[stored]]
    starts = np.repeat(val_ptr[:-1], sizes)
    within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    values[starts + within] = kept_values
    row_ptr, col_ptr = _ptr(nr), _ptr(nc)
    reorder = bcr_reorder(mask, R)
    _frozen(block_row_ptr, block_col, row_ptr, row_idx, col_ptr, col_idx, val_ptr, values,
            reorder)
    return BCRFormat(block_row_ptr, block_col, row_ptr, row_idx, col_ptr, col_idx, val_ptr,
                     values, reorder, (M, K), (R, C))


def encode(w2d: np.ndarray, mask: np.ndarray, scheme: PruningScheme | str, *,
           kernel: tuple[int, int] | None = None) -> Format:
    """Store the kept weights of ``w2d`` (M x K) in the scheme's compact format.

    ``kernel`` as for ``make_mask`` (block_punched needs it for its column blocks). A mask
    whose structure does not fit the format (not a full grid per BCR block, more than N per
    group, a kernel that is not a library pattern) raises SchemeError.
    """
    scheme = as_scheme(scheme)
    w = np.asarray(w2d)
    mask = np.asarray(mask)
    if w.ndim != 2 or w.shape != mask.shape or w.size == 0:
        raise ShapeError(f"weights {w.shape} and mask {mask.shape} must be the same non-empty "
                         "2-D shape")
    if mask.dtype != bool:
        raise ShapeError(f"mask must be boolean, got dtype {mask.dtype}")
    w = w.astype(np.float32, copy=False)
    M, K = w.shape
    name = format_name(scheme)
    if name == "dense":
        return _encode_dense(w, mask)
    if name == "csr":
        return _encode_csr(w, mask)
    if name == "nm":
        assert scheme.n is not None and scheme.m is not None
        return _encode_nm(w, mask, scheme.n, scheme.m)
    if name == "pattern":
        return _encode_pattern(w, mask)
    block = format_block(scheme, M, K, kernel)
    assert block is not None
    return _encode_bcr(w, mask, block)


# --------------------------------------------------------------------------- decode


def decode(fmt: Format) -> np.ndarray:
    """The dense float32 M x K matrix a format stores (removed weights are +0.0)."""
    if not isinstance(fmt, (DenseFormat, CSRFormat, NMFormat, PatternFormat, BCRFormat)):
        raise TypeError(f"not a grimsim.pruning format: {type(fmt).__name__}")
    M, K = fmt.shape
    out = np.zeros((M, K), dtype=np.float32)
    if isinstance(fmt, DenseFormat):
        out[:] = fmt.values
    elif isinstance(fmt, CSRFormat):
        rows = np.repeat(np.arange(M), np.diff(fmt.indptr))
        out[rows, fmt.indices] = fmt.data
    elif isinstance(fmt, NMFormat):
        groups = fmt.values.shape[1]
        wide = np.zeros((M, groups * fmt.m), dtype=np.float32)
        cols = np.arange(groups)[None, :, None] * fmt.m + fmt.indices
        np.put_along_axis(wide, cols.reshape(M, -1), fmt.values.reshape(M, -1), axis=1)
        out[:] = wide[:, :K]
    elif isinstance(fmt, PatternFormat):
        per = np.diff(fmt.kernel_ptr)
        filters = np.repeat(fmt.filter_order, per)
        cube = np.zeros((M, K // 9, 9), dtype=np.float32)
        positions = fmt.library[fmt.kernel_pattern]
        cube[filters[:, None], fmt.kernel_channel[:, None], positions] = fmt.values
        out[:] = cube.reshape(M, K)
    else:
        assert isinstance(fmt, BCRFormat)
        nr, nc = np.diff(fmt.row_ptr), np.diff(fmt.col_ptr)
        sizes = nr.astype(np.int64) * nc
        b = np.repeat(np.arange(sizes.size), sizes)
        e = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        rows = fmt.row_idx[fmt.row_ptr[b] + e // nc[b]]
        cols = fmt.col_idx[fmt.col_ptr[b] + e % nc[b]]
        out[rows, cols] = fmt.values[fmt.val_ptr[b] + e]
    return out


# --------------------------------------------------------------------------- invariants


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise SchemeError(f"format invariant violated: {what}")


def _increasing_within(idx: np.ndarray, ptr: np.ndarray) -> bool:
    if idx.size < 2:
        return True
    step = np.diff(idx.astype(np.int64))
    boundary = np.zeros(idx.size - 1, dtype=bool)
    inner = ptr[1:-1]
    boundary[inner[(inner > 0) & (inner < idx.size)] - 1] = True
    return bool(np.all((step > 0) | boundary))


def check_format(fmt: Format) -> None:
    """Raise SchemeError when a format breaks the layout the kernels rely on."""
    M, K = fmt.shape
    for f in fields(fmt):
        a = getattr(fmt, f.name)
        if isinstance(a, np.ndarray):
            _need(a.flags.c_contiguous, f"{f.name} is C-contiguous")
            want = (np.float32 if f.name in ("values", "data")
                    else np.int64 if f.name == "val_ptr" else np.int32)
            _need(a.dtype == want, f"{f.name} has dtype {np.dtype(want)}, got {a.dtype}")
    if isinstance(fmt, CSRFormat):
        _need(fmt.indptr.size == M + 1 and fmt.indptr[0] == 0
              and fmt.indptr[-1] == fmt.indices.size == fmt.data.size, "CSR pointers")
        _need(bool(np.all(np.diff(fmt.indptr) >= 0)), "CSR indptr non-decreasing")
        _need(bool(np.all((fmt.indices >= 0) & (fmt.indices < K))), "CSR indices in range")
        _need(_increasing_within(fmt.indices, fmt.indptr), "CSR indices sorted per row")
    elif isinstance(fmt, NMFormat):
        groups = _plan.ceil_div(K, fmt.m)
        _need(fmt.values.shape == fmt.indices.shape == (M, groups, fmt.n), "N:M array shapes")
        _need(bool(np.all((fmt.indices >= 0) & (fmt.indices < fmt.m))), "N:M index range")
        _need(bool(np.all(np.diff(fmt.indices, axis=-1) > 0)), "N:M indices increasing")
    elif isinstance(fmt, PatternFormat):
        nk = fmt.kernel_channel.size
        _need(fmt.library.shape[1] == 4 and bool(np.all(np.diff(fmt.library, axis=1) > 0)),
              "pattern library rows are 4 increasing positions")
        _need(sorted(fmt.filter_order.tolist()) == list(range(M)), "filter_order permutation")
        _need(fmt.kernel_ptr.size == M + 1 and fmt.kernel_ptr[-1] == nk
              and fmt.values.shape == (nk, 4) and fmt.kernel_pattern.size == nk,
              "pattern pointers and sizes")
        _need(_increasing_within(fmt.kernel_channel, fmt.kernel_ptr),
              "kernel channels sorted per filter")
        _need(bool(np.all((fmt.kernel_channel >= 0) & (fmt.kernel_channel < K // 9))),
              "kernel channels in range")
    elif isinstance(fmt, BCRFormat):
        _check_bcr(fmt)


def _check_bcr(fmt: BCRFormat) -> None:
    M, K = fmt.shape
    R, C = fmt.block
    nrb, ncb = _plan.ceil_div(M, R), _plan.ceil_div(K, C)
    nb = fmt.block_col.size
    _need(fmt.block_row_ptr.size == nrb + 1 and fmt.block_row_ptr[0] == 0
          and fmt.block_row_ptr[-1] == nb, "block_row_ptr covers the block rows")
    _need(_increasing_within(fmt.block_col, fmt.block_row_ptr)
          and bool(np.all((fmt.block_col >= 0) & (fmt.block_col < ncb))),
          "block_col increasing within a block row and in range")
    for ptr, idx, name in ((fmt.row_ptr, fmt.row_idx, "row"), (fmt.col_ptr, fmt.col_idx, "col")):
        _need(ptr.size == nb + 1 and ptr[0] == 0 and ptr[-1] == idx.size,
              f"{name}_ptr covers the blocks")
        _need(bool(np.all(np.diff(ptr) >= 1)), f"every stored block keeps a {name}")
        _need(_increasing_within(idx, ptr), f"{name}_idx strictly increasing within a block")
    brow = np.repeat(np.arange(nrb), np.diff(fmt.block_row_ptr))
    rows_owner = np.repeat(brow, np.diff(fmt.row_ptr))
    cols_owner = np.repeat(fmt.block_col, np.diff(fmt.col_ptr))
    _need(bool(np.all(fmt.row_idx // R == rows_owner)), "kept rows inside their block")
    _need(bool(np.all(fmt.col_idx // C == cols_owner)) and bool(np.all(fmt.col_idx < K))
          and bool(np.all(fmt.row_idx < M)), "kept columns inside their block")
    sizes = np.diff(fmt.row_ptr).astype(np.int64) * np.diff(fmt.col_ptr)
    _need(fmt.val_ptr.size == nb + 1 and fmt.val_ptr[0] == 0
          and bool(np.all(fmt.val_ptr[:-1] % BLOCK_ALIGN_FLOATS == 0))
          and bool(np.all(np.diff(fmt.val_ptr) >= sizes))
          and fmt.values.size >= fmt.val_ptr[-1], "val_ptr aligned and large enough")
    _need(fmt.values.size == 0 or fmt.values.ctypes.data % VALUE_ALIGN_BYTES == 0,
          "values 64-byte aligned")
    _need(sorted(fmt.reorder.tolist()) == list(range(M))
          and bool(np.all(np.diff(fmt.reorder // R) >= 0)),
          "reorder is a block-row-major permutation")
