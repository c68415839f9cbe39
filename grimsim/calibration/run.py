"""``grimsim calibrate``: time the sweep plan on this device within a budget, resumably.

The loop takes plan units in order (after re-measuring any point a previous session took
during drift), times each at every thread count, and appends every point to
``<out>/points.jsonl`` the moment it is measured. Every ``batch_points`` points (or
``reference_interval_s``) a drift probe is re-timed - a fixed reference GEMM in L2 (the
core's speed) and a streaming read in the last-level cache (the shared caches' and
memory's, which other tenants load): if either is more than ``drift_tol`` away from the
session's baseline, the batch since the last good probe is marked
drifted (a ``drift`` line) and queued again. A probe faster than the baseline moves it at
once (interference only adds time: the baseline was taken in a slow spell); after
``rebaseline_after`` slow probes in a row the machine is taken to have settled at a new speed
and the baseline moves too (logged;
``grimsim fit`` leaves out points of batches whose probe was slow against the session's
usual speed, so a slow stretch taken as the new normal does not enter the fit).

Each point is timed in ``passes`` passes at least ``pass_gap_s`` apart: after a unit's first
pass its later passes are queued and taken, once due, between new units (the measurer keeps
the unit's operands meanwhile); after each pass the point's record is written again with the
statistics over its passes so far (a drifted batch sends a later pass back to its previous
record and queues it again). The budget keeps room for the passes still owed; a point left
with fewer passes (an interruption) keeps them - a resumed session does not add passes to
earlier points. A point all of whose passes ran under CPU contention (Linux PSI) or on
crowded cores, or whose two fastest passes still differ by more than ``settle_tol``, gets up
to two more; when a probe finds the machine slower, the loop idles a few seconds for its speed
to come back rather than measure a slow stretch.

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
    combine_passes,
    fingerprint_id,
    pass_contended,
    point_record,
    rows_from_records,
    unit_of_record,
    unit_rows,
)
from grimsim.calibration.plan import (
    DEFAULT_SCHEMES,
    MAX_DENSE_MACS,
    MAX_WEIGHTS,
    SPACE_FILLING,
    Plan,
    PlanUnit,
    Shape,
    build_plan,
    legal_specs,
    stratum_of,
)
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.features import (
    CORRECTION_FEATURES,
    correction_features,
    feature_machine,
    one_thread_estimate,
)
from grimsim.cost.learned import CalibrationError, fit_ensemble
from grimsim.cost.profile import DeviceProfile, load_profile, profile_to_dict
from grimsim.errors import GrimsimError
from grimsim.execute.pools import quiet_thread_pools

__all__ = ["CalibrationResult", "Measurer", "calibrate", "resolve_profile", "run_calibration"]

log = logging.getLogger(__name__)

#: Calibration times kernels repeated without flushing caches: the analytical model it is
#: compared with runs in the matching state.
CACHE_STATE = "warm"
#: Passes a point may take beyond the planned ones while every pass so far was contended.
_EXTRA_PASSES = 2


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
    passes: int = 1  # passes each point is timed in
    repeat_passes: int = 0  # timings of points' second and later passes
    waited_s: float = 0.0  # idled while the machine was slow

    def summary(self) -> str:
        passes = (f", timed in {self.passes} passes ({self.repeat_passes} repeat timings)"
                  if self.passes > 1 else "")
        if self.waited_s > 0:
            passes += f", {self.waited_s:.0f} s idle while the machine was slow"
        return (f"session {self.session}: {self.measured} points in {self.elapsed_s:.0f} s "
                f"({self.stopped}){passes}; {self.total_points} valid points in "
                f"{self.points_path} ({self.plan_points} planned), {self.remeasured} "
                f"re-measured after {self.drift_events} drift events, "
                f"{self.adaptive_units} adaptive units")


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
    X = correction_features(rows, est, model.profile,
                            one_thread=one_thread_estimate(model, rows, est))
    y = np.log(np.asarray([r["min_s"] for r in records]) / est.analytical_s)
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
                 seed: int, session_record: dict[str, Any], passes: int = 1,
                 pass_gap_s: float = 2.0, contended_tol: float = 0.25,
                 settle_tol: float | None = None,
                 max_wait_s: float = 0.0, sleep: Callable[[float], None] = time.sleep,
                 started_at: float | None = None) -> None:
        self.plan, self.profile, self.measurer = plan, profile, measurer
        self.points, self.state = points, state
        self.budget_s, self.progress, self.clock = budget_s, progress, clock
        self.batch_points, self.reference_interval_s = batch_points, reference_interval_s
        self.drift_tol, self.rebaseline_after = drift_tol, rebaseline_after
        self.max_call_s, self.adaptive, self.adaptive_after = max_call_s, adaptive, adaptive_after
        self.adaptive_round = adaptive_round
        self.passes, self.pass_gap_s = passes, pass_gap_s
        self.contended_tol, self.settle_tol = contended_tol, settle_tol
        self.max_wait_s, self.sleep, self.wait_step_s = max_wait_s, sleep, 0.5
        self.waited_s = 0.0
        self.rng = np.random.default_rng(seed)
        self.session = int(session_record["session"])
        self.fp = str(session_record["fingerprint_id"])
        self.model = AnalyticalCPUModel(profile, cache_state=CACHE_STATE)
        self.machine = feature_machine(profile)
        self.t0 = clock() if started_at is None else started_at
        self.batch = 0
        self.batch_keys: list[str] = []
        self.batch_units: dict[str, PlanUnit] = {}  # units whose first pass is in the batch
        # points of the batch from later passes: the record they replaced first, the unit,
        # its first pass in the batch and how many passes the batch added
        self.batch_repeats: dict[str, tuple[dict[str, Any], PlanUnit, int, int]] = {}
        self.last_probe = self.t0
        self.baseline: tuple[float, ...] = ()
        self.consecutive_drift = 0
        self.retries: dict[str, int] = {}
        self.measured = self.remeasured = self.drift_events = self.rebaselines = 0
        self.adaptive_count = self.skipped = self.repeated = 0
        self.known = set(state.points) | set(state.pending) | {u.key for u in plan.units}
        self.queue: deque[PlanUnit] = deque()
        self.adaptive_queue: deque[PlanUnit] = deque()
        self.next_adaptive_at = 0.0
        self.take_adaptive = False
        # later passes: the passes timed so far per unit and thread count, and the due queue
        # of (due clock, unit, pass number, expected seconds); due times only grow
        self.pass_runs: dict[str, dict[int, list[Measurement]]] = {}
        self.pass_wall_s: dict[str, float] = {}
        self.max_pass_s = self.probe_s = 0.0  # longest later pass and drift probe so far
        self.due: deque[tuple[float, PlanUnit, int, float]] = deque()

    # -------------------------------------------------------------- time
    def elapsed(self) -> float:
        return self.clock() - self.t0

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def _pending_pass_s(self) -> float:
        return sum(cost for _, _, _, cost in self.due)

    def _owed_s(self) -> float:
        """Time new units may not take: the passes still owed, one more unit's passes, the
        drift probes between them and the final probe's reserve."""
        if self.passes == 1:
            return 0.0
        probes = 1 + len(self.due) * 2 // max(1, self.batch_points)
        return (self._pending_pass_s() + self.passes * self.max_pass_s
                + probes * self.probe_s + 0.3)

    # -------------------------------------------------------------- drift probe
    def _probe(self) -> tuple[float, ...]:
        """The reference GEMM's fastest call (the statistic that repeats best; its median
        moved by 5-15 % from one probe to the next on the shared development VM), then the
        reference streaming read's fastest pass where the measurer gives one."""
        started = self.clock()
        r = self.measurer.reference()
        self.probe_s = max(self.probe_s, self.clock() - started)
        gemm = float(r.get("min_s", r["median_s"]))
        stream = r.get("stream_min_s")
        return (gemm,) if stream is None else (gemm, float(stream))

    def _log_reference(self, kind: str, value: tuple[float, ...], ratio: float = 1.0,
                       ok: bool = True, batch: int | None = None) -> None:
        rec: dict[str, Any] = {"type": "reference", "session": self.session,
                               "batch": self.batch if batch is None else batch, "kind": kind,
                               "min_s": value[0]}
        if len(value) > 1:
            rec["stream_min_s"] = value[1]
        rec.update({"ratio": round(ratio, 5), "ok": ok, "t": round(self.elapsed(), 3)})
        self.points.append(rec)

    def _probe_baseline(self, kind: str) -> tuple[tuple[float, ...], float, bool]:
        """Probe and log it: (value, ratio to the baseline of the part furthest from it,
        every part within ``drift_tol``)."""
        value = self._probe()
        ratios = [v / b for v, b in zip(value, self.baseline, strict=True)]
        ratio = max(ratios, key=lambda r: abs(math.log(r)))
        ok = all(abs(r - 1.0) <= self.drift_tol for r in ratios)
        self._log_reference(kind, value, ratio, ok)
        return value, ratio, ok

    def start(self) -> None:
        probes = [self._probe() for _ in range(3)]
        self.baseline = tuple(_median(p[i] for p in probes) for i in range(len(probes[0])))
        self._log_reference("baseline", self.baseline, batch=-1)
        self.last_probe = self.clock()

    def check_drift(self, final: bool = False) -> None:
        """Re-time the reference; mark the batch drifted (and queue it again) when off."""
        if not self.batch_keys:
            return
        value, ratio, ok = self._probe_baseline("probe")
        if ok:
            self.consecutive_drift = 0
        else:
            self.drift_events += 1
            self.consecutive_drift += 1
            self.points.append({"type": "drift", "session": self.session, "batch": self.batch,
                                "ratio": round(ratio, 5), "keys": list(self.batch_keys),
                                "t": round(self.elapsed(), 3)})
            log.info("drift probe at %.3f x baseline: %d points of batch %d to re-measure",
                     ratio, len(self.batch_keys), self.batch)
            self._drop_batch(final)
            if ratio > 1.0 and not final and self._wait_for_speed():
                self.consecutive_drift = 0  # a slow stretch, over now
            # Interference only adds time, so a reference faster than the baseline means the
            # baseline was taken in a slow spell: it moves at once (waiting for three such
            # probes dropped three batches, and a 4 s calibration on the Sapphire Rapids VM
            # ended with no point). A slower one moves it only when it persists.
            faster = ratio < 1.0
            if faster or self.consecutive_drift >= self.rebaseline_after:
                if faster:
                    log.info("drift probe at %.3f x its baseline: the baseline was taken "
                             "in a slow spell; taking the faster value", ratio)
                else:
                    log.warning("drift probe stayed at %.3f x its baseline for %d probes: "
                                "taking that as the new baseline", ratio,
                                self.consecutive_drift)
                # a faster part moves its baseline; a persistently slow probe moves them all
                self.baseline = (tuple(min(v, b) for v, b in zip(value, self.baseline,
                                                                 strict=True))
                                 if faster else value)
                self.consecutive_drift = 0
                self.rebaselines += 1
                self._log_reference("rebaseline", self.baseline)
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
        self.batch_repeats = {}
        self.last_probe = self.clock()

    def _wait_for_speed(self) -> bool:
        """Idle while the machine is slow (re-probing every ``wait_step_s``), for at most
        ``max_wait_s`` at a time and a quarter of the budget in all; True once the
        reference is back within ``drift_tol`` of the baseline."""
        waited = 0.0
        while (waited < self.max_wait_s and self.waited_s < 0.25 * self.budget_s
               and self.left() > self._reserve() + self._owed_s() + self.wait_step_s):
            self.sleep(self.wait_step_s)
            waited += self.wait_step_s
            self.waited_s += self.wait_step_s
            if self._probe_baseline("wait")[2]:
                return True
        return False

    def _drop_batch(self, final: bool) -> None:
        """Undo a drifted batch: first passes wait to be measured again from scratch (each
        unit at most twice more), later passes fall back to the point's previous record and
        are timed again."""
        restart = set(self.batch_units)
        again: dict[str, tuple[PlanUnit, int]] = {}
        for key in dict.fromkeys(self.batch_keys):
            repeat = self.batch_repeats.get(key)
            if repeat is not None and repeat[1].key not in restart:
                prev, unit, pass_no, added = repeat
                self.state.points[key] = prev
                runs = self.pass_runs.get(unit.key, {}).get(int(prev["threads"]), [])
                del runs[max(1, len(runs) - added):]
                again[unit.key] = (unit, pass_no)
                continue
            rec = self.state.points.pop(key, None)
            if rec is not None:
                self.state.pending[key] = rec
        for unit_key in restart:  # a re-measure starts its passes over
            self.pass_runs.pop(unit_key, None)
            self.pass_wall_s.pop(unit_key, None)
        self.due = deque(d for d in self.due if d[1].key not in restart and d[1].key not in again)
        if final:
            return
        for unit_key, (unit, pass_no) in again.items():
            tag = f"{unit_key}#{pass_no}"
            n = self.retries.get(tag, 0)
            if n < 2 and unit_key in self.pass_runs:
                self.retries[tag] = n + 1
                self._schedule(unit, pass_no)
            else:  # keep the passes that were good
                self._forget(unit_key)
        for unit in reversed(list(self.batch_units.values())):
            n = self.retries.get(unit.key, 0)
            if n < 2:
                self.retries[unit.key] = n + 1
                self.queue.appendleft(unit)
            else:
                self._release(unit.key)

    def _release(self, unit_key: str) -> None:
        # the real measurer keeps a unit's operands for its later passes; fakes keep nothing
        release = getattr(self.measurer, "release", None)
        if release is not None:
            release(unit_key)

    # -------------------------------------------------------------- passes
    def _schedule(self, unit: PlanUnit, pass_no: int) -> None:
        """Queue pass ``pass_no`` of a unit; the entry holds the time of every pass the unit
        still owes, each as long as its first pass less the set-up."""
        due = max(self.clock() + self.pass_gap_s, self.due[-1][0] if self.due else 0.0)
        cost_s = self.pass_wall_s.get(unit.key, 0.0)
        self.due.append((due, unit, pass_no, cost_s * max(1, self.passes - pass_no + 1)))

    def run_pass(self, unit: PlanUnit, pass_no: int) -> None:
        """Time a later pass of a unit and rewrite its points with the passes so far."""
        runs = self.pass_runs.get(unit.key)
        if not runs:
            return
        threads = sorted(runs)
        results = self.measurer.measure(unit, threads, [runs[t][0].kernel for t in threads])
        for m in results:
            key = unit.point_key(m.threads)
            prev = self.state.points.get(key)
            if prev is None or int(m.threads) not in runs:
                continue  # the point was dropped meanwhile (drift): its first pass comes again
            lst = runs[int(m.threads)]
            lst.append(m)
            rec = point_record(unit, combine_passes(lst), session=self.session,
                               batch=self.batch, analytical_s=float(prev["analytical_s"]),
                               fingerprint=self.fp, elapsed_s=self.elapsed(),
                               features=prev.get("features"), passes=lst)
            self.points.append(rec)
            self.state.points[key] = rec
            self.batch_keys.append(key)
            first = self.batch_repeats.get(key)
            self.batch_repeats[key] = ((prev, unit, pass_no, 1) if first is None
                                       else (first[0], unit, first[2], first[3] + 1))
            self.repeated += 1
        if pass_no < self.passes or (pass_no < self.passes + _EXTRA_PASSES
                                     and (self._all_contended(runs) or self._unsettled(runs))):
            self._schedule(unit, pass_no + 1)
        else:
            self._forget(unit.key)
        self.progress.update(self.elapsed(), self.measured, len(self.state.points),
                             self.drift_events, f"pass {pass_no} {unit.spec} {unit.shape.key}")

    def _all_contended(self, runs: dict[int, list[Measurement]]) -> bool:
        """True when some thread count of the unit has no pass yet that ran on an
        uncontended machine (``pass_contended`` with ``contended_tol``)."""
        return any(all(pass_contended(m, self.contended_tol) for m in lst)
                   for lst in runs.values())

    def _unsettled(self, runs: dict[int, list[Measurement]]) -> bool:
        """True when some thread count of the unit has two passes or more and its two
        fastest calls (each pass's fastest) differ by more than ``settle_tol``: the fastest
        may still be a slow moment's, so another pass is worth its time."""
        if self.settle_tol is None:
            return False
        for lst in runs.values():
            fastest = sorted(m.min_s for m in lst)
            if len(fastest) >= 2 and fastest[1] > fastest[0] * (1.0 + self.settle_tol):
                return True
        return False

    def _forget(self, unit_key: str) -> None:
        self.pass_runs.pop(unit_key, None)
        self.pass_wall_s.pop(unit_key, None)
        self._release(unit_key)

    # -------------------------------------------------------------- one unit
    def _predicted_wall_s(self, lat: np.ndarray, unit: PlanUnit) -> float:
        timing = getattr(self.measurer, "timing", TimingOptions())
        wall = 0.0
        for t_call in lat:
            t_call = max(float(t_call) * 1.5, 1e-6)  # the uncalibrated model may be optimistic
            reps = min(max(3, math.ceil(timing.min_time_s / t_call)), timing.max_reps)
            wall += (timing.warmup + reps) * t_call * self.passes
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
        if (self._predicted_wall_s(est.latency_s, unit)
                > self.left() - self._reserve() - self._owed_s()):
            self.skipped += 1
            return False
        started = self.clock()
        results = self.measurer.measure(unit, todo, [str(k) for k in est.kernel])
        wall_s = self.clock() - started - max((m.setup_s for m in results), default=0.0)
        several = self.passes > 1
        recs = [point_record(unit, m, session=self.session, batch=self.batch,
                             analytical_s=0.0, fingerprint=self.fp, elapsed_s=self.elapsed(),
                             passes=[m] if several else ())
                for m in results]
        # the row as timed: sparse statistics of the real mask, not the expectation
        real_rows = rows_from_records(recs)
        real = self.model.estimate(real_rows)
        X = correction_features(real_rows, real, self.machine,
                                one_thread=one_thread_estimate(self.model, real_rows, real))
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
        if several:
            self.pass_runs[unit.key] = {m.threads: [m] for m in results}
            self.pass_wall_s[unit.key] = max(wall_s, 0.0)
            self.max_pass_s = max(self.max_pass_s, wall_s)
            self._schedule(unit, 2)
        else:
            self._release(unit.key)
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

    def _next_new_unit(self, plan_iter: deque[PlanUnit]) -> PlanUnit | None:
        if self.queue:
            return self.queue.popleft()
        self._maybe_adaptive(plan_done=not plan_iter)
        if self.adaptive_queue and (self.take_adaptive or not plan_iter):
            self.take_adaptive = False
            return self.adaptive_queue.popleft()
        self.take_adaptive = bool(self.adaptive_queue)
        return plan_iter.popleft() if plan_iter else None

    def _next(self, plan_iter: deque[PlanUnit]) -> tuple[PlanUnit, int] | None:
        """The next (unit, pass): a later pass once it is due, else a new unit while the
        budget leaves room for the passes still owed, else the owed passes early."""
        if self.due and self.due[0][0] <= self.clock():
            _, unit, pass_no, _ = self.due.popleft()
            return unit, pass_no
        if self.left() - self._reserve() > self._owed_s():
            new = self._next_new_unit(plan_iter)
            if new is not None:
                return new, 1
        if self.due:
            _, unit, pass_no, _ = self.due.popleft()
            return unit, pass_no
        return None

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
                nxt = self._next(plan_iter)
                if nxt is None:
                    if plan_iter or self.queue or self.adaptive_queue:
                        stopped = "budget"  # what is left would not fit
                    break
                unit, pass_no = nxt
                if pass_no == 1:
                    self.run_unit(unit)
                else:
                    self.run_pass(unit, pass_no)
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
                f"{old.get('hardware_threads')} threads, kernel sources "
                f"{old.get('kernels_source')}) than this one ({fp.get('cpu_model')}, "
                f"{fp.get('simd_level')}, {fp.get('hardware_threads')} threads, kernel sources "
                f"{fp.get('kernels_source')}); use a new --out folder")


def run_calibration(plan: Plan, profile: DeviceProfile, measurer: Measurer,
                    out_dir: str | Path, *, budget_s: float = 600.0, progress: bool = True,
                    device_name: str | None = None, clock: Callable[[], float] = time.monotonic,
                    batch_points: int = 16, reference_interval_s: float = 20.0,
                    drift_tol: float = 0.10, rebaseline_after: int = 3,
                    max_call_s: float = 0.25, adaptive: bool = True,
                    adaptive_after: float = 0.6, seed: int = 0,
                    progress_stream: IO[str] | None = None,
                    started_at: float | None = None, passes: int = 1,
                    pass_gap_s: float = 2.0, contended_tol: float = 0.25,
                    settle_tol: float | None = None,
                    max_wait_s: float = 0.0, sleep: Callable[[float], None] = time.sleep
                    ) -> CalibrationResult:
    """The calibration loop on an explicit plan and measurer (``calibrate`` wires the real
    ones; tests pass fakes and a fake ``clock``). ``started_at`` (a ``clock()`` value) counts
    set-up done before the call against the budget. ``passes``: how many times each point
    is timed, at least ``pass_gap_s`` apart (other units are timed in between); its record
    is rewritten after each pass with the statistics over the passes so far; a point whose
    passes all ran while other tasks waited for a CPU more than ``contended_tol`` of the time
    (Linux PSI) or on crowded cores gets up to two more passes, as does one whose two
    fastest passes differ by more than ``settle_tol`` (None: never). ``drift_tol`` is 10 %:
    on the shared development VM the reference GEMM's fastest call moved by up to 8 %
    between probes a second apart with nothing else running (two speed modes about 15 %
    apart), so a tighter tolerance re-measures batches for noise, not drift. ``max_wait_s``:
    when a probe finds the machine slower, idle (``sleep``, re-probing) up to this long for
    its speed to come back before going on - on the shared VM slow stretches of +20 % lasted
    5-10 s - and at most a quarter of the budget in all."""
    if not budget_s > 0:
        raise GrimsimError(f"budget must be a positive number of seconds, got {budget_s}")
    if passes < 1 or pass_gap_s < 0:
        raise GrimsimError(f"passes must be >= 1 and pass_gap_s >= 0, got {passes} and "
                           f"{pass_gap_s}")
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
                                               "max_reps": timing.max_reps,
                                               "passes": passes, "pass_gap_s": pass_gap_s,
                                               "contended_tol": contended_tol,
                                               "settle_tol": settle_tol},
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
                 session_record=session_record, passes=passes, pass_gap_s=pass_gap_s,
                 contended_tol=contended_tol, settle_tol=settle_tol,
                 max_wait_s=max_wait_s, sleep=sleep,
                 started_at=started_at)
    stopped = loop.run()
    final = points.load()
    return CalibrationResult(
        out_dir=out, points_path=points.path, session=loop.session, stopped=stopped,
        elapsed_s=loop.elapsed(), measured=loop.measured, remeasured=loop.remeasured,
        drift_events=loop.drift_events, rebaselines=loop.rebaselines,
        adaptive_units=loop.adaptive_count, total_points=len(final.points),
        pending_points=len(final.pending), plan_points=plan.n_points,
        skipped_units=loop.skipped, passes=passes, repeat_passes=loop.repeated,
        waited_s=loop.waited_s)


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
              space_filling: int = SPACE_FILLING, min_time_s: float = 0.01, adaptive: bool = True,
              seed: int = 0, passes: int = 3, pass_gap_s: float = 2.0,
              settle_tol: float | None = 0.05, max_wait_s: float = 10.0
              ) -> CalibrationResult:
    """Calibrate ``device_name`` (``host``, a profile name or path) on this machine.

    Times the plan (zoo shapes minus ``exclude_networks``, space-filling shapes, ``schemes``,
    ``threads`` up to the machine's hardware threads) with the C++ kernels for at most
    ``budget_s`` seconds, appending every point to ``<out_dir>/points.jsonl``; running it
    again on the same folder resumes. Progress goes to stderr when ``progress``.

    Each point is timed in ``passes`` passes of ``min_time_s`` at least ``pass_gap_s``
    apart, and keeps the fastest call (see ``TimingOptions``): interference on a shared
    machine comes in bursts of about a second and only adds time, so separated passes make
    a point reproducible where one longer pass does not (benchmarks/fidelity.md). A point
    whose two fastest passes differ by more than ``settle_tol`` gets up to two more passes:
    on the 2-vCPU development VM the two fastest of three passes of a 2-thread point
    differed by more than 5 % for half the points (2026-11-28), 1-thread ones for 12 %. When the
    drift probe finds the machine slower, the loop idles up to ``max_wait_s`` for its speed
    to come back (see ``run_calibration``). numpy's BLAS and OpenMP pools are held to one
    thread throughout (``quiet_thread_pools``), so no worker of theirs spins beside a kernel.
    """
    import grimsim._kernels as kernels

    started = time.monotonic()  # plan building and host measurement count against the budget
    profile = resolve_profile(device_name)
    plan = build_plan(exclude_networks, threads, schemes=schemes, space_filling=space_filling,
                      seed=seed, max_threads=int(kernels.hardware_threads()))
    measurer = KernelMeasurer(TimingOptions(min_time_s=min_time_s), seed=seed)
    with quiet_thread_pools():
        return run_calibration(plan, profile, measurer, out_dir, budget_s=budget_s,
                               progress=progress, device_name=device_name, adaptive=adaptive,
                               seed=seed, started_at=started, passes=passes,
                               pass_gap_s=pass_gap_s, settle_tol=settle_tol,
                               max_wait_s=max_wait_s)
