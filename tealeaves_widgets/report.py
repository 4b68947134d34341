"""Reports of a `Comparison`: markdown (`cmp.report()`) and one standalone HTML page.

Both are rendered from one content model: `report_sections(cmp, top)` builds
`Section`s of headings, paragraphs, lists and tables whose text is `Span`s
(plain, code or strong). The markdown renderer escapes table syntax; the HTML
renderer escapes every text with `html.escape`, so a token or a region name
is never read as markup.

The HTML page (`html_report`) adds static plotly figures (cooking curves per
variant, deltas with their intervals, tracked tokens) and the interactive
views, with their state embedded by `widgets.export.embed_widgets`, so the
page stays interactive with no kernel. Every script is inlined (plotly.js
once, require.js, the widget manager, anywidget): the page makes no network
request. Widgets are imported inside the functions that embed them, never at
module import.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import TealeavesError
from .runset import RunSet
from .stats import CURVE_STATS

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from .compare import Comparison

REPORT_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
"""File suffix -> report format of `save_report`."""

# ---------------------------------------------------------------- content model


@dataclass(frozen=True)
class Span:
    """A run of text with one style: "" (plain), "code" or "strong"."""

    text: str
    style: str = ""


Inline = tuple[Span, ...]
"""A line of styled text."""


@dataclass(frozen=True)
class Heading:
    level: int
    text: Inline


@dataclass(frozen=True)
class Paragraph:
    text: Inline


@dataclass(frozen=True)
class ItemList:
    items: tuple[Inline, ...]
    ordered: bool = False


@dataclass(frozen=True)
class Table:
    header: tuple[Inline, ...]
    rows: tuple[tuple[Inline, ...], ...]


Block = Heading | Paragraph | ItemList | Table


@dataclass(frozen=True)
class Section:
    """One part of the report; `key` names it (header, summary, changes,
    stats, lens, stability) so a renderer can add figures after it."""

    key: str
    blocks: tuple[Block, ...]


def code(text: object) -> Span:
    return Span(str(text), "code")


def strong(text: object) -> Span:
    return Span(str(text), "strong")


def line(*parts: Span | str) -> Inline:
    """An `Inline` from spans and plain strings."""
    return tuple(p if isinstance(p, Span) else Span(p) for p in parts)


def _join(items: Sequence[Inline], separator: str) -> Inline:
    out: list[Span] = []
    for i, item in enumerate(items):
        if i:
            out.append(Span(separator))
        out.extend(item)
    return tuple(out)


# ---------------------------------------------------------------- content


class _Content:
    """What a report of a comparison says: header, summary, largest changes,
    curve statistics, tracked tokens, stability verdict."""

    def __init__(self, comparison: Comparison, top: int) -> None:
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise TealeavesError(f"top must be a positive int, got {top!r}.")
        self.cmp = comparison
        self.top = top
        self.query = comparison._query(None)
        self.layers = comparison.with_options(layers=None).deltas
        self.changes = self._largest_changes()

    def sections(self) -> list[Section]:
        sections = [
            Section("header", self._header()),
            Section("summary", self._summary()),
            Section("changes", self._changes()),
            Section("stats", self._stats()),
            Section("lens", self._lens()),
            Section("stability", self._stability()),
        ]
        return [s for s in sections if s.blocks]

    def _header(self) -> tuple[Block, ...]:
        from .compare import _describe, _runs

        cmp = self.cmp
        base = _runs(cmp.variants[cmp.baseline])[0]
        items = [
            line(f"Model: {base.model_info.get('model_id', 'unknown')} ({cmp.n_layers} layers)"),
            line(
                "Baseline: ",
                strong(cmp.baseline),
                f" ({_describe(cmp.variants[cmp.baseline])})",
            ),
        ]
        for name in cmp.names[1:]:
            align = cmp.alignment(name)
            items.append(
                line(
                    "Variant ",
                    strong(name),
                    f" ({_describe(cmp.variants[name])}): {align.n_shared} tokens shared with "
                    f"the baseline, {align.n_inserted} inserted, {align.n_deleted} deleted",
                )
            )
        other = [q for q in cmp.queries if q != self.query]
        opts = cmp.options
        query = line("Query ", code(self.query))
        if other:
            query += line(" (also compared: ") + _join([line(code(q)) for q in other], ", ")
            query += line(")")
        query += line(
            f"; attention mass normalize={opts.normalize!r}; intervals: "
            f"{opts.level:.0%} {opts.interval}"
        )
        items.append(query)
        presence = cmp.region_presence
        partial = [r for r in presence.index if not presence.loc[r].all()]
        if partial:
            where = [line(code(r), f" ({_presence_counts(cmp, r)})") for r in partial]
            items.append(
                line(
                    "Regions not in every run (means use the runs that have them; a variant "
                    "with none has no delta): "
                )
                + _join(where, ", ")
            )
        return (Heading(1, line("Prompt comparison")), ItemList(tuple(items)))

    def summary_table(self) -> pd.DataFrame:
        """The summary's rows: `deltas` by band (or the comparison's phases) at the query."""
        from .compare import BANDS

        cmp = self.cmp
        layers = cmp.options.layers
        if not (isinstance(layers, Mapping) or (isinstance(layers, str) and layers == "bands")):
            layers = "bands" if cmp.n_layers >= len(BANDS) else None
        table = cmp.with_options(layers=layers).deltas
        return table[table["query"] == self.query]

    def _summary(self) -> tuple[Block, ...]:
        cmp = self.cmp
        header = [line("region"), line("layers"), line(cmp.baseline)]
        header += [line(f"{n} Δ") for n in cmp.names[1:]]
        rows = []
        for (region, band), group in self.summary_table().groupby(["region", "layer"], sort=False):
            by_variant = group.set_index("variant")
            cells = [line(code(region)), line(str(band))]
            cells.append(line(_num(by_variant.loc[cmp.baseline, "mass"])))
            cells += [line(_delta_cell(by_variant.loc[name])) for name in cmp.names[1:]]
            rows.append(tuple(cells))
        return (
            Heading(2, line("Summary: attention mass per region (query ", code(self.query), ")")),
            Table(tuple(header), tuple(rows)),
            Paragraph(_LEGEND),
        )

    def _largest_changes(self) -> pd.DataFrame:
        table = self.layers[self.layers["variant"] != self.cmp.baseline].dropna(subset=["delta"])
        table = table.assign(size=table["delta"].abs())
        peaks = table.loc[table.groupby(["variant", "query", "region"])["size"].idxmax()]
        peaks = peaks[peaks["size"] > 0]
        return peaks.sort_values("size", ascending=False).head(self.top)

    def _changes(self) -> tuple[Block, ...]:
        heading = Heading(2, line("Largest changes"))
        if self.changes.empty:
            nothing = line("No region's attention mass differs from the baseline.")
            return (heading, Paragraph(nothing))
        items = []
        for change in self.changes.itertuples():
            start, stop = self.span(change)
            where = f"layer {change.layer}" + (
                f"; at least half of that over layers {start}-{stop}" if stop > start else ""
            )
            items.append(
                line(
                    strong(change.variant),
                    ", region ",
                    code(change.region),
                    ", query ",
                    code(change.query),
                    f": {_delta_cell(change._asdict())} at {where}",
                )
            )
        return (heading, ItemList(tuple(items), ordered=True))

    def span(self, change) -> tuple[int, int]:
        """Contiguous layers around the peak where the delta keeps its sign and at
        least half its peak size."""
        curve = self.layers[
            (self.layers["variant"] == change.variant)
            & (self.layers["query"] == change.query)
            & (self.layers["region"] == change.region)
        ]["delta"].to_numpy()
        strong_ = np.sign(curve) == np.sign(change.delta)
        strong_ &= np.abs(curve) >= np.abs(change.delta) / 2
        start = stop = int(change.layer)
        while start > 0 and strong_[start - 1]:
            start -= 1
        while stop < len(curve) - 1 and strong_[stop + 1]:
            stop += 1
        return start, stop

    def _stats(self) -> tuple[Block, ...]:
        cmp = self.cmp
        table = cmp.curve_stats
        table = table[table["query"] == self.query]
        threshold = cmp.options.threshold
        rows = []
        for region, group in table.groupby("region", sort=False):
            cells = [line(code(region))]
            for stat in CURVE_STATS:
                values = group[group["stat"] == stat].set_index("variant")
                parts = [line(_num(values.loc[cmp.baseline, "value"]))]
                parts += [line(f"{n} {_signed(values.loc[n, 'delta'])}") for n in cmp.names[1:]]
                cells.append(_join(parts, "; "))
            rows.append(tuple(cells))
        return (
            Heading(2, line("Cooking curves (query ", code(self.query), ")")),
            Paragraph(
                line(
                    "Each cell: baseline value, then each variant's change. peak_layer: layer of "
                    "the largest mass; area: mass summed over layers; first_above: first layer "
                    "reaching "
                    + ("half the curve's peak." if threshold is None else f"{threshold}.")
                )
            ),
            Table(tuple(line(h) for h in ("region", *CURVE_STATS)), tuple(rows)),
        )

    def _lens(self) -> tuple[Block, ...]:
        cmp = self.cmp
        if not cmp.tracked_tokens:
            return ()
        table = cmp.with_options(layers=[cmp.n_layers - 1]).lens_deltas
        table = table[table["query"] == self.query]
        header = [line("token")] + [line(f"{n} rank (p)") for n in cmp.names]
        rows = []
        for token, group in table.groupby("token", sort=False):
            values = group.set_index("variant")
            cells = [line(code(repr(token)))]
            for name in cmp.names:
                rank, prob = values.loc[name, "rank"], values.loc[name, "prob"]
                cell = f"{_num(rank)} (p {prob:.3g})"
                if name != cmp.baseline:
                    cell += f", Δrank {_signed(values.loc[name, 'rank_delta'])}"
                cells.append(line(cell))
            rows.append(tuple(cells))
        return (
            Heading(2, line("Tracked tokens (last layer, query ", code(self.query), ")")),
            Table(tuple(header), tuple(rows)),
        )

    def _stability(self) -> tuple[Block, ...]:
        blocks: list[Block] = [Heading(2, line("Stability"))]
        changes = self.changes
        if changes.empty:
            blocks.append(
                Paragraph(line(strong("Verdict:"), " nothing to judge: no region's mass differs."))
            )
        has_seeds = not changes.empty and self.layers["seed_sd"].notna().any()
        has_intervals = not changes.empty and self.layers["delta_low"].notna().any()
        if has_seeds:
            here = self.layers[self.layers["query"] == self.query]
            typical = here.groupby("region", sort=False)["seed_sd"].median().dropna()
            noise = [line(code(r), f" {v:.3g}") for r, v in typical.items()]
            blocks.append(
                Paragraph(
                    line(
                        "Seed noise (sd of one run's mass across sampled responses, median "
                        "over layers): "
                    )
                    + _join(noise, ", ")
                    + line(".")
                )
            )
            blocks.append(
                _verdict(
                    "Verdict (seeds)",
                    changes["above_noise"],
                    "exceed twice the seed noise",
                    "within sampling noise",
                )
            )
        if has_intervals:
            level = f"{self.cmp.options.level:.0%}"
            blocks.append(
                _verdict(
                    "Verdict (cases)",
                    changes["significant"],
                    f"have a {level} interval that excludes 0",
                    "could be noise across cases",
                )
            )
        if not (has_seeds or has_intervals) and not changes.empty:
            blocks.append(
                Paragraph(
                    line(
                        strong("Verdict:"),
                        " unknown. These are single runs, so there is no estimate of noise: a "
                        "delta may be within what resampling the response or changing the case "
                        "would give. Capture several cases (model.capture_many) or several "
                        "seeds (generate=tw.Generate(seeds=(0, 1, 2))) to know.",
                    )
                )
            )
        return tuple(blocks)


def _verdict(label: str, flags: pd.Series, yes: str, no: str) -> Paragraph:
    """ "**label:** k of the n largest changes <yes>; the other m are <no>." over
    the changes that could be judged (flags not NA)."""
    judged = flags.dropna().astype(bool)
    k, n = int(judged.sum()), len(judged)
    if n == 0:
        return Paragraph(line(strong(f"{label}:"), " none of the largest changes can be judged."))
    text = f" {k} of the {n} largest changes {yes}"
    return Paragraph(
        line(strong(f"{label}:"), text + ("." if k == n else f"; the other {n - k} are {no}."))
    )


_LEGEND = line(
    "Δ: change of the mean mass against the baseline (relative change in brackets); ",
    code("*"),
    " its interval excludes 0; ",
    code("~"),
    " within twice the seed noise; — region absent.",
)


def _num(value: float) -> str:
    """A value for a table: "—" if missing, whole numbers (layers, ranks) as ints."""
    if pd.isna(value):
        return "—"
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def _signed(value: float) -> str:
    text = _num(value)
    return text if text == "—" or text.startswith("-") else "+" + text


def _delta_cell(row) -> str:
    """ "+0.0123 (+8%) *" for one variant's delta row (a Series or a dict)."""
    delta = row["delta"]
    if pd.isna(delta):
        return "—"
    rel = row["rel_change"]
    cell = _signed(delta) + ("" if pd.isna(rel) else f" ({rel:+.1%})")
    if _flag(row["significant"]) is True:
        cell += " *"
    if _flag(row["above_noise"]) is False:
        cell += " ~"
    return cell


def _flag(value: object) -> bool | None:
    """A nullable boolean cell as True, False or None (NA)."""
    return None if pd.isna(value) else bool(value)


def report_sections(comparison: Comparison, top: int = 5) -> list[Section]:
    """The content of a report of `comparison`, its `top` largest changes listed."""
    return _Content(comparison, top).sections()


# ---------------------------------------------------------------- markdown


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


def markdown_report(comparison: Comparison, top: int = 5) -> str:
    """The report as markdown: summary table, largest changes, curve stats,
    tracked tokens and the stability verdict."""
    sections = report_sections(comparison, top)
    return "\n\n".join(_md_block(b) for s in sections for b in s.blocks) + "\n"


# ---------------------------------------------------------------- HTML


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
    from .figures import comparison_curves_figure, comparison_lens_figure, delta_figure

    figures = {
        "summary": [comparison_curves_figure(comparison)],
        "changes": [delta_figure(comparison)],
    }
    if comparison.tracked_tokens:
        figures["lens"] = [comparison_lens_figure(comparison)]
    return figures


def report_views(comparison: Comparison) -> list[tuple[str, Any]]:
    """(caption, widget) of each interactive view a report embeds.

    The variant diff view (`widgets.VariantDiff`), and an aggregate view
    (`widgets.AggregateView`) of the variants that are RunSets, where this
    install has them; otherwise each variant's `Explorer` of its first case.
    """
    from . import widgets

    diff = getattr(widgets, "VariantDiff", None)
    if diff is not None:
        views = [("Variants side by side", diff(comparison))]
        aggregate = getattr(widgets, "AggregateView", None)
        sets = {n: v for n, v in comparison.variants.items() if isinstance(v, RunSet)}
        if aggregate is not None and sets:
            opts = comparison.options
            view = aggregate(sets, level=opts.level, interval=opts.interval)
            views.append(("Cooking curves over the cases, with confidence bands", view))
        return views
    views = []
    for name in comparison.names:
        value = comparison.variants[name]
        which = "" if not isinstance(value, RunSet) else f", case {value.labels[0]!r}"
        explorer = widgets.Explorer(comparison._run_at(name, 0))
        views.append((f"Explorer of {name!r}{which}", explorer))
    return views


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


def _views_html(views: list[tuple[str, Any]]) -> tuple[str, str]:
    """(scripts, body) embedding `views`: the widget manager, anywidget and the
    widgets' state inlined, each view's tag under its caption."""
    from .widgets.export import embed_widgets

    embedded = embed_widgets([widget for _, widget in views])
    # after every figure: once require.js defines `define.amd`, plotly.js would
    # register as an anonymous AMD module instead of setting `window.Plotly`
    scripts = embedded.state + "\n" + embedded.runtime
    body = "\n".join(
        f'<h3>{html.escape(caption)}</h3>\n<div class="tl-view">{tag}</div>'
        for (caption, _), tag in zip(views, embedded.views, strict=True)
    )
    return scripts, body


def html_report(
    comparison: Comparison, top: int = 5, views: bool = True, title: str | None = None
) -> str:
    """The report as one standalone HTML page: the markdown report's tables and
    text, static plotly figures, and (with `views`) the interactive views with
    their state embedded. Renders offline; makes no network request."""
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
    if views:
        view_scripts, body = _views_html(report_views(comparison))
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


# ---------------------------------------------------------------- files


def save_report(
    comparison: Comparison, path: str | PathLike[str], top: int = 5, views: bool = True
) -> Path:
    """Write the report to `path`: markdown for .md, a standalone HTML page
    for .html/.htm (see `html_report`). Returns the path."""
    path = Path(path)
    kind = REPORT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise TealeavesError(
            f"Cannot tell the report format from {str(path)!r}: name the file .md (markdown) "
            "or .html (a standalone page with figures and interactive views)."
        )
    if kind == "markdown":
        text = markdown_report(comparison, top)
    else:
        text = html_report(comparison, top, views=views)
    path.write_text(text, encoding="utf-8")
    return path


def _presence_counts(cmp: Comparison, region: str) -> str:
    """ "baseline 1/8 runs, terse 0/8 runs": how many runs of each variant have `region`."""
    from .compare import _runs

    return ", ".join(
        f"{name} {sum(region in run.regions for run in _runs(value))}/{len(_runs(value))} runs"
        for name, value in cmp.variants.items()
    )
