"""First render of the explorer: navigation -> default view drawn, in Debian's Chromium.

"Drawn" means the per-layer table has rows AND the network graph has its markers (resnet18
on sd855, CPU, 4 threads - the page's default). The moment is taken inside the page by a
``MutationObserver`` (``performance.now()``, from the start of navigation), so Playwright's
own round trips are not counted.

Per run the script starts a fresh server (``run_explorer`` as ``grimsim explore`` does) and:

- cold: the first page load, sent as soon as the server answers ``/``;
- warm: ``--warm`` more loads of the same server, each in a fresh browser context (a new
  user: empty HTTP cache), each followed by a reload in its context (a returning user);

and prints the median of each with a breakdown (scripts' bytes, callback requests before the
view was drawn and their server time, the page's script time, the CPU time of Chromium).

    .venv/bin/python benchmarks/explorer_first_render.py [--runs 5] [--warm 3]
        [--md benchmarks/explorer.md] [--json out.json]

Before/after: put another copy of the explorer on PYTHONPATH under another package name and
name both with ``--package``; they are measured in turn within each run, so a busy machine
slows both alike:

    PYTHONPATH=/tmp/old .venv/bin/python benchmarks/explorer_first_render.py \
        --package grimsim.explorer --package explorer_old

Needs the ``playwright`` package and ``/usr/bin/chromium`` (``GRIMSIM_CHROMIUM`` overrides).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from grimsim.explorer.headless import CHROMIUM, CHROMIUM_ARGS, serve_explorer
from grimsim.meta import cpu_model

REPO = Path(__file__).resolve().parents[1]

#: Records ``window.__grimsimDrawn`` (ms since navigation start) once the default view is on
#: screen: table cells and graph markers present.
OBSERVER = """
(() => {
  const done = () => document.querySelector('#layer-table td.dash-cell') &&
                     document.querySelector('#net-graph .scatterlayer .point');
  const mark = () => {
    if (window.__grimsimDrawn === undefined && done()) {
      window.__grimsimDrawn = performance.now();
      return true;
    }
    return false;
  };
  const start = () => {
    if (mark()) return;
    const obs = new MutationObserver(() => { if (mark()) obs.disconnect(); });
    obs.observe(document.documentElement, {childList: true, subtree: true});
  };
  if (document.documentElement) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
"""

#: The page's own timings: navigation, every resource, the script time so far.
TIMINGS = """
() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource').map(r => ({
    name: r.name.replace(location.origin, ''), start_ms: r.startTime,
    end_ms: r.responseEnd, server_ms: r.responseStart - r.requestStart,
    bytes: r.encodedBodySize, decoded_bytes: r.decodedBodySize, type: r.initiatorType}));
  return {drawn_ms: window.__grimsimDrawn, dcl_ms: nav.domContentLoadedEventEnd,
          load_ms: nav.loadEventEnd, html_server_ms: nav.responseStart - nav.requestStart,
          html_bytes: nav.encodedBodySize, resources: res};
}
"""


def chromium_cpu_s(browser_cdp: Any) -> dict[tuple[str, int], float]:
    """CPU seconds used so far by each of Chromium's processes, by (type, id)."""
    info = browser_cdp.send("SystemInfo.getProcessInfo")["processInfo"]
    return {(p["type"], int(p["id"])): float(p["cpuTime"]) for p in info}


def load_once(browser: Any, browser_cdp: Any, url: str, repeat: bool = False
              ) -> dict[str, Any]:
    """One page load in a fresh context: the page's timings, the main thread's script and
    task time (CDP Performance metrics) and the CPU time of Chromium's processes; with
    ``repeat``, also a reload in the same context (a returning user: caches warm)."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        context.add_init_script(OBSERVER)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        cpu0 = chromium_cpu_s(browser_cdp)
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function("() => window.__grimsimDrawn !== undefined", timeout=60_000)
        wall_s = time.perf_counter() - t0
        cpu1 = chromium_cpu_s(browser_cdp)
        out: dict[str, Any] = page.evaluate(TIMINGS)
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        out["wall_s"] = wall_s
        out["script_s"] = metrics.get("ScriptDuration")
        out["task_s"] = metrics.get("TaskDuration")
        out["layout_s"] = metrics.get("LayoutDuration")
        out["renderer_cpu_s"] = sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items()
                                    if k[0] == "renderer")
        out["chromium_cpu_s"] = sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items())
        if repeat:
            page.reload()
            page.wait_for_function("() => window.__grimsimDrawn !== undefined",
                                   timeout=60_000)
            out["repeat_drawn_ms"] = page.evaluate("window.__grimsimDrawn")
        return out
    finally:
        context.close()


def summarise(load: dict[str, Any]) -> dict[str, Any]:
    res = load["resources"]
    scripts = [r for r in res if r["type"] == "script" or r["name"].split("?")[0].endswith(".js")]
    dash_reqs = [r for r in res if "/_dash-" in r["name"]]
    # the callbacks answered before the view was drawn
    updates = [r for r in dash_reqs if "_dash-update-component" in r["name"]
               and r["end_ms"] <= load["drawn_ms"]]
    return {
        "drawn_s": load["drawn_ms"] / 1e3,
        "dcl_s": load["dcl_ms"] / 1e3,
        "script_kb": sum(r["bytes"] for r in scripts) / 1e3,
        "n_scripts": len(scripts),
        "n_callbacks": len(updates),
        "callback_server_ms": [round(r["server_ms"], 1) for r in updates],
        "layout_server_ms": [round(r["server_ms"], 1) for r in dash_reqs
                             if "_dash-layout" in r["name"]],
        "script_s": load["script_s"],
        "task_s": load["task_s"],
        "renderer_cpu_s": load["renderer_cpu_s"],
        "chromium_cpu_s": load["chromium_cpu_s"],
        "repeat_drawn_s": (load["repeat_drawn_ms"] / 1e3 if "repeat_drawn_ms" in load
                           else None),
        "resources": res,
    }


def machine() -> str:
    cpu = cpu_model()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu})"


def chromium_version() -> str:
    try:
        return subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def report(name: str, cold: list[dict[str, Any]], warm: list[dict[str, Any]],
           startups: list[float]) -> list[str]:
    """Markdown lines summarising one package's loads."""

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows) if rows else float("nan")

    def line(what: str, rows: list[dict[str, Any]]) -> str:
        each = ", ".join(f"{r['drawn_s']:.2f}" for r in rows)
        return (f"- **{what}**, median of {len(rows)}: **{med(rows, 'drawn_s'):.2f} s** (all: "
                f"{each}); DOMContentLoaded "
                f"{med(rows, 'dcl_s'):.2f} s; page script time {med(rows, 'script_s'):.2f} s; "
                f"CPU of the page's renderer {med(rows, 'renderer_cpu_s'):.2f} s, of all "
                f"Chromium {med(rows, 'chromium_cpu_s'):.2f} s")

    lines = [f"`{name}`:"]
    if startups:
        lines.append(f"- server start (process start -> `/` answers): median "
                     f"{statistics.median(startups):.2f} s")
    if cold:
        lines.append(line("cold (first load after the server started)", cold))
    if warm:
        lines.append(line("warm (later loads, each in a fresh browser context)", warm))
    repeats = [r["repeat_drawn_s"] for r in warm if r.get("repeat_drawn_s") is not None]
    if repeats:
        lines.append(f"- repeat visit (a reload in the same context: HTTP and code caches "
                     f"warm), median of {len(repeats)}: {statistics.median(repeats):.2f} s")
    ref = (cold or warm)[0]
    lines.append(f"- a load fetched {ref['n_scripts']} scripts, {ref['script_kb']:.0f} kB; "
                 f"{ref['n_callbacks']} callback request(s) before the view was drawn "
                 f"(server time {ref['callback_server_ms']} ms); layout served in "
                 f"{ref['layout_server_ms']} ms")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=5, help="fresh servers (cold loads)")
    ap.add_argument("--warm", type=int, default=3, help="warm loads per server")
    ap.add_argument("--json", type=Path, help="write every load's timings here")
    ap.add_argument("--md", type=Path, help="append the summary to this markdown file")
    ap.add_argument("--url", help="measure an explorer already serving here (warm only)")
    ap.add_argument("--omnibox", action="store_true",
                    help="let Chromium start its omnibox popup renderer in each new context "
                         "(as headless Chromium does by default; not part of the page's cost)")
    ap.add_argument("--package", action="append",
                    help="serve this package's app.run_explorer (default grimsim.explorer); "
                         "repeat to compare copies of the explorer (on PYTHONPATH), measured "
                         "in turn within each run")
    args = ap.parse_args(argv)
    packages = args.package or ["grimsim.explorer"]

    from playwright.sync_api import sync_playwright

    cold: dict[str, list[dict[str, Any]]] = {p: [] for p in packages}
    warm: dict[str, list[dict[str, Any]]] = {p: [] for p in packages}
    startups: dict[str, list[float]] = {p: [] for p in packages}
    loads0 = os.getloadavg()[0]
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / "grimsim_explorer_bench.log"
    with sync_playwright() as p:
        chromium_args = [a for a in CHROMIUM_ARGS
                         if not (args.omnibox and a.startswith("--disable-features="))]
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args,
                                    headless=True)
        bcdp = browser.new_browser_cdp_session()
        try:
            if args.url:
                packages = [args.url]
                warm[args.url] = [summarise(load_once(browser, bcdp, args.url, repeat=True))
                                  for _ in range(args.warm)]
                cold[args.url], startups[args.url] = [], []
            for _ in range(0 if args.url else args.runs):
                for package in packages:
                    with serve_explorer(log_path, package=package) as served:
                        up_s, url = served.startup_s, served.url
                        startups[package].append(up_s)
                        cold[package].append(summarise(load_once(browser, bcdp, url)))
                        for _ in range(args.warm):
                            warm[package].append(summarise(
                                load_once(browser, bcdp, url, repeat=True)))
                    print(f"{package}: server up {up_s:.2f} s, cold "
                          f"{cold[package][-1]['drawn_s']:.2f} s, warm "
                          f"{[round(w['drawn_s'], 2) for w in warm[package][-args.warm:]]}",
                          file=sys.stderr)
        finally:
            browser.close()

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = (f".venv/bin/python benchmarks/explorer_first_render.py --runs {args.runs} "
               f"--warm {args.warm}"
               + (" --omnibox" if args.omnibox else "")
               + "".join(f" --package {p}" for p in args.package or ()))
    lines = [
        f"- date: {now}; machine: {machine()}; {chromium_version()}; "
        f"load average before: {loads0:.2f}, after: {os.getloadavg()[0]:.2f}",
        f"- command: `{command}`",
    ]
    for package in packages:
        lines += report(package, cold[package], warm[package], startups[package])
    text = "\n".join(lines)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"cold": cold, "warm": warm, "startup_s": startups},
                                        indent=1))
    if args.md:
        with args.md.open("a") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
