// @vitest-environment jsdom
// The residual decomposition and cross-layer cosine views on the payloads
// Python writes for golden_residual() and golden_cross_layer()
// (tests/helpers/golden.py): the decoded numbers are ResidualDecomposition's
// table and CrossLayerCosine's matrix; the cursor's table shows the selected
// layer's numbers; the query selector switches the charts; the heatmap's
// cells carry the matrix and a click moves the cursor to a cell's row.

import { afterEach, describe, expect, it } from "vitest";
import { type CrossLayerState, CrossLayerViewUI, heatIndex } from "../src/cross_layer_view";
import { type ResidualState, ResidualViewUI, normAxis } from "../src/residual_view";
import { cosineAt, crossAt, decodeCrossLayer, decodeResidual, normAt, offDiagonalRange, scaleBounds } from "../src/residual_wire";
import { FakeModel } from "./fake-model";
import { fixture, values } from "./golden";

afterEach(() => document.body.replaceChildren());

const finite = (v: number) => (Number.isNaN(v) ? null : v);

describe("residual decomposition", () => {
  it("decodes to Python's norms and cosines", () => {
    const { payload, expect: want } = fixture("residual_payload");
    const r = decodeResidual(payload);
    expect(r.queries.map((q) => [q.name, q.pos, q.token])).toEqual([
      ["first", 1, "<b>x</b>"],
      ["final", 5, "\n"],
    ]);
    expect(r.defaultQuery).toBe(1);
    for (let c = 0; c < 4; c++) for (let l = 0; l < 3; l++) expect(normAt(r, 1, c, l)).toBeCloseTo(want.norms_final[c][l], 6);
    for (let c = 0; c < 3; c++) {
      for (let l = 0; l < 3; l++) {
        const wanted = want.cosines_final[c][l];
        if (wanted === null) expect(finite(cosineAt(r, 1, c, l))).toBeNull(); // a zero MLP term has no direction
        else expect(cosineAt(r, 1, c, l)).toBeCloseTo(wanted, 6);
      }
    }
    expect(values(r.identityError)).toEqual(want.identity_error);
    expect(() => decodeResidual({ ...payload, kind: "x" })).toThrow("Expected a residual decomposition payload, got x.");
  });

  it("shows the cursor layer's numbers and follows the query", () => {
    const { payload, expect: want } = fixture("residual_payload");
    const model = new FakeModel<ResidualState>({ payload, layer: 1, query: "final", norm_scale: "linear" });
    const el = document.body.appendChild(document.createElement("div"));
    const view = new ResidualViewUI(model, el);
    const cell = (label: string, kind: string) => Number(el.querySelector<HTMLElement>(`tr[data-component="${label}"] td.${kind}`)!.dataset.value);
    expect(cell("block input", "tw-norm")).toBeCloseTo(want.norms_final[0][1], 6);
    expect(cell("attention term", "tw-norm")).toBeCloseTo(4, 6);
    expect(cell("block output", "tw-norm")).toBeCloseTo(want.norms_final[3][1], 6);
    expect(cell("MLP term", "tw-cos")).toBeCloseTo(want.cosines_final[2][1], 6);
    expect(el.querySelectorAll(".tw-norm-chart .tw-residual-line").length).toBe(4);
    expect(el.querySelectorAll(".tw-cos-chart .tw-residual-line").length).toBe(3);
    const before = el.querySelector(".tw-norm-chart polyline")!.getAttribute("points");
    const select = el.querySelector<HTMLSelectElement>(".tw-query-select")!;
    select.value = "first";
    select.dispatchEvent(new Event("change"));
    expect(model.get("query")).toBe("first");
    expect(el.querySelector(".tw-norm-chart polyline")!.getAttribute("points")).not.toBe(before);
    expect(cell("attention term", "tw-norm")).toBeCloseTo(1, 6); // (-1, 0) at layer 1 of "first"
    const slider = el.querySelector<HTMLInputElement>("input.tw-layer")!;
    slider.value = "2";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("layer")).toBe(2);
    expect(el.querySelector(".tw-norm-chart .tw-cursor")!.getAttribute("x1")).toBe(el.querySelector(".tw-cos-chart .tw-cursor")!.getAttribute("x1"));
    const linear = el.querySelector(".tw-norm-chart polyline")!.getAttribute("points");
    const scale = el.querySelector<HTMLSelectElement>(".tw-norm-scale-select")!;
    scale.value = "log";
    scale.dispatchEvent(new Event("change"));
    expect(model.get("norm_scale")).toBe("log");
    expect(el.querySelector(".tw-norm-chart polyline")!.getAttribute("points")).not.toBe(linear);
    // the query token is text, never markup
    expect(el.querySelector("select option")!.textContent).toContain('"<b>x</b>"');
    expect(el.querySelector("b")?.textContent).not.toBe("x");
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("the norms axis", () => {
  it("spans the values linearly from 0, or their decades on a log axis", () => {
    const linear = normAxis([0, 2, 8], "linear");
    expect(linear.ticks).toEqual([0, 4, 8]);
    expect(linear.map(2)).toBeCloseTo(0.25, 12);
    const log = normAxis([0, 1, 10, 1000, NaN], "log");
    expect(log.ticks).toEqual([1, 10, 100, 1000]);
    expect(log.map(10)).toBeCloseTo(1 / 3, 12);
    expect(log.map(0)).toBeNaN(); // a norm of 0 has no place on a log axis
    expect(normAxis([5, 5], "log").ticks).toEqual([1, 10]);
  });
});

describe("cross-layer cosine", () => {
  it("decodes to Python's matrix", () => {
    const { payload, expect: want } = fixture("cross_layer_payload");
    const c = decodeCrossLayer(payload);
    expect([c.source, c.query.name, c.query.pos, c.query.token, c.nLayers]).toEqual(["hidden_out", "final", 5, "<b>x</b>", 3]);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(crossAt(c, i, j)).toBeCloseTo(want.cosine[i * 3 + j], 6);
    const [low, high] = offDiagonalRange(c);
    expect(low).toBeCloseTo(-1, 6);
    expect(high).toBeCloseTo(Math.SQRT1_2, 6);
    expect(scaleBounds(c, "signed")).toEqual([-1, 1]);
    expect(scaleBounds(c, "range")[0]).toBeCloseTo(-1, 6);
    expect([heatIndex(NaN, 0, 1), heatIndex(0, 0, 1), heatIndex(1, 0, 1), heatIndex(2, 0, 1)]).toEqual([0, 1, 255, 255]);
    expect(() => decodeCrossLayer({ ...payload, kind: "residual" })).toThrow("Expected a cross-layer cosine payload, got residual.");
  });

  it("draws a cell per pair of layers and moves the cursor to a clicked row", () => {
    const { payload, expect: want } = fixture("cross_layer_payload");
    const model = new FakeModel<CrossLayerState>({ payload, layer: 2, scale: "range" });
    const el = document.body.appendChild(document.createElement("div"));
    const view = new CrossLayerViewUI(model, el);
    const cells = [...el.querySelectorAll<HTMLTableCellElement>("td.tw-cross-cell")];
    expect(cells.length).toBe(9);
    cells.forEach((td, k) => expect(Number(td.dataset.value)).toBeCloseTo(want.cosine[k], 6));
    expect(cells.filter((td) => td.classList.contains("tw-cross-cursor")).length).toBe(5); // row 2 and column 2
    expect(cells[8].style.backgroundColor).not.toBe(""); // the diagonal is 1: the darkest shade
    cells[1].dispatchEvent(new MouseEvent("click", { bubbles: true })); // row 0, column 1
    expect(model.get("layer")).toBe(0);
    expect(el.querySelector<SVGPolylineElement>(".tw-profile-line")!.dataset.layer).toBe("0");
    const shade = cells[1].style.backgroundColor;
    const select = el.querySelector<HTMLSelectElement>(".tw-scale-select")!;
    select.value = "signed";
    select.dispatchEvent(new Event("change"));
    expect(model.get("scale")).toBe("signed");
    expect(cells[1].style.backgroundColor).not.toBe(shade); // 0.707 on the diverging palette
    expect(el.querySelector(".tw-cross-legend")!.textContent).toContain("-1.000");
    expect(el.querySelector(".tw-diff-title")!.textContent).toContain('"<b>x</b>"');
    expect(el.querySelectorAll(".tw-diff-title b").length).toBe(0);
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});
