"""How a core result (a `Comparison`, a `RunSet`) displays as a widget in
Jupyter: its view's mime bundle, with the text repr kept beside it. The core
classes import this on display only, never at import time."""

from __future__ import annotations

from typing import Any

import ipywidgets


def widget_bundle(
    view: ipywidgets.Widget, text: str, include: Any = None, exclude: Any = None
) -> dict | tuple:
    """`view`'s mime bundle with "text/plain" set to `text` (for plain-text front ends)."""
    plain = {"text/plain": text}
    bundle = view._repr_mimebundle_(include=include, exclude=exclude)
    if isinstance(bundle, tuple):  # (data, metadata), as anywidget returns it
        return ({**bundle[0], **plain}, bundle[1])
    return {**bundle, **plain}
