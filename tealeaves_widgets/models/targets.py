"""What a measurement that takes "a Run or a case" reads: the token ids,
queries, regions and tokens of a captured `Run` (fed as captured, never
re-rendered; checked against the model), or of a case rendered with its
region spec. Shared by the residual analyses and the layer statistics, which
the seam also reaches from a `Run` with its remembered model (`as_model`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.run import RegionInfo, Run
from ..errors import ArgumentError, ArgumentTypeError, PromptTooLongError
from ..prompt.resolve import resolve_regions

if TYPE_CHECKING:
    from .model import Model


@dataclass(frozen=True)
class Target:
    """A Run's or a rendered case's tokens, queries and regions."""

    ids: np.ndarray
    """(pos,) int64 token ids to feed."""
    queries: dict[str, int]
    regions: dict[str, RegionInfo]
    tokens: tuple[str, ...]
    what: str
    """"this run" or "this prompt", for error messages."""


def read_target(model: Model, target: Any, regions: Any, kept: str) -> Target:
    """The `Target` of a Run (checked with `check_run`) or of a case rendered
    with `regions`. `kept` names what a Run brings with it ("queries" or
    "regions"), for the error when `regions=` comes with a Run."""
    if isinstance(target, Run):
        if regions is not None:
            raise ArgumentError(
                f"regions= is for a case; a Run has its {kept} already (run.{kept}). "
                "Drop regions=, or pass the case."
            )
        check_run(model, target)
        return Target(
            np.asarray(target.token_ids, np.int64),
            target.queries,
            target.regions,
            target.tokens,
            "this run",
        )
    from .model import as_case

    rendered = model.render(as_case(target))
    resolved = resolve_regions(rendered, regions)
    return Target(
        np.asarray(rendered.token_ids, np.int64),
        resolved.queries,
        resolved.regions,
        rendered.tokens,
        "this prompt",
    )


def check_run(model: Model, run: Run) -> None:
    """Refuse a run that `model` cannot read as it was captured."""
    info, s = run.model_info, model.shape
    mine = (model.model_id, model.arch.model_type, s.n_layers)
    theirs = (
        info.get("model_id"),
        info.get("model_type", model.arch.model_type),
        info.get("n_layers", s.n_layers),
    )
    if theirs != mine:
        raise ArgumentError(
            "This run was captured with {!r} ({}, {} layers); this model is {!r} ({}, {} "
            "layers). Pass the model the run was captured with.".format(*theirs, *mine)
        )
    ids = np.asarray(run.token_ids)
    vocab = int(model.hf_model.get_input_embeddings().num_embeddings)
    if ids.ndim != 1 or ids.size == 0 or ids.min() < 0 or ids.max() >= vocab:
        raise ArgumentError(
            f"The run's token_ids must be a non-empty list of ids in 0..{vocab - 1} (this "
            f"model's vocabulary); got {ids.size} ids"
            + (f" in {int(ids.min())}..{int(ids.max())}." if ids.size else ".")
        )
    limit = s.context_length
    if limit is not None and ids.size > limit:
        raise PromptTooLongError(
            f"The run has {ids.size} tokens but {model.model_id} accepts at most {limit}."
        )


def as_model(model: Any) -> Model:
    """`model` when it is a `tw.Model`, else a clear error (the seam hands a
    Run's remembered model, or the one the caller passed)."""
    from .model import Model

    if not isinstance(model, Model):
        raise ArgumentTypeError(
            f"model must be a tw.Model (from tw.load_model), got {type(model).__name__}."
        )
    return model
