"""The dense C++ kernels (grimsim._kernels) against numpy: GEMM, Winograd, im2col conv,
depthwise, pooling; argument validation; the timing harness and host microbenchmarks."""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim import _kernels as gk

sys.path.insert(0, str(Path(__file__).parent))
from pool_reference import pool_reference

THREADS = st.integers(1, 3)


def rng_arrays(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, size=s).astype(np.float32) for s in shapes]


def assert_gemm_close(
    y: np.ndarray, w: np.ndarray, x: np.ndarray, bias: np.ndarray | None = None
) -> None:
    """Float32 accumulation error is bounded by ~K * eps * (|w| @ |x|); allow 16x that."""
    ref = w.astype(np.float64) @ x.astype(np.float64)
    if bias is not None:
        ref += bias[:, None]
    bound = 16 * np.finfo(np.float32).eps * (w.shape[1] + 1) * (np.abs(w) @ np.abs(x)) + 1e-6
    assert y.shape == ref.shape
    assert y.dtype == np.float32
    assert np.all(np.abs(y - ref) <= bound), float(np.max(np.abs(y - ref) - bound))


def conv_ref(x, w, bias=None, stride=(1, 1), pad=(0, 0), dilation=(1, 1), groups=1):
    """Direct convolution in float64 (cross-correlation, NCHW, batch 1)."""
    H, W = x.shape[2:]
    cout, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    xp = np.pad(x[0].astype(np.float64), ((0, 0), (ph, ph), (pw, pw)))
    ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((cout, ho, wo))
    mg = cout // groups
    for g in range(groups):
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[g * cg:(g + 1) * cg,
                           ky * dh:ky * dh + sh * (ho - 1) + 1:sh,
                           kx * dw:kx * dw + sw * (wo - 1) + 1:sw]
                out[g * mg:(g + 1) * mg] += np.einsum(
                    "oc,chw->ohw", w[g * mg:(g + 1) * mg, :, ky, kx].astype(np.float64), patch)
    if bias is not None:
        out += bias[:, None, None]
    return out[None]


def assert_conv_close(y: np.ndarray, ref: np.ndarray, rtol: float = 2e-5) -> None:
    assert y.shape == ref.shape, (y.shape, ref.shape)
    assert y.dtype == np.float32
    scale = 1.0 + np.max(np.abs(ref))
    assert np.max(np.abs(y - ref)) <= rtol * scale, np.max(np.abs(y - ref)) / scale


# ----------------------------------------------------------------------------------- GEMM --

@given(M=st.integers(1, 70), Kd=st.integers(0, 300), N=st.integers(1, 70), threads=THREADS,
       seed=st.integers(0, 2**16))
def test_dense_gemm_matches_numpy(M, Kd, N, threads, seed):
    w, x = rng_arrays(seed, (M, Kd), (Kd, N))
    assert_gemm_close(gk.dense_gemm(w, x, threads), w, x)


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 1000, 1), (130, 513, 1), (6, 16, 16),
                                   (13, 257, 49), (64, 576, 33), (29, 70, 300), (5, 0, 200),
                                   (30, 1024, 49)])  # W rows 4 KiB apart: packed at any N
@pytest.mark.parametrize("threads", [1, 2])
def test_dense_gemm_edge_shapes(shape, threads):
    M, Kd, N = shape
    w, x = rng_arrays(M * 7 + N, (M, Kd), (Kd, N))
    assert_gemm_close(gk.dense_gemm(w, x, threads), w, x)


def test_dense_gemm_every_simd_tier(monkeypatch):
    """GRIMSIM_SIMD caps the dispatcher, so the fallback tiers run on a big machine too."""
    best = gk.simd_level()
    assert best in {"avx512", "avx2", "sse2", "neon", "scalar"}
    tiers = {"avx512": ["avx512", "avx2", "sse2"], "avx2": ["avx2", "sse2"]}.get(best, [best])
    w, x = rng_arrays(3, (37, 91), (91, 45))
    for tier in tiers:
        monkeypatch.setenv("GRIMSIM_SIMD", tier)
        assert gk.simd_level() == tier
        assert_gemm_close(gk.dense_gemm(w, x, 2), w, x)
        assert_gemm_close(gk.dense_gemm(w, x[:, :1].copy(), 2), w, x[:, :1])
        # GEMV rows ending in every tail length a tier's masked or scalar loads handle
        for k in (1, 3, 7, 8, 9, 15, 16, 17, 23, 31, 33, 47):
            wk, xk = rng_arrays(k, (13, k), (k, 1))
            assert_gemm_close(gk.dense_gemm(wk, xk, 1), wk, xk)


def test_dense_gemm_from_python_threads():
    """The GIL is released; concurrent calls from Python threads stay correct."""
    w, x = rng_arrays(5, (96, 200), (200, 80))
    results: list[np.ndarray] = []

    def work():
        results.append(gk.dense_gemm(w, x, 2))

    workers = [threading.Thread(target=work) for _ in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert len(results) == 3
    for y in results:
        assert_gemm_close(y, w, x)


# ------------------------------------------------------------------------------- Winograd --

@given(C=st.integers(1, 12), cout=st.integers(1, 20), H=st.integers(1, 17), W=st.integers(1, 17),
       pad=st.integers(0, 2), tile=st.sampled_from([2, 4]), threads=THREADS,
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_winograd_matches_direct_conv(C, cout, H, W, pad, tile, threads, bias, seed):
    if H + 2 * pad < 3 or W + 2 * pad < 3:
        with pytest.raises(ValueError, match=r"smaller than|larger than"):
            gk.winograd_conv3x3(*rng_arrays(seed, (1, C, H, W), (cout, C, 3, 3)), pad=pad)
        return
    x, w, b = rng_arrays(seed, (1, C, H, W), (cout, C, 3, 3), (cout,))
    packed = gk.winograd_pack_weights(w, threads, output_tile=tile)
    assert packed.output_tile == tile and packed.in_channels == C and packed.out_channels == cout
    y = gk.winograd_conv3x3(x, packed, b if bias else None, pad, threads)
    assert_conv_close(y, conv_ref(x, w, b if bias else None, pad=(pad, pad)))


def test_winograd_raw_weights_asymmetric_pad_and_preferred_tile():
    x, w, b = rng_arrays(11, (1, 6, 9, 14), (10, 6, 3, 3), (10,))
    y = gk.winograd_conv3x3(x, w, b, (0, 2), 2)
    assert_conv_close(y, conv_ref(x, w, b, pad=(0, 2)))
    # F(2,3) on tiny maps (7x7), F(4,3) on larger ones.
    assert gk.winograd_preferred_tile(7, 7) == 2
    assert gk.winograd_preferred_tile(56, 56) == 4


@pytest.mark.parametrize(("C", "H"), [(64, 14), (32, 7)])
def test_winograd_network_sized_layer(C, H):
    x, w = rng_arrays(C + H, (1, C, H, H), (C, C, 3, 3))
    tile = gk.winograd_preferred_tile(H, H)
    y = gk.winograd_conv3x3(x, gk.winograd_pack_weights(w, 2, tile), None, 1, 2)
    assert_conv_close(y, conv_ref(x, w, pad=(1, 1)), rtol=1e-4 if tile == 4 else 2e-5)


# -------------------------------------------------------------------------- im2col / conv --

conv_cases = st.tuples(
    st.integers(1, 3), st.integers(1, 3),  # kernel h, w
    st.integers(1, 3), st.integers(1, 3),  # stride
    st.integers(0, 2), st.integers(0, 2),  # pad
    st.integers(1, 2), st.integers(1, 2),  # dilation
)


@given(case=conv_cases, groups=st.sampled_from([1, 2, 3]), cg=st.integers(1, 4),
       mg=st.integers(1, 5), H=st.integers(1, 12), W=st.integers(1, 12), threads=THREADS,
       seed=st.integers(0, 2**16))
def test_conv2d_gemm_matches_direct_conv(case, groups, cg, mg, H, W, threads, seed):
    kh, kw, sh, sw, ph, pw, dh, dw = case
    C, cout = cg * groups, mg * groups
    x, w, b = rng_arrays(seed, (1, C, H, W), (cout, cg, kh, kw), (cout,))
    if H + 2 * ph < dh * (kh - 1) + 1 or W + 2 * pw < dw * (kw - 1) + 1:
        with pytest.raises(ValueError, match="larger than the padded input"):
            gk.conv2d_gemm(x, w.reshape(cout, -1), (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups)
        return
    y = gk.conv2d_gemm(x, w.reshape(cout, -1), (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, b,
                      threads)
    assert_conv_close(y, conv_ref(x, w, b, (sh, sw), (ph, pw), (dh, dw), groups))


def _im2col_ref(x, kh, kw, sh, sw, ph, pw, dh, dw):
    C, H, W = x.shape[1:]
    xp = np.pad(x[0], ((0, 0), (ph, ph), (pw, pw)))
    ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    want = np.empty((C, kh, kw, ho, wo), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            want[:, ky, kx] = xp[:, ky * dh:ky * dh + sh * (ho - 1) + 1:sh,
                                 kx * dw:kx * dw + sw * (wo - 1) + 1:sw]
    return want.reshape(C * kh * kw, ho * wo)


# W up to 40: outputs both narrow (the gather table, up to 8 or strided 16 wide) and wider
@given(case=conv_cases, C=st.integers(1, 6), H=st.integers(1, 12), W=st.integers(1, 40),
       seed=st.integers(0, 2**16))
def test_im2col_matches_sliding_windows(case, C, H, W, seed):
    kh, kw, sh, sw, ph, pw, dh, dw = case
    if H + 2 * ph < dh * (kh - 1) + 1 or W + 2 * pw < dw * (kw - 1) + 1:
        return
    (x,) = rng_arrays(seed, (1, C, H, W))
    cols = gk.im2col(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), 2)
    np.testing.assert_array_equal(cols, _im2col_ref(x, kh, kw, sh, sw, ph, pw, dh, dw))
    # into a caller's buffer (reused across calls): the same values, that very array back
    out = np.full(cols.shape, np.nan, np.float32)
    back = gk.im2col(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), 1, out)
    assert back is out
    np.testing.assert_array_equal(out, cols)



# Wide rows: stride-1 rows go through the 4-vector copy and its overlapping last vectors,
# stride-2 rows through the de-interleaving copy (every remainder of 16 lanes)
@pytest.mark.parametrize("W", [16, 17, 47, 63, 64, 65, 79, 80, 81, 112, 130, 200])
@pytest.mark.parametrize(("k", "s", "p"), [(3, 1, 1), (1, 1, 0), (3, 2, 1), (7, 2, 3), (3, 3, 0)])
def test_im2col_wide_rows(W, k, s, p):
    (x,) = rng_arrays(W, (1, 2, 9, W))
    cols = gk.im2col(x, (k, k), (s, s), (p, p), (1, 1), 1)
    np.testing.assert_array_equal(cols, _im2col_ref(x, k, k, s, s, p, p, 1, 1))


def test_conv_row_copies_every_simd_tier(monkeypatch):
    """im2col's row copies and the depthwise phase copy in every tier (lane counts 4-16)."""
    best = gk.simd_level()
    tiers = {"avx512": ["avx512", "avx2", "sse2"], "avx2": ["avx2", "sse2"]}.get(best, [best])
    x, w = rng_arrays(11, (1, 2, 7, 75), (2, 1, 3, 3))
    for tier in tiers:
        monkeypatch.setenv("GRIMSIM_SIMD", tier)
        for s, p in ((1, 1), (2, 1), (2, 0)):
            cols = gk.im2col(x, (3, 3), (s, s), (p, p), (1, 1), 1)
            np.testing.assert_array_equal(cols, _im2col_ref(x, 3, 3, s, s, p, p, 1, 1))
            y = gk.depthwise_conv2d(x, w, (s, s), (p, p), (1, 1), None, 1)
            assert_conv_close(y, conv_ref(x, w, None, (s, s), (p, p), (1, 1), 2))

# W up to 40: stride-2 phase rows of 16+ floats take the vector (deinterleaving) copy
@given(case=conv_cases, C=st.integers(1, 8), H=st.integers(1, 14), W=st.integers(1, 40),
       threads=THREADS, bias=st.booleans(), seed=st.integers(0, 2**16))
def test_depthwise_matches_direct_conv(case, C, H, W, threads, bias, seed):
    kh, kw, sh, sw, ph, pw, dh, dw = case
    if H + 2 * ph < dh * (kh - 1) + 1 or W + 2 * pw < dw * (kw - 1) + 1:
        return
    x, w, b = rng_arrays(seed, (1, C, H, W), (C, 1, kh, kw), (C,))
    y = gk.depthwise_conv2d(x, w, (sh, sw), (ph, pw), (dh, dw), b if bias else None, threads)
    assert_conv_close(y, conv_ref(x, w, b if bias else None, (sh, sw), (ph, pw), (dh, dw), C))



# MobileNet's stride-2 planes (3x3 pad 1, 5x5 pad 2; even and odd widths): rows long enough
# for several vectors of the deinterleaving copy, each phase with its own first column
@pytest.mark.parametrize(("k", "pad", "H", "W"), [(3, 1, 112, 112), (3, 1, 57, 57),
                                                   (5, 2, 28, 28), (3, 0, 15, 47)])
@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_stride_2_planes(k, pad, H, W, threads):
    x, w, b = rng_arrays(7, (1, 3, H, W), (3, 1, k, k), (3,))
    y = gk.depthwise_conv2d(x, w, (2, 2), (pad, pad), (1, 1), b, threads)
    assert_conv_close(y, conv_ref(x, w, b, (2, 2), (pad, pad), (1, 1), 3))

# The phase planes' zero padding is written once per run of channels (in two placements,
# picked per plane): each channel copies in only its input, which must never reach the
# padding another channel reads. Channels far apart in value show any leak.
@pytest.mark.parametrize(("H", "W", "s", "pad"), [(14, 14, 2, 1), (7, 7, 1, 1), (15, 9, 2, 0),
                                                  (28, 28, 1, 2)])
@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_channels_keep_their_padding(H, W, s, pad, threads):
    C = 67
    x, w, b = rng_arrays(5, (1, C, H, W), (C, 1, 3, 3), (C,))
    x = (x + 100.0 * np.arange(C, dtype=np.float32)[None, :, None, None]).astype(np.float32)
    y = gk.depthwise_conv2d(x, w, (s, s), (pad, pad), (1, 1), b, threads)
    assert_conv_close(y, conv_ref(x, w, b, (s, s), (pad, pad), (1, 1), C))


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pt, pl = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    # widths up to 40: stride-2 rows of 8+ outputs take the vector (deinterleaving) path
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 40))
    # floor mode, plus ceil mode's extra window when it still starts inside the input
    oh = max(1, (h + 2 * pt - kh) // sh + 1 + draw(st.integers(0, 1)))
    ow = max(1, (w + 2 * pl - kw) // sw + 1 + draw(st.integers(0, 1)))
    if (oh - 1) * sh - pt >= h or (ow - 1) * sw - pl >= w:
        oh, ow = max(1, (h + 2 * pt - kh) // sh + 1), max(1, (w + 2 * pl - kw) // sw + 1)
    if (oh - 1) * sh - pt >= h or (ow - 1) * sw - pl >= w or h + 2 * pt < kh or w + 2 * pl < kw:
        oh = ow = 1
    return (kh, kw), (sh, sw), (pt, pl), (oh, ow), h, w


@given(case=pool_cases(), C=st.integers(1, 5), kind=st.sampled_from(["max", "avg"]),
       threads=THREADS, seed=st.integers(0, 2**16))
def test_pool2d_matches_windows(case, C, kind, threads, seed):
    kernel, stride, padding, out_hw, h, w = case
    (x,) = rng_arrays(seed, (1, C, h, w))
    y = gk.pool2d(x, kernel, stride, padding, out_hw, kind=kind, threads=threads)
    assert y.shape == (1, C, *out_hw) and y.dtype == np.float32
    np.testing.assert_allclose(y, pool_reference(x, kernel, stride, padding, out_hw, kind),
                               rtol=1e-6, atol=1e-6)
    out = np.full_like(y, 7.0)
    assert gk.pool2d(x, kernel, stride, padding, out_hw, kind=kind, out=out) is not None
    np.testing.assert_array_equal(out, y)  # written in place, every element


def test_pool2d_propagates_nan_and_inf():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 0], x[0, 0, 3, 3] = np.nan, np.inf
    y = gk.pool2d(x, (2, 2), (2, 2), (0, 0), (2, 2), kind="max")
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 1, 1] == np.inf and y[0, 0, 0, 1] == 0.0
    a = gk.pool2d(x, (2, 2), (2, 2), (0, 0), (2, 2), kind="avg")
    assert np.isnan(a[0, 0, 0, 0]) and a[0, 0, 1, 1] == np.inf
    # the same through the vector paths: a wide stride-2 row and a stride-1 plane
    wide = np.zeros((1, 1, 3, 40), np.float32)
    wide[0, 0, 1, 17] = np.nan
    y = gk.pool2d(wide, (3, 3), (2, 2), (0, 0), (1, 19), kind="max")
    # only the window at 16..18 holds column 17
    assert np.isnan(y[0, 0, 0, 8]) and np.isnan(y[0, 0, 0]).sum() == 1
    y = gk.pool2d(wide, (3, 3), (1, 1), (1, 1), (3, 40), kind="max")
    assert np.isnan(y[0, 0, :, 16:19]).all() and not np.isnan(y[0, 0, :, 19:]).any()
    # and one window over the whole plane (a vector reduction)
    planes = np.ones((1, 3, 7, 7), np.float32)
    planes[0, 1, 6, 6] = np.nan
    y = gk.pool2d(planes, (7, 7), (1, 1), (0, 0), (1, 1), kind="max")
    assert y[0, 0, 0, 0] == 1.0 and np.isnan(y[0, 1, 0, 0]) and y[0, 2, 0, 0] == 1.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kernel": (0, 3)}, "kernel and stride must be >= 1"),
    ({"stride": (1, 0)}, "kernel and stride must be >= 1"),
    ({"padding": (3, 0)}, "padding must be in"),
    ({"padding": (-1, 0)}, "padding must be in"),
    ({"out_hw": (9, 4)}, "start past the input"),
    ({"out_hw": (0, 4)}, "output must be >= 1x1"),
    ({"kind": "median"}, "'max' or 'avg'"),
    ({"threads": 0}, "threads must be >= 1"),
    ({"out": np.zeros((1, 2, 4, 3), np.float32)}, "out has shape"),
    ({"out": np.zeros((1, 2, 4, 4), np.float64)}, "float32"),
    ({"out": np.zeros((1, 2, 4, 8), np.float32)[..., ::2]}, "C-contiguous"),
])
def test_pool2d_rejects_bad_arguments(kwargs, message):
    x = np.zeros((1, 2, 8, 8), np.float32)
    args = {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1), "out_hw": (4, 4),
            **kwargs}
    with pytest.raises(ValueError, match=message):
        gk.pool2d(x, **args)
    with pytest.raises(ValueError, match="batch 1"):
        gk.pool2d(np.zeros((2, 2, 8, 8), np.float32), (3, 3), (2, 2), (1, 1), (4, 4))


# ----------------------------------------------------------------------------- validation --

def _w_x():
    return rng_arrays(1, (4, 5), (5, 3))


@pytest.mark.parametrize(("call", "message"), [
    (lambda w, x: gk.dense_gemm(w.astype(np.float64), x), "float32"),
    (lambda w, x: gk.dense_gemm(w, x.astype(np.int32)), "float32"),
    (lambda w, x: gk.dense_gemm(np.asfortranarray(w), x), "C-contiguous"),
    (lambda w, x: gk.dense_gemm(w, np.ones((5, 6), np.float32)[:, ::2]), "C-contiguous"),
    (lambda w, x: gk.dense_gemm(w[None], x), "2 dimensions"),
    (lambda w, x: gk.dense_gemm(w, x[:4]), "needs K=5 rows"),
    (lambda w, x: gk.dense_gemm(w, x, 0), "threads must be >= 1"),
    (lambda w, x: gk.dense_gemm(w, x, -2), "threads must be >= 1"),
    (lambda w, x: gk.bench_dense(w, x, 1, min_time_s=-1.0), "min_time_s"),
    (lambda w, x: gk.bench_dense(w, x, 1, max_reps=0), "max_reps"),
    (lambda w, x: gk.bench_dense(w, x, 1, flush_cache_bytes=-5), "flush_cache_bytes"),
])
def test_dense_rejects_bad_arguments(call, message):
    w, x = _w_x()
    with pytest.raises(ValueError, match=message):
        call(w, x)


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _conv_inputs():
    return rng_arrays(2, (1, 4, 6, 6), (8, 4, 3, 3), (8,))


@pytest.mark.parametrize(("call", "message"), [
    (lambda x, w, b: gk.conv2d_gemm(x.astype(np.float64), w.reshape(8, -1), 3), "float32"),
    (lambda x, w, b: gk.conv2d_gemm(np.concatenate([x, x]), w.reshape(8, -1), 3), "batch 1"),
    (lambda x, w, b: gk.conv2d_gemm(x[0], w.reshape(8, -1), 3), "4 dimensions"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), 5), r"expected \(Cout, 100\)"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), 7), "larger than the padded input"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), 3, stride=0), "stride"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), 3, pad=-1), "padding"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), 3, dilation=(1, 0)), "dilation"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), 3, groups=3), "divisible by groups"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), 3, bias=b[:3]), "bias has shape"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), 3, bias=b.astype(np.float16)),
     "float32"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), "3"), "int or a pair"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), (3, 3, 3)), "int or a pair"),
    (lambda x, w, b: gk.conv2d_gemm(x, w.reshape(8, -1), 3, threads=0), "threads"),
    (lambda x, w, b: gk.im2col(x, 3, threads=0), "threads"),
    (lambda x, w, b: gk.im2col(x, 3, out=np.empty((36, 36), np.float32)),
     r"out has shape \(36, 36\), expected \(36, 16\)"),
    (lambda x, w, b: gk.im2col(x, 3, out=np.empty((36, 16))), "out must be float32"),
    (lambda x, w, b: gk.im2col(x, 3, out=np.empty((16, 36), np.float32).T), "C-contiguous"),
    (lambda x, w, b: gk.im2col(x, 3, out=_read_only(np.empty((36, 16), np.float32))),
     "writeable"),
    (lambda x, w, b: gk.im2col(x, 3, out=[[0.0]]), "None or a float32 numpy array"),
    (lambda x, w, b: gk.depthwise_conv2d(x, w), r"expected \(4, 1, kh, kw\)"),
    (lambda x, w, b: gk.depthwise_conv2d(x, np.ascontiguousarray(w[:4, :1]), bias=b),
     "bias has shape"),
    (lambda x, w, b: gk.winograd_conv3x3(x, np.ascontiguousarray(w[:, :, :2, :2])),
     r"\(Cout, C, 3, 3\)"),
    (lambda x, w, b: gk.winograd_conv3x3(x[:, :3].copy(), w), "expect 4"),
    (lambda x, w, b: gk.winograd_conv3x3(x, w, pad=-1), "padding"),
    (lambda x, w, b: gk.winograd_conv3x3(x, w, threads=0), "threads"),
    (lambda x, w, b: gk.winograd_conv3x3(x, "weights"), "winograd_pack_weights"),
    (lambda x, w, b: gk.winograd_pack_weights(w, output_tile=3), "must be 2"),
    (lambda x, w, b: gk.winograd_pack_weights(w[:, :, ::2]), "C-contiguous"),
])
def test_conv_rejects_bad_arguments(call, message):
    x, w, b = _conv_inputs()
    with pytest.raises(ValueError, match=message):
        call(x, w, b)


@pytest.mark.parametrize("threads", [1, 2])
def test_im2col_of_narrow_outputs_over_many_channels(threads):
    """A late layer's small output (2x2 here) over enough channels for several tasks: every
    value lands where the sliding window says, padding is exactly 0 next to inf and NaN
    inputs, and the values are copied bit for bit."""
    (x,) = rng_arrays(7, (1, 1000, 4, 4))
    x[0, 3, 0, 0], x[0, 500, 1, 2], x[0, 999, 3, 3] = np.inf, np.nan, -np.inf
    cols = gk.im2col(x, (3, 3), (2, 2), (1, 1), (1, 1), threads)
    want = _im2col_ref(x, 3, 3, 2, 2, 1, 1, 1, 1)
    assert cols.shape == (9000, 4)
    np.testing.assert_array_equal(cols.view(np.uint32), want.view(np.uint32))
    assert np.count_nonzero(np.isnan(cols)) == np.count_nonzero(np.isnan(want)) > 0


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_im2col_of_wide_outputs_in_runs_of_rows(threads):
    """Wide outputs (13x13, rows copied whole) over enough channels that the rows split into
    several runs, one task each, with rows of 169 floats ending inside a cache line: every
    value where the sliding window says, bit for bit, padding exactly 0."""
    (x,) = rng_arrays(8, (1, 192, 13, 13))
    x[0, 0, 0, 0], x[0, 100, 6, 6], x[0, 191, 12, 12] = np.inf, np.nan, -np.inf
    cols = gk.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1), threads)
    want = _im2col_ref(x, 3, 3, 1, 1, 1, 1, 1, 1)
    assert cols.shape == (192 * 9, 169)  # 1728 rows: 17 runs of 97 (16384 values or more)
    np.testing.assert_array_equal(cols.view(np.uint32), want.view(np.uint32))


def test_im2col_rejects_an_out_overlapping_its_input():
    buf = np.zeros(144 + 576, np.float32)
    x = buf[:144].reshape(1, 4, 6, 6)
    with pytest.raises(ValueError, match="must not overlap the input"):
        gk.im2col(x, 3, out=buf[100:676].reshape(36, 16))
    with pytest.raises(ValueError, match="must not overlap the input"):
        gk.im2col(x, 3, out=buf[:576].reshape(36, 16))
    gk.im2col(x, 3, out=buf[144:].reshape(36, 16))  # right after it: fine


def test_kernel_argument_error_is_a_value_error():
    assert issubclass(gk.KernelArgumentError, ValueError)


# --------------------------------------------------------------- harness / microbenchmarks --

def test_bench_functions_report_timings():
    w, x = rng_arrays(4, (32, 64), (64, 40))
    xc, wc = rng_arrays(5, (1, 8, 10, 10), (8, 8, 3, 3))
    # A long min_time_s: max_reps is what stops the runs.
    opts = {"min_time_s": 10.0, "max_reps": 4}
    results = [
        gk.bench_dense(w, x, 2, warmup=1, flush_cache_bytes=1 << 20, **opts),
        gk.bench_winograd(xc, gk.winograd_pack_weights(wc), None, 1, 1, **opts),
        gk.bench_conv2d_gemm(xc, wc.reshape(8, -1), 3, 1, 1, **opts),
        gk.bench_depthwise(xc, np.ascontiguousarray(wc[:, :1]), 1, 1, **opts),
        gk.time_callable(lambda: w @ x, 1, **opts),
    ]
    for r in results:
        assert r["reps"] == 4
        assert 0.0 < r["min_s"] <= r["median_s"] <= r["max_s"]
    # With no minimum time, the default minimum of 3 timed runs applies.
    assert gk.bench_dense(w, x, 1, min_time_s=0.0, max_reps=100)["reps"] == 3


def test_time_callable_propagates_python_errors():
    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        gk.time_callable(boom, 1, min_time_s=0.0, max_reps=2)


def test_host_microbenchmarks():
    peak = gk.measure_fma_peak(1, 0.05)
    assert peak["gflops"] > 0.1 and peak["clock_ghz"] > 0.1
    assert peak["lanes"] in (1, 4, 8, 16) and peak["simd"] == gk.simd_level()
    bw = gk.measure_read_bandwidth(1 << 22, 2, 0.02)
    assert bw["gbytes_per_s"] > 0.01 and bw["passes"] >= 2 and bw["bytes"] == 1 << 22
    with pytest.raises(ValueError, match="threads"):
        gk.measure_fma_peak(0, 0.1)
    with pytest.raises(ValueError, match="seconds"):
        gk.measure_read_bandwidth(1 << 20, 1, 0.0)
    assert gk.parallel_backend() == "std::thread pool"
    assert gk.hardware_threads() >= 1
    fj = gk.measure_fork_join(2, 0.02)
    # every batch is timed, the median batch is no faster than the fastest, and a fork/join
    # of a pool that works at all costs between a nanosecond and a (generous) millisecond
    assert fj["threads"] == 2 and fj["calls"] >= 5 * 200
    assert 1e-9 < fj["min_s"] <= fj["median_s"] < 1e-3
    with pytest.raises(ValueError, match="threads"):
        gk.measure_fork_join(0, 0.1)
    with pytest.raises(ValueError, match="seconds"):
        gk.measure_fork_join(2, 100.0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kernels_work_in_a_forked_child():
    """The thread pool survives fork (GNU OpenMP would hang here): the child gets a new pool."""
    w, x = rng_arrays(6, (64, 64), (64, 50))
    ref = gk.dense_gemm(w, x, 2)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_gemm_in_child, args=(w, x, queue))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail("dense_gemm hung in a forked child")
    assert child.exitcode == 0
    np.testing.assert_array_equal(queue.get(timeout=5), ref)


def _gemm_in_child(w: np.ndarray, x: np.ndarray, queue: multiprocessing.queues.Queue) -> None:
    queue.put(gk.dense_gemm(w, x, 2))
