"""`HeadAtlasView`: a `tw.HeadAtlas` as a layer x head grid coloured by one
metric (picked from `METRICS`; diverging colours centred at 0 for the signed
ones), sortable within each layer, with a threshold that dims the weaker
heads and a ranked list of the strongest. Clicking a head selects it
(`layer`, `head`, synced) and shows its mean probe pattern, its offset
profile and its score on every metric.

With `run=`, the view comes with an `Explorer` of that run whose layer and
head follow the selection (linked in the browser, so an exported page keeps
the link): `display(view)` shows both.

Scores and offset profiles travel as binary float32 arrays, the mean
patterns as float16 (for display: 3 significant digits).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import traitlets as t

from ..core import seam
from ..core.head_atlas import METRIC_NAMES, METRICS, HeadAtlas
from ..core.run import Run
from ..errors import ArgumentError, ArgumentTypeError
from ._bundle import esm
from .base import ResultView, TraitArgumentError, TraitSelectionError
from .schema import SCHEMA_VERSION, HeadAtlasPayload
from .wire import encode_array

__all__ = ["SORTS", "HeadAtlasView", "head_atlas_payload"]

SORTS = ("head", "score")
"""How the grid orders the heads of a layer: by index, or by the metric's
score, strongest first (by |score| for a signed metric)."""


def head_atlas_payload(atlas: HeadAtlas) -> HeadAtlasPayload:
    """Every score, offset profile and mean probe pattern of `atlas` as one
    synced value (scores and profiles float32, patterns float16)."""
    scores = np.stack([np.asarray(atlas.scores[name], dtype=np.float32) for name in METRIC_NAMES])
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "head_atlas",
        "model": {"model_id": str((atlas.model_info or {}).get("model_id", "unknown model"))},
        "n_layers": atlas.n_layers,
        "n_heads": atlas.n_heads,
        "metrics": [
            {
                "name": m.name,
                "description": m.description,
                "probe_set": m.probe_set,
                "signed": m.signed,
                "note": str(atlas.notes.get(m.name, "")),
            }
            for m in METRICS
        ],
        "scores": encode_array(scores),
        "profiles": encode_array(np.asarray(atlas.profiles, dtype=np.float32)),
        "patterns": encode_array(np.asarray(atlas.patterns, dtype=np.float16)),
        "probes": [
            {
                "name": str(name),
                "count": len(seqs),
                "min_length": min((len(s) for s in seqs), default=0),
                "max_length": max((len(s) for s in seqs), default=0),
            }
            for name, seqs in atlas.probes.items()
        ],
        "bos_prepended": bool(atlas.bos_prepended),
        "seed": int(atlas.seed),
    }


class HeadAtlasView(ResultView[HeadAtlas]):
    """A `tw.HeadAtlas` as a layer x head grid (layers as rows) coloured by
    the metric picked, with its description and the colour range; heads
    ordered by index or by score within each layer; a threshold that dims
    the heads below it (|score| for a signed metric); the top heads ranked.
    Click a head for its mean pattern on the repeated random-token probes,
    its offset profile and all its scores.

    Synced with Python: `metric` (one of `METRIC_NAMES`), `layer` and `head`
    (the head selected; `head` is None when none is), `sort` (one of
    `SORTS`) and `threshold` (in the metric's units; 0 dims nothing; picking
    another metric in the view sets it back to 0). `display(atlas)` shows
    one.

    `run=`: a `tw.Run` of the same model; the view then comes with an
    `Explorer` of it (`view.explorer`) whose layer and head follow the
    selection, both ways, in the browser (`view.linked`, a `tw.Linked`);
    `display(view)` and `export_html(view, ...)` show the two. The same by
    hand: `tw.Linked(tw.HeadAtlasView(atlas), tw.Explorer(run),
    traits=("layer", "head"))`.
    """

    _esm = esm("head_atlas_view")
    _result_type = HeadAtlas
    _result_from = "model.head_atlas()"
    _payload_of = staticmethod(head_atlas_payload)
    """The atlas on the wire."""

    metric = t.Enum(METRIC_NAMES, default_value="previous_token").tag(sync=True, echo_update=False)
    """The metric the grid is coloured by."""
    layer = t.Int(0).tag(sync=True, echo_update=False)
    """Layer of the head selected."""
    head = t.Int(None, allow_none=True).tag(sync=True, echo_update=False)
    """Head selected in `layer`, or None (no head: a linked explorer shows the average)."""
    sort = t.Enum(SORTS, default_value="head").tag(sync=True, echo_update=False)
    """Order of the heads within each layer of the grid, one of `SORTS`."""
    threshold = t.Float(0.0).tag(sync=True, echo_update=False)
    """Heads whose score (|score| for a signed metric) is below it are dimmed."""

    def __init__(self, atlas: HeadAtlas, run: Run | None = None, **kwargs: Any) -> None:
        if run is not None and isinstance(atlas, HeadAtlas):  # not an atlas: the base says so
            _check_run(atlas, run)
        super().__init__(atlas, **kwargs)
        self.explorer: Any = None
        """The `Explorer` of `run` that follows the selection, or None without `run`."""
        self.linked: Any = None
        """The `tw.Linked` of this view and `explorer` (None without `run`)."""
        if run is not None:
            self._link(run)

    def _initial_options(self, result: HeadAtlas, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The strongest head of the metric shown is selected unless `layer` or `head` is given."""
        if "layer" not in kwargs and "head" not in kwargs:
            top = result.top(kwargs.get("metric", "previous_token"), 1).iloc[0]
            kwargs["layer"], kwargs["head"] = int(top["layer"]), int(top["head"])
        return kwargs

    def _link(self, run: Run) -> None:
        from .explorer import Explorer
        from .linked import Linked

        self.explorer = Explorer(run, model=seam.model_of(run), layer=self.layer, head=self.head)
        self.linked = Linked(self, self.explorer, traits=("layer", "head"))

    @property
    def _tw_display(self) -> Any:
        """What `display(view)` and `export_html(view)` show: the view and its
        explorer when it has one."""
        return self.linked if self.linked is not None else self

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if self.linked is not None:
            return self.linked._repr_mimebundle_(**kwargs)
        return super()._repr_mimebundle_(**kwargs)

    @t.validate("layer")
    def _check_layer(self, proposal: t.Bunch) -> int:
        layer, n = proposal["value"], self._result.n_layers
        if not 0 <= layer < n:
            raise TraitSelectionError(
                f"layer={layer} is out of range; this atlas has layers 0..{n - 1}."
            )
        return layer

    @t.validate("head")
    def _check_head(self, proposal: t.Bunch) -> int | None:
        head, n = proposal["value"], self._result.n_heads
        if head is not None and not 0 <= head < n:
            raise TraitSelectionError(
                f"head={head} is out of range; this atlas has heads 0..{n - 1} (or None: "
                "no head selected)."
            )
        return head

    @t.validate("threshold")
    def _check_threshold(self, proposal: t.Bunch) -> float:
        value = proposal["value"]
        if not math.isfinite(value) or value < 0:
            raise TraitArgumentError(
                f"threshold must be a finite number >= 0 in the metric's units (0 dims "
                f"nothing), got {value!r}."
            )
        return value


def _check_run(atlas: HeadAtlas, run: Any) -> None:
    """A run the view can link: a `Run` with the atlas's layers and heads."""
    if not isinstance(run, Run):
        raise ArgumentTypeError(
            f"run= must be a tw.Run of the atlas's model (its explorer follows the head "
            f"selected), got {type(run).__name__}."
        )
    if (run.n_layers, run.n_heads) != (atlas.n_layers, atlas.n_heads):
        atlas_model = (atlas.model_info or {}).get("model_id", "unknown model")
        run_model = (run.model_info or {}).get("model_id", "unknown model")
        raise ArgumentError(
            f"The run has {run.n_layers} layers x {run.n_heads} heads ({run_model}) but the "
            f"atlas {atlas.n_layers} x {atlas.n_heads} ({atlas_model}); capture the run with "
            "the model the atlas was built from."
        )
