"""CandidateTable: construction, validation messages, derived views, JSON round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import SearchError
from grimsim.search import CandidateTable

SPECS = ("dense", "unstructured:0.5", "bcr:4x16:0.75", "filter:0.5", "nm:2:4", "column:0.75",
         "pattern:4", "block_punched:8x4:0.8")


def small_table(**overrides: object) -> CandidateTable:
    data: dict[str, object] = dict(
        layers=["conv1", "conv2"],
        specs=[["dense", "unstructured:0.5"], ["dense", "bcr:4x16:0.75", "filter:0.5"]],
        latency_s=[[2.0, 1.5], [3.0, 1.0, 0.5]],
        loss=[[0.0, 0.1], [0.0, 0.2, 0.4]],
        model_bytes=[[100, 60], [200, 80, 100]],
        fixed_latency_s=0.25, fixed_bytes=10)
    data.update(overrides)
    return CandidateTable.from_lists(**data)  # type: ignore[arg-type]


def test_totals_per_layer_and_assignment() -> None:
    t = small_table()
    assert len(t) == 2 and t.sizes.tolist() == [2, 3]
    assert t.totals([1, 2]) == (1.5 + 0.5 + 0.25, 0.1 + 0.4, 60 + 100 + 10)
    lat, loss, nbytes = t.totals(np.array([[0, 0], [1, 1]]))
    assert lat.tolist() == [5.25, 2.75] and loss.tolist() == [0.0, pytest.approx(0.3)]
    assert nbytes.tolist() == [310, 150]
    assert t.assignment([1, 2]) == {"conv1": "unstructured:0.5", "conv2": "filter:0.5"}
    assert t.per_layer([0, 1])[0].tolist() == [2.0, 1.0]
    assert not t.latency_s[0].flags.writeable


@pytest.mark.parametrize(("overrides", "message"), [
    ({"loss": [[0.0, math.nan], [0.0, 0.2, 0.4]]}, "loss = nan is NaN"),
    ({"latency_s": [[2.0, -1.0], [3.0, 1.0, 0.5]]}, "is negative"),
    ({"model_bytes": [[100, math.inf], [200, 80, 100]]}, "is infinite"),
    ({"latency_s": [[2.0, 1.5], [3.0, 1.0]]}, "ragged"),
    ({"loss": [[0.0, 0.1]]}, "2 layers but 1 entries of loss"),
    ({"specs": [["unstructured:0.5", "dense"], ["dense", "bcr:4x16:0.75", "filter:0.5"]]},
     "candidate 0 must be 'dense'"),
    ({"specs": [["dense", "unstructured:0.5"], ["dense", "bcr:4x16:0.75",
                                                "bcr:4x16:0.750"]]}, "appears twice"),
    ({"specs": [["dense", "sparse:0.5"], ["dense", "bcr:4x16:0.75", "filter:0.5"]]},
     "unknown scheme 'sparse'"),
    ({"layers": ["conv1", "conv1"]}, "appears twice in the candidate table"),
    ({"layers": [], "specs": [], "latency_s": [], "loss": [], "model_bytes": []}, "no layers"),
    ({"fixed_latency_s": -1.0}, "fixed_latency_s"),
    ({"loss": [[0.0, "x"], [0.0, 0.2, 0.4]]}, "must be numbers"),
])
def test_validation_names_layer_and_problem(overrides: dict, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        small_table(**overrides)


def test_validation_names_the_candidate() -> None:
    with pytest.raises(SearchError, match=r"layer 'conv2', candidate 'filter:0.5'"):
        small_table(loss=[[0.0, 0.1], [0.0, 0.2, -0.4]])


def test_from_rows_moves_dense_first_and_needs_it() -> None:
    rows = [("a", "unstructured:0.5", 1.0, 0.1, 5.0), ("b", "dense", 2.0, 0.0, 9.0),
            ("a", "dense", 2.0, 0.0, 10.0)]
    t = CandidateTable.from_rows(rows, fixed_latency_s=1.0)
    assert t.layers == ("a", "b")
    assert t.specs[0] == ("dense", "unstructured:0.5")
    assert t.latency_s[0].tolist() == [2.0, 1.0]
    with pytest.raises(SearchError, match="layer 'c' has no 'dense' candidate"):
        CandidateTable.from_rows([("c", "filter:0.5", 1.0, 0.0, 1.0)])


def test_choice_of_exact_and_nearest() -> None:
    t = small_table()
    assert t.choice_of({"conv2": "filter:0.50"}).tolist() == [0, 2]  # canonicalised
    with pytest.raises(SearchError, match="not one of its 3 candidates"):
        t.choice_of({"conv2": "bcr:4x16:0.8"})
    assert t.choice_of({"conv2": "bcr:4x16:0.8"}, nearest=True).tolist() == [0, 1]
    assert t.choice_of({"conv1": "unstructured:0.9"}, nearest=True).tolist() == [1, 0]
    with pytest.raises(SearchError, match="not in the candidate table: nope"):
        t.choice_of({"nope": "dense"})
    with pytest.raises(SearchError, match="out of range"):
        t.totals([0, 3])


def test_equality_compares_values() -> None:
    assert small_table() == small_table()
    assert small_table() != small_table(fixed_bytes=11)
    assert small_table() != small_table(loss=[[0.0, 0.1], [0.0, 0.2, 0.5]])


def test_from_json_reports_malformed_input() -> None:
    with pytest.raises(SearchError, match="malformed"):
        CandidateTable.from_json("{")
    with pytest.raises(SearchError, match="'layers' list"):
        CandidateTable.from_json('{"layers": 3}')
    with pytest.raises(SearchError, match="lacks loss"):
        CandidateTable.from_json('{"layers": [{"name": "a", "specs": ["dense"], '
                                 '"latency_s": [1], "model_bytes": [1]}]}')


finite = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def tables(draw: st.DrawFn) -> CandidateTable:
    count = draw(st.integers(1, 5))
    sizes = [draw(st.integers(1, len(SPECS))) for _ in range(count)]
    return CandidateTable.from_lists(
        [f"layer{i}" for i in range(count)], [SPECS[:n] for n in sizes],
        [draw(st.lists(finite, min_size=n, max_size=n)) for n in sizes],
        [draw(st.lists(finite, min_size=n, max_size=n)) for n in sizes],
        [draw(st.lists(finite, min_size=n, max_size=n)) for n in sizes],
        draw(finite), draw(finite))


@given(tables())
def test_json_round_trip_is_exact(table: CandidateTable) -> None:
    back = CandidateTable.from_json(table.to_json())
    assert back == table
    for a, b in zip(back.loss, table.loss, strict=True):
        assert a.tobytes() == b.tobytes()
