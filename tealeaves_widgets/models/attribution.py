"""`Model.attribute` and `Model.score`: gradients of a target's
log-probability with respect to the input embeddings, and next-token scores.

`attribute` runs one forward pass on the prompt followed by the target
(teacher forcing, the model's own attention implementation, no capture) from
input embeddings that require grad, and one backward pass of
`torch.autograd.grad` to those embeddings only (no parameter gradient is
accumulated). With `head_mask`, every head outside it is gated off: its slice
of the attention output projection's input is multiplied by 0, the gate
Causal Head Gating learns (arXiv 2505.13737).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..core.attribution import LOSSES, Attribution
from ..core.head_gates import HeadGates
from ..errors import ArgumentError, ArgumentTypeError
from .interventions import output_projections
from .lens import execution_device

if TYPE_CHECKING:
    from .model import Model


def target_ids(model: Model, target: object) -> list[int]:
    """The token ids of a target continuation (no special tokens added)."""
    if isinstance(target, str):
        if not target:
            raise ArgumentError(
                'target is empty; give the continuation to attribute, e.g. target=" Paris".'
            )
        ids = list(model.tokenizer(target, add_special_tokens=False)["input_ids"])
    elif isinstance(target, Sequence) and target and all(isinstance(i, int) for i in target):
        ids = list(target)  # type: ignore[arg-type]
    else:
        raise ArgumentTypeError(
            f"target must be a non-empty str (the continuation) or a list of token ids, got "
            f"{target!r}."
        )
    if not ids:
        raise ArgumentError(f"target {target!r} tokenizes to no token; give visible text.")
    vocab = model.hf_model.get_input_embeddings().weight.shape[0]
    bad = [i for i in ids if not 0 <= i < vocab]
    if bad:
        raise ArgumentError(f"target ids {bad} are outside the vocabulary 0..{vocab - 1}.")
    return ids


def check_head_mask(model: Model, head_mask: object) -> np.ndarray | None:
    """`head_mask` as a (layer, head) bool array of the heads kept, or None. A
    `tw.HeadGates` keeps its facilitating heads (attribution through them)."""
    if head_mask is None:
        return None
    if isinstance(head_mask, HeadGates):
        head_mask = head_mask.labels == "facilitating"
    shape = (model.shape.n_layers, model.shape.n_heads)
    mask = np.asarray(head_mask)
    if mask.shape != shape or mask.dtype != np.bool_:
        raise ArgumentError(
            f"head_mask must be a bool array of shape (layer, head) = {shape}, True for the "
            f"heads kept; got {mask.dtype} {mask.shape}."
        )
    if not mask.any():
        raise ArgumentError("head_mask keeps no head; keep at least one (True).")
    return mask


@contextlib.contextmanager
def gated_heads(model: Model, gates: torch.Tensor | None) -> Iterator[None]:
    """Multiply each head's slice of the output projection's input by its gate
    ((layer, head) tensor; None: nothing), through pre-hooks removed on exit."""
    if gates is None:
        yield
        return
    n_heads = model.shape.n_heads
    handles = []

    def hook_for(layer: int):
        def hook(_module, args):
            x = args[0]
            shape = x.shape
            heads = x.reshape(*shape[:-1], n_heads, shape[-1] // n_heads)
            gate = gates[layer].to(device=x.device, dtype=x.dtype)
            return ((heads * gate[:, None]).reshape(shape), *args[1:])

        return hook

    try:
        for layer, projection in enumerate(output_projections(model.hf_model, model.arch)):
            handles.append(projection.register_forward_pre_hook(hook_for(layer)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def target_log_prob(logits: torch.Tensor, start: int, ids: list[int], loss: str) -> torch.Tensor:
    """The summed log-probability of `ids` at positions start-1 ... from (pos, vocab) logits."""
    count = len(ids) if loss == "full_target" else 1
    rows = torch.log_softmax(logits[start - 1 : start - 1 + count].float(), dim=-1)
    picked = torch.as_tensor(ids[:count], device=rows.device)
    return rows.gather(1, picked[:, None]).sum()


def attribute(
    model: Model,
    case: Any,
    target: Any,
    regions: Any = None,
    *,
    head_mask: Any = None,
    loss: str = "full_target",
) -> Attribution:
    """See `Model.attribute`."""
    from .model import as_case

    if loss not in LOSSES:
        raise ArgumentError(f"loss must be one of {list(LOSSES)}, got {loss!r}.")
    prepared = model._prepare(as_case(case), regions)
    ids = target_ids(model, target)
    mask = check_head_mask(model, head_mask)
    prompt = list(prepared.rendered.token_ids)
    full = torch.as_tensor(prompt + ids, device=model.device)[None]
    embed = model.hf_model.get_input_embeddings()
    with torch.no_grad():
        embeds = embed(full).detach()
    embeds.requires_grad_(True)
    gates = None if mask is None else torch.as_tensor(mask, dtype=torch.float32)
    with torch.enable_grad(), gated_heads(model, gates):
        # the model's own logits (transformers applies a final softcap in forward)
        logits = model.hf_model(inputs_embeds=embeds, use_cache=False).logits[0]
        value = target_log_prob(logits, len(prompt), ids, loss)
        (grad,) = torch.autograd.grad(value, embeds)
    grad64 = grad[0, : len(prompt)].double().cpu()
    inputs = embeds[0, : len(prompt)].detach().double().cpu()
    resolved = prepared.resolved
    return Attribution(
        tokens=list(prepared.rendered.tokens),
        token_ids=np.asarray(prompt, dtype=np.int64),
        regions=dict(resolved.regions),
        target=target if isinstance(target, str) else model.tokenizer.decode(ids),
        target_tokens=[model.tokenizer.decode([i]) for i in ids],
        target_ids=np.asarray(ids, dtype=np.int64),
        loss=loss,
        log_prob=float(value.detach()),
        grad_norm=grad64.norm(dim=-1).numpy(),
        grad_x_input=(grad64 * inputs).sum(dim=-1).numpy(),
        model_info=model.info(),
        head_mask=mask,
    )


@torch.no_grad()
def score(
    model: Model, cases: Sequence[Any], temperature: float = 1.0, targets: Any = None, k: int = 5
) -> pd.DataFrame:
    """See `Model.score`."""
    from .model import as_case

    if isinstance(cases, (str, dict)) or not isinstance(cases, Sequence) or not cases:
        raise ArgumentTypeError("cases must be a non-empty list of cases; wrap one case in a list.")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not temperature > 0
    ):
        raise ArgumentError(f"temperature must be a number > 0, got {temperature!r}.")
    if targets is not None and (isinstance(targets, str) or len(targets) != len(cases)):
        raise ArgumentError(
            f"targets must be a list with one continuation per case ({len(cases)}), or None."
        )
    rows = []
    device = execution_device(model.unembedding, model.hf_model)
    for i, case in enumerate(cases):
        case = as_case(case)
        prompt = list(model.render(case).token_ids)
        ids = [] if targets is None else target_ids(model, targets[i])
        full = torch.as_tensor(prompt + ids, device=model.device)[None]
        logits = model.hf_model(input_ids=full, use_cache=False).logits[0].float().to(device)
        logits = logits / float(temperature)
        log_probs = torch.log_softmax(logits, dim=-1)
        last = log_probs[len(prompt) - 1]
        top = torch.topk(last, min(k, last.shape[0]))
        row: dict[str, Any] = {
            "case": case.name or f"case{i}",
            "top_token": model.tokenizer.decode([int(top.indices[0])]),
            "top_id": int(top.indices[0]),
            "top_prob": float(top.values[0].exp()),
            "entropy": float(-(last.exp() * last).sum()),
            "top_k": [model.tokenizer.decode([int(j)]) for j in top.indices],
            "top_k_probs": top.values.exp().tolist(),
        }
        if ids:
            picked = log_probs[len(prompt) - 1 : len(prompt) - 1 + len(ids)]
            each = picked.gather(1, torch.as_tensor(ids, device=device)[:, None])[:, 0]
            row.update(
                target=targets[i],  # type: ignore[index]
                target_log_prob=float(each.sum()),
                target_token_log_probs=each.tolist(),
            )
        rows.append(row)
    return pd.DataFrame(rows)
