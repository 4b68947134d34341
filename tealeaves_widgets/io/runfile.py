"""Run files: save a `Run` to one safetensors file and open it again without a model.

Layout: every array is a safetensors tensor ("attention", "attention_heads",
"token_ids", "offsets", "lens/<field>", "region/<i>"); everything else is JSON
in the safetensors metadata under the key "tealeaves", together with the
format name, its version and a sha256 over the arrays and that JSON, checked
on open. No pickle: a run file from a stranger can only be data.

Opening checks the file's layout against its size before reading anything
large (`tensorfile`), and the run's invariants after the checksum
(`invariants`); saving checks the invariants first, so every file written
opens again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import safetensors.numpy
from numpy.typing import NDArray
from safetensors import SafetensorError

from ..core import seam
from ..core.run import Lens, RegionInfo, Run
from ..errors import RunFileError, RunFileNotFoundError
from . import tensorfile
from .invariants import run_problem
from .tensorfile import LayoutProblem
from .versioned import FileKind, check_header, parse_json, versioned_header, write_atomic

METADATA_KEY = "tealeaves"
SUGGESTED_SUFFIX = ".tlrun"

_LENS_ARRAYS = (
    "top_ids",
    "top_probs",
    "entropy",
    "kl_to_final",
    "tracked_ids",
    "tracked_ranks",
    "tracked_probs",
)
_REQUIRED_FIELDS = (
    "text",
    "tokens",
    "regions",
    "queries",
    "vocab",
    "tracked_tokens",
    "model_info",
    "case",
    "region_spec",
    "sha256",
)
_REGION_KEYS = ("name", "section", "char_span", "parent", "builtin", "array")
MAP_FROM_BYTES = 16 << 20
"""A data section this large or larger is mapped from the file; a smaller one is
read into memory. A map holds a file descriptor (before Python 3.13), so a
RunSet of a thousand small mapped runs would run out of them; a small run
costs little memory either way."""
_RESAVE = "Save the run again with Run.save, or open the file it was copied from."
RUN_FILE = FileKind("tealeaves-run", 1, "run file", _RESAVE)
"""The run file's header (in the safetensors metadata) and its version."""
FORMAT, FORMAT_VERSION = RUN_FILE.format, RUN_FILE.version


@seam.provide("save", Run)
def save_run(run: Run, path: str | PathLike[str]) -> Path:
    """Write `run` to `path` atomically (temp file in the same folder, then
    rename), keeping the suffix the caller gave. Returns the path written."""
    path = Path(path).expanduser()
    problem = run_problem(run)
    if problem is not None:
        raise RunFileError(
            f"Cannot save the run to {path}: {problem}. A run from Model.capture always "
            "agrees with itself; if you built or changed this one by hand, make its fields "
            "agree with the shapes documented on tw.Run and tw.Lens."
        )
    arrays = _arrays(run)
    fields = _fields(run)
    fields["sha256"] = _digest(arrays, fields)
    try:
        data = safetensors.numpy.save(arrays, metadata={METADATA_KEY: json.dumps(fields)})
    except (SafetensorError, ValueError, TypeError) as error:
        dtypes = {key: str(array.dtype) for key, array in arrays.items()}
        raise RunFileError(
            f"Could not encode the run's arrays as safetensors ({error}); got dtypes {dtypes}. "
            "Use numeric numpy arrays (float32 / int64) in the Run."
        ) from error
    write_atomic(path, data)
    return path


def run_digest(run: Run) -> str:
    """The sha256 that `save_run` stores in the run's file (and `open_run` checks)."""
    return _digest(_arrays(run), _fields(run))


def open_run(path: str | PathLike[str]) -> Run:
    """Open a run file written by `Run.save`; arrays come back read-only.

    Each check runs before anything larger is read: the file's layout against
    its size (`tensorfile.read_layout`: 8 bytes and the header), the format
    and version, the sha256 (streamed), then the invariants of a run
    (`invariants.run_problem`). A large file's arrays are mapped from the
    file, not read: see `tensorfile` for what that asks of the file.
    """
    return open_run_file(path)[0]


def open_run_file(path: str | PathLike[str]) -> tuple[Run, str]:
    """`open_run`, and the sha256 the file stores (and the open checked): what
    a run directory's index lists for the run."""
    path = Path(path).expanduser()
    file = _open(path)
    try:
        with file:
            layout = tensorfile.read_layout(file, os.fstat(file.fileno()).st_size, _parser(path))
            fields = _checked_header(path, layout.metadata)
            arrays = _checked_arrays(path, file, layout, fields)
    except LayoutProblem as problem:
        raise RunFileError(
            f"Expected a safetensors run file at {path}, but it cannot be read as safetensors: "
            f"{problem}. It may be truncated, have bytes appended, or be another kind of file. "
            f"{_RESAVE}"
        ) from None
    except RunFileError:
        raise
    except OSError as error:
        raise RunFileError(
            f"Could not read the run file {path} ({error.strerror or error}); check that it is "
            "readable and on a working disk."
        ) from error
    problem = _fields_problem(fields, arrays)
    if problem is None:
        run = _build(arrays, fields)
        problem = run_problem(run)
        if problem is None:
            return run, fields["sha256"]
    raise RunFileError(
        f"{path} passed its checksum but does not hold a valid run: {problem}. {_RESAVE}"
    )


# -- writing ---------------------------------------------------------------


def _arrays(run: Run) -> dict[str, NDArray]:
    arrays = {
        "attention": run.attention,
        "attention_heads": run.attention_heads,
        "token_ids": run.token_ids,
        "offsets": run.offsets,
    }
    for name in _LENS_ARRAYS:
        arrays[f"lens/{name}"] = getattr(run.lens, name)
    for i, region in enumerate(run.regions.values()):
        arrays[f"region/{i}"] = region.token_indices
    return {key: np.ascontiguousarray(value) for key, value in arrays.items()}


def _fields(run: Run) -> dict[str, Any]:
    """Everything that is not an array, as JSON-native values."""
    for name in ("model_info", "case", "region_spec"):
        _require_json(name, getattr(run, name))
    return {
        **versioned_header(RUN_FILE),
        "text": run.text,
        "tokens": list(run.tokens),
        "regions": [
            {
                "name": region.name,
                "section": region.section,
                "char_span": [int(region.char_span[0]), int(region.char_span[1])],
                "parent": region.parent,
                "builtin": bool(region.builtin),
                "array": f"region/{i}",
            }
            for i, region in enumerate(run.regions.values())
        ],
        "queries": [[name, int(pos)] for name, pos in run.queries.items()],
        "vocab": {str(int(token_id)): text for token_id, text in run.lens.vocab.items()},
        "tracked_tokens": list(run.lens.tracked_tokens),
        "model_info": run.model_info,
        "case": run.case,
        "region_spec": run.region_spec,
    }


def _require_json(name: str, value: Any) -> None:
    """Refuse a value that would come back different, so open(save(run)) == run."""
    try:
        same = json.loads(json.dumps(value)) == value
    except (TypeError, ValueError) as error:
        raise RunFileError(
            f"Run.{name} must be JSON data to be saved, but {error}. "
            "Convert numpy scalars, dtypes and other objects to str/int/float first."
        ) from error
    if not same:
        raise RunFileError(
            f"Run.{name} would not survive JSON unchanged: keys must be str and sequences "
            "lists (a tuple comes back as a list, an int key as a str). "
            "Convert them before saving."
        )


def _digest(arrays: dict[str, NDArray], fields: dict[str, Any]) -> str:
    """sha256 over each array (sorted by key, with dtype and shape) and the
    canonical JSON of every field but "sha256"."""
    parts = (
        (
            key,
            array.dtype.str,
            array.shape,
            [np.ascontiguousarray(array).reshape(-1).view(np.uint8)],
        )
        for key, array in sorted(arrays.items())
    )
    return _digest_of(parts, fields)


def _digest_of(
    parts: Iterable[tuple[str, str, Sequence[int], Iterable[Any]]], fields: dict[str, Any]
) -> str:
    """`_digest` from (key, dtype.str, shape, chunks of its bytes), sorted by key:
    the arrays may be in memory or streamed from a file."""
    digest = hashlib.sha256()
    for key, dtype, shape, chunks in parts:
        digest.update(json.dumps([key, dtype, list(shape)]).encode())
        for chunk in chunks:
            digest.update(chunk)
    rest = {key: value for key, value in fields.items() if key != "sha256"}
    digest.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


# -- reading ---------------------------------------------------------------


def _open(path: Path) -> BinaryIO:
    if not path.exists():
        raise RunFileNotFoundError(
            f"Expected a run file at {path}, but nothing is there. "
            "Check the path, or create the file with Run.save."
        )
    if not path.is_file():
        raise RunFileError(f"Expected a run file at {path}, but it is a folder; pass the file.")
    try:
        return path.open("rb")
    except OSError as error:
        raise RunFileError(
            f"Could not read the run file {path} ({error.strerror or error}); "
            "check its permissions."
        ) from error


def _parser(path: Path) -> Callable[[bytes], Any]:
    """How the safetensors header of `path` is parsed (errors name the file)."""
    return lambda text: parse_json(text, RUN_FILE, f"{path} (its safetensors header)")


def _checked_header(path: Path, metadata: dict[str, str]) -> dict[str, Any]:
    """Our JSON from the safetensors metadata, after the format and version checks."""
    if METADATA_KEY not in metadata:
        raise RunFileError(
            f"{path} is a safetensors file but not a tealeaves run file: its metadata has "
            f"keys {sorted(metadata)}, not {METADATA_KEY!r}. Open it with safetensors "
            "directly, or pass a file written by Run.save."
        )
    fields = check_header(parse_json(metadata[METADATA_KEY], RUN_FILE, path), RUN_FILE, path)
    missing = [key for key in _REQUIRED_FIELDS if key not in fields]
    if missing:
        raise RunFileError(f"{path} is a run file without the fields {missing}. {_RESAVE}")
    if not isinstance(fields["sha256"], str):
        raise RunFileError(
            f"{path} has a sha256 of type {type(fields['sha256']).__name__}; expected the hex "
            f"digest as a str. {_RESAVE}"
        )
    return fields


def _checked_arrays(
    path: Path, file: BinaryIO, layout: tensorfile.Layout, fields: dict[str, Any]
) -> dict[str, NDArray]:
    """The tensors of `file` after the sha256 check. A data section under
    `MAP_FROM_BYTES` is read and hashed in memory; a larger one is hashed by
    streaming the file, then mapped (nothing read until it is used)."""
    if layout.data_size < MAP_FROM_BYTES:
        arrays = tensorfile.arrays(tensorfile.read_data(file, layout), layout, 0)
        _check_digest(path, _digest(arrays, fields), fields)
        return arrays
    streamed = (
        (name, tensor.dtype.str, tensor.shape, tensorfile.stream(file, layout, name))
        for name, tensor in sorted(layout.tensors.items())
    )
    _check_digest(path, _digest_of(streamed, fields), fields)
    try:
        mapped = tensorfile.map_file(file)
    except OSError as error:
        raise RunFileError(
            f"Could not map the run file {path} into memory ({error.strerror or error}). With "
            "many large runs open, each holds a file descriptor: raise the limit (ulimit -n) "
            "or open fewer at once."
        ) from error
    return tensorfile.arrays(mapped, layout, layout.data_start)


def _check_digest(path: Path, digest: str, fields: dict[str, Any]) -> None:
    if digest != fields["sha256"]:
        raise RunFileError(
            f"{path} failed its sha256 check: its arrays or metadata changed after it was "
            f"written (edited, damaged or tampered with). {_RESAVE}"
        )


def _fields_problem(fields: dict[str, Any], arrays: dict[str, NDArray]) -> str | None:
    """The first field whose JSON type is wrong, or that names an array the file
    lacks, as a phrase; None if all are right (then `_build` cannot fail)."""
    if not isinstance(fields["text"], str):
        return f"text must be a str, got {type(fields['text']).__name__}"
    for key in ("tokens", "tracked_tokens"):
        if not _is_list_of(fields[key], str):
            return f"{key} must be a list of str, got {_short(fields[key])}"
    for key in ("model_info", "case", "region_spec"):
        if not isinstance(fields[key], dict):
            return f"{key} must be an object, got {type(fields[key]).__name__}"
    queries = fields["queries"]
    pairs = isinstance(queries, list) and all(
        isinstance(q, list) and len(q) == 2 and isinstance(q[0], str) and _is_int(q[1])
        for q in queries
    )
    if not pairs:
        return f"queries must be a list of [name, pos] pairs (str, int), got {_short(queries)}"
    problem = _repeated("queries", [name for name, _ in queries])
    problem = problem or _regions_problem(fields["regions"], arrays)
    problem = problem or _vocab_problem(fields["vocab"])
    missing = [name for name in _fixed_arrays() if name not in arrays]
    if problem is None and missing:
        problem = f"the file lacks the arrays {missing}"
    return problem


def _regions_problem(regions: Any, arrays: dict[str, NDArray]) -> str | None:
    if not isinstance(regions, list):
        return f"regions must be a list of objects, got {_short(regions)}"
    for i, entry in enumerate(regions):
        if not isinstance(entry, dict) or not all(key in entry for key in _REGION_KEYS):
            keys = list(_REGION_KEYS)
            return f"regions[{i}] must be an object with keys {keys}, got {_short(entry)}"
        if not isinstance(entry["name"], str) or not isinstance(entry["section"], str):
            return f"regions[{i}].name and .section must be str, got {_short(entry)}"
        span = entry["char_span"]
        if not (isinstance(span, list) and len(span) == 2 and all(map(_is_int, span))):
            return f"regions[{i}].char_span must be [start, end] (two ints), got {_short(span)}"
        if entry["parent"] is not None and not isinstance(entry["parent"], str):
            return f"regions[{i}].parent must be a str or null, got {_short(entry['parent'])}"
        if not isinstance(entry["builtin"], bool):
            return f"regions[{i}].builtin must be a bool, got {_short(entry['builtin'])}"
        if not isinstance(entry["array"], str) or entry["array"] not in arrays:
            return f"regions[{i}].array names {entry['array']!r:.80}, which the file does not hold"
    return _repeated("regions", [entry["name"] for entry in regions])


def _vocab_problem(vocab: Any) -> str | None:
    if not isinstance(vocab, dict):
        return f"vocab must be an object, got {_short(vocab)}"
    rule = "vocab must map token ids to str (keys: an int >= 0, written as a str)"
    for key, text in vocab.items():
        if not (key.isascii() and key.isdigit() and str(int(key)) == key):
            return f"{rule}, got key {key!r:.40}"
        if not isinstance(text, str):
            return f"{rule}, got {_short(text)} for key {key!r}"
    return None


def _fixed_arrays() -> list[str]:
    return ["attention", "attention_heads", "token_ids", "offsets"] + [
        f"lens/{name}" for name in _LENS_ARRAYS
    ]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list_of(value: Any, kind: type) -> bool:
    return isinstance(value, list) and all(isinstance(item, kind) for item in value)


def _repeated(what: str, names: list[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return f"{what} must have distinct names, {name!r} is repeated"
        seen.add(name)
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _build(arrays: dict[str, NDArray], fields: dict[str, Any]) -> Run:
    regions = {
        entry["name"]: RegionInfo(
            name=entry["name"],
            section=entry["section"],
            char_span=(int(entry["char_span"][0]), int(entry["char_span"][1])),
            token_indices=arrays[entry["array"]],
            parent=entry["parent"],
            builtin=bool(entry["builtin"]),
        )
        for entry in fields["regions"]
    }
    lens = Lens(
        **{name: arrays[f"lens/{name}"] for name in _LENS_ARRAYS},
        tracked_tokens=tuple(fields["tracked_tokens"]),
        vocab={int(token_id): text for token_id, text in fields["vocab"].items()},
    )
    return Run(
        text=fields["text"],
        tokens=tuple(fields["tokens"]),
        token_ids=arrays["token_ids"],
        offsets=arrays["offsets"],
        regions=regions,
        queries={name: int(pos) for name, pos in fields["queries"]},
        attention=arrays["attention"],
        attention_heads=arrays["attention_heads"],
        lens=lens,
        model_info=fields["model_info"],
        case=fields["case"],
        region_spec=fields["region_spec"],
    )
