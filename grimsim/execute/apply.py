"""Apply a pruning mapping to real (or stand-in) weights: masks, compact formats, a summary,
and for ONNX models a pruned copy of the model file.

``apply_mapping`` writes three files into ``out_dir``:

* ``masks.npz``: one bool M x K mask (True = kept) per prunable GEMM row, keyed by the row
  name (as in ``grimsim info``); compressed, since masks are mostly runs of equal bytes.
* ``formats.npz``: the arrays of each row's compact format (``grimsim.pruning.encode``),
  keyed ``<row>/<field>``, plus ``__formats__``: JSON text giving each row's format kind,
  shape, block or N:M and the key of each array. ``load_formats`` rebuilds the format objects
  exactly (``decode`` of a loaded format equals ``decode`` of the original).
* ``summary.json``: per row the scheme, where its weights came from, reached sparsity, kept
  weights (nnz), format and dense bytes, and the retained-norm proxy; totals; ``_meta``.

``apply_model`` does the same from a model name or file and, for an ``.onnx`` input, also
writes ``<stem>.pruned.onnx``: the same model with zeros in the pruned initializers.

Weights: the caller's (GEMM view M x K, keyed by GEMM row name; a conv's OIHW tensor is
accepted too), else, for ONNX input, the model's initializers, else random Gaussian: float32
standard normal from ``numpy.random.default_rng([seed, crc32(row), crc32("w")])``, the same
matrices ``grimsim.execute.run_network`` draws with that seed. Gaussian weights make the
masks structural only (which groups are kept is arbitrary), which is logged as a warning.

Masks cover the whole M x K view of each GEMM, grouped convolutions included, as the pruning
statistics of the cost model count them. The assignment is keyed by layer name (the scheme
goes to every prunable GEMM of the layer) or by GEMM row name (which wins over its layer).

Everything is checked before anything is written (unknown names, illegal schemes, weights
of the wrong shape, an output folder that cannot be written, ONNX weights that are not
plain initializers); the files are first written as temporaries beside their targets and
renamed into place together, so an error never leaves a partial file behind.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from grimsim.aligned import aligned_copy
from grimsim.errors import GrimsimError, MappingError, ModelFormatError, SchemeError, ShapeError
from grimsim.execute.runner import check_weights, resolve_assignment
from grimsim.meta import run_meta
from grimsim.network import GemmView, LayerWorkload, Network
from grimsim.network.workload import FLOAT32_BYTES
from grimsim.pruning import (
    BCRFormat,
    CSRFormat,
    DenseFormat,
    Format,
    NMFormat,
    PatternFormat,
    PruningScheme,
    check_format,
    encode,
    format_name,
    make_mask,
    retained_norm,
)
from grimsim.pruning.scheme import kernel_of

log = logging.getLogger(__name__)

__all__ = [
    "FORMATS_LAYOUT",
    "AppliedGemm",
    "ApplyResult",
    "apply_mapping",
    "apply_model",
    "apply_onnx",
    "gaussian_weights",
    "load_formats",
    "load_weights",
]

MASKS_FILE = "masks.npz"
FORMATS_FILE = "formats.npz"
SUMMARY_FILE = "summary.json"
#: Layout version of formats.npz (its ``__formats__`` entry).
FORMATS_LAYOUT = "grimsim.formats/1"
_META_KEY = "__formats__"

_FORMAT_CLASSES: dict[str, type] = {"dense": DenseFormat, "csr": CSRFormat, "nm": NMFormat,
                                    "pattern": PatternFormat, "bcr": BCRFormat}
# the non-array fields of each format (everything else is an array stored in the npz)
_SCALAR_FIELDS = ("shape", "block", "n", "m")

WeightsArg = Mapping[str, np.ndarray] | str | os.PathLike[str] | None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class AppliedGemm:
    """What applying the mapping did to one prunable GEMM row."""

    name: str
    layer: str
    scheme: str
    M: int
    K: int
    weights: str  # "given", "onnx" or "gaussian"
    format: str
    nnz: int
    reached_sparsity: float
    format_bytes: int
    dense_bytes: int
    retained_norm: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, eq=False)
class ApplyResult:
    """The applied mapping: one ``AppliedGemm`` per prunable GEMM row, the files written and
    the masks themselves (row name -> bool M x K)."""

    network: str
    out_dir: Path
    gemms: tuple[AppliedGemm, ...]
    seed: int
    masks: Mapping[str, np.ndarray] = field(repr=False)
    onnx_path: Path | None = None

    @property
    def masks_path(self) -> Path:
        return self.out_dir / MASKS_FILE

    @property
    def formats_path(self) -> Path:
        return self.out_dir / FORMATS_FILE

    @property
    def summary_path(self) -> Path:
        return self.out_dir / SUMMARY_FILE

    def totals(self) -> dict[str, Any]:
        weights = sum(g.M * g.K for g in self.gemms)
        nnz = sum(g.nnz for g in self.gemms)
        dense = sum(g.dense_bytes for g in self.gemms)
        fmt = sum(g.format_bytes for g in self.gemms)
        pruned = [g for g in self.gemms if g.scheme != "dense"]
        return {
            "gemms": len(self.gemms), "pruned_gemms": len(pruned), "weights": weights,
            "nnz": nnz, "reached_sparsity": 1.0 - nnz / weights if weights else 0.0,
            "dense_bytes": dense, "format_bytes": fmt,
            "compression": dense / fmt if fmt else None,
            "min_retained_norm": min((g.retained_norm for g in pruned), default=1.0),
            "mean_retained_norm": (sum(g.retained_norm for g in pruned) / len(pruned)
                                   if pruned else 1.0),
            "weights_from": sorted({g.weights for g in self.gemms}),
        }

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds (and ``grimsim apply --json`` prints)."""
        files = {"masks": MASKS_FILE, "formats": FORMATS_FILE, "summary": SUMMARY_FILE}
        if self.onnx_path is not None:
            files["onnx"] = self.onnx_path.name
        return {"network": self.network, "out_dir": str(self.out_dir), "files": files,
                "seed": self.seed, "gemms": [g.to_dict() for g in self.gemms],
                "totals": self.totals(), "_meta": run_meta(formats_layout=FORMATS_LAYOUT)}


# --------------------------------------------------------------------------- weights


def gaussian_weights(name: str, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """The stand-in weights of GEMM row ``name`` (module docstring)."""
    rng = np.random.default_rng([int(seed), zlib.crc32(name.encode()), zlib.crc32(b"w")])
    return rng.standard_normal(shape, dtype=np.float32)


def load_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Weights from an ``.npz`` file (GEMM row name -> array); no pickled objects."""
    p = Path(path)
    if not p.is_file():
        raise GrimsimError(f"weights file {str(p)!r} not found; give an .npz of GEMM row name "
                           "-> M x K array (names as in 'grimsim info')")
    data = _open_npz(p, "weights file")
    with data:
        return {name: np.asarray(data[name]) for name in data.files}


def _open_npz(p: Path, what: str) -> Any:
    """``numpy.load`` of an .npz (no pickles), or a GrimsimError saying what is wrong."""
    try:
        data = np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise GrimsimError(f"{what} {str(p)!r} not found") from None
    except (OSError, ValueError, EOFError) as exc:
        raise GrimsimError(f"{what} {str(p)!r} is not a readable .npz of arrays "
                           f"({type(exc).__name__}: {exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise GrimsimError(f"{what} {str(p)!r} holds a single array, not an .npz of named "
                           "arrays; save one with numpy.savez(path, **{row_name: array})")
    return data


def _gemm_index(network: Network) -> dict[str, tuple[LayerWorkload, GemmView]]:
    return {g.name: (layer, g) for layer, g in network.gemm_rows()}


# --------------------------------------------------------------------------- pruning


@dataclass(frozen=True, eq=False)
class _Pruned:
    layer: LayerWorkload
    gemm: GemmView
    scheme: PruningScheme
    source: str
    mask: np.ndarray
    fmt: Format
    proxy: float

    def row(self) -> AppliedGemm:
        g = self.gemm
        nnz = int(np.count_nonzero(self.mask))
        return AppliedGemm(g.name, self.layer.name, self.scheme.spec, g.M, g.K, self.source,
                           format_name(self.scheme), nnz, 1.0 - nnz / (g.M * g.K),
                           int(self.fmt.nbytes), g.M * g.K * FLOAT32_BYTES, self.proxy)


def _resolve(network: Network, mapping: Mapping[str, str | PruningScheme],
             where: str | None) -> dict[str, PruningScheme]:
    try:
        return resolve_assignment(network, mapping)
    except (MappingError, SchemeError) as exc:
        if where is None:
            raise
        raise type(exc)(f"{where}: {exc}") from None


def _prune_all(network: Network, schemes: Mapping[str, PruningScheme],
               weights: Mapping[str, tuple[np.ndarray, str]], seed: int) -> list[_Pruned]:
    out = []
    gaussian = []
    for layer, g in network.prunable_rows():
        scheme = schemes[g.name]
        if g.name in weights:
            w, source = weights[g.name]
        else:
            w, source = gaussian_weights(g.name, (g.M, g.K), seed), "gaussian"
            gaussian.append(g.name)
        kernel = kernel_of(layer)
        try:
            mask = make_mask(w, scheme, kernel=kernel)
            fmt = encode(w, mask, scheme, kernel=kernel)
        except (SchemeError, ShapeError) as exc:
            raise type(exc)(f"GEMM {g.name!r} with {scheme.spec!r}: {exc}") from None
        out.append(_Pruned(layer, g, scheme, source, mask, fmt, retained_norm(w, mask)))
    if gaussian:
        log.warning("%d of %d GEMMs of %s have no weights (%s%s): using seeded Gaussian "
                    "weights (seed %d), so their masks are structural only", len(gaussian),
                    len(out), network.name, ", ".join(gaussian[:3]),
                    ", ..." if len(gaussian) > 3 else "", seed)
    return out


# --------------------------------------------------------------------------- formats file


def _format_arrays(fmt: Format) -> dict[str, np.ndarray]:
    return {f.name: getattr(fmt, f.name) for f in fields(fmt)
            if isinstance(getattr(fmt, f.name), np.ndarray)}


def _format_entry(pruned: _Pruned) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    fmt = pruned.fmt
    kind = format_name(pruned.scheme)
    entry: dict[str, Any] = {"kind": kind, "scheme": pruned.scheme.spec, "arrays": {}}
    for key in _SCALAR_FIELDS:
        if hasattr(fmt, key):
            value = getattr(fmt, key)
            entry[key] = list(value) if isinstance(value, tuple) else value
    arrays = {}
    for name, arr in _format_arrays(fmt).items():
        key = f"{pruned.gemm.name}/{name}"
        entry["arrays"][name] = key
        arrays[key] = arr
    return entry, arrays


def load_formats(path: str | os.PathLike[str]) -> dict[str, Format]:
    """Rebuild the compact formats written to ``formats.npz`` (GEMM row name -> format).

    Each format passes ``grimsim.pruning.check_format``; arrays are read-only, as ``encode``
    leaves them.
    """
    p = Path(path)
    data = _open_npz(p, "formats file")
    with data:
        if _META_KEY not in data.files:
            raise GrimsimError(f"formats file {str(p)!r} has no {_META_KEY!r} entry; it was "
                               "not written by grimsim apply")
        try:
            meta = json.loads(str(data[_META_KEY][()]))
        except (json.JSONDecodeError, TypeError) as exc:
            raise GrimsimError(f"formats file {str(p)!r}: {_META_KEY} is not JSON ({exc})"
                               ) from None
        if not isinstance(meta, dict) or meta.get("layout") != FORMATS_LAYOUT:
            raise GrimsimError(f"formats file {str(p)!r}: layout "
                               f"{meta.get('layout') if isinstance(meta, dict) else None!r}, "
                               f"expected {FORMATS_LAYOUT!r}")
        out: dict[str, Format] = {}
        for name, entry in meta.get("gemms", {}).items():
            out[name] = _rebuild(p, name, entry, data)
    return out


def _rebuild(p: Path, name: str, entry: Mapping[str, Any], data: Any) -> Format:
    where = f"formats file {str(p)!r}, GEMM {name!r}"
    try:
        cls = _FORMAT_CLASSES[entry["kind"]]
        kwargs: dict[str, Any] = {}
        for key, npz_key in entry["arrays"].items():
            arr = np.ascontiguousarray(data[npz_key])
            if cls is BCRFormat and key == "values":
                # on a cache line, the layout check_format and the kernels want
                arr = aligned_copy(arr.ravel())
            arr.setflags(write=False)
            kwargs[key] = arr
        for key in _SCALAR_FIELDS:
            if key in entry:
                value = entry[key]
                kwargs[key] = tuple(int(v) for v in value) if isinstance(value, list) \
                    else int(value)
        fmt: Format = cls(**kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise GrimsimError(f"{where}: malformed entry ({type(exc).__name__}: {exc})") from None
    try:
        check_format(fmt)
    except SchemeError as exc:
        raise GrimsimError(f"{where}: {exc}") from None
    return fmt


# --------------------------------------------------------------------------- writing


def _check_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """The output folder, if it is (or can be made) a writable directory."""
    p = Path(out_dir).expanduser()
    if p.exists() and not p.is_dir():
        raise GrimsimError(f"output folder {str(p)!r} exists and is not a directory")
    existing = p
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise GrimsimError(f"output folder {str(p)!r} cannot be created: {str(existing)!r} "
                           "is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GrimsimError(f"output folder {str(p)!r} is not writable ({str(existing)!r} "
                           "denies writing)")
    return p


def _staged_write(out_dir: Path, writers: Mapping[str, Callable[[Path], None]]) -> None:
    """Write every file as a temporary in ``out_dir``, then rename them all into place; on
    any error the temporaries are removed and no target is touched."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GrimsimError(f"output folder {str(out_dir)!r} cannot be created: "
                           f"{exc.strerror}") from None
    staged: list[tuple[Path, Path]] = []
    try:
        for name, write in writers.items():
            fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            os.close(fd)
            staged.append((Path(tmp_name), out_dir / name))
            write(Path(tmp_name))
        for tmp, target in staged:
            os.replace(tmp, target)
    except OSError as exc:
        raise GrimsimError(f"cannot write into {str(out_dir)!r}: {exc.strerror or exc}"
                           ) from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _npz_writer(arrays: Mapping[str, np.ndarray], compressed: bool) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as fh:  # a file object: numpy would append .npz to a name
            if compressed:
                np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
            else:
                np.savez(fh, **arrays)  # type: ignore[arg-type]

    return write


def _text_writer(text: str | bytes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)

    return write


def _writers(result: ApplyResult, pruned: Sequence[_Pruned]) -> dict[str, Callable[[Path], None]]:
    entries: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for item in pruned:
        entry, arr = _format_entry(item)
        entries[item.gemm.name] = entry
        arrays.update(arr)
    meta = {"layout": FORMATS_LAYOUT, "network": result.network, "gemms": entries}
    arrays[_META_KEY] = np.array(json.dumps(meta))
    return {
        MASKS_FILE: _npz_writer({p.gemm.name: p.mask for p in pruned}, compressed=True),
        FORMATS_FILE: _npz_writer(arrays, compressed=False),
        SUMMARY_FILE: _text_writer(json.dumps(result.summary(), indent=1) + "\n"),
    }


# --------------------------------------------------------------------------- public API


def _prepare(network: Network, mapping: Mapping[str, str | PruningScheme],
             weights: Mapping[str, tuple[np.ndarray, str]], seed: int,
             where: str | None) -> tuple[dict[str, PruningScheme], list[_Pruned]]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GrimsimError(f"seed must be a non-negative integer, got {seed!r}")
    schemes = _resolve(network, mapping, where)
    return schemes, _prune_all(network, schemes, weights, int(seed))


def _result(network: Network, out_dir: Path, pruned: Sequence[_Pruned], seed: int,
            onnx_path: Path | None = None) -> ApplyResult:
    return ApplyResult(network.name, out_dir, tuple(p.row() for p in pruned), int(seed),
                       {p.gemm.name: p.mask for p in pruned}, onnx_path)


def apply_mapping(network: Network, mapping: Mapping[str, str | PruningScheme],
                  weights: Mapping[str, np.ndarray] | None, out_dir: str | os.PathLike[str],
                  *, seed: int = 0, mapping_source: str | None = None) -> ApplyResult:
    """Mask every prunable GEMM row of ``network`` by ``mapping`` and write ``masks.npz``,
    ``formats.npz`` and ``summary.json`` into ``out_dir`` (module docstring).

    ``mapping``: layer or GEMM row name -> scheme (spec string or PruningScheme); rows not
    named stay dense. ``weights``: GEMM row name -> M x K array (others are Gaussian).
    ``mapping_source`` (e.g. the mapping file's path) prefixes mapping errors.
    """
    out = _check_out_dir(out_dir)
    given = {k: (v, "given") for k, v in check_weights(network, weights or {},
                                                        "weights").items()}
    _, pruned = _prepare(network, mapping, given, seed, mapping_source)
    result = _result(network, out, pruned, seed)
    _staged_write(out, _writers(result, pruned))
    log.info("applied the mapping to the %d GEMMs of %s: %s", len(pruned), network.name, out)
    return result


# --------------------------------------------------------------------------- ONNX


@dataclass(frozen=True)
class _OnnxPlan:
    """The pruned ONNX file, built in memory before anything is written."""

    name: str
    data: bytes


def _pruned_onnx(onnx_path: Path, network: Network, masks: Mapping[str, np.ndarray],
                 schemes: Mapping[str, PruningScheme]) -> _OnnxPlan:
    import onnx
    from onnx import numpy_helper

    from grimsim.network.onnx_import import onnx_weight_refs

    refs = onnx_weight_refs(onnx_path)
    rows = {g.name for _, g in network.prunable_rows()}
    not_plain = [r.row for r in refs if not r.initializer
                 and not schemes.get(r.row, PruningScheme.dense()).is_dense]
    if not_plain:
        raise ModelFormatError(
            f"{onnx_path}: the weights of {', '.join(map(repr, not_plain[:5]))} are computed "
            "from constants (not plain initializers), so a pruned copy cannot be written; "
            "keep them dense in the mapping or constant-fold the model first")
    model = onnx.load(str(onnx_path))
    inits = {t.name: t for t in model.graph.initializer}
    values: dict[str, np.ndarray] = {}
    users: dict[str, list[str]] = {}
    for ref in refs:
        if ref.row not in rows or schemes.get(ref.row, PruningScheme.dense()).is_dense:
            continue
        if ref.tensor not in inits:
            raise ModelFormatError(f"{onnx_path}: initializer {ref.tensor!r} of GEMM "
                                   f"{ref.row!r} is missing")
        value = values.get(ref.tensor)
        if value is None:
            value = numpy_helper.to_array(inits[ref.tensor])
        gemm = ref.to_gemm(value)
        mask = masks[ref.row]
        if gemm.shape != mask.shape:
            raise ShapeError(f"{onnx_path}: GEMM {ref.row!r}: initializer {ref.tensor!r} "
                             f"gives a {gemm.shape} view, the network a {mask.shape} one")
        values[ref.tensor] = ref.from_gemm(value, np.where(mask, gemm, np.zeros((), gemm.dtype)))
        users.setdefault(ref.tensor, []).append(ref.row)
    for tensor, names in users.items():
        if len(names) > 1 and any(r.layout != "rnn" for r in refs if r.tensor == tensor):
            log.warning("%s: initializer %r is shared by %s; it keeps the weights every one of "
                        "their masks keeps", onnx_path, tensor, ", ".join(names))
    for tensor, value in values.items():
        inits[tensor].CopyFrom(numpy_helper.from_array(value, tensor))
    try:
        data = model.SerializeToString()
    except ValueError as exc:  # protobuf's 2 GB limit
        raise ModelFormatError(f"{onnx_path}: the pruned model cannot be serialised ({exc})"
                               ) from None
    return _OnnxPlan(f"{onnx_path.stem}.pruned.onnx", data)


def _onnx_weights(onnx_path: Path) -> dict[str, np.ndarray]:
    from grimsim.network.onnx_import import read_onnx_weights

    return read_onnx_weights(onnx_path)


def _merged_weights(network: Network, onnx_weights: Mapping[str, np.ndarray],
                    given: Mapping[str, np.ndarray] | None,
                    what: str) -> dict[str, tuple[np.ndarray, str]]:
    rows = {g.name for _, g in network.prunable_rows()}
    from_file = {k: v for k, v in onnx_weights.items() if k in rows}
    merged = {k: (v, "onnx") for k, v in check_weights(network, from_file,
                                                       "ONNX initializers").items()}
    merged.update({k: (v, "given") for k, v in check_weights(network, given or {},
                                                              what).items()})
    return merged


def apply_onnx(onnx_path: str | os.PathLike[str], mapping: Mapping[str, str | PruningScheme],
               out_dir: str | os.PathLike[str], *, input_shape: Sequence[int] | None = None
               ) -> Path:
    """Write ``out_dir/<stem>.pruned.onnx``: the model with its pruned initializers zeroed
    (masks from the initializers themselves); every other byte of the graph is kept."""
    path = Path(onnx_path)
    out = _check_out_dir(out_dir)
    network = _load(path, input_shape, None)
    weights = _merged_weights(network, _onnx_weights(path), None, "weights")
    schemes, pruned = _prepare(network, mapping, weights, 0, None)
    plan = _pruned_onnx(path, network, {p.gemm.name: p.mask for p in pruned}, schemes)
    _staged_write(out, {plan.name: _text_writer(plan.data)})
    return out / plan.name


def _load(model: str | os.PathLike[str] | Network, input_shape: Sequence[int] | None,
          seq_len: int | None) -> Network:
    if isinstance(model, Network):
        return model
    from grimsim.network.loader import load_network

    return load_network(str(model), input_shape=input_shape, seq_len=seq_len)


def apply_model(model: str | os.PathLike[str] | Network,
                mapping: Mapping[str, str | PruningScheme], out_dir: str | os.PathLike[str], *,
                weights: WeightsArg = None, seed: int = 0,
                input_shape: Sequence[int] | None = None, seq_len: int | None = None,
                mapping_source: str | None = None) -> ApplyResult:
    """``grimsim apply``: load ``model`` (zoo name, .onnx, ncnn .param or a Network), take its
    weights (``weights``: a dict or an .npz path; for ONNX also the initializers, which the
    given ones override), and write masks, formats and summary - plus, for an .onnx model,
    ``<stem>.pruned.onnx`` - into ``out_dir``, all or nothing."""
    out = _check_out_dir(out_dir)
    given = load_weights(weights) if isinstance(weights, (str, os.PathLike)) else weights
    what = f"weights file {str(weights)!r}" if isinstance(weights, (str, os.PathLike)) \
        else "weights"
    network = _load(model, input_shape, seq_len)
    onnx_path = None if isinstance(model, Network) else Path(model)
    is_onnx = onnx_path is not None and onnx_path.suffix.lower() == ".onnx"
    if onnx_path is not None and is_onnx:
        merged = _merged_weights(network, _onnx_weights(onnx_path), given, what)
    else:
        merged = {k: (v, "given") for k, v in check_weights(network, given or {},
                                                            what).items()}
    schemes, pruned = _prepare(network, mapping, merged, seed, mapping_source)
    plan = None
    if onnx_path is not None and is_onnx:
        plan = _pruned_onnx(onnx_path, network, {p.gemm.name: p.mask for p in pruned},
                            schemes)
    result = _result(network, out, pruned, seed,
                     out / plan.name if plan is not None else None)
    writers = _writers(result, pruned)
    if plan is not None:
        writers[plan.name] = _text_writer(plan.data)
    _staged_write(out, writers)
    log.info("applied the mapping to the %d GEMMs of %s: %s", len(pruned), network.name, out)
    return result
