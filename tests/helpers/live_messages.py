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
