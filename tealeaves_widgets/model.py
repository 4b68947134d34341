"""`Model`: a Hugging Face causal LM and its tokenizer, ready to capture."""

from __future__ import annotations

import contextlib
import inspect
import platform
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .architectures import architecture_for, get_path, model_shape
from .capture import capturing
from .errors import PromptTooLongError
from .lens import read_lens
from .prompt import Case, RenderedPrompt, render_case
from .regions import RegionSpec, resolve_regions, tracked_token_ids
from .run import Lens, Run

DEFAULT_TOP_K = 10
PROGRESS_MIN_TOKENS = 2048
"""Prompts at least this long show a per-layer progress bar by default."""


def as_case(case: Case | str | dict) -> Case:
    """Accept a `Case`, a plain user message, or a dict of Case fields."""
    if isinstance(case, Case):
        return case
    if isinstance(case, str):
        return Case(user=case)
    if isinstance(case, dict):
        return Case.from_dict(case)
    raise TypeError(
        f"Expected a tw.Case, a str (the user message) or a dict of Case fields; "
        f"got {type(case).__name__}."
    )


class Model:
    """A causal LM wrapped for captured forward passes.

    Build it with `tw.load_model(...)`. `capture(case, regions)` runs one
    forward pass and returns a `Run`.
    """

    def __init__(self, hf_model: Any, tokenizer: Any, model_id: str | None = None) -> None:
        self.hf_model = hf_model
        self.tokenizer = tokenizer
        self.arch = architecture_for(hf_model.config)
        self.layers = list(get_path(hf_model, self.arch.layers))
        self.final_norm = get_path(hf_model, self.arch.final_norm)
        self.unembedding = get_path(hf_model, self.arch.unembedding)
        self.shape = model_shape(self.arch, hf_model.config, len(self.layers))
        self.model_id = model_id or getattr(hf_model.config, "name_or_path", "") or "model"
        # Captures read the model, never train it: dropout must be off.
        hf_model.eval()
        self._forward_kwargs = {"use_cache": False}
        if "logits_to_keep" in inspect.signature(hf_model.forward).parameters:
            # The lens computes its own logits; the model need not build (pos, vocab) ones.
            self._forward_kwargs["logits_to_keep"] = 1

    def __repr__(self) -> str:
        s = self.shape
        return (
            f"Model({self.model_id!r}, {self.arch.model_type}, {s.n_layers} layers, "
            f"{s.n_heads} heads ({s.n_kv_heads} kv), context {s.context_length}, "
            f"{self.dtype}, {self.device}, attention={self.hf_model.config._attn_implementation})"
        )

    @property
    def device(self) -> torch.device:
        """Device of the input embeddings (where the token ids go)."""
        return self.hf_model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.hf_model.get_input_embeddings().weight.dtype

    def render(self, case: Case | str | dict) -> RenderedPrompt:
        """Render a case with this model's chat template and tokenize it."""
        rendered = render_case(as_case(case), self.tokenizer, system_role=None)
        limit = self.shape.context_length
        if limit is not None and len(rendered.token_ids) > limit:
            raise PromptTooLongError(
                f"The rendered prompt has {len(rendered.token_ids)} tokens but "
                f"{self.model_id} accepts at most {limit} (its context length). Shorten "
                f"the prompt by {len(rendered.token_ids) - limit} tokens or use a model "
                "with a longer context."
            )
        return rendered

    @torch.no_grad()
    def capture(
        self,
        case: Case | str | dict,
        regions: RegionSpec | dict | None = None,
        *,
        top_k: int = DEFAULT_TOP_K,
        on_layer: Callable[[int, np.ndarray], None] | None = None,
        progress: bool | None = None,
    ) -> Run:
        """Run one captured forward pass over `case` and return a `Run`.

        `regions` is a TeaLeaves-schema dict or a `RegionSpec`; it also names
        the query positions (default: "final", the last position) and the
        tracked tokens. `on_layer(layer, rows)` is called as each block
        finishes, with that layer's (head, query, pos) float32 attention rows,
        so a view can fill in while the pass runs.
        `progress` shows a per-layer bar (default: for prompts of at least
        `PROGRESS_MIN_TOKENS` tokens).
        """
        case = as_case(case)
        rendered = self.render(case)
        resolved = resolve_regions(rendered, regions)
        tracked_ids, tracked_labels = tracked_token_ids(resolved.tracked_tokens, self.tokenizer)
        positions = np.array(list(resolved.queries.values()), dtype=np.int64)
        if progress is None:
            progress = len(rendered.token_ids) >= PROGRESS_MIN_TOKENS
        with _layer_progress(progress, self.shape.n_layers, on_layer) as callback:
            heads, residuals = self._forward(rendered.token_ids, positions, callback)
        lens = read_lens(
            residuals,
            self.final_norm,
            self.unembedding,
            self.shape.final_logit_softcap,
            tracked_ids,
            top_k,
        )
        vocab_ids = sorted(set(lens.top_ids.ravel().tolist()) | set(tracked_ids.tolist()))
        vocab = {i: self.tokenizer.decode([i]) for i in vocab_ids}
        return Run(
            text=rendered.text,
            tokens=rendered.tokens,
            token_ids=rendered.token_ids,
            offsets=rendered.offsets,
            regions=resolved.regions,
            queries=dict(resolved.queries),
            attention=heads.mean(axis=1),
            attention_heads=heads,
            lens=Lens(
                top_ids=lens.top_ids,
                top_probs=lens.top_probs,
                entropy=lens.entropy,
                kl_to_final=lens.kl_to_final,
                tracked_ids=tracked_ids,
                tracked_tokens=tracked_labels,
                tracked_ranks=lens.tracked_ranks,
                tracked_probs=lens.tracked_probs,
                vocab=vocab,
            ),
            model_info=self.info(),
            case=case.to_dict(),
            region_spec=resolved.spec,
        )

    def _forward(
        self,
        token_ids: np.ndarray,
        positions: np.ndarray,
        on_layer: Callable[[int, np.ndarray], None] | None,
    ) -> tuple[np.ndarray, torch.Tensor]:
        """One captured forward pass of a single sequence.

        Returns the (layer, head, query, pos) float32 rows as numpy and the
        (layer, query, hidden) residuals as a tensor.
        """
        input_ids = torch.as_tensor(token_ids, dtype=torch.long, device=self.device)[None]
        query_positions = torch.as_tensor(positions, dtype=torch.long, device=self.device)[None]
        with capturing(self.hf_model, self.arch, query_positions) as rec:
            if on_layer is not None:
                rec.on_layer = lambda layer: on_layer(layer, rec.rows[layer][0].cpu().numpy())
            self.hf_model(input_ids=input_ids, **self._forward_kwargs)
        rows = torch.stack([r[0].to("cpu") for r in rec.rows])  # (layer, head, query, pos)
        residuals = torch.stack([r[0] for r in _same_device(rec.residuals)])
        return rows.numpy(), residuals

    def info(self) -> dict:
        """Model id, architecture, dtype, device and versions, for `Run.model_info`."""
        import transformers

        from . import __version__

        s = self.shape
        return {
            "model_id": self.model_id,
            "model_type": self.arch.model_type,
            "architecture": type(self.hf_model).__name__,
            "dtype": str(self.dtype).replace("torch.", ""),
            "device": str(self.device),
            "n_layers": s.n_layers,
            "n_heads": s.n_heads,
            "n_kv_heads": s.n_kv_heads,
            "context_length": s.context_length,
            "attn_implementation": self.hf_model.config._attn_implementation,
            "versions": {
                "tealeaves_widgets": __version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "python": platform.python_version(),
            },
        }


@contextlib.contextmanager
def _layer_progress(show: bool, n_layers: int, on_layer: Callable[[int, np.ndarray], None] | None):
    """A per-layer callback that also advances a tqdm bar when `show`."""
    if not show:
        yield on_layer
        return
    from tqdm.auto import tqdm

    with tqdm(total=n_layers, desc="capture", unit="layer") as bar:

        def callback(layer: int, rows: np.ndarray) -> None:
            bar.update(1)
            if on_layer is not None:
                on_layer(layer, rows)

        yield callback


def _same_device(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Move per-layer tensors to the first one's device (layers may be spread
    over several devices by accelerate)."""
    device = tensors[0].device
    return [t.to(device) for t in tensors]
