"""The wire format: arrays as binary buffers, the explorer payload and its budget. No torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tealeaves_widgets.present import palette
from tealeaves_widgets.widgets import wire
from tealeaves_widgets.widgets.wire import (
    PayloadOptions,
    WireError,
    decode_array,
    decode_head_rows,
    encode_array,
    head_rows_message,
    payload_bytes,
    run_payload,
)
from tests.helpers.isolated import loaded_after_import
from tests.helpers.synthetic import synthetic_run

MB = 1_000_000


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=200, n_layers=6, n_heads=3, n_queries=4, seed=1)


@pytest.fixture(scope="module")
def big_run():
    """The benchmark shape: T=2048, 30 layers x 9 heads, 8 queries."""
    return synthetic_run(n_tokens=2048)


def buffers(value):
    """Every memoryview in a nested value (what anywidget sends as buffers)."""
    if isinstance(value, memoryview):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from buffers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from buffers(v)


# -- arrays ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", wire.WIRE_DTYPES)
def test_array_round_trip_is_a_flat_byte_memoryview(dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    encoded = encode_array(array)
    assert encoded["dtype"] == dtype and encoded["shape"] == [2, 3, 4]
    assert isinstance(encoded["data"], memoryview)
    assert encoded["data"].format == "B" and encoded["data"].nbytes == array.nbytes
    np.testing.assert_array_equal(decode_array(encoded), array)


def test_encode_shares_memory_with_a_contiguous_array():
    array = np.zeros((4, 5), dtype=np.float32)
    encoded = encode_array(array)
    array[1, 2] = 7.0
    assert decode_array(encoded)[1, 2] == 7.0


def test_empty_arrays_travel_too():
    # e.g. the tracked-token arrays of a run that tracks no token: (layer, query, 0)
    encoded = encode_array(np.zeros((3, 2, 0), dtype=np.int32))
    assert encoded["shape"] == [3, 2, 0] and encoded["data"].nbytes == 0
    assert decode_array(encoded).shape == (3, 2, 0)


def test_big_endian_and_strided_arrays_arrive_little_endian_and_contiguous():
    array = np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]
    encoded = encode_array(array)
    assert bytes(encoded["data"][:4]) == (0).to_bytes(4, "little")
    np.testing.assert_array_equal(decode_array(encoded), [[0, 2], [4, 6], [8, 10]])


def test_64_bit_arrays_are_refused_not_downcast():
    with pytest.raises(WireError, match="int64.*Cast it first"):
        encode_array(np.arange(3))
    with pytest.raises(WireError, match="float64"):
        encode_array(np.ones(3))


# -- payload contents -----------------------------------------------------


def test_payload_has_schema_tokens_and_regions(run):
    payload = run_payload(run)
    assert payload["schema_version"] == wire.SCHEMA_VERSION == 2
    assert payload["tokens"] == list(run.tokens)
    assert payload["n_tokens"] == run.n_tokens
    assert [r["name"] for r in payload["regions"]] == list(run.regions)
    for region, info in zip(payload["regions"], run.regions.values(), strict=True):
        np.testing.assert_array_equal(decode_array(region["token_indices"]), info.token_indices)
        assert region["color"].startswith("#") and region["parent"] == info.parent
    assert [q["name"] for q in payload["queries"]] == list(run.queries)
    assert payload["queries"][payload["default_query"]]["name"] == "final"


def test_token_region_is_the_innermost_region(run):
    owner = decode_array(run_payload(run)["token_region"])
    names = list(run.regions)
    question = run.regions["question"].token_indices
    assert {names[i] for i in owner[question]} == {"question"}
    assert names[owner[run.regions["context"].token_indices[0]]] == "context"
    assert names[owner[0]] == "template"
    assert owner.dtype == np.int16 and (owner >= 0).all()


def test_template_is_grey_and_user_regions_get_distinct_colours(run):
    colors = palette.region_colors(run)
    assert colors["template"] == palette.TEMPLATE_COLOR
    others = [c for name, c in colors.items() if name != "template"]
    assert len(set(others)) == len(others)


def test_head_averaged_rows_are_float16_close_to_the_run(run):
    payload = run_payload(run)
    attention = decode_array(payload["attention"])
    assert attention.dtype == np.float16 and attention.shape == run.attention.shape
    np.testing.assert_allclose(attention, run.attention, atol=1e-3, rtol=1e-3)
    payload32 = run_payload(run, PayloadOptions(attention_dtype="float32"))
    np.testing.assert_array_equal(decode_array(payload32["attention"]), run.attention)


def test_per_head_rows_keep_top_tokens_and_drop_causal_zeros(run):
    payload = run_payload(run)
    for q, pos in enumerate(run.queries.values()):
        rows = payload["heads"][q]
        assert rows["encoding"] == "sqrt-uint8"
        assert rows["rows"]["shape"] == [run.n_layers, run.n_heads, pos + 1]
        decoded = decode_head_rows(rows, run.n_tokens)
        exact = run.attention_heads[:, :, q, :]
        # sqrt keeps small weights apart: error <= half a step of sqrt space
        assert np.abs(np.sqrt(decoded) - np.sqrt(exact)).max() <= 0.5 / 255 + 1e-6
        assert (decoded.argmax(-1) == exact.argmax(-1)).mean() >= 0.95


def test_sqrt_uint8_keeps_weights_a_linear_scale_would_zero():
    rows = np.array([[[0.6, 0.001, 0.0005, 0.398]]], dtype=np.float32)
    decoded = decode_head_rows(wire.encode_head_rows(rows, "sqrt-uint8"), 4)
    assert np.rint(255 * rows[0, 0, 1:3]).tolist() == [0.0, 0.0]  # what linear would give
    assert (decoded[0, 0, 1:3] > 0).all()


def test_curves_are_raw_region_masses(run):
    payload = run_payload(run)
    curves = decode_array(payload["curves"])
    per_head = decode_array(payload["curves_heads"])
    names = list(run.regions)
    for q, name in enumerate(run.queries):
        frame = run.curves(name, normalize="raw")
        np.testing.assert_allclose(curves[:, q, :], frame[names].to_numpy(), rtol=1e-5, atol=1e-6)
        frame_head = run.curves(name, normalize="raw", head=1)
        np.testing.assert_allclose(
            per_head[:, 1, q, :], frame_head[names].to_numpy(), rtol=1e-5, atol=1e-6
        )


def test_lens_arrays_and_vocab(run):
    lens = run_payload(run)["lens"]
    np.testing.assert_array_equal(decode_array(lens["top_ids"]), run.lens.top_ids)
    np.testing.assert_array_equal(decode_array(lens["top_probs"]), run.lens.top_probs)
    np.testing.assert_array_equal(decode_array(lens["entropy"]), run.lens.entropy)
    np.testing.assert_array_equal(decode_array(lens["tracked_ranks"]), run.lens.tracked_ranks)
    assert lens["tracked_tokens"] == list(run.lens.tracked_tokens)
    used = set(np.unique(run.lens.top_ids).tolist()) | set(run.lens.tracked_ids.tolist())
    assert {int(i) for i in lens["vocab"]} == used
    assert all(lens["vocab"][str(i)] == run.lens.vocab[i] for i in used)


def test_payload_is_json_plus_buffers_only(run):
    payload = run_payload(run)
    text = json.dumps(payload, default=lambda v: None if isinstance(v, memoryview) else repr(v))
    assert "ndarray" not in text and "array(" not in text
    assert all(b.format == "B" for b in buffers(payload))


# -- budget -----------------------------------------------------------------


def test_default_explorer_payload_for_t2048_fits_4_mb_with_every_head(big_run):
    payload = run_payload(big_run)
    size = payload_bytes(payload)
    assert payload["budget"]["bytes"] == size
    assert size <= 4 * MB, f"{size / MB:.2f} MB"
    assert all(rows is not None for rows in payload["heads"])
    binary = sum(b.nbytes for b in buffers(payload))
    assert binary / size > 0.98  # bulk travels as binary, not JSON


def _sizes(run):
    """(bytes without per-head rows, bytes of each query's per-head rows)."""
    full = run_payload(run, PayloadOptions(max_bytes=10 * MB))
    rows = [payload_bytes(h) - len("null") for h in full["heads"]]
    return payload_bytes(full) - sum(rows), rows


def test_a_small_budget_keeps_the_default_query_first(run):
    base, rows = _sizes(run)
    budget = base + rows[-1] + 100  # room for "final" only (q0's rows need more)
    assert min(rows[:-1]) > 100
    payload = run_payload(run, PayloadOptions(max_bytes=budget))
    assert [h is not None for h in payload["heads"]] == [False, False, False, True]
    assert payload["budget"]["bytes"] == payload_bytes(payload) <= budget


def test_head_queries_choose_the_order(run):
    base, rows = _sizes(run)
    options = PayloadOptions(max_bytes=base + rows[1] + rows[0] + 100, head_queries=("q1", "q0"))
    payload = run_payload(run, options)
    assert [h is not None for h in payload["heads"]] == [True, True, False, False]


def test_a_budget_too_small_for_the_rest_says_what_to_do(run):
    with pytest.raises(WireError, match="Raise PayloadOptions.max_bytes"):
        run_payload(run, PayloadOptions(max_bytes=1000))


def test_bad_options_are_refused(run):
    with pytest.raises(WireError, match="float16"):
        run_payload(run, PayloadOptions(attention_dtype="int8"))
    with pytest.raises(WireError, match="sqrt-uint8"):
        run_payload(run, PayloadOptions(head_encoding="png"))


def test_head_rows_message_sends_float16_rows_as_one_buffer(run):
    content, sent = head_rows_message(run, 2)
    assert content["kind"] == "head_rows" and content["query"] == 2
    assert len(sent) == 1 and content["rows"]["buffer"] == 0
    rows = decode_head_rows(
        {"encoding": content["encoding"], "rows": {**content["rows"], "data": sent[0]}},
        run.n_tokens,
    )
    np.testing.assert_allclose(rows, run.attention_heads[:, :, 2, :], atol=1e-3)
    with pytest.raises(WireError, match="out of range"):
        head_rows_message(run, 9)


# -- dependencies ------------------------------------------------------------


def test_widgets_import_without_torch_or_transformers():
    modules = [
        "tealeaves_widgets",
        "tealeaves_widgets.widgets",
        "tealeaves_widgets.widgets.live",
        "tealeaves_widgets.present",
        "tealeaves_widgets.batch.notebooks",
    ]
    assert loaded_after_import(modules, ["torch", "transformers"]) == []
