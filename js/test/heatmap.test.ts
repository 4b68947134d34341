// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from "vitest";
import widget, { type HeatmapState, HeatmapView, displayText } from "../src/heatmap";
import { SCHEMA_VERSION } from "../src/wire";
import { FakeModel } from "./fake-model";
import { QUERIES, TOKENS, payload } from "./fixture";

function mount(overrides: Partial<HeatmapState> = {}, data: Record<string, unknown> = payload()) {
  const model = new FakeModel<HeatmapState>({
    payload: data,
    layer: 0,
    query: "final",
    head: null,
    scale: "layer",
    mask_template: false,
    mask_sink: true,
    region: null,
    ...overrides,
  });
  const el = document.createElement("div");
  document.body.appendChild(el);
  const view = new HeatmapView(model, el);
  const cleanup = () => view.destroy();
  const spans = () => Array.from(el.querySelectorAll<HTMLSpanElement>(".tw-tok"));
  const colour = (i: number) => view.colourOf(i);
  return { model, el, cleanup, spans, colour };
}

// jsdom has no canvas; the view then skips painting and keeps its colour state
HTMLCanvasElement.prototype.getContext = (() => null) as any;

afterEach(() => {
  document.body.replaceChildren();
  vi.useRealTimers();
});

describe("token heatmap", () => {
  it("renders one span per token, as text", () => {
    const { el, spans } = mount();
    expect(spans()).toHaveLength(TOKENS.length);
    expect(spans()[6].textContent).toBe(" <img src=x onerror=window.__xss=1>");
    expect(el.querySelector("img")).toBeNull();
    expect(spans()[3].textContent).toBe("\u21b5\n");
    expect(el.querySelector("input[type=range]")?.getAttribute("max")).toBe("2");
  });

  it("colours the most attended token darkest and moves with the layer", () => {
    const { model, colour } = mount();
    // layer l puts its largest weight (after the masked sink) on token 1 + l
    expect(colour(1)).toBe("rgb(128, 0, 38)");
    expect(colour(2)).not.toBe(colour(1));
    model.set("layer", 2);
    expect(colour(3)).toBe("rgb(128, 0, 38)");
    expect(colour(1)).not.toBe("rgb(128, 0, 38)");
  });

  it("the slider sets and saves the layer", () => {
    const { el, model, colour } = mount();
    const slider = el.querySelector<HTMLInputElement>("input[type=range]")!;
    slider.value = "1";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("layer")).toBe(1);
    expect(model.saved.at(-1)).toEqual({ layer: 1 });
    expect(colour(2)).toBe("rgb(128, 0, 38)");
    expect(el.querySelector(".tw-layer-label")?.textContent).toBe("layer 1 / 2");
  });

  it("greys out tokens after the query and marks the query token", () => {
    const { el, spans, colour } = mount();
    const select = el.querySelector<HTMLSelectElement>(".tw-query-select")!;
    expect(Array.from(select.options).map((o) => o.value)).toEqual(QUERIES.map((q) => q.name));
    select.value = "answer";
    select.dispatchEvent(new Event("change"));
    expect(spans()[6].classList.contains("tw-future")).toBe(true);
    expect(spans()[5].classList.contains("tw-query")).toBe(true);
    expect(colour(6)).toBe("rgb(255, 255, 255)");
  });

  it("masks the sink and the template from the scale on request", () => {
    const { model, spans, colour } = mount({ mask_sink: false });
    expect(colour(0)).toBe("rgb(128, 0, 38)"); // the sink dominates
    model.set("mask_template", true);
    for (const i of [0, 3, 4]) expect(spans()[i].classList.contains("tw-masked")).toBe(true);
    expect(colour(0)).toBe("rgb(255, 255, 255)");
    expect(colour(1)).toBe("rgb(128, 0, 38)");
  });

  it("shows one head from the payload, and asks the kernel for missing ones", () => {
    const { el, model, colour } = mount();
    const heads = el.querySelector<HTMLSelectElement>(".tw-head-select")!;
    heads.value = "1";
    heads.dispatchEvent(new Event("change"));
    expect(model.get("head")).toBe(1);
    expect(colour(TOKENS.length - 1)).toBe("rgb(128, 0, 38)"); // head 1 is head 0 reversed: the sink lands last
    model.set("query", "answer");
    expect(model.sent).toEqual([{ v: 1, kind: "head_rows", id: 1, query: 0 }]);
    expect(el.querySelector(".tw-status")?.textContent).toMatch(/Loading the per-head rows of query "answer"/);
  });

  it("explains when no kernel sends missing head rows", () => {
    vi.useFakeTimers();
    const { el } = mount({ query: "answer", head: 0 });
    vi.advanceTimersByTime(5000);
    expect(el.querySelector(".tw-status")?.textContent).toMatch(/not in this page .* showing the head average/);
  });

  it("accepts head rows the kernel sends", () => {
    const { model, colour } = mount({ query: "answer", head: 0 });
    const T = TOKENS.length;
    const rows = new Uint16Array(3 * 2 * 6); // float16 (layer, head, width=6)
    rows[0 * 6 + 4] = 0x3c00; // layer 0, head 0: all weight on token 4
    const reply = { v: 1, kind: "head_rows", id: 1, query: 0, encoding: "float16", rows: { dtype: "float16", shape: [3, 2, 6], buffer: 0 } };
    model.emit("msg:custom", reply, [new DataView(rows.buffer)]);
    expect(colour(4)).toBe("rgb(128, 0, 38)");
    expect(colour(T - 1)).toBe("rgb(255, 255, 255)");
  });

  it("shows the kernel's error at once instead of waiting for the timeout", () => {
    vi.useFakeTimers();
    const { el, model } = mount({ query: "answer", head: 0 });
    expect(model.sent).toEqual([{ v: 1, kind: "head_rows", id: 1, query: 0 }]);
    model.emit("msg:custom", { v: 1, kind: "error", id: 99, request: "head_rows", message: "not ours" });
    expect(el.querySelector(".tw-status")?.textContent).toMatch(/Loading the per-head rows/);
    const message = "WireError: Query row 0 is out of range for 0 queries.";
    model.emit("msg:custom", { v: 1, kind: "error", id: 1, request: "head_rows", message });
    const status = el.querySelector(".tw-status")?.textContent ?? "";
    expect(status).toBe(`The kernel could not send the per-head rows of query "answer": ${message}`);
    vi.advanceTimersByTime(5000); // the timeout no longer overwrites it
    expect(el.querySelector(".tw-status")?.textContent).toBe(status);
  });

  it("ignores messages of another version or another widget", () => {
    const { model, colour } = mount({ query: "answer", head: 0 });
    const before = colour(4);
    const rows = new Uint16Array(3 * 2 * 6);
    rows[4] = 0x3c00;
    const spec = { dtype: "float16", shape: [3, 2, 6], buffer: 0 };
    model.emit("msg:custom", { v: 2, kind: "head_rows", id: 1, query: 0, encoding: "float16", rows: spec }, [new DataView(rows.buffer)]);
    model.emit("msg:custom", { kind: "head_rows", query: 0, encoding: "float16", rows: spec }, [new DataView(rows.buffer)]);
    expect(colour(4)).toBe(before);
  });

  it("shows a tooltip with text, id, index, region, weight and rank", () => {
    const { el, spans } = mount();
    spans()[1].dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    const tip = el.querySelector<HTMLDivElement>(".tw-tip")!;
    expect(tip.style.display).toBe("block");
    const text = tip.textContent!;
    expect(text).toContain('token: "Be"');
    expect(text).toContain("id: 101");
    expect(text).toContain("index: 1");
    expect(text).toContain("region: system");
    expect(text).toMatch(/weight: 0\.\d{4}/);
    expect(text).toContain("rank: 2 of 8");
  });

  it("shows a readable error instead of a blank cell on a schema mismatch", () => {
    const el = document.createElement("div");
    const model = new FakeModel<HeatmapState>({ payload: payload({ schema_version: 99 }) } as HeatmapState);
    widget.render({ model, el });
    const error = el.querySelector(".tw-error");
    expect(error?.textContent).toMatch(new RegExp(`schema 99.*reads schema ${SCHEMA_VERSION}.*Reinstall`));
  });

  it("removes its listeners on cleanup", () => {
    const { model, cleanup } = mount();
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });

  it("plays through the layers and stops at the last", () => {
    vi.useFakeTimers();
    const { el, model } = mount();
    el.querySelector<HTMLButtonElement>(".tw-play")!.click();
    vi.advanceTimersByTime(2000);
    expect(model.get("layer")).toBe(2);
    expect(el.querySelector(".tw-play")?.textContent).toBe("\u25b6");
  });

  it("turns the text light on dark backgrounds only", () => {
    const { spans, colour } = mount();
    const dark = spans().filter((_, i) => colour(i) === "rgb(128, 0, 38)");
    expect(dark.length).toBeGreaterThan(0);
    for (const span of dark) expect(span.style.color).toBe("rgb(255, 255, 255)");
    expect(spans()[5].style.color).toBe("");
    expect(spans().every((s) => s.style.backgroundColor === "")).toBe(true);
  });

  it("marks line breaks and empty tokens but keeps the line break", () => {
    expect(displayText("a\nb")).toBe("a\u21b5\nb");
    expect(displayText("")).toBe("\u2205");
  });
});
