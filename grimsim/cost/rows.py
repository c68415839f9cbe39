"""What a cost model is asked about: ``CostRows``, one row per thing the engine runs.

A row is one GEMM of a layer under one pruning scheme (prunable GEMMs get one row per legal
scheme, activation-by-activation GEMMs one dense row), or one cheap op (pooling, element-wise,
normalisation; and the element-wise part of GRU/LSTM/attention layers) described by its
traffic and operation count. Columns are numpy arrays (struct-of-arrays) so a model answers
millions of rows per second; the builders fill the sparse-workload columns with
``sparse_workload_batch`` (expected-mask statistics, vectorised per scheme) or, when weights
are given, from the real masks.

Rows with ``prunable == False`` do not depend on the scheme (their ``spec`` is ``dense``);
a per-layer latency under a scheme is the sum of that layer's rows with the scheme plus its
scheme-independent rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from grimsim.errors import GrimsimError, SchemeError, ShapeError
from grimsim.network.graph import Network
from grimsim.network.workload import FLOAT32_BYTES, GemmView, LayerWorkload, Op
from grimsim.pruning import (
    KINDS,
    PruningScheme,
    check_legal,
    format_block,
    format_name,
    parse_spec,
    sparse_workload,
    sparse_workload_batch,
)

__all__ = [
    "FORMATS",
    "OPS",
    "UNITS",
    "CostRows",
    "Skipped",
    "gemm_rows",
    "rows_for",
]

#: Op codes of the ``op`` column (index into this tuple).
OPS: tuple[str, ...] = (*sorted(v for k, v in vars(Op).items()
                                if k.isupper() and isinstance(v, str)), "input")
_OP_CODE = {name: i for i, name in enumerate(OPS)}

#: Compact-format codes of the ``fmt`` column.
FORMATS: tuple[str, ...] = ("dense", "bcr", "csr", "nm", "pattern")
_FMT_CODE = {name: i for i, name in enumerate(FORMATS)}

#: Scheme-kind codes of the ``scheme`` column are indices into ``grimsim.pruning.KINDS``.
_KIND_CODE = {name: i for i, name in enumerate(KINDS)}

UNITS = ("cpu", "gpu")

_DENSE = PruningScheme.dense()
_CONV_OPS = (Op.CONV, Op.DWCONV)


def op_code(op: str) -> int:
    """The ``op`` column code of an op kind (unknown kinds map to ``other``)."""
    return _OP_CODE.get(op, _OP_CODE[Op.OTHER])


@dataclass(frozen=True)
class Skipped:
    """A (layer, scheme) pair left out because the scheme is illegal there."""

    layer: str
    spec: str
    reason: str


# Columns of CostRows in order, with their dtypes (all 1-D arrays of equal length).
_COLUMNS: dict[str, Any] = {
    "layer_index": np.int32, "layer": object, "gemm": object, "op": np.int8,
    "is_gemm": np.bool_, "prunable": np.bool_,
    "M": np.int64, "K": np.int64, "N": np.int64, "groups": np.int64, "repeats": np.int64,
    "kh": np.int32, "kw": np.int32, "stride_h": np.int32, "stride_w": np.int32,
    "dilation_h": np.int32, "dilation_w": np.int32, "out_h": np.int32, "out_w": np.int32,
    "batch": np.int32, "im2col": np.bool_, "winograd": np.bool_,
    "scheme": np.int8, "spec": object, "fmt": np.int8, "block_r": np.int32,
    "block_c": np.int32, "nm_n": np.int32, "nm_m": np.int32,
    "sparsity": np.float64, "nnz": np.int64, "n_blocks": np.int64,
    "rows_mean": np.float64, "cols_mean": np.float64, "work_mean": np.float64,
    "work_max": np.float64, "format_bytes": np.int64, "weight_bytes": np.int64,
    "act_bytes_in": np.int64, "act_bytes_out": np.int64, "elementwise_ops": np.int64,
    "step_bytes": np.int64, "threads": np.int32, "from_weights": np.bool_,
}


@dataclass(frozen=True, eq=False)
class CostRows:
    """A batch of cost-model queries as equal-length numpy columns.

    Identity: ``layer_index`` (topological position), ``layer``, ``gemm`` (the GEMM's name,
    or ``<layer>.elementwise`` / the layer name for cheap ops), ``op`` (code into ``OPS``),
    ``is_gemm``, ``prunable``.
    GEMM ``Y[M x N] = W[M x K] @ X[K x N]``: ``M``, ``K``, ``N`` (N per step), ``groups``,
    ``repeats`` (sequential runs, RNN steps). Conv geometry: ``kh``, ``kw``, ``stride_*``,
    ``dilation_*``, ``out_h``, ``out_w``, ``batch``; ``im2col`` (the conv needs its input
    unfolded: not a 1x1/stride-1/unpadded conv), ``winograd`` (3x3, stride 1, dilation 1,
    one group: the engine may run Winograd F(4,3) when dense).
    Scheme: ``scheme`` (code into ``grimsim.pruning.KINDS``), ``spec``, ``fmt`` (code into
    ``FORMATS``), ``block_r``/``block_c`` (BCR storage block, 0 otherwise), ``nm_n``/``nm_m``.
    Sparse workload (whole M x K matrix, all groups): ``sparsity`` reached, ``nnz``,
    ``n_blocks`` (stored blocks: BCR blocks, CSR/N:M rows/groups, pattern kernels),
    ``rows_mean``/``cols_mean`` kept rows/columns per stored block, ``work_mean``/
    ``work_max`` kept weights per thread-work unit (BCR block row, matrix row, filter),
    ``format_bytes`` (compact format), ``weight_bytes`` (dense M*K*4).
    Traffic: ``act_bytes_in`` (the op's input activations; conv: the feature map before
    im2col), ``act_bytes_out``, ``elementwise_ops`` (cheap ops; for GEMM rows the fused
    activation in the epilogue), ``step_bytes`` (repeated GEMMs: the format bytes of all the
    layer's repeated GEMMs under the same scheme, i.e. what must stay cached between steps).
    ``threads`` per row; ``from_weights``: statistics from real masks.
    ``unit`` is ``cpu`` or ``gpu``; ``skipped`` lists illegal (layer, scheme) pairs.
    """

    layer_index: np.ndarray
    layer: np.ndarray
    gemm: np.ndarray
    op: np.ndarray
    is_gemm: np.ndarray
    prunable: np.ndarray
    M: np.ndarray
    K: np.ndarray
    N: np.ndarray
    groups: np.ndarray
    repeats: np.ndarray
    kh: np.ndarray
    kw: np.ndarray
    stride_h: np.ndarray
    stride_w: np.ndarray
    dilation_h: np.ndarray
    dilation_w: np.ndarray
    out_h: np.ndarray
    out_w: np.ndarray
    batch: np.ndarray
    im2col: np.ndarray
    winograd: np.ndarray
    scheme: np.ndarray
    spec: np.ndarray
    fmt: np.ndarray
    block_r: np.ndarray
    block_c: np.ndarray
    nm_n: np.ndarray
    nm_m: np.ndarray
    sparsity: np.ndarray
    nnz: np.ndarray
    n_blocks: np.ndarray
    rows_mean: np.ndarray
    cols_mean: np.ndarray
    work_mean: np.ndarray
    work_max: np.ndarray
    format_bytes: np.ndarray
    weight_bytes: np.ndarray
    act_bytes_in: np.ndarray
    act_bytes_out: np.ndarray
    elementwise_ops: np.ndarray
    step_bytes: np.ndarray
    threads: np.ndarray
    from_weights: np.ndarray
    unit: str = "cpu"
    network: str = ""
    skipped: tuple[Skipped, ...] = ()
    _checked: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self._checked:
            return
        n = None
        for name, dtype in _COLUMNS.items():
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1:
                raise ShapeError(f"CostRows column {name!r} must be 1-D, got shape {arr.shape}")
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ShapeError(f"CostRows column {name!r} has {arr.shape[0]} values, "
                                 f"expected {n} like the others")
            object.__setattr__(self, name, arr.astype(dtype, copy=False))
        if self.unit not in UNITS:
            raise GrimsimError(f"CostRows unit {self.unit!r} must be one of {UNITS}")
        object.__setattr__(self, "_checked", True)

    def __len__(self) -> int:
        return int(self.M.shape[0])

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """Names of the array columns."""
        return tuple(_COLUMNS)

    @property
    def imbalance(self) -> np.ndarray:
        """Work imbalance of the thread-work units: max / mean (1 when balanced)."""
        mean = self.work_mean
        return np.where(mean > 0, self.work_max / np.where(mean > 0, mean, 1.0), 1.0)

    @property
    def macs(self) -> np.ndarray:
        """Multiply-adds actually performed (kept weights x N x repeats; 0 for cheap ops)."""
        return np.where(self.is_gemm, self.nnz * self.N * self.repeats, 0)

    def op_names(self) -> np.ndarray:
        return np.asarray(OPS, dtype=object)[self.op]

    def format_names(self) -> np.ndarray:
        return np.asarray(FORMATS, dtype=object)[self.fmt]

    def take(self, index: np.ndarray | Sequence[int] | slice) -> CostRows:
        """The rows at ``index`` (an index array, a boolean mask or a slice)."""
        cols: dict[str, Any] = {name: getattr(self, name)[index] for name in _COLUMNS}
        return replace(self, **cols, _checked=False)

    def with_threads(self, threads: int | np.ndarray) -> CostRows:
        """The same rows asked for another thread count."""
        t = np.broadcast_to(np.asarray(threads, dtype=np.int32), (len(self),)).copy()
        if t.size and t.min() < 1:
            raise GrimsimError(f"threads must be >= 1, got {int(t.min())}")
        return replace(self, threads=t, _checked=False)

    def as_dense(self, where: np.ndarray) -> CostRows:
        """The same rows with those at ``where`` (a boolean mask) described as dense GEMMs:
        what a dense kernel (depthwise, GEMM, Winograd) actually runs when it is given a
        pruned layer, whose zeros it multiplies like any other weight."""
        w = np.asarray(where, dtype=bool)
        if not w.any():
            return self
        dense_mk = (self.M * self.K).astype(np.int64)
        dense = {"scheme": _KIND_CODE["dense"], "fmt": _FMT_CODE[format_name(_DENSE)],
                 "block_r": 0, "block_c": 0, "nm_n": 0, "nm_m": 0, "sparsity": 0.0,
                 "nnz": dense_mk, "n_blocks": 1, "rows_mean": self.M, "cols_mean": self.K,
                 "work_mean": self.K, "work_max": self.K,
                 "format_bytes": np.where(self.prunable, dense_mk * FLOAT32_BYTES, 0)}
        cols: dict[str, Any] = {}
        for name, value in dense.items():
            col = getattr(self, name)
            cols[name] = np.where(w, np.asarray(value).astype(col.dtype), col)
        cols["spec"] = np.where(w, _DENSE.spec, self.spec)
        return replace(self, **cols, _checked=False)

    @staticmethod
    def concat(parts: Sequence[CostRows]) -> CostRows:
        """Rows of several batches, in order (same unit; skipped lists joined)."""
        if not parts:
            return _empty()
        units = {p.unit for p in parts}
        if len(units) > 1:
            raise GrimsimError(f"cannot concatenate CostRows of units {sorted(units)}")
        cols: dict[str, Any] = {name: np.concatenate([getattr(p, name) for p in parts])
                                for name in _COLUMNS}
        skipped = tuple(s for p in parts for s in p.skipped)
        names = {p.network for p in parts}
        return CostRows(**cols, unit=parts[0].unit,
                        network=parts[0].network if len(names) == 1 else "",
                        skipped=skipped)

    def to_dict(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a plain dict (names instead of codes)."""
        out: dict[str, Any] = {}
        for name in _COLUMNS:
            value = getattr(self, name)[i]
            out[name] = value.item() if isinstance(value, np.generic) else value
        out["op"] = OPS[int(self.op[i])]
        out["scheme"] = KINDS[int(self.scheme[i])]
        out["fmt"] = FORMATS[int(self.fmt[i])]
        return out


def _empty() -> CostRows:
    cols: dict[str, Any] = {name: np.zeros(0, dtype=dtype) for name, dtype in _COLUMNS.items()}
    return CostRows(**cols)


# --------------------------------------------------------------------------- scheme stats


def _stats(scheme: PruningScheme, M: np.ndarray, K: np.ndarray, N: np.ndarray,
           groups: np.ndarray, repeats: np.ndarray, kernel_size: np.ndarray,
           prunable: np.ndarray) -> dict[str, np.ndarray]:
    """Sparse-workload columns of GEMMs under one scheme (expected-mask statistics)."""
    n = M.size
    if scheme.is_dense or not prunable.any():
        dense = M * K
        return {"sparsity": np.zeros(n), "nnz": dense, "n_blocks": np.ones(n, np.int64),
                "rows_mean": M.astype(np.float64), "cols_mean": K.astype(np.float64),
                "work_mean": K.astype(np.float64), "work_max": K.astype(np.float64),
                "format_bytes": np.where(prunable, dense * FLOAT32_BYTES, 0)}
    b = sparse_workload_batch(M, K, N, scheme, groups=groups, repeats=repeats,
                              kernel_size=kernel_size, proxy=False)
    return {"sparsity": b.sparsity, "nnz": b.nnz, "n_blocks": b.n_blocks,
            "rows_mean": b.rows_mean, "cols_mean": b.cols_mean, "work_mean": b.work_mean,
            "work_max": b.work_max, "format_bytes": b.format_bytes}


def _scheme_columns(scheme: PruningScheme, M: np.ndarray, K: np.ndarray,
                    kernel_size: np.ndarray) -> dict[str, np.ndarray]:
    n = M.size
    fmt = format_name(scheme)
    block_r = np.zeros(n, np.int32)
    block_c = np.zeros(n, np.int32)
    if scheme.kind in ("filter", "column"):
        block_r, block_c = M.astype(np.int32), K.astype(np.int32)
    elif scheme.kind == "bcr":
        assert scheme.block is not None
        block_r[:], block_c[:] = scheme.block
    elif scheme.kind == "block_punched":
        assert scheme.block is not None
        block_r[:] = scheme.block[0]
        block_c[:] = scheme.block[1] * kernel_size
    return {"scheme": np.full(n, _KIND_CODE[scheme.kind], np.int8),
            "spec": np.full(n, scheme.spec, dtype=object),
            "fmt": np.full(n, _FMT_CODE[fmt], np.int8), "block_r": block_r,
            "block_c": block_c, "nm_n": np.full(n, scheme.n or 0, np.int32),
            "nm_m": np.full(n, scheme.m or 0, np.int32)}


# --------------------------------------------------------------------------- synthetic rows


def _as_col(value: Any, n: int, what: str, dtype: Any = np.int64, low: int = 1) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.shape != (n,):
        raise ShapeError(f"gemm_rows: {what} must be a scalar or have {n} values, got shape "
                         f"{arr.shape}")
    if arr.size and np.issubdtype(arr.dtype, np.number) and arr.min() < low:
        raise ShapeError(f"gemm_rows: {what} must be >= {low}")
    return arr.astype(dtype)


def gemm_rows(M: Any, K: Any, N: Any, scheme: PruningScheme | str = "dense", *,
              op: str = Op.FC, groups: Any = 1, repeats: Any = 1, kernel: Any = (1, 1),
              stride: Any = 1, dilation: Any = 1, out_hw: tuple[Any, Any] | None = None,
              padded: Any = False, threads: Any = 1, unit: str = "cpu",
              names: Sequence[str] | None = None) -> CostRows:
    """Rows for many GEMM shapes under one scheme, vectorised (calibration sweeps, benchmarks).

    ``kernel`` is (kh, kw) (scalars or arrays); conv rows (``op`` conv/dwconv) take
    ``stride``, ``dilation``, ``out_hw`` (output height, width; default N x 1) and ``padded``
    (whether the conv pads its input: a padded 1x1 conv still needs im2col). The input
    activation of a conv is estimated from the output size, stride and kernel (no padding).
    Legality is the scheme's on the GEMM shapes (SchemeError names the first bad row).
    """
    scheme_obj = scheme if isinstance(scheme, PruningScheme) else parse_spec(scheme)
    m_arr = np.asarray(M)
    n = m_arr.size if m_arr.ndim else 1
    m = _as_col(M, n, "M")
    k = _as_col(K, n, "K")
    nn = _as_col(N, n, "N")
    g = _as_col(groups, n, "groups")
    r = _as_col(repeats, n, "repeats")
    kh = _as_col(kernel[0], n, "kernel height", np.int32)
    kw = _as_col(kernel[1], n, "kernel width", np.int32)
    sh = _as_col(stride[0] if isinstance(stride, tuple) else stride, n, "stride", np.int32)
    sw = _as_col(stride[1] if isinstance(stride, tuple) else stride, n, "stride", np.int32)
    dh = _as_col(dilation[0] if isinstance(dilation, tuple) else dilation, n, "dilation",
                 np.int32)
    dw = _as_col(dilation[1] if isinstance(dilation, tuple) else dilation, n, "dilation",
                 np.int32)
    t = _as_col(threads, n, "threads", np.int32)
    pad = _as_col(padded, n, "padded", np.bool_, low=0)
    if np.any(m % g):
        raise ShapeError("gemm_rows: groups must divide M")
    is_conv = op in _CONV_OPS
    if out_hw is None:
        oh, ow = nn.astype(np.int32), np.ones(n, np.int32)
    else:
        oh = _as_col(out_hw[0], n, "out_h", np.int32)
        ow = _as_col(out_hw[1], n, "out_w", np.int32)
    batch = np.maximum(1, nn // np.maximum(1, oh.astype(np.int64) * ow)).astype(np.int32)
    if not is_conv:
        kh[:], kw[:], sh[:], sw[:], dh[:], dw[:] = 1, 1, 1, 1, 1, 1
        oh[:], ow[:] = 0, 0
        batch[:] = 1
    kernel_size = (kh.astype(np.int64) * kw) if is_conv else np.ones(n, np.int64)
    prunable = np.ones(n, bool)
    stats = _stats(scheme_obj, m, k, nn, g, r, kernel_size, prunable)
    pointwise = (kh == 1) & (kw == 1) & (sh == 1) & (sw == 1) & ~pad
    if is_conv:
        cin = k // kernel_size * g
        in_h = (oh.astype(np.int64) - 1) * sh + (kh - 1) * dh + 1
        in_w = (ow.astype(np.int64) - 1) * sw + (kw - 1) * dw + 1
        act_in = batch * cin * in_h * in_w * FLOAT32_BYTES
    else:
        act_in = g * k * nn * FLOAT32_BYTES
    cols: dict[str, Any] = {
        "layer_index": np.arange(n, dtype=np.int32),
        "layer": np.asarray(list(names) if names is not None else [f"gemm{i}" for i in range(n)],
                            dtype=object),
        "op": np.full(n, op_code(op), np.int8), "is_gemm": np.ones(n, bool),
        "prunable": prunable, "M": m, "K": k, "N": nn, "groups": g, "repeats": r,
        "kh": kh, "kw": kw, "stride_h": sh, "stride_w": sw, "dilation_h": dh,
        "dilation_w": dw, "out_h": oh, "out_w": ow, "batch": batch,
        "im2col": np.full(n, is_conv) & ~pointwise,
        "winograd": np.full(n, op == Op.CONV) & (kh == 3) & (kw == 3) & (sh == 1) & (sw == 1)
        & (dh == 1) & (dw == 1) & (g == 1),
        **_scheme_columns(scheme_obj, m, k, kernel_size), **stats,
        "weight_bytes": m * k * FLOAT32_BYTES, "act_bytes_in": act_in,
        "act_bytes_out": m * nn * FLOAT32_BYTES, "elementwise_ops": np.zeros(n, np.int64),
        "threads": t, "from_weights": np.zeros(n, bool),
    }
    cols["gemm"] = cols["layer"].copy()
    cols["step_bytes"] = np.where(r > 1, cols["format_bytes"], 0)
    if len(cols["layer"]) != n:
        raise ShapeError(f"gemm_rows: {len(cols['layer'])} names for {n} rows")
    return CostRows(**cols, unit=unit)


# --------------------------------------------------------------------------- network rows


def _as_schemes(value: Any, where: str) -> list[PruningScheme]:
    items = [value] if isinstance(value, (str, PruningScheme)) else list(value)
    out = []
    for s in items:
        try:
            out.append(s if isinstance(s, PruningScheme) else parse_spec(s))
        except SchemeError as exc:
            raise SchemeError(f"{where}: {exc}") from None
    return list(dict.fromkeys(out))  # drop repeats, keep order


@dataclass
class _Item:
    """One row to be, before the scheme statistics are filled in."""

    layer_index: int
    layer: LayerWorkload
    gemm: GemmView | None
    scheme: PruningScheme
    cheap_ops: int = 0
    cheap_in: int = 0
    cheap_out: int = 0
    name: str = ""


def _conv_geometry(layer: LayerWorkload) -> dict[str, Any]:
    kh, kw = layer.attr("kernel", (1, 1))
    sh, sw = layer.attr("stride", (1, 1))
    dh, dw = layer.attr("dilation", (1, 1))
    pads = layer.attr("padding", (0, 0, 0, 0))
    out = layer.output_shape
    batch, oh, ow = (out[0], out[2], out[3]) if len(out) == 4 else (1, 0, 0)
    pointwise = kh == kw == 1 and sh == sw == 1 and not any(pads)
    return {"kh": kh, "kw": kw, "stride_h": sh, "stride_w": sw, "dilation_h": dh,
            "dilation_w": dw, "out_h": oh, "out_w": ow, "batch": batch,
            "im2col": not pointwise,
            "winograd": layer.op == Op.CONV and (kh, kw) == (3, 3) and (sh, sw) == (1, 1)
            and (dh, dw) == (1, 1) and layer.attr("groups", 1) == 1}


_NO_GEOMETRY = {"kh": 1, "kw": 1, "stride_h": 1, "stride_w": 1, "dilation_h": 1,
                "dilation_w": 1, "out_h": 0, "out_w": 0, "batch": 1, "im2col": False,
                "winograd": False}


def _layer_schemes(schemes: Any, layer_names: Iterable[str]) -> dict[str, list[PruningScheme]]:
    names = list(layer_names)
    if isinstance(schemes, Mapping):
        unknown = sorted(set(schemes) - set(names))
        if unknown:
            raise SchemeError(f"schemes name layers the network does not have: "
                              f"{', '.join(map(repr, unknown[:5]))}")
        return {name: _as_schemes(schemes[name], f"layer {name!r}") if name in schemes
                else [_DENSE] for name in names}
    common = _as_schemes(schemes, "schemes")
    if not common:
        raise SchemeError("rows_for needs at least one scheme (e.g. ['dense'])")
    return {name: common for name in names}


def rows_for(network: Network, schemes: Any = ("dense",), *, threads: int = 1,
             unit: str = "cpu", weights: Mapping[str, np.ndarray] | None = None) -> CostRows:
    """Cost rows of ``network`` under candidate schemes.

    ``schemes``: one list (spec strings or ``PruningScheme``) tried on every prunable layer,
    or a mapping ``layer name -> scheme or list`` (layers not named stay dense). Each
    prunable GEMM gets one row per scheme that is legal for its layer; an illegal
    (layer, scheme) pair is skipped and listed in ``rows.skipped``, and a layer none of whose
    schemes is legal falls back to one dense row. Non-prunable GEMMs get one dense row, cheap
    ops one row with their traffic (views and inputs, which cost nothing, get none), and
    GEMM layers with element-wise work (GRU/LSTM gates, attention softmax) one extra
    ``<layer>.elementwise`` row.
    ``weights`` maps a GEMM name (or a single-GEMM layer's name) to its M x K float array:
    those GEMMs' statistics come from the real mask instead of the expectation.
    """
    if not isinstance(threads, (int, np.integer)) or threads < 1:
        raise GrimsimError(f"threads must be a positive integer, got {threads!r}")
    if unit not in UNITS:
        raise GrimsimError(f"unit {unit!r} must be one of {', '.join(UNITS)}")
    layers = network.layers()
    per_layer = _layer_schemes(schemes, (wl.name for wl in layers))
    weights = dict(weights or {})
    items: list[_Item] = []
    skipped: list[Skipped] = []
    for i, wl in enumerate(layers):
        if not wl.gemms:
            if wl.activation_bytes_read or wl.activation_bytes_written or wl.elementwise_ops:
                items.append(_Item(i, wl, None, _DENSE, wl.elementwise_ops,
                                   wl.activation_bytes_read, wl.activation_bytes_written,
                                   wl.name))
            continue
        legal = []
        for s in per_layer[wl.name]:
            if s.is_dense:
                legal.append(s)
                continue
            try:
                check_legal(s, wl)
            except SchemeError as exc:
                skipped.append(Skipped(wl.name, s.spec, str(exc)))
            else:
                legal.append(s)
        if not legal:
            legal = [_DENSE]
        for g in wl.gemms:
            for s in legal if g.prunable else [_DENSE]:
                items.append(_Item(i, wl, g, s, name=g.name))
        if wl.elementwise_ops:
            # The layer's own element-wise work (gates, softmax): ~4 ops per value, each
            # value read and written once -> about one byte of traffic per op each way.
            items.append(_Item(i, wl, None, _DENSE, wl.elementwise_ops, wl.elementwise_ops,
                               wl.elementwise_ops, f"{wl.name}.elementwise"))
    unused = sorted(set(weights) - {it.name for it in items if it.gemm is not None}
                    - {wl.name for wl in layers})
    if unused:
        raise ShapeError(f"weights given for unknown GEMMs: {', '.join(unused[:5])}")
    rows = _build(items, weights, threads, unit)
    return replace(rows, network=network.name, skipped=tuple(skipped))


def _build(items: list[_Item], weights: Mapping[str, np.ndarray], threads: int,
           unit: str) -> CostRows:
    n = len(items)
    if n == 0:
        return replace(_empty(), unit=unit)
    cols: dict[str, Any] = {name: np.zeros(n, dtype=dtype) for name, dtype in _COLUMNS.items()}
    for name in ("layer", "gemm", "spec"):
        cols[name] = np.empty(n, dtype=object)
    kernel_size = np.ones(n, np.int64)
    for j, it in enumerate(items):
        wl, g = it.layer, it.gemm
        cols["layer_index"][j] = it.layer_index
        cols["layer"][j] = wl.name
        cols["gemm"][j] = it.name
        cols["op"][j] = op_code(wl.op)
        is_conv = wl.op in _CONV_OPS
        geo = _conv_geometry(wl) if is_conv and g is not None else _NO_GEOMETRY
        for key, value in geo.items():
            cols[key][j] = value
        if g is None:
            cols["M"][j] = cols["K"][j] = cols["N"][j] = 1
            cols["groups"][j] = cols["repeats"][j] = 1
            cols["act_bytes_in"][j] = it.cheap_in
            cols["act_bytes_out"][j] = it.cheap_out
            cols["elementwise_ops"][j] = it.cheap_ops
            continue
        cols["is_gemm"][j] = True
        cols["prunable"][j] = g.prunable
        cols["M"][j], cols["K"][j], cols["N"][j] = g.M, g.K, g.N
        cols["groups"][j], cols["repeats"][j] = g.groups, g.repeats
        if is_conv and g.kernel is not None:
            kernel_size[j] = g.kernel[0] * g.kernel[1]
        cols["act_bytes_in"][j] = (wl.activation_bytes_read if is_conv or wl.op == Op.DECONV
                                   else g.groups * g.K * g.N * FLOAT32_BYTES)
        cols["act_bytes_out"][j] = g.M * g.N * FLOAT32_BYTES
        # the fused activation runs in the GEMM's epilogue: one op per output value
        cols["elementwise_ops"][j] = g.M * g.N * g.repeats if wl.activation else 0
        cols["weight_bytes"][j] = g.M * g.K * FLOAT32_BYTES
    cols["threads"][:] = threads
    # scheme columns, one vectorised batch per scheme
    by_scheme: dict[PruningScheme, list[int]] = {}
    for j, it in enumerate(items):
        by_scheme.setdefault(it.scheme, []).append(j)
    for scheme, idx_list in by_scheme.items():
        idx = np.asarray(idx_list)
        m, k = cols["M"][idx], cols["K"][idx]
        for key, value in _scheme_columns(scheme, m, k, kernel_size[idx]).items():
            cols[key][idx] = value
        gemm_idx = idx[cols["is_gemm"][idx]]
        if gemm_idx.size == 0:
            continue
        real = np.array([items[j].name in weights or (items[j].layer.name in weights
                                                      and len(items[j].layer.gemms) == 1)
                         for j in gemm_idx], dtype=bool)
        expected = gemm_idx[~real]
        if expected.size:
            st = _stats(scheme, cols["M"][expected], cols["K"][expected], cols["N"][expected],
                        cols["groups"][expected], cols["repeats"][expected],
                        kernel_size[expected], cols["prunable"][expected])
            for key, value in st.items():
                cols[key][expected] = value
        for r in gemm_idx[real]:
            _fill_from_weights(cols, int(r), items[int(r)], scheme, weights)
    cols["block_c"] = np.where(cols["fmt"] == _FMT_CODE["bcr"], cols["block_c"], 0)
    # repeated GEMMs of one layer and scheme run one after the other every step
    rep = np.flatnonzero(cols["repeats"] > 1)
    if rep.size:
        totals: dict[tuple[int, str], int] = {}
        keys = [(int(cols["layer_index"][r]), str(cols["spec"][r])) for r in rep]
        for r, step_key in zip(rep, keys, strict=True):
            totals[step_key] = totals.get(step_key, 0) + int(cols["format_bytes"][r])
        cols["step_bytes"][rep] = [totals[step_key] for step_key in keys]
    return CostRows(**cols, unit=unit)


def _fill_from_weights(cols: dict[str, Any], j: int, item: _Item, scheme: PruningScheme,
                       weights: Mapping[str, np.ndarray]) -> None:
    g = item.gemm
    assert g is not None
    w = weights[item.name] if item.name in weights else weights[item.layer.name]
    target: LayerWorkload | GemmView = item.layer if len(item.layer.gemms) == 1 else g
    sw = sparse_workload(target, scheme, np.asarray(w))
    cols["sparsity"][j] = sw.sparsity
    cols["nnz"][j] = sw.nnz
    cols["n_blocks"][j] = sw.n_blocks
    cols["rows_mean"][j] = sw.rows_per_block.mean
    cols["cols_mean"][j] = sw.cols_per_block.mean
    cols["work_mean"][j] = sw.row_work.mean
    cols["work_max"][j] = sw.row_work.max
    cols["format_bytes"][j] = sw.format_bytes
    cols["from_weights"][j] = True
    block = format_block(scheme, g.M, g.K, g.kernel if item.layer.op in _CONV_OPS else None)
    if block is not None:
        cols["block_r"][j], cols["block_c"][j] = block
    if not math.isfinite(sw.sparsity):
        raise ShapeError(f"GEMM {g.name!r}: weights gave a non-finite sparsity")
