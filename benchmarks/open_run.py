"""Opening a run file: time and memory of `tw.open_run` on a ~50 MB run.

    PYTHONPATH=. python benchmarks/open_run.py     # 32 layers x 32 heads x 8 queries x 1536 tokens
    PYTHONPATH=. python benchmarks/open_run.py --reps 20 --tokens 3072

(PYTHONPATH=. so that the checkout is measured, not an installed copy.)

The run is built from numpy (no model) and saved once; the file is then in the
page cache, so the times measure the checks, the checksum and the decoding,
not the disk. "open" is `open_run` alone; "open + use" also reads every array
once (sums it), which is where a lazily mapped file pays for its reads.
Times are medians of `--reps` runs in this process. Peak memory is the
resident-set high-water mark of a fresh process, minus its value after the
imports, around one `open_run` (and around one "open + use"). That process
is started by a small Python in between: on Linux a process inherits its
parent's high-water mark across exec, so a child of this (large) process would
report this one's peak instead of its own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tealeaves_widgets as tw
from tealeaves_widgets.io.runfile import open_run

PEAK = """
import resource, sys
import numpy as np
from tealeaves_widgets.io.runfile import open_run
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run = open_run(sys.argv[1])
opened = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
total = sum(float(np.sum(a)) for a in (run.attention, run.attention_heads, run.lens.top_probs))
used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((opened - before) / 1024, (used - before) / 1024)
"""
VIA_SMALL_PARENT = (
    "import subprocess, sys; sys.exit(subprocess.call([sys.executable, *sys.argv[1:]]))"
)


def build_run(n_layers: int, n_heads: int, n_queries: int, n_tokens: int) -> tw.Run:
    """A run of the given shape with random attention rows and lens readings."""
    rng = np.random.default_rng(0)
    words = [f"w{i} " for i in range(n_tokens)]
    lengths = np.array([len(w) for w in words])
    offsets = np.stack([np.cumsum(lengths) - lengths, np.cumsum(lengths)], axis=1)
    heads = rng.random((n_layers, n_heads, n_queries, n_tokens), dtype=np.float32)
    per_query = (n_layers, n_queries)
    top_ids = rng.integers(0, 1000, size=(*per_query, 10)).astype(np.int64)
    lens = tw.Lens(
        top_ids=top_ids,
        top_probs=rng.random((*per_query, 10), dtype=np.float32),
        entropy=rng.random(per_query, dtype=np.float32),
        kl_to_final=rng.random(per_query, dtype=np.float32),
        tracked_ids=np.array([1, 2], dtype=np.int64),
        tracked_tokens=("a", "b"),
        tracked_ranks=rng.integers(1, 100, size=(*per_query, 2)).astype(np.int64),
        tracked_probs=rng.random((*per_query, 2), dtype=np.float32),
        vocab={int(i): f"v{i}" for i in {*top_ids.ravel().tolist(), 1, 2}},
    )
    half = n_tokens // 2
    regions = {
        name: tw.RegionInfo(
            name,
            "user",
            (int(offsets[a, 0]), int(offsets[b - 1, 1])),
            np.arange(a, b, dtype=np.int64),
        )
        for name, (a, b) in {"first": (0, half), "second": (half, n_tokens)}.items()
    }
    return tw.Run(
        text="".join(words),
        tokens=tuple(words),
        token_ids=np.arange(n_tokens, dtype=np.int64),
        offsets=offsets.astype(np.int64),
        regions=regions,
        queries={f"q{i}": n_tokens - n_queries + i for i in range(n_queries)},
        attention=heads.mean(axis=1),
        attention_heads=heads,
        lens=lens,
        model_info={"model_id": "benchmark"},
    )


def median_seconds(action, reps: int) -> float:
    action()  # warm: the file in the page cache, numpy's first calls done
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=1536)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    run = build_run(args.layers, args.heads, args.queries, args.tokens)
    with tempfile.TemporaryDirectory() as folder:
        path = run.save(Path(folder) / "bench.tlrun")
        size = path.stat().st_size / 1e6

        def use() -> None:
            opened = open_run(path)
            for array in (opened.attention, opened.attention_heads, opened.lens.top_probs):
                np.sum(array)

        opened = median_seconds(lambda: open_run(path), args.reps)
        used = median_seconds(use, args.reps)
        peak = subprocess.run(
            [sys.executable, "-c", VIA_SMALL_PARENT, "-c", PEAK, str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    result = {
        "file_mb": round(size, 1),
        "open_ms": round(opened * 1e3, 1),
        "open_and_use_ms": round(used * 1e3, 1),
        "peak_open_mb": round(float(peak[0]), 1),
        "peak_open_and_use_mb": round(float(peak[1]), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
