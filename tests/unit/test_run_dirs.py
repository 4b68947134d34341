"""Run directories and cases files that are damaged or tampered with: swapped
run files, wrong types in index.json, deep JSON, versions that are not ints.
No torch."""

from __future__ import annotations

import json

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.errors import BatchError, RunFileError
from tests.helpers.fake_runs import fake_run, regions_of, variant_words

WORDS = variant_words(False)
DEEP = "[" * 100_000


# -- run directories ------------------------------------------------------------------


@pytest.fixture
def rundir(tmp_path):
    runs = tuple(fake_run(WORDS, regions_of(WORDS), seed=i, name=f"c{i}") for i in range(3))
    return tw.RunSet(runs, labels=("c0", "c1", "c2")).save(tmp_path / "runs")


def test_open_runs_refuses_swapped_run_files(rundir):
    first, second = rundir / "0000-c0.tlrun", rundir / "0001-c1.tlrun"
    first.rename(rundir / "swap")
    second.rename(first)
    (rundir / "swap").rename(second)
    with pytest.raises(RunFileError) as caught:
        tw.open_runs(rundir)
    text = str(caught.value)
    assert "Case 'c0'" in text and "0000-c0.tlrun" in text
    assert "holds the run of case 'c1' (listed as 0001-c1.tlrun)" in text
    assert "Put the right file back" in text


def test_open_runs_refuses_a_run_file_the_index_does_not_list(rundir, tmp_path):
    other = fake_run(WORDS, regions_of(WORDS), seed=9)
    other.save(rundir / "0002-c2.tlrun")
    with pytest.raises(RunFileError, match=r"Case 'c2'.*0002-c2.tlrun holds a run the index"):
        tw.open_runs(rundir)


def _write_index(rundir, change):
    path = rundir / "index.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


BAD_INDEXES = {
    "pending int": (lambda d: d.update(pending=5), r"'pending' must be a list of case ids"),
    "pending items": (lambda d: d.update(pending=["c4", 3]), r"'pending' must be a list of"),
    "runs object": (lambda d: d.update(runs={"a": 1}), r"'runs' must be a list of entries"),
    "n_tokens str": (
        lambda d: d["runs"][1].update(n_tokens="19"),
        r"runs\[1\] n_tokens must be an int >= 0 or null, got '19'",
    ),
    "n_tokens bool": (lambda d: d["runs"][1].update(n_tokens=True), r"runs\[1\] n_tokens"),
    "sha256 int": (
        lambda d: d["runs"][0].update(sha256=5),
        r"runs\[0\] sha256 must be 64 hex digits or null, got 5",
    ),
    "sha256 short": (lambda d: d["runs"][0].update(sha256="abc"), r"runs\[0\] sha256 must be"),
    "seed bool": (lambda d: d["runs"][2].update(seed=True), r"runs\[2\] seed must be an int"),
    "label int": (lambda d: d["runs"][2].update(label=3), r"runs\[2\] needs a str label"),
    "entry list": (lambda d: d["runs"].__setitem__(0, ["c0"]), r"runs\[0\] must be an object"),
    "version true": (lambda d: d.update(format_version=True), r"format_version True; expected"),
    "version float": (lambda d: d.update(format_version=1.0), r"format_version 1.0; expected"),
}


@pytest.mark.parametrize("change, message", BAD_INDEXES.values(), ids=BAD_INDEXES.keys())
def test_open_runs_refuses_wrong_types_in_the_index(rundir, change, message):
    _write_index(rundir, change)
    with pytest.raises(RunFileError, match=message) as caught:
        tw.open_runs(rundir)
    assert str(rundir / "index.json") in str(caught.value)


def test_deep_json_in_index_is_a_run_file_error(rundir):
    (rundir / "index.json").write_text(DEEP)
    with pytest.raises(RunFileError, match=r"index.json cannot be read as JSON \(nested too"):
        tw.open_runs(rundir)


# -- cases files ----------------------------------------------------------------------------


def test_cases_file_refuses_deep_json_and_versions_that_are_not_ints(tmp_path):
    from tealeaves_widgets import batch

    path = tmp_path / "cases.json"
    path.write_text(DEEP)
    with pytest.raises(BatchError, match=r"cases.json cannot be read as JSON \(nested too deeply"):
        batch.read_cases(path)
    for version in (True, 1.0):
        header = {"format": "tealeaves-cases", "format_version": version, "cases": []}
        path.write_text(json.dumps(header))
        with pytest.raises(BatchError, match=rf"cases.json has format_version {version!r}"):
            batch.read_cases(path)
