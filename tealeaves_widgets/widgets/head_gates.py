"""`HeadGatesView`: fitted Causal Head Gating gates (a `tw.HeadGates`) as a
layer x head grid, one phase at a time (plain, retention, removal) or the
taxonomy they give (facilitating, interfering, irrelevant), with the loss
curves of the three phases beside it. Hovering a cell shows the head's gate
in every phase and its label.

Numbers travel as binary float32 arrays.
"""

from __future__ import annotations

import numpy as np
import traitlets as t

from ..core.head_gates import LABELS, PHASES, HeadGates
from ._bundle import esm
from .base import ResultView
from .schema import SCHEMA_VERSION, HeadGatesPayload
from .wire import encode_array

__all__ = ["GRID_PHASES", "HeadGatesView", "head_gates_payload"]

GRID_PHASES = (*PHASES, "label")
"""What the grid shows: the gates of one phase, or the taxonomy ("label")."""


def head_gates_payload(gates: HeadGates) -> HeadGatesPayload:
    """The gates of every phase, the labels and the loss curves of `gates`
    as one synced value (numbers as float32, labels as uint8 indices)."""
    stacked = np.stack([np.asarray(gates.gates[phase], dtype=np.float32) for phase in PHASES])
    n_layers, n_heads = stacked.shape[1:]
    labels = np.zeros((n_layers, n_heads), dtype=np.uint8)
    for index, name in enumerate(LABELS):
        labels[gates.labels == name] = index
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "head_gates",
        "model": {"model_id": str((gates.model_info or {}).get("model_id", "unknown model"))},
        "n_layers": int(n_layers),
        "n_heads": int(n_heads),
        "phases": list(PHASES),
        "gates": encode_array(stacked),
        "label_names": list(LABELS),
        "labels": encode_array(labels),
        "losses": [
            encode_array(np.asarray(gates.losses.get(phase, []), dtype=np.float32))
            for phase in PHASES
        ],
        "base_loss": float(gates.base_loss),
        "strength": float(gates.strength),
        "threshold": float(gates.threshold),
    }


class HeadGatesView(ResultView[HeadGates]):
    """A `tw.HeadGates` as a layer x head grid of gate values with a phase
    toggle (plain, retention, removal, or the label each head gets), the
    taxonomy's legend, and the task loss of each phase per update step beside
    it. Hover a cell for the head's gates in all three phases.

    Synced with Python: `phase` (one of `GRID_PHASES`). `display(gates)`
    shows one."""

    _esm = esm("head_gates_view")
    _result_type = HeadGates
    _result_from = "model.fit_head_gates"
    _payload_of = staticmethod(head_gates_payload)
    """The gates on the wire."""

    phase = t.Enum(GRID_PHASES, default_value="label").tag(sync=True, echo_update=False)
    """What the grid shows: a phase's gates, or "label" (the taxonomy)."""
