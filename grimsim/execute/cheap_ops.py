"""The cheap (non-GEMM) ops of a network, for ``run_network`` to time.

An inference engine runs pooling, activations, softmax, permutes, resizes and friends with
small one-pass loops of its own. grimsim's C++ kernels (``grimsim._kernels``) run the ones
that dominate detection, mobile and transformer networks the same way: windowed pooling,
permutes and channel shuffles, nearest and bilinear resize, softmax, the common activations,
the per-channel affine of batch norm and scale, layer norm and LRN (kernel ``cpp:<op>``).
numpy's strided passes ran them 3-45x slower than their traffic (a channel softmax 15-28x, a
2x resize 27-36x, a channel shuffle 8x, LRN 45x, measured on the dev VM), which no cost model
of an engine should be fitted to.

The remaining cheap ops are timed as a single-threaded numpy implementation on random data
of the layer's real shapes (kernel ``numpy:<op>``): they read and write the right tensors and
do roughly the right arithmetic, but numpy allocates temporaries and makes one pass per
operation, so they are usually slower than an engine's fused loop.

Ops an engine does without moving data (reshape, flatten, inference dropout: no traffic and
no ops in the workload) and inputs cost nothing and get no stand-in. Ops without a dedicated
stand-in, or whose attributes the stand-in cannot follow, fall back to a traffic stand-in
that reads every input and writes every output once (``numpy:copy``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grimsim.network.workload import LayerWorkload, Op

log = logging.getLogger(__name__)

Arrays = list[np.ndarray]
Builder = Callable[[LayerWorkload, Arrays, Arrays, np.random.Generator], Callable[[], object]]


@dataclass(frozen=True, eq=False)
class CheapOp:
    """A cheap op ready to time: ``kernel`` names what runs it (``cpp:<op>`` for a C++
    kernel, ``numpy:<op>`` for a numpy stand-in, ``numpy:copy`` for the traffic fallback);
    calling ``fn`` runs it once, reading ``inputs`` and writing ``outputs`` (random inputs of
    the layer's shapes)."""

    kernel: str
    fn: Callable[[], object]
    inputs: tuple[np.ndarray, ...] = ()
    outputs: tuple[np.ndarray, ...] = ()


def is_free(layer: LayerWorkload) -> bool:
    """True for layers that cost nothing (views, inputs): no traffic and no ops."""
    return not (layer.activation_bytes_read or layer.activation_bytes_written
                or layer.elementwise_ops)


def cheap_op(layer: LayerWorkload, rng: np.random.Generator) -> CheapOp | None:
    """The stand-in of a non-GEMM layer, or None when the layer costs nothing."""
    if is_free(layer):
        return None
    outs = [np.empty(s, dtype=np.float32) for s in layer.output_shapes]
    ins: Arrays
    if layer.op == Op.EMBEDDING:
        ins = [rng.integers(0, max(1, int(layer.attr("num_embeddings", 1))), size=s)
               for s in layer.input_shapes]
    else:
        ins = [rng.standard_normal(s, dtype=np.float32) for s in layer.input_shapes]
    builder = _BUILDERS.get(layer.op)
    if builder is not None:
        try:
            fn = builder(layer, ins, outs, rng)
            fn()  # a stand-in that cannot follow the layer's shapes fails here, not when timed
        except (ValueError, IndexError, TypeError) as exc:
            log.info("layer %r (%s): no stand-in for these shapes/attributes (%s); "
                     "timing its traffic instead", layer.name, layer.op, exc)
        else:
            runner = "cpp" if isinstance(fn, _Kernel) else "numpy"
            return CheapOp(f"{runner}:{layer.op}", fn, tuple(ins), tuple(outs))
    return CheapOp("numpy:copy", _traffic(ins, outs), tuple(ins), tuple(outs))


class _Kernel:
    """A call of a C++ cheap-op kernel (what marks a stand-in ``cpp:<op>``)."""

    __slots__ = ("call",)

    def __init__(self, call: Callable[[], object]) -> None:
        self.call = call

    def __call__(self) -> object:
        return self.call()


def _kernels() -> Any:
    import grimsim._kernels as k  # deferred: import grimsim stays light

    return k


# --------------------------------------------------------------------------- fallback


def _traffic(ins: Arrays, outs: Arrays) -> Callable[[], object]:
    """Read every input once and write every output once (values copied or cycled)."""
    flat_in = [x.reshape(-1).astype(np.float32, copy=False) for x in ins] or \
        [np.ones(1, dtype=np.float32)]
    source = max(flat_in, key=lambda a: a.size)
    extra = [a for a in flat_in if a is not source]
    flat_out = [o.reshape(-1) for o in outs]

    def fn() -> None:
        for o in flat_out:
            n = min(o.size, source.size)
            np.multiply(source[:n], np.float32(1.0), out=o[:n])
            if o.size > n:  # an output larger than any input: fill it by repeating
                o[n:] = np.resize(source, o.size - n)
        for a in extra:
            a.max()

    return fn


# --------------------------------------------------------------------------- builders


def _pool(layer: LayerWorkload, ins: Arrays, outs: Arrays,
          rng: np.random.Generator) -> Callable[[], object]:
    x, out = ins[0], outs[0]
    if layer.attr("adaptive", False):
        return _adaptive_pool(x, out, str(layer.attr("kind", "avg")))
    pt, pl, _, _ = layer.attr("padding", (0, 0, 0, 0))
    kind = "max" if layer.attr("kind", "max") == "max" else "avg"
    return _pool_kernel(x, out, layer.attr("kernel"), layer.attr("stride"), (pt, pl), kind)


def _pool_kernel(x: np.ndarray, out: np.ndarray, kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int], kind: str) -> _Kernel:
    """The C++ pooling kernel on x (N, C, H, W) into out (N, C, out_h, out_w): separable,
    windows clipped to the input (what an engine's loop does); batch and channels are
    independent planes."""
    k = _kernels()
    n, c, h, w = x.shape
    oh, ow = out.shape[2:]
    planes = x.reshape(1, n * c, h, w)
    out_planes = out.reshape(1, n * c, oh, ow)
    return _Kernel(lambda: k.pool2d(planes, kernel, stride, padding, (oh, ow), kind=kind,
                                    out=out_planes))


def _adaptive_pool(x: np.ndarray, out: np.ndarray, kind: str) -> Callable[[], object]:
    h, w = x.shape[2:]
    oh, ow = out.shape[2:]
    if oh * ow > 1024:
        raise ValueError(f"adaptive pool to {oh}x{ow}: too many cells for the stand-in")
    # torch's AdaptiveAvgPool2d windows: [floor(i*h/oh), ceil((i+1)*h/oh))
    rows = [(i * h // oh, -(-(i + 1) * h // oh)) for i in range(oh)]
    cols = [(j * w // ow, -(-(j + 1) * w // ow)) for j in range(ow)]
    reduce = np.max if kind == "max" else np.mean

    def fn() -> None:
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                out[:, :, i, j] = reduce(x[:, :, r0:r1, c0:c1], axis=(2, 3))

    return fn


def _global_pool(layer: LayerWorkload, ins: Arrays, outs: Arrays,
                 rng: np.random.Generator) -> Callable[[], object]:
    x, out = ins[0], outs[0]
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    target = out.reshape(x.shape[0], x.shape[1])
    is_max = layer.attr("kind", "avg") == "max"
    if is_max:
        return lambda: np.maximum.reduce(flat, axis=2, out=target)
    # the mean as one dot product per channel with a vector of 1/n: numpy's row-wise
    # reductions pay a fixed cost per channel (~30 ns) that a dot product does not
    # (1280 x 7 x 7: 10 us against 50 us for np.add.reduce on the dev VM)
    rows = flat.reshape(-1, flat.shape[2])
    mean_rows = target.reshape(-1)
    weights = np.full(flat.shape[2], 1.0 / max(1, flat.shape[2]), dtype=np.float32)
    return lambda: np.dot(rows, weights, out=mean_rows)


_BINARY: dict[str, Callable[..., np.ndarray]] = {
    "add": np.add, "sum": np.add, "sub": np.subtract, "mul": np.multiply, "prod": np.multiply,
    "div": np.divide, "max": np.maximum, "min": np.minimum, "rsub": np.subtract,
    "rdiv": np.divide,
}


def _eltwise(layer: LayerWorkload, ins: Arrays, outs: Arrays,
             rng: np.random.Generator) -> Callable[[], object]:
    out = outs[0]
    ufunc = _BINARY.get(str(layer.attr("kind", "add")), np.add)
    if len(ins) == 1:  # a tensor-scalar op (ncnn BinaryOp with a scalar operand)
        x = ins[0]
        scalar = np.float32(layer.attr("scalar", 1.0) or 1.0)
        return lambda: ufunc(x, scalar, out=out)
    first, *rest = (_aligned(x, out.shape) for x in ins)

    def fn() -> None:
        ufunc(first, rest[0], out=out)
        for y in rest[1:]:
            ufunc(out, y, out=out)

    return fn


def _aligned(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` viewed so numpy broadcasts it to ``shape``: as is when it already does, else
    with trailing unit dims (ncnn aligns a (1, C) operand with the channels of (1, C, H, W))."""
    try:
        np.broadcast_shapes(x.shape, shape)
        return x
    except ValueError:
        if x.ndim >= len(shape):
            raise
        return x.reshape(x.shape + (1,) * (len(shape) - x.ndim))


def _sigmoid(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    # 0.5 * (1 + tanh(x / 2)): the logistic function without overflow in exp
    np.multiply(x, np.float32(0.5), out=out)
    np.tanh(out, out=out)
    np.add(out, np.float32(1.0), out=out)
    np.multiply(out, np.float32(0.5), out=out)
    return out


def _activation_fn(kind: str, x: np.ndarray, out: np.ndarray) -> Callable[[], object]:
    f = np.float32
    # numpy 2.x runs maximum/minimum with SIMD only when both operands are arrays: against a
    # scalar (or np.clip) they take a scalar loop ~3x slower than an array of the constant
    zeros = np.zeros_like(x)
    if kind == "relu":
        return lambda: np.maximum(x, zeros, out=out)
    if kind in ("relu6", "clip"):
        sixes = np.full_like(x, 6.0)

        def relu6() -> None:
            np.maximum(x, zeros, out=out)
            np.minimum(out, sixes, out=out)
        return relu6
    if kind in ("leakyrelu", "prelu"):
        def leaky() -> None:
            np.multiply(x, f(0.01), out=out)
            np.maximum(x, out, out=out)
        return leaky
    if kind == "sigmoid":
        return lambda: _sigmoid(x, out)
    if kind == "tanh":
        return lambda: np.tanh(x, out=out)
    if kind in ("swish", "silu"):
        return lambda: np.multiply(x, _sigmoid(x, out), out=out)
    if kind in ("hardswish", "hardsigmoid"):
        sixes_h = np.full_like(x, 6.0)

        def hard() -> None:
            np.add(x, f(3), out=out)
            np.maximum(out, zeros, out=out)
            np.minimum(out, sixes_h, out=out)
            np.multiply(out, f(1 / 6), out=out)
            if kind == "hardswish":
                np.multiply(out, x, out=out)
        return hard
    if kind == "gelu":
        def gelu() -> None:
            # tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            np.multiply(x, x, out=out)
            np.multiply(out, f(0.044715), out=out)
            np.add(out, f(1.0), out=out)
            np.multiply(out, x, out=out)
            np.multiply(out, f(math.sqrt(2 / math.pi)), out=out)
            np.tanh(out, out=out)
            np.add(out, f(1.0), out=out)
            np.multiply(out, x, out=out)
            np.multiply(out, f(0.5), out=out)
        return gelu
    if kind in ("elu", "selu", "mish", "softplus"):
        def exp_like() -> None:
            np.minimum(x, f(0), out=out)
            np.exp(out, out=out)
            np.subtract(out, f(1.0), out=out)
            np.copyto(out, x, where=x > 0)
        return exp_like
    # unknown activation: a couple of arithmetic passes
    return lambda: np.tanh(x, out=out)


#: Activations the C++ kernel runs (grimsim._kernels.unary), with the names they go by.
_UNARY_KERNEL = {"relu": "relu", "relu6": "relu6", "clip": "relu6", "leakyrelu": "leakyrelu",
                 "prelu": "leakyrelu", "sigmoid": "sigmoid", "tanh": "tanh", "swish": "swish",
                 "silu": "swish", "hardswish": "hardswish", "hardsigmoid": "hardsigmoid",
                 "gelu": "gelu", "elu": "elu", "mish": "mish", "exp": "exp"}


def _activation(layer: LayerWorkload, ins: Arrays, outs: Arrays,
                rng: np.random.Generator) -> Callable[[], object]:
    kind = str(layer.attr("kind", "relu")).lower()
    x, out = ins[0], outs[0]
    name = _UNARY_KERNEL.get(kind)
    if name is None or x.shape != out.shape:
        return _activation_fn(kind, x, out)
    k = _kernels()
    alpha = 1.0 if name == "elu" else 0.01
    return _Kernel(lambda: k.unary(x, name, alpha=alpha, out=out))


def _channel_affine(layer: LayerWorkload, ins: Arrays, outs: Arrays,
                    rng: np.random.Generator) -> Callable[[], object]:
    """Batch norm / scale at inference: a per-channel multiply and add (channel axis 1)."""
    x, out = ins[0], outs[0]
    shape = [1] * x.ndim
    if x.ndim >= 2:
        shape[1] = x.shape[1]
    scale = rng.standard_normal(shape, dtype=np.float32)
    shift = rng.standard_normal(shape, dtype=np.float32)
    if x.ndim >= 2 and x.shape == out.shape:
        k = _kernels()
        flat_scale, flat_shift = scale.reshape(-1), shift.reshape(-1)
        return _Kernel(lambda: k.channel_affine(x, flat_scale, flat_shift, out=out))

    def fn() -> None:
        np.multiply(x, scale, out=out)
        np.add(out, shift, out=out)

    return fn


def _concat(layer: LayerWorkload, ins: Arrays, outs: Arrays,
            rng: np.random.Generator) -> Callable[[], object]:
    axis = int(layer.attr("axis", 1))
    out = outs[0]
    return lambda: np.concatenate(ins, axis=axis, out=out)


def _copy_slices(layer: LayerWorkload, ins: Arrays, outs: Arrays,
                 rng: np.random.Generator) -> Callable[[], object]:
    """Slice / split / crop: each output is a region of the input (its leading corner, or
    consecutive pieces along the one axis where the shapes differ)."""
    x = ins[0]
    views = []
    offset = 0
    for o in outs:
        if o.ndim == x.ndim - 1:  # one index along an axis (e.g. BERT's first token)
            axes = [i for i in range(x.ndim) if x.shape[:i] + x.shape[i + 1:] == o.shape]
            if not axes:
                raise ValueError(f"output {o.shape} is not a slice of input {x.shape}")
            ax = int(layer.attr("axis", axes[0])) % x.ndim
            views.append((o, x.take(int(layer.attr("index", 0)), axis=ax)))
            continue
        if o.ndim != x.ndim or any(a > b for a, b in zip(o.shape, x.shape, strict=True)):
            raise ValueError(f"output {o.shape} is not a region of input {x.shape}")
        diff = [i for i in range(x.ndim) if o.shape[i] != x.shape[i]]
        index = [slice(0, d) for d in o.shape]
        if len(diff) == 1:
            ax = diff[0]
            start = offset if offset + o.shape[ax] <= x.shape[ax] else 0
            index[ax] = slice(start, start + o.shape[ax])
            offset = start + o.shape[ax]
        views.append((o, x[tuple(index)]))

    def fn() -> None:
        for o, v in views:
            np.copyto(o, v)

    return fn


def _softmax(layer: LayerWorkload, ins: Arrays, outs: Arrays,
             rng: np.random.Generator) -> Callable[[], object]:
    x, out = ins[0], outs[0]
    axis = int(layer.attr("axis", -1))
    if x.shape != out.shape or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"softmax over axis {axis} of {x.shape} into {out.shape}")
    k = _kernels()
    return _Kernel(lambda: k.softmax(x, axis, out=out))


def softmax_fn(x: np.ndarray, out: np.ndarray, axis: int = -1) -> Callable[[], object]:
    """Softmax of ``x`` along ``axis`` into ``out`` (max-subtracted, as engines do)."""

    def fn() -> None:
        np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
        np.exp(out, out=out)
        np.divide(out, out.sum(axis=axis, keepdims=True), out=out)

    return fn


def _layernorm(layer: LayerWorkload, ins: Arrays, outs: Arrays,
               rng: np.random.Generator) -> Callable[[], object]:
    x, out = ins[0], outs[0]
    gamma = rng.standard_normal(x.shape[-1], dtype=np.float32)
    beta = rng.standard_normal(x.shape[-1], dtype=np.float32)
    k = _kernels()
    return _Kernel(lambda: k.layernorm(x, gamma, beta, out=out))


def _permute(layer: LayerWorkload, ins: Arrays, outs: Arrays,
             rng: np.random.Generator) -> Callable[[], object]:
    x, out = ins[0], outs[0]
    if x.size != out.size:
        raise ValueError(f"permute of {x.shape} to {out.shape} changes the size")
    view, perm = permute_plan(layer, x)
    target = out.reshape(tuple(view.shape[p] for p in perm))
    k = _kernels()
    return _Kernel(lambda: k.permute(view, perm, out=target))


def permute_plan(layer: LayerWorkload, x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """How a permute-like layer moves data: a view of its input and the axis order the
    output takes from it. A transpose's ``perm``, a channel shuffle's ``group``, depth/space
    rearrangements by ``blocksize`` (DCR order); any other layout change (ncnn's Reshape with
    permute) as the channel-last move (N, C, rest) -> (N, rest, C)."""
    perm = layer.attr("perm")
    if perm is not None and len(perm) == x.ndim and sorted(perm) == list(range(x.ndim)):
        return x, tuple(int(p) for p in perm)
    n = x.shape[0]
    if layer.attr("kind") == "shuffle_channel" and x.ndim >= 2:
        group = int(layer.attr("group", 1))
        c = x.shape[1]
        if group < 1 or c % group:
            raise ValueError(f"group {group} does not divide {c} channels")
        return x.reshape(n, group, c // group, -1), (0, 2, 1, 3)
    bs = layer.attr("blocksize")
    out_shape = layer.output_shapes[0]
    if bs is not None and x.ndim == 4 and len(out_shape) == 4:
        bs = int(bs)
        _, c, h, w = x.shape
        if out_shape[2] == h * bs:  # DepthToSpace
            return x.reshape(n, bs, bs, c // (bs * bs), h, w), (0, 3, 4, 1, 5, 2)
        return x.reshape(n, c, h // bs, bs, w // bs, bs), (0, 3, 5, 1, 2, 4)
    if x.ndim < 3:
        return x.reshape(n, -1), (0, 1)
    return x.reshape(n, x.shape[1], -1), (0, 2, 1)


def _pad(layer: LayerWorkload, ins: Arrays, outs: Arrays,
         rng: np.random.Generator) -> Callable[[], object]:
    x, out = ins[0], outs[0]
    if x.ndim != out.ndim or any(a > b for a, b in zip(x.shape, out.shape, strict=True)):
        raise ValueError(f"pad of {x.shape} to {out.shape} shrinks a dimension")
    # where the input lands inside the output does not change the traffic
    region = tuple(slice(0, d) for d in x.shape)

    def fn() -> None:
        out.fill(0.0)
        out[region] = x

    return fn


def _resize(layer: LayerWorkload, ins: Arrays, outs: Arrays,
            rng: np.random.Generator) -> Callable[[], object]:
    """Nearest and (bi)linear resizes of NCHW tensors by the C++ kernel; bicubic by numpy,
    blending four gathers per axis pass."""
    x, out = ins[0], outs[0]
    if x.ndim != 4 or out.ndim != 4 or x.shape[:2] != out.shape[:2]:
        raise ValueError(f"resize stand-in handles NCHW spatial resizes, got {x.shape} -> "
                         f"{out.shape}")
    mode = str(layer.attr("mode", "nearest")).lower()
    oh, ow = out.shape[2:]
    if mode in ("nearest", "linear", "bilinear"):
        k = _kernels()
        kind = "nearest" if mode == "nearest" else "bilinear"
        return _Kernel(lambda: k.resize2d(x, (oh, ow), kind, out=out))
    h, w = x.shape[2:]
    iy = np.minimum((np.arange(oh) * h) // oh, h - 1)
    ix = np.minimum((np.arange(ow) * w) // ow, w - 1)
    taps = [(np.minimum(iy + d, h - 1), np.minimum(ix + d, w - 1)) for d in range(4)]
    quarter = np.float32(0.25)

    def fn() -> None:
        np.copyto(out, x[:, :, iy, :][:, :, :, ix])
        for ry, rx in taps[1:]:
            np.add(out, x[:, :, ry, :][:, :, :, rx], out=out)
        np.multiply(out, quarter, out=out)

    return fn


def _reduce(layer: LayerWorkload, ins: Arrays, outs: Arrays,
            rng: np.random.Generator) -> Callable[[], object]:
    x, out = ins[0], outs[0]
    axes = layer.attr("axes")
    if x.ndim == out.ndim:
        # the axes whose size changes; importers' own axes may count without the batch axis
        # (ncnn's Reduction: (1, 2) = h, w of a CHW blob)
        changed = tuple(i for i in range(x.ndim) if x.shape[i] != out.shape[i])
        if axes is None or sorted(int(a) % x.ndim for a in axes) != list(changed):
            axes = changed
    elif axes is None:
        raise ValueError(f"reduce of {x.shape} to {out.shape} names no axes")
    axes = tuple(int(a) % x.ndim for a in axes)
    kind = str(layer.attr("kind", "mean"))
    reduce = np.max if "max" in kind else np.min if "min" in kind else np.mean
    kept = [d for i, d in enumerate(x.shape) if i not in axes]  # numpy's result shape
    if math.prod(kept) != out.size and all(a < x.ndim - 1 for a in axes):
        axes = tuple(a + 1 for a in axes)  # axes counted without the batch axis
        kept = [d for i, d in enumerate(x.shape) if i not in axes]
    if x.ndim == 4 and axes == (2, 3):
        # over the spatial axes: a global pool, one vector reduction per plane in C++
        # (numpy's reduction paid ~40 us for 192 planes of 14x14)
        return _pool_kernel(x, out.reshape(x.shape[0], x.shape[1], 1, 1), x.shape[2:],
                            (1, 1), (0, 0), "max" if reduce is np.max else "avg")
    target = out.reshape(kept)
    return lambda: reduce(x, axis=axes, out=target)


def _embedding(layer: LayerWorkload, ins: Arrays, outs: Arrays,
               rng: np.random.Generator) -> Callable[[], object]:
    ids, out = ins[0], outs[0]
    dim = out.shape[-1]
    # the table's values do not matter for a gather, its size does (rows are fetched from
    # all over it); np.full touches every page so the gather reads real memory
    table = np.full((int(layer.attr("num_embeddings", 1)), dim), 0.01, dtype=np.float32)
    flat_ids = ids.reshape(-1)
    flat_out = out.reshape(-1, dim)
    return lambda: np.take(table, flat_ids, axis=0, out=flat_out)


def _lrn(layer: LayerWorkload, ins: Arrays, outs: Arrays,
         rng: np.random.Generator) -> Callable[[], object]:
    """Local response norm across channels: x / (1 + a * window sum of x^2)^b; the rare
    within-channel variant as its traffic."""
    x, out = ins[0], outs[0]
    if x.ndim < 2 or layer.attr("region", "across_channels") != "across_channels":
        raise ValueError("LRN stand-in runs across channels of an (N, C, ...) tensor")
    size = int(layer.attr("local_size", layer.attr("size", 5)))
    k = _kernels()
    return _Kernel(lambda: k.lrn(x, size, out=out))


def _l2norm(layer: LayerWorkload, ins: Arrays, outs: Arrays,
            rng: np.random.Generator) -> Callable[[], object]:
    """Normalize across channels (ncnn Normalize / ONNX LpNormalization)."""
    x, out = ins[0], outs[0]
    axis = 1 if x.ndim >= 2 else -1

    def fn() -> None:
        norm = np.sqrt(np.sum(x * x, axis=axis, keepdims=True)) + np.float32(1e-12)
        np.divide(x, norm, out=out)

    return fn


_BUILDERS: dict[str, Builder] = {
    Op.POOL: _pool,
    Op.GLOBAL_POOL: _global_pool,
    Op.ELTWISE: _eltwise,
    Op.ACTIVATION: _activation,
    Op.BATCHNORM: _channel_affine,
    Op.SCALE: _channel_affine,
    Op.CONCAT: _concat,
    Op.SPLIT: _copy_slices,
    Op.SLICE: _copy_slices,
    Op.SOFTMAX: _softmax,
    Op.LAYERNORM: _layernorm,
    Op.PERMUTE: _permute,
    Op.PAD: _pad,
    Op.RESIZE: _resize,
    Op.REDUCE: _reduce,
    Op.EMBEDDING: _embedding,
    Op.LRN: _lrn,
    Op.NORM: _l2norm,
}


def supported_ops() -> Sequence[str]:
    """Op kinds with a dedicated stand-in (the others time their traffic)."""
    return tuple(_BUILDERS)
