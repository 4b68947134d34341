"""`Model.ablate`, `Model.knockout_regions` and `Model.head_means`: captured
forward passes under interventions (`core.conditions`, carried out by
`models.interventions`).

One pass for the baseline and one per condition, each a full captured pass
without a KV cache, so the attention rows and the lens of every condition
see the intervened forward. The next-token logits at the query position are
the lens's last layer (the model's own output, softcapping included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core.ablation import Ablation, logit_changes
from ..core.conditions import (
    Condition,
    HeadAblation,
    RegionKnockout,
    ValueAblation,
    as_conditions,
    check_against_model,
)
from ..core.prev_token import PrevTokenTest
from ..errors import ArgumentError, ArgumentTypeError, SelectionError
from .interventions import Plan, head_output_means, intervening, plan_condition
from .lens import lens_logits

if TYPE_CHECKING:
    from ..core.run import Run
    from .model import Model, _Prepared


def with_query(prepared: _Prepared, at: object) -> tuple[_Prepared, str]:
    """`prepared` with `at` among its queries, and the query's name: `at` is a
    query name of the prompt, or a token index (added as a query "t=<index>"
    when no query sits there)."""
    queries = prepared.resolved.queries
    n = prepared.n_tokens
    if isinstance(at, str):
        if at not in queries:
            raise SelectionError(
                f"at={at!r} is not a query of this prompt; its queries are {list(queries)} "
                f"(name more with query_positions in the regions), or give a token index "
                f"0..{n - 1}."
            )
        return prepared, at
    if isinstance(at, (int, np.integer)) and not isinstance(at, bool):
        if not -n <= at < n:
            raise SelectionError(
                f"at={at} lies outside the prompt of {n} tokens; use 0..{n - 1} (or -{n}..-1)."
            )
        position = int(at) % n
        for name, p in queries.items():
            if p == position:
                return prepared, name
        name = f"t={position}"
        resolved = dataclasses.replace(prepared.resolved, queries={**queries, name: position})
        return dataclasses.replace(prepared, resolved=resolved), name
    raise ArgumentTypeError(
        f'at must be a query name (e.g. "final") or a token index, got {type(at).__name__}.'
    )


def reference_means(model: Model, reference: object, prepared: _Prepared) -> np.ndarray:
    """(layer, head, head_dim) head means for mode="mean": from `reference`
    (an array of that shape, or cases whose every position is averaged), or
    over every position of the prompt itself when it is None."""
    shape = model.shape
    if reference is None:
        return model.head_means([prepared.case])
    if isinstance(reference, np.ndarray):
        if reference.ndim != 3 or reference.shape[:2] != (shape.n_layers, shape.n_heads):
            raise ArgumentError(
                f"reference means must have shape (layer, head, head_dim) = ({shape.n_layers}, "
                f"{shape.n_heads}, head_dim), got {reference.shape}; compute them with "
                "model.head_means(cases)."
            )
        return reference
    if isinstance(reference, Sequence) and not isinstance(reference, str):
        return model.head_means(list(reference))
    raise ArgumentTypeError(
        "reference must be None (the prompt's own positions), a list of cases, or an array "
        f"from model.head_means(cases); got {type(reference).__name__}."
    )


def _pass(
    model: Model,
    prepared: _Prepared,
    plan: Plan | None,
    means: np.ndarray | None,
    top_k: int,
    at: str,
) -> tuple[Run, np.ndarray]:
    """One captured pass under `plan` (None: no intervention): its run and
    the (vocab,) float32 next-token logits at query `at`."""
    with intervening(model.hf_model, model.arch, plan, model.shape.n_heads, means) as edit:
        [(heads, residuals)] = model._forward([prepared], None, edit=edit)
    [lens] = model._lenses([prepared], [residuals], top_k)
    run = model._finish(prepared, heads, lens)
    q = list(prepared.resolved.queries).index(at)
    last = residuals[-1:, q : q + 1]
    logits = lens_logits(last, model.final_norm, model.unembedding, model.shape.final_logit_softcap)
    return run, logits[0, 0].float().cpu().numpy()


@torch.no_grad()
def ablate(
    model: Model,
    case: Any,
    conditions: Any,
    regions: Any = None,
    *,
    at: str | int = "final",
    top_k: int = 20,
    reference: Any = None,
    lens_top_k: int = 10,
) -> Ablation:
    """See `Model.ablate`."""
    from .model import as_case, check_top_k

    conds: tuple[Condition, ...] = as_conditions(conditions)
    top_k = check_top_k(top_k)
    lens_top_k = check_top_k(lens_top_k)
    prepared, name = with_query(model._prepare(as_case(case), regions), at)
    t = prepared.resolved.queries[name]
    tokens = {n: info.token_indices for n, info in prepared.resolved.regions.items()}
    shape = model.shape
    plans = []
    for condition in conds:
        check_against_model(condition, shape.n_layers, shape.n_heads, tokens)
        plans.append(plan_condition(condition, t, prepared.n_tokens, shape.n_layers, tokens))
    wants_mean = any(
        mode == "mean" for p in plans for edits in p.heads.values() for *_, mode in edits
    )
    means = reference_means(model, reference, prepared) if wants_mean else None
    base, base_logits = _pass(model, prepared, None, None, lens_top_k, name)
    # a condition's run is read at t only: its rows and lens are what the
    # ablation is about, and the lens of every other query would cost about a
    # quarter of a short prompt's pass
    at_only = dataclasses.replace(
        prepared, resolved=dataclasses.replace(prepared.resolved, queries={name: t})
    )
    runs: dict[str, Run] = {}
    logits = []
    for condition, plan in zip(conds, plans, strict=True):
        runs[condition.name], row = _pass(model, at_only, plan, means, lens_top_k, name)
        logits.append(row)
    stacked = np.stack(logits)
    ids = logit_changes(base_logits, stacked, top_k).token_ids
    vocab = {i: model.tokenizer.decode([i]) for i in sorted(ids)}
    return Ablation(
        base=base,
        runs=runs,
        conditions=conds,
        at=name,
        base_logits=base_logits,
        logits=stacked,
        vocab=vocab,
        top_k=top_k,
    )


def knockout_regions(
    model: Model,
    case: Any,
    regions: Any = None,
    *,
    mode: str = "mask",
    names: Sequence[str] | None = None,
    include_builtin: bool = False,
    at: str | int = "final",
    top_k: int = 20,
    lens_top_k: int = 10,
) -> Ablation:
    """See `Model.knockout_regions`."""
    from .model import as_case

    resolved = model._prepare(as_case(case), regions).resolved.regions
    if names is None:
        chosen = [n for n, info in resolved.items() if include_builtin or not info.builtin]
        if not chosen:
            raise SelectionError(
                "This prompt has no regions of its own to knock out; define some in `regions`, "
                "pass names=[...] or include_builtin=True (the built-in regions: "
                f"{list(resolved)})."
            )
    else:
        if isinstance(names, str) or not isinstance(names, Sequence) or not names:
            raise ArgumentTypeError(
                f"names must be a non-empty list of region names, got {names!r}; the prompt's "
                f"regions are {list(resolved)}."
            )
        unknown = [n for n in names if n not in resolved]
        if unknown:
            raise SelectionError(f"unknown region(s) {unknown}; this prompt has {list(resolved)}.")
        chosen = list(dict.fromkeys(names))
    conditions = {name: RegionKnockout(name, mode) for name in chosen}
    return ablate(model, case, conditions, regions, at=at, top_k=top_k, lens_top_k=lens_top_k)


@torch.no_grad()
def head_means(
    model: Model, cases: Sequence[Any], positions: Sequence[int] | None = None
) -> np.ndarray:
    """See `Model.head_means`."""
    from .model import as_case

    if isinstance(cases, (str, dict)) or not isinstance(cases, Sequence) or not cases:
        raise ArgumentTypeError(
            "cases must be a non-empty list of cases (tw.Case, str or dict); wrap one case in a "
            "list."
        )
    batches = []
    for case in cases:
        ids = model.render(as_case(case)).token_ids
        picked = None
        if positions is not None:
            n = len(ids)
            bad = [p for p in positions if not -n <= p < n]
            if bad:
                raise SelectionError(
                    f"positions {bad} lie outside a prompt of {n} tokens; use 0..{n - 1}."
                )
            picked = np.array([p % n for p in positions], dtype=np.int64)
        batches.append((torch.as_tensor(ids, device=model.device)[None], picked))
    return head_output_means(
        model.hf_model, model.arch, model.shape.n_heads, batches, model._forward_kwargs
    )


def _attention_outputs(model: Model, ids: torch.Tensor, t: int, plan: Plan | None) -> np.ndarray:
    """(layer, hidden) float32 attention outputs (after the output projection)
    at position `t` of one forward pass under `plan`."""
    from .capture import capturing
    from .hooks import Hooks

    positions = torch.tensor([[t]], device=model.device)
    with (
        Hooks(model) as hooks,
        intervening(model.hf_model, model.arch, plan, model.shape.n_heads) as edit,
        capturing(model.hf_model, model.arch, positions, keep_rows=False, edit=edit),
    ):
        hooks.record("attn_output")
        model.hf_model(input_ids=ids, **model._forward_kwargs)
    layers = range(model.shape.n_layers)
    return torch.stack(
        [hooks.values[("attn_output", i)][0, t].float().cpu() for i in layers]
    ).numpy()


@torch.no_grad()
def prev_token_test(
    model: Model,
    texts: Sequence[str],
    head: tuple[int, int],
    value_heads: Sequence[int] | None = None,
    n: int = 100,
    offsets: Sequence[int] = range(1, 9),
    seed: int = 0,
    progress: bool = True,
) -> PrevTokenTest:
    """See `Model.prev_token_test`."""
    from .model import _count_progress

    shape = model.shape
    if (
        not isinstance(head, (tuple, list))
        or len(head) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in head)
    ):
        raise ArgumentTypeError(f"head must be a (layer, head) pair of ints, got {head!r}.")
    layer, index = int(head[0]), int(head[1])
    condition = Condition("A", (HeadAblation(layer, index),))
    check_against_model(condition, shape.n_layers, shape.n_heads, [])
    heads = None if value_heads is None else tuple(int(h) for h in value_heads)
    offs = tuple(sorted({int(k) for k in offsets}))
    if not offs or offs[0] < 1:
        raise ArgumentError(f"offsets must be positive ints (k in t-k), got {list(offsets)!r}.")
    check_against_model(
        Condition("B", (ValueAblation(layer, "t-1", heads=heads),)),
        shape.n_layers,
        shape.n_heads,
        [],
    )
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise ArgumentTypeError("texts must be a non-empty list of str.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ArgumentError(f"n must be an int >= 1 (how many positions to test), got {n!r}.")
    encoded = [list(model.tokenizer(text)["input_ids"]) for text in texts]
    short = [i for i, ids in enumerate(encoded) if len(ids) <= offs[-1]]
    if len(short) == len(encoded):
        raise ArgumentError(
            f"Every text is at most {offs[-1]} tokens long; the test needs a position t with "
            f"t - {offs[-1]} >= 0. Give longer texts or smaller offsets."
        )
    usable = [ids for ids in encoded if len(ids) > offs[-1]]
    rng = np.random.default_rng(seed)
    keys = ("base", "A", "B", "A+B")
    collected: dict[str, list] = {key: [] for key in keys}
    positions = []
    with _count_progress(progress, n, "prev-token test") as advance:
        for i in range(n):
            ids = usable[i % len(usable)]
            t = int(rng.integers(offs[-1], len(ids)))
            positions.append(t)
            tensor = torch.as_tensor(ids, device=model.device)[None]

            def plan(*items: Any, t: int = t, n_tokens: int = len(ids)) -> Plan:
                return plan_condition(Condition("c", items), t, n_tokens, shape.n_layers, {})

            ablate_head = HeadAblation(layer, index, "t")
            collected["base"].append(_attention_outputs(model, tensor, t, None))
            collected["A"].append(_attention_outputs(model, tensor, t, plan(ablate_head)))
            b_rows, ab_rows = [], []
            for k in offs:
                values = ValueAblation(layer, f"t-{k}", heads=heads)
                b_rows.append(_attention_outputs(model, tensor, t, plan(values)))
                ab_rows.append(_attention_outputs(model, tensor, t, plan(ablate_head, values)))
            collected["B"].append(np.stack(b_rows))
            collected["A+B"].append(np.stack(ab_rows))
            advance(1)
    outputs = {
        "base": np.stack(collected["base"]),
        "A": np.stack(collected["A"]),
        "B": np.stack(collected["B"], axis=1),  # (offset, text, layer, hidden)
        "A+B": np.stack(collected["A+B"], axis=1),
    }
    return PrevTokenTest(
        layer=layer,
        head=index,
        value_heads=heads,
        offsets=offs,
        positions=np.asarray(positions, dtype=np.int64),
        outputs=outputs,
        model_info=model.info(),
    )
