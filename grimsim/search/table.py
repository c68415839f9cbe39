"""The candidate table: what the search chooses from, with the cost numbers as plain arrays.

The decision variables are the prunable layers; each has a list of candidate scheme specs
(index 0 is always ``"dense"``) and, per candidate, ``latency_s``, ``loss`` (an accuracy-side
proxy; the search does not care how it was computed) and ``model_bytes``. The layers that are
not decision variables contribute the constants ``fixed_latency_s`` and ``fixed_bytes``.

The table is the only way cost numbers reach the search: whoever builds it (the API, with a
cost model and the accuracy proxy) turns estimates into arrays; the solvers never see a model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from grimsim.errors import SchemeError, SearchError
from grimsim.pruning.scheme import PruningScheme, parse_spec

#: The JSON layout version of ``CandidateTable.to_json``.
TABLE_FORMAT = "grimsim.candidate_table/1"

_COLUMNS = ("latency_s", "loss", "model_bytes")


def _readonly(values: Any, what: str) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SearchError(f"{what} must be numbers, got {values!r}") from None
    arr.setflags(write=False)
    return arr


def _check_column(arr: np.ndarray, layer: str, column: str, specs: Sequence[str]) -> None:
    if arr.ndim != 1:
        raise SearchError(f"layer {layer!r}: {column} must be a flat list, one value per "
                          f"candidate, got shape {arr.shape}")
    if arr.shape[0] != len(specs):
        raise SearchError(f"layer {layer!r}: {len(specs)} candidate specs but {arr.shape[0]} "
                          f"{column} values (ragged table); give one value per candidate")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        i = int(bad[0])
        value = float(arr[i])
        what = "NaN" if math.isnan(value) else ("infinite" if math.isinf(value) else "negative")
        raise SearchError(f"layer {layer!r}, candidate {specs[i]!r}: {column} = {value!r} is "
                          f"{what}; every {column} must be a finite number >= 0")


def _check_scalar(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SearchError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out) or out < 0:
        raise SearchError(f"{what} = {value!r} must be a finite number >= 0")
    return out


@dataclass(frozen=True, eq=False)
class CandidateTable:
    """Per prunable layer: candidate specs and their latency, loss and model bytes.

    ``layers[i]`` is the i-th decision variable (in network order, which the pairwise terms
    of the evolutionary solver rely on); ``specs[i][0] == "dense"``. The per-candidate
    columns are read-only float64 arrays, ``latency_s[i][j]`` being layer i's latency under
    ``specs[i][j]``. Construct with ``from_lists`` / ``from_rows`` / ``from_json``; the
    constructor validates (SearchError) and freezes the arrays.
    """

    layers: tuple[str, ...]
    specs: tuple[tuple[str, ...], ...]
    latency_s: tuple[np.ndarray, ...]
    loss: tuple[np.ndarray, ...]
    model_bytes: tuple[np.ndarray, ...]
    fixed_latency_s: float = 0.0
    fixed_bytes: float = 0.0

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not layers:
            raise SearchError("the candidate table has no layers: the network has no prunable "
                              "layer to search over")
        for name in layers:
            if not isinstance(name, str) or not name:
                raise SearchError(f"layer names must be non-empty strings, got {name!r}")
        seen: set[str] = set()
        for name in layers:
            if name in seen:
                raise SearchError(f"layer {name!r} appears twice in the candidate table")
            seen.add(name)
        count = len(layers)
        columns = {"specs": self.specs, "latency_s": self.latency_s, "loss": self.loss,
                   "model_bytes": self.model_bytes}
        for key, value in columns.items():
            if len(value) != count:
                raise SearchError(f"{count} layers but {len(value)} entries of {key} (ragged "
                                  f"table); give one list per layer")
        specs = tuple(tuple(s) for s in self.specs)
        for name, layer_specs in zip(layers, specs, strict=True):
            _check_specs(name, layer_specs)
        frozen: dict[str, tuple[np.ndarray, ...]] = {}
        for column in _COLUMNS:
            checked = []
            for name, layer_specs, values in zip(layers, specs, getattr(self, column),
                                                 strict=True):
                arr = _readonly(values, f"layer {name!r}: {column}")
                _check_column(arr, name, column, layer_specs)
                checked.append(arr)
            frozen[column] = tuple(checked)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "specs", specs)
        for column, arrays in frozen.items():
            object.__setattr__(self, column, arrays)
        object.__setattr__(self, "fixed_latency_s",
                           _check_scalar(self.fixed_latency_s, "fixed_latency_s"))
        object.__setattr__(self, "fixed_bytes", _check_scalar(self.fixed_bytes, "fixed_bytes"))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_lists(cls, layers: Sequence[str], specs: Sequence[Sequence[str]],
                   latency_s: Sequence[Sequence[float]], loss: Sequence[Sequence[float]],
                   model_bytes: Sequence[Sequence[float]], fixed_latency_s: float = 0.0,
                   fixed_bytes: float = 0.0) -> CandidateTable:
        """From parallel per-layer lists (``specs[i][0]`` must be ``"dense"``)."""
        # the constructor turns every per-layer list into a read-only float64 array
        return cls(tuple(layers), tuple(tuple(s) for s in specs),
                   tuple(latency_s), tuple(loss), tuple(model_bytes),  # type: ignore[arg-type]
                   fixed_latency_s, fixed_bytes)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, float, float, float]],
                  fixed_latency_s: float = 0.0, fixed_bytes: float = 0.0) -> CandidateTable:
        """From ``(layer, spec, latency_s, loss, model_bytes)`` rows in any order.

        Layers keep the order of their first row; each layer's dense row moves to index 0
        (it must be present).
        """
        order: list[str] = []
        grouped: dict[str, list[tuple[str, float, float, float]]] = {}
        for n, row in enumerate(rows):
            if len(row) != 5:
                raise SearchError(f"row {n}: expected (layer, spec, latency_s, loss, "
                                  f"model_bytes), got {row!r}")
            layer, spec, lat, loss, nbytes = row
            if layer not in grouped:
                order.append(layer)
                grouped[layer] = []
            grouped[layer].append((spec, lat, loss, nbytes))
        specs, lats, losses, sizes = [], [], [], []
        for layer in order:
            entries = grouped[layer]
            dense = [i for i, e in enumerate(entries) if _is_dense(e[0])]
            if not dense:
                raise SearchError(f"layer {layer!r} has no 'dense' candidate; every layer needs "
                                  "one (it is the reference and the fallback)")
            entries.insert(0, entries.pop(dense[0]))
            specs.append(tuple(e[0] for e in entries))
            lats.append([e[1] for e in entries])
            losses.append([e[2] for e in entries])
            sizes.append([e[3] for e in entries])
        return cls.from_lists(order, specs, lats, losses, sizes, fixed_latency_s, fixed_bytes)

    # ------------------------------------------------------------------ derived
    def __len__(self) -> int:
        return len(self.layers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CandidateTable):
            return NotImplemented
        return (self.layers == other.layers and self.specs == other.specs
                and self.fixed_latency_s == other.fixed_latency_s
                and self.fixed_bytes == other.fixed_bytes
                and all(np.array_equal(a, b) for column in _COLUMNS
                        for a, b in zip(getattr(self, column), getattr(other, column),
                                        strict=True)))

    __hash__ = None  # type: ignore[assignment]

    @cached_property
    def sizes(self) -> np.ndarray:
        """Number of candidates per layer."""
        return np.array([len(s) for s in self.specs], dtype=np.int64)

    @cached_property
    def offsets(self) -> np.ndarray:
        """Start of each layer's candidates in the flat arrays (length ``len(self) + 1``)."""
        return np.concatenate(([0], np.cumsum(self.sizes))).astype(np.int64)

    @cached_property
    def flat_latency_s(self) -> np.ndarray:
        return np.concatenate(self.latency_s)

    @cached_property
    def flat_loss(self) -> np.ndarray:
        return np.concatenate(self.loss)

    @cached_property
    def flat_model_bytes(self) -> np.ndarray:
        return np.concatenate(self.model_bytes)

    def index(self, layer: str) -> int:
        try:
            return self.layers.index(layer)
        except ValueError:
            raise SearchError(f"layer {layer!r} is not in the candidate table") from None

    def dense_choice(self) -> np.ndarray:
        return np.zeros(len(self), dtype=np.int64)

    def check_choice(self, choice: Any) -> np.ndarray:
        """``choice`` as an int array of shape (layers,) or (points, layers), range-checked."""
        arr = np.asarray(choice)
        if arr.dtype.kind not in "iu" or arr.ndim not in (1, 2) or arr.shape[-1] != len(self):
            raise SearchError(f"a choice is one candidate index per layer ({len(self)} ints), "
                              f"got shape {arr.shape} dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= self.sizes)
        if bad.any():
            layer = int(np.argwhere(bad)[0][-1])
            raise SearchError(f"layer {self.layers[layer]!r} has {self.sizes[layer]} candidates; "
                              f"candidate index {arr[..., layer].ravel()[0]} is out of range")
        return arr

    def per_layer(self, choice: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-layer (latency_s, loss, model_bytes) of the chosen candidates."""
        flat = self.offsets[:-1] + self.check_choice(choice)
        return self.flat_latency_s[flat], self.flat_loss[flat], self.flat_model_bytes[flat]

    def totals(self, choice: Any) -> tuple[Any, Any, Any]:
        """Whole-network (latency_s, loss, model_bytes) of one choice (floats) or of a 2-D
        batch of choices (arrays), the fixed layers included."""
        lat, loss, nbytes = self.per_layer(choice)
        out = (lat.sum(axis=-1) + self.fixed_latency_s, loss.sum(axis=-1),
               nbytes.sum(axis=-1) + self.fixed_bytes)
        if np.ndim(out[0]) == 0:
            return float(out[0]), float(out[1]), float(out[2])
        return out

    def assignment(self, choice: Any) -> dict[str, str]:
        """Layer name -> chosen spec."""
        arr = self.check_choice(choice)
        if arr.ndim != 1:
            raise SearchError("assignment() takes a single choice (one index per layer)")
        return {name: specs[int(c)] for name, specs, c in zip(self.layers, self.specs, arr,
                                                                strict=True)}

    def choice_of(self, mapping: Mapping[str, str], nearest: bool = False) -> np.ndarray:
        """The candidate indices of a layer -> spec mapping (layers not named: dense).

        With ``nearest=False`` every spec must be one of the layer's candidates (compared
        after canonicalising the spec string). With ``nearest=True`` a spec that is not a
        candidate maps to the closest one: same kind and block with the nearest rate, else
        same kind, else the nearest rate of any kind (used to warm-start from rule-based
        mappings).
        """
        unknown = sorted(set(mapping) - set(self.layers))
        if unknown:
            raise SearchError(f"the mapping names layers that are not in the candidate table: "
                              f"{', '.join(unknown[:10])}")
        choice = self.dense_choice()
        for i, name in enumerate(self.layers):
            spec = mapping.get(name)
            if spec is None:
                continue
            canon = self._canonical_specs[i]
            try:
                wanted = parse_spec(spec)
            except SchemeError as exc:
                raise SearchError(f"layer {name!r}: {exc}") from None
            key = wanted.spec
            if key in canon:
                choice[i] = canon[key]
            elif nearest:
                choice[i] = _nearest(wanted, [parse_spec(s) for s in self.specs[i]])
            else:
                raise SearchError(f"layer {name!r}: {spec!r} is not one of its "
                                  f"{len(self.specs[i])} candidates")
        return choice

    @cached_property
    def _canonical_specs(self) -> tuple[dict[str, int], ...]:
        out = []
        for specs in self.specs:
            index: dict[str, int] = {}
            for j, spec in enumerate(specs):
                index.setdefault(parse_spec(spec).spec, j)
            out.append(index)
        return tuple(out)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "fixed_latency_s": self.fixed_latency_s,
            "fixed_bytes": self.fixed_bytes,
            "layers": [
                {"name": name, "specs": list(specs),
                 **{column: getattr(self, column)[i].tolist() for column in _COLUMNS}}
                for i, (name, specs) in enumerate(zip(self.layers, self.specs, strict=True))
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateTable:
        if not isinstance(data, Mapping) or not isinstance(data.get("layers"), list):
            raise SearchError("a candidate table is a JSON object with a 'layers' list")
        if data.get("format", TABLE_FORMAT) != TABLE_FORMAT:
            raise SearchError(f"candidate table format {data.get('format')!r} is not "
                              f"{TABLE_FORMAT!r}")
        names, specs, columns = [], [], {c: [] for c in _COLUMNS}  # type: ignore[var-annotated]
        for n, entry in enumerate(data["layers"]):
            if not isinstance(entry, Mapping):
                raise SearchError(f"candidate table layer #{n} must be an object")
            missing = [k for k in ("name", "specs", *_COLUMNS) if k not in entry]
            if missing:
                raise SearchError(f"candidate table layer #{n} ({entry.get('name')!r}) lacks "
                                  f"{', '.join(missing)}")
            names.append(entry["name"])
            specs.append(tuple(entry["specs"]))
            for c in _COLUMNS:
                columns[c].append(entry[c])
        return cls.from_lists(names, specs, columns["latency_s"], columns["loss"],
                              columns["model_bytes"], data.get("fixed_latency_s", 0.0),
                              data.get("fixed_bytes", 0.0))

    @classmethod
    def from_json(cls, text: str) -> CandidateTable:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SearchError(f"candidate table JSON is malformed: {exc}") from None
        return cls.from_dict(data)


def _is_dense(spec: object) -> bool:
    return isinstance(spec, str) and spec.strip().lower() == "dense"


def _check_specs(layer: str, specs: tuple[str, ...]) -> None:
    if not specs:
        raise SearchError(f"layer {layer!r} has no candidates; it needs at least 'dense'")
    if not _is_dense(specs[0]):
        raise SearchError(f"layer {layer!r}: candidate 0 must be 'dense' (the reference), got "
                          f"{specs[0]!r}")
    seen: dict[str, str] = {}
    for spec in specs:
        try:
            canon = parse_spec(spec).spec
        except SchemeError as exc:
            raise SearchError(f"layer {layer!r}: {exc}") from None
        if canon in seen:
            raise SearchError(f"layer {layer!r}: candidate {spec!r} appears twice (as "
                              f"{seen[canon]!r}); give each scheme once")
        seen[canon] = spec


def _nearest(wanted: PruningScheme, options: list[PruningScheme]) -> int:
    rate = wanted.target_sparsity

    def distance(scheme: PruningScheme) -> tuple[int, float]:
        tier = 2
        if scheme.kind == wanted.kind:
            tier = 0 if scheme.block == wanted.block else 1
        return tier, abs(scheme.target_sparsity - rate)

    return min(range(len(options)), key=lambda j: distance(options[j]))
