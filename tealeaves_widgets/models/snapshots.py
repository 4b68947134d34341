"""`Model.conversation_snapshots`: residual states at the end of each message
(`core.states`), read through the named sites of `models.hooks`.

readout="message_end": the state at the last token of the conversation
rendered up to and including the message (no generation prompt). When each
such prefix is a token prefix of the whole conversation (checked, message by
message), every message is read from ONE pass of the whole conversation;
otherwise (templates that rewrite history, such as Qwen3's, which drops
earlier reasoning) one pass per prefix. readout="gen_prompt": as Activation
Lab, each prefix rendered with the generation prompt, read at its last
token: from one pass of the whole conversation, whose KV cache, cut at each
message's end, serves that prefix's few generation-prompt tokens (checked;
else one pass per prefix).

`Model.conversation_scan`: one captured run per message prefix (Activation
Lab's `run_at_each_message`), through `Model.capture_many`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core.runset import RunSet
from ..core.states import READOUTS, SOURCES, Snapshots
from ..errors import ArgumentError, ArgumentTypeError, ChatTemplateError
from ..prompt.case import Case
from .residuals import read_states

if TYPE_CHECKING:
    from .model import Model

ROLES = ("system", "user", "assistant")


def check_messages(messages: object, what: str = "messages") -> list[dict]:
    """A non-empty list of {"role", "content"} with known roles, or a clear error."""
    if isinstance(messages, (str, Mapping)) or not isinstance(messages, Sequence):
        raise ArgumentTypeError(
            f'{what} must be a list of {{"role", "content"}} dicts, got {type(messages).__name__}.'
        )
    if not messages:
        raise ArgumentError(f"{what} is empty; give at least one message.")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or set(message) - {"role", "content"}:
            raise ArgumentTypeError(
                f'{what}[{i}] must be a dict with the keys "role" and "content", got {message!r}.'
            )
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ArgumentError(
                f"{what}[{i}] has the unknown role {role!r}; use one of {list(ROLES)}."
            )
        if not isinstance(content, str):
            raise ArgumentTypeError(f"{what}[{i}]['content'] must be a str, got {content!r}.")
        out.append({"role": role, "content": content})
    return out


def _ids(model: Model, messages: list[dict], generation_prompt: bool) -> list[int]:
    try:
        ids = model.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=generation_prompt
        )
    except Exception as error:  # jinja raises whatever the template author chose
        roles = [m["role"] for m in messages]
        raise ChatTemplateError(
            f"The chat template could not render messages with roles {roles}: {error}."
        ) from error
    if isinstance(ids, Mapping):  # newer tokenizers return a BatchEncoding
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def _states_at(
    model: Model, ids: list[int], positions: list[int], sources: list[str], **forward: Any
) -> dict[str, np.ndarray]:
    """Source -> (position, layer, hidden) float32 states from one pass
    (`residuals.read_states`, its module sources)."""
    states = read_states(model, ids, positions, sources, forward)
    return {source: value.astype(np.float32) for source, value in states.items()}


@torch.no_grad()
def _gen_prompt_on_cache(
    model: Model, messages: list[dict], prefixes: list[list[int]], sources: list[str]
) -> dict[str, np.ndarray] | None:
    """The "gen_prompt" states from ONE pass of the whole conversation and its
    KV cache: prefix i rendered with the generation prompt is (checked) the
    conversation's tokens up to the end of message i followed by a few
    template tokens, which run alone on the cache cut there
    (`shared_prefix.shared_cache`: views, nothing stored). None when a prefix
    is not so, or the model fills another cache layout: then one pass per
    prefix. Equal to one pass per prefix up to float noise
    (tests/integration/test_snapshots.py)."""
    from .query import KeptCache, cache_keyword, keep, new_cache
    from .shared_prefix import shared_cache

    full = _ids(model, messages, False)
    cuts = []
    for i, prefix in enumerate(prefixes):
        end = _ids(model, messages[: i + 1], False)
        cut = len(end)
        if full[:cut] != end or prefix[:cut] != end:
            return None
        cuts.append(cut)
    cache = new_cache()
    # the states where a prefix needs no suffix, and the conversation's cache
    whole = _states_at(
        model,
        full,
        [c - 1 for c in cuts],
        sources,
        use_cache=True,
        **{cache_keyword(model.hf_model): cache},
    )
    kept = keep(cache, np.asarray(full, dtype=np.int64), model.shape.n_layers)
    if kept is None:
        return None
    out: dict[str, list[np.ndarray]] = {s: [] for s in sources}
    for i, (prefix, cut) in enumerate(zip(prefixes, cuts, strict=True)):
        suffix = prefix[cut:]
        if not suffix:  # the prefix ends at the message's end: read from the whole pass
            for s in sources:
                out[s].append(whole[s][i])
            continue
        cut_cache = KeptCache(
            token_ids=kept.token_ids[:cut],
            layers=tuple((k[:, :, :cut], v[:, :, :cut]) for k, v in kept.layers),
        )
        tail = _states_at(
            model,
            suffix,
            [len(suffix) - 1],
            sources,
            use_cache=True,
            position_ids=torch.arange(cut, cut + len(suffix), device=model.device)[None],
            **{cache_keyword(model.hf_model): shared_cache(cut_cache, 1)},
        )
        for s in sources:
            out[s].append(tail[s][0])
    return {s: np.stack(v) for s, v in out.items()}


def _read(
    model: Model, messages: list[dict], readout: str, sources: list[str], single: bool
) -> tuple[dict[str, np.ndarray], np.ndarray, bool]:
    """States at the end of each message: (source -> (message, layer, hidden),
    positions, whether one pass served)."""
    prefixes = [
        _ids(model, messages[: i + 1], readout == "gen_prompt") for i in range(len(messages))
    ]
    full = prefixes[-1]
    one_pass = (
        single
        and readout == "message_end"
        and all(len(p) <= len(full) and full[: len(p)] == p for p in prefixes)
    )
    positions = np.array([len(p) - 1 for p in prefixes], dtype=np.int64)
    if one_pass:
        return _states_at(model, full, positions.tolist(), sources), positions, True
    if single and readout == "gen_prompt":
        served = _gen_prompt_on_cache(model, messages, prefixes, sources)
        if served is not None:
            return served, positions, False
    parts = [_states_at(model, p, [len(p) - 1], sources) for p in prefixes]
    states = {s: np.concatenate([part[s] for part in parts], axis=0) for s in sources}
    return states, positions, False


def conversation_snapshots(
    model: Model,
    messages: Any,
    references: Any = None,
    readout: str = "message_end",
    sources: Sequence[str] = SOURCES,
    single_pass: bool = True,
) -> Snapshots:
    """See `Model.conversation_snapshots`."""
    checked = check_messages(messages)
    if readout not in READOUTS:
        raise ArgumentError(f"readout must be one of {list(READOUTS)}, got {readout!r}.")
    source_list = [sources] if isinstance(sources, str) else list(sources)
    bad = [s for s in source_list if s not in SOURCES]
    if bad or not source_list:
        raise ArgumentError(
            f"Unknown source(s) {bad or source_list}; the sources are {list(SOURCES)}."
        )
    refs = {} if references is None else references
    if not isinstance(refs, Mapping):
        raise ArgumentTypeError("references must be a dict label -> messages, or None.")
    ref_messages = {}
    for label, conversation in refs.items():
        if not isinstance(label, str) or not label or "/" in label or "\\" in label:
            raise ArgumentError(
                f"Reference label {label!r} must be a non-empty str without a slash (labels "
                "name files when snapshots are saved); e.g. 'calm'."
            )
        ref_messages[label] = check_messages(conversation, f"references[{label!r}]")
    states, positions, one = _read(model, checked, readout, source_list, single_pass)
    ref_states = {}
    for label, conversation in ref_messages.items():
        last = _ids(model, conversation, readout == "gen_prompt")
        read = _states_at(model, last, [len(last) - 1], source_list)
        ref_states[label] = {s: read[s][0] for s in source_list}
    return Snapshots(
        messages=tuple(checked),
        positions=positions,
        states=states,
        references=ref_states,
        readout=readout,
        single_pass=one,
        model_info=model.info(),
    )


def prefix_cases(messages: Any) -> list[Case]:
    """One `Case` per message prefix of `messages` (messages[:1], messages[:2],
    ..., all of them), named "msg<i>of<n> (<role of its last message>)"."""
    checked = check_messages(messages)
    n = len(checked)
    return [
        Case(messages=checked[: i + 1], name=f"msg{i + 1}of{n} ({message['role']})")
        for i, message in enumerate(checked)
    ]


def conversation_scan(model: Model, messages: Any, regions: Any = None, **options: Any) -> RunSet:
    """See `Model.conversation_scan`."""
    return model.capture_many(prefix_cases(messages), regions, **options)
