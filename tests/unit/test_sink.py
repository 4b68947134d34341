"""Sink-aware masses (issue 11): what `exclude` removes and how much it held,
"share" over a partition of the region tree, `min_effect`, and the flag on
deltas that are mostly attention moved between the sink and one token.

Every number is checked against a computation written here token by token,
with no use of `core.masses`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core import stats
from tealeaves_widgets.core.masses import NORMALIZATIONS
from tests.helpers.golden import BASE_TOKENS, NESTED_REGIONS, golden_run, nested_run
from tests.helpers.synthetic import synthetic_run

EXCLUSIONS = {
    None: set(),
    "first": {0},
    "template": set(NESTED_REGIONS["template"][2]),
    ("first", "rules"): {0, *NESTED_REGIONS["rules"][2]},
    "rule": set(NESTED_REGIONS["rule"][2]),
}
"""exclude= -> the token positions it removes from the nested run."""


@pytest.fixture(scope="module")
def nested() -> tw.Run:
    return nested_run()


def token_row(run: tw.Run, layer: int, query: str, head: int | None = None) -> list[float]:
    """The attention row as Python floats, as `Run.curves` reads it."""
    q = list(run.queries).index(query)
    source = run.attention[layer, q] if head is None else run.attention_heads[layer, head, q]
    return [float(v) for v in source]


def tokens_of(run: tw.Run) -> dict[str, set[int]]:
    return {name: set(info.token_indices.tolist()) for name, info in run.regions.items()}


def depth_by_containment(run: tw.Run) -> dict[str, int]:
    """A region's depth as the number of regions whose tokens strictly contain
    its own (no use of the parent fields)."""
    sets = tokens_of(run)
    return {r: sum(sets[r] < other for other in sets.values()) for r in sets}


def partition_cells(run: tw.Run, level: float) -> dict[int, str]:
    """Token -> the deepest region at depth <= level that holds it."""
    sets, depth = tokens_of(run), depth_by_containment(run)
    cells = {}
    for t in range(run.n_tokens):
        holders = [r for r in sets if t in sets[r] and depth[r] <= level]
        cells[t] = max(holders, key=lambda r: depth[r])
    return cells


# ---------------------------------------------------------------- excluded mass


@pytest.mark.parametrize("exclude", list(EXCLUSIONS))
@pytest.mark.parametrize("head", [None, 1])
def test_excluded_mass_is_the_attention_on_the_excluded_tokens(nested, exclude, head):
    for query in nested.queries:
        got = nested.excluded_mass(query, exclude=exclude, head=head)
        assert got.index.name == "layer" and len(got) == nested.n_layers
        for layer in range(nested.n_layers):
            row = token_row(nested, layer, query, head)
            expected = sum(row[t] for t in EXCLUSIONS[exclude])
            assert got[layer] == pytest.approx(expected, abs=1e-15)
    names = {None: "nothing", "first": "first token", ("first", "rules"): "first token and rules"}
    assert got.name == names.get(exclude, exclude)


def test_excluded_mass_of_run_sets_and_comparisons_is_the_mean_over_cases():
    runs = [golden_run(BASE_TOKENS, shift, f"c{shift}") for shift in (0.0, 1.5, 3.0)]
    runset = tw.RunSet(tuple(runs))
    table = runset.excluded_mass("final", exclude="template")
    per_case = np.array(
        [
            [sum(token_row(r, layer, "final")[t] for t in r.regions["template"].token_indices)
             for layer in range(r.n_layers)]
            for r in runs
        ]
    )  # fmt: skip
    np.testing.assert_allclose(table["mean"], per_case.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["max"], per_case.max(axis=0), rtol=1e-12)
    assert list(table["layer"]) == list(range(runs[0].n_layers)) and (table["n"] == 3).all()
    cmp = tw.compare({"a": runset, "b": runset})
    first = cmp.excluded_mass
    assert set(first["excluded"]) == {"first token"}  # "share" excludes the first token
    a = first[(first["variant"] == "a") & (first["query"] == "final")]
    per_case_first = np.array(
        [[token_row(r, layer, "final")[0] for layer in range(3)] for r in runs]
    )
    np.testing.assert_allclose(a["mass"], per_case_first.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(first.loc[first["variant"] == "b", "delta"], 0.0, atol=1e-15)


# ---------------------------------------------------------------- rows sum to 1


@pytest.mark.parametrize("exclude", list(EXCLUSIONS))
@pytest.mark.parametrize("level", ["leaves", 0, 1, 2, 3])
def test_share_sums_to_one_over_the_partition_after_exclusion(nested, exclude, level):
    frame = nested.curves("final", "share", exclude=exclude, share_level=level)
    np.testing.assert_allclose(frame.sum(axis=1), 1.0, rtol=1e-12)
    assert frame.attrs["exclude"] == nested.excluded_mass(exclude=exclude).name


@pytest.mark.parametrize("exclude", [e for e in EXCLUSIONS if e is not None])
def test_raw_masses_are_fractions_of_the_rest_and_with_the_excluded_mass_make_the_row(
    nested, exclude
):
    sections = ["system", "user", "template"]  # the built-in regions partition the prompt
    for query in nested.queries:
        frame = nested.curves(query, "raw", exclude=exclude)
        excluded = nested.excluded_mass(query, exclude=exclude)
        plain = nested.curves(query, "raw", exclude=None)
        for layer in range(nested.n_layers):
            row = token_row(nested, layer, query)
            total, gone = sum(row), sum(row[t] for t in EXCLUSIONS[exclude])
            kept = total - gone
            present = [s for s in sections if s in frame.columns]  # "template" may be all gone
            # renormalised: the kept parts sum to 1; times the kept total, plus the
            # excluded mass, they make the row's total again
            assert frame.loc[layer, present].sum() == pytest.approx(1.0, rel=1e-12)
            back = frame.loc[layer, present].sum() * kept + excluded[layer]
            assert back == pytest.approx(total, rel=1e-12)
            assert plain.loc[layer, sections].sum() == pytest.approx(total, rel=1e-12)
            for region, members in tokens_of(nested).items():
                if region not in frame.columns:
                    assert members <= EXCLUSIONS[exclude]  # dropped only when all excluded
                    continue
                expected = sum(row[t] for t in members - EXCLUSIONS[exclude]) / kept
                assert frame.loc[layer, region] == pytest.approx(expected, rel=1e-12, abs=1e-15)


# ---------------------------------------------------------------- share over a partition


@pytest.mark.parametrize("exclude", list(EXCLUSIONS))
@pytest.mark.parametrize("level", ["leaves", 0, 1, 2, 3])
@pytest.mark.parametrize("head", [None, 0])
def test_share_counts_each_token_once_in_its_cell_of_a_three_deep_tree(
    nested, exclude, level, head
):
    depth = depth_by_containment(nested)
    assert max(depth.values()) == 3  # system > rules > rule > clause
    cells = partition_cells(nested, np.inf if level == "leaves" else level)
    frame = nested.curves("answer", "share", head=head, exclude=exclude, share_level=level)
    gone = EXCLUSIONS[exclude]
    for label in frame.columns:
        name = label.removesuffix(" (own)")
        has_children = any(cells[t] != name for t in tokens_of(nested)[name])
        assert label.endswith(" (own)") == has_children, label
    # a column for each region at depth <= level that keeps a token (a parent
    # whose children cover it has a column of zeros: its own tokens get nothing)
    shown = {label.removesuffix(" (own)") for label in frame.columns}
    limit = np.inf if level == "leaves" else level
    assert shown == {
        r for r, members in tokens_of(nested).items() if depth[r] <= limit and members - gone
    }
    for layer in range(nested.n_layers):
        row = token_row(nested, layer, "answer", head)
        kept = sum(row[t] for t in cells if t not in gone)
        for label in frame.columns:
            name = label.removesuffix(" (own)")
            expected = sum(row[t] for t, cell in cells.items() if cell == name and t not in gone)
            assert frame.loc[layer, label] == pytest.approx(expected / kept, rel=1e-12, abs=1e-15)


def test_share_defaults_to_the_leaves_without_the_first_token(nested):
    pd.testing.assert_frame_equal(
        nested.curves(normalize="share"),
        nested.curves(normalize="share", exclude="first", share_level="leaves"),
    )
    frame = nested.curves(normalize="share")
    assert list(frame.columns) == [
        "system (own)", "user (own)", "template", "persona", "rules (own)", "rule (own)",
        "clause", "question",
    ]  # fmt: skip
    assert frame.attrs == {"normalize": "share", "exclude": "first token", "share_level": "leaves"}
    # the other normalisations keep the plain mass by default
    for normalize in ("raw", "per-region", "density"):
        assert nested.curves(normalize=normalize).attrs["exclude"] == "nothing"


def test_runset_curves_and_aggregates_honour_exclude_and_the_partition(nested):
    # a second run whose layers come in reverse order
    shifted = dataclasses.replace(nested, attention=nested.attention[::-1].copy())
    runset = tw.RunSet((nested, shifted))
    frame = runset.curves("final", "share", share_level=1)
    expected = (
        nested.curves("final", "share", share_level=1)
        + shifted.curves("final", "share", share_level=1)
    ) / 2
    pd.testing.assert_frame_equal(frame, expected, rtol=1e-12, check_exact=False)
    assert list(frame.columns) == [
        "system (own)",
        "user (own)",
        "template",
        "persona",
        "rules",
        "question",
    ]
    table = runset.aggregate("final", "raw", exclude="template")
    assert "template" not in set(table["region"])
    rules = table[table["region"] == "rules"]["mean"].to_numpy()
    per_run = [r.curves("final", "raw", exclude="template")["rules"] for r in (nested, shifted)]
    np.testing.assert_allclose(rules, np.mean(per_run, axis=0), rtol=1e-12)


def test_bad_exclusions_and_levels_are_refused_with_the_fix(nested):
    with pytest.raises(tw.SelectionError, match=r"exclude names region\(s\) \['nowhere'\]"):
        nested.curves(exclude="nowhere")
    with pytest.raises(tw.ArgumentTypeError, match=r'exclude=\("first", "rules"\)'):
        nested.curves(exclude=3)  # type: ignore[arg-type]
    with pytest.raises(tw.ArgumentError, match="twice"):
        nested.curves(exclude=("first", "first"))
    with pytest.raises(tw.ArgumentError, match='share_level must be "leaves"'):
        nested.curves(normalize="share", share_level=-1)
    with pytest.raises(tw.ArgumentError, match="no share at share_level=1"):
        nested.curves(normalize="share", share_level=1, regions=["rule"])
    with pytest.raises(tw.ArgumentError, match="every token they hold is excluded"):
        nested.curves(regions=["rule", "rules"], exclude="rules")
    with pytest.raises(tw.SelectionError, match="variant 'b' lacks"):
        tw.compare({"a": nested, "b": golden_run(BASE_TOKENS)}, exclude=("first", "rules"))
    with pytest.raises(tw.ArgumentError, match="min_effect must be a number >= 0"):
        tw.compare({"a": nested, "b": nested}, min_effect=-0.1)


def test_every_normalization_accepts_every_exclusion(nested):
    for normalize in NORMALIZATIONS:
        for exclude in EXCLUSIONS:
            frame = nested.curves(normalize=normalize, exclude=exclude)
            assert frame.shape[0] == nested.n_layers and frame.attrs["normalize"] == normalize


# ---------------------------------------------------------------- min_effect


def hand_run(rows: np.ndarray, regions: dict[str, list[int]], name: str) -> tw.Run:
    """A run over len(rows[-1]) one-letter tokens with the given (layer, pos)
    attention rows at one query "final" (the last token), one head; region ->
    tokens, all top-level user regions in the "user" section, which holds every
    token but the first; the first token is the template."""
    rows = np.asarray(rows, dtype=np.float32)
    n_layers, n = rows.shape
    words = [f"w{i} " for i in range(n)]
    ends = np.cumsum([len(w) for w in words])
    offsets = np.stack([ends - [len(w) for w in words], ends], axis=1).astype(np.int64)
    infos = {
        "user": tw.RegionInfo(
            "user", "user", (int(ends[0]), int(ends[-1])), np.arange(1, n), None, True
        ),
        "template": tw.RegionInfo(
            "template", "template", (0, int(ends[-1])), np.array([0]), None, True
        ),
    }
    for region, members in regions.items():
        idx = np.asarray(members, dtype=np.int64)
        infos[region] = tw.RegionInfo(
            region, "user", (int(offsets[idx[0], 0]), int(ends[idx[-1]])), idx
        )
    per_query = (n_layers, 1)
    lens = tw.Lens(
        top_ids=np.zeros((*per_query, 1), dtype=np.int64),
        top_probs=np.ones((*per_query, 1), dtype=np.float32),
        entropy=np.zeros(per_query, dtype=np.float32),
        kl_to_final=np.zeros(per_query, dtype=np.float32),
        tracked_ids=np.zeros(0, dtype=np.int64),
        tracked_tokens=(),
        tracked_ranks=np.zeros((*per_query, 0), dtype=np.int64),
        tracked_probs=np.zeros((*per_query, 0), dtype=np.float32),
        vocab={0: "w0"},
    )
    return tw.Run(
        text="".join(words),
        tokens=tuple(words),
        token_ids=np.arange(n, dtype=np.int64),
        offsets=offsets,
        regions=infos,
        queries={"final": n - 1},
        attention=rows[:, None, :],
        attention_heads=rows[:, None, None, :],
        lens=lens,
        model_info={"model_id": "hand", "n_layers": n_layers},
        case={"name": name},
    )


def spread(sink: float, weights: list[float]) -> list[float]:
    """A row: `sink` on the first token, the rest in proportion to `weights`."""
    w = np.asarray(weights, dtype=np.float64)
    return [sink, *((1 - sink) * w / w.sum())]


def test_significant_needs_an_interval_without_zero_and_min_effect():
    """Eight cases; region "a" grows by a small, steady amount (0.005 of the
    share, its interval far from 0) and region "b" by a large one: only "b" is
    significant at the default min_effect of 0.01; with min_effect=0 both are."""
    regions = {"a": [1, 2], "b": [3, 4], "c": [5, 6, 7]}
    base, variant = [], []
    for i in range(8):
        # "a" gains (2.3 + j) / (7.9 + 2j) - 2/7 = ~0.0054 of the share, "b" ~0.08
        jitter = 0.002 * i
        base.append(hand_run([spread(0.5, [1, 1, 1, 1, 1, 1, 1])], regions, f"q{i}"))
        a, b = 1.3 + jitter, 1.6 + jitter
        variant.append(hand_run([spread(0.5, [a, 1, b, 1, 1, 1, 1])], regions, f"q{i}"))
    cmp = tw.compare({"base": tw.RunSet(tuple(base)), "var": tw.RunSet(tuple(variant))})
    deltas = cmp.deltas.set_index(["variant", "region"]).loc["var"]
    for region, members in regions.items():
        # independent: the paired t-interval of the per-case share differences
        diffs = []
        for b_run, v_run in zip(base, variant, strict=True):
            b_row, v_row = token_row(b_run, 0, "final"), token_row(v_run, 0, "final")
            share = [sum(r[t] for t in members) / sum(r[1:]) for r in (b_row, v_row)]
            diffs.append(share[1] - share[0])
        mean, sd = np.mean(diffs), np.std(diffs, ddof=1)
        half = stats.t_quantile(0.95, 7) * sd / np.sqrt(8)
        row = deltas.loc[region]
        assert row["delta"] == pytest.approx(mean, abs=1e-12)
        assert row["delta_low"] == pytest.approx(mean - half, abs=1e-12)
        excludes_zero = mean - half > 0 or mean + half < 0
        assert bool(row["significant"]) == (excludes_zero and abs(mean) >= 0.01)
    assert deltas.loc["a", "delta_low"] > 0 and abs(deltas.loc["a", "delta"]) < 0.01
    assert not deltas.loc["a", "significant"] and deltas.loc["b", "significant"]
    loose = cmp.with_options(min_effect=0).deltas.set_index(["variant", "region"]).loc["var"]
    assert loose.loc["a", "significant"] and loose.loc["b", "significant"]
    report = cmp.report()
    assert "significant: its interval excludes 0 and \\|Δ\\| ≥ `0.01` (min\\_effect)" in report


# ---------------------------------------------------------------- sink reassignment


def flagged_by_hand(b_row, v_row, members, kept_total) -> bool:
    """The `sink_reassigned` rule of `Comparison.deltas`, from two attention rows."""
    shift = v_row[0] - b_row[0]
    gain = sum(v_row[t] - b_row[t] for t in members)
    tops = (max(b_row[t] for t in members), max(v_row[t] for t in members))
    top = tops[1] - tops[0]
    one_token = top * gain > 0 and abs(top) >= abs(gain) / 2
    took_its_mass = gain * shift < 0 and abs(shift) >= abs(gain) / 2
    high, sink = (tops[1], v_row[0]) if top > 0 else (tops[0], b_row[0])
    is_a_sink = high >= max(sink, 0.3)
    kb, kv = kept_total(b_row), kept_total(v_row)
    delta = sum(v_row[t] for t in members) / kv - sum(b_row[t] for t in members) / kb
    own = gain * (1 / kb + 1 / kv) / 2
    pooled = abs(delta) > 1e-12 and own * delta < delta * delta / 2
    return (one_token and (took_its_mass or is_a_sink)) or pooled


def test_a_token_that_becomes_a_second_sink_is_flagged():
    """Baseline: the first token takes 0.6 of the attention at layers 0-1 and
    0.02 at layer 2, the rest is spread evenly. Variant, layer 0: the first
    token keeps 0.15; one token of "persona" takes 0.25 of what it gave up (a
    second parking spot after a rewording: flagged); the four tokens of
    "rules" get 0.12 each (read more: its share rises, not flagged); "facts"
    keeps about its attention, so its share falls only because the attention
    left to share grew with what the sink gave up (flagged). Layer 1 does not
    change. Layer 2, where the first token is idle: one "persona" token draws
    0.35 (a sink of its own: flagged), one "facts" token 0.25 (not a sink)."""
    regions = {"persona": [1, 2, 3], "rules": [4, 5, 6, 7], "facts": [8, 9]}
    uniform = spread(0.6, [1.0] * 9)  # 0.4 / 9 = 0.0444 on each other token
    idle = spread(0.02, [1.0] * 9)
    second_sink = [0.15, 0.02, 0.25, 0.02, 0.12, 0.12, 0.12, 0.12, 0.04, 0.04]
    rest = (1 - 0.02 - 0.35 - 0.25) / 7
    own_sink = [0.02, rest, 0.35, rest, rest, rest, rest, rest, rest, 0.25]
    assert sum(second_sink) == pytest.approx(1.0) and sum(own_sink) == pytest.approx(1.0)
    base = hand_run([uniform, uniform, idle], regions, "q")
    variant = hand_run([second_sink, uniform, own_sink], regions, "q")
    cmp = tw.compare({"base": base, "var": variant})
    deltas = cmp.deltas.set_index(["variant", "region", "layer"]).loc["var"]
    for layer in range(3):
        b_row, v_row = token_row(base, layer, "final"), token_row(variant, layer, "final")
        shift = v_row[0] - b_row[0]
        kept = (sum(b_row[1:]), sum(v_row[1:]))
        for region, members in regions.items():
            row = deltas.loc[(region, layer)]
            assert row["excluded"] == "first token"
            assert row["sink_shift"] == pytest.approx(shift, abs=1e-12)
            # the share (first token excluded), token by token
            shares = [
                sum(r[t] for t in members) / k for r, k in zip((b_row, v_row), kept, strict=True)
            ]
            assert row["delta"] == pytest.approx(shares[1] - shares[0], abs=1e-12)
            gain = sum(v_row[t] - b_row[t] for t in members)
            top = max(v_row[t] for t in members) - max(b_row[t] for t in members)
            assert row["row_delta"] == pytest.approx(gain, abs=1e-12)
            assert row["token_delta"] == pytest.approx(top, abs=1e-12)
            expected = flagged_by_hand(b_row, v_row, members, lambda r: sum(r[1:]))
            assert bool(row["sink_reassigned"]) == expected, (region, layer)
    assert deltas.loc[("persona", 0), "sink_shift"] == pytest.approx(-0.45, abs=1e-6)
    assert deltas.loc[("persona", 0), "sink_reassigned"]  # one token took the sink's place
    assert deltas.loc[("facts", 0), "sink_reassigned"]  # diluted by the larger pool
    assert deltas.loc[("rules", 0), "delta"] > 0.1  # read more, spread over its tokens
    assert not deltas.loc[("rules", 0), "sink_reassigned"]
    assert not deltas.loc[("persona", 1), "sink_reassigned"]  # nothing moved
    assert deltas.loc[("persona", 2), "sink_reassigned"]  # draws 0.35: a sink of its own
    assert deltas.loc[("facts", 2), "delta"] > 0.05  # one token at 0.25: not a sink
    assert not deltas.loc[("facts", 2), "sink_reassigned"]
    # the baseline has no delta to judge, and with nothing excluded there is no sink
    assert cmp.deltas.loc[cmp.deltas["variant"] == "base", "sink_reassigned"].isna().all()
    plain = cmp.with_options(normalize="raw").deltas
    assert plain["sink_shift"].isna().all() and plain["sink_reassigned"].isna().all()
    assert set(plain["excluded"]) == {"nothing"}
    # the report lists "rules", sets the other two aside, says why, and names the token
    report = cmp.report()
    changes = report.split("## Largest changes")[1].split("## Cooking")[0]
    marker = "**Set aside, mostly sink reassignment** (`sink_reassigned`"
    listed, set_aside = changes.split(marker)
    assert "region `rules`" in listed and "region `persona`" not in listed
    assert "region `persona`" in set_aside and "region `facts`" in set_aside
    persona = next(item for item in set_aside.split("\n- ") if "region `persona`" in item)
    assert "sink at layer 2; there its attention changed by +0.1319, its most-attended " in persona
    assert "token's by +0.2411, the first token's by +0" in persona
    assert "most of it on one token, `'w2 '` (0.35 of the attention in var)" in persona
    assert "region `facts`, query `final`: -0.1281 (-57.6%) sink at layer 0" in set_aside


def test_a_synthetic_run_reports_its_sink_in_the_header():
    a = tw.RunSet(tuple(synthetic_run(64, 6, 2, 2, seed=s) for s in range(3)))
    b = tw.RunSet(tuple(synthetic_run(66, 6, 2, 2, seed=10 + s) for s in range(3)))
    cmp = tw.compare({"a": a, "b": b})
    report = cmp.report()
    first = cmp.excluded_mass
    mean_a = first[(first["variant"] == "a") & (first["query"] == "final")]["mass"]
    assert f"a {mean_a.mean():.2f} of the attention on average over layers" in report
    assert "- Excluded: first token (masses are fractions of the rest of the attention" in report
    assert "| excluded: first token | early |" in report
    figure = cmp.delta_figure()
    assert "first token excluded" in figure.layout.title.text
    assert "first token excluded" in a[0].curves_figure(normalize="share").layout.title.text
