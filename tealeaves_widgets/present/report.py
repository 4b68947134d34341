"""What a report of a `Comparison` says, independent of its format.

`report_sections(cmp, top)` builds `Section`s of headings, paragraphs, lists
and tables whose text is `Span`s (plain, code or strong): a summary table,
the largest changes, curve statistics, tracked tokens and the stability
verdict. `present.markdown` and `present.page` render them; every renderer
escapes every span, so a token or a region name is never read as markup. A
string that came from the user (a name, the model id, a token) sits in a span
of its own marked `user`, which a renderer shows literally whatever it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from ..core.compare import BANDS, SINK_LEVEL, Comparison, describe_variant, runs_of
from ..core.stats import CURVE_STATS
from ..errors import ArgumentError

# ---------------------------------------------------------------- content model


@dataclass(frozen=True)
class Span:
    """A run of text with one style: "" (plain), "code" or "strong"."""

    text: str
    style: str = ""
    user: bool = False
    """True when the text came from the user (a variant, region, query or phase
    name, the model id, a token): it must render as literal text, whatever
    markup it holds. The report's own text (False) holds no markup either."""


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
    """A user's string (a region, query or token) set as code."""
    return Span(str(text), "code", user=True)


def strong(text: object) -> Span:
    """The report's own text in bold."""
    return Span(str(text), "strong")


def literal(text: object, style: str = "") -> Span:
    """A user's string (a variant or phase name, the model id) as literal text."""
    return Span(str(text), style, user=True)


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
    """What a report of a comparison says: header, summary, largest changes
    (those that are mostly sink reassignment set aside), curve statistics,
    tracked tokens, stability verdict."""

    def __init__(self, comparison: Comparison, top: int) -> None:
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ArgumentError(f"top must be a positive int, got {top!r}.")
        self.cmp = comparison
        self.top = top
        self.query = comparison.query_name()
        every_layer = comparison.with_options(layers=None)
        self.layers = every_layer.deltas
        self.excluded = every_layer.excluded_mass
        self.exclusion = comparison.options.mass_options.exclusion
        self.labels = comparison.region_labels
        sink = self.layers["sink_reassigned"].fillna(False).astype(bool)
        self.changes = self._largest_changes(self.layers.loc[~sink])
        self.set_aside = self._largest_changes(self.layers.loc[sink])

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
        cmp = self.cmp
        base = runs_of(cmp.variants[cmp.baseline])[0]
        items = [
            line(
                "Model: ",
                literal(base.model_info.get("model_id", "unknown")),
                f" ({cmp.n_layers} layers)",
            ),
            line(
                "Baseline: ",
                literal(cmp.baseline, "strong"),
                f" ({describe_variant(cmp.variants[cmp.baseline])})",
            ),
        ]
        for variant in cmp.names[1:]:
            align = cmp.alignment(variant)
            items.append(
                line(
                    "Variant ",
                    literal(variant, "strong"),
                    f" ({describe_variant(cmp.variants[variant])}): {align.n_shared} tokens shared "
                    f"with the baseline, {align.n_inserted} inserted, {align.n_deleted} deleted",
                )
            )
        other = [q for q in cmp.queries if q != self.query]
        opts = cmp.options
        query = line("Query ", code(self.query))
        if other:
            query += line(" (also compared: ") + _join([line(code(q)) for q in other], ", ")
            query += line(")")
        query += line(
            "; attention mass normalize=",
            code(opts.normalize),
            f" ({_MEANING[opts.normalize]}",
            _share_level_text(opts) + ")",
            f"; intervals: {opts.level:.0%} ",
            literal(opts.interval),
            f"; significant: the interval excludes 0 and |Δ| ≥ {opts.min_effect:g}",
        )
        items.append(query)
        items.append(self._excluded_line())
        presence = cmp.region_presence
        partial = [r for r in presence.index if not presence.loc[r].all()]
        if partial:
            where = [line(code(r), " (") + _presence_counts(cmp, r) + line(")") for r in partial]
            items.append(
                line(
                    "Regions not in every run (means use the runs that have them; a variant "
                    "with none has no delta): "
                )
                + _join(where, ", ")
            )
        return (Heading(1, line("Prompt comparison")), ItemList(tuple(items)))

    def _excluded_line(self) -> Inline:
        """What was excluded and how much attention it takes (the sink line)."""
        if not self.exclusion.any:
            return line(
                "Excluded: nothing (masses are fractions of the whole attention row, the first "
                "token's sink included)"
            )
        what = _join([line(literal(part)) for part in self.exclusion.parts()], " and ")
        here = self.excluded.loc[self.excluded["query"] == self.query]
        parts = []
        for name in self.cmp.names:
            curve = here.loc[here["variant"] == name].set_index("layer")["mass"]
            if curve.isna().all():
                continue
            peak = int(curve.idxmax())
            parts.append(
                line(
                    literal(name),
                    f" {curve.mean():.2f} of the attention on average over layers, "
                    f"{curve.loc[peak]:.2f} at layer {peak}",
                )
            )
        text = (
            line("Excluded: ")
            + what
            + line(
                " (masses are fractions of the rest of the attention; the excluded part is "
                "reported on its own here)"
            )
        )
        if parts:
            text += line(". It takes, at query ", code(self.query), ": ") + _join(parts, "; ")
        if not self.changes.empty:
            top = self.changes.iloc[0]
            at = self.excluded.loc[
                (self.excluded["query"] == top["query"]) & (self.excluded["layer"] == top["layer"])
            ].set_index("variant")["mass"]
            values = [line(literal(n), f" {at.loc[n]:.2f}") for n in self.cmp.names if n in at]
            text += line(
                f"; at layer {top['layer']} of query ",
                code(top["query"]),
                " (the largest change): ",
            ) + _join(values, ", ")
        return text + line(".")

    def _region_cell(self, region: str) -> Inline:
        """A region's name, with "(own tokens)" when its share counts only those."""
        label = self.labels.get(region, region)
        return line(code(region), " (own tokens)") if label != region else line(code(region))

    def summary_layers(self) -> object:
        """The summary's rows: bands (or the comparison's phases), else every layer."""
        layers = self.cmp.options.layers
        if not (isinstance(layers, Mapping) or (isinstance(layers, str) and layers == "bands")):
            layers = "bands" if self.cmp.n_layers >= len(BANDS) else None
        return layers

    def summary_table(self) -> pd.DataFrame:
        """The summary's rows: `deltas` by band (or the comparison's phases) at the query."""
        table = self.cmp.with_options(layers=self.summary_layers()).deltas
        return table.loc[table["query"] == self.query]

    def _summary(self) -> tuple[Block, ...]:
        cmp = self.cmp
        header = [line("region"), line("layers"), line(literal(cmp.baseline))]
        header += [line(literal(n), " Δ") for n in cmp.names[1:]]
        rows = []
        for key, group in self.summary_table().groupby(["region", "layer"], sort=False):
            # pandas types a group key as Hashable; grouped by two columns it is a pair
            region, band = cast(tuple[str, object], key)
            if group["mass"].fillna(0).eq(0).all():
                continue  # no attention in any variant (e.g. a section its regions cover)
            by_variant = group.set_index("variant")
            cells = [self._region_cell(region), line(literal(band))]
            cells.append(line(_num(by_variant.loc[cmp.baseline, "mass"])))
            cells += [line(_delta_cell(by_variant.loc[name])) for name in cmp.names[1:]]
            rows.append(tuple(cells))
        if self.exclusion.any:
            excluded = cmp.with_options(layers=self.summary_layers()).excluded_mass
            excluded = excluded.loc[excluded["query"] == self.query]
            for band, group in excluded.groupby("layer", sort=False):
                by_variant = group.set_index("variant")
                cells = [
                    line("excluded: ", literal(self.exclusion.describe())),
                    line(literal(band)),
                ]
                cells.append(line(_num(by_variant.loc[cmp.baseline, "mass"])))
                cells += [line(_delta_cell(by_variant.loc[name])) for name in cmp.names[1:]]
                rows.append(tuple(cells))
        return (
            Heading(2, line("Summary: attention mass per region (query ", code(self.query), ")")),
            Table(tuple(header), tuple(rows)),
            Paragraph(_legend(cmp, self.exclusion.any)),
        )

    def _largest_changes(self, table: pd.DataFrame) -> pd.DataFrame:
        """Per variant, query and region the layer of its largest |delta| in
        `table`, the `top` largest first."""
        table = table.loc[table["variant"] != self.cmp.baseline].dropna(subset=["delta"])
        table = table.assign(size=table["delta"].abs())
        peaks = table.loc[table.groupby(["variant", "query", "region"])["size"].idxmax()]
        peaks = peaks.loc[peaks["size"] > 0]
        return peaks.sort_values("size", ascending=False).head(self.top)

    def _changes(self) -> tuple[Block, ...]:
        heading = Heading(2, line("Largest changes"))
        blocks: list[Block] = [heading]
        if self.changes.empty:
            nothing = "No region's attention mass differs from the baseline"
            if not self.set_aside.empty:
                nothing += " other than by sink reassignment (below)"
            blocks.append(Paragraph(line(nothing + ".")))
        else:
            items = [self._change_item(change) for change in self.changes.itertuples()]
            blocks.append(ItemList(tuple(items), ordered=True))
        if not self.set_aside.empty:
            sink = self.exclusion.describe()
            blocks.append(
                Paragraph(
                    line(
                        strong("Set aside, mostly sink reassignment"),
                        " (",
                        code("sink_reassigned"),
                        " in ",
                        code("cmp.deltas"),
                        "): one token of the region carries at least half of the change and "
                        f"either took it from the {sink} or draws as much as a sink "
                        f"({SINK_LEVEL:g} of the attention, and at least the {sink}'s): a second "
                        "parking spot for "
                        "attention; or the region's own attention explains less than half of "
                        f"its change (its share moved because the attention left beside the {sink} "
                        'grew or shrank). The changes after "there" are fractions of the whole '
                        "attention row.",
                    )
                )
            )
            items = [self._change_item(change, sink=True) for change in self.set_aside.itertuples()]
            blocks.append(ItemList(tuple(items)))
        return tuple(blocks)

    def _change_item(self, change: Any, sink: bool = False) -> Inline:
        """One change: variant, region, query, the delta and where it holds
        (`change` is a namedtuple of the deltas' columns)."""
        start, stop = self.span(change)
        where = f"layer {change.layer}" + (
            f"; at least half of that over layers {start}-{stop}" if stop > start else ""
        )
        item = line(
            literal(change.variant, "strong"),
            ", region ",
            *self._region_cell(change.region),
            ", query ",
            code(change.query),
            f": {_delta_cell(change._asdict())} at {where}",
        )
        if sink and pd.notna(change.sink_shift):
            item += line(
                f"; there its attention changed by {_signed(change.row_delta)}, its most-attended "
                f"token's by {_signed(change.token_delta)}, the {self.exclusion.describe()}'s by "
                f"{_signed(change.sink_shift)}"
            )
        return item + self._one_token(change)

    def _one_token(self, change: Any) -> Inline:
        """ "; most of it on one token, ' the' (0.43 of the attention in reworded)"
        when the region's most-attended token carries at least half of its change."""
        row, token = change.row_delta, change.token_delta
        if not (pd.notna(row) and pd.notna(token) and row * token > 0):
            return ()
        if abs(token) < abs(row) / 2 or not isinstance(change.layer, (int, np.integer)):
            return ()
        side = change.variant if token > 0 else self.cmp.baseline
        found = self.cmp.top_token(side, change.region, int(change.layer), change.query)
        if found is None:
            return ()
        text, value = found
        return line(
            "; most of it on one token, ",
            code(repr(text)),
            f" ({value:.2f} of the attention in ",
            literal(side),
            ")",
        )

    def span(self, change: Any) -> tuple[int, int]:
        """Contiguous layers around the peak where the delta keeps its sign and at
        least half its peak size."""
        curve = self.layers.loc[
            (self.layers["variant"] == change.variant)
            & (self.layers["query"] == change.query)
            & (self.layers["region"] == change.region),
            "delta",
        ].to_numpy()
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
        table = table.loc[table["query"] == self.query]
        threshold = cmp.options.threshold
        rows = []
        for region, group in table.groupby("region", sort=False):
            if group.loc[group["stat"] == "area", "value"].fillna(0).eq(0).all():
                continue  # no attention at any layer in any variant
            cells = [self._region_cell(str(region))]
            for stat in CURVE_STATS:
                values = group.loc[group["stat"] == stat].set_index("variant")
                parts = [line(_num(values.loc[cmp.baseline, "value"]))]
                parts += [
                    line(literal(n), f" {_signed(values.loc[n, 'delta'])}") for n in cmp.names[1:]
                ]
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
        table = table.loc[table["query"] == self.query]
        header = [line("token")] + [line(literal(n), " rank (p)") for n in cmp.names]
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
            here = self.layers.loc[self.layers["query"] == self.query]
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
                    "are within sampling noise",
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
        line(strong(f"{label}:"), text + ("." if k == n else f"; the other {n - k} {no}."))
    )


_MEANING = {
    "raw": "the attention on each region's tokens",
    "share": "share of the attention, each token counted once",
    "per-region": "each region's curve min-max scaled to 0..1",
    "density": "attention per token of each region",
}
"""What the report's masses are, per normalisation."""


def _share_level_text(options: Any) -> str:
    """How "share" partitions the prompt, for the header ("" otherwise)."""
    if options.normalize != "share":
        return ""
    if options.share_level == "leaves":
        return ", in its innermost region: a parent's row is its own tokens, outside its children"
    return f", in its region at depth {options.share_level} of the region tree"


def _legend(cmp: Comparison, excluded: bool) -> Inline:
    """The summary's legend: what each mark of a delta cell means."""
    parts: list[Span | str] = [
        "Δ: change of the mean mass against the baseline (relative change in brackets); ",
        code("*"),
        " significant: its interval excludes 0 and |Δ| ≥ ",
        code(f"{cmp.options.min_effect:g}"),
        " (min_effect); ",
        code("~"),
        " within twice the seed noise; ",
    ]
    if excluded:
        parts += [
            code("sink"),
            " mostly sink reassignment (a token taking the excluded tokens' place, or a share "
            "diluted or concentrated as their mass moved; see Largest changes); the excluded row "
            "is a fraction of the whole attention row; ",
        ]
    return line(*parts, "— region absent.")


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
    if "sink_reassigned" in row and _flag(row["sink_reassigned"]) is True:
        cell += " sink"
    return cell


def _flag(value: object) -> bool | None:
    """A nullable boolean cell as True, False or None (NA)."""
    # bool(): pd.isna of one cell is a bool (its type also covers arrays and frames)
    return None if bool(pd.isna(value)) else bool(value)


def report_sections(comparison: Comparison, top: int = 5) -> list[Section]:
    """The content of a report of `comparison`, its `top` largest changes listed."""
    return _Content(comparison, top).sections()


def _presence_counts(cmp: Comparison, region: str) -> Inline:
    """ "baseline 1/8 runs, terse 0/8 runs": how many runs of each variant have `region`."""
    counts = [
        line(
            literal(variant),
            f" {sum(region in run.regions for run in runs_of(value))}/{len(runs_of(value))} runs",
        )
        for variant, value in cmp.variants.items()
    ]
    return _join(counts, ", ")
