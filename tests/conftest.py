"""Shared fixtures: the embedded model's tokenizer and model, loaded once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def smol_tokenizer():
    """The real SmolLM2-135M-Instruct tokenizer (ChatML template)."""
    from tealeaves_widgets.models.loading import load_embedded_tokenizer

    return load_embedded_tokenizer()


@pytest.fixture(scope="session")
def smol_model():
    """The embedded SmolLM2-135M-Instruct, fp32 on the CPU, wrapped as a `Model`."""
    import tealeaves_widgets as tw

    return tw.load_model()


@pytest.fixture(scope="session")
def executed_quickstart(tmp_path_factory):
    """notebooks/quickstart.ipynb executed once per test session, as
    `python -m tealeaves_widgets quickstart` runs it: (notebook node, workdir)."""
    from tealeaves_widgets.batch.notebooks import execute_notebook, quickstart_path

    workdir = tmp_path_factory.mktemp("quickstart")
    return execute_notebook(quickstart_path(), workdir), workdir


@pytest.fixture
def sent(monkeypatch):
    """What live explorers send, recorded instead of sent (tests/helpers/live_messages.py)."""
    from tests.helpers.live_messages import record_sent

    return record_sent(monkeypatch)
