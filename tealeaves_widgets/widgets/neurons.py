"""`NeuronView` and `NeuronCompareView`: the most variable neurons of a layer
(a `tw.NeuronActivations`) as a neurons x tokens heatmap, and the neurons
that differ most across prompts (a `tw.NeuronComparison`) as a neurons x
prompts heatmap. Both are centred at 0 on a diverging palette spanning
-vmax..vmax (the largest |value| over the scored columns: position 0, left
out of the ranking, may saturate); hover a cell for its value, click a row
to mark a neuron. Numbers travel as binary arrays.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import traitlets as t

from ..core.neurons import NeuronActivations, NeuronComparison
from ._bundle import esm
from .base import ResultView, TraitSelectionError
from .schema import SCHEMA_VERSION, ModelName, NeuronComparePayload, NeuronsPayload
from .wire import encode_array

__all__ = ["NeuronCompareView", "NeuronView", "neuron_compare_payload", "neurons_payload"]


def _model(info: dict) -> ModelName:
    return {"model_id": str((info or {}).get("model_id", "unknown model"))}


def _float32(values: Any) -> Any:
    return encode_array(np.asarray(values, dtype=np.float32))


def _int32(values: Any) -> Any:
    return encode_array(np.asarray(values, dtype=np.int32))


def neurons_payload(result: NeuronActivations) -> NeuronsPayload:
    """The neurons x tokens matrix of `result` as one synced value."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "neurons",
        "model": _model(result.model_info),
        "layer": int(result.layer),
        "source": result.source,
        "rule": result.rule,
        "note": result.note,
        "positions_label": result.positions_label,
        "n_neurons": int(result.n_neurons),
        "neurons": _int32(result.neurons),
        "sd": _float32(result.sd),
        "positions": _int32(result.positions),
        "tokens": [str(token) for token in result.tokens],
        "scored": encode_array(np.asarray(result.scored, dtype=np.uint8)),
        "values": _float32(result.values),
        "vmax": float(result.vmax),
    }


def neuron_compare_payload(result: NeuronComparison) -> NeuronComparePayload:
    """The neurons x prompts matrix of `result` as one synced value."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "neuron_compare",
        "model": _model(result.model_info),
        "layer": int(result.layer),
        "source": result.source,
        "rule": result.rule,
        "note": result.note,
        "positions_label": result.positions_label,
        "n_neurons": int(result.n_neurons),
        "neurons": _int32(result.neurons),
        "spread": _float32(result.spread),
        "labels": [str(label) for label in result.labels],
        "n_positions": [int(n) for n in result.n_positions],
        "means": _float32(result.means),
        "vmax": float(result.vmax),
    }


def _check_neuron(value: object, neurons: np.ndarray) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TraitSelectionError(f"neuron must be an int neuron index or -1, got {value!r}.")
    if value != -1 and value not in neurons:
        raise TraitSelectionError(
            f"neuron={value} is not a row of this view; its neurons are {neurons.tolist()} "
            "(or -1 for none)."
        )
    return int(value)


N = TypeVar("N", NeuronActivations, NeuronComparison)


class _NeuronRowsView(ResultView[N]):
    """What both neuron views share: a row per neuron (`result.neurons`),
    one of which the user may mark."""

    neuron = t.Int(-1).tag(sync=True, echo_update=False)
    """The marked neuron (an index in `result.neurons`), -1 for none."""

    @t.validate("neuron")
    def _valid_neuron(self, proposal: t.Bunch) -> int:
        return _check_neuron(proposal["value"], self._result.neurons)


class NeuronView(_NeuronRowsView[NeuronActivations]):
    """A `tw.NeuronActivations` as a neurons x tokens heatmap centred at 0
    (diverging colours, -vmax..vmax over the scored columns), the rows
    labelled with the neuron index and sd, the columns with the tokens;
    hover a cell for its value; click a row to mark its neuron.

    Synced with Python: `neuron` (the marked neuron index, -1 for none).
    `display(result)` shows one."""

    _esm = esm("neuron_view")
    _result_type = NeuronActivations
    _result_from = "run.neurons(layer)"
    _payload_of = staticmethod(neurons_payload)
    """The matrix on the wire."""


class NeuronCompareView(_NeuronRowsView[NeuronComparison]):
    """A `tw.NeuronComparison` as a neurons x prompts heatmap of each
    neuron's mean activation, centred at 0 (diverging colours), rows by
    spread; hover a cell for its value; click a row to mark its neuron.

    Synced with Python: `neuron` (the marked neuron index, -1 for none).
    `display(result)` shows one."""

    _esm = esm("neuron_view")
    _result_type = NeuronComparison
    _result_from = "tw.compare_neurons"
    _payload_of = staticmethod(neuron_compare_payload)
    """The matrix on the wire."""
