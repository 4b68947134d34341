"""AttributionView, HeadGatesView and PrevTokenView on the Python side,
without a model: the results are built by hand (tests/helpers/synthetic.py).
Each payload holds the result's numbers as binary float32 arrays (the region
shares are `Attribution.region_table`'s, the gates `HeadGates.gates`, the
per-layer tables `PrevTokenTest.table(offset)` of every offset); the views
refuse other results, unknown options and bad selections; `display(result)`
and `export_html(result)` show them; importing them loads no torch."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets

import tealeaves_widgets as tw
from tealeaves_widgets.core import seam
from tealeaves_widgets.widgets import (
    AttributionView,
    HeadGatesView,
    PrevTokenView,
    attribution_payload,
    head_gates_payload,
    prev_token_payload,
)
from tealeaves_widgets.widgets.export import page_html
from tealeaves_widgets.widgets.schema import (
    AttributionPayload,
    HeadGatesPayload,
    PrevTokenPayload,
    check_typeddict,
)
from tealeaves_widgets.widgets.wire import decode_array
from tests.helpers.isolated import loaded_after_import
from tests.helpers.synthetic import (
    MARKUP_TOKEN,
    synthetic_attribution,
    synthetic_head_gates,
    synthetic_prev_token,
)


@pytest.fixture(scope="module")
def attribution():
    return synthetic_attribution()


@pytest.fixture(scope="module")
def gates():
    return synthetic_head_gates()


@pytest.fixture(scope="module")
def test_result():
    return synthetic_prev_token()


# -- attribution ---------------------------------------------------------------------


def test_the_attribution_payload_holds_its_numbers_as_binary_float32(attribution):
    payload = attribution_payload(attribution)
    assert check_typeddict(payload, AttributionPayload) == []
    for key in ("grad_norm", "grad_x_input"):
        assert payload[key]["dtype"] == "float32"
        assert isinstance(payload[key]["data"], memoryview)
        np.testing.assert_allclose(decode_array(payload[key]), getattr(attribution, key), rtol=1e-6)
    table = attribution.region_table()
    assert [r["name"] for r in payload["regions"]] == table["region"].tolist()
    np.testing.assert_allclose(decode_array(payload["region_share"]), table["share"], rtol=1e-6)
    np.testing.assert_allclose(
        decode_array(payload["region_grad_x_input"]), table["grad_x_input"], rtol=1e-5, atol=1e-6
    )
    assert payload["tokens"] == attribution.tokens and MARKUP_TOKEN in payload["tokens"]
    assert (payload["target"], payload["loss"], payload["log_prob"]) == (
        " ring",
        "full_target",
        -2.5,
    )
    assert payload["gated"] is None


def test_each_token_names_its_innermost_region(attribution):
    payload = attribution_payload(attribution)
    owner = decode_array(payload["token_region"])
    names = [r["name"] for r in payload["regions"]]
    table = attribution.token_table()
    assert [names[i] if i >= 0 else "" for i in owner] == table["region"].tolist()
    question = attribution.regions["question"].token_indices
    assert {names[i] for i in owner[question]} == {"question"}  # not its parent "user"
    colors = {r["name"]: r["color"] for r in payload["regions"]}
    assert colors["template"] == "#9ca3af" and len(set(colors.values())) == len(colors)


def test_gated_heads_are_named_in_the_payload():
    payload = attribution_payload(synthetic_attribution(head_mask=True))
    assert payload["gated"] == "2 of 12 heads gated off (10 kept)"


def test_the_attribution_view_checks_its_arguments(attribution):
    view = AttributionView(attribution, shading="grad_x_input", scale="log", mask_sink=True)
    assert (view.shading, view.scale, view.mask_sink, view.region) == (
        "grad_x_input",
        "log",
        True,
        None,
    )
    assert view.result is attribution
    with pytest.raises(tw.ArgumentTypeError, match="AttributionView expects a tw.Attribution"):
        AttributionView(synthetic_head_gates())
    with pytest.raises(tw.ArgumentTypeError, match=r"unknown keyword argument\(s\) \['shade'\]"):
        AttributionView(attribution, shade="grad_norm")
    with pytest.raises(tw.ArgumentTypeError, match=r"\['payload'\]"):
        AttributionView(attribution, payload={})
    view.region = "question"
    with pytest.raises(tw.SelectionError, match="Unknown region 'nope'; this attribution has"):
        view.region = "nope"
    assert view.region == "question"


# -- head gates ------------------------------------------------------------------------


def test_the_head_gates_payload_holds_every_phase_and_the_labels(gates):
    payload = head_gates_payload(gates)
    assert check_typeddict(payload, HeadGatesPayload) == []
    stacked = decode_array(payload["gates"])
    assert payload["gates"]["dtype"] == "float32" and stacked.shape == (3, 6, 4)
    for p, phase in enumerate(payload["phases"]):
        np.testing.assert_allclose(stacked[p], gates.gates[phase], rtol=1e-6)
    labels = np.asarray(payload["label_names"])[decode_array(payload["labels"])]
    np.testing.assert_array_equal(labels, gates.labels)
    assert labels[0, 0] == labels[3, 1] == "facilitating" and labels[2, 2] == "interfering"
    for p, phase in enumerate(payload["phases"]):
        np.testing.assert_allclose(decode_array(payload["losses"][p]), gates.losses[phase], 1e-6)
    assert (payload["base_loss"], payload["strength"], payload["threshold"]) == (3.1, 1.0, 0.5)


def test_the_head_gates_view_checks_its_arguments(gates):
    view = HeadGatesView(gates)
    assert view.phase == "label" and view.result is gates
    view.phase = "removal"
    with pytest.raises(traitlets.TraitError, match="'gates'"):
        view.phase = "gates"
    assert view.phase == "removal"
    with pytest.raises(tw.ArgumentTypeError, match="HeadGatesView expects a tw.HeadGates"):
        HeadGatesView(synthetic_attribution())
    with pytest.raises(tw.ArgumentTypeError, match=r"\['phases'\]"):
        HeadGatesView(gates, phases="plain")


# -- previous-token test -------------------------------------------------------------------


def test_the_prev_token_payload_holds_the_sweep_and_every_offsets_table(test_result):
    payload = prev_token_payload(test_result)
    assert check_typeddict(payload, PrevTokenPayload) == []
    sweep = test_result.sweep()
    np.testing.assert_allclose(decode_array(payload["redundancy"]), sweep["redundancy"], 1e-6)
    np.testing.assert_allclose(
        decode_array(payload["residual_effect_sd"]), sweep["residual_effect_sd"], 1e-6
    )
    assert payload["offsets"] == [1, 2, 3, 4] and payload["n_layers"] == 4
    inner = decode_array(payload["inner_mean"])
    cos_sd = decode_array(payload["cos_sd"])
    assert inner.shape == (4, 4, 4)  # (offset, pair, layer)
    for k, offset in enumerate(test_result.offsets):
        table = test_result.table(offset)
        for p, pair in enumerate(payload["pairs"]):
            rows = table[table["pair"] == pair]
            np.testing.assert_allclose(inner[k, p], rows["inner_mean"], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(cos_sd[k, p], rows["cos_sd"], rtol=1e-5, atol=1e-6)
    assert int(np.argmax(decode_array(payload["redundancy"]))) == 0  # peaks at k = 1


def test_the_prev_token_view_checks_its_offset(test_result):
    view = PrevTokenView(test_result, offset=3, measure="cos")
    assert (view.offset, view.measure) == (3, "cos")
    with pytest.raises(tw.SelectionError, match=r"offset=9 was not tested; the offsets are \[1, 2"):
        view.offset = 9
    assert view.offset == 3
    assert PrevTokenView(test_result).offset == 1
    with pytest.raises(tw.ArgumentTypeError, match="PrevTokenView expects a tw.PrevTokenTest"):
        PrevTokenView(synthetic_head_gates())


# -- display, export, imports ------------------------------------------------------------


def test_display_and_export_show_the_views(attribution, gates, test_result):
    for result, view, kind in (
        (attribution, AttributionView, "attribution"),
        (gates, HeadGatesView, "head_gates"),
        (test_result, PrevTokenView, "prev_token"),
    ):
        assert seam.implementation("view", type(result)) is view
        assert getattr(tw, view.__name__) is view
        assert result._repr_mimebundle_() == {"text/plain": repr(result)}  # outside a kernel
        page = page_html(result)
        assert f'"kind":"{kind}"' in page
        assert view.__name__ + "UI" in page or f"tw-{kind.replace('_', '-')}-view" in page
    page = page_html([attribution, gates])
    assert page.count('"kind":"attribution"') == 1 and page.count('"kind":"head_gates"') == 1


def test_importing_the_views_loads_no_torch():
    modules = [
        "tealeaves_widgets.widgets.attribution",
        "tealeaves_widgets.widgets.head_gates",
        "tealeaves_widgets.widgets.prev_token",
    ]
    assert loaded_after_import(modules, ["torch"]) == []
