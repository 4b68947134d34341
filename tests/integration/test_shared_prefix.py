"""capture_many with a shared prefix (models.shared_prefix): the cases' common
token prefix runs once and keeps its KV cache, each case runs its suffix on
it. Every Run equals a separate `model.capture` of its case, field by field
(rows and lens at 1e-5 in float32), on every tiny architecture (sliding
windows, softcaps, sinks, learned positions), with queries inside the prefix,
at its last token, at the first suffix token and later, suffixes of different
lengths (padded batches, or one per pass on the same cache), and a case whose
whole prompt is the prefix. Models whose cache cannot be shared fall back to
the ordinary batches; the auto rule picks the shared path for long prefixes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.models import shared_prefix as sp
from tests.helpers.tiny_models import TINY_MODEL_TYPES, make_tiny_model

ATOL = 1e-5
SYSTEM = (
    "You are Pip, a careful support assistant. ## Rules\n"
    + "Never guess; say so when you are unsure, and keep every answer short. " * 5
)
USERS = [  # they differ from their first word: the common prefix ends at the user message
    "Anna asks. Question: where is the office?",
    "Ben asks politely, twice over. Question: when does support open on Mondays?",
    "Cleo. Question: who?",
    "Dan asks. Question: is the code word Paris, or was it Lyon after all, please?",
]
TRACKED = [" the", " Paris", " Yes"]


def regions(n_prefix: int) -> dict:
    """Queries inside the prefix (a marker, token 3, its last token) and in the
    suffixes (its first token, a marker, the final token)."""
    return {
        "system_prompt": {"regions": [{"name": "rules", "start_marker": "## Rules"}]},
        "user_message": {"regions": [{"name": "question", "start_marker": "Question:"}]},
        "query_positions": [
            "final",
            {"after_text": "## Rules"},
            3,
            n_prefix - 1,
            n_prefix,
            {"after_text": "Question:"},
        ],
        "tracked_tokens": TRACKED,
    }


def prefix_of(model: tw.Model, cases: list[tw.Case]) -> int:
    return sp.common_prefix_length([model.render(case).token_ids for case in cases])


def assert_same_ranks(ranks: np.ndarray, fresh: np.ndarray) -> None:
    """Equal, except that past rank 100 a near tie within float noise may move
    a rank by 1 per 10,000 (the probabilities are compared at 1e-5)."""
    allowed = np.where(fresh <= 100, 0, 1 + fresh // 10_000)
    assert (np.abs(ranks - fresh) <= allowed).all(), (ranks, fresh)


def assert_same_run(shared: tw.Run, separate: tw.Run, nats_rtol: float = 0.0) -> None:
    """Every field of `shared` equals that of `separate`: the same text,
    tokens, regions, queries, case and model; rows and lens at `ATOL`
    (entropy and KL, in nats, also within `nats_rtol` of their size)."""
    assert shared.text == separate.text and shared.tokens == separate.tokens
    np.testing.assert_array_equal(shared.token_ids, separate.token_ids)
    np.testing.assert_array_equal(shared.offsets, separate.offsets)
    assert shared.queries == separate.queries and shared.regions.keys() == separate.regions.keys()
    for name, region in shared.regions.items():
        other = separate.regions[name]
        np.testing.assert_array_equal(region.token_indices, other.token_indices)
        assert (region.section, region.char_span, region.parent, region.builtin) == (
            other.section,
            other.char_span,
            other.parent,
            other.builtin,
        )
    assert shared.case == separate.case and shared.region_spec == separate.region_spec
    assert shared.model_info == separate.model_info
    assert shared.attention_heads.shape == separate.attention_heads.shape
    assert shared.attention_heads.dtype == np.float32
    np.testing.assert_allclose(shared.attention_heads, separate.attention_heads, rtol=0, atol=ATOL)
    np.testing.assert_allclose(shared.attention, separate.attention, rtol=0, atol=ATOL)
    a, b = shared.lens, separate.lens
    np.testing.assert_array_equal(a.top_ids, b.top_ids)
    np.testing.assert_array_equal(a.tracked_ids, b.tracked_ids)
    assert a.tracked_tokens == b.tracked_tokens and a.vocab == b.vocab
    assert_same_ranks(a.tracked_ranks, b.tracked_ranks)
    for field in ("top_probs", "entropy", "kl_to_final", "tracked_probs"):
        rtol = nats_rtol if field in ("entropy", "kl_to_final") else 0.0
        np.testing.assert_allclose(
            getattr(a, field), getattr(b, field), rtol=rtol, atol=ATOL, err_msg=field
        )


class Spy:
    """Counts the shared path's passes (monkeypatched over models.shared_prefix)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.prefixes: list[int] = []  # tokens of each prefix pass
        self.batches: list[list[int]] = []  # suffix lengths of each suffix pass
        prefix_pass, suffix_pass = sp.prefix_pass, sp.suffix_pass

        def spied_prefix(model, token_ids, positions=()):
            self.prefixes.append(len(token_ids))
            return prefix_pass(model, token_ids, positions)

        def spied_suffix(model, kept, suffixes, positions):
            self.batches.append([len(s) for s in suffixes])
            return suffix_pass(model, kept, suffixes, positions)

        monkeypatch.setattr(sp, "prefix_pass", spied_prefix)
        monkeypatch.setattr(sp, "suffix_pass", spied_suffix)


@pytest.fixture(scope="module")
def tiny_llama(smol_tokenizer) -> tw.Model:
    return tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)


@pytest.mark.parametrize("model_type", TINY_MODEL_TYPES)
def test_shared_prefix_runs_equal_separate_captures(smol_tokenizer, model_type, monkeypatch):
    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    cases = [tw.Case(system=SYSTEM, user=user, name=f"u{i}") for i, user in enumerate(USERS)]
    n_prefix = prefix_of(model, cases)
    assert n_prefix >= sp.SHARED_PREFIX_MIN_TOKENS, "long enough for the auto rule"
    spec = regions(n_prefix)
    spy = Spy(monkeypatch)
    runset = model.capture_many(cases, spec, progress=False)  # shared_prefix=None: auto
    lengths = [len(model.render(case).token_ids) for case in cases]
    assert spy.prefixes == [n_prefix]
    assert spy.batches == [sorted((n - n_prefix for n in lengths), reverse=True)]
    assert len(set(lengths)) == len(cases), "suffixes differ in length: the batch is padded"
    assert runset.labels == ("u0", "u1", "u2", "u3")
    for case, run in zip(cases, runset, strict=True):
        positions = set(run.queries.values())
        assert min(positions) < n_prefix <= max(positions), "queries left and right of it"
        assert_same_run(run, model.capture(case, spec))


@pytest.mark.parametrize("model_type", ["llama", "mistral", "gemma2", "gpt_oss"])
def test_a_case_whose_prompt_is_the_prefix(smol_tokenizer, model_type, monkeypatch):
    """One case is a token prefix of the others (their responses continue it):
    the prefix is that whole prompt, and its run comes from the prefix pass alone."""
    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    base = tw.Case(system=SYSTEM, user=USERS[0])
    cases = [
        tw.Case(system=SYSTEM, user=USERS[0], response="It is in Paris, by the river."),
        base,
        tw.Case(system=SYSTEM, user=USERS[0], response="Lyon."),
    ]
    n_prefix = prefix_of(model, cases)
    assert n_prefix == len(model.render(base).token_ids)
    spec = {**regions(n_prefix), "query_positions": ["final", {"after_text": "## Rules"}, 3]}
    spy = Spy(monkeypatch)
    runset = model.capture_many(cases, spec, progress=False)
    assert spy.prefixes == [n_prefix]
    assert sorted(spy.batches[0]) == sorted(
        len(model.render(case).token_ids) - n_prefix for case in (cases[0], cases[2])
    ), "the base case needs no suffix pass"
    for case, run in zip(cases, runset, strict=True):
        assert_same_run(run, model.capture(case, spec))


def test_one_suffix_per_pass_reuses_the_prefix_unchanged(smol_tokenizer, monkeypatch):
    """batch_tokens=1: each suffix runs alone on the same prefix cache; no pass
    leaves its keys in it for the next (mistral: a sliding window too)."""
    model = tw.load_model(make_tiny_model("mistral"), tokenizer=smol_tokenizer)
    cases = [tw.Case(system=SYSTEM, user=user) for user in USERS]
    spec = regions(prefix_of(model, cases))
    spy = Spy(monkeypatch)
    seen = []
    suffix_pass = sp.suffix_pass

    def checked(model, kept, suffixes, positions):
        before = [(k.clone(), v.clone()) for k, v in kept.layers]
        out = suffix_pass(model, kept, suffixes, positions)
        seen.append(kept)
        for (k, v), (k0, v0) in zip(kept.layers, before, strict=True):
            assert torch.equal(k, k0) and torch.equal(v, v0)
        return out

    monkeypatch.setattr(sp, "suffix_pass", checked)
    runset = model.capture_many(cases, spec, progress=False, batch_tokens=1)
    assert len(seen) == len(cases) and all(kept is seen[0] for kept in seen)
    assert spy.prefixes == [prefix_of(model, cases)]
    for case, run in zip(cases, runset, strict=True):
        assert_same_run(run, model.capture(case, spec))


def test_suffix_batches_count_the_prefix_in_the_budget(tiny_llama, monkeypatch):
    """A suffix batch's size x (prefix + longest suffix) stays within
    batch_tokens, as the ordinary batches count whole cases."""
    cases = [tw.Case(system=SYSTEM, user=user) for user in USERS]
    lengths = [len(tiny_llama.render(case).token_ids) for case in cases]
    n_prefix = prefix_of(tiny_llama, cases)
    spy = Spy(monkeypatch)
    tiny_llama.capture_many(cases, progress=False, batch_tokens=2 * max(lengths))
    suffixes = sorted((n - n_prefix for n in lengths), reverse=True)
    assert spy.batches == [suffixes[:2], suffixes[2:]]
    spy.batches.clear()
    tiny_llama.capture_many(cases, progress=False, batch_tokens=2 * max(lengths) - 1)
    assert spy.batches[0] == suffixes[:1] and len(spy.batches) == 3


def test_a_cache_that_cannot_be_shared_falls_back(tiny_llama, monkeypatch):
    """When the model does not fill a plain full-length cache (keep returns
    None), the cases run in the ordinary batches, with the same runs."""
    cases = [tw.Case(system=SYSTEM, user=user) for user in USERS[:3]]
    spec = regions(prefix_of(tiny_llama, cases))
    spy = Spy(monkeypatch)
    monkeypatch.setattr(sp, "keep", lambda cache, token_ids, n_layers: None)
    sizes = []
    forward = tiny_llama._forward
    monkeypatch.setattr(
        tiny_llama, "_forward", lambda items, cb: sizes.append(len(items)) or forward(items, cb)
    )
    runset = tiny_llama.capture_many(cases, spec, progress=False, shared_prefix=True)
    assert len(spy.prefixes) == 1 and spy.batches == [], "tried, then fell back"
    assert sum(sizes) == len(cases)
    monkeypatch.undo()
    for case, run in zip(cases, runset, strict=True):
        assert_same_run(run, tiny_llama.capture(case, spec))


def test_the_auto_rule(tiny_llama, monkeypatch):
    long_cases = [tw.Case(system=SYSTEM, user=user) for user in USERS[:2]]
    short_cases = [tw.Case(system="Be brief.", user=user) for user in USERS[:2]]
    ids = [tiny_llama.render(case).token_ids for case in long_cases]
    n = sp.common_prefix_length(ids)
    assert ids[0][:n].tolist() == ids[1][:n].tolist() and ids[0][n] != ids[1][n]
    assert sp.shared_prefix_length(ids) == n >= sp.SHARED_PREFIX_MIN_TOKENS
    assert sp.shared_prefix_length(ids, False) == 0
    assert sp.shared_prefix_length(ids[:1]) == 0, "one case: nothing to share"
    assert sp.shared_prefix_length(ids[:1], True) == len(ids[0])
    short = [tiny_llama.render(case).token_ids for case in short_cases]
    k = sp.common_prefix_length(short)
    assert 0 < k < sp.SHARED_PREFIX_MIN_TOKENS
    assert sp.shared_prefix_length(short) == 0 and sp.shared_prefix_length(short, True) == k
    assert sp.common_prefix_length([[1, 2, 3], [1, 2], [1, 2, 4]]) == 2
    assert sp.common_prefix_length([[5, 1], [1, 5]]) == 0

    spy = Spy(monkeypatch)
    tiny_llama.capture_many(long_cases, progress=False)
    assert spy.prefixes == [n]
    for cases, option in [(long_cases, False), (short_cases, None), (long_cases[:1], None)]:
        spy.prefixes.clear()
        tiny_llama.capture_many(cases, progress=False, shared_prefix=option)
        assert spy.prefixes == [], (option, len(cases))
    tiny_llama.capture_many(short_cases, progress=False, shared_prefix=True)
    assert spy.prefixes == [k]
    with pytest.raises(tw.ArgumentTypeError, match="shared_prefix must be True, False or None"):
        tiny_llama.capture_many(long_cases, progress=False, shared_prefix="yes")


def test_prefix_and_suffix_passes_equal_the_whole_pass(tiny_llama):
    """The reusable pieces: a prefix pass and a suffix pass on its cache give
    the rows and residuals of one captured pass over the whole sequence."""
    ids = np.asarray(tiny_llama.render(tw.Case(system=SYSTEM, user=USERS[1])).token_ids)
    n_prefix, n = 70, len(ids)
    inside, after = [2, 69], [70, n - 5, n - 1]
    whole_rows, whole_residuals = tiny_llama._captured(
        torch.as_tensor(ids)[None], torch.as_tensor(inside + after)[None]
    )
    prefix = sp.prefix_pass(tiny_llama, ids[:n_prefix], [69, 2, 69])
    assert prefix is not None and prefix.positions.tolist() == inside
    assert prefix.rows.shape == (3, 4, 2, n_prefix) and prefix.n_tokens == n_prefix
    np.testing.assert_allclose(prefix.rows, whole_rows[:, 0, :, :2, :n_prefix], rtol=0, atol=ATOL)
    assert not whole_rows[:, 0, :, :2, n_prefix:].any()
    torch.testing.assert_close(prefix.residuals, whole_residuals[:, 0, :2], rtol=0, atol=ATOL)
    # two passes on the one cache: the second sees the prefix alone again
    for _ in range(2):
        [(rows, residuals)] = sp.suffix_pass(tiny_llama, prefix.kept, [ids[n_prefix:]], [after])
        np.testing.assert_allclose(rows, whole_rows[:, 0, :, 2:], rtol=0, atol=ATOL)
        torch.testing.assert_close(residuals, whole_residuals[:, 0, 2:], rtol=0, atol=ATOL)
    with pytest.raises(tw.ArgumentError, match="not among the prefix pass's queries"):
        prefix.index(5)
    with pytest.raises(tw.ArgumentError, match="query positions in its span 70"):
        sp.suffix_pass(tiny_llama, prefix.kept, [ids[n_prefix:]], [[69]])
    with pytest.raises(tw.ArgumentError, match="must lie in 0..69"):
        sp.prefix_pass(tiny_llama, ids[:n_prefix], [70])


@pytest.mark.slow
def test_embedded_shared_prefix_equals_capture(smol_model, monkeypatch):
    """On the embedded model (30 layers, a 49k vocabulary), entropy and KL
    are sums over the vocabulary of up to 26 nats here: the float noise of
    the shorter passes reaches 3e-5 nats there, 9e-6 of the value, so those two
    are compared at 1e-5 relative (probabilities and rows still at 1e-5)."""
    cases = [tw.Case(system=SYSTEM, user=user) for user in USERS[:3]]
    n_prefix = prefix_of(smol_model, cases)
    spec = regions(n_prefix)
    spy = Spy(monkeypatch)
    runset = smol_model.capture_many(cases, spec, progress=False)
    assert spy.prefixes == [n_prefix]
    for case, run in zip(cases, runset, strict=True):
        assert_same_run(run, smol_model.capture(case, spec), nats_rtol=1e-5)
