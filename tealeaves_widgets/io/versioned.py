"""Versioned JSON: one reader and one version rule for every file this package
writes with a header `{"format": NAME, "format_version": N, ...}` (the run
file's metadata, a run directory's index.json, a cases file).

The rule: `format` must be the expected name; `format_version` must be an int
(not a bool, not 1.0) from 1 to the version this package writes. A higher
version was written by a newer tealeaves-widgets (upgrade); anything else is
a damaged or foreign file.

Also the one way files are written: `write_atomic` (temp file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunFileError, TealeavesError

UPGRADE = "Upgrade with: pip install -U tealeaves-widgets"


@dataclass(frozen=True)
class FileKind:
    """What a versioned file is, for its checks and their messages."""

    format: str
    """The value of its "format" key."""
    version: int
    """The newest "format_version" this package reads and writes."""
    what: str
    """How a message names it: "run file", "run index", "cases file"."""
    remedy: str
    """What to do when it is damaged or of another kind (a sentence)."""
    error: type[TealeavesError] = RunFileError
    """The error raised for it."""


def check_header(data: Any, kind: FileKind, where: str | os.PathLike[str]) -> dict[str, Any]:
    """`data` as a dict after the format and version checks of `kind` (see the
    module docstring); `where` names the file in messages."""
    if not isinstance(data, dict) or data.get("format") != kind.format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise kind.error(
            f"{where} is not a tealeaves {kind.what}: expected format {kind.format!r}, found "
            f"{found!r}. {kind.remedy}"
        )
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise kind.error(
            f"{where} has format_version {version!r}; expected an int from 1 to {kind.version}. "
            f"{kind.remedy}"
        )
    if version > kind.version:
        raise kind.error(
            f"{where} is {kind.what} format version {version}, written by a newer "
            f"tealeaves-widgets; this one reads versions 1 to {kind.version}. {UPGRADE}"
        )
    return data


def parse_json(text: str | bytes, kind: FileKind, where: str | os.PathLike[str]) -> Any:
    """JSON text parsed, or `kind.error` saying where it is broken."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise kind.error(
            f"{where} is not valid JSON: {error.msg} at line {error.lineno}, column "
            f"{error.colno} (is it truncated?). {kind.remedy}"
        ) from error
    except (RecursionError, UnicodeDecodeError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise kind.error(f"{where} cannot be read as JSON ({reason}). {kind.remedy}") from error


def read_json(path: Path, kind: FileKind) -> Any:
    """The parsed contents of the JSON file at `path` (no header check)."""
    try:
        text = path.read_bytes()
    except FileNotFoundError as error:
        raise kind.error(
            f"Expected the {kind.what} at {path}, but nothing is there. {kind.remedy}"
        ) from error
    except OSError as error:
        raise kind.error(
            f"Cannot read the {kind.what} {path} ({error.strerror or error}); check its "
            "permissions."
        ) from error
    return parse_json(text, kind, path)


def read_versioned(path: Path, kind: FileKind) -> dict[str, Any]:
    """A versioned JSON file, parsed and checked (`check_header`)."""
    return check_header(read_json(path, kind), kind, path)


def versioned_header(kind: FileKind) -> dict[str, Any]:
    """The header a writer puts first: {"format": ..., "format_version": ...}."""
    return {"format": kind.format, "format_version": kind.version}


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync, then rename over `path`:
    readers see the old file or the whole new one, never a part."""
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise RunFileError(
            f"Cannot write {path.name} into {path.parent} ({error.strerror or error}); "
            "create the folder first or choose a writable one."
        ) from error
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; a run file is ordinary data
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(error, OSError):
            raise RunFileError(
                f"Could not write {path} ({error.strerror or error}); "
                "check that the path is not a folder and that you may write there."
            ) from error
        raise
