"""Colour scales of the token heatmap: how one layer's attention weights map
to the palette, computed the same way by the widget (js/src/colour.ts), the
plotly figure (`present.figures.heatmap_figure`) and the static images
(`present.render`). numpy only.

The default, "log-layer", is logarithmic from the layer's median weight
(over the tokens the query can see, masked ones left out) to its maximum,
spanning 1 to 6 decades: attention is heavy-tailed, and a linear scale left
89-98% of the quickstart's tokens under 5% of the colour range
(`python benchmarks/heatmap_scales.py`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import ArgumentError

HEATMAP_SCALES = ("log-layer", "linear", "log", "layer")
"""Colour scales of the token heatmap, the default first; the widget
(js/src/colour.ts) and `heatmap_figure` compute them the same way."""
DEFAULT_HEATMAP_SCALE = "log-layer"
HEATMAP_SCALE_TEXT = {
    "log-layer": "log, this layer's median to its max",
    "linear": "linear, 0 to the max over all layers",
    "log": "log, 4 decades below the max over all layers",
    "layer": "linear, 0 to this layer's max",
}
"""How each scale maps a weight to a colour, in the words of the widget's legend."""
LOG_DECADES = 4
"""Decades below the maximum over all layers that the "log" scale shows."""
LAYER_LOG_DECADES = (1, 6)
"""Decades the "log-layer" scale spans at least and at most: its bottom is the
layer's median weight, moved into this range when it lies outside."""


@dataclass(frozen=True)
class HeatmapScale:
    """The colour range of one layer under one scale: linear from 0 (no
    colour) to `high` (the darkest), or log from `low` (the faintest shade;
    weights below it get it too) to `high`."""

    name: str
    log: bool
    low: float
    high: float

    def fractions(self, row: NDArray[np.floating], masked: NDArray[np.bool_]) -> NDArray:
        """(pos,) place of each weight in the colour range, 0 to 1 (0: not
        coloured, for masked tokens and weights of 0), as the widget's colour
        index / 255 before rounding."""
        row = np.asarray(row, dtype=np.float64)
        out = np.zeros(row.shape, dtype=np.float64)
        if not self.high > 0:
            return out
        shown = ~masked & (row > 0)
        if self.log:
            bottom = math.log10(self.low)
            span = max(math.log10(self.high) - bottom, 1e-6)
            with np.errstate(divide="ignore"):
                place = (np.log10(np.where(shown, row, 1.0)) - bottom) / span
            out[shown] = np.clip(place[shown], 1 / 255, 1.0)
        else:
            out[shown] = np.clip(row[shown] / self.high, 0.0, 1.0)
        return out

    def describe(self, mask_sink: bool = True) -> str:
        """The legend's words: "log, this layer's median to its max (2.1
        decades); first token masked"."""
        text = HEATMAP_SCALE_TEXT[self.name]
        if self.name == "log-layer" and self.low > 0 and self.high > 0:
            text += f" ({math.log10(self.high / self.low):.1f} decades)"
        return f"{text}; first token masked" if mask_sink else text


def heatmap_scale(
    rows: NDArray[np.floating],
    layer: int,
    limit: int,
    masked: NDArray[np.bool_],
    scale: str = DEFAULT_HEATMAP_SCALE,
) -> HeatmapScale:
    """The colour range of `layer` under `scale`. `rows` are the selection's
    (layer, pos) weights, `limit` the query's position + 1 (later tokens have
    no weight), `masked` the (pos,) tokens left out of the scale."""
    if scale not in HEATMAP_SCALES:
        raise ArgumentError(f"scale must be one of {list(HEATMAP_SCALES)}, got {scale!r}.")
    rows = np.asarray(rows, dtype=np.float64)
    if scale in ("linear", "log"):
        top = float(rows[:, ~masked].max(initial=0.0))
        low = top / 10**LOG_DECADES if scale == "log" else 0.0
        return HeatmapScale(scale, scale == "log", low, top)
    weights = rows[layer, :limit][~masked[:limit]]
    top = float(weights.max(initial=0.0))
    if scale == "layer" or weights.size == 0:
        return HeatmapScale(scale, scale != "layer", 0.0, top)
    least, most = LAYER_LOG_DECADES
    low = max(min(float(np.median(weights)), top / 10**least), top / 10**most)
    return HeatmapScale(scale, True, low, top)
