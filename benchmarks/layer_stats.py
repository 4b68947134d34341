"""`layer_stats` against a plain forward pass on the embedded model.

    python benchmarks/layer_stats.py                 # T = 512, 5 reps
    python benchmarks/layer_stats.py --length 1024 --reps 3

Plain = the model's own SDPA forward pass of the same ids with the keyword
arguments the capture uses (`use_cache=False`, logits of the last position
only). layer_stats = what `Model.layer_stats` does on the same ids: the same pass, plus
every layer's full softmax rows recomputed in float32 chunks of
`REDUCE_CHUNK` query rows and reduced into [layer, head] float64 sums. Times
are medians of interleaved runs in one process (wall-clock seconds); a loaded
machine makes them noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

FILLER = (
    "The committee reviewed the quarterly figures, asked for the missing receipts, "
    "and agreed to meet again after the audit. Each member read the summary aloud; "
    "nobody objected to the new travel policy, though several wanted clearer rules "
    "for shared expenses and for the use of personal vehicles on company business. "
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    import tealeaves_widgets as tw
    from tealeaves_widgets.core.layer_stats import LayerStats
    from tealeaves_widgets.models.layer_stats import LayerStatsReducer, reduce_pass

    model = tw.load_model()
    ids = model.tokenizer(FILLER * (args.length // 40 + 2))["input_ids"][: args.length]
    ids = np.asarray(ids, np.int64)
    tensor = torch.as_tensor(ids, device=model.device)[None]

    def plain() -> None:
        with torch.no_grad():
            model.hf_model(input_ids=tensor, **model._forward_kwargs)

    def _stats() -> None:
        # what Model.layer_stats does once it has the ids
        s = model.shape
        reducer = LayerStatsReducer(s.n_layers, s.n_heads, model.device)
        reduce_pass(model, ids, [reducer])
        LayerStats.from_values(reducer.values(), len(ids), model.info())

    plain()
    _stats()  # warm up
    times: dict[str, list[float]] = {"plain": [], "layer_stats": []}
    for _ in range(args.reps):
        for name, fn in (("plain", plain), ("layer_stats", _stats)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    plain_s = statistics.median(times["plain"])
    stats_s = statistics.median(times["layer_stats"])
    print(
        f"T={len(ids)} ({model.model_id}, {model.device}, {torch.get_num_threads()} threads, "
        f"{args.reps} reps): plain {plain_s:.3f} s, layer_stats {stats_s:.3f} s, "
        f"ratio {stats_s / plain_s:.2f}x"
    )


if __name__ == "__main__":
    main()
