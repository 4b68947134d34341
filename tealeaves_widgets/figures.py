"""Static plotly figures of a `Run`: cooking curves, logit lens, token heatmap.

The same views as the widgets, for papers, reports and places without a
kernel or anywidget. They read a `Run` (plain numpy), never a model. Token
text goes through `html.escape`, because plotly reads a subset of HTML in
labels (`<br>`, `<b>`, `<a href>`): a prompt containing markup shows as text.
"""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .errors import TealeavesError
from .palette import region_colors
from .run import Run

Y_TITLES = {
    "raw": "attention mass",
    "share": "share of the selected regions' mass",
    "per-region": "mass, min-max scaled per region",
    "density": "mass per token",
}
"""y-axis title of the cooking curves for each normalisation."""

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


def _query_name(run: Run, query: str | int | None) -> str:
    return list(run.queries)[run.query_index(run._default_query() if query is None else query)]


def _layer(run: Run, layer: int | None) -> int:
    if layer is None:
        return run.n_layers // 2
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise TealeavesError(f"layer must be an int, got {layer!r}.")
    if not -run.n_layers <= layer < run.n_layers:
        raise TealeavesError(
            f"layer={layer} is out of range; this run has layers 0..{run.n_layers - 1}."
        )
    return int(layer) % run.n_layers


def curves_figure(
    run: Run,
    query: str | int | None = None,
    normalize: str = "raw",
    regions: list[str] | tuple[str, ...] | None = None,
    head: int | None = None,
) -> go.Figure:
    """Cooking curves: one line per region, attention mass (as `Run.curves`
    with the same arguments) against layer. Clicking a legend entry hides it."""
    frame = run.curves(query=query, normalize=normalize, regions=regions, head=head)
    colors = region_colors(run)
    figure = go.Figure()
    for name in frame.columns:
        parent = run.regions[name].parent
        figure.add_trace(
            go.Scatter(
                x=frame.index.to_numpy(),
                y=frame[name].to_numpy(),
                name=_label(name if parent is None else f"{name} (in {parent})"),
                mode="lines+markers",
                marker={"size": 4},
                line={"color": colors[name], "width": 2},
                hovertemplate=f"{_label(name)}<br>layer %{{x}}: %{{y:.4g}}<extra></extra>",
            )
        )
    who = "head average" if head is None else f"head {head}"
    figure.update_layout(
        title=_label(f"Cooking curves at query {_query_name(run, query)!r} ({who}, {normalize})"),
        xaxis_title="layer",
        yaxis_title=Y_TITLES[normalize],
        legend_title_text="region (click to hide)",
        template="plotly_white",
        height=420,
    )
    return figure


def lens_figure(run: Run, query: str | int | None = None, k: int = 5) -> go.Figure:
    """Logit lens at one query: a layer x top-k grid of the most probable
    next tokens (shade = probability), and, beside it, the rank of each
    tracked token per layer (log scale, 1 = the model's top prediction)."""
    table = run.lens_table(query=query, k=k)  # validates query and k
    k = sum(column.startswith("top_") for column in table.columns)
    q = run.query_index(run._default_query() if query is None else query)
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
        title=_label(f"Logit lens at query {_query_name(run, query)!r}"),
        template="plotly_white",
        height=max(380, 22 * run.n_layers + 140),
        legend_title_text="tracked token",
    )
    return figure


def heatmap_figure(
    run: Run,
    layer: int | None = None,
    query: str | int | None = None,
    head: int | None = None,
    per_row: int = 16,
) -> go.Figure:
    """Token heatmap: the prompt's tokens in reading order, `per_row` to a
    row, each shaded by the attention `query` pays it at `layer` (head
    average, or one `head`). As in the widget's default, the first token (the
    attention sink) is left out of the colour scale so the rest stay visible."""
    if isinstance(per_row, bool) or not isinstance(per_row, int) or per_row < 1:
        raise TealeavesError(f"per_row must be a positive int, got {per_row!r}.")
    layer = _layer(run, layer)
    q = run.query_index(run._default_query() if query is None else query)
    row = run._attention_rows(q, head)[layer].astype(np.float64)  # (pos,)
    n_rows = math.ceil(run.n_tokens / per_row)
    cells = n_rows * per_row
    weights = np.full(cells, np.nan)
    weights[: run.n_tokens] = row
    owner = {int(i): name for name, info in run.regions.items() for i in info.token_indices}
    texts = [_label(t) for t in run.tokens] + [""] * (cells - run.n_tokens)
    regions = [_label(owner.get(i, "(none)")) for i in range(run.n_tokens)]
    custom = np.array(
        [[i, regions[i] if i < run.n_tokens else ""] for i in range(cells)], dtype=object
    ).reshape(n_rows, per_row, 2)
    scale_max = float(np.max(row[1:])) if run.n_tokens > 1 else float(np.max(row))
    figure = go.Figure(
        go.Heatmap(
            z=weights.reshape(n_rows, per_row),
            text=np.array(texts, dtype=object).reshape(n_rows, per_row),
            customdata=custom,
            texttemplate="%{text}",
            textfont={"size": 10, "family": "monospace"},
            colorscale=HEATMAP_COLORSCALE,
            zmin=0.0,
            zmax=scale_max if scale_max > 0 else 1.0,
            xgap=1,
            ygap=1,
            colorbar={"title": "weight"},
            hovertemplate="token %{customdata[0]} %{text}<br>region %{customdata[1]}"
            "<br>weight %{z:.4g}<extra></extra>",
        )
    )
    who = "head average" if head is None else f"head {head}"
    name = _query_name(run, query)
    figure.update_layout(
        title=_label(f"Attention of query {name!r} at layer {layer} ({who})"),
        template="plotly_white",
        height=max(300, 26 * n_rows + 120),
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, autorange="reversed")
    return figure
