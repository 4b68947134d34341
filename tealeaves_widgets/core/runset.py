"""Many cases captured with one region spec: `RunSet`.

A `RunSet` is a list of `Run`s with a case label (and a sampling seed) for
each. Its aggregates treat the CASE as the sampling unit: runs of one case
sampled with several seeds are averaged first, and their spread is reported
separately as seed noise (`stability`). With a single case sampled with several
seeds, the seeds are the units. Intervals are described in
`tealeaves_widgets.core.stats`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ArgumentError, SelectionError
from . import seam
from .deprecation import deprecated_alias
from .masses import (
    AUTO,
    FIRST,
    LEAVES,
    MassOptions,
    RegionCurves,
    excluded_tokens,
    layout,
    own_label,
    region_curves,
    resolve_exclusion,
)
from .run import Run
from .selection import resolve_query
from .stats import CURVE_STATS, IntervalOptions, curve_stats, mean_interval, pooled_sd

if TYPE_CHECKING:
    import plotly.graph_objects as go

# ---------------------------------------------------------------- RunSet


def region_masses(
    run: Run, query: str | int, options: MassOptions, names: Sequence[str]
) -> NDArray[np.float64]:
    """(layer, region) curves of `run` for `names` (as `Run.curves` under
    `options`), NaN for the regions it lacks or that have no value there."""
    return run_curves(run, query, options, names).values


def run_curves(
    run: Run, query: str | int, options: MassOptions, names: Sequence[str]
) -> RegionCurves:
    """`core.masses.region_curves` of `run`'s head-averaged rows at `query`."""
    return region_curves(run.attention[:, run.query_index(query), :], run, names, options)


@dataclass(frozen=True, repr=False)
class RunSet:
    """Runs of many cases (and seeds) captured with one region spec."""

    runs: tuple[Run, ...]
    """(run,) the runs, in the order their cases were given; seeds of one case together."""
    labels: tuple[str, ...] = ()
    """(run,) case label of each run: the case's name, else "case<i>" (i = its
    index in the list given). Runs of one case sampled with several seeds share it."""
    seeds: tuple[int | None, ...] = ()
    """(run,) seed that sampled the run's response; None where the response was given."""

    def __post_init__(self) -> None:
        runs = tuple(self.runs)
        if not runs or not all(isinstance(run, Run) for run in runs):
            raise ArgumentError(
                "A RunSet needs a non-empty list of tw.Run objects (from Model.capture), got "
                f"{[type(r).__name__ for r in runs][:5]}."
            )
        labels = tuple(self.labels) or tuple(
            run.case.get("name") or f"case{i}" for i, run in enumerate(runs)
        )
        seeds = tuple(self.seeds) or (None,) * len(runs)
        if len(labels) != len(runs) or len(seeds) != len(runs):
            raise ArgumentError(
                f"A RunSet of {len(runs)} runs needs as many labels and seeds, got "
                f"{len(labels)} labels and {len(seeds)} seeds."
            )
        depths = sorted({run.n_layers for run in runs})
        if len(depths) > 1:
            raise ArgumentError(
                f"The runs have different numbers of layers {depths}: a RunSet holds runs of "
                "one model. Make one RunSet per model."
            )
        object.__setattr__(self, "runs", runs)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "seeds", seeds)

    # -- sizes -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def __getitem__(self, index: int) -> Run:
        return self.runs[index]

    @property
    def n_layers(self) -> int:
        return self.runs[0].n_layers

    @property
    def cases(self) -> tuple[str, ...]:
        """Distinct case labels, in order."""
        return tuple(dict.fromkeys(self.labels))

    @property
    def queries(self) -> tuple[str, ...]:
        """Query names every run has, in the first run's order."""
        return tuple(q for q in self.runs[0].queries if all(q in r.queries for r in self.runs))

    @property
    def region_names(self) -> tuple[str, ...]:
        """Region names every run has, in the first run's order."""
        return tuple(n for n in self.runs[0].regions if all(n in r.regions for r in self.runs))

    @property
    def has_seeds(self) -> bool:
        """True when some case was captured with at least two sampled responses."""
        return any(count > 1 for count in self._runs_per_case().values())

    def _runs_per_case(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label in self.labels:
            counts[label] = counts.get(label, 0) + 1
        return counts

    # -- units ---------------------------------------------------------------

    @property
    def units_are_cases(self) -> bool:
        """True when aggregates treat cases as the units (more than one case);
        False when one case was sampled with several seeds and the seeds are the units."""
        return len(self.cases) > 1

    @property
    def units(self) -> tuple[str, ...]:
        """(unit,) labels of the sampling units: the cases, or "seed<s>" (see `units_are_cases`)."""
        if self.units_are_cases:
            return self.cases
        return tuple(f"seed{s}" if s is not None else f"run{i}" for i, s in enumerate(self.seeds))

    def unit_values(self, values: NDArray) -> NDArray[np.float64]:
        """(run, ...) -> (unit, ...): the mean over each case's runs (its seeds),
        or the runs themselves when the seeds are the units."""
        values = np.asarray(values, dtype=np.float64)
        if not self.units_are_cases:
            return values
        labels = np.asarray(self.labels)
        return np.stack([values[labels == case].mean(axis=0) for case in self.cases])

    def seed_sd(self, values: NDArray) -> NDArray[np.float64]:
        """(run, ...) -> (...) pooled within-case standard deviation across seeds
        (NaN where no case has two runs)."""
        groups = np.unique(np.asarray(self.labels), return_inverse=True)[1]
        return pooled_sd(values, groups)[0]

    # -- per-run arrays -------------------------------------------------------

    def query_name(self, query: str | int | None = None) -> str:
        """The name of the query `query` selects among `queries` (a name, an
        index into them, or None for "final" when every run has it)."""
        return resolve_query(query, self.queries, "every run of this RunSet")

    def _regions(
        self, regions: Sequence[str] | str | None, options: MassOptions | None = None
    ) -> list[str]:
        """The regions a table shows: those asked for (every run must have them),
        or every region all runs have; with `options`, only regions that have a
        value in some run (not wholly excluded, not below the share level)."""
        common = self.region_names
        valued = self._valued(options)
        if regions is None:
            return [n for n in common if valued is None or n in valued]
        names = [regions] if isinstance(regions, str) else list(regions)
        missing = {
            n: [self.labels[i] for i, r in enumerate(self.runs) if n not in r.regions]
            for n in names
        }
        missing = {n: where for n, where in missing.items() if where}
        if missing:
            raise SelectionError(
                f"Region(s) missing from some runs: {missing}. Every run has {list(common)}; "
                "pick among those."
            )
        empty = [n for n in names if valued is not None and n not in valued]
        if empty and options is not None:
            raise ArgumentError(
                f"Region(s) {empty} have no value in any run under {options.describe()} (every "
                "token they hold is excluded, or they lie below share_level). Drop them from "
                "regions= or change exclude= / share_level=."
            )
        return names

    def _valued(self, options: MassOptions | None) -> set[str] | None:
        """Regions with a value in some run under `options` (None: no options)."""
        if options is None:
            return None
        return {name for run in self.runs for name in layout(run, options).counted}

    def _own(self, names: Sequence[str], options: MassOptions) -> list[bool]:
        """Per name, True when some run counts only its own tokens ("share")."""
        owns = [layout(run, options).own for run in self.runs]
        return [any(own.get(name, False) for own in owns) for name in names]

    def masses(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
    ) -> tuple[NDArray[np.float64], list[str]]:
        """(run, layer, region) curves of every run (as `Run.curves`, NaN where a
        run lacks a region or it has no value there), and the region names."""
        options = MassOptions(normalize, exclude, share_level)
        name = self.query_name(query)
        names = self._regions(regions, options)
        values = np.stack([region_masses(run, name, options, names) for run in self.runs])
        return values, names

    def excluded_mass(
        self,
        query: str | int | None = None,
        exclude: str | tuple[str, ...] | None = FIRST,
        *,
        level: float = 0.95,
        interval: str = "t",
    ) -> pd.DataFrame:
        """Attention on the excluded tokens (default: the first token, the
        attention sink) per layer, a fraction of the whole row, over the units:
        one row per layer with the columns of `aggregate` (`mean`, `low`,
        `high`, `sd`, `min`, `median`, `max`, `n`)."""
        name = self.query_name(query)
        exclusion = resolve_exclusion(exclude, "raw")
        values = np.stack(
            [
                run.attention[:, run.query_index(name), :][:, excluded_tokens(run, exclusion)]
                .astype(np.float64)
                .sum(axis=1)
                for run in self.runs
            ]
        )[:, :, None]  # (run, layer, 1)
        table = self._summary(values, [exclusion.describe()], level, interval)
        return table.drop(columns="region")

    # -- aggregates -------------------------------------------------------------

    def curves(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
    ) -> pd.DataFrame:
        """Mean curves over the units: a (layer, region) frame shaped like
        `Run.curves` (same options, columns and attrs)."""
        options = MassOptions(normalize, exclude, share_level)
        values, names = self.masses(
            query, normalize, regions, exclude=exclude, share_level=share_level
        )
        labels = [
            own_label(n, own) for n, own in zip(names, self._own(names, options), strict=True)
        ]
        mean = _quiet_mean(self.unit_values(values))
        frame = pd.DataFrame(mean, columns=pd.Index(labels, name="region"))
        frame.index = pd.RangeIndex(self.n_layers, name="layer")
        frame.attrs = {
            "normalize": normalize,
            "exclude": options.exclusion.describe(),
            "share_level": options.share_level,
        }
        return frame

    def aggregate(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        level: float = 0.95,
        interval: str = "t",
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
    ) -> pd.DataFrame:
        """Mean curve of each region with its confidence band and the spread across units.

        One row per region and layer: `mean`, `low`/`high` (the interval of the
        mean at `level`, by `interval` "t" or "bootstrap"), `sd`, `min`,
        `median`, `max` across units, and `n` units. `exclude` and
        `share_level` as `Run.curves` (default: the first token is excluded
        for "share"; in "share" a parent's rows count its own tokens).
        """
        values, names = self.masses(
            query, normalize, regions, exclude=exclude, share_level=share_level
        )
        return self._summary(values, names, level, interval)

    def _summary(
        self, values: NDArray, names: list[str], level: float, interval: str
    ) -> pd.DataFrame:
        """Tidy mean, interval and spread of (run, layer, item) values over the units."""
        units = self.unit_values(values)  # (unit, layer, item)
        estimate = mean_interval(units, IntervalOptions(level=level, method=interval))

        def spread(fn) -> NDArray:
            return _quiet(lambda: fn(units, axis=0))

        columns = {
            "mean": estimate.mean,
            "low": estimate.low,
            "high": estimate.high,
            "sd": _quiet(lambda: np.nanstd(units, axis=0, ddof=1))
            if len(units) > 1
            else np.full(units.shape[1:], np.nan),
            "min": spread(np.nanmin),
            "median": spread(np.nanmedian),
            "max": spread(np.nanmax),
        }
        return tidy_table(names, "region", list(range(self.n_layers)), "layer", columns, estimate.n)

    def stability(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
    ) -> pd.DataFrame:
        """How much each region's curve varies across seeds of the same case.

        One row per region and layer: `mean`, `seed_sd` (pooled within-case
        standard deviation across seeds: the typical seed-to-seed variation of
        one run's value) and `rel_sd` = seed_sd / mean. A delta between variants
        well below seed_sd is within sampling noise.
        """
        if not self.has_seeds:
            raise ArgumentError(
                "No case of this RunSet was captured with several sampled responses, so "
                "there is no seed noise to report. Capture with "
                "model.capture_many(cases, regions, generate=tw.Generate(seeds=(0, 1, 2)))."
            )
        values, names = self.masses(
            query, normalize, regions, exclude=exclude, share_level=share_level
        )
        mean = _quiet_mean(self.unit_values(values))
        sd = self.seed_sd(values)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(mean > 0, sd / mean, np.nan)
        n = np.full(mean.shape, len(self), dtype=np.int64)
        columns = {"mean": mean, "seed_sd": sd, "rel_sd": rel}
        return tidy_table(names, "region", list(range(self.n_layers)), "layer", columns, n)

    def curve_stats(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        threshold: float | None = None,
        level: float = 0.95,
        interval: str = "t",
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
    ) -> pd.DataFrame:
        """Cooking-curve statistics (see `stats.curve_stats`) per unit, then their
        mean and interval: one row per region and stat."""
        values, names = self.masses(
            query, normalize, regions, exclude=exclude, share_level=share_level
        )
        per_run = curve_stats(values.transpose(0, 2, 1), threshold)  # (run, region, stat)
        estimate = mean_interval(
            self.unit_values(per_run).transpose(0, 2, 1), IntervalOptions(level, interval)
        )
        columns = {"mean": estimate.mean, "low": estimate.low, "high": estimate.high}
        return tidy_table(names, "region", list(CURVE_STATS), "stat", columns, estimate.n)

    def aggregate_figure(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        level: float = 0.95,
        interval: str = "t",
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
    ) -> go.Figure:
        """Static plotly figure of `aggregate(...)`: each region's mean curve
        with its confidence band. `figures.aggregate_figure` overlays several
        RunSets."""
        options = MassOptions(normalize, exclude, share_level)
        names = None if regions is None else self._regions(regions, options)
        return seam.call(
            "aggregate_figure",
            self,
            query,
            normalize,
            names,
            level=level,
            interval=interval,
            exclude=exclude,
            share_level=share_level,
        )

    def save_png(
        self,
        path: str | PathLike[str],
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        level: float = 0.95,
        interval: str = "t",
        exclude: str | tuple[str, ...] | None = AUTO,
        share_level: str | int = LEAVES,
        width: int = 1600,
        dpi: int = 150,
    ) -> Path:
        """Write the chart of `aggregate(...)` as a PNG: each region's mean curve
        with its confidence band; the title says what was excluded.
        `render.aggregate_png({"a": rs_a, "b": rs_b}, path)` overlays several
        RunSets. Needs matplotlib (`pip install
        "tealeaves-widgets[render]"`). Returns the path written."""
        options = MassOptions(normalize, exclude, share_level)
        names = None if regions is None else self._regions(regions, options)
        return seam.call(
            "save_png",
            self,
            path,
            query,
            normalize,
            names,
            level=level,
            interval=interval,
            exclude=exclude,
            share_level=share_level,
            width=width,
            dpi=dpi,
        )

    def save(self, directory: str | PathLike[str]) -> Path:
        """Write every run to `directory` (one run file each) and an index.json;
        `tw.open_runs(directory)` gives this RunSet back. Returns the directory."""
        return seam.call("save", self, directory)

    def __repr__(self) -> str:
        runs = self.runs[0]
        model = runs.model_info.get("model_id", "unknown model")
        tokens = [run.n_tokens for run in self.runs]
        seeds = sorted({s for s in self.seeds if s is not None})
        return (
            f"RunSet({model}: {len(self)} runs of {len(self.cases)} cases, "
            f"{min(tokens)}-{max(tokens)} tokens, {self.n_layers} layers"
            + (f", seeds {seeds}" if seeds else "")
            + f")\n  queries: {list(self.queries)}\n  regions: {list(self.region_names)}"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel a run set displays as `tw.AggregateView(runset)`."""
        return seam.display_bundle(self, include, exclude)

    aggregate_view = deprecated_alias(
        "runset.aggregate_view(...)", "tw.AggregateView(runset, ...)", "AggregateView"
    )


def tidy_table(
    items: Sequence,
    item_column: str,
    rows: Sequence,
    row_column: str,
    columns: dict[str, NDArray],
    n: NDArray,
) -> pd.DataFrame:
    """A tidy frame from (row, item) arrays: one line per item, then row."""
    frame = pd.DataFrame(
        {
            item_column: np.repeat(np.asarray(items, dtype=object), len(rows)),
            row_column: np.tile(np.asarray(rows, dtype=object), len(items)),
        }
    )
    for name, values in columns.items():
        frame[name] = np.asarray(values, dtype=np.float64).T.ravel()
    frame["n"] = np.asarray(n).T.ravel().astype(np.int64)
    if all(isinstance(r, (int, np.integer)) for r in rows):
        frame[row_column] = frame[row_column].astype(np.int64)
    return frame


def _quiet(fn):
    """`fn()` with numpy's warnings about all-NaN slices silenced (a region no
    run has a value for gives NaN on purpose)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn()


def _quiet_mean(values: NDArray) -> NDArray:
    """NaN-aware mean over axis 0 (units without a value are left out)."""
    return _quiet(lambda: np.nanmean(values, axis=0))
