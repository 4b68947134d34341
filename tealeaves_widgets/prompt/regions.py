"""Named regions of a rendered prompt, and the tokens each of them owns.

Regions follow TeaLeaves' `regions.json` schema::

    {
      "system_prompt": {"regions": [REGION, ...]},
      "user_message":  {"regions": [...]},
      "response":      {"regions": [...]},
      "query_positions": [QUERY, ...] or TeaLeaves' {"name": QUERY, ...},
      "tracked_tokens": [" Yes", " No", 1234]
    }

    REGION = {"name": str,
              at most one start key: "start_marker" (text) | "start_pattern" (regex)
                                     | "start_char" (int),
              at most one end key:   "end_marker" | "end_pattern" | "end_char",
              or instead of both:    "marker" (the region is that text)
                                     | "pattern" (the region is the regex match),
              "include_end": bool (default false), "description": str, "color": str,
              "regions": [REGION, ...]}   (at most 32 levels of regions in regions)

    QUERY = "final" | "last_token" | token index (int)
          | {"position": "final" | "last_token" | int, "name": str}
          | {"after_text" | "at_text": str, "section"?: "system" | "user" | "response"
             | "turn<i>_<role>", "occurrence"?: int, "name"?: str}

A query is named by its "name" (the key in the {"name": QUERY} form), else
"final", "last_token", "pos:<i>", or "after:<text>" / "at:<text>" (with
"#<occurrence>" and "@<section>" when given). Every list here must be a JSON
list (a lone string is refused, not split into characters).

How these are located in a rendered prompt, and which tokens each region
owns: `tealeaves_widgets.prompt.resolve`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from ..errors import QueryNotFoundError, RegionError, TealeavesError
from .checks import as_items, brief, check_encodable, read_json_file

SECTION_KEYS = {"system_prompt": "system", "user_message": "user", "response": "response"}
"""regions.json section key -> `RenderedPrompt.sections` name."""
SPEC_KEYS = (*SECTION_KEYS, "query_positions", "tracked_tokens")
START_KEYS = ("start_marker", "start_pattern", "start_char")
END_KEYS = ("end_marker", "end_pattern", "end_char")
WHOLE_KEYS = ("marker", "pattern")
REGION_KEYS = ("name", *START_KEYS, *END_KEYS, *WHOLE_KEYS, "include_end")
REGION_KEYS_ALL = (*REGION_KEYS, "description", "color", "regions")
RESERVED_NAMES = ("system", "user", "response", "template")
MAX_REGION_DEPTH = 32
"""Levels of regions nested inside regions (a top-level region is level 1);
deeper specs are refused before they can exhaust the stack."""
_TURN_NAME = re.compile(r"turn\d+_\w+")


# ---------------------------------------------------------------- Region


@dataclass(frozen=True)
class Region:
    """One user-defined region: how to find it, and regions nested inside it.

    The locator fields mirror the regions.json keys (see the module docstring):
    at most one `start_*` and one `end_*`, or `marker`/`pattern` alone. Build
    with `Region.between`, `Region.text`, `Region.pattern`, `Region.chars` or
    `Region.from_dict`.
    """

    name: str
    start_marker: str | None = None
    end_marker: str | None = None
    start_pattern: str | None = None
    end_pattern: str | None = None
    start_char: int | None = None
    end_char: int | None = None
    marker: str | None = None
    pattern: str | None = None
    include_end: bool = False
    """Whether the end marker/pattern itself belongs to the region."""
    children: tuple[Region, ...] = ()
    """Nested regions, located inside this region's span."""
    description: str | None = None
    color: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "children", _children(self.name, self.children))
        _check_locators(self)
        for child in self.children:
            if not isinstance(child, Region):
                raise RegionError(
                    f"Region {self.name!r}: children must be Region objects, got "
                    f"{type(child).__name__}. Build them with Region.between/text/pattern/chars."
                )
        if _depth(self) > MAX_REGION_DEPTH:
            raise RegionError(
                f"Region {self.name!r} has regions nested more than {MAX_REGION_DEPTH} levels "
                f"deep inside it. Expected at most {MAX_REGION_DEPTH} levels; flatten the "
                "spec: make deep regions siblings instead of children."
            )

    @classmethod
    def between(
        cls,
        name: str,
        start: str | None = None,
        end: str | None = None,
        *,
        regex: bool = False,
        include_end: bool = False,
        children: Sequence[Region] = (),
        description: str | None = None,
        color: str | None = None,
    ) -> Region:
        """From the `start` text up to the `end` text (regexes if `regex`)."""
        return cls(
            name,
            start_marker=None if regex else start,
            end_marker=None if regex else end,
            start_pattern=start if regex else None,
            end_pattern=end if regex else None,
            include_end=include_end,
            children=_children(name, children),
            description=description,
            color=color,
        )

    @classmethod
    def text(
        cls,
        name: str,
        text: str,
        *,
        children: Sequence[Region] = (),
        description: str | None = None,
        color: str | None = None,
    ) -> Region:
        """Exactly `text` (its first occurrence in the parent)."""
        return cls(
            name,
            marker=text,
            children=_children(name, children),
            description=description,
            color=color,
        )

    @classmethod
    def pattern_match(
        cls,
        name: str,
        regex: str,
        *,
        children: Sequence[Region] = (),
        description: str | None = None,
        color: str | None = None,
    ) -> Region:
        """The first match of `regex` in the parent (also reachable as `Region.pattern`)."""
        return cls(
            name,
            pattern=regex,
            children=_children(name, children),
            description=description,
            color=color,
        )

    @classmethod
    def chars(
        cls,
        name: str,
        start: int | None = None,
        end: int | None = None,
        *,
        children: Sequence[Region] = (),
        description: str | None = None,
        color: str | None = None,
    ) -> Region:
        """Characters [start, end) counted from the parent's start (None: the parent's edge)."""
        return cls(
            name,
            start_char=start,
            end_char=end,
            children=_children(name, children),
            description=description,
            color=color,
        )

    def to_dict(self) -> dict:
        """This region in the regions.json schema."""
        out: dict[str, Any] = {"name": self.name}
        for key in REGION_KEYS[1:-1]:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.include_end:
            out["include_end"] = True
        for key in ("description", "color"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.children:
            out["regions"] = [child.to_dict() for child in self.children]
        return out

    @classmethod
    def from_dict(cls, data: Mapping, path: str = "") -> Region:
        """Build from a regions.json REGION dict; `path` names its parents in errors."""
        return _region_from_dict(data, path, 1)


Region.pattern = Region.pattern_match  # type: ignore[method-assign,assignment]
"""`Region.pattern("name", r"...")`: the builder, shadowing the field default on the class."""


def _region_from_dict(data: Any, path: str, depth: int) -> Region:
    """`Region.from_dict` at nesting level `depth`, refused past `MAX_REGION_DEPTH`
    before it recurses any further."""
    name = data.get("name", "?") if isinstance(data, Mapping) else "?"
    where = f"{path}/{name if isinstance(name, str) else brief(name)}".lstrip("/")
    if not isinstance(data, Mapping):
        raise RegionError(
            f"Region at {path or 'top level'} must be a JSON object with a 'name', got "
            f"{type(data).__name__} {brief(data)}."
        )
    if depth > MAX_REGION_DEPTH:
        raise RegionError(
            f"Region {where[:200]!r} is nested more than {MAX_REGION_DEPTH} levels deep (regions "
            f"inside regions). Expected at most {MAX_REGION_DEPTH} levels. Flatten the spec: "
            "make deep regions siblings instead of children."
        )
    unknown = sorted(set(data) - set(REGION_KEYS_ALL))
    if unknown:
        raise RegionError(
            f"Region {where!r} has unknown key(s) {brief(unknown)}; allowed keys are "
            f"{list(REGION_KEYS_ALL)}."
        )
    children = data.get("regions", [])
    if not isinstance(children, list):
        raise RegionError(
            f"Region {where!r}: 'regions' must be a list of regions, got "
            f"{type(children).__name__} {brief(children)}. Wrap it in a list: "
            '"regions": [{...}].'
        )
    fields = {k: v for k, v in data.items() if k != "regions"}
    kids = tuple(_region_from_dict(child, where, depth + 1) for child in children)
    try:
        return Region(**fields, children=kids)
    except TypeError as error:  # e.g. "name" missing
        raise RegionError(f"Region at {where!r} is incomplete: {error}.") from error
    except RegionError as error:
        raise type(error)(f"{where}: {error}") from error


def _depth(region: Region) -> int:
    """Levels of regions in `region`, itself included (iterative: no recursion)."""
    deepest, stack = 0, [(region, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in node.children)
    return deepest


def _children(name: str, children: Any) -> tuple[Region, ...]:
    """A region's children as a tuple; a lone Region or a str is refused, not iterated."""
    return as_items(children, f"Region {name!r}: children", "children=[Region(...)]", RegionError)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise RegionError(f"A region name must be a non-empty string, got {name!r}.")
    if name in RESERVED_NAMES or _TURN_NAME.fullmatch(name):
        raise RegionError(
            f"Region name {name!r} is reserved for a built-in region (reserved: "
            f"{list(RESERVED_NAMES)} and 'turn<i>_<role>'). Choose another name."
        )


def _check_locators(region: Region) -> None:
    """At most one start key and one end key, or one whole-match key alone."""
    given = {k: getattr(region, k) for k in (*START_KEYS, *END_KEYS, *WHOLE_KEYS)}
    given = {k: v for k, v in given.items() if v is not None}
    starts = [k for k in given if k in START_KEYS]
    ends = [k for k in given if k in END_KEYS]
    wholes = [k for k in given if k in WHOLE_KEYS]
    name = region.name
    if not given:
        raise RegionError(
            f"Region {name!r} says nowhere where it is; give start_marker/end_marker, "
            f"start_pattern/end_pattern, start_char/end_char, marker or pattern."
        )
    if len(starts) > 1 or len(ends) > 1 or (wholes and len(given) > 1):
        raise RegionError(
            f"Region {name!r} has conflicting locators {sorted(given)}; give at most one "
            "start key and one end key, or 'marker'/'pattern' alone."
        )
    for key, value in given.items():
        _check_locator_value(name, key, value)
    if not isinstance(region.include_end, bool):
        raise RegionError(f"Region {name!r}: include_end must be true or false.")
    if region.include_end and not ({"end_marker", "end_pattern"} & set(given)):
        raise RegionError(
            f"Region {name!r} sets include_end but has no end_marker or end_pattern to "
            "include. Remove include_end or add an end marker."
        )


def _check_locator_value(name: str, key: str, value: Any) -> None:
    if key.endswith("char"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RegionError(
                f"Region {name!r}: {key} must be a non-negative int (characters from the "
                f"parent's start), got {value!r}."
            )
        return
    if not isinstance(value, str) or not value:
        raise RegionError(f"Region {name!r}: {key} must be a non-empty string, got {value!r}.")
    if key.endswith("pattern"):
        try:
            compile_pattern(value)
        except regex.error as error:
            raise RegionError(
                f"Region {name!r}: {key} {value!r} is not a valid Python regex ({error}). Fix "
                "the pattern, or use a marker for plain text."
            ) from error


def compile_pattern(pattern: str) -> regex.Pattern:
    """A region pattern compiled by the engine that also searches it: `regex`
    (Python's re syntax; its searches take a time limit, re's do not)."""
    return regex.compile(pattern)


# ---------------------------------------------------------------- RegionSpec


@dataclass(frozen=True)
class RegionSpec:
    """Regions per section, query positions and tracked tokens (regions.json)."""

    system: tuple[Region, ...] = ()
    """Regions inside the system message."""
    user: tuple[Region, ...] = ()
    """Regions inside the (last) user message."""
    response: tuple[Region, ...] = ()
    """Regions inside the response."""
    queries: tuple[str | int | dict, ...] = ()
    """Query positions, in order: "final", "last_token", a token index, a named
    position {"position": one of those, "name": str}, or a text query
    {"after_text"|"at_text": str, "section"?: str, "occurrence"?: int, "name"?: str}.
    TeaLeaves' {"name": query} object is accepted too (kept as named entries)."""
    tracked_tokens: tuple[str | int, ...] = ()
    """Tokens whose rank/probability the lens tracks: text or token ids."""

    def __post_init__(self) -> None:
        for key in ("system", "user", "response"):
            regions = as_items(
                getattr(self, key), f"RegionSpec.{key}", f"{key}=[Region(...)]", RegionError
            )
            for region in regions:
                if not isinstance(region, Region):
                    raise RegionError(
                        f"RegionSpec.{key} must hold Region objects, got "
                        f"{type(region).__name__}. Use Region.between/text/pattern/chars."
                    )
            object.__setattr__(self, key, regions)
        queries = (
            named_queries(self.queries)
            if isinstance(self.queries, Mapping)
            else as_items(
                self.queries,
                "RegionSpec.queries",
                f"queries=[{brief(self.queries)}]",
                QueryNotFoundError,
            )
        )
        object.__setattr__(self, "queries", tuple(check_query(q) for q in queries))
        object.__setattr__(self, "tracked_tokens", check_tracked(self.tracked_tokens))

    def to_dict(self) -> dict:
        """The spec in the regions.json schema (empty parts left out)."""
        out: dict[str, Any] = {}
        for key, section in SECTION_KEYS.items():
            regions = getattr(self, section)
            if regions:
                out[key] = {"regions": [region.to_dict() for region in regions]}
        if self.queries:
            out["query_positions"] = [dict(q) if isinstance(q, dict) else q for q in self.queries]
        if self.tracked_tokens:
            out["tracked_tokens"] = list(self.tracked_tokens)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> RegionSpec:
        """Build from a regions.json dict."""
        if not isinstance(data, Mapping):
            raise RegionError(
                f"A regions spec must be a JSON object with keys {list(SPEC_KEYS)}, got "
                f"{type(data).__name__}."
            )
        unknown = sorted(set(data) - set(SPEC_KEYS))
        if unknown:
            raise RegionError(
                f"Unknown key(s) {unknown} in the regions spec; allowed keys are {list(SPEC_KEYS)}."
            )
        sections = {section: _section_regions(data, key) for key, section in SECTION_KEYS.items()}
        return cls(
            **sections,
            queries=_queries_of(data),
            tracked_tokens=_list_of(data, "tracked_tokens", RegionError),
        )


def _section_regions(data: Mapping, key: str) -> tuple[Region, ...]:
    section = data.get(key, {"regions": []})
    if not isinstance(section, Mapping) or set(section) != {"regions"}:
        got = sorted(section) if isinstance(section, Mapping) else type(section).__name__
        raise RegionError(
            f"{key!r} must be an object with exactly the key 'regions' (a list of regions), "
            f'got {got}. Write "{key}": {{"regions": [...]}}.'
        )
    regions = section["regions"]
    if not isinstance(regions, list):
        raise RegionError(
            f"{key}.regions must be a list of regions, got {type(regions).__name__} "
            f'{brief(regions)}. Wrap it in a list: "regions": [{{...}}].'
        )
    return tuple(Region.from_dict(region, key) for region in regions)


def _queries_of(data: Mapping) -> tuple:
    """query_positions: a list, or TeaLeaves' {"name": query} object."""
    value = data.get("query_positions", [])
    if isinstance(value, Mapping):
        return tuple(named_queries(value))
    return _list_of(data, "query_positions", QueryNotFoundError)


def _list_of(data: Mapping, key: str, error: type[TealeavesError]) -> tuple:
    value = data.get(key, [])
    if not isinstance(value, list):
        example = json.dumps(value) if isinstance(value, (str, int, float)) else "..."
        raise error(
            f"{key!r} must be a list, got {type(value).__name__} {brief(value)}. Wrap it in a "
            f'list: "{key}": [{example}].'
        )
    return tuple(value)


POSITIONS = ("final", "last_token")
"""Named positions a query may be, besides a token index and a text query."""
QUERY_SECTIONS = ("system", "user", "response")
"""Sections a text query's "section" may name, besides "turn<i>_<role>"."""
_TEXT_QUERY_KEYS = {"after_text", "at_text", "occurrence", "name", "section"}
_QUERY_FORMS = (
    '"final", "last_token", a token index, {"position": one of those, "name": str}, or '
    '{"after_text" or "at_text": "<non-empty text>", optional "section": "system" | "user" '
    '| "response" | "turn<i>_<role>", optional "occurrence": int, optional "name": str}'
)


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def position_name(position: str | int) -> str:
    """The name a query position gets when none is given: "final", "last_token", "pos:<i>"."""
    return position if isinstance(position, str) else f"pos:{position}"


def text_query_name(query: Mapping) -> str:
    """The name a text query gets when none is given: "after:<text>" or "at:<text>",
    then "#<occurrence>" and "@<section>" when those are given."""
    kind = "after" if "after_text" in query else "at"
    name = f"{kind}:{query[f'{kind}_text']}"
    if query.get("occurrence") is not None:
        name += f"#{query['occurrence']}"
    if query.get("section") is not None:
        name += f"@{query['section']}"
    return name


def check_query(query: Any) -> str | int | dict:
    """Validate one query entry. Dicts are copied; a named position whose name
    is its default (or missing) becomes the bare position."""
    if query in POSITIONS or _is_index(query):
        return query
    if isinstance(query, Mapping) and "position" in query:
        return _check_named_position(query)
    if isinstance(query, Mapping):
        kinds = [k for k in ("after_text", "at_text") if k in query]
        ok = len(kinds) == 1 and set(query) <= _TEXT_QUERY_KEYS
        ok = ok and isinstance(query[kinds[0]], str) and query[kinds[0]] != ""
        ok = ok and _is_index(query.get("occurrence", 0))
        if ok and isinstance(query.get("name", ""), str):
            _check_section(query)
            return dict(query)
    raise QueryNotFoundError(f"Query {brief(query)} is not a query position. Use {_QUERY_FORMS}.")


def _check_named_position(query: Mapping) -> str | int | dict:
    position, name = query["position"], query.get("name")
    if set(query) - {"position", "name"} or not (position in POSITIONS or _is_index(position)):
        raise QueryNotFoundError(
            f"Query {brief(dict(query))} is not a named position: expected exactly "
            '{"position": "final" | "last_token" | <token index>, "name": str}. For text, '
            'use {"after_text": ...} or {"at_text": ...} instead of "position".'
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise QueryNotFoundError(
            f"Query {brief(dict(query))}: 'name' must be a non-empty string, got {brief(name)}."
        )
    if name is None or name == position_name(position):
        return position
    return {"position": position, "name": name}


def _check_section(query: Mapping) -> None:
    section = query.get("section")
    if section is None or section in QUERY_SECTIONS:
        return
    if isinstance(section, str) and _TURN_NAME.fullmatch(section):
        return
    raise QueryNotFoundError(
        f"Query {brief(dict(query))}: 'section' must name a message of the prompt: one of "
        f"{list(QUERY_SECTIONS)} or 'turn<i>_<role>' (the built-in region names), got "
        f"{brief(section)}. The regions.json keys map to them: system_prompt -> 'system', "
        "user_message -> 'user'."
    )


def named_queries(positions: Mapping) -> list:
    """TeaLeaves' `{"name": query}` object as a list of named query entries:
    `{"terminal": "last_token", "decision": {"after_text": "Answer:"}}` ->
    `[{"position": "last_token", "name": "terminal"}, {"after_text": "Answer:",
    "name": "decision"}]`. Entries are not validated here (`check_query` does)."""
    out: list = []
    for name, query in positions.items():
        if not isinstance(name, str) or not name:
            raise QueryNotFoundError(
                f"A query_positions object maps names to queries; the name {brief(name)} is "
                'not a non-empty string. Write e.g. {"terminal": "last_token"}.'
            )
        if not isinstance(query, Mapping):
            out.append({"position": query, "name": name})
            continue
        inner = query.get("name")
        if inner not in (None, name):
            raise QueryNotFoundError(
                f"Query {name!r} also carries the name {brief(inner)}; expected one name. "
                f'Drop the inner "name" (the key names the query), or rename the key.'
            )
        out.append({**query, "name": name})
    return out


def check_tracked(tracked: Any) -> tuple[str | int, ...]:
    """Validate tracked tokens: a list of non-empty strings and token ids, each once."""
    items = as_items(tracked, "tracked_tokens", f"tracked_tokens=[{brief(tracked)}]", RegionError)
    seen: set[tuple[type, str | int]] = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)) or item == "":
            raise RegionError(
                f"A tracked token must be a non-empty string or a token id (int), got "
                f"{brief(item)}."
            )
        if isinstance(item, str):
            check_encodable(item, f"Tracked token {item!r}", RegionError)
        if (type(item), item) in seen:
            label = repr(item) if isinstance(item, str) else f"token id {item}"
            raise RegionError(
                f"{label} is tracked twice in tracked_tokens {brief(items)}; expected each "
                "token once (results are keyed by the token's label). Remove the repeat."
            )
        seen.add((type(item), item))
    return items


def load_regions(path: str | Path) -> RegionSpec:
    """Read a regions.json file into a `RegionSpec`; errors name the file."""
    path = Path(path)
    data = read_json_file(
        path,
        "regions file",
        RegionError,
        "Fix the file (look for trailing commas or unquoted keys).",
    )
    try:
        return RegionSpec.from_dict(data)
    except TealeavesError as error:
        raise type(error)(f"{path}: {error}") from error
