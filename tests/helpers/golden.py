"""Golden fixtures of the wire: every payload and message built from small
hand-made results (no random numbers, so the bytes never change unless the
code does), written as JSON with each binary buffer in base64, together with
what Python decodes from them (`expect`).

`tests/unit/test_wire_golden.py` checks the committed files equal what the
code produces now; `js/test/golden.test.ts` decodes the same files with the
front end's decoders and compares with `expect`. So a key renamed on one side
fails a fast test on that side.

Regenerate after an intended change: `TEALEAVES_UPDATE_GOLDEN=1 python -m
pytest tests/unit/test_wire_golden.py`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

from tealeaves_widgets.core.ablation import Ablation
from tealeaves_widgets.core.attribution import Attribution
from tealeaves_widgets.core.compare import compare
from tealeaves_widgets.core.conditions import (
    HeadAblation,
    RegionKnockout,
    ValueAblation,
    as_conditions,
)
from tealeaves_widgets.core.generation import Generation
from tealeaves_widgets.core.head_atlas import METRIC_NAMES, METRICS, HeadAtlas
from tealeaves_widgets.core.head_gates import HeadGates
from tealeaves_widgets.core.head_grid import HeadGrid
from tealeaves_widgets.core.neurons import NeuronActivations, NeuronComparison
from tealeaves_widgets.core.prev_token import PrevTokenTest
from tealeaves_widgets.core.residuals import CrossLayerCosine, ResidualDecomposition
from tealeaves_widgets.core.run import Lens, QueryReading, RegionInfo, Run
from tealeaves_widgets.core.runset import RunSet
from tealeaves_widgets.core.states import Snapshots
from tealeaves_widgets.widgets import (
    ablation_payload,
    aggregate_payload,
    attribution_payload,
    cross_layer_payload,
    diff_payload,
    generation_payload,
    head_atlas_payload,
    head_gates_payload,
    head_grid_payload,
    neuron_compare_payload,
    neurons_payload,
    prev_token_payload,
    residual_payload,
    run_payload,
    snapshots_payload,
)
from tealeaves_widgets.widgets.aggregate import as_runsets
from tealeaves_widgets.widgets.schema import MESSAGE_VERSION, ErrorReply
from tealeaves_widgets.widgets.wire import (
    PayloadOptions,
    decode_array,
    head_rows_message,
    query_at_message,
)

GOLDEN = Path(__file__).resolve().parents[2] / "js" / "test" / "golden"
"""Where the fixtures live (read by vitest)."""

N_LAYERS, N_HEADS = 3, 2


def _rows(n_tokens: int, positions: list[int], shift: float) -> np.ndarray:
    """(layer, head, query, pos) causal rows: a sink on token 0 that fades
    with depth, the rest spread by a fixed ramp (exact in float16 at 1/64)."""
    rows = np.zeros((N_LAYERS, N_HEADS, len(positions), n_tokens), dtype=np.float32)
    for layer in range(N_LAYERS):
        for head in range(N_HEADS):
            for q, pos in enumerate(positions):
                weights = np.arange(1, pos + 2, dtype=np.float64) + head + shift
                weights[0] = (pos + 1) * (N_LAYERS - layer)  # the sink
                rows[layer, head, q, : pos + 1] = np.round(64 * weights / weights.sum()) / 64
    return rows


def golden_run(text_tokens: tuple[str, ...], shift: float = 0.0, name: str = "a") -> Run:
    """A run over `text_tokens`: "<|s|>" template tokens, a system part, a user
    part holding a nested "question" region; queries "answer" and "final"."""
    n = len(text_tokens)
    ends = np.cumsum([len(t) for t in text_tokens])
    offsets = np.stack([ends - [len(t) for t in text_tokens], ends], axis=1).astype(np.int64)
    text = "".join(text_tokens)
    template = [i for i, t in enumerate(text_tokens) if t.startswith("<|")]
    system = [i for i in range(1, 3)]
    user = [i for i in range(3, n) if i not in template]
    spans = {
        "template": (0, len(text)),
        "system": (int(offsets[1, 0]), int(offsets[2, 1])),
        "user": (int(offsets[user[0], 0]), int(offsets[user[-1], 1])),
        "question": (int(offsets[user[0], 0]), int(offsets[user[1], 1])),
    }
    members = {"template": template, "system": system, "user": user, "question": user[:2]}
    parents = {"question": "user"}
    regions = {
        key: RegionInfo(
            name=key,
            section="user" if key == "question" else key,
            char_span=spans[key],
            token_indices=np.asarray(members[key], dtype=np.int64),
            parent=parents.get(key),
            builtin=key != "question",
        )
        for key in ("template", "system", "user", "question")
    }
    queries = {"answer": n - 2, "final": n - 1}
    heads = _rows(n, list(queries.values()), shift)
    per_query = (N_LAYERS, len(queries))
    top_ids = (np.arange(N_LAYERS * 2 * 2).reshape(N_LAYERS, 2, 2) % 3 + 10).astype(np.int64)
    lens = Lens(
        top_ids=top_ids,
        top_probs=np.tile(np.array([0.5, 0.25], np.float32), (*per_query, 1)),
        entropy=np.linspace(2.0, 0.5, N_LAYERS * 2, dtype=np.float32).reshape(per_query),
        kl_to_final=np.array([[1.0, 1.5], [0.5, 0.25], [0.0, 0.0]], dtype=np.float32),
        tracked_ids=np.array([10, 13], dtype=np.int64),
        tracked_tokens=("Paris", " yes"),
        tracked_ranks=np.array(
            [[[3, 9], [2, 8]], [[2, 7], [1, 6]], [[1, 5], [1, 4]]], dtype=np.int64
        ),
        tracked_probs=np.array(
            [[[0.125, 0.0625], [0.25, 0.0625]], [[0.25, 0.125], [0.5, 0.125]], [[0.5, 0.25]] * 2],
            dtype=np.float32,
        ),
        vocab={10: " Paris", 11: " the", 12: "\n", 13: " yes"},
    )
    return Run(
        text=text,
        tokens=text_tokens,
        token_ids=np.arange(100, 100 + n, dtype=np.int64),
        offsets=offsets,
        regions=regions,
        queries=queries,
        attention=heads.mean(axis=1),
        attention_heads=heads,
        lens=lens,
        model_info={"model_id": f"golden-{name}", "n_layers": N_LAYERS, "n_heads": N_HEADS},
        case={"name": name},
    )


NESTED_TOKENS = (
    "<|s|>", "system", "\n", "Be", " kind", ".", " Rules", ":", " never", " lie",
    "<|e|>", "<|u|>", "Why", " so", "?", "<|a|>", "\n",
)  # fmt: skip
NESTED_REGIONS = {
    # name: (section, parent, tokens); user regions nest three deep in "system"
    "system": ("system", None, range(3, 10)),
    "user": ("user", None, range(12, 15)),
    "template": ("template", None, [0, 1, 2, 10, 11, 15, 16]),
    "persona": ("system", None, range(3, 6)),
    "rules": ("system", None, range(6, 10)),
    "rule": ("system", "rules", range(8, 10)),
    "clause": ("system", "rule", [9]),
    "question": ("user", None, range(12, 14)),
}
"""A region tree as `prompt.resolve` builds it: sections and template at the
root, top-level user regions with parent None, nested ones naming their parent."""
CURVE_EXCLUSIONS = (
    "auto",
    None,
    "first",
    "template",
    ("first", "rules"),
    "rule",
    ("rules", "rule"),
    ("template", "first"),
)
"""`exclude` values the front end's normalisation is checked against."""
SHARE_LEVELS = ("leaves", 0, 1, 2)


def nested_run() -> Run:
    """A run whose regions nest three levels deep (sections, then user regions
    at depths 1 to 3), with a first-token sink, for the curves fixture."""
    tokens = NESTED_TOKENS
    ends = np.cumsum([len(t) for t in tokens])
    offsets = np.stack([ends - [len(t) for t in tokens], ends], axis=1).astype(np.int64)
    regions = {}
    for name, (section, parent, members) in NESTED_REGIONS.items():
        idx = np.asarray(list(members), dtype=np.int64)
        span = (
            (0, int(ends[-1]))
            if name == "template"
            else (int(offsets[idx[0], 0]), int(ends[idx[-1]]))
        )
        builtin = name in ("system", "user", "template")
        regions[name] = RegionInfo(name, section, span, idx, parent, builtin)
    queries = {"answer": 14, "final": 16}
    heads = _rows(len(tokens), list(queries.values()), 0.5)
    base = golden_run(BASE_TOKENS)
    return Run(
        text="".join(tokens),
        tokens=tokens,
        token_ids=np.arange(200, 200 + len(tokens), dtype=np.int64),
        offsets=offsets,
        regions=regions,
        queries=queries,
        attention=heads.mean(axis=1),
        attention_heads=heads,
        lens=base.lens,
        model_info={"model_id": "golden-nested", "n_layers": N_LAYERS, "n_heads": N_HEADS},
        case={"name": "nested"},
    )


def curve_expectations(run: Run) -> list[dict[str, Any]]:
    """`Run.curves` of every normalisation, exclusion, share level, query and head
    (head-averaged and head 1), as full (layer, region) lists in the run's region
    order, None where a region has no value, with the excluded mass per layer
    (`Run.excluded_mass`): what the front end's `normalize` and `excludedMasses`
    must compute from the payload's raw masses."""
    from tealeaves_widgets.core.masses import NORMALIZATIONS, OWN_SUFFIX, resolve_exclusion

    cases = []
    names = list(run.regions)
    for normalize in NORMALIZATIONS:
        for exclude in CURVE_EXCLUSIONS:
            exclusion = resolve_exclusion(exclude, normalize)
            for level in SHARE_LEVELS if normalize == "share" else ("leaves",):
                for query in run.queries:
                    for head in (None, 1):
                        frame = run.curves(
                            query, normalize, head=head, exclude=exclude, share_level=level
                        )
                        full = np.full((run.n_layers, len(names)), np.nan)
                        for label in frame.columns:
                            name = label if label in run.regions else label.removesuffix(OWN_SUFFIX)
                            full[:, names.index(name)] = frame[label].to_numpy()
                        excluded = run.excluded_mass(query, exclusion.spec, head)
                        cases.append(
                            {
                                "normalize": normalize,
                                "spec": exclude,
                                "exclude": {
                                    "first": exclusion.first,
                                    "regions": list(exclusion.regions),
                                },
                                "level": level,
                                "query": list(run.queries).index(query),
                                "head": head,
                                "columns": list(frame.columns),
                                "values": [None if np.isnan(v) else float(v) for v in full.ravel()],
                                "excluded": [float(v) for v in excluded],
                            }
                        )
    return cases


ABLATION_VOCAB = 12
ABLATION_MARKUP = "<b>?</b>"
"""The text of token 5 of the golden ablation (its first condition's largest rise)."""


def golden_ablation() -> Ablation:
    """Four conditions on `golden_run(BASE_TOKENS)` read at "final", with
    logits in steps of 1/8 (exact in float32): a head, the values at t-1, a
    mask knockout of "question" (the top token changes) and a values
    knockout of "system". Every condition's run is the base run."""
    run = golden_run(BASE_TOKENS)
    conditions = as_conditions(
        {
            "head L1H0": HeadAblation(1, 0),
            "values t-1": ValueAblation("all", "t-1"),
            "question": RegionKnockout("question", "mask"),
            "no system": RegionKnockout("system"),
        }
    )
    v = np.arange(ABLATION_VOCAB)
    base = ((v * 5) % ABLATION_VOCAB / 4.0).astype(np.float32)  # top: token 7 (2.75)
    shifts = np.array([[(c * 3 + i * 7) % 9 - 4 for i in v] for c in range(4)]) / 8.0
    logits = (base + shifts).astype(np.float32)
    logits[0, 5] += 3.0  # the largest rise of the first condition
    logits[2, 7] -= 2.5  # knocking out the question changes the prediction
    vocab = {i: f" t{i}" for i in range(ABLATION_VOCAB)}
    vocab[5] = ABLATION_MARKUP
    vocab[3] = "\n"
    return Ablation(
        base=run,
        runs={c.name: run for c in conditions},
        conditions=conditions,
        at="final",
        base_logits=base,
        logits=logits,
        vocab=vocab,
        top_k=4,
    )


def query_reading(run: Run, position: int = 4) -> QueryReading:
    """A query read after the capture at `position` (what a click asks for),
    with hand-made rows and lens over `run`'s tracked tokens."""
    per_query = (N_LAYERS, 1)
    lens = Lens(
        top_ids=np.array([[[11, 12]], [[12, 10]], [[10, 13]]], dtype=np.int64),
        top_probs=np.tile(np.array([0.5, 0.125], np.float32), (*per_query, 1)),
        entropy=np.array([[1.5], [1.0], [0.5]], dtype=np.float32),
        kl_to_final=np.array([[0.75], [0.25], [0.0]], dtype=np.float32),
        tracked_ids=run.lens.tracked_ids,
        tracked_tokens=run.lens.tracked_tokens,
        tracked_ranks=np.array([[[4, 2]], [[3, 1]], [[2, 1]]], dtype=np.int64),
        tracked_probs=np.array([[[0.0625, 0.25]], [[0.125, 0.5]], [[0.25, 0.5]]], np.float32),
        vocab={10: " Paris", 11: " the", 12: "\n", 13: " yes"},
    )
    heads = _rows(run.n_tokens, [position], 0.25)[:, :, 0]
    return QueryReading(f"pos:{position}", position, heads, lens, "cache", "", 0.0125)


def golden_attribution() -> Attribution:
    """Gradients over `golden_run(BASE_TOKENS)`'s tokens in steps of 1/8
    (exact in float32): the first token the largest (a sink), token 5
    (" <b>?</b>") the largest after it; gradient x input of both signs."""
    run = golden_run(BASE_TOKENS)
    return Attribution(
        tokens=list(run.tokens),
        token_ids=run.token_ids,
        regions=run.regions,
        target=" Paris",
        target_tokens=[" Paris"],
        target_ids=np.array([10], dtype=np.int64),
        loss="full_target",
        log_prob=-1.25,
        grad_norm=np.array([4.0, 0.5, 0.25, 1.0, 0.75, 2.5, 0.125, 0.375]),
        grad_x_input=np.array([0.25, -0.5, 0.125, 0.75, -0.25, 1.5, 0.0, -0.125]),
        model_info={"model_id": "golden-a"},
    )


def golden_head_gates() -> HeadGates:
    """Gates of N_LAYERS x N_HEADS heads in steps of 1/16: head (1, 0) stays
    open under removal (facilitating), (2, 1) shuts under retention
    (interfering), the rest are irrelevant; 4 plain and 3 + 3 branch steps."""
    plain = np.array([[0.875, 0.75], [0.9375, 0.8125], [0.625, 0.375]])
    retention = np.array([[0.9375, 0.875], [1.0, 0.9375], [0.75, 0.25]])
    removal = np.array([[0.125, 0.0625], [0.75, 0.25], [0.1875, 0.0]])
    return HeadGates(
        gates={"plain": plain, "retention": retention, "removal": removal},
        losses={
            "plain": np.array([2.5, 2.25, 2.125, 2.0]),
            "retention": np.array([2.0, 1.875, 1.75]),
            "removal": np.array([2.0, 2.5, 3.0]),
        },
        base_loss=2.75,
        strength=0.5,
        model_info={"model_id": "golden"},
    )


def golden_head_atlas() -> HeadAtlas:
    """An atlas of 3 layers x 2 heads with scores in steps of 1/16: metric i
    of head (l, h) scores (i + 1 + 2l + h) / 16, negated at head 1 for the
    signed metrics; s2_attention of (0, 1) is NaN. Offset profiles over d =
    0..2 and 3 x 3 mean patterns (BOS, a token, the same again) in steps of
    1/8; head (1, 0) attends to the previous token."""
    layer, head = np.meshgrid(np.arange(3), np.arange(2), indexing="ij")
    scores = {}
    for i, m in enumerate(METRICS):
        value = (i + 1 + 2 * layer + head) / 16
        scores[m.name] = np.where(head == 1, -value, value) if m.signed else value
    scores["s2_attention"] = scores["s2_attention"].astype(np.float64)
    scores["s2_attention"][0, 1] = np.nan
    sink = np.array([[1.0, 0.0, 0.0], [0.75, 0.25, 0.0], [0.5, 0.25, 0.25]], dtype=np.float32)
    prev = np.array([[1.0, 0.0, 0.0], [0.125, 0.875, 0.0], [0.125, 0.75, 0.125]], dtype=np.float32)
    patterns = np.stack([np.stack([sink, sink]), np.stack([prev, sink]), np.stack([sink, prev])])
    profiles = np.stack(
        [[np.diagonal(p, offset=-d).mean() for d in range(3)] for p in patterns.reshape(-1, 3, 3)]
    ).reshape(3, 2, 3)
    return HeadAtlas(
        scores=scores,
        profiles=profiles,
        patterns=patterns,
        probes={"random": [[1, 5, 6], [1, 7, 8]], "repeated": [[1, 9, 9]], "text": [[1, 2]]},
        bos_prepended=True,
        seed=3,
        model_info={"model_id": "golden"},
        notes={"delimiter": "no delimiters in <i>these</i> probes"},
    )


def golden_prev_token() -> PrevTokenTest:
    """A previous-token test of head (1, 0) over two texts, offsets 1 and 2,
    with outputs in steps of 1/4: at k = 1 the head's removal changes nothing
    once the values are gone (redundancy 1), at k = 2 half of it remains."""
    base = np.array(
        [[[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]], [[0.0, 1.0], [1.0, -1.0], [0.0, 2.0]]],
        dtype=np.float32,
    )  # (text, layer, hidden)
    effect = np.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]], dtype=np.float32)
    ablated = base - effect
    b = np.stack([base - 0.25, base + 0.25])
    ab = np.stack([b[0], b[1] - 0.5 * effect]).astype(np.float32)
    return PrevTokenTest(
        layer=1,
        head=0,
        value_heads=(0, 1),
        offsets=(1, 2),
        positions=np.array([3, 5], dtype=np.int64),
        outputs={"base": base, "A": ablated, "B": b.astype(np.float32), "A+B": ab},
        model_info={"model_id": "golden"},
    )


HEAD_GRID_TOKENS = ("<|s|>", "The", " cat", " <b>x</b>", " sat", "\n", " on")


def golden_head_grid() -> HeadGrid:
    """Layer 1 of 3, two heads over `HEAD_GRID_TOKENS` in steps of 1/16 (exact
    in float16): head 0 a sink (1/16 on each earlier token, the rest on the
    first), head 1 a previous-token head (12/16 on t-1, 2/16 on itself, the
    rest on the first token)."""
    T = len(HEAD_GRID_TOKENS)
    patterns = np.zeros((2, T, T))
    for i in range(T):
        patterns[0, i, 1 : i + 1] = 1 / 16
        patterns[0, i, 0] = 1 - i / 16
        if i >= 1:
            patterns[1, i, i - 1] += 12 / 16
            patterns[1, i, i] += 2 / 16
            patterns[1, i, 0] += 2 / 16
        else:
            patterns[1, 0, 0] = 1.0
    return HeadGrid(
        layer=1,
        patterns=patterns.astype(np.float16),
        tokens=HEAD_GRID_TOKENS,
        pool=1,
        model_info={"model_id": "golden", "n_layers": N_LAYERS, "n_kv_heads": 1},
    )


def golden_snapshots() -> Snapshots:
    """Three messages (user, assistant, user; the second's text is markup)
    against references "calm" and "<i>rage</i>", two sources, two layers of
    four dimensions in steps of 1/2."""
    states = np.array(
        [
            [[2.0, 0.5, 0.0, 0.0], [1.0, 1.0, 0.0, 0.5]],
            [[2.0, 0.0, 0.5, 0.0], [1.0, 0.0, 1.0, 0.0]],
            [[2.0, 0.0, 0.0, 0.5], [1.0, 0.5, 0.0, 1.0]],
        ],
        dtype=np.float32,
    )  # (message, layer, hidden)
    calm = np.array([[2.0, 0.5, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]], dtype=np.float32)
    rage = np.array([[2.0, 0.0, 0.0, 0.5], [1.0, 0.0, 0.5, 1.0]], dtype=np.float32)
    return Snapshots(
        messages=(
            {"role": "user", "content": "I am   fine."},
            {"role": "assistant", "content": "<b>Good</b> to hear"},
            {"role": "user", "content": "No, I am angry."},
        ),
        positions=np.array([5, 11, 17], dtype=np.int64),
        states={"hidden_out": states, "attn_out": states[:, ::-1] * 0.5},
        references={
            "calm": {"hidden_out": calm, "attn_out": calm[::-1] * 0.5},
            "<i>rage</i>": {"hidden_out": rage, "attn_out": rage[::-1] * 0.5},
        },
        readout="message_end",
        single_pass=True,
        model_info={"model_id": "golden"},
    )


def golden_residual() -> ResidualDecomposition:
    """A decomposition of N_LAYERS layers at two queries ("final" second, so
    the default is not the first row) from hand-made 2-d vectors: at query
    "final", layer 1, the input (3, 0), attention (0, 4) and MLP (1, 0) add
    to the output (4, 4); the query token is markup."""
    block_input = np.array(
        [[[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]], [[2.0, 0.0], [3.0, 0.0], [4.0, 4.0]]]
    )  # (query, layer, hidden)
    attention = np.array(
        [[[0.0, 1.0], [-1.0, 0.0], [0.5, 0.0]], [[1.0, 0.0], [0.0, 4.0], [0.0, -2.0]]]
    )
    mlp = np.array([[[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0], [-4.0, 0.0]]])
    output = block_input + attention + mlp
    return ResidualDecomposition.from_vectors(
        {"first": 1, "final": 5},
        ["<b>x</b>", "\n"],
        block_input,
        attention,
        mlp,
        output,
        parallel=False,
        model_info={"model_id": "golden"},
    )


def golden_cross_layer() -> CrossLayerCosine:
    """The cross-layer cosine of N_LAYERS hand-made 2-d states: layers 0 and 1
    at 45 degrees, layer 2 opposite to layer 0."""
    states = np.array([[1.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])
    return CrossLayerCosine.from_states(
        states,
        source="hidden_out",
        query="final",
        position=5,
        token="<b>x</b>",
        model_info={"model_id": "golden"},
    )


def golden_neurons() -> NeuronActivations:
    """The 3 most variable of 4 neurons over 5 positions, in quarters (exact
    in float32): position 0 is a sink of 40 on neuron 0 (left out of the
    ranking, so neuron 0, flat elsewhere, ranks last); the tokens are markup
    and white space."""
    values = np.array(
        [
            [40.0, 0.0, 0.0, 0.0],
            [1.0, -2.0, 0.5, 0.25],
            [1.0, 2.0, -0.5, 0.0],
            [1.0, -1.0, 1.5, -0.25],
            [1.0, 1.0, -1.5, 0.0],
        ]
    )
    return NeuronActivations.select(
        values,
        2,
        "mlp_act",
        np.arange(5),
        ("<|s|>", "<b>x</b>", " kind", "\n", " so"),
        3,
        model_info={"model_id": "golden"},
    )


def golden_neuron_compare() -> NeuronComparison:
    """The 2 of 3 neurons whose means spread most over 3 prompts (quarters)."""
    means = np.array([[0.5, -1.0, 2.0], [0.5, 1.0, 2.25], [0.5, 0.0, 1.75]])
    return NeuronComparison.select(
        means,
        1,
        "hidden_out",
        ("baseline", "<b>terse</b>", "long"),
        (7, 5, 9),
        2,
        model_info={"model_id": "golden"},
    )


BASE_TOKENS = ("<|s|>", "Be", " kind", "Why", " so", " <b>?</b>", "<|a|>", "\n")
VARIANT_TOKENS = ("<|s|>", "Be", " brief", "Why", " so", " <b>?</b>", "<|a|>", "\n")


def golden_generation() -> Generation:
    """Three greedy-looking steps with top-3 log-probabilities in steps of
    log(1/2) (p = 1/2, 1/4, 1/8); step 1 chose the second most probable token;
    the tokens are markup and white space."""
    run = golden_run(BASE_TOKENS)
    top_ids = np.array([[10, 11, 12], [20, 21, 22], [30, 31, 32]], dtype=np.int64)
    top_logprobs = np.log(np.array([[0.5, 0.25, 0.125]] * 3, dtype=np.float32))
    chosen = np.array([10, 21, 30], dtype=np.int64)
    vocab = {
        10: " <b>x</b>",
        11: "a",
        12: "b",
        20: "\n",
        21: " y",
        22: "c",
        30: "z",
        31: "d",
        32: "e",
    }
    return Generation(
        run=run,
        prompt_length=len(BASE_TOKENS) - 2,
        token_ids=chosen,
        tokens=tuple(vocab[int(i)] for i in chosen),
        logprobs=np.log(np.array([0.5, 0.25, 0.5], dtype=np.float32)),
        argmax_ids=top_ids[:, 0].copy(),
        argmax_logprobs=top_logprobs[:, 0].copy(),
        top_ids=top_ids,
        top_logprobs=top_logprobs,
        entropy=np.array([1.0, 1.5, 2.0], dtype=np.float32),
        vocab=vocab,
        stop_reason="max_new_tokens",
        options={"do_sample": False, "seed": 42},
    )


def payloads() -> dict[str, Any]:
    """Every synced payload and custom message, by fixture name."""
    base, variant = golden_run(BASE_TOKENS), golden_run(VARIANT_TOKENS, 0.5, "b")
    sets = [RunSet(tuple(golden_run(BASE_TOKENS, s, f"c{s}") for s in (0.0, 1.0, 2.0)))]
    sets.append(RunSet(tuple(golden_run(VARIANT_TOKENS, s, f"c{s}") for s in (0.5, 1.5, 2.5))))
    # the same three cases in both (paired): tight intervals, some under min_effect
    paired = [RunSet(tuple(rs.runs), labels=("a", "b", "c")) for rs in sets]
    reply, buffers = head_rows_message(base, 1, request_id=7)
    reading = query_reading(base)
    query_reply, query_buffers = query_at_message(base.with_query(reading), reading, 9)
    error: ErrorReply = {
        "v": MESSAGE_VERSION,
        "kind": "error",
        "id": 8,
        "request": "head_rows",
        "message": "WireError: Query row 5 is out of range for 2 queries.",
    }
    return {
        "run_payload": run_payload(base, PayloadOptions(head_queries=("final",))),
        "curves_payload": run_payload(nested_run()),
        "diff_payload": diff_payload(compare({"baseline": base, "terse": variant})),
        "diff_sets_payload": diff_payload(
            compare({"baseline": paired[0], "terse": paired[1]}, min_effect=0.005)
        ),
        "aggregate_payload": aggregate_payload(
            as_runsets({"baseline": sets[0], "terse": sets[1]}), normalizations=["raw", "share"]
        ),
        "aggregate_single_payload": aggregate_payload(as_runsets(sets[0]), level=0.9),
        "ablation_payload": ablation_payload(golden_ablation(), [True, True, False, True]),
        "attribution_payload": attribution_payload(golden_attribution()),
        "head_gates_payload": head_gates_payload(golden_head_gates()),
        "prev_token_payload": prev_token_payload(golden_prev_token()),
        "head_atlas_payload": head_atlas_payload(golden_head_atlas()),
        "head_grid_payload": head_grid_payload(golden_head_grid()),
        "snapshots_payload": snapshots_payload(golden_snapshots()),
        "generation_payload": generation_payload(golden_generation()),
        "residual_payload": residual_payload(golden_residual()),
        "cross_layer_payload": cross_layer_payload(golden_cross_layer()),
        "neurons_payload": neurons_payload(golden_neurons()),
        "neuron_compare_payload": neuron_compare_payload(golden_neuron_compare()),
        "head_rows_reply": {"content": reply, "buffers": buffers},
        "error_reply": {"content": error, "buffers": []},
        "query_at_reply": {"content": query_reply, "buffers": query_buffers},
    }


def to_json(value: Any) -> Any:
    """JSON-ready copy: binary buffers as {"$bytes": base64}, tuples as lists."""
    if isinstance(value, (memoryview, bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value


def _floats(values: Any) -> list:
    """Numbers as floats, NaN as None (JSON has no NaN)."""
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, np.float64).ravel()]


def _values(array: dict) -> list:
    decoded = decode_array(array).astype(np.float64)
    return [None if np.isnan(v) else float(v) for v in decoded.ravel()]


def expectations(name: str, payload: Any) -> dict[str, Any]:
    """What the front end must decode from `payload`, as Python decodes it."""
    if name == "run_payload":
        return {
            "n_tokens": payload["n_tokens"],
            "attention": _values(payload["attention"]),
            "curves": _values(payload["curves"]),
            "curves_heads": _values(payload["curves_heads"]),
            "first_token": _values(payload["first_token"]),
            "first_token_heads": _values(payload["first_token_heads"]),
            "token_region": _values(payload["token_region"]),
            "top_ids": _values(payload["lens"]["top_ids"]),
            "tracked_ranks": _values(payload["lens"]["tracked_ranks"]),
            "heads_loaded": [head is not None for head in payload["heads"]],
            "head_rows_final": _values(payload["heads"][1]["rows"]),
        }
    if name == "curves_payload":
        return {
            "first_token": _values(payload["first_token"]),
            "first_token_heads": _values(payload["first_token_heads"]),
            "curves": curve_expectations(nested_run()),
        }
    if name in ("diff_payload", "diff_sets_payload"):
        return {
            "runs": len(payload["runs"]),
            "delta": _values(payload["table"]["delta"]),
            "delta_low": _values(payload["table"]["delta_low"]),
            "delta_high": _values(payload["table"]["delta_high"]),
            "significant": _values(payload["table"]["significant"]),
            "sink_reassigned": _values(payload["table"]["sink_reassigned"]),
            "mass": _values(payload["curves"]["mass"]),
            "op": _values(payload["cases"][0]["alignments"][1]["op"]),
            "sink_first": _values(payload["sink"]["first"]),
            "sink_excluded": _values(payload["sink"]["excluded"]),
        }
    if name in ("aggregate_payload", "aggregate_single_payload"):
        return {
            "shape": payload["values"]["shape"],
            "values": _values(payload["values"]),
            "sink": _values(payload["sink"]),
            "excluded_mass": _values(payload["excluded_mass"]),
        }
    if name == "ablation_payload":
        table = golden_ablation().table()
        return {
            "names": table["condition"].tolist(),
            "predicted": table["predicted_id"].tolist(),
            "predicted_prob": _values(payload["predicted_prob"]),
            "delta_logprob": _values(payload["delta_logprob"]),
            "kl": _values(payload["kl"]),
            "rose": _values(payload["rose"]),
            "rose_delta": _values(payload["rose_delta"]),
            "fell_delta": _values(payload["fell_delta"]),
            "positions": [_values(c["positions"]) for c in payload["conditions"]],
        }
    if name == "query_at_reply":
        # the run payload's arrays with the clicked query in them: what the
        # front end's run_payload fixture holds once the reply is appended
        base = golden_run(BASE_TOKENS)
        options = PayloadOptions(max_bytes=10**9, head_encoding="float16")
        added = run_payload(base.with_query(query_reading(base)), options)
        lens = added["lens"]
        return {
            "queries": added["queries"],
            "attention": _values(added["attention"]),
            "curves": _values(added["curves"]),
            "curves_heads": _values(added["curves_heads"]),
            "first_token": _values(added["first_token"]),
            "first_token_heads": _values(added["first_token_heads"]),
            **{key: _values(lens[key]) for key in LENS_KEYS},
            "head_rows": _values(added["heads"][2]["rows"]),
            "head_encoding": added["heads"][2]["encoding"],
        }
    if name == "attribution_payload":
        attribution = golden_attribution()
        regions = attribution.region_table()
        return {
            "tokens": attribution.tokens,
            "grad_norm": [float(v) for v in attribution.grad_norm],
            "grad_x_input": [float(v) for v in attribution.grad_x_input],
            "token_region": _values(payload["token_region"]),
            "regions": regions["region"].tolist(),
            "share": _values(payload["region_share"]),
            "region_grad_x_input": _values(payload["region_grad_x_input"]),
        }
    if name == "head_gates_payload":
        gates = golden_head_gates()
        return {
            "gates": {p: [float(v) for v in gates.gates[p].ravel()] for p in gates.gates},
            "labels": [str(v) for v in gates.labels.ravel()],
            "losses": {p: [float(v) for v in gates.losses[p]] for p in gates.losses},
        }
    if name == "prev_token_payload":
        test = golden_prev_token()
        sweep = test.sweep()
        table = test.table(2)
        return {
            "redundancy": [float(v) for v in sweep["redundancy"]],
            "inner_mean_k2": _values(payload["inner_mean"])[len(table) :],
            "table_k2": [float(v) for v in table["inner_mean"]],
        }
    if name == "head_atlas_payload":
        atlas = golden_head_atlas()
        return {
            "metric_names": list(METRIC_NAMES),
            "scores": {m: _floats(atlas.scores[m]) for m in METRIC_NAMES},
            "signed": [m.name for m in METRICS if m.signed],
            "profiles": _floats(atlas.profiles.astype(np.float32)),
            "patterns": _floats(atlas.patterns),
            "top_ov_copy": [
                [int(r.layer), int(r.head)] for r in atlas.top("ov_copy", 3).itertuples()
            ],
        }
    if name == "head_grid_payload":
        grid = golden_head_grid()
        return {
            "patterns": [float(v) for v in grid.patterns.ravel()],
            # what the thumbnails pool to: blocks of 2 and of 3 tokens
            "pooled_2": [float(v) for v in grid.pooled(4).patterns.ravel()],
            "pooled_3": [float(v) for v in grid.pooled(3).patterns.ravel()],
            "table": {c: [float(v) for v in grid.table()[c]] for c in ("first_block", "diagonal")},
        }
    if name == "snapshots_payload":
        snapshots = golden_snapshots()

        def table(frame: Any) -> list:
            return [None if np.isnan(v) else float(v) for v in frame.to_numpy().ravel()]

        return {
            # message-major (message, reference), as the heatmap's cells
            "raw_cosine_mean": table(snapshots.message_table("hidden_out", "cosine")),
            "centred_cosine_mean": table(
                snapshots.message_table("hidden_out", "cosine", center=True)
            ),
            "centred_mae_layer1": table(
                snapshots.message_table("hidden_out", "mae", center=True, layer=1)
            ),
            "attn_centred_jaccard_mean": table(
                snapshots.message_table("attn_out", "jaccard", center=True)
            ),
            # (role, reference)
            "raw_cosine_roles": table(snapshots.role_means("hidden_out", "cosine")),
            "centred_cosine_roles_layer0": table(
                snapshots.role_means("hidden_out", "cosine", center=True, layer=0)
            ),
            # (layer, reference) of message 1
            "message1_raw_cosine_layers": table(snapshots.layer_table(1, "hidden_out", "cosine")),
        }
    if name == "residual_payload":
        table = golden_residual().table("final")
        return {
            "norms_final": [
                _floats(table[column])
                for column in ("input_norm", "attn_norm", "mlp_norm", "output_norm")
            ],
            "cosines_final": [_floats(table[c]) for c in ("input_cos", "attn_cos", "mlp_cos")],
            "identity_error": _values(payload["identity_error"]),
        }
    if name == "cross_layer_payload":
        return {"cosine": [float(v) for v in golden_cross_layer().cosine.ravel()]}
    if name == "neurons_payload":
        result = golden_neurons()
        return {
            "neurons": [int(n) for n in result.neurons],
            "values": [float(v) for v in result.values.ravel()],
            "sd": [float(v) for v in result.sd.astype(np.float32)],
            "scored": [bool(v) for v in result.scored],
            "vmax": result.vmax,
        }
    if name == "neuron_compare_payload":
        result = golden_neuron_compare()
        return {
            "neurons": [int(n) for n in result.neurons],
            "means": [float(v) for v in result.means.ravel()],
            "spread": [float(v) for v in result.spread.astype(np.float32)],
            "vmax": result.vmax,
        }
    if name == "generation_payload":
        gen = golden_generation()
        return {
            "probs": [float(v) for v in np.exp(gen.logprobs.astype(np.float64))],
            "top_probs": [float(v) for v in np.exp(gen.top_logprobs.astype(np.float64)).ravel()],
        }
    if name == "head_rows_reply":
        rows = {**payload["content"]["rows"], "data": payload["buffers"][0]}
        return {"rows": _values(rows)}
    return {}


LENS_KEYS = ("top_ids", "top_probs", "entropy", "kl_to_final", "tracked_ranks", "tracked_probs")


def fixture_text(name: str, payload: Any) -> str:
    """The committed file's text for one fixture."""
    document = {"payload": to_json(payload), "expect": expectations(name, payload)}
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
