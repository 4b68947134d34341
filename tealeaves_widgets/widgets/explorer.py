"""`Explorer`: the token heatmap with cooking curves and the logit lens, all
following one synced selection."""

from __future__ import annotations

from ..core.run import NORMALIZATIONS
from ._bundle import esm
from .base import CurvesOptions
from .heatmap import TokenHeatmap

__all__ = ["NORMALIZATIONS", "Explorer"]


class Explorer(CurvesOptions, TokenHeatmap):
    """Token heatmap, cooking curves (attention mass per region and layer) and
    logit lens of a `Run`, linked: one layer, one query, one region selection.
    Clicking a curve or a lens row selects that layer everywhere; clicking a
    region's name in the curves legend highlights its tokens in the heatmap,
    its checkbox hides its curve. Clicking a token makes it the query,
    computed by `model=` (the model that captured the run; `model.explore`
    passes it) as in `TokenHeatmap`. `layer`, `query`, `head`, `region`,
    `normalize` and `hidden` are synced with Python."""

    _esm = esm("explorer")
