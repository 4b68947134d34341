"""Synthetic runs: a `Run` built from numpy alone, for demos, tests and
benchmarks of the widgets without a model.

The prompt follows the ChatML layout of the embedded model (system turn, user
turn, generation prompt). Attention rows are causal softmax rows with what real
models show: a strong first-token sink, a recency bias, and heads that prefer
one region. The logit lens sharpens towards the last layer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from tealeaves_widgets.core.run import Lens, RegionInfo, Run
from tealeaves_widgets.errors import TealeavesError

_WORDS = (
    "the tea leaves settle at the bottom of the cup and the reader looks for "
    "shapes in them a bird means news a ring means a promise kept and a tree "
    "means growth but nothing is certain until the last sip is taken"
).split()
_SYSTEM = "You are a careful assistant. Answer in one word."
_QUESTION = " Question: what does a ring mean?"


def _user_words(n_words: int, rng: np.random.Generator) -> list[str]:
    """Tokens of the user's context: words with leading spaces, some line breaks."""
    words = []
    for i in range(n_words):
        word = _WORDS[int(rng.integers(len(_WORDS)))]
        words.append(("\n" if i and i % 37 == 0 else " ") + word)
    return words


def _layout(n_tokens: int, rng: np.random.Generator) -> tuple[list[str], dict[str, list[int]]]:
    """Token texts of a ChatML prompt with exactly `n_tokens` tokens, and the
    token positions of each region."""
    head = ["<|im_start|>", "system", "\n"]
    system = [" " + w if i else w for i, w in enumerate(_SYSTEM.split(" "))]
    middle = ["<|im_end|>", "\n", "<|im_start|>", "user", "\n"]
    question = [" " + w for w in _QUESTION.split()]
    tail = ["<|im_end|>", "\n", "<|im_start|>", "assistant", "\n"]
    fixed = len(head) + len(system) + len(middle) + len(question) + len(tail)
    if n_tokens < fixed + 1:
        raise TealeavesError(f"A synthetic run needs at least {fixed + 1} tokens, got {n_tokens}.")
    context = _user_words(n_tokens - fixed, rng)
    tokens = head + system + middle + context + question + tail
    starts = np.cumsum([0, len(head), len(system), len(middle), len(context), len(question)])
    template = (
        list(range(starts[0], starts[1]))
        + list(range(starts[2], starts[3]))
        + list(range(starts[5], len(tokens)))
    )
    regions = {
        "template": template,
        "system": list(range(starts[1], starts[2])),
        "user": list(range(starts[3], starts[5])),
        "context": list(range(starts[3], starts[4])),
        "question": list(range(starts[4], starts[5])),
    }
    return tokens, regions


def _attention(
    n_layers: int,
    n_heads: int,
    positions: list[int],
    regions: dict[str, list[int]],
    n_tokens: int,
    rng: np.random.Generator,
) -> NDArray[np.float32]:
    """(layer, head, query, pos) causal softmax rows with a first-token sink."""
    pos = np.arange(n_tokens, dtype=np.float32)
    logits = rng.normal(scale=1.0, size=(n_layers, n_heads, len(positions), n_tokens))
    logits = logits.astype(np.float32)
    favourite = [regions["system"], regions["context"], regions["question"]]
    for layer in range(n_layers):
        depth = layer / max(n_layers - 1, 1)
        for head in range(n_heads):
            logits[layer, head, :, favourite[head % 3]] += 1.5 * depth + 0.3 * (head % 4)
        logits[layer, :, :, 0] += 6.0 + 2.0 * np.sin(3.0 * depth)  # the sink
    for q, query_pos in enumerate(positions):
        logits[:, :, q, :] += -0.02 * np.clip(query_pos - pos, 0, None) ** 0.7  # recency
        logits[:, :, q, query_pos + 1 :] = -np.inf
    logits -= logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=-1, keepdims=True)
    return logits


def _lens(n_layers: int, n_queries: int, rng: np.random.Generator, k: int = 10) -> Lens:
    """Lens readings that converge on one answer per query by the last layer."""
    vocab = {i: word for i, word in enumerate(sorted(set(_WORDS)))}
    vocab.update({len(vocab): " promise", len(vocab) + 1: "\n", len(vocab) + 2: "<|im_end|>"})
    answer = len(vocab) - 3
    top_ids = np.stack(
        [rng.permutation(len(vocab))[:k] for _ in range(n_layers * n_queries)]
    ).reshape(n_layers, n_queries, k)
    depth = np.linspace(0.0, 1.0, n_layers)[:, None, None]
    top_ids[n_layers // 2 :, :, 0] = answer
    top_ids[n_layers // 2 :, :, 1:] = np.where(
        top_ids[n_layers // 2 :, :, 1:] == answer, 0, top_ids[n_layers // 2 :, :, 1:]
    )
    decay = np.exp(-np.arange(k) * (0.3 + 2.0 * depth))  # (layer, 1, k)
    top_probs = np.broadcast_to(
        decay / decay.sum(-1, keepdims=True) * (0.3 + 0.6 * depth), (n_layers, n_queries, k)
    ).astype(np.float32)
    entropy = (6.0 * (1.0 - depth[..., 0]) + 0.3).repeat(n_queries, axis=1).astype(np.float32)
    kl = (5.0 * (1.0 - depth[..., 0]) ** 2).repeat(n_queries, axis=1).astype(np.float32)
    ranks = np.maximum(1, np.rint(2000 * (1.0 - depth[..., 0]) ** 3)).astype(np.int64)
    tracked_ranks = np.stack([ranks.repeat(n_queries, 1), ranks.repeat(n_queries, 1) + 7], axis=-1)
    tracked_probs = (1.0 / (1.0 + tracked_ranks)).astype(np.float32)
    return Lens(
        top_ids=top_ids.astype(np.int64),
        top_probs=top_probs,
        entropy=entropy,
        kl_to_final=kl,
        tracked_ids=np.array([answer, 0], dtype=np.int64),
        tracked_tokens=(" promise", vocab[0]),
        tracked_ranks=tracked_ranks,
        tracked_probs=tracked_probs,
        vocab=vocab,
    )


def synthetic_run(
    n_tokens: int = 256,
    n_layers: int = 30,
    n_heads: int = 9,
    n_queries: int = 8,
    seed: int = 0,
    extra_text: str = "",
) -> Run:
    """A `Run` shaped like one of the embedded model (30 layers x 9 heads by
    default) over a ChatML prompt of exactly `n_tokens` tokens. `extra_text`
    is appended to the question, as one token (to test odd text in views).
    Queries: `n_queries - 1` positions spread over the user turn, then "final"."""
    if n_queries < 1:
        raise TealeavesError(f"n_queries must be at least 1, got {n_queries}.")
    rng = np.random.default_rng(seed)
    tokens, region_tokens = _layout(n_tokens - (1 if extra_text else 0), rng)
    if extra_text:
        at = region_tokens["question"][-1] + 1
        tokens.insert(at, extra_text)
        for name, indices in region_tokens.items():
            shifted = [i + 1 if i >= at else i for i in indices]
            region_tokens[name] = shifted + ([at] if name in ("question", "user") else [])
    text = "".join(tokens)
    lengths = np.array([len(t) for t in tokens])
    offsets = np.stack([np.cumsum(lengths) - lengths, np.cumsum(lengths)], axis=1)
    user = region_tokens["user"]
    spread = np.linspace(user[0] + 8, user[-1], n_queries, dtype=int)[: n_queries - 1].tolist()
    queries = {f"q{i}": int(p) for i, p in enumerate(spread)}
    queries["final"] = n_tokens - 1
    sections = {
        "template": "template",
        "system": "system",
        "user": "user",
        "context": "user",
        "question": "user",
    }
    regions = {}
    for name, indices in region_tokens.items():
        idx = np.array(sorted(indices), dtype=np.int64)
        span = (
            (0, len(text))
            if name == "template"
            else (int(offsets[idx[0], 0]), int(offsets[idx[-1], 1]))
        )
        regions[name] = RegionInfo(
            name=name,
            section=sections[name],
            char_span=span,
            token_indices=idx,
            parent="user" if name in ("context", "question") else None,
            builtin=name in ("template", "system", "user"),
        )
    heads = _attention(n_layers, n_heads, list(queries.values()), region_tokens, n_tokens, rng)
    return Run(
        text=text,
        tokens=tuple(tokens),
        token_ids=rng.integers(0, 49152, size=n_tokens).astype(np.int64),
        offsets=offsets.astype(np.int64),
        regions=regions,
        queries=queries,
        attention=heads.mean(axis=1),
        attention_heads=heads,
        lens=_lens(n_layers, len(queries), rng),
        model_info={"model_id": "synthetic", "n_layers": n_layers, "n_heads": n_heads},
    )


MARKUP_TOKEN = "<b>x</b>"
"""Text of one vocabulary entry of `synthetic_ablation`: shown as text, never markup."""


def _knocked_out(run: Run, tokens: NDArray[np.int64]) -> Run:
    """`run` with `tokens` hidden from every query outside them (their weight
    moved to the rest of each row), as RegionKnockout(mode="mask") does."""
    heads = run.attention_heads.copy()
    inside = np.zeros(run.n_tokens, dtype=bool)
    inside[tokens] = True
    for q, pos in enumerate(run.queries.values()):
        if inside[pos]:
            continue
        heads[:, :, q, inside] = 0.0
        heads[:, :, q, :] /= heads[:, :, q, :].sum(axis=-1, keepdims=True)
    return dataclasses.replace(run, attention=heads.mean(axis=1), attention_heads=heads)


def synthetic_ablation(run: Run | None = None, seed: int = 0, vocab_size: int = 64):
    """A `tw.Ablation` of `run` (default a small synthetic run) with random
    next-token logits and five conditions: a head, the values at t-1, a mask
    knockout of "context" and of "question", and a composite. Knocking out
    "question" changes the top token; the first condition's largest rise is
    the token `MARKUP_TOKEN`. The condition runs are the base run with the
    knocked-out regions hidden (or the base run itself)."""
    from tealeaves_widgets.core.ablation import Ablation, logit_changes
    from tealeaves_widgets.core.conditions import (
        HeadAblation,
        RegionKnockout,
        ValueAblation,
        as_conditions,
    )

    run = run or synthetic_run(n_tokens=64, n_layers=4, n_heads=3, n_queries=2, seed=seed)
    rng = np.random.default_rng(seed + 1)
    conditions = as_conditions(
        {
            "head L1H0": HeadAblation(1, 0),
            "values t-1": ValueAblation("all", "t-1"),
            "no context": RegionKnockout("context", "mask"),
            "no question": RegionKnockout("question", "mask"),
            "head + question": [HeadAblation(0, 1, "all"), RegionKnockout("question", "values")],
        }
    )
    base = rng.normal(scale=2.0, size=vocab_size).astype(np.float32)
    top = int(np.argmax(base))
    scales = np.array([0.3, 0.5, 0.8, 1.5, 1.2], dtype=np.float32)[:, None]
    logits = base + scales * rng.normal(size=(len(conditions), vocab_size)).astype(np.float32)
    markup = (top + 7) % vocab_size
    logits[0, markup] = base[markup] + 4.0  # the largest rise of the first condition
    logits[3, top] = base[top] - 6.0  # no question: the prediction changes
    logits[4, top] = base[top] - 3.0
    vocab = {i: f" w{i}" for i in range(vocab_size)}
    vocab[markup] = MARKUP_TOKEN
    vocab[(top + 3) % vocab_size] = "\n"
    runs = {}
    for condition in conditions:
        (item, *_) = condition.interventions
        if len(condition.interventions) == 1 and isinstance(item, RegionKnockout):
            runs[condition.name] = _knocked_out(run, run.regions[item.region].token_indices)
        else:
            runs[condition.name] = run
    ids = logit_changes(base, logits, 20).token_ids
    return Ablation(
        base=run,
        runs=runs,
        conditions=conditions,
        at="final",
        base_logits=base,
        logits=logits,
        vocab={i: vocab[i] for i in sorted(ids)},
        top_k=20,
    )


def synthetic_attribution(seed: int = 0, n_tokens: int = 64, head_mask: bool = False):
    """A `tw.Attribution` over a synthetic run's prompt (`extra_text` the
    token `MARKUP_TOKEN`, in "question"): gradient norms with a large one on
    the first token (a sink), the question's tokens the next largest, and a
    signed gradient x input."""
    from tealeaves_widgets.core.attribution import Attribution

    run = synthetic_run(
        n_tokens=n_tokens, n_layers=4, n_heads=3, n_queries=2, seed=seed, extra_text=MARKUP_TOKEN
    )
    rng = np.random.default_rng(seed + 2)
    grad_norm = rng.gamma(2.0, 0.5, size=n_tokens)
    grad_norm[run.regions["question"].token_indices] *= 3.0
    grad_norm[0] = 4.0 * grad_norm.max()
    grad_x_input = rng.normal(scale=0.4, size=n_tokens)
    grad_x_input[run.regions["question"].token_indices] += 0.8
    mask = None
    if head_mask:
        mask = np.ones((4, 3), dtype=bool)
        mask[1, :2] = False
    return Attribution(
        tokens=list(run.tokens),
        token_ids=run.token_ids,
        regions=run.regions,
        target=" ring",
        target_tokens=[" ring"],
        target_ids=np.array([1234], dtype=np.int64),
        loss="full_target",
        log_prob=-2.5,
        grad_norm=grad_norm,
        grad_x_input=grad_x_input,
        model_info={"model_id": "synthetic"},
        head_mask=mask,
    )


def synthetic_head_gates(seed: int = 0, n_layers: int = 6, n_heads: int = 4, steps=(20, 15)):
    """A `tw.HeadGates` with heads of every label: (0, 0) and (3, 1) stay
    open under removal (facilitating), (2, 2) shuts under retention
    (interfering), the rest open under retention and shut under removal."""
    from tealeaves_widgets.core.head_gates import HeadGates

    rng = np.random.default_rng(seed + 3)
    shape = (n_layers, n_heads)
    plain = rng.uniform(0.55, 0.99, size=shape)
    retention = rng.uniform(0.7, 0.99, size=shape)
    removal = rng.uniform(0.01, 0.3, size=shape)
    removal[0, 0], removal[3, 1] = 0.93, 0.71
    retention[2, 2], plain[2, 2] = 0.12, 0.35
    first = np.linspace(3.0, 2.0, steps[0]) + rng.normal(scale=0.02, size=steps[0])
    losses = {
        "plain": first,
        "retention": first[-1] - np.linspace(0.0, 0.1, steps[1]),
        "removal": first[-1] + np.linspace(0.0, 0.8, steps[1]),
    }
    return HeadGates(
        gates={"plain": plain, "retention": retention, "removal": removal},
        losses=losses,
        base_loss=3.1,
        strength=1.0,
        model_info={"model_id": "synthetic"},
    )


def synthetic_prev_token(seed: int = 0, n_texts: int = 6, n_layers: int = 4, hidden: int = 8):
    """A `tw.PrevTokenTest` of head (1, 2) over offsets 1..4 whose head
    carries what sits at t-1: once the values at t-1 are gone, removing it
    changes little (redundancy peaks at k = 1)."""
    from tealeaves_widgets.core.prev_token import PrevTokenTest

    rng = np.random.default_rng(seed + 4)
    offsets = (1, 2, 3, 4)
    base = rng.normal(size=(n_texts, n_layers, hidden)).astype(np.float32)
    effect = rng.normal(scale=0.5, size=(n_texts, n_layers, hidden)).astype(np.float32)
    effect[:, :1] = 0.0  # layers before the head's are untouched
    ablated = base - effect
    b = np.stack([base - 0.3 * k * rng.normal(size=base.shape) for k in offsets]).astype(np.float32)
    # with the values at t-k gone the head's removal still does (1 - carried) of its effect
    carried = np.array([0.85, 0.2, 0.1, 0.05], dtype=np.float32)[:, None, None, None]
    ab = b - (1 - carried) * effect[None]
    return PrevTokenTest(
        layer=1,
        head=2,
        value_heads=None,
        offsets=offsets,
        positions=rng.integers(4, 30, size=n_texts).astype(np.int64),
        outputs={"base": base, "A": ablated, "B": b, "A+B": ab.astype(np.float32)},
        model_info={"model_id": "synthetic"},
    )


SNAPSHOT_MARKUP = "<img src=x onerror=\"document.title='pwned'\"><b>x</b>"
"""Message text that would run and draw as HTML: the view must show it as text."""


def synthetic_snapshots(seed: int = 0, n_layers: int = 6, hidden: int = 96):
    """A `tw.Snapshots` of a six-message conversation whose mood swings
    (joy, then anger, then calm) against references "joy", "anger" and
    "calm": every state shares a few massive dimensions, so raw cosines are
    flat (about 0.85 to everything) and centring shows which reference each
    message is closest to. The fourth message holds `SNAPSHOT_MARKUP`."""
    from tealeaves_widgets.core.states import SOURCES, Snapshots

    rng = np.random.default_rng(seed + 5)
    messages = (
        ("system", "You are a kind companion."),
        ("user", "I got the job!   I can't believe it, I am so happy today."),
        ("assistant", "Congratulations! That is wonderful news."),
        ("user", f"Wait, they withdrew the offer. {SNAPSHOT_MARKUP} I am furious."),
        ("assistant", "I am sorry. That is unfair; take a breath."),
        ("user", "Okay. I feel calmer now, thank you."),
    )
    moods = np.array(
        [[0.3, 0.3, 0.3], [1, 0, 0], [0.8, 0, 0.2], [0, 1, 0], [0, 0.4, 0.6], [0, 0, 1]]
    )
    shared = np.zeros((n_layers, hidden))
    shared[:, :3] = rng.normal(loc=20.0, scale=1.0, size=(n_layers, 3))
    directions = rng.normal(size=(3, n_layers, hidden)) * 1.2
    states, references = {}, {}
    for s, source in enumerate(SOURCES):
        scale = 1.0 + 0.25 * s
        base = shared * scale
        mixed = np.einsum("mk,klh->mlh", moods, directions) + rng.normal(
            scale=0.6, size=(len(messages), n_layers, hidden)
        )
        states[source] = (base + mixed).astype(np.float32)
        for k, label in enumerate(("joy", "anger", "calm")):
            own = directions[k] + rng.normal(scale=0.6, size=(n_layers, hidden))
            references.setdefault(label, {})[source] = (base + own).astype(np.float32)
    return Snapshots(
        messages=tuple({"role": role, "content": text} for role, text in messages),
        positions=np.array([20, 41, 60, 95, 118, 140], dtype=np.int64),
        states=states,
        references=references,
        readout="message_end",
        single_pass=True,
        model_info={"model_id": "synthetic"},
    )


def _residual_stream(rng, n_queries: int, n_layers: int, hidden: int):
    """(query, layer, hidden) block inputs, attention and MLP terms and outputs
    of a stream that grows layer by layer, with one massive dimension that
    every state shares (as real residual streams have)."""
    inputs, attention, mlp, outputs = (np.zeros((n_queries, n_layers, hidden)) for _ in range(4))
    for q in range(n_queries):
        x = rng.normal(size=hidden)
        for layer in range(n_layers):
            a = rng.normal(scale=0.5 + 0.1 * layer, size=hidden)
            m = rng.normal(scale=0.4 + 0.2 * layer, size=hidden)
            m[0] += 2.0 + layer  # the shared massive dimension grows
            inputs[q, layer], attention[q, layer], mlp[q, layer] = x, a, m
            x = x + a + m
            outputs[q, layer] = x
    return inputs, attention, mlp, outputs


def synthetic_residual(seed: int = 0, n_layers: int = 12, hidden: int = 48):
    """A `tw.ResidualDecomposition` of two queries, "first" (on the token
    `MARKUP_TOKEN`) and "final", over `n_layers` layers of a growing stream."""
    from tealeaves_widgets.core.residuals import ResidualDecomposition

    rng = np.random.default_rng(seed + 5)
    vectors = _residual_stream(rng, 2, n_layers, hidden)
    return ResidualDecomposition.from_vectors(
        {"first": 3, "final": 20},
        [MARKUP_TOKEN, "\n"],
        *vectors,
        parallel=False,
        model_info={"model_id": "synthetic"},
    )


def synthetic_cross_layer(seed: int = 0, n_layers: int = 12, hidden: int = 48):
    """A `tw.CrossLayerCosine` of the block outputs of `synthetic_residual`'s
    stream at one query on the token `MARKUP_TOKEN`."""
    from tealeaves_widgets.core.residuals import CrossLayerCosine

    rng = np.random.default_rng(seed + 5)
    outputs = _residual_stream(rng, 1, n_layers, hidden)[3][0]
    return CrossLayerCosine.from_states(
        outputs,
        source="hidden_out",
        query="final",
        position=20,
        token=MARKUP_TOKEN,
        model_info={"model_id": "synthetic"},
    )
