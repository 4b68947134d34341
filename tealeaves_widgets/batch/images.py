"""`tealeaves-widgets render`: images of saved runs, with no notebook and no browser.

    tealeaves-widgets render heatmap run.tlrun -o heatmap.png --layer 12 --query final
    tealeaves-widgets render gif runs/baseline --case q3 -o sweep.gif
    tealeaves-widgets render curves run.tlrun -o curves.png --normalize share
    tealeaves-widgets render aggregate baseline=runs/baseline terse=runs/terse -o bands.png

Every argument that can be checked without opening a run is checked first, then
the selection (layer, query, head, regions, case) against the run before
anything is drawn; a bad one is an `ArgumentError` (exit status 2). The drawing
is `Run.save_png`, `Run.save_gif`, `Run.save_curves_png` and
`present.render.aggregate_png`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..core.heatmap_scale import DEFAULT_HEATMAP_SCALE, HEATMAP_SCALES
from ..core.run import Run
from ..core.runset import RunSet
from ..core.selection import check_index
from ..core.stats import INTERVALS
from ..errors import ArgumentError, SelectionError
from .mass_args import add_mass_arguments, mass_keywords

T = TypeVar("T")

SUFFIXES = {"heatmap": ".png", "curves": ".png", "aggregate": ".png", "gif": ".gif"}
WIDTH_RANGE = (400, 8000)
DPI_RANGE = (50, 600)

_EPILOG = """\
SOURCE is a run file (Run.save, tw.open_run) or a run directory (`capture
--out`, RunSet.save, tw.open_runs); in a directory of several runs, --case
picks one by its label. A query is a name from the run's queries or an index
into them; the default is "final" when the run has it. Needs matplotlib:
pip install "tealeaves-widgets[render]".
"""

_EPILOG_AGGREGATE = """\
Each SET is a run directory, or NAME=DIR to name it in the legend; with
several, each region gets a panel and the first set is the baseline (dashed).
Bands: the interval of the mean over the cases (--level, --interval).
Needs matplotlib: pip install "tealeaves-widgets[render]".
"""


def add_render_command(sub: argparse._SubParsersAction) -> None:
    """Register `render heatmap|gif|curves|aggregate` on the main parser."""
    formatter = argparse.RawDescriptionHelpFormatter
    render = sub.add_parser(
        "render",
        help="PNG and GIF images of saved runs: heatmap, gif (layer sweep), curves, aggregate",
        description="Draw images of saved runs without a notebook or a browser (matplotlib).",
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    kinds = render.add_subparsers(dest="kind", required=True, metavar="KIND")

    def common(p: argparse.ArgumentParser, suffix: str, width: int, dpi: int = 150) -> None:
        p.add_argument("-o", "--out", required=True, help=f"image file to write ({suffix})")
        p.add_argument(
            "--width", type=int, default=width, help="image width in pixels (%(default)s)"
        )
        p.add_argument(
            "--dpi", type=int, default=None, help=f"dots per inch, the text size in pixels ({dpi})"
        )

    def source(p: argparse.ArgumentParser) -> None:
        p.add_argument("source", metavar="SOURCE", help="run file or run directory")
        p.add_argument("--case", help="case label of the run to draw, in a run directory")
        p.add_argument("--query", help='query name or index (default: "final" when the run has it)')
        p.add_argument("--head", type=int, help="one head instead of the head average")

    def shading(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--scale",
            default=DEFAULT_HEATMAP_SCALE,
            choices=HEATMAP_SCALES,
            help="colour scale, the widget's: log-layer (default; log from the layer's median "
            "weight to its max), linear or log (4 decades) over every layer, or layer (linear "
            "per layer)",
        )
        p.add_argument(
            "--keep-sink",
            action="store_true",
            help="keep the first token (the attention sink) in the colour scale",
        )
        p.add_argument(
            "--mask-template",
            action="store_true",
            help="leave the chat template's tokens out of the colour scale",
        )

    p = kinds.add_parser(
        "heatmap",
        help="the prompt's tokens shaded by the attention the query pays them at one layer",
        description="The token heatmap at one layer as a PNG (Run.save_png).",
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    source(p)
    p.add_argument("--layer", type=int, help="layer (default: the middle one; -1 the last)")
    shading(p)
    common(p, ".png", 1600)

    p = kinds.add_parser(
        "gif",
        help="the token heatmap layer by layer, as an animated GIF",
        description="The token heatmap, one frame per layer, as an animated GIF (Run.save_gif).",
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    source(p)
    shading(p)
    p.add_argument("--duration", type=int, default=400, help="milliseconds per layer (%(default)s)")
    common(p, ".gif", 1200, 110)

    p = kinds.add_parser(
        "curves",
        help="cooking curves: attention mass per region across layers",
        description="The cooking curves of one run as a PNG (Run.save_curves_png).",
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    source(p)
    _curve_options(p)
    p.add_argument("--layer", type=int, help="draw a cursor at this layer")
    common(p, ".png", 1600)

    p = kinds.add_parser(
        "aggregate",
        help="mean cooking curves over the cases of run directories, with confidence bands",
        description="Mean cooking curves of one or several run directories with their "
        "confidence bands, as a PNG (RunSet.save_png, render.aggregate_png).",
        epilog=_EPILOG_AGGREGATE,
        formatter_class=formatter,
    )
    p.add_argument("sets", nargs="+", metavar="SET", help="run directory, or NAME=DIR")
    p.add_argument("--query", help='query name or index (default: "final" when every run has it)')
    _curve_options(p)
    p.add_argument("--level", type=float, default=0.95, help="interval level (%(default)s)")
    p.add_argument("--interval", default="t", choices=INTERVALS, help="(%(default)s)")
    common(p, ".png", 1600)
    render.set_defaults(func=render_command)


def _curve_options(p: argparse.ArgumentParser) -> None:
    add_mass_arguments(p, normalize="raw")
    p.add_argument("--regions", help="comma-separated regions to draw (default: all)")


# ---------------------------------------------------------------- checks


def _checked_out(args: argparse.Namespace) -> Path:
    suffix = SUFFIXES[args.kind]
    out = Path(args.out)
    if out.suffix.lower() != suffix:
        raise ArgumentError(
            f"-o {args.out!r} ends in {out.suffix or 'no suffix'}, but `render {args.kind}` "
            f"writes a {suffix[1:].upper()} file; name it {out.stem}{suffix}."
        )
    if out.is_dir():
        raise ArgumentError(f"-o {args.out!r} is a folder; give a file name ending in {suffix}.")
    return out


def _in_range(flag: str, value: int | float, low: float, high: float, unit: str) -> None:
    if not low <= value <= high:
        raise ArgumentError(f"{flag} must lie in {low}..{high} {unit}, got {value}.")


def _check_numbers(args: argparse.Namespace) -> None:
    _in_range("--width", args.width, *WIDTH_RANGE, "pixels")
    if args.dpi is not None:
        _in_range("--dpi", args.dpi, *DPI_RANGE, "dots per inch")
    if args.kind == "gif":
        _in_range("--duration", args.duration, 20, 10_000, "milliseconds")
    if args.kind == "aggregate" and not 0 < args.level < 1:
        raise ArgumentError(f"--level must lie between 0 and 1, got {args.level}; e.g. 0.95.")


def _regions(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ArgumentError(
            f"--regions {text!r} has an empty name; write names separated by commas, "
            "e.g. --regions system,user."
        )
    return names


def _source(path: str) -> Path:
    source = Path(path)
    if not source.exists():
        raise ArgumentError(
            f"{path!r} does not exist; give a run file (Run.save) or a run directory "
            "(`tealeaves-widgets capture --out`)."
        )
    return source


def _sets(items: list[str]) -> dict[str, Path]:
    sets: dict[str, Path] = {}
    for item in items:
        name, sep, directory = item.partition("=")
        if not sep:
            name, directory = Path(item).name or item, item
        if not name or not directory:
            raise ArgumentError(f"A SET is DIR or NAME=DIR (e.g. baseline=runs/b), got {item!r}.")
        if name in sets:
            raise ArgumentError(
                f"The set name {name!r} is given twice; name each set once (NAME=DIR)."
            )
        if not Path(directory).is_dir():
            raise ArgumentError(
                f"Set {name!r}: {directory!r} is not a folder; give the run directory that "
                "`tealeaves-widgets capture --out` (or RunSet.save) wrote."
            )
        sets[name] = Path(directory)
    return sets


def _selection(flag: str, check: Callable[[], T]) -> T:
    """`check()`, its selection error reported as a bad argument `flag`."""
    try:
        return check()
    except (SelectionError, ArgumentError) as error:
        raise ArgumentError(f"{flag}: {error}") from error


def _query(text: str | None, names: tuple[str, ...] | list[str]) -> str | int | None:
    """--query as the API takes it: a name, or an index when it names no query."""
    if text is None or text in names:
        return text
    try:
        return int(text)
    except ValueError:
        return text


# ---------------------------------------------------------------- opening


def _one_run(source: Path, case: str | None) -> Run:
    from ..io import rundir, runfile

    if source.is_file():
        if case is not None:
            raise ArgumentError(
                f"--case picks a run in a run directory, but {str(source)!r} is a run file; "
                "leave --case out."
            )
        return runfile.open_run(source)
    runs = rundir.open_runs(source)
    if case is None:
        if len(runs) == 1:
            return runs[0]
        raise ArgumentError(
            f"{str(source)!r} holds {len(runs)} runs; pick one with --case (one of "
            f"{list(runs.labels)[:20]}), or draw them all with `render aggregate`."
        )
    matches = [run for run, label in zip(runs, runs.labels, strict=True) if label == case]
    if not matches:
        raise ArgumentError(
            f"--case {case!r} is not a case of {str(source)!r}; its cases are "
            f"{list(runs.cases)[:20]}."
        )
    if len(matches) > 1:
        raise ArgumentError(
            f"--case {case!r} has {len(matches)} runs (one per seed) in {str(source)!r}; "
            "save the seed you want as its own run file and draw that."
        )
    return matches[0]


def _check_run_selection(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """The drawing's keyword arguments, each checked against `run`."""
    query = _query(args.query, list(run.queries))
    _selection("--query", lambda: run.query_name(query))
    if args.head is not None:
        _selection("--head", lambda: check_index(args.head, run.n_heads, "head"))
    kwargs: dict[str, Any] = {"query": query, "head": args.head, "width": args.width}
    if args.dpi is not None:
        kwargs["dpi"] = args.dpi
    if args.kind in ("heatmap", "curves") and args.layer is not None:
        _selection(
            "--layer", lambda: check_index(args.layer, run.n_layers, "layer", allow_negative=True)
        )
        kwargs["layer"] = args.layer
    if args.kind in ("heatmap", "gif"):
        kwargs.update(
            scale=args.scale, mask_sink=not args.keep_sink, mask_template=args.mask_template
        )
    if args.kind == "gif":
        kwargs["duration"] = args.duration
    if args.kind == "curves":
        regions = _regions(args.regions)
        mass = mass_keywords(args)
        _selection("--regions", lambda: run.curves(query=query, regions=regions, **mass))
        kwargs.update(regions=regions, **mass)
    return kwargs


# ---------------------------------------------------------------- the command


def render_command(args: argparse.Namespace) -> int:
    from ..present.render import require_matplotlib

    out = _checked_out(args)
    _check_numbers(args)
    require_matplotlib()  # before opening runs: a missing package fails at once
    if args.kind == "aggregate":
        return _aggregate(args, out)
    if args.kind == "curves":
        _regions(args.regions)
    run = _one_run(_source(args.source), args.case)
    kwargs = _check_run_selection(args, run)
    if args.kind == "heatmap":
        path = run.save_png(out, **kwargs)
    elif args.kind == "gif":
        path = run.save_gif(out, **kwargs)
    else:
        path = run.save_curves_png(out, **kwargs)
    _report(path)
    return 0


def _aggregate(args: argparse.Namespace, out: Path) -> int:
    from ..io import rundir
    from ..present.render import aggregate_png

    regions = _regions(args.regions)
    mass = mass_keywords(args)
    sets = _sets(args.sets)
    opened: dict[str, RunSet] = {
        name: rundir.open_runs(directory) for name, directory in sets.items()
    }
    first = next(iter(opened.values()))
    query = _query(args.query, first.queries)
    for name, runs in opened.items():
        _selection(f"--query (set {name!r})", lambda runs=runs: runs.query_name(query))
        if regions is not None:
            _selection(
                f"--regions (set {name!r})",
                lambda runs=runs: runs.aggregate(query, regions=regions, **mass),
            )
    kwargs: dict[str, Any] = {"width": args.width}
    if args.dpi is not None:
        kwargs["dpi"] = args.dpi
    path = aggregate_png(
        opened,
        out,
        query=query,
        regions=regions,
        level=args.level,
        interval=args.interval,
        **mass,
        **kwargs,
    )
    _report(path)
    return 0


def _report(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        size = f"{image.width}x{image.height} px" + (f", {frames} frames" if frames > 1 else "")
    print(f"wrote {path} ({size}, {path.stat().st_size / 1024:.0f} KB)")
