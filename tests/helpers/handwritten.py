"""A llama-family forward pass written out by hand (fp32, no transformers
code on the way): the independent computation the intervention tests check
`Model.ablate` against.

It reads only the weights and the config: RMSNorm, rotary embedding
(default rope), attention with grouped KV heads expanded to one per query
head, SwiGLU MLP, the final norm and the unembedding. Interventions are
applied where they are defined, on this forward's own tensors:

- `zero_heads`: layer -> [(head, positions)]: head h's columns of the output
  projection's input set to 0 at those query positions;
- `zero_values`: layer -> [(heads or None, positions)]: the expanded value
  vectors of those query heads (None: all) at those key positions set to 0;
- `hidden_keys`: key positions no query but their own token may attend to.
"""

from __future__ import annotations

import math

import torch


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """x (head, pos, dim) rotated by position, the default (llama) rope."""
    n, dim = x.shape[1], x.shape[2]
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    angles = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    cos, sin = emb.cos().float(), emb.sin().float()
    half = dim // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def _linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    out = x @ layer.weight.T
    return out if layer.bias is None else out + layer.bias


@torch.no_grad()
def llama_logits(hf_model, ids: list[int], **interventions) -> torch.Tensor:
    """(pos, vocab) float32 logits of a llama-family model (llama, qwen2)."""
    embeds = hf_model.model.embed_tokens.weight[torch.as_tensor(ids)].float()
    return llama_forward(hf_model, embeds, **interventions)


def llama_forward(
    hf_model,
    embeds: torch.Tensor,
    *,
    zero_heads: dict[int, list[tuple[int, list[int]]]] | None = None,
    zero_values: dict[int, list[tuple[list[int] | None, list[int]]]] | None = None,
    hidden_keys: list[int] | None = None,
    replace_heads: dict[int, list[tuple[int, list[int], torch.Tensor]]] | None = None,
) -> torch.Tensor:
    """(pos, vocab) float32 logits from (pos, hidden) input embeddings;
    differentiable (autograd sees every step)."""
    config = hf_model.config
    n_heads, n_kv = config.num_attention_heads, config.num_key_value_heads
    dim = config.head_dim
    rope = getattr(config, "rope_parameters", None) or {}
    theta = float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))
    eps = config.rms_norm_eps
    inner = hf_model.model
    x = embeds
    n = x.shape[0]
    allowed = torch.ones(n, n).tril().bool()
    if hidden_keys:
        hide = torch.zeros(n, dtype=torch.bool)
        hide[hidden_keys] = True
        allowed &= ~(hide[None, :] & ~torch.eye(n, dtype=torch.bool))
    for index, layer in enumerate(inner.layers):
        attn = layer.self_attn
        h = _rms(x, layer.input_layernorm.weight, eps)
        q = _linear(attn.q_proj, h).view(n, n_heads, dim).transpose(0, 1)
        k = _linear(attn.k_proj, h).view(n, n_kv, dim).transpose(0, 1)
        v = _linear(attn.v_proj, h).view(n, n_kv, dim).transpose(0, 1)
        q, k = _rope(q, theta), _rope(k, theta)
        groups = n_heads // n_kv
        k = torch.stack([k[head // groups] for head in range(n_heads)])
        v = torch.stack([v[head // groups] for head in range(n_heads)]).clone()
        for heads, positions in (zero_values or {}).get(index, []):
            for head in range(n_heads) if heads is None else heads:
                v[head, positions] = 0
        scores = q @ k.transpose(1, 2) / math.sqrt(dim)
        scores = scores.masked_fill(~allowed, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v  # (head, pos, dim)
        o_in = out.transpose(0, 1).reshape(n, n_heads * dim).clone()
        for head, positions in (zero_heads or {}).get(index, []):
            o_in[positions, head * dim : (head + 1) * dim] = 0
        for head, positions, mean in (replace_heads or {}).get(index, []):
            o_in[positions, head * dim : (head + 1) * dim] = mean
        x = x + _linear(attn.o_proj, o_in)
        h = _rms(x, layer.post_attention_layernorm.weight, eps)
        mlp = layer.mlp
        gate = torch.nn.functional.silu(_linear(mlp.gate_proj, h))
        x = x + _linear(mlp.down_proj, gate * _linear(mlp.up_proj, h))
    x = _rms(x, inner.norm.weight, eps)
    return x @ hf_model.lm_head.weight.T
