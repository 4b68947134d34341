// @vitest-environment jsdom
// Click a token to make it the query: the request, the kernel's reply appended
// to the payload (checked against Python's payload of the run with that query),
// the selection, and what the view says without a model or without a kernel.
import { afterEach, describe, expect, it, vi } from "vitest";
import { type ExplorerState, ExplorerView } from "../src/explorer";
import { QUERY_REQUEST_TIMEOUT_MS, notCaptured } from "../src/query_click";
import { appendQuery, decodePayload } from "../src/wire";
import { FakeModel } from "./fake-model";
import { fixture, values } from "./golden";

HTMLCanvasElement.prototype.getContext = (() => null) as any;

afterEach(() => {
  document.body.replaceChildren();
  vi.useRealTimers();
});

function mount(data: unknown = fixture("run_payload").payload) {
  const model = new FakeModel<ExplorerState>({
    payload: data,
    layer: 2,
    query: "final",
    head: null,
    scale: "linear",
    mask_template: false,
    mask_sink: true,
    normalize: "raw",
    region: null,
    hidden: [],
  });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new ExplorerView(model, el);
  const status = () => el.querySelector(".tw-status")?.textContent ?? "";
  const click = (i: number) => el.querySelectorAll<HTMLSpanElement>(".tw-tok")[i].dispatchEvent(new MouseEvent("click", { bubbles: true }));
  return { model, el, view, status, click };
}

/** The golden reply of the kernel (query "pos:4"), answering request `id`. */
function reply(id: number) {
  const { payload } = fixture("query_at_reply");
  return { content: { ...payload.content, id }, buffers: payload.buffers as DataView[] };
}

describe("a clicked token's query from the kernel", () => {
  it("is appended to every per-query array exactly as Python's payload of the run with that query", () => {
    const p = decodePayload(fixture("run_payload").payload);
    const { content, buffers } = reply(9);
    expect(appendQuery(p, content, buffers)).toBe(2);
    const want = fixture("query_at_reply").expect;
    expect(p.queries).toEqual(want.queries);
    expect(p.queryNames).toEqual(["answer", "final", "pos:4"]);
    expect(p.nQueries).toBe(3);
    expect(values(p.attention)).toEqual(want.attention);
    expect(values(p.curves)).toEqual(want.curves);
    expect(values(p.curvesHeads)).toEqual(want.curves_heads);
    expect(values(p.firstToken)).toEqual(want.first_token);
    expect(values(p.firstTokenHeads)).toEqual(want.first_token_heads);
    expect(values(p.lens.topIds)).toEqual(want.top_ids);
    expect(values(p.lens.topProbs)).toEqual(want.top_probs);
    expect(values(p.lens.entropy)).toEqual(want.entropy);
    expect(values(p.lens.klToFinal)).toEqual(want.kl_to_final);
    expect(values(p.lens.trackedRanks)).toEqual(want.tracked_ranks);
    expect(values(p.lens.trackedProbs)).toEqual(want.tracked_probs);
    expect(p.heads[2]?.encoding).toBe(want.head_encoding);
    expect(values(p.heads[2]!.values)).toEqual(want.head_rows);
    // a second copy (another view's request) changes nothing
    expect(appendQuery(p, content, buffers)).toBe(2);
    expect(p.nQueries).toBe(3);
  });

  it("leaves the synced payload as it was sent", () => {
    const raw = fixture("run_payload").payload;
    const p = decodePayload(raw);
    const { content, buffers } = reply(9);
    appendQuery(p, content, buffers);
    expect(raw.queries.map((q: { name: string }) => q.name)).toEqual(["answer", "final"]);
    expect(() => decodePayload(raw)).not.toThrow();
  });

  it("refuses a reply of the wrong shape and changes nothing", () => {
    const p = decodePayload(fixture("run_payload").payload);
    const { content, buffers } = reply(9);
    const broken = { ...content, curves: { ...content.curves, shape: [2, 4] } };
    expect(() => appendQuery(p, broken, [...buffers.slice(0, 2), new DataView(new ArrayBuffer(8 * 4)), ...buffers.slice(3)])).toThrow(
      /query_at.curves: expected 12 values, got 8/,
    );
    expect(p.nQueries).toBe(2);
    expect(p.attention.length).toBe(3 * 2 * 8);
  });
});

describe("clicking a token", () => {
  it("selects a token that is a query already, asking nothing", () => {
    const { model, click } = mount();
    click(6);
    expect(model.get("query")).toBe("answer");
    expect(model.sent).toEqual([]);
  });

  it("asks the kernel for another position, then shows and selects the query it sends", () => {
    const { el, model, view, status, click } = mount();
    click(4);
    expect(model.sent).toEqual([{ v: 1, kind: "query_at", id: 1, pos: 4 }]);
    expect(status()).toBe(
      'Position 4 " so" was not captured; captured queries: answer (@6), final (@7). Asking the kernel to compute it\u2026',
    );
    const { content, buffers } = reply(1);
    model.emit("msg:custom", content, buffers);
    expect(model.get("query")).toBe("pos:4");
    expect(model.saved.at(-1)).toEqual({ query: "pos:4" });
    const options = Array.from(el.querySelectorAll<HTMLOptionElement>(".tw-query-select option"), (o) => o.value);
    expect(options).toEqual(["answer", "final", "pos:4"]);
    expect(el.querySelector<HTMLSelectElement>(".tw-query-select")!.value).toBe("pos:4");
    expect(status()).toBe('Query "pos:4" (position 4) added (one decode step on the kept KV cache, 13 ms).');
    // the query is marked, later tokens greyed, and the lens shows its rows
    const spans = el.querySelectorAll(".tw-tok");
    expect(spans[4].classList.contains("tw-query")).toBe(true);
    expect(spans[5].classList.contains("tw-future")).toBe(true);
    const want = fixture("query_at_reply").expect;
    const lensRows = el.querySelectorAll(".tw-lens tbody tr");
    expect(lensRows).toHaveLength(3);
    expect(view.heatmap.p.lens.topIds[(2 * 3 + 2) * 2]).toBe(want.top_ids[(2 * 3 + 2) * 2]);
    // and a later click on it selects it without asking again
    model.set("query", "final");
    click(4);
    expect(model.get("query")).toBe("pos:4");
    expect(model.sent).toHaveLength(1);
  });

  it("says the position was not captured when the kernel has no model", () => {
    const { model, status, click } = mount();
    click(5);
    const message = "SelectionError: This view has no model to compute position 5 (it was built from a run alone).";
    model.emit("msg:custom", { v: 1, kind: "error", id: 1, request: "query_at", message });
    expect(status()).toBe(
      `Position 5 " <b>?</b>" was not captured; captured queries: answer (@6), final (@7). The kernel could not compute it: ${message}`,
    );
    expect(model.get("query")).toBe("final");
  });

  it("says so in an exported page, where no kernel answers", () => {
    vi.useFakeTimers();
    const { el, status, click } = mount();
    click(5);
    vi.advanceTimersByTime(QUERY_REQUEST_TIMEOUT_MS);
    expect(status()).toBe(
      'Position 5 " <b>?</b>" was not captured; captured queries: answer (@6), final (@7). No kernel answered: ' +
        "this page has only the captured queries (an exported page, or a kernel that is busy or gone).",
    );
    expect(el.querySelector(".tw-status b")).toBeNull(); // token text stays text
  });

  it("only the newest click selects its query", () => {
    const { model, click } = mount();
    click(4);
    click(3);
    expect(model.sent).toEqual([
      { v: 1, kind: "query_at", id: 1, pos: 4 },
      { v: 1, kind: "query_at", id: 2, pos: 3 },
    ]);
    const { content, buffers } = reply(1);
    model.emit("msg:custom", content, buffers);
    expect(model.get("query")).toBe("final"); // appended, not selected
    expect(decodePayload(fixture("run_payload").payload).nQueries).toBe(2);
  });

  it("waits for a running capture to end", () => {
    const data = { ...fixture("run_payload").payload, pending: { done: 1, total: 3 } };
    const { model, status, click } = mount(data);
    click(4);
    expect(model.sent).toEqual([]);
    expect(status()).toMatch(/^Position 4 " so" was not captured; .* The capture is still running: click it again when it ends\.$/);
  });

  it("the tooltip says what a click does", () => {
    const { el } = mount();
    const spans = el.querySelectorAll(".tw-tok");
    spans[4].dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    expect(el.querySelector(".tw-tip")?.textContent).toMatch(/click: make it the query$/);
    spans[7].dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    expect(el.querySelector(".tw-tip")?.textContent).toMatch(/click: select query "final"$/);
  });

  it("names the captured queries", () => {
    const p = decodePayload(fixture("run_payload").payload);
    expect(notCaptured(p, 0)).toBe('Position 0 "<|s|>" was not captured; captured queries: answer (@6), final (@7).');
  });
});
