"""State metrics (core.states) against hand-written formulas on known vectors."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core.states import Snapshots, cosine, mae, top_jaccard
from tealeaves_widgets.errors import SelectionError


def test_metrics_equal_the_formulas_on_known_vectors():
    a = np.array([3.0, 0.0, 4.0, 0.0])
    b = np.array([0.0, 0.0, 4.0, 3.0])
    assert cosine(a, b) == pytest.approx(16 / 25)
    assert mae(a, b) == pytest.approx((3 + 0 + 0 + 3) / 4)
    # top 1% of 4 dimensions is one: |a| tops at dim 2 (4), |b| at dim 2 (4): the same
    assert top_jaccard(a, b) == pytest.approx(1.0)
    # top half: a {2, 0}, b {2, 3}: one shared of three
    assert top_jaccard(a, b, fraction=0.5) == pytest.approx(1 / 3)
    assert np.isnan(cosine(np.zeros(3), np.ones(3)))
    # over a batch of layers at once
    stacked = np.stack([a, -a])
    np.testing.assert_allclose(cosine(stacked, a), [1.0, -1.0])


def test_centering_takes_out_what_every_state_shares():
    rng = np.random.default_rng(0)
    shared = np.zeros((2, 50))
    shared[:, 7] = 100.0  # a massive dimension, as residual streams have
    states = shared + rng.normal(size=(3, 2, 50))
    snap = Snapshots(
        messages=(
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ),
        positions=np.array([3, 6, 9]),
        states={"hidden_out": states.astype(np.float32)},
        references={
            "calm": {"hidden_out": (shared[0] + rng.normal(size=(2, 50))).astype(np.float32)}
        },
        readout="message_end",
        single_pass=True,
        model_info={"model_id": "hand"},
    )
    raw = snap.compare("hidden_out")
    assert raw["cosine"].min() > 0.9  # everything looks alike
    centred = snap.compare("hidden_out", center=True)
    assert centred["cosine"].abs().max() < 0.9
    summary = snap.summary("hidden_out", center=True)
    assert list(summary.columns) == [
        "message",
        "role",
        "reference",
        "mean",
        "sd",
        "median",
        "min",
        "min_layer",
    ]
    row = centred[(centred["message"] == 0)]
    assert summary.iloc[0]["min"] == pytest.approx(row["cosine"].min())
    assert summary.iloc[0]["min_layer"] == int(
        row["layer"].to_numpy()[row["cosine"].to_numpy().argmin()]
    )
    with pytest.raises(tw.SelectionError, match="Unknown source 'mlp_out'"):
        snap.compare("mlp_out")


def _hand_snapshots(seed: int = 1) -> Snapshots:
    rng = np.random.default_rng(seed)
    roles = ("system", "user", "assistant", "user", "assistant")
    return Snapshots(
        messages=tuple({"role": r, "content": f"m{i}"} for i, r in enumerate(roles)),
        positions=np.arange(5) * 4,
        states={"hidden_out": rng.normal(size=(5, 3, 200)).astype(np.float32)},
        references={
            label: {"hidden_out": rng.normal(size=(3, 200)).astype(np.float32)}
            for label in ("joy", "anger")
        },
        readout="message_end",
        single_pass=True,
        model_info={"model_id": "hand"},
    )


def _by_hand(snap: Snapshots, metric: str, center: bool) -> np.ndarray:
    """(message, reference, layer) from plain loops, an independent reading of
    the formulas in the module docstring."""
    states = snap.states["hidden_out"].astype(np.float64)
    refs = [r["hidden_out"].astype(np.float64) for r in snap.references.values()]
    if center:
        everything = np.concatenate([states, np.stack(refs)])
        mean = everything.sum(axis=0) / len(everything)
        states, refs = states - mean, [r - mean for r in refs]
    out = np.empty((states.shape[0], len(refs), states.shape[1]))
    for m in range(states.shape[0]):
        for r, ref in enumerate(refs):
            for layer in range(states.shape[1]):
                a, b = states[m, layer], ref[layer]
                if metric == "cosine":
                    out[m, r, layer] = a @ b / np.sqrt((a @ a) * (b @ b))
                elif metric == "mae":
                    out[m, r, layer] = sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)
                else:  # 1% of 200 dimensions: the top 2 by |value|
                    top_a = set(sorted(range(len(a)), key=lambda i: -abs(a[i]))[:2])
                    top_b = set(sorted(range(len(b)), key=lambda i: -abs(b[i]))[:2])
                    out[m, r, layer] = len(top_a & top_b) / len(top_a | top_b)
    return out


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("metric", ["cosine", "mae", "jaccard"])
def test_the_tables_equal_hand_written_loops(metric, center):
    snap = _hand_snapshots()
    want = _by_hand(snap, metric, center)
    np.testing.assert_allclose(snap.scores("hidden_out", metric, center=center), want, atol=1e-12)
    table = snap.compare("hidden_out", center=center)
    row = table[(table["message"] == 3) & (table["reference"] == "anger") & (table["layer"] == 2)]
    assert float(row[metric].iloc[0]) == pytest.approx(want[3, 1, 2], abs=1e-12)
    # the heatmap: mean over layers, or one layer
    heat = snap.message_table(metric=metric, center=center)
    assert list(heat.columns) == ["joy", "anger"] and list(heat.index) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(heat.to_numpy(), want.sum(axis=2) / 3, atol=1e-12)
    at = snap.message_table(metric=metric, center=center, layer=1)
    np.testing.assert_allclose(at.to_numpy(), want[:, :, 1], atol=1e-12)
    np.testing.assert_allclose(
        snap.message_table(metric=metric, center=center, layer=-1), want[:, :, 2], atol=1e-12
    )
    # one message's layer chart
    layers = snap.layer_table(2, metric=metric, center=center)
    assert list(layers.index) == [0, 1, 2]
    np.testing.assert_allclose(layers["joy"], want[2, 0], atol=1e-12)
    np.testing.assert_allclose(layers["anger"], want[2, 1], atol=1e-12)
    # user (messages 1 and 3) and assistant (2 and 4) averages; the system message is in neither
    roles = snap.role_means(metric=metric, center=center)
    assert list(roles.index) == ["user", "assistant"]
    layer_mean = want.sum(axis=2) / 3
    np.testing.assert_allclose(roles.loc["user"], (layer_mean[1] + layer_mean[3]) / 2, atol=1e-12)
    np.testing.assert_allclose(
        roles.loc["assistant"], (layer_mean[2] + layer_mean[4]) / 2, atol=1e-12
    )
    at_layer = snap.role_means(metric=metric, center=center, layer=0)
    np.testing.assert_allclose(
        at_layer.loc["assistant"], (want[2, :, 0] + want[4, :, 0]) / 2, atol=1e-12
    )


def test_the_tables_check_their_selection():
    snap = _hand_snapshots()
    with pytest.raises(tw.SelectionError, match="metric must be one of"):
        snap.scores(metric="l2")
    with pytest.raises(tw.SelectionError, match="layer 3 is out of range for 3 layers"):
        snap.message_table(layer=3)
    with pytest.raises(tw.SelectionError, match="message 5 is out of range for 5 messages"):
        snap.layer_table(5)
    with pytest.raises(tw.SelectionError, match="layer must be an int or None"):
        snap.role_means(layer=True)
    # a role with no message averages to NaN, not an error
    only_users = Snapshots(
        messages=({"role": "user", "content": "a"},),
        positions=np.array([2]),
        states={"hidden_out": snap.states["hidden_out"][:1]},
        references=snap.references,
        readout="message_end",
        single_pass=True,
        model_info={},
    )
    means = only_users.role_means()
    assert np.isnan(means.loc["assistant"]).all() and not np.isnan(means.loc["user"]).any()


def test_a_neuron_trajectory_reads_one_dimension_of_every_state():
    snap = _hand_snapshots()
    layer, index = 1, 2
    table = snap.neuron_trajectory(layer, index, "hidden_out")
    messages = table[table["reference"].isna()]
    np.testing.assert_array_equal(
        messages["value"].to_numpy(), snap.states["hidden_out"][:, layer, index]
    )
    refs = table.dropna(subset=["reference"]).set_index("reference")["value"]
    for label, ref in snap.references.items():
        assert refs[label] == ref["hidden_out"][layer, index]
    with pytest.raises(SelectionError, match="index=999 is outside"):
        snap.neuron_trajectory(0, 999)
    with pytest.raises(SelectionError, match="Unknown source"):
        snap.neuron_trajectory(0, 0, "qkv")
