"""Causal Head Gating on a tiny model: the gate mechanism against the
unmodified model and against head ablation, and the raw gates of the three
phases in the directions the paper defines (a head with no effect opens under
retention and shuts under removal; the head the task needs most stays open
under removal)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.models.attribution import gated_heads
from tests.helpers.tiny_models import make_tiny_model

TEXTS = [
    "The cat sat on the mat and the cat sat on the mat again.",
    "One two three four one two three four one two.",
]
DEAD = (2, 1)  # a head whose output projection columns are zeroed: it cannot matter


@pytest.fixture(scope="module")
def model(smol_tokenizer):
    hf = make_tiny_model("llama")
    dim = hf.config.head_dim
    with torch.no_grad():
        hf.model.layers[DEAD[0]].self_attn.o_proj.weight[:, DEAD[1] * dim : (DEAD[1] + 1) * dim] = 0
    return tw.load_model(hf, tokenizer=smol_tokenizer)


def test_gates_of_one_are_the_model_and_a_zero_is_the_head_ablation(model):
    case = tw.Case(user="Where are the data centres?")
    ids = torch.as_tensor(model.render(case).token_ids)[None]
    shape = (model.shape.n_layers, model.shape.n_heads)
    with torch.no_grad():
        plain = model.hf_model(input_ids=ids).logits[0, -1]
        with gated_heads(model, torch.ones(shape)):
            ones = model.hf_model(input_ids=ids).logits[0, -1]
        gates = torch.ones(shape)
        gates[1, 2] = 0
        with gated_heads(model, gates):
            one_hot = model.hf_model(input_ids=ids).logits[0, -1]
    np.testing.assert_allclose(ones.numpy(), plain.numpy(), atol=1e-6, rtol=0)
    ablated = model.ablate(case, tw.HeadAblation(1, 2, "all"))
    np.testing.assert_allclose(one_hot.numpy(), ablated.logits[0], atol=1e-5, rtol=0)
    assert np.abs(one_hot.numpy() - plain.numpy()).max() > 1e-3


def test_the_raw_gates_move_as_the_paper_says(model):
    result = model.fit_head_gates(TEXTS, steps=(40, 60), progress=False)
    g = result.gates
    assert set(g) == {"plain", "retention", "removal"}
    assert all(v.shape == (model.shape.n_layers, model.shape.n_heads) for v in g.values())
    # the plain fit lowers the task loss below the ungated model's
    assert result.losses["plain"][-1] < result.base_loss
    # a head with no effect: no gradient from the task, so only the penalty moves it
    init = 1 / (1 + np.exp(-3.0))
    assert g["plain"][DEAD] == pytest.approx(init, abs=1e-6)
    assert g["retention"][DEAD] > 0.99 and g["removal"][DEAD] < 0.5
    assert result.labels[DEAD] == "irrelevant"
    # the head whose removal hurts the task most stays open under removal pressure
    examples_loss = []
    shape = (model.shape.n_layers, model.shape.n_heads)
    from tealeaves_widgets.models.head_gates import _examples, _task_loss

    examples = _examples(model, TEXTS, None)
    with torch.no_grad():
        base = float(_task_loss(model, examples, None))
        for layer in range(shape[0]):
            for head in range(shape[1]):
                gates = torch.ones(shape)
                gates[layer, head] = 0
                examples_loss.append(float(_task_loss(model, examples, gates)) - base)
    needed = np.unravel_index(int(np.argmax(examples_loss)), shape)
    assert max(examples_loss) > 0.01
    assert g["removal"][needed] > g["removal"][DEAD]
    assert result.labels[needed] == "facilitating"
    table = result.table()
    assert len(table) == shape[0] * shape[1]
    assert set(table["label"]) <= {"facilitating", "interfering", "irrelevant"}
    assert (tuple(int(v) for v in needed)) in result.heads("facilitating")
    # attribution through the facilitating heads: head_mask=gates keeps those
    through = model.attribute(TEXTS[0], " mat", head_mask=result)
    same = model.attribute(TEXTS[0], " mat", head_mask=result.labels == "facilitating")
    np.testing.assert_array_equal(through.head_mask, result.labels == "facilitating")
    np.testing.assert_allclose(through.grad_norm, same.grad_norm, rtol=0, atol=0)


def test_bad_gate_arguments_are_refused(model):
    with pytest.raises(tw.ArgumentError, match="steps must be an int >= 1 or a pair"):
        model.fit_head_gates(TEXTS, steps=(0, 5), progress=False)
    with pytest.raises(tw.ArgumentError, match="one continuation per text"):
        model.fit_head_gates(TEXTS, targets=["a"], progress=False)
    with pytest.raises(tw.ArgumentError, match="strength must be a number > 0"):
        model.fit_head_gates(TEXTS, strength=0, progress=False)
