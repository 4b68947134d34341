// @vitest-environment jsdom
// The generation panel on the payload Python writes for golden_generation()
// (tests/helpers/golden.py): a chip per step with the token as text, the
// top-k cells at Python's probabilities with the chosen token outlined, and
// a click on a chip or a row sets the synced query to that step.

import { afterEach, describe, expect, it } from "vitest";
import { GenerationPanel, type GenerationState } from "../src/generation_view";
import { decodeGeneration, stepOf, visible } from "../src/generation_wire";
import { FakeModel } from "./fake-model";
import { fixture } from "./golden";

afterEach(() => document.body.replaceChildren());

function mount() {
  const { payload, expect: want } = fixture("generation_payload");
  const model = new FakeModel<GenerationState>({ generation: payload, query: "step:0" } as unknown as GenerationState);
  const panel = new GenerationPanel(model);
  document.body.appendChild(panel.root);
  return { model, panel, want };
}

describe("generation panel", () => {
  it("decodes Python's steps", () => {
    const { payload, expect: want } = fixture("generation_payload");
    const g = decodeGeneration(payload);
    expect([g.nSteps, g.k, g.promptLength, g.stopReason, g.sampling]).toEqual([3, 3, 6, "max_new_tokens", "greedy"]);
    expect(g.queries).toEqual(["step:0", "step:1", "step:2"]);
    Array.from(g.logprobs).forEach((v, i) => expect(Math.exp(v)).toBeCloseTo(want.probs[i], 6));
    expect(stepOf(g, "step:2")).toBe(2);
    expect(stepOf(g, "final")).toBe(-1);
    expect(() => decodeGeneration({ ...payload, kind: "x" })).toThrow("Expected a generation payload, got x.");
    expect(() => decodeGeneration({ ...payload, tokens: ["a"] })).toThrow("tokens: expected 3 strings");
  });

  it("shows tokens as text, Python's probabilities, and the chosen cell", () => {
    const { panel, want } = mount();
    const chips = [...panel.root.querySelectorAll<HTMLElement>(".tw-gen-chip")];
    expect(chips.map((c) => c.textContent)).toEqual([visible(" <b>x</b>"), visible(" y"), "z"]);
    expect(panel.root.querySelector(".tw-gen-chip b")).toBeNull();
    const cells = [...panel.root.querySelectorAll<HTMLElement>("td.tw-gen-cell")];
    cells.forEach((cell, i) => expect(Number(cell.dataset.value)).toBeCloseTo(want.top_probs[i], 6));
    const chosen = [...panel.root.querySelectorAll<HTMLElement>("td.tw-gen-chosen")];
    // step 1 chose its second most probable token
    expect(chosen.map((c) => cells.indexOf(c))).toEqual([0, 4, 6]);
    expect(chips[0].classList.contains("tw-selected")).toBe(true);
  });

  it("a click on a chip or a row sets the query, and the query marks the step", () => {
    const { model, panel } = mount();
    panel.root.querySelectorAll<HTMLElement>(".tw-gen-chip")[2].click();
    expect(model.get("query")).toBe("step:2");
    expect(model.saved.at(-1)).toEqual({ query: "step:2" });
    panel.root.querySelectorAll<HTMLElement>(".tw-gen-table tbody tr")[1].click();
    expect(model.get("query")).toBe("step:1");
    expect(panel.root.querySelector(".tw-gen-table tr.tw-current")?.getAttribute("data-step")).toBe("1");
    model.set("query", "final"); // a prompt query: no step marked
    expect(panel.root.querySelectorAll(".tw-selected, .tw-current").length).toBe(0);
    panel.destroy();
  });
});
