"""Jupyter widgets that show a `Run`. They consume results, never a model,
and import neither torch nor transformers."""

from .explorer import Explorer
from .export import export_html
from .heatmap import TokenHeatmap
from .wire import SCHEMA_VERSION, PayloadOptions, run_payload

__all__ = [
    "SCHEMA_VERSION",
    "Explorer",
    "PayloadOptions",
    "TokenHeatmap",
    "export_html",
    "run_payload",
]
