"""`ScenarioView`: a scenario's result (`tw.ScenarioResult`) as its two views
stacked: a title line (scenario, model, layers), the `GenerationView` of the
generation and the `SnapshotsView` of the conversation's snapshots against the
reference states. `display(result)` shows one. No payload of its own: each
view carries its own synced state, so an exported page renders both.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets

from ..core import seam
from ..core.scenario import ScenarioResult
from ..errors import ArgumentTypeError
from .generation import GenerationView
from .snapshots import SnapshotsView

__all__ = ["ScenarioView"]


def _title(result: ScenarioResult) -> str:
    ran = result.model_info.get("model_id", "unknown model")
    asked = result.scenario.model.id
    model = ran if ran == asked else f"{ran} (the scenario names {asked})"
    n_layers = result.model_info.get("n_layers")
    layers = (
        "all layers"
        if n_layers is not None and len(result.layers) == n_layers
        else f"layers {', '.join(map(str, result.layers))}"
    )
    return (
        f"<b>Scenario {html.escape(result.name)}</b> on {html.escape(model)}: "
        f"{len(result.scenario.prompt.messages)} messages, "
        f"{len(result.snapshots.references)} reference states; tables report {layers}"
    )


class ScenarioView(ipywidgets.VBox):
    """A `tw.ScenarioResult`: a title, its `GenerationView` (steps, top-k,
    explorer; with the model that ran it when it is alive in this kernel, so a
    click reads more) and its `SnapshotsView`. `generation_view` and
    `snapshots_view` are the two views; `generation` and `snapshots` options
    (dicts) go to their constructors."""

    def __init__(
        self,
        result: ScenarioResult,
        *,
        model: Any = None,
        generation: dict | None = None,
        snapshots: dict | None = None,
    ) -> None:
        if not isinstance(result, ScenarioResult):
            raise ArgumentTypeError(
                "ScenarioView expects a tw.ScenarioResult (from tw.load_scenario), got "
                f"{type(result).__name__}."
            )
        self._result = result
        gen_options = dict(generation or {})
        gen_options.setdefault("model", model or seam.model_of(result.generation.run))
        self.generation_view = GenerationView(result.generation, **gen_options)
        self.snapshots_view = SnapshotsView(result.snapshots, **dict(snapshots or {}))
        title = ipywidgets.HTML(_title(result))
        super().__init__([title, self.generation_view, self.snapshots_view])

    @property
    def result(self) -> ScenarioResult:
        """The result shown."""
        return self._result
