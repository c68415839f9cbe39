"""The network graph: a networkx DAG of layer names -> LayerWorkload, and its builder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import networkx as nx

from grimsim.errors import ShapeError
from grimsim.network.workload import GemmView, LayerWorkload, Shape


@dataclass(frozen=True)
class Totals:
    """Whole-network figures: MACs count only GEMM work (conv, depthwise, FC, matmul, RNN
    gates), the published tables' convention; cheap ops are reported apart."""

    macs: int
    params: int
    elementwise_ops: int
    activation_bytes: int
    weight_bytes: int


class Network:
    """A DAG of layers. Nodes are layer names with a ``workload`` attribute; an edge u -> v
    carries the ``blob`` (tensor name) and its ``shape``.

    Networks are treated as immutable: transformations (fusion) return a new Network.
    """

    def __init__(self, name: str, graph: nx.DiGraph, inputs: dict[str, Shape],
                 source: str | None = None, outputs: Sequence[str] = ()) -> None:
        self.name = name
        self.graph = graph
        self.inputs = dict(inputs)
        self.source = source
        self.outputs = tuple(outputs)
        self._order: tuple[str, ...] = tuple(nx.lexicographical_topological_sort(
            graph, key=lambda n: graph.nodes[n]["index"]))

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[LayerWorkload]:
        return iter(self.layers())

    def __contains__(self, name: object) -> bool:
        return name in self.graph

    def __repr__(self) -> str:
        return (f"Network({self.name!r}, layers={len(self)}, macs={self.total_macs:,}, "
                f"params={self.total_params:,})")

    def layers(self) -> list[LayerWorkload]:
        """Layers in topological order (ties broken by the order they were added)."""
        return [self.graph.nodes[n]["workload"] for n in self._order]

    def layer(self, name: str) -> LayerWorkload:
        try:
            wl: LayerWorkload = self.graph.nodes[name]["workload"]
        except KeyError:
            raise KeyError(f"network {self.name!r} has no layer {name!r}") from None
        return wl

    def gemm_layers(self) -> list[LayerWorkload]:
        return [wl for wl in self.layers() if wl.gemms]

    def gemm_rows(self) -> list[tuple[LayerWorkload, GemmView]]:
        """Every GEMM of the network with its layer, in topological order."""
        return [(wl, g) for wl in self.layers() for g in wl.gemms]

    def prunable_rows(self) -> list[tuple[LayerWorkload, GemmView]]:
        return [(wl, g) for wl, g in self.gemm_rows() if g.prunable]

    def predecessors(self, name: str) -> list[str]:
        return list(self.graph.predecessors(name))

    def successors(self, name: str) -> list[str]:
        return list(self.graph.successors(name))

    @property
    def totals(self) -> Totals:
        layers = self.layers()
        return Totals(
            macs=sum(wl.macs for wl in layers),
            params=sum(wl.params for wl in layers),
            elementwise_ops=sum(wl.elementwise_ops for wl in layers),
            activation_bytes=sum(wl.activation_bytes_read + wl.activation_bytes_written
                                 for wl in layers),
            weight_bytes=sum(wl.weight_bytes for wl in layers),
        )

    @property
    def total_macs(self) -> int:
        return sum(wl.macs for wl in self.layers())

    @property
    def total_params(self) -> int:
        return sum(wl.params for wl in self.layers())

    @property
    def total_elementwise_ops(self) -> int:
        return sum(wl.elementwise_ops for wl in self.layers())

    def validate(self) -> None:
        """Check the graph is a DAG whose edges agree with the layers' shapes."""
        if not nx.is_directed_acyclic_graph(self.graph):
            cycle = nx.find_cycle(self.graph)
            raise ShapeError(f"network {self.name!r} has a cycle: {cycle}")
        for u, v, data in self.graph.edges(data=True):
            src = self.graph.nodes[u]["workload"]
            dst = self.graph.nodes[v]["workload"]
            shape = data["shape"]
            if shape not in src.output_shapes:
                raise ShapeError(f"edge {u} -> {v}: blob {data['blob']!r} shape {shape} is not "
                                 f"an output of {u!r} {src.output_shapes}")
            if shape not in dst.input_shapes:
                raise ShapeError(f"edge {u} -> {v}: blob {data['blob']!r} shape {shape} is not "
                                 f"an input of {v!r} {dst.input_shapes}")


class NetworkBuilder:
    """Builds a Network layer by layer, tracking each blob's producer and shape.

    Shape inference is done by the workload factories; the builder checks that each layer's
    declared input shapes are the shapes of the blobs it reads.
    """

    def __init__(self, name: str, source: str | None = None) -> None:
        self.name = name
        self.source = source
        self._graph: nx.DiGraph = nx.DiGraph()
        self._blobs: dict[str, tuple[str, Shape]] = {}
        self._inputs: dict[str, Shape] = {}
        self._consumed: set[str] = set()

    def input(self, blob: str, shape: Sequence[int], layer_name: str | None = None) -> Shape:
        """Declare a network input; it appears as a zero-cost ``input`` layer."""
        from grimsim.network.workload import zero_cost

        shp = tuple(int(d) for d in shape)
        if any(d < 1 for d in shp):
            raise ShapeError(f"input {blob!r}: shape {shp} has a non-positive dimension")
        name = layer_name or blob
        self._add_node(zero_cost(name, "input", [], [shp]))
        self._blobs[blob] = (name, shp)
        self._inputs[blob] = shp
        return shp

    def shape(self, blob: str) -> Shape:
        try:
            return self._blobs[blob][1]
        except KeyError:
            raise ShapeError(f"network {self.name!r}: blob {blob!r} is used before any layer "
                             "produces it") from None

    def has_blob(self, blob: str) -> bool:
        return blob in self._blobs

    def has_layer(self, name: str) -> bool:
        return name in self._graph

    def add(self, workload: LayerWorkload, bottoms: Sequence[str], tops: Sequence[str]
            ) -> LayerWorkload:
        """Add a layer reading ``bottoms`` and producing ``tops`` (blob names)."""
        if len(tops) != len(workload.output_shapes):
            raise ShapeError(f"layer {workload.name!r}: {len(tops)} output blobs named but the "
                             f"op produces {len(workload.output_shapes)}")
        in_shapes = [self.shape(b) for b in bottoms]
        if tuple(in_shapes) != workload.input_shapes:
            raise ShapeError(f"layer {workload.name!r}: input shapes {workload.input_shapes} "
                             f"differ from its bottoms' shapes {tuple(in_shapes)}")
        self._add_node(workload)
        for b in bottoms:
            producer, shp = self._blobs[b]
            self._graph.add_edge(producer, workload.name, blob=b, shape=shp)
            self._consumed.add(b)
        for top, shp in zip(tops, workload.output_shapes, strict=True):
            self._blobs[top] = (workload.name, shp)
        return workload

    def _add_node(self, workload: LayerWorkload) -> None:
        if workload.name in self._graph:
            raise ShapeError(f"network {self.name!r}: duplicate layer name {workload.name!r}")
        self._graph.add_node(workload.name, workload=workload, index=len(self._graph))

    def build(self, validate: bool = True) -> Network:
        outputs = [b for b in self._blobs if b not in self._consumed and b not in self._inputs]
        net = Network(self.name, self._graph, self._inputs, self.source, outputs)
        if validate:
            net.validate()
        return net
