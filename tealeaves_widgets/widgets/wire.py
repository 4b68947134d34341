"""Wire format: how a `Run` travels from Python to the browser.

Arrays cross as `{"dtype", "shape", "data": memoryview}`; anywidget sends
every memoryview inside a synced value as a binary buffer (a numpy array would
be serialized as JSON, so we never pass one). The front end (`js/src/wire.ts`)
maps the dtype to a TypedArray over the same bytes. Every payload and
message is defined once in `widgets.schema`; both sides check its
`SCHEMA_VERSION`.

`run_payload` builds what the explorer needs to render from synced state
alone, within a byte budget. Per-head rows are the one part that may not fit:
they are included query by query, as uint8 of round(255 * sqrt(p)) (attention
is dominated by the first-token sink, so a linear uint8 scale would round most
weights to 0; the square root keeps the small ones apart), and the rest are
sent on request (`head_rows_message`).

No torch or transformers here: this module runs where only the results are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from ..core.run import QueryReading, Run
from ..core.selection import resolve_query
from ..errors import WireError
from ..present.palette import region_colors
from .schema import (
    MESSAGE_VERSION,
    SCHEMA_VERSION,
    BufferRef,
    HeadRowsPayload,
    HeadRowsReply,
    LensPayload,
    QueryAtReply,
    RunPayload,
    WireArray,
    WireDType,
)

DEFAULT_MAX_BYTES = 4_000_000
"""Default budget of one payload: binary buffers plus the JSON around them."""

WIRE_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32")
"""Dtypes the front end maps to a TypedArray (64-bit types would need BigInt or
a copy, so callers cast explicitly; nothing is downcast silently)."""

HEAD_ENCODINGS = ("sqrt-uint8", "float16")
"""How per-head rows are stored: uint8 of round(255 * sqrt(p)), or float16."""


@dataclass(frozen=True)
class PayloadOptions:
    """What `run_payload` puts on the wire and how many bytes it may use."""

    max_bytes: int = DEFAULT_MAX_BYTES
    """Budget for the whole payload. Everything except per-head rows must fit;
    per-head rows are added query by query while the total stays within it."""
    head_queries: tuple[str, ...] | None = None
    """Queries whose per-head rows go first, in this order; the others follow
    in run order. None: the default query ("final" if present) first."""
    head_encoding: str = "sqrt-uint8"
    """Encoding of the per-head rows in the payload, one of `HEAD_ENCODINGS`."""
    attention_dtype: str = "float16"
    """Dtype of the head-averaged rows: "float16" or "float32"."""


# -- arrays ----------------------------------------------------------------


def encode_array(array: NDArray) -> WireArray:
    """`{"dtype", "shape", "data"}` for one array: little-endian, C order, with
    `data` a flat byte memoryview over it (no copy when already so laid out)."""
    array = np.asarray(array)
    name = array.dtype.name
    if name not in WIRE_DTYPES:
        raise WireError(
            f"Cannot send a {name} array; the wire carries {list(WIRE_DTYPES)}. "
            "Cast it first (e.g. int64 ids to int32 after checking their range)."
        )
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    # a memoryview with a 0 in its shape cannot be cast; an empty one stands in
    # (`array.data` is memoryview(array); numpy declares no buffer protocol before Python 3.12)
    data = array.data.cast("B") if array.size else memoryview(b"")
    return {"dtype": cast(WireDType, name), "shape": list(array.shape), "data": data}


def decode_array(value: WireArray | dict[str, Any]) -> NDArray:
    """Inverse of `encode_array` (for tests and tools; the browser has its own)."""
    dtype = value.get("dtype")
    if dtype not in WIRE_DTYPES:
        raise WireError(f"Unknown wire dtype {dtype!r}; expected one of {list(WIRE_DTYPES)}.")
    data = np.frombuffer(value["data"], dtype=np.dtype(dtype).newbyteorder("<"))
    return data.reshape(value["shape"])


def payload_bytes(payload: Any) -> int:
    """Bytes the payload takes: its binary buffers plus its JSON without them."""
    buffers: list[int] = []

    def strip(value: Any) -> Any:
        if isinstance(value, (memoryview, bytes, bytearray)):
            buffers.append(memoryview(value).nbytes)
            return None
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        return value

    text = json.dumps(strip(payload), ensure_ascii=False, separators=(",", ":"))
    return sum(buffers) + len(text.encode("utf-8"))


def _int32(array: NDArray, what: str) -> NDArray[np.int32]:
    array = np.asarray(array)
    info = np.iinfo(np.int32)
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise WireError(f"{what} has values outside int32; the wire carries ids as int32.")
    return array.astype(np.int32)


def encode_head_rows(rows: NDArray[np.float32], encoding: str) -> HeadRowsPayload:
    """(layer, head, pos) attention rows of one query, encoded for the wire.

    Columns after the last non-zero weight are dropped (a causal row is zero
    after its query position), so the stored shape is (layer, head, width)
    and the front end reads the missing columns as 0.
    """
    nonzero = np.flatnonzero(np.any(rows != 0, axis=(0, 1)))
    rows = rows[:, :, : int(nonzero[-1]) + 1 if nonzero.size else 0]
    if encoding == "sqrt-uint8":
        quantized = np.rint(255.0 * np.sqrt(np.clip(rows, 0.0, 1.0))).astype(np.uint8)
        return {"encoding": "sqrt-uint8", "rows": encode_array(quantized)}
    if encoding == "float16":
        return {"encoding": "float16", "rows": encode_array(rows.astype(np.float16))}
    raise WireError(f"Unknown head encoding {encoding!r}; use one of {list(HEAD_ENCODINGS)}.")


def decode_head_rows(value: HeadRowsPayload | dict[str, Any], n_tokens: int) -> NDArray[np.float32]:
    """Inverse of `encode_head_rows` (up to its rounding): (layer, head, pos)."""
    stored = decode_array(value["rows"]).astype(np.float32)
    if value["encoding"] == "sqrt-uint8":
        stored = (stored / 255.0) ** 2
    rows = np.zeros((*stored.shape[:2], n_tokens), dtype=np.float32)
    rows[:, :, : stored.shape[2]] = stored
    return rows


# -- the run ---------------------------------------------------------------


def token_regions(run: Run) -> NDArray[np.int16]:
    """(pos,) index into `run.regions` of the innermost region owning each
    token, -1 for none. Children come after their parents, so the last wins."""
    owner = np.full(run.n_tokens, -1, dtype=np.int16)
    for index, info in enumerate(run.regions.values()):
        owner[info.token_indices] = index
    return owner


def region_membership(run: Run) -> NDArray[np.float32]:
    """(pos, region) 1 where the region holds the token, else 0."""
    membership = np.zeros((run.n_tokens, len(run.regions)), dtype=np.float32)
    for r, info in enumerate(run.regions.values()):
        membership[info.token_indices, r] = 1.0
    return membership


def region_masses(run: Run) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Raw cooking curves: attention mass per region, head-averaged
    (layer, query, region) and per head (layer, head, query, region)."""
    membership = region_membership(run)
    averaged = run.attention.astype(np.float32) @ membership
    per_head = run.attention_heads.astype(np.float32) @ membership
    return averaged, per_head


def first_token_masses(rows: NDArray) -> NDArray[np.float32]:
    """(..., pos) attention rows -> (...) float32 attention on the first token
    (zeros without tokens): what the front end's "share" leaves out by default."""
    if rows.shape[-1] == 0:
        return np.zeros(rows.shape[:-1], dtype=np.float32)
    return np.ascontiguousarray(rows[..., 0], dtype=np.float32)


def token_gaps(run: Run) -> list[tuple[int, str]]:
    """[pos, text] for prompt text that no token covers, shown before `pos`
    so the page reads as the prompt (e.g. a space dropped by the tokenizer)."""
    gaps, previous_end = [], 0
    for pos, (start, end) in enumerate(run.offsets.tolist()):
        if start > previous_end:
            gaps.append((pos, run.text[previous_end:start]))
        previous_end = max(previous_end, end)
    if previous_end < len(run.text):
        gaps.append((run.n_tokens, run.text[previous_end:]))
    return gaps


def _lens_payload(run: Run) -> LensPayload:
    lens = run.lens
    ids = set(np.unique(lens.top_ids).tolist()) | set(np.asarray(lens.tracked_ids).tolist())
    vocab = {str(i): lens.vocab.get(i, f"<id {i}>") for i in sorted(ids)}
    return {
        "k": int(lens.top_ids.shape[2]),
        "top_ids": encode_array(_int32(lens.top_ids, "lens.top_ids")),
        "top_probs": encode_array(lens.top_probs.astype(np.float32)),
        "entropy": encode_array(lens.entropy.astype(np.float32)),
        "kl_to_final": encode_array(lens.kl_to_final.astype(np.float32)),
        "tracked_tokens": list(lens.tracked_tokens),
        "tracked_ids": encode_array(_int32(lens.tracked_ids, "lens.tracked_ids")),
        "tracked_ranks": encode_array(_int32(lens.tracked_ranks, "lens.tracked_ranks")),
        "tracked_probs": encode_array(lens.tracked_probs.astype(np.float32)),
        "vocab": vocab,
    }


def default_query(run: Run) -> str:
    """The query a view opens on (`core.selection.resolve_query` of None)."""
    return resolve_query(None, list(run.queries))


def head_query_order(run: Run, options: PayloadOptions) -> list[int]:
    """Query rows in the order their per-head rows claim the budget."""
    first = list(options.head_queries) if options.head_queries is not None else []
    if options.head_queries is None and run.n_queries:
        first = [default_query(run)]
    order = [run.query_index(q) for q in first]
    return order + [q for q in range(run.n_queries) if q not in order]


def _check_options(run: Run, options: PayloadOptions) -> None:
    if options.attention_dtype not in ("float16", "float32"):
        raise WireError(f"attention_dtype={options.attention_dtype!r}; use 'float16' or 'float32'.")
    if options.head_encoding not in HEAD_ENCODINGS:
        raise WireError(
            f"head_encoding={options.head_encoding!r}; use one of {list(HEAD_ENCODINGS)}."
        )
    if run.n_queries == 0:
        raise WireError("This run has no query rows; capture it with at least one query.")


def run_payload(run: Run, options: PayloadOptions | None = None) -> RunPayload:
    """Everything the explorer renders, as one synced value.

    Raises `WireError` when even the part without per-head rows exceeds
    `options.max_bytes`; per-head rows of the queries that do not fit are
    left as None (the front end asks for them with a live kernel).
    """
    options = options or PayloadOptions()
    _check_options(run, options)
    colors = region_colors(run)
    averaged, per_head = region_masses(run)
    payload: RunPayload = {
        "schema_version": SCHEMA_VERSION,
        "model": {
            "model_id": str(run.model_info.get("model_id", "unknown model")),
            "n_layers": run.n_layers,
            "n_heads": run.n_heads,
        },
        "n_tokens": run.n_tokens,
        "tokens": list(run.tokens),
        "token_ids": encode_array(_int32(run.token_ids, "token_ids")),
        "gaps": token_gaps(run),
        "token_region": encode_array(token_regions(run)),
        "regions": [
            {
                "name": name,
                "section": info.section,
                "color": colors[name],
                "char_span": (int(info.char_span[0]), int(info.char_span[1])),
                "token_indices": encode_array(_int32(info.token_indices, f"region {name}")),
                "parent": info.parent,
                "builtin": bool(info.builtin),
            }
            for name, info in run.regions.items()
        ],
        "queries": [{"name": name, "pos": int(pos)} for name, pos in run.queries.items()],
        "default_query": run.query_index(default_query(run)),
        "attention": encode_array(run.attention.astype(options.attention_dtype)),
        "curves": encode_array(averaged),
        "curves_heads": encode_array(per_head),
        "first_token": encode_array(first_token_masses(run.attention)),
        "first_token_heads": encode_array(first_token_masses(run.attention_heads)),
        "lens": _lens_payload(run),
        "heads": [None] * run.n_queries,
        "budget": {"max_bytes": int(options.max_bytes), "bytes": 0},
    }
    used = payload_bytes(payload)
    if used > options.max_bytes:
        raise WireError(
            f"The run needs {used:,} bytes without per-head rows, over max_bytes="
            f"{options.max_bytes:,}. Raise PayloadOptions.max_bytes or capture fewer queries."
        )
    payload["budget"]["bytes"] = options.max_bytes  # as many digits as it may get
    for q in head_query_order(run, options):
        rows = run.attention_heads[:, :, q, :]
        payload["heads"][q] = encode_head_rows(rows, options.head_encoding)
        if payload_bytes(payload) > options.max_bytes:
            payload["heads"][q] = None
            break
    payload["budget"]["bytes"] = payload_bytes(payload)
    return payload


def head_rows_message(
    run: Run, query: int, request_id: int = 0
) -> tuple[HeadRowsReply, list[memoryview]]:
    """Reply to the front end's request `request_id` for one query's full
    per-head rows: (content, buffers) for `AnyWidget.send`, float16
    (layer, head, width)."""
    if not 0 <= query < run.n_queries:
        raise WireError(f"Query row {query} is out of range for {run.n_queries} queries.")
    rows = encode_head_rows(run.attention_heads[:, :, query, :], "float16")
    array = rows["rows"]
    content: HeadRowsReply = {
        "v": MESSAGE_VERSION,
        "kind": "head_rows",
        "id": request_id,
        "query": query,
        "encoding": rows["encoding"],
        "rows": {"dtype": array["dtype"], "shape": array["shape"], "buffer": 0},
    }
    return content, [array["data"]]


def query_at_message(
    run: Run,
    reading: QueryReading,
    request_id: int = 0,
    attention_dtype: str = "float16",
) -> tuple[QueryAtReply, list[memoryview]]:
    """Reply to the front end's request `request_id` for a clicked position:
    the query `reading.name` of `run` (which holds it, last or not), with what
    the payload holds for each of its queries (the head-averaged row in
    `attention_dtype`, per-head rows in float16, region and first-token masses,
    the lens). (content, buffers) for `AnyWidget.send`."""
    q = run.query_index(reading.name)
    lens = run.lens
    rows = run.attention_heads[:, :, q, :].astype(np.float32)  # (layer, head, pos)
    membership = region_membership(run)
    averaged = run.attention[:, q, :].astype(np.float32)
    heads = encode_head_rows(rows, "float16")
    arrays = {
        "attention": encode_array(averaged.astype(attention_dtype)),
        "heads": heads["rows"],
        "curves": encode_array(averaged @ membership),
        "curves_heads": encode_array(rows @ membership),
        "first_token": encode_array(first_token_masses(averaged)),
        "first_token_heads": encode_array(first_token_masses(rows)),
        "top_ids": encode_array(_int32(lens.top_ids[:, q], "lens.top_ids")),
        "top_probs": encode_array(lens.top_probs[:, q].astype(np.float32)),
        "entropy": encode_array(lens.entropy[:, q].astype(np.float32)),
        "kl_to_final": encode_array(lens.kl_to_final[:, q].astype(np.float32)),
        "tracked_ranks": encode_array(_int32(lens.tracked_ranks[:, q], "lens.tracked_ranks")),
        "tracked_probs": encode_array(lens.tracked_probs[:, q].astype(np.float32)),
    }
    refs: dict[str, BufferRef] = {
        name: {"dtype": array["dtype"], "shape": array["shape"], "buffer": i}
        for i, (name, array) in enumerate(arrays.items())
    }
    top = sorted(set(lens.top_ids[:, q].ravel().tolist()))
    content: QueryAtReply = {
        "v": MESSAGE_VERSION,
        "kind": "query_at",
        "id": request_id,
        "name": reading.name,
        "pos": int(run.queries[reading.name]),
        "method": "cache" if reading.method == "cache" else "pass",
        "note": reading.note,
        "seconds": float(reading.seconds),
        "attention": refs["attention"],
        "heads": {"encoding": heads["encoding"], "rows": refs["heads"]},
        "curves": refs["curves"],
        "curves_heads": refs["curves_heads"],
        "first_token": refs["first_token"],
        "first_token_heads": refs["first_token_heads"],
        "lens": {
            "top_ids": refs["top_ids"],
            "top_probs": refs["top_probs"],
            "entropy": refs["entropy"],
            "kl_to_final": refs["kl_to_final"],
            "tracked_ranks": refs["tracked_ranks"],
            "tracked_probs": refs["tracked_probs"],
            "vocab": {str(i): lens.vocab.get(i, f"<id {i}>") for i in top},
        },
    }
    return content, [array["data"] for array in arrays.values()]
