"""`Model.layer_stats` and `Model.region_attention` (results in
`core.layer_stats`): one forward pass whose attention rows go to reducers
(`models.capture`, `capturing(..., reducers=...)`) chunk by chunk, so no
(pos x pos) matrix is kept: memory O(chunk x pos) per layer.

- `layer_stats` reduces the rows of every query position into [layer, head]
  sums (weights, squares, entropies, sink weight, distances, row maxima;
  float64 accumulators) and divides at the end.
- `region_attention` reduces the rows of the source region's tokens only
  (`reduce_positions`), summing their weights on the destination's tokens:
  cheaper than a capture with the source tokens as query positions, which
  would keep (layer, head, src, pos) rows.

A `Run` is read from its own `token_ids`, never re-rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core import seam
from ..core.layer_stats import STATISTICS, LayerStats, RegionAttention
from ..core.run import RegionInfo, Run
from ..errors import ArgumentTypeError, EmptyRegionError, SelectionError
from .capture import capturing
from .targets import as_model, read_target

if TYPE_CHECKING:
    from .model import Model


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


class LayerStatsReducer:
    """Accumulates the sums behind `core.layer_stats.STATISTICS` per [layer,
    head] from chunks of rows (a `models.capture.Reducer`)."""

    def __init__(self, n_layers: int, n_heads: int, device: torch.device) -> None:
        dtype = _accumulator_dtype(device)
        self.dtype = dtype

        def zeros() -> torch.Tensor:
            return torch.zeros((n_layers, n_heads), dtype=dtype, device=device)

        self.sum_w, self.sum_w2, self.entries = zeros(), zeros(), zeros()
        self.max_w = zeros()
        self.entropy, self.entropy_rows = zeros(), zeros()
        self.sink, self.distance, self.row_max, self.rows = zeros(), zeros(), zeros(), zeros()

    @torch.no_grad()
    def __call__(
        self, layer: int, positions: torch.Tensor, rows: torch.Tensor, allowed: torch.Tensor
    ) -> None:
        # elementwise work in float32 on the (batch, head, chunk, kv) chunk; every
        # sum over it accumulates in float64
        acc = self.dtype
        w = rows.float() * allowed  # 0 off the allowed entries
        n_keys = allowed.sum(-1, dtype=acc)  # (batch, 1, chunk)
        self.sum_w[layer] += w.sum((0, 2, 3), dtype=acc)
        self.sum_w2[layer] += (w * w).sum((0, 2, 3), dtype=acc)
        self.entries[layer] += n_keys.sum()
        self.max_w[layer] = torch.maximum(self.max_w[layer], w.amax((0, 2, 3)).to(acc))
        total = w.sum(-1, dtype=acc)  # (batch, head, chunk)
        # entropy of p = w / total: log(total) - sum(w log w) / total
        wlogw = torch.xlogy(w, w).sum(-1, dtype=acc)
        tiny = torch.finfo(acc).tiny
        entropy = torch.log(total.clamp_min(tiny)) - wlogw / total.clamp_min(tiny)
        chooses = n_keys >= 2
        normalised = torch.where(chooses, entropy / torch.log(n_keys.clamp_min(2)), 0.0)
        self.entropy[layer] += normalised.sum((0, 2))
        self.entropy_rows[layer] += chooses.sum(dtype=acc)
        self.sink[layer] += w[..., 0].sum((0, 2), dtype=acc)
        # sum_j w_ij (i - j), each product in float32 (no cancellation between
        # large terms on long prompts), summed in float64
        keys = torch.arange(w.shape[-1], device=w.device)
        offset = (positions.to(w.device)[:, None] - keys[None, :]).clamp_min(0).float()
        self.distance[layer] += (w * offset).sum((0, 2, 3), dtype=acc)
        self.row_max[layer] += w.amax(-1).sum((0, 2), dtype=acc)
        self.rows[layer] += w.shape[0] * w.shape[2]

    def values(self) -> np.ndarray:
        """(statistic, layer, head) float64, as `STATISTICS`."""
        entries = self.entries.clamp_min(1)
        mean = self.sum_w / entries
        sd = (self.sum_w2 / entries - mean * mean).clamp_min(0).sqrt()
        entropy = torch.where(
            self.entropy_rows > 0,
            self.entropy / self.entropy_rows.clamp_min(1),
            torch.full_like(self.entropy, float("nan")),
        )
        rows = self.rows.clamp_min(1)
        found = {
            "mean": mean,
            "sd": sd,
            "max": self.max_w,
            "entropy": entropy,
            "sink_mass": self.sink / rows,
            "distance": self.distance / rows,
            "row_max": self.row_max / rows,
        }
        return np.stack([found[name].double().cpu().numpy() for name in STATISTICS])


class RegionMassReducer:
    """Per [layer, head] the summed weight the reduced rows put on `keys`
    (a `models.capture.Reducer`)."""

    def __init__(self, keys: torch.Tensor, n_layers: int, n_heads: int) -> None:
        self.keys = keys
        self.dtype = _accumulator_dtype(keys.device)
        self.mass = torch.zeros((n_layers, n_heads), dtype=self.dtype, device=keys.device)

    @torch.no_grad()
    def __call__(
        self, layer: int, positions: torch.Tensor, rows: torch.Tensor, allowed: torch.Tensor
    ) -> None:
        picked = rows[..., self.keys].to(self.dtype) * allowed[..., self.keys]
        self.mass[layer] += picked.sum((0, 2, 3))


@torch.no_grad()
def reduce_pass(
    model: Model,
    ids: np.ndarray,
    reducers: list[Any],
    reduce_positions: torch.Tensor | None = None,
    reduce_layers: list[int] | None = None,
) -> None:
    """One forward pass of `ids` whose rows go to `reducers` (no rows kept),
    those of every layer or of `reduce_layers` only."""
    tensor = torch.as_tensor(np.asarray(ids, np.int64), device=model.device)[None]
    nothing = torch.zeros((1, 1), dtype=torch.long, device=model.device)
    with capturing(
        model.hf_model,
        model.arch,
        nothing,
        keep_rows=False,
        reducers=reducers,
        reduce_positions=reduce_positions,
        reduce_layers=reduce_layers,
    ):
        model.hf_model(input_ids=tensor, **model._forward_kwargs)


def layer_stats(model: Model, target: Any, regions: Any = None) -> LayerStats:
    """See `Model.layer_stats`."""
    ids = read_target(model, target, regions, "regions").ids
    s = model.shape
    reducer = LayerStatsReducer(s.n_layers, s.n_heads, model.device)
    reduce_pass(model, ids, [reducer])
    return LayerStats.from_values(reducer.values(), len(ids), model.info())


def _region_tokens(
    name: object, regions: dict[str, RegionInfo], what: str, role: str
) -> np.ndarray:
    if not isinstance(name, str):
        raise ArgumentTypeError(
            f"{role} must be a region name (str), got {type(name).__name__} {name!r}; "
            f"{what} has regions {list(regions)}."
        )
    if name not in regions:
        raise SelectionError(
            f"Unknown region {name!r} for {role}; {what} has regions {list(regions)}."
        )
    tokens = np.asarray(regions[name].token_indices, np.int64)
    if tokens.size == 0:
        raise EmptyRegionError(
            f"Region {name!r} ({role}) holds no token in {what}; pick a region with tokens."
        )
    return tokens


def region_attention(
    model: Model, target: Any, src: str, dst: str, regions: Any = None
) -> RegionAttention:
    """See `Model.region_attention`."""
    t = read_target(model, target, regions, "regions")
    ids, found, what = t.ids, t.regions, t.what
    queries = _region_tokens(src, found, what, "src")
    keys = _region_tokens(dst, found, what, "dst")
    s = model.shape
    reducer = RegionMassReducer(torch.as_tensor(keys, device=model.device), s.n_layers, s.n_heads)
    reduce_pass(model, ids, [reducer], torch.as_tensor(queries, device=model.device))
    mass = reducer.mass.double().cpu().numpy() / queries.size
    return RegionAttention(
        src=src,
        dst=dst,
        mass=mass,
        n_src=int(queries.size),
        n_dst=int(keys.size),
        model_info=model.info(),
    )


@seam.provide("layer_stats", Run)
def _run_layer_stats(run: Run, model: Any) -> LayerStats:
    """`Run.layer_stats`."""
    return layer_stats(as_model(model), run)


@seam.provide("region_attention", Run)
def _run_region_attention(run: Run, model: Any, src: str, dst: str) -> RegionAttention:
    """`Run.region_attention`."""
    return region_attention(as_model(model), run, src, dst)


__all__ = [
    "LayerStatsReducer",
    "RegionMassReducer",
    "layer_stats",
    "reduce_pass",
    "region_attention",
]
