"""The calibration sweep plan: which (GEMM shape, scheme, threads) points to time, and in
which order.

Shapes come from the zoo networks' GEMM rows (after fusion, minus the networks left out for
validation) and from a space-filling sample of log M, log K, log N (a randomly shifted
Kronecker/R_d low-discrepancy sequence: every prefix is spread evenly, so a short budget
still covers the range). Each shape gets every legal scheme of the plan's list; a *unit*
is one (shape, scheme), timed at every thread count in a row so its weights, mask and
format are built once.

Order: units are grouped into strata (each sparse spec; dense split by kernel class) that
take turns by weighted round robin; each stratum's next unit is the one farthest (in log M,
log K, log N and conv geometry) from the shapes chosen so far - by any stratum at first, then
by its own. Any prefix of the order therefore holds every scheme, on shapes spread over the
space and different from one scheme to the next.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from grimsim.errors import GrimsimError
from grimsim.network.fusion import fuse
from grimsim.network.workload import GemmView, LayerWorkload, Op
from grimsim.network.zoo import ZOO_NAMES, build_zoo
from grimsim.pruning import is_legal, parse_spec

__all__ = [
    "DEFAULT_SCHEMES",
    "SPACE_FILLING",
    "Plan",
    "PlanUnit",
    "Shape",
    "build_plan",
    "kronecker_sequence",
    "order_units",
    "space_filling_shapes",
    "zoo_shapes",
]

#: Schemes timed on every shape where legal (sparsities 0.5/0.75/0.9 as the fidelity targets
#: ask, plus 0.95 for unstructured; BCR blocks of the GRIM paper's range).
DEFAULT_SCHEMES: tuple[str, ...] = (
    "dense",
    "unstructured:0.5", "unstructured:0.75", "unstructured:0.9", "unstructured:0.95",
    *(f"bcr:{b}:{s}" for b in ("8x16", "16x16", "16x32", "32x32") for s in (0.5, 0.75, 0.9)),
    "nm:2:4", "nm:1:4", "nm:1:8",
    "pattern:4", "pattern:4:0.75",
    "filter:0.5", "filter:0.75", "column:0.5", "column:0.75",
)

#: Space-filling shapes beside the zoo's: 192 give 292 distinct shapes in all, the whole
#: pool within a 600 s host calibration (about 10 units a shape). More shapes with fewer
#: schemes each fit a better correction at a fixed number of points (2026-11-28, 3
#: held-out splits of one run: half of the points as every scheme on half of the shapes
#: 60.8-66.6 % within 10 %, as half of the units on every shape 64.7-69.1 %), but 384
#: (484 shapes, about 6 units each) made the held-out set mostly space-filling shapes,
#: harder than the zoo's (61-65 % against 70-77 % within 10 %): 67.0 % against 71.4-76.0 %
#: for 192 on the same code, so 192 it stays.
SPACE_FILLING = 192

#: Upper limits of one timed point (weights built and encoded in Python; ~0.25 s per call at
#: most on a phone-class core).
MAX_WEIGHTS = 1 << 24
MAX_DENSE_MACS = 2_000_000_000
_CONV_OPS = (Op.CONV, Op.DWCONV)


@dataclass(frozen=True)
class Shape:
    """One GEMM as the engine runs it (batch 1).

    ``op`` is the layer's op kind (``fc``, ``conv``, ``dwconv``, ``gru``, ``attention``...);
    convolutions also give their geometry (``in_c``, ``in_h``, ``in_w``, kernel, stride, a
    symmetric ``pad``, dilation) and ``M`` = output channels, ``K`` = in_c/groups x kh x kw,
    ``N`` = out_h x out_w. A recurrent layer's step GEMMs (``N`` = batch) are timed as the
    recurrence runs them: ``cycle`` GEMMs of this shape (the gates) called in turn every
    step, each from Python as ``grimsim run`` calls them, so each step streams all the gates'
    weights; the point's time is one GEMM's share x ``steps`` (the cost row's ``repeats``).
    Timed alone, a 1024 x 1024 BCR gate (1.3 MB) stayed in the 2 MiB L2 while the three
    gates of a GRU step streamed from L3, and no calibrated point showed the correction that.
    """

    op: str
    M: int
    K: int
    N: int
    groups: int = 1
    prunable: bool = True
    kh: int = 1
    kw: int = 1
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    in_c: int = 0
    in_h: int = 0
    in_w: int = 0
    out_h: int = 0
    out_w: int = 0
    steps: int = 1
    cycle: int = 1

    def __post_init__(self) -> None:
        for name in ("M", "K", "N", "groups", "kh", "kw", "stride", "dilation", "steps",
                     "cycle"):
            if getattr(self, name) < 1:
                raise GrimsimError(f"shape {self}: {name} must be >= 1")
        if self.M % self.groups:
            raise GrimsimError(f"shape {self}: groups must divide M")
        if self.steps > 1 and (self.is_conv or self.groups > 1 or not self.prunable):
            raise GrimsimError(f"shape {self}: only an ungrouped weight GEMM repeats in steps")
        if self.cycle > 1 and self.steps == 1:
            raise GrimsimError(f"shape {self}: a cycle of GEMMs needs steps > 1")

    @property
    def is_conv(self) -> bool:
        return self.op in _CONV_OPS

    @property
    def key(self) -> str:
        """Canonical text of the shape (unique per distinct kernel problem)."""
        if self.is_conv:
            return (f"{self.op}:{self.in_c}x{self.in_h}x{self.in_w}->{self.M}"
                    f":k{self.kh}x{self.kw}:s{self.stride}:p{self.pad}:d{self.dilation}"
                    f":g{self.groups}")
        return (f"{self.op}:{self.M}x{self.K}x{self.N}:g{self.groups}"
                + ("" if self.prunable else ":act")
                + (f":s{self.steps}c{self.cycle}" if self.steps > 1 else ""))

    @property
    def split_key(self) -> str:
        """(op, M, K, N): rows sharing it are one shape for held-out validation."""
        return f"{self.op}:{self.M}x{self.K}x{self.N}"

    @property
    def weights(self) -> int:
        return self.M * self.K

    @property
    def dense_macs(self) -> int:
        return self.M * self.K * self.N

    def gemm_view(self) -> GemmView:
        return GemmView(self.key, self.M, self.K, self.N, groups=self.groups,
                        repeats=self.steps, prunable=self.prunable,
                        kernel=(self.kh, self.kw) if self.is_conv else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Shape:
        return Shape(**data)


@dataclass(frozen=True)
class PlanUnit:
    """One (shape, scheme) to time at each of the plan's thread counts."""

    shape: Shape
    spec: str
    source: str = ""
    stratum: str = ""

    @property
    def key(self) -> str:
        return f"{self.shape.key}|{self.spec}"

    def point_key(self, threads: int) -> str:
        return f"{self.key}|t{threads}"


@dataclass(frozen=True)
class Plan:
    """Ordered units, the thread counts each is timed at, and what was left out (why)."""

    units: tuple[PlanUnit, ...]
    threads: tuple[int, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    networks: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.units)

    @property
    def n_points(self) -> int:
        return len(self.units) * len(self.threads)


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------
def _conv_shape(wl: LayerWorkload, g: GemmView) -> tuple[Shape | None, str]:
    inp = wl.input_shapes[0] if wl.input_shapes else ()
    if len(inp) != 4:
        return None, f"{wl.name}: conv input {inp} is not NCHW"
    if inp[0] != 1:
        return None, f"{wl.name}: batch {inp[0]} (calibration times batch 1)"
    kh, kw = wl.attr("kernel", (1, 1))
    sh, sw = wl.attr("stride", (1, 1))
    dh, dw = wl.attr("dilation", (1, 1))
    pads = tuple(wl.attr("padding", (0, 0, 0, 0)))
    if sh != sw or dh != dw or len(set(pads)) > 1:
        return None, f"{wl.name}: asymmetric stride/dilation/padding {pads}"
    out = wl.output_shape
    return Shape(op=wl.op, M=g.M, K=g.K, N=g.N, groups=g.groups, prunable=g.prunable,
                 kh=kh, kw=kw, stride=sh, pad=pads[0] if pads else 0, dilation=dh,
                 in_c=inp[1], in_h=inp[2], in_w=inp[3], out_h=out[2], out_w=out[3]), ""


def _step_cycles(wl: LayerWorkload) -> dict[str, int]:
    """For each repeated GEMM of ``wl``: how many repeated GEMMs of its shape run in turn in
    one step - the gates of its direction (``gru1.r.hh``, ``gru1.z.hh``, ``gru1.n.hh``: 3;
    a bidirectional layer's ``gru1.reverse.*.hh`` are a recurrence of their own)."""
    def direction(g: GemmView) -> tuple[str, int, int, int]:
        return (g.name.rsplit(".", 2)[0], g.M, g.K, g.N)

    repeated = [g for g in wl.gemms if g.repeats > 1]
    count: dict[tuple[str, int, int, int], int] = {}
    for g in repeated:
        count[direction(g)] = count.get(direction(g), 0) + 1
    return {g.name: count[direction(g)] for g in repeated}


def zoo_shapes(exclude_networks: Iterable[str] = ()) -> tuple[
        list[tuple[Shape, str]], list[tuple[str, str]], tuple[str, ...]]:
    """Distinct GEMM shapes of the fused zoo networks not excluded.

    Returns ``(shapes with their first source, skipped (source, reason), networks used)``.
    """
    excluded = {n.strip().lower() for n in exclude_networks if n.strip()}
    unknown = sorted(excluded - set(ZOO_NAMES))
    if unknown:
        raise GrimsimError(f"--exclude-networks: unknown zoo network(s) {', '.join(unknown)}; "
                           f"known: {', '.join(ZOO_NAMES)}")
    seen: dict[str, tuple[Shape, str]] = {}
    skipped: list[tuple[str, str]] = []
    used = tuple(n for n in ZOO_NAMES if n not in excluded)
    for name in used:
        net = fuse(build_zoo(name))
        for wl in net.layers():
            cycles = _step_cycles(wl)
            for g in wl.gemms:
                source = f"zoo:{name}/{g.name}"
                if wl.op in _CONV_OPS:
                    shape, why = _conv_shape(wl, g)
                elif wl.op == Op.DECONV:
                    shape, why = None, f"{wl.name}: deconvolution is not calibrated"
                else:
                    steps = g.repeats if g.repeats > 1 and g.groups == 1 and g.prunable else 1
                    shape, why = Shape(op=wl.op, M=g.M, K=g.K, N=g.N, groups=g.groups,
                                       prunable=g.prunable, steps=steps,
                                       cycle=cycles.get(g.name, 1) if steps > 1 else 1), ""
                if shape is None:
                    skipped.append((source, why))
                    continue
                if shape.weights > MAX_WEIGHTS or shape.dense_macs > MAX_DENSE_MACS:
                    skipped.append((source, f"{shape.key}: too large to time quickly "
                                            f"({shape.weights} weights, {shape.dense_macs} "
                                            "MACs)"))
                    continue
                seen.setdefault(shape.key, (shape, source))
    return list(seen.values()), skipped, used


def kronecker_sequence(n: int, dims: int, seed: int = 0, start: int = 0) -> np.ndarray:
    """Points ``start..start+n-1`` of the R_d sequence (Roberts 2018, "The unreasonable
    effectiveness of quasirandom sequences") with a random shift: ``frac(shift + i * alpha)``,
    ``alpha_j = phi_d ** -(j + 1)``, phi_d the real root of x**(d+1) = x + 1."""
    phi = 2.0
    for _ in range(64):
        phi = (1.0 + phi) ** (1.0 / (dims + 1))
    alpha = phi ** -np.arange(1, dims + 1)
    shift = np.random.default_rng(seed).random(dims)
    i = np.arange(start, start + n, dtype=np.float64)[:, None]
    return np.mod(shift + i * alpha, 1.0)


def _log_uniform(u: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def space_filling_shapes(n: int, seed: int = 0, *, m_range: tuple[int, int] = (8, 4096),
                         k_range: tuple[int, int] = (8, 8192),
                         n_range: tuple[int, int] = (1, 16384)) -> list[tuple[Shape, str]]:
    """``n`` shapes spread over log M x log K x log N (and the op: FC half the time, else a
    3x3 stride-1, 1x1 or 3x3 stride-2 convolution); points over the size limits are
    skipped and the sequence continues. A quarter of the FC points are GEMVs (N = 1):
    RNN steps and batch-1 FC run on their own kernels, which a log-uniform N would reach
    in ~4 % of the points (the zoo's RNNs give the dense GEMV stratum 12 units only)."""
    out: list[tuple[Shape, str]] = []
    seen: set[str] = set()
    start = 0
    while len(out) < n and start < 50 * max(n, 1):
        u = kronecker_sequence(max(n, 16), 4, seed=seed, start=start)
        for i, (um, uk, un, ukind) in enumerate(u):
            if len(out) >= n:
                break
            idx = start + i
            M = round(float(_log_uniform(np.asarray(um), *m_range)))
            K = round(float(_log_uniform(np.asarray(uk), *k_range)))
            N = 1 if ukind < 0.125 else round(float(_log_uniform(np.asarray(un), *n_range)))
            if ukind < 0.5:
                shape = Shape(op=Op.FC, M=M, K=K, N=N)
            else:
                k, s, p = (3, 1, 1) if ukind < 0.75 else (1, 1, 0) if ukind < 0.9 else (3, 2, 1)
                cin = max(1, round(K / (k * k)))
                side = max(1, round(math.sqrt(N)))
                in_side = side * s if k == 3 else side
                out_side = (in_side + 2 * p - k) // s + 1
                if out_side < 1:
                    continue
                shape = Shape(op=Op.CONV, M=M, K=cin * k * k, N=out_side * out_side, kh=k,
                              kw=k, stride=s, pad=p, in_c=cin, in_h=in_side, in_w=in_side,
                              out_h=out_side, out_w=out_side)
            if (shape.weights > MAX_WEIGHTS or shape.dense_macs > MAX_DENSE_MACS // 4
                    or shape.key in seen):
                continue
            seen.add(shape.key)
            out.append((shape, f"space:{seed}:{idx}"))
        start += len(u)
    return out


# --------------------------------------------------------------------------------------------
# Units and their order
# --------------------------------------------------------------------------------------------
def legal_specs(shape: Shape, specs: Sequence[str]) -> list[str]:
    """The specs of ``specs`` the engine can time on ``shape``: dense always; sparse schemes
    only on prunable, ungrouped GEMMs where the scheme is legal."""
    out = []
    for spec in specs:
        scheme = parse_spec(spec)
        if scheme.is_dense:
            out.append(scheme.spec)
            continue
        if not shape.prunable or shape.groups > 1 or shape.op == Op.DWCONV:
            continue
        if scheme.kind == "pattern" and not (shape.is_conv and (shape.kh, shape.kw) == (3, 3)):
            continue
        if is_legal(scheme, shape.gemm_view()):
            out.append(scheme.spec)
    return out


def stratum_of(shape: Shape, spec: str) -> str:
    """The stratum a unit is ordered within: its spec, dense split by kernel class."""
    if spec != "dense":
        return spec
    if shape.op == Op.DWCONV:
        return "dense:depthwise"
    if shape.is_conv:
        if (shape.kh, shape.kw) == (3, 3) and shape.stride == 1 and shape.dilation == 1 \
                and shape.groups == 1:
            return "dense:conv3x3s1"
        return "dense:conv"
    return "dense:gemv" if shape.N == 1 else "dense:gemm"


def _coords(shape: Shape) -> np.ndarray:
    return np.array([math.log2(shape.M), math.log2(shape.K), math.log2(shape.N),
                     3.0 * shape.is_conv, 2.0 * math.log2(shape.kh), float(shape.stride),
                     3.0 * (shape.steps > 1)])


def stratum_weight(stratum: str) -> float:
    """Dense kernels are what most layers run: their strata take turns twice as often."""
    return 2.0 if stratum.startswith("dense") else 1.0


def order_units(units: Sequence[PlanUnit]) -> list[PlanUnit]:
    """Strata take turns (weighted round robin); each picks, among its units, the one
    farthest from what was chosen before: ``min(distance to its own stratum's choices,
    2 x distance to any stratum's choices)``. Early on every stratum lands on shapes no
    other has covered yet; later each fills its own gaps (greedy farthest-point order)."""
    strata: dict[str, list[PlanUnit]] = {}
    for u in units:
        strata.setdefault(u.stratum or stratum_of(u.shape, u.spec), []).append(u)
    names = sorted(strata)
    pts = {s: np.stack([_coords(u.shape) for u in strata[s]]) for s in names}
    own = {s: np.full(len(strata[s]), np.inf) for s in names}
    glob = {s: np.full(len(strata[s]), np.inf) for s in names}
    taken = {s: np.zeros(len(strata[s]), bool) for s in names}
    passes = dict.fromkeys(names, 0.0)
    out: list[PlanUnit] = []
    while passes:
        name = min(passes, key=lambda s: (passes[s], s))
        score = np.minimum(own[name], 2.0 * glob[name])
        score[taken[name]] = -1.0
        if np.isinf(score).all():  # nothing chosen anywhere yet: start near the median
            centre = np.median(pts[name], axis=0)
            i = int(np.argmin(np.abs(pts[name] - centre).sum(axis=1)))
        else:
            i = int(np.argmax(score))
        taken[name][i] = True
        out.append(strata[name][i])
        p = pts[name][i]
        for s in passes:
            glob[s] = np.minimum(glob[s], np.linalg.norm(pts[s] - p, axis=1))
        own[name] = np.minimum(own[name], np.linalg.norm(pts[name] - p, axis=1))
        passes[name] += 1.0 / stratum_weight(name)
        if taken[name].all():
            del passes[name]
    return out


def build_plan(exclude_networks: Iterable[str] = (), threads: Sequence[int] = (1, 2), *,
               schemes: Sequence[str] = DEFAULT_SCHEMES, space_filling: int = SPACE_FILLING,
               seed: int = 0, max_threads: int | None = None) -> Plan:
    """The ordered plan: zoo shapes (minus ``exclude_networks``) and ``space_filling``
    sampled shapes, each with its legal ``schemes``, timed at ``threads`` (counts above
    ``max_threads``, e.g. the machine's hardware threads, are dropped)."""
    thr = tuple(sorted({int(t) for t in threads}))
    if not thr or thr[0] < 1:
        raise GrimsimError(f"threads must be positive integers, got {tuple(threads)}")
    if max_threads is not None:
        kept = tuple(t for t in thr if t <= max_threads)
        if not kept:
            raise GrimsimError(f"threads {thr}: this machine runs at most {max_threads}")
        thr = kept
    specs = [parse_spec(s).spec for s in schemes]
    zoo, skipped, used = zoo_shapes(exclude_networks)
    shapes = zoo + space_filling_shapes(space_filling, seed)
    units: list[PlanUnit] = []
    seen: set[str] = set()
    for shape, source in shapes:
        for spec in legal_specs(shape, specs):
            unit = PlanUnit(shape, spec, source, stratum_of(shape, spec))
            if unit.key not in seen:
                seen.add(unit.key)
                units.append(unit)
    # the recurrent-step units are few (one per zoo RNN shape and scheme) and the only
    # points of their regime (a step's gates cycling through the caches): they go first, so
    # any budget times them
    ordered = (order_units([u for u in units if u.shape.steps > 1])
               + order_units([u for u in units if u.shape.steps == 1]))
    return Plan(units=tuple(ordered), threads=thr, skipped=tuple(skipped),
                networks=used, meta={"schemes": specs, "space_filling": space_filling,
                                     "seed": seed, "zoo_shapes": len(zoo)})
