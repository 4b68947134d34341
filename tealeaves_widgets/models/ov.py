"""OV-circuit logits of every head, without d_model x d_model matrices.

For each layer the input of the attention's q/k/v projections (the normed
residual stream) is read with a forward pre-hook on the attention module,
in one plain forward pass, at the chosen positions only. Per head h, with
kv = h // n_rep (GQA: n_rep = n_heads // n_kv_heads; query head h reads KV
head h // n_rep):

    out_h = W_O[:, h*d:(h+1)*d] @ (W_V[kv*d:(kv+1)*d] @ x + b_V[kv])

then the model's final norm is applied to out_h alone and the unembedding
rows of the candidate ids only give the logits (plus the unembedding's bias
where it has one; no final logit softcapping: scores compare raw logits).
The product is taken vector by vector (value: d x hidden, output: hidden x
d), so the (hidden x hidden) OV matrix W_O,h W_V,kv is never formed.

`ov_score` turns these into the OV copy score of the head atlas: per
example, the target's logit standardised over the candidates (z-score),
averaged over examples. Signed: > 0 the head's OV raises the target (copies
it), < 0 it suppresses it.

Where a family fuses its projections the value rows are cut out of the
fused weight (`VALUE_LAYOUTS`): phi3's `qkv_proj`, GPT-2's `c_attn`
(Conv1D, weight stored transposed) and GPT-NeoX's per-head interleaved
`query_key_value`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ArgumentError, ArgumentTypeError, CaptureError, SelectionError
from .architectures import get_path
from .lens import execution_device

if TYPE_CHECKING:
    from .model import Model

Weights = tuple[torch.Tensor, torch.Tensor | None]
"""(n_kv, head_dim, hidden) value weights and (n_kv, head_dim) bias or None."""


def _linear_weight(module: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(out, in) weight and (out,) bias of a Linear, or of a Conv1D (GPT-2,
    whose weight is stored (in, out))."""
    weight: torch.Tensor = module.weight
    bias: torch.Tensor | None = getattr(module, "bias", None)
    if isinstance(module, torch.nn.Linear):
        return weight, bias
    if hasattr(module, "nf"):  # transformers.pytorch_utils.Conv1D
        return weight.T, bias
    raise CaptureError(
        f"The OV logits need a Linear or Conv1D projection; got {type(module).__name__}. "
        "Register the architecture with a layout in tealeaves_widgets.models.ov.VALUE_LAYOUTS."
    )


def _split(weight: torch.Tensor, bias: torch.Tensor | None, n_kv: int, d: int) -> Weights:
    hidden = weight.shape[-1]
    return (
        weight.reshape(n_kv, d, hidden),
        None if bias is None else bias.reshape(n_kv, d),
    )


def _v_proj(attention: torch.nn.Module, n_heads: int, n_kv: int, d: int) -> Weights:
    weight, bias = _linear_weight(attention.v_proj)
    return _split(weight, bias, n_kv, d)


def _qkv_proj(attention: torch.nn.Module, n_heads: int, n_kv: int, d: int) -> Weights:
    # rows: queries (n_heads*d), keys (n_kv*d), values (n_kv*d)
    weight, bias = _linear_weight(attention.qkv_proj)
    start = (n_heads + n_kv) * d
    return _split(weight[start:], None if bias is None else bias[start:], n_kv, d)


def _c_attn(attention: torch.nn.Module, n_heads: int, n_kv: int, d: int) -> Weights:
    # GPT-2: output columns q | k | v, each n_heads*d wide
    weight, bias = _linear_weight(attention.c_attn)
    start = 2 * n_heads * d
    return _split(weight[start:], None if bias is None else bias[start:], n_kv, d)


def _query_key_value(attention: torch.nn.Module, n_heads: int, n_kv: int, d: int) -> Weights:
    # GPT-NeoX: rows grouped per head, each group q | k | v of d rows
    weight, bias = _linear_weight(attention.query_key_value)
    hidden = weight.shape[-1]
    w = weight.reshape(n_heads, 3, d, hidden)[:, 2]
    b = None if bias is None else bias.reshape(n_heads, 3, d)[:, 2]
    return w, b


VALUE_LAYOUTS: dict[str, Callable[[torch.nn.Module, int, int, int], Weights]] = {
    "v_proj": _v_proj,
    "qkv_proj": _qkv_proj,
    "c_attn": _c_attn,
    "query_key_value": _query_key_value,
}
"""Attribute of the attention module -> reader of its per-KV-head value
weights; the first attribute the module has is used."""


def value_weights(model: Model, layer: int) -> Weights:
    """(n_kv, head_dim, hidden) value weights and (n_kv, head_dim) bias (or
    None) of `layer`, float32."""
    attention = get_path(model.layers[layer], model.arch.attention)
    s = model.shape
    d = head_dim(model, layer)
    for name, read in VALUE_LAYOUTS.items():
        if hasattr(attention, name):
            w, b = read(attention, s.n_heads, s.n_kv_heads, d)
            return w.float(), None if b is None else b.float()
    raise CaptureError(
        f"{type(attention).__name__} has none of the value projections "
        f"{list(VALUE_LAYOUTS)}; the OV logits cannot read its value weights. Add a "
        "reader to tealeaves_widgets.models.ov.VALUE_LAYOUTS."
    )


def output_weights(model: Model, layer: int) -> torch.Tensor:
    """(hidden, n_heads * head_dim) output projection of `layer`, float32:
    column block h is head h's."""
    attention = get_path(model.layers[layer], model.arch.attention)
    weight, _ = _linear_weight(get_path(attention, model.arch.output_projection))
    return weight.float()


def head_dim(model: Model, layer: int) -> int:
    """Width of one head: the output projection's input / n_heads."""
    attention = get_path(model.layers[layer], model.arch.attention)
    weight, _ = _linear_weight(get_path(attention, model.arch.output_projection))
    return int(weight.shape[1]) // model.shape.n_heads


def _int_vector(values: object, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 0:
        array = array[None]
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ArgumentTypeError(
            f"{name} must be a non-empty 1-D sequence of integers; got "
            f"{type(values).__name__} of shape {array.shape}, dtype {array.dtype}."
        )
    return array.astype(np.int64)


def _vocab(model: Model) -> int:
    return int(model.unembedding.weight.shape[0])


def _check_ids(model: Model, values: object, name: str) -> np.ndarray:
    ids = _int_vector(values, name)
    vocab = _vocab(model)
    bad = ids[(ids < 0) | (ids >= vocab)]
    if bad.size:
        raise ArgumentError(
            f"{name} must be token ids of this model's vocabulary, 0..{vocab - 1}; got "
            f"{bad[:5].tolist()}. Take the ids from the model's tokenizer."
        )
    return ids


def _check_positions(values: object, n: int) -> np.ndarray:
    positions = _int_vector(values, "positions")
    bad = positions[(positions < 0) | (positions >= n)]
    if bad.size:
        raise SelectionError(
            f"positions must index the {n} tokens of ids, 0..{n - 1}; got "
            f"{bad[:5].tolist()}. Pass positions inside the sequence."
        )
    return positions


def _attention_inputs(model: Model, ids: np.ndarray, positions: np.ndarray) -> list[torch.Tensor]:
    """Per layer the (position, hidden) input of the attention module at
    `positions`, from one forward pass (a pre-hook on every attention module)."""
    n_layers = model.shape.n_layers
    kept: list[torch.Tensor | None] = [None] * n_layers
    handles = []

    def hook_for(layer: int) -> Callable:
        def pre(_module: Any, args: tuple, kwargs: dict) -> None:
            x = args[0] if args else kwargs["hidden_states"]
            kept[layer] = x[0, torch.as_tensor(positions, device=x.device)].detach()

        return pre

    for layer, block in enumerate(model.layers):
        attention = get_path(block, model.arch.attention)
        handles.append(attention.register_forward_pre_hook(hook_for(layer), with_kwargs=True))
    try:
        tensor = torch.as_tensor(ids, device=model.device)[None]
        model.hf_model(input_ids=tensor, **model._forward_kwargs)
    finally:
        for handle in handles:
            handle.remove()
    missing = [layer for layer, x in enumerate(kept) if x is None]
    if missing:
        raise CaptureError(
            f"The forward pass reached no attention module in layers {missing}; the "
            "architecture entry's attention path may be wrong (see register_architecture)."
        )
    return [x for x in kept if x is not None]


@torch.no_grad()
def ov_logits(
    model: Model,
    ids: np.ndarray,
    positions: np.ndarray,
    candidates: np.ndarray,
    *,
    kv_head: Callable[[int], int] | None = None,
) -> np.ndarray:
    """(layer, head, position, candidate) float32 logits of each head's OV
    output on the candidate ids, the head reading the attention input at each
    of `positions` of `ids` (one forward pass). See the module docstring.

    `kv_head` maps a query head to the KV head it reads; the default h //
    n_rep is the model's own (a different map is for tests only).
    """
    ids = _check_ids(model, ids, "ids")
    positions = _check_positions(positions, ids.size)
    candidates = _check_ids(model, candidates, "candidates")
    s = model.shape
    n_rep = s.n_heads // s.n_kv_heads
    kv_of = kv_head if kv_head is not None else (lambda h: h // n_rep)
    kv_index = [int(kv_of(h)) for h in range(s.n_heads)]
    if any(not 0 <= k < s.n_kv_heads for k in kv_index):
        raise ArgumentError(
            f"kv_head must map heads 0..{s.n_heads - 1} to KV heads 0..{s.n_kv_heads - 1}; "
            f"got {kv_index}."
        )
    inputs = _attention_inputs(model, ids, positions)
    device = execution_device(model.unembedding, model.hf_model)
    rows = model.unembedding.weight[torch.as_tensor(candidates, device=device)].float()
    bias = getattr(model.unembedding, "bias", None)
    picked_bias = None if bias is None else bias[torch.as_tensor(candidates, device=device)]
    norm_dtype = next(model.final_norm.parameters(), rows).dtype
    out = []
    for layer, x in enumerate(inputs):
        w_v, b_v = value_weights(model, layer)  # (kv, d, hidden), (kv, d)
        w_o = output_weights(model, layer)  # (hidden, head*d)
        d = w_v.shape[1]
        x = x.float().to(w_v.device)
        values = torch.einsum("kdh,ph->kpd", w_v, x)  # (kv, position, d)
        if b_v is not None:
            values = values + b_v[:, None, :]
        per_head = values[kv_index]  # (head, position, d)
        w_o_heads = w_o.reshape(w_o.shape[0], s.n_heads, d)  # (hidden, head, d)
        heads_out = torch.einsum("ohd,hpd->hpo", w_o_heads, per_head)
        normed = model.final_norm(heads_out.to(device, norm_dtype)).float()
        logits = normed @ rows.T  # (head, position, candidate)
        if picked_bias is not None:
            logits = logits + picked_bias.float()
        out.append(logits.cpu())
    return torch.stack(out).numpy()


Example = tuple[Sequence[int] | np.ndarray, int, int]
"""(ids, position, target_id): the head reads the attention input at
`position` of `ids`; `target_id` is the token it should copy."""


def ov_score(model: Model, examples: Sequence[Example], candidates: np.ndarray) -> np.ndarray:
    """(layer, head) float64 OV copy score: per example, the target's OV
    logit standardised over the candidates, z = (logit[target] - mean) / sd
    (population sd over the distinct ids of `candidates` plus the target),
    averaged over the examples. Positive: the head's OV raises the target;
    negative: it suppresses it. Examples sharing the same ids share one
    forward pass."""
    if isinstance(examples, (str, bytes)) or not isinstance(examples, Sequence) or not examples:
        raise ArgumentTypeError(
            "examples must be a non-empty list of (ids, position, target_id); got "
            f"{type(examples).__name__}."
        )
    cands = _check_ids(model, candidates, "candidates")
    groups: dict[tuple[int, ...], list[tuple[int, int, int]]] = {}
    for index, example in enumerate(examples):
        if not isinstance(example, (tuple, list)) or len(example) != 3:
            raise ArgumentTypeError(
                f"examples[{index}] must be (ids, position, target_id); got {example!r}."
            )
        ids, position, target = example
        key = tuple(int(i) for i in _int_vector(ids, f"examples[{index}] ids"))
        groups.setdefault(key, []).append((index, int(position), int(target)))
    s = model.shape
    total = np.zeros((s.n_layers, s.n_heads), np.float64)
    for key, members in groups.items():
        targets = _check_ids(model, [t for _, _, t in members], "target ids")
        pool = np.unique(np.concatenate([cands, targets]))  # one pass serves the group
        positions = np.array([p for _, p, _ in members], np.int64)
        logits = ov_logits(model, np.array(key), positions, pool).astype(np.float64)
        for column, target in enumerate(targets):
            own = np.unique(np.append(cands, target))  # this example's candidates
            if own.size < 2:
                raise ArgumentError(
                    "ov_score standardises over the candidates and needs at least 2 "
                    f"distinct ids with the target; got {own.tolist()}. Pass more candidates."
                )
            values = logits[:, :, column, np.searchsorted(pool, own)]
            mean, sd = values.mean(-1), values.std(-1)
            picked = logits[:, :, column, np.searchsorted(pool, target)]
            total += np.where(sd > 0, (picked - mean) / np.where(sd > 0, sd, 1.0), 0.0)
    return total / len(examples)


__all__ = ["VALUE_LAYOUTS", "head_dim", "output_weights", "ov_logits", "ov_score", "value_weights"]
