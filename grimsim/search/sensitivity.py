"""The accuracy side of the search: what pruning one layer with one scheme costs in accuracy.

The loss of a candidate (layer L, scheme s), which the search adds up over layers:

* the accuracy drop a user measured for (L, s), when a sensitivity table has it (a negative
  drop counts as 0);
* else ``weight_L * (1 - retained_norm)``: the fraction of L's squared weight norm that s
  removes (``grimsim.pruning.retained_norm`` on real weights, or its Gaussian expectation
  ``expected_retained_norm`` without them; ``proxy_retained_norm`` picks), scaled by a
  per-layer sensitivity weight.

Sensitivity weights: ``uniform_weights`` gives every layer the same weight (1.0: the plain
proxy, what the search uses with no measurements). ``fit_sensitivity_weights`` fits, for each
layer of a table, the least-squares slope through the origin of measured drop against
``1 - retained_norm`` over that layer's rows, clamped at 0; the proxy of that layer's
unmeasured candidates is then on the table's scale (accuracy drop), so measured and proxy
losses can be added. Layers absent from the table keep whatever default the caller chooses
(``weights.get(layer, default)``).

Sensitivity table CSV (UTF-8, comma separated; ``write_sensitivity_csv`` writes exactly this)::

    layer,scheme,rate,accuracy_drop
    conv2,bcr:4x4:0.75,0.75,0.0123

* ``layer``: a layer name of the network (or, for layers with several GEMMs, a GEMM name);
* ``scheme``: a scheme spec string (DESIGN.md grammar), stored in canonical form;
* ``rate``: the fraction of the layer's weights the scheme actually removed (the reached
  sparsity, in [0, 1)); recorded, not used for lookup;
* ``accuracy_drop``: dense top-1 accuracy minus pruned accuracy, as a fraction in [-1, 1]
  (0.02 = two percentage points; negative when pruning helped).

Columns may come in any order and extra columns are ignored; blank lines are skipped. Each
(layer, scheme) may appear once. Every problem raises ``MappingError`` naming the file, the
line and what to fix.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grimsim.errors import MappingError, SchemeError, SearchError
from grimsim.network.graph import Network
from grimsim.network.workload import GemmView, LayerWorkload
from grimsim.pruning import (
    PruningScheme,
    check_legal,
    expected_retained_norm,
    make_mask,
    parse_spec,
    retained_norm,
)
from grimsim.pruning.scheme import kernel_of

COLUMNS = ("layer", "scheme", "rate", "accuracy_drop")
_HEADER_HINT = "the header must be: " + ",".join(COLUMNS)


@dataclass(frozen=True)
class SensitivityEntry:
    """One measured row: pruning ``layer`` with ``scheme`` (reaching ``rate`` removed) cost
    ``accuracy_drop`` (fraction of top-1 accuracy). ``line``: where it was read, if read."""

    layer: str
    scheme: PruningScheme
    rate: float
    accuracy_drop: float
    line: int | None = field(default=None, compare=False)

    @property
    def spec(self) -> str:
        return self.scheme.spec


@dataclass(frozen=True)
class SensitivityTable:
    """Measured accuracy drops per (layer, scheme); ``drop`` looks one up.

    Construction checks the entries (finite values in range, no (layer, scheme) twice) and
    raises MappingError naming ``source`` and the lines involved.
    """

    entries: tuple[SensitivityEntry, ...] = ()
    source: str = "<table>"
    _index: dict[tuple[str, PruningScheme], SensitivityEntry] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        index: dict[tuple[str, PruningScheme], SensitivityEntry] = {}
        for e in self.entries:
            where = _where(self.source, e.line)
            _check_values(e.layer, e.rate, e.accuracy_drop, where)
            key = (e.layer, e.scheme)
            if key in index:
                first = index[key].line
                raise MappingError(
                    f"{where}: layer {e.layer!r} with scheme {e.spec!r} appears twice"
                    + (f" (first on line {first})" if first is not None else "")
                    + "; keep one measurement per (layer, scheme)")
            index[key] = e
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.entries)

    def drop(self, layer: str, scheme: PruningScheme | str) -> float | None:
        """The measured accuracy drop of ``layer`` under ``scheme`` (a scheme or any spec
        string that parses to it), or None when the table does not have it."""
        key = (layer, scheme if isinstance(scheme, PruningScheme) else parse_spec(scheme))
        entry = self._index.get(key)
        return None if entry is None else entry.accuracy_drop

    def layers(self) -> tuple[str, ...]:
        """Layer names in the table, in first-appearance order."""
        return tuple(dict.fromkeys(e.layer for e in self.entries))

    def for_layer(self, layer: str) -> tuple[SensitivityEntry, ...]:
        return tuple(e for e in self.entries if e.layer == layer)


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line is not None else source


def _check_values(layer: str, rate: float, drop: float, where: str) -> None:
    if not layer or layer != layer.strip():
        raise MappingError(f"{where}: layer name {layer!r} must be non-empty without "
                           "surrounding spaces")
    if not math.isfinite(rate) or not 0.0 <= rate < 1.0:
        raise MappingError(f"{where}: rate {rate!r} must be the fraction of weights removed, "
                           "in [0, 1)")
    if not math.isfinite(drop) or not -1.0 <= drop <= 1.0:
        raise MappingError(f"{where}: accuracy_drop {drop!r} must be a fraction of accuracy "
                           "in [-1, 1] (0.02 = two percentage points)")


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MappingError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise MappingError(f"{where}: {column} {text!r} must be a finite number")
    return value


def parse_sensitivity_csv(text: str, source: str = "<string>") -> SensitivityTable:
    """Parse sensitivity-table CSV text (format in the module docstring)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    entries: list[SensitivityEntry] = []
    try:
        for row in reader:
            line = reader.line_num
            where = _where(source, line)
            if not row or all(not cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                missing = [c for c in COLUMNS if c not in header]
                if missing:
                    raise MappingError(f"{where}: header lacks column(s) {', '.join(missing)}; "
                                       f"{_HEADER_HINT} (got {','.join(header)})")
                dup = sorted({c for c in COLUMNS if header.count(c) > 1})
                if dup:
                    raise MappingError(f"{where}: column(s) {', '.join(dup)} appear twice in "
                                       "the header")
                columns = {c: header.index(c) for c in COLUMNS}
                continue
            if len(row) != len(header):
                raise MappingError(f"{where}: {len(row)} field(s) where the header has "
                                   f"{len(header)}; {_HEADER_HINT}")
            layer = row[columns["layer"]].strip()
            spec = row[columns["scheme"]].strip()
            try:
                scheme = parse_spec(spec)
            except SchemeError as exc:
                raise MappingError(f"{where}: scheme {spec!r}: {exc}") from None
            rate = _number(row[columns["rate"]].strip(), "rate", where)
            drop = _number(row[columns["accuracy_drop"]].strip(), "accuracy_drop", where)
            _check_values(layer, rate, drop, where)
            entries.append(SensitivityEntry(layer, scheme, rate, drop, line))
    except csv.Error as exc:
        raise MappingError(f"{_where(source, reader.line_num)}: malformed CSV: {exc}") from None
    if header is None:
        raise MappingError(f"{source}: empty sensitivity table; {_HEADER_HINT}")
    return SensitivityTable(tuple(entries), source)


def read_sensitivity_csv(path: str | Path) -> SensitivityTable:
    """Read a sensitivity table from a CSV file (format in the module docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{p}: cannot read the sensitivity table: {exc}") from None
    return parse_sensitivity_csv(text, str(p))


def format_sensitivity_csv(table: SensitivityTable) -> str:
    """CSV text of a table: the four columns, canonical specs, floats as shortest repr (so
    ``parse_sensitivity_csv`` gives the same entries back)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in table.entries:
        writer.writerow([e.layer, e.spec, repr(float(e.rate)), repr(float(e.accuracy_drop))])
    return out.getvalue()


def write_sensitivity_csv(table: SensitivityTable, path: str | Path) -> None:
    Path(path).write_text(format_sensitivity_csv(table), encoding="utf-8")


def check_table_against(table: SensitivityTable, network: Network) -> None:
    """Raise MappingError for a row naming a layer (or GEMM) ``network`` does not have, or a
    scheme that is illegal for it."""
    targets: dict[str, LayerWorkload | GemmView] = {}
    for layer, gemm in network.prunable_rows():
        targets.setdefault(layer.name, layer)
        targets.setdefault(gemm.name, gemm)
    for e in table.entries:
        where = _where(table.source, e.line)
        target = targets.get(e.layer)
        if target is None:
            raise MappingError(f"{where}: network {network.name!r} has no prunable layer or "
                               f"GEMM named {e.layer!r}")
        try:
            check_legal(e.scheme, target)
        except SchemeError as exc:
            raise MappingError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------- loss


def proxy_retained_norm(target: LayerWorkload | GemmView, scheme: PruningScheme | str,
                        w2d: np.ndarray | None = None) -> float:
    """The retained-norm proxy of pruning ``target`` with ``scheme``: measured on the M x K
    weights ``w2d`` when given, else its expectation under i.i.d. Gaussian weights. Illegal
    schemes raise SchemeError."""
    check_legal(scheme, target)
    if w2d is None:
        return expected_retained_norm(scheme, target)
    return retained_norm(w2d, make_mask(w2d, scheme, kernel=kernel_of(target)))


def candidate_loss(layer_name: str, scheme: PruningScheme | str, proxy_retained_norm: float,
                   sensitivity_weight: float = 1.0,
                   table: SensitivityTable | None = None) -> float:
    """Accuracy loss of one candidate: the table's measured drop for (layer, scheme) when
    present, else ``sensitivity_weight * (1 - proxy_retained_norm)``.

    A negative measured drop (pruning happened to help) counts as 0: such gains are
    measurement noise at the scale of a test set and do not add up over layers, and a
    negative loss would make the search prune more just to collect them."""
    if table is not None:
        measured = table.drop(layer_name, scheme)
        if measured is not None:
            return max(0.0, measured)
    if not (math.isfinite(proxy_retained_norm) and -1e-9 <= proxy_retained_norm <= 1 + 1e-9):
        raise SearchError(f"retained norm {proxy_retained_norm!r} of {layer_name!r} must be "
                         "in [0, 1]")
    if not math.isfinite(sensitivity_weight) or sensitivity_weight < 0:
        raise SearchError(f"sensitivity weight {sensitivity_weight!r} of {layer_name!r} must "
                         "be finite and >= 0")
    return sensitivity_weight * max(0.0, 1.0 - proxy_retained_norm)


def uniform_weights(layers: Iterable[str], weight: float = 1.0) -> dict[str, float]:
    """The same sensitivity weight for every layer (1.0: the plain retained-norm proxy)."""
    return dict.fromkeys(layers, float(weight))


def fit_sensitivity_weights(table: SensitivityTable,
                            retained: Callable[[str, PruningScheme], float]
                            ) -> dict[str, float]:
    """Per table layer, the slope w >= 0 minimising sum (drop - w * (1 - retained))^2 over
    the layer's rows; ``retained(layer, scheme)`` gives the retained norm of each row.

    A layer whose rows all remove nothing (proxy 0) gets no weight (it is left out)."""
    by_layer: dict[str, list[tuple[float, float]]] = {}
    for e in table.entries:
        removed = 1.0 - float(retained(e.layer, e.scheme))
        by_layer.setdefault(e.layer, []).append((removed, e.accuracy_drop))
    weights: dict[str, float] = {}
    for layer, rows in by_layer.items():
        sxx = sum(x * x for x, _ in rows)
        if sxx > 0:
            weights[layer] = max(0.0, sum(x * d for x, d in rows) / sxx)
    return weights


def table_from_measurements(rows: Iterable[tuple[str, PruningScheme | str, float, float]],
                            source: str = "<measurements>") -> SensitivityTable:
    """A table from (layer, scheme, rate, accuracy_drop) tuples."""
    entries = tuple(
        SensitivityEntry(layer, s if isinstance(s, PruningScheme) else parse_spec(s),
                         float(rate), float(drop))
        for layer, s, rate, drop in rows)
    return SensitivityTable(entries, source)


__all__ = [
    "COLUMNS",
    "SensitivityEntry",
    "SensitivityTable",
    "candidate_loss",
    "check_table_against",
    "fit_sensitivity_weights",
    "format_sensitivity_csv",
    "parse_sensitivity_csv",
    "proxy_retained_norm",
    "read_sensitivity_csv",
    "table_from_measurements",
    "uniform_weights",
    "write_sensitivity_csv",
]
