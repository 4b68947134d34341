"""The neuron views in headless Chromium, from exported pages opened offline:
no console error, no request; the canvas cells are the diverging colours of
Python's values (0 the background, +-vmax the ends, the unscored sink column
saturated); hovering a cell shows its value, clicking a row marks its neuron,
with no kernel; the token "<b>x</b>" and a prompt label with markup are shown
as text. In JupyterLab's light and dark themes the text reads (WCAG 4.5:1).

Screenshots go to $TEALEAVES_SCREENSHOTS when it is set."""

from __future__ import annotations

import numpy as np
import pytest

from tealeaves_widgets.core.neurons import NeuronActivations, NeuronComparison
from tealeaves_widgets.widgets import NeuronCompareView, NeuronView
from tealeaves_widgets.widgets.export import page_html
from tests.browser.test_causal_views_browser import CONTRAST, screenshot
from tests.helpers.synthetic import MARKUP_TOKEN
from tests.helpers.themes import themed

pytestmark = pytest.mark.slow

READY = "document.querySelectorAll('.tw-neuron-row').length > 1"
# the canvas pixel of cell (r, c) and the view's colour for it
PIXEL = """([r, c]) => {
  const canvas = document.querySelector('canvas.tw-neuron-canvas');
  const [red, green, blue] = canvas.getContext('2d').getImageData(c, r, 1, 1).data;
  const view = document.querySelector('.tw-neuron-view').tealeavesView;
  return [`rgb(${red}, ${green}, ${blue})`, view.colourAt(r, c)];
}"""

# the legend's colour at 50% (0) and the page's background
MIDDLE = """() => {
  const bar = document.querySelector('.tw-neuron-legend .tw-bar').style.background;
  const middle = bar.match(/(rgb\\([^)]*\\)) 50%/)[1];
  return [middle, getComputedStyle(document.body).backgroundColor];
}"""


def neurons_result() -> NeuronActivations:
    """40 tokens x 96 neurons of smooth waves, a sink of 300 at position 0,
    a markup token at position 5; the top 24 by sd."""
    positions = np.arange(40)
    phase = np.linspace(0, 3, 96)
    values = np.sin(positions[:, None] * 0.35 + phase[None, :] * 2.0) * np.linspace(0.2, 3, 96)
    values[0, :10] = 300.0
    tokens = ["<|im_start|>", "system", "\n", "Be", " brief", MARKUP_TOKEN]
    tokens += [f" w{i}" for i in range(6, 39)] + ["\n"]
    return NeuronActivations.select(
        values.astype(np.float32),
        7,
        "mlp_act",
        positions,
        tokens,
        24,
        model_info={"model_id": "synthetic"},
    )


def comparison_result() -> NeuronComparison:
    means = np.stack([np.sin(np.arange(64) * 0.3 + shift) * 2 for shift in (0.0, 1.0, 2.5)])
    return NeuronComparison.select(
        means,
        7,
        "mlp_act",
        ("baseline", MARKUP_TOKEN, "long prompt"),
        (40, 38, 55),
        12,
        model_info={"model_id": "synthetic"},
    )


def test_the_neuron_cells_are_python_s_values(open_page, tmp_path):
    result = neurons_result()
    page, log = open_page(page_html(NeuronView(result)), name="neurons.html")
    page.wait_for_function(READY, timeout=20_000)
    rows = page.locator(".tw-neuron-row")
    assert rows.count() == 24
    assert [int(rows.nth(i).get_attribute("data-neuron")) for i in range(24)] == list(
        result.neurons
    )
    # pixels: the canvas holds the view's colour for each cell; 0 is the background
    for r, c in [(0, 3), (5, 17), (23, 39), (0, 0)]:
        drawn, wanted = page.evaluate(PIXEL, [r, c])
        assert drawn == wanted, (r, c)
    v = result.values
    r, c = np.unravel_index(np.abs(v[:, 1:]).argmax(), v[:, 1:].shape)
    ends = page.evaluate(PIXEL, [int(r), int(c) + 1])[0]
    assert ends not in ("rgb(255, 255, 255)",)  # the largest scored |value| is a full colour
    # the sink column is saturated, not washing out the rest, and marked unscored
    assert "tw-unscored" in page.locator(".tw-neuron-col[data-col='0']").get_attribute("class")
    assert "Position 0" in page.locator(".tw-neuron-note").text_content()
    # hover a cell: its value in the tooltip
    canvas = page.locator("canvas.tw-neuron-canvas")
    box = canvas.bounding_box()
    width = box["width"] / 40
    canvas.hover(position={"x": 5 * width + width / 2, "y": 2 * 14 + 7})
    tip = page.locator(".tw-tip").text_content()
    assert f"neuron: {result.neurons[2]}" in tip and f'"{MARKUP_TOKEN}" @5' in tip
    assert f"{v[2, 5]:.3f}" in tip
    # click a row: its neuron is marked
    rows.nth(3).click()
    assert "tw-selected" in rows.nth(3).get_attribute("class")
    assert page.locator(".tw-neuron-mark").evaluate("el => el.style.display") == "block"
    # the token is text: the label reads "<b>x</b>", no bold x anywhere
    assert page.locator(".tw-neuron-col[data-col='5']").text_content() == MARKUP_TOKEN
    assert page.locator(".tw-root b:text-is('x')").count() == 0
    screenshot(page, "neurons-hover.png", tmp_path)
    assert log.requests == [] and log.errors == []


def test_the_comparison_shows_the_prompts(open_page, tmp_path):
    result = comparison_result()
    page, log = open_page(page_html(NeuronCompareView(result)), name="compare.html")
    page.wait_for_function(READY, timeout=20_000)
    labels = page.locator(".tw-neuron-col")
    assert [labels.nth(i).text_content() for i in range(3)] == list(result.labels)
    drawn, wanted = page.evaluate(PIXEL, [4, 1])
    assert drawn == wanted
    canvas = page.locator("canvas.tw-neuron-canvas")
    box = canvas.bounding_box()
    canvas.hover(position={"x": box["width"] * 5 / 6, "y": 14 * 4 + 7})
    tip = page.locator(".tw-tip").text_content()
    assert "prompt: long prompt" in tip and f"{result.means[4, 2]:.3f}" in tip
    assert page.locator(".tw-root b:text-is('x')").count() == 0
    screenshot(page, "neuron-compare.png", tmp_path)
    assert log.requests == [] and log.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_neuron_views_read_in_both_themes(open_page, theme, tmp_path):
    views = {
        "neurons": NeuronView(neurons_result()),
        "neuron-compare": NeuronCompareView(comparison_result()),
    }
    for name, view in views.items():
        page, log = open_page(themed(page_html(view), theme), name=f"{name}-{theme}.html")
        page.wait_for_function(READY, timeout=20_000)
        selector = ".tw-neuron-row, .tw-neuron-col:not(.tw-unscored), .tw-diff-title"
        contrasts = page.evaluate(CONTRAST, selector)
        assert contrasts and min(contrasts) >= 4.5, (name, contrasts)
        # 0 is the theme's background: the legend's middle stop is the page's colour
        middle, background = page.evaluate(MIDDLE)
        assert middle == background, (name, middle, background)
        screenshot(page, f"{name}-{theme}.png", tmp_path)
        assert log.requests == [] and log.errors == [], name
