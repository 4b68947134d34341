"""SnapshotsView on the Python side, without a model (the snapshots are
built by hand, tests/helpers/synthetic.py): the payload holds, for every
source, centring and metric, `Snapshots.scores` per layer, the means over the
layers (`message_table`) and the user / assistant averages (`role_means`),
as binary float32; message text travels as text; the view refuses other
results, unknown options and bad selections; `display(snapshots)` and
`export_html(snapshots)` show it; importing it loads no torch."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets

import tealeaves_widgets as tw
from tealeaves_widgets.core import seam
from tealeaves_widgets.core.states import METRICS, Snapshots
from tealeaves_widgets.widgets import SnapshotsView, snapshots_payload
from tealeaves_widgets.widgets.export import page_html
from tealeaves_widgets.widgets.schema import SnapshotsPayload, check_typeddict
from tealeaves_widgets.widgets.wire import decode_array
from tests.helpers.isolated import loaded_after_import
from tests.helpers.synthetic import SNAPSHOT_MARKUP, synthetic_prev_token, synthetic_snapshots


@pytest.fixture(scope="module")
def snapshots():
    return synthetic_snapshots()


@pytest.fixture(scope="module")
def payload(snapshots):
    return snapshots_payload(snapshots)


def test_the_payload_matches_its_schema_and_sends_floats(payload, snapshots):
    assert check_typeddict(payload, SnapshotsPayload) == []
    assert payload["kind"] == "snapshots" and payload["model"] == {"model_id": "synthetic"}
    assert payload["sources"] == snapshots.sources and payload["metrics"] == list(METRICS)
    assert payload["centrings"] == ["raw", "centred"] and payload["roles"] == ["user", "assistant"]
    assert [r["label"] for r in payload["references"]] == ["joy", "anger", "calm"]
    assert len({r["color"] for r in payload["references"]}) == 3
    for key in ("scores", "layer_mean", "role_layers", "role_mean"):
        assert payload[key]["dtype"] == "float32" and isinstance(payload[key]["data"], memoryview)
    assert payload["scores"]["shape"] == [4, 2, 3, 6, 3, 6]
    assert payload["role_layers"]["shape"] == [4, 2, 3, 2, 3, 6]


@pytest.mark.parametrize("source", ["hidden_in", "attn_out"])
@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("metric", list(METRICS))
def test_every_combination_holds_the_snapshots_own_numbers(
    payload, snapshots, source, center, metric
):
    s, c, m = payload["sources"].index(source), int(center), payload["metrics"].index(metric)
    scores = decode_array(payload["scores"])[s, c, m]
    want = snapshots.scores(source, metric, center=center)
    np.testing.assert_allclose(scores, want, rtol=1e-6, atol=1e-6)
    mean = decode_array(payload["layer_mean"])[s, c, m]
    table = snapshots.message_table(source, metric, center=center)
    np.testing.assert_allclose(mean, table.to_numpy(), rtol=1e-6, atol=1e-6)
    # and the per-layer rows of compare, the result's own table
    rows = snapshots.compare(source, center=center)
    row = rows[(rows["message"] == 4) & (rows["reference"] == "calm") & (rows["layer"] == 3)]
    assert scores[4, 2, 3] == pytest.approx(float(row[metric].iloc[0]), rel=1e-6, abs=1e-6)
    roles = decode_array(payload["role_mean"])[s, c, m]
    np.testing.assert_allclose(
        roles, snapshots.role_means(source, metric, center=center).to_numpy(), rtol=1e-6, atol=1e-6
    )
    at_layer = decode_array(payload["role_layers"])[s, c, m, :, :, 2]
    np.testing.assert_allclose(
        at_layer,
        snapshots.role_means(source, metric, center=center, layer=2).to_numpy(),
        rtol=1e-6,
        atol=1e-6,
    )


def test_messages_travel_as_plain_text(payload):
    messages = payload["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    # whitespace collapsed, cut with an ellipsis
    assert messages[1]["preview"] == "I got the job! I can't believe it, I am so\u2026"
    assert messages[1]["content"] == "I got the job! I can't believe it, I am so happy today."
    assert SNAPSHOT_MARKUP in messages[3]["content"]  # as text; the view sets textContent
    assert [m["position"] for m in messages] == [20, 41, 60, 95, 118, 140]


def test_snapshots_without_references_still_make_a_payload(snapshots):
    bare = Snapshots(
        messages=snapshots.messages,
        positions=snapshots.positions,
        states={"hidden_out": snapshots.states["hidden_out"]},
        references={},
        readout="gen_prompt",
        single_pass=False,
        model_info={},
    )
    payload = snapshots_payload(bare)
    assert check_typeddict(payload, SnapshotsPayload) == []
    assert payload["scores"]["shape"] == [1, 2, 3, 6, 0, 6] and payload["references"] == []
    assert SnapshotsView(bare).source == "hidden_out"


def test_the_view_checks_its_options(snapshots):
    view = SnapshotsView(snapshots, source="mlp_out", metric="jaccard", center=True, layer=2)
    assert (view.source, view.metric, view.center, view.layer) == ("mlp_out", "jaccard", True, 2)
    assert view.result is snapshots
    default = SnapshotsView(snapshots)
    assert (default.source, default.metric, default.center, default.layer) == (
        "hidden_out",
        "cosine",
        False,
        None,
    )
    with pytest.raises(tw.SelectionError, match="source='residual' was not read"):
        SnapshotsView(snapshots, source="residual")
    with pytest.raises(tw.SelectionError, match=r"layer=6 is out of range: use 0\.\.5"):
        default.layer = 6
    assert default.layer is None
    with pytest.raises(traitlets.TraitError):
        default.metric = "l2"
    with pytest.raises(tw.ArgumentTypeError, match="unknown keyword argument"):
        SnapshotsView(snapshots, centre=True)
    with pytest.raises(tw.ArgumentTypeError, match="SnapshotsView expects a tw.Snapshots"):
        SnapshotsView(synthetic_prev_token())
    only_in = Snapshots(
        messages=snapshots.messages,
        positions=snapshots.positions,
        states={"hidden_in": snapshots.states["hidden_in"]},
        references={k: {"hidden_in": v["hidden_in"]} for k, v in snapshots.references.items()},
        readout="message_end",
        single_pass=True,
        model_info={},
    )
    assert SnapshotsView(only_in).source == "hidden_in"


def test_display_and_export_show_the_view(snapshots):
    assert seam.implementation("view", Snapshots) is SnapshotsView
    assert tw.SnapshotsView is SnapshotsView
    assert snapshots._repr_mimebundle_() == {"text/plain": repr(snapshots)}  # outside a kernel
    page = page_html(snapshots)
    assert '"kind":"snapshots"' in page and "tw-snapshots-view" in page


def test_importing_the_view_loads_no_torch():
    assert loaded_after_import(["tealeaves_widgets.widgets.snapshots"], ["torch"]) == []
