"""Where the built JavaScript lives, and what a widget shows without it."""

from __future__ import annotations

import json
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"
"""Built bundles (`npm run build` in js/, or the hatch build hook on install)."""

BUILD_HINT = (
    "Build it with `npm ci && npm run build` in the repository's js/ folder, "
    "or reinstall with `pip install -e .`, which runs that build."
)


def bundle_path(name: str) -> Path:
    """Path of the built ES module `static/<name>.js` (it may be missing)."""
    return STATIC / f"{name}.js"


def esm(name: str) -> Path | str:
    """The `_esm` of a widget: the built file, or, when it was never built, a
    module that says so inside the widget instead of leaving the cell blank."""
    path = bundle_path(name)
    if path.is_file():
        return path
    message = json.dumps(
        f"tealeaves-widgets: the JavaScript bundle {path} is missing. " + BUILD_HINT
    )
    return (
        "export default { render({ el }) {\n"
        "  const box = document.createElement('div');\n"
        "  box.className = 'tw-error';\n"
        "  box.style.cssText = 'border:1px solid #d33;background:#fff4f4;color:#900;padding:8px';\n"
        f"  box.textContent = {message};\n"
        "  el.replaceChildren(box);\n"
        "} };\n"
    )
