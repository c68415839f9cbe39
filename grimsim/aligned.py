"""float32 buffers whose data starts on a 64-byte cache line.

The kernels load and store 64-byte vectors (AVX-512) along rows of activations; numpy places
a large array 16 bytes past a page boundary, so every such access of a row would straddle two
lines. Inference engines allocate their tensors aligned, and so do grimsim's kernels for their
outputs (``new_f32`` in the bindings); the inputs grimsim makes (``grimsim run``, calibration,
``bench-kernels``) and the compact formats' values come from here. Measured on a Sapphire
Rapids VM (2026-11-26, 16x32 BCR at 75 / 90 %, interleaved A/B): 5-12 % faster with an aligned
X, 9-25 % with X and Y aligned, for N = 32, 784 and 3136.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Bytes per cache line on every CPU grimsim targets (x86-64, Arm Cortex-A/X).
CACHE_LINE_BYTES = 64


def aligned_empty(shape: int | Sequence[int], *, zeroed: bool = False) -> np.ndarray:
    """A new C-contiguous float32 array of ``shape`` whose data starts on a cache line."""
    dims = (int(shape),) if isinstance(shape, int | np.integer) else tuple(int(d) for d in shape)
    count = int(np.prod(dims, dtype=np.int64))
    raw = (np.zeros if zeroed else np.empty)(count * 4 + CACHE_LINE_BYTES, dtype=np.uint8)
    offset = (-raw.ctypes.data) % CACHE_LINE_BYTES
    return raw[offset:offset + count * 4].view(np.float32).reshape(dims)


def aligned_standard_normal(rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    """``rng.standard_normal(shape, dtype=float32)`` drawn straight into a cache-line-aligned
    array (the same values, no second buffer)."""
    return rng.standard_normal(dtype=np.float32, out=aligned_empty(shape))


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """``a`` as float32, C-contiguous, on a cache line (a copy unless it already is all that)."""
    a = np.asarray(a)
    if (a.dtype == np.float32 and a.flags.c_contiguous
            and a.ctypes.data % CACHE_LINE_BYTES == 0):
        return a
    out = aligned_empty(a.shape)
    out[...] = a
    return out
