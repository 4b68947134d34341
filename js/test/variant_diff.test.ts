// @vitest-environment jsdom
// The variant diff view on the payload Python writes for a comparison of two
// runs (tests/helpers/golden.py): the aligned prompts, the delta shading, the
// table and the controls.

import { afterEach, describe, expect, it } from "vitest";
import { attentionRow, decodeDiff } from "../src/compare_wire";
import { format } from "../src/curves";
import { type DiffState, VariantDiffView } from "../src/variant_diff";
import { FakeModel } from "./fake-model";
import { fixture } from "./golden";

afterEach(() => document.body.replaceChildren());

function mount(overrides: Partial<DiffState> = {}) {
  const { payload } = fixture("diff_payload");
  const model = new FakeModel<DiffState>({
    payload,
    layer: 1,
    query: "final",
    variant: "terse",
    case: 0,
    hidden: [],
    scale: "linear",
    token_colour: "delta",
    mask_sink: true,
    ...overrides,
  });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new VariantDiffView(model, el);
  const tokens = (side: "b" | "v") => [...el.querySelectorAll<HTMLSpanElement>(`.tw-tok[data-side="${side}"]`)];
  return { model, el, view, tokens, p: decodeDiff(payload) };
}

describe("variant diff view", () => {
  it("lines the two prompts up and marks the deleted and inserted text", () => {
    const { el, tokens } = mount();
    expect(tokens("b").map((t) => t.textContent)).toContain(" kind");
    expect(tokens("v").map((t) => t.textContent)).toContain(" brief");
    expect(el.querySelectorAll(".tw-del")).toHaveLength(2); // the legend's and " kind"
    expect(el.querySelector('.tw-tok.tw-del[data-side="b"]')?.textContent).toBe(" kind");
    expect(el.querySelector('.tw-tok.tw-ins[data-side="v"]')?.textContent).toBe(" brief");
    expect(el.querySelector(".tw-diff-head")?.textContent).toContain("8 tokens, 1 deleted");
  });

  it("shows markup in a token as text", () => {
    const { el, tokens } = mount();
    expect(tokens("b").some((t) => t.textContent === " <b>?</b>")).toBe(true);
    expect(el.querySelector(".tw-diff b")).toBeNull();
  });

  it("shades a shared token by the change of its attention and a deleted one by minus its own", () => {
    const { view, p } = mount({ layer: 2 });
    const Q = p.queries.length;
    const [base, terse] = p.cases[0].runs.map((i) => p.runs[i]);
    const q = p.queries.indexOf("final");
    const b = attentionRow(base, Q, 2, q);
    const v = attentionRow(terse, Q, 2, q);
    expect(view.shadeOf("b", 1)).toBeCloseTo(v[1] - b[1], 6); // "Be" is shared
    expect(view.shadeOf("v", 1)).toBeCloseTo(v[1] - b[1], 6);
    expect(view.shadeOf("b", 2)).toBeCloseTo(-b[2], 6); // " kind" was deleted
    expect(view.shadeOf("v", 2)).toBeCloseTo(v[2], 6); // " brief" was inserted
  });

  it("moves every part to a new layer and query", () => {
    const { model, el, view, p } = mount();
    const [base, terse] = p.cases[0].runs.map((i) => p.runs[i]);
    const Q = p.queries.length;
    const at = (layer: number, q: number) => attentionRow(terse, Q, layer, q)[3] - attentionRow(base, Q, layer, q)[3];
    expect(view.shadeOf("b", 3)).toBeCloseTo(at(1, 1), 6);
    model.set("layer", 0);
    expect(view.shadeOf("b", 3)).toBeCloseTo(at(0, 1), 6);
    expect(el.querySelector(".tw-diff-table .tw-panel-header")?.textContent).toContain("layer 0");
    const cells = [...el.querySelectorAll(".tw-delta-table tbody tr")].map((tr) => [...tr.children].map((c) => c.textContent));
    const system = cells.find((row) => row[1] === "system")!;
    const q = p.queries.indexOf("final");
    expect(system[5]?.split(" ")[0]).toBe((p.table.delta.get(1, q, 1, 0) > 0 ? "+" : "") + format(p.table.delta.get(1, q, 1, 0)));
    model.set("query", "answer");
    const marked = [...el.querySelectorAll<HTMLSpanElement>('.tw-tok.tw-query[data-side="b"]')];
    expect(marked.map((t) => Number(t.dataset.i))).toEqual([base.queryPos[0]]);
    expect(view.shadeOf("b", 3)).toBeCloseTo(at(0, 0), 6);
    expect(el.querySelector(".tw-diff-table .tw-panel-header")?.textContent).toContain("query answer");
  });

  it("hides a region's chart and rows from its checkbox", () => {
    const { model, el } = mount();
    const boxes = [...el.querySelectorAll<HTMLInputElement>(".tw-diff-curves .tw-visible")];
    expect(boxes).toHaveLength(4);
    boxes[1].checked = false;
    boxes[1].dispatchEvent(new Event("change"));
    expect(model.get("hidden")).toEqual(["system"]);
    expect(el.querySelectorAll<HTMLDivElement>(".tw-region-chart")[1].style.display).toBe("none");
    const regions = [...el.querySelectorAll(".tw-delta-table tbody tr")].map((tr) => tr.children[1].textContent);
    expect(regions).not.toContain("system");
    expect(regions).toContain("user");
  });

  it("lists the tracked tokens of both variants with their median rank", () => {
    const { el, p } = mount();
    const cells = [...el.querySelectorAll(".tw-tracked-table tbody tr")].map((tr) => [...tr.children].map((c) => c.textContent));
    expect(cells.map((row) => row[0])).toEqual(['"Paris"', '"Paris"', '" yes"', '" yes"']);
    expect(el.querySelector(".tw-tracked-table thead")?.textContent).toContain("median rank");
    const q = p.queries.indexOf("final");
    const k = p.rows.findIndex((row) => row.layers.includes(1));
    const median = p.lens!.rank_median.get(1, q, 0, k);
    expect(cells[1][3]).toBe(format(median).replace(/\.000$/, ""));
    const shift = median - p.lens!.rank_median.get(0, q, 0, k);
    expect(cells[1][4]).toBe((shift > 0 ? "+" : "") + format(shift).replace(/\.000$/, ""));
  });

  it("writes the mask and shading choices back to the model", () => {
    const { model, el, view } = mount();
    const mask = el.querySelector<HTMLInputElement>(".tw-mask-sink")!;
    expect(mask.checked).toBe(true);
    mask.checked = false;
    mask.dispatchEvent(new Event("change"));
    expect(model.get("mask_sink")).toBe(false);
    model.set("token_colour", "attention");
    expect(view.shadeOf("b", 2)).toBeGreaterThan(0); // its own attention now, not minus it
    const notes = [...el.querySelectorAll(".tw-legend .tw-bar-label")].map((n) => n.textContent);
    expect(notes).toContain("attention at layer 1");
  });
});
