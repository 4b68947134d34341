"""`AttributionView`: where a target's log-probability comes from, by
gradient (a `tw.Attribution`), in the explorer's style.

- The prompt's tokens as flowing text, each shaded by its gradient norm
  (sequential palette) or by its signed gradient x input (the diverging
  palette of the ablation view), a toggle; hovering a token shows its values.
- One bar per region: its share of the prompt's summed gradient norm (as
  `Attribution.region_table`), with the summed gradient x input beside it; a
  click on a region marks its tokens.
- The target and its log-probability in the header.

Numbers travel as binary float32 arrays; token text is set with
`textContent` only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets as t

from ..core.attribution import Attribution, innermost_region
from ..present.palette import colors_of_regions
from ._bundle import esm
from .base import ResultView, TraitSelectionError
from .schema import SCHEMA_VERSION, AttributionPayload
from .wire import encode_array

__all__ = ["SHADINGS", "AttributionView", "attribution_payload"]

SHADINGS = ("grad_norm", "grad_x_input")
"""What the tokens are shaded by: the gradient's L2 norm, or gradient x input (signed)."""
SCALES = ("linear", "log")
"""How grad_norm maps to colour: linearly from 0 to the largest, or
logarithmically from the median to the largest (grad_x_input is always linear,
symmetric around 0)."""


def _gated(attribution: Attribution) -> str | None:
    mask = attribution.head_mask
    if mask is None:
        return None
    kept = int(np.asarray(mask).sum())
    return f"{int(mask.size) - kept} of {int(mask.size)} heads gated off ({kept} kept)"


def attribution_payload(attribution: Attribution) -> AttributionPayload:
    """The tokens, their gradient norms and gradient x input, and the region
    table of `attribution`, as one synced value (numbers as float32 arrays)."""
    table = attribution.region_table()
    names = list(attribution.regions)
    owner = innermost_region(attribution.regions, attribution.n_tokens)
    token_region = np.array([names.index(n) if n else -1 for n in owner], dtype=np.int16)
    colors = colors_of_regions(attribution.regions)

    def floats(values: Any) -> Any:
        return encode_array(np.asarray(values, dtype=np.float32))

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "attribution",
        "model": {"model_id": str(attribution.model_info.get("model_id", "unknown model"))},
        "target": attribution.target,
        "target_tokens": list(attribution.target_tokens),
        "loss": attribution.loss,
        "log_prob": float(attribution.log_prob),
        "gated": _gated(attribution),
        "tokens": list(attribution.tokens),
        "token_region": encode_array(token_region),
        "regions": [
            {
                "name": name,
                "section": info.section,
                "color": colors[name],
                "parent": info.parent,
                "builtin": bool(info.builtin),
                "token_indices": encode_array(np.asarray(info.token_indices).astype(np.int32)),
            }
            for name, info in attribution.regions.items()
        ],
        "grad_norm": floats(attribution.grad_norm),
        "grad_x_input": floats(attribution.grad_x_input),
        "region_grad_norm": floats(table["grad_norm"] if len(table) else []),
        "region_share": floats(table["share"] if len(table) else []),
        "region_grad_x_input": floats(table["grad_x_input"] if len(table) else []),
    }


class AttributionView(ResultView[Attribution]):
    """A `tw.Attribution` as the prompt's tokens shaded by their gradient
    norm (or, `shading="grad_x_input"`, by the signed gradient x input on a
    diverging scale), with a bar per region of its share of the gradient norm
    and the target's log-probability in the header. Hover a token for its
    values; click a region to mark its tokens.

    Synced with Python: `shading`, `scale` ("linear" or "log", for the
    gradient norm), `mask_sink` (leave the first token out of the colour
    scale) and `region`. `display(attribution)` shows one."""

    _esm = esm("attribution_view")
    _result_type = Attribution
    _result_from = "model.attribute"
    _payload_of = staticmethod(attribution_payload)
    """The attribution on the wire."""

    shading = t.Enum(SHADINGS, default_value="grad_norm").tag(sync=True, echo_update=False)
    """What the tokens are shaded by, one of `SHADINGS`."""
    scale = t.Enum(SCALES, default_value="linear").tag(sync=True, echo_update=False)
    """How the gradient norm maps to colour, one of `SCALES`."""
    mask_sink = t.Bool(False).tag(sync=True, echo_update=False)
    """Leave the first token out of the colour scale (it is still drawn, in
    the palette's last colour if it is over the scale)."""
    region = t.Unicode(None, allow_none=True).tag(sync=True, echo_update=False)
    """Region whose tokens are marked, or None."""

    @t.validate("region")
    def _check_region(self, proposal: t.Bunch) -> str | None:
        region = proposal["value"]
        if region is not None and region not in self._result.regions:
            names = list(self._result.regions)
            raise TraitSelectionError(
                f"Unknown region {region!r}; this attribution has regions {names} "
                "(or None: no selection)."
            )
        return region
