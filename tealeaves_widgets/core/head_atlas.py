"""The head atlas: per layer and head, how strongly each attention head acts
as one of the kinds an attention-head study looks for, measured on probe
sequences (numpy and pandas). `HeadAtlas` is the result of
`Model.head_atlas` (computed in `models/head_atlas.py`).

Every score is a [layer, head] array in `scores[name]`, one per entry of
`METRICS`, which says what each measures and whether it is signed (signed
metrics are drawn with diverging colours, centred at 0). The probes the
atlas used are kept (`probes`: token-id sequences per probe set), so any
score can be recomputed from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ArgumentError
from . import seam
from .selection import check_index


@dataclass(frozen=True)
class Metric:
    """One atlas metric: its name, what it measures, on which probe set."""

    name: str
    description: str
    probe_set: str
    """The key of `HeadAtlas.probes` it is measured on."""
    signed: bool = False
    """True: the score may be negative (diverging colours, centred at 0)."""


METRICS: tuple[Metric, ...] = (
    Metric(
        "previous_token",
        "mean over rows of the weight on the previous token, on natural text",
        "text",
    ),
    Metric(
        "previous_token_random",
        "the same on random tokens (a control: a real previous-token head scores on both)",
        "random",
    ),
    Metric(
        "induction",
        "on repeated random sequences, mean weight of a second-half token on the token "
        "after its first occurrence",
        "repeated",
    ),
    Metric(
        "duplicate_token",
        "on repeated random sequences, mean weight of a second-half token on its first occurrence",
        "repeated",
    ),
    Metric(
        "offset_score",
        "the peak of the offset profile (mean weight at distance d, d >= 1) on random tokens",
        "random",
    ),
    Metric(
        "offset_peak",
        "the distance d >= 1 at which the offset profile peaks, in tokens",
        "random",
    ),
    Metric("bos", "mean over rows of the weight on the first token (the sink)", "text"),
    Metric(
        "delimiter",
        "share of the non-first-token weight on delimiter tokens, divided by their share "
        "under causal uniform attention (1 = no preference)",
        "text",
    ),
    Metric(
        "successor",
        "OV successor score on ordinal sequences minus the same on random-word controls",
        "ordinal",
        signed=True,
    ),
    Metric(
        "s2_attention",
        "on IOI prompts, the final token's weight on the second mention of the subject",
        "ioi",
    ),
    Metric(
        "ov_copy",
        "on IOI prompts, the indirect object's logit through the head's OV circuit, against "
        "the other names (positive: copies, negative: suppresses)",
        "ioi",
        signed=True,
    ),
    Metric(
        "entropy",
        "mean normalised entropy of the rows (0 = one key, 1 = uniform), on natural text",
        "text",
    ),
)
"""The metrics of a `HeadAtlas`, in the order of its table's columns."""

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)


def metric(name: str) -> Metric:
    """The `Metric` called `name`, or an error listing the metrics."""
    for m in METRICS:
        if m.name == name:
            return m
    raise ArgumentError(f"Unknown atlas metric {name!r}; the metrics are {list(METRIC_NAMES)}.")


@dataclass(frozen=True, repr=False)
class HeadAtlas:
    """Per layer and head, the scores of `METRICS` on probe sequences."""

    scores: dict[str, NDArray[np.float64]]
    """metric name -> (layer, head) scores, one entry per `METRICS`."""
    profiles: NDArray[np.float64]
    """(layer, head, offset) mean weight at distance d = query - key, d = 0..,
    on the random-token probes."""
    patterns: NDArray[np.float32]
    """(layer, head, P, P) the mean attention pattern over the repeated
    random-token probes (all of length P), causal: zeros above the diagonal."""
    probes: dict[str, list[list[int]]]
    """probe set name -> its token-id sequences, as fed to the model (with
    the BOS where one was prepended)."""
    bos_prepended: bool
    """Whether each probe starts with the tokenizer's BOS token."""
    seed: int
    model_info: dict
    notes: dict[str, str] = field(default_factory=dict)
    """metric name -> what was excluded or assumed in measuring it."""
    ioi_positions: dict[str, list[int]] = field(default_factory=dict)
    """IOI role ("io", "s1", "s2", "end") -> its position in each `probes["ioi"]`
    sequence (as fed, so shifted by one where a BOS was prepended)."""

    def __post_init__(self) -> None:
        missing = [name for name in METRIC_NAMES if name not in self.scores]
        extra = [name for name in self.scores if name not in METRIC_NAMES]
        if missing or extra:
            raise ArgumentError(
                f"A HeadAtlas needs one score per metric {list(METRIC_NAMES)}; missing "
                f"{missing}, unknown {extra}."
            )
        shapes = {np.shape(v) for v in self.scores.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ArgumentError(
                f"Every atlas score must be one (layer, head) array; got shapes {sorted(shapes)}."
            )
        layers, heads = next(iter(shapes))
        if np.shape(self.profiles)[:2] != (layers, heads) or np.ndim(self.profiles) != 3:
            raise ArgumentError(
                f"profiles must be (layer, head, offset) with {layers} layers and {heads} "
                f"heads; got shape {np.shape(self.profiles)}."
            )
        if np.ndim(self.patterns) != 4 or np.shape(self.patterns)[:2] != (layers, heads):
            raise ArgumentError(
                f"patterns must be (layer, head, P, P) with {layers} layers and {heads} "
                f"heads; got shape {np.shape(self.patterns)}."
            )

    @property
    def n_layers(self) -> int:
        return int(self.profiles.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.profiles.shape[1])

    def score(self, name: str) -> NDArray[np.float64]:
        """(layer, head) scores of metric `name`."""
        return self.scores[metric(name).name]

    def head(self, layer: int, head: int) -> dict[str, float]:
        """Every metric of one head."""
        layer = check_index(layer, self.n_layers, "layer", "this atlas")
        head = check_index(head, self.n_heads, "head", "this atlas")
        return {name: float(self.scores[name][layer, head]) for name in METRIC_NAMES}

    def table(self) -> pd.DataFrame:
        """One row per layer and head (columns "layer", "head"), a column
        per metric in the order of `METRICS`."""
        layer, head = np.meshgrid(np.arange(self.n_layers), np.arange(self.n_heads), indexing="ij")
        frame = pd.DataFrame({"layer": layer.ravel(), "head": head.ravel()})
        for name in METRIC_NAMES:
            frame[name] = np.asarray(self.scores[name], np.float64).ravel()
        return frame

    def top(self, name: str, k: int = 5) -> pd.DataFrame:
        """The `k` heads with the highest `name` score (for a signed metric,
        the largest in absolute value), best first: columns "layer", "head",
        `name`. NaN scores come last."""
        m = metric(name)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ArgumentError(f"k must be a positive int; got {k!r}.")
        frame = self.table()[["layer", "head", m.name]]
        values = np.asarray(self.scores[m.name], np.float64).ravel()
        key = np.abs(values) if m.signed else values
        # best first, NaN last; a stable sort keeps (layer, head) order on ties
        order = np.argsort(np.where(np.isnan(key), np.inf, -key), kind="stable")
        return frame.iloc[order[: int(k)]].reset_index(drop=True)

    def __repr__(self) -> str:
        model = self.model_info.get("model_id", "unknown model")
        sets = ", ".join(f"{name} x{len(seqs)}" for name, seqs in self.probes.items())
        lines = [
            f"HeadAtlas({model}: {self.n_layers} layers x {self.n_heads} heads; "
            f"probes {sets}; seed {self.seed})"
        ]
        for name in ("previous_token", "induction", "duplicate_token", "s2_attention"):
            best = self.top(name, 1).iloc[0]
            lines.append(
                f"  top {name}: L{int(best['layer'])}H{int(best['head'])} {best[name]:.3f}"
            )
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel an atlas displays as `tw.HeadAtlasView(atlas)`."""
        return seam.display_bundle(self, include, exclude)


__all__ = ["METRICS", "METRIC_NAMES", "HeadAtlas", "Metric", "metric"]
