"""Interventions on a forward pass, as data: which heads, values or regions
to remove, and where. `Model.ablate` (tealeaves_widgets.models.interventions)
carries them out; this module only names and checks them, so a condition can
be written, printed and saved without torch.

Three kinds, composable in a `Condition` (all of its interventions apply in
one forward pass):

- `HeadAblation(layer, head, positions, mode)`: one attention head's output
  (its slice of the output projection's input) set to 0 or to its mean over
  a reference set, at some query positions.
- `ValueAblation(layer, positions, heads)`: the value vectors at some key
  positions set to 0, in one layer or all, for every head or for chosen
  query heads (with grouped-query attention, a query head's own copy of its
  KV head's values; never the whole group).
- `RegionKnockout(region, mode)`: a named region removed: "values" zeroes its
  values in every layer (its keys still draw attention, which then carries
  nothing); "mask" hides its keys from every query outside it, so attention
  renormalises over the rest, like deleting the tokens while keeping
  positions (a token of the region still attends to itself, so no row is
  empty).

Positions are written relative to the query position t: "t", "all" (every
position), "t-1", "t-1..t-2" (both), "before_t" (every position before t), or
a list of token indices. `resolve_positions` turns them into indices for one
prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, SelectionError

HEAD_MODES = ("zero", "mean")
KNOCKOUT_MODES = ("values", "mask")
POSITION_WORDS = ("t", "all", "before_t")
"""Position presets besides "t-<k>" and "t-<i>..t-<j>"."""
_OFFSET = re.compile(r"^t-(\d+)$")
_OFFSET_RANGE = re.compile(r"^t-(\d+)\.\.t-(\d+)$")

PositionsLike = str | int | Sequence[int]


def _check_positions(positions: object, what: str) -> str | tuple[int, ...]:
    """`positions` checked for form (not yet against a prompt)."""
    if isinstance(positions, str):
        if positions in POSITION_WORDS or _OFFSET.match(positions):
            return positions
        match = _OFFSET_RANGE.match(positions)
        if match and int(match[1]) >= 1 and int(match[2]) >= 1:
            return positions
        raise ArgumentError(
            f"{what}: positions={positions!r} is not one of {list(POSITION_WORDS)}, "
            '"t-<k>" (e.g. "t-1") or "t-<i>..t-<j>" (e.g. "t-1..t-2"), nor a list of '
            "token indices."
        )
    if isinstance(positions, (int, np.integer)) and not isinstance(positions, bool):
        return (int(positions),)
    if isinstance(positions, Sequence) and positions and not isinstance(positions, bytes):
        items = list(positions)
        if all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in items):
            if len(set(items)) != len(items):
                raise ArgumentError(f"{what}: positions={items!r} lists a position twice.")
            return tuple(int(p) for p in items)
    raise ArgumentTypeError(
        f'{what}: positions must be "t", "all", "before_t", "t-<k>", "t-<i>..t-<j>" or a '
        f"non-empty list of token indices, got {positions!r}."
    )


def resolve_positions(
    positions: str | tuple[int, ...], t: int, n_tokens: int, what: str
) -> np.ndarray:
    """Token indices that `positions` names in a prompt of `n_tokens` tokens
    whose query position is `t`; refused when one lies outside the prompt."""
    if isinstance(positions, tuple):
        bad = [p for p in positions if not -n_tokens <= p < n_tokens]
        if bad:
            raise SelectionError(
                f"{what}: position(s) {bad} lie outside the prompt of {n_tokens} tokens; use "
                f"0..{n_tokens - 1} (or -{n_tokens}..-1 from the end)."
            )
        return np.array(sorted({p % n_tokens for p in positions}), dtype=np.int64)
    if positions == "t":
        return np.array([t], dtype=np.int64)
    if positions == "all":
        return np.arange(n_tokens, dtype=np.int64)
    if positions == "before_t":
        out = np.arange(t, dtype=np.int64)
    elif match := _OFFSET.match(positions):
        out = np.array([t - int(match[1])], dtype=np.int64)
    else:
        match = _OFFSET_RANGE.match(positions)
        assert match is not None  # checked by _check_positions
        low, high = sorted((int(match[1]), int(match[2])))
        out = np.arange(t - high, t - low + 1, dtype=np.int64)
    if out.size == 0 or out.min() < 0:
        raise SelectionError(
            f"{what}: positions={positions!r} at the query position t={t} reaches before the "
            "first token; pick a later query or fewer positions back."
        )
    return out


def _check_layer(layer: object, what: str, allow_all: bool = False) -> int | str:
    if allow_all and layer == "all":
        return "all"
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        return int(layer)
    allowed = 'an int or "all"' if allow_all else "an int"
    raise ArgumentTypeError(f"{what}: layer must be {allowed}, got {layer!r}.")


def _check_head(head: object, what: str) -> int:
    if isinstance(head, (int, np.integer)) and not isinstance(head, bool):
        return int(head)
    raise ArgumentTypeError(f"{what}: head must be an int, got {head!r}.")


@dataclass(frozen=True)
class HeadAblation:
    """Head `head` of layer `layer` removed at `positions` (the query
    positions whose output the head no longer adds to): its slice of the
    output projection's input set to 0 (`mode="zero"`) or to its mean over a
    reference set (`mode="mean"`; `Model.ablate(reference=...)`)."""

    layer: int
    head: int
    positions: PositionsLike = "t"
    mode: str = "zero"

    def __post_init__(self) -> None:
        what = "HeadAblation"
        object.__setattr__(self, "layer", _check_layer(self.layer, what))
        object.__setattr__(self, "head", _check_head(self.head, what))
        object.__setattr__(self, "positions", _check_positions(self.positions, what))
        if self.mode not in HEAD_MODES:
            raise ArgumentError(
                f"{what}: mode must be one of {list(HEAD_MODES)}, got {self.mode!r}."
            )

    def describe(self) -> str:
        mean = " (mean)" if self.mode == "mean" else ""
        return f"head L{self.layer}H{self.head}{mean} @{_positions_text(self.positions)}"


@dataclass(frozen=True)
class ValueAblation:
    """Value vectors at key `positions` set to 0 in `layer` (or "all" layers),
    for every query head (`heads=None`) or only for the query heads listed."""

    layer: int | str
    positions: PositionsLike = "t-1"
    heads: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        what = "ValueAblation"
        object.__setattr__(self, "layer", _check_layer(self.layer, what, allow_all=True))
        object.__setattr__(self, "positions", _check_positions(self.positions, what))
        if self.heads is not None:
            heads = [self.heads] if isinstance(self.heads, int) else self.heads
            if not isinstance(heads, Iterable) or isinstance(heads, str):
                raise ArgumentTypeError(
                    f"{what}: heads must be None or a list of ints, got {self.heads!r}."
                )
            checked = tuple(_check_head(h, what) for h in heads)
            if not checked or len(set(checked)) != len(checked):
                raise ArgumentError(
                    f"{what}: heads={self.heads!r} must list distinct heads (None: every head)."
                )
            object.__setattr__(self, "heads", checked)

    def describe(self) -> str:
        heads = "" if self.heads is None else " heads " + ",".join(map(str, self.heads))
        layer = "all layers" if self.layer == "all" else f"L{self.layer}"
        return f"values {layer}{heads} @{_positions_text(self.positions)}"


@dataclass(frozen=True)
class RegionKnockout:
    """Region `region` removed: its values zeroed in every layer
    (`mode="values"`) or its keys hidden from the queries outside it
    (`mode="mask"`)."""

    region: str
    mode: str = "values"

    def __post_init__(self) -> None:
        if not isinstance(self.region, str) or not self.region:
            raise ArgumentTypeError(
                f"RegionKnockout: region must be a region's name, got {self.region!r}."
            )
        if self.mode not in KNOCKOUT_MODES:
            raise ArgumentError(
                f"RegionKnockout: mode must be one of {list(KNOCKOUT_MODES)}, got {self.mode!r}."
            )

    def describe(self) -> str:
        return f"knock out {self.region} ({self.mode})"


Intervention = HeadAblation | ValueAblation | RegionKnockout
INTERVENTIONS = (HeadAblation, ValueAblation, RegionKnockout)


def _positions_text(positions: object) -> str:
    if isinstance(positions, tuple):
        return (
            ",".join(map(str, positions)) if len(positions) <= 4 else f"{len(positions)} positions"
        )
    return str(positions)


@dataclass(frozen=True)
class Condition:
    """A named set of interventions applied together in one forward pass."""

    name: str
    interventions: tuple[Intervention, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ArgumentTypeError(
                f"A condition's name must be a non-empty str, got {self.name!r}."
            )
        items = self.interventions
        if isinstance(items, INTERVENTIONS):
            items = (items,)
        items = tuple(items)
        bad = [type(i).__name__ for i in items if not isinstance(i, INTERVENTIONS)]
        if bad or not items:
            raise ArgumentTypeError(
                f"Condition {self.name!r} must hold tw.HeadAblation, tw.ValueAblation or "
                f"tw.RegionKnockout objects (at least one), got {bad or 'none'}."
            )
        if len(set(items)) != len(items):
            raise ArgumentError(f"Condition {self.name!r} lists the same intervention twice.")
        _check_consistent(self.name, items)
        object.__setattr__(self, "interventions", items)

    def describe(self) -> str:
        return " + ".join(i.describe() for i in self.interventions)


def _check_consistent(name: str, items: tuple[Intervention, ...]) -> None:
    """Refuse interventions that contradict each other: one head ablated both
    to zero and to its mean, or one region knocked out in both modes."""
    heads: dict[tuple[int, int, object], str] = {}
    for item in items:
        if isinstance(item, HeadAblation):
            key = (item.layer, item.head, item.positions)
            if key in heads and heads[key] != item.mode:
                raise ArgumentError(
                    f"Condition {name!r} sets head L{item.layer}H{item.head} at "
                    f"{_positions_text(item.positions)} both to zero and to its mean; keep one."
                )
            heads[key] = item.mode
    modes: dict[str, str] = {}
    for item in items:
        if isinstance(item, RegionKnockout):
            if item.region in modes and modes[item.region] != item.mode:
                raise ArgumentError(
                    f"Condition {name!r} knocks region {item.region!r} out both by values and by "
                    "mask; keep one mode."
                )
            modes[item.region] = item.mode


def as_conditions(conditions: object) -> tuple[Condition, ...]:
    """Conditions from what a user passes: one intervention, a list (each item
    its own condition; a Condition or a list/tuple of interventions groups
    them), or a dict name -> intervention(s)."""
    if isinstance(conditions, (Condition, *INTERVENTIONS)):
        conditions = [conditions]
    if isinstance(conditions, Mapping):
        out = [Condition(str(name), _as_tuple(value)) for name, value in conditions.items()]
    elif isinstance(conditions, Sequence) and not isinstance(conditions, str):
        out = []
        for item in conditions:
            if isinstance(item, Condition):
                out.append(item)
            else:
                items = _as_tuple(item)
                out.append(Condition(" + ".join(i.describe() for i in items), items))
    else:
        raise ArgumentTypeError(
            "conditions must be an intervention (tw.HeadAblation, tw.ValueAblation, "
            "tw.RegionKnockout), a list of them (each a condition; a list inside the list "
            f"groups interventions into one), or a dict name -> intervention(s); got "
            f"{type(conditions).__name__}."
        )
    if not out:
        raise ArgumentError("conditions is empty; give at least one intervention.")
    names = [c.name for c in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ArgumentError(
            f"Condition name(s) {twice} occur twice; name each condition once (pass a dict "
            "name -> interventions)."
        )
    return tuple(out)


def _as_tuple(value: object) -> tuple:
    if isinstance(value, INTERVENTIONS):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise ArgumentTypeError(
        f"Expected an intervention or a list of them, got {type(value).__name__}."
    )


def check_against_model(
    condition: Condition, n_layers: int, n_heads: int, regions: Iterable[str]
) -> None:
    """Refuse layers, heads and regions the model or prompt does not have,
    naming the value and the valid range."""
    names = list(regions)
    for item in condition.interventions:
        where = f"Condition {condition.name!r}, {type(item).__name__}"
        if isinstance(item, (HeadAblation, ValueAblation)) and item.layer != "all":
            if not 0 <= int(item.layer) < n_layers:
                raise SelectionError(
                    f"{where}: layer={item.layer} is out of range; the model has layers "
                    f"0..{n_layers - 1}."
                )
        heads = (
            [item.head]
            if isinstance(item, HeadAblation)
            else list(item.heads or ())
            if isinstance(item, ValueAblation)
            else []
        )
        for head in heads:
            if not 0 <= head < n_heads:
                raise SelectionError(
                    f"{where}: head={head} is out of range; the model has heads 0..{n_heads - 1}."
                )
        if isinstance(item, RegionKnockout) and item.region not in names:
            raise SelectionError(
                f"{where}: unknown region {item.region!r}; this prompt has {names}."
            )
