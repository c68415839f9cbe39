"""The ``_meta`` block every JSON output of grimsim carries."""

from __future__ import annotations

import datetime as _dt
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
