"""Every head of one layer as a (query, key) attention matrix (numpy and
pandas): `HeadGrid`, the result of `Model.head_grid` and `Run.head_grid`.

Pooling. A prompt longer than `MAX_DISPLAY` tokens is pooled into blocks of
`pool` = ceil(T / MAX_DISPLAY) consecutive tokens, on both axes: a pooled
cell (I, J) is the mean over the query rows of block I of the summed weight
those rows put on the keys of block J,

    P[I, J] = mean_{i in I} sum_{j in J} A[i, j],

so a pooled row is still a distribution over key blocks (it sums to 1
where the rows do; to less with sink logits, as the rows do), the causal
staircase stays below the diagonal, and a sink or a previous-token diagonal
keeps its mass instead of being thinned out by averaging columns. The last
block may hold fewer tokens; its mean is over the rows it holds. Pooling a
grid already pooled by f by a further factor g weights each row block by
the tokens it holds, so it equals pooling the full matrix by f * g.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ArgumentError, ArgumentTypeError
from . import seam
from .selection import check_index

MAX_DISPLAY = 1024
"""Most pooled rows (and columns) a grid keeps by default, and a view shows."""

SUMMARY = ("first_block", "diagonal", "previous", "row_max")
"""Columns of `HeadGrid.table`, per head (each a mean over the query rows):
the weight on the first key block (the first token when not pooled: the
sink), on the row's own block (the token itself when not pooled), on the
previous token (NaN when pooled), and the row's largest weight."""


def pool_factor(n_tokens: int, max_side: int = MAX_DISPLAY) -> int:
    """The smallest block size that brings `n_tokens` to at most `max_side` blocks."""
    if max_side < 1:
        raise ArgumentError(f"max_side must be at least 1, got {max_side}.")
    return max(1, math.ceil(n_tokens / max_side))


def block_counts(n_tokens: int, pool: int) -> NDArray[np.int64]:
    """(blocks,) how many tokens each block of `pool` consecutive tokens holds."""
    n_blocks = math.ceil(n_tokens / pool)
    counts = np.full(n_blocks, pool, dtype=np.int64)
    counts[-1] = n_tokens - pool * (n_blocks - 1)
    return counts


def block_pool(
    patterns: NDArray, factor: int, row_weights: NDArray | None = None
) -> NDArray[np.float64]:
    """(..., n, n) matrices pooled by `factor` on both axes (see the module
    docstring): the weighted mean of each block of rows (`row_weights` (n,),
    equal by default), the sum of each block of columns. float64."""
    values = np.asarray(patterns, np.float64)
    n = values.shape[-1]
    if values.shape[-2] != n:
        raise ArgumentError(f"Expected square (..., n, n) matrices, got shape {values.shape}.")
    if factor == 1:
        return values
    weights = np.ones(n) if row_weights is None else np.asarray(row_weights, np.float64)
    blocks = math.ceil(n / factor)
    pad = blocks * factor - n
    # columns: sum within blocks (zero padding adds nothing)
    widths = [(0, 0)] * (values.ndim - 1) + [(0, pad)]
    summed = np.pad(values, widths).reshape(*values.shape[:-1], blocks, factor).sum(-1)
    # rows: weighted mean within blocks
    weighted = summed * weights[:, None]
    heights = [(0, 0)] * (values.ndim - 2) + [(0, pad), (0, 0)]
    rows = np.pad(weighted, heights).reshape(*values.shape[:-2], blocks, factor, blocks).sum(-2)
    totals = np.pad(weights, (0, pad)).reshape(blocks, factor).sum(-1)
    return rows / totals[:, None]


@dataclass(frozen=True, repr=False)
class HeadGrid:
    """The attention of every head of one layer over one prompt: a (query,
    key) matrix per head, pooled into blocks of `pool` tokens when the
    prompt is longer than the grid keeps (see the module docstring)."""

    layer: int
    patterns: NDArray[np.float16]
    """(head, T', T') float16 weights, query rows by key columns, T' =
    ceil(T / pool); 0 above the diagonal (and outside a sliding window)."""
    tokens: tuple[str, ...]
    """(T,) the text of every token of the prompt (not pooled)."""
    pool: int
    """Tokens per block on both axes; 1 = the full T x T."""
    model_info: dict

    def __post_init__(self) -> None:
        patterns = self.patterns
        if patterns.ndim != 3 or patterns.shape[1] != patterns.shape[2]:
            raise ArgumentError(f"Expected (head, T', T') patterns, got shape {patterns.shape}.")
        if isinstance(self.pool, bool) or not isinstance(self.pool, (int, np.integer)):
            raise ArgumentTypeError(f"pool must be an int, got {self.pool!r}.")
        expected = math.ceil(len(self.tokens) / max(int(self.pool), 1))
        if self.pool < 1 or patterns.shape[1] != expected:
            raise ArgumentError(
                f"{len(self.tokens)} tokens pooled by {self.pool} make {expected} blocks, "
                f"but the patterns have {patterns.shape[1]}; pass matching tokens and pool."
            )

    @property
    def n_heads(self) -> int:
        return int(self.patterns.shape[0])

    @property
    def n_tokens(self) -> int:
        """T, the prompt's tokens."""
        return len(self.tokens)

    @property
    def size(self) -> int:
        """T', the rows (and columns) of each pattern."""
        return int(self.patterns.shape[1])

    @property
    def n_layers(self) -> int | None:
        """Layers of the model (from `model_info`), when known."""
        n = self.model_info.get("n_layers")
        return None if n is None else int(n)

    def head(self, head: int) -> NDArray[np.float32]:
        """(T', T') float32 copy of one head's matrix."""
        return self.patterns[check_index(head, self.n_heads, "head", "this head grid")].astype(
            np.float32
        )

    def block_tokens(self, block: int) -> tuple[int, int]:
        """[start, stop) of the tokens in row or column block `block`."""
        block = check_index(block, self.size, "block", "this head grid")
        return block * self.pool, min((block + 1) * self.pool, self.n_tokens)

    def pooled(self, max_side: int = MAX_DISPLAY) -> HeadGrid:
        """This grid with at most `max_side` rows per head (itself when it
        has no more). Pooling composes: the rows of a block are weighted by
        the tokens they hold, so the result equals pooling the full matrix."""
        factor = pool_factor(self.size, max_side)
        if factor == 1:
            return self
        weights = block_counts(self.n_tokens, self.pool)
        pooled = block_pool(self.patterns, factor, row_weights=weights)
        return HeadGrid(
            layer=self.layer,
            patterns=pooled.astype(np.float16),
            tokens=self.tokens,
            pool=self.pool * factor,
            model_info=self.model_info,
        )

    def table(self) -> pd.DataFrame:
        """One row per head (index "head"), the columns of `SUMMARY`, from
        the stored float16 weights summed in float64."""
        values = self.patterns.astype(np.float64)
        rows = np.arange(self.size)
        previous = np.full(self.n_heads, np.nan)
        if self.pool == 1 and self.size > 1:
            previous = values[:, rows[1:], rows[1:] - 1].mean(-1)
        return pd.DataFrame(
            {
                "first_block": values[:, :, 0].mean(-1),
                "diagonal": values[:, rows, rows].mean(-1),
                "previous": previous,
                "row_max": values.max(-1).mean(-1),
            },
            index=pd.RangeIndex(self.n_heads, name="head"),
        )

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        shape = (
            f"{self.n_tokens} x {self.n_tokens}"
            if self.pool == 1
            else f"{self.size} x {self.size} blocks of {self.pool} tokens "
            f"(from {self.n_tokens} x {self.n_tokens})"
        )
        lines = [f"HeadGrid({model}: layer {self.layer}, {self.n_heads} heads, {shape}, float16)"]
        table = self.table()
        first = "first token" if self.pool == 1 else "first block"
        for head, row in table.iterrows():
            text = f"  head {head}: {first} {row['first_block']:.3f}, self {row['diagonal']:.3f}"
            if self.pool == 1:
                text += f", previous {row['previous']:.3f}"
            lines.append(text + f", row max {row['row_max']:.3f}")
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel it displays as its view (`display(result)`)."""
        return seam.display_bundle(self, include, exclude)


__all__ = ["MAX_DISPLAY", "SUMMARY", "HeadGrid", "block_counts", "block_pool", "pool_factor"]
