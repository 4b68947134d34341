"""Run files edited by hand: what a damaged, tampered or foreign file looks like."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from safetensors import safe_open

from tealeaves_widgets.io.runfile import METADATA_KEY, _digest


def read_parts(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the tealeaves JSON of a run file."""
    arrays = safetensors.numpy.load_file(path)
    with safe_open(str(path), framework="np") as file:
        fields = json.loads((file.metadata() or {})[METADATA_KEY])
    return arrays, fields


def resign(
    path: Path,
    change_fields: Callable[[dict[str, Any]], Any] | None = None,
    change_arrays: Callable[[dict[str, np.ndarray]], Any] | None = None,
) -> Path:
    """Rewrite the run file at `path` with its JSON and arrays passed through
    the `change_*` functions (which edit in place), then sign it again: the
    file passes its sha256 check, whatever it now holds."""
    arrays, fields = read_parts(path)
    if change_arrays is not None:
        change_arrays(arrays)
    if change_fields is not None:
        change_fields(fields)
    arrays = {key: np.ascontiguousarray(value) for key, value in arrays.items()}
    fields["sha256"] = _digest(arrays, fields)
    safetensors.numpy.save_file(arrays, path, metadata={METADATA_KEY: json.dumps(fields)})
    return path


def write_raw(path: Path, header: Any, data: bytes = b"", header_size: int | None = None) -> Path:
    """A file in safetensors' layout: 8-byte header length, the header (JSON
    of `header`, or `header` itself if it is bytes), then `data`."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(text) if header_size is None else header_size
    path.write_bytes(size.to_bytes(8, "little") + text + data)
    return path
