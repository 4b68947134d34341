"""Run files: save a `Run` to one safetensors file and open it again without a model.

Layout: every array is a safetensors tensor ("attention", "attention_heads",
"token_ids", "offsets", "lens/<field>", "region/<i>"); everything else is JSON
in the safetensors metadata under the key "tealeaves", together with the
format name, its version and a sha256 over the arrays and that JSON, checked
on open. No pickle: a run file from a stranger can only be data.
"""

from __future__ import annotations

import hashlib
import json
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from numpy.typing import NDArray
from safetensors import SafetensorError

from ..core import seam
from ..core.run import Lens, RegionInfo, Run
from ..errors import RunFileError, RunFileNotFoundError
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
_RESAVE = "Save the run again with Run.save, or open the file it was copied from."
RUN_FILE = FileKind("tealeaves-run", 1, "run file", _RESAVE)
"""The run file's header (in the safetensors metadata) and its version."""
FORMAT, FORMAT_VERSION = RUN_FILE.format, RUN_FILE.version


@seam.provide("save", Run)
def save_run(run: Run, path: str | PathLike[str]) -> Path:
    """Write `run` to `path` atomically (temp file in the same folder, then
    rename), keeping the suffix the caller gave. Returns the path written."""
    path = Path(path).expanduser()
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
    """Open a run file written by `Run.save`; arrays come back read-only."""
    path = Path(path).expanduser()
    data = _read(path)
    try:
        arrays = safetensors.numpy.load(data)
    except SafetensorError as error:
        raise RunFileError(
            f"Expected a safetensors run file at {path}, but it cannot be read as "
            f"safetensors ({error}); it may be truncated, have bytes appended, or be "
            f"another kind of file. {_RESAVE}"
        ) from error
    fields = _checked_fields(path, data, arrays)
    for array in arrays.values():
        array.flags.writeable = False
    try:
        return _build(arrays, fields)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise RunFileError(
            f"{path} passed its checksum but its contents do not form a run "
            f"({type(error).__name__}: {error}). {_RESAVE}"
        ) from error


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
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = arrays[key]
        digest.update(json.dumps([key, array.dtype.str, list(array.shape)]).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    rest = {key: value for key, value in fields.items() if key != "sha256"}
    digest.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


# -- reading ---------------------------------------------------------------


def _read(path: Path) -> bytes:
    if not path.exists():
        raise RunFileNotFoundError(
            f"Expected a run file at {path}, but nothing is there. "
            "Check the path, or create the file with Run.save."
        )
    if not path.is_file():
        raise RunFileError(f"Expected a run file at {path}, but it is a folder; pass the file.")
    try:
        return path.read_bytes()
    except OSError as error:
        raise RunFileError(
            f"Could not read the run file {path} ({error.strerror or error}); "
            "check its permissions."
        ) from error


def _checked_fields(path: Path, data: bytes, arrays: dict[str, NDArray]) -> dict[str, Any]:
    """Our JSON from the safetensors metadata, after format, version and hash checks."""
    header_size = int.from_bytes(data[:8], "little")  # valid: safetensors parsed it
    metadata = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
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
    if _digest(arrays, fields) != fields["sha256"]:
        raise RunFileError(
            f"{path} failed its sha256 check: its arrays or metadata changed after it was "
            f"written (edited, damaged or tampered with). {_RESAVE}"
        )
    return fields


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
