// Decoders of the variant diff and aggregate payloads written by
// tealeaves_widgets/widgets/diff.py and aggregate.py, and the arithmetic the
// views do on them (token deltas along an alignment), kept free of the DOM.

import type { AggregatePayload as AggregateWire, DiffPayload as DiffWire } from "./schema.gen";
import { WireError, type WireArray, checkSchema, decodeArray, decodeFloat } from "./wire";

/** A dense float array with named axes, NaN where the tidy table had no row. */
export class Grid {
  readonly shape: number[];
  readonly values: Float32Array;
  private strides: number[];

  constructor(value: WireArray, what: string) {
    if (value?.dtype === "int8") {
      this.values = Float32Array.from(decodeArray(value as WireArray & { dtype: "int8" }, what));
    } else {
      this.values = decodeFloat(value, what);
    }
    this.shape = value.shape;
    this.strides = this.shape.map((_, i) => this.shape.slice(i + 1).reduce((a, b) => a * b, 1));
  }

  get(...index: number[]): number {
    let offset = 0;
    for (let i = 0; i < index.length; i++) offset += index[i] * this.strides[i];
    return this.values[offset];
  }

  /** The values along the last axis at `index` (a view, no copy). */
  row(...index: number[]): Float32Array {
    let offset = 0;
    for (let i = 0; i < index.length; i++) offset += index[i] * this.strides[i];
    const n = this.shape[this.shape.length - 1];
    return this.values.subarray(offset, offset + n);
  }
}

function grids(raw: Record<string, WireArray>, what: string): Record<string, Grid> {
  const out: Record<string, Grid> = {};
  for (const [name, value] of Object.entries(raw)) out[name] = new Grid(value, `${what}.${name}`);
  return out;
}

function checkKind(raw: { kind: string }, kind: string): void {
  if (raw.kind !== kind) throw new WireError(`Expected a ${kind} payload, got ${String(raw.kind)}.`);
}

export interface RegionColor {
  name: string;
  color: string;
}

// -- variant diff -------------------------------------------------------------

export const OP_EQUAL = 0;
export const OP_DELETE = 1;
export const OP_INSERT = 2;

export interface DiffRun {
  tokens: string[];
  gaps: Map<number, string>;
  tokenRegion: Int16Array;
  queryPos: number[];
  /** (layer, query, pos) head-averaged attention. */
  attention: Float32Array;
  nTokens: number;
}

export interface Alignment {
  op: Int8Array;
  baselinePos: Int32Array;
  variantPos: Int32Array;
}

export interface DiffCase {
  case: number;
  /** Index into `runs` of each variant's run. */
  runs: number[];
  /** Per variant, its alignment with the baseline (null for the baseline). */
  alignments: (Alignment | null)[];
}

export interface TableRow {
  label: number | string;
  layers: number[];
}

export interface DiffPayload {
  modelId: string;
  nLayers: number;
  variants: string[];
  sets: boolean[];
  queries: string[];
  defaultQuery: number;
  regions: RegionColor[];
  trackedTokens: string[];
  /** What the masses are: normalisation, what was excluded ("first token"),
   * whether the first token is among it, the share level and the smallest
   * |delta| that can be significant. */
  options: { normalize: string; level: number; interval: string; excluded: string; firstExcluded: boolean; shareLevel: string | number; minEffect: number };
  /** Per region, how its rows read: "<name> (own)" when its share counts only its own tokens. */
  regionLabels: string[];
  rows: TableRow[];
  /** (variant, query, layer, region): mass, mass_low, mass_high. */
  curves: Record<string, Grid>;
  /** (variant, query, region, row): the columns of Comparison.deltas. */
  table: Record<string, Grid>;
  /** (variant, query, token, row): the columns of Comparison.lens_deltas. */
  lens: Record<string, Grid> | null;
  /** (variant, query, layer), means over units: the first token's attention
   * (`first`, the sink) and the excluded tokens' (`excluded`); null in a
   * payload written before they were sent. */
  sink: { first: Grid; excluded: Grid } | null;
  caseLabels: string[];
  cases: DiffCase[];
  runs: DiffRun[];
}

export function decodeDiff(value: unknown): DiffPayload {
  const raw = checkSchema<DiffWire>(value);
  checkKind(raw, "variant_diff");
  const nLayers = raw.n_layers;
  const queries = raw.queries;
  const runs: DiffRun[] = raw.runs.map((r, i) => {
    const nTokens = r.tokens.length;
    const attention = decodeFloat(r.attention, `runs[${i}].attention`);
    if (attention.length !== nLayers * queries.length * nTokens) {
      throw new WireError(`runs[${i}].attention: expected (${nLayers}, ${queries.length}, ${nTokens}), got [${r.attention.shape}].`);
    }
    return {
      tokens: r.tokens,
      gaps: new Map(r.gaps.map(([pos, text]) => [pos, text])),
      tokenRegion: decodeArray(r.token_region as WireArray & { dtype: "int16" }, `runs[${i}].token_region`),
      queryPos: r.query_pos,
      attention,
      nTokens,
    };
  });
  const cases: DiffCase[] = raw.cases.map((c) => ({
    case: c.case,
    runs: c.runs,
    alignments: c.alignments.map((a) =>
      a
        ? {
            op: decodeArray(a.op as WireArray & { dtype: "int8" }, "alignment.op"),
            baselinePos: decodeArray(a.baseline_pos as WireArray & { dtype: "int32" }, "alignment.baseline_pos"),
            variantPos: decodeArray(a.variant_pos as WireArray & { dtype: "int32" }, "alignment.variant_pos"),
          }
        : null,
    ),
  }));
  if (!cases.length) throw new WireError("The comparison arrived without any case's tokens.");
  return {
    modelId: raw.model.model_id,
    nLayers,
    variants: raw.variants,
    sets: raw.sets,
    queries,
    defaultQuery: raw.default_query,
    regions: raw.regions,
    trackedTokens: raw.tracked_tokens,
    options: {
      normalize: raw.options.normalize,
      level: raw.options.level,
      interval: raw.options.interval,
      excluded: raw.options.excluded,
      firstExcluded: raw.options.first_excluded ?? raw.options.excluded === "first token",
      shareLevel: raw.options.share_level,
      minEffect: raw.options.min_effect,
    },
    regionLabels: raw.region_labels,
    rows: raw.rows,
    curves: grids(raw.curves, "curves"),
    table: grids(raw.table, "table"),
    lens: raw.lens ? grids(raw.lens, "lens") : null,
    sink: raw.sink?.first && raw.sink?.excluded ? { first: new Grid(raw.sink.first, "sink.first"), excluded: new Grid(raw.sink.excluded, "sink.excluded") } : null,
    caseLabels: raw.case_labels,
    cases,
    runs,
  };
}

/** The attention row of `query` at `layer` of one run: (pos,). */
export function attentionRow(run: DiffRun, nQueries: number, layer: number, query: number): Float32Array {
  const start = (layer * nQueries + query) * run.nTokens;
  return run.attention.subarray(start, start + run.nTokens);
}

/** Per alignment step, variant minus baseline attention: as
 * Comparison.token_deltas, NaN where the token is inserted or deleted. */
export function stepDeltas(alignment: Alignment, baseline: Float32Array, variant: Float32Array): Float64Array {
  const out = new Float64Array(alignment.op.length);
  for (let s = 0; s < out.length; s++) {
    out[s] = alignment.op[s] === OP_EQUAL ? variant[alignment.variantPos[s]] - baseline[alignment.baselinePos[s]] : NaN;
  }
  return out;
}

/**
 * What each token of both prompts is shaded by, in "delta" mode: a shared
 * token by the change of its attention (the same on both sides); a deleted
 * token by minus its baseline attention (attention the variant no longer
 * gives it), an inserted token by its variant attention (attention gained).
 */
export function tokenShades(alignment: Alignment, baseline: Float32Array, variant: Float32Array): { left: Float64Array; right: Float64Array } {
  const left = new Float64Array(baseline.length).fill(NaN);
  const right = new Float64Array(variant.length).fill(NaN);
  for (let s = 0; s < alignment.op.length; s++) {
    const b = alignment.baselinePos[s];
    const v = alignment.variantPos[s];
    const op = alignment.op[s];
    if (op === OP_EQUAL) left[b] = right[v] = variant[v] - baseline[b];
    else if (op === OP_DELETE) left[b] = -baseline[b];
    else right[v] = variant[v];
  }
  return { left, right };
}

// -- aggregate ----------------------------------------------------------------

export interface AggregateSet {
  name: string;
  runs: number;
  cases: number;
  units: number;
}

export interface AggregatePayload {
  modelId: string;
  nLayers: number;
  sets: AggregateSet[];
  queries: string[];
  defaultQuery: number;
  regions: RegionColor[];
  normalizations: string[];
  /** Per normalisation, what its masses leave out ("first token" for "share"). */
  excluded: string[];
  /** Per normalisation: the first token is among what it leaves out. */
  firstExcluded: boolean[];
  /** Per region: True when its "share" counts only its own tokens (label it "(own)"). */
  own: boolean[];
  stats: string[];
  level: number;
  interval: string;
  /** (set, normalize, query, layer, region, stat). */
  values: Grid;
  /** (set, query, layer): the first token's attention (the sink), mean over
   * units; null in a payload written before it was sent. */
  sink: Grid | null;
  /** (set, normalize, query, layer): the excluded tokens' attention, mean over units. */
  excludedMass: Grid | null;
}

export function decodeAggregate(value: unknown): AggregatePayload {
  const raw = checkSchema<AggregateWire>(value);
  checkKind(raw, "aggregate");
  const values = new Grid(raw.values, "values");
  const expected = [raw.sets.length, raw.normalizations.length, raw.queries.length, raw.n_layers, raw.regions.length, raw.stats.length];
  if (values.shape.join() !== expected.join()) {
    throw new WireError(`values: expected shape [${expected}], got [${values.shape}].`);
  }
  return {
    modelId: raw.model.model_id,
    nLayers: raw.n_layers,
    sets: raw.sets,
    queries: raw.queries,
    defaultQuery: raw.default_query,
    regions: raw.regions,
    normalizations: raw.normalizations,
    excluded: raw.excluded,
    firstExcluded: raw.first_excluded ?? raw.excluded.map((e) => e === "first token"),
    own: raw.own,
    stats: raw.stats,
    level: raw.level,
    interval: raw.interval,
    values,
    sink: raw.sink ? new Grid(raw.sink, "sink") : null,
    excludedMass: raw.excluded_mass ? new Grid(raw.excluded_mass, "excluded_mass") : null,
  };
}

/** (layer,) of one statistic of one set, region, normalisation and query. */
export function aggregateCurve(p: AggregatePayload, set: number, normalize: number, query: number, region: number, stat: string): Float64Array {
  const k = p.stats.indexOf(stat);
  const out = new Float64Array(p.nLayers);
  for (let l = 0; l < p.nLayers; l++) out[l] = p.values.get(set, normalize, query, l, region, k);
  return out;
}
