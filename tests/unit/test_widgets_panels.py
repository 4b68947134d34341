"""The region selection, hidden curves and the panels alone, on the Python
side; the browser side is in tests/browser/. No torch."""

from __future__ import annotations

import pytest

from tealeaves_widgets.errors import ArgumentError, SelectionError, TealeavesError
from tealeaves_widgets.widgets import CurvesView, Explorer, LensView, TokenHeatmap
from tests.helpers.golden import BASE_TOKENS, golden_run
from tests.helpers.synthetic import synthetic_run


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=80, n_layers=3, n_heads=2, n_queries=2, seed=7)


@pytest.mark.parametrize("view", [TokenHeatmap, Explorer, CurvesView, LensView])
def test_every_view_shares_the_selection_traits(run, view):
    widget = view(run, query="q0", layer=2, region="question")
    assert (widget.query, widget.layer, widget.region) == ("q0", 2, "question")
    widget.region = None
    with pytest.raises(TealeavesError, match=r"Unknown region 'nope'; this run has regions \["):
        widget.region = "nope"
    for name in ("layer", "query", "head", "region"):
        assert view.class_traits()[name].metadata.get("echo_update") is False


@pytest.mark.parametrize("view", [Explorer, CurvesView])
def test_hidden_curves_are_validated_region_names(run, view):
    widget = view(run, hidden=["template"], normalize="share")
    assert widget.hidden == ["template"] and widget.normalize == "share"
    with pytest.raises(TealeavesError, match=r"Unknown region\(s\) \['x'\] in hidden"):
        widget.hidden = ["system", "x"]
    assert widget.hidden == ["template"]


def test_each_panel_has_its_own_bundle(run):
    bundles = {view(run)._esm for view in (TokenHeatmap, Explorer, CurvesView, LensView)}
    assert len(bundles) == 4
    assert not any("the JavaScript bundle" in source for source in bundles)


def test_a_view_refuses_what_is_not_a_run():
    with pytest.raises(TealeavesError, match="CurvesView expects a tealeaves_widgets.Run"):
        CurvesView({"attention": []})


@pytest.mark.parametrize("view", [Explorer, CurvesView])
def test_exclude_is_checked_as_run_curves_checks_it(run, view):
    assert view(run).exclude == "auto"
    assert view.class_traits()["exclude"].metadata == {"sync": True, "echo_update": False}
    widget = view(run, exclude=("first", "system"))
    assert widget.exclude == ["first", "system"]  # a list, as the browser sends it back
    for value in (None, "first", "template", ["question"], "auto"):
        widget.exclude = value
        assert widget.exclude == value
    with pytest.raises(SelectionError, match=r"names region\(s\) \['sink'\] that this view does"):
        widget.exclude = "sink"
    with pytest.raises(ArgumentError, match="exclude must be"):
        widget.exclude = 3
    with pytest.raises(ArgumentError, match="names something twice"):
        widget.exclude = ("first", "first")
    assert widget.exclude == "auto"
    with pytest.raises(SelectionError, match=r"\['nope'\]"):
        view(run, exclude=["first", "nope"])


def test_a_new_run_without_the_excluded_region_falls_back_to_auto(run):
    widget = CurvesView(run, exclude=["first", "context"])
    widget.set_run(run)
    assert widget.exclude == ["first", "context"]
    widget.set_run(golden_run(BASE_TOKENS))  # no "context" region
    assert widget.exclude == "auto"
