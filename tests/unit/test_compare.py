"""Comparing variants: deltas, bands, lens, curve stats, ratios, intervals,
token alignment and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core import stats
from tests.helpers.fake_runs import TRACKED, fake_run, regions_of, variant_words


def run_of(terse: bool, seed: int = 0, **kwargs) -> tw.Run:
    words = variant_words(terse)
    return fake_run(words, regions_of(words), seed=seed, **kwargs)


@pytest.fixture(scope="module")
def pair() -> tuple[tw.Run, tw.Run]:
    return run_of(False, 0), run_of(True, 1)


def rows(table: pd.DataFrame, **where) -> pd.DataFrame:
    for column, value in where.items():
        table = table[table[column] == value]
    return table


@pytest.mark.parametrize("normalize", ["raw", "share", "density"])
def test_deltas_equal_the_difference_of_the_runs_own_curves(pair, normalize):
    base, terse = pair
    assert base.n_tokens != terse.n_tokens
    deltas = tw.compare({"baseline": base, "terse": terse}, normalize=normalize).deltas
    assert list(deltas.columns[:7]) == [
        "variant",
        "query",
        "region",
        "layer",
        "mass",
        "mass_low",
        "mass_high",
    ]
    for query in ("final", "last_token"):
        expected = terse.curves(query, normalize) - base.curves(query, normalize)
        for region in base.regions:
            got = rows(deltas, variant="terse", query=query, region=region)
            np.testing.assert_array_equal(got["layer"], np.arange(base.n_layers))
            np.testing.assert_allclose(got["delta"], expected[region], atol=1e-12)
            np.testing.assert_allclose(
                got["mass"], terse.curves(query, normalize)[region], atol=1e-12
            )
            own = base.curves(query, normalize)[region].to_numpy()
            np.testing.assert_allclose(got["rel_change"], expected[region] / own, atol=1e-12)
            baseline_rows = rows(deltas, variant="baseline", query=query, region=region)
            np.testing.assert_allclose(baseline_rows["mass"], own, atol=1e-12)
            assert (baseline_rows["delta"] == 0).all()
    assert deltas["mass_low"].isna().all() and deltas["significant"].isna().all()
    assert len(deltas) == 2 * 2 * len(base.regions) * base.n_layers


def test_a_region_of_one_variant_only_has_no_delta(pair):
    base, terse = pair
    words = variant_words(True)
    extra = fake_run(words, {**regions_of(words), "new": (8, 10)}, seed=1)
    cmp = tw.compare({"baseline": base, "terse": extra})
    assert cmp.regions[-1] == "new"
    assert cmp.region_presence.loc["new"].tolist() == [False, True]
    new = rows(cmp.deltas, region="new")
    assert new[new["variant"] == "baseline"]["mass"].isna().all()
    assert new["delta"].isna().all()
    assert not new[new["variant"] == "terse"]["mass"].isna().any()
    assert "`new` (baseline 0/1 runs, terse 1/1 runs)" in cmp.report()


def test_layer_bands_phases_and_lists(pair):
    base, terse = pair
    diff = (terse.curves(normalize="share") - base.curves(normalize="share"))["rules"].to_numpy()
    bands = tw.compare({"a": base, "b": terse}, layers="bands").deltas
    got = rows(bands, variant="b", query="final", region="rules")
    assert got["layer"].tolist() == ["early", "middle", "late"]
    np.testing.assert_allclose(got["delta"], [diff[0:2].mean(), diff[2:4].mean(), diff[4:6].mean()])
    phases = tw.compare({"a": base, "b": terse}, layers={"reading": (0, 4), "answer": [5]})
    got = rows(phases.deltas, variant="b", query="final", region="rules")
    np.testing.assert_allclose(got["delta"], [diff[:4].mean(), diff[5]])
    picked = tw.compare({"a": base, "b": terse}, layers=[1, 4]).deltas
    got = rows(picked, variant="b", query="final", region="rules")
    assert got["layer"].tolist() == [1, 4]
    np.testing.assert_allclose(got["delta"], diff[[1, 4]])
    for bad in ({"x": (4, 99)}, [7], {}, "thirds"):
        with pytest.raises(tw.TealeavesError, match="layer|phase"):
            tw.compare({"a": base, "b": terse}, layers=bad)


def test_lens_deltas_are_rank_and_probability_differences(pair):
    base, terse = pair
    table = tw.compare({"a": base, "b": terse}).lens_deltas
    for t, token in enumerate(TRACKED):
        got = rows(table, variant="b", query="last_token", token=token)
        q = base.query_index("last_token")
        np.testing.assert_array_equal(got["rank"], terse.lens.tracked_ranks[:, q, t])
        np.testing.assert_allclose(
            got["rank_delta"], terse.lens.tracked_ranks[:, q, t] - base.lens.tracked_ranks[:, q, t]
        )
        np.testing.assert_allclose(
            got["prob_delta"],
            terse.lens.tracked_probs[:, q, t].astype(float) - base.lens.tracked_probs[:, q, t],
            atol=1e-7,
        )


def test_lens_ranks_have_a_median_and_prob_significance_needs_min_effect():
    """Issue 11: the diff view showed mean ranks like 714.125 and marked
    prob_delta = -2.9e-11 as significant."""
    base, terse = runset(False, 5, 0), runset(True, 5, 100)
    cmp = tw.compare({"base": base, "terse": terse}, min_effect=0.05)
    table = cmp.lens_deltas
    q = base[0].query_index("final")
    for t, token in enumerate(TRACKED):
        got = rows(table, variant="terse", query="final", token=token)
        ranks = np.stack([run.lens.tracked_ranks[:, q, t] for run in terse])  # (case, layer)
        np.testing.assert_array_equal(got["rank_median"], np.median(ranks, axis=0))
        np.testing.assert_allclose(got["rank"], ranks.mean(axis=0))
        excludes = (got["prob_delta_low"] > 0) | (got["prob_delta_high"] < 0)
        big = got["prob_delta"].abs() >= 0.05
        assert got["significant"].astype(bool).tolist() == (excludes & big).tolist()
    loose = tw.compare({"base": base, "terse": terse}, min_effect=0.0).lens_deltas
    assert loose["significant"].sum() >= table["significant"].sum()


def test_curve_stats_and_their_deltas(pair):
    base, terse = pair
    table = tw.compare({"a": base, "b": terse}, threshold=0.05).curve_stats
    for run, variant in ((base, "a"), (terse, "b")):
        curve = run.curves(normalize="share")["facts"].to_numpy()
        got = rows(table, variant=variant, query="final", region="facts").set_index("stat")
        assert got.loc["peak_layer", "value"] == curve.argmax()
        assert got.loc["peak_mass", "value"] == pytest.approx(curve.max())
        assert got.loc["area", "value"] == pytest.approx(curve.sum())
        reached = np.flatnonzero(curve >= 0.05)
        expected = reached[0] if len(reached) else np.nan
        np.testing.assert_equal(got.loc["first_above", "value"], expected)
    b = rows(table, variant="b", query="final", region="facts").set_index("stat")
    a = rows(table, variant="a", query="final", region="facts").set_index("stat")
    np.testing.assert_allclose(
        b.loc["area", "delta"], b.loc["area", "value"] - a.loc["area", "value"]
    )


def test_ratios(pair):
    base, terse = pair
    cmp = tw.compare({"a": base, "b": terse})
    table = cmp.ratios("rules:facts", "persona:rules")
    got = rows(table, variant="b", query="final", ratio="rules:facts")
    expected = terse.curves(normalize="share")["rules"] / terse.curves(normalize="share")["facts"]
    np.testing.assert_allclose(got["value"], expected, atol=1e-12)
    base_ratio = base.curves(normalize="share")["rules"] / base.curves(normalize="share")["facts"]
    np.testing.assert_allclose(got["delta"], expected - base_ratio, atol=1e-12)
    with pytest.raises(tw.TealeavesError, match="'a:b'"):
        cmp.ratios("rules")
    with pytest.raises(tw.TealeavesError, match="'a:b'"):
        cmp.ratios("rules:nowhere")


def runset(terse: bool, n: int, seed0: int, labels=None) -> tw.RunSet:
    return tw.RunSet([run_of(terse, seed0 + i) for i in range(n)], labels or ())


def test_runsets_of_the_same_cases_are_paired():
    base, terse = runset(False, 6, 0), runset(True, 6, 100)
    deltas = tw.compare({"base": base, "terse": terse}).deltas
    got = rows(deltas, variant="terse", query="final", region="rules")
    per_case = np.stack(
        [
            t.curves(normalize="share")["rules"] - b.curves(normalize="share")["rules"]
            for b, t in zip(base, terse, strict=True)
        ]
    )
    half = stats.t_quantile(0.95, 5) * per_case.std(0, ddof=1) / np.sqrt(6)
    np.testing.assert_allclose(got["delta"], per_case.mean(0), atol=1e-12)
    np.testing.assert_allclose(got["delta_high"] - got["delta"], half, atol=1e-12)
    excludes = (got["delta_low"] > 0) | (got["delta_high"] < 0)
    large = got["delta"].abs() >= 0.01  # CompareOptions.min_effect
    assert got["significant"].tolist() == (excludes & large).tolist()
    assert (got["n"] == 6).all()


def test_unpaired_runsets_use_welch_and_a_single_run_counts_as_fixed():
    base = runset(False, 5, 0)
    other = runset(True, 4, 50, labels=("w", "x", "y", "z"))
    got = rows(
        tw.compare({"base": base, "terse": other}).deltas,
        variant="terse",
        region="rules",
        query="final",
    )
    a = np.stack([r.curves(normalize="share")["rules"] for r in other])
    b = np.stack([r.curves(normalize="share")["rules"] for r in base])
    welch = stats.difference_interval(a, b, paired=False)
    np.testing.assert_allclose(got["delta_low"], welch.low, atol=1e-12)
    single = run_of(False, 0)
    got = rows(
        tw.compare({"one": single, "many": other}).deltas,
        variant="many",
        region="rules",
        query="final",
    )
    estimate = stats.mean_interval(a - single.curves(normalize="share")["rules"].to_numpy())
    np.testing.assert_allclose(got["delta_low"], estimate.low, atol=1e-12)
    with pytest.raises(tw.TealeavesError, match="paired=True"):
        tw.compare({"base": base, "terse": other}, paired=True).deltas  # noqa: B018


@pytest.mark.parametrize("interval", stats.INTERVALS)
def test_identical_runsets_differ_by_exactly_zero(interval):
    same = runset(False, 4, 0)
    deltas = tw.compare({"a": same, "b": same}, interval=interval).deltas
    b = deltas[deltas["variant"] == "b"]
    np.testing.assert_allclose(b[["delta", "delta_low", "delta_high"]], 0, atol=1e-12)
    np.testing.assert_allclose(b["mass_high"] - b["mass_low"], b["mass_high"] - b["mass_low"])
    assert not b["significant"].any()


def test_seed_noise_marks_deltas_within_noise():
    runs = [run_of(False, s) for s in range(3)] + [run_of(True, 10 + s) for s in range(3)]
    base = tw.RunSet(runs[:3], ("q",) * 3, (0, 1, 2))
    terse = tw.RunSet(runs[3:], ("q",) * 3, (0, 1, 2))
    deltas = tw.compare({"base": base, "terse": terse}).deltas
    got = rows(deltas, variant="terse", query="final")
    base_values, names = base.masses(normalize="share")
    terse_values, _ = terse.masses(normalize="share")
    pooled = np.sqrt((base.seed_sd(base_values) ** 2 + terse.seed_sd(terse_values) ** 2) / 2)
    rules = got[got["region"] == "rules"]
    np.testing.assert_allclose(rules["seed_sd"], pooled[:, names.index("rules")], atol=1e-12)
    assert rules["above_noise"].tolist() == (rules["delta"].abs() > 2 * rules["seed_sd"]).tolist()


def test_token_alignment_marks_inserted_and_deleted_text(pair):
    base, terse = pair
    cmp = tw.compare({"baseline": base, "terse": terse})
    align = cmp.alignment("terse")
    assert (align.n_shared, align.n_deleted, align.n_inserted) == (len(base.tokens) - 3, 3, 2)
    table = align.table()
    deleted = table[table["op"] == "delete"]["token"].str.strip().tolist()
    inserted = table[table["op"] == "insert"]["token"].str.strip().tolist()
    assert deleted == [".", "Never", "lie"] and inserted == ["Short", "!"]
    equal = table[table["op"] == "equal"]
    assert (equal["token"].to_numpy() == np.array(terse.tokens)[equal["variant_pos"]]).all()
    tokens = cmp.token_deltas("terse", query="final", layer=2)
    q = base.query_index("final")
    shared = tokens[tokens["op"] == "equal"]
    np.testing.assert_allclose(
        shared["delta"],
        terse.attention[2, q, shared["variant_pos"]] - base.attention[2, q, shared["baseline_pos"]],
    )
    assert tokens[tokens["op"] != "equal"]["delta"].isna().all()
    mean = cmp.token_deltas("terse")
    np.testing.assert_allclose(
        mean["baseline_attention"].dropna(), base.attention[:, q].mean(0), rtol=1e-6
    )


def test_report_for_single_runs(pair, tmp_path):
    base, terse = pair
    cmp = tw.compare({"baseline": base, "terse": terse})
    report = cmp.report(top=3)
    for heading in (
        "# Prompt comparison",
        "## Summary",
        "## Largest changes",
        "## Cooking curves",
        "## Tracked tokens",
        "## Stability",
    ):
        assert heading in report
    assert "| `rules` | early |" in report
    assert "**Verdict:** unknown" in report
    biggest = rows(cmp.deltas, variant="terse").assign(size=lambda t: t["delta"].abs())
    top = biggest.sort_values("size").iloc[-1]
    assert f"region `{top['region']}`, query `{top['query']}`" in report.split("## Largest")[1]
    assert f"at layer {top['layer']}" in report
    path = cmp.save_report(tmp_path / "report.md")
    assert path.read_text() == cmp.report()


def test_report_with_intervals_and_seeds():
    base, terse = runset(False, 4, 0), runset(True, 4, 100)
    report = tw.compare({"a": base, "b": terse}).report()
    assert "**Verdict (cases):**" in report and "interval that excludes 0" in report
    seeded = [
        tw.RunSet([run_of(t, 10 * t + s) for s in range(3)], ("q",) * 3, (0, 1, 2))
        for t in (False, True)
    ]
    report = tw.compare({"a": seeded[0], "b": seeded[1]}).report()
    assert "Seed noise" in report and "**Verdict (seeds):**" in report
    same = tw.compare({"a": seeded[0], "b": seeded[0]}).report()
    assert "nothing to judge" in same


def test_compare_errors(pair):
    base, terse = pair
    with pytest.raises(tw.TealeavesError, match="at least two"):
        tw.compare({"only": base})
    with pytest.raises(tw.TealeavesError, match="baseline='nope'"):
        tw.compare({"a": base, "b": terse}, baseline="nope")
    with pytest.raises(tw.TealeavesError, match="Unknown option"):
        tw.compare({"a": base, "b": terse}, layer="bands")
    with pytest.raises(tw.TealeavesError, match="tw.Run or tw.RunSet"):
        tw.compare({"a": base, "b": "text"})
    with pytest.raises(tw.TealeavesError, match="different numbers of layers"):
        tw.compare({"a": base, "b": run_of(True, n_layers=4)})
    with pytest.raises(tw.TealeavesError, match="share no query"):
        tw.compare({"a": base, "b": run_of(True, queries=("other",))})
    cmp = tw.compare({"a": base, "b": terse}, baseline="b")
    assert cmp.names == ["b", "a"] and "[baseline]" in repr(cmp)
    assert cmp.with_options(layers="bands").deltas["layer"].iloc[0] == "early"
    with pytest.raises(tw.TealeavesError, match="Unknown option"):
        cmp.with_options(bands=True)
