"""AblationView on the Python side, without a model: an Ablation built from a
synthetic run and random logits (tests/helpers/synthetic.py). The payload's
numbers are the Ablation's table and changes, as binary arrays; the runs
travel within their budget and a run over it is sent when its row is
selected; per-head rows are answered from the condition's run; selection,
sort and the number of change cells are checked; `display(ablation)` and
`export_html(ablation)` show the view."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core import seam
from tealeaves_widgets.widgets import AblationOptions, AblationView, Explorer, ablation_payload
from tealeaves_widgets.widgets.ablation import BASELINE, SORT_KEYS, touched_positions
from tealeaves_widgets.widgets.export import page_html
from tealeaves_widgets.widgets.schema import AblationPayload, RunPayload, check_typeddict
from tealeaves_widgets.widgets.wire import (
    PayloadOptions,
    decode_array,
    decode_head_rows,
    payload_bytes,
    run_payload,
)
from tests.helpers.isolated import loaded_after_import
from tests.helpers.synthetic import MARKUP_TOKEN, synthetic_ablation


@pytest.fixture(scope="module")
def ablation():
    return synthetic_ablation()


def values(array) -> np.ndarray:
    return decode_array(array)


def test_the_payload_is_the_ablations_table_as_binary_arrays(ablation):
    payload = ablation_payload(ablation)
    assert check_typeddict(payload, AblationPayload) == []
    table = ablation.table()
    for key in ("predicted_prob", "delta_base_top", "delta_logprob", "delta_centered", "kl"):
        assert payload[key]["dtype"] == "float32"
        assert isinstance(payload[key]["data"], memoryview)
        np.testing.assert_allclose(values(payload[key]), table[key], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(values(payload["predicted"]), table["predicted_id"])
    assert payload["base_top"] == int(np.argmax(ablation.base_logits))
    logits = ablation.base_logits.astype(np.float64)
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert payload["base_prob"] == pytest.approx(expected.max())
    assert [c["name"] for c in payload["conditions"]] == ablation.names
    assert payload["conditions"][4]["description"] == ablation.conditions[4].describe()
    assert (payload["at"], payload["position"], payload["k"]) == ("final", 63, 20)


def test_rose_and_fell_are_the_changes_of_every_condition(ablation):
    payload = ablation_payload(ablation)
    rose, fell = values(payload["rose"]), values(payload["fell"])
    rose_delta, fell_delta = values(payload["rose_delta"]), values(payload["fell_delta"])
    assert rose.shape == fell.shape == (5, 20)
    for c, name in enumerate(ablation.names):
        changes = ablation.changes(name)
        np.testing.assert_array_equal(rose[c], changes["rose_id"])
        np.testing.assert_array_equal(fell[c], changes["fell_id"])
        np.testing.assert_allclose(rose_delta[c], changes["rose_delta"], rtol=1e-6)
        np.testing.assert_allclose(fell_delta[c], changes["fell_delta"], rtol=1e-6)
        for token_id, text in zip(changes["rose_id"], changes["rose"], strict=True):
            assert payload["vocab"][str(token_id)] == text
    assert payload["vocab"][str(rose[0, 0])] == MARKUP_TOKEN  # the front end shows it as text


def test_each_condition_names_the_tokens_it_touches(ablation):
    base = ablation.base
    touched = [touched_positions(ablation, c).tolist() for c in ablation.conditions]
    t = ablation.position
    assert touched[0] == [t]  # a head at t
    assert touched[1] == [t - 1]  # the values at t-1
    assert touched[2] == base.regions["context"].token_indices.tolist()
    assert touched[3] == base.regions["question"].token_indices.tolist()
    assert touched[4] == list(range(base.n_tokens))  # a head at every position, and a region
    payload = ablation_payload(ablation)
    assert [c["knockout"] for c in payload["conditions"]] == [
        None,
        None,
        "context",
        "question",
        None,  # with a head ablation besides: not a knockout row
    ]


def test_the_view_carries_the_base_run_and_every_run_within_the_budget(ablation):
    view = AblationView(ablation)
    assert check_typeddict(view.payload, RunPayload) == []
    assert view.payload["tokens"] == list(ablation.base.tokens)
    assert len(view.runs) == 5 and all(r is not None for r in view.runs)
    assert view.ablation["runs"] == [True] * 5
    attention = decode_array(view.runs[3]["attention"]).astype(np.float32)
    np.testing.assert_allclose(
        attention, ablation.runs["no question"].attention, atol=1e-3
    )  # float16 on the wire
    assert view.ablation["budget"]["bytes"] == sum(payload_bytes(r) for r in view.runs)
    # the view opens on the query the ablation reads, its rows sorted as given
    assert (view.query, view.sort, view.descending, view.changes) == ("final", "", False, 3)
    assert view.normalize == "share" and view.selected is None


def test_runs_over_the_budget_are_left_out_and_sent_when_selected(ablation):
    one = payload_bytes(run_payload(ablation.runs["head L1H0"], PayloadOptions()))
    view = AblationView(ablation, options=AblationOptions(max_bytes=int(2.5 * one)))
    assert [r is not None for r in view.runs] == [True, True, False, False, False]
    assert view.ablation["runs"] == [True, True, False, False, False]
    view.selected = "head L1H0"  # in the page already
    assert view.detail is None
    view.selected = "no question"
    assert view.detail is not None and view.detail["condition"] == 3
    assert check_typeddict(view.detail["payload"], RunPayload) == []
    sent = view.detail
    view.selected = None
    view.selected = "no question"
    assert view.detail is sent  # not sent twice
    assert view.selected_run is ablation.runs["no question"]
    view.selected = BASELINE
    assert view.selected_run is ablation.base


def test_per_head_rows_are_answered_from_the_conditions_run(ablation):
    view = AblationView(ablation)
    sent = []
    view.send = lambda content, buffers=None: sent.append((content, buffers))
    view._on_message(view, {"v": 1, "kind": "head_rows", "id": 3, "query": 0, "run": 3}, [])
    view._on_message(view, {"v": 1, "kind": "head_rows", "id": 4, "query": 0}, [])
    view._on_message(view, {"v": 1, "kind": "head_rows", "id": 5, "query": 0, "run": 9}, [])
    (condition, buffers), (base, base_buffers), (error, _) = sent
    assert (condition["id"], condition["run"]) == (3, 3) and "run" not in base
    n = ablation.base.n_tokens

    def rows(content, data):
        return decode_head_rows(
            {"encoding": content["encoding"], "rows": {**content["rows"], "data": data[0]}}, n
        )

    knocked = ablation.runs["no question"].attention_heads[:, :, 0, :]
    np.testing.assert_allclose(rows(condition, buffers), knocked, atol=1e-3)
    np.testing.assert_allclose(
        rows(base, base_buffers), ablation.base.attention_heads[:, :, 0, :], atol=1e-3
    )
    assert error["kind"] == "error" and "run must index the conditions 0..4" in error["message"]


def test_selection_sort_and_changes_are_checked(ablation):
    view = AblationView(ablation, changes=3, layer=1)
    assert view.changes == 3 and view.layer == 1
    with pytest.raises(tw.SelectionError, match=r"Unknown condition 'nope'; the conditions are"):
        view.selected = "nope"
    assert view.selected is None
    with pytest.raises(tw.SelectionError, match=r"changes=21 is out of range; .* 1\.\.20"):
        view.changes = 21
    view.sort = "kl"
    with pytest.raises(Exception, match="sort"):
        view.sort = "size"
    assert view.sort == "kl" and "kl" in SORT_KEYS
    for name in ("selected", "sort", "descending", "changes"):
        assert AblationView.class_traits()[name].metadata.get("echo_update") is False
    with pytest.raises(tw.ArgumentTypeError, match=r"unknown keyword argument\(s\) \['runs'\]"):
        AblationView(ablation, runs=[])
    with pytest.raises(tw.ArgumentTypeError, match="AblationView expects a tw.Ablation"):
        AblationView(ablation.base)
    with pytest.raises(tw.ArgumentError, match="shows one ablation"):
        view.set_run(ablation.base)


def test_a_condition_may_not_take_the_baselines_name(ablation):
    import dataclasses

    from tealeaves_widgets.core.conditions import Condition

    renamed = dataclasses.replace(
        ablation,
        conditions=(Condition(BASELINE, ablation.conditions[0].interventions),),
        logits=ablation.logits[:1],
        runs={BASELINE: ablation.base},
    )
    with pytest.raises(tw.ArgumentError, match=r"A condition is named '\(baseline\)'"):
        AblationView(renamed)


def test_the_explorer_of_a_condition_follows_the_views_selection(ablation):
    view = AblationView(ablation, layer=2, query="q0")
    explorer = view.explorer("no context")
    assert isinstance(explorer, Explorer)
    assert explorer.run is ablation.runs["no context"]
    assert (explorer.layer, explorer.query) == (2, "q0")
    assert view.explorer().run is ablation.base  # nothing selected: the baseline
    with pytest.raises(tw.SelectionError, match="Unknown condition 'x'"):
        view.explorer("x")


def test_display_and_export_show_the_ablation_view(ablation):
    assert seam.implementation("view", tw.Ablation) is AblationView
    assert tw.AblationView is AblationView
    page = page_html(ablation)
    assert '"kind":"ablation"' in page and '"name":"no question"' in page
    assert "AblationViewUI" in page or "tw-ablation-view" in page  # its bundle travels in the state


def test_importing_the_ablation_view_loads_no_torch():
    assert loaded_after_import(["tealeaves_widgets.widgets.ablation"], ["torch"]) == []
