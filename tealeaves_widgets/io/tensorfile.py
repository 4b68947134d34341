"""A safetensors file read within bounds: the layout is checked against the
file's size before any tensor is read, so a huge or hostile file is refused
at the cost of its header, never of its size.

Layout (safetensors): an 8-byte little-endian header length N, N bytes of
JSON header `{name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
"__metadata__": {str: str}}`, then the data section, where the tensors lie
back to back in offset order and end exactly at the end of the file.

Tensors come back as read-only numpy arrays: read into memory when the data
section is small, mapped from the file (`mmap`, read-only) when it is large,
so a large file costs memory only for the pages that are used. A mapped
array reads the file as it is on disk: replace the file (write a new one and
rename it over, as `write_atomic` does), never rewrite it in place while its
arrays are in use.
"""

from __future__ import annotations

import json
import math
import mmap
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from ..errors import RunFileError

MAX_HEADER_BYTES = 100_000_000
"""safetensors' own limit on the header (its Rust reader refuses larger ones)."""
CHUNK_BYTES = 1 << 20
"""Bytes read at a time when a tensor is streamed (for its checksum)."""
DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "|i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "|u1",
    "BOOL": "|b1",
}
"""safetensors dtypes that numpy holds, as little-endian numpy dtypes."""


class LayoutProblem(RunFileError):
    """Why a file is not a well-formed safetensors file: a phrase, which the
    reader of a file kind puts in its own message with the file's path."""


@dataclass(frozen=True)
class Tensor:
    """Where one tensor lies in the data section, and what it holds."""

    dtype: np.dtype
    shape: tuple[int, ...]
    begin: int
    """First byte, counted from the start of the data section."""
    end: int
    """One past the last byte, counted from the start of the data section."""


@dataclass(frozen=True)
class Layout:
    """The checked header of a safetensors file."""

    tensors: dict[str, Tensor]
    """Name -> tensor, in the header's order."""
    metadata: dict[str, str]
    """The header's "__metadata__" ({} if it has none)."""
    data_start: int
    """Offset of the data section in the file (8 + header length)."""
    data_size: int
    """Bytes of the data section (the rest of the file)."""


def read_layout(
    file: BinaryIO, file_size: int, parse: Callable[[bytes], Any] | None = None
) -> Layout:
    """Read and check the header of the safetensors file `file` of `file_size`
    bytes: its length against the limit and the file, then every tensor's
    dtype, shape and byte range against the data section, which the tensors
    must fill exactly. Reads 8 bytes plus the header. `parse` turns the header
    bytes into JSON data (default: `json.loads`). Raises `LayoutProblem`."""
    if file_size < 8:
        raise LayoutProblem(f"it has {file_size} bytes, fewer than the 8 of the header length")
    file.seek(0)
    header_size = int.from_bytes(file.read(8), "little")
    if header_size > MAX_HEADER_BYTES:
        raise LayoutProblem(
            f"its header length says a header of {header_size} bytes, more than the limit of "
            f"{MAX_HEADER_BYTES}"
        )
    if header_size > file_size - 8:
        raise LayoutProblem(
            f"its header length says a header of {header_size} bytes, but only "
            f"{file_size - 8} follow"
        )
    if header_size < 2:
        raise LayoutProblem(
            f"its header length says a header of {header_size} bytes; the shortest is '{{}}'"
        )
    header = (parse or json.loads)(file.read(header_size))
    if not isinstance(header, dict):
        raise LayoutProblem(f"its header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
    ):
        raise LayoutProblem("its header's __metadata__ must map str to str")
    data_size = file_size - 8 - header_size
    tensors = {name: _tensor(name, entry, data_size) for name, entry in header.items()}
    _check_packed(tensors, data_size)
    return Layout(tensors, metadata, 8 + header_size, data_size)


def _tensor(name: str, entry: Any, data_size: int) -> Tensor:
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise LayoutProblem(
            f"tensor {name!r} must be an object with dtype, shape and data_offsets, got "
            f"{entry!r:.80}"
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise LayoutProblem(
            f"tensor {name!r} has dtype {dtype!r:.20}, which this reader does not hold "
            f"(one of {list(DTYPES)})"
        )
    if not isinstance(shape, list) or not all(_count(size) for size in shape):
        raise LayoutProblem(
            f"tensor {name!r} has shape {shape!r:.80}; expected a list of ints >= 0"
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_count, offsets))):
        raise LayoutProblem(
            f"tensor {name!r} has data_offsets {offsets!r:.80}; expected [begin, end], ints >= 0"
        )
    begin, end = offsets
    numpy_dtype = np.dtype(DTYPES[dtype])
    size = math.prod(shape) * numpy_dtype.itemsize
    if end - begin != size:
        raise LayoutProblem(
            f"tensor {name!r} is {dtype} of shape {shape}, which is {size} bytes, but its "
            f"data_offsets {offsets} span {end - begin} bytes"
        )
    if end > data_size:
        raise LayoutProblem(
            f"tensor {name!r} ends at byte {end} of the data section, which has {data_size} bytes"
        )
    return Tensor(numpy_dtype, tuple(shape), begin, end)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_packed(tensors: dict[str, Tensor], data_size: int) -> None:
    """The tensors must lie back to back from byte 0 and fill the data section."""
    expected = 0
    for name, tensor in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if tensor.begin != expected:
            raise LayoutProblem(
                f"tensor {name!r} starts at byte {tensor.begin} of the data, expected {expected} "
                "(where the tensor before it ends)"
            )
        expected = tensor.end
    if expected != data_size:
        raise LayoutProblem(
            f"{data_size - expected} bytes follow the last tensor (the data section has "
            f"{data_size} bytes, the tensors {expected})"
        )


# -- reading tensors ---------------------------------------------------------


def read_data(file: BinaryIO, layout: Layout) -> bytes:
    """The whole data section, read at once (for a small file)."""
    file.seek(layout.data_start)
    data = file.read(layout.data_size)
    if len(data) != layout.data_size:
        raise LayoutProblem(
            f"the file ended after {len(data)} of the {layout.data_size} data bytes its header "
            "promises (was it cut while being read?)"
        )
    return data


def stream(file: BinaryIO, layout: Layout, name: str) -> Iterator[bytes]:
    """The bytes of tensor `name`, read from `file` in chunks of `CHUNK_BYTES`."""
    tensor = layout.tensors[name]
    file.seek(layout.data_start + tensor.begin)
    left = tensor.end - tensor.begin
    while left > 0:
        chunk = file.read(min(CHUNK_BYTES, left))
        if not chunk:
            raise LayoutProblem(f"the file ended inside tensor {name!r} (was it cut while read?)")
        left -= len(chunk)
        yield chunk


def map_file(file: BinaryIO) -> mmap.mmap:
    """The whole file mapped read-only. On Python 3.13+ the map holds no file
    descriptor of its own (before, each map keeps one open until it is freed)."""
    options: dict[str, Any] = {"trackfd": False} if sys.version_info >= (3, 13) else {}
    return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ, **options)


def arrays(buffer: Any, layout: Layout, offset: int) -> dict[str, NDArray]:
    """Read-only arrays over `buffer` (the data section at `offset` in it:
    0 for the bytes of `read_data`, `layout.data_start` for a `map_file`)."""
    out = {}
    for name, tensor in layout.tensors.items():
        count = math.prod(tensor.shape)
        array = np.frombuffer(
            buffer, dtype=tensor.dtype, count=count, offset=offset + tensor.begin
        ).reshape(tensor.shape)
        array.flags.writeable = False
        out[name] = array
    return out
