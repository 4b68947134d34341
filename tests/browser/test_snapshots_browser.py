"""The conversation snapshots view in headless Chromium, from an exported
page opened offline: no console error, no request; every heatmap cell, role
average and chart point equals `Snapshots.compare`'s numbers for the
selection shown, raw and centred, for each metric, source and layer, all
switched with no kernel; a message holding an <img onerror> tag is shown as
text and runs nothing; the text on every shade reads (WCAG 4.5:1) in
JupyterLab's light and dark themes.

Screenshots go to $TEALEAVES_SCREENSHOTS when it is set."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tealeaves_widgets.widgets import SnapshotsView
from tealeaves_widgets.widgets.export import page_html
from tests.browser.test_causal_views_browser import CONTRAST
from tests.helpers.synthetic import SNAPSHOT_MARKUP, synthetic_snapshots
from tests.helpers.themes import themed

pytestmark = pytest.mark.slow

READY = "document.querySelectorAll('td.tw-snap-cell').length > 1"
CELLS = "td.tw-snap-cell"


def screenshot(page, name: str, tmp_path: Path) -> None:
    target = Path(os.environ.get("TEALEAVES_SCREENSHOTS", tmp_path))
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=True)


@pytest.fixture(scope="module")
def snapshots():
    return synthetic_snapshots()


def expected(snapshots, source: str, metric: str, center: bool, layer: int | None) -> np.ndarray:
    """(message, reference) from `compare`'s rows: the value at `layer`, or
    the mean over the layers."""
    table = snapshots.compare(source, center=center)
    if layer is not None:
        table = table[table["layer"] == layer]
    means = table.groupby(["message", "reference"], sort=False)[metric].mean()
    return np.array([[means[(m, label)] for label in snapshots.references] for m in range(6)])


def shown(page, selector: str = CELLS) -> np.ndarray:
    values = page.eval_on_selector_all(selector, "els => els.map(e => Number(e.dataset.value))")
    return np.array(values)


def pick(page, select: str, value: str) -> None:
    page.locator(select).select_option(value)


def test_the_cells_are_compare_s_numbers_for_every_selection(open_page, snapshots, tmp_path):
    page, log = open_page(page_html(SnapshotsView(snapshots)), name="snapshots.html")
    page.wait_for_function(READY, timeout=20_000)
    raw = expected(snapshots, "hidden_out", "cosine", False, None)
    np.testing.assert_allclose(shown(page).reshape(6, 3), raw, rtol=1e-5, atol=1e-6)
    assert (
        "Shown: raw cosine of hidden_out, mean over the 6 layers"
        in page.locator(".tw-snap-shown").text_content()
    )
    screenshot(page, "snapshots-raw.png", tmp_path)
    pick(page, ".tw-center-select", "#1")  # centred
    centred = expected(snapshots, "hidden_out", "cosine", True, None)
    np.testing.assert_allclose(shown(page).reshape(6, 3), centred, rtol=1e-5, atol=1e-6)
    assert "Shown: centred cosine" in page.locator(".tw-snap-shown").text_content()
    # the headline: raw cosines are flat, centred ones tell the messages apart
    assert np.ptp(raw) < 0.1 and np.ptp(centred) > 1.0
    framed = page.eval_on_selector_all(
        ".tw-snap-heat tbody tr",
        "rows => rows.map(r => [...r.querySelectorAll('td')].findIndex(td => "
        "td.classList.contains('tw-best')))",
    )
    assert framed == centred.argmax(axis=1).tolist()
    screenshot(page, "snapshots-centred.png", tmp_path)
    for source, metric, center, layer in [
        ("hidden_out", "mae", True, None),
        ("mlp_out", "jaccard", False, 3),
        ("attn_out", "cosine", True, 0),
        ("hidden_in", "mae", False, 5),
    ]:
        pick(page, ".tw-source-select", source)
        pick(page, ".tw-metric-select", metric)
        pick(page, ".tw-center-select", "#1" if center else "#0")
        pick(page, ".tw-layer-select", "#0" if layer is None else f"#{layer + 1}")
        want = expected(snapshots, source, metric, center, layer)
        np.testing.assert_allclose(shown(page).reshape(6, 3), want, rtol=1e-5, atol=1e-6)
        # the source's line chart has the same numbers, one line per reference
        dots = shown(page, f".tw-snap-line-box[data-source='{source}'] .tw-snap-dot")
        refs = page.eval_on_selector_all(
            f".tw-snap-line-box[data-source='{source}'] .tw-snap-dot",
            "els => els.map(e => [Number(e.dataset.message), e.dataset.reference])",
        )
        labels = list(snapshots.references)
        for value, (m, label) in zip(dots, refs, strict=True):
            assert value == pytest.approx(want[m, labels.index(label)], rel=1e-5, abs=1e-6)
        # the role averages: the user and the assistant messages' mean of those cells
        roles = snapshots.role_means(source, metric, center=center, layer=layer)
        row = page.locator(".tw-snap-role-table tr[data-reference='anger'] td[data-role]")
        user, assistant = (float(row.nth(i).get_attribute("data-value")) for i in (0, 1))
        assert user == pytest.approx(want[[1, 3, 5], 1].mean(), rel=1e-5, abs=1e-6)
        assert assistant == pytest.approx(want[[2, 4], 1].mean(), rel=1e-5, abs=1e-6)
        assert user == pytest.approx(roles.loc["user", "anger"], rel=1e-5, abs=1e-6)
    assert log.requests == [] and log.errors == []


def test_a_message_s_layer_chart_opens_with_compare_s_numbers(open_page, snapshots, tmp_path):
    view = SnapshotsView(snapshots, center=True)
    page, log = open_page(page_html(view), name="snapshots-layers.html")
    page.wait_for_function(READY, timeout=20_000)
    details = page.locator("details.tw-snap-detail")
    assert details.count() == 6
    assert page.locator("details.tw-snap-detail[open]").count() == 0  # collapsed by default
    page.locator(".tw-snap-heat tbody tr[data-message='3'] th").click()
    opened = page.locator("details.tw-snap-detail[data-message='3']")
    assert opened.get_attribute("open") is not None
    dots = opened.locator(".tw-snap-dot")
    page.wait_for_function(  # the chart is drawn when the details open
        "document.querySelectorAll(\"details.tw-snap-detail[data-message='3'] .tw-snap-dot\")"
        ".length === 18",
        timeout=5_000,
    )
    assert dots.count() == 6 * 3
    table = snapshots.compare("hidden_out", center=True)
    for i in range(dots.count()):
        dot = dots.nth(i)
        layer, label = int(dot.get_attribute("data-layer")), dot.get_attribute("data-reference")
        row = table[(table["message"] == 3) & (table["reference"] == label)]
        want = float(row[row["layer"] == layer]["cosine"].iloc[0])
        assert float(dot.get_attribute("data-value")) == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert "closest: anger" in opened.locator("summary").text_content()
    screenshot(page, "snapshots-layers.png", tmp_path)
    assert log.requests == [] and log.errors == []


def test_message_markup_is_text(open_page, snapshots):
    page, log = open_page(page_html(SnapshotsView(snapshots)), name="snapshots-markup.html")
    page.wait_for_function(READY, timeout=20_000)
    assert page.locator(".tw-root img").count() == 0
    assert page.title() != "pwned"
    heading = page.locator(".tw-snap-heat tbody tr[data-message='3'] th")
    assert SNAPSHOT_MARKUP in heading.get_attribute("title")
    preview = page.locator("details.tw-snap-detail[data-message='3'] .tw-snap-preview")
    assert preview.text_content().startswith("Wait, they withdrew the offer. <img src=x")
    assert log.requests == [] and log.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_view_reads_in_both_themes(open_page, snapshots, theme, tmp_path):
    for name, view in {
        "raw-cosine": SnapshotsView(snapshots),
        "centred-cosine": SnapshotsView(snapshots, center=True),
        "mae": SnapshotsView(snapshots, metric="mae"),
    }.items():
        page, log = open_page(themed(page_html(view), theme), name=f"snap-{name}-{theme}.html")
        page.wait_for_function(READY, timeout=20_000)
        contrasts = page.evaluate(CONTRAST, f"{CELLS}, .tw-snap-heat th, .tw-snap-role-table td")
        assert contrasts and min(contrasts) >= 4.5, (name, theme, min(contrasts))
        screenshot(page, f"snapshots-{name}-{theme}.png", tmp_path)
        assert log.requests == [] and log.errors == [], name
