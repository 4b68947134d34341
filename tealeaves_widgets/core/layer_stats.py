"""Attention statistics per layer and head over the causal entries, and the
attention one region pays another (numpy and pandas): `LayerStats` and
`RegionAttention`, the results of `Model.layer_stats` and
`Model.region_attention` (also `Run.layer_stats`, `Run.region_attention`).

Entries. Query i may attend key j when j <= i and, on a sliding-window layer,
i - j < window (and j is not padding): the allowed entries. A sink logit
(gpt-oss) takes part in the softmax but owns no position, so a row's weights
then sum to less than 1. Every statistic is over the allowed entries only;
the masked zeros above the diagonal never count. (A full-matrix mean of a
causal attention matrix is always 1/T, because each row sums to 1, and its
sd and minimum count the masked zeros: not a statistic of the attention.)

Per layer and head, with w_ij the weight of query i on key j, n_i the number
of keys row i may attend and T the number of rows:

- `mean`, `sd`, `max`: of the weights over all allowed entries, pooled (each
  entry counts once: mean = sum w / sum n_i; sd is the population sd);
  when every row sums to 1 over its allowed keys (no sink logit) the mean
  is T / sum n_i, 2/(T+1) under a plain causal mask: the same at every
  layer, so it tells heads apart only where a window or sinks change it;
- `entropy`: the mean over rows with n_i >= 2 of H_i / log(n_i), H_i the
  entropy of row i's weights renormalised over its positions (p = w / sum w,
  the same as w without sinks); 0 = one key takes everything, 1 = uniform.
  Rows with a single allowed key (row 0) have no choice to make and are
  left out; NaN when no row has two keys;
- `sink_mass`: the mean over rows of w_i0, the weight on position 0 (0 on a
  row whose window no longer reaches position 0);
- `distance`: the mean over rows of sum_j w_ij (i - j), in tokens;
- `row_max`: the mean over rows of max_j w_ij.

The table averages each statistic over the heads of a layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ArgumentError
from .selection import check_index

STATISTICS = ("mean", "sd", "max", "entropy", "sink_mass", "distance", "row_max")
"""The statistics of `LayerStats`, in the order of its `values` axis."""


@dataclass(frozen=True, repr=False)
class LayerStats:
    """Per layer and head: statistics of the attention weights over the
    causal (allowed) entries of one prompt (see the module docstring)."""

    values: NDArray[np.float64]
    """(statistic, layer, head), statistics as `STATISTICS`."""
    n_tokens: int
    """Number of tokens (query rows) of the prompt."""
    model_info: dict

    @classmethod
    def from_values(cls, values: NDArray, n_tokens: int, model_info: dict) -> LayerStats:
        """Check the shape of (statistic, layer, head) `values` and keep them."""
        values = np.asarray(values, np.float64)
        if values.ndim != 3 or values.shape[0] != len(STATISTICS):
            raise ArgumentError(
                f"Expected (statistic, layer, head) values with {len(STATISTICS)} statistics "
                f"{list(STATISTICS)}; got shape {values.shape}."
            )
        return cls(values=values, n_tokens=int(n_tokens), model_info=dict(model_info))

    @property
    def n_layers(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_heads(self) -> int:
        return int(self.values.shape[2])

    def statistic(self, name: str) -> NDArray[np.float64]:
        """(layer, head) values of one of `STATISTICS`."""
        if name not in STATISTICS:
            raise ArgumentError(
                f"Unknown statistic {name!r}; the statistics are {list(STATISTICS)}."
            )
        return self.values[STATISTICS.index(name)]

    def table(self, per_head: bool = False) -> pd.DataFrame:
        """One row per layer (index "layer"), a column per statistic, each
        the mean over the layer's heads (`entropy` over the heads that have
        a value); `per_head=True`: one row per layer and head instead."""
        if per_head:
            layer, head = np.meshgrid(
                np.arange(self.n_layers), np.arange(self.n_heads), indexing="ij"
            )
            frame = pd.DataFrame({"layer": layer.ravel(), "head": head.ravel()})
            for k, name in enumerate(STATISTICS):
                frame[name] = self.values[k].ravel()
            return frame
        with np.errstate(all="ignore"):
            means = {name: _nanmean(self.values[k], axis=1) for k, name in enumerate(STATISTICS)}
        return pd.DataFrame(means, index=pd.RangeIndex(self.n_layers, name="layer"))

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        table = self.table()
        lines = [
            f"LayerStats({model}: {self.n_layers} layers x {self.n_heads} heads, "
            f"{self.n_tokens} tokens; causal entries only, head means)"
        ]
        for layer in sorted({0, self.n_layers // 2, self.n_layers - 1}):
            row = table.loc[layer]
            lines.append(
                f"  layer {layer}: mean {row['mean']:.3g}, sd {row['sd']:.3g}, "
                f"max {row['max']:.3g}, entropy {row['entropy']:.3f}, "
                f"sink {row['sink_mass']:.3f}, distance {row['distance']:.3g}, "
                f"row max {row['row_max']:.3f}"
            )
        return "\n".join(lines)


@dataclass(frozen=True, repr=False)
class RegionAttention:
    """Per layer and head: the attention `src`'s tokens pay `dst`'s tokens:
    for each query token of `src`, the sum of its weights on `dst`'s tokens
    (only the entries it may attend), averaged over `src`'s tokens."""

    src: str
    dst: str
    mass: NDArray[np.float64]
    """(layer, head) mean over src tokens of the summed weight on dst tokens."""
    n_src: int
    """Number of src tokens (queries averaged over)."""
    n_dst: int
    """Number of dst tokens (keys summed over)."""
    model_info: dict

    @property
    def n_layers(self) -> int:
        return int(self.mass.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.mass.shape[1])

    @property
    def mean(self) -> NDArray[np.float64]:
        """(layer,) mean over heads."""
        return self.mass.mean(axis=1)

    @property
    def max(self) -> NDArray[np.float64]:
        """(layer,) max over heads."""
        return self.mass.max(axis=1)

    @property
    def sd(self) -> NDArray[np.float64]:
        """(layer,) population sd over heads."""
        return self.mass.std(axis=1)

    def head(self, layer: int) -> NDArray[np.float64]:
        """(head,) the mass of every head of `layer`."""
        return self.mass[check_index(layer, self.n_layers, "layer", "this result")]

    def table(self) -> pd.DataFrame:
        """One row per layer (index "layer"): `mean`, `max` and `sd` over
        heads, and `max_head`, the head with the largest mass."""
        return pd.DataFrame(
            {
                "mean": self.mean,
                "max": self.max,
                "sd": self.sd,
                "max_head": self.mass.argmax(axis=1),
            },
            index=pd.RangeIndex(self.n_layers, name="layer"),
        )

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        lines = [
            f"RegionAttention({model}: {self.src!r} ({self.n_src} tokens) -> {self.dst!r} "
            f"({self.n_dst} tokens), {self.n_layers} layers x {self.n_heads} heads)"
        ]
        for layer in sorted({0, self.n_layers // 2, self.n_layers - 1}):
            lines.append(
                f"  layer {layer}: mean {self.mean[layer]:.3f}, max {self.max[layer]:.3f} "
                f"(head {int(self.mass[layer].argmax())}), sd {self.sd[layer]:.3f}"
            )
        return "\n".join(lines)


def _nanmean(values: NDArray, axis: int) -> NDArray:
    """Mean over `axis` ignoring NaN; NaN where all are NaN (no warning)."""
    finite = ~np.isnan(values)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    count = finite.sum(axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
