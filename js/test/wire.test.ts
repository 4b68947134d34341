import { describe, expect, it } from "vitest";
import { SCHEMA_VERSION, WireError, attentionRow, decodeArray, decodeFloat, decodePayload, float16ToFloat32 } from "../src/wire";
import { N_HEADS, N_LAYERS, TOKENS, attentionRows, payload, toFloat16, wire } from "./fixture";

describe("decodeArray", () => {
  it("views aligned bytes without copying", () => {
    const value = wire("float32", [2, 2], Float32Array.from([1, 2, 3, 4]), 8);
    const array = decodeArray(value as any);
    expect(Array.from(array)).toEqual([1, 2, 3, 4]);
    expect(array.buffer).toBe((value.data as DataView).buffer);
  });

  it("copies misaligned bytes and keeps the values", () => {
    const value = wire("int32", [3], Int32Array.from([-1, 7, 1 << 30]), 1);
    const array = decodeArray(value as any);
    expect(Array.from(array)).toEqual([-1, 7, 1 << 30]);
    expect(array.buffer).not.toBe((value.data as DataView).buffer);
  });

  it("refuses a shape that does not match the bytes", () => {
    const value = wire("int16", [5], Int16Array.from([1, 2, 3]));
    expect(() => decodeArray(value as any, "token_region")).toThrow(/token_region: shape \[5\] of int16 needs 10 bytes, got 6/);
  });

  it("refuses an unknown dtype", () => {
    expect(() => decodeArray({ dtype: "int64", shape: [1], data: new ArrayBuffer(8) } as any)).toThrow(WireError);
  });
});

describe("float16", () => {
  it("decodes normal, subnormal and special values", () => {
    const bits = Uint16Array.from([0x0000, 0x3c00, 0xc000, 0x3555, 0x0001, 0x7c00, 0x7bff]);
    const values = float16ToFloat32(bits);
    expect(values[0]).toBe(0);
    expect(values[1]).toBe(1);
    expect(values[2]).toBe(-2);
    expect(values[3]).toBeCloseTo(1 / 3, 3);
    expect(values[4]).toBe(2 ** -24);
    expect(values[5]).toBe(Infinity);
    expect(values[6]).toBe(65504);
  });

  it("decodeFloat converts float16 and views float32", () => {
    expect(Array.from(decodeFloat(wire("float16", [2], toFloat16([0.5, 0.25]))))).toEqual([0.5, 0.25]);
    expect(() => decodeFloat(wire("int32", [1], Int32Array.from([1])), "attention")).toThrow(/attention: expected float16 or float32/);
  });
});

describe("decodePayload", () => {
  it("decodes every part", () => {
    const p = decodePayload(payload());
    expect(p.nTokens).toBe(TOKENS.length);
    expect(p.tokens[6]).toContain("<img");
    expect(p.regions.map((r) => r.name)).toEqual(["template", "system", "user", "question"]);
    expect(Array.from(p.regions[3].tokenIndices)).toEqual([5, 6]);
    expect(p.queries[p.defaultQuery].name).toBe("final");
    expect(p.attention.length).toBe(N_LAYERS * 2 * TOKENS.length);
    expect(p.heads[0]).toBeNull();
    expect(p.heads[1]?.width).toBe(TOKENS.length);
    expect(p.lens.vocab.get(10)).toBe(" Paris");
    expect(Array.from(p.lens.trackedRanks)).toEqual([3, 2, 2, 1, 1, 1]);
  });

  it("says how to fix a schema mismatch", () => {
    expect(() => decodePayload(payload({ schema_version: SCHEMA_VERSION + 1 }))).toThrow(
      new RegExp(`Python package sent schema ${SCHEMA_VERSION + 1}, this page's JavaScript reads schema ${SCHEMA_VERSION}\\. Reinstall`),
    );
    expect(() => decodePayload(undefined)).toThrow(/received no data/);
  });

  it("checks the attention shape", () => {
    const bad = payload({ attention: wire("float16", [1, 1, 2], toFloat16([0.5, 0.5])) });
    expect(() => decodePayload(bad)).toThrow(/attention: expected \(3, 2, 8\)/);
  });
});

describe("attentionRow", () => {
  const p = decodePayload(payload());
  const T = TOKENS.length;
  const exact = attentionRows();

  it("reads head-averaged rows", () => {
    const out = new Float32Array(T);
    expect(attentionRow(p, 2, 1, null, out)).toBe(true);
    exact.slice((2 * 2 + 1) * T, (2 * 2 + 2) * T).forEach((w, i) => expect(out[i]).toBeCloseTo(w, 3));
  });

  it("undoes the sqrt-uint8 encoding of head rows", () => {
    const out = new Float32Array(T);
    expect(attentionRow(p, 1, 1, 0, out)).toBe(true);
    exact.slice((1 * 2 + 1) * T, (1 * 2 + 2) * T).forEach((w, i) => expect(Math.abs(Math.sqrt(out[i]) - Math.sqrt(w))).toBeLessThanOrEqual(0.5 / 255 + 1e-6));
    expect(attentionRow(p, 1, 1, N_HEADS - 1, out)).toBe(true);
    expect(out[T - 1]).toBeCloseTo(exact[(1 * 2 + 1) * T], 2);
  });

  it("pads a causal row cut at its query position with zeros", () => {
    const short = payload({ heads: [null, { encoding: "sqrt-uint8", rows: wire("uint8", [N_LAYERS, N_HEADS, 2], new Uint8Array(N_LAYERS * N_HEADS * 2).fill(255)) }] });
    const out = new Float32Array(T).fill(9);
    attentionRow(decodePayload(short), 0, 1, 1, out);
    expect(Array.from(out)).toEqual([1, 1, 0, 0, 0, 0, 0, 0]);
  });

  it("returns false for a query whose head rows are not loaded", () => {
    expect(attentionRow(p, 0, 0, 1, new Float32Array(T))).toBe(false);
  });
});
