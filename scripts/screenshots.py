"""Screenshots of every explorer view for the README (docs/screenshots/*.png).

Starts the explorer on a free loopback port (or uses ``--url``), drives Debian's Chromium
with Playwright (never Playwright's own browser downloads) and saves what a laptop screen
(1366 x 768) shows of each tab, plus the network and search views at 1920 x 1080.

    .venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8050/] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grimsim.explorer.headless import CHROMIUM, CHROMIUM_ARGS, serve_explorer

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 90_000


@contextlib.contextmanager
def explorer(url: str | None) -> Iterator[str]:
    if url:
        yield url.rstrip("/") + "/"
        return
    with serve_explorer(results_dir=REPO / "dashboards" / "results") as served:
        yield served.url


def settle(page: Any, seconds: float = 1.5) -> None:
    """Let plotly finish drawing after the last callback."""
    page.wait_for_load_state("networkidle")
    time.sleep(seconds)


def tab(page: Any, name: str) -> None:
    page.get_by_text(name, exact=True).click()


def network(page: Any) -> None:
    page.wait_for_selector("#layer-table td.dash-cell", timeout=TIMEOUT_MS)
    page.wait_for_selector("#net-graph .scatterlayer .point", timeout=TIMEOUT_MS)


def layer_lab(page: Any) -> None:
    network(page)
    tab(page, "Layer lab")
    page.wait_for_selector("#lab-curves .scatterlayer .trace", timeout=TIMEOUT_MS)
    page.wait_for_selector("#lab-mask .heatmaplayer image, #lab-mask .annotation-text",
                           timeout=TIMEOUT_MS)


def search(page: Any) -> None:
    network(page)
    tab(page, "Search")
    page.click("#search-mode label:has-text('Pareto front only')")
    page.click("#search-run")
    page.wait_for_function("() => /done|failed/.test("
                           "document.querySelector('#search-progress').innerText)",
                           timeout=TIMEOUT_MS)
    page.wait_for_selector("#search-pareto .scatterlayer .point", timeout=TIMEOUT_MS)
    points = page.locator("#search-pareto .scatterlayer .trace:first-child .point")
    n = points.count()
    if n > 2:
        points.nth(n // 3).click(force=True)
        page.wait_for_function("() => document.querySelector('#search-summary').innerText"
                               ".includes('Pareto point')", timeout=TIMEOUT_MS)


def devices(page: Any) -> None:
    network(page)
    tab(page, "Devices and fidelity")
    page.wait_for_selector("#dev-compare .barlayer .trace", timeout=TIMEOUT_MS)
    page.wait_for_selector("#ncnn-ref .scatterlayer .trace, #ncnn-ref .annotation-text",
                           timeout=TIMEOUT_MS)


VIEWS = {"network": network, "layer_lab": layer_lab, "search": search, "devices": devices}
SIZES = {"1366x768": ("network", "layer_lab", "search", "devices"),
         "1920x1080": ("network", "search")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="an explorer already serving (default: start one)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--full-page", action="store_true", help="the whole page, not the screen")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with explorer(args.url) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                    headless=True)
        for size, views in SIZES.items():
            w, h = (int(v) for v in size.split("x"))
            for view in views:
                context = browser.new_context(viewport={"width": w, "height": h})
                page = context.new_page()
                page.goto(base)
                VIEWS[view](page)
                page.mouse.move(w - 5, h - 5)  # no hover label or modebar in the picture
                settle(page)
                path = args.out / f"{view}_{size}.png"
                page.screenshot(path=str(path), full_page=args.full_page)
                print(path)
                context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
