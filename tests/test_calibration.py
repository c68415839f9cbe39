"""Calibration: the sweep plan, the points file, resume, drift handling, the kernel measurer.

The loop is driven by a fake measurer and a fake clock (no timing noise, no minutes spent);
one test kills a real child process mid-run, one times a few tiny units with the kernels.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grimsim.calibration.measure import (
    CROWDED_CORE_SHARE,
    KernelMeasurer,
    Measurement,
    PointsFile,
    TimingOptions,
    _sum_timings,
    _timing,
    combine_passes,
    device_fingerprint,
    pass_contended,
    point_record,
    rows_from_records,
    unit_rows,
)
from grimsim.calibration.plan import (
    PlanUnit,
    Shape,
    build_plan,
    kronecker_sequence,
    space_filling_shapes,
    stratum_of,
)
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.learned import CalibrationError
from grimsim.cost.profile import load_profile
from grimsim.errors import GrimsimError
from grimsim.network.workload import Op

sys.path.insert(0, str(Path(__file__).parent))
from calibration_fakes import (
    ONLY_GRU,
    FakeClock,
    FakeMeasurer,
    point_lines,
    run_fake,
    small_plan,
)


# --------------------------------------------------------------------------------- plan
def test_every_stratum_appears_in_the_first_round() -> None:
    plan = small_plan()
    strata = {u.stratum for u in plan.units}
    assert {"dense:gemm", "dense:gemv", "bcr:16x32:0.75", "unstructured:0.5",
            "nm:2:4"} <= strata
    # the recurrent-step units come first (see the next test), then strata take turns
    rest = [u for u in plan.units if u.shape.steps == 1]
    assert list(plan.units[len(plan.units) - len(rest):]) == rest
    rest_strata = {u.stratum for u in rest}
    assert {u.stratum for u in rest[:len(rest_strata)]} == rest_strata
    keys = [u.key for u in plan.units]
    assert len(keys) == len(set(keys))
    assert plan.n_points == 2 * len(plan.units)


def test_recurrent_gemms_are_planned_as_their_steps_run() -> None:
    plan = build_plan([n for n in ONLY_GRU if n != "lstm_2x1024"], (1, 2),
                      schemes=("dense", "bcr:16x32:0.75"), space_filling=4)
    steps = [u for u in plan.units if u.shape.steps > 1]
    # each (recurrent shape, scheme) once, first in the plan, with the step's gate count
    assert plan.units[:len(steps)] == tuple(steps)
    assert {(u.shape.op, u.shape.steps, u.shape.cycle, u.spec) for u in steps} == {
        (op, 100, gates, spec) for op, gates in ((Op.GRU, 3), (Op.LSTM, 4))
        for spec in ("dense", "bcr:16x32:0.75")}
    assert {(u.shape.M, u.shape.K, u.shape.N) for u in steps} == {(1024, 1024, 1)}
    # the step GEMMs are not also timed alone, and the input projections stay single calls
    rnn = [u for u in plan.units if u.shape.op in (Op.GRU, Op.LSTM)]
    assert all(u.shape.steps > 1 for u in rnn if u.shape.N == 1)
    assert any(u.shape.steps == 1 and u.shape.N == 100 for u in rnn)
    rows = unit_rows(steps, [1] * len(steps))
    np.testing.assert_array_equal(rows.repeats, 100)
    np.testing.assert_array_equal(rows.step_bytes,
                                  rows.format_bytes * [u.shape.cycle for u in steps])


@pytest.mark.parametrize("bad", [dict(cycle=3), dict(steps=0), dict(steps=5, prunable=False),
                                 dict(steps=5, groups=2)])
def test_impossible_recurrent_shapes_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(GrimsimError):
        Shape(**{"op": Op.GRU, "M": 8, "K": 8, "N": 1, **bad})


def test_points_of_older_files_read_as_single_calls() -> None:
    old = {"op": "fc", "M": 8, "K": 16, "N": 1, "groups": 1, "prunable": True}
    shape = Shape.from_dict(old)
    assert (shape.steps, shape.cycle) == (1, 1) and shape.key == "fc:8x16x1:g1"
    assert Shape(op=Op.GRU, M=8, K=16, N=1, steps=7, cycle=3).key == "gru:8x16x1:g1:s7c3"


def test_each_stratum_spreads_its_first_units_over_the_range() -> None:
    plan = build_plan(ONLY_GRU, (1,), schemes=("dense",), space_filling=60, seed=2)
    gemm = [u.shape for u in plan.units if u.stratum == "dense:gemm"]
    assert len(gemm) >= 20
    for dim in ("M", "K", "N"):
        allv = np.log2([getattr(s, dim) for s in gemm])
        first = np.log2([getattr(s, dim) for s in gemm[:8]])
        assert np.ptp(first) >= 0.5 * np.ptp(allv), dim


def test_only_legal_schemes_are_planned() -> None:
    plan = build_plan([n for n in ONLY_GRU if n != "mobilenet_v2"] + ["gru_timit"], (1,),
                      schemes=("dense", "pattern:4", "bcr:16x32:0.5", "nm:1:8"),
                      space_filling=30)
    assert plan.units
    for u in plan.units:
        s = u.shape
        if u.spec != "dense":
            assert s.prunable and s.groups == 1 and s.op != Op.DWCONV
        if u.spec.startswith("pattern"):
            assert s.is_conv and (s.kh, s.kw) == (3, 3)
        if u.spec == "nm:1:8":
            assert s.K >= 8
    assert any(u.shape.op == Op.DWCONV and u.spec == "dense" for u in plan.units)


def test_excluded_networks_leave_the_plan() -> None:
    plan = small_plan(space_filling=0)
    assert plan.networks == ("gru_timit",)
    assert {u.source.split("/")[0] for u in plan.units} == {"zoo:gru_timit"}
    with pytest.raises(GrimsimError, match="unknown zoo network"):
        build_plan(["resnet_9000"])


def test_kronecker_prefixes_are_evenly_spread() -> None:
    pts = kronecker_sequence(64, 4, seed=5)
    assert pts.shape == (64, 4) and np.all((pts >= 0) & (pts < 1))
    for d in range(4):
        counts = np.histogram(pts[:, d], bins=8, range=(0, 1))[0]
        assert counts.min() >= 4 and counts.max() <= 10  # iid draws often leave 2 or 13
    # in 4-D no two of the 64 points nearly coincide (a lattice-like spread)
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(64)
    assert dist.min() > 0.1
    np.testing.assert_array_equal(kronecker_sequence(10, 4, seed=5, start=54), pts[54:])


def test_space_filling_covers_gemv_and_wide_n() -> None:
    shapes = [s for s, _ in space_filling_shapes(192, seed=1)]
    fc = [s for s in shapes if not s.is_conv]
    gemv = [s for s in fc if s.N == 1]
    # RNN steps / batch-1 FC: a fair share of the FC points, over many weight sizes
    assert len(gemv) >= 0.15 * len(fc)
    assert len({(s.M, s.K) for s in gemv}) == len(gemv)
    assert min(s.weights for s in gemv) < 1 << 14 and max(s.weights for s in gemv) > 1 << 21
    # ... without starving the rest of the N range
    assert max(s.N for s in fc) > 4096 and max(s.N for s in shapes if s.is_conv) > 4096
    plan = build_plan(["googlenet", "alexnet", "mobilenet_v1", "bert_base"], (1,),
                      schemes=("dense",), space_filling=192, seed=1)
    assert sum(u.stratum == "dense:gemv" for u in plan.units) >= 30


# --------------------------------------------------------------------------------- loop
def test_budget_stop_then_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    first = run_fake(tmp_path, 12.0, FakeMeasurer(clock))
    assert first.stopped == "budget" and first.elapsed_s <= 12.0
    before = {r["key"]: r for r in point_lines(tmp_path / "points.jsonl")}
    assert before and first.total_points == len(before) == first.measured
    clock2 = FakeClock()
    second = run_fake(tmp_path, 1e6, FakeMeasurer(clock2))
    assert second.stopped == "done" and second.session == 2
    lines = point_lines(tmp_path / "points.jsonl")
    counts = Counter(r["key"] for r in lines)
    assert max(counts.values()) == 1  # nothing measured twice
    plan = small_plan()
    assert set(counts) == {u.point_key(t) for u in plan.units for t in plan.threads}
    after = {r["key"]: r for r in lines}
    assert all(after[k] == v for k, v in before.items())  # nothing lost or rewritten
    third = run_fake(tmp_path, 1e6, FakeMeasurer(FakeClock()))
    assert third.measured == 0 and third.stopped == "done"


def test_interrupt_keeps_every_point_measured(tmp_path: Path) -> None:
    res = run_fake(tmp_path, 1e6, FakeMeasurer(FakeClock(), interrupt_after=5))
    assert res.stopped == "interrupted"
    assert res.total_points == res.measured == 10  # 5 units x 2 thread counts


def test_killed_process_resumes_without_loss(tmp_path: Path) -> None:
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from calibration_fakes import FakeMeasurer
        class Slow(FakeMeasurer):
            def measure(self, *a):
                time.sleep(0.02)
                return super().measure(*a)
        import calibration_fakes as tc
        clock = time.monotonic
        m = Slow(tc.FakeClock())
        m.clock = type("C", (), {{"t": 0.0, "__call__": lambda self: time.monotonic()}})()
        from grimsim.calibration.run import run_calibration
        from grimsim.cost.profile import load_profile
        run_calibration(tc.small_plan(), load_profile("sd855"), m, {str(out)!r},
                        budget_s=600, progress=False, adaptive=False)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    path = out / "points.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if path.exists() and len(point_lines_safe(path)) >= 12:
                break
            if proc.poll() is not None:
                pytest.fail(f"child exited early with {proc.returncode}")
            time.sleep(0.02)
        else:
            pytest.fail("child wrote no points in 60 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = PointsFile(out).load(repair=True)
    before = dict(state.points)
    assert len(before) >= 12
    res = run_fake(out, 1e6, FakeMeasurer(FakeClock()))
    assert res.stopped == "done"
    lines = point_lines(path)
    counts = Counter(r["key"] for r in lines)
    assert max(counts.values()) == 1
    after = {r["key"]: r for r in lines}
    assert all(after[k] == v for k, v in before.items())
    plan = small_plan()
    assert len(after) == plan.n_points


def point_lines_safe(path: Path) -> list[str]:
    return [ln for ln in path.read_text(errors="replace").splitlines() if '"point"' in ln]


def test_truncated_last_line_is_dropped_with_a_warning(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    run_fake(tmp_path, 6.0, FakeMeasurer(FakeClock()))
    path = tmp_path / "points.jsonl"
    good = PointsFile(tmp_path).load()
    with path.open("ab") as fh:
        fh.write(b'{"type": "point", "key": "conv:1x2x3|dense|t1", "med')
    with caplog.at_level(logging.WARNING):
        state = PointsFile(tmp_path).load()
    assert "truncated last line" in caplog.text
    assert state.dropped_lines == 1 and state.points == good.points
    PointsFile(tmp_path).load(repair=True)
    assert path.read_bytes().endswith(b"\n")
    res = run_fake(tmp_path, 1e6, FakeMeasurer(FakeClock()))
    assert res.stopped == "done"
    for line in path.read_text().splitlines():
        json.loads(line)  # every line parses after the repair and the resumed run


def test_complete_line_without_newline_counts_as_truncated(tmp_path: Path) -> None:
    run_fake(tmp_path, 4.0, FakeMeasurer(FakeClock()))
    path = tmp_path / "points.jsonl"
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    path.write_bytes(b"\n".join(lines))  # the last record lost its newline
    state = PointsFile(tmp_path).load(repair=True)
    assert state.dropped_lines == 1
    assert path.read_bytes().count(b"\n") == len(lines) - 1


def test_points_taken_during_drift_are_measured_again(tmp_path: Path) -> None:
    # 3 baseline probes, then the first batch probe is 20 % off, later probes are fine
    ref = lambda i: 1.2e-3 if i == 3 else 1e-3  # noqa: E731
    res = run_fake(tmp_path, 60.0, FakeMeasurer(FakeClock(), reference=ref), batch_points=4)
    lines = [json.loads(x) for x in (tmp_path / "points.jsonl").read_text().splitlines()]
    drift = [r for r in lines if r["type"] == "drift"]
    assert len(drift) == 1 and len(drift[0]["keys"]) == 4 and drift[0]["batch"] == 0
    assert res.drift_events == 1 and res.remeasured == 4
    counts = Counter(r["key"] for r in lines if r["type"] == "point")
    assert {k for k, n in counts.items() if n == 2} == set(drift[0]["keys"])
    state = PointsFile(tmp_path).load()
    assert not state.pending
    for key in drift[0]["keys"]:
        assert state.points[key]["batch"] > 0  # the valid one is the re-measurement


def test_a_slow_streaming_read_marks_drift_while_the_gemm_probe_holds(tmp_path: Path) -> None:
    # the reference GEMM stays put; the probe's streaming read runs 25 % slow at the first
    # batch probe (another tenant loading the shared caches): that batch is measured again
    stream = lambda i: 5e-4 * (1.25 if i == 3 else 1.0)  # noqa: E731
    meas = FakeMeasurer(FakeClock(), stream=stream)
    res = run_fake(tmp_path, 60.0, meas, batch_points=4)
    assert res.drift_events == 1 and res.remeasured == 4 and res.rebaselines == 0
    lines = [json.loads(x) for x in (tmp_path / "points.jsonl").read_text().splitlines()]
    refs = [r for r in lines if r["type"] == "reference"]
    assert refs[0]["kind"] == "baseline" and refs[0]["stream_min_s"] == pytest.approx(5e-4)
    assert refs[1]["ratio"] == pytest.approx(1.25) and not refs[1]["ok"]
    assert all(r["min_s"] == pytest.approx(1e-3) for r in refs)
    assert [r["batch"] for r in lines if r["type"] == "drift"] == [0]


def test_a_faster_streaming_read_moves_only_its_own_baseline(tmp_path: Path) -> None:
    # the baseline's streaming reads fell in a slow spell; the GEMM's did not
    stream = lambda i: 6e-4 if i < 3 else 5e-4  # noqa: E731
    gemm = lambda i: 1e-3 if i < 3 else 1.05e-3  # noqa: E731
    res = run_fake(tmp_path, 40.0, FakeMeasurer(FakeClock(), reference=gemm, stream=stream),
                   batch_points=2)
    assert res.rebaselines == 1 and res.drift_events == 1
    lines = [json.loads(x) for x in (tmp_path / "points.jsonl").read_text().splitlines()]
    moved = next(r for r in lines if r.get("kind") == "rebaseline")
    assert moved["stream_min_s"] == pytest.approx(5e-4) and moved["min_s"] == pytest.approx(1e-3)


def test_persistent_drift_moves_the_baseline(tmp_path: Path) -> None:
    ref = lambda i: 1e-3 if i < 3 else 1.3e-3  # noqa: E731
    res = run_fake(tmp_path, 40.0, FakeMeasurer(FakeClock(), reference=ref), batch_points=2)
    assert res.rebaselines == 1 and res.drift_events == 3
    assert res.pending_points == 0


def test_a_faster_probe_moves_the_baseline_at_once(tmp_path: Path) -> None:
    # the 3 baseline probes fell in a slow spell; every later probe is 30 % faster
    ref = lambda i: 1.3e-3 if i < 3 else 1e-3  # noqa: E731
    res = run_fake(tmp_path, 40.0, FakeMeasurer(FakeClock(), reference=ref), batch_points=2)
    assert res.rebaselines == 1 and res.drift_events == 1  # one batch, not three
    assert res.remeasured == 2 and res.pending_points == 0
    lines = [json.loads(x) for x in (tmp_path / "points.jsonl").read_text().splitlines()]
    moved = [r for r in lines if r.get("kind") == "rebaseline"]
    assert len(moved) == 1 and moved[0]["min_s"] == pytest.approx(1e-3)


def test_a_slow_stretch_is_waited_out_not_taken_as_the_new_speed(tmp_path: Path) -> None:
    # 3 baseline probes, the first batch probe and two probes while waiting are slow
    ref = lambda i: 1.3e-3 if 3 <= i <= 5 else 1e-3  # noqa: E731
    meas = FakeMeasurer(FakeClock(), reference=ref)
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        meas.clock.t += s

    res = run_fake(tmp_path, 60.0, meas, batch_points=4, max_wait_s=10.0, sleep=sleep)
    assert res.drift_events == 1 and res.rebaselines == 0 and res.remeasured == 4
    assert res.waited_s == pytest.approx(1.5) and sum(slept) == pytest.approx(1.5)
    lines = [json.loads(x) for x in (tmp_path / "points.jsonl").read_text().splitlines()]
    waits = [r for r in lines if r.get("kind") == "wait"]
    assert [r["ok"] for r in waits] == [False, False, True]
    assert "idle while the machine was slow" in res.summary()


def test_final_batch_drift_leaves_points_pending_for_the_next_run(tmp_path: Path) -> None:
    ref = lambda i: 1e-3 if i < 3 else 2e-3  # noqa: E731
    res = run_fake(tmp_path, 3.0, FakeMeasurer(FakeClock(), reference=ref), batch_points=100)
    assert res.drift_events == 1 and res.pending_points == res.measured > 0
    res2 = run_fake(tmp_path, 3.0, FakeMeasurer(FakeClock()), batch_points=100)
    assert res2.remeasured > 0
    assert PointsFile(tmp_path).load().pending.keys().isdisjoint(
        {r["key"] for r in point_lines(tmp_path / "points.jsonl") if r["session"] == 2})


@pytest.mark.parametrize("changed, message", [
    ({"machine": "elsewhere"}, "another machine"),
    # a rebuilt kernel times differently: its points must not pool with the old build's
    ({"kernels_source": "0123456789abcdef"}, "kernel sources 0123456789abcdef"),
])
def test_points_of_another_machine_or_build_are_refused(tmp_path: Path, changed: dict[str, str],
                                                        message: str) -> None:
    run_fake(tmp_path, 2.0, FakeMeasurer(FakeClock()))

    class Other(FakeMeasurer):
        def fingerprint(self, profile: Any) -> dict[str, Any]:
            return {**super().fingerprint(profile), **changed}

    with pytest.raises(CalibrationError, match=message):
        run_fake(tmp_path, 2.0, Other(FakeClock()))


def test_the_fingerprint_names_the_kernel_sources() -> None:
    import grimsim._kernels as kernels

    fp = device_fingerprint(load_profile("sd855"))
    assert fp["kernels_source"] == kernels.__source_hash__
    assert len(fp["kernels_source"]) == 16 and int(fp["kernels_source"], 16) >= 0


def test_adaptive_rounds_add_units_near_the_worst_points(tmp_path: Path) -> None:
    plan = small_plan(space_filling=40)
    # the plan takes ~86 s here: adaptive rounds start at 30 % and go on after the plan
    res = run_fake(tmp_path, 150.0, FakeMeasurer(FakeClock(), step_s=0.5), plan=plan,
                   adaptive=True, adaptive_after=0.3)
    assert res.adaptive_units > 0
    adaptive = [r for r in point_lines(tmp_path / "points.jsonl")
                if r["source"].startswith("adaptive:")]
    assert adaptive
    for r in adaptive:
        base_key = r["source"].split(":", 2)[2]
        assert base_key.endswith("|" + r["spec"])  # same scheme as the point it refines


def test_records_round_trip_to_rows_in_order() -> None:
    plan = small_plan()
    units = list(plan.units[:12])
    threads = [1 + i % 2 for i in range(12)]
    rows = unit_rows(units, threads)
    recs = []
    for i, u in enumerate(units):
        stats = {k: float(getattr(rows, k)[i]) * (1.01 if k == "work_max" else 1.0) for k in (
            "sparsity", "nnz", "n_blocks", "rows_mean", "cols_mean", "work_mean", "work_max",
            "format_bytes", "block_r", "block_c")}
        m = Measurement(threads[i], "gemm", 1e-4, 1e-4, 1e-4, 3, stats)
        recs.append(point_record(u, m, session=1, batch=0, analytical_s=1.0,
                                 fingerprint="f", elapsed_s=0.0))
    back = rows_from_records(recs)
    assert len(back) == 12
    np.testing.assert_array_equal(back.M, rows.M)
    np.testing.assert_array_equal(back.threads, threads)
    np.testing.assert_allclose(back.work_max, rows.work_max * 1.01)
    assert back.from_weights.all()


class PassNoise(FakeMeasurer):
    """Each pass of a unit is slowed by its own factor (interference only adds time)."""

    SLOW = (1.0, 1.3, 1.1)

    def __init__(self, clock: FakeClock, **kw: Any) -> None:
        super().__init__(clock, **kw)
        self.calls: Counter[str] = Counter()

    def measure(self, unit: PlanUnit, threads: Any, kernels: Any) -> list[Measurement]:
        base = super().measure(unit, threads, kernels)
        f = self.SLOW[self.calls[unit.key] % 3]
        self.calls[unit.key] += 1
        return [Measurement(m.threads, m.kernel, m.median_s * f, m.min_s * f, m.mean_s * f,
                            m.reps, m.stats) for m in base]


def test_points_are_timed_in_separated_passes_and_keep_the_fastest(tmp_path: Path) -> None:
    meas = PassNoise(FakeClock())
    res = run_fake(tmp_path, 1e6, meas, passes=3, pass_gap_s=2.0)
    assert res.stopped == "done" and res.passes == 3
    assert res.repeat_passes == 2 * res.measured > 0
    lines = point_lines(tmp_path / "points.jsonl")
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in lines:
        by_key.setdefault(r["key"], []).append(r)
    assert all(len(v) == 3 for v in by_key.values())  # one line per pass
    order = [r["unit"] for r in lines if r["passes"] == 1]
    tail = set(order[-6:])  # the last units' passes are taken early, when nothing else is left
    gaps = [b["t"] - a["t"] for v in by_key.values() if v[0]["unit"] not in tail
            for a, b in itertools.pairwise(v)]
    assert gaps and min(gaps) >= 2.0
    state = PointsFile(tmp_path).load()
    assert len(state.points) == len(by_key) and not state.pending
    for key, rec in state.points.items():
        first = by_key[key][0]
        assert rec["passes"] == 3 and rec["min_s"] == pytest.approx(first["min_s"])
        assert rec["pass_min_s"] == pytest.approx([first["min_s"] * f for f in PassNoise.SLOW])
        assert rec["median_s"] == pytest.approx(first["median_s"] * 1.1)  # median of passes
        assert rec["reps"] == 3 * first["reps"]
    # resuming measures nothing again
    again = run_fake(tmp_path, 1e6, PassNoise(FakeClock()), passes=3)
    assert again.measured == 0 and again.repeat_passes == 0


def test_the_budget_keeps_room_for_the_passes_owed(tmp_path: Path) -> None:
    res = run_fake(tmp_path, 15.0, PassNoise(FakeClock()), passes=3, pass_gap_s=2.0)
    assert res.stopped == "budget" and res.elapsed_s <= 15.0
    state = PointsFile(tmp_path).load()
    assert state.points and all(r["passes"] == 3 for r in state.points.values())


class Contended(PassNoise):
    """Units whose key hashes even run under CPU pressure in every pass."""

    def measure(self, unit: PlanUnit, threads: Any, kernels: Any) -> list[Measurement]:
        busy = 0.9 if sum(unit.key.encode()) % 2 == 0 else 0.0
        return [replace(m, cpu_pressure=busy) for m in super().measure(unit, threads, kernels)]


def test_contended_points_get_extra_passes(tmp_path: Path) -> None:
    res = run_fake(tmp_path, 1e6, Contended(FakeClock()), passes=3)
    assert res.stopped == "done"
    state = PointsFile(tmp_path).load()
    busy = {k for k, r in state.points.items() if sum(r["unit"].encode()) % 2 == 0}
    assert busy and len(busy) < len(state.points)
    for key, rec in state.points.items():
        assert rec["passes"] == (5 if key in busy else 3)
        assert rec["cpu_pressure"] == (0.9 if key in busy else 0.0)


class Crowded(PassNoise):
    """2-thread timings of units whose key hashes even ran on crowded cores in every pass
    (their 1-thread timings did not: a probe runs only on several threads)."""

    def measure(self, unit: PlanUnit, threads: Any, kernels: Any) -> list[Measurement]:
        share = 0.5 if sum(unit.key.encode()) % 2 == 0 else 0.97
        return [replace(m, core_share=share if m.threads > 1 else None)
                for m in super().measure(unit, threads, kernels)]


def test_points_timed_on_crowded_cores_get_extra_passes(tmp_path: Path) -> None:
    res = run_fake(tmp_path, 1e6, Crowded(FakeClock()), passes=3)
    assert res.stopped == "done"
    state = PointsFile(tmp_path).load()
    crowded = {k for k, r in state.points.items()
               if sum(r["unit"].encode()) % 2 == 0 and r["threads"] > 1}
    assert crowded and len(crowded) < len(state.points)
    for key, rec in state.points.items():
        assert rec["passes"] == (5 if sum(rec["unit"].encode()) % 2 == 0 else 3)
        assert rec["core_share"] == (None if rec["threads"] == 1
                                     else 0.5 if key in crowded else 0.97)
        assert len(rec["pass_core_share"]) == rec["passes"]


class Settling(PassNoise):
    """Passes slowed by 1.0, 1.3, 1.1, then 1.02 and 1.01: the two fastest differ by 10 %
    after three passes and by 1 % after four."""

    SLOW = (1.0, 1.3, 1.1, 1.01, 1.02)

    def measure(self, unit: PlanUnit, threads: Any, kernels: Any) -> list[Measurement]:
        base = FakeMeasurer.measure(self, unit, threads, kernels)
        f = self.SLOW[min(self.calls[unit.key], len(self.SLOW) - 1)]
        self.calls[unit.key] += 1
        return [replace(m, median_s=m.median_s * f, min_s=m.min_s * f, mean_s=m.mean_s * f)
                for m in base]


@pytest.mark.parametrize(("settle_tol", "want"), [(None, 3), (0.2, 3), (0.05, 4), (0.005, 5)])
def test_unsettled_points_get_extra_passes(tmp_path: Path, settle_tol: float | None,
                                           want: int) -> None:
    """Two fastest passes 10 % apart ask for another pass under a 5 % tolerance (and stop
    once they agree), never under 20 %; at most two more passes whatever the tolerance."""
    res = run_fake(tmp_path, 1e6, Settling(FakeClock()), passes=3, settle_tol=settle_tol)
    assert res.stopped == "done"
    state = PointsFile(tmp_path).load()
    assert state.points
    for rec in state.points.values():
        assert rec["passes"] == want
        assert rec["min_s"] == pytest.approx(min(rec["pass_min_s"]))


def test_pass_contended_reads_cpu_pressure_and_core_share() -> None:
    m = Measurement(2, "gemm", 1.0, 1.0, 1.0, 3, {})
    assert not pass_contended(m, 0.25)
    assert pass_contended(replace(m, cpu_pressure=0.3), 0.25)
    assert not pass_contended(replace(m, cpu_pressure=0.2, core_share=0.95), 0.25)
    assert pass_contended(replace(m, core_share=CROWDED_CORE_SHARE - 0.01), 0.25)


def test_timing_reports_short_handed_calls() -> None:
    full = {"median_s": 3.0, "min_s": 1.0, "mean_s": 3.0, "reps": 4, "short_reps": 1,
            "full_min_s": 2.0}
    # the fastest call, whether or not its worker joined (a tiny call is faster alone)
    assert _timing(full) == (3.0, 1.0, 3.0, 4, 0.25)
    every = dict(full, short_reps=4, full_min_s=0.0)  # no call had its team
    assert _timing(every) == (3.0, 1.0, 3.0, 4, 1.0)
    assert _timing({"median_s": 1.0, "min_s": 0.5, "mean_s": 1.0, "reps": 2})[1:] == (
        0.5, 1.0, 2, 0.0)  # a harness without the counts (fakes)
    both = _sum_timings(full, dict(full, full_min_s=0.5, short_reps=3))
    assert both["full_min_s"] == 2.5 and both["short_reps"] == 3
    assert _sum_timings(full, every)["full_min_s"] == 0.0
    m = Measurement(2, "gemm", 1.0, 1.0, 1.0, 3, {}, short_share=1.0)
    assert pass_contended(m, 0.25) and not pass_contended(replace(m, short_share=0.9), 0.25)


def test_kernel_measurer_probes_the_cores_on_several_threads() -> None:
    pytest.importorskip("grimsim._kernels")
    shape = Shape(op=Op.FC, M=64, K=64, N=64)
    unit = PlanUnit(shape, "dense", "test", "dense:gemm")
    measurer = KernelMeasurer(TimingOptions(min_time_s=0.001, warmup=1, max_reps=20))
    one, two = measurer.measure(unit, [1, 2], ["gemm", "gemm"])
    assert one.core_share is None and one.short_share == 0.0
    assert two.short_share is not None and 0.0 <= two.short_share <= 1.0
    # the probe against twice one core's rate: ~1 on two free cores, ~0.5 on a shared one
    assert two.core_share is not None and 0.05 < two.core_share <= 1.5


def test_a_drifted_later_pass_falls_back_and_is_timed_again(tmp_path: Path) -> None:
    # probes: 3 for the baseline, then batches of 4 points; the 4th batch probe is off
    ref = lambda i: 1.2e-3 if i == 6 else 1e-3  # noqa: E731
    res = run_fake(tmp_path, 1e6, PassNoise(FakeClock(), reference=ref), passes=3,
                   batch_points=4)
    assert res.drift_events == 1
    lines = [json.loads(x) for x in (tmp_path / "points.jsonl").read_text().splitlines()]
    drift = next(r for r in lines if r["type"] == "drift")
    drifted = [r for r in lines if r["type"] == "point" and r["batch"] == drift["batch"]]
    assert any(r["passes"] > 1 for r in drifted)  # the batch held later passes
    state = PointsFile(tmp_path).load()
    assert not state.pending
    for rec in state.points.values():
        assert rec["passes"] == 3 and rec["batch"] != drift["batch"]
        assert rec["min_s"] == pytest.approx(min(rec["pass_min_s"]))


# --------------------------------------------------------------------------------- kernels
def test_kernel_measurer_times_every_kernel_family() -> None:
    pytest.importorskip("grimsim._kernels")
    shapes = [
        Shape(op=Op.FC, M=32, K=64, N=24),
        Shape(op=Op.FC, M=64, K=128, N=1),
        Shape(op=Op.CONV, M=16, K=8 * 9, N=12 * 12, kh=3, kw=3, pad=1, in_c=8, in_h=12,
              in_w=12, out_h=12, out_w=12),
        Shape(op=Op.CONV, M=16, K=8 * 9, N=6 * 6, kh=3, kw=3, stride=2, pad=1, in_c=8,
              in_h=12, in_w=12, out_h=6, out_w=6),
        Shape(op=Op.DWCONV, M=8, K=9, N=100, groups=8, kh=3, kw=3, pad=1, in_c=8, in_h=10,
              in_w=10, out_h=10, out_w=10),
    ]
    cases = [(shapes[0], "dense"), (shapes[1], "dense"), (shapes[2], "dense"),
             (shapes[3], "dense"), (shapes[4], "dense"), (shapes[0], "bcr:8x16:0.75"),
             (shapes[2], "unstructured:0.75"), (shapes[0], "nm:2:4"),
             (shapes[2], "pattern:4"), (shapes[3], "filter:0.5")]
    model = AnalyticalCPUModel(load_profile("sd855"), cache_state="warm")
    measurer = KernelMeasurer(TimingOptions(min_time_s=0.001, warmup=1, max_reps=5))
    kernels = set()
    for shape, spec in cases:
        unit = PlanUnit(shape, spec, "test", stratum_of(shape, spec))
        est = model.estimate(unit_rows([unit, unit], [1, 2]))
        ms = measurer.measure(unit, [1, 2], list(est.kernel))
        assert [m.threads for m in ms] == [1, 2]
        for m, k in zip(ms, est.kernel, strict=True):
            assert m.kernel == k and 0 < m.min_s <= m.median_s < 1.0 and m.reps >= 3
            kernels.add(m.kernel)
        if spec != "dense":
            target = {"bcr:8x16:0.75": 0.75, "unstructured:0.75": 0.75, "nm:2:4": 0.5,
                      "pattern:4": 5 / 9, "filter:0.5": 0.5}[spec]
            assert math.isclose(ms[0].stats["sparsity"], target, abs_tol=0.08)
    assert {"gemm", "gemv", "depthwise", "bcr", "csr", "nm", "pattern"} <= kernels


def test_kernel_measurer_reference_times_a_gemm_and_a_read_beyond_l2() -> None:
    kernels = pytest.importorskip("grimsim._kernels")
    ref = KernelMeasurer().reference()
    assert 0 < ref["min_s"] <= ref["median_s"] < 0.1
    # the read covers several L2s (within the probe's bounds), so it streams from beyond L2
    assert ref["stream_bytes"] >= min(4 * kernels.l2_cache_bytes(), 32 << 20)
    assert ref["stream_bytes"] >= 4 << 20
    gbs = ref["stream_bytes"] / ref["stream_min_s"] / 1e9
    assert 0.1 < gbs < 2000


def test_kernel_measurer_keeps_operands_between_passes() -> None:
    pytest.importorskip("grimsim._kernels")
    shape = Shape(op=Op.FC, M=48, K=96, N=40)
    unit = PlanUnit(shape, "bcr:8x16:0.75", "test", stratum_of(shape, "bcr:8x16:0.75"))
    measurer = KernelMeasurer(TimingOptions(min_time_s=0.001, warmup=1, max_reps=50))
    first = measurer.measure(unit, [1], ["bcr"])[0]
    again = measurer.measure(unit, [1], ["bcr"])[0]
    assert first.setup_s > 0 and again.setup_s == 0.0  # built once
    assert again.stats == first.stats  # the same mask and format are timed
    for m in (first, again):
        assert m.cpu_pressure is None or 0.0 <= m.cpu_pressure <= 1.0
    measurer.release(unit.key)
    assert measurer.measure(unit, [1], ["bcr"])[0].setup_s > 0
    # a cache too small for two units keeps only the latest
    small = KernelMeasurer(TimingOptions(min_time_s=0.0, max_reps=3), cache_bytes=1)
    other = PlanUnit(shape, "dense", "test", "dense:gemm")
    small.measure(unit, [1], ["bcr"])
    small.measure(other, [1], ["gemm"])
    assert small.measure(other, [1], ["gemm"])[0].setup_s == 0.0
    assert small.measure(unit, [1], ["bcr"])[0].setup_s > 0


def test_a_recurrent_step_unit_times_its_gates_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    kern = pytest.importorskip("grimsim._kernels")
    shape = Shape(op=Op.GRU, M=64, K=64, N=1, steps=10, cycle=3)
    unit = PlanUnit(shape, "bcr:8x16:0.5", "test", stratum_of(shape, "bcr:8x16:0.5"))
    measurer = KernelMeasurer(TimingOptions(min_time_s=0.0, warmup=1, max_reps=5))
    real = measurer.measure(unit, [1, 2], ["bcr", "bcr"])
    assert all(0 < m.min_s <= m.median_s < 1.0 for m in real)
    gates = measurer._operands(unit).step
    assert len(gates) == 3 and all(g.kernel == "bcr" for g in gates)
    h = np.ones((64, 1), np.float32)
    outs = [g.run(h) for g in gates]  # each gate its own weights
    assert not np.allclose(outs[0], outs[1]) and not np.allclose(outs[1], outs[2])
    # one harness call runs every gate once; the point is one gate's share x the steps
    calls: list[int] = []

    def fake_time_callable(fn: Any, threads: int, **_: Any) -> dict[str, Any]:
        fn()
        return {"median_s": 6e-6, "min_s": 3e-6, "mean_s": 6e-6, "max_s": 9e-6, "reps": 4}

    monkeypatch.setattr(type(gates[0]), "run", lambda self, x, t=1: calls.append(id(self)))
    monkeypatch.setattr(kern, "time_callable", fake_time_callable)
    (m,) = measurer.measure(unit, [1], ["bcr"])
    assert sorted(calls) == sorted(id(g) for g in gates)
    assert m.min_s == pytest.approx(3e-6 * 10 / 3) and m.median_s == pytest.approx(2e-5)
    assert m.reps == 4


def test_combine_passes_keeps_the_fastest_call_and_the_median_pass() -> None:
    stats = {"nnz": 1.0}
    passes = [Measurement(1, "gemm", 2.0, 1.5, 2.2, 10, stats, 0.3, 0.0),
              Measurement(1, "gemm", 3.0, 1.2, 3.1, 20, stats, 0.0, 0.4),
              Measurement(1, "gemm", 2.5, 2.0, 2.6, 10, stats, 0.0, None)]
    m = combine_passes(passes)
    assert (m.min_s, m.median_s, m.reps, m.setup_s) == (1.2, 2.5, 40, 0.3)
    assert m.mean_s == pytest.approx((2.2 * 10 + 3.1 * 20 + 2.6 * 10) / 40)
    assert m.cpu_pressure == 0.0 and m.core_share is None
    assert combine_passes(passes[:1]) == passes[0]
    shared = [replace(p, threads=2, core_share=c) for p, c in zip(passes, (0.5, 0.96, None),
                                                                strict=True)]
    assert combine_passes(shared).core_share == 0.96  # crowded only if every pass was
    with pytest.raises(GrimsimError):
        combine_passes([])


def test_calibrate_holds_blas_to_one_thread_while_measuring(monkeypatch, tmp_path):
    from threadpoolctl import threadpool_info, threadpool_limits

    import grimsim.calibration.run as run_mod

    def blas() -> list[int]:
        return [int(p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"]

    seen: list[list[int]] = []
    monkeypatch.setattr(run_mod, "run_calibration",
                        lambda *a, **k: seen.append(blas()) or "done")
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas()
        if not before or max(before) < 2:
            pytest.skip("numpy has no BLAS thread pool to hold")
        assert run_mod.calibrate("sd855", tmp_path, budget_s=1, progress=False) == "done"
        assert seen == [[1] * len(before)]
        assert blas() == before
