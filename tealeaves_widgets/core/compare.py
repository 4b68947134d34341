"""Comparing variants of a prompt: `compare(...)` -> `Comparison`.

Variants are runs (or `RunSet`s) of different prompts, e.g. a baseline system
prompt and a terser one. They differ in text and token count, so they are
aligned two ways:

- by REGION NAME: a region present in several variants is compared by its
  attention mass (its curve, as `Run.curves`); one missing from a variant has
  NaN there.
- by TOKEN: a diff of the rendered prompts' token sequences (difflib over the
  token texts) lines up shared text; the rest is marked inserted or deleted
  (`Comparison.alignment`, `Comparison.token_deltas`).

Every table is tidy pandas, one row per variant, query, item and layer (or
layer band). With `RunSet`s, values are means over the sampling units (see
`tealeaves_widgets.runset`) with intervals (see `tealeaves_widgets.stats`);
a delta's interval is paired when baseline and variant hold the same cases.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ArgumentError, SelectionError
from . import seam
from .deprecation import deprecated_alias
from .masses import AUTO, LEAVES, MassOptions, RegionCurves, layout, own_label
from .run import Run
from .runset import RunSet, run_curves, tidy_table
from .selection import check_index, resolve_query
from .stats import (
    CURVE_STATS,
    Estimate,
    IntervalOptions,
    curve_stats,
    difference_interval,
    mean_interval,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

BANDS = ("early", "middle", "late")
"""Names of the three equal thirds of the layers, `layers="bands"`."""
NOISE_FACTOR = 2.0
"""A delta is `above_noise` when |delta| > NOISE_FACTOR x seed_sd."""

Variant = Run | RunSet


MIN_EFFECT = 0.01
"""Default `CompareOptions.min_effect`: one hundredth of the attention (one
percentage point of a share)."""
SINK_FRACTION = 0.5
"""`sink_reassigned` (see `Comparison.deltas`): "mostly" is at least this
fraction of a region's change."""
SINK_LEVEL = 0.3
"""`sink_reassigned`: the head-averaged attention one token must draw (with at
least the excluded tokens' own) to count as a sink. The first token draws 0.43
on average at 512 tokens on the embedded model; in notebooks/compare_variants
the second sink " the" draws 0.38-0.47 at layers 3-10, while the most-attended
content token draws 0.22 (the question mark, next to the query)."""


@dataclass(frozen=True)
class CompareOptions:
    """What a `Comparison` reports and how. Pass these as keywords to `compare`."""

    layers: object = None
    """None: every layer. "bands": early / middle / late thirds. A dict of named
    phases, name -> (start, stop) half-open layer range (or a `range`, or a list
    of layers). A list of layer indices: those layers. A band's value is the
    mean over its layers."""
    normalize: str = "share"
    """As `Run.curves(normalize=...)`. Default "share": each token counted once
    (in its innermost region) and, by `exclude`'s default, the first token
    left out, so a delta is a change of a fraction of the rest of the attention."""
    exclude: object = AUTO
    """As `Run.curves(exclude=...)`: "first", a region name, a tuple of those or
    None; "auto" (default) is the first token for "share", nothing otherwise.
    The mass tables (`deltas`, `curve_stats`, `ratios`) honour it; the excluded
    mass itself is `excluded_mass`, and its change is `deltas["sink_shift"]`."""
    share_level: object = LEAVES
    """As `Run.curves(share_level=...)`: "leaves" or a depth of the region tree."""
    min_effect: float = MIN_EFFECT
    """Smallest |delta| of `deltas` (in its mass units) that can be `significant`.
    A paired interval over many cases excludes 0 for changes far too small to
    matter; 0.01 is one percentage point of the attention."""
    threshold: float | None = None
    """`first_above` threshold of the curve statistics; None: half the curve's peak."""
    level: float = 0.95
    """Confidence level of intervals."""
    interval: str = "t"
    """"t" or "bootstrap" (see `tealeaves_widgets.stats`)."""
    n_boot: int = 2000
    """Bootstrap resamples."""
    seed: int = 0
    """Seed of the bootstrap."""
    paired: bool | None = None
    """Pair each variant's units with the baseline's (per-case differences).
    None: paired when both are RunSets of the same case labels."""

    def __post_init__(self) -> None:
        self.mass_options  # noqa: B018 (validates normalize, exclude, share_level)
        if self.paired not in (None, True, False):
            raise ArgumentError(f"paired must be None, True or False, got {self.paired!r}.")
        if self.threshold is not None and not isinstance(self.threshold, (int, float)):
            raise ArgumentError(f"threshold must be a number or None, got {self.threshold!r}.")
        effect = self.min_effect
        if isinstance(effect, bool) or not isinstance(effect, (int, float)) or not effect >= 0:
            raise ArgumentError(
                f"min_effect must be a number >= 0 (in mass units, e.g. 0.01), got {effect!r}."
            )
        if not np.isfinite(effect):
            raise ArgumentError(f"min_effect must be finite, got {effect!r}; use e.g. 0.01.")
        self.intervals  # noqa: B018 (validates level, interval, n_boot)

    @property
    def intervals(self) -> IntervalOptions:
        return IntervalOptions(self.level, self.interval, self.n_boot, self.seed)

    @property
    def mass_options(self) -> MassOptions:
        return MassOptions(self.normalize, self.exclude, self.share_level)


def layer_groups(layers: object, n_layers: int) -> tuple[list, list[NDArray[np.int64]]]:
    """Row labels and the layers each row averages, for `CompareOptions.layers`."""
    if layers is None:
        return list(range(n_layers)), [np.array([i]) for i in range(n_layers)]
    if isinstance(layers, str) and layers == "bands":
        if n_layers < len(BANDS):
            raise ArgumentError(
                f"layers='bands' needs at least 3 layers; the model has {n_layers}."
            )
        return list(BANDS), [np.asarray(p) for p in np.array_split(np.arange(n_layers), 3)]
    if isinstance(layers, Mapping):
        if not layers:
            raise ArgumentError("layers={} names no phase; give e.g. {'early': (0, 10)}.")
        return list(layers), [_phase(name, spec, n_layers) for name, spec in layers.items()]
    if isinstance(layers, Sequence) and not isinstance(layers, str):
        groups = [_phase(f"layer {i}", [i], n_layers) for i in layers]
        if not groups:
            raise ArgumentError("layers=[] selects no layer; pass None for every layer.")
        return [int(g[0]) for g in groups], groups
    raise ArgumentError(
        f"layers={layers!r} is not understood. Use None (every layer), 'bands' (early/middle/"
        "late), a list of layer indices, or a dict of phases {'name': (start, stop)}."
    )


def _phase(name: object, spec: object, n_layers: int) -> NDArray[np.int64]:
    if isinstance(spec, tuple) and len(spec) == 2:
        spec = range(*spec)
    layers = list(spec) if isinstance(spec, (range, list, tuple)) else []
    in_range = all(
        isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < n_layers
        for i in layers
    )
    if not layers or not in_range:
        raise ArgumentError(
            f"Phase {name!r} = {spec!r} must be a (start, stop) layer range or a non-empty list "
            f"of layers within 0..{n_layers - 1}."
        )
    return np.asarray(layers, dtype=np.int64)


# ---------------------------------------------------------------- token alignment


@dataclass(frozen=True)
class TokenAlignment:
    """Which tokens of a variant's prompt are the baseline's, by a diff of the
    token texts (difflib, no junk heuristic): shared text lines up; the rest
    is deleted (baseline only) or inserted (variant only)."""

    baseline_tokens: tuple[str, ...]
    """(baseline_pos,) token texts of the baseline prompt."""
    variant_tokens: tuple[str, ...]
    """(variant_pos,) token texts of the variant prompt."""
    baseline_match: NDArray[np.int64]
    """(baseline_pos,) variant position of the same token, -1 where deleted."""
    variant_match: NDArray[np.int64]
    """(variant_pos,) baseline position of the same token, -1 where inserted."""

    @classmethod
    def of(cls, baseline_tokens: Sequence[str], variant_tokens: Sequence[str]) -> TokenAlignment:
        base, var = tuple(baseline_tokens), tuple(variant_tokens)
        baseline_match = np.full(len(base), -1, dtype=np.int64)
        variant_match = np.full(len(var), -1, dtype=np.int64)
        matcher = difflib.SequenceMatcher(None, base, var, autojunk=False)
        for b, v, size in matcher.get_matching_blocks():
            baseline_match[b : b + size] = np.arange(v, v + size)
            variant_match[v : v + size] = np.arange(b, b + size)
        return cls(base, var, baseline_match, variant_match)

    @property
    def n_shared(self) -> int:
        return int((self.baseline_match >= 0).sum())

    @property
    def n_deleted(self) -> int:
        return int((self.baseline_match < 0).sum())

    @property
    def n_inserted(self) -> int:
        return int((self.variant_match < 0).sum())

    def steps(self) -> list[tuple[str, int, int]]:
        """Both prompts merged in reading order: ("equal", b, v), ("delete", b, -1)
        or ("insert", -1, v); a deletion comes before the insertion replacing it."""
        out: list[tuple[str, int, int]] = []
        b = v = 0
        while b < len(self.baseline_tokens) or v < len(self.variant_tokens):
            if b < len(self.baseline_tokens) and self.baseline_match[b] < 0:
                out.append(("delete", b, -1))
                b += 1
            elif v < len(self.variant_tokens) and self.variant_match[v] < 0:
                out.append(("insert", -1, v))
                v += 1
            else:
                out.append(("equal", b, v))
                b, v = b + 1, v + 1
        return out

    def table(self) -> pd.DataFrame:
        """One row per step: `op`, `baseline_pos`, `variant_pos` (-1 where absent), `token`."""
        steps = self.steps()
        return pd.DataFrame(
            {
                "op": [op for op, _, _ in steps],
                "baseline_pos": np.array([b for _, b, _ in steps], dtype=np.int64),
                "variant_pos": np.array([v for _, _, v in steps], dtype=np.int64),
                "token": [
                    self.baseline_tokens[b] if b >= 0 else self.variant_tokens[v]
                    for _, b, v in steps
                ],
            }
        )


# ---------------------------------------------------------------- comparison


@dataclass(frozen=True)
class _Side:
    """One variant's values for one query, reduced to sampling units."""

    values: NDArray[np.float64]
    """(unit, row, item) values."""
    units: tuple[str, ...]
    """(unit,) unit labels."""
    by_case: bool
    """True when the units are cases (pairable across variants)."""
    seed_sd: NDArray[np.float64]
    """(row, item) seed-to-seed standard deviation of one run's value, NaN without seeds."""


def compare(
    variants: Mapping[str, Run | RunSet], *, baseline: str | None = None, **options
) -> Comparison:
    """Compare two or more captured variants, name -> `Run` or `RunSet`.

    The first variant is the baseline unless `baseline` names another. The
    keywords are `CompareOptions` fields (layers, normalize, threshold, level,
    interval, n_boot, seed, paired).
    """
    return Comparison(dict(variants), baseline, compare_options(**options))


def compare_options(**options) -> CompareOptions:
    """`CompareOptions` from keywords, naming the valid ones when one is unknown."""
    known = [f.name for f in fields(CompareOptions)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ArgumentError(f"Unknown option(s) {unknown} for compare; the options are {known}.")
    return CompareOptions(**options)


_DEFAULT_OPTIONS = CompareOptions()


@dataclass(frozen=True, repr=False)
class Comparison:
    """Two or more variants side by side, against a baseline."""

    variants: dict[str, Run | RunSet]
    """Name -> run or run set, the baseline first."""
    baseline: str
    """Name of the baseline (the first variant unless the constructor was given another)."""
    options: CompareOptions = _DEFAULT_OPTIONS
    """What the tables report (layers, normalize, intervals)."""

    # Written out rather than generated so that `baseline` may be None here (the
    # first variant) while the field is always a variant's name.
    def __init__(
        self,
        variants: dict[str, Run | RunSet],
        baseline: str | None = None,
        options: CompareOptions = _DEFAULT_OPTIONS,
    ) -> None:
        if not isinstance(variants, Mapping) or len(variants) < 2:
            raise ArgumentError(
                "compare needs a dict of at least two variants, name -> Run or RunSet, e.g. "
                "{'baseline': run_a, 'terse': run_b}."
            )
        for name, value in variants.items():
            if not isinstance(name, str) or not isinstance(value, (Run, RunSet)):
                raise ArgumentError(
                    f"Variant {name!r} must be named by a str and hold a tw.Run or tw.RunSet, "
                    f"got {type(value).__name__}."
                )
        if baseline is None:
            baseline = next(iter(variants))
        if baseline not in variants:
            raise ArgumentError(
                f"baseline={baseline!r} is not a variant; the variants are {list(variants)}."
            )
        depths = {name: runs_of(v)[0].n_layers for name, v in variants.items()}
        if len(set(depths.values())) > 1:
            raise ArgumentError(
                f"The variants have different numbers of layers {depths}: compare runs of the "
                "same model."
            )
        ordered = {baseline: variants[baseline]} | dict(variants)
        object.__setattr__(self, "variants", ordered)
        object.__setattr__(self, "baseline", baseline)
        object.__setattr__(self, "options", options)
        if not self.queries:
            raise ArgumentError(
                "The variants share no query name; capture them with the same query_positions."
            )
        layer_groups(self.options.layers, self.n_layers)  # validate early
        self._check_exclude()

    def _check_exclude(self) -> None:
        exclusion = self.options.mass_options.exclusion
        for name, value in self.variants.items():
            for run in runs_of(value):
                missing = [r for r in exclusion.regions if r not in run.regions]
                if missing:
                    raise SelectionError(
                        f"exclude names region(s) {missing} that variant {name!r} lacks (in at "
                        "least one run); exclude only regions every run of every variant has, "
                        'or "first" for the first token.'
                    )

    def with_options(self, **changes) -> Comparison:
        """The same variants with some `CompareOptions` changed (e.g. layers="bands")."""
        current = {f.name: getattr(self.options, f.name) for f in fields(CompareOptions)}
        return Comparison(self.variants, self.baseline, compare_options(**(current | changes)))

    # -- what is compared ---------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Variant names, the baseline first."""
        return list(self.variants)

    @property
    def n_layers(self) -> int:
        return runs_of(self.variants[self.baseline])[0].n_layers

    @cached_property
    def queries(self) -> list[str]:
        """Query names every run of every variant has, in the baseline's order."""
        runs = [run for v in self.variants.values() for run in runs_of(v)]
        return [q for q in runs[0].queries if all(q in run.queries for run in runs)]

    @cached_property
    def regions(self) -> list[str]:
        """Every region name of any variant: the baseline's first, in order."""
        names = [name for v in self.variants.values() for run in runs_of(v) for name in run.regions]
        return list(dict.fromkeys(names))

    @cached_property
    def tracked_tokens(self) -> list[str]:
        """Tracked tokens (as written) every run tracks, in the baseline's order."""
        runs = [run for v in self.variants.values() for run in runs_of(v)]
        first = runs[0].lens.tracked_tokens
        return [t for t in first if all(t in run.lens.tracked_tokens for run in runs)]

    @cached_property
    def region_labels(self) -> dict[str, str]:
        """Region -> how its rows read: "<name> (own)" when, in "share", it counts
        only its own tokens (outside its children) in some run, else the name."""
        options = self.options.mass_options
        own = {
            name
            for v in self.variants.values()
            for run in runs_of(v)
            for name, is_own in layout(run, options).own.items()
            if is_own
        }
        return {name: own_label(name, name in own) for name in self.regions}

    @property
    def region_presence(self) -> pd.DataFrame:
        """(region, variant) True where every run of the variant has the region."""
        return pd.DataFrame(
            {
                name: [all(r in run.regions for run in runs_of(v)) for r in self.regions]
                for name, v in self.variants.items()
            },
            index=pd.Index(self.regions, name="region"),
        )

    # -- tables -------------------------------------------------------------

    @property
    def deltas(self) -> pd.DataFrame:
        """Attention mass per variant, query, region and layer (or band) against the baseline.

        Masses are `Run.curves(normalize, exclude=..., share_level=...)` of the
        options (default: "share" with the first token excluded, so a mass is a
        fraction of the non-excluded attention and a parent's row counts its
        own tokens). Columns: `variant`, `query`, `region`, `layer` (an int,
        or the band's name), `mass` with `mass_low`/`mass_high` (interval of
        the mean over units; NaN for a single run), `n` units, `delta` = mass
        - baseline mass with `delta_low`/`delta_high`, `rel_change` = delta /
        baseline mass, `seed_sd` (seed-to-seed sd of one run's mass, pooled
        over baseline and variant; NaN without seeds), `significant` (the
        delta's interval excludes 0 AND |delta| >= `min_effect`; NA without an
        interval), `above_noise` (|delta| > 2 x seed_sd), `excluded` (what was
        excluded, in words) and, when something is excluded (NaN and NA
        otherwise, and for the baseline): `sink_shift` (change of the excluded
        tokens' attention), `row_delta` (change of the attention on the
        region's tokens) and `token_delta` (change of the attention its
        most-attended token gets), all fractions of the whole attention row
        with nothing renormalised, and `sink_reassigned`.

        `sink_reassigned` flags a delta that is mostly the excluded sink's mass
        moving, or one token acting as a sink, rather than the region being
        read more or less. True when
          - a second sink: one token carries at least half of the region's
            change (token_delta x row_delta > 0, |token_delta| >= |row_delta| /
            2) and either the sink moved the other way by at least half of it
            (sink_shift x row_delta < 0, |sink_shift| >= |row_delta| / 2: the
            token took the sink's mass) or that token, on the side where it is
            larger, draws at least as much attention as the excluded tokens
            and at least `SINK_LEVEL` (0.3) of the row: it is a sink at that
            layer. So " the", which took 0.4 of the attention after a rewording
            in notebooks/compare_variants, both where the first token gave that
            up (layers 3-9) and where the first token was idle (layer 10). A
            content token that draws 0.3 alone is flagged too: read the token
            (the report names it) before setting a flagged delta aside; or
          - the pool ("raw" and "share", whose masses are over the attention
            left after the sink): the region's own change accounts for less
            than half of `delta` in its direction (row_delta times the mean of
            1 / kept total of the two sides, projected on `delta`), so its share
            moved because the attention left to share grew or shrank with the
            sink; every other region's share falls when a token becomes a
            second sink.
        The flag reads the changes of the means over units.
        """
        return self._masses_table.copy()

    @cached_property
    def _masses_table(self) -> pd.DataFrame:
        rows, groups = layer_groups(self.options.layers, self.n_layers)
        per_run = self._per_run(lambda run, q: _bands(self._mass(run, q), groups))
        table = self._table(
            per_run, self.regions, "region", rows, "layer", "mass", self.options.min_effect
        )
        return self._with_sink(table, groups)

    @property
    def excluded_mass(self) -> pd.DataFrame:
        """Attention on the excluded tokens per variant, query and layer (or band),
        a fraction of the whole attention row, against the baseline: the part
        the mass tables leave out (`options.exclude`). Columns as `deltas`,
        with `excluded` (what, in words) in place of `region`; all 0 when
        nothing is excluded."""
        return self._excluded_table.copy()

    @cached_property
    def _excluded_table(self) -> pd.DataFrame:
        rows, groups = layer_groups(self.options.layers, self.n_layers)
        per_run = self._per_run(
            lambda run, q: _bands(self._curves(run, q).excluded[:, None], groups)
        )
        what = [self.options.mass_options.exclusion.describe()]
        return self._table(
            per_run, what, "excluded", rows, "layer", "mass", self.options.min_effect
        )

    def _with_sink(self, table: pd.DataFrame, groups: list[NDArray[np.int64]]) -> pd.DataFrame:
        """`table` (the deltas) with `excluded`, `sink_shift`, `row_delta`,
        `token_delta` and `sink_reassigned` (see `deltas`)."""
        options = self.options.mass_options
        table["excluded"] = options.exclusion.describe()
        for column in ("sink_shift", "row_delta", "token_delta"):
            table[column] = np.nan
        table["sink_reassigned"] = pd.array([pd.NA] * len(table), dtype="boolean")
        if not options.exclusion.any:
            return table
        means = {field: self._unit_means(field, groups) for field in _SINK_FIELDS}
        for query in self.queries:
            base = {field: means[field][(self.baseline, query)] for field in _SINK_FIELDS}
            for name in self.names[1:]:
                at = (table["variant"] == name) & (table["query"] == query)
                mine = {field: means[field][(name, query)] for field in _SINK_FIELDS}
                change = {field: mine[field] - base[field] for field in _SINK_FIELDS}
                # the reported delta as (row, item): the table lists item first, then row
                shape = change["absolute"].shape
                reported = table.loc[at, "delta"].to_numpy().reshape(shape[::-1]).T
                flag = sink_reassigned(
                    reported,
                    change["absolute"],
                    (base["peak"], mine["peak"]),
                    (base["excluded"][:, None], mine["excluded"][:, None]),
                    (base["kept"], mine["kept"]) if options.normalize in _POOLED else None,
                )
                sink = np.broadcast_to(change["excluded"][:, None], shape)
                table.loc[at, "sink_shift"] = sink.T.ravel()
                table.loc[at, "row_delta"] = change["absolute"].T.ravel()
                table.loc[at, "token_delta"] = change["peak"].T.ravel()
                flags = pd.array(flag.T.ravel(), dtype="boolean")
                flags[np.isnan(reported.T.ravel())] = pd.NA
                table.loc[at, "sink_reassigned"] = flags
        return table

    def _unit_means(self, field: str, groups: list[NDArray[np.int64]]) -> dict:
        """(variant, query) -> the mean over units of a `RegionCurves` field,
        banded: (row, item) for region fields, (row,) for `excluded`, `kept`."""

        def values(run: Run, query: str) -> NDArray:
            found = getattr(self._curves(run, query), field)
            return _bands(found[:, None] if found.ndim == 1 else found, groups)

        out = {}
        for key, value in self._per_run(values).items():
            mean = _unit_mean(self._side(key[0], value))
            out[key] = mean[:, 0] if field in ("excluded", "kept") else mean
        return out

    @property
    def lens_deltas(self) -> pd.DataFrame:
        """Tracked-token rank and probability per variant, query, token and layer (or band).

        Columns: `variant`, `query`, `token`, `layer`, `rank` (mean over units)
        and `rank_median` (their median: a rank's distribution is skewed, so a
        reader is shown the median, e.g. 12 rather than a mean of 714.125),
        `rank_delta` with `rank_delta_low`/`rank_delta_high` (of the mean),
        `prob`, `prob_delta` with `prob_delta_low`/`prob_delta_high`,
        `prob_rel_change`, `significant` (the prob delta's interval excludes 0
        AND |prob_delta| >= `min_effect`, so a change of 3e-11 is not a finding)
        and `n`.
        """
        return self._lens_table.copy()

    @cached_property
    def _lens_table(self) -> pd.DataFrame:
        rows, groups = layer_groups(self.options.layers, self.n_layers)
        tokens = self.tracked_tokens
        tables = {}
        ranks: dict[tuple[str, str], NDArray] = {}
        for field in ("rank", "prob"):
            per_run = self._per_run(
                lambda run, q, field=field: _bands(_tracked(run, q, tokens, field), groups)
            )
            effect = self.options.min_effect if field == "prob" else 0.0
            tables[field] = self._table(per_run, tokens, "token", rows, "layer", field, effect)
            if field == "rank":
                ranks = per_run
        keys = ["variant", "query", "token", "layer"]
        rank = tables["rank"][[*keys, "rank", "delta", "delta_low", "delta_high"]]
        rank = rank.rename(columns=lambda c: f"rank_{c}" if c.startswith("delta") else c)
        rank.insert(5, "rank_median", self._medians(ranks, tokens, rows))  # after "rank"
        prob = tables["prob"][
            [*keys, "prob", "delta", "delta_low", "delta_high", "rel_change", "significant", "n"]
        ]
        prob = prob.rename(columns=lambda c: f"prob_{c}" if c[:3] in ("del", "rel") else c)
        return rank.merge(prob, on=keys, sort=False)

    @property
    def curve_stats(self) -> pd.DataFrame:
        """Cooking-curve statistics per variant, query and region, and their deltas.

        Stats (column `stat`): peak_layer, peak_mass, area, first_above (see
        `stats.curve_stats`; threshold from the options), computed on every
        layer of each run, then averaged over units. Columns as `deltas`, with
        `value` in place of `mass`.
        """
        return self._stats_table.copy()

    @cached_property
    def _stats_table(self) -> pd.DataFrame:
        threshold = self.options.threshold
        per_run = self._per_run(lambda run, q: curve_stats(self._mass(run, q).T, threshold).T)
        return self._table(per_run, self.regions, "region", list(CURVE_STATS), "stat", "value")

    def ratios(self, *pairs: str) -> pd.DataFrame:
        """Ratios of region masses, "a:b" = mass(a) / mass(b) (TeaLeaves' --ratio a:b).

        Per run and layer (or band: the ratio of the band's mean masses), then
        averaged over units. Columns as `deltas`, with `ratio` naming the pair
        and `value` the ratio; NaN where mass(b) is 0.
        """
        if not pairs:
            raise ArgumentError('ratios needs at least one "a:b" pair, e.g. ratios("rules:facts").')
        parsed = [self._ratio_pair(pair) for pair in pairs]
        rows, groups = layer_groups(self.options.layers, self.n_layers)

        def values(run: Run, query: str) -> NDArray:
            mass = _bands(self._mass(run, query), groups)
            a = mass[:, [self.regions.index(p[0]) for p in parsed]]
            b = mass[:, [self.regions.index(p[1]) for p in parsed]]
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(b != 0, a / b, np.nan)

        names = [f"{a}:{b}" for a, b in parsed]
        return self._table(self._per_run(values), names, "ratio", rows, "layer", "value")

    def _ratio_pair(self, pair: str) -> tuple[str, str]:
        parts = pair.split(":") if isinstance(pair, str) else []
        if len(parts) != 2 or not all(p in self.regions for p in parts):
            raise ArgumentError(
                f"Ratio {pair!r} must be 'a:b' with two region names; the regions are "
                f"{self.regions}."
            )
        return parts[0], parts[1]

    # -- token level -----------------------------------------------------------

    def alignment(self, variant: str, case: int = 0) -> TokenAlignment:
        """Token alignment of `variant`'s prompt with the baseline's (run `case`
        of a RunSet; a single Run is used whatever `case`)."""
        base = self.run_of(self.baseline, case)
        other = self.run_of(self._variant(variant), case)
        return TokenAlignment.of(base.tokens, other.tokens)

    def top_token(
        self, variant: str, region: str, layer: int, query: str | int | None = None
    ) -> tuple[str, float] | None:
        """The token of `region` that draws the most attention in `variant` at
        `layer` (among the tokens its masses count under the options): its
        text (the most common over the variant's runs) and the mean attention
        it draws, a fraction of the whole row. None where no run has the region."""
        name, query = self._variant(variant), self.query_name(query)
        texts, values = [], []
        for run in runs_of(self.variants[name]):
            tokens = layout(run, self.options.mass_options).counted.get(region)
            if tokens is None or not tokens.size:
                continue
            row = run.attention[check_index(layer, run.n_layers, "layer"), run.query_index(query)]
            best = int(tokens[np.argmax(row[tokens])])
            texts.append(run.tokens[best])
            values.append(float(row[best]))
        if not texts:
            return None
        return max(set(texts), key=texts.count), float(np.mean(values))

    def token_deltas(
        self,
        variant: str,
        query: str | int | None = None,
        layer: int | None = None,
        case: int = 0,
    ) -> pd.DataFrame:
        """Attention on each token of the baseline and of `variant`, lined up.

        One row per alignment step (`op` equal / delete / insert): positions,
        `token`, `baseline_attention` and `variant_attention` (head-averaged, at
        `layer`, or the mean over layers when None) and their `delta` (equal
        tokens only, else NaN).
        """
        query = self.query_name(query)
        table = self.alignment(variant, case).table()
        for name, column, side in (
            (self.baseline, "baseline_attention", "baseline_pos"),
            (self._variant(variant), "variant_attention", "variant_pos"),
        ):
            run = self.run_of(name, case)
            row = _attention_row(run, query, layer)
            pos = table[side].to_numpy()
            table[column] = np.where(pos >= 0, row[np.maximum(pos, 0)], np.nan)
        table["delta"] = table["variant_attention"] - table["baseline_attention"]
        return table

    # -- report and figures ---------------------------------------------------------

    def report(self, top: int = 5) -> str:
        """A markdown report: summary table, largest changes, curve stats,
        tracked tokens and the stability verdict."""
        return seam.call("report", self, top)

    def save_report(self, path: str | PathLike[str], top: int = 5, views: bool = True) -> Path:
        """Write the report to `path` and return the path: markdown (`report()`)
        for .md; for .html/.htm one standalone page with the same tables, static
        plotly figures and (with `views`) the interactive views, which renders
        offline with no kernel (see `tealeaves_widgets.present.report`)."""
        return seam.call("save_report", self, path, top, views=views)

    def curves_figure(
        self, query: str | int | None = None, regions: list[str] | None = None
    ) -> go.Figure:
        """Static plotly figure of each region's cooking curve per variant (baseline
        dashed), with confidence bands for RunSets."""
        return seam.call("curves_figure", self, query=query, regions=regions)

    def delta_figure(
        self, query: str | int | None = None, regions: list[str] | None = None
    ) -> go.Figure:
        """Static plotly figure of each variant's delta per region and layer, with
        its interval."""
        return seam.call("delta_figure", self, query=query, regions=regions)

    def lens_figure(self, query: str | int | None = None) -> go.Figure:
        """Static plotly figure of the tracked tokens' rank and probability per
        layer, per variant (baseline dashed)."""
        return seam.call("lens_figure", self, query=query)

    def __repr__(self) -> str:
        parts = [
            f"{name} ({describe_variant(v)})" + (" [baseline]" if name == self.baseline else "")
            for name, v in self.variants.items()
        ]
        return (
            f"Comparison of {len(self.variants)} variants: " + ", ".join(parts) + "\n"
            f"  queries: {self.queries}\n  regions: {self.regions}"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel a comparison displays as `tw.VariantDiff(cmp)`."""
        return seam.display_bundle(self, include, exclude)

    diff_view = deprecated_alias("cmp.diff_view(...)", "tw.VariantDiff(cmp, ...)", "VariantDiff")

    # -- engine -----------------------------------------------------------------

    def _variant(self, name: str) -> str:
        if name not in self.variants:
            raise SelectionError(f"Unknown variant {name!r}; the variants are {self.names}.")
        return name

    def query_name(self, query: str | int | None = None) -> str:
        """The name of the query `query` selects among `queries` (a name, an
        index into them, or None for "final" when every variant has it)."""
        return resolve_query(query, self.queries, "every variant")

    def run_of(self, variant: str, case: int = 0) -> Run:
        """The run of `variant`: the run itself, or run `case` of its RunSet."""
        name = self._variant(variant)
        value = self.variants[name]
        if isinstance(value, Run):
            return value
        return value[check_index(case, len(value), "case", f"variant {name!r}")]

    def _mass(self, run: Run, query: str) -> NDArray[np.float64]:
        """(layer, region) over `self.regions`, NaN where the run lacks a region
        (or it has no value there: every token excluded, below the share level)."""
        return self._curves(run, query).values

    def _curves(self, run: Run, query: str) -> RegionCurves:
        """`run`'s region curves at `query` under the options, computed once."""
        key = (id(run), query)
        if key not in self._curve_cache:
            self._curve_cache[key] = run_curves(run, query, self.options.mass_options, self.regions)
        return self._curve_cache[key]

    @cached_property
    def _curve_cache(self) -> dict[tuple[int, str], RegionCurves]:
        return {}

    def _per_run(self, fn: Callable[[Run, str], NDArray]) -> dict[tuple[str, str], NDArray]:
        """(variant, query) -> (run, row, item) array of `fn(run, query)` over the runs."""
        return {
            (name, query): np.stack([fn(run, query) for run in runs_of(value)])
            for name, value in self.variants.items()
            for query in self.queries
        }

    def _side(self, name: str, per_run: NDArray) -> _Side:
        value = self.variants[name]
        if isinstance(value, Run):
            return _Side(per_run, ("run",), False, np.full(per_run.shape[1:], np.nan))
        return _Side(
            value.unit_values(per_run), value.units, value.units_are_cases, value.seed_sd(per_run)
        )

    def _paired_baseline(self, variant: _Side, base: _Side, name: str) -> NDArray | None:
        """The baseline's values in the variant's unit order when the two are
        paired, else None."""
        same = variant.by_case and base.by_case and sorted(variant.units) == sorted(base.units)
        paired = same if self.options.paired is None else self.options.paired
        if paired and not same:
            raise ArgumentError(
                f"paired=True needs variant {name!r} and the baseline to be RunSets of the same "
                f"cases; got units {list(variant.units)[:4]}... and {list(base.units)[:4]}.... "
                "Pass paired=None or False."
            )
        if not paired:
            return None
        return base.values[[base.units.index(u) for u in variant.units]]

    def _table(
        self,
        per_run: dict[tuple[str, str], NDArray],
        items: list,
        item_column: str,
        rows: list,
        row_column: str,
        value: str,
        min_effect: float = 0.0,
    ) -> pd.DataFrame:
        """The tidy variant x query x item x row table of `value` and its delta;
        `significant` needs |delta| >= `min_effect` too."""
        frames = []
        for query in self.queries:
            base = self._side(self.baseline, per_run[(self.baseline, query)])
            base_mean = mean_interval(base.values, self.options.intervals).mean
            for name in self.names:
                side = self._side(name, per_run[(name, query)])
                estimate = mean_interval(side.values, self.options.intervals)
                delta = self._delta(name, side, base, estimate)
                with np.errstate(invalid="ignore", divide="ignore"):
                    rel = np.where(base_mean != 0, delta.mean / base_mean, np.nan)
                columns = {
                    value: estimate.mean,
                    f"{value}_low": estimate.low,
                    f"{value}_high": estimate.high,
                    "delta": delta.mean,
                    "delta_low": delta.low,
                    "delta_high": delta.high,
                    "rel_change": rel,
                    "seed_sd": _pooled(side.seed_sd, base.seed_sd),
                }
                frame = tidy_table(items, item_column, rows, row_column, columns, estimate.n)
                high = list(frame.columns).index(f"{value}_high")
                frame.insert(high + 1, "n", frame.pop("n"))
                frame.insert(0, "query", query)
                frame.insert(0, "variant", name)
                frames.append(frame)
        return _with_flags(pd.concat(frames, ignore_index=True), min_effect)

    def _medians(
        self, per_run: dict[tuple[str, str], NDArray], items: list, rows: list
    ) -> NDArray[np.float64]:
        """The median over units of each (row, item), in the order `_table` writes
        its rows (variant, query, item, row)."""
        out = []
        for query in self.queries:
            for name in self.names:
                units = self._side(name, per_run[(name, query)]).values  # (unit, row, item)
                with np.errstate(invalid="ignore"):
                    median = np.nanmedian(units, axis=0) if units.size else units[0]
                out.append(np.asarray(median, dtype=np.float64).T.ravel())  # item, then row
        return np.concatenate(out)

    def _delta(self, name: str, side: _Side, base: _Side, estimate: Estimate) -> Estimate:
        if name == self.baseline:
            zero = np.where(np.isnan(estimate.mean), np.nan, 0.0)
            none = np.full(zero.shape, np.nan)
            return Estimate(zero, none, none, estimate.n)
        paired = self._paired_baseline(side, base, name)
        if paired is not None:
            return difference_interval(side.values, paired, True, self.options.intervals)
        return difference_interval(side.values, base.values, False, self.options.intervals)


def _with_flags(frame: pd.DataFrame, min_effect: float = 0.0) -> pd.DataFrame:
    """Add `significant` (the interval excludes 0 and |delta| >= `min_effect`)
    and `above_noise`: nullable booleans, NA where there is no interval or no
    seed noise to judge by."""
    excludes = (frame["delta_low"] > 0) | (frame["delta_high"] < 0)
    excludes &= frame["delta"].abs() >= min_effect
    above = frame["delta"].abs() > NOISE_FACTOR * frame["seed_sd"]
    for column, flag, known in (
        ("significant", excludes, frame["delta_low"].notna()),
        ("above_noise", above, frame["seed_sd"].notna()),
    ):
        frame[column] = pd.array(flag.to_numpy(), dtype="boolean")
        frame.loc[~known, column] = pd.NA
    return frame


_SINK_FIELDS = ("absolute", "peak", "excluded", "kept")
"""`RegionCurves` fields the sink flag reads."""
_POOLED = ("raw", "share")
"""Normalisations whose values are a region's attention over the kept total."""


def sink_reassigned(
    delta: NDArray,
    row_delta: NDArray,
    top_token: tuple[NDArray, NDArray],
    excluded: tuple[NDArray, NDArray],
    kept: tuple[NDArray, NDArray] | None,
) -> NDArray[np.bool_]:
    """The `sink_reassigned` rule (see `Comparison.deltas`), elementwise over
    (row, item): `delta` is the reported change, `row_delta` the change of the
    region's attention; `top_token` the attention of the region's
    most-attended token and `excluded` that of the excluded tokens (row, 1),
    baseline then variant; `kept` their kept totals (row,) when the masses are
    divided by them, else None. Attention is a fraction of the whole row."""
    token_delta = top_token[1] - top_token[0]
    sink_shift = excluded[1] - excluded[0]
    half = SINK_FRACTION
    with np.errstate(invalid="ignore", divide="ignore"):
        one_token = (token_delta * row_delta > 0) & (
            np.abs(token_delta) >= half * np.abs(row_delta)
        )
        took_its_mass = (sink_shift * row_delta < 0) & (
            np.abs(sink_shift) >= half * np.abs(row_delta)
        )
        # the token, on the side where it is larger, draws what a sink draws
        token_high = np.where(token_delta > 0, top_token[1], top_token[0])
        sink_high = np.where(token_delta > 0, excluded[1], excluded[0])
        is_a_sink = token_high >= np.maximum(sink_high, SINK_LEVEL)
        second_sink = one_token & (took_its_mass | is_a_sink)
        if kept is None:
            return second_sink
        # the region's own change on the pool (half over each side's kept total);
        # what is left of `delta` is the pool growing or shrinking with the sink
        own = row_delta * ((1 / kept[0] + 1 / kept[1]) / 2)[:, None]
        pooled = (np.abs(delta) > 1e-12) & (own * delta < half * delta * delta)
    return second_sink | pooled


def _unit_mean(side: _Side) -> NDArray[np.float64]:
    """(row, item) NaN-aware mean of a side's values over its units."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(side.values, axis=0)


def _pooled(a: NDArray, b: NDArray) -> NDArray:
    """sqrt of the mean of the available variances of two seed sds (NaN when neither is)."""
    stacked = np.stack([a, b]) ** 2
    with np.errstate(invalid="ignore"):
        count = (~np.isnan(stacked)).sum(axis=0)
        total = np.nansum(stacked, axis=0)
    return np.where(count > 0, np.sqrt(total / np.maximum(count, 1)), np.nan)


def runs_of(value: Run | RunSet) -> tuple[Run, ...]:
    """The runs of a variant: the run itself, or a RunSet's runs."""
    return (value,) if isinstance(value, Run) else value.runs


def describe_variant(value: Run | RunSet) -> str:
    """ "1 run, 300 tokens" or "24 runs of 8 cases"."""
    if isinstance(value, Run):
        return f"1 run, {value.n_tokens} tokens"
    return f"{len(value)} runs of {len(value.cases)} cases"


def _bands(values: NDArray, groups: list[NDArray[np.int64]]) -> NDArray[np.float64]:
    """(layer, item) -> (row, item): each row the mean over its group's layers."""
    return np.stack([values[group].mean(axis=0) for group in groups])


def _tracked(run: Run, query: str, tokens: list[str], field: str) -> NDArray[np.float64]:
    """(layer, token) tracked ranks or probabilities at `query`."""
    q = run.query_index(query)
    index = [run.lens.tracked_tokens.index(t) for t in tokens]
    source = run.lens.tracked_ranks if field == "rank" else run.lens.tracked_probs
    return source[:, q][:, index].astype(np.float64)


def _attention_row(run: Run, query: str, layer: int | None) -> NDArray[np.float32]:
    """(pos,) head-averaged attention of `query` at `layer` (mean over layers when None)."""
    q = run.query_index(query)
    if layer is None:
        return run.attention[:, q].mean(axis=0)
    return run.attention[check_index(layer, run.n_layers, "layer"), q]
