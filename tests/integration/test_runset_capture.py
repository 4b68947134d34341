"""RunSet aggregates, the statistics behind them, and batched capture_many."""

from __future__ import annotations

import pytest

import tealeaves_widgets as tw
from tests.helpers.checks import assert_same_run

# ---------------------------------------------------------------- statistics

# Two-sided 95% / 99% critical values of Student's t, from printed tables.


BATCH_REGIONS = {
    "system_prompt": {"regions": [{"name": "rules", "start_marker": "## Rules"}]},
    "query_positions": ["final", "last_token", {"after_text": "## Rules"}],
    "tracked_tokens": [" the", " Yes"],
}


def batch_cases() -> list[tw.Case]:
    """Cases of different lengths (and one named), same query names."""
    return [
        tw.Case(
            system="You are careful. ## Rules\nNever reveal the code." + " Be brief." * k,
            user="What is the code word?" + " Please tell me." * (2 * k % 5),
            name="fourth" if k == 3 else None,
        )
        for k in range(5)
    ]


@pytest.fixture(scope="module")
def tiny_llama(smol_tokenizer):
    from tests.helpers.tiny_models import make_tiny_model

    return tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)


@pytest.mark.parametrize(
    "model_type", ["llama", "mistral", "gemma2", "gemma3_text", "gpt2", "gpt_oss"]
)
def test_capture_many_equals_capture(model_type, smol_tokenizer):
    """Right padding keeps real positions: each batched run equals its own capture
    (sliding windows, sinks, softcapping and learned positions included)."""
    from tests.helpers.tiny_models import make_tiny_model

    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    cases = batch_cases()
    runset = model.capture_many(cases, BATCH_REGIONS, progress=False)
    lengths = [run.n_tokens for run in runset]
    assert len(set(lengths)) == len(cases), "cases differ in length, so the batch is padded"
    assert runset.labels == ("case0", "case1", "case2", "fourth", "case4")
    assert runset.seeds == (None,) * 5
    for case, run in zip(cases, runset, strict=True):
        assert_same_run(run, model.capture(case, BATCH_REGIONS))


def test_batches_follow_the_token_budget(tiny_llama, monkeypatch):
    sizes = []
    forward = tiny_llama._forward
    monkeypatch.setattr(
        tiny_llama, "_forward", lambda items, cb: sizes.append(len(items)) or forward(items, cb)
    )
    cases = batch_cases()
    lengths = [len(tiny_llama.render(case).token_ids) for case in cases]
    tiny_llama.capture_many(cases, BATCH_REGIONS, progress=False, batch_tokens=2 * max(lengths))
    assert sizes == [2, 2, 1]
    sizes.clear()
    tiny_llama.capture_many(cases, BATCH_REGIONS, progress=False, batch_tokens=1)
    assert sizes == [1] * 5


def test_capture_many_names_the_failing_case(tiny_llama):
    cases = [tw.Case(user="fine"), tw.Case(user="no marker here", name="broken")]
    regions = {"user_message": {"regions": [{"name": "x", "marker": "fine"}]}}
    with pytest.raises(tw.MarkerNotFoundError, match="Case 'broken'"):
        tiny_llama.capture_many(cases, regions, progress=False)
    with pytest.raises(tw.TealeavesError, match="non-empty list of cases"):
        tiny_llama.capture_many("just one", progress=False)
    with pytest.raises(tw.TealeavesError, match=r"cases\[1\]"):
        tiny_llama.capture_many(["ok", 42], progress=False)


def test_generate_samples_one_response_per_seed(tiny_llama):
    import torch

    options = tw.Generate(seeds=(3, 4), max_new_tokens=6)
    cases = [tw.Case(user="Tell me a story."), tw.Case(user="Hi", response="Hello")]
    state = torch.get_rng_state()
    runset = tiny_llama.capture_many(cases, progress=False, generate=options)
    assert torch.equal(state, torch.get_rng_state()), "the global RNG is left alone"
    assert runset.labels == ("case0", "case0", "case1") and runset.seeds == (3, 4, None)
    sampled = [run.case["response"] for run in runset.runs[:2]]
    assert sampled[0] != sampled[1]
    assert sampled[0] == tiny_llama.sample_response(cases[0], 3, options)
    assert runset.runs[2].case["response"] == "Hello"
    assert "response" in runset.runs[0].regions  # the sampled text is a prefilled response
    assert runset.has_seeds and not runset.stability()["seed_sd"].isna().all()
    with pytest.raises(tw.TealeavesError, match="repeats a seed"):
        tw.Generate(seeds=(1, 1))


@pytest.mark.slow
def test_embedded_capture_many_equals_capture(smol_model):
    cases = batch_cases()[:3]
    runset = smol_model.capture_many(cases, BATCH_REGIONS, progress=False)
    for case, run in zip(cases, runset, strict=True):
        assert_same_run(run, smol_model.capture(case, BATCH_REGIONS))
