"""notebooks/causal.ipynb runs top to bottom on the embedded model: it knocks
out each region, ablates the heads of the middle layer, runs the
previous-token test on one head and attributes the answer to the regions
(and fits head gates briefly); each result is shown in its view with the
widget state saved, and the notebook exports to one offline page, also
through `python -m tealeaves_widgets quickstart --notebook`."""

from __future__ import annotations

import re

import pytest

from tealeaves_widgets.batch import cli
from tealeaves_widgets.batch.notebooks import example_path
from tealeaves_widgets.widgets.export import WIDGET_STATE, WIDGET_VIEW, network_references
from tests.helpers.causal_notebook import executed_causal
from tests.helpers.notebooks import offline_export, outputs_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    return executed_causal(tmp_path_factory)


def output_of(nb, last_line: str) -> dict:
    """The output of the code cell whose last line is `last_line` (a result displayed)."""
    (cell,) = [
        c for c in nb.cells if c.cell_type == "code" and c.source.splitlines()[-1] == last_line
    ]
    shown = [out for out in cell.outputs if WIDGET_VIEW in out.get("data", {})]
    assert len(shown) == 1, (last_line, cell.outputs)
    return shown[0]


def test_the_causal_notebook_runs_every_experiment(executed):
    nb, _ = executed
    text = outputs_text(nb)
    assert "Ablation(SmolLM2-135M-Instruct: 5 condition(s) at query 'final'" in text
    for region in ("persona", "rules", "billing_rule", "facts", "instruction"):
        assert f"  {region}: predicts" in text
    assert "Ablation(SmolLM2-135M-Instruct: 10 condition(s)" in text  # 9 heads + the top 3
    assert "top 3 together: predicts" in text
    # the candidate head is a previous-token head: its redundancy peaks at k = 1
    assert "PrevTokenTest(SmolLM2-135M-Instruct: head L" in text and "peak at k=1)" in text
    assert "Attribution(SmolLM2-135M-Instruct: log p('Paris and Oslo.')" in text
    assert "HeadGates(SmolLM2-135M-Instruct:" in text


def test_each_result_shows_its_view_with_its_state_saved(executed):
    nb, _ = executed
    saved = nb.metadata.widgets[WIDGET_STATE]["state"]
    for last_line, kind in (
        ("knockout", "ablation"),
        ("heads", "ablation"),
        ("prev", "prev_token"),
        ("attribution", "attribution"),
        ("gates", "head_gates"),
    ):
        output = output_of(nb, last_line)
        model_id = output["data"][WIDGET_VIEW]["model_id"]
        state = saved[model_id]
        assert state["model_module"] == "anywidget"
        payload = state["state"]["ablation" if kind == "ablation" else "payload"]
        assert payload["kind"] == kind, last_line
        assert {b["path"][0] for b in state["buffers"]} >= {"payload"}  # arrays as buffers


def test_the_causal_notebook_exports_to_one_offline_page(executed):
    nb, _ = executed
    page = offline_export(nb, "causal")
    for kind in ("ablation", "attribution", "head_gates", "prev_token"):
        assert re.search(f'"kind": ?"{kind}"', page), kind


def test_the_quickstart_command_writes_any_notebook_as_one_page(executed, tmp_path, monkeypatch):
    nb, _ = executed
    ran = []

    def execute(path, workdir):  # the notebook above, already executed
        ran.append(path)
        return nb

    monkeypatch.setattr("tealeaves_widgets.batch.notebooks.execute_notebook", execute)
    notebook, out = example_path("causal"), tmp_path / "causal.html"
    assert cli.main(["quickstart", "--notebook", str(notebook), "--out", str(out)]) == 0
    assert ran == [notebook]
    page = out.read_text(encoding="utf-8")
    assert network_references(page) == [] and re.search('"kind": ?"attribution"', page)
