"""The sourced microarchitecture table (``cost_models/_microarch.yaml``) and the ``Source`` record.

Each CPU core type (Cortex-A55, Cortex-X3, Zen 3, ...) has per-core facts - SIMD width, FMA
pipes, L1/L2 sizes, in-order or not - with the document each comes from. Device profiles name
a core type per cluster and inherit whatever they do not set themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from grimsim.cost.strict_yaml import Section, read_yaml
from grimsim.errors import DeviceProfileError

#: How a number was obtained. ``published``: a vendor page, datasheet, manual or review says
#: it; ``derived``: computed from published numbers (the ``says`` text shows how);
#: ``measured``: a microbenchmark on the device; ``os``: read from the operating system;
#: ``assumed``: a placeholder nobody has checked; ``unsourced``: given in a user profile
#: without a source.
SOURCE_KINDS = ("published", "derived", "measured", "os", "assumed", "unsourced")

SIMD_KINDS = ("neon", "neon+sve2", "sve", "sse", "avx", "avx2", "avx512")

MICROARCH_FILE = "_microarch.yaml"


@dataclass(frozen=True)
class Source:
    """Where one number comes from: a URL or document (``ref``), what it says, and its kind."""

    ref: str
    says: str
    kind: str = "published"

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"source kind {self.kind!r} not one of {SOURCE_KINDS}")


def read_source(section: Section) -> Source:
    """Read a ``{ref, says, kind}`` mapping."""
    ref = section.get("ref", str)
    says = section.get("says", str)
    kind = section.get("kind", str, required=False, default="published")
    allowed = SOURCE_KINDS[:-1]  # "unsourced" is what grimsim records when no source is given
    if kind not in allowed:
        section.fail("kind", f"{kind!r} is not a source kind; use one of {', '.join(allowed)}")
    if not ref.strip() or not says.strip():
        section.fail("ref" if not ref.strip() else "says", "must not be empty")
    section.done()
    return Source(ref=ref.strip(), says=" ".join(says.split()), kind=kind)


@dataclass(frozen=True)
class CoreType:
    """Per-core facts of one microarchitecture (see cost_models/_microarch.yaml for the fields)."""

    name: str
    vendor: str
    isa: str
    out_of_order: bool
    simd: str
    simd_width_bits: int
    fma_pipes: int
    fma_pipe_width_bits: int
    l1d_kib: int
    l2_kib: int
    l2_kib_range: tuple[int, int]
    l2_private: bool
    vector_unit_shared_by: int
    arm_part: int | None
    sources: tuple[tuple[str, Source], ...]

    @property
    def fp32_flops_per_cycle(self) -> float:
        """Peak fp32 FLOPs per cycle of one core running alone (an FMA counts as two)."""
        return self.fma_pipes * self.fma_pipe_width_bits / 32 * 2

    def source_of(self, field: str) -> Source:
        """The source of ``field`` (its own entry, else the entry-wide ``core`` one)."""
        found = dict(self.sources)
        return found.get(field) or found["core"]


#: Fields of a table entry that need a source (all but the free-text ones).
SOURCED_FIELDS = ("out_of_order", "simd_width_bits", "fma_pipes", "fma_pipe_width_bits",
                  "l1d_kib", "l2_kib", "l2_kib_range", "l2_private", "vector_unit_shared_by")


def _read_core(name: str, s: Section, defaults: Mapping[str, Source]) -> CoreType:
    vendor = s.get("vendor", str)
    isa = s.get("isa", str)
    out_of_order = s.get("out_of_order", bool)
    simd = s.get("simd", str)
    if simd not in SIMD_KINDS:
        s.fail("simd", f"{simd!r} is not a SIMD kind; use one of {', '.join(SIMD_KINDS)}")
    simd_width = s.number("simd_width_bits", low=0, high=2048, integer=True)
    if simd_width not in (128, 256, 512, 1024, 2048):
        s.fail("simd_width_bits", f"{simd_width} is not a SIMD register width (128..2048)")
    fma_pipes = s.number("fma_pipes", low=0, high=8, integer=True)
    pipe_width = s.number("fma_pipe_width_bits", low=0, high=2048, integer=True)
    if pipe_width not in (64, 128, 256, 512, 1024, 2048) or pipe_width > simd_width:
        s.fail("fma_pipe_width_bits", f"{pipe_width} must be 64..2048 and at most "
                                      f"simd_width_bits ({simd_width})")
    l1d = s.number("l1d_kib", low=0, high=1024, integer=True, unit=" KiB")
    l2 = s.number("l2_kib", low=0, high=65536, integer=True, unit=" KiB")
    rng = s.get("l2_kib_range", list)
    if (len(rng) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in rng)
            or not 0 <= rng[0] <= rng[1] or not rng[0] <= l2 <= rng[1]):
        s.fail("l2_kib_range", f"expected [min, max] KiB with min <= l2_kib ({l2}) <= max, "
                               f"got {rng!r}")
    l2_private = s.get("l2_private", bool)
    shared = s.number("vector_unit_shared_by", low=0, high=2, integer=True)
    arm_part = s.number("arm_part", low=0, high=0xFFF, integer=True, required=False)
    src = s.sub("sources")
    assert src is not None
    sources: dict[str, Source] = {}
    for key in list(src.data):
        if key != "core" and key not in (*SOURCED_FIELDS, "arm_part"):
            src.fail(key, f"not a field of a core type; use 'core' or one of "
                          f"{', '.join(SOURCED_FIELDS)}")
        sub = src.sub(key)
        assert sub is not None
        sources[key] = read_source(sub)
    src.done()
    for key, default in defaults.items():
        if key not in sources and "core" not in sources:
            sources[key] = default
    missing = [f for f in SOURCED_FIELDS if f not in sources and "core" not in sources]
    if missing:
        s.fail("sources", f"no source for {', '.join(missing)} (add them or a 'core' entry)")
    s.done()
    return CoreType(name=name, vendor=vendor, isa=isa, out_of_order=out_of_order, simd=simd,
                    simd_width_bits=simd_width, fma_pipes=fma_pipes,
                    fma_pipe_width_bits=pipe_width, l1d_kib=l1d, l2_kib=l2,
                    l2_kib_range=(rng[0], rng[1]), l2_private=l2_private,
                    vector_unit_shared_by=shared, arm_part=arm_part,
                    sources=tuple(sorted(sources.items())))


def read_microarch(path: Path) -> Mapping[str, CoreType]:
    """Read and validate a microarchitecture table file."""
    root = Section(read_yaml(path), "", str(path))
    version = root.get("schema", int)
    if version != 1:
        root.fail("schema", f"unsupported table schema {version}; this grimsim reads schema 1")
    defaults: dict[str, Source] = {}
    dsec = root.sub("default_sources")
    assert dsec is not None
    for key in list(dsec.data):
        if key not in SOURCED_FIELDS:
            dsec.fail(key, f"not a core-type field; use one of {', '.join(SOURCED_FIELDS)}")
        sub = dsec.sub(key)
        assert sub is not None
        defaults[key] = read_source(sub)
    dsec.done()
    cores = root.sub("cores")
    assert cores is not None
    table: dict[str, CoreType] = {}
    for name in list(cores.data):
        if not isinstance(name, str) or name != name.lower() or " " in name:
            cores.fail(name, "core type names are lower-case words such as 'cortex-a76'")
        entry = cores.sub(name)
        assert entry is not None
        table[name] = _read_core(name, entry, defaults)
    cores.done()
    root.done()
    return MappingProxyType(table)


@functools.lru_cache(maxsize=4)
def _cached_table(path: str) -> Mapping[str, CoreType]:
    # Read-only result (MappingProxyType of frozen values), so caching shares no mutable state.
    return read_microarch(Path(path))


def core_types(path: Path | None = None) -> Mapping[str, CoreType]:
    """The microarchitecture table (built-in unless ``path`` is given), keyed by core name."""
    if path is None:
        from grimsim.cost.profile import builtin_dir  # deferred: profile imports this module

        path = builtin_dir() / MICROARCH_FILE
    return _cached_table(str(path))


def core_type(name: str) -> CoreType:
    """One entry of the built-in table; a clear error for an unknown name."""
    table = core_types()
    if name not in table:
        raise DeviceProfileError(f"unknown core type {name!r}; known: {', '.join(sorted(table))}")
    return table[name]
