"""The markdown renderer of a report (`present.report`): every span's text is
escaped for markdown, so a user's string renders as text in any renderer."""

from __future__ import annotations

from collections.abc import Sequence

from ..core import seam
from ..core.compare import Comparison
from .report import Block, Heading, Inline, ItemList, Paragraph, report_sections


def _md(text: object) -> str:
    """Text safe inside a markdown table cell or inline code."""
    return str(text).replace("|", "\\|").replace("\n", "\\n").replace("`", "'")


def _md_inline(text: Inline) -> str:
    marks = {"": "{}", "code": "`{}`", "strong": "**{}**"}
    return "".join(marks[span.style].format(_md(span.text)) for span in text)


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + _md_inline(block.text)
    if isinstance(block, Paragraph):
        return _md_inline(block.text)
    if isinstance(block, ItemList):
        return "\n".join(
            (f"{i}. " if block.ordered else "- ") + _md_inline(item)
            for i, item in enumerate(block.items, start=1)
        )
    header = [_md_inline(cell) for cell in block.header]
    rows = [_md_row(header), _md_row(["---"] * len(header))]
    rows += [_md_row([_md_inline(cell) for cell in row]) for row in block.rows]
    return "\n".join(rows)


@seam.provide("report", Comparison)
def markdown_report(comparison: Comparison, top: int = 5) -> str:
    """The report as markdown: summary table, largest changes, curve stats,
    tracked tokens and the stability verdict."""
    sections = report_sections(comparison, top)
    return "\n\n".join(_md_block(b) for s in sections for b in s.blocks) + "\n"
