"""The explorer as a server: binds loopback by default and answers a burst of concurrent
requests (page, layout, and the network-view callback) without an error."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("dash")

from grimsim.explorer.headless import serve_explorer

BURST = 200


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_explorer() as served:
        yield served.url


def network_callback_body(model: str = "resnet18", device: str = "sd855") -> bytes:
    outputs = [("net-summary", "children"), ("net-graph", "figure"), ("layer-table", "data"),
               ("lab-layer", "options"), ("net-msg", "children")]
    body = {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": "model", "property": "value", "value": model},
                   {"id": "device", "property": "value", "value": device},
                   {"id": "unit", "property": "value", "value": "cpu"},
                   {"id": "threads", "property": "value", "value": 4}],
        "changedPropIds": ["model.value"], "state": [],
    }
    return json.dumps(body).encode()


def test_callback_body_names_outputs_like_the_renderer() -> None:
    body = json.loads(network_callback_body())
    assert body["output"] == ("..net-summary.children...net-graph.figure...layer-table.data"
                              "...lab-layer.options...net-msg.children..")


def _request(url: str, kind: int) -> tuple[int, int]:
    """One request (page, layout, dependencies or the network callback): (status, bytes).
    No retries: a reset or refused connection fails the burst."""
    if kind % 4 == 3:
        req = urllib.request.Request(url + "_dash-update-component",
                                     data=network_callback_body(), method="POST",
                                     headers={"Content-Type": "application/json"})
    else:
        req = urllib.request.Request(url + ("", "_dash-layout", "_dash-dependencies")[kind % 4])
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, len(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, 0


def test_default_host_is_loopback() -> None:
    import inspect

    from grimsim.explorer import app, run_explorer

    assert inspect.signature(run_explorer).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(app.run_explorer).parameters["host"].default == "127.0.0.1"


def test_burst_of_concurrent_requests(server: str) -> None:
    # one warm call so the burst measures serving, not the first estimate
    assert _request(server, 3)[0] == 200
    t0 = time.monotonic()
    with ThreadPoolExecutor(BURST) as pool:
        results = list(pool.map(lambda k: _request(server, k), range(BURST)))
    elapsed = time.monotonic() - t0
    codes = [c for c, _ in results]
    assert codes == [200] * BURST, {c: codes.count(c) for c in set(codes)}
    assert all(n > 0 for _, n in results)
    assert elapsed < 120, f"{BURST} requests took {elapsed:.1f} s"
    print(f"\n{BURST} concurrent requests answered in {elapsed:.2f} s")


def test_callback_answers_with_the_network(server: str) -> None:
    req = urllib.request.Request(server + "_dash-update-component",
                                 data=network_callback_body("mobilenet_v2", "rpi4"),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        payload = json.loads(r.read())
    rows = payload["response"]["layer-table"]["data"]
    assert any(row["name"].startswith("features") or row["op"] == "dwconv" for row in rows)
    assert "mobilenet_v2" in json.dumps(payload["response"]["net-summary"])


def test_oversized_request_bodies_are_refused(server: str) -> None:
    big = b"x" * (40 * 2**20)
    req = urllib.request.Request(server + "_dash-update-component", data=big, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status = r.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (ConnectionResetError, BrokenPipeError, urllib.error.URLError):
        status = 413  # the server closed the connection before reading it all
    assert status == 413
    assert _request(server, 0)[0] == 200  # and keeps serving


def test_dashboards_wsgi_entry_serves_and_lists_saved_results() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
    spec = importlib.util.spec_from_file_location("dashboards_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    client = module.server.test_client()
    assert client.get("/").status_code == 200
    layout = json.dumps(client.get("/_dash-layout").get_json())
    saved = sorted(p.name for p in (path.parent / "results").glob("*.json"))
    for name in saved:
        assert name in layout
