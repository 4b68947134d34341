// Aggregate view: cooking curves of a RunSet as the mean over its cases with a
// band (interval of the mean, +-1 sd, or min..max), or of several RunSets
// overlaid, one small chart per region: the first set is the baseline, drawn
// dashed grey, the others solid, as the variant diff draws its variants. Values are RunSet.aggregate's, for
// every query and normalisation, so switching needs no kernel. A line over the
// charts says what the normalisation leaves out (the first token in "share" by
// default) and each set's sink (first-token attention) at the layer; a table
// under the charts reads the values at the layer cursor.

import { BandChart, type Series, variantChip, variantColour } from "./bands";
import { type AggregatePayload, aggregateCurve, decodeAggregate } from "./compare_wire";
import { LayerSlider, ModelSelect } from "./controls";
import { format } from "./curves";
import { Listeners } from "./listeners";
import { type AnyModel, type RenderProps, h, mount, queryIndex } from "./model";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";

export type Band = "interval" | "sd" | "range" | "none";

export interface AggregateState {
  payload: unknown;
  layer: number;
  query: string;
  normalize: string;
  band: Band;
  hidden: string[];
}

export class AggregateViewUI {
  readonly root: HTMLDivElement;
  readonly p: AggregatePayload;
  private slider: LayerSlider;
  private selects: { destroy(): void }[] = [];
  private charts: BandChart[] = [];
  private chartBoxes: HTMLDivElement[] = [];
  private regionBoxes: HTMLInputElement[] = [];
  private titles: Text[] = [];
  private sinkLine!: HTMLDivElement;
  private readoutBody!: HTMLTableSectionElement;
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<AggregateState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    const p = (this.p = decodeAggregate(model.get("payload")));
    this.root = h("div", "tw-root tw-aggregate-view");
    addStyle(this.root);
    const sets = p.sets.map((s) => `${s.name}: ${s.runs} runs of ${s.cases} cases`).join(" \u00b7 ");
    this.root.appendChild(h("div", "tw-diff-title", `Cooking curves over cases \u2014 ${sets} \u2014 ${p.modelId}`));
    const bar = this.root.appendChild(h("div", "tw-controls"));
    this.slider = new LayerSlider(model, p.nLayers);
    bar.appendChild(this.slider.root);
    const add = <K extends keyof AggregateState>(key: K, label: string, className: string, choices: [AggregateState[K], string][]) => {
      const select = new ModelSelect(model, key, label, className, choices);
      bar.appendChild(select.root);
      this.selects.push(select);
    };
    add("query", "query", "tw-query-select", p.queries.map((q) => [q, q]));
    add("normalize", "normalise", "tw-normalize-select", p.normalizations.map((n) => [n, n]));
    const level = `${Math.round(p.level * 100)}% ${p.interval} interval of the mean`;
    add("band", "band", "tw-band-select", [
      ["interval", level],
      ["sd", "mean \u00b1 1 sd across cases"],
      ["range", "min\u2013max across cases"],
      ["none", "none"],
    ]);
    bar.appendChild(downloadButton(this.root, "aggregate"));
    this.buildLegend();
    this.sinkLine = this.root.appendChild(h("div", "tw-sink-line"));
    this.sinkLine.title =
      "The attention on the first token (the attention sink) and on the excluded tokens at this layer, mean over cases, a fraction of the whole row (RunSet.excluded_mass); the curves are fractions of the rest";
    const grid = this.root.appendChild(h("div", this.single ? "tw-chart-grid tw-single" : "tw-chart-grid"));
    if (this.single) {
      const box = grid.appendChild(h("div", "tw-region-chart"));
      const chart = new BandChart(p.nLayers, { width: 520, height: 260 }, (layer) => this.setLayer(layer));
      box.appendChild(chart.root);
      this.charts.push(chart);
    } else {
      for (const region of p.regions) {
        const box = grid.appendChild(h("div", "tw-region-chart"));
        const title = box.appendChild(h("div", "tw-region-title"));
        title.appendChild(h("span", "tw-swatch")).style.backgroundColor = region.color;
        this.titles.push(title.appendChild(document.createTextNode(region.name)));
        const chart = new BandChart(p.nLayers, { width: 260, height: 150 }, (layer) => this.setLayer(layer));
        box.appendChild(chart.root);
        this.charts.push(chart);
        this.chartBoxes.push(box);
      }
    }
    this.buildReadout();
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    for (const key of ["query", "normalize", "band", "hidden"]) this.listeners.onModel(`change:${key}`, () => this.update());
    this.listeners.onModel("change:layer", () => {
      for (const chart of this.charts) chart.setLayer(this.layer);
      this.updateReadout();
      this.updateSink();
    });
    this.update();
  }

  /** One RunSet: one chart, a curve per region. Several: a chart per region. */
  get single(): boolean {
    return this.p.sets.length === 1;
  }

  get layer(): number {
    return this.slider.layer;
  }

  get query(): number {
    return queryIndex(this.p.queries, this.model.get("query"), this.p.defaultQuery);
  }

  get normalize(): number {
    return Math.max(this.p.normalizations.indexOf(this.model.get("normalize")), 0);
  }

  /** A region's name as the selected normalisation reads it: "<name> (own)"
   * in "share" where it counts only its own tokens. */
  regionLabel(r: number): string {
    const own = this.p.normalizations[this.normalize] === "share" && this.p.own[r];
    return own ? `${this.p.regions[r].name} (own)` : this.p.regions[r].name;
  }

  private get hidden(): boolean[] {
    const names = new Set(this.model.get("hidden") ?? []);
    return this.p.regions.map((r) => names.has(r.name));
  }

  private buildLegend(): void {
    const p = this.p;
    if (!this.single) {
      const sets = this.root.appendChild(h("div", "tw-legend"));
      p.sets.forEach((set, s) => sets.appendChild(variantChip(set.name, s, ` (n=${set.units})`)));
    }
    const legend = this.root.appendChild(h("div", "tw-legend"));
    p.regions.forEach((region, r) => {
      const chip = legend.appendChild(h("label", "tw-chip tw-curve-chip"));
      const box = chip.appendChild(h("input", "tw-visible"));
      box.type = "checkbox";
      box.title = `Show or hide ${region.name}`;
      chip.appendChild(h("span", "tw-swatch")).style.backgroundColor = region.color;
      chip.append(region.name);
      const change = () => {
        const hidden = this.hidden;
        hidden[r] = !box.checked;
        this.model.set("hidden", p.regions.filter((_, i) => hidden[i]).map((x) => x.name));
        this.model.save_changes();
      };
      this.listeners.on(box, "change", change);
      this.regionBoxes.push(box);
    });
  }

  private buildReadout(): void {
    const panel = this.root.appendChild(h("div", "tw-panel tw-aggregate-readout"));
    const table = panel.appendChild(h("table", "tw-lens-table"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    for (const name of ["region", "set", "layer", "mean", "band", "sd", "n"]) head.appendChild(h("th", "", name));
    this.readoutBody = table.appendChild(h("tbody"));
  }

  private setLayer(layer: number): void {
    if (layer === this.layer) return;
    this.model.set("layer", layer);
    this.model.save_changes();
  }

  /** (layer,) band edges of one curve for the selected band, or null. */
  band(set: number, region: number): [Float64Array, Float64Array] | null {
    const band = this.model.get("band");
    const curve = (stat: string) => aggregateCurve(this.p, set, this.normalize, this.query, region, stat);
    if (band === "interval") return [curve("low"), curve("high")];
    if (band === "range") return [curve("min"), curve("max")];
    if (band === "sd") {
      const mean = curve("mean");
      const sd = curve("sd");
      return [mean.map((m, l) => m - sd[l]), mean.map((m, l) => m + sd[l])];
    }
    return null;
  }

  private series(set: number, region: number, label: string, color: string, dashed = false): Series {
    const band = this.band(set, region);
    const values = aggregateCurve(this.p, set, this.normalize, this.query, region, "mean");
    return { label, color, values, low: band?.[0] ?? null, high: band?.[1] ?? null, dashed };
  }

  update(): void {
    const p = this.p;
    const hidden = this.hidden;
    p.regions.forEach((_, r) => (this.regionBoxes[r].checked = !hidden[r]));
    // a region without a value here (its tokens excluded, or absent) says so
    this.titles.forEach((title, r) => {
      const none = p.sets.every((_, s) => aggregateCurve(p, s, this.normalize, this.query, r, "mean").every(Number.isNaN));
      title.data = `${this.regionLabel(r)}${none ? " \u2014 no value (excluded)" : ""}`;
    });
    if (this.single) {
      const series = p.regions.flatMap((region, r) => (hidden[r] ? [] : [this.series(0, r, this.regionLabel(r), region.color)]));
      this.charts[0].draw(series);
    } else {
      p.regions.forEach((region, r) => {
        this.chartBoxes[r].style.display = hidden[r] ? "none" : "";
        if (hidden[r]) return;
        // the first set is the baseline: dashed grey, as in the variant diff
        this.charts[r].draw(p.sets.map((set, s) => this.series(s, r, `${set.name}: ${this.regionLabel(r)}`, variantColour(s), s === 0)));
      });
    }
    for (const chart of this.charts) chart.setLayer(this.layer);
    this.updateReadout();
    this.updateSink();
  }

  /** What the normalisation leaves out, and each set's sink (the first
   * token's attention) and excluded mass at the layer, means over cases. */
  private updateSink(): void {
    const p = this.p;
    const n = this.normalize;
    const q = this.query;
    const layer = this.layer;
    const list = (value: (s: number) => number) => p.sets.map((set, s) => `${set.name} ${format(value(s))}`).join(" \u00b7 ");
    const at = `at layer ${layer}, mean over cases`;
    const counted = p.firstExcluded[n] ? "excluded" : "counted in the curves";
    const more = p.excluded[n] !== "nothing" && p.excluded[n] !== "first token";
    let text = `${p.normalizations[n]}: ${p.excluded[n]} excluded`;
    const sink = p.sink ? `sink (first token) ${list((s) => p.sink!.get(s, q, layer))}, ${counted}` : "";
    if (more && p.excludedMass) text += ` \u2014 ${at}: excluded ${list((s) => p.excludedMass!.get(s, n, q, layer))}${sink ? `; ${sink}` : ""}`;
    else if (sink) text += ` \u2014 ${at}: ${sink}`;
    if (this.sinkLine.textContent !== text) this.sinkLine.textContent = text;
  }

  private updateReadout(): void {
    const p = this.p;
    const hidden = this.hidden;
    const layer = this.layer;
    const stat = (s: number, r: number, name: string) => p.values.get(s, this.normalize, this.query, layer, r, p.stats.indexOf(name));
    this.readoutBody.replaceChildren();
    p.regions.forEach((region, r) => {
      if (hidden[r]) return;
      p.sets.forEach((set, s) => {
        const band = this.band(s, r);
        const tr = this.readoutBody.appendChild(h("tr"));
        tr.appendChild(h("td", "", this.regionLabel(r)));
        tr.appendChild(h("td", "", set.name));
        tr.appendChild(h("td", "tw-num", String(layer)));
        tr.appendChild(h("td", "tw-num tw-mean", format(stat(s, r, "mean"))));
        const text = band && Number.isFinite(band[0][layer]) ? `[${format(band[0][layer])}, ${format(band[1][layer])}]` : "\u2013";
        tr.appendChild(h("td", "tw-num", text));
        tr.appendChild(h("td", "tw-num", format(stat(s, r, "sd"))));
        tr.appendChild(h("td", "tw-num", String(set.units)));
      });
    });
  }

  destroy(): void {
    this.listeners.dispose();
    for (const select of this.selects) select.destroy();
    for (const chart of this.charts) chart.destroy();
    this.slider.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<AggregateState>) => mount(model, el, () => new AggregateViewUI(model, el)),
};
