"""Opening a huge run file costs its header, not its size: 30 GB sparse files
are refused with the peak memory of a small file, and a valid mapped run is
opened without reading its arrays.

Peak memory is `ru_maxrss` of a fresh process, after its imports and after
`open_run`. That process is started by a small Python in between, because on
Linux a process inherits its parent's high-water mark across exec (this
pytest process would mask the measurement). Its address space is capped a
few GB above what the imports use, so a reader that did read the whole file
would fail with a MemoryError there instead of exhausting the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.fake_runs import fake_run, regions_of, variant_words
from tests.helpers.synthetic import synthetic_run

pytestmark = pytest.mark.slow

SIZE = 30 * 2**30
LIMIT_MB = 100

MEASURE = """
import json, resource, sys
from tealeaves_widgets.errors import RunFileError
from tealeaves_widgets.io.runfile import open_run

status = open("/proc/self/status").read()
vm_bytes = int(status.split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm_bytes + 4 * 2**30, resource.RLIM_INFINITY))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    run = open_run(sys.argv[1])
    outcome = f"opened: {run.n_layers} layers"
except RunFileError as error:
    outcome = f"RunFileError: {error}"
except MemoryError:
    outcome = "MemoryError"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_mb": before / 1024, "after_mb": after / 1024, "outcome": outcome}))
"""
VIA_SMALL_PARENT = (
    "import subprocess, sys; sys.exit(subprocess.call([sys.executable, *sys.argv[1:]]))"
)


def measure(path: Path) -> dict:
    """ru_maxrss (MB) of a fresh process before and after `open_run(path)`, and its outcome."""
    done = subprocess.run(
        [sys.executable, "-c", VIA_SMALL_PARENT, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    result["above_mb"] = result["after_mb"] - result["before_mb"]
    print(f"{path.name}: {result}")  # the figures, with pytest -s
    return result


def sparse(path: Path) -> Path:
    """Extend `path` to 30 GB without writing (skip where the disk cannot)."""
    try:
        os.truncate(path, SIZE)
    except OSError as error:
        pytest.skip(f"this file system cannot hold a 30 GB sparse file ({error})")
    if path.stat().st_blocks * 512 > 2**30:
        path.unlink()
        pytest.skip("this file system wrote the 30 GB instead of keeping the file sparse")
    return path


def test_30_gb_of_zeros_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "zeros.tlrun"
    path.touch()
    result = measure(sparse(path))
    assert "cannot be read as safetensors" in result["outcome"]
    assert "header of 0 bytes" in result["outcome"]
    assert result["above_mb"] < LIMIT_MB


def test_valid_run_extended_to_30_gb_is_refused_in_bounded_memory(tmp_path):
    words = variant_words(False)
    path = fake_run(words, regions_of(words)).save(tmp_path / "run.tlrun")
    result = measure(sparse(path))
    assert "bytes follow the last tensor" in result["outcome"], result["outcome"]
    assert "have bytes appended" in result["outcome"]
    assert result["above_mb"] < LIMIT_MB


def test_large_valid_run_opens_without_reading_its_arrays(tmp_path):
    """35 MB of attention rows: checked by streaming, then mapped, not read."""
    path = synthetic_run(n_tokens=4096).save(tmp_path / "large.tlrun")
    assert path.stat().st_size > 35e6
    result = measure(path)
    assert result["outcome"] == "opened: 30 layers"
    assert result["above_mb"] < 20
