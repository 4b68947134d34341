"""The HTML report of a `Comparison` with its interactive views, and
`Comparison.save_report` (markdown or HTML by the file's suffix).

The page itself (tables, figures, shell) is `present.page.html_report`; this
module adds what only the widgets layer can: the variant diff and aggregate
views with their state embedded, so the page stays interactive with no kernel.
"""

from __future__ import annotations

import html
from os import PathLike
from pathlib import Path

import ipywidgets

from ..core import seam
from ..core.compare import Comparison
from ..core.runset import RunSet
from ..errors import ArgumentError
from ..present.markdown import markdown_report
from ..present.page import html_report
from .aggregate import AggregateView
from .diff import VariantDiff
from .export import embed_widgets

REPORT_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
"""File suffix -> report format of `save_report`."""


def report_views(comparison: Comparison) -> list[tuple[str, ipywidgets.Widget]]:
    """(caption, widget) of each interactive view a report embeds: the variant
    diff, and an aggregate view of the variants that are RunSets."""
    views: list[tuple[str, ipywidgets.Widget]] = [
        ("Variants side by side", VariantDiff(comparison))
    ]
    sets = {n: v for n, v in comparison.variants.items() if isinstance(v, RunSet)}
    if sets:
        opts = comparison.options
        view = AggregateView(sets, level=opts.level, interval=opts.interval)
        views.append(("Cooking curves over the cases, with confidence bands", view))
    return views


def views_html(views: list[tuple[str, ipywidgets.Widget]]) -> tuple[str, str]:
    """(scripts, body) embedding `views`: the widget manager, anywidget and the
    widgets' state inlined, each view's tag under its caption."""
    embedded = embed_widgets([widget for _, widget in views])
    # after every figure: once require.js defines `define.amd`, plotly.js would
    # register as an anonymous AMD module instead of setting `window.Plotly`
    scripts = embedded.state + "\n" + embedded.runtime
    body = "\n".join(
        f'<h3>{html.escape(caption)}</h3>\n<div class="tl-view">{tag}</div>'
        for (caption, _), tag in zip(views, embedded.views, strict=True)
    )
    return scripts, body


def report_page(comparison: Comparison, top: int = 5, views: bool = True) -> str:
    """The report as one standalone HTML page, with the interactive views when `views`."""
    embedded = views_html(report_views(comparison)) if views else None
    return html_report(comparison, top, embedded)


@seam.provide("save_report", Comparison)
def save_report(
    comparison: Comparison, path: str | PathLike[str], top: int = 5, views: bool = True
) -> Path:
    """Write the report to `path`: markdown for .md, a standalone HTML page
    for .html/.htm (`report_page`). Returns the path."""
    path = Path(path)
    kind = REPORT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ArgumentError(
            f"Cannot tell the report format from {str(path)!r}: name the file .md (markdown) "
            "or .html (a standalone page with figures and interactive views)."
        )
    text = (
        markdown_report(comparison, top)
        if kind == "markdown"
        else report_page(comparison, top, views)
    )
    path.write_text(text, encoding="utf-8")
    return path
