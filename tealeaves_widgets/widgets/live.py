"""An `Explorer` shown before its capture runs and filled in layer by layer
(`Model.explore`).

The explorer opens on a *pending* run: the prompt, its regions and queries,
zeros for the attention, `pending` set in the payload. `LiveFeed` is the
capture's `on_layer` callback: it sends each layer's head-averaged rows and
region masses to the front end as custom messages, batched so that at most
one message leaves every `min_interval` seconds (the server drops output
beyond about 1000 iopub messages a second, and the traffic stays the size of
the final payload's attention). When the pass ends, the complete run becomes
the synced payload, so a saved or exported notebook holds all of it; custom
messages are never saved.

`explore(model, case, regions)` drives it: it calls the model's own
`prepare` and `capture` methods and imports nothing of `models` (no torch
here). It is `Model.explore`, reached through `core.seam`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..core import seam
from ..core.run import Lens, Run
from ..errors import SelectionError
from ..prompt.render import RenderedPrompt
from ..prompt.resolve import ResolvedRegions
from .explorer import Explorer
from .schema import MESSAGE_VERSION, LayersMessage
from .wire import encode_array, first_token_masses

DEFAULT_MIN_INTERVAL = 0.1
"""Seconds between two messages of one feed (so at most 10 messages a second)."""


def pending_run(prompt: RenderedPrompt, resolved: ResolvedRegions, model_info: dict) -> Run:
    """A `Run` with the prompt, regions and queries of a capture that has not
    run yet, and zeros for the attention and the lens. `model_info` needs
    `n_layers` and `n_heads` (`Model.info()` has them)."""
    n_layers, n_heads = int(model_info["n_layers"]), int(model_info["n_heads"])
    n_queries, n_tokens = len(resolved.queries), len(prompt.token_ids)
    per_query = (n_layers, n_queries)
    lens = Lens(
        top_ids=np.zeros((*per_query, 0), dtype=np.int64),
        top_probs=np.zeros((*per_query, 0), dtype=np.float32),
        entropy=np.zeros(per_query, dtype=np.float32),
        kl_to_final=np.zeros(per_query, dtype=np.float32),
        tracked_ids=np.zeros(0, dtype=np.int64),
        tracked_tokens=(),
        tracked_ranks=np.zeros((*per_query, 0), dtype=np.int64),
        tracked_probs=np.zeros((*per_query, 0), dtype=np.float32),
    )
    return Run(
        text=prompt.text,
        tokens=prompt.tokens,
        token_ids=prompt.token_ids,
        offsets=prompt.offsets,
        regions=resolved.regions,
        queries=dict(resolved.queries),
        attention=np.zeros((n_layers, n_queries, n_tokens), dtype=np.float32),
        attention_heads=np.zeros((n_layers, n_heads, n_queries, n_tokens), dtype=np.float32),
        lens=lens,
        model_info=dict(model_info),
        region_spec=resolved.spec,
    )


class LiveExplorer(Explorer):
    """An `Explorer` whose run is still being captured. Its payload carries
    `pending` (layers done, total, and why it stopped if it did) and no
    per-head rows until the complete run arrives.

    Without a `layer` option the view opens on layer 0 and follows the
    newest layer computed until the user picks one (`pending["follow"]`);
    with one, it stays on that layer.

    `Model.explore` displays it in the cell that creates it; returned as
    that cell's last expression, it is not shown a second time. Displayed
    from any other cell, it shows as usual."""

    _shown_in: int | None = None

    def __init__(self, run: Run, **options: Any) -> None:
        follow = options.get("layer") is None
        if follow:
            options["layer"] = 0
        self._pending: dict[str, Any] | None = {
            "done": 0,
            "total": run.n_layers,
            "follow": follow,
        }
        super().__init__(run, **options)

    def _make_payload(self, run: Run) -> dict[str, Any]:
        payload = super()._make_payload(run)
        if self._pending is not None:
            # no per-head rows yet: the pending payload's buffers must be a subset
            # of the final one's (nbclient merges saved buffers by path)
            payload["heads"] = [None] * run.n_queries
            payload["pending"] = dict(self._pending)
        return payload

    def _check_complete(self) -> None:
        if self._pending is not None:
            done, total = self._pending["done"], self._pending["total"]
            why = self._pending.get("stopped")
            state = f"stopped after {done} of {total} layers ({why})" if why else "not finished"
            raise SelectionError(
                f"The capture has {state}; a clicked position is computed on the complete run. "
                "Run model.explore(...) again."
            )

    def complete(self, run: Run) -> None:
        """Show the complete `run`; the view is an ordinary Explorer from now on."""
        self._pending = None
        self.set_run(run)

    def halt(self, done: int, reason: str) -> None:
        """Keep the layers received so far, saying where and why the capture stopped."""
        self._pending = {**(self._pending or {}), "done": done, "stopped": reason}
        self.set_run(self.run)

    def show_now(self) -> None:
        """Display the view in the running cell (nothing outside IPython)."""
        shell = _shell()
        if shell is None:
            return
        from IPython.display import display

        display(self)
        self._shown_in = shell.execution_count

    def _ipython_display_(self) -> None:
        shell = _shell()
        if shell is not None and self._shown_in == shell.execution_count:
            return  # explore showed it in this cell already
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        display(data, metadata=metadata, raw=True)


def _shell() -> Any:
    try:
        from IPython.core.getipython import get_ipython
    except ImportError:
        return None
    return get_ipython()


class LiveFeed:
    """`on_layer(layer, rows)` of a capture shown while it runs (see the
    module docstring). `view` is the explorer being filled in."""

    def __init__(self, view: LiveExplorer, min_interval: float = DEFAULT_MIN_INTERVAL) -> None:
        run = view.run
        self.view = view
        self.min_interval = min_interval
        self.messages = 0
        """Messages sent so far."""
        self.total = run.n_layers
        self.done = 0
        """Layers received so far (they arrive in order)."""
        self._membership = np.zeros((run.n_tokens, len(run.regions)), dtype=np.float32)
        for r, info in enumerate(run.regions.values()):
            self._membership[info.token_indices, r] = 1.0
        self._waiting: list[tuple[int, NDArray[np.float32]]] = []
        self._last_sent = -np.inf

    @classmethod
    def start(
        cls, run: Run, min_interval: float = DEFAULT_MIN_INTERVAL, **view_options: Any
    ) -> LiveFeed:
        """Open a `LiveExplorer` on the pending `run`, display it now, and
        return its feed. `view_options` go to the Explorer (layer=, query=, ...)."""
        view = LiveExplorer(run, **view_options)
        view.show_now()
        return cls(view, min_interval)

    def __call__(self, layer: int, rows: NDArray[np.float32]) -> None:
        """One layer's (head, query, pos) attention rows, as the pass computes it."""
        rows = np.asarray(rows, dtype=np.float32)
        run = self.view.run
        run.attention_heads[layer] = rows  # the pending run holds what has arrived
        run.attention[layer] = rows.mean(axis=0)
        self._waiting.append((layer, rows))
        self.done = max(self.done, layer + 1)
        now = time.monotonic()
        if self.done >= self.total or now - self._last_sent >= self.min_interval:
            self.flush()

    def flush(self) -> None:
        """Send the layers received since the last message, in one message."""
        if not self._waiting:
            return
        layers = [layer for layer, _ in self._waiting]
        rows = np.stack([rows for _, rows in self._waiting])  # (n, head, query, pos)
        self._waiting = []
        averaged = rows.mean(axis=1)  # (n, query, pos)
        arrays = {
            "attention": encode_array(averaged.astype(np.float16)),
            "curves": encode_array(averaged @ self._membership),  # (n, query, region)
            "curves_heads": encode_array(rows @ self._membership),  # (n, head, query, region)
            "first_token": encode_array(first_token_masses(averaged)),  # (n, query)
            "first_token_heads": encode_array(first_token_masses(rows)),  # (n, head, query)
        }
        refs = {
            name: {"dtype": array["dtype"], "shape": array["shape"], "buffer": i}
            for i, (name, array) in enumerate(arrays.items())
        }
        content: LayersMessage = {
            "v": MESSAGE_VERSION,
            "kind": "layers",
            "id": self.messages,
            "layers": layers,
            "done": self.done,
            "total": self.total,
            "attention": refs["attention"],  # type: ignore[typeddict-item]
            "curves": refs["curves"],  # type: ignore[typeddict-item]
            "curves_heads": refs["curves_heads"],  # type: ignore[typeddict-item]
            "first_token": refs["first_token"],  # type: ignore[typeddict-item]
            "first_token_heads": refs["first_token_heads"],  # type: ignore[typeddict-item]
        }
        self.view.send(content, [array["data"] for array in arrays.values()])
        self.messages += 1
        self._last_sent = time.monotonic()

    def finish(self, run: Run) -> Explorer:
        """The pass is done: show the complete `run` (synced state, so saved
        and exported notebooks have it). Returns the view."""
        self._waiting = []
        self.view.complete(run)
        return self.view

    def stop(self, error: BaseException) -> None:
        """The pass failed or was interrupted: keep what arrived, in synced
        state, and say where it stopped."""
        self._waiting = []
        reason = type(error).__name__ + (f": {error}" if str(error) else "")
        self.view.halt(self.done, reason)  # the pending run holds the layers received


@seam.provide("explore", object)
def explore(
    model: Any,
    case: Any,
    regions: Any = None,
    *,
    top_k: int = 10,
    keep_cache: bool = True,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    **view_options: Any,
) -> Explorer:
    """`Model.explore`: show an Explorer on the pending run of `case` at once,
    fill it in layer by layer while `model.capture` runs, then show the
    complete run. Interrupted or failed, the view keeps what arrived and says
    why it stopped. `model` is a `tw.Model` (used through its methods only);
    the view keeps it to compute clicked positions (`model.read_query`), from
    the pass's KV cache when `keep_cache`."""
    prompt, resolved = model.prepare(case, regions)
    feed = LiveFeed.start(
        pending_run(prompt, resolved, model.info()),
        min_interval,
        model=model,
        keep_cache=keep_cache,
        **view_options,
    )
    try:
        run = model.capture(
            case, regions, top_k=top_k, on_layer=feed, progress=False, keep_cache=keep_cache
        )
    except BaseException as error:  # interrupted too: keep what arrived, say so
        feed.stop(error)
        raise
    return feed.finish(run)
