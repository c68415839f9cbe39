"""grimsim sweep: searches on a real two-worker Dask cluster bound to 127.0.0.1."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grimsim.errors import GrimsimError, SearchError
from grimsim.sweep import (
    INDEX_FORMAT,
    SweepTarget,
    SweepTask,
    parse_numbers,
    parse_target,
    result_document,
    run_sweep,
    sweep,
    sweep_tasks,
)

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")


def stand_in(task: SweepTask) -> dict[str, Any]:
    """A search stand-in: figures derived from the task, one infeasible target, one bug."""
    time.sleep(0.1)  # long enough that both workers get work
    if task.network == "alexnet" and task.target.value == 0.3:
        raise SearchError("latency target 0.3 x dense is infeasible; closest: 0.41 x dense")
    if task.network == "resnet18" and task.device == "rpi4" and task.target.mode == "pareto":
        raise ZeroDivisionError("a bug in the task")
    dense = 0.010 if task.network == "alexnet" else 0.020
    frac = task.target.value if task.target.mode == "latency" else 0.7
    latency = dense * (frac or 0.7)
    result = {"latency_s": latency, "dense_latency_s": dense, "loss": 1.0 - frac,
              "model_bytes": 1000.0 * frac, "search_s": 0.001, "layers": [], "pareto": []}
    return result_document(task, task.network, f"{task.device}@1", result,
                           target=latency * 1e3 if task.target.mode == "latency" else None,
                           dense_layers={"conv1": dense / 2})


@pytest.fixture(scope="module", autouse=True)
def _stand_in_by_value() -> Iterator[None]:
    """Workers cannot import test modules: ship the stand-in by value."""
    module = sys.modules.get(__name__)
    if module is not None:
        cloudpickle.register_pickle_by_value(module)
    yield
    if module is not None:
        cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """An existing two-worker cluster on 127.0.0.1 (what --address points at)."""
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 host="127.0.0.1", dashboard_address=None,
                                 silence_logs=logging.WARNING)
    try:
        yield c
    finally:
        c.close()


# --------------------------------------------------------------------------- tasks


def test_tasks_are_the_cross_product() -> None:
    tasks = sweep_tasks(["alexnet", "resnet18"], ["sd855", "rpi4"],
                        latency_fractions=[0.5, 0.3], max_losses=[0.1], pareto=True)
    assert len(tasks) == 2 * 2 * 4
    assert len({t.key for t in tasks}) == len(tasks)
    assert {t.target.spec for t in tasks} == {"latency:0.5", "latency:0.3", "loss:0.1",
                                               "pareto"}
    assert tasks[0].key == "alexnet__sd855__latency-0.5"
    gpu = sweep_tasks(["alexnet"], ["sd855"], pareto=True, unit="gpu", threads=4)
    assert gpu[0].key == "alexnet__sd855__pareto__gpu__4t"
    assert parse_target("latency:0.25") == SweepTarget("latency", 0.25)
    assert parse_target(" Pareto ") == SweepTarget("pareto")


@pytest.mark.parametrize(("kwargs", "says"), [
    ({}, "no targets"),
    ({"latency_fractions": [0.0]}, "(0, 1]"),
    ({"latency_fractions": [1.5]}, "(0, 1]"),
    ({"max_losses": [-0.1]}, ">= 0"),
    ({"max_losses": [float("nan")]}, "finite"),
    ({"pareto": True, "networks": ["lenet9"]}, "unknown network 'lenet9'"),
    ({"pareto": True, "networks": ["missing.onnx"]}, "not found"),
    ({"pareto": True, "devices": ["pixel99"]}, "unknown device 'pixel99'"),
    ({"pareto": True, "threads": 0}, "threads"),
    ({"pareto": True, "unit": "npu"}, "unit"),
    ({"pareto": True, "networks": []}, "at least one network"),
])
def test_bad_requests_fail_before_any_cluster(kwargs: dict[str, Any], says: str) -> None:
    args = {"networks": ["alexnet"], "devices": ["sd855"], **kwargs}
    with pytest.raises(GrimsimError) as info:
        sweep_tasks(args.pop("networks"), args.pop("devices"), **args)
    assert says in str(info.value)


def test_cli_number_lists() -> None:
    assert parse_numbers("0.5, 0.3,", "--latency-fractions") == [0.5, 0.3]
    assert parse_numbers(None, "--max-loss") == []
    with pytest.raises(GrimsimError, match="--max-loss: 'x' is not a number"):
        parse_numbers("0.1,x", "--max-loss")


def test_bad_targets_and_colliding_files(tmp_path: Path) -> None:
    for text in ("latency", "latency:x", "speed:2", "pareto:1"):
        with pytest.raises(GrimsimError):
            parse_target(text)
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "net.onnx").write_bytes(b"")
    with pytest.raises(GrimsimError, match="same file"):
        sweep_tasks([str(tmp_path / "a" / "net.onnx"), str(tmp_path / "b" / "net.onnx")],
                    ["sd855"], pareto=True)


def test_bad_address_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = sweep_tasks(["alexnet"], ["sd855"], pareto=True)
    with pytest.raises(GrimsimError, match="must look like"):
        run_sweep(tasks, tmp_path / "a", address="127.0.0.1:8786", task_fn=stand_in)
    monkeypatch.setattr("grimsim.sweep.CONNECT_TIMEOUT_S", 1.0)
    t0 = time.perf_counter()
    with pytest.raises(GrimsimError, match="cannot reach the Dask scheduler"):
        run_sweep(tasks, tmp_path / "b", address="tcp://127.0.0.1:9", task_fn=stand_in)
    assert time.perf_counter() - t0 < 20
    (tmp_path / "file").write_text("x")
    with pytest.raises(GrimsimError, match="not a directory"):
        run_sweep(tasks, tmp_path / "file", task_fn=stand_in)


# --------------------------------------------------------------------------- on a cluster


def _check_folder(out: Path, index: dict[str, Any], n_tasks: int) -> list[dict[str, Any]]:
    on_disk = json.loads((out / "index.json").read_text())
    assert on_disk["tasks"] == index["tasks"] and on_disk["format"] == INDEX_FORMAT
    assert len(index["tasks"]) == n_tasks
    ok = [e for e in index["tasks"] if e["status"] == "ok"]
    files = sorted(p.name for p in out.glob("*.json") if p.name != "index.json")
    assert files == sorted(e["file"] for e in ok)
    for e in ok:
        doc = json.loads((out / e["file"]).read_text())
        res = doc["result"]
        # the index's key figures are the file's
        assert e["latency_ms"] == pytest.approx(res["latency_s"] * 1e3)
        assert e["speedup"] == pytest.approx(res["dense_latency_s"] / res["latency_s"])
        assert e["loss"] == res["loss"]
        # what the explorer reads from a saved result
        for key in ("network", "device", "unit", "threads", "mode", "target", "result",
                    "dense_layers", "_meta"):
            assert key in doc
        assert doc["model"] == e["network"] and doc["device_name"] == e["device"]
    return ok


def test_local_cluster_sweep_keeps_going_past_failures(tmp_path: Path) -> None:
    seen: list[str] = []
    index = sweep(["alexnet", "resnet18"], ["sd855", "rpi4"], tmp_path / "res",
                  latency_fractions=[0.5, 0.3], pareto=True, task_fn=stand_in,
                  progress=lambda e: seen.append(e["key"]))
    ok = _check_folder(tmp_path / "res", index, 12)
    assert index["counts"] == {"ok": 9, "error": 3, "pending": 0}
    assert sorted(seen) == sorted(e["key"] for e in index["tasks"])
    failed = {e["key"]: e for e in index["tasks"] if e["status"] == "error"}
    assert set(failed) == {"alexnet__sd855__latency-0.3", "alexnet__rpi4__latency-0.3",
                           "resnet18__rpi4__pareto"}
    assert "SearchError: latency target 0.3" in failed["alexnet__sd855__latency-0.3"]["error"]
    assert failed["alexnet__sd855__latency-0.3"]["file"] is None
    bug = failed["resnet18__rpi4__pareto"]
    assert bug["error"].startswith("ZeroDivisionError") and "stand_in" in bug["traceback"]
    # a local cluster of two worker processes bound to 127.0.0.1, both used
    workers = {e["worker"] for e in index["tasks"]}
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
    half = next(e for e in ok if e["key"] == "resnet18__sd855__latency-0.5")
    assert half["speedup"] == pytest.approx(2.0) and half["target_value"] == pytest.approx(10.0)


def test_existing_cluster_by_address(tmp_path: Path, cluster: Any) -> None:
    tasks = sweep_tasks(["resnet18"], ["sd855", "rpi4"], latency_fractions=[0.5],
                        max_losses=[0.2])
    index = run_sweep(tasks, tmp_path, address=cluster.scheduler_address, task_fn=stand_in)
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    _check_folder(tmp_path, index, 4)
    assert index["counts"]["ok"] == 4 and index["cluster"] == cluster.scheduler_address
    assert {e["worker"] for e in index["tasks"]} <= set(cluster.scheduler_info["workers"])
    # the cluster outlives the sweep: it is the caller's
    assert len(cluster.scheduler_info["workers"]) == 2


def test_real_search_on_the_cluster(tmp_path: Path, cluster: Any) -> None:
    from grimsim import api

    if not hasattr(api, "search"):
        pytest.skip("grimsim.api.search is not there yet")
    from grimsim.search import SearchResult

    tasks = sweep_tasks(["alexnet"], ["sd855"], latency_fractions=[0.5], pareto=True)
    index = run_sweep(tasks, tmp_path, address=cluster.scheduler_address)
    assert index["counts"] == {"ok": 2, "error": 0, "pending": 0}, index["tasks"]
    for e in index["tasks"]:
        doc = json.loads((tmp_path / e["file"]).read_text())
        result = SearchResult.from_dict(doc["result"])
        assert result.to_dict() == doc["result"]
        assert doc["network"] == "alexnet" and doc["device"].startswith("sd855")
        if e["mode"] == "latency":
            assert result.latency_s * 1e3 <= doc["target"] * (1 + 1e-9)
            # the target is half the dense latency the search itself reports
            assert doc["target"] == pytest.approx(0.5 * result.dense_latency_s * 1e3, rel=1e-6)
            assert e["speedup"] >= 2.0 - 1e-9
        else:
            assert len(result.pareto) >= 2
