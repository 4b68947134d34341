"""Cases and their rendering, against the real SmolLM2 tokenizer (ChatML)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from tealeaves_widgets.errors import ChatTemplateError, TealeavesError
from tealeaves_widgets.prompt.case import Case
from tealeaves_widgets.prompt.render import RenderedPrompt, has_system_role, render_case

SMOL_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

GEMMA_STYLE_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def gemma_tokenizer(smol_tokenizer):
    """SmolLM2's tokenizer with a Gemma-style template that has no system role."""
    tokenizer = copy.deepcopy(smol_tokenizer)
    tokenizer.chat_template = GEMMA_STYLE_TEMPLATE
    return tokenizer


@pytest.fixture(scope="module")
def plain_tokenizer(smol_tokenizer):
    tokenizer = copy.deepcopy(smol_tokenizer)
    tokenizer.chat_template = None
    return tokenizer


def section_text(prompt: RenderedPrompt, name: str) -> str:
    start, end = prompt.sections[name]
    return prompt.text[start:end]


def check_offsets(prompt: RenderedPrompt) -> None:
    starts, ends = prompt.offsets[:, 0], prompt.offsets[:, 1]
    assert prompt.offsets.dtype == np.int64 and prompt.token_ids.dtype == np.int64
    assert prompt.offsets.shape == (len(prompt.token_ids), 2)
    assert np.all(np.diff(starts) >= 0) and np.all(np.diff(ends) >= 0)
    assert np.all(starts <= ends) and starts.min() >= 0 and ends.max() <= len(prompt.text)
    assert prompt.tokens == tuple(prompt.text[s:e] for s, e in prompt.offsets.tolist())


# ---------------------------------------------------------------- Case


def test_case_role_fields_to_messages():
    case = Case(system="Be brief.", user="Hi", response="Hello")
    assert case.to_messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert case.has_response
    assert not Case(user="Hi", response="").has_response
    assert Case(user="Hi", response="").to_messages() == [{"role": "user", "content": "Hi"}]


def test_case_messages_list_is_stored_as_tuple_copy():
    messages = [{"role": "user", "content": "Hi"}]
    case = Case(messages=messages)
    messages[0]["content"] = "changed"
    assert case.messages == ({"role": "user", "content": "Hi"},)


@pytest.mark.parametrize(
    "case",
    [
        Case(system="S", user="U", response="", name="empty response"),
        Case(user="  spaced  ", response="Answer: "),
        Case(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]),
    ],
)
def test_case_dict_round_trip(case):
    data = case.to_dict()
    assert Case.from_dict(json.loads(json.dumps(data))) == case
    assert Case.from_dict(data).to_dict() == data


def test_case_dict_keeps_empty_response():
    assert Case(user="U", response="").to_dict() == {"user": "U", "response": ""}


def test_case_rejects_both_messages_and_roles():
    with pytest.raises(ChatTemplateError, match="either `messages` or the role fields"):
        Case(user="U", messages=[{"role": "user", "content": "U"}])


def test_case_rejects_bad_messages():
    with pytest.raises(ChatTemplateError, match=r"messages\[0\].*'role' and 'content'"):
        Case(messages=[{"role": "user", "content": "U", "name": "bob"}])
    with pytest.raises(ChatTemplateError, match=r"role in \['system', 'user', 'assistant'\]"):
        Case(messages=[{"role": "tool", "content": "U"}])
    with pytest.raises(ChatTemplateError, match="needs a user message"):
        Case()


def test_case_from_dict_unknown_key():
    with pytest.raises(ChatTemplateError, match=r"Unknown Case key\(s\) \['prompt'\]"):
        Case.from_dict({"prompt": "x"})


# ---------------------------------------------------------------- ChatML


def test_chatml_without_system_injects_default_outside_sections(smol_tokenizer):
    prompt = render_case(Case(user="Hi there"), smol_tokenizer)
    assert prompt.layout == "chat_template"
    assert prompt.text == (
        f"<|im_start|>system\n{SMOL_DEFAULT_SYSTEM}<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    )
    assert list(prompt.sections) == ["user"]
    assert section_text(prompt, "user") == "Hi there"
    assert prompt.tokens[-3:] == ("ass", "istant", "\n")  # generation prompt
    assert prompt.messages == ({"role": "user", "content": "Hi there"},)
    check_offsets(prompt)


def test_chatml_with_system_and_response(smol_tokenizer):
    case = Case(system="Be brief.", user="Is it?", response="Answer: ")
    prompt = render_case(case, smol_tokenizer)
    assert prompt.text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nIs it?<|im_end|>\n"
        "<|im_start|>assistant\nAnswer: "
    )
    assert list(prompt.sections) == ["system", "user", "response"]
    assert [section_text(prompt, k) for k in prompt.sections] == ["Be brief.", "Is it?", "Answer: "]
    # The response is continued: no end-of-turn token closes it.
    assert prompt.tokens[-3:] == ("Answer", ":", " ")
    assert "<|im_end|>" not in prompt.text[prompt.sections["response"][0] :]
    check_offsets(prompt)


def test_chatml_single_letter_content_is_not_found_in_markup(smol_tokenizer):
    # "a" occurs in "<|im_start|>" and "assistant" before the content itself.
    case = Case(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "a"}])
    prompt = render_case(case, smol_tokenizer)
    assert prompt.sections == {"user": (115, 116), "response": (149, 150)}
    assert prompt.text[115:116] == "a" and prompt.text[127:149] == "<|im_start|>assistant\n"


def test_multi_turn_sections(smol_tokenizer):
    case = Case(
        messages=[
            {"role": "system", "content": "Sys."},
            {"role": "user", "content": "First question"},
            {"role": "assistant", "content": "First answer"},
            {"role": "user", "content": "Second question"},
        ]
    )
    prompt = render_case(case, smol_tokenizer)
    assert list(prompt.sections) == ["system", "turn1_user", "turn2_assistant", "user"]
    assert [section_text(prompt, k) for k in prompt.sections] == [
        "Sys.",
        "First question",
        "First answer",
        "Second question",
    ]
    assert prompt.text.endswith("Second question<|im_end|>\n<|im_start|>assistant\n")


def test_multi_turn_final_assistant_is_response(smol_tokenizer):
    case = Case(
        messages=[
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "A2 so far"},
        ]
    )
    prompt = render_case(case, smol_tokenizer)
    assert list(prompt.sections) == ["turn0_user", "turn1_assistant", "user", "response"]
    assert prompt.text.endswith("<|im_start|>assistant\nA2 so far")


def test_chatml_has_system_role(smol_tokenizer, gemma_tokenizer):
    assert has_system_role(smol_tokenizer)
    assert not has_system_role(gemma_tokenizer)


# ---------------------------------------------------------------- Gemma-style merge


def test_gemma_merges_system_into_first_user_turn(gemma_tokenizer):
    case = Case(system="Follow the rules.", user="What now?")
    prompt = render_case(case, gemma_tokenizer)
    assert prompt.layout == "chat_template_merged_system"
    assert prompt.text == (
        "<|im_start|><start_of_turn>user\nFollow the rules.\n\nWhat now?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert section_text(prompt, "system") == "Follow the rules."
    assert section_text(prompt, "user") == "What now?"
    assert prompt.messages == ({"role": "user", "content": "Follow the rules.\n\nWhat now?"},)
    check_offsets(prompt)


def test_gemma_merge_with_trimmed_whitespace_and_response(gemma_tokenizer):
    case = Case(system="  Rules here. ", user=" Question? ", response="Answer: ")
    prompt = render_case(case, gemma_tokenizer)
    # The template trims each content: the leading system spaces and the
    # response's trailing space are gone; sections cover what is left.
    assert section_text(prompt, "system") == "Rules here. "
    assert section_text(prompt, "user") == " Question?"
    assert section_text(prompt, "response") == "Answer:"
    assert prompt.text.endswith("<start_of_turn>model\nAnswer:")


def test_forced_system_role_on_gemma_fails_clearly(gemma_tokenizer):
    with pytest.raises(ChatTemplateError, match="System role not supported"):
        render_case(Case(system="S", user="U"), gemma_tokenizer, system_role=True)


def test_forced_no_system_role_merges_on_chatml(smol_tokenizer):
    prompt = render_case(Case(system="S1", user="U1"), smol_tokenizer, system_role=False)
    assert prompt.layout == "chat_template_merged_system"
    assert section_text(prompt, "system") == "S1" and section_text(prompt, "user") == "U1"
    assert SMOL_DEFAULT_SYSTEM in prompt.text  # the template injects its default again


# ---------------------------------------------------------------- plain layout


def test_plain_layout_without_bos(plain_tokenizer):
    prompt = render_case(Case(system="S", user="U", response="R"), plain_tokenizer)
    assert prompt.layout == "plain"
    assert prompt.text == "S\n\nU\n\nR"
    assert prompt.sections == {"system": (0, 1), "user": (3, 4), "response": (6, 7)}
    assert prompt.tokens == ("S", "\n", "\n", "U", "\n", "\n", "R")


def test_plain_layout_with_default_bos(plain_tokenizer):
    tokenizer = copy.deepcopy(plain_tokenizer)
    tokenizer.add_bos_token = True
    prompt = render_case(Case(user="U"), tokenizer)
    assert prompt.text == "U"
    assert prompt.token_ids.tolist() == [tokenizer.bos_token_id, 69]
    assert prompt.offsets.tolist() == [[0, 0], [0, 1]]
    assert prompt.tokens == ("", "U")
    check_offsets(prompt)


# ---------------------------------------------------------------- offsets


def test_unicode_offsets(smol_tokenizer):
    prompt = render_case(Case(user="café 😀 naïve 日本"), smol_tokenizer)
    check_offsets(prompt)
    start, end = prompt.sections["user"]
    inside = [i for i, (s, e) in enumerate(prompt.offsets.tolist()) if start <= s and e <= end]
    # Byte-level BPE splits the emoji over two tokens and "日" over three; each
    # piece spans the whole character, so neighbouring spans overlap.
    assert [prompt.tokens[i] for i in inside] == [
        "c", "af", "é", " 😀", "😀", " na", "ïve", " 日", "日", "日", "本",
    ]  # fmt: skip
    emoji = prompt.text.index("😀")
    assert prompt.offsets[inside[3]].tolist() == [emoji - 1, emoji + 1]
    assert prompt.offsets[inside[4]].tolist() == [emoji, emoji + 1]
    kanji = prompt.text.index("日")
    assert [prompt.offsets[i].tolist() for i in inside[7:10]] == [
        [kanji - 1, kanji + 1], [kanji, kanji + 1], [kanji, kanji + 1],
    ]  # fmt: skip


def test_slow_tokenizer_is_refused(smol_tokenizer):
    class Slow:
        is_fast = False
        chat_template = None

    with pytest.raises(ChatTemplateError, match="needs a fast"):
        render_case(Case(user="U"), Slow())


def test_render_case_wants_a_case(smol_tokenizer):
    with pytest.raises(TealeavesError, match="expects a Case"):
        render_case({"user": "U"}, smol_tokenizer)


def test_odd_offsets_are_made_monotone_and_clipped():
    from tealeaves_widgets.prompt.render import _monotone_offsets

    odd = np.array([[0, 3], [2, 2], [1, 5], [4, 9]], dtype=np.int64)
    assert _monotone_offsets(odd, 6).tolist() == [[0, 3], [2, 3], [2, 5], [4, 6]]
    assert _monotone_offsets(np.zeros((0, 2), dtype=np.int64), 0).shape == (0, 2)
