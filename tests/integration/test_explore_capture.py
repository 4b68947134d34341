"""model.explore: an Explorer shown before the capture runs and filled in
layer by layer, with bounded traffic and everything in synced state at the end."""

from __future__ import annotations

import numpy as np

import tealeaves_widgets as tw
from tealeaves_widgets.widgets import Explorer
from tealeaves_widgets.widgets.wire import decode_array, run_payload
from tests.helpers.live_messages import decode
from tests.helpers.tiny_models import make_tiny_model

REGIONS = {
    "user_message": {"regions": [{"name": "ask", "start_marker": "Where"}]},
    "query_positions": ["final", {"after_text": "Paris"}],
    "tracked_tokens": [" Paris"],
}
CASE = tw.Case(system="You are terse.", user="I live in Paris. Where do I live?")


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
