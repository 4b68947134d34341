"""`capture`: every case of a cases file into a run directory.

One run file per case in an output directory, plus index.json
(`tealeaves_widgets.io.rundir`). Resumable: a case whose run file exists and
matches is skipped. Under `accelerate launch` or `torchrun` each process
takes its shard of the cases (accelerate's `PartialState`), writes its own
files and a part list; the main process waits for the others and merges
the index. One capture per directory at a time: the main process holds
its lock (`batch.lock`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from ..errors import BatchError, RunFileError
from ..io.rundir import RunEntry, RunIndex, entry_for, run_file_name, write_index
from ..io.runfile import open_run_file
from ..io.versioned import write_atomic
from .cases import (
    BatchCase,
    Problem,
    problems_error,
    read_cases,
    read_json,
    token_count,
    validate_cases,
)
from .lock import capture_lock

_PARTS = ".parts"


@dataclass(frozen=True)
class CaptureOptions:
    """What `capture_cases` loads and how it runs."""

    model: str | None = None
    """Model path or hub id; None: the embedded SmolLM2-135M-Instruct."""
    dtype: str | None = None
    """"bfloat16", "float16" or "float32"; None: the checkpoint's own (fp32 for the embedded)."""
    device_map: Any = None
    """None: one device (this process's GPU under a launcher, else the CPU); "auto"
    spreads the model over the node with accelerate."""
    max_memory: dict | None = None
    """accelerate's per-device budget, e.g. {0: "20GiB", "cpu": "60GiB"}."""
    offload_folder: str | None = None
    """Where accelerate may offload weights to disk."""
    max_tokens: int | None = None
    """Cases with more tokens are skipped (listed in the index as pending)."""
    top_k: int = 10
    memory_check: bool = True
    """Refuse to start when the estimate does not fit (see tealeaves_widgets.memory)."""
    progress: bool = True


@dataclass(frozen=True)
class CaptureSummary:
    """What one process did, and (main process) the merged index."""

    captured: tuple[str, ...]
    """Case ids captured by this process in this session."""
    existing: tuple[str, ...]
    """Case ids this process found already captured (skipped)."""
    problems: tuple[Problem, ...]
    """Cases that failed, damaged or stale run files."""
    index: RunIndex | None = None
    """The merged index (main process only)."""
    is_main: bool = True


def capture_cases(
    cases_path: str | PathLike[str],
    out: str | PathLike[str],
    options: CaptureOptions = CaptureOptions(),
    *,
    model: Any = None,
    state: Any = None,
    log: Callable[[str], None] = print,
) -> CaptureSummary:
    """Capture every case of a cases file into the run directory `out`.

    Resumable, and shardable: under `accelerate launch`/`torchrun`, process k of
    n takes the k-th share of the cases. `model` (a loaded `tw.Model`) skips
    loading; `state` is an accelerate `PartialState` (made here when None).
    One capture per `out` at a time: while another holds the folder's lock
    (`batch.lock`), this one raises `BatchError` at once, naming it.
    """
    state = state or process_state()
    cases_path, out = Path(cases_path), Path(out)
    batch = read_cases(cases_path)
    out.mkdir(parents=True, exist_ok=True)
    lock = capture_lock(out) if state.is_main_process else contextlib.nullcontext()
    with lock:  # the main process holds it to the end; the others wait for it below
        parts = out / _PARTS
        if state.is_main_process:
            _clean_leftovers(out)
        state.wait_for_everyone()  # nobody writes before the lock is held, the leftovers gone

        tokenizer, config, model_id = _source(options, model)
        dtype = _dtype_name(options, model, config)
        problems: list[Problem] = []
        checked = validate_cases(batch.cases, tokenizer, context_length(config), problems)
        if problems:
            raise problems_error(problems, f"{cases_path} does not fit the model's tokenizer")
        names = {c.id: run_file_name(i, c.id) for i, c in enumerate(checked)}
        too_long = [
            c.id
            for c in checked
            if options.max_tokens is not None and token_count(c) > options.max_tokens
        ]
        with state.split_between_processes(list(range(len(checked)))) as share:
            mine = [checked[i] for i in share]
        expected = {"model_id": model_id, "dtype": dtype}
        todo, existing, entries = [], [], {}
        for item in mine:
            if item.id in too_long:
                continue
            path = out / names[item.id]
            if not path.exists():
                todo.append(item)
                continue
            entry, problem = _existing_entry(path, item, expected)
            if problem is not None:
                problems.append(problem)
            else:
                entries[item.id] = entry
                existing.append(item.id)

        captured: list[str] = []
        if todo:
            if model is None:
                model = _load(options, dtype, config, todo, state, log)
            captured = _capture_loop(model, todo, names, out, options, state, entries, problems)
        parts.mkdir(exist_ok=True)
        part = {
            "runs": {k: v.to_dict() for k, v in entries.items()},
            "problems": [dataclasses.asdict(p) for p in problems],
        }
        write_atomic(parts / f"part-{state.process_index}.json", json.dumps(part).encode())
        state.wait_for_everyone()
        index = None
        if state.is_main_process:
            index = merge_index(
                out,
                checked,
                too_long,
                state.num_processes,
                _provenance(cases_path, expected, options),
            )
        summary_problems = problems if not state.is_main_process else _index_problems(index)
        return CaptureSummary(
            tuple(captured), tuple(existing), tuple(summary_problems), index, state.is_main_process
        )


def process_state() -> Any:
    """accelerate's `PartialState` of this process: rank and world size from
    `accelerate launch` or `torchrun` (one process without a launcher). On a
    machine without CUDA it is told so, so that torchrun's processes form a
    gloo group on the CPU instead of each running alone."""
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes == 1 and _lone_cpu_launch():
        warnings.warn(
            "accelerate launch --cpu started this as the only process: without MPI "
            "(--mpirun_hostfile) accelerate runs a --cpu job in one process whatever "
            "--num_processes says, so this process captures every case. For N processes on "
            "one machine without CUDA use `accelerate launch --multi_gpu --num_processes N` "
            "(it starts N CPU processes there) or `torchrun --nproc_per_node N`.",
            stacklevel=2,
        )
    return state


def _lone_cpu_launch() -> bool:
    """`accelerate launch --cpu --num_processes N>1` without MPI: it sets a
    rendezvous address for N processes but starts one, with no rank."""
    env = os.environ
    rank_vars = ("RANK", "WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
    return (
        env.get("ACCELERATE_USE_CPU", "").lower() in ("true", "1")
        and "MASTER_PORT" in env
        and not any(name in env for name in rank_vars)
    )


def _clean_leftovers(out: Path) -> None:
    """Temp files of writes that were killed, and part lists of an earlier session."""
    for temp in out.glob(".*.tmp"):
        temp.unlink(missing_ok=True)
    parts = out / _PARTS
    if parts.is_dir():
        for part in parts.glob("*"):
            part.unlink(missing_ok=True)


def _source(options: CaptureOptions, model: Any) -> tuple[Any, Any, str]:
    """Tokenizer, config and model id, without loading weights."""
    if model is not None:
        return model.tokenizer, model.hf_model.config, model.model_id
    from transformers import AutoConfig, AutoTokenizer

    from ..models.loading import EMBEDDED_MODEL_ID, embedded_model_dir

    if options.model is None:
        where, model_id = embedded_model_dir(), EMBEDDED_MODEL_ID
    else:
        where, model_id = options.model, str(options.model)
    try:
        return AutoTokenizer.from_pretrained(where), AutoConfig.from_pretrained(where), model_id
    except OSError as error:
        raise BatchError(
            f"Cannot load the tokenizer and config of {where!s} ({error}). Pass --model a "
            "local model folder (config.json, tokenizer files, weights) or a hub id."
        ) from error


def _dtype_name(options: CaptureOptions, model: Any, config: Any) -> str:
    if model is not None:
        return str(model.dtype).replace("torch.", "")
    if options.dtype is not None:
        return options.dtype
    if options.model is None:
        return "float32"
    import torch

    dtype = getattr(config, "dtype", None)
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace("torch.", "")
    return dtype if dtype in ("bfloat16", "float16", "float32") else "float32"


def context_length(config: Any) -> int | None:
    """The model's context length from its config (None if it has none)."""
    from ..models.architectures import architecture_for, model_shape

    return model_shape(architecture_for(config), config, 0).context_length


def _existing_entry(
    path: Path, item: BatchCase, expected: dict
) -> tuple[RunEntry | None, Problem | None]:
    """The index entry of a run file already there, or why it cannot be kept."""
    try:
        run, digest = open_run_file(path)
    except RunFileError as error:
        return None, Problem(
            f"{error} Delete the file and run the capture again to recapture it.",
            item.id,
            str(path),
        )
    found = {key: run.model_info.get(key) for key in expected}
    if run.case != item.case.to_dict() or run.region_spec != item.regions.to_dict():
        stale = "its prompt or regions differ from the cases file"
    elif found != expected:
        stale = f"it was captured with {found}, not {expected}"
    else:
        return RunEntry(item.id, path.name, None, run.n_tokens, digest), None
    return None, Problem(
        f"{stale}. Delete it to recapture, or capture into another --out folder.",
        item.id,
        str(path),
    )


def _load(
    options: CaptureOptions,
    dtype: str,
    config: Any,
    todo: Sequence[BatchCase],
    state: Any,
    log: Callable[[str], None],
) -> Any:
    """Check the memory estimate, then load the model."""
    from ..models import memory
    from ..models.loading import load_model

    device_map = options.device_map
    if device_map is None and state.device.type == "cuda":
        device_map = {"": state.device.index or 0}  # one GPU per process under a launcher
    if options.memory_check:
        longest = max(todo, key=token_count)
        n_queries = max(1, len(longest.regions.queries))
        sizes = memory.model_sizes(config)
        budget = memory.memory_budget(device_map, options.max_memory, options.offload_folder)
        local = max(1, int(_env("LOCAL_WORLD_SIZE", 1)))
        if not budget.on_gpu and local > 1:  # processes of one node share its RAM
            budget = memory.Budget(
                {k: v // local for k, v in budget.devices.items()}, budget.offload, False
            )
        check = memory.check_fit(
            sizes,
            [token_count(c) for c in todo],
            budget,
            dtype=dtype,
            n_queries=n_queries,
            n_tracked=len(longest.regions.tracked_tokens),
            device_map=device_map,
        )
        if state.is_main_process:
            log(check.message())
        if not check.fits:
            raise memory.refuse(check)
    return load_model(
        options.model,
        dtype=dtype,
        device_map=device_map,
        max_memory=options.max_memory,
        offload_folder=options.offload_folder,
    )


def _env(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else default


def _capture_loop(
    model: Any,
    todo: Sequence[BatchCase],
    names: dict[str, str],
    out: Path,
    options: CaptureOptions,
    state: Any,
    entries: dict[str, RunEntry],
    problems: list[Problem],
) -> list[str]:
    from tqdm.auto import tqdm

    captured = []
    label = "capture" if state.num_processes == 1 else f"capture [{state.process_index}]"
    bar = tqdm(
        todo,
        desc=label,
        unit="case",
        position=state.process_index,
        disable=not options.progress,
    )
    for item in bar:
        try:
            run = model.capture(
                item.case,
                item.regions,
                top_k=options.top_k,
                progress=False,
                memory_check=options.memory_check,  # --skip-memory-check skips this one too
            )
            path = run.save(out / names[item.id])
        except Exception as error:  # one failing case must not lose the others
            problems.append(
                Problem(f"capture failed: {type(error).__name__}: {error}", item.id, "capture")
            )
            continue
        entries[item.id] = entry_for(run, item.id, path.name)
        captured.append(item.id)
    bar.close()
    return captured


def _provenance(cases_path: Path, expected: dict, options: CaptureOptions) -> dict:
    digest = hashlib.sha256(cases_path.read_bytes()).hexdigest()
    return {
        "cases_file": str(cases_path),
        "cases_sha256": digest,
        "model": expected,
        "max_tokens": options.max_tokens,
    }


def merge_index(
    out: Path,
    cases: Sequence[BatchCase],
    too_long: Sequence[str],
    n_parts: int,
    extra: dict,
) -> RunIndex:
    """Merge the part lists of every process into index.json, in the cases'
    order. Cases without a run are listed as pending, with the reason."""
    runs: dict[str, dict] = {}
    problems: list[dict] = []
    for rank in range(n_parts):
        path = out / _PARTS / f"part-{rank}.json"
        part = read_json(path, "part list", "A capture process did not finish; run it again.")
        runs.update(part.get("runs", {}))
        problems += part.get("problems", [])
    entries = [
        RunEntry(**{k: runs[c.id][k] for k in ("label", "file", "seed", "n_tokens", "sha256")})
        for c in cases
        if c.id in runs
    ]
    pending = [c.id for c in cases if c.id not in runs]
    index = RunIndex(
        tuple(entries),
        tuple(pending),
        {**extra, "problems": problems, "too_long": list(too_long), "n_processes": n_parts},
    )
    write_index(out, index)
    for rank in range(n_parts):
        (out / _PARTS / f"part-{rank}.json").unlink(missing_ok=True)
    return index


def _index_problems(index: RunIndex | None) -> list[Problem]:
    if index is None:
        return []
    return [Problem(**p) for p in index.extra.get("problems", [])]
