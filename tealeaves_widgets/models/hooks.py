"""Named sites of the forward pass, and hooks on them: `Model.hooks()` and
`Model.trace`.

Sites (per layer unless said otherwise), found through the model's
`Architecture` entry so one name means one place in every family:

- "block_input": the residual stream entering the block;
- "o_proj_input": the heads' outputs concatenated, the input of the
  attention's output projection (`trace` splits it per head);
- "attn_output": the attention module's output (after the projection);
- "post_attn_residual": the residual stream after attention, the input of
  the norm before the MLP (not in blocks that run attention and MLP in
  parallel, as GPT-NeoX);
- "mlp_input": the MLP's input; "mlp_output": its output;
- "mlp_act": the MLP's activations, the input of its down projection
  (`Architecture.mlp_down`): act(gate) * up in a gated MLP (Llama, Gemma,
  Phi-3), act(fc) in a plain one (GPT-2, GPT-NeoX); not in a mixture of
  experts (gpt-oss), which has no single down projection;
- "block_output": the residual stream leaving the block;
- "final_norm": the final norm's output (no layer);
- "logits": the unembedding's output (no layer; before a final softcap that
  the model's forward may apply after it).

    with model.hooks() as hk:
        hk.record("attn_output", layers=[3, 4])
        hk.edit("o_proj_input", 5, lambda x: x * 0.5)   # returns the new value
        hk.gradient("block_output", 2)
        ...                                            # any forward (and backward)
    hk.values[("attn_output", 3)], hk.grads[("block_output", 2)]

Every hook is removed when the block ends, also after an error.
`read_sites` is the one "record some sites at some positions over one plain
pass, as numpy" that `trace`, `residuals.read_states` and
`neurons.activations` share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ArgumentError, SelectionError
from .architectures import get_path

if TYPE_CHECKING:
    from .model import Model

LAYER_SITES = (
    "block_input",
    "o_proj_input",
    "attn_output",
    "post_attn_residual",
    "mlp_input",
    "mlp_act",
    "mlp_output",
    "block_output",
)
MODEL_SITES = ("final_norm", "logits")
SITES = LAYER_SITES + MODEL_SITES

Key = tuple[str, int | None]


def _first(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, (tuple, list)) else value


def _replace_first(value: Any, new: torch.Tensor) -> Any:
    if isinstance(value, tuple):
        return (new, *value[1:])
    if isinstance(value, list):
        return [new, *value[1:]]
    return new


@dataclass
class Hooks:
    """Hooks on named sites of one model; see the module docstring."""

    model: Model
    values: dict[Key, torch.Tensor] = field(default_factory=dict)
    """(site, layer) -> the value recorded by `record` (detached, on its device)."""
    grads: dict[Key, torch.Tensor] = field(default_factory=dict)
    """(site, layer) -> the gradient that reached the site in a backward pass."""
    _handles: list[Any] = field(default_factory=list)

    def _module(self, site: str, layer: int | None) -> tuple[torch.nn.Module, bool]:
        """The module a site hooks, and whether the site is its input (pre-hook)."""
        model, arch = self.model, self.model.arch
        if site not in SITES:
            raise SelectionError(f"Unknown site {site!r}; the sites are {list(SITES)}.")
        if site in MODEL_SITES:
            if layer is not None:
                raise ArgumentError(f"Site {site!r} has no layer; pass layer=None.")
            return (model.final_norm if site == "final_norm" else model.unembedding), False
        n = model.shape.n_layers
        if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer < n:
            raise SelectionError(f"Site {site!r} needs a layer in 0..{n - 1}, got {layer!r}.")
        block = model.layers[layer]
        attention = get_path(block, arch.attention)
        if site == "block_input":
            return block, True
        if site == "block_output":
            return block, False
        if site == "o_proj_input":
            return get_path(attention, arch.output_projection), True
        if site == "attn_output":
            return attention, False
        if site == "post_attn_residual":
            if arch.mlp_norm is None:
                raise SelectionError(
                    f"{arch.model_type} runs attention and MLP in parallel: its blocks have no "
                    "residual stream between them. Use block_input, attn_output or mlp_output."
                )
            return get_path(block, arch.mlp_norm), True
        if site == "mlp_act":
            if arch.mlp_down is None:
                raise SelectionError(
                    f"{arch.model_type}'s MLP has no single down projection (a mixture of "
                    "experts): it has no 'mlp_act' site. Use mlp_input or mlp_output, or "
                    "register an Architecture entry naming the MLP's down projection "
                    "(mlp_down=...)."
                )
            return get_path(get_path(block, arch.mlp), arch.mlp_down), True
        return get_path(block, arch.mlp), site == "mlp_input"

    def _layers(self, site: str, layers: Iterable[int] | int | None) -> list[int | None]:
        if site in MODEL_SITES:
            return [None]
        if layers is None:
            return list(range(self.model.shape.n_layers))
        return [layers] if isinstance(layers, int) else list(layers)

    def _hook(self, site: str, layer: int | None, change: Callable[[torch.Tensor], Any]) -> None:
        """Call `change(value)` at the site; a tensor it returns replaces the value."""
        module, is_input = self._module(site, layer)
        if is_input:

            def pre(_module, args, kwargs):
                if args:
                    new = change(args[0])
                    return None if new is None else ((new, *args[1:]), kwargs)
                new = change(kwargs["hidden_states"])
                return None if new is None else (args, {**kwargs, "hidden_states": new})

            self._handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        else:

            def post(_module, _args, output):
                new = change(_first(output))
                return None if new is None else _replace_first(output, new)

            self._handles.append(module.register_forward_hook(post))

    def record(
        self,
        site: str,
        layers: Iterable[int] | int | None = None,
        positions: Iterable[int] | None = None,
    ) -> Hooks:
        """Keep the value at `site` of `layers` (default every layer) in
        `values`: all of it, or only the token `positions` (axis 1, in the
        order given), which spares keeping (batch, pos, hidden) per layer."""
        index = None if positions is None else torch.as_tensor(list(positions), dtype=torch.long)
        for layer in self._layers(site, layers):

            def keep(value: torch.Tensor, key: Key = (site, layer)) -> None:
                kept = value.detach()
                if index is not None:
                    kept = kept[:, index.to(kept.device)]
                self.values[key] = kept

            self._hook(site, layer, keep)
        return self

    def edit(
        self, site: str, layer: int | None, fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> Hooks:
        """Replace the value at `site` of `layer` by `fn(value)`."""
        if not callable(fn):
            raise ArgumentError(f"edit needs a function value -> new value, got {fn!r}.")
        self._hook(site, layer, fn)
        return self

    def gradient(self, site: str, layers: Iterable[int] | int | None = None) -> Hooks:
        """Keep the gradient that reaches `site` of `layers` in a backward pass in `grads`."""
        for layer in self._layers(site, layers):

            def watch(value: torch.Tensor, key: Key = (site, layer)) -> None:
                if value.requires_grad:
                    value.register_hook(lambda grad: self.grads.__setitem__(key, grad.detach()))

            self._hook(site, layer, watch)
        return self

    def remove(self) -> None:
        """Remove every hook (done on leaving the `with` block)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


@dataclass(frozen=True, repr=False)
class Trace:
    """Values of named sites over one forward pass, as numpy arrays."""

    tokens: list[str]
    positions: np.ndarray
    """(position,) the token positions kept."""
    layers: list[int]
    arrays: dict[str, np.ndarray]
    """Site -> (layer, position, hidden); "o_proj_input" (layer, position,
    head, head_dim); "final_norm" and "logits" (position, dim)."""

    def __getitem__(self, site: str) -> np.ndarray:
        if site not in self.arrays:
            raise SelectionError(f"Site {site!r} was not traced; traced: {list(self.arrays)}.")
        return self.arrays[site]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{site} {tuple(a.shape)}" for site, a in self.arrays.items())
        return f"Trace({len(self.positions)} positions, layers {self.layers}: {shapes})"


@torch.no_grad()
def trace(
    model: Model,
    case: Any,
    sites: Iterable[str] = SITES,
    layers: Iterable[int] | None = None,
    positions: Iterable[int] | None = None,
) -> Trace:
    """See `Model.trace`."""
    from .model import as_case

    site_list = [sites] if isinstance(sites, str) else list(sites)
    unknown = [s for s in site_list if s not in SITES]
    if unknown or not site_list:
        raise SelectionError(
            f"Unknown site(s) {unknown or site_list}; the sites are {list(SITES)}."
        )
    if sites is SITES:  # the default: every site this architecture has
        site_list = [s for s in site_list if has_site(model, s)]
    rendered = model.render(as_case(case))
    n = len(rendered.token_ids)
    layer_list = list(range(model.shape.n_layers)) if layers is None else sorted(set(layers))
    bad = [layer for layer in layer_list if not 0 <= layer < model.shape.n_layers]
    if bad:
        raise SelectionError(
            f"layers {bad} are out of range; the model has layers 0..{model.shape.n_layers - 1}."
        )
    kept = (
        np.arange(n)
        if positions is None
        else np.array(sorted({p % n for p in _checked(positions, n)}))
    )
    arrays = read_sites(model, rendered.token_ids, site_list, layer_list, kept)
    return Trace(list(rendered.tokens), kept, layer_list, arrays)


def has_site(model: Model, site: str) -> bool:
    """Whether `model`'s architecture has `site` (every block has most; see
    the module docstring for "post_attn_residual" and "mlp_act")."""
    if site == "post_attn_residual":
        return model.arch.mlp_norm is not None
    if site == "mlp_act":
        return model.arch.mlp_down is not None
    return site in SITES


@torch.no_grad()
def read_sites(
    model: Model,
    ids: Sequence[int] | np.ndarray,
    sites: Sequence[str],
    layers: Sequence[int],
    positions: Sequence[int] | np.ndarray,
    forward: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Site -> float32 values at token `positions` (indices into `ids`, in the
    order given) from one plain forward pass of `ids` (batch 1): a layer site
    (layer, position, dim) over `layers` in their order, "o_proj_input"
    (layer, position, head, head_dim), a model site (position, dim). Only the
    positions asked for are kept. `forward` adds or replaces the pass's
    keywords (a KV cache and position_ids, for a pass that continues a prefix)."""
    index = [int(p) for p in positions]
    tensor = torch.tensor(np.asarray(ids, dtype=np.int64), device=model.device)[None]
    kwargs = {**model._forward_kwargs, **(forward or {})}
    if "logits" in sites:  # every position's logits, not only the last
        kwargs.pop("logits_to_keep", None)
    with Hooks(model) as hooks:
        for site in sites:
            hooks.record(site, None if site in MODEL_SITES else list(layers), positions=index)
        model.hf_model(input_ids=tensor, **kwargs)
    arrays: dict[str, np.ndarray] = {}
    for site in sites:
        if site in MODEL_SITES:
            arrays[site] = hooks.values[(site, None)][0].float().cpu().numpy()
            continue
        stacked = torch.stack([hooks.values[(site, layer)][0].float().cpu() for layer in layers])
        if site == "o_proj_input":
            stacked = stacked.reshape(*stacked.shape[:-1], model.shape.n_heads, -1)
        arrays[site] = stacked.numpy()
    return arrays


def _checked(positions: Iterable[int], n: int) -> list[int]:
    items = list(positions)
    bad = [p for p in items if not isinstance(p, (int, np.integer)) or not -n <= p < n]
    if bad or not items:
        raise SelectionError(
            f"positions {bad or items} are not token indices of the prompt 0..{n - 1}."
        )
    return [int(p) for p in items]
