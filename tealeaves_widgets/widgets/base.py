"""`RunView`: what every view of a `Run` shares. The run on the wire, and the
selection (layer, query, head, region) synced both ways and validated here, so
a bad value from Python or the browser is refused with the valid range."""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets as t

from ..errors import TealeavesError
from ..run import NORMALIZATIONS, Run
from .wire import PayloadOptions, default_query, head_rows_message, run_payload


class SelectionError(TealeavesError, t.TraitError):
    """A selection (layer, query, head, region) outside the run. A TraitError,
    so traitlets rolls back a batch of updates that contains one."""


class RunView(anywidget.AnyWidget):
    """A view of one `Run`; subclasses add their own options and `_esm`."""

    payload = t.Dict().tag(sync=True)
    """The run on the wire (`wire.run_payload`); set at construction."""
    layer = t.Int(0).tag(sync=True, echo_update=False)
    """Layer shown, 0-based."""
    query = t.Unicode("").tag(sync=True, echo_update=False)
    """Name of the query whose attention the view shows."""
    head = t.Int(None, allow_none=True).tag(sync=True, echo_update=False)
    """Head shown, or None for the head average."""
    region = t.Unicode(None, allow_none=True).tag(sync=True, echo_update=False)
    """Selected region (its tokens are highlighted, its curve drawn bold), or None."""

    def __init__(
        self,
        run: Run,
        *,
        query: str | int | None = None,
        layer: int | None = None,
        options: PayloadOptions | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(run, Run):
            raise TealeavesError(
                f"{type(self).__name__} expects a tealeaves_widgets.Run, got "
                f"{type(run).__name__}; capture one first, or open a saved one with open_run."
            )
        self._run = run
        self._options = options
        name = default_query(run) if query is None else list(run.queries)[run.query_index(query)]
        super().__init__(
            payload=self._make_payload(run),
            query=name,
            layer=run.n_layers // 2 if layer is None else layer,
            **kwargs,
        )
        self.on_msg(self._on_message)

    @property
    def run(self) -> Run:
        """The run shown."""
        return self._run

    def set_run(self, run: Run) -> None:
        """Show `run` instead, keeping the selection where it still applies
        (the same query name, the layer clamped, the region if it exists)."""
        if not isinstance(run, Run):
            raise TealeavesError(
                f"set_run expects a tealeaves_widgets.Run, got {type(run).__name__}."
            )
        payload = self._make_payload(run)
        query = self.query if self.query in run.queries else default_query(run)
        with self.hold_sync():
            self._run = run
            self.query = query
            self.layer = min(self.layer, run.n_layers - 1)
            if self.head is not None and self.head >= run.n_heads:
                self.head = None
            if self.region is not None and self.region not in run.regions:
                self.region = None
            self._fit_options(run)
            self.payload = payload

    def _make_payload(self, run: Run) -> dict[str, Any]:
        """What goes on the wire for `run` (a hook)."""
        return run_payload(run, self._options)

    def _fit_options(self, run: Run) -> None:
        """Drop options of subclasses that `run` does not have (a hook)."""

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

    @t.validate("region")
    def _check_region(self, proposal: t.Bunch) -> str | None:
        region = proposal["value"]
        if region is not None and region not in self._run.regions:
            names = list(self._run.regions)
            raise SelectionError(
                f"Unknown region {region!r}; this run has regions {names} (or None: no selection)."
            )
        return region

    def _on_message(self, _widget: Any, content: Any, _buffers: list) -> None:
        """Answer the front end's request for per-head rows beyond the payload."""
        if not isinstance(content, dict) or content.get("kind") != "head_rows":
            return
        reply, buffers = head_rows_message(self._run, int(content.get("query", -1)))
        self.send(reply, buffers)


class CurvesOptions(t.HasTraits):
    """Options of the cooking curves, shared by `Explorer` and `CurvesView`
    (listed before the `RunView` base, so its `_fit_options` runs first)."""

    normalize = t.Enum(NORMALIZATIONS, default_value="raw").tag(sync=True, echo_update=False)
    """Normalisation of the cooking curves, one of `Run.curves`' (raw, share,
    per-region, density)."""
    hidden = t.List(t.Unicode()).tag(sync=True, echo_update=False)
    """Regions whose curves are hidden (their legend entry was clicked off)."""

    def _fit_options(self, run: Run) -> None:
        super()._fit_options(run)  # type: ignore[misc]
        self.hidden = [name for name in self.hidden if name in run.regions]

    @t.validate("hidden")
    def _check_hidden(self, proposal: t.Bunch) -> list[str]:
        hidden = list(proposal["value"])
        names = list(self._run.regions)  # type: ignore[attr-defined]
        unknown = [name for name in hidden if name not in names]
        if unknown:
            raise SelectionError(f"Unknown region(s) {unknown} in hidden; this run has {names}.")
        return hidden
