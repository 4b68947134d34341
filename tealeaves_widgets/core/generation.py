"""A captured generation (`Model.generate_capture`): what the model chose at
each step, how sure it was, and a `Run` over prompt and answer in which every
generated position is a query.

Step 0 is the prefill: its query is the last prompt token, whose logits give
the first generated token. Step i > 0 feeds generated token i - 1 at position
`prompt_length + i - 1` on the KV cache and gives token i. So step i's query
is position `prompt_length - 1 + i`, and the last generated token is never a
query (nothing was computed from it).

Per step, all from the model's own next-token distribution (the raw logits,
before temperature, top-k or top-p): the chosen token and its log-probability,
the argmax and its log-probability, the top-k tokens and their
log-probabilities, and the entropy (nats). The attention rows, and the logit
lens when it was read, are the `run`'s queries "step:<i>".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import SelectionError
from . import seam
from .run import Run

STOP_REASONS = ("eos", "max_new_tokens")


def step_query(step: int) -> str:
    """The query name of generation step `step` in `Generation.run`."""
    return f"step:{step}"


@dataclass(frozen=True, repr=False)
class Generation:
    """The steps of one captured generation and the `Run` they make up."""

    run: Run
    """Prompt + generated tokens; step i's position is the query "step:<i>"
    (after any queries the regions named in the prompt)."""
    prompt_length: int
    """Tokens of the rendered prompt (the generated tokens follow)."""
    token_ids: NDArray[np.int64]
    """(step,) the token chosen at each step."""
    tokens: tuple[str, ...]
    """(step,) each chosen token decoded alone."""
    logprobs: NDArray[np.float32]
    """(step,) log-probability of the chosen token."""
    argmax_ids: NDArray[np.int64]
    """(step,) the most probable token."""
    argmax_logprobs: NDArray[np.float32]
    """(step,) its log-probability."""
    top_ids: NDArray[np.int64]
    """(step, k) the k most probable tokens, most probable first."""
    top_logprobs: NDArray[np.float32]
    """(step, k) their log-probabilities."""
    entropy: NDArray[np.float32]
    """(step,) entropy of the next-token distribution, nats."""
    vocab: dict[int, str]
    """Decoded text of every id in `top_ids` and `token_ids`."""
    stop_reason: str
    """"eos" (an end-of-sequence token was chosen; it is the last step) or
    "max_new_tokens"."""
    options: dict
    """do_sample, temperature, top_k, top_p, seed, max_new_tokens, lens."""
    states: NDArray[np.float32] | None = None
    """(layer, step, hidden) residual stream after each block at each step's
    query position ("hidden_out"), for neuron trajectories."""
    logits: NDArray[np.float32] | None = None
    """(step, vocab) raw logits, kept only with `keep_logits=True`."""
    seconds: dict = field(default_factory=dict)
    """Wall time by part: "prefill", "decode", "lens"."""

    @property
    def n_steps(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def text(self) -> str:
        """The generated text (the run's text after the prompt)."""
        start = int(self.run.offsets[self.prompt_length, 0]) if self.n_steps else len(self.run.text)
        return self.run.text[start:]

    @property
    def positions(self) -> NDArray[np.int64]:
        """(step,) the token position of each step's query."""
        return self.prompt_length - 1 + np.arange(self.n_steps, dtype=np.int64)

    def _step(self, step: int) -> int:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise SelectionError(f"step must be an int, got {step!r}.")
        if not -self.n_steps <= step < self.n_steps:
            raise SelectionError(
                f"step {step} is outside this generation's {self.n_steps} steps "
                f"(0..{self.n_steps - 1})."
            )
        return int(step) % self.n_steps

    def steps(self) -> pd.DataFrame:
        """One row per step: position, chosen token, its probability and
        log-probability, the argmax, the entropy."""
        return pd.DataFrame(
            {
                "step": np.arange(self.n_steps),
                "position": self.positions,
                "token": list(self.tokens),
                "token_id": self.token_ids,
                "logprob": self.logprobs,
                "prob": np.exp(self.logprobs.astype(np.float64)),
                "argmax": [self.vocab.get(int(i), f"<id {int(i)}>") for i in self.argmax_ids],
                "argmax_logprob": self.argmax_logprobs,
                "entropy": self.entropy,
                "chose_argmax": self.token_ids == self.argmax_ids,
            }
        )

    def top_k_table(self, step: int) -> pd.DataFrame:
        """The top-k tokens of one step: rank, id, token, log-prob, prob."""
        s = self._step(step)
        ids = self.top_ids[s]
        return pd.DataFrame(
            {
                "rank": np.arange(1, ids.shape[0] + 1),
                "id": ids,
                "token": [self.vocab.get(int(i), f"<id {int(i)}>") for i in ids],
                "logprob": self.top_logprobs[s],
                "prob": np.exp(self.top_logprobs[s].astype(np.float64)),
            }
        )

    def neuron_trajectory(self, layer: int, index: int, source: str = "hidden_out") -> pd.DataFrame:
        """Dimension `index` of the residual stream after block `layer`, at
        each step's query position: one row per step."""
        if source != "hidden_out":
            raise SelectionError(
                f"A generation keeps the residual stream after each block (source "
                f"'hidden_out') at each step; got source={source!r}. For the other sources read "
                "model.conversation_snapshots."
            )
        if self.states is None:
            raise SelectionError("This generation kept no states (keep_states=False).")
        n_layers, _, hidden = self.states.shape
        for name, value, size in (("layer", layer, n_layers), ("index", index, hidden)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise SelectionError(f"{name} must be an int, got {value!r}.")
            if not 0 <= value < size:
                raise SelectionError(f"{name}={value} is outside 0..{size - 1}.")
        return pd.DataFrame(
            {
                "step": np.arange(self.n_steps),
                "token": list(self.tokens),
                "value": self.states[layer, :, index],
            }
        )

    def __repr__(self) -> str:
        model = self.run.model_info.get("model_id", "unknown model")
        text = self.text
        shown = text if len(text) <= 60 else text[:57] + "..."
        mean_p = float(np.exp(self.logprobs.astype(np.float64)).mean()) if self.n_steps else 0.0
        how = "sampled" if self.options.get("do_sample") else "greedy"
        return (
            f"Generation({model}: {self.n_steps} steps {how}, stopped by {self.stop_reason}, "
            f"prompt {self.prompt_length} tokens, mean p(chosen) {mean_p:.3f})\n"
            f"  text: {shown!r}"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel a generation displays as `tw.GenerationView`."""
        return seam.display_bundle(self, include, exclude)
