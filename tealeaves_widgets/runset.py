"""Many cases captured with one region spec: `RunSet`, and what feeds it.

A `RunSet` is a list of `Run`s with a case label (and a sampling seed) for
each. Its aggregates treat the CASE as the sampling unit: runs of one case
sampled with several seeds are averaged first, and their spread is reported
separately as seed noise (`stability`). With a single case sampled with several
seeds, the seeds are the units. Intervals are described in `tealeaves_widgets.stats`.

Also here, torch-free: `Generate` (sampling responses with several seeds),
`load_cases` (a conversations file -> a list of cases) and `plan_batches`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .errors import ChatTemplateError, TealeavesError
from .prompt import Case
from .run import Run, widget_mimebundle
from .stats import CURVE_STATS, IntervalOptions, curve_stats, mean_interval, pooled_sd

if TYPE_CHECKING:
    import plotly.graph_objects as go

DEFAULT_BATCH_TOKENS = {"cpu": 2048, "cuda": 4096}
"""Padded tokens per batch in `Model.capture_many` (batch size x longest case),
by device type (others as "cuda"). On 2 CPU threads, 2048 was the fastest of
2048/4096/9600 (`benchmarks/capture_many.py`); larger batches lose cache. The
GPU figure is not measured yet."""


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Generate:
    """Sample the response of each case without one, once per seed, then capture
    the case with that response prefilled (so queries such as "final" sit at
    the response's end). Cases that have a response are captured once."""

    seeds: tuple[int, ...] = (0, 1, 2)
    """One sampled response per seed; several seeds measure seed noise."""
    max_new_tokens: int = 48
    """Longest response sampled, in tokens."""
    temperature: float = 1.0
    """Sampling temperature (> 0)."""
    top_p: float = 1.0
    """Nucleus sampling mass, in (0, 1]."""

    def __post_init__(self) -> None:
        seeds = tuple(self.seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
            raise TealeavesError(f"Generate.seeds must be a non-empty list of ints, got {seeds!r}.")
        if len(set(seeds)) != len(seeds):
            raise TealeavesError(f"Generate.seeds repeats a seed: {seeds!r}; list each once.")
        object.__setattr__(self, "seeds", seeds)
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise TealeavesError(
                f"Generate.max_new_tokens must be a positive int, got {self.max_new_tokens!r}."
            )
        if not self.temperature > 0 or not 0 < self.top_p <= 1:
            raise TealeavesError(
                f"Generate needs temperature > 0 and 0 < top_p <= 1, got temperature="
                f"{self.temperature!r}, top_p={self.top_p!r}."
            )


def load_cases(path: str | Path) -> list[Case]:
    """Read a conversations file (TeaLeaves' `conversations.json`) into cases.

    The file holds a JSON list, or an object whose "conversations" key holds
    one. Each entry is a case dict (`system`, `user`, `response`, `messages`,
    `name`; `id` is taken as the name) or a bare list of chat messages.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TealeavesError(f"Cannot read {str(path)!r}: {error}. Check the path.") from error
    except json.JSONDecodeError as error:
        raise TealeavesError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from error
    if isinstance(data, Mapping) and "conversations" in data:
        data = data["conversations"]
    if not isinstance(data, list) or not data:
        raise TealeavesError(
            f'{path} must hold a non-empty JSON list of cases (or {{"conversations": [...]}}), '
            f"got {type(data).__name__}."
        )
    return [_case_from_entry(entry, f"{path}[{i}]") for i, entry in enumerate(data)]


def _case_from_entry(entry: object, where: str) -> Case:
    try:
        if isinstance(entry, list):
            return Case(messages=entry)
        if isinstance(entry, Mapping):
            entry = dict(entry)
            if "id" in entry:
                label = entry.pop("id")
                entry.setdefault("name", str(label))
            return Case.from_dict(entry)
    except ChatTemplateError as error:
        raise ChatTemplateError(f"{where}: {error}") from error
    raise ChatTemplateError(
        f"{where} must be a case object or a list of messages, got {type(entry).__name__}."
    )


def plan_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Group case indices into batches, longest first, so that each batch's
    size x its longest case stays within `batch_tokens` (a case longer than
    that runs alone). Similar lengths end up together, so little is padding."""
    if isinstance(batch_tokens, bool) or not isinstance(batch_tokens, int) or batch_tokens < 1:
        raise TealeavesError(f"batch_tokens must be a positive int, got {batch_tokens!r}.")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for index in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= batch_tokens:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


# ---------------------------------------------------------------- RunSet


def region_masses(
    run: Run, query: str | int, normalize: str, names: Sequence[str]
) -> NDArray[np.float64]:
    """(layer, region) curves of `run` for `names`, NaN for the regions it lacks.

    "share" is taken over the named regions this run has."""
    present = [name for name in names if name in run.regions]
    out = np.full((run.n_layers, len(names)), np.nan)
    if present:
        curves = run.curves(query=query, normalize=normalize, regions=present)
        out[:, [list(names).index(name) for name in present]] = curves.to_numpy()
    return out


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
            raise TealeavesError(
                "A RunSet needs a non-empty list of tw.Run objects (from Model.capture), got "
                f"{[type(r).__name__ for r in runs][:5]}."
            )
        labels = tuple(self.labels) or tuple(
            run.case.get("name") or f"case{i}" for i, run in enumerate(runs)
        )
        seeds = tuple(self.seeds) or (None,) * len(runs)
        if len(labels) != len(runs) or len(seeds) != len(runs):
            raise TealeavesError(
                f"A RunSet of {len(runs)} runs needs as many labels and seeds, got "
                f"{len(labels)} labels and {len(seeds)} seeds."
            )
        depths = sorted({run.n_layers for run in runs})
        if len(depths) > 1:
            raise TealeavesError(
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

    def _query(self, query: str | int | None) -> str:
        common = self.queries
        if not common:
            raise TealeavesError("The runs of this RunSet share no query name.")
        if query is None:
            return "final" if "final" in common else common[0]
        if isinstance(query, str):
            if query not in common:
                raise TealeavesError(
                    f"Unknown query {query!r}; every run of this RunSet has {list(common)}."
                )
            return query
        if (
            isinstance(query, bool)
            or not isinstance(query, int)
            or not -len(common) <= query < len(common)
        ):
            raise TealeavesError(
                f"query={query!r} is neither a query name nor an index into {list(common)}."
            )
        return common[query]

    def _regions(self, regions: Sequence[str] | str | None) -> list[str]:
        common = self.region_names
        if regions is None:
            return list(common)
        names = [regions] if isinstance(regions, str) else list(regions)
        missing = {
            n: [self.labels[i] for i, r in enumerate(self.runs) if n not in r.regions]
            for n in names
        }
        missing = {n: where for n, where in missing.items() if where}
        if missing:
            raise TealeavesError(
                f"Region(s) missing from some runs: {missing}. Every run has {list(common)}; "
                "pick among those."
            )
        return names

    def masses(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
    ) -> tuple[NDArray[np.float64], list[str]]:
        """(run, layer, region) curves of every run (as `Run.curves`), and the region names."""
        name = self._query(query)
        names = self._regions(regions)
        values = np.stack([region_masses(run, name, normalize, names) for run in self.runs])
        return values, names

    # -- aggregates -------------------------------------------------------------

    def curves(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
    ) -> pd.DataFrame:
        """Mean curves over the units: a (layer, region) frame shaped like `Run.curves`."""
        values, names = self.masses(query, normalize, regions)
        frame = pd.DataFrame(
            self.unit_values(values).mean(axis=0), columns=pd.Index(names, name="region")
        )
        frame.index = pd.RangeIndex(self.n_layers, name="layer")
        return frame

    def aggregate(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        level: float = 0.95,
        interval: str = "t",
    ) -> pd.DataFrame:
        """Mean curve of each region with its confidence band and the spread across units.

        One row per region and layer: `mean`, `low`/`high` (the interval of the
        mean at `level`, by `interval` "t" or "bootstrap"), `sd`, `min`,
        `median`, `max` across units, and `n` units.
        """
        values, names = self.masses(query, normalize, regions)
        units = self.unit_values(values)  # (unit, layer, region)
        estimate = mean_interval(units, IntervalOptions(level=level, method=interval))
        spread = {
            "sd": units.std(axis=0, ddof=1) if len(units) > 1 else np.full(units.shape[1:], np.nan),
            "min": units.min(axis=0),
            "median": np.median(units, axis=0),
            "max": units.max(axis=0),
        }
        columns = {"mean": estimate.mean, "low": estimate.low, "high": estimate.high, **spread}
        return _tidy(names, "region", list(range(self.n_layers)), "layer", columns, estimate.n)

    def stability(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
    ) -> pd.DataFrame:
        """How much each region's curve varies across seeds of the same case.

        One row per region and layer: `mean`, `seed_sd` (pooled within-case
        standard deviation across seeds: the typical seed-to-seed variation of
        one run's value) and `rel_sd` = seed_sd / mean. A delta between variants
        well below seed_sd is within sampling noise.
        """
        if not self.has_seeds:
            raise TealeavesError(
                "No case of this RunSet was captured with several sampled responses, so "
                "there is no seed noise to report. Capture with "
                "model.capture_many(cases, regions, generate=tw.Generate(seeds=(0, 1, 2)))."
            )
        values, names = self.masses(query, normalize, regions)
        mean = self.unit_values(values).mean(axis=0)
        sd = self.seed_sd(values)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(mean > 0, sd / mean, np.nan)
        n = np.full(mean.shape, len(self), dtype=np.int64)
        columns = {"mean": mean, "seed_sd": sd, "rel_sd": rel}
        return _tidy(names, "region", list(range(self.n_layers)), "layer", columns, n)

    def curve_stats(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        threshold: float | None = None,
        level: float = 0.95,
        interval: str = "t",
    ) -> pd.DataFrame:
        """Cooking-curve statistics (see `stats.curve_stats`) per unit, then their
        mean and interval: one row per region and stat."""
        values, names = self.masses(query, normalize, regions)
        per_run = curve_stats(values.transpose(0, 2, 1), threshold)  # (run, region, stat)
        estimate = mean_interval(
            self.unit_values(per_run).transpose(0, 2, 1), IntervalOptions(level, interval)
        )
        columns = {"mean": estimate.mean, "low": estimate.low, "high": estimate.high}
        return _tidy(names, "region", list(CURVE_STATS), "stat", columns, estimate.n)

    def aggregate_figure(
        self,
        query: str | int | None = None,
        normalize: str = "raw",
        regions: Sequence[str] | str | None = None,
        *,
        level: float = 0.95,
        interval: str = "t",
    ) -> go.Figure:
        """Static plotly figure of `aggregate(...)`: each region's mean curve
        with its confidence band. `figures.aggregate_figure` overlays several
        RunSets."""
        from .figures import aggregate_figure

        names = None if regions is None else self._regions(regions)
        return aggregate_figure(self, query, normalize, names, level=level, interval=interval)

    def save(self, directory: str | Path) -> Path:
        """Write every run to `directory` (one run file each) and an index.json;
        `tw.open_runs(directory)` gives this RunSet back. Returns the directory."""
        from .rundir import save_runs

        return save_runs(self, directory)

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

    def aggregate_view(self, **options):
        """Mean curves with confidence bands, as a widget (`tw.AggregateView`:
        query=, layer=, normalize=, band=, level=, interval=); `display(runset)`
        shows one. Imports the widgets on first use."""
        from .widgets import AggregateView

        return AggregateView(self, **options)

    def _repr_mimebundle_(self, include=None, exclude=None):
        """In a Jupyter kernel a run set displays as an `AggregateView`."""
        return widget_mimebundle(repr(self), self.aggregate_view, include, exclude)


def _tidy(
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
