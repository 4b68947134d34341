"""Attention mass per region: what is excluded, which tokens a region counts,
and the normalisations. Every table of region masses (`Run.curves`, `RunSet`,
`Comparison`) is computed here, in three steps.

1. Exclusion (`exclude`). Tokens are removed before anything is summed:
   "first" (the first token, position 0, where most models park attention
   they do not need: the attention sink), a region's name (its tokens;
   "template" is the chat template's markup, which holds the first token in a
   chat prompt), a tuple of those, or None. Their mass (the attention the
   query pays them, a fraction of the whole row) is reported on its own
   (`excluded`, `Run.excluded_mass`). When something is excluded, every mass
   is divided by the attention that is left (the kept total), so masses are
   fractions of the non-excluded attention. The default, "auto", excludes the
   first token for "share" and nothing for the other normalisations (whose
   numbers stay the plain attention mass).
2. Which tokens a region counts. "raw", "per-region" and "density": all its
   kept tokens (a parent counts its children's tokens too). "share": a
   partition of the prompt, so each token counts once. The region tree has the
   built-in sections ("system", "user", "response", "turn<i>_<role>",
   "template") at depth 0, top-level user regions at depth 1 under their
   section, their children at depth 2, and so on. `share_level="leaves"`
   (the default) puts each token in its innermost region: a parent counts its
   own tokens (those outside its children), a section its tokens outside the
   user regions. An int level `d` stops at depth `d`: regions at depth `d`
   count all their tokens, shallower ones their tokens outside depth <= `d`,
   deeper ones have no share. A region whose share is its own tokens only is
   labelled "<name> (own)" in the wide tables (`own_label`).
3. Normalisation. "raw": the mass (over the kept total when something is
   excluded). "share": each region's tokens over the sum across the
   partition, so a row sums to 1 (0 where nothing is left). "per-region": the
   raw curve min-max scaled to 0..1 across layers (0 when constant).
   "density": the raw value over the region's number of kept tokens (NaN
   without any).

A region whose every token is excluded has no value (NaN; not a column of
`Run.curves`). Numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import ArgumentError, ArgumentTypeError, SelectionError

if TYPE_CHECKING:
    from .run import RegionInfo, Run

NORMALIZATIONS = ("raw", "share", "per-region", "density")
"""Valid values of `normalize`."""
FIRST = "first"
"""`exclude` keyword: the first token (position 0). It names the token even when
a region is called "first"."""
AUTO = "auto"
"""`exclude` default: the first token for "share", nothing otherwise."""
LEAVES = "leaves"
"""`share_level` default: each token in its innermost region."""
OWN_SUFFIX = " (own)"
"""Appended to a region's column in "share" when it counts only its own tokens."""


# ---------------------------------------------------------------- exclusion


@dataclass(frozen=True)
class Exclusion:
    """The tokens removed before masses are summed and normalised."""

    first: bool = False
    """True: the first token (position 0) is excluded."""
    regions: tuple[str, ...] = ()
    """Regions whose tokens are excluded, by name."""

    @property
    def any(self) -> bool:
        """True when something is excluded."""
        return self.first or bool(self.regions)

    @property
    def spec(self) -> str | tuple[str, ...] | None:
        """The `exclude` value that gives this exclusion ("first", ("first",
        "rules"), None), for messages and payloads."""
        items = ((FIRST,) if self.first else ()) + self.regions
        if not items:
            return None
        return items[0] if len(items) == 1 else items

    def parts(self) -> list[str]:
        """What is excluded, in words: "first token", then each region's name."""
        return (["first token"] if self.first else []) + list(self.regions)

    def describe(self) -> str:
        """ "first token", "first token and rules", or "nothing"."""
        parts = self.parts()
        if not parts:
            return "nothing"
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def resolve_exclusion(exclude: object, normalize: str) -> Exclusion:
    """The `Exclusion` that `exclude` means for `normalize` (see the module
    docstring). Region names are checked against a run by `excluded_tokens`."""
    if isinstance(exclude, str) and exclude == AUTO:
        return Exclusion(first=True) if normalize == "share" else Exclusion()
    if exclude is None:
        return Exclusion()
    items = [exclude] if isinstance(exclude, str) else exclude
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ArgumentTypeError(
            f'exclude must be "first", a region name, a tuple of those, None or "auto", got '
            f'{exclude!r}; e.g. exclude="first", exclude=("first", "rules") or exclude=None.'
        )
    if len(set(items)) != len(items):
        raise ArgumentError(f"exclude={exclude!r} names something twice; list each once.")
    if not all(items):
        raise ArgumentError(f"exclude={exclude!r} holds an empty name; name regions by name.")
    return Exclusion(first=FIRST in items, regions=tuple(i for i in items if i != FIRST))


def excluded_tokens(run: Run, exclusion: Exclusion) -> NDArray[np.bool_]:
    """(pos,) True for each token `exclusion` removes from `run`."""
    missing = [name for name in exclusion.regions if name not in run.regions]
    if missing:
        raise SelectionError(
            f"exclude names region(s) {missing} that this run does not have; it has "
            f'{list(run.regions)}. Exclude regions every run has, or "first" for the first token.'
        )
    mask = np.zeros(run.n_tokens, dtype=bool)
    if exclusion.first and run.n_tokens:
        mask[0] = True
    for name in exclusion.regions:
        mask[run.regions[name].token_indices] = True
    return mask


def check_share_level(share_level: object) -> str | int:
    """`share_level` checked: "leaves" or an int >= 0."""
    if isinstance(share_level, str) and share_level == LEAVES:
        return share_level
    if isinstance(share_level, (int, np.integer)) and not isinstance(share_level, bool):
        if share_level >= 0:
            return int(share_level)
    raise ArgumentError(
        f'share_level must be "leaves" (each token in its innermost region) or a depth >= 0 '
        f"(0: the built-in sections; 1: top-level regions and the rest of each section), got "
        f"{share_level!r}."
    )


@dataclass(frozen=True)
class MassOptions:
    """How region masses are computed: `normalize`, `exclude` and `share_level`
    (see the module docstring)."""

    normalize: str = "raw"
    exclude: object = AUTO
    share_level: object = LEAVES

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZATIONS:
            raise ArgumentError(
                f"Unknown normalize={self.normalize!r}; use one of {list(NORMALIZATIONS)}."
            )
        object.__setattr__(self, "share_level", check_share_level(self.share_level))
        resolve_exclusion(self.exclude, self.normalize)  # checks its type

    @property
    def exclusion(self) -> Exclusion:
        return resolve_exclusion(self.exclude, self.normalize)

    @property
    def level(self) -> float:
        """The partition depth of "share" (infinite for "leaves")."""
        return np.inf if self.share_level == LEAVES else float(self.share_level)  # type: ignore[arg-type]

    def describe(self) -> str:
        """One line: the normalisation, what "share" counts, what is excluded."""
        text = f"normalize={self.normalize}"
        if self.normalize == "share":
            text += (
                ", each token in its innermost region"
                if self.share_level == LEAVES
                else f", partition at depth {self.share_level}"
            )
        return text + f"; excluded: {self.exclusion.describe()}"


# ---------------------------------------------------------------- region tree


def tree_parents(regions: Mapping[str, RegionInfo]) -> dict[str, str | None]:
    """Region name -> its parent in the region tree: the enclosing user region,
    else (for a top-level user region) its built-in section, else None."""
    out: dict[str, str | None] = {}
    for name, info in regions.items():
        parent = info.parent if info.parent in regions and info.parent != name else None
        if parent is None and not info.builtin and info.section in regions:
            parent = info.section if info.section != name else None
        out[name] = parent
    return out


def tree_depths(regions: Mapping[str, RegionInfo]) -> dict[str, int]:
    """Region name -> depth in the region tree (0 for the built-in sections)."""
    parents = tree_parents(regions)
    depths: dict[str, int] = {}
    for name in regions:
        depth, at = 0, parents[name]
        while at is not None:
            depth += 1
            if depth > len(regions):
                raise ArgumentError(
                    f"The regions' parents form a cycle through {name!r}; the run's regions are "
                    "damaged. Capture it again."
                )
            at = parents[at]
        depths[name] = depth
    return depths


@dataclass(frozen=True)
class Layout:
    """Which tokens each region counts in one run, for one `MassOptions`."""

    counted: dict[str, NDArray[np.int64]]
    """Region -> the kept tokens it counts (its own ones in "share"); absent
    when it has no value (all its tokens excluded, or below the share level)."""
    own: dict[str, bool]
    """Region -> True when, in "share", it counts only its own tokens."""
    excluded: NDArray[np.int64]
    """(n,) the excluded token positions."""
    kept: NDArray[np.int64]
    """(n,) tokens of the roots of the region tree that are not excluded."""


def layout(run: Run, options: MassOptions) -> Layout:
    """The tokens each region of `run` counts under `options`."""
    mask = excluded_tokens(run, options.exclusion)
    depths = tree_depths(run.regions)
    parents = tree_parents(run.regions)
    keep = {
        name: info.token_indices[~mask[info.token_indices]] for name, info in run.regions.items()
    }
    roots = [name for name in run.regions if parents[name] is None]
    in_roots = np.zeros(run.n_tokens, dtype=bool)
    for name in roots:
        in_roots[keep[name]] = True
    counted: dict[str, NDArray[np.int64]] = {}
    own: dict[str, bool] = {}
    share, level = options.normalize == "share", options.level
    for name in run.regions:
        if not keep[name].size or (share and depths[name] > level):
            continue
        tokens = keep[name]
        children = [c for c, p in parents.items() if p == name]
        own[name] = share and bool(children) and depths[name] < level
        if own[name]:
            inner = np.zeros(run.n_tokens, dtype=bool)
            for child in children:
                inner[run.regions[child].token_indices] = True
            tokens = tokens[~inner[tokens]]
        counted[name] = tokens
    return Layout(counted, own, np.flatnonzero(mask), np.flatnonzero(in_roots & ~mask))


def own_label(name: str, own: bool) -> str:
    """A region's column name: "<name> (own)" when it counts only its own tokens."""
    return name + OWN_SUFFIX if own else name


# ---------------------------------------------------------------- masses


@dataclass(frozen=True)
class RegionCurves:
    """Region curves of one run at one query (and head), for one `MassOptions`."""

    names: list[str]
    """(region,) the regions asked for."""
    values: NDArray[np.float64]
    """(layer, region) normalised masses; NaN where a region has no value."""
    absolute: NDArray[np.float64]
    """(layer, region) attention on the tokens each region counts, a fraction of
    the whole row (not renormalised); NaN where no value."""
    peak: NDArray[np.float64]
    """(layer, region) the largest attention one of those tokens gets."""
    excluded: NDArray[np.float64]
    """(layer,) attention on the excluded tokens, a fraction of the whole row."""
    kept: NDArray[np.float64]
    """(layer,) attention on the tokens not excluded (what "raw" divides by
    when something is excluded), a fraction of the whole row."""
    own: list[bool]
    """(region,) True where a region counts only its own tokens ("share")."""


def region_curves(
    rows: NDArray,
    run: Run,
    names: Sequence[str],
    options: MassOptions,
    *,
    where: Layout | None = None,
) -> RegionCurves:
    """Curves of `names` from `rows` (layer, pos), attention rows of `run` at one
    query (head-averaged or one head). Regions `run` lacks have NaN."""
    rows = np.asarray(rows, dtype=np.float64)
    where = where or layout(run, options)
    n_layers = rows.shape[0]
    absolute = np.full((n_layers, len(names)), np.nan)
    peak = np.full((n_layers, len(names)), np.nan)
    sizes = np.zeros(len(names))
    for r, name in enumerate(names):
        tokens = where.counted.get(name)
        if tokens is None:
            continue
        absolute[:, r] = rows[:, tokens].sum(axis=1)
        peak[:, r] = rows[:, tokens].max(axis=1) if tokens.size else 0.0
        sizes[r] = tokens.size
    excluded = rows[:, where.excluded].sum(axis=1)
    kept = rows[:, where.kept].sum(axis=1)
    values = _normalize(absolute, kept, where, options, sizes, rows)
    own = [where.own.get(name, False) for name in names]
    return RegionCurves(list(names), values, absolute, peak, excluded, kept, own)


def _normalize(
    absolute: NDArray[np.float64],
    kept: NDArray[np.float64],
    where: Layout,
    options: MassOptions,
    sizes: NDArray,
    rows: NDArray[np.float64],
) -> NDArray[np.float64]:
    if options.normalize == "share":
        # the sum over the whole partition (every counted region), whichever are asked for
        partition = np.zeros(rows.shape[0])
        for tokens in where.counted.values():
            partition += rows[:, tokens].sum(axis=1)
        return _divide(absolute, partition)
    values = absolute
    if options.exclusion.any:
        values = _divide(absolute, kept)
    if options.normalize == "per-region":
        low, high = (
            np.nanmin(values, axis=0, initial=np.inf),
            np.nanmax(values, axis=0, initial=-np.inf),
        )
        span = high - low
        scaled = np.divide(values - low, span, out=np.zeros_like(values), where=span > 0)
        return np.where(np.isnan(values), np.nan, scaled)
    if options.normalize == "density":
        return np.divide(values, sizes, out=np.full_like(values, np.nan), where=sizes > 0)
    return values


def _divide(values: NDArray[np.float64], total: NDArray[np.float64]) -> NDArray[np.float64]:
    """(layer, region) / (layer,): 0 where the total is 0, NaN kept."""
    total = total[:, None]
    out = np.divide(values, total, out=np.zeros_like(values), where=total > 0)
    return np.where(np.isnan(values), np.nan, out)
