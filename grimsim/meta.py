"""The ``_meta`` block every JSON output of grimsim carries."""

from __future__ import annotations

import datetime as _dt
import platform
from pathlib import Path
from typing import Any

from grimsim import __version__


def run_meta(**extra: Any) -> dict[str, Any]:
    """grimsim version and creation time, plus whatever applies (cost model, device...)."""
    meta: dict[str, Any] = {
        "grimsim": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.update({k: v for k, v in extra.items() if v is not None})
    return meta


def cpu_model() -> str:
    """The CPU's marketing name (``model name`` of /proc/cpuinfo), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
