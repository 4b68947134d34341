"""A query position read after the capture, from the pass's kept KV cache.

A capture that keeps its cache (`Model.capture(..., keep_cache=True)`, the
default of `Model.explore`) hands the model a `DynamicCache` of plain
full-length layers, so after the pass it holds every layer's keys and values
for every token: 2 x layers x tokens x kv heads x head dim x bytes of the
dtype (`KeptCache.nbytes`). Sliding-window layers get a full layer too (the
model's own cache would keep only the window): their mask still applies the
window, and any position can then be read.

The attention row and residual stream of a position p are those of the token
at p given the keys and values of tokens 0..p. A decode step feeds token p at
position p on the kept cache cut to its first p tokens (views: the kept
tensors are never changed nor copied) with the capture's hooks on; that gives
the row of p over 0..p for every layer and head, and the residual at p for
the lens. This is what a fresh capture with p among its queries computes, up
to float noise of the matmul shapes (tests/integration/test_query_at.py:
1e-5 in float32).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer

from .architectures import Architecture
from .capture import capturing


@dataclass(frozen=True)
class KeptCache:
    """The keys and values of one captured pass, per layer, for one prompt."""

    token_ids: NDArray[np.int64]
    """(pos,) the prompt the cache was computed on."""
    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    """Per layer (keys, values), each (1, kv_head, pos, head_dim), on the layer's device."""

    @property
    def nbytes(self) -> int:
        """Memory the cache holds."""
        return sum(k.nbytes + v.nbytes for k, v in self.layers)

    def holds(self, token_ids: Sequence[int] | NDArray) -> bool:
        """Whether this cache was computed on exactly these tokens."""
        ids = np.asarray(token_ids)
        return ids.shape == self.token_ids.shape and bool(np.array_equal(ids, self.token_ids))

    def before(self, position: int) -> DynamicCache:
        """A cache of the first `position` tokens for the decode step of token
        `position`: views of the kept tensors, nothing copied (`_Prefix`)."""
        cache = DynamicCache()
        cache.layers.extend(_Prefix(k, v, position) for k, v in self.layers)
        return cache


class _Prefix(DynamicLayer):
    """A cache layer of tokens 0..position-1 of the kept pass, for the decode
    step of token `position`. Attention there reads the kept keys and values
    of tokens 0..position, as views: the step's own for token `position` equal
    the kept ones up to float noise (the same token on the same prefix), so
    they are not concatenated in, which would copy the whole prefix per layer
    (with those copies, a step at 512 tokens took 1.9 s instead of 0.5 s on a
    loaded 2-core machine, most of it in torch.cat)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, position: int) -> None:
        super().__init__()
        self.keys, self.values = keys[:, :, :position], values[:, :, :position]
        self._through = keys[:, :, : position + 1], values[:, :, : position + 1]
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        return self._through


def new_cache() -> DynamicCache:
    """An empty cache whose layers are all full-length (`DynamicLayer`), built
    as the pass runs: sliding-window layers keep every token too."""
    return DynamicCache()


def cache_keyword(hf_model: PreTrainedModel) -> str:
    """The forward argument that takes the cache: "cache" (transformers >= 5.24)
    or "past_key_values" (earlier)."""
    parameters = inspect.signature(hf_model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def keep(cache: DynamicCache, token_ids: NDArray[np.int64], n_layers: int) -> KeptCache | None:
    """The filled `cache` as a `KeptCache`, or None when the model did not fill
    it as a plain full-length cache of every layer and token (an architecture
    with another cache layout: a later click then takes a forward pass)."""
    layers = getattr(cache, "layers", [])
    if len(layers) != n_layers or any(type(layer) is not DynamicLayer for layer in layers):
        return None
    kept = tuple((layer.keys, layer.values) for layer in layers)
    n_tokens = len(token_ids)
    for keys, values in kept:
        if keys is None or values is None or not keys.shape[-2] == values.shape[-2] == n_tokens:
            return None
    return KeptCache(token_ids=np.asarray(token_ids, dtype=np.int64).copy(), layers=kept)


@torch.no_grad()
def decode_step(
    hf_model: PreTrainedModel,
    arch: Architecture,
    kept: KeptCache,
    position: int,
    device: torch.device,
    forward_kwargs: dict,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token `position` fed on the kept cache cut before it, captured.

    Returns its (layer, head, position + 1) float32 attention rows and its
    (layer, 1, hidden) residuals."""
    token = torch.as_tensor(kept.token_ids[position : position + 1], device=device)[None]
    kwargs = {
        **forward_kwargs,
        "use_cache": True,
        cache_keyword(hf_model): kept.before(position),
        "position_ids": torch.tensor([[position]], device=device),
    }
    with capturing(hf_model, arch, torch.zeros((1, 1), dtype=torch.long)) as rec:
        hf_model(input_ids=token, **kwargs)
    rows = torch.stack([r[0, :, 0].to("cpu") for r in rec.all_rows()])
    residuals = rec.all_residuals()
    device0 = residuals[0].device
    return rows, torch.stack([r[0].to(device0) for r in residuals])
