"""Model size under a scheme assignment: dense and compressed bytes per layer and in total."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from grimsim.errors import MappingError
from grimsim.network.graph import Network
from grimsim.network.workload import FLOAT32_BYTES
from grimsim.pruning.scheme import PruningScheme, as_scheme, check_legal
from grimsim.pruning.workload import sparse_workload


@dataclass(frozen=True)
class LayerSize:
    """One layer: all its parameters dense vs with its pruned GEMMs in compact formats.

    ``schemes``: (GEMM name, spec) of the GEMMs stored pruned (empty: the layer stays dense).
    """

    name: str
    dense_bytes: int
    compressed_bytes: int
    schemes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ModelSize:
    layers: tuple[LayerSize, ...]
    dense_bytes: int
    compressed_bytes: int

    @property
    def ratio(self) -> float:
        """dense / compressed."""
        return self.dense_bytes / self.compressed_bytes if self.compressed_bytes else 1.0

    def layer(self, name: str) -> LayerSize:
        for entry in self.layers:
            if entry.name == name:
                return entry
        raise KeyError(f"no layer {name!r}")


def model_bytes(network: Network,
                assignment: Mapping[str, PruningScheme | str]) -> ModelSize:
    """Bytes of ``network``'s parameters with ``assignment`` (layer or GEMM-row name ->
    scheme or spec string) applied.

    A layer name applies its scheme to each prunable GEMM of the layer; a GEMM-row name
    (``<layer>.<gate>.ih``, ``<layer>.q``) to that GEMM only and wins over its layer's entry.
    Biases, fused batch-norm parameters, embeddings and unassigned layers stay dense float32;
    pruned GEMMs count their compact format's bytes (expected, no weights needed). Unknown
    names raise MappingError; an illegal scheme raises SchemeError.
    """
    layer_names = {wl.name for wl in network.layers()}
    gemm_names = {g.name for wl in network.layers() for g in wl.gemms}
    unknown = sorted(set(assignment) - layer_names - gemm_names)
    if unknown:
        raise MappingError(f"network {network.name!r} has no layer or GEMM named "
                           f"{', '.join(repr(u) for u in unknown)}")
    schemes = {name: as_scheme(spec) for name, spec in assignment.items()}
    rows = []
    for wl in network.layers():
        dense = wl.params * FLOAT32_BYTES
        compressed = dense
        pruned: list[tuple[str, str]] = []
        layer_scheme = schemes.get(wl.name)
        if layer_scheme is not None:
            check_legal(layer_scheme, wl)
        for g in wl.gemms:
            scheme = schemes.get(g.name, layer_scheme) if g.name != wl.name else layer_scheme
            if scheme is None or scheme.is_dense or not g.prunable:
                if scheme is not None and not scheme.is_dense and g.name in schemes:
                    check_legal(scheme, g)  # raises: a non-prunable GEMM named explicitly
                continue
            target = wl if len(wl.gemms) == 1 else g
            if target is g:
                check_legal(scheme, g)
            work = sparse_workload(target, scheme)
            compressed += work.format_bytes - work.dense_bytes
            pruned.append((g.name, scheme.spec))
        rows.append(LayerSize(wl.name, dense, compressed, tuple(pruned)))
    return ModelSize(tuple(rows), sum(r.dense_bytes for r in rows),
                     sum(r.compressed_bytes for r in rows))
