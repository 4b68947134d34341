"""Selections: which query, regions, layer or head a table or view means.

One rule for every result (`Run`, `RunSet`, `Comparison`) and every view:

- a query is its name, or an int index into the result's query names in
  order (negative counts from the end; never a token position); None is
  "final" when the result has it, else the first query;
- regions are a name, a list of names, or None for all;
- a layer or head is an int within the result's range.

A selection the result does not have raises `SelectionError` naming what it has.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, SelectionError

DEFAULT_QUERY = "final"
"""The query a table or view uses when none is named (if the result has it)."""


def resolve_query(query: str | int | None, names: Sequence[str], what: str = "this run") -> str:
    """The name of the query `query` selects among `names` (see the module docstring)."""
    names = list(names)
    if not names:
        raise SelectionError(
            f"{what[:1].upper()}{what[1:]} has no query position (none shared by all its runs); "
            "capture with query_positions that every case has."
        )
    if query is None:
        return DEFAULT_QUERY if DEFAULT_QUERY in names else names[0]
    if isinstance(query, str):
        if query in names:
            return query
        raise SelectionError(
            f"Unknown query {query!r}; {what} has queries {names}. Pass one of those names or "
            "an index into that list."
        )
    if isinstance(query, bool):
        raise ArgumentTypeError(f"Expected a query name or int index, got {query!r}.")
    try:
        index = operator.index(query)
    except TypeError:
        raise ArgumentTypeError(
            f"Expected a query name or int index, got {type(query).__name__} {query!r}; "
            f"valid names are {names}."
        ) from None
    if not -len(names) <= index < len(names):
        raise SelectionError(
            f"Query index {index} is out of range for {len(names)} queries {names}; an int "
            "indexes the queries in order, it is not a token position."
        )
    return names[index]


def resolve_regions(
    regions: str | Sequence[str] | None, names: Sequence[str], what: str = "this run"
) -> list[str]:
    """The region names `regions` selects among `names`: one name, a list of
    names (each once, at least one), or None for all of them in order."""
    if regions is None:
        return list(names)
    chosen = [regions] if isinstance(regions, str) else list(regions)
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise SelectionError(f"Unknown region(s) {unknown}; {what} has regions {list(names)}.")
    if not chosen:
        raise ArgumentError(f"regions=[] selects nothing; pass None for all of {list(names)}.")
    if len(set(chosen)) != len(chosen):
        raise ArgumentError(f"regions={chosen} names a region twice; list each once.")
    return chosen


def check_index(
    value: object,
    size: int,
    what: str,
    owner: str = "this run",
    *,
    allow_negative: bool = False,
) -> int:
    """`value` as an int index into the `size` items named `what` ("layer",
    "head", "case") that `owner` has, or an error naming the valid range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{what} must be an int, got {type(value).__name__} {value!r}.")
    low = -size if allow_negative else 0
    if not low <= value < size:
        raise SelectionError(
            f"{what}={value} is out of range; {owner} has {size} {what}s, 0..{size - 1}."
        )
    return int(value) % size
