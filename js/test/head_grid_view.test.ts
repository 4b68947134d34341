// @vitest-environment jsdom
// The head grid view on the payload Python writes for golden_head_grid()
// (tests/helpers/golden.py): the decoded patterns are Python's, the
// browser's pooling of a thumbnail equals HeadGrid.pooled, the colour scales
// map as documented, a click on a thumbnail enlarges that head, and token
// text (" <b>x</b>") stays text.

import { afterEach, describe, expect, it } from "vitest";
import {
  blockText,
  decodeHeadGrid,
  factorFor,
  gridIndex,
  gridIndices,
  headMatrix,
  poolMatrix,
  scaleTop,
  tokenLabel,
} from "../src/head_grid_wire";
import { type HeadGridState, HeadGridViewUI } from "../src/head_grid_view";
import { FakeModel } from "./fake-model";
import { fixture, values } from "./golden";

// jsdom has no canvas: the view computes its colour indices and skips painting
HTMLCanvasElement.prototype.getContext = (() => null) as any;

afterEach(() => document.body.replaceChildren());

function mount(head = 0) {
  const { payload, expect: want } = fixture("head_grid_payload");
  const model = new FakeModel<HeadGridState>({ payload, head, scale: "sqrt" });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new HeadGridViewUI(model, el);
  return { model, el, view, want };
}

describe("head grid wire", () => {
  it("decodes to Python's patterns and refuses a wrong shape", () => {
    const { payload, expect: want } = fixture("head_grid_payload");
    const g = decodeHeadGrid(payload);
    expect([g.layer, g.nLayers, g.nHeads, g.nKvHeads, g.nTokens, g.pool, g.size]).toEqual([1, 3, 2, 1, 7, 1, 7]);
    expect(values(g.patterns)).toEqual(want.patterns);
    expect(g.tokens[3]).toBe(" <b>x</b>");
    expect(() => decodeHeadGrid({ ...payload, kind: "x" })).toThrow("Expected a head grid payload, got x.");
    expect(() => decodeHeadGrid({ ...payload, n_tokens: 8, tokens: [...payload.tokens, "y"] })).toThrow("patterns: expected (2, 8, 8)");
  });

  it("pools as HeadGrid.pooled does, rows weighted by their tokens", () => {
    const { payload, expect: want } = fixture("head_grid_payload");
    const g = decodeHeadGrid(payload);
    for (const [factor, key] of [
      [2, "pooled_2"],
      [3, "pooled_3"],
    ] as const) {
      const pooled: number[] = [];
      for (let head = 0; head < g.nHeads; head++) {
        const { side, values: v } = poolMatrix(headMatrix(g, head), g.size, factor, g.nTokens, g.pool);
        expect(side).toBe(Math.ceil(7 / factor));
        pooled.push(...v);
      }
      // Python stores the pooled grid in float16
      pooled.forEach((v, k) => expect(v).toBeCloseTo(want[key][k], 3));
    }
    // pooling a grid already pooled by 2 by 2 more weighs the last (one-token) block by 1
    const m = new Float32Array([1, 0, 0, 0, 0.5, 0.5, 0, 0, 1 / 3, 1 / 3, 1 / 3, 0, 0.25, 0.25, 0.25, 0.25]);
    const again = poolMatrix(m, 4, 2, 7, 2);
    expect(again.side).toBe(2);
    // block (1, 0): rows 2 and 3 (2 and 1 tokens), keys 0 and 1 summed
    expect(again.values[2]).toBeCloseTo((2 * (2 / 3) + 1 * 0.5) / 3, 6);
    expect(factorFor(1024, 96)).toBe(11);
    expect(factorFor(50, 96)).toBe(1);
  });

  it("maps weights to colours on each scale", () => {
    expect(gridIndex(0, 1, "sqrt")).toBe(0);
    expect(gridIndex(0.25, 1, "sqrt")).toBe(128); // sqrt: a quarter of the max is the middle
    expect(gridIndex(0.25, 1, "linear")).toBe(64);
    expect(gridIndex(1e-9, 1, "linear")).toBe(1); // any weight shows
    expect(gridIndex(2, 1, "linear")).toBe(255); // clipped
    const matrix = new Float32Array([1, 0, 0.8, 0.2]); // a sink of 1 and 0.8 in column 0
    expect(scaleTop(matrix, 2, "linear")).toBeCloseTo(0.8, 6); // the first row (query 0) left out
    expect(scaleTop(matrix, 2, "no-first")).toBeCloseTo(0.2, 6);
    expect(Array.from(gridIndices(matrix, 2, "no-first"))).toEqual([255, 0, 255, 255]);
    expect(scaleTop(new Float32Array([1]), 1, "no-first")).toBe(1); // nothing but the first column
  });

  it("labels tokens as text", () => {
    const g = decodeHeadGrid(fixture("head_grid_payload").payload);
    expect(tokenLabel("\n")).toBe("\u21b5");
    expect(tokenLabel("abcdefghijklmnop", 6)).toBe("abcde\u2026");
    expect(blockText(g, 1, 3)).toBe('3 " <b>x</b>"');
    expect(blockText(g, 3, 2)).toBe('6 " on"');
    expect(blockText(g, 3, 1)).toBe('3\u20135 " <b>x</b>" \u2026 "\\n"');
  });
});

describe("head grid view", () => {
  it("draws a thumbnail per head and the picked head large", () => {
    const { model, el, view, want } = mount();
    const thumbs = [...el.querySelectorAll<HTMLButtonElement>(".tw-head-thumb")];
    expect(thumbs.map((b) => b.textContent)).toEqual(["H0 (KV 0)", "H1 (KV 0)"]);
    expect(thumbs[0].classList.contains("tw-selected")).toBe(true);
    const T = 7;
    // head 0 on the sqrt scale: index round(255 sqrt(w / max)), max over the rows after
    // the first: row 1's sink, 15/16 (row 0's 1 is clipped)
    const top = 15 / 16;
    const expected = want.patterns
      .slice(0, T * T)
      .map((w: number) => (w > 0 ? Math.max(1, Math.round(255 * Math.sqrt(Math.min(w / top, 1)))) : 0));
    expect(Array.from(view.largeIndices)).toEqual(expected);
    expect(el.querySelector(".tw-head-title")!.textContent).toBe("Head 0 (KV 0) of layer 1");
    thumbs[1].dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(model.get("head")).toBe(1);
    expect(model.saved.at(-1)).toEqual({ head: 1 });
    expect(el.querySelector(".tw-head-canvas")!.getAttribute("data-head")).toBe("1");
    expect(thumbs[1].classList.contains("tw-selected")).toBe(true);
    const head1 = want.patterns.slice(T * T);
    // t-1 of " <b>x</b>"; head 1's max after the first row: 14/16 (row 1's sink and t-1)
    expect(view.largeIndices[3 * T + 2]).toBe(Math.round(255 * Math.sqrt(head1[3 * T + 2] / (14 / 16))));
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });

  it("says how the first-token column is coloured", () => {
    const { model, el } = mount();
    const note = () => el.querySelector(".tw-head-note")!.textContent!;
    expect(note()).toContain("square root");
    model.set("scale", "no-first");
    expect(note()).toContain("first token's column is left out of the colour range");
    // head 0's mean weight on the first token: mean over rows of 1 - i/16
    const mean = [0, 1, 2, 3, 4, 5, 6].reduce((a, i) => a + 1 - i / 16, 0) / 7;
    expect(note()).toContain(`${mean.toFixed(4)} of its weight`);
  });

  it("puts token text on the axes as text, never markup", () => {
    const { el } = mount();
    const rows = [...el.querySelectorAll<HTMLElement>(".tw-head-queries .tw-head-label")];
    expect(rows.map((r) => r.textContent)).toEqual(["<|s|>", "The", " cat", " <b>x</b>", " sat", "\u21b5", " on"]);
    expect(el.querySelectorAll(".tw-head-keys .tw-head-label").length).toBe(7);
    expect(el.querySelector(".tw-root b:not(.tw-head-title)")?.textContent).not.toBe("x");
    expect([...el.querySelectorAll("b")].some((b) => b.textContent === "x")).toBe(false);
  });
});
