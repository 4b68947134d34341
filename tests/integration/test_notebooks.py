"""The example notebooks run top to bottom on the embedded model, and export
to one standalone HTML file."""

from __future__ import annotations

import pytest

from tealeaves_widgets.widgets.export import WIDGET_STATE
from tests.helpers.notebooks import offline_export, outputs_text


@pytest.mark.slow
def test_quickstart_runs(executed_quickstart):
    nb, workdir = executed_quickstart
    text = outputs_text(nb)
    assert "Run(SmolLM2-135M-Instruct" in text
    assert "billing_rule" in text and "rank[Paris]" in text
    assert (workdir / "quickstart.tlrun").is_file()
    assert "True" in nb.cells[-1].outputs[-1]["data"]["text/plain"]  # reopened run, same curves


@pytest.mark.slow
def test_quickstart_shows_the_explorer_with_its_state_saved(executed_quickstart):
    nb, _ = executed_quickstart
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source == "run"]
    (output,) = cell.outputs
    model_id = output["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert output["data"]["text/plain"].startswith("Run(SmolLM2-135M-Instruct")
    state = nb.metadata.widgets[WIDGET_STATE]["state"][model_id]
    assert state["model_module"] == "anywidget"
    saved = state["state"]
    assert saved["normalize"] == "raw" and saved["layer"] == 15  # an Explorer, middle layer
    assert saved["payload"]["model"]["n_layers"] == 30
    assert {b["path"][0] for b in state["buffers"]} == {"payload"}  # arrays as buffers


@pytest.mark.slow
def test_quickstart_exports_to_one_offline_page_under_10_mb(executed_quickstart):
    nb, _ = executed_quickstart
    page = offline_export(nb, "quickstart")
    assert "cdn.jsdelivr" not in page.split(WIDGET_STATE)[-1]
    assert "MathJax.js" not in page and "mathjax/2" not in page  # the CDN script is left out
