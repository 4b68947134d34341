"""The batch pipeline: prep validation, resumable capture, run directories, compare."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets import batch
from tealeaves_widgets.__main__ import main
from tealeaves_widgets.batch import BatchError, CaptureOptions, PrepInputs
from tealeaves_widgets.errors import RunFileError
from tests.batch_fixtures import REGIONS, conversations, write_inputs, write_tiny_model
from tests.fake_runs import fake_run, regions_of, variant_words

OPTIONS = CaptureOptions(progress=False)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return tw.load_model(str(tiny_dir))


@pytest.fixture()
def cases_file(tmp_path, smol_tokenizer):
    inputs = write_inputs(tmp_path / "inputs")
    cases = batch.prep(PrepInputs.in_folder(inputs), smol_tokenizer)
    return cases.save(tmp_path / "cases.json")


# ---------------------------------------------------------------- prep


def test_prep_writes_cases_with_overrides(cases_file):
    cases = batch.read_cases(cases_file)
    assert [c.id for c in cases.cases] == [f"c{i:02d}" for i in range(16)]
    c03 = cases.cases[3].regions
    assert [r.name for r in c03.user] == ["greeting"]
    assert [r.name for r in cases.cases[0].regions.user] == ["question"]
    # TeaLeaves' {name: query} form became named queries
    assert cases.regions.queries == ("final", {"after_text": "Q:", "name": "asked"})
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


# ---------------------------------------------------------------- capture


def test_capture_writes_runs_and_index(cases_file, tmp_path, tiny):
    out = tmp_path / "runs"
    summary = batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    assert len(summary.captured) == 16 and not summary.problems
    runs = tw.open_runs(out)
    assert runs.labels == tuple(f"c{i:02d}" for i in range(16))
    assert "greeting" in runs[3].regions and "question" not in runs[3].regions
    assert set(runs.queries) == {"final", "asked"}
    cases = batch.read_cases(cases_file).cases
    direct = tiny.capture(cases[5].case, cases[5].regions)
    np.testing.assert_array_equal(runs[5].attention_heads, direct.attention_heads)


def test_capture_resumes_after_interrupt(cases_file, tmp_path, tiny, monkeypatch):
    out = tmp_path / "runs"
    real = tiny.capture
    calls: list[str] = []

    def interrupted(case, regions, **kwargs):
        if len(calls) == 5:
            raise KeyboardInterrupt  # as if killed after five files
        calls.append(case.name)
        return real(case, regions, **kwargs)

    monkeypatch.setattr(tiny, "capture", interrupted)
    with pytest.raises(KeyboardInterrupt):
        batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    assert len(list(out.glob("*.tlrun"))) == 5 and not (out / "index.json").exists()
    assert not list(out.glob(".*.tmp"))

    calls.clear()
    monkeypatch.setattr(
        tiny,
        "capture",
        lambda case, regions, **kw: calls.append(case.name) or real(case, regions, **kw),
    )
    summary = batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    assert calls == [f"c{i:02d}" for i in range(5, 16)]
    assert summary.existing == tuple(f"c{i:02d}" for i in range(5))
    assert len(tw.open_runs(out)) == 16


def test_a_failing_case_is_listed_and_captured_on_the_next_run(
    cases_file, tmp_path, tiny, monkeypatch
):
    out = tmp_path / "runs"
    real = tiny.capture

    def flaky(case, regions, **kwargs):
        if case.name == "c07":
            raise RuntimeError("simulated failure")
        return real(case, regions, **kwargs)

    monkeypatch.setattr(tiny, "capture", flaky)
    summary = batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    assert [(p.case, p.where) for p in summary.problems] == [("c07", "capture")]
    assert "simulated failure" in summary.problems[0].message
    assert summary.index.pending == ("c07",) and len(summary.index.runs) == 15
    with pytest.warns(UserWarning, match="c07"):
        assert len(tw.open_runs(out)) == 15

    monkeypatch.setattr(tiny, "capture", real)
    summary = batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    assert summary.captured == ("c07",) and not summary.problems
    assert len(tw.open_runs(out)) == 16


def test_damaged_run_file_is_named_with_its_case(cases_file, tmp_path, tiny):
    out = tmp_path / "runs"
    batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    damaged = out / "0004-c04.tlrun"
    damaged.write_bytes(damaged.read_bytes()[:-100])  # truncated
    with pytest.raises(RunFileError, match=r"Case 'c04'.*0004-c04.tlrun"):
        tw.open_runs(out)
    summary = batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    [problem] = summary.problems
    assert problem.case == "c04" and str(damaged) == problem.where
    assert "Delete the file" in problem.message
    assert summary.index.pending == ("c04",)
    damaged.unlink()
    summary = batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    assert summary.captured == ("c04",) and not summary.index.pending


def test_stale_run_file_is_not_reused(cases_file, tmp_path, tiny):
    out = tmp_path / "runs"
    batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    data = json.loads(cases_file.read_text())
    data["cases"][2]["case"]["user"] = "Hello 2. Q: changed?"
    cases_file.write_text(json.dumps(data))
    summary = batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    [problem] = summary.problems
    assert problem.case == "c02" and "differ from the cases file" in problem.message


def test_bad_cases_file_errors_name_file_and_case(tmp_path, cases_file, tiny):
    truncated = tmp_path / "truncated.json"
    truncated.write_text(cases_file.read_text()[:200])
    with pytest.raises(BatchError, match=r"truncated.json is not valid JSON"):
        batch.read_cases(truncated)
    data = json.loads(cases_file.read_text())
    data["cases"][6]["case"] = {"user": 12}
    data["cases"][9]["regions"] = {"user_message": {"regions": [{"nom": "x"}]}}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(BatchError) as caught:
        batch.read_cases(broken)
    text = str(caught.value)
    assert "case 'c06', broken.json cases[6]" in text and "Case.user must be a string" in text
    assert "case 'c09', broken.json cases[9]" in text and "unknown key(s) ['nom']" in text
    data = json.loads(cases_file.read_text())
    data["cases"][1]["case"]["user"] = "no question"  # the user region cannot be found
    mismatch = tmp_path / "mismatch.json"
    mismatch.write_text(json.dumps(data))
    with pytest.raises(BatchError, match=r"case 'c01', region user_message/question"):
        batch.capture_cases(mismatch, tmp_path / "out", OPTIONS, model=tiny)


def test_capture_command_with_max_tokens(cases_file, tmp_path, tiny_dir, capsys):
    lengths = [c.n_tokens for c in batch.read_cases(cases_file).cases]
    limit = sorted(lengths)[8]
    out = tmp_path / "runs"
    args = ["capture", str(cases_file), "--out", str(out), "--model", str(tiny_dir)]
    assert main([*args, "--max-tokens", str(limit), "--no-progress"]) == 0
    index = json.loads((out / "index.json").read_text())
    assert len(index["runs"]) == sum(n <= limit for n in lengths)
    assert sorted(index["pending"]) == sorted(index["too_long"])
    assert index["model"] == {"model_id": str(tiny_dir), "dtype": "float32"}
    assert "memory estimate" in capsys.readouterr().out


# ---------------------------------------------------------------- run directories


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
    with pytest.raises(RunFileError, match=r"index.json cannot be read as JSON"):
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
    expected = tw.compare(
        {"base": tw.open_runs(tmp_path / "base"), "terse": tw.open_runs(tmp_path / "terse")},
        layers="bands",
    )
    import pandas as pd

    deltas = pd.read_csv(tmp_path / "cmp" / "deltas.csv")
    np.testing.assert_allclose(deltas["delta"], expected.deltas["delta"], rtol=1e-12)
    assert (tmp_path / "cmp" / "report.md").read_text().startswith("#")
    assert main(["report", *variants, "-o", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").read_text() == expected.with_options(layers=None).report()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["report", "base", "-o", str(tmp_path / "x.md")]) == 1
