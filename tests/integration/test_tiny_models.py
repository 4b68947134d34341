"""The tiny random models of `tests.helpers.tiny_models` build, are deterministic and
keep their quirks."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.tiny_models import (
    NO_SDPA_MODEL_TYPES,
    TINY_MODEL_TYPES,
    TINY_SLIDING_WINDOW,
    make_tiny_input_ids,
    make_tiny_model,
)

PROMPT_LENGTH = 40


@pytest.fixture(scope="module")
def input_ids() -> torch.Tensor:
    return make_tiny_input_ids(PROMPT_LENGTH)


def _logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids).logits


@pytest.mark.parametrize("model_type", TINY_MODEL_TYPES)
def test_builds_deterministic_and_sdpa_matches_eager(model_type: str, input_ids: torch.Tensor):
    first = make_tiny_model(model_type)
    second = make_tiny_model(model_type)
    eager = make_tiny_model(model_type, attn_implementation="eager")
    other_seed = make_tiny_model(model_type, seed=1)

    assert not first.training
    assert first.config.model_type == model_type
    assert first.config.vocab_size == 49152
    assert all(p.dtype == torch.float32 for p in first.parameters())
    expected_impl = "eager" if model_type in NO_SDPA_MODEL_TYPES else "sdpa"
    assert first.config._attn_implementation == expected_impl
    assert eager.config._attn_implementation == "eager"

    logits = _logits(first, input_ids)
    assert logits.shape == (1, PROMPT_LENGTH, 49152)
    assert torch.isfinite(logits).all()
    assert torch.equal(logits, _logits(second, input_ids))
    assert not torch.allclose(logits, _logits(other_seed, input_ids))
    torch.testing.assert_close(logits, _logits(eager, input_ids), rtol=0, atol=1e-4)


@pytest.mark.parametrize("model_type", TINY_MODEL_TYPES)
def test_every_tiny_model_is_under_five_million_parameters(model_type: str):
    """Small enough for the 2-core CI, even with the real tokenizer's vocabulary."""
    model = make_tiny_model(model_type)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params <= 5_000_000, f"{model_type}: {n_params:,} parameters"
    small = make_tiny_model(model_type, vocab_size=512)
    assert sum(p.numel() for p in small.parameters()) < 200_000


def test_build_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_model("llama", seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_quirks_are_switched_on():
    gemma2 = make_tiny_model("gemma2").config
    assert gemma2.attn_logit_softcapping and gemma2.final_logit_softcapping
    assert gemma2.sliding_window == TINY_SLIDING_WINDOW < PROMPT_LENGTH
    assert {"sliding_attention", "full_attention"} <= set(gemma2.layer_types)

    gemma3 = make_tiny_model("gemma3_text").config
    assert gemma3.sliding_window < PROMPT_LENGTH
    assert {"sliding_attention", "full_attention"} <= set(gemma3.layer_types)
    assert gemma3.query_pre_attn_scalar != gemma3.head_dim

    assert make_tiny_model("mistral").config.sliding_window < PROMPT_LENGTH

    gpt_oss = make_tiny_model("gpt_oss")
    assert gpt_oss.config.sliding_window < PROMPT_LENGTH
    assert {"sliding_attention", "full_attention"} <= set(gpt_oss.config.layer_types)
    for layer in gpt_oss.model.layers:
        assert layer.self_attn.sinks.abs().max() > 0.3


def test_unknown_model_type_is_rejected():
    with pytest.raises(ValueError, match="unknown tiny model type"):
        make_tiny_model("bert")
