"""Device profiles: what grimsim knows about a phone or board, each number with its source.

A :class:`DeviceProfile` is a frozen, versioned (``name@version``) value: CPU clusters (core
type, count, clock, SIMD/FMA, caches), shared caches, DRAM, an optional GPU, OS facts, the
source of every number, and - once ``grimsim fit`` has run - the fitted correction it goes
with. Profiles are YAML files: the built-in ones in ``cost_models/`` (installed as package
data ``grimsim/cost_models``), the user's own and the fitted ones in the user data folder.

Loading is strict: duplicate or unknown keys, missing fields, wrong types and impossible values
are a :class:`grimsim.errors.DeviceProfileError` naming the file, line, key and reason.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from grimsim.cost.microarch import CoreType, Source, core_types, read_source
from grimsim.cost.strict_yaml import Section, read_yaml
from grimsim.errors import DeviceProfileError

__all__ = [
    "Calibration",
    "CpuCluster",
    "DeviceProfile",
    "Dram",
    "Gpu",
    "Source",
    "builtin_dir",
    "builtin_profiles",
    "dump_profile",
    "list_profiles",
    "load_profile",
    "next_version",
    "parse_profile",
    "profile_template",
    "read_profile",
    "save_profile",
    "user_data_dir",
    "user_profile_files",
    "user_profiles_dir",
]

log = logging.getLogger(__name__)

TEMPLATE_FILE = "_template.yaml"
HOST = "host"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_MAX_CLOCK_GHZ = 6.0  # no shipping CPU core sustains more; a larger value is a unit mistake


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CpuCluster:
    """Identical cores that share a clock domain (a big.LITTLE cluster, or all cores of a PC).

    ``l2_kib`` is the size of one L2 instance; ``l2_shared_by`` cores share it (1 = private).
    ``vector_unit_shared_by`` is 2 for merged-core complexes (Cortex-A510/A520) whose two
    cores share one SIMD unit.
    """

    name: str
    core: str
    count: int
    max_clock_ghz: float
    out_of_order: bool
    simd: str
    simd_width_bits: int
    fma_pipes: int
    fma_pipe_width_bits: int
    l1d_kib: int
    l2_kib: int
    l2_shared_by: int = 1
    vector_unit_shared_by: int = 1

    @property
    def fp32_flops_per_cycle(self) -> float:
        """Peak fp32 FLOPs per cycle of one core with its SIMD unit to itself (FMA = 2)."""
        return self.fma_pipes * self.fma_pipe_width_bits / 32 * 2

    @property
    def simd_fp32_lanes(self) -> int:
        return self.simd_width_bits // 32

    def peak_fp32_gflops(self, cores: int | None = None) -> float:
        """Peak fp32 GFLOP/s of ``cores`` busy cores of this cluster (all by default).

        Cores of a merged complex share one SIMD unit, so at most ``ceil(count / shared)``
        units work at once.
        """
        n = self.count if cores is None else max(0, min(cores, self.count))
        units = min(n, math.ceil(self.count / self.vector_unit_shared_by))
        return units * self.fp32_flops_per_cycle * self.max_clock_ghz


@dataclass(frozen=True)
class Dram:
    """Main memory, shared by all CPU clusters (and the GPU on phones and boards)."""

    type: str
    sustained_fraction: float
    peak_bandwidth_gbs: float | None = None
    measured_bandwidth_gbs: float | None = None
    channels: int | None = None
    channel_width_bits: int | None = None
    transfer_rate_mts: float | None = None

    @property
    def effective_bandwidth_gbs(self) -> float:
        """Bandwidth a streaming kernel reaches: measured if known, else peak x sustained."""
        if self.measured_bandwidth_gbs is not None:
            return self.measured_bandwidth_gbs
        assert self.peak_bandwidth_gbs is not None  # validation requires one of the two
        return self.peak_bandwidth_gbs * self.sustained_fraction


@dataclass(frozen=True)
class Gpu:
    """A mobile GPU as the analytical GPU model sees it.

    ``alus`` counts fp32 lanes, each doing one FMA (2 FLOPs) per clock.
    ``dispatch_overhead_us`` is the fixed cost of launching one kernel (driver + queue).
    """

    name: str
    clock_ghz: float
    fp32_gflops: float
    dispatch_overhead_us: float
    shares_memory_bandwidth: bool = True
    shader_cores: int | None = None
    alus: int | None = None


@dataclass(frozen=True)
class Calibration:
    """The fitted correction a profile version goes with (written by ``grimsim fit``)."""

    artefact: str
    version: str
    created: str | None = None


@dataclass(frozen=True)
class DeviceProfile:
    """Everything the cost model knows about one device, versioned as ``name@version``.

    ``sources`` maps every number's dotted path (``cpu.prime.max_clock_ghz``,
    ``dram.peak_bandwidth_gbs``, ...) to its :class:`Source`; :meth:`source_of` looks one up.
    ``fingerprint`` identifies the machine a detected/fitted ``host`` profile belongs to.
    ``origin`` (the file it came from) is informational and not part of equality.
    """

    name: str
    version: int
    soc: str
    os: str
    clusters: tuple[CpuCluster, ...]
    dram: Dram
    thread_barrier_us: float
    description: str = ""
    l3_kib: int | None = None
    slc_kib: int | None = None
    #: ((buffer KiB, GB/s), ...): one core's streaming-read rate over buffers of growing size
    #: (measured on hosts), how fast a cyclic working set of that size streams, cache to DRAM
    stream_gbs: tuple[tuple[int, float], ...] = ()
    gpu: Gpu | None = None
    calibration: Calibration | None = None
    fingerprint: str | None = None
    sources: tuple[tuple[str, Source], ...] = ()
    origin: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def total_cores(self) -> int:
        return sum(c.count for c in self.clusters)

    def cluster(self, name: str) -> CpuCluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(f"{self.id} has no CPU cluster {name!r}; it has "
                       f"{', '.join(c.name for c in self.clusters)}")

    def clusters_big_first(self) -> tuple[CpuCluster, ...]:
        """Clusters by per-core peak (FLOPs/cycle x clock), fastest first (stable)."""
        return tuple(sorted(self.clusters,
                            key=lambda c: -c.fp32_flops_per_cycle * c.max_clock_ghz))

    def peak_fp32_gflops(self, threads: int | None = None) -> float:
        """CPU peak fp32 GFLOP/s with ``threads`` threads placed on the biggest cores first."""
        left = self.total_cores if threads is None else threads
        total = 0.0
        for c in self.clusters_big_first():
            used = min(left, c.count)
            total += c.peak_fp32_gflops(used)
            left -= used
            if left <= 0:
                break
        return total

    def source_of(self, path: str) -> Source | None:
        """The source of the number at ``path`` (or of the nearest enclosing section)."""
        found = dict(self.sources)
        while path:
            if path in found:
                return found[path]
            path = path.rpartition(".")[0]
        return None

    def provenance(self, path: str) -> str:
        """``measured``, ``os``, ``published``, ``derived``, ``assumed`` or ``unsourced``."""
        src = self.source_of(path)
        return src.kind if src is not None else "unsourced"

    def __str__(self) -> str:
        cpu = " + ".join(f"{c.count}x {c.core} {c.max_clock_ghz:g} GHz" for c in self.clusters)
        gpu = f", {self.gpu.name}" if self.gpu else ""
        return f"{self.id} ({self.soc}: {cpu}{gpu})"


# --------------------------------------------------------------------------------------------
# Where profiles live
# --------------------------------------------------------------------------------------------
def builtin_dir() -> Path:
    """The folder of built-in profiles.

    In a source or editable checkout this is the repository's top-level ``cost_models/`` (the
    copy an editable install places beside the compiled kernels can be stale); in an installed
    wheel it is the package data folder ``grimsim/cost_models``.
    """
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "cost_models").is_dir():
        return repo / "cost_models"
    packaged = Path(__file__).resolve().parents[1] / "cost_models"
    if packaged.is_dir():
        return packaged
    raise DeviceProfileError(
        f"built-in device profiles not found: neither {repo / 'cost_models'} nor {packaged} "
        "exists; reinstall grimsim")


def user_data_dir() -> Path:
    """``$GRIMSIM_DATA_DIR``, else ``$XDG_DATA_HOME/grimsim``, else ``~/.local/share/grimsim``."""
    env = os.environ.get("GRIMSIM_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "grimsim"


def user_profiles_dir() -> Path:
    """Where fitted and detected profiles are written (``<name>@<version>.yaml``)."""
    return user_data_dir() / "profiles"


def _builtin_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(builtin_dir().glob("*.yaml")) if not p.name.startswith("_")}


def builtin_profiles() -> list[DeviceProfile]:
    """The shipped device profiles as written (not the user's fitted versions), without
    ``host`` (a detection template, not a device)."""
    return [read_profile(path) for name, path in _builtin_files().items() if name != HOST]


def user_profile_files(name: str | None = None) -> dict[tuple[str, int | None], Path]:
    """User profile files keyed by (name, version from the file name, None if unversioned)."""
    folder = user_profiles_dir()
    found: dict[tuple[str, int | None], Path] = {}
    if not folder.is_dir():
        return found
    for p in sorted(folder.glob("*.yaml")):
        stem, _, ver = p.stem.partition("@")
        if name is not None and stem != name:
            continue
        if ver and not ver.isdigit():
            log.warning("ignoring %s: the part after '@' must be a version number", p)
            continue
        found[(stem, int(ver) if ver else None)] = p
    return found


def list_profiles() -> list[str]:
    """Names of the built-in profiles and of the user's own (fitted, detected, added)."""
    names = set(_builtin_files()) | {n for n, _ in user_profile_files()}
    return sorted(names)


def next_version(name: str) -> int:
    """The version a new profile called ``name`` should get (one above every known version)."""
    versions = [v for (_, v) in user_profile_files(name) if v is not None]
    builtin = _builtin_files().get(name)
    if builtin is not None and name != HOST:  # host.yaml is a detection template, unversioned
        versions.append(read_profile(builtin).version)
    return max(versions, default=0) + 1


def profile_template() -> str:
    """A commented profile to fill in for one's own device (``grimsim devices --template``)."""
    path = builtin_dir() / TEMPLATE_FILE
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeviceProfileError(f"{path}: cannot read the profile template ({exc})") from None


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _split_spec(spec: str) -> tuple[str, int | None]:
    name, at, ver = spec.partition("@")
    if at and not ver.isdigit():
        raise DeviceProfileError(f"device {spec!r}: the part after '@' must be a version number "
                                 "(e.g. sd855@1)")
    return name, int(ver) if at else None


def _looks_like_path(spec: str) -> bool:
    return (os.sep in spec or "/" in spec or spec.endswith((".yaml", ".yml"))
            or Path(spec).is_file())


def load_profile(name_or_path: str | os.PathLike[str]) -> DeviceProfile:
    """Load a profile by built-in/user name (``sd855``, ``sd855@1``, ``host``) or file path.

    A plain name resolves to its newest version among the built-in file and the user data
    folder (where ``grimsim fit`` writes). ``host`` is this machine: the newest fitted or
    detected profile whose fingerprint matches it, else detected now from OS facts (no
    compiled code) and cached in the user data folder.
    """
    spec = os.fspath(name_or_path)
    if not isinstance(spec, str) or not spec:
        raise DeviceProfileError(f"device {name_or_path!r}: expected a profile name or path")
    if _looks_like_path(spec):
        return read_profile(Path(spec))
    name, version = _split_spec(spec)
    if name == HOST:
        from grimsim.cost.host import load_host_profile  # deferred: host imports this module

        return load_host_profile(version)
    candidates: dict[int, Path] = {}
    for (_, ver), path in user_profile_files(name).items():
        prof = read_profile(path)
        if ver is not None and prof.version != ver:
            raise DeviceProfileError(f"{path}: key 'version': {prof.version} does not match the "
                                     f"version {ver} in the file name")
        candidates[prof.version] = path
    builtin = _builtin_files().get(name)
    if builtin is not None:
        candidates.setdefault(read_profile(builtin).version, builtin)
    if not candidates:
        raise DeviceProfileError(
            f"unknown device {name!r}: not a built-in profile ({', '.join(list_profiles())}) "
            f"nor a file; give a path to a profile YAML or see `grimsim devices --template`")
    if version is None:
        return read_profile(candidates[max(candidates)])
    if version not in candidates:
        raise DeviceProfileError(f"device {name!r} has no version {version}; available: "
                                 f"{', '.join(f'{name}@{v}' for v in sorted(candidates))}")
    return read_profile(candidates[version])


def read_profile(path: Path) -> DeviceProfile:
    """Read and validate one profile file."""
    return parse_profile(read_yaml(path), str(path))


#: Fields of a cluster that may be inherited from the microarchitecture table.
_INHERITED = ("out_of_order", "simd_width_bits", "fma_pipes", "fma_pipe_width_bits", "l1d_kib",
              "l2_kib", "vector_unit_shared_by")


def _read_cluster(s: Section, table: Mapping[str, CoreType],
                  own: dict[str, Source]) -> CpuCluster:
    name = s.get("name", str)
    if not _NAME_RE.match(name):
        s.fail("name", f"{name!r}: use lower-case letters, digits, '-', '_' or '.'")
    core_name = s.get("core", str)
    if core_name not in table:
        s.fail("core", f"unknown core type {core_name!r}; known: {', '.join(sorted(table))} "
                       "(cost_models/_microarch.yaml)")
    ct = table[core_name]
    count = s.number("count", low=0, high=256, integer=True, unit=" cores")
    clock = s.number("max_clock_ghz", low=0, high=_MAX_CLOCK_GHZ, unit=" GHz",
                     hint="give the clock in GHz (2.84, not 2840)")
    prefix = f"cpu.{name}"

    def inherit(key: str, value: Any, kind: str | None = None) -> Any:
        src = ct.source_of(key)
        own[f"{prefix}.{key}"] = Source(
            ref=src.ref, says=f"inherited from the {core_name} entry of the microarchitecture "
                              f"table: {src.says}", kind=kind or src.kind)
        return value

    def pick(key: str, value: Any, kind: str | None = None) -> Any:
        return value if s.has(key) else inherit(key, getattr(ct, key), kind)

    ooo = pick("out_of_order", s.get("out_of_order", bool, required=False))
    simd = s.get("simd", str, required=False, default=None)
    if simd is not None and simd != ct.simd:
        s.fail("simd", f"{simd!r} differs from {core_name}'s {ct.simd!r}; pick another core type")
    width = pick("simd_width_bits", s.number("simd_width_bits", low=0, high=2048, integer=True,
                                             required=False))
    pipes = pick("fma_pipes", s.number("fma_pipes", low=0, high=8, integer=True, required=False))
    pipe_w = pick("fma_pipe_width_bits", s.number("fma_pipe_width_bits", low=0, high=2048,
                                                  integer=True, required=False))
    if width not in (128, 256, 512, 1024, 2048):
        s.fail("simd_width_bits", f"{width} is not a SIMD register width (128..2048)")
    if pipe_w not in (64, 128, 256, 512, 1024, 2048) or pipe_w > width:
        s.fail("fma_pipe_width_bits", f"{pipe_w} must be 64..2048 bits and at most "
                                      f"simd_width_bits ({width})")
    l1d = pick("l1d_kib", s.number("l1d_kib", low=0, high=1024, integer=True, unit=" KiB",
                                   required=False))
    # The table's L2 is only a typical size: inheriting it is an assumption.
    l2 = pick("l2_kib", s.number("l2_kib", low=0, high=65536, integer=True, unit=" KiB",
                                 required=False), kind="assumed")
    if s.has("l2_shared_by"):
        l2_shared = s.number("l2_shared_by", low=0, high=count, integer=True,
                             hint="at most the cluster's core count")
    else:
        l2_shared = inherit("l2_private", 1 if ct.l2_private else count)
        own[f"{prefix}.l2_shared_by"] = own.pop(f"{prefix}.l2_private")
    if s.has("vector_unit_shared_by"):
        vshared = s.number("vector_unit_shared_by", low=0, high=min(2, count), integer=True)
    else:
        vshared = inherit("vector_unit_shared_by", min(ct.vector_unit_shared_by, count))
    flops = s.number("fp32_flops_per_cycle", low=0, high=1024, required=False)
    derived = pipes * pipe_w / 32 * 2
    if flops is not None and abs(flops - derived) > 1e-9:
        s.fail("fp32_flops_per_cycle", f"{flops:g} disagrees with fma_pipes x "
                                       f"fma_pipe_width_bits / 32 x 2 = {derived:g}")
    s.done()
    return CpuCluster(name=name, core=core_name, count=count, max_clock_ghz=clock,
                      out_of_order=ooo, simd=ct.simd, simd_width_bits=width, fma_pipes=pipes,
                      fma_pipe_width_bits=pipe_w, l1d_kib=l1d, l2_kib=l2,
                      l2_shared_by=l2_shared, vector_unit_shared_by=vshared)


def _read_dram(s: Section) -> Dram:
    kind = s.get("type", str)
    channels = s.number("channels", low=0, high=64, integer=True, required=False)
    width = s.number("channel_width_bits", low=0, high=512, integer=True, required=False)
    if width is not None and width not in (8, 16, 32, 64, 128, 256, 512):
        s.fail("channel_width_bits", f"{width} is not a memory channel width (16, 32, 64...)")
    rate = s.number("transfer_rate_mts", low=0, high=20000, unit=" MT/s", required=False,
                    hint="mega-transfers per second, e.g. 4266 for LPDDR4X-4266")
    peak = s.number("peak_bandwidth_gbs", low=0, high=2000, unit=" GB/s", required=False)
    fraction = s.number("sustained_fraction", low=0, high=1)
    measured = s.number("measured_bandwidth_gbs", low=0, high=2000, unit=" GB/s",
                        required=False)
    if peak is None and measured is None:
        s.fail("peak_bandwidth_gbs", "give peak_bandwidth_gbs or measured_bandwidth_gbs")
    if (channels, width, rate) != (None, None, None):
        if None in (channels, width, rate):
            s.fail("channels", "give channels, channel_width_bits and transfer_rate_mts together")
        expected = channels * width / 8 * rate / 1000
        if peak is not None and abs(peak - expected) > 0.05 * expected:
            s.fail("peak_bandwidth_gbs", f"{peak:g} GB/s disagrees with channels x width x "
                                         f"rate = {expected:.1f} GB/s (more than 5% apart)")
    if peak is not None and measured is not None and measured > 1.05 * peak:
        s.fail("measured_bandwidth_gbs", f"{measured:g} GB/s exceeds the peak {peak:g} GB/s")
    s.done()
    return Dram(type=kind, sustained_fraction=fraction, peak_bandwidth_gbs=peak,
                measured_bandwidth_gbs=measured, channels=channels, channel_width_bits=width,
                transfer_rate_mts=rate)


def _read_gpu(s: Section) -> Gpu:
    name = s.get("name", str)
    clock = s.number("clock_ghz", low=0, high=4, unit=" GHz", hint="GHz, not MHz")
    gflops = s.number("fp32_gflops", low=0, high=1e6, unit=" GFLOP/s")
    overhead = s.number("dispatch_overhead_us", low=0, high=1e6, unit=" us")
    shares = s.get("shares_memory_bandwidth", bool, required=False, default=True)
    cores = s.number("shader_cores", low=0, high=1024, integer=True, required=False)
    alus = s.number("alus", low=0, high=1_000_000, integer=True, required=False)
    if alus is not None:
        expected = alus * 2 * clock
        if abs(gflops - expected) > 0.10 * expected:
            s.fail("fp32_gflops", f"{gflops:g} disagrees with alus x 2 x clock = "
                                  f"{expected:.1f} GFLOP/s (more than 10% apart)")
    s.done()
    return Gpu(name=name, clock_ghz=clock, fp32_gflops=gflops, dispatch_overhead_us=overhead,
               shares_memory_bandwidth=shares, shader_cores=cores, alus=alus)


def _read_stream_curve(cpu: Section) -> tuple[tuple[int, float], ...]:
    """cpu.stream_gbs: [[KiB, GB/s], ...], at least three points, sizes increasing."""
    raw = cpu.raw("stream_gbs")
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) < 3:
        cpu.fail("stream_gbs", "expected a list of at least three [KiB, GB/s] pairs")
    out: list[tuple[int, float]] = []
    for i, pair in enumerate(raw):
        kib, gbs = pair if isinstance(pair, list) and len(pair) == 2 else (None, None)
        if not (isinstance(kib, int) and not isinstance(kib, bool) and 0 < kib <= 1 << 24
                and isinstance(gbs, (int, float)) and not isinstance(gbs, bool)
                and 0 < gbs <= 2000):
            cpu.fail("stream_gbs", f"entry {i}: expected [KiB (a whole number, 1..2^24), "
                     f"GB/s (0..2000]], got {pair!r}")
        if out and kib <= out[-1][0]:
            cpu.fail("stream_gbs", f"entry {i}: sizes must increase ({kib} KiB after "
                     f"{out[-1][0]} KiB)")
        out.append((int(kib), float(gbs)))
    return tuple(out)


def _numeric_paths(p: DeviceProfile) -> list[str]:
    """Dotted paths of every number (and flag) in ``p`` that needs a source."""
    paths = ["system.thread_barrier_us"]
    for c in p.clusters:
        paths += [f"cpu.{c.name}.{k}" for k in ("count", "max_clock_ghz", *_INHERITED,
                                                 "l2_shared_by")]
    paths += [f"cpu.{k}" for k in ("l3_kib", "slc_kib") if getattr(p, k) is not None]
    paths += ["cpu.stream_gbs"] if p.stream_gbs else []
    paths += [f"dram.{k}" for k in ("peak_bandwidth_gbs", "sustained_fraction",
                                    "measured_bandwidth_gbs", "channels", "channel_width_bits",
                                    "transfer_rate_mts") if getattr(p.dram, k) is not None]
    if p.gpu is not None:
        paths += [f"gpu.{k}" for k in ("clock_ghz", "fp32_gflops", "dispatch_overhead_us",
                                       "shader_cores", "alus") if getattr(p.gpu, k) is not None]
    return paths


def _valid_source_keys(p: DeviceProfile) -> set[str]:
    keys = {"cpu", "system", "dram", "system.os", "dram.type"}
    for path in _numeric_paths(p):
        parts = path.split(".")
        keys.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    if p.gpu is not None:
        keys.update({"gpu", "gpu.name", "gpu.shares_memory_bandwidth"})
    return keys


def parse_profile(data: Any, source: str, *,
                  microarch: Mapping[str, CoreType] | None = None) -> DeviceProfile:
    """Validate parsed YAML ``data`` (from ``source``, for messages) into a DeviceProfile."""
    table = core_types() if microarch is None else microarch
    root = Section(data, "", source)
    if root.has("detect"):
        root.fail("detect", "this is the host template, not a profile; load it as "
                            "load_profile('host')")
    name = root.get("name", str)
    if not _NAME_RE.match(name):
        root.fail("name", f"{name!r}: use lower-case letters, digits, '-', '_' or '.' "
                          "(no '@': the version goes in 'version')")
    version = root.number("version", low=0, high=1_000_000, integer=True,
                          hint="versions are whole numbers from 1")
    soc = root.get("soc", str)
    description = root.get("description", str, required=False, default="")
    fingerprint = root.get("fingerprint", str, required=False)

    system = root.sub("system")
    assert system is not None
    os_name = system.get("os", str)
    barrier = system.number("thread_barrier_us", low=0, high=1e5, unit=" us")
    system.done()

    inherited: dict[str, Source] = {}
    cpu = root.sub("cpu")
    assert cpu is not None
    clusters = [_read_cluster(c, table, inherited) for c in cpu.sections("clusters")]
    seen: set[str] = set()
    for i, c in enumerate(clusters):
        if c.name in seen:
            Section(cpu.data["clusters"][i], f"cpu.clusters[{i}]", source,
                    cpu.line_of("clusters")).fail("name", f"cluster name {c.name!r} is used twice")
        seen.add(c.name)
    if sum(c.count for c in clusters) > 256:
        cpu.fail("clusters", "more than 256 cores in total")
    l3 = cpu.number("l3_kib", low=0, high=1 << 20, integer=True, unit=" KiB", required=False)
    slc = cpu.number("slc_kib", low=0, high=1 << 20, integer=True, unit=" KiB", required=False)
    stream = _read_stream_curve(cpu)
    cpu.done()

    dram_s = root.sub("dram")
    assert dram_s is not None
    dram = _read_dram(dram_s)
    gpu_s = root.sub("gpu", required=False)
    gpu = _read_gpu(gpu_s) if gpu_s is not None else None

    calibration = None
    cal = root.sub("calibration", required=False)
    if cal is not None:
        artefact = cal.get("artefact", str)
        cal_version = cal.raw("version")
        if not isinstance(cal_version, (str, int)) or isinstance(cal_version, bool):
            cal.fail("version", "expected the correction's version (a string or number)")
        calibration = Calibration(artefact=artefact, version=str(cal_version),
                                  created=cal.get("created", str, required=False))
        cal.done()

    profile = DeviceProfile(name=name, version=version, soc=soc, os=os_name,
                            clusters=tuple(clusters), dram=dram, thread_barrier_us=barrier,
                            description=" ".join(description.split()), l3_kib=l3, slc_kib=slc,
                            stream_gbs=stream, gpu=gpu, calibration=calibration,
                            fingerprint=fingerprint, origin=source)

    given: dict[str, Source] = {}
    src_s = root.sub("sources", required=False)
    if src_s is not None:
        valid = _valid_source_keys(profile)
        for key in list(src_s.data):
            if not isinstance(key, str) or key not in valid:
                src_s.fail(key, "names no field of this profile; use dotted paths such as "
                                f"'cpu.{clusters[0].name}.max_clock_ghz' or 'dram'")
            sub = src_s.sub(key)
            assert sub is not None
            given[key] = read_source(sub)
        src_s.done()
    root.done()

    resolved: dict[str, Source] = {}
    for path in _numeric_paths(profile):
        # A value inherited from the microarch table keeps the table's source unless the
        # profile sources that exact field; a section-wide source covers the values given here.
        probe = path if path in given or path not in inherited else ""
        while probe and probe not in given:
            probe = probe.rpartition(".")[0]
        if probe:
            resolved[path] = given[probe]
        elif path in inherited:
            resolved[path] = inherited[path]
        else:
            resolved[path] = Source(ref=source, says="given in the profile without a source",
                                    kind="unsourced")
    resolved.update({k: v for k, v in given.items() if k not in resolved})
    return _replace_sources(profile, resolved)


def _replace_sources(p: DeviceProfile, sources: Mapping[str, Source]) -> DeviceProfile:
    return replace(p, sources=tuple(sorted(sources.items())))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def profile_to_dict(p: DeviceProfile) -> dict[str, Any]:
    """The profile as plain data in the file layout; :func:`parse_profile` reads it back."""
    out: dict[str, Any] = {"name": p.name, "version": p.version, "soc": p.soc}
    if p.description:
        out["description"] = p.description
    if p.fingerprint:
        out["fingerprint"] = p.fingerprint
    out["system"] = {"os": p.os, "thread_barrier_us": p.thread_barrier_us}
    clusters = [{"name": c.name, "core": c.core, "count": c.count,
                 "max_clock_ghz": c.max_clock_ghz, "out_of_order": c.out_of_order,
                 "simd_width_bits": c.simd_width_bits, "fma_pipes": c.fma_pipes,
                 "fma_pipe_width_bits": c.fma_pipe_width_bits, "l1d_kib": c.l1d_kib,
                 "l2_kib": c.l2_kib, "l2_shared_by": c.l2_shared_by,
                 "vector_unit_shared_by": c.vector_unit_shared_by} for c in p.clusters]
    out["cpu"] = _drop_none({"clusters": clusters, "l3_kib": p.l3_kib, "slc_kib": p.slc_kib,
                             "stream_gbs": [[kib, gbs] for kib, gbs in p.stream_gbs] or None})
    d = p.dram
    out["dram"] = _drop_none({"type": d.type, "channels": d.channels,
                              "channel_width_bits": d.channel_width_bits,
                              "transfer_rate_mts": d.transfer_rate_mts,
                              "peak_bandwidth_gbs": d.peak_bandwidth_gbs,
                              "sustained_fraction": d.sustained_fraction,
                              "measured_bandwidth_gbs": d.measured_bandwidth_gbs})
    g = p.gpu
    out["gpu"] = None if g is None else _drop_none(
        {"name": g.name, "shader_cores": g.shader_cores, "alus": g.alus, "clock_ghz": g.clock_ghz,
         "fp32_gflops": g.fp32_gflops, "dispatch_overhead_us": g.dispatch_overhead_us,
         "shares_memory_bandwidth": g.shares_memory_bandwidth})
    cal = p.calibration
    out["calibration"] = None if cal is None else _drop_none(
        {"artefact": cal.artefact, "version": cal.version, "created": cal.created})
    out["sources"] = {k: {"ref": s.ref, "says": s.says, "kind": s.kind} for k, s in p.sources}
    return out


def dump_profile(p: DeviceProfile) -> str:
    """The profile as YAML text (loads back to an equal profile)."""
    header = f"# grimsim device profile {p.id}; written by grimsim, edit with care\n"
    return header + yaml.safe_dump(profile_to_dict(p), sort_keys=False, allow_unicode=True,
                                   width=100)


def save_profile(p: DeviceProfile, path: Path | None = None) -> Path:
    """Write ``p`` (default: ``<user profiles dir>/<name>@<version>.yaml``), atomically."""
    target = path if path is not None else user_profiles_dir() / f"{p.id}.yaml"
    text = dump_profile(p)
    parse_profile(yaml.safe_load(text), str(target))  # never write what would not load back
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    log.info("wrote device profile %s to %s", p.id, target)
    return target


def sourced_paths(p: DeviceProfile) -> list[str]:
    """Dotted paths of every number in ``p`` (each has an entry in ``p.sources``)."""
    return _numeric_paths(p)


def unsourced(p: DeviceProfile) -> list[str]:
    """Paths whose number carries no source."""
    return [k for k, s in p.sources if s.kind == "unsourced"]


def provenance_summary(profiles: Iterable[DeviceProfile]) -> dict[str, dict[str, int]]:
    """Per profile id, how many numbers are measured / os / published / derived / assumed."""
    out: dict[str, dict[str, int]] = {}
    for p in profiles:
        counts: dict[str, int] = {}
        for path in _numeric_paths(p):
            kind = p.provenance(path)
            counts[kind] = counts.get(kind, 0) + 1
        out[p.id] = counts
    return out
