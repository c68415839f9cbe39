"""``grimsim sweep``: many mapping searches (networks x devices x targets) on a Dask cluster,
collected in one results folder the explorer opens.

Engine: Dask distributed rather than Ray. Dask is pure Python and a light install
(``pip install "grimsim[sweep]"``), needs no separate runtime or object store, and its
``LocalCluster`` starts worker processes bound to 127.0.0.1 with the dashboard off in a few
seconds; the same code runs on any existing Dask cluster given by address. A search is a
short CPU-bound Python call whose answer is a small JSON document, so a plain task queue is
all it needs; Ray's actors, object store and autoscaling would go unused.

Targets (``SweepTarget``): ``latency:F`` - the least loss under a latency target of F times
the network's dense latency on that device (F in (0, 1]); ``loss:B`` - the least latency
under the loss budget B; ``pareto`` - the front of latency vs loss.

The results folder::

    <out>/<network>__<device>__<target>.json   one per finished task (``__<unit>``/``__<T>t``
                                               appended when not cpu / 1 thread)
    <out>/index.json                           every task, finished or failed

A task file is the explorer's saved-result layout: ``{"format", "model", "network",
"device", "device_name", "unit", "threads", "mode" ("latency" | "loss" | "pareto"),
"target" (ms, loss budget or null), "latency_fraction", "result" (``SearchResult.to_dict()``),
"dense_layers" (layer -> dense latency in s), "_meta"}``. ``index.json`` is
``{"format": "grimsim.sweep_index/1", "tasks": [...], "counts": {"ok", "error", "pending"},
"cluster", "wall_s", "_meta"}``; each task entry names its ``file`` (null when it failed),
``status`` ("ok" | "error" | "pending"), ``error`` (the message), and the key figures
``latency_ms``, ``dense_latency_ms``, ``speedup``, ``loss``, ``model_bytes``, ``search_s``.
A failing task is recorded with its error and never stops the others; the index is
rewritten (atomically) after every task, so an interrupted sweep leaves a valid index.

With ``address`` (an existing cluster), model files must exist at the same path on the
workers, or be zoo names; the device ``host`` means each worker's own machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grimsim.errors import GrimsimError, SweepError
from grimsim.meta import run_meta

log = logging.getLogger(__name__)

__all__ = [
    "INDEX_FILE",
    "INDEX_FORMAT",
    "SweepTarget",
    "SweepTask",
    "parse_numbers",
    "parse_target",
    "result_document",
    "run_sweep",
    "search_task",
    "sweep",
    "sweep_tasks",
]

INDEX_FILE = "index.json"
INDEX_FORMAT = "grimsim.sweep_index/1"
#: The explorer's saved-result files carry the search result's format name.
RESULT_FILE_FORMAT = "grimsim.search_result/1"
#: Seconds to wait for an existing scheduler before giving up.
CONNECT_TIMEOUT_S = 10.0
_MODES = ("latency", "loss", "pareto")

TaskFn = Callable[["SweepTask"], Mapping[str, Any]]



# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class SweepTarget:
    """One search objective: ``latency`` (``value`` = fraction of the dense latency),
    ``loss`` (``value`` = loss budget) or ``pareto`` (no value)."""

    mode: str
    value: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise SweepError(f"unknown sweep target {self.mode!r}; use latency:F, loss:B or "
                             "pareto")
        if self.mode == "pareto":
            if self.value is not None:
                raise SweepError("the pareto target takes no value")
            return
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SweepError(f"{self.mode} target needs a finite number, got {v!r}")
        if self.mode == "latency" and not 0.0 < v <= 1.0:
            raise SweepError(f"latency fraction {v!r} must be in (0, 1]: the target is that "
                             "fraction of the dense latency (e.g. 0.5 = twice as fast)")
        if self.mode == "loss" and v < 0.0:
            raise SweepError(f"loss budget {v!r} must be >= 0")
        object.__setattr__(self, "value", float(v))

    @property
    def spec(self) -> str:
        return "pareto" if self.mode == "pareto" else f"{self.mode}:{self.value!r}"


def parse_target(text: str) -> SweepTarget:
    """``latency:0.5`` | ``loss:0.05`` | ``pareto``."""
    mode, sep, value = str(text).strip().lower().partition(":")
    if mode == "pareto" and not sep:
        return SweepTarget("pareto")
    if mode not in ("latency", "loss") or not sep:
        raise SweepError(f"bad sweep target {text!r}; use latency:F, loss:B or pareto")
    try:
        number = float(value)
    except ValueError:
        raise SweepError(f"bad sweep target {text!r}: {value!r} is not a number") from None
    return SweepTarget(mode, number)


def parse_numbers(text: str | None, option: str) -> list[float]:
    """A comma-separated CLI list such as ``0.5,0.3`` (empty or None: no numbers)."""
    out = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        try:
            out.append(float(item))
        except ValueError:
            raise SweepError(f"{option}: {item.strip()!r} is not a number (give a comma-"
                             "separated list such as 0.5,0.3)") from None
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _model_label(network: str) -> str:
    path = Path(network)
    return path.stem if path.suffix.lower() in (".onnx", ".param") else network


@dataclass(frozen=True)
class SweepTask:
    """One search of a sweep: a network (zoo name or model path), a device (name or profile
    path), a target, and the device's compute unit and thread count."""

    network: str
    device: str
    target: SweepTarget
    unit: str = "cpu"
    threads: int = 1

    @property
    def key(self) -> str:
        """The task's file stem in the results folder."""
        parts = [_model_label(self.network), _model_label(self.device),
                 self.target.spec.replace(":", "-")]
        if self.unit != "cpu":
            parts.append(self.unit)
        if self.threads != 1:
            parts.append(f"{self.threads}t")
        return "__".join(_slug(p) for p in parts)


def _check_network(name: str) -> None:
    from grimsim.network.zoo import ZOO_NAMES

    path = Path(name)
    if path.suffix.lower() in (".onnx", ".param"):
        if not path.is_file():
            raise SweepError(f"model file {name!r} not found")
    elif name not in ZOO_NAMES:
        raise SweepError(f"unknown network {name!r}: give zoo names ({', '.join(ZOO_NAMES)}) or "
                         ".onnx / .param paths")


def _check_device(name: str) -> None:
    from grimsim.cost.profile import list_profiles

    base = name.split("@", 1)[0]
    if Path(name).suffix.lower() in (".yaml", ".yml"):
        if not Path(name).is_file():
            raise SweepError(f"device profile {name!r} not found")
    elif base not in list_profiles():
        raise SweepError(f"unknown device {name!r}: give built-in names "
                         f"({', '.join(list_profiles())}) or profile .yaml paths")


def sweep_tasks(networks: Sequence[str], devices: Sequence[str], *,
                latency_fractions: Sequence[float] = (), max_losses: Sequence[float] = (),
                pareto: bool = False, targets: Sequence[SweepTarget | str] = (),
                unit: str = "cpu", threads: int = 1, check: bool = True) -> list[SweepTask]:
    """Every (network, device, target) combination, in that nesting order.

    ``check`` verifies that each network is a zoo name or an existing model file and each
    device a known profile, before any cluster starts.
    """
    nets = [str(n).strip() for n in networks if str(n).strip()]
    devs = [str(d).strip() for d in devices if str(d).strip()]
    if not nets or not devs:
        raise SweepError("a sweep needs at least one network and one device")
    goals = [t if isinstance(t, SweepTarget) else parse_target(t) for t in targets]
    goals += [SweepTarget("latency", f) for f in latency_fractions]
    goals += [SweepTarget("loss", b) for b in max_losses]
    if pareto:
        goals.append(SweepTarget("pareto"))
    if not goals:
        raise SweepError("no targets: give latency fractions (--latency-fractions 0.5,0.3), "
                         "loss budgets (--max-loss) or --pareto")
    if unit not in ("cpu", "gpu"):
        raise SweepError(f"unit must be cpu or gpu, got {unit!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SweepError(f"threads must be a positive integer, got {threads!r}")
    if check:
        for n in dict.fromkeys(nets):
            _check_network(n)
        for d in dict.fromkeys(devs):
            _check_device(d)
    tasks = [SweepTask(n, d, g, unit, threads) for n in dict.fromkeys(nets)
             for d in dict.fromkeys(devs) for g in dict.fromkeys(goals)]
    seen: dict[str, SweepTask] = {}
    for t in tasks:
        if t.key in seen:
            raise SweepError(f"tasks {seen[t.key]} and {t} would write the same file "
                             f"{t.key}.json; rename one of the model files")
        seen[t.key] = t
    return tasks


# --------------------------------------------------------------------------- the search task


def result_document(task: SweepTask, network_name: str, device_id: str,
                    result: Mapping[str, Any], *, target: float | None,
                    dense_layers: Mapping[str, float] | None = None) -> dict[str, Any]:
    """A task's result file (module docstring): the explorer's saved-result layout."""
    return {
        "format": RESULT_FILE_FORMAT, "model": task.network, "network": network_name,
        "device": device_id, "device_name": task.device, "unit": task.unit,
        "threads": task.threads, "mode": task.target.mode, "target": target,
        "latency_fraction": task.target.value if task.target.mode == "latency" else None,
        "result": dict(result), "dense_layers": dict(dense_layers or {}),
        "_meta": run_meta(device=device_id, sweep_task=task.key),
    }


def search_task(task: SweepTask) -> dict[str, Any]:
    """Run one search with ``grimsim.api.search`` (on a worker) and return its result file.

    A latency fraction becomes a target in ms from the dense estimate on the same device.
    """
    from grimsim import api  # imported on the worker

    search: Callable[..., Any] | None = getattr(api, "search", None)
    if search is None:
        raise GrimsimError("this grimsim has no grimsim.api.search")
    net = api.load_network(task.network)
    dev = api.load_device(task.device)
    dense = api.estimate(net, dev, None, threads=task.threads, unit=task.unit)
    kwargs: dict[str, Any] = {"threads": task.threads, "unit": task.unit}
    target: float | None = None
    if task.target.mode == "latency":
        assert task.target.value is not None
        target = task.target.value * dense.latency_s * 1e3
        kwargs["latency_ms"] = target
    elif task.target.mode == "loss":
        target = task.target.value
        kwargs["max_loss"] = target
    else:
        kwargs["pareto"] = True
    result = search(net, dev, **kwargs)
    return result_document(task, net.name, str(getattr(dev, "id", task.device)),
                           json.loads(result.to_json()), target=target,
                           dense_layers={lay.name: lay.latency_s for lay in dense.layers})


def _run_on_worker(fn: TaskFn, task: SweepTask) -> dict[str, Any]:
    """Run ``fn(task)`` and report success or the error as data (never raises)."""
    start = time.perf_counter()
    worker = None
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        pass
    try:
        doc = dict(fn(task))
        json.dumps(doc, allow_nan=False)  # fail here, with the task named, not in the driver
        return {"ok": True, "doc": doc, "task_s": time.perf_counter() - start,
                "worker": worker}
    except Exception as exc:  # one failing search must not stop the sweep
        out: dict[str, Any] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                               "task_s": time.perf_counter() - start, "worker": worker}
        if not isinstance(exc, GrimsimError):  # a bug, not bad input: keep where it was
            out["traceback"] = traceback.format_exc(limit=-4)
        return out


# --------------------------------------------------------------------------- the driver


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _out_dir(out_dir: str | os.PathLike[str]) -> Path:
    p = Path(out_dir).expanduser()
    if p.exists() and not p.is_dir():
        raise SweepError(f"results folder {str(p)!r} exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"results folder {str(p)!r} cannot be created: {exc.strerror}"
                         ) from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise SweepError(f"results folder {str(p)!r} is not writable")
    return p


@contextlib.contextmanager
def _client(address: str | None, n_workers: int, threads_per_worker: int) -> Iterator[Any]:
    """A Dask client on ``address``, or on a LocalCluster on 127.0.0.1 closed afterwards."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError('grimsim sweep needs Dask distributed: pip install "grimsim[sweep]" '
                         '(or "dask[distributed]")') from None
    cluster = None
    if address:
        if not re.fullmatch(r"(tcp|tls|ucx|inproc)://\S+", address):
            raise SweepError(f"scheduler address {address!r} must look like "
                             "tcp://host:8786")
        try:
            client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"cannot reach the Dask scheduler at {address} within "
                             f"{CONNECT_TIMEOUT_S:g} s ({type(exc).__name__}: {exc})") from None
    else:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                               processes=True, host="127.0.0.1", dashboard_address=None,
                               worker_dashboard_address=None, silence_logs=logging.WARNING,
                               # the scheduler's plain HTTP routes (health, metrics) on a free
                               # localhost port; the dashboard itself stays off
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _figures(doc: Mapping[str, Any]) -> dict[str, Any]:
    res = doc.get("result", {})
    lat = res.get("latency_s")
    dense = res.get("dense_latency_s")
    return {
        "latency_ms": lat * 1e3 if lat is not None else None,
        "dense_latency_ms": dense * 1e3 if dense is not None else None,
        "speedup": dense / lat if lat and dense is not None else None,
        "loss": res.get("loss"), "model_bytes": res.get("model_bytes"),
        "search_s": res.get("search_s"), "target_value": doc.get("target"),
        "network": doc.get("network"), "device": doc.get("device"),
    }


def _entry(task: SweepTask) -> dict[str, Any]:
    return {"key": task.key, "file": None, "network": task.network, "device": task.device,
            "unit": task.unit, "threads": task.threads, "target": task.target.spec,
            "mode": task.target.mode, "status": "pending", "error": None,
            "latency_ms": None, "dense_latency_ms": None, "speedup": None, "loss": None,
            "model_bytes": None, "search_s": None, "target_value": None, "task_s": None,
            "worker": None}


def _index(entries: Sequence[Mapping[str, Any]], cluster: str, start: float) -> dict[str, Any]:
    counts = {s: sum(e["status"] == s for e in entries) for s in ("ok", "error", "pending")}
    return {"format": INDEX_FORMAT, "tasks": list(entries), "counts": counts,
            "cluster": cluster, "wall_s": time.perf_counter() - start, "_meta": run_meta()}


def run_sweep(tasks: Sequence[SweepTask], out_dir: str | os.PathLike[str], *,
              address: str | None = None, n_workers: int = 2, threads_per_worker: int = 1,
              task_fn: TaskFn = search_task,
              progress: Callable[[Mapping[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run ``tasks`` on a Dask cluster and fill ``out_dir``; returns the index.

    ``address``: an existing scheduler (``tcp://host:8786``); None starts a LocalCluster of
    ``n_workers`` processes with ``threads_per_worker`` threads each on 127.0.0.1, dashboard
    off, closed at the end. ``task_fn(task)`` returns the task's result file as a dict
    (``search_task`` by default; it must be importable on the workers, or picklable by
    value). ``progress`` gets each task's index entry when it finishes.
    """
    if not tasks:
        raise SweepError("no tasks to run")
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise SweepError("two tasks share a file name: " + ", ".join(
            sorted({k for k in keys if keys.count(k) > 1})))
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise SweepError(f"n_workers must be a positive integer, got {n_workers!r}")
    if (isinstance(threads_per_worker, bool) or not isinstance(threads_per_worker, int)
            or threads_per_worker < 1):
        raise SweepError(f"threads_per_worker must be a positive integer, got "
                         f"{threads_per_worker!r}")
    out = _out_dir(out_dir)
    start = time.perf_counter()
    entries = [_entry(t) for t in tasks]
    cluster = address or f"local: {n_workers} workers x {threads_per_worker} thread(s) on " \
                         "127.0.0.1"
    index_path = out / INDEX_FILE
    _atomic_write(index_path, json.dumps(_index(entries, cluster, start), indent=1))
    with _client(address, n_workers, threads_per_worker) as client:
        from distributed import as_completed

        futures = {client.submit(_run_on_worker, task_fn, task, pure=False,
                                 key=f"grimsim-sweep-{i}-{task.key}"): i
                   for i, task in enumerate(tasks)}
        log.info("sweep: %d tasks on %s", len(tasks), cluster)
        for future in as_completed(futures):
            i = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died or the task was lost
                outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            entry = entries[i]
            entry["task_s"] = outcome.get("task_s")
            entry["worker"] = outcome.get("worker")
            if outcome["ok"]:
                doc = outcome["doc"]
                name = f"{tasks[i].key}.json"
                _atomic_write(out / name, json.dumps(doc, indent=1))
                entry.update(_figures(doc), file=name, status="ok")
                entry["network"], entry["device"] = tasks[i].network, tasks[i].device
                entry["network_name"] = doc.get("network")
                entry["device_id"] = doc.get("device")
            else:
                entry.update(status="error", error=outcome["error"])
                if outcome.get("traceback"):
                    entry["traceback"] = outcome["traceback"]
                log.warning("sweep task %s failed: %s", tasks[i].key, outcome["error"])
            _atomic_write(index_path, json.dumps(_index(entries, cluster, start), indent=1))
            if progress is not None:
                progress(entry)
    index = _index(entries, cluster, start)
    _atomic_write(index_path, json.dumps(index, indent=1))
    return index


def sweep(networks: Sequence[str], devices: Sequence[str], out_dir: str | os.PathLike[str], *,
          latency_fractions: Sequence[float] = (), max_losses: Sequence[float] = (),
          pareto: bool = False, threads: int = 1, unit: str = "cpu",
          address: str | None = None, workers: int = 2, task_fn: TaskFn = search_task,
          progress: Callable[[Mapping[str, Any]], None] | None = None) -> dict[str, Any]:
    """``grimsim sweep``: ``sweep_tasks`` then ``run_sweep``; returns the index."""
    tasks = sweep_tasks(networks, devices, latency_fractions=latency_fractions,
                        max_losses=max_losses, pareto=pareto, unit=unit, threads=threads)
    return run_sweep(tasks, out_dir, address=address, n_workers=workers, task_fn=task_fn,
                     progress=progress)
