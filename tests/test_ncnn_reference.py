"""ncnn's public benchmark table: loading, model names, device headings, usable split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.calibration.ncnn_reference import (
    MICROARCHITECTURES,
    REASON_GPU_ONLY,
    REASON_NO_CLOCK,
    REASON_NO_CORE,
    REASON_NOT_IN_TABLE,
    REASON_PRODUCT_ONLY,
    REFERENCE_ENV,
    UNMAPPED_MODELS,
    NcnnBenchmarkRow,
    ReferenceDataError,
    device_headings,
    load_ncnn_benchmarks,
    network_param_path,
    parse_device_heading,
    summarize_devices,
    usable_devices,
)
from grimsim.errors import GrimsimError


@pytest.fixture(scope="module")
def csv_path(reference_dir: Path) -> Path:
    path = reference_dir / "ncnn" / "benchmarks.csv"
    if not path.is_file():
        pytest.fail(f"reference data missing: {path}")
    return path


@pytest.fixture(scope="module")
def rows(csv_path: Path) -> list[NcnnBenchmarkRow]:
    return load_ncnn_benchmarks(csv_path)


# ------------------------------------------------------------------------------ loading


def test_every_data_line_becomes_a_row(csv_path: Path, rows: list[NcnnBenchmarkRow]) -> None:
    lines = [ln for ln in csv_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(rows) == len(lines) - 1  # minus the header
    assert [r.line for r in rows] == sorted({r.line for r in rows})
    assert len(device_headings(rows)) >= 90


def test_default_path_is_the_shared_reference(rows: list[NcnnBenchmarkRow],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REFERENCE_ENV, raising=False)
    assert load_ncnn_benchmarks() == rows


def test_env_var_names_the_reference_folder(tmp_path: Path, csv_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REFERENCE_ENV, str(tmp_path))
    with pytest.raises(ReferenceDataError) as err:
        load_ncnn_benchmarks()
    assert str(tmp_path / "ncnn" / "benchmarks.csv") in str(err.value)
    assert REFERENCE_ENV in str(err.value)
    (tmp_path / "ncnn").mkdir()
    lines = csv_path.read_text(encoding="utf-8").splitlines()[:4]
    (tmp_path / "ncnn" / "benchmarks.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(load_ncnn_benchmarks()) == 3


def test_every_model_has_a_structure_or_a_reason(rows: list[NcnnBenchmarkRow],
                                                 csv_path: Path) -> None:
    reference = csv_path.parent.parent
    unmapped = {r.network for r in rows if network_param_path(r.network, reference) is None}
    assert unmapped == set(UNMAPPED_MODELS)  # exactly the documented ones
    assert all(UNMAPPED_MODELS[m] for m in unmapped)
    written = {r.model_as_written for r in rows}
    assert {"mobilenet-ssd", "squeezenet-int8"} <= written  # aliases really occur ...
    assert not any("-ssd" in r.model or "-int8" in r.model for r in rows)  # ... and are mapped


def test_int8_rows_are_flagged(rows: list[NcnnBenchmarkRow]) -> None:
    int8 = [r for r in rows if r.int8]
    assert len(int8) > 1000
    assert all(r.model.endswith("_int8") and not r.network.endswith("_int8") for r in int8)
    assert not any("int8" in r.model_as_written for r in rows if not r.int8)
    assert Counter("int8" in r.model_as_written for r in rows)[True] == len(int8)


def test_old_table_without_gpu_column_is_cpu(rows: list[NcnnBenchmarkRow]) -> None:
    hi = [r for r in rows if r.device.startswith("HiSilicon Hi3519V101")]
    assert hi and all(r.gpu_device == -1 and r.on_cpu for r in hi)
    assert {r.model for r in hi} >= {"mobilenet_ssd", "squeezenet_ssd", "mobilenet_yolo"}


HEADER = "device,threads,gpu_device,model,min_ms,avg_ms\n"


@pytest.mark.parametrize(("body", "line", "words"), [
    ("Phone (A55 1.8GHz x 4),four,-1,mobilenet,1.0,2.0\n", 2, "threads"),
    ("Phone (A55 1.8GHz x 4),0,-1,mobilenet,1.0,2.0\n", 2, "threads"),
    ("Phone,1,-1,mobilenet,1.0,2.0\nPhone,1,-2,mobilenet,1.0,2.0\n", 3, "gpu_device"),
    ("Phone,1,-1,mobilenet,-1.0,2.0\n", 2, "min_ms"),
    ("Phone,1,-1,mobilenet,1.0,nan\n", 2, "avg_ms"),
    ("Phone,1,-1,mobilenet,1.0,ms\n", 2, "avg_ms"),
    ("Phone,1,-1,mobilenet,3.0,2.0\n", 2, "exceeds"),
    ("Phone,1,-1,,1.0,2.0\n", 2, "model"),
    ("Phone,1,-1,mobile net!,1.0,2.0\n", 2, "model"),
    (",1,-1,mobilenet,1.0,2.0\n", 2, "device"),
    ("Phone,1,-1,mobilenet,1.0\n", 2, "5 fields"),
    ("Phone (A76 2.4GHz x 4, A55 1.8GHz x 4),1,-1,mobilenet,1.0,2.0\n", 2, "quote"),
    ("Phone,1,-1,mobilenet,1.0,2.0\n\nPhone,1,-1,mobilenet,x,2.0\n", 4, "min_ms"),
])
def test_malformed_rows_name_the_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    path = tmp_path / "bench.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=words) as err:
        load_ncnn_benchmarks(path)
    assert f"{path}:{line}:" in str(err.value)
    assert isinstance(err.value, GrimsimError)


@pytest.mark.parametrize(("text", "words"), [
    ("", "empty file"),
    ("device,threads,model,min_ms,avg_ms\nPhone,1,mobilenet,1,2\n", "header"),
    ('device,threads,gpu_device,model,min_ms,avg_ms\n"Phone,1,-1,mobilenet,1,2\n', "malformed"),
])
def test_malformed_files(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bench.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=words):
        load_ncnn_benchmarks(path)


def test_missing_file_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match="not found"):
        load_ncnn_benchmarks(tmp_path / "nope.csv")
    with pytest.raises(ReferenceDataError, match="not a file"):
        load_ncnn_benchmarks(tmp_path)
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "Caf\xe9,1,-1,mobilenet,1,2\n").encode("latin-1"))
    with pytest.raises(ReferenceDataError, match="UTF-8"):
        load_ncnn_benchmarks(path)


def test_quoted_heading_with_commas_loads(tmp_path: Path) -> None:
    path = tmp_path / "bench.csv"
    path.write_text(HEADER + '"Board, SoC (Cortex-A55 1.8GHz x 4)",4,-1,mobilenet-ssd,1,2\n',
                    encoding="utf-8")
    (row,) = load_ncnn_benchmarks(path)
    assert row.device == "Board, SoC (Cortex-A55 1.8GHz x 4)"
    assert (row.model, row.threads, row.gpu_device, row.int8) == ("mobilenet_ssd", 4, -1, False)


# ------------------------------------------------------------------------------ headings

# Real headings from the table, checked by hand: (core, count, GHz) per cluster.
REAL_HEADINGS: list[tuple[str, list[tuple[str, int, float]]]] = [
    ("NVIDIA Jetson AGX Orin (Cortex-A78AE 2.2 GHz x 12 + Ampere@1.3 GHz Tensor Cores 64)",
     [("cortex-a78", 12, 2.2)]),
    ("AMD Ryzen Threadripper 3970X (Zen2 3.7 GHz ~ 4.5 GHz x 32)", [("zen2", 32, 4.5)]),
    ("AMD Ryzen Embedded V1605B (Zen 2.0 GHz ~ 3.6 GHz x 4 + Radeon Vega 8 1.1GHz 8CU)",
     [("zen", 4, 3.6)]),
    ("Qualcomm MSM6150 Snapdragon 675 (Kyro460 2.0GHz x 2 + Kyro460 1.7GHz x 6 + Adreno 612)",
     [("cortex-a76", 2, 2.0), ("cortex-a55", 6, 1.7)]),
    ("Qualcomm MSM8998 Snapdragon 835 (Kyro 2.45GHz x 4 + Kyro 1.9GHz x 4 + Adreno 540)",
     [("cortex-a73", 4, 2.45), ("cortex-a53", 4, 1.9)]),
    ("Qualcomm SDM765G Snapdragon 765G (Kyro 1.8GHz x 6 + Kyro 2.2GHz x 2 + Adreno 620)",
     [("cortex-a55", 6, 1.8), ("cortex-a76", 2, 2.2)]),
    ("Qualcomm Snapdragon 888 (Cortex-X1 2.84GHz x1 + Cortex-A78 2.4GHz x3 + "
     "Cortex-A55 1.8GHz x4 + Adreno 660)",
     [("cortex-x1", 1, 2.84), ("cortex-a78", 3, 2.4), ("cortex-a55", 4, 1.8)]),
    ("Raspberry Pi 3 Model B+ Broadcom BCM2837B0, Cortex-A53 (ARMv8) (1.4GHz x 4)",
     [("cortex-a53", 4, 1.4)]),
    ("Radxa Zero 3W, Cortex-A55 (ARMv82) (1.416 GHz x 4)", [("cortex-a55", 4, 1.416)]),
    ("Khadas VIM3, Amlogic A311D (Cortex-A73 2.2GHz x 4 + Cortex-A53 1.8GHz x 2)",
     [("cortex-a73", 4, 2.2), ("cortex-a53", 2, 1.8)]),
    ("Station-M3/ROC-RK3588S-PC, Rockchip RK3588S (Quad Core A76 2.4GHz + Quad Core A55 1.8GHz "
     "+ Mali-G610) StationOS (Android)", [("cortex-a76", 4, 2.4), ("cortex-a55", 4, 1.8)]),
    ("MYIR RemiPi,Renesas RZG2L(Cortex-A55 1.5GHz x 2)", [("cortex-a55", 2, 1.5)]),
    ("RDK X3 Module (Cortex-A53 1.5GHz x 4) aarch64", [("cortex-a53", 4, 1.5)]),
    ("NVIDIA Jetson TX2 NX(NV-Denver2 2.0Ghz x 2 +  Cortex-A57 2.0Ghz x 4 + "
     "256-core NVIDIA Pascal iGPU)", [("nvidia-denver2", 2, 2.0), ("cortex-a57", 4, 2.0)]),
    ("iPhone 5S (Apple A7 1.3GHz x 2)", [("apple-cyclone", 2, 1.3)]),
    ("Freescale i.MX7 Dual (Cortex A7 1.0GHz x 2)", [("cortex-a7", 2, 1.0)]),
    ("Z7-Lite 7020 XC7Z020CLG400-2 (Cortex-A9 766MHz x 2)", [("cortex-a9", 2, 0.766)]),
    ("Loongson 3A6000 (LA664 2.5GHz * 4+4)", [("loongson-la664", 8, 2.5)]),
    ("Ingenic T40XP Xburst2 Core X2 1.4Ghz (without MSA)", [("ingenic-xburst2", 2, 1.4)]),
    ("MacBook Pro (15-inch, 2019) - 2.6GHz six cores Intel Core i7 && Radeon Pro 555X 4GB && "
     "Intel UHD Graphics 630 1536MB", [("intel-core", 6, 2.6)]),
    ("CVITEK SG2000 (C906, 1 GHz x 1 + 700MHz x 1)",
     [("thead-c906", 1, 1.0), ("thead-c906", 1, 0.7)]),
    ("Amlogic S805 (Cortex-A5, 4 × 1.536GHz)", [("cortex-a5", 4, 1.536)]),
    ("MediaTek Dimensity 9300 (MT6989) (Cortex-X4 3.25 GHz + 2.85 GHz x 3 + "
     "Cortex-A720 2.0 GHz x 4 + Mali-G720-Immortalis MC12)",
     [("cortex-x4", 1, 3.25), ("cortex-x4", 3, 2.85), ("cortex-a720", 4, 2.0)]),
    ("PhytiumPi, Phytium E2000 (FTC664@1.8GHz x2 + FTC310@1.5GHz x2)",
     [("phytium-ftc664", 2, 1.8), ("phytium-ftc310", 2, 1.5)]),
    ("Arduino UNO Q - QRB2210 (ARM Cortex-A53 @ 2.0GHz x 4)", [("cortex-a53", 4, 2.0)]),
    ("Qualcomm Snapdragon X Elite (X1E78100), Oryon 3.4GHz x 12 + Adreno X1-85",
     [("qualcomm-oryon", 12, 3.4)]),
]


def _triples(heading: str) -> list[tuple[str | None, int | None, float | None]]:
    return [(c.core, c.count, c.clock_ghz) for c in parse_device_heading(heading).clusters]


@pytest.mark.parametrize(("heading", "expected"), REAL_HEADINGS, ids=lambda v: str(v)[:40])
def test_real_headings(heading: str, expected: list[tuple[str, int, float]],
                       rows: list[NcnnBenchmarkRow]) -> None:
    assert heading in set(device_headings(rows))  # a real heading, not a paraphrase
    got = _triples(heading)
    assert [(c, n) for c, n, _ in got] == [(c, n) for c, n, _ in expected]
    assert [g for _, _, g in got] == pytest.approx([g for _, _, g in expected])


@pytest.mark.parametrize(("heading", "expected"), [
    ("4x Cortex-A76 @2.4GHz + 4x A55@1.8GHz", [("cortex-a76", 4, 2.4), ("cortex-a55", 4, 1.8)]),
    ("Qualcomm SDM855 (Kryo 485 2.84 GHz x 1 + Kryo 485 2.42 GHz x 3 + Kryo 485 1.80 GHz x 4 "
     "+ Adreno 640)",
     [("cortex-a76", 1, 2.84), ("cortex-a76", 3, 2.42), ("cortex-a55", 4, 1.8)]),
    ("Snapdragon 855 (Kryo 485 Gold 2.84GHz x 1 + Kryo 485 Silver 1.78GHz x 4)",
     [("cortex-a76", 1, 2.84), ("cortex-a55", 4, 1.78)]),
    ("Samsung Exynos 5422 big.LITTLE (Cortex-A15 2.0GHz x 4 + Cortex-A7 1.4GHz x 4)",
     [("cortex-a15", 4, 2.0), ("cortex-a7", 4, 1.4)]),
])
def test_other_heading_styles(heading: str, expected: list[tuple[str, int, float]]) -> None:
    got = _triples(heading)
    assert [(c, n) for c, n, _ in got] == [(c, n) for c, n, _ in expected]
    assert [g for _, _, g in got] == pytest.approx([g for _, _, g in expected])
    assert parse_device_heading(heading).usable


def test_single_kryo_cluster_without_tier_is_not_guessed() -> None:
    parsed = parse_device_heading("Some phone (Kryo 485 2.84 GHz x 8)")
    assert not parsed.usable
    assert "Gold/Silver" in parsed.reason


@pytest.mark.parametrize(("heading", "reason"), [
    ("NVIDIA Quadro RTX 8000 (TU102 SM x 72 + Tensor Core x 576)", REASON_GPU_ONLY),
    ("Raspberry Pi 5 Broadcom BCM2712, VideoCore VII Graphics (Vulkan 1.2)", REASON_GPU_ONLY),
    ("NVIDIA Jetson Nano", REASON_PRODUCT_ONLY),
    ("Microsoft Azure Standard D64ps v6 Instance", REASON_PRODUCT_ONLY),
    ("Qualcomm MSM8996 Pro Snapdragon 821 (Kyro 2.35GHz x 2 + Kyro 2.19GHz x 2)",
     REASON_NOT_IN_TABLE),
    ("VisionFive2 , JH7110 (SiFive-U74(RV64GC) 1.5GHz x 4) riscv64 with PowerVR B-Series "
     "BXE-4-32", REASON_NOT_IN_TABLE),
    ("Radxa Orion O6 (Big Cortex‑A720 2.6Ghz x4 + Medium Cortex‑A720 x 4 + Little Cortex‑A520 x 4"
     " + Arm Immortals G720 MC10 GPU 1.1Ghz)", REASON_NO_CLOCK),
    ("Intel® Core™ i7-13700K of Desktop[2023-10-12]", REASON_NO_CLOCK),
    ("AMD EPYC 7742 (2.25GHz) ubuntu 22.04 AOCC_4.2.0-Build#89", REASON_NO_CORE),
    ("HUAWEI KunPeng 920 2251K (x8 cores)", REASON_NO_CORE),
    ("Raspberry Pi 5 Broadcom BCM2712 Overclock to 2.9Ghz, VideoCore VII Graphics Overclock to "
     "1.1Ghz (Vulkan 1.2)", REASON_NO_CORE),
])
def test_excluded_headings_say_why(heading: str, reason: str,
                                   rows: list[NcnnBenchmarkRow]) -> None:
    assert heading in set(device_headings(rows))
    parsed = parse_device_heading(heading)
    assert not parsed.usable
    assert reason in parsed.reason


def test_gpu_segments_are_not_read_as_cpu() -> None:
    parsed = parse_device_heading(
        "Rockchip RK3588 (Cortex-A76 2.4GHz x 4 + Cortex-A55 1.8GHz x 4 + Mali-G610 MC4 1.0GHz)")
    assert parsed.gpu == "Mali-G610 MC4 1.0GHz"
    assert [c.clock_ghz for c in parsed.clusters] == [2.4, 1.8]
    assert parsed.product == "Rockchip RK3588"


@given(st.lists(st.tuples(st.sampled_from(["A53", "A55", "A72", "A76", "X1", "A715"]),
                          st.integers(1, 16), st.integers(300, 4000)), min_size=1, max_size=4))
def test_generated_headings_round_trip(clusters: list[tuple[str, int, int]]) -> None:
    text = " + ".join(f"Cortex-{core} {mhz / 1000:g}GHz x {n}" for core, n, mhz in clusters)
    got = _triples(f"Test SoC ({text} + Mali-G77 MC9)")
    assert got == [(f"cortex-{core.lower()}", n, pytest.approx(mhz / 1000))
                   for core, n, mhz in clusters]


# ------------------------------------------------------------------------------ devices


def test_usable_split(rows: list[NcnnBenchmarkRow]) -> None:
    summaries = summarize_devices(rows)
    usable = [s for s in summaries if s.usable]
    excluded = [s for s in summaries if not s.usable]
    assert len(summaries) == len(device_headings(rows))
    assert len(usable) > 30
    assert all(s.reason for s in excluded)
    assert all(s.reason == "" and s.cpu_fp32_rows > 0 for s in usable)
    for s in usable:
        assert all(c.complete and c.core in MICROARCHITECTURES for c in s.device.clusters)
    assert [d.heading for d in usable_devices(rows)] == [s.device.heading for s in usable]


def test_summary_counts_add_up(rows: list[NcnnBenchmarkRow]) -> None:
    summaries = summarize_devices(rows)
    assert sum(s.cpu_fp32_rows + s.cpu_int8_rows + s.gpu_rows for s in summaries) == len(rows)
    rk = [s for s in summaries if s.device.heading.startswith("Rockchip RK3588 (Cortex")]
    assert rk and rk[0].repeated_keys > 0  # the same runs appear in two README tables
    assert "mobilenet_v2" in rk[0].models


def test_same_hardware_shares_a_cpu_key(rows: list[NcnnBenchmarkRow]) -> None:
    keys = {s.device.heading: s.device.cpu_key for s in summarize_devices(rows)}
    rk3588 = {k for h, k in keys.items() if "RK3588" in h}
    assert len(rk3588) == 1 and None not in rk3588
    assert keys["Rockchip RK3399 (Cortex-A72 1.8GHz x 2 + Cortex-A53 1.5GHz x 4)"] == keys[
        "OrangePi4 LTS, Rockchip RK3399 (Cortex-A72 1.8GHz x 2 + Cortex-A53 1.5GHz x 4)"]


def test_a_narrower_table_excludes_more(rows: list[NcnnBenchmarkRow]) -> None:
    only_a53 = usable_devices(rows, microarchitectures={"cortex-a53"})
    assert only_a53
    assert all({c.core for c in d.clusters} == {"cortex-a53"} for d in only_a53)
    assert len(only_a53) < len(usable_devices(rows))
