// Residual decomposition view (a tw.ResidualDecomposition,
// tealeaves_widgets/widgets/residuals.py): per layer, at the query picked,
// the norms of the block input, attention term, MLP term and block output as
// lines, the cosine of each contribution with the block output as lines, a
// layer cursor (the slider, or a click on a chart) and a table of the
// cursor's numbers. Block output = block input + attention term + MLP term.

import { LayerSlider, ModelSelect } from "./controls";
import { format, svg } from "./curves";
import { type AnyModel, type RenderProps, h, mount } from "./model";
import { COMPONENT_LABELS, type Residual, cosineAt, decodeResidual, maxIdentityError, normAt } from "./residual_wire";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";

export type NormScale = "linear" | "log";
export const NORM_SCALES: NormScale[] = ["linear", "log"];

export interface ResidualState {
  payload: unknown;
  layer: number;
  query: string;
  norm_scale: NormScale;
}

/** The y axis of the norms chart: its bounds, a map to 0..1 and its ticks.
 * "log" spans the decades of the positive values (norms of 0 are left out). */
export function normAxis(values: number[], scale: NormScale): { map: (v: number) => number; ticks: number[] } {
  const finite = values.filter((v) => Number.isFinite(v));
  if (scale === "log") {
    const positive = finite.filter((v) => v > 0);
    let low = Math.floor(Math.log10(positive.length ? Math.min(...positive) : 1));
    let high = Math.ceil(Math.log10(positive.length ? Math.max(...positive) : 10));
    if (high <= low) [low, high] = [low, low + 1];
    const ticks: number[] = [];
    const step = Math.max(1, Math.ceil((high - low) / 4));
    for (let d = low; d <= high; d += step) ticks.push(10 ** d);
    return { map: (v) => (v > 0 ? (Math.log10(v) - low) / (high - low) : NaN), ticks };
  }
  const high = Math.max(0, ...finite);
  const top = high > 0 ? high : 1;
  return { map: (v) => v / top, ticks: [0, top / 2, top] };
}

/** Line colour and dash of each component (input, attention, MLP, output). */
export const COMPONENT_STYLES: { colour: string; dash: string }[] = [
  { colour: "var(--tw-fg-muted)", dash: "4 3" },
  { colour: "var(--tw-accent)", dash: "" },
  { colour: "#d9730d", dash: "" },
  { colour: "var(--tw-fg-strong)", dash: "" },
];
const CHART = { width: 360, height: 200, left: 46, right: 10, top: 10, bottom: 28 };

/** An axis label: a few significant digits, large values without decimals. */
function tick(v: number): string {
  return Math.abs(v) >= 100 ? String(Math.round(v)) : Number.isInteger(v) ? String(v) : format(v);
}

interface Chart {
  svg: SVGSVGElement;
  lines: SVGPolylineElement[];
  cursor: SVGLineElement;
  axes: SVGGElement;
}

export class ResidualViewUI {
  readonly root: HTMLDivElement;
  readonly r: Residual;
  private norms!: Chart;
  private cosines!: Chart;
  private slider: LayerSlider;
  private tableBody!: HTMLTableSectionElement;
  private caption!: HTMLSpanElement;
  private identity!: HTMLDivElement;
  private destroyables: { destroy(): void }[] = [];
  private cleanups: (() => void)[] = [];

  constructor(
    private model: AnyModel<ResidualState>,
    el: HTMLElement,
  ) {
    const r = (this.r = decodeResidual(model.get("payload")));
    this.root = h("div", "tw-root tw-residual-view");
    addStyle(this.root);
    const kind = r.parallel ? "attention and MLP in parallel (the terms are the two modules' outputs)" : "sequential blocks (the terms are read off the residual stream, after any post-norm)";
    this.root.appendChild(h("div", "tw-diff-title", `Residual decomposition \u2014 ${r.nLayers} layers, ${kind} \u2014 ${r.modelId}`));
    const bar = this.root.appendChild(h("div", "tw-controls"));
    if (r.queries.length > 1) {
      const choices = r.queries.map((q) => [q.name, `${q.name} @${q.pos} ${JSON.stringify(q.token)}`] as [string, string]);
      const select = new ModelSelect(model, "query", "query", "tw-query-select", choices);
      bar.appendChild(select.root);
      this.destroyables.push(select);
    } else if (r.queries.length === 1) {
      const q = r.queries[0];
      bar.appendChild(h("span", "tw-bar-label tw-query-label", `query ${q.name} @${q.pos} ${JSON.stringify(q.token)}`));
    }
    this.slider = new LayerSlider(model, r.nLayers);
    bar.appendChild(this.slider.root);
    this.destroyables.push(this.slider);
    const scale = new ModelSelect(model, "norm_scale", "norms", "tw-norm-scale-select", NORM_SCALES.map((s) => [s, s === "log" ? "log axis" : "linear axis"] as [NormScale, string]));
    bar.appendChild(scale.root);
    this.destroyables.push(scale);
    bar.appendChild(downloadButton(this.root, "residual"));
    const legend = this.root.appendChild(h("div", "tw-legend tw-residual-legend"));
    COMPONENT_LABELS.forEach((label, c) => {
      const chip = legend.appendChild(h("span", "tw-chip"));
      const swatch = chip.appendChild(h("span", "tw-swatch"));
      swatch.style.backgroundColor = COMPONENT_STYLES[c].colour;
      chip.append(label);
    });
    const body = this.root.appendChild(h("div", "tw-panels tw-residual-body"));
    this.norms = this.buildChart(body, "Norms", " |x| per layer", "tw-norm-chart", 4);
    this.cosines = this.buildChart(body, "Cosine with the block output", " per layer", "tw-cos-chart", 3);
    this.buildTable(body);
    this.root.appendChild(
      h(
        "div",
        "tw-overview-note",
        "block output = block input + attention term + MLP term: each term is what the block adds to the residual stream. A contribution's cosine with the output says how much of the output points its way; the norms say how large each is.",
      ),
    );
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    this.onModel("change:query", () => this.draw());
    this.onModel("change:norm_scale", () => this.draw());
    this.onModel("change:layer", () => this.moveCursor());
    this.draw();
  }

  /** Row of the query shown (the payload's default when the synced name is unknown). */
  get query(): number {
    const index = this.r.queries.findIndex((q) => q.name === this.model.get("query"));
    return index >= 0 ? index : this.r.defaultQuery;
  }

  get layer(): number {
    return this.slider.layer;
  }

  get normScale(): NormScale {
    const value = this.model.get("norm_scale");
    return NORM_SCALES.includes(value) ? value : "linear";
  }

  private buildChart(parent: HTMLElement, title: string, subtitle: string, className: string, n: number): Chart {
    const panel = parent.appendChild(h("div", "tw-panel tw-residual-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", title));
    header.append(subtitle);
    const { width, height } = CHART;
    const chart = panel.appendChild(svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: `tw-chart tw-residual-chart ${className}` }));
    const axes = chart.appendChild(svg("g"));
    const lines: SVGPolylineElement[] = [];
    for (let c = 0; c < n; c++) {
      const line = chart.appendChild(svg("polyline", { fill: "none", "stroke-width": c === 3 ? 2.2 : 1.8, class: "tw-line tw-residual-line" }));
      line.style.stroke = COMPONENT_STYLES[c].colour;
      if (COMPONENT_STYLES[c].dash) line.setAttribute("stroke-dasharray", COMPONENT_STYLES[c].dash);
      line.dataset.component = COMPONENT_LABELS[c];
      line.appendChild(svg("title")).textContent = COMPONENT_LABELS[c];
      lines.push(line);
    }
    const cursor = chart.appendChild(svg("line", { y1: CHART.top, y2: height - CHART.bottom, "stroke-width": 1.5, class: "tw-cursor" }));
    const click = (event: MouseEvent) => {
      const box = chart.getBoundingClientRect();
      if (!(box.width > 0)) return;
      const x = ((event.clientX - box.left) / box.width) * width;
      this.setLayer(this.layerAt(x));
    };
    chart.addEventListener("click", click);
    this.cleanups.push(() => chart.removeEventListener("click", click));
    return { svg: chart, lines, cursor, axes };
  }

  private buildTable(parent: HTMLElement): void {
    const panel = parent.appendChild(h("div", "tw-panel tw-residual-table-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "At the cursor"));
    this.caption = header.appendChild(h("span"));
    const table = panel.appendChild(h("table", "tw-lens-table tw-residual-table"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    for (const text of ["", "norm", "cos with output"]) head.appendChild(h("th", "", text));
    this.tableBody = table.appendChild(h("tbody"));
    this.identity = panel.appendChild(h("div", "tw-overview-note tw-identity"));
  }

  private x(layer: number): number {
    const { width, left, right } = CHART;
    const n = this.r.nLayers;
    return n <= 1 ? (left + width - right) / 2 : left + (layer / (n - 1)) * (width - left - right);
  }

  private layerAt(x: number): number {
    const { width, left, right } = CHART;
    const n = this.r.nLayers;
    if (n <= 1) return 0;
    const t = (x - left) / (width - left - right);
    return Math.min(Math.max(Math.round(t * (n - 1)), 0), n - 1);
  }

  private setLayer(layer: number): void {
    this.model.set("layer", layer);
    this.model.save_changes();
  }

  /** Redraw both charts for the query shown, then the cursor. */
  draw(): void {
    const r = this.r;
    const q = this.query;
    const norms: number[] = [];
    for (let c = 0; c < 4; c++) for (let l = 0; l < r.nLayers; l++) norms.push(normAt(r, q, c, l));
    const axis = normAxis(norms, this.normScale);
    this.drawChart(this.norms, axis.map, (c, l) => normAt(r, q, c, l), axis.ticks);
    let low = 0;
    for (let c = 0; c < 3; c++) for (let l = 0; l < r.nLayers; l++) if (Number.isFinite(cosineAt(r, q, c, l))) low = Math.min(low, cosineAt(r, q, c, l));
    // cosines are read against 0 and 1; the axis goes below 0 only when a value does
    const bottom = low < 0 ? -1 : 0;
    this.drawChart(this.cosines, (v) => (v - bottom) / (1 - bottom), (c, l) => cosineAt(r, q, c, l), [bottom, (bottom + 1) / 2, 1]);
    this.moveCursor();
  }

  /** Draw the axes and lines of `chart`: `map` takes a value to 0 (bottom) .. 1 (top). */
  private drawChart(chart: Chart, map: (v: number) => number, value: (c: number, l: number) => number, ticks: number[]): void {
    const { width, height, left, right, top, bottom } = CHART;
    const y = (v: number) => height - bottom - map(v) * (height - top - bottom);
    chart.axes.replaceChildren();
    for (const v of ticks) {
      chart.axes.appendChild(svg("line", { x1: left - 3, x2: width - right, y1: y(v), y2: y(v), class: v === 0 ? "tw-zero" : "tw-grid" }));
      chart.axes.appendChild(svg("text", { x: left - 5, y: y(v) + 4, "text-anchor": "end", class: "tw-tick" })).textContent = tick(v);
    }
    const n = this.r.nLayers;
    const step = Math.max(1, Math.ceil((n - 1) / 8));
    for (let l = 0; l < n; l += step) {
      chart.axes.appendChild(svg("text", { x: this.x(l), y: height - bottom + 13, "text-anchor": "middle", class: "tw-tick" })).textContent = String(l);
    }
    chart.axes.appendChild(svg("text", { x: width - right, y: height - 3, "text-anchor": "end", class: "tw-tick" })).textContent = "layer";
    chart.lines.forEach((line, c) => {
      const points: string[] = [];
      for (let l = 0; l < n; l++) {
        const at = y(value(c, l));
        if (Number.isFinite(at)) points.push(`${this.x(l).toFixed(1)},${at.toFixed(1)}`);
      }
      line.setAttribute("points", points.join(" "));
    });
  }

  /** Move the cursor lines and refill the table for the layer selected. */
  moveCursor(): void {
    const r = this.r;
    const q = this.query;
    const l = this.layer;
    for (const chart of [this.norms, this.cosines]) {
      chart.cursor.setAttribute("x1", String(this.x(l)));
      chart.cursor.setAttribute("x2", String(this.x(l)));
    }
    const query = r.queries[q];
    this.caption.textContent = query ? ` layer ${l}, query ${query.name} @${query.pos} ${JSON.stringify(query.token)}` : ` layer ${l}`;
    this.tableBody.replaceChildren();
    COMPONENT_LABELS.forEach((label, c) => {
      const tr = this.tableBody.appendChild(h("tr"));
      tr.dataset.component = label;
      const name = tr.appendChild(h("td", "tw-residual-name"));
      const swatch = name.appendChild(h("span", "tw-swatch"));
      swatch.style.backgroundColor = COMPONENT_STYLES[c].colour;
      name.append(` ${label}`);
      const norm = normAt(r, q, c, l);
      const td = tr.appendChild(h("td", "tw-num tw-norm", format(norm)));
      td.dataset.value = String(norm);
      if (c < 3) {
        const cos = cosineAt(r, q, c, l);
        const cell = tr.appendChild(h("td", "tw-num tw-cos", format(cos)));
        cell.dataset.value = String(cos);
      } else {
        tr.appendChild(h("td", "tw-num", ""));
      }
    });
    const here = r.identityError[q * r.nLayers + l];
    this.identity.textContent = `|output \u2212 (input + attention + MLP)| at this layer: ${format(here)} (largest over the layers: ${format(maxIdentityError(r, q))})`;
  }

  private onModel(event: string, handler: () => void): void {
    this.model.on(event, handler);
    this.cleanups.push(() => this.model.off(event, handler));
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    for (const item of this.destroyables.splice(0)) item.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<ResidualState>) => mount(model, el, () => new ResidualViewUI(model, el)),
};
