"""Runs built from numpy alone (no model), for the comparison and run-set tests."""

from __future__ import annotations

import numpy as np

import tealeaves_widgets as tw

TRACKED = (" Paris", " Yes")


def fake_run(
    words: list[str],
    regions: dict[str, tuple[int, int]],
    *,
    n_layers: int = 6,
    n_heads: int = 2,
    queries: tuple[str, ...] = ("final", "last_token"),
    seed: int = 0,
    name: str | None = None,
) -> tw.Run:
    """A run over `words` (one token each) with random causal attention rows.

    `regions` maps a name to a half-open token range [start, stop). Queries sit
    on the last tokens, in order.
    """
    rng = np.random.default_rng(seed)
    n = len(words)
    text = "".join(words)
    starts = np.cumsum([0] + [len(w) for w in words[:-1]])
    offsets = np.stack([starts, starts + [len(w) for w in words]], axis=1).astype(np.int64)
    positions = {q: n - len(queries) + i for i, q in enumerate(queries)}
    heads = np.zeros((n_layers, n_heads, len(queries), n), dtype=np.float32)
    for q, pos in enumerate(positions.values()):
        logits = rng.normal(size=(n_layers, n_heads, pos + 1)) * 2
        weights = np.exp(logits)
        heads[:, :, q, : pos + 1] = weights / weights.sum(-1, keepdims=True)
    infos = {
        name_: tw.RegionInfo(
            name_, "user", (int(offsets[a, 0]), int(offsets[b - 1, 1])), np.arange(a, b), None
        )
        for name_, (a, b) in regions.items()
    }
    shape = (n_layers, len(queries))
    probs = rng.dirichlet(np.ones(8), size=shape).astype(np.float32)
    order = np.argsort(-probs, axis=-1)
    lens = tw.Lens(
        top_ids=order[..., :5].astype(np.int64),
        top_probs=np.take_along_axis(probs, order[..., :5], -1),
        entropy=rng.random(shape).astype(np.float32),
        kl_to_final=rng.random(shape).astype(np.float32),
        tracked_ids=np.array([0, 1], dtype=np.int64),
        tracked_tokens=TRACKED,
        tracked_ranks=np.argsort(order, axis=-1)[..., :2].astype(np.int64) + 1,
        tracked_probs=probs[..., :2],
        vocab={i: f"t{i}" for i in range(8)},
    )
    return tw.Run(
        text=text,
        tokens=tuple(words),
        token_ids=np.arange(n, dtype=np.int64),
        offsets=offsets,
        regions=infos,
        queries=positions,
        attention=heads.mean(axis=1),
        attention_heads=heads,
        lens=lens,
        model_info={"model_id": "fake", "n_layers": n_layers},
        case={"user": text, **({"name": name} if name else {})},
    )


BASE_WORDS = (
    "You are Pip . ## Rules Be brief . Never lie . ## Facts Paris Oslo . Question ?".split()
)


def variant_words(terse: bool) -> list[str]:
    """The baseline's words, or a terser variant that drops "Never lie ." and adds words."""
    words = [w + " " for w in BASE_WORDS]
    if terse:
        words = words[:8] + ["Short ", "! "] + words[11:]
    return words


def regions_of(words: list[str]) -> dict[str, tuple[int, int]]:
    """Regions located by their words, as a region spec would."""
    rules = words.index("## ", 4)
    facts = words.index("## ", rules + 1)
    return {"rules": (rules, facts), "facts": (facts, facts + 5), "persona": (0, 4)}
