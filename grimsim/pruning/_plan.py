"""How many rows/columns/positions each block keeps (bcr and block_punched).

The counts depend only on the shapes and the scheme, never on the weights, so the expected
workload (no weights) is exact: the weights only decide WHICH rows/columns are kept.

Blocks tile the matrix from the top-left; the last block row/column may be partial. Blocks
fall into at most four classes of equal size: A (full R x C), B (the partial last block
column, full-height rows), C (the partial last block row, full-width columns), D (the
corner). Every block keeps a FIXED count of one dimension and a DERIVED count of units of
the other (``mode``):

* ``rows_fixed`` (bcr default, or ``rows=a``): kept rows = round(f*r) with f = sqrt(1-S)
  (or a), clamped so that the columns can make up the rest (see ``fixed_count``); the
  derived units are columns (a unit = kept-rows entries). Blocks one column wide (C = 1, or
  a partial last block column of width 1) cannot make up anything with columns, so there
  the roles swap: the single column is fixed and the rows are the derived units.
* ``cols_fixed`` (bcr with only ``cols=b``): the mirror image (blocks one row high swap).
* ``punched`` (block_punched): all rows of the block kept; the derived units are kernel
  positions (a unit = the block's rows x channels at one position) or, for 1x1/FC layers
  (one position), the block's columns (a unit = the block's rows).

Derived counts, class by class in the order A, B, C, D: the class's target entries
(1-S) x its size, plus the rounding error carried from the previous classes, divided by the
unit size and rounded half-up to a whole number X of units, clamped to [0, all units of
the class]. The class's blocks keep q = X // n units and X - q*n of them keep q+1 ("extras"),
so counts differ by at most one within a class (load balance) and the total is within half a
unit of the target. A block keeping no unit is empty (not stored). Only when the whole
matrix would keep nothing does the first class get one unit (every scheme keeps something).

Extras are spread evenly (Bresenham): class A over its block rows, then within each block
row over its blocks; class B's extras go to the block rows with fewer A extras first (ties:
lower row first); class C over its blocks. Per-block-row work is then closed-form
(``row_work``), which the expected workload uses.

Everything here works on Python scalars (fast single calls) and elementwise on numpy arrays
(the batch variant) alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# Guards the integer rounding of float products such as (1-0.75)*16 against 1e-16 noise.
EPS = 1e-9

Num = Any  # a Python number or a numpy array (elementwise)


def _is_array(a: Any, b: Any = None, c: Any = None) -> bool:
    return isinstance(a, np.ndarray) or isinstance(b, np.ndarray) or isinstance(c, np.ndarray)


def ifloor(x: Num) -> Num:
    if isinstance(x, np.ndarray):
        return np.floor(x).astype(np.int64)
    return math.floor(x)


def iceil(x: Num) -> Num:
    if isinstance(x, np.ndarray):
        return np.ceil(x).astype(np.int64)
    return math.ceil(x)


def rhu(x: Num) -> Num:
    """Round half up (Python's round() rounds half to even)."""
    return ifloor(x + 0.5)


def clamp(x: Num, lo: Num, hi: Num) -> Num:
    """min(max(x, lo), hi) elementwise (hi wins when lo > hi)."""
    if _is_array(x, lo, hi):
        return np.minimum(np.maximum(x, lo), hi)
    return min(max(x, lo), hi)


def where(cond: Num, a: Num, b: Num) -> Num:
    if _is_array(cond, a, b):
        return np.where(cond, a, b)
    return a if cond else b


def vmin(a: Num, b: Num) -> Num:
    return np.minimum(a, b) if _is_array(a, b) else min(a, b)


def vmax(a: Num, b: Num) -> Num:
    return np.maximum(a, b) if _is_array(a, b) else max(a, b)


def ceil_div(a: Num, b: Num) -> Num:
    return -(-a // b)


def ceil16(x: Num) -> Num:
    """Round a count of floats up to a multiple of 16 (64 bytes)."""
    return ceil_div(x, 16) * 16


def fixed_count(r: Num, c: Num, frac: Num, s: Num) -> Num:
    """Kept count of the fixed dimension (size r) of an r x c block.

    round(frac * r), moved into [ceil((1-S) r), floor((1-S) r c)] so that the other
    dimension's share (1-S) r c / kept lies in [1, c] (the upper end wins if the range is
    empty), then clamped to [1, r].
    """
    x = (1.0 - s) * r
    v = rhu(frac * r)
    v = clamp(v, iceil(x - EPS), ifloor(x * c + EPS))
    return clamp(v, 1, r)


@dataclass(frozen=True)
class BlockClass:
    """One class of equal blocks: ``W`` block rows x ``L`` blocks per row, each ``r`` x ``c``
    (c counts channels for ``punched``) holding ``entries`` weights. Each keeps ``fixed`` of
    its fixed dimension and ``q`` derived units (``extra`` of them q+1) of ``unit`` entries,
    at most ``units``. ``derived_rows``: the derived units are rows (else columns, or kernel
    positions); ``col_mult``: W columns per derived unit (channels per position, or 1)."""

    W: Num
    L: Num
    r: Num
    c: Num
    entries: Num
    derived_rows: Num
    fixed: Num
    col_mult: Num
    unit: Num
    units: Num
    q: Num
    extra: Num

    @property
    def n(self) -> Num:
        return self.W * self.L

    @property
    def total_units(self) -> Num:
        return self.q * self.n + self.extra

    def rows_kept(self, k: Num) -> Num:
        """Kept rows of a block of this class keeping ``k`` derived units (k > 0)."""
        return where(self.derived_rows, k, self.fixed + 0 * k)

    def cols_kept(self, k: Num) -> Num:
        """Kept W columns of a block of this class keeping ``k`` derived units (k > 0)."""
        return where(self.derived_rows, self.fixed + 0 * k, k * self.col_mult)


@dataclass(frozen=True)
class Plan:
    """The count plan of one matrix: its grid and its four block classes (A, B, C, D)."""

    mode: str
    M: Num
    K: Num
    R: Num
    C: Num
    positions: Num
    n_block_rows: Num
    n_block_cols: Num
    classes: tuple[BlockClass, BlockClass, BlockClass, BlockClass]

    @property
    def nnz(self) -> Num:
        return sum(cls.unit * cls.total_units for cls in self.classes)


def _orientation(mode: str, r: Num, c: Num, frac: float, s: float, positions: Num
                 ) -> tuple[Num, Num, Num, Num, Num]:
    """(derived_rows, fixed, col_mult, unit, units) of an r x c block."""
    if mode == "punched":
        many = positions > 1
        return (False, r, where(many, c, 1), where(many, r * c, r), where(many, positions, c))
    if mode == "rows_fixed":
        thin = c == 1  # one column: nothing to derive from columns, so derive rows
        fixed = where(thin, 1, fixed_count(r, c, frac, s))
        return (thin, fixed, 1, fixed, where(thin, r, c))
    flat = r == 1
    fixed = where(flat, 1, fixed_count(c, r, frac, s))
    return (~flat if _is_array(flat) else not flat, fixed, 1, fixed, where(flat, c, r))


def make_plan(mode: str, M: Num, K: Num, R: Num, C: Num, s: float, frac: float,
              positions: Num = 1) -> Plan:
    """Count plan for an M x K matrix (``punched``: K = channels x ``positions``)."""
    cols_total = K // positions if mode == "punched" else K
    nrb = ceil_div(M, R)
    ncb = ceil_div(cols_total, C)
    rl = M - (nrb - 1) * R
    cl = cols_total - (ncb - 1) * C
    has_pr = where(rl < R, 1, 0)
    has_pc = where(cl < C, 1, 0)
    wf = nrb - has_pr
    lf = ncb - has_pc
    shapes = ((wf, lf, R, C), (wf, has_pc, R, cl), (has_pr, lf, rl, C), (has_pr, has_pc, rl, cl))
    kept = 1.0 - s
    carry: Num = 0.0
    rows = []
    for W, L, r, c in shapes:
        orient = _orientation(mode, r, c, frac, s, positions)
        unit, units = orient[3], orient[4]
        entries = r * c * (positions if mode == "punched" else 1)
        n = W * L
        target = n * kept * entries + carry
        total = where(n > 0, clamp(rhu(target / unit), 0, n * units), 0)
        carry = target - unit * total
        rows.append([W, L, r, c, entries, *orient, n, total])
    # keep at least one unit in the whole matrix: the first class that has blocks gets it
    pending = sum(row[-1] for row in rows) == 0
    for row in rows:
        bump = pending & (row[-2] > 0)
        row[-1] = row[-1] + where(bump, 1, 0)
        pending = pending & ~bump if _is_array(pending) else pending and not bump
    classes = []
    for W, L, r, c, entries, derived_rows, fixed, col_mult, unit, units, n, total in rows:
        q = total // vmax(n, 1)
        classes.append(BlockClass(W, L, r, c, entries, derived_rows, fixed, col_mult, unit,
                                  units, q, total - q * n))
    return Plan(mode, M, K, R, C, positions, nrb, ncb, tuple(classes))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- per-block arrays


def _bresenham(extra: int, slots: int) -> np.ndarray:
    """0/1 (or counts) spreading ``extra`` units evenly over ``slots`` slots."""
    b = np.arange(slots, dtype=np.int64)
    return ((b + 1) * extra) // slots - (b * extra) // slots


def block_counts(plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-block (kept rows, kept W columns, derived units) arrays of shape
    (n_block_rows, n_block_cols) for one matrix (scalar plan), following the spreading rule
    in the module docstring. Blocks keeping no unit have 0 everywhere."""
    nrb, ncb = int(plan.n_block_rows), int(plan.n_block_cols)
    derived = np.zeros((nrb, ncb), np.int64)
    owner = np.zeros((nrb, ncb), np.int64)  # class index of each block
    a, b, c, d = plan.classes
    wf, lf = int(a.W), int(a.L)
    # class A: evenly over block rows, then within each row
    row_extra = _bresenham(int(a.extra), wf) if wf else np.zeros(0, np.int64)
    if wf and lf:
        j = np.arange(lf, dtype=np.int64)
        e = row_extra[:, None]
        derived[:wf, :lf] = a.q + ((j + 1) * e) // lf - (j * e) // lf
    if b.n:  # class B: the rows with fewer A extras first
        order = np.lexsort((np.arange(wf), row_extra))
        y = np.zeros(wf, np.int64)
        y[order[: int(b.extra)]] = 1
        derived[:wf, ncb - 1] = b.q + y
        owner[:wf, ncb - 1] = 1
    if c.n:
        derived[nrb - 1, :lf] = c.q + _bresenham(int(c.extra), lf)
        owner[nrb - 1, :lf] = 2
    if d.n:
        derived[nrb - 1, ncb - 1] = d.q + d.extra
        owner[nrb - 1, ncb - 1] = 3
    rows = np.zeros_like(derived)
    cols = np.zeros_like(derived)
    for i, cls in enumerate(plan.classes):
        sel = (owner == i) & (derived > 0)
        rows[sel] = cls.rows_kept(derived[sel])
        cols[sel] = cls.cols_kept(derived[sel])
    return rows, cols, derived


# --------------------------------------------------------------------------- row work


def row_work(plan: Plan) -> tuple[Num, Num]:
    """(min, max) over block rows of the kept entries per block row, closed form."""
    a, b, _, _ = plan.classes
    W = a.W
    Ws = vmax(W, 1)
    base = a.L * a.unit * a.q + b.n // Ws * b.unit * b.q
    e0 = a.extra // Ws
    x1 = a.extra - e0 * W
    xb = b.extra
    n1 = vmin(xb, W - x1)
    # (A extras, B extra, count) of the up-to-four kinds of full-height block rows
    kinds = ((e0, 1, n1), (e0, 0, W - x1 - n1), (e0 + 1, 1, xb - n1),
             (e0 + 1, 0, x1 - (xb - n1)))
    big = float("inf")
    lo: Num = big
    hi: Num = -big
    for e, y, count in kinds:
        work = base + a.unit * e + b.unit * y
        lo = vmin(lo, where(count > 0, work, big))
        hi = vmax(hi, where(count > 0, work, -big))
    _, _, c, d = plan.classes
    last = c.unit * c.total_units + d.unit * d.total_units
    has_last = c.n + d.n > 0
    lo = vmin(lo, where(has_last, last, big))
    hi = vmax(hi, where(has_last, last, -big))
    return lo, hi
