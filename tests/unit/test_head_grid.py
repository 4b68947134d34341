"""`core.head_grid`: the block pooling equals a loop written from its
definition (rows averaged over the tokens a block holds, keys summed), keeps
causal rows summing to 1, composes, and `HeadGrid` checks its input, names
the valid range of a bad head and summarises each head from its weights."""

from __future__ import annotations

import numpy as np
import pytest

from tealeaves_widgets.core.head_grid import (
    MAX_DISPLAY,
    SUMMARY,
    HeadGrid,
    block_counts,
    block_pool,
    pool_factor,
)
from tealeaves_widgets.errors import ArgumentError, SelectionError


def causal(n_heads: int, T: int, seed: int = 0) -> np.ndarray:
    """(head, T, T) random causal rows, each summing to 1."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_heads, T, T)) * 2
    scores[:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] = -np.inf
    w = np.exp(scores - scores.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def pooled_by_loop(A: np.ndarray, f: int) -> np.ndarray:
    """P[I, J] = mean over rows i of block I of sum over keys j of block J of A[i, j]."""
    T = A.shape[-1]
    n = -(-T // f)
    out = np.zeros((*A.shape[:-2], n, n))
    for row_block in range(n):
        rows = range(row_block * f, min((row_block + 1) * f, T))
        for key_block in range(n):
            keys = slice(key_block * f, min((key_block + 1) * f, T))
            sums = [A[..., i, keys].sum(-1) for i in rows]
            out[..., row_block, key_block] = np.mean(sums, axis=0)
    return out


@pytest.mark.parametrize(("T", "f"), [(10, 3), (9, 3), (7, 1), (5, 5), (6, 4)])
def test_block_pool_equals_the_definition(T, f):
    A = causal(2, T)
    np.testing.assert_allclose(block_pool(A, f), pooled_by_loop(A, f), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(block_pool(A, f).sum(-1), 1.0, rtol=1e-12)


def test_pooling_composes_when_rows_are_weighted_by_their_tokens():
    T = 23
    A = causal(3, T)
    once = block_pool(A, 6)
    twice = block_pool(block_pool(A, 2), 3, row_weights=block_counts(T, 2))
    np.testing.assert_allclose(twice, once, rtol=1e-12)
    # unweighted, the short last block would count as much as a full one
    assert not np.allclose(block_pool(block_pool(A, 2), 3), once, rtol=1e-6)


def test_pool_factor_and_block_counts():
    assert pool_factor(MAX_DISPLAY) == 1
    assert pool_factor(MAX_DISPLAY + 1) == 2
    assert pool_factor(5000) == 5 and -(-5000 // 5) <= MAX_DISPLAY
    assert block_counts(10, 3).tolist() == [3, 3, 3, 1]
    assert block_counts(9, 3).tolist() == [3, 3, 3]
    with pytest.raises(ArgumentError, match="at least 1"):
        pool_factor(10, 0)


def grid_of(A: np.ndarray, pool: int = 1, T: int | None = None) -> HeadGrid:
    T = A.shape[-1] if T is None else T
    return HeadGrid(
        layer=3,
        patterns=A.astype(np.float16),
        tokens=tuple(f"t{i}" for i in range(T)),
        pool=pool,
        model_info={"model_id": "tiny", "n_layers": 4},
    )


def test_the_grid_pools_to_at_most_the_side_asked():
    T = 50
    A = causal(2, T, seed=1)
    grid = grid_of(A)
    small = grid.pooled(16)  # 50 / 16 -> blocks of 4, 13 of them
    assert (small.pool, small.size, small.n_tokens) == (4, 13, T)
    np.testing.assert_allclose(small.patterns, pooled_by_loop(A, 4), atol=2e-3)
    # from a grid already pooled by 2: the same blocks of 4 from the stored weights
    halves = grid_of(block_pool(A, 2), pool=2, T=T)
    again = halves.pooled(16)
    assert (again.pool, again.size) == (4, 13)
    np.testing.assert_allclose(again.patterns, pooled_by_loop(A, 4), atol=2e-3)
    assert grid.pooled(64) is grid
    assert small.block_tokens(12) == (48, 50)


def test_the_table_summarises_each_head_from_its_weights():
    A = causal(2, 6, seed=2)
    grid = grid_of(A)
    stored = A.astype(np.float16).astype(np.float64)
    table = grid.table()
    assert list(table.columns) == list(SUMMARY) and table.index.name == "head"
    np.testing.assert_allclose(table["first_block"], stored[:, :, 0].mean(-1))
    np.testing.assert_allclose(table["diagonal"], np.einsum("hii->hi", stored).mean(-1))
    prev = np.array([[stored[h, i, i - 1] for i in range(1, 6)] for h in range(2)]).mean(-1)
    np.testing.assert_allclose(table["previous"], prev)
    np.testing.assert_allclose(table["row_max"], stored.max(-1).mean(-1))
    assert grid.pooled(3).table()["previous"].isna().all()  # no single previous token per block
    text = repr(grid)
    assert "HeadGrid(tiny: layer 3, 2 heads, 6 x 6, float16)" in text
    assert "head 1: first token" in text
    assert "blocks of 2 tokens (from 6 x 6)" in repr(grid.pooled(3))


def test_a_bad_head_or_shape_is_refused():
    grid = grid_of(causal(2, 5))
    message = r"head=2 is out of range; this head grid has 2 heads, 0\.\.1"
    with pytest.raises(SelectionError, match=message):
        grid.head(2)
    assert grid.head(1).dtype == np.float32
    with pytest.raises(ArgumentError, match="make 3 blocks, but the patterns have 5"):
        grid_of(causal(2, 5), pool=2)
    with pytest.raises(ArgumentError, match=r"Expected \(head, T', T'\) patterns"):
        grid_of(causal(2, 5)[0])
