"""Residual decomposition and cross-layer cosine on tiny models of every
architecture: the terms equal a hand-written block (the model's own modules
called by hand, each family's post-norms applied where it has them), the
identity output = input + attention + MLP holds to 1e-5, the norms and
cosines equal numpy on those vectors, the cross-layer matrix equals numpy on
the model's hidden states, a Run reads through the model that captured it
(or one passed), and bad input is refused with a clear error."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.models.residuals import read_states
from tests.helpers.tiny_models import TINY_MODEL_TYPES, make_tiny_model

CASE = tw.Case(system="Be brief.", user="Where are the data centres? Name the cities.")
REGIONS = {"query_positions": ["final", 4, 9]}
TOL = 1e-5

# Each family's block, written out here from the transformers source rather
# than read from tealeaves' architecture table.
ATTENTION = {"gpt2": "attn", "gpt_neox": "attention"}  # else "self_attn"
PRE_MLP_NORM = {
    "gemma2": "pre_feedforward_layernorm",
    "gemma3_text": "pre_feedforward_layernorm",
    "gpt2": "ln_2",
}  # else "post_attention_layernorm"
POST_NORMS = {
    "gemma2": ("post_attention_layernorm", "post_feedforward_layernorm"),
    "gemma3_text": ("post_attention_layernorm", "post_feedforward_layernorm"),
}
PARALLEL = {"gpt_neox"}  # use_parallel_residual=True: the MLP reads the block input


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


@torch.no_grad()
def hand_block(model, ids):
    """Per layer (pos, hidden) block input, attention term, MLP term and block
    output computed by hand, and the model's own hidden states."""
    model_type = model.arch.model_type
    attention_outputs = {}
    handles = []
    for layer, block in enumerate(model.layers):
        module = getattr(block, ATTENTION.get(model_type, "self_attn"))
        handles.append(
            module.register_forward_hook(
                lambda _m, _a, out, layer=layer: attention_outputs.__setitem__(layer, _first(out))
            )
        )
    try:
        out = model.hf_model(input_ids=torch.as_tensor(ids)[None], output_hidden_states=True)
    finally:
        for handle in handles:
            handle.remove()
    hidden = [h[0] for h in out.hidden_states]
    terms = {"hidden_in": [], "attn_term": [], "mlp_term": [], "hidden_out": []}
    x = hidden[0]
    for layer, block in enumerate(model.layers):
        attn = attention_outputs[layer][0]
        post = POST_NORMS.get(model_type)
        if post:
            attn = getattr(block, post[0])(attn)
        mlp_in = x if model_type in PARALLEL else x + attn
        pre = getattr(block, PRE_MLP_NORM.get(model_type, "post_attention_layernorm"))
        mlp = _first(block.mlp(pre(mlp_in)[None]))[0]
        if post:
            mlp = getattr(block, post[1])(mlp)
        y = x + attn + mlp
        for key, value in zip(terms, (x, attn, mlp, y), strict=True):
            terms[key].append(value.numpy().astype(np.float64))
        x = y
    return {k: np.stack(v, axis=1) for k, v in terms.items()}, [h.numpy() for h in hidden]


def cosine_matrix(states):
    """(layer, hidden) -> (layer, layer) cosines, written out."""
    unit = states / np.linalg.norm(states, axis=1, keepdims=True)
    return unit @ unit.T


@pytest.fixture(scope="module", params=TINY_MODEL_TYPES)
def captured(request, smol_tokenizer):
    model = tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)
    return model, model.capture(CASE, REGIONS)


def test_the_terms_are_the_hand_written_blocks_and_add_up(captured):
    model, run = captured
    hand, hidden = hand_block(model, run.token_ids)
    L = model.shape.n_layers
    # the hand-written block is the model: its outputs are the hidden states
    for layer in range(L - 1):
        np.testing.assert_allclose(hand["hidden_out"][:, layer], hidden[layer + 1], atol=TOL)
    with torch.no_grad():
        last = model.final_norm(torch.as_tensor(hand["hidden_out"][:, -1], dtype=torch.float32))
    np.testing.assert_allclose(last.numpy(), hidden[L], atol=TOL)
    positions = list(run.queries.values())
    read = read_states(model, run.token_ids, positions, list(hand))
    for source, values in hand.items():
        np.testing.assert_allclose(read[source], values[positions], atol=TOL, rtol=TOL)
    # the identity, on what tealeaves read
    added = read["hidden_in"] + read["attn_term"] + read["mlp_term"]
    assert np.abs(read["hidden_out"] - added).max() <= TOL
    decomposition = run.residual_decomposition()
    assert decomposition.identity_error.max() <= TOL
    assert decomposition.parallel == (model.arch.model_type in PARALLEL)


def test_norms_and_cosines_are_numpy_on_the_vectors(captured):
    model, run = captured
    hand, _ = hand_block(model, run.token_ids)
    positions = list(run.queries.values())
    d = model.residual_decomposition(run)
    assert list(d.queries) == list(run.queries) and d.n_layers == model.shape.n_layers
    assert d.tokens == tuple(run.tokens[p] for p in positions)
    vectors = [hand[s][positions] for s in ("hidden_in", "attn_term", "mlp_term", "hidden_out")]
    for c, v in enumerate(vectors):
        np.testing.assert_allclose(d.norms[:, c], np.sqrt((v * v).sum(-1)), rtol=TOL, atol=TOL)
    out = vectors[3]
    for c, v in enumerate(vectors[:3]):
        cos = (v * out).sum(-1) / np.sqrt((v * v).sum(-1) * (out * out).sum(-1))
        np.testing.assert_allclose(d.cosines[:, c], cos, atol=TOL)
    table = d.table("final")
    np.testing.assert_allclose(table["attn_norm"], d.norms[d.query_index("final"), 1])
    assert len(d.table()) == len(positions) * d.n_layers


@pytest.mark.parametrize("model_type", ["llama", "gemma2", "gpt_neox"])
def test_cross_layer_cosine_is_numpy_on_the_hidden_states(model_type, smol_tokenizer):
    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    run = model.capture(CASE, REGIONS)
    hand, hidden = hand_block(model, run.token_ids)
    L = model.shape.n_layers
    for query in ("final", 1):
        position = run.queries[run.query_name(query)]
        inputs = np.stack([hidden[layer][position] for layer in range(L)]).astype(np.float64)
        result = run.cross_layer_cosine("hidden_in", query)
        assert (result.query, result.position, result.source) == (
            run.query_name(query),
            position,
            "hidden_in",
        )
        np.testing.assert_allclose(result.cosine, cosine_matrix(inputs), atol=TOL)
        # the stream after each block: the hidden states, then the last block's
        # output before the final norm
        outputs = np.stack([*(hidden[layer + 1][position] for layer in range(L - 1))])
        outputs = np.concatenate([outputs, hand["hidden_out"][position, -1:]]).astype(np.float64)
        result = run.cross_layer_cosine("hidden_out", query)
        np.testing.assert_allclose(result.cosine, cosine_matrix(outputs), atol=TOL)
        for source in ("attn_term", "mlp_term"):
            result = model.cross_layer_cosine(run, source, query)
            np.testing.assert_allclose(
                result.cosine, cosine_matrix(hand[source][position]), atol=TOL
            )
    table = result.table()
    assert table.shape == (L, L) and table.index.name == "layer"
    np.testing.assert_allclose(np.diagonal(result.cosine), 1.0, atol=TOL)


@pytest.fixture(scope="module")
def llama(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    return model, model.capture(CASE, REGIONS)


def test_a_run_reads_its_own_token_ids_through_its_model(llama, monkeypatch, tmp_path):
    model, run = llama
    expected = model.residual_decomposition(run)

    def no_render(*_args, **_kwargs):
        raise AssertionError("a Run must be read from its token_ids, not re-rendered")

    monkeypatch.setattr(model, "render", no_render)
    remembered = run.residual_decomposition()  # the model that captured it
    np.testing.assert_array_equal(remembered.norms, expected.norms)
    np.testing.assert_array_equal(remembered.cosines, expected.cosines)
    cross = run.cross_layer_cosine()
    assert cross.query == "final" and cross.source == "hidden_out"
    monkeypatch.undo()
    # the same case with the same query positions: the same numbers
    from_case = model.residual_decomposition(CASE, REGIONS)
    assert from_case.queries == run.queries
    np.testing.assert_allclose(from_case.norms, expected.norms, atol=TOL)
    # a run opened from a file, or made from another one, has no model in memory
    reopened = tw.open_run(run.save(tmp_path / "run.tlrun"))
    for orphan in (reopened, dataclasses.replace(run)):
        with pytest.raises(tw.ArgumentError, match=r"needs the model.*decomposition\(model="):
            orphan.residual_decomposition()
        with pytest.raises(tw.ArgumentError, match=r"cross_layer_cosine\(model="):
            orphan.cross_layer_cosine()
    passed = reopened.residual_decomposition(model=model)
    np.testing.assert_allclose(passed.norms, expected.norms, atol=TOL)
    np.testing.assert_allclose(
        reopened.cross_layer_cosine(model=model).cosine, cross.cosine, atol=TOL
    )


def test_bad_input_is_refused(llama, smol_tokenizer):
    model, run = llama
    with pytest.raises(tw.ArgumentError, match=r"Unknown source 'residual'; the sources are"):
        run.cross_layer_cosine("residual")
    with pytest.raises(tw.ArgumentError, match="Unknown source"):
        model.cross_layer_cosine(run, source="mlp")
    with pytest.raises(tw.SelectionError, match="Query index 5 is out of range for 3 queries"):
        run.cross_layer_cosine(query=5)
    with pytest.raises(tw.SelectionError, match="Unknown query 'answer'"):
        model.cross_layer_cosine(run, query="answer")
    with pytest.raises(tw.ArgumentError, match="regions= is for a case"):
        model.residual_decomposition(run, REGIONS)
    with pytest.raises(tw.ArgumentTypeError, match="model must be a tw.Model"):
        run.residual_decomposition(model="llama")
    other = tw.load_model(make_tiny_model("gemma2"), tokenizer=smol_tokenizer)
    with pytest.raises(tw.ArgumentError, match=r"run was captured with .* \(llama, 3 layers\)"):
        run.residual_decomposition(model=other)
    bad_ids = dataclasses.replace(run, token_ids=np.array([0, 10**6]))
    with pytest.raises(tw.ArgumentError, match="ids in 0..49151"):
        model.residual_decomposition(bad_ids)


def test_a_block_listed_as_parallel_that_is_not_is_refused(smol_tokenizer):
    # gemma2 adds post-normed terms: read as plain module outputs they do not add up
    model = tw.load_model(make_tiny_model("gemma2"), tokenizer=smol_tokenizer)
    model.arch = dataclasses.replace(model.arch, mlp_norm=None)
    with pytest.raises(tw.CaptureError, match=r"the block adds something else"):
        model.residual_decomposition(CASE)


def test_hooks_record_only_the_positions_asked_for(llama):
    model, run = llama
    ids = torch.as_tensor(run.token_ids)[None]
    with model.hooks() as full, torch.no_grad():
        full.record("mlp_output", 1)
        model.hf_model(input_ids=ids)
    with model.hooks() as some, torch.no_grad():
        some.record("mlp_output", 1, positions=[7, 2])
        model.hf_model(input_ids=ids)
    kept = some.values[("mlp_output", 1)]
    assert kept.shape[1] == 2
    torch.testing.assert_close(kept, full.values[("mlp_output", 1)][:, [7, 2]])
