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
    # thread scaling: every 2-thread GEMM row timed ours at one thread in the same rounds
    for r in rows:
        if r.threads == 2 and r.kernel != "winograd":
            assert r.one_thread_time_s is not None and r.one_thread_time_min_s is not None
            assert 0 < r.one_thread_time_min_s <= r.one_thread_time_s
        else:
            assert r.one_thread_time_s is None
    with pytest.raises(ValueError, match="statistic"):
        bench.summarize(rows, statistic="mean_s")


def _row(kernel: str, threads: int, time_s: float, one_thread_time_s: float | None = None
         ) -> bench.BenchRow:
    return bench.BenchRow(
        kernel=kernel, spec="bcr:16x32:0.75" if kernel == "bcr" else "dense", M=64, K=576,
        N=3136, sparsity=0.75, block="16x32", threads=threads, time_s=time_s,
        numpy_dense_time_s=1.0, speedup_vs_numpy_dense=1.0 / time_s, scipy_csr_time_s=None,
        onnxruntime_conv_time_s=None, max_abs_err=0.0, time_min_s=time_s,
        numpy_dense_time_min_s=1.0, scipy_csr_time_min_s=None, onnxruntime_conv_time_min_s=None,
        format_bytes=1, prepare_s=0.0, prepared_bytes=1, one_thread_time_s=one_thread_time_s,
        one_thread_time_min_s=one_thread_time_s)


def test_thread_scaling_uses_the_one_thread_time_of_the_same_rounds() -> None:
    # the 1-thread row ran in a slow spell (0.5 s); the 2-thread row's own rounds saw 0.36 s
    rows = [_row("bcr", 1, 0.5), _row("bcr", 2, 0.2, one_thread_time_s=0.36)]
    for statistic in ("median_s", "min_s"):
        assert bench.summarize(rows, statistic)["two_thread_scaling_median"] == pytest.approx(1.8)
    # rows recorded without it (older JSON) fall back to the separate 1-thread row
    rows = [_row("bcr", 1, 0.5), _row("bcr", 2, 0.2)]
    assert bench.summarize(rows)["two_thread_scaling_median"] == pytest.approx(2.5)


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
