"""The HTML renderer of a report (`present.report`) and the page shell every
standalone page uses. Every span's text goes through `html.escape`. plotly.js
is inlined with the first figure, so the page makes no network request.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from ..core.compare import Comparison
from .figures import comparison_curves_figure, comparison_lens_figure, delta_figure
from .report import Block, Heading, Inline, ItemList, Paragraph, report_sections


def _html_inline(text: Inline) -> str:
    tags = {"": "{}", "code": "<code>{}</code>", "strong": "<strong>{}</strong>"}
    return "".join(tags[span.style].format(html.escape(span.text)) for span in text)


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_html_inline(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_html_inline(block.text)}</p>"
    if isinstance(block, ItemList):
        tag = "ol" if block.ordered else "ul"
        items = "".join(f"<li>{_html_inline(item)}</li>" for item in block.items)
        return f"<{tag}>{items}</{tag}>"
    header = "".join(f"<th>{_html_inline(cell)}</th>" for cell in block.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_html_inline(cell)}</td>" for cell in row) + "</tr>"
        for row in block.rows
    )
    return f'<table class="tl-table"><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>'


def report_figures(comparison: Comparison) -> dict[str, list[go.Figure]]:
    """Static figures of the HTML report, by the section they follow: the
    cooking curves per variant after the summary, the deltas with their
    intervals after the largest changes, the tracked tokens after their table."""
    figures = {
        "summary": [comparison_curves_figure(comparison)],
        "changes": [delta_figure(comparison)],
    }
    if comparison.tracked_tokens:
        figures["lens"] = [comparison_lens_figure(comparison)]
    return figures


_STYLE = """
body { margin: 24px auto; max-width: 1240px; padding: 0 16px; background: #fff; color: #1f2937;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 24px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #e5e7eb; }
h3 { font-size: 15px; margin-top: 20px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px;
  background: #f3f4f6; padding: 0 3px; border-radius: 3px; white-space: pre-wrap; }
table.tl-table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
table.tl-table th, table.tl-table td { border: 1px solid #e5e7eb; padding: 3px 8px;
  text-align: left; }
table.tl-table th { background: #f9fafb; }
.tl-figure { margin: 12px 0; }
.tl-view { margin: 12px 0 28px; }
"""


def _figure_html(figure: go.Figure, first: bool) -> str:
    """A figure's <div> and the script that draws it; plotly.js inlined with the first."""
    body = figure.to_html(
        full_html=False,
        include_plotlyjs=first,
        config={"displaylogo": False, "responsive": True},
        default_height=figure.layout.height or 420,
    )
    return f'<div class="tl-figure">{body}</div>'


def html_report(
    comparison: Comparison,
    top: int = 5,
    views: tuple[str, str] | None = None,
    title: str | None = None,
) -> str:
    """The report as one standalone HTML page: the markdown report's tables and
    text, static plotly figures, and `views`, (scripts, body) of the
    interactive views with their state embedded (made by the widgets layer,
    `widgets.report_page`). Renders offline; makes no network request."""
    sections = report_sections(comparison, top)
    figures = report_figures(comparison)
    parts: list[str] = []
    first = True
    for section in sections:
        parts.extend(_html_block(block) for block in section.blocks)
        for figure in figures.get(section.key, []):
            parts.append(_figure_html(figure, first))
            first = False
    view_scripts = ""
    if views is not None:
        view_scripts, body = views
        parts.append("<h2>Interactive views</h2>")
        parts.append(
            "<p>The same data, interactive: move the layer slider, pick the query or a region. "
            "They run in this page, with no kernel.</p>"
        )
        parts.append(body)
    page_title = title or f"Prompt comparison: {', '.join(comparison.names)}"
    return standalone_page(page_title, _STYLE, "\n".join([*parts, view_scripts]))


def standalone_page(title: str, style: str, body: str) -> str:
    """One HTML page: `title` escaped, `style` (CSS) and `body` (HTML) as given.
    The report and `widgets.export.page_html` both write theirs with it."""
    return _PAGE.format(title=html.escape(title), style=style, body=body)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
</body>
</html>
"""
