"""Timing plan units with the C++ kernels, and the append-only points file.

``KernelMeasurer`` builds one unit's operands (Gaussian weights and inputs, the scheme's mask
from ``grimsim.pruning.make_mask``, the compact format from ``encode``) and times the kernel
the analytical model says the engine runs for the row - packed GEMM/GEMV, im2col + GEMM,
Winograd, direct depthwise, or the BCR/CSR/N:M/pattern kernel (on the im2col'd input for
convolutions, the im2col pass timed too) - with the kernels' harness (warm-up, a minimum
timed duration, median and minimum of the runs). Caches stay warm between runs, so the model
it is compared with runs with ``cache_state="warm"``.

``PointsFile`` is ``<out>/points.jsonl``: one JSON object per line, each line written with a
single ``write`` on an ``O_APPEND`` descriptor followed by ``fsync``, so a crash leaves at
most one truncated last line, which the next reader drops (with a warning) and cuts off
before appending. Records: ``session`` (device fingerprint, profile, timing options),
``point`` (one measurement with its shape, scheme, threads, kernel, sparse statistics and
features), ``reference`` (the drift probe), ``drift`` (points of a batch taken while the
probe was off; superseded by a later measurement of the same key).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grimsim import __version__
from grimsim.calibration.plan import PlanUnit, Shape
from grimsim.cost.learned import CalibrationError
from grimsim.cost.profile import DeviceProfile
from grimsim.cost.rows import CostRows, gemm_rows
from grimsim.errors import GrimsimError
from grimsim.pruning import encode, format_block, make_mask, parse_spec, reached_sparsity
from grimsim.pruning.formats import BCRFormat, CSRFormat, NMFormat, PatternFormat
from grimsim.pruning.workload import format_stats

__all__ = [
    "POINTS_FILE",
    "KernelMeasurer",
    "LoadedPoints",
    "Measurement",
    "PointsFile",
    "TimingOptions",
    "device_fingerprint",
    "fingerprint_id",
    "rows_from_records",
]

log = logging.getLogger(__name__)

POINTS_FILE = "points.jsonl"
RECORD_TYPES = ("session", "point", "reference", "drift")
#: The reference kernel re-timed between batches: a fixed single-thread dense GEMM (~3e7
#: MACs, a fraction of a millisecond), small enough to sit in L2 so it tracks the core clock.
REFERENCE_SHAPE = (256, 256, 256)
_STAT_KEYS = ("sparsity", "nnz", "n_blocks", "rows_mean", "cols_mean", "work_mean",
              "work_max", "format_bytes", "block_r", "block_c")


@dataclass(frozen=True)
class TimingOptions:
    """Harness settings per timed point (see cpp_kernels/include/grimsim/harness.hpp)."""

    min_time_s: float = 0.03
    warmup: int = 1
    max_reps: int = 200


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
        "grimsim": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def fingerprint_id(fp: Mapping[str, Any]) -> str:
    """A short hash of the parts of a fingerprint that must match to pool points: the
    machine, its flags, the kernels' SIMD tier and threading (not versions or clocks)."""
    stable = {k: fp.get(k) for k in ("machine", "flags", "simd_level", "parallel_backend",
                                     "hardware_threads")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# The points file
# --------------------------------------------------------------------------------------------
@dataclass
class LoadedPoints:
    """The state a points file describes.

    ``points``: the valid (non-drifted) measurement of each key, the latest one; ``pending``:
    keys whose only measurements were taken during drift (to be measured again);
    ``sessions``: the session records in order.
    """

    sessions: list[dict[str, Any]] = field(default_factory=list)
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
        parts.append(rows)
        order.extend(idx)
    rows = CostRows.concat(parts)
    inverse = np.empty(len(order), np.intp)
    inverse[np.asarray(order)] = np.arange(len(order))
    return rows.take(inverse)


# --------------------------------------------------------------------------------------------
# Timing with the kernels
# --------------------------------------------------------------------------------------------
def _timing(d: Mapping[str, Any]) -> tuple[float, float, float, int]:
    return float(d["median_s"]), float(d["min_s"]), float(d["mean_s"]), int(d["reps"])


def _sum_timings(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {"median_s": a["median_s"] + b["median_s"], "min_s": a["min_s"] + b["min_s"],
            "mean_s": a["mean_s"] + b["mean_s"], "reps": min(a["reps"], b["reps"])}


class KernelMeasurer:
    """Times plan units with ``grimsim._kernels`` (see the module docstring).

    ``seed`` fixes the random weights/inputs of each unit (derived from the unit's key, so a
    re-measured point times the same operands).
    """

    def __init__(self, timing: TimingOptions | None = None, seed: int = 0) -> None:
        self.timing = timing or TimingOptions()
        self.seed = seed

    def _opts(self) -> dict[str, Any]:
        return {"min_time_s": self.timing.min_time_s, "warmup": self.timing.warmup,
                "max_reps": self.timing.max_reps}

    def fingerprint(self, profile: DeviceProfile) -> dict[str, Any]:
        return device_fingerprint(profile)

    def reference(self) -> dict[str, Any]:
        """Time the reference GEMM (single thread)."""
        import grimsim._kernels as kernels

        m, k, n = REFERENCE_SHAPE
        rng = np.random.default_rng(12345)
        w = rng.standard_normal((m, k), dtype=np.float32)
        x = rng.standard_normal((k, n), dtype=np.float32)
        out: dict[str, Any] = kernels.bench_dense(w, x, threads=1, min_time_s=0.05, warmup=2,
                                                  max_reps=500)
        return out

    def measure(self, unit: PlanUnit, threads: Sequence[int],
                kernels_by_thread: Sequence[str]) -> list[Measurement]:
        """Time ``unit`` at each thread count, with the kernel named for it."""
        import time

        import grimsim._kernels as kern

        t_setup = time.perf_counter()
        shape = unit.shape
        rng = np.random.default_rng([self.seed, zlib.crc32(unit.key.encode())])
        w = rng.standard_normal((shape.M, shape.K), dtype=np.float32)
        scheme = parse_spec(unit.spec)
        conv_kernel = (shape.kh, shape.kw) if shape.is_conv else None
        if shape.is_conv:
            inp = rng.standard_normal((1, shape.in_c, shape.in_h, shape.in_w), dtype=np.float32)
            geo = {"stride": shape.stride, "pad": shape.pad, "dilation": shape.dilation}
            pointwise = (shape.kh == shape.kw == 1 and shape.stride == 1 and shape.pad == 0)
            x = (inp.reshape(shape.in_c, shape.in_h * shape.in_w) if pointwise
                 else kern.im2col(inp, kernel=(shape.kh, shape.kw), **geo))
        else:
            inp = None
            x = rng.standard_normal((shape.K, shape.N), dtype=np.float32)
        opts = self._opts()
        stats: dict[str, float]
        sparse_run: Callable[[int], dict[str, Any]] | None = None
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
            sparse_run = self._sparse_runner(fmt, x, opts)
        setup_s = time.perf_counter() - t_setup
        out = []
        for t, kernel in zip(threads, kernels_by_thread, strict=True):
            if sparse_run is not None:
                timing = sparse_run(t)
                if shape.is_conv and not (shape.kh == shape.kw == 1 and shape.stride == 1
                                          and shape.pad == 0):
                    assert inp is not None
                    unfold = kern.time_callable(
                        lambda inp=inp, t=t: kern.im2col(inp, kernel=(shape.kh, shape.kw),
                                                      threads=t, **geo), threads=t, **opts)
                    timing = _sum_timings(timing, unfold)
            else:
                timing = self._dense(shape, kernel, w, x, inp, t, opts)
            med, mn, mean, reps = _timing(timing)
            out.append(Measurement(threads=t, kernel=kernel, median_s=med, min_s=mn,
                                   mean_s=mean, reps=reps, stats=stats, setup_s=setup_s))
        return out

    @staticmethod
    def _sparse_runner(fmt: Any, x: np.ndarray, opts: Mapping[str, Any]
                       ) -> Callable[[int], dict[str, Any]]:
        import grimsim._kernels as kern

        if isinstance(fmt, BCRFormat):
            packed = kern.bcr_pack(fmt.block_row_ptr, fmt.block_col, fmt.row_ptr, fmt.row_idx,
                                fmt.col_ptr, fmt.col_idx, fmt.val_ptr, fmt.values,
                                fmt.reorder, fmt.shape, fmt.block)
            return lambda t: dict(kern.bench_bcr_packed(packed, x, threads=t, **opts))
        if isinstance(fmt, CSRFormat):
            return lambda t: dict(kern.bench_csr(fmt.indptr, fmt.indices, fmt.data, fmt.shape, x,
                                              threads=t, **opts))
        if isinstance(fmt, NMFormat):
            return lambda t: dict(kern.bench_nm(fmt.values, fmt.indices, fmt.n, fmt.m, fmt.shape,
                                             x, threads=t, **opts))
        if isinstance(fmt, PatternFormat):
            return lambda t: dict(kern.bench_pattern(fmt.library, fmt.kernel_ptr,
                                                  fmt.kernel_channel, fmt.kernel_pattern,
                                                  fmt.values, fmt.filter_order, fmt.shape, x,
                                                  threads=t, **opts))
        raise CalibrationError(f"no sparse kernel for format {type(fmt).__name__}")

    @staticmethod
    def _dense(shape: Shape, kernel: str, w: np.ndarray, x: np.ndarray,
               inp: np.ndarray | None, t: int, opts: Mapping[str, Any]) -> dict[str, Any]:
        import grimsim._kernels as kern

        if not shape.is_conv:
            g = shape.groups
            part = np.ascontiguousarray(w[: shape.M // g]) if g > 1 else w
            timing = dict(kern.bench_dense(part, x, threads=t, **opts))
            if g > 1:  # one call per group, as the model counts them
                timing = {k: v * g if k != "reps" else v for k, v in timing.items()}
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
                 features: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The ``point`` line of one measurement."""
    return {"type": "point", "key": unit.point_key(m.threads), "unit": unit.key,
            "session": session, "batch": batch, "source": unit.source,
            "stratum": unit.stratum, "shape": unit.shape.to_dict(), "spec": unit.spec,
            "threads": m.threads, "kernel": m.kernel, "median_s": m.median_s,
            "min_s": m.min_s, "mean_s": m.mean_s, "reps": m.reps, "setup_s": m.setup_s,
            "stats": dict(m.stats), "analytical_s": analytical_s,
            "features": dict(features or {}), "fingerprint": fingerprint,
            "t": round(elapsed_s, 3)}


def unit_of_record(rec: Mapping[str, Any]) -> PlanUnit:
    """The plan unit a point record measured."""
    return PlanUnit(Shape.from_dict(dict(rec["shape"])), str(rec["spec"]),
                    str(rec.get("source", "")), str(rec.get("stratum", "")))


