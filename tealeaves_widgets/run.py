"""The result of one captured forward pass: `Run`, with its lens and regions.

A `Run` holds plain numpy arrays and Python data, never a tensor or a model, so
it can be saved, reopened without a model, and handed to the widgets.
Dimension names: layer, head, query, pos, vocab, region, tracked, k.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .errors import TealeavesError

if TYPE_CHECKING:  # the views are imported on first use, never with this module
    import plotly.graph_objects as go

    from .widgets import CurvesView, Explorer, LensView, TokenHeatmap

NORMALIZATIONS = ("raw", "share", "per-region", "density")
"""Valid values of `Run.curves(normalize=...)`."""


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

    def query_index(self, query: str | int) -> int:
        """Row of `query` in the (query) axis: a query name, or an int index
        into `queries` order (negative counts from the end). Not a token position."""
        names = list(self.queries)
        if isinstance(query, str):
            if query in self.queries:
                return names.index(query)
            raise TealeavesError(
                f"Unknown query {query!r}; this run has queries {names}. "
                "Pass one of those names or an index into that list."
            )
        if isinstance(query, bool):
            raise TealeavesError(f"Expected a query name or int index, got {query!r}.")
        try:
            index = operator.index(query)
        except TypeError:
            raise TealeavesError(
                f"Expected a query name or int index, got {type(query).__name__} {query!r}; "
                f"valid names are {names}."
            ) from None
        if not -len(names) <= index < len(names):
            raise TealeavesError(
                f"Query index {index} is out of range for {len(names)} queries {names}; "
                "an int indexes the queries in order, it is not a token position."
            )
        return index % len(names)

    def _default_query(self) -> str | int:
        return "final" if "final" in self.queries else 0

    def _region_names(self, regions: list[str] | tuple[str, ...] | None) -> list[str]:
        if regions is None:
            return list(self.regions)
        if isinstance(regions, str):
            regions = [regions]
        names = list(regions)
        unknown = [name for name in names if name not in self.regions]
        if unknown:
            raise TealeavesError(
                f"Unknown region(s) {unknown}; this run has regions {list(self.regions)}."
            )
        if not names:
            raise TealeavesError(
                f"regions=[] selects nothing; pass None for all of {list(self.regions)}."
            )
        if len(set(names)) != len(names):
            raise TealeavesError(f"regions={names} names a region twice; list each once.")
        return names

    # -- tables ------------------------------------------------------------

    def curves(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: list[str] | tuple[str, ...] | None = None,
        head: int | None = None,
    ) -> pd.DataFrame:
        """Attention mass the query gives each region, per layer.

        Mass is the sum of the attention row (head-averaged, or one `head`)
        over the region's tokens. `normalize`:
          - "raw": the mass itself.
          - "share": each layer's masses divided by their sum over the selected
            regions. Nested regions are counted in full alongside their parent,
            so select non-overlapping regions for shares of the whole.
            A layer whose masses sum to 0 gives 0.
          - "per-region": each region min-max scaled to 0..1 across layers, as in
            TeaLeaves; a constant region gives 0.
          - "density": mass divided by the region's number of tokens (NaN for a
            region without tokens).
        Returns a (layer, region) frame: index "layer", one column per region in
        `regions` order (default: all, in `self.regions` order).
        """
        if normalize not in NORMALIZATIONS:
            raise TealeavesError(
                f"Unknown normalize={normalize!r}; use one of {list(NORMALIZATIONS)}."
            )
        q = self.query_index(self._default_query() if query is None else query)
        names = self._region_names(regions)
        rows = self._attention_rows(q, head)  # (layer, pos)
        mass = np.stack(
            [rows[:, self.regions[name].token_indices].sum(axis=1) for name in names], axis=1
        ).astype(np.float64)  # (layer, region)
        values = _normalize(mass, normalize, [self.regions[n].token_indices.size for n in names])
        frame = pd.DataFrame(values, columns=pd.Index(names, name="region"))
        frame.index = pd.RangeIndex(self.n_layers, name="layer")
        return frame

    def _attention_rows(self, q: int, head: int | None) -> NDArray[np.float32]:
        if head is None:
            return self.attention[:, q, :]
        if isinstance(head, bool) or not isinstance(head, (int, np.integer)):
            raise TealeavesError(f"head must be None or an int, got {head!r}.")
        if not 0 <= head < self.n_heads:
            raise TealeavesError(
                f"head={head} is out of range; this run has {self.n_heads} heads "
                f"(0..{self.n_heads - 1}). Pass head=None for the average."
            )
        return self.attention_heads[:, int(head), q, :]

    def lens_table(self, query: str | int | None = None, k: int = 5) -> pd.DataFrame:
        """Logit-lens readings at one query, one row per layer.

        Columns: `layer`, `top_1..top_k` (token text), `p_1..p_k`, `entropy`,
        `kl_to_final`, then `rank[<tok>]` and `p[<tok>]` for each tracked token.
        `k` larger than the top-k the run stored is cut to it. A token id missing
        from `lens.vocab` shows as "<id N>".
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise TealeavesError(f"k must be a positive int, got {k!r}.")
        k = min(int(k), int(self.lens.top_ids.shape[2]))
        q = self.query_index(self._default_query() if query is None else query)
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

    # -- views: imported on first use, so this module needs neither the widgets
    # (anywidget) nor plotly

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel a run displays as an `Explorer`."""
        return widget_mimebundle(repr(self), self.explorer, include, exclude)

    def explorer(self, **options: Any) -> Explorer:
        """Token heatmap, cooking curves and logit lens, linked: one layer, one
        query and one region selection. `options`: `tw.Explorer`'s (query=,
        layer=, head=, scale=, normalize=, region=, ...). `display(run)` shows one."""
        from .widgets import Explorer

        return Explorer(self, **options)

    def heatmap(self, **options: Any) -> TokenHeatmap:
        """The token heatmap alone (`tw.TokenHeatmap`: query=, layer=, head=, scale=)."""
        from .widgets import TokenHeatmap

        return TokenHeatmap(self, **options)

    def curves_view(self, **options: Any) -> CurvesView:
        """The cooking curves alone, as a widget (`tw.CurvesView`: query=, head=,
        normalize=, region=, hidden=)."""
        from .widgets import CurvesView

        return CurvesView(self, **options)

    def lens_view(self, **options: Any) -> LensView:
        """The logit lens alone, as a widget (`tw.LensView`: query=, layer=)."""
        from .widgets import LensView

        return LensView(self, **options)

    def curves_figure(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: list[str] | tuple[str, ...] | None = None,
        head: int | None = None,
    ) -> go.Figure:
        """Static plotly figure of `curves(query, normalize, regions, head)`."""
        from .figures import curves_figure

        return curves_figure(self, query=query, normalize=normalize, regions=regions, head=head)

    def lens_figure(self, query: str | int | None = None, k: int = 5) -> go.Figure:
        """Static plotly figure of the logit lens at `query`: top-k grid per
        layer and the tracked tokens' rank trajectories."""
        from .figures import lens_figure

        return lens_figure(self, query=query, k=k)

    def heatmap_figure(
        self,
        layer: int | None = None,
        query: str | int | None = None,
        head: int | None = None,
        per_row: int = 16,
    ) -> go.Figure:
        """Static plotly figure of the tokens shaded by the attention `query`
        pays them at `layer` (default: the middle layer, as the widgets)."""
        from .figures import heatmap_figure

        return heatmap_figure(self, layer=layer, query=query, head=head, per_row=per_row)

    def save(self, path: str | PathLike[str]) -> Path:
        """Write this run to `path` (any suffix; ".tlrun" is suggested) as one
        safetensors file; reopen it with `open_run`. Returns the path written."""
        from .runfile import save_run

        return save_run(self, path)


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (not a terminal IPython or plain Python),
    the one place a widget can be shown."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def widget_mimebundle(
    text: str, make_view: Callable[[], Any], include: Any = None, exclude: Any = None
) -> dict | tuple:
    """The display of a core result (a Run, RunSet or Comparison): in a Jupyter
    kernel, the mime bundle of the view `make_view()` builds with "text/plain"
    set to `text` for plain-text front ends; elsewhere, or where the widgets
    cannot be imported, the text alone. `make_view` imports the widgets, so
    they load on display only."""
    plain = {"text/plain": text}
    if not _in_kernel():
        return plain
    try:
        view = make_view()
    except ImportError:  # widgets not installed: the text is all we can show
        return plain
    bundle = view._repr_mimebundle_(include=include, exclude=exclude)
    if isinstance(bundle, tuple):  # (data, metadata), as anywidget returns it
        return ({**bundle[0], **plain}, bundle[1])
    return {**bundle, **plain}


def _normalize(mass: NDArray[np.float64], normalize: str, sizes: list[int]) -> NDArray:
    """Apply one of `NORMALIZATIONS` to a (layer, region) mass table."""
    if normalize == "raw":
        return mass
    if normalize == "share":
        total = mass.sum(axis=1, keepdims=True)
        return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)
    if normalize == "per-region":
        low, high = mass.min(axis=0), mass.max(axis=0)
        span = high - low
        return np.divide(mass - low, span, out=np.zeros_like(mass), where=span > 0)
    counts = np.asarray(sizes, dtype=np.float64)
    return np.divide(mass, counts, out=np.full_like(mass, np.nan), where=counts > 0)
