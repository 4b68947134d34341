"""`models.head_detect` (TransformerLens' `detect_head` in its own mode): on
five tiny architectures every pattern, flag and error measure equals a
transcription of TL's formula (tests/helpers/tl_head_detector.py) on the
eager model's `output_attentions` (1e-5); the per-chunk detection entries
equal TL's full detection matrices; closed forms on synthetic rows (a
perfect previous-token pattern, uniform causal attention); reducers sharing
one pass do not disturb each other's rows; a Run and a case read like their
ids; bad input is refused with a clear error."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.models import capture
from tealeaves_widgets.models.head_detect import (
    PATTERNS,
    DetectionReducer,
    detect_head,
    detection_rows,
)
from tealeaves_widgets.models.layer_stats import reduce_pass
from tests.helpers import tl_head_detector as tl
from tests.helpers.tiny_models import make_tiny_model

TOL = 1e-5
VOCAB = 64
TYPES = ["llama", "mistral", "gemma2", "gpt_oss", "gpt2"]
CHUNK = 7  # several chunks and a partial one
FLAGS = list(itertools.product([False, True], [False, True]))


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(capture, "REDUCE_CHUNK", CHUNK)


def repeated_tokens(seed: int = 0, length: int = 12, copies: int = 3) -> np.ndarray:
    """A BOS-like id, then one random block repeated: duplicates and
    induction targets everywhere after the first block (T = 37 by default,
    past the tiny models' sliding window of 16)."""
    block = np.random.default_rng(seed).integers(3, VOCAB, length)
    return np.concatenate([[1], np.tile(block, copies)]).astype(np.int64)


@pytest.fixture(scope="module", params=TYPES)
def setup(request, smol_tokenizer):
    ids = repeated_tokens()
    model = tw.load_model(
        make_tiny_model(request.param, vocab_size=VOCAB), tokenizer=smol_tokenizer
    )
    eager = make_tiny_model(request.param, vocab_size=VOCAB, attn_implementation="eager")
    with torch.no_grad():
        out = eager(input_ids=torch.as_tensor(ids)[None], output_attentions=True)
    return model, ids, [a[0].double().numpy() for a in out.attentions]


def _ours(model, ids, pattern, bos, current, measure) -> tuple[np.ndarray, np.ndarray]:
    """(scores, raw) of our reducer on one pass."""
    s = model.shape
    kind = pattern if isinstance(pattern, str) else torch.as_tensor(pattern, dtype=torch.float32)
    reducer = DetectionReducer(
        torch.as_tensor(ids),
        kind,
        s.n_layers,
        s.n_heads,
        exclude_bos=bos,
        exclude_current_token=current,
        error_measure=measure,
    )
    reduce_pass(model, ids, [reducer])
    return reducer.values(len(ids)), reducer.raw(len(ids))


def _compare(got, got_raw, expected, expected_raw, measure):
    np.testing.assert_allclose(got_raw, expected_raw, atol=TOL, rtol=TOL)
    if measure == "mul":
        np.testing.assert_allclose(got, expected, atol=TOL, rtol=TOL)
        return
    # 1 - round(raw, 3): equal unless the raw value sits on a rounding tie
    tie = tl.near_rounding_boundary(expected_raw, TOL)
    np.testing.assert_array_equal(got[~tie], expected[~tie])
    assert np.all(np.abs(got - expected)[tie] <= 1e-3 + 1e-9)


@pytest.mark.parametrize("measure", ["mul", "abs"])
def test_every_pattern_and_flag_equals_tls_formula_on_eager_attentions(setup, measure):
    model, ids, attentions = setup
    for pattern, (bos, current) in itertools.product(PATTERNS, FLAGS):
        flags = dict(exclude_bos=bos, exclude_current_token=current, error_measure=measure)
        expected, expected_raw = tl.detect_all(attentions, ids, pattern, **flags)
        got, got_raw = _ours(model, ids, pattern, bos, current, measure)
        assert got.shape == (model.shape.n_layers, model.shape.n_heads)
        _compare(got, got_raw, expected, expected_raw, measure)
    # and through the public entry point, once per measure
    np.testing.assert_allclose(
        model.detect_head(ids, "induction_head", error_measure=measure),
        tl.detect_all(attentions, ids, "induction_head", **_flags(False, False, measure))[0],
        atol=1e-3 if measure == "abs" else TOL,
    )


def _flags(bos, current, measure):
    return dict(exclude_bos=bos, exclude_current_token=current, error_measure=measure)


@pytest.mark.parametrize("measure", ["mul", "abs"])
def test_a_user_pattern_equals_the_oracle(setup, measure):
    model, ids, attentions = setup
    T = len(ids)
    rng = np.random.default_rng(7)
    if measure == "mul":
        pattern = np.tril(rng.random((T, T)) < 0.2).astype(np.float32)
    else:  # a predicted attention pattern: rows sum to 1
        pattern = np.tril(rng.random((T, T))).astype(np.float32)
        pattern /= pattern.sum(1, keepdims=True)
    for bos, current in FLAGS:
        expected, expected_raw = tl.detect_all(
            attentions, ids, pattern.astype(np.float64), **_flags(bos, current, measure)
        )
        got, got_raw = _ours(model, ids, pattern, bos, current, measure)
        _compare(got, got_raw, expected, expected_raw, measure)
    got_public = detect_head(model, ids, pattern, error_measure=measure)
    np.testing.assert_allclose(got_public, _ours(model, ids, pattern, False, False, measure)[0])


def test_the_chunk_entries_are_tls_detection_matrices():
    rng = np.random.default_rng(3)
    for tokens in [repeated_tokens(1), rng.integers(0, 4, 40), np.array([5, 5, 5, 5, 2, 5])]:
        t = torch.as_tensor(tokens)
        for name in PATTERNS:
            full = tl.PATTERN_BUILDERS[name](tokens)
            for start in range(0, len(tokens), 5):
                positions = torch.arange(start, min(start + 5, len(tokens)))
                rows = detection_rows(name, t, positions).numpy()
                np.testing.assert_array_equal(rows, full[start : start + 5], err_msg=name)


def _reduce_synthetic(weights: np.ndarray, tokens: np.ndarray, pattern, **flags) -> np.ndarray:
    """Feed (head, T, T) synthetic rows to the reducer in chunks of 4, as the capture would."""
    T = weights.shape[-1]
    reducer = DetectionReducer(torch.as_tensor(tokens), pattern, 1, weights.shape[0], **flags)
    allowed = np.tril(np.ones((T, T), bool))
    for start in range(0, T, 4):
        stop = min(start + 4, T)
        reducer(
            0,
            torch.arange(start, stop),
            torch.as_tensor(weights[None, :, start:stop], dtype=torch.float32),
            torch.as_tensor(allowed[None, None, start:stop]),
        )
    return reducer.values(T)[0]


def test_closed_forms_on_synthetic_rows():
    T = 30
    tokens = np.arange(T) % 7
    i = np.arange(T, dtype=np.float64)
    perfect = np.zeros((1, T, T))
    perfect[0, 0, 0] = 1.0  # row 0 can only attend to itself
    perfect[0, np.arange(1, T), np.arange(T - 1)] = 1.0
    uniform = np.tril(np.ones((T, T))) / (i + 1)[:, None]
    rows = np.concatenate([perfect, uniform[None]])  # two heads
    prev = "previous_token_head"

    def score(**flags):
        return _reduce_synthetic(rows, tokens, prev, **flags)

    # mul: a perfect previous-token head scores 1 once the forced self-attention
    # of row 0 is left out, (T - 1) / T with it
    np.testing.assert_allclose(score(exclude_current_token=True)[0], 1.0, rtol=1e-7)
    np.testing.assert_allclose(score(exclude_bos=True)[0], 1.0, rtol=1e-7)
    np.testing.assert_allclose(score()[0], (T - 1) / T, rtol=1e-7)
    # uniform causal attention: query i gives its previous token 1 / (i + 1)
    np.testing.assert_allclose(score()[1], (1 / (i[1:] + 1)).sum() / T, rtol=1e-6)
    np.testing.assert_allclose(
        score(exclude_current_token=True)[1],
        (1 / (i[1:] + 1)).sum() / (i / (i + 1)).sum(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        score(exclude_bos=True)[1], (1 / (i[2:] + 1)).sum() / (i / (i + 1)).sum(), rtol=1e-6
    )
    # abs: the perfect head's only error is row 0's self-attention (|1 - 0| = 1)
    np.testing.assert_allclose(score(error_measure="abs")[0], 1 - round(1 / T, 3), rtol=1e-7)
    np.testing.assert_allclose(
        score(error_measure="abs", exclude_current_token=True)[0], 1.0, rtol=1e-7
    )
    # uniform: row 0 errs by 1; row i >= 1 by (i - 1) / (i + 1) off target and
    # i / (i + 1) on it, 2i / (i + 1) in all
    total = 1 + (2 * i[1:] / (i[1:] + 1)).sum()
    np.testing.assert_allclose(score(error_measure="abs")[1], 1 - round(total / T, 3), rtol=1e-7)


def test_reducers_sharing_a_pass_do_not_touch_each_others_rows(smol_tokenizer):
    """Older TransformerLens releases zeroed column 0 / the diagonal of the
    cached pattern in place in "mul" mode (a second call on the same cache
    read the damaged pattern; 4.3 clones first). Ours only
    reads its rows: two reducers with different flags in one pass, in either
    order, score as in separate passes."""
    model = tw.load_model(make_tiny_model("llama", vocab_size=VOCAB), tokenizer=smol_tokenizer)
    ids = repeated_tokens(2)
    s, tokens = model.shape, torch.as_tensor(ids)

    def make(bos, current):
        return DetectionReducer(
            tokens, "induction_head", s.n_layers, s.n_heads,
            exclude_bos=bos, exclude_current_token=current,
        )  # fmt: skip

    alone = {}
    for flags in [(True, True), (False, False)]:
        reducer = make(*flags)
        reduce_pass(model, ids, [reducer])
        alone[flags] = reducer.values(len(ids))
    assert np.abs(alone[(True, True)] - alone[(False, False)]).max() > 1e-3
    for order in [[(True, True), (False, False)], [(False, False), (True, True)]]:
        reducers = [make(*flags) for flags in order]
        sums: list[torch.Tensor] = []
        reduce_pass(model, ids, [*reducers, lambda *a, kept=sums: kept.append(a[2][0].sum(-1))])
        for flags, reducer in zip(order, reducers, strict=True):
            np.testing.assert_array_equal(reducer.values(len(ids)), alone[flags])
        for row_sums in sums:  # the rows still sum to 1 after both reducers ran
            torch.testing.assert_close(row_sums, torch.ones_like(row_sums), atol=1e-5, rtol=0)


def test_a_run_and_a_case_read_as_their_ids(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    case = tw.Case(user="The cat sat on the mat. The cat sat on the mat.")
    run = model.capture(case)
    by_ids = model.detect_head(np.asarray(run.token_ids), "induction_head")
    np.testing.assert_array_equal(model.detect_head(run, "induction_head"), by_ids)
    np.testing.assert_array_equal(model.detect_head(case, "induction_head"), by_ids)
    np.testing.assert_array_equal(model.detect_head(list(run.token_ids), "induction_head"), by_ids)


def test_bad_input_is_refused(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama", vocab_size=VOCAB), tokenizer=smol_tokenizer)
    ids = repeated_tokens()
    T = len(ids)
    with pytest.raises(tw.ArgumentError, match=r"Unknown detection pattern 'prev'.*expected"):
        model.detect_head(ids, "prev")
    with pytest.raises(tw.ArgumentError, match=rf"\({T}, {T}\).*got shape \(5, 5\)"):
        model.detect_head(ids, np.zeros((5, 5)))
    with pytest.raises(tw.ArgumentError, match="lower triangular"):
        model.detect_head(ids, np.ones((T, T)))
    with pytest.raises(tw.ArgumentTypeError, match="must be one of"):
        model.detect_head(ids, 3)  # type: ignore[arg-type]
    with pytest.raises(tw.ArgumentError, match=r"Unknown error_measure 'l2'.*'mul'.*'abs'"):
        model.detect_head(ids, "induction_head", error_measure="l2")
    with pytest.raises(tw.ArgumentTypeError, match="exclude_bos must be True or False"):
        model.detect_head(ids, "induction_head", exclude_bos="yes")  # type: ignore[arg-type]
    with pytest.raises(tw.ArgumentError, match="at least 2 tokens"):
        model.detect_head(ids[:1], "induction_head")
    with pytest.raises(tw.ArgumentError, match=rf"0\.\.{VOCAB - 1}"):
        model.detect_head(np.array([1, VOCAB]), "induction_head")
    with pytest.raises(tw.ArgumentTypeError, match="1-D sequence of token ids"):
        model.detect_head(np.zeros((2, 3), np.int64), "induction_head")
