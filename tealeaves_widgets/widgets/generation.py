"""`GenerationView`: a captured generation (`tw.Generation`) as its steps
above the explorer of its run.

The panel shows the generated text as token chips (colour: the chosen
token's probability), the chosen token's probability and the entropy per
step as a chart, and a step x rank table of the top-k probabilities. A click
on a chip, a point or a table row makes that step the explorer's query (the
same synced `query`), so the heatmap, curves and lens below show what that
step attended to and how its prediction formed. Everything travels in the
payloads, so an exported page keeps working with no kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets as t

from ..core.generation import Generation, step_query
from ..errors import ArgumentTypeError
from ._bundle import esm
from .explorer import Explorer
from .schema import SCHEMA_VERSION, GenerationPayload
from .wire import encode_array

__all__ = ["GenerationView", "generation_payload"]


def _sampling(options: dict) -> str:
    if not options.get("do_sample"):
        return "greedy"
    parts = [f"sampled, temperature {options.get('temperature', 1.0):g}"]
    if options.get("top_k"):
        parts.append(f"top-k {options['top_k']}")
    if options.get("top_p") not in (None, 1.0):
        parts.append(f"top-p {options['top_p']:g}")
    parts.append(f"seed {options.get('seed')}")
    return ", ".join(parts)


def generation_payload(gen: Generation) -> GenerationPayload:
    """The steps of `gen` as one synced value (numbers as float32 arrays)."""
    vocab = gen.vocab
    k = int(gen.top_ids.shape[1]) if gen.top_ids.ndim == 2 else 0
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "generation",
        "model": {"model_id": str(gen.run.model_info.get("model_id", "unknown model"))},
        "prompt_length": int(gen.prompt_length),
        "n_steps": gen.n_steps,
        "k": k,
        "queries": [step_query(i) for i in range(gen.n_steps)],
        "tokens": [str(token) for token in gen.tokens],
        "logprobs": encode_array(gen.logprobs.astype(np.float32)),
        "argmax": [vocab.get(int(i), f"<id {int(i)}>") for i in gen.argmax_ids],
        "entropy": encode_array(gen.entropy.astype(np.float32)),
        "top_tokens": [vocab.get(int(i), f"<id {int(i)}>") for i in gen.top_ids.ravel()],
        "top_logprobs": encode_array(gen.top_logprobs.astype(np.float32)),
        "stop_reason": gen.stop_reason,
        "sampling": _sampling(gen.options),
    }


class GenerationView(Explorer):
    """A `tw.Generation`: its steps (token chips, p(chosen) and entropy per
    step, the top-k table) above the `Explorer` of `gen.run`, linked by the
    synced `query`: a click on a step shows that step in the explorer.
    `display(gen)` shows one. Options are the Explorer's (layer=, ...); the
    query defaults to the first step."""

    _esm = esm("generation_view")

    generation = t.Dict().tag(sync=True)
    """The steps on the wire (`generation_payload`); set at construction."""

    def __init__(self, gen: Generation, *, model: Any = None, **kwargs: Any) -> None:
        if not isinstance(gen, Generation):
            raise ArgumentTypeError(
                f"GenerationView expects a tw.Generation (from model.generate_capture), got "
                f"{type(gen).__name__}."
            )
        self._generation = gen
        if gen.n_steps:
            kwargs.setdefault("query", "step:0")
        super().__init__(gen.run, model=model, **kwargs)
        self.generation = dict(generation_payload(gen))

    @property
    def result(self) -> Generation:
        """The generation shown."""
        return self._generation
