"""The markdown renderer of a report (`present.report`): every span's text is
escaped for markdown, so a user's string renders as text in any renderer.

A user's string (a span marked `user`) escapes every ASCII punctuation mark
with a backslash (CommonMark's escapes, which markdown-it, mistune and GitHub
honour), so no tag, entity, emphasis, link, autolink, table pipe, strikethrough
or math survives; `&` becomes `&amp;` (mistune drops the backslash of `\\&`
in some contexts). The report's own text escapes the marks that could start
markup. A code span is fenced by more backticks than it holds; in a table, a
code span holding a pipe is written as escaped text instead (renderers differ
on `\\|` inside code). Line breaks show as `\\n`, so a cell stays on its row.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from ..core import seam
from ..core.compare import Comparison
from .report import Block, Heading, Inline, ItemList, Paragraph, Span, report_sections

_USER_ESCAPED = frozenset(string.punctuation) - {"&"}
"""Marks escaped with a backslash in a user's string: all ASCII punctuation."""
_OWN_ESCAPED = frozenset("\\`*_[]<>|~$")
"""Marks escaped in the report's own text: those that can open markup mid-line."""


def _escape(text: str, marks: frozenset[str]) -> str:
    out = []
    for char in text:
        if char in marks:
            out.append("\\" + char)
        elif char == "&":
            out.append("&amp;")
        elif char in "\n\r":
            out.append("\\n" if char == "\n" else "\\r")
        else:
            out.append(char)
    return "".join(out)


def _md_code(text: str, in_table: bool) -> str:
    """`text` as a code span: literal in every renderer (no escapes, no entities)."""
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    if not text or (in_table and "|" in text):
        return _escape(text, _USER_ESCAPED)
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    if text.strip(" ") and (text[0] in "` " or text[-1] in "` "):
        text = f" {text} "  # one space each side is stripped again by the renderer
    return fence + text + fence


def _md_span(span: Span, in_table: bool) -> str:
    if span.style == "code":
        return _md_code(span.text, in_table)
    text = _escape(span.text, _USER_ESCAPED if span.user else _OWN_ESCAPED)
    if span.style != "strong" or not text.strip():
        return text
    # ** must touch the text: spaces around it go outside
    body = text.strip(" ")
    before, after = text[: len(text) - len(text.lstrip(" "))], text[len(text.rstrip(" ")) :]
    return f"{before}**{body}**{after}"


def _md_inline(text: Inline, in_table: bool = False) -> str:
    return "".join(_md_span(span, in_table) for span in text)


def _md_row(cells: Sequence[Inline]) -> str:
    return "| " + " | ".join(_md_inline(cell, in_table=True) for cell in cells) + " |"


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
    rows = [_md_row(block.header), "| " + " | ".join(["---"] * len(block.header)) + " |"]
    rows += [_md_row(row) for row in block.rows]
    return "\n".join(rows)


@seam.provide("report", Comparison)
def markdown_report(comparison: Comparison, top: int = 5) -> str:
    """The report as markdown: summary table, largest changes, curve stats,
    tracked tokens and the stability verdict."""
    sections = report_sections(comparison, top)
    return "\n\n".join(_md_block(b) for s in sections for b in s.blocks) + "\n"
