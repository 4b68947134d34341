// @vitest-environment jsdom
import { afterEach, describe, expect, it } from "vitest";
import { BandChart, finiteRuns, variantChip } from "../src/bands";
import { DIVERGING, DIVERGING_CENTRE, divergingIndex } from "../src/colour";
import { type Alignment, Grid, OP_DELETE, OP_EQUAL, OP_INSERT, decodeAggregate, decodeDiff, stepDeltas, tokenShades } from "../src/compare_wire";
import { LayerSlider, ModelSelect } from "../src/controls";
import { SCHEMA_VERSION, WireError } from "../src/wire";
import { FakeModel } from "./fake-model";
import { wire } from "./fixture";

afterEach(() => document.body.replaceChildren());

// baseline "A B C D", variant "A X C D E": B deleted, X and E inserted
const ALIGNMENT: Alignment = {
  op: Int8Array.from([OP_EQUAL, OP_DELETE, OP_INSERT, OP_EQUAL, OP_EQUAL, OP_INSERT]),
  baselinePos: Int32Array.from([0, 1, -1, 2, 3, -1]),
  variantPos: Int32Array.from([0, -1, 1, 2, 3, 4]),
};
const BASELINE = Float32Array.from([0.5, 0.25, 0.125, 0.125]);
const VARIANT = Float32Array.from([0.25, 0.25, 0.25, 0.125, 0.125]);

describe("diverging colours", () => {
  it("are symmetric around a white centre, clipped, and empty for NaN", () => {
    expect(DIVERGING).toHaveLength(2 * DIVERGING_CENTRE + 1);
    expect(DIVERGING[DIVERGING_CENTRE]).toBe("rgb(255, 255, 255)");
    expect(divergingIndex(0, 0.3)).toBe(DIVERGING_CENTRE);
    expect(divergingIndex(0.3, 0.3)).toBe(2 * DIVERGING_CENTRE);
    expect(divergingIndex(-0.3, 0.3)).toBe(0);
    expect(divergingIndex(9, 0.3)).toBe(2 * DIVERGING_CENTRE);
    expect(divergingIndex(0.1, 0.3) - DIVERGING_CENTRE).toBe(DIVERGING_CENTRE - divergingIndex(-0.1, 0.3));
    expect(divergingIndex(NaN, 0.3)).toBe(-1);
    expect(divergingIndex(0.2, 0)).toBe(DIVERGING_CENTRE);
  });
});

describe("token deltas along an alignment", () => {
  it("are variant minus baseline on shared tokens, NaN elsewhere (as Comparison.token_deltas)", () => {
    const deltas = Array.from(stepDeltas(ALIGNMENT, BASELINE, VARIANT));
    expect(deltas[0]).toBeCloseTo(-0.25);
    expect(deltas[3]).toBeCloseTo(0.125);
    expect(deltas[4]).toBe(0);
    expect([1, 2, 5].map((s) => Number.isNaN(deltas[s]))).toEqual([true, true, true]);
  });

  it("shade deleted tokens by lost attention and inserted ones by gained attention", () => {
    const { left, right } = tokenShades(ALIGNMENT, BASELINE, VARIANT);
    expect(Array.from(left)).toEqual([-0.25, -0.25, 0.125, 0]);
    expect(Array.from(right)).toEqual([-0.25, 0.25, 0.125, 0, 0.125]);
  });
});

describe("payloads", () => {
  it("a Grid indexes a C-order array by its axes, int8 flags included", () => {
    const grid = new Grid(wire("float32", [2, 3], Float32Array.from([0, 1, 2, 3, 4, 5])), "g");
    expect(grid.get(1, 2)).toBe(5);
    expect(Array.from(grid.row(1))).toEqual([3, 4, 5]);
    const flags = new Grid(wire("int8", [2], Int8Array.from([1, -1]) as unknown as Uint8Array), "f");
    expect([flags.get(0), flags.get(1)]).toEqual([1, -1]);
  });

  it("refuse the wrong kind and a mismatched shape", () => {
    const aggregate = {
      schema_version: SCHEMA_VERSION,
      kind: "aggregate",
      model: { model_id: "m" },
      n_layers: 2,
      sets: [{ name: "a", runs: 1, cases: 1, units: 1 }],
      queries: ["final"],
      default_query: 0,
      regions: [{ name: "r", color: "#000" }],
      normalizations: ["raw"],
      excluded: ["nothing"],
      own: [false],
      stats: ["mean"],
      level: 0.95,
      interval: "t",
      values: wire("float32", [1, 1, 1, 2, 1, 1], Float32Array.from([0.5, 0.25])),
    };
    expect(decodeAggregate(aggregate).values.get(0, 0, 0, 1, 0, 0)).toBe(0.25);
    expect(() => decodeDiff(aggregate)).toThrow(WireError);
    expect(() => decodeAggregate({ ...aggregate, n_layers: 3 })).toThrow(/expected shape \[1,1,1,3,1,1\]/);
    expect(() => decodeAggregate({ ...aggregate, schema_version: 99 })).toThrow(/schema mismatch/);
  });
});

describe("controls", () => {
  it("the layer slider and a select follow the model both ways", () => {
    type State = { layer: number; query: string };
    const model = new FakeModel<State>({ layer: 1, query: "final" });
    const slider = new LayerSlider(model, 4);
    document.body.appendChild(slider.root);
    expect(slider.root.querySelector(".tw-layer-label")!.textContent).toBe("layer 1 / 3");
    slider.slider.value = "3";
    slider.slider.dispatchEvent(new Event("input"));
    expect(model.get("layer")).toBe(3);
    model.set("layer", 0);
    expect(slider.slider.value).toBe("0");
    const select = new ModelSelect<State, "query">(model, "query", "query", "tw-query-select", [
      ["answer", "answer"],
      ["final", "final"],
    ]);
    expect(select.select.value).toBe("final");
    select.select.value = "answer";
    select.select.dispatchEvent(new Event("change"));
    expect(model.get("query")).toBe("answer");
    model.set("query", "final");
    expect(select.select.value).toBe("final");
    slider.destroy();
    select.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("band chart", () => {
  it("splits curves and bands at NaN and picks a layer on click", () => {
    expect(finiteRuns(5, [1, NaN, 2, 3, NaN])).toEqual([
      [0, 1],
      [2, 4],
    ]);
    const picked: number[] = [];
    const chart = new BandChart(5, { width: 200, height: 100 }, (layer) => picked.push(layer));
    document.body.appendChild(chart.root);
    chart.draw([
      { label: "a", color: "#f00", values: [1, 2, NaN, 2, 1], low: [0, 1, NaN, 1, 0], high: [2, 3, NaN, 3, 2], dashed: true },
      { label: "b", color: "#00f", values: [0, 0, 0, 0, 0], low: null, high: null },
    ]);
    expect(chart.root.querySelectorAll("polygon.tw-band")).toHaveLength(2);
    expect(chart.root.querySelectorAll("polyline.tw-line")).toHaveLength(3);
    expect(chart.root.querySelectorAll("polyline[stroke-dasharray]")).toHaveLength(2);
    chart.setLayer(4);
    expect(Number(chart.root.querySelector(".tw-cursor")!.getAttribute("x1"))).toBeCloseTo(chart.x(4));
    chart.root.dispatchEvent(new MouseEvent("pointerdown", { clientX: 0 }) as PointerEvent);
    expect(picked).toEqual([0]);
    chart.destroy();
  });

  it("lays itself out at its box's width, its height in proportion, and keeps its series", () => {
    const chart = new BandChart(5, { width: 200, height: 100 }, () => {});
    chart.draw([{ label: "a", color: "#f00", values: [1, 2, 3, 2, 1], low: null, high: null }]);
    chart.layout(600);
    expect(chart.root.getAttribute("viewBox")).toBe("0 0 600 160"); // 0.5 of the width, at most 1.6x the height built
    expect(chart.width).toBe(600);
    expect(chart.x(4)).toBeCloseTo(600 - 10); // the right margin
    const points = chart.root.querySelector("polyline.tw-line")!.getAttribute("points")!.split(" ");
    expect(Number(points[4].split(",")[0])).toBeCloseTo(590, 0);
    expect(chart.root.querySelector(".tw-axis")!.getAttribute("x2")).toBe("590");
    chart.destroy();
  });
});

describe("variant chips", () => {
  it("mark the baseline dashed grey and the variants solid in their colours", () => {
    const base = variantChip("a", 0, " (n=4)");
    expect(base.textContent).toBe("a (baseline) (n=4)");
    expect(base.querySelector(".tw-swatch")!.classList.contains("tw-dashed")).toBe(true);
    const variant = variantChip("b", 1);
    expect(variant.textContent).toBe("b");
    const swatch = variant.querySelector<HTMLElement>(".tw-swatch")!;
    expect(swatch.classList.contains("tw-dashed")).toBe(false);
    expect(swatch.style.backgroundColor).toBe("rgb(207, 34, 46)"); // VARIANT_COLOURS[1], #cf222e
  });
});
