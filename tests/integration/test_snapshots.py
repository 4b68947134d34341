"""Conversation snapshots on a tiny model with the real ChatML tokenizer: the
one-pass reading equals one pass per prefix, the states are the model's own
hidden states, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tests.helpers.checks import assert_same_run
from tests.helpers.tiny_models import make_tiny_model

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "I feel great today!"},
    {"role": "assistant", "content": "Wonderful, what happened?"},
    {"role": "user", "content": "Actually, everything went wrong."},
]
REFERENCES = {
    "joy": [{"role": "user", "content": "I am so happy!"}],
    "anger": [{"role": "user", "content": "This makes me furious."}],
}


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request, smol_tokenizer):
    return tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)


def test_one_pass_equals_one_pass_per_prefix(model):
    one = model.conversation_snapshots(CONVERSATION, REFERENCES)
    assert one.single_pass
    from tealeaves_widgets.models.snapshots import conversation_snapshots

    per_prefix = conversation_snapshots(model, CONVERSATION, REFERENCES, single_pass=False)
    assert not per_prefix.single_pass
    for source in one.sources:
        assert one.states[source].shape == (
            4,
            model.shape.n_layers,
            model.hf_model.config.hidden_size,
        )
        np.testing.assert_allclose(one.states[source], per_prefix.states[source], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(one.positions, per_prefix.positions)


def test_states_are_the_models_hidden_states(model):
    snap = model.conversation_snapshots(CONVERSATION, sources=["hidden_in", "hidden_out"])
    ids = model.tokenizer.apply_chat_template(CONVERSATION, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert snap.positions[-1] == len(ids) - 1
    with torch.no_grad():
        hidden = model.hf_model(
            input_ids=torch.as_tensor(ids)[None], output_hidden_states=True
        ).hidden_states
    for m, position in enumerate(snap.positions):
        for layer in range(
            model.shape.n_layers - 1
        ):  # the last hidden state is after the final norm
            np.testing.assert_allclose(
                snap.states["hidden_out"][m, layer],
                hidden[layer + 1][0, position].numpy(),
                atol=1e-5,
            )
        np.testing.assert_allclose(
            snap.states["hidden_in"][m, 0], hidden[0][0, position].numpy(), atol=1e-5
        )
    # each message's state is read at the end of its own rendering
    prefix = model.tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=True)
    prefix = prefix["input_ids"] if hasattr(prefix, "keys") else prefix
    assert snap.positions[1] == len(prefix) - 1 and list(ids[: len(prefix)]) == list(prefix)


def test_gen_prompt_readout_reads_each_prefix_with_the_generation_prompt(model):
    snap = model.conversation_snapshots(CONVERSATION, readout="gen_prompt", sources="hidden_out")
    assert not snap.single_pass
    prefix = model.tokenizer.apply_chat_template(
        CONVERSATION[:2], tokenize=True, add_generation_prompt=True
    )
    prefix = prefix["input_ids"] if hasattr(prefix, "keys") else prefix
    with torch.no_grad():
        hidden = model.hf_model(
            input_ids=torch.as_tensor(prefix)[None], output_hidden_states=True
        ).hidden_states
    np.testing.assert_allclose(snap.states["hidden_out"][1, 0], hidden[1][0, -1].numpy(), atol=1e-5)
    table = snap.compare("hidden_out")
    assert table.empty  # no references given


def test_bad_conversations_are_refused(model):
    with pytest.raises(tw.ArgumentError, match="messages is empty"):
        model.conversation_snapshots([])
    with pytest.raises(tw.ArgumentError, match="unknown role 'narrator'"):
        model.conversation_snapshots([{"role": "narrator", "content": "Once"}])
    with pytest.raises(tw.ArgumentError, match="without a slash"):
        model.conversation_snapshots(CONVERSATION, {"joy/sad": REFERENCES["joy"]})
    with pytest.raises(tw.ArgumentError, match="readout must be one of"):
        model.conversation_snapshots(CONVERSATION, readout="last")
    with pytest.raises(tw.ArgumentError, match="Unknown source"):
        model.conversation_snapshots(CONVERSATION, sources=["residual"])
    with pytest.raises(tw.ArgumentError, match=r"references\['joy'\] is empty"):
        model.conversation_snapshots(CONVERSATION, {"joy": []})


# -- conversation_scan ----------------------------------------------------------------


def test_the_scan_captures_each_message_prefix(model):
    runs = model.conversation_scan(CONVERSATION, top_k=3, progress=False)
    assert isinstance(runs, tw.RunSet) and len(runs.runs) == 4
    assert runs.labels == (
        "msg1of4 (system)",
        "msg2of4 (user)",
        "msg3of4 (assistant)",
        "msg4of4 (user)",
    )
    for i, run in enumerate(runs.runs):
        alone = model.capture(tw.Case(messages=CONVERSATION[: i + 1]), top_k=3, progress=False)
        assert_same_run(run, alone)
    # a prefix ending in a user message reads the generation prompt's last token
    user = runs.runs[1]
    assert user.text.endswith("I feel great today!<|im_end|>\n<|im_start|>assistant\n")
    assert user.queries["final"] == user.n_tokens - 1
    # one ending in an assistant message reads its text's last token, no end-of-turn after it
    answer = runs.runs[2]
    assert answer.text.endswith("Wonderful, what happened?")
    assert answer.queries["final"] == answer.n_tokens - 1
    assert answer.tokens[-1] == "?"


def test_the_scan_takes_regions_and_refuses_bad_conversations(model):
    regions = {"system_prompt": {"regions": [{"name": "helpful", "marker": " helpful"}]}}
    runs = model.conversation_scan(CONVERSATION[:2], regions, progress=False)
    for run in runs.runs:
        assert [run.tokens[i] for i in run.regions["helpful"].token_indices] == [" helpful"]
    with pytest.raises(tw.ArgumentError, match="messages is empty"):
        model.conversation_scan([])
    with pytest.raises(tw.ArgumentError, match="unknown role 'narrator'"):
        model.conversation_scan([{"role": "narrator", "content": "Once"}])
    with pytest.raises(tw.ArgumentTypeError, match="must be a list"):
        model.conversation_scan("Hello")


@pytest.mark.parametrize("model_type", ["llama", "mistral", "gemma2", "gpt_oss", "gpt2"])
def test_gen_prompt_states_from_the_conversation_s_cache_equal_one_pass_per_prefix(
    smol_tokenizer, model_type, monkeypatch
):
    """One pass of the conversation and its cache cut at each message's end,
    the generation prompt run alone there, equals rendering and passing each
    prefix (sliding windows, softcaps and sinks included)."""
    from tealeaves_widgets.models import snapshots

    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    served = []
    original = snapshots._gen_prompt_on_cache
    monkeypatch.setattr(
        snapshots,
        "_gen_prompt_on_cache",
        lambda *a: served.append(original(*a)) or served[-1],
    )
    cached = model.conversation_snapshots(CONVERSATION, REFERENCES, readout="gen_prompt")
    assert served and served[0] is not None
    per_prefix = snapshots.conversation_snapshots(
        model, CONVERSATION, REFERENCES, readout="gen_prompt", single_pass=False
    )
    for source in cached.sources:
        np.testing.assert_allclose(
            cached.states[source], per_prefix.states[source], rtol=0, atol=1e-5, err_msg=source
        )
    np.testing.assert_array_equal(cached.positions, per_prefix.positions)
    # a model whose cache is not plain full-length layers: one pass per prefix
    monkeypatch.setattr("tealeaves_widgets.models.query.keep", lambda *a: None)
    fallback = model.conversation_snapshots(CONVERSATION, readout="gen_prompt")
    assert served[-1] is None
    np.testing.assert_allclose(
        fallback.states["hidden_out"], per_prefix.states["hidden_out"], rtol=0, atol=1e-6
    )
