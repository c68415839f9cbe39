"""Spec strings (grammar, round trip, errors) and scheme legality per layer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import SchemeError
from grimsim.network import workload as wl
from grimsim.pruning import PruningScheme, check_legal, format_spec, is_legal, parse_spec

rates = st.floats(0.0, 0.999, allow_nan=False, exclude_max=False)
blocks = st.tuples(st.integers(1, 64), st.integers(1, 64))


@st.composite
def bcr_schemes(draw: st.DrawFn) -> PruningScheme:
    s = draw(rates)
    r, c = draw(blocks)
    which = draw(st.sampled_from(["none", "rows", "cols", "both"]))
    kept = 1.0 - s
    a = draw(st.floats(kept, 1.0)) if which in ("rows", "both") else None
    b = draw(st.floats(kept, 1.0)) if which == "cols" else None
    if which == "both":
        assert a is not None
        b = min(1.0, kept / a)
    return PruningScheme.bcr(r, c, s, a, b)


schemes = st.one_of(
    st.just(PruningScheme.dense()),
    st.builds(PruningScheme.unstructured, rates),
    st.builds(PruningScheme.filter, rates),
    st.builds(PruningScheme.column, rates),
    st.just(PruningScheme.pattern()),
    st.builds(PruningScheme.pattern, st.floats(5 / 9, 0.999)),
    st.builds(lambda rc, s: PruningScheme.block_punched(rc[0], rc[1], s), blocks, rates),
    bcr_schemes(),
    st.integers(1, 16).flatmap(lambda m: st.builds(PruningScheme.nm, st.integers(1, m),
                                                    st.just(m))),
)


@given(schemes)
def test_spec_round_trip(scheme: PruningScheme) -> None:
    text = format_spec(scheme)
    assert str(scheme) == text == scheme.spec
    again = parse_spec(text)
    assert again == scheme and hash(again) == hash(scheme)
    assert format_spec(again) == text
    assert 0.0 <= scheme.target_sparsity < 1.0


@pytest.mark.parametrize("text", [
    "dense", "unstructured:0.9", "filter:0.5", "column:0.25", "pattern:4", "pattern:4:0.8",
    "block_punched:4x8:0.5", "bcr:16x32:0.75", "bcr:8x16:0.75:rows=0.5",
    "bcr:8x16:0.75:cols=0.5", "bcr:8x16:0.75:rows=0.5,cols=0.5", "nm:2:4", "nm:1:1",
    "unstructured:0.0",
])
def test_canonical_strings_print_back(text: str) -> None:
    assert format_spec(parse_spec(text)) == text


def test_parse_fields() -> None:
    s = parse_spec("bcr:16x32:0.75")
    assert (s.kind, s.block, s.sparsity, s.keep_rows, s.keep_cols) == ("bcr", (16, 32), 0.75,
                                                                       None, None)
    assert parse_spec("nm:2:4").target_sparsity == 0.5
    assert parse_spec("pattern:4").target_sparsity == pytest.approx(5 / 9)
    assert parse_spec("  BCR:16X32:0.75 ") == s  # whitespace and case are forgiven
    assert parse_spec("bcr:4x4:0.75:cols=0.5,rows=0.5") == PruningScheme.bcr(4, 4, 0.75, 0.5, 0.5)
    assert {parse_spec("nm:2:4"): 1}[PruningScheme.nm(2, 4)] == 1  # hashable, equal


@pytest.mark.parametrize("text", [
    "", "foo", "dense:0.5", "unstructured", "unstructured:1.0", "unstructured:-0.1",
    "unstructured:nan", "unstructured:inf", "unstructured:abc", "filter:0.5:1", "column:",
    "bcr:16x32", "bcr:16:0.5", "bcr:0x4:0.5", "bcr:4x-4:0.5", "bcr:4x4:0.5:rows=0",
    "bcr:4x4:0.5:rows=0.3", "bcr:4x4:0.5:cols=1.5", "bcr:4x4:0.75:rows=0.5,cols=0.9",
    "bcr:4x4:0.5:depth=2", "bcr:4x4:0.5:rows=0.8,rows=0.9", "bcr:4x4:0.5:rows", "nm:0:4",
    "nm:5:4", "nm:2", "nm:a:4", "nm:2.0:4", "pattern", "pattern:3", "pattern:4:0.3",
    "pattern:4:0.7:1", "block_punched:4x4", "block_punched:4x4:0.5:rows=0.5",
    "block_punched:4x4:1",
])
def test_malformed_specs_raise_with_the_grammar(text: str) -> None:
    with pytest.raises(SchemeError) as err:
        parse_spec(text)
    assert "bcr:RxC:S[:rows=a,cols=b]" in str(err.value)


def test_constructor_validates_too() -> None:
    with pytest.raises(SchemeError):
        PruningScheme("bcr", 0.5, (4, 0))
    with pytest.raises(SchemeError):
        PruningScheme("blocky", 0.5)
    with pytest.raises(SchemeError):
        PruningScheme("dense", 0.5)
    with pytest.raises(SchemeError):
        PruningScheme("filter")
    with pytest.raises(SchemeError):
        parse_spec(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- legality

IMG = (1, 16, 14, 14)


def _conv(k: int, groups: int = 1, cin: int = 16) -> wl.LayerWorkload:
    return wl.conv2d(f"conv{k}x{k}g{groups}", (1, cin, 14, 14), 32 if groups == 1 else cin, k,
                     padding=k // 2, groups=groups)


def test_pattern_only_on_3x3_non_depthwise_conv() -> None:
    pattern = parse_spec("pattern:4")
    assert is_legal(pattern, _conv(3))
    assert is_legal(pattern, _conv(3).gemms[0])
    assert is_legal(pattern, wl.conv2d("grouped", IMG, 32, 3, padding=1, groups=2))
    for layer, words in ((_conv(1), "3x3"), (_conv(5), "3x3"),
                         (_conv(3, groups=16), "depthwise"),
                         (wl.linear("fc", (1, 90), 10), "3x3"),
                         (wl.deconv2d("up", IMG, 8, 3), "3x3")):
        with pytest.raises(SchemeError) as err:
            check_legal(pattern, layer)
        assert layer.name in str(err.value) and words in str(err.value)
    # a bare depthwise GEMM view is recognised too
    assert not is_legal(pattern, _conv(3, groups=16).gemms[0])


def test_nm_needs_k_at_least_m() -> None:
    assert is_legal("nm:2:4", wl.linear("fc", (1, 4), 8))
    with pytest.raises(SchemeError, match="K >= M"):
        check_legal("nm:2:8", wl.linear("fc", (1, 4), 8))


def test_non_prunable_takes_only_dense() -> None:
    mm = wl.matmul("mm", (1, 8, 16), (1, 16, 4))
    pool = wl.pool2d("pool", IMG, 2)
    for layer in (mm, pool):
        assert is_legal("dense", layer)
        with pytest.raises(SchemeError, match="prunable"):
            check_legal("unstructured:0.5", layer)
    assert not is_legal("bcr:4x4:0.5", mm.gemms[0])
    att = wl.attention("att", (1, 10, 32), 4)
    assert is_legal("bcr:8x8:0.5", att)  # its activation matmuls just stay dense
    assert not is_legal("bcr:8x8:0.5", att.gemms[3])  # att.qk
    assert is_legal("block_punched:4x4:0.5", _conv(3))
    assert is_legal("filter:0.5", _conv(3, groups=16))
