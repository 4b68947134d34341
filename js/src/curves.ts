// Cooking curves: attention mass the query gives each region, per layer, as a
// light SVG line chart with a cursor at the selected layer. The payload holds
// raw masses; normalisation happens here, with Run.curves' definitions.

import { fitWidth, heightFor, nearestCurve } from "./fit";
import type { AnyModel } from "./model";
import { h, option } from "./model";
import { type Payload, layersDone } from "./wire";

export type Normalize = "raw" | "share" | "per-region" | "density";
export const NORMALIZATIONS: Normalize[] = ["raw", "share", "per-region", "density"];

export interface CurvesState {
  layer: number;
  query: string;
  head: number | null;
  normalize: Normalize;
  region: string | null;
  hidden: string[];
}

const SVG = "http://www.w3.org/2000/svg";
/** Size before the chart is laid out (and in jsdom); then it takes its panel's width. */
const WIDTH = 460;
const HEIGHT = 230;
const LINE_WIDTH = "1.8";
const BOLD_WIDTH = "3.4";
const MARGIN = { left: 46, right: 12, top: 10, bottom: 30 };

/** (layer, region) raw masses of one query, head-averaged or one head. */
export function rawMasses(p: Payload, query: number, head: number | null): Float64Array {
  const R = p.regions.length;
  const out = new Float64Array(p.nLayers * R);
  for (let l = 0; l < p.nLayers; l++) {
    for (let r = 0; r < R; r++) {
      out[l * R + r] =
        head === null
          ? p.curves[(l * p.nQueries + query) * R + r]
          : p.curvesHeads[((l * p.nHeads + head) * p.nQueries + query) * R + r];
    }
  }
  return out;
}

/**
 * Normalise a (layer, region) mass table over the regions in `keep`, as
 * Run.curves does: share of each layer's sum (0 when the sum is 0),
 * min-max per region across layers (0 when constant), or mass per token
 * (NaN for a region without tokens). Columns not in `keep` are NaN.
 */
export function normalize(mass: Float64Array, nLayers: number, sizes: number[], mode: Normalize, keep: boolean[]): Float64Array {
  const R = sizes.length;
  const out = new Float64Array(mass.length).fill(NaN);
  for (let r = 0; r < R; r++) {
    if (!keep[r]) continue;
    let low = Infinity;
    let high = -Infinity;
    for (let l = 0; l < nLayers; l++) {
      low = Math.min(low, mass[l * R + r]);
      high = Math.max(high, mass[l * R + r]);
    }
    for (let l = 0; l < nLayers; l++) {
      const m = mass[l * R + r];
      if (mode === "raw") out[l * R + r] = m;
      else if (mode === "per-region") out[l * R + r] = high > low ? (m - low) / (high - low) : 0;
      else if (mode === "density") out[l * R + r] = sizes[r] > 0 ? m / sizes[r] : NaN;
    }
  }
  if (mode === "share") {
    for (let l = 0; l < nLayers; l++) {
      let total = 0;
      for (let r = 0; r < R; r++) if (keep[r]) total += mass[l * R + r];
      for (let r = 0; r < R; r++) if (keep[r]) out[l * R + r] = total > 0 ? mass[l * R + r] / total : 0;
    }
  }
  return out;
}

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

export function format(value: number): string {
  if (!Number.isFinite(value)) return "\u2013";
  return Math.abs(value) >= 0.01 || value === 0 ? value.toFixed(3) : value.toExponential(1);
}

export class CurvesPanel {
  readonly root: HTMLDivElement;
  private chart: SVGSVGElement;
  private axes: SVGGElement;
  private width = WIDTH;
  private height = HEIGHT;
  /** Region whose curve the pointer is on (or its legend entry), -1 for none. */
  private hovered = -1;
  private lines: SVGPolylineElement[] = [];
  private cursor: SVGLineElement;
  private yLabels: SVGTextElement[] = [];
  private readout: HTMLDivElement;
  private select: HTMLSelectElement;
  private chips: HTMLSpanElement[] = [];
  private boxes: HTMLInputElement[] = [];
  private picks: HTMLButtonElement[] = [];
  private values: Float64Array = new Float64Array(0);
  private yMax = 1;
  private cleanups: (() => void)[] = [];

  constructor(
    private model: AnyModel<CurvesState>,
    private p: Payload,
    private queryIndex: () => number,
    private headIndex: () => number | null,
  ) {
    this.root = h("div", "tw-panel tw-curves");
    const header = this.root.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Cooking curves"));
    const label = header.appendChild(h("label", "", " normalise "));
    this.select = label.appendChild(h("select", "tw-normalize-select"));
    for (const mode of NORMALIZATIONS) this.select.appendChild(option(mode, mode));
    this.chart = this.root.appendChild(svg("svg", { height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "tw-chart" }));
    this.axes = this.chart.appendChild(svg("g", { class: "tw-axes" }));
    this.buildAxes();
    for (const region of p.regions) {
      const line = this.chart.appendChild(svg("polyline", { fill: "none", stroke: region.color, "stroke-width": LINE_WIDTH, class: "tw-line" }));
      line.appendChild(svg("title")).textContent = region.name;
      this.lines.push(line);
    }
    this.cursor = this.chart.appendChild(svg("line", { y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom, stroke: "#1f6feb", "stroke-width": 1.5, class: "tw-cursor" }));
    this.cleanups.push(fitWidth(this.chart, (width) => this.layout(width)));
    this.buildLegend();
    this.readout = this.root.appendChild(h("div", "tw-readout"));
    this.listen();
    this.update();
  }

  private x(layer: number): number {
    const span = Math.max(this.p.nLayers - 1, 1);
    return MARGIN.left + (layer / span) * (this.width - MARGIN.left - MARGIN.right);
  }

  private y(value: number): number {
    return this.height - MARGIN.bottom - (value / this.yMax) * (this.height - MARGIN.top - MARGIN.bottom);
  }

  /** The chart's size in CSS px (its viewBox is the same, so nothing is stretched). */
  get size(): { width: number; height: number } {
    return { width: this.width, height: this.height };
  }

  /** Lay the chart out `width` px wide (its panel's width changed). */
  layout(width: number): void {
    this.width = width;
    this.height = heightFor(width, 0.42, HEIGHT - 30, 320);
    this.chart.setAttribute("viewBox", `0 0 ${this.width} ${this.height}`);
    this.chart.setAttribute("height", String(this.height));
    this.cursor.setAttribute("y2", String(this.height - MARGIN.bottom));
    this.buildAxes();
    this.update();
  }

  private buildAxes(): void {
    const { width, height } = this;
    const bottom = height - MARGIN.bottom;
    const axes = this.axes;
    axes.replaceChildren();
    this.yLabels = [];
    // lines: a class for the theme's colour (style.ts), the attribute as a fallback
    for (const fraction of [0, 0.5, 1]) {
      const y = bottom - fraction * (bottom - MARGIN.top);
      axes.appendChild(svg("line", { x1: MARGIN.left - 3, x2: width - MARGIN.right, y1: y, y2: y, stroke: "#eee", class: "tw-grid" }));
      this.yLabels.push(axes.appendChild(svg("text", { x: MARGIN.left - 5, y: y + 4, "text-anchor": "end", class: "tw-tick" })));
    }
    axes.appendChild(svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: bottom, y2: bottom, stroke: "#999", class: "tw-axis" }));
    axes.appendChild(svg("line", { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: bottom, stroke: "#999", class: "tw-axis" }));
    const last = this.p.nLayers - 1;
    // a tick every ~60 px
    const step = Math.max(1, Math.ceil(last / Math.max(2, Math.floor((width - MARGIN.left - MARGIN.right) / 60))));
    for (let layer = 0; layer <= last; layer += step) {
      const tick = axes.appendChild(svg("text", { x: this.x(layer), y: bottom + 14, "text-anchor": "middle", class: "tw-tick" }));
      tick.textContent = String(layer);
    }
    axes.appendChild(svg("text", { x: width - MARGIN.right, y: height - 3, "text-anchor": "end", class: "tw-tick" })).textContent = "layer";
  }

  /** Per region: a checkbox that shows or hides its curve (synced as
   * `hidden`) and its name, which selects it (synced as `region`: the
   * heatmap highlights its tokens, the chart draws its curve bold). */
  private buildLegend(): void {
    const legend = this.root.appendChild(h("div", "tw-legend"));
    this.p.regions.forEach((region, r) => {
      const chip = legend.appendChild(h("span", "tw-chip tw-curve-chip"));
      const box = chip.appendChild(h("input", "tw-visible"));
      box.type = "checkbox";
      box.title = `Show or hide the curve of ${region.name}`;
      const pick = chip.appendChild(h("button", "tw-pick"));
      pick.type = "button";
      pick.title = "Select this region: its tokens are highlighted in the heatmap (click again to clear)";
      pick.appendChild(h("span", "tw-swatch")).style.backgroundColor = region.color;
      pick.append(region.name);
      this.on(box, "change", () => this.setHidden(r, !box.checked));
      this.on(chip, "mouseenter", () => this.hover(r));
      this.on(chip, "mouseleave", () => this.hover(-1));
      this.on(pick, "click", () => {
        this.model.set("region", this.model.get("region") === region.name ? null : region.name);
        this.model.save_changes();
      });
      this.chips.push(chip);
      this.boxes.push(box);
      this.picks.push(pick);
    });
  }

  /** Regions hidden, per region index (unknown names in `hidden` are ignored). */
  private get hidden(): boolean[] {
    const names = new Set(this.model.get("hidden") ?? []);
    return this.p.regions.map((region) => names.has(region.name));
  }

  private setHidden(r: number, hide: boolean): void {
    const hidden = this.hidden;
    hidden[r] = hide;
    this.model.set(
      "hidden",
      this.p.regions.filter((_, i) => hidden[i]).map((region) => region.name),
    );
    this.model.save_changes();
  }

  private on(target: EventTarget, type: string, handler: (event: any) => void): void {
    target.addEventListener(type, handler);
    this.cleanups.push(() => target.removeEventListener(type, handler));
  }

  private listen(): void {
    this.on(this.select, "change", () => {
      this.model.set("normalize", this.select.value as Normalize);
      this.model.save_changes();
    });
    // pointer position in chart units (the viewBox is the chart's size, so these are px)
    const at = (event: PointerEvent) => {
      const box = this.chart.getBoundingClientRect();
      const x = ((event.clientX - box.left) / Math.max(box.width, 1)) * this.width;
      const y = ((event.clientY - box.top) / Math.max(box.height, 1)) * this.height;
      const span = this.width - MARGIN.left - MARGIN.right;
      const layer = Math.round(((x - MARGIN.left) / span) * (this.p.nLayers - 1));
      return { layer: Math.min(Math.max(layer, 0), this.p.nLayers - 1), y };
    };
    this.on(this.chart, "pointerdown", (event: PointerEvent) => this.setLayer(at(event).layer));
    this.on(this.chart, "pointermove", (event: PointerEvent) => {
      const { layer, y } = at(event);
      if (event.buttons & 1) return this.setLayer(layer);
      // with many regions, the curve under the pointer is drawn bold and read first
      const hidden = this.hidden;
      const R = this.p.regions.length;
      this.hover(nearestCurve(R, layer, y, (r, l) => (hidden[r] ? NaN : this.y(this.values[l * R + r]))));
      this.showReadout(layer);
    });
    this.on(this.chart, "pointerleave", () => {
      this.hover(-1);
      this.showReadout(this.layer);
    });
    for (const name of ["change:query", "change:head", "change:normalize", "change:hidden", "change:region"]) {
      const handler = () => this.update();
      this.model.on(name, handler);
      this.cleanups.push(() => this.model.off(name, handler));
    }
    const moved = () => this.moveCursor();
    this.model.on("change:layer", moved);
    this.cleanups.push(() => this.model.off("change:layer", moved));
  }

  private get layer(): number {
    return Math.min(Math.max(this.model.get("layer") | 0, 0), this.p.nLayers - 1);
  }

  private setLayer(layer: number): void {
    if (layer === this.layer) return;
    this.model.set("layer", layer);
    this.model.save_changes();
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }

  /** Recompute the curves (query, head, normalisation, hidden or selected
   * regions changed, or a running capture sent more layers). */
  update(): void {
    const p = this.p;
    const mode = NORMALIZATIONS.includes(this.model.get("normalize")) ? this.model.get("normalize") : "raw";
    this.select.value = mode;
    const sizes = p.regions.map((r) => r.tokenIndices.length);
    const hidden = this.hidden;
    const keep = hidden.map((hide) => !hide);
    const R = p.regions.length;
    // while a capture runs, only the layers computed so far are drawn and normalised
    const done = layersDone(p);
    const mass = rawMasses(p, this.queryIndex(), this.headIndex()).subarray(0, done * R);
    this.values = new Float64Array(p.nLayers * R).fill(NaN);
    this.values.set(normalize(mass, done, sizes, mode, keep));
    let max = 0;
    for (const v of this.values) if (Number.isFinite(v) && v > max) max = v;
    this.yMax = max > 0 ? max : 1;
    this.yLabels.forEach((label, i) => (label.textContent = format([0, 0.5, 1][i] * this.yMax)));
    for (let r = 0; r < R; r++) {
      const points: string[] = [];
      for (let l = 0; l < p.nLayers; l++) {
        const v = this.values[l * R + r];
        if (Number.isFinite(v)) points.push(`${this.x(l).toFixed(1)},${this.y(v).toFixed(1)}`);
      }
      this.lines[r].setAttribute("points", points.join(" "));
    }
    this.styleLegend(hidden);
    this.moveCursor();
  }

  /** Draw region `r`'s curve bold and the others faint while the pointer is
   * on it or on its legend entry (-1: back to the selection). */
  private hover(r: number): void {
    if (r === this.hovered) return;
    this.hovered = r;
    this.styleLegend(this.hidden);
  }

  private styleLegend(hidden: boolean[]): void {
    const selected = this.p.regions.findIndex((region) => region.name === this.model.get("region"));
    const bold = this.hovered >= 0 ? this.hovered : selected;
    for (let r = 0; r < this.p.regions.length; r++) {
      this.boxes[r].checked = !hidden[r];
      this.chips[r].classList.toggle("tw-off", hidden[r]);
      this.picks[r].classList.toggle("tw-selected", r === selected);
      const line = this.lines[r];
      line.setAttribute("stroke-width", r === bold ? BOLD_WIDTH : LINE_WIDTH);
      line.setAttribute("stroke-opacity", bold < 0 || r === bold ? "1" : this.hovered >= 0 ? "0.2" : "0.35");
    }
    // the selected curve on top (a hovered one stands out by the others fading)
    if (selected >= 0) this.chart.insertBefore(this.lines[selected], this.cursor);
  }

  private moveCursor(): void {
    const x = this.x(this.layer).toFixed(1);
    this.cursor.setAttribute("x1", x);
    this.cursor.setAttribute("x2", x);
    this.showReadout(this.layer);
  }

  private showReadout(layer: number): void {
    const R = this.p.regions.length;
    if (layer >= layersDone(this.p)) {
      this.readout.textContent = `layer ${layer}: not computed yet`;
      return;
    }
    const hidden = this.hidden;
    // the curve under the pointer first
    const order = this.p.regions.map((_, r) => r);
    if (this.hovered >= 0) order.sort((a, b) => Number(b === this.hovered) - Number(a === this.hovered));
    const parts = order
      .map((r) => (hidden[r] ? "" : `${this.p.regions[r].name} ${format(this.values[layer * R + r])}`))
      .filter(Boolean);
    this.readout.textContent = `layer ${layer}: ${parts.join(" \u00b7 ")}`;
  }

  /** Normalised value drawn for (layer, region), for tests and tools. */
  value(layer: number, region: number): number {
    return this.values[layer * this.p.regions.length + region];
  }
}
