"""model.explore: an Explorer shown before the capture runs and filled in
layer by layer, with bounded traffic and everything in synced state at the end."""

from __future__ import annotations

import numpy as np
import pytest
from ipywidgets.embed import embed_data

import tealeaves_widgets as tw
from tealeaves_widgets.regions import ResolvedRegions
from tealeaves_widgets.widgets import Explorer, live
from tealeaves_widgets.widgets.synthetic import synthetic_run
from tealeaves_widgets.widgets.wire import decode_array, run_payload
from tests.tiny_models import make_tiny_model

REGIONS = {
    "user_message": {"regions": [{"name": "ask", "start_marker": "Where"}]},
    "query_positions": ["final", {"after_text": "Paris"}],
    "tracked_tokens": [" Paris"],
}
CASE = tw.Case(system="You are terse.", user="I live in Paris. Where do I live?")


class Sent(list):
    """What the views sent: (content, buffers) per message."""

    def __call__(self, view, content, buffers=None):
        self.append((content, [bytes(b) for b in buffers or []]))


@pytest.fixture
def sent(monkeypatch):
    record = Sent()
    monkeypatch.setattr(live.LiveExplorer, "send", lambda self, c, b=None: record(self, c, b))
    return record


def decode(content, buffers, name):
    spec = content[name]
    return decode_array({**spec, "data": buffers[spec["buffer"]]}).astype(np.float32)


def test_explore_streams_every_layer_then_holds_the_complete_run(smol_tokenizer, sent):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    view = model.explore(CASE, REGIONS, layer=0)
    run = view.run
    assert isinstance(view, Explorer) and view.layer == 0
    reference = model.capture(CASE, REGIONS)
    np.testing.assert_allclose(run.attention, reference.attention, atol=1e-6)
    # the final state is synced: the complete payload, per-head rows included
    assert "pending" not in view.payload
    assert all(rows is not None for rows in view.payload["heads"])
    np.testing.assert_array_equal(
        decode_array(view.payload["attention"]), decode_array(run_payload(run)["attention"])
    )
    # the messages carried every layer once, in order, at most one per layer
    n_layers = run.n_layers
    assert 1 <= len(sent) <= n_layers
    layers = [layer for content, _ in sent for layer in content["layers"]]
    assert layers == list(range(n_layers))
    assert [c["done"] for c, _ in sent][-1] == n_layers == sent[0][0]["total"]
    for content, buffers in sent:
        at = content["layers"]
        attention = decode(content, buffers, "attention")
        np.testing.assert_allclose(attention, run.attention[at], atol=2e-3)
        curves = decode(content, buffers, "curves")  # (n, query, region) masses
        ask = list(run.regions).index("ask")
        expected = run.attention[at][:, :, run.regions["ask"].token_indices].sum(-1)
        np.testing.assert_allclose(curves[:, :, ask], expected, atol=1e-5)
        assert decode(content, buffers, "curves_heads").shape == (
            len(at),
            run.n_heads,
            run.n_queries,
            len(run.regions),
        )


def feed_layers(feed, run, layers):
    for layer in layers:
        feed(layer, run.attention_heads[layer])


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=90, n_layers=12, n_heads=3, n_queries=2, seed=9)


def _pending(run):
    """The pending run of `run`'s prompt (a Run has the prompt's fields): same
    tokens, regions and queries, zeros elsewhere."""
    resolved = ResolvedRegions(regions=run.regions, queries=run.queries, tracked_tokens=())
    return live.pending_run(run, resolved, run.model_info)


@pytest.mark.parametrize(("interval", "expected"), [(0.0, 12), (3600.0, 2)])
def test_messages_are_batched_to_at_most_one_per_interval(run, sent, interval, expected):
    feed = live.LiveFeed.start(_pending(run), min_interval=interval)
    feed_layers(feed, run, range(run.n_layers))
    assert feed.messages == len(sent) == expected
    # with a long interval: the first layer at once, the other eleven together at the end
    assert [c["layers"][0] for c, _ in sent][:2] == [0, 1]


def test_the_pending_payload_shows_progress_and_saves_no_head_rows(run):
    view = live.LiveFeed.start(_pending(run)).view
    assert view.payload["pending"] == {"done": 0, "total": run.n_layers}
    assert view.payload["heads"] == [None] * run.n_queries

    def paths(widget):
        data = embed_data([widget], drop_defaults=False)["manager_state"]["state"]
        return {tuple(b["path"]) for b in data[widget.model_id]["buffers"]}

    before = paths(view)
    view.complete(run)
    # nbclient keeps saved buffers by path: the pending ones must all exist later
    assert before <= paths(view)
    assert "pending" not in view.payload


def test_a_stopped_capture_keeps_the_layers_that_arrived(run, sent):
    feed = live.LiveFeed.start(_pending(run), min_interval=3600.0)
    feed_layers(feed, run, range(3))
    feed.stop(KeyboardInterrupt())
    payload = feed.view.payload
    assert payload["pending"] == {"done": 3, "total": 12, "stopped": "KeyboardInterrupt"}
    attention = decode_array(payload["attention"]).astype(np.float32)
    np.testing.assert_allclose(attention[:3], run.attention[:3], atol=2e-3)
    assert not attention[3:].any()


def test_explore_shows_the_view_once_in_the_cell_that_made_it(run, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append((a, k)))

    class Shell:
        execution_count = 7

    monkeypatch.setattr(live, "_shell", lambda: Shell)
    view = live.LiveFeed.start(_pending(run)).view
    assert len(shown) == 1 and view._shown_in == 7
    view._ipython_display_()  # the cell's last expression: not shown again
    assert len(shown) == 1
    Shell.execution_count = 8
    view._ipython_display_()  # another cell: shown
    assert len(shown) == 2 and shown[1][1]["raw"] is True
