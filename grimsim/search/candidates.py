"""Which layers the search decides, and which schemes each may take.

A decision layer is one with at least one prunable GEMM (conv, FC, RNN gates, attention
projections); every other layer is fixed. Its candidates are dense plus every scheme x block
size x rate of the defaults below that is legal for it (``grimsim.pruning`` decides legality:
pattern needs a 3x3 conv, N:M needs K >= M...). Blocks larger than the weight matrix are
skipped: they would be filter or column pruning under another name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from grimsim.network.graph import Network
from grimsim.network.workload import LayerWorkload
from grimsim.pruning.scheme import PATTERN_SPARSITY, PruningScheme, is_legal

#: Pruning rates (fraction removed) from the issue: 50, 67, 75, 80, 87.5, 90, 93.75 %.
DEFAULT_RATES: tuple[float, ...] = (0.5, 0.67, 0.75, 0.8, 0.875, 0.9, 0.9375)
#: BCR block sizes (rows x columns); GRIM (TPAMI 2022) studies blocks from 4x4 upwards.
DEFAULT_BCR_BLOCKS: tuple[tuple[int, int], ...] = ((4, 4), (4, 16), (8, 16), (16, 32))
#: Block-punched blocks (filters x channels), as in NPAS (CVPR 2021).
DEFAULT_PUNCHED_BLOCKS: tuple[tuple[int, int], ...] = ((4, 4), (8, 4))
#: N:M patterns (2:4 is the one sparse tensor cores run; 1:4 and 1:8 go further).
DEFAULT_NM: tuple[tuple[int, int], ...] = ((2, 4), (1, 4), (1, 8))


def is_decision_layer(layer: LayerWorkload) -> bool:
    """True when the layer has weights the search can prune."""
    return any(g.prunable for g in layer.gemms)


def decision_layers(network: Network | Iterable[LayerWorkload]) -> list[LayerWorkload]:
    """The prunable layers in network (topological) order."""
    layers = network.layers() if isinstance(network, Network) else list(network)
    return [wl for wl in layers if is_decision_layer(wl)]


def _fits(block: tuple[int, int], layer: LayerWorkload) -> bool:
    return all(block[0] <= g.M // g.groups and block[1] <= g.K
               for g in layer.gemms if g.prunable)


def candidate_schemes(layer: LayerWorkload, rates: Sequence[float] = DEFAULT_RATES,
                      bcr_blocks: Sequence[tuple[int, int]] = DEFAULT_BCR_BLOCKS,
                      punched_blocks: Sequence[tuple[int, int]] = DEFAULT_PUNCHED_BLOCKS,
                      nm: Sequence[tuple[int, int]] = DEFAULT_NM) -> list[PruningScheme]:
    """Dense first, then every legal scheme x block x rate for ``layer`` (no duplicates)."""
    out = [PruningScheme.dense()]
    if not is_decision_layer(layer):
        return out
    options: list[PruningScheme] = []
    for kind in ("unstructured", "filter", "column"):
        options += [PruningScheme(kind, float(r)) for r in rates]
    options.append(PruningScheme.pattern())
    options += [PruningScheme.pattern(float(r)) for r in rates if r > PATTERN_SPARSITY + 1e-9]
    for block in bcr_blocks:
        if _fits(block, layer):
            options += [PruningScheme.bcr(block[0], block[1], float(r)) for r in rates]
    for block in punched_blocks:
        if _fits(block, layer):
            options += [PruningScheme.block_punched(block[0], block[1], float(r))
                        for r in rates]
    options += [PruningScheme.nm(n, m) for n, m in nm]
    seen = {"dense"}
    for scheme in options:
        if scheme.spec not in seen and is_legal(scheme, layer):
            seen.add(scheme.spec)
            out.append(scheme)
    return out


def candidate_specs(layer: LayerWorkload, rates: Sequence[float] = DEFAULT_RATES,
                    bcr_blocks: Sequence[tuple[int, int]] = DEFAULT_BCR_BLOCKS,
                    punched_blocks: Sequence[tuple[int, int]] = DEFAULT_PUNCHED_BLOCKS,
                    nm: Sequence[tuple[int, int]] = DEFAULT_NM) -> list[str]:
    """``candidate_schemes`` as spec strings."""
    return [s.spec for s in candidate_schemes(layer, rates, bcr_blocks, punched_blocks, nm)]
