"""Device-level efficiency on ncnn's public benchmarks, leave-one-device-out (small subset)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from grimsim.calibration.ncnn_fit import (
    DEVICE_FEATURES,
    device_profile,
    lodo_predictions,
    ncnn_cases,
    validate_lodo,
)
from grimsim.calibration.ncnn_reference import (
    load_ncnn_benchmarks,
    parse_device_heading,
    usable_devices,
)
from grimsim.cost.microarch import core_types
from grimsim.errors import GrimsimError

NETWORKS = ["squeezenet", "mobilenet", "resnet18"]


@pytest.fixture(scope="module")
def subset(reference_dir: Path):  # type: ignore[no-untyped-def]
    rows = load_ncnn_benchmarks(reference_dir / "ncnn" / "benchmarks.csv")
    devices, keys = [], set()
    for d in usable_devices(rows, microarchitectures=set(core_types())):
        if d.cpu_key not in keys and len(devices) < 6:
            keys.add(d.cpu_key)
            devices.append(d.heading)
    cases, excluded, gpu = ncnn_cases(rows, devices=devices, networks=NETWORKS)
    return rows, devices, cases, excluded, gpu


def test_profiles_come_from_the_heading() -> None:
    h = parse_device_heading("Rockchip RK3588 (Cortex-A76 2.4GHz x 4 + Cortex-A55 1.8GHz x 4)",
                             microarchitectures=set(core_types()))
    p = device_profile(h)
    assert [(c.core, c.count, c.max_clock_ghz) for c in p.clusters] == [
        ("cortex-a76", 4, 2.4), ("cortex-a55", 4, 1.8)]
    assert p.provenance("dram.peak_bandwidth_gbs") == "assumed"
    with pytest.raises(GrimsimError, match="not usable"):
        device_profile(parse_device_heading("AWS c5.4xlarge Instance"))


def test_cases_cover_the_subset(subset) -> None:  # type: ignore[no-untyped-def]
    rows, devices, cases, excluded, gpu = subset
    assert {c.device for c in cases} == set(devices)
    assert {c.network for c in cases} <= set(NETWORKS)
    for c in cases:
        assert c.measured_ms > 0 and c.predicted_ms > 0
        assert len(c.features) == len(DEVICE_FEATURES)
    # the best of repeated tables, one case per (device, network, threads)
    assert len({(c.device, c.network, c.threads) for c in cases}) == len(cases)
    assert excluded and all(reason for reason in excluded.values())
    assert sum(gpu.values()) == sum(not r.on_cpu for r in rows)


def test_held_out_device_is_predicted_without_its_own_rows(subset) -> None:  # type: ignore[no-untyped-def]
    _, devices, cases, _, _ = subset
    base = lodo_predictions(cases)
    victim = devices[0]
    scaled = [replace(c, measured_ms=3 * c.measured_ms) if c.device == victim else c
              for c in cases]
    again = lodo_predictions(scaled)
    mine = np.asarray([c.device == victim for c in cases])
    np.testing.assert_allclose(again[mine], base[mine], rtol=1e-12)
    assert not np.allclose(again[~mine], base[~mine])


def test_lodo_report(subset) -> None:  # type: ignore[no-untyped-def]
    _, devices, cases, excluded, gpu = subset
    report = validate_lodo(cases, excluded=excluded, gpu_rows=gpu)
    assert report.n_devices == len(devices) == report.n_groups
    assert set(report.per_device) == set(devices)
    assert 0 < report.median_mape < 5 and 0 < report.median_mape_analytical
    text = report.to_markdown()
    assert "leave-one-device-out" in text and "Devices left out" in text
    with pytest.raises(GrimsimError, match="two CPU configurations"):
        validate_lodo([c for c in cases if c.device == devices[0]])
