"""ncnn's Vulkan rows against the uncalibrated analytical GPU model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from grimsim.calibration.ncnn_gpu import (
    REASON_IMPOSSIBLE,
    REASON_INT8,
    REASON_NO_PROFILE,
    REASON_OVERCLOCKED,
    REASON_SEVERAL_GPUS,
    GpuCase,
    gpu_cases,
    gpu_key,
    run_ncnn_gpu_validation,
    soc_keys,
    validate_gpu,
)
from grimsim.calibration.ncnn_reference import NcnnBenchmarkRow, load_ncnn_benchmarks

D9300 = ("MediaTek Dimensity 9300 (MT6989) (Cortex-X4 3.25 GHz + 2.85 GHz x 3 + "
         "Cortex-A720 2.0 GHz x 4 + Mali-G720-Immortalis MC12)")
RK3588 = "Rockchip RK3588 (Cortex-A76 2.4GHz x 4 + Cortex-A55 1.8GHz x 4)"
ORION = ("Radxa Orion O6 (Big Cortex-A720 2.6Ghz x4 + Little Cortex-A520 x 4 + "
         "Arm Immortalis G720 MC10 GPU 1.1Ghz)")
RPI5_OC = ("Raspberry Pi 5 Broadcom BCM2712 Overclock to 2.9Ghz, VideoCore VII Graphics "
           "Overclock to 1.1Ghz (Vulkan 1.2)")
RK3566 = "Station-M2/ROC-RK3566-PC, Rockchip RK3566 (Cortex-A55 1.8GHz x 4 + Mali-G52)"


def row(device: str, model: str, ms: float, gpu: int = 0) -> NcnnBenchmarkRow:
    return NcnnBenchmarkRow(device=device, threads=1, gpu_device=gpu, model=model,
                            int8=model.endswith("_int8"), min_ms=ms, avg_ms=ms, line=1,
                            model_as_written=model)


def test_gpu_and_soc_names() -> None:
    assert gpu_key("Mali-G720-Immortalis MC12") == "mali g720"
    assert gpu_key("Immortalis-G720 MC12") == "mali g720"
    assert gpu_key("Mali-G610 MP4") == "mali g610"
    assert gpu_key("VideoCore VII Graphics (Vulkan 1.2)") == "videocore vii"
    assert gpu_key("Adreno 640") == "adreno 640"
    assert gpu_key("Cortex-A76 2.4GHz x 4") is None
    assert soc_keys(D9300) == {"dimensity 9300", "mt6989"}
    assert soc_keys("Station-M3/ROC-RK3588S-PC, Rockchip RK3588S") == {"rk3588"}
    assert soc_keys("Qualcomm Snapdragon 855 (SM8150)") == {"sm8150"}


def test_rows_are_matched_by_soc_and_filtered(reference_dir: Path) -> None:
    rows = [row(D9300, "squeezenet", 11.3), row(D9300, "squeezenet", 12.0),  # best of two
            row(RK3588, "mobilenet", 9.2),  # no GPU named: the SoC decides
            row(ORION, "squeezenet", 5.0),  # a G720, but not the Dimensity's SoC
            row(RK3566, "squeezenet", 20.0),
            row(RPI5_OC, "squeezenet", 90.0),
            row(D9300, "squeezenet_int8", 9.0),
            row(RK3588, "resnet18", 0.01),  # 1.8 GMACs in 10 us: not a real run
            row("Some Board (Cortex-A55 1.8GHz x 4) Rockchip RK3588", "squeezenet", 7.0),
            row("Some Board (Cortex-A55 1.8GHz x 4) Rockchip RK3588", "squeezenet", 7.0, 1)]
    cases, skipped = gpu_cases(rows)
    assert {(c.device, c.profile, c.network) for c in cases} == {
        (D9300, "dimensity9300", "squeezenet"), (RK3588, "rk3588", "mobilenet")}
    d9300 = next(c for c in cases if c.device == D9300)
    assert d9300.measured_ms == 11.3 and d9300.predicted_ms > 0
    assert set(skipped[REASON_NO_PROFILE]) == {ORION, RK3566}
    assert skipped[REASON_OVERCLOCKED] == {RPI5_OC: 1}
    assert skipped[REASON_INT8] == {D9300: 1}
    assert skipped[REASON_IMPOSSIBLE] == {RK3588: 1}
    assert sum(skipped[REASON_SEVERAL_GPUS].values()) == 2


def test_report_scales_by_the_other_gpus_only() -> None:
    cases = [GpuCase("a", "p1", "n1", 20.0, 10.0), GpuCase("a", "p1", "n2", 40.0, 10.0),
             GpuCase("b", "p2", "n1", 10.0, 10.0), GpuCase("c", "p2", "n1", 5.0, 10.0)]
    rep = validate_gpu(cases, {REASON_NO_PROFILE: {"x": 3}})
    a, b, c = (rep.per_device[d] for d in "abc")
    assert a["ratio"] == pytest.approx(3.0)  # median of 2 and 4
    assert a["mape"] == pytest.approx((0.5 + 0.75) / 2)
    # a's scale comes from p2's rows (ratios 1 and 0.5), never from its own
    assert a["scale"] == pytest.approx(math.sqrt(0.5))
    assert b["scale"] == c["scale"] == pytest.approx(8.0 ** 0.5)
    assert c["mape"] == pytest.approx(1.0)
    assert rep.median_mape == pytest.approx(float(a["mape"]))
    md = rep.to_markdown()
    assert "| a | p1 | 2 | 3.00 |" in md and "| no built-in profile of this GPU | 1 | 3 |" in md
    assert rep.in_band == 1.0  # ratios 0.5..4 inside the model's band
    lo, hi = rep.band
    out = validate_gpu([*cases, GpuCase("d", "p2", "n1", 20.0 * hi, 10.0)])
    assert out.in_band == pytest.approx(4 / 5) and lo < 1 < hi
    assert math.isnan(validate_gpu([]).median_mape)


def test_reference_gpu_rows(reference_dir: Path) -> None:
    rows = load_ncnn_benchmarks(reference_dir / "ncnn" / "benchmarks.csv")
    cases, skipped = gpu_cases(rows)
    assert {"dimensity9300", "rk3588", "rpi5"} <= {c.profile for c in cases}
    assert all(c.predicted_ms > 0 and c.measured_ms > 0 for c in cases)
    # one case per (device, network): the fastest of repeated tables
    assert len({(c.device, c.network) for c in cases}) == len(cases)
    # the Station-M3 table's GPU vgg16 in 0.54 ms (31 GFLOP) is not a real run
    assert any("RK3588S" in d for d in skipped[REASON_IMPOSSIBLE])
    assert not any(c.network == "vgg16" and "RK3588S" in c.device for c in cases)
    report = validate_gpu(cases, skipped)
    assert report.n_rows == len(cases) and 0 < report.median_mape < math.inf
    again = run_ncnn_gpu_validation(reference_dir / "ncnn" / "benchmarks.csv")
    assert again.per_device == report.per_device
