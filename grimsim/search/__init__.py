"""Per-layer pruning-scheme mapping search: candidates, objectives, solvers, results.

Cost numbers reach the search only as a ``CandidateTable`` (arrays of latency, loss and
model bytes per layer and candidate); ``solve`` runs the exact, evolutionary or rule-based
solver on it and returns a ``SearchResult`` that round-trips through JSON and writes the
mapping file of DESIGN.md.
"""

from grimsim.search.candidates import (
    DEFAULT_RATES,
    candidate_schemes,
    candidate_specs,
    decision_layers,
    is_decision_layer,
)
from grimsim.search.evolutionary import Evolution, PairwiseLatency, evaluate, evolve
from grimsim.search.exact import ExactSolver, Front, min_latency, min_loss, pareto_front
from grimsim.search.objectives import (
    MIN_LATENCY,
    MIN_LOSS,
    OBJECTIVES,
    PARETO,
    InfeasibleTargetError,
    hypervolume,
    nondominated,
    within,
)
from grimsim.search.result import (
    LayerChoice,
    ParetoPoint,
    SchemeAssignment,
    SearchResult,
    mapping_file,
    read_mapping_file,
)
from grimsim.search.rules import RULES, Rule, RuleDecision, rule_based_mapping, rule_decisions
from grimsim.search.solve import SOLVERS, solve
from grimsim.search.table import CandidateTable

__all__ = [
    "DEFAULT_RATES",
    "MIN_LATENCY",
    "MIN_LOSS",
    "OBJECTIVES",
    "PARETO",
    "RULES",
    "SOLVERS",
    "CandidateTable",
    "Evolution",
    "ExactSolver",
    "Front",
    "InfeasibleTargetError",
    "LayerChoice",
    "PairwiseLatency",
    "ParetoPoint",
    "Rule",
    "RuleDecision",
    "SchemeAssignment",
    "SearchResult",
    "candidate_schemes",
    "candidate_specs",
    "decision_layers",
    "evaluate",
    "evolve",
    "hypervolume",
    "is_decision_layer",
    "mapping_file",
    "min_latency",
    "min_loss",
    "nondominated",
    "pareto_front",
    "read_mapping_file",
    "rule_based_mapping",
    "rule_decisions",
    "solve",
    "within",
]
