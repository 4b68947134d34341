"""Click a token to make it the query: what the kernel spends before the new
query's rows and lens can go to the page, on the embedded model (CPU, fp32).

    python benchmarks/click_query.py                  # T = 512, 2048
    python benchmarks/click_query.py --lengths 512 --clicks 2

Per prompt length T, one capture keeps its KV cache (`keep_cache=True`, as
`model.explore` does), then for each clicked position (spread over the prompt,
none of them a query), measured side by side in this one process:

  - cache:   the explorer's answer to the front end's "query_at" request, from
             the request to the reply's buffers: one decode step on the kept
             cache, the lens at the position, the run extended, the reply encoded;
  - pass:    the same answer with no cache of the prompt kept (a captured forward
             pass with the clicked position as its one query);
  - capture: a second full `model.capture` with the clicked position added to the
             queries, what the explorer would need without either.

Times are medians over the clicks, each click's three runs interleaved: wall
clock seconds, and process CPU seconds (user + system, all threads), which
other load on a shared machine disturbs far less. The figures printed last
are the largest differences between the clicked query's numbers and those of
the fresh capture (rows over every layer and head; lens probabilities, entropy
and KL), and the kept cache's size
(2 x layers x T x kv heads x head dim x 4 bytes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/
sys.path.insert(0, str(Path(__file__).resolve().parent))  # capture.py's prompt builder

from capture import make_case, regions_for  # noqa: E402

import tealeaves_widgets as tw  # noqa: E402
from tealeaves_widgets.widgets import Explorer  # noqa: E402
from tests.helpers.live_messages import replay  # noqa: E402


class NoCache:
    """The model as a view sees it, with no cache of the prompt kept: every
    click takes a forward pass."""

    def __init__(self, model: tw.Model) -> None:
        self.model = model

    def read_query(self, run, position, *, keep_cache=False):
        self.model.release_cache()
        return self.model.read_query(run, position, keep_cache=False)


def timed(work) -> tuple[tuple[float, float], object]:
    """(wall seconds, CPU seconds) of `work()`, and what it returned."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = work()
    return (time.perf_counter() - wall, time.process_time() - cpu), out


def click(view: Explorer, position: int) -> tuple[tuple[float, float], dict]:
    """Seconds from the front end's request to the reply, and the reply."""
    request = {"v": 1, "kind": "query_at", "id": 1, "pos": position}
    seconds, answers = timed(lambda: replay(view, request))
    [(reply, _buffers)] = answers  # type: ignore[misc]
    if reply["kind"] != "query_at":
        raise RuntimeError(reply["message"])
    return seconds, reply


def differences(added: tw.Run, fresh: tw.Run, name: str) -> dict[str, float]:
    """Largest |difference| of the query's rows, lens probabilities (top-k and
    tracked) and lens entropy / KL (nats) against `fresh`."""
    q, f = added.query_index(name), fresh.query_index(name)
    a, b = added.lens, fresh.lens

    def worst(*fields: str) -> float:
        return max(float(np.abs(getattr(a, k)[:, q] - getattr(b, k)[:, f]).max()) for k in fields)

    rows = np.abs(added.attention_heads[:, :, q] - fresh.attention_heads[:, :, f]).max()
    return {
        "rows": float(rows),
        "probs": worst("top_probs", "tracked_probs"),
        "nats": worst("entropy", "kl_to_final"),
    }


def measure(model: tw.Model, n_tokens: int, n_clicks: int) -> dict:
    case = make_case(model, n_tokens)
    regions = regions_for(n_tokens)
    run = model.capture(case, regions, progress=False, keep_cache=True)
    queries = set(run.queries.values())
    spread = np.linspace(n_tokens // 10, n_tokens - 3, n_clicks).astype(int).tolist()
    positions = [p if p not in queries else p + 1 for p in spread]
    times: dict[str, list[tuple[float, float]]] = {"cache": [], "pass": [], "capture": []}
    worst = {"cache": dict.fromkeys(("rows", "probs", "nats"), 0.0)}
    worst["pass"] = dict(worst["cache"])
    methods = set()
    for position in positions:
        cached = Explorer(run, model=model)
        seconds, reply = click(cached, position)
        times["cache"].append(seconds)
        methods.add(reply["method"])
        uncached = Explorer(run, model=NoCache(model))
        seconds, reply = click(uncached, position)
        times["pass"].append(seconds)
        methods.add(reply["method"])
        spec = {**regions, "query_positions": [*regions["query_positions"], position]}
        seconds, fresh = timed(lambda spec=spec: model.capture(case, spec, progress=False))
        times["capture"].append(seconds)
        for method, view in (("cache", cached), ("pass", uncached)):
            found = differences(view.run, fresh, f"pos:{position}")
            worst[method] = {k: max(v, found[k]) for k, v in worst[method].items()}
        # the next click reads the cache again (the no-cache run released it)
        model.capture(case, regions, progress=False, keep_cache=True)
    if methods != {"cache", "pass"}:
        raise RuntimeError(f"expected one cached and one uncached answer per click, got {methods}")
    return {
        "T": n_tokens,
        "positions": positions,
        "wall": {mode: statistics.median(v[0] for v in values) for mode, values in times.items()},
        "cpu": {mode: statistics.median(v[1] for v in values) for mode, values in times.items()},
        "diff": worst,
        "cache_mb": model.kept_cache_bytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--clicks", type=int, default=3, help="clicked positions per length")
    args = parser.parse_args()
    import torch

    model = tw.load_model()
    print(
        f"{model.model_id}, {model.dtype}, {model.device}, torch threads "
        f"{torch.get_num_threads()}; 8 captured queries, top-10 lens, 4 tracked tokens"
    )
    print(
        f"{'T':>6} {'':>5} {'cache (s)':>10} {'pass (s)':>9} {'capture (s)':>12} "
        f"{'capture/cache':>14} {'kept cache':>11}"
    )
    results = [measure(model, n_tokens, args.clicks) for n_tokens in args.lengths]
    for r in results:
        for clock in ("wall", "cpu"):
            m = r[clock]
            line = (
                f"{r['T']:>6} {clock:>5} {m['cache']:>10.3f} {m['pass']:>9.2f} "
                f"{m['capture']:>12.2f} {m['capture'] / m['cache']:>13.1f}x"
            )
            print(line + (f" {r['cache_mb']:>7.1f} MiB" if clock == "wall" else ""))
        print(f"{'':>6} clicked positions {r['positions']}")
    print(
        "\nLargest |difference| from the fresh capture's clicked query (float32): rows over "
        "every layer and head, lens probabilities (top-k, tracked), lens entropy and KL in nats"
    )
    print(f"{'T':>6} {'answer':>7} {'rows':>9} {'probs':>9} {'nats':>9}")
    for r in results:
        for method in ("cache", "pass"):
            d = r["diff"][method]
            print(f"{r['T']:>6} {method:>7} {d['rows']:>9.1e} {d['probs']:>9.1e} {d['nats']:>9.1e}")


if __name__ == "__main__":
    main()
