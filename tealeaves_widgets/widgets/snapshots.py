"""`SnapshotsView`: conversation snapshots (a `tw.Snapshots`) against their
reference states: a message x reference heatmap of one metric (cosine, MAE or
top-1% Jaccard), raw or centred, averaged over the layers or at one layer;
lines per source over the message index; user vs assistant averages; and,
collapsed, each message's metric by layer.

Every number is computed here, by `Snapshots.scores` and its tables, for
every source, metric and centring, and travels as binary float32 arrays
(messages x references x layers: small), so the view switches between them
with no kernel, in an exported page too.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import traitlets as t

from ..core.states import METRICS, ROLE_MEANS, Snapshots, layer_average, role_average
from ..present.palette import REGION_PALETTE
from ._bundle import esm
from .base import ResultView, TraitSelectionError
from .schema import SCHEMA_VERSION, SnapshotsPayload
from .wire import encode_array

__all__ = ["CENTRINGS", "SnapshotsView", "snapshots_payload"]

CENTRINGS = ("raw", "centred")
"""The payload's centring axis: raw states, then `center=True`."""
PREVIEW_CHARS = 48
"""Characters of a message's content shown in its row label."""
CONTENT_CHARS = 600
"""Characters of a message's content kept for its tooltip."""


def _clip(text: str, limit: int) -> str:
    """`text` with its whitespace collapsed, cut to at most `limit` characters
    (at a word's end when one is near) with an ellipsis."""
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit - 16:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "\u2026"


def snapshots_payload(snapshots: Snapshots) -> SnapshotsPayload:
    """Every source, centring and metric of `snapshots` as one synced value:
    the per-layer scores, their means over the layers, and the user and
    assistant averages (numbers as float32)."""
    sources = snapshots.sources
    n_layers = int(next(iter(snapshots.states.values())).shape[1])
    n_messages, n_refs = len(snapshots.messages), len(snapshots.references)
    shape = (len(sources), len(CENTRINGS), len(METRICS), n_messages, n_refs, n_layers)
    scores = np.full(shape, np.nan)
    for s, source in enumerate(sources):
        for c, center in enumerate((False, True)):
            every = snapshots.all_scores(source, center=center)
            for m, metric in enumerate(METRICS):
                scores[s, c, m] = every[metric]
    # the same reductions as Snapshots.message_table and role_means, on every axis at once
    by_message = np.moveaxis(scores, 3, 0)  # (message, source, centring, metric, ref, layer)
    role_layers = np.moveaxis(role_average(by_message, snapshots.roles), 0, 3)
    rows = int(np.prod(by_message.shape[:4]))
    flat_mean = layer_average(by_message.reshape(rows, n_refs, n_layers))
    layer_mean = np.moveaxis(flat_mean.reshape(by_message.shape[:-1]), 0, 3)
    role_mean = np.moveaxis(role_average(np.moveaxis(layer_mean, 3, 0), snapshots.roles), 0, 3)

    def floats(values: Any) -> Any:
        return encode_array(np.asarray(values, dtype=np.float32))

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "snapshots",
        "model": {"model_id": str(snapshots.model_info.get("model_id", "unknown model"))},
        "readout": snapshots.readout,
        "single_pass": bool(snapshots.single_pass),
        "n_layers": n_layers,
        "sources": list(sources),
        "metrics": list(METRICS),
        "centrings": list(CENTRINGS),
        "roles": list(ROLE_MEANS),
        "messages": [
            {
                "role": str(message["role"]),
                "preview": _clip(message["content"], PREVIEW_CHARS),
                "content": _clip(message["content"], CONTENT_CHARS),
                "position": int(position),
            }
            for message, position in zip(snapshots.messages, snapshots.positions, strict=True)
        ],
        "references": [
            {"label": label, "color": REGION_PALETTE[i % len(REGION_PALETTE)]}
            for i, label in enumerate(snapshots.references)
        ],
        "scores": floats(scores),
        "layer_mean": floats(layer_mean),
        "role_layers": floats(role_layers),
        "role_mean": floats(role_mean),
    }


class SnapshotsView(ResultView[Snapshots]):
    """A `tw.Snapshots` as a message x reference heatmap of `metric`
    ("cosine", "mae" or "jaccard") for one `source`, raw or centred
    (`center=True` subtracts the per-layer mean over every snapshot and
    reference first: raw residual cosines look alike, centring shows what
    differs), averaged over the layers (`layer=None`) or at one `layer`;
    with lines per source over the message index, the user and assistant
    averages per reference, and each message's metric by layer (collapsed).

    Synced with Python: `source`, `metric`, `center`, `layer`.
    `display(snapshots)` shows one."""

    _esm = esm("snapshots_view")
    _result_type = Snapshots
    _result_from = "model.conversation_snapshots"
    _payload_of = staticmethod(snapshots_payload)
    """The snapshots on the wire."""

    source = t.Unicode("hidden_out").tag(sync=True, echo_update=False)
    """The source shown in the heatmap, one of the snapshots' sources."""
    metric = t.Enum(METRICS, default_value="cosine").tag(sync=True, echo_update=False)
    """The metric shown, one of `core.states.METRICS`."""
    center = t.Bool(False).tag(sync=True, echo_update=False)
    """True: centred states (the per-layer mean over every snapshot and
    reference subtracted); False: raw."""
    layer = t.Int(None, allow_none=True).tag(sync=True, echo_update=False)
    """The layer shown in the heatmap, lines and averages; None: the mean over the layers."""

    def _initial_options(self, result: Snapshots, kwargs: dict[str, Any]) -> dict[str, Any]:
        if "hidden_out" not in result.sources:
            kwargs.setdefault("source", result.sources[0])
        return kwargs

    @t.validate("source")
    def _check_source(self, proposal: t.Bunch) -> str:
        source = proposal["value"]
        if source not in self._result.sources:
            raise TraitSelectionError(
                f"source={source!r} was not read; these snapshots have {self._result.sources}."
            )
        return source

    @t.validate("layer")
    def _check_layer(self, proposal: t.Bunch) -> int | None:
        layer = proposal["value"]
        n_layers = int(next(iter(self._result.states.values())).shape[1])
        if layer is not None and not 0 <= layer < n_layers:
            raise TraitSelectionError(
                f"layer={layer} is out of range: use 0..{n_layers - 1}, or None for the mean "
                "over the layers."
            )
        return layer
