"""What each block adds to the residual stream, and how the stream's states at
different layers align (numpy and pandas): `ResidualDecomposition` and
`CrossLayerCosine`, the results of `Model.residual_decomposition` and
`Model.cross_layer_cosine` (also `Run.residual_decomposition`,
`Run.cross_layer_cosine`).

A decoder block adds two terms to the stream:

    block output = block input + attention term + MLP term

The attention term is what the block actually adds after attention: the
attention module's output passed through any post-attention norm (Gemma 2
and 3 have one); the MLP term likewise after any post-feedforward norm. In a
sequential block they are read as differences of the stream itself
(post-attention residual - block input; block output - post-attention
residual), so they are what was added whatever the block does in between; in
a block that runs attention and MLP in parallel (GPT-NeoX) they are the two
modules' outputs, and the identity is checked on every read.

Per layer and query the decomposition keeps the four norms (input,
attention term, MLP term, output) and the cosine of each of the three
contributions with the output; `identity_error` is the largest
|output - (input + attention + MLP)| over the hidden dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ArgumentError, ArgumentTypeError
from . import seam
from .selection import resolve_query
from .states import cosine

COMPONENTS = ("block_input", "attention", "mlp", "block_output")
"""The four vectors of a block, in the order of `ResidualDecomposition.norms`."""
CONTRIBUTIONS = ("block_input", "attention", "mlp")
"""The three terms whose sum is the block output, in the order of `cosines`."""
CROSS_SOURCES = ("hidden_in", "hidden_out", "attn_out", "mlp_out", "attn_term", "mlp_term")
"""States `cross_layer_cosine` compares across layers: the block's input and
output; the attention and MLP modules' outputs (the sources of
`Snapshots`, before any post-norm); the attention and MLP terms added to the
stream (after any post-norm; equal to the modules' outputs in families without
post-norms)."""


def check_source(source: object) -> str:
    """`source` if it is one of `CROSS_SOURCES`, else a clear error."""
    if not isinstance(source, str) or source not in CROSS_SOURCES:
        raise ArgumentError(
            f"Unknown source {source!r}; the sources are {list(CROSS_SOURCES)} "
            '(e.g. source="hidden_out", the residual stream after each block).'
        )
    return source


@dataclass(frozen=True, repr=False)
class ResidualDecomposition:
    """Per layer, at each query: norms of the block's input, attention term,
    MLP term and output, and the cosine of each contribution with the output."""

    queries: dict[str, int]
    """Query name -> token position, in the order of the (query) axis."""
    tokens: tuple[str, ...]
    """(query,) the text of the token at each query."""
    norms: NDArray[np.float32]
    """(query, component, layer) L2 norms, components as `COMPONENTS`."""
    cosines: NDArray[np.float32]
    """(query, contribution, layer) cosine of each of `CONTRIBUTIONS` with the
    block output (NaN where either is 0)."""
    identity_error: NDArray[np.float32]
    """(query, layer) max |output - (input + attention + MLP)| over the hidden
    dimensions."""
    parallel: bool
    """True when the blocks run attention and MLP in parallel (the terms are the
    modules' outputs), False when they run in sequence (the terms are read off
    the residual stream)."""
    model_info: dict

    @classmethod
    def from_vectors(
        cls,
        queries: dict[str, int],
        tokens: tuple[str, ...] | list[str],
        block_input: NDArray,
        attention: NDArray,
        mlp: NDArray,
        block_output: NDArray,
        *,
        parallel: bool,
        model_info: dict,
    ) -> ResidualDecomposition:
        """Norms, cosines and the identity's error of (query, layer, hidden)
        vectors, computed in float64."""
        parts = [np.asarray(v, np.float64) for v in (block_input, attention, mlp, block_output)]
        shapes = {p.shape for p in parts}
        if len(shapes) != 1 or parts[0].ndim != 3 or parts[0].shape[0] != len(queries):
            raise ArgumentError(
                f"The four vectors must share one (query, layer, hidden) shape with "
                f"{len(queries)} queries; got shapes {[p.shape for p in parts]}."
            )
        if len(tokens) != len(queries):
            raise ArgumentError(f"Expected {len(queries)} query tokens, got {len(tokens)}.")
        inp, attn, mlp_term, out = parts
        norms = np.stack([np.linalg.norm(p, axis=-1) for p in parts], axis=1)
        cosines = np.stack([cosine(p, out) for p in (inp, attn, mlp_term)], axis=1)
        error = np.abs(out - (inp + attn + mlp_term)).max(axis=-1)
        return cls(
            queries={str(k): int(v) for k, v in queries.items()},
            tokens=tuple(str(t) for t in tokens),
            norms=norms.astype(np.float32),
            cosines=cosines.astype(np.float32),
            identity_error=error.astype(np.float32),
            parallel=bool(parallel),
            model_info=dict(model_info),
        )

    @property
    def n_layers(self) -> int:
        return int(self.norms.shape[2])

    @property
    def n_queries(self) -> int:
        return len(self.queries)

    def query_index(self, query: str | int | None = None) -> int:
        """Row of `query` (a name, an int index into `queries`, or None for
        "final" when present, else the first) in the (query) axis."""
        return list(self.queries).index(resolve_query(query, list(self.queries), "this result"))

    def table(self, query: str | int | None = None) -> pd.DataFrame:
        """One row per query and layer (every query, or the one `query`
        selects): its position and token, the four norms (`input_norm`,
        `attn_norm`, `mlp_norm`, `output_norm`), the cosines with the output
        (`input_cos`, `attn_cos`, `mlp_cos`) and `identity_error`."""
        rows = range(self.n_queries) if query is None else [self.query_index(query)]
        names = list(self.queries)
        frames = []
        for q in rows:
            frame = pd.DataFrame(
                {
                    "query": names[q],
                    "position": self.queries[names[q]],
                    "token": self.tokens[q],
                    "layer": np.arange(self.n_layers),
                    "input_norm": self.norms[q, 0],
                    "attn_norm": self.norms[q, 1],
                    "mlp_norm": self.norms[q, 2],
                    "output_norm": self.norms[q, 3],
                    "input_cos": self.cosines[q, 0],
                    "attn_cos": self.cosines[q, 1],
                    "mlp_cos": self.cosines[q, 2],
                    "identity_error": self.identity_error[q],
                }
            )
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        kind = "parallel attention and MLP" if self.parallel else "sequential blocks"
        queries = ", ".join(
            f"{name} @{pos} {token!r}"
            for (name, pos), token in zip(self.queries.items(), self.tokens, strict=True)
        )
        lines = [
            f"ResidualDecomposition({model}: {self.n_layers} layers, {kind}; "
            f"identity error <= {float(np.nanmax(self.identity_error)):.1e})",
            f"  queries: {queries}",
        ]
        q = self.query_index()
        for layer in sorted({0, self.n_layers // 2, self.n_layers - 1}):
            n, c = self.norms[q, :, layer], self.cosines[q, :, layer]
            lines.append(
                f"  layer {layer} at {list(self.queries)[q]}: |in| {n[0]:.3g}, |attn| {n[1]:.3g}, "
                f"|mlp| {n[2]:.3g}, |out| {n[3]:.3g}; cos with out: in {c[0]:.3f}, "
                f"attn {c[1]:.3f}, mlp {c[2]:.3f}"
            )
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel a decomposition displays as `tw.ResidualView`."""
        return seam.display_bundle(self, include, exclude)


@dataclass(frozen=True, repr=False)
class CrossLayerCosine:
    """The cosine between one source's states at every pair of layers, at
    one query."""

    source: str
    """One of `CROSS_SOURCES`."""
    query: str
    """The query's name."""
    position: int
    """Its token position."""
    token: str
    """The text of its token."""
    cosine: NDArray[np.float32]
    """(layer, layer) symmetric, 1 on the diagonal (NaN where a state is 0)."""
    model_info: dict

    @classmethod
    def from_states(
        cls,
        states: NDArray,
        *,
        source: str,
        query: str,
        position: int,
        token: str,
        model_info: dict,
    ) -> CrossLayerCosine:
        """The matrix of (layer, hidden) `states`, computed in float64."""
        values = np.asarray(states, np.float64)
        if values.ndim != 2 or values.shape[0] < 1:
            raise ArgumentTypeError(
                f"states must be a (layer, hidden) array, got shape {values.shape}."
            )
        matrix = cosine(values[:, None, :], values[None, :, :])
        return cls(
            source=check_source(source),
            query=str(query),
            position=int(position),
            token=str(token),
            cosine=matrix.astype(np.float32),
            model_info=dict(model_info),
        )

    @property
    def n_layers(self) -> int:
        return int(self.cosine.shape[0])

    def table(self) -> pd.DataFrame:
        """The matrix as a (layer, layer) frame: index "layer", columns "layer"."""
        index = pd.RangeIndex(self.n_layers, name="layer")
        return pd.DataFrame(self.cosine, index=index, columns=index.rename("layer"))

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        n = self.n_layers
        off = self.cosine[~np.eye(n, dtype=bool)]
        spread = (
            f"off-diagonal {float(np.nanmin(off)):.3f}..{float(np.nanmax(off)):.3f}"
            if off.size and np.isfinite(off).any()
            else "one layer"
        )
        adjacent = np.diagonal(self.cosine, 1)
        step = (
            f", adjacent layers mean {float(np.nanmean(adjacent)):.3f}"
            if adjacent.size and np.isfinite(adjacent).any()
            else ""
        )
        return (
            f"CrossLayerCosine({model}: {self.source} at {self.query} @{self.position} "
            f"{self.token!r}, {n} x {n} layers; {spread}{step})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel the matrix displays as `tw.CrossLayerView`."""
        return seam.display_bundle(self, include, exclude)
