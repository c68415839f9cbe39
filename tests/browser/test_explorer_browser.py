"""The explorer in a real Chromium: load, switch network and device, search, upload errors,
two sessions at once. Screenshots of every step go to test-artifacts/browser/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000


@pytest.fixture
def page(chromium: Any, explorer_url: str) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(explorer_url)
    wait_for_table(pg)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def wait_for_table(pg: Any) -> None:
    pg.wait_for_selector("#layer-table td.dash-cell", timeout=TIMEOUT_MS)


def choose(pg: Any, dropdown: str, text: str) -> None:
    """Pick ``text`` in the dash dropdown with id ``dropdown``."""
    pg.click(f"#{dropdown}")
    option = pg.locator(".dash-dropdown-content .dash-dropdown-option").filter(
        has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))
    option.first.click()


def expect_text(pg: Any, selector: str, text: str) -> None:
    from playwright.sync_api import expect

    expect(pg.locator(selector)).to_contain_text(text, timeout=TIMEOUT_MS)


def table_names(pg: Any) -> list[str]:
    return pg.eval_on_selector_all("#layer-table td[data-dash-column=name]",
                                   "cells => cells.map(c => c.innerText.trim())")


def shot(pg: Any, artifacts: Path, name: str) -> None:
    pg.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_page_loads_with_the_default_view(chromium: Any, explorer_url: str,
                                          artifacts: Path) -> None:
    """The default view (resnet18, sd855, CPU, 4 threads) is drawn from the page's layout,
    without a callback round trip, with the smaller plotly.js when it is installed. How fast:
    benchmarks/explorer_first_render.py (a timing here would only measure CI's load)."""
    from grimsim.api import load_network
    from grimsim.explorer.plotly_bundle import find_bundle

    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(explorer_url)
    wait_for_table(pg)
    pg.wait_for_selector("#net-graph .scatterlayer .point")
    drawn = list(requests)
    expect_text(pg, "#net-summary", "resnet18")
    expect_text(pg, "#net-summary", "sd855")
    expect_text(pg, "#net-summary", "CPU, 4 thread(s): predicted")
    names = table_names(pg)
    assert names[0] == "conv1" and "fc" in names and len(names) > 30
    # one marker per layer (the second trace), and the layer lab's layer ringed
    nodes = pg.locator("#net-graph .scatterlayer .trace:nth-child(2) .point").count()
    assert nodes == len(load_network("resnet18"))
    assert pg.locator("#net-graph .scatterlayer .trace:nth-child(3) .point").count() == 1
    callbacks = [u for u in drawn if "_dash-update-component" in u]
    assert callbacks == [], f"the default view waited for callbacks: {callbacks}"
    if find_bundle() is not None:
        assert not any("plotly.min.js" in u for u in requests), "the full plotly.js was loaded"
    shot(pg, artifacts, "network_view")
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def test_switching_network_and_device_updates_the_table(page: Any, artifacts: Path) -> None:
    choose(page, "model", "mobilenet_v2")
    expect_text(page, "#net-summary", "mobilenet_v2")
    page.wait_for_function("() => [...document.querySelectorAll("
                           "'#layer-table td[data-dash-column=op]')].some(c => "
                           "c.innerText.includes('dwconv'))")
    names = table_names(page)
    assert "conv1" not in names or "fc" not in names
    before = page.inner_text("#net-summary")
    choose(page, "device", "rpi4")
    expect_text(page, "#net-summary", "rpi4")
    after = page.inner_text("#net-summary")
    lat = [re.search(r"predicted ([\d.]+) ms", t) for t in (before, after)]
    assert lat[0] and lat[1] and float(lat[1].group(1)) > float(lat[0].group(1))
    shot(page, artifacts, "switched_network_device")


def test_layer_lab_and_devices_tabs_draw(page: Any, artifacts: Path) -> None:
    # nodes are drawn in network order: input, conv1, maxpool, layer1.0.conv1, ...
    page.click("#net-graph .scatterlayer .trace:nth-child(2) .point:nth-child(4)", force=True)
    expect_text(page, "#lab-summary", "layer1.0.conv1")
    page.wait_for_selector("#lab-curves .scatterlayer .trace")
    page.wait_for_selector("#lab-roofline .scatterlayer .trace")
    page.wait_for_selector("#lab-breakdown .barlayer .trace")
    page.wait_for_selector("#lab-mask .heatmaplayer image, #lab-mask .annotation-text")
    shot(page, artifacts, "layer_lab")
    page.get_by_text("Devices and fidelity", exact=True).click()
    page.wait_for_selector("#dev-compare .barlayer .trace")
    page.wait_for_selector("#dev-table td.dash-cell")
    expect_text(page, "#fid-scatter", "no calibration")
    shot(page, artifacts, "devices")


def test_a_search_runs_and_the_pareto_front_appears(page: Any, artifacts: Path) -> None:
    page.get_by_text("Search", exact=True).click()
    page.click("#search-mode label:has-text('Pareto front only')")
    page.click("#search-run")
    expect_text(page, "#search-progress", "done")
    page.wait_for_selector("#search-pareto .scatterlayer .trace .point")
    expect_text(page, "#search-summary", "faster")
    n = page.locator("#search-pareto .scatterlayer .trace:first-child .point").count()
    assert n >= 2
    shot(page, artifacts, "search")
    page.locator("#search-pareto .scatterlayer .trace:first-child .point").nth(n // 2).click(
        force=True)
    expect_text(page, "#search-summary", "Pareto point")
    with page.expect_download() as dl:
        page.click("#download-mapping")
    mapping = json.loads(Path(dl.value.path()).read_text())
    assert set(mapping) >= {"_meta", "network", "layers"} and mapping["layers"]
    shot(page, artifacts, "search_point")


def test_a_bad_upload_shows_the_error_and_the_app_keeps_working(page: Any,
                                                                artifacts: Path) -> None:
    page.set_input_files("#upload input[type=file]", files=[{
        "name": "broken.param", "mimeType": "text/plain",
        "buffer": b"7767517\n2 2\nInput data 0 1 data 0=227\nBogusLayer x 1 1 data y\n"}])
    expect_text(page, "#upload-msg", "Upload failed")
    text = page.inner_text("#upload-msg")
    assert "broken.param" in text and "/tmp" not in text
    shot(page, artifacts, "bad_upload")
    choose(page, "model", "squeezenet1_1")
    expect_text(page, "#net-summary", "squeezenet1_1")


def test_a_good_upload_becomes_the_network(page: Any, reference_dir: Path) -> None:
    data = (reference_dir / "ncnn" / "models" / "squeezenet.param").read_bytes()
    page.set_input_files("#upload input[type=file]", files=[{
        "name": "squeezenet.param", "mimeType": "text/plain", "buffer": data}])
    expect_text(page, "#upload-msg", "Loaded squeezenet.param")
    expect_text(page, "#net-summary", "(uploaded)")
    assert len(table_names(page)) > 20


def test_two_sessions_do_not_interfere(chromium: Any, explorer_url: str,
                                       artifacts: Path) -> None:
    a_ctx = chromium.new_context(viewport={"width": 1366, "height": 768})
    b_ctx = chromium.new_context(viewport={"width": 1366, "height": 768})
    try:
        a, b = a_ctx.new_page(), b_ctx.new_page()
        for pg in (a, b):  # both load at once
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(explorer_url, wait_until="commit")
        for pg in (a, b):
            wait_for_table(pg)
        b_names = table_names(b)
        choose(a, "model", "mobilenet_v2")
        choose(b, "device", "rk3588")
        expect_text(a, "#net-summary", "mobilenet_v2")
        expect_text(b, "#net-summary", "rk3588")
        # each session kept its own other choice
        expect_text(a, "#net-summary", "sd855")
        expect_text(b, "#net-summary", "resnet18")
        assert table_names(b) == b_names
        shot(a, artifacts, "session_a")
        shot(b, artifacts, "session_b")
    finally:
        a_ctx.close()
        b_ctx.close()
