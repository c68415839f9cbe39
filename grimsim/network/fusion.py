"""Conv + batch-norm + activation fusion, as inference engines do it.

An engine folds a batch norm (or Caffe's Scale) into the preceding conv/FC weights and runs
the activation in the GEMM's epilogue, so neither costs a pass over memory. ncnn's
``9=`` activation fields in .param files show the same fusion done offline.
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from grimsim.network.graph import Network
from grimsim.network.workload import LayerWorkload, Op

_HOSTS = frozenset({Op.CONV, Op.DWCONV, Op.DECONV, Op.FC})
_FOLDABLE = frozenset({Op.BATCHNORM, Op.SCALE})


def _can_fuse(host: LayerWorkload, op: LayerWorkload) -> bool:
    if host.op not in _HOSTS or host.output_shapes != op.input_shapes:
        return False
    if op.op in _FOLDABLE:
        # folding a BN into the weights is only valid before the activation
        return host.activation is None
    if op.op == Op.ACTIVATION:
        return host.activation is None
    return False


def fuse(network: Network) -> Network:
    """Return a new Network with BN/Scale and activations folded into their producer.

    A cheap op is folded only when its producer is a conv/deconv/FC whose output feeds
    nothing else. Parameters move with the fold (a folded BN keeps counting its 2*C), so
    totals are unchanged; the host records the folded names in ``fused``.
    """
    g: nx.DiGraph = network.graph.copy()
    for name in list(network._order):
        wl: LayerWorkload = g.nodes[name]["workload"]
        if wl.op not in _FOLDABLE and wl.op != Op.ACTIVATION:
            continue
        preds = list(g.predecessors(name))
        if len(preds) != 1 or g.out_degree(preds[0]) != 1:
            continue
        host_name = preds[0]
        host: LayerWorkload = g.nodes[host_name]["workload"]
        if not _can_fuse(host, wl):
            continue
        g.nodes[host_name]["workload"] = replace(
            host,
            fused=(*host.fused, name, *wl.fused),
            params=host.params + wl.params,
            activation=wl.attr("kind") if wl.op == Op.ACTIVATION else host.activation,
        )
        for succ in list(g.successors(name)):
            g.add_edge(host_name, succ, **g.edges[name, succ])
        g.remove_node(name)
    outputs = network.outputs
    return Network(network.name, g, network.inputs, network.source, outputs)
