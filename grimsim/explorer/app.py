"""``create_app``: the Dash app object (imports dash; ``grimsim.explorer`` itself does not)."""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dash import Dash, html

from grimsim.explorer.callbacks import Context, initial_network, message, register, saved_results
from grimsim.explorer.data import MAX_UPLOAD_BYTES, Queries
from grimsim.explorer.jobs import JobRunner
from grimsim.explorer.layout import Defaults, NetworkView, index_html, page
from grimsim.explorer.plotly_bundle import ASSETS, find_bundle

log = logging.getLogger(__name__)

RESULTS_ENV = "GRIMSIM_RESULTS_DIR"


def create_app(*, model: str = "resnet18", device: str = "sd855", unit: str = "cpu",
               threads: int = 4, results_dir: str | os.PathLike[str] | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, search_workers: int = 2,
               url_base_pathname: str | None = None, warm: bool = False) -> Dash:
    """The explorer as a Dash app (``app.server`` is the WSGI app for gunicorn).

    ``results_dir``: the folder of saved result files the Search tab can open (default
    ``$GRIMSIM_RESULTS_DIR``, else none). Nothing heavy happens here: networks and estimates
    are computed on the first request that needs them, or - with ``warm`` - in a background
    thread started here, so the first page a server shows is already computed.

    The layout is a function: each page load gets the default Network view embedded (memoised
    per process), so the browser draws it without waiting for a callback.
    """
    from grimsim import api

    folder = results_dir if results_dir is not None else os.environ.get(RESULTS_ENV)
    results = Path(folder).expanduser() if folder else None
    queries = Queries(max_upload_bytes=max_upload_bytes)
    context = Context(queries=queries, jobs=JobRunner(workers=search_workers),
                      results_dir=results)
    kwargs: dict[str, Any] = ({"url_base_pathname": url_base_pathname}
                              if url_base_pathname else {})
    # plotly.js: the cartesian bundle when installed (see plotly_bundle), else the full one
    bundle = find_bundle(ASSETS)
    app = Dash(__name__, title="grimsim explorer", update_title="", serve_locally=True,
               assets_folder=str(ASSETS),
               assets_ignore=f"^(?!{re.escape(bundle.name)}$)" if bundle else ".*", **kwargs)
    if bundle is None:
        log.info("serving the full plotly.js; `python -m grimsim.explorer.plotly_bundle` "
                 "installs a smaller one (a faster first page)")
        # fetched from the start instead of after the first render; the URL is the one
        # dash-renderer gives dcc.Graph when serving locally (a stale one only costs a fetch)
        app.index_string = index_html(app.config.requests_pathname_prefix
                                      + "_dash-component-suites/plotly/package_data/"
                                        "plotly.min.js")
    else:
        app.index_string = index_html()
    # refuse request bodies much larger than the upload limit (base64 adds a third)
    app.server.config["MAX_CONTENT_LENGTH"] = max_upload_bytes * 3 // 2 + 1024 * 1024
    zoo = list(api.zoo_names())
    devices = list(api.device_names())
    defaults = Defaults(model=model, device=device, unit=unit, threads=threads)
    # what the renderer checks callbacks against (set here, Dash would call the layout
    # function at once to get it): the same components, without the default view's data
    app.validation_layout = page(  # type: ignore[assignment]  # (typed None in dash)
        zoo, devices, [], defaults, max_upload_bytes)
    app.layout = functools.partial(serve_page, context, zoo, devices, defaults,
                                   max_upload_bytes)
    register(app, context)
    if warm:
        threading.Thread(target=_warm, args=(context, defaults), name="grimsim-warm",
                         daemon=True).start()
    return app


def serve_page(c: Context, zoo: Sequence[str], devices: Sequence[str], d: Defaults,
               max_upload_bytes: int) -> html.Div:
    """One page load's layout: the page with the default Network view embedded."""
    try:
        view = initial_network(c, d.model, d.device, d.unit, d.threads)
    except Exception as exc:  # the page must still load; the choices above still work
        log.exception("the default view failed")
        view = NetworkView(message=message(f"The default view failed ({type(exc).__name__}: "
                                           f"{exc}); choose a network or device above."))
    return page(zoo, devices, saved_results(c.results_dir), d, max_upload_bytes, view)


def _warm(c: Context, d: Defaults) -> None:
    try:
        initial_network(c, d.model, d.device, d.unit, d.threads)
    except Exception:  # the page will show the error itself; here it only costs the warm-up
        log.exception("warming the default view failed")


def run_explorer(host: str = "127.0.0.1", port: int = 8050, debug: bool = False,
                 **app_kwargs: object) -> None:
    """Serve the explorer (Flask's threaded server) on ``host:port``; loopback by default.

    With ``warm`` (the default) the default page is computed and Dash's server set up before
    the server listens: a background warm-up would compete for the CPU with the browser's
    first page load, and the first request would pay for the set-up.
    """
    warm = bool(app_kwargs.pop("warm", True))
    app = create_app(warm=False, **app_kwargs)  # type: ignore[arg-type]
    if warm:
        t0 = time.perf_counter()
        app.layout()  # the layout function: computes and memoises the default view
        # Dash sets its server up on the first request: let that be this one, not a user's
        app.server.test_client().get(app.config.routes_pathname_prefix)
        log.info("default page ready in %.2f s", time.perf_counter() - t0)
    log.info("grimsim explorer on http://%s:%d/", host, port)
    app.run(host=host, port=port, debug=debug, threaded=True)
