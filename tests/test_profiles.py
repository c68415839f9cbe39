"""Device profiles: built-ins, the microarchitecture table, strict validation, host detection."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from grimsim.calibration.host import effective_llc, llc_sweep_bytes
from grimsim.cost import (
    DeviceProfile,
    build_host_profile,
    core_types,
    detect_host_facts,
    dump_profile,
    list_profiles,
    load_profile,
    next_version,
    profile_template,
    save_profile,
)
from grimsim.cost.host import read_host_template
from grimsim.cost.profile import (
    Calibration,
    builtin_dir,
    builtin_profiles,
    parse_profile,
    profile_to_dict,
    sourced_paths,
    unsourced,
    user_profiles_dir,
)
from grimsim.cost.strict_yaml import parse_yaml
from grimsim.errors import DeviceProfileError

BUILTIN = ["sd855", "sd8gen2", "dimensity9300", "rk3588", "rpi4", "rpi5"]


def test_builtin_profiles_are_the_shipped_boards() -> None:
    shipped = {p.name: p for p in builtin_profiles()}
    assert sorted(shipped) == sorted(BUILTIN)  # no host: a detection template
    assert all(p.gpu is not None for p in shipped.values())

#: The CPU layouts the issue asks for: (core type, count, max clock GHz) per cluster.
EXPECTED_CPUS = {
    "sd855": [("cortex-a76", 1, 2.84), ("cortex-a76", 3, 2.42), ("cortex-a55", 4, 1.80)],
    "sd8gen2": [("cortex-x3", 1, 3.2), ("cortex-a715", 2, 2.8), ("cortex-a710", 2, 2.8),
                ("cortex-a510", 3, 2.0)],
    "dimensity9300": [("cortex-x4", 1, 3.25), ("cortex-x4", 3, 2.85), ("cortex-a720", 4, 2.0)],
    "rk3588": [("cortex-a76", 4, 2.4), ("cortex-a55", 4, 1.8)],
    "rpi4": [("cortex-a72", 4, 1.5)],
    "rpi5": [("cortex-a76", 4, 2.4)],
}


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user data folder (host detection writes there)."""
    folder = tmp_path / "grimsim-data"
    monkeypatch.setenv("GRIMSIM_DATA_DIR", str(folder))
    return folder


def _sd855_text() -> str:
    return (builtin_dir() / "sd855.yaml").read_text(encoding="utf-8")


def _load_text(tmp_path: Path, text: str, name: str = "bad.yaml") -> DeviceProfile:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_profile(str(path))


# --- built-in profiles -----------------------------------------------------------------------
def test_list_profiles_has_the_builtins_and_host() -> None:
    names = list_profiles()
    assert set(BUILTIN) | {"host"} <= set(names)
    assert not any(n.startswith("_") for n in names)


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_profile_loads_with_every_number_sourced(name: str) -> None:
    p = load_profile(name)
    assert p.id == f"{name}@{p.version}" and p.version >= 1
    assert [(c.core, c.count, c.max_clock_ghz) for c in p.clusters] == EXPECTED_CPUS[name]
    assert p.clusters == p.clusters_big_first(), "clusters are listed fastest first"
    assert unsourced(p) == []
    for path in sourced_paths(p):
        src = p.source_of(path)
        assert src is not None and src.ref and src.says, path
        assert re.match(r"https?://|cost_models/", src.ref), (path, src.ref)
    assert 0 < p.dram.effective_bandwidth_gbs <= (p.dram.peak_bandwidth_gbs or 1e9)
    assert p.gpu is not None and p.gpu.fp32_gflops > 0
    assert p.calibration is None


@pytest.mark.parametrize("name", BUILTIN)
def test_dump_and_parse_round_trip(name: str, tmp_path: Path) -> None:
    p = load_profile(name)
    again = parse_profile(yaml.safe_load(dump_profile(p)), "dumped")
    assert again == p
    written = save_profile(p, tmp_path / f"{name}.yaml")
    assert load_profile(str(written)) == p


def test_name_at_version_and_unknown_versions() -> None:
    assert load_profile("sd855@1").id == "sd855@1"
    with pytest.raises(DeviceProfileError, match=r"no version 7; available: sd855@1"):
        load_profile("sd855@7")
    with pytest.raises(DeviceProfileError, match=r"after '@' must be a version number"):
        load_profile("sd855@latest")
    with pytest.raises(DeviceProfileError, match=r"unknown device 'pixel99'.*sd855"):
        load_profile("pixel99")


def test_newest_user_version_wins_and_old_ones_stay_loadable() -> None:
    base = load_profile("sd855")
    assert next_version("sd855") == base.version + 1
    fitted = dataclasses.replace(base, version=next_version("sd855"),
                                 calibration=Calibration("sd855-correction.json", "1"))
    path = save_profile(fitted)
    assert path == user_profiles_dir() / f"sd855@{fitted.version}.yaml"
    assert load_profile("sd855") == fitted
    assert load_profile(f"sd855@{base.version}") == base
    assert next_version("sd855") == fitted.version + 1


def test_user_file_version_must_match_its_name(tmp_path: Path) -> None:
    folder = user_profiles_dir()
    folder.mkdir(parents=True)
    (folder / "sd855@5.yaml").write_text(_sd855_text(), encoding="utf-8")  # says version 1
    with pytest.raises(DeviceProfileError, match=r"sd855@5\.yaml: key 'version'"):
        load_profile("sd855")


def test_peak_flops_places_threads_on_big_cores_first() -> None:
    p = load_profile("sd855")
    peaks = [p.peak_fp32_gflops(t) for t in range(1, p.total_cores + 1)]
    assert peaks == sorted(peaks)
    prime = p.cluster("prime")
    assert peaks[0] == pytest.approx(prime.fp32_flops_per_cycle * prime.max_clock_ghz)
    assert p.peak_fp32_gflops() == pytest.approx(sum(c.peak_fp32_gflops() for c in p.clusters))
    # Cortex-A510 pairs share one vector unit: 3 cores give 2 units' worth, not 3.
    a510 = load_profile("sd8gen2").cluster("efficiency")
    assert a510.vector_unit_shared_by == 2
    assert a510.peak_fp32_gflops() == pytest.approx(2 * a510.fp32_flops_per_cycle * 2.0)


# --- microarchitecture table ------------------------------------------------------------------
def test_microarch_table_covers_required_cores_and_profiles() -> None:
    table = core_types()
    required = {"cortex-a53", "cortex-a55", "cortex-a57", "cortex-a72", "cortex-a73",
                "cortex-a75", "cortex-a76", "cortex-a77", "cortex-a78", "cortex-x1",
                "cortex-x2", "cortex-x3", "cortex-x4", "cortex-a510", "cortex-a520",
                "cortex-a710", "cortex-a715", "cortex-a720", "zen3", "zen4", "x86-avx2",
                "x86-avx512"}
    assert required <= set(table)
    used = {c.core for n in BUILTIN for c in load_profile(n).clusters}
    assert used <= set(table)
    for ct in table.values():
        assert ct.l2_kib_range[0] <= ct.l2_kib <= ct.l2_kib_range[1]
        assert ct.fma_pipe_width_bits <= ct.simd_width_bits
        assert ct.source_of("fma_pipes").ref
    # The in-order little cores really are the slowest per clock.
    assert table["cortex-a53"].fp32_flops_per_cycle < table["cortex-a55"].fp32_flops_per_cycle
    assert table["cortex-a76"].fp32_flops_per_cycle * 2 == table["cortex-x1"].fp32_flops_per_cycle
    assert not table["cortex-a55"].out_of_order and table["cortex-a76"].out_of_order


# --- strict validation ------------------------------------------------------------------------
def test_duplicate_key_is_rejected_with_both_lines(tmp_path: Path) -> None:
    text = _sd855_text().replace("      max_clock_ghz: 2.84\n",
                                 "      max_clock_ghz: 2.84\n      max_clock_ghz: 3.0\n", 1)
    with pytest.raises(DeviceProfileError) as err:
        _load_text(tmp_path, text)
    msg = str(err.value)
    assert "bad.yaml" in msg and "'max_clock_ghz'" in msg and "duplicate key" in msg
    first = text.splitlines().index("      max_clock_ghz: 2.84") + 1
    assert f"line {first + 1}" in msg and f"first given at line {first}" in msg


@pytest.mark.parametrize(("old", "new", "key", "reason"), [
    ("      max_clock_ghz: 2.84\n", "      max_clock_ghz: 2.84\n      max_clok_ghz: 2.0\n",
     "cpu.clusters[0].max_clok_ghz", "unknown key"),
    ("  thread_barrier_us: 10.0\n", "  thread_barrier_us: 10.0\n  colour: red\n",
     "system.colour", "unknown key"),
    ("      count: 3\n", "", "cpu.clusters[1].count", "missing required field"),
    ("soc: Qualcomm Snapdragon 855 (SM8150)\n", "", "soc", "missing required field"),
    ("      max_clock_ghz: 2.84\n", "      max_clock_ghz: 2840\n",
     "cpu.clusters[0].max_clock_ghz", "2840 GHz is impossible"),
    ("      max_clock_ghz: 2.84\n", "      max_clock_ghz: 0\n",
     "cpu.clusters[0].max_clock_ghz", "impossible"),
    ("      max_clock_ghz: 2.84\n", "      max_clock_ghz: -1.5\n",
     "cpu.clusters[0].max_clock_ghz", "impossible"),
    ("      max_clock_ghz: 2.84\n", "      max_clock_ghz: 2.84GHz\n",
     "cpu.clusters[0].max_clock_ghz", "expected a number, got str"),
    ("      count: 1\n", "      count: 0\n", "cpu.clusters[0].count", "impossible"),
    ("      count: 1\n", "      count: true\n", "cpu.clusters[0].count",
     "expected an integer, got a boolean"),
    ("      count: 1\n", "      count: 1.5\n", "cpu.clusters[0].count", "expected an integer"),
    ("      l2_kib: 512\n", "      l2_kib: 0\n", "cpu.clusters[0].l2_kib", "impossible"),
    ("      l2_kib: 512\n", "      l2_kib: -512\n", "cpu.clusters[0].l2_kib", "impossible"),
    ("  l3_kib: 2048\n", "  l3_kib: 0\n", "cpu.l3_kib", "impossible"),
    ("  l3_kib: 2048\n", "  l3_kib: 2048\n  stream_gbs: [[1024, 70], [8192, 60]]\n",
     "cpu.stream_gbs", "at least three"),
    ("  l3_kib: 2048\n", "  l3_kib: 2048\n  stream_gbs: [[1024, 70], [512, 60], [4096, 9]]\n",
     "cpu.stream_gbs", "sizes must increase"),
    ("  l3_kib: 2048\n", "  l3_kib: 2048\n  stream_gbs: [[1024, 70], [2048, 0], [4096, 9]]\n",
     "cpu.stream_gbs", "entry 1"),
    ("  l3_kib: 2048\n", "  l3_kib: 2048\n  stream_gbs: [[1024.5, 7], [2048, 6], [4096, 9]]\n",
     "cpu.stream_gbs", "a whole number"),
    ("  peak_bandwidth_gbs: 34.1\n", "  peak_bandwidth_gbs: 34100\n",
     "dram.peak_bandwidth_gbs", "impossible"),
    ("  peak_bandwidth_gbs: 34.1\n", "  peak_bandwidth_gbs: 50\n",
     "dram.peak_bandwidth_gbs", "disagrees with channels"),
    ("  sustained_fraction: 0.6\n", "  sustained_fraction: 1.5\n",
     "dram.sustained_fraction", "impossible"),
    ("  clock_ghz: 0.585\n", "  clock_ghz: 585\n", "gpu.clock_ghz", "impossible"),
    ("  fp32_gflops: 898.6\n", "  fp32_gflops: 3700\n", "gpu.fp32_gflops",
     "disagrees with alus"),
    ("version: 1\n", "version: 0\n", "version", "impossible"),
    ("name: sd855\n", "name: SD 855@2\n", "name", "lower-case"),
    ("      core: cortex-a55      # Kryo 485 Silver\n", "      core: cortex-a99\n",
     "cpu.clusters[2].core", "unknown core type 'cortex-a99'"),
    ("    - name: gold\n", "    - name: prime\n", "cpu.clusters[1].name", "used twice"),
    ("  cpu.gold: *s10_review\n", "  cpu.gould: *s10_review\n", "sources.cpu.gould",
     "names no field"),
    ("    kind: derived\n", "    kind: guessed\n", "sources.gpu.alus.kind",
     "not a source kind"),
    ("      l2_kib: 256\n", "      l2_kib: 256\n      l2_shared_by: 4\n",
     "cpu.clusters[1].l2_shared_by", "impossible"),
])
def test_malformed_profile_names_file_key_and_reason(tmp_path: Path, old: str, new: str,
                                                     key: str, reason: str) -> None:
    text = _sd855_text()
    assert old in text, old
    with pytest.raises(DeviceProfileError) as err:
        _load_text(tmp_path, text.replace(old, new, 1))
    msg = str(err.value)
    assert str(tmp_path / "bad.yaml") in msg
    assert re.search(r", line \d+:", msg), msg
    assert f"'{key}" in msg and reason in msg, msg


def test_a_streaming_sweep_loads_and_round_trips(tmp_path: Path) -> None:
    text = _sd855_text().replace(
        "  l3_kib: 2048\n",
        "  l3_kib: 2048\n  stream_gbs: [[1024, 70], [2048, 60.5], [4096, 9]]\n")
    p = _load_text(tmp_path, text)
    assert p.stream_gbs == ((1024, 70.0), (2048, 60.5), (4096, 9.0))
    assert p.provenance("cpu.stream_gbs") == "unsourced"  # given here without a source
    sourced = text.replace("  cpu.l3_kib: *s10_review\n",
                           "  cpu.l3_kib: *s10_review\n  cpu.stream_gbs: *s10_review\n")
    p = _load_text(tmp_path, sourced)
    assert p.provenance("cpu.stream_gbs") == p.provenance("cpu.l3_kib")
    again = parse_profile(profile_to_dict(p), "round trip")
    assert again.stream_gbs == p.stream_gbs
    assert load_profile("sd855").stream_gbs == ()  # optional: phones have no sweep


@pytest.mark.parametrize("text", [
    "name: [unclosed\n", "cpu:\n  clusters:\n    - {name: a, core: cortex-a76\n",
    "name: sd855\n\tversion: 1\n", "key: value\n  bad indent: 2\n",
])
def test_bad_yaml_is_a_profile_error_with_a_line(tmp_path: Path, text: str) -> None:
    with pytest.raises(DeviceProfileError, match=r"bad\.yaml, line \d+: not valid YAML"):
        _load_text(tmp_path, text)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "expected a mapping"), ("- a\n- b\n", "expected a mapping"),
    ("name: x\n", "missing required"),
])
def test_empty_or_wrong_top_level(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(DeviceProfileError, match=reason):
        _load_text(tmp_path, text)


def test_missing_file_and_yaml_tags_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DeviceProfileError, match="file not found"):
        load_profile(str(tmp_path / "nope.yaml"))
    with pytest.raises(DeviceProfileError, match="not valid YAML"):
        parse_yaml("a: !!python/object/apply:os.system ['true']\n", "evil.yaml")


def test_unsourced_numbers_load_but_are_reported(tmp_path: Path) -> None:
    text = _sd855_text().split("\nsources:")[0]
    p = _load_text(tmp_path, text, "nosources.yaml")
    assert "cpu.prime.max_clock_ghz" in unsourced(p)
    assert p.provenance("cpu.prime.max_clock_ghz") == "unsourced"
    # inherited core facts keep the microarchitecture table's sources
    assert p.provenance("cpu.prime.fma_pipes") == "published"


@given(st.floats(min_value=-10, max_value=20, allow_nan=False))
def test_clock_accepted_exactly_in_range(clock: float) -> None:
    data = yaml.safe_load(_sd855_text())
    data["cpu"]["clusters"][2]["max_clock_ghz"] = clock
    if 0 < clock <= 6:
        p = parse_profile(data, "generated")
        assert p.cluster("silver").max_clock_ghz == clock
        assert parse_profile(yaml.safe_load(dump_profile(p)), "again") == p
    else:
        with pytest.raises(DeviceProfileError, match=r"max_clock_ghz.*impossible"):
            parse_profile(data, "generated")


# --- template ---------------------------------------------------------------------------------
def test_template_is_a_valid_profile_marked_as_example(tmp_path: Path) -> None:
    text = profile_template()
    assert text.lstrip().startswith("#")
    p = _load_text(tmp_path, text, "my_phone.yaml")
    assert p.name == "my_phone" and p.version == 1
    inherited = {"fma_pipes", "fma_pipe_width_bits", "out_of_order", "simd_width_bits",
                 "vector_unit_shared_by", "l1d_kib", "l2_shared_by"}
    given_here = [path for path in sourced_paths(p) if path.split(".")[-1] not in inherited]
    assert {p.provenance(path) for path in given_here} == {"assumed"}
    filled = text.replace("max_clock_ghz: 2.4 ", "max_clock_ghz: 2.6 ").replace(
        "name: my_phone ", "name: pixel5a ")
    assert _load_text(tmp_path, filled, "pixel.yaml").cluster("prime").max_clock_ghz == 2.6


def test_host_template_is_not_a_profile() -> None:
    a = read_host_template()
    assert a.dram_peak_bandwidth_gbs > 0 and 0 < a.dram_sustained_fraction <= 1
    assert {s.kind for s in a.sources.values()} == {"assumed"}
    with pytest.raises(DeviceProfileError, match="host template"):
        load_profile(str(builtin_dir() / "host.yaml"))


# --- host detection ---------------------------------------------------------------------------
def _proc_cpuinfo() -> str:
    return Path("/proc/cpuinfo").read_text(encoding="utf-8")


linux_only = pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs /proc/cpuinfo")


@linux_only
def test_host_facts_match_this_machine() -> None:
    facts = detect_host_facts()
    info = _proc_cpuinfo()
    assert facts.logical_cpus == len(re.findall(r"^processor\s*:", info, re.M))
    assert facts.logical_cpus == os.cpu_count()
    assert sum(c.count for c in facts.clusters) * facts.threads_per_core == facts.logical_cpus
    flag_line = re.search(r"^(flags|Features)\s*:(.*)$", info, re.M)
    assert flag_line is not None
    flags = set(flag_line.group(2).split())
    if "avx2" in flags:
        assert facts.simd in ("avx2", "avx512") and facts.simd_width_bits >= 256
    for c in facts.clusters:
        assert c.clock_ghz is None or 0 < c.clock_ghz <= 6
        assert c.l1d_kib is None or c.l1d_kib > 0
        assert c.core in core_types()
    assert facts.measured_clock_ghz is None and facts.measured_bandwidth_gbs is None


@linux_only
def test_host_profile_marks_measured_os_and_assumed_values() -> None:
    plain = build_host_profile(detect_host_facts())
    path = f"cpu.{plain.clusters[0].name}.max_clock_ghz"
    assert plain.provenance(path) in ("os", "assumed")
    assert plain.provenance("dram.peak_bandwidth_gbs") == "assumed"
    assert plain.provenance("system.thread_barrier_us") == "assumed"
    assert plain.gpu is None and plain.fingerprint

    measured = build_host_profile(detect_host_facts(measured_clock_ghz=3.65,
                                                    measured_bandwidth_gbs=24.5))
    assert measured.provenance(path) == "measured"
    assert measured.clusters[0].max_clock_ghz == 3.65
    assert measured.dram.measured_bandwidth_gbs == 24.5
    assert measured.dram.effective_bandwidth_gbs == 24.5
    assert measured.provenance("dram.measured_bandwidth_gbs") == "measured"
    assert measured.peak_fp32_gflops() > plain.peak_fp32_gflops() or \
        plain.clusters[0].max_clock_ghz >= 3.65
    with pytest.raises(DeviceProfileError, match="impossible"):
        detect_host_facts(measured_clock_ghz=3650)
    with pytest.raises(DeviceProfileError, match="impossible"):
        detect_host_facts(measured_bandwidth_gbs=-1)
    forked = build_host_profile(detect_host_facts(measured_fork_join=(0.15, 2)))
    assert forked.thread_barrier_us == 0.15
    assert forked.provenance("system.thread_barrier_us") == "measured"
    for bad in ((0.0, 2), (0.15, 1), (2e5, 2)):
        with pytest.raises(DeviceProfileError, match="measured_fork_join"):
            detect_host_facts(measured_fork_join=bad)


@linux_only
def test_load_host_detects_once_then_prefers_newest_fitted(_data_dir: Path) -> None:
    first = load_profile("host")
    cached = _data_dir / "profiles" / "host@1.yaml"
    assert first.id == "host@1" and cached.is_file()
    stamp = cached.stat().st_mtime_ns
    assert load_profile("host") == first and cached.stat().st_mtime_ns == stamp

    fitted = dataclasses.replace(first, version=next_version("host"),
                                 calibration=Calibration("host-correction.json", "1"))
    save_profile(fitted)
    assert load_profile("host") == fitted
    # a profile made on another machine (shared home folder) is not used for this one
    other = dataclasses.replace(fitted, version=fitted.version + 1, fingerprint="other|cpu")
    save_profile(other)
    assert load_profile("host") == fitted
    assert load_profile(f"host@{other.version}") == other
    with pytest.raises(DeviceProfileError, match="no version 99"):
        load_profile("host@99")


def _fake_sd855_tree(root: Path) -> None:
    """/proc and /sys of an 8-core Snapdragon 855 phone (1+3+4, Qualcomm Kryo part numbers)."""
    blocks = []
    freqs = {0: 1785600, 1: 1785600, 2: 1785600, 3: 1785600, 4: 2419200, 5: 2419200,
             6: 2419200, 7: 2841600}
    for cpu, freq in freqs.items():
        part = "0x805" if cpu < 4 else "0x804"
        blocks.append(f"processor\t: {cpu}\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd evtstrm "
                      f"aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc "
                      f"dcpop asimddp\nCPU implementer\t: 0x51\nCPU architecture: 8\n"
                      f"CPU variant\t: 0xd\nCPU part\t: {part}\nCPU revision\t: 14\n")
        cpudir = root / "sys/devices/system/cpu" / f"cpu{cpu}"
        (cpudir / "cpufreq").mkdir(parents=True)
        (cpudir / "cpufreq/cpuinfo_max_freq").write_text(f"{freq}\n")
        l2 = "128K" if cpu < 4 else ("512K" if cpu == 7 else "256K")
        for i, (level, ctype, size, shared) in enumerate(
                [(1, "Data", "32K" if cpu < 4 else "64K", str(cpu)),
                 (1, "Instruction", "32K", str(cpu)), (2, "Unified", l2, str(cpu)),
                 (3, "Unified", "2048K", "0-7")]):
            idx = cpudir / "cache" / f"index{i}"
            idx.mkdir(parents=True)
            for fname, value in (("level", level), ("type", ctype), ("size", size),
                                 ("shared_cpu_list", shared)):
                (idx / fname).write_text(f"{value}\n")
    text = "\n".join(blocks) + "\nHardware\t: Qualcomm Technologies, Inc SM8150\n"
    (root / "proc").mkdir()
    (root / "proc/cpuinfo").write_text(text)


def test_host_detection_of_a_big_little_phone(tmp_path: Path) -> None:
    _fake_sd855_tree(tmp_path)
    facts = detect_host_facts(root=tmp_path)
    assert facts.arch == "aarch64" and facts.simd == "neon" and facts.logical_cpus == 8
    assert facts.model_name == "Qualcomm Technologies, Inc SM8150"
    got = [(c.core, c.count, c.clock_ghz, c.l2_kib) for c in facts.clusters]
    assert got == [("cortex-a76", 1, 2.8416, 512), ("cortex-a76", 3, 2.4192, 256),
                   ("cortex-a55", 4, 1.7856, 128)]
    assert facts.l3_kib == 2048
    p = build_host_profile(facts, version=3)
    assert p.id == "host@3" and [c.count for c in p.clusters] == [1, 3, 4]
    assert p.provenance("cpu.cluster0.max_clock_ghz") == "os"
    assert p.provenance("cpu.cluster2.l2_kib") == "os"
    assert p.cluster("cluster2").l1d_kib == 32 and not p.cluster("cluster2").out_of_order
    measured = build_host_profile(detect_host_facts([2.8, 2.4], root=tmp_path))
    assert [c.max_clock_ghz for c in measured.clusters] == [2.8, 2.4, 1.7856]
    assert [measured.provenance(f"cpu.cluster{i}.max_clock_ghz") for i in range(3)] == \
        ["measured", "measured", "os"]
    with pytest.raises(DeviceProfileError, match="4 values for 3 CPU clusters"):
        detect_host_facts([2.8, 2.4, 1.8, 1.0], root=tmp_path)


def test_a_measured_llc_replaces_the_os_figure_with_its_source(tmp_path: Path) -> None:
    _fake_sd855_tree(tmp_path)
    how = "streaming reads ... at ~1.0 MiB"
    sweep = ((1024, 60.0), (1448, 30.0), (2048, 12.0))
    facts = detect_host_facts([2.8], measured_llc=(1024, how), measured_stream_gbs=sweep,
                              root=tmp_path)
    p = build_host_profile(facts)
    assert p.l3_kib == 1024 and p.provenance("cpu.l3_kib") == "measured"
    assert p.stream_gbs == sweep and p.provenance("cpu.stream_gbs") == "measured"
    says = dict(p.sources)["cpu.l3_kib"].says
    assert how in says and "the OS reports 2048 KiB" in says
    # a sweep that measured past the die's L3 cannot make it larger
    bigger = build_host_profile(detect_host_facts(measured_llc=(8192, how), root=tmp_path))
    assert bigger.l3_kib == 2048
    assert build_host_profile(detect_host_facts(root=tmp_path)).provenance("cpu.l3_kib") == "os"
    with pytest.raises(DeviceProfileError, match="measured_llc: 0 KiB is impossible"):
        detect_host_facts(measured_llc=(0, how), root=tmp_path)


def test_effective_llc_is_where_streaming_reads_fall_to_dram() -> None:
    sizes = llc_sweep_bytes(32 * 1024)
    assert sizes[0] == 1 << 20 and sizes[-1] == 64 << 20 and len(sizes) == 13
    assert all(b % 1024 == 0 for b in sizes) and sizes == sorted(set(sizes))
    # a small (or no) listed L3 still gets a curve from 1 to at least 16 MiB
    assert llc_sweep_bytes(512)[-1] == 16 << 20 and llc_sweep_bytes(None)[-1] == 64 << 20
    mib = [b / 2**20 for b in sizes]
    # 75 GB/s in cache, 12 from DRAM: the geometric mean 30 GB/s is crossed between 11.3
    # and 16 MiB (38 -> 20 GB/s), log-interpolated
    curve = [75, 74, 75, 74, 75, 74, 64, 38, 20, 15, 13, 12, 12]
    kib, how = effective_llc(sizes, curve, 12.0) or (0, "")
    assert mib[7] * 1024 < kib < mib[8] * 1024 and "75 GB/s" in how and "12 GB/s" in how
    frac = np.log(38 / 30) / np.log(38 / 20)
    assert kib == pytest.approx(mib[7] * (mib[8] / mib[7]) ** frac * 1024, rel=0.01)
    # one disturbed timing inside the cache is not its edge
    dip = list(curve)
    dip[4] = 20
    assert effective_llc(sizes, dip, 12.0) == (kib, how)
    # never falling (the LLC holds every buffer) or no plateau above DRAM: no measurement
    assert effective_llc(sizes, [75.0] * 13, 12.0) is None
    assert effective_llc(sizes, [13.0] * 13, 12.0) is None
    with pytest.raises(ValueError, match="matching"):
        effective_llc(sizes, curve[:-1], 12.0)


def test_unknown_cores_fall_back_to_assumed_generic_facts(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(
        "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x61\nCPU part\t: 0x022\n")
    facts = detect_host_facts(root=tmp_path)
    assert facts.clusters[0].core == "arm-generic" and not facts.clusters[0].recognised
    p = build_host_profile(facts)
    assert p.provenance("cpu.cores.fma_pipes") == "assumed"
    assert p.provenance("cpu.cores.max_clock_ghz") == "assumed"  # no clock anywhere
    with pytest.raises(DeviceProfileError, match="cannot read"):
        detect_host_facts(root=tmp_path / "missing")


def test_import_stays_light() -> None:
    heavy = {"sklearn", "onnx", "dash", "grimsim._kernels"}
    code = ("import sys, grimsim.cost; print(sorted(m for m in sys.modules if m in "
            f"{sorted(heavy)!r}))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
