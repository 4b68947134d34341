"""The command line checks every argument before it loads anything: a bad one
gets one line on stderr (what was expected, what arrived, what to do) and exit
status 2; a failure gets status 1; Ctrl-C gets status 130 and says how to
resume. Nothing here loads a model or opens a run: the loaders are replaced by
functions that fail the test if they are called."""

from __future__ import annotations

import pytest

from tealeaves_widgets.batch import capture as batch_capture
from tealeaves_widgets.batch import cli
from tealeaves_widgets.io import rundir
from tealeaves_widgets.models import loading


def _not_called(*args, **kwargs):
    raise AssertionError("loaded something before checking the arguments")


@pytest.fixture()
def nothing_loads(monkeypatch):
    for module, name in (
        (batch_capture, "capture_cases"),
        (loading, "load_model"),
        (rundir, "open_runs"),
    ):
        monkeypatch.setattr(module, name, _not_called)


@pytest.fixture()
def cases(tmp_path):
    path = tmp_path / "cases.json"
    path.write_text("{}")  # never read: the arguments fail first
    return path


def run_cli(argv, capsys) -> tuple[int, str]:
    status = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    return status, err


def one_line(err: str) -> str:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    return lines[0]


CAPTURE_CASES = {
    "max-memory size": (
        ["--max-memory", "cpu=lots", "--device-map", "auto"],
        ["--max-memory", "'lots'", "not a size", "GiB", "'0=20GiB,cpu=60GiB'"],
    ),
    "max-memory device": (
        ["--max-memory", "gpu=2GiB", "--device-map", "auto"],
        ["--max-memory", "'gpu'", "GPU number"],
    ),
    "max-memory pairs": (["--max-memory", "20GiB", "--device-map", "auto"], ["DEVICE=SIZE"]),
    "max-memory without map": (["--max-memory", "cpu=2GiB"], ["needs a device map", "auto"]),
    "device-map word": (["--device-map", "bogus"], ["--device-map", "'bogus'", "not a device"]),
    "device-map json": (["--device-map", "{bad"], ["--device-map", "not valid JSON", "auto"]),
    "device-map value": (
        ["--device-map", '{"model.layers.0": "gpu9"}'],
        ["module 'model.layers.0'", "'gpu9'", "not a device"],
    ),
    "device-map gpu": (["--device-map", "cuda:99"], ["'cuda:99'", "this machine has"]),
    "top-k negative": (["--top-k", "-1"], ["--top-k", "at least 1", "got -1", "--top-k 10"]),
    "top-k zero": (["--top-k", "0"], ["--top-k", "got 0"]),
    "max-tokens": (["--max-tokens", "-5"], ["--max-tokens", "at least 1", "got -5"]),
}


@pytest.mark.parametrize("extra, says", CAPTURE_CASES.values(), ids=CAPTURE_CASES)
def test_capture_refuses_bad_arguments_before_loading(
    extra, says, cases, tmp_path, capsys, nothing_loads
):
    out = tmp_path / "runs"
    status, err = run_cli(["capture", cases, "--out", out, *extra], capsys)
    line = one_line(err)
    assert status == 2
    assert line.startswith("tealeaves-widgets capture: ")
    for text in says:
        assert text in line
    assert not out.exists()


def test_a_missing_cases_file_is_a_bad_argument(tmp_path, capsys, nothing_loads):
    status, err = run_cli(["capture", tmp_path / "nope.json", "--out", tmp_path / "r"], capsys)
    assert status == 2 and "nope.json" in one_line(err) and "prep" in err


@pytest.fixture()
def variants(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    return [f"base={tmp_path / 'a'}", f"terse={tmp_path / 'b'}"]


REPORT_CASES = {
    "layers json": (["--layers", "{bad"], ["--layers", "'{bad'", "nor valid JSON", "bands"]),
    "layers phase": (
        ["--layers", '{"x": 5}'],
        ["--layers phase 'x' is 5", "[start, stop]", '{"reading": [0, 12]'],
    ),
    "layers list": (["--layers", "[1, 2]"], ["not a JSON object of phases"]),
    "layers bool": (["--layers", '{"x": [true, 3]}'], ["phase 'x' is [true, 3]"]),
    "top": (["--top", "0"], ["--top", "at least 1", "got 0"]),
    "level": (["--level", "1.5"], ["--level", "between 0 and 1", "1.5"]),
    "suffix": (["-o", "report.txt"], ["'report.txt'", ".txt", ".md", ".html"]),
}


@pytest.mark.parametrize("extra, says", REPORT_CASES.values(), ids=REPORT_CASES)
def test_report_refuses_bad_arguments_before_opening_runs(
    extra, says, variants, tmp_path, capsys, nothing_loads, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    status, err = run_cli(["report", *variants, *extra], capsys)
    line = one_line(err)
    assert status == 2 and line.startswith("tealeaves-widgets report: ")
    for text in says:
        assert text in line
    assert not (tmp_path / "report.md").exists() and not (tmp_path / "report.txt").exists()


@pytest.mark.parametrize("command", ["report", "compare"])
def test_variants_are_checked_before_any_run_opens(command, variants, tmp_path, capsys):
    out = ["--out", tmp_path / "cmp"] if command == "compare" else []
    status, err = run_cli([command, variants[0], *out], capsys)
    assert status == 2 and "at least two variants" in one_line(err)
    status, err = run_cli([command, variants[0], f"x={tmp_path / 'missing'}", *out], capsys)
    assert status == 2 and "'x'" in one_line(err) and "not a folder" in err
    status, err = run_cli([command, variants[0], "broken", *out], capsys)
    assert status == 2 and "NAME=DIR" in one_line(err)


def test_a_failure_after_the_checks_is_status_1(variants, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, err = run_cli(["report", *variants], capsys)  # empty folders: no runs
    assert status == 1 and one_line(err).startswith("tealeaves-widgets report: ")


def test_ctrl_c_says_how_to_resume(cases, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_capture, "capture_cases", interrupted)
    status, err = run_cli(["capture", cases, "--out", tmp_path / "runs"], capsys)
    assert status == 130
    assert one_line(err) == (
        "tealeaves-widgets capture: interrupted; rerun the same command to resume "
        "(every finished run file is kept)"
    )


def test_ctrl_c_in_another_command_says_to_start_again(variants, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rundir, "open_runs", interrupted)
    status, err = run_cli(["report", *variants], capsys)
    assert status == 130
    assert (
        one_line(err)
        == "tealeaves-widgets report: interrupted; rerun the same command to start again"
    )
