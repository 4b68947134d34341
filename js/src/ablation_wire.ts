// Decoder of the ablation payload written by tealeaves_widgets/widgets/ablation.py
// and the arithmetic of its table, kept free of the DOM: the order of the rows
// for a sorted column, the tokens and signed values of the change cells, and
// the rows of the knockout panel.

import type { AblationPayload as AblationWire } from "./schema.gen";
import { WireError, type WireArray, checkSchema, decodeArray, decodeFloat } from "./wire";

export interface AblationCondition {
  name: string;
  description: string;
  /** The region it knocks out when it is one RegionKnockout alone, else null. */
  knockout: string | null;
  /** Token positions its interventions touch. */
  positions: Int32Array;
}

export interface Ablation {
  modelId: string;
  at: string;
  position: number;
  baseTop: number;
  baseProb: number;
  /** Tokens per condition in rose and fell. */
  k: number;
  conditions: AblationCondition[];
  predicted: Int32Array;
  predictedProb: Float32Array;
  deltaBaseTop: Float32Array;
  deltaLogprob: Float32Array;
  deltaCentered: Float32Array;
  kl: Float32Array;
  rose: Int32Array; // (condition, k)
  roseDelta: Float32Array;
  fell: Int32Array;
  fellDelta: Float32Array;
  vocab: Map<number, string>;
  /** Per condition: whether its run's payload is in the view's `runs`. */
  runs: boolean[];
  budget: { maxBytes: number; bytes: number };
}

function ints(value: WireArray, what: string): Int32Array {
  if (value?.dtype !== "int32") throw new WireError(`${what}: expected int32, got ${value?.dtype}.`);
  return decodeArray(value as WireArray & { dtype: "int32" }, what);
}

export function decodeAblation(value: unknown): Ablation {
  const raw = checkSchema<AblationWire>(value);
  if (raw.kind !== "ablation") throw new WireError(`Expected an ablation payload, got ${String(raw.kind)}.`);
  const n = raw.conditions.length;
  const k = raw.k;
  const column = (array: WireArray, what: string, width = 1) => {
    const out = decodeFloat(array, what);
    if (out.length !== n * width) throw new WireError(`${what}: expected ${n * width} values, got [${array.shape}].`);
    return out;
  };
  const ids = (array: WireArray, what: string, width = 1) => {
    const out = ints(array, what);
    if (out.length !== n * width) throw new WireError(`${what}: expected ${n * width} ids, got [${array.shape}].`);
    return out;
  };
  const vocab = new Map<number, string>();
  for (const [id, text] of Object.entries(raw.vocab)) vocab.set(Number(id), text);
  if (raw.runs.length !== n) throw new WireError(`runs: expected ${n} flags, got ${raw.runs.length}.`);
  return {
    modelId: raw.model.model_id,
    at: raw.at,
    position: raw.position,
    baseTop: raw.base_top,
    baseProb: raw.base_prob,
    k,
    conditions: raw.conditions.map((c) => ({
      name: c.name,
      description: c.description,
      knockout: c.knockout,
      positions: ints(c.positions, `condition ${c.name}: positions`),
    })),
    predicted: ids(raw.predicted, "predicted"),
    predictedProb: column(raw.predicted_prob, "predicted_prob"),
    deltaBaseTop: column(raw.delta_base_top, "delta_base_top"),
    deltaLogprob: column(raw.delta_logprob, "delta_logprob"),
    deltaCentered: column(raw.delta_centered, "delta_centered"),
    kl: column(raw.kl, "kl"),
    rose: ids(raw.rose, "rose", k),
    roseDelta: column(raw.rose_delta, "rose_delta", k),
    fell: ids(raw.fell, "fell", k),
    fellDelta: column(raw.fell_delta, "fell_delta", k),
    vocab,
    runs: raw.runs,
    budget: { maxBytes: raw.budget.max_bytes, bytes: raw.budget.bytes },
  };
}

/** A token's text, or "<id n>" when the payload does not name it. */
export function tokenText(a: Ablation, id: number): string {
  return a.vocab.get(id) ?? `<id ${id}>`;
}

// -- the table ----------------------------------------------------------------

/** Columns the table sorts by ("": the conditions' own order), as
 * AblationView.sort (tealeaves_widgets/widgets/ablation.py, SORT_KEYS). */
export type SortKey = "" | "condition" | "predicted_prob" | "delta_logprob" | "delta_centered" | "kl" | "rose" | "fell";
export const SORT_KEYS: SortKey[] = ["", "condition", "predicted_prob", "delta_logprob", "delta_centered", "kl", "rose", "fell"];

/** The direction of a column's first click: the interesting end first (the
 * largest KL, the deepest drop of the baseline's top token, the largest fall). */
export const FIRST_DESCENDING: Record<SortKey, boolean> = {
  "": false,
  condition: false,
  predicted_prob: true,
  delta_logprob: false,
  delta_centered: false,
  kl: true,
  rose: true,
  fell: false,
};

export function isSortKey(value: unknown): value is SortKey {
  return (SORT_KEYS as unknown[]).includes(value);
}

/** The value condition `c` is sorted by under `key`. */
export function sortValue(a: Ablation, key: SortKey, c: number): number | string {
  switch (key) {
    case "condition":
      return a.conditions[c].name;
    case "predicted_prob":
      return a.predictedProb[c];
    case "delta_logprob":
      return a.deltaLogprob[c];
    case "delta_centered":
      return a.deltaCentered[c];
    case "kl":
      return a.kl[c];
    case "rose":
      return a.roseDelta[c * a.k];
    case "fell":
      return a.fellDelta[c * a.k];
    default:
      return c;
  }
}

/** Condition indices in the order the table shows them: by `key`, ties in
 * the conditions' own order, NaN last in either direction. */
export function rowOrder(a: Ablation, key: SortKey, descending: boolean): number[] {
  const order = a.conditions.map((_, c) => c);
  if (!key) return descending ? order.reverse() : order;
  const nan = (v: number | string) => typeof v === "number" && Number.isNaN(v);
  return order.sort((x, y) => {
    const [u, v] = [sortValue(a, key, x), sortValue(a, key, y)];
    if (nan(u) || nan(v)) return nan(u) === nan(v) ? x - y : nan(u) ? 1 : -1;
    const cmp = u < v ? -1 : u > v ? 1 : 0;
    return (descending ? -cmp : cmp) || x - y;
  });
}

export interface ChangeCell {
  id: number;
  text: string;
  value: number;
}

/** The first `k` tokens whose logit rose (or fell) most under condition `c`. */
export function changeCells(a: Ablation, c: number, side: "rose" | "fell", k: number): ChangeCell[] {
  const ids = side === "rose" ? a.rose : a.fell;
  const deltas = side === "rose" ? a.roseDelta : a.fellDelta;
  const n = Math.max(0, Math.min(k, a.k));
  return Array.from({ length: n }, (_, j) => {
    const id = ids[c * a.k + j];
    return { id, text: tokenText(a, id), value: deltas[c * a.k + j] };
  });
}

/** Largest |change| among the cells shown (k per side): the colour scale's end. */
export function changeScale(a: Ablation, k: number): number {
  let max = 0;
  const n = Math.max(0, Math.min(k, a.k));
  for (let c = 0; c < a.conditions.length; c++) {
    for (let j = 0; j < n; j++) {
      max = Math.max(max, Math.abs(a.roseDelta[c * a.k + j]) || 0, Math.abs(a.fellDelta[c * a.k + j]) || 0);
    }
  }
  return max;
}

/** A signed number as the table prints it: "+1.234", "\u22120.012", "0.000". */
export function signed(value: number): string {
  if (!Number.isFinite(value)) return "\u2013";
  const text = Math.abs(value) >= 0.001 || value === 0 ? Math.abs(value).toFixed(3) : Math.abs(value).toExponential(1);
  if (text === "0.000" || value === 0) return "0.000";
  return (value > 0 ? "+" : "\u2212") + text;
}

// -- the knockout panel --------------------------------------------------------

export interface KnockoutRow {
  condition: number;
  region: string;
}

/** The conditions that knock out one region each, in condition order. */
export function knockoutRows(a: Ablation): KnockoutRow[] {
  return a.conditions.flatMap((c, i) => (c.knockout === null ? [] : [{ condition: i, region: c.knockout }]));
}
