"""Parity with TransformerLens 4.3's `head_detector.detect_head` (the
`parity` extra; skipped with its reason where transformer-lens is not
installed: tests/integration/test_head_detect.py checks the same formula
against a transcription that needs no TransformerLens).

A tiny random HF Llama with GQA (4 query heads, 2 KV heads) is built from a
config twice with one seed: once for us (SDPA), once booted into a
TransformerLens `TransformerBridge` from that local model object (hub off).
The bridge's attention patterns equal the HF eager attentions; then every
pattern, exclude flag and error measure of TL's `detect_head` equals
`Model.detect_head` on the ids TL scored (BOS included) within 1e-6, a user
pattern too; TL 4.3 leaves its cache alone, so call order does not matter
for either."""

from __future__ import annotations

import copy
import itertools
import logging
import warnings

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.models.head_detect import PATTERNS
from tests.helpers import tl_head_detector as oracle
from tests.helpers.tiny_models import make_tiny_model

TOL = 1e-6
SEQ = "The cat sat on the mat, then the dog sat on the mat. The cat sat on the mat, then the dog"
FLAGS = list(itertools.product([False, True], [False, True]))


@pytest.fixture(scope="module")
def booted(smol_tokenizer):
    """(TL bridge, its head_detector module, our Model, the ids, TL's cache)."""
    # TL's import changes process-wide state (warning filters, the transformers
    # logger's level, huggingface_hub's float validator): put it back after
    import huggingface_hub.constants
    from huggingface_hub import dataclasses as hub_dataclasses

    filters, level = warnings.filters[:], logging.getLogger("transformers").level
    validator = hub_dataclasses._validate_simple_type
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at call time
    mp.setattr(hub_dataclasses, "_validate_simple_type", validator)
    try:
        pytest.importorskip(
            "transformer_lens", reason="the parity extra: pip install -e '.[parity]'"
        )
    except pytest.skip.Exception:
        mp.undo()
        raise
    from transformer_lens import head_detector
    from transformer_lens.model_bridge import TransformerBridge

    hf = make_tiny_model("llama", attn_implementation="eager")
    bridge = TransformerBridge.boot_transformers(
        "tiny-llama-local", hf_model=hf, tokenizer=copy.deepcopy(smol_tokenizer), device="cpu"
    )
    ours = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    ids = bridge.to_tokens(SEQ)[0].numpy()
    _, cache = bridge.run_with_cache(bridge.to_tokens(SEQ), remove_batch_dim=True)
    yield bridge, head_detector, ours, ids, cache
    mp.undo()
    warnings.filters[:] = filters
    logging.getLogger("transformers").setLevel(level)


def _patterns(cache, n_layers):
    return [cache["pattern", layer, "attn"].detach().double().numpy() for layer in range(n_layers)]


def test_the_booted_model_is_ours_and_its_patterns_are_hf_eager(booted):
    bridge, _, ours, ids, cache = booted
    s = ours.shape
    assert (s.n_heads, s.n_kv_heads) == (4, 2)  # GQA
    assert (bridge.cfg.n_layers, bridge.cfg.n_heads) == (s.n_layers, s.n_heads)
    assert ids[0] == ours.tokenizer.bos_token_id  # TL prepends a BOS
    assert len(ids) > 20 and len(set(ids.tolist())) < len(ids)  # repeats: duplicates
    eager = make_tiny_model("llama", attn_implementation="eager")
    for name, value in ours.hf_model.state_dict().items():
        torch.testing.assert_close(eager.state_dict()[name], value, rtol=0, atol=0)
    with torch.no_grad():
        out = eager(input_ids=torch.as_tensor(ids)[None], output_attentions=True)
    for layer, attention in enumerate(out.attentions):
        np.testing.assert_allclose(
            _patterns(cache, s.n_layers)[layer], attention[0].double().numpy(), atol=1e-6
        )


@pytest.mark.parametrize("measure", ["mul", "abs"])
def test_detect_head_equals_transformer_lens(booted, measure):
    bridge, head_detector, ours, ids, cache = booted
    patterns = _patterns(cache, ours.shape.n_layers)
    ties = 0
    for pattern, (bos, current) in itertools.product(PATTERNS, FLAGS):
        flags = dict(exclude_bos=bos, exclude_current_token=current, error_measure=measure)
        theirs = head_detector.detect_head(bridge, SEQ, pattern, cache=cache, **flags)
        theirs = theirs.double().numpy()
        got = ours.detect_head(ids, pattern, **flags)
        assert got.shape == theirs.shape and got.dtype == np.float64
        # the transcription agrees with TL itself, on TL's own patterns
        expected, raw = oracle.detect_all(patterns, ids, pattern, **flags)
        np.testing.assert_allclose(expected, theirs, atol=TOL, err_msg=f"{pattern} {flags}")
        if measure == "abs":
            tie = oracle.near_rounding_boundary(raw, 1e-5)
            ties += int(tie.sum())
            np.testing.assert_allclose(got[~tie], theirs[~tie], atol=TOL)
            assert np.all(np.abs(got - theirs)[tie] <= 1e-3 + TOL)
        else:
            np.testing.assert_allclose(got, theirs, atol=TOL, err_msg=f"{pattern} {flags}")
        assert not np.allclose(got, got.flat[0])  # heads differ: not a constant
    assert ties <= 2  # ties at 3 decimals are rare; many would mean a looser match


def test_a_user_pattern_equals_transformer_lens(booted):
    bridge, head_detector, ours, ids, cache = booted
    T = len(ids)
    pattern = np.tril(np.random.default_rng(0).random((T, T)) < 0.3).astype(np.float32)
    for (bos, current), measure in itertools.product(FLAGS, ["mul", "abs"]):
        flags = dict(exclude_bos=bos, exclude_current_token=current, error_measure=measure)
        theirs = head_detector.detect_head(
            bridge, SEQ, torch.as_tensor(pattern), cache=cache, **flags
        ).numpy()
        np.testing.assert_allclose(ours.detect_head(ids, pattern, **flags), theirs, atol=TOL)


def test_call_order_changes_nothing_in_either(booted):
    """The in-place zeroing of older TL releases would make the second call
    read a damaged cache; 4.3 clones first, and ours keeps no cache."""
    bridge, head_detector, ours, ids, cache = booted
    before = _patterns(cache, ours.shape.n_layers)
    flagged = dict(exclude_bos=True, exclude_current_token=True)
    results = {}
    for order in [("flagged", "plain"), ("plain", "flagged")]:
        for name in order:
            flags = flagged if name == "flagged" else {}
            tl_value = head_detector.detect_head(
                bridge, SEQ, "induction_head", cache=cache, **flags
            )
            ours_value = ours.detect_head(ids, "induction_head", **flags)
            results.setdefault(name, []).append((tl_value.numpy(), ours_value))
    for name, ((tl_first, ours_first), (tl_second, ours_second)) in results.items():
        np.testing.assert_array_equal(tl_first, tl_second, err_msg=name)
        np.testing.assert_array_equal(ours_first, ours_second, err_msg=name)
    for a, b in zip(before, _patterns(cache, ours.shape.n_layers), strict=True):
        np.testing.assert_array_equal(a, b)  # TL's cached patterns untouched
    assert np.abs(results["flagged"][0][1] - results["plain"][0][1]).max() > 1e-3
