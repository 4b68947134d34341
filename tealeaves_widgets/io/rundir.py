"""Run directories: many run files and one index, as `tealeaves-widgets capture`
and `RunSet.save` write them and `open_runs` reads them.

Layout of a directory::

    index.json            {"format": "tealeaves-runs", "format_version": 1,
                           "runs": [{"label", "seed", "file", "n_tokens", "sha256"}, ...],
                           "pending": [case ids without a run yet], ...provenance}
    0000-<label>.tlrun    one run file per entry (tealeaves_widgets.runfile)
    ...

The index lists the runs in order (the cases file's order for a capture);
every file name is relative to the directory. Torch-free.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from ..core import seam
from ..core.runset import RunSet
from ..errors import RunFileError, RunFileNotFoundError
from .runfile import SUGGESTED_SUFFIX, open_run_file, run_digest, save_run
from .versioned import FileKind, read_versioned, versioned_header, write_atomic

INDEX_NAME = "index.json"
RUN_INDEX = FileKind(
    "tealeaves-runs",
    1,
    "run index",
    "Rerun the capture into the same directory to rewrite it (run files already there are "
    "kept), or save the RunSet again with RunSet.save.",
)
"""The run directory's index.json and its version."""
INDEX_FORMAT, INDEX_VERSION = RUN_INDEX.format, RUN_INDEX.version
_ENTRY_KEYS = ("label", "seed", "file")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RunEntry:
    """One line of the index: which file holds the run of which case."""

    label: str
    """Case id (the case's name, else "case<i>")."""
    file: str
    """Run file name, relative to the directory."""
    seed: int | None = None
    """Seed that sampled the run's response; None where the response was given."""
    n_tokens: int | None = None
    """Tokens of the rendered prompt."""
    sha256: str | None = None
    """The run file's own checksum (its metadata's sha256)."""

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "seed": self.seed,
            "file": self.file,
            "n_tokens": self.n_tokens,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class RunIndex:
    """The parsed index.json of a run directory."""

    runs: tuple[RunEntry, ...]
    """(run,) entries in order."""
    pending: tuple[str, ...] = ()
    """Case ids of the cases file that have no run yet (a capture not finished)."""
    extra: dict = field(default_factory=dict)
    """Provenance: cases file, model, failures (whatever the writer recorded)."""


def run_file_name(position: int, label: str, seed: int | None = None) -> str:
    """`0007-<label>[-seed<s>].tlrun`: sortable, and safe on every file system."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._")[:80] or "case"
    suffix = "" if seed is None else f"-seed{seed}"
    return f"{position:04d}-{safe}{suffix}{SUGGESTED_SUFFIX}"


def write_index(directory: str | PathLike[str], index: RunIndex) -> Path:
    """Write `index.json` into `directory` atomically; returns its path."""
    path = Path(directory) / INDEX_NAME
    data = {
        **versioned_header(RUN_INDEX),
        **index.extra,
        "runs": [entry.to_dict() for entry in index.runs],
        "pending": list(index.pending),
    }
    write_atomic(path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode())
    return path


def read_index(directory: str | PathLike[str]) -> RunIndex:
    """Parse `index.json` of a run directory; errors name the file and the entry."""
    directory = Path(directory).expanduser()
    path = directory / INDEX_NAME
    if not directory.exists():
        raise RunFileNotFoundError(
            f"Expected a run directory at {directory}, but nothing is there. Pass the folder "
            "that `tealeaves-widgets capture --out` or RunSet.save wrote."
        )
    if not directory.is_dir():
        raise RunFileError(
            f"Expected a run directory at {directory}, but it is a file. Pass the folder "
            "that `tealeaves-widgets capture --out` or RunSet.save wrote."
        )
    if not path.is_file():
        raise RunFileError(
            f"{directory} has no {INDEX_NAME}, so it is not a run directory (or its capture "
            "never reached the end). Run `tealeaves-widgets capture CASES --out "
            f"{directory}` again: it skips the cases already captured and writes the index."
        )
    data = read_versioned(path, RUN_INDEX)
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise RunFileError(f"{path}: 'runs' must be a list of entries, got {type(runs).__name__}.")
    entries = [_entry(item, path, i) for i, item in enumerate(runs)]
    extra = {k: v for k, v in data.items() if k not in ("format", "format_version", "runs")}
    pending = extra.pop("pending", None)
    if pending is None:
        pending = []
    if not isinstance(pending, list) or not all(isinstance(p, str) for p in pending):
        raise RunFileError(
            f"{path}: 'pending' must be a list of case ids (str), got {pending!r:.80}. "
            f"{RUN_INDEX.remedy}"
        )
    return RunIndex(tuple(entries), tuple(pending), extra)


def _entry(item: Any, path: Path, i: int) -> RunEntry:
    if not isinstance(item, dict) or any(key not in item for key in _ENTRY_KEYS):
        raise RunFileError(
            f"{path}: runs[{i}] must be an object with keys {list(_ENTRY_KEYS)}, got {item!r}."
        )
    seed = item["seed"]
    if not isinstance(item["label"], str) or not isinstance(item["file"], str):
        raise RunFileError(f"{path}: runs[{i}] needs a str label and file, got {item!r}.")
    if seed is not None and not _is_int(seed):
        raise RunFileError(f"{path}: runs[{i}] seed must be an int or null, got {seed!r}.")
    n_tokens, sha256 = item.get("n_tokens"), item.get("sha256")
    if n_tokens is not None and not (_is_int(n_tokens) and n_tokens >= 0):
        raise RunFileError(
            f"{path}: runs[{i}] n_tokens must be an int >= 0 or null, got {n_tokens!r:.80}."
        )
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise RunFileError(
            f"{path}: runs[{i}] sha256 must be 64 hex digits or null, got {sha256!r:.80}."
        )
    if Path(item["file"]).name != item["file"]:
        raise RunFileError(
            f"{path}: runs[{i}] file {item['file']!r} must be a plain file name inside the "
            "directory (no folders)."
        )
    return RunEntry(
        label=item["label"], file=item["file"], seed=seed, n_tokens=n_tokens, sha256=sha256
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def open_runs(directory: str | PathLike[str]) -> RunSet:
    """Open the runs of a run directory (a capture's `--out`, or `RunSet.save`)
    as a `RunSet`, in index order.

    A run file that is missing or damaged, or is not the run the index lists
    for its case (its sha256 differs: files renamed or swapped), raises
    `RunFileError` naming the file and its case; cases the capture has not
    reached yet are named in a warning.
    """
    directory = Path(directory).expanduser()
    index = read_index(directory)
    if not index.runs:
        raise RunFileError(
            f"{directory / INDEX_NAME} lists no runs"
            + (f" (pending: {list(index.pending)[:10]})" if index.pending else "")
            + ". Run the capture to the end first."
        )
    runs = []
    for entry in index.runs:
        try:
            run, digest = open_run_file(directory / entry.file)
        except RunFileError as error:
            raise RunFileError(
                f"Case {entry.label!r}: {error} To recapture it, delete the file and run "
                f"`tealeaves-widgets capture` into {directory} again."
            ) from error
        if entry.sha256 is not None and digest != entry.sha256:
            raise _not_listed(directory, index, entry, digest)
        runs.append(run)
    if index.pending:
        warnings.warn(
            f"{directory}: {len(index.pending)} case(s) of the cases file have no run yet "
            f"({list(index.pending)[:10]}); the RunSet holds the {len(runs)} captured. Run the "
            "capture again to complete it.",
            stacklevel=2,
        )
    labels = tuple(entry.label for entry in index.runs)
    seeds = tuple(entry.seed for entry in index.runs)
    return RunSet(tuple(runs), labels, seeds)


def _not_listed(directory: Path, index: RunIndex, entry: RunEntry, digest: str) -> RunFileError:
    """The error for a run file whose run is not the one the index lists for it."""
    other = next((e for e in index.runs if e.sha256 == digest), None)
    holds = (
        f"the run of case {other.label!r} (listed as {other.file})"
        if other is not None
        else "a run the index does not list"
    )
    return RunFileError(
        f"Case {entry.label!r}: {directory / entry.file} holds {holds}, not the run "
        f"{INDEX_NAME} lists for the case (sha256 {entry.sha256}; the file's is {digest}): "
        "files were renamed, swapped or copied in from another directory. Put the right file "
        "back under this name, or delete it and run `tealeaves-widgets capture` into "
        f"{directory} again (or save the RunSet again) to recapture it."
    )


@seam.provide("save", RunSet)
def save_runs(runs: RunSet, directory: str | PathLike[str]) -> Path:
    """Write each run of `runs` to `directory` and the index last; returns the
    directory. Run files of the same names are replaced; others are left alone."""
    directory = Path(directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFileError(
            f"Cannot create the run directory {directory} ({error.strerror or error}); "
            "choose a writable place."
        ) from error
    entries = []
    for i, (run, label, seed) in enumerate(zip(runs.runs, runs.labels, runs.seeds, strict=True)):
        name = run_file_name(i, label, seed)
        save_run(run, directory / name)
        entries.append(entry_for(run, label, name, seed))
    write_index(directory, RunIndex(tuple(entries)))
    return directory


def entry_for(run: Any, label: str, file: str, seed: int | None = None) -> RunEntry:
    """The index entry of a run saved as `file`."""
    return RunEntry(label, file, seed, int(run.n_tokens), run_digest(run))
