"""A plain numpy transcription of TransformerLens 4.3's head detector
(`transformer_lens/head_detector.py`: the three `get_*_detection_pattern`
builders and `compute_head_attention_similarity_score`), full (T, T)
matrices, float64: the oracle `models.head_detect` is tested against where
TransformerLens itself is not installed, and checked against TransformerLens
where it is."""

from __future__ import annotations

import numpy as np

ROUND_DIGITS = 3
"""TL rounds the "abs" score's error to 3 decimals."""


def previous_token_pattern(tokens: np.ndarray) -> np.ndarray:
    """TL: zeros (T, T), eye(T - 1) placed at [1:, :-1], tril."""
    n = len(tokens)
    pattern = np.zeros((n, n))
    pattern[1:, :-1] = np.eye(n - 1)
    return np.tril(pattern)


def duplicate_token_pattern(tokens: np.ndarray) -> np.ndarray:
    """TL: token_pattern = tokens repeated T times; eq = token_pattern ==
    token_pattern.T; diagonal zeroed; tril."""
    token_pattern = np.tile(np.asarray(tokens), (len(tokens), 1))
    eq = np.equal(token_pattern, token_pattern.T).astype(int)
    np.fill_diagonal(eq, 0)
    return np.tril(eq.astype(float))


def induction_pattern(tokens: np.ndarray) -> np.ndarray:
    """TL: the duplicate pattern rolled one column right, column 0 zeroed, tril."""
    duplicate = duplicate_token_pattern(tokens)
    shifted = np.roll(duplicate, 1, axis=1)
    shifted[:, 0] = 0
    return np.tril(shifted)


PATTERN_BUILDERS = {
    "previous_token_head": previous_token_pattern,
    "duplicate_token_head": duplicate_token_pattern,
    "induction_head": induction_pattern,
}


def raw_score(
    attention: np.ndarray,
    detection: np.ndarray,
    *,
    exclude_bos: bool,
    exclude_current_token: bool,
    error_measure: str,
) -> float:
    """TL's score of one head before the "abs" rounding: "mul" sum(A' * D) /
    sum(A'); "abs" mean(E) * T. `attention` (T, T) is not modified."""
    if error_measure == "mul":
        a = attention.copy()
        if exclude_bos:
            a[:, 0] = 0
        if exclude_current_token:
            np.fill_diagonal(a, 0)
        return float((a * detection).sum() / a.sum())
    error = np.abs(attention - detection)
    assert (error - np.tril(error)).sum() == 0  # TL asserts lower triangular
    if exclude_bos:
        error[:, 0] = 0
    if exclude_current_token:
        np.fill_diagonal(error, 0)
    return float(error.mean() * len(error))


def score(attention: np.ndarray, detection: np.ndarray, **flags) -> float:
    """TL's `compute_head_attention_similarity_score`."""
    raw = raw_score(attention, detection, **flags)
    if flags["error_measure"] == "mul":
        return raw
    return 1 - round(raw, ROUND_DIGITS)


def near_rounding_boundary(raw: np.ndarray, tolerance: float) -> np.ndarray:
    """Where an "abs" raw value lies within `tolerance` of a point where
    rounding to 3 decimals flips: two implementations summing in a different
    order may round those 1e-3 apart."""
    scaled = np.asarray(raw) * 10**ROUND_DIGITS
    return np.abs(scaled - np.floor(scaled) - 0.5) * 10**-ROUND_DIGITS < tolerance


def detect_all(
    attentions: list[np.ndarray], tokens: np.ndarray, pattern, **flags
) -> tuple[np.ndarray, np.ndarray]:
    """(layer, head) scores and raw scores of every head of (head, T, T)
    per-layer attentions; `pattern` a name or a (T, T) array."""
    detection = (
        PATTERN_BUILDERS[pattern](tokens) if isinstance(pattern, str) else np.asarray(pattern)
    )
    raw = np.array(
        [[raw_score(head, detection, **flags) for head in layer] for layer in attentions]
    )
    scores = np.array([[score(head, detection, **flags) for head in layer] for layer in attentions])
    return scores, raw
