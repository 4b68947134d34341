"""Loading, the architecture table, the Model wrapper and end-to-end runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.models.architectures import TABLE
from tealeaves_widgets.prompt.examples import EXAMPLE_CASE, EXAMPLE_REGIONS
from tests.helpers.tiny_models import TINY_MODEL_TYPES, make_tiny_config, make_tiny_model


@pytest.mark.parametrize("model_type", TINY_MODEL_TYPES)
def test_table_covers_every_tiny_architecture(model_type):
    model = tw.load_model(make_tiny_model(model_type), tokenizer=object())
    config = make_tiny_config(model_type)
    assert model.shape.n_layers == config.num_hidden_layers
    assert model.unembedding is model.hf_model.get_output_embeddings()
    assert model.shape.context_length == 1024
    assert model.shape.n_heads % model.shape.n_kv_heads == 0
    if model_type == "gemma2":
        assert model.shape.final_logit_softcap == config.final_logit_softcapping


def test_register_architecture_extends_the_table(monkeypatch):
    monkeypatch.setitem(TABLE, "llama_copy", tw.Architecture("llama_copy"))
    hf = make_tiny_model("llama")
    hf.config.model_type = "llama_copy"
    assert tw.load_model(hf, tokenizer=object()).arch.model_type == "llama_copy"


def test_model_object_needs_its_tokenizer():
    with pytest.raises(tw.TealeavesError, match="tokenizer="):
        tw.load_model(make_tiny_model("llama"))


def test_load_from_path_with_dtype_and_device_map(tmp_path, smol_tokenizer):
    make_tiny_model("qwen2").save_pretrained(tmp_path)
    smol_tokenizer.save_pretrained(tmp_path)
    model = tw.load_model(str(tmp_path), dtype="bfloat16", device_map="cpu")
    assert model.dtype == torch.bfloat16
    assert model.hf_model.config._attn_implementation == "sdpa"
    run = model.capture("Where is Paris?")
    # rows are computed in float32 even for a bf16 model
    assert run.attention_heads.dtype == np.float32
    np.testing.assert_allclose(run.attention_heads.sum(-1), 1, atol=1e-5)
    assert run.model_info["dtype"] == "bfloat16"


def test_prompt_longer_than_context(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    with pytest.raises(tw.PromptTooLongError) as err:
        model.capture("word " * 1100)
    assert "accepts at most 1024" in str(err.value) and "Shorten" in str(err.value)


def test_capture_accepts_str_and_dict_cases(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    a = model.capture("Hello there")
    b = model.capture({"user": "Hello there"})
    np.testing.assert_array_equal(a.attention, b.attention)
    assert a.case == tw.Case(user="Hello there").to_dict()
    assert list(a.queries) == ["final"] and a.queries["final"] == len(a.token_ids) - 1
    with pytest.raises(TypeError, match="tw.Case"):
        model.capture(42)


def test_capture_error_leaves_attention_restored(smol_tokenizer):
    hf = make_tiny_model("llama")
    model = tw.load_model(hf, tokenizer=smol_tokenizer)
    with pytest.raises(tw.MarkerNotFoundError):
        model.capture(
            EXAMPLE_CASE, {"system_prompt": {"regions": [{"name": "x", "marker": "nope"}]}}
        )
    assert hf.config._attn_implementation == "sdpa"


def test_on_layer_reports_every_layer(smol_tokenizer):
    model = tw.load_model(make_tiny_model("mistral"), tokenizer=smol_tokenizer)
    seen = {}
    run = model.capture("Hello", on_layer=lambda layer, rows: seen.setdefault(layer, rows))
    assert list(seen) == list(range(model.shape.n_layers))
    for layer, rows in seen.items():
        np.testing.assert_array_equal(rows, run.attention_heads[layer])


@pytest.mark.slow
def test_embedded_example_end_to_end(smol_model, tmp_path):
    run = smol_model.capture(EXAMPLE_CASE, EXAMPLE_REGIONS)
    assert run.model_info["model_id"] == "SmolLM2-135M-Instruct"
    assert run.model_info["attn_implementation"] == "sdpa"
    assert list(run.queries) == ["final", "last_token", "after:data centres?"]
    # TeaLeaves' rule: the first non-whitespace token after the text
    assert run.tokens[run.queries["after:data centres?"]] == " Answer"
    # every token is in exactly one top-level region: role contents + template
    top = ["system", "user", "template"]
    owned = np.concatenate([run.regions[n].token_indices for n in top])
    assert sorted(owned.tolist()) == list(range(run.n_tokens))
    raw = run.curves(query="final", normalize="raw")
    np.testing.assert_allclose(raw[top].sum(axis=1), 1, atol=1e-5)
    nested = raw["rules"] - raw["billing_rule"]
    assert (nested >= -1e-7).all(), "a parent holds at least its child's mass"
    # the model answers "I'm currently based in Paris": its first token leads the last layer
    assert run.lens.vocab[int(run.lens.top_ids[-1, 0, 0])] == "I"
    path = run.save(tmp_path / "example.tlrun")
    again = tw.open_run(path)
    np.testing.assert_array_equal(again.attention_heads, run.attention_heads)
    assert again.regions.keys() == run.regions.keys()
    assert again.lens.vocab == run.lens.vocab
