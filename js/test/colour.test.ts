import { describe, expect, it } from "vitest";
import { COLOURS, DARK, LOG_DECADES, colourIndices, maxUnmasked, rankOf } from "../src/colour";

describe("colour scale", () => {
  it("has 256 colours from white to dark", () => {
    expect(COLOURS).toHaveLength(256);
    expect(COLOURS[0]).toBe("rgb(255, 255, 255)");
    expect(DARK[0]).toBe(false);
    expect(DARK[255]).toBe(true);
  });

  it("maps linearly up to vmax and clips above", () => {
    const row = Float32Array.from([0, 0.1, 0.2, 0.4]);
    const out = colourIndices(row, new Uint8Array(4), 0.2, false, new Uint8Array(4));
    expect(Array.from(out)).toEqual([0, 128, 255, 255]);
  });

  it("leaves masked tokens out of the maximum and uncoloured", () => {
    const row = Float32Array.from([0.9, 0.05, 0.05]);
    const masked = Uint8Array.from([1, 0, 0]);
    expect(maxUnmasked(row, masked)).toBeCloseTo(0.05);
    const out = colourIndices(row, masked, maxUnmasked(row, masked), false, new Uint8Array(3));
    expect(Array.from(out)).toEqual([0, 255, 255]);
  });

  it("spreads LOG_DECADES decades below vmax on the log scale", () => {
    const row = Float32Array.from([1, 0.1, 1e-4, 1e-6, 0]);
    const out = colourIndices(row, new Uint8Array(5), 1, true, new Uint8Array(5));
    expect(LOG_DECADES).toBe(4);
    expect(Array.from(out)).toEqual([255, 191, 1, 1, 0]);
  });

  it("draws nothing when the maximum is 0", () => {
    expect(Array.from(colourIndices(Float32Array.from([0, 0]), new Uint8Array(2), 0, false, new Uint8Array(2).fill(7)))).toEqual([0, 0]);
  });

  it("ranks a weight within its row", () => {
    const row = Float32Array.from([0.5, 0.2, 0.2, 0.1]);
    expect([0, 1, 2, 3].map((i) => rankOf(row, i))).toEqual([1, 2, 2, 4]);
  });
});
