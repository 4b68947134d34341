"""`Model.capture` estimates what the capture needs before the forward pass
and refuses one that would not fit in the memory free now (monkeypatched
here), listing what would: fewer queries, a shorter prompt, memory_check=False."""

from __future__ import annotations

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.models import memory
from tests.helpers.tiny_models import make_tiny_model

CASE = tw.Case(system="You are Pip. " * 20, user="Where are your data centres? Q: where?")
REGIONS = {
    "query_positions": ["final", "last_token", 3, 5, 7, 9, 11, 13],
    "tracked_tokens": [" Paris"],
}


@pytest.fixture(scope="module")
def model(smol_tokenizer):
    return tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)


def _free(monkeypatch, n_bytes: int) -> None:
    monkeypatch.setattr(memory, "available_cpu", lambda: n_bytes)


def test_capture_refuses_what_would_not_fit_and_lists_what_would(model, monkeypatch):
    rendered, resolved = model.prepare(CASE, REGIONS)
    n_tokens, n_queries = len(rendered.token_ids), len(resolved.queries)
    need = model.memory_fit(n_tokens=n_tokens, n_queries=n_queries, n_tracked=1).need["cpu"]
    fewer = model.memory_fit(n_tokens=n_tokens, n_queries=3, n_tracked=1).need["cpu"]
    assert fewer < need
    _free(monkeypatch, (fewer + need) // 2)  # three queries fit, eight do not

    def forbidden(*args, **kwargs):
        raise AssertionError("the forward pass ran")

    monkeypatch.setattr(model, "_forward", forbidden)
    with pytest.raises(tw.InsufficientMemoryError) as caught:
        model.capture(CASE, REGIONS)
    message = str(caught.value)
    assert f"{n_tokens} tokens and {n_queries} queries would not fit" in message
    assert "cpu: needs" in message and "free" in message
    [queries] = [line for line in message.splitlines() if "fewer queries" in line]
    k = int(queries.split("at most ")[1].split()[0])
    assert 3 <= k < n_queries
    assert model.memory_fit(n_tokens=n_tokens, n_queries=k, n_tracked=1).fits
    assert not model.memory_fit(n_tokens=n_tokens, n_queries=k + 1, n_tracked=1).fits
    assert "memory_check=False" in message
    assert isinstance(caught.value, MemoryError)  # also caught as the builtin


def test_a_shorter_prompt_is_offered_when_the_prompt_is_what_does_not_fit(model, monkeypatch):
    rendered, _ = model.prepare(CASE, {"query_positions": ["final"]})
    n_tokens = len(rendered.token_ids)
    need = model.memory_fit(n_tokens=n_tokens, n_queries=1).need["cpu"]
    half = model.memory_fit(n_tokens=n_tokens // 2, n_queries=1).need["cpu"]
    _free(monkeypatch, (need + half) // 2)
    with pytest.raises(tw.InsufficientMemoryError) as caught:
        model.capture(CASE, {"query_positions": ["final"]})
    message = str(caught.value)
    assert "fewer queries" not in message  # one query already
    [shorter] = [line for line in message.splitlines() if "a shorter prompt" in line]
    tokens = int(shorter.split("at most ")[1].split()[0])
    assert n_tokens // 2 <= tokens < n_tokens
    assert model.memory_fit(n_tokens=tokens, n_queries=1).fits


def test_memory_check_false_tries_anyway(model, monkeypatch):
    _free(monkeypatch, 1)
    with pytest.raises(tw.InsufficientMemoryError):
        model.capture(CASE, REGIONS)
    run = model.capture(CASE, REGIONS, memory_check=False, progress=False)
    assert run.attention_heads.shape[2] == len(REGIONS["query_positions"])
    with pytest.raises(tw.ArgumentTypeError, match="memory_check must be True or False"):
        model.capture(CASE, REGIONS, memory_check=None)


def test_the_estimate_counts_the_run_saved_and_reopened(model):
    fit = model.memory_fit(n_tokens=50_000, n_queries=64)
    est = fit.estimate
    sizes = model._memory_sizes()
    rows = sizes.n_layers * sizes.n_heads * 64 * 50_000 * 4
    assert est.saving == int(4 * rows * (1 + 1 / sizes.n_heads))  # the Run's rows and 3 copies
    assert est.saving > est.forward  # long rows: saving and reopening is the peak
    assert fit.need["cpu"] == est.saving


def test_the_command_line_skip_reaches_the_capture(tmp_path, smol_tokenizer, monkeypatch):
    """--skip-memory-check skips the capture's own check too."""
    from tealeaves_widgets import batch
    from tealeaves_widgets.__main__ import main
    from tests.helpers.batch_fixtures import write_inputs, write_tiny_model

    tiny = write_tiny_model(tmp_path / "tiny")
    inputs = write_inputs(tmp_path / "inputs")
    cases = batch.prep(batch.PrepInputs.in_folder(inputs), smol_tokenizer).save(tmp_path / "c.json")
    _free(monkeypatch, 1)
    args = ["capture", str(cases), "--model", str(tiny), "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 1  # refused before loading
    assert main([*args, "--out", str(tmp_path / "runs"), "--skip-memory-check"]) == 0
    assert len(tw.open_runs(tmp_path / "runs")) == 16
