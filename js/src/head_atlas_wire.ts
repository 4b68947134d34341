// Decoder of the head atlas payload written by
// tealeaves_widgets/widgets/head_atlas.py, and the arithmetic of its view
// kept free of the DOM: a metric's colour scale (diverging around 0 for a
// signed metric), which heads a threshold dims, the order of the heads in a
// layer, the ranked heads, and the colour range of a mean pattern.

import { divergingIndex } from "./colour";
import type { AtlasMetricEntry, HeadAtlasPayload as HeadAtlasWire, ProbeSetEntry } from "./schema.gen";
import { WireError, type WireArray, checkSchema, decodeFloat } from "./wire";

/** How the grid orders a layer's heads, as HeadAtlasView.sort. */
export type Sort = "head" | "score";
export const SORTS: Sort[] = ["head", "score"];

export interface AtlasMetric {
  name: string;
  description: string;
  probeSet: string;
  signed: boolean;
  note: string;
}

export interface HeadAtlas {
  modelId: string;
  nLayers: number;
  nHeads: number;
  metrics: AtlasMetric[];
  /** (metric, layer, head) scores; NaN where a head has none. */
  scores: Float32Array;
  /** Offsets d = 0..nOffsets-1 of the profiles. */
  nOffsets: number;
  /** (layer, head, offset) mean weight at distance d. */
  profiles: Float32Array;
  /** Side P of the mean patterns. */
  P: number;
  /** (layer, head, query, key) mean pattern on the repeated random probes. */
  patterns: Float32Array;
  probes: ProbeSetEntry[];
  bosPrepended: boolean;
  seed: number;
}

export function decodeHeadAtlas(value: unknown): HeadAtlas {
  const raw = checkSchema<HeadAtlasWire>(value);
  if (raw.kind !== "head_atlas") throw new WireError(`Expected a head atlas payload, got ${String(raw.kind)}.`);
  const { n_layers: L, n_heads: H } = raw;
  const M = raw.metrics.length;
  const floats = (array: WireArray, what: string, shape: number[], rank: number) => {
    if (array?.shape?.length !== rank) throw new WireError(`${what}: expected ${rank} axes, got [${array?.shape}].`);
    const out = decodeFloat(array, what);
    if (shape.some((n, i) => array.shape[i] !== n)) throw new WireError(`${what}: expected (${shape.join(", ")}, ...), got [${array.shape}].`);
    return out;
  };
  const scores = floats(raw.scores, "scores", [M, L, H], 3);
  const profiles = floats(raw.profiles, "profiles", [L, H], 3);
  const patterns = floats(raw.patterns, "patterns", [L, H], 4);
  const P = raw.patterns.shape[2];
  if (raw.patterns.shape[3] !== P) throw new WireError(`patterns: expected square (P, P) patterns, got [${raw.patterns.shape}].`);
  return {
    modelId: raw.model.model_id,
    nLayers: L,
    nHeads: H,
    metrics: raw.metrics.map((m: AtlasMetricEntry) => ({ name: m.name, description: m.description, probeSet: m.probe_set, signed: m.signed, note: m.note })),
    scores,
    nOffsets: raw.profiles.shape[2],
    profiles,
    P,
    patterns,
    probes: raw.probes,
    bosPrepended: raw.bos_prepended,
    seed: raw.seed,
  };
}

/** Index of metric `name` (the first when unknown). */
export function metricIndex(a: HeadAtlas, name: unknown): number {
  const index = a.metrics.findIndex((m) => m.name === name);
  return Math.max(index, 0);
}

/** The (layer, head) scores of metric m, a view into `a.scores`. */
export function metricScores(a: HeadAtlas, m: number): Float32Array {
  const n = a.nLayers * a.nHeads;
  return a.scores.subarray(m * n, (m + 1) * n);
}

export function score(a: HeadAtlas, m: number, layer: number, head: number): number {
  return a.scores[(m * a.nLayers + layer) * a.nHeads + head];
}

/** What a head is ranked by: the score, or |score| for a signed metric; NaN stays NaN. */
export function strength(value: number, signed: boolean): number {
  return signed ? Math.abs(value) : value;
}

// -- colours ---------------------------------------------------------------------

/** The colour range of one metric: symmetric around 0 for a signed metric
 * (diverging palette), else from min(0, smallest) to the largest (heat palette). */
export interface MetricScale {
  signed: boolean;
  low: number;
  high: number;
}

export function metricScale(values: ArrayLike<number>, signed: boolean): MetricScale {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min > max) return { signed, low: signed ? -1 : 0, high: 1 }; // nothing finite
  if (signed) {
    const m = Math.max(Math.abs(min), Math.abs(max));
    return m > 0 ? { signed, low: -m, high: m } : { signed, low: -1, high: 1 };
  }
  const low = Math.min(0, min);
  return { signed, low, high: max > low ? max : low + 1 };
}

/** Palette index of a value: the diverging palette's (0..254, DIVERGING_CENTRE
 * at 0) for a signed scale, the heat palette's (1..255) otherwise; -1 for NaN. */
export function colourIndex(value: number, scale: MetricScale): number {
  if (!Number.isFinite(value)) return -1;
  if (scale.signed) return divergingIndex(value, scale.high);
  const t = (value - scale.low) / (scale.high - scale.low);
  return 1 + Math.round(254 * Math.min(Math.max(t, 0), 1));
}


/** Is a head dimmed by the threshold? Its score (|score| for a signed metric)
 * is below it; a NaN score is dimmed by any threshold above 0; 0 dims nothing. */
export function dimmed(value: number, threshold: number, signed: boolean): boolean {
  if (!(threshold > 0)) return false;
  const s = strength(value, signed);
  return !(s >= threshold);
}

/** Largest threshold worth offering: the largest strength over the heads. */
export function thresholdMax(values: ArrayLike<number>, signed: boolean): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const s = strength(values[i], signed);
    if (Number.isFinite(s) && s > max) max = s;
  }
  return max;
}

// -- order -----------------------------------------------------------------------

/** Strongest first, NaN last, ties by index. */
function byStrength(values: ArrayLike<number>, signed: boolean): (i: number, j: number) => number {
  return (i, j) => {
    const a = strength(values[i], signed);
    const b = strength(values[j], signed);
    const an = Number.isNaN(a);
    const bn = Number.isNaN(b);
    if (an || bn) return an === bn ? i - j : an ? 1 : -1;
    return b - a || i - j;
  };
}

/** (layer, slot) -> head: the heads of each layer in the grid's order. */
export function headOrder(values: ArrayLike<number>, nLayers: number, nHeads: number, sort: Sort, signed: boolean): Int32Array {
  const order = new Int32Array(nLayers * nHeads);
  for (let layer = 0; layer < nLayers; layer++) {
    const heads = Array.from({ length: nHeads }, (_, h) => h);
    if (sort === "score") {
      const row = Array.from({ length: nHeads }, (_, h) => values[layer * nHeads + h]);
      heads.sort(byStrength(row, signed));
    }
    order.set(heads, layer * nHeads);
  }
  return order;
}

export interface RankedHead {
  layer: number;
  head: number;
  value: number;
}

/** The k strongest heads, best first (as HeadAtlas.top: |score| for a signed
 * metric; NaN last). */
export function topHeads(values: ArrayLike<number>, nHeads: number, k: number, signed: boolean): RankedHead[] {
  const index = Array.from({ length: values.length }, (_, i) => i);
  index.sort(byStrength(values, signed));
  return index.slice(0, Math.max(0, k)).map((i) => ({ layer: Math.floor(i / nHeads), head: i % nHeads, value: values[i] }));
}

/** 1-based rank of head i among all heads (1 = strongest); 0 for a NaN score. */
export function rankOf(values: ArrayLike<number>, i: number, signed: boolean): number {
  const s = strength(values[i], signed);
  if (Number.isNaN(s)) return 0;
  let rank = 1;
  for (let j = 0; j < values.length; j++) {
    const t = strength(values[j], signed);
    if (t > s || (t === s && j < i)) rank++;
  }
  return rank;
}

// -- the selected head -------------------------------------------------------------

/** The mean pattern of one head, (query, key), a view into `a.patterns`. */
export function pattern(a: HeadAtlas, layer: number, head: number): Float32Array {
  const n = a.P * a.P;
  const start = (layer * a.nHeads + head) * n;
  return a.patterns.subarray(start, start + n);
}

/** The offset profile of one head, (offset,). */
export function profile(a: HeadAtlas, layer: number, head: number): Float32Array {
  const start = (layer * a.nHeads + head) * a.nOffsets;
  return a.profiles.subarray(start, start + a.nOffsets);
}

/** The offset d >= 1 where a profile peaks (-1 when none is finite). */
export function profilePeak(values: ArrayLike<number>): number {
  let best = -1;
  for (let d = 1; d < values.length; d++) {
    if (Number.isFinite(values[d]) && (best < 0 || values[d] > values[best])) best = d;
  }
  return best;
}

/** The colour range of a (P, P) pattern: linear from 0 to the largest weight
 * on any key but the first (the sink, which takes most of the weight on its
 * own and would leave every other key pale), so the first key's column is
 * clipped at the darkest shade. `sink`: the mean weight on the first key. */
export function patternScale(values: ArrayLike<number>, P: number): { high: number; sink: number; sinkMax: number } {
  let high = 0;
  let sink = 0;
  let sinkMax = 0;
  for (let q = 0; q < P; q++) {
    const first = values[q * P];
    if (Number.isFinite(first)) {
      sink += first;
      sinkMax = Math.max(sinkMax, first);
    }
    for (let k = 1; k <= q; k++) {
      const w = values[q * P + k];
      if (w > high) high = w;
    }
  }
  return { high, sink: P > 0 ? sink / P : NaN, sinkMax };
}

/** Heat palette index (0 = background, 1..255) of a pattern weight on 0..high (clipped). */
export function patternIndex(w: number, high: number): number {
  if (!(w > 0) || !(high > 0)) return 0;
  return Math.max(1, Math.min(255, Math.round((255 * w) / high)));
}

// -- the grid's geometry -------------------------------------------------------------

/** Where the grid's cells lie on its canvas, in CSS pixels: layer labels on
 * the left, head (or rank) labels on top, one row per layer, layer 0 on top. */
export interface GridLayout {
  left: number;
  top: number;
  cell: number; // width
  row: number; // height
  width: number;
  height: number;
}

export function gridLayout(nLayers: number, nHeads: number): GridLayout {
  const cell = Math.max(14, Math.min(30, Math.floor(380 / Math.max(nHeads, 1))));
  const row = Math.max(10, Math.min(20, Math.floor(560 / Math.max(nLayers, 1))));
  const left = 30;
  const top = 16;
  return { left, top, cell, row, width: left + nHeads * cell + 2, height: top + nLayers * row + 2 };
}

/** The layer and slot under a point of the canvas (CSS px), or null off the cells. */
export function cellAt(g: GridLayout, nLayers: number, nHeads: number, x: number, y: number): { layer: number; slot: number } | null {
  const slot = Math.floor((x - g.left) / g.cell);
  const layer = Math.floor((y - g.top) / g.row);
  if (x < g.left || y < g.top || slot >= nHeads || layer >= nLayers) return null;
  return { layer, slot };
}

/** Slot of `head` in `layer` under `order` (headOrder's). */
export function slotOf(order: Int32Array, nHeads: number, layer: number, head: number): number {
  for (let s = 0; s < nHeads; s++) if (order[layer * nHeads + s] === head) return s;
  return -1;
}

/** Step of the threshold slider up to `max`: a power of ten, about a
 * hundredth of the range or finer (so typed values like 0.3 or 1 land exactly). */
export function thresholdStep(max: number): number {
  if (!(max > 0) || !Number.isFinite(max)) return 0.01;
  return 10 ** Math.floor(Math.log10(max / 100));
}
