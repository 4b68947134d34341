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
from tests.helpers.prompts import GRADER, TEALEAVES_QUERIES


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


# ---------------------------------------------------------------- 13: text queries


@pytest.fixture(scope="module")
def grader(smol_tokenizer):
    return render_case(GRADER, smol_tokenizer)


def query_tokens(prompt, queries) -> dict[str, tuple[str, str]]:
    """Query name -> (token text, section holding the token's start, or "template")."""
    resolved = resolve_regions(prompt, {"query_positions": queries})
    out = {}
    for name, index in resolved.queries.items():
        start = int(prompt.offsets[index, 0])
        section = next(
            (s for s, (a, b) in prompt.sections.items() if a <= start + 1 <= b), "template"
        )
        out[name] = (prompt.tokens[index], section)
    return out


def test_text_queries_search_the_response_first(grader):
    assert query_tokens(grader, [{"at_text": "negative"}, {"after_text": "capitale est"}]) == {
        "at:negative": (" negative", "response"),
        "after:capitale est": (" Canberra", "response"),
    }


def test_after_text_is_the_first_non_whitespace_token_after_the_text(grader):
    found = query_tokens(grader, [{"after_text": "La"}, {"after_text": "La capitale est "}])
    assert found == {
        "after:La": (" capit", "response"),  # " capit" "ale"
        "after:La capitale est ": (" Canberra", "response"),
    }


def test_section_restricts_the_search(grader):
    queries = [
        {"at_text": "negative", "section": "system"},
        {"after_text": "capital", "section": "user"},
        {"at_text": "e", "section": "response", "occurrence": -1, "name": "last_e"},
    ]
    assert query_tokens(grader, queries) == {
        "at:negative@system": (" negative", "system"),
        "after:capital@user": (" of", "user"),
        "last_e": (" negative", "response"),
    }


def test_text_outside_the_response_is_looked_for_in_the_one_message_holding_it(smol_tokenizer):
    prompt = render_case(Case(system="Be kind.", user="Is it Paris? Answer yes."), smol_tokenizer)
    found = query_tokens(prompt, [{"after_text": "Paris?"}, {"at_text": "kind"}])
    assert found == {"after:Paris?": (" Answer", "user"), "at:kind": (" kind", "system")}
    # The grader's response lacks "capital" alone; its user message has it.
    grader = render_case(GRADER, smol_tokenizer)
    assert query_tokens(grader, [{"at_text": "Australia"}]) == {
        "at:Australia": (" Australia", "user")
    }


def test_text_in_several_messages_asks_for_a_section(smol_tokenizer):
    prompt = render_case(
        Case(system="Answer in one word.", user="One word: Answer now."), smol_tokenizer
    )
    with pytest.raises(tw.QueryNotFoundError) as caught:
        resolve_regions(prompt, {"query_positions": [{"at_text": "Answer"}]})
    message = str(caught.value)
    system_at, user_at = prompt.sections["system"][0], prompt.sections["user"][0] + 10
    assert f"'system' at char {system_at}; 'user' at char {user_at}" in message
    assert '{"at_text": "Answer", "section": "system"}' in message
    with_response = render_case(
        Case(system="Say one word.", user="One word.", response="Sure"), smol_tokenizer
    )
    with pytest.raises(tw.QueryNotFoundError, match="several messages and not in the response"):
        resolve_regions(with_response, {"query_positions": [{"at_text": "word"}]})


def test_text_query_errors(grader):
    def fails(query, pattern):
        with pytest.raises(tw.QueryNotFoundError, match=pattern):
            resolve_regions(grader, {"query_positions": [query]})

    fails({"at_text": "<|im_start|>"}, r"only in the chat template's own text \(at char 0\)")
    fails({"after_text": "negative"}, r"ends section 'response'.*\"final\"")
    fails({"at_text": "x", "section": "turn3_user"}, r"no such message .*'system', 'user'")
    fails({"at_text": "Canberra", "section": "user"}, r"occurs 0 time\(s\) in section 'user'")
    fails({"at_text": "negative", "occurrence": 1}, r"1 time\(s\) in section 'response'")
    with pytest.raises(tw.QueryNotFoundError, match=r"'section' must name a message"):
        RegionSpec(queries=[{"at_text": "x", "section": "user_message"}])


def test_turn_sections_can_be_named(smol_tokenizer):
    case = Case(
        messages=[
            {"role": "user", "content": "Name a city."},
            {"role": "assistant", "content": "Paris, a city."},
            {"role": "user", "content": "Another city?"},
        ]
    )
    prompt = render_case(case, smol_tokenizer)
    with pytest.raises(tw.QueryNotFoundError, match="'turn0_user'.*'user'"):
        resolve_regions(prompt, {"query_positions": [{"at_text": "city"}]})
    queries = [{"after_text": "Paris,", "section": "turn1_assistant"}]
    assert query_tokens(prompt, queries) == {
        "after:Paris,@turn1_assistant": (" a", "turn1_assistant")
    }


def test_text_query_with_section_round_trips():
    query = {"after_text": "Answer:", "section": "response", "occurrence": 1, "name": "a"}
    spec = RegionSpec.from_dict({"query_positions": [query]})
    assert spec.to_dict() == {"query_positions": [query]}


# ---------------------------------------------------------------- 14, 15: named positions


def test_tealeaves_query_object_is_read_everywhere(tmp_path, grader):
    spec = RegionSpec.from_dict({"query_positions": TEALEAVES_QUERIES})
    assert spec.queries == (
        {"position": "last_token", "name": "terminal"},
        {"after_text": "capitale", "name": "decision"},
        {"position": -1, "name": "end"},
    )
    assert RegionSpec(queries=TEALEAVES_QUERIES) == spec
    path = tmp_path / "regions.json"
    path.write_text(json.dumps({"query_positions": TEALEAVES_QUERIES}), encoding="utf-8")
    assert tw.load_regions(path) == spec
    resolved = resolve_regions(grader, {"query_positions": TEALEAVES_QUERIES})
    assert list(resolved.queries) == ["terminal", "decision", "end"]
    assert grader.tokens[resolved.queries["decision"]] == " est"
    assert resolved.queries["end"] == len(grader.tokens) - 1


def test_named_positions_keep_their_names_and_round_trip():
    spec = RegionSpec(
        queries=[
            {"position": "last_token", "name": "terminal"},
            {"position": 3, "name": "third"},
            {"position": "final"},  # no name: the plain form
            {"position": "last_token", "name": "last_token"},  # the default name: plain
        ]
    )
    assert spec.queries[2:] == ("final", "last_token")
    data = spec.to_dict()
    assert data["query_positions"][:2] == [
        {"position": "last_token", "name": "terminal"},
        {"position": 3, "name": "third"},
    ]
    assert RegionSpec.from_dict(json.loads(json.dumps(data))) == spec
    # The old list forms still work as before.
    old = RegionSpec.from_dict({"query_positions": ["final", "last_token", 3]})
    assert old.queries == ("final", "last_token", 3)


@pytest.mark.parametrize(
    ("queries", "pattern"),
    [
        ([{"position": "first", "name": "x"}], "is not a named position"),
        ([{"position": "final", "name": ""}], "'name' must be a non-empty string"),
        ([{"position": "final", "at_text": "a"}], "is not a named position"),
        ({"decision": {"after_text": "a", "name": "other"}}, "also carries the name 'other'"),
        ({"terminal": "first"}, "is not a named position"),
    ],
)
def test_bad_named_positions_are_refused(queries, pattern):
    with pytest.raises(tw.QueryNotFoundError, match=pattern):
        RegionSpec.from_dict({"query_positions": queries})


def test_prep_keeps_the_query_names(tmp_path, smol_tokenizer):
    from tealeaves_widgets import batch
    from tests.helpers.batch_fixtures import REGIONS, conversations, write_inputs

    regions = {**REGIONS, "query_positions": {"terminal": "last_token", "asked": {"at_text": "Q:"}}}
    inputs = write_inputs(tmp_path / "in", conversations(2), regions)
    cases = batch.prep(batch.PrepInputs.in_folder(inputs), smol_tokenizer)
    assert cases.regions.queries == (
        {"position": "last_token", "name": "terminal"},
        {"at_text": "Q:", "name": "asked"},
    )


def test_the_bundled_examples_point_where_their_docs_say(smol_tokenizer):
    from pathlib import Path

    from tealeaves_widgets import batch
    from tealeaves_widgets.prompt.examples import EXAMPLE_CASE, EXAMPLE_REGIONS

    prompt = render_case(EXAMPLE_CASE, smol_tokenizer)
    assert query_tokens(prompt, EXAMPLE_REGIONS["query_positions"]) == {
        "final": ("\n", "template"),  # the generation prompt's last token
        "last_token": (".", "user"),
        "after:data centres?": (" Answer", "user"),
    }
    example = Path(__file__).resolve().parents[2] / "examples" / "support_bot"
    inputs = batch.PrepInputs.in_folder(
        example, system_prompt=example / "baseline" / "system_prompt.txt"
    )
    for item in batch.prep(inputs, smol_tokenizer).cases:
        prompt = render_case(item.case, smol_tokenizer)
        resolved = resolve_regions(prompt, item.regions)
        assert list(resolved.queries) == ["end", "asked"]
        question = item.case.user.split("Q: ")[1]  # type: ignore[union-attr]
        first_word = " " + question.split()[0]
        assert prompt.tokens[resolved.queries["asked"]] == first_word
