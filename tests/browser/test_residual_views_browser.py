"""The residual decomposition and cross-layer cosine views in headless
Chromium, from exported pages opened offline: no console error, no request;
the cursor's table and the heatmap's cells hold Python's numbers; the layer
slider, a click on a chart or a cell, the query and colour selectors work
with no kernel; the token "<b>x</b>" is shown as text. In JupyterLab's light
and dark themes the text reads (WCAG 4.5:1).

Screenshots go to $TEALEAVES_SCREENSHOTS when it is set."""

from __future__ import annotations

import pytest

from tealeaves_widgets.widgets import CrossLayerView, ResidualView
from tealeaves_widgets.widgets.export import page_html
from tests.browser.test_causal_views_browser import CONTRAST, screenshot
from tests.helpers.synthetic import MARKUP_TOKEN, synthetic_cross_layer, synthetic_residual
from tests.helpers.themes import themed

pytestmark = pytest.mark.slow

RESIDUAL_READY = "document.querySelectorAll('.tw-residual-line').length === 7"
CROSS_READY = "document.querySelectorAll('td.tw-cross-cell').length > 1"
COMPONENTS = ("block input", "attention term", "MLP term", "block output")


def shown(page, component: str, kind: str) -> float:
    cell = page.locator(f"tr[data-component='{component}'] td.{kind}")
    return float(cell.get_attribute("data-value"))


def set_layer(page, layer: int) -> None:
    page.locator("input.tw-layer").fill(str(layer))


def test_the_residual_view_shows_python_s_numbers_at_the_cursor(open_page):
    result = synthetic_residual()
    page, log = open_page(page_html(ResidualView(result)), name="residual.html")
    page.wait_for_function(RESIDUAL_READY, timeout=20_000)
    final, last = result.query_index("final"), result.n_layers - 1
    for c, component in enumerate(COMPONENTS):
        assert shown(page, component, "tw-norm") == pytest.approx(result.norms[final, c, last])
    set_layer(page, 4)
    for c, component in enumerate(COMPONENTS[:3]):
        assert shown(page, component, "tw-cos") == pytest.approx(result.cosines[final, c, 4])
    # a click on the left end of a chart puts the cursor on layer 0
    chart = page.locator(".tw-norm-chart")
    box = chart.bounding_box()
    chart.click(position={"x": box["width"] * 46 / 360 + 1, "y": box["height"] / 2})
    assert page.locator("input.tw-layer").input_value() == "0"
    assert shown(page, "block output", "tw-norm") == pytest.approx(result.norms[final, 3, 0])
    # a log axis for the norms redraws their lines
    linear = page.locator(".tw-norm-chart polyline").first.get_attribute("points")
    page.locator(".tw-norm-scale-select").select_option("log")
    assert page.locator(".tw-norm-chart polyline").first.get_attribute("points") != linear
    # the other query
    page.locator(".tw-query-select").select_option("first")
    assert shown(page, "MLP term", "tw-norm") == pytest.approx(result.norms[0, 2, 0])
    # its token is text: the option and caption show "<b>x</b>", no bold x anywhere
    assert MARKUP_TOKEN in page.locator(".tw-query-select option").first.text_content()
    assert page.locator(".tw-root b:text-is('x')").count() == 0
    assert log.requests == [] and log.errors == []


def test_the_cross_layer_cells_are_python_s_matrix(open_page):
    result = synthetic_cross_layer()
    page, log = open_page(page_html(CrossLayerView(result)), name="cross.html")
    page.wait_for_function(CROSS_READY, timeout=20_000)
    n = result.n_layers
    cells = page.locator("td.tw-cross-cell")
    assert cells.count() == n * n
    cell = page.locator("td.tw-cross-cell[data-row='2'][data-col='7']")
    assert float(cell.get_attribute("data-value")) == pytest.approx(result.cosine[2, 7], rel=1e-6)
    range_colour = cell.evaluate("el => getComputedStyle(el).backgroundColor")
    assert range_colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    cell.hover()
    assert f"{result.cosine[2, 7]:.3f}" in page.locator(".tw-tip").text_content()
    cell.click()
    assert page.locator("input.tw-layer").input_value() == "2"
    framed = page.locator("td.tw-cross-cell.tw-cross-cursor")
    assert framed.count() == 2 * n - 1  # row 2 and column 2
    assert page.locator(".tw-profile-line").get_attribute("data-layer") == "2"
    page.locator(".tw-scale-select").select_option("signed")
    assert cell.evaluate("el => getComputedStyle(el).backgroundColor") != range_colour
    assert MARKUP_TOKEN in page.locator(".tw-diff-title").text_content()
    assert page.locator(".tw-root b:text-is('x')").count() == 0
    assert log.requests == [] and log.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_residual_views_read_in_both_themes(open_page, theme, tmp_path):
    views = {
        "residual": (
            ResidualView(synthetic_residual(), layer=5),
            RESIDUAL_READY,
            ".tw-residual-table td, .tw-diff-title, .tw-overview-note",
        ),
        "cross-layer": (
            CrossLayerView(synthetic_cross_layer(), layer=5),
            CROSS_READY,
            ".tw-cross-grid th, .tw-diff-title, .tw-overview-note",
        ),
    }
    for name, (view, ready, selector) in views.items():
        page, log = open_page(themed(page_html(view), theme), name=f"{name}-{theme}.html")
        page.wait_for_function(ready, timeout=20_000)
        contrasts = page.evaluate(CONTRAST, selector)
        assert contrasts and min(contrasts) >= 4.5, (name, contrasts)
        screenshot(page, f"{name}-{theme}.png", tmp_path)
        assert log.requests == [] and log.errors == [], name
