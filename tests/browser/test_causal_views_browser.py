"""The attribution, head gates and previous-token views in headless Chromium,
from exported pages opened offline: no console error, no request; a shaded
token's value and a gate cell equal Python's numbers; the token "<b>x</b>"
is shown as text; the toggles work with no kernel; in JupyterLab's light
and dark themes the text on every shade reads (WCAG 4.5:1).

Screenshots of both themes go to $TEALEAVES_SCREENSHOTS when it is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tealeaves_widgets.widgets import AttributionView, HeadGatesView, PrevTokenView
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.synthetic import (
    MARKUP_TOKEN,
    synthetic_attribution,
    synthetic_head_gates,
    synthetic_prev_token,
)
from tests.helpers.themes import themed

pytestmark = pytest.mark.slow

ATTRIBUTION_READY = "document.querySelectorAll('.tw-attribution-text .tw-tok').length > 1"
GATES_READY = "document.querySelectorAll('td.tw-gate').length > 1"
SWEEP_READY = "document.querySelectorAll('.tw-sweep-bar').length > 1"

# WCAG contrast of the text of every element matching a selector on its own background.
CONTRAST = """(selector) => {
  const parse = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = getComputedStyle(node).backgroundColor;
      if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  const all = Array.from(document.querySelectorAll(selector));
  const shown = all.filter((el) => el.textContent.trim());
  return shown.map((el) => {
    const pair = [lum(parse(getComputedStyle(el).color)), lum(parse(background(el)))];
    const [x, y] = pair.sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  });
}"""


def screenshot(page, name: str, tmp_path: Path) -> None:
    target = Path(os.environ.get("TEALEAVES_SCREENSHOTS", tmp_path))
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=True)


@pytest.fixture(scope="module")
def attribution():
    return synthetic_attribution()


@pytest.fixture(scope="module")
def gates():
    return synthetic_head_gates()


def test_the_attribution_shades_python_s_values_and_shows_markup_as_text(open_page, attribution):
    page, log = open_page(page_html(AttributionView(attribution)), name="attribution.html")
    page.wait_for_function(ATTRIBUTION_READY, timeout=20_000)
    tokens = page.locator(".tw-attribution-text .tw-tok")
    assert tokens.count() == attribution.n_tokens
    question = int(attribution.regions["question"].token_indices[0])
    shaded = tokens.nth(question)
    assert float(shaded.get_attribute("data-value")) == pytest.approx(
        attribution.grad_norm[question], rel=1e-6
    )
    colour = shaded.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    # the token "<b>x</b>" is text, not a bold x
    markup = attribution.tokens.index(MARKUP_TOKEN)
    assert tokens.nth(markup).text_content() == MARKUP_TOKEN
    assert page.locator(".tw-root b:text-is('x')").count() == 0
    assert page.locator(".tw-attribution-text b, .tw-attribution-text img").count() == 0
    assert page.locator(".tw-target").text_content() == 'log p(" ring") = -2.5000'
    # the region bars: Python's shares
    table = attribution.region_table().set_index("region")
    share = page.locator("tr[data-region='question'] .tw-share-value").get_attribute("data-value")
    assert float(share) == pytest.approx(table.loc["question", "share"], rel=1e-6)
    # signed shading, with no kernel
    page.locator(".tw-shading-select").select_option("grad_x_input")
    assert float(shaded.get_attribute("data-value")) == pytest.approx(
        attribution.grad_x_input[question], rel=1e-6
    )
    assert page.locator(".tw-scale-select").is_disabled()
    # a click on a region marks its tokens
    page.locator("tr[data-region='question']").click()
    marked = page.locator(".tw-attribution-text .tw-tok.tw-in-region").count()
    assert marked == len(attribution.regions["question"].token_indices)
    # hover: the token's values
    tokens.nth(question).hover()
    tip = page.locator(".tw-tip").text_content()
    rank = 1 + int((attribution.grad_norm > attribution.grad_norm[question]).sum())
    assert f"grad_norm: {attribution.grad_norm[question]:.4f} (rank {rank} of 64" in tip
    assert log.requests == [] and log.errors == []


def test_the_gate_cells_are_python_s_gates(open_page, gates):
    page, log = open_page(page_html(HeadGatesView(gates, phase="removal")), name="gates.html")
    page.wait_for_function(GATES_READY, timeout=20_000)
    cells = page.locator("td.tw-gate")
    assert cells.count() == gates.gates["plain"].size
    cell = page.locator("td.tw-gate[data-layer='3'][data-head='1']")
    assert float(cell.get_attribute("data-value")) == pytest.approx(
        gates.gates["removal"][3, 1], rel=1e-6
    )
    page.locator(".tw-phase-select").select_option("label")
    assert cell.text_content() == "F" and cell.get_attribute("data-value") == "facilitating"
    interfering = page.locator("td.tw-gate[data-layer='2'][data-head='2']")
    assert interfering.text_content() == "I"
    cell.hover()
    tip = page.locator(".tw-tip").text_content()
    for phase in ("plain", "retention", "removal"):
        assert f"{phase}: {gates.gates[phase][3, 1]:.3f}" in tip
    assert page.locator(".tw-loss-line").count() == 3
    assert log.requests == [] and log.errors == []


def test_the_prev_token_bars_pick_the_offset_table(open_page):
    test = synthetic_prev_token()
    page, log = open_page(page_html(PrevTokenView(test)), name="prev.html")
    page.wait_for_function(SWEEP_READY, timeout=20_000)
    bars = page.locator(".tw-sweep-bar")
    sweep = test.sweep()
    for k in range(len(test.offsets)):
        value = float(bars.nth(k).get_attribute("data-value"))
        assert value == pytest.approx(sweep["redundancy"][k], rel=1e-5)
    bars.nth(2).click()
    table = test.table(3)
    row = table[(table["pair"] == "A vs A+B") & (table["layer"] == 2)]
    shown = page.locator(".tw-pairs-table tbody tr").nth(2).locator("td[data-value]").nth(3)
    assert float(shown.get_attribute("data-value")) == pytest.approx(
        float(row["inner_mean"].iloc[0]), rel=1e-5
    )
    assert log.requests == [] and log.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_views_read_in_both_themes(open_page, attribution, gates, theme, tmp_path):
    views = {
        "attribution": (
            AttributionView(attribution),
            ATTRIBUTION_READY,
            ".tw-attribution-text .tw-tok",
        ),
        "attribution-signed": (
            AttributionView(attribution, shading="grad_x_input"),
            ATTRIBUTION_READY,
            ".tw-attribution-text .tw-tok",
        ),
        "head-gates": (HeadGatesView(gates), GATES_READY, "td.tw-gate"),
        "head-gates-removal": (
            HeadGatesView(gates, phase="removal"),
            GATES_READY,
            ".tw-gates-grid th, .tw-gates-legend .tw-bar-label",
        ),
        "prev-token": (PrevTokenView(synthetic_prev_token()), SWEEP_READY, ".tw-pairs-table td"),
    }
    for name, (view, ready, selector) in views.items():
        page, log = open_page(themed(page_html(view), theme), name=f"{name}-{theme}.html")
        page.wait_for_function(ready, timeout=20_000)
        contrasts = page.evaluate(CONTRAST, selector)
        assert contrasts and min(contrasts) >= 4.5, (name, contrasts)
        background = page.locator(".tw-root").first.evaluate(
            "el => getComputedStyle(el).backgroundColor"
        )
        assert (background == "rgb(17, 17, 17)") == (theme == "dark"), background
        screenshot(page, f"{name}-{theme}.png", tmp_path)
        assert log.requests == [] and log.errors == [], name


@pytest.mark.parametrize("kind", ["attribution", "head-gates", "prev-token"])
def test_the_png_button_downloads_the_view(open_page, attribution, gates, kind):
    view = {
        "attribution": lambda: AttributionView(attribution, shading="grad_x_input"),
        "head-gates": lambda: HeadGatesView(gates, phase="retention"),
        "prev-token": lambda: PrevTokenView(synthetic_prev_token()),
    }[kind]()
    page, log = open_page(page_html(view), name=f"{kind}-png.html")
    page.wait_for_selector(".tw-download", timeout=20_000)
    with page.expect_download(timeout=20_000) as info:
        page.click(".tw-download")
    data = info.value.path().read_bytes()
    name = info.value.suggested_filename
    assert name.startswith(f"tealeaves-{kind}-") and name.endswith(".png"), name
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert page.locator(".tw-download").first.text_content() == "\u2913 PNG"
    assert log.requests == [] and log.errors == []
