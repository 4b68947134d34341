"""Tidy pandas tables as dense arrays for the wire, and what the comparison
views share: region colours over several runs, a query by name, a flag column.

A tidy table (one row per variant, query, region and layer) becomes one
float32 array per value column, shaped by its key columns, NaN where the
table has no row; the front end indexes it directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..palette import REGION_PALETTE, TEMPLATE_COLOR
from ..run import Run
from .base import SelectionError
from .wire import encode_array


def grid(
    frame: pd.DataFrame, keys: Sequence[tuple[str, Sequence]], column: str
) -> NDArray[np.float32]:
    """`frame[column]` as a float32 array with one axis per key column, in
    the order of the given labels; NaN where no row has those keys."""
    shape = tuple(len(labels) for _, labels in keys)
    out = np.full(shape, np.nan, dtype=np.float32)
    codes = [pd.Index(list(labels)).get_indexer(frame[key]) for key, labels in keys]
    keep = np.all([c >= 0 for c in codes], axis=0) if codes else np.ones(len(frame), bool)
    index = tuple(c[keep] for c in codes)
    out[index] = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)[keep]
    return out


def flag_grid(
    frame: pd.DataFrame, keys: Sequence[tuple[str, Sequence]], column: str
) -> NDArray[np.int8]:
    """A nullable boolean column as int8: 1 true, 0 false, -1 NA or no row."""
    values = frame[column].astype("boolean")
    coded = frame.assign(**{column: np.where(values.isna(), -1, values.fillna(False).astype(int))})
    out = grid(coded, keys, column)
    return np.where(np.isnan(out), -1, out).astype(np.int8)


def encode_grids(
    frame: pd.DataFrame,
    keys: Sequence[tuple[str, Sequence]],
    columns: Iterable[str],
    flags: Iterable[str] = (),
) -> dict[str, Any]:
    """`{column: wire array}` of several value and flag columns."""
    out: dict[str, Any] = {c: encode_array(grid(frame, keys, c)) for c in columns}
    out |= {c: encode_array(flag_grid(frame, keys, c)) for c in flags}
    return out


def union_region_colors(runs: Iterable[Run], names: Sequence[str]) -> dict[str, str]:
    """Colour of each of `names` over several runs: grey for a template region,
    the palette in order for the rest (as `palette.region_colors` for one run)."""
    template = {n for run in runs for n, info in run.regions.items() if info.section == "template"}
    others = [name for name in names if name not in template]
    colors = {name: TEMPLATE_COLOR for name in names if name in template}
    for i, name in enumerate(others):
        colors[name] = REGION_PALETTE[i % len(REGION_PALETTE)]
    return {name: colors[name] for name in names}


def pick_query(query: str | int | None, queries: Sequence[str], what: str) -> str:
    """A query name among `queries`: the name, an index, or None for "final"
    (else the first)."""
    if not queries:
        raise SelectionError(
            f"{what} has no query shared by every run; capture them with the same queries."
        )
    if query is None:
        return "final" if "final" in queries else queries[0]
    if isinstance(query, str) and query in queries:
        return query
    n = len(queries)
    if isinstance(query, int) and not isinstance(query, bool) and -n <= query < n:
        return queries[query]
    raise SelectionError(f"Unknown query {query!r}; {what} has queries {list(queries)}.")
