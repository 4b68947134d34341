"""`Model.fit_head_gates`: Causal Head Gating (arXiv 2505.13737) on a frozen
model; the phases and the taxonomy are described in `core.head_gates`.

The gates multiply each head's slice of the attention output projection's
input (`models.attribution.gated_heads`), so a gate of 1 is the unmodified
model and a gate of 0 is `HeadAblation(layer, head, "all")` (both tested).
The model's parameters are frozen for the fit (requires_grad off, restored
afterwards); only the gate logits theta are optimised, with Adam.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core.head_gates import PHASES, HeadGates
from ..errors import ArgumentError, ArgumentTypeError
from .attribution import gated_heads, target_ids

if TYPE_CHECKING:
    from .model import Model


def _examples(model: Model, texts: Sequence[Any], targets: Sequence[str] | None) -> list[tuple]:
    """(input ids, first target position, target ids) per example: with
    targets, the chat-rendered prompt followed by the target; without, the
    plain text, every token after the first a target."""
    from .model import as_case

    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise ArgumentTypeError("texts must be a non-empty list (of cases or str).")
    if targets is not None and (isinstance(targets, str) or len(targets) != len(texts)):
        raise ArgumentError(
            f"targets must hold one continuation per text ({len(texts)}), or be None (then "
            "every next token of each plain text is the target)."
        )
    out = []
    for i, text in enumerate(texts):
        if targets is None:
            if not isinstance(text, str):
                raise ArgumentTypeError(f"texts[{i}] must be a str when targets is None.")
            ids = list(model.tokenizer(text)["input_ids"])
            if len(ids) < 2:
                raise ArgumentError(f"texts[{i}] has fewer than 2 tokens; nothing to predict.")
            out.append((ids, 1, ids[1:]))
        else:
            prompt = list(model.render(as_case(text)).token_ids)
            target = target_ids(model, targets[i])
            out.append((prompt + target, len(prompt), target))
    return out


def _task_loss(model: Model, examples: list[tuple], gates: torch.Tensor | None) -> torch.Tensor:
    """Mean negative log-likelihood per target token over the examples."""
    total, count = 0.0, 0
    with gated_heads(model, gates):
        for ids, start, target in examples:
            full = torch.as_tensor(ids, device=model.device)[None]
            logits = model.hf_model(input_ids=full, use_cache=False).logits[0]
            rows = torch.log_softmax(logits[start - 1 : start - 1 + len(target)].float(), dim=-1)
            picked = torch.as_tensor(target, device=rows.device)[:, None]
            total = total - rows.gather(1, picked).sum()
            count += len(target)
    return total / count  # type: ignore[return-value]


def _check_steps(steps: object) -> tuple[int, int]:
    if isinstance(steps, int) and not isinstance(steps, bool):
        steps = (steps, steps)
    if (
        not isinstance(steps, (tuple, list))
        or len(steps) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in steps)
    ):
        raise ArgumentError(
            f"steps must be an int >= 1 or a pair (plain, regularised) of them, got {steps!r}."
        )
    return int(steps[0]), int(steps[1])


def fit_head_gates(
    model: Model,
    texts: Sequence[Any],
    targets: Sequence[str] | None = None,
    *,
    steps: int | tuple[int, int] = (100, 100),
    lr: float = 0.1,
    strength: float = 1.0,
    init: float = 3.0,
    threshold: float = 0.5,
    progress: bool = True,
) -> HeadGates:
    """See `Model.fit_head_gates`."""
    from .model import _count_progress

    plain_steps, reg_steps = _check_steps(steps)
    for name, value in (("lr", lr), ("strength", strength)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ArgumentError(f"{name} must be a number > 0, got {value!r}.")
    if not 0 < threshold < 1:
        raise ArgumentError(f"threshold must lie between 0 and 1, got {threshold!r}.")
    examples = _examples(model, texts, targets)
    shape = (model.shape.n_layers, model.shape.n_heads)
    params = list(model.hf_model.parameters())
    frozen = [p.requires_grad for p in params]
    gates: dict[str, np.ndarray] = {}
    losses: dict[str, np.ndarray] = {}
    try:
        for p in params:
            p.requires_grad_(False)
        with torch.no_grad():
            base_loss = float(_task_loss(model, examples, None))

        def fit(theta0: torch.Tensor, n_steps: int, penalty: str | None, advance) -> torch.Tensor:
            theta = theta0.clone().requires_grad_(True)
            optimiser = torch.optim.Adam([theta], lr=lr)
            trace = []
            for _ in range(n_steps):
                optimiser.zero_grad()
                with torch.enable_grad():
                    g = torch.sigmoid(theta)
                    task = _task_loss(model, examples, g)
                    loss = task
                    if penalty == "retention":
                        loss = task + strength * (1 - g).mean()
                    elif penalty == "removal":
                        loss = task + strength * g.mean()
                    loss.backward()
                optimiser.step()
                trace.append(float(task.detach()))
                advance(1)
            losses[penalty or "plain"] = np.asarray(trace)
            return theta.detach()

        total = plain_steps + 2 * reg_steps
        with _count_progress(progress, total, "head gates") as advance:
            theta = fit(torch.full(shape, float(init)), plain_steps, None, advance)
            gates["plain"] = torch.sigmoid(theta).double().numpy()
            for phase in ("retention", "removal"):
                fitted = fit(theta, reg_steps, phase, advance)
                gates[phase] = torch.sigmoid(fitted).double().numpy()
    finally:
        for p, flag in zip(params, frozen, strict=True):
            p.requires_grad_(flag)
    assert set(gates) == set(PHASES)
    return HeadGates(
        gates=gates,
        losses=losses,
        base_loss=base_loss,
        strength=float(strength),
        threshold=float(threshold),
        model_info=model.info(),
    )
