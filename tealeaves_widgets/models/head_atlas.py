"""`Model.head_atlas`: per layer and head, the scores of `core.head_atlas.METRICS`
on probe sequences (`prompt.probes`), as a `core.HeadAtlas`.

One forward pass per probe batch (sequences of one length, no padding); its
attention rows go to reducers (`models.capture`, chunks of `REDUCE_CHUNK`
query rows, float32, float64 sums), so no (pos x pos) matrix is kept per
layer. The reducers:

- `PickReducer` sums chosen entries (batch b, query i, key j) of the rows
  into per-metric slots: previous token, first token, induction target,
  duplicate, S2, one slot per offset d; each slot is then divided by its
  number of entries, so a score is a plain mean over rows;
- `DelimiterReducer`: per row, the share of the non-first-token weight on
  delimiter tokens;
- `EntropyReducer`: per row with >= 2 allowed keys, entropy / log(keys), as
  `core.layer_stats`;
- `PatternReducer`: the summed rows of the "repeated" probes (one P x P per
  layer and head: the mean pattern).

The OV metrics (successor, ov_copy) are `models.ov.ov_score`'s z-scores,
read from the attention inputs kept by pre-hooks during the same batched
passes (IOI) or plain batched passes (ordinal sets), through
`models.ov.ov_logits_from_inputs`: no pass per probe.

Positions: with a prepended BOS (`Probes.first` = 1) the probe's own tokens
start at position 1. Exact definitions, with first = 1 after a BOS, else 0,
rows i and keys j of each probe of length L:

- previous_token(_random): mean over i in [first + 1, L) of A[i, i - 1];
- bos: mean over i in [1, L) of A[i, 0];
- profile[d]: mean over i in [first + d, L) of A[i, i - d], d = 0..max_offset
  (keys are probe tokens, never the BOS); offset_score / offset_peak: the max
  and argmax over d >= 1;
- induction / duplicate_token: repeated probe [first:] = r + r, |r| = n: mean
  over k in [0, n) of A[first + n + k, first + k + 1] / A[first + n + k, first + k];
- delimiter: mean over i in [1, L) of share_i = sum_{j in D, 1 <= j <= i} A[i, j]
  / sum_{1 <= j <= i} A[i, j], divided by the mean over the same rows of
  |D in [1, i]| / i (uniform causal attention over the non-first keys);
- s2_attention: mean over IOI probes of A[end, s2];
- entropy: mean over rows with >= 2 allowed keys of H(A[i] / sum A[i]) / log(keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core.head_atlas import METRIC_NAMES, HeadAtlas
from ..prompt.probes import Probes, ProbeSizes, build_probes, delimiter_ids
from .architectures import get_path
from .capture import capturing
from .ov import ov_logits_from_inputs

if TYPE_CHECKING:
    from .model import Model

BATCH_TOKENS = 2048
"""Most tokens (batch x length) in one probe batch."""

ATTENTION_SETS: tuple[str, ...] = ("text", "random", "repeated", "ioi")
"""The probe sets read through attention rows."""

OV_SETS: tuple[str, ...] = ("ordinal", "ordinal_control", "ioi")
"""The probe sets whose attention inputs feed the OV scores (the ordinal sets
run plain passes with the input hooks only)."""

_SLOTS: tuple[str, ...] = (
    "previous_token",
    "bos",
    "previous_token_random",
    "induction",
    "duplicate_token",
    "s2_attention",
)
"""PickReducer slots before the offsets (slot len(_SLOTS) + d is offset d)."""


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


class PickReducer:
    """Per (layer, head, slot) the summed weight of chosen entries (b, i, j) of
    the rows (a `models.capture.Reducer`); `set_batch` gives each batch's entries."""

    def __init__(self, n_layers: int, n_heads: int, n_slots: int, device: torch.device) -> None:
        self.dtype = _accumulator_dtype(device)
        self.device = device
        self.sums = torch.zeros((n_layers, n_heads, n_slots), dtype=self.dtype, device=device)
        self.counts = np.zeros(n_slots, np.int64)
        self._entries: tuple[torch.Tensor, ...] = ()

    def set_batch(self, b: np.ndarray, i: np.ndarray, j: np.ndarray, slot: np.ndarray) -> None:
        """The entries of the next batch: row i of sequence b, key j, into `slot`."""
        order = np.argsort(i, kind="stable")
        self._entries = tuple(
            torch.as_tensor(np.asarray(a, np.int64)[order], device=self.device)
            for a in (b, i, j, slot)
        )
        self.counts += np.bincount(np.asarray(slot, np.int64), minlength=self.counts.size)

    @torch.no_grad()
    def __call__(
        self, layer: int, positions: torch.Tensor, rows: torch.Tensor, allowed: torch.Tensor
    ) -> None:
        b, i, j, slot = self._entries
        if b.numel() == 0:
            return
        positions = positions.to(self.device)
        start, stop = int(positions[0]), int(positions[-1]) + 1
        lo = int(torch.searchsorted(i, start))
        hi = int(torch.searchsorted(i, stop))
        if hi == lo:
            return
        b, i, j, slot = b[lo:hi], i[lo:hi] - start, j[lo:hi], slot[lo:hi]
        picked = rows[b, :, i, j] * allowed[b, 0, i, j][:, None]  # (entries, head)
        self.sums[layer].index_add_(1, slot, picked.T.to(self.dtype))


class DelimiterReducer:
    """Per (layer, head) the summed share of each row's non-first-token weight
    on delimiter keys, rows i >= 1 (a `models.capture.Reducer`)."""

    def __init__(self, n_layers: int, n_heads: int, device: torch.device) -> None:
        self.dtype = _accumulator_dtype(device)
        self.sums = torch.zeros((n_layers, n_heads), dtype=self.dtype, device=device)
        self.rows = 0
        self._delimiters: torch.Tensor | None = None

    def set_batch(self, delimiters: np.ndarray) -> None:
        """(batch, pos) bool: the delimiter tokens of the next batch."""
        self._delimiters = torch.as_tensor(delimiters, dtype=torch.float32)
        self.rows += int(delimiters.shape[0] * (delimiters.shape[1] - 1))

    @torch.no_grad()
    def __call__(
        self, layer: int, positions: torch.Tensor, rows: torch.Tensor, allowed: torch.Tensor
    ) -> None:
        assert self._delimiters is not None
        keep = positions >= 1
        if not bool(keep.any()):
            return
        w = (rows * allowed)[:, :, keep.to(rows.device)]
        delim = self._delimiters.to(w.device)[:, None, None, :]
        on = (w * delim).sum(-1, dtype=self.dtype)
        rest = w[..., 1:].sum(-1, dtype=self.dtype)
        share = torch.where(rest > 0, on / rest.clamp_min(torch.finfo(self.dtype).tiny), 0.0)
        self.sums[layer] += share.sum((0, 2))


class EntropyReducer:
    """Per (layer, head) the summed normalised entropy of the rows with >= 2
    allowed keys, and their count (as `core.layer_stats`)."""

    def __init__(self, n_layers: int, n_heads: int, device: torch.device) -> None:
        self.dtype = _accumulator_dtype(device)
        self.sums = torch.zeros((n_layers, n_heads), dtype=self.dtype, device=device)
        self.rows = torch.zeros((n_layers, n_heads), dtype=self.dtype, device=device)

    @torch.no_grad()
    def __call__(
        self, layer: int, positions: torch.Tensor, rows: torch.Tensor, allowed: torch.Tensor
    ) -> None:
        acc = self.dtype
        w = rows.float() * allowed
        n_keys = allowed.sum(-1, dtype=acc)
        total = w.sum(-1, dtype=acc)
        wlogw = torch.xlogy(w, w).sum(-1, dtype=acc)
        tiny = torch.finfo(acc).tiny
        entropy = torch.log(total.clamp_min(tiny)) - wlogw / total.clamp_min(tiny)
        chooses = n_keys >= 2
        normalised = torch.where(chooses, entropy / torch.log(n_keys.clamp_min(2)), 0.0)
        self.sums[layer] += normalised.sum((0, 2))
        self.rows[layer] += chooses.sum((0, 2), dtype=acc)


class PatternReducer:
    """(layer, head, P, P) summed rows of probes of one length P."""

    def __init__(self, n_layers: int, n_heads: int, length: int, device: torch.device) -> None:
        self.dtype = _accumulator_dtype(device)
        shape = (n_layers, n_heads, length, length)
        self.sums = torch.zeros(shape, dtype=self.dtype, device=device)

    @torch.no_grad()
    def __call__(
        self, layer: int, positions: torch.Tensor, rows: torch.Tensor, allowed: torch.Tensor
    ) -> None:
        index = positions.to(self.sums.device)
        self.sums[layer][:, index] += (rows * allowed).sum(0, dtype=self.dtype)


@dataclass(frozen=True)
class _Batch:
    name: str
    members: tuple[int, ...]
    """Indices into the probe set, all of one length."""


def plan_batches(probes: Probes, batch_tokens: int = BATCH_TOKENS) -> list[_Batch]:
    """The forward passes: each set's probes grouped by length, at most
    `batch_tokens` tokens (batch x length) per pass."""
    batches = []
    for name in (*ATTENTION_SETS, "ordinal", "ordinal_control"):
        by_length: dict[int, list[int]] = {}
        for k, seq in enumerate(probes.sets[name]):
            by_length.setdefault(len(seq), []).append(k)
        for length, members in sorted(by_length.items()):
            size = max(1, batch_tokens // length)
            for start in range(0, len(members), size):
                batches.append(_Batch(name, tuple(members[start : start + size])))
    return batches


def _rows(first: int, length: int) -> np.ndarray:
    return np.arange(first, length)


def pick_entries(
    probes: Probes, batch: _Batch
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (b, i, j, slot) entries of one batch (see the module docstring)."""
    seqs = [probes.sets[batch.name][k] for k in batch.members]
    length, first = len(seqs[0]), probes.first
    slot = {name: s for s, name in enumerate(_SLOTS)}
    parts: list[tuple[np.ndarray, np.ndarray, int | np.ndarray]] = []  # (i, j, slot)
    if batch.name == "text":
        i = _rows(first + 1, length)
        parts.append((i, i - 1, slot["previous_token"]))
        i = _rows(1, length)
        parts.append((i, np.zeros_like(i), slot["bos"]))
    elif batch.name == "random":
        i = _rows(first + 1, length)
        parts.append((i, i - 1, slot["previous_token_random"]))
        for d in range(probes.max_offset + 1):
            i = _rows(first + d, length)
            parts.append((i, i - d, len(_SLOTS) + d))
    elif batch.name == "repeated":
        n = (length - first) // 2
        k = np.arange(n)
        parts.append((first + n + k, first + k + 1, slot["induction"]))
        parts.append((first + n + k, first + k, slot["duplicate_token"]))
    b_all, i_all, j_all, s_all = [], [], [], []
    for b in range(len(seqs)):
        for i, j, s in parts:
            b_all.append(np.full(i.size, b))
            i_all.append(i)
            j_all.append(j)
            s_all.append(np.broadcast_to(s, i.shape))
    if batch.name == "ioi":
        for b, k in enumerate(batch.members):
            b_all.append(np.array([b]))
            i_all.append(np.array([probes.ioi["end"][k]]))
            j_all.append(np.array([probes.ioi["s2"][k]]))
            s_all.append(np.array([slot["s2_attention"]]))
    return tuple(np.concatenate(a).astype(np.int64) for a in (b_all, i_all, j_all, s_all))  # type: ignore[return-value]


@torch.no_grad()
def _reduce_batch(model: Model, ids: np.ndarray, reducers: list[Any]) -> None:
    """One forward pass of (batch, pos) `ids` whose rows go to `reducers`
    (a plain pass when there are none)."""
    tensor = torch.as_tensor(ids, dtype=torch.long, device=model.device)
    if not reducers:
        model.hf_model(input_ids=tensor, **model._forward_kwargs)
        return
    nothing = torch.zeros((tensor.shape[0], 1), dtype=torch.long, device=model.device)
    with capturing(model.hf_model, model.arch, nothing, keep_rows=False, reducers=reducers):
        model.hf_model(input_ids=tensor, **model._forward_kwargs)


class AttentionInputs:
    """Keeps, per layer, the input of the attention module (the normed
    residual the OV circuit reads) at chosen (sequence, position) pairs of
    each pass, through forward pre-hooks: what `models.ov` reads, batched."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.kept: dict[str, list[list[torch.Tensor]]] = {}
        self._where: tuple[str, torch.Tensor, torch.Tensor] | None = None

    def select(self, name: str, b: np.ndarray, positions: np.ndarray) -> None:
        """Keep rows (b, position) of the next pass, in this order, under `name`."""
        device = self.model.device
        self._where = (
            name,
            torch.as_tensor(np.asarray(b, np.int64), device=device),
            torch.as_tensor(np.asarray(positions, np.int64), device=device),
        )

    def skip(self) -> None:
        self._where = None

    def __enter__(self) -> AttentionInputs:
        self._handles = []
        for layer, block in enumerate(self.model.layers):
            attention = get_path(block, self.model.arch.attention)
            hook = attention.register_forward_pre_hook(self._hook(layer), with_kwargs=True)
            self._handles.append(hook)
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()

    def _hook(self, layer: int):
        def pre(_module: Any, args: tuple, kwargs: dict) -> None:
            if self._where is None:
                return
            name, b, positions = self._where
            x = args[0] if args else kwargs["hidden_states"]
            per_layer = self.kept.setdefault(name, [[] for _ in self.model.layers])
            per_layer[layer].append(x[b.to(x.device), positions.to(x.device)].detach())

        return pre

    def inputs(self, name: str) -> list[torch.Tensor]:
        """Per layer the (example, hidden) inputs kept under `name`, in order."""
        return [torch.cat(parts) for parts in self.kept[name]]


def _vocab_size(model: Model) -> int:
    return int(model.hf_model.get_input_embeddings().num_embeddings)


def delimiter_baseline(delimiters: Sequence[np.ndarray]) -> float:
    """Mean over rows i >= 1 of the probes of |delimiters in 1..i| / i."""
    shares = []
    for mask in delimiters:
        i = np.arange(1, len(mask))
        shares.append(np.cumsum(np.asarray(mask[1:], np.float64)) / i)
    return float(np.concatenate(shares).mean())


def head_atlas(
    model: Model,
    probes: str | Mapping[str, Any] = "default",
    texts: Sequence[str] | None = None,
    seed: int = 0,
    *,
    prepend_bos: bool = True,
    sizes: ProbeSizes | None = None,
    progress: bool = True,
    batch_tokens: int = BATCH_TOKENS,
) -> HeadAtlas:
    """See `Model.head_atlas`."""
    from .model import _count_progress

    built = build_probes(
        model.tokenizer,
        _vocab_size(model),
        probes=probes,
        texts=texts,
        seed=seed,
        prepend_bos=prepend_bos,
        sizes=sizes,
    )
    s, device = model.shape, model.device
    n_slots = len(_SLOTS) + built.max_offset + 1
    picks = PickReducer(s.n_layers, s.n_heads, n_slots, device)
    delimiter = DelimiterReducer(s.n_layers, s.n_heads, device)
    entropy = EntropyReducer(s.n_layers, s.n_heads, device)
    length = len(built.sets["repeated"][0])
    pattern = PatternReducer(s.n_layers, s.n_heads, length, device)
    found = delimiter_ids(model.tokenizer, [i for seq in built.sets["text"] for i in seq])
    masks = [np.isin(seq, list(found)) for seq in built.sets["text"]]
    batches = plan_batches(built, batch_tokens)
    ov = OvExamples(built)
    with (
        _count_progress(progress, len(batches), "head atlas", "batch") as advance,
        AttentionInputs(model) as inputs,
    ):
        for batch in batches:
            seqs = [built.sets[batch.name][k] for k in batch.members]
            reducers: list[Any] = []
            if batch.name in ATTENTION_SETS:
                picks.set_batch(*pick_entries(built, batch))
                reducers.append(picks)
            if batch.name == "text":
                delimiter.set_batch(np.stack([masks[k] for k in batch.members]))
                reducers += [delimiter, entropy]
            elif batch.name == "repeated":
                reducers.append(pattern)
            if batch.name in OV_SETS:
                inputs.select(batch.name, *ov.positions(batch))
            else:
                inputs.skip()
            _reduce_batch(model, np.asarray(seqs, np.int64), reducers)
            advance(1)
    ov_scores, ov_notes = ov.scores(model, inputs)
    return _assemble(
        model, built, picks, delimiter, entropy, pattern, masks, found, seed, ov_scores, ov_notes
    )


def _mean(sums: torch.Tensor, count: int | np.integer) -> np.ndarray:
    values = sums.cpu().double().numpy()
    return values / count if count else np.full(values.shape, np.nan)


def _assemble(
    model: Model,
    probes: Probes,
    picks: PickReducer,
    delimiter: DelimiterReducer,
    entropy: EntropyReducer,
    pattern: PatternReducer,
    masks: list[np.ndarray],
    found: set[int],
    seed: int,
    ov_scores: dict[str, np.ndarray],
    ov_notes: dict[str, str],
) -> HeadAtlas:
    scores: dict[str, np.ndarray] = {}
    for k, name in enumerate(_SLOTS):
        scores[name] = _mean(picks.sums[..., k], picks.counts[k])
    offsets = range(len(_SLOTS), picks.counts.size)
    profiles = np.stack([_mean(picks.sums[..., k], picks.counts[k]) for k in offsets], -1)
    scores["offset_score"] = profiles[..., 1:].max(-1)
    scores["offset_peak"] = (profiles[..., 1:].argmax(-1) + 1).astype(np.float64)
    baseline = delimiter_baseline(masks)
    observed = _mean(delimiter.sums, delimiter.rows)
    scores["delimiter"] = observed / baseline if baseline > 0 else np.full_like(observed, np.nan)
    rows = entropy.rows.cpu().double().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        scores["entropy"] = np.where(rows > 0, entropy.sums.cpu().double().numpy() / rows, np.nan)
    shape = scores["previous_token"].shape
    for name in ("successor", "ov_copy"):
        scores[name] = ov_scores.get(name, np.full(shape, np.nan))
    patterns = (pattern.sums.cpu().double().numpy() / len(probes.sets["repeated"])).astype(
        np.float32
    )
    return HeadAtlas(
        scores={name: np.asarray(scores[name], np.float64) for name in METRIC_NAMES},
        profiles=profiles,
        patterns=patterns,
        probes={name: [list(seq) for seq in seqs] for name, seqs in probes.sets.items()},
        bos_prepended=probes.bos_prepended,
        seed=int(seed),
        model_info=model.info(),
        notes=_notes(model, probes, found, baseline) | ov_notes,
        ioi_positions={role: list(at) for role, at in probes.ioi.items()},
    )


def _notes(model: Model, probes: Probes, found: set[int], baseline: float) -> dict[str, str]:
    tokens = ", ".join(repr(model.tokenizer.decode([i])) for i in sorted(found)) or "none"
    notes = {
        "previous_token": "rows whose previous token is a probe token (the BOS row excluded)",
        "offset_score": f"offsets d = 1..{probes.max_offset}; keys are probe tokens, not the BOS",
        "delimiter": (
            f"delimiters (punctuation or line-break tokens) in the text probes: {tokens}; "
            f"uniform baseline share {baseline:.4f} (causal, over keys 1..i, no window)"
            if baseline > 0
            else "the text probes hold no delimiter token: no score"
        ),
        "entropy": "rows with at least 2 allowed keys; the BOS counts as a key",
    }
    if probes.bos_prepended:
        notes["bos"] = "weight on the prepended BOS token, rows 1.."
    else:
        notes["bos"] = (
            "prepend_bos=False: position 0 is an ordinary probe token; this is the attention "
            "to it, rows 1.."
        )
    user = [name for name, source in probes.sources.items() if source == "user"]
    if user:
        notes["probes"] = f"user probe sets: {user}"
    return notes


class OvExamples:
    """The OV examples of the probes, in pass order: per ordinal (and control)
    sequence item k read at its position with target item k + 1 against the
    sequence's items; per IOI probe the IO name read at its own position
    against every name of the IOI probes."""

    def __init__(self, probes: Probes) -> None:
        self.probes = probes
        self.examples: dict[str, list[tuple[int, int, np.ndarray]]] = {n: [] for n in OV_SETS}
        """set -> (position, target id, candidate ids) per kept row, in pass order."""
        at = probes.ioi
        ioi = probes.sets["ioi"]
        self.names = np.unique(
            [seq[p] for seq, p in zip(ioi, at["io"], strict=True)]
            + [seq[p] for seq, p in zip(ioi, at["s1"], strict=True)]
        )

    def positions(self, batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
        """(b, position) rows to keep in this batch's pass; notes their examples."""
        first, b_all, at_all = self.probes.first, [], []
        for b, k in enumerate(batch.members):
            seq = self.probes.sets[batch.name][k]
            if batch.name == "ioi":
                io = self.probes.ioi["io"][k]
                rows = [(io, seq[io], self.names)]
            else:
                items = np.unique(seq[first:])
                rows = [(p, seq[p + 1], items) for p in range(first, len(seq) - 1)]
            self.examples[batch.name] += rows
            b_all += [b] * len(rows)
            at_all += [p for p, _, _ in rows]
        return np.asarray(b_all, np.int64), np.asarray(at_all, np.int64)

    def mean_z(self, model: Model, inputs: AttentionInputs, name: str) -> np.ndarray:
        """(layer, head) mean over the set's examples of the target's OV logit
        z-scored over its candidates (population sd; 0 where the sd is 0), as
        `models.ov.ov_score`."""
        examples = self.examples[name]
        pool = np.unique(np.concatenate([c for _, _, c in examples]))
        logits = ov_logits_from_inputs(model, inputs.inputs(name), pool).astype(np.float64)
        total = np.zeros(logits.shape[:2])
        for row, (_, target, candidates) in enumerate(examples):
            own = np.unique(np.append(candidates, target))
            values = logits[:, :, row, np.searchsorted(pool, own)]
            mean, sd = values.mean(-1), values.std(-1)
            picked = logits[:, :, row, np.searchsorted(pool, target)]
            total += np.where(sd > 0, (picked - mean) / np.where(sd > 0, sd, 1.0), 0.0)
        return total / len(examples)

    def scores(
        self, model: Model, inputs: AttentionInputs
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """successor and ov_copy, and their notes."""
        successor = self.mean_z(model, inputs, "ordinal") - self.mean_z(
            model, inputs, "ordinal_control"
        )
        notes = {
            "successor": (
                "OV z-score of item k+1 read at item k against the sequence's items, mean over "
                "the ordinal sequences minus the same over the random-word controls "
                "('ordinal_control')"
            ),
            "ov_copy": (
                f"OV z-score of the IO name read at its own position, against the "
                f"{self.names.size} names of the IOI probes (KV head h // n_rep)"
            ),
        }
        return {"successor": successor, "ov_copy": self.mean_z(model, inputs, "ioi")}, notes


__all__ = [
    "AttentionInputs",
    "DelimiterReducer",
    "EntropyReducer",
    "OvExamples",
    "PatternReducer",
    "PickReducer",
    "delimiter_baseline",
    "head_atlas",
    "pick_entries",
    "plan_batches",
]
