"""Residual analyses without a model: `ResidualDecomposition` and
`CrossLayerCosine` on hand-made vectors (norms, cosines and the identity's
error against numbers worked out by hand), a Run that knows no model
refuses clearly and checks its arguments first, and the views
(`ResidualView`, `CrossLayerView`): payloads holding the results' numbers as
binary float32, checked selections, `display` and `export_html`, no torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import traitlets

import tealeaves_widgets as tw
from tealeaves_widgets.core import seam
from tealeaves_widgets.core.residuals import CROSS_SOURCES, check_source
from tealeaves_widgets.widgets import (
    CrossLayerView,
    ResidualView,
    cross_layer_payload,
    residual_payload,
)
from tealeaves_widgets.widgets.export import page_html
from tealeaves_widgets.widgets.schema import CrossLayerPayload, ResidualPayload, check_typeddict
from tealeaves_widgets.widgets.wire import decode_array
from tests.helpers.golden import BASE_TOKENS, golden_cross_layer, golden_residual, golden_run
from tests.helpers.isolated import loaded_after_import


@pytest.fixture(scope="module")
def decomposition():
    return golden_residual()


@pytest.fixture(scope="module")
def cross():
    return golden_cross_layer()


# -- the results ---------------------------------------------------------------------


def test_norms_cosines_and_identity_on_known_vectors(decomposition):
    final = decomposition.query_index("final")
    assert final == 1 and decomposition.query_index(None) == 1  # "final" is the default
    # layer 1 of "final": input (3, 0) + attention (0, 4) + MLP (1, 0) = output (4, 4)
    np.testing.assert_allclose(decomposition.norms[final, :, 1], [3, 4, 1, math.sqrt(32)])
    half = math.sqrt(0.5)
    np.testing.assert_allclose(decomposition.cosines[final, :, 1], [half, half, half], rtol=1e-6)
    # layer 2: the MLP (-4, 0) points away from the output (0, 2)... at 90 degrees
    np.testing.assert_allclose(decomposition.cosines[final, :, 2], [half, -1.0, 0.0], atol=1e-7)
    # a zero MLP term has no direction: NaN, not 0
    assert decomposition.norms[final, 2, 0] == 0 and np.isnan(decomposition.cosines[final, 2, 0])
    assert decomposition.identity_error.shape == (2, 3)
    assert decomposition.identity_error.max() == 0


def test_the_identity_error_is_what_the_terms_miss():
    x = np.zeros((1, 2, 3))
    x[0, :, 0] = 1.0
    out = x + x + x
    out[0, 1, 2] += 0.25  # layer 1 gets something the three terms do not hold
    d = tw.ResidualDecomposition.from_vectors(
        {"q": 0}, ["a"], x, x, x, out, parallel=True, model_info={}
    )
    np.testing.assert_array_equal(d.identity_error, [[0.0, 0.25]])
    assert d.parallel and "parallel attention and MLP" in repr(d)
    with pytest.raises(tw.ArgumentError, match=r"share one \(query, layer, hidden\) shape"):
        tw.ResidualDecomposition.from_vectors(
            {"q": 0}, ["a"], x, x, x[:, :1], out, parallel=False, model_info={}
        )


def test_the_table_and_repr(decomposition):
    table = decomposition.table()
    assert len(table) == 2 * 3
    assert list(table.columns) == [
        "query",
        "position",
        "token",
        "layer",
        "input_norm",
        "attn_norm",
        "mlp_norm",
        "output_norm",
        "input_cos",
        "attn_cos",
        "mlp_cos",
        "identity_error",
    ]
    final = decomposition.table("final")
    assert final["query"].unique().tolist() == ["final"] and final["position"].iloc[0] == 5
    np.testing.assert_allclose(final["output_norm"], decomposition.norms[1, 3])
    assert decomposition.table(0)["token"].iloc[0] == "<b>x</b>"
    with pytest.raises(tw.SelectionError, match="Unknown query 'answer'; this result has"):
        decomposition.table("answer")
    text = repr(decomposition)
    assert text.startswith("ResidualDecomposition(golden: 3 layers, sequential blocks")
    assert "layer 1 at final: |in| 3, |attn| 4, |mlp| 1, |out| 5.66" in text


def test_the_cross_layer_matrix_on_known_states(cross):
    half = math.sqrt(0.5)
    np.testing.assert_allclose(
        cross.cosine, [[1, half, -1], [half, 1, -half], [-1, -half, 1]], atol=1e-7
    )
    assert cross.table().loc[0, 2] == pytest.approx(-1)
    assert "off-diagonal -1.000..0.707" in repr(cross)
    zero = tw.CrossLayerCosine.from_states(
        np.array([[1.0, 0.0], [0.0, 0.0]]),
        source="mlp_term",
        query="final",
        position=0,
        token="a",
        model_info={},
    )
    assert np.isnan(zero.cosine[0, 1]) and np.isnan(zero.cosine[1, 1])


def test_sources_are_checked():
    assert [check_source(s) for s in CROSS_SOURCES] == list(CROSS_SOURCES)
    with pytest.raises(tw.ArgumentError, match=r"Unknown source 'resid'; the sources are \["):
        check_source("resid")
    with pytest.raises(tw.ArgumentError, match="Unknown source"):
        tw.CrossLayerCosine.from_states(
            np.eye(2), source="x", query="q", position=0, token="", model_info={}
        )


def test_a_run_without_a_model_checks_its_arguments_then_asks_for_one():
    run = golden_run(BASE_TOKENS)  # built by hand: no model captured it
    with pytest.raises(tw.ArgumentError, match="Unknown source 'residual'"):
        run.cross_layer_cosine("residual")
    with pytest.raises(tw.SelectionError, match="Query index 7 is out of range"):
        run.cross_layer_cosine(query=7)
    with pytest.raises(tw.ArgumentError, match=r"needs the model.*Pass it: run.residual_decomp"):
        run.residual_decomposition()
    with pytest.raises(tw.ArgumentError, match=r"run.cross_layer_cosine\(model=tw.load_model"):
        run.cross_layer_cosine()


# -- the views --------------------------------------------------------------------------


def test_the_residual_payload_holds_the_numbers_as_binary_float32(decomposition):
    payload = residual_payload(decomposition)
    assert check_typeddict(payload, ResidualPayload) == []
    for key, values in (
        ("norms", decomposition.norms),
        ("cosines", decomposition.cosines),
        ("identity_error", decomposition.identity_error),
    ):
        assert payload[key]["dtype"] == "float32" and isinstance(payload[key]["data"], memoryview)
        np.testing.assert_array_equal(decode_array(payload[key]), values)
    assert payload["queries"] == [{"name": "first", "pos": 1}, {"name": "final", "pos": 5}]
    assert payload["query_tokens"] == ["<b>x</b>", "\n"] and payload["default_query"] == 1


def test_the_cross_layer_payload_holds_the_matrix(cross):
    payload = cross_layer_payload(cross)
    assert check_typeddict(payload, CrossLayerPayload) == []
    np.testing.assert_array_equal(decode_array(payload["cosine"]), cross.cosine)
    assert payload["query"] == {"name": "final", "pos": 5} and payload["source"] == "hidden_out"


def test_the_views_check_their_arguments(decomposition, cross):
    view = ResidualView(decomposition)
    assert (view.layer, view.query) == (2, "final")  # the last layer, the default query
    assert view.result is decomposition
    view.query = "first"
    view.layer = 0
    with pytest.raises(tw.SelectionError, match="Unknown query 'x'; this decomposition has"):
        view.query = "x"
    with pytest.raises(tw.SelectionError, match="layer=3 is out of range; the result has 3"):
        view.layer = 3
    assert (view.layer, view.query) == (0, "first")
    assert ResidualView(decomposition, query=0).query == "first"
    assert ResidualView(decomposition, norm_scale="log").norm_scale == "log"
    with pytest.raises(traitlets.TraitError, match="norm_scale"):
        ResidualView(decomposition, norm_scale="ln")
    with pytest.raises(tw.SelectionError, match="Unknown query 'x'"):
        ResidualView(decomposition, query="x")
    with pytest.raises(tw.ArgumentTypeError, match="ResidualView expects a tw.ResidualDecomp"):
        ResidualView(cross)
    with pytest.raises(tw.ArgumentTypeError, match=r"unknown keyword argument\(s\) \['scale'\]"):
        ResidualView(decomposition, scale="log")
    grid = CrossLayerView(cross, scale="signed")
    assert (grid.layer, grid.scale, grid.result) == (2, "signed", cross)
    with pytest.raises(tw.SelectionError, match="layer=-1 is out of range"):
        grid.layer = -1
    with pytest.raises(tw.ArgumentTypeError, match="CrossLayerView expects a tw.CrossLayerCos"):
        CrossLayerView(decomposition)


def test_display_and_export_show_the_views(decomposition, cross):
    for result, view, kind in (
        (decomposition, ResidualView, "residual"),
        (cross, CrossLayerView, "cross_layer"),
    ):
        assert seam.implementation("view", type(result)) is view
        assert getattr(tw, view.__name__) is view
        assert result._repr_mimebundle_() == {"text/plain": repr(result)}  # outside a kernel
        page = page_html(result)
        assert f'"kind":"{kind}"' in page


def test_importing_the_views_loads_no_torch():
    assert loaded_after_import(["tealeaves_widgets.widgets.residuals"], ["torch"]) == []
