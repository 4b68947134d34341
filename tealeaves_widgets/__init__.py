"""tealeaves-widgets: see how a language model reads a prompt, inside Jupyter.

    import tealeaves_widgets as tw
    model = tw.load_model()                      # embedded SmolLM2-135M-Instruct
    run = model.capture(tw.Case(system=..., user=...), regions)
    run.curves(query="final", normalize="share")  # pandas, layer x region
    cmp = model.compare({"baseline": case_a, "terse": case_b}, regions)
    cmp.deltas; cmp.report()                      # per-region changes, markdown
    runs = model.capture_many(tw.load_cases("conversations.json"), regions)

Importing the package does not import torch; loading a model does.
"""

__version__ = "0.1.0"

from .architectures import Architecture, register_architecture
from .compare import CompareOptions, Comparison, TokenAlignment, compare
from .errors import (
    ChatTemplateError,
    EmptyRegionError,
    MarkerNotFoundError,
    ModelNotInstalledError,
    PromptTooLongError,
    QueryNotFoundError,
    RegionError,
    RegionOrderError,
    RegionOverlapError,
    RunFileError,
    TealeavesError,
    UnknownArchitectureError,
)
from .loading import load_model
from .prompt import Case, RenderedPrompt
from .regions import Region, RegionSpec, load_regions
from .run import Lens, RegionInfo, Run
from .rundir import open_runs
from .runfile import open_run
from .runset import Generate, RunSet, load_cases

__all__ = [
    "Architecture",
    "Case",
    "ChatTemplateError",
    "CompareOptions",
    "Comparison",
    "EmptyRegionError",
    "Generate",
    "Lens",
    "MarkerNotFoundError",
    "ModelNotInstalledError",
    "PromptTooLongError",
    "QueryNotFoundError",
    "Region",
    "RegionError",
    "RegionInfo",
    "RegionOrderError",
    "RegionOverlapError",
    "RegionSpec",
    "RenderedPrompt",
    "Run",
    "RunFileError",
    "RunSet",
    "TealeavesError",
    "TokenAlignment",
    "UnknownArchitectureError",
    "compare",
    "load_cases",
    "load_model",
    "load_regions",
    "open_run",
    "open_runs",
    "register_architecture",
]

# The widgets load on first use (they import anywidget and ipywidgets, never torch).
_WIDGETS = (
    "AggregateView",
    "CurvesView",
    "Explorer",
    "LensView",
    "TokenHeatmap",
    "VariantDiff",
    "export_html",
)
__all__ += list(_WIDGETS)


def __getattr__(name: str):
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'tealeaves_widgets' has no attribute {name!r}")
