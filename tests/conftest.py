"""Shared test set-up: hypothesis profiles (CI keeps the suite well under its time budget)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
# `make test` on a fresh machine runs the same derandomized examples as CI, so the README's
# command gives the same answer everywhere; HYPOTHESIS_PROFILE=dev explores new examples.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
#: Real data no one on the project wrote (ncnn's models and benchmark table).
REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"reference data missing: {REFERENCE} (the checkout needs ../shared beside it)")
    return REFERENCE


@pytest.fixture(autouse=True)
def _isolated_user_data(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read or write the user's real grimsim data folder (fitted profiles)."""
    if "GRIMSIM_DATA_DIR" not in os.environ:
        monkeypatch.setenv("GRIMSIM_DATA_DIR", str(tmp_path_factory.getbasetemp() / "userdata"))
