"""The generation view in headless Chromium, from an exported page opened
offline: one chip per step with Python's token text (markup shown as text),
the chosen token's probability and the top-k cells equal Python's numbers,
and a click on a chip or a table row makes that step the explorer's query
with no kernel."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.widgets import GenerationView
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.tiny_models import make_tiny_model

pytestmark = pytest.mark.slow

READY = "document.querySelectorAll('.tw-gen-chip').length > 1"


@pytest.fixture(scope="module")
def generation(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    case = tw.Case(system="Be brief.", user="Is <b>x</b> bold? Answer & explain.")
    return model.generate_capture(case, max_new_tokens=12, top_k_probs=5)


def test_the_steps_show_python_s_numbers_and_a_click_selects_the_step(open_page, generation):
    gen = generation
    page, log = open_page(page_html(GenerationView(gen)), name="generation.html")
    page.wait_for_function(READY, timeout=20_000)
    chips = page.locator(".tw-gen-chip")
    assert chips.count() == gen.n_steps
    # markup in the prompt is text, never HTML
    assert page.locator(".tw-root b:text-is('x')").count() == 0
    assert "<b>x</b>" in page.locator(".tw-root").first.text_content()
    # the top-k cells: Python's probabilities, the chosen one outlined
    rows = page.locator(".tw-gen-table tbody tr")
    assert rows.count() == gen.n_steps
    for step in (0, gen.n_steps - 1):
        cells = rows.nth(step).locator("td.tw-gen-cell")
        assert cells.count() == 5
        for rank in range(5):
            value = float(cells.nth(rank).get_attribute("data-value"))
            assert value == pytest.approx(np.exp(gen.top_logprobs[step, rank]), rel=1e-5)
        if gen.token_ids[step] in gen.top_ids[step]:
            chosen = rows.nth(step).locator("td.tw-gen-chosen")
            assert chosen.count() >= 1
    # the query starts at step 0; a click on a chip moves the explorer there
    assert page.locator(".tw-gen-chip.tw-selected").get_attribute("data-step") == "0"
    chips.nth(5).click()
    page.wait_for_function(
        "document.querySelector('.tw-gen-chip.tw-selected')?.dataset.step === '5'", timeout=5_000
    )
    select = page.locator("select.tw-query-select")
    assert select.input_value() == "step:5"
    rows.nth(2).click()
    page.wait_for_function(
        "document.querySelector('.tw-gen-table tr.tw-current')?.dataset.step === '2'",
        timeout=5_000,
    )
    assert select.input_value() == "step:2"
    # the explorer's query select lists every step
    assert select.locator("option").count() == gen.n_steps
    assert log.requests == [] and log.errors == []
