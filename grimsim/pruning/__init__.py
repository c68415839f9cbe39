"""Pruning schemes on GEMM weights: spec strings, masks, compact formats, workload and proxy.

Stable API: ``PruningScheme``, ``parse_spec``/``format_spec``, ``check_legal``/``is_legal``,
``make_mask``, ``reached_sparsity``, ``encode``/``decode`` (``BCRFormat``, ``CSRFormat``,
``NMFormat``, ``PatternFormat``, ``DenseFormat``), ``retained_norm``,
``expected_retained_norm``, ``sparse_workload``/``sparse_workload_batch`` and
``model_bytes``. ``w2d`` is always the M x K GEMM view (conv columns ordered input channel,
kernel row, kernel column).
"""

from grimsim.pruning.formats import (
    BCRFormat,
    CSRFormat,
    DenseFormat,
    Format,
    NMFormat,
    PatternFormat,
    check_format,
    decode,
    encode,
    format_block,
    format_name,
)
from grimsim.pruning.masks import PATTERN_LIBRARY, make_mask, reached_sparsity, retained_norm
from grimsim.pruning.proxy import expected_retained_norm
from grimsim.pruning.scheme import (
    GRAMMAR,
    KINDS,
    PruningScheme,
    check_legal,
    format_spec,
    is_legal,
    parse_spec,
)
from grimsim.pruning.size import LayerSize, ModelSize, model_bytes
from grimsim.pruning.workload import (
    Dist,
    SparseWorkload,
    SparseWorkloadBatch,
    sparse_workload,
    sparse_workload_batch,
)

__all__ = [
    "GRAMMAR",
    "KINDS",
    "PATTERN_LIBRARY",
    "BCRFormat",
    "CSRFormat",
    "DenseFormat",
    "Dist",
    "Format",
    "LayerSize",
    "ModelSize",
    "NMFormat",
    "PatternFormat",
    "PruningScheme",
    "SparseWorkload",
    "SparseWorkloadBatch",
    "check_format",
    "check_legal",
    "decode",
    "encode",
    "expected_retained_norm",
    "format_block",
    "format_name",
    "format_spec",
    "is_legal",
    "make_mask",
    "model_bytes",
    "parse_spec",
    "reached_sparsity",
    "retained_norm",
    "sparse_workload",
    "sparse_workload_batch",
]
