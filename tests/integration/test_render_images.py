"""PNG and GIF images drawn with matplotlib, from Python and from the command
line, on synthetic runs (no model): their size in pixels and bytes, one GIF
frame per layer that changes with the layer, each token's background the
widget's colour for its weight (sampled from the PNG), text drawn as text,
the curves and bands in their colours, and a user's matplotlib settings left
alone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.batch import cli
from tealeaves_widgets.present import render
from tests.helpers.synthetic import synthetic_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ODD_TEXT = " costs $5 or $6, $x^2$ and <b>bold</b> \\alpha"

Image = pytest.importorskip("PIL.Image", reason="Pillow comes with matplotlib (the [render] extra)")


@pytest.fixture(scope="module")
def run():
    return synthetic_run(
        n_tokens=300, n_layers=6, n_heads=3, n_queries=3, seed=3, extra_text=ODD_TEXT
    )


@pytest.fixture(scope="module")
def runsets():
    def make(seed: int, n_tokens: int) -> tw.RunSet:
        runs = [
            synthetic_run(n_tokens=n_tokens, n_layers=6, n_heads=2, n_queries=2, seed=seed + i)
            for i in range(4)
        ]
        return tw.RunSet(runs)

    return make(0, 200), make(10, 220)


def rgb(path: Path, frame: int = 0) -> np.ndarray:
    with Image.open(path) as image:
        image.seek(frame)
        return np.asarray(image.convert("RGB")).astype(np.int64)


def hex_rgb(colour: str) -> list[int]:
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def background(pixels: np.ndarray, box: tuple[int, int, int, int], underline: int) -> list[int]:
    """The most common colour inside a token's box, above its region underline
    (glyphs cover less of the box than its background)."""
    left, top, right, bottom = box
    patch = pixels[top : bottom - underline, left:right].reshape(-1, 3)
    return list(Counter(map(tuple, patch.tolist())).most_common(1)[0][0])


# ---------------------------------------------------------------- the heatmap


def test_heatmap_png_has_a_sane_size(run, tmp_path):
    path = run.save_png(tmp_path / "heatmap.png", layer=3)
    assert path == tmp_path / "heatmap.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.width == 1600
        assert 500 <= image.height <= 1600  # 300 tokens wrap to about 20 lines
    assert 30_000 <= path.stat().st_size <= 2_000_000


def widget_range(weights: np.ndarray, layer: int, limit: int, scale: str) -> tuple[float, float]:
    """The widget's colour range (js/src/colour.ts, scaleRange), written out here
    with the first token left out: linear and log over every layer; log-layer
    from this layer's median (over the tokens the query sees) to its max, the
    bottom moved into 1..6 decades below the max."""
    every = weights[:, 1:].max()
    if scale == "linear":
        return 0.0, every
    if scale == "log":
        return every / 1e4, every
    seen = weights[layer, 1:limit]
    top = seen.max()
    return min(max(float(np.median(seen)), top / 1e6), top / 10), top


def widget_index(weight: float, low: float, high: float, scale: str) -> int:
    """The widget's colour index (colourIndices): round(255 * w / high) on the
    linear scale; on a log one (log10(w) - log10(low)) * 255 / decades, at
    least 1 for a positive weight."""
    if scale == "linear":
        return int(min(255, np.floor(255 * weight / high + 0.5)))
    if weight <= 0:
        return 0
    value = (np.log10(weight) - np.log10(low)) * 255 / np.log10(high / low)
    return 1 if value <= 1 else 255 if value >= 255 else int(np.floor(value + 0.5))


@pytest.mark.parametrize("scale", ["linear", "log", None])
def test_each_token_background_is_the_widgets_colour_for_its_weight(run, tmp_path, scale):
    """Sample every token's background in the PNG and compare it with the
    widget's rule on the linear and log scales and on the default (log-layer),
    the first token (the sink) left out of the scale, the colour table of
    js/src/colour.ts (checked in tests/unit/test_render.py)."""
    layer = 3
    kwargs = {} if scale is None else {"scale": scale}
    path = run.save_png(tmp_path / "heatmap.png", layer=layer, query="final", **kwargs)
    scale = scale or render.DEFAULT_SCALE
    assert scale in ("linear", "log", "log-layer")
    pixels = rgb(path)
    weights = run.attention[:, run.query_index("final"), :].astype(np.float64)
    low, high = widget_range(weights, layer, run.queries["final"] + 1, scale)
    sel = render.HeatmapSelection.of(run, "final", None, scale, True, False)
    with render._style(render.HeatmapImage.FONT_PT):
        image = render.HeatmapImage(run, sel, 1600, 150)  # the same geometry as save_png
    underline = int(np.ceil(max(2.0, 0.2 * image.font_px))) + 1
    checked, indices = 0, set()
    for token in range(1, run.n_tokens):
        index = widget_index(weights[layer, token], low, high, scale)
        for box in image.token_boxes(token):
            if box[2] - box[0] < 8:  # too narrow to find its background among glyphs
                continue
            expected = render.COLOUR_TABLE[index].tolist()
            assert background(pixels, box, underline) == expected, (token, box, index)
            checked += 1
            indices.add(index)
    assert checked > 250
    assert len(indices) > 20  # many shades were sampled, not one
    assert background(pixels, image.token_boxes(0)[0], underline) == [255, 255, 255]  # the sink


def test_the_per_layer_scale_draws_the_top_token_darkest_and_the_sink_white(run, tmp_path):
    layer = 2
    path = run.save_png(tmp_path / "h.png", layer=layer, scale="layer")
    pixels = rgb(path)
    sel = render.HeatmapSelection.of(run, None, None, "layer", True, False)
    with render._style(render.HeatmapImage.FONT_PT):
        image = render.HeatmapImage(run, sel, 1600, 150)
    row = run.attention[layer, run.query_index("final")].copy()
    row[0] = 0
    top = image.token_boxes(int(np.argmax(row)))[0]
    underline = int(np.ceil(image.font_px * 0.2)) + 1
    assert background(pixels, top, underline) == [128, 0, 38]  # the widget's darkest
    assert background(pixels, image.token_boxes(0)[0], underline) == [255, 255, 255]


def test_text_in_tokens_and_titles_is_drawn_as_text(run):
    """A "$5 or $6" would become math under matplotlib's mathtext: every text
    drawn has math parsing off, and the odd token is as wide as its letters."""
    from matplotlib.font_manager import FontProperties

    odd = tw.Run(**{**run.__dict__, "model_info": {"model_id": "org/$a$_b"}})
    sel = render.HeatmapSelection.of(odd, None, None, "linear", True, False)
    with render._style(render.HeatmapImage.FONT_PT):
        image = render.HeatmapImage(odd, sel, 1600, 150)
        image.draw_layer(1)
        renderer = image.figure.canvas.get_renderer()  # type: ignore[attr-defined]
        texts = image.ax.texts
        assert texts and all(not t.get_parse_math() for t in texts)
        assert "org/$a$_b" in image.title.get_text()
        piece = next(t for t in texts if "$5 or $6" in t.get_text())
        drawn = piece.get_window_extent(renderer).width
        plain = renderer.get_text_width_height_descent(
            piece.get_text(), FontProperties(family="monospace", size=9.0), ismath=False
        )[0]
        assert drawn == pytest.approx(plain, abs=2)


def test_a_users_matplotlib_settings_change_nothing(run, tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    with matplotlib.rc_context({"figure.facecolor": "black", "font.size": 30}):
        path = run.save_png(tmp_path / "h.png", layer=1)
        assert matplotlib.rcParams["figure.facecolor"] == "black"
    assert matplotlib.get_backend() == backend
    pixels = rgb(path)
    assert pixels[2, 2].tolist() == [255, 255, 255]
    with Image.open(path) as image:
        assert image.height < 1600  # not the 30 pt text


def test_gif_has_one_frame_per_layer_that_changes_with_the_layer(run, tmp_path):
    path = run.save_gif(tmp_path / "sweep.gif", duration=300)
    assert path.read_bytes()[:6] == b"GIF89a"
    assert 50_000 <= path.stat().st_size <= 5_000_000
    with Image.open(path) as image:
        assert image.n_frames == run.n_layers
        assert image.width == 1200 and 400 <= image.height <= 1400
        assert image.info["loop"] == 0
        durations = []
        for frame in range(image.n_frames):
            image.seek(frame)
            durations.append(image.info["duration"])
    assert durations == [300] * (run.n_layers - 1) + [900]
    frames = [rgb(path, frame) for frame in range(run.n_layers)]
    for a, b in zip(frames, frames[1:], strict=False):
        changed = np.any(a != b, axis=-1).mean()
        assert changed > 0.005, "a layer's frame equals the previous one"
    # the text area changes, the margins do not
    assert np.array_equal(frames[0][:, :10], frames[-1][:, :10])


def test_gif_frames_show_the_same_colours_as_the_png(run, tmp_path):
    """One palette for all frames: a frame is the PNG of its layer (at the
    GIF's size) up to the palette's rounding."""
    gif = run.save_gif(tmp_path / "sweep.gif")
    png = run.save_png(tmp_path / "layer4.png", layer=4, width=1200, dpi=110)
    frame, still = rgb(gif, 4), rgb(png)
    assert frame.shape == still.shape
    assert np.mean(np.abs(frame - still)) < 4
    assert np.mean(np.all(np.abs(frame - still) <= 24, axis=-1)) > 0.97


# ---------------------------------------------------------------- curves and bands


def colour_pixels(pixels: np.ndarray, colour: str) -> int:
    return int(np.all(pixels == hex_rgb(colour), axis=-1).sum())


def test_curves_png_draws_each_region_in_its_colour(run, tmp_path):
    from tealeaves_widgets.present.palette import region_colors

    path = run.save_curves_png(tmp_path / "curves.png", normalize="share", layer=2)
    with Image.open(path) as image:
        assert image.size == (1600, 900)
    assert 20_000 <= path.stat().st_size <= 1_000_000
    pixels = rgb(path)
    for name, colour in region_colors(run).items():
        assert colour_pixels(pixels, colour) > 200, name
    assert colour_pixels(pixels, render.QUERY_OUTLINE) > 100  # the layer cursor


def test_aggregate_png_of_one_and_of_several_runsets(runsets, tmp_path):
    one, other = runsets
    path = one.save_png(tmp_path / "bands.png", normalize="share")
    with Image.open(path) as image:
        assert image.size == (1600, 900)
    pixels = rgb(path)
    user = "#f28e2b"  # the palette's colour of the first region after template and system
    assert colour_pixels(pixels, user) > 200
    # a band: the template's grey at 18% over white, above the other regions' bands
    band = 0.18 * np.array(hex_rgb("#9ca3af")) + 0.82 * 255
    assert np.sum(np.all(np.abs(pixels - band) <= 2, axis=-1)) > 2_000

    several = render.aggregate_png({"baseline": one, "terse": other}, tmp_path / "overlay.png")
    with Image.open(several) as image:
        assert image.width == 1600 and 700 <= image.height <= 1000  # two rows of panels
    pixels = rgb(several)
    assert colour_pixels(pixels, render.BASELINE_COLOR) > 200
    assert colour_pixels(pixels, render.VARIANT_COLORS[0]) > 200


# ---------------------------------------------------------------- the command line


def test_command_line_writes_each_image(run, runsets, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run.save("one.tlrun")
    runsets[0].save("base")
    runsets[1].save("terse")
    commands = {
        "h.png": ["heatmap", "one.tlrun", "--layer", "2", "--query", "q1", "--head", "1"],
        "s.gif": ["gif", "base", "--case", "case2", "--scale", "log", "--duration", "250"],
        "c.png": ["curves", "one.tlrun", "--normalize", "share", "--regions", "system,user"],
        "c0.png": ["curves", "one.tlrun", "--normalize", "share", "--exclude", "none"],
        "c1.png": ["curves", "one.tlrun", "--normalize", "share", "--share-level", "0"],
        "a.png": ["aggregate", "base", "terse=terse", "--normalize", "share"],
        "a1.png": ["aggregate", "base", "--interval", "bootstrap"],
    }
    for out, argv in commands.items():
        assert cli.main(["render", *argv, "-o", out]) == 0, capsys.readouterr().err
        said = capsys.readouterr().out
        assert said.startswith(f"wrote {out} (") and "px" in said
        with Image.open(out) as image:
            assert image.width in (1200, 1600) and image.height >= 400
            if out.endswith(".gif"):
                assert image.n_frames == run.n_layers
        assert Path(out).stat().st_size > 20_000
    # the mass flags reach the drawing: the same picture as the Python call's
    for out, kwargs in (("c0.png", {"exclude": None}), ("c1.png", {"share_level": 0})):
        same = run.save_curves_png(f"py-{out}", normalize="share", **kwargs)
        assert np.array_equal(rgb(out), rgb(same)), out
    assert not np.array_equal(rgb("c0.png"), rgb(run.save_curves_png("d.png", normalize="share")))


def test_command_line_checks_the_selection_against_the_run(run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run.save("one.tlrun")
    tw.RunSet([run, run], labels=("a", "b")).save("two")
    cases = {
        ("heatmap", "one.tlrun", "--layer", "6"): "--layer: layer=6 is out of range",
        ("heatmap", "one.tlrun", "--query", "q9"): "--query: Unknown query 'q9'",
        ("gif", "one.tlrun", "--head", "3"): "--head: head=3 is out of range",
        ("curves", "one.tlrun", "--regions", "rules"): "--regions: Unknown region(s) ['rules']",
        ("curves", "one.tlrun", "--exclude", "rules"): "exclude names region(s) ['rules']",
        ("heatmap", "two"): "holds 2 runs; pick one with --case",
        ("heatmap", "two", "--case", "c"): "--case 'c' is not a case",
        ("heatmap", "one.tlrun", "--case", "a"): "leave --case out",
    }
    for argv, says in cases.items():
        out = "s.gif" if argv[0] == "gif" else "x.png"
        assert cli.main(["render", *argv, "-o", out]) == cli.EXIT_BAD_ARGUMENTS
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], lines
        assert not Path(out).exists()
