"""Carrying out interventions (`core.conditions`) during a captured forward pass.

Two places are edited, nothing else:

- Head ablation: a forward pre-hook on each affected layer's output
  projection (`Architecture.output_projection`, e.g. `o_proj`) overwrites
  head h's columns h*head_dim .. (h+1)*head_dim of its input at the chosen
  query positions, with 0 or with the head's mean over a reference set.
  Weights are never touched: zeroing `v_proj` rows would ablate a whole KV
  group under grouped-query attention.
- Values and masks: the capture's attention function (`models.capture`)
  calls `edit` with a layer's key, value and mask before it computes. Value
  ablation for every head zeroes `value` at the key positions. For chosen
  query heads, the layer's KV heads are expanded to one per query head (query
  head h reads KV head h // n_rep) and only head h's copy is zeroed; the
  attention then runs on the expanded tensors through a stand-in module whose
  `num_key_value_groups` is 1. A "mask" knockout turns the mask into a
  boolean one that hides the region's keys from every query but their own
  token, so attention renormalises over the rest.

Hooks are removed on exit, also after an error (`intervening`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.conditions import (
    Condition,
    HeadAblation,
    RegionKnockout,
    ValueAblation,
    resolve_positions,
)
from ..errors import ArgumentError
from .architectures import Architecture, get_path
from .capture import _allowed_mask


@dataclass
class Plan:
    """One condition made concrete on one prompt: token indices per layer."""

    n_layers: int
    heads: dict[int, list[tuple[int, np.ndarray, str]]] = field(default_factory=dict)
    """layer -> [(head, query positions, "zero" | "mean")]."""
    values: dict[int, list[tuple[tuple[int, ...] | None, np.ndarray]]] = field(default_factory=dict)
    """layer -> [(query heads or None for all, key positions)]."""
    hidden_keys: np.ndarray | None = None
    """Key positions hidden from the other queries in every layer (mask knockout)."""

    @property
    def edits_attention(self) -> bool:
        return bool(self.values) or self.hidden_keys is not None


def plan_condition(
    condition: Condition, t: int, n_tokens: int, n_layers: int, regions: dict[str, np.ndarray]
) -> Plan:
    """The token indices `condition` touches in a prompt of `n_tokens` tokens
    with query position `t`; `regions` maps a region's name to its tokens."""
    plan = Plan(n_layers)
    hidden: list[np.ndarray] = []
    for item in condition.interventions:
        what = f"Condition {condition.name!r}, {type(item).__name__}"
        if isinstance(item, HeadAblation):
            positions = resolve_positions(item.positions, t, n_tokens, what)  # type: ignore[arg-type]
            plan.heads.setdefault(int(item.layer), []).append((item.head, positions, item.mode))
        elif isinstance(item, ValueAblation):
            positions = resolve_positions(item.positions, t, n_tokens, what)  # type: ignore[arg-type]
            layers = range(n_layers) if item.layer == "all" else [int(item.layer)]
            for layer in layers:
                plan.values.setdefault(layer, []).append((item.heads, positions))
        elif isinstance(item, RegionKnockout):
            tokens = np.asarray(regions[item.region], dtype=np.int64)
            if tokens.size == 0:
                raise ArgumentError(
                    f"{what}: region {item.region!r} holds no token; nothing to knock out."
                )
            if item.mode == "values":
                for layer in range(n_layers):
                    plan.values.setdefault(layer, []).append((None, tokens))
            else:
                hidden.append(tokens)
    if hidden:
        plan.hidden_keys = np.unique(np.concatenate(hidden))
    return plan


class _Ungrouped:
    """A layer's attention module as seen by an attention function running
    on KV heads already expanded to one per query head: every attribute is
    the module's, but `num_key_value_groups` is 1."""

    num_key_value_groups = 1

    def __init__(self, module: torch.nn.Module) -> None:
        self.tealeaves_wrapped = module

    def __getattr__(self, name: str):
        return getattr(self.tealeaves_wrapped, name)


def _expand_kv(tensor: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(batch, kv_head, pos, dim) -> (batch, head, pos, dim): query head h
    reads KV head h // n_rep."""
    n_rep = n_heads // tensor.shape[1]
    return tensor.repeat_interleave(n_rep, dim=1) if n_rep > 1 else tensor


def attention_edit(plan: Plan, n_heads: int):
    """The `edit` the capture's attention function calls for `plan`."""
    hidden = None if plan.hidden_keys is None else torch.as_tensor(plan.hidden_keys)

    def edit(module, layer, query, key, value, attention_mask):
        edits = plan.values.get(layer, [])
        if any(heads is not None for heads, _ in edits):
            key, value = _expand_kv(key, n_heads), _expand_kv(value, n_heads).clone()
            module = _Ungrouped(module)
        elif edits:
            value = value.clone()
        for heads, positions in edits:
            index = torch.as_tensor(positions, device=value.device)
            if heads is None:
                value[:, :, index] = 0
            else:
                for head in heads:
                    value[:, head, index] = 0
        if hidden is not None:
            attention_mask = _hide_keys(
                attention_mask, hidden, query.shape[2], key.shape[2], key.device
            )
        return module, key, value, attention_mask

    return edit


def _hide_keys(
    attention_mask: torch.Tensor | None,
    hidden: torch.Tensor,
    q_len: int,
    kv_len: int,
    device: torch.device,
) -> torch.Tensor:
    """A boolean mask (True = may attend) with the `hidden` keys removed from
    every query but the key's own token."""
    allowed = _allowed_mask(attention_mask, q_len, kv_len, device)
    keys = torch.arange(kv_len, device=device)
    is_hidden = torch.zeros(kv_len, dtype=torch.bool, device=device)
    is_hidden[hidden.to(device)] = True
    own = (torch.arange(q_len, device=device) + (kv_len - q_len))[:, None] == keys[None, :]
    return allowed & ~(is_hidden[None, :] & ~own)[None, None]


def output_projections(model: torch.nn.Module, arch: Architecture) -> list[torch.nn.Module]:
    """Each layer's output projection (whose input holds the heads' outputs)."""
    return [
        get_path(get_path(block, arch.attention), arch.output_projection)
        for block in get_path(model, arch.layers)
    ]


@contextlib.contextmanager
def head_hooks(
    model: torch.nn.Module, arch: Architecture, plan: Plan, n_heads: int, means: np.ndarray | None
) -> Iterator[None]:
    """Pre-hooks on the output projections of the layers `plan` ablates heads
    in, removed on exit. `means` is (layer, head, head_dim), for mode "mean"."""
    projections = output_projections(model, arch)
    handles = []

    def hook_for(layer: int):
        edits = plan.heads[layer]

        def hook(_module, args):
            x = args[0]
            head_dim = x.shape[-1] // n_heads
            x = x.clone()
            for head, positions, mode in edits:
                columns = slice(head * head_dim, (head + 1) * head_dim)
                index = torch.as_tensor(positions, device=x.device)
                if mode == "zero":
                    x[:, index, columns] = 0
                else:
                    assert means is not None  # checked by Model.ablate
                    mean = torch.as_tensor(means[layer, head], dtype=x.dtype, device=x.device)
                    x[:, index, columns] = mean
            return (x, *args[1:])

        return hook

    try:
        for layer in plan.heads:
            handles.append(projections[layer].register_forward_pre_hook(hook_for(layer)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def intervening(
    model: torch.nn.Module,
    arch: Architecture,
    plan: Plan | None,
    n_heads: int,
    means: np.ndarray | None = None,
) -> Iterator[Callable | None]:
    """`plan` in force for the block: its head hooks on, and the attention
    `edit` to hand the capture yielded (None when nothing is edited there)."""
    if plan is None:
        yield None
        return
    with contextlib.ExitStack() as stack:
        if plan.heads:
            stack.enter_context(head_hooks(model, arch, plan, n_heads, means))
        yield attention_edit(plan, n_heads) if plan.edits_attention else None


@torch.no_grad()
def head_output_means(
    model: torch.nn.Module,
    arch: Architecture,
    n_heads: int,
    batches: Sequence[tuple[torch.Tensor, np.ndarray | None]],
    forward_kwargs: dict,
) -> np.ndarray:
    """(layer, head, head_dim) float64 mean of each head's output (its slice
    of the output projection's input) over the given token ids and positions
    (None: every position), one forward pass per sequence."""
    projections = output_projections(model, arch)
    sums: list[torch.Tensor | None] = [None] * len(projections)
    count = 0
    current: dict[str, np.ndarray | None] = {"positions": None}

    def hook_for(layer: int):
        def hook(_module, args):
            x = args[0][0].double()  # (pos, heads * head_dim)
            picked = current["positions"]
            if picked is not None:
                x = x[torch.as_tensor(picked, device=x.device)]
            total = x.sum(dim=0).cpu()
            sums[layer] = total if sums[layer] is None else sums[layer] + total

        return hook

    handles = [p.register_forward_pre_hook(hook_for(i)) for i, p in enumerate(projections)]
    try:
        for ids, positions in batches:
            current["positions"] = positions
            model(input_ids=ids, **forward_kwargs)
            count += ids.shape[1] if positions is None else len(positions)
    finally:
        for handle in handles:
            handle.remove()
    stacked = torch.stack([s for s in sums if s is not None]) / count  # (layer, heads*dim)
    return stacked.reshape(len(projections), n_heads, -1).numpy()
