"""The evolutionary solver (NSGA-II style) for objectives that are not separable.

The exact solver needs the total to be a sum of per-layer terms. Real mappings also pay for
what happens *between* layers: when layer i writes its output in one layout and the kernel
chosen for layer i+1 wants another, a format conversion runs in between. ``pairwise`` adds
such a latency for every consecutive pair of decision layers (table order = network order),
either as one matrix per pair (``pairwise[i][a, b]``: seconds added when layer i takes
candidate a and layer i+1 candidate b) or as a callable ``f(i, a, b) -> seconds`` taking the
candidate-index arrays of a whole population.

The algorithm is NSGA-II (Deb et al., IEEE TEC 2002): fast non-dominated sorting of
(latency, loss) with Deb's constrained domination when there is a target (feasible beats
infeasible, smaller violation beats larger), crowding distance, binary tournament selection,
uniform crossover over layers, and mutation that moves a layer to a neighbouring candidate
in latency order. An archive keeps every non-dominated feasible point met. Everything random
comes from one ``numpy.random.Generator`` seeded by ``seed``, so a run is deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from grimsim.errors import SearchError
from grimsim.search.objectives import (
    MIN_LATENCY,
    MIN_LOSS,
    PARETO,
    capacity,
    check_objective,
    nondominated,
)
from grimsim.search.table import CandidateTable

log = logging.getLogger(__name__)

PairwiseFn = Callable[[int, np.ndarray, np.ndarray], np.ndarray]
#: One (n_i x n_{i+1}) matrix per consecutive pair of layers, or a callable.
PairwiseLatency = Union[Sequence[np.ndarray], PairwiseFn]  # noqa: UP007 (runtime alias)


def _check_matrices(table: CandidateTable, pairwise: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(pairwise) != len(table) - 1:
        raise SearchError(f"pairwise latency needs one matrix per consecutive pair of layers "
                          f"({len(table) - 1}), got {len(pairwise)}")
    out = []
    for i, m in enumerate(pairwise):
        arr = np.asarray(m, dtype=np.float64)
        want = (int(table.sizes[i]), int(table.sizes[i + 1]))
        if arr.shape != want:
            raise SearchError(f"pairwise latency matrix {i} ({table.layers[i]} -> "
                              f"{table.layers[i + 1]}) must have shape {want} (candidates of "
                              f"the two layers), got {arr.shape}")
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise SearchError(f"pairwise latency matrix {i} ({table.layers[i]} -> "
                              f"{table.layers[i + 1]}) must hold finite seconds >= 0")
        out.append(arr)
    return out


def pairwise_latency(table: CandidateTable, choices: np.ndarray,
                     pairwise: PairwiseLatency | None) -> np.ndarray:
    """The pairwise latency of each row of ``choices`` (table candidate indices)."""
    choices = np.atleast_2d(choices)
    if pairwise is None or len(table) < 2:
        return np.zeros(choices.shape[0])
    total = np.zeros(choices.shape[0])
    if callable(pairwise):
        for i in range(len(table) - 1):
            extra = np.asarray(pairwise(i, choices[:, i], choices[:, i + 1]), dtype=np.float64)
            if extra.shape != (choices.shape[0],) or not np.isfinite(extra).all() \
                    or (extra < 0).any():
                raise SearchError(f"the pairwise latency callable must return one finite "
                                  f"value >= 0 per row for pair {i}, got shape {extra.shape}")
            total += extra
        return total
    for i, m in enumerate(_check_matrices(table, pairwise)):
        total += m[choices[:, i], choices[:, i + 1]]
    return total


def evaluate(table: CandidateTable, choices: np.ndarray,
             pairwise: PairwiseLatency | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(latency_s, loss, model_bytes) per row of ``choices``, pairwise latency included."""
    choices = np.atleast_2d(table.check_choice(choices))
    lat, loss, nbytes = table.totals(choices)
    return lat + pairwise_latency(table, choices, pairwise), loss, nbytes


@dataclass(frozen=True, eq=False)
class Evolution:
    """What an NSGA-II run found: the non-dominated feasible points (by latency) and, for a
    constrained objective, the best feasible choice (None when nothing met the target)."""

    front: np.ndarray
    latency_s: np.ndarray
    loss: np.ndarray
    model_bytes: np.ndarray
    best: np.ndarray | None
    closest: np.ndarray  # the least-violating choice (== best when one is feasible)
    evaluations: int
    generations: int


def _rank(objs: np.ndarray, violation: np.ndarray) -> np.ndarray:
    """Non-domination rank (0 = first front) under constrained domination."""
    le = (objs[:, None, :] <= objs[None, :, :]).all(-1)
    lt = (objs[:, None, :] < objs[None, :, :]).any(-1)
    feas = violation <= 0
    both = feas[:, None] & feas[None, :]
    neither = ~feas[:, None] & ~feas[None, :]
    dom = (both & le & lt) | (feas[:, None] & ~feas[None, :]) \
        | (neither & (violation[:, None] < violation[None, :]))
    count = dom.sum(axis=0)
    rank = np.full(objs.shape[0], -1, dtype=np.int64)
    remaining = np.ones(objs.shape[0], dtype=bool)
    r = 0
    while remaining.any():
        current = remaining & (count == 0)
        rank[current] = r
        remaining &= ~current
        count = count - dom[current].sum(axis=0)
        r += 1
    return rank


def _crowding(objs: np.ndarray, rank: np.ndarray) -> np.ndarray:
    crowd = np.zeros(objs.shape[0])
    for r in np.unique(rank):
        members = np.flatnonzero(rank == r)
        if members.size <= 2:
            crowd[members] = np.inf
            continue
        for j in range(objs.shape[1]):
            values = objs[members, j]
            order = np.argsort(values, kind="stable")
            span = values[order[-1]] - values[order[0]]
            crowd[members[order[[0, -1]]]] = np.inf
            if span > 0:
                gaps = (values[order[2:]] - values[order[:-2]]) / span
                crowd[members[order[1:-1]]] += gaps
    return crowd


def evolve(table: CandidateTable, *, pairwise: PairwiseLatency | None = None,
           objective: str = PARETO, target: float | None = None, population: int = 96,
           generations: int = 150, seed: int = 0, warm_start: Sequence[np.ndarray] = (),
           crossover_rate: float = 0.9, mutation_rate: float | None = None) -> Evolution:
    """Run NSGA-II over ``table`` (see the module docstring).

    ``objective``/``target``: ``PARETO`` (no target), ``MIN_LOSS`` with a latency target in
    seconds, or ``MIN_LATENCY`` with a loss budget; the target is a constraint handled by
    constrained domination. ``warm_start``: choices (one candidate index per layer) put in
    the first population, e.g. the rule-based mapping or exact separable solutions.
    ``mutation_rate``: per-layer probability (default 1/layers).
    """
    target = check_objective(objective, target)
    if population < 4 or population % 2:
        raise SearchError(f"population must be an even number >= 4, got {population}")
    if generations < 0:
        raise SearchError(f"generations must be >= 0, got {generations}")
    if pairwise is not None and not callable(pairwise):
        pairwise = _check_matrices(table, pairwise)
    rng = np.random.default_rng(seed)
    sizes = table.sizes
    n_layers = len(table)
    pm = 1.0 / n_layers if mutation_rate is None else float(mutation_rate)
    # genes are ranks in each layer's latency order, so +-1 is a neighbouring candidate
    order = [np.argsort(lat, kind="stable") for lat in table.latency_s]
    rank_of = [np.argsort(o, kind="stable") for o in order]

    def decode(genes: np.ndarray) -> np.ndarray:
        return np.stack([order[i][genes[:, i]] for i in range(n_layers)], axis=1)

    def encode(choice: np.ndarray) -> np.ndarray:
        return np.array([rank_of[i][c] for i, c in enumerate(choice)], dtype=np.int64)

    cap = None if target is None else capacity(target)
    evaluations = 0

    def score(genes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        nonlocal evaluations
        evaluations += genes.shape[0]
        choices = decode(genes)
        lat, loss, nbytes = evaluate(table, choices, pairwise)
        objs = np.stack([lat, loss], axis=1)
        if cap is None:
            violation = np.zeros(genes.shape[0])
        else:
            value = lat if objective == MIN_LOSS else loss
            violation = np.maximum(value - cap, 0.0) / max(abs(target or 0.0), 1e-300)
        return objs, violation, nbytes, choices

    seeds = [table.dense_choice(), np.zeros(n_layers, np.int64)]  # dense, fastest (in genes)
    genes0 = [encode(seeds[0]), seeds[1]]
    genes0 += [encode(table.check_choice(np.asarray(c))) for c in warm_start]
    genes0 = genes0[:population]
    random = rng.integers(0, sizes, size=(population - len(genes0), n_layers))
    genes = np.concatenate([np.array(genes0, dtype=np.int64).reshape(-1, n_layers), random])
    objs, violation, nbytes, choices = score(genes)
    archive = np.zeros((0, n_layers), dtype=np.int64)

    def update_archive(archive: np.ndarray, choices: np.ndarray, violation: np.ndarray
                       ) -> np.ndarray:
        merged = np.concatenate([archive, choices[violation <= 0]])
        merged = np.unique(merged, axis=0)
        lat, loss, _ = evaluate(table, merged, pairwise)
        return merged[nondominated(lat, loss)]

    archive = update_archive(archive, choices, violation)
    rank = _rank(objs, violation)
    crowd = _crowding(objs, rank)
    for gen in range(generations):
        # binary tournament: lower rank, then larger crowding distance
        a = rng.integers(0, population, size=population)
        b = rng.integers(0, population, size=population)
        a_wins = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowd[a] >= crowd[b]))
        parents = genes[np.where(a_wins, a, b)]
        p1, p2 = parents[0::2], parents[1::2]
        swap = (rng.random(p1.shape) < 0.5) & (rng.random((p1.shape[0], 1)) < crossover_rate)
        children = np.concatenate([np.where(swap, p2, p1), np.where(swap, p1, p2)])
        mutate = rng.random(children.shape) < pm
        step = rng.geometric(0.5, size=children.shape) * rng.choice([-1, 1], size=children.shape)
        children = np.where(mutate, np.clip(children + step, 0, sizes - 1), children)
        c_objs, c_violation, c_nbytes, c_choices = score(children)
        archive = update_archive(archive, c_choices, c_violation)
        # environmental selection over parents + children, duplicates last
        pool = np.concatenate([genes, children])
        p_objs = np.concatenate([objs, c_objs])
        p_violation = np.concatenate([violation, c_violation])
        p_nbytes = np.concatenate([nbytes, c_nbytes])
        _, first = np.unique(pool, axis=0, return_index=True)
        unique = np.zeros(pool.shape[0], dtype=bool)
        unique[first] = True
        p_rank = _rank(p_objs, p_violation)
        p_crowd = _crowding(p_objs, p_rank)
        keep = np.lexsort((-p_crowd, p_rank, ~unique))[:population]
        genes, objs, violation, nbytes = pool[keep], p_objs[keep], p_violation[keep], \
            p_nbytes[keep]
        rank = _rank(objs, violation)
        crowd = _crowding(objs, rank)
        if gen % 50 == 0:
            log.debug("nsga2: generation %d, archive %d, feasible %d", gen, archive.shape[0],
                      int((violation <= 0).sum()))
    final_choices = decode(genes)
    lat, loss, nbytes_a = evaluate(table, archive, pairwise) if archive.size else (
        np.zeros(0), np.zeros(0), np.zeros(0))
    order_a = np.argsort(lat, kind="stable")
    closest = final_choices[int(np.lexsort((objs[:, 1], objs[:, 0], violation))[0])]
    best = None
    if archive.shape[0] and objective != PARETO:
        key = (lat, loss) if objective == MIN_LATENCY else (loss, lat)
        best = archive[int(np.lexsort((key[1], key[0]))[0])]
        closest = best
    return Evolution(archive[order_a], lat[order_a], loss[order_a], nbytes_a[order_a], best,
                     closest, evaluations, generations)
