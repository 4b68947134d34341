"""The memory estimate of `tealeaves-widgets capture` against the measured peak.

    python benchmarks/memory_estimate.py [--tokens 512 4096] [--queries 3] [--dtype float32]

For each length, a fresh process imports torch and transformers, loads the
tokenizer, then (measured from here) loads the embedded SmolLM2-135M-Instruct,
captures one case of that many tokens with three queries (or --queries N:
"final" and N - 1 positions spread over the prompt) and one tracked token, as
`capture` does, saves the run to a file and reopens it beside the first. The
measure is the peak resident set size (Linux VmHWM, reset through
/proc/self/clear_refs after the imports) minus the resident size before
loading: everything the model, the capture and the saved-and-reopened run
added, weights included. The estimate is
`tealeaves_widgets.models.memory.estimate_memory` for the same case. Target:
within 25% of the measured peak.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "
QUERIES = ["final", "last_token", {"after_text": "fox jumps"}]
TRACKED = [" fox"]


def _status(key: str) -> float:
    """A /proc/self/status field in bytes."""
    with open("/proc/self/status", encoding="ascii") as file:
        return float(re.search(rf"{key}:\s+(\d+)", file.read()).group(1)) * 1024


def queries_for(n_queries: int, n_tokens: int) -> list:
    """Three named queries, or "final" and positions spread over the prompt."""
    if n_queries == len(QUERIES):
        return QUERIES
    step = max(1, n_tokens // n_queries)
    return ["final"] + [step * i for i in range(1, n_queries)]


def measure(n_tokens: int, n_queries: int, dtype: str) -> dict:
    """Runs in the child process: load + capture + save and reopen, the peak
    above the baseline."""
    import tealeaves_widgets as tw
    from tealeaves_widgets.models.loading import load_embedded_tokenizer
    from tealeaves_widgets.prompt.render import render_case

    tokenizer = load_embedded_tokenizer()

    def case_of(k: int) -> tw.Case:
        return tw.Case(system=SENTENCE * k, user="Where does the fox go?")

    one, eleven = (len(render_case(case_of(k), tokenizer).token_ids) for k in (1, 11))
    per = (eleven - one) / 10  # tokens per repeat, merges across repeats included
    case = case_of(max(1, round(1 + (n_tokens - one) / per)))
    regions = {"query_positions": queries_for(n_queries, n_tokens), "tracked_tokens": TRACKED}
    baseline = _status("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as file:
        file.write("5")  # resets VmHWM to the current RSS
    model = tw.load_model(dtype=dtype)
    run = model.capture(case, regions, progress=False, memory_check=False)
    with tempfile.TemporaryDirectory() as folder:
        reopened = tw.open_run(run.save(Path(folder) / "run.tlrun"))  # the estimate covers both
        peak = _status("VmHWM") - baseline
    return {"n_tokens": run.n_tokens, "n_queries": len(reopened.queries), "peak": peak}


def estimate(n_tokens: int, n_queries: int, dtype: str):
    from transformers import AutoConfig

    from tealeaves_widgets.models import memory
    from tealeaves_widgets.models.loading import embedded_model_dir

    sizes = memory.model_sizes(AutoConfig.from_pretrained(embedded_model_dir()))
    return memory.estimate_memory(
        sizes, n_tokens=n_tokens, n_queries=n_queries, n_tracked=len(TRACKED), dtype=dtype
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--queries", type=int, default=len(QUERIES), help="query positions")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.queries, args.dtype)))
        return 0
    if not sys.platform.startswith("linux"):
        print("needs Linux (/proc/self/status and clear_refs)")
        return 1
    print(
        f"embedded SmolLM2-135M-Instruct, {args.dtype}, CPU, {args.queries} queries, run saved "
        "and reopened; MiB = 2**20 bytes"
    )
    print(f"{'tokens':>7} {'estimate':>9} {'measured':>9} {'ratio':>6}  estimate by part")
    worst = 0.0
    for n_tokens in args.tokens:
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(n_tokens), "--dtype", args.dtype]
            + ["--queries", str(args.queries)],
            capture_output=True,
            text=True,
            check=True,
        )
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        est = estimate(measured["n_tokens"], measured["n_queries"], args.dtype)
        ratio = est.total / measured["peak"]
        worst = max(worst, abs(ratio - 1))
        parts = (
            f"weights {est.weights / 2**20:.0f}, activations {est.activations / 2**20:.0f}, "
            f"rows {est.attention_rows / 2**20:.0f}, save/reopen {est.saving / 2**20:.0f}, "
            f"lens {est.lens / 2**20:.0f}, "
            f"runtime {est.runtime / 2**20:.0f}"
        )
        print(
            f"{measured['n_tokens']:>7} {est.total / 2**20:>9.0f} {measured['peak'] / 2**20:>9.0f} "
            f"{ratio:>6.2f}  {parts}"
        )
    print(f"largest deviation: {worst:.0%} (target: within 25%)")
    return 0 if worst <= 0.25 else 1


if __name__ == "__main__":
    sys.exit(main())
