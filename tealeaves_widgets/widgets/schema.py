"""The wire schema: every payload and message between Python and the browser,
defined once, here, as TypedDicts.

The Python side builds these (pyright checks the keys of every literal); the
TypeScript types in `js/src/schema.gen.ts` are generated from this module
(`python tealeaves_widgets/widgets/schema.py js/src/schema.gen.ts`, run by the
build: this module imports the standard library only, so the build loads it
by path), so a renamed key fails `tsc --noEmit` in the decoders. Golden fixtures
written from these payloads (`tests/unit/test_wire_golden.py`) are decoded by
vitest.

Versions: `SCHEMA_VERSION` of the synced payloads (checked by both sides
before anything else; bump it whenever a field changes meaning or shape) and
`MESSAGE_VERSION` of the custom messages, which carry `{v, kind, id}`. A
request that fails is answered with an `ErrorReply` of the same id, which the
front end shows instead of waiting.

Arrays travel as `WireArray` `{dtype, shape, data}`: `data` is a memoryview,
sent as a binary buffer (the front end receives a DataView). In a message, a
`BufferRef` names the buffer by its index among the message's buffers.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Literal, TypedDict, Union

SCHEMA_VERSION = 2
"""Version of the payload layout; `js/src/wire.ts` refuses any other."""
MESSAGE_VERSION = 1
"""Version of the custom messages (`v`)."""

WireDType = Literal["uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32"]
HeadEncoding = Literal["sqrt-uint8", "float16"]


class WireArray(TypedDict):
    """One array: little-endian, C order."""

    dtype: WireDType
    shape: list[int]
    data: memoryview


class BufferRef(TypedDict):
    """An array whose bytes are buffer number `buffer` of the message."""

    dtype: WireDType
    shape: list[int]
    buffer: int


# -- the run (Explorer, TokenHeatmap, CurvesView, LensView) -------------------


class ModelInfo(TypedDict):
    model_id: str
    n_layers: int
    n_heads: int


class RegionEntry(TypedDict):
    name: str
    section: str
    color: str
    char_span: tuple[int, int]
    token_indices: WireArray
    parent: str | None
    builtin: bool


class QueryEntry(TypedDict):
    name: str
    pos: int


class LensPayload(TypedDict):
    k: int
    top_ids: WireArray
    """(layer, query, k) int32."""
    top_probs: WireArray
    entropy: WireArray
    """(layer, query)."""
    kl_to_final: WireArray
    tracked_tokens: list[str]
    tracked_ids: WireArray
    tracked_ranks: WireArray
    """(layer, query, tracked) int32."""
    tracked_probs: WireArray
    vocab: dict[str, str]
    """Token id (as a string) -> its text, for every id in top_ids and tracked_ids."""


class HeadRowsPayload(TypedDict):
    """One query's per-head rows, (layer, head, width); columns >= width are 0."""

    encoding: HeadEncoding
    rows: WireArray


class Budget(TypedDict):
    max_bytes: int
    bytes: int


class _PendingRequired(TypedDict):
    done: int
    total: int


class Pending(_PendingRequired, total=False):
    """A capture still running (`Model.explore`): layers 0..done-1 have data."""

    stopped: str
    """Why the capture stopped early, when it did."""
    follow: bool
    """Whether the explorer shows the newest layer computed until the user
    picks one (absent: it does); false when the caller chose a layer."""


class _RunPayloadRequired(TypedDict):
    schema_version: int
    model: ModelInfo
    n_tokens: int
    tokens: list[str]
    token_ids: WireArray
    gaps: list[tuple[int, str]]
    """[pos, text]: prompt text no token covers, shown before token pos."""
    token_region: WireArray
    """(pos,) int16: innermost region of each token, -1 for none."""
    regions: list[RegionEntry]
    queries: list[QueryEntry]
    default_query: int
    attention: WireArray
    """(layer, query, pos) head-averaged rows."""
    curves: WireArray
    """(layer, query, region) raw attention mass."""
    curves_heads: WireArray
    """(layer, head, query, region)."""
    first_token: WireArray
    """(layer, query) float32: attention on the first token (position 0),
    head-averaged, which "share" excludes by default (core.masses)."""
    first_token_heads: WireArray
    """(layer, head, query) float32: the same per head."""
    lens: LensPayload
    heads: list[HeadRowsPayload | None]
    """Per query: its per-head rows, or None when over the budget."""
    budget: Budget


class RunPayload(_RunPayloadRequired, total=False):
    """Everything the run views render, as one synced value."""

    pending: Pending


# -- the variant diff (VariantDiff) ----------------------------------------------


class ModelName(TypedDict):
    model_id: str


class RegionColor(TypedDict):
    name: str
    color: str


class DiffOptionsEntry(TypedDict):
    normalize: str
    level: float
    interval: str
    excluded: str
    """What the masses leave out, in words ("first token", "nothing")."""
    first_excluded: bool
    """True when the first token (the sink) is among the excluded tokens of
    every run, by name or in an excluded region."""
    share_level: str | int
    min_effect: float
    """Smallest |delta| that can be significant."""


class TableRow(TypedDict):
    label: int | str
    layers: list[int]


class AlignmentEntry(TypedDict):
    op: WireArray
    """(step,) int8: 0 equal, 1 delete, 2 insert."""
    baseline_pos: WireArray
    variant_pos: WireArray


class DiffCase(TypedDict):
    case: int
    runs: list[int]
    """Index into `runs` of each variant's run."""
    alignments: list[AlignmentEntry | None]
    """Per variant, its alignment with the baseline (None for the baseline)."""


class DiffRun(TypedDict):
    tokens: list[str]
    gaps: list[tuple[int, str]]
    token_region: WireArray
    """(pos,) int16: index into the comparison's regions, -1 for none."""
    query_pos: list[int]
    attention: WireArray
    """(layer, query, pos) head-averaged rows."""


class DiffPayload(TypedDict):
    """Everything the variant diff renders, as one synced value."""

    schema_version: int
    kind: Literal["variant_diff"]
    model: ModelName
    n_layers: int
    variants: list[str]
    sets: list[bool]
    queries: list[str]
    default_query: int
    regions: list[RegionColor]
    tracked_tokens: list[str]
    options: DiffOptionsEntry
    region_labels: list[str]
    """Per region, how its rows read: "<name> (own)" when, in "share", it
    counts only its own tokens (Comparison.region_labels)."""
    rows: list[TableRow]
    curves: dict[str, WireArray]
    """(variant, query, layer, region): mass, mass_low, mass_high."""
    table: dict[str, WireArray]
    """(variant, query, region, row): the columns of Comparison.deltas."""
    lens: dict[str, WireArray] | None
    """(variant, query, token, row): the columns of Comparison.lens_deltas."""
    sink: dict[str, WireArray]
    """(variant, query, layer) float32, means over units as
    Comparison.excluded_mass: "first", the first token's attention (the sink),
    and "excluded", the excluded tokens' (0 when nothing is), fractions of the
    whole row."""
    case_labels: list[str]
    cases: list[DiffCase]
    runs: list[DiffRun]
    bytes: int


# -- the aggregate view (AggregateView) -------------------------------------------


class AggregateSet(TypedDict):
    name: str
    runs: int
    cases: int
    units: int


class AggregatePayload(TypedDict):
    """Everything the aggregate view renders, as one synced value."""

    schema_version: int
    kind: Literal["aggregate"]
    model: ModelName
    n_layers: int
    sets: list[AggregateSet]
    queries: list[str]
    default_query: int
    regions: list[RegionColor]
    normalizations: list[str]
    excluded: list[str]
    """Per normalization, what its masses leave out, in words."""
    first_excluded: list[bool]
    """Per normalization: True when the first token (the sink) is among what
    it leaves out in every run, by name or in an excluded region."""
    own: list[bool]
    """Per region: True when its "share" counts only its own tokens."""
    stats: list[str]
    level: float
    interval: str
    values: WireArray
    """(set, normalize, query, layer, region, stat) float32."""
    sink: WireArray
    """(set, query, layer) float32: the first token's attention, mean over
    units (RunSet.excluded_mass(query, "first")), a fraction of the whole row."""
    excluded_mass: WireArray
    """(set, normalize, query, layer) float32: the excluded tokens' attention,
    mean over units, 0 where nothing is excluded."""
    bytes: int


# -- the ablation view (AblationView) ----------------------------------------------


class AblationCondition(TypedDict):
    name: str
    description: str
    """What it removes, in words (`Condition.describe`)."""
    knockout: str | None
    """The region it knocks out when it is one `RegionKnockout` alone (a row
    of the knockout panel), else None."""
    positions: WireArray
    """(n,) int32: the token positions its interventions touch (the region's
    tokens, the ablated query or key positions), marked in the token strip."""


class AblationPayload(TypedDict):
    """What the ablation view renders besides the base run (the view's
    `payload`), as one synced value; per-condition arrays follow `conditions`."""

    schema_version: int
    kind: Literal["ablation"]
    model: ModelName
    at: str
    """The query read."""
    position: int
    """Its token position t."""
    base_top: int
    """The baseline's top token id."""
    base_prob: float
    """Its probability in the baseline."""
    k: int
    """Tokens per condition in rose and fell (the Ablation's top_k)."""
    conditions: list[AblationCondition]
    predicted: WireArray
    """(condition,) int32: the top token under the condition."""
    predicted_prob: WireArray
    """(condition,) float32."""
    delta_base_top: WireArray
    """(condition,) float32: change of the baseline top token's logit."""
    delta_logprob: WireArray
    """(condition,) float32: change of its log-probability."""
    delta_centered: WireArray
    """(condition,) float32: its logit change minus the mean change."""
    kl: WireArray
    """(condition,) float32: KL(baseline || condition), nats."""
    rose: WireArray
    """(condition, k) int32: tokens whose logit rose most, largest first."""
    rose_delta: WireArray
    """(condition, k) float32: their logit change."""
    fell: WireArray
    """(condition, k) int32: tokens whose logit fell most, most negative first."""
    fell_delta: WireArray
    """(condition, k) float32."""
    vocab: dict[str, str]
    """Token id (as a string) -> its text, for every id above."""
    runs: list[bool]
    """Per condition: whether its run's payload is in the view's `runs`
    (within the budget); the others come from a kernel when asked for."""
    budget: Budget
    """Bytes of the embedded runs and their budget."""


class RunDetail(TypedDict):
    """A condition's run sent by the kernel on request (it was over the
    budget): `condition` indexes the ablation's conditions."""

    condition: int
    payload: RunPayload


# -- the attribution view (AttributionView) --------------------------------------------


class AttributionRegion(TypedDict):
    name: str
    section: str
    color: str
    parent: str | None
    builtin: bool
    token_indices: WireArray
    """(n,) int32: the region's tokens."""


class AttributionPayload(TypedDict):
    """What the attribution view renders (`Attribution`), as one synced value."""

    schema_version: int
    kind: Literal["attribution"]
    model: ModelName
    target: str
    target_tokens: list[str]
    loss: str
    """"full_target" (every target token's log-prob, summed) or "first_token"."""
    log_prob: float
    """The attributed log-probability (natural log)."""
    gated: str | None
    """Which heads were gated off, in words (None: none)."""
    tokens: list[str]
    token_region: WireArray
    """(token,) int16: innermost region of each token, -1 for none."""
    regions: list[AttributionRegion]
    grad_norm: WireArray
    """(token,) float32: L2 norm of the gradient at each prompt token's embedding."""
    grad_x_input: WireArray
    """(token,) float32: gradient times embedding, summed over the hidden dimension."""
    region_grad_norm: WireArray
    """(region,) float32: the region's tokens' summed grad_norm (Attribution.region_table)."""
    region_share: WireArray
    """(region,) float32: that sum's share of every prompt token's."""
    region_grad_x_input: WireArray
    """(region,) float32: the region's tokens' summed grad_x_input."""


# -- the head gates view (HeadGatesView) ------------------------------------------------


class HeadGatesPayload(TypedDict):
    """What the head gates view renders (`HeadGates`), as one synced value."""

    schema_version: int
    kind: Literal["head_gates"]
    model: ModelName
    n_layers: int
    n_heads: int
    phases: list[str]
    """The phases, in the order of `gates` and `losses`: plain, retention, removal."""
    gates: WireArray
    """(phase, layer, head) float32: the gates sigmoid(theta) at each phase's end."""
    label_names: list[str]
    """The taxonomy: facilitating, interfering, irrelevant."""
    labels: WireArray
    """(layer, head) uint8: index into label_names."""
    losses: list[WireArray]
    """Per phase, (step,) float32: the task loss at each update step."""
    base_loss: float
    """The task loss with every gate at 1."""
    strength: float
    threshold: float


# -- the previous-token test view (PrevTokenView) ------------------------------------------


class PrevTokenPayload(TypedDict):
    """What the previous-token test view renders (`PrevTokenTest`), as one synced value."""

    schema_version: int
    kind: Literal["prev_token"]
    model: ModelName
    layer: int
    head: int
    value_heads: list[int] | None
    """Heads whose values B zeroes (None: every head)."""
    n_texts: int
    n_layers: int
    offsets: list[int]
    redundancy: WireArray
    """(offset,) float32: 1 - mean residual effect (PrevTokenTest.sweep)."""
    residual_effect_sd: WireArray
    """(offset,) float32: sd over texts of the residual effect."""
    pairs: list[str]
    """The pairs of passes compared ("base vs A", ...), in the order of the tables."""
    inner_mean: WireArray
    """(offset, pair, layer) float32: PrevTokenTest.table(offset) inner_mean."""
    inner_sd: WireArray
    cos_mean: WireArray
    cos_sd: WireArray


# -- the head atlas view (HeadAtlasView) ---------------------------------------------------


class AtlasMetricEntry(TypedDict):
    """One metric of the atlas (`core.head_atlas.METRICS`), with the atlas's note on it."""

    name: str
    description: str
    probe_set: str
    signed: bool
    """True: drawn with diverging colours centred at 0, ranked by |score|."""
    note: str
    """What was excluded or assumed in measuring it (`HeadAtlas.notes`), or ""."""


class ProbeSetEntry(TypedDict):
    """One probe set of the atlas: how many sequences, of what lengths."""

    name: str
    count: int
    min_length: int
    max_length: int


class HeadAtlasPayload(TypedDict):
    """What the head atlas view renders (`HeadAtlas`), as one synced value."""

    schema_version: int
    kind: Literal["head_atlas"]
    model: ModelName
    n_layers: int
    n_heads: int
    metrics: list[AtlasMetricEntry]
    """In the order of `scores`' first axis (`METRICS`)."""
    scores: WireArray
    """(metric, layer, head) float32; NaN where a head has no score."""
    profiles: WireArray
    """(layer, head, offset) float32: mean weight at distance d = 0.. on the random probes."""
    patterns: WireArray
    """(layer, head, P, P) float16: the mean pattern over the repeated random-token
    probes (query row, key column; zeros above the diagonal)."""
    probes: list[ProbeSetEntry]
    bos_prepended: bool
    """Whether each probe starts with the BOS (so key 0 of a pattern is the BOS)."""
    seed: int


# -- the generation view (GenerationView) -------------------------------------------------


class GenerationPayload(TypedDict):
    """What the generation panel of `GenerationView` renders (`Generation`): the
    steps; the run over prompt + generation travels as the explorer's payload."""

    schema_version: int
    kind: Literal["generation"]
    model: ModelName
    prompt_length: int
    n_steps: int
    k: int
    """Top-k tokens per step."""
    queries: list[str]
    """(step,) the run's query name of each step ("step:<i>")."""
    tokens: list[str]
    """(step,) the chosen token's text."""
    logprobs: WireArray
    """(step,) float32: log-probability of the chosen token."""
    argmax: list[str]
    """(step,) the most probable token's text."""
    entropy: WireArray
    """(step,) float32: nats."""
    top_tokens: list[str]
    """(step * k,) the top-k tokens' texts, step-major."""
    top_logprobs: WireArray
    """(step, k) float32."""
    stop_reason: str
    sampling: str
    """How tokens were chosen, in words ("greedy", "sampled, temperature 0.7, seed 7")."""


# -- the conversation snapshots view (SnapshotsView) ------------------------------------


class SnapshotMessage(TypedDict):
    """One message of the conversation, as its row is labelled (text, never markup)."""

    role: str
    preview: str
    """The content, whitespace collapsed, cut to a few words."""
    content: str
    """The content, whitespace collapsed, cut to a few hundred characters (the tooltip)."""
    position: int
    """The token its state was read at, in its pass."""


class SnapshotReference(TypedDict):
    label: str
    color: str


class SnapshotsPayload(TypedDict):
    """What the conversation snapshots view renders (`Snapshots`), as one synced value:
    every source, centring and metric, so the view needs no kernel."""

    schema_version: int
    kind: Literal["snapshots"]
    model: ModelName
    readout: str
    single_pass: bool
    n_layers: int
    sources: list[str]
    metrics: list[str]
    """"cosine", "mae", "jaccard" (core.states.METRICS)."""
    centrings: list[str]
    """"raw", "centred" (center=False, center=True)."""
    roles: list[str]
    """The roles averaged over (core.states.ROLE_MEANS)."""
    messages: list[SnapshotMessage]
    references: list[SnapshotReference]
    scores: WireArray
    """(source, centring, metric, message, reference, layer) float32: Snapshots.scores."""
    layer_mean: WireArray
    """(source, centring, metric, message, reference) float32: the mean over the layers
    (Snapshots.message_table)."""
    role_layers: WireArray
    """(source, centring, metric, role, reference, layer) float32: Snapshots.role_means at
    each layer."""
    role_mean: WireArray
    """(source, centring, metric, role, reference) float32: Snapshots.role_means of the
    means over the layers."""


# -- residual analyses (ResidualView, CrossLayerView) -----------------------------------


class ResidualPayload(TypedDict):
    """What the residual decomposition view renders (`ResidualDecomposition`),
    as one synced value."""

    schema_version: int
    kind: Literal["residual"]
    model: ModelName
    n_layers: int
    queries: list[QueryEntry]
    query_tokens: list[str]
    """(query,) the text of each query's token."""
    parallel: bool
    """Whether the blocks run attention and MLP in parallel."""
    components: list[str]
    """The rows of `norms`: block_input, attention, mlp, block_output."""
    norms: WireArray
    """(query, component, layer) float32 L2 norms."""
    cosines: WireArray
    """(query, contribution, layer) float32 cosine of block_input, attention and
    mlp with block_output."""
    identity_error: WireArray
    """(query, layer) float32 max |output - (input + attention + mlp)|."""
    default_query: int
    """Row of the query shown first ("final" when present)."""


class CrossLayerPayload(TypedDict):
    """What the cross-layer cosine view renders (`CrossLayerCosine`), as one synced value."""

    schema_version: int
    kind: Literal["cross_layer"]
    model: ModelName
    n_layers: int
    source: str
    query: QueryEntry
    token: str
    """The text of the query's token."""
    cosine: WireArray
    """(layer, layer) float32, symmetric."""


# -- every head of one layer (HeadGridView) -----------------------------------------------


class HeadGridPayload(TypedDict):
    """What the head grid view renders (`HeadGrid`), as one synced value."""

    schema_version: int
    kind: Literal["head_grid"]
    model: ModelName
    layer: int
    n_layers: int | None
    """Layers of the model, when the result knows them."""
    n_heads: int
    n_kv_heads: int | None
    """KV heads (query head h reads KV head h // (n_heads / n_kv_heads)), when known."""
    n_tokens: int
    """T, the prompt's tokens (`tokens` holds every one)."""
    pool: int
    """Tokens per block on both axes (1: one cell per token); size = ceil(T / pool) <= 1024."""
    tokens: list[str]
    patterns: WireArray
    """(head, size, size) float16: query block rows, key block columns; a pooled cell
    is the mean over its query tokens of the summed weight on its key tokens."""


# -- neuron views (NeuronView, NeuronCompareView) ---------------------------------------


class NeuronsPayload(TypedDict):
    """What the neuron view renders (`NeuronActivations`), as one synced value."""

    schema_version: int
    kind: Literal["neurons"]
    model: ModelName
    layer: int
    source: str
    """"mlp_act" or "hidden_out"."""
    rule: str
    """How the neurons were picked, in words (NeuronActivations.rule)."""
    note: str
    positions_label: str
    n_neurons: int
    """Neurons the source has at this layer (the rows are the top k of them)."""
    neurons: WireArray
    """(k,) int32 neuron indices, the rows, most variable first."""
    sd: WireArray
    """(k,) float32 sd over the scored positions that ranked them."""
    positions: WireArray
    """(position,) int32 token positions of the columns."""
    tokens: list[str]
    """(position,) the text of each column's token."""
    scored: WireArray
    """(position,) uint8 1 where the column entered the ranking and the colour scale."""
    values: WireArray
    """(k, position) float32 activations."""
    vmax: float
    """The colour scale spans -vmax..vmax (the largest |value| over the scored columns)."""


class NeuronComparePayload(TypedDict):
    """What the neuron comparison view renders (`NeuronComparison`), as one synced value."""

    schema_version: int
    kind: Literal["neuron_compare"]
    model: ModelName
    layer: int
    source: str
    rule: str
    note: str
    positions_label: str
    n_neurons: int
    neurons: WireArray
    """(k,) int32 neuron indices, the rows, largest spread first."""
    spread: WireArray
    """(k,) float32 sd of each neuron's means across the prompts."""
    labels: list[str]
    """(prompt,) the columns."""
    n_positions: list[int]
    """(prompt,) positions each mean is over."""
    means: WireArray
    """(k, prompt) float32 mean activation over each prompt's scored positions."""
    vmax: float
    """The colour scale spans -vmax..vmax (the largest |mean|)."""


# -- messages ----------------------------------------------------------------------


class Request(TypedDict):
    """What every message from the front end carries."""

    v: int
    kind: str
    id: int


class _HeadRowsRequestRequired(TypedDict):
    v: int
    kind: Literal["head_rows"]
    id: int
    query: int
    """Row of the query (index into the payload's queries)."""


class HeadRowsRequest(_HeadRowsRequestRequired, total=False):
    run: int
    """In the ablation view: the condition whose run is asked for (absent:
    the view's own run, the baseline)."""


class HeadRowsPayloadRef(TypedDict):
    """One query's per-head rows in a message: (layer, head, width), columns
    >= width are 0."""

    encoding: HeadEncoding
    rows: BufferRef


class _HeadRowsReplyRequired(TypedDict):
    v: int
    kind: Literal["head_rows"]
    id: int
    query: int
    encoding: HeadEncoding
    rows: BufferRef
    """(layer, head, width) float16."""


class HeadRowsReply(_HeadRowsReplyRequired, total=False):
    run: int
    """The request's `run`, when it had one."""


class QueryAtRequest(TypedDict):
    """A token was clicked: make its position a query (rows and lens from the
    model in the kernel)."""

    v: int
    kind: Literal["query_at"]
    id: int
    pos: int
    """Token position clicked."""


class QueryLensRefs(TypedDict):
    """The lens at the new query, one row per layer."""

    top_ids: BufferRef
    """(layer, k) int32."""
    top_probs: BufferRef
    """(layer, k) float32."""
    entropy: BufferRef
    """(layer,) float32."""
    kl_to_final: BufferRef
    tracked_ranks: BufferRef
    """(layer, tracked) int32."""
    tracked_probs: BufferRef
    """(layer, tracked) float32."""
    vocab: dict[str, str]
    """Token id (as a string) -> its text, for every id in top_ids."""


class QueryAtReply(TypedDict):
    """The new query, appended after the view's queries; the view selects it."""

    v: int
    kind: Literal["query_at"]
    id: int
    name: str
    pos: int
    method: Literal["cache", "pass"]
    """How the kernel computed it (core.run.QUERY_METHODS)."""
    note: str
    """Why it took a forward pass, when it did."""
    seconds: float
    attention: BufferRef
    """(layer, pos) head-averaged row, in the payload's attention dtype."""
    heads: HeadRowsPayloadRef
    curves: BufferRef
    """(layer, region) float32 raw masses."""
    curves_heads: BufferRef
    """(layer, head, region) float32."""
    first_token: BufferRef
    """(layer,) float32."""
    first_token_heads: BufferRef
    """(layer, head) float32."""
    lens: QueryLensRefs


class LayersMessage(TypedDict):
    """Pushed while a capture runs: consecutive layers' rows and masses."""

    v: int
    kind: Literal["layers"]
    id: int
    """Sequence number of the push."""
    layers: list[int]
    done: int
    total: int
    attention: BufferRef
    """(n, query, pos) head-averaged rows."""
    curves: BufferRef
    """(n, query, region)."""
    curves_heads: BufferRef
    """(n, head, query, region)."""
    first_token: BufferRef
    """(n, query): attention on the first token, head-averaged."""
    first_token_heads: BufferRef
    """(n, head, query)."""


class ErrorReply(TypedDict):
    """A request failed in the kernel: the front end shows `message`."""

    v: int
    kind: Literal["error"]
    id: int
    """The id of the failed request (-1 when it had none)."""
    request: str
    """The kind of the failed request."""
    message: str


PAYLOADS = (
    RunPayload,
    DiffPayload,
    AggregatePayload,
    AblationPayload,
    AttributionPayload,
    HeadGatesPayload,
    PrevTokenPayload,
    HeadAtlasPayload,
    NeuronsPayload,
    NeuronComparePayload,
    GenerationPayload,
    SnapshotsPayload,
    ResidualPayload,
    CrossLayerPayload,
    HeadGridPayload,
)
MESSAGES = (
    HeadRowsRequest,
    HeadRowsReply,
    QueryAtRequest,
    QueryAtReply,
    LayersMessage,
    ErrorReply,
)


# -- TypeScript ---------------------------------------------------------------------------


def _ts_type(annotation: object) -> str:
    """A Python annotation of this module as a TypeScript type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if annotation in (int, float):
        return "number"
    if annotation is str:
        return "string"
    if annotation is bool:
        return "boolean"
    if annotation is memoryview:
        return "DataView | ArrayBuffer | ArrayBufferView"
    if origin is Literal:
        return " | ".join(f'"{a}"' for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(_ts_type(a) for a in args)
    if origin is list:
        inner = _ts_type(args[0])
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    if origin is tuple:
        return "[" + ", ".join(_ts_type(a) for a in args) + "]"
    if origin is dict:
        return f"Record<string, {_ts_type(args[1])}>"
    if isinstance(annotation, type) and typing.is_typeddict(annotation):
        return annotation.__name__
    raise TypeError(f"No TypeScript type for {annotation!r}; extend schema._ts_type.")


def _typeddicts() -> list[type]:
    """The public TypedDicts of this module, in definition order."""
    module = sys.modules[__name__]
    return [
        value
        for name, value in vars(module).items()
        if isinstance(value, type) and typing.is_typeddict(value) and not name.startswith("_")
    ]


def typescript() -> str:
    """`js/src/schema.gen.ts`: the constants and an interface per TypedDict."""
    aliases = {"WireDType": WireDType, "HeadEncoding": HeadEncoding}
    lines = [
        "// Generated from tealeaves_widgets/widgets/schema.py by",
        "// `python tealeaves_widgets/widgets/schema.py js/src/schema.gen.ts`. Do not edit:",
        "// change the Python schema and regenerate (the build does; a unit test checks).",
        "",
        f"export const SCHEMA_VERSION = {SCHEMA_VERSION};",
        f"export const MESSAGE_VERSION = {MESSAGE_VERSION};",
        "",
    ]
    for name, alias in aliases.items():
        lines.append(f"export type {name} = {_ts_type(alias)};")
    for cls in _typeddicts():
        hints = typing.get_type_hints(cls)
        optional = cls.__optional_keys__  # type: ignore[attr-defined]
        doc = (cls.__doc__ or "").strip()
        lines.append("")
        if doc and not doc.startswith(cls.__name__ + "("):  # TypedDict's own default
            lines.append("/** " + " ".join(doc.split()) + " */")
        lines.append(f"export interface {cls.__name__} {{")
        for key, annotation in hints.items():
            text = _ts_type(annotation)
            for alias_name, alias in aliases.items():
                if text == _ts_type(alias):
                    text = alias_name
            lines.append(f"  {key}{'?' if key in optional else ''}: {text};")
        lines.append("}")
    return "\n".join(lines) + "\n"


def check_typeddict(value: object, cls: type, where: str = "payload") -> list[str]:
    """Differences between `value` and the TypedDict `cls`: missing and unknown
    keys, and values of the wrong kind, recursively (for tests)."""
    problems: list[str] = []
    _check(value, cls, where, problems)
    return problems


def _check(value: object, annotation: object, where: str, problems: list[str]) -> None:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and typing.is_typeddict(annotation):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object, got {type(value).__name__}")
            return
        hints = typing.get_type_hints(annotation)
        required = annotation.__required_keys__  # type: ignore[attr-defined]
        for key in sorted(required - set(value)):
            problems.append(f"{where}: missing key {key!r}")
        for key in sorted(set(value) - set(hints)):
            problems.append(f"{where}: unknown key {key!r}")
        for key, inner in hints.items():
            if key in value:
                _check(value[key], inner, f"{where}.{key}", problems)
        return
    if origin in (Union, types.UnionType):
        for option in args:
            attempt: list[str] = []
            _check(value, option, where, attempt)
            if not attempt:
                return
        problems.append(f"{where}: {value!r:.60} is none of {_ts_type(annotation)}")
        return
    if origin is Literal:
        if value not in args:
            problems.append(f"{where}: {value!r} is not one of {list(args)}")
        return
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{where}: expected a list, got {type(value).__name__}")
            return
        inner = args if origin is tuple else [args[0]] * len(value)
        if origin is tuple and len(value) != len(args):
            problems.append(f"{where}: expected {len(args)} items, got {len(value)}")
            return
        for i, (item, item_type) in enumerate(zip(value, inner, strict=False)):
            _check(item, item_type, f"{where}[{i}]", problems)
        return
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(item, args[1], f"{where}[{key!r}]", problems)
        return
    expected = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}
    if annotation is type(None):
        if value is not None:
            problems.append(f"{where}: expected null, got {value!r:.60}")
    elif annotation is memoryview:
        if not isinstance(value, (memoryview, bytes, bytearray)):
            problems.append(f"{where}: expected binary data, got {type(value).__name__}")
    elif annotation in expected:
        ok = isinstance(value, expected[annotation]) and (
            annotation is bool or not isinstance(value, bool)
        )
        if not ok:
            problems.append(f"{where}: expected {annotation.__name__}, got {value!r:.60}")  # type: ignore[union-attr]


def write_typescript(target: str) -> bool:
    """Write `typescript()` to `target` when it differs; True when it wrote."""
    from pathlib import Path

    path, text = Path(target), typescript()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


if __name__ == "__main__":  # python tealeaves_widgets/widgets/schema.py js/src/schema.gen.ts
    if len(sys.argv) > 1:
        print(("wrote " if write_typescript(sys.argv[1]) else "up to date: ") + sys.argv[1])
    else:
        sys.stdout.write(typescript())
