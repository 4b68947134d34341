// @vitest-environment jsdom
import { afterEach, describe, expect, it } from "vitest";
import { normalize, rawMasses } from "../src/curves";
import { type ExplorerState, ExplorerView } from "../src/explorer";
import { showToken } from "../src/lens";
import { decodePayload } from "../src/wire";
import { FakeModel } from "./fake-model";
import { N_LAYERS, payload, wire } from "./fixture";

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
  const keep = [true, true, true, true];
  const sizes = [3, 2, 3, 2];

  it("reads the raw masses of one query", () => {
    expect(mass[1 * 4 + 2]).toBeCloseTo(0.6);
    expect(rawMasses(p, 1, null)[0]).toBeCloseTo(1.1);
  });

  it("normalises as Run.curves does", () => {
    const share = normalize(mass, N_LAYERS, sizes, "share", keep);
    expect(share[0] + share[1] + share[2] + share[3]).toBeCloseTo(1);
    expect(share[3]).toBeCloseTo(0.4);
    const perRegion = normalize(mass, N_LAYERS, sizes, "per-region", keep);
    expect([perRegion[0], perRegion[4], perRegion[8]].map((v) => +v.toFixed(3))).toEqual([0, 0.5, 1]);
    const density = normalize(mass, N_LAYERS, [3, 0, 3, 2], "density", keep);
    expect(density[0]).toBeCloseTo(0.1 / 3);
    expect(density[1]).toBeNaN();
  });

  it("shares only among the regions kept", () => {
    const share = normalize(mass, N_LAYERS, sizes, "share", [true, false, false, true]);
    expect(share[0] + share[3]).toBeCloseTo(1);
    expect(share[1]).toBeNaN();
  });

  it("gives 0 for constant regions and empty layers", () => {
    const flat = new Float64Array(N_LAYERS * 4);
    expect(Array.from(normalize(flat, N_LAYERS, sizes, "per-region", keep)).every((v) => v === 0)).toBe(true);
    expect(Array.from(normalize(flat, N_LAYERS, sizes, "share", keep)).every((v) => v === 0)).toBe(true);
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

  it("the normalise selector is synced", () => {
    const { el, model, view } = mount({ query: "answer" }, curvesPayload());
    const select = el.querySelector<HTMLSelectElement>(".tw-normalize-select")!;
    select.value = "share";
    select.dispatchEvent(new Event("change"));
    expect(model.get("normalize")).toBe("share");
    expect(model.saved.at(-1)).toEqual({ normalize: "share" });
    expect(view.curves.value(0, 3)).toBeCloseTo(0.4);
  });

  it("hides a region's curve from its legend chip", () => {
    const { el } = mount({}, curvesPayload());
    const chip = el.querySelectorAll<HTMLButtonElement>(".tw-curves .tw-toggle")[1];
    chip.click();
    expect(chip.classList.contains("tw-off")).toBe(true);
    expect(el.querySelectorAll(".tw-curves polyline")[1].getAttribute("points")).toBe("");
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
