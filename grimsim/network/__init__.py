"""Network graphs: layer workloads with their GEMM view, the zoo, ONNX and ncnn importers."""

from grimsim.network.fusion import fuse
from grimsim.network.graph import Network, NetworkBuilder, Totals
from grimsim.network.workload import GEMM_OPS, GemmView, LayerWorkload, Op, Shape

__all__ = [
    "GEMM_OPS",
    "GemmView",
    "LayerWorkload",
    "Network",
    "NetworkBuilder",
    "Op",
    "Shape",
    "Totals",
    "fuse",
]
