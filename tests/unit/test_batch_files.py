"""The batch pipeline: prep validation, resumable capture, run directories, compare."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets import batch
from tealeaves_widgets.__main__ import main
from tealeaves_widgets.batch import PrepInputs
from tealeaves_widgets.errors import BatchError, RunFileError
from tests.helpers.batch_fixtures import REGIONS, conversations, write_inputs
from tests.helpers.fake_runs import fake_run, regions_of, variant_words


@pytest.fixture()
def cases_file(tmp_path, smol_tokenizer):
    inputs = write_inputs(tmp_path / "inputs")
    cases = batch.prep(PrepInputs.in_folder(inputs), smol_tokenizer)
    return cases.save(tmp_path / "cases.json")


def test_prep_writes_cases_with_overrides(cases_file):
    cases = batch.read_cases(cases_file)
    assert [c.id for c in cases.cases] == [f"c{i:02d}" for i in range(16)]
    c03 = cases.cases[3].regions
    assert [r.name for r in c03.user] == ["greeting"]
    assert [r.name for r in cases.cases[0].regions.user] == ["question"]
    # TeaLeaves' {name: query} form became named queries, each keeping its name
    assert cases.regions.queries == (
        {"position": "final", "name": "end"},
        {"after_text": "Q:", "name": "asked"},
    )
    assert all(c.n_tokens and c.n_tokens > 40 for c in cases.cases)


def test_prep_reports_every_problem_at_once(tmp_path, smol_tokenizer):
    regions = json.loads(json.dumps(REGIONS))
    regions["system_prompt"]["regions"][0]["start_marker"] = "## Rulez"  # every case
    regions["system_prompt"]["regions"].append({"name": "bad", "start_char": "x"})  # schema
    regions["query_positions"] = ["final", {"after_text": "Answer:"}]  # every case
    convs = conversations(4)
    convs[1]["user_message"] = "no question here"  # c01: user region missing
    convs[2]["user_regions"] = [{"name": "hi", "start_marker": "Bonjour"}]  # c02 override
    convs.append({"user_message": "no id", "extra": 1})
    inputs = write_inputs(tmp_path / "bad", convs, regions)
    with pytest.raises(BatchError) as caught:
        batch.prep(PrepInputs.in_folder(inputs), smol_tokenizer)
    text = str(caught.value)
    assert "nothing was written" in text
    assert "region system_prompt/bad" in text and "start_char" in text
    assert "cases 'c00', 'c01', 'c02', 'c03' (4), region system_prompt/rules" in text
    assert "'## Rulez' not found" in text
    assert "query 'Answer:'" in text
    assert "case 'c01', region user_message/question" in text
    assert "case 'c02', region user_message/hi" in text and "'Bonjour' not found" in text
    assert "case '#4'" in text and "unknown key(s) ['extra']" in text and "needs an 'id'" in text


def test_prep_command_exit_status(tmp_path, capsys):
    inputs = write_inputs(tmp_path / "in", conversations(2))
    (inputs / "regions.json").write_text("{ not json", encoding="utf-8")
    assert main(["prep", str(inputs), "-o", str(tmp_path / "cases.json")]) == 1
    err = capsys.readouterr().err
    assert "regions.json" in err and "not valid JSON" in err
    assert not (tmp_path / "cases.json").exists()


def test_runset_save_round_trips(tmp_path):
    words = variant_words(False)
    runs = tw.RunSet(
        tuple(fake_run(words, regions_of(words), seed=i) for i in range(4)),
        labels=("a", "a", "b", "b"),
        seeds=(0, 1, 0, 1),
    )
    runs.save(tmp_path / "set")
    back = tw.open_runs(tmp_path / "set")
    assert back.labels == runs.labels and back.seeds == runs.seeds
    for a, b in zip(runs, back, strict=True):
        np.testing.assert_array_equal(a.attention_heads, b.attention_heads)
        assert a.text == b.text and a.queries == b.queries
    pd_a, pd_b = runs.aggregate(), back.aggregate()
    assert pd_a.equals(pd_b)


def test_open_runs_errors(tmp_path):
    with pytest.raises(RunFileError, match="nothing is there"):
        tw.open_runs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFileError, match="has no index.json"):
        tw.open_runs(tmp_path / "empty")
    words = variant_words(False)
    tw.RunSet((fake_run(words, regions_of(words)),)).save(tmp_path / "one")
    (tmp_path / "one" / "index.json").write_text('{"format": "tealeaves-runs", "runs": [')
    with pytest.raises(RunFileError, match=r"index.json is not valid JSON"):
        tw.open_runs(tmp_path / "one")
    tw.RunSet((fake_run(words, regions_of(words)),)).save(tmp_path / "two")
    next((tmp_path / "two").glob("*.tlrun")).unlink()
    with pytest.raises(RunFileError, match=r"Case 'case0'.*nothing is there"):
        tw.open_runs(tmp_path / "two")


def test_compare_and_report_commands(tmp_path):
    for name, terse in (("base", False), ("terse", True)):
        words = variant_words(terse)
        tw.RunSet(
            tuple(fake_run(words, regions_of(words), seed=i, name=f"c{i}") for i in range(3))
        ).save(tmp_path / name)
    variants = [f"base={tmp_path / 'base'}", f"terse={tmp_path / 'terse'}"]
    assert main(["compare", *variants, "--out", str(tmp_path / "cmp"), "--layers", "bands"]) == 0
    opened = {"base": tw.open_runs(tmp_path / "base"), "terse": tw.open_runs(tmp_path / "terse")}
    # the command's defaults are tw.compare's: share, the first token excluded
    expected = tw.compare(opened, layers="bands")
    assert expected.options.normalize == "share"
    import pandas as pd

    deltas = pd.read_csv(tmp_path / "cmp" / "deltas.csv")
    np.testing.assert_allclose(deltas["delta"], expected.deltas["delta"], rtol=1e-12)
    assert (tmp_path / "cmp" / "report.md").read_text().startswith("#")
    assert main(["report", *variants, "-o", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").read_text() == expected.with_options(layers=None).report()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a variant that is not NAME=DIR is a bad argument: argparse's status 2
        assert main(["report", "base", "-o", str(tmp_path / "x.md")]) == 2
    # --normalize, --exclude, --share-level and --min-effect reach tw.compare
    flags = ["--normalize", "raw", "--exclude", "first,persona", "--min-effect", "0.05"]
    assert main(["compare", *variants, "--out", str(tmp_path / "raw"), *flags]) == 0
    raw = tw.compare(opened, normalize="raw", exclude=("first", "persona"), min_effect=0.05)
    deltas = pd.read_csv(tmp_path / "raw" / "deltas.csv")
    np.testing.assert_allclose(deltas["delta"], raw.deltas["delta"], rtol=1e-12)
    flags_read = deltas["significant"].astype("string").fillna("NA").tolist()
    assert flags_read == raw.deltas["significant"].astype("string").fillna("NA").tolist()
    assert "True" in flags_read  # the persona change is significant at 0.05
    assert main(["report", *variants, "-o", str(tmp_path / "s.md"), "--share-level", "0"]) == 0
    assert (tmp_path / "s.md").read_text() == tw.compare(opened, share_level=0).report()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--exclude", "first,,user"], "empty name"),
        (["--share-level", "deep"], "depth >= 0"),
        (["--share-level", "-1"], "depth >= 0"),
        (["--min-effect", "-0.1"], "min_effect"),
        (["--exclude", "none,first"], '"none" alone'),
    ],
)
def test_the_mass_flags_are_checked_before_anything_is_opened(tmp_path, capsys, flags, message):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()  # empty folders: a refused flag never reaches them
    variants = [f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}"]
    assert main(["compare", *variants, "--out", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "out").exists()
