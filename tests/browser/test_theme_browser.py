"""JupyterLab's light and dark themes in headless Chromium: exported pages with
JupyterLab 4's --jp-* variables on <body> (tests/helpers/themes.py), every view
drawn in them (backgrounds, text, borders, tooltips, tables, chart axes), the
heatmap's token text readable on every shade, and the default colour scale
showing a quarter of the tokens or more at every layer in both themes."""

from __future__ import annotations

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.widgets import AggregateView, Explorer, VariantDiff
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.fake_runs import fake_run, regions_of, variant_words
from tests.helpers.synthetic import synthetic_run
from tests.helpers.themes import themed

pytestmark = pytest.mark.slow

# WCAG contrast of two computed CSS colours (an alpha is composed over `under`).
CONTRAST = """
function parse(c) { const m = c.match(/[\\d.]+/g).map(Number); return m; }
function over(c, under) {
  const [r, g, b, a = 1] = parse(c);
  const [R, G, B] = parse(under);
  return [r * a + R * (1 - a), g * a + G * (1 - a), b * a + B * (1 - a)];
}
function lum(rgb) {
  const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
}
function contrast(fg, bg) {
  const [x, y] = [lum(over(fg, bg)), lum(parse(bg))].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
"""

# Every token the query sees and not masked: its text colour against the
# colour drawn behind it (read from the canvas; the background where none).
TOKEN_CONTRAST = (
    "() => {"
    + CONTRAST
    + """
  const root = document.querySelector('.tw-heatmap');
  const view = root.tealeavesView.heatmap;
  const canvas = root.querySelector('.tw-backdrop');
  const box = canvas.getBoundingClientRect();
  const k = canvas.width / box.width;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const background = getComputedStyle(root.querySelector('.tw-text')).backgroundColor;
  const worst = [Infinity, -1];
  const spans = Array.from(root.querySelectorAll('.tw-tok'));
  spans.forEach((span, i) => {
    if (span.classList.contains('tw-future') || span.classList.contains('tw-masked')) return;
    const r = span.getClientRects()[0];
    const x = Math.floor((r.left + r.width / 2 - box.left) * k);
    const y = Math.floor((r.top + r.height / 2 - box.top) * k);
    const o = (y * canvas.width + x) * 4;
    const drawn = `rgb(${data[o]}, ${data[o + 1]}, ${data[o + 2]})`;
    const shade = data[o + 3] === 0 ? background : drawn;
    const c = contrast(getComputedStyle(span).color, shade);
    if (c < worst[0]) [worst[0], worst[1]] = [c, view.indexOf(i)];
  });
  return worst;
}"""
)

# Share of the tokens the final query sees (first token masked) drawn above
# 5% of the colour range, per layer, read back from the canvas.
SHARES = """() => {
  const root = document.querySelector('.tw-heatmap');
  const view = root.tealeavesView.heatmap;
  const canvas = root.querySelector('.tw-backdrop');
  const slider = root.querySelector('input[type=range]');
  const box = canvas.getBoundingClientRect();
  const k = canvas.width / box.width;
  const colours = view.drawn.palette.colours;
  const lookup = new Map(colours.map((c, i) => [c, i]));
  const spans = Array.from(root.querySelectorAll('.tw-tok'));
  const shares = [];
  for (let layer = 0; layer <= Number(slider.max); layer++) {
    slider.value = String(layer);
    slider.dispatchEvent(new Event('input', {bubbles: true}));
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let above = 0;
    for (let i = 1; i < spans.length; i++) {
      const r = spans[i].getClientRects()[0];
      const x = Math.floor((r.left + r.width / 2 - box.left) * k);
      const y = Math.floor((r.top + r.height / 2 - box.top) * k);
      const o = (y * canvas.width + x) * 4;
      const drawn = `rgb(${data[o]}, ${data[o + 1]}, ${data[o + 2]})`;
      const index = data[o + 3] === 0 ? 0 : lookup.get(drawn);
      if (index >= 13) above++;
    }
    shares.push(above / (spans.length - 1));
  }
  return shares;
}"""


# Every token of the variant diff the query sees: its text against its own
# background, composed over what lies behind it (changed lines are tinted).
DIFF_CONTRAST = (
    "() => {"
    + CONTRAST
    + """
  function behind(el) {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const c = getComputedStyle(node).backgroundColor;
      const alpha = (parse(c)[3] ?? 1);
      if (alpha > 0) layers.push(c);
      if (alpha === 1) break;
    }
    let base = 'rgb(255, 255, 255)';
    for (const c of layers.reverse()) base = `rgb(${over(c, base).join(', ')})`;
    return base;
  }
  let worst = Infinity;
  // tokens after the query are faint on purpose
  for (const span of document.querySelectorAll('.tw-diff .tw-tok:not(.tw-future)')) {
    worst = Math.min(worst, contrast(getComputedStyle(span).color, behind(span)));
  }
  return worst;
}"""
)


def styles(page, selector: str, *properties: str) -> list[str]:
    return page.locator(selector).first.evaluate(
        f"(el) => {list(properties)}.map((p) => getComputedStyle(el)[p])"
    )


def contrast(page, fg: str, bg: str) -> float:
    return page.evaluate(f"([fg, bg]) => {{ {CONTRAST} return contrast(fg, bg); }}", [fg, bg])


def luminance(page, colour: str) -> float:
    return page.evaluate(f"(c) => {{ {CONTRAST} return lum(parse(c)); }}", colour)


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=400, n_layers=6, n_heads=3, n_queries=3, seed=5)


@pytest.fixture(scope="module")
def views(run):
    """An explorer, a variant diff and an aggregate view on one page."""
    words = variant_words(False)
    terse = variant_words(True)
    cmp = tw.compare(
        {
            "baseline": fake_run(words, regions_of(words), seed=1),
            "terse": fake_run(terse, regions_of(terse), seed=2),
        }
    )
    runs = tw.RunSet(tuple(fake_run(words, regions_of(words), seed=i) for i in range(3)))
    return page_html([Explorer(run), VariantDiff(cmp, layer=2), AggregateView(runs)])


def open_themed(open_page, html: str, theme: str):
    page, log = open_page(themed(html, theme), name=f"{theme}.html")
    page.wait_for_function(
        "document.querySelectorAll('.tw-root').length === 3"
        " && document.querySelector('.tw-backdrop').width > 1"
        " && document.querySelectorAll('.tw-diff .tw-tok').length > 0",
        timeout=30_000,
    )
    return page, log


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_every_view_is_drawn_in_the_theme(open_page, views, theme):
    page, log = open_themed(open_page, views, theme)
    assert log.requests == [] and log.errors == []
    dark = theme == "dark"
    for root in range(3):
        background, colour = (
            page.locator(".tw-root")
            .nth(root)
            .evaluate("el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]")
        )
        assert background == ("rgb(17, 17, 17)" if dark else "rgb(255, 255, 255)")
        assert (luminance(page, colour) > 0.5) == dark  # light text on dark, dark on light
        assert contrast(page, colour, background) >= 7
    # the token text box, the panels' borders, the lens table, the chart axes
    text_bg, text_fg, border = styles(
        page, ".tw-text", "backgroundColor", "color", "borderTopColor"
    )
    assert text_bg == ("rgb(17, 17, 17)" if dark else "rgb(255, 255, 255)")
    assert contrast(page, text_fg, text_bg) >= 7
    assert border == ("rgb(66, 66, 66)" if dark else "rgb(224, 224, 224)")
    th_bg, th_fg = styles(page, ".tw-lens-table th", "backgroundColor", "color")
    assert th_bg == text_bg and contrast(page, th_fg, th_bg) >= 7
    td_fg = styles(page, ".tw-lens-table td.tw-num", "color")[0]
    assert contrast(page, td_fg, text_bg) >= 7
    (axis,) = styles(page, ".tw-curves .tw-axis", "stroke")
    assert axis == ("rgb(97, 97, 97)" if dark else "rgb(189, 189, 189)")
    (tick,) = styles(page, ".tw-curves .tw-tick", "fill")
    assert contrast(page, tick, text_bg) >= 3
    (band_axis,) = styles(page, ".tw-band-chart .tw-axis", "stroke")
    assert band_axis == axis
    head_bg, head_fg = styles(page, ".tw-diff-head", "backgroundColor", "color")
    assert contrast(page, head_fg, head_bg) >= 4.5
    # native controls (selects, checkboxes, the slider) in the theme's scheme, in every view
    schemes = page.locator(".tw-root").evaluate_all(
        "roots => roots.map((r) => getComputedStyle(r.querySelector('select')).colorScheme)"
    )
    assert schemes == ["dark" if dark else "normal"] * 3
    # the tooltip: the inverse of the page
    page.locator(".tw-heatmap .tw-tok").nth(20).hover()
    tip = page.locator(".tw-heatmap .tw-tip")
    tip.wait_for(state="visible")
    tip_bg, tip_fg = styles(page, ".tw-heatmap .tw-tip", "backgroundColor", "color")
    assert (luminance(page, tip_bg) > 0.5) == dark
    assert contrast(page, tip_fg, tip_bg) >= 7


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_token_text_reads_on_every_shade(open_page, views, theme):
    page, _ = open_themed(open_page, views, theme)
    palette_dark = page.evaluate(
        "() => document.querySelector('.tw-heatmap').tealeavesView.heatmap.drawn.palette.dark"
    )
    assert palette_dark == (theme == "dark")
    for scale in ("log-layer", "linear", "layer"):
        page.select_option(".tw-heatmap .tw-scale-select", scale)
        worst, index = page.evaluate(TOKEN_CONTRAST)
        assert worst >= 4.5, f"{theme}, {scale}: contrast {worst:.2f} on shade {index}"
    # the variant diff's tokens, shaded by the change and by the attention
    for shade in ("delta", "attention"):
        page.select_option(".tw-diff-view .tw-colour-select", shade)
        assert page.evaluate(DIFF_CONTRAST) >= 4.5, shade


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_the_default_scale_shows_a_quarter_of_a_long_prompt_at_every_layer(open_page, theme):
    run = synthetic_run(n_tokens=2048, n_layers=6, n_heads=3, n_queries=2, seed=8)
    page, log = open_page(themed(page_html(Explorer(run)), theme), name=f"long-{theme}.html")
    page.wait_for_function("document.querySelector('.tw-backdrop')?.width > 1", timeout=30_000)
    legend = page.locator(".tw-heatmap .tw-scale-note").text_content()
    assert legend.startswith("log, this layer's median to its max (")
    assert legend.endswith("decades); first token masked")
    shares = page.evaluate(SHARES)
    assert len(shares) == run.n_layers and min(shares) >= 0.25, shares
    assert log.errors == []


def test_a_theme_switch_repaints_the_heatmap(open_page, run):
    """JupyterLab switches themes by swapping its variables and setting
    data-jp-theme-light on <body>; the open views follow."""
    page, _ = open_page(themed(page_html(Explorer(run)), "light"))
    page.wait_for_function("document.querySelector('.tw-backdrop')?.width > 1", timeout=30_000)
    palette = "document.querySelector('.tw-heatmap').tealeavesView.heatmap.drawn.palette"
    assert page.evaluate(f"() => {palette}.dark") is False
    page.evaluate(
        "() => { document.body.style.setProperty('--jp-layout-color0', '#111');"
        " document.body.style.setProperty('--jp-ui-font-color0', '#fff');"
        " document.body.setAttribute('data-jp-theme-light', 'false'); }"
    )
    page.wait_for_function(f"{palette}.dark === true", timeout=5_000)
    assert page.evaluate(f"() => {palette}.colours[0]") == "rgb(17, 17, 17)"
