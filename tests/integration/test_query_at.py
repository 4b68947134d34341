"""A query read after the capture (`Model.read_query`, a click in the explorer)
equals what a fresh capture with that position among its queries gives, at
1e-5 in float32: from the kept KV cache (one decode step) on every tiny
architecture, sliding windows, softcaps and sinks included, and from a forward
pass when no cache is kept. The explorer's answer to a replayed front-end
"query_at" request carries the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.errors import ArgumentError
from tealeaves_widgets.widgets import Explorer, schema
from tests.helpers.live_messages import decode_query_reply, replay
from tests.helpers.tiny_models import TINY_MODEL_TYPES, make_tiny_model

ATOL = 1e-5
CASE = tw.Case(
    system="You are terse. Answer with one word, the city, and nothing else at all.",
    user="I live in Paris, near the river. My sister lives in Lyon. Where do I live?",
)
REGIONS = {
    "user_message": {"regions": [{"name": "ask", "start_marker": "Where"}]},
    # neither the middle nor the last position is a query: both are read later
    "query_positions": [{"after_text": "Paris"}],
    "tracked_tokens": [" Paris", " Lyon"],
}


def with_query(position: int) -> dict:
    return {**REGIONS, "query_positions": [*REGIONS["query_positions"], position]}


def assert_same_ranks(ranks: np.ndarray, fresh: np.ndarray) -> None:
    """Ranks are equal, except that deep in the vocabulary (past rank 100) a
    near tie within float noise may move one by 1 per 10,000: the probabilities
    themselves are compared at 1e-5."""
    allowed = np.where(fresh <= 100, 0, 1 + fresh // 10_000)
    assert (np.abs(ranks - fresh) <= allowed).all(), (ranks, fresh)


def assert_same_query(added: tw.Run, fresh: tw.Run, name: str) -> None:
    """The query `name` of `added` equals that of `fresh` (rows 1e-5, lens 1e-5,
    top ids exactly, ranks as `assert_same_ranks`), and the other queries are untouched."""
    assert list(added.queries) == list(fresh.queries)
    q = added.query_index(name)
    np.testing.assert_allclose(
        added.attention_heads[:, :, q], fresh.attention_heads[:, :, q], rtol=0, atol=ATOL
    )
    np.testing.assert_allclose(added.attention[:, q], fresh.attention[:, q], rtol=0, atol=ATOL)
    a, f = added.lens, fresh.lens
    np.testing.assert_array_equal(a.top_ids[:, q], f.top_ids[:, q])
    assert_same_ranks(a.tracked_ranks[:, q], f.tracked_ranks[:, q])
    for field in ("top_probs", "entropy", "kl_to_final", "tracked_probs"):
        np.testing.assert_allclose(
            getattr(a, field)[:, q], getattr(f, field)[:, q], rtol=0, atol=ATOL, err_msg=field
        )
    assert {i: a.vocab[i] for i in a.top_ids[:, q].ravel()} == {
        i: f.vocab[i] for i in f.top_ids[:, q].ravel()
    }
    np.testing.assert_allclose(
        added.attention_heads[:, :, :q], fresh.attention_heads[:, :, :q], rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("model_type", TINY_MODEL_TYPES)
def test_a_query_from_the_kept_cache_equals_a_fresh_capture(smol_tokenizer, model_type):
    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    run = model.capture(CASE, REGIONS, keep_cache=True)
    config = model.hf_model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // model.shape.n_heads
    assert model.kept_cache_bytes == (
        2 * model.shape.n_layers * run.n_tokens * model.shape.n_kv_heads * head_dim * 4
    )
    # keeping the cache changes nothing in the run
    plain = model.capture(CASE, REGIONS)
    np.testing.assert_allclose(run.attention_heads, plain.attention_heads, rtol=0, atol=1e-6)
    for position in (run.n_tokens // 2, run.n_tokens - 1):  # the middle, the last
        reading = model.read_query(run, position)
        assert (reading.method, reading.note, reading.name) == ("cache", "", f"pos:{position}")
        assert not reading.attention_heads[:, :, position + 1 :].any()
        fresh = model.capture(CASE, with_query(position))
        assert_same_query(run.with_query(reading), fresh, f"pos:{position}")


def test_without_a_kept_cache_a_forward_pass_gives_the_same_numbers(smol_tokenizer):
    model = tw.load_model(make_tiny_model("qwen3"), tokenizer=smol_tokenizer)
    run = model.capture(CASE, REGIONS)
    position = run.n_tokens // 3
    reading = model.read_query(run, position)
    assert reading.method == "pass"
    assert reading.note == "no capture has kept its KV cache (keep_cache=True keeps one)"
    assert model.kept_cache_bytes == 0
    fresh = model.capture(CASE, with_query(position))
    assert_same_query(run.with_query(reading), fresh, f"pos:{position}")
    # a pass that keeps its cache makes the next position a decode step
    assert model.read_query(run, 5, keep_cache=True).method == "pass"
    assert model.kept_cache_bytes > 0
    again = model.read_query(run, position)
    assert again.method == "cache"
    assert_same_query(run.with_query(again), fresh, f"pos:{position}")
    # another prompt's cache does not serve; releasing it frees it
    other = model.capture(tw.Case(user="Where is Lyon?"), keep_cache=True)
    assert model.read_query(run, 7).note.startswith("the kept KV cache is of another prompt")
    assert model.read_query(other, 2).method == "cache"
    model.release_cache()
    assert model.kept_cache_bytes == 0
    assert model.read_query(other, 2).note == "the kept KV cache was released"


def test_read_query_refuses_positions_it_cannot_add(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    run = model.capture(CASE, REGIONS)
    taken = run.queries["after:Paris"]
    with pytest.raises(
        ArgumentError, match=f"Position {taken} is query 'after:Paris' of this run already"
    ):
        model.read_query(run, taken)
    with pytest.raises(ArgumentError, match=rf"outside the run's {run.n_tokens} tokens"):
        model.read_query(run, run.n_tokens)
    with pytest.raises(TypeError, match="position must be a token index"):
        model.read_query(run, 2.0)
    other = tw.load_model(make_tiny_model("qwen2"), tokenizer=smol_tokenizer)
    with pytest.raises(ArgumentError, match="Read a run's queries with the model that captured it"):
        other.read_query(run, 3)
    with pytest.raises(ArgumentError, match="query named 'after:Paris' already"):
        model.read_query(run, 3, name="after:Paris")
    named = model.add_query(run, 3, name="third")
    assert named.queries["third"] == 3 and named.region_spec["query_positions"][-1] == {
        "position": 3,
        "name": "third",
    }


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text"])
def test_the_explorer_answers_a_clicked_token_with_a_fresh_captures_numbers(
    smol_tokenizer, sent, model_type
):
    """The front end's "query_at" message replayed against `model.explore`'s view."""
    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    view = model.explore(CASE, REGIONS)
    assert model.kept_cache_bytes > 0
    position = view.run.n_tokens - 1
    [(content, buffers)] = replay(view, {"v": 1, "kind": "query_at", "id": 4, "pos": position})
    assert schema.check_typeddict(content, schema.QueryAtReply, "reply") == []
    assert (content["kind"], content["id"], content["name"]) == ("query_at", 4, f"pos:{position}")
    assert content["method"] == "cache"
    fresh = model.capture(CASE, with_query(position))
    assert_same_query(view.run, fresh, f"pos:{position}")
    # what crossed the wire: float32 masses and lens at 1e-5, float16 rows to their precision
    arrays = decode_query_reply(content, buffers)
    q = fresh.query_index(f"pos:{position}")
    ask = list(fresh.regions).index("ask")
    in_ask = fresh.attention[:, q, fresh.regions["ask"].token_indices].sum(-1)
    np.testing.assert_allclose(arrays["curves"][:, ask], in_ask, rtol=0, atol=ATOL)
    np.testing.assert_allclose(
        arrays["first_token_heads"], fresh.attention_heads[:, :, q, 0], rtol=0, atol=ATOL
    )
    np.testing.assert_array_equal(arrays["lens.top_ids"], fresh.lens.top_ids[:, q])
    assert_same_ranks(arrays["lens.tracked_ranks"], fresh.lens.tracked_ranks[:, q])
    for field in ("top_probs", "entropy", "kl_to_final", "tracked_probs"):
        np.testing.assert_allclose(
            arrays[f"lens.{field}"], getattr(fresh.lens, field)[:, q], rtol=0, atol=ATOL
        )
    np.testing.assert_allclose(
        arrays["attention"].astype(np.float32), fresh.attention[:, q], rtol=1e-3, atol=1e-4
    )
    np.testing.assert_allclose(
        arrays["heads"], fresh.attention_heads[:, :, q], rtol=1e-3, atol=1e-4
    )
    # the front end selects it next
    view.query = f"pos:{position}"
    # a view built from the run and the model reads from the same cache
    alone = Explorer(fresh, model=model)
    [(middle, _)] = replay(alone, {"v": 1, "kind": "query_at", "id": 1, "pos": 9})
    assert middle["method"] == "cache" and "pos:9" in alone.run.queries


def test_on_the_embedded_model_a_clicked_query_equals_a_fresh_capture(smol_model):
    """SmolLM2-135M (30 layers, GQA 9/3): rows and probabilities at 1e-5;
    entropy and KL (nats, summed over 49,152 tokens) at 1e-5 relative, the
    float32 noise of a residual computed from one token instead of the prompt
    (a second capture of the same position gives them bit for bit)."""
    run = smol_model.capture(CASE, REGIONS, keep_cache=True)
    for position in (run.n_tokens // 2, run.n_tokens - 1):
        reading = smol_model.read_query(run, position)
        assert reading.method == "cache"
        added = run.with_query(reading)
        fresh = smol_model.capture(CASE, with_query(position))
        q = fresh.query_index(f"pos:{position}")
        np.testing.assert_allclose(
            added.attention_heads[:, :, q], fresh.attention_heads[:, :, q], rtol=0, atol=ATOL
        )
        a, f = added.lens, fresh.lens
        np.testing.assert_array_equal(a.top_ids[:, q], f.top_ids[:, q])
        assert_same_ranks(a.tracked_ranks[:, q], f.tracked_ranks[:, q])
        for field in ("top_probs", "tracked_probs"):
            np.testing.assert_allclose(getattr(a, field)[:, q], getattr(f, field)[:, q], atol=ATOL)
        for field in ("entropy", "kl_to_final"):
            np.testing.assert_allclose(
                getattr(a, field)[:, q], getattr(f, field)[:, q], rtol=1e-5, atol=1e-6
            )
