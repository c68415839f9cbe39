"""The exact solver: a multiple-choice knapsack solved to optimality on real-valued tables.

Problem (orientation-free): choose one candidate per layer to minimise ``sum cost`` subject to
``sum weight <= cap``. Minimum loss under a latency target is (cost = loss, weight = latency);
minimum latency under a loss budget swaps the two columns. No discretisation is involved.

Method
------
1. *Dominance pruning* per layer: a candidate with weight >= and cost >= another's (one of
   them strictly, or an exact duplicate with more model bytes) can be swapped for it in any
   solution without making the solution worse, so at least one optimum avoids it. The
   survivors, sorted by weight, have strictly decreasing cost.
2. *Lagrangian / LP bound*: the LP relaxation of an MCKP (each layer a convex combination of
   its candidates) is solved by the lower convex hull of each layer's points: start every
   layer at its lightest candidate and take hull segments in order of steepest cost decrease
   per unit of weight (Sinha & Zoltners 1979; Pisinger 1995, "A minimal algorithm for the
   multiple-choice knapsack problem"). For every suffix of layers this gives
   ``g_k(b)``, a convex piecewise-linear lower bound on the best cost those layers can reach
   with budget ``b`` (it equals the Lagrangian dual), and its breakpoints are *integral*
   assignments (each layer sits on a hull vertex), so ``g_k`` at the breakpoint at or below
   ``b`` is the cost of a feasible completion: an upper bound.
3. *Bounded dynamic programming over Pareto states* (exact recovery): layers are added one at
   a time; a state is a partial assignment's (weight, cost) with a back-pointer. A state is
   dropped when (a) it cannot be completed within the budget (its weight plus the suffix's
   minimum weight exceeds ``cap``), (b) its cost plus the suffix bound ``g_k`` exceeds the
   best feasible cost found so far (the incumbent, from the greedy completions of step 2),
   or (c) another state has weight <= and cost <= (any completion of the dropped state is
   matched by the same completion of the other). Each rule only removes states that cannot
   lead to a strictly better solution than one that is kept, so the surviving final states
   contain an optimum; the kept states are exactly the non-dominated feasible prefixes, so
   the answer is the last one (largest weight within ``cap``, least cost). Among equal-cost
   optima (within ``TIE_RTOL`` = 1e-9 of the largest reachable cost: the same sum in another
   order) the lightest is returned, so every answer is a Pareto-optimal point.
   The pruning comparison uses a tolerance *against* pruning (states within twice the tie
   tolerance of the incumbent are kept), so rounding can only keep extra states.
4. *Pareto front*: without a budget and without bound pruning, rule (c) alone leaves exactly
   the non-dominated (latency, loss) points of all assignments: the complete front. When it
   grows past ``max_states`` the front is instead sampled by exact epsilon-constraint solves
   (step 3 at evenly spaced latency targets), and its gaps are filled with the supported
   points of step 2 and with solves just below a point's latency (which return the front
   point next to it), so every returned point is exactly Pareto-optimal.

The bounded DP is exponential in the worst case (MCKP is NP-hard), but the LP gap of a
suffix is at most one layer's jump across its fractional hull segment, which keeps the
surviving states few on real tables; layers with the widest weight range go first so the
suffixes whose bound matters most are made of small layers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grimsim.errors import SearchError
from grimsim.search.objectives import (
    TIE_RTOL,
    capacity,
    infeasible_latency,
    infeasible_loss,
    nondominated,
)
from grimsim.search.table import CandidateTable

log = logging.getLogger(__name__)

#: Default cap on the states of the complete-front DP before it falls back to sampling.
MAX_FRONT_STATES = 20_000
#: A bounded solve that would extend more partial mappings than this at one layer stops with
#: a SearchError instead of exhausting memory (real tables keep tens to hundreds of states;
#: benchmarks/search.md).
MAX_SOLVE_STATES = 2_000_000


@dataclass(frozen=True)
class _Layer:
    """One layer after dominance pruning, sorted by weight (cost strictly decreasing)."""

    weight: np.ndarray
    cost: np.ndarray
    index: np.ndarray  # the candidates' indices in the table
    hull: np.ndarray  # positions (into weight/cost) of the lower convex hull's vertices


@dataclass(frozen=True)
class _Suffix:
    """LP relaxation of a suffix of layers: convex piecewise-linear, strictly increasing x."""

    x: np.ndarray  # budget at each breakpoint (x[0] = the suffix's minimum weight)
    y: np.ndarray  # bound at each breakpoint (an integral assignment's cost)


def _prune(weight: np.ndarray, cost: np.ndarray, tiebreak: np.ndarray) -> _Layer:
    n = weight.size
    order = np.lexsort((np.arange(n), tiebreak, cost, weight))
    c = cost[order]
    best_before = np.minimum.accumulate(np.concatenate(([np.inf], c[:-1])))
    keep = order[c < best_before]
    w, c = weight[keep], cost[keep]
    return _Layer(w, c, keep.astype(np.int64), _lower_hull(w, c))


def _lower_hull(w: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Vertices of the lower convex hull of points with w increasing and c decreasing
    (Andrew's monotone chain; collinear points are dropped)."""
    hull: list[int] = []
    for i in range(w.size):
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            cross = (w[a] - w[o]) * (c[i] - c[o]) - (c[a] - c[o]) * (w[i] - w[o])
            if cross > 0:
                break
            hull.pop()
        hull.append(i)
    return np.array(hull, dtype=np.int64)


class Knapsack:
    """A prepared MCKP: minimise sum cost subject to sum weight <= cap (module docstring).

    ``weight``/``cost``/``tiebreak`` hold one array per layer; ``cost_tie``: total costs this
    close are ties (the same sum in another order). Preparation (pruning, hulls, suffix
    bounds) is done once; ``solve`` can then be called for many budgets.
    """

    def __init__(self, weight: Sequence[np.ndarray], cost: Sequence[np.ndarray],
                 tiebreak: Sequence[np.ndarray], cost_tie: float) -> None:
        self.cost_tie = float(cost_tie)
        self.layers = [_prune(np.asarray(w, np.float64), np.asarray(c, np.float64),
                              np.asarray(t, np.float64))
                       for w, c, t in zip(weight, cost, tiebreak, strict=True)]
        spans = np.array([lay.weight[-1] - lay.weight[0] for lay in self.layers])
        self.order = np.argsort(-spans, kind="stable")
        cost_scale = float(sum(np.abs(lay.cost).max() for lay in self.layers))
        # bound pruning keeps every state within twice the tie of the incumbent, so all
        # near-ties of the optimum survive for the tie-break (and rounding cannot prune)
        self.bound_tol = 2 * self.cost_tie + 1e-12 * cost_scale
        self.weight_scale = float(sum(np.abs(lay.weight).max() for lay in self.layers))
        self._build_segments()
        self.suffix = [self._suffix(k) for k in range(len(self.layers) + 1)]

    # ------------------------------------------------------------------ LP relaxation
    def _build_segments(self) -> None:
        pos, rank, dw, dc = [], [], [], []
        for k, li in enumerate(self.order):
            lay = self.layers[li]
            v = lay.hull
            pos.append(np.full(v.size - 1, k))
            rank.append(np.arange(1, v.size))
            dw.append(np.diff(lay.weight[v]))
            dc.append(np.diff(lay.cost[v]))
        self._seg_pos = np.concatenate(pos).astype(np.int64)
        self._seg_rank = np.concatenate(rank).astype(np.int64)
        self._seg_dw = np.concatenate(dw)
        self._seg_dc = np.concatenate(dc)
        with np.errstate(over="ignore", divide="ignore"):  # a subnormal dw: slope -inf
            slope = self._seg_dc / self._seg_dw
        # steepest decrease first; within a layer hull slopes increase, so ties keep its order
        self._seg_order = np.lexsort((self._seg_rank, self._seg_pos, slope))

    def _suffix(self, k: int) -> _Suffix:
        seg = self._seg_order[self._seg_pos[self._seg_order] >= k]
        rest = self.order[k:]
        w0 = float(sum(self.layers[i].weight[0] for i in rest))
        c0 = float(sum(self.layers[i].cost[0] for i in rest))
        x = np.concatenate(([w0], w0 + np.cumsum(self._seg_dw[seg])))
        y = np.concatenate(([c0], c0 + np.cumsum(self._seg_dc[seg])))
        # a run of equal budgets (segments below the float resolution): its last point wins
        last = np.concatenate((x[1:] > x[:-1], [True]))
        return _Suffix(x[last], y[last])

    @property
    def min_weight(self) -> float:
        return float(self.suffix[0].x[0])

    def supported(self) -> np.ndarray:
        """The hull breakpoints of the whole problem as choices (rows of table indices),
        sorted by weight: the supported points of the front, each exactly Pareto-optimal."""
        seg = self._seg_order
        onehot = np.zeros((seg.size + 1, len(self.layers)), dtype=np.int64)
        onehot[np.arange(1, seg.size + 1), self.order[self._seg_pos[seg]]] = 1
        counts = np.cumsum(onehot, axis=0)  # hull vertex reached per layer after t segments
        out = np.empty_like(counts)
        for li, lay in enumerate(self.layers):
            out[:, li] = lay.index[lay.hull[counts[:, li]]]
        return out

    # ------------------------------------------------------------------ exact solve
    def solve(self, cap: float) -> np.ndarray | None:
        """The optimal choice (table indices per layer) for budget ``cap``, or None when even
        the lightest assignment exceeds it."""
        if self.suffix[0].x[0] > cap:
            return None
        tol = self.bound_tol
        slack = 1e-12 * self.weight_scale
        suffix0 = self.suffix[0]
        j0 = int(np.searchsorted(suffix0.x, cap, side="right")) - 1
        incumbent = float(suffix0.y[max(j0, 0)])
        weight, cost = np.zeros(1), np.zeros(1)
        parents: list[np.ndarray] = []
        picks: list[np.ndarray] = []
        last = len(self.layers) - 1
        for k, li in enumerate(self.order):
            lay = self.layers[li]
            n = lay.weight.size
            if weight.size * n > MAX_SOLVE_STATES:
                raise SearchError(
                    f"the exact search would extend {weight.size * n:,} partial mappings at "
                    f"layer {k + 1} of {last + 1} (limit {MAX_SOLVE_STATES:,}): the table's "
                    "losses and latencies trade off almost linearly across candidates, the "
                    "knapsack's hard case; use solver='evolutionary' or fewer candidates")
            nw = (weight[:, None] + lay.weight[None, :]).ravel()
            nc = (cost[:, None] + lay.cost[None, :]).ravel()
            suf = self.suffix[k + 1]
            room = cap - nw
            if k == last:
                alive = room >= 0
            else:
                alive = room >= suf.x[0] - slack
                at = np.searchsorted(suf.x, room[alive], side="right") - 1
                if at.size:
                    complete = nc[alive] + suf.y[np.maximum(at, 0)]
                    complete = complete[at >= 0]
                    if complete.size:
                        incumbent = min(incumbent, float(complete.min()))
                bound = nc + np.interp(room, suf.x, suf.y)
                alive &= bound <= incumbent + tol
            idx = np.flatnonzero(alive)
            idx = idx[_pareto(nw[idx], nc[idx])]
            parents.append(idx // n)
            picks.append(idx % n)
            weight, cost = nw[idx], nc[idx]
            log.debug("exact: layer %d/%d kept %d states", k + 1, last + 1, idx.size)
        if weight.size == 0:  # only float rounding can get here (min weight == cap)
            return None
        # costs fall with weight: the last state is the optimum; an earlier one within the
        # tie tolerance is the same cost summed in another order, and lighter
        best = int(np.flatnonzero(cost <= cost[-1] + self.cost_tie)[0])
        return self._recover(parents, picks, np.array([best]))[0]

    def front(self, max_states: int) -> np.ndarray | None:
        """All non-dominated assignments (rows of choices, by weight), or None when the
        state set grows past ``max_states``."""
        weight, cost = np.zeros(1), np.zeros(1)
        parents: list[np.ndarray] = []
        picks: list[np.ndarray] = []
        for li in self.order:
            lay = self.layers[li]
            n = lay.weight.size
            if weight.size * n > 8 * max_states:
                return None
            nw = (weight[:, None] + lay.weight[None, :]).ravel()
            nc = (cost[:, None] + lay.cost[None, :]).ravel()
            idx = _pareto(nw, nc)
            if idx.size > max_states:
                return None
            parents.append(idx // n)
            picks.append(idx % n)
            weight, cost = nw[idx], nc[idx]
        return self._recover(parents, picks, np.arange(weight.size))

    def _recover(self, parents: list[np.ndarray], picks: list[np.ndarray],
                 states: np.ndarray) -> np.ndarray:
        out = np.zeros((states.size, len(self.layers)), dtype=np.int64)
        idx = states
        for k in range(len(self.layers) - 1, -1, -1):
            li = self.order[k]
            out[:, li] = self.layers[li].index[picks[k][idx]]
            idx = parents[k][idx]
        return out


def _pareto(weight: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the (weight, cost) non-dominated points, sorted by weight."""
    if weight.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((cost, weight))
    c = cost[order]
    best_before = np.minimum.accumulate(np.concatenate(([np.inf], c[:-1])))
    return order[c < best_before]


# --------------------------------------------------------------------------- table level


@dataclass(frozen=True, eq=False)
class Front:
    """Pareto-optimal assignments sorted by latency, with their totals (fixed included).

    ``complete``: True when these are all the non-dominated points of the table; False when
    the front was sampled (every point is still exactly Pareto-optimal).
    """

    choices: np.ndarray
    latency_s: np.ndarray
    loss: np.ndarray
    model_bytes: np.ndarray
    complete: bool

    def __len__(self) -> int:
        return int(self.choices.shape[0])


class ExactSolver:
    """The exact solver prepared for one table (both orientations built on first use)."""

    name = "exact"

    def __init__(self, table: CandidateTable) -> None:
        self.table = table
        self._by_latency: Knapsack | None = None
        self._by_loss: Knapsack | None = None
        # the largest totals: what "equal up to rounding" is relative to
        self.scale = (table.fixed_latency_s + sum(float(a.max()) for a in table.latency_s),
                      sum(float(a.max()) for a in table.loss))

    @property
    def by_latency(self) -> Knapsack:
        """weight = latency, cost = loss."""
        if self._by_latency is None:
            t = self.table
            self._by_latency = Knapsack(t.latency_s, t.loss, t.model_bytes,
                                        TIE_RTOL * self.scale[1])
        return self._by_latency

    @property
    def by_loss(self) -> Knapsack:
        """weight = loss, cost = latency."""
        if self._by_loss is None:
            t = self.table
            self._by_loss = Knapsack(t.loss, t.latency_s, t.model_bytes,
                                     TIE_RTOL * self.scale[0])
        return self._by_loss

    def fastest(self) -> np.ndarray:
        """The fastest mapping (least loss among the fastest)."""
        choice = self.by_latency.solve(capacity(self.by_latency.min_weight))
        assert choice is not None
        return choice

    def lowest_loss(self) -> np.ndarray:
        """The lowest-loss mapping (fastest among them)."""
        choice = self.by_loss.solve(capacity(self.by_loss.min_weight))
        assert choice is not None
        return choice

    def min_loss(self, latency_target_s: float) -> np.ndarray:
        """Minimum loss with total latency <= the target; InfeasibleTargetError otherwise."""
        t = self.table
        cap = capacity(latency_target_s) - t.fixed_latency_s
        choice = self.by_latency.solve(cap)
        if choice is None:
            fast = self.fastest()
            lat, loss, _ = t.totals(fast)
            raise infeasible_latency(latency_target_s, lat, loss, t.fixed_latency_s, len(t))
        return choice

    def min_latency(self, loss_budget: float) -> np.ndarray:
        """Minimum latency with total loss <= the budget; InfeasibleTargetError otherwise."""
        choice = self.by_loss.solve(capacity(loss_budget))
        if choice is None:
            low = self.lowest_loss()
            lat, loss, _ = self.table.totals(low)
            raise infeasible_loss(loss_budget, loss, lat)
        return choice

    def supported(self) -> np.ndarray:
        """Supported Pareto points (the convex part of the front), as choices by latency."""
        choices = self.by_latency.supported()
        lat, loss, _ = self.table.totals(choices)
        return choices[nondominated(lat, loss, TIE_RTOL, self.scale)]

    def pareto_front(self, points: int = 32, max_states: int = MAX_FRONT_STATES) -> Front:
        """The complete front when it has at most ``max_states`` partial states, else at
        least ``points`` exact Pareto points (fewer only when the front has fewer)."""
        if points < 2:
            raise SearchError(f"a Pareto front needs at least 2 points, got points={points}")
        full = self.by_latency.front(max_states)
        if full is not None:
            return self._front(full, complete=True)
        return self._front(self._sampled(points), complete=False)

    def _front(self, choices: np.ndarray, complete: bool) -> Front:
        lat, loss, nbytes = self.table.totals(choices)
        keep = nondominated(lat, loss, TIE_RTOL, self.scale)
        return Front(choices[keep], lat[keep], loss[keep], nbytes[keep], complete)

    def _sampled(self, points: int) -> np.ndarray:
        # caps are in the knapsack's weight space (latency without the fixed layers), with
        # the tie tolerance of the front so its ends and gaps are judged as nondominated() does
        t = self.table
        knap = self.by_latency
        tie = TIE_RTOL * self.scale[0]
        fixed = t.fixed_latency_s
        chosen: list[np.ndarray] = []

        def add(cap: float) -> None:
            choice = knap.solve(cap)
            if choice is not None:
                chosen.append(choice)

        def current() -> tuple[np.ndarray, np.ndarray]:
            choices = np.array(chosen, dtype=np.int64)
            lat, loss, _ = t.totals(choices)
            keep = nondominated(lat, loss, TIE_RTOL, self.scale)
            return choices[keep], lat[keep]

        add(knap.min_weight + tie)
        lowest = self.by_loss.solve(self.by_loss.min_weight + TIE_RTOL * self.scale[1])
        assert lowest is not None
        chosen.append(lowest)
        lo, hi = t.totals(chosen[0])[0] - fixed, t.totals(lowest)[0] - fixed
        for cap in np.linspace(lo, hi, points)[1:-1]:
            add(float(cap) + tie)
        supported = self.supported()
        sup_lat = t.totals(supported)[0] if supported.size else np.zeros(0)
        exhausted: set[float] = set()
        for _ in range(4 * points):
            lat = current()[1]
            if lat.size >= points:
                break
            gaps = [(lat[i + 1] - lat[i], i) for i in range(lat.size - 1)
                    if float(lat[i + 1]) not in exhausted]
            if not gaps:
                break
            _, i = max(gaps)
            left, right = float(lat[i]), float(lat[i + 1])
            inside = np.flatnonzero((sup_lat > left + tie) & (sup_lat < right - tie))
            if inside.size:
                pick = inside[np.argmin(np.abs(sup_lat[inside] - (left + right) / 2))]
                chosen.append(supported[pick])
                sup_lat = np.delete(sup_lat, pick)
                supported = np.delete(supported, pick, axis=0)
                continue
            if right - left <= 4 * tie:
                exhausted.add(right)
                continue
            # just below the right point: returns the front point next to it, or `left`
            before = lat.size
            add(right - fixed - 3 * tie)
            if current()[1].size == before:
                exhausted.add(right)
        return current()[0]


# ------------------------------------------------------------------ free functions


def min_loss(table: CandidateTable, latency_target_s: float) -> np.ndarray:
    """Exact minimum-loss choice with total latency <= ``latency_target_s``."""
    return ExactSolver(table).min_loss(latency_target_s)


def min_latency(table: CandidateTable, loss_budget: float) -> np.ndarray:
    """Exact minimum-latency choice with total loss <= ``loss_budget``."""
    return ExactSolver(table).min_latency(loss_budget)


def pareto_front(table: CandidateTable, points: int = 32,
                 max_states: int = MAX_FRONT_STATES) -> Front:
    """The exact Pareto front of latency vs loss (see ``ExactSolver.pareto_front``)."""
    return ExactSolver(table).pareto_front(points, max_states)
