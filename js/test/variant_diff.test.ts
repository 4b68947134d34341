// @vitest-environment jsdom
// The variant diff view on the payloads Python writes for a comparison of two
// runs and of two RunSets (tests/helpers/golden.py): the prompt kept whole with
// the changes inline, the delta shading, what is excluded and the sink per
// variant, the table (significance and sink flags as Python's) and the controls.

import { afterEach, describe, expect, it } from "vitest";
import { attentionRow, decodeDiff } from "../src/compare_wire";
import { format } from "../src/curves";
import { displayText } from "../src/heatmap";
import { type DiffState, VariantDiffView } from "../src/variant_diff";
import { FakeModel } from "./fake-model";
import { fixture } from "./golden";

afterEach(() => document.body.replaceChildren());

function mount(overrides: Partial<DiffState> = {}, name: "diff_payload" | "diff_sets_payload" = "diff_payload") {
  const { payload, expect: want } = fixture(name);
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
  // the tokens of one side, in order: shared ones and its own (deleted or inserted)
  const tokens = (side: "b" | "v") => [...el.querySelectorAll<HTMLSpanElement>(`.tw-diff .tw-tok[data-${side}]`)];
  const rows = () => [...el.querySelectorAll<HTMLTableRowElement>(".tw-delta-table tbody tr")];
  return { model, el, view, tokens, rows, want, p: decodeDiff(payload) };
}

describe("variant diff view", () => {
  it("keeps the prompt whole, in order, with the deleted and inserted text inline", () => {
    const { el, view, tokens, p } = mount();
    const [base, terse] = p.cases[0].runs.map((i) => p.runs[i]);
    // one text, no rows: every token of both prompts, a shared one once
    expect(el.querySelectorAll(".tw-diff .tw-diff-body")).toHaveLength(1);
    expect(el.querySelector(".tw-diff-row")).toBeNull();
    const cells = view.textCells();
    expect(cells.map((c) => c.op)).toEqual(["equal", "equal", "delete", "insert", "equal", "equal", "equal", "equal", "equal"]);
    expect(cells.map((c) => c.text).join("")).toBe(["<|s|>", "Be", " kind", " brief", "Why", " so", " <b>?</b>", "<|a|>", "\n"].map(displayText).join(""));
    // each side's tokens read in its own order: the baseline's prompt and the variant's
    expect(tokens("b").map((t) => Number(t.dataset.b))).toEqual(base.tokens.map((_, i) => i));
    expect(tokens("b").map((t) => t.textContent)).toEqual(base.tokens.map(displayText));
    expect(tokens("v").map((t) => t.textContent)).toEqual(terse.tokens.map(displayText));
    expect(el.querySelector(".tw-diff-body")!.textContent).toBe(cells.map((c) => c.text).join(""));
    // the change is marked where it is: <del> then <ins>, between "Be" and "Why"
    const del = el.querySelector(".tw-diff del.tw-del-run")!;
    const ins = el.querySelector(".tw-diff ins.tw-ins-run")!;
    expect(del.textContent).toBe(" kind");
    expect(ins.textContent).toBe(" brief");
    expect(del.previousElementSibling?.textContent).toBe("Be");
    expect(ins.previousElementSibling).toBe(del);
    expect(ins.nextElementSibling?.textContent).toBe("Why");
    expect(del.querySelector(".tw-tok.tw-del")?.getAttribute("data-v")).toBeNull();
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
    const marked = [...el.querySelectorAll<HTMLSpanElement>(".tw-diff .tw-tok.tw-query")];
    expect(marked.map((t) => Number(t.dataset.b))).toEqual([base.queryPos[0]]);
    expect(marked.map((t) => Number(t.dataset.v))).toEqual([terse.queryPos[0]]);
    expect(el.querySelectorAll(".tw-diff .tw-tok.tw-future")).toHaveLength(1); // the last token
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
    expect(regions).toContain("user (own)"); // its share counts its own tokens, as cmp.deltas labels it
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
    expect(el.querySelector(".tw-diff .tw-tok.tw-masked")?.textContent).toBe("<|s|>");
    mask.checked = false;
    mask.dispatchEvent(new Event("change"));
    expect(model.get("mask_sink")).toBe(false);
    expect(el.querySelector(".tw-diff .tw-tok.tw-masked")).toBeNull();
    model.set("token_colour", "attention");
    expect(view.shadeOf("b", 2)).toBeGreaterThan(0); // its own attention now, not minus it
    const notes = [...el.querySelectorAll(".tw-legend .tw-bar-label")].map((n) => n.textContent);
    expect(notes.some((n) => n?.startsWith("attention at layer 1"))).toBe(true);
  });

  it("says what the masses leave out and shows each variant's sink at the layer", () => {
    const { model, el, want, p } = mount();
    expect(el.querySelector(".tw-diff-title")?.textContent).toContain("normalize=share, first token excluded");
    expect(el.querySelector(".tw-diff-curves .tw-panel-header")?.textContent).toContain("(share, first token excluded)");
    expect([...el.querySelectorAll(".tw-region-title")].map((t) => t.textContent)).toEqual(["template", "system", "user (own)", "question"]);
    const q = p.queries.indexOf("final");
    const sink = (v: number, layer: number) => want.sink_first[(v * p.queries.length + q) * p.nLayers + layer];
    const line = () => el.querySelector(".tw-sink-line")!.textContent;
    const change = (layer: number) => {
      const d = sink(1, layer) - sink(0, layer);
      return `${d > 0 ? "+" : ""}${format(d)}`;
    };
    expect(line()).toBe(`sink (first token) at layer 1: baseline ${format(sink(0, 1))} \u00b7 terse ${format(sink(1, 1))} (${change(1)}), excluded`);
    model.set("layer", 2);
    expect(line()).toContain(`baseline ${format(sink(0, 2))} \u00b7 terse ${format(sink(1, 2))} (${change(2)})`);
    // the excluded mass is the first token's here
    expect(want.sink_excluded).toEqual(want.sink_first);
  });
});

describe("variant diff of RunSets", () => {
  it("highlights exactly the rows Python's deltas call significant and marks the sink flags", () => {
    const { model, rows, want, p } = mount({}, "diff_sets_payload");
    const [V, Q, R, K] = p.table.delta.shape;
    expect(V * Q * R * K).toBe(want.significant.length);
    let underEffect = 0;
    let flagged = 0;
    for (const query of p.queries) {
      for (let layer = 0; layer < p.nLayers; layer++) {
        model.set("query", query);
        model.set("layer", layer);
        const q = p.queries.indexOf(query);
        const shown = rows();
        expect(shown).toHaveLength(R); // the variant's rows at this layer, one per region
        shown.forEach((tr, r) => {
          const i = ((1 * Q + q) * R + r) * K + layer;
          const significant = want.significant[i] === 1;
          const sink = want.sink_reassigned[i] === 1;
          expect(tr.classList.contains("tw-significant"), `${query} ${layer} ${r}`).toBe(significant);
          expect(tr.classList.contains("tw-sink-flag"), `${query} ${layer} ${r}`).toBe(sink);
          expect(tr.querySelector(".tw-flag")!.textContent).toBe(sink ? "sink" : "");
          expect(tr.querySelector(".tw-delta")!.textContent!.endsWith(" *")).toBe(significant);
          // an interval that excludes 0 is not enough: |delta| must reach min_effect
          if (!significant && (want.delta_low[i] > 0 || want.delta_high[i] < 0)) underEffect++;
          if (sink) flagged++;
        });
      }
    }
    expect(underEffect).toBeGreaterThan(0);
    expect(flagged).toBeGreaterThan(0);
  });

  it("states min_effect under the table and the sink as a mean over cases", () => {
    const { el, want, p } = mount({ layer: 0 }, "diff_sets_payload");
    expect(p.options.minEffect).toBe(0.005);
    expect(el.querySelector(".tw-table-note")?.textContent).toContain("|\u0394| \u2265 0.005");
    const q = p.queries.indexOf("final");
    const first = want.sink_first[(0 * p.queries.length + q) * p.nLayers + 0];
    expect(el.querySelector(".tw-sink-line")?.textContent).toContain(`at layer 0, mean over cases: baseline ${format(first)}`);
    const flag = [...el.querySelectorAll<HTMLTableCellElement>(".tw-flag")].find((td) => td.textContent === "sink");
    expect(flag?.title).toContain("first token's attention changed by");
  });
});
