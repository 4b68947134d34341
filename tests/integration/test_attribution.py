"""`Model.attribute` and `Model.score` against `torch.autograd.grad` on a
hand-written llama forward (tests/helpers/handwritten.py) and a hand-written
loss, on tiny random models (GQA included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tests.helpers.handwritten import llama_forward
from tests.helpers.tiny_models import make_tiny_model

CASE = tw.Case(
    system="You are Pip, the assistant of Acme.\n## Rules\n- Answer briefly.",
    user="Where are the data centres?",
)
REGIONS = {"system_prompt": {"regions": [{"name": "rules", "start_marker": "## Rules"}]}}
TARGET = " Paris and Oslo."


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model(request, smol_tokenizer):
    return tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)


def autograd_reference(model, loss: str, zero_heads=None):
    """The gradient of the target's log-prob, by torch.autograd.grad through
    the hand-written forward."""
    prompt = list(model.render(CASE).token_ids)
    target = model.tokenizer(TARGET, add_special_tokens=False)["input_ids"]
    ids = torch.as_tensor(prompt + target)
    embeds = model.hf_model.model.embed_tokens.weight[ids].detach().clone().requires_grad_(True)
    logits = llama_forward(model.hf_model, embeds, zero_heads=zero_heads)
    log_probs = torch.log_softmax(logits, dim=-1)
    count = len(target) if loss == "full_target" else 1
    value = sum(log_probs[len(prompt) - 1 + j, target[j]] for j in range(count))
    (grad,) = torch.autograd.grad(value, embeds)
    grad = grad[: len(prompt)].double()
    inputs = embeds[: len(prompt)].detach().double()
    return float(value.detach()), grad.norm(dim=-1).numpy(), (grad * inputs).sum(-1).numpy()


@pytest.mark.parametrize("loss", ["full_target", "first_token"])
def test_attribution_is_autograd_on_the_hand_written_loss(model, loss):
    result = model.attribute(CASE, TARGET, REGIONS, loss=loss)
    value, norms, gxi = autograd_reference(model, loss)
    assert result.log_prob == pytest.approx(value, abs=1e-5)
    np.testing.assert_allclose(result.grad_norm, norms, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(result.grad_x_input, gxi, rtol=1e-4, atol=1e-6)
    assert result.grad_norm.min() > 0  # every prompt token can move the answer
    # regions sum their tokens
    table = result.region_table().set_index("region")
    rules = result.regions["rules"].token_indices
    assert table.loc["rules", "grad_norm"] == pytest.approx(float(norms[rules].sum()), rel=1e-4)
    assert table.loc["rules", "share"] == pytest.approx(
        float(norms[rules].sum() / norms.sum()), rel=1e-4
    )
    tokens = result.token_table()
    assert tokens["region"][int(rules[0])] == "rules"


def test_gated_heads_are_zeroed_in_the_hand_written_forward(model):
    mask = np.ones((model.shape.n_layers, model.shape.n_heads), dtype=bool)
    mask[1, [0, 3]] = False
    mask[2, 2] = False
    result = model.attribute(CASE, TARGET, REGIONS, head_mask=mask)
    n = len(model.render(CASE).token_ids) + len(
        model.tokenizer(TARGET, add_special_tokens=False)["input_ids"]
    )
    everywhere = list(range(n))
    zero = {1: [(0, everywhere), (3, everywhere)], 2: [(2, everywhere)]}
    value, norms, _ = autograd_reference(model, "full_target", zero_heads=zero)
    assert result.log_prob == pytest.approx(value, abs=1e-5)
    np.testing.assert_allclose(result.grad_norm, norms, rtol=1e-4, atol=1e-7)
    plain = model.attribute(CASE, TARGET, REGIONS)
    assert abs(plain.log_prob - result.log_prob) > 1e-4  # the gates did something
    assert "3 heads gated off" in repr(result)


def test_score_is_the_models_own_log_probs(model):
    scores = model.score([CASE, tw.Case(user="Hi")], temperature=2.0, targets=[TARGET, " there"])
    prompt = list(model.render(CASE).token_ids)
    target = model.tokenizer(TARGET, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model.hf_model(input_ids=torch.as_tensor(prompt + target)[None]).logits[0] / 2.0
    log_probs = torch.log_softmax(logits, -1)
    row = scores.iloc[0]
    assert row["top_id"] == int(log_probs[len(prompt) - 1].argmax())
    expected = [float(log_probs[len(prompt) - 1 + j, t]) for j, t in enumerate(target)]
    np.testing.assert_allclose(row["target_token_log_probs"], expected, atol=1e-5)
    assert row["target_log_prob"] == pytest.approx(sum(expected), abs=1e-5)
    assert row["top_prob"] == pytest.approx(float(log_probs[len(prompt) - 1].exp().max()), abs=1e-6)


def test_bad_attribution_input_is_refused(model):
    with pytest.raises(tw.ArgumentError, match="target is empty"):
        model.attribute(CASE, "")
    with pytest.raises(tw.ArgumentTypeError, match="target must be a non-empty str"):
        model.attribute(CASE, 5)
    with pytest.raises(tw.ArgumentError, match="loss must be one of"):
        model.attribute(CASE, TARGET, loss="mean")
    with pytest.raises(
        tw.ArgumentError,
        match=r"head_mask must be a bool array of shape \(layer, head\) = \(3, 4\)",
    ):
        model.attribute(CASE, TARGET, head_mask=np.ones((3, 3), dtype=bool))
    with pytest.raises(tw.ArgumentError, match="keeps no head"):
        model.attribute(CASE, TARGET, head_mask=np.zeros((3, 4), dtype=bool))
    with pytest.raises(tw.ArgumentError, match="outside the vocabulary"):
        model.attribute(CASE, [10**9])
    with pytest.raises(tw.ArgumentError, match="temperature must be a number > 0"):
        model.score([CASE], temperature=0)
    with pytest.raises(tw.ArgumentError, match="one continuation per case"):
        model.score([CASE], targets=["a", "b"])
