"""The captured forward pass: attention rows at chosen query positions and
the residual stream for the logit lens, in one ordinary forward pass.

How it works. For the duration of one forward pass the model's attention
implementation is switched to `tealeaves_capture`, a function registered with
transformers' `AttentionInterface`. It computes each layer's output exactly as
the fast path would (SDPA), or with the model's own eager function, in query
chunks, where SDPA cannot serve (attention-logit softcapping, sink logits). On
the side it recomputes softmax rows for the query positions only, per head, in
float32: O(queries x pos) memory instead of the O(pos^2) of
`output_attentions=True`. Forward hooks on the decoder blocks keep the
residual stream at the query positions for the logit lens.

Reducers. A capture may also hand every layer's softmax rows to reducers
(`capturing(..., reducers=[...])`): the rows of all query positions (or of
`reduce_positions`), computed in chunks of `REDUCE_CHUNK` query rows with the
same mask, window, softcap and sink logic as the kept rows, float32, each
chunk passed to every reducer and dropped. A reducer accumulates [layer,
head] or [layer, head, D] statistics, so no (pos x pos) matrix is ever kept:
memory O(chunk x pos) per layer. The layer's output is computed as without
reducers.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from ..errors import CaptureError
from .architectures import Architecture, get_path

ATTENTION_NAME = "tealeaves_capture"
"""Registered attention name. It must not contain "sdpa", "flash" or "flex":
transformers special-cases those names (capability checks that reject Gemma2
and gpt-oss)."""

EAGER_QUERY_CHUNK = 512
"""Query rows per block when the eager math has to compute a layer's output,
so memory stays O(chunk x pos) rather than O(pos^2)."""

REDUCE_CHUNK = 256
"""Query rows per chunk handed to the reducers."""

Reducer = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]
"""reduce(layer, positions, rows, allowed):

- `positions` (chunk,): the chunk's query positions, a slice of arange(q)
  unless `reduce_positions` chose others; indices into the pass's query
  block, so on a pass over a KV cache the key position is positions + (kv - q);
- `rows` (batch, head, chunk, kv): float32 softmax rows (sink logits take
  part in the softmax but own no column);
- `allowed` (batch, 1, chunk, kv) bool: True where the query may attend
  (causal, within any sliding window, not padding).

Called once per chunk per layer, in order; it keeps what it needs and must
not keep `rows`."""


@dataclass
class Recorder:
    """Collects attention rows and residuals during one forward pass.

    `query_positions` is (batch, query): indices into the sequence of the
    positions whose rows are kept.
    """

    query_positions: torch.Tensor
    layer_of: dict[int, int]
    """id(attention module) -> layer index."""
    n_layers: int
    keep_rows: bool = True
    on_layer: Callable[[int], None] | None = None
    edit: AttentionEdit | None = None
    """Changes a layer's attention inputs before it runs (models.interventions)."""
    reducers: tuple[Reducer, ...] = ()
    """Called with every layer's rows, chunk by chunk (see `Reducer`)."""
    reduce_positions: torch.Tensor | None = None
    """(n,) sorted query positions whose rows the reducers get; None: all."""
    reduce_layers: frozenset[int] | None = None
    """Layers whose rows the reducers get; None: all. Other layers compute no
    rows for them."""
    rows: list[torch.Tensor | None] = field(default_factory=list)
    """Per layer: (batch, head, query, pos) float32 softmax rows."""
    residuals: list[torch.Tensor | None] = field(default_factory=list)
    """Per layer: (batch, query, hidden) residual stream after the block."""

    def __post_init__(self) -> None:
        self.rows = [None] * self.n_layers
        self.residuals = [None] * self.n_layers

    def layer_rows(self, layer: int) -> torch.Tensor:
        """The rows of `layer`, once its attention has run."""
        return _recorded(self.rows[layer], "attention rows", layer)

    def all_rows(self) -> list[torch.Tensor]:
        """The rows of every layer, after the forward pass."""
        return [self.layer_rows(layer) for layer in range(self.n_layers)]

    def all_residuals(self) -> list[torch.Tensor]:
        """The residuals of every layer, after the forward pass."""
        return [
            _recorded(self.residuals[layer], "residual stream", layer)
            for layer in range(self.n_layers)
        ]


def _recorded(tensor: torch.Tensor | None, what: str, layer: int) -> torch.Tensor:
    if tensor is None:
        raise CaptureError(
            f"The forward pass recorded no {what} for layer {layer}; expected one for every "
            "layer. The architecture's layer or attention path may not lead to the modules "
            "the model runs: check its entry (see register_architecture)."
        )
    return tensor


_ACTIVE: Recorder | None = None

AttentionEdit = Callable[..., tuple]
"""edit(module, layer, query, key, value, attention_mask) -> (module, key, value,
attention_mask): what a layer's attention computes with. The module may be a
stand-in that answers `num_key_value_groups = 1` when the edit expanded the KV
heads (see models.interventions); `unwrapped` gives the model's own."""


def unwrapped(module: torch.nn.Module) -> torch.nn.Module:
    """The model's attention module behind a stand-in an edit put in its place."""
    return getattr(module, "tealeaves_wrapped", module)


def _eager_function_of(module: torch.nn.Module) -> Callable:
    """The `eager_attention_forward` of the module's own modeling file."""
    modeling = sys.modules[type(unwrapped(module)).__module__]
    fn = getattr(modeling, "eager_attention_forward", None)
    if fn is None:
        raise CaptureError(
            f"{type(module).__name__} needs the eager attention math (softcapping or "
            f"sinks), but {modeling.__name__} defines no eager_attention_forward. Use a "
            "transformers version whose modeling file has it."
        )
    return fn


def _allowed_mask(
    attention_mask: torch.Tensor | None,
    q_len: int,
    kv_len: int,
    device: torch.device,
) -> torch.Tensor:
    """(batch or 1, 1, q, kv) bool, True = may attend. None means plain causal."""
    if attention_mask is None:
        q_abs = torch.arange(q_len, device=device) + (kv_len - q_len)
        causal = torch.arange(kv_len, device=device)[None, :] <= q_abs[:, None]
        return causal[None, None]
    if attention_mask.dtype == torch.bool:
        return attention_mask
    return attention_mask > torch.finfo(attention_mask.dtype).min / 2


def _allowed_rows(
    attention_mask: torch.Tensor | None,
    positions: torch.Tensor,
    q_len: int,
    kv_len: int,
) -> torch.Tensor:
    """(batch, 1, query, kv) bool mask rows of the chosen query positions only,
    so a plain causal mask is never built at (q x kv)."""
    batch, n_q = positions.shape
    if attention_mask is None:
        q_abs = positions + (kv_len - q_len)
        keys = torch.arange(kv_len, device=positions.device)
        return (keys[None, None, :] <= q_abs[:, :, None])[:, None]
    mask = attention_mask.expand(batch, -1, -1, -1)
    index = positions[:, None, :, None].expand(batch, mask.shape[1], n_q, mask.shape[3])
    rows = mask.gather(2, index)
    if rows.dtype != torch.bool:
        rows = rows > torch.finfo(rows.dtype).min / 2
    return rows


def _query_rows(
    query: torch.Tensor,
    key: torch.Tensor,
    row_allowed: torch.Tensor,
    positions: torch.Tensor,
    scaling: float,
    softcap: float | None,
    sinks: torch.Tensor | None,
) -> torch.Tensor:
    """Softmax rows of the chosen query positions, every head, float32.

    query (batch, head, q, dim); key (batch, kv_head, kv, dim), GQA not yet
    expanded: query head h reads kv head h // n_rep. positions (batch, query);
    row_allowed (batch, 1, query, kv). Returns (batch, head, query, kv).
    """
    batch, n_heads, _, dim = query.shape
    n_kv = key.shape[1]
    n_rep = n_heads // n_kv
    n_q = positions.shape[1]
    index = positions[:, None, :, None].expand(batch, n_heads, n_q, dim)
    q_sel = query.gather(2, index).float().reshape(batch, n_kv, n_rep * n_q, dim)
    scores = torch.matmul(q_sel, key.float().transpose(-1, -2)) * scaling
    scores = scores.reshape(batch, n_heads, n_q, -1)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    scores = scores.masked_fill(~row_allowed, torch.finfo(torch.float32).min)
    if sinks is None:
        return torch.softmax(scores, dim=-1)
    # Sink logits take part in the softmax but own no position (gpt-oss).
    sink = sinks.float().reshape(1, n_heads, 1, 1).expand(batch, n_heads, n_q, 1)
    combined = torch.cat([scores, sink], dim=-1)
    combined = combined - combined.amax(dim=-1, keepdim=True)
    return torch.softmax(combined, dim=-1)[..., :-1]


def _chunked_eager(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    allowed: torch.Tensor,
    dropout: float,
    scaling: float,
    kwargs: dict,
) -> torch.Tensor:
    """The model's own eager attention, run over blocks of query rows.

    Each block sees every key, so the output equals one eager call while the
    (block x kv) weights replace the (q x kv) ones.
    """
    eager = _eager_function_of(module)
    additive = torch.zeros(allowed.shape, dtype=query.dtype, device=query.device)
    additive = additive.masked_fill(~allowed, torch.finfo(query.dtype).min)
    q_len = query.shape[2]
    outputs = []
    for start in range(0, q_len, EAGER_QUERY_CHUNK):
        stop = min(start + EAGER_QUERY_CHUNK, q_len)
        out, _ = eager(
            module,
            query[:, :, start:stop],
            key,
            value,
            additive[:, :, start:stop],
            dropout=dropout,
            scaling=scaling,
            **kwargs,
        )
        outputs.append(out)  # (batch, block, head, dim)
    return torch.cat(outputs, dim=1)


def capture_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Attention function registered as `tealeaves_capture`.

    Returns the layer output (batch, q, head, dim) and no weights; the rows of
    the active recorder's query positions are stored on the side.
    """
    if scaling is None:
        # float(): int ** float is typed Any, which would leave `scaling` Optional
        scaling = float(query.shape[-1] ** -0.5)
    softcap = kwargs.get("softcap")
    sinks = kwargs.get("s_aux")
    recorder = _ACTIVE
    layer = None if recorder is None else recorder.layer_of.get(id(module))
    if recorder is not None and recorder.edit is not None and layer is not None:
        module, key, value, attention_mask = recorder.edit(
            module, layer, query, key, value, attention_mask
        )
    q_len, kv_len = query.shape[2], key.shape[2]
    if recorder is not None and layer is not None and _reduces(recorder, layer):
        _reduce(recorder, layer, query, key, attention_mask, scaling, softcap, sinks)
    keep = recorder is not None and recorder.keep_rows and layer is not None
    rows = None
    if keep:
        assert recorder is not None and layer is not None
        positions = recorder.query_positions.to(query.device)
        row_allowed = _allowed_rows(attention_mask, positions, q_len, kv_len)
        rows = _query_rows(query, key, row_allowed, positions, scaling, softcap, sinks)
        recorder.rows[layer] = rows.detach()
    if rows is not None and _rows_are_the_block(recorder, rows, q_len, dropout, module):
        # a decode step (every position of the block is a query): the output is
        # the rows times the values, the eager math, with no second softmax
        output = _rows_times_values(rows, value, query.dtype)
    elif softcap is not None or sinks is not None:
        allowed = _allowed_mask(attention_mask, q_len, kv_len, query.device)
        output = _chunked_eager(module, query, key, value, allowed, dropout, scaling, kwargs)
    else:
        output, _ = sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    return output, None


def _reduces(recorder: Recorder, layer: int) -> bool:
    """Whether any reducer gets `layer`'s rows."""
    if not recorder.reducers:
        return False
    return recorder.reduce_layers is None or layer in recorder.reduce_layers


@torch.no_grad()
def _reduce(
    recorder: Recorder,
    layer: int,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    softcap: float | None,
    sinks: torch.Tensor | None,
) -> None:
    """Hand the rows of the reduced query positions to every reducer, chunk
    by chunk; nothing is kept here."""
    batch, q_len, kv_len = query.shape[0], query.shape[2], key.shape[2]
    chosen = recorder.reduce_positions
    if chosen is None:
        chosen = torch.arange(q_len, device=query.device)
    chosen = chosen.to(query.device)
    for start in range(0, int(chosen.shape[0]), REDUCE_CHUNK):
        positions = chosen[start : start + REDUCE_CHUNK]
        batched = positions[None].expand(batch, -1)
        allowed = _allowed_rows(attention_mask, batched, q_len, kv_len)
        rows = _query_rows(query, key, allowed, batched, scaling, softcap, sinks)
        allowed = allowed.expand(batch, 1, -1, -1)
        for reducer in recorder.reducers:
            reducer(layer, positions, rows, allowed)
        del rows


DECODE_BLOCK = 1
"""Query blocks of at most this many positions, every one a query (a decode
step), take their output from the rows they computed anyway."""


def _rows_are_the_block(
    recorder: Recorder | None, rows: torch.Tensor, q_len: int, dropout: float, module
) -> bool:
    """Whether the recorded rows are those of every position of the block, in
    order, so the layer's output is rows @ values."""
    if recorder is None or q_len > DECODE_BLOCK or rows.shape[2] != q_len:
        return False
    if dropout and getattr(module, "training", False):
        return False
    expected = torch.arange(q_len, device=recorder.query_positions.device)
    return bool((recorder.query_positions == expected).all())


def _rows_times_values(rows: torch.Tensor, value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, head, q, kv) rows and (batch, kv_head, kv, dim) values (GQA not
    expanded) -> (batch, q, head, dim), as the eager attention computes it
    (weights cast to the model's dtype before the product)."""
    batch, n_heads, n_q, kv = rows.shape
    n_kv = value.shape[1]
    grouped = rows.to(dtype).reshape(batch, n_kv, (n_heads // n_kv) * n_q, kv)
    out = torch.matmul(grouped, value).reshape(batch, n_heads, n_q, value.shape[-1])
    return out.transpose(1, 2).contiguous()


AttentionInterface.register(ATTENTION_NAME, capture_attention)
AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def _block_output(output) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


@contextlib.contextmanager
def capturing(
    model: PreTrainedModel,
    arch: Architecture,
    query_positions: torch.Tensor,
    *,
    keep_rows: bool = True,
    on_layer: Callable[[int], None] | None = None,
    edit: AttentionEdit | None = None,
    reducers: tuple[Reducer, ...] | list[Reducer] = (),
    reduce_positions: torch.Tensor | None = None,
    reduce_layers: Iterable[int] | None = None,
) -> Iterator[Recorder]:
    """Within this context, forward passes of `model` record into the
    returned `Recorder`; the model's attention implementation is restored on
    exit, also after an error. `reducers` get every layer's rows of all
    query positions (or of `reduce_positions`) in chunks (see `Reducer`),
    of every layer or of `reduce_layers` only; none by default, at no cost."""
    global _ACTIVE
    if _ACTIVE is not None:
        raise CaptureError(
            "A tealeaves capture is already running in this process; captures do not nest "
            "(e.g. one started from another's on_layer callback). Wait for it to finish."
        )
    layers = list(get_path(model, arch.layers))
    layer_of = {id(get_path(block, arch.attention)): i for i, block in enumerate(layers)}
    recorder = Recorder(
        query_positions=query_positions,
        layer_of=layer_of,
        n_layers=len(layers),
        keep_rows=keep_rows,
        on_layer=on_layer,
        edit=edit,
        reducers=tuple(reducers),
        reduce_positions=reduce_positions,
        reduce_layers=None if reduce_layers is None else frozenset(reduce_layers),
    )

    def residual_hook(layer: int):
        def hook(_module, _args, output):
            hidden = _block_output(output)
            # the recorder's positions, not the argument's: a generation moves
            # them between the passes of one capture
            index = recorder.query_positions.to(hidden.device)
            picked = hidden.gather(1, index[:, :, None].expand(-1, -1, hidden.shape[-1]))
            recorder.residuals[layer] = picked.detach()
            if recorder.on_layer is not None:
                recorder.on_layer(layer)

        return hook

    previous = model.config._attn_implementation
    if previous is None:  # transformers sets it when it builds a model
        raise CaptureError(
            f"{type(model).__name__}.config._attn_implementation is None, so the attention "
            "implementation could not be restored after the capture; expected a name such as "
            "'sdpa'. Load the model with from_pretrained or from_config, which set it."
        )
    handles = [block.register_forward_hook(residual_hook(i)) for i, block in enumerate(layers)]
    model.set_attn_implementation(ATTENTION_NAME)
    _ACTIVE = recorder
    try:
        yield recorder
    finally:
        _ACTIVE = None
        for handle in handles:
            handle.remove()
        model.set_attn_implementation(previous)
