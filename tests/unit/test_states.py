"""State metrics (core.states) against hand-written formulas on known vectors."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core.states import Snapshots, cosine, mae, top_jaccard


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
