"""Every view takes the same kinds of arguments: unknown keywords are refused
(traitlets would only warn, and a misspelt option would be ignored), a query
is chosen by the one selection rule, and a bad selection is a
`tw.SelectionError` that leaves the view as it was."""

from __future__ import annotations

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.widgets import (
    AblationView,
    AggregateView,
    CurvesView,
    Explorer,
    LensView,
    TokenHeatmap,
    VariantDiff,
)
from tests.helpers import golden


@pytest.fixture(scope="module")
def results():
    base = golden.golden_run(golden.BASE_TOKENS)
    terse = golden.golden_run(golden.VARIANT_TOKENS, 0.5, "b")
    runs = tw.RunSet((base, golden.golden_run(golden.BASE_TOKENS, 1.0, "c")))
    return {
        Explorer: base,
        TokenHeatmap: base,
        CurvesView: base,
        LensView: base,
        VariantDiff: tw.compare({"baseline": base, "terse": terse}),
        AggregateView: runs,
        AblationView: golden.golden_ablation(),
    }


VIEWS = [Explorer, TokenHeatmap, CurvesView, LensView, VariantDiff, AggregateView, AblationView]


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_an_unknown_keyword_is_refused_with_the_options(results, view):
    with pytest.raises(tw.ArgumentTypeError) as error:
        view(results[view], qeury="answer")
    message = str(error.value)
    assert f"{view.__name__} got unknown keyword argument(s) ['qeury']" in message
    assert "'layer'" in message and "'query'" in message and "Check the spelling" in message
    assert "'payload'" not in message  # set from the result, not by the user
    with pytest.raises(tw.ArgumentTypeError, match=r"\['payload'\]"):
        view(results[view], payload={})


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_the_query_is_chosen_by_the_one_rule(results, view):
    result = results[view]
    assert view(result).query == "final"  # None: "final", which the result has
    assert view(result, query=0).query == "answer"  # an index into the query names
    assert view(result, query=-1).query == "final"
    with pytest.raises(tw.SelectionError, match="Unknown query 'nope'"):
        view(result, query="nope")


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_a_bad_selection_is_refused_and_the_view_keeps_its_own(results, view):
    widget = view(results[view], layer=1)
    with pytest.raises(
        tw.SelectionError, match=r"layer=7 is out of range; this view has layers 0\.\.2"
    ):
        widget.layer = 7
    assert widget.layer == 1
    with pytest.raises(LookupError):  # a SelectionError is a LookupError too
        widget.query = "nope"
    assert widget.query == "final"


def test_layout_options_of_the_widget_are_accepted(results):
    import ipywidgets

    view = Explorer(results[Explorer], layout=ipywidgets.Layout(width="600px"))
    assert view.layout.width == "600px"
