"""`HeadGridView` and its payload: the patterns travel as float16 bytes of at
most 1,024 x 1,024 per head (a full-resolution grid is pooled as
`HeadGrid.pooled` pools), `display(grid)` shows the view, and a bad head or
result is refused with the valid range."""

from __future__ import annotations

import numpy as np
import pytest

from tealeaves_widgets.core import seam
from tealeaves_widgets.core.head_grid import HeadGrid, block_pool
from tealeaves_widgets.errors import ArgumentTypeError, SelectionError
from tealeaves_widgets.widgets import HeadGridView, head_grid_payload
from tealeaves_widgets.widgets.wire import decode_array
from tests.helpers.golden import golden_head_grid


def long_grid(T: int = 1500, n_heads: int = 2) -> tuple[HeadGrid, np.ndarray]:
    """A full-resolution grid of uniform causal rows over T tokens, and its float64 rows."""
    A = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    A = np.broadcast_to(A, (n_heads, T, T))
    grid = HeadGrid(
        layer=0,
        patterns=A.astype(np.float16),
        tokens=tuple(f"t{i}" for i in range(T)),
        pool=1,
        model_info={"model_id": "uniform"},
    )
    return grid, A


def test_the_payload_carries_the_patterns_as_float16_bytes():
    grid = golden_head_grid()
    payload = head_grid_payload(grid)
    assert payload["kind"] == "head_grid" and payload["pool"] == 1
    assert isinstance(payload["patterns"]["data"], memoryview)
    np.testing.assert_array_equal(decode_array(payload["patterns"]), grid.patterns)
    assert payload["tokens"] == list(grid.tokens)
    assert (payload["n_layers"], payload["n_kv_heads"]) == (3, 1)


def test_a_full_grid_is_pooled_to_at_most_1024_for_display():
    grid, A = long_grid()
    payload = head_grid_payload(grid)
    shown = decode_array(payload["patterns"])
    assert payload["pool"] == 2 and shown.shape == (2, 750, 750)
    np.testing.assert_allclose(shown, block_pool(A, 2), atol=1e-3)
    np.testing.assert_allclose(shown.astype(np.float64).sum(-1), 1.0, atol=2e-3)
    assert len(payload["tokens"]) == 1500  # every token, for the tooltips


def test_display_shows_the_view_and_bad_input_is_refused():
    grid = golden_head_grid()
    view = seam.call("view", grid)
    assert isinstance(view, HeadGridView) and view.result is grid
    assert (view.head, view.scale) == (0, "sqrt")
    view.head = 1
    with pytest.raises(SelectionError, match=r"head=2 is out of range; .* 0\.\.1"):
        view.head = 2
    assert view.head == 1
    with pytest.raises(Exception, match="scale"):
        view.scale = "log"
    with pytest.raises(ArgumentTypeError, match="expects a tw.HeadGrid"):
        HeadGridView(object())  # type: ignore[arg-type]
