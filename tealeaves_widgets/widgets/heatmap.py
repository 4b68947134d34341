"""`TokenHeatmap`: the prompt as text, each token coloured by the attention
one query pays it at one layer."""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets as t

from ..errors import TealeavesError
from ..run import Run
from ._bundle import esm
from .wire import PayloadOptions, default_query, head_rows_message, run_payload

SCALES = ("linear", "log", "layer")
"""Colour scales: linear over all layers, log (4 decades below the maximum
over all layers), or linear normalised to each layer's maximum."""


class SelectionError(TealeavesError, t.TraitError):
    """A selection (layer, query, head) outside the run. A TraitError, so
    traitlets rolls back a batch of updates that contains one."""


class TokenHeatmap(anywidget.AnyWidget):
    """Token heatmap of a `Run`.

    The selection (`layer`, `query`, `head`, `scale`, and the two masks) is
    synced both ways: moving the slider in the browser updates `layer` here,
    and setting `layer` here moves the slider.
    """

    _esm = esm("heatmap")

    payload = t.Dict().tag(sync=True)
    """The run on the wire (`wire.run_payload`); set once, at construction."""
    layer = t.Int(0).tag(sync=True, echo_update=False)
    """Layer shown, 0-based."""
    query = t.Unicode("").tag(sync=True, echo_update=False)
    """Name of the query whose attention colours the tokens."""
    head = t.Int(None, allow_none=True).tag(sync=True, echo_update=False)
    """Head shown, or None for the head average."""
    scale = t.Enum(SCALES, default_value="linear").tag(sync=True, echo_update=False)
    """Colour scale, one of `SCALES`."""
    mask_template = t.Bool(False).tag(sync=True, echo_update=False)
    """Leave chat-template tokens out of the colour scale."""
    mask_sink = t.Bool(True).tag(sync=True, echo_update=False)
    """Leave the first token (the attention sink) out of the colour scale."""

    def __init__(
        self,
        run: Run,
        *,
        query: str | int | None = None,
        layer: int | None = None,
        head: int | None = None,
        scale: str = "linear",
        options: PayloadOptions | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(run, Run):
            raise TealeavesError(
                f"TokenHeatmap expects a tealeaves_widgets.Run, got {type(run).__name__}; "
                "capture one first, or open a saved one with open_run."
            )
        self._run = run
        name = default_query(run) if query is None else list(run.queries)[run.query_index(query)]
        super().__init__(
            payload=run_payload(run, options),
            query=name,
            layer=run.n_layers // 2 if layer is None else layer,
            head=head,
            scale=scale,
            **kwargs,
        )
        self.on_msg(self._on_message)

    @property
    def run(self) -> Run:
        """The run shown."""
        return self._run

    @t.validate("layer")
    def _check_layer(self, proposal: t.Bunch) -> int:
        layer = proposal["value"]
        n_layers = self._run.n_layers
        if not 0 <= layer < n_layers:
            raise SelectionError(
                f"layer={layer} is out of range; this run has layers 0..{n_layers - 1}."
            )
        return layer

    @t.validate("query")
    def _check_query(self, proposal: t.Bunch) -> str:
        query = proposal["value"]
        if query not in self._run.queries:
            names = list(self._run.queries)
            raise SelectionError(f"Unknown query {query!r}; this run has queries {names}.")
        return query

    @t.validate("head")
    def _check_head(self, proposal: t.Bunch) -> int | None:
        head = proposal["value"]
        n_heads = self._run.n_heads
        if head is not None and not 0 <= head < n_heads:
            raise SelectionError(
                f"head={head} is out of range; this run has heads 0..{n_heads - 1}, "
                "or None for the average."
            )
        return head

    def _on_message(self, _widget: Any, content: Any, _buffers: list) -> None:
        """Answer the front end's request for per-head rows beyond the payload."""
        if not isinstance(content, dict) or content.get("kind") != "head_rows":
            return
        reply, buffers = head_rows_message(self._run, int(content.get("query", -1)))
        self.send(reply, buffers)
