"""Long callbacks (the search) as background jobs with visible progress.

A ``JobRunner`` belongs to one app. Each job gets an unguessable id that only the page that
started it knows; the page polls ``status(id)`` with a ``dcc.Interval``. Nothing is keyed by
user or session, so two sessions never see each other's jobs. Finished jobs are kept for a
while (the page may miss a poll) and then dropped; the number of jobs is bounded.

One process holds the jobs: run the app with one worker process (threads are fine), e.g.
``gunicorn -w 1 --threads 8 dashboards.app:server``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from grimsim.errors import GrimsimError

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


@dataclass
class _Job:
    state: str  # "queued" | "running" | "done" | "failed"
    fraction: float
    message: str
    created_s: float
    finished_s: float | None = None
    result: Any = None
    error: str | None = None


class JobRunner:
    """Runs jobs on a small thread pool; ``status`` reports their progress and outcome."""

    def __init__(self, workers: int = 2, max_jobs: int = 32, keep_s: float = 600.0) -> None:
        self.workers = workers
        self.max_jobs = max_jobs
        self.keep_s = keep_s
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        # created on first use, so a server that forks workers gets a pool per process
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="grimsim-job")
        return self._pool

    def _expire(self, now: float) -> None:
        for jid in [j for j, job in self._jobs.items()
                    if job.finished_s is not None and now - job.finished_s > self.keep_s]:
            del self._jobs[jid]

    def submit(self, fn: Callable[[Progress], Any]) -> str:
        """Start ``fn(progress)``; returns the job id. Raises GrimsimError when busy."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            active = sum(1 for j in self._jobs.values() if j.finished_s is None)
            if active >= self.max_jobs:
                raise GrimsimError(f"the server is busy with {active} searches; try again in "
                                   "a minute")
            jid = uuid.uuid4().hex
            self._jobs[jid] = _Job("queued", 0.0, "waiting for a free worker", now)
            pool = self._executor()
        pool.submit(self._run, jid, fn)
        return jid

    def _update(self, jid: str, **changes: Any) -> None:
        with self._lock:
            job = self._jobs.get(jid)
            if job is not None:
                for k, v in changes.items():
                    setattr(job, k, v)

    def _run(self, jid: str, fn: Callable[[Progress], Any]) -> None:
        self._update(jid, state="running", message="starting")

        def progress(fraction: float, message: str = "") -> None:
            self._update(jid, fraction=max(0.0, min(1.0, float(fraction))),
                         message=str(message))

        try:
            result = fn(progress)
        except GrimsimError as exc:
            self._update(jid, state="failed", error=str(exc), finished_s=time.monotonic())
        except Exception as exc:  # a bug must reach the page as a message, not a hang
            log.exception("job %s failed", jid)
            self._update(jid, state="failed", error=f"internal error: {type(exc).__name__}: "
                                                    f"{exc}", finished_s=time.monotonic())
        else:
            self._update(jid, state="done", fraction=1.0, message="done", result=result,
                         finished_s=time.monotonic())

    def status(self, jid: str | None) -> dict[str, Any]:
        """``{"state", "fraction", "message", "elapsed_s", "result", "error"}``; state
        ``unknown`` for an id this process does not hold."""
        with self._lock:
            job = self._jobs.get(jid or "")
            if job is None:
                return {"state": "unknown", "fraction": 0.0, "message": "", "elapsed_s": 0.0,
                        "result": None, "error": "this search is no longer known to the "
                                                  "server; run it again"}
            end = job.finished_s if job.finished_s is not None else time.monotonic()
            return {"state": job.state, "fraction": job.fraction, "message": job.message,
                    "elapsed_s": end - job.created_s, "result": job.result, "error": job.error}

    def forget(self, jid: str) -> None:
        with self._lock:
            self._jobs.pop(jid, None)

    def wait(self, jid: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Block until the job finishes (for tests and scripts)."""
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.status(jid)
            if st["state"] in ("done", "failed", "unknown") or time.monotonic() > deadline:
                return st
            time.sleep(0.02)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
