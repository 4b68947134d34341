// @vitest-environment jsdom
// The head atlas view on the payload Python writes for golden_head_atlas()
// (tests/helpers/golden.py): the decoder gives Python's scores, profiles and
// patterns; the colour scale is diverging around 0 for a signed metric and
// sequential otherwise; a threshold dims what lies below it (|score| for a
// signed metric); sorting orders each layer's heads; the ranked heads are
// HeadAtlas.top's; a click on a cell selects its head, the detail panel
// follows, and the metric picker switches the grid's metric.

import { afterEach, describe, expect, it } from "vitest";
import { DIVERGING_CENTRE, divergingIndex } from "../src/colour";
import { type HeadAtlasState, HeadAtlasViewUI } from "../src/head_atlas_view";
import {
  cellAt,
  colourIndex,
  decodeHeadAtlas,
  dimmed,
  gridLayout,
  headOrder,
  metricIndex,
  metricScale,
  metricScores,
  pattern,
  patternIndex,
  patternScale,
  profile,
  profilePeak,
  rankOf,
  slotOf,
  thresholdMax,
  thresholdStep,
  topHeads,
} from "../src/head_atlas_wire";
import { FakeModel } from "./fake-model";
import { fixture, values } from "./golden";

HTMLCanvasElement.prototype.getContext = (() => null) as any; // jsdom draws nothing

afterEach(() => document.body.replaceChildren());

function mount(state: Partial<HeadAtlasState> = {}) {
  const { payload, expect: want } = fixture("head_atlas_payload");
  const model = new FakeModel<HeadAtlasState>({ payload, metric: "previous_token", layer: 1, head: 0, sort: "head", threshold: 0, ...state });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new HeadAtlasViewUI(model, el);
  return { model, el, view, want };
}

/** A click on the cell of (layer, head) where the grid draws it (jsdom lays the canvas at 0, 0). */
function clickCell(view: HeadAtlasViewUI, layer: number, head: number) {
  const { x, y } = view.cellCentre(layer, head);
  view.root.querySelector("canvas.tw-atlas-grid")!.dispatchEvent(new MouseEvent("click", { clientX: x, clientY: y, bubbles: true }));
}

describe("head atlas payload", () => {
  it("decodes to Python's scores, profiles and patterns", () => {
    const { payload, expect: want } = fixture("head_atlas_payload");
    const a = decodeHeadAtlas(payload);
    expect([a.nLayers, a.nHeads, a.P, a.nOffsets, a.bosPrepended, a.seed]).toEqual([3, 2, 3, 3, true, 3]);
    expect(a.metrics.map((m) => m.name)).toEqual(want.metric_names);
    expect(a.metrics.filter((m) => m.signed).map((m) => m.name)).toEqual(want.signed);
    a.metrics.forEach((m, i) => expect(values(metricScores(a, i))).toEqual(want.scores[m.name]));
    expect(values(a.profiles)).toEqual(want.profiles);
    expect(values(a.patterns)).toEqual(want.patterns);
    expect(values(pattern(a, 1, 0))).toEqual(want.patterns.slice(18, 27));
    expect(values(profile(a, 2, 1))).toEqual(want.profiles.slice(15, 18));
    expect(a.metrics[metricIndex(a, "delimiter")].note).toBe("no delimiters in <i>these</i> probes");
  });

  it("refuses another payload with the reason", () => {
    const { payload } = fixture("head_atlas_payload");
    expect(() => decodeHeadAtlas({ ...payload, kind: "head_gates" })).toThrow("Expected a head atlas payload, got head_gates.");
    expect(() => decodeHeadAtlas({ ...payload, n_layers: 4 })).toThrow("scores: expected (12, 4, 2, ...), got [12,3,2].");
    expect(() => decodeHeadAtlas({ ...payload, schema_version: 99 })).toThrow("schema mismatch");
  });
});

describe("colours, threshold and order", () => {
  it("spans a sequential metric from 0 to its largest score, a signed one symmetrically", () => {
    expect(metricScale([0.25, 0.5, NaN, 0.125], false)).toEqual({ signed: false, low: 0, high: 0.5 });
    expect(metricScale([1.5, 2, 3], false)).toEqual({ signed: false, low: 0, high: 3 });
    expect(metricScale([-1.5, -2], false)).toEqual({ signed: false, low: -2, high: -1.5 });
    expect(metricScale([-3, 0.5, 1], true)).toEqual({ signed: true, low: -3, high: 3 });
    expect(metricScale([NaN], true)).toEqual({ signed: true, low: -1, high: 1 });
    expect(metricScale([0, 0], false)).toEqual({ signed: false, low: 0, high: 1 });
  });

  it("puts 0 of a signed metric at the diverging palette's centre (the background)", () => {
    const scale = metricScale([-3, 0.5, 1], true);
    expect(colourIndex(0, scale)).toBe(DIVERGING_CENTRE);
    expect(colourIndex(-3, scale)).toBe(0);
    expect(colourIndex(3, scale)).toBe(2 * DIVERGING_CENTRE);
    expect(colourIndex(1.5, scale)).toBe(divergingIndex(1.5, 3));
    expect(colourIndex(-1.5, scale)).toBeLessThan(DIVERGING_CENTRE);
    expect(colourIndex(NaN, scale)).toBe(-1);
    const seq = metricScale([0, 0.5, 1], false);
    expect([colourIndex(0, seq), colourIndex(0.5, seq), colourIndex(1, seq), colourIndex(2, seq)]).toEqual([1, 128, 255, 255]);
  });

  it("dims what lies below the threshold, by |score| for a signed metric", () => {
    expect(dimmed(0.1, 0, false)).toBe(false); // 0: off
    expect(dimmed(NaN, 0, false)).toBe(false);
    expect([dimmed(0.1, 0.2, false), dimmed(0.2, 0.2, false), dimmed(0.3, 0.2, false)]).toEqual([true, false, false]);
    expect([dimmed(-0.5, 0.2, false), dimmed(-0.5, 0.2, true), dimmed(-0.1, 0.2, true)]).toEqual([true, false, true]);
    expect(dimmed(NaN, 0.2, true)).toBe(true);
    expect(thresholdMax([-3, 1, NaN], true)).toBe(3);
    expect(thresholdMax([-3, 1, NaN], false)).toBe(1);
    expect([thresholdStep(3), thresholdStep(0.97), thresholdStep(0), thresholdStep(250)]).toEqual([0.01, 0.001, 0.01, 1]);
  });

  it("orders each layer's heads by score, NaN last, and ranks as HeadAtlas.top does", () => {
    // 2 layers x 3 heads
    const scores = [0.1, 0.3, 0.2, NaN, -0.5, 0.4];
    expect(Array.from(headOrder(scores, 2, 3, "head", false))).toEqual([0, 1, 2, 0, 1, 2]);
    expect(Array.from(headOrder(scores, 2, 3, "score", false))).toEqual([1, 2, 0, 2, 1, 0]);
    expect(Array.from(headOrder(scores, 2, 3, "score", true))).toEqual([1, 2, 0, 1, 2, 0]);
    expect(topHeads(scores, 3, 2, true)).toEqual([
      { layer: 1, head: 1, value: -0.5 },
      { layer: 1, head: 2, value: 0.4 },
    ]);
    expect(topHeads(scores, 3, 6, false).map((r) => r.head + 3 * r.layer)).toEqual([5, 1, 2, 0, 4, 3]);
    expect([rankOf(scores, 4, true), rankOf(scores, 4, false), rankOf(scores, 3, false)]).toEqual([1, 5, 0]);
    const { payload, expect: want } = fixture("head_atlas_payload");
    const a = decodeHeadAtlas(payload);
    const ov = metricIndex(a, "ov_copy");
    expect(topHeads(metricScores(a, ov), a.nHeads, 3, true).map((r) => [r.layer, r.head])).toEqual(want.top_ov_copy);
  });

  it("scales a pattern without its first key, which it clips", () => {
    const P = 3;
    const rows = [1, 0, 0, 0.75, 0.25, 0, 0.5, 0.125, 0.375];
    expect(patternScale(rows, P)).toEqual({ high: 0.375, sink: 0.75, sinkMax: 1 });
    expect([patternIndex(0.375, 0.375), patternIndex(1, 0.375), patternIndex(0, 0.375), patternIndex(0.0001, 0.375)]).toEqual([255, 255, 0, 1]);
    expect(profilePeak([0.9, 0.1, 0.3, 0.2])).toBe(2);
    expect(profilePeak([0.9])).toBe(-1);
  });

  it("finds the cell under a point", () => {
    const g = gridLayout(3, 2);
    expect(cellAt(g, 3, 2, g.left + 1, g.top + 1)).toEqual({ layer: 0, slot: 0 });
    expect(cellAt(g, 3, 2, g.left + g.cell * 1.5, g.top + g.row * 2.5)).toEqual({ layer: 2, slot: 1 });
    expect(cellAt(g, 3, 2, g.left - 1, g.top + 1)).toBeNull();
    expect(cellAt(g, 3, 2, g.left + g.cell * 2 + 1, g.top + 1)).toBeNull();
    expect(cellAt(g, 3, 2, g.left + 1, g.top + g.row * 3 + 1)).toBeNull();
    expect(slotOf(Int32Array.from([1, 0, 0, 1]), 2, 0, 0)).toBe(1);
  });
});

describe("head atlas view", () => {
  it("shows the metric's description, range and ranked heads", () => {
    const { el, want } = mount();
    expect(el.querySelector(".tw-atlas-description")!.textContent).toContain("previous_token: mean over rows of the weight on the previous token");
    expect(el.querySelector(".tw-legend-low")!.textContent).toBe("0.000");
    expect(Number(el.querySelector(".tw-legend-high")!.textContent)).toBeCloseTo(Math.max(...want.scores.previous_token), 3);
    const items = [...el.querySelectorAll(".tw-atlas-top-list li")].map((li) => `${(li as HTMLElement).dataset.layer},${(li as HTMLElement).dataset.head}`);
    expect(items[0]).toBe("2,1"); // (0 + 1 + 2*2 + 1) / 16, the largest
    expect(items.length).toBe(6);
  });

  it("selects the head clicked, and the detail panel follows", () => {
    const { model, el, view, want } = mount();
    expect(el.querySelector(".tw-atlas-detail-title")!.textContent).toContain("L1H0");
    clickCell(view, 2, 1);
    expect([model.get("layer"), model.get("head")]).toEqual([2, 1]);
    expect(model.saved.at(-1)).toEqual({ layer: 2, head: 1 });
    expect(el.querySelector(".tw-atlas-detail-title")!.textContent).toContain("L2H1");
    const canvas = el.querySelector<HTMLCanvasElement>("canvas.tw-atlas-pattern")!;
    expect([canvas.dataset.layer, canvas.dataset.head, canvas.width]).toEqual(["2", "1", 3]);
    // the pattern's scale leaves the first key out: head (2, 1) attends to the previous token
    expect(Number(canvas.dataset.high)).toBe(0.875);
    expect(el.querySelector(".tw-atlas-pattern-note")!.textContent).toContain("The first key (the BOS, the sink) takes 0.417 of a row");
    const bars = [...el.querySelectorAll<SVGRectElement>(".tw-atlas-profile rect")];
    expect(bars.map((b) => Number(b.dataset.value))).toEqual(want.profiles.slice(15, 18));
    expect(bars.map((b) => b.classList.contains("tw-peak"))).toEqual([false, true, false]);
    // every metric's score of the head, from Python's arrays (flat index 2 * 2 + 1 = 5)
    const rows = [...el.querySelectorAll<HTMLTableRowElement>(".tw-atlas-scores tbody tr")];
    expect(rows.map((tr) => tr.dataset.metric)).toEqual(want.metric_names);
    rows.forEach((tr) => {
      const got = Number((tr.querySelector("td[data-value]") as HTMLElement).dataset.value);
      const expected = want.scores[tr.dataset.metric!][5];
      if (expected === null) expect(got).toBeNaN();
      else expect(got).toBe(expected);
    });
    // a click on a ranked head selects it too
    (el.querySelector('.tw-atlas-top-list li[data-layer="0"][data-head="0"]') as HTMLElement).click();
    expect([model.get("layer"), model.get("head")]).toEqual([0, 0]);
  });

  it("switches the metric from the picker, resetting the threshold, with diverging colours for a signed one", () => {
    const { model, el, view } = mount({ threshold: 0.3 });
    expect(view.cell(2, 1).dimmed).toBe(false);
    expect(view.cell(0, 0).dimmed).toBe(true);
    // hover names the head, its metric and score; a metric change hides that stale tip
    const { x, y } = view.cellCentre(2, 1);
    el.querySelector("canvas.tw-atlas-grid")!.dispatchEvent(new MouseEvent("mousemove", { clientX: x, clientY: y, bubbles: true }));
    const tip = el.querySelector<HTMLElement>(".tw-tip")!;
    expect(tip.style.display).toBe("block");
    expect(tip.textContent).toBe("L2H1previous_token: 0.375rank: 1 of 6");
    const select = el.querySelector<HTMLSelectElement>("select.tw-metric-select")!;
    select.value = "ov_copy";
    select.dispatchEvent(new Event("change"));
    expect([model.get("metric"), model.get("threshold")]).toEqual(["ov_copy", 0]);
    expect(tip.style.display).toBe("none");
    expect(el.querySelector(".tw-atlas-description")!.textContent).toContain("ov_copy: on IOI prompts");
    expect(el.querySelector(".tw-legend-low")!.textContent).toBe("-1.000");
    expect(el.querySelector(".tw-legend-high")!.textContent).toBe("1.000");
    // head 1 is negated: below the centre of the diverging palette; head 0 above
    expect(view.cell(2, 1).index).toBe(0);
    expect(view.cell(2, 0).index).toBeGreaterThan(DIVERGING_CENTRE);
    expect(view.cell(0, 1).index).toBeLessThan(DIVERGING_CENTRE);
    // a threshold on |score|: -1 stays, 0.6875 (layer 0) fades
    model.set("threshold", 0.8);
    expect([view.cell(2, 1).dimmed, view.cell(0, 0).dimmed]).toEqual([false, true]);
    expect(el.querySelector(".tw-atlas-threshold-value")!.textContent).toBe("|score| < 0.800");
  });

  it("sorts each layer by score and clicks still reach the head under the pointer", () => {
    const { model, view } = mount({ metric: "ov_copy", sort: "score" });
    // in every layer head 0's |score| is below head 1's: head 1 comes first
    expect([view.cell(0, 1).slot, view.cell(0, 0).slot]).toEqual([0, 1]);
    clickCell(view, 1, 0);
    expect([model.get("layer"), model.get("head")]).toEqual([1, 0]);
    model.set("sort", "head");
    expect(view.cell(0, 1).slot).toBe(1);
  });

  it("shows a NaN score as no score, and no head as an invitation to click", () => {
    const { model, el, view } = mount({ metric: "s2_attention" });
    expect(view.cell(0, 1).index).toBe(-1);
    model.set("head", null);
    expect(el.querySelector(".tw-atlas-empty")!.textContent).toContain("No head selected");
    expect(el.querySelector("canvas.tw-atlas-pattern")).toBeNull();
  });

  it("keeps markup in a note as text", () => {
    const { el } = mount({ metric: "delimiter" });
    expect(el.querySelector(".tw-atlas-description")!.textContent).toContain("<i>these</i>");
    expect(el.querySelector(".tw-atlas-description i")).toBeNull();
  });
});
