"""One entry point for every model source: a zoo name, an .onnx file or an ncnn .param file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grimsim.errors import ShapeError, UnknownModelError
from grimsim.network.fusion import fuse as fuse_network
from grimsim.network.graph import Network


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse an input shape such as ``1x3x224x224`` (also accepts commas)."""
    parts = text.replace(",", "x").lower().split("x")
    try:
        shape = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        raise ShapeError(f"input shape {text!r} is not of the form 1x3x224x224") from None
    if not shape or any(d < 1 for d in shape):
        raise ShapeError(f"input shape {text!r} must be positive integers like 1x3x224x224")
    return shape


def load_network(model: str | Path, input_shape: Sequence[int] | None = None,
                 seq_len: int | None = None, fuse: bool = True) -> Network:
    """Load ``model`` (zoo name, ``.onnx`` or ncnn ``.param`` path) into a Network.

    ``fuse`` folds batch-norm and activations into their conv/FC as an engine does, so
    cheap ops are not counted twice (totals of MACs and params are unchanged).
    """
    shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
    path = Path(model)
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".param"):
        if not path.is_file():
            raise UnknownModelError(f"model file {str(path)!r} does not exist")
        if seq_len is not None:
            raise ShapeError("--seq-len applies to zoo networks; give a file's input with --input")
        if suffix == ".onnx":
            from grimsim.network.onnx_import import load_onnx

            net = load_onnx(path, shape)
        else:
            from grimsim.network.ncnn_import import load_ncnn_param

            net = load_ncnn_param(path, shape)
    else:
        from grimsim.network.zoo import ZOO_NAMES, build_zoo

        name = str(model)
        if name not in ZOO_NAMES:
            raise UnknownModelError(
                f"unknown model {name!r}: give a zoo name ({', '.join(ZOO_NAMES)}) or a path "
                "to an .onnx or ncnn .param file")
        net = build_zoo(name, input_shape=shape, seq_len=seq_len)
    return fuse_network(net) if fuse else net
