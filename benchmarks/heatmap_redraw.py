"""Heatmap redraw time and explorer payload size for a T=2048 run.

Usage: python benchmarks/heatmap_redraw.py [--tokens 2048] [--changes 60]

1. Bytes of the default explorer payload (`run_payload`) for a synthetic run
   shaped like the embedded model (30 layers x 9 heads) with 8 queries.
   Target: <= 4 MB.
2. Redraw after a layer change, in headless Chromium (/usr/bin/chromium) on an
   exported page with no kernel. Target: median <= 16 ms. Each setting is
   measured twice in the same browser, side by side (in alternating rounds):
   with the overview panels
   beside the text (the layer x token map, the layer x region matrix and the
   ranked tokens, `overview=True`, the default) and without them
   (`overview=False`: hidden, they compute nothing, which is the view as it
   was before they existed). Two figures per setting, each over `--changes`
   changes to a random other layer:
     - sync: the slider's input event (our handler recolours the spans) plus
       the style recalculation and layout it causes, forced by reading layout;
     - frame: from the input event until the next frame has been produced
       (requestAnimationFrame, then a task), so it includes paint and up to
       one vsync interval of waiting; printed next to an idle frame (the same
       wait with nothing changed) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/

from tealeaves_widgets.widgets import Explorer, TokenHeatmap
from tealeaves_widgets.widgets.export import page_html
from tealeaves_widgets.widgets.wire import payload_bytes, run_payload
from tests.helpers.synthetic import synthetic_run

CHROMIUM = os.environ.get("TEALEAVES_CHROMIUM", "/usr/bin/chromium")  # as tests/browser
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]

MEASURE = """
async ({changes, scale, head}) => {
  const slider = document.querySelector('input[type=range]');
  const pick = (selector, value) => {
    const el = document.querySelector(selector);
    el.value = value;
    el.dispatchEvent(new Event('change', {bubbles: true}));
  };
  pick('.tw-scale-select', scale);
  pick('.tw-head-select', head);
  const spans = Array.from(document.querySelectorAll('.tw-tok'));
  const nLayers = Number(slider.max) + 1;
  const nextFrame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  let layer = Number(slider.value);
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const sync = [], frame = [], idle = [];
  for (let i = 0; i < 20; i++) {  // a frame with nothing to do: the vsync wait alone
    await nextFrame();
    const t0 = performance.now();
    await nextFrame();
    idle.push(performance.now() - t0);
  }
  for (let i = 0; i < changes; i++) {
    let next = layer;
    while (next === layer) next = Math.floor(random() * nLayers);
    layer = next;
    const t0 = performance.now();
    slider.value = String(layer);
    slider.dispatchEvent(new Event('input', {bubbles: true}));
    document.body.offsetHeight;  // force style recalculation and layout
    const t1 = performance.now();
    await nextFrame();
    const t2 = performance.now();
    sync.push(t1 - t0);
    frame.push(t2 - t0);
  }
  const ranked = Array.from(document.querySelectorAll('.tw-top-list li'))
    .filter((li) => li.offsetParent !== null && li.style.visibility !== 'hidden').length;
  return {sync, frame, idle, tokens: spans.length, ranked};
}
"""


def payload_report(run) -> dict:
    payload = run_payload(run)
    parts = {key: payload_bytes(value) for key, value in payload.items()}
    return {
        "total": payload_bytes(payload),
        "parts": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
        "queries_with_head_rows": sum(rows is not None for rows in payload["heads"]),
    }


SETTINGS = [
    (TokenHeatmap, "log-layer", "avg"),  # the default: a median per layer change
    (TokenHeatmap, "log-layer", "4"),
    (TokenHeatmap, "linear", "avg"),
    (TokenHeatmap, "layer", "avg"),
    (TokenHeatmap, "linear", "4"),
    (TokenHeatmap, "log", "avg"),
    (Explorer, "linear", "avg"),  # also moves the curve cursor and the lens row
    (Explorer, "log-layer", "avg"),
]
OVERVIEW = (False, True)
"""Each setting without and with the overview panels."""
ROUNDS = 3
"""Without and with alternate in this many rounds, so that a change in the
machine's load (other processes on a shared machine) falls on both alike."""


def redraw_report(run, changes: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    results = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = {}
        for widget in (TokenHeatmap, Explorer):
            for overview in OVERVIEW:
                path = Path(folder) / f"{widget.__name__}-{overview}.html"
                path.write_text(page_html(widget(run, overview=overview)), encoding="utf-8")
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                pages[widget, overview] = page
                page.goto(path.as_uri())
                page.wait_for_function(
                    f"document.querySelectorAll('.tw-tok').length === {run.n_tokens}"
                    " && document.querySelector('.tw-backdrop').width > 1",
                    timeout=60_000,
                )
        # without and with the overview alternately, setting by setting
        for widget, scale, head in SETTINGS:
            measured: dict[bool, dict[str, list]] = {o: {} for o in OVERVIEW}
            for _ in range(ROUNDS):
                for overview in OVERVIEW:
                    part = measure(pages[widget, overview], changes // ROUNDS, scale, head)
                    if overview and part["ranked"] != 10:
                        raise RuntimeError(
                            f"the overview's ranked list shows {part['ranked']} tokens, not 10"
                        )
                    for key in ("sync", "frame", "idle"):
                        measured[overview].setdefault(key, []).extend(part[key])
                    measured[overview]["tokens"] = part["tokens"]
            for overview in OVERVIEW:
                results.append(summary(measured[overview], widget, scale, head, overview))
                results[-1]["chromium"] = browser.version
        browser.close()
    return results


def measure(page, changes: int, scale: str, head: str) -> dict:
    return page.evaluate(MEASURE, {"changes": changes, "scale": scale, "head": head})


def summary(measured: dict, widget, scale: str, head: str, overview: bool) -> dict:
    changes = len(measured["sync"])
    return {
        "widget": widget.__name__,
        "scale": scale,
        "head": head,
        "overview": overview,
        "sync_median_ms": statistics.median(measured["sync"]),
        "sync_p90_ms": sorted(measured["sync"])[int(0.9 * changes)],
        "frame_median_ms": statistics.median(measured["frame"]),
        "idle_frame_median_ms": statistics.median(measured["idle"]),
        "tokens": measured["tokens"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    run = synthetic_run(n_tokens=args.tokens, n_queries=args.queries)
    started = time.perf_counter()
    payload = payload_report(run)
    payload["seconds"] = time.perf_counter() - started
    redraw = redraw_report(run, args.changes)
    if args.json:
        print(json.dumps({"payload": payload, "redraw": redraw}, indent=2))
        return 0

    print(
        f"run: T={run.n_tokens}, {run.n_layers} layers x {run.n_heads} heads, "
        f"{run.n_queries} queries (synthetic)"
    )
    print(
        f"payload: {payload['total'] / 1e6:.2f} MB (target <= 4 MB), "
        f"per-head rows for {payload['queries_with_head_rows']}/{run.n_queries} queries, "
        f"built in {payload['seconds']:.2f} s"
    )
    for key, size in list(payload["parts"].items())[:6]:
        print(f"  {key:<14} {size / 1e6:7.3f} MB")
    print(
        f"redraw after a layer change, {args.changes} changes, {redraw[0]['chromium']}; "
        "each setting without, then with the overview panels:"
    )
    for row in redraw:
        print(
            f"  {row['widget']:<12} scale={row['scale']:<9} head={row['head']:<3} "
            f"overview={'on ' if row['overview'] else 'off'}  "
            f"sync median {row['sync_median_ms']:5.2f} ms (p90 {row['sync_p90_ms']:5.2f})  "
            f"to next frame median {row['frame_median_ms']:5.2f} ms "
            f"(an idle frame: {row['idle_frame_median_ms']:5.2f} ms)"
        )
    worst = max(row["sync_median_ms"] for row in redraw)
    print(
        f"target median <= 16 ms: {'met' if worst <= 16 else 'NOT met'} (worst sync median "
        f"{worst:.2f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
