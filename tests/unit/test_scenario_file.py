"""Scenario files (Activation Lab's YAML) read and checked without a model:
Activation Lab's own example reads with its values and their defaults, and
every kind of bad input is refused with the file, the key path, what was
expected and what arrived."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import tealeaves_widgets as tw
from tealeaves_widgets.prompt.scenario import KEYS, parse_scenario

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "example_qwen_basic.yaml"

BASE = {
    "name": "mood_check",
    "model": {"id": "SmolLM2-135M-Instruct"},
    "prompt": {
        "messages": [
            {"role": "system", "content": "You are kind."},
            {"role": "user", "content": "I had a lovely day."},
        ]
    },
    "reference_states": [
        {"label": "joy", "messages": [{"role": "user", "content": "I am so happy!"}]},
        {"label": "anger", "messages": [{"role": "user", "content": "I am furious."}]},
    ],
}
MESSAGES = BASE["prompt"]["messages"]


def write(tmp_path: Path, data: object, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def changed(**edits: object) -> dict:
    """BASE with dotted keys set ("generation.seed") or removed (value ...)."""
    data = copy.deepcopy(BASE)
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[int(key)]
        if value is ...:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


def problems(tmp_path: Path, data: object) -> str:
    path = write(tmp_path, data)
    with pytest.raises(tw.ScenarioError) as caught:
        tw.read_scenario(path)
    message = str(caught.value)
    assert str(path) in message  # every error names the file
    return message


def test_activation_labs_example_reads_with_its_values():
    scenario = tw.read_scenario(EXAMPLE)
    assert scenario.name == "qwen_basic_interraction"
    assert scenario.model.id == "SmolLM2-135M-Instruct"
    assert (scenario.model.dtype, scenario.model.device) == ("float16", "auto")
    assert scenario.model.gguf_file is None and scenario.model.trust_remote_code is False
    messages = scenario.prompt.messages
    assert len(messages) == 10 and not scenario.prompt.run_at_each_message
    assert [m["role"] for m in messages] == ["user", "assistant"] * 5
    assert messages[0]["content"].startswith("I\u2019m planning a deep dive")
    assert "p\u00e2tisserie" in messages[8]["content"]  # UTF-8 read as such
    gen = scenario.generation
    assert (gen.max_new_tokens, gen.do_sample, gen.seed, gen.temperature) == (1, False, 42, 0.0)
    assert gen.top_k is None and gen.top_p is None
    capture = scenario.capture
    assert capture.top_k_probs == 20 and capture.layers is None  # "all"
    assert capture.store_dtype == "float16" and capture.logits and capture.qkv
    assert (scenario.output.dir, scenario.output.format) == ("./runs", "json+npz")
    assert scenario.reference_states == ()
    assert scenario.text == EXAMPLE.read_text(encoding="utf-8")
    assert scenario.source == str(EXAMPLE)


def test_defaults_are_activation_labs(tmp_path):
    scenario = tw.read_scenario(write(tmp_path, {k: BASE[k] for k in ("name", "model", "prompt")}))
    assert (scenario.model.dtype, scenario.model.device) == ("float16", "auto")
    gen = scenario.generation
    assert (gen.max_new_tokens, gen.do_sample, gen.temperature, gen.seed) == (8, False, 1.0, 42)
    assert scenario.capture.top_k_probs == 20 and scenario.capture.layers is None
    assert all(
        getattr(scenario.capture, flag)
        for flag in ("hidden_states", "attention_weights", "qkv", "mlp", "logits")
    )
    assert scenario.output.dir == "./runs" and scenario.reference_states == ()


def test_references_layers_and_a_prompt_list_of_one(tmp_path):
    data = changed(capture__layers=[2, 0], generation__top_k=0)
    data["prompt"] = [data["prompt"]]  # newer Activation Lab files write a list
    scenario = tw.read_scenario(write(tmp_path, data))
    assert [r.label for r in scenario.reference_states] == ["joy", "anger"]
    assert scenario.references == {
        "joy": [{"role": "user", "content": "I am so happy!"}],
        "anger": [{"role": "user", "content": "I am furious."}],
    }
    assert scenario.capture.layers == (2, 0)
    assert scenario.generation.top_k is None  # 0: no top-k filter, as in Activation Lab
    assert len(scenario.prompt.messages) == 2


def test_reading_needs_no_torch():
    code = (
        "import sys, tealeaves_widgets as tw; "
        f"s = tw.read_scenario({str(EXAMPLE)!r}); "
        "assert s.name == 'qwen_basic_interraction'; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (changed(name=...), "missing key 'name' at the top level"),
        (changed(name="mood/check"), "name: expected a non-empty name without whitespace"),
        (changed(name="mood check"), "got 'mood check' (str)"),
        (changed(name=""), "name: expected a non-empty name"),
        (changed(model=...), "missing key 'model' at the top level"),
        (changed(model__id=...), "missing key 'id' in model"),
        (changed(prompt=...), "missing key 'prompt' at the top level"),
        (changed(foo=1), "unknown key 'foo' at the top level; the keys are ['name', 'model'"),
        (
            changed(generation__temprature=0.5),
            "unknown key 'temprature' in generation; the keys are ['max_new_tokens', 'do_sample'",
        ),
        (changed(generation__temprature=0.5), "did you mean 'temperature'?"),
        (changed(model__revision="main"), "unknown key 'revision' in model"),
        (changed(capture__layer=[1]), "unknown key 'layer' in capture"),
        (
            changed(prompt__messages__1={"role": "robot", "content": "hi"}),
            "prompt.messages[1].role: expected one of ['system', 'user', 'assistant'], "
            "got 'robot' (str)",
        ),
        (
            changed(prompt__messages__1={"role": "user", "content": 42}),
            "prompt.messages[1].content: expected a string, got 42 (int)",
        ),
        (
            changed(prompt__messages__1={"role": "user", "content": "x", "name": "bob"}),
            "unknown key 'name' in prompt.messages[1]; the keys are ['role', 'content']",
        ),
        (
            changed(prompt__messages__1={"content": "x"}),
            "missing key 'role' in prompt.messages[1]",
        ),
        (changed(prompt__messages=[]), "prompt.messages: the list is empty"),
        (changed(prompt__messages="hello"), "prompt.messages: expected a list of {role, content}"),
        (
            changed(model__dtype="float64"),
            "model.dtype: expected one of ['float16', 'bfloat16', 'float32'], got 'float64' (str)",
        ),
        (changed(model__device="cuda"), "model.device: expected one of ['auto', 'mps', 'cpu']"),
        (changed(capture__store_dtype="int8"), "capture.store_dtype: expected one of"),
        (changed(output__format="parquet"), "output.format: expected one of ['json+npz']"),
        (
            changed(
                reference_states__0={"label": "calm/happy", "messages": BASE["prompt"]["messages"]}
            ),
            "reference_states[0].label: expected a non-empty name without whitespace or slashes",
        ),
        (
            changed(reference_states__1={"label": "joy", "messages": MESSAGES}),
            "reference_states[1].label: the label 'joy' is used twice",
        ),
        (
            changed(reference_states__0={"label": "calm", "messages": []}),
            "reference_states[0].messages: the list is empty",
        ),
        (changed(reference_states={"joy": "x"}), "reference_states: expected a list"),
        (
            changed(generation__max_new_tokens=0),
            "generation.max_new_tokens: expected an integer >= 1, got 0 (int)",
        ),
        (changed(generation__max_new_tokens="8"), "got '8' (str)"),
        (
            changed(generation__do_sample="yes please"),
            "generation.do_sample: expected true or false",
        ),
        (changed(generation__seed=-1), "generation.seed: expected an integer >= 0"),
        (changed(generation__top_p=1.5), "generation.top_p: expected a number in (0, 1] or null"),
        (changed(generation__temperature=-1), "generation.temperature: expected a number >= 0"),
        (
            changed(generation__do_sample=True, generation__temperature=0),
            "generation.temperature: sampling (do_sample: true) needs a temperature > 0",
        ),
        (changed(capture__top_k_probs=-1), "capture.top_k_probs: expected an integer >= 0"),
        (changed(capture__layers="some"), 'capture.layers: expected "all" or a list of layer'),
        (changed(capture__layers=[1, True]), 'capture.layers: expected "all" or a list'),
        (changed(capture__layers=[]), "capture.layers: the list is empty"),
        (changed(capture__layers=[-1, 2]), "layer indices count from 0, got [-1]"),
        (changed(capture__layers=[1, 2, 1]), "capture.layers: [1] listed more than once"),
        (changed(capture__hidden_states=1), "capture.hidden_states: expected true or false"),
        (changed(output__dir=5), "output.dir: expected a string, got 5 (int)"),
        (changed(generation=[1, 2]), "generation: expected a mapping of keys to values"),
    ],
)
def test_bad_input_is_refused_with_its_key_path(tmp_path, data, expected):
    assert expected in problems(tmp_path, data)


def test_every_problem_is_listed_at_once(tmp_path):
    message = problems(
        tmp_path,
        changed(name="a/b", generation__foo=1, prompt__messages__0={"role": "bot", "content": "x"}),
    )
    assert "(3 problems)" in message
    for part in ("name:", "unknown key 'foo' in generation", "prompt.messages[0].role"):
        assert part in message


def test_several_prompts_are_refused(tmp_path):
    data = changed()
    data["prompt"] = [data["prompt"], data["prompt"]]
    assert "a list of prompts is run here only when it holds one; got 2" in problems(tmp_path, data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- just\n- a list\n", "the file: expected a mapping of keys to values"),
        ("name: a\nname: b\nmodel: {id: x}\n", "found the key 'name' twice"),
        ("name: [unclosed\n", "is not valid YAML at line"),
        ("name: !!python/object:os.system x\n", "is not valid YAML"),
    ],
)
def test_bad_yaml_is_refused(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(tw.ScenarioError, match="bad.yaml") as caught:
        tw.read_scenario(path)
    assert expected in str(caught.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(tw.ScenarioError, match="No scenario file at"):
        tw.read_scenario(tmp_path / "nope.yaml")
    with pytest.raises(tw.ScenarioError, match="is a folder"):
        tw.read_scenario(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(tw.ScenarioError, match="not UTF-8"):
        tw.read_scenario(latin)


def test_scenario_error_is_an_input_file_error():
    assert issubclass(tw.ScenarioError, tw.InputFileError)
    with pytest.raises(ValueError):
        parse_scenario("name: 1\n")


def test_every_key_activation_lab_defines_is_known():
    # Activation Lab's schema (src/activation_lab/scenario.py), key for key.
    assert KEYS[""] == (
        "name",
        "model",
        "prompt",
        "generation",
        "capture",
        "output",
        "reference_states",
    )
    assert set(KEYS["capture"]) == {
        "hidden_states",
        "attention_weights",
        "qkv",
        "mlp",
        "logits",
        "top_k_probs",
        "layers",
        "store_dtype",
    }
