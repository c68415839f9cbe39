"""The retained-norm proxy: measured on weights, and its Gaussian expectation (checked against
sampled weights, scipy's special functions and Monte Carlo order statistics)."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special
from scipy import stats as sps

from grimsim.errors import SchemeError
from grimsim.network import workload as wl
from grimsim.pruning import (
    PATTERN_LIBRARY,
    PruningScheme,
    _expected,
    _stats,
    expected_retained_norm,
    make_mask,
    parse_spec,
    retained_norm,
)


def test_retained_norm_basics() -> None:
    w = np.array([[3.0, 4.0], [0.0, 0.0]])
    assert retained_norm(w, np.array([[True, False], [False, False]])) == pytest.approx(9 / 25)
    assert retained_norm(w, np.ones((2, 2), bool)) == 1.0
    assert retained_norm(w, np.zeros((2, 2), bool)) == 0.0
    assert retained_norm(np.zeros((2, 2)), np.zeros((2, 2), bool)) == 1.0


# --------------------------------------------------------------------------- monotone in S

NESTED = ["unstructured:{}", "filter:{}", "column:{}", "pattern:4:{}"]
BLOCKED = ["bcr:16x32:{}", "bcr:8x16:{}:cols=1.0", "block_punched:4x8:{}"]


@given(st.integers(0, 2**32 - 1), st.lists(st.floats(5 / 9, 0.98), min_size=2, max_size=6),
       st.sampled_from(NESTED))
def test_measured_proxy_monotone_for_nested_schemes(seed: int, rates: list[float],
                                                    template: str) -> None:
    """Top-k masks are nested as S grows, so the retained norm can only fall."""
    w = np.random.default_rng(seed).standard_normal((16, 9 * 12))
    values = [retained_norm(w, make_mask(w, template.format(s))) for s in sorted(rates)]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(values))


def test_nm_proxy_monotone_in_n() -> None:
    w = np.random.default_rng(0).standard_normal((32, 64))
    values = [retained_norm(w, make_mask(w, f"nm:{n}:8")) for n in range(8, 0, -1)]
    assert values == sorted(values, reverse=True) and values[0] == 1.0


@pytest.mark.parametrize("template", NESTED[:3] + BLOCKED + ["pattern:4:{}"])
def test_expected_proxy_monotone_in_s(template: str) -> None:
    """The expectation falls with S for every scheme. bcr/block_punched masks are not nested
    (the kept rows x columns split moves with rounding), so for them a rise of at most
    1e-3 is allowed."""
    start = 5 / 9 if template.startswith("pattern") else 0.0
    rates = np.round(np.linspace(start, 0.97, 40), 6)
    values = [expected_retained_norm(template.format(s), (256, 2304), kernel=(3, 3))
              for s in rates]
    rises = np.diff(values)
    tolerance = 1e-3 if template in BLOCKED else 1e-12
    assert rises.max() <= tolerance
    assert values[0] > values[-1]


def test_measured_proxy_of_blocked_schemes_nearly_monotone() -> None:
    w = np.random.default_rng(1).standard_normal((256, 1152))
    for template in BLOCKED:
        values = [retained_norm(w, make_mask(w, template.format(s), kernel=(3, 3)))
                  for s in np.linspace(0.05, 0.95, 19)]
        assert np.diff(values).max() <= 2e-3, template


# --------------------------------------------------------------------------- vs sampled weights

SAMPLED = ["unstructured:0.9", "unstructured:0.5", "filter:0.5", "column:0.75", "nm:2:4",
           "nm:1:4", "pattern:4", "pattern:4:0.85", "block_punched:4x8:0.75",
           "block_punched:8x4:0.5", "bcr:16x32:0.75", "bcr:4x16:0.9", "bcr:8x8:0.5:rows=0.9",
           "bcr:8x16:0.8:cols=0.5"]


@pytest.mark.parametrize("spec", SAMPLED)
@pytest.mark.parametrize(("M", "K"), [(64, 576), (128, 1152)])
def test_expected_proxy_matches_sampled_gaussian_weights(spec: str, M: int, K: int) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{spec}/{M}".encode()))
    measured = np.mean([retained_norm(w, make_mask(w, spec, kernel=(3, 3)))
                        for w in (rng.standard_normal((M, K)) for _ in range(3))])
    expected = expected_retained_norm(spec, (M, K), kernel=(3, 3))
    assert expected == pytest.approx(measured, rel=0.03)


def test_expected_proxy_for_layers_and_gemms() -> None:
    conv = wl.conv2d("c", (1, 64, 28, 28), 128, 3, padding=1)
    gemm = conv.gemms[0]
    via_shape = expected_retained_norm("bcr:16x32:0.75", (128, 576))
    assert expected_retained_norm("bcr:16x32:0.75", conv) == pytest.approx(via_shape)
    assert expected_retained_norm("bcr:16x32:0.75", gemm) == pytest.approx(via_shape)
    assert expected_retained_norm("dense", conv) == 1.0
    lstm = wl.recurrent("rnn", "lstm", (1, 5, 32), 64)
    sizes = [(g.M, g.K) for g in lstm.gemms]
    want = sum(expected_retained_norm("unstructured:0.7", s) * s[0] * s[1] for s in sizes)
    assert expected_retained_norm("unstructured:0.7", lstm) == pytest.approx(
        want / sum(m * k for m, k in sizes))
    with pytest.raises(SchemeError):
        expected_retained_norm("pattern:4", wl.conv2d("p", (1, 8, 8, 8), 8, 1))
    with pytest.raises(SchemeError):
        expected_retained_norm("pattern:4", (8, 10))
    with pytest.raises(SchemeError):
        expected_retained_norm("nm:2:8", (8, 4))


# --------------------------------------------------------------------------- the maths


@pytest.mark.parametrize("a", [0.5, 1.0, 3.7, 16.0, 256.0, 2304.0])
def test_incomplete_gamma_matches_scipy(a: float) -> None:
    xs = np.array([1e-3, 0.3 * a, a, a + 1.0, 1.3 * a + 5.0, 3 * a + 30.0])
    for x in xs:
        assert _stats.gamma_q(a, float(x)) == pytest.approx(special.gammaincc(a, x), abs=1e-12)
    assert np.allclose(_stats.gamma_p_array(a, xs), special.gammainc(a, xs), atol=1e-12)


@pytest.mark.parametrize("d", [1.0, 4.0, 7.57, 32.0, 576.0, 4608.0])
@pytest.mark.parametrize("q", [0.9, 0.5, 0.1, 1e-3])
def test_chi2_quantile_matches_scipy(d: float, q: float) -> None:
    assert _stats.chi2_isf(d, q) == pytest.approx(sps.chi2.isf(q, d), rel=1e-9)


@pytest.mark.parametrize(("n", "k", "d"), [(9, 2, 16), (16, 8, 32), (32, 5, 1), (4, 2, 1),
                                           (64, 16, 576), (300, 75, 4), (2000, 100, 1)])
def test_top_fraction_matches_monte_carlo(n: int, k: int, d: int) -> None:
    rng = np.random.default_rng(n * 1000 + k)
    draws = rng.chisquare(d, (max(20, 200_000 // n), n))
    draws.sort(axis=1)
    sampled = draws[:, n - k:].sum() / draws.sum()
    assert _stats.top_fraction(n, k, float(d)) == pytest.approx(sampled, rel=0.01)


def test_top_fraction_edges_and_half_normal() -> None:
    assert _stats.top_fraction(10, 0, 3.0) == 0.0 and _stats.top_fraction(10, 10, 3.0) == 1.0
    # n large, d = 1: keeping the top q of |w| retains q + 2 t phi(t), t = Phi^-1(1 - q/2)
    q = 0.2
    t = sps.norm.isf(q / 2)
    assert _stats.top_fraction(10**6, int(q * 10**6), 1.0) == pytest.approx(
        q + 2 * t * sps.norm.pdf(t), rel=1e-6)
    # the exact integral and the asymptotic form meet where the code switches
    assert _stats.top_fraction(256, 64, 8.0) == pytest.approx(
        _stats.top_fraction(257, 64, 8.0), rel=0.01)


def test_pattern_constants_reestimated() -> None:
    """The best-pattern energy of a Gaussian 3x3 kernel: mean and variance as documented."""
    w = np.random.default_rng(11).standard_normal((400_000, 9))
    onehot = np.zeros((9, len(PATTERN_LIBRARY)))
    for p, pos in enumerate(PATTERN_LIBRARY):
        onehot[list(pos), p] = 1
    best = ((w * w) @ onehot).max(axis=1)
    se = best.std() / np.sqrt(best.size)
    assert abs(best.mean() - _expected.PATTERN_ENERGY_MEAN) < 4 * se
    assert best.var() == pytest.approx(_expected.PATTERN_ENERGY_VAR, rel=0.02)


def test_dense_scheme_parses_to_full_norm() -> None:
    assert expected_retained_norm(parse_spec("dense"), (3, 3)) == 1.0
    assert expected_retained_norm(PruningScheme.nm(4, 4), (3, 8)) == 1.0
