"""Torch-free parts of capturing many cases: `Generate` (sampling responses
with several seeds) and how cases are grouped into padded batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ArgumentError

DEFAULT_BATCH_TOKENS = {"cpu": 2048, "cuda": 4096}
"""Padded tokens per batch in `Model.capture_many` (batch size x longest case),
by device type (others as "cuda"). On 2 CPU threads, 2048 was the fastest of
2048/4096/9600 (`benchmarks/capture_many.py`); larger batches lose cache. The
GPU figure is not measured yet."""


@dataclass(frozen=True)
class Generate:
    """Sample the response of each case without one, once per seed, then capture
    the case with that response prefilled (so queries such as "final" sit at
    the response's end). Cases that have a response are captured once."""

    seeds: tuple[int, ...] = (0, 1, 2)
    """One sampled response per seed; several seeds measure seed noise."""
    max_new_tokens: int = 48
    """Longest response sampled, in tokens."""
    temperature: float = 1.0
    """Sampling temperature (> 0)."""
    top_p: float = 1.0
    """Nucleus sampling mass, in (0, 1]."""

    def __post_init__(self) -> None:
        seeds = tuple(self.seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
            raise ArgumentError(f"Generate.seeds must be a non-empty list of ints, got {seeds!r}.")
        if len(set(seeds)) != len(seeds):
            raise ArgumentError(f"Generate.seeds repeats a seed: {seeds!r}; list each once.")
        object.__setattr__(self, "seeds", seeds)
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ArgumentError(
                f"Generate.max_new_tokens must be a positive int, got {self.max_new_tokens!r}."
            )
        if not self.temperature > 0 or not 0 < self.top_p <= 1:
            raise ArgumentError(
                f"Generate needs temperature > 0 and 0 < top_p <= 1, got temperature="
                f"{self.temperature!r}, top_p={self.top_p!r}."
            )


def plan_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Group case indices into batches, longest first, so that each batch's
    size x its longest case stays within `batch_tokens` (a case longer than
    that runs alone). Similar lengths end up together, so little is padding."""
    if isinstance(batch_tokens, bool) or not isinstance(batch_tokens, int) or batch_tokens < 1:
        raise ArgumentError(f"batch_tokens must be a positive int, got {batch_tokens!r}.")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for index in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= batch_tokens:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches
