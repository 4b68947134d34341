"""`tw.Linked` in headless Chromium, from an exported page opened offline:
moving the explorer's layer slider moves the residual view's cursor, and a
step picked in the generation view becomes the residual view's query, with
no kernel (the jslinks are in the page)."""

from __future__ import annotations

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.errors import ArgumentError, ArgumentTypeError
from tealeaves_widgets.widgets import GenerationView, Linked, ResidualView
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.tiny_models import make_tiny_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def linked(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    gen = model.generate_capture(tw.Case(user="Say something."), max_new_tokens=6)
    decomposition = gen.run.residual_decomposition()
    return gen, Linked(GenerationView(gen, layer=0), ResidualView(decomposition, layer=2))


def test_the_views_start_at_the_first_one_s_selection(linked):
    gen, view = linked
    explorer, residual = view.children
    assert residual.layer == 0 and residual.query == "step:0"
    assert view.linked == [
        ("layer", "GenerationView", "ResidualView"),
        ("query", "GenerationView", "ResidualView"),
    ]
    with pytest.raises(ArgumentError, match="at least two views"):
        Linked(explorer)
    with pytest.raises(ArgumentTypeError, match="argument 1 is a Run"):
        Linked(explorer, gen.run)


def test_the_cursors_follow_each_other_in_an_exported_page(open_page, linked):
    gen, view = linked
    page, log = open_page(page_html(view), name="linked.html")
    page.wait_for_function(
        "document.querySelectorAll('.tw-gen-chip').length > 1 && "
        "document.querySelector('.tw-residual-view') !== null",
        timeout=20_000,
    )
    caption = page.locator(".tw-residual-view .tw-residual-table-panel .tw-panel-header")
    assert "layer 0, query step:0" in caption.text_content()
    slider = page.locator(".tw-root input[type=range]").first
    slider.fill("2")
    page.wait_for_function(
        "document.querySelector('.tw-residual-table-panel .tw-panel-header')"
        ".textContent.includes('layer 2,')",
        timeout=5_000,
    )
    page.locator(".tw-gen-chip").nth(3).click()
    page.wait_for_function(
        "document.querySelector('.tw-residual-table-panel .tw-panel-header')"
        ".textContent.includes('query step:3')",
        timeout=5_000,
    )
    assert log.requests == [] and log.errors == []
