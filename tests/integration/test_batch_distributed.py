"""`capture` under a launcher: two processes on the CPU give the runs of one.

accelerate 1.x's `accelerate launch --cpu --num_processes 2` starts a single
process unless MPI is configured (its simple launcher); on a machine without
CUDA, `--multi_gpu` is what starts torch.distributed's launcher with two CPU
processes, which `capture` joins as a gloo group (`batch.process_state`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets import batch
from tealeaves_widgets.__main__ import main
from tests.helpers.batch_fixtures import write_inputs, write_tiny_model

LAUNCH = [
    sys.executable, "-m", "accelerate.commands.launch",
    "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
    "--mixed_precision", "no", "--dynamo_backend", "no",
    "-m", "tealeaves_widgets",
]  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory, smol_tokenizer):
    root = tmp_path_factory.mktemp("distributed")
    inputs = write_inputs(root / "inputs")
    cases = batch.prep(batch.PrepInputs.in_folder(inputs), smol_tokenizer).save(root / "cases.json")
    return root, cases, write_tiny_model(root / "tiny")


def test_two_processes_match_one(setup):
    root, cases, model = setup
    args = ["capture", str(cases), "--model", str(model), "--no-progress"]
    assert main([*args, "--out", str(root / "single")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [*LAUNCH, *args, "--out", str(root / "multi")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    index = json.loads((root / "multi" / "index.json").read_text())
    assert index["n_processes"] == 2
    assert [entry["label"] for entry in index["runs"]] == [f"c{i:02d}" for i in range(16)]
    assert index["pending"] == [] and index["problems"] == []
    single, multi = tw.open_runs(root / "single"), tw.open_runs(root / "multi")
    assert single.labels == multi.labels
    for a, b in zip(single, multi, strict=True):
        assert a.tokens == b.tokens and a.queries == b.queries
        np.testing.assert_allclose(b.attention_heads, a.attention_heads, atol=1e-6)
        np.testing.assert_allclose(b.lens.top_probs, a.lens.top_probs, atol=1e-6)
        np.testing.assert_allclose(b.lens.tracked_probs, a.lens.tracked_probs, atol=1e-6)
        np.testing.assert_array_equal(b.lens.top_ids, a.lens.top_ids)

    # run again: every case is found captured in its shard, the index merged anew
    (root / "multi" / "index.json").unlink()
    again = subprocess.run(
        [*LAUNCH, *args, "--out", str(root / "multi")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 captured by this process now, 8 already there" in again.stdout
    assert len(tw.open_runs(root / "multi")) == 16


def test_cpu_launch_without_mpi_says_it_runs_one_process(setup):
    """The `--cpu` form captures every case in its one process and says how to get N."""
    root, cases, model = setup
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "tealeaves_widgets", "capture", str(cases), "--model", str(model),
        "--no-progress", "--out", str(root / "cpu"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--multi_gpu --num_processes N" in done.stderr
    index = json.loads((root / "cpu" / "index.json").read_text())
    assert index["n_processes"] == 1 and len(index["runs"]) == 16
