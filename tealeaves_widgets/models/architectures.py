"""The architecture table: every per-model difference the capture needs, in
one declarative place keyed by `config.model_type`.

To support a new architecture, add one `Architecture(...)` entry to `TABLE`
(or call `register_architecture` from your own code): name the decoder-layer
list, the final norm, the attention submodule of a layer and the
unembedding, and the config attributes that hold head counts, context length
and final logit softcapping. The capture itself has no per-model branches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UnknownArchitectureError


@dataclass(frozen=True)
class Architecture:
    """Where a model family keeps the parts the capture needs."""

    model_type: str
    """`config.model_type` this entry serves."""
    layers: str = "model.layers"
    """Dotted path from the CausalLM to the list of decoder blocks."""
    final_norm: str = "model.norm"
    """Dotted path to the norm applied before the unembedding."""
    attention: str = "self_attn"
    """Attribute of one decoder block that holds its attention module."""
    unembedding: str = "lm_head"
    """Dotted path to the output projection onto the vocabulary."""
    output_projection: str = "o_proj"
    """Attribute of the attention module that projects the concatenated head
    outputs back to the residual stream (its input holds head h's output in
    columns h*head_dim .. (h+1)*head_dim); head ablation edits that input."""
    mlp: str = "mlp"
    """Attribute of one decoder block that holds its MLP (`model.trace` sites)."""
    mlp_down: str | None = "down_proj"
    """Attribute of the MLP that projects its activations back to the residual
    stream; its input is the "mlp_act" site (act(gate) * up in a gated MLP,
    act(fc) in a plain one). None where the MLP has no single one (a mixture
    of experts)."""
    mlp_norm: str | None = "post_attention_layernorm"
    """Attribute of the norm before the MLP, whose input is the residual stream
    after attention ("post_attn_residual"); None where the block has no such
    point (parallel attention and MLP, as GPT-NeoX)."""
    n_heads: str = "num_attention_heads"
    """Config attribute: number of query heads."""
    n_kv_heads: str | None = "num_key_value_heads"
    """Config attribute: number of key/value heads (None: same as query heads)."""
    context_length: str = "max_position_embeddings"
    """Config attribute: the longest sequence the model accepts."""
    final_logit_softcap: str | None = None
    """Config attribute of the final logit softcapping, where the family has it."""
    attention_softcap: str | None = None
    """Config attribute of the attention-logit softcapping (informational: the
    value reaches the attention function as its `softcap` argument)."""
    attention_sinks: bool = False
    """Whether attention has learned sink logits (they arrive as `s_aux`)."""
    system_role: bool = True
    """Whether the family's usual chat template accepts a system turn. The
    rendering probes the actual template; this is the fallback."""


TABLE: dict[str, Architecture] = {
    arch.model_type: arch
    for arch in [
        Architecture("llama"),
        Architecture("mistral"),
        Architecture("qwen2"),
        Architecture("qwen3"),
        Architecture("phi3"),
        Architecture("gemma", system_role=False),
        Architecture(
            "gemma2",
            final_logit_softcap="final_logit_softcapping",
            attention_softcap="attn_logit_softcapping",
            mlp_norm="pre_feedforward_layernorm",
            system_role=False,
        ),
        Architecture(
            "gemma3_text",
            final_logit_softcap="final_logit_softcapping",
            attention_softcap="attn_logit_softcapping",
            mlp_norm="pre_feedforward_layernorm",
            system_role=False,
        ),
        Architecture(
            "gpt2",
            layers="transformer.h",
            final_norm="transformer.ln_f",
            attention="attn",
            output_projection="c_proj",
            mlp_down="c_proj",
            mlp_norm="ln_2",
            n_heads="n_head",
            n_kv_heads=None,
            context_length="n_positions",
        ),
        Architecture(
            "gpt_neox",
            layers="gpt_neox.layers",
            final_norm="gpt_neox.final_layer_norm",
            attention="attention",
            output_projection="dense",
            mlp_down="dense_4h_to_h",
            mlp_norm=None,
            n_kv_heads=None,
        ),
        Architecture("gpt_oss", attention_sinks=True, mlp_down=None),
    ]
}


def register_architecture(arch: Architecture) -> None:
    """Add or replace a table entry (for families not shipped here)."""
    TABLE[arch.model_type] = arch


def architecture_for(config: Any) -> Architecture:
    """The table entry for a model config, or a clear error saying how to add one."""
    model_type = getattr(config, "model_type", None)
    if model_type in TABLE:
        return TABLE[model_type]
    known = ", ".join(sorted(TABLE))
    raise UnknownArchitectureError(
        f"tealeaves-widgets has no architecture entry for model_type={model_type!r}; "
        f"known: {known}. Add one with tw.register_architecture(tw.Architecture("
        f"{model_type!r}, layers='model.layers', final_norm='model.norm', "
        "attention='self_attn', unembedding='lm_head', ...)) naming where this "
        "model keeps its decoder blocks, final norm, attention module and output "
        "projection (see tealeaves_widgets/architectures.py)."
    )


def get_path(root: Any, dotted: str) -> Any:
    """Follow a dotted attribute path such as "model.layers"."""
    obj = root
    for part in dotted.split("."):
        if not hasattr(obj, part):
            raise UnknownArchitectureError(
                f"The architecture entry for {type(root).__name__} names {dotted!r}, but "
                f"{type(obj).__name__} has no attribute {part!r}. Fix the entry for this "
                "model_type in tealeaves_widgets/architectures.py (or register a corrected "
                "one with tw.register_architecture)."
            )
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class ModelShape:
    """Sizes read off one model's config through its `Architecture` entry."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    context_length: int | None
    final_logit_softcap: float | None


def model_shape(arch: Architecture, config: Any, n_layers: int) -> ModelShape:
    """Read head counts, context length and softcapping from `config`."""
    n_heads = int(getattr(config, arch.n_heads))
    n_kv = getattr(config, arch.n_kv_heads, None) if arch.n_kv_heads else None
    context = getattr(config, arch.context_length, None)
    cap = getattr(config, arch.final_logit_softcap, None) if arch.final_logit_softcap else None
    return ModelShape(
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=int(n_kv) if n_kv else n_heads,
        context_length=int(context) if context else None,
        final_logit_softcap=float(cap) if cap else None,
    )
