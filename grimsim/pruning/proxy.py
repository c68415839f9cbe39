"""The accuracy-side proxy: the fraction of a weight matrix's squared norm a mask retains.

``retained_norm(w2d, mask)`` measures it on real weights; ``expected_retained_norm`` gives its
expectation under i.i.d. Gaussian weights (formulas in ``_expected`` and ``_stats``), for use
before any weights exist.
"""

from __future__ import annotations

from grimsim.network.workload import GemmView, LayerWorkload
from grimsim.pruning import _expected
from grimsim.pruning.masks import kernel_positions, retained_norm
from grimsim.pruning.scheme import PruningScheme, as_scheme, check_legal, kernel_of

__all__ = ["expected_retained_norm", "retained_norm"]


def expected_retained_norm(scheme: PruningScheme | str,
                           target: LayerWorkload | GemmView | tuple[int, int], *,
                           kernel: tuple[int, int] | None = None) -> float:
    """E[||w * mask||^2 / ||w||^2] for i.i.d. Gaussian w.

    ``target``: a GemmView, a layer (weights averaged over its prunable GEMMs by size) or an
    (M, K) shape; ``kernel`` only for a bare shape (block_punched positions; pattern assumes
    3x3).
    """
    scheme = as_scheme(scheme)
    if isinstance(target, LayerWorkload):
        check_legal(scheme, target)
        kern = kernel_of(target)
        shapes = [(g.M, g.K) for g in target.gemms if g.prunable]
    elif isinstance(target, GemmView):
        check_legal(scheme, target)
        kern = target.kernel
        shapes = [(target.M, target.K)]
    else:
        M, K = (int(v) for v in target)
        kern = kernel
        shapes = [(M, K)]
        if scheme.kind == "pattern":
            check_legal(scheme, GemmView("shape", M, K, 1, kernel=(3, 3)))
        elif scheme.kind == "nm":
            check_legal(scheme, GemmView("shape", M, K, 1))
    if not shapes or scheme.is_dense:
        return 1.0
    total = 0.0
    weight = 0
    for M, K in shapes:
        positions = kernel_positions(scheme, K, kern) if scheme.kind == "block_punched" else 1
        value = _expected.expected_stats(scheme, M, K, positions)["proxy"]
        total += float(value) * M * K
        weight += M * K
    return total / weight
