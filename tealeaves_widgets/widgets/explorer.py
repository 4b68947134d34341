"""`Explorer`: the token heatmap with cooking curves and the logit lens, all
following one synced selection."""

from __future__ import annotations

import traitlets as t

from ._bundle import esm
from .heatmap import TokenHeatmap

NORMALIZATIONS = ("raw", "share", "per-region", "density")
"""Normalisations of the cooking curves, as in `Run.curves`."""


class Explorer(TokenHeatmap):
    """Token heatmap, cooking curves (attention mass per region and layer) and
    logit lens of a `Run`. Clicking a curve or a lens row selects that layer
    everywhere; `layer`, `query`, `head` and `normalize` are synced with Python."""

    _esm = esm("explorer")

    normalize = t.Enum(NORMALIZATIONS, default_value="raw").tag(sync=True, echo_update=False)
    """Normalisation of the cooking curves, one of `NORMALIZATIONS`."""
