"""Jupyter views of results: anywidget classes (`Explorer`, `TokenHeatmap`,
`CurvesView`, `LensView`, `VariantDiff`, `AggregateView`, `AblationView`,
`AttributionView`, `HeadGatesView`, `HeadAtlasView`, `HeadGridView`, `PrevTokenView`,
`GenerationView`, `SnapshotsView`, `ResidualView`, `CrossLayerView`, `ScenarioView`,
`NeuronView`, `NeuronCompareView`), the wire format and its schema, standalone HTML
export, and the live explorer of a capture
in progress.

May import: numpy, pandas, anywidget, ipywidgets, `tealeaves_widgets.errors`,
`core`, `prompt` and `present`. Never torch, transformers or `models`: a
view consumes results, never a model. `views` registers the views with
`core.seam` (what `display(result)` shows).
"""

from . import views as views  # registers the views with core.seam
from .ablation import AblationOptions, AblationView, ablation_payload
from .aggregate import AggregateView, aggregate_payload
from .attribution import AttributionView, attribution_payload
from .base import RunView, View
from .diff import DiffOptions, VariantDiff, diff_payload
from .explorer import Explorer
from .export import export_html
from .generation import GenerationView, generation_payload
from .head_atlas import HeadAtlasView, head_atlas_payload
from .head_gates import HeadGatesView, head_gates_payload
from .head_grid import HeadGridView, head_grid_payload
from .heatmap import TokenHeatmap
from .linked import Linked
from .neurons import NeuronCompareView, NeuronView, neuron_compare_payload, neurons_payload
from .panels import CurvesView, LensView
from .prev_token import PrevTokenView, prev_token_payload
from .residuals import CrossLayerView, ResidualView, cross_layer_payload, residual_payload
from .scenario import ScenarioView
from .schema import SCHEMA_VERSION
from .snapshots import SnapshotsView, snapshots_payload
from .wire import PayloadOptions, run_payload

__all__ = [
    "SCHEMA_VERSION",
    "AblationOptions",
    "AblationView",
    "AggregateView",
    "AttributionView",
    "CrossLayerView",
    "CurvesView",
    "DiffOptions",
    "Explorer",
    "GenerationView",
    "HeadAtlasView",
    "HeadGatesView",
    "HeadGridView",
    "LensView",
    "Linked",
    "NeuronCompareView",
    "NeuronView",
    "PayloadOptions",
    "PrevTokenView",
    "ResidualView",
    "RunView",
    "ScenarioView",
    "SnapshotsView",
    "TokenHeatmap",
    "VariantDiff",
    "View",
    "ablation_payload",
    "aggregate_payload",
    "attribution_payload",
    "cross_layer_payload",
    "diff_payload",
    "export_html",
    "generation_payload",
    "head_atlas_payload",
    "head_gates_payload",
    "head_grid_payload",
    "neuron_compare_payload",
    "neurons_payload",
    "prev_token_payload",
    "residual_payload",
    "run_payload",
    "snapshots_payload",
]
