"""How the browser tests, the screenshot script and the first-render benchmark drive the
explorer headless: ``serve_explorer`` starts a fresh server on a free loopback port, and
Chromium runs as below.

Debian's Chromium (``apt-get install chromium``; never a browser download of Playwright's
own), headless, with the background services that would phone home or compete for the CPU
turned off. ``GRIMSIM_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: The Chromium binary.
CHROMIUM = Path(os.environ.get("GRIMSIM_CHROMIUM", "/usr/bin/chromium"))

#: Launch flags of every headless run.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 # headless Chromium (156) starts the omnibox popup's WebUI renderer in every
                 # new window: ~1 s of CPU per test context, competing with the page on 2 cores
                 "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup,"
                 "WebUIOmniboxFullPopup"]


@dataclass(frozen=True)
class Served:
    """An explorer serving at ``url``, up ``startup_s`` after its process started."""

    url: str
    startup_s: float


@contextlib.contextmanager
def serve_explorer(log_path: Path | None = None, *, results_dir: Path | None = None,
                   package: str = "grimsim.explorer", timeout_s: float = 90.0
                   ) -> Iterator[Served]:
    """A fresh explorer (as ``grimsim explore`` starts it) on a free loopback port, in its own
    process, stopped on exit. ``log_path``: its output (else discarded); ``package``: the
    importable package whose ``app.run_explorer`` to run (another copy of the explorer, for a
    before/after). Raises RuntimeError, with the log's tail, if it exits or does not answer
    within ``timeout_s``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    extra = f", results_dir={str(results_dir)!r}" if results_dir is not None else ""
    code = f"from {package}.app import run_explorer; run_explorer(port={port}{extra})"

    def tail() -> str:
        return log_path.read_text(errors="replace")[-2000:] if log_path else "(no log kept)"

    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log_path.open("wb")) if log_path else subprocess.DEVNULL
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=out,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"explorer exited: {tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"explorer not up after {timeout_s:.0f} s: {tail()}"
                                       ) from None
                time.sleep(0.05)
        yield Served(url, time.perf_counter() - t0)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
