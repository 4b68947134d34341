"""Explorer and export_html on the Python side. No torch."""

from __future__ import annotations

import json
import re

import pytest

from tealeaves_widgets.widgets import Explorer, TokenHeatmap, export_html
from tealeaves_widgets.widgets.export import ExportError, anywidget_amd, page_html
from tests.helpers.synthetic import synthetic_run


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=80, n_layers=3, n_heads=2, n_queries=2, seed=5)


def test_explorer_syncs_normalize_and_uses_its_own_bundle(run):
    explorer = Explorer(run, layer=1)
    assert explorer.normalize == "raw" and explorer.layer == 1
    explorer.normalize = "share"
    with pytest.raises(Exception, match="normalize"):
        explorer.normalize = "log"
    assert explorer._esm != TokenHeatmap(run)._esm


def test_export_writes_one_page_with_everything_inlined(run, tmp_path):
    path = export_html(run, tmp_path / "run.html", title="a <title>")
    html = path.read_text(encoding="utf-8")
    assert "<title>a &lt;title&gt;</title>" in html
    assert not re.search(r"<script[^>]+src=", html)
    assert "cdn." not in html.split("application/vnd.jupyter.widget-state+json")[1]
    assert 'define("anywidget"' in html
    state = html.split('<script type="application/vnd.jupyter.widget-state+json">')[1]
    state = json.loads(state.split("</script>")[0])
    models = state["state"].values()
    assert [m["model_name"] for m in models if m["model_module"] == "anywidget"] == ["AnyModel"]
    assert any(m["state"].get("normalize") == "raw" for m in models)  # an Explorer


def test_prompt_text_cannot_close_the_state_script(tmp_path):
    run = synthetic_run(n_tokens=60, n_layers=2, n_heads=1, n_queries=1, extra_text="</script><b>")
    html = page_html(TokenHeatmap(run))
    state = html.split('<script type="application/vnd.jupyter.widget-state+json">')[1]
    assert "</script><b>" not in state.split("</script>\n")[0]


def test_export_refuses_what_is_not_a_widget():
    with pytest.raises(ExportError, match="expects a widget, a Run"):
        page_html("hello")


def test_anywidget_front_end_becomes_a_named_module():
    source = anywidget_amd()
    assert source.count('define("anywidget", ["@jupyter-widgets/base"],') == 1


def test_the_package_exposes_the_widgets_lazily():
    import tealeaves_widgets as tw
    from tealeaves_widgets import widgets

    assert tw.export_html is widgets.export_html
    assert tw.Explorer is widgets.Explorer and tw.TokenHeatmap is widgets.TokenHeatmap
    assert tw.CurvesView is widgets.CurvesView and tw.LensView is widgets.LensView
    assert {"CurvesView", "Explorer", "LensView", "TokenHeatmap", "export_html"} <= set(tw.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tw.nope  # noqa: B018
