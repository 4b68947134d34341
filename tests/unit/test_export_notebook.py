"""export_html on notebooks, without a kernel: what is refused and why, and
which URLs count as network requests."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tealeaves_widgets.widgets import export_html
from tealeaves_widgets.widgets.export import (
    ExportError,
    ExportWarning,
    network_references,
    notebook_html,
)


def test_a_widget_without_saved_state_is_refused_with_the_fix():
    view = {"version_major": 2, "version_minor": 0, "model_id": "abc"}
    cell = new_code_cell(
        "run",
        outputs=[
            new_output(
                "display_data",
                data={"text/plain": "Run(...)", "application/vnd.jupyter.widget-view+json": view},
            )
        ],
    )
    with pytest.raises(ExportError, match=r"1 of the 1 widgets .* no saved state.*Save Widget"):
        notebook_html(new_notebook(cells=[cell]))


def test_a_path_must_be_a_notebook(tmp_path):
    with pytest.raises(ExportError, match=r"only to a notebook \(\.ipynb\), got 'run\.html'"):
        export_html("run.html", tmp_path / "out.html")
    with pytest.raises(ExportError, match="No notebook at"):
        export_html(tmp_path / "missing.ipynb", tmp_path / "out.html")


def test_a_notebook_without_widgets_exports_offline(tmp_path):
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Title\n\n$x^2$ stays as text"),
            new_code_cell(
                "1 + 1",
                outputs=[new_output("execute_result", data={"text/plain": "2"}, execution_count=1)],
            ),
        ]
    )
    path = tmp_path / "plain.ipynb"
    nbformat.write(nb, path)
    page = export_html(path, tmp_path / "plain.html").read_text(encoding="utf-8")
    assert network_references(page) == []
    assert "<title>plain</title>" in page and "MathJax" not in page


def test_nbconvert_templates_are_found_outside_the_jupyter_path(monkeypatch, tmp_path):
    # a virtual environment borrowing nbconvert from the system looks only in its own prefix
    monkeypatch.setattr("jupyter_core.paths.jupyter_path", lambda *parts: [str(tmp_path)])
    monkeypatch.setattr(
        "nbconvert.exporters.templateexporter.jupyter_path", lambda *parts: [str(tmp_path)]
    )
    page = notebook_html(new_notebook(cells=[new_markdown_cell("# Found")]), title="t")
    assert 'id="Found"' in page and ".jp-Notebook" in page  # lab template and its CSS


def test_a_markdown_image_from_the_web_is_warned_about():
    nb = new_notebook(cells=[new_markdown_cell("![logo](https://example.org/logo.png)")])
    with pytest.warns(ExportWarning, match=r"fetch 1 resource.*https://example.org/logo.png"):
        notebook_html(nb)


def test_an_output_the_page_cannot_draw_is_warned_about():
    figure = new_output("display_data", data={"application/vnd.plotly.v1+json": {"data": []}})
    nb = new_notebook(cells=[new_code_cell("run.curves_figure()", outputs=[figure])])
    with pytest.warns(ExportWarning, match=r"1 output\(s\) .* application/vnd.plotly.v1\+json"):
        notebook_html(nb)


def test_network_references_count_fetches_not_links_or_script_text():
    page = (
        '<a href="https://example.org">a link</a>'
        '<script>var u = "https://cdn.example/x.js"; // <img src="https://no"></script>'
        '<script type="application/json">{"t": "<img src=//evil/x>"}</script>'
        '<img src="https://example.org/a.png"><script src=//cdn.example/y.js></script>'
        '<style>@font-face { src: url("https://fonts.example/f.woff") }</style>'
    )
    assert network_references(page) == [
        "https://example.org/a.png",
        "//cdn.example/y.js",
        "https://fonts.example/f.woff",
    ]
