// A small SVG line chart over the layers: curves with optional bands (a mean
// and its interval), dashed or solid, and a cursor at the selected layer.
// Clicking or dragging on it picks a layer; the curve under the pointer is drawn
// bold with its name and value. It takes its box's width (fit.ts), keeping
// its height to width ratio within bounds. Used by the variant diff and the
// aggregate view; the explorer's CurvesPanel draws plain curves itself.

import { format, svg } from "./curves";
import { fitWidth, heightFor, nearestCurve } from "./fit";
import { h } from "./model";

export interface Series {
  label: string;
  color: string;
  /** (layer,) values; NaN leaves a gap. */
  values: ArrayLike<number>;
  /** (layer,) band edges, or null for no band (NaN where unknown). */
  low: ArrayLike<number> | null;
  high: ArrayLike<number> | null;
  dashed?: boolean;
}

/** The size a chart is built with: its height to width ratio, and its size
 * before it is laid out (in jsdom, always). */
export interface ChartSize {
  width: number;
  height: number;
}

/** Line colours of variants or sets: a baseline grey (drawn dashed), then distinct hues. */
export const VARIANT_COLOURS = ["#57606a", "#cf222e", "#0969da", "#1a7f37", "#8250df", "#bf8700", "#e16f24", "#1b7c83"];

/** Colour of variant `v`; 0 is the baseline's grey. */
export function variantColour(v: number): string {
  return v === 0 ? VARIANT_COLOURS[0] : VARIANT_COLOURS[1 + ((v - 1) % (VARIANT_COLOURS.length - 1))];
}

/** A variant's name, marked as the baseline when it is one and its name does not say so. */
export function baselineName(name: string, v: number): string {
  return v === 0 && name !== "baseline" ? `${name} (baseline)` : name;
}

/** A legend chip of variant `v`: its line (dashed grey for the baseline, v = 0)
 * and its name, `detail` appended. The variant diff and the aggregate view
 * share it, so the two read the same way in one notebook. */
export function variantChip(name: string, v: number, detail = ""): HTMLSpanElement {
  const chip = h("span", "tw-chip");
  const swatch = chip.appendChild(h("span", v === 0 ? "tw-swatch tw-dashed" : "tw-swatch"));
  swatch.style.color = variantColour(v);
  if (v !== 0) swatch.style.backgroundColor = variantColour(v);
  chip.append(baselineName(name, v) + detail);
  return chip;
}

const MARGIN = { left: 44, right: 10, top: 8, bottom: 26 };

/** Runs of consecutive layers where every given array is finite. */
export function finiteRuns(n: number, ...arrays: ArrayLike<number>[]): [number, number][] {
  const runs: [number, number][] = [];
  let start = -1;
  for (let l = 0; l <= n; l++) {
    const ok = l < n && arrays.every((a) => Number.isFinite(a[l]));
    if (ok && start < 0) start = l;
    if (!ok && start >= 0) {
      runs.push([start, l]);
      start = -1;
    }
  }
  return runs;
}

export class BandChart {
  readonly root: SVGSVGElement;
  private layer = 0;
  private yMin = 0;
  private yMax = 1;
  private size: ChartSize;
  private axes: SVGGElement;
  private content: SVGGElement;
  private cursor: SVGLineElement;
  private label: SVGTextElement;
  private yLabels: SVGTextElement[] = [];
  private series: Series[] = [];
  private lines: SVGPolylineElement[][] = []; // per series, one per finite run
  private cleanups: (() => void)[] = [];

  constructor(
    private nLayers: number,
    private built: ChartSize,
    onLayer: (layer: number) => void,
  ) {
    this.size = { ...built };
    const { width, height } = built;
    this.root = svg("svg", { height, viewBox: `0 0 ${width} ${height}`, class: "tw-chart tw-band-chart" });
    this.axes = this.root.appendChild(svg("g", { class: "tw-axes" }));
    this.buildAxes();
    this.content = this.root.appendChild(svg("g", { class: "tw-series" }));
    this.cursor = this.root.appendChild(
      svg("line", { y1: MARGIN.top, y2: height - MARGIN.bottom, stroke: "#1f6feb", "stroke-width": 1.5, class: "tw-cursor" }),
    );
    this.label = this.root.appendChild(svg("text", { x: width - MARGIN.right, y: MARGIN.top + 10, "text-anchor": "end", class: "tw-tick tw-hover-label" }));
    const at = (event: PointerEvent) => {
      const box = this.root.getBoundingClientRect();
      const { width, height } = this.size;
      const x = ((event.clientX - box.left) / Math.max(box.width, 1)) * width;
      const y = ((event.clientY - box.top) / Math.max(box.height, 1)) * height;
      const span = width - MARGIN.left - MARGIN.right;
      const layer = Math.round(((x - MARGIN.left) / span) * (nLayers - 1));
      return { layer: Math.min(Math.max(layer, 0), nLayers - 1), y };
    };
    const down = (event: PointerEvent) => onLayer(at(event).layer);
    const move = (event: PointerEvent) => {
      const { layer, y } = at(event);
      if (event.buttons & 1) return onLayer(layer);
      const values = this.series.map((s) => s.values);
      this.hover(nearestCurve(values.length, layer, y, (s, l) => this.y(values[s][l])), layer);
    };
    const leave = () => this.hover(-1, 0);
    this.root.addEventListener("pointerdown", down);
    this.root.addEventListener("pointermove", move);
    this.root.addEventListener("pointerleave", leave);
    this.cleanups.push(
      () => this.root.removeEventListener("pointerdown", down),
      () => this.root.removeEventListener("pointermove", move),
      () => this.root.removeEventListener("pointerleave", leave),
      fitWidth(this.root, (width) => this.layout(width)),
    );
  }

  /** Lay the chart out `width` px wide, its height in proportion (within bounds). */
  layout(width: number): void {
    const { width: w0, height: h0 } = this.built;
    this.size = { width, height: heightFor(width, h0 / w0, h0 * 0.9, h0 * 1.6) };
    this.root.setAttribute("viewBox", `0 0 ${width} ${this.size.height}`);
    this.root.setAttribute("height", String(this.size.height));
    this.cursor.setAttribute("y2", String(this.size.height - MARGIN.bottom));
    this.label.setAttribute("x", String(width - MARGIN.right));
    this.buildAxes();
    this.draw(this.series);
  }

  /** The chart's size in CSS px. */
  get width(): number {
    return this.size.width;
  }

  /** Series `s` bold and named with its value at `layer`, the others faint (-1: none). */
  private hover(s: number, layer: number): void {
    this.lines.forEach((lines, i) => {
      for (const line of lines) {
        line.classList.toggle("tw-dim", s >= 0 && i !== s);
        line.classList.toggle("tw-hot", i === s);
      }
    });
    this.label.textContent = s >= 0 ? `${this.series[s].label} ${format(this.series[s].values[layer])} @ layer ${layer}` : "";
  }

  x(layer: number): number {
    const span = Math.max(this.nLayers - 1, 1);
    return MARGIN.left + (layer / span) * (this.size.width - MARGIN.left - MARGIN.right);
  }

  y(value: number): number {
    const { height } = this.size;
    const range = this.yMax - this.yMin || 1;
    return height - MARGIN.bottom - ((value - this.yMin) / range) * (height - MARGIN.top - MARGIN.bottom);
  }

  private buildAxes(): void {
    const { width, height } = this.size;
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
    const last = this.nLayers - 1;
    // a tick every ~50 px
    const step = Math.max(1, Math.ceil(last / Math.max(2, Math.floor((width - MARGIN.left - MARGIN.right) / 50))));
    for (let layer = 0; layer <= last; layer += step) {
      const tick = axes.appendChild(svg("text", { x: this.x(layer), y: bottom + 13, "text-anchor": "middle", class: "tw-tick" }));
      tick.textContent = String(layer);
    }
  }

  /** Draw these series (replacing the previous ones), scaled to fit them and 0. */
  draw(series: Series[]): void {
    this.series = series;
    this.lines = series.map(() => []);
    let low = 0;
    let high = 0;
    for (const s of series) {
      for (const a of [s.values, s.low, s.high]) {
        if (!a) continue;
        for (let l = 0; l < this.nLayers; l++) {
          const v = a[l];
          if (Number.isFinite(v)) {
            low = Math.min(low, v);
            high = Math.max(high, v);
          }
        }
      }
    }
    this.yMin = low;
    this.yMax = high > low ? high : low + 1;
    this.yLabels.forEach((label, i) => (label.textContent = format(this.yMin + [0, 0.5, 1][i] * (this.yMax - this.yMin))));
    this.content.replaceChildren();
    if (this.yMin < 0) {
      const zero = this.y(0).toFixed(1);
      this.content.appendChild(svg("line", { x1: MARGIN.left, x2: this.size.width - MARGIN.right, y1: zero, y2: zero, stroke: "#bbb", "stroke-dasharray": "2 2", class: "tw-zero" }));
    }
    for (const s of series) {
      if (s.low && s.high) {
        for (const [a, b] of finiteRuns(this.nLayers, s.low, s.high)) {
          const points: string[] = [];
          for (let l = a; l < b; l++) points.push(this.point(l, s.high[l]));
          for (let l = b - 1; l >= a; l--) points.push(this.point(l, s.low[l]));
          const band = this.content.appendChild(svg("polygon", { points: points.join(" "), fill: s.color, "fill-opacity": 0.16, stroke: "none", class: "tw-band" }));
          band.appendChild(svg("title")).textContent = `${s.label} (band)`;
        }
      }
    }
    series.forEach((s, i) => {
      for (const [a, b] of finiteRuns(this.nLayers, s.values)) {
        const points: string[] = [];
        for (let l = a; l < b; l++) points.push(this.point(l, s.values[l]));
        const attributes: Record<string, string | number> = { points: points.join(" "), fill: "none", stroke: s.color, "stroke-width": 1.8, class: "tw-line" };
        if (s.dashed) attributes["stroke-dasharray"] = "5 3";
        const line = this.content.appendChild(svg("polyline", attributes));
        line.dataset.series = s.label;
        line.appendChild(svg("title")).textContent = s.label;
        this.lines[i].push(line);
      }
    });
    this.hover(-1, 0);
    this.setLayer(this.layer);
  }

  private point(layer: number, value: number): string {
    return `${this.x(layer).toFixed(1)},${this.y(value).toFixed(1)}`;
  }

  setLayer(layer: number): void {
    this.layer = layer;
    const x = this.x(layer).toFixed(1);
    this.cursor.setAttribute("x1", x);
    this.cursor.setAttribute("x2", x);
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}
