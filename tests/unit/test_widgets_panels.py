"""The region selection, hidden curves and the panels alone, on the Python
side; the browser side is in tests/browser/. No torch."""

from __future__ import annotations

import pytest

from tealeaves_widgets.errors import TealeavesError
from tealeaves_widgets.widgets import CurvesView, Explorer, LensView, TokenHeatmap
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
