"""The kernel and the front end talking, in a real JupyterLab: a heatmap whose
per-head rows are over its payload budget asks the kernel for them
(`{v, kind, id}` request, reply of the same id) and draws them; when the
kernel's handler fails, the view shows the kernel's error at once instead of
waiting for its timeout. JupyterLab runs on 127.0.0.1 inside the test."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.conftest import wait_until

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
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


def _notebook(cells: list[str]) -> dict:
    return {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
             "execution_count": None}
            for source in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving one notebook: (url, token)."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        pytest.fail("JupyterLab is needed: pip install 'jupyterlab>=4'.", pytrace=False)
    root = tmp_path_factory.mktemp("lab")
    notebook = _notebook([SETUP, BREAK_HANDLER, READ_BACK])
    (root / "live.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    port, token = _free_port(), secrets.token_hex(16)
    log = open(root / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                log.close()
                pytest.fail(f"JupyterLab did not start:\n{(root / 'server.log').read_text()}")
            time.sleep(0.5)
    yield url, token
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture
def notebook_page(browser, lab):
    url, token = lab
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/lab/tree/live.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    # the kernel is started and connected (the status bar names it, idle)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
    yield page, errors
    context.close()


def run_cell(page, index: int) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        "(i) => { const p = document.querySelectorAll('.jp-Notebook .jp-Cell')[i]"
        ".querySelector('.jp-InputPrompt'); return p && /\\[\\d+\\]/.test(p.textContent); }",
        arg=index,
        timeout=120_000,
    )


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
