"""Size of the exported quickstart notebook: one standalone HTML file.

Usage: python benchmarks/export_size.py [--out quickstart.html]

Executes notebooks/quickstart.ipynb as `python -m tealeaves_widgets
quickstart` does (embedded model, CPU), exports it with `tw.export_html`, and
prints the file size (target: <= 10 MB) split into the inlined scripts, the
saved widget state (arrays travel base64 inside it), and the rest (nbconvert's
CSS, cells, outputs), plus the URLs the page would fetch (target: none).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tealeaves_widgets.batch.notebooks import execute_notebook, quickstart_path
from tealeaves_widgets.widgets.export import (
    WIDGET_STATE,
    _vendor,
    anywidget_amd,
    network_references,
    notebook_html,
)

TARGET_BYTES = 10_000_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="also keep the HTML file here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        nb = execute_notebook(quickstart_path(), workdir)
    executed = time.perf_counter() - started
    started = time.perf_counter()
    page = notebook_html(nb, title="quickstart")
    exported = time.perf_counter() - started
    if args.out:
        Path(args.out).write_text(page, encoding="utf-8")

    total = len(page.encode("utf-8"))
    state = nb.metadata.widgets[WIDGET_STATE]
    models = state["state"].values()
    parts = {
        "html-manager (inlined)": len(_vendor("html-manager-embed-amd.js").encode()),
        "require.js (inlined)": len(_vendor("require.js").encode()),
        "anywidget (inlined)": len(anywidget_amd().encode()),
        "widget state": len(json.dumps(state, separators=(",", ":")).encode()),
    }
    buffers = sum(len(b["data"]) for m in models for b in m.get("buffers", []))
    bundles = sum(len(m["state"].get("_esm", "")) for m in models)
    parts["rest (CSS, cells, outputs)"] = total - sum(parts.values())
    fetched = network_references(page)

    print(
        f"quickstart: executed in {executed:.0f} s, exported in {exported:.1f} s, "
        f"{len(nb.cells)} cells, {len(state['state'])} widget models"
    )
    print(
        f"exported HTML: {total / 1e6:.2f} MB (target <= {TARGET_BYTES / 1e6:.0f} MB): "
        f"{'met' if total <= TARGET_BYTES else 'NOT met'}"
    )
    for name, size in parts.items():
        print(f"  {name:<28} {size / 1e6:6.2f} MB")
    print(
        f"    of the widget state: arrays (base64) {buffers / 1e6:.2f} MB, "
        f"JS bundles (_esm) {bundles / 1e6:.2f} MB"
    )
    print(f"network fetches on opening: {len(fetched)} (target 0) {fetched[:3]}")
    return 0 if total <= TARGET_BYTES and not fetched else 1


if __name__ == "__main__":
    sys.exit(main())
