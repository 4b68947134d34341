"""Executed notebooks exported with export_html, in headless Chromium with no
network: the quickstart (executed once per session, shared with
tests/integration/test_notebooks.py) and a prompt full of markup."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tealeaves_widgets.batch.notebooks import execute_notebook
from tealeaves_widgets.widgets.export import notebook_html

pytestmark = pytest.mark.slow

XSS = " <img src=x onerror=window.__xss=1></script><script>window.__xss=2</script><!--"

# the canvas pixels behind every token, as one string (changes when the colours do)
BACKDROP = """() => {
  const canvas = document.querySelector('.tw-backdrop');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let hash = 0;
  for (let i = 0; i < data.length; i += 4) hash = (hash * 31 + data[i] + 7 * data[i + 1]) | 0;
  return hash;
}"""


def wait_explorer(page, timeout=30_000):
    page.wait_for_function(
        "document.querySelectorAll('.tw-lens tbody tr').length > 0"
        " && document.querySelector('.tw-backdrop')?.width > 1",
        timeout=timeout,
    )


def test_the_exported_quickstart_works_offline(open_page, executed_quickstart):
    nb, _ = executed_quickstart
    page, log = open_page(notebook_html(nb, title="quickstart"), name="quickstart.html")
    wait_explorer(page)
    assert log.requests == [], log.requests
    assert log.errors == [], log.errors
    assert page.locator(".tw-lens tbody tr").count() == 30
    assert (
        page.locator(".tw-tok").count()
        == int(page.locator(".tw-tok").last.get_attribute("data-i")) + 1
    )
    # the slider changes the drawing, and every cursor follows it
    slider = page.locator("input[type=range]")
    assert slider.count() == 1
    before = page.evaluate(BACKDROP)
    slider.evaluate(
        "el => { el.value = '3'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    assert page.evaluate(BACKDROP) != before
    assert page.locator(".tw-layer-label").first.text_content() == "layer 3 / 29"
    assert page.locator(".tw-lens tr.tw-current td").first.text_content() == "3"
    # a region picked in the curves legend highlights its tokens
    names = page.eval_on_selector_all(".tw-curves .tw-pick", "b => b.map(x => x.textContent)")
    page.locator(".tw-curves .tw-pick").nth(names.index("facts")).click()
    highlighted = page.locator(".tw-tok.tw-in-region").all_text_contents()
    assert "".join(highlighted).startswith("## Facts")
    # the text outputs and tables are there too
    outputs = page.locator(".jp-OutputArea-output").all_text_contents()
    assert any(text.strip().startswith("Run(SmolLM2-135M-Instruct") for text in outputs)
    assert page.locator(".jp-OutputArea-output table.dataframe").count() == 2
    assert log.errors == []


def test_markup_in_a_prompt_stays_text_in_an_exported_notebook(open_page, tmp_path):
    code = (
        "from tests.helpers.synthetic import synthetic_run\n"
        "run = synthetic_run(n_tokens=60, n_layers=3, n_heads=2, n_queries=1,"
        f" extra_text={XSS!r})\n"
        "print(run.tokens[-8:])\n"
        "run"
    )
    path = tmp_path / "markup.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(code)]), path)
    nb = execute_notebook(path, tmp_path / "run")
    page, log = open_page(notebook_html(nb), name="markup.html")
    wait_explorer(page)
    assert page.evaluate("window.__xss") is None
    assert page.locator(".tw-root img, .tw-root script").count() == 0
    assert XSS in page.locator(".tw-tok").all_text_contents()
    printed = page.locator(".jp-OutputArea-output pre").first.text_content()
    assert "<img src=x onerror=window.__xss=1></script>" in printed  # shown as text
    assert log.requests == [] and log.errors == []
