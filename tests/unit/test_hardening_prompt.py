"""Hardening of the prompt layer (issue 10): user patterns under a time limit,
lists that must be lists, bounded nesting, duplicate tracked tokens, text a
tokenizer cannot encode, and TeaLeaves' query positions."""

from __future__ import annotations

import json
import time

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.errors import MarkerNotFoundError, PatternTimeoutError, RegionError
from tealeaves_widgets.prompt import resolve
from tealeaves_widgets.prompt.case import Case
from tealeaves_widgets.prompt.regions import Region, RegionSpec
from tealeaves_widgets.prompt.render import render_case
from tealeaves_widgets.prompt.resolve import resolve_regions


@pytest.fixture(scope="module")
def aaa_prompt(smol_tokenizer):
    return render_case(Case(system="Be brief.", user="a" * 40 + "!"), smol_tokenizer)


# ---------------------------------------------------------------- 1: patterns


def test_catastrophic_pattern_stops_at_the_time_limit(aaa_prompt):
    spec = RegionSpec(user=[Region.pattern("runaway", r"(a|aa)+$")])
    started = time.monotonic()
    with pytest.raises(PatternTimeoutError) as caught:
        resolve_regions(aaa_prompt, spec)
    assert time.monotonic() - started < resolve.PATTERN_TIME_LIMIT_S + 3
    message = str(caught.value)
    assert "'user_message/runaway'" in message and "'(a|aa)+$'" in message
    assert f"{resolve.PATTERN_TIME_LIMIT_S:g} s time limit" in message
    assert "'user_message' (chars" in message and "Simplify it" in message
    assert isinstance(caught.value, RegionError)


def test_nested_quantifier_from_the_issue_finishes(aaa_prompt):
    # `(a+)+$` on 40 "a"s hung Python's re; it is refused quickly now.
    started = time.monotonic()
    with pytest.raises(MarkerNotFoundError, match=r"pattern '\(a\+\)\+\$' not found"):
        resolve_regions(aaa_prompt, RegionSpec(user=[Region.pattern("r", r"(a+)+$")]))
    assert time.monotonic() - started < 2


def test_a_failing_pattern_is_searched_once(aaa_prompt, monkeypatch):
    searched = []
    compile_pattern = resolve.compile_pattern

    def counting(pattern):
        searched.append(pattern)
        return compile_pattern(pattern)

    monkeypatch.setattr(resolve, "compile_pattern", counting)
    spec = RegionSpec(system=[Region("x", start_marker="Be", end_pattern=r"zz+")])
    with pytest.raises(MarkerNotFoundError) as caught:
        resolve_regions(aaa_prompt, spec)
    assert searched == ["zz+"]
    assert "end_pattern 'zz+' not found" in str(caught.value)
    assert "only in the region's parent" in str(caught.value)


def test_literal_markers_keep_their_hints(aaa_prompt):
    with pytest.raises(MarkerNotFoundError, match=r"outside the searched span: in section 'user_m"):
        resolve_regions(aaa_prompt, RegionSpec(system=[Region.text("x", "aaa")]))


def test_patterns_see_only_their_parent(smol_tokenizer):
    prompt = render_case(Case(user="Intro.\nRules: be kind.\nEnd."), smol_tokenizer)
    spec = RegionSpec(
        user=[
            Region.between(
                "rules",
                "Rules:",
                r"^ be",  # `^` is the parent's start, not the end of the start marker
                regex=True,
            )
        ]
    )
    with pytest.raises(MarkerNotFoundError):
        resolve_regions(prompt, spec)
    multiline = RegionSpec(user=[Region.between("rules", "Rules:", r"(?m)^End", regex=True)])
    info = resolve_regions(prompt, multiline).regions["rules"]
    start = prompt.sections["user"][0]
    assert prompt.text[info.char_span[0] : info.char_span[1]] == "Rules: be kind.\n"
    assert info.char_span[0] == start + len("Intro.\n")
    anchored = resolve_regions(prompt, RegionSpec(user=[Region.pattern("intro", r"^\w+")]))
    assert anchored.regions["intro"].char_span == (start, start + len("Intro"))


def test_patterns_are_validated_with_the_search_engine():
    # Unicode properties are valid in the engine that searches (regex, not re),
    # so they are accepted; a broken pattern is refused when the region is built.
    Region.pattern("capitalised", r"\p{Lu}\w+")
    with pytest.raises(RegionError, match=r"pattern '\(' is not a valid Python regex"):
        Region.pattern("broken", "(")
    assert tw.PatternTimeoutError is PatternTimeoutError


# ---------------------------------------------------------------- 3: tracked tokens


def test_duplicate_tracked_tokens_are_refused_in_the_spec():
    with pytest.raises(RegionError, match=r"' Paris' is tracked twice"):
        RegionSpec(tracked_tokens=[" Paris", " Oslo", " Paris"])
    with pytest.raises(RegionError, match=r"token id 12 is tracked twice"):
        RegionSpec.from_dict({"tracked_tokens": [12, " Yes", 12]})
    # The same text and the same id are different entries.
    assert RegionSpec(tracked_tokens=["12", 12]).tracked_tokens == ("12", 12)


def test_tracked_tokens_with_the_same_label_are_refused(smol_tokenizer):
    paris = smol_tokenizer.encode(" Paris", add_special_tokens=False)[0]
    with pytest.raises(RegionError, match=rf"' Paris' and token id {paris}.*same label"):
        resolve.tracked_token_ids([" Paris", paris], smol_tokenizer)


# ---------------------------------------------------------------- 8, 10: lists and text


@pytest.mark.parametrize(
    ("make", "error", "hint"),
    [
        (lambda: RegionSpec(tracked_tokens="Paris"), RegionError, "tracked_tokens=['Paris']"),
        (lambda: RegionSpec(tracked_tokens=b"Paris"), RegionError, "tracked_tokens=["),
        (lambda: RegionSpec(queries="final"), tw.QueryNotFoundError, "queries=['final']"),
        (lambda: RegionSpec(user="Answer:"), RegionError, "user=[Region(...)]"),
        (
            lambda: RegionSpec(system=Region.text("a", "b")),
            RegionError,
            "Wrap it in a list: system=[Region(...)]",
        ),
        (
            lambda: Region.text("a", "b", children=Region.text("c", "d")),  # type: ignore[arg-type]
            RegionError,
            "children=[Region(...)]",
        ),
        (lambda: Region("a", marker="b", children="cd"), RegionError, "children=[Region(...)]"),
    ],
)
def test_a_lone_string_or_region_is_not_split_into_a_list(make, error, hint):
    with pytest.raises(error, match="must be a list") as caught:
        make()
    assert hint in str(caught.value) and "Wrap it in a list" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        ({"tracked_tokens": "Paris"}, '"tracked_tokens": ["Paris"]'),
        ({"query_positions": "final"}, '"query_positions": ["final"]'),
        ({"user_message": {"regions": {"name": "q", "marker": "x"}}}, '"regions": [{...}]'),
    ],
)
def test_a_lone_string_in_a_regions_dict_is_refused(data, hint):
    with pytest.raises(tw.TealeavesError, match="must be a list") as caught:
        RegionSpec.from_dict(data)
    assert hint in str(caught.value)


USER_HI = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("fields", "where", "position"),
    [
        ({"system": "ok", "user": "bad \ud800 text"}, "Case.user", 4),
        ({"user": "fine", "response": "\udfff"}, "Case.response", 0),
        ({"system": "x\ud83d", "user": "y"}, "Case.system", 1),
        (
            {"messages": [USER_HI, {"role": "assistant", "content": "a\ud800"}]},
            "Case.messages[1].content",
            1,
        ),
        ({"user": "fine", "name": "n\udc80"}, "Case.name", 1),
    ],
)
def test_a_lone_surrogate_is_refused_at_case_construction(fields, where, position):
    with pytest.raises(tw.ChatTemplateError) as caught:
        Case(**fields)
    message = str(caught.value)
    assert message.startswith(f"{where} holds a lone surrogate")
    assert f"at character {position}" in message and "UTF-8" in message


def test_a_lone_surrogate_in_a_tracked_token_is_refused():
    with pytest.raises(RegionError, match=r"lone surrogate.*character 1"):
        RegionSpec(tracked_tokens=[" \ud800"])


def test_prep_lists_duplicate_tracked_tokens_as_a_problem(tmp_path, smol_tokenizer):
    from tealeaves_widgets import batch
    from tests.helpers.batch_fixtures import REGIONS, conversations, write_inputs

    regions = {**REGIONS, "tracked_tokens": [" Paris", " Oslo", " Paris"]}
    inputs = write_inputs(tmp_path / "in", conversations(2), regions)
    with pytest.raises(tw.BatchError, match=r"tracked_tokens: ' Paris' is tracked twice"):
        batch.prep(batch.PrepInputs.in_folder(inputs), smol_tokenizer)


# ---------------------------------------------------------------- 7: nesting


def nested_regions(depth: int) -> dict:
    """A region with `depth - 1` regions nested inside it, one in each."""
    region: dict = {"name": f"r{depth - 1}", "marker": "x"}
    for level in range(depth - 2, -1, -1):
        region = {"name": f"r{level}", "marker": "x", "regions": [region]}
    return region


def test_deep_json_in_a_regions_file_names_the_file(tmp_path):
    path = tmp_path / "deep_regions.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(RegionError, match=r"deep_regions.json is nested too deeply"):
        tw.load_regions(path)


def test_deep_json_in_a_conversations_file_names_the_file(tmp_path):
    path = tmp_path / "deep_conversations.json"
    path.write_text('{"conversations": ' + "[" * 100_000, encoding="utf-8")
    with pytest.raises(tw.InputFileError, match=r"deep_conversations.json is nested too deeply"):
        tw.load_cases(path)


def test_deep_json_in_prep_inputs_names_the_file(tmp_path, smol_tokenizer):
    from tealeaves_widgets import batch
    from tests.helpers.batch_fixtures import write_inputs

    inputs = write_inputs(tmp_path / "in")
    (inputs / "conversations.json").write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(tw.BatchError, match=r"conversations.json.*nested too deeply"):
        batch.prep(batch.PrepInputs.in_folder(inputs), smol_tokenizer)


def test_region_nesting_is_limited_in_dicts_and_files(tmp_path):
    limit = RegionSpec.from_dict({"system_prompt": {"regions": [nested_regions(32)]}})
    assert len(limit.system) == 1  # 32 levels are fine
    deep = {"system_prompt": {"regions": [nested_regions(10_000)]}}
    with pytest.raises(RegionError, match=r"nested more than 32 levels deep") as caught:
        RegionSpec.from_dict(deep)
    assert "system_prompt/r0/r1/" in str(caught.value) and "Flatten" in str(caught.value)
    path = tmp_path / "regions.json"
    path.write_text(
        json.dumps({"user_message": {"regions": [nested_regions(300)]}}), encoding="utf-8"
    )
    with pytest.raises(RegionError, match=r"regions.json: .*nested more than 32 levels"):
        tw.load_regions(path)


def test_region_nesting_is_limited_for_python_objects():
    region = Region.text("leaf", "x")
    for level in range(31):  # 32 levels: the limit
        region = Region.text(f"r{level}", "x", children=[region])
    with pytest.raises(RegionError, match=r"'top'.*nested more than 32 levels"):
        Region.text("top", "x", children=[region])
