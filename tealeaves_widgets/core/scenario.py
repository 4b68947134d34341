"""A scenario in Activation Lab's YAML format, as data (`Scenario` and its
parts), and what running one gives (`ScenarioResult`): numpy and pandas only.

The file is read and checked by `tealeaves_widgets.prompt.scenario`
(`tw.read_scenario`) and run by `tealeaves_widgets.models.scenario`
(`tw.load_scenario`); the result saves through `core.seam` (`io.scenario`)
and displays as `tw.ScenarioView` (the generation view above the snapshots
view).

The parts mirror the file's sections key for key, with Activation Lab's
defaults, so a scenario written for Activation Lab reads the same here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ScenarioError
from . import seam
from .generation import Generation
from .runset import RunSet
from .states import METRICS, Snapshots, layer_average

DTYPES = ("float16", "bfloat16", "float32")
"""Values of `model.dtype` and `capture.store_dtype`."""
DEVICES = ("auto", "mps", "cpu")
"""Values of `model.device`."""
OUTPUT_FORMATS = ("json+npz",)
"""Values of `output.format` (recorded: `ScenarioResult.save` writes its own layout)."""
READOUT = "gen_prompt"
"""How a scenario's snapshots are read: each message prefix rendered with the
generation prompt, at its last token, as Activation Lab reads them."""


@dataclass(frozen=True)
class ModelSpec:
    """The `model` section: which model, in which dtype, on which device."""

    id: str
    """A Hugging Face id or a local folder; "SmolLM2-135M-Instruct" is the embedded model."""
    gguf_file: str | None = None
    """A GGUF file inside `id` to load (dequantized) instead of safetensors."""
    dtype: str = "float16"
    """One of `DTYPES`: the dtype the weights are loaded in."""
    device: str = "auto"
    """One of `DEVICES`: "auto" (a GPU when there is one, else MPS, else the CPU), "mps", "cpu"."""
    trust_remote_code: bool = False
    """Passed to transformers when loading."""


@dataclass(frozen=True)
class PromptSpec:
    """The `prompt` section: the conversation."""

    messages: tuple[dict, ...]
    """`{"role", "content"}` dicts, roles "system", "user" or "assistant"; at least one."""
    run_at_each_message: bool = False
    """Also capture one run per message prefix (`ScenarioResult.scan`)."""


@dataclass(frozen=True)
class GenerationSpec:
    """The `generation` section: `Model.generate_capture`'s options."""

    max_new_tokens: int = 8
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    """None (or 0 in the file): no top-k filter."""
    top_p: float | None = None
    seed: int = 42


@dataclass(frozen=True)
class CaptureSpec:
    """The `capture` section. Only `top_k_probs`, `logits` and `layers` change
    what is kept here (see `tw.load_scenario`); the others are recorded."""

    hidden_states: bool = True
    attention_weights: bool = True
    qkv: bool = True
    mlp: bool = True
    logits: bool = True
    top_k_probs: int = 20
    layers: tuple[int, ...] | None = None
    """The layers to report, or None for "all"."""
    store_dtype: str = "float16"


@dataclass(frozen=True)
class OutputSpec:
    """The `output` section: where `ScenarioResult.save()` writes by default."""

    dir: str = "./runs"
    """A folder; a relative one is taken from the current directory (as Activation Lab does)."""
    format: str = "json+npz"


@dataclass(frozen=True)
class ReferenceState:
    """One entry of `reference_states`: a labelled conversation whose state at
    its last message the snapshots are compared with."""

    label: str
    """Non-empty, no whitespace or slashes (it names files)."""
    messages: tuple[dict, ...]


@dataclass(frozen=True)
class Scenario:
    """A whole scenario file, checked (`tw.read_scenario`)."""

    name: str
    """Non-empty, no whitespace or slashes: it names the output folder."""
    model: ModelSpec
    prompt: PromptSpec
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    capture: CaptureSpec = field(default_factory=CaptureSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    reference_states: tuple[ReferenceState, ...] = ()
    source: str | None = None
    """The file it was read from, for messages."""
    text: str = ""
    """The YAML text as given (saved with the result)."""

    @property
    def where(self) -> str:
        """How messages name this scenario: its file, else its name."""
        return self.source or f"scenario {self.name!r}"

    @property
    def references(self) -> dict[str, list[dict]]:
        """Label -> messages of each reference state, in file order."""
        return {ref.label: [dict(m) for m in ref.messages] for ref in self.reference_states}


@dataclass(frozen=True, repr=False)
class ScenarioResult:
    """What running a scenario gives (`tw.load_scenario`): the generation, the
    conversation's snapshots against the reference states, and with
    `run_at_each_message` one run per message prefix."""

    scenario: Scenario
    generation: Generation
    """`Model.generate_capture` of the conversation with the scenario's options."""
    snapshots: Snapshots
    """`Model.conversation_snapshots(messages, references, readout="gen_prompt")`:
    every layer; `compare` and `message_table` here keep `layers` only."""
    layers: tuple[int, ...]
    """The layers `capture.layers` names (all of them for "all"), ascending."""
    scan: RunSet | None = None
    """One run per message prefix (`Model.conversation_scan`), or None."""
    model_info: dict = field(default_factory=dict)
    """`Model.info()` of the model that ran it."""

    @property
    def name(self) -> str:
        return self.scenario.name

    def steps(self) -> pd.DataFrame:
        """The generation's steps (`Generation.steps`)."""
        return self.generation.steps()

    def top_k(self) -> pd.DataFrame:
        """Every step's top-k tokens: step, rank, id, token, logprob, prob."""
        frames = [
            self.generation.top_k_table(step).assign(step=step)
            for step in range(self.generation.n_steps)
        ]
        columns = ["step", "rank", "id", "token", "logprob", "prob"]
        if not frames:
            return pd.DataFrame(columns=columns)
        return pd.concat(frames, ignore_index=True).loc[:, columns]

    def compare(self, source: str = "hidden_out", *, center: bool = False) -> pd.DataFrame:
        """`Snapshots.compare` at the scenario's layers: one row per message,
        reference and layer (cosine, MAE, top-1% Jaccard). Centring uses every
        snapshot and reference, per layer, so it does not depend on the layers
        kept."""
        table = self.snapshots.compare(source, center=center)
        return table.loc[table["layer"].isin(self.layers)].reset_index(drop=True)

    def snapshot_table(self) -> pd.DataFrame:
        """`compare` for every source, raw and centred, one table: the columns
        source and centred, then those of `compare` (the saved snapshots.csv)."""
        columns = ["source", "centred", "message", "role", "reference", "layer", *METRICS]
        frames = [
            self.compare(source, center=center).assign(source=source, centred=center)
            for source in self.snapshots.sources
            for center in (False, True)
        ]
        return pd.concat(frames, ignore_index=True).loc[:, columns]

    def message_table(
        self, source: str = "hidden_out", metric: str = "cosine", *, center: bool = False
    ) -> pd.DataFrame:
        """Message x reference: `metric` averaged over the scenario's layers
        (NaN left out), as `Snapshots.message_table` over all of them."""
        scores = self.snapshots.scores(source, metric, center=center)
        values = layer_average(scores[:, :, list(self.layers)])
        return pd.DataFrame(
            values,
            index=pd.Index(range(len(self.snapshots.messages)), name="message"),
            columns=pd.Index(list(self.snapshots.references), name="reference"),
        )

    def default_directory(self) -> Path:
        """Where `save()` writes without a path: `<output.dir>/<name>`."""
        return Path(self.scenario.output.dir).expanduser() / self.scenario.name

    def save(self, path: str | PathLike[str] | None = None, *, overwrite: bool = False) -> Path:
        """Write the result into the folder `path` (default: `default_directory()`)
        atomically: everything goes into a temporary sibling folder, renamed to
        `path` only once complete, so a failure leaves nothing half-written.
        An existing `path` is replaced only with `overwrite=True`. Returns the
        folder. Layout: see `tealeaves_widgets.io.scenario`."""
        return seam.call("save", self, path, overwrite=overwrite)

    def __repr__(self) -> str:
        ran = self.model_info.get("model_id", "unknown model")
        asked = self.scenario.model.id
        model = ran if ran == asked else f"{ran} (the scenario names {asked})"
        gen = self.generation
        text = gen.text if len(gen.text) <= 50 else gen.text[:47] + "..."
        n_layers = self.model_info.get("n_layers")
        layers = (
            "all layers"
            if n_layers is not None and len(self.layers) == n_layers
            else f"layers {list(self.layers)}"
        )
        lines = [
            f"ScenarioResult({self.name!r} on {model})",
            f"  conversation: {len(self.scenario.prompt.messages)} messages; "
            f"generated {gen.n_steps} tokens ({gen.stop_reason}): {text!r}",
            f"  snapshots: {len(self.snapshots.references)} references "
            f"{list(self.snapshots.references)}, read at {self.snapshots.readout}, {layers}",
        ]
        if self.scan is not None:
            lines.append(f"  scan: {len(self.scan)} runs, one per message prefix")
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel a scenario result displays as `tw.ScenarioView`:
        the generation view above the snapshots view."""
        return seam.display_bundle(self, include, exclude)


def check_layers(layers: tuple[int, ...] | None, n_layers: int, where: str, model: str) -> tuple:
    """The layers a scenario reports on a model of `n_layers` layers, ascending,
    or a `ScenarioError` naming the scenario and what the model has."""
    if layers is None:
        return tuple(range(n_layers))
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if bad:
        raise ScenarioError(
            f"{where}: capture.layers names {bad}, outside {model}'s {n_layers} layers "
            f"(0..{n_layers - 1}). Use indices in that range, or `layers: all`."
        )
    return tuple(sorted(int(layer) for layer in layers))


__all__ = [
    "DEVICES",
    "DTYPES",
    "OUTPUT_FORMATS",
    "READOUT",
    "CaptureSpec",
    "GenerationSpec",
    "ModelSpec",
    "OutputSpec",
    "PromptSpec",
    "ReferenceState",
    "Scenario",
    "ScenarioResult",
    "check_layers",
]
