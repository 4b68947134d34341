"""Residual-stream states of a conversation and how they compare (numpy and
pandas): `Snapshots`, the result of `Model.conversation_snapshots`, and the
metrics between two states.

A state is one source (the block's input "hidden_in", its output
"hidden_out", the attention's output "attn_out", the MLP's output "mlp_out")
at every layer, read at one token. Two states compare per layer by:

- cosine: <a, b> / (|a| |b|);
- MAE: mean |a - b| over the hidden dimensions;
- Jaccard: |A & B| / |A | B| of the top 1% dimensions by |value| (at least one).

A few massive dimensions dominate raw residual states, so every state is
nearly parallel to every other (Activation Lab reports cosines of 0.83-0.88
to every reference). `center=True` subtracts, per source and layer, the mean
over all snapshots and references first, which shows what differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import SelectionError

SOURCES = ("hidden_in", "hidden_out", "attn_out", "mlp_out")
READOUTS = ("message_end", "gen_prompt")
TOP_FRACTION = 0.01


def cosine(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """Cosine over the last axis (NaN where either vector is 0)."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (a64 * b64).sum(-1) / norms, np.nan)


def mae(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """Mean absolute difference over the last axis."""
    return np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean(-1)


def top_jaccard(a: NDArray, b: NDArray, fraction: float = TOP_FRACTION) -> NDArray[np.float64]:
    """Jaccard overlap of the top `fraction` of dimensions by |value| (at least
    one), over the last axis."""
    a64, b64 = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    k = max(1, math.ceil(fraction * a64.shape[-1]))
    top_a = np.argsort(-np.abs(a64), axis=-1, kind="stable")[..., :k]
    top_b = np.argsort(-np.abs(b64), axis=-1, kind="stable")[..., :k]
    flat_a, flat_b = top_a.reshape(-1, k), top_b.reshape(-1, k)
    out = np.empty(flat_a.shape[0])
    for i, (x, y) in enumerate(zip(flat_a, flat_b, strict=True)):
        both = len(np.intersect1d(x, y))
        out[i] = both / (2 * k - both)
    return out.reshape(top_a.shape[:-1])


@dataclass(frozen=True, repr=False)
class Snapshots:
    """Residual states at the end of each message of a conversation, and of
    reference conversations (the state at each one's last message)."""

    messages: tuple[dict, ...]
    positions: NDArray[np.int64]
    """(message,) the token each state was read at, in its pass."""
    states: dict[str, NDArray[np.float32]]
    """Source -> (message, layer, hidden)."""
    references: dict[str, dict[str, NDArray[np.float32]]]
    """Label -> source -> (layer, hidden)."""
    readout: str
    single_pass: bool
    """True when every message was read from one pass of the whole conversation."""
    model_info: dict

    @property
    def sources(self) -> list[str]:
        return list(self.states)

    def _source(self, source: str) -> str:
        if source not in self.states:
            raise SelectionError(f"Unknown source {source!r}; this snapshot has {self.sources}.")
        return source

    def _centred(self, source: str, center: bool) -> tuple[NDArray, dict[str, NDArray]]:
        states = self.states[self._source(source)].astype(np.float64)
        refs = {k: v[source].astype(np.float64) for k, v in self.references.items()}
        if center:
            stacked = np.concatenate([states, *(r[None] for r in refs.values())], axis=0)
            mean = stacked.mean(axis=0)  # (layer, hidden)
            states = states - mean
            refs = {k: r - mean for k, r in refs.items()}
        return states, refs

    def compare(self, source: str = "hidden_out", *, center: bool = False) -> pd.DataFrame:
        """One row per message, reference and layer: cosine, MAE and top-1%
        Jaccard of the message's state against the reference's."""
        states, refs = self._centred(source, center)
        rows = []
        for label, ref in refs.items():
            cos, err, jac = cosine(states, ref), mae(states, ref), top_jaccard(states, ref)
            for m in range(states.shape[0]):
                for layer in range(states.shape[1]):
                    rows.append(
                        {
                            "message": m,
                            "role": self.messages[m]["role"],
                            "reference": label,
                            "layer": layer,
                            "cosine": float(cos[m, layer]),
                            "mae": float(err[m, layer]),
                            "jaccard": float(jac[m, layer]),
                        }
                    )
        return pd.DataFrame(rows)

    def summary(
        self, source: str = "hidden_out", *, center: bool = False, metric: str = "cosine"
    ) -> pd.DataFrame:
        """Per message and reference: mean, sd, median and min of `metric` over
        the layers, and the layer of the min."""
        if metric not in ("cosine", "mae", "jaccard"):
            raise SelectionError(f"metric must be cosine, mae or jaccard, got {metric!r}.")
        table = self.compare(source, center=center)
        rows = []
        for key, group in table.groupby(["message", "reference"], sort=False):
            message, label = key  # type: ignore[misc]
            values = group[metric].to_numpy()
            low = int(np.nanargmin(values))
            rows.append(
                {
                    "message": message,
                    "role": self.messages[int(message)]["role"],  # type: ignore[arg-type]
                    "reference": label,
                    "mean": float(np.nanmean(values)),
                    "sd": float(np.nanstd(values, ddof=1)) if len(values) > 1 else float("nan"),
                    "median": float(np.nanmedian(values)),
                    "min": float(values[low]),
                    "min_layer": int(group["layer"].to_numpy()[low]),
                }
            )
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        how = "one pass" if self.single_pass else "one pass per message"
        return (
            f"Snapshots({model}: {len(self.messages)} messages read at {self.readout} ({how}), "
            f"{len(self.references)} references {list(self.references)}, sources {self.sources})"
        )
