"""Capture cost on the embedded model: time and peak memory against a plain
SDPA forward pass and eager `output_attentions=True`.

    python benchmarks/capture.py            # T = 512, 2048, 8192
    python benchmarks/capture.py --lengths 512 --reps 3

The headline row of each T ("same logits") compares like with like: the plain
pass, the capture and the eager pass all keep the logits of the last position
only (`logits_to_keep=1`), which is how the capture runs the model (the lens
computes its own logits at the query positions). The capture cannot build
every position's logits, so this is the fair comparison. The second row
("plain/eager: all logits") calls plain and eager as a user would, `model(ids)`
building (T, vocab) logits, which makes them slower and the capture look
cheaper beside them.

Times are medians of interleaved runs (plain, capture, eager, ...) in one
process, in wall-clock seconds and (rows "cpu") process CPU seconds. Peak
memory is measured in a fresh subprocess per (mode, T): the model is loaded,
the kernel's resident-set high-water mark is reset, one pass runs, and the new
high-water mark minus the resident set before the pass is the pass's peak; the
whole-process ratio adds the loaded model to both. Capture = `Model.capture`
with 8 query positions, every layer and head, the lens with top-10 and 4
tracked tokens. Eager at T=8192 would need ~72 GB for the attention maps alone
on this model and is not attempted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

FILLER = (
    "The committee reviewed the quarterly figures, asked for the missing receipts, "
    "and agreed to meet again after the audit. Each member read the summary aloud; "
    "nobody objected to the new travel policy, though several wanted clearer rules "
    "for shared expenses and for the use of personal vehicles on company business. "
)
TRACKED = [" Paris", " Yes", " No", " the"]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> None:
    """Reset the kernel's resident-set high-water mark (VmHWM) of this process."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make_case(model, n_tokens: int):
    """A case whose rendered prompt has exactly `n_tokens` tokens."""
    import tealeaves_widgets as tw
    from tealeaves_widgets.prompt.render import render_case

    tok = model.tokenizer
    filler_ids = tok(FILLER * (n_tokens // 40 + 10), add_special_tokens=False)["input_ids"]

    def length(case) -> int:  # no context check while searching
        return len(render_case(case, tok).token_ids)

    overhead = length(tw.Case(system="Answer briefly.", user="x")) - 1
    n = n_tokens - overhead
    for _ in range(20):
        user = tok.decode(filler_ids[:n]) + " Question: what is the capital of France?"
        case = tw.Case(system="Answer briefly.", user=user)
        got = length(case)
        if got == n_tokens:
            return case
        n += n_tokens - got
    raise RuntimeError(f"could not build a prompt of exactly {n_tokens} tokens")


def regions_for(n_tokens: int) -> dict:
    step = n_tokens // 7
    queries = ["final", "last_token", {"after_text": "Question:"}] + [step * i for i in range(1, 6)]
    return {
        "user_message": {"regions": [{"name": "question", "start_marker": "Question:"}]},
        "query_positions": queries,
        "tracked_tokens": TRACKED,
    }


def run_mode(model, mode: str, case, regions) -> None:
    import torch

    hf = model.hf_model
    if mode == "capture":
        model.capture(case, regions, progress=False)
        return
    ids = torch.as_tensor(model.render(case).token_ids)[None]
    last = {"logits_to_keep": 1} if mode.endswith("_last") else {}
    with torch.no_grad():
        if mode.startswith("plain"):
            hf(input_ids=ids, use_cache=False, **last)
        elif mode.startswith("eager"):
            previous = hf.config._attn_implementation
            hf.set_attn_implementation("eager")
            try:
                hf(input_ids=ids, use_cache=False, output_attentions=True, **last)
            finally:
                hf.set_attn_implementation(previous)


EAGER_MAX_TOKENS = 4096
"""Longest prompt the eager pass is run on (its maps: layers x heads x T^2 x 4 bytes)."""

ROWS = {
    "same logits": ("plain_last", "capture", "eager_last"),
    "plain/eager: all logits": ("plain", "capture", "eager"),
}
"""Each row of the table: its (plain, capture, eager) modes. The first is the headline."""


def modes_for(n_tokens: int) -> list[str]:
    modes = ["plain", "plain_last", "capture"]
    return modes + (["eager", "eager_last"] if n_tokens <= EAGER_MAX_TOKENS else [])


def memory_child(mode: str, n_tokens: int) -> None:
    """Subprocess body: load, measure resident set, run once, report peak."""
    import torch

    import tealeaves_widgets as tw

    torch.set_num_threads(os.cpu_count() or 1)
    model = tw.load_model()
    case = make_case(model, n_tokens)
    regions = regions_for(n_tokens)
    base = rss_mb()
    reset_peak_rss()
    run_mode(model, mode, case, regions)
    print(json.dumps({"base_mb": base, "peak_mb": peak_rss_mb()}))


def measure_memory(mode: str, n_tokens: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", mode, str(n_tokens)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_times(model, n_tokens: int, reps: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall-clock and median process CPU seconds per mode. CPU time is
    reported too because it is far less disturbed by other load on the machine."""
    case = make_case(model, n_tokens)
    regions = regions_for(n_tokens)
    modes = modes_for(n_tokens)
    if n_tokens <= 2048:  # warm-up; long passes are not dominated by first-call costs
        for mode in modes:
            run_mode(model, mode, case, regions)
    wall: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(reps):
        for mode in modes:
            start, start_cpu = time.perf_counter(), time.process_time()
            run_mode(model, mode, case, regions)
            wall[mode].append(time.perf_counter() - start)
            cpu[mode].append(time.process_time() - start_cpu)
    median = statistics.median
    return {m: median(v) for m, v in wall.items()}, {m: median(v) for m, v in cpu.items()}


def load_times() -> list[tuple[float, float]]:
    """(imports, load) seconds of a cold (GGUF -> cache) and a warm (from the
    cache) load, each in a fresh process. "imports" is the one-time import of
    torch and transformers' model machinery, which any use of a model pays."""
    code = (
        "import time; t = time.perf_counter(); import torch, transformers.modeling_utils; "
        "import tealeaves_widgets as tw, tealeaves_widgets.models.model; "
        "i = time.perf_counter() - t; t = time.perf_counter(); tw.load_model(); "
        "print(i, time.perf_counter() - t)"
    )
    results = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, TEALEAVES_CACHE_DIR=cache)
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            imports, load = out.stdout.strip().splitlines()[-1].split()
            results.append((float(imports), float(load)))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return

    import torch

    import tealeaves_widgets as tw

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, float32")
    if not args.no_load:
        (cold_imp, cold), (warm_imp, warm) = load_times()
        print(
            f"load embedded model: cold {cold:.1f} s (GGUF -> cache), warm {warm:.2f} s "
            f"(from the cache); plus one-time imports of torch+transformers "
            f"{cold_imp:.1f} / {warm_imp:.1f} s"
        )
    model = tw.load_model()
    print(model)
    header = (
        f"{'T':>6} {'row':<24} {'plain s':>8} {'capture s':>10} {'eager s':>8} "
        f"{'cap/plain':>9} {'eager/cap':>9}"
    )
    if not args.no_memory:
        header += f" {'plain MB':>9} {'capture MB':>10} {'eager MB':>9} {'cap/plain mem':>13}"
    print(header)
    for n_tokens in args.lengths:
        wall, cpu = measure_times(model, n_tokens, args.reps)
        mem = (
            {} if args.no_memory else {m: measure_memory(m, n_tokens) for m in modes_for(n_tokens)}
        )
        for label, modes in ROWS.items():
            print(_row(str(n_tokens), label, modes, wall, mem), flush=True)
            print(_row("cpu", label, modes, cpu, {}), flush=True)
    print(
        "Rows: 'same logits' (the headline) runs plain and eager with logits_to_keep=1, "
        "as the capture runs the model, so every pass builds the same logits; "
        "'plain/eager: all logits' runs them as a user calls model(ids), building the "
        "logits of every position. Rows 'cpu': the same medians in process CPU seconds "
        "(user+system, all threads), which other load on the machine disturbs far less "
        "than wall-clock time. MB columns: peak resident memory added by one pass over the "
        "loaded model; cap/plain mem compares whole-process peaks (model weights included). "
        f"Eager is not run above T={EAGER_MAX_TOKENS} (its attention maps alone need "
        "layers x heads x T^2 x 4 bytes: 72 GB at T=8192)."
    )


def _row(
    first: str,
    label: str,
    modes: tuple[str, str, str],
    seconds: dict[str, float],
    mem: dict[str, dict],
) -> str:
    """One table row: the (plain, capture, eager) times, their ratios, and memory."""
    plain, capture, eager = (seconds.get(m, float("nan")) for m in modes)
    line = (
        f"{first:>6} {label:<24} {plain:>8.2f} {capture:>10.2f} {eager:>8.2f} "
        f"{capture / plain:>9.2f} {eager / capture:>9.2f}"
    )
    if mem:
        extra = [mem[m]["peak_mb"] - mem[m]["base_mb"] if m in mem else float("nan") for m in modes]
        ratio = mem[modes[1]]["peak_mb"] / mem[modes[0]]["peak_mb"]
        line += f" {extra[0]:>9.0f} {extra[1]:>10.0f} {extra[2]:>9.0f} {ratio:>13.2f}"
    return line


if __name__ == "__main__":
    main()
