"""The heatmap's default colour scale on the embedded model: the quickstart's
run reads at every layer and for every query (at the old default, linear over
all layers, 95% of the tokens stay under 5% of the colour range at the median layer). The browser
draws the same numbers (benchmarks/heatmap_scales.py reads them back from the
canvas); here they are computed as heatmap_figure computes them."""

from __future__ import annotations

import numpy as np
import pytest

from tealeaves_widgets.core.heatmap_scale import DEFAULT_HEATMAP_SCALE, heatmap_scale
from tealeaves_widgets.prompt.examples import EXAMPLE_CASE, EXAMPLE_REGIONS


@pytest.fixture(scope="module")
def quickstart(smol_model):
    return smol_model.capture(EXAMPLE_CASE, EXAMPLE_REGIONS)


def shares(run, query: str, scale: str) -> list[float]:
    """Per layer: the share of the tokens the query sees (first token masked)
    above 5% of the colour range, from the float16 rows the widget receives."""
    rows = run.attention[:, run.query_index(query)].astype(np.float16).astype(np.float64)
    limit = run.queries[query] + 1
    masked = np.zeros(run.n_tokens, dtype=bool)
    masked[0] = True
    out = []
    for layer in range(run.n_layers):
        colours = heatmap_scale(rows, layer, limit, masked, scale)
        places = colours.fractions(rows[layer], masked)[1:limit]
        out.append(float((np.round(places * 255) >= 13).mean()))
    return out


def test_the_default_scale_shows_a_quarter_of_the_quickstart_at_every_layer(quickstart):
    assert DEFAULT_HEATMAP_SCALE == "log-layer"
    for query in quickstart.queries:
        assert min(shares(quickstart, query, DEFAULT_HEATMAP_SCALE)) >= 0.25, query


def test_the_old_default_left_the_quickstart_blank(quickstart):
    assert np.median(shares(quickstart, "final", "linear")) < 0.1
