"""Cost of `Model.generate_capture` on the embedded model against plain
`generate`, and its peak memory.

    python benchmarks/generation.py                 # time: 50 tokens after the example prompt
    python benchmarks/generation.py --reps 5 --prompt-tokens 500
    python benchmarks/generation.py --memory        # peak memory, 2,000-token prompt

Time. `generate_capture(..., max_new_tokens=50, lens=False)` (greedy; the
rows of every layer and head at every step, the step's top-k log-probs,
entropy and states) against `hf_model.generate(max_new_tokens=50,
do_sample=False)` on the same prompt, with the end-of-sequence token
disabled in both so each makes exactly 50 steps, measured interleaved
(plain, captured, plain, ...) in one process; medians of wall-clock seconds.
The per-step logit lens (lens=True: every layer's residual through the
final norm and the 49k-token unembedding at every step) is timed on its own
line. Target (issue 13): <= 1.3x plain generate.

Memory (--memory). Each way runs in its own fresh process: load the model,
note the resident set size, generate 50 tokens after a prompt of
--memory-tokens tokens, and report the peak RSS (`ru_maxrss`) and the peak
minus the size after loading (what the generation itself added). Target
(issue 13): the captured generation's peak within 1.2x of plain generate's.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

import tealeaves_widgets as tw
from tealeaves_widgets.prompt.examples import EXAMPLE_CASE

FILLER = (
    "The committee reviewed the quarterly figures, asked for the missing receipts, "
    "and agreed to meet again after the audit. Each member read the summary aloud; "
    "nobody objected to the new travel policy, though several wanted clearer rules "
    "for shared expenses and for the use of personal vehicles on company business. "
)


def case_of(model: tw.Model, tokens: int | None) -> tw.Case:
    """The example case, its system prompt padded with filler to about `tokens` tokens."""
    if tokens is None:
        return EXAMPLE_CASE
    system = EXAMPLE_CASE.system or ""
    while len(model.render(tw.Case(system=system, user=EXAMPLE_CASE.user)).token_ids) < tokens:
        system += FILLER
    return tw.Case(system=system, user=EXAMPLE_CASE.user)


def no_eos(model: tw.Model) -> None:
    """Make both ways run every step: no token ends the generation."""
    model.hf_model.generation_config.eos_token_id = None
    model.tokenizer.eos_token_id = None


def plain(model: tw.Model, case: tw.Case, n: int) -> list[int]:
    ids = torch.as_tensor(model.render(case).token_ids)[None]
    with torch.no_grad():
        out = model.hf_model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=0,
        )
    return out[0, ids.shape[1] :].tolist()


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def time_figures(args: argparse.Namespace) -> None:
    model = tw.load_model()
    no_eos(model)
    case = case_of(model, args.prompt_tokens)
    n_prompt = len(model.render(case).token_ids)
    n = args.new_tokens
    reference = plain(model, case, n)
    gen = model.generate_capture(case, max_new_tokens=n, lens=False)
    assert gen.token_ids.tolist() == reference, "captured tokens differ from generate's"
    times: dict[str, list[float]] = {"plain": [], "rows": [], "rows+lens": []}
    for _ in range(args.reps):
        times["plain"].append(timed(lambda: plain(model, case, n)))
        times["rows"].append(
            timed(lambda: model.generate_capture(case, max_new_tokens=n, lens=False))
        )
        times["rows+lens"].append(
            timed(lambda: model.generate_capture(case, max_new_tokens=n, lens=True))
        )
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; prompt {n_prompt} tokens, {n} new tokens, "
        f"{args.reps} reps interleaved, medians"
    )
    print(f"plain generate                : {med['plain']:.3f} s")
    print(
        f"generate_capture (rows, no lens): {med['rows']:.3f} s = "
        f"{med['rows'] / med['plain']:.2f}x plain (target <= 1.3x)"
    )
    print(
        f"generate_capture (rows + lens): {med['rows+lens']:.3f} s = "
        f"{med['rows+lens'] / med['plain']:.2f}x plain (the lens alone: "
        f"{med['rows+lens'] - med['rows']:.3f} s)"
    )


def peak(way: str, tokens: int, n: int) -> dict:
    """Run in a fresh process: the peak RSS of one generation."""
    model = tw.load_model()
    no_eos(model)
    case = case_of(model, tokens)
    n_prompt = len(model.render(case).token_ids)
    # the prompt is rendered (and the filler built) before the baseline is taken
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if way == "plain":
        plain(model, case, n)
    else:
        model.generate_capture(case, max_new_tokens=n, lens=False)
    top = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"way": way, "prompt": n_prompt, "loaded": loaded, "peak": top}


def memory_figures(args: argparse.Namespace) -> None:
    results = {}
    for way in ("plain", "captured"):
        out = subprocess.run(
            [sys.executable, __file__, "--peak", way, "--memory-tokens", str(args.memory_tokens)],
            check=True,
            capture_output=True,
            text=True,
        )
        results[way] = json.loads(out.stdout.strip().splitlines()[-1])
    mib = 2**20
    p, c = results["plain"], results["captured"]
    print(f"# peak RSS, 50 new tokens after a {p['prompt']}-token prompt, fresh process each")
    for r in (p, c):
        print(
            f"{r['way']:>8}: peak {r['peak'] / mib:.0f} MiB (after loading {r['loaded'] / mib:.0f} "
            f"MiB; added {(r['peak'] - r['loaded']) / mib:.0f} MiB)"
        )
    print(f"captured / plain peak: {c['peak'] / p['peak']:.2f}x (target <= 1.2x)")
    added_p, added_c = p["peak"] - p["loaded"], c["peak"] - c["loaded"]
    print(f"captured / plain, added by the generation: {added_c / max(added_p, 1):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=50)
    parser.add_argument("--prompt-tokens", type=int, default=None)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--memory-tokens", type=int, default=2000)
    parser.add_argument("--peak", choices=("plain", "captured"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        print(json.dumps(peak(args.peak, args.memory_tokens, 50)))
    elif args.memory:
        memory_figures(args)
    else:
        time_figures(args)


if __name__ == "__main__":
    main()
