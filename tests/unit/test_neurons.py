"""`core.neurons` without a model: the top-k rule against numpy on hand-made
activations (a sink on position 0 that would win the ranking), the notes,
the colour bound, the tables, the cross-prompt spread, position specs and
their errors."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core.neurons import (
    NeuronActivations,
    NeuronComparison,
    resolve_positions,
    top_variable,
)
from tealeaves_widgets.core.run import RegionInfo


def sink_activations(seed: int = 0, n_pos: int = 12, n_neurons: int = 40) -> np.ndarray:
    """(position, neuron) values with a huge position 0 on neurons 3 and 7."""
    values = np.random.default_rng(seed).normal(size=(n_pos, n_neurons)).astype(np.float32)
    values[0, [3, 7]] = 400.0
    values[1:, 11] *= 5  # the most variable neuron once position 0 is left out
    return values


def test_the_ranking_leaves_position_0_out_and_is_numpys():
    values = sink_activations()
    positions = np.arange(12)
    tokens = [f"t{i}" for i in range(12)]
    result = NeuronActivations.select(values, 4, "mlp_act", positions, tokens, 5)
    sd = values[1:].astype(np.float64).std(axis=0)
    assert result.neurons.tolist() == np.argsort(-sd, kind="stable")[:5].tolist()
    assert result.neurons[0] == 11 and 3 not in result.neurons and 7 not in result.neurons
    np.testing.assert_array_equal(result.values, values[:, result.neurons].T)
    np.testing.assert_allclose(result.sd, np.sort(sd)[::-1][:5])
    assert result.scored.tolist() == [False] + [True] * 11
    assert result.vmax == pytest.approx(np.abs(values[1:, result.neurons]).max())
    assert "Position 0 't0' is left out" in result.note
    assert "include_first=True" in result.note and "x the other positions'" in result.note
    assert "position 0 excluded" in result.rule and "highest sd" in result.rule
    # counted, the sink picks the neurons
    counted = NeuronActivations.select(
        values, 4, "mlp_act", positions, tokens, 5, include_first=True
    )
    assert set(counted.neurons[:2].tolist()) == {3, 7} and counted.note == ""
    table = result.table()
    assert table.index.name == "rank" and table["neuron"].tolist() == result.neurons.tolist()
    scored = values[1:, 11].astype(np.float64)
    assert table.loc[0, "mean"] == pytest.approx(scored.mean())
    peak = 1 + int(np.abs(scored).argmax())
    assert (table.loc[0, "peak_position"], table.loc[0, "peak_token"]) == (peak, f"t{peak}")
    assert result.frame().shape == (5, 12) and result.frame().columns[2] == "2:t2"
    text = repr(result)
    assert text.startswith("NeuronActivations(") and "layer 4 mlp_act" in text and "note:" in text


def test_ties_keep_the_lower_index_and_top_k_clamps():
    values = np.tile(np.array([[1.0, -1.0, 1.0, 0.0]]), (4, 1))
    values[::2] *= -1  # neurons 0, 1 and 2 share one sd
    neurons, sd = top_variable(values, np.ones(4, bool), 2)
    assert neurons.tolist() == [0, 1] and sd.tolist() == [1.0, 1.0]
    result = NeuronActivations.select(values, 0, "hidden_out", np.arange(1, 5), list("abcd"), 9)
    assert result.neurons.tolist() == [0, 1, 2, 3] and "all are shown" in result.note
    assert "Position 0" not in result.note  # the positions did not hold it


def test_the_ranking_needs_two_scored_positions():
    values = np.ones((2, 3))
    with pytest.raises(tw.ArgumentError, match="at least 2 positions.*include_first=True"):
        NeuronActivations.select(values, 0, "mlp_act", np.array([0, 4]), ["a", "b"], 2)
    with pytest.raises(tw.ArgumentError, match="top_k must be at least 1"):
        NeuronActivations.select(values, 0, "mlp_act", np.array([1, 4]), ["a", "b"], 0)
    with pytest.raises(tw.ArgumentError, match="Expected \\(position, neuron\\)"):
        NeuronActivations.select(values, 0, "mlp_act", np.arange(3), ["a", "b", "c"], 2)


def test_the_comparison_ranks_the_spread_of_the_means():
    means = np.array([[0.0, 1.0, 5.0, 2.0], [0.0, -1.0, 5.5, 2.0], [0.1, 0.0, 4.5, 2.0]])
    result = NeuronComparison.select(means, 3, "mlp_act", ["a", "b", "c"], [4, 5, 6], 2)
    spread = means.std(axis=0)
    assert result.neurons.tolist() == np.argsort(-spread, kind="stable")[:2].tolist() == [1, 2]
    np.testing.assert_allclose(result.means, means[:, [1, 2]].T)
    np.testing.assert_allclose(result.spread, spread[[1, 2]])
    assert result.vmax == pytest.approx(5.5)
    table = result.table()
    assert list(table.columns) == ["a", "b", "c", "spread"] and table.index.tolist() == [1, 2]
    assert "Position 0 is left out" in result.note and "2 prompts" not in repr(result)
    assert "2 neurons x 3 prompts" in repr(result)


def test_position_specs():
    regions = {
        "user": RegionInfo("user", "user", (0, 9), np.array([2, 3, 4])),
        "empty": RegionInfo("empty", "user", (0, 0), np.array([], dtype=np.int64)),
    }
    queries = {"final": 9, "pos:4": 4}
    assert resolve_positions("all", 10, queries, regions, "this run")[0].tolist() == list(range(10))
    assert resolve_positions("queries", 10, queries, regions, "this run")[0].tolist() == [9, 4]
    found, label = resolve_positions("user", 10, queries, regions, "this run")
    assert (found.tolist(), label) == ([2, 3, 4], "user")
    assert resolve_positions([0, -1], 10, queries, regions, "this run")[0].tolist() == [0, 9]
    with pytest.raises(tw.SelectionError, match="Unknown region 'answer'.*\\['user', 'empty'\\]"):
        resolve_positions("answer", 10, queries, regions, "this run")
    with pytest.raises(tw.EmptyRegionError, match="'empty' holds no token"):
        resolve_positions("empty", 10, queries, regions, "this run")
    with pytest.raises(tw.SelectionError, match="positions \\[10\\] are not token indices"):
        resolve_positions([1, 10], 10, queries, regions, "this run")
    with pytest.raises(tw.ArgumentTypeError, match="positions must be"):
        resolve_positions(3, 10, queries, regions, "this run")
