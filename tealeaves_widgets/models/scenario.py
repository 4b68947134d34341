"""`tw.load_scenario`: run a scenario file in Activation Lab's YAML format on
our capture, and return a `core.scenario.ScenarioResult`.

What a scenario runs, in order (nothing is written to disk: `result.save()`
does that, atomically):

1. the model: `model=` if given (its id must be the scenario's unless
   `ignore_model_id=True`), else `tw.load_model(model.id, dtype=model.dtype)`
   on `model.device`; "SmolLM2-135M-Instruct" is the embedded model. A model
   that is neither on this machine nor downloadable is a
   `ModelNotInstalledError` naming the file and the id;
2. `Model.generate_capture(Case(messages=prompt.messages), ...)` with the
   `generation` options and `capture.top_k_probs`;
3. `Model.conversation_snapshots(prompt.messages, reference_states,
   readout="gen_prompt")`: each message prefix rendered with the generation
   prompt and read at its last token, as Activation Lab reads its snapshots;
4. with `prompt.run_at_each_message`, `Model.conversation_scan(messages)`:
   one run per message prefix.

Where we differ from Activation Lab, on purpose:

- A conversation that ends with an assistant message is a prefilled answer,
  as in every `tw.Case`: generation continues that message (its end-of-turn
  token is not rendered). Activation Lab renders the template with the
  generation prompt whatever the last role, so it closes the assistant
  message and starts a new assistant turn.
- Activation Lab also snapshots the conversation with the generated reply
  appended; we snapshot the scenario's messages only (run
  `model.conversation_snapshots` on `messages + [reply]` for that one).
- With `run_at_each_message` Activation Lab generates after every prefix;
  we generate once, after the whole conversation, and capture each prefix
  (`ScenarioResult.scan`).
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING, Any

from ..core.scenario import READOUT, Scenario, ScenarioResult, check_layers
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    ModelNotInstalledError,
    ScenarioError,
    TealeavesError,
)
from ..prompt.case import Case
from ..prompt.scenario import read_scenario
from .loading import EMBEDDED_MODEL_ID

if TYPE_CHECKING:
    from .model import Model


def load_scenario(
    path: str | PathLike[str],
    model: Model | None = None,
    *,
    ignore_model_id: bool = False,
) -> ScenarioResult:
    """Read the scenario file at `path` (Activation Lab's YAML) and run it.

    `model`: a model already loaded (`tw.load_model(...)`), used instead of
    loading `model.id`; its `model_id` must equal the scenario's `model.id`
    unless `ignore_model_id=True` (run a scenario written for another model
    on this one: the result's repr says which ran). Without `model`, the
    scenario's model is loaded in its `dtype` on its `device` ("auto": the
    GPUs when there are some, else MPS when there is, else the CPU;
    `device_map` None on a CPU-only machine).

    The capture section: `top_k_probs` is the generation's top-k (0 keeps
    the top 1), `logits` keeps the (step, vocab) raw logits
    (`result.generation.logits`, saved as logits.npy), and `layers` ("all"
    or indices, checked against the model) are the layers the result's
    `compare` and `message_table` report and save; the snapshots themselves
    keep every layer. `hidden_states`, `attention_weights`, `qkv`, `mlp` and
    `store_dtype` are recorded only: the capture always keeps the attention
    rows and the logit lens of every generated position and the residual
    states of every message, in float32, and never stores whole q/k/v or MLP
    tensors.

    Returns a `tw.ScenarioResult`; nothing is written until `result.save()`.
    See `tealeaves_widgets.models.scenario` for where this differs from
    Activation Lab.
    """
    if not isinstance(ignore_model_id, bool):
        raise ArgumentTypeError(f"ignore_model_id must be True or False, got {ignore_model_id!r}.")
    return run_scenario(read_scenario(path), model, ignore_model_id=ignore_model_id)


def run_scenario(
    scenario: Scenario, model: Model | None = None, *, ignore_model_id: bool = False
) -> ScenarioResult:
    """Run a checked `Scenario` (`tw.read_scenario`); see `load_scenario`."""
    if not isinstance(scenario, Scenario):
        raise ArgumentTypeError(
            f"run_scenario expects a tw.Scenario (from tw.read_scenario), got "
            f"{type(scenario).__name__}."
        )
    loaded = _model_for(scenario, model, ignore_model_id)
    layers = check_layers(
        scenario.capture.layers, loaded.shape.n_layers, scenario.where, loaded.model_id
    )
    messages = [dict(m) for m in scenario.prompt.messages]
    options = scenario.generation
    try:
        generation = loaded.generate_capture(
            Case(messages=messages),
            max_new_tokens=options.max_new_tokens,
            do_sample=options.do_sample,
            temperature=options.temperature,
            top_k=options.top_k,
            top_p=options.top_p,
            seed=options.seed,
            top_k_probs=max(1, scenario.capture.top_k_probs),
            keep_logits=scenario.capture.logits,
        )
        snapshots = loaded.conversation_snapshots(
            messages, scenario.references or None, readout=READOUT
        )
        scan = loaded.conversation_scan(messages) if scenario.prompt.run_at_each_message else None
    except TealeavesError as error:
        raise type(error)(f"{scenario.where}: {error}") from error
    return ScenarioResult(
        scenario=scenario,
        generation=generation,
        snapshots=snapshots,
        layers=layers,
        scan=scan,
        model_info=loaded.info(),
    )


def _model_for(scenario: Scenario, model: Any, ignore_model_id: bool) -> Model:
    """The model to run on: `model` (checked against the scenario's id), or
    the scenario's model loaded."""
    from .model import Model

    asked = scenario.model.id
    if model is not None:
        if not isinstance(model, Model):
            raise ArgumentTypeError(
                f"model must be a model from tw.load_model(...), got {type(model).__name__}. "
                "Wrap a transformers model with tw.load_model(hf_model, tokenizer=tokenizer)."
            )
        if model.model_id != asked and not ignore_model_id:
            raise ArgumentError(
                f"{scenario.where} names the model {asked!r}, but the model passed is "
                f"{model.model_id!r}. Pass ignore_model_id=True to run the scenario on this "
                "model anyway, or pass the model the scenario names."
            )
        return model
    return _load(scenario)


def _load(scenario: Scenario) -> Model:
    """`tw.load_model` of the scenario's model, or a clear error naming the
    scenario file and the model id."""
    from .loading import load_model

    spec = scenario.model
    kwargs: dict[str, Any] = {"dtype": spec.dtype, "device_map": _device_map(scenario)}
    if spec.trust_remote_code:
        kwargs["trust_remote_code"] = True
    if spec.gguf_file is not None:
        kwargs["gguf_file"] = spec.gguf_file
    embedded = spec.id == EMBEDDED_MODEL_ID and spec.gguf_file is None
    try:
        if embedded:
            return load_model(**kwargs)
        tokenizer = _tokenizer(spec) if (spec.gguf_file or spec.trust_remote_code) else None
        return load_model(spec.id, tokenizer=tokenizer, **kwargs)
    except ModelNotInstalledError as error:
        raise ModelNotInstalledError(f"{scenario.where}: {error}") from error
    except OSError as error:
        raise ModelNotInstalledError(
            f"{scenario.where}: the model {spec.id!r} (model.id) is not on this machine and "
            f"could not be downloaded ({_first_line(error)}). Download it first (huggingface-cli "
            "download <id>) or point model.id at a local folder, or run the scenario on a model "
            "you have: tw.load_scenario(path, model=tw.load_model(), ignore_model_id=True) runs "
            f"it on the embedded {EMBEDDED_MODEL_ID}. Nothing was written."
        ) from error


def _tokenizer(spec: Any) -> Any:
    """The tokenizer of a GGUF or remote-code model (`load_model` loads a
    plain one itself)."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if spec.gguf_file is not None:
        kwargs["gguf_file"] = spec.gguf_file
    return AutoTokenizer.from_pretrained(spec.id, **kwargs)


def _device_map(scenario: Scenario) -> str | None:
    """`model.device` as `load_model`'s device_map: "cpu" and "auto" on a
    machine without an accelerator are None (plain CPU loading)."""
    import torch

    device = scenario.model.device
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if device == "mps":
        if not mps:
            raise ScenarioError(
                f"{scenario.where}: model.device is 'mps', but this machine has no MPS "
                "(Apple GPU). Set device: auto (a GPU when there is one, else the CPU) or "
                "device: cpu."
            )
        return "mps"
    if device == "auto":
        if torch.cuda.is_available():
            return "auto"
        return "mps" if mps else None
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["load_scenario", "run_scenario"]
