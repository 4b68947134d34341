"""model.explore: an Explorer shown before the capture runs and filled in
layer by layer, with bounded traffic and everything in synced state at the end."""

from __future__ import annotations

import numpy as np
import pytest
from ipywidgets.embed import embed_data

from tealeaves_widgets.prompt.resolve import ResolvedRegions
from tealeaves_widgets.widgets import live
from tealeaves_widgets.widgets.wire import decode_array
from tests.helpers.synthetic import synthetic_run


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
    assert view.payload["pending"] == {"done": 0, "total": run.n_layers, "follow": True}
    assert view.payload["heads"] == [None] * run.n_queries

    def paths(widget):
        data = embed_data([widget], drop_defaults=False)["manager_state"]["state"]
        return {tuple(b["path"]) for b in data[widget.model_id]["buffers"]}

    before = paths(view)
    view.complete(run)
    # nbclient keeps saved buffers by path: the pending ones must all exist later
    assert before <= paths(view)
    assert "pending" not in view.payload


def test_the_view_follows_the_newest_layer_unless_a_layer_was_asked_for(run):
    following = live.LiveFeed.start(_pending(run)).view
    assert following.layer == 0 and following.payload["pending"]["follow"] is True
    staying = live.LiveFeed.start(_pending(run), layer=5).view
    assert staying.layer == 5 and staying.payload["pending"]["follow"] is False


def test_a_stopped_capture_keeps_the_layers_that_arrived(run, sent):
    feed = live.LiveFeed.start(_pending(run), min_interval=3600.0)
    feed_layers(feed, run, range(3))
    feed.stop(KeyboardInterrupt())
    payload = feed.view.payload
    assert payload["pending"] == {
        "done": 3,
        "total": 12,
        "follow": True,
        "stopped": "KeyboardInterrupt",
    }
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
