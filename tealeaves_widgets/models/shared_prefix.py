"""Capturing many prompts that begin with the same tokens: the shared prefix
once, then only each prompt's suffix on its KV cache.

Prompt engineers run one long system prompt against many user messages. A
token at position p depends on tokens 0..p only, so for prompts whose first P
tokens are the same, everything at positions below P is the same in each:
the keys and values, the attention rows of a query there, and its residual
stream. `Model.capture_many` therefore (when it pays, `shared_prefix_length`)
runs one captured pass of the common prefix that keeps its KV cache
(`prefix_pass`), then the rest of each prompt on that cache (`suffix_pass`:
the suffix at positions P.., its attention over the prefix's keys and its
own). Queries inside the prefix take their rows and residuals from the prefix
pass, computed once for every case that has a query there, and their lens
once; queries in a suffix, from its suffix pass, whose rows cover every
position 0..T-1. Each `Run` equals a separate `capture` of its case up to
float noise (tests/integration/test_shared_prefix.py: 1e-5 in float32).

The suffixes run in right-padded batches (an attention mask over prefix +
suffix, positions of real tokens unchanged; batch size x (prefix + longest
suffix) within the batch_tokens budget), on a cache whose layers are
views of the prefix's tensors that never store what a pass adds
(`shared_cache`), so one prefix serves any number of passes, and a pass
holds one layer's copy of the prefix at a time. A model that does not fill a
plain full-length cache (`query.keep` returns None) falls back to the
ordinary batches, after the one prefix pass that found it out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from ..errors import ArgumentError, ArgumentTypeError
from .batching import plan_batches
from .lens import LensArrays, read_lens
from .query import KeptCache, keep, new_cache

if TYPE_CHECKING:
    from ..core.run import Run
    from .model import Model, _Prepared

SHARED_PREFIX_MIN_TOKENS = 64
"""`capture_many` shares a common prefix (shared_prefix=None, the default)
when it is at least this many tokens long and at least
`SHARED_PREFIX_MIN_CASES` cases share it: below that the prefix pass saves
less than it costs."""
SHARED_PREFIX_MIN_CASES = 2


def common_prefix_length(token_ids: Sequence[Sequence[int] | NDArray]) -> int:
    """Length of the longest token prefix that every sequence of `token_ids` begins with."""
    if not token_ids:
        return 0
    first = np.asarray(token_ids[0], dtype=np.int64)
    length = len(first)
    for ids in token_ids[1:]:
        ids = np.asarray(ids, dtype=np.int64)
        n = min(length, len(ids))
        differ = np.flatnonzero(first[:n] != ids[:n])
        length = int(differ[0]) if len(differ) else n
    return length


def shared_prefix_length(
    token_ids: Sequence[Sequence[int] | NDArray], shared_prefix: bool | None = None
) -> int:
    """How many leading tokens of `token_ids` to compute once (0: none, the
    ordinary batches). shared_prefix=None (auto): the common prefix when it is
    at least `SHARED_PREFIX_MIN_TOKENS` tokens and at least
    `SHARED_PREFIX_MIN_CASES` sequences share it; True: the common prefix
    whenever there is one; False: none."""
    if shared_prefix is not None and not isinstance(shared_prefix, bool):
        raise ArgumentTypeError(
            f"shared_prefix must be True, False or None, got {shared_prefix!r}."
        )
    if shared_prefix is False:
        return 0
    length = common_prefix_length(token_ids)
    if shared_prefix is None and (
        length < SHARED_PREFIX_MIN_TOKENS or len(token_ids) < SHARED_PREFIX_MIN_CASES
    ):
        return 0
    return length


@dataclass(frozen=True)
class PrefixPass:
    """One captured pass of a prefix: its KV cache and its query positions."""

    kept: KeptCache
    """Keys and values of every layer and prefix token (`kept.token_ids`: the prefix)."""
    positions: NDArray[np.int64]
    """(query,) the prefix positions whose rows and residuals were kept, ascending."""
    rows: NDArray[np.float32]
    """(layer, head, query, pos) float32 attention rows over the prefix's tokens."""
    residuals: torch.Tensor
    """(layer, query, hidden) residual stream after each block, for the lens."""

    @property
    def n_tokens(self) -> int:
        return len(self.kept.token_ids)

    def index(self, position: int) -> int:
        """Where query `position` lies in `positions` (ArgumentError if not kept)."""
        i = int(np.searchsorted(self.positions, position))
        if i == len(self.positions) or self.positions[i] != position:
            raise ArgumentError(
                f"Position {position} is not among the prefix pass's queries "
                f"{self.positions.tolist()}; pass it in `positions` to prefix_pass."
            )
        return i


@torch.no_grad()
def prefix_pass(
    model: Model, token_ids: Sequence[int] | NDArray, positions: Sequence[int] | NDArray = ()
) -> PrefixPass | None:
    """A captured pass of `token_ids` that keeps its KV cache, with the rows
    and residuals of `positions` (indices into it; none is fine). None when
    the model did not fill a plain full-length cache (`query.keep`): then no
    suffix can run on it."""
    ids = np.asarray(token_ids, dtype=np.int64)
    if ids.ndim != 1 or len(ids) == 0:
        raise ArgumentError(f"prefix_pass needs a non-empty 1-d list of token ids, got {ids!r}.")
    kept_positions = np.unique(np.asarray(positions, dtype=np.int64))
    if len(kept_positions) and not 0 <= kept_positions[0] <= kept_positions[-1] < len(ids):
        raise ArgumentError(
            f"prefix_pass positions must lie in 0..{len(ids) - 1} (the prefix), got "
            f"{kept_positions.tolist()}."
        )
    # a pass records the rows of at least one query; the last one is cheap
    asked = kept_positions if len(kept_positions) else np.array([len(ids) - 1])
    cache = new_cache()
    rows, residuals = model._captured(
        torch.as_tensor(ids)[None], torch.as_tensor(asked)[None], cache=cache
    )
    kept = keep(cache, ids, model.shape.n_layers)
    if kept is None:
        return None
    n = len(kept_positions)
    return PrefixPass(kept, kept_positions, rows[:, 0, :, :n], residuals[:, 0, :n])


class _SharedPrefixLayer(DynamicLayer):
    """A cache layer holding a kept prefix (as views, expanded to the batch)
    that gives attention the prefix's keys and values followed by the pass's
    own, and stores nothing: the next pass sees the prefix alone again."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, batch: int) -> None:
        super().__init__()
        self._prefix = keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1)
        self.keys, self.values = self._prefix
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        keys, values = self._prefix
        return torch.cat([keys, key_states], dim=-2), torch.cat([values, value_states], dim=-2)


def shared_cache(kept: KeptCache, batch: int = 1) -> DynamicCache:
    """A cache of `kept`'s prefix for a pass of `batch` sequences that
    continue it: every sequence reads the same prefix (views, never copied
    into the cache, never changed), and what the pass adds is not stored, so
    the same `kept` serves any number of passes. Feed the continuation at
    position_ids from `len(kept.token_ids)` on (`suffix_inputs`)."""
    cache = DynamicCache()
    cache.layers.extend(_SharedPrefixLayer(k, v, batch) for k, v in kept.layers)
    return cache


def suffix_inputs(
    n_prefix: int, suffixes: Sequence[NDArray], pad_id: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(batch, longest suffix) input ids, right-padded with `pad_id`, and the
    forward keywords that place them after a prefix of `n_prefix` tokens:
    position_ids from n_prefix on and, when the suffixes differ in length, an
    attention mask over prefix + suffix (0 on the padding)."""
    lengths = [len(s) for s in suffixes]
    longest = max(lengths)
    input_ids = torch.full((len(suffixes), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(suffixes), n_prefix + longest), dtype=torch.long)
    mask[:, :n_prefix] = 1
    for b, suffix in enumerate(suffixes):
        input_ids[b, : lengths[b]] = torch.as_tensor(np.asarray(suffix, dtype=np.int64))
        mask[b, n_prefix : n_prefix + lengths[b]] = 1
    position_ids = torch.arange(n_prefix, n_prefix + longest)[None].expand(len(suffixes), -1)
    kwargs = {"position_ids": position_ids}
    if min(lengths) != longest:
        kwargs["attention_mask"] = mask
    return input_ids, kwargs


@torch.no_grad()
def suffix_pass(
    model: Model,
    kept: KeptCache,
    suffixes: Sequence[Sequence[int] | NDArray],
    positions: Sequence[Sequence[int] | NDArray],
) -> list[tuple[NDArray[np.float32], torch.Tensor]]:
    """One captured pass of the `suffixes` (a batch, right-padded), each
    continuing the prefix of `kept`. `positions[b]` are the query positions of
    sequence b counted from the prefix's start (each in P..P+len-1, P the
    prefix length). Returns per suffix its (layer, head, query, P + len) float32
    rows over prefix and suffix and its (layer, query, hidden) residuals."""
    n_prefix = len(kept.token_ids)
    seqs = [np.asarray(s, dtype=np.int64) for s in suffixes]
    asked = [np.asarray(p, dtype=np.int64) - n_prefix for p in positions]
    for seq, rel in zip(seqs, asked, strict=True):
        if len(seq) == 0 or len(rel) == 0 or rel.min() < 0 or rel.max() >= len(seq):
            raise ArgumentError(
                f"suffix_pass needs a non-empty suffix and query positions in its span "
                f"{n_prefix}..{n_prefix + len(seq) - 1}, got {len(seq)} tokens and positions "
                f"{(rel + n_prefix).tolist()}."
            )
    input_ids, kwargs = suffix_inputs(n_prefix, seqs, model._pad_id())
    query = torch.zeros((len(seqs), max(len(r) for r in asked)), dtype=torch.long)
    for b, rel in enumerate(asked):
        query[b, : len(rel)] = torch.as_tensor(rel)
    forward: dict[str, Any] = {k: v.to(model.device) for k, v in kwargs.items()}
    cache = shared_cache(kept, len(seqs))
    rows, residuals = model._captured(input_ids, query, cache=cache, **forward)
    return [
        (
            np.ascontiguousarray(rows[:, b, :, : len(rel), : n_prefix + len(seqs[b])]),
            residuals[:, b, : len(rel)],
        )
        for b, rel in enumerate(asked)
    ]


@dataclass
class _Readings:
    """Where each item's query readings come from while the passes run."""

    rows: list[NDArray[np.float32]]
    """Per item (layer, head, query, pos) float32 rows, filled as the passes run."""
    suffix_residuals: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)
    """item -> (layer, suffix query, hidden) residuals of its queries in the suffix."""


def capture_shared(
    model: Model,
    items: list[_Prepared],
    top_k: int,
    batch_tokens: int,
    shared_prefix: bool | None,
    advance: Callable[[int], Any],
) -> list[Run] | None:
    """The runs of `items` (in order) with their common prefix computed once,
    or None when it is not shared (`shared_prefix_length`) or the model's
    cache cannot be shared (`prefix_pass`): then the caller runs the
    ordinary batches. Suffixes run in batches whose size x (prefix +
    longest suffix) stays within `batch_tokens`, as the ordinary batches
    count a whole case: a batch then reads no more keys and values than an
    ordinary one would. `advance(n)` is called as n more runs are done."""
    token_ids = [item.rendered.token_ids for item in items]
    n_prefix = shared_prefix_length(token_ids, shared_prefix)
    if n_prefix == 0:
        return None
    positions = [item.positions for item in items]
    inside = np.concatenate([p[p < n_prefix] for p in positions])
    prefix = prefix_pass(model, np.asarray(token_ids[0][:n_prefix]), inside)
    if prefix is None:
        return None
    shape = model.shape
    readings = _Readings(
        [
            np.zeros((shape.n_layers, shape.n_heads, len(p), item.n_tokens), np.float32)
            for item, p in zip(items, positions, strict=True)
        ]
    )
    for i, p in enumerate(positions):
        for j, position in enumerate(p):
            if position < n_prefix:
                readings.rows[i][:, :, j, :n_prefix] = prefix.rows[:, :, prefix.index(position)]
    runs: list[Run | None] = [None] * len(items)
    # an item with every query inside the prefix is done: it needs no suffix pass
    todo = [i for i, p in enumerate(positions) if (p >= n_prefix).any()]
    done = sorted(set(range(len(items))) - set(todo))
    _finish(model, items, done, prefix, readings, top_k, runs)
    advance(len(done))
    # each suffix's pass spans the prefix too (keys and values, attention):
    # counting whole lengths keeps the ordinary batches' budget. On 2 CPU
    # threads this was also the fastest: 8 suffixes of 46-87 tokens on a
    # 2,009-token prefix took 2.1 s one at a time, 2.0 s in twos and 2.8 s in
    # one padded batch (the least disturbed of 5 runs each, on a loaded machine)
    lengths = [items[i].n_tokens for i in todo]
    for batch in plan_batches(lengths, batch_tokens):
        members = [todo[k] for k in batch]
        outs = suffix_pass(
            model,
            prefix.kept,
            [token_ids[i][n_prefix:] for i in members],
            [positions[i][positions[i] >= n_prefix] for i in members],
        )
        for i, (rows, residuals) in zip(members, outs, strict=True):
            in_suffix = np.flatnonzero(positions[i] >= n_prefix)
            readings.rows[i][:, :, in_suffix] = rows
            readings.suffix_residuals[i] = residuals
        _finish(model, items, members, prefix, readings, top_k, runs)
        advance(len(members))
    return runs  # type: ignore[return-value]


def _finish(
    model: Model,
    items: list[_Prepared],
    members: list[int],
    prefix: PrefixPass,
    readings: _Readings,
    top_k: int,
    runs: list[Run | None],
) -> None:
    """The runs of `members`, whose rows are all in `readings`: their lens
    (one per set of tracked tokens, a prefix query once) and `Run`."""
    lenses = _lenses(model, [items[i] for i in members], members, prefix, readings, top_k)
    for i, lens in zip(members, lenses, strict=True):
        runs[i] = model._finish(items[i], readings.rows[i], lens)
        readings.suffix_residuals.pop(i, None)  # read: its memory may go


def _lenses(
    model: Model,
    members: list[_Prepared],
    indices: list[int],
    prefix: PrefixPass,
    readings: _Readings,
    top_k: int,
) -> list[LensArrays]:
    """The lens of each member, from the prefix pass's residuals (each prefix
    query read once per set of tracked tokens) and its suffix residuals."""
    out: list[LensArrays | None] = [None] * len(members)
    groups: dict[tuple, list[int]] = {}
    for k, item in enumerate(members):
        groups.setdefault(tuple(item.tracked_ids.tolist()), []).append(k)
    n_prefix = prefix.n_tokens
    for group in groups.values():
        inside = sorted(
            {prefix.index(int(p)) for k in group for p in members[k].positions if p < n_prefix}
        )
        column = {q: c for c, q in enumerate(inside)}  # prefix query -> lens column
        parts = [prefix.residuals[:, inside]]
        picks = []
        start = len(inside)
        for k in group:
            p = members[k].positions
            suffix = readings.suffix_residuals.get(indices[k])
            if suffix is not None:
                parts.append(suffix.to(parts[0].device))
            pick, s = [], start
            for position in p:
                if position < n_prefix:
                    pick.append(column[prefix.index(int(position))])
                else:
                    pick.append(s)
                    s += 1
            start = s
            picks.append(np.asarray(pick, dtype=np.int64))
        lens = read_lens(
            torch.cat(parts, dim=1),
            model.final_norm,
            model.unembedding,
            model.shape.final_logit_softcap,
            members[group[0]].tracked_ids,
            top_k,
        )
        for k, pick in zip(group, picks, strict=True):
            out[k] = _take_queries(lens, pick)
    return out  # type: ignore[return-value]


def _take_queries(lens: LensArrays, index: NDArray[np.int64]) -> LensArrays:
    """The queries `index` of a lens (every array has queries on axis 1)."""
    return LensArrays(
        **{
            f.name: np.ascontiguousarray(np.take(getattr(lens, f.name), index, axis=1))
            for f in dataclasses.fields(lens)
        }
    )
