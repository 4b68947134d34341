import { describe, expect, it } from "vitest";
import {
  COLOURS,
  DARK,
  DEFAULT_SCALE,
  LIGHT_PALETTE,
  LOG_DECADES,
  type RGB,
  SCALES,
  colourIndices,
  contrast,
  describeScale,
  divergingPalette,
  heatPalette,
  maxUnmasked,
  quantile,
  rankOf,
  scaleRange,
} from "../src/colour";
import { parseColour } from "../src/theme";

const none = (n: number) => new Uint8Array(n);

function indices(scale: Parameters<typeof scaleRange>[0], row: number[], masked = none(row.length), limit = row.length, allMax = 0) {
  const r = Float32Array.from(row);
  const scratch = new Float32Array(r.length);
  const range = scaleRange(scale, r, masked, limit, allMax, scratch);
  return { range, out: Array.from(colourIndices(r, masked, range, new Uint8Array(r.length), scratch)) };
}

describe("colour scale", () => {
  it("has 256 colours from white to dark", () => {
    expect(COLOURS).toHaveLength(256);
    expect(COLOURS[0]).toBe("rgb(255, 255, 255)");
    expect(COLOURS[255]).toBe("rgb(128, 0, 38)");
    expect(DARK[0]).toBe(false);
    expect(DARK[255]).toBe(true);
  });

  it("defaults to the log scale per layer, and keeps the old scales", () => {
    expect(DEFAULT_SCALE).toBe("log-layer");
    expect(SCALES).toEqual(["log-layer", "linear", "log", "layer"]);
  });

  it("maps linearly up to the maximum over all layers and clips above", () => {
    expect(indices("linear", [0, 0.1, 0.2, 0.4], undefined, 4, 0.2).out).toEqual([0, 128, 255, 255]);
  });

  it("leaves masked tokens out of the maximum and uncoloured", () => {
    const row = Float32Array.from([0.9, 0.05, 0.05]);
    const masked = Uint8Array.from([1, 0, 0]);
    expect(maxUnmasked(row, masked)).toBeCloseTo(0.05);
    expect(indices("layer", [0.9, 0.05, 0.05], masked).out).toEqual([0, 255, 255]);
  });

  it("spreads LOG_DECADES decades below the maximum over all layers on the log scale", () => {
    expect(LOG_DECADES).toBe(4);
    expect(indices("log", [1, 0.1, 1e-4, 1e-6, 0], undefined, 5, 1).out).toEqual([255, 191, 1, 1, 0]);
  });

  it("log-layer: faintest at the layer's median, darkest at its max", () => {
    // median of [1e-4, 1e-3, 1e-2, 0.1, 1] is 1e-2: two decades up to the max
    const { range, out } = indices("log-layer", [1e-4, 1e-3, 1e-2, 0.1, 1]);
    expect(range.kind).toBe("log");
    expect(range.low).toBeCloseTo(1e-2);
    expect(range.high).toBe(1);
    expect(out).toEqual([1, 1, 1, 128, 255]);
  });

  it("log-layer: the median over the tokens the query sees and not masked", () => {
    const row = [0.8, 1e-3, 1e-2, 1e-1, 0.5, 0.5, 0.5]; // the last three come after the query
    const masked = Uint8Array.from([1, 0, 0, 0, 0, 0, 0]);
    const { range } = indices("log-layer", row, masked, 4);
    expect(range.low).toBeCloseTo(1e-2);
    expect(range.high).toBeCloseTo(0.1);
  });

  it("log-layer spans one decade at least and six at most", () => {
    expect(indices("log-layer", [0.5, 0.5, 0.4, 0.6]).range.low).toBeCloseTo(0.06);
    expect(indices("log-layer", [0, 0, 0, 1e-9, 0.5]).range.low).toBeCloseTo(0.5e-6);
  });

  it("the trial scales: a fixed number of decades, a percentile, the rank", () => {
    expect(indices("log3-layer", [1, 1e-3, 1e-2]).range.low).toBeCloseTo(1e-3);
    const ramp = Array.from({ length: 101 }, (_, i) => i / 100);
    expect(indices("p90-layer", ramp).range.high).toBeCloseTo(0.9);
    expect(indices("rank-layer", [0.4, 0.1, 0.2, 0.3]).out).toEqual([255, 64, 128, 191]);
  });

  it("computes quantiles as numpy does", () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (const n of [1, 2, 5, 100, 101]) {
      const values = Float32Array.from({ length: n }, () => Math.round(random() * 20) / 20);
      const sorted = Array.from(values).sort((a, b) => a - b);
      for (const q of [0.5, 0.9, 0.99]) {
        const h = (n - 1) * q;
        const expected = sorted[Math.floor(h)] + (h - Math.floor(h)) * (sorted[Math.ceil(h)] - sorted[Math.floor(h)]);
        expect(quantile(Float32Array.from(values), n, q)).toBeCloseTo(expected, 6);
      }
    }
    expect(quantile(new Float32Array(0), 0, 0.5)).toBeNaN();
  });

  it("draws nothing when the maximum is 0", () => {
    expect(indices("log-layer", [0, 0]).out).toEqual([0, 0]);
    expect(indices("linear", [0, 0]).out).toEqual([0, 0]);
  });

  it("says how the scale maps and what is masked", () => {
    const range = { kind: "log" as const, low: 1e-3, high: 0.1 };
    expect(describeScale("log-layer", range, true, false)).toBe("log, this layer's median to its max (2.0 decades); first token masked");
    expect(describeScale("linear", { kind: "linear", low: 0, high: 1 }, true, true)).toBe(
      "linear, 0 to the max over all layers; template and first token masked",
    );
    expect(describeScale("layer", { kind: "linear", low: 0, high: 1 }, false, false)).toBe("linear, 0 to this layer's max");
  });

  it("ranks a weight within its row", () => {
    const row = Float32Array.from([0.5, 0.2, 0.2, 0.1]);
    expect([0, 1, 2, 3].map((i) => rankOf(row, i))).toEqual([1, 2, 2, 4]);
  });
});

describe("palettes", () => {
  const rgb = (text: string) => parseColour(text) as RGB;

  it("on a light page: the old colours, light text on the dark shades", () => {
    expect(LIGHT_PALETTE.dark).toBe(false);
    expect(LIGHT_PALETTE.colours[255]).toBe("rgb(128, 0, 38)");
    expect(LIGHT_PALETTE.text[0]).toBe("");
    expect(LIGHT_PALETTE.text[30]).toBe("");
    expect(LIGHT_PALETTE.text[255]).toBe("rgb(255, 255, 255)");
  });

  it("on a dark page: from the background up to light yellow, dark text on the light shades", () => {
    const palette = heatPalette([17, 17, 17], [255, 255, 255]);
    expect(palette.dark).toBe(true);
    expect(palette.colours[0]).toBe("rgb(17, 17, 17)");
    expect(palette.colours[255]).toBe("rgb(255, 237, 160)");
    expect(palette.text[1]).toBe("");
    expect(palette.text[255]).toBe("rgb(0, 0, 0)");
  });

  it("every shade's text contrasts at least 4.5:1 with it, in both themes", () => {
    for (const [background, text] of [
      [[255, 255, 255], [0, 0, 0]],
      [[255, 255, 255], [31, 35, 40]],
      [[17, 17, 17], [255, 255, 255]],
    ] as RGB[][]) {
      for (const palette of [heatPalette(background, text), divergingPalette(background, text)]) {
        palette.colours.forEach((shade, i) => {
          const ink = palette.text[i] ? rgb(palette.text[i]) : text;
          expect(contrast(rgb(shade), ink)).toBeGreaterThanOrEqual(4.5);
        });
      }
    }
  });

  it("the diverging palette's centre is the background", () => {
    expect(divergingPalette([17, 17, 17], [255, 255, 255]).colours[127]).toBe("rgb(17, 17, 17)");
    expect(divergingPalette([255, 255, 255], [0, 0, 0]).colours[127]).toBe("rgb(255, 255, 255)");
  });

  it("reads CSS colours", () => {
    expect(parseColour("rgb(17, 17, 17)")).toEqual([17, 17, 17]);
    expect(parseColour("rgba(255, 255, 255, 0.87)")).toEqual([255, 255, 255]);
    expect(parseColour("rgba(0, 0, 0, 0)")).toBeNull();
    expect(parseColour("#1f2328")).toEqual([31, 35, 40]);
    expect(parseColour("#fff")).toEqual([255, 255, 255]);
    expect(parseColour("var(--jp-layout-color0)")).toBeNull();
  });
});
