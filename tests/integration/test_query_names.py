"""A captured run keeps the names the user gave its query positions (issue 10,
item 15), on a tiny model."""

from __future__ import annotations

import tealeaves_widgets as tw
from tests.helpers.prompts import GRADER, TEALEAVES_QUERIES


def test_capture_keeps_the_query_names(smol_tokenizer):
    from tests.helpers.tiny_models import make_tiny_model

    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    run = model.capture(GRADER, {"query_positions": TEALEAVES_QUERIES})
    assert list(run.queries) == ["terminal", "decision", "end"]
    assert run.curves(query="terminal").shape[0] == model.shape.n_layers
