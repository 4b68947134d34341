"""Jupyter widgets that show a `Run`, a `Comparison` or a `RunSet`. They
consume results, never a model, and import neither torch nor transformers."""

from .aggregate import AggregateView, aggregate_payload
from .base import RunView, SelectionError
from .diff import DiffOptions, VariantDiff, diff_payload
from .explorer import Explorer
from .export import export_html
from .heatmap import TokenHeatmap
from .panels import CurvesView, LensView
from .wire import SCHEMA_VERSION, PayloadOptions, run_payload

__all__ = [
    "SCHEMA_VERSION",
    "AggregateView",
    "CurvesView",
    "DiffOptions",
    "Explorer",
    "LensView",
    "PayloadOptions",
    "RunView",
    "SelectionError",
    "TokenHeatmap",
    "VariantDiff",
    "aggregate_payload",
    "diff_payload",
    "export_html",
    "run_payload",
]
