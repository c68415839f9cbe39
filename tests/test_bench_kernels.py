"""bench-kernels on tiny shapes: every row is correct, complete and ratio-consistent."""

from __future__ import annotations

import json
import statistics

import pytest

from grimsim.execute import bench

pytest.importorskip("scipy")
pytest.importorskip("threadpoolctl")

ROW_FIELDS = {"kernel", "M", "K", "N", "sparsity", "block", "threads", "time_s",
              "numpy_dense_time_s", "speedup_vs_numpy_dense", "scipy_csr_time_s",
              "max_abs_err"}


def test_rows_cover_every_kernel_and_are_correct() -> None:
    rows = bench.bench_kernels([(32, 288, 64), (64, 64, 1)], (0.5, 0.9), (1, 2),
                               min_time_s=0.001, rounds=1)
    kernels = {(r.kernel, r.M) for r in rows}
    # conv-shaped row (K = 32*9, N = 8x8): Winograd and pattern too; the FC row has neither
    for name in ("dense", "winograd", "unstructured", "bcr", "nm", "pattern"):
        assert (name, 32) in kernels
    assert ("winograd", 64) not in kernels and ("pattern", 64) not in kernels
    for r in rows:
        assert r.max_abs_err < 1e-3 * max(1, r.K ** 0.5), r
        assert r.time_s > 0 and r.numpy_dense_time_s > 0
        assert r.speedup_vs_numpy_dense == pytest.approx(r.numpy_dense_time_s / r.time_s)
        # the fastest call is never slower than the typical one
        assert 0 < r.time_min_s <= r.time_s and 0 < r.numpy_dense_time_min_s <= r.numpy_dense_time_s
        if r.scipy_csr_time_s is not None:
            assert r.scipy_csr_time_min_s is not None
            assert r.scipy_csr_time_min_s <= r.scipy_csr_time_s
        if r.kernel == "bcr":
            assert r.block == "16x32" and r.prepared_bytes > 0
            assert r.scipy_csr_time_s is not None
    bcr90 = [r for r in rows if r.spec == "bcr:16x32:0.9"]
    assert all(0.85 <= r.sparsity <= 0.95 for r in bcr90)
    summary = bench.summarize(rows)
    assert summary["bcr_vs_scipy_csr_median"] is not None
    fastest = bench.summarize(rows, statistic="min_s")
    assert fastest.keys() == summary.keys()
    dense = [r for r in rows if r.threads == 1 and r.kernel == "dense" and r.N >= 32]
    assert fastest["dense_vs_numpy_median"] == pytest.approx(
        statistics.median(r.numpy_dense_time_min_s / r.time_min_s for r in dense))
    with pytest.raises(ValueError, match="statistic"):
        bench.summarize(rows, statistic="mean_s")


def test_cli_json_contract(capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    from grimsim.cli import main

    monkeypatch.setattr(bench, "SHAPES", ((16, 144, 16), (32, 32, 1), (32, 32, 1),
                                          (32, 32, 1), (32, 32, 1), (32, 32, 1)))
    assert main(["bench-kernels", "--quick", "--threads", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] and all(ROW_FIELDS <= set(r) for r in doc["rows"])
    assert doc["summary_fastest_call"].keys() == doc["summary"].keys()
    meta = doc["_meta"]
    assert meta["blas"] and "architecture" in meta["blas"][0]
    assert meta["kernels"]["simd"] in ("avx512", "avx2", "sse2", "neon", "scalar")
