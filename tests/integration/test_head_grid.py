"""`Model.head_grid` and `Run.head_grid` on tiny models: every head's matrix at
the chosen layer equals the eager model's `output_attentions=True` (same seed;
the grid comes from the SDPA model's capture), within float16 rounding, and
the reducer's float32 rows equal it to 1e-5 before the cast; a long prompt is
pooled as `core.head_grid` says (checked against pooling the eager matrix in
float64); only the chosen layer is reduced and held; bad input is refused
with the valid range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.core.head_grid import block_pool
from tealeaves_widgets.errors import ArgumentError, ArgumentTypeError, SelectionError
from tealeaves_widgets.models import capture
from tealeaves_widgets.models.head_grid import HeadGridReducer
from tealeaves_widgets.models.layer_stats import reduce_pass
from tests.helpers.tiny_models import make_tiny_input_ids, make_tiny_model
from tests.integration.test_layer_stats import CASE, TYPES, allowed_mask, eager_rows

FP16 = 1e-3
"""Stored float16: 2^-11 relative, so at most ~5e-4 on weights <= 1."""
FP32 = 1e-5
CHUNK = 7


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(capture, "REDUCE_CHUNK", CHUNK)


@pytest.fixture(scope="module", params=TYPES)
def captured(request, smol_tokenizer):
    model = tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)
    run = model.capture(CASE)
    weights, masks = eager_rows(request.param, run.token_ids)
    return model, run, weights, masks


def test_every_head_equals_eager_at_every_layer(captured):
    model, run, weights, masks = captured
    assert run.n_tokens > 2 * 16  # past the tiny models' sliding window
    for layer, (A, M) in enumerate(zip(weights, masks, strict=True)):
        grid = run.head_grid(layer)  # the model that captured the run, through the seam
        assert grid.patterns.dtype == np.float16
        assert grid.patterns.shape == (model.shape.n_heads, run.n_tokens, run.n_tokens)
        assert (grid.layer, grid.pool, grid.tokens) == (layer, 1, run.tokens)
        np.testing.assert_allclose(grid.patterns, A, atol=FP16, rtol=0)
        assert not grid.patterns[:, ~M].any()  # nothing above the diagonal or outside a window
        np.testing.assert_allclose(grid.head(1), A[1], atol=FP16, rtol=0)


def test_the_reducer_s_float32_rows_equal_eager_before_the_cast(captured):
    model, run, weights, _ = captured
    layer = model.shape.n_layers - 1
    reducer = HeadGridReducer(
        layer, model.shape.n_heads, run.n_tokens, dtype=torch.float32, device=model.device
    )
    reduce_pass(model, run.token_ids, [reducer], reduce_layers=[layer])
    values = reducer.values()
    assert values.dtype == torch.float32
    np.testing.assert_allclose(values.double().numpy(), weights[layer], atol=FP32, rtol=0)


def test_a_case_and_negative_layers_read_the_same_grid(captured):
    model, run, _, _ = captured
    last = model.shape.n_layers - 1
    from_case = model.head_grid(CASE, -1)
    from_run = model.head_grid(run, last)
    assert from_case.layer == last
    np.testing.assert_array_equal(from_case.patterns, from_run.patterns)
    assert "HeadGrid(" in repr(from_run) and f"layer {last}" in repr(from_run)


def test_only_the_chosen_layer_is_reduced_and_held(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    ids = make_tiny_input_ids(40, seed=1)[0].numpy()
    H, T = model.shape.n_heads, len(ids)
    seen: list[int] = []
    spy = lambda layer, *_: seen.append(layer)  # noqa: E731
    chosen = HeadGridReducer(1, H, T, device=model.device)
    reduce_pass(model, ids, [chosen, spy], reduce_layers=[1])
    assert set(seen) == {1}  # the other layers computed no rows for the reducers
    # the reducer holds one (head, T, T) float16 matrix, whatever the model's depth
    held = [v for v in vars(chosen).values() if isinstance(v, torch.Tensor)]
    assert [tuple(t.shape) for t in held] == [(H, T, T)]
    assert sum(t.element_size() * t.nelement() for t in held) == H * T * T * 2
    # handed every layer, it keeps only its own: the same matrix
    every = HeadGridReducer(1, H, T, device=model.device)
    reduce_pass(model, ids, [every])
    torch.testing.assert_close(every.values(), chosen.values(), rtol=0, atol=0)


def long_model(model_type: str, tokenizer) -> tw.Model:
    """A tiny model whose context admits the long prompts below."""
    hf = make_tiny_model(model_type)
    hf.config.max_position_embeddings = 4096  # rotary: positions are computed, not looked up
    return tw.load_model(hf, tokenizer=tokenizer)


def long_case(model: tw.Model, at_least: int, odd: bool) -> tuple[tw.Case, np.ndarray]:
    """A case of `at_least` or `at_least` + 1 tokens (an odd number when `odd`,
    else even) and its ids: a user message of repeated one-token words."""

    def case_of(pairs: int, extra: bool) -> tuple[tw.Case, np.ndarray]:
        case = tw.Case(system="Count.", user="one" + " four" * extra + " two three" * pairs)
        return case, np.asarray(model.render(case).token_ids, np.int64)

    base = len(case_of(0, False)[1])
    pairs = max(0, (at_least - base + 1) // 2)
    for extra in (False, True):
        case, ids = case_of(pairs, extra)
        if len(ids) >= at_least and len(ids) % 2 == int(odd):
            return case, ids
    raise AssertionError(f"no case of {at_least} tokens with that parity; last {len(ids)}")


@pytest.mark.parametrize("model_type", ["llama", "mistral"])
def test_a_long_prompt_is_pooled_as_the_eager_matrix_pools(model_type, smol_tokenizer):
    model = long_model(model_type, smol_tokenizer)
    case, ids = long_case(model, 1100, odd=True)  # pool 2, the last block holding one token
    T = len(ids)
    assert T <= 2048
    weights, masks = eager_rows(model_type, ids)
    layer = 1
    A = np.where(masks[layer], weights[layer], 0.0)
    grid = model.head_grid(case, layer)
    assert (grid.pool, grid.size, grid.n_tokens) == (2, (T + 1) // 2, T)
    expected = block_pool(A, 2)
    np.testing.assert_allclose(grid.patterns, expected, atol=FP16, rtol=0)
    np.testing.assert_allclose(grid.patterns.astype(np.float64).sum(-1), 1.0, atol=2e-3)
    # the full matrix on request
    full = model.head_grid(case, layer, full=True)
    assert (full.pool, full.size) == (1, T)
    np.testing.assert_allclose(full.patterns, A, atol=FP16, rtol=0)
    # the view's pooling of the full matrix equals the pass's
    np.testing.assert_allclose(full.pooled().patterns, grid.patterns, atol=FP16, rtol=0)


def test_the_sliding_window_holds_in_a_pooled_grid(smol_tokenizer):
    model = long_model("mistral", smol_tokenizer)
    case, ids = long_case(model, 1030, odd=False)
    grid = model.head_grid(case, 0)
    assert grid.pool == 2
    M = allowed_mask(model.hf_model.config, 0, len(ids))
    reachable = block_pool(M.astype(np.float64), 2) > 0
    assert reachable.mean() < 0.1  # the window leaves most blocks out
    assert not grid.patterns[:, ~reachable].any()


def test_bad_input_is_refused_with_the_valid_range(captured):
    model, run, _, _ = captured
    n = model.shape.n_layers
    with pytest.raises(SelectionError, match=rf"layer={n} is out of range; .* 0\.\.{n - 1}"):
        run.head_grid(n)
    with pytest.raises(SelectionError, match="out of range"):
        model.head_grid(run, -n - 1)
    with pytest.raises(ArgumentTypeError, match="layer must be an int"):
        run.head_grid("0")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="full must be True or False"):
        run.head_grid(0, full="yes")  # type: ignore[arg-type]
    grid = run.head_grid(0)
    H = model.shape.n_heads
    with pytest.raises(SelectionError, match=rf"head={H} is out of range; .* 0\.\.{H - 1}"):
        grid.head(H)
