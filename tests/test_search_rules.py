"""The rule-based mapper: the rule table's choices on zoo networks, legality, rates."""

from __future__ import annotations

import pytest

from grimsim.errors import SearchError
from grimsim.network import fuse
from grimsim.network.zoo import build_zoo
from grimsim.pruning.scheme import is_legal, parse_spec
from grimsim.search import RULES, decision_layers, rule_based_mapping, rule_decisions


@pytest.fixture(scope="module")
def resnet50():  # type: ignore[no-untyped-def]
    return fuse(build_zoo("resnet50"))


@pytest.fixture(scope="module")
def mobilenet_v2():  # type: ignore[no-untyped-def]
    return fuse(build_zoo("mobilenet_v2"))


def test_every_rule_has_a_rationale() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    for rule in RULES:
        assert len(rule.rationale) > 60, rule.name
    assert RULES[-1].when is not None and names[-1] == "fallback"


def test_resnet50_by_layer_type(resnet50) -> None:  # type: ignore[no-untyped-def]
    decisions = {d.layer: d for d in rule_decisions(resnet50, 0.8)}
    assert len(decisions) == len(decision_layers(resnet50)) == 54
    assert decisions["conv1"].spec == "dense" and decisions["conv1"].rule == "first-layer"
    assert decisions["layer1.0.conv2"].spec == "pattern:4:0.8"  # 3x3
    assert decisions["layer1.0.conv2"].rule == "conv3x3"
    assert decisions["layer3.0.conv1"].spec == "bcr:16x32:0.8"  # 1x1 with room for blocks
    assert decisions["layer1.0.conv1"].rule == "pointwise"
    assert decisions["fc"].spec == "unstructured:0.75"  # last FC, rate capped
    for layer in decision_layers(resnet50):
        assert is_legal(decisions[layer.name].spec, layer)


def test_mobilenet_v2_keeps_depthwise_and_small_layers_dense(mobilenet_v2) -> None:  # type: ignore[no-untyped-def]
    decisions = rule_decisions(mobilenet_v2, 0.75)
    by_rule: dict[str, list[str]] = {}
    for d in decisions:
        by_rule.setdefault(d.rule, []).append(d.spec)
    assert len(by_rule["depthwise"]) == 17 and set(by_rule["depthwise"]) == {"dense"}
    assert set(by_rule["small-gemm"]) == {"dense"}  # the 3-channel stem, 16-32-channel 1x1s
    layers = {wl.name: wl for wl in decision_layers(mobilenet_v2)}
    for d in decisions:
        assert is_legal(d.spec, layers[d.layer])
        if d.rule == "pointwise":
            scheme = parse_spec(d.spec)
            gemm = layers[d.layer].gemms[0]
            assert scheme.block is not None
            # blocks fit the matrix twice at least in each direction
            assert 2 * scheme.block[0] <= gemm.M and 2 * scheme.block[1] <= gemm.K


def test_low_rate_3x3_uses_bcr_and_zero_rate_is_dense(resnet50) -> None:  # type: ignore[no-untyped-def]
    low = rule_based_mapping(resnet50, 0.5)
    assert low["layer1.0.conv2"].startswith("bcr:")  # 0.5 < 5/9, what 4-of-9 removes
    assert parse_spec(low["layer1.0.conv2"]).target_sparsity == 0.5
    assert set(rule_based_mapping(resnet50, 0.0).values()) == {"dense"}
    assert rule_based_mapping(resnet50, 5 / 9)["layer1.0.conv2"] == "pattern:4"


def test_rnn_and_transformer_layers() -> None:
    gru = rule_decisions(fuse(build_zoo("gru_timit")), 0.9)
    assert gru and all(d.rule == "fc-like" and d.spec.startswith("bcr:") for d in gru)
    bert = rule_decisions(fuse(build_zoo("bert_base", seq_len=32)), 0.5)
    assert any(d.rule == "fc-like" for d in bert)


def test_illegal_choice_falls_through_to_the_next_rule(resnet50) -> None:  # type: ignore[no-untyped-def]
    from grimsim.search.rules import Rule

    bad = Rule("bad", lambda f: True, lambda f, r: parse_spec("pattern:4:0.8"), "x" * 61)
    decisions = {d.layer: d for d in rule_decisions(resnet50, 0.8, (bad, *RULES))}
    assert decisions["layer1.0.conv2"].rule == "bad"  # 3x3: pattern is legal
    assert decisions["layer1.0.conv1"].rule == "pointwise"  # 1x1: pattern is not


@pytest.mark.parametrize("rate", [-0.1, 1.0, "x"])
def test_bad_rate(resnet50, rate: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SearchError, match="rate"):
        rule_based_mapping(resnet50, rate)  # type: ignore[arg-type]
