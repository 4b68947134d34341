"""model.explore's front end in headless Chromium: a pending explorer,
filled in by the very messages the Python feed sends (replayed into the page,
which has no kernel), and a capture that stopped part way."""

from __future__ import annotations

import base64

import pytest

from tealeaves_widgets.prompt.resolve import ResolvedRegions
from tealeaves_widgets.widgets import live
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.synthetic import synthetic_run

pytestmark = pytest.mark.slow

REPLAY = """(messages) => {
  const view = document.querySelector('.tw-heatmap').tealeavesView;
  for (const [content, buffers] of messages) {
    const views = buffers.map((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      return new DataView(bytes.buffer);
    });
    view.receiveLayers(content, views);
  }
}"""


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=150, n_layers=6, n_heads=3, n_queries=2, seed=11)


def start(run, monkeypatch, **options):
    sent = []

    def send(self, content, buffers=None):
        sent.append((content, [base64.b64encode(bytes(b)).decode() for b in buffers or []]))

    monkeypatch.setattr(live.LiveExplorer, "send", send)
    resolved = ResolvedRegions(regions=run.regions, queries=run.queries, tracked_tokens=())
    feed = live.LiveFeed.start(live.pending_run(run, resolved, run.model_info), **options)
    return feed, sent


def wait_ready(page):
    page.wait_for_function(
        "document.querySelector('.tw-heatmap')?.tealeavesView"
        " && document.querySelector('.tw-backdrop').width > 1",
        timeout=20_000,
    )


def test_streamed_layers_fill_in_the_open_explorer(open_page, run, monkeypatch):
    feed, sent = start(run, monkeypatch, min_interval=0.0, layer=2)
    page, log = open_page(page_html(feed.view))  # the pending state, as first displayed
    wait_ready(page)
    progress = page.locator(".tw-progress")
    assert progress.text_content().strip() == "computing: layer 0/6 (layer 2 not computed yet)"
    assert "read when the last layer" in page.locator(".tw-lens").text_content()
    assert page.locator(".tw-curves polyline").first.get_attribute("points") == ""
    n_spans = page.eval_on_selector_all(".tw-tok", "s => s.length")
    for layer in range(3):
        feed(layer, run.attention_heads[layer])
    assert len(sent) == 3
    page.evaluate(REPLAY, sent)
    assert progress.text_content().strip() == "computing: layer 3/6"
    points = page.locator(".tw-curves polyline").first.get_attribute("points").split()
    assert len(points) == 3  # the layers computed so far
    readout = page.locator(".tw-readout").text_content()
    assert readout.startswith("layer 2: template ")
    # the heatmap of layer 2 is drawn with the streamed row: its darkest token
    # is the most attended one (sink masked)
    row = run.attention[2, run.query_index("final")].copy()
    row[0] = 0
    page.select_option(".tw-scale-select", "layer")
    darkest = page.evaluate(
        "(i) => document.querySelector('.tw-heatmap').tealeavesView.heatmap.colourOf(i)",
        int(row.argmax()),
    )
    assert darkest == "rgb(128, 0, 38)" and n_spans == run.n_tokens
    page.locator("input[type=range]").evaluate(
        "el => { el.value = '4'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    assert progress.text_content().strip().endswith("(layer 4 not computed yet)")
    assert log.requests == [] and log.errors == []


def test_a_stopped_capture_shows_what_arrived_and_why(open_page, run, monkeypatch):
    feed, _ = start(run, monkeypatch, min_interval=3600.0)
    for layer in range(4):
        feed(layer, run.attention_heads[layer])
    feed.stop(KeyboardInterrupt())
    page, log = open_page(page_html(feed.view))  # the synced state after the stop
    wait_ready(page)
    text = page.locator(".tw-progress").text_content()
    assert "stopped after 4 of 6 layers (KeyboardInterrupt)" in text
    assert "stopped before the logit lens" in page.locator(".tw-lens").text_content()
    assert len(page.locator(".tw-curves polyline").first.get_attribute("points").split()) == 4
    assert log.requests == [] and log.errors == []


def set_slider(page, value: int) -> None:
    page.locator("input[type=range]").evaluate(
        f"el => {{ el.value = '{value}';"
        " el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )


def test_the_explorer_follows_the_newest_layer_until_the_user_picks_one(
    open_page, run, monkeypatch
):
    feed, sent = start(run, monkeypatch, min_interval=0.0)  # no layer asked for: it follows
    page, log = open_page(page_html(feed.view))
    wait_ready(page)
    progress = page.locator(".tw-progress")
    slider = page.locator("input[type=range]")
    assert progress.text_content().strip() == "computing: layer 0/6 (showing the newest layer)"
    assert slider.input_value() == "0"
    for layer in range(3):
        feed(layer, run.attention_heads[layer])
        page.evaluate(REPLAY, sent[-1:])
        assert slider.input_value() == str(layer)  # each message moves it on
    assert page.locator(".tw-layer-label").text_content() == "layer 2 / 5"
    assert progress.text_content().strip() == "computing: layer 3/6 (showing the newest layer)"
    assert page.locator(".tw-readout").text_content().startswith("layer 2: ")
    # the heatmap shows layer 2: its darkest token is layer 2's most attended (sink masked)
    row = run.attention[2, run.query_index("final")].copy()
    row[0] = 0
    darkest = page.evaluate(
        "(i) => document.querySelector('.tw-heatmap').tealeavesView.heatmap.colourOf(i)",
        int(row.argmax()),
    )
    assert darkest == "rgb(128, 0, 38)"
    set_slider(page, 1)  # the user picks a layer: it stays there
    assert progress.text_content().strip() == "computing: layer 3/6"
    feed(3, run.attention_heads[3])
    feed(4, run.attention_heads[4])
    page.evaluate(REPLAY, sent[3:])
    assert slider.input_value() == "1"
    assert progress.text_content().strip() == "computing: layer 5/6"
    assert log.requests == [] and log.errors == []
