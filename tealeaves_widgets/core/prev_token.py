"""The previous-token redundancy test of one attention head (from the
attention-head study): `PrevTokenTest`, the result of `Model.prev_token_test`.

At a random position t of each text, four forward passes:

- base: nothing removed;
- A: the head zeroed at t (its slice of the output projection's input);
- B: the values at t-k zeroed (every head, or `value_heads`), for each
  offset k (default 1..8);
- A+B: both.

For every layer the attention output at t (after the output projection) of
each pair of passes is compared by the normalised inner product
<x, y> / |x|^2 (1 when y equals x, less when y lost part of x's direction)
and the cosine. The head's redundancy with the values at t-k is
1 - |AB - B| / |A - base|, at the last layer: 1 when removing the head
changes nothing once the values at t-k are gone (the head carries only what
sits at t-k), 0 when its effect is the same with or without them. A
previous-token head has its redundancy peak at k = 1 (and its
`residual_effect`, |AB - B| / |A - base|, dips there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from . import seam

PAIRS = (("base", "A"), ("base", "B"), ("base", "A+B"), ("A", "A+B"))
"""The pairs of passes compared, (x, y)."""


def normalised_inner(x: NDArray, y: NDArray) -> NDArray[np.float64]:
    """<x, y> / |x|^2 over the last axis (NaN where x is 0)."""
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    norm = (x64 * x64).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (x64 * y64).sum(-1) / norm, np.nan)


def cosine(x: NDArray, y: NDArray) -> NDArray[np.float64]:
    """cos(x, y) over the last axis (NaN where either is 0)."""
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    norms = np.linalg.norm(x64, axis=-1) * np.linalg.norm(y64, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (x64 * y64).sum(-1) / norms, np.nan)


@dataclass(frozen=True, repr=False)
class PrevTokenTest:
    """Outputs of the four passes and what they say about one head."""

    layer: int
    head: int
    value_heads: tuple[int, ...] | None
    """Heads whose values B zeroes (None: every head)."""
    offsets: tuple[int, ...]
    positions: NDArray[np.int64]
    """(text,) the position t drawn in each text."""
    outputs: dict[str, NDArray[np.float32]]
    """"base", "A" -> (text, layer, hidden); "B", "A+B" -> (offset, text, layer, hidden):
    the attention output at t of every layer."""
    model_info: dict

    @property
    def n_texts(self) -> int:
        return len(self.positions)

    def _pair(self, x: str, y: str, k: int) -> tuple[NDArray, NDArray]:
        def pick(name: str) -> NDArray:
            value = self.outputs[name]
            return value[k] if name in ("B", "A+B") else value

        return pick(x), pick(y)

    def table(self, offset: int | None = None) -> pd.DataFrame:
        """Per layer and pair: mean and sd over the texts of the normalised
        inner product and of the cosine, with B at `offset` (default the first,
        1)."""
        k = self._offset_index(offset)
        rows = []
        for x, y in PAIRS:
            a, b = self._pair(x, y, k)
            nip, cos = normalised_inner(a, b), cosine(a, b)  # (text, layer)
            for layer in range(nip.shape[1]):
                rows.append(
                    {
                        "pair": f"{x} vs {y}",
                        "layer": layer,
                        "inner_mean": float(np.nanmean(nip[:, layer])),
                        "inner_sd": float(np.nanstd(nip[:, layer], ddof=1))
                        if self.n_texts > 1
                        else np.nan,
                        "cos_mean": float(np.nanmean(cos[:, layer])),
                        "cos_sd": float(np.nanstd(cos[:, layer], ddof=1))
                        if self.n_texts > 1
                        else np.nan,
                    }
                )
        return pd.DataFrame(rows)

    def _sd(self, values: NDArray) -> float:
        return float(np.nanstd(values, ddof=1)) if self.n_texts > 1 else float("nan")

    def residual_effect(self) -> NDArray[np.float64]:
        """(offset, text) |AB - B| / |A - base| at the last layer's attention output."""
        base, ablated = self.outputs["base"][:, -1], self.outputs["A"][:, -1]
        effect = np.linalg.norm(ablated.astype(np.float64) - base, axis=-1)  # (text,)
        b, ab = self.outputs["B"][:, :, -1], self.outputs["A+B"][:, :, -1]
        after = np.linalg.norm(ab.astype(np.float64) - b, axis=-1)  # (offset, text)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(effect > 0, after / effect, np.nan)

    def sweep(self) -> pd.DataFrame:
        """Per offset k: mean and sd over texts of the residual effect and of
        the redundancy 1 - residual effect. A previous-token head's redundancy
        peaks at k = 1."""
        effect = self.residual_effect()
        return pd.DataFrame(
            {
                "offset": list(self.offsets),
                "residual_effect": np.nanmean(effect, axis=1),
                "residual_effect_sd": [self._sd(row) for row in effect],
                "redundancy": 1 - np.nanmean(effect, axis=1),
            }
        )

    @property
    def redundancy(self) -> float:
        """Redundancy with the values at t-1 (the first offset), mean over texts."""
        return float(1 - np.nanmean(self.residual_effect()[0]))

    def _offset_index(self, offset: int | None) -> int:
        if offset is None:
            return 0
        if offset not in self.offsets:
            from ..errors import SelectionError

            raise SelectionError(
                f"offset={offset} was not tested; the offsets are {list(self.offsets)}."
            )
        return self.offsets.index(offset)

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        sweep = self.sweep()
        best = int(np.nanargmax(sweep["redundancy"].to_numpy()))
        values = " ".join(
            f"{k}:{r:.2f}" for k, r in zip(sweep["offset"], sweep["redundancy"], strict=True)
        )
        return (
            f"PrevTokenTest({model}: head L{self.layer}H{self.head} over {self.n_texts} texts; "
            f"redundancy with values at t-k: {values}; peak at k={sweep['offset'][best]})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel a test displays as `tw.PrevTokenView(test)`."""
        return seam.display_bundle(self, include, exclude)
