// A small payload shaped exactly as tealeaves_widgets/widgets/wire.py writes it.

import { SCHEMA_VERSION, type WireArray } from "../src/wire";

type Typed = Uint8Array | Int16Array | Int32Array | Uint16Array | Float32Array;

export function wire(dtype: WireArray["dtype"], shape: number[], values: Typed, offset = 0): WireArray {
  // copy into a buffer at `offset` bytes, as a DataView (what anywidget hands us)
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const buffer = new ArrayBuffer(bytes.length + offset);
  new Uint8Array(buffer, offset).set(bytes);
  return { dtype, shape, data: new DataView(buffer, offset, bytes.length) };
}

/** float16 bits of small non-negative values (enough for tests). */
export function toFloat16(values: number[]): Uint16Array {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  return Uint16Array.from(values, (v) => {
    f32[0] = v;
    const x = u32[0];
    const exponent = ((x >> 23) & 0xff) - 127 + 15;
    if (v === 0) return 0;
    if (exponent <= 0) return Math.round(v / 2 ** -24); // subnormal
    return (exponent << 10) | ((x >> 13) & 0x3ff);
  });
}

export const TOKENS = ["<s>", "Be", " kind", "\n", "<u>", "Why", " <img src=x onerror=window.__xss=1>", "?"];
export const N_LAYERS = 3;
export const N_HEADS = 2;
export const QUERIES = [
  { name: "answer", pos: 5 },
  { name: "final", pos: 7 },
];

/** (layer, query, pos) rows: layer l puts its largest weight on token 1 + l. */
export function attentionRows(): number[] {
  const T = TOKENS.length;
  const rows: number[] = [];
  for (let l = 0; l < N_LAYERS; l++) {
    for (const q of QUERIES) {
      const row = new Array(T).fill(0);
      for (let i = 0; i <= q.pos; i++) row[i] = 0.02;
      row[0] = 0.5;
      row[1 + l] = 0.3;
      const sum = row.reduce((a, b) => a + b, 0);
      rows.push(...row.map((w) => w / sum));
    }
  }
  return rows;
}

export function payload(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const T = TOKENS.length;
  const rows = attentionRows();
  // per-head rows of "final" only, sqrt-uint8, full width; head 1 = head 0 reversed weights
  const heads = new Uint8Array(N_LAYERS * N_HEADS * T);
  for (let l = 0; l < N_LAYERS; l++) {
    const row = rows.slice((l * 2 + 1) * T, (l * 2 + 2) * T);
    for (let i = 0; i < T; i++) {
      heads[(l * N_HEADS + 0) * T + i] = Math.round(255 * Math.sqrt(row[i]));
      heads[(l * N_HEADS + 1) * T + i] = Math.round(255 * Math.sqrt(row[T - 1 - i]));
    }
  }
  const ids = Int32Array.from([[10, 11], [11, 10], [12, 11]].flatMap((p) => [...p, ...p]));
  return {
    schema_version: SCHEMA_VERSION,
    model: { model_id: "tiny", n_layers: N_LAYERS, n_heads: N_HEADS },
    n_tokens: T,
    tokens: TOKENS,
    token_ids: wire("int32", [T], Int32Array.from(TOKENS, (_, i) => 100 + i)),
    gaps: [],
    token_region: wire("int16", [T], Int16Array.from([0, 1, 1, 0, 0, 3, 3, 2])),
    regions: [
      { name: "template", section: "template", color: "#9ca3af", char_span: [0, 30], token_indices: wire("int32", [3], Int32Array.from([0, 3, 4])), parent: null, builtin: true },
      { name: "system", section: "system", color: "#4e79a7", char_span: [3, 10], token_indices: wire("int32", [2], Int32Array.from([1, 2])), parent: null, builtin: true },
      { name: "user", section: "user", color: "#f28e2b", char_span: [14, 30], token_indices: wire("int32", [3], Int32Array.from([5, 6, 7])), parent: null, builtin: true },
      { name: "question", section: "user", color: "#59a14f", char_span: [14, 20], token_indices: wire("int32", [2], Int32Array.from([5, 6])), parent: "user", builtin: false },
    ],
    queries: QUERIES,
    default_query: 1,
    attention: wire("float16", [N_LAYERS, 2, T], toFloat16(rows), 1),
    curves: wire("float32", [N_LAYERS, 2, 4], new Float32Array(N_LAYERS * 2 * 4)),
    curves_heads: wire("float32", [N_LAYERS, N_HEADS, 2, 4], new Float32Array(N_LAYERS * N_HEADS * 2 * 4)),
    // attention on token 0 of each (layer, query) row; per head, as the head rows hold it
    first_token: wire("float32", [N_LAYERS, 2], Float32Array.from({ length: N_LAYERS * 2 }, (_, i) => rows[i * T])),
    first_token_heads: wire("float32", [N_LAYERS, N_HEADS, 2], new Float32Array(N_LAYERS * N_HEADS * 2)),
    lens: {
      k: 2,
      top_ids: wire("int32", [N_LAYERS, 2, 2], ids),
      top_probs: wire("float32", [N_LAYERS, 2, 2], new Float32Array(12).fill(0.25)),
      entropy: wire("float32", [N_LAYERS, 2], new Float32Array(6)),
      kl_to_final: wire("float32", [N_LAYERS, 2], new Float32Array(6)),
      tracked_tokens: [" Paris"],
      tracked_ids: wire("int32", [1], Int32Array.from([10])),
      tracked_ranks: wire("int32", [N_LAYERS, 2, 1], Int32Array.from([3, 2, 2, 1, 1, 1])),
      tracked_probs: wire("float32", [N_LAYERS, 2, 1], new Float32Array(6).fill(0.1)),
      vocab: { "10": " Paris", "11": " the", "12": "\n" },
    },
    heads: [null, { encoding: "sqrt-uint8", rows: wire("uint8", [N_LAYERS, N_HEADS, T], heads) }],
    budget: { max_bytes: 4000000, bytes: 1234 },
    ...overrides,
  };
}
