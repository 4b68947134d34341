// @vitest-environment jsdom
// The ablation view on the payload Python writes for golden_ablation()
// (tests/helpers/golden.py), with the golden run as the base run and as every
// condition's run: the table's cells are the payload's numbers, token text
// stays text, the columns sort, a row opens the explorer of its run (from
// synced state, or from the kernel's `detail`), and the knockout panel reads
// each region's mass beside its effect.

import { afterEach, describe, expect, it } from "vitest";
import { type AblationState, AblationViewUI, BASELINE, RunModel } from "../src/ablation_view";
import { type Ablation, changeScale, decodeAblation, rowOrder, signed } from "../src/ablation_wire";
import { format } from "../src/curves";
import { FakeModel } from "./fake-model";
import { fixture } from "./golden";

HTMLCanvasElement.prototype.getContext = (() => null) as any;

afterEach(() => document.body.replaceChildren());

const NAMES = ["head L1H0", "values t-1", "question", "no system"];

function mount(overrides: Partial<AblationState> = {}) {
  const { payload: ablation, expect: want } = fixture("ablation_payload");
  const run = fixture("run_payload").payload;
  const model = new FakeModel<AblationState>({
    payload: run,
    ablation,
    runs: [run, run, null, run], // the third was over the budget
    detail: null,
    selected: null,
    sort: "",
    descending: false,
    changes: 3,
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
  const view = new AblationViewUI(model, el);
  const order = () => [...el.querySelectorAll<HTMLTableRowElement>(".tw-ablation-table tbody tr")].map((tr) => tr.dataset.condition);
  const row = (name: string) => el.querySelector<HTMLTableRowElement>(`.tw-ablation-table tr[data-condition="${name}"]`)!;
  const header = (key: string) => el.querySelector<HTMLTableCellElement>(`.tw-ablation-table th[data-sort="${key}"]`)!;
  return { model, el, view, want, run, order, row, header };
}

describe("ablation payload", () => {
  it("decodes to Python's table", () => {
    const { payload, expect: want } = fixture("ablation_payload");
    const a = decodeAblation(payload);
    expect(a.conditions.map((c) => c.name)).toEqual(want.names);
    expect(Array.from(a.predicted)).toEqual(want.predicted);
    expect(Array.from(a.deltaLogprob)).toEqual(want.delta_logprob);
    expect(Array.from(a.kl)).toEqual(want.kl);
    expect(Array.from(a.rose)).toEqual(want.rose);
    expect(Array.from(a.roseDelta)).toEqual(want.rose_delta);
    expect(a.conditions.map((c) => Array.from(c.positions))).toEqual(want.positions);
    expect(a.conditions.map((c) => c.knockout)).toEqual([null, null, "question", "system"]);
    expect(a.vocab.get(5)).toBe("<b>?</b>");
    expect(a.runs).toEqual([true, true, false, true]);
  });

  it("refuses another payload with the reason", () => {
    const { payload } = fixture("ablation_payload");
    expect(() => decodeAblation({ ...payload, kind: "aggregate" })).toThrow("Expected an ablation payload, got aggregate.");
    expect(() => decodeAblation({ ...payload, schema_version: 1 })).toThrow("Data schema mismatch");
    expect(() => decodeAblation({ ...payload, runs: [true] })).toThrow("runs: expected 4 flags, got 1.");
  });

  it("orders rows by a column, ties in the given order, NaN last either way", () => {
    const a = decodeAblation(fixture("ablation_payload").payload);
    expect(rowOrder(a, "", false)).toEqual([0, 1, 2, 3]);
    expect(rowOrder(a, "kl", true)).toEqual([2, 0, 1, 3]);
    expect(rowOrder(a, "delta_logprob", false)).toEqual([2, 0, 3, 1]);
    expect(rowOrder(a, "condition", false)).toEqual([0, 3, 2, 1]);
    expect(rowOrder(a, "rose", true)).toEqual([0, 1, 2, 3]); // 3.5, then three ties at 0.5
    const nan: Ablation = { ...a, kl: Float32Array.from([0.2, NaN, 0.1, 0.3]) };
    expect(rowOrder(nan, "kl", true)).toEqual([3, 0, 2, 1]);
    expect(rowOrder(nan, "kl", false)).toEqual([2, 0, 3, 1]);
  });

  it("prints signed numbers with a real minus sign", () => {
    expect(signed(1.2344)).toBe("+1.234");
    expect(signed(-0.5)).toBe("\u22120.500");
    expect(signed(0)).toBe("0.000");
    expect(signed(-0.0004)).toBe("\u22124.0e-4");
    expect(signed(NaN)).toBe("\u2013");
  });
});

describe("ablation view", () => {
  it("shows one row per condition under the baseline, with the payload's numbers", () => {
    const { el, want, order, row } = mount();
    expect(order()).toEqual([BASELINE, ...NAMES]);
    NAMES.forEach((name, c) => {
      const tr = row(name);
      expect(Number(tr.querySelector<HTMLElement>(".tw-dlogp")!.dataset.value)).toBe(want.delta_logprob[c]);
      expect(Number(tr.querySelector<HTMLElement>(".tw-kl")!.dataset.value)).toBe(want.kl[c]);
      expect(tr.querySelector(".tw-prob")!.textContent).toBe(format(want.predicted_prob[c]));
      const rose = [...tr.querySelectorAll<HTMLElement>("td.tw-rose")];
      const fell = [...tr.querySelectorAll<HTMLElement>("td.tw-fell")];
      expect(rose).toHaveLength(3);
      expect(fell).toHaveLength(3);
      expect(rose.map((td) => Number(td.dataset.value))).toEqual(want.rose_delta.slice(4 * c, 4 * c + 3));
      expect(fell.map((td) => Number(td.dataset.value))).toEqual(want.fell_delta.slice(4 * c, 4 * c + 3));
      expect(rose.map((td) => Number(td.dataset.token))).toEqual(want.rose.slice(4 * c, 4 * c + 3));
      expect(rose[0].querySelector(".tw-change-value")!.textContent).toBe(signed(want.rose_delta[4 * c]));
    });
    // the prediction that changed is marked
    expect(row("question").querySelector(".tw-pred")!.classList.contains("tw-changed")).toBe(true);
    expect(row("values t-1").querySelector(".tw-pred")!.classList.contains("tw-changed")).toBe(false);
    expect(el.querySelector(".tw-diff-title")!.textContent).toContain('the baseline predicts " t7"');
  });

  it("colours each change cell on one diverging scale, the largest change at the palette's end", () => {
    const { el, view } = mount();
    const cells = [...el.querySelectorAll<HTMLElement>("td.tw-change")];
    expect(changeScale(view.a, 3)).toBe(3.5);
    const top = cells.find((td) => td.dataset.value === "3.5")!;
    expect(top.style.backgroundColor).toBe("rgb(178, 24, 43)"); // the light palette's red end
    const small = cells.find((td) => Number(td.dataset.value) === -0.25)!;
    expect(small.style.backgroundColor).not.toBe(top.style.backgroundColor);
  });

  it("shows token text as text, never as markup", () => {
    const { el, row } = mount();
    const cell = row("head L1H0").querySelector("td.tw-rose .tw-change-token")!;
    expect(cell.textContent).toBe('"<b>?</b>"');
    expect(row("head L1H0").querySelector(".tw-pred")!.textContent).toBe('"<b>?</b>"');
    expect(el.querySelectorAll(".tw-ablation-table b, .tw-strip b")).toHaveLength(0);
    // the prompt's own markup token stays text in the strip
    expect([...el.querySelectorAll(".tw-strip .tw-tok")].map((s) => s.textContent)).toContain(" <b>?</b>");
  });

  it("sorts by a clicked column, the interesting end first, and back by #", () => {
    const { model, order, header } = mount();
    header("kl").click();
    expect([model.get("sort"), model.get("descending")]).toEqual(["kl", true]);
    expect(order()).toEqual([BASELINE, "question", "head L1H0", "values t-1", "no system"]);
    expect(header("kl").getAttribute("aria-sort")).toBe("descending");
    header("kl").click();
    expect(model.get("descending")).toBe(false);
    expect(order()).toEqual([BASELINE, "no system", "values t-1", "head L1H0", "question"]);
    header("delta_logprob").click(); // the deepest drop first
    expect(order()).toEqual([BASELINE, "question", "head L1H0", "no system", "values t-1"]);
    header("condition").click();
    expect(order()).toEqual([BASELINE, "head L1H0", "no system", "question", "values t-1"]);
    header("").click();
    expect(order()).toEqual([BASELINE, ...NAMES]);
    // Python setting the order
    model.set("sort", "kl");
    model.set("descending", true);
    expect(order()[1]).toBe("question");
  });

  it("shows as many change cells as `changes` asks", () => {
    const { model, el, row } = mount();
    model.set("changes", 4);
    expect(row("question").querySelectorAll("td.tw-change")).toHaveLength(8);
    expect(el.querySelector<HTMLSelectElement>(".tw-changes-select")!.value).toBe("#2"); // choices 1, 3, 4
  });

  it("opens the explorer of a row's run, sharing the view's selection, and closes it", () => {
    const { model, el, view, row } = mount();
    const box = el.querySelector<HTMLElement>(".tw-ablation-explorer")!;
    expect(box.style.display).toBe("none");
    row("head L1H0").click();
    expect(model.get("selected")).toBe("head L1H0");
    expect(box.style.display).toBe("");
    expect(view.explorer).not.toBeNull();
    expect(box.querySelector(".tw-explorer-title")!.textContent).toContain('the run under "head L1H0"');
    expect(row("head L1H0").classList.contains("tw-current")).toBe(true);
    // the explorer moves the view's layer
    (box.querySelectorAll(".tw-lens tbody tr")[0] as HTMLElement).click();
    expect(model.get("layer")).toBe(0);
    row("head L1H0").click(); // again: closed
    expect(model.get("selected")).toBeNull();
    expect(view.explorer).toBeNull();
    expect(box.style.display).toBe("none");
    row(BASELINE).click();
    expect(box.querySelector(".tw-explorer-title")!.textContent).toBe(" the unablated run");
    box.querySelector<HTMLButtonElement>(".tw-close")!.click();
    expect(model.get("selected")).toBeNull();
  });

  it("says a run over the budget is not in the page, and opens it when the kernel sends it", () => {
    const { model, el, view, run, row } = mount();
    row("question").click();
    expect(view.explorer).toBeNull();
    const note = el.querySelector(".tw-not-embedded")!.textContent!;
    expect(note).toContain('The run of "question" is not in this page');
    expect(note).toContain('tw.Explorer(ablation.runs["question"])');
    model.set("detail", { condition: 2, payload: run });
    expect(view.explorer).not.toBeNull();
    expect(el.querySelector(".tw-not-embedded")).toBeNull();
  });

  it("asks the kernel for a condition's per-head rows and takes only its replies", () => {
    const { model } = mount();
    const sub = new RunModel(model, {}, 2);
    sub.send({ v: 1, kind: "head_rows", id: 1, query: 0 });
    expect(model.sent.at(-1)).toEqual({ v: 1, kind: "head_rows", id: 1, query: 0, run: 2 });
    const got: unknown[] = [];
    const listener = (content: unknown) => got.push(content);
    sub.on("msg:custom", listener);
    model.emit("msg:custom", { v: 1, kind: "head_rows", id: 1, query: 0, run: 0 });
    model.emit("msg:custom", { v: 1, kind: "head_rows", id: 1, query: 0, run: 2 });
    model.emit("msg:custom", { v: 1, kind: "error", id: 1, request: "head_rows", message: "x" });
    expect(got.map((m: any) => m.run ?? m.kind)).toEqual([2, "error"]);
    const before = model.listenerCount();
    sub.off("msg:custom", listener);
    expect(model.listenerCount()).toBe(before - 1);
    expect(sub.get("payload")).toEqual({});
    expect(sub.get("layer")).toBe(model.get("layer"));
    new RunModel(model, {}, null).send({ kind: "head_rows" });
    expect(model.sent.at(-1)).toEqual({ kind: "head_rows" }); // the baseline: no run
  });

  it("marks t, t-1 and the positions a condition touches in the strip", () => {
    const { el, row } = mount();
    const tokens = [...el.querySelectorAll<HTMLElement>(".tw-strip .tw-tok")];
    expect(tokens.findIndex((s) => s.classList.contains("tw-t"))).toBe(7);
    expect(tokens.findIndex((s) => s.classList.contains("tw-t1"))).toBe(6);
    row("question").dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    expect(tokens.flatMap((s, i) => (s.classList.contains("tw-touched") ? [i] : []))).toEqual([3, 4]);
    el.querySelector(".tw-ablation-table tbody")!.dispatchEvent(new MouseEvent("mouseleave"));
    expect(el.querySelectorAll(".tw-touched")).toHaveLength(0);
  });

  it("puts each knocked-out region's attention beside its effect", () => {
    const { model, el, view, want } = mount();
    const rows = [...el.querySelectorAll<HTMLTableRowElement>(".tw-knockout-table tbody tr")];
    expect(rows.map((tr) => tr.querySelector(".tw-ko-region")!.textContent)).toEqual(["question", "no systemknock out system (values)"]);
    expect(Number(rows[0].querySelector<HTMLElement>(".tw-ko-effect-value")!.dataset.value)).toBe(want.delta_logprob[2]);
    expect(rows[0].querySelector(".tw-ko-top")!.textContent).toBe('\u2192 " t9"');
    expect(rows[1].querySelector(".tw-ko-top")!.textContent).toBe("same");
    const regions = view.p.regions.map((r) => r.name);
    const mass = () => Number(rows[0].querySelector<HTMLElement>(".tw-ko-mass-value")!.dataset.value);
    expect(mass()).toBe(view.curves!.value(1, regions.indexOf("question")));
    model.set("layer", 2);
    expect(mass()).toBe(view.curves!.value(2, regions.indexOf("question")));
    expect(el.querySelector(".tw-knockout-table th:nth-child(2)")!.textContent).toBe("attention (raw), layer 2");
    model.set("normalize", "share");
    expect(mass()).toBe(view.curves!.value(2, regions.indexOf("question")));
    rows[0].click();
    expect(model.get("selected")).toBe("question");
  });

  it("cleans up its listeners", () => {
    const { model, view } = mount();
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});
