"""`Model.generate_capture`: generation token by token with the capture on,
so every generated position is a query (`core.generation.Generation`).

Step 0 is the prefill of the rendered prompt, kept in a KV cache; each later
step feeds the previous token on that cache. One `capturing` context spans
every pass, its recorder's query position moved to the new token each step:
the rows are the new position's softmax rows over every key so far (all
layers, all heads), so a step costs a decode step plus (heads x positions)
dot products, and the rows are O(steps x layers x heads x positions) in all,
never O(positions^2).

The next token comes from the raw logits of the last position through
transformers' own temperature, top-k and top-p warpers (in that order, as
`generate` applies them) and, when sampling, `torch.multinomial` on the CPU
with a `torch.Generator` seeded with `seed`: the same seed gives the same
tokens on any device. On the CPU this is the draw `generate` makes after
`torch.manual_seed(seed)` (tests/integration/test_generation.py).

Queries the regions name inside the prompt (before its last token) are read
after the generation with one decode step each on the kept cache
(`models.query.decode_step`), so the regions, which may name spans of the
generated text, are resolved once the text exists.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import LogitsProcessorList
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from ..core.generation import Generation, step_query
from ..core.run import Lens, Run
from ..errors import ArgumentError, ArgumentTypeError, QueryNotFoundError
from ..prompt.regions import RegionSpec
from ..prompt.render import RenderedPrompt
from ..prompt.resolve import resolve_regions, tracked_token_ids
from .capture import capturing
from .lens import read_lens
from .query import cache_keyword, decode_step, keep, new_cache

if TYPE_CHECKING:
    from .model import Model


def check_options(
    max_new_tokens: object,
    do_sample: object,
    temperature: object,
    top_k: object,
    top_p: object,
    seed: object,
    top_k_probs: object,
) -> None:
    """Refuse options `generate_capture` cannot honour, saying what it expects."""

    def whole(name: str, value: object, low: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ArgumentError(f"{name} must be an int >= {low}, got {value!r}.")

    whole("max_new_tokens", max_new_tokens, 1)
    whole("top_k_probs", top_k_probs, 1)
    whole("seed", seed, 0)
    if not isinstance(do_sample, bool):
        raise ArgumentTypeError(f"do_sample must be True or False, got {do_sample!r}.")
    if top_k is not None:
        whole("top_k", top_k, 1)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ArgumentTypeError(f"temperature must be a number, got {temperature!r}.")
    if do_sample and not temperature > 0:
        raise ArgumentError(
            f"Sampling needs temperature > 0, got {temperature!r}; use do_sample=False for "
            "greedy decoding (temperature is then ignored)."
        )
    if top_p is not None and (
        isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1
    ):
        raise ArgumentError(f"top_p must be in (0, 1] or None, got {top_p!r}.")


def warpers(temperature: float, top_k: int | None, top_p: float | None) -> LogitsProcessorList:
    """transformers' sampling warpers, in the order `generate` applies them."""
    out = LogitsProcessorList()
    if temperature != 1.0:
        out.append(TemperatureLogitsWarper(float(temperature)))
    if top_k is not None and top_k > 0:
        out.append(TopKLogitsWarper(top_k=int(top_k), min_tokens_to_keep=1))
    if top_p is not None and top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=float(top_p), min_tokens_to_keep=1))
    return out


def eos_ids(model: Model) -> set[int]:
    """The ids that end a generation: the model's generation config's, else
    the tokenizer's end-of-sequence token."""
    config = getattr(model.hf_model, "generation_config", None)
    value = getattr(config, "eos_token_id", None)
    if value is None:
        value = getattr(model.tokenizer, "eos_token_id", None)
    if value is None:
        return set()
    return {int(v) for v in (value if isinstance(value, (list, tuple)) else [value])}


class _Steps:
    """What the decoding loop collects, step by step (tensors on their device
    until the end)."""

    def __init__(self, n_layers: int, n_heads: int, n_prompt: int, max_new_tokens: int) -> None:
        self.ids: list[int] = []
        self.logits: list[torch.Tensor] = []  # (vocab,) float32, with keep_logits only
        self.readings: list[tuple[torch.Tensor, ...]] = []
        """Per step: (top log-probs (k,), top ids (k,), entropy, argmax log-prob,
        argmax id, chosen log-prob), read from the step's logits at once so the
        (step, vocab) logits are never all held."""
        self.rows = np.zeros(
            (n_layers, n_heads, max_new_tokens, n_prompt + max_new_tokens), np.float32
        )
        """(layer, head, step, pos): written in place each step, so the rows are
        held once (np.zeros takes its pages from the system as they are written)."""
        self.residuals: list[torch.Tensor] = []  # per step: (layer, hidden)

    def heads(self, n_tokens: int) -> np.ndarray:
        """(layer, head, step, pos) rows of the steps taken, cut to `n_tokens`:
        a view of the buffer, no copy."""
        return self.rows[:, :, : len(self.ids), :n_tokens]


@torch.no_grad()
def generate_capture(
    model: Model,
    case: Any,
    regions: Any = None,
    *,
    max_new_tokens: int = 50,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 42,
    top_k_probs: int = 20,
    lens: bool = True,
    lens_top_k: int = 10,
    keep_logits: bool = False,
    progress: bool = False,
) -> Generation:
    """See `Model.generate_capture`."""
    from .model import as_case, check_top_k

    check_options(max_new_tokens, do_sample, temperature, top_k, top_p, seed, top_k_probs)
    lens_top_k = check_top_k(lens_top_k)
    for name, flag in (("lens", lens), ("keep_logits", keep_logits), ("progress", progress)):
        if not isinstance(flag, bool):
            raise ArgumentTypeError(f"{name} must be True or False, got {flag!r}.")
    prompt = model.render(as_case(case))
    spec = RegionSpec() if regions is None else regions
    n_prompt = len(prompt.token_ids)
    limit = model.shape.context_length
    if limit is not None and n_prompt + max_new_tokens > limit:
        raise ArgumentError(
            f"The prompt has {n_prompt} tokens and max_new_tokens={max_new_tokens}, more than "
            f"{model.model_id}'s context of {limit}; lower max_new_tokens to at most "
            f"{limit - n_prompt}."
        )
    steps, cache, seconds = _decode(
        model,
        prompt,
        max_new_tokens,
        (do_sample, temperature, top_k, top_p, seed),
        top_k_probs,
        keep_logits,
        progress,
    )
    full = _with_generated(model, prompt, steps.ids)
    resolved = resolve_regions(full, spec)
    n_steps = len(steps.ids)
    step_positions = n_prompt - 1 + np.arange(n_steps)
    named = resolved.queries if resolved.spec.get("query_positions") else {}
    own = _queries(named, n_prompt, n_steps)
    n_layers, n_heads = model.shape.n_layers, model.shape.n_heads
    n_tokens = len(full.token_ids)
    step_heads = steps.heads(n_tokens)
    if own:  # the named queries first: one more array
        heads = np.zeros((n_layers, n_heads, len(own) + n_steps, n_tokens), np.float32)
        heads[:, :, len(own) :] = step_heads
    else:
        heads = step_heads
    residuals: list[torch.Tensor] = []
    kept = None
    for k, (name, position) in enumerate(own.items()):
        step = position - (n_prompt - 1)
        if step >= 0:  # a generated position: that step's reading
            rows, res = torch.from_numpy(step_heads[:, :, step]), steps.residuals[step]
        else:  # inside the prompt: one decode step on the kept cache
            if kept is None:
                kept = keep(cache, full.token_ids[: n_prompt - 1 + n_steps], n_layers)
            if kept is None:
                raise ArgumentError(
                    f"{type(model.hf_model).__name__} did not fill a plain KV cache, so query "
                    f"{name!r} inside the prompt cannot be read after the generation; name "
                    "queries in the generated text, or capture the prompt with model.capture."
                )
            rows, step_res = decode_step(
                model.hf_model, model.arch, kept, position, model.device, model._forward_kwargs
            )
            res = step_res[:, 0]
        heads[:, :, k, : position + 1] = rows[:, :, : position + 1].numpy()
        residuals.append(res)
    residuals += steps.residuals
    names = [*own, *(step_query(i) for i in range(n_steps))]
    positions = [*own.values(), *step_positions.tolist()]
    started = time.perf_counter()
    tracked_ids, tracked_labels = tracked_token_ids(resolved.tracked_tokens, model.tokenizer)
    stacked = torch.stack([r.to(residuals[0].device) for r in residuals], dim=1)
    run_lens = (
        _read_lens(model, stacked, tracked_ids, tracked_labels, lens_top_k)
        if lens
        else _no_lens(n_layers, len(names), tracked_ids, tracked_labels)
    )
    seconds["lens"] = time.perf_counter() - started if lens else 0.0
    spec_dict = dict(resolved.spec)
    spec_dict["query_positions"] = [
        {"position": int(p), "name": n} for n, p in zip(names, positions, strict=True)
    ]
    case_dict = as_case(case).to_dict()
    run = Run(
        text=full.text,
        tokens=full.tokens,
        token_ids=full.token_ids,
        offsets=full.offsets,
        regions=resolved.regions,
        queries={n: int(p) for n, p in zip(names, positions, strict=True)},
        attention=heads.mean(axis=1),
        attention_heads=heads,
        lens=run_lens,
        model_info=model.info(),
        case=case_dict,
        region_spec=spec_dict,
    )
    return _generation(
        model,
        run,
        steps,
        n_prompt,
        stacked[:, len(own) :],
        seconds,
        options={
            "do_sample": do_sample,
            "temperature": float(temperature),
            "top_k": top_k,
            "top_p": top_p,
            "seed": int(seed),
            "max_new_tokens": int(max_new_tokens),
            "lens": lens,
        },
        keep_logits=keep_logits,
    )


def _decode(
    model: Model,
    prompt: RenderedPrompt,
    max_new_tokens: int,
    sampling: tuple[bool, float, int | None, float | None, int],
    top_k_probs: int,
    keep_logits: bool,
    progress: bool,
) -> tuple[_Steps, Any, dict]:
    """The prefill and decode passes, captured: the chosen ids, the readings
    of the raw logits, the rows and the residuals of each step, and the
    filled cache. `sampling` is (do_sample, temperature, top_k, top_p, seed)."""
    do_sample, temperature, top_k, top_p, seed = sampling
    device = model.device
    hf = model.hf_model
    process = warpers(temperature, top_k, top_p) if do_sample else None
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    stop = eos_ids(model)
    cache = new_cache()
    kwargs = {
        **model._forward_kwargs,
        "use_cache": True,
        cache_keyword(hf): cache,
    }
    if "logits_to_keep" in kwargs:
        kwargs["logits_to_keep"] = 1
    n_prompt = len(prompt.token_ids)
    steps = _Steps(model.shape.n_layers, model.shape.n_heads, n_prompt, max_new_tokens)
    seconds = {"prefill": 0.0, "decode": 0.0}
    input_ids = torch.as_tensor(prompt.token_ids, device=device)[None]
    last = torch.tensor([[n_prompt - 1]], dtype=torch.long, device=device)
    from .model import _count_progress

    with (
        _count_progress(progress, max_new_tokens, "generate", unit="tok") as advance,
        capturing(hf, model.arch, last) as rec,
    ):
        for step in range(max_new_tokens):
            started = time.perf_counter()
            output = hf(input_ids=input_ids, **kwargs)
            logits = output.logits[0, -1].float()
            if keep_logits:
                steps.logits.append(logits.cpu())
            width = n_prompt + step
            for layer, rows in enumerate(rec.all_rows()):
                steps.rows[layer, :, step, :width] = rows[0, :, 0].cpu().numpy()
            res = rec.all_residuals()
            steps.residuals.append(torch.stack([r[0, 0].to(res[0].device) for r in res]))
            if process is None:
                token = int(logits.argmax())
            else:
                # the warpers read only the scores; the ids are passed as their signature asks
                scores = process(input_ids, logits[None].clone())  # type: ignore[arg-type]
                probs = torch.softmax(scores, dim=-1).cpu()
                token = int(torch.multinomial(probs, 1, generator=generator)[0, 0])
            steps.ids.append(token)
            steps.readings.append(_reading(logits, token, top_k_probs))
            seconds["prefill" if step == 0 else "decode"] += time.perf_counter() - started
            advance(1)
            if token in stop:
                break
            input_ids = torch.tensor([[token]], dtype=torch.long, device=device)
            # the new token is the only query of the next pass: position 0 of its q block
            rec.query_positions = torch.zeros((1, 1), dtype=torch.long, device=device)
    return steps, cache, seconds


def _reading(logits: torch.Tensor, token: int, k: int) -> tuple[torch.Tensor, ...]:
    """One step's readings of its (vocab,) raw logits, on the CPU: top-k
    log-probs and ids, entropy, argmax log-prob and id, the chosen token's log-prob."""
    logp = torch.log_softmax(logits, dim=-1)
    top_logp, top_ids = logp.topk(min(k, logp.shape[-1]))
    entropy = -(logp.exp() * logp).nan_to_num(0.0).sum()
    argmax_logp, argmax = logp.max(dim=-1)
    parts = (top_logp, top_ids, entropy, argmax_logp, argmax, logp[token])
    return tuple(part.cpu() for part in parts)


def _with_generated(model: Model, prompt: RenderedPrompt, ids: list[int]) -> RenderedPrompt:
    """The prompt followed by the generated tokens, with offsets into the
    joined text and a "response" section over the generated text (an end of
    sequence token left out of it)."""
    tokenizer = model.tokenizer
    generated = tokenizer.decode(ids, skip_special_tokens=False)
    base = len(prompt.text)
    offsets, tokens, end = [], [], 0
    for i in range(len(ids)):
        upto = tokenizer.decode(ids[: i + 1], skip_special_tokens=False)
        reach = _common_prefix(upto, generated)
        # a token that ends inside a multi-byte character adds no text yet
        offsets.append((base + end, base + max(end, reach)))
        tokens.append(generated[end : max(end, reach)])
        end = max(end, reach)
    stop = eos_ids(model)
    text_end = offsets[-1][0] if ids and ids[-1] in stop else base + len(generated)
    sections = dict(prompt.sections)
    start = sections["response"][0] if "response" in sections else base
    sections.pop("response", None)
    sections["response"] = (start, text_end)
    return RenderedPrompt(
        text=prompt.text + generated,
        token_ids=np.concatenate([prompt.token_ids, np.asarray(ids, dtype=np.int64)]),
        offsets=np.concatenate(
            [prompt.offsets, np.asarray(offsets, dtype=np.int64).reshape(-1, 2)]
        ),
        tokens=(*prompt.tokens, *tokens),
        sections=sections,
        layout=prompt.layout,
        messages=prompt.messages,
    )


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _queries(resolved: dict[str, int], n_prompt: int, n_steps: int) -> dict[str, int]:
    """The queries the spec names, checked (a spec that names none has none:
    its default "final" is the last generated token, which nothing was
    computed from). A query on a generated position reads that step."""
    last_query = n_prompt - 2 + n_steps  # the last position fed to the model
    own = {}
    for name, position in resolved.items():
        if name.startswith("step:"):
            raise QueryNotFoundError(
                f"Query names starting with 'step:' name generation steps; rename {name!r}."
            )
        if position > last_query:
            raise QueryNotFoundError(
                f"Query {name!r} is at position {position}, the last generated token: nothing "
                f"was computed from it. Positions {n_prompt - 1}..{last_query} are the step "
                f"queries step:0..step:{n_steps - 1}."
            )
        own[name] = position
    return own


def _read_lens(
    model: Model,
    residuals: torch.Tensor,
    tracked_ids: np.ndarray,
    tracked_labels: tuple[str, ...],
    top_k: int,
) -> Lens:
    arrays = read_lens(
        residuals,
        model.final_norm,
        model.unembedding,
        model.shape.final_logit_softcap,
        tracked_ids,
        top_k,
    )
    ids = sorted(set(arrays.top_ids.ravel().tolist()) | set(tracked_ids.tolist()))
    return Lens(
        top_ids=arrays.top_ids,
        top_probs=arrays.top_probs,
        entropy=arrays.entropy,
        kl_to_final=arrays.kl_to_final,
        tracked_ids=tracked_ids,
        tracked_tokens=tracked_labels,
        tracked_ranks=arrays.tracked_ranks,
        tracked_probs=arrays.tracked_probs,
        vocab={i: model.tokenizer.decode([i]) for i in ids},
    )


def _no_lens(
    n_layers: int, n_queries: int, tracked_ids: np.ndarray, tracked_labels: tuple[str, ...]
) -> Lens:
    """A lens that was not read (lens=False): no top tokens, NaN entropy and KL."""
    per_query = (n_layers, n_queries)
    n_tracked = len(tracked_ids)
    return Lens(
        top_ids=np.zeros((*per_query, 0), dtype=np.int64),
        top_probs=np.zeros((*per_query, 0), dtype=np.float32),
        entropy=np.full(per_query, np.nan, dtype=np.float32),
        kl_to_final=np.full(per_query, np.nan, dtype=np.float32),
        tracked_ids=tracked_ids,
        tracked_tokens=tracked_labels,
        tracked_ranks=np.zeros((*per_query, n_tracked), dtype=np.int64),
        tracked_probs=np.full((*per_query, n_tracked), np.nan, dtype=np.float32),
    )


def _generation(
    model: Model,
    run: Run,
    steps: _Steps,
    n_prompt: int,
    states: torch.Tensor,
    seconds: dict,
    options: dict,
    keep_logits: bool,
) -> Generation:
    """The per-step readings of the raw logits, as a `Generation`."""
    top_logp, top_ids, entropy, argmax_logp, argmax, chosen = (
        torch.stack([r[i] for r in steps.readings]) for i in range(6)
    )
    ids = torch.as_tensor(steps.ids, dtype=torch.long)
    seen = set(top_ids.ravel().tolist()) | set(steps.ids) | set(argmax.tolist())
    vocab = {**run.lens.vocab, **{i: model.tokenizer.decode([i]) for i in sorted(seen)}}
    stop = eos_ids(model)
    reason = "eos" if steps.ids and steps.ids[-1] in stop else "max_new_tokens"
    return Generation(
        run=run,
        prompt_length=n_prompt,
        token_ids=ids.numpy().astype(np.int64),
        tokens=tuple(model.tokenizer.decode([i]) for i in steps.ids),
        logprobs=chosen.numpy().astype(np.float32),
        argmax_ids=argmax.numpy().astype(np.int64),
        argmax_logprobs=argmax_logp.numpy().astype(np.float32),
        top_ids=top_ids.numpy().astype(np.int64),
        top_logprobs=top_logp.numpy().astype(np.float32),
        entropy=entropy.numpy().astype(np.float32),
        vocab=vocab,
        stop_reason=reason,
        options=options,
        states=states.float().cpu().numpy(),
        logits=torch.stack(steps.logits).numpy() if keep_logits else None,
        seconds={key: round(value, 6) for key, value in seconds.items() if math.isfinite(value)},
    )
