"""`VariantDiff`: a `Comparison` in one view. The baseline and one variant side
by side with their text aligned (a token diff) and each token shaded by the
change of the attention it gets; per region, the cooking curves of every
variant overlaid (baseline dashed); the delta table of `Comparison.deltas`
and the tracked-token deltas of `Comparison.lens_deltas`.

Everything is computed here, in Python, from the comparison's own tables, and
sent once (`diff_payload`): the front end only indexes and draws, so a value
on screen is the value in `cmp.deltas`. Token attention is sent per run;
with RunSets, the runs of as many cases as fit the byte budget, one case shown
at a time (token positions differ between cases).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import traitlets as t

from ..core.compare import Comparison, layer_groups, runs_of
from ..core.masses import FIRST, Exclusion, excluded_tokens
from ..core.run import Run
from ..errors import ArgumentTypeError, WireError
from ..present.palette import union_region_colors
from ._bundle import esm
from .base import HiddenRegions, TraitSelectionError, View, _reject_unknown
from .schema import SCHEMA_VERSION, AlignmentEntry, DiffCase, DiffPayload, DiffRun, TableRow
from .tables import encode_grids, grid
from .wire import DEFAULT_MAX_BYTES, encode_array, payload_bytes, token_gaps, token_regions

__all__ = ["DIFF_OPS", "DiffOptions", "VariantDiff", "diff_payload"]

DIFF_OPS = ("equal", "delete", "insert")
"""Alignment steps on the wire, by code 0, 1, 2 (`TokenAlignment.steps`)."""
TABLE_COLUMNS = (
    "mass",
    "mass_low",
    "mass_high",
    "delta",
    "delta_low",
    "delta_high",
    "rel_change",
    "seed_sd",
    "n",
    "sink_shift",
    "row_delta",
)
TABLE_FLAGS = ("significant", "above_noise", "sink_reassigned")
"""Flag columns of `Comparison.deltas` on the wire (int8: 1, 0, -1 for NA)."""
LENS_COLUMNS = (
    "rank",
    "rank_median",
    "rank_delta",
    "rank_delta_low",
    "rank_delta_high",
    "prob",
    "prob_delta",
    "prob_delta_low",
    "prob_delta_high",
    "prob_rel_change",
)


@dataclass(frozen=True)
class DiffOptions:
    """What `diff_payload` sends and how many bytes it may use."""

    max_bytes: int = 2 * DEFAULT_MAX_BYTES
    """Budget of the payload. The tables and curves must fit; cases' token
    attention is added case by case while the total stays within it."""
    cases: tuple[int, ...] | None = None
    """Cases (run indices of the RunSets) whose tokens are sent, in this
    order; None: every case, in order, while they fit."""
    attention_dtype: str = "float16"
    """Dtype of the attention rows: "float16" or "float32"."""


def _n_cases(cmp: Comparison) -> int:
    """Cases the token view can show: the shortest RunSet's length (1 with runs only)."""
    lengths = [len(v) for v in cmp.variants.values() if not isinstance(v, Run)]
    return min(lengths) if lengths else 1


CASE_TEXT_CHARS = 60
"""Characters of a case's user message its label shows (in the case selector)."""


def _case_labels(cmp: Comparison, n_cases: int) -> list[str]:
    """What the case selector shows for each case: its user message (cut to
    `CASE_TEXT_CHARS`, on one line), after its name when it has one of its own."""
    sets = [v for v in cmp.variants.values() if not isinstance(v, Run)]
    if not sets:
        return ["the runs"]
    first = sets[0]
    labels = []
    for i in range(n_cases):
        seed = first.seeds[i]
        name = first.labels[i]
        text = _user_text(first.runs[i].case)
        label = text if not name or name == f"case{i}" else f"{name}: {text}" if text else name
        labels.append(label + ("" if seed is None else f" (seed {seed})"))
    return labels


def _user_text(case: dict) -> str:
    """The (last) user message of a run's case dict, on one line and cut short."""
    text = case.get("user")
    if text is None:
        users = [
            m.get("content", "") for m in case.get("messages") or [] if m.get("role") == "user"
        ]
        text = users[-1] if users else ""
    line = " ".join(str(text).split())
    return line if len(line) <= CASE_TEXT_CHARS else line[: CASE_TEXT_CHARS - 1] + "\u2026"


def _is_index(value: object, n: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n


def _run_entry(run: Run, cmp: Comparison, dtype: str) -> DiffRun:
    """Tokens, regions, query positions and attention rows of one run."""
    own = token_regions(run)
    to_cmp = np.array([cmp.regions.index(name) for name in run.regions] + [-1], dtype=np.int16)
    rows = np.stack([run.attention[:, run.query_index(q)] for q in cmp.queries], axis=1)
    return {
        "tokens": list(run.tokens),
        "gaps": token_gaps(run),
        "token_region": encode_array(to_cmp[own]),  # -1 indexes the trailing -1
        "query_pos": [int(run.queries[q]) for q in cmp.queries],
        "attention": encode_array(rows.astype(dtype)),
    }


def _alignment_entry(cmp: Comparison, name: str, case: int) -> AlignmentEntry:
    steps = cmp.alignment(name, case).steps()
    ops = np.array([DIFF_OPS.index(op) for op, _, _ in steps], dtype=np.int8)
    return {
        "op": encode_array(ops),
        "baseline_pos": encode_array(np.array([b for _, b, _ in steps], dtype=np.int32)),
        "variant_pos": encode_array(np.array([v for _, _, v in steps], dtype=np.int32)),
    }


def _tables(cmp: Comparison) -> tuple[list[TableRow], dict, dict, dict | None]:
    """Rows, curves (every layer), the delta table and the lens deltas (the
    comparison's own layers or bands), as dense arrays."""
    names, queries, regions = cmp.names, cmp.queries, cmp.regions
    labels, groups = layer_groups(cmp.options.layers, cmp.n_layers)
    rows: list[TableRow] = [
        {"label": label, "layers": [int(i) for i in g]}
        for label, g in zip(labels, groups, strict=True)
    ]
    per_layer = cmp if cmp.options.layers is None else cmp.with_options(layers=None)
    variant_query = [("variant", names), ("query", queries)]
    curves = encode_grids(
        per_layer.deltas,
        [*variant_query, ("layer", range(cmp.n_layers)), ("region", regions)],
        ("mass", "mass_low", "mass_high"),
    )
    table = encode_grids(
        cmp.deltas,
        [*variant_query, ("region", regions), ("layer", labels)],
        TABLE_COLUMNS,
        TABLE_FLAGS,
    )
    lens = None
    if cmp.tracked_tokens:
        lens = encode_grids(
            cmp.lens_deltas,
            [*variant_query, ("token", cmp.tracked_tokens), ("layer", labels)],
            LENS_COLUMNS,
            ("significant",),
        )
    return rows, curves, table, lens


def _sink(cmp: Comparison) -> dict:
    """Per variant, query and layer (mean over units, as `cmp.excluded_mass`):
    the first token's attention ("first", the sink) and the excluded tokens'
    ("excluded"), fractions of the whole attention row."""
    per_layer = cmp if cmp.options.layers is None else cmp.with_options(layers=None)
    keys = [("variant", cmp.names), ("query", cmp.queries), ("layer", range(cmp.n_layers))]
    excluded = per_layer.excluded_mass
    exclusion = cmp.options.mass_options.exclusion
    first = excluded if exclusion == Exclusion(first=True) else None
    if first is None:
        first = per_layer.with_options(exclude=FIRST).excluded_mass
    return {
        "first": encode_array(grid(first, keys, "mass")),
        "excluded": encode_array(grid(excluded, keys, "mass")),
    }


def _first_excluded(cmp: Comparison) -> bool:
    """True when every run leaves its first token out (by name or in an excluded region)."""
    exclusion = cmp.options.mass_options.exclusion
    runs = [run for v in cmp.variants.values() for run in runs_of(v)]
    return exclusion.first or all(
        run.n_tokens and excluded_tokens(run, exclusion)[0] for run in runs
    )


def diff_payload(cmp: Comparison, options: DiffOptions | None = None) -> DiffPayload:
    """Everything the variant diff renders, as one synced value.

    Raises `WireError` when the tables and the first case do not fit in
    `options.max_bytes`.
    """
    if not isinstance(cmp, Comparison):
        raise ArgumentTypeError(
            f"VariantDiff expects a tealeaves_widgets.Comparison (tw.compare({{...}})), got "
            f"{type(cmp).__name__}."
        )
    options = options or DiffOptions()
    if options.attention_dtype not in ("float16", "float32"):
        raise WireError(f"attention_dtype={options.attention_dtype!r}; use 'float16' or 'float32'.")
    all_runs = [run for v in cmp.variants.values() for run in runs_of(v)]
    base = all_runs[0]
    n_cases = _n_cases(cmp)
    colors = union_region_colors(all_runs, cmp.regions)
    opts = cmp.options
    rows, curves, table, lens = _tables(cmp)
    payload: DiffPayload = {
        "schema_version": SCHEMA_VERSION,
        "kind": "variant_diff",
        "model": {"model_id": str(base.model_info.get("model_id", "unknown model"))},
        "n_layers": cmp.n_layers,
        "variants": cmp.names,
        "sets": [not isinstance(v, Run) for v in cmp.variants.values()],
        "queries": cmp.queries,
        "default_query": cmp.queries.index(cmp.query_name()),
        "regions": [{"name": name, "color": colors[name]} for name in cmp.regions],
        "tracked_tokens": cmp.tracked_tokens,
        "options": {
            "normalize": opts.normalize,
            "level": opts.level,
            "interval": opts.interval,
            "excluded": opts.mass_options.exclusion.describe(),
            "first_excluded": _first_excluded(cmp),
            "share_level": opts.mass_options.share_level,  # type: ignore[typeddict-item]
            "min_effect": float(opts.min_effect),
        },
        "region_labels": [cmp.region_labels[name] for name in cmp.regions],
        "rows": rows,
        "curves": curves,
        "table": table,
        "lens": lens,
        "sink": _sink(cmp),
        "case_labels": _case_labels(cmp, n_cases),
        "cases": [],
        "runs": [],
        "bytes": 0,
    }
    wanted = list(range(n_cases)) if options.cases is None else list(options.cases)
    if not wanted or not all(_is_index(c, n_cases) for c in wanted):
        raise WireError(
            f"DiffOptions.cases={options.cases!r}: give case indices within 0..{n_cases - 1}."
        )
    seen: dict[int, int] = {}  # id(run) -> index in payload["runs"]
    for case in wanted:
        runs_before, seen_before = len(payload["runs"]), dict(seen)
        entry: DiffCase = {"case": case, "runs": [], "alignments": []}
        for name in cmp.names:
            run = cmp.run_of(name, case)
            if id(run) not in seen:
                seen[id(run)] = len(payload["runs"])
                payload["runs"].append(_run_entry(run, cmp, options.attention_dtype))
            entry["runs"].append(seen[id(run)])
            entry["alignments"].append(
                None if name == cmp.baseline else _alignment_entry(cmp, name, case)
            )
        payload["cases"].append(entry)
        used = payload_bytes(payload)
        if used > options.max_bytes:
            if len(payload["cases"]) == 1:
                raise WireError(
                    f"The comparison needs {used:,} bytes with one case, over max_bytes="
                    f"{options.max_bytes:,}. Raise DiffOptions.max_bytes, or use "
                    'attention_dtype="float16".'
                )
            payload["cases"].pop()
            del payload["runs"][runs_before:]
            seen = seen_before
            break
    payload["bytes"] = payload_bytes(payload)
    return payload


class VariantDiff(HiddenRegions, View):
    """A `Comparison` in one view: the baseline's and a variant's prompt side
    by side (shared text aligned, inserted and deleted text marked), each
    token shaded by the change of its attention at the selected layer and
    query; cooking curves per region with every variant overlaid (baseline
    dashed; with RunSets, the mean and its confidence band); the delta table
    (`cmp.deltas`, significant rows highlighted) and the tracked tokens
    (`cmp.lens_deltas`). `layer`, `query`, `variant`, `case` and the display
    options are synced with Python. `display(cmp)` shows one."""

    _esm = esm("variant_diff")

    payload = t.Dict().tag(sync=True)
    """The comparison on the wire (`diff_payload`); set at construction."""
    variant = t.Unicode("").tag(sync=True, echo_update=False)
    """Variant set against the baseline in the token view."""
    case = t.Int(0).tag(sync=True, echo_update=False)
    """Case (run index of the RunSets) of the token view."""
    scale = t.Enum(("linear", "layer"), default_value="linear").tag(sync=True, echo_update=False)
    """Token shading: one scale over every layer ("linear") or per layer ("layer")."""
    token_colour = t.Enum(("delta", "attention"), default_value="delta").tag(
        sync=True, echo_update=False
    )
    """Shade tokens by the change of attention (diverging) or by each side's own attention."""
    mask_sink = t.Bool(True).tag(sync=True, echo_update=False)
    """Leave the first token (the attention sink) out of the colour scale."""

    def __init__(
        self,
        comparison: Comparison,
        *,
        query: str | int | None = None,
        layer: int | None = None,
        variant: str | None = None,
        options: DiffOptions | None = None,
        **kwargs: Any,
    ) -> None:
        _reject_unknown(type(self), kwargs)
        payload = diff_payload(comparison, options)
        self._comparison = comparison
        self._cases = [entry["case"] for entry in payload["cases"]]
        super().__init__(
            payload=payload,
            query=comparison.query_name(query),
            layer=comparison.n_layers // 2 if layer is None else layer,
            variant=comparison.names[1] if variant is None else variant,
            case=self._cases[0],
            **kwargs,
        )

    @property
    def comparison(self) -> Comparison:
        """The comparison shown."""
        return self._comparison

    @property
    def _n_layers(self) -> int:
        return self._comparison.n_layers

    @property
    def _query_names(self) -> Sequence[str]:
        return self._comparison.queries

    @property
    def _region_names(self) -> Sequence[str]:
        return self._comparison.regions

    @t.validate("variant")
    def _check_variant(self, proposal: t.Bunch) -> str:
        variant, names = proposal["value"], self._comparison.names[1:]
        if variant not in names:
            raise TraitSelectionError(
                f"variant={variant!r} is not a variant compared with the baseline; use one of "
                f"{names}."
            )
        return variant

    @t.validate("case")
    def _check_case(self, proposal: t.Bunch) -> int:
        case = proposal["value"]
        if case not in self._cases:
            raise TraitSelectionError(
                f"case={case} is not in this view; its token view holds cases {self._cases} "
                "(pass DiffOptions(cases=...) or a larger max_bytes for others)."
            )
        return case
