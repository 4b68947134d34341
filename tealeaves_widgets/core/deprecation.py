"""Deprecated spellings, kept for one release with a warning that names the new one."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from . import seam


def warn_renamed(old: str, new: str) -> None:
    """Warn, at the caller's caller, that `old` is deprecated in favour of `new`."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new} instead.",
        DeprecationWarning,
        stacklevel=3,
    )


def deprecated_alias(old: str, new: str, operation: str) -> Callable[..., Any]:
    """A method that warns that `old` is deprecated and returns `operation` of
    its result through the seam (e.g. the widget class named `operation`)."""

    def method(self: Any, **options: Any) -> Any:
        warn_renamed(old, new)
        return seam.call(operation, self, **options)

    method.__doc__ = f"Deprecated: use {new}."
    return method
