"""One entry point over the three solvers: ``solve(table, objective, target, solver=...)``.

* ``exact``: provably optimal for the separable objective (``grimsim.search.exact``);
* ``evolutionary``: NSGA-II, for non-separable objectives (``pairwise`` latency terms); it
  is warm-started from the exact solver's supported front points and, given the network,
  from the rule-based mappings;
* ``rules``: the rule-based mapper (needs the network) run at every rate of the table, as a
  baseline: the best of its uniform-rate mappings for the objective.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

import numpy as np

from grimsim.errors import SearchError
from grimsim.network.graph import Network
from grimsim.network.workload import LayerWorkload
from grimsim.search.candidates import DEFAULT_RATES
from grimsim.search.evolutionary import PairwiseLatency, evaluate, evolve
from grimsim.search.exact import MAX_FRONT_STATES, ExactSolver
from grimsim.search.objectives import (
    MIN_LATENCY,
    MIN_LOSS,
    PARETO,
    TIE_RTOL,
    InfeasibleTargetError,
    check_objective,
    fmt,
    infeasible_latency,
    infeasible_loss,
    nondominated,
    within,
)
from grimsim.search.result import LayerChoice, ParetoPoint, SearchResult
from grimsim.search.rules import rule_based_mapping
from grimsim.search.table import CandidateTable

log = logging.getLogger(__name__)

SOLVERS = ("exact", "evolutionary", "rules")


def solve(table: CandidateTable, objective: str, target: float | None = None,
          solver: str = "exact", *, points: int = 32, max_front_points: int = 256,
          max_states: int = MAX_FRONT_STATES, pairwise: PairwiseLatency | None = None,
          network: Network | Iterable[LayerWorkload] | None = None,
          rates: Sequence[float] = DEFAULT_RATES, seed: int = 0, population: int = 96,
          generations: int = 150) -> SearchResult:
    """Search ``table`` for ``objective`` and return a SearchResult.

    ``target``: the latency target in seconds (``min_loss``), the loss budget
    (``min_latency``), or None (``pareto``). ``points``: how many front points to aim for
    when the complete front is too large (``max_states``); the result keeps at most
    ``max_front_points`` of them. ``pairwise`` (evolutionary only): latency between
    consecutive layers. ``network``: the layers, for the rule-based mapper and warm starts.
    Raises InfeasibleTargetError (a SearchError) with the closest feasible point when no
    mapping meets the target.
    """
    target = check_objective(objective, target)
    if solver not in SOLVERS:
        raise SearchError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    if pairwise is not None and solver != "evolutionary":
        raise SearchError("pairwise latency terms make the objective non-separable: use "
                          "solver='evolutionary'")
    if max_front_points < 2:
        raise SearchError(f"max_front_points must be >= 2, got {max_front_points}")
    t0 = time.perf_counter()
    notes: list[str] = []
    if solver == "exact":
        choice, front, complete = _exact(table, objective, target, points, max_states)
    elif solver == "rules":
        if network is None:
            raise SearchError("the rule-based solver needs the network's layers (network=...)")
        choice, front = _rules(table, network, objective, target, rates, notes)
        complete = False
    else:
        choice, front = _evolutionary(table, objective, target, pairwise, network, rates, seed,
                                      population, generations)
        complete = False
    if objective == PARETO:
        choice = _knee(table, front, pairwise)
    search_s = time.perf_counter() - t0
    return _result(table, objective, target, solver, choice, front, complete, pairwise,
                   max_front_points, search_s, notes)


# --------------------------------------------------------------------------- solvers


def _exact(table: CandidateTable, objective: str, target: float | None, points: int,
           max_states: int) -> tuple[np.ndarray, np.ndarray, bool]:
    exact = ExactSolver(table)
    if objective == PARETO:
        front = exact.pareto_front(points, max_states)
        return front.choices[0], front.choices, front.complete
    assert target is not None
    choice = exact.min_loss(target) if objective == MIN_LOSS else exact.min_latency(target)
    return choice, exact.supported(), False


def _rules(table: CandidateTable, network: Network | Iterable[LayerWorkload], objective: str,
           target: float | None, rates: Sequence[float], notes: list[str]
           ) -> tuple[np.ndarray, np.ndarray]:
    layers = list(network.layers() if isinstance(network, Network) else network)
    missing = sorted(set(table.layers) - {wl.name for wl in layers})
    if missing:
        raise SearchError(f"the network lacks table layers {', '.join(missing[:5])}")
    wanted = [wl for wl in layers if wl.name in set(table.layers)]
    choices = np.array([table.choice_of(rule_based_mapping(wanted, rate), nearest=True)
                        for rate in (0.0, *sorted(set(rates)))])
    lat, loss, _ = table.totals(choices)
    notes.append("rule-based mappings tried at rates 0, "
                 + ", ".join(fmt(r) for r in sorted(set(rates))))
    front = choices[nondominated(lat, loss, TIE_RTOL)]
    if objective == PARETO:
        return front[0], front
    assert target is not None
    ok = np.asarray(within(lat if objective == MIN_LOSS else loss, target))
    if not ok.any():
        if objective == MIN_LOSS:
            i = int(np.argmin(lat))
            raise infeasible_latency(target, float(lat[i]), float(loss[i]),
                                     table.fixed_latency_s, len(table)).framed(
                "rule-based mapper: ", "; the exact solver reaches further")
        i = int(np.argmin(loss))
        raise infeasible_loss(target, float(loss[i]), float(lat[i])).framed(
            "rule-based mapper: ", "; the exact solver reaches further")
    key = (lat, loss) if objective == MIN_LATENCY else (loss, lat)
    ranked = np.lexsort((key[1], key[0]))
    best = int(ranked[ok[ranked]][0])
    return choices[best], front


def _evolutionary(table: CandidateTable, objective: str, target: float | None,
                  pairwise: PairwiseLatency | None,
                  network: Network | Iterable[LayerWorkload] | None, rates: Sequence[float],
                  seed: int, population: int, generations: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    seeds = list(ExactSolver(table).supported())
    if len(seeds) > population // 4:
        keep = np.unique(np.round(np.linspace(0, len(seeds) - 1, population // 4)).astype(int))
        seeds = [seeds[i] for i in keep]
    if network is not None:
        layers = list(network.layers() if isinstance(network, Network) else network)
        wanted = [wl for wl in layers if wl.name in set(table.layers)]
        seeds += [table.choice_of(rule_based_mapping(wanted, rate), nearest=True)
                  for rate in rates]
    run = evolve(table, pairwise=pairwise, objective=objective, target=target,
                 population=population, generations=generations, seed=seed,
                 warm_start=seeds[:population - 2])
    if objective == PARETO:
        if not len(run.front):
            raise SearchError("the evolutionary search found no point (empty table?)")
        return run.front[0], run.front
    if run.best is None:
        lat, loss, _ = evaluate(table, run.closest, pairwise)
        assert target is not None
        if objective == MIN_LOSS:
            raise infeasible_latency(target, float(lat[0]), float(loss[0]),
                                     table.fixed_latency_s, len(table)).framed(
                "evolutionary search: ", " (the closest point it found, with pairwise "
                "latency)")
        raise infeasible_loss(target, float(loss[0]), float(lat[0])).framed(
            "evolutionary search: ", " (the closest point it found)")
    return run.best, run.front


# --------------------------------------------------------------------------- result


def _knee(table: CandidateTable, front: np.ndarray, pairwise: PairwiseLatency | None
          ) -> np.ndarray:
    lat, loss, _ = evaluate(table, front, pairwise)
    if lat.size <= 2:
        return front[int(np.argmin(loss))]
    x = (lat - lat.min()) / max(float(np.ptp(lat)), 1e-300)
    y = (loss - loss.min()) / max(float(np.ptp(loss)), 1e-300)
    # distance below the chord from (0, 1) to (1, 0) of the scaled front
    return front[int(np.argmax(1.0 - x - y))]


def _result(table: CandidateTable, objective: str, target: float | None, solver: str,
            choice: np.ndarray, front: np.ndarray, complete: bool,
            pairwise: PairwiseLatency | None, max_front_points: int, search_s: float,
            notes: list[str]) -> SearchResult:
    choice = table.check_choice(choice)
    lat_l, loss_l, bytes_l = table.per_layer(choice)
    extra = float(evaluate(table, choice, pairwise)[0][0] - table.totals(choice)[0])
    lat, loss, nbytes = table.totals(choice)
    dense_lat, _, dense_bytes = table.totals(table.dense_choice())
    layers = tuple(LayerChoice(name, table.specs[i][int(c)], float(lat_l[i]), float(loss_l[i]),
                               float(bytes_l[i]))
                   for i, (name, c) in enumerate(zip(table.layers, choice, strict=True)))
    front = np.atleast_2d(front) if len(front) else np.zeros((0, len(table)), np.int64)
    if front.shape[0] > max_front_points:
        keep = np.unique(np.round(np.linspace(0, front.shape[0] - 1,
                                              max_front_points)).astype(int))
        front = front[keep]
        complete = False
        notes.append(f"front thinned to {front.shape[0]} points")
    f_lat, f_loss, f_bytes = evaluate(table, front, pairwise) if front.shape[0] else (
        np.zeros(0), np.zeros(0), np.zeros(0))
    pareto = tuple(ParetoPoint(float(f_lat[k]), float(f_loss[k]), float(f_bytes[k]),
                               tuple(table.specs[i][int(c)] for i, c in enumerate(row)))
                   for k, row in enumerate(front))
    return SearchResult(objective=objective, target=target, solver=solver, layers=layers,
                        latency_s=lat + extra, loss=loss, model_bytes=nbytes,
                        dense_latency_s=dense_lat, dense_model_bytes=dense_bytes,
                        fixed_latency_s=table.fixed_latency_s, fixed_bytes=table.fixed_bytes,
                        pareto=pareto, pareto_complete=complete, search_s=search_s,
                        extra_latency_s=extra, notes=tuple(notes))


__all__ = ["SOLVERS", "InfeasibleTargetError", "solve"]
