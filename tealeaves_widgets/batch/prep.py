"""`prep`: TeaLeaves' inputs -> a validated cases file.

`system_prompt.txt`, `regions.json` and `conversations.json` (each
conversation `{"id", "user_message", "response", "user_regions"?,
"response_regions"?}`) become a cases file, after every region and query
position of every case has been rendered and resolved with the tokenizer.
All problems are reported at once, each with its case and region.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from ..errors import BatchError, TealeavesError
from ..prompt.case import Case
from ..prompt.regions import (
    SECTION_KEYS,
    Region,
    RegionSpec,
    check_query,
    check_tracked,
    named_queries,
)
from .cases import (
    BatchCase,
    CasesFile,
    Problem,
    duplicate_ids,
    problems_error,
    read_json,
    validate_cases,
)

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
        return read_json(path, what)
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
    if isinstance(queries, Mapping):  # TeaLeaves' {"name": query} form, as RegionSpec reads it
        try:
            raw["query_positions"] = named_queries(queries)
        except TealeavesError as error:
            problems.append(Problem(str(error), where=f"{where} query_positions"))
            raw["query_positions"] = []
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
        queries=_checked_items(raw, "query_positions", check_query, where, problems),
        tracked_tokens=_tracked_from_raw(raw, where, problems),
    )


def _tracked_from_raw(raw: Mapping, where: str, problems: list[Problem]) -> tuple:
    """Each tracked token checked alone, then the list for repeats (left out)."""
    tracked = _checked_items(
        raw, "tracked_tokens", lambda t: check_tracked([t])[0], where, problems
    )
    try:
        return check_tracked(tracked)
    except TealeavesError as error:
        problems.append(Problem(str(error), where=f"{where} tracked_tokens"))
        return tuple(dict.fromkeys(tracked))


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
    problems += duplicate_ids([c.id for c in cases], where)
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
