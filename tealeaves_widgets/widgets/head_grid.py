"""`HeadGridView`: every head of one layer (a `tw.HeadGrid`) as small-multiple
heatmaps, query rows by key columns, and the head picked (a click on its
thumbnail) enlarged, with token labels on its axes and the query token, key
token and weight under the pointer.

The patterns travel as one binary float16 array of at most `MAX_DISPLAY` x
`MAX_DISPLAY` per head: a grid kept at full resolution above that
(`full=True`) is pooled for display as `core.head_grid` pools. The
thumbnails are pooled further in the browser, the same way.

Colour scales (`SCALES`), each per head from 0 (the background) to the
head's largest weight outside the first query row (query 0 can attend only
to itself, so its weight of 1 says nothing of the head). The first-token
sink takes most of the weight of most heads (FACTS.md: a mean of 0.43 at
T=512), so a linear scale leaves the rest of the matrix nearly blank.
"sqrt" (the default) colours by the square root of the weight, which keeps
the small weights visible while the sink stays the darkest; "no-first" is
linear with the first key column (the sink) left out of the range, its
cells clipped at the darkest colour, and says so under the map; "linear" is
the plain scale.
"""

from __future__ import annotations

import numpy as np
import traitlets as t

from ..core.head_grid import MAX_DISPLAY, HeadGrid
from ._bundle import esm
from .base import ResultView, TraitSelectionError
from .schema import SCHEMA_VERSION, HeadGridPayload
from .wire import encode_array

__all__ = ["SCALES", "HeadGridView", "head_grid_payload"]

SCALES = ("sqrt", "no-first", "linear")
"""Colour scales of the view (see the module docstring); the first is the default."""


def head_grid_payload(grid: HeadGrid, max_side: int = MAX_DISPLAY) -> HeadGridPayload:
    """`grid` on the wire: its patterns pooled to at most `max_side` blocks
    per side (as `HeadGrid.pooled`), float16, and every token's text."""
    shown = grid.pooled(max_side)
    info = grid.model_info
    n_layers, n_kv = info.get("n_layers"), info.get("n_kv_heads")
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "head_grid",
        "model": {"model_id": str(info.get("model_id", "unknown model"))},
        "layer": int(grid.layer),
        "n_layers": None if n_layers is None else int(n_layers),
        "n_heads": shown.n_heads,
        "n_kv_heads": None if n_kv is None else int(n_kv),
        "n_tokens": shown.n_tokens,
        "pool": int(shown.pool),
        "tokens": [str(token) for token in shown.tokens],
        "patterns": encode_array(np.ascontiguousarray(shown.patterns, dtype=np.float16)),
    }


class HeadGridView(ResultView[HeadGrid]):
    """A `tw.HeadGrid` as one small heatmap per head (query rows, key
    columns) and the head picked enlarged, with token labels and a tooltip
    (query, key, weight). Click a thumbnail to enlarge its head. Synced with
    Python: `head` (the head enlarged) and `scale` (one of `SCALES`).
    `display(grid)` shows one."""

    _esm = esm("head_grid_view")
    _result_type = HeadGrid
    _result_from = "run.head_grid(layer) or model.head_grid"
    _payload_of = staticmethod(head_grid_payload)
    """The grid on the wire."""

    head = t.Int(0).tag(sync=True, echo_update=False)
    """The head enlarged."""
    scale = t.Enum(SCALES, default_value=SCALES[0]).tag(sync=True, echo_update=False)
    """The colour scale, one of `SCALES`."""

    @t.validate("head")
    def _check_head(self, proposal: t.Bunch) -> int:
        head = proposal["value"]
        if not 0 <= head < self._result.n_heads:
            raise TraitSelectionError(
                f"head={head} is out of range; this grid has {self._result.n_heads} heads, "
                f"0..{self._result.n_heads - 1}."
            )
        return head
