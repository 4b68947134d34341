"""The variant diff and the aggregate view in headless Chromium, from exported
pages opened offline: no console error, no request, the layer slider redraws,
token text and region names with markup show as text."""

from __future__ import annotations

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.widgets import AggregateView, VariantDiff
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.fake_runs import fake_run, regions_of, variant_words

pytestmark = pytest.mark.slow

XSS = " <img src=x onerror=window.__xss=1>"


def words_of(terse: bool) -> list[str]:
    words = variant_words(terse)
    return words[:-2] + [XSS, *words[-2:]] if terse else words


def run_of(terse: bool, seed: int) -> tw.Run:
    words = words_of(terse)
    return fake_run(words, regions_of(words), seed=seed)


def set_slider(page, value: int) -> None:
    page.locator("input[type=range]").evaluate(
        f"el => {{ el.value = '{value}';"
        " el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )


def backgrounds(page) -> list[str]:
    return page.locator(".tw-diff .tw-tok").evaluate_all(
        "spans => spans.map(s => s.style.backgroundColor)"
    )


def open_view(open_page, widget, ready: str):
    page, log = open_page(page_html(widget))
    page.wait_for_function(ready, timeout=20_000)
    return page, log


@pytest.fixture(scope="module")
def sets_cmp():
    labels = tuple(f"case{i}" for i in range(4))
    base = tw.RunSet(tuple(run_of(False, i) for i in range(4)), labels)
    terse = tw.RunSet(tuple(run_of(True, 10 + i) for i in range(4)), labels)
    # raw mass: these random cases have a delta whose interval excludes 0 there
    # (none in tw.compare's default "share"), so the highlighting is tested
    return tw.compare({"baseline": base, "terse": terse}, normalize="raw")


def test_diff_of_two_runs_renders_offline_and_the_slider_redraws(open_page):
    cmp = tw.compare({"baseline": run_of(False, 0), "terse": run_of(True, 1)})
    page, log = open_view(
        open_page,
        VariantDiff(cmp, layer=2),
        "document.querySelectorAll('.tw-diff .tw-tok').length > 0",
    )
    assert log.requests == [] and log.errors == []
    align = cmp.alignment("terse")
    # one text: a shared token once, deleted and inserted tokens inline
    assert (
        page.locator(".tw-diff .tw-tok").count()
        == align.n_shared + align.n_deleted + align.n_inserted
    )
    assert page.locator(".tw-diff .tw-tok.tw-ins").count() == align.n_inserted
    assert page.locator(".tw-diff .tw-tok.tw-del").count() == align.n_deleted
    # one chart per region, both variants drawn, the baseline dashed
    assert page.locator(".tw-region-chart").count() == len(cmp.regions)
    assert page.locator(".tw-region-chart polyline[stroke-dasharray]").count() == len(cmp.regions)
    before, cursor = backgrounds(page), page.locator(".tw-cursor").first.get_attribute("x1")
    title = page.locator(".tw-diff-table .tw-panel-header span").text_content()
    set_slider(page, 5)
    assert backgrounds(page) != before
    assert page.locator(".tw-cursor").first.get_attribute("x1") != cursor
    assert page.locator(".tw-diff-table .tw-panel-header span").text_content() != title
    assert page.locator(".tw-layer-label").text_content() == "layer 5 / 5"
    # the table shows cmp.deltas at layer 5
    expected = cmp.deltas.query("variant == 'terse' and query == 'final' and layer == 5")
    cells = page.locator(".tw-delta-table tbody tr td.tw-delta").all_text_contents()
    assert len(cells) == len(expected)
    for text, delta in zip(cells, expected["delta"], strict=True):
        assert float(text.split()[0]) == pytest.approx(delta, abs=6e-4)
    assert log.errors == []


def test_token_markup_shows_as_text(open_page):
    cmp = tw.compare({"baseline": run_of(False, 0), "terse": run_of(True, 1)})
    page, log = open_view(
        open_page, VariantDiff(cmp), "document.querySelectorAll('.tw-diff .tw-tok').length > 0"
    )
    inserted = page.locator(".tw-diff .tw-tok.tw-ins").all_text_contents()
    assert XSS in inserted
    assert page.locator(".tw-root img").count() == 0
    assert page.evaluate("window.__xss") is None
    page.locator(".tw-diff .tw-tok.tw-ins", has_text="<img").hover()
    assert "<img src=x" in page.locator(".tw-tip").text_content()
    assert page.evaluate("window.__xss") is None and log.errors == []


def test_diff_of_runsets_has_bands_a_case_selector_and_highlighted_rows(open_page, sets_cmp):
    page, log = open_view(
        open_page,
        VariantDiff(sets_cmp, layer=1),
        "document.querySelectorAll('.tw-diff .tw-tok').length > 0",
    )
    assert log.errors == []
    assert page.locator(".tw-region-chart .tw-band").count() >= 2 * len(sets_cmp.regions)
    first = backgrounds(page)
    labels = page.locator(".tw-case-select option").all_text_contents()
    texts = [" ".join(run.case["user"].split())[:59] for run in sets_cmp.variants["baseline"]]
    assert [label[:59] for label in labels] == texts  # each case by its question
    page.select_option(".tw-case-select", index=2)
    assert backgrounds(page) != first
    total = 0
    for layer in range(sets_cmp.n_layers):
        set_slider(page, layer)
        table = sets_cmp.deltas.query(
            f"variant == 'terse' and query == 'final' and layer == {layer}"
        )
        highlighted = page.locator(".tw-delta-table tr.tw-significant").count()
        assert highlighted == int(table["significant"].fillna(False).sum())
        total += highlighted
    assert total > 0  # these cases differ enough somewhere
    page.select_option(".tw-query-select", "last_token")
    assert log.errors == []


def test_aggregate_view_renders_offline_and_redraws(open_page):
    words = variant_words(False)
    regions = regions_of(words) | {"<b>q</b><img src=x onerror=window.__xss=1>": (17, 19)}
    a = tw.RunSet(tuple(fake_run(words, regions, seed=i) for i in range(4)))
    b = tw.RunSet(tuple(fake_run(words, regions, seed=20 + i) for i in range(3)))
    view = AggregateView({"baseline": a, "terse": b}, layer=2)
    page, log = open_view(
        open_page, view, "document.querySelectorAll('.tw-aggregate-readout tbody tr').length > 0"
    )
    assert log.requests == [] and log.errors == []
    assert page.locator(".tw-region-chart").count() == len(regions)
    assert page.locator(".tw-root img").count() == 0 and page.evaluate("window.__xss") is None
    assert "<b>q</b>" in page.locator(".tw-region-title").all_text_contents()[-1]
    # the first set is the baseline, drawn as in the variant diff: dashed grey, the other solid
    dashed = page.locator(".tw-region-chart polyline[stroke-dasharray]")
    assert dashed.count() == len(regions)
    assert {dashed.nth(i).get_attribute("stroke") for i in range(dashed.count())} == {"#57606a"}
    assert page.locator(".tw-legend .tw-swatch.tw-dashed").count() == 1
    cursor = page.locator(".tw-cursor").first.get_attribute("x1")
    set_slider(page, 5)
    assert page.locator(".tw-cursor").first.get_attribute("x1") != cursor
    mean = page.locator(".tw-aggregate-readout tbody tr").first.locator(".tw-mean").text_content()
    expected = a.aggregate("final", "raw").query("region == 'rules' and layer == 5")["mean"].item()
    assert float(mean) == pytest.approx(expected, abs=6e-4)
    bands = page.locator(".tw-band").count()
    page.select_option(".tw-band-select", "none")
    assert bands > 0 and page.locator(".tw-band").count() == 0
    line = page.locator(".tw-region-chart polyline").first
    raw = line.get_attribute("points")
    page.select_option(".tw-normalize-select", "per-region")
    assert line.get_attribute("points") != raw
    page.locator(".tw-visible").first.uncheck()
    assert page.locator(".tw-region-chart").first.is_hidden()
    assert log.errors == []


def test_a_single_runset_exports_as_one_chart(open_page):
    rs = tw.RunSet(tuple(run_of(False, i) for i in range(3)))
    page, log = open_view(open_page, rs, "document.querySelectorAll('.tw-band-chart').length > 0")
    assert page.locator(".tw-band-chart").count() == 1
    assert page.locator(".tw-band-chart polyline").count() == len(rs.region_names)
    assert log.errors == [] and log.requests == []
