"""The headline of notebooks/compare_variants.ipynb before and after the sink
was taken out (issue 11): the largest changes and the first token's mass.

    python benchmarks/compare_variants_sink.py            # captures the 8 cases (~30 s on 2 CPUs)
    python benchmarks/compare_variants_sink.py --runs DIR # or reads DIR/baseline, DIR/reworded

"Before" is the comparison as the package made it until then: raw attention
mass, nothing excluded, significant = the paired interval excludes 0. "After"
is `tw.compare`'s defaults now: share of the attention without the first token
(each token in its innermost region), significant also needs |delta| >=
min_effect, and changes that are mostly sink reassignment are set aside.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

import tealeaves_widgets as tw
from tealeaves_widgets.batch.notebooks import example_path

COLUMNS = ["query", "region", "layer", "mass", "delta", "delta_low", "delta_high", "significant"]


def notebook_cases() -> tuple[dict, dict]:
    """The notebook's cases (per variant) and regions, from its own cell."""
    cells = json.loads(Path(example_path("compare_variants")).read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "questions = [" in "".join(c["source"]))
    scope: dict = {"tw": tw}
    exec(source, scope)  # the notebook's own definitions, not a copy
    return scope["cases"], scope["regions"]


def runsets(directory: str | None) -> dict[str, tw.RunSet]:
    if directory:
        return {name: tw.open_runs(Path(directory) / name) for name in ("baseline", "reworded")}
    cases, regions = notebook_cases()
    model = tw.load_model()
    return {name: model.capture_many(cases[name], regions, progress=False) for name in cases}


def largest(table: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """The report's rule: per query and region the layer of its largest |delta|, largest first."""
    table = table.loc[table["variant"] == "reworded"].dropna(subset=["delta"])
    table = table.assign(size=table["delta"].abs())
    peaks = table.loc[table.groupby(["query", "region"])["size"].idxmax()]
    return peaks.sort_values("size", ascending=False).head(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", help="folder with baseline/ and reworded/ run directories")
    parser.add_argument("--save", help="save the captured runs into this folder")
    args = parser.parse_args()
    sets = runsets(args.runs)
    if args.save:
        for name, runs in sets.items():
            runs.save(Path(args.save) / name)
    pd.set_option("display.width", 200)
    after = tw.compare(sets)
    before = after.with_options(normalize="raw", exclude=None, min_effect=0)
    print("BEFORE: raw mass, nothing excluded; top 3 changes")
    print(largest(before.deltas)[COLUMNS].round(4).to_string(index=False))
    deltas = after.deltas
    flagged = deltas["sink_reassigned"].fillna(False).astype(bool)
    print("\nAFTER: share without the first token; top 3 changes not set aside")
    print(largest(deltas.loc[~flagged])[[*COLUMNS, "sink_shift"]].round(4).to_string(index=False))
    print("\nAFTER: top 3 changes set aside as mostly sink reassignment")
    extra = ["sink_shift", "row_delta", "token_delta"]
    print(largest(deltas.loc[flagged])[[*COLUMNS, *extra]].round(4).to_string(index=False))
    print("\nFirst token's mass (mean over the 8 cases), per layer")
    sink = after.excluded_mass
    for query in after.queries:
        for name in after.names:
            curve = sink.loc[(sink["variant"] == name) & (sink["query"] == query), "mass"]
            print(f"  {query:10s} {name:9s} " + " ".join(f"{v:.2f}" for v in curve))


if __name__ == "__main__":
    main()
