"""notebooks/compare_variants.ipynb runs top to bottom on the embedded model,
shows the diff and aggregate views with their state saved, writes an offline
HTML report, and exports to one standalone page."""

from __future__ import annotations

import plotly.offline
import pytest

from tealeaves_widgets.widgets.export import WIDGET_STATE, network_references
from tests.helpers.compare_notebook import REPORT, executed_compare_variants
from tests.helpers.notebooks import offline_export, outputs_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    return executed_compare_variants(tmp_path_factory)


def cell_output(nb, source: str) -> dict:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == source]
    (output,) = cell.outputs
    return output


def test_compare_variants_runs_over_8_cases_per_variant(executed):
    nb, _ = executed
    text = outputs_text(nb)
    assert text.count("RunSet(SmolLM2-135M-Instruct: 8 runs of 8 cases") == 2
    report = cell_output(nb, "from IPython.display import Markdown\n\nMarkdown(cmp.report())")
    markdown = report["data"]["text/markdown"]
    assert markdown.startswith("# Prompt comparison")
    assert "Variant **reworded** (8 runs of 8 cases)" in markdown
    for section in ("## Summary", "## Largest changes", "## Cooking curves", "## Stability"):
        assert section in markdown
    assert "**Verdict (cases):**" in markdown  # paired intervals over the 8 questions
    bands = cell_output(nb, bands_source())
    assert "significant" in bands["data"]["text/html"]
    assert "sink_reassigned" in bands["data"]["text/html"]
    # the rewording's second sink, " the", is named and set aside (issue 11)
    assert "Excluded: first token" in markdown
    assert "**Set aside, mostly sink reassignment**" in markdown
    assert "most of it on one token, `' the'`" in markdown


def bands_source() -> str:
    return (
        'bands = cmp.with_options(layers="bands").deltas\n'
        'columns = ["region", "layer", "mass", "delta", "delta_low", "delta_high", "significant", '
        '"sink_reassigned"]\n'
        "bands.query(\"variant == 'reworded' and query == 'final'\")[columns].round(4)"
    )


def test_the_diff_and_aggregate_views_are_widgets_with_saved_state(executed):
    nb, _ = executed
    saved = nb.metadata.widgets[WIDGET_STATE]["state"]
    for source in (
        'cmp = tw.compare({"baseline": rs_a, "reworded": rs_b})\ncmp',
        'tw.AggregateView({"baseline": rs_a, "reworded": rs_b})',
    ):
        output = cell_output(nb, source)
        model_id = output["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        assert saved[model_id]["model_module"] == "anywidget"


def test_the_notebook_saves_an_offline_html_report(executed):
    nb, workdir = executed
    page = (workdir / REPORT).read_text(encoding="utf-8")
    assert f"{REPORT}:" in outputs_text(nb)
    assert network_references(page) == []
    assert page.count(plotly.offline.get_plotlyjs()[:300]) == 1  # plotly.js inlined once
    assert page.count("Plotly.newPlot(") == 3
    assert "Verdict (cases):" in page and "widget-state+json" in page


def test_compare_variants_exports_to_one_offline_page(executed):
    nb, _ = executed
    offline_export(nb, "compare_variants")
