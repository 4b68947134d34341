"""`TokenHeatmap`: the prompt as text, each token coloured by the attention
one query pays it at one layer."""

from __future__ import annotations

from typing import Any

import traitlets as t

from ..core.heatmap_scale import DEFAULT_HEATMAP_SCALE, HEATMAP_SCALES
from ..core.run import Run
from ..errors import ArgumentTypeError, SelectionError
from ._bundle import esm
from .base import Handler, RunView
from .wire import PayloadOptions, query_at_message

__all__ = ["SCALES", "TokenHeatmap"]

SCALES = HEATMAP_SCALES
"""Colour scales, the default first: "log-layer" (log, from each layer's
median weight to its maximum: readable at every layer and any prompt length),
"linear" (0 to the maximum over all layers), "log" (4 decades below the
maximum over all layers), "layer" (0 to each layer's maximum). The static
`heatmap_figure` draws the same ones."""


class TokenHeatmap(RunView):
    """Token heatmap of a `Run`.

    The selection (`layer`, `query`, `head`, `region`, `scale`, and the two
    masks) and `overview` are synced both ways: moving the slider in the browser updates
    `layer` here, and setting `layer` here moves the slider.

    Clicking a token makes it the query. With `model` (the `tw.Model` that
    captured the run; `model.explore` passes it) the kernel computes its rows
    and lens (`model.read_query`) and the view adds it to its run (`view.run`)
    and selects it; `keep_cache` lets that keep the prompt's KV cache in the
    model, so later clicks cost one decode step each. Without a model, or in
    an exported page, a click on a position that is not a query says so.
    """

    _esm = esm("heatmap")

    scale = t.Enum(SCALES, default_value=DEFAULT_HEATMAP_SCALE).tag(sync=True, echo_update=False)
    """Colour scale, one of `SCALES`; the legend says how it maps."""
    mask_template = t.Bool(False).tag(sync=True, echo_update=False)
    """Leave chat-template tokens out of the colour scale."""
    mask_sink = t.Bool(True).tag(sync=True, echo_update=False)
    """Leave the first token (the attention sink) out of the colour scale."""
    overview = t.Bool(True).tag(sync=True, echo_update=False)
    """Show the overview beside the text: a layer x token map above it, a layer
    x region matrix and the most attended tokens at the layer shown (masked
    tokens left out) beside it. A click on any of them scrolls the text."""

    def __init__(self, run: Run, *, model: Any = None, keep_cache: bool = True, **kwargs: Any):
        if model is not None and not callable(getattr(model, "read_query", None)):
            raise ArgumentTypeError(
                f"model must be the tw.Model that captured the run (tw.load_model) or None, got "
                f"{type(model).__name__}."
            )
        if not isinstance(keep_cache, bool):
            raise ArgumentTypeError(f"keep_cache must be True or False, got {keep_cache!r}.")
        self._model = model
        self._keep_cache = keep_cache
        super().__init__(run, **kwargs)

    def _handlers(self) -> dict[str, Handler]:
        return {**super()._handlers(), "query_at": self._query_at}

    def _query_at(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[memoryview]]:
        """A clicked token: its position as a new query of the run, computed by
        the model, sent with everything the payload holds per query."""
        pos, run = request.get("pos"), self._run
        if isinstance(pos, bool) or not isinstance(pos, int):
            raise ArgumentTypeError(f"query_at needs an int token position, got {pos!r}.")
        if not 0 <= pos < run.n_tokens:
            raise SelectionError(
                f"Position {pos} is outside the prompt's {run.n_tokens} tokens (0.."
                f"{run.n_tokens - 1})."
            )
        taken = [name for name, at in run.queries.items() if at == pos]
        if taken:
            raise SelectionError(f"Position {pos} is query {taken[0]!r} already; select it.")
        if self._model is None:
            raise SelectionError(
                f"This view has no model to compute position {pos} (it was built from a run "
                "alone). Show the run with the model that captured it, tw.Explorer(run, "
                "model=model), or use model.explore(case, regions)."
            )
        self._check_complete()
        reading = self._model.read_query(run, pos, keep_cache=self._keep_cache)
        self._run = run.with_query(reading)
        dtype = (self._options or PayloadOptions()).attention_dtype
        reply, buffers = query_at_message(self._run, reading, int(request["id"]), dtype)
        return dict(reply), buffers

    def _check_complete(self) -> None:
        """Refuse new queries while the run is incomplete (a hook of the live explorer)."""
