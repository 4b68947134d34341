// Decoder of the head grid payload written by
// tealeaves_widgets/widgets/head_grid.py, the pooling of its thumbnails and
// its colour scales, kept free of the DOM.
//
// Pooling is core/head_grid.py's: a block of query rows is averaged (each row
// weighted by the tokens it stands for), a block of key columns summed, so a
// pooled row still sums to what its rows sum to and a sink or a diagonal keeps
// its mass in a thumbnail instead of being thinned out.

import type { HeadGridPayload as HeadGridWire } from "./schema.gen";
import { WireError, checkSchema, decodeFloat } from "./wire";

/** Colour scales, as HeadGridView.scale; the first is the default. */
export type GridScale = "sqrt" | "no-first" | "linear";
export const GRID_SCALES: GridScale[] = ["sqrt", "no-first", "linear"];

export interface HeadGrid {
  modelId: string;
  layer: number;
  nLayers: number | null;
  nHeads: number;
  nKvHeads: number | null;
  nTokens: number;
  /** Tokens per block on both axes (1: one cell per token). */
  pool: number;
  /** Blocks per side, ceil(nTokens / pool). */
  size: number;
  tokens: string[];
  patterns: Float32Array; // (head, size, size)
}

export function decodeHeadGrid(value: unknown): HeadGrid {
  const raw = checkSchema<HeadGridWire>(value);
  if (raw.kind !== "head_grid") throw new WireError(`Expected a head grid payload, got ${String(raw.kind)}.`);
  const pool = raw.pool;
  const size = Math.ceil(raw.n_tokens / pool);
  const [heads, rows, cols] = raw.patterns.shape;
  if (heads !== raw.n_heads || rows !== size || cols !== size) {
    throw new WireError(`patterns: expected (${raw.n_heads}, ${size}, ${size}) for ${raw.n_tokens} tokens in blocks of ${pool}, got [${raw.patterns.shape}].`);
  }
  if (raw.tokens.length !== raw.n_tokens) throw new WireError(`tokens: expected ${raw.n_tokens} token texts, got ${raw.tokens.length}.`);
  return {
    modelId: raw.model.model_id,
    layer: raw.layer,
    nLayers: raw.n_layers,
    nHeads: raw.n_heads,
    nKvHeads: raw.n_kv_heads,
    nTokens: raw.n_tokens,
    pool,
    size,
    tokens: raw.tokens,
    patterns: decodeFloat(raw.patterns, "patterns"),
  };
}

/** One head's (size, size) matrix, a view into the payload. */
export function headMatrix(g: HeadGrid, head: number): Float32Array {
  const n = g.size * g.size;
  return g.patterns.subarray(head * n, (head + 1) * n);
}

/** [start, stop) of the tokens block `block` of a grid pooled by `pool` holds. */
export function blockTokens(nTokens: number, pool: number, block: number): [number, number] {
  return [block * pool, Math.min((block + 1) * pool, nTokens)];
}

/** A (size, size) matrix whose blocks hold `pool` tokens each, pooled by
 * `factor` more: (ceil(size / factor))^2, rows averaged weighted by their
 * tokens, columns summed. */
export function poolMatrix(matrix: Float32Array, size: number, factor: number, nTokens: number, pool: number): { side: number; values: Float32Array } {
  if (factor <= 1) return { side: size, values: matrix };
  const side = Math.ceil(size / factor);
  const sums = new Float64Array(side * side);
  const weights = new Float64Array(side);
  for (let i = 0; i < size; i++) {
    const [start, stop] = blockTokens(nTokens, pool, i);
    const weight = stop - start;
    const I = Math.floor(i / factor);
    weights[I] += weight;
    const row = i * size;
    const out = I * side;
    for (let j = 0; j < size; j++) sums[out + Math.floor(j / factor)] += weight * matrix[row + j];
  }
  const values = new Float32Array(side * side);
  for (let I = 0; I < side; I++) for (let J = 0; J < side; J++) values[I * side + J] = sums[I * side + J] / weights[I];
  return { side, values };
}

/** The block size that brings `size` blocks to at most `maxSide`. */
export function factorFor(size: number, maxSide: number): number {
  return Math.max(1, Math.ceil(size / maxSide));
}

/** What a scale maps to the darkest colour: the largest weight of the matrix
 * outside the first row (query 0 can attend only to itself, so its weight of
 * 1 says nothing of the head), and under "no-first" outside the first column
 * too (the sink; when nothing else is left, every cell counts). */
export function scaleTop(values: Float32Array, side: number, scale: GridScale): number {
  let top = 0;
  let rest = 0;
  for (let i = side > 1 ? 1 : 0; i < side; i++) {
    const row = i * side;
    for (let j = 0; j < side; j++) {
      const w = values[row + j];
      if (w > top) top = w;
      if (j > 0 && w > rest) rest = w;
    }
  }
  return scale === "no-first" && rest > 0 ? rest : top;
}

/** Palette index of a weight: 0 (the background) for 0 or less, 255 at
 * `top` and above, at least 1 for any positive weight. */
export function gridIndex(w: number, top: number, scale: GridScale): number {
  if (!(w > 0) || !(top > 0)) return 0;
  const t = Math.min(w / top, 1);
  const v = 255 * (scale === "sqrt" ? Math.sqrt(t) : t);
  return v <= 1 ? 1 : Math.round(v);
}

/** Palette indices of a whole (side, side) matrix on `scale`. */
export function gridIndices(values: Float32Array, side: number, scale: GridScale, out?: Uint8Array): Uint8Array {
  const top = scaleTop(values, side, scale);
  const indices = out ?? new Uint8Array(side * side);
  for (let k = 0; k < side * side; k++) indices[k] = gridIndex(values[k], top, scale);
  return indices;
}

/** A token as an axis label: visible newlines and tabs, cut to `n` characters. */
export function tokenLabel(token: string, n = 12): string {
  const shown = token === "" ? "\u2205" : token.replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
  return shown.length > n ? `${shown.slice(0, n - 1)}\u2026` : shown;
}

/** The tokens of a block as a tooltip line: "12 ' the'" or "12\u201315 ' the' \u2026 ' end'". */
export function blockText(g: HeadGrid, pool: number, block: number): string {
  const [start, stop] = blockTokens(g.nTokens, pool, block);
  if (stop - start === 1) return `${start} ${JSON.stringify(g.tokens[start])}`;
  return `${start}\u2013${stop - 1} ${JSON.stringify(g.tokens[start])} \u2026 ${JSON.stringify(g.tokens[stop - 1])}`;
}
