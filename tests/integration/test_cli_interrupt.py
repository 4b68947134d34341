"""Ctrl-C in a real `tealeaves-widgets capture` process: one line saying how
to resume, exit status 130, every finished run file kept, and the same
command run again captures only the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets import batch
from tests.helpers.batch_fixtures import conversations, write_inputs, write_tiny_model

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = (
    "tealeaves-widgets capture: interrupted; rerun the same command to resume "
    "(every finished run file is kept)"
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_sigint_stops_the_capture_and_a_rerun_resumes(tmp_path, tiny_dir, smol_tokenizer):
    # 48 cases, so the signal lands mid-run even when this poller waits a while
    inputs = write_inputs(tmp_path / "inputs", conversations(48))
    cases = batch.prep(batch.PrepInputs.in_folder(inputs), smol_tokenizer)
    cases_file = cases.save(tmp_path / "cases.json")
    out = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "tealeaves_widgets",
        "capture",
        str(cases_file),
        "--out",
        str(out),
        "--model",
        str(tiny_dir),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, not an installed copy
    process = subprocess.Popen(
        command,
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a test run in the background (a shell without job
        # control) ignores SIGINT, and Python then installs no handler for it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    while not list(out.glob("*.tlrun")) and process.poll() is None:
        assert time.monotonic() < deadline, "no run file was written"
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == MESSAGE
    assert "Traceback" not in stderr
    kept = sorted(path.name for path in out.glob("*.tlrun"))
    assert 1 <= len(kept) < len(cases.cases), "interrupted before the first or after the last"
    assert not (out / "index.json").exists()

    rerun = subprocess.run(
        [*command, "--no-progress"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    fresh = len(cases.cases) - len(kept)
    assert f"({fresh} captured by this process now, {len(kept)} already there)" in rerun.stdout
    assert len(tw.open_runs(out)) == len(cases.cases)
