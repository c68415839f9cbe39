"""``grimsim fit``: the learned correction from calibration points, a new profile version, and
a held-out report.

The held-out split is by GEMM shape: every point whose (op, M, K, N) is among the held-out
shapes is tested, none of them trained on, so the report says how the model does on layers it
never saw. Metrics follow nn-Meter (MobiSys 2021): the share of predictions within +-5/10/15%
of the measurement and the RMSPE, for the calibrated model, the analytical model alone, and
an nn-Meter-style random forest on shape/FLOP features (no analytical prior) trained on the
same rows; rows under 20 us are reported separately (timer and call-overhead noise dominate
there). The correction written with the new profile is then fitted on all points.

The measurement fitted is ``min_s`` by default: the fastest call over a point's passes,
the statistic that repeats best on a shared machine (see ``TimingOptions``). Points of a
batch whose drift probe ran more than ``slow_tol`` slower than the session's usual speed
(its lower-quartile probe), and points every pass of which ran while other tasks waited for
a CPU (``contended_tol``) or on crowded cores (a multi-thread probe under
``CROWDED_CORE_SHARE`` of the cores' rate), are left out and counted. Where points were
timed in several passes, the report also gives the measurement noise: how far one pass lies
from the point's value - a floor no model can beat on that data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grimsim import __version__
from grimsim.calibration.measure import PointsFile, is_contended, rows_from_records
from grimsim.calibration.plan import Shape
from grimsim.cost.analytical_cpu import AnalyticalCPUModel
from grimsim.cost.features import (
    BASELINE_FEATURES,
    GEMM_KERNELS,
    STACKED_FEATURES,
    baseline_features,
    stacked_features,
)
from grimsim.cost.learned import (
    CalibrationError,
    Correction,
    CorrectionRegressor,
    save_correction,
    utc_now,
)
from grimsim.cost.profile import (
    Calibration,
    DeviceProfile,
    next_version,
    parse_profile,
    save_profile,
    user_profiles_dir,
)

__all__ = ["FitReport", "Metrics", "NoiseFloor", "fit", "headline_mask", "metrics",
           "noise_floor"]

log = logging.getLogger(__name__)

SMALL_S = 20e-6  # rows under 20 us are reported on their own
STATISTICS = ("min_s", "median_s", "mean_s")
REPORT_JSON = "fit_report.json"
REPORT_MD = "fit_report.md"


@dataclass(frozen=True)
class Metrics:
    """Accuracy of predictions against measurements (nn-Meter's figures)."""

    n: int
    within_5: float
    within_10: float
    within_15: float
    rmspe: float
    mape: float
    median_ape: float

    @staticmethod
    def empty() -> Metrics:
        nan = float("nan")
        return Metrics(0, nan, nan, nan, nan, nan, nan)


def metrics(predicted: np.ndarray, measured: np.ndarray) -> Metrics:
    """Shares within +-5/10/15 %, RMSPE = sqrt(mean(((p - m) / m)**2)), MAPE, median APE."""
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    if p.size == 0:
        return Metrics.empty()
    rel = (p - m) / m
    ape = np.abs(rel)
    return Metrics(n=int(p.size), within_5=float(np.mean(ape <= 0.05)),
                   within_10=float(np.mean(ape <= 0.10)), within_15=float(np.mean(ape <= 0.15)),
                   rmspe=float(np.sqrt(np.mean(rel ** 2))), mape=float(np.mean(ape)),
                   median_ape=float(np.median(ape)))


def headline_mask(specs: Sequence[str]) -> np.ndarray:
    """Rows the fidelity target is stated on: dense, unstructured, BCR and N:M at 50/75/90%."""
    out = []
    for spec in specs:
        parts = spec.split(":")
        kind = parts[0]
        if kind == "dense" or kind == "nm":
            out.append(True)
        elif kind in ("unstructured", "bcr"):
            s = float(parts[1] if kind == "unstructured" else parts[2])
            out.append(any(abs(s - t) < 1e-9 for t in (0.5, 0.75, 0.9)))
        else:
            out.append(False)
    return np.asarray(out, dtype=bool)


@dataclass(frozen=True)
class NoiseFloor:
    """How well the measurements repeat, from points timed in several passes.

    ``one_pass_within_5``/``_10``: share of single passes within +-5/10 % of their point's
    value (the statistic over all its passes); ``one_pass_rms``: the RMS of that relative
    gap; ``passes_within_10``: share of points whose passes all lie within 10 % of each
    other; ``contended``: share of points every pass of which ran while other tasks waited
    for a CPU more than 10 % of the time (Linux PSI) or on crowded cores (``core_share``
    under ``CROWDED_CORE_SHARE``; NaN where neither is known).
    """

    n: int
    one_pass_within_5: float
    one_pass_within_10: float
    one_pass_rms: float
    passes_within_10: float
    contended: float

    @staticmethod
    def empty() -> NoiseFloor:
        nan = float("nan")
        return NoiseFloor(0, nan, nan, nan, nan, nan)


def noise_floor(records: Sequence[Mapping[str, Any]], statistic: str = "min_s") -> NoiseFloor:
    """The ``NoiseFloor`` of points timed in two passes or more (``pass_min_s`` /
    ``pass_median_s`` in their records); empty when none was."""
    key = "pass_min_s" if statistic == "min_s" else "pass_median_s"
    one_pass: list[float] = []
    value: list[float] = []
    agree: list[bool] = []
    contended: list[bool] = []
    for r in records:
        passes = [float(v) for v in r.get(key) or () if v]
        if len(passes) < 2:
            continue
        one_pass += passes
        value += [float(r[statistic])] * len(passes)
        agree.append(max(passes) / min(passes) <= 1.10)
        if any(r.get(k) is not None for k in ("cpu_pressure", "core_share", "short_share")):
            contended.append(_contended(r, 0.1))
    if not agree:
        return NoiseFloor.empty()
    gap = metrics(np.asarray(one_pass), np.asarray(value))  # one pass as a "prediction"
    return NoiseFloor(
        n=len(agree), one_pass_within_5=gap.within_5, one_pass_within_10=gap.within_10,
        one_pass_rms=gap.rmspe, passes_within_10=float(np.mean(agree)),
        contended=float(np.mean(contended)) if contended else float("nan"))


def _contended(rec: Mapping[str, Any], pressure_tol: float) -> bool:
    """Whether every pass of a point ran contended (``measure.is_contended`` on its record)."""
    def value(key: str) -> float | None:
        v = rec.get(key)
        return None if v is None else float(v)

    return is_contended(value("cpu_pressure"), value("core_share"), value("short_share"),
                        pressure_tol)


def _probe_ratios(references: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]
                  ) -> np.ndarray:
    """Per point, its batch's drift probe over the session's usual speed (its first
    baseline, or the lower quartile of its probes if that is faster): the slower of the
    probe's two parts, the reference GEMM (``min_s``) and the streaming read
    (``stream_min_s``, where the file has it); 1 where the batch has no probe."""
    parts = np.stack([_probe_part_ratios(references, records, key)
                      for key in ("min_s", "stream_min_s")])
    out = np.fmax(parts[0], parts[1])  # (NaN where a part has no probe)
    return np.where(np.isnan(out), 1.0, out)


def _probe_part_ratios(references: Sequence[Mapping[str, Any]],
                       records: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """``_probe_ratios`` of one part of the probe; NaN where the batch has none."""
    usual: dict[int, float] = {}
    by_session: dict[int, list[float]] = {}
    probe: dict[tuple[int, int], float] = {}
    for ref in references:
        raw = ref.get(key)
        if raw is None and key == "min_s":
            raw = ref.get("median_s")  # older files: the median
        if raw is None:  # the file has no such part
            continue
        try:
            session = int(ref.get("session", 0))
            value = float(raw)
        except (TypeError, ValueError):
            continue
        if not value > 0:
            continue
        by_session.setdefault(session, []).append(value)
        if ref.get("kind") == "probe":
            probe[(session, int(ref.get("batch", -1)))] = value
        elif ref.get("kind") == "baseline" and session not in usual:
            usual[session] = value
    for session, values in by_session.items():
        usual[session] = min(usual.get(session, np.inf), float(np.quantile(values, 0.25)))
    out = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        session = int(r.get("session", 0))
        probed = probe.get((session, int(r.get("batch", -1))))
        if probed is not None and session in usual:
            out[i] = probed / usual[session]
    return out


@dataclass(frozen=True)
class FitReport:
    """What ``fit`` produced and how well the correction does on held-out shapes.

    ``heldout[subset][model]`` with subsets ``all``, ``headline`` (dense/unstructured/BCR/N:M
    at 50/75/90 %), ``headline_from_20us``, ``under_20us``, ``from_20us``, per scheme kind
    (``kind=...``) and per thread count (``threads=...``); models ``calibrated``,
    ``analytical``, ``baseline_rf``.
    """

    points_dir: str
    profile: str
    profile_path: str
    artefact_path: str
    calibrated_profile: str
    device_fingerprint: str
    statistic: str
    cache_state: str
    n_points: int
    n_train: int
    n_test: int
    n_shapes_train: int
    n_shapes_test: int
    band_level: float
    band_coverage: float
    heldout: dict[str, dict[str, Metrics]]
    dropped: dict[str, int] = field(default_factory=dict)
    noise: dict[str, NoiseFloor] = field(default_factory=dict)
    baseline: str = ""
    created: str = ""
    grimsim: str = __version__

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["heldout"] = {k: {m: asdict(v) for m, v in d.items()} for k, d in
                          self.heldout.items()}
        out["noise"] = {k: asdict(v) for k, v in self.noise.items()}
        return _finite(out)

    def to_markdown(self) -> str:
        lines = [
            f"Calibration fit: `{self.profile}` from {self.n_points} points "
            f"(`{self.points_dir}`), {self.created}",
            "",
            f"- measured statistic: `{self.statistic}`; analytical cache state "
            f"`{self.cache_state}`; device `{self.device_fingerprint}`",
            f"- held-out split by (op, M, K, N): {self.n_shapes_test} shapes / "
            f"{self.n_test} points tested, {self.n_shapes_train} shapes / {self.n_train} "
            "points trained",
            f"- band: {self.band_level:.0%} nominal, {self.band_coverage:.1%} of held-out "
            "points inside",
            f"- baseline: {self.baseline}",
            "",
            "| subset | model | n | within 5% | within 10% | within 15% | RMSPE | MAPE |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for subset, models in self.heldout.items():
            for name, m in models.items():
                lines.append(f"| {subset} | {name} | {m.n} | {_pct(m.within_5)} | "
                             f"{_pct(m.within_10)} | {_pct(m.within_15)} | {_pct(m.rmspe)} | "
                             f"{_pct(m.mape)} |")
        if self.dropped:
            lines += ["", "Dropped points: " + ", ".join(f"{k}: {v}" for k, v in
                                                         self.dropped.items())]
        lines += ["", "Measurement noise (points timed in several passes: one pass against "
                  f"the point's `{self.statistic}`; no model can be more accurate than its "
                  "data):", ""]
        if not any(v.n for v in self.noise.values()):
            lines.append("- not measured: every point was timed in a single pass")
        else:
            lines += ["| subset | points | one pass within 5% | within 10% | RMS | passes "
                      "agree within 10% | contended |", "|---|---:|---:|---:|---:|---:|---:|"]
            for subset, nf in self.noise.items():
                lines.append(f"| {subset} | {nf.n} | {_pct(nf.one_pass_within_5)} | "
                             f"{_pct(nf.one_pass_within_10)} | {_pct(nf.one_pass_rms)} | "
                             f"{_pct(nf.passes_within_10)} | {_pct(nf.contended)} |")
        return "\n".join(lines) + "\n"


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.1f}%"


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Data:
    records: list[dict[str, Any]]
    X: np.ndarray
    Xb: np.ndarray
    y: np.ndarray
    analytical_s: np.ndarray
    measured_s: np.ndarray
    split_keys: np.ndarray
    specs: list[str]
    kinds: np.ndarray
    threads: np.ndarray
    kernels: tuple[str, ...]


def _session_profile(sessions: Sequence[Mapping[str, Any]], where: str) -> DeviceProfile:
    last = sessions[-1]
    try:
        profile = parse_profile(last["profile"], f"{where}: session {last.get('session')}")
    except KeyError:
        raise CalibrationError(f"{where}: session record without its profile") from None
    ids = {s.get("profile_id") for s in sessions}
    if len(ids) > 1:
        log.warning("%s: sessions used profiles %s; fitting against the latest, %s", where,
                    sorted(str(i) for i in ids), profile.id)
    return profile


def _load(points_dir: Path, statistic: str, slow_tol: float | None = 0.10,
          contended_tol: float | None = 0.25
          ) -> tuple[_Data, DeviceProfile, dict[str, Any], dict[str, int]]:
    pf = PointsFile(points_dir)
    if not pf.path.is_file():
        raise CalibrationError(f"{pf.path}: no calibration points; run `grimsim calibrate "
                               f"--device NAME --out {points_dir}` first")
    state = pf.load()
    if not state.points:
        raise CalibrationError(f"{pf.path}: no valid points to fit (run `grimsim calibrate` "
                               "longer)")
    profile = _session_profile(state.sessions, str(pf.path))
    session = state.sessions[-1]
    cache_state = str(session.get("cache_state", "warm"))
    records = [state.points[k] for k in sorted(state.points)]
    if statistic not in STATISTICS:
        raise CalibrationError(f"statistic {statistic!r} must be one of {', '.join(STATISTICS)}")
    model = AnalyticalCPUModel(profile, cache_state=cache_state,
                               winograd=str(session.get("winograd", "engine")))
    rows = rows_from_records(records)
    est = model.estimate(rows)
    measured = np.asarray([float(r[statistic]) for r in records])
    recorded = np.asarray([str(r["kernel"]) for r in records], dtype=object)
    same_kernel = recorded == est.kernel
    usable = same_kernel & np.isin(est.kernel, GEMM_KERNELS) & (est.analytical_s > 0)
    slow = np.zeros(len(records), bool)
    if slow_tol is not None:
        slow = _probe_ratios(state.references, records) > 1.0 + slow_tol
    contended = np.zeros(len(records), bool)
    if contended_tol is not None:
        contended = np.asarray([_contended(r, contended_tol) for r in records])
    dropped = {"pending_drift": len(state.pending),
               "kernel_changed": int((~same_kernel).sum()),
               "slow_machine": int((slow & usable).sum()),
               "contended": int((contended & ~slow & usable).sum())}
    usable &= ~slow & ~contended
    if dropped["slow_machine"]:
        log.info("%d points of batches whose drift probe ran > %.0f%% slower than usual left "
                 "out", dropped["slow_machine"], 100 * (slow_tol or 0.0))
    if dropped["kernel_changed"]:
        log.warning("%d points were timed with another kernel than the analytical model now "
                    "picks for them; left out (calibrate again to cover them)",
                    dropped["kernel_changed"])
    idx = np.flatnonzero(usable)
    if idx.size < 10:
        raise CalibrationError(f"{pf.path}: only {idx.size} usable points; at least 10 are "
                               "needed to fit (run `grimsim calibrate` longer)")
    rows = rows.take(idx)
    est_u = model.estimate(rows)
    recs = [records[i] for i in idx]
    specs = [str(r["spec"]) for r in recs]
    X = stacked_features(model, rows, est_u, profile)
    data = _Data(
        records=recs, X=X, Xb=baseline_features(rows),
        y=np.log(measured[idx] / est_u.analytical_s), analytical_s=est_u.analytical_s,
        measured_s=measured[idx],
        split_keys=np.asarray([Shape.from_dict(r["shape"]).split_key for r in recs]),
        specs=specs, kinds=np.asarray([s.split(":")[0] for s in specs]),
        threads=np.asarray([int(r["threads"]) for r in recs]),
        kernels=tuple(sorted({str(k) for k in est_u.kernel})))
    return data, profile, session, dropped


def _subsets(data: _Data, idx: np.ndarray) -> dict[str, np.ndarray]:
    meas = data.measured_s[idx]
    head = headline_mask([data.specs[i] for i in idx])
    out = {"all": np.ones(idx.size, bool), "headline": head,
           "headline_from_20us": head & (meas >= SMALL_S),
           "under_20us": meas < SMALL_S, "from_20us": meas >= SMALL_S}
    for kind in sorted(set(data.kinds[idx])):
        out[f"kind={kind}"] = data.kinds[idx] == kind
    for t in sorted(set(data.threads[idx].tolist())):
        out[f"threads={t}"] = data.threads[idx] == t
    return out


def _noise(data: _Data, statistic: str) -> dict[str, NoiseFloor]:
    out = {"all": noise_floor(data.records, statistic)}
    for t in sorted(set(data.threads.tolist())):
        out[f"threads={t}"] = noise_floor([r for r, n in zip(data.records, data.threads,
                                                             strict=True) if n == t], statistic)
    return out


def _baseline_rf(seed: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    # nn-Meter's kernel predictors are random forests on configuration features; a few
    # hundred trees, unlimited depth, like its released predictors.
    return RandomForestRegressor(n_estimators=300, min_samples_leaf=1, max_features=0.5,
                                 random_state=seed, n_jobs=1)


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------
def fit(points_dir: str | os.PathLike[str], out_profile: str | os.PathLike[str] | None = None,
        *, statistic: str = "min_s", holdout: float = 0.25, seed: int = 0,
        params: Mapping[str, Any] | None = None, baseline: bool = True,
        slow_tol: float | None = 0.10, contended_tol: float | None = 0.25) -> FitReport:
    """Fit the correction on ``<points_dir>/points.jsonl`` and write a new profile version.

    ``out_profile``: the profile YAML to write (default: ``<user data>/profiles/<name>@<v>
    .yaml``, where ``load_profile(name)`` - and for the host, ``--device host`` - finds it);
    the correction artefact goes beside it as ``<name>@<v>.correction.json``. ``holdout``:
    share of distinct (op, M, K, N) shapes held out for the report. ``params``: overrides
    of ``CorrectionRegressor``'s parameters. ``statistic``: the measurement fitted
    (``min_s``, ``median_s`` or ``mean_s``). ``slow_tol``: leave out points of batches whose
    drift probe ran more than this share slower than the session's usual speed (None keeps
    them). ``contended_tol``: leave out points every pass of which ran while other tasks
    waited for a CPU more than this share of the time, or on crowded cores (None keeps
    them). The report is also
    written to ``<points_dir>/fit_report.json`` and ``.md``.
    """
    folder = Path(points_dir)
    if not 0.0 < holdout < 1.0:
        raise CalibrationError(f"holdout must be in (0, 1), got {holdout}")
    data, profile, session, dropped = _load(folder, statistic, slow_tol, contended_tol)
    reg_params = {"feature_names": list(STACKED_FEATURES), "random_state": seed,
                  **dict(params or {})}

    # ---- held-out evaluation: shapes never seen in training
    keys = np.unique(data.split_keys)
    rng = np.random.default_rng(seed)
    n_test_keys = max(1, round(holdout * keys.size))
    test_keys = set(rng.permutation(keys)[:n_test_keys].tolist())
    test = np.asarray([k in test_keys for k in data.split_keys])
    train = ~test
    if train.sum() < 5 or test.sum() < 1:
        raise CalibrationError(f"{folder}: too few shapes ({keys.size}) to hold some out")
    reg = CorrectionRegressor(**reg_params).fit(data.X[train], data.y[train],
                                                groups=data.split_keys[train])
    corr, lo, hi = reg.predict_band(data.X[test])
    ana_t = data.analytical_s[test]
    meas_t = data.measured_s[test]
    predictions = {"calibrated": ana_t * np.exp(corr), "analytical": ana_t}
    baseline_note = "not run"
    if baseline:
        try:
            rf = _baseline_rf(seed).fit(data.Xb[train], np.log(data.measured_s[train]))
            predictions["baseline_rf"] = np.exp(rf.predict(data.Xb[test]))
            baseline_note = (f"nn-Meter-style random forest (300 trees) on {len(BASELINE_FEATURES)}"
                             " shape/FLOP features, log latency, same training rows")
        except ImportError:
            baseline_note = "skipped: scikit-learn is not installed"
            log.warning("baseline skipped: scikit-learn is not installed")
    test_idx = np.flatnonzero(test)
    heldout: dict[str, dict[str, Metrics]] = {}
    for name, sel in _subsets(data, test_idx).items():
        heldout[name] = {model: metrics(p[sel], meas_t[sel]) for model, p in predictions.items()}
    inside = (np.log(meas_t / ana_t) >= lo) & (np.log(meas_t / ana_t) <= hi)

    # ---- the correction on every point, and the new profile version
    final = CorrectionRegressor(**reg_params).fit(data.X, data.y, groups=data.split_keys)
    version = next_version(profile.name)
    new_id = f"{profile.name}@{version}"
    if out_profile is None:
        profile_path = user_profiles_dir() / f"{new_id}.yaml"
    else:
        profile_path = Path(out_profile)
        if profile_path.suffix not in (".yaml", ".yml"):
            profile_path = profile_path.with_suffix(".yaml")
    artefact = profile_path.with_name(f"{profile_path.stem}.correction.json")
    created = utc_now()
    meta = {"profile": new_id, "calibrated_profile": profile.id,
            "fingerprint": session.get("fingerprint", {}),
            "fingerprint_id": session.get("fingerprint_id"), "cache_state":
            str(session.get("cache_state", "warm")), "statistic": statistic,
            "winograd": str(session.get("winograd", "engine")),
            "kernels": list(data.kernels), "n_points": int(data.y.size),
            "n_shapes": int(keys.size), "created": created, "grimsim": __version__,
            "points": str(folder.resolve() / "points.jsonl"),
            "heldout": {"within_10": heldout["all"]["calibrated"].within_10,
                        "rmspe": heldout["all"]["calibrated"].rmspe}}
    correction = Correction(regressor=final, feature_names=STACKED_FEATURES,
                            meta=_finite(meta))
    save_correction(correction, artefact)
    # the held-out points beside the artefact: the explorer's predicted-vs-measured view
    heldout_points = [{"predicted_s": float(predictions["calibrated"][j]),
                       "analytical_s": float(ana_t[j]), "measured_s": float(meas_t[j]),
                       "label": str(data.split_keys[i])}
                      for j, i in enumerate(test_idx)]
    artefact.with_name(f"{profile_path.stem}.heldout.json").write_text(
        json.dumps({"profile": new_id, "points": heldout_points}) + "\n", encoding="utf-8")
    digest = hashlib.sha256(artefact.read_bytes()).hexdigest()[:12]
    new_profile = replace(profile, version=version, calibration=Calibration(
        artefact=artefact.name, version=digest, created=created))
    save_profile(new_profile, profile_path)
    report = FitReport(
        points_dir=str(folder), profile=new_id, profile_path=str(profile_path),
        artefact_path=str(artefact), calibrated_profile=profile.id,
        device_fingerprint=str(session.get("fingerprint", {}).get("machine", "")),
        statistic=statistic, cache_state=str(session.get("cache_state", "warm")),
        n_points=int(data.y.size), n_train=int(train.sum()), n_test=int(test.sum()),
        n_shapes_train=int(keys.size - len(test_keys)), n_shapes_test=len(test_keys),
        band_level=float(final.band_level), band_coverage=float(np.mean(inside)),
        heldout=heldout, dropped=dropped, noise=_noise(data, statistic),
        baseline=baseline_note, created=created)
    (folder / REPORT_JSON).write_text(json.dumps(report.to_dict(), indent=1) + "\n",
                                      encoding="utf-8")
    (folder / REPORT_MD).write_text(report.to_markdown(), encoding="utf-8")
    log.info("wrote %s (%s) and %s", profile_path, new_id, artefact)
    return report
