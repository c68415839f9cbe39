"""Import an ONNX model into a grimsim Network (unfused; callers fuse with grimsim.network.fuse).

Every ONNX node becomes one layer built by the workload factories, so shapes are inferred by
grimsim itself; onnx's own shape inference is used only by the tests as a cross-check.

Conventions:

* A layer's ``input_shapes`` are the shapes of its *activation* inputs. Constant inputs
  (initializers, ``Constant`` nodes, folded sub-graphs) are the layer's weights: their
  sizes go into ``params`` (weights and biases of GEMM layers, batch/layer/instance-norm
  scale and shift, PReLU slopes, and tensor-valued operands of Add/Sub/Mul/Div such as a
  MatMul's bias). Scalar constants (``x / sqrt(d)``) are hyper-parameters, not parameters.
  Batch-norm running mean and variance are buffers, not parameters (2*C per BN).
* Nodes whose inputs are all constant are folded (evaluated with onnx's reference
  implementation) and produce no layer; ``Shape``/``Size`` of an activation fold too, since
  every shape is static once the inputs are resolved. That is how shape sub-graphs
  (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) import.
* GRU/LSTM keep ONNX's tensor layout on their blobs; the recurrent workload itself uses
  grimsim's (batch, time, features) convention, joined by zero-cost ``permute`` layers
  ``<node>.to_btf`` (when the layout differs) and ``<node>.to_onnx``.
* Layer names: the node's name, or ``<op_type>_<index>`` when it has none; repeated names
  get ``_1``, ``_2``... Graph inputs become ``input`` layers named after the tensor.

``read_onnx_weights`` returns each prunable GEMM's weight in its GEMM view W (M x K), keyed by
the GEMM row name (the layer name, or ``<layer>.<gate>.ih``/``.hh`` for GRU/LSTM);
``onnx_weight_refs`` says where each W lives in the file and how to write a pruned W back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from grimsim.errors import GrimsimError, ModelFormatError, ShapeError, UnsupportedOpError
from grimsim.network import workload as wl
from grimsim.network.graph import Network, NetworkBuilder
from grimsim.network.workload import LayerWorkload, Op, Shape

log = logging.getLogger(__name__)

InputShapes = Mapping[str, Sequence[int]] | Sequence[int] | None

_DEFAULT_DOMAINS = ("", "ai.onnx")
# Ops never evaluated at import time even when their inputs are constant.
_NO_FOLD = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                      "Multinomial", "Bernoulli", "If", "Loop", "Scan"})


# --------------------------------------------------------------------------- public API


def load_onnx(path: str | Path, input_shapes: InputShapes = None,
              name: str | None = None) -> Network:
    """Read an ONNX model into an (unfused) Network.

    ``input_shapes`` resolves symbolic or missing input dimensions (and may override fixed
    ones): a dict ``{input name: shape}``, or one shape for the first graph input (what the
    CLI's ``--input 1x3x224x224`` gives). Symbolic dimensions with the same name in other
    inputs take the same value.
    """
    onnx = _import_onnx()
    file = Path(path)
    model = _read_model(onnx, file)
    importer = _Importer(onnx, model, file)
    return importer.run(input_shapes, name or file.stem)


def read_onnx_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Each prunable GEMM's weight as its GEMM view W (M x K), keyed by GEMM row name.

    Conv: (Cout, Cin/g*kh*kw); ConvTranspose: (Cout*kh*kw, Cin/g), groups stacked on rows;
    Gemm/MatMul with a constant weight: out x in features (Gemm's transB honoured, MatMul's
    B transposed); GRU/LSTM: one (H x I) or (H x H) slice per gate, direction and weight.
    """
    onnx = _import_onnx()
    file = Path(path)
    model = _read_model(onnx, file)
    refs, consts = _collect_weight_refs(onnx, model, file)
    return {ref.row: ref.to_gemm(consts.value(ref.tensor)) for ref in refs}


def onnx_weight_refs(path: str | Path) -> list[OnnxWeightRef]:
    """Where each prunable GEMM's weight lives in the file (tensor name and view)."""
    onnx = _import_onnx()
    file = Path(path)
    model = _read_model(onnx, file)
    return _collect_weight_refs(onnx, model, file)[0]


@dataclass(frozen=True)
class OnnxWeightRef:
    """One GEMM weight inside an ONNX tensor.

    ``layout`` says how the tensor maps to the GEMM view W (M x K):
    ``reshape`` (conv: rows are output channels), ``deconv`` (ConvTranspose, ``groups``
    blocks), ``transpose`` (W = tensor^T), ``identity`` (W = tensor), ``row`` (a vector
    weight, W has one row), ``rnn`` (rows ``start:stop`` of direction ``direction``).
    ``initializer`` is False when the tensor is computed from constants (not writable
    back as is).
    """

    row: str
    tensor: str
    layout: str
    initializer: bool = True
    groups: int = 1
    direction: int = 0
    start: int = 0
    stop: int = 0

    def to_gemm(self, value: np.ndarray) -> np.ndarray:
        """The GEMM view W of the tensor's value (a new array)."""
        if self.layout == "reshape":
            return np.array(value.reshape(value.shape[0], -1))
        if self.layout == "deconv":
            g = self.groups
            cin, per_group = value.shape[0], value.shape[1] * math.prod(value.shape[2:])
            return np.array(value.reshape(g, cin // g, per_group).transpose(0, 2, 1)
                            .reshape(g * per_group, cin // g))
        if self.layout == "transpose":
            return np.array(value.T)
        if self.layout == "identity":
            return np.array(value)
        if self.layout == "row":
            return np.array(value.reshape(1, -1))
        if self.layout == "rnn":
            return np.array(value[self.direction, self.start:self.stop, :])
        raise ValueError(f"unknown weight layout {self.layout!r}")

    def from_gemm(self, value: np.ndarray, gemm: np.ndarray) -> np.ndarray:
        """A copy of the tensor's ``value`` with its GEMM view replaced by ``gemm``."""
        out = np.array(value)
        expected = self.to_gemm(value).shape
        if tuple(gemm.shape) != tuple(expected):
            raise ShapeError(f"weight {self.row!r}: GEMM view must be {expected}, got "
                             f"{tuple(gemm.shape)}")
        if self.layout == "reshape":
            return np.array(gemm.reshape(value.shape), dtype=value.dtype)
        if self.layout == "deconv":
            g = self.groups
            cin, per_group = value.shape[0], value.shape[1] * math.prod(value.shape[2:])
            return np.array(gemm.reshape(g, per_group, cin // g).transpose(0, 2, 1)
                            .reshape(value.shape), dtype=value.dtype)
        if self.layout == "transpose":
            return np.array(gemm.T, dtype=value.dtype)
        if self.layout in ("identity", "row"):
            return np.array(gemm.reshape(value.shape), dtype=value.dtype)
        out[self.direction, self.start:self.stop, :] = gemm
        return out


# --------------------------------------------------------------------------- reading files


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a test dependency
        raise GrimsimError("reading ONNX files needs the onnx package: "
                           "pip install grimsim[onnx]") from None
    return onnx


def _read_model(onnx: Any, file: Path) -> Any:
    if not file.is_file():
        raise ModelFormatError(f"{file}: no such ONNX file")
    try:
        # external weights are read lazily, only when a value is needed
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:  # protobuf raises several unrelated types on bad bytes
        raise ModelFormatError(f"{file}: not a readable ONNX model ({type(exc).__name__}: "
                               f"{exc})") from None
    graph = model.graph
    if model.ir_version <= 0 or not model.opset_import or not graph.node:
        raise ModelFormatError(f"{file}: not a valid ONNX model (ir_version "
                               f"{model.ir_version}, {len(model.opset_import)} opset imports, "
                               f"{len(graph.node)} nodes)")
    if model.functions:
        try:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
        except Exception as exc:
            raise ModelFormatError(f"{file}: cannot inline the model's local functions: "
                                   f"{exc}") from None
    return model


def _default_opset(model: Any) -> int:
    for imp in model.opset_import:
        if imp.domain in _DEFAULT_DOMAINS:
            return int(imp.version)
    return 1


def _layer_names(graph: Any, reserved: Sequence[str]) -> list[str]:
    """One unique layer name per node: node.name or ``<op_type>_<index>``."""
    used = set(reserved)
    names = []
    for index, node in enumerate(graph.node):
        base = node.name or f"{node.op_type}_{index}"
        name, k = base, 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names.append(name)
    return names


class _Constants:
    """Constant tensors (initializers, Constant nodes, folded results), materialised lazily."""

    def __init__(self, onnx: Any, model: Any, file: Path) -> None:
        self._onnx = onnx
        self._file = file
        self._opsets = {imp.domain: int(imp.version) for imp in model.opset_import}
        self._protos: dict[str, Any] = {t.name: t for t in model.graph.initializer}
        self._sparse: dict[str, Any] = {t.values.name: t for t in model.graph.sparse_initializer}
        self._values: dict[str, np.ndarray] = {}
        self.initializers = frozenset(self._protos) | frozenset(self._sparse)

    def __contains__(self, name: object) -> bool:
        return name in self._values or name in self._protos or name in self._sparse

    def shape(self, name: str) -> Shape:
        if name in self._values:
            return tuple(int(d) for d in self._values[name].shape)
        if name in self._protos:
            return tuple(int(d) for d in self._protos[name].dims)
        return tuple(int(d) for d in self._sparse[name].dims)

    def value(self, name: str) -> np.ndarray:
        if name not in self._values:
            self._values[name] = self._materialise(name)
        return self._values[name]

    def set(self, name: str, value: np.ndarray) -> None:
        self._values[name] = np.asarray(value)

    def _materialise(self, name: str) -> np.ndarray:
        numpy_helper = self._onnx.numpy_helper
        try:
            if name in self._protos:
                return np.asarray(numpy_helper.to_array(self._protos[name],
                                                        base_dir=str(self._file.parent)))
            sparse = self._sparse[name]
            values = numpy_helper.to_array(sparse.values)
            indices = numpy_helper.to_array(sparse.indices)
            dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
            if indices.ndim == 1:
                dense.reshape(-1)[indices] = values
            else:
                dense[tuple(indices.T)] = values
            return dense
        except Exception as exc:
            raise ModelFormatError(f"{self._file}: cannot read tensor {name!r}: {exc}") from None

    def fold(self, node: Any) -> list[np.ndarray]:
        """Evaluate a node whose inputs are all constant with onnx's reference implementation."""
        helper = self._onnx.helper
        from onnx.reference import ReferenceEvaluator

        inputs = [t for t in node.input if t]
        graph = helper.make_graph(
            [node], "fold", [helper.make_empty_tensor_value_info(t) for t in dict.fromkeys(inputs)],
            [helper.make_empty_tensor_value_info(t) for t in node.output if t])
        opsets = dict(self._opsets)
        opsets.setdefault("", 1)
        evaluator = ReferenceEvaluator(graph, opsets=opsets)
        results = evaluator.run(None, {t: self.value(t) for t in dict.fromkeys(inputs)})
        return [np.asarray(r) for r in results]


def _foldable(node: Any, is_const: Callable[[str], bool]) -> bool:
    return (node.domain in _DEFAULT_DOMAINS and node.op_type not in _NO_FOLD
            and all(is_const(t) for t in node.input if t))


# --------------------------------------------------------------------------- the importer


@dataclass(frozen=True)
class _Node:
    """A node as the handlers see it: its layer name, inputs ('' when absent), attributes."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]

    def inp(self, i: int) -> str:
        return self.inputs[i] if i < len(self.inputs) else ""

    def out(self, i: int) -> str:
        return self.outputs[i] if i < len(self.outputs) else ""

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


def _attributes(onnx: Any, node: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", "replace") for v in value]
        attrs[a.name] = value
    return attrs


class _Importer:
    def __init__(self, onnx: Any, model: Any, file: Path) -> None:
        self.onnx = onnx
        self.model = model
        self.graph = model.graph
        self.file = file
        self.opset = _default_opset(model)
        self.consts = _Constants(onnx, model, file)
        self.builder: NetworkBuilder
        self._used: set[str] = set()

    # ---- helpers used by the handlers

    def is_const(self, tensor: str) -> bool:
        return bool(tensor) and tensor in self.consts and not self.builder.has_blob(tensor)

    def shape(self, tensor: str) -> Shape:
        if self.builder.has_blob(tensor):
            return self.builder.shape(tensor)
        if tensor in self.consts:
            return self.consts.shape(tensor)
        raise ModelFormatError(f"tensor {tensor!r} is read before any node produces it "
                               "(the graph is not in topological order or is incomplete)")

    def value(self, tensor: str) -> np.ndarray:
        return self.consts.value(tensor)

    def const_input(self, node: _Node, index: int, what: str, required: bool = True
                    ) -> str:
        """The name of a constant input, '' when optional and absent."""
        tensor = node.inp(index)
        if not tensor:
            if required:
                raise ModelFormatError(f"{node.op_type} has no {what} input")
            return ""
        if not self.is_const(tensor):
            self.shape(tensor)  # a clear error if it does not exist at all
            raise UnsupportedOpError(f"{node.op_type} whose {what} ({tensor!r}) is computed at "
                                     "run time; grimsim needs it as a constant (initializer)")
        return tensor

    def ints(self, tensor: str) -> list[int]:
        return [int(v) for v in self.value(tensor).reshape(-1)]

    def fresh(self, base: str) -> str:
        """A layer/blob name used nowhere in the graph."""
        name, k = base, 1
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def add(self, layer: LayerWorkload, bottoms: Sequence[str], tops: Sequence[str]) -> None:
        self.builder.add(layer, list(bottoms), list(tops))

    def activations(self, node: _Node) -> list[str]:
        """The node's non-constant inputs, in order, without repeats."""
        return list(dict.fromkeys(t for t in node.inputs if t and not self.is_const(t)))

    # ---- the walk

    def run(self, input_shapes: InputShapes, name: str) -> Network:
        graph = self.graph
        inputs, fixed_overridden = _resolve_inputs(graph, self.consts.initializers,
                                                   input_shapes, self.file)
        self.builder = NetworkBuilder(name, source=str(self.file))
        names = _layer_names(graph, list(inputs))
        self._used = set(names) | set(inputs) | set(self.consts.initializers)
        for node in graph.node:
            self._used.update(t for t in (*node.input, *node.output) if t)
        for blob, shp in inputs.items():
            self.builder.input(blob, shp)
        for proto, layer_name in zip(graph.node, names, strict=True):
            self._import_node(proto, layer_name)
        net = self.builder.build()
        if not fixed_overridden:
            self._cross_check()
        return net

    def _where(self, proto: Any, layer_name: str) -> str:
        return f"{self.file}: node {layer_name!r} ({proto.op_type})"

    def _import_node(self, proto: Any, layer_name: str) -> None:
        where = self._where(proto, layer_name)
        try:
            for t in proto.input:
                if t and not self.builder.has_blob(t) and t not in self.consts:
                    raise ModelFormatError(f"reads tensor {t!r}, which no earlier node, "
                                           "initializer or graph input produces")
            if proto.op_type in ("Shape", "Size") and proto.domain in _DEFAULT_DOMAINS:
                self._shape_op(proto)
                return
            if _foldable(proto, self.is_const):
                outputs = self.consts.fold(proto)
                for tensor, value in zip((t for t in proto.output if t), outputs, strict=False):
                    self.consts.set(tensor, value)
                return
            node = _Node(layer_name, proto.op_type, tuple(proto.input), tuple(proto.output),
                         _attributes(self.onnx, proto))
            handler = _HANDLERS.get(proto.op_type) if proto.domain in _DEFAULT_DOMAINS else None
            if handler is None:
                domain = f" (domain {proto.domain!r})" if proto.domain else ""
                raise UnsupportedOpError(
                    f"{where}: op {proto.op_type!r}{domain} is not supported by grimsim's ONNX "
                    "importer")
            handler(self, node)
        except UnsupportedOpError as exc:
            msg = str(exc)
            raise UnsupportedOpError(msg if msg.startswith(str(self.file)) else
                                     f"{where}: {msg}") from None
        except ShapeError as exc:
            raise ShapeError(f"{where}: {exc}") from None
        except ModelFormatError as exc:
            msg = str(exc)
            raise ModelFormatError(msg if msg.startswith(str(self.file)) else
                                   f"{where}: {msg}") from None
        except GrimsimError:
            raise
        except Exception as exc:  # malformed attributes or tensors: name the node, no traceback
            raise ModelFormatError(f"{where}: {type(exc).__name__}: {exc}") from None

    def _shape_op(self, proto: Any) -> None:
        shape = self.shape(proto.input[0])
        if proto.op_type == "Size":
            self.consts.set(proto.output[0], np.array(math.prod(shape), dtype=np.int64))
            return
        attrs = _attributes(self.onnx, proto)
        rank = len(shape)
        start = _clamp_axis(int(attrs.get("start", 0)), rank)
        end = _clamp_axis(int(attrs.get("end", rank)), rank)
        self.consts.set(proto.output[0], np.array(shape[start:end], dtype=np.int64))

    def _cross_check(self) -> None:
        """Warn when the file's own static shape annotations disagree with grimsim's."""
        for vi in (*self.graph.value_info, *self.graph.output):
            declared = _static_dims(vi)
            if declared is None or not self.builder.has_blob(vi.name):
                continue
            ours = self.builder.shape(vi.name)
            if ours != declared:
                log.warning("%s: tensor %r: the file annotates shape %s, grimsim infers %s",
                            self.file, vi.name, declared, ours)


def _clamp_axis(axis: int, rank: int) -> int:
    if axis < 0:
        axis += rank
    return min(max(axis, 0), rank)


def _static_dims(value_info: Any) -> Shape | None:
    t = value_info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in t.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 1:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


# --------------------------------------------------------------------------- graph inputs


def _resolve_inputs(graph: Any, initializers: frozenset[str], input_shapes: InputShapes,
                    file: Path) -> tuple[dict[str, Shape], bool]:
    """Static shapes of the graph inputs, and whether a fixed dimension was overridden."""
    inputs = [vi for vi in graph.input if vi.name not in initializers]
    if not inputs:
        raise ModelFormatError(f"{file}: the graph has no inputs (every graph input is an "
                               "initializer)")
    names = [vi.name for vi in inputs]
    overrides: dict[str, Shape] = {}
    if isinstance(input_shapes, Mapping):
        for key, shp in input_shapes.items():
            if key not in names:
                raise ShapeError(f"{file}: input_shapes names {key!r}, but the model's inputs "
                                 f"are {names}")
            overrides[key] = tuple(int(d) for d in shp)
    elif input_shapes is not None:
        overrides[names[0]] = tuple(int(d) for d in input_shapes)
    for key, shp in overrides.items():
        if not shp or any(d < 1 for d in shp):
            raise ShapeError(f"{file}: input {key!r}: shape {shp} must be positive integers")

    declared: dict[str, list[int | str] | None] = {}
    for vi in inputs:
        if not vi.type.HasField("tensor_type"):
            raise UnsupportedOpError(f"{file}: input {vi.name!r} is not a tensor "
                                     "(sequence/map inputs are not supported)")
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            declared[vi.name] = None
            continue
        dims: list[int | str] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param if d.HasField("dim_param") else "?")
        declared[vi.name] = dims

    # symbolic names resolved by an override apply wherever the same name appears
    symbols: dict[str, int] = {}
    fixed_overridden = False
    for key, shp in overrides.items():
        dims_or_none = declared[key]
        if dims_or_none is None:
            continue
        if len(dims_or_none) != len(shp):
            raise ShapeError(f"{file}: input {key!r} has rank {len(dims_or_none)} "
                             f"({_fmt_dims(dims_or_none)}), but the given shape {_fmt(shp)} has "
                             f"rank {len(shp)}")
        for d, v in zip(dims_or_none, shp, strict=True):
            if isinstance(d, str) and d != "?":
                symbols.setdefault(d, v)
            elif isinstance(d, int) and d != v:
                fixed_overridden = True
                log.info("%s: input %r: fixed dimension %d overridden by %d", file, key, d, v)

    shapes: dict[str, Shape] = {}
    for position, vi in enumerate(inputs):
        key = vi.name
        if key in overrides:
            shapes[key] = overrides[key]
            continue
        dims_or_none = declared[key]
        how = ("pass --input, e.g. --input 1x3x224x224" if position == 0 else
               f"pass input_shapes={{{key!r}: (...)}}")
        if dims_or_none is None:
            raise ShapeError(f"{file}: input {key!r} has no shape in the file; {how}")
        resolved: list[int] = []
        for i, d in enumerate(dims_or_none):
            if isinstance(d, int):
                resolved.append(d)
            elif d in symbols:
                resolved.append(symbols[d])
            else:
                example = "x".join(str(x) if isinstance(x, int) else "1" for x in dims_or_none)
                label = f"symbolic ({d!r})" if d != "?" else "unknown"
                hint = (f"pass --input, e.g. --input {example}" if position == 0 else
                        f"pass input_shapes={{{key!r}: ({', '.join(example.split('x'))},)}}")
                raise ShapeError(f"{file}: input {key!r} ({_fmt_dims(dims_or_none)}): "
                                 f"dimension {i} is {label}; {hint}")
        shapes[key] = tuple(resolved)
    return shapes, fixed_overridden


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def _fmt_dims(dims: Sequence[int | str]) -> str:
    return "x".join(str(d) for d in dims)


# --------------------------------------------------------------------------- small helpers


def _freeze(attrs: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in attrs.items()))


def _with_attrs(layer: LayerWorkload, **extra: Any) -> LayerWorkload:
    return replace(layer, attrs=_freeze({**layer.attributes, **extra}))


def _axis(axis: int, rank: int, node: _Node) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def _tensor_numel(ctx: _Importer, tensor: str) -> int:
    return math.prod(ctx.shape(tensor)) if tensor else 0


def _broadcast(shapes: Sequence[Shape]) -> Shape:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"shapes {[tuple(s) for s in shapes]} do not broadcast") from None


def _spatial(ctx: _Importer, node: _Node, shape: Shape) -> int:
    """Number of spatial dims of an N,C,... tensor; only 1-D and 2-D are supported."""
    if len(shape) not in (3, 4):
        raise UnsupportedOpError(f"{node.op_type} on a rank-{len(shape)} input {shape} "
                                 "(grimsim supports 1-D and 2-D spatial ops)")
    return len(shape) - 2


def _as_2d(values: Sequence[int], fill: int) -> tuple[int, int]:
    """Spatial parameters of a 1-D op as a 2-D op over an Hx W = 1 x L image."""
    vals = [int(v) for v in values]
    return (vals[0], vals[1]) if len(vals) == 2 else (fill, vals[0])


def _pads_2d(pads: Sequence[int]) -> tuple[int, int, int, int]:
    """ONNX pads (begins then ends) as (top, left, bottom, right)."""
    p = [int(v) for v in pads]
    if len(p) == 4:
        return (p[0], p[1], p[2], p[3])
    return (0, p[0], 0, p[1])


def _restore_rank(layer: LayerWorkload, in_shapes: Sequence[Shape]) -> LayerWorkload:
    """Give a 1-D op computed as 2-D (H = 1) its real rank-3 shapes back."""
    if len(in_shapes[0]) != 3:
        return layer
    outs = tuple((*s[:2], s[3]) if len(s) == 4 else s for s in layer.output_shapes)
    return replace(layer, input_shapes=tuple(in_shapes), output_shapes=outs)


def _auto_pads(node: _Node, sizes: Sequence[int], kernel: Sequence[int],
               strides: Sequence[int], dilations: Sequence[int]) -> list[int] | None:
    """Explicit pads for auto_pad SAME_UPPER/SAME_LOWER/VALID; None for NOTSET."""
    mode = str(node.attr("auto_pad", "NOTSET") or "NOTSET")
    if mode == "NOTSET":
        return None
    if mode == "VALID":
        return [0] * (2 * len(sizes))
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise ModelFormatError(f"unknown auto_pad {mode!r}")
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else big)
        ends.append(big if mode == "SAME_UPPER" else small)
    return begins + ends


def _eltwise_params(ctx: _Importer, node: _Node) -> int:
    """Tensor-valued constant operands (biases, scales) are learned parameters."""
    total = 0
    for t in dict.fromkeys(node.inputs):
        if t and ctx.is_const(t):
            n = math.prod(ctx.shape(t))
            total += n if n > 1 else 0
    return total


def _generic(ctx: _Importer, node: _Node, op: str, outputs: Sequence[Shape], *,
             ops_per_output: float = 0.0, view: bool = False, params: int = 0,
             tops: Sequence[str] | None = None, **attrs: Any) -> None:
    """A cheap layer over the node's activation inputs."""
    bottoms = ctx.activations(node)
    layer = wl.elementwise_op(node.name, op, [ctx.shape(b) for b in bottoms], outputs,
                              params=params, ops_per_output=ops_per_output, view=view,
                              attrs=attrs or None)
    ctx.add(layer, bottoms, tops if tops is not None else [o for o in node.outputs if o])


# --------------------------------------------------------------------------- GEMM ops


def _conv(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    w = ctx.const_input(node, 1, "weight")
    b = ctx.const_input(node, 2, "bias", required=False)
    xs, ws = ctx.shape(x), ctx.shape(w)
    sp = _spatial(ctx, node, xs)
    if len(ws) != len(xs):
        raise ShapeError(f"weight shape {ws} does not match the rank-{len(xs)} input {xs}")
    group = int(node.attr("group", 1))
    kernel = [int(k) for k in ws[2:]]
    declared = node.attr("kernel_shape")
    if declared is not None and [int(k) for k in declared] != kernel:
        raise ShapeError(f"kernel_shape {list(declared)} differs from the weight's {kernel}")
    if xs[1] != ws[1] * group:
        raise ShapeError(f"input has {xs[1]} channels but the weight {ws} with group={group} "
                         f"expects {ws[1] * group}")
    if b and ctx.shape(b) != (ws[0],):
        raise ShapeError(f"bias shape {ctx.shape(b)} should be ({ws[0]},)")
    strides = list(node.attr("strides", [1] * sp))
    dilations = list(node.attr("dilations", [1] * sp))
    pads = _auto_pads(node, xs[2:], kernel, strides, dilations) or list(
        node.attr("pads", [0] * 2 * sp))
    x4 = xs if sp == 2 else (xs[0], xs[1], 1, xs[2])
    layer = wl.conv2d(node.name, x4, ws[0], _as_2d(kernel, 1), _as_2d(strides, 1),
                      _pads_2d(pads), _as_2d(dilations, 1), group, bias=bool(b))
    ctx.add(_restore_rank(layer, [xs]), [x], [node.out(0)])


def _conv_transpose(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    w = ctx.const_input(node, 1, "weight")
    b = ctx.const_input(node, 2, "bias", required=False)
    xs, ws = ctx.shape(x), ctx.shape(w)
    sp = _spatial(ctx, node, xs)
    group = int(node.attr("group", 1))
    if len(ws) != len(xs) or ws[0] != xs[1]:
        raise ShapeError(f"weight shape {ws} does not fit the input {xs} (ConvTranspose "
                         "weights are Cin x Cout/group x kh x kw)")
    out_channels = ws[1] * group
    if b and ctx.shape(b) != (out_channels,):
        raise ShapeError(f"bias shape {ctx.shape(b)} should be ({out_channels},)")
    kernel = [int(k) for k in ws[2:]]
    strides = [int(v) for v in node.attr("strides", [1] * sp)]
    dilations = [int(v) for v in node.attr("dilations", [1] * sp)]
    out_pad = [int(v) for v in node.attr("output_padding", [0] * sp)]
    target = node.attr("output_shape")
    mode = str(node.attr("auto_pad", "NOTSET") or "NOTSET")
    if target is None and mode in ("SAME_UPPER", "SAME_LOWER"):
        target = [xs[2 + i] * strides[i] for i in range(sp)]
    if target is not None:
        target = [int(v) for v in target][-sp:]
        begins, ends = [], []
        for i in range(sp):
            total = (strides[i] * (xs[2 + i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i]
                     + 1 - target[i])
            if mode == "SAME_UPPER":
                begins.append(total // 2)
                ends.append(total - total // 2)
            else:
                begins.append(total - total // 2)
                ends.append(total // 2)
        pads = begins + ends
    elif mode == "VALID":
        pads = [0] * 2 * sp
    else:
        pads = [int(v) for v in node.attr("pads", [0] * 2 * sp)]
    x4 = xs if sp == 2 else (xs[0], xs[1], 1, xs[2])
    layer = wl.deconv2d(node.name, x4, out_channels, _as_2d(kernel, 1), _as_2d(strides, 1),
                        _pads_2d(pads), _as_2d(dilations, 1), _as_2d(out_pad, 0), group,
                        bias=bool(b))
    ctx.add(_restore_rank(layer, [xs]), [x], [node.out(0)])


def _weighted_matmul(name: str, x_shape: Shape, out_features: int, *, left: bool,
                     bias: bool) -> LayerWorkload:
    """A GEMM with a constant weight. ``left``: Y = W @ X over X's last two dims (computed
    as the linear layer Y^T = X^T W^T, so the GEMM view is the same)."""
    if not left:
        return wl.linear(name, x_shape, out_features, bias=bias)
    virtual = (*x_shape[:-2], x_shape[-1], x_shape[-2])
    layer = wl.linear(name, virtual, out_features, bias=bias)
    out = (*x_shape[:-2], out_features, x_shape[-1])
    return replace(layer, input_shapes=(x_shape,), output_shapes=(out,))


def _matmul(ctx: _Importer, node: _Node) -> None:
    a, b = node.inp(0), node.inp(1)
    sa, sb = ctx.shape(a), ctx.shape(b)
    ca, cb = ctx.is_const(a), ctx.is_const(b)
    if cb and not ca:
        if len(sb) == 2:
            if sa[-1] != sb[0]:
                raise ShapeError(f"inner dimensions differ: {sa} @ {sb}")
            layer = _weighted_matmul(node.name, sa, sb[1], left=False, bias=False)
        elif len(sb) == 1:
            if sa[-1] != sb[0]:
                raise ShapeError(f"inner dimensions differ: {sa} @ {sb}")
            layer = _weighted_matmul(node.name, sa, 1, left=False, bias=False)
            layer = replace(layer, output_shapes=(sa[:-1],))
        else:
            raise UnsupportedOpError(f"MatMul with a rank-{len(sb)} constant operand {sb} "
                                     "(batched weights)")
        ctx.add(_with_attrs(layer, onnx_op="MatMul"), [a], [node.out(0)])
        return
    if ca and not cb:
        if len(sa) != 2 or len(sb) < 2:
            raise UnsupportedOpError(f"MatMul of a constant {sa} by an activation {sb} "
                                     "(only a 2-D constant left operand is supported)")
        if sa[1] != sb[-2]:
            raise ShapeError(f"inner dimensions differ: {sa} @ {sb}")
        layer = _weighted_matmul(node.name, sb, sa[0], left=True, bias=False)
        ctx.add(_with_attrs(layer, onnx_op="MatMul", weight_side="left"), [b], [node.out(0)])
        return
    a2 = (1, *sa) if len(sa) == 1 else sa
    b2 = (*sb, 1) if len(sb) == 1 else sb
    layer = wl.matmul(node.name, a2, b2)
    out = layer.output_shapes[0]
    if len(sa) == 1:
        out = (*out[:-2], out[-1])
    if len(sb) == 1:
        out = out[:-1]
    layer = replace(layer, input_shapes=(sa, sb) if a != b else (sa,), output_shapes=(out,))
    ctx.add(layer, list(dict.fromkeys([a, b])), [node.out(0)])


def _gemm(ctx: _Importer, node: _Node) -> None:
    a, b, c = node.inp(0), node.inp(1), node.inp(2)
    sa, sb = ctx.shape(a), ctx.shape(b)
    if len(sa) != 2 or len(sb) != 2:
        raise ShapeError(f"Gemm needs 2-D operands, got {sa} and {sb}")
    trans_a, trans_b = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    ea = sa[::-1] if trans_a else sa
    eb = sb[::-1] if trans_b else sb
    if ea[1] != eb[0]:
        raise ShapeError(f"inner dimensions differ: A'{ea} @ B'{eb} (transA={trans_a}, "
                         f"transB={trans_b})")
    out = (ea[0], eb[1])
    c_const = bool(c) and ctx.is_const(c)
    if c and _broadcast([out, ctx.shape(c)]) != out:
        raise ShapeError(f"C {ctx.shape(c)} does not broadcast to the output {out}")
    ca, cb = ctx.is_const(a), ctx.is_const(b)
    if cb and not ca:
        layer = wl.linear(node.name, ea, eb[1], bias=c_const)
        layer = replace(layer, input_shapes=(sa,))
        bottoms = [a]
    elif ca and not cb:
        layer = _weighted_matmul(node.name, eb, ea[0], left=True, bias=c_const)
        layer = _with_attrs(replace(layer, input_shapes=(sb,)), weight_side="left")
        bottoms = [b]
    else:
        layer = wl.matmul(node.name, ea, eb)
        layer = replace(layer, input_shapes=(sa, sb) if a != b else (sa,))
        bottoms = list(dict.fromkeys([a, b]))
    if c_const and layer.gemms[0].prunable:
        # the bias may be a broadcast scalar or a full matrix: count what the file holds
        weights = sum(g.weight_count for g in layer.gemms)
        layer = replace(layer, params=weights + _tensor_numel(ctx, c))
    elif c and not c_const:
        bottoms.append(c)
        layer = replace(layer, input_shapes=(*layer.input_shapes, ctx.shape(c)))
    layer = _with_attrs(layer, onnx_op="Gemm", transA=trans_a, transB=trans_b)
    ctx.add(layer, bottoms, [node.out(0)])


_RNN_GATES = {"GRU": 3, "LSTM": 4}
#: grimsim gate name -> index of its block in ONNX's W/R/B (ONNX orders GRU as z, r, h and
#: LSTM as i, o, f, c; grimsim names GRU gates r, z, n and LSTM gates i, f, g, o).
_ONNX_GATE_INDEX = {"GRU": {"r": 1, "z": 0, "n": 2}, "LSTM": {"i": 0, "f": 2, "g": 3, "o": 1}}


def _rnn_directions(node: _Node) -> tuple[str, int]:
    direction = str(node.attr("direction", "forward") or "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ModelFormatError(f"unknown direction {direction!r}")
    return direction, 2 if direction == "bidirectional" else 1


def _recurrent(ctx: _Importer, node: _Node) -> None:
    kind = node.op_type
    gates = _RNN_GATES[kind]
    x = node.inp(0)
    w = ctx.const_input(node, 1, "input weight W")
    r = ctx.const_input(node, 2, "recurrence weight R")
    b = ctx.const_input(node, 3, "bias B", required=False)
    peep = ctx.const_input(node, 7, "peephole P", required=False) if kind == "LSTM" else ""
    direction, dirs = _rnn_directions(node)
    layout = int(node.attr("layout", 0))
    xs, rs = ctx.shape(x), ctx.shape(r)
    if len(xs) != 3:
        raise ShapeError(f"input X must be rank 3, got {xs}")
    steps, batch, features = (xs[0], xs[1], xs[2]) if layout == 0 else (xs[1], xs[0], xs[2])
    hidden = int(node.attr("hidden_size", rs[-1] if rs else 0))
    expected = {"W": (w, (dirs, gates * hidden, features)),
                "R": (r, (dirs, gates * hidden, hidden)),
                "B": (b, (dirs, 2 * gates * hidden)), "P": (peep, (dirs, 3 * hidden))}
    for label, (tensor, shp) in expected.items():
        if tensor and ctx.shape(tensor) != shp:
            raise ShapeError(f"{label} has shape {ctx.shape(tensor)}, expected {shp} (direction "
                             f"{direction!r}, hidden_size {hidden}, input size {features})")
    btf = (batch, steps, features)
    # state and length inputs computed at run time stay graph dependencies of the layer
    extra = [t for t in (node.inp(4), node.inp(5), node.inp(6) if kind == "LSTM" else "")
             if t and not ctx.is_const(t)]
    source = x
    if layout == 0 or extra:
        pre = ctx.fresh(f"{node.name}.to_btf")
        ctx.add(wl.zero_cost(pre, Op.PERMUTE, [xs, *[ctx.shape(t) for t in extra]], [btf],
                             attrs={"perm": (1, 0, 2) if layout == 0 else (0, 1, 2)}),
                [x, *extra], [pre])
        source = pre
    layer = wl.recurrent(node.name, kind.lower(), btf, hidden, bias=bool(b),
                         bidirectional=dirs == 2)
    layer = replace(layer, params=layer.params + _tensor_numel(ctx, peep))
    layer = _with_attrs(layer, direction=direction, onnx_layout=layout)
    result = ctx.fresh(f"{node.name}.out")
    ctx.add(layer, [source], [result])
    if layout == 0:
        shapes = [(steps, dirs, batch, hidden), (dirs, batch, hidden), (dirs, batch, hidden)]
    else:
        shapes = [(batch, steps, dirs, hidden), (batch, dirs, hidden), (batch, dirs, hidden)]
    named = [(t, s) for t, s in zip(node.outputs, shapes, strict=False) if t]
    if named:
        post = ctx.fresh(f"{node.name}.to_onnx")
        ctx.add(wl.zero_cost(post, Op.PERMUTE, [layer.output_shape], [s for _, s in named],
                             attrs={"layout": layout}),
                [result], [t for t, _ in named])


# --------------------------------------------------------------------------- cheap ops


def _batchnorm(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    xs = ctx.shape(x)
    if len(xs) < 2:
        raise ShapeError(f"BatchNormalization needs a channel dimension, got {xs}")
    for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")):
        t = ctx.const_input(node, i, what)
        if ctx.shape(t) != (xs[1],):
            raise ShapeError(f"{what} has shape {ctx.shape(t)}, expected ({xs[1]},)")
    if any(node.outputs[1:]):
        raise UnsupportedOpError("training-mode BatchNormalization (running mean/var outputs)")
    ctx.add(wl.batchnorm(node.name, xs), [x], [node.out(0)])


def _norm(ctx: _Importer, node: _Node, op: str, ops_per_output: float) -> None:
    x = node.inp(0)
    params = sum(_tensor_numel(ctx, t) for t in node.inputs[1:] if t and ctx.is_const(t))
    _generic(ctx, node, op, [ctx.shape(x)], ops_per_output=ops_per_output, params=params,
             tops=[node.out(0)], kind=node.op_type)


def _layernorm(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    xs = ctx.shape(x)
    axis = _axis(int(node.attr("axis", -1)), len(xs), node)
    scale = ctx.const_input(node, 1, "scale")
    bias = ctx.const_input(node, 2, "bias", required=False)
    norm_shape = xs[axis:]
    for t in (scale, bias):
        if t and _broadcast([norm_shape, ctx.shape(t)]) != norm_shape:
            raise ShapeError(f"{t!r} shape {ctx.shape(t)} does not broadcast to {norm_shape}")
    layer = wl.layernorm(node.name, xs)
    stats = (*xs[:axis], *([1] * (len(xs) - axis)))
    tops = [node.out(0)] + [t for t in node.outputs[1:3] if t]
    layer = replace(layer, params=_tensor_numel(ctx, scale) + _tensor_numel(ctx, bias),
                    output_shapes=(xs, *[stats] * (len(tops) - 1)))
    ctx.add(_with_attrs(layer, axis=axis), [x], tops)


_ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leakyrelu", "Sigmoid": "sigmoid", "Tanh": "tanh",
                "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "Gelu": "gelu",
                "Elu": "elu", "Selu": "selu", "Celu": "celu", "Softplus": "softplus",
                "Softsign": "softsign", "Mish": "mish", "ThresholdedRelu": "thresholdedrelu",
                "Swish": "swish"}

# unary element-wise ops that an engine does not fold into a GEMM epilogue; cost per output
_UNARY = {"Erf": 8, "Exp": 4, "Log": 4, "Sqrt": 2, "Reciprocal": 1, "Neg": 1, "Abs": 1,
          "Floor": 1, "Ceil": 1, "Round": 1, "Sign": 1, "Sin": 8, "Cos": 8, "Tan": 8,
          "Atan": 8, "Not": 1, "Cast": 1, "IsNaN": 1, "IsInf": 1, "Trilu": 1, "CumSum": 1}

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Max": "max",
           "Min": "min", "Sum": "sum", "Mean": "mean", "Mod": "mod", "Equal": "equal",
           "Less": "less", "LessOrEqual": "lessorequal", "Greater": "greater",
           "GreaterOrEqual": "greaterorequal", "And": "and", "Or": "or", "Xor": "xor",
           "Where": "where", "BitShift": "bitshift"}
_PARAM_OPERANDS = frozenset({"Add", "Sub", "Mul", "Div", "Sum"})


def _activation(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    kind = _ACTIVATIONS[node.op_type]
    ctx.add(wl.activation_op(node.name, ctx.shape(x), kind), [x], [node.out(0)])


def _clip(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    lo: float | None = node.attr("min")
    hi: float | None = node.attr("max")
    for i, is_lo in ((1, True), (2, False)):
        t = node.inp(i)
        if t:
            if not ctx.is_const(t):
                raise UnsupportedOpError("Clip with bounds computed at run time")
            v = float(ctx.value(t).reshape(-1)[0])
            lo, hi = (v, hi) if is_lo else (lo, v)
    kind = "relu6" if (lo == 0.0 and hi == 6.0) else "relu" if (lo == 0.0 and hi is None) \
        else "clip"
    layer = wl.activation_op(node.name, ctx.shape(x), kind)
    ctx.add(_with_attrs(layer, min=lo, max=hi), [x], [node.out(0)])


def _prelu(ctx: _Importer, node: _Node) -> None:
    x, slope = node.inp(0), node.inp(1)
    xs = ctx.shape(x)
    if not ctx.is_const(slope):
        _binary(ctx, node)
        return
    if _broadcast([xs, ctx.shape(slope)]) != xs:
        raise ShapeError(f"slope {ctx.shape(slope)} does not broadcast to the input {xs}")
    layer = wl.activation_op(node.name, xs, "prelu")
    ctx.add(replace(layer, params=_tensor_numel(ctx, slope)), [x], [node.out(0)])


def _unary(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    _generic(ctx, node, Op.ELTWISE, [ctx.shape(x)], ops_per_output=_UNARY[node.op_type],
             tops=[node.out(0)], kind=node.op_type.lower())


def _binary(ctx: _Importer, node: _Node) -> None:
    operands = [t for t in node.inputs if t]
    shapes = [ctx.shape(t) for t in operands]
    bottoms = ctx.activations(node)
    kind = _BINARY.get(node.op_type, node.op_type.lower())
    layer = wl.eltwise(node.name, shapes, kind)
    params = _eltwise_params(ctx, node) if node.op_type in _PARAM_OPERANDS else 0
    layer = replace(layer, input_shapes=tuple(ctx.shape(t) for t in bottoms), params=params)
    ctx.add(layer, bottoms, [node.out(0)])


def _cast_like(ctx: _Importer, node: _Node) -> None:
    _generic(ctx, node, Op.ELTWISE, [ctx.shape(node.inp(0))], ops_per_output=1,
             tops=[node.out(0)], kind="cast")


def _pool_dims(size: int, k: int, s: int, pb: int, pe: int, d: int, ceil: bool,
               drop_last: bool) -> int:
    span = size + pb + pe - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and drop_last and (out - 1) * s >= size + pb:
        out -= 1
    return out


def _pool(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    xs = ctx.shape(x)
    sp = _spatial(ctx, node, xs)
    kind = {"MaxPool": "max", "AveragePool": "avg", "LpPool": "lp"}[node.op_type]
    kernel = [int(k) for k in node.attr("kernel_shape", [])]
    if len(kernel) != sp:
        raise ModelFormatError(f"kernel_shape {kernel} must have {sp} values")
    strides = [int(v) for v in node.attr("strides", [1] * sp)]
    dilations = [int(v) for v in node.attr("dilations", [1] * sp)]
    auto = _auto_pads(node, xs[2:], kernel, strides, dilations)
    pads = auto if auto is not None else [int(v) for v in node.attr("pads", [0] * 2 * sp)]
    # with auto_pad the output size is fixed by the mode; ceil_mode changes nothing
    ceil = bool(node.attr("ceil_mode", 0)) and auto is None
    if any(node.outputs[1:]):
        raise UnsupportedOpError(f"{node.op_type} with an Indices output")
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    x4 = xs if sp == 2 else (xs[0], xs[1], 1, xs[2])
    layer = wl.pool2d(node.name, x4, _as_2d(effective, 1), _as_2d(strides, 1), _pads_2d(pads),
                      ceil_mode=ceil, kind=kind)
    # ONNX drops a last window that starts in the right padding only from opset 22 on
    # (MaxPool-22/AveragePool-22 docs); older opsets keep it.
    pads4 = _pads_2d(pads)
    size = [_pool_dims(n, k, s, pb, pe, 1, ceil, ctx.opset >= 22)
            for n, k, s, pb, pe in zip(x4[2:], _as_2d(effective, 1), _as_2d(strides, 1),
                                       pads4[:2], pads4[2:], strict=True)]
    if min(size) < 1:
        raise ShapeError(f"a {kernel} pooling window does not fit the input {xs}")
    out4 = (x4[0], x4[1], size[0], size[1])
    layer = replace(layer, output_shapes=(out4,),
                    elementwise_ops=math.prod(kernel) * math.prod(out4))
    layer = _with_attrs(layer, kernel=tuple(_as_2d(kernel, 1)),
                        dilation=tuple(_as_2d(dilations, 1)))
    ctx.add(_restore_rank(layer, [xs]), [x], [node.out(0)])


def _global_pool(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    xs = ctx.shape(x)
    sp = _spatial(ctx, node, xs)
    kind = {"GlobalAveragePool": "avg", "GlobalMaxPool": "max", "GlobalLpPool": "lp"}[
        node.op_type]
    x4 = xs if sp == 2 else (xs[0], xs[1], 1, xs[2])
    layer = wl.global_pool(node.name, x4, kind)
    ctx.add(_restore_rank(layer, [xs]), [x], [node.out(0)])


def _concat(ctx: _Importer, node: _Node) -> None:
    operands = [t for t in node.inputs if t]
    shapes = [ctx.shape(t) for t in operands]
    axis = _axis(int(node.attr("axis", 1)), len(shapes[0]), node)
    layer = wl.concat(node.name, shapes, axis)
    bottoms = ctx.activations(node)
    if len(bottoms) != len(operands):
        # constant pieces (a class token...) are learned parameters read by the layer
        layer = replace(layer, input_shapes=tuple(ctx.shape(t) for t in bottoms),
                        params=sum(_tensor_numel(ctx, t) for t in operands
                                   if ctx.is_const(t)))
    ctx.add(layer, bottoms, [node.out(0)])


def _split(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    xs = ctx.shape(x)
    axis = _axis(int(node.attr("axis", 0)), len(xs), node)
    n_out = len(node.outputs)
    if node.inp(1):
        sizes = ctx.ints(ctx.const_input(node, 1, "split"))
    elif node.attr("split") is not None:
        sizes = [int(v) for v in node.attr("split")]
    else:
        parts = int(node.attr("num_outputs", n_out))
        chunk = -(-xs[axis] // parts)
        sizes = [min(chunk, xs[axis] - i * chunk) for i in range(parts)]
    if sum(sizes) != xs[axis] or len(sizes) != n_out or min(sizes) < 1:
        raise ShapeError(f"split sizes {sizes} do not divide dimension {axis} ({xs[axis]}) "
                         f"into {n_out} outputs")
    outs = [(*xs[:axis], s, *xs[axis + 1:]) for s in sizes]
    named = [(t, s) for t, s in zip(node.outputs, outs, strict=True) if t]
    layer = wl.elementwise_op(node.name, Op.SPLIT, [xs], [s for _, s in named],
                              ops_per_output=0, attrs={"axis": axis, "sizes": tuple(sizes)})
    ctx.add(layer, [x], [t for t, _ in named])


def _slice(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    xs = ctx.shape(x)
    if node.inp(1):
        starts = ctx.ints(ctx.const_input(node, 1, "starts"))
        ends = ctx.ints(ctx.const_input(node, 2, "ends"))
        axes = ctx.ints(ctx.const_input(node, 3, "axes")) if node.inp(3) else None
        steps = ctx.ints(ctx.const_input(node, 4, "steps")) if node.inp(4) else None
    else:
        starts = [int(v) for v in node.attr("starts", [])]
        ends = [int(v) for v in node.attr("ends", [])]
        axes = [int(v) for v in node.attr("axes")] if node.attr("axes") is not None else None
        steps = None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ShapeError("starts, ends, axes and steps must have the same length")
    out = list(xs)
    for start, end, ax, step in zip(starts, ends, axes, steps, strict=True):
        a = _axis(ax, len(xs), node)
        if step == 0:
            raise ShapeError("a Slice step is 0")
        out[a] = len(range(*slice(start, end, step).indices(xs[a])))
    if min(out, default=1) < 1:
        raise ShapeError(f"slicing {xs} gives the empty shape {tuple(out)}")
    _generic(ctx, node, Op.SLICE, [tuple(out)], tops=[node.out(0)])


def _reshape_to(ctx: _Importer, node: _Node, out: Sequence[int], op: str = Op.RESHAPE
                ) -> None:
    x = node.inp(0)
    layer = wl.reshape(node.name, ctx.shape(x), tuple(int(d) for d in out), op)
    ctx.add(layer, [x], [node.out(0)])


def _reshape(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    if node.inp(1):
        target = ctx.ints(ctx.const_input(node, 1, "shape"))
    else:  # opset < 5 keeps the shape in an attribute
        target = [int(v) for v in node.attr("shape", [])]
    allow_zero = bool(node.attr("allowzero", 0))
    out: list[int] = []
    for i, d in enumerate(target):
        if d == 0 and not allow_zero:
            if i >= len(xs):
                raise ShapeError(f"shape {target}: 0 at position {i} copies a dimension the "
                                 f"input {xs} does not have")
            out.append(xs[i])
        else:
            out.append(d)
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise ShapeError(f"bad target shape {target}")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        total = math.prod(xs)
        if known == 0 or total % known:
            raise ShapeError(f"cannot reshape {xs} ({total} values) to {target}")
        out[out.index(-1)] = total // known
    _reshape_to(ctx, node, out)


def _flatten(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    axis = int(node.attr("axis", 1))
    axis = axis + len(xs) if axis < 0 else axis
    if not 0 <= axis <= len(xs):
        raise ShapeError(f"axis {axis} is out of range for rank {len(xs)}")
    _reshape_to(ctx, node, (math.prod(xs[:axis]), math.prod(xs[axis:])))


def _axes_input(ctx: _Importer, node: _Node) -> list[int] | None:
    if node.inp(1):
        return ctx.ints(ctx.const_input(node, 1, "axes"))
    axes = node.attr("axes")
    return [int(v) for v in axes] if axes is not None else None


def _squeeze(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    axes = _axes_input(ctx, node)
    if axes is None:
        out = [d for d in xs if d != 1]
    else:
        drop = {_axis(a, len(xs), node) for a in axes}
        if any(xs[a] != 1 for a in drop):
            raise ShapeError(f"cannot squeeze axes {sorted(drop)} of {xs}: not all are 1")
        out = [d for i, d in enumerate(xs) if i not in drop]
    _reshape_to(ctx, node, out)


def _unsqueeze(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    axes = _axes_input(ctx, node)
    if not axes:
        raise ModelFormatError("Unsqueeze without axes")
    rank = len(xs) + len(axes)
    where = sorted(_axis(a, rank, node) for a in axes)
    if len(set(where)) != len(where):
        raise ShapeError(f"repeated axes {axes}")
    out = list(xs)
    for a in where:
        out.insert(a, 1)
    _reshape_to(ctx, node, out)


def _transpose(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    perm = [int(p) for p in node.attr("perm", list(reversed(range(len(xs)))))]
    if sorted(perm) != list(range(len(xs))):
        raise ShapeError(f"perm {perm} is not a permutation of the rank-{len(xs)} input")
    _generic(ctx, node, Op.PERMUTE, [tuple(xs[p] for p in perm)], tops=[node.out(0)],
             perm=tuple(perm))


def _depth_space(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    if len(xs) != 4:
        raise ShapeError(f"{node.op_type} needs an NCHW input, got {xs}")
    n, c, h, w = xs
    bs = int(node.attr("blocksize"))
    if node.op_type == "DepthToSpace":
        if c % (bs * bs):
            raise ShapeError(f"{c} channels are not divisible by blocksize^2 = {bs * bs}")
        out = (n, c // (bs * bs), h * bs, w * bs)
    else:
        if h % bs or w % bs:
            raise ShapeError(f"{h}x{w} is not divisible by blocksize {bs}")
        out = (n, c * bs * bs, h // bs, w // bs)
    _generic(ctx, node, Op.PERMUTE, [out], tops=[node.out(0)], blocksize=bs)


def _softmax(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    xs = ctx.shape(x)
    default = -1 if ctx.opset >= 13 else 1
    axis = _axis(int(node.attr("axis", default)), len(xs), node)
    layer = wl.softmax(node.name, xs, axis)
    ctx.add(_with_attrs(layer, kind=node.op_type.lower()), [x], [node.out(0)])


def _gather(ctx: _Importer, node: _Node) -> None:
    data, idx = node.inp(0), node.inp(1)
    ds, ishape = ctx.shape(data), ctx.shape(idx)
    axis = _axis(int(node.attr("axis", 0)), len(ds), node)
    out = (*ds[:axis], *ishape, *ds[axis + 1:])
    if ctx.is_const(data) and axis == 0 and len(ds) >= 2:
        # an embedding: a table lookup with the table as a weight
        layer = wl.embedding(node.name, ishape, ds[0], math.prod(ds[1:]))
        layer = replace(layer, output_shapes=(out,))
        ctx.add(layer, [idx], [node.out(0)])
        return
    params = _tensor_numel(ctx, data) if ctx.is_const(data) else 0
    _generic(ctx, node, Op.SLICE, [out], params=params, tops=[node.out(0)], kind="gather",
             axis=axis)


def _gather_elements(ctx: _Importer, node: _Node) -> None:
    _generic(ctx, node, Op.SLICE, [ctx.shape(node.inp(1))], tops=[node.out(0)],
             kind="gather_elements")


def _gather_nd(ctx: _Importer, node: _Node) -> None:
    ds, ishape = ctx.shape(node.inp(0)), ctx.shape(node.inp(1))
    batch_dims = int(node.attr("batch_dims", 0))
    out = (*ishape[:-1], *ds[batch_dims + ishape[-1]:])
    _generic(ctx, node, Op.SLICE, [out], tops=[node.out(0)], kind="gather_nd")


def _same_shape(op: str, ops_per_output: float = 0.0, view: bool = False
                ) -> Callable[[_Importer, _Node], None]:
    """Ops whose outputs all have the first input's shape."""

    def handler(ctx: _Importer, node: _Node) -> None:
        xs = ctx.shape(node.inp(0))
        tops = [t for t in node.outputs if t]
        bottoms = [node.inp(0)] if view else ctx.activations(node)
        layer = wl.elementwise_op(node.name, op, [ctx.shape(b) for b in bottoms],
                                  [xs] * len(tops), ops_per_output=ops_per_output, view=view,
                                  attrs={"kind": node.op_type.lower()})
        ctx.add(layer, bottoms, tops)

    return handler


def _pad(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    if node.inp(1):
        pads = ctx.ints(ctx.const_input(node, 1, "pads"))
    else:
        pads = [int(v) for v in node.attr("pads", node.attr("paddings", []))]
    axes = ctx.ints(ctx.const_input(node, 3, "axes")) if node.inp(3) else list(range(len(xs)))
    axes = [_axis(a, len(xs), node) for a in axes]
    if len(pads) != 2 * len(axes):
        raise ShapeError(f"pads {pads} must have 2 values per padded axis ({len(axes)} axes)")
    out = list(xs)
    for i, a in enumerate(axes):
        out[a] += pads[i] + pads[i + len(axes)]
    if min(out) < 1:
        raise ShapeError(f"padding {xs} by {pads} leaves the empty shape {tuple(out)}")
    _generic(ctx, node, Op.PAD, [tuple(out)], tops=[node.out(0)],
             mode=str(node.attr("mode", "constant")))


def _resize(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    xs = ctx.shape(x)
    mode = str(node.attr("mode", "nearest"))
    scales: list[float] | None = None
    sizes: list[int] | None = None
    if node.op_type == "Upsample":
        if node.inp(1):
            scales = [float(v) for v in ctx.value(ctx.const_input(node, 1, "scales"))
                      .reshape(-1)]
        else:
            scales = [float(v) for v in node.attr("scales", [])]
    else:
        scale_in, size_in = (node.inp(2), node.inp(3)) if ctx.opset >= 11 else (node.inp(1), "")
        if size_in and math.prod(ctx.shape(size_in)) > 0:
            sizes = ctx.ints(ctx.const_input(node, 3, "sizes"))
        elif scale_in and math.prod(ctx.shape(scale_in)) > 0:
            index = 2 if ctx.opset >= 11 else 1
            scales = [float(v) for v in ctx.value(ctx.const_input(node, index, "scales"))
                      .reshape(-1)]
        else:
            raise ModelFormatError("Resize needs scales or sizes")
    axes = [_axis(int(a), len(xs), node) for a in node.attr("axes", range(len(xs)))]
    out = list(xs)
    if sizes is not None:
        if len(sizes) != len(axes):
            raise ShapeError(f"sizes {sizes} must have one value per axis {axes}")
        policy = str(node.attr("keep_aspect_ratio_policy", "stretch"))
        if policy == "stretch":
            for a, s in zip(axes, sizes, strict=True):
                out[a] = s
        else:
            ratios = [s / xs[a] for a, s in zip(axes, sizes, strict=True)]
            r = min(ratios) if policy == "not_larger" else max(ratios)
            for a in axes:
                out[a] = math.floor(r * xs[a] + 0.5)
    else:
        assert scales is not None
        if len(scales) != len(axes):
            raise ShapeError(f"scales {scales} must have one value per axis {axes}")
        for a, scale in zip(axes, scales, strict=True):
            out[a] = math.floor(xs[a] * scale)
    if min(out) < 1:
        raise ShapeError(f"resizing {xs} gives the empty shape {tuple(out)}")
    cost = {"nearest": 1, "linear": 4, "bilinear": 4, "cubic": 16}.get(mode, 4)
    bottoms = [x]
    layer = wl.elementwise_op(node.name, Op.RESIZE, [xs], [tuple(out)], ops_per_output=cost,
                              attrs={"mode": mode})
    ctx.add(layer, bottoms, [node.out(0)])


def _reduce(ctx: _Importer, node: _Node) -> None:
    x = node.inp(0)
    xs = ctx.shape(x)
    keep = bool(node.attr("keepdims", 1))
    if node.op_type in ("ArgMax", "ArgMin"):
        axes = [int(node.attr("axis", 0))]
    else:
        axes_or_none = _axes_input(ctx, node)
        if not axes_or_none:
            if node.attr("noop_with_empty_axes", 0):
                _reshape_to(ctx, node, xs)
                return
            axes_or_none = list(range(len(xs)))
        axes = axes_or_none
    drop = {_axis(a, len(xs), node) for a in axes}
    out = tuple(1 if i in drop else d for i, d in enumerate(xs) if keep or i not in drop)
    layer = wl.elementwise_op(node.name, Op.REDUCE, [xs], [out],
                              attrs={"kind": node.op_type.lower(), "axes": tuple(sorted(drop))})
    # one op per input value, not per output value
    layer = replace(layer, elementwise_ops=math.prod(xs))
    ctx.add(layer, [x], [node.out(0)])


def _expand(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    target = tuple(ctx.ints(ctx.const_input(node, 1, "shape")))
    _generic(ctx, node, Op.OTHER, [_broadcast([xs, target])], tops=[node.out(0)],
             kind="expand")


def _tile(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    reps = ctx.ints(ctx.const_input(node, 1, "repeats"))
    if len(reps) != len(xs):
        raise ShapeError(f"repeats {reps} must have one value per dimension of {xs}")
    _generic(ctx, node, Op.OTHER, [tuple(d * r for d, r in zip(xs, reps, strict=True))],
             tops=[node.out(0)], kind="tile")


def _topk(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    k = ctx.ints(ctx.const_input(node, 1, "K"))[0] if node.inp(1) else int(node.attr("k"))
    axis = _axis(int(node.attr("axis", -1)), len(xs), node)
    out = (*xs[:axis], k, *xs[axis + 1:])
    tops = [t for t in node.outputs if t]
    _generic(ctx, node, Op.OTHER, [out] * len(tops), ops_per_output=math.log2(max(k, 2)),
             tops=tops, kind="topk")


def _dropout(ctx: _Importer, node: _Node) -> None:
    # inference: a no-op (and an all-true mask when the file asks for one)
    _same_shape(Op.DROPOUT, view=True)(ctx, node)


def _identity(ctx: _Importer, node: _Node) -> None:
    _reshape_to(ctx, node, ctx.shape(node.inp(0)))


def _lrn(ctx: _Importer, node: _Node) -> None:
    xs = ctx.shape(node.inp(0))
    size = int(node.attr("size", 5))
    _generic(ctx, node, Op.LRN, [xs], ops_per_output=size + 3, tops=[node.out(0)], size=size)


_HANDLERS: dict[str, Callable[[_Importer, _Node], None]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "GRU": _recurrent,
    "LSTM": _recurrent,
    "BatchNormalization": _batchnorm,
    "InstanceNormalization": lambda c, n: _norm(c, n, Op.NORM, 5),
    "GroupNormalization": lambda c, n: _norm(c, n, Op.NORM, 5),
    "LpNormalization": lambda c, n: _norm(c, n, Op.NORM, 3),
    "MeanVarianceNormalization": lambda c, n: _norm(c, n, Op.NORM, 4),
    "LayerNormalization": _layernorm,
    "LRN": _lrn,
    "Clip": _clip,
    "PRelu": _prelu,
    "CastLike": _cast_like,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "LpPool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "GlobalLpPool": _global_pool,
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "DepthToSpace": _depth_space,
    "SpaceToDepth": _depth_space,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Hardmax": _softmax,
    "Gather": _gather,
    "GatherElements": _gather_elements,
    "GatherND": _gather_nd,
    "ScatterND": _same_shape(Op.OTHER),
    "ScatterElements": _same_shape(Op.OTHER),
    "Dropout": _dropout,
    "Identity": _identity,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _resize,
    "Expand": _expand,
    "Tile": _tile,
    "TopK": _topk,
    **{op: _activation for op in _ACTIVATIONS},
    **{op: _unary for op in _UNARY},
    **{op: _binary for op in _BINARY},
    **{op: _reduce for op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
                              "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
                              "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin")},
}

#: The ONNX ops grimsim imports (besides Constant and anything folded from constants).
SUPPORTED_OPS = frozenset(_HANDLERS) | {"Constant", "Shape", "Size"}


# --------------------------------------------------------------------------- weights


def _collect_weight_refs(onnx: Any, model: Any, file: Path
                         ) -> tuple[list[OnnxWeightRef], _Constants]:
    """Walk the graph without shapes: fold constants, and find each GEMM's weight tensor."""
    graph = model.graph
    consts = _Constants(onnx, model, file)
    inputs = [vi.name for vi in graph.input if vi.name not in consts.initializers]
    names = _layer_names(graph, inputs)
    runtime: set[str] = set(inputs)  # tensors known only at run time

    def is_const(t: str) -> bool:
        return bool(t) and t in consts and t not in runtime

    refs: list[OnnxWeightRef] = []
    for proto, name in zip(graph.node, names, strict=True):
        where = f"{file}: node {name!r} ({proto.op_type})"
        try:
            if proto.op_type not in ("Shape", "Size") and _foldable(proto, is_const):
                for tensor, value in zip((t for t in proto.output if t), consts.fold(proto),
                                         strict=False):
                    consts.set(tensor, value)
                continue
            runtime.update(t for t in proto.output if t)
            if proto.domain in _DEFAULT_DOMAINS:
                refs.extend(_node_weight_refs(onnx, proto, name, consts, is_const))
        except GrimsimError:
            raise
        except Exception as exc:
            raise ModelFormatError(f"{where}: {type(exc).__name__}: {exc}") from None
    return refs, consts


def _node_weight_refs(onnx: Any, proto: Any, name: str, consts: _Constants,
                      is_const: Callable[[str], bool]) -> list[OnnxWeightRef]:
    op = proto.op_type
    ins = list(proto.input) + [""] * 8
    attrs = _attributes(onnx, proto)

    def ref(tensor: str, layout: str, row: str = name, **kw: Any) -> OnnxWeightRef:
        return OnnxWeightRef(row=row, tensor=tensor, layout=layout,
                             initializer=tensor in consts.initializers, **kw)

    if op == "Conv" and is_const(ins[1]):
        return [ref(ins[1], "reshape")]
    if op == "ConvTranspose" and is_const(ins[1]):
        return [ref(ins[1], "deconv", groups=int(attrs.get("group", 1)))]
    if op in ("Gemm", "MatMul"):
        a, b = ins[0], ins[1]
        trans_a = int(attrs.get("transA", 0)) if op == "Gemm" else 0
        trans_b = int(attrs.get("transB", 0)) if op == "Gemm" else 0
        if is_const(b) and not is_const(a):
            rank = len(consts.shape(b))
            if rank == 1:
                return [ref(b, "row")]
            if rank == 2:
                # W = B'^T: B' = B^T when transB, so W = B; else W = B^T
                return [ref(b, "identity" if trans_b else "transpose")]
        if is_const(a) and not is_const(b) and len(consts.shape(a)) == 2:
            return [ref(a, "transpose" if trans_a else "identity")]
        return []
    if op in _RNN_GATES and is_const(ins[1]) and is_const(ins[2]):
        direction = str(attrs.get("direction", "forward"))
        dirs = 2 if direction == "bidirectional" else 1
        r_shape = consts.shape(ins[2])
        hidden = int(attrs.get("hidden_size", r_shape[-1]))
        refs = []
        for d in range(dirs):
            prefix = "reverse." if d == 1 else ""
            for gate in _ONNX_GATE_INDEX[op]:
                k = _ONNX_GATE_INDEX[op][gate]
                for tensor, suffix in ((ins[1], "ih"), (ins[2], "hh")):
                    refs.append(ref(tensor, "rnn", row=f"{name}.{prefix}{gate}.{suffix}",
                                    direction=d, start=k * hidden, stop=(k + 1) * hidden))
        return refs
    return []
