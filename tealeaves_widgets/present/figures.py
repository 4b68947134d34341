"""Static plotly figures of a `Run` (cooking curves, logit lens, token heatmap),
of a `Comparison` (curves per variant, deltas, tracked tokens) and of RunSets
(mean curves with confidence bands).

The same views as the widgets, for papers, reports and places without a
kernel or anywidget. They read results (plain numpy, pandas), never a model. Token
text goes through `html.escape`, because plotly reads a subset of HTML in
labels (`<br>`, `<b>`, `<a href>`): a prompt containing markup shows as text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core import seam
from ..core.compare import Comparison
from ..core.heatmap_scale import (
    DEFAULT_HEATMAP_SCALE,
    HeatmapScale,
    heatmap_scale,
)
from ..core.masses import AUTO, LEAVES, OWN_SUFFIX, Exclusion, MassOptions
from ..core.run import Run
from ..core.runset import RunSet
from ..core.selection import check_index
from ..errors import ArgumentError, SelectionError
from .palette import region_colors

Y_TITLES = {
    "raw": "attention mass",
    "share": "share of the attention (each token once)",
    "per-region": "mass, min-max scaled per region",
    "density": "mass per token",
}
"""y-axis title of the cooking curves for each normalisation."""


def y_title(normalize: str, exclusion: Exclusion) -> str:
    """The y-axis title, saying what the mass is a fraction of when something is excluded."""
    title = Y_TITLES[normalize]
    return title if not exclusion.any else f"{title}, without {exclusion.describe()}"


def excluded_note(exclusion: Exclusion) -> str:
    """ "; first token excluded" for a title, or "" when nothing is."""
    return f"; {exclusion.describe()} excluded" if exclusion.any else ""


HEATMAP_COLORSCALE = [
    [0.0, "rgb(255, 255, 255)"],
    [0.25, "rgb(255, 237, 160)"],
    [0.5, "rgb(254, 178, 76)"],
    [0.75, "rgb(240, 59, 32)"],
    [1.0, "rgb(128, 0, 38)"],
]
"""White to dark red, the widget's colour scale (js/src/colour.ts)."""


def _label(text: str) -> str:
    """Text safe in a plotly label: markup escaped, line breaks made visible."""
    return html.escape(text.replace("\n", "\u21b5"), quote=False)


def _layer(run: Run, layer: int | None) -> int:
    if layer is None:
        return run.n_layers // 2
    return check_index(layer, run.n_layers, "layer", allow_negative=True)


@seam.provide("curves_figure", Run)
def curves_figure(
    run: Run,
    query: str | int | None = None,
    normalize: str = "raw",
    regions: list[str] | tuple[str, ...] | None = None,
    head: int | None = None,
    *,
    exclude: str | tuple[str, ...] | None = AUTO,
    share_level: str | int = LEAVES,
) -> go.Figure:
    """Cooking curves: one line per region, attention mass (as `Run.curves`
    with the same arguments) against layer. Clicking a legend entry hides it.
    The title says what was excluded; in "share" a parent's line is its own
    tokens ("(own)")."""
    frame = run.curves(
        query=query,
        normalize=normalize,
        regions=regions,
        head=head,
        exclude=exclude,
        share_level=share_level,
    )
    options = MassOptions(normalize, exclude, share_level)
    colors = region_colors(run)
    figure = go.Figure()
    for label in frame.columns:
        name = label.removesuffix(OWN_SUFFIX) if label not in run.regions else label
        parent = run.regions[name].parent
        figure.add_trace(
            go.Scatter(
                x=frame.index.to_numpy(),
                y=frame[label].to_numpy(),
                name=_label(label if parent is None else f"{label} (in {parent})"),
                mode="lines+markers",
                marker={"size": 4},
                line={"color": colors[name], "width": 2},
                hovertemplate=f"{_label(label)}<br>layer %{{x}}: %{{y:.4g}}<extra></extra>",
            )
        )
    who = "head average" if head is None else f"head {head}"
    excluded = excluded_note(options.exclusion)
    figure.update_layout(
        title=_label(
            f"Cooking curves at query {run.query_name(query)!r} ({who}, {normalize}{excluded})"
        ),
        xaxis_title="layer",
        yaxis_title=y_title(normalize, options.exclusion),
        legend_title_text="region (click to hide)",
        template="plotly_white",
        height=420,
    )
    return figure


@seam.provide("lens_figure", Run)
def lens_figure(run: Run, query: str | int | None = None, k: int = 5) -> go.Figure:
    """Logit lens at one query: a layer x top-k grid of the most probable
    next tokens (shade = probability), and, beside it, the rank of each
    tracked token per layer (log scale, 1 = the model's top prediction)."""
    table = run.lens_table(query=query, k=k)  # validates query and k
    k = sum(column.startswith("top_") for column in table.columns)
    q = run.query_index(query)
    lens = run.lens
    layers = np.arange(run.n_layers)
    tokens = [[_label(repr(table[f"top_{j + 1}"][layer])) for j in range(k)] for layer in layers]
    figure = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        column_widths=[0.62, 0.38],
        horizontal_spacing=0.04,
        subplot_titles=(f"top {k} next tokens per layer", "rank of the tracked tokens"),
    )
    figure.add_trace(
        go.Heatmap(
            z=lens.top_probs[:, q, :k],
            x=[f"top {j + 1}" for j in range(k)],
            y=layers,
            text=tokens,
            texttemplate="%{text}",
            textfont={"size": 10},
            colorscale="Blues",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": "p", "x": -0.12, "len": 0.6},
            hovertemplate="layer %{y}, %{x}: %{text}<br>p = %{z:.3g}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for t, token in enumerate(lens.tracked_tokens):
        figure.add_trace(
            go.Scatter(
                x=lens.tracked_ranks[:, q, t],
                y=layers,
                customdata=lens.tracked_probs[:, q, t],
                mode="lines+markers",
                marker={"size": 5},
                name=_label(repr(token)),
                hovertemplate=f"{_label(repr(token))}<br>layer %{{y}}: rank %{{x}}, "
                "p = %{customdata:.3g}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    if not lens.tracked_tokens:
        figure.add_annotation(
            text="no tracked tokens<br>(regions: tracked_tokens)",
            showarrow=False,
            row=1,
            col=2,
            x=0,
            y=run.n_layers / 2,
        )
    figure.update_xaxes(type="log", title_text="rank (log)", row=1, col=2)
    figure.update_yaxes(title_text="layer", autorange="reversed", row=1, col=1)
    figure.update_layout(
        title=_label(f"Logit lens at query {run.query_name(query)!r}"),
        template="plotly_white",
        height=max(380, 22 * run.n_layers + 140),
        legend_title_text="tracked token",
    )
    return figure


# ---------------------------------------------------------------- token heatmap


def _colorbar(scale: HeatmapScale) -> dict:
    """Ticks at weights (the colour axis runs 0..1) and a title naming the scale."""
    if scale.log and scale.low > 0 and scale.high > scale.low:
        span = math.log10(scale.high / scale.low)
        decades = range(math.ceil(math.log10(scale.low)), math.floor(math.log10(scale.high)) + 1)
        weights = sorted({scale.low, scale.high, *(10.0**d for d in decades)})
        places = [math.log10(w / scale.low) / span for w in weights]
        keep = [i for i, x in enumerate(places) if i in (0, len(places) - 1) or 0.06 < x < 0.94]
        weights, places = [weights[i] for i in keep], [places[i] for i in keep]
    else:
        weights = [0.0, scale.high / 2, scale.high]
        places = [0.0, 0.5, 1.0]
    title = scale.describe().replace("; ", ";<br>")
    return {
        "title": {"text": f"weight<br><sub>{title}</sub>"},
        "tickvals": places,
        "ticktext": [f"{w:.2g}" for w in weights],
    }


@seam.provide("heatmap_figure", Run)
def heatmap_figure(
    run: Run,
    layer: int | None = None,
    query: str | int | None = None,
    head: int | None = None,
    per_row: int = 16,
    scale: str = DEFAULT_HEATMAP_SCALE,
) -> go.Figure:
    """Token heatmap: the prompt's tokens in reading order, `per_row` to a
    row, each shaded by the attention `query` pays it at `layer` (head
    average, or one `head`), on the colour scale of the widget's default
    (`scale`, one of `HEATMAP_SCALES`; the colour bar names it). As in the
    widget, the first token (the attention sink) is left out of the scale and
    uncoloured, so the rest stay visible."""
    if isinstance(per_row, bool) or not isinstance(per_row, int) or per_row < 1:
        raise ArgumentError(f"per_row must be a positive int, got {per_row!r}.")
    layer = _layer(run, layer)
    q = run.query_index(query)
    name = run.query_name(query)
    rows = run._attention_rows(q, head).astype(np.float64)  # (layer, pos)
    row = rows[layer]
    masked = np.zeros(run.n_tokens, dtype=bool)
    masked[0] = run.n_tokens > 1
    colours = heatmap_scale(rows, layer, run.queries[name] + 1, masked, scale)
    n_rows = math.ceil(run.n_tokens / per_row)
    cells = n_rows * per_row
    places = np.full(cells, np.nan)
    places[: run.n_tokens] = colours.fractions(row, masked)
    owner = {int(i): name for name, info in run.regions.items() for i in info.token_indices}
    texts = [_label(t) for t in run.tokens] + [""] * (cells - run.n_tokens)
    regions = [_label(owner.get(i, "(none)")) for i in range(run.n_tokens)]
    weights = [
        f"{w:.4g}" + (" (masked out of the colour scale)" if masked[i] else "")
        for i, w in enumerate(row)
    ]
    custom = np.array(
        [[i, regions[i], weights[i]] if i < run.n_tokens else ["", "", ""] for i in range(cells)],
        dtype=object,
    ).reshape(n_rows, per_row, 3)
    figure = go.Figure(
        go.Heatmap(
            z=places.reshape(n_rows, per_row),
            text=np.array(texts, dtype=object).reshape(n_rows, per_row),
            customdata=custom,
            texttemplate="%{text}",
            textfont={"size": 10, "family": "monospace"},
            colorscale=HEATMAP_COLORSCALE,
            zmin=0.0,
            zmax=1.0,
            xgap=1,
            ygap=1,
            colorbar=_colorbar(colours),
            hovertemplate="token %{customdata[0]} %{text}<br>region %{customdata[1]}"
            "<br>weight %{customdata[2]}<extra></extra>",
        )
    )
    who = "head average" if head is None else f"head {head}"
    figure.update_layout(
        title=_label(f"Attention of query {name!r} at layer {layer} ({who})"),
        template="plotly_white",
        height=max(400, 26 * n_rows + 120),  # room for the colour bar and its title
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, autorange="reversed")
    return figure


# ---------------------------------------------------------------- comparisons and run sets

VARIANT_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
"""Colours of the variants after the baseline (drawn dark grey, dashed)."""
BASELINE_COLOR = "#374151"
VARIANT_DASHES = ("solid", "dot", "dashdot", "longdash")
"""Line styles of the variants in figures coloured by token (the baseline is dashed)."""
FACET_COLUMNS = 3
"""Regions per row in the per-region figures."""


def _rgba(color: str, alpha: float) -> str:
    """ "#rrggbb" as an rgba() string with `alpha`."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _line_with_band(
    rows: pd.DataFrame,
    columns: tuple[str, str, str],
    *,
    name: str,
    color: str,
    dash: str = "solid",
    group: str,
    show_legend: bool,
    hover: str,
) -> list[go.Scatter]:
    """The line of `rows[columns[0]]` against `rows["layer"]` and, where the
    band edges `columns[1:]` are known, the band between them drawn under it
    (one closed polygon; NaN gaps are left out). `name` and `hover` are
    already escaped."""
    x = rows["layer"].to_numpy()
    mean, low, high = (rows[column].to_numpy(dtype=np.float64) for column in columns)
    traces = []
    known = ~(np.isnan(low) | np.isnan(high))
    if known.any():
        xs, lo, hi = x[known], low[known], high[known]
        traces.append(
            go.Scatter(
                x=np.concatenate([xs, xs[::-1]]),
                y=np.concatenate([hi, lo[::-1]]),
                fill="toself",
                fillcolor=_rgba(color, 0.15),
                line={"width": 0},
                mode="lines",
                hoverinfo="skip",
                showlegend=False,
                legendgroup=group,
                name=name,
            )
        )
    traces.append(
        go.Scatter(
            x=x,
            y=mean,
            name=name,
            mode="lines",
            line={"color": color, "width": 2, "dash": dash},
            legendgroup=group,
            showlegend=show_legend,
            hovertemplate=hover + "<br>layer %{x}: %{y:.4g}<extra></extra>",
        )
    )
    return traces


def _facets(names: list[str], title: str, y_title: str) -> go.Figure:
    """An empty grid with one subplot per name (FACET_COLUMNS to a row)."""
    cols = min(FACET_COLUMNS, max(len(names), 1))
    rows = max(math.ceil(len(names) / cols), 1)
    figure = make_subplots(
        rows=rows,
        cols=cols,
        shared_xaxes=True,
        subplot_titles=[_label(n) for n in names],
        horizontal_spacing=0.06,
        vertical_spacing=min(0.12, 0.5 / rows),
    )
    figure.update_xaxes(title_text="layer", row=rows)
    figure.update_yaxes(title_text=y_title, col=1)
    figure.update_layout(title=_label(title), template="plotly_white", height=120 + 260 * rows)
    return figure


def _cell(index: int) -> tuple[int, int]:
    """(row, col) of facet `index` in `_facets`' grid, counted from 1."""
    return index // FACET_COLUMNS + 1, index % FACET_COLUMNS + 1


def _overlay_by_region(
    figure: go.Figure,
    regions: list[str],
    tables: Mapping[str, pd.DataFrame],
    columns: tuple[str, str, str],
) -> None:
    """Into `figure`'s facets (one per region, `_facets`), a line and band per
    named table (rows of region, layer and `columns`): the first table is the
    baseline, dark grey and dashed; the others solid in VARIANT_COLORS, as
    the widgets draw variants and RunSets."""
    for i, region in enumerate(regions):
        row, col = _cell(i)
        for s, (name, table) in enumerate(tables.items()):
            label = _label(name)
            for trace in _line_with_band(
                table.loc[table["region"] == region],
                columns,
                name=label,
                color=BASELINE_COLOR if s == 0 else VARIANT_COLORS[(s - 1) % len(VARIANT_COLORS)],
                dash="dash" if s == 0 else "solid",
                group=name,
                show_legend=i == 0,
                hover=f"{label}, {_label(region)}",
            ):
                figure.add_trace(trace, row=row, col=col)


def _band_name(options) -> str:
    return f"{options.level:.0%} {options.interval}-interval"


def _comparison_regions(cmp: Comparison, regions: list[str] | None) -> list[str]:
    if regions is None:
        return list(cmp.regions)
    unknown = [r for r in regions if r not in cmp.regions]
    if unknown or not regions:
        raise SelectionError(
            f"regions={regions!r} must name some of the comparison's regions {cmp.regions}."
        )
    return list(regions)


@seam.provide("curves_figure", Comparison)
def comparison_curves_figure(
    cmp: Comparison, query: str | int | None = None, regions: list[str] | None = None
) -> go.Figure:
    """Cooking curves of a comparison: one subplot per region, a line per
    variant (the baseline dashed, each variant solid), attention mass as in
    `cmp.deltas` with every layer. Variants that are RunSets carry their
    confidence band (the interval of the mean, `cmp.options`). Clicking a
    legend entry hides that variant in every subplot."""
    query = cmp.query_name(query)
    names = _comparison_regions(cmp, regions)
    table = cmp.with_options(layers=None).deltas
    table = table.loc[table["query"] == query]
    opts = cmp.options
    has_bands = table["mass_low"].notna().any()
    exclusion = opts.mass_options.exclusion
    title = f"Cooking curves per region at query {query!r} (baseline dashed"
    title += excluded_note(exclusion)
    title += f"; bands: {_band_name(opts)} of the mean)" if has_bands else ")"
    figure = _facets(names, title, y_title(opts.normalize, exclusion))
    tables = {name: table.loc[table["variant"] == name] for name in cmp.names}  # baseline first
    _overlay_by_region(figure, names, tables, ("mass", "mass_low", "mass_high"))
    figure.update_layout(legend_title_text="variant (click to hide)")
    return figure


@seam.provide("delta_figure", Comparison)
def delta_figure(
    cmp: Comparison, query: str | int | None = None, regions: list[str] | None = None
) -> go.Figure:
    """Change of each region's attention mass against the baseline, per layer:
    one subplot per variant, a line per region (`cmp.deltas["delta"]` with
    every layer) and, where known, its interval (paired per case or Welch, see
    `Comparison.deltas`). A region absent from either side has no line."""
    query = cmp.query_name(query)
    names = _comparison_regions(cmp, regions)
    variants = cmp.names[1:]
    table = cmp.with_options(layers=None).deltas
    table = table.loc[table["query"] == query]
    colors = _comparison_region_colors(cmp)
    figure = make_subplots(
        rows=len(variants),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[_label(f"{n} − {cmp.baseline}") for n in variants],
        vertical_spacing=min(0.12, 0.5 / len(variants)),
    )
    for row, name in enumerate(variants, start=1):
        for region in names:
            rows = table.loc[(table["variant"] == name) & (table["region"] == region)]
            if rows["delta"].isna().all():
                continue
            label = _label(region)
            for trace in _line_with_band(
                rows,
                ("delta", "delta_low", "delta_high"),
                name=label,
                color=colors[region],
                group=region,
                show_legend=row == 1,
                hover=f"{_label(name)}, {label}: Δ",
            ):
                figure.add_trace(trace, row=row, col=1)
        # plotly leaves row/col unannotated; pyright takes the default "all" for their type
        figure.add_hline(
            y=0,
            line={"color": "#9ca3af", "width": 1},
            row=row,  # pyright: ignore[reportArgumentType]
            col=1,  # pyright: ignore[reportArgumentType]
        )
    has_bands = table["delta_low"].notna().any()
    exclusion = cmp.options.mass_options.exclusion
    title = f"Change of attention mass against {cmp.baseline!r} at query {query!r}"
    notes = ([f"{exclusion.describe()} excluded"] if exclusion.any else []) + (
        [f"bands: {_band_name(cmp.options)} of the delta"] if has_bands else []
    )
    title += f" ({'; '.join(notes)})" if notes else ""
    figure.update_xaxes(title_text="layer", row=len(variants))
    figure.update_yaxes(title_text=f"Δ {y_title(cmp.options.normalize, exclusion)}")
    figure.update_layout(
        title=_label(title),
        template="plotly_white",
        height=140 + 280 * len(variants),
        legend_title_text="region (click to hide)",
    )
    return figure


def _comparison_region_colors(cmp: Comparison) -> dict[str, str]:
    """A colour per region of the comparison: the baseline's own colours
    (as in its widgets), then the palette for regions only variants have."""
    colors: dict[str, str] = {}
    for value in cmp.variants.values():
        for run in value.runs if isinstance(value, RunSet) else (value,):
            for name, color in region_colors(run).items():
                colors.setdefault(name, color)
    return colors


@seam.provide("lens_figure", Comparison)
def comparison_lens_figure(cmp: Comparison, query: str | int | None = None) -> go.Figure:
    """Tracked tokens per layer in each variant: rank (log scale, 1 = the
    model's top prediction) on the left, probability on the right; a colour
    per token, the baseline dashed. Values are `cmp.lens_deltas` with every
    layer (means over the cases for RunSets)."""
    query = cmp.query_name(query)
    table = cmp.with_options(layers=None).lens_deltas
    table = table.loc[table["query"] == query]
    figure = make_subplots(
        rows=1,
        cols=2,
        shared_xaxes=True,
        horizontal_spacing=0.08,
        subplot_titles=("rank of the tracked tokens", "probability of the tracked tokens"),
    )
    for t, token in enumerate(cmp.tracked_tokens):
        color = VARIANT_COLORS[t % len(VARIANT_COLORS)]
        for v, name in enumerate(cmp.names):
            rows = table.loc[(table["variant"] == name) & (table["token"] == token)]
            label = _label(f"{token!r} {name}")
            dash = "dash" if v == 0 else VARIANT_DASHES[(v - 1) % len(VARIANT_DASHES)]
            for col, column in ((1, "rank"), (2, "prob")):
                figure.add_trace(
                    go.Scatter(
                        x=rows["layer"].to_numpy(),
                        y=rows[column].to_numpy(),
                        name=label,
                        mode="lines+markers",
                        marker={"size": 4},
                        line={"color": color, "dash": dash, "width": 2},
                        legendgroup=f"token{t}-variant{v}",
                        showlegend=col == 1,
                        hovertemplate=f"{label}<br>layer %{{x}}: {column} %{{y:.4g}}"
                        "<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
    if not cmp.tracked_tokens:
        figure.add_annotation(
            text="no tracked tokens<br>(regions: tracked_tokens)",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
    figure.update_yaxes(type="log", title_text="rank (log)", row=1, col=1)
    figure.update_yaxes(title_text="probability", row=1, col=2)
    figure.update_xaxes(title_text="layer")
    figure.update_layout(
        title=_label(f"Tracked tokens at query {query!r} (baseline dashed)"),
        template="plotly_white",
        height=440,
        legend_title_text="token, variant",
    )
    return figure


@seam.provide("aggregate_figure", RunSet)
def aggregate_figure(
    runsets: RunSet | Mapping[str, RunSet] | Sequence[RunSet],
    query: str | int | None = None,
    normalize: str = "raw",
    regions: Sequence[str] | None = None,
    *,
    level: float = 0.95,
    interval: str = "t",
    exclude: str | tuple[str, ...] | None = AUTO,
    share_level: str | int = LEAVES,
) -> go.Figure:
    """Mean cooking curves of RunSets with their confidence bands (`RunSet.aggregate`,
    with the same `exclude` and `share_level`; the title says what was excluded).

    One RunSet: a line per region in one panel. Several (a dict name ->
    RunSet, or a list): one subplot per region, a line and band per set,
    overlaid, the first dashed as the baseline (as `comparison_curves_figure`
    draws a comparison). `level` and `interval` ("t" or "bootstrap") set the band."""
    sets = named_sets(runsets)
    tables = {
        name: rs.aggregate(
            query,
            normalize,
            regions,
            level=level,
            interval=interval,
            exclude=exclude,
            share_level=share_level,
        )
        for name, rs in sets.items()
    }
    exclusion = MassOptions(normalize, exclude, share_level).exclusion
    axis_title = y_title(normalize, exclusion)
    first = next(iter(sets.values()))
    query_name = first.query_name(query)
    band = f"{level:.0%} {interval}-interval of the mean over the cases"
    band += excluded_note(exclusion)
    if len(sets) == 1:
        (table,) = tables.values()
        colors = region_colors(first[0])
        figure = go.Figure()
        for key, rows in table.groupby("region", sort=False):
            region = str(key)  # a region name (pandas types group keys as Hashable)
            label = _label(region)
            for trace in _line_with_band(
                rows,
                ("mean", "low", "high"),
                name=label,
                color=colors[region],
                group=region,
                show_legend=True,
                hover=label,
            ):
                figure.add_trace(trace)
        n = len(first.cases)
        figure.update_layout(
            title=_label(f"Cooking curves of {n} cases at query {query_name!r} (bands: {band})"),
            xaxis_title="layer",
            yaxis_title=axis_title,
            legend_title_text="region (click to hide)",
            template="plotly_white",
            height=440,
        )
        return figure
    names = list(dict.fromkeys(r for table in tables.values() for r in table["region"]))
    baseline = next(iter(tables))
    title = f"Cooking curves per region at query {query_name!r}"
    title += f" ({baseline} dashed, the baseline; bands: {band})"
    figure = _facets(names, title, axis_title)
    _overlay_by_region(figure, names, tables, ("mean", "low", "high"))
    figure.update_layout(legend_title_text="run set (click to hide)")
    return figure


def named_sets(runsets: object, what: str = "aggregate_figure") -> dict[str, RunSet]:
    """RunSets by name from one RunSet ("runs"), a dict name -> RunSet or a
    list (named "set 0", ...); `what` names the caller in the error."""
    if isinstance(runsets, RunSet):
        return {"runs": runsets}
    if isinstance(runsets, Mapping):
        sets = {str(name): value for name, value in runsets.items()}
    elif isinstance(runsets, Sequence) and not isinstance(runsets, str):
        sets = {f"set {i}": value for i, value in enumerate(runsets)}
    else:
        sets = {}
    if not sets or not all(isinstance(v, RunSet) for v in sets.values()):
        raise ArgumentError(
            f"{what} takes a tw.RunSet, a dict name -> RunSet or a list of RunSets, got "
            f"{type(runsets).__name__}. Wrap single runs as tw.RunSet([run, ...])."
        )
    return sets
