"""Activations at chosen positions, `run.neurons` and `tw.compare_neurons` on
tiny models, against an independent computation: the residual stream from
`output_hidden_states`, the MLP activations computed from the weights on the
MLP's input (read with a plain torch hook, not the package's hooks), the
per-head outputs through the output projection; the top-k neurons and the
cross-prompt spread from numpy on those oracle values; bad input refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.activations import ACT2FN

import tealeaves_widgets as tw
from tealeaves_widgets.models.architectures import get_path
from tests.helpers.tiny_models import make_tiny_model

TOL = 1e-5
CASE = tw.Case(
    system="Be brief.",
    user="Where are the largest data centres in Europe? Name three cities.",
)
OTHER = tw.Case(user="Write a short poem about the sea and the wind at night.")
REGIONS = {"user_message": {"regions": [{"name": "question", "start_marker": "Where"}]}}
# gated MLPs (llama; phi3's fused gate_up) and plain ones (gpt2's Conv1D; gpt_neox, parallel)
TYPES = ["llama", "phi3", "gpt2", "gpt_neox"]


@pytest.fixture(scope="module", params=TYPES)
def model(request, smol_tokenizer):
    return tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)


@pytest.fixture(scope="module")
def run(model):
    return model.capture(CASE, REGIONS)


def manual_mlp_act(model, layer: int, x: torch.Tensor) -> torch.Tensor:
    """The MLP's activations computed from its weights on its input `x`."""
    config, mlp = model.hf_model.config, get_path(model.layers[layer], model.arch.mlp)
    kind = config.model_type
    if kind == "gpt2":  # Conv1D: weight (in, out)
        act = ACT2FN[config.activation_function]
        return act(x @ mlp.c_fc.weight + mlp.c_fc.bias)
    if kind == "gpt_neox":
        act = ACT2FN[config.hidden_act]
        return act(x @ mlp.dense_h_to_4h.weight.T + mlp.dense_h_to_4h.bias)
    act = ACT2FN[config.hidden_act]
    if kind == "phi3":  # fused: gate then up
        gate, up = (x @ mlp.gate_up_proj.weight.T).chunk(2, dim=-1)
        return up * act(gate)
    return act(x @ mlp.gate_proj.weight.T) * (x @ mlp.up_proj.weight.T)


@torch.no_grad()
def oracle(model, ids: np.ndarray) -> dict[str, np.ndarray]:
    """(layer, pos, ...) float64 hidden_out, mlp_act and head_out of one pass,
    read without the package's hooks: hidden states from the model's output,
    the MLP's input and the output projection's input from plain torch hooks."""
    mlp_inputs, o_inputs, attn_outputs, handles = {}, {}, {}, []
    for layer, block in enumerate(model.layers):
        mlp = get_path(block, model.arch.mlp)
        attention = get_path(block, model.arch.attention)
        o_proj = get_path(attention, model.arch.output_projection)

        def keep_mlp(_m, args, _out, at=layer):
            mlp_inputs[at] = args[0]

        def keep_o(_m, args, out, at=layer):
            o_inputs[at], attn_outputs[at] = args[0], out

        handles += [mlp.register_forward_hook(keep_mlp), o_proj.register_forward_hook(keep_o)]
    try:
        out = model.hf_model(input_ids=torch.as_tensor(ids)[None], output_hidden_states=True)
    finally:
        for handle in handles:
            handle.remove()
    L, H = model.shape.n_layers, model.shape.n_heads
    hidden = [h[0].double().numpy() for h in out.hidden_states]
    final_norm = model.final_norm
    heads = np.stack([o_inputs[layer][0].double().numpy() for layer in range(L)])
    return {
        "hidden_out": np.stack(hidden[1:L]),  # the last is after the final norm: see below
        "final_normed": hidden[L],
        "final_norm": final_norm,
        "mlp_act": np.stack(
            [
                manual_mlp_act(model, layer, mlp_inputs[layer])[0].double().numpy()
                for layer in range(L)
            ]
        ),
        "head_out": heads.reshape(L, heads.shape[1], H, -1),
        "attn_proj": np.stack([attn_outputs[layer][0].double().numpy() for layer in range(L)]),
    }


def test_activations_equal_the_independent_computation(model, run):
    truth = oracle(model, run.token_ids)
    positions = [0, 3, 11, run.n_tokens - 1]
    acts = run.activations(positions)
    L = model.shape.n_layers
    assert acts.positions.tolist() == positions
    assert acts.tokens == tuple(run.tokens[p] for p in positions)
    assert set(acts.values) == {"hidden_out", "mlp_act", "head_out"}
    assert all(a.dtype == np.float32 for a in acts.values.values())
    np.testing.assert_allclose(
        acts["hidden_out"][: L - 1], truth["hidden_out"][:, positions], atol=TOL, rtol=0
    )
    # the last block's output, through the final norm, is the model's last hidden state
    with torch.no_grad():
        normed = truth["final_norm"](torch.as_tensor(acts["hidden_out"][L - 1])).numpy()
    np.testing.assert_allclose(normed, truth["final_normed"][positions], atol=TOL, rtol=0)
    np.testing.assert_allclose(acts["mlp_act"], truth["mlp_act"][:, positions], atol=TOL, rtol=0)
    assert acts["head_out"].shape[2] == model.shape.n_heads
    np.testing.assert_allclose(acts["head_out"], truth["head_out"][:, positions], atol=TOL, rtol=0)
    # the heads' outputs through the output projection are the attention's projection
    for layer in range(L):
        o_proj = get_path(
            get_path(model.layers[layer], model.arch.attention), model.arch.output_projection
        )
        with torch.no_grad():
            flat = torch.as_tensor(acts["head_out"][layer].reshape(len(positions), -1))
            np.testing.assert_allclose(
                o_proj(flat).numpy(), truth["attn_proj"][layer, positions], atol=TOL, rtol=0
            )
    # a case reads the same (rendered), and layers/sources select
    some = model.activations(CASE, positions=[3], sources="mlp_act", layers=[1], regions=REGIONS)
    assert list(some.values) == ["mlp_act"] and some["mlp_act"].shape[:2] == (1, 1)
    np.testing.assert_allclose(some.at("mlp_act", 1), truth["mlp_act"][1, [3]], atol=TOL, rtol=0)
    queries = run.activations("queries", sources=["hidden_out"], layers=0)
    assert queries.positions.tolist() == list(run.queries.values())


def test_the_top_neurons_are_numpys_on_the_oracle(model, run):
    truth = oracle(model, run.token_ids)
    layer, k = 1, 7
    for source in ("mlp_act", "hidden_out"):
        full = truth[source][layer] if source == "mlp_act" else _hidden_out(truth, model, layer)
        result = run.neurons(layer, source, top_k=k)
        sd = full[1:].std(axis=0)  # position 0 left out
        want = np.argsort(-sd, kind="stable")[:k]
        assert result.neurons.tolist() == want.tolist()
        assert sd[result.neurons].min() >= np.delete(sd, result.neurons).max()
        np.testing.assert_allclose(result.sd, sd[want], atol=TOL, rtol=0)
        np.testing.assert_allclose(result.values, full[:, want].T, atol=TOL, rtol=0)
        assert result.positions.tolist() == list(range(run.n_tokens))
        assert result.scored.tolist() == [False] + [True] * (run.n_tokens - 1)
        assert "Position 0" in result.note and "include_first=True" in result.note
        assert result.vmax == pytest.approx(np.abs(full[1:, want]).max(), abs=TOL)
    # with the first token counted
    counted = run.neurons(layer, top_k=k, include_first=True)
    sd = truth["mlp_act"][layer].std(axis=0)
    assert counted.neurons.tolist() == np.argsort(-sd, kind="stable")[:k].tolist()
    assert counted.note == "" and counted.scored.all()
    # over a region's tokens
    tokens = run.regions["question"].token_indices
    region = run.neurons(2, positions="question", top_k=k)
    sd = truth["mlp_act"][2][tokens].std(axis=0)
    assert region.neurons.tolist() == np.argsort(-sd, kind="stable")[:k].tolist()
    assert region.positions.tolist() == tokens.tolist() and region.positions_label == "question"
    table = region.table()
    assert table["neuron"].tolist() == region.neurons.tolist()
    np.testing.assert_allclose(
        table["mean"], truth["mlp_act"][2][tokens][:, region.neurons].mean(0), atol=TOL
    )


def _hidden_out(truth, model, layer: int) -> np.ndarray:
    if layer < model.shape.n_layers - 1:
        return truth["hidden_out"][layer]
    raise AssertionError("the oracle has no pre-norm last layer")


def test_compare_neurons_equals_the_per_run_numbers(model, run):
    other = model.capture(OTHER)
    layer, k = 2, 5
    for include_first in (False, True):
        result = tw.compare_neurons(
            {"centres": run, "poem": other}, layer, k=k, include_first=include_first
        )
        start = 0 if include_first else 1
        means = np.stack(
            [
                oracle(model, r.token_ids)["mlp_act"][layer][start:].mean(axis=0)
                for r in (run, other)
            ]
        )
        spread = means.std(axis=0)
        want = np.argsort(-spread, kind="stable")[:k]
        assert result.labels == ("centres", "poem")
        assert result.neurons.tolist() == want.tolist()
        np.testing.assert_allclose(result.means, means[:, want].T, atol=TOL, rtol=0)
        np.testing.assert_allclose(result.spread, spread[want], atol=TOL, rtol=0)
        assert result.n_positions.tolist() == [run.n_tokens - start, other.n_tokens - start]
    # the per-prompt mean of a neuron is its mean in run.neurons' matrix
    single = run.neurons(layer, top_k=64)
    row = single.neurons.tolist().index(int(result.neurons[0]))
    assert result.means[0, 0] == pytest.approx(single.values[row].mean(), abs=TOL)
    listed = tw.compare_neurons([run, other], layer, k=3, source="hidden_out")
    assert listed.labels == ("prompt 0", "prompt 1") and listed.means.shape == (3, 2)


def test_gpt_oss_has_no_mlp_act_but_the_rest(smol_tokenizer):
    model = tw.load_model(make_tiny_model("gpt_oss"), tokenizer=smol_tokenizer)
    run = model.capture(CASE)
    acts = run.activations([1, 2])
    assert set(acts.values) == {"hidden_out", "head_out"}
    with pytest.raises(tw.SelectionError, match="mixture of experts"):
        run.neurons(0)
    assert run.neurons(0, "hidden_out", top_k=3).neurons.size == 3
    with pytest.raises(tw.SelectionError, match="mixture of experts"):
        model.trace(CASE, sites=["mlp_act"])
    assert "mlp_act" not in model.trace(CASE, layers=[0]).arrays


def test_bad_input_is_refused(model, run, tmp_path):
    L = model.shape.n_layers
    with pytest.raises(tw.SelectionError, match=f"layer={L} is out of range.*0..{L - 1}"):
        run.neurons(L)
    with pytest.raises(tw.SelectionError, match="Unknown neuron source 'mlp'.*mlp_act"):
        run.neurons(0, "mlp")
    with pytest.raises(tw.SelectionError, match="Unknown region 'answer'.*question"):
        run.neurons(0, positions="answer")
    with pytest.raises(tw.ArgumentError, match="top_k must be at least 1, got 0"):
        run.neurons(0, top_k=0)
    with pytest.raises(tw.ArgumentTypeError, match="top_k must be an int"):
        run.neurons(0, top_k=2.5)
    with pytest.raises(tw.ArgumentTypeError, match="include_first must be True or False"):
        run.neurons(0, include_first="yes")
    with pytest.raises(tw.SelectionError, match="Unknown source.*'attn'"):
        run.activations(sources=["attn"])
    with pytest.raises(tw.SelectionError, match="positions \\[999\\] are not token indices"):
        run.activations([0, 999])
    with pytest.raises(tw.ArgumentError, match="at least 2 positions to score"):
        run.neurons(0, positions=[0, 5])
    with pytest.raises(tw.ArgumentError, match="at least 2 prompts"):
        tw.compare_neurons([run], 0)
    with pytest.raises(tw.ArgumentError, match="k must be at least 1"):
        tw.compare_neurons([run, run], 0, k=0)
    with pytest.raises(tw.ArgumentTypeError, match="list of tw.Run"):
        tw.compare_neurons(run, 0)
    with pytest.raises(tw.SelectionError, match="Unknown neuron source"):
        model.neurons(CASE, 0, "logits")
    # top_k beyond the neurons: all of them, said so
    every = run.neurons(0, "hidden_out", top_k=10_000)
    assert every.neurons.size == every.n_neurons and "all are shown" in every.note
    # a run opened from a file needs the model
    opened = tw.open_run(run.save(tmp_path / "run.tlrun"))
    with pytest.raises(tw.ArgumentError, match="needs the model"):
        opened.neurons(0)
    assert (
        opened.neurons(0, top_k=2, model=model).neurons.tolist()
        == run.neurons(0, top_k=2).neurons.tolist()
    )
