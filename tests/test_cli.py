"""The command line as a user meets it: help, zoo, info (table and JSON), errors."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grimsim.cli import main

INFO_LAYER_FIELDS = {"name", "op", "M", "K", "N", "params", "macs"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_help_lists_subcommands() -> None:
    exe = shutil.which("grimsim", path=str(Path(sys.executable).parent))
    assert exe, "the grimsim console script is not installed"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("zoo", "info"):
        assert command in out


def test_zoo_lists_every_network(capsys: pytest.CaptureFixture[str]) -> None:
    from grimsim.network.zoo import ZOO_NAMES

    code, out, _ = _run(capsys, "zoo")
    assert code == 0
    for name in ZOO_NAMES:
        assert name in out
    code, out, _ = _run(capsys, "zoo", "--json")
    assert [n["name"] for n in json.loads(out)["networks"]] == list(ZOO_NAMES)


def test_info_json_contract_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "info", "resnet50", "--json")
    assert code == 0
    doc = json.loads(out)
    assert {"name", "total_params", "total_macs", "layers", "_meta"} <= set(doc)
    assert doc["_meta"]["grimsim"]
    for row in doc["layers"]:
        assert set(row) >= INFO_LAYER_FIELDS
    assert sum(r["macs"] for r in doc["layers"]) == doc["total_macs"]
    assert sum(r["params"] for r in doc["layers"]) == doc["total_params"]
    # torchvision resnet50: 25,557,032 params, 4.09 GMACs (torchvision model docs)
    assert doc["total_params"] == pytest.approx(25_557_032, rel=0.01)
    assert doc["total_macs"] == pytest.approx(4.09e9, rel=0.02)
    non_gemm = [r for r in doc["layers"] if r["op"] in ("pool", "global_pool", "eltwise")]
    assert non_gemm and all(r["M"] is None and r["macs"] == 0 for r in non_gemm)


def test_info_table_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "info", "resnet18")
    assert code == 0
    assert "MACs (GEMM)" in out and "params" in out
    assert len(out.splitlines()) > 20


def test_info_input_and_seq_len_change_the_view(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "info", "resnet18", "--json")
    full = json.loads(out)["total_macs"]
    # at 448x448 every conv output has 4x the pixels (the FC head stays the same)
    _, out, _ = _run(capsys, "info", "resnet18", "--input", "1x3x448x448", "--json")
    assert json.loads(out)["total_macs"] == pytest.approx(4 * full, rel=0.01)
    _, out, _ = _run(capsys, "info", "gru_timit", "--seq-len", "10", "--json")
    rows = {r["name"]: r for r in json.loads(out)["layers"]}
    hh = [r for name, r in rows.items() if name.endswith(".hh")]
    assert hh and all(r["repeats"] == 10 and r["N"] == 1 for r in hh)


@pytest.mark.parametrize(("argv", "message"), [
    (["info", "no_such_net"], "unknown model"),
    (["info", "missing.onnx"], "does not exist"),
    (["info", "resnet18", "--input", "1xthree"], "input shape"),
])
def test_bad_input_is_a_clear_error(capsys: pytest.CaptureFixture[str], argv: list[str],
                                    message: str) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert out == ""


def test_info_reads_every_reference_ncnn_model(capsys: pytest.CaptureFixture[str],
                                               reference_dir: Path) -> None:
    models = sorted((reference_dir / "ncnn" / "models").glob("*.param"))
    assert len(models) >= 20
    for path in models:
        code, out, err = _run(capsys, "info", str(path), "--json")
        assert code == 0, f"{path.name}: {err}"
        doc = json.loads(out)
        assert doc["total_macs"] > 0 and doc["layers"], path.name


def test_devices_lists_builtin_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "devices", "sd855", "--json")
    assert code == 0
    (dev,) = json.loads(out)["devices"]
    assert dev["id"].startswith("sd855@")
    assert [c["count"] for c in dev["clusters"]] == [1, 3, 4]
    code, out, _ = _run(capsys, "devices", "rpi4")
    assert code == 0 and "cortex-a72" in out


def test_devices_template_loads_as_a_profile(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "devices", "--template")
    assert code == 0
    path = tmp_path / "my_phone.yaml"
    path.write_text(out)
    code, out, err = _run(capsys, "devices", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["devices"][0]["peak_fp32_gflops_1t"] > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="host detection reads /proc")
def test_devices_measure_host_saves_a_new_measured_version(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import grimsim.calibration.host as host

    monkeypatch.setenv("GRIMSIM_DATA_DIR", str(tmp_path))
    measured = host.HostMeasurements(3.5, 20.0, (4096, "a sweep found ~4 MiB"),
                                     fork_join=(0.25, 2))
    monkeypatch.setattr(host, "measure_host", lambda **_: measured)
    versions = []
    for _ in range(2):
        code, out, err = _run(capsys, "devices", "--measure-host", "--json")
        assert code == 0, err
        (dev,) = json.loads(out)["devices"]
        versions.append(dev["id"])
        assert dev["dram_gbs"] == 20.0 and dev["clusters"][0]["max_clock_ghz"] == 3.5
        assert dev["l3_kib"] in (4096, None)  # None: the OS lists no L3 here
        assert dev["thread_barrier_us"] == 0.25  # the measured fork/join, not the placeholder
    assert versions == ["host@1", "host@2"]  # measured again each time, never overwritten
    code, _, err = _run(capsys, "devices", "sd855", "--measure-host")
    assert code == 2 and "--measure-host measures this machine" in err


def test_unknown_device_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "devices", "no_such_phone")
    assert code == 2 and "no_such_phone" in err and "--template" in err


def test_info_scheme_adds_sparsity_bytes_and_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "info", "resnet18", "--scheme", "bcr:16x32:0.75", "--json")
    assert code == 0
    doc = json.loads(out)
    pruned = [r for r in doc["layers"] if "sparsity" in r]
    assert len(pruned) == 21  # every conv and the FC of resnet18
    for r in pruned:
        assert abs(r["sparsity"] - 0.75) < 0.02
        assert 0 < r["format_bytes"] < 4 * r["M"] * r["K"]
        assert 0 < r["proxy"] < 1
    assert doc["skipped"] == []
    # pattern is illegal on the 7x7 stem, the 1x1 downsamples and the FC: listed, kept dense
    code, out, _ = _run(capsys, "info", "resnet18", "--scheme", "pattern:4", "--json")
    doc = json.loads(out)
    assert set(doc["skipped"]) == {"conv1", "layer2.0.downsample.0", "layer3.0.downsample.0",
                                   "layer4.0.downsample.0", "fc"}
    code, _, err = _run(capsys, "info", "resnet18", "--scheme", "bcr:16x32")
    assert code == 2 and "grammar" in err


def test_run_measures_and_predicts_every_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "run", "squeezenet1_1", "--device", "sd855", "--scheme",
                          "bcr:16x32:0.75", "--min-time-s", "0.001", "--check", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert {"measured_ms", "predicted_ms", "layers", "_meta"} <= set(doc)
    convs = [r for r in doc["layers"] if r["op"] == "conv"]
    assert len(convs) == 26
    assert all(r["measured_ms"] > 0 and r["predicted_ms"] > 0 for r in convs)
    assert {r["scheme"] for r in convs} == {"bcr:16x32:0.75"}
    assert doc["measured_ms"] == pytest.approx(sum(r["measured_ms"] for r in doc["layers"]),
                                               rel=1e-6)


def test_predict_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "predict", "mobilenet_v2", "--device", "sd855", "--threads", "4",
                        "--scheme", "bcr:16x32:0.75", "--json")
    assert code == 0
    doc = json.loads(out)
    assert {"latency_ms", "latency_band_ms", "loss", "model_bytes", "layers", "_meta"} <= set(doc)
    lo, hi = doc["latency_band_ms"]
    assert lo < doc["latency_ms"] < hi
    assert doc["model_bytes"] < doc["dense_model_bytes"]
    assert all({"name", "scheme", "latency_ms"} <= set(r) for r in doc["layers"])
    assert doc["loss"] > 0


def test_search_json_mapping_roundtrip(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    out_file = tmp_path / "mapping.json"
    code, out, err = _run(capsys, "search", "resnet18", "--device", "sd855", "--threads", "4",
                          "--pareto", "--out", str(out_file), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert {"latency_ms", "loss", "model_bytes", "dense_latency_ms", "dense_model_bytes",
            "search_s", "layers", "pareto", "_meta"} <= set(doc)
    assert len(doc["pareto"]) >= 20
    lat = [p["latency_ms"] for p in doc["pareto"]]
    loss = [p["loss"] for p in doc["pareto"]]
    order = sorted(range(len(lat)), key=lat.__getitem__)
    # a front: as latency grows, loss falls
    assert all(loss[a] >= loss[b] for a, b in itertools.pairwise(order))
    target = (doc["dense_latency_ms"] + min(lat)) / 2
    code, out, _ = _run(capsys, "search", "resnet18", "--device", "sd855", "--threads", "4",
                        "--latency-ms", f"{target:.4f}", "--out", str(out_file), "--json")
    found = json.loads(out)
    assert found["latency_ms"] <= target * (1 + 1e-9)
    # the mapping file predicts the same latency the search reported
    code, out, _ = _run(capsys, "predict", "resnet18", "--device", "sd855", "--threads", "4",
                        "--mapping", str(out_file), "--json")
    assert json.loads(out)["latency_ms"] == pytest.approx(found["latency_ms"], rel=1e-6)


def test_search_infeasible_target_says_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "search", "resnet18", "--device", "sd855", "--latency-ms",
                        "0.01")
    assert code == 2 and "fastest mapping" in err and "--latency-ms >=" in err


def test_bad_mapping_file_is_a_clear_error(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"network": "resnet18", "layers": {"no_such_layer": "bcr:16x32:0.5"}}')
    code, _, err = _run(capsys, "predict", "resnet18", "--device", "sd855", "--mapping", str(bad))
    assert code == 2 and "no_such_layer" in err


def test_calibrate_rejects_bad_pass_options(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    for flag, value, says in (("--passes", "0", "must be >= 1"),
                              ("--pass-gap-s", "-1", "finite number >= 0"),
                              ("--max-wait-s", "nan", "finite number >= 0")):
        with pytest.raises(SystemExit) as exc:
            main(["calibrate", "--out", str(tmp_path / "p"), flag, value])
        assert exc.value.code == 2
        assert says in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", str(tmp_path), "--statistic", "max_s"])
    assert "invalid choice" in capsys.readouterr().err


def test_calibrate_passes_flags_reach_the_points(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    """A short real calibration: one pass per point, recorded as such in the points file."""
    from grimsim.calibration.host import measured_host_profile

    # measure this machine first (once, a few seconds): that set-up would otherwise take
    # most of this 8 s budget, which calibrate counts from its start (8 s rather than 4: on
    # a noisy VM drift probes can drop the first batches)
    measured_host_profile()
    out = tmp_path / "points"
    code, text, _ = _run(capsys, "calibrate", "--out", str(out), "--budget-s", "8",
                         "--passes", "1", "--pass-gap-s", "0", "--max-wait-s", "0",
                         "--schemes", "dense", "--threads", "1", "--json")
    assert code == 0
    doc = json.loads(text)
    assert doc["points"] > 0
    points = [json.loads(line) for line in (out / "points.jsonl").read_text().splitlines()
              if '"type": "point"' in line or '"type":"point"' in line]
    assert points and all(p.get("passes", 1) == 1 for p in points)
