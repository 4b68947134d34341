// @vitest-environment jsdom
// The conversation snapshots view on the payload Python writes for
// golden_snapshots() (tests/helpers/golden.py): the heatmap cells, the role
// averages and the layer charts are Snapshots.message_table, role_means and
// layer_table's numbers for the selection; the controls switch source,
// metric, centring and layer with no kernel; message text is text.

import { afterEach, describe, expect, it } from "vitest";
import { type SnapshotsState, SnapshotsViewUI } from "../src/snapshots_view";
import { type Selection, cell, closest, decodeSnapshots, roleCell, score } from "../src/snapshots_wire";
import { FakeModel } from "./fake-model";
import { fixture } from "./golden";

afterEach(() => document.body.replaceChildren());

function mount(state: Partial<SnapshotsState> = {}) {
  const { payload, expect: want } = fixture("snapshots_payload");
  const model = new FakeModel<SnapshotsState>({ payload, source: "hidden_out", metric: "cosine", center: false, layer: null, ...state });
  const el = document.body.appendChild(document.createElement("div"));
  const view = new SnapshotsViewUI(model, el);
  return { model, el, view, want };
}

function closeTo(got: number[], want: (number | null)[]) {
  expect(got.length).toBe(want.length);
  got.forEach((v, i) => expect(v).toBeCloseTo(want[i] as number, 6));
}

const heat = (el: HTMLElement) => [...el.querySelectorAll<HTMLElement>("td.tw-snap-cell")].map((td) => Number(td.dataset.value));

describe("conversation snapshots", () => {
  it("decodes to Python's tables", () => {
    const { payload, expect: want } = fixture("snapshots_payload");
    const s = decodeSnapshots(payload);
    expect([s.sources, s.metrics, s.roles, s.nLayers]).toEqual([["hidden_out", "attn_out"], ["cosine", "mae", "jaccard"], ["user", "assistant"], 2]);
    const table = (sel: Selection) => [0, 1, 2].flatMap((m) => [0, 1].map((r) => cell(s, sel, m, r)));
    closeTo(table({ source: 0, centred: false, metric: 0, layer: null }), want.raw_cosine_mean);
    closeTo(table({ source: 0, centred: true, metric: 0, layer: null }), want.centred_cosine_mean);
    closeTo(table({ source: 0, centred: true, metric: 1, layer: 1 }), want.centred_mae_layer1);
    closeTo(table({ source: 1, centred: true, metric: 2, layer: null }), want.attn_centred_jaccard_mean);
    const roles = (sel: Selection) => [0, 1].flatMap((role) => [0, 1].map((r) => roleCell(s, sel, role, r)));
    closeTo(roles({ source: 0, centred: false, metric: 0, layer: null }), want.raw_cosine_roles);
    closeTo(roles({ source: 0, centred: true, metric: 0, layer: 0 }), want.centred_cosine_roles_layer0);
    const layers = [0, 1].flatMap((l) => [0, 1].map((r) => score(s, { source: 0, centred: false, metric: 0, layer: null }, 1, r, l)));
    closeTo(layers, want.message1_raw_cosine_layers);
    // MAE: the smaller is closer
    const mae: Selection = { source: 0, centred: true, metric: 1, layer: 1 };
    expect(closest(s, mae, 0)).toBe(0);
    expect(() => decodeSnapshots({ ...payload, kind: "x" })).toThrow("Expected a conversation snapshots payload, got x.");
  });

  it("draws the heatmap of the selection and switches with the controls", () => {
    const { model, el, view, want } = mount();
    closeTo(heat(el), want.raw_cosine_mean);
    expect(el.querySelector(".tw-snap-shown")!.textContent).toContain("Shown: raw cosine of hidden_out, mean over the 2 layers");
    expect(el.querySelector(".tw-snap-note")!.textContent).toContain('choose "centred"');
    const centre = el.querySelector<HTMLSelectElement>(".tw-center-select")!;
    centre.value = "#1";
    centre.dispatchEvent(new Event("change"));
    expect(model.get("center")).toBe(true);
    closeTo(heat(el), want.centred_cosine_mean);
    expect(el.querySelector(".tw-snap-shown")!.textContent).toContain("Shown: centred cosine");
    // the closest reference of each row is framed
    const best = [...el.querySelectorAll(".tw-snap-heat tbody tr")].map((tr) => [...tr.querySelectorAll("td.tw-snap-cell")].findIndex((td) => td.classList.contains("tw-best")));
    const values = want.centred_cosine_mean as number[];
    expect(best).toEqual([0, 1, 2].map((m) => (values[2 * m] >= values[2 * m + 1] ? 0 : 1)));
    model.set("metric", "mae");
    model.set("layer", 1);
    closeTo(heat(el), want.centred_mae_layer1);
    expect(el.querySelector(".tw-snap-shown")!.textContent).toContain("centred MAE (mean |a \u2212 b|) of hidden_out, layer 1");
    model.set("source", "attn_out");
    model.set("metric", "jaccard");
    model.set("layer", null);
    closeTo(heat(el), want.attn_centred_jaccard_mean);
    view.destroy();
    expect(model.listenerCount()).toBe(0);
  });

  it("averages the roles and charts each source and each message", () => {
    const { model, el, view, want } = mount();
    const roleValues = [...el.querySelectorAll<HTMLElement>(".tw-snap-role-table td[data-role]")].map((td) => Number(td.dataset.value));
    // (reference, [user, assistant, assistant - user])
    const roles = want.raw_cosine_roles as number[];
    closeTo(roleValues, [roles[0], roles[2], roles[2] - roles[0], roles[1], roles[3], roles[3] - roles[1]]);
    // a chart per source, one line per reference, its dots the heatmap's values
    expect(el.querySelectorAll(".tw-snap-line-box").length).toBe(2);
    expect(el.querySelectorAll(".tw-snap-line-box polyline").length).toBe(4);
    const dots = [...el.querySelectorAll<SVGElement>(".tw-snap-line-box[data-source='hidden_out'] .tw-snap-dot")];
    const byCell = dots.map((d) => [Number(d.dataset.message), d.dataset.reference === "calm" ? 0 : 1, Number(d.dataset.value)]);
    for (const [m, r, v] of byCell) expect(v).toBeCloseTo(want.raw_cosine_mean[2 * m + r], 6);
    el.querySelector<HTMLElement>(".tw-snap-line-box[data-source='attn_out']")!.click();
    expect(model.get("source")).toBe("attn_out");
    model.set("source", "hidden_out");
    // the per-message layer charts are collapsed, and drawn when opened
    const details = [...el.querySelectorAll<HTMLDetailsElement>("details.tw-snap-detail")];
    expect(details.length).toBe(3);
    expect(details.every((d) => !d.open && !d.querySelector("svg"))).toBe(true);
    details[1].open = true;
    details[1].dispatchEvent(new Event("toggle"));
    const layerDots = [...details[1].querySelectorAll<SVGElement>(".tw-snap-dot")];
    const layers = want.message1_raw_cosine_layers as number[]; // (layer, reference)
    for (const dot of layerDots) {
      const l = Number(dot.dataset.layer);
      const r = dot.dataset.reference === "calm" ? 0 : 1;
      expect(Number(dot.dataset.value)).toBeCloseTo(layers[2 * l + r], 6);
    }
    expect(layerDots.length).toBe(4);
    // a click on a heatmap row opens its message
    el.querySelector<HTMLElement>("tbody tr[data-message='2'] th")!.click();
    expect(details[2].open).toBe(true);
    view.destroy();
  });

  it("shows message text and labels as text", () => {
    const { el, view } = mount();
    const row = el.querySelector("tbody tr[data-message='1'] .tw-snap-preview")!;
    expect(row.textContent).toBe("<b>Good</b> to hear");
    expect(el.querySelector(".tw-snap-heat b")).toBeNull();
    expect(el.querySelector(".tw-snap-heat i")).toBeNull();
    expect([...el.querySelectorAll(".tw-snap-heat thead th")].map((th) => th.textContent)).toEqual(["message", "calm", "<i>rage</i>"]);
    expect(el.querySelector<HTMLElement>("tbody tr[data-message='0'] th")!.title).toBe("I am fine.");
    view.destroy();
  });
});
