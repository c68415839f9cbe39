"""Describe this machine with two short microbenchmarks added to the OS facts.

The OS reports a nominal clock (2.6 GHz on the development VM while its cores run ~3.65 GHz)
and no memory bandwidth, so the ``host`` profile measures both once with the C++ kernels: an
FMA loop for the real clock and a streaming read for the bandwidth.
"""

from __future__ import annotations

import logging

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


def measure_host(fma_seconds: float = 0.3, bandwidth_seconds: float = 0.5) -> tuple[float, float]:
    """(clock GHz of one core from the FMA loop, single-core streaming-read GB/s)."""
    import grimsim._kernels as _kernels

    peak = _kernels.measure_fma_peak(threads=1, seconds=fma_seconds)
    bw = _kernels.measure_read_bandwidth(bytes=BANDWIDTH_BUFFER_BYTES, threads=1,
                                         seconds=bandwidth_seconds)
    log.info("host: %.2f GHz from the FMA loop (%s, %.1f GFLOP/s), %.1f GB/s streaming read",
             peak["clock_ghz"], peak["simd"], peak["gflops"], bw["gbytes_per_s"])
    return float(peak["clock_ghz"]), float(bw["gbytes_per_s"])


def measured_host_profile(*, remeasure: bool = False) -> DeviceProfile:
    """The host profile: the newest one of this machine on disk, else detected and measured
    now (about a second) and saved to the user data folder for next time."""
    if not remeasure and user_profile_files(HOST):
        cached = load_profile(HOST)
        if cached.fingerprint == detect_host_facts().fingerprint:
            return cached
    clock_ghz, bandwidth_gbs = measure_host()
    facts = detect_host_facts(measured_clock_ghz=clock_ghz, measured_bandwidth_gbs=bandwidth_gbs)
    profile = build_host_profile(facts, version=next_version(HOST))
    try:
        save_profile(profile)
    except OSError as exc:  # a read-only home still gets a measured profile
        log.warning("could not save the host profile: %s", exc)
    return profile
