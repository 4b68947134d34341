"""`Model.activations` and `Model.neurons` (results in `core.neurons`), and
`Run.activations` through the seam (`Run.neurons` and `tw.compare_neurons`
read through it): one plain forward pass with the named sites of
`models.hooks` recorded at the chosen positions only (`hooks.read_sites`).

Source -> site: "hidden_out" -> "block_output", "mlp_act" -> "mlp_act",
"head_out" -> "o_proj_input" (split per head). A `Run` is read from its own
`token_ids`, never re-rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import seam
from ..core.neurons import (
    ACTIVATION_SOURCES,
    Activations,
    NeuronActivations,
    check_layers,
    check_neuron_request,
    check_sources,
    resolve_positions,
)
from ..core.run import Run
from ..errors import SelectionError
from .hooks import has_site, read_sites
from .targets import Target, as_model, check_run, read_target

if TYPE_CHECKING:
    from .model import Model

SOURCE_SITES = {"hidden_out": "block_output", "mlp_act": "mlp_act", "head_out": "o_proj_input"}
"""Source of `core.neurons.ACTIVATION_SOURCES` -> the named site it reads."""


def available_sources(model: Model) -> tuple[str, ...]:
    """The sources `model`'s architecture has (no "mlp_act" in a mixture of experts)."""
    return tuple(s for s in ACTIVATION_SOURCES if has_site(model, SOURCE_SITES[s]))


def read_activations(
    model: Model,
    ids: np.ndarray,
    tokens: tuple[str, ...],
    positions: np.ndarray,
    sources: tuple[str, ...] | None,
    layers: list[int],
) -> Activations:
    """`Activations` of `sources` (None: every one `model` has) at token
    `positions` of `ids` and `layers`, from one plain forward pass."""
    sources = available_sources(model) if sources is None else check_sources(sources)
    missing = [s for s in sources if not has_site(model, SOURCE_SITES[s])]
    if missing:
        raise SelectionError(
            f"{model.arch.model_type} has no {missing} (its MLP is a mixture of experts, with "
            f"no single down projection); read {list(available_sources(model))} instead."
        )
    sites = [SOURCE_SITES[s] for s in sources]
    arrays = read_sites(model, ids, sites, layers, positions)
    return Activations(
        values={s: arrays[SOURCE_SITES[s]] for s in sources},
        layers=np.asarray(layers, np.int64),
        positions=np.asarray(positions, np.int64),
        tokens=tuple(tokens[int(p)] for p in positions),
        model_info=model.info(),
    )


def _target(model: Model, target: Any, regions: Any) -> Target:
    return read_target(model, target, regions, "regions")


def activations(
    model: Model,
    target: Any,
    positions: Any = "all",
    sources: Any = None,
    layers: Any = None,
    regions: Any = None,
) -> Activations:
    """See `Model.activations`."""
    t = _target(model, target, regions)
    found, _ = resolve_positions(positions, len(t.ids), t.queries, t.regions, t.what)
    layer_list = check_layers(layers, model.shape.n_layers, "this model")
    checked = None if sources is None else check_sources(sources)
    return read_activations(model, t.ids, t.tokens, found, checked, layer_list)


def neurons(
    model: Model,
    target: Any,
    layer: int,
    source: str = "mlp_act",
    positions: Any = "all",
    top_k: int = 50,
    *,
    include_first: bool = False,
    regions: Any = None,
) -> NeuronActivations:
    """See `Model.neurons`."""
    if isinstance(target, Run):
        return target.neurons(
            layer, source, positions, top_k, include_first=include_first, model=model
        )
    layer, source, top_k = check_neuron_request(
        layer, source, top_k, model.shape.n_layers, "this model", include_first=include_first
    )
    t = _target(model, target, regions)
    found, label = resolve_positions(positions, len(t.ids), t.queries, t.regions, t.what)
    acts = read_activations(model, t.ids, t.tokens, found, (source,), [layer])
    return NeuronActivations.from_activations(
        acts, layer, source, top_k, include_first=include_first, positions_label=label
    )


@seam.provide("activations", Run)
def _run_activations(
    run: Run, model: Any, positions: np.ndarray, sources: Any, layers: list[int]
) -> Activations:
    """`Run.activations` (positions, sources and layers checked by the Run)."""
    model = as_model(model)
    check_run(model, run)
    ids = np.asarray(run.token_ids, np.int64)
    return read_activations(model, ids, run.tokens, positions, sources, layers)


__all__ = ["SOURCE_SITES", "activations", "available_sources", "neurons", "read_activations"]
