"""tealeaves-widgets: see how a language model reads a prompt, inside Jupyter.

    import tealeaves_widgets as tw
    model = tw.load_model()                      # embedded SmolLM2-135M-Instruct
    run = model.capture(tw.Case(system=..., user=...), regions)
    run.curves(query="final", normalize="share")  # pandas, layer x region
    tw.Explorer(run)                              # (or display(run)) the linked views
    cmp = model.capture_comparison({"baseline": case_a, "terse": case_b}, regions)
    cmp.deltas; cmp.report()                      # per-region changes, markdown
    runs = model.capture_many(tw.load_cases("conversations.json"), regions)
    result = tw.load_scenario("scenario.yaml")     # an Activation Lab scenario, run

The pipeline, one subpackage per step (see ARCHITECTURE.md): `prompt` (cases,
chat template, regions) -> `models` (torch: the captured pass) -> `core`
(results and their statistics) -> `io` (files), `present` (figures, reports),
`widgets` (views); `batch` runs it as jobs. Importing the package does not
import torch; loading a model does. The widgets load on first use.
"""

from typing import TYPE_CHECKING

from ._version import __version__
from .core import seam
from .core.ablation import Ablation
from .core.attribution import Attribution
from .core.compare import CompareOptions, Comparison, TokenAlignment, compare
from .core.conditions import Condition, HeadAblation, RegionKnockout, ValueAblation
from .core.generation import Generation
from .core.head_atlas import HeadAtlas
from .core.head_gates import HeadGates
from .core.head_grid import HeadGrid
from .core.layer_stats import LayerStats, RegionAttention
from .core.neurons import Activations, NeuronActivations, NeuronComparison, compare_neurons
from .core.prev_token import PrevTokenTest
from .core.residuals import CrossLayerCosine, ResidualDecomposition
from .core.run import Lens, QueryReading, RegionInfo, Run
from .core.runset import RunSet
from .core.scenario import Scenario, ScenarioResult
from .core.states import Snapshots
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    BatchError,
    CaptureError,
    ChatTemplateError,
    EmptyRegionError,
    ExportError,
    ExportWarning,
    InputFileError,
    InsufficientMemoryError,
    MarkerNotFoundError,
    MissingExtensionError,
    ModelNotInstalledError,
    PatternTimeoutError,
    PromptTooLongError,
    QueryNotFoundError,
    RegionError,
    RegionOrderError,
    RegionOverlapError,
    RunFileError,
    RunFileNotFoundError,
    ScenarioError,
    SelectionError,
    TealeavesError,
    UnknownArchitectureError,
    WireError,
)
from .io.rundir import open_runs
from .io.runfile import open_run
from .models.architectures import Architecture, register_architecture
from .models.batching import Generate
from .models.loading import load_model
from .models.scenario import load_scenario
from .prompt.case import Case, load_cases
from .prompt.probes import ProbeSizes
from .prompt.regions import Region, RegionSpec, load_regions
from .prompt.render import RenderedPrompt
from .prompt.scenario import read_scenario

if TYPE_CHECKING:  # at run time `__getattr__` below imports them on first use
    from .widgets import (
        AblationView,
        AggregateView,
        AttributionView,
        CrossLayerView,
        CurvesView,
        Explorer,
        GenerationView,
        HeadAtlasView,
        HeadGatesView,
        HeadGridView,
        LensView,
        Linked,
        NeuronCompareView,
        NeuronView,
        PrevTokenView,
        ResidualView,
        ScenarioView,
        SnapshotsView,
        TokenHeatmap,
        VariantDiff,
        export_html,
    )

# Where each operation a result reaches through the seam is implemented (the
# module registers it when imported; see tealeaves_widgets/core/seam.py).
seam.PROVIDERS.update(
    {
        **dict.fromkeys(
            ("curves_figure", "lens_figure", "heatmap_figure", "delta_figure", "aggregate_figure"),
            "tealeaves_widgets.present",
        ),
        "report": "tealeaves_widgets.present",
        **dict.fromkeys(
            (
                "view",
                "explore",
                "save_report",
                "Explorer",
                "TokenHeatmap",
                "CurvesView",
                "LensView",
                "VariantDiff",
                "AggregateView",
            ),
            "tealeaves_widgets.widgets",
        ),
        "save": "tealeaves_widgets.io",
        **dict.fromkeys(
            ("residual_decomposition", "cross_layer_cosine"), "tealeaves_widgets.models.residuals"
        ),
        **dict.fromkeys(
            ("layer_stats", "region_attention"), "tealeaves_widgets.models.layer_stats"
        ),
        "head_grid": "tealeaves_widgets.models.head_grid",
        "activations": "tealeaves_widgets.models.neurons",
        **dict.fromkeys(
            ("save_png", "save_gif", "save_curves_png"), "tealeaves_widgets.present.render"
        ),
    }
)

__all__ = [
    "Ablation",
    "Activations",
    "Architecture",
    "ArgumentError",
    "Attribution",
    "ArgumentTypeError",
    "BatchError",
    "CaptureError",
    "Case",
    "ChatTemplateError",
    "CompareOptions",
    "Comparison",
    "Condition",
    "CrossLayerCosine",
    "EmptyRegionError",
    "ExportError",
    "ExportWarning",
    "Generation",
    "Generate",
    "HeadAblation",
    "HeadAtlas",
    "HeadGates",
    "HeadGrid",
    "InputFileError",
    "InsufficientMemoryError",
    "LayerStats",
    "NeuronActivations",
    "NeuronComparison",
    "Lens",
    "MarkerNotFoundError",
    "MissingExtensionError",
    "ModelNotInstalledError",
    "PatternTimeoutError",
    "PrevTokenTest",
    "ProbeSizes",
    "PromptTooLongError",
    "QueryNotFoundError",
    "QueryReading",
    "RegionAttention",
    "Region",
    "RegionError",
    "RegionKnockout",
    "RegionInfo",
    "RegionOrderError",
    "RegionOverlapError",
    "RegionSpec",
    "RenderedPrompt",
    "ResidualDecomposition",
    "Run",
    "RunFileError",
    "RunFileNotFoundError",
    "RunSet",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "SelectionError",
    "Snapshots",
    "TealeavesError",
    "TokenAlignment",
    "UnknownArchitectureError",
    "ValueAblation",
    "WireError",
    "__version__",
    "compare",
    "compare_neurons",
    "load_cases",
    "load_model",
    "load_regions",
    "load_scenario",
    "open_run",
    "open_runs",
    "read_scenario",
    "register_architecture",
    # The widgets, loaded on first use (see `__getattr__` below).
    "AblationView",
    "AggregateView",
    "AttributionView",
    "CrossLayerView",
    "CurvesView",
    "Explorer",
    "GenerationView",
    "HeadAtlasView",
    "HeadGatesView",
    "HeadGridView",
    "LensView",
    "Linked",
    "NeuronCompareView",
    "NeuronView",
    "PrevTokenView",
    "SnapshotsView",
    "ResidualView",
    "ScenarioView",
    "TokenHeatmap",
    "VariantDiff",
    "export_html",
]

# The widgets load on first use (they import anywidget and ipywidgets, never torch).
_WIDGETS = (
    "AblationView",
    "AggregateView",
    "AttributionView",
    "CrossLayerView",
    "CurvesView",
    "Explorer",
    "GenerationView",
    "HeadAtlasView",
    "HeadGatesView",
    "HeadGridView",
    "LensView",
    "Linked",
    "NeuronCompareView",
    "NeuronView",
    "PrevTokenView",
    "SnapshotsView",
    "ResidualView",
    "ScenarioView",
    "TokenHeatmap",
    "VariantDiff",
    "export_html",
)


def __getattr__(name: str):
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'tealeaves_widgets' has no attribute {name!r}")
