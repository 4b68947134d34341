"""`Model.residual_decomposition` and `Model.cross_layer_cosine` (results in
`core.residuals`): one plain forward pass with hooks on the named sites of
`models.hooks`, kept at the query positions only.

The terms a block adds to the residual stream:

- sequential blocks (the architecture names the norm before the MLP,
  `Architecture.mlp_norm`): attention term = post-attention residual - block
  input, MLP term = block output - post-attention residual. Whatever the
  block applies to a module's output before adding it (Gemma 2 and 3's
  post-attention and post-feedforward norms) is inside the term, by
  definition;
- parallel blocks (`mlp_norm=None`, GPT-NeoX): the attention and MLP modules'
  outputs. The identity output = input + attention + MLP is checked on every
  read; an architecture that adds something else is refused.

A `Run` is read from its own `token_ids`, never re-rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core import seam
from ..core.residuals import (
    CROSS_SOURCES,
    CrossLayerCosine,
    ResidualDecomposition,
    check_source,
)
from ..core.run import Run
from ..core.selection import resolve_query
from ..errors import ArgumentError, CaptureError
from .hooks import read_sites
from .targets import as_model, read_target

if TYPE_CHECKING:
    from .model import Model

MODULE_SITES = {
    "hidden_in": "block_input",
    "hidden_out": "block_output",
    "attn_out": "attn_output",
    "mlp_out": "mlp_output",
}
"""Sources that are one site's value (as `models.snapshots` reads them)."""
TERMS_SEQUENTIAL = {
    "attn_term": ("post_attn_residual", "block_input"),
    "mlp_term": ("block_output", "post_attn_residual"),
}
"""Sequential blocks: source -> (site, site) whose difference it is."""
TERMS_PARALLEL = {"attn_term": "attn_output", "mlp_term": "mlp_output"}
"""Parallel blocks: source -> the module output it is."""
IDENTITY_EPS = 16
"""The parallel identity's tolerance, in units of the model dtype's epsilon
times the largest |value| of the four vectors."""


def is_parallel(model: Model) -> bool:
    """Whether `model`'s blocks have no residual stream between attention and MLP."""
    return model.arch.mlp_norm is None


def _sites(sources: Iterable[str], parallel: bool) -> list[str]:
    sites: list[str] = []
    for source in sources:
        if source in MODULE_SITES:
            needed: tuple[str, ...] = (MODULE_SITES[source],)
        elif parallel:
            needed = (TERMS_PARALLEL[source],)
        else:
            needed = TERMS_SEQUENTIAL[source]
        sites.extend(site for site in needed if site not in sites)
    return sites


@torch.no_grad()
def read_states(
    model: Model,
    ids: Sequence[int] | np.ndarray,
    positions: Sequence[int],
    sources: Sequence[str],
    forward: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Source (`core.residuals.CROSS_SOURCES`) -> (position, layer, hidden)
    float64 states at `positions` (indices into `ids`) from one forward pass
    of `ids`; `forward` adds or replaces the pass's keywords (a KV cache and
    position_ids, for a pass that continues a prefix)."""
    for source in sources:
        check_source(source)
    parallel = is_parallel(model)
    sites = _sites(sources, parallel)
    layers = list(range(model.shape.n_layers))
    values = {
        site: array.transpose(1, 0, 2).astype(np.float64)  # (position, layer, hidden)
        for site, array in read_sites(model, ids, sites, layers, positions, forward).items()
    }
    out: dict[str, np.ndarray] = {}
    for source in sources:
        if source in MODULE_SITES:
            out[source] = values[MODULE_SITES[source]]
        elif parallel:
            out[source] = values[TERMS_PARALLEL[source]]
        else:
            minuend, subtrahend = TERMS_SEQUENTIAL[source]
            out[source] = values[minuend] - values[subtrahend]
    return out


def _check_identity(model: Model, states: dict[str, np.ndarray]) -> None:
    """Refuse parallel blocks whose output is not input + attention + MLP."""
    parts = [states[s] for s in ("hidden_in", "attn_term", "mlp_term", "hidden_out")]
    error = np.abs(parts[3] - (parts[0] + parts[1] + parts[2])).max(axis=-1)
    scale = np.max([np.abs(p).max(axis=-1) for p in parts], axis=0)
    tolerance = IDENTITY_EPS * torch.finfo(model.dtype).eps * scale
    bad = np.argwhere(error > tolerance)
    if bad.size:
        q, layer = (int(i) for i in bad[0])
        raise CaptureError(
            f"{model.arch.model_type} is listed as running attention and MLP in parallel "
            f"(Architecture.mlp_norm=None), but at layer {layer} the block output differs "
            f"from input + attention output + MLP output by {error[q, layer]:.3g} (values up "
            f"to {scale[q, layer]:.3g}): the block adds something else (a post-norm, a "
            "scale). Register an Architecture entry naming the norm before the MLP "
            "(mlp_norm=...) if the block is sequential; otherwise this architecture cannot "
            "be decomposed yet."
        )


def _query_tokens(tokens: Sequence[str], queries: dict[str, int]) -> list[str]:
    return [tokens[pos] if 0 <= pos < len(tokens) else "" for pos in queries.values()]


def residual_decomposition(model: Model, target: Any, regions: Any = None) -> ResidualDecomposition:
    """See `Model.residual_decomposition`."""
    t = read_target(model, target, regions, "queries")
    ids, queries, tokens, what = t.ids, t.queries, t.tokens, t.what
    if not queries:
        raise ArgumentError(f"{what[:1].upper()}{what[1:]} has no query position to read.")
    positions = list(queries.values())
    bad = [p for p in positions if not 0 <= p < len(ids)]
    if bad:
        raise ArgumentError(f"Query positions {bad} are outside the {len(ids)} tokens of {what}.")
    sources = ("hidden_in", "attn_term", "mlp_term", "hidden_out")
    states = read_states(model, ids, positions, sources)
    parallel = is_parallel(model)
    if parallel:
        _check_identity(model, states)
    return ResidualDecomposition.from_vectors(
        queries,
        _query_tokens(tokens, queries),
        *(states[s] for s in sources),
        parallel=parallel,
        model_info=model.info(),
    )


def cross_layer_cosine(
    model: Model,
    target: Any,
    source: str = "hidden_out",
    query: str | int | None = None,
    regions: Any = None,
) -> CrossLayerCosine:
    """See `Model.cross_layer_cosine`."""
    check_source(source)
    t = read_target(model, target, regions, "queries")
    ids, queries, tokens, what = t.ids, t.queries, t.tokens, t.what
    name = resolve_query(query, list(queries), what)
    position = queries[name]
    if not 0 <= position < len(ids):
        raise ArgumentError(f"Query {name!r} at {position} is outside the {len(ids)} tokens.")
    states = read_states(model, ids, [position], [source])[source][0]
    return CrossLayerCosine.from_states(
        states,
        source=source,
        query=name,
        position=position,
        token=tokens[position],
        model_info=model.info(),
    )


@seam.provide("residual_decomposition", Run)
def _run_residual_decomposition(run: Run, model: Any) -> ResidualDecomposition:
    """`Run.residual_decomposition`."""
    return residual_decomposition(as_model(model), run)


@seam.provide("cross_layer_cosine", Run)
def _run_cross_layer_cosine(run: Run, model: Any, source: str, query: Any) -> CrossLayerCosine:
    """`Run.cross_layer_cosine`."""
    return cross_layer_cosine(as_model(model), run, source, query)


__all__ = ["CROSS_SOURCES", "cross_layer_cosine", "read_states", "residual_decomposition"]
