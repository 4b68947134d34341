// Decoder of the attribution payload written by
// tealeaves_widgets/widgets/attribution.py, and the arithmetic of its view
// kept free of the DOM: the colour index of every token for a shading and
// scale, and the regions in tree order with their depth.

import type { AttributionPayload as AttributionWire } from "./schema.gen";
import { type AnyScale, DIVERGING_CENTRE, colourIndices, divergingIndex, scaleRange } from "./colour";
import { WireError, type WireArray, checkSchema, decodeArray, decodeFloat } from "./wire";

/** What the tokens are shaded by, as AttributionView.shading. */
export type Shading = "grad_norm" | "grad_x_input";
export const SHADINGS: Shading[] = ["grad_norm", "grad_x_input"];
/** How the gradient norm maps to colour, as AttributionView.scale. */
export type AttributionScale = "linear" | "log";
export const ATTRIBUTION_SCALES: AttributionScale[] = ["linear", "log"];

export interface AttributionRegion {
  name: string;
  section: string;
  color: string;
  parent: string | null;
  builtin: boolean;
  tokenIndices: Int32Array;
}

export interface Attribution {
  modelId: string;
  target: string;
  targetTokens: string[];
  loss: string;
  logProb: number;
  gated: string | null;
  tokens: string[];
  /** Innermost region index per token, -1 for none. */
  tokenRegion: Int16Array;
  regions: AttributionRegion[];
  gradNorm: Float32Array; // (token,)
  gradXInput: Float32Array; // (token,)
  regionGradNorm: Float32Array; // (region,)
  regionShare: Float32Array;
  regionGradXInput: Float32Array;
}

function ints(value: WireArray, what: string): Int32Array {
  if (value?.dtype !== "int32") throw new WireError(`${what}: expected int32, got ${value?.dtype}.`);
  return decodeArray(value as WireArray & { dtype: "int32" }, what);
}

export function decodeAttribution(value: unknown): Attribution {
  const raw = checkSchema<AttributionWire>(value);
  if (raw.kind !== "attribution") throw new WireError(`Expected an attribution payload, got ${String(raw.kind)}.`);
  const n = raw.tokens.length;
  const r = raw.regions.length;
  const floats = (array: WireArray, what: string, length: number) => {
    const out = decodeFloat(array, what);
    if (out.length !== length) throw new WireError(`${what}: expected ${length} values, got [${array.shape}].`);
    return out;
  };
  if (raw.token_region?.dtype !== "int16") throw new WireError(`token_region: expected int16, got ${raw.token_region?.dtype}.`);
  const tokenRegion = decodeArray(raw.token_region as WireArray & { dtype: "int16" }, "token_region");
  if (tokenRegion.length !== n) throw new WireError(`token_region: expected ${n} values, got [${raw.token_region.shape}].`);
  return {
    modelId: raw.model.model_id,
    target: raw.target,
    targetTokens: raw.target_tokens,
    loss: raw.loss,
    logProb: raw.log_prob,
    gated: raw.gated,
    tokens: raw.tokens,
    tokenRegion,
    regions: raw.regions.map((region) => ({
      name: region.name,
      section: region.section,
      color: region.color,
      parent: region.parent,
      builtin: region.builtin,
      tokenIndices: ints(region.token_indices, `region ${region.name}`),
    })),
    gradNorm: floats(raw.grad_norm, "grad_norm", n),
    gradXInput: floats(raw.grad_x_input, "grad_x_input", n),
    regionGradNorm: floats(raw.region_grad_norm, "region_grad_norm", r),
    regionShare: floats(raw.region_share, "region_share", r),
    regionGradXInput: floats(raw.region_grad_x_input, "region_grad_x_input", r),
  };
}

/** The values a shading draws. */
export function shadedValues(a: Attribution, shading: Shading): Float32Array {
  return shading === "grad_x_input" ? a.gradXInput : a.gradNorm;
}

export interface Shades {
  /** Per token: an index into the heat palette (0..255; 0 not painted) or,
   * signed, into the diverging palette (0..254, DIVERGING_CENTRE at 0). */
  indices: Uint8Array;
  /** The scale's ends: [0 or the log floor, max] or, signed, [-vmax, vmax]. */
  low: number;
  high: number;
  kind: "linear" | "log" | "signed";
}

/** Colour index of every token. `maskFirst` leaves the first token out of
 * the scale (it is still shaded, clipped at the scale's end). */
export function shades(a: Attribution, shading: Shading, scale: AttributionScale, maskFirst: boolean): Shades {
  const values = shadedValues(a, shading);
  const n = values.length;
  const indices = new Uint8Array(n);
  if (shading === "grad_x_input") {
    let vmax = 0;
    for (let i = maskFirst ? 1 : 0; i < n; i++) if (Number.isFinite(values[i])) vmax = Math.max(vmax, Math.abs(values[i]));
    for (let i = 0; i < n; i++) {
      const index = divergingIndex(values[i], vmax);
      indices[i] = index < 0 ? DIVERGING_CENTRE : index;
    }
    return { indices, low: -vmax, high: vmax, kind: "signed" };
  }
  const masked = new Uint8Array(n);
  if (maskFirst && n > 0) masked[0] = 1;
  const anyScale: AnyScale = scale === "log" ? "log-layer" : "layer";
  const range = scaleRange(anyScale, values, masked, n, 0, new Float32Array(n));
  colourIndices(values, new Uint8Array(n), range, indices);
  return { indices, low: range.low, high: range.high, kind: range.kind === "log" ? "log" : "linear" };
}

/** Rank of token `i` by gradient norm, 1 = largest. */
export function rankByNorm(a: Attribution, i: number): number {
  const w = a.gradNorm[i];
  let rank = 1;
  for (let j = 0; j < a.gradNorm.length; j++) if (a.gradNorm[j] > w) rank++;
  return rank;
}

/** Depth of each region in the tree the payload's parents describe (0: top). */
export function regionDepths(a: Attribution): number[] {
  const index = new Map(a.regions.map((r, i) => [r.name, i]));
  return a.regions.map((region) => {
    let depth = 0;
    const seen = new Set<string>();
    for (let parent = region.parent; parent !== null && index.has(parent) && !seen.has(parent); depth++) {
      seen.add(parent);
      parent = a.regions[index.get(parent)!].parent;
    }
    return depth;
  });
}

/** The first token's share of the summed gradient norm (the sink's pull on the picture). */
export function firstTokenShare(a: Attribution): number {
  let total = 0;
  for (const v of a.gradNorm) total += v;
  return a.gradNorm.length && total > 0 ? a.gradNorm[0] / total : NaN;
}
