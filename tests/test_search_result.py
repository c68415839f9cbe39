"""solve() on a zoo network's table, SearchResult JSON round trips, mapping files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import MappingError, SearchError
from grimsim.network import Network, fuse
from grimsim.network.zoo import build_zoo
from grimsim.pruning.scheme import parse_spec
from grimsim.search import (
    MIN_LATENCY,
    MIN_LOSS,
    PARETO,
    CandidateTable,
    InfeasibleTargetError,
    SearchResult,
    candidate_specs,
    decision_layers,
    read_mapping_file,
    solve,
    within,
)


@pytest.fixture(scope="module")
def resnet18() -> Network:
    return fuse(build_zoo("resnet18"))


def toy_table(network: Network, rates: tuple[float, ...] = (0.5, 0.75, 0.9)) -> CandidateTable:
    """A made-up but monotone table: latency falls and loss grows with the rate; structured
    schemes are faster per kept weight and lose more."""
    rows = []
    layers = decision_layers(network)
    for pos, layer in enumerate(layers):
        g = layer.gemms[0]
        dense_s = 2e-10 * g.M * g.K * g.N + 2e-5
        weight = 1.0 + (pos in (0, len(layers) - 1))
        for spec in candidate_specs(layer, rates=rates, bcr_blocks=((4, 16),),
                                    punched_blocks=(), nm=((2, 4),)):
            s = parse_spec(spec)
            kept = 1 - s.target_sparsity
            structured = s.kind not in ("dense", "unstructured")
            speed = 1.0 if s.kind == "dense" else (0.8 if structured else 0.4)
            lat = dense_s * min(1.0, kept / speed) + 1e-6 * (hash(spec) % 7)
            loss = weight * s.target_sparsity ** 2 * (1.6 if structured else 1.0) / len(layers)
            rows.append((layer.name, spec, lat, loss, 4.0 * g.M * g.K * kept))
    return CandidateTable.from_rows(rows, fixed_latency_s=1e-3, fixed_bytes=1000.0)


@pytest.fixture(scope="module")
def table(resnet18: Network) -> CandidateTable:
    return toy_table(resnet18)


def test_min_loss_result(table: CandidateTable) -> None:
    dense_lat = table.totals(table.dense_choice())[0]
    result = solve(table, MIN_LOSS, 0.5 * dense_lat)
    assert result.objective == MIN_LOSS and result.solver == "exact"
    assert within(result.latency_s, 0.5 * dense_lat) and result.loss > 0
    assert result.dense_latency_s == pytest.approx(dense_lat)
    assert result.latency_s == pytest.approx(sum(c.latency_s for c in result.layers)
                                             + table.fixed_latency_s)
    assert result.loss == pytest.approx(sum(c.loss for c in result.layers))
    assert result.model_bytes < result.dense_model_bytes
    assert [c.name for c in result.layers] == list(table.layers)
    assert result.search_s >= 0 and result.speedup > 1.9
    assert len(result.pareto) >= 2  # supported points of the front
    lat = [p.latency_s for p in result.pareto]
    assert lat == sorted(set(lat))


def test_min_latency_and_pareto_results(table: CandidateTable) -> None:
    fast = solve(table, MIN_LATENCY, 0.05)
    assert fast.loss <= 0.05 * (1 + 1e-9)
    front = solve(table, PARETO, points=24, max_states=50)
    assert front.target is None and len(front.pareto) >= 24 and not front.pareto_complete
    lat = [p.latency_s for p in front.pareto]
    loss = [p.loss for p in front.pareto]
    assert lat == sorted(lat) and loss == sorted(loss, reverse=True)
    # the chosen mapping is one of the front's points (its knee)
    assert (front.latency_s, front.loss) in {(p.latency_s, p.loss) for p in front.pareto}
    # a front point's mapping gives back its totals
    point = front.pareto[3]
    choice = table.choice_of(front.point_mapping(point))
    assert table.totals(choice)[:2] == (point.latency_s, point.loss)


def test_complete_front_is_thinned_for_the_result(table: CandidateTable) -> None:
    result = solve(table, PARETO, max_states=10**6, max_front_points=10)
    assert len(result.pareto) == 10 and not result.pareto_complete
    assert any("thinned" in n for n in result.notes)


def test_rules_solver_is_a_baseline(resnet18: Network, table: CandidateTable) -> None:
    dense_lat = table.totals(table.dense_choice())[0]
    target = 0.6 * dense_lat
    rules = solve(table, MIN_LOSS, target, solver="rules", network=resnet18)
    exact = solve(table, MIN_LOSS, target)
    assert within(rules.latency_s, target) and exact.loss <= rules.loss
    with pytest.raises(InfeasibleTargetError, match="rule-based mapper: latency target"):
        solve(table, MIN_LOSS, 0.01 * dense_lat, solver="rules", network=resnet18)
    with pytest.raises(SearchError, match="needs the network"):
        solve(table, MIN_LOSS, target, solver="rules")


def test_evolutionary_solver_through_solve(resnet18: Network, table: CandidateTable) -> None:
    target = 0.6 * table.totals(table.dense_choice())[0]
    evo = solve(table, MIN_LOSS, target, solver="evolutionary", network=resnet18,
                population=32, generations=20)
    exact = solve(table, MIN_LOSS, target)
    assert within(evo.latency_s, target) and evo.loss >= exact.loss - 1e-12
    assert evo.solver == "evolutionary"


def test_bad_requests(table: CandidateTable) -> None:
    with pytest.raises(SearchError, match="unknown objective 'fastest'"):
        solve(table, "fastest", 1.0)
    with pytest.raises(SearchError, match="needs a latency target"):
        solve(table, MIN_LOSS)
    with pytest.raises(SearchError, match="finite number >= 0"):
        solve(table, MIN_LATENCY, math.nan)
    with pytest.raises(SearchError, match="unknown solver"):
        solve(table, PARETO, solver="annealing")


def test_search_result_json_round_trip(table: CandidateTable) -> None:
    target = 0.6 * table.totals(table.dense_choice())[0]
    for result in (solve(table, MIN_LOSS, target), solve(table, PARETO, points=20)):
        text = result.to_json()
        back = SearchResult.from_json(text)
        assert back == result
        assert back.to_json() == text
        json.loads(text)  # plain JSON (no NaN)


finite = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(finite, finite, finite), min_size=2, max_size=6), finite,
       st.sampled_from([MIN_LOSS, MIN_LATENCY, PARETO]))
def test_search_result_round_trip_any_floats(values: list, search_s: float,
                                             objective: str) -> None:
    from grimsim.search import LayerChoice, ParetoPoint

    layers = tuple(LayerChoice(f"l{i}", "bcr:4x16:0.75", a, b, c)
                   for i, (a, b, c) in enumerate(values))
    pareto = tuple(ParetoPoint(a, b, c, ("dense",) * len(values)) for a, b, c in values)
    result = SearchResult(objective, None if objective == PARETO else values[0][0], "exact",
                          layers, values[0][0], values[0][1], values[0][2], values[1][0],
                          values[1][1], 0.1, 3.0, pareto, True, search_s)
    assert SearchResult.from_json(result.to_json()) == result


def test_malformed_result_json() -> None:
    with pytest.raises(SearchError, match="malformed"):
        SearchResult.from_json("[1,")
    with pytest.raises(SearchError, match="not a search result"):
        SearchResult.from_json('{"format": "x"}')
    with pytest.raises(SearchError, match="malformed search result: KeyError"):
        SearchResult.from_json('{"format": "grimsim.search_result/1"}')


def test_summary_has_the_cli_fields(table: CandidateTable) -> None:
    target = 0.6 * table.totals(table.dense_choice())[0]
    summary = solve(table, MIN_LOSS, target).summary({"device": "sd855@1"})
    for key in ("latency_ms", "loss", "model_bytes", "dense_latency_ms", "dense_model_bytes",
                "search_s", "layers", "pareto", "_meta"):
        assert key in summary
    assert set(summary["layers"][0]) == {"name", "scheme", "latency_ms", "loss"}
    assert set(summary["pareto"][0]) == {"latency_ms", "loss"}
    assert summary["_meta"]["device"] == "sd855@1" and "grimsim" in summary["_meta"]


# --------------------------------------------------------------------------- mapping files


def test_mapping_file_round_trip(tmp_path: Path, resnet18: Network,
                                 table: CandidateTable) -> None:
    result = solve(table, MIN_LOSS, 0.6 * table.totals(table.dense_choice())[0])
    doc = result.to_mapping_file("resnet18", {"cost_model": "analytical", "device": "sd855@1"})
    assert set(doc) == {"_meta", "network", "layers"}
    assert set(doc["_meta"]) >= {"grimsim", "cost_model", "device", "created"}
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(doc))
    mapping = read_mapping_file(path, resnet18)
    assert mapping.as_dict() == result.mapping and mapping.network == "resnet18"
    assert mapping.spec("not-named") == "dense"
    assert read_mapping_file(doc).as_dict() == result.mapping  # a parsed dict works too


@pytest.mark.parametrize(("content", "message"), [
    ("{", r"is not valid JSON: Expecting property name .* at line 1, column 2"),
    ("[1, 2]", "the top level must be a JSON object"),
    ('{"network": "resnet18"}', "no 'layers' object"),
    ('{"layers": ["conv1"]}', "'layers' must be an object"),
    ('{"network": 3, "layers": {}}', "'network' must be a string"),
    ('{"layers": {"conv1": 0.5}}', r"layer 'conv1': the scheme must be a spec string"),
    ('{"layers": {"conv1": "bcr:16:0.5"}}', r"layer 'conv1': bad pruning spec 'bcr:16:0.5'"),
    ('{"layers": {"layer1.0.conv9": "dense"}}',
     r"has no layer 'layer1.0.conv9' \(did you mean 'layer1.0.conv2'\?\)"),
    ('{"layers": {"layer2.0.downsample.0": "pattern:4"}}',
     "pattern pruning needs a 3x3 convolution"),
    ('{"layers": {"maxpool": "unstructured:0.5"}}', "no prunable weights"),
])
def test_bad_mapping_files(tmp_path: Path, resnet18: Network, content: str,
                           message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(MappingError, match=message) as info:
        read_mapping_file(path, resnet18)
    assert "bad.json" in str(info.value)


def test_missing_or_unreadable_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="not found"):
        read_mapping_file(tmp_path / "nope.json")
    with pytest.raises(MappingError, match="is a directory"):
        read_mapping_file(tmp_path)
    binary = tmp_path / "weights.npz"
    binary.write_bytes(np.arange(300, dtype=np.int64).tobytes() + b"\xff\xfe")
    with pytest.raises(MappingError, match=r"not text|not valid JSON"):
        read_mapping_file(binary)
