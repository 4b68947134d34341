"""Executing the example notebooks: the quickstart command and the tests run
them the same way. nbclient and a Python kernel (ipykernel) are needed; the
kernel is the interpreter running this code (jupyter_client maps a kernel
spec's "python" to `sys.executable`)."""

from __future__ import annotations

import shutil
from os import PathLike
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, MissingExtensionError

REPOSITORY_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
"""notebooks/ of a source checkout (an editable install finds it here)."""

EXECUTE_HINT = (
    'Executing notebooks needs nbclient and ipykernel: pip install "tealeaves-widgets[export]".'
)


EXAMPLES = ("quickstart", "compare_variants", "causal", "conversation", "heads")
"""The example notebooks (notebooks/<name>.ipynb), executed by the tests."""


def example_path(name: str) -> Path:
    """notebooks/<name>.ipynb of the source checkout this package runs from."""
    if name not in EXAMPLES:
        raise ArgumentError(f"Unknown example notebook {name!r}; the examples are {EXAMPLES}.")
    path = REPOSITORY_NOTEBOOKS / f"{name}.ipynb"
    if not path.is_file():
        raise ArgumentError(
            f"The {name} notebook is not at {path}: this install has no source checkout. "
            "Clone the repository and `pip install -e .` there, or pass --notebook PATH."
        )
    return path


def quickstart_path() -> Path:
    """notebooks/quickstart.ipynb of the source checkout this package runs from."""
    return example_path("quickstart")


def execute_notebook(
    path: str | PathLike[str], workdir: str | PathLike[str], timeout: int = 600
) -> Any:
    """Copy the notebook at `path` into `workdir`, run every cell there (files
    it writes land in `workdir`) and return the executed nbformat node, with
    its widgets' state saved in its metadata (what `export_html` needs)."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as error:
        raise MissingExtensionError(EXECUTE_HINT) from error
    path, workdir = Path(path), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / path.name
    if copy.resolve() != path.resolve():
        shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    return nb
