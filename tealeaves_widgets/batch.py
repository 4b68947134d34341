"""Batch runs: TeaLeaves' inputs -> a cases file -> a run directory.

- `prep`: `system_prompt.txt`, `regions.json` and `conversations.json` (each
  conversation `{"id", "user_message", "response", "user_regions"?,
  "response_regions"?}`) become a cases file, after every region and query
  position of every case has been rendered and resolved with the tokenizer.
  All problems are reported at once, each with its case and region.
- `capture`: one run file per case in an output directory, plus index.json
  (`tealeaves_widgets.rundir`). Resumable: a case whose run file exists and
  matches is skipped. Under `accelerate launch` or `torchrun` each process
  takes its shard of the cases (accelerate's `PartialState`), writes its own
  files and a part list; the main process waits for the others and merges
  the index.

A cases file::

    {"format": "tealeaves-cases", "format_version": 1,
     "regions": {regions.json spec shared by the cases},
     "cases": [{"id": str, "case": {Case fields}, "regions": {spec}?, "n_tokens": int}],
     "prepared_with": {...}}

A case's own "regions" replaces the shared spec (it carries the per-case
`user_regions`/`response_regions` overrides).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from .errors import RunFileError, TealeavesError
from .prompt import Case, RenderedPrompt, render_case
from .regions import (
    SECTION_KEYS,
    Region,
    RegionSpec,
    _checked_query,
    _checked_tracked,
    resolve_queries,
    resolve_regions,
    tracked_token_ids,
)
from .rundir import RunEntry, RunIndex, entry_for, run_file_name, write_index
from .runfile import open_run, write_atomic

CASES_FORMAT = "tealeaves-cases"
CASES_VERSION = 1
INPUT_NAMES = ("system_prompt.txt", "regions.json", "conversations.json")
"""TeaLeaves' input file names, looked for in the inputs folder."""
_CONVERSATION_KEYS = (
    "id",
    "user_message",
    "user",
    "response",
    "system",
    "messages",
    "user_regions",
    "response_regions",
)
_PARTS = ".parts"


class BatchError(TealeavesError):
    """Inputs of a batch step are invalid; the message lists every problem."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the inputs, located by file, case and region."""

    message: str
    case: str | None = None
    """Case id (None: the problem is not about one case)."""
    where: str | None = None
    """Region path ("system_prompt/rules"), query, "render", or a file."""

    def __str__(self) -> str:
        head = ", ".join(
            part
            for part in (
                f"case {self.case!r}" if self.case is not None else None,
                self.where,
            )
            if part
        )
        return f"{head}: {self.message}" if head else self.message


def problems_error(problems: Sequence[Problem], what: str) -> BatchError:
    """One error listing every problem; the same problem in several cases (a
    shared region that is not found) is one line naming those cases."""
    cases = {p.case for p in problems if p.case is not None}
    grouped: dict[tuple, list[str | None]] = {}
    for p in problems:
        grouped.setdefault((p.where, p.message), []).append(p.case)
    lines = "\n".join(
        f"  - {_group_line(where, message, labels)}" for (where, message), labels in grouped.items()
    )
    return BatchError(
        f"{what}: {len(problems)} problem(s)"
        + (f" in {len(cases)} case(s)" if cases else "")
        + f":\n{lines}\nFix them and run again; nothing was written."
    )


def _group_line(where: str | None, message: str, labels: list[str | None]) -> str:
    named = [label for label in dict.fromkeys(labels) if label is not None]
    if len(named) <= 1:
        return str(Problem(message, named[0] if named else None, where))
    shown = ", ".join(repr(label) for label in named[:5])
    more = f" and {len(named) - 5} more" if len(named) > 5 else ""
    return f"cases {shown}{more} ({len(named)}), {where}: {message}"


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class BatchCase:
    """One case of a cases file: its id, prompt and region spec."""

    id: str
    case: Case
    regions: RegionSpec
    n_tokens: int | None = None
    """Tokens of the rendered prompt with the tokenizer `prep` used (informational)."""


@dataclass(frozen=True)
class CasesFile:
    """The cases of a batch, in order."""

    cases: tuple[BatchCase, ...]
    regions: RegionSpec = RegionSpec()
    """The spec most cases share (a case's own spec may replace it)."""
    prepared_with: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        shared = self.regions.to_dict()
        entries = []
        for item in self.cases:
            entry: dict[str, Any] = {"id": item.id, "case": item.case.to_dict()}
            spec = item.regions.to_dict()
            if spec != shared:
                entry["regions"] = spec
            if item.n_tokens is not None:
                entry["n_tokens"] = item.n_tokens
            entries.append(entry)
        return {
            "format": CASES_FORMAT,
            "format_version": CASES_VERSION,
            "prepared_with": self.prepared_with,
            "regions": shared,
            "cases": entries,
        }

    def save(self, path: str | PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"
        write_atomic(path, text.encode())
        return path


def read_cases(path: str | PathLike[str]) -> CasesFile:
    """Read a cases file written by `prep`; every problem is reported at once,
    with the file and the case."""
    path = Path(path).expanduser()
    data = _read_json(path, "cases file", "Write it with `tealeaves-widgets prep`.")
    if not isinstance(data, dict) or data.get("format") != CASES_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise BatchError(
            f"{path} is not a tealeaves cases file: expected format {CASES_FORMAT!r}, found "
            f"{found!r}. Make one with `tealeaves-widgets prep INPUTS -o {path.name}`."
        )
    if data.get("format_version") != CASES_VERSION:
        raise BatchError(
            f"{path} has format_version {data.get('format_version')!r}; this version reads "
            f"{CASES_VERSION}. Run `tealeaves-widgets prep` again."
        )
    problems: list[Problem] = []
    try:
        shared = RegionSpec.from_dict(data.get("regions", {}))
    except TealeavesError as error:
        raise BatchError(f"{path}: the shared 'regions' are invalid: {error}") from error
    entries = data.get("cases")
    if not isinstance(entries, list) or not entries:
        raise BatchError(f"{path}: 'cases' must be a non-empty list, got {entries!r:.80}.")
    cases = []
    for i, entry in enumerate(entries):
        label = entry.get("id") if isinstance(entry, dict) else None
        label = str(label) if label is not None else f"#{i}"
        try:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise TealeavesError(
                    f"each case must be an object with a str 'id' and a 'case', got {entry!r:.80}"
                )
            spec = RegionSpec.from_dict(entry["regions"]) if "regions" in entry else shared
            case = Case.from_dict(entry.get("case") or {})
            cases.append(BatchCase(entry["id"], case, spec, entry.get("n_tokens")))
        except (TealeavesError, TypeError) as error:
            problems.append(Problem(str(error), label, f"{path.name} cases[{i}]"))
    problems += _duplicate_ids([c.id for c in cases], path.name)
    if problems:
        raise problems_error(problems, f"{path} is damaged")
    return CasesFile(tuple(cases), shared, data.get("prepared_with") or {})


def _duplicate_ids(ids: Sequence[str], where: str) -> list[Problem]:
    seen: set[str] = set()
    repeated = [i for i in ids if i in seen or seen.add(i)]
    return [
        Problem("the id is used by several cases; give each case its own id", i, where)
        for i in dict.fromkeys(repeated)
    ]


def _read_json(path: Path, what: str, hint: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BatchError(f"Expected the {what} at {path}, but nothing is there. {hint}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise BatchError(f"Cannot read the {what} {path}: {error}.") from error
    except json.JSONDecodeError as error:
        raise BatchError(
            f"The {what} {path} is not valid JSON: {error.msg} at line {error.lineno}, column "
            f"{error.colno} (is it truncated?). {hint}"
        ) from error


# ---------------------------------------------------------------- prep


@dataclass(frozen=True)
class PrepInputs:
    """Paths of TeaLeaves' three inputs."""

    system_prompt: Path
    regions: Path
    conversations: Path

    @classmethod
    def in_folder(cls, folder: str | PathLike[str], **overrides: Any) -> PrepInputs:
        """The standard names inside `folder`, unless a path is given explicitly."""
        base = Path(folder) if folder is not None else Path(".")
        paths = dict(zip(("system_prompt", "regions", "conversations"), INPUT_NAMES, strict=True))
        return cls(
            **{
                key: Path(overrides[key]) if overrides.get(key) else base / name
                for key, name in paths.items()
            }
        )


def prep(
    inputs: PrepInputs, tokenizer: Any, *, context_length: int | None = None, source: str = ""
) -> CasesFile:
    """TeaLeaves' inputs -> a validated `CasesFile`, or `BatchError` listing
    every problem (schema, rendering, regions, queries, tracked tokens, length)."""
    problems: list[Problem] = []
    system = _read_text(inputs.system_prompt, problems)
    raw_spec = _read_json_into(inputs.regions, "regions file", problems)
    raw_cases = _read_json_into(inputs.conversations, "conversations file", problems)
    if problems:
        raise problems_error(problems, "prep could not read its inputs")
    shared = _spec_from_raw(raw_spec, inputs.regions.name, problems)
    cases = _cases_from_raw(raw_cases, system, shared, inputs.conversations.name, problems)
    checked = validate_cases(cases, tokenizer, context_length, problems)
    if problems:
        raise problems_error(problems, "prep found problems in the inputs")
    return CasesFile(
        tuple(checked),
        shared,
        {"tokenizer": source, "inputs": {k: str(v) for k, v in vars(inputs).items()}},
    )


def _read_text(path: Path, problems: list[Problem]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(f"cannot read it ({error}); check the path", where=str(path)))
        return ""


def _read_json_into(path: Path, what: str, problems: list[Problem]) -> Any:
    try:
        return _read_json(path, what, "")
    except BatchError as error:
        problems.append(Problem(str(error).strip(), where=str(path)))
        return None


def _spec_from_raw(raw: Any, where: str, problems: list[Problem]) -> RegionSpec:
    """The shared spec; each bad region, query or tracked token is its own problem
    (left out, so the cases can still be checked against the rest)."""
    if not isinstance(raw, Mapping):
        problems.append(Problem(f"must be a JSON object, got {type(raw).__name__}", where=where))
        return RegionSpec()
    raw = dict(raw)
    queries = raw.get("query_positions", [])
    if isinstance(queries, Mapping):  # TeaLeaves' {"name": query} form
        raw["query_positions"] = [_named_query(name, q) for name, q in queries.items()]
    unknown = sorted(set(raw) - {*SECTION_KEYS, "query_positions", "tracked_tokens"})
    for key in unknown:
        problems.append(Problem(f"unknown key {key!r}", where=where))
    sections = {}
    for key, attr in SECTION_KEYS.items():
        sections[attr] = _regions_from_raw(
            _section_list(raw, key, where, problems), key, where, problems
        )
    return RegionSpec(
        **sections,
        queries=_checked_items(raw, "query_positions", _checked_query, where, problems),
        tracked_tokens=_checked_items(
            raw, "tracked_tokens", lambda t: _checked_tracked([t])[0], where, problems
        ),
    )


def _named_query(name: str, query: Any) -> Any:
    if isinstance(query, Mapping) and "name" not in query:
        return {**query, "name": name}
    return query  # "final" / "last_token" / an index keep their own names


def _section_list(raw: Mapping, key: str, where: str, problems: list[Problem]) -> list:
    section = raw.get(key, {"regions": []})
    if not isinstance(section, Mapping) or not isinstance(section.get("regions", []), list):
        problems.append(
            Problem(f'must be {{"regions": [...]}}, got {section!r:.80}', where=f"{where} {key}")
        )
        return []
    return list(section.get("regions", []))


def _regions_from_raw(
    items: list, key: str, where: str, problems: list[Problem], case: str | None = None
) -> tuple[Region, ...]:
    regions = []
    for item in items:
        name = item.get("name", "?") if isinstance(item, Mapping) else "?"
        try:
            regions.append(Region.from_dict(item, key))
        except TealeavesError as error:
            problems.append(Problem(str(error), case, f"region {key}/{name} ({where})"))
    return tuple(regions)


def _checked_items(
    raw: Mapping, key: str, check: Callable, where: str, problems: list[Problem]
) -> tuple:
    items = raw.get(key, [])
    if not isinstance(items, list):
        problems.append(Problem(f"must be a list, got {items!r:.80}", where=f"{where} {key}"))
        return ()
    out = []
    for item in items:
        try:
            out.append(check(item))
        except TealeavesError as error:
            problems.append(Problem(str(error), where=f"{where} {key}"))
    return tuple(out)


def _cases_from_raw(
    raw: Any, system: str, shared: RegionSpec, where: str, problems: list[Problem]
) -> list[BatchCase]:
    if isinstance(raw, Mapping) and "conversations" in raw:
        raw = raw["conversations"]
    if not isinstance(raw, list) or not raw:
        problems.append(
            Problem(
                f"must be a non-empty JSON list of conversations, got {type(raw).__name__}",
                where=where,
            )
        )
        return []
    cases = []
    for i, entry in enumerate(raw):
        label = str(entry.get("id", f"#{i}")) if isinstance(entry, Mapping) else f"#{i}"
        before = len(problems)
        item = _case_from_conversation(entry, system, shared, label, f"{where}[{i}]", problems)
        if item is not None and len(problems) == before:
            cases.append(item)
    problems += _duplicate_ids([c.id for c in cases], where)
    return cases


def _case_from_conversation(
    entry: Any, system: str, shared: RegionSpec, label: str, where: str, problems: list[Problem]
) -> BatchCase | None:
    if not isinstance(entry, Mapping):
        problems.append(Problem(f"must be an object, got {type(entry).__name__}", label, where))
        return None
    unknown = sorted(set(entry) - set(_CONVERSATION_KEYS))
    if unknown:
        problems.append(
            Problem(f"unknown key(s) {unknown}; allowed: {list(_CONVERSATION_KEYS)}", label, where)
        )
    if not isinstance(entry.get("id"), (str, int)) or isinstance(entry.get("id"), bool):
        problems.append(Problem("needs an 'id' (a string)", label, where))
    spec = shared
    for key, section, attr in (
        ("user_regions", "user_message", "user"),
        ("response_regions", "response", "response"),
    ):
        if key in entry:
            if not isinstance(entry[key], list):
                problems.append(Problem(f"{key} must be a list of regions", label, where))
                continue
            own = _regions_from_raw(entry[key], section, where, problems, case=label)
            spec = dataclasses.replace(spec, **{attr: own})
    try:
        if "messages" in entry:
            case = Case(messages=entry["messages"], name=label)
        else:
            user = entry.get("user_message", entry.get("user"))
            case = Case(
                system=entry.get("system", system) or None,
                user=user,
                response=entry.get("response") or None,
                name=label,
            )
    except TealeavesError as error:
        problems.append(Problem(str(error), label, where))
        return None
    return BatchCase(label, case, spec)


def validate_cases(
    cases: Sequence[BatchCase],
    tokenizer: Any,
    context_length: int | None,
    problems: list[Problem],
) -> list[BatchCase]:
    """Render each case and resolve each of its regions, queries and tracked
    tokens on its own, so one bad region does not hide another. Returns the
    cases with their token counts; problems are appended."""
    out = []
    tracked_done: set[tuple] = set()
    for item in cases:
        try:
            prompt = render_case(item.case, tokenizer)
        except TealeavesError as error:
            problems.append(Problem(str(error), item.id, "render"))
            continue
        n_tokens = len(prompt.token_ids)
        if context_length is not None and n_tokens > context_length:
            problems.append(
                Problem(
                    f"the prompt has {n_tokens} tokens, more than the model's context of "
                    f"{context_length}; shorten it",
                    item.id,
                    "length",
                )
            )
        problems += check_regions(prompt, item.regions, item.id)
        if item.regions.tracked_tokens and item.regions.tracked_tokens not in tracked_done:
            tracked_done.add(item.regions.tracked_tokens)
            try:
                tracked_token_ids(item.regions.tracked_tokens, tokenizer)
            except TealeavesError as error:
                problems.append(Problem(str(error), item.id, "tracked_tokens"))
        out.append(dataclasses.replace(item, n_tokens=n_tokens))
    return out


def check_regions(prompt: RenderedPrompt, spec: RegionSpec, case: str | None) -> list[Problem]:
    """Every region and query of `spec` resolved alone on `prompt` (a region's
    children inside their parent only), then all together (overlaps, names)."""
    problems: list[Problem] = []
    for key, attr in SECTION_KEYS.items():
        for region in getattr(spec, attr):
            _check_region(prompt, attr, key, region, (), case, problems)
    if not problems:
        try:
            resolve_regions(prompt, dataclasses.replace(spec, queries=()))
        except TealeavesError as error:
            problems.append(Problem(str(error), case, "regions"))
    for query in spec.queries:
        try:
            resolve_queries(prompt, [query])
        except TealeavesError as error:
            problems.append(Problem(str(error), case, f"query {_query_label(query)}"))
    if len(problems) == 0 and spec.queries:
        try:
            resolve_queries(prompt, spec.queries)
        except TealeavesError as error:
            problems.append(Problem(str(error), case, "query_positions"))
    return problems


def _check_region(
    prompt: RenderedPrompt,
    attr: str,
    key: str,
    region: Region,
    ancestors: tuple[Region, ...],
    case: str | None,
    problems: list[Problem],
) -> None:
    bare = dataclasses.replace(region, children=())
    nested = bare
    for parent in reversed(ancestors):
        nested = dataclasses.replace(parent, children=(nested,))
    path = "/".join([key, *(a.name for a in ancestors), region.name])
    try:
        resolve_regions(prompt, RegionSpec(**{attr: (nested,)}))
    except TealeavesError as error:
        problems.append(Problem(str(error), case, f"region {path}"))
        return
    for child in region.children:
        _check_region(prompt, attr, key, child, (*ancestors, bare), case, problems)


def _query_label(query: Any) -> str:
    if isinstance(query, Mapping):
        return repr(query.get("name") or query.get("after_text") or query.get("at_text"))
    return repr(query)


# ---------------------------------------------------------------- capture


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
    """
    state = state or process_state()
    cases_path, out = Path(cases_path), Path(out)
    batch = read_cases(cases_path)
    out.mkdir(parents=True, exist_ok=True)
    parts = out / _PARTS
    if state.is_main_process:
        _clean_leftovers(out)
    state.wait_for_everyone()  # nobody writes before the leftovers are gone

    tokenizer, config, model_id = _source(options, model)
    dtype = _dtype_name(options, model, config)
    problems: list[Problem] = []
    checked = validate_cases(batch.cases, tokenizer, _context_length(config), problems)
    if problems:
        raise problems_error(problems, f"{cases_path} does not fit the model's tokenizer")
    names = {c.id: run_file_name(i, c.id) for i, c in enumerate(checked)}
    too_long = [
        c.id for c in checked if options.max_tokens is not None and c.n_tokens > options.max_tokens
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
            out, checked, too_long, state.num_processes, _provenance(cases_path, expected, options)
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

    from .loading import EMBEDDED_MODEL_ID, embedded_model_dir

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


def _context_length(config: Any) -> int | None:
    from .architectures import architecture_for, model_shape

    return model_shape(architecture_for(config), config, 0).context_length


def _existing_entry(
    path: Path, item: BatchCase, expected: dict
) -> tuple[RunEntry | None, Problem | None]:
    """The index entry of a run file already there, or why it cannot be kept."""
    try:
        run = open_run(path)
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
        return entry_for(run, item.id, path.name), None
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
    from . import memory
    from .loading import load_model

    device_map = options.device_map
    if device_map is None and state.device.type == "cuda":
        device_map = {"": state.device.index or 0}  # one GPU per process under a launcher
    if options.memory_check:
        longest = max(todo, key=lambda c: c.n_tokens)
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
            [c.n_tokens for c in todo],
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
    import os

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
            run = model.capture(item.case, item.regions, top_k=options.top_k, progress=False)
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
        part = _read_json(path, "part list", "A capture process did not finish; run it again.")
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
