"""Jupyter views of results: anywidget classes (`Explorer`, `TokenHeatmap`,
`CurvesView`, `LensView`, `VariantDiff`, `AggregateView`, `AblationView`), the wire format
and its schema, standalone HTML export, and the live explorer of a capture
in progress.

May import: numpy, pandas, anywidget, ipywidgets, `tealeaves_widgets.errors`,
`core`, `prompt` and `present`. Never torch, transformers or `models`: a
view consumes results, never a model. `views` registers the views with
`core.seam` (what `display(result)` shows).
"""

from . import views as views  # registers the views with core.seam
from .ablation import AblationOptions, AblationView, ablation_payload
from .aggregate import AggregateView, aggregate_payload
from .base import RunView, View
from .diff import DiffOptions, VariantDiff, diff_payload
from .explorer import Explorer
from .export import export_html
from .heatmap import TokenHeatmap
from .panels import CurvesView, LensView
from .schema import SCHEMA_VERSION
from .wire import PayloadOptions, run_payload

__all__ = [
    "SCHEMA_VERSION",
    "AblationOptions",
    "AblationView",
    "AggregateView",
    "CurvesView",
    "DiffOptions",
    "Explorer",
    "LensView",
    "PayloadOptions",
    "RunView",
    "TokenHeatmap",
    "VariantDiff",
    "View",
    "ablation_payload",
    "aggregate_payload",
    "diff_payload",
    "export_html",
    "run_payload",
]
