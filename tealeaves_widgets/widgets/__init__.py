"""Jupyter widgets that show a `Run`. They consume results, never a model,
and import neither torch nor transformers."""

from .heatmap import TokenHeatmap
from .wire import SCHEMA_VERSION, PayloadOptions, run_payload

__all__ = ["SCHEMA_VERSION", "PayloadOptions", "TokenHeatmap", "run_payload"]
