"""What a fresh interpreter loads: the dependency rules (no torch in the
widgets, no widgets in the core) checked in a process of their own, since
this one has imported everything by the time a test runs."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Sequence


def loaded_after_import(modules: Sequence[str], watched: Sequence[str]) -> list[str]:
    """The names in `watched` (a module, or a package with its submodules) that
    a fresh Python has in sys.modules after importing `modules`."""
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + f"watched = {tuple(watched)!r}\n"
        "print(sorted(w for w in watched"
        " if any(m == w or m.startswith(w + '.') for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"importing {list(modules)} failed:\n{out.stderr}")
    return ast.literal_eval(out.stdout.strip())
