"""Charts fill their panel in headless Chromium: the cooking curves and the band
charts of the variant diff and the aggregate view take their box's width, follow
it when the window is resized (drawn at that size, not stretched), and one
curve among many stands out under the pointer."""

from __future__ import annotations

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.widgets import AggregateView, Explorer, VariantDiff
from tealeaves_widgets.widgets.export import page_html
from tests.browser.conftest import wait_until
from tests.helpers.fake_runs import fake_run, regions_of, variant_words
from tests.helpers.synthetic import synthetic_run

pytestmark = pytest.mark.slow

# Per chart: its width on the page, its box's content width, the viewBox's width
# and the x of the right end of its x axis (in chart units).
SIZES = """(selector) => Array.from(document.querySelectorAll(selector), (chart) => {
  const box = chart.parentElement;
  const style = getComputedStyle(box);
  const inner = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const axis = chart.querySelector('.tw-axis');
  return [chart.getBoundingClientRect().width, inner, chart.viewBox.baseVal.width,
          Number(axis.getAttribute('x2'))];
})"""


def sizes(page, selector: str) -> list[list[float]]:
    return page.evaluate(SIZES, selector)


def assert_fills(page, selector: str) -> list[float]:
    """Every chart as wide as its box, its viewBox as wide as it (no
    stretching), its axis reaching its right margin; returns the widths."""
    measured = sizes(page, selector)
    assert measured
    for width, inner, view_box, axis_end in measured:
        assert abs(width - inner) <= 1, measured
        assert abs(view_box - width) <= 1, measured
        assert width - 16 <= axis_end <= width, measured
    return [m[0] for m in measured]


def resize(page, width: int, selector: str, before: list[float]) -> list[float]:
    page.set_viewport_size({"width": width, "height": 900})
    wait_until(
        page,
        lambda: (
            (m := sizes(page, selector))
            and all(abs(a[0] - a[2]) <= 1 for a in m)
            and [round(a[0]) for a in m] != [round(b) for b in before]
        ),
        f"the charts ({selector}) to follow a {width} px window",
    )
    return assert_fills(page, selector)


@pytest.fixture(scope="module")
def run():
    # ten regions: the explorer's curves carry 9-10 lines on real prompts
    return synthetic_run(n_tokens=200, n_layers=12, n_heads=3, n_queries=2, seed=6)


def test_the_cooking_curves_take_the_panel_width_and_follow_the_window(open_page, run):
    page, log = open_page(page_html(Explorer(run)))
    page.wait_for_function("document.querySelector('.tw-curves .tw-axis')", timeout=20_000)
    wait_until(page, lambda: sizes(page, ".tw-curves .tw-chart")[0][2] != 460, "the first layout")
    (wide,) = assert_fills(page, ".tw-curves .tw-chart")
    assert wide > 480  # wider than the old fixed 460 px in a 1200 px window
    (narrow,) = resize(page, 560, ".tw-curves .tw-chart", [wide])
    assert narrow < 560 and narrow < wide
    # the cursor and a click still land on layers at the new size
    page.locator("input[type=range]").evaluate(
        "el => { el.value = '11'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    cursor = float(page.locator(".tw-curves .tw-cursor").get_attribute("x1"))
    assert narrow - 16 <= cursor <= narrow
    # (in a narrow window the overview wraps under the text: the chart may be below the fold)
    page.locator(".tw-curves .tw-chart").scroll_into_view_if_needed()
    box = page.locator(".tw-curves .tw-chart").bounding_box()
    page.mouse.click(box["x"] + 47, box["y"] + box["height"] / 2)
    assert page.locator("input[type=range]").input_value() == "0"
    assert log.errors == []


def test_the_curve_under_the_pointer_stands_out(open_page, run):
    page, _ = open_page(page_html(Explorer(run, layer=6)))
    page.wait_for_function("document.querySelector('.tw-curves .tw-axis')", timeout=20_000)
    lines = page.locator(".tw-curves polyline")
    names = list(run.regions)
    user = names.index("user")
    page.locator(".tw-curves .tw-curve-chip").nth(user).hover()
    widths = lines.evaluate_all("ls => ls.map(l => l.getAttribute('stroke-width'))")
    opacities = lines.evaluate_all("ls => ls.map(l => l.getAttribute('stroke-opacity'))")
    assert widths[user] == "3.4" and {w for i, w in enumerate(widths) if i != user} == {"1.8"}
    assert opacities[user] == "1" and {o for i, o in enumerate(opacities) if i != user} == {"0.2"}
    # on the chart: the curve nearest the pointer, read first
    point = lines.nth(user).get_attribute("points").split()[6]
    x, y = (float(v) for v in point.split(","))
    box = page.locator(".tw-curves .tw-chart").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    assert page.locator(".tw-readout").text_content().startswith("layer 6: user ")
    page.mouse.move(box["x"] + x, box["y"] + box["height"] + 40)  # off the chart
    widths = lines.evaluate_all("ls => ls.map(l => l.getAttribute('stroke-width'))")
    assert set(widths) == {"1.8"}


def test_band_charts_fill_their_grid_and_follow_the_window(open_page):
    words, terse = variant_words(False), variant_words(True)
    cmp = tw.compare(
        {
            "baseline": fake_run(words, regions_of(words), seed=1),
            "terse": fake_run(terse, regions_of(terse), seed=2),
        }
    )
    runs = tw.RunSet(tuple(fake_run(words, regions_of(words), seed=i) for i in range(3)))
    page, log = open_page(page_html([VariantDiff(cmp), AggregateView(runs)]))
    page.wait_for_function("document.querySelectorAll('.tw-band-chart .tw-axis').length > 2")
    diff, single = ".tw-diff-view .tw-band-chart", ".tw-aggregate-view .tw-band-chart"
    wait_until(page, lambda: sizes(page, single)[0][2] != 520, "the first layout")
    wide = assert_fills(page, diff)
    assert min(wide) >= 240 and len({round(w) for w in wide}) == 1  # equal grid columns
    (single_wide,) = assert_fills(page, single)
    assert single_wide > 1000  # one RunSet: one chart across the view
    narrow = resize(page, 600, diff, wide)
    assert max(narrow) <= 600
    (single_narrow,) = assert_fills(page, single)
    assert single_narrow < 600
    # the hovered series is named with its value
    chart = page.locator(single).first
    line = chart.locator(".tw-line").first
    x, y = (float(v) for v in line.get_attribute("points").split()[2].split(","))
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    label = chart.locator(".tw-hover-label").text_content()
    assert label.startswith(line.get_attribute("data-series")) and "@ layer 2" in label
    assert log.errors == []
