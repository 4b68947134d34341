"""Which view shows which result: the one table of the display seam
(`core.seam`). `display(run)` shows `Explorer(run)`, `display(runset)` an
`AggregateView`, `display(cmp)` a `VariantDiff`, `display(ablation)` an
`AblationView`, `display(attribution)` an `AttributionView`,
`display(gates)` a `HeadGatesView`, `display(atlas)` a `HeadAtlasView`,
`display(grid)` a `HeadGridView`,
`display(test)` (a previous-token test) a `PrevTokenView`, `display(gen)` a `GenerationView`,
`display(snapshots)` a `SnapshotsView`, `display(result)` (a scenario's) a
`ScenarioView`, `display(decomposition)` a
`ResidualView`, `display(cross_layer)` a `CrossLayerView`, `display(neurons)`
a `NeuronView`, `display(comparison)` (of neurons) a `NeuronCompareView`; the deprecated
`run.explorer()`-style methods reach the classes named here; `Model.explore`
is `live.explore`."""

from __future__ import annotations

from typing import Any

from ..core import seam
from ..core.ablation import Ablation
from ..core.attribution import Attribution
from ..core.compare import Comparison
from ..core.generation import Generation
from ..core.head_atlas import HeadAtlas
from ..core.head_gates import HeadGates
from ..core.head_grid import HeadGrid
from ..core.neurons import NeuronActivations, NeuronComparison
from ..core.prev_token import PrevTokenTest
from ..core.residuals import CrossLayerCosine, ResidualDecomposition
from ..core.run import Run
from ..core.runset import RunSet
from ..core.scenario import ScenarioResult
from ..core.states import Snapshots
from .ablation import AblationView
from .aggregate import AggregateView
from .attribution import AttributionView
from .diff import VariantDiff
from .explorer import Explorer
from .generation import GenerationView
from .head_atlas import HeadAtlasView
from .head_gates import HeadGatesView
from .head_grid import HeadGridView
from .heatmap import TokenHeatmap
from .live import explore
from .neurons import NeuronCompareView, NeuronView
from .panels import CurvesView, LensView
from .prev_token import PrevTokenView
from .report_page import save_report
from .residuals import CrossLayerView, ResidualView
from .scenario import ScenarioView
from .snapshots import SnapshotsView

DEFAULT_VIEWS = {
    Run: Explorer,
    RunSet: AggregateView,
    Comparison: VariantDiff,
    Ablation: AblationView,
    Attribution: AttributionView,
    HeadGates: HeadGatesView,
    HeadAtlas: HeadAtlasView,
    HeadGrid: HeadGridView,
    PrevTokenTest: PrevTokenView,
    Generation: GenerationView,
    Snapshots: SnapshotsView,
    ScenarioResult: ScenarioView,
    ResidualDecomposition: ResidualView,
    CrossLayerCosine: CrossLayerView,
    NeuronActivations: NeuronView,
    NeuronComparison: NeuronCompareView,
}
"""Result type -> the view `display(result)` shows."""

for result_type, view in DEFAULT_VIEWS.items():
    seam.provide("view", result_type)(view)
    seam.provide(view.__name__, result_type)(view)
for view in (TokenHeatmap, CurvesView, LensView):
    seam.provide(view.__name__, Run)(view)


@seam.provide("view", Run)
def run_view(run: Run, **options: Any) -> Explorer:
    """`display(run)`: the explorer, with the model that captured the run when
    it is still alive in this kernel, so clicking a token reads it."""
    options.setdefault("model", seam.model_of(run))
    return Explorer(run, **options)


@seam.provide("view", Generation)
def generation_view(gen: Generation, **options: Any) -> GenerationView:
    """`display(gen)`: the generation view, with the model that generated it
    when it is still alive in this kernel."""
    options.setdefault("model", seam.model_of(gen.run))
    return GenerationView(gen, **options)


__all__ = ["DEFAULT_VIEWS", "explore", "save_report"]
