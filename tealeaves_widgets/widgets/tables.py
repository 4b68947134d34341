"""Tidy pandas tables as dense arrays for the wire (the comparison views).

A tidy table (one row per variant, query, region and layer) becomes one
float32 array per value column, shaped by its key columns, NaN where the
table has no row; the front end indexes it directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

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
    out[index] = _numbers(frame[column])[keep]
    return out


def _numbers(column: pd.Series) -> NDArray[np.float64]:
    """`column` as float64, NaN where an entry is not a number."""
    # pandas types to_numeric's result as anything it can return; of a Series it is a Series
    return cast(pd.Series, pd.to_numeric(column, errors="coerce")).to_numpy(np.float64)


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
