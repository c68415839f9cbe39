"""Real-browser tests of the explorer: Debian's Chromium driven by Playwright.

They skip (saying why) only when Chromium is absent and ``GRIMSIM_REQUIRE_BROWSER`` is not
set; CI sets it, so there a missing browser is a failure. Playwright's own browser downloads
are never used: ``executable_path`` points at the system Chromium (``GRIMSIM_CHROMIUM`` to
override). ``GRIMSIM_EXPLORER_URL`` runs the tests against an explorer already serving
instead of starting one. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grimsim.explorer.headless import CHROMIUM, CHROMIUM_ARGS, serve_explorer

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"


def _require() -> bool:
    return os.environ.get("GRIMSIM_REQUIRE_BROWSER", "") not in ("", "0")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A Chromium instance (each test opens its own context: a fresh profile)."""
    if not CHROMIUM.exists():
        if _require():
            pytest.fail(f"GRIMSIM_REQUIRE_BROWSER is set but {CHROMIUM} does not exist "
                        "(apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); set "
                    "GRIMSIM_REQUIRE_BROWSER=1 to make this a failure")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if _require():
            raise
        pytest.skip("the playwright Python package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                    headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def explorer_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An explorer serving on a free loopback port (or ``GRIMSIM_EXPLORER_URL``)."""
    given = os.environ.get("GRIMSIM_EXPLORER_URL")
    if given:
        yield given.rstrip("/") + "/"
        return
    log = tmp_path_factory.mktemp("explorer") / "server.log"
    with serve_explorer(log, results_dir=REPO / "dashboards" / "results") as served:
        yield served.url


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
