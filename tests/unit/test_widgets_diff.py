"""VariantDiff on the Python side: the payload holds `cmp.deltas`,
`cmp.lens_deltas` and the token deltas of `Comparison.token_deltas`; the
selection is validated; display(cmp) and export_html show it. No torch."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.errors import TealeavesError, WireError
from tealeaves_widgets.widgets import DiffOptions, VariantDiff, diff_payload
from tealeaves_widgets.widgets.diff import DIFF_OPS, LENS_COLUMNS, TABLE_COLUMNS
from tealeaves_widgets.widgets.export import page_html
from tealeaves_widgets.widgets.wire import decode_array
from tests.helpers.fake_runs import fake_run, regions_of, variant_words


def run_of(terse: bool, seed: int = 0, name: str | None = None) -> tw.Run:
    words = variant_words(terse)
    return fake_run(words, regions_of(words), seed=seed, name=name)


@pytest.fixture(scope="module")
def pair_cmp() -> tw.Comparison:
    return tw.compare({"baseline": run_of(False, 0), "terse": run_of(True, 1)})


@pytest.fixture(scope="module")
def sets_cmp() -> tw.Comparison:
    """Three variants, RunSets of the same 4 cases (paired intervals), bands."""
    labels = tuple(f"case{i}" for i in range(4))
    base = tw.RunSet(tuple(run_of(False, i) for i in range(4)), labels)
    terse = tw.RunSet(tuple(run_of(True, 10 + i) for i in range(4)), labels)
    other = tw.RunSet(tuple(run_of(True, 20 + i) for i in range(4)), labels)
    return tw.compare({"baseline": base, "terse": terse, "other": other}, layers="bands")


def test_cases_are_labelled_by_their_question():
    """The case selector shows each case's user message (issue 11: it showed q0..q7)."""
    texts = ["Where are your data centres?", "Line one\nline two " + "x" * 80]
    runs = [run_of(False, i) for i in range(2)]
    runs = [dataclasses.replace(r, case={"user": t}) for r, t in zip(runs, texts, strict=True)]
    named = tw.RunSet(tuple(runs), ("where", "case1"))
    cmp = tw.compare({"baseline": named, "terse": named})
    labels = diff_payload(cmp)["case_labels"]
    assert labels[0] == "where: Where are your data centres?"
    assert labels[1].startswith("Line one line two xxx") and labels[1].endswith("\u2026")
    assert len(labels[1]) == 60 and "\n" not in labels[1]


def expect_grid(payload_part: dict, frame: pd.DataFrame, keys: list[tuple[str, list]], column):
    """Every row of the tidy `frame` equals the payload's array at its keys."""
    values = decode_array(payload_part[column]).astype(np.float64)
    for row in frame.itertuples(index=False):
        row = row._asdict()
        index = tuple(list(labels).index(row[key]) for key, labels in keys)
        expected = row[column]
        got = values[index]
        if pd.isna(expected):
            assert np.isnan(got) or got == -1, (column, index)
        else:
            assert got == pytest.approx(float(expected), rel=1e-6, abs=1e-7), (column, index)


@pytest.mark.parametrize("which", ["pair_cmp", "sets_cmp"])
def test_table_and_lens_hold_the_comparison_numbers(which, request):
    cmp = request.getfixturevalue(which)
    payload = diff_payload(cmp)
    labels = [row["label"] for row in payload["rows"]]
    assert labels == (
        list(range(cmp.n_layers)) if which == "pair_cmp" else ["early", "middle", "late"]
    )
    keys = [
        ("variant", cmp.names),
        ("query", cmp.queries),
        ("region", cmp.regions),
        ("layer", labels),
    ]
    deltas = cmp.deltas
    for column in TABLE_COLUMNS:
        expect_grid(payload["table"], deltas, keys, column)
    flags = decode_array(payload["table"]["significant"])
    expected = [-1 if pd.isna(flag) else int(flag) for flag in deltas["significant"]]
    assert sorted(flags.ravel().tolist()) == sorted(expected)
    lens_keys = [
        ("variant", cmp.names),
        ("query", cmp.queries),
        ("token", cmp.tracked_tokens),
        ("layer", labels),
    ]
    for column in LENS_COLUMNS:
        expect_grid(payload["lens"], cmp.lens_deltas, lens_keys, column)


def test_the_flags_mark_significant_rows_of_runsets(sets_cmp):
    payload = diff_payload(sets_cmp)
    table = sets_cmp.deltas
    flags = decode_array(payload["table"]["significant"])
    names, queries, regions = sets_cmp.names, sets_cmp.queries, sets_cmp.regions
    for row in table.itertuples():
        index = (
            names.index(row.variant),
            queries.index(row.query),
            regions.index(row.region),
            ["early", "middle", "late"].index(row.layer),
        )
        assert flags[index] == (-1 if pd.isna(row.significant) else int(row.significant))
    assert (flags[1:] >= 0).all() and (flags[0] == -1).all()  # the baseline has no interval


def test_sink_flags_travel_as_the_deltas_have_them(sets_cmp):
    payload = diff_payload(sets_cmp)
    flags = decode_array(payload["table"]["sink_reassigned"])
    names, queries, regions = sets_cmp.names, sets_cmp.queries, sets_cmp.regions
    for row in sets_cmp.deltas.itertuples():
        index = (
            names.index(row.variant),
            queries.index(row.query),
            regions.index(row.region),
            ["early", "middle", "late"].index(row.layer),
        )
        flag = row.sink_reassigned
        assert flags[index] == (-1 if pd.isna(flag) else int(flag))


@pytest.mark.parametrize(
    ("exclude", "words", "first_excluded"),
    [
        ("auto", "first token", True),
        ("rules", "rules", False),
        ("persona", "persona", True),  # its tokens start at the first
        (None, "nothing", False),
    ],
)
def test_the_sink_and_the_excluded_mass_per_variant_and_layer(
    sets_cmp, exclude, words, first_excluded
):
    """Every layer (not the bands): the first token's attention and the excluded
    tokens', means over units as cmp.excluded_mass; what is excluded, in words."""
    cmp = sets_cmp.with_options(exclude=exclude)
    payload = diff_payload(cmp)
    assert payload["options"]["excluded"] == words
    assert payload["options"]["first_excluded"] is first_excluded
    per_layer = cmp.with_options(layers=None)
    keys = [("variant", cmp.names), ("query", cmp.queries), ("layer", list(range(cmp.n_layers)))]
    expect_grid({"mass": payload["sink"]["excluded"]}, per_layer.excluded_mass, keys, "mass")
    first = per_layer.with_options(exclude="first").excluded_mass
    expect_grid({"mass": payload["sink"]["first"]}, first, keys, "mass")
    # by hand: the baseline's first token at the final query, mean over its runs
    runs = cmp.variants["baseline"].runs
    by_hand = np.mean([r.attention[:, r.query_index("final"), 0] for r in runs], axis=0)
    got = decode_array(payload["sink"]["first"])[0, cmp.queries.index("final")]
    np.testing.assert_allclose(got, by_hand, rtol=1e-6)
    if exclude is None:
        assert not decode_array(payload["sink"]["excluded"]).any()


def test_curves_are_every_layer_with_their_bands(sets_cmp):
    payload = diff_payload(sets_cmp)
    per_layer = sets_cmp.with_options(layers=None).deltas
    keys = [
        ("variant", sets_cmp.names),
        ("query", sets_cmp.queries),
        ("layer", list(range(sets_cmp.n_layers))),
        ("region", sets_cmp.regions),
    ]
    for column in ("mass", "mass_low", "mass_high"):
        expect_grid(payload["curves"], per_layer, keys, column)
    low = decode_array(payload["curves"]["mass_low"])
    assert np.isfinite(low).all()  # RunSets: a band everywhere


def token_deltas_from_payload(payload, case_index, variant, query, layer):
    """What the front end computes: variant minus baseline attention along the steps."""
    entry = payload["cases"][case_index]
    alignment = entry["alignments"][variant]
    ops = decode_array(alignment["op"])
    b = decode_array(alignment["baseline_pos"])
    v = decode_array(alignment["variant_pos"])
    base = decode_array(payload["runs"][entry["runs"][0]]["attention"])[layer, query]
    other = decode_array(payload["runs"][entry["runs"][variant]]["attention"])[layer, query]
    delta = np.where(ops == 0, other[v].astype(np.float64) - base[b], np.nan)
    return [DIFF_OPS[o] for o in ops], b, v, delta


@pytest.mark.parametrize(("dtype", "atol"), [("float32", 1e-7), ("float16", 2e-3)])
def test_token_deltas_equal_comparison_token_deltas(sets_cmp, dtype, atol):
    payload = diff_payload(sets_cmp, DiffOptions(attention_dtype=dtype))
    assert [entry["case"] for entry in payload["cases"]] == [0, 1, 2, 3]
    texts = [" ".join(run.case["user"].split()) for run in sets_cmp.variants["baseline"]]
    assert payload["case_labels"] == [t if len(t) <= 60 else t[:59] + "\u2026" for t in texts]
    for case in (0, 3):
        for variant in (1, 2):
            for query in sets_cmp.queries:
                q = sets_cmp.queries.index(query)
                for layer in (0, sets_cmp.n_layers - 1):
                    expected = sets_cmp.token_deltas(sets_cmp.names[variant], query, layer, case)
                    ops, b, v, delta = token_deltas_from_payload(payload, case, variant, q, layer)
                    assert ops == expected["op"].tolist()
                    np.testing.assert_array_equal(b, expected["baseline_pos"])
                    np.testing.assert_array_equal(v, expected["variant_pos"])
                    np.testing.assert_allclose(delta, expected["delta"], atol=atol)
    # the baseline run of a case is sent once and shared by the variants
    assert len(payload["runs"]) == 4 * 3
    assert isinstance(payload["runs"][0]["attention"]["data"], memoryview)


def test_token_regions_index_the_comparison_regions(pair_cmp):
    payload = diff_payload(pair_cmp)
    names = [r["name"] for r in payload["regions"]]
    assert names == pair_cmp.regions
    run = pair_cmp.variants["terse"]
    owner = decode_array(payload["runs"][1]["token_region"])
    for name, info in run.regions.items():
        assert (owner[info.token_indices] == names.index(name)).all()
    assert payload["runs"][1]["query_pos"] == [run.queries[q] for q in pair_cmp.queries]


def test_cases_beyond_the_budget_are_left_out(sets_cmp):
    one_case = diff_payload(sets_cmp, DiffOptions(cases=(0,)))["bytes"]
    small = diff_payload(sets_cmp, DiffOptions(max_bytes=one_case + 10))
    assert [entry["case"] for entry in small["cases"]] == [0]
    assert len(small["runs"]) == 3 and small["bytes"] == one_case
    chosen = diff_payload(sets_cmp, DiffOptions(cases=(2, 0)))
    assert [entry["case"] for entry in chosen["cases"]] == [2, 0]
    with pytest.raises(WireError, match="with one case, over max_bytes"):
        diff_payload(sets_cmp, DiffOptions(max_bytes=1000))
    with pytest.raises(WireError, match=r"give case indices within 0\.\.3"):
        diff_payload(sets_cmp, DiffOptions(cases=(4,)))


def test_the_selection_is_validated(sets_cmp):
    view = VariantDiff(sets_cmp, options=DiffOptions(cases=(1, 2)))
    assert (view.query, view.variant, view.case, view.layer) == ("final", "terse", 1, 3)
    view.variant, view.case, view.layer, view.query = "other", 2, 5, "last_token"
    view.hidden = ["facts"]
    for trait, value, message in [
        ("layer", 6, r"layer=6 is out of range; this view has layers 0\.\.5"),
        ("query", "nope", "Unknown query 'nope'"),
        ("variant", "baseline", "not a variant compared with the baseline"),
        ("case", 0, r"case=0 is not in this view; its token view holds cases \[1, 2\]"),
        ("hidden", ["x"], r"Unknown region\(s\) \['x'\] in hidden"),
    ]:
        with pytest.raises(TealeavesError, match=message):
            setattr(view, trait, value)
    assert (view.variant, view.case, view.layer, view.hidden) == ("other", 2, 5, ["facts"])
    with pytest.raises(TealeavesError, match="VariantDiff expects a tealeaves_widgets.Comparison"):
        VariantDiff(sets_cmp.variants["baseline"])


def test_display_shows_the_diff_in_a_kernel(pair_cmp, monkeypatch):
    assert set(pair_cmp._repr_mimebundle_()) == {"text/plain"}
    monkeypatch.setattr("tealeaves_widgets.core.seam.in_kernel", lambda: True)
    bundle = pair_cmp._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"] == repr(pair_cmp)
    assert VariantDiff(pair_cmp, layer=1).layer == 1
    with pytest.warns(DeprecationWarning, match=r"cmp.diff_view\(\.\.\.\) is deprecated"):
        assert isinstance(pair_cmp.diff_view(layer=1), VariantDiff)


def test_export_html_maps_a_comparison_to_the_diff(pair_cmp):
    html = page_html(pair_cmp)
    state = html.split('<script type="application/vnd.jupyter.widget-state+json">')[1]
    models = json.loads(state.split("</script>")[0])["state"].values()
    diffs = [m["state"] for m in models if m["state"].get("variant") == "terse"]
    assert len(diffs) == 1 and diffs[0]["payload"]["kind"] == "variant_diff"
    assert tw.VariantDiff is VariantDiff
