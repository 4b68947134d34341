"""The exported causal notebook in headless Chromium with no network: all
five views render (two ablation views, the previous-token test, the
attribution and the head gates), log no error and request nothing; a
shaded token and a gate cell carry the numbers of the result the notebook
printed."""

from __future__ import annotations

import re

import pytest

from tealeaves_widgets.widgets.export import notebook_html
from tests.helpers.causal_notebook import executed_causal
from tests.helpers.notebooks import outputs_text

pytestmark = pytest.mark.slow

READY = (
    "document.querySelectorAll('.tw-ablation-view').length === 2"
    " && document.querySelectorAll('.tw-attribution-text .tw-tok').length > 100"
    " && document.querySelectorAll('td.tw-gate').length === 270"
    " && document.querySelectorAll('.tw-sweep-bar').length === 3"
)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    return executed_causal(tmp_path_factory)


def test_the_exported_causal_notebook_works_offline(open_page, executed):
    nb, _ = executed
    page, log = open_page(notebook_html(nb, title="causal"), name="causal.html")
    page.wait_for_function(READY, timeout=60_000)
    assert log.requests == [], log.requests
    assert log.errors == [], log.errors
    # the header is the log-prob the notebook printed
    printed = re.search(r"log p\('Paris and Oslo\.'\) = (-?[\d.]+)", outputs_text(nb))
    assert printed is not None
    header = page.locator(".tw-target").text_content()
    assert header == f'log p("Paris and Oslo.") = {printed.group(1)}'
    # the tokens read as the prompt; " Paris" is shaded
    tokens = page.locator(".tw-attribution-text .tw-tok")
    texts = tokens.all_text_contents()
    paris = texts.index(" Paris")
    assert float(tokens.nth(paris).get_attribute("data-value")) > 0
    assert tokens.nth(paris).evaluate("el => getComputedStyle(el).backgroundColor") not in (
        "rgba(0, 0, 0, 0)",
        "rgb(255, 255, 255)",
    )
    # the gates: a phase's values are in [0, 1], the labels F, I or blank
    page.locator(".tw-phase-select").select_option("removal")
    values = page.locator("td.tw-gate").evaluate_all("cells => cells.map(c => +c.dataset.value)")
    assert len(values) == 270 and all(0 <= v <= 1 for v in values)
    page.locator(".tw-phase-select").select_option("label")
    letters = set(page.locator("td.tw-gate").all_text_contents())
    assert letters <= {"F", "I", ""}
    # the previous-token bars: the largest at k = 1
    bars = page.locator(".tw-sweep-bar").evaluate_all("bars => bars.map(b => +b.dataset.value)")
    assert bars.index(max(bars)) == 0
    assert log.errors == []
