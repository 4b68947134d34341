"""A scenario result as a folder (`ScenarioResult.save`), written atomically:
every file goes into a temporary sibling folder, which is renamed to the
target only once complete. A failure midway removes the temporary folder, so
the target is either absent (or, with `overwrite=True`, the previous result)
or complete; never half-written.

Layout::

    result.json       {"format": "tealeaves-scenario-result", "format_version": 1,
                       "name", "model_id" (the scenario's), "model_info" (what ran),
                       "layers", "readout", "text" (generated), "stop_reason",
                       "files": {what: file name}}
    scenario.yaml     the scenario file as given
    steps.csv         one row per generation step (`Generation.steps`)
    top_k.csv         every step's top-k tokens (`ScenarioResult.top_k`)
    snapshots.csv     every source, raw and centred, at the scenario's layers
                      (`ScenarioResult.snapshot_table`)
    generation.tlrun  the generation's run (`Run.save`; open with tw.open_run)
    logits.npy        (step, vocab) raw logits, when capture.logits kept them
    scan/             one run per message prefix (`RunSet.save`; tw.open_runs),
                      with run_at_each_message

Torch-free.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..core import seam
from ..core.scenario import ScenarioResult
from ..errors import ArgumentTypeError, RunFileError
from .rundir import save_runs
from .runfile import save_run
from .versioned import FileKind, versioned_header

RESULT_FILE = FileKind(
    "tealeaves-scenario-result",
    1,
    "scenario result",
    "Run the scenario again and save its result with ScenarioResult.save.",
)
"""The header of a saved result's result.json."""
FILES = {
    "manifest": "result.json",
    "scenario": "scenario.yaml",
    "steps": "steps.csv",
    "top_k": "top_k.csv",
    "snapshots": "snapshots.csv",
    "run": "generation.tlrun",
    "logits": "logits.npy",
    "scan": "scan",
}
"""What a saved result holds -> its name in the folder."""


@seam.provide("save", ScenarioResult)
def save_scenario_result(
    result: ScenarioResult, path: str | PathLike[str] | None = None, *, overwrite: bool = False
) -> Path:
    """Write `result` into the folder `path` (default `<output.dir>/<name>`)
    atomically; see the module docstring. Returns the folder."""
    if not isinstance(overwrite, bool):
        raise ArgumentTypeError(f"overwrite must be True or False, got {overwrite!r}.")
    target = Path(path).expanduser() if path is not None else result.default_directory()
    if target.exists() and not overwrite:
        raise RunFileError(
            f"{target} already exists; pass overwrite=True to replace it, or save to another "
            "folder."
        )
    if target.exists() and not target.is_dir():
        raise RunFileError(f"{target} is a file; a scenario result is saved as a folder.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as error:
        raise RunFileError(
            f"Cannot create a folder beside {target} ({error.strerror or error}); choose a "
            "writable place."
        ) from error
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a result is ordinary data
        write_files(result, staging)
        _move_into_place(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and not isinstance(error, RunFileError):
            raise RunFileError(
                f"Could not save the scenario result to {target} ({error.strerror or error}); "
                "nothing was left there. Check the space and permissions."
            ) from error
        raise
    return target


def write_files(result: ScenarioResult, folder: Path) -> None:
    """Every file of the layout into `folder` (which exists and is empty)."""
    gen = result.generation
    files = {key: name for key, name in FILES.items() if key != "manifest"}
    if gen.logits is None:
        del files["logits"]
    if result.scan is None:
        del files["scan"]
    (folder / files["scenario"]).write_text(result.scenario.text, encoding="utf-8")
    _write_csv(result.steps(), folder / files["steps"])
    _write_csv(result.top_k(), folder / files["top_k"])
    _write_csv(result.snapshot_table(), folder / files["snapshots"])
    save_run(gen.run, folder / files["run"])
    if gen.logits is not None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(gen.logits, np.float32), allow_pickle=False)
        (folder / files["logits"]).write_bytes(buffer.getvalue())
    if result.scan is not None:
        save_runs(result.scan, folder / files["scan"])
    manifest = {
        **versioned_header(RESULT_FILE),
        "name": result.name,
        "scenario_file": result.scenario.source,
        "model_id": result.scenario.model.id,
        "model_info": result.model_info,
        "layers": list(result.layers),
        "readout": result.snapshots.readout,
        "references": list(result.snapshots.references),
        "text": gen.text,
        "stop_reason": gen.stop_reason,
        "generation": gen.options,
        "files": {"manifest": FILES["manifest"], **files},
    }
    # The manifest last: a folder with result.json holds every file it lists.
    (folder / FILES["manifest"]).write_text(
        json.dumps(manifest, indent=2, default=_plain), encoding="utf-8"
    )


def _write_csv(table: Any, path: Path) -> None:
    table.to_csv(path, index=False)


def _plain(value: Any) -> Any:
    """JSON for numpy scalars in the manifest."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the complete `staging` folder to `target`; an existing target is
    moved aside first and removed only once the new folder is in place."""
    if not target.exists():
        staging.rename(target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    aside.rmdir()  # only its unique name is wanted
    target.rename(aside)
    try:
        staging.rename(target)
    except BaseException:
        with contextlib.suppress(OSError):
            aside.rename(target)  # put the previous result back
        raise
    shutil.rmtree(aside, ignore_errors=True)


__all__ = ["FILES", "RESULT_FILE", "save_scenario_result", "write_files"]
