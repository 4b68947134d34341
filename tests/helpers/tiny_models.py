"""Tiny random causal LMs of many architectures, built from configs in code (no hub access).

`make_tiny_model(model_type)` returns a small fp32 model in eval mode (hidden 32, 4 query heads of
dim 8 with 2 KV heads where the architecture has GQA, a few layers, 1024 positions), initialised
deterministically from ``seed``. The default vocabulary (49152) matches the SmolLM2 tokenizer, so
real prompts can be fed to every model; even so every model has at most 3.3M parameters (the
embedding and unembedding are most of it). Tests that feed random ids pass a small `vocab_size`.

Each architecture keeps its quirk switched on, with values small enough that a 40-token prompt
notices them:

- ``mistral``: sliding window of 16 on every layer.
- ``qwen2``: q/k/v biases (no sliding window).
- ``qwen3``: per-head q/k RMSNorm.
- ``gemma``: ``sqrt(hidden)`` embedding scale, ``(1 + w)`` RMSNorm, tied unembedding.
- ``gemma2``: attention logit softcapping, final logit softcapping, sliding window 16 on even
  layers, ``query_pre_attn_scalar`` != head_dim. No SDPA support in transformers.
- ``gemma3_text``: sliding (window 16, local rope) + global layers, q/k norm,
  ``query_pre_attn_scalar`` != head_dim.
- ``phi3``: fused ``qkv_proj`` / ``gate_up_proj``.
- ``gpt2``: learned absolute positions, fused ``c_attn`` (Conv1D), no GQA.
- ``gpt_neox``: fused ``query_key_value``, partial rotary (25%), parallel residual, no GQA.
- ``gpt_oss``: 4 tiny experts (top-2), attention sinks (set to N(0, 1)), sliding window 16 on
  even layers. No SDPA support in transformers.

The weights use ``initializer_range=0.2`` (instead of 0.02) so that attention patterns are far
from uniform and the softcaps actually bend the logits.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

TINY_MODEL_TYPES: tuple[str, ...] = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3_text",
    "phi3",
    "gpt2",
    "gpt_neox",
    "gpt_oss",
)

#: Model types whose transformers implementation has no SDPA path (``_supports_sdpa = False``).
#: ``make_tiny_model(..., attn_implementation="sdpa")`` builds them with ``"eager"`` instead.
NO_SDPA_MODEL_TYPES: frozenset[str] = frozenset({"gemma2", "gpt_oss"})

TINY_HIDDEN = 32
TINY_HEADS = 4
TINY_KV_HEADS = 2
TINY_HEAD_DIM = 8
TINY_INTERMEDIATE = 64
TINY_MAX_POSITIONS = 1024
TINY_SLIDING_WINDOW = 16
TINY_INIT_RANGE = 0.2

# SmolLM2 ids: <|endoftext|> = 0, <|im_start|> = 1, <|im_end|> = 2.
_SPECIAL_IDS: dict[str, Any] = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": None}

_SLIDING_FULL_4 = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]


def _llama_like(**extra: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "hidden_size": TINY_HIDDEN,
        "intermediate_size": TINY_INTERMEDIATE,
        "num_hidden_layers": 3,
        "num_attention_heads": TINY_HEADS,
        "num_key_value_heads": TINY_KV_HEADS,
        "head_dim": TINY_HEAD_DIM,
        "max_position_embeddings": TINY_MAX_POSITIONS,
        "initializer_range": TINY_INIT_RANGE,
        "attention_dropout": 0.0,
    }
    kwargs.update(extra)
    return kwargs


def _config_kwargs(model_type: str) -> dict[str, Any]:
    if model_type in ("llama", "qwen2", "gemma"):
        return _llama_like()
    if model_type == "mistral":
        return _llama_like(sliding_window=TINY_SLIDING_WINDOW)
    if model_type == "qwen3":
        return _llama_like()
    if model_type == "gemma2":
        return _llama_like(
            num_hidden_layers=4,
            layer_types=list(_SLIDING_FULL_4),
            sliding_window=TINY_SLIDING_WINDOW,
            query_pre_attn_scalar=32,
            attn_logit_softcapping=4.0,
            final_logit_softcapping=3.0,
        )
    if model_type == "gemma3_text":
        return _llama_like(
            num_hidden_layers=4,
            layer_types=["sliding_attention", "sliding_attention", "full_attention"]
            + ["sliding_attention"],
            sliding_window=TINY_SLIDING_WINDOW,
            query_pre_attn_scalar=32,
        )
    if model_type == "phi3":
        kwargs = _llama_like(original_max_position_embeddings=TINY_MAX_POSITIONS)
        kwargs.pop("head_dim")  # phi3 derives it from hidden_size / num_attention_heads
        kwargs.update(resid_pdrop=0.0, embd_pdrop=0.0)
        return kwargs
    if model_type == "gpt2":
        return {
            "n_embd": TINY_HIDDEN,
            "n_head": TINY_HEADS,
            "n_layer": 3,
            "n_inner": TINY_INTERMEDIATE,
            "n_positions": TINY_MAX_POSITIONS,
            "initializer_range": TINY_INIT_RANGE,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
            "resid_pdrop": 0.0,
        }
    if model_type == "gpt_neox":
        return {
            "hidden_size": TINY_HIDDEN,
            "num_attention_heads": TINY_HEADS,
            "num_hidden_layers": 3,
            "intermediate_size": TINY_INTERMEDIATE,
            "max_position_embeddings": TINY_MAX_POSITIONS,
            "initializer_range": TINY_INIT_RANGE,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "partial_rotary_factor": 0.25,
            },
            "attention_dropout": 0.0,
            "hidden_dropout": 0.0,
        }
    if model_type == "gpt_oss":
        return _llama_like(
            num_hidden_layers=4,
            intermediate_size=32,
            num_local_experts=4,
            num_experts_per_tok=2,
            layer_types=list(_SLIDING_FULL_4),
            sliding_window=TINY_SLIDING_WINDOW,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        )
    raise ValueError(f"unknown tiny model type {model_type!r}; expected one of {TINY_MODEL_TYPES}")


def make_tiny_config(model_type: str, *, vocab_size: int = 49152) -> transformers.PreTrainedConfig:
    """The config `make_tiny_model` builds its model from (fresh object on every call)."""
    kwargs = _config_kwargs(model_type)
    return AutoConfig.for_model(model_type, vocab_size=vocab_size, **_SPECIAL_IDS, **kwargs)


def make_tiny_model(
    model_type: str,
    *,
    vocab_size: int = 49152,
    seed: int = 0,
    attn_implementation: str = "sdpa",
) -> transformers.PreTrainedModel:
    """A tiny random ``*ForCausalLM`` of ``model_type`` (see `TINY_MODEL_TYPES`), fp32, eval mode.

    The weights depend only on ``seed`` (the global torch RNG is left untouched). For the model
    types in `NO_SDPA_MODEL_TYPES`, ``attn_implementation="sdpa"`` falls back to ``"eager"``
    (transformers refuses SDPA for them); any other value is passed through unchanged.
    """
    config = make_tiny_config(model_type, vocab_size=vocab_size)
    if attn_implementation == "sdpa" and model_type in NO_SDPA_MODEL_TYPES:
        attn_implementation = "eager"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(
            config, attn_implementation=attn_implementation, dtype=torch.float32
        )
        if model_type == "gpt_oss":
            # Init draws sinks from N(0, initializer_range); make them large enough to matter.
            with torch.no_grad():
                for layer in model.model.layers:
                    layer.self_attn.sinks.normal_(0.0, 1.0)
    return model.float().eval()


def make_tiny_input_ids(
    length: int = 40, *, batch: int = 1, seed: int = 0, vocab_size: int = 49152
) -> torch.Tensor:
    """Random ``(batch, length)`` token ids in ``[3, vocab_size)`` (no special tokens)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab_size, (batch, length), generator=generator)
