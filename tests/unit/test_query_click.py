"""Click a token to make it the query, on the Python side, with no model:
`Run.with_query`, the view's answer to a replayed "query_at" request (a
stand-in model supplies the reading), and the errors the front end shows.
The numbers against a real model's fresh capture are in
tests/integration/test_query_at.py."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from tealeaves_widgets.core.run import Lens, QueryReading, Run
from tealeaves_widgets.errors import ArgumentError
from tealeaves_widgets.io.runfile import open_run
from tealeaves_widgets.models.memory import kv_cache_bytes, loaded_fit
from tealeaves_widgets.widgets import Explorer, TokenHeatmap, schema
from tealeaves_widgets.widgets.live import LiveExplorer
from tests.helpers.live_messages import decode_query_reply, replay
from tests.helpers.synthetic import synthetic_run


@pytest.fixture(scope="module")
def run() -> Run:
    return synthetic_run(n_tokens=80, n_layers=4, n_heads=3, n_queries=2, seed=4)


def reading_at(run: Run, position: int, name: str | None = None, seed: int = 0) -> QueryReading:
    """A reading at `position` shaped like `run`'s: causal softmax rows, a lens
    with its top-k and tracked tokens."""
    rng = np.random.default_rng(seed)
    L, H, T = run.n_layers, run.n_heads, run.n_tokens
    logits = rng.normal(size=(L, H, position + 1)).astype(np.float32)
    rows = np.zeros((L, H, T), np.float32)
    rows[:, :, : position + 1] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    k, n = run.lens.top_ids.shape[2], len(run.lens.tracked_ids)
    lens = Lens(
        top_ids=rng.integers(0, 50, (L, 1, k)).astype(np.int64),
        top_probs=rng.random((L, 1, k)).astype(np.float32),
        entropy=rng.random((L, 1)).astype(np.float32),
        kl_to_final=rng.random((L, 1)).astype(np.float32),
        tracked_ids=run.lens.tracked_ids,
        tracked_tokens=run.lens.tracked_tokens,
        tracked_ranks=rng.integers(1, 100, (L, 1, n)).astype(np.int64),
        tracked_probs=rng.random((L, 1, n)).astype(np.float32),
        vocab={i: f"<w{i}>" for i in range(50)},
    )
    return QueryReading(name or f"pos:{position}", position, rows, lens, "cache", "", 0.01)


class StandInModel:
    """What a view needs of a `tw.Model`: `read_query`, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def read_query(self, run: Run, position: int, *, keep_cache: bool = False) -> QueryReading:
        self.calls.append((position, keep_cache))
        return reading_at(run, position)


def request(pos: object, request_id: int = 5) -> dict:
    return {"v": 1, "kind": "query_at", "id": request_id, "pos": pos}


# -- Run.with_query ------------------------------------------------------------------


def test_with_query_appends_the_rows_and_lens_after_the_other_queries(run):
    reading = reading_at(run, 30)
    added = run.with_query(reading)
    assert list(added.queries) == [*run.queries, "pos:30"] and added.queries["pos:30"] == 30
    np.testing.assert_array_equal(added.attention_heads[:, :, :2], run.attention_heads)
    np.testing.assert_array_equal(added.attention_heads[:, :, 2], reading.attention_heads)
    np.testing.assert_allclose(added.attention[:, 2], reading.attention_heads.mean(axis=1))
    for name in ("top_ids", "top_probs", "tracked_ranks", "tracked_probs"):
        np.testing.assert_array_equal(getattr(added.lens, name)[:, 2:], getattr(reading.lens, name))
    np.testing.assert_array_equal(added.lens.entropy[:, 2], reading.lens.entropy[:, 0])
    assert added.lens.vocab[3] == "<w3>" and set(run.lens.vocab) <= set(added.lens.vocab)
    assert added.region_spec["query_positions"] == ["final", 30]
    assert run.n_queries == 2  # the run itself is unchanged
    named = run.with_query(reading_at(run, 31, name="mine"))
    assert named.region_spec["query_positions"][-1] == {"position": 31, "name": "mine"}
    assert added.lens_table("pos:30").shape[0] == run.n_layers


def test_with_query_refuses_what_does_not_fit(run):
    with pytest.raises(ArgumentError, match="query named 'final' already"):
        run.with_query(reading_at(run, 30, name="final"))
    outside = dataclasses.replace(reading_at(run, 30), position=80)
    with pytest.raises(ArgumentError, match="outside this run's 80 tokens"):
        run.with_query(outside)


def test_with_query_refuses_a_reading_of_another_shape(run):
    other = synthetic_run(n_tokens=80, n_layers=3, n_heads=3, n_queries=2, seed=4)
    with pytest.raises(ArgumentError, match=r"expected \(layer, head, pos\) rows \(4, 3, 80\)"):
        run.with_query(reading_at(other, 30))


def test_a_run_with_a_clicked_query_saves_and_reopens(run, tmp_path):
    added = run.with_query(reading_at(run, 30))
    reopened = open_run(added.save(tmp_path / "clicked.tlrun"))
    assert list(reopened.queries) == list(added.queries)
    np.testing.assert_array_equal(reopened.attention_heads, added.attention_heads)
    np.testing.assert_array_equal(reopened.lens.tracked_ranks, added.lens.tracked_ranks)


# -- the view's answer to a clicked position -------------------------------------------


def test_a_clicked_position_becomes_a_query_of_the_view(run):
    model = StandInModel()
    view = Explorer(run, model=model)
    [(content, buffers)] = replay(view, request(30))
    assert schema.check_typeddict(content, schema.QueryAtReply, "reply") == []
    assert (content["kind"], content["id"], content["name"], content["pos"]) == (
        "query_at",
        5,
        "pos:30",
        30,
    )
    assert content["method"] == "cache" and model.calls == [(30, True)]
    assert list(view.run.queries) == ["q0", "final", "pos:30"]
    arrays = decode_query_reply(content, buffers)
    q, expected = 2, view.run
    np.testing.assert_allclose(arrays["attention"], expected.attention[:, q], atol=1e-3)
    width = arrays["heads"].shape[2]
    assert width == 31  # a causal row ends at its position
    np.testing.assert_allclose(
        arrays["heads"], expected.attention_heads[:, :, q, :width], atol=1e-3
    )
    np.testing.assert_array_equal(arrays["lens.top_ids"], expected.lens.top_ids[:, q])
    np.testing.assert_array_equal(arrays["lens.tracked_ranks"], expected.lens.tracked_ranks[:, q])
    np.testing.assert_array_equal(arrays["lens.entropy"], expected.lens.entropy[:, q])
    user = list(run.regions).index("user")
    in_user = expected.attention[:, q, run.regions["user"].token_indices].sum(-1)
    np.testing.assert_allclose(arrays["curves"][:, user], in_user, atol=1e-6)
    np.testing.assert_array_equal(arrays["first_token_heads"], expected.attention_heads[:, :, q, 0])
    top = sorted(set(arrays["lens.top_ids"].ravel().tolist()))
    assert content["lens"]["vocab"] == {str(i): f"<w{i}>" for i in top}
    # the front end then selects it: the kernel accepts the name
    view.query = "pos:30"
    assert view.query == "pos:30"


def test_the_view_keeps_no_cache_when_told_not_to(run):
    model = StandInModel()
    replay(TokenHeatmap(run, model=model, keep_cache=False), request(12))
    assert model.calls == [(12, False)]


@pytest.mark.parametrize(
    ("pos", "message"),
    [
        (80, r"Position 80 is outside the prompt's 80 tokens \(0\.\.79\)"),
        (-1, "Position -1 is outside"),
        ("3", "query_at needs an int token position, got '3'"),
        (True, "query_at needs an int token position, got True"),
    ],
)
def test_a_bad_position_is_answered_with_an_error(run, pos, message):
    [(content, _)] = replay(Explorer(run, model=StandInModel()), request(pos))
    assert (content["kind"], content["id"], content["request"]) == ("error", 5, "query_at")
    assert schema.check_typeddict(content, schema.ErrorReply) == []
    assert re.search(message, content["message"])


def test_a_query_position_or_a_view_without_a_model_is_answered_with_an_error(run):
    [(taken, _)] = replay(Explorer(run, model=StandInModel()), request(run.queries["q0"]))
    assert (
        taken["message"]
        == f"SelectionError: Position {run.queries['q0']} is query 'q0' already; select it."
    )
    [(alone, _)] = replay(Explorer(run), request(30))
    assert alone["message"].startswith(
        "SelectionError: This view has no model to compute position 30 (it was built from a run "
        "alone). Show the run with the model that captured it, tw.Explorer(run, model=model)"
    )


def test_a_live_explorer_computes_no_query_before_its_capture_ends(run):
    model = StandInModel()
    view = LiveExplorer(run, model=model)
    [(content, _)] = replay(view, request(30))
    assert "The capture has not finished" in content["message"] and model.calls == []
    view.halt(2, "KeyboardInterrupt")
    [(stopped, _)] = replay(view, request(30))
    assert "stopped after 2 of 4 layers (KeyboardInterrupt)" in stopped["message"]
    view.complete(run)
    [(done, _)] = replay(view, request(30))
    assert done["kind"] == "query_at" and model.calls == [(30, True)]


def test_model_must_have_read_query(run):
    with pytest.raises(TypeError, match="model must be the tw.Model that captured the run"):
        Explorer(run, model="smollm")
    with pytest.raises(TypeError, match="keep_cache must be True or False"):
        Explorer(run, model=StandInModel(), keep_cache="yes")


# -- the kept cache's memory -----------------------------------------------------------


def test_the_kept_cache_is_counted_where_the_layers_run():
    from tealeaves_widgets.models.memory import ModelSizes

    sizes = ModelSizes(
        n_params=135_000_000,
        n_layers=30,
        hidden=576,
        intermediate=1536,
        n_heads=9,
        n_kv_heads=3,
        head_dim=64,
        vocab=49152,
        eager_attention=False,
        default_dtype="float32",
    )  # SmolLM2-135M
    assert kv_cache_bytes(sizes, 2048) == 2 * 30 * 2048 * 3 * 64 * 4 == 94_371_840
    assert kv_cache_bytes(sizes, 2048, "bfloat16") == 94_371_840 // 2

    def fit(keep_cache: bool):
        return loaded_fit(
            sizes, ["cpu"] * 30, "cpu", n_tokens=2048, n_queries=8,
            available=lambda device: 0, keep_cache=keep_cache,
        )  # fmt: skip

    assert fit(True).need["cpu"] - fit(False).need["cpu"] == 94_371_840


def test_display_of_a_captured_run_brings_its_model_while_it_lives(run):
    """`display(run)` after `model.capture` builds the explorer with the model
    (so a click reads the token); the link is weak: it keeps neither alive."""
    import gc

    from tealeaves_widgets.core import seam

    fresh = synthetic_run(n_tokens=40, n_layers=2, n_heads=2, n_queries=1, seed=9)
    model = StandInModel()
    seam.remember_model(fresh, model)
    assert seam.model_of(fresh) is model and seam.model_of(run) is None
    view = seam.call("view", fresh)
    reply, _ = view._query_at(request(20))
    assert reply["kind"] == "query_at" and model.calls == [(20, True)]
    assert seam.call("view", run)._model is None  # a run nobody captured here
    other = StandInModel()
    seam.remember_model(run, other)
    del other
    gc.collect()
    assert seam.model_of(run) is None  # the model is gone: no link, no error
    assert seam.call("view", run)._model is None
