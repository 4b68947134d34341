"""The explorer (heatmap, cooking curves, logit lens) in headless Chromium from
an exported page: one layer cursor shared by the slider, the curves and the lens."""

from __future__ import annotations

import pytest

from tealeaves_widgets.widgets import CurvesView, LensView
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.synthetic import synthetic_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=200, n_layers=8, n_heads=3, n_queries=3, seed=4)


@pytest.fixture
def explorer(open_page, run):
    page, log = open_page(page_html(run))  # a Run exports as an Explorer
    page.wait_for_function(
        "document.querySelectorAll('.tw-lens tbody tr').length > 0"
        " && document.querySelector('.tw-backdrop').width > 1",
        timeout=20_000,
    )
    return page, log


def slider_value(page) -> str:
    return page.locator("input[type=range]").input_value()


def test_renders_all_panels_offline(explorer, run):
    page, log = explorer
    assert log.requests == [] and log.errors == []
    assert page.locator(".tw-curves polyline").count() == len(run.regions)
    assert page.locator(".tw-lens tbody tr").count() == run.n_layers
    current = page.locator(".tw-lens tr.tw-current td").first.text_content()
    assert current == slider_value(page) == str(run.n_layers // 2)


def test_clicking_a_curve_moves_every_cursor(explorer):
    page, _ = explorer
    chart = page.locator(".tw-chart")
    box = chart.bounding_box()
    page.mouse.click(box["x"] + 47, box["y"] + box["height"] / 2)  # the left edge: layer 0
    assert slider_value(page) == "0"
    assert page.locator(".tw-layer-label").text_content().startswith("layer 0 ")
    assert page.locator(".tw-lens tr.tw-current td").first.text_content() == "0"


def test_clicking_a_lens_row_and_the_slider_move_the_curve_cursor(explorer, run):
    page, _ = explorer
    cursor = page.locator(".tw-cursor")
    before = cursor.get_attribute("x1")
    page.locator(".tw-lens tbody tr").nth(2).locator("td").first.click()
    assert slider_value(page) == "2"
    after_click = cursor.get_attribute("x1")
    assert after_click != before
    page.locator("input[type=range]").evaluate(
        f"el => {{ el.value = '{run.n_layers - 1}';"
        " el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    assert float(cursor.get_attribute("x1")) > float(after_click)
    assert page.locator(".tw-lens tr.tw-current td").first.text_content() == str(run.n_layers - 1)


def test_normalisation_and_query_redraw_the_curves(explorer, run):
    page, _ = explorer
    line = page.locator(".tw-curves polyline").nth(1)
    raw = line.get_attribute("points")
    page.select_option(".tw-normalize-select", "share")
    shared = line.get_attribute("points")
    assert shared != raw
    page.select_option(".tw-query-select", "q0")
    assert line.get_attribute("points") != shared
    assert page.locator(".tw-readout").text_content().startswith("layer ")


def test_share_in_the_browser_is_run_curves_share(explorer, run):
    """The curves panel's "share" reads what Python's does: the first token left
    out (said by the exclude selector, its attention shown on its own), each
    token once, a parent labelled "(own)"."""
    page, log = explorer
    page.select_option(".tw-normalize-select", "share")
    chosen = page.locator(".tw-exclude-select").evaluate("s => s.selectedOptions[0].textContent")
    assert chosen == "auto (first token)"
    layer = int(slider_value(page))
    sink = run.excluded_mass(run.query_name(), "first")[layer]
    assert page.locator(".tw-exclusion-note").text_content() == f"sink {sink:.3f}"
    frame = run.curves(query=run.query_name(), normalize="share")
    expected = " · ".join(f"{name} {frame.loc[layer, name]:.3f}" for name in frame.columns)
    assert page.locator(".tw-readout").text_content() == f"layer {layer}: {expected}"
    assert "user (own)" in page.locator(".tw-curves .tw-legend").text_content()
    page.select_option(".tw-normalize-select", "raw")
    note = page.locator(".tw-exclusion-note").text_content()
    assert note == f"sink {sink:.3f}, not excluded"
    assert log.errors == []


def test_a_region_picked_in_the_curves_legend_is_highlighted_in_the_heatmap(explorer, run):
    page, log = explorer
    names = list(run.regions)
    question = names.index("question")
    page.locator(".tw-curves .tw-pick").nth(question).click()
    highlighted = page.eval_on_selector_all(
        ".tw-tok",
        "spans => spans.flatMap((s, i) => s.classList.contains('tw-in-region') ? [i] : [])",
    )
    assert highlighted == run.regions["question"].token_indices.tolist()
    assert page.locator(".tw-text.tw-region-mode").count() == 1
    outside = page.locator(".tw-tok").nth(int(run.regions["system"].token_indices[0]))
    assert float(outside.evaluate("s => getComputedStyle(s).opacity")) < 0.5
    line = page.locator(".tw-curves polyline").nth(question)
    assert line.get_attribute("stroke-width") == "3.4"
    selected = page.locator(".tw-heatmap > .tw-legend .tw-pick.tw-selected")
    assert selected.count() == 1 and selected.text_content().startswith("question")
    selected.click()  # clicking again clears the selection everywhere
    assert page.locator(".tw-tok.tw-in-region").count() == 0
    assert line.get_attribute("stroke-width") == "1.8"
    assert log.errors == []


def test_a_legend_checkbox_hides_a_region_curve(explorer, run):
    page, _ = explorer
    system = list(run.regions).index("system")
    line = page.locator(".tw-curves polyline").nth(system)
    assert line.get_attribute("points") != ""
    page.locator(".tw-curves .tw-visible").nth(system).uncheck()
    assert line.get_attribute("points") == ""
    assert "system" not in page.locator(".tw-readout").text_content()
    page.locator(".tw-curves .tw-visible").nth(system).check()
    assert line.get_attribute("points") != ""


def test_the_panels_alone_render_offline(open_page, run):
    page, log = open_page(page_html([CurvesView(run, query="q1"), LensView(run, layer=1)]))
    page.wait_for_function(
        "document.querySelectorAll('.tw-lens tbody tr').length > 0"
        " && document.querySelectorAll('.tw-curves polyline').length > 0",
        timeout=20_000,
    )
    assert log.requests == [] and log.errors == []
    assert page.locator(".tw-curves-view .tw-query-select").input_value() == "q1"
    assert page.locator(".tw-lens tr.tw-current td").first.text_content() == "1"
    page.locator(".tw-lens tbody tr").nth(3).locator("td").first.click()
    assert (
        page.locator(".tw-lens-view .tw-layer-label").text_content()
        == f"layer 3 / {run.n_layers - 1}"
    )
