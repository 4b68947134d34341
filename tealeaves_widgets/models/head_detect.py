"""`Model.detect_head`: TransformerLens' `detect_head` score in its own mode,
from one forward pass whose attention rows go to a reducer chunk by chunk
(`models.capture`), so no (pos x pos) matrix is kept, neither of attention
nor of the detection pattern: the detection entries of each chunk of query
rows are built from the tokens, O(chunk x pos).

The formula (TransformerLens 4.3, `head_detector.py`), per head, with A the
(T, T) attention pattern and D the (T, T) detection pattern:

- "mul": A' = A with column 0 zeroed (`exclude_bos`) and its diagonal zeroed
  (`exclude_current_token`); score = sum(A' * D) / sum(A'): the share of the
  head's (remaining) attention that falls on the detection entries. 0 / 0
  (a head whose whole attention was excluded) gives NaN, as in TL.
- "abs": E = |A - D| with column 0 / the diagonal zeroed by the same flags;
  score = 1 - round(mean(E) * T, 3) = 1 - round(sum(E) / T, 3).

Detection patterns (lower triangular, from the token ids t):

- "previous_token_head": D[i, j] = 1 where j = i - 1;
- "duplicate_token_head": D[i, j] = 1 where j < i and t[j] = t[i];
- "induction_head": the duplicate pattern shifted right by one column,
  D[i, j] = 1 where 1 <= j <= i and t[j - 1] = t[i] (the token after an
  earlier copy of the current one);
- or the user's own (T, T) lower-triangular array.

The ids are scored as given: TransformerLens' `to_tokens` prepends a BOS by
default, so pass the same ids it sees (BOS included) to compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ArgumentError, ArgumentTypeError, PromptTooLongError
from .layer_stats import reduce_pass
from .targets import read_target

if TYPE_CHECKING:
    from .model import Model

PATTERNS = ("previous_token_head", "duplicate_token_head", "induction_head")
"""The detection patterns by name (TransformerLens' `HEAD_NAMES`)."""
ERROR_MEASURES = ("mul", "abs")


def detection_rows(
    pattern: str | torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """(chunk, T) float32 rows `positions` of the detection pattern over
    `tokens` (T,): a pattern name of `PATTERNS` built from the tokens, or a
    (T, T) tensor whose rows are picked."""
    if isinstance(pattern, torch.Tensor):
        return pattern[positions].float()
    keys = torch.arange(tokens.shape[0], device=tokens.device)[None, :]
    query = positions[:, None]
    if pattern == "previous_token_head":
        found = keys == query - 1
    elif pattern == "duplicate_token_head":
        found = (keys < query) & (tokens[None, :] == tokens[positions][:, None])
    else:  # induction_head: column j holds the duplicate pattern's column j - 1
        before = torch.cat([tokens[:1], tokens[:-1]])  # before[j] = t[j - 1], j >= 1
        found = (keys >= 1) & (keys <= query) & (before[None, :] == tokens[positions][:, None])
    return found.float()


class DetectionReducer:
    """Accumulates TransformerLens' head-detection sums per [layer, head] from
    chunks of rows (a `models.capture.Reducer`): for "mul" the numerator
    sum(A' * D) and denominator sum(A'), for "abs" sum(E). Reads the rows,
    never writes them (other reducers of the same pass get the same rows)."""

    def __init__(
        self,
        tokens: torch.Tensor,
        pattern: str | torch.Tensor,
        n_layers: int,
        n_heads: int,
        *,
        exclude_bos: bool = False,
        exclude_current_token: bool = False,
        error_measure: str = "mul",
    ) -> None:
        self.tokens, self.pattern = tokens, pattern
        self.exclude_bos, self.exclude_current_token = exclude_bos, exclude_current_token
        self.error_measure = error_measure
        dtype = torch.float32 if tokens.device.type == "mps" else torch.float64
        self.dtype = dtype
        self.numerator = torch.zeros((n_layers, n_heads), dtype=dtype, device=tokens.device)
        self.denominator = torch.zeros_like(self.numerator)

    def _kept(self, positions: torch.Tensor, n_keys: int) -> torch.Tensor:
        """(chunk, T) 1.0 where an entry counts, 0.0 where a flag excludes it."""
        keys = torch.arange(n_keys, device=positions.device)[None, :]
        kept = torch.ones((positions.shape[0], n_keys), device=positions.device)
        if self.exclude_bos:
            kept = kept * (keys != 0)
        if self.exclude_current_token:
            kept = kept * (keys != positions[:, None])
        return kept

    @torch.no_grad()
    def __call__(
        self, layer: int, positions: torch.Tensor, rows: torch.Tensor, allowed: torch.Tensor
    ) -> None:
        positions = positions.to(self.tokens.device)
        weights = (rows.float() * allowed)[0]  # (head, chunk, T): batch 1
        detection = detection_rows(self.pattern, self.tokens, positions).to(weights.device)
        kept = self._kept(positions, weights.shape[-1]).to(weights.device)
        if self.error_measure == "mul":
            masked = weights * kept
            self.numerator[layer] += (masked * detection).sum((1, 2), dtype=self.dtype)
            self.denominator[layer] += masked.sum((1, 2), dtype=self.dtype)
        else:
            error = (weights - detection).abs() * kept
            self.numerator[layer] += error.sum((1, 2), dtype=self.dtype)

    def raw(self, n_tokens: int) -> np.ndarray:
        """(layer, head) float64 scores before TL's rounding: "mul" the score,
        "abs" the error mean(E) * T = sum(E) / T."""
        numerator = self.numerator.double().cpu().numpy()
        if self.error_measure == "abs":
            return numerator / n_tokens
        with np.errstate(invalid="ignore", divide="ignore"):
            return numerator / self.denominator.double().cpu().numpy()

    def values(self, n_tokens: int) -> np.ndarray:
        """(layer, head) float64 scores: "mul" as `raw`, "abs" 1 - round(raw, 3)."""
        raw = self.raw(n_tokens)
        if self.error_measure == "mul":
            return raw
        # Python's round, as TL (np.round scales by 1000 first and can differ at a tie)
        return 1.0 - np.array([[round(float(v), 3) for v in row] for row in raw])


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def check_pattern(pattern: object, n_tokens: int) -> str | np.ndarray:
    """A pattern name of `PATTERNS`, or a (T, T) lower-triangular float array."""
    if isinstance(pattern, str):
        if pattern not in PATTERNS:
            raise ArgumentError(
                f"Unknown detection pattern {pattern!r}; expected one of {list(PATTERNS)} or a "
                f"({n_tokens}, {n_tokens}) array. Pick a name from the list or pass your own array."
            )
        return pattern
    if isinstance(pattern, torch.Tensor):
        pattern = pattern.detach().cpu().numpy()
    if not isinstance(pattern, np.ndarray):
        raise ArgumentTypeError(
            f"pattern must be one of {list(PATTERNS)} or a ({n_tokens}, {n_tokens}) array; got "
            f"{type(pattern).__name__}."
        )
    if pattern.shape != (n_tokens, n_tokens):
        raise ArgumentError(
            f"A detection pattern array must be (T, T) = ({n_tokens}, {n_tokens}) for these "
            f"{n_tokens} tokens; got shape {pattern.shape}. Build it for the same token ids."
        )
    if not np.issubdtype(pattern.dtype, np.number) and pattern.dtype != np.bool_:
        raise ArgumentTypeError(
            f"A detection pattern array must hold numbers; got dtype {pattern.dtype}."
        )
    values = pattern.astype(np.float64)
    if not np.isfinite(values).all() or np.triu(values, 1).any():
        raise ArgumentError(
            "A detection pattern must be lower triangular (a query attends to itself and "
            "earlier tokens only) and finite; this one has entries above the diagonal or "
            "non-finite ones. Zero them (np.tril)."
        )
    return values.astype(np.float32)


def _token_ids(model: Model, target: Any) -> np.ndarray:
    """Token ids from an id sequence, a `Run` (its own token ids) or a case
    (rendered with the model's chat template)."""
    if isinstance(target, (np.ndarray, list, tuple, torch.Tensor)):
        ids = np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target)
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise ArgumentTypeError(
                "target must be a 1-D sequence of token ids, a Run or a case; got an array of "
                f"shape {ids.shape}, dtype {ids.dtype}."
            )
        vocab = int(model.hf_model.get_input_embeddings().num_embeddings)
        if ids.min() < 0 or ids.max() >= vocab:
            raise ArgumentError(
                f"target's token ids must lie in 0..{vocab - 1} (this model's vocabulary); got "
                f"{int(ids.min())}..{int(ids.max())}. Take them from the model's tokenizer."
            )
        return ids.astype(np.int64)
    return read_target(model, target, None, "regions").ids  # a Run or a case


def detect_head(
    model: Model,
    target: Any,
    pattern: str | np.ndarray,
    *,
    exclude_bos: bool = False,
    exclude_current_token: bool = False,
    error_measure: str = "mul",
) -> np.ndarray:
    """See `Model.detect_head`."""
    ids = _token_ids(model, target)
    n = int(ids.size)
    if n < 2:
        raise ArgumentError(
            f"detect_head needs at least 2 tokens (a pattern between positions); got {n}. "
            "Pass a longer sequence."
        )
    limit = model.shape.context_length
    if limit is not None and n > limit:
        raise PromptTooLongError(f"target has {n} tokens but the model accepts at most {limit}.")
    checked = check_pattern(pattern, n)
    if error_measure not in ERROR_MEASURES:
        raise ArgumentError(
            f"Unknown error_measure {error_measure!r}; expected 'mul' (share of attention on the "
            "pattern) or 'abs' (1 - summed |attention - pattern| / T)."
        )
    device = model.device
    tokens = torch.as_tensor(ids, device=device)
    kind = checked if isinstance(checked, str) else torch.as_tensor(checked, device=device)
    s = model.shape
    reducer = DetectionReducer(
        tokens,
        kind,
        s.n_layers,
        s.n_heads,
        exclude_bos=_check_flag("exclude_bos", exclude_bos),
        exclude_current_token=_check_flag("exclude_current_token", exclude_current_token),
        error_measure=error_measure,
    )
    reduce_pass(model, ids, [reducer])
    return reducer.values(n)


__all__ = [
    "ERROR_MEASURES",
    "PATTERNS",
    "DetectionReducer",
    "check_pattern",
    "detect_head",
    "detection_rows",
]
