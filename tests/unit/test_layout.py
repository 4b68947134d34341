"""The package's layout holds: imports go one way (the import contracts in
pyproject.toml, checked with import-linter, imports inside functions
included), every subpackage says what it holds and may import, and every
error is a `TealeavesError` that also refines a builtin."""

from __future__ import annotations

import importlib
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets import errors

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("core", "prompt", "models", "io", "present", "widgets", "batch")
LINT = (
    "import sys\n"
    "sys.argv = ['lint-imports', '--no-cache', 'pyproject.toml']\n"
    "from importlinter.cli import lint_imports_command\n"
    "lint_imports_command()\n"
)


def _lint(where: Path) -> subprocess.CompletedProcess:
    """lint-imports with the pyproject.toml of `where`, on the package found there."""
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=where,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("core/run.py", "from ..widgets.explorer import Explorer", "core is not allowed"),
        ("widgets/wire.py", "from ..models.model import Model", "models"),
        ("prompt/case.py", "import torch", "torch"),
        ("widgets/wire.py", "import matplotlib.pyplot", "matplotlib"),
    ],
)
def test_a_wrong_import_inside_a_function_breaks_a_contract(
    tmp_path, module, wrong_import, contract
):
    """The contracts catch an import hidden in a function body, on a copy of the package."""
    copy = tmp_path / "tealeaves_widgets"
    shutil.copytree(ROOT / "tealeaves_widgets", copy, ignore=shutil.ignore_patterns("static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(copy / module, "a", encoding="utf-8") as file:
        file.write(f"\n\ndef _wrong():\n    {wrong_import}\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "BROKEN" in result.stdout and contract in result.stdout


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_subpackage_says_what_it_holds_and_may_import(name):
    module = importlib.import_module(f"tealeaves_widgets.{name}")
    doc = inspect.getdoc(module) or ""
    assert len(doc.split()) >= 25
    assert "May import" in doc or "may import" in doc


def _error_classes() -> list[type]:
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    ]


def test_every_error_is_exported_and_refines_a_builtin():
    classes = _error_classes()
    assert len(classes) >= 20
    builtins = (ValueError, LookupError, OSError, ImportError, MemoryError, RuntimeError)
    for cls in classes:
        assert getattr(tw, cls.__name__) is cls, f"tw.{cls.__name__} is not exported"
        assert cls.__name__ in errors.__all__
        if issubclass(cls, Warning) or cls is errors.TealeavesError:
            continue
        assert issubclass(cls, errors.TealeavesError), cls
        assert issubclass(cls, builtins), f"{cls.__name__} refines no builtin"


def test_no_module_raises_the_bare_base_class():
    """Every `raise` names a specific error class, so `except` can tell them apart."""
    offenders = []
    for path in (ROOT / "tealeaves_widgets").rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "raise TealeavesError(" in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []


def test_the_test_helpers_are_not_shipped():
    assert not (ROOT / "tealeaves_widgets" / "widgets" / "synthetic.py").exists()
    shipped = {p.stem for p in (ROOT / "tealeaves_widgets").rglob("*.py")}
    assert not shipped & {"synthetic", "tiny_models", "fake_runs"}
