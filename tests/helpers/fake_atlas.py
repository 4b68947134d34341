"""Head atlases built from numpy alone (no model), for the atlas view's tests.

The patterns are causal softmax rows over a repeated random sequence (a BOS,
then n tokens, then the same n again, P = 2n + 1) with a first-token sink;
three heads are planted so the view has something to find:

- PREV_HEAD attends to the previous token,
- INDUCTION_HEAD attends, in the second half, to the token after the
  current token's first occurrence (key q - n + 1),
- DUPLICATE_HEAD attends, in the second half, to that first occurrence
  (key q - n).

previous_token, previous_token_random, induction, duplicate_token, bos,
the offset profile, offset_score and offset_peak are computed from the
patterns as their METRICS descriptions say; the other metrics are random,
with the signed ones of both signs (OV_COPY_HEAD the largest |ov_copy|, a
negative one) and one NaN (NAN_HEAD's s2_attention), so every path of the
view is exercised.
"""

from __future__ import annotations

import numpy as np

from tealeaves_widgets.core.head_atlas import METRIC_NAMES, HeadAtlas

PREV_HEAD = (1, 2)
INDUCTION_HEAD = (3, 1)
DUPLICATE_HEAD = (2, 0)
OV_COPY_HEAD = (4, 3)
NAN_HEAD = (0, 1)


def _patterns(n_layers: int, n_heads: int, n: int, rng: np.random.Generator) -> np.ndarray:
    P = 2 * n + 1
    logits = rng.normal(scale=1.0, size=(n_layers, n_heads, P, P))
    logits[..., 0] += 3.0  # the sink
    q = np.arange(P)[:, None]
    k = np.arange(P)[None, :]
    planted = {
        PREV_HEAD: (k == q - 1),
        INDUCTION_HEAD: (q > n) & (k == q - n + 1),
        DUPLICATE_HEAD: (q > n) & (k == q - n),
    }
    for (layer, head), mask in planted.items():
        logits[layer, head] += 8.0 * mask
    logits = np.where(k <= q, logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)).astype(np.float32)


def _diagonal_means(patterns: np.ndarray) -> np.ndarray:
    """(layer, head, offset) mean weight at key = query - d, d = 0..P-1."""
    P = patterns.shape[-1]
    return np.stack(
        [np.diagonal(patterns, offset=-d, axis1=-2, axis2=-1).mean(-1) for d in range(P)], axis=-1
    ).astype(np.float64)


def fake_atlas(
    n_layers: int = 6, n_heads: int = 4, n: int = 8, seed: int = 0, model_id: str = "fake"
) -> HeadAtlas:
    """A `HeadAtlas` of `n_layers` x `n_heads` heads with planted heads (see
    the module); probes of 2n + 1 tokens with a BOS (id 1)."""
    rng = np.random.default_rng(seed)
    patterns = _patterns(n_layers, n_heads, n, rng)
    P = 2 * n + 1
    profiles = _diagonal_means(patterns)
    second = np.arange(n + 1, P)
    scores = {name: rng.uniform(0.0, 0.3, size=(n_layers, n_heads)) for name in METRIC_NAMES}
    # rows 1.. (the first has no previous token)
    scores["previous_token"] = profiles[..., 1].copy()
    scores["previous_token_random"] = profiles[..., 1].copy()
    scores["induction"] = patterns[..., second, second - n + 1].mean(-1).astype(np.float64)
    scores["duplicate_token"] = patterns[..., second, second - n].mean(-1).astype(np.float64)
    scores["bos"] = patterns[..., 0].mean(-1).astype(np.float64)
    scores["offset_peak"] = (1 + profiles[..., 1:].argmax(-1)).astype(np.float64)
    scores["offset_score"] = profiles[..., 1:].max(-1)
    scores["delimiter"] = rng.uniform(0.5, 2.0, size=(n_layers, n_heads))
    scores["entropy"] = rng.uniform(0.1, 0.9, size=(n_layers, n_heads))
    scores["successor"] = rng.normal(scale=0.2, size=(n_layers, n_heads))
    scores["ov_copy"] = rng.normal(scale=0.5, size=(n_layers, n_heads))
    scores["ov_copy"][OV_COPY_HEAD] = -3.0
    scores["s2_attention"][NAN_HEAD] = np.nan
    first = rng.integers(2, 500, size=n).tolist()
    probes = {
        "text": [[1, *rng.integers(2, 500, size=12).tolist()] for _ in range(3)],
        "random": [[1, *rng.integers(2, 500, size=P - 1).tolist()] for _ in range(4)],
        "repeated": [[1, *first, *first]],
        "ordinal": [[1, 10, 11, 12, 13]],
        "ioi": [[1, 20, 21, 22, 23, 24, 21, 25]],
    }
    return HeadAtlas(
        scores=scores,
        profiles=profiles,
        patterns=patterns,
        probes=probes,
        bos_prepended=True,
        seed=seed,
        model_info={"model_id": model_id},
        notes={"delimiter": "delimiters: '.', ',', '\\n' (<b>markup</b> is text)"},
    )
