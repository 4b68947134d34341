"""Click a token to make it the query, in a real JupyterLab (started on
127.0.0.1 inside the test) with a model in the kernel: `model.explore` shows
the explorer, a click on a token that is not a query asks the kernel, which
reads it from the kept KV cache; the new query is selected in the page and in
Python, its rows in the page equal the kernel's, and the kernel's equal a fresh
`model.capture` with that query. In an exported page, with no kernel, the same
click says the position was not captured."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tealeaves_widgets.widgets import Explorer
from tealeaves_widgets.widgets.export import page_html
from tests.browser.conftest import wait_until
from tests.helpers.jupyterlab import REPO, cell_output, jupyterlab, open_notebook, run_cell
from tests.helpers.synthetic import synthetic_run

pytestmark = pytest.mark.slow

QUERY_REQUEST_TIMEOUT_S = 4  # js/src/query_click.ts QUERY_REQUEST_TIMEOUT_MS

EXPLORE = f"""\
import sys, json
sys.path.insert(0, {str(REPO)!r})
import numpy as np
import tealeaves_widgets as tw
from tealeaves_widgets.models.loading import load_embedded_tokenizer
from tests.helpers.tiny_models import make_tiny_model

model = tw.load_model(make_tiny_model("llama"), tokenizer=load_embedded_tokenizer())
case = tw.Case(system="You are terse.", user="I live in Paris. Where do I live?")
regions = {{"query_positions": ["final"], "tracked_tokens": [" Paris"]}}
view = model.explore(case, regions)
print(f"TOKENS {{view.run.n_tokens}} KEPT {{model.kept_cache_bytes}}")"""

CHECK = """\
name = view.query
q = view.run.query_index(name)
position = view.run.queries[name]
fresh = model.capture(case, dict(regions, query_positions=["final", position]))
f = fresh.query_index(name)
rows = float(np.abs(view.run.attention_heads[:, :, q] - fresh.attention_heads[:, :, f]).max())
lens = max(
    float(np.abs(getattr(view.run.lens, k)[:, q] - getattr(fresh.lens, k)[:, f]).max())
    for k in ("top_probs", "entropy", "kl_to_final", "tracked_probs")
)
same_ids = bool(np.array_equal(view.run.lens.top_ids[:, q], fresh.lens.top_ids[:, f]))
print("CHECK " + json.dumps({
    "query": name, "queries": list(view.run.queries), "rows": rows, "lens": lens,
    "same_ids": same_ids, "attention": view.run.attention[:, q].tolist(),
    "top_ids": view.run.lens.top_ids[:, q].tolist(),
}))"""

# the page's decoded payload: the new query's head-averaged rows and top ids
READ_PAGE = """(name) => {
  const p = document.querySelector('.tw-heatmap').tealeavesView.heatmap.p;
  const q = p.queryNames.indexOf(name);
  const T = p.nTokens, K = p.lens.k;
  const attention = [], topIds = [];
  for (let l = 0; l < p.nLayers; l++) {
    const row = l * p.nQueries + q;
    attention.push(Array.from(p.attention.subarray(row * T, (row + 1) * T)));
    topIds.push(Array.from(p.lens.topIds.subarray(row * K, (row + 1) * K)));
  }
  return { q, attention, topIds };
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-click")
    with jupyterlab(root, {"click.ipynb": [EXPLORE, CHECK]}) as server:
        yield server


def status(page) -> str:
    return page.locator(".tw-status").first.text_content() or ""


def test_a_clicked_token_becomes_the_query_with_a_fresh_captures_numbers(browser, lab):
    with open_notebook(browser, lab, "click.ipynb") as (page, errors):
        run_cell(page, 0)
        page.wait_for_function(
            "document.querySelector('.tw-heatmap')?.tealeavesView"
            " && document.querySelector('.tw-heatmap .tw-backdrop')?.width > 1",
            timeout=60_000,
        )
        found = re.search(r"TOKENS (\d+) KEPT (\d+)", cell_output(page, 0))
        assert found and int(found[2]) > 0, cell_output(page, 0)
        n_tokens = int(found[1])
        position = n_tokens // 2
        page.locator(f'.tw-heatmap .tw-tok[data-i="{position}"]').click()
        name = f"pos:{position}"
        added = wait_until(
            page,
            lambda: status(page).startswith(f'Query "{name}"') and status(page),
            "the kernel's new query",
            timeout_ms=30_000,
        )
        assert "(one decode step on the kept KV cache" in added
        assert page.locator(".tw-query-select").first.input_value() == name
        marked = page.locator(f'.tw-tok[data-i="{position}"]').first.get_attribute("class") or ""
        assert "tw-query" in marked.split()  # the query's token is outlined
        run_cell(page, 1)
        line = next(t for t in cell_output(page, 1).splitlines() if t.startswith("CHECK "))
        kernel = json.loads(line[len("CHECK ") :])
        # Python's view selected it (the page set it), and its numbers are a fresh capture's
        assert kernel["query"] == name and kernel["queries"] == ["final", name]
        assert kernel["rows"] <= 1e-5 and kernel["lens"] <= 1e-5 and kernel["same_ids"]
        # the page holds the kernel's rows (float16 on the wire) and lens
        shown = page.evaluate(READ_PAGE, name)
        assert shown["q"] == 1
        np.testing.assert_allclose(shown["attention"], kernel["attention"], rtol=1e-3, atol=1e-4)
        assert shown["topIds"] == kernel["top_ids"]
        assert errors == []


def test_in_an_exported_page_a_click_says_the_position_was_not_captured(open_page):
    run = synthetic_run(n_tokens=60, n_layers=3, n_heads=2, n_queries=2, seed=3)
    page, log = open_page(page_html(Explorer(run)))
    page.wait_for_function("document.querySelector('.tw-heatmap')?.tealeavesView", timeout=20_000)
    position = 20
    token = json.dumps(run.tokens[position])
    page.locator(f'.tw-tok[data-i="{position}"]').click()
    listed = ", ".join(f"{name} (@{pos})" for name, pos in run.queries.items())
    expected = f"Position {position} {token} was not captured; captured queries: {listed}."
    assert status(page) == f"{expected} Asking the kernel to compute it\u2026"
    said = wait_until(
        page,
        lambda: "No kernel answered" in status(page) and status(page),
        "the note that no kernel answered",
        timeout_ms=QUERY_REQUEST_TIMEOUT_S * 1000 + 2000,
    )
    assert said.startswith(expected)
    assert page.locator(".tw-query-select option").count() == 2
    assert log.errors == [] and log.requests == []
