"""The exact solver equals brute force (itertools.product) on small random tables."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import SearchError
from grimsim.search import (
    CandidateTable,
    ExactSolver,
    InfeasibleTargetError,
    min_latency,
    min_loss,
    pareto_front,
    within,
)

SPECS = ("dense", "unstructured:0.5", "unstructured:0.75", "bcr:4x16:0.5", "bcr:4x16:0.75",
         "filter:0.5", "column:0.5", "nm:2:4")

# values with many exact ties (hypothesis also shrinks towards them) mixed with any floats
value = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]),
                  st.floats(min_value=0.0, max_value=10.0, allow_nan=False))


@st.composite
def tables(draw: st.DrawFn) -> CandidateTable:
    count = draw(st.integers(2, 6))
    sizes = [draw(st.integers(2, 8)) for _ in range(count)]
    col = [[draw(st.lists(value, min_size=n, max_size=n)) for n in sizes] for _ in range(3)]
    fixed = draw(st.sampled_from([0.0, 0.5, 1.7]))
    return CandidateTable.from_lists([f"l{i}" for i in range(count)],
                                     [SPECS[:n] for n in sizes], *col, fixed_latency_s=fixed)


def brute(table: CandidateTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every assignment and its (latency, loss) totals, by enumeration."""
    every = np.array(list(itertools.product(*(range(n) for n in table.sizes))))
    lat = np.full(every.shape[0], table.fixed_latency_s)
    loss = np.zeros(every.shape[0])
    for i in range(len(table)):
        lat = lat + table.latency_s[i][every[:, i]]
        loss = loss + table.loss[i][every[:, i]]
    return every, lat, loss


def brute_front(lat: np.ndarray, loss: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Non-dominated (latency, loss) points, treating differences below rtol of the range as
    ties (the same sum in another order): a point survives unless another is no worse within
    the tolerance in both and better by more than it in one."""
    tx = rtol * max(np.abs(lat).max(), 1e-300)
    ty = rtol * max(np.abs(loss).max(), 1e-300)
    strict, best = [], np.inf
    for i in np.lexsort((loss, lat)):
        if loss[i] < best:
            strict.append(i)
            best = loss[i]
    keep = []
    for i in strict:
        beaten = [(lat[j] <= lat[i] + tx and loss[j] <= loss[i] + ty
                   and (lat[j] < lat[i] - tx or loss[j] < loss[i] - ty)) for j in strict]
        if not any(beaten):
            keep.append(i)
    return np.array(sorted(set(zip(lat[keep], loss[keep], strict=True))))


def distinct(points: np.ndarray, scale: np.ndarray, rtol: float = 1e-8) -> int:
    """How many of the points differ from every earlier one by more than rtol * scale."""
    return sum(not (np.abs(points[:k] - p) <= rtol * scale).all(axis=1).any()
               for k, p in enumerate(points))


def covers(points: np.ndarray, others: np.ndarray, scale: np.ndarray, rtol: float = 1e-8
           ) -> bool:
    """Every row of ``points`` is within rtol * scale of some row of ``others``."""
    return all((np.abs(others - p) <= rtol * scale).all(axis=1).any() for p in points)


def scale_of(lat: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """The largest totals: what "equal up to rounding" is relative to."""
    return np.array([lat.max(), loss.max()]) + 1e-300


@given(tables(), st.floats(0.0, 1.0), st.booleans())
def test_min_loss_equals_brute_force(table: CandidateTable, frac: float, exact_hit: bool
                                     ) -> None:
    _, lat, loss = brute(table)
    # a target between the extremes, or exactly one of the reachable totals
    target = float(np.sort(lat)[int(frac * (lat.size - 1))]) if exact_hit else \
        float(lat.min() * 0.9 + frac * (lat.max() - lat.min() * 0.9))
    feasible = np.asarray(within(lat, target))
    if not feasible.any():
        with pytest.raises(InfeasibleTargetError, match="is below the fastest mapping"):
            min_loss(table, target)
        return
    choice = min_loss(table, target)
    got_lat, got_loss, _ = table.totals(choice)
    assert within(got_lat, target)
    # equal up to ties: 1e-9 of the largest reachable total (TIE_RTOL)
    assert got_loss == pytest.approx(loss[feasible].min(), rel=0, abs=1e-9 * loss.max() + 1e-300)
    # Pareto-optimal: nothing feasible is as good in loss and faster
    same = feasible & (loss <= got_loss + 1e-9 * max(loss.max(), 1.0))
    assert got_lat <= lat[same].min() + 1e-9 * lat.max()


@given(tables(), st.floats(0.0, 1.0), st.booleans())
def test_min_latency_equals_brute_force(table: CandidateTable, frac: float, exact_hit: bool
                                        ) -> None:
    _, lat, loss = brute(table)
    budget = float(np.sort(loss)[int(frac * (loss.size - 1))]) if exact_hit else \
        float(loss.min() * 0.9 + frac * (loss.max() - loss.min() * 0.9))
    feasible = np.asarray(within(loss, budget))
    if not feasible.any():
        with pytest.raises(InfeasibleTargetError, match="is below the lowest reachable loss"):
            min_latency(table, budget)
        return
    choice = min_latency(table, budget)
    got_lat, got_loss, _ = table.totals(choice)
    assert within(got_loss, budget)
    assert got_lat == pytest.approx(lat[feasible].min(), rel=0, abs=1e-9 * lat.max() + 1e-300)


@given(tables())
def test_pareto_front_equals_brute_force_front(table: CandidateTable) -> None:
    _, lat, loss = brute(table)
    expected = brute_front(lat, loss)
    front = pareto_front(table)
    assert front.complete
    got = np.column_stack([front.latency_s, front.loss])
    scale = scale_of(lat, loss)
    assert covers(got, expected, scale) and covers(expected, got, scale)
    assert np.all(np.diff(front.latency_s) > 0) and np.all(np.diff(front.loss) < 0)
    # the stored choices produce the stored totals
    again = table.totals(front.choices)
    assert np.array_equal(again[0], front.latency_s) and np.array_equal(again[1], front.loss)


@given(tables())
def test_sampled_front_points_are_exact_pareto_points(table: CandidateTable) -> None:
    _, lat, loss = brute(table)
    expected = brute_front(lat, loss)
    sampled = ExactSolver(table).pareto_front(points=5, max_states=1)
    got = np.column_stack([sampled.latency_s, sampled.loss])
    scale = scale_of(lat, loss)
    assert covers(got, expected, scale)
    assert len(sampled) >= min(5, distinct(expected, scale))


@given(tables())
def test_supported_points_are_on_the_front(table: CandidateTable) -> None:
    _, lat, loss = brute(table)
    sup = ExactSolver(table).supported()
    s_lat, s_loss, _ = table.totals(sup)
    assert covers(np.column_stack([s_lat, s_loss]), brute_front(lat, loss), scale_of(lat, loss))


def test_dominated_candidates_are_never_chosen() -> None:
    # candidate 2 is worse than candidate 1 in both latency and loss
    t = CandidateTable.from_lists(["a", "b"], [SPECS[:3], SPECS[:2]],
                                  [[4.0, 2.0, 3.0], [1.0, 0.5]], [[0.0, 0.1, 0.2], [0.0, 0.3]],
                                  [[1, 1, 1], [1, 1]])
    solver = ExactSolver(t)
    assert 2 not in solver.by_latency.layers[0].index
    front = solver.pareto_front()
    assert not (front.choices[:, 0] == 2).any()
    # (5, 0), (3, 0.1), (2.5, 0.4); (4.5, 0.3) is dominated by (3, 0.1)
    assert front.complete and len(front) == 3


def test_infeasible_latency_target_gives_the_fastest_mapping() -> None:
    t = CandidateTable.from_lists(["a", "b"], [SPECS[:2], SPECS[:2]],
                                  [[2.0e-3, 1.2e-3], [2.0e-3, 1.0e-3]],
                                  [[0.0, 0.1], [0.0, 0.3]], [[1, 1], [1, 1]],
                                  fixed_latency_s=2.0e-3)
    with pytest.raises(InfeasibleTargetError) as info:
        min_loss(t, 3.0e-3)
    message = str(info.value)
    assert "latency target 3 ms is below the fastest mapping 4.2 ms" in message
    assert "all 2 searched layers at their fastest candidate" in message
    assert "2 ms of it in layers that are not searched" in message
    assert "try --latency-ms >= 4.2" in message
    assert info.value.closest_latency_s == pytest.approx(4.2e-3)
    assert info.value.closest_loss == pytest.approx(0.4)
    # the suggestion is feasible, and gives the fastest mapping
    assert min_loss(t, 4.2e-3).tolist() == [1, 1]


def test_infeasible_loss_budget_gives_the_lowest_loss_mapping() -> None:
    t = CandidateTable.from_lists(["a", "b"], [SPECS[:2], SPECS[:2]],
                                  [[2.0, 1.0], [2.0, 1.0]], [[0.05, 0.1], [0.0, 0.3]],
                                  [[1, 1], [1, 1]])
    with pytest.raises(InfeasibleTargetError) as info:
        min_latency(t, 0.01)
    message = str(info.value)
    assert "loss budget 0.01 is below the lowest reachable loss 0.05" in message
    assert "try --max-loss >= 0.05" in message
    assert isinstance(info.value, SearchError)
    assert min_latency(t, 0.05).tolist() == [0, 0]


def test_zero_latency_target_and_zero_loss_budget() -> None:
    t = CandidateTable.from_lists(["a"], [SPECS[:2]], [[1.0, 0.0]], [[0.0, 0.5]], [[1, 1]])
    assert min_loss(t, 0.0).tolist() == [1]
    assert min_latency(t, 0.0).tolist() == [0]


def test_many_layers_stay_fast() -> None:
    # 40 layers x 30 candidates: far beyond brute force; the answer must respect the target
    # and beat (or match) the best of many random feasible assignments
    rng = np.random.default_rng(7)
    count, n = 40, 30
    lat = [np.sort(rng.uniform(0.1, 1.0, n))[::-1] for _ in range(count)]
    loss = [np.sort(rng.uniform(0.0, 0.1, n)) for _ in range(count)]
    specs = [("dense", *(f"unstructured:{0.5 + j / 100}" for j in range(n - 1)))] * count
    t = CandidateTable.from_lists([f"l{i}" for i in range(count)], specs, lat, loss,
                                  [np.ones(n)] * count)
    target = 0.6 * t.totals(t.dense_choice())[0]
    choice = min_loss(t, target)
    got_lat, got_loss, _ = t.totals(choice)
    assert within(got_lat, target)
    random = rng.integers(0, n, size=(20000, count))
    r_lat, r_loss, _ = t.totals(random)
    ok = r_lat <= target
    assert ok.any() and got_loss <= r_loss[ok].min()


def test_state_limit_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # losses exactly linear in latency: every partial mapping ties, nothing can be pruned
    import grimsim.search.exact as exact

    monkeypatch.setattr(exact, "MAX_SOLVE_STATES", 1000)
    rng = np.random.default_rng(0)
    count, n = 12, 8
    lat = [rng.uniform(0.0, 1.0, n) for _ in range(count)]
    t = CandidateTable.from_lists([f"l{i}" for i in range(count)], [SPECS[:n]] * count, lat,
                                  [1.0 - a for a in lat], [np.ones(n)] * count)
    with pytest.raises(SearchError, match=r"limit 1,000\): .* use solver='evolutionary'"):
        min_loss(t, 0.5 * t.totals(t.dense_choice())[0])
