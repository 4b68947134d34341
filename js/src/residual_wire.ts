// Decoders of the residual decomposition and cross-layer cosine payloads
// written by tealeaves_widgets/widgets/residuals.py, kept free of the DOM.

import type { CrossLayerPayload as CrossLayerWire, ResidualPayload as ResidualWire } from "./schema.gen";
import { WireError, type WireArray, checkSchema, decodeFloat } from "./wire";

/** The four vectors of a block, in the payload's (component) order. */
export const COMPONENT_LABELS = ["block input", "attention term", "MLP term", "block output"];

export interface ResidualQuery {
  name: string;
  pos: number;
  token: string;
}

export interface Residual {
  modelId: string;
  nLayers: number;
  queries: ResidualQuery[];
  parallel: boolean;
  components: string[];
  norms: Float32Array; // (query, component, layer)
  cosines: Float32Array; // (query, contribution, layer)
  identityError: Float32Array; // (query, layer)
  defaultQuery: number;
}

function floats(array: WireArray, what: string, length: number): Float32Array {
  const out = decodeFloat(array, what);
  if (out.length !== length) throw new WireError(`${what}: expected ${length} values, got [${array.shape}].`);
  return out;
}

export function decodeResidual(value: unknown): Residual {
  const raw = checkSchema<ResidualWire>(value);
  if (raw.kind !== "residual") throw new WireError(`Expected a residual decomposition payload, got ${String(raw.kind)}.`);
  const Q = raw.queries.length;
  const L = raw.n_layers;
  if (raw.query_tokens.length !== Q) throw new WireError(`Expected ${Q} query tokens, got ${raw.query_tokens.length}.`);
  if (raw.components.length !== 4) throw new WireError(`Expected 4 components, got ${raw.components.length}.`);
  return {
    modelId: raw.model.model_id,
    nLayers: L,
    queries: raw.queries.map((q, i) => ({ name: q.name, pos: q.pos, token: raw.query_tokens[i] })),
    parallel: raw.parallel,
    components: raw.components,
    norms: floats(raw.norms, "norms", Q * 4 * L),
    cosines: floats(raw.cosines, "cosines", Q * 3 * L),
    identityError: floats(raw.identity_error, "identity_error", Q * L),
    defaultQuery: Math.min(Math.max(raw.default_query, 0), Math.max(Q - 1, 0)),
  };
}

/** Norm of component c (0 input, 1 attention, 2 MLP, 3 output) at query q, layer l. */
export function normAt(r: Residual, q: number, c: number, l: number): number {
  return r.norms[(q * 4 + c) * r.nLayers + l];
}

/** Cosine of contribution c (0 input, 1 attention, 2 MLP) with the block output. */
export function cosineAt(r: Residual, q: number, c: number, l: number): number {
  return r.cosines[(q * 3 + c) * r.nLayers + l];
}

/** The largest identity error of query q (over the layers), NaN when none is finite. */
export function maxIdentityError(r: Residual, q: number): number {
  let worst = NaN;
  for (let l = 0; l < r.nLayers; l++) {
    const v = r.identityError[q * r.nLayers + l];
    if (Number.isFinite(v) && !(v <= worst)) worst = v;
  }
  return worst;
}

export interface CrossLayer {
  modelId: string;
  nLayers: number;
  source: string;
  query: ResidualQuery;
  cosine: Float32Array; // (layer, layer)
}

export function decodeCrossLayer(value: unknown): CrossLayer {
  const raw = checkSchema<CrossLayerWire>(value);
  if (raw.kind !== "cross_layer") throw new WireError(`Expected a cross-layer cosine payload, got ${String(raw.kind)}.`);
  const L = raw.n_layers;
  return {
    modelId: raw.model.model_id,
    nLayers: L,
    source: raw.source,
    query: { name: raw.query.name, pos: raw.query.pos, token: raw.token },
    cosine: floats(raw.cosine, "cosine", L * L),
  };
}

/** Cosine between layers i and j. */
export function crossAt(c: CrossLayer, i: number, j: number): number {
  return c.cosine[i * c.nLayers + j];
}

/** Smallest and largest finite value off the diagonal ([NaN, NaN] when none). */
export function offDiagonalRange(c: CrossLayer): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < c.nLayers; i++) {
    for (let j = 0; j < c.nLayers; j++) {
      const v = crossAt(c, i, j);
      if (i === j || !Number.isFinite(v)) continue;
      low = Math.min(low, v);
      high = Math.max(high, v);
    }
  }
  return low <= high ? [low, high] : [NaN, NaN];
}

/** Colour scale of the heatmap, as CrossLayerView.scale. */
export type CrossScale = "range" | "signed";
export const CROSS_SCALES: CrossScale[] = ["range", "signed"];

/** The value range a scale maps to colours: "range" from the smallest
 * off-diagonal value to 1 (to 0..1 with one layer), "signed" -1..1. */
export function scaleBounds(c: CrossLayer, scale: CrossScale): [number, number] {
  if (scale === "signed") return [-1, 1];
  const [low] = offDiagonalRange(c);
  return Number.isFinite(low) && low < 1 ? [low, 1] : [0, 1];
}
