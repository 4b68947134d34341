"""notebooks/causal.ipynb executed once per test session, shared by
tests/integration/test_causal_notebook.py and the browser test (a
module-level cache, as tests/helpers/compare_notebook.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_EXECUTED: dict[str, tuple[Any, Path]] = {}


def executed_causal(tmp_path_factory) -> tuple[Any, Path]:
    """(executed notebook node, its working directory)."""
    if "nb" not in _EXECUTED:
        from tealeaves_widgets.batch.notebooks import example_path, execute_notebook

        workdir = tmp_path_factory.mktemp("causal")
        _EXECUTED["nb"] = (execute_notebook(example_path("causal"), workdir), workdir)
    return _EXECUTED["nb"]
