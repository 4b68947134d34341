"""Static images without a browser, drawn with matplotlib: the token heatmap
as a PNG (`Run.save_png`) or a GIF of the layer sweep (`Run.save_gif`), the
cooking curves (`Run.save_curves_png`) and the aggregate band chart of one
RunSet (`RunSet.save_png`) or several (`aggregate_png`).

They draw what the widgets draw, for slides and papers: the heatmap uses the
widget's colour map (js/src/colour.ts, white to dark red, `COLOUR_TABLE`), its
scales and masks (the first token left out of the scale by default), the
curves the region colours of `palette`, and the titles say what was
excluded as the plotly figures do. matplotlib (an optional extra,
`pip install "tealeaves-widgets[render]"`) is imported on first use, never
through pyplot, and under matplotlib's default style: a notebook's backend and
rcParams are left as they were. Text is drawn as text (`parse_math=False`),
so a "$5" in a prompt never turns into math.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..core import seam
from ..core.heatmap_scale import (
    DEFAULT_HEATMAP_SCALE,
    HEATMAP_SCALE_TEXT,
    HEATMAP_SCALES,
    HeatmapScale,
    heatmap_scale,
)
from ..core.masses import AUTO, LEAVES, OWN_SUFFIX, MassOptions
from ..core.run import NORMALIZATIONS, Run
from ..core.runset import RunSet
from ..core.selection import check_index
from ..errors import ArgumentError, MissingExtensionError
from .figures import (
    BASELINE_COLOR,
    FACET_COLUMNS,
    VARIANT_COLORS,
    excluded_note,
    named_sets,
    y_title,
)
from .palette import region_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

INSTALL = 'pip install "tealeaves-widgets[render]"'
"""What to install for the images (matplotlib; Pillow comes with it)."""

SCALES = HEATMAP_SCALES
"""Colour scales of the heatmap, the widget's default first (`core.heatmap_scale`)."""
DEFAULT_SCALE = DEFAULT_HEATMAP_SCALE
"""The widget's default, "log-layer": log from the layer's median weight to
its maximum, so about 40% of the tokens are visibly shaded at any length."""

_ANCHORS = np.array(
    [[255, 255, 255], [255, 237, 160], [254, 178, 76], [240, 59, 32], [128, 0, 38]],
    dtype=np.float64,
)
"""The widget's light palette (js/src/colour.ts): the white page, then its
HEAT_ANCHORS (close to matplotlib's YlOrRd)."""


def _colour_table() -> NDArray[np.uint8]:
    t = np.arange(256, dtype=np.float64) / 255 * (len(_ANCHORS) - 1)
    i = np.minimum(np.floor(t).astype(np.int64), len(_ANCHORS) - 2)
    f = (t - i)[:, None]
    rgb = _ANCHORS[i] + f * (_ANCHORS[i + 1] - _ANCHORS[i])
    return np.floor(rgb + 0.5).astype(np.uint8)  # Math.round


def _luminance(rgb: NDArray[np.number]) -> NDArray[np.float64]:
    """WCAG relative luminance of sRGB colours (..., 3) in 0..255."""
    s = np.asarray(rgb, dtype=np.float64) / 255
    linear = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def _contrast(a: NDArray[np.number], b: NDArray[np.number]) -> NDArray[np.float64]:
    la, lb = _luminance(a), _luminance(b)
    return (np.maximum(la, lb) + 0.05) / (np.minimum(la, lb) + 0.05)


COLOUR_TABLE = _colour_table()
"""(256, 3) RGB of each colour index, computed as the widget computes its table."""
_TEXT_RGB = np.array([31, 35, 40], dtype=np.float64)  # TEXT
DARK = (_contrast(COLOUR_TABLE, _TEXT_RGB) < 4.5) & (
    _contrast(COLOUR_TABLE, np.array([255.0, 255.0, 255.0]))
    > np.maximum(_contrast(COLOUR_TABLE, np.zeros(3)), _contrast(COLOUR_TABLE, _TEXT_RGB))
)
"""(256,) whether index i takes white text (the widget's rule, js/src/colour.ts
makePalette: the theme's text where it contrasts 4.5:1 with the shade, else
white or black, whichever contrasts more)."""

TEXT = "#1f2328"
FUTURE_TEXT = "#b5b5b5"
QUERY_OUTLINE = "#1f6feb"
MUTED = "#57606a"
"""The widget's text colours (js/src/style.ts): text, tokens after the query,
the query's outline, secondary text."""


# ---------------------------------------------------------------- matplotlib


def require_matplotlib() -> None:
    """Raise `MissingExtensionError` (saying what to install) unless matplotlib
    can be imported."""
    _matplotlib()


def _matplotlib() -> Any:
    """matplotlib, or an error saying what to install."""
    try:
        import matplotlib
        import matplotlib.style  # noqa: F401  (not loaded by `import matplotlib`)
        from matplotlib.backends import backend_agg  # noqa: F401  (the PNG canvas)
    except ImportError as error:
        raise MissingExtensionError(
            f"Saving images needs matplotlib, which cannot be imported ({error}). Install it "
            f"with: {INSTALL}"
        ) from error
    return matplotlib


@contextlib.contextmanager
def _style(font_size: float) -> Iterator[Any]:
    """matplotlib under its default style with our fonts, restored afterwards,
    so a user's rcParams (a dark style, `text.usetex`) change nothing here."""
    mpl = _matplotlib()
    rc = {
        "text.usetex": False,
        "font.size": font_size,
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],
        "font.monospace": ["DejaVu Sans Mono"],
        "axes.titlesize": font_size * 1.15,
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
    }
    with mpl.style.context(["default", rc]):
        yield mpl


def _new_figure(width: int, height: int, dpi: int) -> tuple[Figure, RendererAgg]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    return figure, canvas.get_renderer()


def _check_path(path: str | PathLike[str], suffix: str, what: str) -> Path:
    out = Path(path).expanduser()
    if out.suffix.lower() != suffix:
        raise ArgumentError(
            f"{what} writes a {suffix[1:].upper()} file, but the path {str(out)!r} ends in "
            f"{out.suffix or 'no suffix'}; name the file {out.stem}{suffix}."
        )
    return out


def _check_size(width: object, dpi: object) -> tuple[int, int]:
    for name, value, low, high in (("width", width, 400, 8000), ("dpi", dpi, 50, 600)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ArgumentError(f"{name} must be an int, got {value!r}.")
        if not low <= value <= high:
            raise ArgumentError(
                f"{name}={value} is out of range; use {low}..{high} "
                f"({'pixels' if name == 'width' else 'dots per inch'})."
            )
    return int(width), int(dpi)  # type: ignore[arg-type]


def _save(figure: Figure, path: Path, dpi: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi)
    return path


def _px(
    figure: Figure, x: float, y: float, w: float, h: float
) -> tuple[float, float, float, float]:
    """A rectangle in pixels from the top left as matplotlib's figure fraction."""
    width, height = figure.bbox.width, figure.bbox.height
    return (x / width, 1 - (y + h) / height, w / width, h / height)


# ---------------------------------------------------------------- the heatmap


@dataclass(frozen=True)
class HeatmapSelection:
    """What a heatmap image shows: one query's row (head average or one head),
    coloured on one of `SCALES` (the widget's), some tokens left out of the scale."""

    query: str
    head: int | None
    scale: str
    mask_sink: bool
    mask_template: bool

    @classmethod
    def of(
        cls,
        run: Run,
        query: str | int | None,
        head: int | None,
        scale: str,
        mask_sink: bool,
        mask_template: bool,
    ) -> HeatmapSelection:
        if scale not in SCALES:
            raise ArgumentError(f"Unknown scale={scale!r}; use one of {list(SCALES)}.")
        if head is not None:
            head = check_index(head, run.n_heads, "head")
        return cls(run.query_name(query), head, scale, bool(mask_sink), bool(mask_template))

    def rows(self, run: Run) -> NDArray[np.float32]:
        """(layer, pos) attention rows of the selection."""
        return run._attention_rows(run.query_index(self.query), self.head)

    def masked(self, run: Run) -> NDArray[np.bool_]:
        """(pos,) tokens left out of the colour scale."""
        masked = np.zeros(run.n_tokens, dtype=bool)
        if self.mask_template:
            for info in run.regions.values():
                if info.section == "template":
                    masked[info.token_indices] = True
        if self.mask_sink and run.n_tokens:
            masked[0] = True
        return masked

    def range(self, run: Run, layer: int) -> HeatmapScale:
        """The colour range at `layer`, as the widget computes it
        (`core.heatmap_scale.heatmap_scale`: the weights the query can see, the masked
        tokens left out)."""
        limit = run.queries[self.query] + 1
        return heatmap_scale(self.rows(run), layer, limit, self.masked(run), self.scale)


def colour_indices(
    row: NDArray[np.floating], masked: NDArray[np.bool_], scale: HeatmapScale
) -> NDArray[np.uint8]:
    """Index into COLOUR_TABLE of each weight, as the widget's `colourIndices`:
    0 for masked tokens and weights of 0, 255 at `scale.high` (clipped
    above); linear from 0, or log from `scale.low` (1, the faintest shade,
    for any positive weight at or below it)."""
    row = np.asarray(row, dtype=np.float64)
    out = np.zeros(row.shape, dtype=np.uint8)
    if not scale.high > 0:
        return out
    if scale.log:
        bottom = math.log10(scale.low)
        per = 255 / max(math.log10(scale.high) - bottom, 1e-6)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = (np.log10(row) - bottom) * per
        index = np.where(v <= 1, 1, np.clip(np.floor(v + 0.5), 1, 255))
        keep = (row > 0) & ~masked
    else:
        index = np.clip(np.floor(row * (255 / scale.high) + 0.5), 0, 255)
        keep = ~masked
    out[keep] = index[keep].astype(np.uint8)
    return out


def display_text(token: str) -> str:
    """A token as the widget shows it: "\u2205" for an empty token, a visible
    mark before each line break; tabs as four spaces, other control
    characters as their escapes (fonts draw no glyph for them)."""
    if token == "":
        return "\u2205"
    return _printable(token.replace("\n", "\u21b5\n"))


def _printable(text: str) -> str:
    text = text.replace("\t", "    ").replace("\r", "\\r")
    return "".join(c if c == "\n" or c.isprintable() else repr(c)[1:-1] for c in text)


def token_gaps(run: Run) -> dict[int, str]:
    """Prompt text no token covers, by the token it comes before (the widget
    shows it as plain text, so the picture reads as the prompt)."""
    gaps, previous_end = {}, 0
    for pos, (start, end) in enumerate(run.offsets.tolist()):
        if start > previous_end:
            gaps[pos] = run.text[previous_end:start]
        previous_end = max(previous_end, end)
    if previous_end < len(run.text):
        gaps[run.n_tokens] = run.text[previous_end:]
    return gaps


@dataclass(frozen=True)
class TokenBox:
    """Where one piece of a token is drawn (a token broken by a line break or
    the right margin has several; `token` -1 is text between tokens), in
    pixels from the text area's left and in lines from its top."""

    token: int
    text: str
    x: float
    line: int
    width: float


class _Measure:
    """Widths of strings in one font, in pixels, cached."""

    def __init__(self, renderer: RendererAgg, prop: Any) -> None:
        self.renderer, self.prop = renderer, prop
        self.cache: dict[str, float] = {}

    def __call__(self, text: str) -> float:
        width = self.cache.get(text)
        if width is None:
            width = self.renderer.get_text_width_height_descent(text, self.prop, ismath=False)[0]
            self.cache[text] = width
        return width


def layout_tokens(
    pieces: Sequence[tuple[int, str]], measure: _Measure, width: float
) -> tuple[list[TokenBox], int]:
    """Flow (token, displayed text) pieces like the widget's text box
    (`white-space: pre-wrap`): a new line after each "\\n", a piece moved to
    the next line when it does not fit, one wider than a line cut where it
    must. Returns the boxes and the number of lines."""
    boxes: list[TokenBox] = []
    x, line = 0.0, 0
    for token, text in pieces:
        parts = text.split("\n")
        for p, part in enumerate(parts):
            while part:
                w = measure(part)
                if x > 0 and x + w > width:
                    x, line = 0.0, line + 1
                if w > width:  # longer than a line: as much as fits, the rest below
                    cut = max(1, _fits(part, measure, width))
                    head, part = part[:cut], part[cut:]
                    boxes.append(TokenBox(token, head, x, line, measure(head)))
                    x, line = 0.0, line + 1
                    continue
                boxes.append(TokenBox(token, part, x, line, w))
                x += w
                part = ""
            if p < len(parts) - 1:
                x, line = 0.0, line + 1
    return boxes, line + 1


def _fits(text: str, measure: _Measure, width: float) -> int:
    """How many leading characters of `text` fit in `width`."""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if measure(text[:mid]) <= width:
            low = mid
        else:
            high = mid - 1
    return low


def wrap_words(text: str, measure: _Measure, width: float) -> list[str]:
    """`text` broken at spaces into lines narrower than `width`."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and measure(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current]


def _literal(text: Text) -> Text:
    text.set_parse_math(False)
    return text


def _weight(w: float) -> str:
    """A weight as the widget's colour bar writes it."""
    if w == 0:
        return "0"
    return f"{w:.4f}" if w >= 0.001 else f"{w:.2e}"


class HeatmapImage:
    """The token heatmap laid out and drawn once (text, region underlines,
    legend) and recoloured per layer: one PNG, or every frame of a GIF.

    Geometry is in pixels from the top left: a header (title, caption, region
    legend and colour bar), then the prompt wrapped to the width."""

    MARGIN = 24.0
    FONT_PT = 9.0
    BAR_WIDTH = 300.0

    def __init__(self, run: Run, selection: HeatmapSelection, width: int, dpi: int) -> None:
        from matplotlib.collections import PolyCollection
        from matplotlib.colors import ListedColormap
        from matplotlib.font_manager import FontProperties

        self.run, self.sel, self.dpi = run, selection, dpi
        self.masked = selection.masked(run)
        self.query_pos = run.queries[selection.query]
        self.cmap = ListedColormap(COLOUR_TABLE / 255.0, name="tealeaves")
        fp = self.font_px = self.FONT_PT * dpi / 72
        self.line_height, self.box_height = 1.8 * fp, 1.35 * fp
        figure, renderer = _new_figure(width, 400, dpi)
        self.figure = figure
        self.mono = FontProperties(family="monospace", size=self.FONT_PT)
        self.sans = FontProperties(family="sans-serif", size=self.FONT_PT)
        self.title_font = FontProperties(
            family="sans-serif", size=self.FONT_PT * 1.3, weight="bold"
        )
        inner = width - 2 * self.MARGIN
        self.boxes, n_lines = layout_tokens(self._pieces(), _Measure(renderer, self.mono), inner)
        # the header: its text wraps to the width, so measure it first
        self.measure_title = _Measure(renderer, self.title_font)
        self.measure_sans = _Measure(renderer, self.sans)
        longest = self._title(run.n_layers - 1)
        self.title_lines = len(wrap_words(longest, self.measure_title, inner))
        wordiest = max(SCALES, key=lambda n: len(HEATMAP_SCALE_TEXT[n]))
        widest = HeatmapScale(wordiest, True, 1e-5, 0.5)
        caption = self._caption(widest, 0.123456)
        self.caption_lines = len(wrap_words(caption, self.measure_sans, inner))
        chips, legend_rows = self._legend_layout(inner - self.BAR_WIDTH - 5 * fp)
        y = self.MARGIN
        self.title_y = y
        y += self.title_lines * 1.75 * fp * 1.3
        self.caption_y = y + 0.3 * fp
        y = self.caption_y + self.caption_lines * 1.5 * fp + 0.6 * fp
        self.legend_y = y
        y += max(legend_rows * 1.7 * fp, 3.2 * fp) + 0.4 * fp
        self.text_top = y
        self.height = math.ceil(y + n_lines * self.line_height + self.MARGIN)
        figure.set_size_inches(width / dpi, self.height / dpi)
        ax = self.ax = figure.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(self.height, 0)  # pixels, y down
        ax.set_axis_off()
        tokens = [b for b in self.boxes if b.token >= 0]
        self.backgrounds = PolyCollection(
            [self._rect(b) for b in tokens], antialiaseds=False, linewidths=0, zorder=1
        )
        self.coloured = np.fromiter((b.token for b in tokens), dtype=np.int64, count=len(tokens))
        ax.add_collection(self.backgrounds)
        self._draw_underlines_and_masks(tokens)
        self.texts: list[Text] = []
        self.joinable = self._joinable(_Measure(renderer, self.mono))
        self._draw_query_outline()
        self._draw_legend(chips)
        self.title = self._header_text(self.title_y, self.title_font, TEXT)
        self.caption = self._header_text(self.caption_y, self.sans, MUTED)
        bar_x = width - self.MARGIN - self.BAR_WIDTH - 2.5 * fp  # room for the last tick label
        self.colourbar_ax = figure.add_axes(
            _px(figure, bar_x, self.legend_y + 0.2 * fp, self.BAR_WIDTH, 0.9 * fp)
        )

    # -- layout -------------------------------------------------------------------

    def _pieces(self) -> list[tuple[int, str]]:
        gaps = token_gaps(self.run)
        pieces: list[tuple[int, str]] = []
        for i, token in enumerate(self.run.tokens):
            if i in gaps:
                pieces.append((-1, _printable(gaps[i])))
            pieces.append((i, display_text(token)))
        if self.run.n_tokens in gaps:
            pieces.append((-1, _printable(gaps[self.run.n_tokens])))
        return pieces

    def _legend_layout(self, width: float) -> tuple[list[tuple[float, int, str, str]], int]:
        """(x, row, label, colour) of each region's chip, flowed into `width`."""
        fp = self.font_px
        chips, x, row = [], 0.0, 0
        for name, info in self.run.regions.items():
            label = name if info.parent is None else f"{name} (in {info.parent})"
            w = 1.7 * fp + self.measure_sans(label)
            if x > 0 and x + w > width:
                x, row = 0.0, row + 1
            chips.append((x, row, label, region_colors(self.run)[name]))
            x += w + 1.4 * fp
        return chips, row + 1

    def _box_top(self, box: TokenBox) -> float:
        return (
            self.text_top + box.line * self.line_height + (self.line_height - self.box_height) / 2
        )

    def _rect(self, box: TokenBox, inset: float = 0.0) -> list[tuple[float, float]]:
        x0, y0 = self.MARGIN + box.x + inset, self._box_top(box) + inset
        x1, y1 = x0 + box.width - 2 * inset, y0 + self.box_height - 2 * inset
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]

    # -- what does not change with the layer -----------------------------------------

    def _draw_underlines_and_masks(self, tokens: list[TokenBox]) -> None:
        from matplotlib.collections import PolyCollection

        run = self.run
        colours = list(region_colors(run).values())
        owner = np.full(run.n_tokens, -1)
        for r, info in enumerate(run.regions.values()):
            owner[info.token_indices] = r  # children after parents: the innermost wins
        thick = max(2.0, 0.2 * self.font_px)  # the widget's 3 px border at 13 px
        bars, bar_colours, hatched = [], [], []
        for box in tokens:
            (x0, _), (x1, _), (_, y1), _ = self._rect(box)
            if owner[box.token] >= 0:
                bars.append([(x0, y1 - thick), (x1, y1 - thick), (x1, y1), (x0, y1)])
                bar_colours.append(colours[owner[box.token]])
            if self.masked[box.token]:
                hatched.append(self._rect(box))
        self.ax.add_collection(
            PolyCollection(bars, facecolors=bar_colours, antialiaseds=False, linewidths=0, zorder=2)
        )
        if hatched:  # the widget's grey stripes on tokens left out of the scale
            self.ax.add_collection(
                PolyCollection(
                    hatched,
                    facecolors="none",
                    edgecolors="#00000030",  # the hatch's colour; no edge at width 0
                    hatch="////",
                    linewidths=0,
                    zorder=2,
                )
            )

    def _text_colour(self, token: int, dark: bool = False) -> str:
        if dark:
            return "#ffffff"
        if token >= 0 and self.run.tokens[token] == "":
            return "#999999"
        if token > self.query_pos:
            return FUTURE_TEXT
        return TEXT

    def _joinable(self, measure: _Measure) -> list[bool]:
        """Per box, whether its text may be drawn joined to the previous box's:
        on the same line, right after it, and as wide joined as apart (true in
        a monospace font; a glyph from a fallback font may differ)."""
        out = [False]
        for a, b in zip(self.boxes, self.boxes[1:], strict=False):
            same = a.line == b.line and abs(a.x + a.width - b.x) < 0.01
            out.append(same and abs(measure(a.text + b.text) - a.width - b.width) < 0.5)
        return out

    def _draw_text(self, colours: list[str]) -> None:
        """The prompt's text: one Text per run of pieces of one colour on a line
        (a few hundred artists instead of one per token, which made a GIF frame
        of 2000 tokens take seconds)."""
        for text in self.texts:
            text.remove()
        self.texts = []
        start = 0
        for i in range(1, len(self.boxes) + 1):
            if i < len(self.boxes) and self.joinable[i] and colours[i] == colours[start]:
                continue
            box = self.boxes[start]
            self.texts.append(
                self.ax.text(
                    self.MARGIN + box.x,
                    self._box_top(box) + 0.47 * self.box_height,
                    "".join(b.text for b in self.boxes[start:i]),
                    fontproperties=self.mono,
                    color=colours[start],
                    va="center",
                    ha="left",
                    zorder=3,
                    parse_math=False,
                )
            )
            start = i

    def _draw_query_outline(self) -> None:
        from matplotlib.patches import Polygon

        for box in self.boxes:
            if box.token == self.query_pos:
                self.ax.add_patch(
                    Polygon(
                        self._rect(box, inset=-1.0),
                        closed=True,
                        fill=False,
                        edgecolor=QUERY_OUTLINE,
                        linewidth=2.0 * 72 / self.dpi,  # 2 px, as the widget's outline
                        zorder=4,
                    )
                )

    def _draw_legend(self, chips: list[tuple[float, int, str, str]]) -> None:
        from matplotlib.patches import Rectangle

        fp = self.font_px
        for x, row, label, colour in chips:
            y = self.legend_y + row * 1.7 * fp + 0.65 * fp
            left = self.MARGIN + x
            swatch = Rectangle((left, y - 0.15 * fp), 1.4 * fp, 0.3 * fp, facecolor=colour)
            self.ax.add_patch(swatch)
            self.ax.text(
                left + 1.7 * fp,
                y,
                label,
                fontproperties=self.sans,
                color=TEXT,
                va="center",
                parse_math=False,
            )

    def _header_text(self, y: float, font: Any, colour: str) -> Text:
        return self.ax.text(
            self.MARGIN,
            y,
            "",
            fontproperties=font,
            color=colour,
            va="top",
            linespacing=1.35,
            parse_math=False,
        )

    # -- what changes with the layer -----------------------------------------------------

    def _title(self, layer: int) -> str:
        run, sel = self.run, self.sel
        model = str(run.model_info.get("model_id", "unknown model"))
        who = "head average" if sel.head is None else f"head {sel.head}"
        token = run.tokens[self.query_pos]
        return (
            f"{model} \u00b7 layer {layer} of 0\u2013{run.n_layers - 1} \u00b7 attention of query "
            f"{sel.query!r} (token {self.query_pos}, {token!r}) \u00b7 {who}"
        )

    def _caption(self, scale: HeatmapScale, sink: float) -> str:
        words = HEATMAP_SCALE_TEXT[scale.name]
        if scale.log:
            span = math.log10(scale.high / scale.low) if scale.low > 0 and scale.high > 0 else 0
            ends = f"{_weight(scale.low)} to {_weight(scale.high)}, {span:.1f} decades"
        else:
            ends = f"0 to {_weight(scale.high)}"
        parts = [f"Background: attention weight, {words} ({ends})."]
        left_out = []
        if self.sel.mask_sink:
            left_out.append(f"the first token (the attention sink, weight {_weight(sink)} here)")
        if self.sel.mask_template:
            left_out.append("the chat template's tokens")
        if left_out:
            parts.append(f"Hatched: left out of the scale, {' and '.join(left_out)}.")
        parts.append("Underline: region. Blue outline: the query. Grey text: after the query.")
        return " ".join(parts)

    def draw_layer(self, layer: int) -> None:
        """Colour every token by the attention at `layer`, on the selection's scale."""
        row = self.sel.rows(self.run)[layer]
        scale = self.sel.range(self.run, layer)
        index = colour_indices(row, self.masked, scale)
        drawn = index[self.coloured]
        faces = np.ones((len(drawn), 4))
        faces[:, :3] = COLOUR_TABLE[drawn] / 255.0
        faces[drawn == 0, 3] = 0.0  # index 0 stays clear, as on the widget's canvas
        # an (n, 4) array is a list of colours; matplotlib's stubs do not say so
        self.backgrounds.set_facecolor(faces)  # pyright: ignore[reportArgumentType]
        self._draw_text(
            [
                self._text_colour(b.token, b.token >= 0 and bool(DARK[index[b.token]]))
                for b in self.boxes
            ]
        )
        inner = self.figure.bbox.width - 2 * self.MARGIN
        title = wrap_words(self._title(layer), self.measure_title, inner)
        self.title.set_text("\n".join(title))
        caption = self._caption(scale, float(row[0]) if self.run.n_tokens else 0.0)
        self.caption.set_text("\n".join(wrap_words(caption, self.measure_sans, inner)))
        self._colour_bar(scale)

    def _colour_bar(self, scale: HeatmapScale) -> None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import LogNorm, Normalize

        cax = self.colourbar_ax
        cax.clear()
        top = scale.high if scale.high > 0 else 1.0
        log = scale.log and 0 < scale.low < top
        norm = LogNorm(scale.low, top) if log else Normalize(0.0, top)
        bar = self.figure.colorbar(
            ScalarMappable(norm=norm, cmap=self.cmap), cax=cax, orientation="horizontal"
        )
        bar.outline.set_edgecolor("#cccccc")  # type: ignore[union-attr]
        cax.tick_params(labelsize=self.FONT_PT * 0.85, length=2, pad=1)
        ticks = [scale.low, top] if log else [0.0, top / 2, top]
        cax.set_xticks(ticks, [_weight(t) for t in ticks])
        cax.minorticks_off()
        for label in cax.get_xticklabels():
            _literal(label)

    def token_boxes(self, token: int) -> list[tuple[int, int, int, int]]:
        """Pixel boxes (left, top, right, bottom; right and bottom excluded)
        where token `token`'s background is drawn, for tests and tools."""
        out = []
        for box in self.boxes:
            if box.token == token:
                (x0, y0), _, (x1, y1), _ = self._rect(box)
                out.append((math.ceil(x0), math.ceil(y0), math.floor(x1), math.floor(y1)))
        return out

    def save(self, path: Path) -> Path:
        return _save(self.figure, path, self.dpi)

    def frame(self) -> NDArray[np.uint8]:
        """The figure as drawn now, (height, width, 3) RGB."""
        canvas = self.figure.canvas
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]


def _layer(run: Run, layer: int | None) -> int:
    if layer is None:
        return run.n_layers // 2  # the widgets' default
    return check_index(layer, run.n_layers, "layer", allow_negative=True)


@seam.provide("save_png", Run)
def save_heatmap_png(
    run: Run,
    path: str | PathLike[str],
    layer: int | None = None,
    query: str | int | None = None,
    head: int | None = None,
    *,
    scale: str = DEFAULT_SCALE,
    mask_sink: bool = True,
    mask_template: bool = False,
    width: int = 1600,
    dpi: int = 150,
) -> Path:
    """The token heatmap at one layer as a PNG (see `Run.save_png`)."""
    out = _check_path(path, ".png", "save_png")
    width, dpi = _check_size(width, dpi)
    layer = _layer(run, layer)
    sel = HeatmapSelection.of(run, query, head, scale, mask_sink, mask_template)
    with _style(HeatmapImage.FONT_PT):
        image = HeatmapImage(run, sel, width, dpi)
        image.draw_layer(layer)
        return image.save(out)


@seam.provide("save_gif", Run)
def save_heatmap_gif(
    run: Run,
    path: str | PathLike[str],
    query: str | int | None = None,
    head: int | None = None,
    *,
    scale: str = DEFAULT_SCALE,
    mask_sink: bool = True,
    mask_template: bool = False,
    width: int = 1200,
    dpi: int = 110,
    duration: int = 400,
) -> Path:
    """The token heatmap layer by layer as an animated GIF (see `Run.save_gif`)."""
    out = _check_path(path, ".gif", "save_gif")
    width, dpi = _check_size(width, dpi)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 20 <= duration <= 10_000:
        raise ArgumentError(
            f"duration is the time each layer shows, in milliseconds (20..10000), got {duration!r}."
        )
    sel = HeatmapSelection.of(run, query, head, scale, mask_sink, mask_template)
    from PIL import Image

    with _style(HeatmapImage.FONT_PT):
        image = HeatmapImage(run, sel, width, dpi)

        def frame(layer: int) -> Image.Image:
            image.draw_layer(layer)
            return Image.fromarray(image.frame())

        # one palette for every frame, from the first, middle and last layers:
        # colours that do not flicker between frames, and 10x faster than a
        # palette per frame
        samples = [frame(layer) for layer in sorted({0, run.n_layers // 2, run.n_layers - 1})]
        montage = Image.new("RGB", (samples[0].width, samples[0].height * len(samples)))
        for k, sample in enumerate(samples):
            montage.paste(sample, (0, k * sample.height))
        palette = montage.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        frames = [
            frame(layer).quantize(palette=palette, dither=Image.Dither.NONE)
            for layer in range(run.n_layers)
        ]
    # the last layer stays a little longer, so the loop reads as a sweep
    durations = [duration] * (len(frames) - 1) + [duration * 3]
    out.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(
        out, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0
    )
    return out


# ---------------------------------------------------------------- curves and bands


def _chart_figure(width: int, height: int, dpi: int) -> Figure:
    return _new_figure(width, height, dpi)[0]


def _finish_axes(ax: Axes, n_layers: int, y_title: str | None, x_title: bool = True) -> None:
    last = max(n_layers - 1, 1)
    ax.set_xlim(-0.02 * last, 1.02 * last)
    step = max(1, math.ceil((n_layers - 1) / 10))
    ax.set_xticks(range(0, n_layers, step))
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if x_title:
        ax.set_xlabel("layer")
    if y_title:
        ax.set_ylabel(y_title)


def _legend(ax: Axes, **kwargs: Any) -> None:
    legend = ax.legend(frameon=False, **kwargs)
    for text in legend.get_texts():
        _literal(text)


def _check_normalize(normalize: str) -> None:
    if normalize not in NORMALIZATIONS:
        raise ArgumentError(f"Unknown normalize={normalize!r}; use one of {list(NORMALIZATIONS)}.")


@seam.provide("save_curves_png", Run)
def save_curves_png(
    run: Run,
    path: str | PathLike[str],
    query: str | int | None = None,
    normalize: str = "raw",
    regions: Sequence[str] | None = None,
    head: int | None = None,
    *,
    layer: int | None = None,
    exclude: str | tuple[str, ...] | None = AUTO,
    share_level: str | int = LEAVES,
    width: int = 1600,
    dpi: int = 150,
) -> Path:
    """Cooking curves as a PNG (see `Run.save_curves_png`)."""
    out = _check_path(path, ".png", "save_curves_png")
    width, dpi = _check_size(width, dpi)
    frame = run.curves(
        query=query,
        normalize=normalize,
        regions=None if regions is None else list(regions),
        head=head,
        exclude=exclude,
        share_level=share_level,
    )
    exclusion = MassOptions(normalize, exclude, share_level).exclusion
    cursor = None if layer is None else _layer(run, layer)
    colours = region_colors(run)
    who = "head average" if head is None else f"head {head}"
    model = run.model_info.get("model_id", "unknown model")
    with _style(11.0):
        figure = _chart_figure(width, round(width * 9 / 16), dpi)
        ax = figure.add_subplot()
        for label in frame.columns:
            name = _region_of(label, run.regions)
            parent = run.regions[name].parent
            ax.plot(
                frame.index.to_numpy(),
                frame[label].to_numpy(),
                color=colours[name],
                linewidth=2.2,
                marker="o",
                markersize=3.5,
                label=label if parent is None else f"{label} (in {parent})",
            )
        if cursor is not None:
            ax.axvline(cursor, color=QUERY_OUTLINE, linewidth=1.2)
        _finish_axes(ax, run.n_layers, y_title(normalize, exclusion))
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(frame.to_numpy(), initial=0.0))))
        _literal(
            ax.set_title(
                f"{model}: cooking curves at query {run.query_name(query)!r} "
                f"({who}, {normalize}{excluded_note(exclusion)})",
                loc="left",
            )
        )
        _legend(ax, title="region", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        figure.tight_layout()
        return _save(figure, out, dpi)


def _region_of(label: str, regions: Mapping[str, object]) -> str:
    """The region a curves column is about ("user (own)" is region "user")."""
    return label if label in regions else label.removesuffix(OWN_SUFFIX)


def _named_sets(runsets: object) -> dict[str, RunSet]:
    """`figures.named_sets`, and every set of one model (one number of layers)."""
    sets = named_sets(runsets, "aggregate_png")
    depths = {rs.n_layers for rs in sets.values()}
    if len(depths) > 1:
        raise ArgumentError(
            f"The RunSets have different numbers of layers {sorted(depths)}; overlay RunSets "
            "of one model."
        )
    return sets


def _band(ax: Axes, rows: Any, colour: str, label: str, dashed: bool) -> None:
    x = rows["layer"].to_numpy()
    mean = rows["mean"].to_numpy(dtype=np.float64)
    low = rows["low"].to_numpy(dtype=np.float64)
    high = rows["high"].to_numpy(dtype=np.float64)
    known = ~(np.isnan(low) | np.isnan(high))
    if known.any():
        ax.fill_between(x, low, high, where=known, color=colour, alpha=0.18, linewidth=0)
    ax.plot(x, mean, color=colour, linewidth=2.2, linestyle="--" if dashed else "-", label=label)


def aggregate_png(
    runsets: RunSet | Mapping[str, RunSet] | Sequence[RunSet],
    path: str | PathLike[str],
    query: str | int | None = None,
    normalize: str = "raw",
    regions: Sequence[str] | None = None,
    *,
    level: float = 0.95,
    interval: str = "t",
    exclude: str | tuple[str, ...] | None = AUTO,
    share_level: str | int = LEAVES,
    width: int = 1600,
    dpi: int = 150,
) -> Path:
    """Mean cooking curves of RunSets with their confidence bands as a PNG
    (`RunSet.aggregate`; the same chart as `figures.aggregate_figure`).

    One RunSet: a line per region in one panel. Several (a dict name ->
    RunSet, or a list): one panel per region, a line and band per set, the
    first dashed grey as the baseline. Returns the path written."""
    out = _check_path(path, ".png", "aggregate_png")
    width, dpi = _check_size(width, dpi)
    _check_normalize(normalize)
    sets = _named_sets(runsets)
    names = None if regions is None else list(regions)
    tables = {
        name: rs.aggregate(
            query,
            normalize,
            names,
            level=level,
            interval=interval,
            exclude=exclude,
            share_level=share_level,
        )
        for name, rs in sets.items()
    }
    exclusion = MassOptions(normalize, exclude, share_level).exclusion
    note = excluded_note(exclusion).removeprefix("; ")
    first = next(iter(sets.values()))
    query_name = first.query_name(query)
    model = first[0].model_info.get("model_id", "unknown model")
    band = f"{level:.0%} {interval}-interval of the mean over the cases"
    with _style(11.0):
        if len(sets) == 1:
            (table,) = tables.values()
            figure = _chart_figure(width, round(width * 9 / 16), dpi)
            ax = figure.add_subplot()
            colours = region_colors(first[0])
            for key, rows in table.groupby("region", sort=False):
                colour = colours[_region_of(str(key), first[0].regions)]
                _band(ax, rows, colour, str(key), dashed=False)
            _finish_axes(ax, first.n_layers, y_title(normalize, exclusion))
            n = len(first.cases)
            _literal(
                ax.set_title(
                    f"{model}: cooking curves of {n} cases at query {query_name!r}"
                    f"{f' ({note})' if note else ''}\nbands: {band}",
                    loc="left",
                )
            )
            _legend(ax, title="region", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            regions_all = list(dict.fromkeys(r for t in tables.values() for r in t["region"]))
            cols = min(FACET_COLUMNS, len(regions_all))
            rows_n = math.ceil(len(regions_all) / cols)
            figure = _chart_figure(width, round(120 + rows_n * width * 0.24), dpi)
            axes = figure.subplots(rows_n, cols, squeeze=False)
            for i, region in enumerate(regions_all):
                ax = axes[i // cols][i % cols]
                for s, (name, table) in enumerate(tables.items()):
                    colour = (
                        BASELINE_COLOR if s == 0 else VARIANT_COLORS[(s - 1) % len(VARIANT_COLORS)]
                    )
                    rows = table.loc[table["region"] == region]
                    _band(ax, rows, colour, name, dashed=s == 0)
                below = i + cols < len(regions_all)  # another panel under this one
                title = y_title(normalize, exclusion) if i % cols == 0 else None
                _finish_axes(ax, first.n_layers, title, x_title=not below)
                _literal(ax.set_title(region, loc="left"))
            for j in range(len(regions_all), rows_n * cols):
                axes[j // cols][j % cols].set_visible(False)
            baseline = next(iter(tables))
            _literal(
                figure.suptitle(
                    f"{model}: cooking curves per region at query {query_name!r}; "
                    f"{baseline!r} (dashed) is the baseline{f'; {note}' if note else ''}\n"
                    f"bands: {band}",
                    x=0.01,
                    ha="left",
                )
            )
            handles, labels = axes[0][0].get_legend_handles_labels()
            legend = figure.legend(
                handles, labels, loc="upper right", frameon=False, title="run set", ncols=1
            )
            for text in legend.get_texts():
                _literal(text)
        figure.tight_layout()
        return _save(figure, out, dpi)


@seam.provide("save_png", RunSet)
def save_runset_png(runset: RunSet, path: str | PathLike[str], *args: Any, **kwargs: Any) -> Path:
    """The aggregate band chart of one RunSet as a PNG (see `RunSet.save_png`)."""
    return aggregate_png(runset, path, *args, **kwargs)
