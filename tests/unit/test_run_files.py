"""Run files that are damaged, tampered with, foreign or huge: each is refused
on open with a `RunFileError` naming the file and what broke, before anything
large is read. No torch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.errors import RunFileError
from tealeaves_widgets.io import runfile
from tealeaves_widgets.io.runfile import open_run
from tests.helpers.fake_runs import fake_run, regions_of, variant_words
from tests.helpers.run_files import read_parts, resign, write_raw

WORDS = variant_words(False)
N_TOKENS = len(WORDS)  # 19; queries "final" @17, "last_token" @18; 6 layers, 2 heads, top-5


@pytest.fixture
def run() -> tw.Run:
    return fake_run(WORDS, regions_of(WORDS))


@pytest.fixture
def saved(run, tmp_path):
    return run.save(tmp_path / "run.tlrun")


# -- invariants: a file that passes its checksum but does not hold a run ------


def _drop_last(key):
    return lambda arrays: arrays.update({key: arrays[key][..., :-1]})


def _set_item(key, where, value):
    def change(arrays):
        array = arrays[key].copy()
        array[where] = value
        arrays[key] = array

    return change


def _as(key, dtype):
    return lambda arrays: arrays.update({key: arrays[key].astype(dtype)})


BROKEN_ARRAYS = {
    "region past the prompt": (
        lambda a: a.update({"region/0": np.array([4, N_TOKENS], np.int64)}),
        r"regions\['rules'\]\.token_indices must lie in \[0, 19\)",
    ),
    "region unsorted": (
        lambda a: a.update({"region/0": np.array([5, 4], np.int64)}),
        r"regions\['rules'\]\.token_indices must be sorted",
    ),
    "region repeated": (
        lambda a: a.update({"region/0": np.array([4, 4], np.int64)}),
        r"regions\['rules'\]\.token_indices must be sorted",
    ),
    "region 2-d": (
        lambda a: a.update({"region/0": np.array([[4, 5]], np.int64)}),
        r"regions\['rules'\]\.token_indices must be .*\(n_tokens,\)",
    ),
    "region float": (_as("region/0", np.float32), r"token_indices must be int64"),
    "attention pos": (_drop_last("attention"), r"attention must be .*\(layer, query, pos\)"),
    "attention dtype": (_as("attention", np.float64), r"attention must be float32"),
    "heads pos": (
        _drop_last("attention_heads"),
        r"attention_heads must be .*\(layer, head, query, pos\)",
    ),
    "heads layers": (
        lambda a: a.update({"attention_heads": a["attention_heads"][:-1]}),
        r"attention_heads must be .*\(6, 2, 2, 19\)",
    ),
    "token_ids length": (
        _drop_last("token_ids"),
        r"tokens, token_ids and offsets must have one entry per position, got 19 tokens, "
        r"18 token_ids and 19 offsets",
    ),
    "token_ids dtype": (_as("token_ids", np.int32), r"token_ids must be int64"),
    "token id negative": (_set_item("token_ids", 3, -1), r"token_ids must be .*>= 0"),
    "offsets shape": (
        lambda a: a.update({"offsets": np.zeros((N_TOKENS, 3), np.int64)}),
        r"offsets must be .*\(pos, 2\) = \(19, 2\)",
    ),
    "offsets past text": (_set_item("offsets", (-1, 1), 500), r"offsets must lie within the text"),
    "offsets reversed": (_set_item("offsets", (2, 0), 13), r"offsets must lie within the text"),
    "top_ids k": (
        _drop_last("lens/top_ids"),
        r"lens\.top_probs must be float32 of shape \(layer, query, k\) = \(6, 2, 4\)",
    ),
    "top_probs dtype": (_as("lens/top_probs", np.float64), r"lens\.top_probs must be float32"),
    "entropy shape": (_drop_last("lens/entropy"), r"lens\.entropy must be .*\(layer, query\)"),
    "kl shape": (
        lambda a: a.update({"lens/kl_to_final": a["lens/kl_to_final"][None]}),
        r"lens\.kl_to_final must be .*\(layer, query\)",
    ),
    "tracked ids count": (
        _drop_last("lens/tracked_ids"),
        r"lens\.tracked_tokens must have one entry per tracked id, got 2 tracked_tokens and 1",
    ),
    "tracked ranks": (
        _drop_last("lens/tracked_ranks"),
        r"lens\.tracked_ranks must be .*\(layer, query, tracked\)",
    ),
    "tracked probs dtype": (
        _as("lens/tracked_probs", np.float16),
        r"lens\.tracked_probs must be float32",
    ),
    "top id negative": (_set_item("lens/top_ids", (0, 0, 0), -4), r"lens\.top_ids must be .*>= 0"),
    "top id not in vocab": (
        _set_item("lens/top_ids", (0, 0, 0), 999),
        r"lens\.vocab must hold every id of lens\.top_ids and lens\.tracked_ids.*999",
    ),
}


@pytest.mark.parametrize("change, message", BROKEN_ARRAYS.values(), ids=BROKEN_ARRAYS.keys())
def test_open_refuses_arrays_that_break_an_invariant(saved, change, message):
    resign(saved, change_arrays=change)
    with pytest.raises(RunFileError, match=message) as caught:
        open_run(saved)
    assert str(saved) in str(caught.value) and "Save the run again" in str(caught.value)


def _update(**values):
    return lambda fields: fields.update(values)


def _edit(key, function):
    return lambda fields: function(fields[key])


BROKEN_FIELDS = {
    "query past the prompt": (
        _edit("queries", lambda q: q[0].__setitem__(1, N_TOKENS)),
        r"queries\['final'\] must be a position in \[0, 19\), got 19",
    ),
    "query negative": (
        _edit("queries", lambda q: q[1].__setitem__(1, -1)),
        r"queries\['last_token'\] must be a position in \[0, 19\)",
    ),
    "tokens count": (
        _edit("tokens", lambda t: t.pop()),
        r"tokens, token_ids and offsets must have one entry per position, got 18 tokens",
    ),
    "token text": (
        _edit("tokens", lambda t: t.__setitem__(0, "Hi ")),
        r"tokens\[0\] must be the text its offsets span, 'You ', got 'Hi '",
    ),
    "text shorter": (
        lambda f: f.update(text=f["text"][:10]),
        r"offsets must lie within the text",
    ),
    "tracked tokens count": (
        _edit("tracked_tokens", lambda t: t.pop()),
        r"lens\.tracked_tokens must have one entry per tracked id",
    ),
    "char span past text": (
        _edit("regions", lambda r: r[0].__setitem__("char_span", [0, 500])),
        r"regions\['rules'\]\.char_span must lie within the text",
    ),
    "unknown parent": (
        _edit("regions", lambda r: r[0].__setitem__("parent", "nowhere")),
        r"regions\['rules'\]\.parent must name another region, got 'nowhere'",
    ),
    "repeated region name": (
        _edit("regions", lambda r: r[1].__setitem__("name", "rules")),
        r"regions must have distinct names, 'rules' is repeated",
    ),
    "repeated query name": (
        _edit("queries", lambda q: q[1].__setitem__(0, "final")),
        r"queries must have distinct names, 'final' is repeated",
    ),
    "missing region array": (
        _edit("regions", lambda r: r[0].__setitem__("array", "region/9")),
        r"regions\[0\]\.array names 'region/9', which the file does not hold",
    ),
    "vocab key": (
        _edit("vocab", lambda v: v.__setitem__("x", "y")),
        r"vocab must map token ids .* got key 'x'",
    ),
    "vocab value": (
        _edit("vocab", lambda v: v.__setitem__("3", 3)),
        r"vocab must map token ids to str",
    ),
    "text type": (_update(text=5), r"text must be a str, got int"),
    "tokens type": (_update(tokens="abc"), r"tokens must be a list of str, got 'abc'"),
    "queries type": (_update(queries={"final": 17}), r"queries must be a list of \[name, pos\]"),
    "query pos bool": (
        _edit("queries", lambda q: q[0].__setitem__(1, True)),
        r"queries must be a list of \[name, pos\]",
    ),
    "regions type": (_update(regions=[5]), r"regions\[0\] must be an object with keys"),
    "char span type": (
        _edit("regions", lambda r: r[0].__setitem__("char_span", "0:5")),
        r"regions\[0\]\.char_span must be \[start, end\]",
    ),
    "builtin type": (
        _edit("regions", lambda r: r[0].__setitem__("builtin", "no")),
        r"regions\[0\]\.builtin must be a bool",
    ),
    "model_info type": (_update(model_info=[1]), r"model_info must be an object, got list"),
    "tracked tokens type": (
        _update(tracked_tokens=[1, 2]),
        r"tracked_tokens must be a list of str",
    ),
}


@pytest.mark.parametrize("change, message", BROKEN_FIELDS.values(), ids=BROKEN_FIELDS.keys())
def test_open_refuses_metadata_that_breaks_an_invariant(saved, change, message):
    resign(saved, change_fields=change)
    with pytest.raises(RunFileError, match=message) as caught:
        open_run(saved)
    assert str(saved) in str(caught.value)


def test_region_past_the_prompt_is_refused_on_open_not_on_use(saved):
    """The defect: such a file opened, then `curves()` raised IndexError."""
    resign(saved, change_arrays=lambda a: a.update({"region/2": np.array([0, 40], np.int64)}))
    with pytest.raises(RunFileError, match=r"regions\['persona'\].*got 40"):
        open_run(saved).curves()


def test_save_refuses_a_run_that_breaks_an_invariant(run, tmp_path):
    regions = dict(run.regions)
    regions["rules"] = dataclasses.replace(regions["rules"], token_indices=np.array([3, 99]))
    with pytest.raises(RunFileError, match=r"Cannot save.*regions\['rules'\].*\[0, 19\)"):
        dataclasses.replace(run, regions=regions).save(tmp_path / "bad.tlrun")
    heads = run.attention_heads.astype(np.float16)
    with pytest.raises(RunFileError, match=r"attention_heads must be float32, got float16"):
        dataclasses.replace(run, attention_heads=heads).save(tmp_path / "bad.tlrun")
    assert list(tmp_path.iterdir()) == []


# -- the header and the sizes, checked before anything large is read ------------


def test_open_refuses_a_header_length_beyond_the_limit_or_the_file(tmp_path):
    huge = write_raw(tmp_path / "huge.tlrun", {}, header_size=2**40)
    with pytest.raises(RunFileError, match=r"header of 1099511627776 bytes.*limit of 100000000"):
        open_run(huge)
    short = write_raw(tmp_path / "short.tlrun", b'{"a": 1}', header_size=1000)
    with pytest.raises(RunFileError, match=r"header of 1000 bytes, but only 8 follow"):
        open_run(short)
    zeros = tmp_path / "zeros.tlrun"
    zeros.write_bytes(bytes(4096))
    with pytest.raises(RunFileError, match=r"cannot be read as safetensors.*header of 0 bytes"):
        open_run(zeros)


def _tensor(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


BAD_HEADERS = {
    "not an object": ([1, 2], b"", r"header must be a JSON object, got list"),
    "metadata not str": ({"__metadata__": {"a": 1}}, b"", r"__metadata__ must map str to str"),
    "dtype": ({"x": _tensor("BF16")}, bytes(4), r"tensor 'x' has dtype 'BF16'"),
    "shape": ({"x": _tensor(shape=(-2,))}, bytes(8), r"tensor 'x' has shape \[-2\]"),
    "shape type": ({"x": _tensor(shape=("2",))}, bytes(8), r"tensor 'x' has shape \['2'\]"),
    "entry": ({"x": [0, 8]}, bytes(8), r"tensor 'x' must be an object with dtype, shape"),
    "size": ({"x": _tensor(shape=(100,))}, bytes(8), r"tensor 'x'.*400 bytes.*span 8 bytes"),
    "past end": ({"x": _tensor(offsets=(0, 8))}, bytes(4), r"tensor 'x' ends at byte 8.*has 4"),
    "gap": (
        {"x": _tensor(offsets=(4, 12))},
        bytes(12),
        r"tensor 'x' starts at byte 4 of the data, expected 0",
    ),
    "overlap": (
        {"x": _tensor(), "y": _tensor(offsets=(4, 12))},
        bytes(12),
        r"tensor 'y' starts at byte 4 of the data, expected 8",
    ),
    "appended": ({"x": _tensor()}, bytes(12), r"4 bytes follow the last tensor"),
}


@pytest.mark.parametrize("header, data, message", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_open_checks_every_tensor_against_the_file_size(tmp_path, header, data, message):
    path = write_raw(tmp_path / "bad.tlrun", header, data)
    with pytest.raises(RunFileError, match=message) as caught:
        open_run(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
def test_reopened_run_equals_saved_and_is_read_only(run, tmp_path, monkeypatch, mapped):
    """Small data sections are read, large ones mapped: both give the same run."""
    monkeypatch.setattr(runfile, "MAP_FROM_BYTES", 0 if mapped else 1 << 40)
    back = open_run(run.save(tmp_path / "run.tlrun"))
    for name in ("attention", "attention_heads", "token_ids", "offsets"):
        array = getattr(back, name)
        np.testing.assert_array_equal(array, getattr(run, name))
        assert array.dtype == getattr(run, name).dtype and not array.flags.writeable
        assert type(array) is np.ndarray
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0
    for name, info in back.regions.items():
        np.testing.assert_array_equal(info.token_indices, run.regions[name].token_indices)
        assert not info.token_indices.flags.writeable
    np.testing.assert_array_equal(back.lens.tracked_probs, run.lens.tracked_probs)
    assert back.curves().equals(run.curves())


@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
def test_tampered_bytes_fail_the_checksum_on_both_paths(saved, monkeypatch, mapped):
    monkeypatch.setattr(runfile, "MAP_FROM_BYTES", 0 if mapped else 1 << 40)
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0x01  # inside the last tensor
    saved.write_bytes(bytes(data))
    with pytest.raises(RunFileError, match=r"failed its sha256 check"):
        open_run(saved)


# -- deep JSON and versions ------------------------------------------------------------

DEEP = "[" * 100_000


def test_deep_json_in_run_metadata_or_header_is_a_run_file_error(saved, tmp_path):
    arrays, _ = read_parts(saved)
    import safetensors.numpy

    safetensors.numpy.save_file(arrays, saved, metadata={runfile.METADATA_KEY: DEEP})
    with pytest.raises(RunFileError, match=rf"{saved}.*nested too deeply"):
        open_run(saved)
    header = write_raw(tmp_path / "deep.tlrun", DEEP.encode())
    with pytest.raises(RunFileError, match=rf"{header}.*nested too deeply"):
        open_run(header)


@pytest.mark.parametrize("version", [True, 1.0, "1", None, 0])
def test_run_file_refuses_a_format_version_that_is_not_an_int(saved, version):
    resign(saved, change_fields=_update(format_version=version))
    with pytest.raises(RunFileError, match=rf"{saved} has format_version {version!r}"):
        open_run(saved)
