"""TokenHeatmap on the Python side: synced selection, validation, state and
custom messages. The browser side is in tests/browser/. No torch."""

from __future__ import annotations

import re

import numpy as np
import pytest
from ipywidgets.embed import embed_data

from tealeaves_widgets.errors import TealeavesError
from tealeaves_widgets.widgets import TokenHeatmap, _bundle
from tealeaves_widgets.widgets.wire import SCHEMA_VERSION, PayloadOptions, decode_head_rows
from tests.helpers.synthetic import synthetic_run


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=120, n_layers=4, n_heads=3, n_queries=3, seed=2)


def test_defaults_open_on_final_query_middle_layer_head_average(run):
    widget = TokenHeatmap(run)
    selection = (widget.query, widget.layer, widget.head, widget.scale)
    assert selection == ("final", 2, None, "log-layer")
    assert widget.mask_sink and not widget.mask_template
    assert widget.payload["schema_version"] == SCHEMA_VERSION
    assert widget.run is run


def test_query_by_index_or_name(run):
    assert TokenHeatmap(run, query=0).query == "q0"
    assert TokenHeatmap(run, query="q1").query == "q1"
    with pytest.raises(TealeavesError, match="Unknown query"):
        TokenHeatmap(run, query="nope")


def test_selection_is_validated_with_the_valid_range(run):
    widget = TokenHeatmap(run)
    widget.layer = 3
    widget.head = 2
    widget.query = "q0"
    with pytest.raises(TealeavesError, match=r"layers 0\.\.3"):
        widget.layer = 4
    with pytest.raises(TealeavesError, match=r"heads 0\.\.2, or None"):
        widget.head = 3
    with pytest.raises(TealeavesError, match=r"\['q0', 'q1', 'final'\]"):
        widget.query = "q9"
    with pytest.raises(Exception, match="scale"):
        widget.scale = "cubic"
    assert (widget.layer, widget.head, widget.query) == (3, 2, "q0")


def test_only_a_run_is_accepted():
    with pytest.raises(TealeavesError, match="expects a tealeaves_widgets.Run"):
        TokenHeatmap({"attention": []})


def test_state_sends_arrays_as_buffers_and_the_bundle_as_esm(run):
    widget = TokenHeatmap(run)
    state = widget._get_embed_state(drop_defaults=False)["state"]
    data = embed_data([widget], drop_defaults=False)
    model = data["manager_state"]["state"][widget.model_id]
    paths = [tuple(b["path"]) for b in model["buffers"]]
    assert ("payload", "attention", "data") in paths
    assert ("payload", "heads", 2, "rows", "data") in paths
    assert all(b["encoding"] == "base64" for b in model["buffers"])
    assert re.search(r"export\s*\{[^}]* as default", state["_esm"])
    assert state["layer"] == 2 and state["query"] == "final"


def test_selection_traits_do_not_echo_front_end_updates():
    for name in ("layer", "query", "head", "scale", "mask_template", "mask_sink"):
        assert TokenHeatmap.class_traits()[name].metadata.get("echo_update") is False


def test_head_rows_request_is_answered_with_float16_rows(run):
    widget = TokenHeatmap(run)
    sent = []
    widget.send = lambda content, buffers=None: sent.append((content, buffers))
    widget._on_message(widget, {"v": 1, "kind": "head_rows", "id": 7, "query": 1}, [])
    assert len(sent) == 1
    content, buffers = sent[0]
    assert (content["v"], content["kind"], content["id"]) == (1, "head_rows", 7)
    assert content["query"] == 1 and content["encoding"] == "float16"
    rows = decode_head_rows(
        {"encoding": content["encoding"], "rows": {**content["rows"], "data": buffers[0]}},
        run.n_tokens,
    )
    np.testing.assert_allclose(rows, run.attention_heads[:, :, 1, :], atol=1e-3)


def test_a_failed_request_is_answered_with_the_kernels_error(run):
    widget = TokenHeatmap(run)
    sent = []
    widget.send = lambda content, buffers=None: sent.append((content, buffers))
    widget._on_message(widget, {"v": 1, "kind": "something else", "id": 8}, [])
    widget._on_message(widget, {"v": 1, "kind": "head_rows", "id": 9, "query": 99}, [])
    widget._on_message(widget, {"kind": "head_rows", "query": 0}, [])  # no version
    errors = [content for content, _ in sent]
    assert [(e["kind"], e["id"], e["request"]) for e in errors] == [
        ("error", 8, "something else"),
        ("error", 9, "head_rows"),
        ("error", -1, "head_rows"),
    ]
    assert "answers no request of kind 'something else'" in errors[0]["message"]
    assert "Query row 99 is out of range for 3 queries" in errors[1]["message"]
    assert "message version None" in errors[2]["message"]
    assert all(buffers == [] for _, buffers in sent)


def test_a_tight_budget_leaves_head_rows_for_the_kernel(run):
    roomy = TokenHeatmap(run).payload["budget"]["bytes"]
    widget = TokenHeatmap(run, options=PayloadOptions(max_bytes=roomy - 1000))
    assert widget.payload["heads"][-1] is not None  # "final" first
    assert widget.payload["heads"][0] is None


def test_a_missing_bundle_shows_a_message_not_a_blank_cell(monkeypatch, tmp_path):
    monkeypatch.setattr(_bundle, "STATIC", tmp_path)
    source = _bundle.esm("heatmap")
    assert isinstance(source, str)
    assert "is missing" in source and "npm ci && npm run build" in source
    assert "textContent" in source and "innerHTML" not in source


def test_the_built_bundle_is_used_when_present():
    path = _bundle.bundle_path("heatmap")
    assert path.is_file(), f"{path} is missing: {_bundle.BUILD_HINT}"
    assert "innerHTML" not in path.read_text(encoding="utf-8")


def front_end(widget, data):
    """Deliver a message as the browser's comm would."""
    widget._handle_msg({"content": {"data": data}, "buffers": []})


def test_front_end_updates_reach_python_without_an_echo(run):
    widget = TokenHeatmap(run)
    sent = []
    widget.comm.send = lambda data=None, metadata=None, buffers=None: sent.append(data)
    front_end(
        widget,
        {"method": "update", "state": {"layer": 3, "head": 1, "query": "q0"}, "buffer_paths": []},
    )
    assert (widget.layer, widget.head, widget.query) == (3, 1, "q0")
    assert sent == []  # echo_update=False: nothing goes back


def test_an_invalid_front_end_update_is_rolled_back(run):
    widget = TokenHeatmap(run, layer=1)
    state = {"layer": 99, "head": 0}
    try:
        front_end(widget, {"method": "update", "state": state, "buffer_paths": []})
    except TealeavesError:
        pass  # ipykernel logs it; the state must stay valid either way
    assert (widget.layer, widget.head) == (1, None)


def test_a_front_end_request_for_head_rows_gets_one_buffer(run):
    widget = TokenHeatmap(run)
    sent = []
    widget.comm.send = lambda data=None, metadata=None, buffers=None: sent.append((data, buffers))
    request = {"v": 1, "kind": "head_rows", "id": 1, "query": 0}
    front_end(widget, {"method": "custom", "content": request})
    ((data, buffers),) = sent
    assert data["method"] == "custom" and data["content"]["kind"] == "head_rows"
    width = run.queries["q0"] + 1  # a causal row ends at its query
    assert len(buffers) == 1 and len(buffers[0]) == 2 * run.n_layers * run.n_heads * width
