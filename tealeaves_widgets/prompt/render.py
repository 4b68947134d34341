"""Rendering a case: from roles and text to tokens with character offsets.

`render_case` turns a `Case` into the exact text the model reads,
using the tokenizer's chat template, and tokenizes that text with character
offsets, so every token can be traced back to the characters it came from.

Rendering decisions:

- No response (None or ""): the prompt ends with the template's generation
  prompt, so the last position predicts the first token of the answer.
- A response is a prefilled, unfinished assistant turn: it is rendered with
  `continue_final_message=True`, so no end-of-turn token closes it and the
  last position predicts how the response continues.
- A model whose template has no system role (it raises, or drops the system
  text) gets the system text merged into the first user turn as
  `system + "\\n\\n" + user`; `sections` still points at each part.
- A tokenizer without a chat template gets the plain layout: the message
  contents joined by blank lines, `"{system}\\n\\n{user}\\n\\n{response}"`,
  preceded by the BOS token when the tokenizer adds one by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ChatTemplateError
from .case import Case

LAYOUTS = ("chat_template", "chat_template_merged_system", "plain")
MERGE_SEPARATOR = "\n\n"
"""Joins the system text to the first user turn when the template has no system role."""
PLAIN_SEPARATOR = "\n\n"
"""Joins the message contents in the plain layout."""

_PROBE_SYSTEM = "TEALEAVES_SYSTEM_PROBE_7f3a"


# ---------------------------------------------------------------- RenderedPrompt


@dataclass(frozen=True)
class RenderedPrompt:
    """The exact text a model reads for a case, its tokens and where each message lies."""

    text: str
    """The rendered prompt (chat template applied, or the plain layout)."""
    token_ids: NDArray[np.int64]
    """(pos,) token ids fed to the model."""
    offsets: NDArray[np.int64]
    """(pos, 2) half-open character span [start, end) of each token in `text`.
    Starts and ends never decrease. A token that adds no text (a BOS token put in
    front) has (0, 0). When byte-level BPE splits one character (an emoji, a CJK
    character) over several tokens, each of them spans that whole character, so
    neighbouring spans may overlap."""
    tokens: tuple[str, ...]
    """(pos,) `text[start:end]` of each token."""
    sections: dict[str, tuple[int, int]]
    """Message name -> half-open character span [start, end) of its content in
    `text`, in text order. Names: "system", "user" (the last user message),
    "response" (the final assistant message, when the case has a response), and
    `f"turn{i}_{role}"` for the other messages (i = index in `Case.to_messages()`).
    With a merged system prompt, "system" and the user turn it was merged into are
    sub-spans of that one rendered message."""
    layout: str
    """"chat_template", "chat_template_merged_system" or "plain"."""
    messages: tuple[dict, ...]
    """The messages as rendered (after merging the system prompt, if it was)."""


def render_case(case: Case, tokenizer: Any, *, system_role: bool | None = None) -> RenderedPrompt:
    """Render `case` with `tokenizer`'s chat template and tokenize it with offsets.

    `system_role=None` detects whether the template has a system role; pass True
    or False to skip the detection.
    """
    if not isinstance(case, Case):
        raise ChatTemplateError(
            f"render_case expects a Case, got {type(case).__name__}. Wrap the text as "
            'Case(system="...", user="...").'
        )
    _require_fast(tokenizer)
    messages = case.to_messages()
    names = _section_names(messages)
    if not getattr(tokenizer, "chat_template", None):
        text, spans, bos = _render_plain(messages, tokenizer)
        rendered, layout = messages, "plain"
    else:
        rendered, names, n_system, layout = _apply_system_role(
            messages, names, tokenizer, system_role
        )
        text, spans, leads = _render_template(rendered, tokenizer)
        if n_system is not None:
            spans = _split_merged(spans, leads[0], n_system)
        bos = None
    token_ids, offsets = _tokenize(text, tokenizer, bos)
    sections = dict(sorted(zip(names, spans, strict=True), key=lambda item: item[1]))
    return RenderedPrompt(
        text=text,
        token_ids=token_ids,
        offsets=offsets,
        tokens=tuple(text[start:end] for start, end in offsets.tolist()),
        sections=sections,
        layout=layout,
        messages=tuple(rendered),
    )


def _require_fast(tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ChatTemplateError(
            f"render_case needs a fast (Rust) tokenizer for character offsets, got "
            f"{type(tokenizer).__name__}. Load it with AutoTokenizer.from_pretrained(..., "
            "use_fast=True) or pass the model's tokenizer.json."
        )


def _section_names(messages: list[dict]) -> list[str]:
    """Section name of each message (see `RenderedPrompt.sections`)."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    names = []
    for i, message in enumerate(messages):
        if i == 0 and message["role"] == "system":
            names.append("system")
        elif i == last_user:
            names.append("user")
        elif i == len(messages) - 1 and message["role"] == "assistant":
            names.append("response")
        else:
            names.append(f"turn{i}_{message['role']}")
    return names


# ---------------------------------------------------------------- chat template


def _apply_chat_template(tokenizer: Any, messages: list[dict]) -> str:
    """The template applied to `messages`; a final assistant message is continued."""
    has_response = bool(messages) and messages[-1]["role"] == "assistant"
    try:
        return tokenizer.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=not has_response,
            continue_final_message=has_response,
        )
    except Exception as error:  # jinja raises whatever the template author chose
        roles = [m["role"] for m in messages]
        raise ChatTemplateError(
            f"The chat template could not render messages with roles {roles}: {error}. "
            "Check that the roles are ones this model's template accepts (many require "
            "user/assistant alternation)."
        ) from error


def has_system_role(tokenizer: Any) -> bool:
    """Whether the chat template renders a system message's text (False if it raises)."""
    probe = [{"role": "system", "content": _PROBE_SYSTEM}, {"role": "user", "content": "Hi"}]
    try:
        text = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    except Exception:  # the template refuses system messages
        return False
    return _PROBE_SYSTEM in text


def _apply_system_role(
    messages: list[dict], names: list[str], tokenizer: Any, system_role: bool | None
) -> tuple[list[dict], list[str], int | None, str]:
    """Merge the system message into the first user turn if the template has no system role.

    Returns the messages to render, their section names (the merged message
    counts twice: "system" and its user name), the length of the system text
    when it was merged in front of a user turn (else None), and the layout.
    """
    if not messages or messages[0]["role"] != "system":
        return messages, names, None, "chat_template"
    if system_role is None:
        system_role = has_system_role(tokenizer)
    if system_role:
        return messages, names, None, "chat_template"
    system, rest = messages[0]["content"], messages[1:]
    if rest and rest[0]["role"] == "user":
        merged = {"role": "user", "content": system + MERGE_SEPARATOR + rest[0]["content"]}
        return [merged, *rest[1:]], names, len(system), "chat_template_merged_system"
    # No user turn follows: the system text becomes a user turn of its own.
    merged = {"role": "user", "content": system}
    return [merged, *rest], names, None, "chat_template_merged_system"


def _split_merged(spans: list[tuple[int, int]], lead: int, n_system: int) -> list[tuple[int, int]]:
    """Replace the merged first message's span by its system and user sub-spans.

    Character j of the merged content sits at `start + j - lead` in the text,
    where `lead` leading characters were trimmed by the template.
    """
    start, end = spans[0]
    origin = start - lead

    def clip(j: int) -> int:
        return min(max(origin + j, start), end)

    system = (clip(0), clip(n_system))
    user = (clip(n_system + len(MERGE_SEPARATOR)), end)
    return [system, user, *spans[1:]]


def _render_template(
    messages: list[dict], tokenizer: Any
) -> tuple[str, list[tuple[int, int]], list[int]]:
    """Render `messages` and find each content's character span in the text.

    The messages are rendered a second time with a placeholder for each content;
    the template text between placeholders tells where each content must start,
    so a short content ("a", "user") is not found inside the template's own text.
    Also returns, per message, how many leading characters the template trimmed.
    """
    text = _apply_chat_template(tokenizer, messages)
    pieces = _template_pieces(messages, tokenizer)
    spans, leads, cursor = [], [], 0
    for i, message in enumerate(messages):
        hint = cursor + len(pieces[i]) if pieces is not None else None
        start, end, lead = _locate(message["content"], text, cursor, hint, i)
        spans.append((start, end))
        leads.append(lead)
        cursor = end
    return text, spans, leads


def _placeholder(i: int) -> str:
    return f"\ue000TEALEAVES{i}\ue001"


def _template_pieces(messages: list[dict], tokenizer: Any) -> list[str] | None:
    """The template text before each message content, or None if it cannot be told."""
    probe = [{"role": m["role"], "content": _placeholder(i)} for i, m in enumerate(messages)]
    try:
        text = _apply_chat_template(tokenizer, probe)
    except ChatTemplateError:
        return None
    pieces, cursor = [], 0
    for i in range(len(messages)):
        at = text.find(_placeholder(i), cursor)
        if at < 0:
            return None
        pieces.append(text[cursor:at])
        cursor = at + len(_placeholder(i))
    return pieces


def _locate(content: str, text: str, cursor: int, hint: int | None, i: int) -> tuple[int, int, int]:
    """Span of `content` in `text` (at `hint`, else the first from `cursor`) and
    the number of leading characters the template trimmed off it.

    A template that trims the content is matched by the stripped content, and
    the span covers only the characters that are in `text`.
    """
    stripped = content.strip()
    lead = len(content) - len(content.lstrip())
    candidates = ((content, 0), (stripped, lead))
    for candidate, skipped in candidates:
        if hint is not None and text.startswith(candidate, hint):
            return hint, hint + len(candidate), skipped
    for candidate, skipped in candidates:
        at = text.find(candidate, cursor)
        if at >= 0:
            return at, at + len(candidate), skipped
    raise ChatTemplateError(
        f"Message {i}'s content {content[:60]!r} does not appear in the rendered prompt "
        f"after character {cursor}; the chat template changes it beyond trimming "
        f"whitespace. Rendered text near there: {text[cursor : cursor + 60]!r}. Set "
        "tokenizer.chat_template = None (on a copy) to use the plain layout instead."
    )


# ---------------------------------------------------------------- plain layout


def _render_plain(
    messages: list[dict], tokenizer: Any
) -> tuple[str, list[tuple[int, int]], int | None]:
    """Contents joined by blank lines, and the BOS id if the tokenizer adds one."""
    spans, pieces, cursor = [], [], 0
    for i, message in enumerate(messages):
        if i:
            pieces.append(PLAIN_SEPARATOR)
            cursor += len(PLAIN_SEPARATOR)
        pieces.append(message["content"])
        spans.append((cursor, cursor + len(message["content"])))
        cursor += len(message["content"])
    return "".join(pieces), spans, _default_bos(tokenizer)


def _default_bos(tokenizer: Any) -> int | None:
    """The BOS id if the tokenizer puts it in front of a text by default."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    ids = tokenizer("a")["input_ids"]
    return bos if ids and ids[0] == bos else None


# ---------------------------------------------------------------- tokenizing


def _tokenize(
    text: str, tokenizer: Any, bos: int | None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Token ids and cleaned offsets of `text`, with `bos` put in front if given."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(encoded["input_ids"], dtype=np.int64).reshape(-1)
    offsets = np.asarray(encoded["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    if bos is not None:
        ids = np.concatenate([[bos], ids]).astype(np.int64)
        offsets = np.concatenate([[[0, 0]], offsets]).astype(np.int64)
    return ids, _monotone_offsets(offsets, len(text))


def _monotone_offsets(offsets: NDArray[np.int64], n_chars: int) -> NDArray[np.int64]:
    """Clip offsets into the text and make starts and ends non-decreasing."""
    if len(offsets) == 0:
        return offsets.reshape(0, 2)
    clipped = np.clip(offsets, 0, n_chars)
    starts = np.maximum.accumulate(clipped[:, 0])
    ends = np.maximum(np.maximum.accumulate(clipped[:, 1]), starts)
    return np.stack([starts, ends], axis=1).astype(np.int64)
