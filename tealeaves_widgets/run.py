"""The result of one captured forward pass: `Run`, with its lens and regions.

A `Run` holds plain numpy arrays and Python data, never a tensor or a model, so
it can be saved, reopened without a model, and handed to the widgets.
Dimension names: layer, head, query, pos, vocab, region, tracked, k.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class RegionInfo:
    """A named region of the rendered prompt and the tokens it owns."""

    name: str
    """Unique name, e.g. "system", "user", "template" or a user-defined name."""
    section: str
    """The role section it lies in ("system", "user", "response", ...), or
    "template" for the chat-template region."""
    char_span: tuple[int, int]
    """Half-open character span [start, end) in `Run.text`. For the built-in
    "template" region, which is not contiguous, (0, len(text))."""
    token_indices: NDArray[np.int64]
    """(n_tokens,) sorted token positions assigned to this region."""
    parent: str | None = None
    """Name of the enclosing user-defined region, or None at the top level."""
    builtin: bool = False
    """True for the regions that exist without configuration."""


@dataclass(frozen=True)
class Lens:
    """Logit-lens readings at the captured query positions, one per layer.

    Layer l is the residual stream after decoder block l, passed through the
    model's final norm and unembedding (and final logit softcapping where the
    model has it). The last layer therefore equals the model's own output.
    """

    top_ids: NDArray[np.int64]
    """(layer, query, k) token ids of the k most probable next tokens."""
    top_probs: NDArray[np.float32]
    """(layer, query, k) their probabilities."""
    entropy: NDArray[np.float32]
    """(layer, query) entropy of the predicted distribution, in nats."""
    kl_to_final: NDArray[np.float32]
    """(layer, query) KL(final layer || this layer), in nats; 0 at the last layer."""
    tracked_ids: NDArray[np.int64]
    """(tracked,) token ids that were tracked."""
    tracked_tokens: tuple[str, ...]
    """(tracked,) the tracked tokens as the user wrote them."""
    tracked_ranks: NDArray[np.int64]
    """(layer, query, tracked) rank of each tracked token, 1 = most probable."""
    tracked_probs: NDArray[np.float32]
    """(layer, query, tracked) probability of each tracked token."""
    vocab: dict[int, str] = field(default_factory=dict)
    """Decoded text of every token id that appears in `top_ids` or `tracked_ids`."""


@dataclass(frozen=True)
class Run:
    """One captured forward pass over one rendered prompt."""

    text: str
    """The prompt as rendered by the chat template (or the plain layout)."""
    tokens: tuple[str, ...]
    """(pos,) text of each token, `text[start:end]` of its offsets."""
    token_ids: NDArray[np.int64]
    """(pos,) token ids fed to the model."""
    offsets: NDArray[np.int64]
    """(pos, 2) half-open character span of each token in `text`."""
    regions: dict[str, RegionInfo]
    """Region name -> region, built-in regions first, then user regions in
    definition order (parents before children)."""
    queries: dict[str, int]
    """Query name -> token position, in the order the rows are stored."""
    attention: NDArray[np.float32]
    """(layer, query, pos) head-averaged attention rows."""
    attention_heads: NDArray[np.float32]
    """(layer, head, query, pos) attention rows of every query head."""
    lens: Lens
    """Logit-lens readings at the query positions."""
    model_info: dict
    """Model id, architecture, dtype, device, n_layers, n_heads, package versions."""
    case: dict = field(default_factory=dict)
    """The case as given (roles and text), so nothing typed is lost."""
    region_spec: dict = field(default_factory=dict)
    """The region definition as given, in the regions.json schema."""
