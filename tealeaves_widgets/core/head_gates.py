"""Causal Head Gating (Nam et al., arXiv 2505.13737): `HeadGates`, the result
of `Model.fit_head_gates` (numpy and pandas).

Every head's output is multiplied by a gate g = sigmoid(theta) while the
model's weights stay frozen, and the gates are fitted to the task's loss
(the targets' negative log-likelihood) in three phases, as in the paper:

1. plain: the loss alone, from gates near 1;
2. retention: from the plain fit, loss + lambda * sum(1 - g): every gate is
   pushed open, so a gate that still closes is one whose head hurts the task;
3. removal: from the plain fit, loss + lambda * sum(g): every gate is pushed
   shut, so a gate that stays open is one the task needs.

The taxonomy reads the last two (`threshold`, default 0.5):

- facilitating: open under removal (g_removal >= threshold): the task needs it;
- interfering: shut under retention (g_retention < threshold): it hurts the task;
- irrelevant: open under retention and shut under removal: either will do.

inteprelens reads the signs the other way round (its `necessary_heads()`
names nearly every head of a tiny model); the raw gates are kept here so the
reading can be checked (`gates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from . import seam

PHASES = ("plain", "retention", "removal")
LABELS = ("facilitating", "interfering", "irrelevant")


def classify(retention: NDArray, removal: NDArray, threshold: float = 0.5) -> NDArray[np.str_]:
    """(layer, head) labels from the retention and removal gates (see the module docstring)."""
    labels = np.full(np.shape(retention), "irrelevant", dtype="<U12")
    labels[np.asarray(retention) < threshold] = "interfering"
    labels[np.asarray(removal) >= threshold] = "facilitating"
    return labels


@dataclass(frozen=True, repr=False)
class HeadGates:
    """Fitted gates of every head, per phase, and the losses along the way."""

    gates: dict[str, NDArray[np.float64]]
    """Phase -> (layer, head) gate values sigmoid(theta) at the phase's end."""
    losses: dict[str, NDArray[np.float64]]
    """Phase -> (step,) the task loss (mean target NLL) at each update step."""
    base_loss: float
    """The task loss with every gate at 1 (the unmodified model)."""
    strength: float
    """lambda of the retention and removal terms."""
    threshold: float = 0.5
    model_info: dict | None = None

    @property
    def labels(self) -> NDArray[np.str_]:
        """(layer, head) "facilitating", "interfering" or "irrelevant"."""
        return classify(self.gates["retention"], self.gates["removal"], self.threshold)

    def table(self) -> pd.DataFrame:
        """One row per head: its gate in each phase and its label."""
        n_layers, n_heads = self.gates["plain"].shape
        layer, head = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
        return pd.DataFrame(
            {
                "layer": layer.ravel(),
                "head": head.ravel(),
                **{phase: self.gates[phase].ravel() for phase in PHASES},
                "label": self.labels.ravel(),
            }
        )

    def heads(self, label: str) -> list[tuple[int, int]]:
        """(layer, head) of every head with `label`."""
        if label not in LABELS:
            from ..errors import ArgumentError

            raise ArgumentError(f"label must be one of {list(LABELS)}, got {label!r}.")
        layers, heads = np.nonzero(self.labels == label)
        return [(int(layer), int(head)) for layer, head in zip(layers, heads, strict=True)]

    def __repr__(self) -> str:
        model = (self.model_info or {}).get("model_id", "unknown model")
        counts = {label: int((self.labels == label).sum()) for label in LABELS}
        words = ", ".join(f"{n} {label}" for label, n in counts.items())
        final = {
            phase: float(v[-1]) if len(v) else float("nan") for phase, v in self.losses.items()
        }
        return (
            f"HeadGates({model}: {words}; loss {self.base_loss:.4f} ungated, "
            f"{final['plain']:.4f} plain, {final['retention']:.4f} retention, "
            f"{final['removal']:.4f} removal)"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel head gates display as `tw.HeadGatesView(gates)`."""
        return seam.display_bundle(self, include, exclude)
