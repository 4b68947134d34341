// Generated from tealeaves_widgets/widgets/schema.py by
// `python tealeaves_widgets/widgets/schema.py js/src/schema.gen.ts`. Do not edit:
// change the Python schema and regenerate (the build does; a unit test checks).

export const SCHEMA_VERSION = 2;
export const MESSAGE_VERSION = 1;

export type WireDType = "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32" | "float16" | "float32";
export type HeadEncoding = "sqrt-uint8" | "float16";

/** One array: little-endian, C order. */
export interface WireArray {
  dtype: WireDType;
  shape: number[];
  data: DataView | ArrayBuffer | ArrayBufferView;
}

/** An array whose bytes are buffer number `buffer` of the message. */
export interface BufferRef {
  dtype: WireDType;
  shape: number[];
  buffer: number;
}

export interface ModelInfo {
  model_id: string;
  n_layers: number;
  n_heads: number;
}

export interface RegionEntry {
  name: string;
  section: string;
  color: string;
  char_span: [number, number];
  token_indices: WireArray;
  parent: string | null;
  builtin: boolean;
}

export interface QueryEntry {
  name: string;
  pos: number;
}

export interface LensPayload {
  k: number;
  top_ids: WireArray;
  top_probs: WireArray;
  entropy: WireArray;
  kl_to_final: WireArray;
  tracked_tokens: string[];
  tracked_ids: WireArray;
  tracked_ranks: WireArray;
  tracked_probs: WireArray;
  vocab: Record<string, string>;
}

/** One query's per-head rows, (layer, head, width); columns >= width are 0. */
export interface HeadRowsPayload {
  encoding: HeadEncoding;
  rows: WireArray;
}

export interface Budget {
  max_bytes: number;
  bytes: number;
}

/** A capture still running (`Model.explore`): layers 0..done-1 have data. */
export interface Pending {
  done: number;
  total: number;
  stopped?: string;
  follow?: boolean;
}

/** Everything the run views render, as one synced value. */
export interface RunPayload {
  schema_version: number;
  model: ModelInfo;
  n_tokens: number;
  tokens: string[];
  token_ids: WireArray;
  gaps: [number, string][];
  token_region: WireArray;
  regions: RegionEntry[];
  queries: QueryEntry[];
  default_query: number;
  attention: WireArray;
  curves: WireArray;
  curves_heads: WireArray;
  first_token: WireArray;
  first_token_heads: WireArray;
  lens: LensPayload;
  heads: (HeadRowsPayload | null)[];
  budget: Budget;
  pending?: Pending;
}

export interface ModelName {
  model_id: string;
}

export interface RegionColor {
  name: string;
  color: string;
}

export interface DiffOptionsEntry {
  normalize: string;
  level: number;
  interval: string;
  excluded: string;
  first_excluded: boolean;
  share_level: string | number;
  min_effect: number;
}

export interface TableRow {
  label: number | string;
  layers: number[];
}

export interface AlignmentEntry {
  op: WireArray;
  baseline_pos: WireArray;
  variant_pos: WireArray;
}

export interface DiffCase {
  case: number;
  runs: number[];
  alignments: (AlignmentEntry | null)[];
}

export interface DiffRun {
  tokens: string[];
  gaps: [number, string][];
  token_region: WireArray;
  query_pos: number[];
  attention: WireArray;
}

/** Everything the variant diff renders, as one synced value. */
export interface DiffPayload {
  schema_version: number;
  kind: "variant_diff";
  model: ModelName;
  n_layers: number;
  variants: string[];
  sets: boolean[];
  queries: string[];
  default_query: number;
  regions: RegionColor[];
  tracked_tokens: string[];
  options: DiffOptionsEntry;
  region_labels: string[];
  rows: TableRow[];
  curves: Record<string, WireArray>;
  table: Record<string, WireArray>;
  lens: Record<string, WireArray> | null;
  sink: Record<string, WireArray>;
  case_labels: string[];
  cases: DiffCase[];
  runs: DiffRun[];
  bytes: number;
}

export interface AggregateSet {
  name: string;
  runs: number;
  cases: number;
  units: number;
}

/** Everything the aggregate view renders, as one synced value. */
export interface AggregatePayload {
  schema_version: number;
  kind: "aggregate";
  model: ModelName;
  n_layers: number;
  sets: AggregateSet[];
  queries: string[];
  default_query: number;
  regions: RegionColor[];
  normalizations: string[];
  excluded: string[];
  first_excluded: boolean[];
  own: boolean[];
  stats: string[];
  level: number;
  interval: string;
  values: WireArray;
  sink: WireArray;
  excluded_mass: WireArray;
  bytes: number;
}

export interface AblationCondition {
  name: string;
  description: string;
  knockout: string | null;
  positions: WireArray;
}

/** What the ablation view renders besides the base run (the view's `payload`), as one synced value; per-condition arrays follow `conditions`. */
export interface AblationPayload {
  schema_version: number;
  kind: "ablation";
  model: ModelName;
  at: string;
  position: number;
  base_top: number;
  base_prob: number;
  k: number;
  conditions: AblationCondition[];
  predicted: WireArray;
  predicted_prob: WireArray;
  delta_base_top: WireArray;
  delta_logprob: WireArray;
  delta_centered: WireArray;
  kl: WireArray;
  rose: WireArray;
  rose_delta: WireArray;
  fell: WireArray;
  fell_delta: WireArray;
  vocab: Record<string, string>;
  runs: boolean[];
  budget: Budget;
}

/** A condition's run sent by the kernel on request (it was over the budget): `condition` indexes the ablation's conditions. */
export interface RunDetail {
  condition: number;
  payload: RunPayload;
}

export interface AttributionRegion {
  name: string;
  section: string;
  color: string;
  parent: string | null;
  builtin: boolean;
  token_indices: WireArray;
}

/** What the attribution view renders (`Attribution`), as one synced value. */
export interface AttributionPayload {
  schema_version: number;
  kind: "attribution";
  model: ModelName;
  target: string;
  target_tokens: string[];
  loss: string;
  log_prob: number;
  gated: string | null;
  tokens: string[];
  token_region: WireArray;
  regions: AttributionRegion[];
  grad_norm: WireArray;
  grad_x_input: WireArray;
  region_grad_norm: WireArray;
  region_share: WireArray;
  region_grad_x_input: WireArray;
}

/** What the head gates view renders (`HeadGates`), as one synced value. */
export interface HeadGatesPayload {
  schema_version: number;
  kind: "head_gates";
  model: ModelName;
  n_layers: number;
  n_heads: number;
  phases: string[];
  gates: WireArray;
  label_names: string[];
  labels: WireArray;
  losses: WireArray[];
  base_loss: number;
  strength: number;
  threshold: number;
}

/** What the previous-token test view renders (`PrevTokenTest`), as one synced value. */
export interface PrevTokenPayload {
  schema_version: number;
  kind: "prev_token";
  model: ModelName;
  layer: number;
  head: number;
  value_heads: number[] | null;
  n_texts: number;
  n_layers: number;
  offsets: number[];
  redundancy: WireArray;
  residual_effect_sd: WireArray;
  pairs: string[];
  inner_mean: WireArray;
  inner_sd: WireArray;
  cos_mean: WireArray;
  cos_sd: WireArray;
}

/** One metric of the atlas (`core.head_atlas.METRICS`), with the atlas's note on it. */
export interface AtlasMetricEntry {
  name: string;
  description: string;
  probe_set: string;
  signed: boolean;
  note: string;
}

/** One probe set of the atlas: how many sequences, of what lengths. */
export interface ProbeSetEntry {
  name: string;
  count: number;
  min_length: number;
  max_length: number;
}

/** What the head atlas view renders (`HeadAtlas`), as one synced value. */
export interface HeadAtlasPayload {
  schema_version: number;
  kind: "head_atlas";
  model: ModelName;
  n_layers: number;
  n_heads: number;
  metrics: AtlasMetricEntry[];
  scores: WireArray;
  profiles: WireArray;
  patterns: WireArray;
  probes: ProbeSetEntry[];
  bos_prepended: boolean;
  seed: number;
}

/** What the generation panel of `GenerationView` renders (`Generation`): the steps; the run over prompt + generation travels as the explorer's payload. */
export interface GenerationPayload {
  schema_version: number;
  kind: "generation";
  model: ModelName;
  prompt_length: number;
  n_steps: number;
  k: number;
  queries: string[];
  tokens: string[];
  logprobs: WireArray;
  argmax: string[];
  entropy: WireArray;
  top_tokens: string[];
  top_logprobs: WireArray;
  stop_reason: string;
  sampling: string;
}

/** One message of the conversation, as its row is labelled (text, never markup). */
export interface SnapshotMessage {
  role: string;
  preview: string;
  content: string;
  position: number;
}

export interface SnapshotReference {
  label: string;
  color: string;
}

/** What the conversation snapshots view renders (`Snapshots`), as one synced value: every source, centring and metric, so the view needs no kernel. */
export interface SnapshotsPayload {
  schema_version: number;
  kind: "snapshots";
  model: ModelName;
  readout: string;
  single_pass: boolean;
  n_layers: number;
  sources: string[];
  metrics: string[];
  centrings: string[];
  roles: string[];
  messages: SnapshotMessage[];
  references: SnapshotReference[];
  scores: WireArray;
  layer_mean: WireArray;
  role_layers: WireArray;
  role_mean: WireArray;
}

/** What the residual decomposition view renders (`ResidualDecomposition`), as one synced value. */
export interface ResidualPayload {
  schema_version: number;
  kind: "residual";
  model: ModelName;
  n_layers: number;
  queries: QueryEntry[];
  query_tokens: string[];
  parallel: boolean;
  components: string[];
  norms: WireArray;
  cosines: WireArray;
  identity_error: WireArray;
  default_query: number;
}

/** What the cross-layer cosine view renders (`CrossLayerCosine`), as one synced value. */
export interface CrossLayerPayload {
  schema_version: number;
  kind: "cross_layer";
  model: ModelName;
  n_layers: number;
  source: string;
  query: QueryEntry;
  token: string;
  cosine: WireArray;
}

/** What the head grid view renders (`HeadGrid`), as one synced value. */
export interface HeadGridPayload {
  schema_version: number;
  kind: "head_grid";
  model: ModelName;
  layer: number;
  n_layers: number | null;
  n_heads: number;
  n_kv_heads: number | null;
  n_tokens: number;
  pool: number;
  tokens: string[];
  patterns: WireArray;
}

/** What the neuron view renders (`NeuronActivations`), as one synced value. */
export interface NeuronsPayload {
  schema_version: number;
  kind: "neurons";
  model: ModelName;
  layer: number;
  source: string;
  rule: string;
  note: string;
  positions_label: string;
  n_neurons: number;
  neurons: WireArray;
  sd: WireArray;
  positions: WireArray;
  tokens: string[];
  scored: WireArray;
  values: WireArray;
  vmax: number;
}

/** What the neuron comparison view renders (`NeuronComparison`), as one synced value. */
export interface NeuronComparePayload {
  schema_version: number;
  kind: "neuron_compare";
  model: ModelName;
  layer: number;
  source: string;
  rule: string;
  note: string;
  positions_label: string;
  n_neurons: number;
  neurons: WireArray;
  spread: WireArray;
  labels: string[];
  n_positions: number[];
  means: WireArray;
  vmax: number;
}

/** What every message from the front end carries. */
export interface Request {
  v: number;
  kind: string;
  id: number;
}

export interface HeadRowsRequest {
  v: number;
  kind: "head_rows";
  id: number;
  query: number;
  run?: number;
}

/** One query's per-head rows in a message: (layer, head, width), columns >= width are 0. */
export interface HeadRowsPayloadRef {
  encoding: HeadEncoding;
  rows: BufferRef;
}

export interface HeadRowsReply {
  v: number;
  kind: "head_rows";
  id: number;
  query: number;
  encoding: HeadEncoding;
  rows: BufferRef;
  run?: number;
}

/** A token was clicked: make its position a query (rows and lens from the model in the kernel). */
export interface QueryAtRequest {
  v: number;
  kind: "query_at";
  id: number;
  pos: number;
}

/** The lens at the new query, one row per layer. */
export interface QueryLensRefs {
  top_ids: BufferRef;
  top_probs: BufferRef;
  entropy: BufferRef;
  kl_to_final: BufferRef;
  tracked_ranks: BufferRef;
  tracked_probs: BufferRef;
  vocab: Record<string, string>;
}

/** The new query, appended after the view's queries; the view selects it. */
export interface QueryAtReply {
  v: number;
  kind: "query_at";
  id: number;
  name: string;
  pos: number;
  method: "cache" | "pass";
  note: string;
  seconds: number;
  attention: BufferRef;
  heads: HeadRowsPayloadRef;
  curves: BufferRef;
  curves_heads: BufferRef;
  first_token: BufferRef;
  first_token_heads: BufferRef;
  lens: QueryLensRefs;
}

/** Pushed while a capture runs: consecutive layers' rows and masses. */
export interface LayersMessage {
  v: number;
  kind: "layers";
  id: number;
  layers: number[];
  done: number;
  total: number;
  attention: BufferRef;
  curves: BufferRef;
  curves_heads: BufferRef;
  first_token: BufferRef;
  first_token_heads: BufferRef;
}

/** A request failed in the kernel: the front end shows `message`. */
export interface ErrorReply {
  v: number;
  kind: "error";
  id: number;
  request: string;
  message: string;
}
