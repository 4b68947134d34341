"""`AblationView`: what removing heads, values or regions did to the
prediction (a `tw.Ablation`), in one view.

- The prompt as a token strip, the query position t and t-1 marked; the
  positions a condition touches are marked when its row is pointed at.
- A table, one row per condition: what it removes, the token it now
  predicts and its probability, the change of the baseline top token's
  log-probability (and of its centred logit), KL(baseline || condition), and
  the tokens whose logit rose and fell most, each a cell coloured by its
  signed change. A click on a column header sorts by it.
- The knockout panel, when some conditions knock out one region each: the
  base run's cooking curves at the query next to, per region, its attention
  mass at the selected layer and what knocking it out did (the change of the
  baseline top token's log-probability as a bar, and the new top token).
- A click on a row opens the explorer of that condition's run under the
  table (the baseline row: the unablated run). The runs travel in synced
  state (`runs`, within `AblationOptions.max_bytes`), so an exported page
  opens them with no kernel; a run over the budget is sent by the kernel
  when its row is clicked (`detail`), and an exported page says it is not
  in the page. The explorer shares the view's selection (layer, query,
  head, region, normalisation, scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import traitlets as t
from numpy.typing import NDArray

from ..core.ablation import Ablation, log_softmax, logit_changes
from ..core.conditions import Condition, RegionKnockout, resolve_positions
from ..core.run import Run
from ..errors import ArgumentError, ArgumentTypeError, SelectionError
from ._bundle import esm
from .base import CurvesOptions, TraitSelectionError
from .heatmap import TokenHeatmap
from .schema import SCHEMA_VERSION, AblationCondition, AblationPayload, RunPayload
from .wire import PayloadOptions, encode_array, head_rows_message, payload_bytes, run_payload

__all__ = [
    "BASELINE",
    "SORT_KEYS",
    "AblationOptions",
    "AblationView",
    "ablation_payload",
    "condition_runs",
]

BASELINE = "(baseline)"
"""The value of `AblationView.selected` for the unablated run's row."""
SORT_KEYS = (
    "",
    "condition",
    "predicted_prob",
    "delta_logprob",
    "delta_centered",
    "kl",
    "rose",
    "fell",
)
"""Columns the table sorts by ("": the conditions' own order); "rose" and
"fell" sort by the largest rise and fall."""
DEFAULT_CHANGES = 3
"""Rose and fell cells shown per row by default."""


@dataclass(frozen=True)
class AblationOptions:
    """What `AblationView` puts on the wire."""

    max_bytes: int = 32_000_000
    """Budget of the conditions' runs in synced state (their explorers open
    with no kernel, in an exported page too). Runs are added in condition
    order while the total stays within it; the others are sent by a kernel
    when their row is clicked."""
    run: PayloadOptions | None = None
    """How each run goes on the wire (`run_payload`); default: the query the
    ablation reads first among the per-head rows."""


def knockout_region(condition: Condition) -> str | None:
    """The region `condition` knocks out, when that is all it does."""
    items = condition.interventions
    if len(items) == 1 and isinstance(items[0], RegionKnockout):
        return items[0].region
    return None


def touched_positions(ablation: Ablation, condition: Condition) -> NDArray[np.int32]:
    """Token positions the interventions of `condition` touch: a knocked-out
    region's tokens, an ablated head's query positions, ablated values' key
    positions."""
    base = ablation.base
    out: set[int] = set()
    for item in condition.interventions:
        if isinstance(item, RegionKnockout):
            info = base.regions.get(item.region)
            if info is not None:
                out.update(int(i) for i in info.token_indices)
            continue
        # checked by the condition: a preset word or a tuple of indices
        positions = cast("str | tuple[int, ...]", item.positions)
        what = f"Condition {condition.name!r}"
        out.update(
            int(i) for i in resolve_positions(positions, ablation.position, base.n_tokens, what)
        )
    return np.array(sorted(out), dtype=np.int32)


def condition_runs(
    ablation: Ablation, options: PayloadOptions, max_bytes: int
) -> tuple[list[RunPayload | None], int]:
    """Each condition's run on the wire, in condition order while their total
    stays within `max_bytes` (None for the rest), and the bytes used."""
    payloads: list[RunPayload | None] = [None] * len(ablation.conditions)
    used = 0
    for i, name in enumerate(ablation.names):
        payload = run_payload(ablation.runs[name], options)
        size = payload_bytes(payload)
        if used + size > max_bytes:
            break
        payloads[i] = payload
        used += size
    return payloads, used


def ablation_payload(
    ablation: Ablation, embedded: Sequence[bool] | None = None, budget: tuple[int, int] = (0, 0)
) -> AblationPayload:
    """The table, the logit changes and the knockout rows of `ablation` as
    one synced value (numbers as binary float32/int32 arrays). `embedded`
    says per condition whether its run is in the view's `runs`; `budget` is
    (max_bytes, bytes used) of those runs."""
    c = logit_changes(ablation.base_logits, ablation.logits, ablation.top_k)
    base_lp = log_softmax(ablation.base_logits)
    ids = sorted(c.token_ids)
    vocab = {str(i): ablation.vocab.get(i, f"<id {i}>") for i in ids}
    rows = np.arange(len(ablation.conditions))[:, None]
    conditions: list[AblationCondition] = [
        {
            "name": condition.name,
            "description": condition.describe(),
            "knockout": knockout_region(condition),
            "positions": encode_array(touched_positions(ablation, condition)),
        }
        for condition in ablation.conditions
    ]

    def floats(values: NDArray) -> Any:
        return encode_array(np.asarray(values, dtype=np.float32))

    def ints(values: NDArray) -> Any:
        return encode_array(np.asarray(values).astype(np.int32))

    embedded = list(embedded) if embedded is not None else [False] * len(conditions)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "ablation",
        "model": {"model_id": str(ablation.base.model_info.get("model_id", "unknown model"))},
        "at": ablation.at,
        "position": int(ablation.position),
        "base_top": int(c.base_top),
        "base_prob": float(np.exp(base_lp[c.base_top])),
        "k": int(c.rose.shape[1]),
        "conditions": conditions,
        "predicted": ints(c.predicted),
        "predicted_prob": floats(c.predicted_prob),
        "delta_base_top": floats(c.delta_base_top),
        "delta_logprob": floats(c.delta_logprob),
        "delta_centered": floats(c.delta_centered),
        "kl": floats(c.kl),
        "rose": ints(c.rose),
        "rose_delta": floats(c.delta[rows, c.rose]),
        "fell": ints(c.fell),
        "fell_delta": floats(c.delta[rows, c.fell]),
        "vocab": vocab,
        "runs": [bool(e) for e in embedded],
        "budget": {"max_bytes": int(budget[0]), "bytes": int(budget[1])},
    }


class AblationView(CurvesOptions, TokenHeatmap):
    """A `tw.Ablation` as a sortable table of its conditions (prediction,
    Δ log-prob of the baseline's top token, KL, the tokens whose logit rose
    and fell most as coloured cells), a token strip with the query t and t-1
    marked, and, for region knockouts, each region's attention mass beside
    its causal effect next to the base run's cooking curves. A click on a row
    opens the explorer on that condition's run below the table.

    Synced with Python: `selected` (the condition whose explorer is open,
    `BASELINE` for the unablated run, None for none), `sort` and
    `descending` (the table's order), `changes` (rose and fell cells per
    row), and the explorer's selection (`layer`, `query`, `head`, `region`,
    `normalize`, `hidden`, `scale`, masks). `display(ablation)` shows one."""

    _esm = esm("ablation_view")

    ablation = t.Dict().tag(sync=True)
    """The table and logit changes on the wire (`ablation_payload`)."""
    runs = t.List().tag(sync=True)
    """Per condition, its run on the wire (`run_payload`), or None when over
    `AblationOptions.max_bytes`."""
    detail = t.Dict(default_value=None, allow_none=True).tag(sync=True)
    """A run over the budget, sent when its row is selected: {condition, payload}."""
    selected = t.Unicode(None, allow_none=True).tag(sync=True, echo_update=False)
    """Condition whose run the explorer shows (`BASELINE`: the unablated
    run), or None: no explorer open."""
    sort = t.Enum(SORT_KEYS, default_value="").tag(sync=True, echo_update=False)
    """Column the table is sorted by, one of `SORT_KEYS` ("": condition order)."""
    descending = t.Bool(False).tag(sync=True, echo_update=False)
    """Whether the sorted column runs from large to small."""
    changes = t.Int(DEFAULT_CHANGES).tag(sync=True, echo_update=False)
    """Tokens shown per row among those whose logit rose (and fell) most,
    1..the ablation's top_k."""

    def __init__(
        self,
        ablation: Ablation,
        *,
        query: str | int | None = None,
        layer: int | None = None,
        options: AblationOptions | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(ablation, Ablation):
            raise ArgumentTypeError(
                f"AblationView expects a tw.Ablation (from model.ablate), got "
                f"{type(ablation).__name__}."
            )
        if BASELINE in ablation.names:
            raise ArgumentError(
                f"A condition is named {BASELINE!r}, the name the view gives the unablated "
                "run; rename it."
            )
        options = options or AblationOptions()
        if not isinstance(options, AblationOptions):
            raise ArgumentTypeError(
                f"options must be a tw.widgets.AblationOptions, got {type(options).__name__}."
            )
        self._ablation = ablation
        self._run_options = options.run or PayloadOptions(head_queries=(ablation.at,))
        self._embedded, used = condition_runs(ablation, self._run_options, options.max_bytes)
        self._ablation_payload = ablation_payload(
            ablation, [p is not None for p in self._embedded], (options.max_bytes, used)
        )
        kwargs.setdefault("changes", min(DEFAULT_CHANGES, int(self._ablation_payload["k"])))
        # the sink dominates raw masses; a region's share of the rest reads beside its effect
        kwargs.setdefault("normalize", "share")
        super().__init__(
            ablation.base,
            query=ablation.at if query is None else query,
            layer=layer,
            options=self._run_options,
            **kwargs,
        )

    def _internal_state(self) -> dict[str, Any]:
        return {"ablation": dict(self._ablation_payload), "runs": list(self._embedded)}

    @property
    def result(self) -> Ablation:
        """The ablation shown."""
        return self._ablation

    @property
    def selected_run(self) -> Run | None:
        """The run whose explorer is open (None: none)."""
        if self.selected is None:
            return None
        if self.selected == BASELINE:
            return self._ablation.base
        return self._ablation.runs[self.selected]

    def explorer(self, condition: str | None = None, **kwargs: Any) -> Any:
        """A `tw.Explorer` of `condition`'s run (default the selected one; the
        baseline when none is), at this view's query and layer: to show it
        in its own cell."""
        from .explorer import Explorer

        name = self.selected if condition is None else condition
        if name is None or name == BASELINE:
            run = self._ablation.base
        elif name in self._ablation.runs:
            run = self._ablation.runs[name]
        else:
            raise SelectionError(
                f"Unknown condition {name!r}; the conditions are {self._ablation.names} "
                f"(or {BASELINE!r})."
            )
        kwargs.setdefault("query", self.query)
        kwargs.setdefault("layer", self.layer)
        return Explorer(run, **kwargs)

    def set_run(self, run: Run) -> None:
        raise ArgumentError(
            "An AblationView shows one ablation; make a new view for another: "
            "tw.AblationView(ablation)."
        )

    @t.validate("selected")
    def _check_selected(self, proposal: t.Bunch) -> str | None:
        name = proposal["value"]
        if name is not None and name != BASELINE and name not in self._ablation.runs:
            raise TraitSelectionError(
                f"Unknown condition {name!r}; the conditions are {self._ablation.names} "
                f"({BASELINE!r}: the unablated run, None: no explorer)."
            )
        return name

    @t.validate("changes")
    def _check_changes(self, proposal: t.Bunch) -> int:
        k, top = proposal["value"], int(self._ablation.top_k)
        if not 1 <= k <= top:
            raise TraitSelectionError(
                f"changes={k} is out of range; this ablation lists 1..{top} tokens per "
                "condition (model.ablate(..., top_k=) lists more)."
            )
        return k

    @t.observe("selected")
    def _send_detail(self, change: dict[str, Any]) -> None:
        """A run over the budget goes to the browser when its row is selected."""
        name = change["new"]
        if name is None or name == BASELINE:
            return
        index = self._ablation.names.index(name)
        if self._embedded[index] is not None:
            return
        if self.detail is not None and self.detail.get("condition") == index:
            return
        payload = run_payload(self._ablation.runs[name], self._run_options)
        self.detail = {"condition": index, "payload": dict(payload)}

    def _head_rows(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[memoryview]]:
        """Per-head rows of the baseline, or of condition `run` of the request."""
        index = request.get("run")
        if index is None:
            return super()._head_rows(request)
        names = self._ablation.names
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(names):
            raise ArgumentTypeError(
                f"head_rows: run must index the conditions 0..{len(names) - 1}, got {index!r}."
            )
        query = request.get("query")
        if isinstance(query, bool) or not isinstance(query, int):
            raise ArgumentTypeError(f"head_rows needs an int query row, got {query!r}.")
        run = self._ablation.runs[names[index]]
        reply, buffers = head_rows_message(run, query, int(request.get("id", 0)))
        return {**reply, "run": index}, buffers
