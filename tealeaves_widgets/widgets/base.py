"""What every view shares.

`View`: the layer and query selection, synced both ways and validated here,
so a bad value from Python or the browser is refused with the valid range;
unknown keyword arguments refused; and the kernel side of the messages the
front end sends (`{v, kind, id, ...}`), answered with a reply of the same
`id` or an error reply that the front end shows.

`RunView`: a view of one `Run` (the run on the wire, head and region).
`ResultView`: a view of one other core result, drawn from one synced payload.
`CurvesOptions` and `HiddenRegions`: options several views share.
`check_exclude`: the `exclude` option of the views, checked as
`core.masses.resolve_exclusion` does and against the regions they have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import anywidget
import traitlets as t

from ..core.masses import AUTO, resolve_exclusion
from ..core.run import NORMALIZATIONS, Run
from ..core.selection import resolve_query
from ..errors import ArgumentError, ArgumentTypeError, SelectionError
from .schema import MESSAGE_VERSION, ErrorReply, Request
from .wire import PayloadOptions, head_rows_message, run_payload


class TraitSelectionError(SelectionError, t.TraitError):
    """A `SelectionError` that is also a traitlets `TraitError`, so traitlets
    rolls back a batch of updates that contains one. Catch it as
    `tw.SelectionError`."""


class TraitArgumentError(ArgumentError, t.TraitError):
    """An `ArgumentError` that is also a traitlets `TraitError` (see
    `TraitSelectionError`). Catch it as `tw.ArgumentError`."""


ExcludeValue = str | list[str] | None
"""The `exclude` option as it is synced: "auto", None, "first" or a region's
name, or a list of those."""


def check_exclude(value: object, regions: Sequence[str]) -> ExcludeValue:
    """`value` as an `exclude` option of a view whose regions are `regions`:
    checked as `core.masses.resolve_exclusion` checks it (a tuple becomes a
    list, as the browser sends it back), each region name checked against
    `regions`. Raises `TraitArgumentError` or `TraitSelectionError`."""
    try:
        exclusion = resolve_exclusion(value, "share")
    except ArgumentError as error:
        raise TraitArgumentError(str(error)) from None
    missing = [name for name in exclusion.regions if name not in regions]
    if missing:
        raise TraitSelectionError(
            f"exclude={value!r} names region(s) {missing} that this view does not have; use "
            f'"auto" (the first token in "share", nothing otherwise), "first" (the first '
            f"token), None (nothing), or region(s) of {list(regions)}."
        )
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return value  # type: ignore[return-value]  # "auto", None or a name, checked above


Handler = Callable[[dict[str, Any]], tuple[dict[str, Any], list[memoryview]]]
"""Answers one request of the front end: (reply content, buffers)."""


class View(anywidget.AnyWidget):
    """Base of every view: layer and query, kwargs checked, requests answered.

    Subclasses say what the selection ranges over (`_n_layers`,
    `_query_names`) and which requests they answer (`_handlers`)."""

    layer = t.Int(0).tag(sync=True, echo_update=False)
    """Layer shown, 0-based."""
    query = t.Unicode("").tag(sync=True, echo_update=False)
    """Name of the query whose attention the view shows."""

    def __init__(self, **kwargs: Any) -> None:
        # subclasses check the user's keywords (`_reject_unknown`) before adding the payload
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    # -- what the selection ranges over (subclasses) ---------------------------

    @property
    def _n_layers(self) -> int:
        raise NotImplementedError

    @property
    def _query_names(self) -> Sequence[str]:
        raise NotImplementedError

    def _handlers(self) -> dict[str, Handler]:
        """Request kind -> handler (none by default)."""
        return {}

    def _pick_query(self, query: str | int | None, what: str) -> str:
        return resolve_query(query, list(self._query_names), what)

    # -- validation ----------------------------------------------------------------

    @t.validate("layer")
    def _check_layer(self, proposal: t.Bunch) -> int:
        layer, n = proposal["value"], self._n_layers
        if not 0 <= layer < n:
            raise TraitSelectionError(
                f"layer={layer} is out of range; this view has layers 0..{n - 1}."
            )
        return layer

    @t.validate("query")
    def _check_query(self, proposal: t.Bunch) -> str:
        query, names = proposal["value"], list(self._query_names)
        if query not in names:
            raise TraitSelectionError(f"Unknown query {query!r}; this view has queries {names}.")
        return query

    # -- requests from the front end ------------------------------------------------

    def _on_message(self, _widget: Any, content: Any, _buffers: list) -> None:
        """Answer a request `{v, kind, id, ...}` with a reply of the same kind
        and id, or `{v, kind: "error", id, request, message}` when it fails."""
        if not isinstance(content, dict):
            return
        request: Request = content  # type: ignore[assignment]
        kind, request_id = request.get("kind"), request.get("id")
        handler = self._handlers().get(str(kind))
        try:
            if request.get("v") != MESSAGE_VERSION:
                raise ArgumentError(
                    f"The front end sent message version {request.get('v')!r}; this kernel reads "
                    f"version {MESSAGE_VERSION}. Reinstall tealeaves-widgets so both come from "
                    "the same version, then restart the kernel and reload the page."
                )
            if handler is None:
                raise ArgumentError(
                    f"This view answers no request of kind {kind!r}; it answers "
                    f"{sorted(self._handlers())}."
                )
            reply, buffers = handler(dict(request))
        except Exception as error:  # the front end shows it instead of waiting
            failure: ErrorReply = {
                "v": MESSAGE_VERSION,
                "kind": "error",
                "id": request_id if isinstance(request_id, int) else -1,
                "request": str(kind),
                "message": f"{type(error).__name__}: {error}",
            }
            self.send(failure, [])
            return
        self.send({**reply, "v": MESSAGE_VERSION, "id": request_id}, buffers)


def _reject_unknown(cls: type, kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments that are not traits of `cls` (traitlets would
    only warn, and a misspelt option would be silently ignored)."""
    known = set(cls.class_trait_names())  # type: ignore[attr-defined]
    unknown = sorted(
        key for key in kwargs if key not in known or key.startswith("_") or key in _INTERNAL
    )
    if unknown:
        public = sorted(
            name
            for name in cls.class_trait_names(sync=True)  # type: ignore[attr-defined]
            if not name.startswith("_") and name not in _INTERNAL
        )
        raise ArgumentTypeError(
            f"{cls.__name__} got unknown keyword argument(s) {unknown}; its options are "
            f"{public}. Check the spelling."
        )


_INTERNAL = {"payload", "comm", "keys", "log", "ablation", "runs", "detail"}
"""Traits the user does not set at construction (the payload is built from the result)."""


R = TypeVar("R")
"""The result type a `ResultView` shows."""


class ResultView(anywidget.AnyWidget, Generic[R]):
    """Base of the views of one core result (not a `Run`) drawn from one
    synced payload built at construction: the result's type checked, unknown
    keyword arguments refused (`_reject_unknown`), the result kept (`result`).

    Subclasses set `_result_type` (the result class accepted), `_result_from`
    (where such a result comes from, for the error message) and `_payload_of`
    (result -> payload, a `staticmethod`), and may override `_initial_options`
    (options that default from the result)."""

    _result_type: ClassVar[type]
    """The result class the view accepts."""
    _result_from: ClassVar[str]
    """Where such a result comes from, e.g. "run.neurons(layer)"."""
    _payload_of: ClassVar[Callable[[Any], Mapping[str, Any]]]
    """Result -> what `payload` holds (a `staticmethod` of the view's payload function)."""

    payload = t.Dict().tag(sync=True)
    """The result on the wire (`_payload_of(result)`); set at construction."""

    def __init__(self, result: R, **kwargs: Any) -> None:
        if not isinstance(result, self._result_type):
            raise ArgumentTypeError(
                f"{type(self).__name__} expects a tw.{self._result_type.__name__} "
                f"(from {self._result_from}), got {type(result).__name__}."
            )
        _reject_unknown(type(self), kwargs)
        self._result = result
        kwargs = self._initial_options(result, kwargs)
        # through the class: pyright would bind a callable ClassVar read on the instance
        super().__init__(payload=dict(type(self)._payload_of(result)), **kwargs)

    @property
    def result(self) -> R:
        """The result shown (the one the view was made from)."""
        return self._result

    def _initial_options(self, result: R, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The user's checked keyword arguments with the options that default
        from `result` filled in (a hook; `self._result` is set)."""
        return kwargs


class RunView(View):
    """A view of one `Run`; subclasses add their own options and `_esm`."""

    payload = t.Dict().tag(sync=True)
    """The run on the wire (`wire.run_payload`); set at construction."""
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
            raise ArgumentTypeError(
                f"{type(self).__name__} expects a tealeaves_widgets.Run, got "
                f"{type(run).__name__}; capture one first, or open a saved one with open_run."
            )
        self._run = run
        self._options = options
        _reject_unknown(type(self), kwargs)
        super().__init__(
            payload=self._make_payload(run),
            query=resolve_query(query, list(run.queries), "this run"),
            layer=run.n_layers // 2 if layer is None else layer,
            **self._internal_state(),
            **kwargs,
        )

    @property
    def run(self) -> Run:
        """The run shown."""
        return self._run

    @property
    def _n_layers(self) -> int:
        return self._run.n_layers

    @property
    def _query_names(self) -> Sequence[str]:
        return list(self._run.queries)

    @property
    def _region_names(self) -> Sequence[str]:
        return list(self._run.regions)

    def set_run(self, run: Run) -> None:
        """Show `run` instead, keeping the selection where it still applies
        (the same query name, the layer clamped, the region if it exists)."""
        if not isinstance(run, Run):
            raise ArgumentTypeError(
                f"set_run expects a tealeaves_widgets.Run, got {type(run).__name__}."
            )
        payload = self._make_payload(run)
        query = self.query if self.query in run.queries else resolve_query(None, list(run.queries))
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
        return dict(run_payload(run, self._options))

    def _internal_state(self) -> dict[str, Any]:
        """Synced traits of a subclass set from its result at construction,
        beside the payload (a hook; the user cannot pass them)."""
        return {}

    def _fit_options(self, run: Run) -> None:
        """Drop options of subclasses that `run` does not have (a hook)."""

    def _handlers(self) -> dict[str, Handler]:
        return {"head_rows": self._head_rows}

    def _head_rows(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[memoryview]]:
        """The full per-head rows of one query, beyond what the payload holds."""
        query = request.get("query")
        if isinstance(query, bool) or not isinstance(query, int):
            raise ArgumentTypeError(f"head_rows needs an int query row, got {query!r}.")
        reply, buffers = head_rows_message(self._run, query, int(request.get("id", 0)))
        return dict(reply), buffers

    @t.validate("head")
    def _check_head(self, proposal: t.Bunch) -> int | None:
        head = proposal["value"]
        n_heads = self._run.n_heads
        if head is not None and not 0 <= head < n_heads:
            raise TraitSelectionError(
                f"head={head} is out of range; this run has heads 0..{n_heads - 1}, "
                "or None for the average."
            )
        return head

    @t.validate("region")
    def _check_region(self, proposal: t.Bunch) -> str | None:
        region = proposal["value"]
        if region is not None and region not in self._run.regions:
            names = list(self._run.regions)
            raise TraitSelectionError(
                f"Unknown region {region!r}; this run has regions {names} (or None: no selection)."
            )
        return region


class HiddenRegions(t.HasTraits):
    """The `hidden` option of views with cooking curves: regions whose curves
    are hidden (their legend entry was clicked off). Listed before the view's
    base class; the view says which regions exist (`_region_names`)."""

    hidden = t.List(t.Unicode()).tag(sync=True, echo_update=False)
    """Regions whose curves are hidden."""

    @t.validate("hidden")
    def _check_hidden(self, proposal: t.Bunch) -> list[str]:
        hidden = list(proposal["value"])
        names = list(self._region_names)  # type: ignore[attr-defined]
        unknown = [name for name in hidden if name not in names]
        if unknown:
            raise TraitSelectionError(
                f"Unknown region(s) {unknown} in hidden; the regions are {names}."
            )
        return hidden


class CurvesOptions(HiddenRegions):
    """Options of the cooking curves of a run, shared by `Explorer` and
    `CurvesView` (listed before the `RunView` base, so its `_fit_options` runs
    first)."""

    normalize = t.Enum(NORMALIZATIONS, default_value="raw").tag(sync=True, echo_update=False)
    """Normalisation of the cooking curves, one of `Run.curves`' (raw, share,
    per-region, density)."""
    exclude = t.Any(AUTO).tag(sync=True, echo_update=False)
    """What the curves leave out before normalising, as `Run.curves(exclude=...)`:
    "auto" (the first token in "share", nothing otherwise), "first" (the first
    token, the attention sink), a region's name (e.g. "template"), a list of
    those, or None. The view shows the excluded mass on its own."""

    @t.validate("exclude")
    def _check_exclude(self, proposal: t.Bunch) -> ExcludeValue:
        return check_exclude(proposal["value"], list(self._region_names))  # type: ignore[attr-defined]

    def _fit_options(self, run: Run) -> None:
        super()._fit_options(run)  # type: ignore[misc]
        self.hidden = [name for name in self.hidden if name in run.regions]
        named = resolve_exclusion(self.exclude, "share").regions
        if any(name not in run.regions for name in named):
            self.exclude = AUTO  # the new run lacks a region it named
