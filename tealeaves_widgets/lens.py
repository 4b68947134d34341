"""The logit lens: what the residual stream after each block predicts.

The residual at the query positions of every layer is stacked and passed
through the model's final norm and unembedding in one batched call (and the
final logit softcapping where the model has one). The last layer is the
model's own output distribution. Torch becomes numpy here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

LENS_ELEMENTS_PER_CHUNK = 4 * 1024 * 1024
"""Logits computed at once (layer x query x vocab); bounds the lens's memory
for large vocabularies and many layers."""


@dataclass(frozen=True)
class LensArrays:
    """Numpy results of `read_lens`, shapes as in `tealeaves_widgets.run.Lens`."""

    top_ids: NDArray[np.int64]
    top_probs: NDArray[np.float32]
    entropy: NDArray[np.float32]
    kl_to_final: NDArray[np.float32]
    tracked_ranks: NDArray[np.int64]
    tracked_probs: NDArray[np.float32]


def lens_logits(
    residuals: torch.Tensor,
    final_norm: torch.nn.Module,
    unembedding: torch.nn.Module,
    softcap: float | None,
) -> torch.Tensor:
    """(layer, query, hidden) residuals -> (layer, query, vocab) float32 logits."""
    device = next(unembedding.parameters()).device
    hidden = final_norm(residuals.to(device))
    logits = unembedding(hidden).float()
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


@torch.no_grad()
def read_lens(
    residuals: torch.Tensor,
    final_norm: torch.nn.Module,
    unembedding: torch.nn.Module,
    softcap: float | None,
    tracked_ids: NDArray[np.int64],
    top_k: int,
) -> LensArrays:
    """Top-k, entropy, KL to the final layer and tracked-token rank/probability.

    residuals: (layer, query, hidden). Layers are processed in chunks so that
    at most `LENS_ELEMENTS_PER_CHUNK` logits exist at once; the final layer's
    log-probabilities are kept for the KL.
    """
    n_layers, n_queries, _ = residuals.shape
    vocab = unembedding.weight.shape[0]
    per_chunk = max(1, LENS_ELEMENTS_PER_CHUNK // max(1, n_queries * vocab))
    final = torch.log_softmax(lens_logits(residuals[-1:], final_norm, unembedding, softcap), dim=-1)
    tracked = torch.as_tensor(tracked_ids, dtype=torch.long, device=final.device)
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, n_layers, per_chunk):
        chunk = residuals[start : start + per_chunk]
        log_probs = torch.log_softmax(lens_logits(chunk, final_norm, unembedding, softcap), dim=-1)
        probs = log_probs.exp()
        top_probs, top_ids = probs.topk(min(top_k, vocab), dim=-1)
        entropy = -(probs * log_probs).sum(-1)
        final_probs = final.exp()
        kl = (final_probs * (final - log_probs)).sum(-1)
        tracked_logp = log_probs[..., tracked]  # (layer, query, tracked)
        ranks = (log_probs[..., None, :] > tracked_logp[..., :, None]).sum(-1) + 1
        parts.append((top_ids, top_probs, entropy, kl, ranks, tracked_logp.exp()))
    cat = [torch.cat([p[i] for p in parts]).cpu() for i in range(6)]
    return LensArrays(
        top_ids=cat[0].numpy().astype(np.int64),
        top_probs=cat[1].numpy().astype(np.float32),
        entropy=cat[2].numpy().astype(np.float32),
        kl_to_final=cat[3].clamp_min(0).numpy().astype(np.float32),
        tracked_ranks=cat[4].numpy().astype(np.int64),
        tracked_probs=cat[5].numpy().astype(np.float32),
    )
