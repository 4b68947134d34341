"""Gradient attribution of a target continuation to the prompt's tokens and
regions: `Attribution`, the result of `Model.attribute` (numpy and pandas).

The gradient is that of the target's log-probability (summed over its
tokens, or its first token only) with respect to the input embeddings. Per
prompt token: its L2 norm (`grad_norm`, how much the token's embedding can
move the answer) and the gradient times the embedding, summed over the
hidden dimension (`grad_x_input`, signed: a first-order estimate of what
replacing the embedding by zero would change). Per region: the sum of the
tokens' norms and its share of all prompt tokens' norms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from . import seam
from .run import RegionInfo

LOSSES = ("full_target", "first_token")


@dataclass(frozen=True, repr=False)
class Attribution:
    """Where a target continuation's log-probability comes from, by gradient."""

    tokens: list[str]
    """The prompt's tokens (the target's tokens are not attributed)."""
    token_ids: NDArray[np.int64]
    regions: dict[str, RegionInfo]
    target: str
    target_tokens: list[str]
    target_ids: NDArray[np.int64]
    loss: str
    """"full_target" (every target token's log-prob, summed) or "first_token"."""
    log_prob: float
    """The attributed log-probability (natural log)."""
    grad_norm: NDArray[np.float64]
    """(token,) L2 norm of the gradient at each prompt token's embedding."""
    grad_x_input: NDArray[np.float64]
    """(token,) gradient times embedding, summed over the hidden dimension."""
    model_info: dict = field(default_factory=dict)
    head_mask: NDArray[np.bool_] | None = None
    """(layer, head) the heads kept; the others were gated off (None: all kept)."""

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def token_table(self) -> pd.DataFrame:
        """One row per prompt token: position, text, region (innermost), grad_norm, grad_x_input."""
        owner = innermost_region(self.regions, self.n_tokens)
        return pd.DataFrame(
            {
                "position": np.arange(self.n_tokens),
                "token": self.tokens,
                "region": owner,
                "grad_norm": self.grad_norm,
                "grad_x_input": self.grad_x_input,
            }
        )

    def region_table(self) -> pd.DataFrame:
        """One row per region: its tokens' summed grad_norm, that sum's share of
        every prompt token's, the mean per token, and the summed grad_x_input.
        Nested regions count inside their parents too (as `Run.curves` "raw")."""
        total = float(self.grad_norm.sum())
        rows = []
        for name, info in self.regions.items():
            index = np.asarray(info.token_indices, dtype=np.int64)
            mass = float(self.grad_norm[index].sum()) if index.size else 0.0
            rows.append(
                {
                    "region": name,
                    "tokens": int(index.size),
                    "grad_norm": mass,
                    "share": mass / total if total > 0 else float("nan"),
                    "per_token": mass / index.size if index.size else float("nan"),
                    "grad_x_input": float(self.grad_x_input[index].sum()) if index.size else 0.0,
                }
            )
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        top = self.region_table().sort_values("grad_norm", ascending=False).head(4)
        regions = ", ".join(f"{r.region} {r.share:.0%}" for r in top.itertuples())
        gated = (
            "" if self.head_mask is None else f", {int((~self.head_mask).sum())} heads gated off"
        )
        return (
            f"Attribution({model}: log p({self.target!r}) = {self.log_prob:.4f} ({self.loss}"
            f"{gated}); {self.n_tokens} prompt tokens; by region: {regions})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel an attribution displays as `tw.AttributionView(attribution)`."""
        return seam.display_bundle(self, include, exclude)


def innermost_region(regions: dict[str, RegionInfo], n_tokens: int) -> list[str]:
    """Per token, the deepest region holding it ("" for none); regions come
    parents first, so the last one to claim a token is its innermost."""
    owner = [""] * n_tokens
    for name, info in regions.items():
        for i in np.asarray(info.token_indices, dtype=np.int64):
            owner[int(i)] = name
    return owner
