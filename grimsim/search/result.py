"""What a search returns (``SearchResult``) and the mapping files it writes and reads.

Mapping file (DESIGN.md)::

    {"_meta": {"grimsim", "cost_model", "device", "created"}, "network": "<name or path>",
     "layers": {"<layer name>": "<scheme spec>"}}

Layers not named stay dense. ``read_mapping_file`` checks the file against a network when one
is given (unknown layers, illegal schemes) and raises MappingError saying what to fix.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grimsim.errors import MappingError, SchemeError, SearchError
from grimsim.meta import run_meta
from grimsim.network.graph import Network
from grimsim.pruning.scheme import check_legal, parse_spec

log = logging.getLogger(__name__)

#: The JSON layout version of ``SearchResult.to_json``.
RESULT_FORMAT = "grimsim.search_result/1"


@dataclass(frozen=True)
class LayerChoice:
    """The scheme chosen for one decision layer and what it costs."""

    name: str
    scheme: str
    latency_s: float
    loss: float
    model_bytes: float


@dataclass(frozen=True)
class ParetoPoint:
    """One point of the front: totals and the scheme of every decision layer (in the order
    of ``SearchResult.layers``)."""

    latency_s: float
    loss: float
    model_bytes: float
    schemes: tuple[str, ...]


@dataclass(frozen=True)
class SearchResult:
    """A solved search: the chosen mapping, its totals, the front and how it was found.

    ``objective`` is ``min_loss`` (``target`` = latency target in seconds), ``min_latency``
    (``target`` = loss budget) or ``pareto`` (no target; the chosen mapping is the front's
    knee, the point farthest below the line joining its two ends once both axes are scaled
    to [0, 1]). Totals include the layers that are not searched (``fixed_latency_s``,
    ``fixed_bytes``). ``pareto_complete`` says whether ``pareto`` holds every non-dominated
    point (it may be thinned to a maximum count) or a sample of exact Pareto points.
    ``extra_latency_s`` is the non-separable part (the evolutionary solver's pairwise terms)
    already included in ``latency_s``.
    """

    objective: str
    target: float | None
    solver: str
    layers: tuple[LayerChoice, ...]
    latency_s: float
    loss: float
    model_bytes: float
    dense_latency_s: float
    dense_model_bytes: float
    fixed_latency_s: float
    fixed_bytes: float
    pareto: tuple[ParetoPoint, ...]
    pareto_complete: bool
    search_s: float
    extra_latency_s: float = 0.0
    notes: tuple[str, ...] = field(default=())

    # ------------------------------------------------------------------ views
    @property
    def mapping(self) -> dict[str, str]:
        """Layer name -> chosen scheme spec (every decision layer, dense ones included)."""
        return {c.name: c.scheme for c in self.layers}

    @property
    def speedup(self) -> float:
        return self.dense_latency_s / self.latency_s if self.latency_s > 0 else float("inf")

    def point_mapping(self, point: ParetoPoint | int) -> dict[str, str]:
        """Layer name -> spec of a front point (or of the front's i-th point)."""
        if isinstance(point, int):
            point = self.pareto[point]
        return {c.name: s for c, s in zip(self.layers, point.schemes, strict=True)}

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RESULT_FORMAT,
            "objective": self.objective,
            "target": self.target,
            "solver": self.solver,
            "latency_s": self.latency_s,
            "loss": self.loss,
            "model_bytes": self.model_bytes,
            "dense_latency_s": self.dense_latency_s,
            "dense_model_bytes": self.dense_model_bytes,
            "fixed_latency_s": self.fixed_latency_s,
            "fixed_bytes": self.fixed_bytes,
            "extra_latency_s": self.extra_latency_s,
            "search_s": self.search_s,
            "notes": list(self.notes),
            "layers": [{"name": c.name, "scheme": c.scheme, "latency_s": c.latency_s,
                        "loss": c.loss, "model_bytes": c.model_bytes} for c in self.layers],
            "pareto_complete": self.pareto_complete,
            "pareto": [{"latency_s": p.latency_s, "loss": p.loss, "model_bytes": p.model_bytes,
                        "schemes": list(p.schemes)} for p in self.pareto],
        }

    def to_json(self, indent: int | None = None) -> str:
        """JSON text; ``from_json(to_json())`` gives back an equal result (floats exactly)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchResult:
        if not isinstance(data, Mapping):
            raise SearchError("a search result is a JSON object")
        if data.get("format") != RESULT_FORMAT:
            raise SearchError(f"not a search result: format {data.get('format')!r}, expected "
                              f"{RESULT_FORMAT!r}")
        try:
            layers = tuple(LayerChoice(str(c["name"]), str(c["scheme"]), float(c["latency_s"]),
                                       float(c["loss"]), float(c["model_bytes"]))
                           for c in data["layers"])
            pareto = tuple(ParetoPoint(float(p["latency_s"]), float(p["loss"]),
                                       float(p["model_bytes"]),
                                       tuple(str(s) for s in p["schemes"]))
                           for p in data["pareto"])
            target = data["target"]
            return cls(
                objective=str(data["objective"]),
                target=None if target is None else float(target),
                solver=str(data["solver"]), layers=layers,
                latency_s=float(data["latency_s"]), loss=float(data["loss"]),
                model_bytes=float(data["model_bytes"]),
                dense_latency_s=float(data["dense_latency_s"]),
                dense_model_bytes=float(data["dense_model_bytes"]),
                fixed_latency_s=float(data["fixed_latency_s"]),
                fixed_bytes=float(data["fixed_bytes"]), pareto=pareto,
                pareto_complete=bool(data["pareto_complete"]),
                search_s=float(data["search_s"]),
                extra_latency_s=float(data.get("extra_latency_s", 0.0)),
                notes=tuple(str(n) for n in data.get("notes", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise SearchError(f"malformed search result: {type(exc).__name__}: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> SearchResult:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SearchError(f"search result JSON is malformed: {exc}") from None
        return cls.from_dict(data)

    def summary(self, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``grimsim search --json`` payload (milliseconds), with ``_meta``."""
        return {
            "objective": self.objective,
            "target": self.target,
            "solver": self.solver,
            "latency_ms": self.latency_s * 1e3,
            "loss": self.loss,
            "model_bytes": self.model_bytes,
            "dense_latency_ms": self.dense_latency_s * 1e3,
            "dense_model_bytes": self.dense_model_bytes,
            "search_s": self.search_s,
            "layers": [{"name": c.name, "scheme": c.scheme, "latency_ms": c.latency_s * 1e3,
                        "loss": c.loss} for c in self.layers],
            "pareto": [{"latency_ms": p.latency_s * 1e3, "loss": p.loss} for p in self.pareto],
            "_meta": run_meta(**dict(meta or {})),
        }

    def to_mapping_file(self, network_name: str, meta: Mapping[str, Any] | None = None
                        ) -> dict[str, Any]:
        """The mapping file of DESIGN.md for the chosen mapping (write it with json.dump)."""
        return mapping_file(self.mapping, network_name, meta)


# --------------------------------------------------------------------------- mapping files


@dataclass(frozen=True)
class SchemeAssignment:
    """Layer -> scheme spec, as read from a mapping file; layers not named are dense."""

    network: str | None
    schemes: tuple[tuple[str, str], ...]
    meta: tuple[tuple[str, Any], ...] = ()
    source: str | None = None

    def spec(self, layer: str) -> str:
        for name, spec in self.schemes:
            if name == layer:
                return spec
        return "dense"

    def as_dict(self) -> dict[str, str]:
        return dict(self.schemes)

    def __len__(self) -> int:
        return len(self.schemes)


def mapping_file(mapping: Mapping[str, str], network_name: str,
                 meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"_meta", "network", "layers"}`` for a layer -> spec mapping."""
    return {"_meta": run_meta(**dict(meta or {})), "network": network_name,
            "layers": {name: str(spec) for name, spec in mapping.items()}}


def _load(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise MappingError(f"mapping file {str(p)!r} not found; give the path of a file "
                           "written by 'grimsim search --out'") from None
    except IsADirectoryError:
        raise MappingError(f"mapping file {str(p)!r} is a directory, not a JSON file") from None
    except OSError as exc:
        raise MappingError(f"mapping file {str(p)!r} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MappingError(f"mapping file {str(p)!r} is not text (expected JSON)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MappingError(f"mapping file {str(p)!r} is not valid JSON: {exc.msg} at line "
                           f"{exc.lineno}, column {exc.colno}") from None


def read_mapping_file(source: str | os.PathLike[str] | Mapping[str, Any],
                      network: Network | None = None) -> SchemeAssignment:
    """Read and validate a mapping file (a path, or its already-parsed dict).

    Checks the layout, every spec's grammar and, when ``network`` is given, that every
    named layer exists and can take its scheme. Raises MappingError naming the file, the
    layer and what to fix.
    """
    where = "mapping" if isinstance(source, Mapping) else f"mapping file {str(source)!r}"
    data = source if isinstance(source, Mapping) else _load(source)
    if not isinstance(data, Mapping):
        raise MappingError(f"{where}: the top level must be a JSON object with 'network' and "
                           f"'layers', got {type(data).__name__}")
    if "layers" not in data:
        raise MappingError(f"{where}: no 'layers' object; expected {{\"network\": ..., "
                           "\"layers\": {\"<layer>\": \"<scheme spec>\"}}")
    layers = data["layers"]
    if not isinstance(layers, Mapping):
        raise MappingError(f"{where}: 'layers' must be an object of layer name -> scheme spec, "
                           f"got {type(layers).__name__}")
    name = data.get("network")
    if name is not None and not isinstance(name, str):
        raise MappingError(f"{where}: 'network' must be a string (a zoo name or a model path)")
    meta = data.get("_meta", {})
    if not isinstance(meta, Mapping):
        raise MappingError(f"{where}: '_meta' must be an object")
    schemes: list[tuple[str, str]] = []
    for layer, spec in layers.items():
        if not isinstance(spec, str):
            raise MappingError(f"{where}: layer {layer!r}: the scheme must be a spec string "
                               f"such as 'bcr:16x32:0.75', got {spec!r}")
        try:
            canonical = parse_spec(spec).spec
        except SchemeError as exc:
            raise MappingError(f"{where}: layer {layer!r}: {exc}") from None
        schemes.append((str(layer), canonical))
    if network is not None:
        _check_against(where, schemes, network)
        if name is not None and name != network.name and Path(name).stem != network.name:
            log.warning("%s was written for network %r, applying it to %r", where, name,
                        network.name)
    return SchemeAssignment(name, tuple(schemes), tuple(sorted(meta.items())),
                            None if isinstance(source, Mapping) else str(source))


def _check_against(where: str, schemes: list[tuple[str, str]], network: Network) -> None:
    names = [wl.name for wl in network.layers()]
    unknown = [layer for layer, _ in schemes if layer not in network]
    if unknown:
        hints = []
        for layer in unknown[:5]:
            close = difflib.get_close_matches(layer, names, n=1)
            hints.append(f"{layer!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise MappingError(f"{where}: network {network.name!r} has no layer "
                           f"{', '.join(hints)}{more}; 'grimsim info {network.name}' lists "
                           "its layers")
    for layer, spec in schemes:
        try:
            check_legal(spec, network.layer(layer))
        except SchemeError as exc:
            raise MappingError(f"{where}: {exc}") from None
