"""The Dash explorer: ``create_app(...)`` builds the app, ``run_explorer(host, port)`` serves it.

Importing this package is light: dash and plotly load inside these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dash import Dash

__all__ = ["create_app", "run_explorer"]


def create_app(**kwargs: Any) -> Dash:
    """The explorer app; see ``grimsim.explorer.app.create_app`` for the options."""
    from grimsim.explorer.app import create_app as _create

    return _create(**kwargs)


def run_explorer(host: str = "127.0.0.1", port: int = 8050, debug: bool = False,
                 **kwargs: Any) -> None:
    """Serve the explorer on ``host:port`` (127.0.0.1 unless told otherwise)."""
    from grimsim.explorer.app import run_explorer as _run

    _run(host=host, port=port, debug=debug, **kwargs)
