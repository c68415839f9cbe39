"""The three objectives, what "feasible" means, and small 2-D front utilities.

* ``MIN_LOSS``: minimum total loss with total latency <= a latency target (seconds);
* ``MIN_LATENCY``: minimum total latency with total loss <= a loss budget;
* ``PARETO``: the non-dominated (latency, loss) points.

Totals are sums of floats, and two summation orders can differ in the last bits; a total
counts as within its target when ``total <= target + FEASIBILITY_RTOL * |target|`` so a
target that equals a reachable total exactly is met whatever the order.
"""

from __future__ import annotations

import math

import numpy as np

from grimsim.errors import SearchError

MIN_LOSS = "min_loss"
MIN_LATENCY = "min_latency"
PARETO = "pareto"
OBJECTIVES = (MIN_LOSS, MIN_LATENCY, PARETO)

#: Relative slack of every constraint (see the module docstring).
FEASIBILITY_RTOL = 1e-9
#: Totals closer than this fraction of the largest reachable total are ties: the same
#: numbers summed in another order (fronts and tie-breaks use it).
TIE_RTOL = 1e-9


class InfeasibleTargetError(SearchError):
    """No mapping meets the target; ``closest_latency_s``/``closest_loss`` is the nearest
    feasible point (the fastest mapping, or the lowest-loss one)."""

    def __init__(self, message: str, objective: str, target: float,
                 closest_latency_s: float, closest_loss: float) -> None:
        super().__init__(message)
        self.objective = objective
        self.target = target
        self.closest_latency_s = closest_latency_s
        self.closest_loss = closest_loss

    def framed(self, prefix: str, suffix: str = "") -> InfeasibleTargetError:
        """The same error with its message framed (e.g. by the solver that raised it)."""
        return InfeasibleTargetError(prefix + str(self) + suffix, self.objective, self.target,
                                     self.closest_latency_s, self.closest_loss)


def check_objective(objective: str, target: float | None) -> float | None:
    """Validate an objective name and its target (None for PARETO)."""
    if objective not in OBJECTIVES:
        raise SearchError(f"unknown objective {objective!r}; choose one of "
                          f"{', '.join(OBJECTIVES)}")
    if objective == PARETO:
        if target is not None:
            raise SearchError("the pareto objective takes no target")
        return None
    what = _target_name(objective)
    if target is None:
        raise SearchError(f"objective {objective!r} needs a {what}")
    try:
        value = float(target)
    except (TypeError, ValueError):
        raise SearchError(f"the {what} must be a number, got {target!r}") from None
    if not math.isfinite(value) or value < 0:
        raise SearchError(f"the {what} must be a finite number >= 0, got {target!r}")
    return value


def _target_name(objective: str) -> str:
    return "latency target in seconds" if objective == MIN_LOSS else "loss budget"


def capacity(target: float) -> float:
    """The largest total that still meets ``target``."""
    return target + FEASIBILITY_RTOL * abs(target)


def within(total: float | np.ndarray, target: float) -> bool | np.ndarray:
    """True where ``total`` meets ``target`` (with the documented slack)."""
    result = np.asarray(total) <= capacity(target)
    return bool(result) if result.ndim == 0 else result


def ceil_sig(x: float, digits: int = 4) -> float:
    """``x`` rounded up to ``digits`` significant digits (a suggestion that is surely met)."""
    if x <= 0 or not math.isfinite(x):
        return x
    step = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return math.ceil(x / step - 1e-9) * step


def fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}"


def infeasible_latency(target_s: float, fastest_s: float, loss_at_fastest: float,
                       fixed_s: float, layers: int) -> InfeasibleTargetError:
    """The error for a latency target below the fastest mapping."""
    suggestion = fmt(ceil_sig(fastest_s * 1e3))
    every = "the searched layer" if layers == 1 else f"all {layers} searched layers"
    fixed = (f", {fmt(fixed_s * 1e3)} ms of it in layers that are not searched"
             if fixed_s > 0 else "")
    return InfeasibleTargetError(
        f"latency target {fmt(target_s * 1e3)} ms is below the fastest mapping "
        f"{fmt(fastest_s * 1e3)} ms ({every} at {'its' if layers == 1 else 'their'} fastest "
        f"candidate{fixed}; its loss is {fmt(loss_at_fastest)}); try --latency-ms >= "
        f"{suggestion}",
        MIN_LOSS, target_s, fastest_s, loss_at_fastest)


def infeasible_loss(budget: float, lowest: float, latency_at_lowest_s: float
                    ) -> InfeasibleTargetError:
    """The error for a loss budget below the lowest reachable loss."""
    return InfeasibleTargetError(
        f"loss budget {fmt(budget)} is below the lowest reachable loss {fmt(lowest)} (every "
        f"layer at its lowest-loss candidate, {fmt(latency_at_lowest_s * 1e3)} ms); try "
        f"--max-loss >= {fmt(ceil_sig(lowest))}",
        MIN_LATENCY, budget, latency_at_lowest_s, lowest)


# --------------------------------------------------------------------------- 2-D fronts


def nondominated(latency: np.ndarray, loss: np.ndarray, rtol: float = 0.0,
                 scale: tuple[float, float] | None = None) -> np.ndarray:
    """Indices of the non-dominated points (both minimised), sorted by latency.

    With ``rtol`` > 0, differences below ``rtol`` times ``scale`` (per coordinate; default
    the largest value given) count as ties: float sums of the same numbers in another order
    differ in the last bits. A point is then dropped when another is no worse within the
    tolerance in both coordinates and better by more than it in one; of near-duplicates the
    faster is kept.
    """
    latency = np.asarray(latency, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    if latency.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(latency.size), loss, latency))
    sorted_loss = loss[order]
    best_before = np.minimum.accumulate(np.concatenate(([np.inf], sorted_loss[:-1])))
    front = order[sorted_loss < best_before]
    if rtol <= 0 or front.size < 2:
        return front
    x, y = latency[front], loss[front]  # x increasing, y strictly decreasing
    if scale is None:
        scale = (float(np.abs(x).max()), float(np.abs(y).max()))
    tx, ty = rtol * scale[0], rtol * scale[1]
    # the lowest-loss point within tx of the right, and the fastest within ty of the loss
    right = np.searchsorted(x, x + tx, side="right") - 1
    beaten_right = y[right] < y - ty
    left = y.size - np.searchsorted(y[::-1], y + ty, side="right")
    beaten_left = x[left] < x - tx
    # near-duplicates (within both tolerances): keep the first of each run
    dup = np.concatenate(([False], (np.diff(x) <= tx) & (-np.diff(y) <= ty)))
    return front[~(beaten_right | beaten_left | dup)]


def hypervolume(latency: np.ndarray, loss: np.ndarray, reference: tuple[float, float]) -> float:
    """Area dominated by the points and bounded by ``reference`` (both minimised)."""
    latency = np.asarray(latency, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    inside = (latency < reference[0]) & (loss < reference[1])
    keep = nondominated(latency[inside], loss[inside])
    x = latency[inside][keep]
    y = loss[inside][keep]
    if x.size == 0:
        return 0.0
    right = np.concatenate((x[1:], [reference[0]]))
    return float(np.sum((right - x) * (reference[1] - y)))
