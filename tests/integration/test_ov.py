"""`models.ov`: each head's OV logits equal an oracle that materialises the
full (hidden x hidden) OV matrix W_O,h W_V,kv from the HF weights and reads
the eager pass's hidden states through the block's input norm by hand
(float64), on GQA (n_rep = 2: llama, qwen3), biased-value (qwen2, gpt_oss),
fused (phi3, GPT-2's Conv1D, GPT-NeoX's interleaved) and LayerNorm models. The oracle's value
weights are checked first against the model's own head outputs (eager
attention weights x values = the o_proj input), which pins the KV head map
h // n_rep. The study's buggy map h % n_kv_heads gives other numbers on a
GQA model. `ov_score` equals the z-score formula on the oracle. Bad input is
refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.errors import ArgumentError, ArgumentTypeError, SelectionError
from tealeaves_widgets.models.ov import ov_logits, ov_score
from tests.helpers.tiny_models import make_tiny_input_ids, make_tiny_model

VOCAB = 256
TYPES = ["llama", "qwen2", "qwen3", "phi3", "gpt2", "gpt_neox", "gpt_oss"]
TOL = 1e-5
T = 12


def _block_parts(hf, model_type: str, layer: int):
    """(block, attention, input norm, output projection) of one layer."""
    if model_type == "gpt2":
        block = hf.transformer.h[layer]
        return block, block.attn, block.ln_1, block.attn.c_proj
    if model_type == "gpt_neox":
        block = hf.gpt_neox.layers[layer]
        return block, block.attention, block.input_layernorm, block.attention.dense
    block = hf.model.layers[layer]
    return block, block.self_attn, block.input_layernorm, block.self_attn.o_proj


def _final_norm(hf, model_type: str):
    if model_type == "gpt2":
        return hf.transformer.ln_f
    if model_type == "gpt_neox":
        return hf.gpt_neox.final_layer_norm
    return hf.model.norm


def _norm(module, x: np.ndarray) -> np.ndarray:
    """The norm's formula by hand, float64, on the last axis."""
    w = module.weight.detach().double().numpy()
    if isinstance(module, torch.nn.LayerNorm):
        centred = x - x.mean(-1, keepdims=True)
        var = (centred**2).mean(-1, keepdims=True)
        return centred / np.sqrt(var + module.eps) * w + module.bias.detach().double().numpy()
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * w  # RMSNorm (llama-style)


def _oracle_weights(hf, model_type: str, layer: int, n_heads: int, n_kv: int, d: int):
    """(kv, d, hidden) value weights, (kv, d) bias, (hidden, head*d) output
    weights, float64, cut from the HF parameters by their documented layout."""
    _, attention, _, o_proj = _block_parts(hf, model_type, layer)
    hidden = hf.config.hidden_size
    bias = None
    if model_type == "gpt2":
        w = attention.c_attn.weight.detach().double().numpy()[:, 2 * hidden :].T
        bias = attention.c_attn.bias.detach().double().numpy()[2 * hidden :]
        w_o = o_proj.weight.detach().double().numpy().T
    elif model_type == "gpt_neox":
        qkv = attention.query_key_value
        w = qkv.weight.detach().double().numpy().reshape(n_heads, 3 * d, hidden)[:, 2 * d :]
        bias = qkv.bias.detach().double().numpy().reshape(n_heads, 3 * d)[:, 2 * d :]
        w_o = o_proj.weight.detach().double().numpy()
    elif model_type == "phi3":
        w = attention.qkv_proj.weight.detach().double().numpy()[-n_kv * d :]
        w_o = o_proj.weight.detach().double().numpy()
    else:
        w = attention.v_proj.weight.detach().double().numpy()
        if attention.v_proj.bias is not None:
            bias = attention.v_proj.bias.detach().double().numpy()
        w_o = o_proj.weight.detach().double().numpy()
    w = w.reshape(n_kv, d, hidden)
    bias = np.zeros((n_kv, d)) if bias is None else bias.reshape(n_kv, d)
    return w, bias, w_o


class Oracle:
    """Everything the oracle reads from the eager model on one sequence."""

    def __init__(self, model_type: str, ids: np.ndarray) -> None:
        hf = make_tiny_model(model_type, vocab_size=VOCAB, attn_implementation="eager")
        self.hf, self.model_type = hf, model_type
        config = hf.config
        self.n_heads = config.num_attention_heads
        self.n_kv = getattr(config, "num_key_value_heads", None) or self.n_heads
        self.d = config.hidden_size // self.n_heads
        if getattr(config, "head_dim", None):
            self.d = config.head_dim
        o_inputs: dict[int, np.ndarray] = {}
        hooks = []
        for layer in range(config.num_hidden_layers):
            o_proj = _block_parts(hf, model_type, layer)[3]

            def keep(_m, args, layer=layer):
                o_inputs[layer] = args[0][0].double().numpy()

            hooks.append(o_proj.register_forward_pre_hook(keep))
        with torch.no_grad():
            out = hf(
                input_ids=torch.as_tensor(ids)[None],
                output_hidden_states=True,
                output_attentions=True,
            )
        for h in hooks:
            h.remove()
        self.n_layers = config.num_hidden_layers
        states = out.hidden_states
        self.block_inputs = [states[i][0].double().numpy() for i in range(self.n_layers)]
        self.attentions = [a[0].double().numpy() for a in out.attentions]
        self.o_inputs = o_inputs

    def normed_input(self, layer: int) -> np.ndarray:
        """(T, hidden): the block input through its input norm, by hand."""
        norm = _block_parts(self.hf, self.model_type, layer)[2]
        return _norm(norm, self.block_inputs[layer])

    def weights(self, layer: int):
        return _oracle_weights(self.hf, self.model_type, layer, self.n_heads, self.n_kv, self.d)

    def logits(self, positions, candidates, kv_of) -> np.ndarray:
        """(layer, head, position, candidate) with the full OV matrix per head."""
        unembed = self.hf.get_output_embeddings().weight.detach().double().numpy()[candidates]
        final = _final_norm(self.hf, self.model_type)
        out = np.zeros((self.n_layers, self.n_heads, len(positions), len(candidates)))
        for layer in range(self.n_layers):
            x = self.normed_input(layer)[positions]  # (P, hidden)
            w_v, b_v, w_o = self.weights(layer)
            for h in range(self.n_heads):
                kv = kv_of(h)
                w_o_h = w_o[:, h * self.d : (h + 1) * self.d]
                ov = w_o_h @ w_v[kv]  # (hidden, hidden): materialised in the oracle only
                head_out = x @ ov.T + w_o_h @ b_v[kv]
                out[layer, h] = _norm(final, head_out) @ unembed.T
        return out


@pytest.fixture(scope="module", params=TYPES)
def setup(request, smol_tokenizer):
    ids = make_tiny_input_ids(T, seed=5, vocab_size=VOCAB)[0].numpy()
    model = tw.load_model(
        make_tiny_model(request.param, vocab_size=VOCAB), tokenizer=smol_tokenizer
    )
    return model, Oracle(request.param, ids), ids


def test_the_oracle_weights_reproduce_the_models_head_outputs(setup):
    """o_proj input of head h at i = sum_j A[h, i, j] v_{h // n_rep}(j): the
    oracle's value layout and KV map are the model's own."""
    _, oracle, _ = setup
    n_rep = oracle.n_heads // oracle.n_kv
    for layer in range(oracle.n_layers):
        w_v, b_v, _ = oracle.weights(layer)
        x = oracle.normed_input(layer)
        for h in range(oracle.n_heads):
            values = x @ w_v[h // n_rep].T + b_v[h // n_rep]  # (T, d)
            expected = oracle.attentions[layer][h] @ values
            got = oracle.o_inputs[layer][:, h * oracle.d : (h + 1) * oracle.d]
            np.testing.assert_allclose(got, expected, atol=TOL, rtol=TOL)


def test_ov_logits_equal_the_full_matrix_oracle(setup):
    model, oracle, ids = setup
    positions = np.array([0, 3, T - 1])
    candidates = np.array([5, 17, 80, 200, 255, 3])
    n_rep = oracle.n_heads // oracle.n_kv
    got = ov_logits(model, ids, positions, candidates)
    expected = oracle.logits(positions, candidates, lambda h: h // n_rep)
    assert got.shape == (oracle.n_layers, oracle.n_heads, 3, 6)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=TOL)


def test_ov_score_is_the_mean_z_score_over_examples(setup):
    model, oracle, ids = setup
    other = make_tiny_input_ids(T, seed=9, vocab_size=VOCAB)[0].numpy()
    candidates = np.array([5, 17, 80, 200])
    examples = [(ids, 4, 17), (ids, T - 1, 99), (other, 2, 5)]  # 99: not a candidate
    got = ov_score(model, examples, candidates)
    n_rep = oracle.n_heads // oracle.n_kv
    zs = []
    for seq, position, target in examples:
        pool = np.unique(np.append(candidates, target))
        o = oracle if seq is ids else Oracle(oracle.model_type, seq)
        logits = o.logits([position], pool, lambda h: h // n_rep)[:, :, 0]
        z = (logits[..., list(pool).index(target)] - logits.mean(-1)) / logits.std(-1)
        zs.append(z)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.mean(zs, 0), atol=TOL, rtol=TOL)


def test_the_studys_buggy_kv_index_gives_other_numbers(smol_tokenizer):
    """h % n_kv_heads (the study's original indexing) differs from h // n_rep
    on a GQA model; ours is the oracle with h // n_rep."""
    ids = make_tiny_input_ids(T, seed=5, vocab_size=VOCAB)[0].numpy()
    model = tw.load_model(make_tiny_model("llama", vocab_size=VOCAB), tokenizer=smol_tokenizer)
    s = model.shape
    assert s.n_heads // s.n_kv_heads == 2  # GQA with n_rep > 1
    oracle = Oracle("llama", ids)
    positions, candidates = np.array([2, 7]), np.arange(0, VOCAB, 7)
    right = ov_logits(model, ids, positions, candidates)
    buggy = ov_logits(model, ids, positions, candidates, kv_head=lambda h: h % s.n_kv_heads)
    np.testing.assert_allclose(
        right, oracle.logits(positions, candidates, lambda h: h // 2), atol=TOL, rtol=TOL
    )
    np.testing.assert_allclose(
        buggy,
        oracle.logits(positions, candidates, lambda h: h % s.n_kv_heads),
        atol=TOL,
        rtol=TOL,
    )
    # heads 1 and 2 read another KV head under the bug; 0 and 3 the same one
    for h in (1, 2):
        assert np.abs(right[:, h] - buggy[:, h]).max() > 0.1
    for h in (0, 3):
        np.testing.assert_allclose(right[:, h], buggy[:, h], atol=1e-6)


def test_bad_input_is_refused(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama", vocab_size=VOCAB), tokenizer=smol_tokenizer)
    ids = np.arange(3, 3 + T)
    with pytest.raises(SelectionError, match=r"0\.\.11.*\[12\]"):
        ov_logits(model, ids, np.array([0, T]), np.array([1, 2]))
    with pytest.raises(SelectionError, match=r"\[-1\]"):
        ov_logits(model, ids, np.array([-1]), np.array([1, 2]))
    with pytest.raises(ArgumentError, match=rf"0\.\.{VOCAB - 1}.*\[{VOCAB}\]"):
        ov_logits(model, ids, np.array([0]), np.array([1, VOCAB]))
    with pytest.raises(ArgumentTypeError, match="integers"):
        ov_logits(model, ids, np.array([0.5]), np.array([1, 2]))
    with pytest.raises(ArgumentError, match="KV heads 0..1"):
        ov_logits(model, ids, np.array([0]), np.array([1, 2]), kv_head=lambda h: h)
    with pytest.raises(ArgumentError, match="at least 2 distinct"):
        ov_score(model, [(ids, 0, 4)], np.array([4]))
    with pytest.raises(ArgumentTypeError, match=r"\(ids, position, target_id\)"):
        ov_score(model, [(ids, 0)], np.array([4, 5]))
    with pytest.raises(ArgumentTypeError, match="non-empty list"):
        ov_score(model, [], np.array([4, 5]))
