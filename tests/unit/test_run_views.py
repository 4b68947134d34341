"""A Run's views: its display in a kernel, the panel widgets and the static
plotly figures. No torch."""

from __future__ import annotations

import numpy as np
import pytest

from tealeaves_widgets.core import seam
from tealeaves_widgets.errors import TealeavesError
from tealeaves_widgets.widgets import CurvesView, Explorer, LensView, TokenHeatmap
from tests.helpers.isolated import loaded_after_import
from tests.helpers.synthetic import synthetic_run

XSS = " <img src=x onerror=alert(1)></script>"


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=70, n_layers=4, n_heads=2, n_queries=2, seed=1, extra_text=XSS)


def test_importing_run_loads_neither_torch_nor_widgets_nor_plotly():
    heavy = ["torch", "anywidget", "ipywidgets", "plotly"]
    assert loaded_after_import(["tealeaves_widgets.core.run"], heavy) == []


def test_outside_a_kernel_a_run_displays_as_text(run):
    assert run._repr_mimebundle_() == {"text/plain": repr(run)}


def test_in_a_kernel_a_run_displays_as_an_explorer(run, monkeypatch):
    from ipywidgets.widgets.widget import _instances

    monkeypatch.setattr(seam, "in_kernel", lambda: True)
    bundle = run._repr_mimebundle_()
    if isinstance(bundle, tuple):  # (data, metadata)
        bundle = bundle[0]
    assert bundle["text/plain"] == repr(run)
    view = _instances[bundle["application/vnd.jupyter.widget-view+json"]["model_id"]]
    assert isinstance(view, Explorer) and view.run is run


def test_each_panel_alone(run):
    heatmap = TokenHeatmap(run, layer=1)
    assert isinstance(heatmap, TokenHeatmap) and not isinstance(heatmap, Explorer)
    assert isinstance(Explorer(run, normalize="share"), Explorer)
    curves = CurvesView(run, query="q0", hidden=["template"])
    assert isinstance(curves, CurvesView) and curves.hidden == ["template"]
    lens = LensView(run, layer=3)
    assert isinstance(lens, LensView) and lens.layer == 3


def test_the_old_view_methods_still_work_and_say_the_new_spelling(run):
    with pytest.warns(DeprecationWarning, match=r"use tw.TokenHeatmap\(run, \.\.\.\)"):
        heatmap = run.heatmap(layer=1)
    assert isinstance(heatmap, TokenHeatmap) and not isinstance(heatmap, Explorer)
    assert heatmap.layer == 1
    with pytest.warns(DeprecationWarning, match=r"use tw.Explorer"):
        assert isinstance(run.explorer(normalize="share"), Explorer)
    with pytest.warns(DeprecationWarning, match=r"use tw.CurvesView"):
        assert run.curves_view(query="q0", hidden=["template"]).hidden == ["template"]
    with pytest.warns(DeprecationWarning, match=r"use tw.LensView"):
        assert run.lens_view(layer=3).layer == 3


def test_curves_figure_draws_run_curves(run):
    figure = run.curves_figure(query="q0", normalize="share")
    frame = run.curves(query="q0", normalize="share")
    # in "share" a parent counts its own tokens only, and its line says so
    assert [trace.name for trace in figure.data][:3] == ["template", "system", "user (own)"]
    assert figure.data[3].name == "context (in user)"
    for trace, column in zip(figure.data, frame.columns, strict=True):
        np.testing.assert_allclose(trace.y, frame[column].to_numpy())
    assert figure.layout.yaxis.title.text.startswith("share")
    assert figure.data[1].line.color == "#4e79a7"  # the widgets' colour of "system"


def test_lens_figure_has_the_top_k_grid_and_the_tracked_ranks(run):
    figure = run.lens_figure(k=3)
    grid, *tracks = figure.data
    q = run.query_index("final")
    np.testing.assert_allclose(grid.z, run.lens.top_probs[:, q, :3])
    assert grid.text[0][0] == repr(run.lens.vocab[int(run.lens.top_ids[0, q, 0])])
    assert [t.name for t in tracks] == ["' promise'", repr(run.lens.tracked_tokens[1])]
    np.testing.assert_array_equal(tracks[0].x, run.lens.tracked_ranks[:, q, 0])
    assert figure.layout.xaxis2.type == "log"


def test_heatmap_figure_shades_tokens_by_one_attention_row(run):
    figure = run.heatmap_figure(layer=2, query="final", per_row=10)
    (heat,) = figure.data
    places = np.asarray(heat.z, dtype=float).ravel()
    row = run.attention[2, -1].astype(np.float64)
    weights = [float(c[2].split()[0]) for c in np.asarray(heat.customdata).reshape(-1, 3)[:70]]
    np.testing.assert_allclose(weights, row, rtol=1e-3)
    assert np.isnan(places[run.n_tokens :]).all()
    # the default scale, the widget's: log from this layer's median to its max, sink masked
    low, high = np.median(row[1:]), row[1:].max()
    expected = np.clip(np.log10(row / low) / np.log10(high / low), 1 / 255, 1)
    expected[0] = 0.0
    np.testing.assert_allclose(places[: run.n_tokens], expected)
    title = heat.colorbar.title.text
    assert "log, this layer's median to its max (" in title and "first token masked" in title
    assert heat.colorbar.ticktext[-1] == f"{high:.2g}"
    with pytest.raises(
        TealeavesError, match=r"layer=4 is out of range; this run has 4 layers, 0\.\.3"
    ):
        run.heatmap_figure(layer=4)
    one_head = run.heatmap_figure(layer=0, head=1).data[0]
    head_weights = [c[2] for c in np.asarray(one_head.customdata).reshape(-1, 3)[1:70]]
    assert head_weights == [f"{w:.4g}" for w in run.attention_heads[0, 1, -1, 1:]]


def test_heatmap_figure_draws_the_widget_scales(run):
    from tealeaves_widgets.core.heatmap_scale import HEATMAP_SCALES
    from tealeaves_widgets.present.figures import heatmap_figure

    assert TokenHeatmap(run).scale == HEATMAP_SCALES[0] == "log-layer"
    row = run.attention[1, -1].astype(np.float64)
    linear = heatmap_figure(run, layer=1, scale="linear").data[0]
    top = run.attention[:, -1, 1:].max()  # over all layers, sink masked
    places = np.asarray(linear.z, dtype=float).ravel()[1 : run.n_tokens]
    np.testing.assert_allclose(places, np.clip(row[1:] / top, 0, 1))
    assert "linear, 0 to the max over all layers" in linear.colorbar.title.text
    with pytest.raises(TealeavesError, match=r"scale must be one of \['log-layer'"):
        heatmap_figure(run, scale="cubic")


def test_the_figure_and_the_widget_say_the_same_about_each_scale():
    """The colour bar's words are the legend's (js/src/colour.ts SCALE_TEXT)."""
    from pathlib import Path

    from tealeaves_widgets.core.heatmap_scale import HEATMAP_SCALE_TEXT

    source = (Path(__file__).parents[2] / "js" / "src" / "colour.ts").read_text()
    for scale, text in HEATMAP_SCALE_TEXT.items():
        words = text.replace("4 decades", "${LOG_DECADES} decades")
        assert f'"{words}"' in source or f"`{words}`" in source, scale


def test_markup_in_the_prompt_is_escaped_in_figure_labels(run):
    texts = np.asarray(run.heatmap_figure().data[0].text, dtype=object).ravel().tolist()
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;" in " ".join(texts)
    assert not any("<img" in text for text in texts)
