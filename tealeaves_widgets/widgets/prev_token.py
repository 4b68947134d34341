"""`PrevTokenView`: the previous-token test of one head (a
`tw.PrevTokenTest`): its redundancy with the values at t-k for every offset
k as bars (a previous-token head peaks at k = 1), and, for the offset
picked, the per-layer table of the four pairs of passes (normalised inner
product or cosine, mean +- sd over the texts).

Numbers travel as binary float32 arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets as t

from ..core.prev_token import PAIRS, PrevTokenTest
from ._bundle import esm
from .base import ResultView, TraitSelectionError
from .schema import SCHEMA_VERSION, PrevTokenPayload
from .wire import encode_array

__all__ = ["MEASURES", "PrevTokenView", "prev_token_payload"]

MEASURES = ("inner", "cos")
"""What the per-layer table shows: the normalised inner product or the cosine."""


def prev_token_payload(test: PrevTokenTest) -> PrevTokenPayload:
    """The sweep over offsets and the per-layer table at every offset of
    `test` as one synced value (numbers as float32 arrays)."""
    sweep = test.sweep()
    pairs = [f"{x} vs {y}" for x, y in PAIRS]
    n_layers = int(test.outputs["base"].shape[1])
    columns = ("inner_mean", "inner_sd", "cos_mean", "cos_sd")
    tables = {c: np.full((len(test.offsets), len(pairs), n_layers), np.nan) for c in columns}
    for k, offset in enumerate(test.offsets):
        table = test.table(offset)  # pair-major: every layer of the first pair, then the next
        for column in columns:
            tables[column][k] = table[column].to_numpy().reshape(len(pairs), n_layers)

    def floats(values: Any) -> Any:
        return encode_array(np.asarray(values, dtype=np.float32))

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "prev_token",
        "model": {"model_id": str(test.model_info.get("model_id", "unknown model"))},
        "layer": int(test.layer),
        "head": int(test.head),
        "value_heads": None if test.value_heads is None else [int(h) for h in test.value_heads],
        "n_texts": int(test.n_texts),
        "n_layers": n_layers,
        "offsets": [int(k) for k in test.offsets],
        "redundancy": floats(sweep["redundancy"]),
        "residual_effect_sd": floats(sweep["residual_effect_sd"]),
        "pairs": pairs,
        **{column: floats(tables[column]) for column in columns},  # type: ignore[typeddict-item]
    }


class PrevTokenView(ResultView[PrevTokenTest]):
    """A `tw.PrevTokenTest` as bars of the head's redundancy with the values
    at t-k per offset k (a previous-token head peaks at k = 1), and the
    per-layer table of the passes compared at the offset picked (click a
    bar). Synced with Python: `offset` and `measure` ("inner" or "cos").
    `display(test)` shows one."""

    _esm = esm("prev_token_view")
    _result_type = PrevTokenTest
    _result_from = "model.prev_token_test"
    _payload_of = staticmethod(prev_token_payload)
    """The test on the wire."""

    offset = t.Int(1).tag(sync=True, echo_update=False)
    """The offset k whose per-layer table is shown."""
    measure = t.Enum(MEASURES, default_value="inner").tag(sync=True, echo_update=False)
    """What the table shows, one of `MEASURES`."""

    def _initial_options(self, result: PrevTokenTest, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("offset", int(result.offsets[0]))
        return kwargs

    @t.validate("offset")
    def _check_offset(self, proposal: t.Bunch) -> int:
        offset = proposal["value"]
        if offset not in self._result.offsets:
            raise TraitSelectionError(
                f"offset={offset} was not tested; the offsets are {list(self._result.offsets)}."
            )
        return offset
