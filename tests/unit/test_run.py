"""Unit tests for `Run` (sizes, curves, lens table, repr) and run files. No torch."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy

from tealeaves_widgets.core.run import Lens, RegionInfo, Run
from tealeaves_widgets.errors import RunFileError, TealeavesError
from tealeaves_widgets.io.runfile import open_run
from tests.helpers.isolated import loaded_after_import

TOKENS = ("<s>", "Be", " kind", "<u>", "Why", " so", "?")
N_LAYERS, N_HEADS = 3, 2
QUERIES = {"answer": 5, "final": 6}  # "final" is not first: the default must find it
REGION_TOKENS = {"template": [0, 3], "system": [1, 2], "user": [4, 5, 6], "question": [4, 5]}


def _softmax_rows(rng: np.random.Generator) -> np.ndarray:
    """(layer, head, query, pos) causal softmax rows; layer 0 is uniform."""
    logits = rng.normal(size=(N_LAYERS, N_HEADS, len(QUERIES), len(TOKENS)))
    logits[0] = 0.0
    for q, pos in enumerate(QUERIES.values()):
        logits[:, :, q, pos + 1 :] = -np.inf
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def _lens() -> Lens:
    # layer x query x k (k = 3), ids 10.. with texts in vocab
    top_ids = np.array(
        [
            [[10, 11, 12], [13, 10, 11]],
            [[11, 10, 12], [10, 13, 12]],
            [[12, 11, 10], [10, 12, 13]],
        ],
        dtype=np.int64,
    )
    top_probs = np.array(
        [
            [[0.3, 0.2, 0.1], [0.4, 0.3, 0.1]],
            [[0.5, 0.2, 0.1], [0.6, 0.2, 0.1]],
            [[0.7, 0.1, 0.1], [0.8, 0.1, 0.05]],
        ],
        dtype=np.float32,
    )
    return Lens(
        top_ids=top_ids,
        top_probs=top_probs,
        entropy=np.array([[2.0, 2.1], [1.5, 1.2], [0.9, 0.7]], dtype=np.float32),
        kl_to_final=np.array([[1.1, 1.3], [0.4, 0.5], [0.0, 0.0]], dtype=np.float32),
        tracked_ids=np.array([10, 14], dtype=np.int64),
        tracked_tokens=("Paris", " yes"),
        tracked_ranks=np.array(
            [[[1, 40], [2, 9]], [[2, 30], [1, 7]], [[3, 20], [1, 5]]], dtype=np.int64
        ),
        tracked_probs=np.array(
            [[[0.3, 0.01], [0.3, 0.02]], [[0.2, 0.02], [0.6, 0.03]], [[0.1, 0.03], [0.8, 0.04]]],
            dtype=np.float32,
        ),
        vocab={10: " Paris", 11: " the", 12: "\n", 13: " yes", 14: " yes!"},
    )


@pytest.fixture
def run() -> Run:
    heads = _softmax_rows(np.random.default_rng(0))
    ends = np.cumsum([len(t) for t in TOKENS])
    offsets = np.stack([ends - [len(t) for t in TOKENS], ends], axis=1).astype(np.int64)
    text = "".join(TOKENS)
    spans = {"template": (0, len(text)), "system": (3, 10), "user": (13, 20), "question": (13, 19)}
    sections = {"template": "template", "system": "system", "user": "user", "question": "user"}
    regions = {
        name: RegionInfo(
            name=name,
            section=sections[name],
            char_span=spans[name],
            token_indices=np.array(indices, dtype=np.int64),
            parent="user" if name == "question" else None,
            builtin=name != "question",
        )
        for name, indices in REGION_TOKENS.items()
    }
    return Run(
        text=text,
        tokens=TOKENS,
        token_ids=np.arange(100, 100 + len(TOKENS), dtype=np.int64),
        offsets=offsets,
        regions=regions,
        queries=dict(QUERIES),
        attention=heads.mean(axis=1),
        attention_heads=heads,
        lens=_lens(),
        model_info={"model_id": "tiny-test", "n_layers": 3, "versions": {"numpy": "2"}},
        case={"system": "Be kind", "user": "Why so?"},
        region_spec={"regions": [{"name": "question", "in": "user", "end": " so"}]},
    )


def _mass(run: Run, q: int, region: str, head: int | None = None) -> list[float]:
    """Attention mass per layer, summed token by token."""
    masses = []
    for layer in range(run.n_layers):
        total = 0.0
        for t in REGION_TOKENS[region]:
            heads = range(run.n_heads) if head is None else [head]
            row = [float(run.attention_heads[layer, h, q, t]) for h in heads]
            total += sum(row) / len(row)
        masses.append(total)
    return masses


# -- sizes and queries -----------------------------------------------------


def test_sizes(run):
    assert (run.n_layers, run.n_heads, run.n_queries, run.n_tokens) == (3, 2, 2, 7)


def test_query_index_by_name_and_position(run):
    assert run.query_index("answer") == 0
    assert run.query_index("final") == 1
    assert run.query_index(1) == 1
    assert run.query_index(-1) == 1
    assert run.query_index(np.int64(0)) == 0


def test_query_index_errors_list_valid_names(run):
    with pytest.raises(TealeavesError, match=r"\['answer', 'final'\]"):
        run.query_index("last")
    with pytest.raises(TealeavesError, match="not a token position"):
        run.query_index(6)
    with pytest.raises(TealeavesError, match="query name or int"):
        run.query_index(1.0)
    with pytest.raises(TealeavesError):
        run.query_index(True)


# -- curves ----------------------------------------------------------------


def test_curves_raw_defaults_to_final_query_and_all_regions(run):
    frame = run.curves()
    assert frame.index.name == "layer"
    assert list(frame.index) == [0, 1, 2]
    assert list(frame.columns) == ["template", "system", "user", "question"]
    for region in REGION_TOKENS:
        np.testing.assert_allclose(frame[region], _mass(run, 1, region), rtol=1e-6)
    # layer 0 is uniform over the 7 tokens the final query sees
    np.testing.assert_allclose(frame.loc[0, "user"], 3 / 7, rtol=1e-6)
    np.testing.assert_allclose(frame.loc[0, "question"], 2 / 7, rtol=1e-6)
    # template + system + user partition the prompt: each row sums to 1
    np.testing.assert_allclose(frame[["template", "system", "user"]].sum(axis=1), 1, rtol=1e-6)


def test_curves_default_query_is_first_without_final(run):
    no_final = dataclasses.replace(run, queries={"answer": 5, "other": 6})
    pd.testing.assert_frame_equal(no_final.curves(), run.curves("answer"))


def test_curves_other_query_sees_only_its_prefix(run):
    frame = run.curves("answer", regions=["user"])
    np.testing.assert_allclose(frame.loc[0, "user"], 2 / 6, rtol=1e-6)
    np.testing.assert_allclose(frame["user"], _mass(run, 0, "question"), rtol=1e-6)


def test_curves_selects_regions_in_given_order(run):
    frame = run.curves(regions=["question", "system"])
    assert list(frame.columns) == ["question", "system"]
    np.testing.assert_allclose(frame["system"], _mass(run, 1, "system"), rtol=1e-6)


def test_curves_share_counts_each_token_once_without_the_first_token(run):
    """Share is over a partition (each token in its innermost region) and, by
    default, leaves the first token out: "user (own)" is token 6 alone, since
    tokens 4-5 are the nested "question"; "template" is token 3 without token 0."""
    frame = run.curves(normalize="share")
    parts = {"template": [3], "system": [1, 2], "user (own)": [6], "question": [4, 5]}
    assert list(frame.columns) == list(parts)
    assert frame.attrs["exclude"] == "first token"
    for layer in range(N_LAYERS):
        row = [float(run.attention[layer, 1, t]) for t in range(len(TOKENS))]
        kept = sum(row[1:])  # every token but the first
        for column, tokens in parts.items():
            expected = sum(row[t] for t in tokens) / kept
            assert frame.loc[layer, column] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(frame.sum(axis=1), 1.0, rtol=1e-12)
    # layer 0 is uniform over 7 tokens: 6 kept, 1/6 each
    np.testing.assert_allclose(frame.loc[0].to_numpy(), [1 / 6, 2 / 6, 1 / 6, 2 / 6], rtol=1e-6)
    # a selection picks columns: shares stay shares of the whole, not of the selection
    picked = run.curves(normalize="share", regions=["user", "question"])
    assert list(picked.columns) == ["user (own)", "question"]
    pd.testing.assert_frame_equal(picked, frame[["user (own)", "question"]])


def test_curves_per_region_is_min_max_per_column(run):
    frame = run.curves(normalize="per-region")
    for region in REGION_TOKENS:
        mass = np.array(_mass(run, 1, region))
        expected = (mass - mass.min()) / (mass.max() - mass.min())
        np.testing.assert_allclose(frame[region], expected, rtol=1e-5, atol=1e-6)
        assert frame[region].min() == 0.0 and frame[region].max() == pytest.approx(1.0)


def test_curves_per_region_constant_column_is_zero(run):
    flat = np.broadcast_to(run.attention[:1], run.attention.shape).copy()
    frame = dataclasses.replace(run, attention=flat).curves(normalize="per-region")
    assert (frame.to_numpy() == 0.0).all()


def test_curves_density_divides_by_token_count(run):
    frame = run.curves(normalize="density")
    for region, indices in REGION_TOKENS.items():
        expected = np.array(_mass(run, 1, region)) / len(indices)
        np.testing.assert_allclose(frame[region], expected, rtol=1e-6)
    np.testing.assert_allclose(frame.loc[0].to_numpy(), 1 / 7, rtol=1e-6)


def test_curves_single_head(run):
    frame = run.curves("final", head=1)
    for region in REGION_TOKENS:
        np.testing.assert_allclose(frame[region], _mass(run, 1, region, head=1), rtol=1e-6)
    assert not np.allclose(frame.to_numpy(), run.curves("final").to_numpy())


def test_curves_errors(run):
    with pytest.raises(TealeavesError, match="'raw', 'share', 'per-region', 'density'"):
        run.curves(normalize="softmax")
    with pytest.raises(TealeavesError, match=r"Unknown region\(s\) \['assistant'\]"):
        run.curves(regions=["assistant"])
    with pytest.raises(TealeavesError, match="selects nothing"):
        run.curves(regions=[])
    with pytest.raises(TealeavesError, match="twice"):
        run.curves(regions=["user", "user"])
    with pytest.raises(TealeavesError, match="2 heads"):
        run.curves(head=2)
    with pytest.raises(TealeavesError, match="head must be"):
        run.curves(head="0")


# -- lens table ------------------------------------------------------------


def test_lens_table_columns_and_values(run):
    table = run.lens_table("final", k=2)
    assert list(table.columns) == [
        "layer",
        "top_1",
        "top_2",
        "p_1",
        "p_2",
        "entropy",
        "kl_to_final",
        "rank[Paris]",
        "p[Paris]",
        "rank[ yes]",
        "p[ yes]",
    ]
    assert table["layer"].tolist() == [0, 1, 2]
    assert table["top_1"].tolist() == [" yes", " Paris", " Paris"]
    assert table["top_2"].tolist() == [" Paris", " yes", "\n"]
    np.testing.assert_allclose(table["p_1"], [0.4, 0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(table["entropy"], [2.1, 1.2, 0.7], rtol=1e-6)
    np.testing.assert_allclose(table["kl_to_final"], [1.3, 0.5, 0.0], rtol=1e-6)
    assert table["rank[Paris]"].tolist() == [2, 1, 1]
    assert table["rank[ yes]"].tolist() == [9, 7, 5]
    np.testing.assert_allclose(table["p[ yes]"], [0.02, 0.03, 0.04], rtol=1e-6)


def test_lens_table_default_query_k_cut_and_unknown_ids(run):
    table = run.lens_table()  # final query, k=5 cut to the stored 3
    assert [c for c in table.columns if c.startswith("top_")] == ["top_1", "top_2", "top_3"]
    assert table["top_3"].tolist() == [" the", "\n", " yes"]
    first = run.lens_table("answer", k=1)
    assert first["top_1"].tolist() == [" Paris", " the", "\n"]
    sparse = dataclasses.replace(run, lens=dataclasses.replace(run.lens, vocab={}))
    assert sparse.lens_table(k=1)["top_1"].tolist() == ["<id 13>", "<id 10>", "<id 10>"]
    with pytest.raises(TealeavesError, match="positive int"):
        run.lens_table(k=0)


# -- repr ------------------------------------------------------------------


def test_repr_is_short_and_informative(run):
    text = repr(run)
    assert len(text.splitlines()) <= 4
    assert text.splitlines()[0] == "Run(tiny-test: 7 tokens, 3 layers x 2 heads)"
    assert "answer @5 ' so'" in text
    assert "final @6 '?'" in text
    assert "template (2 tok)" in text
    assert "question (2 tok, in user)" in text


# -- run files -------------------------------------------------------------


def _assert_runs_equal(a: Run, b: Run) -> None:
    for f in dataclasses.fields(Run):
        left, right = getattr(a, f.name), getattr(b, f.name)
        if isinstance(left, np.ndarray):
            assert left.dtype == right.dtype and left.shape == right.shape, f.name
            np.testing.assert_array_equal(left, right, err_msg=f.name)
        elif f.name == "lens":
            for g in dataclasses.fields(Lens):
                x, y = getattr(left, g.name), getattr(right, g.name)
                if isinstance(x, np.ndarray):
                    assert x.dtype == y.dtype, g.name
                    np.testing.assert_array_equal(x, y, err_msg=g.name)
                else:
                    assert type(x) is type(y) and x == y, g.name
        elif f.name == "regions":
            assert list(left) == list(right)
            for name in left:
                x, y = left[name], right[name]
                np.testing.assert_array_equal(x.token_indices, y.token_indices)
                assert x.token_indices.dtype == y.token_indices.dtype
                assert (x.name, x.section, x.char_span, x.parent, x.builtin) == (
                    y.name,
                    y.section,
                    y.char_span,
                    y.parent,
                    y.builtin,
                )
                assert type(y.char_span) is tuple
        else:
            assert type(left) is type(right) and left == right, f.name
            if isinstance(left, dict):
                assert list(left) == list(right), f.name


def test_round_trip(run, tmp_path):
    path = run.save(tmp_path / "case.tlrun")
    assert path == tmp_path / "case.tlrun"
    back = open_run(str(path))
    _assert_runs_equal(run, back)
    assert type(back.tokens) is tuple and type(back.lens.tracked_tokens) is tuple
    assert all(isinstance(k, int) for k in back.lens.vocab)
    assert not back.attention.flags.writeable
    assert not back.regions["user"].token_indices.flags.writeable
    pd.testing.assert_frame_equal(back.curves(normalize="share"), run.curves(normalize="share"))
    assert repr(back) == repr(run)
    # atomic write leaves no temp file; the suffix the caller gave is kept
    run.save(str(tmp_path / "again.bin"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.bin", "case.tlrun"]


def test_round_trip_overwrites_and_handles_no_tracked_tokens(run, tmp_path):
    lens = dataclasses.replace(
        run.lens,
        tracked_ids=np.zeros(0, np.int64),
        tracked_tokens=(),
        tracked_ranks=np.zeros((3, 2, 0), np.int64),
        tracked_probs=np.zeros((3, 2, 0), np.float32),
    )
    small = dataclasses.replace(run, lens=lens)
    path = tmp_path / "run.tlrun"
    run.save(path)
    small.save(path)
    _assert_runs_equal(small, open_run(path))


def test_file_is_plain_safetensors_with_our_metadata(run, tmp_path):
    path = run.save(tmp_path / "run.safetensors")
    arrays = safetensors.numpy.load_file(path)
    assert {"attention", "attention_heads", "token_ids", "offsets", "lens/top_ids"} <= set(arrays)
    assert sorted(k for k in arrays if k.startswith("region/")) == [f"region/{i}" for i in range(4)]
    np.testing.assert_array_equal(arrays["region/3"], [4, 5])
    meta = json.loads(_metadata(path)["tealeaves"])
    assert (meta["format"], meta["format_version"]) == ("tealeaves-run", 1)
    assert meta["regions"][3]["array"] == "region/3"
    assert len(meta["sha256"]) == 64


def _metadata(path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as file:
        return file.metadata() or {}


def _rewrite(path, change) -> None:
    """Re-save `path` with its tealeaves JSON passed through `change`."""
    arrays = safetensors.numpy.load_file(path)
    fields = json.loads(_metadata(path)["tealeaves"])
    change(fields)
    safetensors.numpy.save_file(arrays, path, metadata={"tealeaves": json.dumps(fields)})


def test_open_missing_file_or_folder(tmp_path):
    with pytest.raises(RunFileError, match="nothing is there"):
        open_run(tmp_path / "nope.tlrun")
    with pytest.raises(RunFileError, match="it is a folder"):
        open_run(tmp_path)


def test_open_truncated_or_padded_file(run, tmp_path):
    data = run.save(tmp_path / "good.tlrun").read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    for size in [0, 3, 8, 9, header_end // 2, header_end, header_end + 5, len(data) - 1]:
        bad = tmp_path / f"cut{size}.tlrun"
        bad.write_bytes(data[:size])
        with pytest.raises(RunFileError, match="cannot be read as safetensors"):
            open_run(bad)
    padded = tmp_path / "padded.tlrun"
    padded.write_bytes(data + b"garbage")
    with pytest.raises(RunFileError, match="truncated, have bytes appended"):
        open_run(padded)
    text = tmp_path / "notes.tlrun"
    text.write_text("just some notes\n")
    with pytest.raises(RunFileError, match="safetensors"):
        open_run(text)


def test_open_other_safetensors_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    safetensors.numpy.save_file({"w": np.ones((2, 2), np.float32)}, path)
    with pytest.raises(RunFileError, match="not a tealeaves run file"):
        open_run(path)
    safetensors.numpy.save_file(
        {"w": np.ones(1, np.float32)}, path, metadata={"tealeaves": '{"format": "x"}'}
    )
    with pytest.raises(RunFileError, match="expected format 'tealeaves-run', found 'x'"):
        open_run(path)


def test_open_newer_format_version(run, tmp_path):
    path = run.save(tmp_path / "run.tlrun")
    _rewrite(path, lambda fields: fields.update(format_version=2))
    with pytest.raises(RunFileError, match="newer tealeaves-widgets.*pip install -U tealeaves"):
        open_run(path)


def test_open_tampered_array_bytes(run, tmp_path):
    path = run.save(tmp_path / "run.tlrun")
    data = bytearray(path.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    for position in [header_end, (header_end + len(data)) // 2, len(data) - 1]:
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        path.write_bytes(bytes(flipped))
        with pytest.raises(RunFileError, match="sha256"):
            open_run(path)


def test_open_tampered_metadata(run, tmp_path):
    path = run.save(tmp_path / "run.tlrun")
    _rewrite(path, lambda fields: fields.update(text="something else"))
    with pytest.raises(RunFileError, match="sha256"):
        open_run(path)


def test_save_refuses_values_that_would_not_round_trip(run, tmp_path):
    with pytest.raises(RunFileError, match="tuple comes back as a list"):
        dataclasses.replace(run, model_info={"shape": (1, 2)}).save(tmp_path / "a.tlrun")
    with pytest.raises(RunFileError, match="must be JSON data"):
        dataclasses.replace(run, model_info={"n": np.int64(3)}).save(tmp_path / "b.tlrun")
    with pytest.raises(RunFileError, match="create the folder first"):
        run.save(tmp_path / "missing" / "c.tlrun")
    assert list(tmp_path.iterdir()) == []


def test_no_torch_import():
    modules = ["tealeaves_widgets.core", "tealeaves_widgets.io", "tealeaves_widgets.prompt"]
    assert loaded_after_import(modules, ["torch", "transformers"]) == []


def test_a_run_without_regions_has_an_empty_curves_table(run):
    """Found by the fuzzer: a run file whose regions were removed opened, then
    curves() raised numpy's "need at least one array to stack"."""
    bare = dataclasses.replace(run, regions={})
    frame = bare.curves()
    assert frame.shape == (N_LAYERS, 0) and list(frame.index) == list(range(N_LAYERS))
    assert bare.curves(normalize="share").shape == (N_LAYERS, 0)
