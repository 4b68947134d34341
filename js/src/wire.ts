// Decoder of the wire format written by tealeaves_widgets/widgets/wire.py.
// Every payload and message type comes from schema.gen.ts, generated from
// tealeaves_widgets/widgets/schema.py, so a key renamed in Python fails
// `tsc --noEmit` here.
//
// An array arrives as {dtype, shape, data} where anywidget has turned the
// Python memoryview into a DataView (a live kernel) or the html-manager has
// decoded it from base64 (an exported page). We view the same bytes as a
// TypedArray when the offset is aligned, and copy only when it is not.

import type {
  BufferRef,
  HeadRowsPayload,
  LayersMessage,
  LensPayload,
  QueryAtReply,
  RunPayload,
  WireArray,
  WireDType,
} from "./schema.gen";
import { SCHEMA_VERSION } from "./schema.gen";

export { SCHEMA_VERSION };
export type { LayersMessage, QueryAtReply, WireArray };
export type DType = WireDType;

/** The payload failed a check; the message says what to do. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

type Ctor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

const CTORS = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float16: Uint16Array, // raw bits; see float16ToFloat32
  float32: Float32Array,
} as const;

type Decoded = {
  uint8: Uint8Array;
  int8: Int8Array;
  uint16: Uint16Array;
  int16: Int16Array;
  uint32: Uint32Array;
  int32: Int32Array;
  float16: Uint16Array;
  float32: Float32Array;
};

function bytesOf(data: WireArray["data"]): { buffer: ArrayBufferLike; byteOffset: number; byteLength: number } {
  if (data instanceof ArrayBuffer) return { buffer: data, byteOffset: 0, byteLength: data.byteLength };
  if (ArrayBuffer.isView(data)) return data;
  throw new WireError(`Expected binary data (DataView or ArrayBuffer), got ${typeof data}.`);
}

function count(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A TypedArray over the array's bytes (a copy only when misaligned). */
export function decodeArray<D extends DType>(value: WireArray & { dtype: D }, what = "array"): Decoded[D] {
  if (value === null || typeof value !== "object" || !(value.dtype in CTORS)) {
    throw new WireError(`${what}: expected {dtype, shape, data} with a dtype in ${Object.keys(CTORS).join(", ")}.`);
  }
  const ctor = CTORS[value.dtype] as unknown as Ctor<Decoded[D]>;
  const { buffer, byteOffset, byteLength } = bytesOf(value.data);
  const length = count(value.shape);
  if (length * ctor.BYTES_PER_ELEMENT !== byteLength) {
    throw new WireError(
      `${what}: shape [${value.shape}] of ${value.dtype} needs ${length * ctor.BYTES_PER_ELEMENT} bytes, got ${byteLength}.`,
    );
  }
  if (byteOffset % ctor.BYTES_PER_ELEMENT === 0) return new ctor(buffer, byteOffset, length);
  const copy = new Uint8Array(byteLength);
  copy.set(new Uint8Array(buffer, byteOffset, byteLength));
  return new ctor(copy.buffer, 0, length);
}

let float16Table: Float32Array | null = null;

/** Value of every float16 bit pattern (256 KiB, built once). */
function float16Values(): Float32Array {
  if (float16Table) return float16Table;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    let value: number;
    if (exponent === 0) value = fraction * 2 ** -24;
    else if (exponent === 31) value = fraction ? NaN : Infinity;
    else value = (1 + fraction / 1024) * 2 ** (exponent - 15);
    table[bits] = sign * value;
  }
  float16Table = table;
  return table;
}

export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const table = float16Values();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/** A float array as Float32Array: a view for float32, a conversion for float16. */
export function decodeFloat(value: WireArray, what = "array"): Float32Array {
  if (value?.dtype === "float16") return float16ToFloat32(decodeArray(value as WireArray & { dtype: "float16" }, what));
  if (value?.dtype === "float32") return decodeArray(value as WireArray & { dtype: "float32" }, what);
  throw new WireError(`${what}: expected float16 or float32, got ${value?.dtype}.`);
}

function decodeInt32(value: WireArray, what: string): Int32Array {
  if (value?.dtype !== "int32") throw new WireError(`${what}: expected int32, got ${value?.dtype}.`);
  return decodeArray(value as WireArray & { dtype: "int32" }, what);
}

// -- the payload -----------------------------------------------------------

export interface Region {
  name: string;
  section: string;
  color: string;
  charSpan: [number, number];
  tokenIndices: Int32Array;
  parent: string | null;
  builtin: boolean;
}

export interface Query {
  name: string;
  pos: number;
}

/** One query's per-head rows, (layer, head, width); columns >= width are 0. */
export interface HeadRows {
  encoding: "sqrt-uint8" | "float16";
  width: number;
  values: Uint8Array | Float32Array;
}

export interface Lens {
  k: number;
  topIds: Int32Array; // (layer, query, k)
  topProbs: Float32Array;
  entropy: Float32Array; // (layer, query)
  klToFinal: Float32Array;
  trackedTokens: string[];
  trackedIds: Int32Array;
  trackedRanks: Int32Array; // (layer, query, tracked)
  trackedProbs: Float32Array;
  vocab: Map<number, string>;
}

export interface Payload {
  schemaVersion: number;
  modelId: string;
  nLayers: number;
  nHeads: number;
  nTokens: number;
  nQueries: number;
  tokens: string[];
  tokenIds: Int32Array;
  /** Prompt text no token covers, shown before token `pos` (pos may be nTokens). */
  gaps: Map<number, string>;
  /** Innermost region index per token, -1 for none. */
  tokenRegion: Int16Array;
  regions: Region[];
  queries: Query[];
  /** The query names, in row order. */
  queryNames: string[];
  defaultQuery: number;
  attention: Float32Array; // (layer, query, pos), head-averaged
  curves: Float32Array; // (layer, query, region), raw mass
  curvesHeads: Float32Array; // (layer, head, query, region)
  firstToken: Float32Array; // (layer, query), attention on token 0, head-averaged
  firstTokenHeads: Float32Array; // (layer, head, query)
  lens: Lens;
  heads: (HeadRows | null)[];
  budget: { maxBytes: number; bytes: number };
  /** Set while the capture runs (model.explore): layers 0..done-1 are filled
   * in by "layers" messages; null once the payload is complete. `follow`:
   * the explorer shows the newest layer computed until the user picks one. */
  pending: { done: number; total: number; stopped: string | null; follow: boolean } | null;
}

/** Check the schema version before anything else, so a mismatch reads as one.
 * The payload is then read as `T`, the generated type of what Python sends. */
export function checkSchema<T>(raw: unknown): T {
  if (raw === null || typeof raw !== "object") {
    throw new WireError("The widget received no data; re-run the cell that created it.");
  }
  const version = (raw as { schema_version?: unknown }).schema_version;
  if (version !== SCHEMA_VERSION) {
    throw new WireError(
      `Data schema mismatch: the Python package sent schema ${String(version)}, this page's ` +
        `JavaScript reads schema ${SCHEMA_VERSION}. Reinstall tealeaves-widgets so both come from ` +
        `the same version (pip install -e . rebuilds the JavaScript), then restart the kernel.`,
    );
  }
  return raw as T;
}

export function decodeHeadRows(raw: HeadRowsPayload, nLayers: number, nHeads: number, what: string): HeadRows {
  const rows = raw.rows;
  const [layers, heads, width] = rows.shape;
  if (layers !== nLayers || heads !== nHeads) {
    throw new WireError(`${what}: expected (${nLayers}, ${nHeads}, width) rows, got [${rows.shape}].`);
  }
  if (raw.encoding === "sqrt-uint8") {
    if (rows.dtype !== "uint8") throw new WireError(`${what}: sqrt-uint8 rows must be uint8, got ${rows.dtype}.`);
    return { encoding: "sqrt-uint8", width, values: decodeArray(rows as WireArray & { dtype: "uint8" }, what) };
  }
  if (raw.encoding === "float16") return { encoding: "float16", width, values: decodeFloat(rows, what) };
  throw new WireError(`${what}: unknown head encoding ${String(raw.encoding)}.`);
}

function decodeLens(raw: LensPayload): Lens {
  const vocab = new Map<number, string>();
  for (const [id, text] of Object.entries(raw.vocab)) vocab.set(Number(id), text);
  return {
    k: raw.k,
    topIds: decodeInt32(raw.top_ids, "lens.top_ids"),
    topProbs: decodeFloat(raw.top_probs, "lens.top_probs"),
    entropy: decodeFloat(raw.entropy, "lens.entropy"),
    klToFinal: decodeFloat(raw.kl_to_final, "lens.kl_to_final"),
    trackedTokens: raw.tracked_tokens,
    trackedIds: decodeInt32(raw.tracked_ids, "lens.tracked_ids"),
    trackedRanks: decodeInt32(raw.tracked_ranks, "lens.tracked_ranks"),
    trackedProbs: decodeFloat(raw.tracked_probs, "lens.tracked_probs"),
    vocab,
  };
}

export function decodePayload(value: unknown): Payload {
  const raw = checkSchema<RunPayload>(value);
  const nLayers: number = raw.model.n_layers;
  const nHeads: number = raw.model.n_heads;
  const nTokens: number = raw.n_tokens;
  const queries: Query[] = raw.queries;
  const attention = decodeFloat(raw.attention, "attention");
  if (attention.length !== nLayers * queries.length * nTokens) {
    throw new WireError(`attention: expected (${nLayers}, ${queries.length}, ${nTokens}), got [${raw.attention.shape}].`);
  }
  if (raw.tokens.length !== nTokens) {
    throw new WireError(`tokens: expected ${nTokens} token texts, got ${raw.tokens.length}.`);
  }
  const tokenRegion = decodeArray(raw.token_region as WireArray & { dtype: "int16" }, "token_region");
  const firstToken = decodeFloat(raw.first_token, "first_token");
  const firstTokenHeads = decodeFloat(raw.first_token_heads, "first_token_heads");
  if (firstToken.length !== nLayers * queries.length || firstTokenHeads.length !== nLayers * nHeads * queries.length) {
    throw new WireError(`first_token: expected (${nLayers}, ${queries.length}) and (${nLayers}, ${nHeads}, ${queries.length}), got [${raw.first_token.shape}] and [${raw.first_token_heads.shape}].`);
  }
  return {
    schemaVersion: raw.schema_version,
    modelId: raw.model.model_id,
    nLayers,
    nHeads,
    nTokens,
    nQueries: queries.length,
    tokens: raw.tokens,
    tokenIds: decodeInt32(raw.token_ids, "token_ids"),
    gaps: new Map(raw.gaps.map(([pos, text]) => [pos, text])),
    tokenRegion,
    regions: raw.regions.map((r) => ({
      name: r.name,
      section: r.section,
      color: r.color,
      charSpan: r.char_span,
      tokenIndices: decodeInt32(r.token_indices, `region ${r.name}`),
      parent: r.parent,
      builtin: r.builtin,
    })),
    queries,
    queryNames: queries.map((q) => q.name),
    defaultQuery: raw.default_query,
    attention,
    curves: decodeFloat(raw.curves, "curves"),
    curvesHeads: decodeFloat(raw.curves_heads, "curves_heads"),
    firstToken,
    firstTokenHeads,
    lens: decodeLens(raw.lens),
    heads: raw.heads.map((h, q) => (h ? decodeHeadRows(h, nLayers, nHeads, `heads[${q}]`) : null)),
    budget: { maxBytes: raw.budget.max_bytes, bytes: raw.budget.bytes },
    pending: raw.pending
      ? { done: raw.pending.done | 0, total: raw.pending.total | 0, stopped: raw.pending.stopped ?? null, follow: raw.pending.follow !== false }
      : null,
  };
}

/** The array a message names by buffer index (anywidget delivers buffers beside the content). */
export function fromBuffer(spec: BufferRef, buffers: (DataView | ArrayBuffer)[], what: string): Float32Array {
  const data = buffers[spec.buffer];
  if (data === undefined) throw new WireError(`${what}: buffer ${spec.buffer} is missing from the message.`);
  return decodeFloat({ dtype: spec.dtype, shape: spec.shape, data }, what);
}

/** The int32 array a message names by buffer index. */
export function intFromBuffer(spec: BufferRef, buffers: (DataView | ArrayBuffer)[], what: string): Int32Array {
  const data = buffers[spec.buffer];
  if (data === undefined) throw new WireError(`${what}: buffer ${spec.buffer} is missing from the message.`);
  return decodeInt32({ dtype: spec.dtype, shape: spec.shape, data }, what);
}

/** `old` laid out (outer, Q, inner) with `added` (outer, inner) inserted as
 * query Q: a new array (outer, Q + 1, inner). */
function withQuery<A extends Float32Array | Int32Array>(
  old: A,
  make: (n: number) => A,
  outer: number,
  Q: number,
  inner: number,
  added: A,
  what: string,
): A {
  if (added.length !== outer * inner) {
    throw new WireError(`query_at.${what}: expected ${outer * inner} values, got ${added.length}.`);
  }
  const out = make(outer * (Q + 1) * inner);
  for (let o = 0; o < outer; o++) {
    out.set(old.subarray(o * Q * inner, (o + 1) * Q * inner), o * (Q + 1) * inner);
    out.set(added.subarray(o * inner, (o + 1) * inner), (o * (Q + 1) + Q) * inner);
  }
  return out;
}

const floats = (n: number) => new Float32Array(n);
const ints = (n: number) => new Int32Array(n);

/** Append the query a "query_at" reply carries (a clicked token the kernel
 * computed) after the payload's queries, in every per-query array. Returns
 * its row; a query of that name already present is left as it is (another
 * view of the same widget asked for it). Everything is decoded and checked
 * before the payload changes, so a bad reply changes nothing. */
export function appendQuery(p: Payload, reply: QueryAtReply, buffers: (DataView | ArrayBuffer)[]): number {
  const known = p.queryNames.indexOf(reply.name);
  if (known >= 0) return known;
  const { nLayers: L, nHeads: H, nQueries: Q, nTokens: T } = p;
  const R = p.regions.length;
  const lens = p.lens;
  const K = lens.k;
  const N = lens.trackedTokens.length;
  if (!(reply.pos >= 0 && reply.pos < T)) throw new WireError(`query_at: position ${reply.pos} is outside the ${T} tokens.`);
  const f = (spec: BufferRef, what: string) => fromBuffer(spec, buffers, `query_at.${what}`);
  const i = (spec: BufferRef, what: string) => intFromBuffer(spec, buffers, `query_at.${what}`);
  const rows = { ...reply.heads.rows, data: buffers[reply.heads.rows.buffer] };
  if (rows.data === undefined) throw new WireError(`query_at.heads: buffer ${reply.heads.rows.buffer} is missing from the message.`);
  const heads = decodeHeadRows({ encoding: reply.heads.encoding, rows }, L, H, "query_at.heads");
  const next = {
    attention: withQuery(p.attention, floats, L, Q, T, f(reply.attention, "attention"), "attention"),
    curves: withQuery(p.curves, floats, L, Q, R, f(reply.curves, "curves"), "curves"),
    curvesHeads: withQuery(p.curvesHeads, floats, L * H, Q, R, f(reply.curves_heads, "curves_heads"), "curves_heads"),
    firstToken: withQuery(p.firstToken, floats, L, Q, 1, f(reply.first_token, "first_token"), "first_token"),
    firstTokenHeads: withQuery(p.firstTokenHeads, floats, L * H, Q, 1, f(reply.first_token_heads, "first_token_heads"), "first_token_heads"),
  };
  const nextLens = {
    topIds: withQuery(lens.topIds, ints, L, Q, K, i(reply.lens.top_ids, "lens.top_ids"), "lens.top_ids"),
    topProbs: withQuery(lens.topProbs, floats, L, Q, K, f(reply.lens.top_probs, "lens.top_probs"), "lens.top_probs"),
    entropy: withQuery(lens.entropy, floats, L, Q, 1, f(reply.lens.entropy, "lens.entropy"), "lens.entropy"),
    klToFinal: withQuery(lens.klToFinal, floats, L, Q, 1, f(reply.lens.kl_to_final, "lens.kl_to_final"), "lens.kl_to_final"),
    trackedRanks: withQuery(lens.trackedRanks, ints, L, Q, N, i(reply.lens.tracked_ranks, "lens.tracked_ranks"), "lens.tracked_ranks"),
    trackedProbs: withQuery(lens.trackedProbs, floats, L, Q, N, f(reply.lens.tracked_probs, "lens.tracked_probs"), "lens.tracked_probs"),
  };
  Object.assign(p, next);
  Object.assign(lens, nextLens);
  for (const [id, text] of Object.entries(reply.lens.vocab)) lens.vocab.set(Number(id), text);
  // new arrays: the decoded payload shares `queries` with the synced value, which stays as sent
  p.queries = [...p.queries, { name: reply.name, pos: reply.pos }];
  p.queryNames = [...p.queryNames, reply.name];
  p.heads = [...p.heads, heads];
  p.nQueries = Q + 1;
  return Q;
}

/** Copy the layers of a running capture into the payload's arrays (the
 * payload was sent with zeros there) and advance `pending.done`. */
export function applyLayers(p: Payload, message: LayersMessage, buffers: (DataView | ArrayBuffer)[]): void {
  const { nQueries: Q, nTokens: T, nHeads: H } = p;
  const R = p.regions.length;
  const n = message.layers.length;
  const attention = fromBuffer(message.attention, buffers, "layers.attention");
  const curves = fromBuffer(message.curves, buffers, "layers.curves");
  const curvesHeads = fromBuffer(message.curves_heads, buffers, "layers.curves_heads");
  const first = fromBuffer(message.first_token, buffers, "layers.first_token");
  const firstHeads = fromBuffer(message.first_token_heads, buffers, "layers.first_token_heads");
  if (attention.length !== n * Q * T || curves.length !== n * Q * R || curvesHeads.length !== n * H * Q * R) {
    throw new WireError(`layers: expected ${n} layers of (${Q}, ${T}) rows and (${H}, ${Q}, ${R}) masses, got [${message.attention.shape}].`);
  }
  if (first.length !== n * Q || firstHeads.length !== n * H * Q) {
    throw new WireError(`layers: expected ${n} layers of (${Q}) and (${H}, ${Q}) first-token masses, got [${message.first_token.shape}].`);
  }
  message.layers.forEach((layer, i) => {
    if (!(layer >= 0 && layer < p.nLayers)) throw new WireError(`layers: layer ${layer} is out of range.`);
    p.attention.set(attention.subarray(i * Q * T, (i + 1) * Q * T), layer * Q * T);
    p.curves.set(curves.subarray(i * Q * R, (i + 1) * Q * R), layer * Q * R);
    p.curvesHeads.set(curvesHeads.subarray(i * H * Q * R, (i + 1) * H * Q * R), layer * H * Q * R);
    p.firstToken.set(first.subarray(i * Q, (i + 1) * Q), layer * Q);
    p.firstTokenHeads.set(firstHeads.subarray(i * H * Q, (i + 1) * H * Q), layer * H * Q);
  });
  if (p.pending) p.pending.done = Math.max(p.pending.done, Math.min(message.done, p.pending.total));
}

/** Layers with data: all of them, or the first `pending.done` while a capture runs. */
export function layersDone(p: Payload): number {
  return p.pending ? p.pending.done : p.nLayers;
}

const SQRT_UINT8 = (() => {
  const table = new Float32Array(256);
  for (let v = 0; v < 256; v++) table[v] = (v / 255) ** 2;
  return table;
})();

/**
 * Fill `out` (length nTokens) with the attention row of one query at one
 * layer: head-averaged (`head` null) or one head. Returns false when that
 * head's rows are not loaded (the caller asks the kernel or says so).
 */
export function attentionRow(p: Payload, layer: number, query: number, head: number | null, out: Float32Array): boolean {
  const T = p.nTokens;
  if (head === null) {
    const start = (layer * p.nQueries + query) * T;
    out.set(p.attention.subarray(start, start + T));
    return true;
  }
  const rows = p.heads[query];
  if (!rows) return false;
  const w = rows.width;
  const start = (layer * p.nHeads + head) * w;
  if (rows.encoding === "float16") {
    out.set((rows.values as Float32Array).subarray(start, start + w));
  } else {
    const values = rows.values as Uint8Array;
    for (let i = 0; i < w; i++) out[i] = SQRT_UINT8[values[start + i]];
  }
  out.fill(0, w);
  return true;
}
