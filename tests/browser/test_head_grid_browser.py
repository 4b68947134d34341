"""The head grid view in headless Chromium, from an exported page opened
offline: no console error, no request; a thumbnail per head; a click on one
enlarges that head (the large map's pixels change); hovering the large map
shows the query token, the key token and Python's weight; the token
"<b>x</b>" is shown as text; a prompt above 1,024 tokens arrives pooled; in
JupyterLab's light and dark themes the text reads (WCAG 4.5:1).

Screenshots go to $TEALEAVES_SCREENSHOTS when it is set."""

from __future__ import annotations

import numpy as np
import pytest

from tealeaves_widgets.core.head_grid import HeadGrid
from tealeaves_widgets.widgets import HeadGridView
from tealeaves_widgets.widgets.export import page_html
from tests.browser.test_causal_views_browser import CONTRAST, screenshot
from tests.helpers.synthetic import MARKUP_TOKEN
from tests.helpers.themes import themed

pytestmark = pytest.mark.slow

READY = "document.querySelectorAll('.tw-head-thumb canvas').length > 0"
WORDS = (
    "<|im_start|>", "user", "\n", "The", " quick", " brown", " fox", " jumps", " over", " the",
    " lazy", " dog", ".", " " + MARKUP_TOKEN, " The", " quick", " brown", " fox", " sleeps",
    " under", " the", " old", " tree", ".", "<|im_end|>", "\n", "<|im_start|>", "assistant", "\n",
    " A", " fox", " jumps", ".",
)  # fmt: skip


def synthetic_grid(tokens: tuple[str, ...] = WORDS, n_heads: int = 9) -> HeadGrid:
    """Causal rows of nine kinds of head: sink, previous token, self, uniform,
    local window, induction-like (the token after the last copy), and mixes."""
    T = len(tokens)
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    causal = j <= i
    kinds = []
    sink = np.where(j == 0, 8.0, 1.0)
    kinds.append(sink)
    kinds.append(np.where(j == i - 1, 12.0, 0.5) + np.where(j == 0, 4.0, 0.0))
    kinds.append(np.where(j == i, 10.0, 0.5))
    kinds.append(np.ones((T, T)))
    kinds.append(np.exp(-np.abs(i - j) / 2.0) * 4 + np.where(j == 0, 2.0, 0.0))
    same = np.array([[tokens[a] == tokens[b] for b in range(T)] for a in range(T)])
    after_copy = np.zeros((T, T))
    after_copy[:, 1:] = same[:, :-1] & (np.arange(T)[None, :-1] < np.arange(T)[:, None])
    kinds.append(after_copy * 10 + 0.3 + np.where(j == 0, 3.0, 0.0))
    kinds.append(np.where(j == 0, 20.0, 0.2))
    kinds.append(1.0 + (j % 3 == 0) * 3.0)
    kinds.append(np.where(j >= i - 4, 3.0, 0.2))
    weights = np.stack([np.where(causal, k, 0.0) for k in kinds[:n_heads]])
    patterns = weights / weights.sum(-1, keepdims=True)
    return HeadGrid(
        layer=3,
        patterns=patterns.astype(np.float16),
        tokens=tokens,
        pool=1,
        model_info={"model_id": "synthetic", "n_layers": 30, "n_kv_heads": 3},
    )


def large_pixels(page) -> str:
    return page.locator(".tw-head-canvas").evaluate("c => c.toDataURL()")


def test_a_click_enlarges_the_head_and_the_tooltip_reads_python_s_weight(open_page, tmp_path):
    grid = synthetic_grid()
    page, log = open_page(page_html(HeadGridView(grid)), name="head-grid.html")
    page.wait_for_function(READY, timeout=20_000)
    thumbs = page.locator(".tw-head-thumb")
    assert thumbs.count() == 9
    assert thumbs.nth(4).text_content() == "H4 (KV 1)"
    before = large_pixels(page)
    assert page.locator(".tw-head-canvas").get_attribute("data-head") == "0"
    # the large map is not blank: most causal cells are painted
    painted = page.locator(".tw-head-canvas").evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let k = 3; k < d.length; k += 4) if (d[k] > 0) n++; return n; }"""
    )
    T = grid.n_tokens
    assert painted == T * (T + 1) // 2
    screenshot(page, "head-grid-head0.png", tmp_path)
    thumbs.nth(1).click()
    assert page.locator(".tw-head-canvas").get_attribute("data-head") == "1"
    assert large_pixels(page) != before
    assert page.locator(".tw-head-title").text_content() == "Head 1 (KV 0) of layer 3"
    assert "tw-selected" in (thumbs.nth(1).get_attribute("class") or "")
    # hover the cell (query 14, key 13): the previous-token weight of " <b>x</b>" -> " The"
    canvas = page.locator(".tw-head-canvas")
    cell = canvas.evaluate("c => c.clientWidth") / T  # positions are in the padding box
    canvas.hover(position={"x": (13 + 0.5) * cell, "y": (14 + 0.5) * cell})
    tip = page.locator(".tw-tip")
    assert tip.get_attribute("data-query") == "14" and tip.get_attribute("data-key") == "13"
    text = tip.text_content()
    assert 'query: 14 " The"' in text and f'key: 13 " {MARKUP_TOKEN}"' in text
    assert f"{float(grid.patterns[1, 14, 13]):.4f}" in text
    canvas.hover(position={"x": (20 + 0.5) * cell, "y": (2 + 0.5) * cell})
    assert "masked" in tip.text_content()
    # the colour scale leaving the first column out changes the map and says so
    pixels = large_pixels(page)
    page.locator(".tw-scale-select").select_option("no-first")
    assert large_pixels(page) != pixels
    assert "left out of the colour range" in page.locator(".tw-head-note").text_content()
    # token text is text: the label shows "<b>x</b>", no bold x anywhere
    labels = page.locator(".tw-head-queries .tw-head-label").all_text_contents()
    assert f" {MARKUP_TOKEN}" in labels
    assert page.locator(".tw-root b:text-is('x')").count() == 0
    page.locator(".tw-scale-select").select_option("sqrt")
    canvas.hover(position={"x": (13 + 0.5) * cell, "y": (14 + 0.5) * cell})
    screenshot(page, "head-grid-head1.png", tmp_path)
    assert log.requests == [] and log.errors == []


def test_a_long_prompt_arrives_pooled(open_page, tmp_path):
    tokens = tuple(WORDS[k % len(WORDS)] for k in range(1500))
    grid = synthetic_grid(tokens, n_heads=3)
    page, log = open_page(page_html(HeadGridView(grid, head=1)), name="head-grid-long.html")
    page.wait_for_function(READY, timeout=30_000)
    canvas = page.locator(".tw-head-canvas")
    assert canvas.evaluate("c => [c.width, c.height]") == [750, 750]
    assert page.locator(".tw-head-thumb canvas").first.evaluate("c => c.width") == 94
    assert "blocks of 2" in page.locator(".tw-diff-title").text_content()
    block = canvas.evaluate("c => c.clientWidth") / 750  # under a pixel: the pointer lands near
    canvas.hover(position={"x": 187.5 * block, "y": 375.5 * block})
    tip = page.locator(".tw-tip")
    q, k = int(tip.get_attribute("data-query")), int(tip.get_attribute("data-key"))
    assert abs(q - 375) <= 2 and abs(k - 187) <= 2
    text = tip.text_content()
    assert f"queries: {2 * q}\u2013{2 * q + 1}" in text
    assert f"keys: {2 * k}\u2013{2 * k + 1}" in text
    weight = float(grid.pooled().patterns[1, q, k])
    assert f"weight: {weight:.4f}" in text and "pooled" in text
    screenshot(page, "head-grid-long.png", tmp_path)
    assert log.requests == [] and log.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_head_grid_reads_in_both_themes(open_page, theme, tmp_path):
    page, log = open_page(
        themed(page_html(HeadGridView(synthetic_grid())), theme), name=f"hg-{theme}.html"
    )
    page.wait_for_function(READY, timeout=20_000)
    contrasts = page.evaluate(CONTRAST, ".tw-head-label, .tw-diff-title, .tw-head-note")
    assert contrasts and min(contrasts) >= 4.5, contrasts
    screenshot(page, f"head-grid-{theme}.png", tmp_path)
    assert log.requests == [] and log.errors == []
