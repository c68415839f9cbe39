"""Pooling by explicit windows (float64), the reference for the pooling kernel and the
runner's pooling stand-in."""

from __future__ import annotations

import numpy as np


def pool_reference(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], out_hw: tuple[int, int], kind: str) -> np.ndarray:
    """NCHW ``x`` pooled into ``out_hw`` windows; outside the input counts as -inf (max) or 0
    (avg, which divides by the whole window)."""
    (kh, kw), (sh, sw), (pt, pl) = kernel, stride, padding
    n, c, h, w = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.full((n, c, h + 2 * pt + kh, w + 2 * pl + kw), fill)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    out = np.empty((n, c, *out_hw))
    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            win = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = win.max(axis=(2, 3)) if kind == "max" else win.mean(axis=(2, 3))
    return out
