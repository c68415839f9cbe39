"""``grimsim calibrate``: time the sweep plan on this device within a budget, resumably.

The loop takes plan units in order (after re-measuring any point a previous session took
during drift), times each at every thread count, and appends every point to
``<out>/points.jsonl`` the moment it is measured. Every ``batch_points`` points (or
``reference_interval_s``) a fixed reference GEMM is re-timed: if it is more than
``drift_tol`` away from the session's baseline, the batch since the last good probe is marked
drifted (a ``drift`` line) and queued again; after ``rebaseline_after`` drifted probes in a
row the machine is taken to have settled at a new speed and the baseline moves (logged).

After ``adaptive_after`` of the budget, rounds of adaptive sampling alternate with the plan:
the correction is fitted on the points so far with folds grouped by GEMM shape, and new units
are sampled around the points with the largest held-out residuals (their shape jittered in
log space, same scheme).

Stops cleanly at the budget (a reserve is kept for the final drift probe), at the end of the
plan, or on Ctrl-C; the file is consistent at every moment, and running again with the same
``out_dir`` resumes: points already measured are skipped, none is lost or repeated.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from grimsim import __version__
from grimsim.calibration.measure import (
    KernelMeasurer,
    LoadedPoints,
    Measurement,
    PointsFile,
    TimingOptions,
    fingerprint_id,
    point_record,
    rows_from_records,
    unit_of_record,
    unit_rows,
)
from grimsim.calibration.plan import (
    DEFAULT_SCHEMES,
    MAX_DENSE_MACS,
    MAX_WEIGHTS,
    Plan,
    PlanUnit,
    Shape,
    build_plan,
    legal_specs,
    stratum_of,
)
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.features import CORRECTION_FEATURES, correction_features
from grimsim.cost.learned import CalibrationError, fit_ensemble
from grimsim.cost.profile import DeviceProfile, load_profile, profile_to_dict
from grimsim.errors import GrimsimError

__all__ = ["CalibrationResult", "Measurer", "calibrate", "resolve_profile", "run_calibration"]

log = logging.getLogger(__name__)

#: Calibration times kernels repeated without flushing caches: the analytical model it is
#: compared with runs in the matching state.
CACHE_STATE = "warm"


class Measurer(Protocol):
    """What the loop needs from a timer (``KernelMeasurer``; tests inject fakes)."""

    def fingerprint(self, profile: DeviceProfile) -> dict[str, Any]: ...

    def reference(self) -> dict[str, Any]: ...

    def measure(self, unit: PlanUnit, threads: Sequence[int],
                kernels_by_thread: Sequence[str]) -> list[Measurement]: ...


@dataclass(frozen=True)
class CalibrationResult:
    """What one ``calibrate`` call did (the points file holds the data)."""

    out_dir: Path
    points_path: Path
    session: int
    stopped: str  # "budget", "done" or "interrupted"
    elapsed_s: float
    measured: int  # points written this session (re-measurements included)
    remeasured: int
    drift_events: int
    rebaselines: int
    adaptive_units: int
    total_points: int  # valid points in the file now
    pending_points: int  # drifted points still waiting to be measured again
    plan_points: int
    skipped_units: int

    def summary(self) -> str:
        return (f"session {self.session}: {self.measured} points in {self.elapsed_s:.0f} s "
                f"({self.stopped}); {self.total_points} valid points in {self.points_path} "
                f"({self.plan_points} planned), {self.remeasured} re-measured after "
                f"{self.drift_events} drift events, {self.adaptive_units} adaptive units")


# --------------------------------------------------------------------------------------------
# Progress on stderr
# --------------------------------------------------------------------------------------------
class _Progress:
    def __init__(self, enabled: bool, budget_s: float, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.budget_s = budget_s
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = -1e9

    def update(self, elapsed: float, points: int, total: int, drift: int, what: str,
               force: bool = False) -> None:
        if not self.enabled:
            return
        interval = 0.25 if self.tty else 10.0
        if not force and elapsed - self._last < interval:
            return
        self._last = elapsed
        frac = min(1.0, elapsed / self.budget_s) if self.budget_s > 0 else 1.0
        bar = "#" * int(frac * 24) + "." * (24 - int(frac * 24))
        line = (f"calibrate [{bar}] {elapsed:5.0f}/{self.budget_s:.0f} s  {points} points "
                f"({total} in file)  drift {drift}  {what[:48]}")
        if self.tty:
            self.stream.write("\r" + line.ljust(118))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------------
# Adaptive sampling
# --------------------------------------------------------------------------------------------
def _jitter(shape: Shape, rng: np.random.Generator, sigma: float = 0.35) -> Shape | None:
    """A nearby shape: sizes multiplied by 2**N(0, sigma), geometry kept."""
    def near(v: int, low: int = 1) -> int:
        return max(low, round(v * 2.0 ** rng.normal(0.0, sigma)))

    if not shape.is_conv:
        g = shape.groups
        m = near(shape.M // g, 1) * g
        new = replace(shape, M=m, K=near(shape.K), N=near(shape.N))
    else:
        if shape.groups > 1:
            c = near(shape.in_c)
            m, cin, g = c, c, c
        else:
            m, cin, g = near(shape.M), near(shape.in_c), 1
        side = near(shape.in_h, shape.kh)
        out = (side + 2 * shape.pad - shape.dilation * (shape.kh - 1) - 1) // shape.stride + 1
        if out < 1:
            return None
        new = replace(shape, M=m, K=cin // g * shape.kh * shape.kw, N=out * out, groups=g,
                      in_c=cin, in_h=side, in_w=side, out_h=out, out_w=out)
    if new.weights > MAX_WEIGHTS or new.dense_macs > MAX_DENSE_MACS // 4:
        return None
    return new


def adaptive_units(records: Sequence[dict[str, Any]], model: AnalyticalCPUModel, n_units: int,
                   known: set[str], rng: np.random.Generator, round_no: int,
                   threads: Sequence[int]) -> list[PlanUnit]:
    """New units near the points the correction predicts worst on held-out shapes."""
    if len(records) < 40:
        return []
    rows = rows_from_records(records)
    est = model.estimate(rows)
    lanes = max(c.simd_fp32_lanes for c in model.profile.clusters)
    X = correction_features(rows, est, lanes)
    y = np.log(np.asarray([r["median_s"] for r in records]) / est.analytical_s)
    groups = np.asarray([Shape.from_dict(r["shape"]).split_key for r in records])
    _, inv = np.unique(groups, return_inverse=True)
    folds = rng.permutation(int(inv.max()) + 1)[inv] % 3
    oof = np.empty(len(y))
    for k in range(3):
        test = folds == k
        if test.all() or not test.any():
            return []
        ens = fit_ensemble(X[~test], y[~test], n_estimators=80, rng=rng)
        oof[test] = ens.predict(X[test])
    worst = np.argsort(-np.abs(y - oof))
    out: list[PlanUnit] = []
    seen_units: set[str] = set()
    for i in worst:
        if len(out) >= n_units:
            break
        base = unit_of_record(records[int(i)])
        if base.key in seen_units:
            continue
        seen_units.add(base.key)
        for _ in range(4):
            shape = _jitter(base.shape, rng)
            if shape is None or base.spec not in legal_specs(shape, [base.spec]):
                continue
            unit = PlanUnit(shape, base.spec, f"adaptive:{round_no}:{base.key}",
                            stratum_of(shape, base.spec))
            if unit.key in known or any(unit.point_key(t) in known for t in threads):
                continue
            known.add(unit.key)
            out.append(unit)
            break
    return out


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
def _median(values: Iterable[float]) -> float:
    return float(np.median(np.asarray(list(values), dtype=np.float64)))


class _Loop:
    """State of one calibration session (see ``run_calibration``)."""

    def __init__(self, plan: Plan, profile: DeviceProfile, measurer: Measurer,
                 points: PointsFile, state: LoadedPoints, *, budget_s: float,
                 progress: _Progress, clock: Callable[[], float], batch_points: int,
                 reference_interval_s: float, drift_tol: float, rebaseline_after: int,
                 max_call_s: float, adaptive: bool, adaptive_after: float, adaptive_round: int,
                 seed: int, session_record: dict[str, Any],
                 started_at: float | None = None) -> None:
        self.plan, self.profile, self.measurer = plan, profile, measurer
        self.points, self.state = points, state
        self.budget_s, self.progress, self.clock = budget_s, progress, clock
        self.batch_points, self.reference_interval_s = batch_points, reference_interval_s
        self.drift_tol, self.rebaseline_after = drift_tol, rebaseline_after
        self.max_call_s, self.adaptive, self.adaptive_after = max_call_s, adaptive, adaptive_after
        self.adaptive_round = adaptive_round
        self.rng = np.random.default_rng(seed)
        self.session = int(session_record["session"])
        self.fp = str(session_record["fingerprint_id"])
        self.model = AnalyticalCPUModel(profile, cache_state=CACHE_STATE)
        self.lanes = max(c.simd_fp32_lanes for c in profile.clusters)
        self.t0 = clock() if started_at is None else started_at
        self.batch = 0
        self.batch_keys: list[str] = []
        self.batch_units: dict[str, PlanUnit] = {}
        self.last_probe = self.t0
        self.baseline = 0.0
        self.consecutive_drift = 0
        self.retries: dict[str, int] = {}
        self.measured = self.remeasured = self.drift_events = self.rebaselines = 0
        self.adaptive_count = self.skipped = 0
        self.known = set(state.points) | set(state.pending) | {u.key for u in plan.units}
        self.queue: deque[PlanUnit] = deque()
        self.adaptive_queue: deque[PlanUnit] = deque()
        self.next_adaptive_at = 0.0
        self.take_adaptive = False

    # -------------------------------------------------------------- time
    def elapsed(self) -> float:
        return self.clock() - self.t0

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    # -------------------------------------------------------------- drift probe
    def _probe(self) -> float:
        r = self.measurer.reference()
        return float(r["median_s"])

    def start(self) -> None:
        self.baseline = _median(self._probe() for _ in range(3))
        self.points.append({"type": "reference", "session": self.session, "batch": -1,
                            "kind": "baseline", "median_s": self.baseline, "ratio": 1.0,
                            "ok": True, "t": round(self.elapsed(), 3)})
        self.last_probe = self.clock()

    def check_drift(self, final: bool = False) -> None:
        """Re-time the reference; mark the batch drifted (and queue it again) when off."""
        if not self.batch_keys:
            return
        value = self._probe()
        ratio = value / self.baseline
        ok = abs(ratio - 1.0) <= self.drift_tol
        self.points.append({"type": "reference", "session": self.session,
                            "batch": self.batch, "kind": "probe", "median_s": value,
                            "ratio": round(ratio, 5), "ok": ok, "t": round(self.elapsed(), 3)})
        if ok:
            self.consecutive_drift = 0
        else:
            self.drift_events += 1
            self.consecutive_drift += 1
            self.points.append({"type": "drift", "session": self.session, "batch": self.batch,
                                "ratio": round(ratio, 5), "keys": list(self.batch_keys),
                                "t": round(self.elapsed(), 3)})
            log.info("reference GEMM at %.3f x baseline: %d points of batch %d to re-measure",
                     ratio, len(self.batch_keys), self.batch)
            for key in self.batch_keys:
                rec = self.state.points.pop(key, None)
                if rec is not None:
                    self.state.pending[key] = rec
            if not final:
                # measure them again first (each unit at most twice more)
                for unit in reversed(list(self.batch_units.values())):
                    n = self.retries.get(unit.key, 0)
                    if n < 2:
                        self.retries[unit.key] = n + 1
                        self.queue.appendleft(unit)
            if self.consecutive_drift >= self.rebaseline_after:
                log.warning("reference GEMM stayed at %.3f x its baseline for %d probes: "
                            "taking that as the new baseline", ratio, self.consecutive_drift)
                self.baseline = value
                self.consecutive_drift = 0
                self.rebaselines += 1
                self.points.append({"type": "reference", "session": self.session,
                                    "batch": self.batch, "kind": "rebaseline",
                                    "median_s": value, "ratio": 1.0, "ok": True,
                                    "t": round(self.elapsed(), 3)})
                # what waited for the old speed to come back is measured at the new one
                self.retries.clear()
                queued = {u.key for u in self.queue}
                for rec in list(self.state.pending.values()):
                    unit = unit_of_record(rec)
                    if unit.key not in queued and not final:
                        queued.add(unit.key)
                        self.queue.append(unit)
        self.batch += 1
        self.batch_keys = []
        self.batch_units = {}
        self.last_probe = self.clock()

    # -------------------------------------------------------------- one unit
    def _predicted_wall_s(self, lat: np.ndarray, unit: PlanUnit) -> float:
        timing = getattr(self.measurer, "timing", TimingOptions())
        wall = 0.0
        for t_call in lat:
            t_call = max(float(t_call) * 1.5, 1e-6)  # the uncalibrated model may be optimistic
            reps = min(max(3, math.ceil(timing.min_time_s / t_call)), timing.max_reps)
            wall += (timing.warmup + reps) * t_call
        setup = unit.shape.weights * (2e-7 if unit.spec != "dense" else 2e-8)
        return wall + setup + 0.01

    def run_unit(self, unit: PlanUnit) -> bool:
        """Time one unit; False when it was skipped (too long for the budget or a call)."""
        todo = [t for t in self.plan.threads if unit.point_key(t) not in self.state.points]
        if not todo:
            return True
        rows = unit_rows([unit] * len(todo), todo)
        est = self.model.estimate(rows)
        if float(est.latency_s.max()) > self.max_call_s:
            self.skipped += 1
            log.info("skipping %s: one call takes ~%.2f s", unit.key, float(est.latency_s.max()))
            return False
        if self._predicted_wall_s(est.latency_s, unit) > self.left() - self._reserve():
            self.skipped += 1
            return False
        results = self.measurer.measure(unit, todo, [str(k) for k in est.kernel])
        recs = [point_record(unit, m, session=self.session, batch=self.batch,
                             analytical_s=0.0, fingerprint=self.fp, elapsed_s=self.elapsed())
                for m in results]
        # the row as timed: sparse statistics of the real mask, not the expectation
        real_rows = rows_from_records(recs)
        real = self.model.estimate(real_rows)
        X = correction_features(real_rows, real, self.lanes)
        for i, (m, rec) in enumerate(zip(results, recs, strict=True)):
            key = unit.point_key(m.threads)
            remeasure = key in self.state.pending
            rec["analytical_s"] = float(real.analytical_s[i])
            rec["features"] = {name: round(float(v), 6)
                               for name, v in zip(CORRECTION_FEATURES, X[i], strict=True)}
            self.points.append(rec)
            self.state.points[key] = rec
            self.state.pending.pop(key, None)
            self.batch_keys.append(key)
            self.batch_units[unit.key] = unit
            self.measured += 1
            self.remeasured += int(remeasure)
        self.progress.update(self.elapsed(), self.measured, len(self.state.points),
                             self.drift_events, f"{unit.spec} {unit.shape.key}")
        return True

    def _reserve(self) -> float:
        return 0.3 if self.batch_keys else 0.05  # the last drift probe must fit

    def _maybe_probe(self) -> None:
        if (len(self.batch_keys) >= self.batch_points
                or self.clock() - self.last_probe >= self.reference_interval_s):
            self.check_drift()

    def _maybe_adaptive(self, plan_done: bool = False) -> None:
        if not self.adaptive:
            return
        if not plan_done and self.elapsed() < self.adaptive_after * self.budget_s:
            return
        if self.adaptive_queue or self.elapsed() < self.next_adaptive_at:
            return
        if self.left() < 0.15 * self.budget_s:
            return
        t = self.clock()
        records = list(self.state.points.values())
        try:
            new = adaptive_units(records, self.model, 24, self.known, self.rng,
                                 self.adaptive_round, self.plan.threads)
        except (GrimsimError, ValueError) as exc:  # never lose the session to a bad fit
            log.warning("adaptive sampling skipped: %s", exc)
            new = []
        self.adaptive_round += 1
        self.adaptive_queue.extend(new)
        self.adaptive_count += len(new)
        spent = self.clock() - t
        self.next_adaptive_at = self.elapsed() + max(10.0 * spent, 0.05 * self.budget_s)

    def _next_unit(self, plan_iter: deque[PlanUnit]) -> PlanUnit | None:
        if self.queue:
            return self.queue.popleft()
        self._maybe_adaptive(plan_done=not plan_iter)
        if self.adaptive_queue and (self.take_adaptive or not plan_iter):
            self.take_adaptive = False
            return self.adaptive_queue.popleft()
        self.take_adaptive = bool(self.adaptive_queue)
        return plan_iter.popleft() if plan_iter else None

    def run(self) -> str:
        self.start()
        # first what earlier sessions measured during drift, then the plan
        for key, rec in self.state.pending.items():
            unit = unit_of_record(rec)
            if unit.key not in {u.key for u in self.queue}:
                self.queue.append(unit)
            self.known.add(key)
        done = set(self.state.points)
        plan_iter = deque(u for u in self.plan.units
                          if any(u.point_key(t) not in done for t in self.plan.threads))
        stopped = "done"
        try:
            while True:
                if self.left() <= self._reserve():
                    stopped = "budget"
                    break
                nxt = self._next_unit(plan_iter)
                if nxt is None:
                    break
                self.run_unit(nxt)
                self._maybe_probe()
        except KeyboardInterrupt:
            stopped = "interrupted"
            log.warning("calibration interrupted; every point measured so far is saved")
        if stopped != "interrupted":
            self.check_drift(final=True)
        self.progress.update(self.elapsed(), self.measured, len(self.state.points),
                             self.drift_events, stopped, force=True)
        self.progress.close()
        return stopped


def _check_compatible(state: LoadedPoints, fp: dict[str, Any], fp_id: str, path: Path) -> None:
    for s in state.sessions:
        if s.get("fingerprint_id") != fp_id:
            old = s.get("fingerprint", {})
            raise CalibrationError(
                f"{path}: session {s.get('session')} was measured on another machine or build "
                f"({old.get('cpu_model')}, {old.get('simd_level')}, "
                f"{old.get('hardware_threads')} threads) than this one ({fp.get('cpu_model')}, "
                f"{fp.get('simd_level')}, {fp.get('hardware_threads')} threads); use a new "
                "--out folder")


def run_calibration(plan: Plan, profile: DeviceProfile, measurer: Measurer,
                    out_dir: str | Path, *, budget_s: float = 600.0, progress: bool = True,
                    device_name: str | None = None, clock: Callable[[], float] = time.monotonic,
                    batch_points: int = 16, reference_interval_s: float = 20.0,
                    drift_tol: float = 0.05, rebaseline_after: int = 3,
                    max_call_s: float = 0.25, adaptive: bool = True,
                    adaptive_after: float = 0.6, seed: int = 0,
                    progress_stream: IO[str] | None = None,
                    started_at: float | None = None) -> CalibrationResult:
    """The calibration loop on an explicit plan and measurer (``calibrate`` wires the real
    ones; tests pass fakes and a fake ``clock``). ``started_at`` (a ``clock()`` value) counts
    set-up done before the call against the budget."""
    if not budget_s > 0:
        raise GrimsimError(f"budget must be a positive number of seconds, got {budget_s}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CalibrationError(f"--out {out}: exists and is not a folder")
    points = PointsFile(out)
    state = points.load(repair=True)
    fp = measurer.fingerprint(profile)
    fp_id = fingerprint_id(fp)
    _check_compatible(state, fp, fp_id, points.path)
    timing = getattr(measurer, "timing", None)
    session_record = {
        "type": "session", "session": state.next_session, "grimsim": __version__,
        "device": device_name or profile.name, "profile_id": profile.id,
        "profile": profile_to_dict(profile), "fingerprint": fp, "fingerprint_id": fp_id,
        "cache_state": CACHE_STATE, "winograd": "engine", "budget_s": budget_s,
        "threads": list(plan.threads),
        "timing": None if timing is None else {"min_time_s": timing.min_time_s,
                                               "warmup": timing.warmup,
                                               "max_reps": timing.max_reps},
        "plan": {"units": len(plan.units), "points": plan.n_points,
                 "networks": list(plan.networks), **plan.meta},
        "started": _utc_now()}
    points.append(session_record)
    loop = _Loop(plan, profile, measurer, points, state, budget_s=budget_s,
                 progress=_Progress(progress, budget_s, progress_stream), clock=clock,
                 batch_points=batch_points, reference_interval_s=reference_interval_s,
                 drift_tol=drift_tol, rebaseline_after=rebaseline_after,
                 max_call_s=max_call_s, adaptive=adaptive, adaptive_after=adaptive_after,
                 adaptive_round=1000 * len(state.sessions), seed=seed + state.next_session,
                 session_record=session_record, started_at=started_at)
    stopped = loop.run()
    final = points.load()
    return CalibrationResult(
        out_dir=out, points_path=points.path, session=loop.session, stopped=stopped,
        elapsed_s=loop.elapsed(), measured=loop.measured, remeasured=loop.remeasured,
        drift_events=loop.drift_events, rebaselines=loop.rebaselines,
        adaptive_units=loop.adaptive_count, total_points=len(final.points),
        pending_points=len(final.pending), plan_points=plan.n_points,
        skipped_units=loop.skipped)


def _utc_now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def resolve_profile(device: str) -> DeviceProfile:
    """The profile to calibrate: ``host`` is detected and measured (clock, bandwidth);
    anything else is a built-in name, ``name@version`` or a profile path."""
    if device == "host":
        from grimsim.calibration.host import measured_host_profile

        return measured_host_profile()
    return load_profile(device)


def calibrate(device_name: str, out_dir: str | Path, budget_s: float = 600,
              exclude_networks: Iterable[str] = (), threads: Sequence[int] = (1, 2),
              progress: bool = True, *, schemes: Sequence[str] = DEFAULT_SCHEMES,
              space_filling: int = 192, min_time_s: float = 0.03, adaptive: bool = True,
              seed: int = 0) -> CalibrationResult:
    """Calibrate ``device_name`` (``host``, a profile name or path) on this machine.

    Times the plan (zoo shapes minus ``exclude_networks``, space-filling shapes, ``schemes``,
    ``threads`` up to the machine's hardware threads) with the C++ kernels for at most
    ``budget_s`` seconds, appending every point to ``<out_dir>/points.jsonl``; running it
    again on the same folder resumes. Progress goes to stderr when ``progress``.
    """
    import grimsim._kernels as kernels

    started = time.monotonic()  # plan building and host measurement count against the budget
    profile = resolve_profile(device_name)
    plan = build_plan(exclude_networks, threads, schemes=schemes, space_filling=space_filling,
                      seed=seed, max_threads=int(kernels.hardware_threads()))
    measurer = KernelMeasurer(TimingOptions(min_time_s=min_time_s), seed=seed)
    return run_calibration(plan, profile, measurer, out_dir, budget_s=budget_s,
                           progress=progress, device_name=device_name, adaptive=adaptive,
                           seed=seed, started_at=started)
