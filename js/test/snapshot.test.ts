// @vitest-environment jsdom
// "Save as PNG": what jsdom can check (it lays nothing out and has no canvas).
// The button is in every view's controls; a click paints the view onto a
// canvas and hands a PNG named after the selection to the browser, or says on
// the button why it could not; SVG charts travel with their styles; text is
// grouped into runs per line. The real drawing is checked in Chromium
// (tests/browser/test_download_browser.py).

import { afterEach, describe, expect, it, vi } from "vitest";
import { type AggregateState, AggregateViewUI } from "../src/aggregate_view";
import { CurvesView, type CurvesViewState } from "../src/curves_view";
import { type ExplorerState, ExplorerView } from "../src/explorer";
import { type HeatmapState, HeatmapView } from "../src/heatmap";
import { LensView, type LensViewState } from "../src/lens_view";
import { describeControls, serializeSvg, snapshotName, textRuns } from "../src/snapshot";
import { type DiffState, VariantDiffView } from "../src/variant_diff";
import { FakeModel } from "./fake-model";
import { payload } from "./fixture";
import { fixture } from "./golden";

const realGetContext = HTMLCanvasElement.prototype.getContext;

afterEach(() => {
  document.body.replaceChildren();
  document.head.replaceChildren();
  HTMLCanvasElement.prototype.getContext = realGetContext;
  vi.restoreAllMocks();
});

function host(): HTMLElement {
  return document.body.appendChild(document.createElement("div"));
}

const selection = { layer: 1, query: "final", head: null };
const heatmapState: HeatmapState = { payload: payload(), ...selection, scale: "linear", mask_template: false, mask_sink: true, region: null };

function heatmap(): HeatmapView {
  HTMLCanvasElement.prototype.getContext = (() => null) as any; // the backdrop paints nothing
  return new HeatmapView(new FakeModel<HeatmapState>({ ...heatmapState }), host());
}

const VIEWS: Record<string, () => { root: HTMLElement }> = {
  heatmap,
  explorer: () => {
    HTMLCanvasElement.prototype.getContext = (() => null) as any;
    const model = new FakeModel<ExplorerState>({ ...heatmapState, normalize: "raw", hidden: [] });
    return new ExplorerView(model, host()).heatmap;
  },
  curves: () => new CurvesView(new FakeModel<CurvesViewState>({ payload: payload(), ...selection, normalize: "raw", region: null, hidden: [] }), host()),
  lens: () => new LensView(new FakeModel<LensViewState>({ payload: payload(), ...selection }), host()),
  diff: () => {
    const state: DiffState = { payload: fixture("diff_payload").payload, layer: 1, query: "final", variant: "terse", case: 0, hidden: [], scale: "linear", token_colour: "delta", mask_sink: true };
    return new VariantDiffView(new FakeModel<DiffState>(state), host());
  },
  aggregate: () => {
    const state: AggregateState = { payload: fixture("aggregate_payload").payload, layer: 1, query: "final", normalize: "raw", band: "interval", hidden: [] };
    return new AggregateViewUI(new FakeModel<AggregateState>(state), host());
  },
};

describe("save as PNG", () => {
  it.each(Object.keys(VIEWS))("the %s view has one PNG button, in its controls", (name) => {
    const view = VIEWS[name]();
    const buttons = view.root.querySelectorAll(".tw-download");
    expect(buttons).toHaveLength(1);
    expect(buttons[0].closest(".tw-controls")).not.toBeNull();
    expect((buttons[0] as HTMLButtonElement).type).toBe("button");
  });

  it("names the file after the view and its selection", () => {
    const view = heatmap();
    const caption = describeControls(view.root);
    expect(caption).toBe('layer 1 / 2 \u00b7 query final @7 "?" \u00b7 head average \u00b7 scale linear, all layers \u00b7 mask first token');
    expect(snapshotName("heatmap", caption)).toBe("tealeaves-heatmap-layer-1-2-query-final-7-head-average-scale-linear-all-layers-mask-first-token.png");
    expect(snapshotName("lens", "")).toBe("tealeaves-lens.png");
  });

  it("a click paints the view and downloads a PNG with the selection in its name", async () => {
    const view = heatmap();
    const drawn: string[] = [];
    const context = new Proxy({} as Record<string, unknown>, {
      get: (target, key) => {
        if (key === "measureText") return (text: string) => ({ width: 7 * text.length, fontBoundingBoxAscent: 10 });
        if (key === "fillText") return (text: string) => drawn.push(text);
        if (key in target) return target[key as string];
        return () => {};
      },
      set: (target, key, value) => {
        target[key as string] = value;
        return true;
      },
    });
    HTMLCanvasElement.prototype.getContext = (() => context) as any;
    HTMLCanvasElement.prototype.toBlob = function (callback: BlobCallback) {
      callback(new Blob([new Uint8Array([137, 80, 78, 71])], { type: "image/png" }));
    };
    const created = vi.fn(() => "blob:png");
    URL.createObjectURL = created;
    URL.revokeObjectURL = () => {};
    const clicked: HTMLAnchorElement[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this);
    });
    const text = view.root.querySelector<HTMLElement>(".tw-text")!;
    text.style.maxHeight = "300px";
    view.root.querySelector<HTMLButtonElement>(".tw-download")!.click();
    await vi.waitFor(() => expect(clicked).toHaveLength(1));
    expect(clicked[0].download).toBe("tealeaves-heatmap-layer-1-2-query-final-7-head-average-scale-linear-all-layers-mask-first-token.png");
    expect(clicked[0].href).toBe("blob:png");
    expect(created.mock.calls[0]).toHaveLength(1);
    expect(drawn[0]).toContain("layer 1 / 2"); // the caption line
    // the view is as it was: the box scrolls again, the controls are back
    expect(text.style.maxHeight).toBe("300px");
    expect(view.root.querySelector<HTMLElement>(".tw-controls")!.style.display).toBe("");
    expect(view.root.querySelector(".tw-download")!.textContent).toBe("\u2913 PNG");
  });

  it("says on the button why it could not save", async () => {
    const view = heatmap(); // jsdom: no 2D canvas
    const button = view.root.querySelector<HTMLButtonElement>(".tw-download")!;
    button.click();
    await vi.waitFor(() => expect(button.textContent).toBe("\u2913 PNG failed"));
    expect(button.title).toContain("no 2D canvas");
    expect(button.disabled).toBe(false);
  });

  it("serialises an SVG chart with the page's styles inlined", () => {
    document.head.innerHTML = "<style>.tw-tick { fill: #666; font-size: 10px }</style>";
    const view = VIEWS.curves();
    const chart = view.root.querySelector<SVGSVGElement>("svg.tw-chart")!;
    const xml = serializeSvg(chart);
    expect(xml.startsWith("<svg")).toBe(true);
    expect(xml).toContain('xmlns="http://www.w3.org/2000/svg"');
    // the computed style travels with the element (the widget's own rule wins over the page's)
    expect(xml).toMatch(/<text[^>]*class="tw-tick"[^>]*style="[^"]*fill:\s*[^;"]+;[^"]*font-size:\s*10px/);
    expect(xml.match(/xmlns=/g)).toHaveLength(1);
    const parsed = new DOMParser().parseFromString(xml, "image/svg+xml");
    expect(parsed.querySelector("parsererror")).toBeNull();
    expect(parsed.querySelectorAll("polyline")).toHaveLength(chart.querySelectorAll("polyline").length);
  });

  it("groups characters into runs, one per line", () => {
    const glyphs = [..."ab"].map((text, i) => ({ text, left: 10 + 7 * i, top: 5, width: 7 }));
    glyphs.push({ text: "c", left: 0, top: 30, width: 7 }); // wrapped to the next line
    glyphs.push({ text: "d", left: 20, top: 30, width: 7 }); // a gap: a new run
    expect(textRuns(glyphs)).toEqual([
      { text: "ab", left: 10, top: 5 },
      { text: "c", left: 0, top: 30 },
      { text: "d", left: 20, top: 30 },
    ]);
  });
});
