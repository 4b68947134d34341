"""Resolving a region spec on one rendered prompt: character spans, the tokens
each region owns, query positions and tracked token ids.

Locating (all spans are half-open character spans [start, end) of the text):

- Top-level regions are searched in their section's content span
  (`RenderedPrompt.sections`: system_prompt -> "system", user_message -> "user",
  response -> "response"); nested regions inside their parent's span.
- A start marker/pattern is found at its first occurrence and is included in
  the region. A missing start key means the parent's start.
- The end is searched after the start marker/pattern (or from `start_char`),
  first occurrence. The end marker/pattern itself is excluded unless
  `include_end` is true, so "## Rules" .. "## Examples" and "## Examples" .. end
  do not overlap. A missing end key means the parent's end.
- `start_char`/`end_char` count characters from the parent's start.
- Patterns are Python regexes (re syntax, run by the `regex` module) searched
  in the parent's text alone, so `^` matches at the parent's start, also for
  an end pattern, which is searched from the end of the start on; use inline
  flags such as `(?m)` or `(?s)`. A pattern is searched once, under a time
  limit (`PATTERN_TIME_LIMIT_S`): one that backtracks past it raises
  `PatternTimeoutError` instead of hanging; one that is not found is not
  looked for elsewhere.
- Sibling regions may not overlap; every region must cover at least one
  character and own at least one token; names are unique.

Token assignment (the product's contract): a token belongs to a region when the
region's span contains the token's anchor, its FIRST NON-WHITESPACE character.
A whitespace-only token is anchored at its first character; a zero-width token
(a BOS token put in front) has no anchor and belongs to "template". So the BPE
token " Rules" belongs to the region that starts at "Rules", and a marker that
falls inside a token leaves the token wherever its anchor lies.

Query positions (TeaLeaves' rule for text, extended to prompts without a
response): "final" is the last token (it predicts the next one); "last_token"
the last token of the user message; an int a token index. A text query is
searched in ONE message ("section") of the prompt, never in the chat
template's own text:

- with "section" ("system", "user", "response", "turn{i}_{role}"): there;
- else the response, when the case has one and the text occurs in it;
- else the one other message that holds the text. If several do, the query
  is refused with the places listed, asking for "section".

"occurrence" (default 0, negative from the end) counts matches within that
message. {"at_text": s} is the token holding the first non-whitespace
character of `s`; {"after_text": s} the token holding the first
non-whitespace character after `s` in the same message (refused when only
whitespace follows `s` there). So with the response "La capitale est
Canberra", `after_text "capitale est"` is " Canberra".

Built-in regions, present without configuration: one per section
("system", "user", "response", "turn{i}_{role}") and "template", the tokens
anchored outside every message content (chat markup, role names, the
template's default system prompt).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..core.run import RegionInfo
from ..errors import (
    EmptyRegionError,
    MarkerNotFoundError,
    PatternTimeoutError,
    QueryNotFoundError,
    RegionError,
    RegionOrderError,
    RegionOverlapError,
)
from .regions import (
    SECTION_KEYS,
    Region,
    RegionSpec,
    check_query,
    check_tracked,
    compile_pattern,
    position_name,
    text_query_name,
)
from .render import RenderedPrompt

_QUOTE = 60
"""Characters of prompt text quoted in an error message."""
PATTERN_TIME_LIMIT_S = 1.0
"""Seconds one search of a region pattern may take before it is stopped with
`PatternTimeoutError`. Sensible patterns take microseconds on a long prompt;
only runaway backtracking comes near this."""


# ---------------------------------------------------------------- resolving


@dataclass(frozen=True)
class ResolvedRegions:
    """Regions, query positions and tracked tokens, resolved on one rendered prompt."""

    regions: dict[str, RegionInfo]
    """Region name -> region: built-in sections (text order), "template", then user
    regions depth-first in spec order, parents before children."""
    queries: dict[str, int]
    """Query name -> token position, in spec order."""
    tracked_tokens: tuple[str | int, ...]
    """(tracked,) the tracked tokens as the spec gives them."""
    spec: dict = field(default_factory=dict)
    """The spec in the regions.json schema."""


def resolve_regions(
    prompt: RenderedPrompt, spec: RegionSpec | Mapping | None = None
) -> ResolvedRegions:
    """Locate every region of `spec` in `prompt` and assign tokens to regions."""
    spec = _as_spec(spec)
    anchors = token_anchors(prompt)
    regions = _builtin_regions(prompt, anchors)
    paths: dict[str, str] = {}
    for key, section in SECTION_KEYS.items():
        for item in _locate_section(prompt, spec, key, section):
            _check_unique(item, paths)
            regions[item.region.name] = _region_info(item, anchors, prompt)
    return ResolvedRegions(
        regions=regions,
        queries=resolve_queries(prompt, spec.queries),
        tracked_tokens=spec.tracked_tokens,
        spec=spec.to_dict(),
    )


def _as_spec(spec: RegionSpec | Mapping | None) -> RegionSpec:
    if spec is None:
        return RegionSpec()
    if isinstance(spec, RegionSpec):
        return spec
    if isinstance(spec, Mapping):
        return RegionSpec.from_dict(spec)
    raise RegionError(
        f"Expected a RegionSpec, a regions.json dict or None, got {type(spec).__name__}. "
        "Load a file with load_regions(path)."
    )


def token_anchors(prompt: RenderedPrompt) -> NDArray[np.int64]:
    """(pos,) anchor character of each token (first non-whitespace), -1 if zero-width."""
    anchors = np.full(len(prompt.tokens), -1, dtype=np.int64)
    for i, ((start, _), piece) in enumerate(
        zip(prompt.offsets.tolist(), prompt.tokens, strict=True)
    ):
        if piece:
            anchors[i] = start + (len(piece) - len(piece.lstrip()) if piece.strip() else 0)
    return anchors


def _tokens_in(anchors: NDArray[np.int64], span: tuple[int, int]) -> NDArray[np.int64]:
    return np.flatnonzero((anchors >= span[0]) & (anchors < span[1])).astype(np.int64)


def _builtin_regions(prompt: RenderedPrompt, anchors: NDArray[np.int64]) -> dict:
    regions: dict[str, RegionInfo] = {}
    outside = np.ones(len(anchors), dtype=bool)
    for name, span in prompt.sections.items():
        indices = _tokens_in(anchors, span)
        outside[indices] = False
        regions[name] = RegionInfo(name, name, span, indices, None, True)
    template = np.flatnonzero(outside).astype(np.int64)
    regions["template"] = RegionInfo(
        "template", "template", (0, len(prompt.text)), template, None, True
    )
    return regions


@dataclass(frozen=True)
class _Located:
    """A user region with its span, before tokens are assigned."""

    region: Region
    path: str
    section: str
    span: tuple[int, int]
    parent: str | None


def _check_unique(item: _Located, paths: dict[str, str]) -> None:
    name = item.region.name
    if name in paths:
        raise RegionError(
            f"Region name {name!r} is used twice, at {paths[name]!r} and {item.path!r}. "
            "Region names must be unique across all sections; rename one of them."
        )
    paths[name] = item.path


def _region_info(item: _Located, anchors: NDArray, prompt: RenderedPrompt) -> RegionInfo:
    indices = _tokens_in(anchors, item.span)
    if len(indices) == 0:
        start, end = item.span
        raise EmptyRegionError(
            f"Region {item.path!r} covers chars {start}-{end} ({prompt.text[start:end]!r}) "
            "but no token is anchored there: it lies inside a token whose first "
            "non-whitespace character is outside the region. Widen the region to the "
            "token's start."
        )
    return RegionInfo(item.region.name, item.section, item.span, indices, item.parent, False)


# ---------------------------------------------------------------- locating spans


@dataclass(frozen=True)
class _Scope:
    """Where a region is searched: the parent's span, for locating and for messages."""

    prompt: RenderedPrompt
    start: int
    end: int
    path: str
    """Path of the parent, e.g. "system_prompt/rules"."""

    @property
    def text(self) -> str:
        return self.prompt.text

    def describe(self) -> str:
        quoted = self.text[self.start : self.end][:_QUOTE]
        return f"{self.path!r} (chars {self.start}-{self.end}, starting {quoted!r})"


def _locate_section(prompt: RenderedPrompt, spec: RegionSpec, key: str, section: str) -> list:
    regions = getattr(spec, section)
    if not regions:
        return []
    if section not in prompt.sections:
        names = [r.name for r in regions]
        raise RegionError(
            f"The spec defines {key!r} regions {names}, but this prompt has no {section!r} "
            f"section ({_missing_section_hint(section)}). Add it to the Case or remove the "
            f"{key!r} regions."
        )
    start, end = prompt.sections[section]
    return _locate_all(regions, _Scope(prompt, start, end, key), section, None)


def _missing_section_hint(section: str) -> str:
    if section == "response":
        return "the case has no response, so the prompt ends with the generation prompt"
    if section == "system":
        return "the case has no system message; a template's default system text is not one"
    return "the case has no user message"


def _locate_all(regions: Sequence[Region], scope: _Scope, section: str, parent: str | None):
    """Locate siblings, check they do not overlap, then recurse; depth-first order."""
    spans = [_locate(region, scope) for region in regions]
    _check_overlap(regions, spans, scope)
    located = []
    for region, span in zip(regions, spans, strict=True):
        path = f"{scope.path}/{region.name}"
        located.append(_Located(region, path, section, span, parent))
        child_scope = _Scope(scope.prompt, span[0], span[1], path)
        located += _locate_all(region.children, child_scope, section, region.name)
    return located


def _locate(region: Region, scope: _Scope) -> tuple[int, int]:
    """Span of one region inside `scope`."""
    path = f"{scope.path}/{region.name}"
    if region.marker is not None:
        start, end = _find(region.marker, False, scope, scope.start, path, "marker")
    elif region.pattern is not None:
        start, end = _find(region.pattern, True, scope, scope.start, path, "pattern")
    else:
        start, after_start = _locate_start(region, scope, path)
        end = _locate_end(region, scope, path, start, after_start)
    if end <= start:
        raise EmptyRegionError(
            f"Region {path!r} covers no characters (chars {start}-{end}) in "
            f"{scope.describe()}. Check its markers or patterns."
        )
    return start, end


def _locate_start(region: Region, scope: _Scope, path: str) -> tuple[int, int]:
    """Start of the region and where the search for its end begins."""
    if region.start_marker is not None:
        return _find(region.start_marker, False, scope, scope.start, path, "start_marker")
    if region.start_pattern is not None:
        return _find(region.start_pattern, True, scope, scope.start, path, "start_pattern")
    if region.start_char is not None:
        start = _char(region.start_char, "start_char", scope, path)
        return start, start
    return scope.start, scope.start


def _locate_end(region: Region, scope: _Scope, path: str, start: int, search_from: int) -> int:
    if region.end_char is not None:
        end = _char(region.end_char, "end_char", scope, path)
        if end < start:
            raise RegionOrderError(
                f"Region {path!r}: end_char {region.end_char} (char {end}) lies before the "
                f"region's start (char {start}, i.e. {start - scope.start} from the parent's "
                f"start) in {scope.describe()}. Use an end_char after the start."
            )
        return end
    key = "end_marker" if region.end_marker is not None else "end_pattern"
    needle = region.end_marker if region.end_marker is not None else region.end_pattern
    if needle is None:
        return scope.end
    found, found_end = _find(needle, key == "end_pattern", scope, search_from, path, key, start)
    return found_end if region.include_end else found


def _char(value: int, key: str, scope: _Scope, path: str) -> int:
    if scope.start + value > scope.end:
        raise RegionOrderError(
            f"Region {path!r}: {key} {value} lies beyond its parent {scope.describe()}, "
            f"which has {scope.end - scope.start} characters. Use a smaller {key}."
        )
    return scope.start + value


def _find(
    needle: str,
    regex: bool,
    scope: _Scope,
    search_from: int,
    path: str,
    key: str,
    region_start: int | None = None,
) -> tuple[int, int]:
    """Span of the first occurrence of `needle` in [search_from, scope.end)."""
    if regex:
        return _find_pattern(needle, scope, search_from, path, key)
    found = _search_text(needle, scope.text, search_from, scope.end)
    if found is not None:
        return found
    before = _search_text(needle, scope.text, scope.start, scope.end)
    if region_start is not None and before is not None:
        raise RegionOrderError(
            f"Region {path!r}: {key} {needle!r} occurs only before the region's start "
            f"(at char {before[0]}; the start is at char {region_start}) in "
            f"{scope.describe()}. Swap the markers or pick an end that follows the start."
        )
    elsewhere = _search_text(needle, scope.text, 0, len(scope.text))
    hint = (
        f" It does occur outside the searched span: in {_where(scope.prompt, elsewhere[0])}. "
        "Define the region under the section or parent region that holds it."
        if elsewhere is not None
        else " It occurs nowhere in the prompt; check spelling, case and whitespace."
    )
    raise MarkerNotFoundError(
        f"Region {path!r}: {key} {needle!r} not found in {scope.describe()}.{hint}"
    )


def _search_text(needle: str, text: str, start: int, end: int) -> tuple[int, int] | None:
    """First occurrence of the literal `needle` inside text[start:end]."""
    at = text.find(needle, start, end)
    return (at, at + len(needle)) if at >= 0 else None


def _find_pattern(
    pattern: str, scope: _Scope, search_from: int, path: str, key: str
) -> tuple[int, int]:
    """First match of `pattern` in the parent's text alone, from `search_from`
    on, searched once under `PATTERN_TIME_LIMIT_S`."""
    parent = scope.text[scope.start : scope.end]
    try:
        match = compile_pattern(pattern).search(
            parent, search_from - scope.start, timeout=PATTERN_TIME_LIMIT_S
        )
    except TimeoutError as error:
        raise PatternTimeoutError(
            f"Region {path!r}: {key} {pattern!r} was stopped at the "
            f"{PATTERN_TIME_LIMIT_S:g} s time limit while searching {scope.describe()}. "
            "Expected a pattern that matches or fails quickly; this one backtracks too "
            "much, typically through nested or overlapping repeats such as (a+)+ or "
            "(a|aa)+. Simplify it (e.g. a+ instead of (a+)+), or locate the region with "
            "start_marker/end_marker text."
        ) from error
    if match is not None:
        return scope.start + match.start(), scope.start + match.end()
    searched = (
        f" from char {search_from} (after the region's start) on"
        if search_from > scope.start
        else ""
    )
    raise MarkerNotFoundError(
        f"Region {path!r}: {key} {pattern!r} not found in {scope.describe()}{searched}. A "
        "pattern is searched only in the region's parent, once, so it was not looked for "
        "elsewhere in the prompt; check it against that text (case, whitespace, anchors: "
        "`^` is the parent's start), or use a marker."
    )


def _where(prompt: RenderedPrompt, char: int) -> str:
    """Which part of the prompt holds `char`, in words."""
    for name, (start, end) in prompt.sections.items():
        if start <= char < end:
            key = next((k for k, v in SECTION_KEYS.items() if v == name), name)
            return f"section {key!r} at char {char}"
    return f"the chat template's own text (outside every message) at char {char}"


def _check_overlap(regions: Sequence[Region], spans: list, scope: _Scope) -> None:
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    for a, b in zip(order, order[1:], strict=False):
        if spans[b][0] < spans[a][1]:
            first, second = (_show(regions[i].name, spans[i], scope.text) for i in (a, b))
            raise RegionOverlapError(
                f"Sibling regions {first} and {second} overlap in {scope.describe()}. Make "
                "one end where the other starts (leave include_end false), or nest one "
                "inside the other."
            )


def _show(name: str, span: tuple[int, int], text: str) -> str:
    return f"{name!r} (chars {span[0]}-{span[1]}, {text[span[0] : span[1]][:_QUOTE]!r})"


# ---------------------------------------------------------------- queries


def resolve_queries(prompt: RenderedPrompt, queries: Sequence) -> dict[str, int]:
    """Query name -> token index, in order; {"final": last index} when none are given."""
    n_tokens = len(prompt.tokens)
    if n_tokens == 0:
        raise QueryNotFoundError("The prompt has no tokens, so no query position exists.")
    if not queries:
        return {"final": n_tokens - 1}
    out: dict[str, int] = {}
    for query in queries:
        name, index = _resolve_query(prompt, check_query(query))
        if name in out:
            raise QueryNotFoundError(
                f"Two query positions are named {name!r}. Give one of them a distinct "
                '"name" (e.g. {"after_text": ..., "name": "answer2"}).'
            )
        out[name] = index
    return out


def _resolve_query(prompt: RenderedPrompt, query: str | int | dict) -> tuple[str, int]:
    if isinstance(query, dict) and "position" in query:
        return query["name"], _resolve_position(prompt, query["position"])
    if isinstance(query, dict):
        return _resolve_text_query(prompt, query)
    return position_name(query), _resolve_position(prompt, query)


def _resolve_position(prompt: RenderedPrompt, position: str | int) -> int:
    n_tokens = len(prompt.tokens)
    if position == "final":
        return n_tokens - 1
    if position == "last_token":
        return _last_user_token(prompt)
    if isinstance(position, int):
        if not -n_tokens <= position < n_tokens:
            raise QueryNotFoundError(
                f"Query position {position} is out of range: the prompt has {n_tokens} tokens "
                f"(valid: {-n_tokens}..{n_tokens - 1}). Use a smaller index."
            )
        return position % n_tokens
    # `check_query` lets no other position through
    raise QueryNotFoundError(f"Query {position!r} is not a query position. Use {_FORMS}.")


_FORMS = '"final", "last_token", a token index or a text query'


def _last_user_token(prompt: RenderedPrompt) -> int:
    span = prompt.sections.get("user")
    indices = _tokens_in(token_anchors(prompt), span) if span else np.array([])
    if len(indices) == 0:
        raise QueryNotFoundError(
            "Query 'last_token' is the last token of the user message, but this prompt "
            f"has no user-message tokens (sections: {list(prompt.sections)}). Use 'final' "
            "or a text query instead."
        )
    return int(indices[-1])


def _resolve_text_query(prompt: RenderedPrompt, query: dict) -> tuple[str, int]:
    """TeaLeaves' rule, in the section `_text_section` picks: "at_text" is the
    token holding the text's first non-whitespace character; "after_text" the
    token holding the first non-whitespace character after the text."""
    kind = "after_text" if "after_text" in query else "at_text"
    needle = query[kind]
    name = query.get("name") or text_query_name(query)
    section, found = _text_section(prompt, query, name, kind)
    n = query.get("occurrence") or 0
    if not -len(found) <= n < len(found):
        start, end = prompt.sections[section]
        raise QueryNotFoundError(
            f"Query {name!r}: {kind} {needle!r} occurs {len(found)} time(s) in section "
            f"{section!r}, so occurrence {n} does not exist (occurrences count matches in "
            f"that section from 0; negative ones from its end). The section starts "
            f"{prompt.text[start:end][:_QUOTE]!r}. Check the text (case, whitespace) or the "
            "occurrence."
        )
    at = found[n]
    if kind == "at_text":
        lead = len(needle) - len(needle.lstrip()) if needle.strip() else 0
        return name, _token_at(prompt, at + lead, last=False)
    return name, _token_after(prompt, at + len(needle), section, name, needle)


def _text_section(
    prompt: RenderedPrompt, query: dict, name: str, kind: str
) -> tuple[str, list[int]]:
    """The section a text query is searched in, and where its text starts there.

    Its "section" if it gives one; else the response, when the case has one
    and the text is in it; else the one other message that holds the text.
    The chat template's own text is never searched.
    """
    needle, section = query[kind], query.get("section")
    if section is not None:
        if section not in prompt.sections:
            raise QueryNotFoundError(
                f"Query {name!r} searches section {section!r}, but this prompt has no such "
                f"message (its sections: {list(prompt.sections)}). Name one of those in "
                '"section", or add the message to the case.'
            )
        return section, _occurrences(prompt.text, needle, prompt.sections[section])
    if "response" in prompt.sections:
        found = _occurrences(prompt.text, needle, prompt.sections["response"])
        if found:
            return "response", found
    places = {
        other: found
        for other, span in prompt.sections.items()
        if other != "response" and (found := _occurrences(prompt.text, needle, span))
    }
    if len(places) == 1:
        return next(iter(places.items()))
    if places:
        raise _several_places(prompt, places, name, kind, needle)
    searched = ", ".join(repr(x) for x in prompt.sections)
    raise QueryNotFoundError(
        f"Query {name!r}: {kind} {needle!r} occurs 0 times in the prompt's messages "
        f"(searched: {searched}).{_template_hint(prompt, needle)}"
    )


def _several_places(
    prompt: RenderedPrompt, places: dict[str, list[int]], name: str, kind: str, needle: str
) -> QueryNotFoundError:
    listed = "; ".join(
        f"{section!r} at char{'s' if len(found) > 1 else ''} {', '.join(map(str, found))}"
        for section, found in places.items()
    )
    example = json.dumps({kind: needle, "section": next(iter(places))}, ensure_ascii=False)
    return QueryNotFoundError(
        f"Query {name!r}: {kind} {needle!r} occurs in several messages"
        f'{_not_in_response(prompt)}: {listed}. Expected one place; add "section" to the '
        f'query to pick one, e.g. {example} ("occurrence" then counts matches within that '
        "section)."
    )


def _not_in_response(prompt: RenderedPrompt) -> str:
    return " and not in the response" if "response" in prompt.sections else ""


def _template_hint(prompt: RenderedPrompt, needle: str) -> str:
    at = prompt.text.find(needle)
    if at >= 0:
        return (
            f" It occurs only in the chat template's own text (at char {at}), which text "
            "queries do not search; use a token index for a template token."
        )
    return " Check the text: spelling, case and whitespace."


def _occurrences(text: str, needle: str, span: tuple[int, int]) -> list[int]:
    """Start of every occurrence of `needle` inside text[span] (overlapping ones too)."""
    start, end = span
    found, at = [], text.find(needle, start, end)
    while at >= 0:
        found.append(at)
        at = text.find(needle, at + 1, end)
    return found


def _token_after(prompt: RenderedPrompt, char: int, section: str, name: str, needle: str) -> int:
    """The token holding the first non-whitespace character at or after `char`
    in `section`."""
    end = prompt.sections[section][1]
    rest = prompt.text[char:end]
    skipped = len(rest) - len(rest.lstrip())
    if skipped == len(rest):
        raise QueryNotFoundError(
            f"Query {name!r}: after_text {needle!r} ends section {section!r} (nothing but "
            "whitespace follows it there), so no token comes after it in that message. "
            'Expected text that more text follows; use {"at_text": ...} for the token of the '
            'text itself, "last_token" for the user message\'s last token, or "final".'
        )
    return _token_at(prompt, char + skipped, last=False)


def _token_at(prompt: RenderedPrompt, char: int, *, last: bool) -> int:
    """The token whose span holds `char` (the last or first of several, when a
    character is split over tokens)."""
    starts, ends = prompt.offsets[:, 0], prompt.offsets[:, 1]
    holding = np.flatnonzero((starts <= char) & (ends > char))
    if len(holding) == 0:  # a character no token spans: take the token before it
        holding = np.flatnonzero(starts <= char)[-1:]
    return int(holding[-1] if last else holding[0])


# ---------------------------------------------------------------- tracked tokens


def tracked_token_ids(
    tracked: Sequence[str | int], tokenizer: Any
) -> tuple[NDArray[np.int64], tuple[str, ...]]:
    """(tracked,) token ids and labels of the tracked tokens.

    A string maps to its first token when encoded without special tokens. It
    is labelled as written when it is one token; when it is several, only the
    first is tracked and the label says so by marking where that token ends:
    " Lisbon" (tokens " L", "isbon") is tracked as " L" and labelled " L|isbon"
    (a warning names the pieces too). An int is a token id, labelled with its
    decoded text.
    """
    vocab_size = len(tokenizer)
    ids, labels = [], []
    for item in check_tracked(tracked):
        if isinstance(item, int):
            if not 0 <= item < vocab_size:
                raise RegionError(
                    f"Tracked token id {item} is out of range: the tokenizer has "
                    f"{vocab_size} tokens (ids 0..{vocab_size - 1})."
                )
            ids.append(item)
            labels.append(tokenizer.decode([item]))
            continue
        token, label = _first_token(item, tokenizer)
        ids.append(token)
        labels.append(label)
    _check_distinct_labels(tracked, labels)
    return np.asarray(ids, dtype=np.int64).reshape(-1), tuple(labels)


def _check_distinct_labels(tracked: Sequence[str | int], labels: list[str]) -> None:
    """Results key tracked tokens by label, so two entries may not share one."""
    first: dict[str, str | int] = {}
    for item, label in zip(tracked, labels, strict=True):
        if label in first:
            names = [
                repr(x) if isinstance(x, str) else f"token id {x}" for x in (first[label], item)
            ]
            raise RegionError(
                f"Tracked tokens {names[0]} and {names[1]} have the same label {label!r} (a "
                "token id is labelled with its decoded text); expected distinct labels, since "
                "results are keyed by them. Track only one of them."
            )
        first[label] = item


TRACKED_SPLIT = "|"
"""Marks, in a tracked token's label, where the tracked (first) token of a
word of several tokens ends: " L|isbon"."""


def _first_token(text: str, tokenizer: Any) -> tuple[int, str]:
    """The first token of `text` and the label of what is tracked."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    pieces, offsets = encoded["input_ids"], encoded["offset_mapping"]
    if not pieces:
        raise RegionError(f"Tracked token {text!r} encodes to no token at all; use other text.")
    if len(pieces) == 1:
        return int(pieces[0]), text
    end = max(1, min(int(offsets[0][1]), len(text) - 1))
    label = text[:end] + TRACKED_SPLIT + text[end:]
    names = [tokenizer.decode([piece]) for piece in pieces]
    warnings.warn(
        f"Tracked token {text!r} is {len(pieces)} tokens {names}; only the first, "
        f"{names[0]!r} (id {pieces[0]}), is tracked, labelled {label!r}. Track a single "
        "token (often with a leading space, e.g. ' Yes') to silence this.",
        stacklevel=3,
    )
    return int(pieces[0]), label
