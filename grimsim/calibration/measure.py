"""Timing plan units with the C++ kernels, and the append-only points file.

``KernelMeasurer`` builds one unit's operands (Gaussian weights and inputs, the scheme's mask
from ``grimsim.pruning.make_mask``, the compact format from ``encode``) and times the kernel
the analytical model says the engine runs for the row - packed GEMM/GEMV, im2col + GEMM,
Winograd, direct depthwise, or the BCR/CSR/N:M/pattern kernel as ``grimsim.execute.prepare``
sets it up for ``grimsim run`` (on the im2col'd input for convolutions, the im2col pass timed
too) - with the kernels' harness (warm-up, a minimum
timed duration, median and minimum of the runs). Caches stay warm between runs, so the model
it is compared with runs with ``cache_state="warm"``. A unit's operands are kept between the
passes the calibration loop times it in (``calibrate(passes=...)``), and each timing records
how long other tasks waited for a CPU meanwhile (``cpu_pressure``, Linux PSI) so that a
contended machine shows in the data. A timing on several threads is followed by a short FMA
probe on as many threads (``core_share``: its rate against that many times one core's), for
what the guest's own accounting does not see: on the 2-vCPU development VM (2026-11-28) a
2-thread FMA loop ran at exactly one core's rate for stretches of 0.1 s to several seconds,
about a tenth of the time, with no steal time or CPU pressure reported (the host ran the two
vCPUs on one core's two hardware threads, or in turn), and a dense GEMM's 2-thread speed-up
fell from 1.8-2.0 to 1.00 meanwhile. The harness also counts the calls in which a parallel
region ran short-handed (a worker found no task left: its vCPU woke too late;
``short_share``), and a pass none of whose calls had its full team counts as contended too;
in a bad spell on that VM most 10 ms passes of a 2-thread GEMM had such calls, while the FMA
probe read full speed.

``PointsFile`` is ``<out>/points.jsonl``: one JSON object per line, each line written with a
single ``write`` on an ``O_APPEND`` descriptor followed by ``fsync``, so a crash leaves at
most one truncated last line, which the next reader drops (with a warning) and cuts off
before appending. Records: ``session`` (device fingerprint, profile, timing options),
``point`` (one measurement with its shape, scheme, threads, kernel, sparse statistics and
features; a point timed in several passes is written again after each pass, with the
statistics over the passes so far and the per-pass minima), ``reference`` (the drift
probe), ``drift`` (points of a batch taken while the probe was off; superseded by a later
measurement of the same key).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grimsim import __version__
from grimsim.aligned import aligned_standard_normal
from grimsim.calibration.plan import PlanUnit, Shape
from grimsim.cost.learned import CalibrationError
from grimsim.cost.profile import DeviceProfile
from grimsim.cost.rows import CostRows, gemm_rows
from grimsim.errors import GrimsimError
from grimsim.execute.kernels import PreparedGemm, prepare
from grimsim.pruning import (
    DenseFormat,
    encode,
    format_block,
    make_mask,
    parse_spec,
    reached_sparsity,
)
from grimsim.pruning.workload import format_stats

__all__ = [
    "CROWDED_CORE_SHARE",
    "POINTS_FILE",
    "KernelMeasurer",
    "LoadedPoints",
    "Measurement",
    "PointsFile",
    "TimingOptions",
    "combine_passes",
    "cpu_pressure_us",
    "device_fingerprint",
    "fingerprint_id",
    "is_contended",
    "pass_contended",
    "rows_from_records",
]

log = logging.getLogger(__name__)

POINTS_FILE = "points.jsonl"
RECORD_TYPES = ("session", "point", "reference", "drift")
#: The reference kernel re-timed between batches: a fixed single-thread dense GEMM (~3e7
#: MACs, a fraction of a millisecond), small enough to sit in L2 so it tracks the core clock.
REFERENCE_SHAPE = (256, 256, 256)
#: ... and beside it a streaming read of a buffer this many times L2 (within
#: ``REFERENCE_STREAM_BYTES_RANGE``): it lives in the shared last-level cache, where other
#: tenants' cache and memory traffic slows the calibration's large-weight points (recurrent
#: steps, big GEMVs) while the GEMM in L2 does not notice. On the Sapphire Rapids VM,
#: 2026-11-27, 100 probes a second apart: the GEMM ran >10 % slow in 39 % of them, an 8 MiB
#: read in 36 %, either in 50 % (correlation 0.5); a GRU step calibrated at 6.2 ms per gate
#: while the GEMM probe stayed within 10 % ran at 4.7 ms the same way in a quiet moment.
REFERENCE_STREAM_L2_MULTIPLE = 4
REFERENCE_STREAM_BYTES_RANGE = (4 << 20, 32 << 20)
#: the core-share probe's FMA loop (about 3 ms with the pool's start and the clock read)
_CORE_PROBE_S = 0.0005
_STAT_KEYS = ("sparsity", "nnz", "n_blocks", "rows_mean", "cols_mean", "work_mean",
              "work_max", "format_bytes", "block_r", "block_c")


@dataclass(frozen=True)
class TimingOptions:
    """How one pass over a point is timed (the harness:
    cpp_kernels/include/grimsim/harness.hpp): ``warmup`` untimed calls, then timed calls
    until they add up to ``min_time_s`` (at least 3, at most ``max_reps``).

    The calibration loop times each point in several passes a few seconds apart
    (``calibrate(passes=..., pass_gap_s=...)``) and ``combine_passes`` keeps the fastest
    call over all of them. ``max_reps`` is large so that a call of a few microseconds is
    still timed for ``min_time_s`` (a cap of 200 gave such calls under a millisecond).
    """

    min_time_s: float = 0.01
    warmup: int = 1
    max_reps: int = 5000

@dataclass(frozen=True)
class Measurement:
    """One timed point: the harness's statistics and what was timed."""

    threads: int
    kernel: str
    median_s: float
    min_s: float
    mean_s: float
    reps: int
    stats: Mapping[str, float]
    setup_s: float = 0.0
    #: share of the timed window some task waited for a CPU (Linux PSI), None if unknown
    cpu_pressure: float | None = None
    #: a multi-thread FMA probe right after the timing against threads x one core's rate
    #: (None on one thread or when not probed)
    core_share: float | None = None
    #: share of the timed calls with a short-handed parallel region (a worker that took no
    #: task: on the 2-vCPU VM one often missed whole calls while its vCPU waited for the
    #: host); a pass none of whose calls had its full team is contended. None when not known
    short_share: float | None = None


#: A pass whose cores delivered less than this share of their full rate ran crowded (the
#: 2-thread probe reads ~0.97 normally and 0.5 when the VM's vCPUs shared one core).
CROWDED_CORE_SHARE = 0.8


def is_contended(cpu_pressure: float | None, core_share: float | None,
              short_share: float | None, contended_tol: float) -> bool:
    """Whether a timing ran on a contended machine: other tasks waited for a CPU more than
    ``contended_tol`` of the time, the cores delivered under ``CROWDED_CORE_SHARE`` of their
    rate, or no timed call had all its threads at work (None: not known). On a point's
    combined values (``combine_passes``: each the best of its passes), whether every pass
    was."""
    return ((cpu_pressure is not None and cpu_pressure > contended_tol)
            or (core_share is not None and core_share < CROWDED_CORE_SHARE)
            or (short_share is not None and short_share >= 1.0))


def pass_contended(m: Measurement, contended_tol: float) -> bool:
    """``is_contended`` for one pass."""
    return is_contended(m.cpu_pressure, m.core_share, m.short_share, contended_tol)


def combine_passes(passes: Sequence[Measurement]) -> Measurement:
    """One point from its passes: the fastest call over all of them (``min_s``), the median
    of the passes' medians, the mean over every call, the set-up of the first pass, the
    lowest CPU pressure, the highest core share and the lowest short-handed share of a pass
    (each bad only when every pass was)."""
    if not passes:
        raise GrimsimError("combine_passes needs at least one measurement")
    first = passes[0]
    reps = sum(m.reps for m in passes)
    pressures = [m.cpu_pressure for m in passes if m.cpu_pressure is not None]
    shares = [m.core_share for m in passes if m.core_share is not None]
    short = [m.short_share for m in passes if m.short_share is not None]
    return replace(first, median_s=float(np.median([m.median_s for m in passes])),
                   min_s=min(m.min_s for m in passes),
                   mean_s=sum(m.mean_s * m.reps for m in passes) / max(reps, 1), reps=reps,
                   cpu_pressure=min(pressures) if pressures else None,
                   core_share=max(shares) if shares else None,
                   short_share=min(short) if short else None)


def cpu_pressure_us() -> int | None:
    """Microseconds some task has waited for a CPU since boot (Linux pressure stall
    information, /proc/pressure/cpu ``some total``), or None where the OS does not say."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as fh:
            line = fh.readline()
        return int(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(eq=False)
class _Operands:
    """A unit's operands as timed, kept between its passes."""

    w: np.ndarray
    x: np.ndarray
    inp: np.ndarray | None
    geo: dict[str, int]
    pointwise: bool
    stats: dict[str, float]
    sparse: PreparedGemm | None  # the sparse kernel, prepared once (None: dense)
    nbytes: int
    setup_s: float
    #: a recurrent step's GEMMs (``Shape.cycle`` of them, this unit's first), called in turn
    step: tuple[PreparedGemm, ...] = ()


# --------------------------------------------------------------------------------------------
# The device fingerprint
# --------------------------------------------------------------------------------------------
def device_fingerprint(profile: DeviceProfile) -> dict[str, Any]:
    """What identifies the machine and build the points were taken on.

    CPU model, flags, core count and clocks come from the OS and the profile (whose host
    clock is measured), the SIMD tier, threading backend and version from the compiled
    kernels, plus the grimsim, numpy and Python versions.
    """
    import grimsim._kernels as kernels
    from grimsim.cost.host import detect_host_facts

    facts = detect_host_facts()
    interesting = sorted(f for f in facts.flags if f in {
        "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "sse4_2", "f16c", "asimd",
        "asimdhp", "asimddp", "sve", "sve2", "i8mm", "bf16", "neon"})
    return {
        "machine": facts.fingerprint,
        "cpu_model": facts.model_name,
        "arch": facts.arch,
        "logical_cpus": facts.logical_cpus,
        "flags": interesting,
        "os_clock_ghz": [c.clock_ghz for c in facts.clusters],
        "profile": profile.id,
        "profile_clock_ghz": [c.max_clock_ghz for c in profile.clusters],
        "simd_level": str(kernels.simd_level()),
        "parallel_backend": str(kernels.parallel_backend()),
        "hardware_threads": int(kernels.hardware_threads()),
        "kernels_version": str(getattr(kernels, "__version__", "unknown")),
        "kernels_source": str(getattr(kernels, "__source_hash__", "unknown")),
        "grimsim": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def fingerprint_id(fp: Mapping[str, Any]) -> str:
    """A short hash of the parts of a fingerprint that must match to pool points: the
    machine, its flags, the kernels' SIMD tier, threading and sources (a rebuilt kernel times
    differently; not versions or clocks)."""
    stable = {k: fp.get(k) for k in ("machine", "flags", "simd_level", "parallel_backend",
                                     "hardware_threads", "kernels_source")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# The points file
# --------------------------------------------------------------------------------------------
@dataclass
class LoadedPoints:
    """The state a points file describes.

    ``points``: the valid (non-drifted) measurement of each key, the latest one; ``pending``:
    keys whose only measurements were taken during drift (to be measured again);
    ``sessions``: the session records in order; ``references``: the drift-probe records.
    """

    sessions: list[dict[str, Any]] = field(default_factory=list)
    references: list[dict[str, Any]] = field(default_factory=list)
    points: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_records: int = 0
    n_drift_records: int = 0
    dropped_lines: int = 0

    @property
    def next_session(self) -> int:
        return 1 + max((int(s.get("session", 0)) for s in self.sessions), default=0)


def _valid_point(rec: Mapping[str, Any]) -> bool:
    try:
        ok = (isinstance(rec["key"], str) and isinstance(rec["unit"], str)
              and isinstance(rec["spec"], str) and isinstance(rec["shape"], dict)
              and int(rec["threads"]) >= 1 and float(rec["median_s"]) > 0
              and float(rec["min_s"]) > 0 and isinstance(rec["stats"], dict)
              and isinstance(rec["kernel"], str))
    except (KeyError, TypeError, ValueError):
        return False
    return ok


class PointsFile:
    """``<dir>/points.jsonl``: append-only, one fsync'ed JSON line per record."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.path = self.dir / POINTS_FILE

    def _read_lines(self, repair: bool) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        if not self.path.exists():
            return [], 0
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise CalibrationError(f"{self.path}: cannot read ({exc.strerror})") from None
        records: list[tuple[int, dict[str, Any]]] = []
        dropped = 0
        good_end = 0
        pos = 0
        lineno = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            lineno += 1
            last = nl < 0
            line = data[pos:] if last else data[pos:nl]
            end = len(data) if last else nl + 1
            try:
                rec = json.loads(line.decode("utf-8")) if line.strip() else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                rec = None
                if last or end == len(data):
                    log.warning("%s:%d: truncated last line (an interrupted write) dropped",
                                self.path, lineno)
                else:
                    log.warning("%s:%d: malformed line skipped", self.path, lineno)
                dropped += 1
            if rec is not None and last:
                # complete JSON but no newline: the write was cut just before it
                log.warning("%s:%d: last line lacks its newline; dropped and re-measured",
                            self.path, lineno)
                dropped += 1
                rec = None
            if rec is not None:
                if not isinstance(rec, dict) or rec.get("type") not in RECORD_TYPES:
                    log.warning("%s:%d: not a calibration record; skipped", self.path, lineno)
                    dropped += 1
                else:
                    records.append((lineno, rec))
            if not last:
                good_end = end
            pos = end
        if repair and good_end < len(data):
            # cut the partial tail so the next append starts on a fresh line
            with self.path.open("r+b") as fh:
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())
        return records, dropped

    def load(self, *, repair: bool = False) -> LoadedPoints:
        """Read the file (``repair``: also cut a truncated last line off the file)."""
        lines, dropped = self._read_lines(repair)
        state = LoadedPoints(n_records=len(lines), dropped_lines=dropped)
        all_points: dict[str, list[dict[str, Any]]] = {}
        drifted: set[tuple[int, int, str]] = set()
        for lineno, rec in lines:
            kind = rec["type"]
            if kind == "session":
                state.sessions.append(rec)
            elif kind == "reference":
                state.references.append(rec)
            elif kind == "point":
                if not _valid_point(rec):
                    log.warning("%s:%d: point record with missing or bad fields skipped",
                                self.path, lineno)
                    state.dropped_lines += 1
                    continue
                all_points.setdefault(rec["key"], []).append(rec)
            elif kind == "drift":
                state.n_drift_records += 1
                s, b = int(rec.get("session", 0)), int(rec.get("batch", -1))
                for key in rec.get("keys", []):
                    drifted.add((s, b, str(key)))
        if all_points and not state.sessions:
            raise CalibrationError(f"{self.path}: points without a session record; this is "
                                   "not a file grimsim calibrate wrote")
        for key, recs in all_points.items():
            good = [r for r in recs
                    if (int(r.get("session", 0)), int(r.get("batch", -1)), key) not in drifted]
            if good:
                state.points[key] = good[-1]
            else:
                state.pending[key] = recs[-1]
        return state

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record as one line: a single write on an O_APPEND descriptor, fsync'ed."""
        line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------------
# Records -> cost rows
# --------------------------------------------------------------------------------------------
def _shape_rows(shapes: Sequence[Shape], spec: str, threads: Sequence[int]) -> CostRows:
    """CostRows of shapes sharing one op and scheme (expected-mask statistics)."""
    op = shapes[0].op
    col = np.asarray
    kw: dict[str, Any] = {"op": op, "groups": col([s.groups for s in shapes]),
                          "repeats": col([s.steps for s in shapes]),
                          "threads": col(list(threads))}
    if shapes[0].is_conv:
        kw.update(kernel=(col([s.kh for s in shapes]), col([s.kw for s in shapes])),
                  stride=col([s.stride for s in shapes]),
                  dilation=col([s.dilation for s in shapes]),
                  out_hw=(col([s.out_h for s in shapes]), col([s.out_w for s in shapes])),
                  padded=col([s.pad > 0 for s in shapes]))
    rows = gemm_rows(col([s.M for s in shapes]), col([s.K for s in shapes]),
                     col([s.N for s in shapes]), spec, **kw)
    if shapes[0].is_conv:
        act_in = col([s.in_c * s.in_h * s.in_w * 4 for s in shapes], dtype=np.int64)
        rows = replace(rows, act_bytes_in=act_in, _checked=False)
    prunable = col([s.prunable for s in shapes])
    if not prunable.all():
        rows = replace(rows, prunable=prunable,
                       format_bytes=np.where(prunable, rows.format_bytes, 0), _checked=False)
    return rows


def unit_rows(units: Sequence[PlanUnit], threads: Sequence[int]) -> CostRows:
    """Rows for (unit, threads) pairs (``threads[i]`` for ``units[i]``), expected statistics,
    in the given order."""
    return _grouped_rows([(u.shape, u.spec, t, None) for u, t in zip(units, threads,
                                                                    strict=True)])


def rows_from_records(records: Sequence[Mapping[str, Any]]) -> CostRows:
    """Rows of measured points, with the sparse statistics of the masks actually timed."""
    items = []
    for r in records:
        try:
            shape = Shape.from_dict(dict(r["shape"]))
        except (TypeError, GrimsimError) as exc:
            raise CalibrationError(f"point {r.get('key')!r}: bad shape ({exc})") from None
        items.append((shape, str(r["spec"]), int(r["threads"]), r.get("stats")))
    return _grouped_rows(items)


def _grouped_rows(items: Sequence[tuple[Shape, str, int, Mapping[str, Any] | None]]) -> CostRows:
    if not items:
        return CostRows.concat([])
    groups: dict[tuple[str, bool, str], list[int]] = {}
    for i, (shape, spec, _, _) in enumerate(items):
        groups.setdefault((shape.op, shape.is_conv, spec), []).append(i)
    parts = []
    order = []
    for (_, _, spec), idx in groups.items():
        rows = _shape_rows([items[i][0] for i in idx], spec, [items[i][2] for i in idx])
        stats = [items[i][3] for i in idx]
        if all(s is not None for s in stats):
            cols: dict[str, Any] = {}
            for key in _STAT_KEYS:
                dtype = getattr(rows, key).dtype
                cols[key] = np.asarray([float(s[key]) for s in stats if s is not None]
                                       ).astype(dtype)
            cols["from_weights"] = np.ones(len(idx), bool)
            rows = replace(rows, **cols, _checked=False)
        # a recurrent step streams all its gates' formats (the timed gate's format stands for each)
        cycle = np.asarray([items[i][0].cycle for i in idx], dtype=np.int64)
        rows = replace(rows, step_bytes=np.where(rows.repeats > 1, rows.format_bytes * cycle, 0),
                       _checked=False)
        parts.append(rows)
        order.extend(idx)
    rows = CostRows.concat(parts)
    inverse = np.empty(len(order), np.intp)
    inverse[np.asarray(order)] = np.arange(len(order))
    return rows.take(inverse)


# --------------------------------------------------------------------------------------------
# Timing with the kernels
# --------------------------------------------------------------------------------------------
def _timing(d: Mapping[str, Any]) -> tuple[float, float, float, int, float]:
    """(median, fastest, mean, runs, share of runs short-handed) of a harness result. The
    fastest run counts whether or not it had every thread at work: the engine runs a layer
    the same way (a late worker leaves the tasks to the caller), and for calls of a few
    microseconds the short-handed runs are the fast ones (no wait for the worker)."""
    reps = int(d["reps"])
    short = int(d.get("short_reps", 0))
    return (float(d["median_s"]), float(d["min_s"]), float(d["mean_s"]), reps,
            short / max(reps, 1))


def _sum_timings(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two harness results timed one after the other (im2col, then the GEMM) as one."""
    full = (a["full_min_s"] + b["full_min_s"]
            if a.get("full_min_s", 0.0) > 0.0 and b.get("full_min_s", 0.0) > 0.0 else 0.0)
    return {"median_s": a["median_s"] + b["median_s"], "min_s": a["min_s"] + b["min_s"],
            "mean_s": a["mean_s"] + b["mean_s"], "reps": min(a["reps"], b["reps"]),
            "short_reps": max(a.get("short_reps", 0), b.get("short_reps", 0)),
            "full_min_s": full}


def _scale_timing(timing: Mapping[str, Any], factor: float) -> dict[str, Any]:
    """A harness result with its times (keys ``*_s``) multiplied by ``factor``."""
    return {k: v * factor if k.endswith("_s") else v for k, v in timing.items()}


def _time_step(step: Sequence[PreparedGemm], x: np.ndarray, threads: int, steps: int,
               opts: Mapping[str, Any]) -> dict[str, Any]:
    """A recurrent step's GEMMs called in turn from Python, as ``grimsim run``'s recurrence
    calls them (gate math aside: the cost model has a row of its own for it), timed by the
    harness; the times are one GEMM's share of a step x ``steps``, the cost row's total."""
    import grimsim._kernels as kern

    timing = dict(kern.time_callable(lambda: [p.run(x, threads) for p in step],
                                     threads=threads, **opts))
    return _scale_timing(timing, steps / len(step))


class KernelMeasurer:
    """Times plan units with ``grimsim._kernels`` (see the module docstring).

    ``seed`` fixes the random weights/inputs of each unit (derived from the unit's key, so a
    re-measured point times the same operands); ``cache_bytes`` bounds the operands kept
    for later passes.
    """

    def __init__(self, timing: TimingOptions | None = None, seed: int = 0,
                 cache_bytes: int = 1 << 30) -> None:
        self.timing = timing or TimingOptions()
        self.seed = seed
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, _Operands] = OrderedDict()
        self._core_gflops: float | None = None  # one core's FMA rate, probed at first use

    def _opts(self) -> dict[str, Any]:
        return {"min_time_s": self.timing.min_time_s, "warmup": self.timing.warmup,
                "max_reps": self.timing.max_reps}

    def fingerprint(self, profile: DeviceProfile) -> dict[str, Any]:
        return device_fingerprint(profile)

    def reference(self) -> dict[str, Any]:
        """Time the reference GEMM (single thread): its harness statistics, plus
        ``stream_min_s``, the fastest pass of the reference streaming read."""
        import grimsim._kernels as kernels

        m, k, n = REFERENCE_SHAPE
        rng = np.random.default_rng(12345)
        w = rng.standard_normal((m, k), dtype=np.float32)
        x = rng.standard_normal((k, n), dtype=np.float32)
        out: dict[str, Any] = kernels.bench_dense(w, x, threads=1, min_time_s=0.05, warmup=2,
                                                  max_reps=500)
        lo, hi = REFERENCE_STREAM_BYTES_RANGE
        nbytes = min(max(REFERENCE_STREAM_L2_MULTIPLE * int(kernels.l2_cache_bytes()), lo), hi)
        sweep = kernels.measure_read_bandwidth(bytes=nbytes, threads=1, seconds=0.03)
        out["stream_min_s"] = float(sweep["bytes"]) / (float(sweep["gbytes_per_s"]) * 1e9)
        out["stream_bytes"] = int(sweep["bytes"])
        return out

    def core_share(self, threads: int) -> float | None:
        """A short FMA probe on ``threads`` threads against ``threads`` x one core's rate
        (that rate: the best of five 5 ms probes at first use); None on one thread."""
        import grimsim._kernels as kern

        if threads < 2:
            return None
        if self._core_gflops is None:
            self._core_gflops = max(float(kern.measure_fma_peak(1, 0.005)["gflops"])
                                    for _ in range(5))
        probe = float(kern.measure_fma_peak(threads, _CORE_PROBE_S)["gflops"])
        return round(min(1.5, probe / (threads * self._core_gflops)), 4)

    def measure(self, unit: PlanUnit, threads: Sequence[int],
                kernels_by_thread: Sequence[str]) -> list[Measurement]:
        """Time ``unit`` at each thread count, with the kernel named for it (one pass).

        The unit's operands are kept (up to ``cache_bytes`` over all units, least recently
        used dropped first) so that a later pass over the same unit times the same weights
        and inputs without building them again; ``release`` drops them."""
        import time

        import grimsim._kernels as kern

        ops = self._operands(unit)
        shape = unit.shape
        opts = self._opts()
        out = []
        for t, kernel in zip(threads, kernels_by_thread, strict=True):
            p0, w0 = cpu_pressure_us(), time.perf_counter()
            if ops.step:
                timing = _time_step(ops.step, ops.x, t, shape.steps, opts)
            elif ops.sparse is not None:
                timing = ops.sparse.bench(ops.x, t, **opts)
                if shape.is_conv and not ops.pointwise:
                    inp = ops.inp
                    assert inp is not None
                    # into the same buffer each time, as an engine's memory plan reuses one
                    unfold = kern.time_callable(
                        lambda inp=inp, t=t: kern.im2col(inp, kernel=(shape.kh, shape.kw),
                                                      threads=t, out=ops.x, **ops.geo),
                        threads=t, **opts)
                    timing = _sum_timings(timing, unfold)
            else:
                timing = self._dense(shape, kernel, ops.w, ops.x, ops.inp, t, opts)
            p1, w1 = cpu_pressure_us(), time.perf_counter()
            pressure = (None if p0 is None or p1 is None or w1 <= w0
                        else round(min(1.0, (p1 - p0) * 1e-6 / (w1 - w0)), 4))
            share = self.core_share(t)
            med, mn, mean, reps, short = _timing(timing)
            out.append(Measurement(threads=t, kernel=kernel, median_s=med, min_s=mn,
                                   mean_s=mean, reps=reps, stats=ops.stats,
                                   setup_s=ops.setup_s, cpu_pressure=pressure,
                                   core_share=share, short_share=round(short, 4)))
        ops.setup_s = 0.0  # built once: later passes cost no set-up
        return out

    def release(self, unit_key: str) -> None:
        """Drop the kept operands of a unit (its last pass is done)."""
        self._cache.pop(unit_key, None)

    def _operands(self, unit: PlanUnit) -> _Operands:
        cached = self._cache.get(unit.key)
        if cached is not None:
            self._cache.move_to_end(unit.key)
            return cached
        ops = self._build(unit)
        self._cache[unit.key] = ops
        total = sum(o.nbytes for o in self._cache.values())
        while total > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            total -= old.nbytes
        return ops

    def _build(self, unit: PlanUnit) -> _Operands:
        """Gaussian weights and inputs (seeded by the unit's key), the mask and the compact
        format of the unit's scheme, and the statistics of that mask."""
        import time

        import grimsim._kernels as kern

        t_setup = time.perf_counter()
        shape = unit.shape
        rng = np.random.default_rng([self.seed, zlib.crc32(unit.key.encode())])
        w = rng.standard_normal((shape.M, shape.K), dtype=np.float32)
        scheme = parse_spec(unit.spec)
        conv_kernel = (shape.kh, shape.kw) if shape.is_conv else None
        geo: dict[str, int] = {}
        pointwise = False
        if shape.is_conv:
            inp = aligned_standard_normal(rng, (1, shape.in_c, shape.in_h, shape.in_w))
            geo = {"stride": shape.stride, "pad": shape.pad, "dilation": shape.dilation}
            pointwise = (shape.kh == shape.kw == 1 and shape.stride == 1 and shape.pad == 0)
            x = (inp.reshape(shape.in_c, shape.in_h * shape.in_w) if pointwise
                 else kern.im2col(inp, kernel=(shape.kh, shape.kw), **geo))
        else:
            inp = None
            x = aligned_standard_normal(rng, (shape.K, shape.N))
        stats: dict[str, float]
        sparse: PreparedGemm | None = None
        nbytes = w.nbytes + x.nbytes + (inp.nbytes if inp is not None else 0)
        if scheme.is_dense:
            stats = {"sparsity": 0.0, "nnz": float(shape.M * shape.K), "n_blocks": 1.0,
                     "rows_mean": float(shape.M), "cols_mean": float(shape.K),
                     "work_mean": float(shape.K), "work_max": float(shape.K),
                     "format_bytes": float(shape.M * shape.K * 4 if shape.prunable else 0),
                     "block_r": 0.0, "block_c": 0.0}
        else:
            mask = make_mask(w, scheme, kernel=conv_kernel)
            fmt = encode(w, mask, scheme, kernel=conv_kernel)
            n_blocks, rows_d, cols_d, work = format_stats(fmt, mask)
            block = format_block(scheme, shape.M, shape.K, conv_kernel)
            stats = {"sparsity": reached_sparsity(mask), "nnz": float(np.count_nonzero(mask)),
                     "n_blocks": float(n_blocks), "rows_mean": float(rows_d.mean),
                     "cols_mean": float(cols_d.mean), "work_mean": float(work.mean),
                     "work_max": float(work.max), "format_bytes": float(fmt.nbytes),
                     "block_r": float(block[0]) if block else 0.0,
                     "block_c": float(block[1]) if block else 0.0}
            sparse = prepare(fmt)  # as grimsim run and bench-kernels run it (BCR packed once)
            nbytes += 2 * int(fmt.nbytes)  # the format, and the kernels' packed copy
        step: tuple[PreparedGemm, ...] = ()
        if shape.steps > 1:
            # the step's other gates: weights of their own, pruned alike
            step = (sparse or prepare(DenseFormat(w, w.shape)),)
            for _ in range(shape.cycle - 1):
                gate = rng.standard_normal((shape.M, shape.K), dtype=np.float32)
                gate_fmt = (DenseFormat(gate, gate.shape) if scheme.is_dense
                            else encode(gate, make_mask(gate, scheme), scheme))
                step += (prepare(gate_fmt),)
                nbytes += gate.nbytes + (0 if scheme.is_dense else 2 * int(gate_fmt.nbytes))
        return _Operands(w=w, x=x, inp=inp, geo=geo, pointwise=pointwise, stats=stats,
                         sparse=sparse, nbytes=nbytes,
                         setup_s=time.perf_counter() - t_setup, step=step)

    @staticmethod
    def _dense(shape: Shape, kernel: str, w: np.ndarray, x: np.ndarray,
               inp: np.ndarray | None, t: int, opts: Mapping[str, Any]) -> dict[str, Any]:
        import grimsim._kernels as kern

        if not shape.is_conv:
            g = shape.groups
            part = np.ascontiguousarray(w[: shape.M // g]) if g > 1 else w
            timing = dict(kern.bench_dense(part, x, threads=t, **opts))
            if g > 1:  # one call per group, as the model counts them
                timing = _scale_timing(timing, g)
            return timing
        assert inp is not None
        geo = {"stride": shape.stride, "pad": shape.pad, "dilation": shape.dilation}
        if kernel == "depthwise":
            return dict(kern.bench_depthwise(inp, w.reshape(shape.M, 1, shape.kh, shape.kw),
                                          threads=t, **geo, **opts))
        if kernel == "winograd":
            tile = int(kern.winograd_preferred_tile(shape.out_h, shape.out_w))
            packed = kern.winograd_pack_weights(w.reshape(shape.M, shape.in_c, 3, 3),
                                             output_tile=tile)
            return dict(kern.bench_winograd(inp, packed, pad=shape.pad, threads=t, **opts))
        return dict(kern.bench_conv2d_gemm(inp, w, kernel=(shape.kh, shape.kw),
                                        groups=shape.groups, threads=t, **geo, **opts))


def point_record(unit: PlanUnit, m: Measurement, *, session: int, batch: int,
                 analytical_s: float, fingerprint: str, elapsed_s: float,
                 features: Mapping[str, float] | None = None,
                 passes: Sequence[Measurement] = ()) -> dict[str, Any]:
    """The ``point`` line of one measurement; ``passes``: the passes ``m`` combines (their
    minima, medians and CPU pressures are kept, for the noise figures of ``grimsim fit``)."""
    rec = {"type": "point", "key": unit.point_key(m.threads), "unit": unit.key,
           "session": session, "batch": batch, "source": unit.source,
           "stratum": unit.stratum, "shape": unit.shape.to_dict(), "spec": unit.spec,
           "threads": m.threads, "kernel": m.kernel, "median_s": m.median_s,
           "min_s": m.min_s, "mean_s": m.mean_s, "reps": m.reps, "setup_s": m.setup_s,
           "stats": dict(m.stats), "analytical_s": analytical_s,
           "features": dict(features or {}), "fingerprint": fingerprint,
           "t": round(elapsed_s, 3), "passes": max(1, len(passes)),
           "cpu_pressure": m.cpu_pressure, "core_share": m.core_share,
           "short_share": m.short_share}
    if passes:
        rec["pass_min_s"] = [p.min_s for p in passes]
        rec["pass_median_s"] = [p.median_s for p in passes]
        rec["pass_cpu_pressure"] = [p.cpu_pressure for p in passes]
        rec["pass_core_share"] = [p.core_share for p in passes]
        rec["pass_short_share"] = [p.short_share for p in passes]
    return rec


def unit_of_record(rec: Mapping[str, Any]) -> PlanUnit:
    """The plan unit a point record measured."""
    return PlanUnit(Shape.from_dict(dict(rec["shape"])), str(rec["spec"]),
                    str(rec.get("source", "")), str(rec.get("stratum", "")))


