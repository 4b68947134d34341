"""Command line: `python -m tealeaves_widgets demo` (and `tealeaves-widgets demo`)."""

from __future__ import annotations

import argparse
import sys


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tealeaves-widgets",
        description="See how a language model reads a prompt: named regions, attention, "
        "logit lens.",
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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
