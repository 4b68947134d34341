"""`Model.generate_capture` against independent computations: the tokens and
step logits of transformers' own `generate(..., output_logits=True)` (greedy
and seeded sampling), the decode-step rows against eager attention over the
whole generated sequence, the lens's last layer against the step's
distribution, prompt queries against a capture of the prompt, and regions
named in the generated text."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.errors import ArgumentError, QueryNotFoundError
from tealeaves_widgets.models.generation import eos_ids
from tests.helpers.tiny_models import make_tiny_model

ATOL = 1e-5
CASE = tw.Case(
    system="You are terse. Answer with one word.",
    user="I live in Paris, near the river. My sister lives in Lyon. Where do I live?",
)
# softcaps (gemma2), sinks (gpt_oss), sliding windows smaller than the prompt
# (mistral, gemma3_text), q/k norms (qwen3), learned positions (gpt2)
ARCHITECTURES = ("llama", "qwen3", "mistral", "gemma2", "gemma3_text", "gpt_oss", "gpt2")


def hf_generate(model: tw.Model, n: int, **sampling) -> tuple[list[int], torch.Tensor]:
    """transformers' own generate on the rendered prompt: ids and (step, vocab) logits."""
    ids = torch.as_tensor(model.render(CASE).token_ids)[None]
    out = model.hf_model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        min_new_tokens=0,
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=0,
        eos_token_id=sorted(eos_ids(model)),
        **sampling,
    )
    return out.sequences[0, ids.shape[1] :].tolist(), torch.cat(out.logits).float()


@pytest.fixture(scope="module", params=ARCHITECTURES)
def model(request, smol_tokenizer):
    return tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)


def test_greedy_tokens_and_step_logits_equal_transformers_generate(model):
    gen = model.generate_capture(CASE, max_new_tokens=20, keep_logits=True)
    ids, logits = hf_generate(model, 20, do_sample=False)
    assert gen.token_ids.tolist() == ids
    np.testing.assert_allclose(gen.logits, logits.numpy(), rtol=0, atol=ATOL)
    logp = torch.log_softmax(logits, -1)
    np.testing.assert_allclose(
        gen.logprobs, logp.gather(1, torch.tensor(ids)[:, None])[:, 0], atol=ATOL
    )
    np.testing.assert_array_equal(gen.argmax_ids, logp.argmax(-1).numpy())
    top = logp.topk(20, -1)
    np.testing.assert_allclose(gen.top_logprobs, top.values.numpy(), rtol=0, atol=ATOL)
    entropy = -(logp.exp() * logp).sum(-1)
    np.testing.assert_allclose(gen.entropy, entropy.numpy(), rtol=0, atol=1e-4)
    assert gen.stop_reason == "max_new_tokens" and gen.n_steps == 20


def test_decode_step_rows_equal_eager_rows_on_the_whole_sequence(model, smol_tokenizer):
    gen = model.generate_capture(CASE, max_new_tokens=24)
    run = gen.run
    fed = torch.as_tensor(run.token_ids[:-1])[None]  # every position a step read
    eager = make_tiny_model(model.arch.model_type, attn_implementation="eager")
    with torch.no_grad():
        attentions = eager(input_ids=fed, output_attentions=True).attentions
    for step, position in enumerate(gen.positions):
        q = run.query_index(f"step:{step}")
        assert run.queries[f"step:{step}"] == position
        for layer, rows in enumerate(attentions):
            np.testing.assert_allclose(
                run.attention_heads[layer, :, q, : position + 1],
                rows[0, :, position, : position + 1].numpy(),
                rtol=0,
                atol=ATOL,
                err_msg=f"step {step} layer {layer}",
            )
        assert not run.attention_heads[:, :, q, position + 1 :].any()
    np.testing.assert_allclose(run.attention, run.attention_heads.mean(axis=1), atol=1e-7)


def test_the_lens_last_layer_is_the_step_distribution(model):
    gen = model.generate_capture(CASE, max_new_tokens=6, lens_top_k=5)
    lens = gen.run.lens
    for step in range(gen.n_steps):
        q = gen.run.query_index(f"step:{step}")
        np.testing.assert_array_equal(lens.top_ids[-1, q], gen.top_ids[step, :5])
        np.testing.assert_allclose(
            lens.top_probs[-1, q], np.exp(gen.top_logprobs[step, :5]), rtol=0, atol=ATOL
        )
        np.testing.assert_allclose(lens.entropy[-1, q], gen.entropy[step], rtol=0, atol=1e-4)
    # the states kept for neuron trajectories are the lens's residuals: layer L-1 at step 2
    trajectory = gen.neuron_trajectory(1, 3)
    assert trajectory["value"].shape == (gen.n_steps,)
    assert gen.states is not None and gen.states.shape[1] == gen.n_steps


@pytest.mark.parametrize("model_type", ["llama", "gpt_oss"])
def test_seeded_sampling_equals_transformers_generate_after_manual_seed(smol_tokenizer, model_type):
    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    for options in (
        {"temperature": 0.7, "top_k": None, "top_p": 0.95},
        {"temperature": 1.3, "top_k": 40, "top_p": None},
    ):
        gen = model.generate_capture(
            CASE, max_new_tokens=16, do_sample=True, seed=7, keep_logits=True, **options
        )
        torch.manual_seed(7)
        hf_options = {**options, "top_k": options["top_k"] or 0, "top_p": options["top_p"] or 1.0}
        ids, logits = hf_generate(model, 16, do_sample=True, **hf_options)
        assert gen.token_ids.tolist() == ids, options
        np.testing.assert_allclose(gen.logits, logits.numpy(), rtol=0, atol=ATOL)
        assert not gen.steps()["chose_argmax"].all()  # it did sample
        again = model.generate_capture(CASE, max_new_tokens=16, do_sample=True, seed=7, **options)
        assert again.token_ids.tolist() == ids
    other = model.generate_capture(CASE, max_new_tokens=16, do_sample=True, seed=8)
    assert other.token_ids.tolist() != gen.token_ids.tolist()


def test_generation_stops_after_an_end_of_sequence_token(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    first = model.generate_capture(CASE, max_new_tokens=8)
    stop_token = int(first.token_ids[4])
    assert stop_token not in first.token_ids[:4].tolist()
    model.hf_model.generation_config.eos_token_id = stop_token
    gen = model.generate_capture(CASE, max_new_tokens=8)
    assert gen.stop_reason == "eos" and gen.n_steps == 5
    assert gen.token_ids.tolist() == first.token_ids[:5].tolist()
    ids, _ = hf_generate(model, 8, do_sample=False)
    assert ids == gen.token_ids.tolist()
    # the end token is the run's last token, but not part of the response section
    response = gen.run.regions["response"]
    assert response.token_indices.max() < gen.run.n_tokens - 1


def test_regions_name_generated_text_and_prompt_queries_equal_a_capture(smol_tokenizer):
    model = tw.load_model(make_tiny_model("qwen3"), tokenizer=smol_tokenizer)
    plain = model.generate_capture(CASE, max_new_tokens=10)
    word = plain.tokens[3].strip()
    assert word, plain.tokens
    regions = {
        "response": {"regions": [{"name": "answer_word", "marker": word}]},
        "user_message": {"regions": [{"name": "city", "marker": "Paris"}]},
        "query_positions": [{"after_text": "Paris"}],
        "tracked_tokens": [" Paris"],
    }
    gen = model.generate_capture(CASE, regions, max_new_tokens=10)
    run = gen.run
    assert gen.token_ids.tolist() == plain.token_ids.tolist()
    word_tokens = run.regions["answer_word"].token_indices
    assert word_tokens.size and word_tokens.min() >= gen.prompt_length
    assert word in "".join(run.tokens[i] for i in word_tokens)
    assert list(run.queries)[0] == "after:Paris"
    position = run.queries["after:Paris"]
    assert position < gen.prompt_length - 1
    fresh = model.capture(CASE, {"query_positions": [position], "tracked_tokens": [" Paris"]})
    np.testing.assert_allclose(
        run.attention_heads[:, :, 0, : fresh.n_tokens],
        fresh.attention_heads[:, :, 0],
        rtol=0,
        atol=ATOL,
    )
    np.testing.assert_allclose(
        run.lens.tracked_probs[:, 0], fresh.lens.tracked_probs[:, 0], atol=ATOL
    )
    assert not run.attention_heads[:, :, 0, position + 1 :].any()


def test_bad_generation_options_get_clear_errors(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    with pytest.raises(ArgumentError, match="max_new_tokens must be an int >= 1, got 0"):
        model.generate_capture(CASE, max_new_tokens=0)
    with pytest.raises(ArgumentError, match="Sampling needs temperature > 0"):
        model.generate_capture(CASE, do_sample=True, temperature=0)
    with pytest.raises(ArgumentError, match=r"top_p must be in \(0, 1\]"):
        model.generate_capture(CASE, do_sample=True, top_p=1.5)
    with pytest.raises(QueryNotFoundError, match="the last generated token"):
        model.generate_capture(CASE, {"query_positions": ["final"]}, max_new_tokens=3)
    # greedy ignores temperature, as Activation Lab's example scenario sets it to 0
    assert model.generate_capture(CASE, max_new_tokens=2, temperature=0).n_steps == 2


def test_the_result_s_tables_payload_and_errors(smol_tokenizer):
    from tealeaves_widgets.errors import ArgumentTypeError, SelectionError
    from tealeaves_widgets.widgets import GenerationView, generation_payload, schema

    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    gen = model.generate_capture(CASE, max_new_tokens=5, do_sample=True, seed=3, top_k_probs=4)
    steps = gen.steps()
    assert list(steps["step"]) == list(range(5))
    assert list(steps["position"]) == list(gen.prompt_length - 1 + np.arange(5))
    np.testing.assert_allclose(steps["prob"], np.exp(gen.logprobs.astype(np.float64)))
    table = gen.top_k_table(-1)
    assert list(table["rank"]) == [1, 2, 3, 4]
    assert table["logprob"].is_monotonic_decreasing
    assert gen.text == "".join(gen.run.tokens[gen.prompt_length :])
    assert "5 steps sampled" in repr(gen) and "stopped by max_new_tokens" in repr(gen)
    payload = generation_payload(gen)
    assert schema.check_typeddict(payload, schema.GenerationPayload, "generation") == []
    assert payload["queries"] == [f"step:{i}" for i in range(5)]
    assert payload["sampling"] == "sampled, temperature 1, seed 3"
    view = GenerationView(gen)
    assert view.query == "step:0" and view.result is gen
    with pytest.raises(ArgumentTypeError, match="expects a tw.Generation"):
        GenerationView(gen.run)
    with pytest.raises(SelectionError, match="step 5 is outside this generation's 5 steps"):
        gen.top_k_table(5)
    with pytest.raises(SelectionError, match="source 'hidden_out'"):
        gen.neuron_trajectory(0, 1, "mlp_out")
    with pytest.raises(SelectionError, match=r"index=999 is outside 0..31"):
        gen.neuron_trajectory(0, 999)
