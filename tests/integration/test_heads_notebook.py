"""notebooks/heads.ipynb runs top to bottom on the embedded model: it builds
the head atlas and names its top previous-token and induction heads (each
checked against the sink and, for induction, on the notebook's own prompt),
shows the atlas linked to an explorer, one layer's head grid, a neuron view
and a neuron comparison, and the layer statistics; each view keeps its
widget state, and the notebook exports to one offline page."""

from __future__ import annotations

import re

import pytest

from tealeaves_widgets.batch.notebooks import example_path, execute_notebook
from tealeaves_widgets.widgets.export import WIDGET_STATE, WIDGET_VIEW
from tests.helpers.notebooks import offline_export, outputs_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    return execute_notebook(example_path("heads"), tmp_path_factory.mktemp("heads"))


def shown_kinds(nb) -> list[str]:
    """The payload kind of every view the outputs show ("linked" for a
    tw.Linked, followed by the kinds it links; "explorer" for an explorer),
    in order; progress bars are left out."""
    saved = nb.metadata.widgets[WIDGET_STATE]["state"]
    kinds = []

    def kind_of(model_id: str) -> list[str]:
        state = saved[model_id]["state"]
        if "links" in state:
            children = [c.removeprefix("IPY_MODEL_") for c in state["children"]]
            return ["linked"] + [k for c in children for k in kind_of(c)]
        payload = state.get("payload")
        if not isinstance(payload, dict):
            return []
        return [payload.get("kind") or ("explorer" if "queries" in payload else "?")]

    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view:
                kinds.extend(kind_of(view["model_id"]))
    return kinds


def test_the_heads_notebook_names_the_top_heads(executed):
    text = outputs_text(executed)
    assert "HeadAtlas(SmolLM2-135M-Instruct: 30 layers x 9 heads" in text
    prev = re.search(
        r"top previous_token head: L(\d+)H(\d+), score (\d\.\d+) \(previous token on random "
        r"tokens (\d\.\d+); on natural text, weight on the first token (\d\.\d+)\)",
        text,
    )
    assert prev, text
    score, random, sink = (float(prev.group(k)) for k in (3, 4, 5))
    # a previous-token head on text and on the random control, not a sink artefact
    assert score > 0.5 and random > 0.5 and sink < score
    induction = re.search(r"top induction head: L(\d+)H(\d+), score (\d\.\d+)", text)
    assert induction and float(induction.group(3)) > 0.5
    # on the notebook's own prompt, that head leads its layer on the induction target
    check = re.search(
        r"(\d+) repeated tokens; weight on the token after the earlier copy: "
        r"L(\d+)H(\d+) (\d\.\d+), the layer's other heads at most (\d\.\d+)",
        text,
    )
    assert check and check.group(2, 3) == induction.group(1, 2)
    assert int(check.group(1)) >= 10 and float(check.group(4)) > float(check.group(5))
    assert re.search(r"HeadGrid\(SmolLM2-135M-Instruct: layer \d+, 9 heads, \d+ x \d+", text)
    assert "NeuronActivations(SmolLM2-135M-Instruct: layer 15 mlp_act, 30 neurons" in text
    assert (
        "NeuronComparison(SmolLM2-135M-Instruct: layer 15 mlp_act, 20 neurons x 4 prompts" in text
    )
    assert "LayerStats(SmolLM2-135M-Instruct: 30 layers x 9 heads" in text


def test_each_view_keeps_its_state(executed):
    assert shown_kinds(executed) == [
        "linked",
        "head_atlas",
        "explorer",
        "head_grid",
        "neurons",
        "neuron_compare",
    ]
    saved = executed.metadata.widgets[WIDGET_STATE]["state"]
    links = [s for s in saved.values() if s["model_name"] == "LinkModel"]
    assert sorted(link["state"]["source"][1] for link in links) == ["head", "layer"]
    atlas = [
        s["state"]
        for s in saved.values()
        if s["state"].get("payload", {})
        and isinstance(s["state"]["payload"], dict)
        and s["state"]["payload"].get("kind") == "head_atlas"
    ]
    assert len(atlas) == 1 and atlas[0]["metric"] == "induction"


def test_the_heads_notebook_exports_to_one_offline_page(executed):
    page = offline_export(executed, "heads")
    for kind in ("head_atlas", "head_grid", "neurons", "neuron_compare"):
        assert re.search(f'"kind": ?"{kind}"', page), kind
