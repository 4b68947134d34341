"""Capture reducers, `layer_stats` and `region_attention` on tiny models: every
statistic equals an oracle written from the formulas on the eager model's
`output_attentions=True` (same seed; the capture runs on the SDPA model),
the chunked rows the reducers get are the eager rows, the layer outputs are
unchanged by reducers, uniform attention gives the closed forms, a Run reads
through the model that captured it, and bad input is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.core.layer_stats import STATISTICS
from tealeaves_widgets.models import capture
from tealeaves_widgets.models.layer_stats import LayerStatsReducer, reduce_pass
from tests.helpers.tiny_models import make_tiny_input_ids, make_tiny_model

CASE = tw.Case(
    system="Be brief and answer in one line.",
    user="Where are the largest data centres in Europe? Name three cities and a country.",
)
TOL = 1e-5
TYPES = ["llama", "mistral", "gemma2", "gpt_oss", "gpt2"]
CHUNK = 7  # small, so every pass uses several chunks and a partial one


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(capture, "REDUCE_CHUNK", CHUNK)


def allowed_mask(config, layer: int, T: int) -> np.ndarray:
    """(T, T) bool from the formulas: j <= i, and i - j < window on a sliding layer."""
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    allowed = j <= i
    window = getattr(config, "sliding_window", None)
    kinds = getattr(config, "layer_types", None)
    sliding = window is not None and (kinds is None or kinds[layer] == "sliding_attention")
    if sliding:
        allowed &= i - j < window
    return allowed


@torch.no_grad()
def eager_rows(model_type: str, ids: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per layer the eager (head, T, T) float64 weights and the (T, T) allowed mask."""
    eager = make_tiny_model(model_type, attn_implementation="eager")
    out = eager(input_ids=torch.as_tensor(ids)[None], output_attentions=True)
    T = len(ids)
    weights = [a[0].double().numpy() for a in out.attentions]
    return weights, [allowed_mask(eager.config, layer, T) for layer in range(len(weights))]


def oracle_stats(A: np.ndarray, M: np.ndarray) -> dict[str, np.ndarray]:
    """(head,) statistics of one layer's (head, T, T) weights over allowed entries."""
    T = M.shape[0]
    w = np.where(M, A, 0.0)
    n = M.sum(-1)
    mean = w.sum((1, 2)) / n.sum()
    sd = np.sqrt((np.where(M, (A - mean[:, None, None]) ** 2, 0.0)).sum((1, 2)) / n.sum())
    top = np.where(M, A, -np.inf).max((1, 2))
    entropies = []
    for i in range(T):
        if n[i] < 2:
            continue
        p = w[:, i] / w[:, i].sum(-1, keepdims=True)
        h = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(-1)
        entropies.append(h / np.log(n[i]))
    distance = (w * (np.arange(T)[:, None] - np.arange(T)[None, :])).sum(-1).mean(-1)
    return {
        "mean": mean,
        "sd": sd,
        "max": top,
        "entropy": np.mean(entropies, axis=0),
        "sink_mass": w[:, :, 0].mean(-1),
        "distance": distance,
        "row_max": np.where(M, A, -np.inf).max(-1).mean(-1),
    }


@pytest.fixture(scope="module", params=TYPES)
def captured(request, smol_tokenizer):
    model = tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)
    run = model.capture(CASE)
    weights, masks = eager_rows(request.param, run.token_ids)
    return model, run, weights, masks


def test_every_statistic_equals_the_oracle_on_eager_weights(captured):
    model, run, weights, masks = captured
    assert run.n_tokens > 2 * 16  # past the tiny models' sliding window
    stats = run.layer_stats()  # the model that captured the run, through the seam
    assert (stats.n_layers, stats.n_heads, stats.n_tokens) == (
        model.shape.n_layers,
        model.shape.n_heads,
        run.n_tokens,
    )
    for layer, (A, M) in enumerate(zip(weights, masks, strict=True)):
        expected = oracle_stats(A, M)
        for name in STATISTICS:
            np.testing.assert_allclose(
                stats.statistic(name)[layer], expected[name], atol=TOL, rtol=TOL, err_msg=name
            )
    table = stats.table()
    assert list(table.columns) == list(STATISTICS) and table.index.name == "layer"
    np.testing.assert_allclose(table["distance"], stats.statistic("distance").mean(1))
    per_head = stats.table(per_head=True)
    assert len(per_head) == stats.n_layers * stats.n_heads
    assert "LayerStats(" in repr(stats) and "causal entries only" in repr(stats)


@pytest.mark.parametrize("model_type", ["llama", "mistral"])
def test_a_long_prompt_keeps_the_precision(model_type, smol_tokenizer, monkeypatch):
    monkeypatch.setattr(capture, "REDUCE_CHUNK", 256)  # the default, with a partial chunk
    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    ids = make_tiny_input_ids(700, seed=3)[0].numpy()
    reducer = LayerStatsReducer(model.shape.n_layers, model.shape.n_heads, model.device)
    reduce_pass(model, ids, [reducer])
    values = reducer.values()
    weights, masks = eager_rows(model_type, ids)
    for layer, (A, M) in enumerate(zip(weights, masks, strict=True)):
        expected = oracle_stats(A, M)
        for k, name in enumerate(STATISTICS):
            np.testing.assert_allclose(
                values[k, layer], expected[name], atol=TOL, rtol=TOL, err_msg=name
            )


def test_the_reducers_get_the_eager_rows_chunk_by_chunk(captured):
    model, run, weights, masks = captured
    got: dict[int, list] = {}

    def keep(layer, positions, rows, allowed):
        got.setdefault(layer, []).append(
            (positions.numpy().copy(), rows[0].double().numpy(), allowed[0, 0].numpy())
        )

    reduce_pass(model, run.token_ids, [keep])
    T = run.n_tokens
    for layer, (A, M) in enumerate(zip(weights, masks, strict=True)):
        chunks = got[layer]
        assert [len(p) for p, _, _ in chunks] == [min(CHUNK, T - s) for s in range(0, T, CHUNK)]
        positions = np.concatenate([p for p, _, _ in chunks])
        np.testing.assert_array_equal(positions, np.arange(T))
        np.testing.assert_allclose(np.concatenate([r for _, r, _ in chunks], 1), A, atol=TOL)
        np.testing.assert_array_equal(np.concatenate([a for _, _, a in chunks]), M)


@torch.no_grad()
def test_reducers_leave_the_layer_outputs_unchanged(captured):
    model, run, _, _ = captured
    ids = torch.as_tensor(run.token_ids)[None]
    nothing = torch.zeros((1, 1), dtype=torch.long)
    with capture.capturing(model.hf_model, model.arch, nothing, keep_rows=False):
        plain = model.hf_model(input_ids=ids, output_hidden_states=True).hidden_states
    calls = []
    reducer = lambda layer, *_: calls.append(layer)  # noqa: E731
    with capture.capturing(
        model.hf_model, model.arch, nothing, keep_rows=False, reducers=[reducer]
    ):
        reduced = model.hf_model(input_ids=ids, output_hidden_states=True).hidden_states
    for a, b in zip(plain, reduced, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert sorted(set(calls)) == list(range(model.shape.n_layers))


def test_region_attention_equals_the_oracle(captured):
    model, run, weights, masks = captured
    src, dst = "user", "system"
    result = run.region_attention(src, dst)
    queries = run.regions[src].token_indices
    keys = run.regions[dst].token_indices
    assert (result.n_src, result.n_dst) == (len(queries), len(keys))
    for layer, (A, M) in enumerate(zip(weights, masks, strict=True)):
        w = np.where(M, A, 0.0)
        mass = w[:, queries][:, :, keys].sum(-1).mean(-1)
        np.testing.assert_allclose(result.mass[layer], mass, atol=TOL)
        table = result.table()
        np.testing.assert_allclose(table.loc[layer, "mean"], mass.mean(), atol=TOL)
        np.testing.assert_allclose(table.loc[layer, "max"], mass.max(), atol=TOL)
        np.testing.assert_allclose(table.loc[layer, "sd"], mass.std(), atol=TOL)
    # causal: the system message comes first and never attends to the user's
    back = model.region_attention(run, dst, src)
    assert back.mass.max() == 0.0
    assert "RegionAttention(" in repr(result)


def test_our_mean_is_not_the_naive_full_matrix_mean(captured):
    _, run, weights, masks = captured
    stats = run.layer_stats()
    T = run.n_tokens
    A, M = weights[0], masks[0]
    naive = A.mean((1, 2))  # every T x T entry, masked zeros included
    if not run.model_info.get("model_type") == "gpt_oss":  # rows sum to 1 without sinks
        np.testing.assert_allclose(naive, 1.0 / T, rtol=1e-6)
    assert np.all(np.abs(stats.statistic("mean")[0] - naive) > 0.5 / T)
    np.testing.assert_allclose(stats.statistic("mean")[0], (A * M).sum((1, 2)) / M.sum(), atol=TOL)


def test_uniform_attention_gives_the_closed_forms(smol_tokenizer):
    hf = make_tiny_model("llama")
    with torch.no_grad():
        for block in hf.model.layers:
            block.self_attn.q_proj.weight.zero_()  # every score 0: uniform over j <= i
    model = tw.load_model(hf, tokenizer=smol_tokenizer)
    stats = model.layer_stats(CASE)
    T = stats.n_tokens
    i = np.arange(T, dtype=np.float64)
    N = T * (T + 1) / 2
    mean = T / N
    closed = {
        "mean": mean,
        "sd": np.sqrt((1.0 / (i + 1)).sum() / N - mean**2),
        "max": 1.0,
        "entropy": 1.0,
        "sink_mass": (1.0 / (i + 1)).mean(),
        "distance": (T - 1) / 4,
        "row_max": (1.0 / (i + 1)).mean(),
    }
    for name, value in closed.items():
        np.testing.assert_allclose(stats.statistic(name), value, rtol=TOL, err_msg=name)
    # row i gives each earlier token 1/(i+1): the user's tokens pay the system's
    # n_system / (i + 1), averaged over the user's tokens
    run = model.capture(CASE)
    system, user = run.regions["system"].token_indices, run.regions["user"].token_indices
    assert user[0] > system[-1]
    result = model.region_attention(run, "user", "system")
    np.testing.assert_allclose(result.mass, (len(system) / (user + 1.0)).mean(), rtol=TOL)


def test_bad_input_is_refused(captured, tmp_path):
    model, run, _, _ = captured
    with pytest.raises(tw.SelectionError, match=r"Unknown region 'nowhere' for dst.*has regions"):
        run.region_attention("user", "nowhere")
    with pytest.raises(tw.ArgumentTypeError, match="src must be a region name"):
        run.region_attention(3, "user")  # type: ignore[arg-type]
    with pytest.raises(tw.ArgumentError, match="regions= is for a case"):
        model.layer_stats(run, regions={"query_positions": ["final"]})
    result = run.region_attention("user", "system")
    with pytest.raises(tw.SelectionError, match=r"layer=99 is out of range.*0\.\."):
        result.head(99)
    np.testing.assert_array_equal(result.head(0), result.mass[0])
    with pytest.raises(tw.ArgumentError, match="Unknown statistic 'median'"):
        run.layer_stats().statistic("median")
    orphan = dataclasses.replace(run)  # a derived run has no model in memory
    with pytest.raises(tw.ArgumentError, match=r"layer_stats\(model="):
        orphan.layer_stats()
    with pytest.raises(tw.ArgumentError, match=r"region_attention\(model="):
        orphan.region_attention("user", "system")
    np.testing.assert_allclose(
        orphan.layer_stats(model=model).values, run.layer_stats().values, atol=0
    )
