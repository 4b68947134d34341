"""The head atlas view in headless Chromium, from exported pages opened
offline (no kernel, no request, no console error): switching the metric
recolours the grid and ranks its heads; a click on a cell selects that head
in the synced state, and the detail panel shows its pattern, profile and
scores (Python's numbers); hovering names the head and its score; with
run= the explorer's layer slider and head selector follow the click. In
JupyterLab's light and dark themes the text reads (WCAG 4.5:1).

Screenshots go to $TEALEAVES_SCREENSHOTS when it is set."""

from __future__ import annotations

import pytest

from tealeaves_widgets.core.head_atlas import METRIC_NAMES
from tealeaves_widgets.widgets import HeadAtlasView
from tealeaves_widgets.widgets.export import page_html
from tests.browser.test_causal_views_browser import CONTRAST, screenshot
from tests.helpers.fake_atlas import (
    DUPLICATE_HEAD,
    INDUCTION_HEAD,
    NAN_HEAD,
    OV_COPY_HEAD,
    PREV_HEAD,
    fake_atlas,
)
from tests.helpers.synthetic import synthetic_run
from tests.helpers.themes import themed

pytestmark = pytest.mark.slow

READY = "document.querySelector('.tw-head-atlas-view .tw-atlas-top-list li') !== null"
VIEW = "document.querySelector('.tw-head-atlas-view').tealeavesView"


@pytest.fixture(scope="module")
def atlas():
    return fake_atlas(n_layers=12, n_heads=9, n=12)


def synced(page, key: str):
    """The value of a synced trait as the page's widget model holds it."""
    return page.evaluate(f"{VIEW}.model.get('{key}')")


def click_cell(page, layer: int, head: int) -> None:
    at = page.evaluate(f"{VIEW}.cellCentre({layer}, {head})")
    page.mouse.click(at["x"], at["y"])


def test_metric_switch_click_and_detail_panel(open_page, atlas, tmp_path):
    page, log = open_page(page_html(HeadAtlasView(atlas)), name="atlas.html")
    page.wait_for_function(READY, timeout=20_000)
    assert (synced(page, "metric"), synced(page, "layer"), synced(page, "head")) == (
        "previous_token",
        *PREV_HEAD,
    )
    assert "L1H2" in page.locator(".tw-atlas-detail-title").text_content()
    screenshot(page, "atlas-previous-token.png", tmp_path)
    # switch to induction: the description, the ranking and the colours follow
    page.locator("select.tw-metric-select").select_option("induction")
    assert synced(page, "metric") == "induction"
    assert (
        "induction: on repeated random sequences"
        in page.locator(".tw-atlas-description").text_content()
    )
    first = page.locator(".tw-atlas-top-list li").first
    layer, head = INDUCTION_HEAD
    assert (first.get_attribute("data-layer"), first.get_attribute("data-head")) == (
        str(layer),
        str(head),
    )
    assert float(first.get_attribute("data-value")) == pytest.approx(
        atlas.scores["induction"][layer, head], rel=1e-6
    )
    cell = page.evaluate(f"{VIEW}.cell({layer}, {head})")
    assert cell["index"] == 255 and cell["colour"] not in ("", "rgb(255, 255, 255)")
    # hover names the head, the metric and its value
    at = page.evaluate(f"{VIEW}.cellCentre({layer}, {head})")
    page.mouse.move(at["x"], at["y"])
    tip = page.locator(".tw-tip").text_content()
    assert f"L{layer}H{head}" in tip and "induction" in tip
    assert f"{atlas.scores['induction'][layer, head]:.3f}" in tip
    # a click selects the head: synced state and the detail panel
    click_cell(page, layer, head)
    assert (synced(page, "layer"), synced(page, "head")) == INDUCTION_HEAD
    assert "L3H1 \u2014 induction" in page.locator(".tw-atlas-detail-title").text_content()
    pattern = page.locator("canvas.tw-atlas-pattern")
    assert (pattern.get_attribute("data-layer"), pattern.get_attribute("data-head")) == ("3", "1")
    off_sink = atlas.patterns[layer, head][:, 1:].max()
    assert float(pattern.get_attribute("data-high")) == pytest.approx(off_sink, rel=2e-3)
    # the pattern is painted: a pixel on the induction stripe is dark, one above the diagonal blank
    n = (atlas.patterns.shape[-1] - 1) // 2
    q = n + 3
    stripe, blank = page.evaluate(
        """([q, k, P]) => {
          const c = document.querySelector('canvas.tw-atlas-pattern');
          const d = c.getContext('2d').getImageData(0, 0, P, P).data;
          return [Array.from(d.slice((q * P + k) * 4, (q * P + k) * 4 + 4)),
                  Array.from(d.slice((0 * P + 5) * 4, (0 * P + 5) * 4 + 4))];
        }""",
        [q, q - n + 1, atlas.patterns.shape[-1]],
    )
    assert stripe[3] == 255 and sum(stripe[:3]) < 400 and blank[3] == 0
    bars = page.locator(".tw-atlas-profile rect")
    assert bars.count() == atlas.profiles.shape[-1]
    assert float(bars.nth(1).get_attribute("data-value")) == pytest.approx(
        atlas.profiles[layer, head, 1], rel=1e-6
    )
    rows = page.locator(".tw-atlas-scores tbody tr")
    assert rows.count() == len(METRIC_NAMES)
    for i, name in enumerate(METRIC_NAMES):
        value = float(rows.nth(i).locator("td[data-value]").get_attribute("data-value"))
        assert value == pytest.approx(atlas.scores[name][layer, head], rel=1e-6), name
    screenshot(page, "atlas-induction.png", tmp_path)
    # a signed metric, sorted, with a threshold: the largest |score| stays, the weak fade
    page.locator("select.tw-metric-select").select_option("ov_copy")
    page.locator("select.tw-sort-select").select_option("score")
    page.locator("input.tw-threshold").fill("1")
    assert synced(page, "sort") == "score" and synced(page, "threshold") == pytest.approx(1.0)
    strong = page.evaluate(f"{VIEW}.cell({OV_COPY_HEAD[0]}, {OV_COPY_HEAD[1]})")
    assert strong["slot"] == 0 and not strong["dimmed"] and strong["index"] == 0  # -3: bluest
    weak = page.evaluate(f"{VIEW}.cell(0, 0)")
    assert weak["dimmed"] == (abs(atlas.scores["ov_copy"][0, 0]) < 1)
    assert page.locator(".tw-legend-low").text_content() == "-3.000"
    screenshot(page, "atlas-ov-copy-sorted.png", tmp_path)
    # NaN: no score
    page.locator("select.tw-metric-select").select_option("s2_attention")
    assert page.evaluate(f"{VIEW}.cell({NAN_HEAD[0]}, {NAN_HEAD[1]})")["index"] == -1
    assert synced(page, "threshold") == 0
    # markup in a note is text
    page.locator("select.tw-metric-select").select_option("delimiter")
    assert "<b>markup</b>" in page.locator(".tw-atlas-description").text_content()
    assert page.locator(".tw-atlas-description b:text-is('markup')").count() == 0
    assert log.requests == [] and log.errors == []


def test_the_linked_explorer_follows_the_click(open_page, atlas, tmp_path):
    run = synthetic_run(n_tokens=48, n_layers=12, n_heads=9)
    view = HeadAtlasView(atlas, run=run, metric="induction")
    page, log = open_page(page_html(view), name="atlas-linked.html")
    page.wait_for_function(
        f"{READY} && document.querySelector('.tw-head-select') !== null", timeout=20_000
    )
    head_select = page.locator("select.tw-head-select")
    slider = page.locator("input.tw-layer")
    assert (slider.input_value(), head_select.input_value()) == ("3", "1")
    click_cell(page, *DUPLICATE_HEAD)
    page.wait_for_function(
        "document.querySelector('select.tw-head-select').value === '0' && "
        "document.querySelector('input.tw-layer').value === '2'",
        timeout=5_000,
    )
    screenshot(page, "atlas-linked.png", tmp_path)
    # the explorer back to the head average: the atlas has no head selected
    head_select.select_option("avg")
    page.wait_for_function(f"{VIEW}.model.get('head') === null", timeout=5_000)
    assert "No head selected" in page.locator(".tw-atlas-empty").text_content()
    # and its layer slider moves the atlas's layer
    slider.fill("7")
    page.wait_for_function(f"{VIEW}.model.get('layer') === 7", timeout=5_000)
    assert log.requests == [] and log.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_atlas_reads_in_both_themes(open_page, atlas, theme, tmp_path):
    page, log = open_page(
        themed(page_html(HeadAtlasView(atlas, metric="ov_copy")), theme), name=f"atlas-{theme}.html"
    )
    page.wait_for_function(READY, timeout=20_000)
    selector = (
        ".tw-diff-title, .tw-atlas-description, .tw-atlas-top-list li, .tw-atlas-scores td, "
        ".tw-atlas-axis, .tw-overview-note"
    )
    contrasts = page.evaluate(CONTRAST, selector)
    assert contrasts and min(contrasts) >= 4.5, contrasts
    screenshot(page, f"atlas-{theme}.png", tmp_path)
    assert log.requests == [] and log.errors == []
