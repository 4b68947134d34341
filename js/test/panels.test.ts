// @vitest-environment jsdom
import { afterEach, describe, expect, it } from "vitest";
import { CurvesView, type CurvesViewState } from "../src/curves_view";
import { LensView, type LensViewState } from "../src/lens_view";
import { FakeModel } from "./fake-model";
import { N_LAYERS, payload } from "./fixture";

afterEach(() => document.body.replaceChildren());

describe("panels alone", () => {
  it("the curves view has its own query and head selectors", () => {
    const model = new FakeModel<CurvesViewState>({ payload: payload(), layer: 1, query: "final", head: null, normalize: "raw", region: null, hidden: [] });
    const el = document.body.appendChild(document.createElement("div"));
    const view = new CurvesView(model, el);
    expect(el.querySelectorAll(".tw-curves polyline")).toHaveLength(4);
    const query = el.querySelector<HTMLSelectElement>(".tw-query-select")!;
    query.value = "answer";
    query.dispatchEvent(new Event("change"));
    expect(model.get("query")).toBe("answer");
    expect(view.bar.query).toBe(0);
    const head = el.querySelector<HTMLSelectElement>(".tw-head-select")!;
    head.value = "1";
    head.dispatchEvent(new Event("change"));
    expect(model.get("head")).toBe(1);
    el.querySelectorAll<HTMLButtonElement>(".tw-pick")[2].click();
    expect(model.get("region")).toBe("user");
    model.set("layer", 2);
    expect(el.querySelector(".tw-layer-label")!.textContent).toBe("layer 2 / 2");
    view.destroy();
  });

  it("the lens view draws one row per layer and selects a layer on click", () => {
    const model = new FakeModel<LensViewState>({ payload: payload(), layer: 0, query: "final", head: null });
    const el = document.body.appendChild(document.createElement("div"));
    const view = new LensView(model, el);
    const rows = el.querySelectorAll<HTMLTableRowElement>(".tw-lens tbody tr");
    expect(rows).toHaveLength(N_LAYERS);
    rows[2].querySelector("td")!.click();
    expect(model.get("layer")).toBe(2);
    expect(rows[2].classList.contains("tw-current")).toBe(true);
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });
});
