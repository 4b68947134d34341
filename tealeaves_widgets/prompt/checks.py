"""Checks shared by what a user hands the prompt layer: JSON files, lists
where a list is expected, text a tokenizer can encode, and short quotes of
bad values in messages (safe for values nested however deeply)."""

from __future__ import annotations

import json
import reprlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import TealeavesError

_QUOTER = reprlib.Repr()
_QUOTER.maxlevel, _QUOTER.maxstring, _QUOTER.maxother = 3, 60, 60
_QUOTER.maxlist = _QUOTER.maxtuple = _QUOTER.maxdict = 6


def brief(value: Any) -> str:
    """A short repr of `value` for a message: nesting and length cut, so a
    deeply nested or huge value cannot blow up the message (or the stack)."""
    return _QUOTER.repr(value)


def read_json_file(path: Path, what: str, error: type[TealeavesError], remedy: str) -> Any:
    """The parsed JSON file at `path`, or `error` naming the file and saying what
    is wrong: unreadable, not UTF-8, not JSON, or nested too deeply to parse.

    `tealeaves_widgets.io.versioned.parse_json` does the same for the files
    this package writes; the prompt layer sits below `io` and cannot call it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as caught:
        raise error(
            f"Cannot read the {what} {str(path)!r}: {caught.strerror or caught}. Check the path."
        ) from caught
    except UnicodeDecodeError as caught:
        raise error(
            f"The {what} {path} is not UTF-8 text ({caught.reason} at byte {caught.start}). "
            "Save it as UTF-8."
        ) from caught
    try:
        return json.loads(text)
    except json.JSONDecodeError as caught:
        raise error(
            f"{path} is not valid JSON: {caught.msg} at line {caught.lineno}, column "
            f"{caught.colno}. {remedy}"
        ) from caught
    except RecursionError as caught:
        raise error(
            f"The {what} {path} is nested too deeply to read as JSON (arrays or objects "
            "inside each other thousands of levels deep). Expected a regions/cases "
            f"structure a few levels deep; check how the file was generated. {remedy}"
        ) from caught


def as_items(value: Any, what: str, example: str, error: type[TealeavesError]) -> tuple:
    """`value` (a list, tuple or other iterable) as a tuple of its items.

    A str or bytes is refused rather than split into characters, and so is a
    lone item that is not a collection: both are asked to be wrapped in a list.
    """
    if isinstance(value, (str, bytes)):
        raise error(
            f"{what} must be a list, got the {type(value).__name__} {brief(value)}, which "
            f"would be split into single characters. Wrap it in a list: {example}."
        )
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise error(
            f"{what} must be a list, got {type(value).__name__} {brief(value)}. Wrap it in "
            f"a list: {example}."
        )
    return tuple(value)


def check_encodable(text: str, where: str, error: type[TealeavesError]) -> None:
    """Refuse text with a lone surrogate ("\\ud800".."\\udfff"): it cannot be
    encoded as UTF-8, so no tokenizer accepts it, and the tokenizer's own error
    would not say which field holds it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as caught:  # UTF-8 refuses only surrogates
        at = caught.start
        raise error(
            f"{where} holds a lone surrogate {text[at]!r} at character {at}, which cannot be "
            "encoded as UTF-8, so no tokenizer accepts it. Expected valid Unicode text; such "
            "characters come from bytes decoded with errors='surrogateescape' or from a "
            "broken \\u escape. Remove it, or decode the source with errors='replace'."
        ) from None
