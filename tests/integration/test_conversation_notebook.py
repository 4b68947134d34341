"""notebooks/conversation.ipynb runs top to bottom on the embedded model: a
six-turn conversation whose mood swings, snapshots against four emotional
references (raw and centred), a 30-token captured answer with its step view,
the residual decomposition and neuron trajectories; each view keeps its
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
    workdir = tmp_path_factory.mktemp("conversation")
    return execute_notebook(example_path("conversation"), workdir)


def shown_kinds(nb) -> list[str]:
    """The payload kind of every widget the notebook's outputs show, in order."""
    saved = nb.metadata.widgets[WIDGET_STATE]["state"]
    kinds = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view:
                state = saved[view["model_id"]]["state"]
                if "children" in state:  # tw.Linked: the kinds of the views it links
                    kinds.append("linked")
                    continue
                kind = "generation" if "generation" in state else state["payload"].get("kind")
                kinds.append(kind)
    return kinds


def test_the_conversation_notebook_runs_every_step(executed):
    text = outputs_text(executed)
    assert "8 messages (3 turns), 4 references" in text
    assert "Snapshots(SmolLM2-135M-Instruct: 8 messages read at gen_prompt" in text
    span = re.search(r"raw cosines span (\d\.\d+) to (\d\.\d+)", text)
    assert span and float(span.group(1)) > 0.8, text
    for mood in ("joy", "anger", "sadness", "fear"):
        assert re.search(rf"message \d \({mood}\): closest reference \w+", text)
    assert "Generation(SmolLM2-135M-Instruct: 30 steps greedy" in text
    assert re.search(r"step:0\s+161\s+\S+\s+29\s", text)  # the decomposition's table, layer 29
    assert re.search(r"layer 20, dimension \d+: from", text)


def test_each_view_keeps_its_state(executed):
    # raw and centred snapshots; the generation and the decomposition, linked
    assert shown_kinds(executed) == ["snapshots"] * 2 + ["linked"]
    saved = executed.metadata.widgets[WIDGET_STATE]["state"]
    links = [s for s in saved.values() if s["model_name"] == "LinkModel"]
    assert sorted(link["state"]["source"][1] for link in links) == ["layer", "query"]
    generation = [
        s["state"]
        for s in executed.metadata.widgets[WIDGET_STATE]["state"].values()
        if s["state"].get("generation")
    ]
    assert len(generation) == 1 and generation[0]["generation"]["n_steps"] == 30


def test_the_conversation_notebook_exports_to_one_offline_page(executed):
    page = offline_export(executed, "conversation")
    for kind in ("snapshots", "generation", "residual"):
        assert re.search(f'"kind": ?"{kind}"', page), kind
