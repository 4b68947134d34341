"""What the user typed: `Case` (system, user and response text, or chat
messages) and `load_cases` (a conversations file -> a list of cases)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ChatTemplateError, InputFileError
from .checks import brief, check_encodable, read_json_file

CASE_KEYS = ("system", "user", "response", "messages", "name")
"""The fields of a case dict (`Case.to_dict`, a conversations file entry)."""
ROLES = ("system", "user", "assistant")
"""Roles a chat message may have."""


@dataclass(frozen=True)
class Case:
    """One prompt as the user typed it: role fields, or a list of messages.

    Give either `messages` or the role fields (`system`, `user`, `response`),
    not both. A non-empty `response` (or a final assistant message) is a
    prefilled answer the model continues; without one the prompt ends with the
    generation prompt.
    """

    system: str | None = None
    """System prompt, or None for the template's default (if it has one)."""
    user: str | None = None
    """The user message."""
    response: str | None = None
    """Start of the assistant's answer; None or "" means the model answers from scratch."""
    messages: Sequence[dict] | None = None
    """Chat messages `{"role", "content"}`, for multi-turn cases: a list or tuple,
    kept as a tuple of plain dicts."""
    name: str | None = None
    """Optional label for the case."""

    def __post_init__(self) -> None:
        for key in ("system", "user", "response", "name"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise ChatTemplateError(
                    f"Case.{key} must be a string or None, got {type(value).__name__} "
                    f"{brief(value)}. Pass the text as a str."
                )
            if value is not None:
                check_encodable(value, f"Case.{key}", ChatTemplateError)
        if self.messages is None:
            if self.system is None and self.user is None:
                raise ChatTemplateError(
                    "A Case needs a user message (or `messages`), got neither. "
                    'Pass e.g. Case(user="...") or Case(messages=[{"role": "user", ...}]).'
                )
            return
        if any(getattr(self, key) is not None for key in ("system", "user", "response")):
            raise ChatTemplateError(
                "A Case takes either `messages` or the role fields (system, user, "
                "response), got both. Put the system/user/response text into `messages`, "
                "or drop `messages`."
            )
        object.__setattr__(self, "messages", _checked_messages(self.messages))

    @property
    def has_response(self) -> bool:
        """True when the case ends with a non-empty assistant message to continue."""
        messages = self.to_messages()
        return bool(messages) and messages[-1]["role"] == "assistant"

    def to_messages(self) -> list[dict]:
        """The chat messages of this case, `[{"role", "content"}, ...]`.

        An empty final assistant message is left out: like an empty `response`,
        it means the model answers from scratch.
        """
        if self.messages is not None:
            messages = [dict(message) for message in self.messages]
        else:
            messages = [
                {"role": role, "content": text}
                for role, text in (
                    ("system", self.system),
                    ("user", self.user),
                    ("assistant", self.response),
                )
                if text is not None
            ]
        if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
            messages.pop()
        return messages

    def to_dict(self) -> dict:
        """JSON-ready dict of the fields that are set; `Case.from_dict` inverts it."""
        out: dict[str, Any] = {}
        for key in CASE_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = [dict(m) for m in value] if key == "messages" else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Case:
        """Rebuild a case saved with `to_dict`."""
        if not isinstance(data, Mapping):
            raise ChatTemplateError(
                f"Case.from_dict expects a dict, got {type(data).__name__}. "
                "Pass the dict that Case.to_dict() produced."
            )
        unknown = sorted(set(data) - set(CASE_KEYS))
        if unknown:
            raise ChatTemplateError(
                f"Unknown Case key(s) {unknown}; allowed keys are {list(CASE_KEYS)}."
            )
        return cls(**dict(data))


def _checked_messages(messages: Any) -> tuple[dict, ...]:
    """Validate chat messages and copy them into a tuple of plain dicts."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise ChatTemplateError(
            f"Case.messages must be a list of {{'role', 'content'}} dicts, got "
            f"{type(messages).__name__}."
        )
    if not messages:
        raise ChatTemplateError("Case.messages is empty; give at least one user message.")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or set(message) != {"role", "content"}:
            keys = sorted(message) if isinstance(message, Mapping) else type(message).__name__
            raise ChatTemplateError(
                f"Case.messages[{i}] must be a dict with exactly the keys 'role' and "
                f"'content', got {keys}. Other keys are not rendered, so they are refused "
                "rather than silently dropped."
            )
        role, content = message["role"], message["content"]
        if role not in ROLES or not isinstance(content, str):
            raise ChatTemplateError(
                f"Case.messages[{i}] needs a role in {list(ROLES)} and a str content, got "
                f"role={role!r}, content of type {type(content).__name__}."
            )
        check_encodable(content, f"Case.messages[{i}].content", ChatTemplateError)
        checked.append({"role": role, "content": content})
    return tuple(checked)


def load_cases(path: str | Path) -> list[Case]:
    """Read a conversations file (TeaLeaves' `conversations.json`) into cases.

    The file holds a JSON list, or an object whose "conversations" key holds
    one. Each entry is a case dict (`system`, `user`, `response`, `messages`,
    `name`; `id` is taken as the name) or a bare list of chat messages.
    """
    path = Path(path)
    data = read_json_file(path, "conversations file", InputFileError, "Fix the file.")
    if isinstance(data, Mapping) and "conversations" in data:
        data = data["conversations"]
    if not isinstance(data, list) or not data:
        raise InputFileError(
            f'{path} must hold a non-empty JSON list of cases (or {{"conversations": [...]}}), '
            f"got {type(data).__name__}."
        )
    return [_case_from_entry(entry, f"{path}[{i}]") for i, entry in enumerate(data)]


def _case_from_entry(entry: object, where: str) -> Case:
    try:
        if isinstance(entry, list):
            return Case(messages=entry)
        if isinstance(entry, Mapping):
            entry = dict(entry)
            if "id" in entry:
                label = entry.pop("id")
                entry.setdefault("name", str(label))
            return Case.from_dict(entry)
    except ChatTemplateError as error:
        raise ChatTemplateError(f"{where}: {error}") from error
    raise ChatTemplateError(
        f"{where} must be a case object or a list of messages, got {type(entry).__name__}."
    )
