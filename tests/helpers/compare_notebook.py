"""notebooks/compare_variants.ipynb executed once per test session, shared by
tests/integration/test_compare_notebook.py and the browser test (a module-level cache, so
the two modules need no change to the shared conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPORT = "compare_variants_report.html"
"""The HTML report the notebook saves in its working directory."""

_EXECUTED: dict[str, tuple[Any, Path]] = {}


def executed_compare_variants(tmp_path_factory) -> tuple[Any, Path]:
    """(executed notebook node, its working directory)."""
    if "nb" not in _EXECUTED:
        from tealeaves_widgets.batch.notebooks import example_path, execute_notebook

        workdir = tmp_path_factory.mktemp("compare_variants")
        _EXECUTED["nb"] = (execute_notebook(example_path("compare_variants"), workdir), workdir)
    return _EXECUTED["nb"]
