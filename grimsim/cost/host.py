"""The ``host`` profile: this machine, described from OS facts at first use.

:func:`detect_host_facts` reads ``/proc/cpuinfo`` and ``/sys/devices/system/cpu`` (model,
cores and clusters, SIMD flags, cache sizes, the OS's nominal clock) without running any
compiled code. The OS does not know the clock cores really sustain (turbo) nor the memory
bandwidth; the calibration package measures both with the kernels' microbenchmarks and passes
them in (``grimsim.cost`` may not import the kernels). :func:`build_host_profile` turns the
facts into a :class:`DeviceProfile` whose sources say, for every number, whether it was
measured, read from the OS or assumed; :func:`load_host_profile` caches it in the user data
folder so detection happens once per machine.
"""

from __future__ import annotations

import logging
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grimsim.cost.microarch import CoreType, Source, core_types
from grimsim.cost.profile import (
    HOST,
    CpuCluster,
    DeviceProfile,
    Dram,
    builtin_dir,
    parse_profile,
    profile_to_dict,
    read_profile,
    save_profile,
    user_profile_files,
)
from grimsim.cost.strict_yaml import Section, read_yaml
from grimsim.errors import DeviceProfileError

__all__ = ["HostCluster", "HostFacts", "build_host_profile", "detect_host_facts",
           "load_host_profile"]

log = logging.getLogger(__name__)

HOST_TEMPLATE_FILE = "host.yaml"
MEASURED_REF = "grimsim calibration microbenchmark (passed to detect_host_facts)"

#: Qualcomm's own MIDR part numbers for Arm-derived Kryo cores (implementer 0x51), from
#: Linux arch/arm64/include/asm/cputype.h (QCOM_CPU_PART_KRYO_*).
_QCOM_PARTS = {0x802: "cortex-a75", 0x803: "cortex-a55", 0x804: "cortex-a76", 0x805: "cortex-a55"}
_ARM_IMPLEMENTER = 0x41
_QCOM_IMPLEMENTER = 0x51


@dataclass(frozen=True)
class HostCluster:
    """CPUs of this machine that share a core type and maximum clock.

    ``core`` is a key of the microarchitecture table (a generic entry when the core is not
    recognised, then ``recognised`` is False). ``count`` is physical cores; ``cpus`` the
    logical CPU numbers. Each ``*_from`` string says where the value was read.
    """

    core: str
    recognised: bool
    identity: str
    count: int
    cpus: tuple[int, ...]
    clock_ghz: float | None
    clock_from: str
    l1d_kib: int | None
    l2_kib: int | None
    l2_shared_by: int | None
    l1d_from: str = ""
    l2_from: str = ""


@dataclass(frozen=True)
class HostFacts:
    """What the OS says about this machine, plus any measured clock/bandwidth."""

    arch: str
    os: str
    vendor: str
    model_name: str
    logical_cpus: int
    threads_per_core: int
    clusters: tuple[HostCluster, ...]
    flags: frozenset[str]
    simd: str
    simd_width_bits: int
    l3_kib: int | None
    l3_from: str
    measured_clock_ghz: tuple[float, ...] | None = None
    measured_bandwidth_gbs: float | None = None
    #: (KiB, how it was found): the working set up to which streaming reads keep the last-
    #: level cache's bandwidth; below the OS figure when the LLC is shared (a VM's neighbours)
    measured_llc: tuple[int, str] | None = None
    #: ((buffer KiB, GB/s), ...) of that sweep
    measured_stream_gbs: tuple[tuple[int, float], ...] = ()
    #: (us, threads): what a kernel call pays to run on that many threads of the pool
    measured_fork_join: tuple[float, int] | None = None

    @property
    def fingerprint(self) -> str:
        """Identifies the machine a cached host profile belongs to."""
        return f"{self.arch}|{self.model_name}|{self.logical_cpus} cpus|{self.simd}"


# --------------------------------------------------------------------------------------------
# Reading the OS
# --------------------------------------------------------------------------------------------
def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _cpuinfo_blocks(text: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Per-processor blocks of /proc/cpuinfo, and the fields outside any block (Arm)."""
    blocks: list[dict[str, str]] = []
    extra: dict[str, str] = {}
    for chunk in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        if "processor" in fields and fields["processor"].isdigit():
            blocks.append(fields)
        else:
            extra.update(fields)
    return blocks, extra


def _cpu_list(text: str) -> list[int]:
    """Parse a Linux CPU list such as ``0-3,6``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        if lo.strip().isdigit():
            cpus.extend(range(int(lo), int(hi) + 1 if hi.strip().isdigit() else int(lo) + 1))
    return cpus


def _size_kib(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        return None
    scale = {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024 * 1024}[m.group(2).upper()]
    return max(1, round(int(m.group(1)) * scale))


def _caches(sys_cpu: Path, cpu: int) -> dict[str, tuple[int, int, str]]:
    """``{"l1d"|"l2"|"l3": (size KiB, logical CPUs sharing it, path)}`` of one CPU."""
    found: dict[str, tuple[int, int, str]] = {}
    base = sys_cpu / f"cpu{cpu}" / "cache"
    for index in sorted(base.glob("index*")):
        level, ctype, size = (_read(index / f) for f in ("level", "type", "size"))
        if level is None or ctype is None or size is None:
            continue
        kib = _size_kib(size)
        shared = _read(index / "shared_cpu_list")
        sharing = len(_cpu_list(shared)) if shared else 1
        key = {("1", "Data"): "l1d", ("2", "Unified"): "l2", ("3", "Unified"): "l3"}.get(
            (level.strip(), ctype.strip()))
        if key and kib:
            found[key] = (kib, max(1, sharing), f"{index / 'size'} = {size.strip()}")
    return found


def _max_freq_ghz(sys_cpu: Path, cpu: int) -> tuple[float | None, str]:
    path = sys_cpu / f"cpu{cpu}" / "cpufreq" / "cpuinfo_max_freq"
    text = _read(path)
    if text and text.strip().isdigit():
        return int(text) / 1e6, f"{path} = {text.strip()} kHz"
    return None, ""


def _simd(arch: str, flags: frozenset[str], sve_bytes: int | None) -> tuple[str, int]:
    if arch.startswith(("x86", "amd64", "i686")):
        if "avx512f" in flags:
            return "avx512", 512
        if "avx2" in flags:
            return "avx2", 256
        if "avx" in flags:
            return "avx", 256
        return "sse", 128
    if "sve2" in flags or "sve" in flags:
        width = sve_bytes * 8 if sve_bytes else 128
        return ("neon+sve2" if "sve2" in flags else "sve"), width
    return "neon", 128


def _x86_core(vendor: str, family: int | None, flags: frozenset[str]) -> tuple[str, bool]:
    # AMD family 19h is Zen 3 / Zen 4; only Zen 4 has AVX-512, which tells them apart.
    if vendor == "AuthenticAMD" and family == 0x19:
        return ("zen4" if "avx512f" in flags else "zen3"), True
    return ("x86-avx512" if "avx512f" in flags else "x86-avx2"), False


def _arm_core(implementer: int | None, part: int | None,
              table: Mapping[str, CoreType]) -> tuple[str, bool]:
    if implementer == _ARM_IMPLEMENTER and part is not None:
        for name, ct in table.items():
            if ct.arm_part == part:
                return name, True
    if implementer == _QCOM_IMPLEMENTER and part in _QCOM_PARTS:
        return _QCOM_PARTS[part], True
    return "arm-generic", False


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def detect_host_facts(measured_clock_ghz: float | Sequence[float] | None = None,
                      measured_bandwidth_gbs: float | None = None, *,
                      measured_llc: tuple[int, str] | None = None,
                      measured_stream_gbs: Sequence[tuple[int, float]] = (),
                      measured_fork_join: tuple[float, int] | None = None,
                      root: Path | str = "/") -> HostFacts:
    """Describe this machine from OS files only (``root`` lets tests supply a fake tree).

    ``measured_clock_ghz``: the clock the FMA microbenchmark found - one number for the
    fastest cluster, or one per cluster (fastest first). ``measured_bandwidth_gbs``: the
    streaming-read bandwidth. ``measured_llc``: (KiB, how) the last-level cache one core
    effectively has, from ``measured_stream_gbs``, streaming reads over growing buffers
    ((KiB, GB/s) pairs). ``measured_fork_join``: (us, threads) one parallel_for of the
    kernels' thread pool costs on that many threads. All come from the calibration package.
    """
    base = Path(root)
    table = core_types()
    text = _read(base / "proc" / "cpuinfo")
    if text is None:
        raise DeviceProfileError(f"{base / 'proc' / 'cpuinfo'}: cannot read it, so the host "
                                 "cannot be described; give a profile file with --device")
    blocks, extra = _cpuinfo_blocks(text)
    if not blocks:
        raise DeviceProfileError(f"{base / 'proc' / 'cpuinfo'}: no 'processor' entries found")
    first = blocks[0]
    if "vendor_id" in first:
        arch = "x86_64"
    elif "cpu implementer" in first:
        arch = "aarch64"
    else:
        arch = platform.machine().lower() or "unknown"
    flags = frozenset((first.get("flags") or first.get("features") or "").split())
    sys_cpu = base / "sys" / "devices" / "system" / "cpu"
    sve_text = _read(base / "proc" / "sys" / "abi" / "sve_default_vector_length")
    simd, width = _simd(arch, flags, _int(sve_text.strip()) if sve_text else None)
    vendor = first.get("vendor_id") or {_ARM_IMPLEMENTER: "ARM", _QCOM_IMPLEMENTER: "Qualcomm"}.get(
        _int(first.get("cpu implementer")) or -1, first.get("cpu implementer", "unknown"))
    model = (first.get("model name") or extra.get("hardware") or extra.get("model")
             or first.get("cpu model") or "unknown CPU")
    model = " ".join(model.split())

    siblings = _read(sys_cpu / "cpu0" / "topology" / "thread_siblings_list")
    if siblings:
        threads_per_core = max(1, len(_cpu_list(siblings)))
    else:
        sib, cores = _int(first.get("siblings")), _int(first.get("cpu cores"))
        threads_per_core = max(1, sib // cores) if sib and cores else 1

    # Group logical CPUs by core identity and maximum clock: the big.LITTLE clusters.
    groups: dict[tuple[str, float | None], list[tuple[int, dict[str, str]]]] = {}
    for blk in blocks:
        cpu = int(blk["processor"])
        if arch == "x86_64":
            identity = (f"{blk.get('vendor_id', '?')} family {blk.get('cpu family', '?')} "
                        f"model {blk.get('model', '?')}")
        else:
            identity = (f"implementer {blk.get('cpu implementer', '?')} "
                        f"part {blk.get('cpu part', '?')}")
        freq, _ = _max_freq_ghz(sys_cpu, cpu)
        groups.setdefault((identity, freq), []).append((cpu, blk))

    clusters: list[HostCluster] = []
    l3: tuple[int, int, str] | None = None
    for (identity, freq), members in groups.items():
        cpu0, blk = members[0]
        if arch == "x86_64":
            core, recognised = _x86_core(blk.get("vendor_id", ""), _int(blk.get("cpu family")),
                                         flags)
        else:
            core, recognised = _arm_core(_int(blk.get("cpu implementer")),
                                         _int(blk.get("cpu part")), table)
        if freq is not None:
            clock, clock_from = _max_freq_ghz(sys_cpu, cpu0)
        else:
            clock, clock_from = _nominal_clock(blk, base)
        caches = _caches(sys_cpu, cpu0)
        l3 = caches.get("l3", l3)
        l2 = caches.get("l2")
        l1 = caches.get("l1d")
        count = max(1, len(members) // threads_per_core)
        clusters.append(HostCluster(
            core=core, recognised=recognised, identity=identity, count=count,
            cpus=tuple(c for c, _ in members), clock_ghz=clock, clock_from=clock_from,
            l1d_kib=l1[0] if l1 else None, l2_kib=l2[0] if l2 else None,
            l2_shared_by=max(1, l2[1] // threads_per_core) if l2 else None,
            l1d_from=l1[2] if l1 else "", l2_from=f"{l2[2]}, shared by {l2[1]} logical CPUs"
            if l2 else ""))

    clusters.sort(key=lambda c: -(table[c.core].fp32_flops_per_cycle * (c.clock_ghz or 1.0)))
    measured: tuple[float, ...] | None = None
    if measured_clock_ghz is not None:
        measured = ((float(measured_clock_ghz),) if isinstance(measured_clock_ghz, (int, float))
                    else tuple(float(v) for v in measured_clock_ghz))
        if not 1 <= len(measured) <= len(clusters):
            raise DeviceProfileError(f"measured_clock_ghz: {len(measured)} values for "
                                     f"{len(clusters)} CPU clusters")
        for v in measured:
            if not 0 < v <= 6:
                raise DeviceProfileError(f"measured_clock_ghz: {v} GHz is impossible; expected "
                                         "a clock in (0, 6] GHz")
    if measured_bandwidth_gbs is not None and not 0 < measured_bandwidth_gbs <= 2000:
        raise DeviceProfileError(f"measured_bandwidth_gbs: {measured_bandwidth_gbs} GB/s is "
                                 "impossible; expected (0, 2000] GB/s")
    if measured_llc is not None and not 0 < measured_llc[0] <= 1 << 20:
        raise DeviceProfileError(f"measured_llc: {measured_llc[0]} KiB is impossible; expected "
                                 "(0, 1 GiB]")
    if measured_fork_join is not None and not (0 < measured_fork_join[0] <= 1e5
                                               and measured_fork_join[1] >= 2):
        raise DeviceProfileError(f"measured_fork_join: {measured_fork_join} is impossible; "
                                 "expected (0, 1e5] us on at least 2 threads")
    return HostFacts(arch=arch, os=platform.system().lower() or "unknown", vendor=vendor,
                     model_name=model, logical_cpus=len(blocks),
                     threads_per_core=threads_per_core, clusters=tuple(clusters), flags=flags,
                     simd=simd, simd_width_bits=width, l3_kib=l3[0] if l3 else None,
                     l3_from=l3[2] if l3 else "", measured_clock_ghz=measured,
                     measured_bandwidth_gbs=measured_bandwidth_gbs, measured_llc=measured_llc,
                     measured_stream_gbs=tuple((int(k), float(g))
                                               for k, g in measured_stream_gbs),
                     measured_fork_join=measured_fork_join)


def _nominal_clock(blk: Mapping[str, str], base: Path) -> tuple[float | None, str]:
    """The OS's idea of the clock when cpufreq is absent (VMs): model name, then cpu MHz."""
    model = blk.get("model name", "")
    m = re.search(r"@\s*([\d.]+)\s*GHz", model)
    if m:
        return float(m.group(1)), f"{base / 'proc/cpuinfo'} model name '{model}'"
    mhz = blk.get("cpu mhz")
    if mhz:
        try:
            return float(mhz) / 1000, f"{base / 'proc/cpuinfo'} cpu MHz = {mhz}"
        except ValueError:
            pass
    return None, ""


# --------------------------------------------------------------------------------------------
# Facts -> profile
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HostAssumptions:
    """What neither the OS nor a measurement gives (cost_models/host.yaml), with sources."""

    description: str
    dram_peak_bandwidth_gbs: float
    dram_sustained_fraction: float
    thread_barrier_us: float
    default_clock_ghz: float
    sources: Mapping[str, Source]


def read_host_template(path: Path | None = None) -> HostAssumptions:
    """Read ``cost_models/host.yaml`` (strictly, like a profile)."""
    from grimsim.cost.microarch import read_source

    path = path or builtin_dir() / HOST_TEMPLATE_FILE
    root = Section(read_yaml(path), "", str(path))
    if root.get("name", str) != HOST:
        root.fail("name", "the host template must be named 'host'")
    if root.get("detect", bool) is not True:
        root.fail("detect", "must be true: the host profile is detected at first use")
    description = root.get("description", str, required=False, default="")
    a = root.sub("assumptions")
    assert a is not None
    peak = a.number("dram_peak_bandwidth_gbs", low=0, high=2000, unit=" GB/s")
    fraction = a.number("dram_sustained_fraction", low=0, high=1)
    barrier = a.number("thread_barrier_us", low=0, high=1e5, unit=" us")
    clock = a.number("default_clock_ghz", low=0, high=6, unit=" GHz")
    a.done()
    src = root.sub("sources")
    assert src is not None
    sources: dict[str, Source] = {}
    for key in list(src.data):
        if key not in a.data:
            src.fail(key, f"names no assumption; use one of {', '.join(sorted(a.data))}")
        sub = src.sub(key)
        assert sub is not None
        sources[key] = read_source(sub)
    src.done()
    missing = sorted(set(a.data) - set(sources))
    if missing:
        root.fail("sources", f"no source for {', '.join(missing)}")
    root.done()
    return HostAssumptions(description=" ".join(description.split()),
                           dram_peak_bandwidth_gbs=peak, dram_sustained_fraction=fraction,
                           thread_barrier_us=barrier, default_clock_ghz=clock, sources=sources)


def build_host_profile(facts: HostFacts, assumptions: HostAssumptions | None = None, *,
                       version: int = 1) -> DeviceProfile:
    """A validated DeviceProfile of this machine from ``facts`` (+ measurements)."""
    a = assumptions or read_host_template()
    table = core_types()
    sources: dict[str, Source] = {}
    clusters: list[CpuCluster] = []
    cpuinfo = "/proc/cpuinfo"
    for i, hc in enumerate(facts.clusters):
        ct = table[hc.core]
        name = "cores" if len(facts.clusters) == 1 else f"cluster{i}"
        p = f"cpu.{name}"

        def from_table(key: str, _ct: CoreType = ct, _hc: HostCluster = hc) -> Source:
            src = _ct.source_of(key)
            says = (f"{'' if _hc.recognised else 'core not recognised (' + _hc.identity + '); '}"
                    f"from the {_ct.name} entry of the microarchitecture table: {src.says}")
            return Source(ref=src.ref, says=says,
                          kind=src.kind if _hc.recognised else "assumed")

        sources[f"{p}.count"] = Source(cpuinfo, f"{len(hc.cpus)} logical CPUs "
                                       f"({hc.identity}), {facts.threads_per_core} thread(s) "
                                       "per core", "os")
        if facts.measured_clock_ghz is not None and i < len(facts.measured_clock_ghz):
            clock = facts.measured_clock_ghz[i]
            os_note = f"; the OS reports {hc.clock_ghz:g} GHz" if hc.clock_ghz else ""
            sources[f"{p}.max_clock_ghz"] = Source(
                MEASURED_REF, f"FMA-loop clock {clock:g} GHz{os_note}", "measured")
        elif hc.clock_ghz is not None:
            clock = hc.clock_ghz
            sources[f"{p}.max_clock_ghz"] = Source(
                hc.clock_from.split(" ")[0], f"{hc.clock_from} (nominal; turbo clocks may be "
                "higher - calibration measures the real one)", "os")
        else:
            clock = a.default_clock_ghz
            sources[f"{p}.max_clock_ghz"] = replace(a.sources["default_clock_ghz"],
                                                    kind="assumed")
        for key in ("out_of_order", "fma_pipes", "fma_pipe_width_bits",
                    "vector_unit_shared_by"):
            sources[f"{p}.{key}"] = from_table(key)
        width = ct.simd_width_bits
        if facts.simd == ct.simd and facts.simd_width_bits != width:
            width = facts.simd_width_bits  # e.g. an SVE vector length the OS reports
            sources[f"{p}.simd_width_bits"] = Source(cpuinfo, f"flags give {facts.simd} with "
                                                     f"{width}-bit vectors", "os")
        else:
            sources[f"{p}.simd_width_bits"] = from_table("simd_width_bits")
        if hc.l1d_kib is not None:
            l1d = hc.l1d_kib
            sources[f"{p}.l1d_kib"] = Source(hc.l1d_from.split(" = ")[0], hc.l1d_from, "os")
        else:
            l1d = ct.l1d_kib
            sources[f"{p}.l1d_kib"] = from_table("l1d_kib")
        if hc.l2_kib is not None and hc.l2_shared_by is not None:
            l2, l2_shared = hc.l2_kib, min(hc.l2_shared_by, hc.count)
            for key in ("l2_kib", "l2_shared_by"):
                sources[f"{p}.{key}"] = Source(hc.l2_from.split(" = ")[0], hc.l2_from, "os")
        else:
            l2, l2_shared = ct.l2_kib, 1 if ct.l2_private else hc.count
            sources[f"{p}.l2_kib"] = replace(from_table("l2_kib"), kind="assumed")
            sources[f"{p}.l2_shared_by"] = from_table("l2_private")
        clusters.append(CpuCluster(
            name=name, core=ct.name, count=hc.count, max_clock_ghz=round(clock, 4),
            out_of_order=ct.out_of_order, simd=ct.simd, simd_width_bits=width,
            fma_pipes=ct.fma_pipes, fma_pipe_width_bits=ct.fma_pipe_width_bits, l1d_kib=l1d,
            l2_kib=l2, l2_shared_by=l2_shared,
            vector_unit_shared_by=min(ct.vector_unit_shared_by, hc.count)))

    l3_kib = facts.l3_kib
    if facts.l3_kib is not None and facts.measured_llc is not None:
        # the model's LLC is what a core can keep, not the die's total
        l3_kib = min(facts.l3_kib, facts.measured_llc[0])
        sources["cpu.l3_kib"] = Source(MEASURED_REF, f"{facts.measured_llc[1]}; the OS reports "
                                       f"{facts.l3_kib} KiB ({facts.l3_from})", "measured")
    elif facts.l3_kib is not None:
        sources["cpu.l3_kib"] = Source(facts.l3_from.split(" = ")[0], facts.l3_from, "os")
    stream = tuple((k, round(g, 2)) for k, g in facts.measured_stream_gbs)
    if stream:
        sources["cpu.stream_gbs"] = Source(
            MEASURED_REF, f"one core's streaming-read rate over {len(stream)} buffers of "
            f"{stream[0][0] // 1024}-{stream[-1][0] // 1024} MiB, the best of three runs each",
            "measured")
    barrier_us = a.thread_barrier_us
    if facts.measured_fork_join is not None:
        barrier_us = round(facts.measured_fork_join[0], 3)
        sources["system.thread_barrier_us"] = Source(
            MEASURED_REF, f"a parallel_for of one empty task per thread on "
            f"{facts.measured_fork_join[1]} threads of the kernels' pool, called back to back: "
            f"{facts.measured_fork_join[0]:g} us (the fastest batch's mean)", "measured")
    else:
        sources["system.thread_barrier_us"] = a.sources["thread_barrier_us"]
    sources["dram.sustained_fraction"] = a.sources["dram_sustained_fraction"]
    if facts.measured_bandwidth_gbs is not None:
        dram = Dram(type="unknown (host)", sustained_fraction=a.dram_sustained_fraction,
                    measured_bandwidth_gbs=round(facts.measured_bandwidth_gbs, 3))
        sources["dram.measured_bandwidth_gbs"] = Source(
            MEASURED_REF, f"streaming-read bandwidth {facts.measured_bandwidth_gbs:g} GB/s",
            "measured")
    else:
        dram = Dram(type="unknown (host)", sustained_fraction=a.dram_sustained_fraction,
                    peak_bandwidth_gbs=a.dram_peak_bandwidth_gbs)
        sources["dram.peak_bandwidth_gbs"] = a.sources["dram_peak_bandwidth_gbs"]
    profile = DeviceProfile(
        name=HOST, version=version, soc=f"{facts.model_name} ({facts.arch})", os=facts.os,
        clusters=tuple(clusters), dram=dram, thread_barrier_us=barrier_us,
        description=a.description, l3_kib=l3_kib, stream_gbs=stream, gpu=None,
        calibration=None,
        fingerprint=facts.fingerprint, sources=tuple(sorted(sources.items())))
    # Round-trip through the file layout: the same validation every profile gets.
    return parse_profile(profile_to_dict(profile), "detected host profile")


def load_host_profile(version: int | None = None) -> DeviceProfile:
    """The host profile: newest fitted/detected one of this machine, else detected now.

    A detected profile is cached as ``<user data>/profiles/host@<n>.yaml``; profiles whose
    fingerprint belongs to another machine (a shared home folder) are skipped.
    """
    facts = detect_host_facts()
    found: list[tuple[int, DeviceProfile]] = []
    for (_, file_version), path in user_profile_files(HOST).items():
        prof = read_profile(path)
        found.append((prof.version if file_version is None else file_version, prof))
    found.sort(key=lambda vp: -vp[0])
    if version is not None:
        for v, prof in found:
            if v == version:
                if prof.fingerprint != facts.fingerprint:
                    log.warning("%s was made on another machine (%s), not this one (%s)",
                                prof.id, prof.fingerprint, facts.fingerprint)
                return prof
        raise DeviceProfileError(f"device 'host' has no version {version}; available: "
                                 f"{', '.join(f'host@{v}' for v, _ in found) or 'none yet'}")
    for _, prof in found:
        if prof.fingerprint == facts.fingerprint:
            return prof
        log.info("skipping %s: made on another machine (%s)", prof.id, prof.fingerprint)
    profile = build_host_profile(facts, version=(found[0][0] + 1) if found else 1)
    try:
        save_profile(profile)
    except OSError as exc:  # a read-only home still gets a (re-detected) profile
        log.warning("could not cache the host profile: %s", exc)
    return profile


def facts_summary(facts: HostFacts) -> dict[str, Any]:
    """Plain-data view of the facts (for ``grimsim devices --json`` and logs)."""
    return {
        "arch": facts.arch, "os": facts.os, "vendor": facts.vendor, "model": facts.model_name,
        "logical_cpus": facts.logical_cpus, "threads_per_core": facts.threads_per_core,
        "simd": facts.simd, "simd_width_bits": facts.simd_width_bits, "l3_kib": facts.l3_kib,
        "clusters": [{"core": c.core, "recognised": c.recognised, "count": c.count,
                      "clock_ghz": c.clock_ghz, "l1d_kib": c.l1d_kib, "l2_kib": c.l2_kib,
                      "l2_shared_by": c.l2_shared_by} for c in facts.clusters],
        "measured_clock_ghz": list(facts.measured_clock_ghz or ()),
        "measured_bandwidth_gbs": facts.measured_bandwidth_gbs,
        "measured_llc_kib": facts.measured_llc[0] if facts.measured_llc else None,
        "fingerprint": facts.fingerprint,
    }
