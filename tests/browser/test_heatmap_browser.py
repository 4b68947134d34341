"""The token heatmap in real headless Chromium, from an exported page with no
kernel and no network: drawing, slider, query, hover, masks, XSS, errors."""

from __future__ import annotations

import pytest

from tealeaves_widgets.widgets import TokenHeatmap
from tealeaves_widgets.widgets.export import page_html
from tests.browser.conftest import wait_until
from tests.helpers.synthetic import synthetic_run

pytestmark = pytest.mark.slow

XSS = " <img src=x onerror=window.__xss=1></script><script>window.__xss=2</script><!--"
DARKEST = "rgb(128, 0, 38)"


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=300, n_layers=6, n_heads=3, n_queries=3, seed=3, extra_text=XSS)


# What is drawn behind each token: the canvas pixel at the centre of its first box.
READ_BACKDROP = """() => {
  const canvas = document.querySelector('.tw-backdrop');
  const origin = canvas.getBoundingClientRect();
  const k = canvas.width / origin.width;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return Array.from(document.querySelectorAll('.tw-tok'), (span) => {
    const r = span.getClientRects()[0];
    const x = Math.floor((r.left + r.width / 2 - origin.left) * k);
    const y = Math.floor((r.top + r.height / 2 - origin.top) * k);
    const o = (y * canvas.width + x) * 4;
    return data[o + 3] === 0 ? WHITE : `rgb(${data[o]}, ${data[o + 1]}, ${data[o + 2]})`;
  });
}""".replace("WHITE", "'rgb(255, 255, 255)'")


def colours(page) -> list[str]:
    return page.evaluate(READ_BACKDROP)


def wait_drawn(page, n_tokens: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('.tw-tok').length === {n_tokens}"
        " && document.querySelector('.tw-backdrop').width > 1",
        timeout=20_000,
    )


@pytest.fixture
def heatmap(open_page, run):
    page, log = open_page(page_html(TokenHeatmap(run, layer=0)))
    wait_drawn(page, run.n_tokens)
    return page, log


def test_renders_offline_without_errors(heatmap, run):
    page, log = heatmap
    assert log.requests == []
    assert log.errors == []
    texts = page.eval_on_selector_all(".tw-tok", "spans => spans.map(s => s.textContent)")
    assert texts[: run.n_tokens] == [t.replace("\n", "\u21b5\n") for t in run.tokens]
    assert page.locator("input[type=range]").get_attribute("max") == str(run.n_layers - 1)


def test_slider_changes_the_colours(heatmap, run):
    page, _ = heatmap
    before = colours(page)
    assert len(set(before)) > 10  # a real heatmap, not one colour
    page.locator("input[type=range]").evaluate(
        "el => { el.value = '5'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    after = colours(page)
    assert page.locator(".tw-layer-label").text_content() == "layer 5 / 5"
    assert sum(a != b for a, b in zip(before, after, strict=True)) > run.n_tokens // 4


def test_darkest_token_is_the_most_attended_unmasked_one(heatmap, run):
    page, _ = heatmap
    row = run.attention[0, run.query_index("final")].copy()
    row[0] = 0  # the sink is masked by default
    page.select_option(".tw-scale-select", "layer")
    drawn = colours(page)
    assert drawn[int(row.argmax())] == DARKEST
    assert drawn[0] == "rgb(255, 255, 255)"


def test_backgrounds_follow_the_text_when_it_rewraps(heatmap, run):
    page, _ = heatmap
    page.select_option(".tw-scale-select", "layer")
    row = run.attention[0, run.query_index("final")].copy()
    row[0] = 0
    darkest = int(row.argmax())
    token = page.locator(".tw-tok").nth(darkest)
    top_before = token.bounding_box()["y"]
    page.set_viewport_size({"width": 520, "height": 900})
    wait_until(page, lambda: token.bounding_box()["y"] > top_before, "the text to rewrap")
    wait_until(page, lambda: colours(page)[darkest] == DARKEST, "the backdrop to follow")
    assert colours(page)[darkest] == DARKEST


def test_picking_a_query_greys_the_tokens_after_it(heatmap, run):
    page, _ = heatmap
    page.select_option(".tw-query-select", "q0")
    pos = run.queries["q0"]
    future = page.eval_on_selector_all(
        ".tw-tok", "spans => spans.map(s => s.classList.contains('tw-future'))"
    )
    assert future == [i > pos for i in range(run.n_tokens)]
    drawn = colours(page)
    assert set(drawn[pos + 1 :]) == {"rgb(255, 255, 255)"}
    assert len(set(drawn[: pos + 1])) > 3


def test_head_and_scale_selectors_redraw(heatmap):
    page, _ = heatmap
    averaged = colours(page)
    page.select_option(".tw-head-select", "2")
    one_head = colours(page)
    assert one_head != averaged
    page.select_option(".tw-scale-select", "log")
    assert colours(page) != one_head
    assert page.locator(".tw-status").text_content() == ""


def test_masking_the_template_clears_its_colour(heatmap, run):
    page, _ = heatmap
    page.check(".tw-mask-template")
    drawn = colours(page)
    template = run.regions["template"].token_indices
    assert {drawn[i] for i in template} == {"rgb(255, 255, 255)"}
    assert page.locator(".tw-tok.tw-masked").count() == len(template)


def test_hover_shows_the_token_details(heatmap, run):
    page, _ = heatmap
    index = run.regions["question"].token_indices[1]
    page.locator(".tw-tok").nth(int(index)).hover()
    tip = page.locator(".tw-tip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert f'token: "{run.tokens[index]}"' in text
    assert f"id: {run.token_ids[index]}" in text
    assert f"index: {index}" in text
    assert "region: question" in text
    assert "weight: " in text and "rank: " in text


def test_markup_in_the_prompt_is_shown_as_text(heatmap, run):
    page, log = heatmap
    assert page.evaluate("window.__xss") is None
    assert page.locator(".tw-root img, .tw-root script").count() == 0
    index = run.tokens.index(XSS)
    assert page.locator(".tw-tok").nth(index).text_content() == XSS
    assert log.errors == []


def test_line_breaks_stay_line_breaks(heatmap, run):
    page, _ = heatmap
    newline = next(i for i, t in enumerate(run.tokens) if t.startswith("\n") and len(t) > 1)
    tops = page.eval_on_selector_all(
        ".tw-tok",
        f"s => [s[{newline}].getClientRects()[0].top, s[{newline}].getClientRects()[1].top]",
    )
    assert tops[1] > tops[0]


def test_a_schema_mismatch_is_explained_inside_the_widget(open_page, run):
    widget = TokenHeatmap(run)
    widget.payload = {**widget.payload, "schema_version": 99}
    page, _ = open_page(page_html(widget))
    error = page.locator(".tw-error")
    error.wait_for(timeout=20_000)
    assert "schema 99" in error.text_content()
    assert "Reinstall tealeaves-widgets" in error.text_content()
