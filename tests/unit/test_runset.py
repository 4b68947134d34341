"""RunSet aggregates, the statistics behind them, and batched capture_many."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core import stats
from tealeaves_widgets.models.batching import plan_batches
from tests.helpers.fake_runs import fake_run, regions_of, variant_words

# ---------------------------------------------------------------- statistics

# Two-sided 95% / 99% critical values of Student's t, from printed tables.
T_TABLE = {
    (0.95, 1): 12.7062047,
    (0.95, 2): 4.3026527,
    (0.95, 10): 2.2281389,
    (0.95, 30): 2.0422725,
    (0.99, 5): 4.0321430,
    (0.90, 3): 2.3533634,
}


@pytest.mark.parametrize(("level", "df"), sorted(T_TABLE))
def test_t_quantile_matches_tables(level, df):
    assert stats.t_quantile(level, df) == pytest.approx(T_TABLE[(level, df)], abs=1e-6)


def test_t_quantile_fractional_df_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1.3, 2.5, 7.77, 45.2, 900.0):
        expected = scipy_stats.t.ppf(0.975, df)
        assert stats.t_quantile(0.95, df) == pytest.approx(expected, rel=1e-8)


def test_t_interval_by_hand():
    values = np.array([[1.0, 2.0], [2.0, 2.0], [4.0, 2.0], [5.0, 2.0]])
    estimate = stats.mean_interval(values)
    half = stats.t_quantile(0.95, 3) * values[:, 0].std(ddof=1) / 2
    np.testing.assert_allclose(estimate.mean, [3.0, 2.0])
    np.testing.assert_allclose(estimate.low, [3.0 - half, 2.0])
    np.testing.assert_allclose(estimate.high, [3.0 + half, 2.0])
    np.testing.assert_array_equal(estimate.n, [4, 4])


def test_welch_and_paired_intervals_match_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 3)), rng.normal(size=(9, 3)) * 2 + 0.5
    welch = stats.difference_interval(a, b, paired=False)
    expected = scipy_stats.ttest_ind(a, b, axis=0, equal_var=False).confidence_interval(0.95)
    np.testing.assert_allclose(welch.mean, a.mean(0) - b.mean(0), atol=1e-12)
    # Welch's df are rounded to 0.01 for caching: the width is off by less than 1e-4.
    width = expected.high - expected.low
    np.testing.assert_allclose(welch.high - welch.low, width, rtol=1e-4)
    c = a + rng.normal(size=a.shape) * 0.1 + 0.2
    paired = stats.difference_interval(c, a, paired=True)
    expected = scipy_stats.ttest_rel(c, a, axis=0).confidence_interval(0.95)
    np.testing.assert_allclose(paired.low, expected.low, atol=1e-9)
    assert paired.excludes_zero.all()


@pytest.mark.parametrize("method", stats.INTERVALS)
def test_identical_units_give_zero_width_and_one_unit_none(method):
    options = stats.IntervalOptions(method=method)
    same = np.tile(np.array([[0.2, 0.5]]), (5, 1))
    estimate = stats.mean_interval(same, options)
    np.testing.assert_allclose(estimate.low, estimate.high)
    np.testing.assert_allclose(estimate.low, [0.2, 0.5])
    one = stats.mean_interval(same[:1], options)
    assert np.isnan(one.low).all() and np.isnan(one.high).all()


def test_bootstrap_is_reproducible_and_near_t():
    values = np.random.default_rng(1).normal(size=(40, 2))
    options = stats.IntervalOptions(method="bootstrap", n_boot=4000)
    first, again = stats.mean_interval(values, options), stats.mean_interval(values, options)
    np.testing.assert_array_equal(first.low, again.low)
    t = stats.mean_interval(values)
    np.testing.assert_allclose(first.high - first.low, t.high - t.low, rtol=0.15)


def test_nan_is_missing_not_zero():
    values = np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan]])
    estimate = stats.mean_interval(values)
    assert estimate.mean[0] == 2.0 and estimate.n.tolist() == [2, 0]
    assert np.isnan(estimate.mean[1])


def test_curve_stats():
    curves = np.array([[0.0, 0.1, 0.4, 0.3, 0.2], [0.0, 0.0, 0.0, 0.0, 0.0]])
    got = stats.curve_stats(curves)
    np.testing.assert_allclose(got[0], [2, 0.4, 1.0, 2])  # first layer >= 0.2 is layer 2
    np.testing.assert_allclose(stats.curve_stats(curves, threshold=0.25)[0, 3], 2)
    assert np.isnan(stats.curve_stats(curves, threshold=0.9)[0, 3])
    np.testing.assert_allclose(got[1, :3], [0, 0, 0])


def test_pooled_sd_by_hand():
    values = np.array([1.0, 3.0, 10.0, 14.0, 7.0])  # cases a, a, b, b, c
    sd, replicated = stats.pooled_sd(values[:, None], np.array([0, 0, 1, 1, 2]))
    assert replicated == 4
    np.testing.assert_allclose(sd, [np.sqrt((2 + 8) / 2)])


def test_plan_batches_respects_budget_and_sorts():
    lengths = [30, 300, 290, 10, 310, 5000]
    batches = plan_batches(lengths, 1000)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert batches[0] == [5] and batches[1] == [4, 1, 2]  # too long alone; 3 x 310 <= 1000
    for batch in batches[1:]:
        assert len(batch) * max(lengths[i] for i in batch) <= 1000
        assert [lengths[i] for i in batch] == sorted((lengths[i] for i in batch), reverse=True)
    with pytest.raises(tw.TealeavesError, match="positive int"):
        plan_batches(lengths, 0)


def test_load_cases_accepts_lists_objects_and_messages(tmp_path):
    path = tmp_path / "conversations.json"
    entries = [
        {"system": "S", "user": "U1", "id": 7},
        {"user": "U2", "response": "R"},
        [{"role": "user", "content": "U3"}],
    ]
    path.write_text(json.dumps({"conversations": entries}))
    cases = tw.load_cases(path)
    assert [c.name for c in cases] == ["7", None, None]
    assert cases[1].response == "R" and cases[2].messages[0]["content"] == "U3"
    path.write_text(json.dumps([{"user": "x", "colour": "red"}]))
    with pytest.raises(tw.ChatTemplateError, match=r"\[0\].*colour"):
        tw.load_cases(path)
    path.write_text("{")
    with pytest.raises(tw.TealeavesError, match="not valid JSON"):
        tw.load_cases(path)


def _runs(n: int, terse: bool = False, seed0: int = 0) -> list[tw.Run]:
    words = variant_words(terse)
    return [fake_run(words, regions_of(words), seed=seed0 + i) for i in range(n)]


def test_runset_mean_matches_a_mean_by_hand():
    runs = _runs(5)
    runset = tw.RunSet(runs)
    by_hand = sum(run.curves(query="final") for run in runs) / len(runs)
    np.testing.assert_allclose(runset.curves(), by_hand.to_numpy(), atol=1e-12)
    table = runset.aggregate(query="last_token", normalize="share")
    stacked = np.stack([r.curves("last_token", "share").to_numpy() for r in runs])
    rules = table[table["region"] == "rules"].set_index("layer")
    column = list(runs[0].regions).index("rules")
    np.testing.assert_allclose(rules["mean"], stacked[:, :, column].mean(0), atol=1e-12)
    half = stats.t_quantile(0.95, 4) * stacked[:, :, column].std(0, ddof=1) / np.sqrt(5)
    np.testing.assert_allclose(rules["high"] - rules["mean"], half, atol=1e-12)
    np.testing.assert_allclose(rules["max"], stacked[:, :, column].max(0))
    assert (rules["n"] == 5).all()


@pytest.mark.parametrize("interval", stats.INTERVALS)
def test_identical_runs_have_zero_width_bands(interval):
    run = _runs(1)[0]
    table = tw.RunSet([run] * 4).aggregate(interval=interval)
    np.testing.assert_allclose(table["low"], table["mean"], atol=1e-12)
    np.testing.assert_allclose(table["high"], table["mean"], atol=1e-12)
    np.testing.assert_allclose(table["sd"], 0, atol=1e-12)


def test_seeds_are_averaged_within_a_case_and_measure_noise():
    runs = _runs(6)
    labels = ("a", "a", "a", "b", "b", "b")
    runset = tw.RunSet(runs, labels, (0, 1, 2, 0, 1, 2))
    assert runset.has_seeds and runset.units == ("a", "b")
    values, names = runset.masses()
    per_case = np.stack([values[:3].mean(0), values[3:].mean(0)])
    np.testing.assert_allclose(runset.curves().to_numpy(), per_case.mean(0), atol=1e-12)
    table = runset.stability()
    rules = table[table["region"] == "rules"]["seed_sd"].to_numpy()
    column = names.index("rules")
    squares = sum(((values[s] - values[s].mean(0)) ** 2).sum(0) for s in (slice(0, 3), slice(3, 6)))
    np.testing.assert_allclose(rules, np.sqrt(squares / 4)[:, column], atol=1e-12)
    one_case = tw.RunSet(runs[:3], ("a",) * 3, (0, 1, 2))
    assert one_case.units == ("seed0", "seed1", "seed2")
    with pytest.raises(tw.TealeavesError, match="generate=tw.Generate"):
        tw.RunSet(runs).stability()


def test_runset_curve_stats_and_errors():
    runs = _runs(3)
    table = tw.RunSet(runs).curve_stats(regions=["rules"])
    peaks = [run.curves()["rules"].max() for run in runs]
    row = table[table["stat"] == "peak_mass"].iloc[0]
    assert row["mean"] == pytest.approx(np.mean(peaks))
    with pytest.raises(tw.TealeavesError, match="missing from some runs"):
        tw.RunSet([*runs, fake_run(variant_words(False), {"other": (0, 2)})]).curves(
            regions=["rules"]
        )
    with pytest.raises(tw.TealeavesError, match="non-empty list"):
        tw.RunSet([])
    with pytest.raises(tw.TealeavesError, match="different numbers of layers"):
        words = variant_words(False)
        tw.RunSet([runs[0], fake_run(words, regions_of(words), n_layers=3)])
    assert "3 runs of 3 cases" in repr(tw.RunSet(runs))
    assert tw.RunSet(runs).curves(query=1).equals(tw.RunSet(runs).curves("last_token"))
    with pytest.raises(tw.TealeavesError, match=r"Query index 2 is out of range for 2 queries"):
        tw.RunSet(runs).curves(query=2)


BATCH_REGIONS = {
    "system_prompt": {"regions": [{"name": "rules", "start_marker": "## Rules"}]},
    "query_positions": ["final", "last_token", {"after_text": "## Rules"}],
    "tracked_tokens": [" the", " Yes"],
}
