"""The exported compare_variants notebook and the HTML reports of comparisons,
in headless Chromium with no network: they render, move with their sliders,
log no error, and a prompt full of markup stays text."""

from __future__ import annotations

import dataclasses

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.widgets.export import notebook_html
from tealeaves_widgets.widgets.report_page import report_page
from tests.browser.conftest import wait_until
from tests.helpers.compare_notebook import REPORT, executed_compare_variants
from tests.helpers.fake_runs import fake_run, regions_of, variant_words

pytestmark = pytest.mark.slow

XSS = " <img src=x onerror=window.__xss=1></script><script>window.__xss=2</script><!--"

# the pixels of every canvas on the page, as one number (changes when a drawing does)
CANVASES = """() => {
  let hash = 0;
  for (const canvas of document.querySelectorAll('canvas')) {
    if (!canvas.width || !canvas.height) continue;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 16) hash = (hash * 31 + data[i] + 7 * data[i + 1]) | 0;
  }
  return hash;
}"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    return executed_compare_variants(tmp_path_factory)


def wait_views(page, n_views: int, timeout: int = 30_000) -> None:
    """Until every widget view has drawn: one layer slider each, and charts."""
    page.wait_for_function(
        f"document.querySelectorAll('input[type=range]').length >= {n_views}"
        " && document.querySelectorAll('.tw-region-chart').length > 0",
        timeout=timeout,
    )


def move_sliders(page) -> None:
    """Each layer slider to its first layer: the drawing changes."""
    sliders = page.locator("input[type=range]")
    for i in range(sliders.count()):
        before = page.screenshot(full_page=True)
        sliders.nth(i).evaluate(
            "el => { el.value = el.min; el.dispatchEvent(new Event('input', {bubbles: true}));"
            " el.dispatchEvent(new Event('change', {bubbles: true})); }"
        )

        def redrawn(before: bytes = before) -> bool:
            return page.screenshot(full_page=True) != before

        wait_until(page, redrawn, f"slider {i} to redraw")


def test_the_exported_compare_notebook_works_offline(open_page, executed):
    nb, _ = executed
    page, log = open_page(notebook_html(nb, title="compare_variants"), name="compare.html")
    wait_views(page, 2)  # the diff view and the aggregate view
    assert log.requests == [], log.requests
    assert log.errors == [], log.errors
    outputs = page.locator(".jp-OutputArea-output").all_text_contents()
    assert sum("8 runs of 8 cases" in text for text in outputs) >= 1
    assert page.locator(".jp-RenderedMarkdown h2", has_text="Stability").count() == 1
    move_sliders(page)
    assert log.errors == []


def test_the_saved_html_report_works_offline(open_page, executed):
    _, workdir = executed
    page, log = open_page((workdir / REPORT).read_text(encoding="utf-8"), name=REPORT)
    wait_views(page, 1)
    page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length >= 3")
    assert log.requests == [], log.requests
    assert log.errors == [], log.errors
    assert page.locator("h2", has_text="Largest changes").count() == 1
    assert page.locator("table.tl-table").count() == 3
    move_sliders(page)
    assert log.errors == []


def test_markup_in_a_prompt_stays_text_in_a_report(open_page):
    words = variant_words(False)
    words[-1] = XSS
    spans = regions_of(words) | {XSS: (len(words) - 2, len(words))}
    base = fake_run(words, spans, seed=0)
    lens = dataclasses.replace(base.lens, tracked_tokens=(XSS, " Yes"))
    base = dataclasses.replace(base, lens=lens)
    other = dataclasses.replace(fake_run(words, spans, seed=1), lens=lens)
    cmp = tw.compare({"baseline": base, XSS: other})
    page, log = open_page(report_page(cmp), name="markup.html")
    wait_views(page, 1)
    page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length >= 3")
    assert page.evaluate("window.__xss") is None
    assert page.locator("img").count() == 0
    cells = page.locator("table.tl-table td").all_text_contents()
    assert XSS in cells  # the region name, shown as text
    legend = page.locator(".plotly-graph-div .legendtext").all_text_contents()
    assert any(XSS.strip() in text for text in legend)  # a plotly label, as text too
    assert log.requests == [] and log.errors == []
