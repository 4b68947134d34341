"""The HTML report of a comparison (`save_report("x.html")`) and the comparison
and RunSet figures: the page's tables hold the numbers of `cmp.deltas`, the
figures draw them, every text is escaped, and nothing is fetched."""

from __future__ import annotations

import dataclasses
import html
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import plotly.offline
import pytest
from markdown_it import MarkdownIt

import tealeaves_widgets as tw
from tealeaves_widgets.core.compare import BANDS
from tealeaves_widgets.present.figures import BASELINE_COLOR, VARIANT_COLORS, aggregate_figure
from tealeaves_widgets.present.report import _num, _signed
from tealeaves_widgets.widgets import AggregateView, VariantDiff, report_page
from tealeaves_widgets.widgets.export import network_references
from tests.helpers.fake_runs import fake_run, regions_of, variant_words
from tests.helpers.isolated import loaded_after_import

XSS = "<img src=x onerror=window.__xss=1></script><script>window.__xss=2</script><!--"


def run_of(terse: bool, seed: int = 0) -> tw.Run:
    words = variant_words(terse)
    return fake_run(words, regions_of(words), seed=seed)


def runset(terse: bool, n: int, seed0: int) -> tw.RunSet:
    return tw.RunSet([run_of(terse, seed0 + i) for i in range(n)])


@pytest.fixture(scope="module", params=["runs", "runsets"])
def cmp(request) -> tw.Comparison:
    if request.param == "runs":
        return tw.compare({"baseline": run_of(False, 0), "terse": run_of(True, 1)})
    return tw.compare({"baseline": runset(False, 5, 0), "terse": runset(True, 5, 100)})


@pytest.fixture(scope="module")
def page(cmp) -> str:
    return report_page.report_page(cmp)


class _Tables(HTMLParser):
    """Each <table>'s rows as lists of cell texts, and the page's text outside scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._in_script = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._in_script = True
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._in_script:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> _Tables:
    parser = _Tables()
    parser.feed(page)
    return parser


def test_the_summary_table_holds_the_numbers_of_cmp_deltas(cmp, page):
    bands = cmp.with_options(layers="bands").deltas
    bands = bands[bands["query"] == "final"]
    summary = parse(page).tables[0]
    assert summary[0] == ["region", "layers", "baseline", "terse Δ"]
    body, excluded_rows = summary[1:-3], summary[-3:]
    assert len(body) == len(cmp.regions) * 3
    excluded = cmp.with_options(layers="bands").excluded_mass
    excluded = excluded[excluded["query"] == "final"]
    for (what, band, base_mass, delta), name in zip(excluded_rows, BANDS, strict=True):
        assert (what, band) == ("excluded: first token", name)
        base = excluded[(excluded["variant"] == "baseline") & (excluded["layer"] == band)]
        terse = excluded[(excluded["variant"] == "terse") & (excluded["layer"] == band)]
        assert base_mass == _num(base["mass"].item())
        assert delta.split(" ")[0] == _signed(terse["delta"].item())
    for region, band, base_mass, delta in body:
        base = bands[(bands["variant"] == "baseline") & (bands["region"] == region)]
        terse = bands[(bands["variant"] == "terse") & (bands["region"] == region)]
        assert base_mass == _num(base.set_index("layer").loc[band, "mass"])
        row = terse.set_index("layer").loc[band]
        assert delta.split(" ")[0] == _signed(row["delta"])
        assert f"({row['rel_change']:+.1%})" in delta
        significant = not pd.isna(row["significant"]) and bool(row["significant"])
        sink = not pd.isna(row["sink_reassigned"]) and bool(row["sink_reassigned"])
        assert delta.endswith(" *" + (" sink" if sink else "")) == significant


def test_the_page_says_what_the_markdown_report_says(cmp, page):
    text = " ".join("".join(parse(page).text).split())
    rendered = MarkdownIt("commonmark").enable("table").render(cmp.report())
    blocks = re.findall(r"<(h\d|li|p)>(.*?)</\1>", rendered, flags=re.S)
    assert [tag for tag, _ in blocks].count("li") >= 5
    for _, block in blocks:  # each heading, list item and paragraph, as shown
        shown = html.unescape(re.sub(r"<[^>]+>", "", block))
        assert " ".join(shown.split()) in text
    stats_table = parse(page).tables[1]
    assert stats_table[0] == ["region", "peak_layer", "peak_mass", "area", "first_above"]


def test_the_figures_draw_cmp_deltas(cmp):
    deltas = cmp.with_options(layers=None).deltas
    final = deltas[deltas["query"] == "final"]
    curves = cmp.curves_figure()
    lines = [t for t in curves.data if t.fill != "toself"]
    bands = [t for t in curves.data if t.fill == "toself"]
    assert len(lines) == len(cmp.regions) * 2
    for trace in lines:
        region = cmp.regions[lines.index(trace) // 2]
        rows = final[(final["variant"] == trace.legendgroup) & (final["region"] == region)]
        np.testing.assert_allclose(trace.y, rows["mass"])
    assert trace.line.dash == "solid" and lines[0].line.dash == "dash"  # baseline dashed
    is_set = isinstance(cmp.variants["baseline"], tw.RunSet)
    assert len(bands) == (len(lines) if is_set else 0)
    delta = cmp.delta_figure()
    rules = final[(final["variant"] == "terse") & (final["region"] == "rules")]
    (line,) = [t for t in delta.data if t.name == "rules" and t.fill != "toself"]
    np.testing.assert_allclose(line.y, rules["delta"])
    if is_set:
        (band,) = [t for t in delta.data if t.name == "rules" and t.fill == "toself"]
        expected = np.concatenate([rules["delta_high"], rules["delta_low"].to_numpy()[::-1]])
        np.testing.assert_allclose(band.y, expected)
    lens = cmp.lens_figure()
    table = cmp.with_options(layers=None).lens_deltas
    table = table[table["query"] == "final"]
    rank = table[(table["variant"] == "terse") & (table["token"] == " Paris")]
    (trace,) = [t for t in lens.data if t.name == "' Paris' terse" and t.xaxis == "x"]
    np.testing.assert_allclose(trace.y, rank["rank"])


def test_the_page_fetches_nothing_and_inlines_plotly_once(cmp, page):
    assert network_references(page) == []
    assert "cdn." not in "".join(re.findall(r"<script[^>]*>", page))
    assert page.count(plotly.offline.get_plotlyjs()[:300]) == 1
    n_figures = 3  # curves, deltas, tracked tokens
    assert page.count("Plotly.newPlot(") == n_figures
    # plotly.js comes before require.js, which would make it an anonymous AMD module
    assert page.index("Plotly.newPlot(") < page.index("application/vnd.jupyter.widget-state+json")
    views = page.count('<script type="application/vnd.jupyter.widget-view+json">')
    assert views >= 1


def test_token_and_region_text_is_escaped(tmp_path):
    words = variant_words(False)
    words[-1] = XSS
    spans = regions_of(words) | {XSS: (len(words) - 2, len(words))}
    base = fake_run(words, spans, seed=0)
    base = dataclasses.replace(
        base, lens=dataclasses.replace(base.lens, tracked_tokens=(XSS, " Yes"))
    )
    other = fake_run(words, spans, seed=1)
    other = dataclasses.replace(other, lens=base.lens)
    cmp = tw.compare({"baseline": base, XSS: other})
    path = cmp.save_report(tmp_path / "report.html")
    page = path.read_text(encoding="utf-8")
    markup = re.sub(r"(<script\b[^>]*>).*?(</script>)", r"\1\2", page, flags=re.S)
    assert "<img" not in markup and "<script>window.__xss" not in markup
    assert "&lt;img src=x onerror=window.__xss=1&gt;&lt;/script&gt;" in markup
    # inside scripts (figure JSON, widget state) no "</script" or "<!--" closes them early
    assert page.count("</script><script>window.__xss") == 0
    assert page.count("<!--") == 0
    assert network_references(page) == []


def test_save_report_picks_the_format_by_suffix(tmp_path):
    cmp = tw.compare({"baseline": run_of(False, 0), "terse": run_of(True, 1)})
    assert cmp.save_report(tmp_path / "r.md").read_text() == cmp.report()
    page = cmp.save_report(tmp_path / "r.HTM", views=False).read_text()
    assert page.startswith("<!DOCTYPE html>") and "widget-state+json" not in page
    assert "Plotly.newPlot(" in page
    with pytest.raises(tw.TealeavesError, match=r"name the file \.md"):
        cmp.save_report(tmp_path / "r.txt")


def test_the_report_embeds_the_diff_view_and_an_aggregate_of_runsets():
    sets = tw.compare({"a": runset(False, 3, 0), "b": runset(True, 3, 9)})
    views = report_page.report_views(sets)
    assert [caption for caption, _ in views] == [
        "Variants side by side",
        "Cooking curves over the cases, with confidence bands",
    ]
    (diff, aggregate) = [view for _, view in views]
    assert isinstance(diff, VariantDiff) and diff.comparison is sets
    assert isinstance(aggregate, AggregateView)
    assert aggregate.runsets == dict(sets.variants)
    runs = tw.compare({"a": run_of(False), "b": run_of(True)})
    (only,) = [view for _, view in report_page.report_views(runs)]
    assert isinstance(only, VariantDiff) and only.comparison is runs


def test_aggregate_figure_draws_runset_aggregate():
    a, b = runset(False, 4, 0), runset(True, 4, 50)
    figure = a.aggregate_figure(normalize="share")
    table = a.aggregate(normalize="share")
    rules = table[table["region"] == "rules"]
    (line,) = [t for t in figure.data if t.name == "rules" and t.fill != "toself"]
    (band,) = [t for t in figure.data if t.name == "rules" and t.fill == "toself"]
    np.testing.assert_allclose(line.y, rules["mean"])
    np.testing.assert_allclose(band.y, np.concatenate([rules["high"], rules["low"][::-1]]))
    both = aggregate_figure({"a": a, "b": b}, interval="bootstrap")
    lines = [t for t in both.data if t.fill != "toself"]
    assert [t.name for t in lines[:2]] == ["a", "b"] and len(lines) == 2 * len(a.region_names)
    # the first set is the baseline, drawn as a comparison's: dark grey and dashed
    assert [t.line.dash for t in lines[:2]] == ["dash", "solid"]
    assert lines[0].line.color == BASELINE_COLOR and lines[1].line.color == VARIANT_COLORS[0]
    with pytest.raises(tw.TealeavesError, match="tw.RunSet"):
        aggregate_figure({"a": run_of(False)})


def test_the_report_module_imports_no_widgets():
    modules = ["tealeaves_widgets.present"]
    assert loaded_after_import(modules, ["tealeaves_widgets.widgets", "anywidget", "torch"]) == []
