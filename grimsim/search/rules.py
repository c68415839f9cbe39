"""Rule-based scheme mapping: a scheme spec per layer from its type, shape and position.

In the spirit of the mapping rules of the compiler-aware pruning line of work: PatDNN
(Niu et al., ASPLOS 2020, arXiv:2001.00138) for pattern pruning of 3x3 convolutions, "Towards
Real-Time DNN Inference on Mobile Platforms with Model Pruning and Compiler Optimization"
(Niu et al., IJCAI 2020 demo, arXiv:2004.11250), NPAS (Li et al., CVPR 2021,
arXiv:2012.00596: pattern or block-punched for 3x3, block-based for 1x1 and FC) and GRIM's
BCR (Niu et al., TPAMI 2022). No cost model is consulted: the rules look only at the layer's
workload (op, kernel, M/K, groups) and its position, so they are a baseline to compare the
searches against and a warm start for the evolutionary search.

``RULES`` is the rule table: an ordered tuple of ``Rule`` values, each with the condition it
tests, the scheme it picks at a target rate and its rationale. The first rule whose condition
holds and whose scheme is legal for the layer wins; ``dense`` is the last resort.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from grimsim.errors import SearchError
from grimsim.network.graph import Network
from grimsim.network.workload import GemmView, LayerWorkload, Op
from grimsim.pruning.scheme import PATTERN_SPARSITY, PruningScheme, is_legal
from grimsim.search.candidates import decision_layers

#: K below this is too short a reduction for any sparse kernel to win: a 4-wide float32 SIMD
#: lane set covers it in a few steps and index decoding costs more than the skipped MACs.
SMALL_K = 32
#: M below this leaves too few output rows to form blocks of rows.
SMALL_M = 8
#: The classifier keeps more weights than the hidden FC layers: Han et al. (NeurIPS 2015,
#: "Learning both Weights and Connections", arXiv:1506.02626) keep 25% of AlexNet's fc8
#: against 9% of fc6 and fc7.
LAST_FC_MAX_RATE = 0.75


@dataclass(frozen=True)
class LayerFacts:
    """What the rules may look at: the layer, its main prunable GEMM and its position."""

    layer: LayerWorkload
    gemm: GemmView
    position: int  # among the prunable layers, from 0
    count: int  # number of prunable layers

    @property
    def op(self) -> str:
        return self.layer.op

    @property
    def kernel(self) -> tuple[int, int] | None:
        return self.gemm.kernel if self.op in (Op.CONV, Op.DWCONV) else None

    @property
    def rows(self) -> int:
        """Output rows of one group's GEMM."""
        return self.gemm.M // self.gemm.groups

    @property
    def is_depthwise(self) -> bool:
        kernel = self.gemm.kernel
        return self.op == Op.DWCONV or (self.gemm.groups > 1 and kernel is not None
                                        and self.gemm.K == kernel[0] * kernel[1])

    @property
    def is_first(self) -> bool:
        return self.position == 0

    @property
    def is_last(self) -> bool:
        return self.position == self.count - 1


def _pow2_at_most(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


def fit_block(preferred: tuple[int, int], facts: LayerFacts) -> tuple[int, int]:
    """``preferred`` shrunk (powers of two) to fit the GEMM: at least two blocks of rows
    and of columns, so a block never degenerates into filter or column pruning."""
    rows = min(preferred[0], max(1, _pow2_at_most(facts.rows // 2)))
    cols = min(preferred[1], max(1, _pow2_at_most(facts.gemm.K // 2)))
    return rows, cols


def _bcr(preferred: tuple[int, int]) -> Callable[[LayerFacts, float], PruningScheme]:
    def pick(facts: LayerFacts, rate: float) -> PruningScheme:
        rows, cols = fit_block(preferred, facts)
        return PruningScheme.bcr(rows, cols, rate)

    return pick


def _dense(facts: LayerFacts, rate: float) -> PruningScheme:
    return PruningScheme.dense()


def _pattern(facts: LayerFacts, rate: float) -> PruningScheme:
    if rate < PATTERN_SPARSITY - 1e-9:
        # below what 4-of-9 already removes: BCR reaches the rate with small blocks
        return _bcr((4, 16))(facts, rate)
    return PruningScheme.pattern(None if rate <= PATTERN_SPARSITY + 1e-9 else rate)


def _last_fc(facts: LayerFacts, rate: float) -> PruningScheme:
    return PruningScheme.unstructured(min(rate, LAST_FC_MAX_RATE))


@dataclass(frozen=True)
class Rule:
    """One row of the rule table."""

    name: str
    when: Callable[[LayerFacts], bool]
    scheme: Callable[[LayerFacts, float], PruningScheme]
    rationale: str


RULES: tuple[Rule, ...] = (
    Rule("depthwise", lambda f: f.is_depthwise, _dense,
         "Depthwise convolutions have K = kh*kw (9) per channel and a tiny share of the "
         "weights and MACs; they are memory-bound, so pruning saves nothing measurable and "
         "the pruning-mapping papers (NPAS, GRIM) leave them dense."),
    Rule("small-gemm", lambda f: f.gemm.K < SMALL_K or f.rows < SMALL_M, _dense,
         "Small K or M (few input or output channels): the reduction is a few SIMD steps, "
         "so index decoding and irregular access cost more than the skipped MACs."),
    Rule("first-layer", lambda f: f.is_first and f.op in (Op.CONV, Op.DECONV), _dense,
         "The first convolution reads raw pixels, holds few weights (e.g. 9,408 of ResNet-50's "
         "25.6M) and is the most pruning-sensitive convolution of AlexNet in Han et al. (NeurIPS "
         "2015, arXiv:1506.02626)."),
    Rule("last-fc", lambda f: f.is_last and f.op == Op.FC, _last_fc,
         "The classifier is a matrix-vector product (N = batch), bound by weight traffic, so "
         "fine-grained pruning cuts its bytes without a regularity penalty; its rate is capped "
         f"at {LAST_FC_MAX_RATE} because every class row must keep enough weights (Han et "
         "al. 2015 keep 25% of AlexNet's fc8)."),
    Rule("conv3x3", lambda f: f.op == Op.CONV and f.kernel == (3, 3), _pattern,
         "3x3 convolutions take pattern pruning (4 of 9 kept per kernel, plus connectivity "
         "pruning beyond 5/9): accurate and compiler-friendly (PatDNN, ASPLOS 2020; NPAS "
         "maps 3x3 to pattern-based pruning). Below 5/9, BCR with small blocks."),
    Rule("pointwise", lambda f: f.op == Op.CONV and f.kernel == (1, 1), _bcr((16, 32)),
         "1x1 convolutions are plain GEMMs over channels: block-based pruning with larger "
         "blocks keeps SIMD-width rows and columns, which NPAS maps to 1x1 layers and GRIM's "
         "BCR runs near dense speed per kept weight."),
    Rule("fc-like", lambda f: f.op in (Op.FC, Op.MATMUL, Op.GRU, Op.LSTM, Op.ATTENTION),
         _bcr((16, 32)),
         "Fully connected, RNN gate and attention projection weights are large matrices: "
         "BCR with large blocks (GRIM's RNN results use BCR on GRU weights)."),
    Rule("other-conv", lambda f: f.op in (Op.CONV, Op.DECONV), _bcr((8, 16)),
         "Other kernels (5x5, 7x7, deconvolution): pattern pruning does not apply, so BCR with "
         "medium blocks, which any GEMM-lowered convolution can use."),
    Rule("fallback", lambda f: True, lambda f, r: PruningScheme.unstructured(r),
         "Anything else: unstructured pruning at the rate, the most accurate per weight."),
)


@dataclass(frozen=True)
class RuleDecision:
    """The scheme the rules chose for one layer, and which rule chose it."""

    layer: str
    spec: str
    rule: str


def _main_gemm(layer: LayerWorkload) -> GemmView:
    return max((g for g in layer.gemms if g.prunable), key=lambda g: g.M * g.K)


def rule_decisions(network: Network | Iterable[LayerWorkload], rate: float,
                   rules: Sequence[Rule] = RULES) -> list[RuleDecision]:
    """The rule-based scheme of every prunable layer at target ``rate`` (fraction removed),
    with the rule that chose it. The first rule whose condition holds and whose scheme is
    legal for the layer wins; when none does, the layer stays dense."""
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise SearchError(f"rate must be a number, got {rate!r}") from None
    if not 0.0 <= rate < 1.0:
        raise SearchError(f"rate {rate!r} must be the fraction of weights removed, in [0, 1)")
    layers = decision_layers(network)
    out = []
    for pos, layer in enumerate(layers):
        facts = LayerFacts(layer, _main_gemm(layer), pos, len(layers))
        decision = RuleDecision(layer.name, "dense", "none-legal")
        for rule in rules:
            if not rule.when(facts):
                continue
            scheme = PruningScheme.dense() if rate == 0 else rule.scheme(facts, rate)
            if is_legal(scheme, layer):
                decision = RuleDecision(layer.name, scheme.spec, rule.name)
                break
        out.append(decision)
    return out


def rule_based_mapping(network: Network | Iterable[LayerWorkload], rate: float,
                       rules: Sequence[Rule] = RULES) -> dict[str, str]:
    """Layer name -> scheme spec chosen by the rules at target ``rate``."""
    return {d.layer: d.spec for d in rule_decisions(network, rate, rules)}
