"""The explorer as a team service: ``server`` is the WSGI app.

    gunicorn --workers 1 --threads 8 --bind 127.0.0.1:8050 dashboards.app:server

One worker process with threads: a running search and its progress live in that process
(several processes would each hold their own searches and uploads). ``GRIMSIM_RESULTS_DIR``
overrides the folder of saved results (default: ``results/`` beside this file).
``python -m grimsim.explorer.plotly_bundle`` (once, with npm) makes the first page faster.
"""

from __future__ import annotations

import os
from pathlib import Path

from grimsim.explorer import create_app

RESULTS = Path(os.environ.get("GRIMSIM_RESULTS_DIR", Path(__file__).with_name("results")))

app = create_app(results_dir=RESULTS, warm=True)
server = app.server

if __name__ == "__main__":  # python dashboards/app.py: the same app on Flask's own server
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8050")), threaded=True)
