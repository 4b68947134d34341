"""Static images, the parts that draw nothing: the heatmap's colour table is
the widget's, weights map to the same colour indices, tokens are laid out as
the widget flows them, a missing matplotlib says what to install, and bad
arguments (in Python and on the command line) are refused before anything is
opened or drawn. The images themselves: tests/integration/test_render_images.py."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.batch import cli
from tealeaves_widgets.io import rundir, runfile
from tealeaves_widgets.present import render
from tests.helpers.synthetic import synthetic_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_tokens=120, n_layers=4, n_heads=2, n_queries=2, seed=5)


# ---------------------------------------------------------------- colours


def test_the_colour_table_is_the_widgets():
    """The light palette of js/src/colour.ts (the white page, then HEAT_ANCHORS),
    interpolated and rounded as the widget does."""
    source = (ROOT / "js" / "src" / "colour.ts").read_text(encoding="utf-8")
    block = re.search(r"const HEAT_ANCHORS[^=]*=\s*\[(.*?)\];", source, re.S)
    assert block is not None, "HEAT_ANCHORS not found in js/src/colour.ts"
    anchors = [[int(v) for v in t] for t in re.findall(r"\[(\d+), (\d+), (\d+)\]", block[1])]
    assert [[255, 255, 255], *anchors] == render._ANCHORS.astype(int).tolist()
    table = render.COLOUR_TABLE
    assert table.shape == (256, 3)
    assert table[0].tolist() == [255, 255, 255]
    assert table[255].tolist() == [128, 0, 38]  # the widget's darkest (tests/browser)
    assert table[64].tolist() == [255, 237, 160]  # an anchor: 64/255 * 4 = 1.0039 -> rounds
    # values the widget's own code gives (colour.ts's COLOURS, printed by vitest)
    assert table[[100, 200, 250]].tolist() == [[254, 203, 112], [225, 51, 33], [137, 5, 38]]
    # white text from the same index as the widget's DARK (WCAG rule: the
    # theme's text below 4.5:1 contrast, and white contrasts more than black)
    assert int(np.argmax(render.DARK)) == 202 and render.DARK[202:].all()
    assert int(render.DARK.sum()) == 54


def _scale(name, log, low, high):
    return render.HeatmapScale(name, log, low, high)


def test_weights_map_to_the_widgets_colour_indices():
    row = np.array([0.5, 0.0, 0.1, 0.2, 0.4, 0.6], dtype=np.float32)
    masked = np.array([True, False, False, False, False, False])
    linear = render.colour_indices(row, masked, _scale("linear", False, 0.0, 0.4))
    # round(255 * w / high), clipped; masked and zero weights stay 0
    assert linear.tolist() == [0, 0, 64, 128, 255, 255]
    log = render.colour_indices(row, masked, _scale("log", True, 0.4e-4, 0.4))
    # (log10(w) - log10(low)) * 255 / 4, at least 1 for a positive weight
    expected = [0, 0] + [round((4 + np.log10(w / 0.4)) * 255 / 4) for w in (0.1, 0.2)] + [255, 255]
    assert log.tolist() == expected
    # log-layer: 1.5 decades from 0.0126 to 0.4; at or below the bottom is the faintest shade
    low = 0.4 / 10**1.5
    shallow = render.colour_indices(
        np.array([0.001, low, 0.1, 0.4], dtype=np.float32),
        np.zeros(4, bool),
        _scale("log-layer", True, low, 0.4),
    )
    assert shallow.tolist() == [1, 1, round(np.log10(0.1 / low) * 255 / 1.5), 255]
    assert render.colour_indices(row, masked, _scale("linear", False, 0.0, 0.0)).tolist() == [0] * 6


def test_the_scale_range_follows_the_widget(run):
    q = run.query_index("final")
    limit = run.queries["final"] + 1
    rows = run.attention[:, q, 1:limit]  # the sink left out, the tokens the query sees
    linear = render.HeatmapSelection.of(run, "final", None, "linear", True, False)
    assert linear.range(run, 2).high == pytest.approx(float(run.attention[:, q, 1:].max()))
    per_layer = render.HeatmapSelection.of(run, "final", None, "layer", True, False)
    assert per_layer.range(run, 2).high == pytest.approx(float(rows[2].max()))
    default = render.HeatmapSelection.of(run, "final", None, render.DEFAULT_SCALE, True, False)
    assert default.scale == "log-layer"
    got = default.range(run, 2)
    top, median = float(rows[2].max()), float(np.median(rows[2]))
    assert got.log and got.high == pytest.approx(top)
    assert got.low == pytest.approx(min(max(median, top / 1e6), top / 10))
    with_sink = render.HeatmapSelection.of(run, "final", None, "linear", False, False)
    assert with_sink.range(run, 0).high == pytest.approx(float(run.attention[:, q].max()))
    with pytest.raises(tw.ArgumentError, match="log-layer"):
        render.HeatmapSelection.of(run, "final", None, "rainbow", True, False)


# ---------------------------------------------------------------- text and layout


def test_tokens_show_as_the_widget_shows_them():
    assert render.display_text("") == "\u2205"
    assert render.display_text(" a\nb") == " a\u21b5\nb"
    assert render.display_text("\t$5\r") == "    $5\\r"
    assert render.display_text("\x00") == "\\x00"


class Chars:
    """A measure of 10 px per character (a monospace font without matplotlib)."""

    def __call__(self, text: str) -> float:
        return 10.0 * len(text)


def test_layout_wraps_like_pre_wrap():
    pieces = [(0, "abc"), (1, "de\u21b5\nf"), (2, "x" * 25), (3, "gh")]
    boxes, lines = render.layout_tokens(pieces, Chars(), width=100.0)  # type: ignore[arg-type]
    drawn = [(b.token, b.text, b.x, b.line) for b in boxes]
    assert drawn == [
        (0, "abc", 0.0, 0),
        (1, "de\u21b5", 30.0, 0),  # a newline mark ends the line
        (1, "f", 0.0, 1),
        (2, "x" * 10, 0.0, 2),  # too long for the rest of the line: a new one, then cut
        (2, "x" * 10, 0.0, 3),
        (2, "x" * 5, 0.0, 4),
        (3, "gh", 50.0, 4),
    ]
    assert lines == 5


def test_words_wrap_in_titles():
    assert render.wrap_words("aaa bbb ccc", Chars(), 75.0) == ["aaa bbb", "ccc"]  # type: ignore[arg-type]


# ---------------------------------------------------------------- refusals


def test_a_missing_matplotlib_says_what_to_install(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(tw.MissingExtensionError, match=re.escape('"tealeaves-widgets[render]"')):
        run.save_png(tmp_path / "h.png")
    with pytest.raises(tw.MissingExtensionError, match="pip install"):
        tw.RunSet([run, run]).save_png(tmp_path / "a.png")


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda r, d: r.save_png(d / "h.jpg"), "name the file h.png"),
        (lambda r, d: r.save_gif(d / "s.png"), "name the file s.gif"),
        (lambda r, d: r.save_png(d / "h.png", width=10), "width=10 is out of range"),
        (lambda r, d: r.save_png(d / "h.png", scale="sqrt"), "Unknown scale='sqrt'"),
        (lambda r, d: r.save_png(d / "h.png", layer=9), "layer=9 is out of range"),
        (lambda r, d: r.save_png(d / "h.png", query="nope"), "Unknown query 'nope'"),
        (lambda r, d: r.save_gif(d / "s.gif", duration=0), "duration"),
        (lambda r, d: r.save_curves_png(d / "c.png", normalize="max"), "normalize='max'"),
        (lambda r, d: render.aggregate_png([r], d / "a.png"), "Wrap single runs"),
    ],
)
def test_bad_arguments_are_refused(run, tmp_path, call, says):
    with pytest.raises(tw.TealeavesError, match=re.escape(says)):
        call(run, tmp_path)
    assert not list(tmp_path.glob("*.*"))


# ---------------------------------------------------------------- the command line


def _not_called(*args, **kwargs):
    raise AssertionError("opened a run before checking the arguments")


@pytest.fixture()
def nothing_opens(monkeypatch):
    monkeypatch.setattr(rundir, "open_runs", _not_called)
    monkeypatch.setattr(runfile, "open_run", _not_called)


def one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip("\n").splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture()
def sources(tmp_path):
    (tmp_path / "run.tlrun").write_bytes(b"never read")
    (tmp_path / "runs").mkdir()
    return tmp_path


CLI_CASES = {
    "png suffix": (["heatmap", "run.tlrun", "-o", "h.jpg"], ["-o 'h.jpg'", "name it h.png"]),
    "gif suffix": (["gif", "run.tlrun", "-o", "s.png"], ["writes a GIF file", "s.gif"]),
    "missing source": (["heatmap", "nope.tlrun", "-o", "h.png"], ["'nope.tlrun' does not exist"]),
    "width": (["curves", "run.tlrun", "-o", "c.png", "--width", "5"], ["--width", "got 5"]),
    "dpi": (["heatmap", "run.tlrun", "-o", "h.png", "--dpi", "9000"], ["--dpi", "got 9000"]),
    "duration": (["gif", "run.tlrun", "-o", "s.gif", "--duration", "1"], ["--duration"]),
    "regions": (
        ["curves", "run.tlrun", "-o", "c.png", "--regions", "a,,b"],
        ["--regions 'a,,b'", "empty name"],
    ),
    "level": (["aggregate", "runs", "-o", "a.png", "--level", "2"], ["--level", "got 2.0"]),
    "set folder": (
        ["aggregate", "runs", "x=run.tlrun", "-o", "a.png"],
        ["Set 'x'", "not a folder"],
    ),
    "set twice": (["aggregate", "a=runs", "a=runs", "-o", "a.png"], ["'a' is given twice"]),
}


@pytest.mark.parametrize("argv, says", CLI_CASES.values(), ids=CLI_CASES)
def test_render_refuses_bad_arguments_before_opening(
    argv, says, sources, monkeypatch, capsys, nothing_opens
):
    monkeypatch.chdir(sources)
    assert cli.main(["render", *argv]) == cli.EXIT_BAD_ARGUMENTS
    line = one_line(capsys)
    assert line.startswith("tealeaves-widgets render: ")
    for text in says:
        assert text in line


def test_render_without_matplotlib_fails_before_opening(
    sources, monkeypatch, capsys, nothing_opens
):
    monkeypatch.chdir(sources)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main(["render", "heatmap", "run.tlrun", "-o", "h.png"]) == 1
    assert 'pip install "tealeaves-widgets[render]"' in one_line(capsys)


def test_render_has_help_for_every_kind(capsys):
    for kind in ("heatmap", "gif", "curves", "aggregate"):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["render", kind, "--help"])
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert "-o OUT" in text and "tealeaves-widgets[render]" in text
