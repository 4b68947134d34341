// Decoder of the previous-token test payload written by
// tealeaves_widgets/widgets/prev_token.py, kept free of the DOM.

import type { PrevTokenPayload as PrevTokenWire } from "./schema.gen";
import { WireError, type WireArray, checkSchema, decodeFloat } from "./wire";

/** What the per-layer table shows, as PrevTokenView.measure. */
export type Measure = "inner" | "cos";
export const MEASURES: Measure[] = ["inner", "cos"];

export interface PrevTokenTest {
  modelId: string;
  layer: number;
  head: number;
  valueHeads: number[] | null;
  nTexts: number;
  nLayers: number;
  offsets: number[];
  redundancy: Float32Array; // (offset,)
  residualEffectSd: Float32Array; // (offset,)
  pairs: string[];
  innerMean: Float32Array; // (offset, pair, layer)
  innerSd: Float32Array;
  cosMean: Float32Array;
  cosSd: Float32Array;
}

export function decodePrevToken(value: unknown): PrevTokenTest {
  const raw = checkSchema<PrevTokenWire>(value);
  if (raw.kind !== "prev_token") throw new WireError(`Expected a previous-token test payload, got ${String(raw.kind)}.`);
  const K = raw.offsets.length;
  const cells = K * raw.pairs.length * raw.n_layers;
  const floats = (array: WireArray, what: string, length: number) => {
    const out = decodeFloat(array, what);
    if (out.length !== length) throw new WireError(`${what}: expected ${length} values, got [${array.shape}].`);
    return out;
  };
  return {
    modelId: raw.model.model_id,
    layer: raw.layer,
    head: raw.head,
    valueHeads: raw.value_heads,
    nTexts: raw.n_texts,
    nLayers: raw.n_layers,
    offsets: raw.offsets,
    redundancy: floats(raw.redundancy, "redundancy", K),
    residualEffectSd: floats(raw.residual_effect_sd, "residual_effect_sd", K),
    pairs: raw.pairs,
    innerMean: floats(raw.inner_mean, "inner_mean", cells),
    innerSd: floats(raw.inner_sd, "inner_sd", cells),
    cosMean: floats(raw.cos_mean, "cos_mean", cells),
    cosSd: floats(raw.cos_sd, "cos_sd", cells),
  };
}

/** Mean and sd of `measure` for offset index k, pair p, layer l. */
export function cell(t: PrevTokenTest, measure: Measure, k: number, p: number, l: number): [number, number] {
  const i = (k * t.pairs.length + p) * t.nLayers + l;
  return measure === "cos" ? [t.cosMean[i], t.cosSd[i]] : [t.innerMean[i], t.innerSd[i]];
}

/** Index of the offset with the largest redundancy (-1 when none is finite). */
export function peak(t: PrevTokenTest): number {
  let best = -1;
  t.redundancy.forEach((v, k) => {
    if (Number.isFinite(v) && (best < 0 || v > t.redundancy[best])) best = k;
  });
  return best;
}
