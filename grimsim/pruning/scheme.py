"""Pruning schemes as values: the frozen ``PruningScheme``, its spec strings, and legality.

Spec grammar (DESIGN.md), S in [0, 1) being the fraction of weights removed::

    dense | unstructured:S | filter:S | column:S | pattern:4[:S] | block_punched:RxC:S
          | bcr:RxC:S[:rows=a,cols=b] | nm:N:M

``parse_spec`` and ``format_spec`` (also ``str(scheme)``) round-trip exactly: floats print as
Python's shortest repr, so ``parse_spec(format_spec(s)) == s`` for every scheme and
``format_spec(parse_spec(t)) == t`` for every canonical string ``t``.

BCR kept fractions: by default each R x C block keeps round(sqrt(1-S)*R) rows and the columns
follow from S; ``rows=a`` fixes the kept-row fraction instead (columns follow from S),
``cols=b`` alone fixes the kept-column fraction (rows follow from S). When both are given,
rows fix the first dimension and a*b must equal 1-S (within 0.01) so S stays the removed
fraction. The exact counting rule is in ``grimsim.pruning._plan``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from grimsim.errors import SchemeError
from grimsim.network.workload import GemmView, LayerWorkload, Op

KINDS = ("dense", "unstructured", "filter", "column", "pattern", "block_punched", "bcr", "nm")

GRAMMAR = ("dense | unstructured:S | filter:S | column:S | pattern:4[:S] | block_punched:RxC:S "
           "| bcr:RxC:S[:rows=a,cols=b] | nm:N:M   (S in [0,1) is the fraction of weights "
           "removed; R, C, N, M positive ints; a, b kept fractions in (0,1])")

#: pattern pruning alone keeps 4 of the 9 weights of every 3x3 kernel (PatDNN, ASPLOS 2020).
PATTERN_KEEP = 4
PATTERN_SPARSITY = 5 / 9

# a*b may differ from 1-S by this much when both bcr kept fractions are given
_FRACTION_TOLERANCE = 0.01


@dataclass(frozen=True)
class PruningScheme:
    """One pruning scheme; fields mirror the spec string (None = not given).

    ``sparsity``: S, the requested fraction removed (None for dense, nm, and pattern without
    connectivity pruning). ``block``: (R, C) for bcr and block_punched. ``keep_rows`` /
    ``keep_cols``: bcr's explicit kept fractions. ``n``, ``m``: N:M. ``target_sparsity`` is
    the fraction the scheme aims at in every case.
    """

    kind: str
    sparsity: float | None = None
    block: tuple[int, int] | None = None
    keep_rows: float | None = None
    keep_cols: float | None = None
    n: int | None = None
    m: int | None = None

    def __post_init__(self) -> None:
        if self.sparsity is not None and not isinstance(self.sparsity, float):
            object.__setattr__(self, "sparsity", _as_float(self.sparsity, "S"))
        for key in ("keep_rows", "keep_cols"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, float):
                object.__setattr__(self, key, _as_float(value, key))
        if self.block is not None:
            object.__setattr__(self, "block", tuple(self.block))
        _validate(self)

    # ---- constructors (same checks as parse_spec)
    @classmethod
    def dense(cls) -> PruningScheme:
        return cls("dense")

    @classmethod
    def unstructured(cls, sparsity: float) -> PruningScheme:
        return cls("unstructured", sparsity)

    @classmethod
    def filter(cls, sparsity: float) -> PruningScheme:
        return cls("filter", sparsity)

    @classmethod
    def column(cls, sparsity: float) -> PruningScheme:
        return cls("column", sparsity)

    @classmethod
    def pattern(cls, sparsity: float | None = None) -> PruningScheme:
        return cls("pattern", sparsity)

    @classmethod
    def block_punched(cls, rows: int, cols: int, sparsity: float) -> PruningScheme:
        return cls("block_punched", sparsity, (rows, cols))

    @classmethod
    def bcr(cls, rows: int, cols: int, sparsity: float, keep_rows: float | None = None,
            keep_cols: float | None = None) -> PruningScheme:
        return cls("bcr", sparsity, (rows, cols), keep_rows, keep_cols)

    @classmethod
    def nm(cls, n: int, m: int) -> PruningScheme:
        return cls("nm", n=n, m=m)

    # ---- derived
    @property
    def target_sparsity(self) -> float:
        """The fraction of weights the scheme aims to remove."""
        if self.kind == "dense":
            return 0.0
        if self.kind == "nm":
            assert self.n is not None and self.m is not None
            return 1.0 - self.n / self.m
        if self.kind == "pattern" and self.sparsity is None:
            return PATTERN_SPARSITY
        assert self.sparsity is not None
        return self.sparsity

    @property
    def is_dense(self) -> bool:
        return self.kind == "dense"

    @property
    def spec(self) -> str:
        return format_spec(self)

    def __str__(self) -> str:
        return format_spec(self)


def _as_float(value: object, what: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SchemeError(f"{what} must be a number, got {value!r}; grammar: {GRAMMAR}") from None
    return out


def _fail(scheme: PruningScheme, reason: str) -> SchemeError:
    return SchemeError(f"bad pruning scheme {scheme.kind!r}: {reason}; grammar: {GRAMMAR}")


def _check_rate(scheme: PruningScheme, required: bool) -> None:
    s = scheme.sparsity
    if s is None:
        if required:
            raise _fail(scheme, "needs a sparsity S")
        return
    if not math.isfinite(s) or not 0.0 <= s < 1.0:
        raise _fail(scheme, f"S={s!r} must be in [0, 1)")


def _check_nothing_else(scheme: PruningScheme, *allowed: str) -> None:
    for key in ("sparsity", "block", "keep_rows", "keep_cols", "n", "m"):
        if key not in allowed and getattr(scheme, key) is not None:
            raise _fail(scheme, f"takes no {key}")


def _validate(scheme: PruningScheme) -> None:
    kind = scheme.kind
    if kind not in KINDS:
        raise SchemeError(f"unknown pruning scheme {kind!r}; grammar: {GRAMMAR}")
    if kind == "dense":
        _check_nothing_else(scheme)
    elif kind in ("unstructured", "filter", "column"):
        _check_nothing_else(scheme, "sparsity")
        _check_rate(scheme, True)
    elif kind == "pattern":
        _check_nothing_else(scheme, "sparsity")
        _check_rate(scheme, False)
        if scheme.sparsity is not None and scheme.sparsity < PATTERN_SPARSITY - 1e-12:
            raise _fail(scheme, f"S={scheme.sparsity!r} is below 5/9 (0.5556), what keeping "
                        "4 of 9 already removes; omit S or give S >= 5/9 (S above 5/9 adds "
                        "connectivity pruning)")
    elif kind == "nm":
        _check_nothing_else(scheme, "n", "m")
        n, m = scheme.n, scheme.m
        if not (isinstance(n, int) and isinstance(m, int)) or isinstance(n, bool) \
                or isinstance(m, bool) or not 1 <= n <= m:
            raise _fail(scheme, f"N:M needs integers 1 <= N <= M, got N={n!r} M={m!r}")
    else:  # bcr, block_punched
        _check_nothing_else(scheme, "sparsity", "block",
                            *(("keep_rows", "keep_cols") if kind == "bcr" else ()))
        _check_rate(scheme, True)
        block = scheme.block
        if (block is None or len(block) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in block)
                or min(block) < 1):
            raise _fail(scheme, f"block sizes RxC must be integers >= 1, got {block!r}")
        if kind == "bcr":
            _check_fractions(scheme)


def _check_fractions(scheme: PruningScheme) -> None:
    kept = 1.0 - (scheme.sparsity or 0.0)
    for key in ("keep_rows", "keep_cols"):
        value = getattr(scheme, key)
        if value is not None and (not math.isfinite(value) or not 0.0 < value <= 1.0):
            raise _fail(scheme, f"{key.replace('keep_', '')}={value!r} must be a kept fraction "
                        "in (0, 1]")
    a, b = scheme.keep_rows, scheme.keep_cols
    if a is not None and b is not None:
        if abs(a * b - kept) > _FRACTION_TOLERANCE:
            raise _fail(scheme, f"rows*cols = {a * b:.4g} must equal the kept fraction 1-S = "
                        f"{kept:.4g}")
    elif a is not None and kept / a > 1.0 + 1e-9:
        raise _fail(scheme, f"rows={a!r} is below 1-S={kept:.4g}: the columns would need a "
                    "kept fraction above 1")
    elif b is not None and kept / b > 1.0 + 1e-9:
        raise _fail(scheme, f"cols={b!r} is below 1-S={kept:.4g}: the rows would need a "
                    "kept fraction above 1")


# --------------------------------------------------------------------------- spec strings

_INT = r"[0-9]+"


def _num(text: str, what: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SchemeError(f"bad pruning spec {spec!r}: {what} {text!r} is not a number; "
                          f"grammar: {GRAMMAR}") from None


def _block(text: str, spec: str) -> tuple[int, int]:
    m = re.fullmatch(rf"({_INT})x({_INT})", text)
    if not m:
        raise SchemeError(f"bad pruning spec {spec!r}: block {text!r} must be RxC with "
                          f"integers (e.g. 16x32); grammar: {GRAMMAR}")
    return int(m.group(1)), int(m.group(2))


def parse_spec(spec: str) -> PruningScheme:
    """Parse a scheme spec string (grammar above); raises SchemeError saying what is wrong."""
    if not isinstance(spec, str):
        raise SchemeError(f"a pruning spec must be a string, got {spec!r}; grammar: {GRAMMAR}")
    text = spec.strip().lower()
    parts = text.split(":")
    kind = parts[0]
    if kind not in KINDS:
        raise SchemeError(f"bad pruning spec {spec!r}: unknown scheme {kind!r}; "
                          f"grammar: {GRAMMAR}")
    args = parts[1:]

    def arity(*counts: int) -> None:
        if len(args) not in counts:
            raise SchemeError(f"bad pruning spec {spec!r}: {kind} takes "
                              f"{' or '.join(str(c) for c in counts)} field(s) after the name, "
                              f"got {len(args)}; grammar: {GRAMMAR}")

    if kind == "dense":
        arity(0)
        return PruningScheme("dense")
    if kind in ("unstructured", "filter", "column"):
        arity(1)
        return PruningScheme(kind, _num(args[0], "S", spec))
    if kind == "pattern":
        arity(1, 2)
        if args[0] != str(PATTERN_KEEP):
            raise SchemeError(f"bad pruning spec {spec!r}: only pattern:4 (4 of 9 kept) is "
                              f"supported, got pattern:{args[0]}; grammar: {GRAMMAR}")
        return PruningScheme("pattern", _num(args[1], "S", spec) if len(args) == 2 else None)
    if kind == "nm":
        arity(2)
        if not (re.fullmatch(_INT, args[0]) and re.fullmatch(_INT, args[1])):
            raise SchemeError(f"bad pruning spec {spec!r}: N and M must be integers; "
                              f"grammar: {GRAMMAR}")
        return PruningScheme("nm", n=int(args[0]), m=int(args[1]))
    if kind == "block_punched":
        arity(2)
        return PruningScheme(kind, _num(args[1], "S", spec), _block(args[0], spec))
    # bcr
    arity(2, 3)
    fractions: dict[str, float] = {}
    if len(args) == 3:
        for item in args[2].split(","):
            key, sep, value = item.partition("=")
            if not sep or key not in ("rows", "cols") or key in fractions:
                raise SchemeError(f"bad pruning spec {spec!r}: the optional bcr field is "
                                  f"rows=a,cols=b (either or both, once each), got "
                                  f"{args[2]!r}; grammar: {GRAMMAR}")
            fractions[key] = _num(value, key, spec)
    return PruningScheme("bcr", _num(args[1], "S", spec), _block(args[0], spec),
                         fractions.get("rows"), fractions.get("cols"))


def _fmt(x: float) -> str:
    return repr(float(x))


def format_spec(scheme: PruningScheme) -> str:
    """The canonical spec string of a scheme (inverse of parse_spec)."""
    kind = scheme.kind
    if kind == "dense":
        return "dense"
    if kind == "nm":
        return f"nm:{scheme.n}:{scheme.m}"
    if kind == "pattern":
        tail = "" if scheme.sparsity is None else f":{_fmt(scheme.sparsity)}"
        return f"pattern:{PATTERN_KEEP}{tail}"
    assert scheme.sparsity is not None
    if kind in ("unstructured", "filter", "column"):
        return f"{kind}:{_fmt(scheme.sparsity)}"
    assert scheme.block is not None
    out = f"{kind}:{scheme.block[0]}x{scheme.block[1]}:{_fmt(scheme.sparsity)}"
    extra = []
    if scheme.keep_rows is not None:
        extra.append(f"rows={_fmt(scheme.keep_rows)}")
    if scheme.keep_cols is not None:
        extra.append(f"cols={_fmt(scheme.keep_cols)}")
    return out + (":" + ",".join(extra) if extra else "")


def as_scheme(scheme: PruningScheme | str) -> PruningScheme:
    """Accept a scheme or its spec string."""
    if isinstance(scheme, PruningScheme):
        return scheme
    return parse_spec(scheme)


# --------------------------------------------------------------------------- legality


def kernel_of(target: LayerWorkload | GemmView) -> tuple[int, int] | None:
    """The (kh, kw) whose positions order W's columns, or None when the columns are plain
    features (FC, matmul, RNN, and deconvolution, whose GEMM columns are input channels)."""
    if isinstance(target, LayerWorkload):
        if target.op not in (Op.CONV, Op.DWCONV) or not target.gemms:
            return None
        return target.gemms[0].kernel
    return target.kernel


def _gemm_problem(scheme: PruningScheme, gemm: GemmView, kernel: tuple[int, int] | None,
                  op: str | None) -> str | None:
    if scheme.kind == "dense":
        return None
    if not gemm.prunable:
        return "its weights are activations (not prunable); only dense applies"
    if scheme.kind == "pattern":
        if kernel != (3, 3) or (op is not None and op not in (Op.CONV, Op.DWCONV)):
            return (f"pattern pruning needs a 3x3 convolution, this GEMM has kernel "
                    f"{kernel} (op {op or 'unknown'})")
        if gemm.K % 9:
            return f"pattern pruning needs K = in_channels*9, got K={gemm.K}"
        if op == Op.DWCONV or (gemm.K == 9 and gemm.groups > 1):
            return "pattern pruning does not apply to depthwise convolutions (one channel "\
                   "per kernel; use filter pruning instead)"
    if scheme.kind == "nm":
        assert scheme.m is not None
        if scheme.m > gemm.K:
            return f"N:M needs K >= M, got K={gemm.K} < M={scheme.m}"
    if scheme.kind == "block_punched" and kernel is not None:
        positions = kernel[0] * kernel[1]
        if gemm.K % positions:
            return f"K={gemm.K} is not in_channels x {kernel[0]}x{kernel[1]} kernel positions"
    return None


def check_legal(scheme: PruningScheme | str, target: LayerWorkload | GemmView) -> None:
    """Raise SchemeError naming the layer/GEMM and why ``scheme`` cannot prune it.

    A layer is legal when the scheme is legal for each of its prunable GEMMs (non-prunable
    GEMMs of a multi-GEMM layer, e.g. attention's activation matmuls, stay dense); a layer
    without prunable weights only takes ``dense``. Pass the LayerWorkload rather than a bare
    GemmView when you have it: the layer's op tells depthwise and deconvolution apart.
    """
    scheme = as_scheme(scheme)
    if scheme.kind == "dense":
        return
    if isinstance(target, LayerWorkload):
        prunable = [g for g in target.gemms if g.prunable]
        if not prunable:
            raise SchemeError(f"scheme {scheme.spec!r} is illegal for layer {target.name!r} "
                              f"(op {target.op}): it has no prunable weights; only dense "
                              "applies")
        kernel = kernel_of(target)
        for g in prunable:
            problem = _gemm_problem(scheme, g, kernel, target.op)
            if problem:
                where = target.name if g.name == target.name else f"{target.name} ({g.name})"
                raise SchemeError(f"scheme {scheme.spec!r} is illegal for layer {where!r}: "
                                  f"{problem}")
        return
    problem = _gemm_problem(scheme, target, target.kernel, None)
    if problem:
        raise SchemeError(f"scheme {scheme.spec!r} is illegal for GEMM {target.name!r} "
                          f"({target.M}x{target.K}): {problem}")


def is_legal(scheme: PruningScheme | str, target: LayerWorkload | GemmView) -> bool:
    """True when ``check_legal`` would pass."""
    try:
        check_legal(scheme, target)
    except SchemeError:
        return False
    return True
