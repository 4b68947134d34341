"""What is excluded, in headless Chromium from exported pages: the curves
panel's exclude selector gives run.curves(normalize, exclude=...) and shows
run.excluded_mass on its own; the variant diff keeps the prompt whole with the
changes inline, shows each variant's sink and marks the sink flags of
cmp.deltas; the aggregate view says what it leaves out. Screenshots of the
views go to $TEALEAVES_SCREENSHOTS when it is set."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core.masses import resolve_exclusion
from tealeaves_widgets.widgets import AggregateView, CurvesView, Explorer, VariantDiff
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.fake_runs import fake_run, regions_of, variant_words
from tests.helpers.synthetic import synthetic_run

pytestmark = pytest.mark.slow

SHOTS = os.environ.get("TEALEAVES_SCREENSHOTS")


def screenshot(page, selector: str, name: str) -> None:
    """Save `selector`'s picture as `name`.png when $TEALEAVES_SCREENSHOTS names a folder."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.locator(selector).first.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=160, n_layers=8, n_heads=3, n_queries=2, seed=11)


def set_slider(page, value: int) -> None:
    page.locator("input[type=range]").first.evaluate(
        f"el => {{ el.value = '{value}';"
        " el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )


def readout(page) -> dict[str, float]:
    """The curves panel's readout, "layer L: name value · ...", as name -> value."""
    text = page.locator(".tw-readout").text_content()
    _, values = text.split(": ", 1)
    out = {}
    for part in values.split(" \u00b7 "):
        name, value = part.rsplit(" ", 1)
        out[name] = float(value)
    return out


def note_numbers(page) -> dict[str, float]:
    """The exclusion note ("excluded 0.744 · sink 0.712, not excluded") as word -> value."""
    text = page.locator(".tw-exclusion-note").text_content()
    out = {}
    for part in text.split(" \u00b7 "):
        word, value = part.split(", ")[0].split(" ")
        out[word] = float(value)
    return out


def check_curves(page, run, normalize: str, exclude, layer: int) -> None:
    frame = run.curves(run.query_name(), normalize, exclude=exclude)
    shown = readout(page)
    assert list(shown) == list(frame.columns), (normalize, exclude)
    for name, value in shown.items():
        assert value == pytest.approx(frame.loc[layer, name], abs=6e-4), (normalize, exclude, name)
    numbers = note_numbers(page)
    first = run.excluded_mass(run.query_name(), "first")[layer]
    assert numbers["sink"] == pytest.approx(first, abs=6e-4)
    spec = resolve_exclusion(exclude, normalize).spec
    if "excluded" in numbers:
        assert numbers["excluded"] == pytest.approx(
            run.excluded_mass(run.query_name(), spec)[layer], abs=6e-4
        )


def test_switching_the_exclusion_reads_run_curves(open_page, run):
    page, log = open_page(page_html(CurvesView(run, layer=3)))
    page.wait_for_function("document.querySelectorAll('.tw-curves polyline').length > 0")
    assert log.requests == [] and log.errors == []
    select = ".tw-exclude-select"
    assert page.locator(f"{select} option").all_text_contents() == [
        "auto (nothing)",
        "first token",
        "nothing",
        *run.regions,
    ]
    for normalize in ("share", "raw"):
        page.select_option(".tw-normalize-select", normalize)
        for exclude in ("auto", "first", None, "template", "context"):
            page.select_option(select, json.dumps(exclude))
            check_curves(page, run, normalize, exclude, layer=3)
            if exclude == "template" and normalize == "share":
                screenshot(page, ".tw-curves-view", "curves_share_template")
    # the note follows the layer
    page.locator(".tw-chart").click(position={"x": 47, "y": 60})  # the left edge: layer 0
    check_curves(page, run, "raw", "context", layer=0)
    assert log.errors == []


def test_exclude_set_in_python_shows_in_the_explorer(open_page, run):
    view = Explorer(run, layer=5, normalize="share", exclude=("first", "system"))
    page, log = open_page(page_html(view))
    page.wait_for_function("document.querySelector('.tw-backdrop')?.width > 1", timeout=20_000)
    chosen = page.locator(".tw-exclude-select").evaluate("s => s.selectedOptions[0].textContent")
    assert chosen == "first token and system"
    check_curves(page, run, "share", ("first", "system"), layer=5)
    assert page.locator(".tw-exclusion-note").text_content().startswith("excluded ")
    screenshot(page, ".tw-heatmap", "explorer_share_first_system")
    page.select_option(".tw-exclude-select", json.dumps("first"))
    check_curves(page, run, "share", "first", layer=5)
    assert log.errors == []


@pytest.fixture(scope="module")
def sets_cmp():
    labels = tuple(f"case{i}" for i in range(4))
    sets = {
        name: tw.RunSet(
            tuple(
                fake_run(variant_words(terse), regions_of(variant_words(terse)), seed=seed + i)
                for i in range(4)
            ),
            labels,
        )
        for name, terse, seed in (("baseline", False, 0), ("terse", True, 10))
    }
    return tw.compare(sets, min_effect=0.005)


def test_the_diff_keeps_the_prompt_whole_and_marks_the_sink(open_page, sets_cmp):
    page, log = open_page(page_html(VariantDiff(sets_cmp, layer=2)))
    page.wait_for_function("document.querySelectorAll('.tw-diff .tw-tok').length > 0")
    assert log.requests == [] and log.errors == []
    align = sets_cmp.alignment("terse", 0)
    base, terse = sets_cmp.run_of("baseline", 0), sets_cmp.run_of("terse", 0)
    # one text: the baseline's tokens and the variant's, each in its order
    read = page.locator(".tw-diff .tw-tok").evaluate_all(
        "spans => spans.map(s => [s.dataset.b ?? null, s.dataset.v ?? null, s.textContent])"
    )
    assert len(read) == align.n_shared + align.n_deleted + align.n_inserted
    assert [int(b) for b, _, _ in read if b is not None] == list(range(base.n_tokens))
    assert [int(v) for _, v, _ in read if v is not None] == list(range(terse.n_tokens))
    assert "".join(t for b, _, t in read if b is not None) == base.text
    assert "".join(t for _, v, t in read if v is not None) == terse.text
    assert page.locator(".tw-diff del .tw-tok").count() == align.n_deleted
    assert page.locator(".tw-diff ins .tw-tok").count() == align.n_inserted
    assert page.locator(".tw-diff-row").count() == 0
    title = page.locator(".tw-diff-title").text_content()
    assert title.endswith("normalize=share, first token excluded")
    # each variant's sink at the layer: cmp.excluded_mass (the first token)
    sink = sets_cmp.excluded_mass.query("query == 'final' and layer == 2")
    line = page.locator(".tw-sink-line").text_content()
    for name, mass in zip(sink["variant"], sink["mass"], strict=True):
        assert f"{name} {mass:.3f}" in line
    # the rows flagged sink_reassigned, as cmp.deltas has them
    for layer in range(sets_cmp.n_layers):
        set_slider(page, layer)
        table = sets_cmp.deltas.query(
            f"variant == 'terse' and query == 'final' and layer == {layer}"
        )
        flags = page.locator(".tw-delta-table tbody tr").evaluate_all(
            "rows => rows.map(r => [r.classList.contains('tw-sink-flag'),"
            " r.classList.contains('tw-significant'), r.querySelector('.tw-flag').textContent])"
        )
        assert [f for f, _, _ in flags] == table["sink_reassigned"].fillna(False).tolist()
        assert [s for _, s, _ in flags] == table["significant"].fillna(False).tolist()
        assert [t == "sink" for f, _, t in flags] == [f for f, _, _ in flags]
    set_slider(page, 2)
    screenshot(page, ".tw-diff-view", "diff_light")
    assert log.errors == []


def test_the_aggregate_view_says_what_it_leaves_out(open_page, sets_cmp):
    view = AggregateView(dict(sets_cmp.variants), exclude="persona", layer=1)
    page, log = open_page(page_html(view))
    page.wait_for_function("document.querySelectorAll('.tw-aggregate-readout tbody tr').length")
    line = page.locator(".tw-sink-line").text_content()
    assert line.startswith("raw: persona excluded \u2014 at layer 1, mean over cases: excluded ")
    for name, rs in sets_cmp.variants.items():
        persona = rs.excluded_mass("final", "persona")["mean"][1]
        first = rs.excluded_mass("final", "first")["mean"][1]
        assert f"{name} {persona:.3f}" in line.split("; sink")[0]
        assert f"{name} {first:.3f}" in line.split("; sink")[1]
    titles = page.locator(".tw-region-title").all_text_contents()
    assert titles == ["rules", "facts", "persona \u2014 no value (excluded)"]
    assert line.endswith(", excluded")  # persona holds the first token
    screenshot(page, ".tw-aggregate-view", "aggregate_light")
    assert log.errors == []
