"""The learned correction: estimator contract, learning, band, JSON persistence, CalibratedModel."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.features import (
    CORRECTION_FEATURES,
    STACKED_FEATURES,
    FeatureMachine,
    correction_features,
    feature_machine,
    n_tile_layout,
    one_thread_estimate,
    one_thread_name,
    stacked_features,
)
from grimsim.cost.learned import (
    CalibratedModel,
    CalibrationError,
    Correction,
    CorrectionRegressor,
    FamilyEnsemble,
    fit_ensemble,
    load_correction,
    load_cost_model,
    save_correction,
)
from grimsim.cost.profile import Calibration, load_profile, save_profile
from grimsim.cost.rows import gemm_rows, rows_for
from grimsim.network.fusion import fuse
from grimsim.network.zoo import build_zoo

LIGHT = {"n_estimators": 20, "max_depth": 3, "band_folds": 2, "scale_estimators": 5}

# CorrectionRegressor implements the contract itself (get_params/set_params, tags, score)
# rather than inheriting BaseEstimator, so that predicting with a fitted correction never
# imports scikit-learn (2 s per CLI call); the checks below pass all the same.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Estimator CorrectionRegressor does not inherit:UserWarning")


@parametrize_with_checks([CorrectionRegressor(**LIGHT)])
def test_sklearn_estimator_contract(estimator, check):  # type: ignore[no-untyped-def]
    check(estimator)


def test_clone_and_repr() -> None:
    from sklearn.base import clone

    reg = CorrectionRegressor(n_estimators=7, loss="huber")
    twin = clone(reg)
    assert twin is not reg and twin.get_params() == reg.get_params()
    assert repr(reg) == "CorrectionRegressor(n_estimators=7, loss='huber')"
    with pytest.raises(ValueError, match="Invalid parameter"):
        reg.set_params(depth=3)


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 6))
    X[:, 5] = rng.integers(0, 3, n)
    y = 0.5 * np.sin(X[:, 0]) + 0.3 * (X[:, 1] > 0.5) * X[:, 2] + 0.2 * X[:, 5]
    return X, y + 0.02 * rng.standard_normal(n)


def test_booster_learns_and_band_covers_held_out_rows() -> None:
    X, y = _synthetic(1500, 0)
    Xt, yt = _synthetic(800, 1)
    reg = CorrectionRegressor(n_estimators=120, band_folds=3, random_state=0).fit(X, y)
    pred, lo, hi = reg.predict_band(Xt)
    r2 = 1 - np.mean((pred - yt) ** 2) / np.var(yt)
    assert r2 > 0.9
    assert np.all(lo <= pred) and np.all(pred <= hi)
    coverage = np.mean((yt >= lo) & (yt <= hi))
    assert 0.75 <= coverage <= 0.995  # nominal 90 %
    np.testing.assert_array_equal(reg.predict(Xt), pred)


def test_grouped_folds_make_wider_bands_for_unseen_groups() -> None:
    # y depends on a group effect no feature explains: held-out groups must widen the band
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 30, 1200)
    effect = rng.normal(0, 0.3, 30)
    X = rng.uniform(-1, 1, (1200, 3))
    y = X[:, 0] + effect[groups]
    grouped = CorrectionRegressor(n_estimators=60, band_folds=3).fit(X, y, groups=groups)
    plain = CorrectionRegressor(n_estimators=60, band_folds=3).fit(X, y)
    width = lambda r: np.mean(r.predict_band(X)[2] - r.predict_band(X)[1])  # noqa: E731
    assert width(grouped) > width(plain)


def test_oblivious_predict_matches_naive_traversal() -> None:
    X, y = _synthetic(400, 4)
    ens = fit_ensemble(X, y, n_estimators=15, max_depth=4)
    naive = np.full(len(X), ens.base)
    for t in range(ens.n_trees):
        leaf = np.zeros(len(X), int)
        for d in range(ens.depth):
            leaf |= (X[:, ens.features[t, d]] > ens.thresholds[t, d]).astype(int) << d
        naive += ens.leaves[t, leaf]
    np.testing.assert_allclose(ens.predict(X), naive, rtol=0, atol=1e-12)
    assert ens.predict(X[:0]).shape == (0,)


def _threads_data(n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows on 1 and 2 threads whose log corrections follow different laws."""
    rng = np.random.default_rng(seed)
    names = ["a", "threads", "b"]
    X = np.column_stack([rng.uniform(0, 1, n), rng.integers(1, 3, n).astype(float),
                         rng.uniform(0, 1, n)])
    y = np.where(X[:, 1] == 1, 0.4 * X[:, 0], -0.3 * X[:, 2] + 0.2)
    return X, y, names


def test_one_ensemble_per_thread_count() -> None:
    """Split on threads, the 1-thread answers do not depend on the 2-thread rows at all, and
    a thread count between two fitted ones takes the nearer on a log scale."""
    X, y, names = _threads_data()
    reg = CorrectionRegressor(n_estimators=40, band_folds=0, feature_names=names,
                              min_split_rows=50).fit(X, y)
    assert reg.ensemble_.column == 1 and list(reg.ensemble_.values) == [1.0, 2.0]
    two = X[:, 1] == 2
    noisy = y.copy()
    noisy[two] += np.random.default_rng(3).normal(0, 0.5, two.sum())
    again = CorrectionRegressor(n_estimators=40, band_folds=0, feature_names=names,
                                min_split_rows=50).fit(X, noisy)
    np.testing.assert_array_equal(reg.predict(X[~two]), again.predict(X[~two]))
    assert not np.array_equal(reg.predict(X[two]), again.predict(X[two]))
    pooled = CorrectionRegressor(n_estimators=40, band_folds=0, feature_names=names,
                                 split_feature=None).fit(X, noisy)
    assert pooled.ensemble_.column is None
    err = lambda r: float(np.mean((r.predict(X[~two]) - y[~two]) ** 2))  # noqa: E731
    assert err(again) < err(pooled)
    np.testing.assert_array_equal(reg.ensemble_.member_of(np.array([1, 1.4, 1.5, 2, 3, 8])),
                                  [0, 0, 1, 1, 1, 1])
    # too few rows of one thread count, or no name to split on: one ensemble
    few = CorrectionRegressor(n_estimators=5, band_folds=0, feature_names=names,
                              min_split_rows=10_000).fit(X, y)
    unnamed = CorrectionRegressor(n_estimators=5, band_folds=0).fit(X, y)
    assert few.ensemble_.column is None and unnamed.ensemble_.column is None


def test_a_split_correction_round_trips(tmp_path: Path) -> None:
    X, y, names = _threads_data()
    reg = CorrectionRegressor(n_estimators=20, band_folds=2, scale_estimators=5,
                              feature_names=names, min_split_rows=50).fit(X, y)
    again = CorrectionRegressor.from_dict(json.loads(json.dumps(reg.to_dict())))
    for a, b in zip(reg.predict_band(X), again.predict_band(X), strict=True):
        np.testing.assert_array_equal(a, b)
    bad = reg.to_dict()
    bad["ensemble"]["values"] = [1.0]
    with pytest.raises(CalibrationError, match="values and members"):
        CorrectionRegressor.from_dict(bad, "c.json")
    bad = reg.to_dict()
    bad["ensemble"]["column"] = 7
    with pytest.raises(CalibrationError, match="column"):
        CorrectionRegressor.from_dict(bad, "c.json")


def _stacked_data(n1: int, n2: int, noise: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Rows on 1 and 2 threads as ``STACKED_FEATURES`` lays them out (features, then the
    row's on one thread): the 2-thread law is the 1-thread one plus a term of its own, and
    only the 2-thread labels are noisy. Returns X, noisy y, true y, names."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 1, n1 + n2), rng.uniform(0, 1, n1 + n2)
    threads = np.r_[np.ones(n1), np.full(n2, 2.0)]
    own = np.column_stack([a, threads, b])
    single = np.column_stack([a, np.ones(n1 + n2), b])
    truth = np.sin(6 * a) + np.where(threads == 2, 0.3 * b - 0.2, 0.0)
    noisy = truth + np.where(threads == 2, rng.normal(0, noise, n1 + n2), 0.0)
    names = ["a", "threads", "b"]
    return np.hstack([own, single]), noisy, truth, names + [one_thread_name(x) for x in names]


def test_stacked_members_start_from_the_one_thread_answer() -> None:
    """With STACKED_FEATURES-style names, a 2-thread row gets the 1-thread member's answer
    on its one-thread columns plus its own member's, so few noisy 2-thread rows learn the
    shared law from the clean 1-thread ones; the artefact round-trips exactly."""
    params = dict(n_estimators=60, band_folds=0, min_split_rows=50, random_state=0)
    ratios = []
    for seed in range(3):
        X, y, _, names = _stacked_data(800, 150, 0.1, seed)
        Xt, _, true_t, _ = _stacked_data(0, 400, 0.0, seed + 10)
        stacked = CorrectionRegressor(feature_names=names, **params).fit(X, y)
        plain = CorrectionRegressor(feature_names=names, stack_threads=False,
                                    **params).fit(X, y)
        assert stacked.ensemble_.stack_width == 3 and plain.ensemble_.stack_width is None
        rmse = lambda r: float(np.sqrt(np.mean((r.predict(Xt) - true_t) ** 2)))  # noqa: E731,B023
        ratios.append(rmse(stacked) / rmse(plain))
    assert np.mean(ratios) < 0.85
    ens = stacked.ensemble_
    base, two = ens.members[ens.base], ens.members[1]
    np.testing.assert_allclose(ens.predict(Xt), base.predict(Xt[:, 3:]) + two.predict(Xt[:, :3]))
    one = X[:, 1] == 1
    np.testing.assert_allclose(ens.predict(X[one]), base.predict(X[one][:, :3]))
    again = CorrectionRegressor.from_dict(json.loads(json.dumps(stacked.to_dict())))
    np.testing.assert_array_equal(again.predict(Xt), stacked.predict(Xt))
    bad = stacked.to_dict()
    bad["ensemble"]["stack_width"] = 2
    with pytest.raises(CalibrationError, match="stack_width"):
        CorrectionRegressor.from_dict(bad, "c.json")
    # names that are not a feature block and its one-thread copy: no stacking
    other = CorrectionRegressor(feature_names=[*names[:3], "x", "y", "z"], **params).fit(X, y)
    assert other.ensemble_.stack_width is None


def test_one_ensemble_per_kernel_family() -> None:
    """Rows of a family with enough training rows take that family's ensemble (found
    through the ``kernel=<name>`` one-hot columns); rows of a smaller family take one fitted
    on every row; the artefact round-trips exactly and bad families are refused."""
    rng = np.random.default_rng(0)
    counts = {"bcr": 500, "csr": 450, "gemm": 80}
    kind = np.repeat(np.arange(3), list(counts.values()))
    a = rng.uniform(0, 1, kind.size)
    X = np.column_stack([a, np.ones(kind.size)] + [(kind == i).astype(float) for i in range(3)])
    y = np.select([kind == 0, kind == 1], [np.sin(6 * a), -a], 0.5)
    names = ["a", "threads", "kernel=bcr", "kernel=csr", "kernel=gemm"]
    reg = CorrectionRegressor(n_estimators=40, band_folds=0, feature_names=names,
                              kernel_families="bcr;csr,nm;gemm", min_family_rows=400).fit(X, y)
    ens = reg.ensemble_
    assert isinstance(ens, FamilyEnsemble)
    assert ens.columns == ((2,), (3,)) and ens.rest is not None
    np.testing.assert_array_equal(ens.family_of(X), np.where(kind == 2, -1, kind))
    for i in range(2):
        rows = np.flatnonzero(kind == i)
        np.testing.assert_array_equal(ens.predict(X)[rows], ens.members[i].predict(X[rows]))
    rest = np.flatnonzero(kind == 2)
    np.testing.assert_array_equal(ens.predict(X)[rest], ens.rest.predict(X[rest]))
    assert np.sqrt(np.mean((reg.predict(X) - y) ** 2)) < 0.1
    again = CorrectionRegressor.from_dict(json.loads(json.dumps(reg.to_dict())))
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    bad = reg.to_dict()
    bad["ensemble"]["families"][1] = [9]
    with pytest.raises(CalibrationError, match=r"families\[1\]"):
        CorrectionRegressor.from_dict(bad, "c.json")
    # every family large enough: no ensemble over all rows
    full = CorrectionRegressor(n_estimators=10, band_folds=0, feature_names=names,
                               kernel_families="bcr;csr;gemm", min_family_rows=50).fit(X, y)
    assert len(full.ensemble_.members) == 3 and full.ensemble_.rest is None
    # no family, or no kernel columns: one ensemble as before
    for params in ({"kernel_families": None}, {"feature_names": None}):
        one = CorrectionRegressor(n_estimators=10, band_folds=0,
                                  **{"feature_names": names, **params}).fit(X, y)
        assert not isinstance(one.ensemble_, FamilyEnsemble)
    for spec in ("bcr;;csr", "bcr;bcr", 3):
        with pytest.raises(ValueError, match="kernel_families"):
            CorrectionRegressor(kernel_families=spec).fit(X, y)


def test_calibrated_model_reads_stacked_features() -> None:
    """A correction trained on STACKED_FEATURES gets each row's features and its features
    on one thread (``stacked_features``); a 1-thread row's two halves are the same."""
    ana = AnalyticalCPUModel(load_profile("sd855"), cache_state="warm")
    rows = rows_for(fuse(build_zoo("resnet18")), ["dense", "bcr:16x32:0.75"], threads=2)
    gemm = np.flatnonzero(rows.is_gemm)
    sub = rows.take(gemm)
    est = ana.estimate(sub)
    X = stacked_features(ana, sub, est, ana.profile)
    w = len(CORRECTION_FEATURES)
    assert X.shape == (len(sub), 2 * w)
    one = sub.with_threads(1)
    est_one = ana.estimate(one)
    np.testing.assert_allclose(X[:, w:], correction_features(one, est_one, ana.profile,
                                                             one_thread=est_one))
    np.testing.assert_allclose(X[:, :w], correction_features(
        sub, est, ana.profile, one_thread=one_thread_estimate(ana, sub, est)))
    X1 = stacked_features(ana, one, est_one, ana.profile)
    np.testing.assert_array_equal(X1[:, :w], X1[:, w:])
    rng = np.random.default_rng(0)
    Xs = np.vstack([X, X1])
    reg = CorrectionRegressor(n_estimators=20, band_folds=2, scale_estimators=5,
                              feature_names=list(STACKED_FEATURES), min_split_rows=10,
                              ).fit(Xs, 0.1 * rng.standard_normal(len(Xs)))
    assert reg.ensemble_.stack_width == w
    cal = CalibratedModel(ana, Correction(regressor=reg, feature_names=STACKED_FEATURES,
                                          meta={"profile": "sd855", "n_points": len(Xs)}))
    got = cal.estimate(rows)
    np.testing.assert_allclose(got.latency_s[gemm],
                               est.analytical_s * np.exp(reg.predict(X)), rtol=1e-12)

def _correction(seed: int = 0) -> Correction:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (300, len(CORRECTION_FEATURES)))
    y = 0.3 * X[:, 0] - 0.2 * X[:, 3] + 0.05 * rng.standard_normal(300)
    reg = CorrectionRegressor(n_estimators=30, band_folds=2, scale_estimators=5,
                              feature_names=list(CORRECTION_FEATURES)).fit(X, y)
    return Correction(regressor=reg, meta={"profile": "host@2", "cache_state": "warm",
                                           "n_points": 300})


def test_json_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    corr = _correction()
    path = save_correction(corr, tmp_path / "c.json")
    text = path.read_text()
    assert json.loads(text)["format"] == "grimsim-correction"
    again = load_correction(path)
    X = np.random.default_rng(9).uniform(-1, 2, (500, len(CORRECTION_FEATURES)))
    for a, b in zip(corr.regressor.predict_band(X), again.regressor.predict_band(X),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.meta["profile"] == "host@2"
    assert again.regressor.get_params() == corr.regressor.get_params()


@pytest.mark.parametrize("mutate", [
    lambda d: "not json {",
    lambda d: json.dumps({**d, "format": "pickle"}),
    lambda d: json.dumps({**d, "schema": 99}),
    lambda d: json.dumps({**d, "feature_names": ["a", "b"]}),
    lambda d: json.dumps({**d, "model": {**d["model"], "ensemble": {
        **d["model"]["ensemble"], "features": [[999] * d["model"]["ensemble"]["depth"]]
        * len(d["model"]["ensemble"]["features"])}}}),
    lambda d: json.dumps({**d, "model": {**d["model"], "band_quantiles": [1]}}),
    lambda d: json.dumps({**d, "model": {**d["model"], "params": {"n_estimators": -1}}}),
])
def test_malformed_artefacts_are_rejected(tmp_path: Path, mutate) -> None:  # type: ignore[no-untyped-def]
    data = _correction().to_dict()
    path = tmp_path / "bad.json"
    path.write_text(mutate(data))
    with pytest.raises(CalibrationError, match=str(path.name)):
        load_correction(path)


def test_missing_artefact_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="grimsim fit"):
        load_correction(tmp_path / "nope.json")


def _model_pair() -> tuple[AnalyticalCPUModel, CalibratedModel]:
    profile = load_profile("sd855")
    ana = AnalyticalCPUModel(profile, cache_state="warm")
    return ana, CalibratedModel(ana, _correction())


def test_calibrated_model_applies_correction_with_band_and_provenance() -> None:
    ana, cal = _model_pair()
    rows = rows_for(fuse(build_zoo("resnet18")), ["dense", "bcr:16x32:0.75"], threads=2)
    base = ana.estimate(rows)
    est = cal.estimate(rows)
    assert est.provenance == f"calibrated:{ana.profile.id}" == cal.name
    gemm = rows.is_gemm
    sub, sub_base = rows.take(np.flatnonzero(gemm)), _take(base, gemm)
    X = correction_features(sub, sub_base, ana.profile,
                            one_thread=one_thread_estimate(ana, sub, sub_base))
    corr = cal.correction.regressor.predict(X)
    np.testing.assert_allclose(est.latency_s[gemm], base.analytical_s[gemm] * np.exp(corr))
    assert np.all(est.band_lo_s <= est.latency_s) and np.all(est.latency_s <= est.band_hi_s)
    # cheap ops keep the analytical estimate and band
    np.testing.assert_array_equal(est.latency_s[~gemm], base.latency_s[~gemm])
    np.testing.assert_array_equal(est.band_hi_s[~gemm], base.band_hi_s[~gemm])
    np.testing.assert_array_equal(est.analytical_s, base.analytical_s)
    assert est.meta["calibrated"] is True


def _take(est, mask):  # type: ignore[no-untyped-def]
    idx = np.flatnonzero(mask)
    return replace(est, latency_s=est.latency_s[idx], analytical_s=est.analytical_s[idx],
                   compute_s=est.compute_s[idx], memory_s=est.memory_s[idx],
                   overhead_s=est.overhead_s[idx], overlap_s=est.overlap_s[idx],
                   bound=est.bound[idx], band_lo_s=est.band_lo_s[idx],
                   band_hi_s=est.band_hi_s[idx], kernel=est.kernel[idx])


def test_kernels_unseen_in_training_keep_the_analytical_estimate() -> None:
    ana, _ = _model_pair()
    corr = _correction()
    only_bcr = Correction(corr.regressor, meta={**corr.meta, "kernels": ["bcr"]})
    cal = CalibratedModel(ana, only_bcr)
    rows = gemm_rows([256, 512], [1024, 512], [196, 49], "unstructured:0.75")
    np.testing.assert_array_equal(cal.estimate(rows).latency_s, ana.estimate(rows).latency_s)


def test_load_cost_model_picks_calibrated_or_analytical(tmp_path: Path) -> None:
    profile = load_profile("rpi4")
    assert isinstance(load_cost_model(profile), AnalyticalCPUModel)
    save_correction(_correction(), tmp_path / "rpi4@7.correction.json")
    path = save_profile(replace(profile, version=7, calibration=Calibration(
        artefact="rpi4@7.correction.json", version="test")), tmp_path / "rpi4@7.yaml")
    model = load_cost_model(load_profile(path))
    assert isinstance(model, CalibratedModel)
    assert model.name == "calibrated:rpi4@7"
    assert model.analytical.cache_state == "warm"
    rows = gemm_rows(128, 1152, 784, "dense", threads=2)
    assert model.estimate(rows).latency_s[0] > 0
    (tmp_path / "rpi4@7.correction.json").unlink()
    with pytest.raises(CalibrationError, match=r"rpi4@7\.correction\.json"):
        load_cost_model(load_profile(path))


def test_an_artefact_from_other_features_leaves_the_analytical_model(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    profile = load_profile("rpi4")
    data = _correction().to_dict()
    data["feature_names"] = [*data["feature_names"][:-1], "an_old_feature"]
    (tmp_path / "rpi4@8.correction.json").write_text(json.dumps(data))
    path = save_profile(replace(profile, version=8, calibration=Calibration(
        artefact="rpi4@8.correction.json", version="test")), tmp_path / "rpi4@8.yaml")
    with pytest.raises(CalibrationError, match="grimsim fit"):
        load_correction(tmp_path / "rpi4@8.correction.json")
    with caplog.at_level("WARNING"):
        model = load_cost_model(load_profile(path))
    assert isinstance(model, AnalyticalCPUModel)
    assert "analytical model" in caplog.text and "rpi4@8" in caplog.text


def _layout(M: list[int], K: list[int], N: list[int], spec: str, threads: int = 1,
            machine: FeatureMachine | None = None) -> dict[str, np.ndarray]:
    profile = load_profile("sd855")
    rows = gemm_rows(M, K, N, spec, threads=threads)
    est = AnalyticalCPUModel(profile, cache_state="warm").estimate(rows)
    X = correction_features(rows, est, machine or profile,
                            one_thread=one_thread_estimate(AnalyticalCPUModel(
                                profile, cache_state="warm"), rows, est))
    assert X.flags.f_contiguous and X.shape == (len(rows), len(CORRECTION_FEATURES))
    return {name: X[:, j] for j, name in enumerate(CORRECTION_FEATURES)}


def _driver_tiles(k: int, nv: int, lanes: int) -> list[int]:
    """Tile widths in vectors as sparse_driver.hpp's run_panels cuts N (its loop, verbatim)."""
    nt = min(max((256 * 1024) // (max(k, 1) * lanes * 4), 6), 24)
    nt -= nt % 6
    starts, rest = [0], nv
    while rest > nt and rest - nt >= (nt + 1) // 2:
        starts.append(starts[-1] + nt)
        rest -= nt
    starts.append(nv)
    return [b - a for a, b in itertools.pairwise(starts)]


def test_n_tile_layout_is_the_drivers_tiling() -> None:
    source = (Path(__file__).parents[1] / "cpp_kernels/src/sparse_driver.hpp").read_text()
    assert "kPanelBytes = 256 * 1024" in source  # the constant both sides use
    for lanes in (4, 8, 16):
        for k in (9, 64, 576, 1152, 2304, 4608, 30000):
            nv = np.arange(1, 300, dtype=np.float64)
            nt, n_tiles, last = n_tile_layout(np.full(nv.shape, float(k)), nv, lanes)
            for i, v in enumerate(nv.astype(int)):
                widths = _driver_tiles(k, int(v), lanes)
                assert (n_tiles[i], last[i]) == (len(widths), widths[-1]), (lanes, k, v)
                assert all(w == nt[i] for w in widths[:-1])


def test_kernel_layout_features_follow_the_kernels_tiling() -> None:
    mc = feature_machine(load_profile("sd855"))
    assert mc.lanes == 4 and mc.l2_bytes == 512 * 1024 and mc.llc_bytes >= mc.l2_bytes
    f = _layout([64, 64, 64, 64], [512, 512, 512, 512], [1, 3, 4096, 65536], "unstructured:0.5")
    # X grows with N against the caches; a wide N is cut into several tiles
    assert np.all(np.diff(f["log2_x_over_l2"]) > 0) and np.all(np.diff(f["log2_n_tiles"]) >= 0)
    assert f["log2_x_over_l2"][2] - f["log2_x_over_llc"][2] == pytest.approx(
        np.log2(mc.llc_bytes / mc.l2_bytes))
    assert f["narrow_n"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert f["log2_n_tiles"][3] > 0 and f["log2_n_tiles"][0] == 0
    # each X element feeds M x density = 32 multiply-adds: enough to copy wide panels
    assert f["log2_x_reuse"][3] == pytest.approx(np.log2(32), abs=0.1)
    assert f["copy_panels"].tolist() == [0.0, 0.0, 1.0, 1.0]
    sparse = _layout([64], [512], [65536], "unstructured:0.9")
    assert sparse["copy_panels"][0] == 0.0  # 6.4 uses per X element: not worth a copy
    # BCR loads an X row once per kept column of a block and band, not once per nonzero:
    # 512 rows x 25 % density is 128 nonzeros per X row but only 16 x 0.5 loads; a column-
    # pruned matrix (one block over all rows) loads each kept X row once per 16-row band
    bcr = _layout([512, 512], [576, 576], [3136, 3136], "bcr:16x32:0.75")
    assert bcr["copy_panels"].tolist() == [0.0, 0.0]
    column = _layout([1024], [576], [3136], "column:0.5")
    assert column["copy_panels"][0] == 1.0
    # a row of X a page long or more puts every X row of a tile on its own page
    assert f["log2_x_pages"][3] == pytest.approx(np.log2(512))
    # two threads cut a few N tiles into row chunks too (4 x threads tasks at least)
    one = _layout([64, 64], [512, 512], [256, 65536], "unstructured:0.5", threads=1)
    two = _layout([64, 64], [512, 512], [256, 65536], "unstructured:0.5", threads=2)
    # N = 256 at 4 lanes: 3 tiles (24, 24, 16 vectors); 2 threads cut each into 3 chunks
    assert two["log2_tasks"][0] == pytest.approx(np.log2(9))
    assert one["log2_tasks"][0] == pytest.approx(np.log2(3))
    assert two["log2_tasks"][1] == one["log2_tasks"][1]  # many tiles: no row chunks
    assert one["task_imbalance"].tolist() == [1.0, 1.0] and np.all(two["task_imbalance"] >= 1)
    # a machine with a larger L2 sees the same operands as smaller against it
    big = FeatureMachine(lanes=4, l2_bytes=4 * mc.l2_bytes, llc_bytes=mc.llc_bytes)
    g = _layout([64], [512], [4096], "unstructured:0.5", machine=big)
    assert g["log2_x_over_l2"][0] == pytest.approx(f["log2_x_over_l2"][2] - 2)


def test_an_artefact_on_fewer_features_still_applies(tmp_path: Path) -> None:
    # what a grimsim with fewer features wrote: its columns are picked out of today's
    names = [n for n in CORRECTION_FEATURES if not n.startswith("log2_x_")]
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, (200, len(names)))
    reg = CorrectionRegressor(n_estimators=15, band_folds=0, scale_estimators=3,
                              feature_names=names).fit(X, 0.3 * X[:, 2])
    path = save_correction(Correction(reg, tuple(names), {"profile": "sd855@2"}),
                           tmp_path / "old.json")
    old = load_correction(path)
    assert old.feature_names == tuple(names)
    ana = AnalyticalCPUModel(load_profile("sd855"), cache_state="warm")
    rows = gemm_rows([64, 256], [576, 1024], [3136, 1], "bcr:16x32:0.75")
    est = ana.estimate(rows)
    full = correction_features(rows, est, ana.profile, one_thread=est)
    cols = [CORRECTION_FEATURES.index(n) for n in names]
    want = ana.estimate(rows).analytical_s * np.exp(reg.predict(full[:, cols]))
    np.testing.assert_allclose(CalibratedModel(ana, old).estimate(rows).latency_s, want)


def test_thread_features_compare_with_the_one_thread_estimate() -> None:
    """The correction sees the speed-up over one thread the analytical model predicts: zero
    on one thread, log2(one thread / this row) on more, the compute part separately."""
    profile = load_profile("sd855")
    model = AnalyticalCPUModel(profile, cache_state="warm")
    rows = gemm_rows([256, 256, 64], [1152, 1152, 64], [784, 784, 49], "bcr:16x32:0.75",
                     threads=[1, 4, 4])
    est = model.estimate(rows)
    one = one_thread_estimate(model, rows, est)
    alone = model.estimate(rows.with_threads(1))
    np.testing.assert_array_equal(one.analytical_s, alone.analytical_s)
    np.testing.assert_array_equal(one.compute_s, alone.compute_s)
    X = correction_features(rows, est, profile, one_thread=one)
    col = {n: X[:, CORRECTION_FEATURES.index(n)] for n in ("log2_prior_speedup",
                                                             "log2_compute_speedup")}
    assert col["log2_prior_speedup"][0] == 0.0 == col["log2_compute_speedup"][0]
    np.testing.assert_allclose(col["log2_prior_speedup"][1:],
                               np.log2(alone.analytical_s[1:] / est.analytical_s[1:]))
    # a big GEMM spreads over the 4 big cores (one prime, three slower); a tiny one gains less
    assert 1.0 < col["log2_compute_speedup"][1] <= 2.0 + 1e-9
    assert col["log2_prior_speedup"][2] < col["log2_prior_speedup"][1]
    # rows all on one thread: the estimate is its own one-thread estimate
    single = rows.with_threads(1)
    est1 = model.estimate(single)
    assert one_thread_estimate(model, single, est1) is est1
    with pytest.raises(ValueError, match="one-thread estimates"):
        correction_features(rows, est, profile, one_thread=_take(est, np.array([0])))


def test_pruned_depthwise_rows_get_the_dense_rows_features() -> None:
    """A depthwise conv runs the dense depthwise kernel whatever its scheme, so the correction
    must see the dense rows calibration measured, not an unseen sparse structure."""
    from grimsim.network import Op

    profile = load_profile("sd855")
    ch = np.array([96, 576])
    args = dict(op=Op.DWCONV, groups=ch, kernel=(3, 3), out_hw=(np.array([56, 7]),
                np.array([56, 7])), padded=True)
    dense = gemm_rows(ch, 9, np.array([56 * 56, 49]), "dense", **args)
    pruned = gemm_rows(ch, 9, np.array([56 * 56, 49]), "unstructured:0.75", **args)
    model = AnalyticalCPUModel(profile)
    est_d, est_p = model.estimate(dense), model.estimate(pruned)
    assert list(est_p.kernel) == ["depthwise", "depthwise"]
    np.testing.assert_allclose(est_p.latency_s, est_d.latency_s)
    np.testing.assert_array_equal(correction_features(pruned, est_p, profile, one_thread=est_p),
                                  correction_features(dense, est_d, profile, one_thread=est_d))
    # a sparse kernel's rows keep their structure
    fc = gemm_rows(256, 512, 64, "unstructured:0.75")
    fc_dense = gemm_rows(256, 512, 64, "dense")
    est_s, est_fd = model.estimate(fc), model.estimate(fc_dense)
    assert not np.array_equal(correction_features(fc, est_s, profile, one_thread=est_s),
                              correction_features(fc_dense, est_fd, profile, one_thread=est_fd))
