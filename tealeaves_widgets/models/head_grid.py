"""`Model.head_grid` and `Run.head_grid` (result: `core.head_grid.HeadGrid`):
every head's (query, key) attention matrix at one chosen layer, from one
forward pass.

The pass hands that layer's softmax rows, and only that layer's
(`capturing(..., reduce_layers=[layer])`: the other layers compute no rows
for the reducer), chunk by chunk to a `HeadGridReducer`, which writes them
into one preallocated (head, T', T') tensor: float16 (head, T, T) at full
resolution, or, pooled (prompts longer than `core.head_grid.MAX_DISPLAY`
tokens, unless `full=True`), a float32 accumulator of (head, T', T') block
sums (the pooling of `core.head_grid`: rows averaged within a block, keys
summed) cast to float16 at the end. Cost: one forward pass plus that
layer's matrix; nothing is kept for any other layer.

A `Run` is read from its own `token_ids`, never re-rendered.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from ..core import seam
from ..core.head_grid import HeadGrid, block_counts, pool_factor
from ..core.run import Run
from ..core.selection import check_index
from ..errors import ArgumentError
from .layer_stats import reduce_pass
from .targets import as_model, read_target

if TYPE_CHECKING:
    from .model import Model


class HeadGridReducer:
    """Keeps one layer's rows, every head, as a (head, T', T') matrix (a
    `models.capture.Reducer`); the rows of any other layer are ignored.

    `pool` 1: the rows are written as they come into a (head, T, T) tensor of
    `dtype` (float16 by default; float32 keeps the reducer's rows exactly).
    `pool` > 1: each chunk's keys are summed into blocks and its rows added
    to their block's float32 row sum; `values()` divides by the rows of each
    block (see `core.head_grid` for the pooling)."""

    def __init__(
        self,
        layer: int,
        n_heads: int,
        n_tokens: int,
        *,
        pool: int = 1,
        dtype: torch.dtype = torch.float16,
        device: torch.device | str = "cpu",
    ) -> None:
        if pool < 1:
            raise ArgumentError(f"pool must be at least 1, got {pool}.")
        self.layer = layer
        self.n_tokens = n_tokens
        self.pool = pool
        self.size = math.ceil(n_tokens / pool)
        buffer_dtype = dtype if pool == 1 else torch.float32
        self.patterns = torch.zeros(
            (n_heads, self.size, self.size), dtype=buffer_dtype, device=device
        )
        """(head, T', T'): the rows (pool 1) or the block row sums (pool > 1)."""
        self.rows_seen = 0

    @torch.no_grad()
    def __call__(
        self, layer: int, positions: torch.Tensor, rows: torch.Tensor, allowed: torch.Tensor
    ) -> None:
        if layer != self.layer:
            return
        if rows.shape[0] != 1 or rows.shape[-1] != self.n_tokens:
            raise ArgumentError(
                f"HeadGridReducer expects the rows of one sequence of {self.n_tokens} tokens, "
                f"(1, head, chunk, {self.n_tokens}); got {tuple(rows.shape)}."
            )
        weights = rows[0] * allowed[0]  # (head, chunk, T), 0 wherever the query may not attend
        positions = positions.to(self.patterns.device)
        if self.pool == 1:
            self.patterns[:, positions] = weights.to(self.patterns.dtype)
        else:
            pad = self.size * self.pool - self.n_tokens
            padded = torch.nn.functional.pad(weights.float(), (0, pad))
            keys = padded.reshape(*weights.shape[:2], self.size, self.pool).sum(-1)
            self.patterns.index_add_(1, positions // self.pool, keys)
        self.rows_seen += int(positions.shape[0])

    def values(self) -> torch.Tensor:
        """(head, T', T') in the buffer's dtype (pool 1) or float32 block means."""
        if self.rows_seen != self.n_tokens:
            raise ArgumentError(
                f"The reducer saw {self.rows_seen} rows of layer {self.layer}; expected all "
                f"{self.n_tokens}. Run a pass over every query position of that layer."
            )
        if self.pool == 1:
            return self.patterns
        counts = torch.as_tensor(block_counts(self.n_tokens, self.pool), dtype=torch.float32)
        return self.patterns / counts.to(self.patterns.device)[None, :, None]


def head_grid(
    model: Model, target: Any, layer: int, *, full: bool = False, regions: Any = None
) -> HeadGrid:
    """See `Model.head_grid`."""
    n_layers = model.shape.n_layers
    layer = check_index(layer, n_layers, "layer", "this model", allow_negative=True)
    if not isinstance(full, bool):
        raise ArgumentError(f"full must be True or False, got {full!r}.")
    t = read_target(model, target, regions, "regions")
    n_tokens = len(t.ids)
    pool = 1 if full else pool_factor(n_tokens)
    reducer = HeadGridReducer(layer, model.shape.n_heads, n_tokens, pool=pool, device=model.device)
    reduce_pass(model, t.ids, [reducer], reduce_layers=[layer])
    patterns = reducer.values().to(torch.float16).cpu().numpy()
    return HeadGrid(
        layer=layer,
        patterns=patterns,
        tokens=tuple(t.tokens),
        pool=pool,
        model_info=model.info(),
    )


@seam.provide("head_grid", Run)
def _run_head_grid(run: Run, model: Any, layer: int, full: bool = False) -> HeadGrid:
    """`Run.head_grid`."""
    return head_grid(as_model(model), run, layer, full=full)


__all__ = ["HeadGridReducer", "head_grid"]
