// @vitest-environment jsdom
// The previous-token test view on the payload Python writes for
// golden_prev_token() (tests/helpers/golden.py): the bars are the sweep's
// redundancy, a click on a bar shows that offset's per-layer table, whose
// cells are PrevTokenTest.table's.

import { afterEach, describe, expect, it } from "vitest";
import { type PrevTokenState, PrevTokenViewUI } from "../src/prev_token_view";
import { cell, decodePrevToken, peak } from "../src/prev_token_wire";
import { FakeModel } from "./fake-model";
import { fixture, values } from "./golden";

afterEach(() => document.body.replaceChildren());

function mount() {
  const { payload, expect: want } = fixture("prev_token_payload");
  const model = new FakeModel<PrevTokenState>({ payload, offset: 1, measure: "inner" });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new PrevTokenViewUI(model, el);
  return { model, el, view, want };
}

describe("previous-token test", () => {
  it("decodes to Python's sweep and tables", () => {
    const { payload, expect: want } = fixture("prev_token_payload");
    const t = decodePrevToken(payload);
    expect([t.layer, t.head, t.valueHeads, t.offsets, t.nTexts]).toEqual([1, 0, [0, 1], [1, 2], 2]);
    expect(values(t.redundancy)).toEqual(want.redundancy);
    expect(peak(t)).toBe(0);
    const table = [];
    for (let p = 0; p < t.pairs.length; p++) for (let l = 0; l < t.nLayers; l++) table.push(cell(t, "inner", 1, p, l)[0]);
    table.forEach((v, i) => expect(v).toBeCloseTo(want.table_k2[i], 6));
    expect(() => decodePrevToken({ ...payload, kind: "x" })).toThrow("Expected a previous-token test payload, got x.");
  });

  it("draws a bar per offset and shows the picked offset's table", () => {
    const { model, el, view, want } = mount();
    const bars = [...el.querySelectorAll<SVGRectElement>(".tw-sweep-bar")];
    expect(bars.map((b) => Number(b.dataset.value))).toEqual(want.redundancy);
    expect(bars[0].classList.contains("tw-selected")).toBe(true);
    expect(el.querySelector(".tw-diff-title")!.textContent).toContain("redundancy peaks at k = 1");
    bars[1].dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(model.get("offset")).toBe(2);
    const rows = [...el.querySelectorAll<HTMLTableRowElement>(".tw-pairs-table tbody tr")];
    expect(rows.length).toBe(3);
    expect(rows[1].classList.contains("tw-current")).toBe(true); // the head's layer
    expect(rows.map((r) => r.classList.contains("tw-before"))).toEqual([true, false, false]);
    const cells = rows.map((r) => [...r.querySelectorAll<HTMLElement>("td[data-value]")].map((td) => Number(td.dataset.value)));
    // table_k2 is pair-major (pair, layer); the rows are layers
    for (let l = 0; l < 3; l++) for (let p = 0; p < 4; p++) expect(cells[l][p]).toBeCloseTo(want.table_k2[p * 3 + l], 6);
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});
