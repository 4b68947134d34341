"""Activations at chosen positions, and the neurons that vary most (numpy and
pandas): `Activations` (`Model.activations`, `Run.activations`),
`NeuronActivations` (`Run.neurons`, `Model.neurons`) and `NeuronComparison`
(`tw.compare_neurons`).

Sources (`ACTIVATION_SOURCES`), read in one plain forward pass through the
named sites of `models.hooks`:

- "hidden_out": the residual stream leaving a block (site "block_output");
- "mlp_act": the MLP's activations, the input of its down projection:
  act(gate) * up in a gated MLP, act(fc) in a plain one (site "mlp_act");
- "head_out": each head's output, the input of the attention's output
  projection split per head (site "o_proj_input"), (head, head_dim).

Neurons of a layer are the coordinates of "mlp_act" or "hidden_out" there.
`Run.neurons` picks the `top_k` neurons with the largest sd (population, over
the positions scored) and keeps their activations at every chosen position.
The first token (position 0, a BOS or the template's first marker) often has
activations orders of magnitude above the rest (an attention sink), and would
pick the neurons by itself: it is left out of the selection (and of the
colour scale) unless `include_first=True`; its column is still shown, and the
result's `note` says so.

`compare_neurons` reads the same layer of several prompts: the mean
activation of each neuron over each prompt's scored positions, and keeps the
`k` neurons whose means spread most across the prompts (population sd over
the prompts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ArgumentError, ArgumentTypeError, EmptyRegionError, SelectionError
from . import seam
from .selection import check_index

if TYPE_CHECKING:
    from .run import RegionInfo, Run

ACTIVATION_SOURCES: dict[str, str] = {
    "hidden_out": "the residual stream leaving the block, (position, hidden)",
    "mlp_act": "the MLP's activations, the input of its down projection, (position, d_mlp)",
    "head_out": "each head's output, the output projection's input, (position, head, head_dim)",
}
"""Source -> what it holds at one layer (`Activations.values[source]` adds a
leading layer axis)."""
NEURON_SOURCES = ("mlp_act", "hidden_out")
"""The sources whose coordinates `Run.neurons` and `compare_neurons` rank."""
POSITION_KEYWORDS = ("all", "queries")
"""Position specs that are not region names: every token, the query positions."""
SELECTION_RULE = "highest sd over the positions scored"
COMPARISON_RULE = "highest sd across the prompts of the per-prompt mean"


def check_sources(sources: object) -> tuple[str, ...]:
    """`sources` (a name or names of `ACTIVATION_SOURCES`) as a tuple, else a clear error."""
    items = [sources] if isinstance(sources, str) else sources
    if not isinstance(items, (list, tuple)) or not items:
        raise ArgumentTypeError(
            f"sources must be a name or a list of names of {list(ACTIVATION_SOURCES)}, "
            f"got {sources!r}."
        )
    unknown = [s for s in items if s not in ACTIVATION_SOURCES]
    if unknown:
        raise SelectionError(
            f"Unknown source(s) {unknown}; the sources are {list(ACTIVATION_SOURCES)}."
        )
    return tuple(dict.fromkeys(items))


def check_neuron_source(source: object) -> str:
    """`source` when it is one of `NEURON_SOURCES`, else a clear error."""
    if source not in NEURON_SOURCES:
        raise SelectionError(
            f"Unknown neuron source {source!r}; choose one of {list(NEURON_SOURCES)} "
            '("mlp_act": the MLP\'s activations, "hidden_out": the residual stream).'
        )
    return str(source)


def check_count(value: object, what: str) -> int:
    """`value` as an int >= 1 (a top_k or k), else a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(
            f"{what} must be an int >= 1, got {type(value).__name__} {value!r}."
        )
    if value < 1:
        raise ArgumentError(f"{what} must be at least 1, got {value}.")
    return int(value)


def check_layers(layers: object, n_layers: int, owner: str) -> list[int]:
    """`layers` (None: all, an int or ints) as sorted distinct layer indices."""
    if layers is None:
        return list(range(n_layers))
    items = [layers] if isinstance(layers, (int, np.integer)) else layers
    if not isinstance(items, (list, tuple, range, np.ndarray)) or len(items) == 0:
        raise ArgumentTypeError(f"layers must be None, an int or a list of ints, got {layers!r}.")
    return sorted({check_index(layer, n_layers, "layer", owner) for layer in items})


def resolve_positions(
    spec: object,
    n_tokens: int,
    queries: Mapping[str, int],
    regions: Mapping[str, RegionInfo],
    what: str,
) -> tuple[NDArray[np.int64], str]:
    """The token positions `spec` names, and a label for them: "all" (every
    token), "queries" (the query positions, in query order), a region name
    (its tokens), or a list of token indices (negative count from the end).
    The keywords win over a region of the same name."""
    if isinstance(spec, str):
        if spec == "all":
            return np.arange(n_tokens, dtype=np.int64), "all"
        if spec == "queries":
            found = list(dict.fromkeys(int(p) for p in queries.values()))
            if not found:
                raise ArgumentError(f"{what[:1].upper()}{what[1:]} has no query position.")
            return np.asarray(found, np.int64), "queries"
        if spec not in regions:
            raise SelectionError(
                f"Unknown region {spec!r}; positions takes {list(POSITION_KEYWORDS)}, a list "
                f"of token indices, or a region of {what}: {list(regions)}."
            )
        tokens = np.asarray(regions[spec].token_indices, np.int64)
        if tokens.size == 0:
            raise EmptyRegionError(
                f"Region {spec!r} holds no token in {what}; pick a region with tokens."
            )
        return tokens, spec
    if isinstance(spec, (list, tuple, range, np.ndarray)) and len(spec) > 0:
        items = list(spec)
        bad = [
            p
            for p in items
            if isinstance(p, bool)
            or not isinstance(p, (int, np.integer))
            or not -n_tokens <= p < n_tokens
        ]
        if not bad:
            return np.asarray([int(p) % n_tokens for p in items], np.int64), "positions"
        raise SelectionError(
            f"positions {bad} are not token indices of {what} ({n_tokens} tokens, "
            f"0..{n_tokens - 1})."
        )
    raise ArgumentTypeError(
        f"positions must be {' or '.join(map(repr, POSITION_KEYWORDS))}, a region name or a "
        f"non-empty list of token indices; got {spec!r}."
    )


@dataclass(frozen=True, repr=False)
class Activations:
    """Values of `ACTIVATION_SOURCES` at chosen token positions and layers,
    from one plain forward pass."""

    values: dict[str, NDArray[np.float32]]
    """Source -> (layer, position, dim) float32; "head_out" (layer, position,
    head, head_dim)."""
    layers: NDArray[np.int64]
    """(layer,) the layers kept, in order."""
    positions: NDArray[np.int64]
    """(position,) the token positions kept, in the order asked."""
    tokens: tuple[str, ...]
    """(position,) the text of each kept token."""
    model_info: dict

    def __getitem__(self, source: str) -> NDArray[np.float32]:
        if source not in self.values:
            raise SelectionError(f"Source {source!r} was not read; read: {list(self.values)}.")
        return self.values[source]

    def at(self, source: str, layer: int) -> NDArray[np.float32]:
        """(position, ...) values of `source` at `layer` (a layer index of the model)."""
        kept = [int(x) for x in self.layers]
        if layer not in kept:
            raise SelectionError(f"Layer {layer!r} was not read; the layers read are {kept}.")
        return self[source][kept.index(layer)]

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        shapes = ", ".join(f"{s} {tuple(a.shape)}" for s, a in self.values.items())
        return (
            f"Activations({model}: {len(self.positions)} positions, layers "
            f"{[int(x) for x in self.layers]}: {shapes})"
        )


def top_variable(values: NDArray, scored: NDArray[np.bool_], k: int) -> tuple[NDArray, NDArray]:
    """The `k` columns of (position, neuron) `values` with the largest
    population sd over the `scored` rows (ties: the lower index first), and
    their sds (float64)."""
    sd = np.asarray(values, np.float64)[np.asarray(scored, bool)].std(axis=0)
    order = np.argsort(-sd, kind="stable")[:k]
    return order.astype(np.int64), sd[order]


def _neuron_repr(
    header: str, heading: str, neurons: NDArray, score: str, scores: NDArray, note: str
) -> str:
    """The repr of a neuron result: `header`, its first five neurons with
    their `score` under `heading`, and its `note` when it has one."""
    top = ", ".join(f"{n} ({score} {s:.3g})" for n, s in zip(neurons[:5], scores[:5], strict=True))
    lines = [header, f"  {heading}: {top}"]
    if note:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _first_note(values: NDArray, positions: NDArray, scored: NDArray, token: str) -> str:
    """The note on position 0 left out of the ranking ("" when it was not)."""
    first = np.asarray(positions) == 0
    if not first.any() or scored[first].all():
        return ""
    rest = np.abs(values[~first]).max() if (~first).any() else 0.0
    top = np.abs(values[first]).max()
    if not rest:
        here = ""
    elif top > rest:
        here = (
            f" Here it does: its largest |activation| is {top / rest:.3g}x the other "
            "positions' largest."
        )
    else:
        here = (
            f" Here it does not (its largest |activation| is {top / rest:.3g}x the other "
            "positions' largest), so include_first=True would change little."
        )
    return (
        f"Position 0 {token!r} is left out of the ranking and the colour scale: the first "
        "token can carry activations far larger than the rest (an attention sink) and then "
        f"picks the neurons by itself.{here} Its column is still shown; pass "
        "include_first=True to count it."
    )


@dataclass(frozen=True, repr=False)
class NeuronActivations:
    """The most variable neurons of one layer and source at chosen positions:
    a neurons x tokens matrix (see the module docstring for the rule)."""

    layer: int
    source: str
    """"mlp_act" or "hidden_out"."""
    neurons: NDArray[np.int64]
    """(k,) neuron indices (coordinates of the source), most variable first."""
    values: NDArray[np.float32]
    """(k, position) activations of those neurons at every chosen position."""
    sd: NDArray[np.float64]
    """(k,) the population sd over the scored positions that ranked them."""
    positions: NDArray[np.int64]
    """(position,) token positions of the columns."""
    tokens: tuple[str, ...]
    """(position,) the text of each column's token."""
    scored: NDArray[np.bool_]
    """(position,) which columns entered the selection and the colour scale."""
    n_neurons: int
    """Number of neurons the source has at this layer."""
    positions_label: str
    """"all", "queries", "positions" or the region's name."""
    include_first: bool
    """Whether position 0 was scored."""
    note: str
    """What to keep in mind reading it (position 0 left out, top_k clamped); "" if nothing."""
    model_info: dict

    @classmethod
    def select(
        cls,
        activations: NDArray,
        layer: int,
        source: str,
        positions: NDArray,
        tokens: Sequence[str],
        top_k: int,
        *,
        include_first: bool = False,
        positions_label: str = "all",
        model_info: dict | None = None,
    ) -> NeuronActivations:
        """Rank the neurons of (position, neuron) `activations` and keep the `top_k`."""
        values = np.asarray(activations, np.float32)
        positions = np.asarray(positions, np.int64)
        if values.ndim != 2 or values.shape[0] != positions.size:
            raise ArgumentError(
                f"Expected (position, neuron) activations for {positions.size} positions, got "
                f"shape {values.shape}."
            )
        top_k = check_count(top_k, "top_k")
        scored = positions != 0 if not include_first else np.ones(positions.size, bool)
        if scored.sum() < 2:
            raise ArgumentError(
                f"Ranking neurons by their sd needs at least 2 positions to score; the "
                f"{positions_label!r} positions {positions.tolist()} leave {int(scored.sum())}"
                + ("" if include_first else " (position 0 is not scored)")
                + ". Choose more positions (a longer region, or 'all')"
                + ("." if include_first else ", or pass include_first=True.")
            )
        n_neurons = values.shape[1]
        notes = []
        first = _first_note(values, positions, scored, str(tokens[0]) if len(tokens) else "")
        if first:
            notes.append(first)
        if top_k > n_neurons:
            notes.append(f"top_k={top_k} is more than the {n_neurons} neurons: all are shown.")
        neurons, sd = top_variable(values, scored, min(top_k, n_neurons))
        return cls(
            layer=int(layer),
            source=source,
            neurons=neurons,
            values=np.ascontiguousarray(values[:, neurons].T),
            sd=sd,
            positions=positions,
            tokens=tuple(str(t) for t in tokens),
            scored=scored,
            n_neurons=int(n_neurons),
            positions_label=positions_label,
            include_first=bool(include_first),
            note=" ".join(notes),
            model_info=dict(model_info or {}),
        )

    @classmethod
    def from_activations(
        cls,
        acts: Activations,
        layer: int,
        source: str,
        top_k: int,
        *,
        include_first: bool,
        positions_label: str,
    ) -> NeuronActivations:
        """`select` on the values of `source` at `layer` read into `acts` (its
        positions, tokens and model info): the last step of `Run.neurons` and
        `Model.neurons`."""
        return cls.select(
            acts.at(source, layer),
            layer,
            source,
            acts.positions,
            acts.tokens,
            top_k,
            include_first=include_first,
            positions_label=positions_label,
            model_info=acts.model_info,
        )

    @property
    def rule(self) -> str:
        """How the neurons were picked, in words."""
        first = "" if self.include_first else ", position 0 excluded"
        return f"top {len(self.neurons)} of {self.n_neurons} by {SELECTION_RULE}{first}"

    @property
    def vmax(self) -> float:
        """The colour scale's bound: the largest |value| over the scored
        columns (the view spans -vmax..vmax, 0 at the centre)."""
        scored = self.values[:, self.scored]
        return float(np.abs(scored).max()) if scored.size else 0.0

    def table(self) -> pd.DataFrame:
        """One row per neuron, most variable first: its sd (the score), mean,
        min and max over the scored positions, and where its largest |value| is."""
        scored = self.values[:, self.scored].astype(np.float64)
        columns = np.flatnonzero(self.scored)
        peak = columns[np.abs(scored).argmax(axis=1)]
        return pd.DataFrame(
            {
                "neuron": self.neurons,
                "sd": self.sd,
                "mean": scored.mean(axis=1),
                "min": scored.min(axis=1),
                "max": scored.max(axis=1),
                "peak_position": self.positions[peak],
                "peak_token": [self.tokens[i] for i in peak],
            },
            index=pd.RangeIndex(len(self.neurons), name="rank"),
        )

    def frame(self) -> pd.DataFrame:
        """The neurons x tokens matrix (index: neuron; columns: "pos:token")."""
        columns = [f"{p}:{t}" for p, t in zip(self.positions, self.tokens, strict=True)]
        return pd.DataFrame(
            self.values, index=pd.Index(self.neurons, name="neuron"), columns=columns
        )

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        where = "all tokens" if self.positions_label == "all" else repr(self.positions_label)
        header = (
            f"NeuronActivations({model}: layer {self.layer} {self.source}, "
            f"{len(self.neurons)} neurons x {len(self.positions)} positions ({where}); "
            f"{self.rule})"
        )
        return _neuron_repr(header, "most variable", self.neurons, "sd", self.sd, self.note)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel it displays as its view (`display(result)`)."""
        return seam.display_bundle(self, include, exclude)


@dataclass(frozen=True, repr=False)
class NeuronComparison:
    """The neurons of one layer and source whose mean activation differs
    most across prompts: a neurons x prompts matrix (see the module docstring)."""

    layer: int
    source: str
    labels: tuple[str, ...]
    """(prompt,) one label per prompt."""
    neurons: NDArray[np.int64]
    """(k,) neuron indices, largest spread first."""
    means: NDArray[np.float64]
    """(k, prompt) mean activation over each prompt's scored positions."""
    spread: NDArray[np.float64]
    """(k,) population sd of each neuron's means across the prompts (the score)."""
    n_positions: NDArray[np.int64]
    """(prompt,) how many positions each mean is over."""
    n_neurons: int
    positions_label: str
    include_first: bool
    note: str
    model_info: dict

    @classmethod
    def select(
        cls,
        means: NDArray,
        layer: int,
        source: str,
        labels: Sequence[str],
        n_positions: Sequence[int],
        k: int,
        *,
        include_first: bool = False,
        positions_label: str = "all",
        model_info: dict | None = None,
    ) -> NeuronComparison:
        """Keep the `k` neurons of (prompt, neuron) `means` that spread most across prompts."""
        means = np.asarray(means, np.float64)
        k = check_count(k, "k")
        if means.ndim != 2 or means.shape[0] != len(labels):
            raise ArgumentError(
                f"Expected (prompt, neuron) means for {len(labels)} prompts, got {means.shape}."
            )
        n_neurons = means.shape[1]
        neurons, spread = top_variable(means, np.ones(len(labels), bool), min(k, n_neurons))
        notes = []
        if not include_first:
            notes.append("Position 0 is left out of every prompt's mean (pass include_first=True).")
        if k > n_neurons:
            notes.append(f"k={k} is more than the {n_neurons} neurons: all are shown.")
        return cls(
            layer=int(layer),
            source=source,
            labels=tuple(str(x) for x in labels),
            neurons=neurons,
            means=np.ascontiguousarray(means[:, neurons].T),
            spread=spread,
            n_positions=np.asarray(n_positions, np.int64),
            n_neurons=int(n_neurons),
            positions_label=positions_label,
            include_first=bool(include_first),
            note=" ".join(notes),
            model_info=dict(model_info or {}),
        )

    @property
    def rule(self) -> str:
        """How the neurons were picked, in words."""
        return f"top {len(self.neurons)} of {self.n_neurons} by {COMPARISON_RULE}"

    @property
    def vmax(self) -> float:
        """The colour scale's bound: the largest |mean|."""
        return float(np.abs(self.means).max()) if self.means.size else 0.0

    def table(self) -> pd.DataFrame:
        """One row per neuron (index "neuron"), largest spread first: its mean
        in each prompt (a column per label) and the spread."""
        frame = pd.DataFrame(
            self.means, index=pd.Index(self.neurons, name="neuron"), columns=list(self.labels)
        )
        frame["spread"] = self.spread
        return frame

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        header = (
            f"NeuronComparison({model}: layer {self.layer} {self.source}, "
            f"{len(self.neurons)} neurons x {len(self.labels)} prompts; {self.rule})"
        )
        return _neuron_repr(
            header, "most different", self.neurons, "spread", self.spread, self.note
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel it displays as its view (`display(result)`)."""
        return seam.display_bundle(self, include, exclude)


def check_neuron_request(
    layer: object,
    source: object,
    count: object,
    n_layers: int,
    owner: str,
    what: str = "top_k",
    *,
    include_first: object,
) -> tuple[int, str, int]:
    """The checked (layer, source, top_k) of a neuron request, `include_first`
    checked too, before any pass (`Run.neurons`, `Model.neurons`, `compare_neurons`)."""
    source = check_neuron_source(source)
    layer = check_index(layer, n_layers, "layer", owner)
    count = check_count(count, what)
    check_include_first(include_first)
    return layer, source, count


def run_neurons(
    run: Run,
    layer: int,
    source: str = "mlp_act",
    positions: object = "all",
    top_k: int = 50,
    *,
    include_first: bool = False,
    model: Any = None,
) -> NeuronActivations:
    """See `Run.neurons`."""
    layer, source, top_k = check_neuron_request(
        layer, source, top_k, run.n_layers, "this run", include_first=include_first
    )
    found, label = resolve_positions(positions, run.n_tokens, run.queries, run.regions, "this run")
    acts = run.activations(found, sources=[source], layers=[layer], model=model)
    return NeuronActivations.from_activations(
        acts, layer, source, top_k, include_first=include_first, positions_label=label
    )


def check_include_first(include_first: object) -> None:
    """Refuse an `include_first` that is not a bool."""
    if not isinstance(include_first, bool):
        raise ArgumentTypeError(f"include_first must be True or False, got {include_first!r}.")


def _labelled_runs(runs: object) -> tuple[list[str], list[Run]]:
    from .run import Run
    from .runset import RunSet

    if isinstance(runs, RunSet):
        labels, items = list(runs.labels), list(runs.runs)
    elif isinstance(runs, Mapping):
        labels, items = [str(key) for key in runs], list(runs.values())
    elif isinstance(runs, (list, tuple)):
        labels, items = [f"prompt {i}" for i in range(len(runs))], list(runs)
    else:
        raise ArgumentTypeError(
            "compare_neurons takes runs as a list of tw.Run, a dict label -> tw.Run or a "
            f"tw.RunSet; got {type(runs).__name__}."
        )
    wrong = [type(r).__name__ for r in items if not isinstance(r, Run)]
    if wrong:
        raise ArgumentTypeError(f"compare_neurons needs tw.Run items, got {wrong}.")
    if len(items) < 2:
        raise ArgumentError(
            f"compare_neurons compares at least 2 prompts, got {len(items)}. For one prompt, "
            "use run.neurons(layer)."
        )
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    labels = [f"{x} [{i}]" if counts[x] > 1 else x for i, x in enumerate(labels)]
    models = {(r.model_info.get("model_id"), r.n_layers) for r in items}
    if len(models) > 1:
        raise ArgumentError(
            "compare_neurons compares runs of one model; these come from "
            f"{sorted(map(str, models))}."
        )
    return labels, items


def compare_neurons(
    runs: Sequence[Run] | Mapping[str, Run] | Any,
    layer: int,
    k: int = 20,
    source: str = "mlp_act",
    *,
    positions: object = "all",
    include_first: bool = False,
    model: Any = None,
) -> NeuronComparison:
    """The `k` neurons of `layer` (`source` "mlp_act" or "hidden_out") whose
    mean activation over each prompt's `positions` ("all" or a region name
    every run has) differs most across the prompts (population sd of the
    means; position 0 left out of each mean unless `include_first=True`).
    `runs`: a list of `tw.Run`, a dict label -> Run, or a `tw.RunSet`. One
    forward pass per run on `model`, by default each run's own model.
    Returns a `tw.NeuronComparison` (`display(result)` shows a neurons x
    prompts heatmap)."""
    labels, items = _labelled_runs(runs)
    layer, source, k = check_neuron_request(
        layer, source, k, items[0].n_layers, "these runs", "k", include_first=include_first
    )
    found = [
        resolve_positions(positions, r.n_tokens, r.queries, r.regions, f"run {label!r}")
        for label, r in zip(labels, items, strict=True)
    ]
    means, counts, info = [], [], {}
    for label, run, (where, _) in zip(labels, items, found, strict=True):
        scored = where if include_first else where[where != 0]
        if scored.size == 0:
            raise ArgumentError(
                f"Run {label!r} has no position to average over at positions={positions!r} "
                "(position 0 is left out). Pass include_first=True or choose more positions."
            )
        acts = run.activations(scored, sources=[source], layers=[layer], model=model)
        means.append(acts.at(source, layer).astype(np.float64).mean(axis=0))
        counts.append(int(scored.size))
        info = info or acts.model_info
    sizes = {m.size for m in means}
    if len(sizes) > 1:
        raise ArgumentError(f"The runs' {source} have different sizes {sorted(sizes)}.")
    return NeuronComparison.select(
        np.stack(means),
        layer,
        source,
        labels,
        counts,
        k,
        include_first=include_first,
        positions_label=found[0][1],
        model_info=info,
    )


__all__ = [
    "ACTIVATION_SOURCES",
    "NEURON_SOURCES",
    "Activations",
    "NeuronActivations",
    "NeuronComparison",
    "compare_neurons",
    "resolve_positions",
    "top_variable",
]
