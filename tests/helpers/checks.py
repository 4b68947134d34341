"""Assertions shared by the integration tests."""

from __future__ import annotations

import numpy as np

import tealeaves_widgets as tw


def assert_same_run(batched: tw.Run, single: tw.Run, tol: float = 1e-5) -> None:
    assert batched.tokens == single.tokens and batched.queries == single.queries
    assert batched.regions.keys() == single.regions.keys()
    np.testing.assert_allclose(batched.attention_heads, single.attention_heads, atol=tol, rtol=0)
    np.testing.assert_allclose(batched.attention, single.attention, atol=tol, rtol=0)
    np.testing.assert_allclose(batched.lens.top_probs, single.lens.top_probs, atol=tol, rtol=0)
    np.testing.assert_allclose(
        batched.lens.tracked_probs, single.lens.tracked_probs, atol=tol, rtol=0
    )
    np.testing.assert_array_equal(batched.lens.top_ids[..., 0], single.lens.top_ids[..., 0])
