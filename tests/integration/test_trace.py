"""Named sites (`Model.trace`, `Model.hooks`) against the model's own
hidden states, its modules' arithmetic, and `ablate`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tests.helpers.tiny_models import make_tiny_model

CASE = tw.Case(user="Where are the data centres? Name the cities.")
TOL = 1e-5


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request, smol_tokenizer):
    return tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)


def test_trace_is_the_models_residual_stream(model):
    trace = model.trace(CASE)
    ids = torch.as_tensor(model.render(CASE).token_ids)[None]
    with torch.no_grad():
        out = model.hf_model(input_ids=ids, output_hidden_states=True)
    hidden = [h[0].numpy() for h in out.hidden_states]
    L = model.shape.n_layers
    for layer in range(L):
        np.testing.assert_allclose(trace["block_input"][layer], hidden[layer], atol=TOL, rtol=0)
        if layer < L - 1:  # transformers gives the last layer's output after the final norm
            np.testing.assert_allclose(
                trace["block_output"][layer], hidden[layer + 1], atol=TOL, rtol=0
            )
    np.testing.assert_allclose(trace["final_norm"], hidden[L], atol=TOL, rtol=0)
    np.testing.assert_allclose(trace["logits"], out.logits[0].numpy(), atol=TOL, rtol=0)
    # the block's arithmetic: input + attention = post-attention residual; + MLP = output
    after = trace["block_input"] + trace["attn_output"]
    np.testing.assert_allclose(trace["post_attn_residual"], after, atol=TOL, rtol=0)
    np.testing.assert_allclose(trace["block_output"], after + trace["mlp_output"], atol=TOL, rtol=0)
    heads = trace["o_proj_input"]
    assert heads.shape[2] == model.shape.n_heads
    projection = model.arch.output_projection
    for layer in range(L):
        module = getattr(model.layers[layer].get_submodule(model.arch.attention), projection)
        with torch.no_grad():
            flat = torch.as_tensor(heads[layer].reshape(heads.shape[1], -1))
            np.testing.assert_allclose(
                module(flat).numpy(), trace["attn_output"][layer], atol=TOL, rtol=0
            )


def test_trace_keeps_the_layers_and_positions_asked_for(model):
    trace = model.trace(CASE, sites=["attn_output", "logits"], layers=[1], positions=[0, -1])
    assert list(trace.arrays) == ["attn_output", "logits"]
    assert trace["attn_output"].shape[:2] == (1, 2) and trace["logits"].shape[0] == 2
    assert trace.positions.tolist() == [0, len(trace.tokens) - 1]
    with pytest.raises(tw.SelectionError, match="Unknown site"):
        model.trace(CASE, sites=["attention"])
    with pytest.raises(tw.SelectionError, match="layers \\[7\\] are out of range"):
        model.trace(CASE, layers=[7])
    with pytest.raises(tw.SelectionError, match="not token indices"):
        model.trace(CASE, positions=[500])


def test_hooks_edit_and_gradient_and_are_removed(model):
    ids = torch.as_tensor(model.render(CASE).token_ids)[None]
    n_heads = model.shape.n_heads

    def zero_head(x):
        x = x.clone()
        dim = x.shape[-1] // n_heads
        x[..., 2 * dim : 3 * dim] = 0
        return x

    with model.hooks() as hk:
        hk.edit("o_proj_input", 1, zero_head).record("attn_output", 1)
        with torch.no_grad():
            edited = model.hf_model(input_ids=ids).logits[0, -1].numpy()
    ablated = model.ablate(CASE, tw.HeadAblation(1, 2, "all"))
    np.testing.assert_allclose(edited, ablated.logits[0], atol=TOL, rtol=0)
    assert ("attn_output", 1) in hk.values
    # the gradient reaching a block's output, as autograd gives it for a kept tensor
    with model.hooks() as hk:
        hk.gradient("block_output", 1).record("block_output", 1)
        logits = model.hf_model(input_ids=ids).logits[0, -1]
        logits.max().backward()
    assert hk.grads[("block_output", 1)].shape == hk.values[("block_output", 1)].shape
    assert hk.grads[("block_output", 1)][0, -1].abs().sum() > 0
    model.hf_model.zero_grad(set_to_none=True)
    # nothing is left hooked: a plain pass is the plain model again
    with torch.no_grad():
        again = model.hf_model(input_ids=ids).logits[0, -1].numpy()
    assert np.abs(again - edited).max() > 1e-4
    np.testing.assert_allclose(again, ablated.base_logits, atol=TOL, rtol=0)
    # and an error inside the block removes them too
    with pytest.raises(RuntimeError, match="boom"), model.hooks() as hk:
        hk.edit("block_input", 0, lambda x: x * 0)
        raise RuntimeError("boom")
    with torch.no_grad():
        np.testing.assert_allclose(
            model.hf_model(input_ids=ids).logits[0, -1].numpy(), again, atol=0
        )


def test_parallel_blocks_have_no_post_attention_residual(smol_tokenizer):
    model = tw.load_model(make_tiny_model("gpt_neox"), tokenizer=smol_tokenizer)
    assert "post_attn_residual" not in model.trace(CASE, layers=[0]).arrays
    with pytest.raises(tw.SelectionError, match="in parallel"):
        model.trace(CASE, sites=["post_attn_residual"])
