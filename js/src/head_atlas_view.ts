// Head atlas view (a tw.HeadAtlas, tealeaves_widgets/widgets/head_atlas.py):
// a layer x head grid on a canvas (layers as rows, layer 0 on top) coloured by
// the metric picked, diverging around 0 for a signed metric and from the heat
// palette otherwise, with the metric's description and the colour range; the
// heads of each layer in index order or by score; a threshold that dims the
// heads below it (|score| for a signed metric); the strongest heads ranked.
// A click on a cell (or a ranked head) selects that head (`layer`, `head`,
// synced, so a tw.Linked explorer follows), and the detail panel shows its
// mean pattern on the repeated random-token probes, its offset profile and
// its score on every metric.

import { type Palette, divergingPalette, heatPalette } from "./colour";
import { ModelSelect } from "./controls";
import { format, svg } from "./curves";
import {
  type GridLayout,
  type HeadAtlas,
  SORTS,
  type Sort,
  cellAt,
  colourIndex,
  decodeHeadAtlas,
  dimmed,
  gridLayout,
  headOrder,
  metricIndex,
  metricScale,
  metricScores,
  pattern,
  patternIndex,
  patternScale,
  profile,
  profilePeak,
  rankOf,
  score,
  slotOf,
  thresholdMax,
  thresholdStep,
  topHeads,
} from "./head_atlas_wire";
import { Listeners } from "./listeners";
import { type AnyModel, type RenderProps, h, mount } from "./model";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { type Theme, ThemeTracker, parseColour } from "./theme";

export interface HeadAtlasState {
  payload: unknown;
  metric: string;
  layer: number;
  head: number | null;
  sort: Sort;
  threshold: number;
}

const SORT_LABELS: Record<Sort, string> = {
  head: "by head index",
  score: "by score within each layer",
};
const TOP_K = 10;
const PATTERN_PX = 240;
const PROFILE = { width: 300, height: 150, left: 40, right: 10, top: 10, bottom: 28 };
/** Opacity of a dimmed cell's colour. */
const DIM_ALPHA = 0.15;

const ATLAS_CSS = `
.tw-atlas-body { align-items: flex-start; }
.tw-atlas-grid-panel { flex: 0 0 auto; }
.tw-atlas-grid { display: block; cursor: pointer; }
.tw-atlas-description { font-size: 12px; color: var(--tw-fg); margin: 0 0 4px; max-width: 900px; }
.tw-atlas-description b { color: var(--tw-fg-strong); }
.tw-atlas-threshold-value { font-variant-numeric: tabular-nums; min-width: 5em; }
.tw-atlas-top { flex: 0 0 auto; }
.tw-atlas-top ol { margin: 0; padding: 0 0 0 2.2em; font-size: 12px; font-variant-numeric: tabular-nums; }
.tw-atlas-top li { cursor: pointer; padding: 0 4px; border-radius: 2px; }
.tw-atlas-top li:hover { outline: 1px solid var(--tw-border-strong); }
.tw-atlas-top li.tw-selected { outline: 2px solid var(--tw-accent); outline-offset: -1px; font-weight: 600; }
.tw-atlas-top li.tw-dim { color: var(--tw-fg-muted); }
.tw-atlas-detail { flex: 1 1 560px; min-width: 300px; }
.tw-atlas-detail-body { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.tw-atlas-pattern-box { display: flex; flex-direction: column; gap: 2px; }
.tw-atlas-pattern { width: ${PATTERN_PX}px; height: ${PATTERN_PX}px; image-rendering: pixelated; border: 1px solid var(--tw-border-strong); cursor: crosshair; }
.tw-atlas-axis { font-size: 11px; color: var(--tw-fg-muted); }
.tw-atlas-scores { font-size: 11px; }
.tw-atlas-scores td { cursor: pointer; }
.tw-atlas-empty { color: var(--tw-fg-muted); font-size: 12px; padding: 6px 0; }
.tw-atlas-profile-bar { fill: var(--tw-fg-faint); }
.tw-atlas-profile-bar.tw-peak { fill: var(--tw-accent); }
`;

export class HeadAtlasViewUI {
  readonly root: HTMLDivElement;
  readonly a: HeadAtlas;
  readonly layout: GridLayout;
  /** (layer, slot) -> head in the order shown. */
  order: Int32Array;
  private canvas!: HTMLCanvasElement;
  private description!: HTMLDivElement;
  private legend!: HTMLDivElement;
  private slider!: HTMLInputElement;
  private sliderValue!: HTMLSpanElement;
  private topList!: HTMLOListElement;
  private topCaption!: HTMLSpanElement;
  private detailTitle!: HTMLSpanElement;
  private detailBody!: HTMLDivElement;
  private tip!: HTMLDivElement;
  private readonly painted = new ThemeTracker();
  private heat: Palette = heatPalette([255, 255, 255], [31, 35, 40]);
  private diverging: Palette = divergingPalette([255, 255, 255], [31, 35, 40]);
  private destroyables: { destroy(): void }[] = [];
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<HeadAtlasState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    const a = (this.a = decodeHeadAtlas(model.get("payload")));
    this.layout = gridLayout(a.nLayers, a.nHeads);
    this.order = headOrder(metricScores(a, 0), a.nLayers, a.nHeads, "head", false);
    this.root = h("div", "tw-root tw-head-atlas-view");
    addStyle(this.root);
    this.root.appendChild(h("style")).textContent = ATLAS_CSS;
    const probes = a.probes.map((p) => `${p.name} \u00d7${p.count}`).join(", ");
    this.root.appendChild(
      h("div", "tw-diff-title", `Head atlas \u2014 ${a.nLayers} layers \u00d7 ${a.nHeads} heads \u2014 probes ${probes} (seed ${a.seed}) \u2014 ${a.modelId}`),
    );
    this.buildControls();
    this.description = this.root.appendChild(h("div", "tw-atlas-description"));
    this.legend = this.root.appendChild(h("div", "tw-legend tw-scale tw-atlas-legend"));
    const body = this.root.appendChild(h("div", "tw-panels tw-atlas-body"));
    this.buildGrid(body);
    this.buildTop(body);
    this.buildDetail(body);
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    this.listeners.onModel("change:metric", () => this.update());
    this.listeners.onModel("change:sort", () => this.update());
    this.listeners.onModel("change:threshold", () => this.update());
    this.listeners.onModel("change:layer", () => this.update());
    this.listeners.onModel("change:head", () => this.update());
    this.listeners.onThemeOrLayout(this.root, () => this.paint());
    this.update();
  }

  // -- the selection -------------------------------------------------------------

  get m(): number {
    return metricIndex(this.a, this.model.get("metric"));
  }

  get sort(): Sort {
    const value = this.model.get("sort");
    return SORTS.includes(value) ? value : "head";
  }

  get threshold(): number {
    const value = Number(this.model.get("threshold"));
    return Number.isFinite(value) && value > 0 ? value : 0;
  }

  /** The head selected, or null (none, or out of range). */
  get selected(): { layer: number; head: number } | null {
    const layer = this.model.get("layer");
    const head = this.model.get("head");
    if (head === null || head === undefined || !(head >= 0 && head < this.a.nHeads)) return null;
    if (!(layer >= 0 && layer < this.a.nLayers)) return null;
    return { layer, head };
  }

  select(layer: number, head: number): void {
    this.model.set("layer", layer);
    this.model.set("head", head);
    this.model.save_changes();
  }

  /** Centre of a head's cell in client coordinates (for tests driving clicks). */
  cellCentre(layer: number, head: number): { x: number; y: number } {
    const g = this.layout;
    const slot = slotOf(this.order, this.a.nHeads, layer, head);
    const box = this.canvas.getBoundingClientRect();
    return { x: box.left + g.left + (slot + 0.5) * g.cell, y: box.top + g.top + (layer + 0.5) * g.row };
  }

  /** What the grid shows for one head: its slot in its layer, its score, its
   * palette index (-1: no score) and colour, and whether the threshold dims it. */
  cell(layer: number, head: number): { slot: number; value: number; index: number; colour: string; dimmed: boolean } {
    const a = this.a;
    const metric = a.metrics[this.m];
    const values = metricScores(a, this.m);
    const value = values[layer * a.nHeads + head];
    const index = colourIndex(value, metricScale(values, metric.signed));
    const palette = metric.signed ? this.diverging : this.heat;
    return {
      slot: slotOf(this.order, a.nHeads, layer, head),
      value,
      index,
      colour: index < 0 ? "" : palette.colours[index],
      dimmed: dimmed(value, this.threshold, metric.signed),
    };
  }

  // -- building ------------------------------------------------------------------

  private buildControls(): void {
    const a = this.a;
    const bar = this.root.appendChild(h("div", "tw-controls"));
    const metric = new ModelSelect(
      this.model,
      "metric",
      "metric",
      "tw-metric-select",
      a.metrics.map((m) => [m.name, m.signed ? `${m.name} (signed)` : m.name] as [string, string]),
    );
    // another metric has other units: its threshold starts at 0 (nothing dimmed)
    this.listeners.on(metric.select, "change", () => {
      this.model.set("threshold", 0);
      this.model.save_changes();
    });
    bar.appendChild(metric.root);
    const sort = new ModelSelect(this.model, "sort", "order heads", "tw-sort-select", SORTS.map((s) => [s, SORT_LABELS[s]] as [Sort, string]));
    bar.appendChild(sort.root);
    this.destroyables.push(metric, sort);
    const label = bar.appendChild(h("label", "", "dim below "));
    this.slider = label.appendChild(h("input", "tw-threshold"));
    this.slider.type = "range";
    this.slider.min = "0";
    this.slider.setAttribute("aria-label", "threshold");
    this.sliderValue = label.appendChild(h("span", "tw-atlas-threshold-value"));
    this.listeners.on(this.slider, "input", () => {
      this.model.set("threshold", Number(this.slider.value));
      this.model.save_changes();
    });
    bar.appendChild(h("span", "tw-bar-label", "click a head to inspect it"));
    bar.appendChild(downloadButton(this.root, "head-atlas"));
  }

  private buildGrid(parent: HTMLElement): void {
    const panel = parent.appendChild(h("div", "tw-panel tw-atlas-grid-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Heads"));
    header.append(" layer \u2193, head \u2192");
    this.canvas = panel.appendChild(h("canvas", "tw-atlas-grid"));
    const g = this.layout;
    this.canvas.style.width = `${g.width}px`;
    this.canvas.style.height = `${g.height}px`;
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", "layer by head grid of the metric");
    this.listeners.on(this.canvas, "mousemove", (event: MouseEvent) => this.hover(event));
    this.listeners.on(this.canvas, "mouseleave", () => (this.tip.style.display = "none"));
    this.listeners.on(this.canvas, "click", (event: MouseEvent) => {
      const hit = this.hit(event);
      if (hit) this.select(hit.layer, hit.head);
    });
  }

  private buildTop(parent: HTMLElement): void {
    const panel = parent.appendChild(h("div", "tw-panel tw-atlas-top"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Top heads"));
    this.topCaption = header.appendChild(h("span"));
    this.topList = panel.appendChild(h("ol", "tw-atlas-top-list"));
    this.listeners.on(this.topList, "click", (event: MouseEvent) => {
      const li = (event.target as HTMLElement).closest?.("li[data-layer]") as HTMLLIElement | null;
      if (li) this.select(Number(li.dataset.layer), Number(li.dataset.head));
    });
  }

  private buildDetail(parent: HTMLElement): void {
    const panel = parent.appendChild(h("div", "tw-panel tw-atlas-detail"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Head"));
    this.detailTitle = header.appendChild(h("span", "tw-atlas-detail-title"));
    this.detailBody = panel.appendChild(h("div", "tw-atlas-detail-body"));
  }

  // -- hit testing and the tooltip ------------------------------------------------------

  private hit(event: MouseEvent): { layer: number; head: number } | null {
    const box = this.canvas.getBoundingClientRect();
    const at = cellAt(this.layout, this.a.nLayers, this.a.nHeads, event.clientX - box.left, event.clientY - box.top);
    return at ? { layer: at.layer, head: this.order[at.layer * this.a.nHeads + at.slot] } : null;
  }

  private hover(event: MouseEvent): void {
    const hit = this.hit(event);
    if (!hit) {
      this.tip.style.display = "none";
      return;
    }
    const a = this.a;
    const m = this.m;
    const metric = a.metrics[m];
    const value = score(a, m, hit.layer, hit.head);
    const values = metricScores(a, m);
    const rank = rankOf(values, hit.layer * a.nHeads + hit.head, metric.signed);
    this.showTip(event, [
      ["", `L${hit.layer}H${hit.head}`],
      [metric.name, format(value)],
      ["rank", rank ? `${rank} of ${values.length}${metric.signed ? " by |score|" : ""}` : "no score"],
    ]);
  }

  private showTip(event: MouseEvent, lines: [string, string][]): void {
    const tip = this.tip;
    tip.replaceChildren();
    for (const [key, value] of lines) {
      const line = tip.appendChild(h("div"));
      if (key) line.appendChild(h("b", "", `${key}: `));
      line.append(value);
    }
    const box = this.root.getBoundingClientRect();
    tip.style.left = `${Math.max(0, event.clientX - box.left + 12)}px`;
    tip.style.top = `${event.clientY - box.top + 14}px`;
    tip.style.display = "block";
  }

  // -- drawing -------------------------------------------------------------------

  /** Everything that follows the selection: order, grid, legend, list, detail. */
  update(): void {
    const a = this.a;
    const m = this.m;
    const metric = a.metrics[m];
    const values = metricScores(a, m);
    this.order = headOrder(values, a.nLayers, a.nHeads, this.sort, metric.signed);
    this.tip.style.display = "none"; // it described the cell under the pointer before the change
    this.description.replaceChildren();
    this.description.appendChild(h("b", "", `${metric.name}: `));
    this.description.append(`${metric.description} (probe set: ${metric.probeSet})`);
    if (metric.note) this.description.append(` \u2014 note: ${metric.note}`);
    const max = thresholdMax(values, metric.signed);
    const step = thresholdStep(max);
    this.slider.step = String(step);
    this.slider.max = String(Math.ceil(max / step) * step);
    this.slider.value = String(Math.min(this.threshold, max));
    this.sliderValue.textContent = this.threshold > 0 ? `${metric.signed ? "|score| " : ""}< ${format(this.threshold)}` : "off";
    this.drawTop(values);
    this.drawDetail();
    this.paint(true);
  }

  /** Paint the grid and the legend (`force`: even when the theme did not change). */
  paint(force = false): void {
    const theme = this.painted.next(this.root, force, (theme) => {
      this.heat = heatPalette(theme.background, theme.text);
      this.diverging = divergingPalette(theme.background, theme.text);
    });
    if (!theme) return;
    this.drawGrid(theme);
    this.drawLegend();
    this.drawPattern();
  }

  private drawGrid(theme: Theme): void {
    const a = this.a;
    const g = this.layout;
    const m = this.m;
    const metric = a.metrics[m];
    const values = metricScores(a, m);
    const scale = metricScale(values, metric.signed);
    const palette = metric.signed ? this.diverging : this.heat;
    const threshold = this.threshold;
    const ratio = typeof devicePixelRatio === "number" && devicePixelRatio > 0 ? devicePixelRatio : 1;
    this.canvas.width = Math.round(g.width * ratio);
    this.canvas.height = Math.round(g.height * ratio);
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, g.width, g.height);
    const ink = `rgb(${theme.text.join(", ")})`;
    const faint = `rgba(${theme.text.join(", ")}, 0.55)`;
    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "center";
    ctx.fillStyle = faint;
    const sorted = this.sort === "score";
    for (let slot = 0; slot < a.nHeads; slot++) ctx.fillText(sorted ? `#${slot + 1}` : String(slot), g.left + (slot + 0.5) * g.cell, g.top / 2);
    ctx.textAlign = "right";
    const labelEvery = g.row >= 12 ? 1 : 2;
    for (let layer = 0; layer < a.nLayers; layer += labelEvery) ctx.fillText(String(layer), g.left - 5, g.top + (layer + 0.5) * g.row);
    ctx.textAlign = "center";
    ctx.font = "9px system-ui, sans-serif";
    const background = `rgb(${theme.background.join(", ")})`;
    for (let layer = 0; layer < a.nLayers; layer++) {
      for (let slot = 0; slot < a.nHeads; slot++) {
        const head = this.order[layer * a.nHeads + slot];
        const value = values[layer * a.nHeads + head];
        const x = g.left + slot * g.cell;
        const y = g.top + layer * g.row;
        const index = colourIndex(value, scale);
        const dim = dimmed(value, threshold, metric.signed);
        if (index < 0) {
          // no score: hatched
          ctx.strokeStyle = faint;
          ctx.lineWidth = 1;
          ctx.beginPath();
          ctx.moveTo(x + 2, y + g.row - 2);
          ctx.lineTo(x + g.cell - 2, y + 2);
          ctx.stroke();
        } else {
          ctx.globalAlpha = dim ? DIM_ALPHA : 1;
          ctx.fillStyle = palette.colours[index];
          ctx.fillRect(x, y, g.cell, g.row);
          ctx.globalAlpha = 1;
        }
        ctx.strokeStyle = `rgba(${theme.text.join(", ")}, 0.12)`;
        ctx.lineWidth = 1;
        ctx.strokeRect(x + 0.5, y + 0.5, g.cell - 1, g.row - 1);
        if (sorted && g.row >= 11 && g.cell >= 18) {
          // which head sits in this slot
          const shade = index >= 0 && !dim ? palette.text[index] || ink : ink;
          ctx.fillStyle = shade;
          ctx.fillText(`h${head}`, x + g.cell / 2, y + g.row / 2 + 0.5);
        }
      }
    }
    const sel = this.selected;
    if (sel) {
      const slot = slotOf(this.order, a.nHeads, sel.layer, sel.head);
      const x = g.left + slot * g.cell;
      const y = g.top + sel.layer * g.row;
      ctx.lineWidth = 2;
      ctx.strokeStyle = background;
      ctx.strokeRect(x + 2, y + 2, g.cell - 4, g.row - 4);
      ctx.strokeStyle = ink;
      ctx.strokeRect(x + 1, y + 1, g.cell - 2, g.row - 2);
    }
  }

  private drawLegend(): void {
    const a = this.a;
    const m = this.m;
    const metric = a.metrics[m];
    const scale = metricScale(metricScores(a, m), metric.signed);
    const colours = metric.signed ? this.diverging.colours : this.heat.colours;
    const last = colours.length - 1;
    const start = metric.signed ? 0 : 1;
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `${colours[Math.round(start + t * (last - start))]} ${Math.round(t * 100)}%`);
    this.legend.replaceChildren();
    this.legend.appendChild(h("span", "tw-bar-label tw-legend-low", format(scale.low)));
    const bar = this.legend.appendChild(h("span", "tw-bar"));
    bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    this.legend.appendChild(h("span", "tw-bar-label tw-legend-high", format(scale.high)));
    const note = metric.signed
      ? `diverging, centred at 0 (the background): blue below, red above; \u00b1 the largest |score|`
      : `sequential, ${scale.low === 0 ? "0" : "the smallest score"} to the largest score`;
    const extra = this.threshold > 0 ? `; heads ${metric.signed ? "with |score|" : ""} under ${format(this.threshold)} faded` : "";
    this.legend.appendChild(h("span", "tw-bar-label tw-scale-note", `${note}${extra}; hatched: no score`));
  }

  private drawTop(values: Float32Array): void {
    const a = this.a;
    const metric = a.metrics[this.m];
    const sel = this.selected;
    this.topCaption.textContent = ` by ${metric.name}${metric.signed ? " (|score|)" : ""}`;
    this.topList.replaceChildren();
    for (const { layer, head, value } of topHeads(values, a.nHeads, TOP_K, metric.signed)) {
      const li = this.topList.appendChild(h("li", "", `L${layer}H${head}  ${format(value)}`));
      li.dataset.layer = String(layer);
      li.dataset.head = String(head);
      li.dataset.value = String(value);
      if (sel && sel.layer === layer && sel.head === head) li.classList.add("tw-selected");
      if (dimmed(value, this.threshold, metric.signed)) li.classList.add("tw-dim");
    }
  }

  // -- the detail panel -------------------------------------------------------------------

  private patternCanvas: HTMLCanvasElement | null = null;
  private patternNote: HTMLDivElement | null = null;

  private drawDetail(): void {
    const a = this.a;
    const sel = this.selected;
    this.detailBody.replaceChildren();
    this.patternCanvas = null;
    this.patternNote = null;
    if (!sel) {
      this.detailTitle.textContent = "";
      this.detailBody.appendChild(h("div", "tw-atlas-empty", "No head selected (a linked explorer shows the head average): click a cell of the grid or a head of the list."));
      return;
    }
    const { layer, head } = sel;
    const m = this.m;
    this.detailTitle.textContent = ` L${layer}H${head} \u2014 ${a.metrics[m].name} ${format(score(a, m, layer, head))}`;
    this.detailTitle.dataset.layer = String(layer);
    this.detailTitle.dataset.head = String(head);
    this.buildPattern(layer, head);
    this.buildProfile(layer, head);
    this.buildScores(layer, head);
  }

  private buildPattern(layer: number, head: number): void {
    const a = this.a;
    const box = this.detailBody.appendChild(h("div", "tw-atlas-pattern-box"));
    const half = (a.P - (a.bosPrepended ? 1 : 0)) / 2;
    const what = a.bosPrepended ? `BOS + ${half} random tokens + the same ${half} again` : `${half} random tokens + the same again`;
    box.appendChild(h("div", "tw-atlas-axis", `Mean pattern, ${a.P} \u00d7 ${a.P} (${what}); query \u2193, key \u2192`));
    const canvas = (this.patternCanvas = box.appendChild(h("canvas", "tw-atlas-pattern")));
    canvas.width = a.P;
    canvas.height = a.P;
    canvas.dataset.layer = String(layer);
    canvas.dataset.head = String(head);
    this.patternNote = box.appendChild(h("div", "tw-overview-note tw-atlas-pattern-note"));
    this.listeners.on(canvas, "mousemove", (event: MouseEvent) => {
      const r = canvas.getBoundingClientRect();
      const k = Math.floor(((event.clientX - r.left) / r.width) * a.P);
      const q = Math.floor(((event.clientY - r.top) / r.height) * a.P);
      if (q < 0 || k < 0 || q >= a.P || k >= a.P) return;
      const w = pattern(a, layer, head)[q * a.P + k];
      this.showTip(event, [
        ["", `L${layer}H${head}`],
        ["query", `${q}${q > half ? " (second half)" : ""}`],
        ["key", `${k}${k === 0 && a.bosPrepended ? " (BOS, the sink)" : ""}`],
        ["weight", k > q ? "\u2013 (after the query)" : format(w)],
      ]);
    });
    this.listeners.on(canvas, "mouseleave", () => (this.tip.style.display = "none"));
  }

  /** Paint the selected head's pattern (in the theme's heat palette). */
  private drawPattern(): void {
    const canvas = this.patternCanvas;
    const sel = this.selected;
    if (!canvas || !sel) return;
    const a = this.a;
    const values = pattern(a, sel.layer, sel.head);
    const { high, sink, sinkMax } = patternScale(values, a.P);
    canvas.dataset.high = String(high);
    if (this.patternNote) {
      this.patternNote.textContent =
        `Colour: linear, 0 to ${format(high)} (the largest weight off the first key). The first key ` +
        `(${a.bosPrepended ? "the BOS, " : ""}the sink) takes ${format(sink)} of a row on average (up to ${format(sinkMax)}), ` +
        `so its column is clipped at the darkest shade.`;
    }
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    const image = ctx.createImageData(a.P, a.P);
    const rgb = this.heat.colours.map((c) => parseColour(c) ?? [0, 0, 0]);
    for (let q = 0; q < a.P; q++) {
      for (let k = 0; k < a.P; k++) {
        const i = q * a.P + k;
        const index = k > q ? 0 : patternIndex(values[i], high);
        const [r, g, b] = rgb[index];
        image.data.set([r, g, b, index === 0 && k > q ? 0 : 255], i * 4);
      }
    }
    ctx.putImageData(image, 0, 0);
  }

  private buildProfile(layer: number, head: number): void {
    const a = this.a;
    const values = profile(a, layer, head);
    const peak = profilePeak(values);
    const box = this.detailBody.appendChild(h("div", "tw-atlas-profile-box"));
    box.appendChild(h("div", "tw-atlas-axis", `Offset profile: mean weight at distance d = query \u2212 key (random probes)${peak > 0 ? `; peak at d = ${peak}` : ""}`));
    const { width, height, left, right, top, bottom } = PROFILE;
    const chart = box.appendChild(svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "tw-chart tw-atlas-profile" }));
    let high = 0;
    for (const v of values) if (Number.isFinite(v) && v > high) high = v;
    if (!(high > 0)) high = 1;
    const y = (v: number) => height - bottom - (v / high) * (height - top - bottom);
    for (const v of [0, high / 2, high]) {
      chart.appendChild(svg("line", { x1: left - 3, x2: width - right, y1: y(v), y2: y(v), class: v === 0 ? "tw-zero" : "tw-grid" }));
      chart.appendChild(svg("text", { x: left - 5, y: y(v) + 4, "text-anchor": "end", class: "tw-tick" })).textContent = format(v);
    }
    const slot = (width - left - right) / Math.max(values.length, 1);
    const tickEvery = Math.max(1, Math.ceil(values.length / 8));
    values.forEach((v, d) => {
      const x = left + d * slot;
      const top_ = Number.isFinite(v) ? y(v) : y(0);
      const rect = chart.appendChild(
        svg("rect", { x: x + slot * 0.1, y: top_, width: Math.max(slot * 0.8, 1), height: Math.max(y(0) - top_, 0.5), class: `tw-atlas-profile-bar${d === peak ? " tw-peak" : ""}` }),
      );
      rect.dataset.offset = String(d);
      rect.dataset.value = String(v);
      rect.appendChild(svg("title")).textContent = `d = ${d}: ${format(v)}`;
      if (d % tickEvery === 0) chart.appendChild(svg("text", { x: x + slot / 2, y: height - bottom + 13, "text-anchor": "middle", class: "tw-tick" })).textContent = String(d);
    });
    chart.appendChild(svg("text", { x: width - right, y: height - 3, "text-anchor": "end", class: "tw-tick" })).textContent = "offset d";
  }

  private buildScores(layer: number, head: number): void {
    const a = this.a;
    const box = this.detailBody.appendChild(h("div", "tw-atlas-scores-box"));
    box.appendChild(h("div", "tw-atlas-axis", "Every metric (click one to colour the grid by it)"));
    const table = box.appendChild(h("table", "tw-lens-table tw-atlas-scores"));
    const headRow = table.appendChild(h("thead")).appendChild(h("tr"));
    for (const name of ["metric", "score", "rank"]) headRow.appendChild(h("th", "", name));
    const body = table.appendChild(h("tbody"));
    const m = this.m;
    a.metrics.forEach((metric, i) => {
      const values = metricScores(a, i);
      const value = score(a, i, layer, head);
      const rank = rankOf(values, layer * a.nHeads + head, metric.signed);
      const tr = body.appendChild(h("tr", i === m ? "tw-current" : ""));
      tr.dataset.metric = metric.name;
      tr.title = metric.description;
      tr.appendChild(h("td", "", metric.name));
      const td = tr.appendChild(h("td", "tw-num", format(value)));
      td.dataset.value = String(value);
      tr.appendChild(h("td", "tw-num", rank ? `${rank} / ${values.length}` : "\u2013"));
    });
    this.listeners.on(body, "click", (event: MouseEvent) => {
      const tr = (event.target as HTMLElement).closest?.("tr[data-metric]") as HTMLTableRowElement | null;
      if (!tr || tr.dataset.metric === this.model.get("metric")) return;
      this.model.set("metric", tr.dataset.metric!);
      this.model.set("threshold", 0);
      this.model.save_changes();
    });
  }

  destroy(): void {
    this.listeners.dispose();
    for (const item of this.destroyables.splice(0)) item.destroy();
  }
}


export default {
  render: ({ model, el }: RenderProps<HeadAtlasState>) => mount(model, el, () => new HeadAtlasViewUI(model, el)),
};
