// @vitest-environment jsdom
// The aggregate view on the payloads Python writes for two RunSets overlaid
// and for one alone (tests/helpers/golden.py): charts, bands, the readout
// and the controls.

import { afterEach, describe, expect, it } from "vitest";
import { type AggregateState, AggregateViewUI } from "../src/aggregate_view";
import { decodeAggregate } from "../src/compare_wire";
import { format } from "../src/curves";
import { FakeModel } from "./fake-model";
import { fixture } from "./golden";

afterEach(() => document.body.replaceChildren());

function mount(name: "aggregate_payload" | "aggregate_single_payload" = "aggregate_payload", overrides: Partial<AggregateState> = {}) {
  const { payload } = fixture(name);
  const model = new FakeModel<AggregateState>({ payload, layer: 1, query: "final", normalize: "raw", band: "interval", hidden: [], ...overrides });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new AggregateViewUI(model, el);
  const readout = () => [...el.querySelectorAll(".tw-aggregate-readout tbody tr")].map((tr) => [...tr.children].map((c) => c.textContent ?? ""));
  return { model, el, view, readout, p: decodeAggregate(payload) };
}

describe("aggregate view", () => {
  it("draws one chart per region with a curve per RunSet, the baseline dashed", () => {
    const { el } = mount();
    const charts = el.querySelectorAll(".tw-region-chart");
    expect(charts).toHaveLength(4);
    const lines = charts[1].querySelectorAll(".tw-line");
    expect(lines).toHaveLength(2);
    expect(lines[0].getAttribute("stroke-dasharray")).toBeTruthy();
    expect(lines[1].getAttribute("stroke-dasharray")).toBeNull();
    expect(el.querySelector(".tw-legend")?.textContent).toContain("baseline");
    expect(el.querySelector(".tw-legend")?.textContent).toContain("(n=3)");
  });

  it("reads RunSet.aggregate's mean, band and sd at the layer cursor", () => {
    const { readout, p } = mount();
    const rows = readout();
    expect(rows).toHaveLength(4 * 2);
    const [region, set, layer, mean, band, sd, n] = rows[2]; // system, baseline
    expect([region, set, layer, n]).toEqual(["system", "baseline", "1", "3"]);
    const q = p.queries.indexOf("final");
    const stat = (name: string) => p.values.get(0, 0, q, 1, 1, p.stats.indexOf(name));
    expect(mean).toBe(format(stat("mean")));
    expect(sd).toBe(format(stat("sd")));
    expect(band).toBe(`[${format(stat("low"))}, ${format(stat("high"))}]`);
  });

  it("switches the band, the normalisation and the layer without a kernel", () => {
    const { model, view, readout, p } = mount();
    const q = p.queries.indexOf("final");
    model.set("band", "range");
    const [low, high] = view.band(0, 1)!;
    expect(low[1]).toBe(p.values.get(0, 0, q, 1, 1, p.stats.indexOf("min")));
    expect(high[1]).toBe(p.values.get(0, 0, q, 1, 1, p.stats.indexOf("max")));
    model.set("band", "none");
    expect(view.band(0, 1)).toBeNull();
    expect(readout()[2][4]).toBe("\u2013");
    model.set("normalize", "share");
    expect(readout()[2][3]).toBe(format(p.values.get(0, 1, q, 1, 1, p.stats.indexOf("mean"))));
    model.set("layer", 2);
    expect(readout()[2][2]).toBe("2");
  });

  it("hides a region's chart and readout rows from its checkbox", () => {
    const { model, el, readout } = mount();
    const boxes = [...el.querySelectorAll<HTMLInputElement>(".tw-visible")];
    boxes[0].checked = false;
    boxes[0].dispatchEvent(new Event("change"));
    expect(model.get("hidden")).toEqual(["template"]);
    expect(el.querySelectorAll<HTMLDivElement>(".tw-region-chart")[0].style.display).toBe("none");
    expect(readout().map((row) => row[0])).not.toContain("template");
  });

  it("draws one RunSet as one chart with a curve per region", () => {
    const { el, readout } = mount("aggregate_single_payload");
    expect(el.querySelectorAll(".tw-region-chart")).toHaveLength(1);
    expect(el.querySelectorAll(".tw-region-chart .tw-line")).toHaveLength(4);
    expect(readout()).toHaveLength(4);
    expect(el.querySelector(".tw-band-select")?.textContent).toContain("90% t interval of the mean");
  });

  it("says what each normalisation leaves out and each set's sink at the layer", () => {
    const { model, el, readout, p } = mount();
    const { expect: want } = fixture("aggregate_payload");
    const line = () => el.querySelector(".tw-sink-line")!.textContent;
    const q = p.queries.indexOf("final");
    const sink = (s: number, layer: number) => want.sink[(s * p.queries.length + q) * p.nLayers + layer];
    expect(p.firstExcluded).toEqual([false, true]); // raw: nothing, share: the first token
    expect(line()).toBe(`raw: nothing excluded \u2014 at layer 1, mean over cases: sink (first token) baseline ${format(sink(0, 1))} \u00b7 terse ${format(sink(1, 1))}, counted in the curves`);
    model.set("normalize", "share");
    expect(line()).toBe(`share: first token excluded \u2014 at layer 1, mean over cases: sink (first token) baseline ${format(sink(0, 1))} \u00b7 terse ${format(sink(1, 1))}, excluded`);
    model.set("layer", 2);
    expect(line()).toContain(`baseline ${format(sink(0, 2))} \u00b7 terse ${format(sink(1, 2))}`);
    // in "share" a parent counts its own tokens: its name says so
    expect(readout().map((row) => row[0])).toContain("user (own)");
    expect([...el.querySelectorAll(".tw-region-title")].map((t) => t.textContent)).toContain("user (own)");
    // the excluded mass is the sink's when only the first token is excluded, 0 when nothing is
    const excluded = (m: number, s: number, layer: number) => want.excluded_mass[((s * 2 + m) * p.queries.length + q) * p.nLayers + layer];
    expect(excluded(1, 1, 2)).toBe(sink(1, 2));
    expect(excluded(0, 1, 2)).toBe(0);
  });
});
