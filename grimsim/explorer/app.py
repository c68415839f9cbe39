"""``create_app``: the Dash app object (imports dash; ``grimsim.explorer`` itself does not)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from dash import Dash

from grimsim.explorer.callbacks import Context, register, saved_results
from grimsim.explorer.data import MAX_UPLOAD_BYTES, Queries
from grimsim.explorer.jobs import JobRunner
from grimsim.explorer.layout import INDEX, Defaults, page

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
    """
    from grimsim import api

    folder = results_dir if results_dir is not None else os.environ.get(RESULTS_ENV)
    results = Path(folder).expanduser() if folder else None
    queries = Queries(max_upload_bytes=max_upload_bytes)
    context = Context(queries=queries, jobs=JobRunner(workers=search_workers),
                      results_dir=results)
    kwargs: dict[str, Any] = ({"url_base_pathname": url_base_pathname}
                              if url_base_pathname else {})
    app = Dash(__name__, title="grimsim explorer", update_title="", serve_locally=True,
               **kwargs)
    app.index_string = INDEX
    # refuse request bodies much larger than the upload limit (base64 adds a third)
    app.server.config["MAX_CONTENT_LENGTH"] = max_upload_bytes * 3 // 2 + 1024 * 1024
    zoo = list(api.zoo_names())
    devices = list(api.device_names())
    defaults = Defaults(model=model, device=device, unit=unit, threads=threads)
    app.layout = page(zoo, devices, saved_results(results), defaults, max_upload_bytes)
    register(app, context)
    if warm:
        threading.Thread(target=_warm, args=(queries, defaults), name="grimsim-warm",
                         daemon=True).start()
    return app


def _warm(queries: Queries, d: Defaults) -> None:
    try:
        queries.network_view(d.model, d.device, d.unit, d.threads)
    except Exception:  # the page will show the error itself; here it only costs the warm-up
        log.exception("warming the default view failed")


def run_explorer(host: str = "127.0.0.1", port: int = 8050, debug: bool = False,
                 **app_kwargs: object) -> None:
    """Serve the explorer (Flask's threaded server) on ``host:port``; loopback by default."""
    app_kwargs.setdefault("warm", True)
    app = create_app(**app_kwargs)  # type: ignore[arg-type]
    log.info("grimsim explorer on http://%s:%d/", host, port)
    app.run(host=host, port=port, debug=debug, threaded=True)
