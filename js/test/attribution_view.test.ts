// @vitest-environment jsdom
// The attribution view on the payload Python writes for golden_attribution()
// (tests/helpers/golden.py): the numbers are Python's, each token's shade
// follows the shading and scale picked, token text stays text, and a click
// on a region marks its tokens.

import { afterEach, describe, expect, it } from "vitest";
import { type AttributionState, AttributionViewUI } from "../src/attribution_view";
import { decodeAttribution, firstTokenShare, rankByNorm, regionDepths, shades } from "../src/attribution_wire";
import { DIVERGING_CENTRE } from "../src/colour";
import { FakeModel } from "./fake-model";
import { fixture, values } from "./golden";

afterEach(() => document.body.replaceChildren());

function mount(overrides: Partial<AttributionState> = {}) {
  const { payload, expect: want } = fixture("attribution_payload");
  const model = new FakeModel<AttributionState>({ payload, shading: "grad_norm", scale: "linear", mask_sink: false, region: null, ...overrides });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new AttributionViewUI(model, el);
  const spans = () => [...el.querySelectorAll<HTMLSpanElement>(".tw-attribution-text .tw-tok")];
  return { model, el, view, want, spans };
}

describe("attribution payload", () => {
  it("decodes to Python's numbers", () => {
    const { payload, expect: want } = fixture("attribution_payload");
    const a = decodeAttribution(payload);
    expect(a.tokens).toEqual(want.tokens);
    expect(values(a.gradNorm)).toEqual(want.grad_norm);
    expect(values(a.gradXInput)).toEqual(want.grad_x_input);
    expect(values(a.tokenRegion)).toEqual(want.token_region);
    expect(a.regions.map((r) => r.name)).toEqual(want.regions);
    expect(values(a.regionShare)).toEqual(want.share);
    expect(values(a.regionGradXInput)).toEqual(want.region_grad_x_input);
    expect([a.target, a.loss, a.logProb, a.gated]).toEqual([" Paris", "full_target", -1.25, null]);
    expect(regionDepths(a)).toEqual([0, 0, 0, 1]); // "question" sits in "user"
    expect(firstTokenShare(a)).toBeCloseTo(4 / 9.5, 6);
    expect([rankByNorm(a, 0), rankByNorm(a, 5), rankByNorm(a, 6)]).toEqual([1, 2, 8]);
  });

  it("refuses another payload with the reason", () => {
    const { payload } = fixture("attribution_payload");
    expect(() => decodeAttribution({ ...payload, kind: "ablation" })).toThrow("Expected an attribution payload, got ablation.");
    expect(() => decodeAttribution({ ...payload, schema_version: 1 })).toThrow("Data schema mismatch");
    expect(() => decodeAttribution({ ...payload, tokens: ["a"] })).toThrow("token_region: expected 1 values");
  });

  it("shades linearly from 0, logarithmically from the median, or signed around 0", () => {
    const a = decodeAttribution(fixture("attribution_payload").payload);
    const linear = shades(a, "grad_norm", "linear", false);
    expect([linear.low, linear.high, linear.kind]).toEqual([0, 4, "linear"]);
    expect([linear.indices[0], linear.indices[5], linear.indices[6]]).toEqual([255, Math.round((2.5 / 4) * 255), Math.round((0.125 / 4) * 255)]);
    // the first token left out of the scale: token 5 is its top, the first is clipped there
    const masked = shades(a, "grad_norm", "linear", true);
    expect([masked.high, masked.indices[0], masked.indices[5]]).toEqual([2.5, 255, 255]);
    // log: the floor is the median (0.625) moved to a decade under the max (0.4)
    const log = shades(a, "grad_norm", "log", false);
    expect(log.kind).toBe("log");
    expect(log.low).toBeCloseTo(0.4, 6);
    expect(log.indices[5]).toBe(Math.round((Math.log10(2.5) - Math.log10(0.4)) * 255));
    expect(log.indices[6]).toBe(1); // under the floor: the faintest shade
    const signed = shades(a, "grad_x_input", "linear", false);
    expect([signed.low, signed.high, signed.kind]).toEqual([-1.5, 1.5, "signed"]);
    expect([signed.indices[5], signed.indices[6], signed.indices[1]]).toEqual([254, DIVERGING_CENTRE, Math.round(DIVERGING_CENTRE - (0.5 / 1.5) * DIVERGING_CENTRE)]);
  });
});

describe("attribution view", () => {
  it("shows the target, the tokens as text, and each token's value", () => {
    const { el, spans, want } = mount();
    expect(el.querySelector(".tw-target")!.textContent).toBe('log p(" Paris") = -1.2500');
    expect(spans().map((s) => s.textContent)).toEqual(want.tokens.map((t: string) => t.replace(/\n/g, "\u21b5\n")));
    expect(spans()[5].textContent).toBe(" <b>?</b>");
    expect(el.querySelector(".tw-attribution-text b")).toBeNull();
    expect(spans().map((s) => Number(s.dataset.value))).toEqual(want.grad_norm);
    expect(spans()[0].dataset.shade).toBe("255");
    expect(spans()[0].style.backgroundColor).not.toBe("");
  });

  it("follows the shading, scale and first-token options from Python", () => {
    const { model, spans, el, want } = mount();
    model.set("shading", "grad_x_input");
    expect(spans().map((s) => Number(s.dataset.value))).toEqual(want.grad_x_input);
    expect(spans()[5].dataset.shade).toBe("254");
    expect(el.querySelector<HTMLSelectElement>(".tw-scale-select")!.disabled).toBe(true);
    model.set("shading", "grad_norm");
    model.set("mask_sink", true);
    expect(spans()[5].dataset.shade).toBe("255");
    expect(el.querySelector<HTMLInputElement>(".tw-mask-sink")!.checked).toBe(true);
    expect(el.querySelector(".tw-scale-note")!.textContent).toContain("first token left out of the scale");
  });

  it("lists the regions with Python's shares and marks a region's tokens on a click", () => {
    const { model, el, spans, want } = mount();
    const rows = [...el.querySelectorAll<HTMLTableRowElement>(".tw-region-table tbody tr")];
    expect(rows.map((r) => r.dataset.region)).toEqual(want.regions);
    const shares = rows.map((r) => Number(r.querySelector<HTMLElement>(".tw-share-value")!.dataset.value));
    expect(shares).toEqual(want.share);
    rows[3].click();
    expect(model.get("region")).toBe("question");
    expect(model.saved.at(-1)).toEqual({ region: "question" });
    const inside = spans().flatMap((s, i) => (s.classList.contains("tw-in-region") ? [i] : []));
    expect(inside).toEqual([3, 4]);
    rows[3].click();
    expect(model.get("region")).toBeNull();
  });

  it("sets the shading from its select and leaves no listener behind", () => {
    const { model, el, view } = mount();
    const select = el.querySelector<HTMLSelectElement>(".tw-shading-select")!;
    select.value = "grad_x_input";
    select.dispatchEvent(new Event("change"));
    expect(model.get("shading")).toBe("grad_x_input");
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});
