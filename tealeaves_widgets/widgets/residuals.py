"""`ResidualView` and `CrossLayerView`: what each block adds to the residual
stream (a `tw.ResidualDecomposition`) and how one source's states at
different layers align (a `tw.CrossLayerCosine`).

ResidualView: per layer, the norms of the block's input, attention term,
MLP term and output as lines, and the cosine of each contribution with the
output as lines, with a layer cursor (slider, or a click on a chart) whose
numbers a table spells out, and a query selector when there are several.
CrossLayerView: the layer x layer cosine matrix as a heatmap with a layer
cursor (its row and column framed). Numbers travel as binary float32 arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets as t

from ..core.residuals import COMPONENTS, CrossLayerCosine, ResidualDecomposition
from ..core.selection import resolve_query
from ._bundle import esm
from .base import ResultView, TraitSelectionError
from .schema import SCHEMA_VERSION, CrossLayerPayload, ModelName, ResidualPayload
from .wire import encode_array

__all__ = [
    "CROSS_LAYER_SCALES",
    "NORM_SCALES",
    "CrossLayerView",
    "ResidualView",
    "cross_layer_payload",
    "residual_payload",
]

NORM_SCALES = ("linear", "log")
"""The norms chart's y axis in `ResidualView`: linear, or log10 (norms grow by
orders of magnitude over the layers, and a last-layer MLP can dwarf the rest)."""
CROSS_LAYER_SCALES = ("range", "signed")
"""Colours of the cross-layer heatmap: "range", the matrix's smallest value
to 1 (shows structure among cosines that are all high); "signed", -1 to 1
on a diverging palette (0 is the background)."""


def _model(info: dict) -> ModelName:
    return {"model_id": str((info or {}).get("model_id", "unknown model"))}


def _float32(values: Any) -> Any:
    return encode_array(np.asarray(values, dtype=np.float32))


def residual_payload(decomposition: ResidualDecomposition) -> ResidualPayload:
    """The norms, cosines and identity errors of `decomposition` as one synced value."""
    names = list(decomposition.queries)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "residual",
        "model": _model(decomposition.model_info),
        "n_layers": decomposition.n_layers,
        "queries": [{"name": n, "pos": int(decomposition.queries[n])} for n in names],
        "query_tokens": list(decomposition.tokens),
        "parallel": bool(decomposition.parallel),
        "components": list(COMPONENTS),
        "norms": _float32(decomposition.norms),
        "cosines": _float32(decomposition.cosines),
        "identity_error": _float32(decomposition.identity_error),
        "default_query": decomposition.query_index(None),
    }


def cross_layer_payload(result: CrossLayerCosine) -> CrossLayerPayload:
    """The matrix of `result` as one synced value."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "cross_layer",
        "model": _model(result.model_info),
        "n_layers": result.n_layers,
        "source": result.source,
        "query": {"name": result.query, "pos": int(result.position)},
        "token": result.token,
        "cosine": _float32(result.cosine),
    }


def _check_layer(layer: object, n_layers: int) -> int:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise TraitSelectionError(f"layer must be an int, got {layer!r}.")
    if not 0 <= layer < n_layers:
        raise TraitSelectionError(
            f"layer={layer} is out of range; the result has {n_layers} layers, 0..{n_layers - 1}."
        )
    return int(layer)


class ResidualView(ResultView[ResidualDecomposition]):
    """A `tw.ResidualDecomposition` as two line charts over the layers: the
    norms of the block input, attention term, MLP term and block output, and
    the cosine of each contribution with the output; a layer cursor (slider,
    or click a chart) and a table of its numbers; a query selector when the
    result has several queries.

    Synced with Python: `layer`, `query` (a query name), `norm_scale` (one
    of `NORM_SCALES`). `display(result)` shows one."""

    _esm = esm("residual_view")
    _result_type = ResidualDecomposition
    _result_from = "run.residual_decomposition()"
    _payload_of = staticmethod(residual_payload)
    """The decomposition on the wire."""

    layer = t.Int(0).tag(sync=True, echo_update=False)
    """The layer under the cursor."""
    query = t.Unicode("").tag(sync=True, echo_update=False)
    """The query shown (its name)."""
    norm_scale = t.Enum(NORM_SCALES, default_value="linear").tag(sync=True, echo_update=False)
    """The norms chart's y axis, one of `NORM_SCALES`."""

    def _initial_options(
        self, result: ResidualDecomposition, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        kwargs.setdefault("layer", result.n_layers - 1)
        kwargs["query"] = resolve_query(
            kwargs.get("query"), list(result.queries), "this decomposition"
        )
        return kwargs

    @t.validate("layer")
    def _valid_layer(self, proposal: t.Bunch) -> int:
        return _check_layer(proposal["value"], self._result.n_layers)

    @t.validate("query")
    def _valid_query(self, proposal: t.Bunch) -> str:
        name = proposal["value"]
        if name not in self._result.queries:
            raise TraitSelectionError(
                f"Unknown query {name!r}; this decomposition has {list(self._result.queries)}."
            )
        return name


class CrossLayerView(ResultView[CrossLayerCosine]):
    """A `tw.CrossLayerCosine` as a layer x layer heatmap; hover a cell for
    its value; the layer cursor (slider, or click a cell) frames a row and
    a column and lists that layer's cosines with every other layer.

    Synced with Python: `layer`, `scale` (one of `CROSS_LAYER_SCALES`).
    `display(result)` shows one."""

    _esm = esm("cross_layer_view")
    _result_type = CrossLayerCosine
    _result_from = "run.cross_layer_cosine()"
    _payload_of = staticmethod(cross_layer_payload)
    """The matrix on the wire."""

    layer = t.Int(0).tag(sync=True, echo_update=False)
    """The layer under the cursor."""
    scale = t.Enum(CROSS_LAYER_SCALES, default_value="range").tag(sync=True, echo_update=False)
    """How values map to colours, one of `CROSS_LAYER_SCALES`."""

    def _initial_options(self, result: CrossLayerCosine, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("layer", result.n_layers - 1)
        return kwargs

    @t.validate("layer")
    def _valid_layer(self, proposal: t.Bunch) -> int:
        return _check_layer(proposal["value"], self._result.n_layers)
