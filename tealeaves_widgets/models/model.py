"""`Model`: a Hugging Face causal LM and its tokenizer, ready to capture."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from .._version import __version__
from ..core import seam
from ..core.ablation import Ablation
from ..core.attribution import Attribution
from ..core.compare import Comparison, compare_options
from ..core.deprecation import warn_renamed
from ..core.generation import Generation
from ..core.head_atlas import HeadAtlas
from ..core.head_gates import HeadGates
from ..core.head_grid import HeadGrid
from ..core.layer_stats import LayerStats, RegionAttention
from ..core.neurons import Activations, NeuronActivations
from ..core.prev_token import PrevTokenTest
from ..core.residuals import CrossLayerCosine, ResidualDecomposition
from ..core.run import Lens, QueryReading, Run
from ..core.runset import RunSet
from ..core.states import Snapshots
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    InsufficientMemoryError,
    PromptTooLongError,
    TealeavesError,
)
from ..prompt.case import Case
from ..prompt.probes import ProbeSizes
from ..prompt.regions import SPEC_KEYS, RegionSpec
from ..prompt.render import RenderedPrompt, render_case
from ..prompt.resolve import ResolvedRegions, resolve_regions, tracked_token_ids
from .architectures import architecture_for, get_path, model_shape
from .batching import DEFAULT_BATCH_TOKENS, Generate, plan_batches
from .capture import AttentionEdit, capturing
from .lens import LensArrays, execution_device, read_lens
from .memory import (
    DTYPE_BYTES,
    LoadedFit,
    ModelSizes,
    gib,
    largest_fitting,
    loaded_fit,
    model_sizes,
)
from .query import KeptCache, cache_keyword, decode_step, keep, new_cache
from .shared_prefix import capture_shared

if TYPE_CHECKING:  # the live explorer is a widget, reached through the seam
    from ..widgets.explorer import Explorer
    from .hooks import Hooks, Trace

DEFAULT_TOP_K = 10
PROGRESS_MIN_TOKENS = 2048
"""Prompts at least this long show a per-layer progress bar by default."""


CaseLike = Case | str | dict
RegionsLike = RegionSpec | dict | None


@dataclass(frozen=True)
class _Prepared:
    """One case rendered and its regions resolved, ready for a forward pass."""

    case: Case
    rendered: RenderedPrompt
    resolved: ResolvedRegions
    tracked_ids: np.ndarray
    """(tracked,) token ids the lens tracks."""
    tracked_labels: tuple[str, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.rendered.token_ids)

    @property
    def positions(self) -> np.ndarray:
        """(query,) token positions of the queries."""
        return np.array(list(self.resolved.queries.values()), dtype=np.int64)


def as_case(case: Case | str | dict) -> Case:
    """Accept a `Case`, a plain user message, or a dict of Case fields."""
    if isinstance(case, Case):
        return case
    if isinstance(case, str):
        return Case(user=case)
    if isinstance(case, dict):
        return Case.from_dict(case)
    raise ArgumentTypeError(
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
        self._sizes: ModelSizes | None = None  # for the memory check, read once
        self._kept: KeptCache | None = None  # the KV cache of the last pass that kept one
        self._cache_note = "no capture has kept its KV cache (keep_cache=True keeps one)"
        self._forward_kwargs: dict[str, Any] = {"use_cache": False}
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
        """Device of the input embeddings (where the token ids go). Embeddings
        offloaded by accelerate sit on "meta"; their hook's execution device is
        where they run."""
        return execution_device(self.hf_model.get_input_embeddings(), self.hf_model)

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
        memory_check: bool = True,
        keep_cache: bool = False,
    ) -> Run:
        """Run one captured forward pass over `case` and return a `Run`.

        `regions` is a TeaLeaves-schema dict or a `RegionSpec`; it also names
        the query positions (default: "final", the last position) and the
        tracked tokens. `top_k`: tokens the lens keeps per layer and query (at
        least 1; more than the vocabulary keeps it all). `on_layer(layer, rows)`
        is called as each block finishes, with that layer's (head, query, pos)
        float32 attention rows, so a view can fill in while the pass runs.
        `progress` shows a per-layer bar (default: for prompts of at least
        `PROGRESS_MIN_TOKENS` tokens). Before the pass, the memory the capture
        needs (activations, rows, lens, and the rows' copies when the run is
        saved and reopened; README "Memory") is compared with what is free now,
        and a capture that would not fit is refused with InsufficientMemoryError;
        `memory_check=False` tries anyway. `keep_cache=True` keeps the pass's KV
        cache in this model (replacing the one kept before; `kept_cache_bytes`,
        `release_cache`), so that `read_query` on this prompt costs one decode
        step instead of a forward pass.
        """
        top_k = check_top_k(top_k)
        if on_layer is not None and not callable(on_layer):
            raise ArgumentTypeError(
                f"on_layer must be a function on_layer(layer, rows) or None, got "
                f"{type(on_layer).__name__}."
            )
        _check_flag("progress", progress, allow_none=True)
        _check_flag("memory_check", memory_check)
        _check_flag("keep_cache", keep_cache)
        prepared = self._prepare(as_case(case), regions)
        if keep_cache:
            self.release_cache()  # before the pass: its memory serves the new one
        if memory_check:
            self._check_memory(prepared, keep_cache)
        if progress is None:
            progress = prepared.n_tokens >= PROGRESS_MIN_TOKENS
        cache = new_cache() if keep_cache else None
        with _layer_progress(progress, self.shape.n_layers, on_layer) as callback:
            [(heads, residuals)] = self._forward([prepared], callback, cache)
        if cache is not None:
            self._keep(cache, prepared.rendered.token_ids)
        [lens] = self._lenses([prepared], [residuals], top_k)
        run = self._finish(prepared, heads, lens)
        seam.remember_model(run, self)  # display(run) can then read clicked tokens
        return run

    # -- queries read after the capture ----------------------------------------

    @torch.no_grad()
    def read_query(
        self,
        run: Run,
        position: int,
        *,
        name: str | None = None,
        keep_cache: bool = False,
    ) -> QueryReading:
        """The attention rows and lens of token `position` of `run`'s prompt as
        a query: what `capture` with that position among its query_positions
        gives for it (same top-k and tracked tokens as `run`). `Run.with_query`
        adds it to the run; `add_query` does both.

        With the KV cache of this prompt kept (`capture(..., keep_cache=True)`,
        `model.explore`), it costs one decode step: token `position` on the cache
        cut before it. Otherwise it takes one captured forward pass of the
        prompt, and `reading.note` says why; with `keep_cache=True` that pass
        keeps its cache, so the next position of this prompt is a decode step.
        `name` defaults to "pos:<position>", as a capture names it.
        """
        _check_flag("keep_cache", keep_cache)
        position, name = self._check_query(run, position, name)
        started = time.perf_counter()
        kept = self._kept
        if kept is not None and kept.holds(run.token_ids):
            rows, residuals = decode_step(
                self.hf_model, self.arch, kept, position, self.device, self._forward_kwargs
            )
            method, note = "cache", ""
        else:
            note = self._no_cache_note(run)
            rows, residuals = self._pass_at(run, position, keep_cache)
            method = "pass"
        heads = np.zeros((self.shape.n_layers, self.shape.n_heads, run.n_tokens), np.float32)
        heads[:, :, : position + 1] = rows[:, :, : position + 1].numpy()
        lens = self._lens_at(run, residuals)
        seconds = time.perf_counter() - started
        return QueryReading(name, position, heads, lens, method, note, seconds)

    def add_query(
        self,
        run: Run,
        position: int,
        *,
        name: str | None = None,
        keep_cache: bool = False,
    ) -> Run:
        """`run` with token `position` as one more query (last in
        `run.queries`): `run.with_query(model.read_query(run, position, ...))`."""
        return run.with_query(self.read_query(run, position, name=name, keep_cache=keep_cache))

    @property
    def kept_cache_bytes(self) -> int:
        """Memory held by the kept KV cache (0 when none is kept)."""
        return 0 if self._kept is None else self._kept.nbytes

    def release_cache(self) -> None:
        """Drop the kept KV cache (later queries of its prompt take a forward pass)."""
        if self._kept is not None:
            self._cache_note = "the kept KV cache was released"
        self._kept = None

    def _keep(self, cache: Any, token_ids: np.ndarray) -> None:
        """Keep the filled `cache` of a pass over `token_ids`, when it is a
        plain full-length cache (else say why none is kept)."""
        ids = np.asarray(token_ids, dtype=np.int64)
        self._kept = keep(cache, ids, self.shape.n_layers)
        if self._kept is None:
            self._cache_note = (
                f"{type(self.hf_model).__name__} did not fill a plain full-length KV cache "
                "(one keys/values tensor of every token per layer), so none is kept"
            )

    def _no_cache_note(self, run: Run) -> str:
        """Why `run`'s prompt has no kept cache, in words."""
        if self._kept is not None:
            return (
                "the kept KV cache is of another prompt (a model keeps the cache of its last "
                "capture with keep_cache=True only)"
            )
        return self._cache_note

    def _check_query(self, run: Run, position: object, name: object) -> tuple[int, str]:
        """`position` and `name` of a query to read from `run`, checked."""
        if not isinstance(run, Run):
            raise ArgumentTypeError(
                f"read_query expects a tw.Run (from model.capture or tw.open_run), got "
                f"{type(run).__name__}."
            )
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
            raise ArgumentTypeError(
                f"position must be a token index (int), got {position!r}; e.g. position=12."
            )
        position = int(position)
        if not 0 <= position < run.n_tokens:
            raise ArgumentError(
                f"position={position} is outside the run's {run.n_tokens} tokens; expected "
                f"0..{run.n_tokens - 1}."
            )
        info, s = run.model_info, self.shape
        mine = (self.model_id, self.arch.model_type, s.n_layers, s.n_heads)
        theirs = (
            info.get("model_id"),
            info.get("model_type", self.arch.model_type),
            info.get("n_layers"),
            info.get("n_heads"),
        )
        if theirs != mine:
            raise ArgumentError(
                "This run was captured with {!r} ({}, {} layers, {} heads); this model is {!r} "
                "({}, {} layers, {} heads). Read a run's queries with the model that captured "
                "it.".format(*theirs, *mine)
            )
        taken = [q for q, pos in run.queries.items() if pos == position]
        if taken:
            raise ArgumentError(
                f"Position {position} is query {taken[0]!r} of this run already; select it "
                f"(query={taken[0]!r}) instead of reading it again."
            )
        if name is None:
            name = f"pos:{position}"
        if not isinstance(name, str) or not name:
            raise ArgumentTypeError(f"name must be a non-empty str or None, got {name!r}.")
        if name in run.queries:
            raise ArgumentError(
                f"This run has a query named {name!r} already (at position "
                f"{run.queries[name]}); pass another name=."
            )
        return position, name

    def _pass_at(
        self, run: Run, position: int, keep_cache: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One captured pass of `run`'s prompt with `position` as its one query:
        (layer, head, pos) rows and (layer, 1, hidden) residuals."""
        if keep_cache:
            self.release_cache()
        check = self.memory_fit(
            n_tokens=run.n_tokens,
            n_queries=1,
            n_tracked=len(run.lens.tracked_ids),
            keep_cache=keep_cache,
        )
        if not check.fits:
            raise InsufficientMemoryError(
                f"Reading position {position} takes a forward pass of the run's "
                f"{run.n_tokens} tokens, which would not fit in the memory free now "
                f"({check.describe()}). Free some memory, or capture the prompt with this "
                "position among its query_positions."
            )
        ids = torch.as_tensor(np.asarray(run.token_ids, dtype=np.int64))[None]
        cache = new_cache() if keep_cache else None
        rows, residuals = self._captured(ids, torch.tensor([[position]]), cache=cache)
        if cache is not None:
            self._keep(cache, run.token_ids)
        return torch.from_numpy(rows[:, 0, :, 0]), residuals[:, 0]

    def _lens_at(self, run: Run, residuals: torch.Tensor) -> Lens:
        """The lens of (layer, 1, hidden) residuals with `run`'s top-k and tracked tokens."""
        lens = read_lens(
            residuals,
            self.final_norm,
            self.unembedding,
            self.shape.final_logit_softcap,
            run.lens.tracked_ids,
            int(run.lens.top_ids.shape[2]),
        )
        ids = sorted(set(lens.top_ids.ravel().tolist()))
        return Lens(
            top_ids=lens.top_ids,
            top_probs=lens.top_probs,
            entropy=lens.entropy,
            kl_to_final=lens.kl_to_final,
            tracked_ids=np.asarray(run.lens.tracked_ids, dtype=np.int64),
            tracked_tokens=tuple(run.lens.tracked_tokens),
            tracked_ranks=lens.tracked_ranks,
            tracked_probs=lens.tracked_probs,
            vocab={i: self.tokenizer.decode([i]) for i in ids},
        )

    def explore(
        self,
        case: CaseLike,
        regions: RegionsLike = None,
        *,
        top_k: int = DEFAULT_TOP_K,
        keep_cache: bool = True,
        **view_options: Any,
    ) -> Explorer:
        """Show a `tw.Explorer` at once and fill it in layer by layer while the
        captured pass runs (`capture` with `on_layer`), then with the complete
        `Run` (`view.run`). Returns the Explorer, already displayed in a
        notebook. `view_options` go to the Explorer (layer=, query=, ...).
        Clicking a token makes it the query (`read_query`): with `keep_cache`
        (the default) the pass's KV cache stays in this model, so a click costs
        one decode step; `keep_cache=False` keeps none, and each click takes a
        forward pass. The view lives in `tealeaves_widgets.widgets.live`."""
        _check_flag("keep_cache", keep_cache)
        return seam.call(
            "explore", self, case, regions, top_k=top_k, keep_cache=keep_cache, **view_options
        )

    def prepare(
        self, case: CaseLike, regions: RegionsLike = None
    ) -> tuple[RenderedPrompt, ResolvedRegions]:
        """The rendered prompt of `case` and its regions, queries and tracked
        tokens resolved on it: what a capture of the case will show, before it runs."""
        prepared = self._prepare(as_case(case), regions)
        return prepared.rendered, prepared.resolved

    @torch.no_grad()
    def capture_many(
        self,
        cases: Sequence[CaseLike],
        regions: RegionsLike = None,
        *,
        generate: Generate | None = None,
        top_k: int = DEFAULT_TOP_K,
        batch_tokens: int | None = None,
        progress: bool = True,
        shared_prefix: bool | None = None,
    ) -> RunSet:
        """Capture every case with one region spec and return a `RunSet`.

        Cases run in batches: sorted by length, grouped so that batch size x
        longest case stays within `batch_tokens` (default by device:
        `runset.DEFAULT_BATCH_TOKENS`), right-padded with an
        attention mask (positions of real tokens unchanged). Each case still
        yields its own `Run`, equal to `capture` of that case up to float
        noise. With `generate`, each case without a response is sampled once per
        seed and captured with that response (see `Generate`). `progress`
        shows a bar over the cases. `tw.load_cases(path)` reads a conversations file.

        Cases that begin with the same tokens (one system prompt, many user
        messages) share that prefix: one pass computes it and keeps its KV
        cache, and each case runs only the rest on it, batched as above with
        the prefix counted in each length (models.shared_prefix; the runs are
        the same).
        `shared_prefix=None` does so when the common prefix is at least
        `SHARED_PREFIX_MIN_TOKENS` (64) tokens and two cases share it, True
        whenever there is one, False never.
        """
        top_k = check_top_k(top_k)
        batch_tokens = _check_batch_options(batch_tokens, progress)
        _check_flag("shared_prefix", shared_prefix, allow_none=True)
        cases, labels, seeds = self._expand(cases, generate, progress)
        items = [
            self._prepare_labelled(c, regions, label)
            for c, label in zip(cases, labels, strict=True)
        ]
        runs = self._capture_prepared(items, top_k, batch_tokens, progress, shared_prefix)
        return RunSet(tuple(runs), tuple(labels), tuple(seeds))

    @torch.no_grad()
    def capture_comparison(
        self,
        variants: Mapping[str, CaseLike | Sequence[CaseLike]],
        regions: RegionsLike | Mapping[str, RegionsLike] = None,
        *,
        baseline: str | None = None,
        generate: Generate | None = None,
        top_k: int = DEFAULT_TOP_K,
        batch_tokens: int | None = None,
        progress: bool = True,
        **options,
    ) -> Comparison:
        """Capture each variant and compare them: `tw.compare` of the captures.

        A variant is one case (-> a `Run`, or a `RunSet` of seeds with
        `generate`) or a list of cases (-> a `RunSet`). `regions` is one spec for
        every variant, or a dict variant name -> spec (every variant named).
        All captures share the batches. Other keywords are `CompareOptions`.
        """
        compare_options(**options)  # fail before capturing
        top_k = check_top_k(top_k)
        batch_tokens = _check_batch_options(batch_tokens, progress)
        if not isinstance(variants, Mapping) or len(variants) < 2:
            raise ArgumentError(
                "model.capture_comparison needs a dict of at least two variants, name -> case "
                "or list of cases, e.g. {'baseline': case_a, 'terse': case_b}."
            )
        if baseline is not None and baseline not in variants:
            raise ArgumentError(
                f"baseline={baseline!r} is not a variant; the variants are {list(variants)}."
            )
        specs = _variant_specs(regions, list(variants))
        groups, items = {}, []
        for name, value in variants.items():
            if isinstance(value, Sequence) and not isinstance(value, str):
                many, listed = True, value
            else:
                many, listed = False, [value]
            cases, labels, seeds = self._expand(listed, generate, progress)
            start = len(items)
            items += [
                self._prepare_labelled(c, specs[name], f"{name}/{label}")
                for c, label in zip(cases, labels, strict=True)
            ]
            groups[name] = (start, labels, seeds, many or len(cases) > 1)
        runs = self._capture_prepared(items, top_k, batch_tokens, progress)
        captured = {}
        for name, (start, labels, seeds, as_set) in groups.items():
            chunk = tuple(runs[start : start + len(labels)])
            captured[name] = RunSet(chunk, tuple(labels), tuple(seeds)) if as_set else chunk[0]
        return Comparison(captured, baseline, compare_options(**options))

    def compare(self, *args: Any, **kwargs: Any) -> Comparison:
        """Deprecated: use `model.capture_comparison` (`tw.compare` compares
        captured runs; this captures cases first)."""
        warn_renamed("model.compare(...)", "model.capture_comparison(...)")
        return self.capture_comparison(*args, **kwargs)

    def ablate(
        self,
        case: CaseLike,
        conditions: Any,
        regions: RegionsLike = None,
        *,
        at: str | int = "final",
        top_k: int = 20,
        reference: Any = None,
        lens_top_k: int = DEFAULT_TOP_K,
    ) -> Ablation:
        """Run `case` once as it is and once per condition, and tabulate what
        each condition does to the next-token prediction at query `at`.

        `conditions`: a `tw.HeadAblation`, `tw.ValueAblation` or
        `tw.RegionKnockout`, a list of them (each its own condition; a list
        inside the list, or a `tw.Condition`, applies several together) or a
        dict name -> intervention(s). `at` is a query name of the prompt
        (default "final") or a token index t; positions such as "t-1" are
        relative to it. `reference`: for `mode="mean"` head ablations, the
        cases (or an array from `head_means`) whose mean head output replaces
        the head's; default the prompt's own positions. Each pass is a full
        captured pass (no KV cache), so `result.runs[name]` has the attention
        rows and lens under the intervention, at the query `at` (the baseline,
        `result.base`, keeps every query of the prompt). `top_k`: tokens listed in
        `changes()`; `lens_top_k`: the runs' lens. Returns a `tw.Ablation`."""
        from .ablate import ablate

        return ablate(
            self,
            case,
            conditions,
            regions,
            at=at,
            top_k=top_k,
            reference=reference,
            lens_top_k=lens_top_k,
        )

    def attribute(
        self,
        case: CaseLike,
        target: str | Sequence[int],
        regions: RegionsLike = None,
        *,
        head_mask: Any = None,
        loss: str = "full_target",
    ) -> Attribution:
        """Gradient attribution of `target` (the continuation after the
        prompt, text or token ids) to the prompt's tokens and regions: the
        gradient of its log-probability (`loss="full_target"`: every target
        token, teacher-forced; "first_token": its first token only) with
        respect to the input embeddings, one forward and one backward pass.
        `head_mask` ((layer, head) bool, True = kept, or a `tw.HeadGates`:
        its facilitating heads) gates every other head off. Returns a
        `tw.Attribution` (`token_table()`, `region_table()`)."""
        from .attribution import attribute

        return attribute(self, case, target, regions, head_mask=head_mask, loss=loss)

    def score(
        self,
        cases: Sequence[CaseLike],
        temperature: float = 1.0,
        targets: Sequence[str] | None = None,
        k: int = 5,
    ) -> pd.DataFrame:
        """Next-token scores of each case at its last position, from logits /
        `temperature`: the top token, its probability, the entropy (nats) and
        the top `k`; with `targets` (one continuation per case), the target's
        log-probability, summed and per token (teacher-forced)."""
        from .attribution import score

        return score(self, cases, temperature, targets, k)

    def prev_token_test(
        self,
        texts: Sequence[str],
        head: tuple[int, int],
        value_heads: Sequence[int] | None = None,
        n: int = 100,
        offsets: Sequence[int] = range(1, 9),
        *,
        seed: int = 0,
        progress: bool = True,
    ) -> PrevTokenTest:
        """Is `head` = (layer, head) a previous-token head? At a random position
        t of each text (`n` positions, texts reused in turn, `seed`), four
        passes: base, A (the head zeroed at t), B (the values at t-k zeroed in
        the head's layer, every head or `value_heads`) and A+B, for each k in
        `offsets`. Returns a `tw.PrevTokenTest`: per layer, pair and offset the
        normalised inner product and cosine of the attention outputs at t
        (`table()`), and the redundancy 1 - |AB - B| / |A - base| per offset
        (`sweep()`; a previous-token head peaks at k = 1). Texts are tokenized
        as plain text, without the chat template."""
        from .ablate import prev_token_test

        return prev_token_test(self, texts, head, value_heads, n, offsets, seed, progress)

    def fit_head_gates(
        self,
        texts: Sequence[Any],
        targets: Sequence[str] | None = None,
        *,
        steps: int | tuple[int, int] = (100, 100),
        lr: float = 0.1,
        strength: float = 1.0,
        init: float = 3.0,
        threshold: float = 0.5,
        progress: bool = True,
    ) -> HeadGates:
        """Causal Head Gating (arXiv 2505.13737): a gate sigmoid(theta) on every
        head's output, the model frozen, fitted to the targets' negative
        log-likelihood (`texts` are cases, `targets` their continuations; or
        plain texts and every next token when `targets` is None) in three
        phases: plain (`steps[0]` Adam steps at `lr` from theta = `init`), then
        from there retention (+ `strength` * mean(1 - g)) and removal
        (+ `strength` * mean(g)), `steps[1]` each. Returns `tw.HeadGates`: the
        raw gates per phase and the paper's taxonomy (facilitating: open under
        removal; interfering: shut under retention; irrelevant: the rest)."""
        from .head_gates import fit_head_gates

        return fit_head_gates(
            self,
            texts,
            targets,
            steps=steps,
            lr=lr,
            strength=strength,
            init=init,
            threshold=threshold,
            progress=progress,
        )

    def hooks(self) -> Hooks:
        """`with model.hooks() as hk:` record, edit or watch the gradient of
        named sites of the forward pass (`hk.record(site, layers)`,
        `hk.edit(site, layer, fn)`, `hk.gradient(site, layers)`); every hook is
        removed on leaving the block, also after an error. Sites:
        `tealeaves_widgets.models.hooks.SITES`."""
        from .hooks import Hooks

        return Hooks(self)

    def trace(
        self,
        case: CaseLike,
        sites: Sequence[str] | str | None = None,
        layers: Sequence[int] | None = None,
        positions: Sequence[int] | None = None,
    ) -> Trace:
        """The values of named sites (default all: block input, o_proj input
        per head, attention output, post-attention residual, MLP input,
        activations and output, block output, final norm, logits) over one plain forward pass
        of `case`, at `layers` and `positions` (default all), as numpy arrays
        (`tw.Trace`, indexed by site)."""
        from .hooks import SITES, trace

        return trace(self, case, SITES if sites is None else sites, layers, positions)

    def knockout_regions(
        self,
        case: CaseLike,
        regions: RegionsLike = None,
        *,
        mode: str = "mask",
        names: Sequence[str] | None = None,
        include_builtin: bool = False,
        at: str | int = "final",
        top_k: int = 20,
        lens_top_k: int = DEFAULT_TOP_K,
    ) -> Ablation:
        """`ablate` with one `tw.RegionKnockout(region, mode)` per region, each
        condition named after its region: every region of `regions` (the
        built-in template, system and user sections too with
        `include_builtin=True`), or the regions in `names`. `display(result)`
        shows each region's attention beside its knockout effect."""
        from .ablate import knockout_regions

        return knockout_regions(
            self,
            case,
            regions,
            mode=mode,
            names=names,
            include_builtin=include_builtin,
            at=at,
            top_k=top_k,
            lens_top_k=lens_top_k,
        )

    def conversation_snapshots(
        self,
        messages: Sequence[dict],
        references: Mapping[str, Sequence[dict]] | None = None,
        readout: str = "message_end",
        sources: Sequence[str] = ("hidden_in", "hidden_out", "attn_out", "mlp_out"),
    ) -> Snapshots:
        """The residual states at the end of each message of a conversation
        (`messages`, `{"role", "content"}` dicts), and of each reference
        conversation (at its last message), for every layer and source:
        "hidden_in" / "hidden_out" (the block's input / output), "attn_out",
        "mlp_out". readout="message_end" reads each message at the last token
        of the conversation rendered up to it, from ONE pass when every such
        prefix is a token prefix of the whole (checked; else one pass per
        prefix); "gen_prompt" renders each prefix with the generation prompt
        (as Activation Lab). Returns `tw.Snapshots` (`compare`, `summary`,
        `center=True` to take out the dimensions every state shares)."""
        from .snapshots import conversation_snapshots

        return conversation_snapshots(self, messages, references, readout, sources)

    def generate_capture(
        self,
        case: CaseLike,
        regions: RegionsLike = None,
        *,
        max_new_tokens: int = 50,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 42,
        top_k_probs: int = 20,
        lens: bool = True,
        lens_top_k: int = DEFAULT_TOP_K,
        keep_logits: bool = False,
        progress: bool = False,
    ) -> Generation:
        """Generate up to `max_new_tokens` tokens after `case`'s prompt with
        the capture on, and return a `tw.Generation`.

        Step 0 is the prefill; each later step decodes the previous token on
        the KV cache; generation stops after an end-of-sequence token. Greedy
        by default; `do_sample=True` samples with `temperature`, `top_k` and
        `top_p` (transformers' warpers) from a CPU generator seeded with `seed`,
        so a seed gives the same tokens on any device. Per step: the chosen
        token, the argmax, the `top_k_probs` most probable tokens with their
        log-probabilities and the entropy (of the model's raw distribution),
        and the new position's attention rows (every layer and head).
        `gen.run` is a `Run` over prompt and generation in which step i's
        position is the query "step:<i>"; with `lens` (the default) it holds
        the logit lens (`lens_top_k` tokens) of every query, read once at the
        end (on a 49k vocabulary it costs more than the decode steps). `regions`
        are resolved on prompt + generated text, so they may name spans of the
        "response" section; queries they name inside the prompt are read with
        one decode step each. `keep_logits` keeps the (step, vocab) raw logits.
        """
        from .generation import generate_capture

        generation = generate_capture(
            self,
            case,
            regions,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            top_k_probs=top_k_probs,
            lens=lens,
            lens_top_k=lens_top_k,
            keep_logits=keep_logits,
            progress=progress,
        )
        seam.remember_model(generation.run, self)
        return generation

    def conversation_scan(
        self, messages: Sequence[dict], regions: RegionsLike = None, **options: Any
    ) -> RunSet:
        """One captured run per message prefix of a conversation (`messages`,
        `{"role", "content"}` dicts): messages[:1], messages[:2], ..., all of
        them, as Activation Lab's `run_at_each_message`, returned as a `RunSet`
        labelled "msg1of6 (user)", "msg2of6 (assistant)", ... Each prefix is a
        `tw.Case(messages=prefix)` captured by `capture_many` with `regions`
        (a spec that names text of a later message fails on the earlier
        prefixes) and `options` (top_k, batch_tokens, progress, ...), so
        run i equals `capture` of prefix i.

        The query "final" of a prefix is where a capture of it reads: a prefix
        ending in a user (or system) message is rendered with the generation
        prompt and read at its last token (what the model reads before it
        answers); a prefix ending in an assistant message is a prefilled answer,
        rendered with no end-of-turn token and read at the last token of that
        message's text (an empty final assistant message reads as the
        generation prompt, as in `Case`). `conversation_snapshots` reads states
        elsewhere: at the last token of each closed message, after its
        end-of-turn marker ("<|im_end|>\\n" in ChatML)."""
        from .snapshots import conversation_scan

        return conversation_scan(self, messages, regions, **options)

    def residual_decomposition(
        self, target: Run | CaseLike, regions: RegionsLike = None
    ) -> ResidualDecomposition:
        """What each block adds to the residual stream, at each query of
        `target` (a `Run`, read from its own token ids, or a case with the
        query positions of `regions`): per layer the norms of the block's input,
        attention term, MLP term and output (the terms as added, after any
        post-norm) and the cosine of each contribution with the output. One
        forward pass. Returns `tw.ResidualDecomposition` (`display` shows a
        `tw.ResidualView`); see `tealeaves_widgets.models.residuals`."""
        from .residuals import residual_decomposition

        return residual_decomposition(self, target, regions)

    def cross_layer_cosine(
        self,
        target: Run | CaseLike,
        source: str = "hidden_out",
        query: str | int | None = None,
        regions: RegionsLike = None,
    ) -> CrossLayerCosine:
        """The (layer, layer) cosine between `source`'s states at every pair of
        layers, at `query` of `target` (a `Run` or a case with `regions`):
        "hidden_in", "hidden_out", "attn_out", "mlp_out" (module outputs, as
        snapshots), "attn_term", "mlp_term" (the terms added). One forward
        pass. Returns `tw.CrossLayerCosine` (`display` shows a `tw.CrossLayerView`)."""
        from .residuals import cross_layer_cosine

        return cross_layer_cosine(self, target, source, query, regions)

    def layer_stats(self, target: Run | CaseLike, regions: RegionsLike = None) -> LayerStats:
        """Per layer and head, statistics of the attention weights over the
        causal entries of every row of `target` (a `Run`, read from its own
        token ids, or a case): mean, sd and max weight, normalised entropy,
        sink mass, mean attention distance, mean row maximum (see
        `tealeaves_widgets.core.layer_stats`). One forward pass; the rows go
        to reducers in chunks, no (pos x pos) matrix is kept. Returns
        `tw.LayerStats`."""
        from .layer_stats import layer_stats

        return layer_stats(self, target, regions)

    def head_atlas(
        self,
        probes: str | Mapping[str, Any] = "default",
        texts: Sequence[str] | None = None,
        seed: int = 0,
        *,
        prepend_bos: bool = True,
        sizes: ProbeSizes | None = None,
        progress: bool = True,
    ) -> HeadAtlas:
        """Per layer and head, how strongly each head acts as a previous-token,
        induction, duplicate-token, positional-offset, BOS, delimiter,
        successor, S2 or copy head, and its attention entropy, on probe
        sequences (`tealeaves_widgets.core.head_atlas.METRICS` says what each
        score measures). `probes="default"` builds the probe sets from the
        tokenizer (seeded by `seed`; sizes in `ProbeSizes`); a dict gives your
        own token-id sequences per set (`prompt.probes.SETS`; sets not named
        are built in), `texts=` your own natural-text probes. Every probe is
        tokenized without special tokens and the BOS put in front when
        `prepend_bos` (a tokenizer without one needs `prepend_bos=False`). One
        forward pass per probe batch, rows reduced in chunks (no pos x pos
        matrix kept). Returns `tw.HeadAtlas`, holding the probes it used."""
        from .head_atlas import head_atlas

        return head_atlas(
            self,
            probes,
            texts,
            seed,
            prepend_bos=prepend_bos,
            sizes=sizes,
            progress=progress,
        )

    def detect_head(
        self,
        target: Any,
        pattern: str | np.ndarray,
        *,
        exclude_bos: bool = False,
        exclude_current_token: bool = False,
        error_measure: str = "mul",
    ) -> np.ndarray:
        """(layer, head) float64 TransformerLens `detect_head` scores, in its
        own mode, on `target` (token ids as given, a `Run` or a case).

        `pattern`: "previous_token_head", "duplicate_token_head",
        "induction_head", or a (T, T) lower-triangular array. "mul" (default):
        the share of each head's attention on the pattern's entries; "abs":
        1 - round(sum |attention - pattern| / T, 3). `exclude_bos` /
        `exclude_current_token` leave out column 0 / the diagonal. One forward
        pass; rows go to a reducer in chunks, no (pos x pos) matrix is kept.
        TransformerLens prepends a BOS to a string: pass the ids it scores.
        See `tealeaves_widgets.models.head_detect`."""
        from .head_detect import detect_head

        return detect_head(
            self,
            target,
            pattern,
            exclude_bos=exclude_bos,
            exclude_current_token=exclude_current_token,
            error_measure=error_measure,
        )

    def region_attention(
        self, target: Run | CaseLike, src: str, dst: str, regions: RegionsLike = None
    ) -> RegionAttention:
        """Per layer and head, the attention region `src`'s tokens (as
        queries, averaged over them) pay region `dst`'s tokens (summed), in
        `target` (a `Run`, or a case with `regions`). One forward pass
        reducing only `src`'s rows. Returns `tw.RegionAttention`."""
        from .layer_stats import region_attention

        return region_attention(self, target, src, dst, regions)

    def head_grid(
        self,
        target: Run | CaseLike,
        layer: int,
        *,
        full: bool = False,
        regions: RegionsLike = None,
    ) -> HeadGrid:
        """Every head's (query, key) attention matrix at `layer` of `target`
        (a `Run`, read from its own token ids, or a case with `regions`), as
        a `tw.HeadGrid` of float16 (head, T', T') patterns. Above 1,024
        tokens the matrices are pooled into blocks (rows averaged, keys
        summed, so rows still sum to 1; T' <= 1,024) unless `full=True`,
        which keeps the exact T x T per head. One forward pass that hands
        only that layer's rows to a reducer; nothing is kept for the other
        layers. `display(grid)` shows a `tw.HeadGridView`."""
        from .head_grid import head_grid

        return head_grid(self, target, layer, full=full, regions=regions)

    def activations(
        self,
        target: Run | CaseLike,
        positions: Any = "all",
        sources: Sequence[str] | str | None = None,
        layers: Sequence[int] | int | None = None,
        regions: RegionsLike = None,
    ) -> Activations:
        """The residual stream leaving each block ("hidden_out"), the MLP
        activations ("mlp_act", the input of its down projection) and each
        head's output ("head_out", the output projection's input as (head,
        head_dim)) at `positions` ("all", "queries", a region name or token
        indices) and `layers` (default all), from one plain forward pass of
        a Run's `token_ids` or a case rendered with `regions`. `sources`:
        names of `core.neurons.ACTIVATION_SOURCES` (default every one this
        architecture has). Returns `tw.Activations` (numpy, float32; only
        the positions asked for are kept)."""
        from .neurons import activations

        return activations(self, target, positions, sources, layers, regions)

    def neurons(
        self,
        target: Run | CaseLike,
        layer: int,
        source: str = "mlp_act",
        positions: Any = "all",
        top_k: int = 50,
        *,
        include_first: bool = False,
        regions: RegionsLike = None,
    ) -> NeuronActivations:
        """`Run.neurons` for a Run or a case rendered with `regions`: the
        `top_k` neurons of `layer` with the highest sd over `positions`
        (position 0 left out of the ranking unless `include_first=True`),
        as a neurons x tokens matrix (`tw.NeuronActivations`)."""
        from .neurons import neurons

        return neurons(
            self,
            target,
            layer,
            source,
            positions,
            top_k,
            include_first=include_first,
            regions=regions,
        )

    def head_means(
        self, cases: Sequence[CaseLike], positions: Sequence[int] | None = None
    ) -> np.ndarray:
        """(layer, head, head_dim) mean output of every head (its slice of the
        attention's output projection input) over every position of `cases`
        (or only `positions` of each), for `ablate(..., reference=...)`."""
        from .ablate import head_means

        return head_means(self, cases, positions)

    @torch.no_grad()
    def sample_response(self, case: CaseLike, seed: int, options: Generate | None = None) -> str:
        """Sample a response to `case` with `seed` (the global torch RNG is left
        as it was); the decoded text, special tokens dropped."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ArgumentTypeError(
                f"seed must be an int (one sampled response per seed), got {seed!r}; e.g. seed=0."
            )
        if options is not None and not isinstance(options, Generate):
            raise ArgumentTypeError(
                f"options must be a tw.Generate or None, got {type(options).__name__}; e.g. "
                "tw.Generate(max_new_tokens=48, temperature=0.7)."
            )
        options = options or Generate()
        rendered = self.render(as_case(case))
        input_ids = torch.as_tensor(rendered.token_ids, device=self.device)[None]
        pad = self._pad_id()
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            output = self.hf_model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=True,
                temperature=options.temperature,
                top_p=options.top_p,
                top_k=None,
                max_new_tokens=options.max_new_tokens,
                pad_token_id=pad,
            )
        return self.tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True)

    # -- the captured forward pass ---------------------------------------------

    def _prepare(self, case: Case, regions: RegionsLike) -> _Prepared:
        rendered = self.render(case)
        resolved = resolve_regions(rendered, regions)
        tracked_ids, tracked_labels = tracked_token_ids(resolved.tracked_tokens, self.tokenizer)
        return _Prepared(case, rendered, resolved, tracked_ids, tracked_labels)

    def _prepare_labelled(self, case: Case, regions: RegionsLike, label: str) -> _Prepared:
        """`_prepare`, with the case's label put in front of any error."""
        try:
            return self._prepare(case, regions)
        except TealeavesError as error:
            raise type(error)(f"Case {label!r}: {error}") from error

    def _check_memory(self, prepared: _Prepared, keep_cache: bool = False) -> None:
        """Refuse a capture that would not fit in the memory free now, listing
        what would: fewer queries, a shorter prompt, or memory_check=False."""
        n_queries, n_tokens = len(prepared.positions), prepared.n_tokens
        n_tracked = len(prepared.tracked_ids)

        def fit(tokens: int, queries: int) -> LoadedFit:
            return self.memory_fit(
                n_tokens=tokens, n_queries=queries, n_tracked=n_tracked, keep_cache=keep_cache
            )

        check = fit(n_tokens, n_queries)
        if check.fits:
            return
        options = []
        queries = largest_fitting(lambda q: fit(n_tokens, q).fits, n_queries)
        if queries:
            options.append(
                f"fewer queries: at most {queries} of the {n_queries} (query_positions in the "
                f"regions), needing {gib(sum(fit(n_tokens, queries).need.values()))}"
            )
        tokens = largest_fitting(lambda t: fit(t, n_queries).fits, n_tokens)
        if tokens:
            options.append(
                f"a shorter prompt: at most {tokens} of its {n_tokens} tokens, needing "
                f"{gib(sum(fit(tokens, n_queries).need.values()))}"
            )
        if keep_cache:
            options.append("keep_cache=False: keep no KV cache for queries read later")
        options.append("memory_check=False to try anyway (the estimate is in the README, Memory)")
        listed = "".join(f"\n  - {option}" for option in options)
        raise InsufficientMemoryError(
            f"This capture of {n_tokens} tokens and {n_queries} queries would not fit in the "
            f"memory free now ({check.describe()}; by part: {check.estimate.describe_capture()}). "
            f"Free some memory, or change one of these:{listed}"
        )

    def memory_fit(
        self, *, n_tokens: int, n_queries: int, n_tracked: int = 0, keep_cache: bool = False
    ) -> LoadedFit:
        """What a capture of `n_tokens` tokens and `n_queries` queries needs on
        each device this model runs on (with `keep_cache`, its kept KV cache
        too), against what is free there now."""
        dtype = str(self.dtype).replace("torch.", "")
        return loaded_fit(
            self._memory_sizes(),
            [str(execution_device(layer, self.hf_model)) for layer in self.layers],
            str(execution_device(self.unembedding, self.hf_model)),
            n_tokens=n_tokens,
            n_queries=n_queries,
            n_tracked=n_tracked,
            dtype=dtype if dtype in DTYPE_BYTES else "float32",
            keep_cache=keep_cache,
        )

    def _memory_sizes(self) -> ModelSizes:
        if self._sizes is None:
            n_params = sum(p.numel() for p in self.hf_model.parameters())
            self._sizes = model_sizes(self.hf_model.config, n_params=n_params)
        return self._sizes

    def _expand(
        self, cases: Sequence[CaseLike], generate: Generate | None, progress: bool
    ) -> tuple[list[Case], list[str], list[int | None]]:
        """Cases, their labels and seeds; with `generate`, each case without a
        response becomes one case per seed with a sampled response."""
        if isinstance(cases, (str, Case, Mapping)) or not isinstance(cases, Sequence):
            raise ArgumentTypeError(
                "Expected a non-empty list of cases (tw.Case, str or dict); got "
                f"{type(cases).__name__}. Wrap a single case in a list, or use capture()."
            )
        if not cases:
            raise ArgumentError(
                "Expected a non-empty list of cases (tw.Case, str or dict); got an empty "
                f"{type(cases).__name__}. Pass at least one case."
            )
        checked = []
        for i, case in enumerate(cases):
            try:
                checked.append(as_case(case))
            except ArgumentTypeError as error:
                raise ArgumentTypeError(f"cases[{i}]: {error}") from error
        labels = [case.name or f"case{i}" for i, case in enumerate(checked)]
        if generate is None:
            return checked, labels, [None] * len(checked)
        if not isinstance(generate, Generate):
            raise ArgumentTypeError(
                f"generate must be a tw.Generate, got {type(generate).__name__}; e.g. "
                "generate=tw.Generate(seeds=(0, 1, 2), max_new_tokens=48)."
            )
        out: tuple[list, list, list] = ([], [], [])
        todo = sum(len(generate.seeds) for case in checked if not case.has_response)
        with _count_progress(progress and todo > 0, todo, "sample") as advance:
            for case, label in zip(checked, labels, strict=True):
                seeds = [None] if case.has_response else list(generate.seeds)
                for seed in seeds:
                    if seed is None:
                        out[0].append(case)
                    else:
                        text = self.sample_response(case, seed, generate)
                        out[0].append(_with_response(case, text))
                    out[1].append(label)
                    out[2].append(seed)
                    advance(0 if seed is None else 1)
        return out

    def _capture_prepared(
        self,
        items: list[_Prepared],
        top_k: int,
        batch_tokens: int | None,
        progress: bool,
        shared_prefix: bool | None = None,
    ) -> list[Run]:
        """Runs of `items`, in their order, computed in length-sorted batches,
        or with their common prefix computed once (`shared_prefix`, see
        capture_many)."""
        runs: list[Run | None] = [None] * len(items)
        if batch_tokens is None:
            batch_tokens = DEFAULT_BATCH_TOKENS.get(self.device.type, DEFAULT_BATCH_TOKENS["cuda"])
        batches = plan_batches([item.n_tokens for item in items], batch_tokens)
        with _count_progress(progress, len(items), "capture") as advance:
            shared = capture_shared(self, items, top_k, batch_tokens, shared_prefix, advance)
            if shared is not None:
                return shared
            for batch in batches:
                members = [items[i] for i in batch]
                heads, residuals = zip(*self._forward(members, None), strict=True)
                lenses = self._lenses(members, list(residuals), top_k)
                for k, i in enumerate(batch):
                    runs[i] = self._finish(items[i], heads[k], lenses[k])
                advance(len(batch))
        return runs  # type: ignore[return-value]

    def _forward(
        self,
        items: list[_Prepared],
        on_layer: Callable[[int, np.ndarray], None] | None,
        cache: Any = None,
        edit: AttentionEdit | None = None,
    ) -> list[tuple[np.ndarray, torch.Tensor]]:
        """One captured forward pass of a batch of sequences, right-padded.

        Returns per item the (layer, head, query, pos) float32 rows as numpy,
        cut to its own queries and tokens, and its (layer, query, hidden)
        residuals as a tensor. Without padding no attention mask is passed,
        so one sequence runs exactly as a plain forward pass. `cache` (one
        sequence only) is filled with the pass's keys and values.
        """
        lengths = [item.n_tokens for item in items]
        n_queries = [len(item.positions) for item in items]
        input_ids = torch.full((len(items), max(lengths)), self._pad_id(), dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        positions = torch.zeros((len(items), max(n_queries)), dtype=torch.long)
        for b, item in enumerate(items):
            input_ids[b, : lengths[b]] = torch.as_tensor(item.rendered.token_ids)
            mask[b, : lengths[b]] = 1
            positions[b, : n_queries[b]] = torch.as_tensor(item.positions)
        padded = min(lengths) != max(lengths)
        kwargs = {"attention_mask": mask.to(self.device)} if padded else {}
        rows, residuals = self._captured(input_ids, positions, on_layer, cache, edit, **kwargs)
        return [
            (
                np.ascontiguousarray(rows[:, b, :, : n_queries[b], : lengths[b]]),
                residuals[:, b, : n_queries[b]],
            )
            for b in range(len(items))
        ]

    def _captured(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        on_layer: Callable[[int, np.ndarray], None] | None = None,
        cache: Any = None,
        edit: AttentionEdit | None = None,
        **kwargs: Any,
    ) -> tuple[np.ndarray, torch.Tensor]:
        """One captured forward pass of (batch, pos) `input_ids` keeping the
        rows of (batch, query) `positions`: the (layer, batch, head, query, pos)
        float32 rows as numpy and the (layer, batch, query, hidden) residuals.
        `cache`, when given, is filled with the keys and values; `edit`
        changes each layer's attention inputs (models.interventions)."""
        forward = {**self._forward_kwargs, **kwargs}
        if cache is not None:
            forward.update({"use_cache": True, cache_keyword(self.hf_model): cache})
        with capturing(self.hf_model, self.arch, positions.to(self.device), edit=edit) as rec:
            if on_layer is not None:  # rows of the first sequence (capture passes one)
                rec.on_layer = lambda layer: on_layer(layer, rec.layer_rows(layer)[0].cpu().numpy())
            self.hf_model(input_ids=input_ids.to(self.device), **forward)
        rows = torch.stack([r.to("cpu") for r in rec.all_rows()]).numpy()
        return rows, torch.stack(_same_device(rec.all_residuals()))

    def _lenses(
        self, items: list[_Prepared], residuals: list[torch.Tensor], top_k: int
    ) -> list[LensArrays]:
        """The lens of each item from its (layer, query, hidden) residuals, in one
        pass per set of tracked tokens: the queries of a batch are stacked, which
        makes the unembedding one larger matmul."""
        out: list[LensArrays | None] = [None] * len(items)
        groups: dict[tuple, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(tuple(item.tracked_ids.tolist()), []).append(i)
        for members in groups.values():
            lens = read_lens(
                torch.cat([residuals[i] for i in members], dim=1),
                self.final_norm,
                self.unembedding,
                self.shape.final_logit_softcap,
                items[members[0]].tracked_ids,
                top_k,
            )
            bounds = np.cumsum([0] + [residuals[i].shape[1] for i in members])
            for k, i in enumerate(members):
                out[i] = _query_slice(lens, int(bounds[k]), int(bounds[k + 1]))
        return out  # type: ignore[return-value]

    def _finish(self, prepared: _Prepared, heads: np.ndarray, lens: LensArrays) -> Run:
        """The `Run` of one case from its attention rows and lens."""
        tracked_ids = prepared.tracked_ids
        vocab_ids = sorted(set(lens.top_ids.ravel().tolist()) | set(tracked_ids.tolist()))
        vocab = {i: self.tokenizer.decode([i]) for i in vocab_ids}
        rendered, resolved = prepared.rendered, prepared.resolved
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
                tracked_tokens=prepared.tracked_labels,
                tracked_ranks=lens.tracked_ranks,
                tracked_probs=lens.tracked_probs,
                vocab=vocab,
            ),
            model_info=self.info(),
            case=prepared.case.to_dict(),
            region_spec=resolved.spec,
        )

    def _pad_id(self) -> int:
        """A token id for padding (masked out, so any valid id serves)."""
        for name in ("pad_token_id", "eos_token_id"):
            value = getattr(self.tokenizer, name, None)
            if isinstance(value, int):
                return value
        return 0

    def info(self) -> dict:
        """Model id, architecture, dtype, device and versions, for `Run.model_info`."""
        import transformers

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


@contextlib.contextmanager
def _count_progress(show: bool, total: int, desc: str, unit: str = "case"):
    """A callback `advance(n)` that moves a tqdm bar over `total` items when `show`."""
    if not show:
        yield lambda n: None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit=unit) as bar:
        yield bar.update


def _query_slice(lens: LensArrays, start: int, stop: int) -> LensArrays:
    """Queries [start, stop) of a lens (every array has queries on axis 1)."""
    return LensArrays(
        **{
            f.name: np.ascontiguousarray(getattr(lens, f.name)[:, start:stop])
            for f in dataclasses.fields(lens)
        }
    )


def _with_response(case: Case, text: str) -> Case:
    """`case` with `text` as its (prefilled) response."""
    if case.messages is None:
        return dataclasses.replace(case, response=text)
    messages = [*case.to_messages(), {"role": "assistant", "content": text}]
    return Case(messages=messages, name=case.name)


def _variant_specs(regions: Any, names: list[str]) -> dict[str, Any]:
    """Variant name -> region spec: one spec for all, or a dict keyed by every
    variant name (and by no regions.json key)."""
    per_variant = (
        isinstance(regions, Mapping)
        and bool(regions)
        and set(regions) <= set(names)
        and not set(regions) & set(SPEC_KEYS)
    )
    if not per_variant:
        return {name: regions for name in names}
    missing = [name for name in names if name not in regions]
    if missing:
        raise ArgumentError(
            f"regions gives specs per variant but not for {missing}; name every variant "
            "(None for built-in regions only), or pass one spec for all."
        )
    return dict(regions)


def _same_device(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Move per-layer tensors to the first one's device (layers may be spread
    over several devices by accelerate)."""
    device = tensors[0].device
    return [t.to(device) for t in tensors]


def check_top_k(top_k: object) -> int:
    """`top_k` as an int of at least 1 (ArgumentTypeError / ArgumentError otherwise)."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
        raise ArgumentTypeError(
            f"top_k must be a whole number (tokens the lens keeps per layer), got {top_k!r} "
            f"({type(top_k).__name__}); e.g. top_k=10."
        )
    if top_k < 1:
        raise ArgumentError(f"top_k must be at least 1, got {top_k}; e.g. top_k=10.")
    return int(top_k)


def _check_flag(name: str, value: object, allow_none: bool = False) -> None:
    if isinstance(value, bool) or (allow_none and value is None):
        return
    allowed = "True, False or None" if allow_none else "True or False"
    raise ArgumentTypeError(f"{name} must be {allowed}, got {value!r}.")


def _check_batch_options(batch_tokens: object, progress: object) -> int | None:
    """The batching keywords of capture_many and capture_comparison, checked
    before any work; `batch_tokens` as an int or None."""
    if batch_tokens is not None and (
        isinstance(batch_tokens, bool) or not isinstance(batch_tokens, (int, np.integer))
    ):
        raise ArgumentTypeError(
            f"batch_tokens must be a whole number of tokens or None (by device), got "
            f"{batch_tokens!r}; e.g. batch_tokens=4096."
        )
    if batch_tokens is not None and batch_tokens < 1:
        raise ArgumentError(
            f"batch_tokens must be at least 1, got {batch_tokens}; e.g. batch_tokens=4096."
        )
    _check_flag("progress", progress)
    return None if batch_tokens is None else int(batch_tokens)
