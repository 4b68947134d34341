"""The invariants of a `Run`: what its fields must agree on for its tables,
figures and views to work (the shapes documented on `core.run.Run` and
`Lens`). A run file is checked against them when it is opened, so a file
that passes its checksum but does not hold a run is refused then, not later
with an IndexError; a run is checked before it is saved, so no file is
written that could not be opened.

Only sizes and small index arrays are read (token ids, offsets, region
indices, the lens's ids), never the attention rows: a mapped file stays
unread until it is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.run import Run


def run_problem(run: Run) -> str | None:
    """The first invariant `run` breaks, as a phrase naming it; None if it holds all."""
    for check in (_positions, _attention, _queries, _regions, _lens_arrays, _lens_ids):
        problem = check(run)
        if problem is not None:
            return problem
    return None


# -- helpers -----------------------------------------------------------------------


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _array_problem(
    name: str, array: Any, dtype: str, dims: tuple[tuple[str, int | None], ...]
) -> str | None:
    """`array` must be a numpy array of `dtype` whose shape is `dims`
    ((dimension name, size or None for any size), ...)."""
    if not isinstance(array, np.ndarray):
        return f"{name} must be a numpy array, got {type(array).__name__}"
    if array.dtype != np.dtype(dtype):
        return f"{name} must be {dtype}, got {array.dtype}"
    fits = array.ndim == len(dims) and all(
        size is None or size == actual for (_, size), actual in zip(dims, array.shape, strict=True)
    )
    if fits:
        return None
    names = _tuple([dim for dim, _ in dims])
    sizes = [dim if size is None else str(size) for dim, size in dims]
    expected = names if all(size is None for _, size in dims) else f"{names} = {_tuple(sizes)}"
    return f"{name} must be {dtype} of shape {expected}, got {tuple(array.shape)}"


def _ids_problem(name: str, ids: np.ndarray) -> str | None:
    if ids.size and int(ids.min()) < 0:
        return f"{name} must be token ids >= 0, got {int(ids.min())}"
    return None


def _length(array: Any) -> str:
    shape: tuple[int, ...] = getattr(array, "shape", ())
    return str(shape[0]) if shape else "no"


# -- the checks ---------------------------------------------------------------------


def _positions(run: Run) -> str | None:
    """tokens, token_ids and offsets: one entry per position, offsets within
    the text, each token the text its offsets span."""
    n = len(run.tokens)
    lengths = (_length(run.token_ids), _length(run.offsets))
    if lengths != (str(n), str(n)):
        return (
            f"tokens, token_ids and offsets must have one entry per position, got {n} tokens, "
            f"{lengths[0]} token_ids and {lengths[1]} offsets"
        )
    problem = _array_problem("token_ids", run.token_ids, "int64", (("pos", n),))
    problem = problem or _array_problem("offsets", run.offsets, "int64", (("pos", n), ("2", 2)))
    problem = problem or _ids_problem("token_ids", run.token_ids)
    if problem:
        return problem
    starts, ends = run.offsets[:, 0], run.offsets[:, 1]
    outside = (starts < 0) | (starts > ends) | (ends > len(run.text))
    if outside.any():
        at = int(np.argmax(outside))
        return (
            f"offsets must lie within the text (0 <= start <= end <= {len(run.text)}), got "
            f"{run.offsets[at].tolist()} at position {at}"
        )
    for at, (token, start, end) in enumerate(
        zip(run.tokens, starts.tolist(), ends.tolist(), strict=True)
    ):
        if token != run.text[start:end]:
            return (
                f"tokens[{at}] must be the text its offsets span, {run.text[start:end]!r}, "
                f"got {token!r:.80}"
            )
    return None


def _attention(run: Run) -> str | None:
    heads = run.attention_heads
    n_heads = heads.shape[1] if isinstance(heads, np.ndarray) and heads.ndim == 4 else None
    n_layers = run.attention.shape[0] if isinstance(run.attention, np.ndarray) else None
    layer, query, pos = ("layer", n_layers), ("query", len(run.queries)), ("pos", run.n_tokens)
    return _array_problem("attention", run.attention, "float32", (layer, query, pos)) or (
        _array_problem("attention_heads", heads, "float32", (layer, ("head", n_heads), query, pos))
    )


def _queries(run: Run) -> str | None:
    for name, pos in run.queries.items():
        valid = isinstance(pos, (int, np.integer)) and not isinstance(pos, bool)
        if not valid or not 0 <= pos < run.n_tokens:
            return f"queries[{name!r}] must be a position in [0, {run.n_tokens}), got {pos!r}"
    return None


def _regions(run: Run) -> str | None:
    for name, info in run.regions.items():
        label = f"regions[{name!r}]"
        if info.name != name:
            return f"{label} must be named {name!r}, got {info.name!r}"
        start, end = info.char_span
        if not 0 <= start <= end <= len(run.text):
            return (
                f"{label}.char_span must lie within the text (0 <= start <= end <= "
                f"{len(run.text)}), got {tuple(info.char_span)}"
            )
        if info.parent is not None and (info.parent == name or info.parent not in run.regions):
            return f"{label}.parent must name another region, got {info.parent!r}"
        indices = info.token_indices
        problem = _array_problem(f"{label}.token_indices", indices, "int64", (("n_tokens", None),))
        if problem:
            return problem
        if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= run.n_tokens):
            outside = indices[(indices < 0) | (indices >= run.n_tokens)]
            return (
                f"{label}.token_indices must lie in [0, {run.n_tokens}) (pos), got "
                f"{int(outside[0])}"
            )
        if indices.size > 1 and not bool(np.all(np.diff(indices) > 0)):
            return (
                f"{label}.token_indices must be sorted and distinct, got "
                f"{indices[:12].tolist()}{' ...' if indices.size > 12 else ''}"
            )
    return None


def _lens_arrays(run: Run) -> str | None:
    lens = run.lens
    layer, query = ("layer", run.n_layers), ("query", len(run.queries))
    top = lens.top_ids
    k = ("k", top.shape[2] if isinstance(top, np.ndarray) and top.ndim == 3 else None)
    n_tracked = len(lens.tracked_tokens)
    ids = lens.tracked_ids
    if isinstance(ids, np.ndarray) and ids.ndim == 1 and ids.shape[0] != n_tracked:
        return (
            "lens.tracked_tokens must have one entry per tracked id, got "
            f"{n_tracked} tracked_tokens and {ids.shape[0]} tracked_ids"
        )
    tracked = ("tracked", n_tracked)
    expected = (
        ("lens.top_ids", top, "int64", (layer, query, k)),
        ("lens.top_probs", lens.top_probs, "float32", (layer, query, k)),
        ("lens.entropy", lens.entropy, "float32", (layer, query)),
        ("lens.kl_to_final", lens.kl_to_final, "float32", (layer, query)),
        ("lens.tracked_ids", ids, "int64", (tracked,)),
        ("lens.tracked_ranks", lens.tracked_ranks, "int64", (layer, query, tracked)),
        ("lens.tracked_probs", lens.tracked_probs, "float32", (layer, query, tracked)),
    )
    for name, array, dtype, dims in expected:
        problem = _array_problem(name, array, dtype, dims)
        if problem:
            return problem
    if not all(isinstance(token, str) for token in lens.tracked_tokens):
        return "lens.tracked_tokens must be str"
    return None


def _lens_ids(run: Run) -> str | None:
    lens = run.lens
    problem = _ids_problem("lens.top_ids", lens.top_ids) or _ids_problem(
        "lens.tracked_ids", lens.tracked_ids
    )
    if problem:
        return problem
    for token_id, text in lens.vocab.items():
        valid_id = isinstance(token_id, (int, np.integer)) and not isinstance(token_id, bool)
        if not valid_id or token_id < 0 or not isinstance(text, str):
            return (
                f"lens.vocab must map token ids (ints >= 0) to str, got {token_id!r}: {text!r:.40}"
            )
    used = set(lens.top_ids.ravel().tolist()) | set(lens.tracked_ids.tolist())
    missing = sorted(used - set(lens.vocab))
    if missing:
        return (
            "lens.vocab must hold every id of lens.top_ids and lens.tracked_ids, but lacks "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}"
        )
    return None
