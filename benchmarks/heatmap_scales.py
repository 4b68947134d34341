"""How much of the prompt each heatmap colour scale shows, read back from the
pixels the explorer draws in headless Chromium.

Usage: python benchmarks/heatmap_scales.py [--tokens 2000] [--synthetic]
           [--cache DIR] [--screenshots DIR] [--json]

Runs: (a) the quickstart's (the embedded model, `tw.load_model()`, on the
case and regions of tealeaves_widgets/prompt/examples.py); (b) a long prompt:
the same system prompt and question after a user text of ticket notes, made
`--tokens` long (default 2000) on the embedded model, or, with --synthetic,
tests/helpers/synthetic.py's `synthetic_run(n_tokens=2048)` (no model).
`--cache DIR` keeps the captured runs there and reuses them.

For each run, in JupyterLab 4's light and dark themes (its --jp-* variables
on an exported page, tests/helpers/themes.py), for each scale (the menu's and
the trial ones of js/src/colour.ts), at every layer and for every query: the
colour drawn behind each token is read from the backdrop canvas, mapped back
to its palette index (0..255), and counted. Printed per scale: the share of
the tokens the query sees (the masked first token left out) drawn above 5% of
the colour range (index >= 13), its minimum over the layers and its median,
for the default query "final", and the minimum over every query and layer;
then the median share above half the range (the dark shades), which tells a
scale that shows structure from one that colours everything.
Target at the default scale: at least 25% at every layer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/

from tealeaves_widgets.core.run import Run
from tealeaves_widgets.widgets import Explorer
from tealeaves_widgets.widgets.export import page_html
from tests.helpers.themes import themed

CHROMIUM = os.environ.get("TEALEAVES_CHROMIUM", "/usr/bin/chromium")  # as tests/browser
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
SCALES = ["log-layer", "linear", "log", "layer"]  # the menu's, js/src/colour.ts SCALES
TRIALS = ["log3-layer", "log5-layer", "p99-layer", "p90-layer", "rank-layer"]
THRESHOLD = 13  # palette index above 5% of the range (0.05 * 255 = 12.75)
TARGET = 0.25

# Per query, scale and layer: the palette index read back behind each token
# the query sees (first token masked), as shares above THRESHOLD.
MEASURE = """
async ({scales, queries, threshold}) => {
  const root = document.querySelector('.tw-heatmap');
  const view = root.tealeavesView.heatmap;
  const canvas = root.querySelector('.tw-backdrop');
  const spans = Array.from(root.querySelectorAll('.tw-tok'));
  const slider = root.querySelector('input[type=range]');
  const querySelect = root.querySelector('.tw-query-select');
  const nLayers = Number(slider.max) + 1;
  const box = canvas.getBoundingClientRect();
  const k = canvas.width / box.width;
  const centres = spans.map((span) => {
    const r = span.getClientRects()[0];
    const x = Math.floor((r.left + r.width / 2 - box.left) * k);
    return [x, Math.floor((r.top + r.height / 2 - box.top) * k)];
  });
  const context = canvas.getContext('2d');
  const out = {};
  let mismatches = 0;
  for (const [query, pos] of queries) {
    querySelect.value = query;
    querySelect.dispatchEvent(new Event('change', {bubbles: true}));
    for (const scale of scales) {
      view.setScale(scale);
      const colours = view.drawn.palette.colours;
      const lookup = new Map(colours.map((c, i) => [c.slice(4, -1).replace(/ /g, ''), i]));
      const shares = [];
      for (let layer = 0; layer < nLayers; layer++) {
        slider.value = String(layer);
        slider.dispatchEvent(new Event('input', {bubbles: true}));
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let above = 0;
        let dark = 0;
        for (let i = 1; i <= pos; i++) {  // token 0, the sink, is masked
          const [x, y] = centres[i];
          const o = (y * canvas.width + x) * 4;
          const rgb = `${data[o]},${data[o + 1]},${data[o + 2]}`;
          const index = data[o + 3] === 0 ? 0 : lookup.get(rgb) ?? -1;
          if (index !== view.indexOf(i)) mismatches++;
          if (index >= threshold) above++;
          if (index >= 128) dark++;
        }
        shares.push([above / pos, dark / pos]);
      }
      out[`${query}|${scale}`] = shares;
    }
  }
  return {out, mismatches, background: getComputedStyle(root).backgroundColor};
}
"""


def quickstart_run(model) -> Run:
    from tealeaves_widgets.prompt.examples import EXAMPLE_CASE, EXAMPLE_REGIONS

    return model.capture(EXAMPLE_CASE, EXAMPLE_REGIONS)


def long_run(model, tokens: int) -> Run:
    """The quickstart's system prompt and question after a user text of ticket
    notes, about `tokens` tokens long (at most)."""
    import tealeaves_widgets as tw
    from tealeaves_widgets.prompt.examples import EXAMPLE_REGIONS, SYSTEM_PROMPT, USER_MESSAGE

    rng = random.Random(7)
    services = ["storage", "compute", "billing", "DNS", "the status page", "backups", "login"]
    cities = ["Paris", "Oslo", "Lyon", "Bergen"]
    notes = [
        f"- Ticket {1000 + i}: {rng.choice(services)} in {rng.choice(cities)} was slow for "
        f"{rng.randint(2, 90)} minutes; the customer was told to retry."
        for i in range(2000)
    ]

    def case(n: int):
        text = "Here is my notes file from last month:\n" + "\n".join(notes[:n])
        return tw.Case(system=SYSTEM_PROMPT, user=f"{text}\n\n{USER_MESSAGE}")

    def length(n: int) -> int:
        return len(model.prepare(case(n), EXAMPLE_REGIONS)[0].token_ids)

    low, high = 1, min(len(notes), tokens // 8)  # the most notes that fit in `tokens`
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if length(middle) <= tokens else (low, middle - 1)
    return model.capture(case(low), EXAMPLE_REGIONS)


def runs(args) -> dict[str, tuple[Run, str]]:
    """name -> (run, how it was made)."""
    import tealeaves_widgets as tw
    from tests.helpers.synthetic import synthetic_run

    cache = Path(args.cache) if args.cache else None
    model = None
    made: dict[str, tuple[Run, str]] = {}
    wanted = {"quickstart": "embedded model, prompt/examples.py"}
    wanted["long"] = (
        "synthetic_run(n_tokens=2048)"
        if args.synthetic
        else f"embedded model, ticket notes + the quickstart question, <= {args.tokens} tokens"
    )
    for name, how in wanted.items():
        stem = f"{name}-synthetic" if name == "long" and args.synthetic else name
        path = cache / f"{stem}.tlrun" if cache else None
        if path is not None and path.exists():
            made[name] = (tw.open_run(path), how)
            continue
        started = time.perf_counter()
        if name == "long" and args.synthetic:
            run = synthetic_run(n_tokens=2048)
        else:
            model = model or tw.load_model()
            run = quickstart_run(model) if name == "quickstart" else long_run(model, args.tokens)
        print(f"captured {name}: {run.n_tokens} tokens in {time.perf_counter() - started:.1f} s")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            run.save(path)
        made[name] = (run, how)
    return made


def measure(made: dict[str, tuple[Run, str]], scales: list[str], shots: Path | None) -> dict:
    from playwright.sync_api import sync_playwright

    results: dict = {}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, (run, _) in made.items():
            page_source = page_html(Explorer(run))
            for theme in ("light", "dark"):
                path = Path(folder) / f"{name}-{theme}.html"
                path.write_text(themed(page_source, theme), encoding="utf-8")
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(path.as_uri())
                page.wait_for_function(
                    f"document.querySelectorAll('.tw-heatmap .tw-tok').length === {run.n_tokens}"
                    " && document.querySelector('.tw-backdrop').width > 1",
                    timeout=60_000,
                )
                if shots is not None:
                    screenshots(page, run, shots / f"{name}-{theme}")
                queries = [[q, int(pos)] for q, pos in run.queries.items()]
                measured = page.evaluate(
                    MEASURE, {"scales": scales, "queries": queries, "threshold": THRESHOLD}
                )
                for key, shares in measured["out"].items():
                    query, scale = key.split("|")
                    results.setdefault((name, theme, scale), {})[query] = shares
                results[(name, theme, "_check")] = {
                    "mismatches": measured["mismatches"],
                    "background": measured["background"],
                }
                page.close()
        results["chromium"] = browser.version
        browser.close()
    return results


def screenshots(page, run: Run, stem: Path) -> None:
    """The explorer at the default scale and at the old one (linear), middle layer."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    view = page.locator(".tw-heatmap")
    for scale in ("log-layer", "linear"):
        page.evaluate(
            "(s) => document.querySelector('.tw-heatmap').tealeavesView.heatmap.setScale(s)", scale
        )
        view.screenshot(path=f"{stem}-{scale}.png")
    page.evaluate(
        "() => document.querySelector('.tw-heatmap').tealeavesView.heatmap.setScale('log-layer')"
    )


def summary(results: dict, made: dict, scales: list[str]) -> list[dict]:
    rows = []
    for scale in scales:
        for name in made:
            for theme in ("light", "dark"):
                per_query = results[(name, theme, scale)]
                final = [above for above, _ in per_query["final"]]
                dark = [half for _, half in per_query["final"]]
                rows.append(
                    {
                        "scale": scale,
                        "run": name,
                        "theme": theme,
                        "final_min": min(final),
                        "final_median": statistics.median(final),
                        "all_queries_min": min(a for s in per_query.values() for a, _ in s),
                        "final_median_above_half": statistics.median(dark),
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="length of the long prompt")
    parser.add_argument("--synthetic", action="store_true", help="long prompt: synthetic_run")
    parser.add_argument("--cache", help="folder to keep and reuse the captured runs")
    parser.add_argument("--screenshots", help="folder for screenshots of the explorer")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    made = runs(args)
    scales = SCALES + TRIALS
    shots = Path(args.screenshots) if args.screenshots else None
    results = measure(made, scales, shots)
    rows = summary(results, made, scales)
    if args.json:
        print(json.dumps({"rows": rows, "chromium": results["chromium"]}, indent=2))
        return 0
    for name, (run, how) in made.items():
        queries = list(run.queries)
        print(f"{name}: T={run.n_tokens}, {run.n_layers} layers, queries {queries} ({how})")
    for name in made:
        for theme in ("light", "dark"):
            check = results[(name, theme, "_check")]
            print(
                f"  {name} {theme}: background {check['background']}, "
                f"{check['mismatches']} tokens read back with another index than drawn"
            )
    print(
        f"\nshare of tokens above 5% of the colour range, query 'final' (min / median over "
        f"layers) and the min over every query and layer; Chromium {results['chromium']}\n"
    )
    header = "| scale |" + "".join(f" {n} {t} |" for n in made for t in ("light", "dark"))
    print(header)
    print("|---|" + "---|" * (2 * len(made)))
    for scale in scales:
        cells = [
            f" {r['final_min']:.0%} / {r['final_median']:.0%} (all {r['all_queries_min']:.0%}) |"
            for r in rows
            if r["scale"] == scale
        ]
        print(f"| {scale}{' (default)' if scale == SCALES[0] else ''} |" + "".join(cells))
    print(
        "\nshare of tokens above half the colour range (the dark end: a page of them reads "
        "as saturated), query 'final', median over layers\n"
    )
    print("| scale |" + "".join(f" {n} |" for n in made))
    print("|---|" + "---|" * len(made))
    for scale in scales:
        cells = [
            f" {r['final_median_above_half']:.0%} |"
            for r in rows
            if r["scale"] == scale and r["theme"] == "light"
        ]
        print(f"| {scale} |" + "".join(cells))
    default = [r for r in rows if r["scale"] == SCALES[0]]
    worst = min(r["all_queries_min"] for r in default)
    verdict = "met" if worst >= TARGET else "NOT met"
    print(f"\ntarget: >= {TARGET:.0%} at every layer, default scale: {verdict} (worst {worst:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
