// @vitest-environment jsdom
// The head gates view on the payload Python writes for golden_head_gates()
// (tests/helpers/golden.py): each cell is Python's gate of its head in the
// phase picked, or its label; the legend counts the labels; the loss curves
// of retention and removal start where the plain fit ended.

import { afterEach, describe, expect, it } from "vitest";
import { type HeadGatesState, HeadGatesViewUI, labelColours } from "../src/head_gates_view";
import { decodeHeadGates, gate, label, labelCounts, phaseStart, totalSteps } from "../src/head_gates_wire";
import { contrast } from "../src/colour";
import { parseColour } from "../src/theme";
import { FakeModel } from "./fake-model";
import { fixture, values } from "./golden";

afterEach(() => document.body.replaceChildren());

function mount(phase: HeadGatesState["phase"] = "label") {
  const { payload, expect: want } = fixture("head_gates_payload");
  const model = new FakeModel<HeadGatesState>({ payload, phase });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new HeadGatesViewUI(model, el);
  const cell = (layer: number, head: number) => el.querySelector<HTMLTableCellElement>(`td.tw-gate[data-layer="${layer}"][data-head="${head}"]`)!;
  return { model, el, view, want, cell };
}

describe("head gates payload", () => {
  it("decodes to Python's gates, labels and losses", () => {
    const { payload, expect: want } = fixture("head_gates_payload");
    const g = decodeHeadGates(payload);
    expect([g.nLayers, g.nHeads, g.phases]).toEqual([3, 2, ["plain", "retention", "removal"]]);
    for (const phase of g.phases) {
      const got = [];
      for (let l = 0; l < 3; l++) for (let h = 0; h < 2; h++) got.push(gate(g, phase, l, h));
      expect(got).toEqual(want.gates[phase]);
    }
    const labels = [];
    for (let l = 0; l < 3; l++) for (let h = 0; h < 2; h++) labels.push(label(g, l, h));
    expect(labels).toEqual(want.labels);
    expect(labelCounts(g)).toEqual([1, 1, 4]);
    g.phases.forEach((phase, p) => expect(values(g.losses[p])).toEqual(want.losses[phase]));
    expect([g.baseLoss, g.strength, g.threshold]).toEqual([2.75, 0.5, 0.5]);
    expect([phaseStart(g, 0), phaseStart(g, 1), phaseStart(g, 2), totalSteps(g)]).toEqual([0, 4, 4, 7]);
  });

  it("refuses another payload with the reason", () => {
    const { payload } = fixture("head_gates_payload");
    expect(() => decodeHeadGates({ ...payload, kind: "ablation" })).toThrow("Expected a head gates payload, got ablation.");
    expect(() => decodeHeadGates({ ...payload, n_layers: 4 })).toThrow("gates: expected (3, 4, 2)");
    expect(() => decodeHeadGates({ ...payload, losses: [] })).toThrow("losses: expected 3 curves, got 0.");
  });

  it("colours the labels so their letters read in either theme", () => {
    for (const theme of [
      { background: [255, 255, 255] as [number, number, number], text: [31, 35, 40] as [number, number, number], dark: false },
      { background: [17, 17, 17] as [number, number, number], text: [255, 255, 255] as [number, number, number], dark: true },
    ]) {
      const colours = labelColours(theme);
      expect(Object.keys(colours)).toEqual(["facilitating", "interfering", "irrelevant"]);
      expect(colours.facilitating.background).not.toBe(colours.interfering.background);
      for (const { background, text } of Object.values(colours)) {
        const ink = parseColour(text) ?? theme.text; // "": the theme's own text colour
        expect(contrast(parseColour(background)!, ink)).toBeGreaterThanOrEqual(4.5);
      }
    }
  });
});

describe("head gates view", () => {
  it("shows the labels as letters, the taxonomy in the legend", () => {
    const { el, cell } = mount();
    expect(el.querySelectorAll("td.tw-gate").length).toBe(6);
    expect([cell(1, 0).textContent, cell(2, 1).textContent, cell(0, 0).textContent]).toEqual(["F", "I", ""]);
    expect(cell(1, 0).dataset.value).toBe("facilitating");
    const chips = [...el.querySelectorAll(".tw-label-chip b")].map((b) => b.textContent);
    expect(chips).toEqual(["facilitating (1)", "interfering (1)", "irrelevant (4)"]);
    expect(el.querySelector(".tw-diff-title")!.textContent).toContain("1 facilitating, 1 interfering, 4 irrelevant");
  });

  it("shows a phase's gates when Python picks it, the phase's loss curve bold", () => {
    const { model, el, cell, want } = mount();
    model.set("phase", "removal");
    expect(Number(cell(1, 0).dataset.value)).toBe(want.gates.removal[2]);
    expect(cell(1, 0).textContent).toBe("");
    expect(cell(1, 0).style.backgroundColor).not.toBe("");
    expect(cell(2, 1).style.backgroundColor).toBe(""); // a gate of 0: the background
    const hot = el.querySelector<SVGPolylineElement>(".tw-loss-line.tw-hot")!;
    expect(hot.dataset.phase).toBe("removal");
    expect(el.querySelectorAll(".tw-loss-line.tw-dim").length).toBe(2);
    model.set("phase", "plain");
    expect(Number(cell(2, 0).dataset.value)).toBe(want.gates.plain[4]);
  });

  it("draws one loss curve per phase, the branches from the plain fit's end", () => {
    const { el } = mount();
    const lines = [...el.querySelectorAll<SVGPolylineElement>(".tw-loss-line")];
    expect(lines.map((l) => l.dataset.phase)).toEqual(["plain", "retention", "removal"]);
    const points = lines.map((l) => l.getAttribute("points")!.split(" ").map((p) => Number(p.split(",")[0])));
    // each branch starts from the plain fit's last point (step 3), then its own steps 4..6
    expect(points.map((p) => p.length)).toEqual([4, 4, 4]);
    expect(points[1][0]).toBe(points[0][3]);
    expect(points[2][0]).toBe(points[0][3]);
    expect(points[1][1]).toBeGreaterThan(points[0][3]);
  });

  it("sets the phase from its select and shows all three gates on hover", () => {
    const { model, el, view, cell } = mount();
    const select = el.querySelector<HTMLSelectElement>(".tw-phase-select")!;
    select.value = "retention";
    select.dispatchEvent(new Event("change"));
    expect(model.get("phase")).toBe("retention");
    cell(2, 1).dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    const tip = el.querySelector(".tw-tip")!.textContent!;
    expect(tip).toContain("layer 2, head 1");
    expect(tip).toContain("plain: 0.375");
    expect(tip).toContain("retention: 0.250");
    expect(tip).toContain("removal: 0.000");
    expect(tip).toContain("label: interfering");
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});
