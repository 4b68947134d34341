"""Checks of executed example notebooks: their text outputs, and their export
to one offline page."""

from __future__ import annotations

import warnings

from tealeaves_widgets.widgets.export import network_references, notebook_html

MAX_EXPORT_BYTES = 10_000_000


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def offline_export(nb, title: str) -> str:
    """`nb` exported to one page, checked to fetch nothing (no ExportWarning,
    no network reference) and to stay under MAX_EXPORT_BYTES."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ExportWarning would name a network fetch
        page = notebook_html(nb, title=title)
    assert network_references(page) == []
    assert f"<title>{title}</title>" in page
    assert len(page.encode("utf-8")) <= MAX_EXPORT_BYTES
    return page
