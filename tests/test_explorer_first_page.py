"""The explorer's first page: the default view embedded in the layout (no callback before the
first paint), computed once per process, and plotly.js's smaller bundle when installed."""

from __future__ import annotations

import io
import json
import stat
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dash")

from grimsim import api
from grimsim.explorer import callbacks as cb
from grimsim.explorer import plotly_bundle as pb
from grimsim.explorer.data import LRU, Queries
from grimsim.explorer.jobs import JobRunner

#: The outputs the page embeds: their callbacks must not run on load.
EMBEDDED = ("net-summary.children", "net-graph.figure", "layer-table.data", "lab-layer.options",
            "lab-layer.value", "net-msg.children")


def find(node: Any, id_: str) -> dict[str, Any] | None:
    """The props of the component with ``id_`` in a ``/_dash-layout`` JSON tree."""
    if isinstance(node, list):
        for child in node:
            hit = find(child, id_)
            if hit is not None:
                return hit
        return None
    if not isinstance(node, dict):
        return None
    props = node.get("props")
    if isinstance(props, dict):
        if props.get("id") == id_:
            return props
        return find(props.get("children"), id_)
    return None


def text(node: Any) -> str:
    """The text of a layout JSON fragment."""
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list):
        return "".join(text(c) for c in node)
    if isinstance(node, dict):
        return text(node.get("props", {}).get("children"))
    return ""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from grimsim.explorer import create_app

    app = create_app(results_dir=tmp_path_factory.mktemp("results"))
    yield app.server.test_client()


@pytest.fixture
def ctx() -> Iterator[cb.Context]:
    c = cb.Context(Queries(), JobRunner(workers=1))
    yield c
    c.jobs.shutdown()


def test_the_layout_embeds_the_default_view(client: Any) -> None:
    layout = client.get("/_dash-layout").get_json()
    rows = find(layout, "layer-table")["data"]  # type: ignore[index]
    est = api.estimate("resnet18", "sd855", threads=4, unit="cpu")
    assert [r["name"] for r in rows] == [x.name for x in est.layers]
    summary = text(find(layout, "net-summary")["children"])  # type: ignore[index]
    assert "resnet18" in summary and "sd855" in summary and "4 thread(s)" in summary
    fig = find(layout, "net-graph")["figure"]  # type: ignore[index]
    nodes = fig["data"][1]
    assert len(nodes["customdata"]) == len(api.load_network("resnet18"))
    # the layer lab starts on the costliest prunable layer, ringed in the graph
    lab = find(layout, "lab-layer")
    assert lab is not None
    costliest = max((r for r in rows if r["name"] in {o["value"] for o in lab["options"]}),
                    key=lambda r: r["share_pct"])["name"]
    assert lab["value"] == costliest
    i = list(nodes["customdata"]).index(costliest)
    ring = fig["data"][2]
    assert (ring["x"][0], ring["y"][0]) == (nodes["x"][i], nodes["y"][i])


def test_no_callback_runs_on_first_load(client: Any) -> None:
    deps = client.get("/_dash-dependencies").get_json()
    initial = [d["output"] for d in deps if not d.get("prevent_initial_call")]
    assert initial == [], f"these callbacks run on load: {initial}"
    outputs = " ".join(d["output"] for d in deps)
    for target in EMBEDDED:  # ... and each embedded output still has its callback
        assert target in outputs, target


def test_the_index_page_is_small(client: Any) -> None:
    # the page carries the (data-free) validation layout; its placeholders have no template
    page = client.get("/")
    assert page.status_code == 200
    assert len(page.data) < 60_000, len(page.data)


def test_placeholders_say_why_they_are_blank_without_a_template() -> None:
    from grimsim.explorer import figures as F  # noqa: N812

    light = F.placeholder_figure("run a search", height=400)
    full = F.empty_figure("run a search", height=400).to_plotly_json()
    assert light["layout"]["annotations"][0]["text"] == full["layout"]["annotations"][0]["text"]
    assert light["layout"]["height"] == full["layout"]["height"] == 400
    assert "template" not in light["layout"] and "template" in full["layout"]
    assert len(json.dumps(light)) * 5 < len(json.dumps(full, default=str))


def test_the_default_view_is_computed_once(ctx: cb.Context,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = api.estimate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "estimate", counting)
    views = []
    threads = [threading.Thread(target=lambda: views.append(
        cb.initial_network(ctx, "resnet18", "sd855", "cpu", 4))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(v is views[0] for v in views)
    # a plain JSON figure: it goes into every page as it is
    json.dumps(views[0].figure)


def test_a_broken_default_still_serves_a_working_page(tmp_path: Path) -> None:
    from grimsim.explorer import create_app

    app = create_app(model="no_such_net", results_dir=tmp_path)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout").get_json()
    assert "no_such_net" in text(find(layout, "net-msg")["children"])  # type: ignore[index]
    assert find(layout, "layer-table")["data"] == []  # type: ignore[index]


def test_lru_computes_a_key_once_for_concurrent_askers() -> None:
    lru = LRU(4)
    calls = []

    def make() -> int:
        calls.append(1)
        time.sleep(0.05)
        return 42

    out: list[int] = []
    threads = [threading.Thread(target=lambda: out.append(lru.get_or("k", make)))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [42] * 5 and len(calls) == 1

    def fail() -> int:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        lru.get_or("bad", fail)
    assert lru.get_or("bad", lambda: 7) == 7  # a failure is not remembered


# ----------------------------------------------------------------------------- plotly bundle


def _fake_npm(tmp_path: Path, banner: str, fail: bool = False) -> str:
    """An ``npm`` that answers ``npm pack NAME@VERSION`` with a tarball holding ``banner``."""
    tgz = tmp_path / "pkg.tgz"
    data = (banner + "\nwindow.Plotly = {};\n").encode()
    with tarfile.open(tgz, "w:gz") as tar:
        for name, body in ((pb.PACKAGE_FILE, data), ("package/README.md", b"readme")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    script = tmp_path / "npm"
    body = ("import shutil, sys\n"
            + ("sys.stderr.write('404 Not Found'); sys.exit(1)\n" if fail else "")
            + f"assert sys.argv[1] == 'pack'\nshutil.copy({str(tgz)!r}, 'x.tgz')\n")
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_install_bundle_takes_the_one_file_of_the_npm_package(tmp_path: Path) -> None:
    npm = _fake_npm(tmp_path, "/**\n* plotly.js (cartesian - minified) v9.8.7\n*/")
    dest = tmp_path / "assets"
    assert pb.find_bundle(dest, "9.8.7") is None
    path = pb.install_bundle(dest, "9.8.7", npm=npm)
    assert path == dest / "plotly-cartesian-9.8.7.min.js"
    assert "window.Plotly" in path.read_text()
    assert [p.name for p in dest.iterdir()] == [path.name]
    assert pb.find_bundle(dest, "9.8.7") == path
    assert pb.find_bundle(dest, "9.8.8") is None  # only the exact version is served


def test_install_bundle_refuses_another_version_or_a_failed_fetch(tmp_path: Path) -> None:
    dest = tmp_path / "assets"
    other = _fake_npm(tmp_path, "/**\n* plotly.js (cartesian - minified) v1.0.0\n*/")
    with pytest.raises(pb.BundleError, match="banner"):
        pb.install_bundle(dest, "9.8.7", npm=other)
    failing = _fake_npm(tmp_path, "", fail=True)
    with pytest.raises(pb.BundleError, match="404 Not Found"):
        pb.install_bundle(dest, "9.8.7", npm=failing)
    assert not dest.exists() or not any(dest.iterdir())


def test_the_app_serves_the_installed_bundle_and_only_it(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    from grimsim.explorer import app as app_module

    version = pb.plotlyjs_version()
    (tmp_path / pb.bundle_name(version)).write_text("window.Plotly = {};")
    (tmp_path / "plotly-cartesian-0.0.1.min.js").write_text("stale")
    monkeypatch.setattr(app_module, "ASSETS", tmp_path)
    index = app_module.create_app().server.test_client().get("/").get_data(as_text=True)
    assert f"/assets/{pb.bundle_name(version)}" in index
    assert "0.0.1" not in index and 'rel="preload"' not in index

    monkeypatch.setattr(app_module, "ASSETS", tmp_path / "none")
    index = app_module.create_app().server.test_client().get("/").get_data(as_text=True)
    assert "/assets/" not in index
    assert 'rel="preload" as="script" href="/_dash-component-suites/plotly/package_data/' \
           'plotly.min.js"' in index
