// @vitest-environment jsdom
import { afterEach, describe, expect, it } from "vitest";
import { colourIndices, maxUnmasked, scaleRange } from "../src/colour";
import { NORMALIZATIONS } from "../src/curves";
import { type ExplorerState, ExplorerView } from "../src/explorer";
import { type HeatmapState, HeatmapView } from "../src/heatmap";
import { columnOf, columnsFor, firstOfColumn, hottestIn, tokenGrid, topTokens } from "../src/overview";
import { attentionRow, decodePayload } from "../src/wire";
import { FakeModel } from "./fake-model";
import { N_HEADS, N_LAYERS, TOKENS, payload, wire } from "./fixture";

HTMLCanvasElement.prototype.getContext = (() => null) as any;

afterEach(() => document.body.replaceChildren());

const T = TOKENS.length;
const R = 4;

/** Region masses that differ by layer, query, region and head (the fixture's are zeros). */
function massPayload(overrides: Record<string, unknown> = {}) {
  const curves = new Float32Array(N_LAYERS * 2 * R);
  const heads = new Float32Array(N_LAYERS * N_HEADS * 2 * R);
  const first = new Float32Array(N_LAYERS * 2);
  const firstHeads = new Float32Array(N_LAYERS * N_HEADS * 2);
  for (let l = 0; l < N_LAYERS; l++) {
    for (let q = 0; q < 2; q++) {
      // template holds the first token: its mass includes it
      first[l * 2 + q] = 0.3 + 0.05 * l;
      for (let r = 0; r < R; r++) curves[(l * 2 + q) * R + r] = (r === 0 ? first[l * 2 + q] : 0) + 0.05 * (l + 1) * (r + 1) + 0.1 * q;
      for (let h = 0; h < N_HEADS; h++) {
        firstHeads[(l * N_HEADS + h) * 2 + q] = 0.2 + 0.1 * h;
        for (let r = 0; r < R; r++) heads[((l * N_HEADS + h) * 2 + q) * R + r] = 0.2 + 0.1 * h + 0.03 * (l + 1) * (R - r);
      }
    }
  }
  return payload({
    curves: wire("float32", [N_LAYERS, 2, R], curves),
    curves_heads: wire("float32", [N_LAYERS, N_HEADS, 2, R], heads),
    first_token: wire("float32", [N_LAYERS, 2], first),
    first_token_heads: wire("float32", [N_LAYERS, N_HEADS, 2], firstHeads),
    ...overrides,
  });
}

function explorer(overrides: Partial<ExplorerState> = {}, data = massPayload()) {
  const model = new FakeModel<ExplorerState>({
    payload: data,
    layer: 1,
    query: "final",
    head: null,
    scale: "layer",
    mask_template: false,
    mask_sink: true,
    normalize: "raw",
    region: null,
    hidden: [],
    ...overrides,
  });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new ExplorerView(model, el);
  return { model, el, view, heatmap: view.heatmap, overview: view.heatmap.overview };
}

function heatmap(overrides: Partial<HeatmapState> = {}) {
  const model = new FakeModel<HeatmapState>({
    payload: massPayload(),
    layer: 0,
    query: "final",
    head: null,
    scale: "log-layer",
    mask_template: false,
    mask_sink: true,
    region: null,
    ...overrides,
  });
  const el = document.body.appendChild(document.createElement("div"));
  return { model, el, view: new HeatmapView(model, el) };
}

/** The ranked list as the page shows it: [position, weight] per row shown. */
function ranked(el: HTMLElement): [number, number][] {
  return Array.from(el.querySelectorAll<HTMLLIElement>(".tw-top-list li"))
    .filter((li) => li.style.visibility !== "hidden")
    .map((li) => [Number(li.dataset.pos), Number(li.dataset.weight)]);
}

/** The payload's row of (layer, query, head), ranked by weight, sink and later tokens left out. */
function expectedRanking(layer: number, query: number, head: number | null, maskSink = true): [number, number][] {
  const p = decodePayload(massPayload());
  const row = new Float32Array(T);
  attentionRow(p, layer, query, head, row);
  const limit = p.queries[query].pos + 1;
  return Array.from({ length: limit }, (_, i) => i)
    .filter((i) => !(maskSink && i === 0) && row[i] > 0)
    .sort((a, b) => row[b] - row[a] || a - b)
    .slice(0, 10)
    .map((i) => [i, row[i]]);
}

/** Make the text box scroll as a laid-out one would: token i at 100 * i px, the box 150 px high. */
function layOut(el: HTMLElement) {
  const box = el.querySelector<HTMLDivElement>(".tw-text")!;
  Object.defineProperty(box, "clientHeight", { value: 150, configurable: true });
  el.querySelectorAll<HTMLSpanElement>(".tw-tok").forEach((span, i) => {
    Object.defineProperty(span, "offsetTop", { value: 100 * i, configurable: true });
    Object.defineProperty(span, "offsetHeight", { value: 20, configurable: true });
  });
  return box;
}

function pointer(target: Element, clientX: number, clientY: number) {
  target.dispatchEvent(new MouseEvent("pointerdown", { clientX, clientY, bubbles: true }));
}

describe("overview computations", () => {
  it("ranks weights, ties by position, leaving masked and later tokens out", () => {
    const row = Float32Array.from([0.5, 0.1, 0.3, 0.1, 0, 0.2, 0.9, 0.4]);
    const masked = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(topTokens(row, masked, 6, 10)).toEqual([2, 5, 1, 3]);
    expect(topTokens(row, masked, 8, 3)).toEqual([6, 7, 2]);
    expect(topTokens(row, new Uint8Array(8), 8, 2)).toEqual([6, 0]);
  });

  it("maps tokens to columns and back", () => {
    for (const [n, cols] of [
      [2048, 1000],
      [300, 300],
      [7, 3],
    ]) {
      for (let col = 0; col < cols; col++) {
        const first = firstOfColumn(col, n, cols);
        expect(columnOf(first, n, cols)).toBe(col);
        if (first > 0) expect(columnOf(first - 1, n, cols)).toBe(col - 1);
      }
    }
    expect(columnsFor(2048, 960.7)).toBe(960);
    expect(columnsFor(300, 960)).toBe(300);
  });

  it("draws each layer's row in the heatmap's colours, a bucket in its darkest", () => {
    const p = decodePayload(massPayload());
    const masked = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0]);
    const row = new Float32Array(T);
    const scratch = new Float32Array(T);
    const want = new Uint8Array(T);
    for (const scale of ["log-layer", "linear", "layer"] as const) {
      const grid = tokenGrid(p, 1, null, scale, masked, T);
      let vmax = 0;
      for (let l = 0; l < N_LAYERS; l++) vmax = Math.max(vmax, (attentionRow(p, l, 1, null, row), maxUnmasked(row, masked)));
      for (let l = 0; l < N_LAYERS; l++) {
        attentionRow(p, l, 1, null, row);
        colourIndices(row, masked, scaleRange(scale, row, masked, 8, vmax, scratch), want, scratch);
        expect(Array.from(grid.index.subarray(l * T, (l + 1) * T))).toEqual(Array.from(want));
      }
      // two tokens per column: the darker one's colour, the more attended one's position
      const half = tokenGrid(p, 1, null, scale, masked, T / 2);
      for (let l = 0; l < N_LAYERS; l++) {
        attentionRow(p, l, 1, null, row);
        for (let c = 0; c < T / 2; c++) {
          const [a, b] = [2 * c, 2 * c + 1];
          expect(half.index[l * 4 + c]).toBe(Math.max(grid.index[l * T + a], grid.index[l * T + b]));
          const hot = masked[a] ? b : row[b] > row[a] ? b : a;
          expect(half.hottest[l * 4 + c]).toBe(hot);
        }
      }
    }
  });

  it("a region's most attended token, else its first", () => {
    const row = Float32Array.from([0.5, 0.1, 0.3, 0, 0]);
    expect(hottestIn(Int32Array.from([0, 1, 2]), row, Uint8Array.from([1, 0, 0, 0, 0]))).toBe(2);
    expect(hottestIn(Int32Array.from([0, 1, 2]), row, new Uint8Array(5))).toBe(0);
    expect(hottestIn(Int32Array.from([4, 3]), row, new Uint8Array(5))).toBe(3);
  });
});

describe("layer x region matrix", () => {
  it("shows the curves' values for every normalisation, query and head", () => {
    const { model, view, overview } = explorer();
    for (const query of ["final", "answer"]) {
      for (const head of [null, 0, 1]) {
        for (const mode of NORMALIZATIONS) {
          model.set("query", query);
          model.set("head", head);
          model.set("normalize", mode);
          let finite = 0;
          for (let l = 0; l < N_LAYERS; l++) {
            for (let r = 0; r < R; r++) {
              const curve = view.curves.value(l, r);
              const cell = overview.matrix.value(l, r);
              if (Number.isNaN(curve)) expect(cell).toBeNaN();
              else {
                expect(cell).toBe(curve);
                finite++;
              }
            }
          }
          expect(finite).toBeGreaterThanOrEqual(N_LAYERS * 3);
        }
      }
    }
  });

  it("follows the curves' exclusion", () => {
    const { el, model, view, overview } = explorer({ normalize: "share" });
    for (const exclude of [null, "first", ["first", "template"]]) {
      model.set("exclude", exclude);
      let changed = 0;
      for (let l = 0; l < N_LAYERS; l++) {
        for (let r = 0; r < R; r++) {
          const curve = view.curves.value(l, r);
          if (Number.isNaN(curve)) expect(overview.matrix.value(l, r)).toBeNaN();
          else expect(overview.matrix.value(l, r)).toBe(curve), changed++;
        }
      }
      expect(changed).toBeGreaterThan(0);
    }
    expect(el.querySelector(".tw-matrix-panel .tw-overview-note")!.textContent).toMatch(/^share of the attention, first token and template excluded, as the cooking curves/);
  });

  it("shades the largest value darkest and says what it shows", () => {
    const { el, model, overview } = explorer({ normalize: "share" });
    let best = [0, 0];
    for (let l = 0; l < N_LAYERS; l++) for (let r = 0; r < R; r++) if (overview.matrix.value(l, r) > overview.matrix.value(best[0], best[1])) best = [l, r];
    expect(overview.matrix.shade(best[0], best[1])).toBe(255);
    const cells = el.querySelectorAll(".tw-matrix-cell");
    expect(cells).toHaveLength(N_LAYERS * R);
    expect(cells[best[0] * R + best[1]].getAttribute("fill")).toBe("rgb(128, 0, 38)");
    expect(el.querySelector(".tw-matrix-panel .tw-overview-note")!.textContent).toMatch(/^share of the attention, first token excluded, as the cooking curves; darkest 0\.\d{3}$/);
    model.set("normalize", "raw");
    expect(el.querySelector(".tw-matrix-panel .tw-overview-note")!.textContent).toMatch(/^attention mass, as the cooking curves/);
  });

  it("a heatmap alone shows shares", () => {
    const { el } = heatmap();
    expect(el.querySelector(".tw-matrix-panel .tw-overview-note")!.textContent).toMatch(/^share of the attention, first token excluded, as run\.curves\(normalize="share"\); darkest /);
  });

  it("marks the layer shown, and a click goes to a cell's layer and region", () => {
    const { el, model, heatmap: view } = explorer();
    const cursor = el.querySelector(".tw-matrix-cursor")!;
    // the matrix laid out at 270 px: 24 px of layer numbers, 44 px columns, names above (60 px), 14 px rows
    expect(cursor.getAttribute("y")).toBe(String(60 + 14));
    model.set("layer", 2);
    expect(cursor.getAttribute("y")).toBe(String(60 + 2 * 14));
    const box = layOut(el);
    pointer(el.querySelector(".tw-matrix")!, 24 + 1 * 44 + 10, 60 + 0 * 14 + 5); // layer 0, "system" (tokens 1, 2)
    expect(model.get("layer")).toBe(0);
    expect(model.get("region")).toBe("system");
    // layer 0 puts its weight on token 1: the region's most attended token
    expect(view.revealed).toBe(1);
    expect(box.scrollTop).toBe(0); // in view already
    expect(el.querySelector(".tw-matrix-name.tw-selected")!.firstChild!.textContent).toBe("system");
    // a region's name selects it at the layer shown
    pointer(el.querySelector(".tw-matrix")!, 24 + 3 * 44 + 10, 20);
    expect(model.get("layer")).toBe(0);
    expect(model.get("region")).toBe("question");
    expect(view.revealed).toBe(5);
  });
});

describe("layer x token map", () => {
  it("a click goes to the layer of its row and the most attended token of its column", () => {
    const { el, model, heatmap: view } = explorer({ scale: "log-layer" });
    const box = layOut(el);
    // jsdom lays nothing out: the map is 600 px wide (8 columns of 75 px), 3 rows of 10 px
    const map = el.querySelector(".tw-minimap-box")!;
    pointer(map, 3 * 75 + 5, 2 * 10 + 5);
    expect(model.get("layer")).toBe(2);
    expect(view.revealed).toBe(3);
    expect(box.scrollTop).toBe(300 - 50);
    expect(el.querySelector(".tw-tok.tw-flash")!.getAttribute("data-i")).toBe("3");
    expect(el.querySelector<HTMLElement>(".tw-minimap-layer")!.style.transform).toBe("translateY(20px)");
    // the masked sink is never jumped to: its column has no token with weight
    pointer(map, 0 * 75 + 5, 0 * 10 + 5);
    expect(model.get("layer")).toBe(0);
    expect(view.revealed).toBe(0);
    expect(box.scrollTop).toBe(0);
  });

  it("says how many tokens a column holds", () => {
    const { el } = explorer();
    expect(el.querySelector(".tw-minimap-head")!.textContent).toContain("one column per token");
  });
});

describe("most attended tokens", () => {
  it("lists the payload's row by weight, the sink left out, and follows the layer", () => {
    const { el, model } = explorer();
    for (const layer of [1, 0, 2]) {
      model.set("layer", layer);
      const want = expectedRanking(layer, 1, null);
      expect(ranked(el).map(([pos]) => pos)).toEqual(want.map(([pos]) => pos));
      ranked(el).forEach(([, weight], k) => expect(weight).toBe(want[k][1]));
      expect(el.querySelector(".tw-top-panel b")!.textContent).toBe(`Most attended at layer ${layer}`);
    }
    expect(el.querySelector(".tw-top-note")!.textContent).toMatch(/^first token \(the sink\) left out, 0\.\d{4} at layer 2, as "mask first token" is on\.$/);
  });

  it("includes the sink when it is not masked, and follows the head and query", () => {
    const { el, model } = explorer({ mask_sink: false, layer: 2 });
    expect(ranked(el)[0][0]).toBe(0);
    expect(ranked(el).map(([pos]) => pos)).toEqual(expectedRanking(2, 1, null, false).map(([pos]) => pos));
    expect(el.querySelector(".tw-top-note")!.textContent).toBe('first token included ("mask first token" is off).');
    model.set("mask_sink", true);
    model.set("head", 1);
    expect(ranked(el)).toEqual(expectedRanking(2, 1, 1));
    model.set("head", null);
    model.set("query", "answer"); // token 5: nothing after it is listed
    expect(ranked(el)).toEqual(expectedRanking(2, 0, null));
    expect(Math.max(...ranked(el).map(([pos]) => pos))).toBeLessThanOrEqual(5);
  });

  it("shows token text as text and scrolls to a token on click", () => {
    const { el, heatmap: view } = explorer({ mask_sink: false, layer: 0 });
    expect(el.querySelector("img")).toBeNull();
    const items = Array.from(el.querySelectorAll<HTMLLIElement>(".tw-top-list li"));
    const xss = items.find((li) => li.dataset.pos === "6")!;
    expect(xss.querySelector(".tw-top-token")!.textContent).toBe('" <img src=x onerror=window.__xss=1>"'.slice(0, 23) + "\u2026");
    expect(xss.title).toContain('" <img src=x onerror=window.__xss=1>"');
    expect(xss.querySelector(".tw-top-region")!.textContent).toBe("question");
    const box = layOut(el);
    xss.click();
    expect(view.revealed).toBe(6);
    expect(box.scrollTop).toBe(600 - 50);
    // from the keyboard too; a token in view already does not scroll
    const seven = items.find((li) => li.dataset.pos === "7")!;
    seven.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(view.revealed).toBe(7);
    expect(box.scrollTop).toBe(700 - 50);
    xss.click();
    expect(box.scrollTop).toBe(600 - 50);
    xss.click();
    expect(box.scrollTop).toBe(600 - 50);
  });
});

describe("while a capture streams its layers in", () => {
  it("says a layer is not computed yet, and leaves its cells and columns empty", () => {
    const pending = massPayload({
      attention: wire("float16", [N_LAYERS, 2, T], new Uint16Array(N_LAYERS * 2 * T)),
      pending: { done: 1, total: N_LAYERS, follow: false },
    });
    const { el, model, overview } = explorer({ layer: 2 }, pending);
    expect(el.querySelector(".tw-top-note")!.textContent).toBe("Layer 2 is not computed yet.");
    expect(ranked(el)).toEqual([]);
    expect(overview.matrix.value(2, 1)).toBeNaN();
    expect(el.querySelectorAll(".tw-matrix-cell")[2 * R + 1].getAttribute("fill")).toBe("none");
    expect(Number.isFinite(overview.matrix.value(0, 1))).toBe(true);
    expect(Array.from(overview.map.grid!.index.subarray(2 * T))).toEqual(new Array(T).fill(0));
    model.set("layer", 0);
    expect(el.querySelector(".tw-top-note")!.textContent).toMatch(/^first token \(the sink\) left out/);
  });
});

describe("region names", () => {
  it("a region chip scrolls the text to the region's first token", () => {
    const { el, model, heatmap: view } = explorer();
    const box = layOut(el);
    const chips = el.querySelectorAll<HTMLButtonElement>(".tw-heatmap > .tw-legend .tw-pick");
    chips[2].click(); // "user": tokens 5, 6, 7
    expect(model.get("region")).toBe("user");
    expect(view.revealed).toBe(5);
    expect(box.scrollTop).toBe(500 - 50);
    chips[2].click(); // cleared: stays where it is
    expect(model.get("region")).toBe(null);
    expect(box.scrollTop).toBe(450);
    // from the curves' legend too
    el.querySelectorAll<HTMLButtonElement>(".tw-curves .tw-pick")[1].click();
    expect(view.revealed).toBe(1);
    expect(box.scrollTop).toBe(50);
  });
});

describe("the overview toggle", () => {
  it("hides the panels, computes nothing while hidden, and catches up when shown", () => {
    const { el, model } = explorer({ layer: 0 });
    const toggle = el.querySelector<HTMLInputElement>(".tw-overview-toggle")!;
    expect(toggle.checked).toBe(true);
    toggle.checked = false;
    toggle.dispatchEvent(new Event("change"));
    expect(model.get("overview")).toBe(false);
    expect(el.querySelector(".tw-reader")!.classList.contains("tw-overview-off")).toBe(true);
    model.set("layer", 2);
    expect(el.querySelector(".tw-top-panel b")!.textContent).toBe("Most attended at layer 0");
    model.set("overview", true);
    expect(toggle.checked).toBe(true);
    expect(el.querySelector(".tw-top-panel b")!.textContent).toBe("Most attended at layer 2");
    expect(ranked(el)).toEqual(expectedRanking(2, 1, null));
  });

  it("is left out of the snapshot's caption", async () => {
    const { describeControls } = await import("../src/snapshot");
    const { el } = explorer();
    expect(describeControls(el)).not.toContain("overview");
  });
});
