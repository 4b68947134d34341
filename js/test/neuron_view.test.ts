// @vitest-environment jsdom
// The neuron views on the payloads Python writes for golden_neurons() and
// golden_neuron_compare() (tests/helpers/golden.py): the decoded rows,
// scores and cells are Python's; the colour scale is centred at 0 and spans
// -vmax..vmax; the unscored first column is marked; token text is text, never
// markup; hovering a cell shows its value; clicking a row marks its neuron.

import { afterEach, describe, expect, it } from "vitest";
import { DIVERGING_CENTRE, divergingIndex } from "../src/colour";
import { type NeuronState, NeuronViewUI, cellIndices, columnWidth, tokenLabel } from "../src/neuron_view";
import { decodeNeurons, valueAt } from "../src/neuron_wire";
import { FakeModel } from "./fake-model";
import { fixture, values } from "./golden";

afterEach(() => document.body.replaceChildren());

describe("the neurons x tokens payload", () => {
  it("decodes to Python's neurons, scores and values", () => {
    const { payload, expect: want } = fixture("neurons_payload");
    const m = decodeNeurons(payload);
    expect(m.kind).toBe("neurons");
    expect(Array.from(m.neurons)).toEqual(want.neurons);
    expect(values(m.values)).toEqual(want.values);
    expect(values(m.score)).toEqual(want.sd);
    expect(m.columns.map((c) => c.scored)).toEqual(want.scored);
    expect(m.columns.map((c) => c.position)).toEqual([0, 1, 2, 3, 4]);
    expect(m.columns[1].label).toBe("<b>x</b>");
    expect(m.vmax).toBe(want.vmax);
    expect(valueAt(m, 0, 1)).toBe(want.values[1]);
    expect(() => decodeNeurons({ ...payload, kind: "x" })).toThrow("Expected a neurons or neuron comparison payload, got x.");
    expect(() => decodeNeurons({ ...payload, tokens: ["a"] })).toThrow("tokens: expected 5 values, got 1.");
  });

  it("colours cells on a scale centred at 0 from -vmax to vmax", () => {
    const m = decodeNeurons(fixture("neurons_payload").payload);
    const indices = cellIndices(m);
    const at = (r: number, c: number) => indices[r * m.columns.length + c];
    expect(at(0, 0)).toBe(DIVERGING_CENTRE); // 0
    expect(at(0, 1)).toBe(0); // -2 = -vmax, the bluest
    expect(at(0, 2)).toBe(2 * DIVERGING_CENTRE); // +2 = vmax, the reddest
    expect(at(1, 1)).toBe(divergingIndex(0.5, 2));
    expect(at(1, 1)).toBeGreaterThan(DIVERGING_CENTRE);
  });

  it("labels rows and columns as text, marks the unscored column, hovers and marks a neuron", () => {
    const { payload, expect: want } = fixture("neurons_payload");
    const model = new FakeModel<NeuronState>({ payload, neuron: -1 });
    const el = document.body.appendChild(document.createElement("div"));
    const view = new NeuronViewUI(model, el);
    const rows = el.querySelectorAll<HTMLElement>(".tw-neuron-row");
    expect(Array.from(rows, (r) => Number(r.dataset.neuron))).toEqual(want.neurons);
    expect(rows[0].textContent).toContain(`n${want.neurons[0]}`);
    const cols = el.querySelectorAll<HTMLElement>(".tw-neuron-col");
    expect(cols.length).toBe(5);
    expect(cols[1].textContent).toBe("<b>x</b>");
    expect(cols[3].textContent).toBe("\u21b5");
    expect(el.querySelector(".tw-neuron-col b")).toBeNull();
    expect(cols[0].classList.contains("tw-unscored")).toBe(true);
    expect(cols[1].classList.contains("tw-unscored")).toBe(false);
    expect(el.querySelector(".tw-neuron-note")!.textContent).toContain("Position 0");
    expect(el.querySelector(".tw-diff-title")!.textContent).toContain("layer 2 mlp_act");
    expect(el.querySelector(".tw-neuron-legend")!.textContent).toContain("-2.000");
    // hover: the tooltip names the neuron, the token (as text) and the value
    view.hover(0, 1);
    const tip = el.querySelector<HTMLElement>(".tw-tip")!;
    expect(tip.style.display).toBe("block");
    expect(tip.textContent).toContain(`neuron: ${want.neurons[0]}`);
    expect(tip.textContent).toContain('"<b>x</b>" @1');
    expect(tip.textContent).toContain("value: -2");
    view.hover(-1, -1);
    expect(tip.style.display).toBe("none");
    expect(view.colourAt(0, 2)).not.toBe(view.colourAt(0, 1));
    // click a row: its neuron is marked and synced; again: unmarked
    rows[1].click();
    expect(model.get("neuron")).toBe(want.neurons[1]);
    expect(rows[1].classList.contains("tw-selected")).toBe(true);
    expect(el.querySelector<HTMLElement>(".tw-neuron-mark")!.style.display).toBe("block");
    rows[1].click();
    expect(model.get("neuron")).toBe(-1);
    model.set("neuron", want.neurons[2]);
    expect(rows[2].classList.contains("tw-selected")).toBe(true);
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("the neurons x prompts payload", () => {
  it("decodes to Python's means and shows the prompts as columns", () => {
    const { payload, expect: want } = fixture("neuron_compare_payload");
    const m = decodeNeurons(payload);
    expect(m.kind).toBe("neuron_compare");
    expect(Array.from(m.neurons)).toEqual(want.neurons);
    expect(values(m.values)).toEqual(want.means);
    expect(values(m.score)).toEqual(want.spread);
    expect(m.vmax).toBe(want.vmax);
    const model = new FakeModel<NeuronState>({ payload, neuron: -1 });
    const el = document.body.appendChild(document.createElement("div"));
    const view = new NeuronViewUI(model, el);
    const cols = el.querySelectorAll<HTMLElement>(".tw-neuron-col");
    expect(Array.from(cols, (c) => c.textContent)).toEqual(["baseline", "<b>terse</b>", "long"]);
    expect(el.querySelector(".tw-neuron-col b")).toBeNull();
    view.hover(1, 2);
    const tip = el.querySelector<HTMLElement>(".tw-tip")!.textContent!;
    expect(tip).toContain("prompt: long");
    expect(tip).toContain("over 9 positions");
    expect(view.cellWidth).toBe(columnWidth(3, true));
    view.destroy();
  });
});

describe("helpers", () => {
  it("shows white space and empty tokens visibly", () => {
    expect(tokenLabel(" a\tb\n")).toBe("\u00b7a\u21e5b\u21b5");
    expect(tokenLabel("")).toBe("\u2205");
  });

  it("keeps columns hoverable and a long prompt a few screens wide", () => {
    expect(columnWidth(10, false)).toBe(16);
    expect(columnWidth(2000, false)).toBe(3);
    expect(columnWidth(2, true)).toBe(64);
  });
});
