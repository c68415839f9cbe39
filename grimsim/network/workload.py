"""Layer workloads: one frozen value per layer, with shape inference and the GEMM view.

Every factory here takes the input shape(s) and the layer's hyper-parameters, infers the
output shape(s) and derives MACs, parameters, memory traffic and, for GEMM-bearing layers,
the GEMM view ``Y[M x N] = W[M x K] @ X[K x N]``:

* conv: M = out channels, K = in_channels/groups * kh * kw, N = batch * out pixels;
  ``groups`` independent GEMMs of (M/groups) x K each (depthwise: K = kh * kw).
* fc / weight matmul: M = out features, K = in features, N = product of leading dims.
* GRU/LSTM: one GEMM per gate and per input/recurrent weight: ``<layer>.<gate>.ih`` with
  N = batch * time steps, and ``<layer>.<gate>.hh`` with N = batch repeated once per step.
* attention: the q/k/v/out projections (prunable) and the two activation-by-activation
  matmuls (not prunable).

Shapes include the batch dimension: NCHW for images, (batch, time, features) for sequences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grimsim.errors import ShapeError

Shape = tuple[int, ...]

FLOAT32_BYTES = 4


class Op:
    """Op kinds (plain strings so they serialise as they are)."""

    CONV = "conv"
    DWCONV = "dwconv"
    DECONV = "deconv"
    FC = "fc"
    MATMUL = "matmul"
    GRU = "gru"
    LSTM = "lstm"
    ATTENTION = "attention"
    POOL = "pool"
    GLOBAL_POOL = "global_pool"
    ELTWISE = "eltwise"
    ACTIVATION = "activation"
    BATCHNORM = "batchnorm"
    SCALE = "scale"
    CONCAT = "concat"
    SPLIT = "split"
    SLICE = "slice"
    SOFTMAX = "softmax"
    LAYERNORM = "layernorm"
    NORM = "norm"
    LRN = "lrn"
    RESHAPE = "reshape"
    PERMUTE = "permute"
    PAD = "pad"
    RESIZE = "resize"
    REDUCE = "reduce"
    EMBEDDING = "embedding"
    DROPOUT = "dropout"
    DETECTION = "detection"
    OTHER = "other"


#: Ops whose work is a GEMM with weights (candidates for pruning).
GEMM_OPS = frozenset({Op.CONV, Op.DWCONV, Op.DECONV, Op.FC, Op.MATMUL, Op.GRU, Op.LSTM,
                      Op.ATTENTION})


@dataclass(frozen=True)
class GemmView:
    """One GEMM ``Y[M x N] = W[M x K] @ X[K x N]`` of a layer.

    ``groups``: the M rows split into that many independent GEMMs of (M/groups) x K, each
    with its own K x N operand (grouped and depthwise conv, attention heads).
    ``repeats``: how many times the GEMM runs in sequence (RNN recurrent GEMMs: time steps).
    ``prunable``: W is a weight tensor (False for activation-by-activation matmuls).
    ``kernel``: (kh, kw) for conv GEMMs, else None; columns of W are ordered
    (input channel, kernel row, kernel column).
    """

    name: str
    M: int
    K: int
    N: int
    groups: int = 1
    repeats: int = 1
    prunable: bool = True
    bias: bool = False
    kernel: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for key in ("M", "K", "N", "groups", "repeats"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ShapeError(f"GEMM {self.name!r}: {key} must be a positive int, got {value!r}")
        if self.M % self.groups:
            raise ShapeError(f"GEMM {self.name!r}: M={self.M} not divisible by "
                             f"groups={self.groups}")

    @property
    def macs(self) -> int:
        return self.M * self.K * self.N * self.repeats

    @property
    def weight_shape(self) -> tuple[int, int]:
        return (self.M, self.K)

    @property
    def weight_count(self) -> int:
        """Number of weights in W (0 when W is an activation)."""
        return self.M * self.K if self.prunable else 0

    @property
    def params(self) -> int:
        return self.weight_count + (self.M if self.bias and self.prunable else 0)


def _freeze(attrs: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if not attrs:
        return ()
    frozen = []
    for key, value in sorted(attrs.items()):
        if isinstance(value, list):
            value = tuple(value)
        frozen.append((key, value))
    return tuple(frozen)


@dataclass(frozen=True)
class LayerWorkload:
    """One layer: op kind, shapes and dtype; derives MACs, params, bytes and the GEMM view.

    ``params`` counts every learned parameter of the layer (GEMM weights, biases, and the
    batch-norm or layer-norm parameters fused into it). ``elementwise_ops`` counts the
    cheap arithmetic that is not a GEMM (pooling, activations, softmax...), reported apart
    from MACs as the published tables do. ``activation_bytes_read``/``_written`` are the
    feature-map traffic (0 for views such as reshape).
    """

    name: str
    op: str
    input_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...]
    gemms: tuple[GemmView, ...] = ()
    params: int = 0
    elementwise_ops: int = 0
    activation_bytes_read: int = 0
    activation_bytes_written: int = 0
    attrs: tuple[tuple[str, Any], ...] = ()
    fused: tuple[str, ...] = ()
    activation: str | None = None
    dtype: str = "float32"

    def attr(self, key: str, default: Any = None) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self.attrs)

    @property
    def macs(self) -> int:
        return sum(g.macs for g in self.gemms)

    @property
    def is_gemm(self) -> bool:
        return bool(self.gemms)

    @property
    def output_shape(self) -> Shape:
        return self.output_shapes[0]

    @property
    def weight_bytes(self) -> int:
        return self.params * FLOAT32_BYTES

    @property
    def bytes_read(self) -> int:
        return self.activation_bytes_read + self.weight_bytes

    @property
    def bytes_written(self) -> int:
        return self.activation_bytes_written


# --------------------------------------------------------------------------- helpers


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _pair(value: int | Sequence[int], what: str, layer: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    vals = tuple(int(v) for v in value)
    if len(vals) == 1:
        return (vals[0], vals[0])
    if len(vals) != 2:
        raise ShapeError(f"layer {layer!r}: {what} must be one or two ints, got {value!r}")
    return (vals[0], vals[1])


def _pads(padding: int | Sequence[int], layer: str) -> tuple[int, int, int, int]:
    """Padding as (top, left, bottom, right); accepts p, (ph, pw) or the four values."""
    if isinstance(padding, int):
        return (padding, padding, padding, padding)
    vals = tuple(int(v) for v in padding)
    if len(vals) == 1:
        return (vals[0], vals[0], vals[0], vals[0])
    if len(vals) == 2:
        return (vals[0], vals[1], vals[0], vals[1])
    if len(vals) == 4:
        return (vals[0], vals[1], vals[2], vals[3])
    raise ShapeError(f"layer {layer!r}: padding must have 1, 2 or 4 values, got {padding!r}")


def _require_rank(shape: Shape, rank: int, layer: str, what: str = "input") -> None:
    if len(shape) != rank:
        raise ShapeError(f"layer {layer!r}: {what} must have rank {rank}, got shape {shape}")
    if any((not isinstance(d, int)) or d < 1 for d in shape):
        raise ShapeError(f"layer {layer!r}: {what} shape {shape} has a non-positive dimension")


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _traffic(inputs: Sequence[Shape], outputs: Sequence[Shape]) -> tuple[int, int]:
    return (sum(numel(s) for s in inputs) * FLOAT32_BYTES,
            sum(numel(s) for s in outputs) * FLOAT32_BYTES)


# --------------------------------------------------------------------------- GEMM layers


def conv2d(name: str, input_shape: Shape, out_channels: int, kernel: int | Sequence[int],
           stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
           dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = True,
           activation: str | None = None) -> LayerWorkload:
    """2-D convolution on an NCHW input (any stride, padding, dilation and groups)."""
    _require_rank(input_shape, 4, name)
    n, c, h, w = input_shape
    kh, kw = _pair(kernel, "kernel", name)
    sh, sw = _pair(stride, "stride", name)
    dh, dw = _pair(dilation, "dilation", name)
    pt, pl, pb, pr = _pads(padding, name)
    if groups < 1 or c % groups or out_channels % groups:
        raise ShapeError(f"layer {name!r}: groups={groups} must divide in_channels={c} "
                         f"and out_channels={out_channels}")
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(pt, pl, pb, pr) < 0:
        raise ShapeError(f"layer {name!r}: kernel, stride and dilation must be >= 1 and "
                         "padding >= 0")
    ho = conv_output_size(h, kh, sh, pt, pb, dh)
    wo = conv_output_size(w, kw, sw, pl, pr, dw)
    if ho < 1 or wo < 1:
        raise ShapeError(f"layer {name!r}: a {kh}x{kw} kernel (dilation {dh}x{dw}) does not fit "
                         f"the {h}x{w} input with padding {(pt, pl, pb, pr)}")
    out = (n, out_channels, ho, wo)
    depthwise = groups == c and groups > 1
    gemm = GemmView(name=name, M=out_channels, K=(c // groups) * kh * kw, N=n * ho * wo,
                    groups=groups, bias=bias, kernel=(kh, kw))
    read, written = _traffic([input_shape], [out])
    attrs = {"kernel": (kh, kw), "stride": (sh, sw), "padding": (pt, pl, pb, pr),
             "dilation": (dh, dw), "groups": groups, "in_channels": c,
             "out_channels": out_channels, "bias": bias}
    return LayerWorkload(name=name, op=Op.DWCONV if depthwise else Op.CONV,
                         input_shapes=(input_shape,), output_shapes=(out,), gemms=(gemm,),
                         params=gemm.params, activation_bytes_read=read,
                         activation_bytes_written=written, attrs=_freeze(attrs),
                         activation=activation)


def deconv2d(name: str, input_shape: Shape, out_channels: int, kernel: int | Sequence[int],
             stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
             dilation: int | Sequence[int] = 1, output_padding: int | Sequence[int] = 0,
             groups: int = 1, bias: bool = True, activation: str | None = None) -> LayerWorkload:
    """Transposed convolution, computed as GEMM + col2im: M = out_ch/g*kh*kw per group,
    K = in_channels/groups, N = batch * input pixels."""
    _require_rank(input_shape, 4, name)
    n, c, h, w = input_shape
    kh, kw = _pair(kernel, "kernel", name)
    sh, sw = _pair(stride, "stride", name)
    dh, dw = _pair(dilation, "dilation", name)
    oph, opw = _pair(output_padding, "output_padding", name)
    pt, pl, pb, pr = _pads(padding, name)
    if groups < 1 or c % groups or out_channels % groups:
        raise ShapeError(f"layer {name!r}: groups={groups} must divide in_channels={c} "
                         f"and out_channels={out_channels}")
    ho = (h - 1) * sh - pt - pb + dh * (kh - 1) + 1 + oph
    wo = (w - 1) * sw - pl - pr + dw * (kw - 1) + 1 + opw
    if ho < 1 or wo < 1:
        raise ShapeError(f"layer {name!r}: deconvolution gives an empty {ho}x{wo} output")
    out = (n, out_channels, ho, wo)
    # kernel=None: the columns of this W are input channels, not (channel, kh, kw)
    gemm = GemmView(name=name, M=out_channels * kh * kw, K=c // groups, N=n * h * w,
                    groups=groups)
    params = gemm.weight_count + (out_channels if bias else 0)
    read, written = _traffic([input_shape], [out])
    attrs = {"kernel": (kh, kw), "stride": (sh, sw), "padding": (pt, pl, pb, pr),
             "dilation": (dh, dw), "groups": groups, "in_channels": c,
             "out_channels": out_channels, "bias": bias}
    return LayerWorkload(name=name, op=Op.DECONV, input_shapes=(input_shape,),
                         output_shapes=(out,), gemms=(gemm,), params=params,
                         activation_bytes_read=read, activation_bytes_written=written,
                         attrs=_freeze(attrs), activation=activation)


def linear(name: str, input_shape: Shape, out_features: int, bias: bool = True,
           activation: str | None = None) -> LayerWorkload:
    """Fully connected layer on the last dimension: N = product of the leading dims."""
    if len(input_shape) < 1 or any(d < 1 for d in input_shape):
        raise ShapeError(f"layer {name!r}: bad input shape {input_shape}")
    if out_features < 1:
        raise ShapeError(f"layer {name!r}: out_features must be >= 1, got {out_features}")
    k = input_shape[-1]
    rows = numel(input_shape[:-1]) if len(input_shape) > 1 else 1
    out = (*input_shape[:-1], out_features) if len(input_shape) > 1 else (out_features,)
    gemm = GemmView(name=name, M=out_features, K=k, N=rows, bias=bias)
    read, written = _traffic([input_shape], [out])
    return LayerWorkload(name=name, op=Op.FC, input_shapes=(input_shape,), output_shapes=(out,),
                         gemms=(gemm,), params=gemm.params, activation_bytes_read=read,
                         activation_bytes_written=written,
                         attrs=_freeze({"in_features": k, "out_features": out_features,
                                        "bias": bias}),
                         activation=activation)


def matmul(name: str, a_shape: Shape, b_shape: Shape) -> LayerWorkload:
    """Activation-by-activation matmul ``A[..., m, k] @ B[..., k, n]`` (not prunable).

    The GEMM view is transposed to the weight convention: M = m rows of the output per batch
    item, K = k, N = n; the batch dims become ``groups``.
    """
    if len(a_shape) < 2 or len(b_shape) < 2:
        raise ShapeError(f"layer {name!r}: matmul needs rank >= 2 operands, got {a_shape} "
                         f"and {b_shape}")
    m, k = a_shape[-2:]
    k2, n = b_shape[-2:]
    if k != k2:
        raise ShapeError(f"layer {name!r}: inner dimensions differ: {a_shape} @ {b_shape}")
    batch_a, batch_b = a_shape[:-2], b_shape[:-2]
    batch = _broadcast(batch_a, batch_b, name)
    groups = numel(batch) if batch else 1
    out = (*batch, m, n)
    gemm = GemmView(name=name, M=m * groups, K=k, N=n, groups=groups, prunable=False)
    read, written = _traffic([a_shape, b_shape], [out])
    return LayerWorkload(name=name, op=Op.MATMUL, input_shapes=(a_shape, b_shape),
                         output_shapes=(out,), gemms=(gemm,), params=0,
                         activation_bytes_read=read, activation_bytes_written=written)


def _broadcast(a: Shape, b: Shape, name: str) -> Shape:
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            raise ShapeError(f"layer {name!r}: shapes {a} and {b} do not broadcast")
        out.append(max(da, db))
    return tuple(reversed(out))


_GATES = {Op.GRU: ("r", "z", "n"), Op.LSTM: ("i", "f", "g", "o")}


def recurrent(name: str, kind: str, input_shape: Shape, hidden_size: int, bias: bool = True,
              bidirectional: bool = False) -> LayerWorkload:
    """GRU or LSTM over a (batch, time, features) input; one GEMM per gate and weight.

    Parameters follow PyTorch/ONNX: per direction W_ih (gates*H x I), W_hh (gates*H x H),
    and two bias vectors b_ih, b_hh (gates*H each).
    """
    if kind not in _GATES:
        raise ShapeError(f"layer {name!r}: recurrent kind must be 'gru' or 'lstm', got {kind!r}")
    _require_rank(input_shape, 3, name)
    if hidden_size < 1:
        raise ShapeError(f"layer {name!r}: hidden_size must be >= 1, got {hidden_size}")
    batch, steps, features = input_shape
    directions = ("", "reverse.") if bidirectional else ("",)
    gemms: list[GemmView] = []
    for prefix in directions:
        for gate in _GATES[kind]:
            gemms.append(GemmView(name=f"{name}.{prefix}{gate}.ih", M=hidden_size, K=features,
                                  N=batch * steps, bias=bias))
            gemms.append(GemmView(name=f"{name}.{prefix}{gate}.hh", M=hidden_size,
                                  K=hidden_size, N=batch, repeats=steps, bias=bias))
    out = (batch, steps, hidden_size * len(directions))
    params = sum(g.params for g in gemms)
    n_gates = len(_GATES[kind])
    # Gate nonlinearities and the state update: a few element ops per gate value per step.
    elementwise = len(directions) * batch * steps * hidden_size * (n_gates * 2 + 4)
    read, written = _traffic([input_shape], [out])
    return LayerWorkload(name=name, op=kind, input_shapes=(input_shape,), output_shapes=(out,),
                         gemms=tuple(gemms), params=params, elementwise_ops=elementwise,
                         activation_bytes_read=read, activation_bytes_written=written,
                         attrs=_freeze({"hidden_size": hidden_size, "input_size": features,
                                        "bidirectional": bidirectional, "bias": bias,
                                        "time_steps": steps}))


def attention(name: str, input_shape: Shape, num_heads: int, bias: bool = True,
              kv_shape: Shape | None = None) -> LayerWorkload:
    """Multi-head attention on (batch, time, embed): q/k/v/out projections (prunable) and the
    two activation matmuls QK^T and AV (not prunable), plus the softmax as cheap ops."""
    _require_rank(input_shape, 3, name)
    batch, steps, embed = input_shape
    kv = kv_shape or input_shape
    _require_rank(kv, 3, name, "key/value input")
    kv_steps = kv[1]
    if num_heads < 1 or embed % num_heads:
        raise ShapeError(f"layer {name!r}: num_heads={num_heads} must divide embed={embed}")
    head = embed // num_heads
    groups = batch * num_heads
    gemms = (
        GemmView(name=f"{name}.q", M=embed, K=embed, N=batch * steps, bias=bias),
        GemmView(name=f"{name}.k", M=embed, K=kv[2], N=batch * kv_steps, bias=bias),
        GemmView(name=f"{name}.v", M=embed, K=kv[2], N=batch * kv_steps, bias=bias),
        GemmView(name=f"{name}.qk", M=groups * steps, K=head, N=kv_steps, groups=groups,
                 prunable=False),
        GemmView(name=f"{name}.av", M=groups * steps, K=kv_steps, N=head, groups=groups,
                 prunable=False),
        GemmView(name=f"{name}.out", M=embed, K=embed, N=batch * steps, bias=bias),
    )
    out = (batch, steps, embed)
    # softmax: exp, sum, divide (and the 1/sqrt(d) scale) over the score matrix
    elementwise = groups * steps * kv_steps * 4
    read, written = _traffic([input_shape] + ([kv] if kv_shape else []), [out])
    return LayerWorkload(name=name, op=Op.ATTENTION, input_shapes=(input_shape,)
                         + ((kv,) if kv_shape else ()),
                         output_shapes=(out,), gemms=gemms,
                         params=sum(g.params for g in gemms), elementwise_ops=elementwise,
                         activation_bytes_read=read, activation_bytes_written=written,
                         attrs=_freeze({"num_heads": num_heads, "embed": embed, "bias": bias}))


# --------------------------------------------------------------------------- cheap ops


def elementwise_op(name: str, op: str, input_shapes: Sequence[Shape],
                   output_shapes: Sequence[Shape], *, params: int = 0,
                   ops_per_output: float = 1.0, view: bool = False,
                   attrs: Mapping[str, Any] | None = None) -> LayerWorkload:
    """A cheap (non-GEMM) op: its cost is its memory traffic plus a few ops per output value.

    ``view=True`` marks ops an engine does without moving data (reshape, flatten, dropout at
    inference): no traffic, no ops.
    """
    ins = tuple(tuple(s) for s in input_shapes)
    outs = tuple(tuple(s) for s in output_shapes)
    for s in (*ins, *outs):
        if any((not isinstance(d, int)) or d < 1 for d in s):
            raise ShapeError(f"layer {name!r}: shape {s} has a non-positive dimension")
    if view:
        read = written = 0
        ops = 0
    else:
        read, written = _traffic(ins, outs)
        ops = round(ops_per_output * sum(numel(s) for s in outs))
    return LayerWorkload(name=name, op=op, input_shapes=ins, output_shapes=outs, params=params,
                         elementwise_ops=ops, activation_bytes_read=read,
                         activation_bytes_written=written, attrs=_freeze(attrs))


def pool2d(name: str, input_shape: Shape, kernel: int | Sequence[int],
           stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0,
           ceil_mode: bool = False, kind: str = "max") -> LayerWorkload:
    _require_rank(input_shape, 4, name)
    n, c, h, w = input_shape
    kh, kw = _pair(kernel, "kernel", name)
    sh, sw = _pair(stride if stride is not None else (kh, kw), "stride", name)
    pt, pl, pb, pr = _pads(padding, name)
    ho = conv_output_size(h, kh, sh, pt, pb, 1, ceil_mode)
    wo = conv_output_size(w, kw, sw, pl, pr, 1, ceil_mode)
    if ho < 1 or wo < 1:
        raise ShapeError(f"layer {name!r}: a {kh}x{kw} pooling window does not fit the "
                         f"{h}x{w} input")
    out = (n, c, ho, wo)
    return elementwise_op(name, Op.POOL, [input_shape], [out], ops_per_output=kh * kw,
                          attrs={"kind": kind, "kernel": (kh, kw), "stride": (sh, sw),
                                 "padding": (pt, pl, pb, pr), "ceil_mode": ceil_mode})


def global_pool(name: str, input_shape: Shape, kind: str = "avg",
                keepdims: bool = True) -> LayerWorkload:
    _require_rank(input_shape, 4, name)
    n, c = input_shape[:2]
    out = (n, c, 1, 1) if keepdims else (n, c)
    wl = elementwise_op(name, Op.GLOBAL_POOL, [input_shape], [out], attrs={"kind": kind})
    # one op per input value, not per output value
    return _with_ops(wl, numel(input_shape))


def _with_ops(wl: LayerWorkload, ops: int) -> LayerWorkload:
    from dataclasses import replace

    return replace(wl, elementwise_ops=ops)


def batchnorm(name: str, input_shape: Shape) -> LayerWorkload:
    """Batch norm at inference: a per-channel scale and shift (2*C learned parameters)."""
    if len(input_shape) < 2:
        raise ShapeError(f"layer {name!r}: batch norm needs a channel dimension, got "
                         f"{input_shape}")
    c = input_shape[1]
    return elementwise_op(name, Op.BATCHNORM, [input_shape], [input_shape], params=2 * c,
                          ops_per_output=2)


def layernorm(name: str, input_shape: Shape, affine: bool = True) -> LayerWorkload:
    d = input_shape[-1]
    return elementwise_op(name, Op.LAYERNORM, [input_shape], [input_shape],
                          params=2 * d if affine else 0, ops_per_output=5)


def activation_op(name: str, input_shape: Shape, kind: str = "relu") -> LayerWorkload:
    cost = {"relu": 1, "relu6": 2, "leakyrelu": 2, "clip": 2, "prelu": 2, "sigmoid": 4,
            "tanh": 4, "swish": 5, "hardswish": 4, "hardsigmoid": 3, "gelu": 8, "mish": 8,
            "elu": 4, "selu": 4}.get(kind, 4)
    return elementwise_op(name, Op.ACTIVATION, [input_shape], [input_shape],
                          ops_per_output=cost, attrs={"kind": kind})


def eltwise(name: str, input_shapes: Sequence[Shape], kind: str = "add") -> LayerWorkload:
    """Element-wise binary/n-ary op with numpy broadcasting."""
    if not input_shapes:
        raise ShapeError(f"layer {name!r}: eltwise needs at least one input")
    out: Shape = tuple(input_shapes[0])
    for s in input_shapes[1:]:
        out = _broadcast(out, tuple(s), name)
    return elementwise_op(name, Op.ELTWISE, input_shapes, [out],
                          ops_per_output=max(1, len(input_shapes) - 1), attrs={"kind": kind})


def concat(name: str, input_shapes: Sequence[Shape], axis: int = 1) -> LayerWorkload:
    if not input_shapes:
        raise ShapeError(f"layer {name!r}: concat needs at least one input")
    rank = len(input_shapes[0])
    ax = axis % rank
    for s in input_shapes:
        if len(s) != rank or any(s[i] != input_shapes[0][i] for i in range(rank) if i != ax):
            raise ShapeError(f"layer {name!r}: cannot concatenate shapes "
                             f"{[tuple(x) for x in input_shapes]} on axis {axis}")
    out = list(input_shapes[0])
    out[ax] = sum(s[ax] for s in input_shapes)
    return elementwise_op(name, Op.CONCAT, input_shapes, [tuple(out)], ops_per_output=0,
                          attrs={"axis": ax})


def reshape(name: str, input_shape: Shape, output_shape: Shape, op: str = Op.RESHAPE
            ) -> LayerWorkload:
    if numel(input_shape) != numel(output_shape):
        raise ShapeError(f"layer {name!r}: cannot reshape {input_shape} "
                         f"({numel(input_shape)} values) to {output_shape} "
                         f"({numel(output_shape)} values)")
    return elementwise_op(name, op, [input_shape], [output_shape], view=(op == Op.RESHAPE))


def softmax(name: str, input_shape: Shape, axis: int = -1) -> LayerWorkload:
    return elementwise_op(name, Op.SOFTMAX, [input_shape], [input_shape], ops_per_output=4,
                          attrs={"axis": axis})


def embedding(name: str, input_shape: Shape, num_embeddings: int, dim: int) -> LayerWorkload:
    """Table lookup: counts its parameters, no MACs; traffic is the gathered rows only."""
    if num_embeddings < 1 or dim < 1:
        raise ShapeError(f"layer {name!r}: embedding table must be non-empty")
    out = (*input_shape, dim)
    idx_bytes = numel(input_shape) * 8  # int64 token ids
    return LayerWorkload(name=name, op=Op.EMBEDDING, input_shapes=(tuple(input_shape),),
                         output_shapes=(out,), params=num_embeddings * dim,
                         activation_bytes_read=idx_bytes + numel(out) * FLOAT32_BYTES,
                         activation_bytes_written=numel(out) * FLOAT32_BYTES,
                         attrs=_freeze({"num_embeddings": num_embeddings, "dim": dim}))


def zero_cost(name: str, op: str, input_shapes: Sequence[Shape], output_shapes: Sequence[Shape],
              attrs: Mapping[str, Any] | None = None) -> LayerWorkload:
    """Ops counted with no MACs and no modelled cost (inputs, detection post-processing)."""
    return LayerWorkload(name=name, op=op, input_shapes=tuple(tuple(s) for s in input_shapes),
                         output_shapes=tuple(tuple(s) for s in output_shapes),
                         attrs=_freeze(attrs))


@dataclass(frozen=True)
class LayerSummary:
    """What ``grimsim info`` shows per GEMM row (or per non-GEMM layer)."""

    name: str
    op: str
    M: int | None
    K: int | None
    N: int | None
    params: int
    macs: int
    groups: int = 1
    repeats: int = 1
    prunable: bool = False
    output_shape: Shape = field(default=())


def summary_rows(layer: LayerWorkload) -> list[LayerSummary]:
    """One row per GEMM (the layer's extra parameters go on its first row), or one row with
    null M/K/N for ops without a GEMM."""
    if not layer.gemms:
        return [LayerSummary(layer.name, layer.op, None, None, None, layer.params, 0,
                             output_shape=layer.output_shapes[0] if layer.output_shapes else ())]
    extra = layer.params - sum(g.params for g in layer.gemms)
    rows = []
    for i, g in enumerate(layer.gemms):
        rows.append(LayerSummary(g.name, layer.op, g.M, g.K, g.N,
                                 g.params + (extra if i == 0 else 0), g.macs, g.groups,
                                 g.repeats, g.prunable, layer.output_shapes[0]))
    return rows
