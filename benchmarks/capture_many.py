"""Batched `Model.capture_many` against one `Model.capture` per case, on the
embedded SmolLM2-135M-Instruct.

    python benchmarks/capture_many.py                     # 32 cases of ~300 tokens
    python benchmarks/capture_many.py --reps 3 --batch-tokens 2048 4096 9600
    python benchmarks/capture_many.py --shared-prefix     # 32 x (~2,000 + 40-80 tokens)
    python benchmarks/capture_many.py --shared-prefix --quick   # 8 x (~500 + 40-80)

Cases are a short system prompt and a user message of filler text, 280-320
tokens each (lengths differ, so batches are padded), with 3 query positions
and 4 tracked tokens. Times are medians and minima of interleaved repetitions
(separate, batched, separate, ...) after one warm-up of each (the minimum is
the least disturbed by other work on a shared machine); the batched runs are also
checked against the separate ones (max |difference| of every attention row
and lens probability).

--shared-prefix: prompt engineering's case, one long system prompt (~2,000
tokens of filler and rules) and many user messages of 40-80 tokens, with a
query inside the system prompt and three in the user message. It times
`capture_many` (which computes the common prefix once, models.shared_prefix)
beside one `capture` per case (and, with --with-batched, beside
`capture_many(shared_prefix=False)`, the ordinary batches), after a warm-up
of one short capture of each kind, and checks that the runs are the same.
--quick: 8 cases and a ~500-token system prompt, for trying changes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

FILLER = (
    "The committee reviewed the quarterly figures, asked for the missing receipts, "
    "and agreed to meet again after the audit. Each member read the summary aloud; "
    "nobody objected to the new travel policy, though several wanted clearer rules "
    "for shared expenses and for the use of personal vehicles on company business. "
)
QUESTIONS = ["What is the capital of France?", "Who wrote the summary?", "When is the audit?"]
REGIONS = {
    "user_message": {"regions": [{"name": "question", "start_marker": "Question:"}]},
    "query_positions": ["final", "last_token", {"after_text": "Question:"}],
    "tracked_tokens": [" Paris", " Yes", " No", " the"],
}


def make_cases(model, n_cases: int, mean_tokens: int, spread: int) -> list:
    """`n_cases` cases whose rendered prompts have mean_tokens +- spread tokens."""
    import tealeaves_widgets as tw

    tok = model.tokenizer
    filler_ids = tok(FILLER * (mean_tokens // 40 + 10), add_special_tokens=False)["input_ids"]
    overhead = len(model.render(tw.Case(system="Answer briefly.", user="x")).token_ids)
    cases = []
    for i in range(n_cases):
        target = mean_tokens - spread + (2 * spread * i) // max(1, n_cases - 1)
        question = QUESTIONS[i % len(QUESTIONS)]
        n = max(1, target - overhead - len(tok(" Question: " + question)["input_ids"]))
        user = tok.decode(filler_ids[i : i + n]) + " Question: " + question
        cases.append(tw.Case(system="Answer briefly.", user=user, name=f"case{i}"))
    return cases


SHARED_REGIONS = {
    "system_prompt": {"regions": [{"name": "rules", "start_marker": "Rules:"}]},
    "user_message": {"regions": [{"name": "question", "start_marker": "Question:"}]},
    "query_positions": [
        "final",
        "last_token",
        {"after_text": "Question:"},
        {"after_text": "Rules:"},
    ],
    "tracked_tokens": [" Paris", " Yes", " No", " the"],
}


def make_shared_cases(model, n_cases: int, system_tokens: int, user_tokens: tuple[int, int]):
    """`n_cases` cases with one system prompt of about `system_tokens` tokens
    and user messages of user_tokens[0]..user_tokens[1] tokens, each different
    from its first token on."""
    import tealeaves_widgets as tw

    tok = model.tokenizer
    filler_ids = tok(FILLER * (system_tokens // 40 + 10), add_special_tokens=False)["input_ids"]
    head = "You are a careful assistant for the committee. "
    rules = " Rules: answer briefly, cite the summary, and never guess."
    n = system_tokens - len(tok(head + rules)["input_ids"])
    system = head + tok.decode(filler_ids[:n]) + rules
    low, high = user_tokens
    cases = []
    for i in range(n_cases):
        question = QUESTIONS[i % len(QUESTIONS)]
        target = low + ((high - low) * i) // max(1, n_cases - 1)
        n = max(1, target - len(tok(" Question: " + question)["input_ids"]))
        # a distinct opening word, so the common prefix ends where the user message starts
        opening = f"Member {i + 1} writes:"
        words = tok.decode(filler_ids[7 * i + 3 : 7 * i + 3 + n - 4])
        user = f"{opening} {words} Question: {question}"
        cases.append(tw.Case(system=system, user=user, name=f"case{i}"))
    return cases


def shared_prefix_main(args) -> None:
    """Times capture_many with a shared system prompt against separate captures."""
    import torch

    import tealeaves_widgets as tw
    from tealeaves_widgets.models.shared_prefix import common_prefix_length

    system_tokens = args.system_tokens or (500 if args.quick else 2000)
    n_cases = args.cases if args.cases is not None else (8 if args.quick else 32)
    model = tw.load_model()
    cases = make_shared_cases(model, n_cases, system_tokens, tuple(args.user_tokens))
    ids = [model.render(case).token_ids for case in cases]
    lengths = [len(i) for i in ids]
    n_prefix = common_prefix_length(ids)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} "
        f"CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, {model.device}, "
        f"{model.dtype}; {model.model_id}"
    )
    print(
        f"{len(cases)} cases of {min(lengths)}-{max(lengths)} tokens sharing a prefix of "
        f"{n_prefix} tokens; suffixes {min(lengths) - n_prefix}-{max(lengths) - n_prefix} tokens"
    )

    def separate():
        return [model.capture(case, SHARED_REGIONS, progress=False) for case in cases]

    def shared():
        return model.capture_many(cases, SHARED_REGIONS, progress=False)

    def batched():
        return model.capture_many(cases, SHARED_REGIONS, progress=False, shared_prefix=False)

    modes = {"separate": separate, "shared prefix": shared}
    if args.with_batched:
        modes["batched, no sharing"] = batched
    # warm-up: one short capture of each kind (a full warm-up would double the run)
    model.capture(cases[0], SHARED_REGIONS, progress=False)
    model.capture_many(cases[:2], SHARED_REGIONS, progress=False)
    model.capture_many(cases[:2], SHARED_REGIONS, progress=False, shared_prefix=False)
    times: dict[str, list[float]] = {name: [] for name in modes}
    results = {}
    for _ in range(args.reps):
        for name, fn in modes.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    base, base_best = statistics.median(times["separate"]), min(times["separate"])
    print(
        f"{'mode':>20} {'median s':>9} {'per case s':>10} {'ratio':>6} {'best s':>7} "
        f"{'ratio':>6} {'max |diff|':>10}"
    )
    for name in modes:
        t, best = statistics.median(times[name]), min(times[name])
        diff = (
            ""
            if name == "separate"
            else f"{max_difference(results[name], results['separate']):>10.1e}"
        )
        print(
            f"{name:>20} {t:>9.2f} {t / len(cases):>10.3f} {t / base:>6.2f} {best:>7.2f} "
            f"{best / base_best:>6.2f} {diff}"
        )
    print(
        "ratio = mode / separate, of medians and of best times (target for the shared prefix: "
        "<= 0.30); load average after: "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + "; times over all reps: "
        + "; ".join(f"{k} {', '.join(f'{v:.2f}' for v in vs)}" for k, vs in times.items())
    )


def max_difference(batched, separate) -> float:
    import numpy as np

    worst = 0.0
    for a, b in zip(batched, separate, strict=True):
        worst = max(
            worst,
            float(np.abs(a.attention_heads - b.attention_heads).max()),
            float(np.abs(a.lens.top_probs - b.lens.top_probs).max()),
            float(np.abs(a.lens.tracked_probs - b.lens.tracked_probs).max()),
        )
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=None, help="default 32 (--quick: 8)")
    ap.add_argument("--tokens", type=int, default=300, help="mean rendered length")
    ap.add_argument("--spread", type=int, default=20, help="lengths vary by +- this")
    ap.add_argument("--reps", type=int, default=None, help="default 2 (--shared-prefix: 1)")
    ap.add_argument("--batch-tokens", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument(
        "--shared-prefix", action="store_true", help="one long system prompt, many user messages"
    )
    ap.add_argument("--quick", action="store_true", help="--shared-prefix at a small size")
    ap.add_argument("--system-tokens", type=int, default=None, help="default 2000 (--quick: 500)")
    ap.add_argument("--user-tokens", type=int, nargs=2, default=[40, 80], metavar=("MIN", "MAX"))
    ap.add_argument(
        "--with-batched",
        action="store_true",
        help="--shared-prefix: also time capture_many(shared_prefix=False)",
    )
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 1 if args.shared_prefix else 2
    if args.shared_prefix:
        shared_prefix_main(args)
        return
    if args.cases is None:
        args.cases = 32

    import torch

    import tealeaves_widgets as tw

    model = tw.load_model()
    cases = make_cases(model, args.cases, args.tokens, args.spread)
    lengths = [len(model.render(case).token_ids) for case in cases]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} "
        f"CPUs, {model.device}, {model.dtype}; {model.model_id}"
    )
    print(
        f"{len(cases)} cases of {min(lengths)}-{max(lengths)} tokens "
        f"(mean {statistics.mean(lengths):.0f})"
    )

    def separate():
        return [model.capture(case, REGIONS, progress=False) for case in cases]

    def batched(budget: int):
        return model.capture_many(cases, REGIONS, batch_tokens=budget, progress=False)

    modes = {"separate": separate}
    for budget in args.batch_tokens:
        modes[f"batched {budget}"] = lambda budget=budget: batched(budget)
    results = {name: fn() for name, fn in modes.items()}  # warm-up, and kept for the check
    times: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.reps):
        for name, fn in modes.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    base, base_best = statistics.median(times["separate"]), min(times["separate"])
    print(
        f"{'mode':>16} {'batch':>6} {'median s':>9} {'per case s':>10} {'ratio':>6} "
        f"{'best s':>7} {'ratio':>6} {'max |diff|':>10}"
    )
    print(
        f"{'separate':>16} {1:>6} {base:>9.2f} {base / len(cases):>10.3f} {1:>6.2f} "
        f"{base_best:>7.2f} {1:>6.2f}"
    )
    for budget in args.batch_tokens:
        name = f"batched {budget}"
        t, best = statistics.median(times[name]), min(times[name])
        size = max(1, budget // max(lengths))
        diff = max_difference(results[name], results["separate"])
        print(
            f"{name:>16} {size:>6} {t:>9.2f} {t / len(cases):>10.3f} {t / base:>6.2f} "
            f"{best:>7.2f} {best / base_best:>6.2f} {diff:>10.1e}"
        )
    print(
        "ratio = batched / separate, of medians and of best times (target <= 0.70); batch = "
        "cases per batch at the longest length; times over all reps: "
        + "; ".join(f"{k} {', '.join(f'{v:.2f}' for v in vs)}" for k, vs in times.items())
    )


if __name__ == "__main__":
    main()
