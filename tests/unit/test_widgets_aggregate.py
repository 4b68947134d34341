"""AggregateView on the Python side: the payload holds `RunSet.aggregate` for
every set, normalisation and query; the selection is validated;
display(runset) and export_html show it. No torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import traitlets

import tealeaves_widgets as tw
from tealeaves_widgets.core.run import NORMALIZATIONS
from tealeaves_widgets.errors import TealeavesError
from tealeaves_widgets.widgets import AggregateView, aggregate_payload
from tealeaves_widgets.widgets.aggregate import AGGREGATE_STATS, as_runsets
from tealeaves_widgets.widgets.export import page_html
from tealeaves_widgets.widgets.wire import decode_array
from tests.helpers.fake_runs import fake_run, regions_of, variant_words


def run_of(terse: bool, seed: int, extra_region: bool = False) -> tw.Run:
    words = variant_words(terse)
    regions = regions_of(words)
    if extra_region:
        regions["question"] = (len(words) - 3, len(words) - 1)
    return fake_run(words, regions, seed=seed)


@pytest.fixture(scope="module")
def sets() -> dict[str, tw.RunSet]:
    return {
        "baseline": tw.RunSet(tuple(run_of(False, i) for i in range(5))),
        "terse": tw.RunSet(tuple(run_of(True, 10 + i, extra_region=True) for i in range(3))),
    }


def test_values_equal_runset_aggregate(sets):
    payload = aggregate_payload(sets, level=0.9)
    values = decode_array(payload["values"])
    regions = [r["name"] for r in payload["regions"]]
    assert regions == ["rules", "facts", "persona", "question"]
    assert payload["queries"] == ["final", "last_token"]
    assert payload["normalizations"] == list(NORMALIZATIONS)
    assert values.shape == (2, 4, 2, 6, 4, len(AGGREGATE_STATS))
    assert [s["units"] for s in payload["sets"]] == [5, 3]
    for s, rs in enumerate(sets.values()):
        for m, normalize in enumerate(NORMALIZATIONS):
            for q, query in enumerate(payload["queries"]):
                frame = rs.aggregate(query, normalize, level=0.9)
                for row in frame.itertuples():
                    r = regions.index(row.region)
                    for k, stat in enumerate(AGGREGATE_STATS):
                        got = values[s, m, q, row.layer, r, k]
                        assert got == pytest.approx(getattr(row, stat), rel=1e-6, abs=1e-7)
    # the baseline set lacks the "question" region: NaN there, not 0
    assert np.isnan(values[0, :, :, :, 3]).all() and np.isfinite(values[1, :, :, :, 3]).all()


def test_what_is_excluded_and_the_sink_per_set(sets):
    """Default "auto": the first token out of "share" only; the sink (first
    token) and the excluded mass per set, query and layer as RunSet.excluded_mass."""
    payload = aggregate_payload(sets)
    assert payload["excluded"] == ["nothing", "first token", "nothing", "nothing"]
    assert payload["first_excluded"] == [False, True, False, False]
    sink, excluded = decode_array(payload["sink"]), decode_array(payload["excluded_mass"])
    assert sink.shape == (2, 2, 6) and excluded.shape == (2, 4, 2, 6)
    for s, rs in enumerate(sets.values()):
        for q, query in enumerate(payload["queries"]):
            first = rs.excluded_mass(query, "first")["mean"].to_numpy()
            np.testing.assert_allclose(sink[s, q], first, rtol=1e-6)
            np.testing.assert_allclose(excluded[s, 1, q], first, rtol=1e-6)
    assert not excluded[:, [0, 2, 3]].any()
    by_hand = np.mean([r.attention[:, r.query_index("final"), 0] for r in sets["terse"]], axis=0)
    np.testing.assert_allclose(sink[1, 0], by_hand, rtol=1e-6)


def test_exclude_is_honoured_by_every_normalisation(sets):
    view = AggregateView(sets, exclude="persona", normalizations=["raw", "share"])
    payload = view.payload
    assert payload["excluded"] == ["persona", "persona"]
    assert payload["first_excluded"] == [True, True]  # persona starts at the first token
    values, excluded = decode_array(payload["values"]), decode_array(payload["excluded_mass"])
    regions = [r["name"] for r in payload["regions"]]
    frame = sets["baseline"].aggregate("final", "share", exclude="persona")
    for row in frame.itertuples():
        got = values[0, 1, 0, row.layer, regions.index(row.region), 0]
        assert got == pytest.approx(row.mean, rel=1e-6, abs=1e-7)
    assert np.isnan(values[:, :, :, :, regions.index("persona")]).all()
    mass = sets["terse"].excluded_mass("last_token", "persona")["mean"].to_numpy()
    np.testing.assert_allclose(excluded[1, 0, 1], mass, rtol=1e-6)
    with pytest.raises(TealeavesError, match=r"\['nope'\]"):
        AggregateView(sets, exclude="nope")
    with pytest.raises(TealeavesError, match="exclude must be"):
        AggregateView(sets, exclude=3)


def test_a_mean_by_hand_and_zero_width_bands_for_identical_runs():
    run = run_of(False, 3)
    same = tw.RunSet((run, run, run))
    values = decode_array(aggregate_payload({"same": same}, normalizations=["raw"])["values"])
    curves = run.curves("final", "raw")
    mean, low, high, sd = (
        values[0, 0, 0, :, :, AGGREGATE_STATS.index(k)] for k in ("mean", "low", "high", "sd")
    )
    np.testing.assert_allclose(mean, curves.to_numpy(), atol=1e-6)
    np.testing.assert_array_equal(low, mean)
    np.testing.assert_array_equal(high, mean)
    np.testing.assert_array_equal(sd, 0)
    runs = [run_of(False, i) for i in range(4)]
    by_hand = np.mean([r.curves("final", "share").to_numpy() for r in runs], axis=0)
    values = decode_array(aggregate_payload({"x": tw.RunSet(tuple(runs))})["values"])
    np.testing.assert_allclose(
        values[0, NORMALIZATIONS.index("share"), 0, :, :, 0], by_hand, atol=1e-6
    )


def test_inputs_a_runset_a_run_or_a_dict():
    rs = tw.RunSet(tuple(run_of(False, i) for i in range(2)))
    assert list(as_runsets(rs)) == ["all cases"]
    single = as_runsets(run_of(False, 0))
    assert list(single) == ["run"] and len(single["run"]) == 1
    values = decode_array(aggregate_payload(single)["values"])
    assert np.isnan(values[..., AGGREGATE_STATS.index("low")]).all()  # one unit: no band
    with pytest.raises(TealeavesError, match="AggregateView expects a tw.RunSet or a dict"):
        AggregateView([rs])
    with pytest.raises(
        TealeavesError, match="Entry 'b' must be named by a str and hold a tw.RunSet"
    ):
        AggregateView({"a": rs, "b": 3})
    deep = tw.RunSet(
        (fake_run(variant_words(False), regions_of(variant_words(False)), n_layers=4),)
    )
    with pytest.raises(TealeavesError, match="different numbers of layers"):
        AggregateView({"a": rs, "b": deep})
    with pytest.raises(TealeavesError, match="normalizations=\\['log'\\]"):
        aggregate_payload({"a": rs}, normalizations=["log"])


def test_the_selection_is_validated(sets):
    view = AggregateView(sets, normalizations=("share", "raw"), query="last_token", layer=1)
    assert (view.query, view.layer, view.normalize, view.band) == (
        "last_token",
        1,
        "share",
        "interval",
    )
    view.normalize, view.band, view.hidden = "raw", "sd", ["question"]
    for trait, value, message in [
        ("layer", 6, r"layer=6 is out of range"),
        ("query", "nope", "Unknown query 'nope'"),
        ("normalize", "density", r"normalize='density' was not computed for this view"),
        ("band", "wide", "band"),
        ("hidden", ["x"], r"Unknown region\(s\) \['x'\] in hidden"),
    ]:
        with pytest.raises((TealeavesError, traitlets.TraitError), match=message):
            setattr(view, trait, value)
    assert (view.normalize, view.band, view.hidden) == ("raw", "sd", ["question"])
    assert list(view.runsets) == ["baseline", "terse"]
    assert tw.AggregateView is AggregateView


def test_display_and_export_of_a_runset(sets, monkeypatch):
    rs = sets["baseline"]
    assert set(rs._repr_mimebundle_()) == {"text/plain"}
    monkeypatch.setattr("tealeaves_widgets.core.seam.in_kernel", lambda: True)
    bundle = rs._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    html = page_html(rs)
    state = html.split('<script type="application/vnd.jupyter.widget-state+json">')[1]
    models = json.loads(state.split("</script>")[0])["state"].values()
    kinds = [m["state"]["payload"]["kind"] for m in models if "payload" in m["state"]]
    assert kinds == ["aggregate"]  # one view, not an Explorer per run
