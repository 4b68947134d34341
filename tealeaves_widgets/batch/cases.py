"""The cases file of a batch, the problems found in inputs, and the checks
every case passes before anything is written or captured.

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
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from ..errors import BatchError, TealeavesError
from ..io import versioned
from ..io.versioned import FileKind, read_versioned, versioned_header, write_atomic
from ..prompt.case import Case
from ..prompt.regions import SECTION_KEYS, Region, RegionSpec
from ..prompt.render import RenderedPrompt, render_case
from ..prompt.resolve import resolve_queries, resolve_regions, tracked_token_ids

CASES_FILE = FileKind(
    "tealeaves-cases",
    1,
    "cases file",
    "Make it (again) with `tealeaves-widgets prep INPUTS -o FILE`.",
    BatchError,
)
"""The cases file's header and its version."""
CASES_FORMAT, CASES_VERSION = CASES_FILE.format, CASES_FILE.version


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


@dataclass(frozen=True)
class BatchCase:
    """One case of a cases file: its id, prompt and region spec."""

    id: str
    case: Case
    regions: RegionSpec
    n_tokens: int | None = None
    """Tokens of the rendered prompt with the tokenizer `prep` used (informational)."""


def token_count(item: BatchCase) -> int:
    """`item.n_tokens`, which `validate_cases` sets (a case read from a file may lack it)."""
    if item.n_tokens is None:
        raise BatchError(
            f"Case {item.id!r} has no token count; expected one counted by validate_cases. "
            "Pass the cases through validate_cases (prep does) before planning with them."
        )
    return item.n_tokens


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
            **versioned_header(CASES_FILE),
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
    data = read_versioned(path, CASES_FILE)
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
                raise BatchError(
                    f"each case must be an object with a str 'id' and a 'case', got {entry!r:.80}"
                )
            spec = RegionSpec.from_dict(entry["regions"]) if "regions" in entry else shared
            case = Case.from_dict(entry.get("case") or {})
            cases.append(BatchCase(entry["id"], case, spec, entry.get("n_tokens")))
        except (TealeavesError, TypeError) as error:
            problems.append(Problem(str(error), label, f"{path.name} cases[{i}]"))
    problems += duplicate_ids([c.id for c in cases], path.name)
    if problems:
        raise problems_error(problems, f"{path} is damaged")
    return CasesFile(tuple(cases), shared, data.get("prepared_with") or {})


def duplicate_ids(ids: Sequence[str], where: str) -> list[Problem]:
    seen: set[str] = set()
    repeated = [i for i in ids if i in seen or seen.add(i)]
    return [
        Problem("the id is used by several cases; give each case its own id", i, where)
        for i in dict.fromkeys(repeated)
    ]


def read_json(path: Path, what: str, hint: str = "") -> Any:
    """A JSON input file of a batch step, or `BatchError` saying what is wrong."""
    return versioned.read_json(path, versioned.FileKind("", 0, what, hint, BatchError))


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
        resolve_regions(prompt, _spec_of_one(attr, nested))
    except TealeavesError as error:
        problems.append(Problem(str(error), case, f"region {path}"))
        return
    for child in region.children:
        _check_region(prompt, attr, key, child, (*ancestors, bare), case, problems)


def _spec_of_one(section: str, region: Region) -> RegionSpec:
    """A spec whose one region is `region`, in `section` ("system", "user" or "response")."""
    return RegionSpec(
        system=(region,) if section == "system" else (),
        user=(region,) if section == "user" else (),
        response=(region,) if section == "response" else (),
    )


def _query_label(query: Any) -> str:
    if isinstance(query, Mapping):
        return repr(query.get("name") or query.get("after_text") or query.get("at_text"))
    return repr(query)
