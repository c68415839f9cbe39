"""How the tests, the screenshot script and the first-render benchmark drive Chromium.

Debian's Chromium (``apt-get install chromium``; never a browser download of Playwright's
own), headless, with the background services that would phone home or compete for the CPU
turned off. ``GRIMSIM_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
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
