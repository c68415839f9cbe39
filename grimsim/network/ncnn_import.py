"""Import ncnn ``.param`` files (the text network structure) into a Network.

The format (ncnn docs/developer-guide/param-and-model-file-structure.md): the magic
``7767517``, a line ``layer_count blob_count``, then one layer per line::

    Type  name  bottom_count top_count  bottoms...  tops...  key=value...

Scalar params use keys 0..31; array params use key ``-23300 - k`` with the value
``n,v1,...,vn``. ``-23330`` (array 30) holds shape hints: four ints per top blob,
``dims,w,h,c``. Layer param ids and defaults follow ncnn's operators.md and the layer
sources in src/layer/ (https://github.com/Tencent/ncnn).

Shapes: an ncnn blob is ``[w]``, ``[w,h]``, ``[w,h,c]`` or ``[w,h,d,c]`` with no batch; in
grimsim it becomes ``(batch, w)``, ``(batch, h, w)``, ``(batch, c, h, w)`` or
``(batch, c, d, h, w)`` (outermost first), so an ncnn ``axis`` a is grimsim axis a + 1.

ncnn has already folded batch norm and activations into conv/fc (the ``9=`` activation
fields); those are recorded as the workload's ``activation``. Detection post-processing
(PriorBox, DetectionOutput, Yolo outputs) imports as zero-MAC ``detection`` ops.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from grimsim.errors import (
    ModelFormatError,
    ShapeError,
    UnknownModelError,
    UnsupportedOpError,
)
from grimsim.network.graph import Network, NetworkBuilder
from grimsim.network.workload import (
    LayerWorkload,
    Op,
    Shape,
    activation_op,
    attention,
    batchnorm,
    concat,
    conv2d,
    deconv2d,
    elementwise_op,
    eltwise,
    layernorm,
    linear,
    matmul,
    numel,
    pool2d,
    reshape,
    softmax,
    zero_cost,
)

log = logging.getLogger(__name__)

MAGIC = 7767517
_ARRAY_KEY_BASE = -23300
_MAX_PARAM_INDEX = 31  # ncnn's NCNN_MAX_PARAM_COUNT is 32
_SHAPE_HINT_INDEX = 30  # -23330=
_SAME_UPPER = -233  # ncnn pad value: tensorflow/onnx SAME (extra padding at the end)
_SAME_LOWER = -234  # onnx SAME_LOWER (extra padding at the start)
_AUTO = -233  # ncnn's "not set / derive it" marker in Reshape, Slice, Crop

#: Input sizes benchncnn feeds the models of ncnn's benchmark suite, used only when a file
#: declares no input shape itself (FastestDet and vision_transformer declare none).
#: Source: https://github.com/Tencent/ncnn/blob/master/benchmark/benchncnn.cpp
BENCHNCNN_INPUT_SHAPES: dict[str, Shape] = {
    "squeezenet": (1, 3, 227, 227), "mobilenet": (1, 3, 224, 224),
    "mobilenet_v2": (1, 3, 224, 224), "mobilenet_v3": (1, 3, 224, 224),
    "shufflenet": (1, 3, 224, 224), "shufflenet_v2": (1, 3, 224, 224),
    "mnasnet": (1, 3, 224, 224), "proxylessnasnet": (1, 3, 224, 224),
    "efficientnet_b0": (1, 3, 224, 224), "efficientnetv2_b0": (1, 3, 224, 224),
    "regnety_400m": (1, 3, 224, 224), "blazeface": (1, 3, 128, 128),
    "googlenet": (1, 3, 224, 224), "resnet18": (1, 3, 224, 224), "alexnet": (1, 3, 227, 227),
    "vgg16": (1, 3, 224, 224), "resnet50": (1, 3, 224, 224),
    "squeezenet_ssd": (1, 3, 300, 300), "mobilenet_ssd": (1, 3, 300, 300),
    "mobilenet_yolo": (1, 3, 416, 416), "mobilenetv2_yolov3": (1, 3, 352, 352),
    "yolov4-tiny": (1, 3, 416, 416), "nanodet_m": (1, 3, 320, 320),
    "yolo-fastest-1.1": (1, 3, 320, 320), "yolo-fastestv2": (1, 3, 352, 352),
    "vision_transformer": (1, 3, 384, 384), "FastestDet": (1, 3, 352, 352),
}

ParamValue = int | float | str | tuple[int | float, ...]

_INT_RE = re.compile(r"^[+-]?\d+$")


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class NcnnLayer:
    """One layer line of a .param file, as written (``line`` is 1-based)."""

    type: str
    name: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: dict[int, ParamValue] = field(hash=False)
    line: int

    @property
    def shape_hints(self) -> tuple[Shape | None, ...]:
        """The ``-23330=`` output-shape hints as batch-1 grimsim shapes (one per top; None
        where the hint has no usable dims), or () when the line has no hints."""
        raw = self.params.get(_SHAPE_HINT_INDEX)
        if not isinstance(raw, tuple):
            return ()
        hints: list[Shape | None] = []
        for j in range(len(self.tops)):
            dims, w, h, c = (int(v) for v in raw[4 * j: 4 * j + 4])
            hints.append({1: (1, w), 2: (1, h, w), 3: (1, c, h, w)}.get(dims))
        return tuple(hints)


@dataclass(frozen=True)
class NcnnParamFile:
    """A parsed .param file: its declared counts and its layer lines."""

    path: str
    layer_count: int
    blob_count: int
    layers: tuple[NcnnLayer, ...]


def _parse_value(text: str) -> int | float | str:
    if _INT_RE.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text  # modern ncnn allows short string values


def _parse_params(tokens: Sequence[str], where: str) -> dict[int, ParamValue]:
    params: dict[int, ParamValue] = {}
    for tok in tokens:
        key_text, eq, value_text = tok.partition("=")
        if not eq or not _INT_RE.match(key_text) or not value_text:
            raise ModelFormatError(f"{where}: malformed param {tok!r}: expected key=value "
                                   "(check the layer's bottom/top counts)")
        key = int(key_text)
        if key <= _ARRAY_KEY_BASE:
            index = _ARRAY_KEY_BASE - key
            items = value_text.split(",")
            if not _INT_RE.match(items[0]):
                raise ModelFormatError(f"{where}: array param {tok!r} must start with its "
                                       "element count")
            count = int(items[0])
            if count != len(items) - 1:
                raise ModelFormatError(f"{where}: array param {tok!r} declares {count} "
                                       f"elements but lists {len(items) - 1}")
            value: ParamValue = tuple(_number(v, tok, where) for v in items[1:])
        else:
            index = key
            if "," in value_text:  # modern ncnn: an array without its count
                value = tuple(_number(v, tok, where) for v in value_text.split(","))
            else:
                value = _parse_value(value_text)
        if not 0 <= index <= _MAX_PARAM_INDEX:
            raise ModelFormatError(f"{where}: param key {key} is out of range (0..31, or "
                                   "-23300..-23331 for arrays)")
        if index in params:
            raise ModelFormatError(f"{where}: param {index} is given twice ({tok!r})")
        params[index] = value
    return params


def _number(text: str, tok: str, where: str) -> int | float:
    value = _parse_value(text)
    if isinstance(value, str):
        raise ModelFormatError(f"{where}: array param {tok!r} has a non-numeric element "
                               f"{text!r}")
    return value


def parse_ncnn_param(path: str | Path) -> NcnnParamFile:
    """Read and check the structure of an ncnn text .param file (no shape inference).

    Raises ModelFormatError naming the file and line for a wrong magic number, bad counts
    or a malformed key=value.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UnknownModelError(f"cannot read ncnn param file {str(p)!r}: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFormatError(f"{p}: not a text .param file (binary .param.bin files are "
                               "not supported)") from None
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    lines = [(i, ln) for i, ln in lines if ln]
    if not lines:
        raise ModelFormatError(f"{p}: empty file; an ncnn .param file starts with {MAGIC}")
    lineno, magic = lines[0]
    if magic != str(MAGIC):
        raise ModelFormatError(f"{p}:{lineno}: wrong magic number {magic[:40]!r}; an ncnn "
                               f"text .param file starts with {MAGIC}")
    if len(lines) < 2:
        raise ModelFormatError(f"{p}: missing the 'layer_count blob_count' line")
    lineno, header = lines[1]
    counts = header.split()
    if len(counts) != 2 or not all(_INT_RE.match(c) for c in counts):
        raise ModelFormatError(f"{p}:{lineno}: expected 'layer_count blob_count', got "
                               f"{header[:60]!r}")
    layer_count, blob_count = (int(c) for c in counts)
    if layer_count < 1 or blob_count < 1:
        raise ModelFormatError(f"{p}:{lineno}: layer and blob counts must be positive, got "
                               f"{layer_count} {blob_count}")
    body = lines[2:]
    if len(body) < layer_count:
        raise ModelFormatError(f"{p}: the header declares {layer_count} layers but the file "
                               f"has only {len(body)} layer lines")
    if len(body) > layer_count:
        # ncnn reads exactly layer_count layers and ignores the rest; do the same, loudly.
        log.warning("%s: the header declares %d layers; ignoring %d extra line(s) from "
                    "line %d on, as ncnn does", p, layer_count, len(body) - layer_count,
                    body[layer_count][0])
    layers: list[NcnnLayer] = []
    names: dict[str, int] = {}
    tops_seen: set[str] = set()
    for lineno, ln in body[:layer_count]:
        layer = _parse_layer_line(ln, f"{p}:{lineno}", lineno)
        if layer.name in names:
            raise ModelFormatError(f"{p}:{lineno}: layer name {layer.name!r} is already used "
                                   f"on line {names[layer.name]}")
        names[layer.name] = lineno
        tops_seen.update(layer.tops)
        layers.append(layer)
    if len(tops_seen) > blob_count:
        raise ModelFormatError(f"{p}:{lines[1][0]}: the header declares {blob_count} blobs "
                               f"but the layers produce {len(tops_seen)}")
    if len(tops_seen) < blob_count:
        log.warning("%s: the header declares %d blobs, the layers produce %d", p, blob_count,
                    len(tops_seen))
    return NcnnParamFile(str(p), layer_count, blob_count, tuple(layers))


def _parse_layer_line(ln: str, where: str, lineno: int) -> NcnnLayer:
    tokens = ln.split()
    if len(tokens) < 4:
        raise ModelFormatError(f"{where}: a layer line needs 'type name bottom_count "
                               f"top_count ...', got {ln[:80]!r}")
    ltype, name, nb_text, nt_text = tokens[:4]
    if not (_INT_RE.match(nb_text) and _INT_RE.match(nt_text)) or int(nb_text) < 0 \
            or int(nt_text) < 0:
        raise ModelFormatError(f"{where}: layer {name!r}: bottom/top counts must be "
                               f"non-negative integers, got {nb_text!r} {nt_text!r}")
    nb, nt = int(nb_text), int(nt_text)
    blobs = tokens[4:4 + nb + nt]
    if len(blobs) < nb + nt or any("=" in b for b in blobs):
        raise ModelFormatError(f"{where}: layer {name!r} declares {nb} bottom and {nt} top "
                               "blobs but the line does not list that many blob names")
    where = f"{where}: {ltype} {name!r}"
    params = _parse_params(tokens[4 + nb + nt:], where)
    hints = params.get(_SHAPE_HINT_INDEX)
    if hints is not None and (not isinstance(hints, tuple) or len(hints) != 4 * nt
                              or not all(isinstance(v, int) for v in hints)):
        raise ModelFormatError(f"{where}: shape hints -23330= must hold 4 ints (dims,w,h,c) "
                               f"per top blob ({4 * nt} for {nt} tops)")
    return NcnnLayer(ltype, name, tuple(blobs[:nb]), tuple(blobs[nb:]), params, lineno)


# --------------------------------------------------------------------------- params


class _Params:
    """Typed access to a layer's params with ncnn's defaults; errors name file and line."""

    def __init__(self, values: dict[int, ParamValue], where: str) -> None:
        self._values = values
        self._where = where

    def has(self, key: int) -> bool:
        return key in self._values

    def int_(self, key: int, default: int) -> int:
        value = self._values.get(key, default)
        if not isinstance(value, int):
            raise ModelFormatError(f"{self._where}: param {key} must be an integer, got "
                                   f"{value!r}")
        return value

    def float_(self, key: int, default: float) -> float:
        value = self._values.get(key, default)
        if isinstance(value, (tuple, str)):
            raise ModelFormatError(f"{self._where}: param {key} must be a number, got "
                                   f"{value!r}")
        return float(value)

    def array(self, key: int) -> tuple[int | float, ...]:
        value = self._values.get(key, ())
        if isinstance(value, (int, float)):
            return (value,)  # a one-element array written as a scalar
        if isinstance(value, str):
            raise ModelFormatError(f"{self._where}: param {key} must be an array, got "
                                   f"{value!r}")
        return value

    def ints(self, key: int) -> tuple[int, ...]:
        values = self.array(key)
        if not all(isinstance(v, int) for v in values):
            raise ModelFormatError(f"{self._where}: array param {key} must hold integers, "
                                   f"got {values!r}")
        return tuple(int(v) for v in values)

    def floats(self, key: int) -> tuple[float, ...]:
        return tuple(float(v) for v in self.array(key))


@dataclass(frozen=True)
class _Ctx:
    """What a layer handler needs: the layer, its params, its input shapes and the batch."""

    layer: NcnnLayer
    params: _Params
    inputs: tuple[Shape, ...]
    batch: int
    where: str
    input_overridden: bool = False

    @property
    def name(self) -> str:
        return self.layer.name

    def x(self, rank: int | None = None) -> Shape:
        """The first input (its grimsim rank checked when given)."""
        shape = self.inputs[0]
        if rank is not None and len(shape) != rank:
            raise ShapeError(f"needs a {_dims_text(rank)} input, got shape {shape}")
        return shape


def _dims_text(rank: int) -> str:
    return {2: "1-D [w]", 3: "2-D [w,h]", 4: "3-D [w,h,c]", 5: "4-D [w,h,d,c]"}.get(
        rank, f"rank-{rank}")


def _axis(axis: int, dims: int) -> int:
    """ncnn axis (outermost first, no batch, negative allowed) -> grimsim axis."""
    a = axis + dims if axis < 0 else axis
    if not 0 <= a < dims:
        raise ShapeError(f"axis {axis} is out of range for a {dims}-D blob")
    return a + 1


# --------------------------------------------------------------------------- activations

#: ncnn's fused activation_type (9=) -> grimsim activation kind (ncnn operators.md).
_FUSED_ACTIVATIONS = {1: "relu", 2: "leakyrelu", 3: "clip", 4: "sigmoid", 5: "mish",
                      6: "hardswish"}


def _fused_activation(ctx: _Ctx) -> str | None:
    kind = ctx.params.int_(9, 0)
    if kind == 0:
        return None
    if kind not in _FUSED_ACTIVATIONS:
        raise ModelFormatError(f"{ctx.where}: unknown activation_type 9={kind} (ncnn knows "
                               "0..6)")
    name = _FUSED_ACTIVATIONS[kind]
    if name == "clip" and ctx.params.floats(10) == (0.0, 6.0):
        return "relu6"
    return name


def _check_weights(ctx: _Ctx, key: int, counted: int, what: str) -> None:
    """Cross-check our weight count against the file's weight_data_size param."""
    declared = ctx.params.int_(key, 0)
    if declared <= 0:
        raise ModelFormatError(f"{ctx.where}: missing or zero {key}=weight_data_size")
    if declared != counted:
        message = (f"{ctx.where}: {key}=weight_data_size is {declared} but {what} on input "
                   f"{ctx.inputs[0]} has {counted} weights")
        if ctx.input_overridden:  # most likely the given input shape, not the file
            raise ShapeError(f"{message}; the model does not accept the given input shape")
        raise ModelFormatError(message)


# --------------------------------------------------------------------------- GEMM layers


def _same_pads(size: int, extent: int, stride: int, lower: bool) -> tuple[int, int]:
    """ncnn's SAME padding: enough to cover ceil(size/stride) windows."""
    total = max(0, extent + (size - 1) // stride * stride - size)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def _conv_geometry(ctx: _Ctx) -> tuple[int, int, int, int, int, int, tuple[int, int, int, int]]:
    """kh, kw, sh, sw, dh, dw and (top, left, bottom, right) pads of a conv/deconv."""
    p = ctx.params
    kw = p.int_(1, 0)
    kh = p.int_(11, kw)
    dw = p.int_(2, 1)
    dh = p.int_(12, dw)
    sw = p.int_(3, 1)
    sh = p.int_(13, sw)
    pl = p.int_(4, 0)
    pt = p.int_(14, pl)
    pr = p.int_(15, pl)
    pb = p.int_(16, pt)
    _require_positive(ctx, kernel=(kh, kw), stride=(sh, sw), dilation=(dh, dw))
    return kh, kw, sh, sw, dh, dw, (pt, pl, pb, pr)


def _require_positive(ctx: _Ctx, **values: tuple[int, int]) -> None:
    for what, pair in values.items():
        if min(pair) < 1:
            raise ModelFormatError(f"{ctx.where}: {what} must be >= 1, got {pair}")


def _convolution(ctx: _Ctx, grouped: bool) -> LayerWorkload:
    p = ctx.params
    if p.int_(19, 0):
        raise UnsupportedOpError(f"{ctx.where}: dynamic-weight convolution (19=1) is not "
                                 "supported")
    x = ctx.x(rank=4)
    kh, kw, sh, sw, dh, dw, pads = _conv_geometry(ctx)
    if _SAME_UPPER in pads or _SAME_LOWER in pads:
        lower = _SAME_LOWER in pads
        pt, pb = _same_pads(x[2], dh * (kh - 1) + 1, sh, lower)
        pl, pr = _same_pads(x[3], dw * (kw - 1) + 1, sw, lower)
        pads = (pt, pl, pb, pr)
    groups = p.int_(7, 1) if grouped else 1
    wl = conv2d(ctx.name, x, p.int_(0, 0), (kh, kw), (sh, sw), pads, (dh, dw), groups,
                bias=bool(p.int_(5, 0)), activation=_fused_activation(ctx))
    _check_weights(ctx, 6, wl.gemms[0].weight_count, f"a {kh}x{kw} conv (groups {groups})")
    return wl


def _deconvolution(ctx: _Ctx, grouped: bool) -> LayerWorkload:
    p = ctx.params
    x = ctx.x(rank=4)
    kh, kw, sh, sw, dh, dw, (pt, pl, pb, pr) = _conv_geometry(ctx)
    opr = p.int_(18, 0)
    opb = p.int_(19, opr)
    out_w = p.int_(20, 0)
    out_h = p.int_(21, out_w)
    pads = (pt, pl, pb, pr)
    if any(v > 0 for v in pads):
        pads = (max(0, pt), max(0, pl), max(0, pb), max(0, pr))
    elif out_w > 0 and out_h > 0 and (_SAME_UPPER in pads or _SAME_LOWER in pads):
        # cut the full output down to output_w x output_h, SAME-style
        full_h = (x[2] - 1) * sh + dh * (kh - 1) + 1 + opb
        full_w = (x[3] - 1) * sw + dw * (kw - 1) + 1 + opr
        hcut, wcut = full_h - out_h, full_w - out_w
        if _SAME_LOWER in pads:
            pads = (hcut - hcut // 2, wcut - wcut // 2, hcut // 2, wcut // 2)
        else:
            pads = (hcut // 2, wcut // 2, hcut - hcut // 2, wcut - wcut // 2)
    else:
        pads = (0, 0, 0, 0)
    groups = p.int_(7, 1) if grouped else 1
    wl = deconv2d(ctx.name, x, p.int_(0, 0), (kh, kw), (sh, sw), pads, (dh, dw), (opb, opr),
                  groups, bias=bool(p.int_(5, 0)), activation=_fused_activation(ctx))
    _check_weights(ctx, 6, wl.gemms[0].weight_count,
                   f"a {kh}x{kw} deconvolution (groups {groups})")
    return wl


def _inner_product(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    x = ctx.x()
    num_output = p.int_(0, 0)
    bias = bool(p.int_(1, 0))
    act = _fused_activation(ctx)
    s = x[1:]
    declared = p.int_(2, 0)
    if len(s) == 2 and s[0] > 1 and num_output > 0 and declared == s[1] * num_output:
        # a 2-D blob with w == num_input: one row per h, as ncnn's gemm path does
        wl = linear(ctx.name, x, num_output, bias, act)
    else:
        flat = (x[0], numel(s))
        wl = replace(linear(ctx.name, flat, num_output, bias, act), input_shapes=(x,))
    _check_weights(ctx, 2, wl.gemms[0].weight_count, "an inner product")
    return wl


def _gemm(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    trans_a, trans_b = bool(p.int_(2, 0)), bool(p.int_(3, 0))
    const_a, const_b, const_c = bool(p.int_(4, 0)), bool(p.int_(5, 0)), bool(p.int_(6, 0))
    if p.int_(11, 0):
        raise UnsupportedOpError(f"{ctx.where}: Gemm with output_N1M=1 is not supported")
    if const_a and const_b:
        raise UnsupportedOpError(f"{ctx.where}: Gemm with both A and B constant has no input")
    needed = 2 - const_a - const_b
    if len(ctx.inputs) not in ((needed,) if const_c else (needed, needed + 1)):
        raise ModelFormatError(f"{ctx.where}: Gemm with constantA={int(const_a)} "
                               f"constantB={int(const_b)} constantC={int(const_c)} cannot "
                               f"take {len(ctx.inputs)} inputs")
    batch = ctx.batch

    def matrix(shape: Shape, trans: bool) -> tuple[int, int]:
        s = shape[1:]
        if len(s) == 1:
            rows, cols = 1, s[0]
        elif len(s) == 2:
            rows, cols = s
        else:
            raise ShapeError(f"Gemm needs 1-D or 2-D inputs, got {shape}")
        return (cols, rows) if trans else (rows, cols)

    if const_b:  # y[M, N] = x[M, K] @ W[K, N]: W is the weight (ONNX Gemm / nn.Linear)
        m, k = matrix(ctx.inputs[0], trans_a)
        n = p.int_(8, 0)
        if p.int_(9, k) != k:
            raise ShapeError(f"Gemm constantK={p.int_(9, k)} differs from the input's K={k}")
        wl = linear(ctx.name, (batch, m, k), n, bias=const_c)
        out = (batch, n, m) if p.int_(14, 0) else (batch, m, n)
    elif const_a:  # y[M, N] = W[M, K] @ x[K, N]
        k, n = matrix(ctx.inputs[0], trans_b)
        m = p.int_(7, 0)
        if p.int_(9, k) != k:
            raise ShapeError(f"Gemm constantK={p.int_(9, k)} differs from the input's K={k}")
        wl = linear(ctx.name, (batch, n, k), m, bias=const_c)
        out = (batch, n, m) if p.int_(14, 0) else (batch, m, n)
    else:
        m, k = matrix(ctx.inputs[0], trans_a)
        k2, n = matrix(ctx.inputs[1], trans_b)
        wl = matmul(ctx.name, (batch, m, k), (batch, k2, n))
        out = (batch, n, m) if p.int_(14, 0) else (batch, m, n)
        return replace(wl, input_shapes=tuple(ctx.inputs), output_shapes=(out,))
    # C: scalar, per-M, per-M, full M x N, or per-N (ncnn gemm.cpp broadcast types 0..4)
    bcast = p.int_(10, 0)
    c_count = {0: 1, 1: m, 2: m, 3: m * n, 4: n}.get(bcast, n) if const_c else 0
    params = wl.gemms[0].weight_count + c_count
    return replace(wl, input_shapes=tuple(ctx.inputs), output_shapes=(out,), params=params)


def _multi_head_attention(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    embed = p.int_(0, 0)
    heads = p.int_(1, 1)
    if p.int_(5, 0):
        raise UnsupportedOpError(f"{ctx.where}: MultiHeadAttention with an attention mask "
                                 "input (5=1) is not supported")
    q = ctx.x(rank=3)
    k = ctx.inputs[1] if len(ctx.inputs) > 1 else q
    v = ctx.inputs[2] if len(ctx.inputs) > 2 else k
    if len(k) != 3 or v != k:
        raise ShapeError(f"MultiHeadAttention needs 2-D [embed, seq] inputs with equal key "
                         f"and value shapes, got {k} and {v}")
    if q[2] != embed:
        raise ShapeError(f"query width {q[2]} differs from embed_dim={embed}")
    if p.int_(3, embed) != k[2] or p.int_(4, embed) != v[2]:
        raise ShapeError(f"kdim/vdim ({p.int_(3, embed)}, {p.int_(4, embed)}) differ from the "
                         f"key/value widths {k[2]}")
    wl = attention(ctx.name, q, heads, bias=True, kv_shape=None if k == q else k)
    # the q projection is embed x qdim (ncnn's weight_data_size)
    _check_weights(ctx, 2, wl.gemms[0].weight_count, "the query projection")
    return replace(wl, input_shapes=tuple(ctx.inputs))


# --------------------------------------------------------------------------- pooling


def _pool_extent(size: int, kernel: int, stride: int, begin: int, end: int, mode: int
                 ) -> tuple[int, int]:
    """Padding (begin, end) ncnn really applies for pad_mode 0 full / 1 valid / 2, 3 SAME."""
    if mode == 0:  # "full": pad the end so the last partial window counts (ceil mode)
        tail = (size + begin + end - kernel) % stride
        return begin, end + (stride - tail if tail else 0)
    if mode == 1:
        return begin, end
    if mode in (2, 3):
        return _same_pads(size, kernel, stride, lower=(mode == 3))
    raise ShapeError(f"unknown pad_mode {mode} (ncnn knows 0..3)")


def _pooling(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    x = ctx.x(rank=4)
    kind = {0: "max", 1: "avg"}.get(p.int_(0, 0))
    if kind is None:
        raise ModelFormatError(f"{ctx.where}: unknown pooling_type {p.int_(0, 0)}")
    n, c, h, w = x
    if p.int_(4, 0):  # global pooling gives a 1-D [c] blob
        wl = elementwise_op(ctx.name, Op.GLOBAL_POOL, [x], [(n, c)], attrs={"kind": kind})
        return replace(wl, elementwise_ops=numel(x))
    if p.int_(7, 0):  # adaptive pooling to out_w x out_h
        ow = p.int_(8, 0)
        oh = p.int_(18, ow)
        ow, oh = ow or w, oh or h
        return elementwise_op(ctx.name, Op.POOL, [x], [(n, c, oh, ow)],
                              ops_per_output=math.ceil(h / oh) * math.ceil(w / ow),
                              attrs={"kind": kind, "adaptive": True})
    kw = p.int_(1, 0)
    kh = p.int_(11, kw)
    sw = p.int_(2, 1)
    sh = p.int_(12, sw)
    pl = p.int_(3, 0)
    pt = p.int_(13, pl)
    pr = p.int_(14, pl)
    pb = p.int_(15, pt)
    mode = p.int_(5, 0)
    _require_positive(ctx, kernel=(kh, kw), stride=(sh, sw))
    pads = (pt, pl, pb, pr)
    if _SAME_UPPER in pads or _SAME_LOWER in pads:
        mode = 3 if _SAME_LOWER in pads else 2
        pads = (0, 0, 0, 0)
    pt, pb = _pool_extent(h, kh, sh, pads[0], pads[2], mode)
    pl, pr = _pool_extent(w, kw, sw, pads[1], pads[3], mode)
    exact = pool2d(ctx.name, x, (kh, kw), (sh, sw), (pt, pl, pb, pr), kind=kind)
    if mode == 0:
        # report it as the ceil-mode pooling it is when the two agree (they differ only when
        # the last window would start in the end padding, which ncnn keeps and ceil drops)
        try:
            ceil = pool2d(ctx.name, x, (kh, kw), (sh, sw), pads, ceil_mode=True, kind=kind)
        except ShapeError:
            return exact
        if ceil.output_shapes == exact.output_shapes:
            return ceil
    return exact


# --------------------------------------------------------------------------- cheap ops


def _ncnn_broadcast(a: Shape, b: Shape) -> Shape:
    """ncnn BinaryOp broadcasting: a lower-rank operand aligns with the *outer* dims of the
    other (docs/developer-guide/binaryop-broadcasting.md), then size-1 dims broadcast."""
    sa, sb = list(a[1:]), list(b[1:])
    rank = max(len(sa), len(sb))
    sa += [1] * (rank - len(sa))
    sb += [1] * (rank - len(sb))
    out = [max(a[0], b[0])]
    for da, db in zip(sa, sb, strict=True):
        if da != db and 1 not in (da, db):
            raise ShapeError(f"shapes {a} and {b} do not broadcast (ncnn rules)")
        out.append(max(da, db))
    return tuple(out)


_BINARY_KINDS = {0: "add", 1: "sub", 2: "mul", 3: "div", 4: "max", 5: "min", 6: "pow",
                 7: "rsub", 8: "rdiv", 9: "rpow", 10: "atan2", 11: "ratan2"}


def _binary_op(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    op_type = p.int_(0, 0)
    kind = _BINARY_KINDS.get(op_type, f"binary{op_type}")
    if p.int_(1, 0) or len(ctx.inputs) == 1:
        x = ctx.x()
        return elementwise_op(ctx.name, Op.ELTWISE, [x], [x],
                              attrs={"kind": kind, "scalar": p.float_(2, 0.0)})
    if len(ctx.inputs) != 2:
        raise ModelFormatError(f"{ctx.where}: BinaryOp takes 1 or 2 inputs, got "
                               f"{len(ctx.inputs)}")
    out = _ncnn_broadcast(ctx.inputs[0], ctx.inputs[1])
    return elementwise_op(ctx.name, Op.ELTWISE, ctx.inputs, [out], attrs={"kind": kind})


def _eltwise(ctx: _Ctx) -> LayerWorkload:
    kind = {0: "mul", 1: "add", 2: "max"}.get(ctx.params.int_(0, 0))
    if kind is None:
        raise ModelFormatError(f"{ctx.where}: unknown Eltwise op_type {ctx.params.int_(0, 0)}")
    if any(s != ctx.inputs[0] for s in ctx.inputs):
        raise ShapeError(f"Eltwise inputs must have equal shapes, got {ctx.inputs}")
    return eltwise(ctx.name, ctx.inputs, kind)


def _scale(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    size = p.int_(0, 0)
    if size == _AUTO:  # y = x0 * x1, the scale comes from the second blob
        if len(ctx.inputs) != 2:
            raise ModelFormatError(f"{ctx.where}: Scale with 0=-233 needs two inputs")
        out = _ncnn_broadcast(ctx.inputs[0], ctx.inputs[1])
        return elementwise_op(ctx.name, Op.ELTWISE, ctx.inputs, [out], attrs={"kind": "mul"})
    x = ctx.x()
    bias = bool(p.int_(1, 0))
    return elementwise_op(ctx.name, Op.SCALE, [x], [x], params=size * (2 if bias else 1),
                          ops_per_output=2 if bias else 1)


def _bias(ctx: _Ctx) -> LayerWorkload:
    x = ctx.x()
    return elementwise_op(ctx.name, Op.SCALE, [x], [x], params=ctx.params.int_(0, 0),
                          attrs={"kind": "bias"})


def _batchnorm(ctx: _Ctx) -> LayerWorkload:
    x = ctx.x()
    channels = ctx.params.int_(0, 0)
    if len(x) < 2 or channels != x[1]:
        raise ShapeError(f"BatchNorm channels=0={channels} differs from the input's channels "
                         f"in {x}")
    return batchnorm(ctx.name, x)


#: ncnn activation layer type -> grimsim activation kind.
_ACTIVATION_LAYERS = {
    "ReLU": "relu", "ReLU6": "relu6", "Clip": "clip", "Sigmoid": "sigmoid", "Swish": "swish",
    "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "Mish": "mish", "PReLU": "prelu",
    "ELU": "elu", "SELU": "selu", "TanH": "tanh", "GELU": "gelu", "AbsVal": "abs",
    "BNLL": "bnll", "Softplus": "softplus", "Exp": "exp", "Log": "log", "Power": "power",
    "Threshold": "threshold", "Erf": "erf", "UnaryOp": "unary",
}


def _activation(ctx: _Ctx) -> LayerWorkload:
    x = ctx.x()
    kind = _ACTIVATION_LAYERS[ctx.layer.type]
    p = ctx.params
    if kind == "relu" and p.float_(0, 0.0) != 0.0:
        kind = "leakyrelu"
    elif kind == "clip" and (p.float_(0, -math.inf), p.float_(1, math.inf)) == (0.0, 6.0):
        kind = "relu6"
    elif kind == "unary":
        kind = f"unary{p.int_(0, 0)}"
    wl = activation_op(ctx.name, x, kind)
    if kind == "prelu":
        wl = replace(wl, params=p.int_(0, 0))
    return wl


def _concat(ctx: _Ctx) -> LayerWorkload:
    dims = len(ctx.x()) - 1
    return concat(ctx.name, ctx.inputs, _axis(ctx.params.int_(0, 0), dims))


def _split(ctx: _Ctx) -> LayerWorkload:
    x = ctx.x()
    return elementwise_op(ctx.name, Op.SPLIT, [x], [x] * len(ctx.layer.tops), view=True)


def _slice(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    x = ctx.x()
    ax = _axis(p.int_(1, 0), len(x) - 1)
    total = x[ax]
    n = len(ctx.layer.tops)
    indices = p.ints(2)
    sizes: list[int] = []
    if indices:
        if len(indices) != n - 1 and len(indices) != n:
            raise ModelFormatError(f"{ctx.where}: Slice has {len(indices)} indices for {n} "
                                   "outputs")
        ends = [i + total if i < 0 else i for i in indices[:n - 1]] + [total]
        start = 0
        for end in ends:
            sizes.append(min(end, total) - start)
            start = min(end, total)
    else:
        slices = p.ints(0)
        if len(slices) != n:
            raise ModelFormatError(f"{ctx.where}: Slice lists {len(slices)} slices for {n} "
                                   "outputs")
        used = 0
        for i, size in enumerate(slices):
            if size == _AUTO:  # split what is left evenly
                size = (total - used) // (n - i)
            sizes.append(size)
            used += size
    if any(s < 1 for s in sizes) or sum(sizes) > total:
        raise ShapeError(f"slices {sizes} do not fit the axis of size {total} in {x}")
    outs = [(*x[:ax], s, *x[ax + 1:]) for s in sizes]
    return elementwise_op(ctx.name, Op.SLICE, [x], outs, ops_per_output=0,
                          attrs={"axis": ax, "sizes": tuple(sizes)})


def _crop_range(size: int, start: int, end: int) -> tuple[int, int]:
    """ncnn's numpy-style crop on one axis: -233 means the ends; end <= 0 counts from the
    end; returns (offset, length)."""
    if start == _AUTO:
        start = 0
    if end == _AUTO:
        end = size
    offset = start if start >= 0 else size + start
    return offset, min(size, end if end > 0 else size + end) - offset


def _crop(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    x = ctx.x()
    s = list(x[1:])
    dims = len(s)
    if not 1 <= dims <= 3:
        raise ShapeError(f"Crop supports 1-D to 3-D blobs, got {x}")
    out = list(s)
    starts, ends, axes = p.ints(9), p.ints(10), p.ints(11)
    if starts and ends:
        axes = axes or tuple(range(dims))
        if not len(starts) == len(ends) == len(axes):
            raise ModelFormatError(f"{ctx.where}: Crop starts/ends/axes differ in length")
        for start, end, axis in zip(starts, ends, axes, strict=True):
            a = _axis(axis, dims) - 1
            out[a] = _crop_range(s[a], start, end)[1]
    elif len(ctx.inputs) == 2:
        if p.int_(0, 0) == _AUTO:
            raise UnsupportedOpError(f"{ctx.where}: Crop with a runtime roi blob is not "
                                     "supported")
        ref = list(ctx.inputs[1][1:])
        # the reference gives w and h; c only when it is 3-D too
        for back in (1, 2):
            if back <= min(dims, 2) and back <= len(ref):
                out[-back] = ref[-back]
        if dims == 3 and len(ref) == 3:
            out[0] = ref[0]
    else:
        # legacy offsets: 0/1/2 = w/h/c offset, 3/4/5 = out w/h/c, 6/7/8 = offsets from the end
        names = {"w": (0, 3, 6), "h": (1, 4, 7), "c": (2, 5, 8)}
        order = {1: "w", 2: "hw", 3: "chw"}[dims]
        for i, axis_name in enumerate(order):
            k_off, k_out, k_off2 = names[axis_name]
            length = s[i] - p.int_(k_off, 0) - p.int_(k_off2, 0)
            limit = p.int_(k_out, 0)
            out[i] = length if limit == _AUTO else min(limit, length)
    if any(d < 1 for d in out):
        raise ShapeError(f"crop of {x} gives an empty blob {tuple(out)}")
    return elementwise_op(ctx.name, Op.SLICE, ctx.inputs, [(x[0], *out)], ops_per_output=0,
                          attrs={"kind": "crop"})


def _flatten(ctx: _Ctx) -> LayerWorkload:
    x = ctx.x()
    return reshape(ctx.name, x, (x[0], numel(x[1:])))


def _reshape(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    x = ctx.x()
    w, h, d, c = p.int_(0, _AUTO), p.int_(1, _AUTO), p.int_(11, _AUTO), p.int_(2, _AUTO)
    if h == _AUTO:
        new = [("w", w)]
    elif c == _AUTO:
        new = [("h", h), ("w", w)]
    elif d == _AUTO:
        new = [("c", c), ("h", h), ("w", w)]
    else:
        new = [("c", c), ("d", d), ("h", h), ("w", w)]
    s = x[1:]
    named = dict(zip({1: "w", 2: "hw", 3: "chw", 4: "cdhw"}.get(len(s), ""), s, strict=False))
    dims = [named.get(k, 1) if v == 0 else v for k, v in new]  # 0: copy from the input
    total = numel(s)
    if dims.count(-1) > 1 or any(v < -1 or v == 0 for v in dims):
        raise ShapeError(f"bad reshape target (w,h,d,c)=({w},{h},{d},{c})")
    if -1 in dims:
        known = numel([v for v in dims if v != -1])
        if total % known:
            raise ShapeError(f"cannot reshape {x} ({total} values) to {dims}")
        dims[dims.index(-1)] = total // known
    out = (x[0], *dims)
    return reshape(ctx.name, x, out, op=Op.PERMUTE if p.int_(3, 0) else Op.RESHAPE)


#: Permute order_type -> output axes (w, h, c[, d]) named by input axes (ncnn operators.md).
_PERMUTE_2D = ("wh", "hw")
_PERMUTE_3D = ("whc", "hwc", "wch", "cwh", "hcw", "chw")
_PERMUTE_4D = ("whdc", "hwdc", "wdhc", "dwhc", "hdwc", "dhwc", "whcd", "hwcd", "wchd", "cwhd",
               "hcwd", "chwd", "wdch", "dwch", "wcdh", "cwdh", "dcwh", "cdwh", "hdcw", "dhcw",
               "hcdw", "chdw", "dchw", "cdhw")


def _permute(ctx: _Ctx) -> LayerWorkload:
    x = ctx.x()
    s = x[1:]
    order_type = ctx.params.int_(0, 0)
    table = {1: ("w",), 2: _PERMUTE_2D, 3: _PERMUTE_3D, 4: _PERMUTE_4D}.get(len(s), ())
    if not 0 <= order_type < len(table):
        raise ShapeError(f"Permute order_type {order_type} is not defined for {x}")
    axes = {1: "w", 2: "hw", 3: "chw", 4: "cdhw"}[len(s)]
    size = dict(zip(axes, s, strict=True))
    # the order names the output's axes innermost first; grimsim lists them outermost first
    order = tuple(reversed(table[order_type]))
    out = tuple(size[a] for a in order)
    perm = (0, *(1 + axes.index(a) for a in order))  # numpy's transpose order, batch first
    return elementwise_op(ctx.name, Op.PERMUTE, [x], [(x[0], *out)], ops_per_output=0,
                          attrs={"order_type": order_type, "perm": perm})


def _shuffle_channel(ctx: _Ctx) -> LayerWorkload:
    x = ctx.x()
    group = ctx.params.int_(0, 1)
    if len(x) < 2 or group < 1 or x[1] % group:
        raise ShapeError(f"ShuffleChannel group={group} does not divide the channels of {x}")
    return elementwise_op(ctx.name, Op.PERMUTE, [x], [x], ops_per_output=0,
                          attrs={"kind": "shuffle_channel", "group": group})


def _softmax(ctx: _Ctx) -> LayerWorkload:
    x = ctx.x()
    return softmax(ctx.name, x, _axis(ctx.params.int_(0, 0), len(x) - 1))


def _lrn(ctx: _Ctx) -> LayerWorkload:
    x = ctx.x()
    size = ctx.params.int_(1, 5)
    region = "within_channel" if ctx.params.int_(0, 0) else "across_channels"
    return elementwise_op(ctx.name, Op.LRN, [x], [x], ops_per_output=size + 3,
                          attrs={"local_size": size, "region": region})


def _passthrough(op: str) -> Callable[[_Ctx], LayerWorkload]:
    def handler(ctx: _Ctx) -> LayerWorkload:
        n = len(ctx.layer.tops)
        if n > len(ctx.inputs):
            raise ModelFormatError(f"{ctx.where}: {ctx.layer.type} passes inputs through but "
                                   f"has {n} outputs for {len(ctx.inputs)} inputs")
        return elementwise_op(ctx.name, op, ctx.inputs, ctx.inputs[:n], view=True)
    return handler


def _padding(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    x = ctx.x()
    s = list(x[1:])
    top, bottom, left, right = p.int_(0, 0), p.int_(1, 0), p.int_(2, 0), p.int_(3, 0)
    front, behind = p.int_(7, 0), p.int_(8, 0)
    s[-1] += left + right
    if len(s) >= 2:
        s[-2] += top + bottom
    if len(s) >= 3:
        s[0] += front + behind
    return elementwise_op(ctx.name, Op.PAD, [x], [(x[0], *s)], ops_per_output=0,
                          params=p.int_(6, 0), attrs={"pads": (top, bottom, left, right,
                                                               front, behind)})


def _interp(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    x = ctx.x()
    if len(x) not in (3, 4):
        raise ShapeError(f"Interp supports 2-D and 3-D blobs, got {x}")
    resize = {1: "nearest", 2: "bilinear", 3: "bicubic"}.get(p.int_(0, 0), "nearest")
    h, w = (x[2], x[3]) if len(x) == 4 else (1, x[2])
    if len(ctx.inputs) == 2:  # the output size is that of the second blob
        ref = ctx.inputs[1]
        oh, ow = (ref[-2], ref[-1]) if len(ref) >= 3 else (h, ref[-1])
    else:
        ow, oh = p.int_(4, 0), p.int_(3, 0)
        if ow == 0 or oh == 0:  # scale factors; C++ float -> int truncation
            oh = int(h * p.float_(1, 1.0))
            ow = int(w * p.float_(2, 1.0))
    out = (x[0], x[1], oh, ow) if len(x) == 4 else (x[0], x[1], ow)
    cost = {"nearest": 1, "bilinear": 4, "bicubic": 16}[resize]
    return elementwise_op(ctx.name, Op.RESIZE, ctx.inputs, [out], ops_per_output=cost,
                          attrs={"mode": resize})


def _reduction(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    x = ctx.x()
    s = x[1:]
    dims = len(s)
    keepdims = bool(p.int_(4, 0))
    reduced = set(range(dims)) if p.int_(1, 1) else {_axis(a, dims) - 1 for a in p.ints(3)}
    if keepdims:
        out = tuple(1 if i in reduced else d for i, d in enumerate(s))
    else:
        out = tuple(d for i, d in enumerate(s) if i not in reduced) or (1,)
    wl = elementwise_op(ctx.name, Op.REDUCE, [x], [(x[0], *out)],
                        attrs={"operation": p.int_(0, 0), "axes": tuple(sorted(reduced))})
    return replace(wl, elementwise_ops=numel(x))


def _layernorm(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    x = ctx.x()
    size = p.int_(0, 0)
    if size not in (x[-1], x[-1] * (x[-2] if len(x) > 2 else 1)):
        raise ShapeError(f"LayerNorm affine_size={size} matches neither w nor w*h of {x}")
    affine = bool(p.int_(2, 1))
    return replace(layernorm(ctx.name, x, affine), params=2 * size if affine else 0)


def _ncnn_dims_shape(p: _Params, batch: int) -> Shape | None:
    """The shape set by Input/MemoryData params 0=w 1=h 11=d 2=c (None when unset)."""
    w, h, d, c = p.int_(0, 0), p.int_(1, 0), p.int_(11, 0), p.int_(2, 0)
    if d:
        return (batch, c or 1, d, h or 1, w or 1)
    if c:
        return (batch, c, h or 1, w or 1)
    if h:
        return (batch, h, w or 1)
    if w:
        return (batch, w)
    return None


def _memory_data(ctx: _Ctx) -> LayerWorkload:
    shape = _ncnn_dims_shape(ctx.params, ctx.batch) or (ctx.batch, 1)
    wl = zero_cost(ctx.name, Op.OTHER, [], [shape], attrs={"kind": "memorydata"})
    return replace(wl, params=numel(shape[1:]))


# --------------------------------------------------------------------------- detection


def _prior_box(ctx: _Ctx) -> LayerWorkload:
    p = ctx.params
    feature = ctx.x(rank=4)
    n_min, n_max, n_ratio = len(p.floats(0)), len(p.floats(1)), len(p.floats(2))
    priors = n_min * n_ratio + n_min + n_max
    if p.int_(7, 1):  # flip adds the reciprocal aspect ratios
        priors += n_min * n_ratio
    out = (ctx.batch, 2, 4 * feature[2] * feature[3] * priors)
    return zero_cost(ctx.name, Op.DETECTION, ctx.inputs, [out],
                     attrs={"kind": "priorbox", "priors_per_pixel": priors})


def _detection_output(ctx: _Ctx) -> LayerWorkload:
    # how many boxes survive is data-dependent; one [label, score, 4 coords] row stands in
    return zero_cost(ctx.name, Op.DETECTION, ctx.inputs, [(ctx.batch, 1, 6)],
                     attrs={"kind": ctx.layer.type, "data_dependent_shape": True})


# --------------------------------------------------------------------------- registry

Handler = Callable[[_Ctx], LayerWorkload]

#: layer type -> (handler, min inputs, max inputs or None, outputs or None for "any >= 1")
_LAYERS: dict[str, tuple[Handler, int, int | None, int | None]] = {
    "Convolution": (lambda c: _convolution(c, grouped=False), 1, 1, 1),
    "ConvolutionDepthWise": (lambda c: _convolution(c, grouped=True), 1, 1, 1),
    "Deconvolution": (lambda c: _deconvolution(c, grouped=False), 1, 1, 1),
    "DeconvolutionDepthWise": (lambda c: _deconvolution(c, grouped=True), 1, 1, 1),
    "InnerProduct": (_inner_product, 1, 1, 1),
    "Gemm": (_gemm, 1, 3, 1),
    "MultiHeadAttention": (_multi_head_attention, 1, 3, 1),
    "Pooling": (_pooling, 1, 1, 1),
    "BatchNorm": (_batchnorm, 1, 1, 1),
    "Scale": (_scale, 1, 2, 1),
    "Bias": (_bias, 1, 1, 1),
    "Eltwise": (_eltwise, 2, None, 1),
    "BinaryOp": (_binary_op, 1, 2, 1),
    "Concat": (_concat, 1, None, 1),
    "Split": (_split, 1, 1, None),
    "Slice": (_slice, 1, 1, None),
    "Crop": (_crop, 1, 2, 1),
    "Flatten": (_flatten, 1, 1, 1),
    "Reshape": (_reshape, 1, 1, 1),
    "Permute": (_permute, 1, 1, 1),
    "ShuffleChannel": (_shuffle_channel, 1, 1, 1),
    "Softmax": (_softmax, 1, 1, 1),
    "LRN": (_lrn, 1, 1, 1),
    "Dropout": (_passthrough(Op.DROPOUT), 1, 1, 1),
    "Noop": (_passthrough(Op.OTHER), 1, None, None),
    "Padding": (_padding, 1, 1, 1),
    "Interp": (_interp, 1, 2, 1),
    "Reduction": (_reduction, 1, 1, 1),
    "LayerNorm": (_layernorm, 1, 1, 1),
    "MemoryData": (_memory_data, 0, 0, 1),
    "PriorBox": (_prior_box, 1, 2, 1),
    "DetectionOutput": (_detection_output, 1, None, 1),
    "YoloDetectionOutput": (_detection_output, 1, None, 1),
    "Yolov3DetectionOutput": (_detection_output, 1, None, 1),
    **{t: (_activation, 1, 1, 1) for t in _ACTIVATION_LAYERS},
}

#: Layer types the importer understands (Input is handled by the loader itself).
SUPPORTED_LAYERS: frozenset[str] = frozenset({"Input", *_LAYERS})


# --------------------------------------------------------------------------- loading


def _input_shape(layer: NcnnLayer, where: str, override: Shape | None, stem: str
                 ) -> Shape:
    declared = _ncnn_dims_shape(_Params(layer.params, where), 1)
    if override is not None:
        if declared is not None and (len(declared) != len(override)
                                     or declared[1:-2] != override[1:-2]):
            raise ShapeError(f"{where}: the model takes inputs like {declared}, not "
                             f"{override}")
        return override
    if declared is not None:
        return declared
    hints = layer.shape_hints
    if hints and hints[0] is not None:
        return hints[0]
    if stem in BENCHNCNN_INPUT_SHAPES:
        shape = BENCHNCNN_INPUT_SHAPES[stem]
        log.info("%s: the file declares no input shape; using benchncnn's %s", where, shape)
        return shape
    raise ShapeError(f"{where}: the file declares no input shape; give one (e.g. "
                     "--input 1x3x224x224)")


def load_ncnn_param(path: str | Path, input_shape: tuple[int, ...] | None = None,
                    name: str | None = None) -> Network:
    """Import an ncnn text ``.param`` file into a Network.

    ``input_shape`` (NCHW, batch first) overrides the shape the first Input layer declares
    (its 0=w 1=h 2=c params or its -23330= hint). Raises ModelFormatError (file, line and
    what is wrong) for malformed files, UnsupportedOpError for an unknown layer type and
    ShapeError when shapes do not fit.
    """
    parsed = parse_ncnn_param(path)
    p = Path(path)
    override = tuple(int(d) for d in input_shape) if input_shape is not None else None
    if override is not None and (not override or any(d < 1 for d in override)):
        raise ShapeError(f"input shape {override} must be positive")
    batch = override[0] if override else 1
    builder = NetworkBuilder(name or p.stem, source=str(p))
    shapes: dict[str, Shape] = {}
    first_input = True
    for layer in parsed.layers:
        where = f"{p}:{layer.line}: {layer.type} {layer.name!r}"
        for blob in layer.bottoms:
            if blob not in shapes:
                raise ModelFormatError(f"{where}: blob {blob!r} is used before any layer "
                                       "produces it")
        for blob in layer.tops:
            if blob in shapes:
                raise ModelFormatError(f"{where}: blob {blob!r} is produced a second time")
        if layer.type == "Input":
            if layer.bottoms or len(layer.tops) != 1:
                raise ModelFormatError(f"{where}: an Input layer has 0 inputs and 1 output")
            shape = _input_shape(layer, where, override if first_input else None, p.stem)
            first_input = False
            try:
                builder.input(layer.tops[0], shape, layer_name=layer.name)
            except ShapeError as exc:
                raise ShapeError(f"{where}: {exc}") from None
            shapes[layer.tops[0]] = shape
            continue
        spec = _LAYERS.get(layer.type)
        if spec is None:
            raise UnsupportedOpError(f"{where}: unsupported ncnn layer type {layer.type!r}")
        handler, min_in, max_in, n_out = spec
        nb, nt = len(layer.bottoms), len(layer.tops)
        if nb < min_in or (max_in is not None and nb > max_in) or \
                (n_out is not None and nt != n_out) or nt < 1:
            ins = f"{min_in}" if max_in == min_in else f"{min_in}..{max_in or 'n'}"
            outs = f"{n_out}" if n_out is not None else "1..n"
            raise ModelFormatError(f"{where}: {layer.type} takes {ins} input(s) and gives "
                                   f"{outs} output(s), the line has {nb} and {nt}")
        ctx = _Ctx(layer, _Params(layer.params, where), tuple(shapes[b] for b in layer.bottoms),
                   batch, where, override is not None)
        try:
            wl = handler(ctx)
            builder.add(wl, layer.bottoms, layer.tops)
        except ShapeError as exc:
            raise ShapeError(f"{where}: {exc}") from None
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            # params no rule above foresaw; report the line rather than a traceback
            log.debug("%s: %r", where, exc, exc_info=True)
            raise ModelFormatError(f"{where}: cannot interpret the layer's params "
                                   f"({type(exc).__name__}: {exc})") from None
        for blob, shape in zip(layer.tops, wl.output_shapes, strict=True):
            shapes[blob] = shape
    if first_input:
        log.info("%s: the file has no Input layer", p)
    network = builder.build()
    if override is None:
        # at the file's own input size its shape hints must hold; say so if they do not
        for problem in shape_hint_mismatches(network, parsed)[1]:
            log.warning("%s: inferred shape disagrees with the file's hint: %s", p, problem)
    return network


def shape_hint_mismatches(network: Network, parsed: NcnnParamFile
                          ) -> tuple[int, list[str]]:
    """Compare each layer's output shapes with the file's -23330= hints (batch 1).

    Returns (number of shapes checked, descriptions of the mismatches). Detection outputs
    are skipped: their hinted shape is whatever one run happened to detect.
    """
    checked = 0
    problems: list[str] = []
    for layer in parsed.layers:
        if layer.name not in network or not layer.shape_hints:
            continue
        wl = network.layer(layer.name)
        if wl.op == Op.DETECTION and wl.attr("data_dependent_shape"):
            continue
        for top, hint, got in zip(layer.tops, layer.shape_hints, wl.output_shapes,
                                  strict=True):
            if hint is None:
                continue
            checked += 1
            if got != hint:
                problems.append(f"line {layer.line} {layer.type} {layer.name!r} top {top!r}: "
                                f"hint {hint}, inferred {got}")
    return checked, problems

