"""The kernel and the front end talking, in a real JupyterLab: a heatmap whose
per-head rows are over its payload budget asks the kernel for them
(`{v, kind, id}` request, reply of the same id) and draws them; when the
kernel's handler fails, the view shows the kernel's error at once instead of
waiting for its timeout. JupyterLab runs on 127.0.0.1 inside the test."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import wait_until
from tests.helpers.jupyterlab import REPO, jupyterlab, open_notebook, run_cell

pytestmark = pytest.mark.slow

HEAD_REQUEST_TIMEOUT_S = 4  # js/src/heatmap.ts HEAD_REQUEST_TIMEOUT_MS

SETUP = f"""\
import sys
sys.path.insert(0, {str(REPO)!r})
import tealeaves_widgets as tw
from tealeaves_widgets.widgets import PayloadOptions, run_payload
from tests.helpers.synthetic import synthetic_run

run = synthetic_run(n_tokens=300, n_layers=4, n_heads=3, n_queries=2, seed=5)
full = run_payload(run, PayloadOptions(max_bytes=10**9))
heads = sum(h["rows"]["data"].nbytes for h in full["heads"])
# a budget that holds everything but the per-head rows
budget = PayloadOptions(max_bytes=full["budget"]["bytes"] - heads + 64)
view = tw.TokenHeatmap(run, query="q0", options=budget)
assert view.payload["heads"] == [None, None]
view"""

BREAK_HANDLER = """\
def failing(request):
    raise RuntimeError("the kernel lost its rows")

view._handlers = lambda: {"head_rows": failing}
print("handler replaced")"""

READ_BACK = 'print("selected head", view.head, "query", view.query)'


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving one notebook: (url, token)."""
    root = tmp_path_factory.mktemp("lab")
    with jupyterlab(root, {"live.ipynb": [SETUP, BREAK_HANDLER, READ_BACK]}) as server:
        yield server


@pytest.fixture
def notebook_page(browser, lab):
    with open_notebook(browser, lab, "live.ipynb") as opened:
        yield opened


def status(page) -> str:
    return page.locator(".tw-status").first.text_content() or ""


def test_head_rows_come_from_the_kernel_and_its_error_shows_at_once(notebook_page):
    page, errors = notebook_page
    run_cell(page, 0)
    page.wait_for_function(
        "document.querySelector('.tw-heatmap .tw-backdrop')?.width > 1", timeout=60_000
    )
    # a head whose rows are not in the payload: the view asks the kernel
    page.locator(".tw-head-select").first.select_option("1")
    wait_until(page, lambda: status(page) == "", "the kernel's head rows", timeout_ms=15_000)
    run_cell(page, 2)
    output = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-OutputArea-output")
    assert "selected head 1 query q0" in (output.text_content() or "")

    # now the kernel's handler fails: the error shows, long before the timeout
    run_cell(page, 1)
    asked = time.monotonic()
    page.locator(".tw-query-select").first.select_option("final")
    shown = wait_until(
        page,
        lambda: "could not send" in status(page) and status(page),
        "the kernel's error reply",
        timeout_ms=HEAD_REQUEST_TIMEOUT_S * 1000 - 500,
    )
    assert time.monotonic() - asked < HEAD_REQUEST_TIMEOUT_S
    assert shown == (
        'The kernel could not send the per-head rows of query "final": '
        "RuntimeError: the kernel lost its rows"
    )
    assert errors == []
