"""The ablation view in headless Chromium, from exported pages opened offline:
no console error, no request; a cell shows the number `Ablation.changes`
computes; token text with markup is shown as text; a click on a header sorts
the rows as pandas sorts the table; a click on a row opens the explorer of
that condition's run with no kernel (or says the run is not in the page);
in JupyterLab's light and dark themes the change cells' text reads on
their colour. An executed notebook that displays an Ablation exports too.

Screenshots of both themes go to $TEALEAVES_SCREENSHOTS when it is set."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tealeaves_widgets.batch.notebooks import execute_notebook
from tealeaves_widgets.widgets import AblationOptions, AblationView
from tealeaves_widgets.widgets.export import notebook_html, page_html
from tests.helpers.synthetic import MARKUP_TOKEN, synthetic_ablation
from tests.helpers.themes import themed

pytestmark = pytest.mark.slow

READY = "document.querySelectorAll('.tw-ablation-table tbody tr').length > 1"
EXPLORER_READY = (
    "document.querySelector('.tw-ablation-explorer .tw-backdrop')?.width > 1"
    " && document.querySelectorAll('.tw-ablation-explorer .tw-lens tbody tr').length > 0"
)

# WCAG contrast of each change cell's text on its own background.
CELL_CONTRAST = """() => {
  const parse = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  return Array.from(document.querySelectorAll('td.tw-change')).map((td) => {
    const style = getComputedStyle(td);
    const pair = [lum(parse(style.color)), lum(parse(style.backgroundColor))];
    const [x, y] = pair.sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  });
}"""


@pytest.fixture(scope="module")
def ablation():
    return synthetic_ablation()


def open_view(open_page, html: str, name: str = "ablation.html"):
    page, log = open_page(html, name=name)
    page.wait_for_function(READY, timeout=20_000)
    return page, log


def order(page) -> list[str]:
    return page.locator(".tw-ablation-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.condition)"
    )


def test_the_cells_are_the_ablations_numbers_and_text_stays_text(open_page, ablation):
    page, log = open_view(open_page, page_html(AblationView(ablation, changes=5)))
    assert log.requests == [] and log.errors == []
    assert order(page) == ["(baseline)", *ablation.names]
    for name in ("head L1H0", "no question"):
        changes = ablation.changes(name)
        row = page.locator(f".tw-ablation-table tr[data-condition='{name}']")
        rose = row.locator("td.tw-rose")
        fell = row.locator("td.tw-fell")
        assert rose.count() == fell.count() == 5
        for j in range(5):
            assert float(rose.nth(j).get_attribute("data-value")) == pytest.approx(
                changes["rose_delta"][j], rel=1e-6
            )
            assert float(fell.nth(j).get_attribute("data-value")) == pytest.approx(
                changes["fell_delta"][j], rel=1e-6
            )
            text = rose.nth(j).locator(".tw-change-token").text_content()
            assert text == json.dumps(changes["rose"][j], ensure_ascii=False)
        shown = rose.first.locator(".tw-change-value").text_content()
        assert shown == f"{changes['rose_delta'][0]:+.3f}".replace("-", "\u2212")
    table = ablation.table().set_index("condition")
    kl = page.locator("tr[data-condition='no question'] td.tw-kl").get_attribute("data-value")
    assert float(kl) == pytest.approx(table.loc["no question", "kl"], rel=1e-6)
    # the token "<b>x</b>" (the first condition's largest rise) is text, not a bold x
    markup = page.locator("tr[data-condition='head L1H0'] td.tw-rose").first
    assert markup.locator(".tw-change-token").text_content() == f'"{MARKUP_TOKEN}"'
    assert page.locator(".tw-root b:text-is('x')").count() == 0
    assert page.locator(".tw-ablation-table b, .tw-ablation-table img").count() == 0
    # the knockout panel: one row per knocked-out region, the effect beside the mass
    knockouts = page.locator(".tw-knockout-table tbody tr")
    assert knockouts.count() == 2
    effect = knockouts.nth(1).locator(".tw-ko-effect-value").get_attribute("data-value")
    assert float(effect) == pytest.approx(table.loc["no question", "delta_logprob"], rel=1e-6)
    assert knockouts.nth(1).locator(".tw-ko-top").text_content().startswith("\u2192")
    assert log.errors == []


def test_a_click_on_a_header_sorts_the_rows_as_pandas_does(open_page, ablation):
    page, log = open_view(open_page, page_html(AblationView(ablation)))
    table = ablation.table()
    page.locator("th[data-sort='kl']").click()
    expected = table.sort_values("kl", ascending=False, kind="stable")["condition"].tolist()
    assert order(page) == ["(baseline)", *expected]
    assert page.locator("th[data-sort='kl']").get_attribute("aria-sort") == "descending"
    page.locator("th[data-sort='kl']").click()
    assert order(page) == ["(baseline)", *expected[::-1]]
    page.locator("th[data-sort='delta_logprob']").click()  # the deepest drop first
    expected = table.sort_values("delta_logprob", kind="stable")["condition"].tolist()
    assert order(page) == ["(baseline)", *expected]
    assert order(page)[1] == "no question"
    page.locator("th[data-sort='']").click()
    assert order(page) == ["(baseline)", *ablation.names]
    assert log.errors == []


def test_a_row_opens_its_runs_explorer_with_no_kernel(open_page, ablation):
    page, log = open_view(open_page, page_html(AblationView(ablation, layer=2)))
    assert page.locator(".tw-ablation-explorer").is_hidden()
    page.locator(".tw-ablation-table tr[data-condition='no question']").click()
    page.wait_for_function(EXPLORER_READY, timeout=20_000)
    title = page.locator(".tw-explorer-title").text_content()
    assert 'the run under "no question"' in title
    explorer = page.locator(".tw-ablation-explorer")
    assert explorer.locator(".tw-lens tbody tr").count() == ablation.base.n_layers
    assert explorer.locator(".tw-layer-label").first.text_content() == "layer 2 / 3"
    # the explorer draws the knocked-out run: its curves give the question nothing
    readout = explorer.locator(".tw-curves .tw-readout").text_content()
    assert "question 0.000" in readout
    # the explorer's slider moves the view's layer, and the knockout panel follows
    explorer.locator("input[type=range]").evaluate(
        "el => { el.value = '1'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    assert "layer 1" in page.locator(".tw-knockout-table th").nth(1).text_content()
    page.locator(".tw-close").click()
    assert page.locator(".tw-ablation-explorer").is_hidden()
    assert log.requests == [] and log.errors == []


def test_a_run_left_out_of_the_page_says_so(open_page, ablation):
    view = AblationView(ablation, options=AblationOptions(max_bytes=1))
    page, log = open_view(open_page, page_html(view))
    page.locator(".tw-ablation-table tr[data-condition='no context']").click()
    note = page.locator(".tw-not-embedded").text_content()
    assert 'The run of "no context" is not in this page' in note
    assert "max_bytes=1" in note
    page.locator(".tw-ablation-table tr[data-condition='(baseline)']").click()
    page.wait_for_function(EXPLORER_READY, timeout=20_000)  # the baseline is always there
    assert log.requests == [] and log.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_change_cells_read_in_both_themes(open_page, ablation, theme, tmp_path):
    html = themed(page_html(AblationView(ablation, layer=2)), theme)
    page, log = open_view(open_page, html, name=f"ablation-{theme}.html")
    page.locator(".tw-ablation-table tr[data-condition='no context']").click()
    page.wait_for_function(EXPLORER_READY, timeout=20_000)
    contrasts = page.evaluate(CELL_CONTRAST)
    assert len(contrasts) == 5 * 2 * 3 and min(contrasts) >= 4.5, min(contrasts)  # 3 per side
    background = page.locator(".tw-ablation-view").evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert (background == "rgb(17, 17, 17)") == (theme == "dark"), background
    target = Path(os.environ.get("TEALEAVES_SCREENSHOTS", tmp_path))
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"ablation-{theme}.png"), full_page=True)
    assert log.requests == [] and log.errors == []


def test_an_executed_notebook_that_displays_an_ablation_exports_offline(open_page, tmp_path):
    code = (
        "from tests.helpers.synthetic import synthetic_ablation\n"
        "ablation = synthetic_ablation()\n"
        "ablation"
    )
    path = tmp_path / "ablation.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(code)]), path)
    nb = execute_notebook(path, tmp_path / "run")
    page, log = open_page(notebook_html(nb), name="ablation-notebook.html")
    page.wait_for_function(READY, timeout=30_000)
    rows = page.locator(".tw-ablation-table tbody tr").count()
    assert rows == 1 + 5
    kl = np.asarray(synthetic_ablation().table()["kl"])
    page.locator("th[data-sort='kl']").click()
    first = page.locator(".tw-ablation-table tbody tr").nth(1).locator("td.tw-kl")
    assert float(first.get_attribute("data-value")) == pytest.approx(kl.max(), rel=1e-6)
    assert log.requests == [] and log.errors == []
