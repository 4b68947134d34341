"""The "PNG" button of every view, in real headless Chromium, on exported pages
with no kernel and no network: a click downloads a PNG of the view (named
after the selection, of a plausible size, the heatmap's colours in it) and
leaves the view as it was."""

from __future__ import annotations

import io

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.widgets import (
    AblationView,
    AggregateView,
    CurvesView,
    Explorer,
    LensView,
    TokenHeatmap,
    VariantDiff,
)
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.synthetic import synthetic_ablation, synthetic_run

pytestmark = pytest.mark.slow

Image = pytest.importorskip("PIL.Image", reason="Pillow comes with matplotlib (the test extra)")
DARKEST = (128, 0, 38)


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=300, n_layers=6, n_heads=3, n_queries=3, seed=3)


def _views(run):
    other = synthetic_run(n_tokens=310, n_layers=6, n_heads=3, n_queries=3, seed=4)
    runs = tw.RunSet(
        [synthetic_run(n_tokens=200, n_layers=6, n_queries=2, seed=s) for s in range(4)]
    )
    return {
        "explorer": lambda: Explorer(run, layer=3, scale="layer"),
        "heatmap": lambda: TokenHeatmap(run, layer=3, scale="layer"),
        "curves": lambda: CurvesView(run, normalize="share"),
        "lens": lambda: LensView(run, layer=2),
        "diff": lambda: VariantDiff(tw.compare({"baseline": run, "other": other}), layer=2),
        "aggregate": lambda: AggregateView(runs, layer=2),
        "ablation": lambda: AblationView(synthetic_ablation(run), layer=2),
    }


def download_png(page):
    """Click the view's PNG button; the download's name and its image."""
    with page.expect_download(timeout=20_000) as info:
        page.click(".tw-download")
    download = info.value
    data = download.path().read_bytes()
    return download.suggested_filename, data


@pytest.mark.parametrize(
    "kind", ["explorer", "heatmap", "curves", "lens", "diff", "aggregate", "ablation"]
)
def test_the_png_button_downloads_the_view(kind, run, open_page):
    page, log = open_page(page_html(_views(run)[kind]()))
    page.wait_for_selector(".tw-download", timeout=20_000)
    page.wait_for_timeout(200)  # the backdrop and charts drawn
    root = page.locator(".tw-root").first.bounding_box()
    name, data = download_png(page)
    assert name.startswith(f"tealeaves-{kind}-") and name.endswith(".png")
    assert "layer" in name
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 <= len(data) <= 20_000_000
    with Image.open(io.BytesIO(data)) as image:
        # twice the size (a sharp picture): the prompt's views as wide as on the page, the
        # charts and tables as wide as they are; scrolling boxes opened to their full height
        if kind in ("explorer", "heatmap", "diff"):
            assert image.width == pytest.approx(2 * root["width"], abs=4)
        else:
            assert 2 * 300 <= image.width <= 2 * root["width"] + 4
        assert image.height >= 1.5 * min(root["height"], 300)
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels == 255).all(axis=-1).mean() > 0.3  # a white page ...
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # ... with something drawn on it
    assert page.locator(".tw-download").first.text_content() == "\u2913 PNG"
    assert log.requests == [] and log.errors == []


def test_the_heatmaps_picture_has_its_colours_and_the_view_stays(run, open_page):
    page, log = open_page(page_html(TokenHeatmap(run, layer=3, scale="layer")))
    page.wait_for_function(
        "(document.querySelector('.tw-backdrop')?.width ?? 0) > 1", timeout=20_000
    )
    text = page.locator(".tw-text")
    style_before = text.evaluate("el => [getComputedStyle(el).maxHeight, el.scrollHeight]")
    top = page.locator(".tw-tok").nth(_darkest(run, 3)).bounding_box()
    name, data = download_png(page)
    assert "layer-3-5" in name and "scale-linear-per-layer" in name
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("RGB"))
    darkest = np.all(pixels == DARKEST, axis=-1).sum()
    # the most attended token's box, at twice the size, less its glyphs and underline
    assert darkest >= 0.5 * (2 * top["width"]) * (2 * top["height"]) - 40
    # every token of the prompt is in the picture, not only the 520 px in view
    assert image.height >= 2 * style_before[1]
    # the view is as it was: the box scrolls again and its backdrop is drawn
    assert text.evaluate("el => [getComputedStyle(el).maxHeight, el.scrollHeight]") == style_before
    assert page.locator(".tw-controls").first.is_visible()
    assert log.errors == [] and log.requests == []


def _darkest(run, layer: int) -> int:
    row = run.attention[layer, run.query_index("final")].copy()
    row[0] = 0  # the sink is left out of the scale
    return int(row.argmax())
