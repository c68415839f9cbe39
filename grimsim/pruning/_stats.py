"""Order statistics of chi-square group energies (numpy + math only; no scipy at run time).

``top_fraction(n, k, d)``: the expected share of the total energy held by the k largest of
n i.i.d. chi-square(d) variables, E[sum of top k] / (n d). This is the expected retained
norm of keeping the k groups of largest L2 norm among n groups of d i.i.d. Gaussian
weights (the Gaussian's scale cancels).

With f_d, F_d the chi-square(d) density and CDF, and x f_d(x) = d f_{d+2}(x)::

    top_fraction = integral f_{d+2}(x) P(Binomial(n-1, 1 - F_d(x)) <= k-1) dx

(the chance that a group of energy x is among the top k is the chance that at most k-1 of
the other n-1 exceed it). For n <= 256 this is integrated numerically; for larger n the
binomial is a step at the (1 - k/n) quantile tau and the asymptotic form is used::

    top_fraction ~= P(chi2_{d+2} > tau),  with  P(chi2_d > tau) = k/n.

For d = 1 (single weights, unstructured and N:M) this is the half-normal result
q + 2 t phi(t), t = Phi^-1(1 - q/2).
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

_TINY = 1e-300
_ASYMPTOTIC_N = 256
_GRID = 2001


def gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) (series below a+1, continued fraction above)."""
    if x <= 0.0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        # P(a, x) = x^a e^-x / Gamma(a+1) * sum_n x^n / ((a+1)...(a+n))
        term = total = 1.0 / a
        ap = a
        for _ in range(100000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    # continued fraction for Q (modified Lentz)
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 100000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(1.0, math.exp(log_front) * h)


def gamma_p_array(a: float, x: np.ndarray) -> np.ndarray:
    """Regularised lower incomplete gamma P(a, x) for an array x (same two expansions)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    pos = x > 0
    with np.errstate(divide="ignore"):
        log_front = np.where(pos, -x + a * np.log(np.where(pos, x, 1.0)) - math.lgamma(a), 0.0)
    lo = pos & (x < a + 1.0)
    if lo.any():
        xs = x[lo]
        term = np.full_like(xs, 1.0 / a)
        total = term.copy()
        ap = a
        for _ in range(100000):
            ap += 1.0
            term = term * xs / ap
            total += term
            if np.all(np.abs(term) < np.abs(total) * 1e-16):
                break
        out[lo] = np.minimum(1.0, total * np.exp(log_front[lo]))
    hi = pos & ~lo
    if hi.any():
        xs = x[hi]
        b = xs + 1.0 - a
        c = np.full_like(xs, 1.0 / _TINY)
        d = 1.0 / b
        h = d.copy()
        for i in range(1, 100000):
            an = -i * (i - a)
            b = b + 2.0
            d = an * d + b
            d = np.where(np.abs(d) < _TINY, _TINY, d)
            c = b + an / c
            c = np.where(np.abs(c) < _TINY, _TINY, c)
            d = 1.0 / d
            delta = d * c
            h = h * delta
            if np.all(np.abs(delta - 1.0) < 1e-15):
                break
        out[hi] = np.maximum(0.0, 1.0 - np.exp(log_front[hi]) * h)
    return out


def chi2_sf(d: float, x: float) -> float:
    return gamma_q(d / 2.0, x / 2.0)


def chi2_isf(d: float, q: float) -> float:
    """x with P(chi2_d > x) = q (safeguarded Newton from the Wilson-Hilferty guess)."""
    if q >= 1.0:
        return 0.0
    z = NormalDist().inv_cdf(1.0 - q)
    h = 2.0 / (9.0 * d)
    x = max(d * max(1.0 - h + z * math.sqrt(h), 1e-3) ** 3, 1e-12)
    lo, hi = 0.0, math.inf
    log_norm = (d / 2.0) * math.log(2.0) + math.lgamma(d / 2.0)
    for _ in range(200):
        g = chi2_sf(d, x) - q
        if g > 0:
            lo = x
        else:
            hi = x
        if abs(g) <= 1e-14 * q:
            break
        density = math.exp((d / 2.0 - 1.0) * math.log(x) - x / 2.0 - log_norm)
        step = g / density if density > 0 else math.inf
        new = x + step  # sf decreases: g > 0 means x is too small
        if not (lo < new < hi) or not math.isfinite(new):
            new = (lo + hi) / 2.0 if math.isfinite(hi) else max(2.0 * x, x + 1.0)
        if abs(new - x) <= 1e-15 * max(1.0, x):
            x = new
            break
        x = new
    return x


@lru_cache(maxsize=65536)
def top_fraction(n: int, k: int, d: float) -> float:
    """E[sum of the k largest of n i.i.d. chi2_d] / (n d); see the module docstring.

    A pure function of its arguments; the cache only saves recomputation (the cost model
    asks for the same few shapes many times).
    """
    if k <= 0:
        return 0.0
    if k >= n:
        return 1.0
    if n > _ASYMPTOTIC_N:
        tau = chi2_isf(d, k / n)
        return chi2_sf(d + 2.0, tau)
    # integrate over t = sqrt(x): smooth at x = 0 even for d = 1
    mean = d + 2.0
    spread = math.sqrt(2.0 * mean)
    t = np.linspace(math.sqrt(max(0.0, mean - 12.0 * spread)),
                    math.sqrt(mean + 14.0 * spread + 30.0), _GRID)
    x = t * t
    a2 = mean / 2.0
    with np.errstate(divide="ignore"):
        log_f = np.where(x > 0, (a2 - 1.0) * np.log(np.where(x > 0, x, 1.0)) - x / 2.0
                         - a2 * math.log(2.0) - math.lgamma(a2), -np.inf)
        dens = np.exp(log_f) * 2.0 * t
        cdf = np.clip(gamma_p_array(d / 2.0, x / 2.0), 0.0, 1.0)
        log_cdf = np.log(cdf)
        log_sf = np.log1p(-cdf)
    j = np.arange(k, dtype=np.float64)[:, None]
    log_binom = np.array([math.lgamma(n) - math.lgamma(i + 1) - math.lgamma(n - i)
                          for i in range(k)])[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        log_terms = (log_binom + np.where(j > 0, j * log_sf[None, :], 0.0)
                     + (n - 1 - j) * log_cdf[None, :])
        terms = np.exp(np.nan_to_num(log_terms, nan=-np.inf))
    rank_ok = np.minimum(terms.sum(axis=0), 1.0)
    y = dens * rank_ok
    return float(np.clip(np.sum((y[1:] + y[:-1]) * np.diff(t)) / 2.0, 0.0, 1.0))


def top_fraction_array(n: np.ndarray, k: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``top_fraction`` elementwise, computed once per distinct (n, k, d)."""
    n, k, d = np.broadcast_arrays(np.asarray(n), np.asarray(k), np.asarray(d, dtype=float))
    keys = np.stack([n.ravel().astype(float), k.ravel().astype(float), d.ravel()], axis=1)
    if keys.shape[0] == 0:
        return np.zeros(n.shape)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    vals = np.array([top_fraction(int(a), int(b), float(c)) for a, b, c in uniq])
    return vals[inverse.reshape(-1)].reshape(n.shape)


def topf(n: Any, k: Any, d: Any) -> Any:
    """``top_fraction`` for scalars or arrays."""
    if isinstance(n, np.ndarray) or isinstance(k, np.ndarray) or isinstance(d, np.ndarray):
        return top_fraction_array(n, k, d)
    return top_fraction(int(n), int(k), float(d))


def normal_ppf(p: Any) -> Any:
    """Phi^-1 for a scalar or an array (per distinct value)."""
    if isinstance(p, np.ndarray):
        uniq, inverse = np.unique(p, return_inverse=True)
        vals = np.array([NormalDist().inv_cdf(float(v)) for v in uniq])
        return vals[inverse.reshape(-1)].reshape(p.shape)
    return NormalDist().inv_cdf(float(p))
