"""The explorer's panels alone: `CurvesView` (cooking curves) and `LensView`
(logit lens), each with its own query selector. They run the same JavaScript
components as the `Explorer`."""

from __future__ import annotations

from ._bundle import esm
from .base import CurvesOptions, RunView


class CurvesView(CurvesOptions, RunView):
    """Cooking curves of a `Run`: attention mass per region against layer,
    for one query (head average or one head). Clicking the chart selects a
    layer; a region's name selects it, its checkbox hides its curve."""

    _esm = esm("curves_view")


class LensView(RunView):
    """Logit lens of a `Run` at one query: the top next tokens per layer,
    entropy, KL to the final layer and the tracked tokens' ranks. Clicking a
    row selects that layer."""

    _esm = esm("lens_view")
