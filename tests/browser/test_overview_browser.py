"""The overview beside the heatmap's text, on a ~2,000-token prompt in headless
Chromium (an exported page, no kernel): a region's name scrolls the text to
it, the layer x token map and the layer x region matrix jump to a layer and a
token, and the ranked tokens are those of `run.attention`."""

from __future__ import annotations

import numpy as np
import pytest

from tealeaves_widgets.widgets import Explorer
from tealeaves_widgets.widgets.export import page_html
from tests.browser.test_theme_browser import CONTRAST
from tests.helpers.synthetic import synthetic_run
from tests.helpers.themes import themed

pytestmark = pytest.mark.slow

N_TOKENS = 2000
VIEW = "document.querySelector('.tw-heatmap').tealeavesView"


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=N_TOKENS, n_layers=8, n_heads=3, n_queries=2, seed=4)


@pytest.fixture
def explorer(open_page, run):
    page, log = open_page(page_html(Explorer(run, layer=3)))
    page.wait_for_function(
        "document.querySelector('.tw-backdrop')?.width > 1"
        " && document.querySelector('.tw-minimap-canvas').width > 1",
        timeout=60_000,
    )
    return page, log


def in_view(page, token: int) -> bool:
    """Whether token `token`'s box lies inside the text box's visible part."""
    return page.evaluate(
        """(i) => {
      const box = document.querySelector('.tw-text').getBoundingClientRect();
      const tok = document.querySelectorAll('.tw-tok')[i].getBoundingClientRect();
      return tok.top >= box.top - 1 && tok.bottom <= box.bottom + 1;
    }""",
        token,
    )


def scroll_top(page) -> float:
    return page.evaluate("() => document.querySelector('.tw-text').scrollTop")


def layer_shown(page) -> str:
    return page.locator(".tw-heatmap .tw-layer-label").first.text_content()


def set_layer(page, layer: int) -> None:
    page.locator("input[type=range]").first.evaluate(
        "(el, layer) => { el.value = String(layer);"
        " el.dispatchEvent(new Event('input', {bubbles: true})); }",
        layer,
    )


def ranked(page) -> list[tuple[int, float]]:
    return page.eval_on_selector_all(
        ".tw-top-list li",
        "items => items.filter((li) => li.style.visibility !== 'hidden')"
        ".map((li) => [Number(li.dataset.pos), Number(li.dataset.weight)])",
    )


def expected_ranking(run, layer: int, mask_sink: bool = True, k: int = 10):
    """The final query's row at `layer` as the page holds it (float16), ranked
    by weight then position; the first token left out when it is masked."""
    q = run.query_index("final")
    row = run.attention[layer, q].astype(np.float16).astype(np.float32)
    positions = np.arange(run.queries["final"] + 1)
    if mask_sink:
        positions = positions[1:]
    order = sorted(positions, key=lambda i: (-row[i], i))[:k]
    return [(int(i), float(row[i])) for i in order]


def test_a_region_name_scrolls_the_text_to_its_first_token(explorer, run):
    page, log = explorer
    first = int(run.regions["question"].token_indices.min())
    assert first > N_TOKENS - 40 and not in_view(page, first)
    chip = page.locator(".tw-heatmap > .tw-legend .tw-pick", has_text="question")
    chip.click()
    page.wait_for_function(f"{VIEW}.heatmap.revealed === {first}")
    assert in_view(page, first)
    end = page.evaluate(
        "() => { const t = document.querySelector('.tw-text');"
        " return t.scrollHeight - t.clientHeight; }"
    )
    assert end > 1_000 and scroll_top(page) > 0.8 * end  # near the end of a 2,000-token prompt
    highlighted = page.locator(".tw-tok.tw-in-region").count()
    assert highlighted == len(run.regions["question"].token_indices)
    # the page itself did not scroll: only the text box
    assert page.evaluate("() => window.scrollY") == 0
    # another region, near the top
    page.locator(".tw-heatmap > .tw-legend .tw-pick", has_text="system").click()
    system = int(run.regions["system"].token_indices.min())
    assert in_view(page, system) and scroll_top(page) < 200
    assert log.errors == []


def test_a_click_on_the_map_goes_to_its_layer_and_token(explorer, run):
    page, log = explorer
    canvas = page.locator(".tw-minimap-canvas")
    cols = int(canvas.get_attribute("width"))
    box = canvas.bounding_box()
    assert abs(cols - box["width"]) <= 1  # a column per pixel: 2,000 tokens in fewer
    layer, col = 6, int(0.55 * cols)
    page.mouse.click(
        box["x"] + (col + 0.5) * box["width"] / cols,
        box["y"] + (layer + 0.5) * box["height"] / run.n_layers,
    )
    assert layer_shown(page) == f"layer {layer} / {run.n_layers - 1}"
    assert page.locator("input[type=range]").first.input_value() == str(layer)
    token = page.evaluate(f"() => {VIEW}.heatmap.revealed")
    assert in_view(page, token)
    assert scroll_top(page) > 1_000
    # the token is the most attended of the column clicked, at that layer
    row = run.attention[layer, run.query_index("final")].astype(np.float16)
    tokens = [i for i in range(N_TOKENS) if i * cols // N_TOKENS == col]
    assert token in tokens
    assert row[token] == max(row[i] for i in tokens)
    # the layer marker moved to that row
    marker = page.locator(".tw-minimap-layer").bounding_box()
    rows = float(box["height"]) / run.n_layers
    assert marker["y"] - box["y"] == pytest.approx(layer * rows, abs=0.5)
    assert marker["height"] == pytest.approx(rows, abs=0.5)
    assert log.errors == []


def test_the_ranked_tokens_are_run_attention_at_the_layer(explorer, run):
    page, _ = explorer
    for layer in (3, 0, run.n_layers - 1):
        set_layer(page, layer)
        want = expected_ranking(run, layer)
        got = ranked(page)
        assert [pos for pos, _ in got] == [pos for pos, _ in want]
        assert [w for _, w in got] == pytest.approx([w for _, w in want], rel=1e-6)
        note = page.locator(".tw-top-note").text_content()
        prefix = "first token (the sink) left out, "
        assert note.startswith(prefix) and note.endswith('as "mask first token" is on.')
        sink = float(note.removeprefix(prefix).split(" ")[0])
        assert sink == pytest.approx(run.attention[layer, run.query_index("final"), 0], abs=1e-3)
    # the sink counted: it leads the list, and the note says it is in
    page.uncheck(".tw-mask-sink")
    assert ranked(page)[0][0] == 0
    assert [pos for pos, _ in ranked(page)] == [
        pos for pos, _ in expected_ranking(run, run.n_layers - 1, mask_sink=False)
    ]
    assert "first token included" in page.locator(".tw-top-note").text_content()
    # a click on a listed token scrolls the text to it
    item = page.locator(".tw-top-list li").nth(4)
    pos = int(item.get_attribute("data-pos"))
    page.evaluate("() => { document.querySelector('.tw-text').scrollTop = 0; }")
    item.click()
    assert page.evaluate(f"() => {VIEW}.heatmap.revealed") == pos
    assert in_view(page, pos)


def test_the_matrix_shows_the_curves_and_a_click_goes_to_a_region(explorer, run):
    page, log = explorer
    names = list(run.regions)
    matrix = page.evaluate(
        f"""() => {{
      const v = {VIEW};
      const m = v.heatmap.overview.matrix;
      return Array.from({{length: {run.n_layers}}}, (_, l) =>
        Array.from({{length: {len(names)}}}, (_, r) => [m.value(l, r), v.curves.value(l, r)]));
    }}"""
    )
    values = np.array(matrix)
    assert np.array_equal(values[..., 0], values[..., 1])  # the curves' own numbers
    python = run.curves(query="final", normalize="raw")[names].to_numpy()
    assert values[..., 0] == pytest.approx(python, abs=1e-5)
    # a click on (layer 5, "context"): that layer, that region, its most attended token in view
    chart = page.locator(".tw-matrix")
    layout = page.evaluate(
        """() => { const cells = document.querySelectorAll('.tw-matrix-cell');
      return Array.from(cells, (c) => { const b = c.getBoundingClientRect();
        return [b.x + b.width / 2, b.y + b.height / 2]; }); }"""
    )
    r = names.index("context")
    x, y = layout[5 * len(names) + r]
    page.mouse.click(x, y)
    assert layer_shown(page) == f"layer 5 / {run.n_layers - 1}"
    assert page.evaluate(f"() => {VIEW}.heatmap.model.get('region')") == "context"
    token = page.evaluate(f"() => {VIEW}.heatmap.revealed")
    context = run.regions["context"].token_indices
    row = run.attention[5, run.query_index("final")].astype(np.float16)
    assert token in context and row[token] == row[context].max()
    assert in_view(page, token)
    assert chart.locator(".tw-matrix-name.tw-selected").count() == 1
    assert log.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_overview_reads_in_both_themes(open_page, run, theme):
    page, log = open_page(themed(page_html(Explorer(run, layer=3)), theme), name=f"{theme}.html")
    page.wait_for_function(
        "document.querySelector('.tw-minimap-canvas')?.width > 1", timeout=60_000
    )
    worst = page.evaluate(
        "() => {"
        + CONTRAST
        + """
      const bg = getComputedStyle(document.querySelector('.tw-root')).backgroundColor;
      const texts = ['.tw-top-token', '.tw-top-weight', '.tw-top-note', '.tw-minimap-head b',
                     '.tw-matrix-panel .tw-overview-note', '.tw-top-panel b'];
      const colour = (s) => getComputedStyle(document.querySelector(s)).color;
      const worst = texts.map((s) => contrast(colour(s), bg));
      const name = getComputedStyle(document.querySelector('.tw-matrix-name')).fill;
      worst.push(contrast(name, bg));
      return Math.min(...worst);
    }"""
    )
    assert worst >= 4.5
    # the map's empty cells (here the tokens after the query) show the page's background
    page.select_option(".tw-query-select", "q0")
    alpha = page.evaluate(
        "() => { const c = document.querySelector('.tw-minimap-canvas');"
        " return c.getContext('2d').getImageData(c.width - 1, 0, 1, 1).data[3]; }"
    )
    assert alpha == 0
    assert log.errors == []
