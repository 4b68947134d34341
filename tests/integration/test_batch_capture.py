"""The batch pipeline: prep validation, resumable capture, run directories, compare."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets import batch
from tealeaves_widgets.__main__ import main
from tealeaves_widgets.batch import CaptureOptions, PrepInputs
from tealeaves_widgets.batch.lock import LOCK_NAME
from tealeaves_widgets.errors import BatchError, RunFileError
from tests.helpers.batch_fixtures import write_inputs, write_tiny_model

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


def test_capture_writes_runs_and_index(cases_file, tmp_path, tiny):
    out = tmp_path / "runs"
    summary = batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    assert len(summary.captured) == 16 and not summary.problems
    runs = tw.open_runs(out)
    assert runs.labels == tuple(f"c{i:02d}" for i in range(16))
    assert "greeting" in runs[3].regions and "question" not in runs[3].regions
    assert set(runs.queries) == {"end", "asked"}  # the names regions.json gives
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


# -- one capture per folder ---------------------------------------------------------

HOLDER = """
import pathlib, sys, time
import tealeaves_widgets as tw
from tealeaves_widgets import batch

cases, out, model_dir, started, gate = sys.argv[1:6]
model = tw.load_model(model_dir)
real = model.capture

def held(case, regions, **kwargs):  # the first case waits until the test opens the gate
    pathlib.Path(started).touch()
    while not pathlib.Path(gate).exists():
        time.sleep(0.05)
    return real(case, regions, **kwargs)

model.capture = held
summary = batch.capture_cases(cases, out, batch.CaptureOptions(progress=False), model=model)
print(len(summary.captured))
"""


def _start_capture(cases_file, out, tiny_dir, tmp_path) -> tuple[subprocess.Popen, object]:
    """A capture in another process, stopped inside its first case (so it
    holds the folder's lock); returns the process and the file that lets it go on."""
    started, gate = tmp_path / "started", tmp_path / "gate"
    args = [str(cases_file), str(out), str(tiny_dir), str(started), str(gate)]
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 300
    while not started.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the first capture did not start:\n{process.communicate()[1]}")
        time.sleep(0.1)
    return process, gate


def test_second_capture_into_the_same_folder_is_refused_at_once(
    cases_file, tmp_path, tiny_dir, capsys
):
    out = tmp_path / "runs"
    first, gate = _start_capture(cases_file, out, tiny_dir, tmp_path)
    try:
        args = ["capture", str(cases_file), "--out", str(out), "--model", str(tiny_dir)]
        started = time.monotonic()
        assert main([*args, "--no-progress"]) == 1
        assert time.monotonic() - started < 30  # refused, not waiting for the first
        err = capsys.readouterr().err
        assert f"Another capture is writing into {out}: process {first.pid} on " in err
        assert socket.gethostname() in err and ", started 20" in err
        assert "Wait for it to finish" in err and "pass another --out" in err
        assert not list(out.glob("*.tlrun"))  # the first waits in its first case
        gate.touch()
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr[-3000:]
    assert stdout.split()[-1] == "16"  # the first captured every case, alone
    assert len(tw.open_runs(out)) == 16


def test_killed_capture_leaves_no_stale_lock(cases_file, tmp_path, tiny_dir, tiny):
    out = tmp_path / "runs"
    first, _ = _start_capture(cases_file, out, tiny_dir, tmp_path)
    first.kill()  # SIGKILL: no cleanup runs in it
    first.communicate()
    assert (out / LOCK_NAME).read_text()  # its holder record is still there
    summary = batch.capture_cases(cases_file, out, OPTIONS, model=tiny)
    assert len(summary.captured) == 16 and not summary.problems
