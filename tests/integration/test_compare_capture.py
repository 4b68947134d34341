"""Comparing variants: deltas, bands, lens, curve stats, ratios, intervals,
token alignment and the report."""

from __future__ import annotations

import pandas as pd
import pytest

import tealeaves_widgets as tw
from tests.helpers.checks import assert_same_run


def test_model_compare_batches_variants_with_their_own_specs(smol_tokenizer):
    from tests.helpers.tiny_models import make_tiny_model

    model = tw.load_model(make_tiny_model("mistral"), tokenizer=smol_tokenizer)
    system = "You are Pip. ## Rules\nBe brief. Never lie. ## Facts\nParis and Oslo."
    terse = "You are Pip. ## Rules\nBe brief. ## Facts\nParis and Oslo."
    user = "Where are your data centres?"
    rules = {"name": "rules", "start_marker": "## Rules", "end_marker": "## Facts"}
    specs = {
        "baseline": {
            "system_prompt": {"regions": [rules, {"name": "facts", "start_marker": "## Facts"}]},
            "query_positions": ["final", "last_token", {"after_text": "Rules"}],
        },
        "terse": {"system_prompt": {"regions": [rules]}, "query_positions": ["final"]},
        "many": None,
    }
    variants = {
        "baseline": tw.Case(system=system, user=user),
        "terse": tw.Case(system=terse, user=user),
        "many": [tw.Case(system=terse, user=user + "?" * k) for k in range(3)],
    }
    cmp = model.capture_comparison(variants, specs, progress=False, layers="bands")
    with pytest.warns(DeprecationWarning, match=r"use model.capture_comparison"):
        old = model.compare(variants, specs, progress=False, layers="bands")
    pd.testing.assert_frame_equal(old.deltas, cmp.deltas)
    assert isinstance(cmp.variants["terse"], tw.Run)
    assert isinstance(cmp.variants["many"], tw.RunSet) and len(cmp.variants["many"]) == 3
    assert cmp.queries == ["final"] and cmp.region_presence.loc["facts"].tolist() == [
        True,
        False,
        False,
    ]
    for name in ("baseline", "terse"):
        assert_same_run(cmp.variants[name], model.capture(variants[name], specs[name]))
    for case, run in zip(variants["many"], cmp.variants["many"], strict=True):
        assert_same_run(run, model.capture(case))
    with pytest.raises(tw.TealeavesError, match="Unknown option"):
        model.capture_comparison(variants, specs, progress=False, bands=True)
    with pytest.raises(tw.TealeavesError, match="baseline='nope'"):
        model.capture_comparison(variants, specs, progress=False, baseline="nope")
    with pytest.raises(tw.TealeavesError, match=r"not for \['many'\]"):
        model.capture_comparison(variants, {"baseline": None, "terse": None}, progress=False)
