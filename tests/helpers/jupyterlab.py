"""A JupyterLab server started inside a browser test, on 127.0.0.1, serving
notebooks written for the test, and the steps a user takes in it (open a
notebook, run a cell). Used by tests/browser/test_jupyterlab_*.py."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
"""The repository root: notebooks put it first on sys.path, so the kernel
imports this checkout's package and tests.helpers."""


def notebook(cells: list[str]) -> dict:
    """An nbformat 4 notebook of code cells, for a Python 3 kernel."""
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(root: Path, notebooks: dict[str, list[str]]) -> Iterator[tuple[str, str]]:
    """A JupyterLab server on 127.0.0.1 serving `notebooks` (file name -> code
    cells) from `root`: (url, token). Stopped on exit."""
    try:
        import jupyterlab as _  # noqa: F401
    except ImportError:
        pytest.fail("JupyterLab is needed: pip install 'jupyterlab>=4'.", pytrace=False)
    for name, cells in notebooks.items():
        (root / name).write_text(json.dumps(notebook(cells)), encoding="utf-8")
    port, token = free_port(), secrets.token_hex(16)
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
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(root / 'server.log').read_text()}")
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextlib.contextmanager
def open_notebook(browser, lab: tuple[str, str], name: str):
    """`name` opened in JupyterLab with its kernel started and idle: (page,
    errors the page raised)."""
    url, token = lab
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{url}/lab/tree/{name}?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
        # the kernel is started and connected (the status bar names it, idle)
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
        yield page, errors
    finally:
        context.close()


def run_cell(page, index: int, timeout_ms: int = 120_000) -> None:
    """Run cell `index` (Shift+Enter) and wait until it has finished."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        "(i) => { const p = document.querySelectorAll('.jp-Notebook .jp-Cell')[i]"
        ".querySelector('.jp-InputPrompt'); return p && /\\[\\d+\\]/.test(p.textContent); }",
        arg=index,
        timeout=timeout_ms,
    )


def cell_output(page, index: int) -> str:
    """The text of cell `index`'s outputs."""
    output = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea-output")
    return "\n".join(text or "" for text in output.all_text_contents())
