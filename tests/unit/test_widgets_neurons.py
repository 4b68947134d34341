"""NeuronView and NeuronCompareView in Python: the payload carries the
result's numbers as binary arrays, `display(result)` picks the view, the
synced `neuron` is checked, a wrong result type is refused."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core import seam
from tealeaves_widgets.widgets import NeuronCompareView, NeuronView, neurons_payload
from tealeaves_widgets.widgets.wire import decode_array
from tests.helpers.golden import golden_neuron_compare, golden_neurons


def test_the_payload_is_the_result():
    result = golden_neurons()
    payload = neurons_payload(result)
    np.testing.assert_array_equal(decode_array(payload["values"]), result.values)
    assert decode_array(payload["neurons"]).tolist() == result.neurons.tolist()
    assert decode_array(payload["scored"]).tolist() == [0, 1, 1, 1, 1]
    assert payload["tokens"][1] == "<b>x</b>" and payload["vmax"] == result.vmax == 2.0
    assert isinstance(payload["values"]["data"], memoryview)


def test_display_picks_the_views_and_checks_the_neuron():
    result, comparison = golden_neurons(), golden_neuron_compare()
    assert isinstance(seam.call("view", result), NeuronView)
    assert isinstance(seam.call("view", comparison), NeuronCompareView)
    view = NeuronView(result, neuron=int(result.neurons[1]))
    assert view.neuron == result.neurons[1] and view.result is result
    with pytest.raises(tw.SelectionError, match="neuron=0 is not a row of this view"):
        view.neuron = 0  # ranked out by the first-token sink
    view.neuron = -1
    with pytest.raises(tw.ArgumentTypeError, match="NeuronView expects a tw.NeuronActivations"):
        NeuronView(comparison)
    with pytest.raises(tw.ArgumentTypeError, match="unknown keyword argument"):
        NeuronCompareView(comparison, nueron=1)
