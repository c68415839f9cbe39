"""Strict YAML reading for grimsim's data files: safe loading, duplicate keys rejected, lines kept.

PyYAML's SafeLoader silently keeps the last of two equal keys; a device profile with a
duplicated ``max_clock_ghz`` would then load with whichever value came last. This loader
raises instead, and remembers the line of every mapping key so that later validation can
say *where* a bad value is.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import yaml

from grimsim.errors import DeviceProfileError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlMap(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class DuplicateKeyError(yaml.YAMLError):
    """Raised while parsing when a mapping repeats a key."""

    def __init__(self, key: Any, first_line: int, second_line: int) -> None:
        super().__init__(f"duplicate key {key!r} (first at line {first_line}, again at line "
                         f"{second_line})")
        self.key = key
        self.first_line = first_line
        self.second_line = second_line


class StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys and returns :class:`YamlMap` mappings."""


def _construct_map(loader: StrictSafeLoader, node: yaml.MappingNode) -> Iterator[YamlMap]:
    data = YamlMap()
    data.line = node.start_mark.line + 1
    yield data
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # explicit keys may override merged ones; that is not a duplicate
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, f"unhashable mapping key at line {line}", key_node.start_mark)
        if key in seen:
            raise DuplicateKeyError(key, seen[key], line)
        seen[key] = line
    data.update(loader.construct_mapping(node, deep=True))
    data.key_lines.update(seen)


StrictSafeLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def parse_yaml(text: str, source: str) -> Any:
    """Parse ``text`` safely and strictly; errors become DeviceProfileError naming ``source``."""
    try:
        return yaml.load(text, Loader=StrictSafeLoader)  # a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise DeviceProfileError(
            f"{source}, line {exc.second_line}: key {exc.key!r}: duplicate key (first given at "
            f"line {exc.first_line}); keep one of them") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DeviceProfileError(f"{source}{where}: not valid YAML: {problem}") from None


def read_yaml(path: Path) -> Any:
    """Read and parse a YAML file strictly (see :func:`parse_yaml`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeviceProfileError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviceProfileError(f"{path}: cannot read the file ({exc})") from None
    return parse_yaml(text, str(path))


_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", float: "a number",
               dict: "a mapping (key: value lines)", list: "a list"}


class Section:
    """One mapping of a data file, read key by key with file/line/key-path error messages.

    Every key read is remembered; :meth:`done` then rejects the keys nobody asked for, so a
    misspelt key is an error instead of a silently ignored value.
    """

    def __init__(self, data: Any, path: str, source: str, line: int = 0) -> None:
        self.path = path
        self.source = source
        self.line = getattr(data, "line", line) or line
        if not isinstance(data, dict):
            self._raise(self.line, path or "(top level)",
                        f"expected a mapping (key: value lines), got {_describe(data)}")
        self.data: dict[Any, Any] = data
        self._seen: set[Any] = set()

    # --- errors -------------------------------------------------------------------------
    def key_path(self, key: Any) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def line_of(self, key: Any) -> int:
        lines = getattr(self.data, "key_lines", {})
        return int(lines.get(key, self.line))

    def _raise(self, line: int, key_path: str, reason: str) -> NoReturn:
        where = f", line {line}" if line else ""
        raise DeviceProfileError(f"{self.source}{where}: key '{key_path}': {reason}")

    def fail(self, key: Any, reason: str) -> NoReturn:
        """Raise a DeviceProfileError about ``key`` of this section."""
        self._raise(self.line_of(key), self.key_path(key), reason)

    # --- reading ------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        self._seen.add(key)  # a key we ask about is a known key
        return key in self.data and self.data[key] is not None

    def raw(self, key: str) -> Any:
        self._seen.add(key)
        return self.data.get(key)

    def get(self, key: str, kind: type, *, required: bool = True, default: Any = None) -> Any:
        """The value of ``key`` checked to be of ``kind`` (str, bool, int, float, dict, list)."""
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self._raise(self.line, self.key_path(key),
                            f"missing required field (expected {_TYPE_NAMES[kind]})")
            return default
        value = self.data[key]
        ok = (isinstance(value, bool) if kind is bool
              else isinstance(value, (int, float)) and not isinstance(value, bool)
              if kind is float
              else isinstance(value, int) and not isinstance(value, bool) if kind is int
              else isinstance(value, kind))
        if not ok:
            self.fail(key, f"expected {_TYPE_NAMES[kind]}, got {_describe(value)}")
        if kind is float:
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                self.fail(key, f"expected a finite number, got {value}")
        return value

    def number(self, key: str, *, low: float, high: float, unit: str = "", integer: bool = False,
               low_inclusive: bool = False, required: bool = True, default: Any = None,
               hint: str = "") -> Any:
        """A number within (low, high] (or [low, high] when ``low_inclusive``)."""
        value = self.get(key, int if integer else float, required=required, default=default)
        if value is None:
            return None
        too_low = value < low if low_inclusive else value <= low
        if too_low or value > high:
            bound = "[" if low_inclusive else "("
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            self.fail(key, f"{shown}{unit} is impossible here; expected a value in "
                           f"{bound}{low:g}, {high:g}]{unit}{'; ' + hint if hint else ''}")
        return value

    def sub(self, key: str, *, required: bool = True) -> Section | None:
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self._raise(self.line, self.key_path(key), "missing required section")
            return None
        return Section(self.data[key], self.key_path(key), self.source, self.line_of(key))

    def sections(self, key: str) -> list[Section]:
        """A non-empty list of mappings under ``key``."""
        items = self.get(key, list)
        if not items:
            self.fail(key, "expected a non-empty list")
        return [Section(item, f"{self.key_path(key)}[{i}]", self.source, self.line_of(key))
                for i, item in enumerate(items)]

    def done(self) -> None:
        """Reject keys that were never read (unknown or misspelt)."""
        for key in self.data:
            if key not in self._seen:
                known = ", ".join(sorted(str(k) for k in self._seen))
                self.fail(key, f"unknown key; expected one of: {known}")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
