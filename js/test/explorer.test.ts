// @vitest-environment jsdom
import { afterEach, describe, expect, it } from "vitest";
import { firstMasses, format, normalize, rawMasses, regionTree } from "../src/curves";
import { type ExplorerState, ExplorerView } from "../src/explorer";
import { showToken } from "../src/lens";
import { decodePayload } from "../src/wire";
import { FakeModel } from "./fake-model";
import { N_HEADS, N_LAYERS, payload, wire } from "./fixture";

HTMLCanvasElement.prototype.getContext = (() => null) as any;

afterEach(() => document.body.replaceChildren());

function mount(overrides: Partial<ExplorerState> = {}, data = payload()) {
  const model = new FakeModel<ExplorerState>({
    payload: data,
    layer: 1,
    query: "final",
    head: null,
    scale: "linear",
    mask_template: false,
    mask_sink: true,
    normalize: "raw",
    region: null,
    hidden: [],
    ...overrides,
  });
  const el = document.body.appendChild(document.createElement("div"));
  return { model, el, view: new ExplorerView(model, el) };
}

// (layer, query, region) masses: region r at layer l of query q = 0.1 * (l + 1) * (r + 1) + q
function curvesPayload() {
  const R = 4;
  const values = new Float32Array(N_LAYERS * 2 * R);
  for (let l = 0; l < N_LAYERS; l++) for (let q = 0; q < 2; q++) for (let r = 0; r < R; r++) values[(l * 2 + q) * R + r] = 0.1 * (l + 1) * (r + 1) + q;
  return payload({ curves: wire("float32", [N_LAYERS, 2, R], values) });
}

describe("cooking curves", () => {
  const p = decodePayload(curvesPayload());
  const mass = rawMasses(p, 0, null);

  it("reads the raw masses of one query", () => {
    expect(mass[1 * 4 + 2]).toBeCloseTo(0.6);
    expect(rawMasses(p, 1, null)[0]).toBeCloseTo(1.1);
  });
});

describe("explorer", () => {
  it("draws one curve per region and a cursor at the layer", () => {
    const { el, model } = mount({ query: "answer" }, curvesPayload());
    expect(el.querySelectorAll(".tw-curves polyline")).toHaveLength(4);
    const cursor = el.querySelector(".tw-cursor")!;
    const before = cursor.getAttribute("x1");
    model.set("layer", 2);
    expect(cursor.getAttribute("x1")).not.toBe(before);
    expect(el.querySelector(".tw-readout")?.textContent).toMatch(/^layer 2: template 0\.300/);
  });

  it("lays the curves out at the panel's width, keeping the cursor on its layer", () => {
    const { el, model, view } = mount({ query: "answer" }, curvesPayload());
    model.set("layer", 2);
    view.curves.layout(900);
    const chart = el.querySelector(".tw-curves .tw-chart")!;
    expect(chart.getAttribute("viewBox")).toBe(`0 0 900 ${view.curves.size.height}`);
    expect(view.curves.size.height).toBeGreaterThanOrEqual(200);
    expect(Number(el.querySelector(".tw-curves .tw-cursor")!.getAttribute("x1"))).toBeCloseTo(900 - 12); // last layer, right margin
    const last = el.querySelector(".tw-curves polyline")!.getAttribute("points")!.split(" ").at(-1)!;
    expect(Number(last.split(",")[0])).toBeCloseTo(888, 0);
  });

  it("the normalise selector is synced", () => {
    const { el, model, view } = mount({ query: "answer" }, curvesPayload());
    const select = el.querySelector<HTMLSelectElement>(".tw-normalize-select")!;
    select.value = "share";
    select.dispatchEvent(new Event("change"));
    expect(model.get("normalize")).toBe("share");
    expect(model.saved.at(-1)).toEqual({ normalize: "share" });
    // the numbers are curves.ts's normalize (checked against Python in curves.test.ts)
    const p = decodePayload(curvesPayload());
    const want = normalize(rawMasses(p, 0, null), firstMasses(p, 0, null), N_LAYERS, p.regions, regionTree(p.regions), "share");
    for (let r = 0; r < 4; r++) expect(view.curves.value(0, r)).toBeCloseTo(want[r], 12);
    // "user" holds "question": its share is its own tokens, and the legend says so
    const names = Array.from(el.querySelectorAll(".tw-curves .tw-pick"), (b) => b.textContent);
    expect(names).toEqual(["template", "system", "user (own)", "question"]);
    // the first token is left out of "share": its attention at the layer is shown on its own
    expect(el.querySelector<HTMLSelectElement>(".tw-exclude-select")!.selectedOptions[0].textContent).toBe("auto (first token)");
    expect(el.querySelector(".tw-exclusion-note")!.textContent).toBe(`sink ${format(p.firstToken[model.get("layer") * 2])}`);
    select.value = "raw";
    select.dispatchEvent(new Event("change"));
    expect(Array.from(el.querySelectorAll(".tw-curves .tw-pick"), (b) => b.textContent)[2]).toBe("user");
    expect(el.querySelector(".tw-exclusion-note")!.textContent).toMatch(/^sink [0-9.]+, not excluded$/);
  });

  it("hides a region's curve from its legend checkbox, synced as hidden", () => {
    const { el, model } = mount({}, curvesPayload());
    const box = el.querySelectorAll<HTMLInputElement>(".tw-curves .tw-visible")[1];
    box.click();
    expect(model.get("hidden")).toEqual(["system"]);
    expect(model.saved.at(-1)).toEqual({ hidden: ["system"] });
    expect(el.querySelectorAll(".tw-curves .tw-curve-chip")[1].classList.contains("tw-off")).toBe(true);
    expect(el.querySelectorAll(".tw-curves polyline")[1].getAttribute("points")).toBe("");
    model.set("hidden", []); // from Python
    expect(box.checked).toBe(true);
    expect(el.querySelectorAll(".tw-curves polyline")[1].getAttribute("points")).not.toBe("");
  });

  it("a region picked in the curves legend is highlighted in the heatmap", () => {
    const { el, model } = mount({}, curvesPayload());
    el.querySelectorAll<HTMLButtonElement>(".tw-curves .tw-pick")[3].click(); // "question": tokens 5, 6
    expect(model.get("region")).toBe("question");
    expect(el.querySelector(".tw-text")!.classList.contains("tw-region-mode")).toBe(true);
    const inside = Array.from(el.querySelectorAll(".tw-tok"), (s) => s.classList.contains("tw-in-region"));
    expect(inside).toEqual([false, false, false, false, false, true, true, false]);
    const lines = el.querySelectorAll(".tw-curves polyline");
    expect(lines[3].getAttribute("stroke-width")).toBe("3.4");
    expect(lines[0].getAttribute("stroke-opacity")).toBe("0.35");
    // the heatmap's own legend shows the same selection, and clears it
    const chips = el.querySelectorAll<HTMLButtonElement>(".tw-heatmap > .tw-legend .tw-pick");
    expect(chips[3].classList.contains("tw-selected")).toBe(true);
    chips[3].click();
    expect(model.get("region")).toBe(null);
    expect(el.querySelector(".tw-text")!.classList.contains("tw-region-mode")).toBe(false);
  });

  it("fills in streamed layers and shows the progress", () => {
    const data = curvesPayload();
    const T = 8;
    const pending = payload({
      ...data,
      attention: wire("float16", [N_LAYERS, 2, T], new Uint16Array(N_LAYERS * 2 * T)),
      curves: wire("float32", [N_LAYERS, 2, 4], new Float32Array(N_LAYERS * 2 * 4)),
      pending: { done: 0, total: N_LAYERS, follow: false },
    });
    const { el, view } = mount({ query: "answer", layer: 1 }, pending);
    const progress = () => el.querySelector(".tw-progress")!.textContent;
    expect(progress()).toMatch(/computing: layer 0\/3 \(layer 1 not computed yet\)/);
    expect(el.querySelector(".tw-lens-wait")).not.toBeNull();
    expect(el.querySelector<HTMLSelectElement>(".tw-head-select")!.disabled).toBe(true);
    // layer 0 and 1 arrive: 0.1 * (l + 1) * (r + 1) + q as in curvesPayload
    const curves = new Float32Array(2 * 2 * 4);
    for (let l = 0; l < 2; l++) for (let q = 0; q < 2; q++) for (let r = 0; r < 4; r++) curves[(l * 2 + q) * 4 + r] = 0.1 * (l + 1) * (r + 1) + q;
    const rows = new Float32Array(2 * 2 * T).fill(0.125);
    view.receiveLayers(
      {
        v: 1,
        kind: "layers",
        id: 0,
        layers: [0, 1],
        done: 2,
        total: N_LAYERS,
        attention: { dtype: "float32", shape: [2, 2, T], buffer: 0 },
        curves: { dtype: "float32", shape: [2, 2, 4], buffer: 1 },
        curves_heads: { dtype: "float32", shape: [2, N_HEADS, 2, 4], buffer: 2 },
        first_token: { dtype: "float32", shape: [2, 2], buffer: 3 },
        first_token_heads: { dtype: "float32", shape: [2, N_HEADS, 2], buffer: 4 },
      },
      [
        new DataView(rows.buffer),
        new DataView(curves.buffer),
        new DataView(new Float32Array(2 * N_HEADS * 2 * 4).buffer),
        new DataView(Float32Array.from([0.125, 0.125, 0.125, 0.125]).buffer),
        new DataView(new Float32Array(2 * N_HEADS * 2).buffer),
      ],
    );
    expect(progress()).toMatch(/computing: layer 2\/3$/);
    expect(view.curves.value(1, 2)).toBeCloseTo(0.6); // query "answer" is row 0
    expect(Number.isNaN(view.curves.value(2, 2))).toBe(true); // not computed yet
    expect(el.querySelectorAll(".tw-curves polyline")[0].getAttribute("points")!.split(" ")).toHaveLength(2);
    expect(view.heatmap.p.attention[1 * 2 * T + T + 3]).toBeCloseTo(0.125);
  });

  describe("while a capture streams its layers in", () => {
    const T = 8;
    function streaming(follow?: boolean) {
      const pending = payload({
        attention: wire("float16", [N_LAYERS, 2, T], new Uint16Array(N_LAYERS * 2 * T)),
        pending: follow === undefined ? { done: 0, total: N_LAYERS } : { done: 0, total: N_LAYERS, follow },
      });
      const mounted = mount({ layer: 0 }, pending);
      const send = (layers: number[]) => {
        const n = layers.length;
        const rows = new Float32Array(n * 2 * T).fill(0.125);
        mounted.view.receiveLayers(
          {
            v: 1,
            kind: "layers",
            id: layers[0],
            layers,
            done: layers[n - 1] + 1,
            total: N_LAYERS,
            attention: { dtype: "float32", shape: [n, 2, T], buffer: 0 },
            curves: { dtype: "float32", shape: [n, 2, 4], buffer: 1 },
            curves_heads: { dtype: "float32", shape: [n, N_HEADS, 2, 4], buffer: 2 },
            first_token: { dtype: "float32", shape: [n, 2], buffer: 3 },
            first_token_heads: { dtype: "float32", shape: [n, N_HEADS, 2], buffer: 4 },
          },
          [rows, new Float32Array(n * 2 * 4), new Float32Array(n * N_HEADS * 2 * 4), new Float32Array(n * 2), new Float32Array(n * N_HEADS * 2)].map(
            (a) => new DataView(a.buffer),
          ),
        );
      };
      const progress = () => mounted.el.querySelector(".tw-progress")!.textContent!;
      return { ...mounted, send, progress };
    }

    it("shows the newest layer computed", () => {
      const { model, view, send, progress } = streaming();
      expect(view.following).toBe(true);
      expect(progress()).toMatch(/computing: layer 0\/3 \(showing the newest layer\)$/);
      send([0, 1]);
      expect(model.get("layer")).toBe(1);
      expect(model.saved.at(-1)).toEqual({ layer: 1 }); // the kernel hears of it
      expect(progress()).toMatch(/computing: layer 2\/3 \(showing the newest layer\)$/);
      expect(view.curves.root.querySelector(".tw-readout")!.textContent).toMatch(/^layer 1: /);
      send([2]);
      expect(model.get("layer")).toBe(2);
    });

    it("stays where the user moves the slider", () => {
      const { el, model, view, send, progress } = streaming();
      send([0, 1]);
      const slider = el.querySelector<HTMLInputElement>("input[type=range]")!;
      slider.value = "0";
      slider.dispatchEvent(new Event("input"));
      expect(view.following).toBe(false);
      expect(progress()).toMatch(/computing: layer 2\/3$/);
      send([2]);
      expect(model.get("layer")).toBe(0);
    });

    it("stays where a click on the lens, the curves or Python puts it", () => {
      const { model, view, send } = streaming();
      send([0]);
      model.set("layer", 2); // e.g. view.layer = 2 in the kernel, or a click on the chart
      expect(view.following).toBe(false);
      send([1]);
      expect(model.get("layer")).toBe(2);
    });

    it("stays on the layer the caller asked for (follow: false)", () => {
      const { model, view, send, progress } = streaming(false);
      expect(view.following).toBe(false);
      send([0, 1]);
      expect(model.get("layer")).toBe(0);
      expect(progress()).toMatch(/computing: layer 2\/3$/);
    });
  });

  it("lists the lens per layer and follows the layer", () => {
    const { el, model } = mount();
    const rows = el.querySelectorAll<HTMLTableRowElement>(".tw-lens tbody tr");
    expect(rows).toHaveLength(N_LAYERS);
    // fixture: layer 0 of "final" predicts ids [10, 11] -> " Paris", " the"
    expect(rows[0].querySelector(".tw-lens-text")?.textContent).toBe('" Paris"');
    expect(rows[1].classList.contains("tw-current")).toBe(true);
    model.set("layer", 0);
    expect(rows[0].classList.contains("tw-current")).toBe(true);
    expect(rows[1].classList.contains("tw-current")).toBe(false);
    rows[2].querySelector("td")!.click();
    expect(model.get("layer")).toBe(2);
    expect(el.querySelector<HTMLInputElement>("input[type=range]")!.value).toBe("2");
  });

  it("rebuilds the lens when the query changes", () => {
    const { el, model } = mount();
    model.set("query", "answer");
    const first = el.querySelector(".tw-lens tbody tr .tw-lens-text")?.textContent;
    expect(first).toBe('" Paris"');
    expect(el.querySelectorAll(".tw-lens tbody tr.tw-current")).toHaveLength(1);
  });

  it("shows token text visibly", () => {
    expect(showToken("\n", 12)).toBe('"\\n"');
    expect(showToken(undefined, 7)).toBe("<id 7>");
  });

  it("removes every listener on destroy", () => {
    const { model, view } = mount();
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});
