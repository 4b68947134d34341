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
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import SelectionError
from . import seam

SOURCES = ("hidden_in", "hidden_out", "attn_out", "mlp_out")
READOUTS = ("message_end", "gen_prompt")
METRICS = ("cosine", "mae", "jaccard")
"""The metrics between two states, as `Snapshots.compare` names its columns."""
ROLE_MEANS = ("user", "assistant")
"""The roles `Snapshots.role_means` averages over."""
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


def _nanmean(values: NDArray, axis: int) -> NDArray[np.float64]:
    """Mean ignoring NaN (a zero state's cosine); NaN where every value is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice"
        return np.nanmean(values, axis=axis)


def layer_average(scores: NDArray) -> NDArray[np.float64]:
    """(message, reference, layer) -> (message, reference): the mean over the
    layers, NaN left out (`Snapshots.message_table`, `summary`'s mean)."""
    return _nanmean(np.asarray(scores, np.float64), axis=2)


def role_average(values: NDArray, roles: Sequence[str]) -> NDArray[np.float64]:
    """(message, ...) -> (role, ...) for the roles of `ROLE_MEANS`: the mean
    over the messages whose role (`roles[message]`) it is, NaN left out; NaN
    for a role with no message."""
    values = np.asarray(values, np.float64)
    of = np.asarray(roles)
    out = np.full((len(ROLE_MEANS), *values.shape[1:]), np.nan)
    for i, role in enumerate(ROLE_MEANS):
        if (of == role).any():
            out[i] = _nanmean(values[of == role], axis=0)
    return out


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

    def _metric(self, metric: str) -> str:
        if metric not in METRICS:
            raise SelectionError(f"metric must be one of {list(METRICS)}, got {metric!r}.")
        return metric

    @property
    def roles(self) -> list[str]:
        """(message,) the role of each message."""
        return [m["role"] for m in self.messages]

    def all_scores(
        self, source: str = "hidden_out", *, center: bool = False
    ) -> dict[str, NDArray[np.float64]]:
        """Metric -> `scores(source, metric, center=center)`, all three at once."""
        states, refs = self._centred(source, center)
        shape = (states.shape[0], len(refs), states.shape[1])
        out = {metric: np.empty(shape) for metric in METRICS}
        for r, ref in enumerate(refs.values()):
            out["cosine"][:, r] = cosine(states, ref)
            out["mae"][:, r] = mae(states, ref)
            out["jaccard"][:, r] = top_jaccard(states, ref)
        return out

    def scores(
        self, source: str = "hidden_out", metric: str = "cosine", *, center: bool = False
    ) -> NDArray[np.float64]:
        """(message, reference, layer) `metric` of each message's state against
        each reference (in the order of `references`) at each layer: the
        numbers of `compare` as one array."""
        return self.all_scores(source, center=center)[self._metric(metric)]

    def compare(self, source: str = "hidden_out", *, center: bool = False) -> pd.DataFrame:
        """One row per message, reference and layer: cosine, MAE and top-1%
        Jaccard of the message's state against the reference's."""
        scores = self.all_scores(source, center=center)
        n_messages, n_refs, n_layers = scores["cosine"].shape
        # rows ordered reference, message, layer
        order = (1, 0, 2)
        grid = np.indices((n_refs, n_messages, n_layers)).reshape(3, -1)
        labels = np.array(list(self.references), dtype=object)
        roles = np.array([m["role"] for m in self.messages], dtype=object)
        return pd.DataFrame(
            {
                "message": grid[1],
                "role": roles[grid[1]] if n_messages else [],
                "reference": labels[grid[0]] if n_refs else [],
                "layer": grid[2],
                **{m: scores[m].transpose(order).reshape(-1) for m in METRICS},
            },
            columns=["message", "role", "reference", "layer", *METRICS],
        )

    def _check_layer(self, layer: int | None) -> int | None:
        n_layers = next(iter(self.states.values())).shape[1]
        if layer is None:
            return None
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise SelectionError(f"layer must be an int or None (the mean), got {layer!r}.")
        if not -n_layers <= layer < n_layers:
            raise SelectionError(f"layer {layer} is out of range for {n_layers} layers.")
        return int(layer) % n_layers

    def message_table(
        self,
        source: str = "hidden_out",
        metric: str = "cosine",
        *,
        center: bool = False,
        layer: int | None = None,
    ) -> pd.DataFrame:
        """Message x reference: `metric` averaged over the layers (NaN left
        out; the `mean` of `summary`), or at `layer`. Rows are the message
        indices, columns the reference labels."""
        scores = self.scores(source, metric, center=center)
        at = self._check_layer(layer)
        values = layer_average(scores) if at is None else scores[:, :, at]
        return pd.DataFrame(
            values,
            index=pd.Index(range(len(self.messages)), name="message"),
            columns=pd.Index(list(self.references), name="reference"),
        )

    def layer_table(
        self,
        message: int,
        source: str = "hidden_out",
        metric: str = "cosine",
        *,
        center: bool = False,
    ) -> pd.DataFrame:
        """Layer x reference: `metric` of message `message`'s state against
        every reference at every layer."""
        n = len(self.messages)
        if isinstance(message, bool) or not isinstance(message, (int, np.integer)):
            raise SelectionError(f"message must be an int index, got {message!r}.")
        if not -n <= message < n:
            raise SelectionError(f"message {message} is out of range for {n} messages.")
        scores = self.scores(source, metric, center=center)[message]  # (reference, layer)
        return pd.DataFrame(
            scores.T,
            index=pd.Index(range(scores.shape[1]), name="layer"),
            columns=pd.Index(list(self.references), name="reference"),
        )

    def role_means(
        self,
        source: str = "hidden_out",
        metric: str = "cosine",
        *,
        center: bool = False,
        layer: int | None = None,
    ) -> pd.DataFrame:
        """Role ("user", "assistant") x reference: the mean over the messages of
        that role of `message_table`'s values (NaN for a role with no message)."""
        table = self.message_table(source, metric, center=center, layer=layer).to_numpy()
        return pd.DataFrame(
            role_average(table, self.roles),
            index=pd.Index(list(ROLE_MEANS), name="role"),
            columns=pd.Index(list(self.references), name="reference"),
        )

    def summary(
        self, source: str = "hidden_out", *, center: bool = False, metric: str = "cosine"
    ) -> pd.DataFrame:
        """Per message and reference: mean, sd, median and min of `metric` over
        the layers, and the layer of the min."""
        self._metric(metric)
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

    def neuron_trajectory(self, layer: int, index: int, source: str = "hidden_out") -> pd.DataFrame:
        """Dimension `index` of `source` at `layer`: one row per message (its
        state at the message's end) and one per reference, in that order."""
        states = self.states[self._source(source)]
        n_layers, hidden = states.shape[1], states.shape[2]
        for name, value, size in (("layer", layer, n_layers), ("index", index, hidden)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise SelectionError(f"{name} must be an int, got {value!r}.")
            if not 0 <= value < size:
                raise SelectionError(f"{name}={value} is outside 0..{size - 1}.")
        labels = list(self.references)
        n = len(self.messages)
        return pd.DataFrame(
            {
                "message": pd.array([*range(n), *([None] * len(labels))], dtype="Int64"),
                "role": [m["role"] for m in self.messages] + [None] * len(labels),
                "reference": [None] * n + labels,
                "value": [
                    *states[:, layer, index].astype(np.float64),
                    *(float(self.references[k][source][layer, index]) for k in labels),
                ],
            }
        )

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        how = "one pass" if self.single_pass else "one pass per message"
        return (
            f"Snapshots({model}: {len(self.messages)} messages read at {self.readout} ({how}), "
            f"{len(self.references)} references {list(self.references)}, sources {self.sources})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel snapshots display as `tw.SnapshotsView(snapshots)`."""
        return seam.display_bundle(self, include, exclude)
