"""Whole-network answers built from row estimates: per-layer latency under an assignment
(``estimate_network``) and the per-(layer, scheme) table the search and explorer use
(``CostTable``).

The accuracy-side loss of a mapping is the mean over prunable layers of the fraction of the
layer's weight norm that pruning removes: ``sum_l share_l * (1 - retained_l)``, every layer
weighing the same (``share_l = 1 / layers``, split over a multi-GEMM layer's GEMMs by their
weight counts) and ``retained_l`` the retained-norm proxy (real masks when weights are given,
else its Gaussian expectation). Equal layer weights, rather than shares of the parameter
count, keep the search from gutting small early layers whose removal is cheap in weights but
costly in accuracy (every layer's output feeds the rest of the network); measured sensitivity
tables replace the proxy where a user has them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grimsim.cost.protocol import BOUNDS, CostModel, EstimateBatch
from grimsim.cost.rows import CostRows, rows_for
from grimsim.network.graph import Network
from grimsim.pruning import PruningScheme, expected_retained_norm, parse_spec


@dataclass(frozen=True)
class LayerEstimate:
    """One layer under its scheme: the sum of its rows (GEMMs, element-wise part)."""

    name: str
    op: str
    scheme: str
    kernel: str
    M: int | None
    K: int | None
    N: int | None
    macs: int
    latency_s: float
    compute_s: float
    memory_s: float
    overhead_s: float
    bound: str
    band_s: tuple[float, float]
    sparsity: float
    weight_bytes: int
    format_bytes: int
    loss: float


@dataclass(frozen=True)
class NetworkEstimate:
    """A network's predicted latency on a device with its per-layer breakdown."""

    network: str
    device: str
    unit: str
    threads: int
    latency_s: float
    band_s: tuple[float, float]
    provenance: str
    model_bytes: int
    dense_model_bytes: int
    loss: float
    layers: tuple[LayerEstimate, ...]
    skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network, "device": self.device, "unit": self.unit,
            "threads": self.threads, "latency_ms": self.latency_s * 1e3,
            "latency_band_ms": [self.band_s[0] * 1e3, self.band_s[1] * 1e3],
            "provenance": self.provenance, "loss": self.loss, "model_bytes": self.model_bytes,
            "dense_model_bytes": self.dense_model_bytes, "skipped": list(self.skipped),
            "layers": [{"name": lay.name, "op": lay.op, "scheme": lay.scheme,
                        "kernel": lay.kernel, "M": lay.M, "K": lay.K, "N": lay.N,
                        "macs": lay.macs, "latency_ms": lay.latency_s * 1e3,
                        "compute_ms": lay.compute_s * 1e3, "memory_ms": lay.memory_s * 1e3,
                        "overhead_ms": lay.overhead_s * 1e3, "bound": lay.bound,
                        "latency_band_ms": [lay.band_s[0] * 1e3, lay.band_s[1] * 1e3],
                        "sparsity": lay.sparsity, "format_bytes": lay.format_bytes,
                        "loss": lay.loss} for lay in self.layers],
        }


def weight_shares(network: Network) -> dict[str, float]:
    """Each prunable GEMM row's loss weight: 1 / (prunable layers), split over a layer's
    prunable GEMMs by weight count (sums to 1)."""
    layers = [wl for wl in network.layers() if any(g.prunable for g in wl.gemms)]
    shares: dict[str, float] = {}
    for wl in layers:
        gemms = [g for g in wl.gemms if g.prunable]
        total = sum(g.weight_count for g in gemms) or 1
        for g in gemms:
            shares[g.name] = g.weight_count / total / len(layers)
    return shares


def _row_loss(rows: CostRows, shares: Mapping[str, float]) -> np.ndarray:
    """Loss contribution of every row: share x (1 - expected retained norm)."""
    loss = np.zeros(len(rows))
    cache: dict[tuple[str, int, int, int], float] = {}
    for i in np.flatnonzero(rows.prunable & rows.is_gemm):
        spec = str(rows.spec[i])
        if spec == "dense":
            continue
        kernel = (int(rows.kh[i]), int(rows.kw[i])) if rows.kh[i] > 0 else None
        key = (spec, int(rows.M[i]), int(rows.K[i]), int(rows.kh[i]) * int(rows.kw[i]))
        if key not in cache:
            cache[key] = expected_retained_norm(parse_spec(spec), (int(rows.M[i]),
                                                                   int(rows.K[i])),
                                                kernel=kernel)
        loss[i] = shares.get(str(rows.gemm[i]), 0.0) * (1.0 - cache[key])
    return loss


@dataclass(frozen=True, eq=False)
class CostTable:
    """Rows (one per (GEMM row, scheme), plus scheme-independent rows) and their estimates."""

    rows: CostRows
    estimates: EstimateBatch
    loss: np.ndarray
    device: str
    shares: Mapping[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def records(self) -> list[dict[str, Any]]:
        """Every row as a plain dict (for tables, plots and JSON)."""
        r, e = self.rows, self.estimates
        flops = 2.0 * r.macs.astype(np.float64)
        traffic = (r.format_bytes + r.act_bytes_in + r.act_bytes_out).astype(np.float64)
        out = []
        for i in range(len(r)):
            out.append({
                "layer": str(r.layer[i]), "gemm": str(r.gemm[i]), "op": r.op_names()[i],
                "scheme": str(r.spec[i]), "prunable": bool(r.prunable[i]),
                "M": int(r.M[i]), "K": int(r.K[i]), "N": int(r.N[i]),
                "sparsity": float(r.sparsity[i]), "format_bytes": int(r.format_bytes[i]),
                "latency_s": float(e.latency_s[i]), "compute_s": float(e.compute_s[i]),
                "memory_s": float(e.memory_s[i]), "overhead_s": float(e.overhead_s[i]),
                "bound": BOUNDS[int(e.bound[i])], "kernel": str(e.kernel[i]),
                "band_s": (float(e.band_lo_s[i]), float(e.band_hi_s[i])),
                "loss": float(self.loss[i]), "flops": float(flops[i]),
                "bytes": float(traffic[i]),
            })
        return out


def cost_table(network: Network, model: CostModel, schemes: Sequence[str | PruningScheme]
               | Mapping[str, Any], *, threads: int = 1, unit: str = "cpu",
               weights: Mapping[str, np.ndarray] | None = None, device: str = "") -> CostTable:
    """Estimate every (GEMM row, scheme) of ``network`` with ``model``."""
    rows = rows_for(network, schemes, threads=threads, unit=unit, weights=weights)
    estimates = model.estimate(rows)
    shares = weight_shares(network)
    return CostTable(rows, estimates, _row_loss(rows, shares), device or model.name, shares)


def estimate_network(network: Network, model: CostModel,
                     assignment: Mapping[str, str | PruningScheme] | None = None, *,
                     threads: int = 1, unit: str = "cpu", device: str = "",
                     weights: Mapping[str, np.ndarray] | None = None) -> NetworkEstimate:
    """Per-layer and total latency of ``network`` with ``assignment`` (layer or GEMM-row
    name -> scheme; others dense). Illegal schemes fall back to dense and are listed."""
    table = cost_table(network, model, dict(assignment or {}), threads=threads, unit=unit,
                       weights=weights, device=device)
    return estimate_from_table(network, table, threads=threads, unit=unit)


def estimate_from_table(network: Network, table: CostTable, *, threads: int = 1,
                        unit: str = "cpu") -> NetworkEstimate:
    """``estimate_network`` on an already built table of the assignment's rows."""
    device = table.device
    r, e = table.rows, table.estimates
    layers: list[LayerEstimate] = []
    order = np.argsort(r.layer_index, kind="stable")
    bounds = np.asarray(BOUNDS)
    starts = np.flatnonzero(np.r_[True, np.diff(r.layer_index[order]) != 0])
    for start, stop in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        idx = order[start:stop]
        main = idx[np.argmax(e.latency_s[idx])]
        gemm_idx = idx[r.is_gemm[idx]]
        prunable = idx[r.prunable[idx] & r.is_gemm[idx]]
        specs = sorted({str(s) for s in r.spec[prunable]}) or ["dense"]
        weights_n = int(r.weight_bytes[gemm_idx].sum()) // 4
        kept = float((r.nnz[prunable]).sum()) + float(
            (r.weight_bytes[np.setdiff1d(gemm_idx, prunable)]).sum() / 4)
        layers.append(LayerEstimate(
            name=str(r.layer[idx[0]]), op=str(r.op_names()[idx[0]]), scheme=",".join(specs),
            kernel=str(e.kernel[main]),
            M=int(r.M[gemm_idx[0]]) if gemm_idx.size == 1 else None,
            K=int(r.K[gemm_idx[0]]) if gemm_idx.size == 1 else None,
            N=int(r.N[gemm_idx[0]]) if gemm_idx.size == 1 else None,
            macs=int(r.macs[idx].sum()), latency_s=float(e.latency_s[idx].sum()),
            compute_s=float(e.compute_s[idx].sum()), memory_s=float(e.memory_s[idx].sum()),
            overhead_s=float(e.overhead_s[idx].sum()), bound=str(bounds[e.bound[main]]),
            band_s=(float(e.band_lo_s[idx].sum()), float(e.band_hi_s[idx].sum())),
            sparsity=1.0 - kept / weights_n if weights_n else 0.0,
            weight_bytes=int(r.weight_bytes[gemm_idx].sum()),
            format_bytes=int(r.format_bytes[gemm_idx].sum()),
            loss=float(table.loss[idx].sum())))
    dense_bytes = 4 * network.total_params
    pruned_weight_bytes = sum(lay.weight_bytes - lay.format_bytes for lay in layers)
    return NetworkEstimate(
        network=network.name, device=device, unit=unit, threads=threads,
        latency_s=float(e.latency_s.sum()),
        band_s=(float(e.band_lo_s.sum()), float(e.band_hi_s.sum())),
        provenance=e.provenance, model_bytes=dense_bytes - pruned_weight_bytes,
        dense_model_bytes=dense_bytes, loss=float(table.loss.sum()), layers=tuple(layers),
        skipped=tuple(f"{s.layer}: {s.spec}" for s in r.skipped))
