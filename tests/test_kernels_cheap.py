"""The C++ cheap-op kernels (permute, resize, softmax, activations, channel affine) against
numpy references, and their argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

k = pytest.importorskip("grimsim._kernels")

SETTINGS = settings(max_examples=60, deadline=None)


def _random(shape: tuple[int, ...], seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@st.composite
def _permutes(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = draw(st.integers(1, 6))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=rank, max_size=rank)))
    perm = tuple(draw(st.permutations(range(rank))))
    return shape, perm


@SETTINGS
@given(_permutes(), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_permute_matches_numpy_transpose(case: tuple[tuple[int, ...], tuple[int, ...]],
                                         threads: int, seed: int) -> None:
    shape, perm = case
    x = _random(shape, seed)
    np.testing.assert_array_equal(k.permute(x, perm, threads=threads), x.transpose(perm))


def test_permute_of_wide_planes_and_long_rows() -> None:
    # tiles of 16 with ragged edges on both axes, and runs longer than a task's chunk
    for shape, perm in [((1, 37, 41, 19), (0, 2, 3, 1)), ((2, 3, 70000), (1, 0, 2)),
                        ((1, 2, 24, 44, 44), (0, 2, 1, 3, 4))]:
        x = _random(shape, 1)
        out = np.empty(x.transpose(perm).shape, dtype=np.float32)
        assert k.permute(x, perm, out=out, threads=2) is not None
        np.testing.assert_array_equal(out, x.transpose(perm))


def _half_pixel(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, None)
    lo = np.minimum(np.floor(f).astype(int), n_in - 1)
    t = np.where(lo >= n_in - 1, 0.0, f - lo)
    return lo, np.minimum(lo + 1, n_in - 1), t


def _bilinear(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    y0, y1, ty = _half_pixel(oh, x.shape[2])
    x0, x1, tx = _half_pixel(ow, x.shape[3])
    xd = x.astype(np.float64)
    top = xd[:, :, y0][..., x0] * (1 - tx) + xd[:, :, y0][..., x1] * tx
    bottom = xd[:, :, y1][..., x0] * (1 - tx) + xd[:, :, y1][..., x1] * tx
    return top * (1 - ty)[:, None] + bottom * ty[:, None]


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 12), st.integers(1, 12),
       st.integers(1, 30), st.integers(1, 30), st.integers(1, 2))
def test_resize_matches_references(n: int, c: int, h: int, w: int, oh: int, ow: int,
                                   threads: int) -> None:
    x = _random((n, c, h, w), h * 100 + w)
    near = k.resize2d(x, (oh, ow), "nearest", threads=threads)
    iy, ix = np.arange(oh) * h // oh, np.arange(ow) * w // ow
    np.testing.assert_array_equal(near, x[:, :, iy][..., ix])
    np.testing.assert_allclose(k.resize2d(x, (oh, ow), "bilinear", threads=threads),
                               _bilinear(x, oh, ow), rtol=1e-5, atol=1e-6)


def test_bilinear_matches_torch_style_upsampling_values() -> None:
    # torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear",
    # align_corners=False) of [[0, 1], [2, 3]], worked out by hand
    x = np.array([[[[0, 1], [2, 3]]]], dtype=np.float32)
    y = k.resize2d(x, (4, 4), "bilinear")
    want = np.array([[0.0, 0.25, 0.75, 1.0], [0.5, 0.75, 1.25, 1.5],
                     [1.5, 1.75, 2.25, 2.5], [2.0, 2.25, 2.75, 3.0]])
    np.testing.assert_allclose(y[0, 0], want, atol=1e-6)


@SETTINGS
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4), st.data(), st.integers(1, 2))
def test_softmax_matches_numpy(shape: list[int], data: st.DataObject, threads: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = _random(tuple(shape), sum(shape), scale=8.0)
    xd = x.astype(np.float64)
    e = np.exp(xd - xd.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(k.softmax(x, axis, threads=threads),
                               e / e.sum(axis=axis, keepdims=True), rtol=2e-6, atol=1e-8)


def test_softmax_of_a_long_row_and_extreme_values() -> None:
    x = _random((3, 70001), 5, scale=30.0)
    x[0, 7] = 1e30  # one dominant logit: every other probability underflows to ~0
    y = k.softmax(x, -1)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)
    assert y[0, 7] == pytest.approx(1.0)
    assert np.isnan(k.softmax(np.array([[1.0, np.nan, 2.0]], dtype=np.float32), -1)).all()


def _unary_refs(x: np.ndarray) -> dict[str, np.ndarray]:
    xd = x.astype(np.float64)
    sig = 1.0 / (1.0 + np.exp(-xd))
    with np.errstate(over="ignore"):
        mish = np.where(xd > 20, xd, xd * np.tanh(np.log1p(np.exp(xd))))
    return {
        "relu": np.maximum(xd, 0), "relu6": np.clip(xd, 0, 6),
        "leakyrelu": np.where(xd < 0, 0.01 * xd, xd), "sigmoid": sig, "tanh": np.tanh(xd),
        "swish": xd * sig, "hardswish": xd * np.clip(xd / 6 + 0.5, 0, 1),
        "hardsigmoid": np.clip(xd / 6 + 0.5, 0, 1),
        "gelu": 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3))),
        "elu": np.where(xd > 0, xd, np.exp(xd) - 1), "mish": mish,
        "exp": np.exp(np.clip(xd, -87, 88)),
    }


@pytest.mark.parametrize("n", [1, 7, 8, 33, 100003])
def test_activations_match_numpy(n: int) -> None:
    x = _random((n,), n, scale=12.0)
    for kind, want in _unary_refs(x).items():
        alpha = 1.0 if kind == "elu" else 0.01
        got = k.unary(x, kind, alpha=alpha, threads=2)
        err = np.max(np.abs(got - want) / (1.0 + np.abs(want)))
        assert err < 5e-7, (kind, err)


def test_tails_on_every_simd_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ragged ends (masked loads on x86, scalar copies elsewhere) on every tier this CPU has;
    a padded view checks that nothing past the end is read into the result or written."""
    best = k.simd_level()
    tiers = {"avx512": ["avx512", "avx2", "sse2"], "avx2": ["avx2", "sse2"]}.get(best, [best])
    for tier in tiers:
        monkeypatch.setenv("GRIMSIM_SIMD", tier)
        for n in (1, 3, 5, 9, 15, 17, 31):
            buf = np.full(n + 16, np.nan, np.float32)
            buf[:n] = _random((n,), n, scale=3.0)
            x = buf[:n]
            out = np.full(n + 16, -7.0, np.float32)
            k.unary(x, "sigmoid", out=out[:n])
            want = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
            np.testing.assert_allclose(out[:n], want, rtol=1e-6, err_msg=f"{tier} n={n}")
            assert np.all(out[n:] == -7.0)
            rows = _random((3, n), n)
            e = np.exp(rows.astype(np.float64) - rows.max(axis=1, keepdims=True))
            np.testing.assert_allclose(k.softmax(rows, -1), e / e.sum(axis=1, keepdims=True),
                                       rtol=1e-5, atol=1e-7, err_msg=f"{tier} n={n}")


def test_activations_keep_nan_and_saturate() -> None:
    x = np.array([np.nan, -1e30, 1e30, -100.0, 100.0], dtype=np.float32)
    sig = k.unary(x, "sigmoid")
    assert np.isnan(sig[0])
    np.testing.assert_allclose(sig[1:], [0, 1, 0, 1], atol=1e-30)
    assert np.isnan(k.unary(x, "relu")[0])
    assert np.all(np.isfinite(k.unary(x[1:], "tanh")))


def test_activation_in_place() -> None:
    x = _random((2, 3, 17), 3)
    want = np.maximum(x, 0)
    assert k.unary(x, "relu", out=x) is not None
    np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize("shape", [(1, 3), (2, 5, 7), (1, 64, 9, 9), (2, 3, 1, 2, 2)])
def test_channel_affine(shape: tuple[int, ...]) -> None:
    x = _random(shape, 2)
    scale, shift = _random((shape[1],), 3), _random((shape[1],), 4)
    view = (1, shape[1]) + (1,) * (len(shape) - 2)
    np.testing.assert_allclose(k.channel_affine(x, scale, shift, threads=2),
                               x * scale.reshape(view) + shift.reshape(view), rtol=1e-6,
                               atol=1e-6)


BAD_CALLS = [
    (lambda: k.permute(np.zeros((2, 3), np.float32), (0, 0)), "permutation"),
    (lambda: k.permute(np.zeros((2, 3), np.float32), (0,)), "one entry per input axis"),
    (lambda: k.permute(np.zeros((2, 3), np.float64), (1, 0)), "float32"),
    (lambda: k.permute(np.zeros((2, 3), np.float32)[:, ::2], (1, 0)), "C-contiguous"),
    (lambda: k.permute(np.zeros((2, 3), np.float32), (1, 0),
                       out=np.zeros((2, 3), np.float32)), "expected (3, 2)"),
    (lambda: k.permute(np.zeros((0, 3), np.float32), (1, 0)), "empty"),
    (lambda: k.permute(np.zeros((1,) * 9, np.float32), tuple(range(9))), "up to 8"),
    (lambda: k.resize2d(np.zeros((2, 3), np.float32), (4, 4)), "(N, C, H, W)"),
    (lambda: k.resize2d(np.zeros((1, 1, 2, 2), np.float32), (0, 4)), "out_hw"),
    (lambda: k.resize2d(np.zeros((1, 1, 2, 2), np.float32), (4, 4), "cubic"), "mode"),
    (lambda: k.softmax(np.zeros((2, 3), np.float32), 2), "out of range"),
    (lambda: k.unary(np.zeros(3, np.float32), "softsign"), "unknown activation"),
    (lambda: k.unary(np.zeros(3, np.float32), "relu", threads=0), "threads"),
    (lambda: k.channel_affine(np.zeros((1, 3, 2), np.float32), np.zeros(2, np.float32),
                              np.zeros(3, np.float32)), "one value per channel"),
    (lambda: k.channel_affine(np.zeros(3, np.float32), np.zeros(3, np.float32),
                              np.zeros(3, np.float32)), "channel axis"),
]


@pytest.mark.parametrize(("call", "message"), BAD_CALLS, ids=[m for _, m in BAD_CALLS])
def test_bad_arguments_are_rejected_with_the_reason(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_outputs_that_partly_overlap_the_input_are_rejected() -> None:
    buf = np.zeros(20, dtype=np.float32)
    with pytest.raises(ValueError, match="overlap"):
        k.unary(buf[:10], "relu", out=buf[5:15])
    with pytest.raises(ValueError, match="into its input"):
        k.softmax(buf[:12].reshape(3, 4), 0, out=buf[:12].reshape(3, 4))


@pytest.mark.parametrize(("shape", "affine"), [((3, 7), True), ((2, 5, 768), True),
                                               ((4, 33), False)])
def test_layernorm_matches_numpy(shape: tuple[int, ...], affine: bool) -> None:
    x = _random(shape, 7) + 5.0  # a large mean: the variance must not cancel
    gamma = _random((shape[-1],), 8) if affine else None
    beta = _random((shape[-1],), 9) if affine else None
    xd = x.astype(np.float64)
    want = (xd - xd.mean(-1, keepdims=True)) / np.sqrt(xd.var(-1, keepdims=True) + 1e-5)
    if affine:
        want = want * gamma + beta
    np.testing.assert_allclose(k.layernorm(x, gamma, beta, threads=2), want, atol=2e-5)


def _lrn_reference(x: np.ndarray, size: int, alpha: float, beta: float, bias: float
                   ) -> np.ndarray:
    xd = x.astype(np.float64)
    c = x.shape[1]
    s = np.zeros_like(xd)
    for i in range(c):
        lo, hi = max(0, i - (size - 1) // 2), min(c, i + size // 2 + 1)
        s[:, i] = (xd[:, lo:hi] ** 2).sum(axis=1)
    return xd / (bias + alpha / size * s) ** beta


@pytest.mark.parametrize(("shape", "size", "alpha", "beta", "bias"),
                         [((1, 96, 13, 13), 5, 1e-4, 0.75, 1.0), ((2, 7, 3, 5), 4, 0.5, 0.6, 2.0),
                          ((1, 3, 33), 5, 1.0, 1.0, 1.0), ((1, 300, 2, 2), 3, 1e-2, 0.75, 1.0)])
def test_lrn_matches_numpy(shape: tuple[int, ...], size: int, alpha: float, beta: float,
                           bias: float) -> None:
    x = _random(shape, 10, scale=20.0)
    want = _lrn_reference(x, size, alpha, beta, bias)
    got = k.lrn(x, size, alpha, beta, bias, threads=2)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_layernorm_and_lrn_reject_bad_arguments() -> None:
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="gamma must hold 4 values"):
        k.layernorm(x, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="eps"):
        k.layernorm(x, eps=-1.0)
    with pytest.raises(ValueError, match="k > 0"):
        k.lrn(np.zeros((1, 3, 2), np.float32), 5, 1e-4, 0.75, 0.0)
    with pytest.raises(ValueError, match="local size"):
        k.lrn(np.zeros((1, 3, 2), np.float32), 0)
