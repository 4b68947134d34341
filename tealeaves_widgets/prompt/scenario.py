"""Reading a scenario file in Activation Lab's YAML format: `read_scenario(path)`
checks it and returns a `core.scenario.Scenario`; `tw.load_scenario` runs it.

The format, section by section (defaults are Activation Lab's)::

    name: my_scenario            # required; no whitespace or slashes
    model:
      id: Qwen/Qwen2.5-3B-Instruct   # required
      gguf_file: null
      dtype: float16             # float16 | bfloat16 | float32
      device: auto               # auto | mps | cpu
      trust_remote_code: false
    prompt:
      run_at_each_message: false
      messages:                  # required, at least one
        - {role: user, content: "..."}     # role: system | user | assistant
    generation: {max_new_tokens: 8, do_sample: false, temperature: 1.0,
                 top_k: null, top_p: null, seed: 42}
    capture: {hidden_states: true, attention_weights: true, qkv: true, mlp: true,
              logits: true, top_k_probs: 20, layers: all, store_dtype: float16}
    output: {dir: ./runs, format: json+npz}
    reference_states:            # optional
      - label: calm              # no whitespace or slashes
        messages: [{role: user, content: "..."}]

Stricter than Activation Lab (whose schema ignores unknown keys and coerces
"8" to 8): an unknown key, a value of the wrong type, a repeated key or a
value out of range is an error. Every problem of the file is listed in one
`ScenarioError`, each with its key path ("prompt.messages[2].role"), what was
expected and what arrived. `prompt` may also be a list holding one prompt (as
newer Activation Lab files write it); several prompts are refused.

Standard library and PyYAML only: no model is needed to check a file.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from ..core.scenario import (
    DEVICES,
    DTYPES,
    OUTPUT_FORMATS,
    CaptureSpec,
    GenerationSpec,
    ModelSpec,
    OutputSpec,
    PromptSpec,
    ReferenceState,
    Scenario,
)
from ..errors import ScenarioError
from .case import ROLES
from .checks import brief

KEYS: dict[str, tuple[str, ...]] = {
    "": (
        "name",
        "model",
        "prompt",
        "generation",
        "capture",
        "output",
        "reference_states",
    ),
    "model": ("id", "gguf_file", "dtype", "device", "trust_remote_code"),
    "prompt": ("messages", "run_at_each_message"),
    "generation": ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "seed"),
    "capture": (
        "hidden_states",
        "attention_weights",
        "qkv",
        "mlp",
        "logits",
        "top_k_probs",
        "layers",
        "store_dtype",
    ),
    "output": ("dir", "format"),
    "reference": ("label", "messages"),
    "message": ("role", "content"),
}
"""The keys each section may hold ("" is the top level)."""
REQUIRED: dict[str, tuple[str, ...]] = {
    "": ("name", "model", "prompt"),
    "model": ("id",),
    "prompt": ("messages",),
    "reference": ("label", "messages"),
    "message": ("role", "content"),
}
_CAPTURE_FLAGS = ("hidden_states", "attention_weights", "qkv", "mlp", "logits")
_MISSING = object()


def read_scenario(path: str | PathLike[str]) -> Scenario:
    """Read and check the scenario file at `path` (Activation Lab's YAML; see
    this module's docstring), without loading any model. Raises one
    `ScenarioError` listing every problem, each with its key path."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ScenarioError(
            f"No scenario file at {path}. Check the path (it is taken from the current "
            f"directory, {Path.cwd()}, when relative)."
        ) from error
    except IsADirectoryError as error:
        raise ScenarioError(
            f"{path} is a folder; give the path of one scenario .yaml file."
        ) from error
    except OSError as error:
        raise ScenarioError(
            f"Cannot read the scenario file {path}: {error.strerror or error}."
        ) from error
    except UnicodeDecodeError as error:
        raise ScenarioError(
            f"The scenario file {path} is not UTF-8 text ({error.reason} at byte "
            f"{error.start}). Save it as UTF-8."
        ) from error
    return parse_scenario(text, source=str(path))


def parse_scenario(text: str, source: str = "<scenario text>") -> Scenario:
    """`read_scenario` of YAML text; `source` names it in messages."""
    data = _load_yaml(text, source)
    reader = _Reader()
    scenario = reader.scenario(data, source, text)
    if reader.problems or scenario is None:
        n = len(reader.problems)
        listed = "\n".join(f"  - {problem}" for problem in reader.problems)
        raise ScenarioError(
            f"{source} is not a valid scenario ({n} problem{'s' if n > 1 else ''}):\n{listed}\n"
            "Fix the file (the format is Activation Lab's: see "
            "help(tealeaves_widgets.prompt.scenario))."
        )
    return scenario


# ---------------------------------------------------------------- YAML


class _StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` (no Python objects, only plain data) that refuses a
    key repeated in one mapping, which plain YAML loading silently resolves
    to the last value."""


def _mapping_without_repeats(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            repeated = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key: construct_mapping says so
            break
        if repeated:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {key!r} twice (the first would be ignored); keep one",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_repeats,  # pyright: ignore[reportArgumentType]
)


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(
            f"{source} is not valid YAML{where}: {error.problem or error}. Fix the file."
        ) from error
    except yaml.YAMLError as error:
        raise ScenarioError(f"{source} is not valid YAML: {error}. Fix the file.") from error


# ---------------------------------------------------------------- checks


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _got(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return f"{brief(value)} ({type(value).__name__})"


def _safe_name(value: str) -> bool:
    return bool(value) and not any(c.isspace() or c in "/\\" for c in value)


class _Reader:
    """Builds a `Scenario` from parsed YAML, recording every problem instead of
    stopping at the first (each with its key path)."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}" if key else message)

    def expect(self, key: str, expected: str, value: Any) -> None:
        self.problem(key, f"expected {expected}, got {_got(value)}.")

    # -- sections ----------------------------------------------------------------

    def section(self, data: Any, key: str, kind: str) -> dict:
        """The mapping at `key`, {} (after a problem) when it is not one;
        unknown and missing keys are problems."""
        if not isinstance(data, Mapping):
            self.expect(key or "the file", "a mapping of keys to values", data)
            return {}
        allowed = KEYS[kind]
        where = f"in {key}" if key else "at the top level"
        for name in data:
            if name not in allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.problem(
                    "",
                    f"unknown key {name!r} {where}; the keys are {list(allowed)}. {hint}Remove "
                    "it or fix its spelling.",
                )
        for name in REQUIRED.get(kind, ()):
            if name not in data:
                self.problem("", f"missing key {name!r} {where}; it is required.")
        return {name: value for name, value in data.items() if name in allowed}

    def scenario(self, data: Any, source: str, text: str) -> Scenario | None:
        if data is None:
            self.problem("", "the file is empty; a scenario needs at least name, model and prompt.")
            return None
        top = self.section(data, "", "")
        name = self.label(top.get("name", _MISSING), "name")
        model = self.model(top.get("model", _MISSING))
        prompt = self.prompt(top.get("prompt", _MISSING))
        generation = self.generation(top.get("generation"))
        capture = self.capture(top.get("capture"))
        output = self.output(top.get("output"))
        references = self.references(top.get("reference_states"))
        if self.problems:
            return None
        return Scenario(
            name=name,
            model=model,
            prompt=prompt,
            generation=generation,
            capture=capture,
            output=output,
            reference_states=references,
            source=source,
            text=text,
        )

    def model(self, data: Any) -> Any:
        if data is _MISSING:
            return None
        values = self.section(data, "model", "model")
        model_id = self.string(values.get("id", _MISSING), "model.id")
        gguf = values.get("gguf_file")
        if gguf is not None:
            gguf = self.string(gguf, "model.gguf_file")
        return ModelSpec(
            id=model_id,
            gguf_file=gguf,
            dtype=self.choice(values.get("dtype", "float16"), "model.dtype", DTYPES),
            device=self.choice(values.get("device", "auto"), "model.device", DEVICES),
            trust_remote_code=self.flag(
                values.get("trust_remote_code", False), "model.trust_remote_code"
            ),
        )

    def prompt(self, data: Any) -> Any:
        if data is _MISSING:
            return None
        if isinstance(data, list):
            if len(data) != 1:
                self.problem(
                    "prompt",
                    f"a list of prompts is run here only when it holds one; got {len(data)}. "
                    "Put each prompt in a scenario file of its own.",
                )
                return None
            data = data[0]
            key = "prompt[0]"
        else:
            key = "prompt"
        values = self.section(data, key, "prompt")
        messages = self.messages(values.get("messages", _MISSING), f"{key}.messages")
        every = self.flag(values.get("run_at_each_message", False), f"{key}.run_at_each_message")
        return PromptSpec(messages=messages, run_at_each_message=every)

    def generation(self, data: Any) -> GenerationSpec:
        values = self.section(data, "generation", "generation") if data is not None else {}
        default = GenerationSpec()
        top_k = values.get("top_k")
        if top_k is not None:
            top_k = self.whole(top_k, "generation.top_k", 0) or None  # 0: no filter
        top_p = values.get("top_p")
        if top_p is not None and not (_is_number(top_p) and 0 < top_p <= 1):
            self.expect("generation.top_p", "a number in (0, 1] or null", top_p)
            top_p = None
        spec = GenerationSpec(
            max_new_tokens=self.whole(
                values.get("max_new_tokens", default.max_new_tokens),
                "generation.max_new_tokens",
                1,
            ),
            do_sample=self.flag(values.get("do_sample", default.do_sample), "generation.do_sample"),
            temperature=self.number(
                values.get("temperature", default.temperature), "generation.temperature"
            ),
            top_k=top_k,
            top_p=None if top_p is None else float(top_p),
            seed=self.whole(values.get("seed", default.seed), "generation.seed", 0),
        )
        if spec.do_sample and _is_number(spec.temperature) and not spec.temperature > 0:
            self.problem(
                "generation.temperature",
                f"sampling (do_sample: true) needs a temperature > 0, got {spec.temperature!r}. "
                "Raise it, or set do_sample: false for greedy decoding.",
            )
        return spec

    def capture(self, data: Any) -> CaptureSpec:
        values = self.section(data, "capture", "capture") if data is not None else {}
        flags = {
            name: self.flag(values.get(name, True), f"capture.{name}") for name in _CAPTURE_FLAGS
        }
        return CaptureSpec(
            **flags,
            top_k_probs=self.whole(values.get("top_k_probs", 20), "capture.top_k_probs", 0),
            layers=self.layers(values.get("layers", "all")),
            store_dtype=self.choice(
                values.get("store_dtype", "float16"), "capture.store_dtype", DTYPES
            ),
        )

    def output(self, data: Any) -> OutputSpec:
        values = self.section(data, "output", "output") if data is not None else {}
        return OutputSpec(
            dir=self.string(values.get("dir", "./runs"), "output.dir"),
            format=self.choice(values.get("format", "json+npz"), "output.format", OUTPUT_FORMATS),
        )

    def references(self, data: Any) -> tuple[ReferenceState, ...]:
        if data is None:
            return ()
        if not isinstance(data, list):
            self.expect("reference_states", "a list of {label, messages}", data)
            return ()
        out, seen = [], set()
        for i, item in enumerate(data):
            key = f"reference_states[{i}]"
            values = self.section(item, key, "reference")
            label = self.label(values.get("label", _MISSING), f"{key}.label")
            messages = self.messages(values.get("messages", _MISSING), f"{key}.messages")
            if isinstance(label, str) and label in seen:
                self.problem(
                    f"{key}.label",
                    f"the label {label!r} is used twice; give each reference its own label.",
                )
            seen.add(label)
            out.append(ReferenceState(label=label, messages=messages))
        return tuple(out)

    # -- values ------------------------------------------------------------------

    def messages(self, data: Any, key: str) -> tuple[dict, ...]:
        if data is _MISSING:
            return ()
        if not isinstance(data, list):
            self.expect(key, "a list of {role, content} messages", data)
            return ()
        if not data:
            self.problem(key, "the list is empty; give at least one message.")
            return ()
        out = []
        for i, item in enumerate(data):
            where = f"{key}[{i}]"
            values = self.section(item, where, "message")
            role = values.get("role", _MISSING)
            if role is not _MISSING and role not in ROLES:
                self.expect(f"{where}.role", f"one of {list(ROLES)}", role)
            content = values.get("content", _MISSING)
            if content is not _MISSING:
                content = self.string(content, f"{where}.content")
            out.append({"role": role, "content": content})
        return tuple(out)

    def layers(self, data: Any) -> tuple[int, ...] | None:
        if data == "all":
            return None
        if not isinstance(data, list) or not all(_is_int(x) for x in data):
            self.expect("capture.layers", '"all" or a list of layer indices (ints)', data)
            return None
        if not data:
            self.problem("capture.layers", 'the list is empty; name at least one layer, or "all".')
        negative = [x for x in data if x < 0]
        if negative:
            self.problem(
                "capture.layers",
                f"layer indices count from 0, got {negative}. Use 0 for the first layer.",
            )
        repeated = sorted({x for x in data if data.count(x) > 1})
        if repeated:
            self.problem("capture.layers", f"{repeated} listed more than once; list each once.")
        return tuple(data)

    def label(self, value: Any, key: str) -> str:
        if value is _MISSING:
            return ""
        if not isinstance(value, str) or not _safe_name(value):
            self.expect(
                key,
                "a non-empty name without whitespace or slashes (it names files), e.g. 'calm_user'",
                value,
            )
        return value

    def string(self, value: Any, key: str) -> str:
        if value is _MISSING:
            return ""
        if not isinstance(value, str):
            self.expect(key, "a string", value)
        return value

    def flag(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.expect(key, "true or false", value)
        return value

    def whole(self, value: Any, key: str, low: int) -> int:
        if not _is_int(value) or value < low:
            self.expect(key, f"an integer >= {low}", value)
        return value

    def number(self, value: Any, key: str) -> float:
        if not _is_number(value) or value < 0:
            self.expect(key, "a number >= 0", value)
            return value
        return float(value)

    def choice(self, value: Any, key: str, choices: Sequence[str]) -> str:
        if value not in choices:
            self.expect(key, f"one of {list(choices)}", value)
        return value


__all__ = ["KEYS", "REQUIRED", "parse_scenario", "read_scenario"]
