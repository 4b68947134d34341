"""`TokenHeatmap`: the prompt as text, each token coloured by the attention
one query pays it at one layer."""

from __future__ import annotations

import traitlets as t

from ..core.heatmap_scale import DEFAULT_HEATMAP_SCALE, HEATMAP_SCALES
from ._bundle import esm
from .base import RunView

__all__ = ["SCALES", "TokenHeatmap"]

SCALES = HEATMAP_SCALES
"""Colour scales, the default first: "log-layer" (log, from each layer's
median weight to its maximum: readable at every layer and any prompt length),
"linear" (0 to the maximum over all layers), "log" (4 decades below the
maximum over all layers), "layer" (0 to each layer's maximum). The static
`heatmap_figure` draws the same ones."""


class TokenHeatmap(RunView):
    """Token heatmap of a `Run`.

    The selection (`layer`, `query`, `head`, `region`, `scale`, and the two
    masks) and `overview` are synced both ways: moving the slider in the browser updates
    `layer` here, and setting `layer` here moves the slider.
    """

    _esm = esm("heatmap")

    scale = t.Enum(SCALES, default_value=DEFAULT_HEATMAP_SCALE).tag(sync=True, echo_update=False)
    """Colour scale, one of `SCALES`; the legend says how it maps."""
    mask_template = t.Bool(False).tag(sync=True, echo_update=False)
    """Leave chat-template tokens out of the colour scale."""
    mask_sink = t.Bool(True).tag(sync=True, echo_update=False)
    """Leave the first token (the attention sink) out of the colour scale."""
    overview = t.Bool(True).tag(sync=True, echo_update=False)
    """Show the overview beside the text: a layer x token map above it, a layer
    x region matrix and the most attended tokens at the layer shown (masked
    tokens left out) beside it. A click on any of them scrolls the text."""
