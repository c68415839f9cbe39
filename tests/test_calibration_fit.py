"""``fit``: correction from points, new profile version, held-out report (synthetic device)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from grimsim.calibration.fit import fit, headline_mask, metrics, noise_floor
from grimsim.calibration.measure import Measurement, PointsFile, unit_rows
from grimsim.calibration.plan import PlanUnit
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.learned import CalibratedModel, CalibrationError, load_cost_model
from grimsim.cost.profile import load_profile
from grimsim.cost.rows import gemm_rows

sys.path.insert(0, str(Path(__file__).parent))
from calibration_fakes import FakeClock, FakeMeasurer, run_fake, small_plan


class DeviceLike(FakeMeasurer):
    """Times = the analytical model x a smooth, learnable device effect x 2 % noise."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.model = AnalyticalCPUModel(load_profile("sd855"), cache_state="warm")
        self.rng = np.random.default_rng(0)

    def measure(self, unit: PlanUnit, threads: Sequence[int],
                kernels_by_thread: Sequence[str]) -> list[Measurement]:
        base = super().measure(unit, threads, kernels_by_thread)
        rows = unit_rows([unit] * len(threads), list(threads))
        est = self.model.estimate(rows).analytical_s
        out = []
        for m, a in zip(base, est, strict=True):
            effect = 0.4 * math.sin(math.log2(unit.shape.K)) + (0.25 if m.threads == 2 else 0.0)
            v = float(a) * math.exp(effect + 0.02 * self.rng.standard_normal())
            out.append(Measurement(m.threads, m.kernel, v, 0.98 * v, v, 5, m.stats))
        return out


@pytest.fixture(scope="module")
def points_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("points")
    run_fake(out, 1e6, DeviceLike(FakeClock()), plan=small_plan(space_filling=60))
    return out


FAST = {"n_estimators": 120, "band_folds": 3}
TINY = {"n_estimators": 10, "band_folds": 0, "scale_estimators": 0}


def test_fit_writes_a_new_profile_version_the_loader_finds(
        points_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a user data folder of its own: other tests must keep seeing the built-in sd855@1
    monkeypatch.setenv("GRIMSIM_DATA_DIR", str(tmp_path / "userdata"))
    report = fit(points_dir, params=FAST)
    assert Path(report.profile_path).parent == tmp_path / "userdata" / "profiles"
    assert report.profile == "sd855@2" and report.calibrated_profile == "sd855@1"
    prof = load_profile("sd855")
    assert prof.id == "sd855@2" and prof.calibration is not None
    assert Path(report.artefact_path).name == prof.calibration.artefact
    model = load_cost_model(prof)
    assert isinstance(model, CalibratedModel) and model.name == "calibrated:sd855@2"
    rows = gemm_rows([128, 512], [576, 2304], [3136, 49], "dense", threads=2)
    est = model.estimate(rows)
    assert np.all(est.latency_s > 0) and np.all(est.band_lo_s <= est.latency_s)
    # the report files beside the points
    data = json.loads((points_dir / "fit_report.json").read_text())
    assert data["profile"] == "sd855@2"
    assert "| headline | calibrated |" in (points_dir / "fit_report.md").read_text()


def test_held_out_report_is_by_unseen_shape_and_beats_the_analytical_model(
        points_dir: Path, tmp_path: Path) -> None:
    report = fit(points_dir, tmp_path / "dev.yaml", params=FAST, seed=3)
    state = PointsFile(points_dir).load()
    n_shapes = len({f"{r['shape']['op']}:{r['shape']['M']}x{r['shape']['K']}x{r['shape']['N']}"
                    for r in state.points.values()})
    assert report.n_shapes_train + report.n_shapes_test == n_shapes
    assert report.n_train + report.n_test == report.n_points == len(state.points)
    for subset in ("all", "headline", "under_20us", "from_20us", "kind=dense", "threads=2"):
        assert set(report.heldout[subset]) == {"calibrated", "analytical", "baseline_rf"}
    cal, ana = report.heldout["all"]["calibrated"], report.heldout["all"]["analytical"]
    assert cal.n == report.n_test
    assert cal.rmspe < 0.5 * ana.rmspe
    assert cal.within_10 > ana.within_10
    assert 0.5 <= report.band_coverage <= 1.0
    assert Path(report.profile_path) == tmp_path / "dev.yaml"
    assert isinstance(load_cost_model(load_profile(tmp_path / "dev.yaml")), CalibratedModel)


def test_fit_needs_points(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="grimsim calibrate"):
        fit(tmp_path)
    run_fake(tmp_path, 1.2, FakeMeasurer(FakeClock()))
    with pytest.raises(CalibrationError, match=r"usable points|hold some out"):
        fit(tmp_path)


def test_metrics_follow_nn_meter_definitions() -> None:
    m = metrics(np.array([1.04, 0.92, 1.2, 2.0]), np.ones(4))
    assert m.n == 4
    assert (m.within_5, m.within_10, m.within_15) == (0.25, 0.5, 0.5)
    assert m.rmspe == pytest.approx(math.sqrt((0.04**2 + 0.08**2 + 0.2**2 + 1.0) / 4))
    assert math.isnan(metrics(np.zeros(0), np.zeros(0)).rmspe)


def test_headline_subset() -> None:
    specs = ["dense", "bcr:16x32:0.75", "bcr:8x16:0.95", "unstructured:0.9", "nm:1:8",
             "pattern:4", "filter:0.5", "unstructured:0.95"]
    assert headline_mask(specs).tolist() == [True, True, False, True, True, False, False,
                                             False]



def test_points_of_a_slow_stretch_are_left_out(tmp_path: Path) -> None:
    # the probe goes 30 % slow for good after 8 calls: 3 drifted batches, then the loop takes
    # the slow speed as its new baseline and keeps measuring at it
    ref = lambda i: 1e-3 if i < 8 else 1.3e-3  # noqa: E731
    meas = DeviceLike(FakeClock())
    meas.reference_fn = ref
    res = run_fake(tmp_path, 1e6, meas, plan=small_plan(space_filling=30), batch_points=8)
    assert res.rebaselines == 1
    lines = [json.loads(x) for x in (tmp_path / "points.jsonl").read_text().splitlines()]
    rebased = next(r["batch"] for r in lines if r.get("kind") == "rebaseline")
    slow = {r["key"] for r in PointsFile(tmp_path).load().points.values()
            if r["batch"] > rebased}
    assert slow
    report = fit(tmp_path, tmp_path / "a.yaml", params=TINY, baseline=False)
    kept = fit(tmp_path, tmp_path / "b.yaml", params=TINY, baseline=False, slow_tol=None)
    assert report.dropped["slow_machine"] == len(slow)
    assert kept.n_points - report.n_points == len(slow)
    assert report.statistic == "min_s"
    assert "not measured: every point was timed in a single pass" in report.to_markdown()


def test_points_of_a_batch_whose_streaming_read_was_slow_are_left_out(tmp_path: Path) -> None:
    """The probe's streaming read alone can say a batch ran while the shared caches were
    loaded: the fit leaves its points out as it does for a slow reference GEMM."""
    run_fake(tmp_path, 1e6, DeviceLike(FakeClock()), plan=small_plan(space_filling=30),
             batch_points=8)
    path = tmp_path / "points.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    probes = [r for r in lines if r.get("kind") == "probe"]
    assert len(probes) > 3 and not any("stream_min_s" in r for r in lines)
    hit = probes[1]["batch"]
    for r in lines:  # as a measurer with a streaming read would have logged them
        if r["type"] == "reference":
            r["stream_min_s"] = 2e-3 * (1.3 if r.get("kind") == "probe" and r["batch"] == hit
                                        else 1.0)
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    slow = {r["key"] for r in PointsFile(tmp_path).load().points.values() if r["batch"] == hit}
    assert slow
    report = fit(tmp_path, tmp_path / "a.yaml", params=TINY, baseline=False)
    assert report.dropped["slow_machine"] == len(slow)


def test_noise_floor_compares_each_pass_with_the_point() -> None:
    recs = [{"min_s": 1.0, "pass_min_s": [1.0, 1.08, 1.2], "cpu_pressure": 0.0},
            {"min_s": 2.0, "pass_min_s": [2.0, 2.02], "cpu_pressure": 0.5},
            {"min_s": 3.0}]  # a single pass says nothing about noise
    nf = noise_floor(recs)
    assert nf.n == 2
    assert nf.one_pass_within_5 == pytest.approx(3 / 5)
    assert nf.one_pass_within_10 == pytest.approx(4 / 5)
    assert nf.one_pass_rms == pytest.approx(math.sqrt((0.08**2 + 0.2**2 + 0.01**2) / 5))
    assert nf.passes_within_10 == 0.5 and nf.contended == 0.5
    crowded = [dict(recs[0], core_share=0.5, cpu_pressure=None), recs[1]]
    assert noise_floor(crowded).contended == 1.0
    assert noise_floor(recs[2:]).n == 0 and math.isnan(noise_floor([]).one_pass_rms)


def test_points_contended_in_every_pass_are_left_out(tmp_path: Path) -> None:
    run_fake(tmp_path, 1e6, DeviceLike(FakeClock()), plan=small_plan(space_filling=30))
    path = tmp_path / "points.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    busy = 0
    for i, r in enumerate(lines):
        if r["type"] == "point":
            r["cpu_pressure"] = 0.6 if i % 5 == 0 else 0.02
            busy += i % 5 == 0
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    report = fit(tmp_path, tmp_path / "a.yaml", params=TINY, baseline=False)
    assert report.dropped["contended"] == busy > 0
    kept = fit(tmp_path, tmp_path / "b.yaml", params=TINY, baseline=False, contended_tol=None)
    assert kept.n_points - report.n_points == busy
    # crowded cores count as contended too
    crowded = 0
    for i, r in enumerate(lines):
        if r["type"] == "point":
            r["cpu_pressure"] = 0.02
            r["core_share"] = 0.5 if i % 7 == 0 else 0.97
            crowded += i % 7 == 0
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    report = fit(tmp_path, tmp_path / "c.yaml", params=TINY, baseline=False)
    assert report.dropped["contended"] == crowded > 0
