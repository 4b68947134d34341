"""The command line `tealeaves-widgets` (also `python -m tealeaves_widgets`):
quickstart and demo on the embedded model, the batch subcommands prep,
capture, compare and report, and render (images of saved runs, `batch.images`).

    tealeaves-widgets prep inputs/ -o cases.json
    tealeaves-widgets capture cases.json --out runs/baseline [--model PATH --dtype bfloat16]
    accelerate launch --num_processes 8 -m tealeaves_widgets capture cases.json --out runs/b
    tealeaves-widgets compare baseline=runs/baseline terse=runs/terse --out compare/
    tealeaves-widgets report baseline=runs/baseline terse=runs/terse -o report.md
    tealeaves-widgets render heatmap runs/baseline --case q1 -o heatmap.png --layer 12

Each function takes the parsed arguments and returns the exit status; the
work itself is in `batch.prep`, `batch.capture` and `core.compare`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from ..core.compare import CompareOptions
from ..core.stats import INTERVALS
from ..errors import ArgumentError, TealeavesError
from .images import add_render_command
from .mass_args import add_mass_arguments, mass_keywords

_EPILOG_PREP = """\
inputs (TeaLeaves' layout):
  system_prompt.txt   the system prompt, as plain text
  regions.json        regions per section (system_prompt, user_message, response),
                      query_positions (a list, or TeaLeaves' {name: query} object)
                      and tracked_tokens; see the README's Regions section
  conversations.json  a list of {"id", "user_message", "response"?, "user_regions"?,
                      "response_regions"?}; user_regions/response_regions replace
                      the regions.json ones for that case

Every case is rendered with the model's chat template and every region and
query position resolved before anything is written; all problems are listed
at once, each with its case id and region. Exit status 1 when there are any.
"""

_EPILOG_CAPTURE = """\
resuming: a case whose run file is already in --out (and matches the case,
model and dtype) is skipped, so an interrupted capture continues where it
stopped. Files are written under a temporary name and renamed.

many processes: run the same command under a launcher, e.g.
  accelerate launch --num_processes 8 -m tealeaves_widgets capture cases.json --out runs/
  torchrun --nproc_per_node 8 -m tealeaves_widgets capture cases.json --out runs/
Each process captures its share of the cases on its own GPU; the main process
waits for the others and writes index.json.

memory: before loading, the weights at --dtype plus the capture of the longest
case are estimated and compared with the memory available; a capture that
would not fit is refused with the options that would (README: "Memory").
"""

_EPILOG_COMPARE = """\
Each VARIANT is NAME=DIR, a run directory written by `capture` (or
RunSet.save); the first is the baseline. A directory of one run is compared
as that run; of several, as a RunSet (paired intervals when the variants hold
the same case ids).
"""


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register prep, capture, compare, report and render on the main parser."""
    formatter = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "prep",
        help="TeaLeaves inputs (system_prompt.txt, regions.json, conversations.json) -> a "
        "validated cases file",
        description="Build a cases file from TeaLeaves' inputs, checking every region and "
        "query position of every case with the model's tokenizer.",
        epilog=_EPILOG_PREP,
        formatter_class=formatter,
    )
    p.add_argument("inputs", nargs="?", default=".", help="folder of the three inputs (default: .)")
    p.add_argument("-o", "--out", default="cases.json", help="cases file to write (%(default)s)")
    p.add_argument("--prompt", help="system prompt file (default: INPUTS/system_prompt.txt)")
    p.add_argument("--regions", help="regions file (default: INPUTS/regions.json)")
    p.add_argument("--conversations", help="conversations (default: INPUTS/conversations.json)")
    p.add_argument(
        "--model",
        help="model whose tokenizer and chat template the cases are checked with "
        "(path or hub id; default: the embedded SmolLM2-135M-Instruct)",
    )
    p.set_defaults(func=prep)

    p = sub.add_parser(
        "capture",
        help="capture every case of a cases file: one run file per case plus index.json",
        description="Capture every case of a cases file into a run directory (open it with "
        "tw.open_runs(DIR)).",
        epilog=_EPILOG_CAPTURE,
        formatter_class=formatter,
    )
    p.add_argument("cases", help="cases file written by `tealeaves-widgets prep`")
    p.add_argument("--out", required=True, help="run directory to write (created if missing)")
    p.add_argument("--model", help="model path or hub id (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument(
        "--dtype",
        choices=("bfloat16", "float16", "float32"),
        help="weights dtype (default: the checkpoint's; float32 for the embedded model). "
        "Attention rows and the lens are computed in float32 regardless",
    )
    p.add_argument(
        "--device-map",
        help='accelerate device map: "auto" spreads the model over the GPUs (then CPU, '
        'then disk with --offload-folder), "cpu", "cuda:0", or a JSON object. Default: one '
        "device, this process's GPU under a launcher, else the CPU",
    )
    p.add_argument(
        "--max-memory",
        help="per-device budget for accelerate, e.g. '0=20GiB,1=20GiB,cpu=60GiB' (needs "
        "--device-map auto); also the budget of the memory check",
    )
    p.add_argument("--offload-folder", help="folder where accelerate may offload weights to disk")
    p.add_argument(
        "--max-tokens",
        type=int,
        help="skip cases longer than this many tokens (listed as pending in the index)",
    )
    p.add_argument("--top-k", type=int, default=10, help="lens top-k per layer (%(default)s)")
    p.add_argument(
        "--skip-memory-check",
        action="store_true",
        help="load and capture even when the memory estimate says it will not fit",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=capture)

    for name, helptext in (
        ("compare", "delta tables (CSV) and the report of variants given as run directories"),
        ("report", "only the report (markdown, or HTML when the file ends in .html)"),
    ):
        p = sub.add_parser(
            name,
            help=helptext,
            description=f"{helptext[0].upper()}{helptext[1:]}.",
            epilog=_EPILOG_COMPARE,
            formatter_class=formatter,
        )
        p.add_argument("variants", nargs="+", metavar="NAME=DIR", help="variants, baseline first")
        if name == "compare":
            p.add_argument("--out", required=True, help="folder for the CSV tables and report.md")
        else:
            p.add_argument("-o", "--out", default="report.md", help="report file (%(default)s)")
        p.add_argument(
            "--layers",
            default=None,
            help='"bands" (early/middle/late thirds) or a JSON object of named phases '
            '{"reading": [0, 12], ...}; default: every layer',
        )
        add_mass_arguments(p, normalize=CompareOptions.normalize)
        p.add_argument(
            "--min-effect",
            type=float,
            default=CompareOptions.min_effect,
            help="smallest |delta| that can be significant, in the mass's units (%(default)s: "
            "one percentage point)",
        )
        p.add_argument("--level", type=float, default=0.95, help="interval level (%(default)s)")
        p.add_argument("--interval", default="t", choices=INTERVALS, help="(%(default)s)")
        p.add_argument("--top", type=int, default=5, help="changes listed in the report")
        p.set_defaults(func=compare if name == "compare" else report)
    add_render_command(sub)


# ---------------------------------------------------------------- commands


def prep(args: argparse.Namespace) -> int:
    from .cases import token_count
    from .prep import PrepInputs
    from .prep import prep as prep_cases

    tokenizer, source, context = _tokenizer(args.model)
    inputs = PrepInputs.in_folder(
        args.inputs,
        system_prompt=args.prompt,
        regions=args.regions,
        conversations=args.conversations,
    )
    cases = prep_cases(inputs, tokenizer, context_length=context, source=source)
    path = cases.save(args.out)
    lengths = [token_count(c) for c in cases.cases]
    print(
        f"wrote {path}: {len(cases.cases)} cases, {min(lengths)}-{max(lengths)} tokens with "
        f"{source}'s tokenizer; every region and query position resolved"
    )
    return 0


def _tokenizer(model: str | None):
    from transformers import AutoConfig, AutoTokenizer

    from ..models.loading import EMBEDDED_MODEL_ID, embedded_model_dir
    from .capture import context_length

    where = embedded_model_dir() if model is None else model
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
    except OSError as error:
        raise ArgumentError(
            f"Cannot load the tokenizer of {where} ({error}); pass --model a local model "
            "folder or a hub id."
        ) from error
    try:
        context = context_length(AutoConfig.from_pretrained(where))
    except (OSError, TealeavesError):
        context = None  # no config (or an unknown architecture): no length check
    return tokenizer, EMBEDDED_MODEL_ID if model is None else str(model), context


def capture(args: argparse.Namespace) -> int:
    options = _capture_options(args)  # every argument checked before anything loads
    from .capture import capture_cases

    summary = capture_cases(args.cases, args.out, options)
    index = summary.index
    if not summary.is_main or index is None:  # only the main process merges the index
        return 1 if summary.problems else 0
    print(
        f"{args.out}: {len(index.runs)} runs in index.json "
        f"({len(summary.captured)} captured by this process now, "
        f"{len(summary.existing)} already there)"
        + (f"; {len(index.pending)} pending" if index.pending else "")
    )
    for problem in summary.problems:
        print(f"  - {problem}", file=sys.stderr)
    too_long = index.extra.get("too_long") or []
    if too_long:
        print(f"  skipped (longer than --max-tokens): {too_long}", file=sys.stderr)
    return 1 if summary.problems else 0


def _capture_options(args: argparse.Namespace):
    """The capture's options from its arguments, each checked (ArgumentError)."""
    from ..models.memory import parse_max_memory
    from .capture import CaptureOptions

    if not Path(args.cases).is_file():
        raise ArgumentError(
            f"The cases file {args.cases!r} does not exist; write it with "
            "`tealeaves-widgets prep INPUTS -o cases.json` first."
        )
    _at_least_one("--top-k", args.top_k, "e.g. --top-k 10 (the lens keeps that many tokens)")
    if args.max_tokens is not None:
        _at_least_one("--max-tokens", args.max_tokens, "or leave it out to capture every case")
    device_map = _device_map(args.device_map)
    max_memory = parse_max_memory(args.max_memory)
    if (max_memory or args.offload_folder) and device_map is None:
        given = "--max-memory" if max_memory else "--offload-folder"
        raise ArgumentError(
            f"{given} places weights with accelerate, which needs a device map, but no "
            f"--device-map was given; add --device-map auto."
        )
    return CaptureOptions(
        model=args.model,
        dtype=args.dtype,
        device_map=device_map,
        max_memory=max_memory,
        offload_folder=args.offload_folder,
        max_tokens=args.max_tokens,
        top_k=args.top_k,
        memory_check=not args.skip_memory_check,
        progress=not args.no_progress,
    )


def _at_least_one(flag: str, value: int, fix: str) -> None:
    if value < 1:
        raise ArgumentError(f"{flag} must be a whole number of at least 1, got {value}; {fix}.")


_DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
_DEVICE_MAP_EXAMPLE = (
    '"auto", "cpu", "cuda:0", a GPU number, or a JSON object of module -> device such as '
    '\'{"model.embed_tokens": 0, "model.layers.0": 0, "lm_head": "cpu"}\''
)


def _device_map(text: str | None):
    """--device-map as accelerate takes it: None, a strategy, a device, or a dict."""
    if text is None or text in _DEVICE_MAP_STRATEGIES:
        return text
    if text.startswith("{"):
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as error:
            raise ArgumentError(
                f"--device-map {text!r} is not valid JSON ({error.msg} at character "
                f"{error.pos}); write {_DEVICE_MAP_EXAMPLE}."
            ) from error
        if not isinstance(mapping, dict) or not mapping:
            raise ArgumentError(
                f"--device-map {text!r} maps no module; write {_DEVICE_MAP_EXAMPLE}."
            )
        for module, device in mapping.items():
            _check_device(device, f"--device-map module {module!r}", allow_disk=True)
        return mapping
    device = int(text) if text.isdigit() else text
    _check_device(device, "--device-map", allow_disk=False)
    return device


def _check_device(device: object, where: str, *, allow_disk: bool) -> None:
    """A device accelerate can place weights on: "cpu", "cuda:1", a GPU number
    of this machine (or "disk" inside a map)."""
    import torch

    if allow_disk and device == "disk":
        return
    if isinstance(device, bool) or not isinstance(device, (int, str)):
        parsed = None
    else:
        try:
            parsed = torch.device(device)
        except (RuntimeError, ValueError):
            parsed = None
    if parsed is None:
        raise ArgumentError(f"{where} is {device!r}, not a device; write {_DEVICE_MAP_EXAMPLE}.")
    if parsed.type == "cuda":
        count = torch.cuda.device_count()
        if (parsed.index or 0) >= count:
            have = f"GPUs 0-{count - 1}" if count else "no GPU"
            raise ArgumentError(
                f"{where} is {device!r}, but this machine has {have}; name one of its "
                'devices, or use "cpu".'
            )


def compare(args: argparse.Namespace) -> int:
    variants, options = _comparison_arguments(args)
    comparison = _comparison(variants, options)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "deltas.csv": comparison.deltas,
        "lens_deltas.csv": comparison.lens_deltas,
        "curve_stats.csv": comparison.curve_stats,
    }
    for name, frame in tables.items():
        frame.to_csv(out / name, index=False)
    path = comparison.save_report(out / "report.md", top=args.top)
    print(f"wrote {', '.join(tables)} and {path.name} into {out}")
    return 0


def report(args: argparse.Namespace) -> int:
    from ..widgets.report_page import REPORT_SUFFIXES

    suffix = Path(args.out).suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ArgumentError(
            f"-o {args.out!r} ends in {suffix or 'no suffix'}, not a report format; name the "
            "file .md (markdown) or .html (a standalone page)."
        )
    variants, options = _comparison_arguments(args)
    comparison = _comparison(variants, options)
    path = comparison.save_report(args.out, top=args.top)
    print(f"wrote {path}")
    return 0


def _comparison_arguments(args: argparse.Namespace) -> tuple[dict[str, str], dict]:
    """Variant name -> run directory, and the compare options, each checked
    (ArgumentError) before any run is opened."""
    from ..core.compare import compare_options

    variants: dict[str, str] = {}
    for item in args.variants:
        name, sep, directory = item.partition("=")
        if not sep or not name or not directory:
            raise ArgumentError(
                f"A variant is NAME=DIR (e.g. baseline=runs/baseline), got {item!r}."
            )
        if name in variants:
            raise ArgumentError(f"The variant name {name!r} is given twice; name each once.")
        if not Path(directory).is_dir():
            raise ArgumentError(
                f"Variant {name!r}: {directory!r} is not a folder; give the run directory that "
                "`tealeaves-widgets capture --out` wrote."
            )
        variants[name] = directory
    if len(variants) < 2:
        raise ArgumentError(
            f"{args.command} needs at least two variants, NAME=DIR NAME=DIR ..., got "
            f"{len(variants)}; the first is the baseline."
        )
    _at_least_one("--top", args.top, "e.g. --top 5")
    if not 0 < args.level < 1:
        raise ArgumentError(f"--level must lie between 0 and 1, got {args.level}; e.g. 0.95.")
    options = {
        "layers": _layers(args.layers),
        **mass_keywords(args),
        "min_effect": args.min_effect,
        "level": args.level,
        "interval": args.interval,
    }
    compare_options(**options)
    return variants, options


_PHASES_EXAMPLE = '\'{"reading": [0, 12], "answer": [12, 30]}\''
_LAYERS_EXAMPLE = f'"bands", or a JSON object of phases such as {_PHASES_EXAMPLE}'


def _layers(text: str | None):
    """--layers: None, "bands", or phases name -> (start, stop) or a list of layers."""
    if text is None or text == "bands":
        return text
    try:
        phases = json.loads(text)
    except json.JSONDecodeError as error:
        raise ArgumentError(
            f'--layers {text!r} is neither "bands" nor valid JSON ({error.msg} at character '
            f"{error.pos}); write {_LAYERS_EXAMPLE}."
        ) from error
    if not isinstance(phases, dict) or not phases:
        raise ArgumentError(
            f"--layers {text!r} is not a JSON object of phases; write {_LAYERS_EXAMPLE}."
        )
    out = {}
    for name, spec in phases.items():
        layers = spec if isinstance(spec, list) else []
        if not layers or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in layers
        ):
            raise ArgumentError(
                f"--layers phase {name!r} is {json.dumps(spec)}, but a phase is [start, stop] (a "
                "half-open range of layers) or a list of layer numbers; write e.g. "
                f"{_PHASES_EXAMPLE}."
            )
        out[name] = tuple(layers)  # a pair is a range (start, stop), longer lists are layers
    return out


def _comparison(variants: dict[str, str], options: dict):
    from ..core.compare import compare as compare_runs
    from ..io.rundir import open_runs

    opened = {}
    for name, directory in variants.items():
        runs = open_runs(directory)
        opened[name] = runs[0] if len(runs) == 1 else runs
    return compare_runs(opened, **options)


# ---------------------------------------------------------------- demo and quickstart


def demo(args: argparse.Namespace) -> int:
    """Capture the bundled example on the embedded model and print what it shows."""
    import pandas as pd

    import tealeaves_widgets as tw

    from ..prompt.examples import EXAMPLE_CASE, EXAMPLE_REGIONS

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
    from ..widgets.export import export_html
    from .notebooks import execute_notebook, quickstart_path

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
        "logit lens. Batch pipeline: prep -> capture -> compare/report; render draws PNG "
        "and GIF images of saved runs.",
        epilog="exit status: 0 done; 1 failed (the reason on stderr); 2 arguments not "
        "accepted; 130 interrupted (Ctrl-C; rerun the same command to resume a capture).",
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
    command = f"tealeaves-widgets {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _close_progress_bars()
        if args.command == "capture":  # finished run files are kept and skipped next time
            again = "rerun the same command to resume (every finished run file is kept)"
        else:
            again = "rerun the same command to start again"
        print(f"{command}: interrupted; {again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ArgumentError as error:  # argparse's status for bad arguments
        print(f"{command}: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    except (TealeavesError, OSError) as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 1


EXIT_BAD_ARGUMENTS = 2
"""Exit status for arguments the command does not accept (argparse's convention)."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, the shell's convention)."""


def _close_progress_bars() -> None:
    """Close the progress bars an interrupt left open, so that the message is
    the last line on stderr."""
    std = sys.modules.get("tqdm.std")
    if std is not None:
        for bar in list(getattr(std.tqdm, "_instances", ())):
            bar.close()
