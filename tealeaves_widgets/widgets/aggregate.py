"""`AggregateView`: cooking curves of a `RunSet` as the mean over its cases
with a band (the confidence interval of the mean, +-1 sd, or the range across
cases), for one RunSet or several overlaid.

The numbers are `RunSet.aggregate`'s, computed here for every query and
normalisation and sent once (`aggregate_payload`), so switching either in
the browser needs no kernel and an exported page keeps them all. With them go
what each normalisation leaves out (`exclude`, as `RunSet.aggregate`) and, per
set and layer, the first token's attention (the sink) and the excluded
tokens', shown on their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import traitlets as t

from ..core.masses import AUTO, Exclusion, MassOptions, excluded_tokens, layout
from ..core.run import NORMALIZATIONS, Run
from ..core.runset import RunSet
from ..core.selection import resolve_query
from ..errors import ArgumentError, ArgumentTypeError
from ..present.palette import union_region_colors
from ._bundle import esm
from .base import HiddenRegions, TraitSelectionError, View, _reject_unknown
from .schema import SCHEMA_VERSION, AggregatePayload, WireArray
from .tables import grid
from .wire import encode_array, payload_bytes

__all__ = ["AGGREGATE_STATS", "BANDS", "AggregateView", "aggregate_payload", "as_runsets"]

AGGREGATE_STATS = ("mean", "low", "high", "sd", "min", "max")
"""Columns of `RunSet.aggregate` on the wire, in this order on the last axis."""
BANDS = ("interval", "sd", "range", "none")
"""What the band around a mean curve shows: the confidence interval of the
mean, mean +- 1 sd across units, min..max across units, or nothing."""


def as_runsets(value: RunSet | Run | Mapping[str, RunSet | Run]) -> dict[str, RunSet]:
    """Name -> RunSet from a RunSet, a Run, or a mapping of them (a Run
    counts as a RunSet of one case, without a band)."""
    if isinstance(value, (RunSet, Run)):
        value = {"all cases" if isinstance(value, RunSet) else "run": value}
    if not isinstance(value, Mapping) or not value:
        raise ArgumentTypeError(
            "AggregateView expects a tw.RunSet or a dict of them, name -> RunSet (e.g. "
            f'{{"baseline": runs_a, "terse": runs_b}}), got {type(value).__name__}.'
        )
    sets = {}
    for name, item in value.items():
        if isinstance(item, Run):
            item = RunSet((item,))
        if not isinstance(name, str) or not isinstance(item, RunSet):
            raise ArgumentTypeError(
                f"Entry {name!r} must be named by a str and hold a tw.RunSet, got "
                f"{type(item).__name__}."
            )
        sets[name] = item
    depths = {name: rs.n_layers for name, rs in sets.items()}
    if len(set(depths.values())) > 1:
        raise ArgumentError(
            f"The RunSets have different numbers of layers {depths}: overlay runs of one model."
        )
    return sets


def _queries(sets: dict[str, RunSet]) -> list[str]:
    first = next(iter(sets.values())).queries
    return [q for q in first if all(q in rs.queries for rs in sets.values())]


def aggregate_payload(
    sets: dict[str, RunSet],
    *,
    normalizations: Sequence[str] = NORMALIZATIONS,
    level: float = 0.95,
    interval: str = "t",
    exclude: str | tuple[str, ...] | None = AUTO,
) -> AggregatePayload:
    """Everything the aggregate view renders, as one synced value:
    `RunSet.aggregate(exclude=exclude)` of every set, normalisation and query,
    as a float32 array (set, normalize, query, layer, region, stat), and the
    sink and excluded masses per set (`_sink`)."""
    normalizations = list(normalizations)
    options = [MassOptions(n, exclude) for n in normalizations if n in NORMALIZATIONS]
    unknown = [n for n in normalizations if n not in NORMALIZATIONS]
    if unknown or not normalizations:
        raise ArgumentError(
            f"normalizations={normalizations!r}: give some of {list(NORMALIZATIONS)}."
        )
    queries = _queries(sets)
    default = resolve_query(None, queries, "these RunSets")  # refuses sets with no common query
    regions = list(dict.fromkeys(n for rs in sets.values() for n in rs.region_names))
    if not regions:
        raise ArgumentError("The RunSets have no region that all runs of a set share.")
    n_layers = next(iter(sets.values())).n_layers
    shape = (len(sets), len(normalizations), len(queries), n_layers, len(regions))
    values = np.full((*shape, len(AGGREGATE_STATS)), np.nan, dtype=np.float32)
    keys = [("layer", range(n_layers)), ("region", regions)]
    for s, rs in enumerate(sets.values()):
        for m, normalize in enumerate(normalizations):
            for q, query in enumerate(queries):
                frame = rs.aggregate(
                    query, normalize, level=level, interval=interval, exclude=exclude
                )
                for k, stat in enumerate(AGGREGATE_STATS):
                    values[s, m, q, :, :, k] = grid(frame, keys, stat)
    runs = [run for rs in sets.values() for run in rs.runs]
    colors = union_region_colors(runs, regions)
    sink, excluded = _sink(sets, queries, [o.exclusion for o in options])
    payload: AggregatePayload = {
        "schema_version": SCHEMA_VERSION,
        "kind": "aggregate",
        "model": {"model_id": str(runs[0].model_info.get("model_id", "unknown model"))},
        "n_layers": n_layers,
        "sets": [
            {"name": name, "runs": len(rs), "cases": len(rs.cases), "units": len(rs.units)}
            for name, rs in sets.items()
        ],
        "queries": queries,
        "default_query": queries.index(default),
        "regions": [{"name": name, "color": colors[name]} for name in regions],
        "normalizations": normalizations,
        "excluded": [o.exclusion.describe() for o in options],
        "first_excluded": [_first_excluded(runs, o.exclusion) for o in options],
        "own": _own(sets, regions),
        "stats": list(AGGREGATE_STATS),
        "level": level,
        "interval": interval,
        "values": encode_array(values),
        "sink": sink,
        "excluded_mass": excluded,
        "bytes": 0,
    }
    payload["bytes"] = payload_bytes(payload)
    return payload


def _sink(
    sets: dict[str, RunSet], queries: list[str], exclusions: list[Exclusion]
) -> tuple[WireArray, WireArray]:
    """Means over units (`RunSet.excluded_mass`), fractions of the whole row:
    (set, query, layer) the first token's attention, and (set, normalize,
    query, layer) the excluded tokens' (0 where nothing is excluded)."""
    n_layers = next(iter(sets.values())).n_layers
    sink = np.zeros((len(sets), len(queries), n_layers), dtype=np.float32)
    excluded = np.zeros((len(sets), len(exclusions), len(queries), n_layers), dtype=np.float32)
    for s, rs in enumerate(sets.values()):
        for q, query in enumerate(queries):
            sink[s, q] = rs.excluded_mass(query, "first")["mean"].to_numpy()
            for m, exclusion in enumerate(exclusions):
                if exclusion.any:
                    mean = rs.excluded_mass(query, exclusion.spec)["mean"]
                    excluded[s, m, q] = mean.to_numpy()
    return encode_array(sink), encode_array(excluded)


def _first_excluded(runs: list[Run], exclusion: Exclusion) -> bool:
    """True when every run leaves its first token out (by name or in an excluded region)."""
    return exclusion.first or (
        exclusion.any and all(run.n_tokens and excluded_tokens(run, exclusion)[0] for run in runs)
    )


def _own(sets: dict[str, RunSet], regions: list[str]) -> list[bool]:
    """Per region: True when its "share" counts only its own tokens in some run."""
    options = MassOptions("share")
    own = {
        n for rs in sets.values() for run in rs for n, o in layout(run, options).own.items() if o
    }
    return [name in own for name in regions]


class AggregateView(HiddenRegions, View):
    """Cooking curves of a `RunSet`: per region, the mean over the cases with a
    band (confidence interval, +-1 sd or range), at one query and
    normalisation. Several RunSets, `AggregateView({"a": rs_a, "b": rs_b})`,
    are overlaid in one small chart per region. `layer`, `query`,
    `normalize`, `band` and `hidden` are synced with Python. `display(runset)`
    shows one. `exclude` (as `RunSet.aggregate`; default "auto": the first token
    in "share") is fixed when the view is made; the view says what it leaves
    out and shows each set's sink (first-token attention) at the layer."""

    _esm = esm("aggregate_view")

    payload = t.Dict().tag(sync=True)
    """The aggregates on the wire (`aggregate_payload`); set at construction."""
    normalize = t.Enum(NORMALIZATIONS, default_value="raw").tag(sync=True, echo_update=False)
    """Normalisation of the curves, as `Run.curves`."""
    band = t.Enum(BANDS, default_value="interval").tag(sync=True, echo_update=False)
    """What the band around each mean shows, one of `BANDS`."""

    def __init__(
        self,
        runsets: RunSet | Run | Mapping[str, RunSet | Run],
        *,
        query: str | int | None = None,
        layer: int | None = None,
        normalizations: Sequence[str] = NORMALIZATIONS,
        level: float = 0.95,
        interval: str = "t",
        exclude: str | tuple[str, ...] | None = AUTO,
        **kwargs: Any,
    ) -> None:
        _reject_unknown(type(self), kwargs)
        self._sets = as_runsets(runsets)
        payload = aggregate_payload(
            self._sets,
            normalizations=normalizations,
            level=level,
            interval=interval,
            exclude=exclude,
        )
        self._payload_queries = payload["queries"]
        self._normalizations = payload["normalizations"]
        self._regions = [r["name"] for r in payload["regions"]]
        self._layers = payload["n_layers"]
        kwargs.setdefault("normalize", self._normalizations[0])
        super().__init__(
            payload=payload,
            query=resolve_query(query, self._payload_queries, "these RunSets"),
            layer=self._layers // 2 if layer is None else layer,
            **kwargs,
        )

    @property
    def runsets(self) -> dict[str, RunSet]:
        """The RunSets shown, by name."""
        return dict(self._sets)

    @property
    def _n_layers(self) -> int:
        return self._layers

    @property
    def _query_names(self) -> Sequence[str]:
        return self._payload_queries

    @property
    def _region_names(self) -> Sequence[str]:
        return self._regions

    @t.validate("normalize")
    def _check_normalize(self, proposal: t.Bunch) -> str:
        normalize = proposal["value"]
        if normalize not in self._normalizations:
            raise TraitSelectionError(
                f"normalize={normalize!r} was not computed for this view; it has "
                f"{self._normalizations} (pass normalizations= to compute others)."
            )
        return normalize
