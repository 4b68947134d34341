"""`TokenHeatmap`: the prompt as text, each token coloured by the attention
one query pays it at one layer."""

from __future__ import annotations

import traitlets as t

from ._bundle import esm
from .base import RunView

__all__ = ["SCALES", "TokenHeatmap"]

SCALES = ("linear", "log", "layer")
"""Colour scales: linear over all layers, log (4 decades below the maximum
over all layers), or linear normalised to each layer's maximum."""


class TokenHeatmap(RunView):
    """Token heatmap of a `Run`.

    The selection (`layer`, `query`, `head`, `region`, `scale`, and the two
    masks) is synced both ways: moving the slider in the browser updates
    `layer` here, and setting `layer` here moves the slider.
    """

    _esm = esm("heatmap")

    scale = t.Enum(SCALES, default_value="linear").tag(sync=True, echo_update=False)
    """Colour scale, one of `SCALES`."""
    mask_template = t.Bool(False).tag(sync=True, echo_update=False)
    """Leave chat-template tokens out of the colour scale."""
    mask_sink = t.Bool(True).tag(sync=True, echo_update=False)
    """Leave the first token (the attention sink) out of the colour scale."""
