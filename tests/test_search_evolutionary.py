"""NSGA-II: close to the exact front on separable tables, better than the exact separable
solution when consecutive layers pay format conversions, deterministic under a seed."""

from __future__ import annotations

import numpy as np
import pytest

from grimsim.errors import SearchError
from grimsim.search import (
    MIN_LOSS,
    PARETO,
    CandidateTable,
    ExactSolver,
    InfeasibleTargetError,
    evaluate,
    evolve,
    hypervolume,
    min_loss,
    pareto_front,
    solve,
    within,
)

SPECS = ("dense", "unstructured:0.5", "unstructured:0.75", "bcr:4x16:0.5", "bcr:4x16:0.75",
         "filter:0.5", "column:0.5", "nm:2:4")


def random_table(seed: int, count: int = 10, n: int = 8) -> CandidateTable:
    rng = np.random.default_rng(seed)
    lat = [np.sort(rng.uniform(0.1, 1.0, n))[::-1] for _ in range(count)]
    loss = [np.sort(rng.uniform(0.0, 0.2, n)) * rng.uniform(0.5, 2.0) for _ in range(count)]
    return CandidateTable.from_lists([f"l{i}" for i in range(count)], [SPECS[:n]] * count,
                                     lat, loss, [np.ones(n)] * count)


@pytest.mark.parametrize("seed", [0, 1])
def test_front_approaches_the_exact_front(seed: int) -> None:
    table = random_table(seed)
    exact = pareto_front(table, max_states=10**6)
    assert exact.complete and len(exact) > 50
    ref = (float(exact.latency_s.max()) * 1.05, float(exact.loss.max()) * 1.05)
    run = evolve(table, population=64, generations=100, seed=seed)
    ratio = hypervolume(run.latency_s, run.loss, ref) / hypervolume(exact.latency_s, exact.loss,
                                                                   ref)
    assert 0.97 <= ratio <= 1.0 + 1e-12
    # every point it reports is a real assignment with the reported totals
    lat, loss, _ = table.totals(run.front)
    assert np.array_equal(lat, run.latency_s) and np.array_equal(loss, run.loss)


def test_deterministic_under_a_seed() -> None:
    table = random_table(5, count=6)
    a = evolve(table, population=32, generations=30, seed=11)
    b = evolve(table, population=32, generations=30, seed=11)
    assert np.array_equal(a.front, b.front) and a.evaluations == b.evaluations
    c = evolve(table, population=32, generations=30, seed=12)
    assert c.evaluations == a.evaluations  # same budget, other draws


# --- a table where format conversions between consecutive layers matter --------------------
# candidates: dense (layout 0), bcr (layout 1), unstructured (layout 2). Both sparse schemes
# remove the same loss; on even layers bcr is a hair faster, on odd layers unstructured is. The
# separable optimum alternates layouts; every switch costs a conversion of 0.3 s.
CONVERSION_S = 0.3
LAYOUT = np.array([0, 1, 2])


def conversion_table(count: int = 8) -> tuple[CandidateTable, list[np.ndarray]]:
    lat, loss = [], []
    for i in range(count):
        fast, slow = 0.50, 0.51
        lat.append([1.0, fast, slow] if i % 2 == 0 else [1.0, slow, fast])
        loss.append([0.0, 0.1, 0.1])
    table = CandidateTable.from_lists([f"l{i}" for i in range(count)],
                                      [("dense", "bcr:4x16:0.75", "unstructured:0.75")] * count,
                                      lat, loss, [[4.0, 1.5, 2.0]] * count)
    switch = (LAYOUT[:, None] != LAYOUT[None, :]) * CONVERSION_S
    return table, [switch] * (count - 1)


def test_pairwise_penalty_beats_the_exact_separable_solution() -> None:
    table, pairwise = conversion_table()
    target = 4.1  # all sparse (4.0-4.08 s), no room for a dense layer (+0.5 s)
    separable = min_loss(table, target)  # best when conversions are ignored
    assert len(set(separable.tolist())) == 2  # it alternates bcr / unstructured
    sep_lat, sep_loss, _ = evaluate(table, separable, pairwise)
    assert sep_lat[0] > target  # ... and misses the target once conversions are paid
    run = evolve(table, pairwise=pairwise, population=48, generations=80, seed=0)
    dominating = (run.latency_s <= sep_lat[0]) & (run.loss <= sep_loss[0]) \
        & ((run.latency_s < sep_lat[0]) | (run.loss < sep_loss[0]))
    assert dominating.any()
    result = solve(table, MIN_LOSS, target, solver="evolutionary", pairwise=pairwise, seed=0,
                   population=48, generations=80)
    assert within(result.latency_s, target)
    assert result.loss == pytest.approx(float(sep_loss[0]))  # the separable optimum's loss
    assert result.extra_latency_s == pytest.approx(0.0)  # one layout throughout
    assert len({c.scheme for c in result.layers}) == 1


def test_pairwise_callable_equals_matrices() -> None:
    table, pairwise = conversion_table(5)
    rng = np.random.default_rng(0)
    choices = rng.integers(0, 3, size=(50, 5))

    def convert(i: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(LAYOUT[a] != LAYOUT[b], CONVERSION_S, 0.0)

    assert np.array_equal(evaluate(table, choices, pairwise)[0],
                          evaluate(table, choices, convert)[0])
    a = evolve(table, pairwise=pairwise, population=16, generations=10, seed=3)
    b = evolve(table, pairwise=convert, population=16, generations=10, seed=3)
    assert np.array_equal(a.front, b.front)


def test_constrained_run_respects_the_target() -> None:
    table = random_table(2, count=8)
    target = 0.55 * table.totals(table.dense_choice())[0]
    run = evolve(table, objective=MIN_LOSS, target=target, population=48, generations=60,
                 seed=1)
    assert run.best is not None
    lat, loss, _ = table.totals(run.best)
    assert within(lat, target) and (run.latency_s <= target * (1 + 1e-9)).all()
    best_loss = table.totals(ExactSolver(table).min_loss(target))[1]
    assert best_loss <= loss <= best_loss * 1.10 + 1e-12


def test_unreachable_target_reports_closest_point() -> None:
    table, pairwise = conversion_table(4)
    with pytest.raises(InfeasibleTargetError, match="evolutionary search: latency target"):
        solve(table, MIN_LOSS, 1.0, solver="evolutionary", pairwise=pairwise, population=16,
              generations=5)


@pytest.mark.parametrize(("pairwise", "message"), [
    ([np.zeros((3, 3))], "one matrix per consecutive pair"),
    ([np.zeros((3, 2))] * 3, r"must have shape \(3, 3\)"),
    ([np.full((3, 3), -1.0)] * 3, "finite seconds >= 0"),
])
def test_bad_pairwise_matrices(pairwise: list[np.ndarray], message: str) -> None:
    table, _ = conversion_table(4)
    with pytest.raises(SearchError, match=message):
        evolve(table, pairwise=pairwise, generations=1)


def test_bad_settings() -> None:
    table, pairwise = conversion_table(3)
    with pytest.raises(SearchError, match="even number"):
        evolve(table, population=7)
    with pytest.raises(SearchError, match="needs a latency target"):
        evolve(table, objective=MIN_LOSS)
    with pytest.raises(SearchError, match="takes no target"):
        evolve(table, objective=PARETO, target=1.0)
    with pytest.raises(SearchError, match="use solver='evolutionary'"):
        solve(table, PARETO, pairwise=pairwise)
    with pytest.raises(SearchError, match="one finite value >= 0 per row"):
        evaluate(table, np.zeros((2, 3), dtype=int), lambda i, a, b: np.zeros(1))
