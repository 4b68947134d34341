"""`Model.head_atlas` on the embedded model against plain forward passes over
the same probe tokens, and its peak memory.

    python benchmarks/head_atlas.py                  # time, 3 reps, then memory
    python benchmarks/head_atlas.py --reps 5 --no-memory

Time. Atlas = `model.head_atlas()` with the default probes (seed 0): the
batched reducer passes of the text, random, repeated and IOI probes, plain
batched passes of the ordinal sets, the OV logits of the inputs kept at the
chosen positions, building the probes and the result. Plain = the model's own SDPA
forward pass (the keyword arguments the capture uses: `use_cache=False`,
logits of the last position only) over every probe of every set, batched
the way the atlas batches its attention sets (one length per batch, at most
`BATCH_TOKENS` tokens). Measured interleaved (plain, atlas, plain, ...) in
one process; medians of wall-clock seconds. Target (issue 14): atlas <= 3x plain.

Memory. Each way runs in a fresh process: load the model, build the probes,
reset the resident set's high-water mark (Linux `/proc/self/clear_refs`:
loading the GGUF peaks higher than any run), note the resident set, run,
and report the peak (`VmHWM`) and what the run added. Target (issue 14):
atlas peak within 1.5x of plain.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.models import head_atlas as atlas_module


def probes_of(model: tw.Model):
    return atlas_module.build_probes(model.tokenizer, atlas_module._vocab_size(model))


def plain_batches(probes) -> list[np.ndarray]:
    """Every probe of every set, grouped by length, at most BATCH_TOKENS per batch."""
    batches = []
    for seqs in probes.sets.values():
        by_length: dict[int, list[list[int]]] = {}
        for seq in seqs:
            by_length.setdefault(len(seq), []).append(seq)
        for length, group in sorted(by_length.items()):
            size = max(1, atlas_module.BATCH_TOKENS // length)
            for start in range(0, len(group), size):
                batches.append(np.asarray(group[start : start + size], np.int64))
    return batches


def plain(model: tw.Model, batches: list[np.ndarray]) -> None:
    with torch.no_grad():
        for ids in batches:
            model.hf_model(input_ids=torch.as_tensor(ids), **model._forward_kwargs)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def time_figures(reps: int) -> None:
    model = tw.load_model()
    probes = probes_of(model)
    batches = plain_batches(probes)
    tokens = sum(b.size for b in batches)
    plain(model, batches)  # warm up
    model.head_atlas(progress=False)
    times: dict[str, list[float]] = {"plain": [], "atlas": []}
    for _ in range(reps):
        times["plain"].append(timed(lambda: plain(model, batches)))
        times["atlas"].append(timed(lambda: model.head_atlas(progress=False)))
    med = {k: statistics.median(v) for k, v in times.items()}
    sets = ", ".join(f"{k} {len(v)}x{len(v[0])}" for k, v in probes.sets.items())
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {model.model_id}; probes {sets} "
        f"(length with the BOS; {tokens} tokens in {len(batches)} plain batches); "
        f"{reps} reps interleaved, medians"
    )
    print(f"plain forward passes : {med['plain']:.3f} s")
    print(
        f"head_atlas           : {med['atlas']:.3f} s = {med['atlas'] / med['plain']:.2f}x "
        "plain (target <= 3x)"
    )
    pairs = zip(times["plain"], times["atlas"], strict=True)
    print("per rep, plain / atlas s:", ", ".join(f"{p:.2f} / {a:.2f}" for p, a in pairs))


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak(way: str) -> dict:
    """Run in a fresh process: the resident set before the run and its peak
    during it (the high-water mark is reset after loading, whose GGUF
    dequantisation peaks higher than any run: Linux, /proc/self/clear_refs)."""
    model = tw.load_model()
    probes = probes_of(model)
    batches = plain_batches(probes)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset VmHWM to the current VmRSS
    loaded = _status_kib("VmRSS") * 1024
    if way == "plain":
        plain(model, batches)
    else:
        model.head_atlas(progress=False)
    top = _status_kib("VmHWM") * 1024
    return {"way": way, "loaded": loaded, "peak": top}


def memory_figures() -> None:
    results = {}
    for way in ("plain", "atlas"):
        out = subprocess.run(
            [sys.executable, __file__, "--peak", way], check=True, capture_output=True, text=True
        )
        results[way] = json.loads(out.stdout.strip().splitlines()[-1])
    mib = 2**20
    p, a = results["plain"], results["atlas"]
    print("# peak RSS during the run (high-water mark reset after loading), fresh process each")
    for r in (p, a):
        print(
            f"{r['way']:>6}: peak {r['peak'] / mib:.0f} MiB (after loading {r['loaded'] / mib:.0f} "
            f"MiB; added {(r['peak'] - r['loaded']) / mib:.0f} MiB)"
        )
    print(f"atlas / plain peak: {a['peak'] / p['peak']:.2f}x (target <= 1.5x)")
    added_p, added_a = p["peak"] - p["loaded"], a["peak"] - a["loaded"]
    print(f"atlas / plain, added by the run: {added_a / max(added_p, 1):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--peak", choices=("plain", "atlas"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        print(json.dumps(peak(args.peak)))
        return
    time_figures(args.reps)
    if not args.no_memory:
        memory_figures()


if __name__ == "__main__":
    main()
