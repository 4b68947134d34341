"""What a live explorer sends to the front end, recorded instead of sent."""

from __future__ import annotations

import numpy as np

from tealeaves_widgets.widgets import live
from tealeaves_widgets.widgets.wire import decode_array


class Sent(list):
    """What the views sent: (content, buffers) per message."""

    def __call__(self, view, content, buffers=None):
        self.append((content, [bytes(b) for b in buffers or []]))


def record_sent(monkeypatch) -> Sent:
    """Every message a `LiveExplorer` sends from now on, in order (nothing
    leaves the kernel); the `sent` fixture of tests/conftest.py."""
    record = Sent()
    monkeypatch.setattr(live.LiveExplorer, "send", lambda self, c, b=None: record(self, c, b))
    return record


def decode(content, buffers, name):
    """The float32 array a message names as `name` (a buffer reference)."""
    spec = content[name]
    return decode_array({**spec, "data": buffers[spec["buffer"]]}).astype(np.float32)


def replay(view, content: dict) -> list[tuple[dict, list[bytes]]]:
    """Send `content` to `view` as the front end would, and return what the
    view sent back (nothing leaves the kernel)."""
    answers: list[tuple[dict, list[bytes]]] = []
    view.send = lambda reply, buffers=None: answers.append(
        (reply, [bytes(b) for b in buffers or []])
    )
    try:
        view._on_message(view, content, [])
    finally:
        del view.send
    return answers


def decode_any(content: dict, buffers: list[bytes], name: str) -> np.ndarray:
    """The array a message names as `name` (a buffer reference), in its own dtype."""
    spec = content[name]
    return decode_array({**spec, "data": buffers[spec["buffer"]]})


def decode_query_reply(content: dict, buffers: list[bytes]) -> dict[str, np.ndarray]:
    """Every array of a "query_at" reply by name (lens arrays as "lens.<name>";
    "heads" as float32 (layer, head, width))."""
    arrays = {
        name: decode_any(content, buffers, name)
        for name in ("attention", "curves", "curves_heads", "first_token", "first_token_heads")
    }
    for name in content["lens"]:
        if name != "vocab":
            arrays[f"lens.{name}"] = decode_any(content["lens"], buffers, name)
    arrays["heads"] = decode_any(content["heads"], buffers, "rows").astype(np.float32)
    return arrays
