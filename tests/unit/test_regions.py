"""Regions -> token spans, queries and tracked tokens, against the real SmolLM2 tokenizer."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from tealeaves_widgets.errors import (
    EmptyRegionError,
    MarkerNotFoundError,
    QueryNotFoundError,
    RegionError,
    RegionOrderError,
    RegionOverlapError,
)
from tealeaves_widgets.prompt.case import Case
from tealeaves_widgets.prompt.regions import Region, RegionSpec, load_regions
from tealeaves_widgets.prompt.render import RenderedPrompt, render_case
from tealeaves_widgets.prompt.resolve import (
    ResolvedRegions,
    resolve_regions,
    token_anchors,
    tracked_token_ids,
)

SYSTEM = (
    "You grade answers.\n"
    "## Rules\nBe strict. Never guess.\n"
    "## Examples\nQ: 2+2? A: 4\n"
    "## Output\nSay Yes or No."
)
USER = "Is the sky green? Answer:"

FULL_SPEC = {
    "system_prompt": {
        "regions": [
            {
                "name": "rules",
                "start_marker": "## Rules",
                "end_marker": "## Examples",
                "description": "what the grader must do",
                "color": "#ff0000",
                "regions": [{"name": "strict", "marker": "Be strict"}],
            },
            {"name": "examples", "start_pattern": r"## Ex\w+", "end_pattern": r"\n## O"},
            {"name": "output", "start_char": 96 - 19},
        ]
    },
    "user_message": {"regions": [{"name": "question", "pattern": r"Is .*?\?"}]},
    "query_positions": [
        "final",
        "last_token",
        {"after_text": "green?"},
        {"at_text": "Rules", "name": "rules_q"},
        12,
    ],
    "tracked_tokens": [" Yes", " No", 1234],
}


@pytest.fixture(scope="module")
def prompt(smol_tokenizer) -> RenderedPrompt:
    return render_case(Case(system=SYSTEM, user=USER), smol_tokenizer)


def texts(prompt: RenderedPrompt, resolved: ResolvedRegions, name: str) -> list[str]:
    return [prompt.tokens[i] for i in resolved.regions[name].token_indices]


def resolve_system(prompt, *regions) -> ResolvedRegions:
    return resolve_regions(prompt, RegionSpec(system=regions))


# ---------------------------------------------------------------- built-ins


def test_builtin_regions(prompt):
    resolved = resolve_regions(prompt, None)
    assert list(resolved.regions) == ["system", "user", "template"]
    system, user, template = resolved.regions.values()
    assert system.builtin and system.section == "system" and system.parent is None
    assert system.char_span == prompt.sections["system"]
    assert texts(prompt, resolved, "user") == ["Is", " the", " sky", " green", "?", " Answer", ":"]
    assert texts(prompt, resolved, "template") == [
        "<|im_start|>", "system", "\n", "<|im_end|>", "\n", "<|im_start|>", "user", "\n",
        "<|im_end|>", "\n", "<|im_start|>", "ass", "istant", "\n",
    ]  # fmt: skip
    assert template.char_span == (0, len(prompt.text)) and template.section == "template"
    # Every token is in exactly one built-in region.
    counts = np.bincount(
        np.concatenate([r.token_indices for r in resolved.regions.values()]),
        minlength=len(prompt.tokens),
    )
    assert np.all(counts == 1)
    assert resolved.queries == {"final": len(prompt.tokens) - 1}
    assert resolved.tracked_tokens == () and resolved.spec == {}


def test_default_system_prompt_is_template(smol_tokenizer):
    prompt = render_case(Case(user="Hi", response="Sure"), smol_tokenizer)
    resolved = resolve_regions(prompt)
    assert list(resolved.regions) == ["user", "response", "template"]
    template = texts(prompt, resolved, "template")
    assert template[:6] == ["<|im_start|>", "system", "\n", "You", " are", " a"]
    assert texts(prompt, resolved, "response") == ["Sure"]


def test_multi_turn_builtins(smol_tokenizer):
    case = Case(
        messages=[
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "Q2"},
        ]
    )
    prompt = render_case(case, smol_tokenizer)
    resolved = resolve_regions(prompt)
    assert list(resolved.regions) == ["turn0_user", "turn1_assistant", "user", "template"]
    assert texts(prompt, resolved, "turn1_assistant") == ["A", "1"]
    assert resolved.regions["turn1_assistant"].section == "turn1_assistant"


def test_gemma_merged_sections_and_regions(smol_tokenizer):
    tokenizer = copy.deepcopy(smol_tokenizer)
    tokenizer.chat_template = (
        "{% for message in messages %}{% if message['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{{ '<start_of_turn>' + message['role'] + '\n' + message['content'] | trim"
        " + '<end_of_turn>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
    )
    prompt = render_case(Case(system="Rule one. Rule two.", user="Go"), tokenizer)
    spec = RegionSpec(system=[Region.text("two", "Rule two.")], user=[Region.text("go", "Go")])
    resolved = resolve_regions(prompt, spec)
    assert texts(prompt, resolved, "system") == ["Rule", " one", ".", " Rule", " two", "."]
    assert texts(prompt, resolved, "two") == [" Rule", " two", "."]
    assert texts(prompt, resolved, "go") == ["Go"]
    # The blank line that joins system and user text belongs to the template.
    separator = prompt.sections["system"][1]
    assert prompt.text[separator : separator + 2] == "\n\n"
    joins = np.flatnonzero(np.isin(token_anchors(prompt), [separator, separator + 1]))
    assert [prompt.tokens[i] for i in joins] == ["\n", "\n"]
    assert set(joins) <= set(resolved.regions["template"].token_indices)


# ---------------------------------------------------------------- region kinds


def test_full_spec_resolves(prompt):
    resolved = resolve_regions(prompt, FULL_SPEC)
    assert list(resolved.regions) == [
        "system", "user", "template", "rules", "strict", "examples", "output", "question",
    ]  # fmt: skip
    rules = resolved.regions["rules"]
    assert prompt.text[slice(*rules.char_span)] == "## Rules\nBe strict. Never guess.\n"
    assert texts(prompt, resolved, "rules") == [
        "##", " Rules", "\n", "Be", " strict", ".", " Never", " guess", ".", "\n",
    ]  # fmt: skip
    assert rules.token_indices.dtype == np.int64 and rules.token_indices.tolist() == list(
        range(8, 18)
    )
    strict = resolved.regions["strict"]
    assert strict.parent == "rules" and strict.section == "system" and not strict.builtin
    assert texts(prompt, resolved, "strict") == ["Be", " strict"]
    assert (
        prompt.text[slice(*resolved.regions["examples"].char_span)] == "## Examples\nQ: 2+2? A: 4"
    )
    assert texts(prompt, resolved, "output") == [
        "##",
        " Output",
        "\n",
        "Say",
        " Yes",
        " or",
        " No",
        ".",
    ]
    assert texts(prompt, resolved, "question") == ["Is", " the", " sky", " green", "?"]
    assert resolved.tracked_tokens == (" Yes", " No", 1234)
    assert resolved.spec == FULL_SPEC


def test_include_end(prompt):
    region = Region.between("rules", "## Rules", "## Examples", include_end=True)
    resolved = resolve_system(prompt, region)
    assert prompt.text[slice(*resolved.regions["rules"].char_span)].endswith("\n## Examples")
    assert texts(prompt, resolved, "rules")[-2:] == ["##", " Examples"]


def test_include_end_makes_siblings_overlap(prompt):
    rules = Region.between("rules", "## Rules", "## Examples", include_end=True)
    examples = Region.between("examples", "## Examples", "## Output")
    with pytest.raises(RegionOverlapError) as info:
        resolve_system(prompt, rules, examples)
    message = str(info.value)
    assert "'rules' (chars 38-82" in message and "'examples' (chars 71-96" in message
    assert "'system_prompt'" in message and "include_end" in message


def test_only_end_marker_and_only_start_char(prompt):
    intro = Region.between("intro", end="## Rules")
    tail = Region.chars("tail", 96 - 19)
    resolved = resolve_system(prompt, intro, tail)
    assert texts(prompt, resolved, "intro") == ["You", " grade", " answers", ".", "\n"]
    assert prompt.text[slice(*resolved.regions["tail"].char_span)] == "## Output\nSay Yes or No."


def test_chars_nested_relative_to_parent(prompt):
    rules = Region.between(
        "rules", "## Rules", "## Examples", children=[Region.chars("head", 0, 8)]
    )
    resolved = resolve_system(prompt, rules)
    head = resolved.regions["head"]
    assert prompt.text[slice(*head.char_span)] == "## Rules" and head.parent == "rules"
    assert texts(prompt, resolved, "head") == ["##", " Rules"]


def test_nested_pattern_grandchild(prompt):
    never = Region.pattern("never", r"Never \w+", children=[Region.text("guess", "guess")])
    rules = Region.between("rules", "## Rules", "## Examples", children=[never])
    resolved = resolve_system(prompt, rules)
    assert list(resolved.regions)[3:] == ["rules", "never", "guess"]
    assert texts(prompt, resolved, "never") == [" Never", " guess"]
    assert resolved.regions["guess"].parent == "never"
    assert texts(prompt, resolved, "guess") == [" guess"]


def test_leading_space_token_belongs_to_region_it_begins(prompt):
    # " Rules" is one token starting at the space after "##"; its anchor is "R".
    resolved = resolve_system(prompt, Region.between("rules", "Rules", "## Examples"))
    assert texts(prompt, resolved, "rules")[:2] == [" Rules", "\n"]
    assert prompt.tokens[8] == "##" and 8 not in resolved.regions["rules"].token_indices


def test_marker_mid_token(smol_tokenizer):
    prompt = render_case(Case(user="It is unbelievable"), smol_tokenizer)
    start = prompt.text.index(" unbelievable")
    assert prompt.tokens[26:28] == (" unbelie", "vable")
    assert prompt.offsets[26].tolist() == [start, start + 8]
    # "believable" starts inside " unbelie" (anchored at "u"): that token stays out.
    spec = {"user_message": {"regions": [{"name": "tail", "marker": "believable"}]}}
    resolved = resolve_regions(prompt, spec)
    assert resolved.regions["tail"].token_indices.tolist() == [27]
    assert resolved.regions["user"].token_indices.tolist() == [24, 25, 26, 27]
    # "elie" holds no token's anchor at all.
    with pytest.raises(EmptyRegionError, match=r"'user_message/mid'.*'elie'.*no token"):
        resolve_regions(prompt, RegionSpec(user=[Region.text("mid", "elie")]))


def test_emoji_split_over_tokens_stays_together(smol_tokenizer):
    prompt = render_case(Case(user="ok 😀 done"), smol_tokenizer)
    resolved = resolve_regions(prompt, RegionSpec(user=[Region.text("emoji", "😀")]))
    assert texts(prompt, resolved, "emoji") == [" 😀", "😀"]
    anchors = token_anchors(prompt)
    emoji = prompt.text.index("😀")
    assert anchors[resolved.regions["emoji"].token_indices].tolist() == [emoji, emoji]


def test_bos_token_belongs_to_template(smol_tokenizer):
    tokenizer = copy.deepcopy(smol_tokenizer)
    tokenizer.chat_template = None
    tokenizer.add_bos_token = True
    prompt = render_case(Case(system="S", user="U"), tokenizer)
    resolved = resolve_regions(prompt)
    assert token_anchors(prompt).tolist() == [-1, 0, 1, 2, 3]
    assert resolved.regions["template"].token_indices.tolist() == [0, 2, 3]
    assert resolved.regions["system"].token_indices.tolist() == [1]


# ---------------------------------------------------------------- errors


def test_marker_not_found_anywhere(prompt):
    with pytest.raises(MarkerNotFoundError) as info:
        resolve_system(prompt, Region.between("rules", "## Rulez", "## Examples"))
    message = str(info.value)
    assert "'system_prompt/rules'" in message and "start_marker '## Rulez'" in message
    assert "starting 'You grade answers.\\n## Rules" in message and "nowhere" in message


def test_marker_found_in_other_section(prompt):
    with pytest.raises(MarkerNotFoundError, match=r"marker 'sky'.*section 'user_message'"):
        resolve_system(prompt, Region.text("sky", "sky"))


def test_nested_marker_outside_parent(prompt):
    rules = Region.between("rules", "## Rules", "## Examples", children=[Region.text("q", "2+2")])
    with pytest.raises(MarkerNotFoundError) as info:
        resolve_system(prompt, rules)
    message = str(info.value)
    assert "'system_prompt/rules/q'" in message and "marker '2+2'" in message
    assert "starting '## Rules\\nBe strict" in message and "section 'system_prompt'" in message


def test_end_marker_before_start(prompt):
    with pytest.raises(RegionOrderError, match=r"'system_prompt/x'.*end_marker '## Rules'.*before"):
        resolve_system(prompt, Region.between("x", "## Examples", "## Rules"))


def test_chars_out_of_order_or_beyond_parent(prompt):
    with pytest.raises(RegionOrderError, match=r"'system_prompt/c': end_char 3 .* before"):
        resolve_system(prompt, Region.chars("c", 5, 3))
    with pytest.raises(RegionOrderError, match=r"end_char 999 lies beyond .* 101 characters"):
        resolve_system(prompt, Region.chars("c", 0, 999))


def test_zero_character_region(prompt):
    with pytest.raises(EmptyRegionError, match=r"'system_prompt/c' covers no characters"):
        resolve_system(prompt, Region.chars("c", 4, 4))


def test_duplicate_region_names(prompt):
    spec = RegionSpec(system=[Region.text("dup", "Rules")], user=[Region.text("dup", "sky")])
    with pytest.raises(RegionError, match=r"'dup' is used twice, at 'system_prompt/dup' and "):
        resolve_regions(prompt, spec)


def test_reserved_region_name():
    with pytest.raises(RegionError, match="'user' is reserved"):
        Region.text("user", "x")
    with pytest.raises(RegionError, match="'turn2_user' is reserved"):
        Region.text("turn2_user", "x")


def test_invalid_regex():
    with pytest.raises(
        RegionError, match=r"Region 'bad': pattern '\(' is not a valid Python regex"
    ):
        Region.pattern("bad", "(")
    with pytest.raises(RegionError, match=r"system_prompt/bad: .*end_pattern '\[a'"):
        RegionSpec.from_dict(
            {
                "system_prompt": {
                    "regions": [{"name": "bad", "start_marker": "a", "end_pattern": "[a"}]
                }
            }
        )


def test_conflicting_locators():
    with pytest.raises(RegionError, match=r"conflicting locators \['marker', 'start_marker'\]"):
        Region("x", start_marker="a", marker="b")
    with pytest.raises(RegionError, match="says nowhere where it is"):
        Region("x")
    with pytest.raises(RegionError, match="include_end but has no end_marker"):
        Region("x", start_marker="a", include_end=True)


def test_response_regions_without_response(prompt):
    with pytest.raises(RegionError, match=r"'response' regions \['r'\].*has no response"):
        resolve_regions(prompt, RegionSpec(response=[Region.text("r", "x")]))


def test_system_regions_without_system(smol_tokenizer):
    prompt = render_case(Case(user="Hi"), smol_tokenizer)
    with pytest.raises(RegionError, match="no system message"):
        resolve_regions(prompt, RegionSpec(system=[Region.text("you", "You")]))


# ---------------------------------------------------------------- queries


def test_every_query_form(prompt):
    queries = [
        "final",
        "last_token",
        {"after_text": "green?"},
        {"at_text": "Rules", "name": "rules_q"},
        {"at_text": " Rules"},
        {"after_text": "##", "occurrence": -1},
        {"at_text": "Say", "section": "system"},
        {"position": "final", "name": "end"},
        12,
        -2,
    ]
    resolved = resolve_regions(prompt, {"query_positions": queries})
    n = len(prompt.tokens)
    assert resolved.queries == {
        "final": n - 1,
        "last_token": 52,
        "after:green?": 51,
        "rules_q": 9,
        "at: Rules": 9,
        "after:###-1": 34,
        "at:Say@system": 36,
        "end": n - 1,
        "pos:12": 12,
        "pos:-2": n - 2,
    }
    assert (
        prompt.tokens[n - 1] == "\n" and prompt.tokens[52] == ":" and prompt.tokens[9] == " Rules"
    )
    assert prompt.tokens[51] == " Answer"  # the first token after "green?"
    assert prompt.tokens[33] == "##" and prompt.tokens[34] == " Output"
    assert prompt.tokens[36] == "Say"


def test_after_text_ending_inside_a_token(prompt):
    # The character after "Answ" lies inside the token " Answer": that token.
    resolved = resolve_regions(prompt, {"query_positions": [{"after_text": "Answ"}]})
    assert resolved.queries == {"after:Answ": 51} and prompt.tokens[51] == " Answer"


def test_query_errors(prompt):
    with pytest.raises(QueryNotFoundError, match=r"'after:zzz'.*'zzz' occurs 0 time"):
        resolve_regions(prompt, {"query_positions": [{"after_text": "zzz"}]})
    with pytest.raises(QueryNotFoundError, match=r"'Rules' occurs 1 time.*occurrence 3"):
        resolve_regions(prompt, {"query_positions": [{"at_text": "Rules", "occurrence": 3}]})
    with pytest.raises(QueryNotFoundError, match=r"999 is out of range: the prompt has 59 tokens"):
        resolve_regions(prompt, {"query_positions": [999]})
    with pytest.raises(QueryNotFoundError, match="named 'final'"):
        resolve_regions(prompt, {"query_positions": ["final", "final"]})
    with pytest.raises(QueryNotFoundError, match="is not a query position"):
        RegionSpec(queries=["end"])
    with pytest.raises(QueryNotFoundError, match="is not a query position"):
        RegionSpec(queries=[{"after_text": "a", "at_text": "b"}])


def test_last_token_without_user(smol_tokenizer):
    tokenizer = copy.deepcopy(smol_tokenizer)
    tokenizer.chat_template = None
    prompt = render_case(Case(system="Only system"), tokenizer)
    with pytest.raises(QueryNotFoundError, match="'last_token'.*no user-message tokens"):
        resolve_regions(prompt, {"query_positions": ["last_token"]})


# ---------------------------------------------------------------- tracked tokens


def test_tracked_token_ids(smol_tokenizer):
    ids, labels = tracked_token_ids([" Yes", " No", 1234], smol_tokenizer)
    assert ids.dtype == np.int64 and ids.tolist() == [9230, 2838, 1234]
    assert labels == (" Yes", " No", smol_tokenizer.decode([1234]))
    assert smol_tokenizer.encode(" Yes", add_special_tokens=False) == [9230]


def test_tracked_token_split_warns(smol_tokenizer):
    with pytest.warns(UserWarning, match=r"'unbelievable' is 3 tokens \['un', 'belie', 'vable'\]"):
        ids, labels = tracked_token_ids(["unbelievable"], smol_tokenizer)
    assert ids.tolist() == smol_tokenizer.encode("un", add_special_tokens=False)
    assert labels == ("un|believable",)  # the label says only "un" is tracked


def test_a_tracked_word_of_several_tokens_is_labelled_by_its_split(smol_tokenizer):
    """Issue 11: "Lisbon" tracked "L" while the lens said "Lisbon"."""
    pieces = smol_tokenizer.encode(" Reykjavik", add_special_tokens=False)
    assert [smol_tokenizer.decode([p]) for p in pieces] == [" Rey", "k", "jav", "ik"]
    with pytest.warns(UserWarning) as warned:
        ids, labels = tracked_token_ids([" Reykjavik", "Lisbon", " Lisbon"], smol_tokenizer)
    messages = [str(w.message) for w in warned]
    assert len(messages) == 2
    assert "labelled ' Rey|kjavik'" in messages[0] and "labelled 'L|isbon'" in messages[1]
    assert labels == (" Rey|kjavik", "L|isbon", " Lisbon")  # " Lisbon" is one token
    assert ids.tolist()[0] == pieces[0]


def test_tracked_token_id_out_of_range(smol_tokenizer):
    with pytest.raises(RegionError, match=r"id 49152 is out of range.*49152 tokens"):
        tracked_token_ids([49152], smol_tokenizer)
    with pytest.raises(RegionError, match="non-empty string or a token id"):
        tracked_token_ids([True], smol_tokenizer)


# ---------------------------------------------------------------- spec round trips


def test_spec_dict_round_trip():
    spec = RegionSpec.from_dict(FULL_SPEC)
    assert spec.to_dict() == FULL_SPEC
    assert RegionSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    rules = spec.system[0]
    assert rules.description == "what the grader must do" and rules.color == "#ff0000"
    assert rules.children == (Region.text("strict", "Be strict"),)


def test_builders_round_trip():
    spec = RegionSpec(
        system=[
            Region.between("rules", "## Rules", "## Examples", include_end=True, color="red"),
            Region.between("ex", r"## Ex", r"\n##", regex=True, children=[Region.chars("h", 0, 5)]),
        ],
        user=[Region.pattern("q", r"\?$", description="the question mark")],
        queries=[{"after_text": "A:", "occurrence": -1, "name": "a"}, -1],
        tracked_tokens=[" Yes"],
    )
    data = spec.to_dict()
    assert data["system_prompt"]["regions"][1] == {
        "name": "ex",
        "start_pattern": "## Ex",
        "end_pattern": "\\n##",
        "regions": [{"name": "h", "start_char": 0, "end_char": 5}],
    }
    assert data["system_prompt"]["regions"][0]["include_end"] is True
    assert RegionSpec.from_dict(data) == spec


def test_from_dict_unknown_keys():
    with pytest.raises(RegionError, match=r"Unknown key\(s\) \['regions'\].*'system_prompt'"):
        RegionSpec.from_dict({"regions": []})
    bad_region = {"user_message": {"regions": [{"name": "q", "marker": "x", "colour": "red"}]}}
    with pytest.raises(RegionError, match=r"'user_message/q' has unknown key\(s\) \['colour'\]"):
        RegionSpec.from_dict(bad_region)
    with pytest.raises(RegionError, match="exactly the key 'regions'"):
        RegionSpec.from_dict({"system_prompt": [{"name": "a", "marker": "b"}]})


def test_load_regions(tmp_path, prompt):
    path = tmp_path / "regions.json"
    path.write_text(json.dumps(FULL_SPEC), encoding="utf-8")
    spec = load_regions(path)
    assert spec == RegionSpec.from_dict(FULL_SPEC)
    assert list(resolve_regions(prompt, spec).queries) == [
        "final", "last_token", "after:green?", "rules_q", "pos:12",
    ]  # fmt: skip


def test_load_regions_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"system_prompt": {"regions": [],}}', encoding="utf-8")
    with pytest.raises(RegionError, match=r"broken.json is not valid JSON: .* line 1, column 34"):
        load_regions(broken)
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"user_messages": {"regions": []}}', encoding="utf-8")
    with pytest.raises(RegionError, match=r"unknown.json: Unknown key\(s\) \['user_messages'\]"):
        load_regions(unknown)
    with pytest.raises(RegionError, match="Cannot read the regions file"):
        load_regions(tmp_path / "missing.json")
