"""The standalone C++ kernel tests (no Python): plain and ASan+UBSan builds, and the aarch64
(NEON) cross build under qemu-user-static. CI installs the cross toolchain and requires the
aarch64 run (GRIMSIM_REQUIRE_AARCH64=1); elsewhere it is skipped when the toolchain is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1] / "cpp_kernels" / "tests"
BUILD = Path(__file__).resolve().parents[1] / "build"

pytestmark = pytest.mark.slow


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(TESTS / script), *args], capture_output=True, text=True,
                          timeout=1500, check=False)


def test_sanitizer_build_runs_clean() -> None:
    if shutil.which("cmake") is None:
        pytest.fail("cmake is needed for the standalone C++ tests")
    proc = _run("run_sanitizers.sh", str(BUILD))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "plain and ASan+UBSan" in proc.stdout
    assert "tests passed" in proc.stdout and "0 tests failed" in proc.stdout


def test_aarch64_build_passes_under_qemu() -> None:
    have = shutil.which("aarch64-linux-gnu-g++") and (
        shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64"))
    if not have:
        if os.environ.get("GRIMSIM_REQUIRE_AARCH64"):
            pytest.fail("g++-aarch64-linux-gnu and qemu-user-static are required here")
        pytest.skip("no aarch64 cross toolchain / qemu-user-static on this machine")
    proc = _run("run_aarch64_qemu.sh", str(BUILD / "cpp-aarch64"))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "passed on aarch64" in proc.stdout
