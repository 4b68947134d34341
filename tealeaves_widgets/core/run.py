"""The result of one captured forward pass: `Run`, with its lens and regions.

A `Run` holds plain numpy arrays and Python data, never a tensor or a model, so
it can be saved, reopened without a model, and handed to the widgets.
Dimension names: layer, head, query, pos, vocab, region, tracked, k.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ArgumentError
from . import seam
from .deprecation import deprecated_alias
from .heatmap_scale import DEFAULT_HEATMAP_SCALE
from .masses import (
    AUTO,
    FIRST,
    LEAVES,
    Layout,
    MassOptions,
    excluded_tokens,
    layout,
    own_label,
    region_curves,
    resolve_exclusion,
)
from .masses import (
    NORMALIZATIONS as NORMALIZATIONS,
)
from .residuals import check_source
from .selection import check_index, resolve_query, resolve_regions

if TYPE_CHECKING:  # figures live in tealeaves_widgets.present, reached through the seam
    import plotly.graph_objects as go

    from .head_grid import HeadGrid
    from .layer_stats import LayerStats, RegionAttention
    from .neurons import Activations, NeuronActivations
    from .residuals import CrossLayerCosine, ResidualDecomposition


@dataclass(frozen=True)
class RegionInfo:
    """A named region of the rendered prompt and the tokens it owns."""

    name: str
    """Unique name, e.g. "system", "user", "template" or a user-defined name."""
    section: str
    """The role section it lies in ("system", "user", "response", ...), or
    "template" for the chat-template region."""
    char_span: tuple[int, int]
    """Half-open character span [start, end) in `Run.text`. For the built-in
    "template" region, which is not contiguous, (0, len(text))."""
    token_indices: NDArray[np.int64]
    """(n_tokens,) sorted token positions assigned to this region."""
    parent: str | None = None
    """Name of the enclosing user-defined region, or None at the top level."""
    builtin: bool = False
    """True for the regions that exist without configuration."""


@dataclass(frozen=True)
class Lens:
    """Logit-lens readings at the captured query positions, one per layer.

    Layer l is the residual stream after decoder block l, passed through the
    model's final norm and unembedding (and final logit softcapping where the
    model has it). The last layer therefore equals the model's own output.
    """

    top_ids: NDArray[np.int64]
    """(layer, query, k) token ids of the k most probable next tokens."""
    top_probs: NDArray[np.float32]
    """(layer, query, k) their probabilities."""
    entropy: NDArray[np.float32]
    """(layer, query) entropy of the predicted distribution, in nats."""
    kl_to_final: NDArray[np.float32]
    """(layer, query) KL(final layer || this layer), in nats; 0 at the last layer."""
    tracked_ids: NDArray[np.int64]
    """(tracked,) token ids that were tracked."""
    tracked_tokens: tuple[str, ...]
    """(tracked,) the tracked tokens as the user wrote them."""
    tracked_ranks: NDArray[np.int64]
    """(layer, query, tracked) rank of each tracked token, 1 = most probable."""
    tracked_probs: NDArray[np.float32]
    """(layer, query, tracked) probability of each tracked token."""
    vocab: dict[int, str] = field(default_factory=dict)
    """Decoded text of every token id that appears in `top_ids` or `tracked_ids`."""


QUERY_METHODS = ("cache", "pass")
"""How `Model.read_query` computes a query position after the capture: "cache",
one decode step on the kept KV cache of the prompt; "pass", one captured
forward pass of the prompt."""


@dataclass(frozen=True)
class QueryReading:
    """One more query position of a captured prompt, read after the capture
    (`Model.read_query`, a click in the explorer): what a capture with this
    query among its `query_positions` gives for it. `Run.with_query` adds it."""

    name: str
    """The query's name: "pos:<i>" unless one was given (as for a capture)."""
    position: int
    """Token position of the query."""
    attention_heads: NDArray[np.float32]
    """(layer, head, pos) attention rows of every query head; 0 after `position`."""
    lens: Lens
    """The logit lens at the position: a query axis of length 1, the run's
    tracked tokens and top-k."""
    method: str
    """How it was computed, one of `QUERY_METHODS`."""
    note: str = ""
    """Why it took a forward pass rather than the kept cache, when it did."""
    seconds: float = 0.0
    """Wall time of the computation."""


@dataclass(frozen=True, repr=False)
class Run:
    """One captured forward pass over one rendered prompt."""

    text: str
    """The prompt as rendered by the chat template (or the plain layout)."""
    tokens: tuple[str, ...]
    """(pos,) text of each token, `text[start:end]` of its offsets."""
    token_ids: NDArray[np.int64]
    """(pos,) token ids fed to the model."""
    offsets: NDArray[np.int64]
    """(pos, 2) half-open character span of each token in `text`."""
    regions: dict[str, RegionInfo]
    """Region name -> region, built-in regions first, then user regions in
    definition order (parents before children)."""
    queries: dict[str, int]
    """Query name -> token position, in the order the rows are stored."""
    attention: NDArray[np.float32]
    """(layer, query, pos) head-averaged attention rows."""
    attention_heads: NDArray[np.float32]
    """(layer, head, query, pos) attention rows of every query head."""
    lens: Lens
    """Logit-lens readings at the query positions."""
    model_info: dict
    """Model id, architecture, dtype, device, n_layers, n_heads, package versions."""
    case: dict = field(default_factory=dict)
    """The case as given (roles and text), so nothing typed is lost."""
    region_spec: dict = field(default_factory=dict)
    """The region definition as given, in the regions.json schema."""

    # -- sizes and lookups -------------------------------------------------

    @property
    def n_layers(self) -> int:
        """Number of decoder layers captured."""
        return int(self.attention.shape[0])

    @property
    def n_heads(self) -> int:
        """Number of query heads per layer."""
        return int(self.attention_heads.shape[1])

    @property
    def n_queries(self) -> int:
        """Number of query positions captured."""
        return len(self.queries)

    @property
    def n_tokens(self) -> int:
        """Number of tokens in the rendered prompt."""
        return len(self.tokens)

    def query_name(self, query: str | int | None = None) -> str:
        """The name of the query `query` selects: a name, an int index into
        `queries` order (negative counts from the end; not a token position),
        or None for "final" when the run has it, else the first query."""
        return resolve_query(query, list(self.queries), "this run")

    def query_index(self, query: str | int | None = None) -> int:
        """Row of `query` (as `query_name` reads it) in the (query) axis."""
        return list(self.queries).index(self.query_name(query))

    def with_query(self, reading: QueryReading) -> Run:
        """This run with one more query, appended after the others: `reading`'s
        rows and lens (from `Model.read_query`). The region spec lists the new
        position too, so the run reads as a capture with that query."""
        self._check_reading(reading)
        lens, added = self.lens, reading.lens
        heads = np.concatenate(
            [self.attention_heads, reading.attention_heads[:, :, None, :]],
            axis=2,
        )

        def extend(mine: NDArray, theirs: NDArray) -> NDArray:
            return np.concatenate([mine, theirs.astype(mine.dtype, copy=False)], axis=1)

        spec = dict(self.region_spec)
        positions = list(spec.get("query_positions", ["final"] if self.queries else []))
        default = f"pos:{reading.position}"
        entry = reading.position if reading.name == default else None
        positions.append(
            entry if entry is not None else {"position": reading.position, "name": reading.name}
        )
        spec["query_positions"] = positions
        return replace(
            self,
            queries={**self.queries, reading.name: int(reading.position)},
            attention=np.concatenate(
                [self.attention, reading.attention_heads.mean(axis=1)[:, None, :]], axis=1
            ).astype(self.attention.dtype, copy=False),
            attention_heads=heads.astype(self.attention_heads.dtype, copy=False),
            lens=replace(
                lens,
                top_ids=extend(lens.top_ids, added.top_ids),
                top_probs=extend(lens.top_probs, added.top_probs),
                entropy=extend(lens.entropy, added.entropy),
                kl_to_final=extend(lens.kl_to_final, added.kl_to_final),
                tracked_ranks=extend(lens.tracked_ranks, added.tracked_ranks),
                tracked_probs=extend(lens.tracked_probs, added.tracked_probs),
                vocab={**lens.vocab, **added.vocab},
            ),
            region_spec=spec,
        )

    def _check_reading(self, reading: QueryReading) -> None:
        """Refuse a reading that does not fit this run, saying what differs."""
        if not isinstance(reading, QueryReading):
            raise ArgumentError(
                f"with_query expects a QueryReading (from model.read_query), got "
                f"{type(reading).__name__}."
            )
        if reading.name in self.queries:
            raise ArgumentError(
                f"This run has a query named {reading.name!r} already (at position "
                f"{self.queries[reading.name]}); give the new one another name."
            )
        if not 0 <= reading.position < self.n_tokens:
            raise ArgumentError(
                f"Query position {reading.position} is outside this run's {self.n_tokens} "
                f"tokens (0..{self.n_tokens - 1})."
            )
        expected = (self.n_layers, self.n_heads, self.n_tokens)
        k, tracked = self.lens.top_ids.shape[2], self.lens.tracked_ids.shape[0]
        lens = reading.lens
        shapes_fit = (
            reading.attention_heads.shape == expected
            and lens.top_ids.shape == (self.n_layers, 1, k)
            and lens.tracked_ranks.shape == (self.n_layers, 1, tracked)
            and np.array_equal(lens.tracked_ids, self.lens.tracked_ids)
        )
        if not shapes_fit:
            raise ArgumentError(
                f"The reading of query {reading.name!r} does not fit this run: expected "
                f"(layer, head, pos) rows {expected}, a lens of top-{k} over 1 query and the "
                f"run's {tracked} tracked tokens; got rows {reading.attention_heads.shape}, "
                f"top ids {lens.top_ids.shape}, tracked ranks {lens.tracked_ranks.shape}. "
                "Read it with model.read_query(run, position) on this run."
            )

    # -- tables ------------------------------------------------------------

    def curves(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: list[str] | tuple[str, ...] | None = None,
        head: int | None = None,
        *,
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
    ) -> pd.DataFrame:
        """Attention mass the query gives each region, per layer.

        Mass is the sum of the attention row (head-averaged, or one `head`)
        over the region's tokens. `exclude` removes tokens first: "first" (the
        first token, the attention sink), a region's name ("template": the chat
        markup), a tuple of those, or None; what is left is renormalised, so
        masses are fractions of the non-excluded attention (`excluded_mass`
        gives the excluded part). Default "auto": the first token for "share",
        nothing for the others. `normalize`:
          - "raw": the mass itself (over the kept attention when something is
            excluded).
          - "share": over a partition of the prompt, so each token counts once
            and a row sums to 1: with `share_level="leaves"` each token counts
            in its innermost region, so a parent's column (named "<name> (own)")
            is its tokens outside its children and a section's the tokens
            outside its user regions; an int level d stops at depth d of the
            region tree (0: the built-in sections; 1: top-level user regions and
            the rest of each section; ...). A layer with nothing left gives 0.
          - "per-region": the raw curve min-max scaled to 0..1 across layers, as
            in TeaLeaves; a constant region gives 0.
          - "density": the raw value divided by the region's number of kept
            tokens.
        Returns a (layer, region) frame: index "layer", a column per region in
        `regions` order (default: every region that has a value, in
        `self.regions` order). `frame.attrs` holds "normalize", "exclude" (what
        was excluded, in words) and "share_level". See `core.masses`.
        """
        options = MassOptions(normalize, exclude, share_level)
        q = self.query_index(query)
        where = layout(self, options)
        if regions is None:
            names = [name for name in self.regions if name in where.counted]
        else:
            names = resolve_regions(regions, list(self.regions))
            _check_columns(names, where, options)
        found = region_curves(self._attention_rows(q, head), self, names, options, where=where)
        labels = [own_label(n, own) for n, own in zip(names, found.own, strict=True)]
        frame = pd.DataFrame(found.values, columns=pd.Index(labels, name="region"))
        frame.index = pd.RangeIndex(self.n_layers, name="layer")
        frame.attrs = {
            "normalize": normalize,
            "exclude": options.exclusion.describe(),
            "share_level": options.share_level,
        }
        return frame

    def excluded_mass(
        self,
        query: str | int | None = None,
        exclude: str | tuple[str, ...] | None = FIRST,
        head: int | None = None,
    ) -> pd.Series:
        """Attention the query pays the tokens `exclude` names, per layer: a
        fraction of the whole row (what `curves(exclude=...)` leaves out).
        Default: the first token, the attention sink. Index "layer"; the
        Series is named after what is excluded ("first token")."""
        exclusion = resolve_exclusion(exclude, "raw")
        rows = self._attention_rows(self.query_index(query), head).astype(np.float64)
        mass = rows[:, excluded_tokens(self, exclusion)].sum(axis=1)
        return pd.Series(
            mass, index=pd.RangeIndex(self.n_layers, name="layer"), name=exclusion.describe()
        )

    def _attention_rows(self, q: int, head: int | None) -> NDArray[np.float32]:
        if head is None:
            return self.attention[:, q, :]
        return self.attention_heads[:, check_index(head, self.n_heads, "head"), q, :]

    def lens_table(self, query: str | int | None = None, k: int = 5) -> pd.DataFrame:
        """Logit-lens readings at one query, one row per layer.

        Columns: `layer`, `top_1..top_k` (token text), `p_1..p_k`, `entropy`,
        `kl_to_final`, then `rank[<tok>]` and `p[<tok>]` for each tracked token.
        `k` larger than the top-k the run stored is cut to it. A token id missing
        from `lens.vocab` shows as "<id N>".
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ArgumentError(f"k must be a positive int, got {k!r}.")
        k = min(int(k), int(self.lens.top_ids.shape[2]))
        q = self.query_index(query)
        lens = self.lens
        columns: dict[str, object] = {"layer": np.arange(self.n_layers)}
        for j in range(k):
            columns[f"top_{j + 1}"] = [self._token_text(i) for i in lens.top_ids[:, q, j]]
        for j in range(k):
            columns[f"p_{j + 1}"] = lens.top_probs[:, q, j]
        columns["entropy"] = lens.entropy[:, q]
        columns["kl_to_final"] = lens.kl_to_final[:, q]
        for t, token in enumerate(lens.tracked_tokens):
            columns[f"rank[{token}]"] = lens.tracked_ranks[:, q, t]
            columns[f"p[{token}]"] = lens.tracked_probs[:, q, t]
        return pd.DataFrame(columns)

    def _token_text(self, token_id: int) -> str:
        return self.lens.vocab.get(int(token_id), f"<id {int(token_id)}>")

    # -- display and files -------------------------------------------------

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        queries = ", ".join(
            f"{name} @{pos} {self.tokens[pos]!r}" if 0 <= pos < self.n_tokens else f"{name} @{pos}"
            for name, pos in self.queries.items()
        )
        regions = ", ".join(
            f"{name} ({info.token_indices.size} tok"
            + (f", in {info.parent})" if info.parent else ")")
            for name, info in self.regions.items()
        )
        return (
            f"Run({model}: {self.n_tokens} tokens, {self.n_layers} layers x {self.n_heads} heads)\n"
            f"  queries: {queries or '(none)'}\n"
            f"  regions: {regions or '(none)'}"
        )

    # -- views, figures and files: code of the layers above core, reached
    # through the seam (see tealeaves_widgets.core.seam)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel a run displays as `tw.Explorer(run)`."""
        return seam.display_bundle(self, include, exclude)

    def curves_figure(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: list[str] | tuple[str, ...] | None = None,
        head: int | None = None,
        *,
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
    ) -> go.Figure:
        """Static plotly figure of `curves(query, normalize, regions, head, exclude=,
        share_level=)`; the title says what was excluded."""
        return seam.call(
            "curves_figure",
            self,
            query=query,
            normalize=normalize,
            regions=regions,
            head=head,
            exclude=exclude,
            share_level=share_level,
        )

    def lens_figure(self, query: str | int | None = None, k: int = 5) -> go.Figure:
        """Static plotly figure of the logit lens at `query`: top-k grid per
        layer and the tracked tokens' rank trajectories."""
        return seam.call("lens_figure", self, query=query, k=k)

    def heatmap_figure(
        self,
        layer: int | None = None,
        query: str | int | None = None,
        head: int | None = None,
        per_row: int = 16,
        scale: str = DEFAULT_HEATMAP_SCALE,
    ) -> go.Figure:
        """Static plotly figure of the tokens shaded by the attention `query`
        pays them at `layer` (default: the middle layer, as the widgets), on
        the widget's colour `scale` ("log-layer", "linear", "log", "layer")."""
        return seam.call(
            "heatmap_figure",
            self,
            layer=layer,
            query=query,
            head=head,
            per_row=per_row,
            scale=scale,
        )

    def save_png(
        self,
        path: str | PathLike[str],
        layer: int | None = None,
        query: str | int | None = None,
        head: int | None = None,
        *,
        scale: str = DEFAULT_HEATMAP_SCALE,
        mask_sink: bool = True,
        mask_template: bool = False,
        width: int = 1600,
        dpi: int = 150,
    ) -> Path:
        """Write the token heatmap at `layer` (default: the middle layer) as a
        PNG: the prompt's tokens, wrapped, each shaded by the attention `query`
        pays it (head average, or one `head`) in the widget's colours, region
        underlines, a title and a colour bar. `scale` ("log-layer", the
        widget's default, "linear", "log", "layer"), `mask_sink` and
        `mask_template` as in `tw.TokenHeatmap`; the caption says the scale's
        range and what was masked. `width` in pixels. Needs matplotlib
        (`pip install "tealeaves-widgets[render]"`). Returns the path written."""
        return seam.call(
            "save_png",
            self,
            path,
            layer=layer,
            query=query,
            head=head,
            scale=scale,
            mask_sink=mask_sink,
            mask_template=mask_template,
            width=width,
            dpi=dpi,
        )

    def save_gif(
        self,
        path: str | PathLike[str],
        query: str | int | None = None,
        head: int | None = None,
        *,
        scale: str = DEFAULT_HEATMAP_SCALE,
        mask_sink: bool = True,
        mask_template: bool = False,
        width: int = 1200,
        dpi: int = 110,
        duration: int = 400,
    ) -> Path:
        """Write the token heatmap layer by layer as an animated GIF: one frame
        per layer, `duration` milliseconds each (the last one longer), drawn
        as `save_png`. Returns the path written."""
        return seam.call(
            "save_gif",
            self,
            path,
            query=query,
            head=head,
            scale=scale,
            mask_sink=mask_sink,
            mask_template=mask_template,
            width=width,
            dpi=dpi,
            duration=duration,
        )

    def save_curves_png(
        self,
        path: str | PathLike[str],
        query: str | int | None = None,
        normalize: str = "raw",
        regions: list[str] | tuple[str, ...] | None = None,
        head: int | None = None,
        *,
        layer: int | None = None,
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
        width: int = 1600,
        dpi: int = 150,
    ) -> Path:
        """Write the cooking curves (`curves(query, normalize, regions, head,
        exclude=, share_level=)`, a line per region in its colour) as a PNG,
        with a cursor at `layer` when given; the title says what was
        excluded. Returns the path written."""
        return seam.call(
            "save_curves_png",
            self,
            path,
            query=query,
            normalize=normalize,
            regions=regions,
            head=head,
            layer=layer,
            exclude=exclude,
            share_level=share_level,
            width=width,
            dpi=dpi,
        )

    def save(self, path: str | PathLike[str]) -> Path:
        """Write this run to `path` (any suffix; ".tlrun" is suggested) as one
        safetensors file; reopen it with `tw.open_run`. Returns the path written."""
        return seam.call("save", self, path)

    # -- measurements that need the model again (one forward pass of
    # `token_ids`), carried out in tealeaves_widgets.models through the seam

    def residual_decomposition(self, model: Any = None) -> ResidualDecomposition:
        """What each block adds to the residual stream at this run's queries:
        per layer the norms of the block's input, attention term, MLP term
        and output, and the cosine of each contribution with the output
        (`tw.ResidualDecomposition`; `display(result)` shows a
        `tw.ResidualView`). One forward pass of this run's `token_ids` on
        `model`, by default the model that captured the run (while it is
        alive in this session); a run opened from a file needs `model=`."""
        return seam.call(
            "residual_decomposition", self, model=self._model_for("residual_decomposition", model)
        )

    def cross_layer_cosine(
        self, source: str = "hidden_out", query: str | int | None = None, *, model: Any = None
    ) -> CrossLayerCosine:
        """The (layer, layer) cosine between `source`'s states at every pair of
        layers, at `query` (as `curves` selects it; default "final"):
        `source` is one of `core.residuals.CROSS_SOURCES` ("hidden_out", the
        stream after each block, by default). One forward pass of this run's
        `token_ids` on `model`, by default the model that captured the run; a
        run opened from a file needs `model=`. Returns a
        `tw.CrossLayerCosine` (`display(result)` shows a `tw.CrossLayerView`)."""
        check_source(source)
        name = self.query_name(query)
        return seam.call(
            "cross_layer_cosine",
            self,
            model=self._model_for("cross_layer_cosine", model),
            source=source,
            query=name,
        )

    def layer_stats(self, *, model: Any = None) -> LayerStats:
        """Per layer and head, statistics of the attention weights over the
        causal entries of every row of this prompt (mean, sd and max weight,
        normalised entropy, sink mass, mean distance, mean row maximum; see
        `tealeaves_widgets.core.layer_stats`). One forward pass of this run's
        `token_ids` on `model`, by default the model that captured the run; a
        run opened from a file needs `model=`. Returns `tw.LayerStats`."""
        return seam.call("layer_stats", self, model=self._model_for("layer_stats", model))

    def region_attention(self, src: str, dst: str, *, model: Any = None) -> RegionAttention:
        """Per layer and head, the attention `src`'s tokens (as queries,
        averaged over them) pay `dst`'s tokens (summed); `.table()` gives the
        mean, max and sd over heads per layer. One forward pass of this run's
        `token_ids` on `model`, by default the model that captured the run; a
        run opened from a file needs `model=`. Returns `tw.RegionAttention`."""
        return seam.call(
            "region_attention",
            self,
            model=self._model_for("region_attention", model),
            src=src,
            dst=dst,
        )

    def head_grid(self, layer: int, *, full: bool = False, model: Any = None) -> HeadGrid:
        """Every head's (query, key) attention matrix at `layer` (negative
        counts from the end), as a `tw.HeadGrid` of float16 (head, T', T')
        patterns; `display(grid)` shows the heads as small multiples, one
        enlarged. A prompt longer than 1,024 tokens is pooled into blocks
        (T' <= 1,024; see `tealeaves_widgets.core.head_grid`) unless
        `full=True`, which keeps the exact T x T of every head (head x T^2 x
        2 bytes; the view still pools it for display). One forward pass of
        this run's `token_ids` on `model` that keeps that layer's matrix
        only; by default the model that captured the run; a run opened from
        a file needs `model=`."""
        return seam.call(
            "head_grid", self, model=self._model_for("head_grid", model), layer=layer, full=full
        )

    def activations(
        self,
        positions: Any = "all",
        sources: Any = None,
        layers: Any = None,
        *,
        model: Any = None,
    ) -> Activations:
        """The residual stream leaving each block ("hidden_out"), the MLP
        activations ("mlp_act") and each head's output ("head_out", the
        output projection's input split per head) at `positions` ("all",
        "queries", a region name or token indices) and `layers` (default
        all), from one plain forward pass of this run's `token_ids` on
        `model` (by default the model that captured the run). `sources`:
        names of `core.neurons.ACTIVATION_SOURCES` (default every one the
        architecture has). Returns `tw.Activations` (numpy, float32)."""
        from .neurons import check_layers, check_sources, resolve_positions

        found, _ = resolve_positions(
            positions, self.n_tokens, self.queries, self.regions, "this run"
        )
        return seam.call(
            "activations",
            self,
            model=self._model_for("activations", model),
            positions=found,
            sources=None if sources is None else check_sources(sources),
            layers=check_layers(layers, self.n_layers, "this run"),
        )

    def neurons(
        self,
        layer: int,
        source: str = "mlp_act",
        positions: Any = "all",
        top_k: int = 50,
        *,
        include_first: bool = False,
        model: Any = None,
    ) -> NeuronActivations:
        """The `top_k` most variable neurons of `layer` (highest population
        sd over the chosen positions) as a neurons x tokens matrix: `source`
        "mlp_act" (the MLP's activations) or "hidden_out" (the residual
        stream after the block), `positions` "all" or a region name.
        Position 0 (the first token, often a sink with huge activations)
        is left out of the ranking unless `include_first=True` (the
        result's `note` says so). One forward pass of this run's
        `token_ids` on `model`, by default the model that captured the run.
        Returns `tw.NeuronActivations` (`display(result)` shows a heatmap)."""
        from .neurons import run_neurons

        return run_neurons(
            self, layer, source, positions, top_k, include_first=include_first, model=model
        )

    def _model_for(self, operation: str, model: Any) -> Any:
        """`model`, else the model that captured this run, else a clear error."""
        if model is not None:
            return model
        found = seam.model_of(self)
        if found is None:
            captured = self.model_info.get("model_id", "an unknown model")
            raise ArgumentError(
                f"run.{operation}() needs the model: this run was captured with {captured!r}, "
                "which is not remembered in this session (the run was opened from a file, "
                "derived from another run, or its model is gone). Pass it: "
                f"run.{operation}(model=tw.load_model(...))."
            )
        return found

    # -- deprecated spellings (one release): the widget classes are the one way

    explorer = deprecated_alias("run.explorer(...)", "tw.Explorer(run, ...)", "Explorer")
    heatmap = deprecated_alias("run.heatmap(...)", "tw.TokenHeatmap(run, ...)", "TokenHeatmap")
    curves_view = deprecated_alias("run.curves_view(...)", "tw.CurvesView(run, ...)", "CurvesView")
    lens_view = deprecated_alias("run.lens_view(...)", "tw.LensView(run, ...)", "LensView")


def _check_columns(names: list[str], where: Layout, options: MassOptions) -> None:
    """Refuse regions asked for by name that have no value under `options`."""
    missing = [name for name in names if name not in where.counted]
    if not missing:
        return
    if options.normalize == "share" and options.share_level != LEAVES:
        raise ArgumentError(
            f"Region(s) {missing} have no share at share_level={options.share_level!r}: they lie "
            "deeper in the region tree (or every token they hold is excluded). Pass a deeper "
            'share_level or "leaves", or drop them from regions=.'
        )
    raise ArgumentError(
        f"Region(s) {missing} have no value: every token they hold is excluded "
        f"(exclude={options.exclusion.spec!r}). Drop them from regions= or exclude less."
    )
