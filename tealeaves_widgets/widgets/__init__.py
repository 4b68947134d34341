"""Jupyter widgets that show a `Run`. They consume results, never a model,
and import neither torch nor transformers."""

from .base import RunView, SelectionError
from .explorer import Explorer
from .export import export_html
from .heatmap import TokenHeatmap
from .panels import CurvesView, LensView
from .wire import SCHEMA_VERSION, PayloadOptions, run_payload

__all__ = [
    "SCHEMA_VERSION",
    "CurvesView",
    "Explorer",
    "LensView",
    "PayloadOptions",
    "RunView",
    "SelectionError",
    "TokenHeatmap",
    "export_html",
    "run_payload",
]
