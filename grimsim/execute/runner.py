"""Run a (pruned) network on this machine with grimsim's kernels: ``run_network``.

Every layer of the network, in topological order, is measured on random inputs of its real
shapes with random Gaussian weights (or the caller's), pruned by the assignment and encoded
in the scheme's compact format, using the C++ kernels and their timing harness (warm-up,
repetitions up to ``min_time_s``, the fastest (or median) call; caches stay warm between
repetitions, as in calibration). What each layer runs:

* dense conv: Winograd for 3x3 / stride 1 / dilation 1 / groups 1 convs when
  ``kernel_choice`` asks for it or, by default, when in and out channels are both >= 8;
  otherwise im2col + the packed GEMM (``conv2d_gemm``, one GEMM per group for grouped
  convs; a 1x1 stride-1 unpadded conv needs no im2col). Depthwise convs run the direct
  depthwise kernel whatever their scheme (there is no sparse depthwise kernel, so pruned
  weights are zeros in it and save nothing - as the cost model assumes).
* sparse conv: the im2col pass and the sparse kernel on the im2col'd input (K x N), timed
  apart and added (parts ``im2col_s`` and ``spmm_s``); one sparse matrix per group.
* conv kernels take one image: a batch of n images is one image's time x n.
* FC, weight and activation matmuls, attention projections: the GEMM kernel of the scheme
  (``gemm``, ``gemv`` when N = 1, ``bcr``, ``csr``, ``nm``, ``pattern``) on X of K x N.
  Groups of identical dense GEMMs (attention heads) are one group's time x groups; groups
  of different sparse matrices are timed as one loop over the groups.
* deconvolution: the GEMM, then col2im as a numpy stand-in (part ``col2im_s``).
* GRU / LSTM: each ``.ih`` GEMM over all time steps at once (N = batch x time); the
  recurrence as one timed step - every ``.hh`` GEMM through the kernels, then the gate math
  in numpy on buffers allocated once (``_GateMath``), the state carried to the next call in
  place - which the harness repeats back to back exactly as the time steps follow one
  another, so the gates' recurrent weights are cycled through the caches as in the real
  recurrence; one step's time x time steps (part ``recurrent_steps_s``). The step is driven
  from Python: each kernel call and each numpy call costs about a microsecond of dispatch,
  which the cost model charges per step (``kernel_params``: ``python_kernel_call_cycles``,
  ``numpy_call_cycles``, ``recurrent_numpy_calls``). A short timed step keeps the harness's
  statistic robust on a shared machine, where a timed loop over all steps would also time the
  other processes' slices. Each ``.hh`` GEMM's own row is its step timed alone x time
  steps.
* attention: the projections and the per-head QK^T / AV matmuls as GEMMs, the softmax as a
  numpy stand-in (part ``softmax_s``).
* cheap ops: single-threaded C++ kernels, or numpy stand-ins for the rarer kinds
  (``grimsim.execute.cheap_ops``; part ``cheap_s``); views and inputs cost zero.

Not run: biases, and the activations / batch norms fused into a conv or FC (an engine
folds them into the weights and the GEMM's epilogue). The network's total is the sum of its
layers, each measured alone with warm caches - not one chained pass over real data.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from grimsim.aligned import aligned_standard_normal
from grimsim.errors import GrimsimError, KernelCheckError, MappingError, SchemeError, ShapeError
from grimsim.execute.cheap_ops import cheap_op, softmax_fn
from grimsim.execute.kernels import TIMING_STATISTICS, PreparedGemm, prepare
from grimsim.execute.pools import quiet_thread_pools
from grimsim.network import GemmView, LayerWorkload, Network, Op
from grimsim.pruning import DenseFormat, Format, PruningScheme, check_legal, encode, make_mask
from grimsim.pruning import is_legal as scheme_is_legal
from grimsim.pruning.scheme import as_scheme, kernel_of

log = logging.getLogger(__name__)

__all__ = [
    "KERNEL_CHOICES",
    "GemmRun",
    "KernelCheckError",
    "LayerRun",
    "RunResult",
    "SkippedLayer",
    "check_weights",
    "legal_assignment",
    "resolve_assignment",
    "run_network",
]

#: Values ``kernel_choice`` takes: "winograd" or "im2col+gemm" (alias "gemm") pick the dense
#: 3x3 conv path, "auto" the default rule; the cost model's other kernel names are accepted
#: and leave the choice to the scheme (they are not choices: the scheme decides them).
KERNEL_CHOICES = ("auto", "winograd", "im2col+gemm", "gemm", "gemv", "depthwise", "bcr", "csr",
                  "nm", "pattern")

#: Default Winograd rule: 3x3 stride-1 convs with at least this many input and output
#: channels (below it the transforms outweigh the saved multiplications).
WINOGRAD_MIN_CHANNELS = 8

#: check=True tolerances on max|y - ref| / max|ref| (float32 kernels vs a float64 reference;
#: Winograd's transforms lose a few more bits).
CHECK_RTOL = 1e-3
WINOGRAD_RTOL = 1e-2

_DENSE = PruningScheme.dense()
_CONV_OPS = (Op.CONV, Op.DWCONV)



# --------------------------------------------------------------------------- results


def _parts_dict(parts: Iterable[tuple[str, float]]) -> dict[str, float]:
    return {k: float(v) for k, v in parts}


@dataclass(frozen=True)
class GemmRun:
    """One GEMM as it ran: its shape, scheme, kernel and measured seconds.

    ``measured_s`` covers all its groups, images and repeats (a recurrent ``.hh`` GEMM: one
    step timed alone x time steps). ``format_bytes`` are the compact format's bytes (dense:
    M*K*4; 0 for activation matmuls), ``prepared_bytes``/``prepare_s`` the one-time layout
    work (BCR pack, Winograd transform). ``sparsity`` is the fraction of weights the mask
    removed (None for activation matmuls); ``max_rel_err`` is set when checked.
    """

    name: str
    M: int
    K: int
    N: int
    groups: int
    repeats: int
    prunable: bool
    scheme: str
    kernel: str
    measured_s: float
    parts: tuple[tuple[str, float], ...] = ()
    format_bytes: int = 0
    prepared_bytes: int = 0
    prepare_s: float = 0.0
    sparsity: float | None = None
    max_rel_err: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "M": self.M, "K": self.K, "N": self.N,
                "groups": self.groups, "repeats": self.repeats, "prunable": self.prunable,
                "scheme": self.scheme, "kernel": self.kernel, "measured_s": self.measured_s,
                "parts": _parts_dict(self.parts), "format_bytes": self.format_bytes,
                "prepared_bytes": self.prepared_bytes, "prepare_s": self.prepare_s,
                "sparsity": self.sparsity, "max_rel_err": self.max_rel_err}


@dataclass(frozen=True)
class LayerRun:
    """One layer as it ran. ``measured_s`` is the sum of ``parts`` (named seconds, e.g.
    ``im2col_s`` and ``spmm_s``); ``kernel`` joins its GEMMs' kernels with '+' (``cpp:<op>``
    or ``numpy:<op>`` for cheap ops, ``none`` for views); ``scheme`` is the spec of its
    prunable GEMMs (``mixed`` when they differ); ``sparsity`` the fraction removed over its
    prunable weights (None without any)."""

    name: str
    op: str
    scheme: str
    kernel: str
    measured_s: float
    parts: tuple[tuple[str, float], ...]
    format_bytes: int = 0
    sparsity: float | None = None
    gemms: tuple[GemmRun, ...] = ()

    def part(self, name: str) -> float:
        return _parts_dict(self.parts).get(name, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "scheme": self.scheme,
                "kernel": self.kernel, "measured_s": self.measured_s,
                "parts": _parts_dict(self.parts), "format_bytes": self.format_bytes,
                "sparsity": self.sparsity, "gemms": [g.to_dict() for g in self.gemms]}


@dataclass(frozen=True)
class RunResult:
    """A network measured layer by layer on this machine.

    ``measured_s`` is the sum of the layers' times, each layer measured alone with warm
    caches (not a chained end-to-end run). ``simd`` is the kernels' SIMD tier.
    """

    network: str
    threads: int
    simd: str
    layers: tuple[LayerRun, ...]
    min_time_s: float
    seed: int
    checked: bool = False
    wall_s: float = 0.0
    statistic: str = "min_s"

    @property
    def measured_s(self) -> float:
        return float(sum(layer.measured_s for layer in self.layers))

    def layer(self, name: str) -> LayerRun:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"run of {self.network!r} has no layer {name!r}")

    def gemm_rows(self) -> list[GemmRun]:
        return [g for layer in self.layers for g in layer.gemms]

    def to_dict(self) -> dict[str, Any]:
        return {"network": self.network, "measured_s": self.measured_s,
                "threads": self.threads, "simd": self.simd, "min_time_s": self.min_time_s,
                "seed": self.seed, "checked": self.checked, "wall_s": self.wall_s,
                "statistic": self.statistic,
                "layers": [layer.to_dict() for layer in self.layers]}


@dataclass(frozen=True)
class SkippedLayer:
    """A layer (or one GEMM of it) a uniform scheme was not applied to, and why."""

    name: str
    spec: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "spec": self.spec, "reason": self.reason}


# --------------------------------------------------------------------------- assignments


def _gemm_index(network: Network) -> dict[str, tuple[LayerWorkload, GemmView]]:
    return {g.name: (wl, g) for wl, g in network.gemm_rows()}


def _single_gemm_layer(layer: LayerWorkload, g: GemmView) -> LayerWorkload:
    """The layer with only GEMM ``g``: check_legal then names the layer and keeps its op."""
    return replace(layer, gemms=(g,))


def resolve_assignment(network: Network,
                       assignment: Mapping[str, PruningScheme | str] | None
                       ) -> dict[str, PruningScheme]:
    """GEMM row name -> scheme for every prunable GEMM (dense where not named).

    Keys are layer names (the scheme goes to each prunable GEMM of the layer) or GEMM row
    names (which win over their layer's key). Unknown names raise MappingError; a malformed
    spec or a scheme illegal for its layer/GEMM raises SchemeError naming it.
    """
    gemms = _gemm_index(network)
    out = {g.name: _DENSE for _, g in network.prunable_rows()}
    if not assignment:
        return out
    by_layer: dict[str, PruningScheme] = {}
    by_gemm: dict[str, PruningScheme] = {}
    unknown = []
    for key, value in assignment.items():
        try:
            scheme = as_scheme(value)
        except SchemeError as exc:
            raise SchemeError(f"assignment for {key!r}: {exc}") from None
        if key in gemms and (key not in network or len(network.layer(key).gemms) == 1):
            by_gemm[key] = scheme
        elif key in network:
            by_layer[key] = scheme
        else:
            unknown.append(key)
    if unknown:
        raise MappingError(f"the assignment names {len(unknown)} layer(s) network "
                           f"{network.name!r} does not have: "
                           f"{', '.join(map(repr, sorted(unknown)[:5]))}")
    for name, scheme in by_layer.items():
        layer = network.layer(name)
        check_legal(scheme, layer)  # raises SchemeError naming the layer and the reason
        for g in layer.gemms:
            if g.prunable:
                out[g.name] = scheme
    for name, scheme in by_gemm.items():
        layer, g = gemms[name]
        check_legal(scheme, _single_gemm_layer(layer, g))
        if g.prunable:
            out[name] = scheme
    return out


def legal_assignment(network: Network, scheme: PruningScheme | str, *,
                     skip_depthwise: bool = False, min_k: int = 1
                     ) -> tuple[dict[str, PruningScheme], tuple[SkippedLayer, ...]]:
    """Apply one scheme everywhere it is legal: (assignment, skipped).

    Legality is ``grimsim.pruning.is_legal`` on each layer with prunable weights. On top,
    ``skip_depthwise`` leaves depthwise convs dense and GEMMs with K < ``min_k`` stay dense
    (issue 6's "uniform" baseline: ``skip_depthwise=True, min_k=32``). The assignment is
    keyed by layer name, or by GEMM row name for a multi-GEMM layer only some of whose GEMMs
    pass ``min_k`` (e.g. a GRU whose input has few features); every layer or GEMM left dense
    is listed in ``skipped`` with the reason.
    """
    scheme = as_scheme(scheme)
    if not isinstance(min_k, int) or min_k < 1:
        raise GrimsimError(f"min_k must be a positive int, got {min_k!r}")
    assignment: dict[str, PruningScheme] = {}
    skipped: list[SkippedLayer] = []
    if scheme.is_dense:
        return assignment, ()
    for layer in network.layers():
        prunable = [g for g in layer.gemms if g.prunable]
        if not prunable:
            continue
        if skip_depthwise and layer.op == Op.DWCONV:
            skipped.append(SkippedLayer(layer.name, scheme.spec,
                                        "depthwise convolution (left dense on request)"))
            continue
        if not scheme_is_legal(scheme, layer):
            try:
                check_legal(scheme, layer)
            except SchemeError as exc:
                reason = str(exc)
            skipped.append(SkippedLayer(layer.name, scheme.spec, reason))
            continue
        small = [g for g in prunable if g.K < min_k]
        if not small:
            assignment[layer.name] = scheme
            continue
        for g in small:
            where = layer.name if g.name == layer.name else g.name
            skipped.append(SkippedLayer(where, scheme.spec,
                                        f"K={g.K} < {min_k} (left dense on request)"))
        for g in prunable:
            if g.K >= min_k:
                assignment[g.name] = scheme
    return assignment, tuple(skipped)


def check_weights(network: Network, weights: Mapping[str, np.ndarray] | None,
                  what: str = "weights") -> dict[str, np.ndarray]:
    """GEMM row name -> its M x K weights as float32 (keys may also be single-GEMM layer
    names; a conv's OIHW tensor is accepted), checked before anything runs."""
    if not weights:
        return {}
    gemms = _gemm_index(network)
    out: dict[str, np.ndarray] = {}
    for key, value in weights.items():
        if key in gemms:
            _, g = gemms[key]
        elif key in network and len(network.layer(key).gemms) == 1:
            g = network.layer(key).gemms[0]
        else:
            raise MappingError(f"{what}: {key!r} is not a GEMM of network {network.name!r} "
                               "(keys are GEMM row names as in 'grimsim info')")
        if not g.prunable:
            raise ShapeError(f"{what}: GEMM {g.name!r} multiplies two activations; it has no "
                             "weights")
        arr = np.asarray(value)
        if g.kernel is not None and arr.ndim == 4 and arr.shape[0] == g.M \
                and math.prod(arr.shape[1:]) == g.K and tuple(arr.shape[2:]) == g.kernel:
            arr = arr.reshape(g.M, g.K)  # a conv's OIHW tensor: rows are output channels
        if arr.shape != (g.M, g.K):
            raise ShapeError(f"{what}: GEMM {g.name!r} has weights of shape {arr.shape}; "
                             f"expected its M x K GEMM view ({g.M}, {g.K})"
                             + (" = out channels x in_channels/groups*kh*kw"
                                if g.kernel else ""))
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise ShapeError(f"{what}: GEMM {g.name!r}: weights must be real numbers, got "
                             f"dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise GrimsimError(f"{what}: GEMM {g.name!r}: weights contain NaN or inf")
        if g.name in out:
            raise MappingError(f"{what}: GEMM {g.name!r} is given twice (as {key!r})")
        out[g.name] = np.ascontiguousarray(arr, dtype=np.float32)
    return out


def _winograd_eligible(layer: LayerWorkload) -> bool:
    return (layer.op == Op.CONV and layer.attr("kernel") == (3, 3)
            and layer.attr("stride") == (1, 1) and layer.attr("dilation") == (1, 1)
            and layer.attr("groups", 1) == 1)


def _resolve_choices(network: Network, kernel_choice: Mapping[str, str] | None,
                     schemes: Mapping[str, PruningScheme]) -> dict[str, bool]:
    """GEMM name -> use Winograd, for every conv GEMM."""
    gemms = _gemm_index(network)
    wanted: dict[str, str] = {}
    for key, value in (kernel_choice or {}).items():
        choice = str(value).strip().lower()
        if choice not in KERNEL_CHOICES:
            raise GrimsimError(f"kernel_choice for {key!r}: unknown kernel {value!r}; choose "
                               f"from {', '.join(KERNEL_CHOICES)}")
        if key in gemms:
            wanted[key] = choice
        elif key in network:
            for g in network.layer(key).gemms:
                wanted.setdefault(g.name, choice)
        else:
            raise MappingError(f"kernel_choice names {key!r}, which is not a layer or GEMM "
                               f"of network {network.name!r}")
    out: dict[str, bool] = {}
    for layer in network.layers():
        if layer.op not in _CONV_OPS:
            continue
        g = layer.gemms[0]
        choice = wanted.get(g.name, "auto")
        eligible = _winograd_eligible(layer)
        dense = schemes.get(g.name, _DENSE).is_dense
        if choice == "winograd":
            if not eligible:
                raise GrimsimError(f"kernel_choice: Winograd needs a 3x3 stride-1 "
                                   f"undilated ungrouped conv; layer {layer.name!r} has "
                                   f"kernel {layer.attr('kernel')}, stride "
                                   f"{layer.attr('stride')}, dilation "
                                   f"{layer.attr('dilation')}, groups {layer.attr('groups')}")
            if not dense:
                raise GrimsimError(f"kernel_choice: Winograd runs dense weights only; layer "
                                   f"{layer.name!r} is pruned with "
                                   f"{schemes[g.name].spec!r}")
            out[g.name] = True
        elif choice == "auto":
            channels = min(layer.attr("in_channels", 0), layer.attr("out_channels", 0))
            out[g.name] = eligible and dense and channels >= WINOGRAD_MIN_CHANNELS
        else:
            out[g.name] = False
    return out


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class _Ctx:
    k: Any
    threads: int
    opts: Mapping[str, Any]
    seed: int
    check: bool
    schemes: Mapping[str, PruningScheme]
    weights: Mapping[str, np.ndarray]
    winograd: Mapping[str, bool]
    stat: str = "min_s"

    def rng(self, *key: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, *(zlib.crc32(s.encode()) for s in key)])

    def gauss(self, shape: Sequence[int], *key: str) -> np.ndarray:
        """Random activations on a cache line, as an engine's tensors (grimsim.aligned)."""
        return aligned_standard_normal(self.rng(*key), tuple(shape))

    def time(self, fn: Callable[[], object]) -> float:
        """Seconds of a Python callable under the harness (the run's statistic)."""
        return float(self.k.time_callable(fn, threads=self.threads, **self.opts)[self.stat])

    def bench(self, prepared: PreparedGemm, x: np.ndarray) -> float:
        return float(prepared.bench(x, self.threads, **self.opts)[self.stat])


@dataclass(frozen=True, eq=False)
class _Pruned:
    """A GEMM's weights after pruning: the masked matrix and, when a GEMM kernel runs it,
    one compact format per group."""

    scheme: PruningScheme
    masked: np.ndarray
    sparsity: float | None
    formats: tuple[Format, ...]

    @property
    def format_bytes(self) -> int:
        if self.scheme.is_dense or not self.formats:
            return int(self.masked.nbytes)
        return int(sum(f.nbytes for f in self.formats))


def _prune(ctx: _Ctx, layer: LayerWorkload, g: GemmView, *, encode_groups: bool) -> _Pruned:
    """Weights of GEMM ``g`` (given or Gaussian), masked by its scheme; with
    ``encode_groups`` each group gets its own mask and compact format."""
    if not g.prunable:  # an activation operand: random data, never pruned
        a = ctx.gauss((g.M // g.groups, g.K), g.name, "a")
        return _Pruned(_DENSE, a, None, (DenseFormat(a, a.shape),) if encode_groups else ())
    scheme = ctx.schemes.get(g.name, _DENSE)
    w = ctx.weights.get(g.name)
    if w is None:
        w = ctx.gauss((g.M, g.K), g.name, "w")
    kernel = kernel_of(layer) if layer.op in _CONV_OPS else None
    rows = g.M // g.groups
    pieces = g.groups if encode_groups else 1
    size = g.M // pieces
    if scheme.is_dense:  # no mask and no copy (an FC layer's weights can be large)
        mask = None
        masked = np.ascontiguousarray(w, dtype=np.float32)
        sparsity = 0.0
    else:
        mask = np.vstack([make_mask(w[i * size:(i + 1) * size], scheme, kernel=kernel)
                          for i in range(pieces)])
        masked = np.where(mask, w, np.float32(0)).astype(np.float32)
        sparsity = 1.0 - float(np.count_nonzero(mask)) / mask.size
    formats: tuple[Format, ...] = ()
    if encode_groups:
        if scheme.is_dense:
            # identical dense groups are timed once (x groups): the first group's matrix
            part = np.ascontiguousarray(masked[:rows])
            formats = (DenseFormat(part, part.shape),)
        else:
            assert mask is not None
            formats = tuple(encode(w[i * rows:(i + 1) * rows], mask[i * rows:(i + 1) * rows],
                                   scheme, kernel=kernel) for i in range(g.groups))
    return _Pruned(scheme, masked, sparsity, formats)


def _gemm_kernel(prepared: PreparedGemm, n_per_call: int) -> str:
    if prepared.kernel == "dense":
        return "gemv" if n_per_call == 1 else "gemm"
    return prepared.kernel


def _rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = float(np.max(np.abs(np.asarray(y, dtype=np.float64) - ref))) if ref.size else 0.0
    return err / scale if scale > 0 else err


def _verify(name: str, kernel: str, y: np.ndarray, ref: np.ndarray) -> float:
    err = _rel_err(y.reshape(ref.shape), ref)
    tol = WINOGRAD_RTOL if kernel == "winograd" else CHECK_RTOL
    if not err <= tol:
        raise KernelCheckError(f"GEMM {name!r}: the {kernel} kernel's output differs from "
                               f"numpy's masked W @ X by {err:.3g} (relative to max |ref|), "
                               f"above the tolerance {tol:g}")
    return err


def _ref(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(w, dtype=np.float64) @ np.asarray(x, dtype=np.float64)


def _gemm_run(g: GemmView, pruned: _Pruned, kernel: str, measured_s: float, *,
              parts: Sequence[tuple[str, float]] = (), prepared_bytes: int = 0,
              prepare_s: float = 0.0, err: float | None = None) -> GemmRun:
    return GemmRun(g.name, g.M, g.K, g.N, g.groups, g.repeats, g.prunable, pruned.scheme.spec,
                   kernel, float(measured_s), tuple(parts),
                   pruned.format_bytes if g.prunable else 0, prepared_bytes, prepare_s,
                   pruned.sparsity, err)


def _time_groups(ctx: _Ctx, g: GemmView, prepared: Sequence[PreparedGemm],
                 xs: Sequence[np.ndarray]) -> float:
    """Seconds for all groups of one call: one harness timing x groups when the groups are
    identical dense GEMMs, else one timed loop over the groups' own matrices."""
    if len(prepared) == 1:
        return ctx.bench(prepared[0], xs[0]) * g.groups
    threads = ctx.threads
    pairs = list(zip(prepared, xs, strict=True))
    return ctx.time(lambda: [p.run(x, threads) for p, x in pairs])


def _plain_gemm(ctx: _Ctx, layer: LayerWorkload, g: GemmView,
                xs: Sequence[np.ndarray] | None = None) -> tuple[GemmRun, list[PreparedGemm]]:
    """A GEMM on its own K x N operand(s): dense, sparse, grouped or repeated."""
    pruned = _prune(ctx, layer, g, encode_groups=True)
    formats = pruned.formats
    if xs is None:
        xs = [ctx.gauss((g.K, g.N), g.name, "x", str(i)) for i in range(len(formats))]
    prepared = [prepare(f) for f in formats]
    seconds = _time_groups(ctx, g, prepared, xs) * g.repeats
    kernel = _gemm_kernel(prepared[0], g.N)
    err = None
    if ctx.check:
        rows = g.M // g.groups
        err = max(_verify(g.name, kernel, p.run(x, ctx.threads),
                          _ref(pruned.masked[i * rows:(i + 1) * rows] if g.prunable
                               else pruned.masked, x))
                  for i, (p, x) in enumerate(zip(prepared, xs, strict=True)))
    run = _gemm_run(g, pruned, kernel, seconds,
                    prepared_bytes=sum(p.prepared_bytes for p in prepared),
                    prepare_s=sum(p.prepare_s for p in prepared), err=err)
    return run, prepared


# --------------------------------------------------------------------------- layers


def _summary(layer: LayerWorkload, parts: Sequence[tuple[str, float]],
             gemms: Sequence[GemmRun]) -> LayerRun:
    specs = list(dict.fromkeys(r.scheme for r in gemms if r.prunable))
    scheme = specs[0] if len(specs) == 1 else ("dense" if not specs else "mixed")
    prunable = [r for r in gemms if r.prunable]
    weights = sum(r.M * r.K for r in prunable)
    kept = sum((1.0 - (r.sparsity or 0.0)) * r.M * r.K for r in prunable)
    sparsity = 1.0 - kept / weights if weights else None
    kernel = "+".join(dict.fromkeys(r.kernel for r in gemms)) or "none"
    total = float(sum(v for _, v in parts))
    return LayerRun(layer.name, layer.op, scheme, kernel, total, tuple(parts),
                    sum(r.format_bytes for r in prunable), sparsity, tuple(gemms))


def _conv(ctx: _Ctx, layer: LayerWorkload) -> LayerRun:
    k = ctx.k
    g = layer.gemms[0]
    n, c, h, w = layer.input_shapes[0]
    m, oh, ow = layer.output_shape[1:]
    kh, kw = layer.attr("kernel")
    stride, dilation = layer.attr("stride"), layer.attr("dilation")
    groups = int(layer.attr("groups", 1))
    pt, pl, pb, pr = layer.attr("padding")
    if (pt, pl) == (pb, pr):
        pad = (pt, pl)
        inp = ctx.gauss((1, c, h, w), layer.name, "input")
    else:  # the kernels pad symmetrically: pad the image once up front
        pad = (0, 0)
        inp = np.zeros((1, c, h + pt + pb, w + pl + pr), dtype=np.float32)
        inp[:, :, pt:pt + h, pl:pl + w] = ctx.gauss((1, c, h, w), layer.name, "input")
    geo = {"stride": stride, "pad": pad, "dilation": dilation}
    pointwise = (kh, kw) == (1, 1) and stride == (1, 1) and pad == (0, 0)
    depthwise = layer.op == Op.DWCONV and groups == c == m
    scheme = ctx.schemes.get(g.name, _DENSE)
    sparse = not scheme.is_dense and not depthwise

    def unfolded(out: np.ndarray | None = None) -> np.ndarray:
        return (inp.reshape(c, -1) if pointwise
                else k.im2col(inp, kernel=(kh, kw), threads=ctx.threads, out=out, **geo))

    pruned = _prune(ctx, layer, g, encode_groups=sparse)
    kg = g.K
    rows = m // groups
    err: float | None = None
    prepared_bytes, prepare_s = 0, 0.0
    if depthwise:
        weight = pruned.masked.reshape(m, 1, kh, kw)
        kernel = "depthwise"
        t = float(k.bench_depthwise(inp, weight, threads=ctx.threads, **geo,
                                    **ctx.opts)[ctx.stat])
        parts = [("depthwise_s", t * n)]
        if ctx.check:
            y = k.depthwise_conv2d(inp, weight, threads=ctx.threads, **geo)
            cols = np.asarray(unfolded(), dtype=np.float64).reshape(m, kh * kw, -1)
            ref = np.einsum("ck,ckn->cn", pruned.masked.astype(np.float64), cols)
            err = _verify(g.name, kernel, y, ref)
    elif not sparse:
        if ctx.winograd.get(g.name, False):
            kernel = "winograd"
            tile = int(k.winograd_preferred_tile(oh, ow))
            start = time.perf_counter()
            packed = k.winograd_pack_weights(pruned.masked.reshape(m, c, 3, 3),
                                             output_tile=tile)
            prepare_s = time.perf_counter() - start
            prepared_bytes = int(packed.nbytes)
            t = float(k.bench_winograd(inp, packed, pad=pad, threads=ctx.threads,
                                       **ctx.opts)[ctx.stat])
            parts = [("winograd_s", t * n)]

            def conv_out() -> np.ndarray:
                return np.asarray(k.winograd_conv3x3(inp, packed, pad=pad, threads=ctx.threads))
        else:
            kernel = ("gemv" if oh * ow == 1 else "gemm") if pointwise else "im2col+gemm"
            t = float(k.bench_conv2d_gemm(inp, pruned.masked, kernel=(kh, kw), groups=groups,
                                          threads=ctx.threads, **geo, **ctx.opts)[ctx.stat])
            parts = [("conv_s", t * n)]

            def conv_out() -> np.ndarray:
                return np.asarray(k.conv2d_gemm(inp, pruned.masked, kernel=(kh, kw),
                                                groups=groups, threads=ctx.threads, **geo))
        if ctx.check:
            x = np.asarray(unfolded())
            ref = np.vstack([_ref(pruned.masked[i * rows:(i + 1) * rows],
                                  x[i * kg:(i + 1) * kg]) for i in range(groups)])
            err = _verify(g.name, kernel, conv_out(), ref)
    else:
        x = np.asarray(unfolded())
        # timed into the same buffer each call, as an engine's memory plan reuses one
        im2col_s = 0.0 if pointwise else ctx.time(lambda: unfolded(x))
        xs = [np.ascontiguousarray(x[i * kg:(i + 1) * kg]) for i in range(groups)]
        prepared = [prepare(f) for f in pruned.formats]
        spmm_s = _time_groups(ctx, g, prepared, xs)
        kernel = _gemm_kernel(prepared[0], oh * ow)
        parts = [("im2col_s", im2col_s * n), ("spmm_s", spmm_s * n)]
        prepared_bytes = sum(p.prepared_bytes for p in prepared)
        prepare_s = sum(p.prepare_s for p in prepared)
        if ctx.check:
            err = max(_verify(g.name, kernel, p.run(xg, ctx.threads),
                              _ref(pruned.masked[i * rows:(i + 1) * rows], xg))
                      for i, (p, xg) in enumerate(zip(prepared, xs, strict=True)))
    run = _gemm_run(g, pruned, kernel, sum(v for _, v in parts), parts=parts,
                    prepared_bytes=prepared_bytes, prepare_s=prepare_s, err=err)
    return _summary(layer, parts, [run])


def _deconv(ctx: _Ctx, layer: LayerWorkload) -> LayerRun:
    """GEMM (M = out_channels*kh*kw, K = in_channels/groups, N = input pixels), then col2im
    (scatter-add of the kh*kw column planes into the output) as a numpy stand-in."""
    g = layer.gemms[0]
    run, _ = _plain_gemm(ctx, layer, g)
    n, _, h, w = layer.input_shapes[0]
    cout = layer.output_shape[1]
    kh, kw = layer.attr("kernel")
    sh, sw = layer.attr("stride")
    dh, dw = layer.attr("dilation")
    hp = (h - 1) * sh + dh * (kh - 1) + 1
    wp = (w - 1) * sw + dw * (kw - 1) + 1
    cols = ctx.gauss((cout, kh, kw, h, w), layer.name, "cols")
    out = np.zeros((cout, hp, wp), dtype=np.float32)

    def col2im() -> None:
        out.fill(0.0)
        for ky in range(kh):
            for kx in range(kw):
                out[:, ky * dh:ky * dh + sh * (h - 1) + 1:sh,
                    kx * dw:kx * dw + sw * (w - 1) + 1:sw] += cols[:, ky, kx]

    col2im_s = ctx.time(col2im) * n
    parts = [("gemm_s", run.measured_s), ("col2im_s", col2im_s)]
    return _summary(layer, parts, [run])


class _GateMath:
    """The gate math of one recurrent step, in place on preallocated buffers: calling it
    with ``(gi, gh, h, c)`` updates the state ``h`` (and the LSTM cell ``c``), both hidden x
    batch, from the step's input pre-activations ``gi`` (gates x hidden x batch) and the
    recurrent GEMMs' outputs ``gh`` (one hidden x batch array per gate), gates in the
    layer's order.

    An engine runs this as one fused loop per step; numpy makes one pass (and one call) per
    operation, so every pass writes into a buffer allocated once and ``CALLS`` numpy calls
    per step remain (``grimsim.cost.kernel_params`` charges them per step).
    """

    #: numpy calls per step of each form (the cost model counts them)
    CALLS: ClassVar[dict[str, int]] = {"gru": 12, "lstm": 14, "generic": 2}

    def __init__(self, gates: Sequence[str], hidden: int, batch: int) -> None:
        self.kind = {("r", "z", "n"): "gru", ("i", "f", "g", "o"): "lstm"}.get(
            tuple(gates), "generic")
        n = {"gru": 2, "lstm": 4}.get(self.kind, 1)
        self.buf = np.empty((n, hidden, batch), dtype=np.float32)
        self.tmp = np.empty((hidden, batch), dtype=np.float32)

    def __call__(self, gi: np.ndarray, gh: Sequence[np.ndarray], h: np.ndarray,
                 c: np.ndarray) -> None:
        buf, tmp = self.buf, self.tmp
        if self.kind == "gru":  # PyTorch/ONNX linear_before_reset form
            np.add(gi[0], gh[0], out=buf[0])
            np.add(gi[1], gh[1], out=buf[1])
            _sigmoid_(buf)  # buf = (r, z)
            np.multiply(buf[0], gh[2], out=tmp)
            np.add(tmp, gi[2], out=tmp)
            np.tanh(tmp, out=tmp)  # the candidate n
            np.subtract(h, tmp, out=h)  # h' = n + z (h - n)
            np.multiply(h, buf[1], out=h)
            np.add(h, tmp, out=h)
        elif self.kind == "lstm":  # buf = (i, f, o, g): the three sigmoids side by side
            for slot, gate in ((0, 0), (1, 1), (2, 3), (3, 2)):
                np.add(gi[gate], gh[gate], out=buf[slot])
            _sigmoid_(buf[:3])
            np.tanh(buf[3], out=buf[3])
            np.multiply(c, buf[1], out=c)  # c' = f c + i g
            np.multiply(buf[0], buf[3], out=tmp)
            np.add(c, tmp, out=c)
            np.tanh(c, out=h)  # h' = o tanh(c')
            np.multiply(h, buf[2], out=h)
        else:
            np.add(gi.sum(axis=0), sum(gh), out=h)
            np.tanh(h, out=h)


def _sigmoid_(x: np.ndarray) -> None:
    """The logistic function in place, as 0.5 tanh(x / 2) + 0.5 (no overflow in exp)."""
    half = np.float32(0.5)
    np.multiply(x, half, out=x)
    np.tanh(x, out=x)
    np.multiply(x, half, out=x)
    np.add(x, half, out=x)


class _Recurrence:
    """One time step of a recurrent layer per call, the state carried between calls.

    ``gi`` holds every step's input pre-activations time-major (steps x gates x hidden x
    batch): an engine gets that layout at no extra cost by computing the input projection
    as X^T W^T, so a step reads one contiguous block instead of a strided column.
    """

    def __init__(self, prepared: Sequence[PreparedGemm], gi: np.ndarray, update: _GateMath,
                 h0: np.ndarray, threads: int) -> None:
        self.prepared, self.gi, self.update = prepared, gi, update
        self.h = np.array(h0, dtype=np.float32, order="C")  # updated in place
        self.c = np.zeros_like(self.h)
        self.threads = threads
        self.t = 0

    def __call__(self) -> None:
        t = self.t
        self.t = (t + 1) % len(self.gi)
        gh = [p.run(self.h, self.threads) for p in self.prepared]
        self.update(self.gi[t], gh, self.h, self.c)


def _recurrent(ctx: _Ctx, layer: LayerWorkload) -> LayerRun:
    batch, steps, _ = layer.input_shapes[0]
    hidden = int(layer.attr("hidden_size"))
    prefixes = ("", "reverse.") if layer.attr("bidirectional", False) else ("",)
    parts: list[tuple[str, float]] = []
    runs: list[GemmRun] = []
    for prefix in prefixes:
        base = f"{layer.name}.{prefix}"

        def own(suffix: str, base: str = base) -> list[GemmView]:
            return [g for g in layer.gemms if g.name.startswith(base)
                    and g.name.endswith(suffix) and "." not in g.name[len(base):-len(suffix)]]

        ih, hh = own(".ih"), own(".hh")
        gates = [g.name[len(base):-3] for g in ih]
        for g in ih:
            run, _ = _plain_gemm(ctx, layer, g)
            runs.append(run)
            parts.append((f"{prefix}{g.name[len(base):]}_s", run.measured_s))
        hh_prepared: list[PreparedGemm] = []
        h0 = ctx.gauss((hidden, batch), layer.name, prefix, "h0")
        for g in hh:
            single = replace(g, repeats=1)
            run, prepared = _plain_gemm(ctx, layer, single, [h0])
            runs.append(replace(run, repeats=g.repeats, measured_s=run.measured_s * g.repeats,
                                parts=(("step_s", run.measured_s),)))
            hh_prepared.append(prepared[0])
        if not hh_prepared:
            continue
        gi = ctx.gauss((steps, len(gates), hidden, batch), layer.name, prefix, "gi")
        step = _Recurrence(hh_prepared, gi, _GateMath(gates, hidden, batch), h0, ctx.threads)
        parts.append((f"{prefix}recurrent_steps_s", ctx.time(step) * steps))
    return _summary(layer, parts, runs)


def _attention(ctx: _Ctx, layer: LayerWorkload) -> LayerRun:
    runs = [_plain_gemm(ctx, layer, g)[0] for g in layer.gemms]
    parts = [(f"{r.name[len(layer.name) + 1:] or r.name}_s", r.measured_s) for r in runs]
    qk = next((g for g in layer.gemms if g.name.endswith(".qk")), None)
    if qk is not None:
        scores = ctx.gauss((qk.groups, qk.M // qk.groups, qk.N), layer.name, "scores")
        probs = np.empty_like(scores)
        parts.append(("softmax_s", ctx.time(softmax_fn(scores, probs, -1))))
    return _summary(layer, parts, runs)


def _gemm_layer(ctx: _Ctx, layer: LayerWorkload) -> LayerRun:
    runs = [_plain_gemm(ctx, layer, g)[0] for g in layer.gemms]
    if len(runs) == 1:
        parts = [("gemm_s", runs[0].measured_s)]
    else:
        parts = [(f"{r.name}_s", r.measured_s) for r in runs]
    return _summary(layer, parts, runs)


def _cheap(ctx: _Ctx, layer: LayerWorkload) -> LayerRun:
    op = cheap_op(layer, ctx.rng(layer.name, "cheap"))
    if op is None:  # a view or an input: nothing runs
        return LayerRun(layer.name, layer.op, "dense", "none", 0.0, ())
    seconds = ctx.time(op.fn)
    return LayerRun(layer.name, layer.op, "dense", op.kernel, seconds, (("cheap_s", seconds),))


def _run_layer(ctx: _Ctx, layer: LayerWorkload) -> LayerRun:
    if not layer.gemms:
        return _cheap(ctx, layer)
    if layer.op in _CONV_OPS:
        return _conv(ctx, layer)
    if layer.op == Op.DECONV:
        return _deconv(ctx, layer)
    if layer.op in (Op.GRU, Op.LSTM):
        return _recurrent(ctx, layer)
    if layer.op == Op.ATTENTION:
        return _attention(ctx, layer)
    return _gemm_layer(ctx, layer)


def run_network(network: Network,
                assignment: Mapping[str, PruningScheme | str] | None = None, *,
                threads: int = 1, kernel_choice: Mapping[str, str] | None = None,
                min_time_s: float = 0.05, seed: int = 0,
                weights: Mapping[str, np.ndarray] | None = None, check: bool = False,
                warmup: int = 1, max_reps: int = 1000, flush_cache_bytes: int = 0,
                statistic: str = "min_s") -> RunResult:
    """Measure ``network`` layer by layer on this machine with grimsim's kernels.

    ``assignment``: layer or GEMM row name -> scheme (object or spec string); GEMMs not
    named stay dense (see ``resolve_assignment``; ``legal_assignment`` builds one from a
    single scheme). ``kernel_choice``: layer or GEMM name -> kernel ("winograd",
    "im2col+gemm", "auto"...; see ``KERNEL_CHOICES``) for dense 3x3 convs. ``weights``: GEMM
    row name -> M x K weights (the rest are Gaussian, seeded by ``seed`` and the GEMM's
    name). ``check``: compare every GEMM's output with numpy's masked W @ X and raise
    KernelCheckError beyond the tolerance. The harness options (``min_time_s``, ``warmup``,
    ``max_reps``, ``flush_cache_bytes``) apply to every timing; ``statistic`` is the one kept
    per timing: ``min_s`` (the fastest call, the statistic calibration fits by default, so
    the comparison with a calibrated prediction is like for like) or ``median_s``. Pass a
    fused network (``grimsim.load_network`` fuses) so folded BN/activations do not run as
    cheap ops.
    """
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise GrimsimError(f"threads must be a positive integer, got {threads!r}")
    if not (isinstance(min_time_s, (int, float)) and math.isfinite(min_time_s)
            and min_time_s >= 0):
        raise GrimsimError(f"min_time_s must be a finite number >= 0, got {min_time_s!r}")
    if statistic not in TIMING_STATISTICS:
        raise GrimsimError(f"statistic must be one of {', '.join(TIMING_STATISTICS)}, got "
                           f"{statistic!r}")
    schemes = resolve_assignment(network, assignment)
    ctx_weights = check_weights(network, weights)
    winograd = _resolve_choices(network, kernel_choice, schemes)
    import grimsim._kernels as kernels  # deferred: import grimsim stays light

    ctx = _Ctx(kernels, int(threads),
               {"min_time_s": float(min_time_s), "warmup": int(warmup),
                "max_reps": int(max_reps), "flush_cache_bytes": int(flush_cache_bytes)},
               int(seed), bool(check), schemes, ctx_weights, winograd, statistic)
    start = time.perf_counter()
    layers = []
    with quiet_thread_pools():
        for layer in network.layers():
            t0 = time.perf_counter()
            row = _run_layer(ctx, layer)
            log.debug("%s (%s): %s %.3g ms measured, %.2f s to run", layer.name, layer.op,
                      row.kernel, row.measured_s * 1e3, time.perf_counter() - t0)
            layers.append(row)
    return RunResult(network.name, int(threads), str(kernels.simd_level()), tuple(layers),
                     float(min_time_s), int(seed), bool(check), time.perf_counter() - start,
                     statistic)
