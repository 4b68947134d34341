"""Every error (and warning) tealeaves-widgets raises on purpose, in one place.

Each error derives from `TealeavesError` and from the builtin it refines, so
`except ValueError` (or `KeyError`, `OSError`, ...) catches it too. Every
message says what was expected, what arrived and what to do next.

Standard library only: every layer of the package may import this module.
"""

from __future__ import annotations


class TealeavesError(Exception):
    """Base class of every error this package raises on purpose."""


# -- arguments and selections ----------------------------------------------------


class ArgumentError(TealeavesError, ValueError):
    """An argument has a value the function does not accept."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument is of a type the function does not accept."""


class SelectionError(TealeavesError, LookupError):
    """A selection names something the result does not have: a query, region,
    layer, head, variant, case or tracked token."""


# -- prompts and regions ---------------------------------------------------------


class ChatTemplateError(TealeavesError, ValueError):
    """The case cannot be rendered with the tokenizer's chat template."""


class RegionError(TealeavesError, ValueError):
    """A region definition does not fit the prompt it is applied to."""


class MarkerNotFoundError(RegionError):
    """A start/end marker or pattern does not occur where it was looked for."""


class PatternTimeoutError(RegionError):
    """A region's regex pattern ran past its time limit (it backtracks too much)."""


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


# -- models ---------------------------------------------------------------------------


class UnknownArchitectureError(TealeavesError, KeyError):
    """`config.model_type` is not in the architecture table."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ModelNotInstalledError(TealeavesError, ImportError):
    """A model is not on this machine: the embedded default model's package is
    not installed, or a scenario names a model that is neither local nor
    downloadable."""


class InsufficientMemoryError(TealeavesError, MemoryError):
    """The capture would not fit in the memory available."""


class CaptureError(TealeavesError, RuntimeError):
    """A captured forward pass cannot run as asked (another is running in this
    process, or the model lacks what the capture needs)."""


# -- files ------------------------------------------------------------------------------


class RunFileError(TealeavesError, OSError):
    """A saved run file or run directory is missing, truncated, tampered with or
    of another format."""


class RunFileNotFoundError(RunFileError, FileNotFoundError):
    """Nothing is at the path of a run file or run directory."""


class InputFileError(TealeavesError, ValueError):
    """A file the user wrote (regions, conversations, a cases file) cannot be
    read or does not hold what it should."""


class BatchError(InputFileError):
    """Inputs of a batch step are invalid; the message lists every problem."""


class ScenarioError(InputFileError):
    """A scenario file (Activation Lab's YAML) cannot be read, does not hold a
    valid scenario, or asks for what this machine or model cannot do; the
    message names the file and every problem."""


# -- widgets and pages -----------------------------------------------------------------


class WireError(TealeavesError, ValueError):
    """An array or result cannot be put on the wire to the browser as asked."""


class ExportError(TealeavesError, ValueError):
    """A page cannot be exported: an asset is missing, the object has no view,
    or a notebook's widgets have no saved state."""


class ExportWarning(UserWarning):
    """The exported page would load something from the network, or leaves an
    output out."""


class MissingExtensionError(TealeavesError, ImportError):
    """A result's view, figure or file format needs a part of the package that
    could not be imported (see `tealeaves_widgets.core.seam`)."""


__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "BatchError",
    "CaptureError",
    "ChatTemplateError",
    "EmptyRegionError",
    "ExportError",
    "ExportWarning",
    "InputFileError",
    "InsufficientMemoryError",
    "MarkerNotFoundError",
    "MissingExtensionError",
    "ModelNotInstalledError",
    "PatternTimeoutError",
    "PromptTooLongError",
    "QueryNotFoundError",
    "RegionError",
    "RegionOrderError",
    "RegionOverlapError",
    "RunFileError",
    "RunFileNotFoundError",
    "ScenarioError",
    "SelectionError",
    "TealeavesError",
    "UnknownArchitectureError",
    "WireError",
]
