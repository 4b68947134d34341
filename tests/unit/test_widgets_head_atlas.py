"""The head atlas view's payload and Python side: every score, offset
profile and mean pattern on the wire equals the atlas's own (patterns to
float16's precision); the selection starts at the metric's top head and is
checked; with run= the view comes with an explorer linked on layer and head,
and displaying or exporting the view shows both."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core import seam
from tealeaves_widgets.core.head_atlas import METRIC_NAMES, METRICS
from tealeaves_widgets.widgets import Explorer, HeadAtlasView, Linked, head_atlas_payload
from tealeaves_widgets.widgets.export import page_html
from tealeaves_widgets.widgets.schema import HeadAtlasPayload, check_typeddict
from tealeaves_widgets.widgets.wire import decode_array
from tests.helpers.fake_atlas import (
    INDUCTION_HEAD,
    NAN_HEAD,
    OV_COPY_HEAD,
    PREV_HEAD,
    fake_atlas,
)
from tests.helpers.synthetic import synthetic_run


@pytest.fixture(scope="module")
def atlas():
    return fake_atlas()


def test_the_payload_holds_the_atlas_numbers(atlas):
    payload = head_atlas_payload(atlas)
    assert check_typeddict(payload, HeadAtlasPayload) == []
    assert (payload["n_layers"], payload["n_heads"]) == (6, 4)
    scores = decode_array(payload["scores"])
    assert scores.dtype == np.float32 and scores.shape == (len(METRICS), 6, 4)
    for i, name in enumerate(METRIC_NAMES):
        want = np.asarray(atlas.scores[name], np.float64)
        np.testing.assert_allclose(scores[i], want, rtol=1e-6, atol=0, equal_nan=True)
    assert np.isnan(scores[METRIC_NAMES.index("s2_attention")][NAN_HEAD])
    profiles = decode_array(payload["profiles"])
    assert profiles.dtype == np.float32
    np.testing.assert_allclose(profiles, atlas.profiles, rtol=1e-6, atol=1e-9)
    patterns = decode_array(payload["patterns"])
    assert patterns.dtype == np.float16 and patterns.shape == atlas.patterns.shape
    # float16: 11 significant bits, weights below its normal range kept to 2**-24
    np.testing.assert_allclose(
        patterns.astype(np.float32), atlas.patterns, rtol=2**-11, atol=2**-24
    )
    # the planted previous-token head's rows sit one key to the left
    layer, head = PREV_HEAD
    rows = patterns[layer, head].astype(np.float32)
    assert (rows[1:].argmax(-1) == np.arange(len(rows) - 1)).all()


def test_the_payload_describes_the_metrics_and_probes(atlas):
    payload = head_atlas_payload(atlas)
    assert [m["name"] for m in payload["metrics"]] == list(METRIC_NAMES)
    assert [m["signed"] for m in payload["metrics"]] == [m.signed for m in METRICS]
    assert [m["description"] for m in payload["metrics"]] == [m.description for m in METRICS]
    notes = {m["name"]: m["note"] for m in payload["metrics"]}
    assert notes["delimiter"] == atlas.notes["delimiter"] and notes["induction"] == ""
    probes = {p["name"]: p for p in payload["probes"]}
    assert probes["repeated"] == {
        "name": "repeated",
        "count": 1,
        "min_length": 17,
        "max_length": 17,
    }
    assert probes["text"]["count"] == 3 and probes["text"]["max_length"] == 13
    assert payload["bos_prepended"] is True and payload["seed"] == 0


def test_the_view_starts_at_the_metric_s_top_head(atlas):
    view = HeadAtlasView(atlas)
    assert (view.metric, view.layer, view.head) == ("previous_token", *PREV_HEAD)
    view = HeadAtlasView(atlas, metric="induction")
    assert (view.layer, view.head) == INDUCTION_HEAD
    # a signed metric's top head is the largest |score|, here a negative one
    view = HeadAtlasView(atlas, metric="ov_copy")
    assert (view.layer, view.head) == OV_COPY_HEAD
    view = HeadAtlasView(atlas, layer=5, head=None, sort="score", threshold=0.25)
    assert (view.layer, view.head, view.sort, view.threshold) == (5, None, "score", 0.25)
    assert view.result is atlas


def test_the_selection_is_checked(atlas):
    view = HeadAtlasView(atlas)
    with pytest.raises(
        tw.SelectionError, match=r"layer=6 is out of range; this atlas has layers 0..5"
    ):
        view.layer = 6
    with pytest.raises(
        tw.SelectionError, match=r"head=4 is out of range; this atlas has heads 0..3"
    ):
        view.head = 4
    view.head = None  # no head selected (a linked explorer's average)
    with pytest.raises(tw.ArgumentError, match="threshold must be a finite number >= 0"):
        view.threshold = -0.1
    with pytest.raises(tw.ArgumentError, match="threshold must be a finite number"):
        view.threshold = float("nan")
    with pytest.raises(Exception, match="entropyy"):
        view.metric = "entropyy"
    assert (view.layer, view.head, view.threshold) == (PREV_HEAD[0], None, 0.0)


def test_bad_arguments_say_what_to_pass(atlas):
    with pytest.raises(tw.ArgumentTypeError, match="expects a tw.HeadAtlas .* got dict"):
        HeadAtlasView({})
    with pytest.raises(tw.ArgumentTypeError, match=r"unknown keyword argument\(s\) \['metrc'\]"):
        HeadAtlasView(atlas, metrc="induction")
    with pytest.raises(tw.ArgumentTypeError, match="run= must be a tw.Run .* got HeadAtlas"):
        HeadAtlasView(atlas, run=atlas)
    run = synthetic_run(n_tokens=40, n_layers=5, n_heads=4)
    with pytest.raises(tw.ArgumentError, match=r"5 layers x 4 heads .* but the atlas 6 x 4"):
        HeadAtlasView(atlas, run=run)


def test_run_links_an_explorer_on_layer_and_head(atlas):
    run = synthetic_run(n_tokens=40, n_layers=6, n_heads=4)
    view = HeadAtlasView(atlas, run=run, metric="induction")
    assert isinstance(view.explorer, Explorer) and isinstance(view.linked, Linked)
    assert (view.explorer.layer, view.explorer.head) == INDUCTION_HEAD
    assert sorted(view.linked.linked) == [
        ("head", "HeadAtlasView", "Explorer"),
        ("layer", "HeadAtlasView", "Explorer"),
    ]
    # displaying the view shows the two (the Linked box holding them)
    bundle = view._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    shown = data["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert shown == view.linked.model_id and view.linked.children == (view, view.explorer)
    page = page_html(view)
    assert view.explorer.model_id in page and view.model_id in page
    # without a run, only the atlas
    alone = HeadAtlasView(atlas)
    assert alone.explorer is None and alone.linked is None
    data = alone._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == alone.model_id


def test_display_and_export_show_an_atlas_in_its_view(atlas):
    view = seam.call("view", atlas)
    assert isinstance(view, HeadAtlasView) and view.result is atlas
    page = page_html(atlas)
    assert "head_atlas" in page and "tw-head-atlas-view" in page
