"""Errors raised by tealeaves-widgets.

Every error derives from `TealeavesError`, and every message says what was
expected, what arrived and what to do next.
"""

from __future__ import annotations


class TealeavesError(Exception):
    """Base class of every error this package raises on purpose."""


class RegionError(TealeavesError, ValueError):
    """A region definition does not fit the prompt it is applied to."""


class MarkerNotFoundError(RegionError):
    """A start/end marker or pattern does not occur where it was looked for."""


class RegionOrderError(RegionError):
    """A region's end lies before its start."""


class RegionOverlapError(RegionError):
    """Two sibling regions share characters."""


class EmptyRegionError(RegionError):
    """A region covers no character or no token."""


class QueryNotFoundError(TealeavesError, ValueError):
    """A query position cannot be located in the rendered prompt."""


class PromptTooLongError(TealeavesError, ValueError):
    """The rendered prompt has more tokens than the model's context."""


class ChatTemplateError(TealeavesError, ValueError):
    """The case cannot be rendered with the tokenizer's chat template."""


class UnknownArchitectureError(TealeavesError, KeyError):
    """`config.model_type` is not in the architecture table."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ModelNotInstalledError(TealeavesError, ImportError):
    """The embedded default model's package is not installed."""


class RunFileError(TealeavesError, OSError):
    """A saved run file is missing, truncated, tampered with or of another format."""
