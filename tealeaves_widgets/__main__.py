"""Command line: `tealeaves-widgets quickstart|demo|prep|capture|compare|report`
(also `python -m tealeaves_widgets ...`). The batch commands live in
`tealeaves_widgets.cli`."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tealeaves_widgets.cli import add_commands
from tealeaves_widgets.errors import TealeavesError


def demo(args: argparse.Namespace) -> int:
    """Capture the bundled example on the embedded model and print what it shows."""
    import pandas as pd

    import tealeaves_widgets as tw
    from tealeaves_widgets.examples import EXAMPLE_CASE, EXAMPLE_REGIONS

    model = tw.load_model()
    print(model)
    run = model.capture(EXAMPLE_CASE, EXAMPLE_REGIONS)
    print(run)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(
            f"\nCooking curves at query {args.query!r}: attention mass on each region, "
            "by layer (nested regions count inside their parents too):"
        )
        print(run.curves(query=args.query, normalize="raw").round(3).to_string())
        print(f"\nLogit lens at query {args.query!r}:")
        print(run.lens_table(query=args.query, k=3).to_string(index=False))
    if args.save:
        run.save(args.save)
        print(f"\nsaved to {args.save}; reopen with tw.open_run({args.save!r})")
    return 0


def quickstart(args: argparse.Namespace) -> int:
    """Execute the quickstart notebook and write it as one standalone HTML file."""
    from tealeaves_widgets.notebooks import execute_notebook, quickstart_path
    from tealeaves_widgets.widgets.export import export_html

    notebook = Path(args.notebook) if args.notebook else quickstart_path()
    print(f"executing {notebook} (loads the embedded model; about a minute on a laptop CPU)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tealeaves-quickstart-") as workdir:
        nb = execute_notebook(notebook, workdir)
    seconds = time.perf_counter() - started
    for target in (args.out, args.executed):
        if target:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
    if args.executed:
        import nbformat

        nbformat.write(nb, args.executed)
        print(f"wrote the executed notebook to {args.executed}")
    out = export_html(nb, args.out)
    print(
        f"executed {len(nb.cells)} cells in {seconds:.0f} s; wrote {out} "
        f"({out.stat().st_size / 1e6:.1f} MB). Open it in any browser: it needs no kernel "
        "and no network."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tealeaves-widgets",
        description="See how a language model reads a prompt: named regions, attention, "
        "logit lens. Batch pipeline: prep -> capture -> compare/report.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser(
        "demo",
        help="capture the bundled example on the embedded SmolLM2-135M-Instruct and print "
        "its cooking curves and logit lens",
    )
    p_demo.add_argument(
        "--query",
        default="final",
        help="query for the curves and lens tables (a name from the run's queries)",
    )
    p_demo.add_argument("--save", default=None, help="also save the run to this file")
    p_demo.set_defaults(func=demo)
    p_quick = sub.add_parser(
        "quickstart",
        help="execute notebooks/quickstart.ipynb (capture on the embedded model, the "
        "explorer, tables) and write it as one standalone HTML file",
    )
    p_quick.add_argument(
        "--out", default="quickstart.html", help="HTML file to write (default: %(default)s)"
    )
    p_quick.add_argument(
        "--notebook", default=None, help="notebook to run instead of the quickstart"
    )
    p_quick.add_argument(
        "--executed", default=None, help="also save the executed notebook (.ipynb) here"
    )
    p_quick.set_defaults(func=quickstart)
    add_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TealeavesError as error:
        print(f"tealeaves-widgets {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
