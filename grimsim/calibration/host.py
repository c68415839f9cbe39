"""Describe this machine with short microbenchmarks added to the OS facts.

The OS reports a nominal clock (2.6 GHz on the AMD EPYC development VM while its cores ran
~3.65 GHz; 2.1 GHz in /proc/cpuinfo on the Sapphire Rapids one, measured 2.86 GHz), no memory
bandwidth, and the whole die's L3 even where a core keeps far less of it (on the EPYC VM,
shared with other tenants, streaming reads kept L3 bandwidth only up to ~15 MiB of the 32 MiB
listed; on the Xeon, `lscpu` lists 300 MiB and one core streams 26 GB/s up to ~64 MiB).
So the ``host`` profile measures all three once with the C++ kernels: an FMA loop for the
real clock, a streaming read for the bandwidth, and streaming reads over growing buffers for
the last-level cache one core effectively has.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from grimsim.cost.host import build_host_profile, detect_host_facts
from grimsim.cost.profile import (
    HOST,
    DeviceProfile,
    load_profile,
    next_version,
    save_profile,
    user_profile_files,
)

log = logging.getLogger(__name__)

#: The streamed buffer must dwarf the last-level cache (32 MiB L3 on the dev VM) to measure DRAM.
BANDWIDTH_BUFFER_BYTES = 512 << 20
#: The LLC sweep: buffers from 1 MiB in steps of sqrt(2) up to twice the OS's L3, at least
#: 16 MiB (a small or unlisted L3 still gets a plateau-to-DRAM curve; 64 MiB if none listed).
LLC_SWEEP_FIRST_BYTES = 1 << 20
LLC_SWEEP_MIN_TOP_BYTES = 16 << 20


@dataclass(frozen=True)
class HostMeasurements:
    """What the microbenchmarks found: one core's clock, its streaming-read bandwidth from
    DRAM, (KiB, how it was found) the LLC it keeps (None if no drop was seen), and the
    sweep's ((KiB, GB/s), ...)."""

    clock_ghz: float
    bandwidth_gbs: float
    llc: tuple[int, str] | None
    stream_gbs: tuple[tuple[int, float], ...] = ()
    #: (us, threads) of one fork/join of the kernels' pool (None on one core)
    fork_join: tuple[float, int] | None = None


def llc_sweep_bytes(os_l3_kib: int | None) -> list[int]:
    """Buffer sizes for the LLC sweep (bytes, whole KiB)."""
    top = max(2 * os_l3_kib * 1024, LLC_SWEEP_MIN_TOP_BYTES) if os_l3_kib else 64 << 20
    sizes, s = [], float(LLC_SWEEP_FIRST_BYTES)
    while s <= top * 1.001:
        sizes.append(int(s) // 1024 * 1024)
        s *= math.sqrt(2.0)
    return sizes


def effective_llc(sizes_bytes: Sequence[int], gbs: Sequence[float],
                  dram_gbs: float) -> tuple[int, str] | None:
    """(KiB, how) the working set up to which streaming reads keep the LLC's bandwidth: where
    the curve falls through the geometric mean of its in-cache plateau (the best of its first
    three sizes) and the DRAM bandwidth, interpolated in log size. A fall must hold at the
    next size too, so one disturbed timing is not taken for the cache's edge. None when the
    curve never falls (the LLC is at least the largest buffer) or has no plateau above DRAM."""
    if len(sizes_bytes) != len(gbs) or len(gbs) < 4:
        raise ValueError("effective_llc needs matching sizes and bandwidths, at least four")
    plateau = max(gbs[:3])
    if not plateau > 1.2 * dram_gbs > 0:
        return None
    mid = math.sqrt(plateau * dram_gbs)
    for i in range(3, len(gbs)):
        if gbs[i] < mid and (i + 1 == len(gbs) or gbs[i + 1] < mid):
            hi, lo = max(gbs[i - 1], mid), gbs[i]
            frac = math.log(hi / mid) / math.log(hi / lo) if hi > lo else 0.0
            size = math.exp(math.log(sizes_bytes[i - 1])
                            + frac * math.log(sizes_bytes[i] / sizes_bytes[i - 1]))
            kib = int(size // 1024)
            how = (f"streaming reads run at {plateau:.0f} GB/s from the LLC and {dram_gbs:.0f} "
                   f"GB/s from DRAM; over growing buffers the rate crosses their geometric "
                   f"mean ({mid:.0f} GB/s) at ~{kib / 1024:.1f} MiB ({gbs[i]:.0f} GB/s at "
                   f"{sizes_bytes[i] / 2**20:.1f} MiB)")
            return kib, how
    return None


def measure_host(fma_seconds: float = 0.3, bandwidth_seconds: float = 0.5,
                 os_l3_kib: int | None = None, threads: int = 1) -> HostMeasurements:
    """Clock, DRAM streaming-read bandwidth and the effective LLC of one core, and the cost
    of running a kernel call on ``threads`` threads (~3 s)."""
    import grimsim._kernels as _kernels

    peak = _kernels.measure_fma_peak(threads=1, seconds=fma_seconds)
    bw = float(_kernels.measure_read_bandwidth(bytes=BANDWIDTH_BUFFER_BYTES, threads=1,
                                               seconds=bandwidth_seconds)["gbytes_per_s"])
    sizes = llc_sweep_bytes(os_l3_kib)
    # best of three short runs per size: interference only ever slows a run down
    curve = [max(float(_kernels.measure_read_bandwidth(bytes=b, threads=1,
                                                       seconds=0.03)["gbytes_per_s"])
                 for _ in range(3)) for b in sizes]
    llc = effective_llc(sizes, curve, bw)
    # back to back, as calibration and a network's layers call the kernels: the profile's
    # 2 us placeholder made 0.2 us two-thread calls of tiny layers cost 2.8 us
    fork_join = None
    if threads >= 2:
        fj = _kernels.measure_fork_join(threads=threads, seconds=0.1)
        fork_join = (float(fj["min_s"]) * 1e6, threads)
    log.info("host: %.2f GHz from the FMA loop (%s, %.1f GFLOP/s), %.1f GB/s streaming read, "
             "LLC %s", peak["clock_ghz"], peak["simd"], peak["gflops"], bw,
             f"~{llc[0] // 1024} MiB" if llc else "as the OS reports")
    return HostMeasurements(float(peak["clock_ghz"]), bw, llc,
                            tuple((b // 1024, g) for b, g in zip(sizes, curve, strict=True)),
                            fork_join)


def measured_host_profile(*, remeasure: bool = False) -> DeviceProfile:
    """The host profile: the newest one of this machine on disk, else detected and measured
    now (a few seconds) and saved to the user data folder for next time."""
    os_facts = detect_host_facts()
    if not remeasure and user_profile_files(HOST):
        cached = load_profile(HOST)
        if cached.fingerprint == os_facts.fingerprint:
            return cached
    m = measure_host(os_l3_kib=os_facts.l3_kib, threads=os_facts.logical_cpus)
    facts = detect_host_facts(measured_clock_ghz=m.clock_ghz,
                              measured_bandwidth_gbs=m.bandwidth_gbs, measured_llc=m.llc,
                              measured_stream_gbs=m.stream_gbs,
                              measured_fork_join=m.fork_join)
    profile = build_host_profile(facts, version=next_version(HOST))
    try:
        save_profile(profile)
    except OSError as exc:  # a read-only home still gets a measured profile
        log.warning("could not save the host profile: %s", exc)
    return profile
