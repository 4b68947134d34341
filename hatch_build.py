"""Hatch build hook: build the widgets' JavaScript when it is missing or stale.

`pip install -e .` (or building a wheel) on a fresh clone first regenerates
the TypeScript types of the wire schema (js/src/schema.gen.ts, from
tealeaves_widgets/widgets/schema.py), then runs `npm ci && npm run build` in
js/, which writes the bundles and the vendored page scripts into
tealeaves_widgets/static/ (git-ignored, shipped in the wheel). Set
TEALEAVES_SKIP_JS=1 to skip the build (the widgets then show a message saying
the bundle is missing).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

JS_INPUTS = ("src", "scripts", "package.json", "package-lock.json", "tsconfig.json")
STATIC_OUTPUTS = (
    "heatmap.js",
    "explorer.js",
    "curves_view.js",
    "lens_view.js",
    "variant_diff.js",
    "aggregate_view.js",
    "ablation_view.js",
    "attribution_view.js",
    "head_gates_view.js",
    "prev_token_view.js",
    "snapshots_view.js",
    "vendor/require.js",
    "vendor/html-manager-embed-amd.js",
)


def _newest_mtime(paths: list[Path]) -> float:
    times = [0.0]
    for path in paths:
        if path.is_dir():
            times += [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
        elif path.is_file():
            times.append(path.stat().st_mtime)
    return max(times)


def js_is_stale(root: Path) -> bool:
    """True when an output is missing or older than any input of the JS build."""
    static = root / "tealeaves_widgets" / "static"
    outputs = [static / name for name in STATIC_OUTPUTS]
    if not all(path.is_file() for path in outputs):
        return True
    inputs = [root / "js" / name for name in JS_INPUTS]
    return _newest_mtime(inputs) > min(path.stat().st_mtime for path in outputs)


def generate_schema(root: Path, log=print) -> None:
    """Write js/src/schema.gen.ts from the Python wire schema. schema.py imports
    the standard library only, so it is loaded by path: the build environment
    need not have the package's dependencies."""
    path = root / "tealeaves_widgets" / "widgets" / "schema.py"
    spec = importlib.util.spec_from_file_location("_tealeaves_wire_schema", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"Cannot load the wire schema from {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # typing resolves the annotations through it
    try:
        spec.loader.exec_module(module)
        if module.write_typescript(str(root / "js" / "src" / "schema.gen.ts")):
            log("tealeaves-widgets: regenerated js/src/schema.gen.ts from widgets/schema.py")
    finally:
        del sys.modules[spec.name]


def build_js(root: Path, log=print) -> None:
    """`npm ci` (when node_modules is missing or older than the lock file) and
    `npm run build` in js/."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "Building tealeaves-widgets needs Node.js >= 20.19 and npm to bundle its "
            "JavaScript (js/ -> tealeaves_widgets/static/). Install Node.js, or set "
            "TEALEAVES_SKIP_JS=1 to install without working widgets."
        )
    js = root / "js"
    modules = js / "node_modules"
    lock = js / "package-lock.json"
    if not modules.is_dir() or modules.stat().st_mtime < lock.stat().st_mtime:
        log("tealeaves-widgets: npm ci in js/")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=js, check=True)
        modules.touch()
    log("tealeaves-widgets: npm run build in js/")
    subprocess.run([npm, "run", "build"], cwd=js, check=True)


class JsBuildHook(BuildHookInterface):
    """Runs the JS build before the wheel (or editable wheel) is assembled."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("TEALEAVES_SKIP_JS"):
            return
        root = Path(self.root)
        if not (root / "js" / "package.json").is_file():
            return  # an sdist built without js/: ship whatever static/ holds
        generate_schema(root, log=self.app.display_info)
        if js_is_stale(root):
            build_js(root, log=self.app.display_info)
        else:
            self.app.display_info("tealeaves-widgets: JavaScript bundle is up to date")
