// Cross-layer cosine view (a tw.CrossLayerCosine,
// tealeaves_widgets/widgets/residuals.py): the cosine between one source's
// states at every pair of layers, at one query, as a layer x layer heatmap.
// The layer cursor (the slider, or a click on a cell) frames its row and
// column, and a chart beside the map draws that row: how the state at the
// cursor's layer aligns with every other layer's. Hover a cell for its value.

import { DIVERGING_CENTRE, type Palette, divergingIndex, divergingPalette, heatPalette } from "./colour";
import { LayerSlider, ModelSelect } from "./controls";
import { format, svg } from "./curves";
import { Listeners } from "./listeners";
import { type AnyModel, type RenderProps, h, mount, showTip } from "./model";
import { CROSS_SCALES, type CrossLayer, type CrossScale, crossAt, decodeCrossLayer, offDiagonalRange, scaleBounds } from "./residual_wire";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { ThemeTracker } from "./theme";

export interface CrossLayerState {
  payload: unknown;
  layer: number;
  scale: CrossScale;
}

const SCALE_LABELS: Record<CrossScale, string> = {
  range: "smallest value \u2192 1",
  signed: "\u22121 \u2192 1 (0 = background)",
};
const SOURCE_TEXT: Record<string, string> = {
  hidden_in: "the block input",
  hidden_out: "the block output (residual stream after the block)",
  attn_out: "the attention module's output",
  mlp_out: "the MLP module's output",
  attn_term: "the attention term added to the stream",
  mlp_term: "the MLP term added to the stream",
};
const CHART = { width: 300, height: 170, left: 40, right: 10, top: 10, bottom: 28 };

/** Palette index (1..255, 0 for NaN) of a value on the heat palette between `low` and `high`. */
export function heatIndex(value: number, low: number, high: number): number {
  if (!Number.isFinite(value)) return 0;
  const t = high > low ? (value - low) / (high - low) : 1;
  return 1 + Math.round(254 * Math.min(Math.max(t, 0), 1));
}

export class CrossLayerViewUI {
  readonly root: HTMLDivElement;
  readonly c: CrossLayer;
  private cells: HTMLTableCellElement[] = []; // (row, column) order
  private slider: LayerSlider;
  private legend!: HTMLDivElement;
  private profile!: SVGPolylineElement;
  private profileAxes!: SVGGElement;
  private profileMark!: SVGCircleElement;
  private caption!: HTMLSpanElement;
  private tip!: HTMLDivElement;
  private readonly painted = new ThemeTracker();
  private heat: Palette = heatPalette([255, 255, 255], [31, 35, 40]);
  private diverging: Palette = divergingPalette([255, 255, 255], [31, 35, 40]);
  private destroyables: { destroy(): void }[] = [];
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<CrossLayerState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    const c = (this.c = decodeCrossLayer(model.get("payload")));
    this.root = h("div", "tw-root tw-cross-layer-view");
    addStyle(this.root);
    const what = SOURCE_TEXT[c.source] ?? c.source;
    this.root.appendChild(
      h(
        "div",
        "tw-diff-title",
        `Cross-layer cosine of ${c.source} (${what}) at query ${c.query.name} @${c.query.pos} ${JSON.stringify(c.query.token)} \u2014 ${c.nLayers} \u00d7 ${c.nLayers} layers \u2014 ${c.modelId}`,
      ),
    );
    const bar = this.root.appendChild(h("div", "tw-controls"));
    this.slider = new LayerSlider(model, c.nLayers);
    bar.appendChild(this.slider.root);
    const select = new ModelSelect(model, "scale", "colours", "tw-scale-select", CROSS_SCALES.map((s) => [s, SCALE_LABELS[s]] as [CrossScale, string]));
    bar.appendChild(select.root);
    this.destroyables.push(this.slider, select);
    bar.appendChild(downloadButton(this.root, "cross-layer"));
    this.legend = this.root.appendChild(h("div", "tw-legend tw-scale tw-cross-legend"));
    const body = this.root.appendChild(h("div", "tw-panels tw-cross-body"));
    this.buildGrid(body);
    this.buildProfile(body);
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    this.listeners.onModel("change:layer", () => this.moveCursor());
    this.listeners.onModel("change:scale", () => this.paint(true));
    this.listeners.onThemeOrLayout(this.root, () => this.paint());
    this.paint(true);
    this.moveCursor();
  }

  get scale(): CrossScale {
    const value = this.model.get("scale");
    return CROSS_SCALES.includes(value) ? value : "range";
  }

  get layer(): number {
    return this.slider.layer;
  }

  private buildGrid(parent: HTMLElement): void {
    const c = this.c;
    const panel = parent.appendChild(h("div", "tw-panel tw-cross-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Layers"));
    header.append(" row \u00d7 column; click a cell to put the cursor on its row");
    const scroll = panel.appendChild(h("div", "tw-gates-scroll"));
    const table = scroll.appendChild(h("table", "tw-cross-grid"));
    const size = Math.max(6, Math.min(18, Math.floor(520 / Math.max(c.nLayers, 1))));
    table.style.setProperty("--tw-cell", `${size}px`);
    const labelEvery = Math.max(1, Math.ceil(12 / size));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    head.appendChild(h("th", "", ""));
    for (let j = 0; j < c.nLayers; j++) head.appendChild(h("th", "tw-cross-col", j % labelEvery === 0 ? String(j) : ""));
    const body = table.appendChild(h("tbody"));
    this.cells = new Array(c.nLayers * c.nLayers);
    for (let i = 0; i < c.nLayers; i++) {
      const tr = body.appendChild(h("tr"));
      tr.appendChild(h("th", "tw-cross-row", i % labelEvery === 0 ? String(i) : ""));
      for (let j = 0; j < c.nLayers; j++) {
        const td = tr.appendChild(h("td", "tw-cross-cell"));
        td.dataset.row = String(i);
        td.dataset.col = String(j);
        td.dataset.value = String(crossAt(c, i, j));
        this.cells[i * c.nLayers + j] = td;
      }
    }
    this.listeners.on(table, "mouseover", (event: MouseEvent) => {
      const td = (event.target as HTMLElement).closest?.("td.tw-cross-cell") as HTMLTableCellElement | null;
      if (!td) return;
      const i = Number(td.dataset.row);
      const j = Number(td.dataset.col);
      showTip(this.tip, this.root, td, [
        ["layers", `${i} and ${j}`],
        ["cosine", format(crossAt(c, i, j))],
      ]);
    });
    this.listeners.on(table, "mouseleave", () => (this.tip.style.display = "none"));
    this.listeners.on(table, "click", (event: MouseEvent) => {
      const td = (event.target as HTMLElement).closest?.("td.tw-cross-cell") as HTMLTableCellElement | null;
      if (!td) return;
      this.model.set("layer", Number(td.dataset.row));
      this.model.save_changes();
    });
  }

  private buildProfile(parent: HTMLElement): void {
    const panel = parent.appendChild(h("div", "tw-panel tw-cross-profile"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Row of the cursor"));
    this.caption = header.appendChild(h("span"));
    const { width, height } = CHART;
    const chart = panel.appendChild(svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "tw-chart tw-profile-chart" }));
    this.profileAxes = chart.appendChild(svg("g"));
    this.profile = chart.appendChild(svg("polyline", { fill: "none", "stroke-width": 1.8, class: "tw-line tw-profile-line" }));
    this.profile.style.stroke = "var(--tw-accent)";
    this.profileMark = chart.appendChild(svg("circle", { r: 3.5, class: "tw-profile-mark" }));
    this.profileMark.style.fill = "var(--tw-accent)";
    panel.appendChild(
      h(
        "div",
        "tw-overview-note",
        "The cosine between the state at the cursor's layer and at every layer. Residual states share a few large dimensions, so raw cosines are often high everywhere; the map's colours span the matrix's own range by default.",
      ),
    );
  }

  /** Colour the cells on the scale shown (`force`: even when the theme did not change). */
  paint(force = false): void {
    const theme = this.painted.next(this.root, force, (theme) => {
      this.heat = heatPalette(theme.background, theme.text);
      this.diverging = divergingPalette(theme.background, theme.text);
    });
    if (!theme) return;
    const c = this.c;
    const scale = this.scale;
    const [low, high] = scaleBounds(c, scale);
    for (let i = 0; i < c.nLayers; i++) {
      for (let j = 0; j < c.nLayers; j++) {
        const value = crossAt(c, i, j);
        const td = this.cells[i * c.nLayers + j];
        if (scale === "signed") {
          const index = divergingIndex(value, 1);
          td.style.backgroundColor = index < 0 || index === DIVERGING_CENTRE ? "" : this.diverging.colours[index];
        } else {
          const index = heatIndex(value, low, high);
          td.style.backgroundColor = index > 0 ? this.heat.colours[index] : "";
        }
      }
    }
    this.drawLegend(scale, low, high);
  }

  private drawLegend(scale: CrossScale, low: number, high: number): void {
    this.legend.replaceChildren();
    const colours = scale === "signed" ? this.diverging.colours : this.heat.colours;
    const last = colours.length - 1;
    const start = scale === "signed" ? 0 : 1;
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `${colours[Math.round(start + t * (last - start))]} ${Math.round(t * 100)}%`);
    this.legend.appendChild(h("span", "tw-bar-label", format(low)));
    const bar = this.legend.appendChild(h("span", "tw-bar"));
    bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    this.legend.appendChild(h("span", "tw-bar-label", format(high)));
    const [min, max] = offDiagonalRange(this.c);
    const note = Number.isFinite(min) ? `off the diagonal: ${format(min)} to ${format(max)}` : "one layer: nothing off the diagonal";
    this.legend.appendChild(h("span", "tw-bar-label tw-scale-note", note));
  }

  /** Frame the cursor's row and column and draw its row. */
  moveCursor(): void {
    const c = this.c;
    const l = this.layer;
    for (let i = 0; i < c.nLayers; i++) {
      for (let j = 0; j < c.nLayers; j++) this.cells[i * c.nLayers + j].classList.toggle("tw-cross-cursor", i === l || j === l);
    }
    this.caption.textContent = ` layer ${l} against every layer`;
    const { width, height, left, right, top, bottom } = CHART;
    let low = 0;
    for (let j = 0; j < c.nLayers; j++) if (Number.isFinite(crossAt(c, l, j))) low = Math.min(low, crossAt(c, l, j));
    const bottomValue = low < 0 ? -1 : 0;
    const x = (j: number) => (c.nLayers <= 1 ? (left + width - right) / 2 : left + (j / (c.nLayers - 1)) * (width - left - right));
    const y = (v: number) => height - bottom - ((v - bottomValue) / (1 - bottomValue)) * (height - top - bottom);
    this.profileAxes.replaceChildren();
    for (const v of [bottomValue, (bottomValue + 1) / 2, 1]) {
      this.profileAxes.appendChild(svg("line", { x1: left - 3, x2: width - right, y1: y(v), y2: y(v), class: v === 0 ? "tw-zero" : "tw-grid" }));
      this.profileAxes.appendChild(svg("text", { x: left - 5, y: y(v) + 4, "text-anchor": "end", class: "tw-tick" })).textContent = format(v);
    }
    const step = Math.max(1, Math.ceil((c.nLayers - 1) / 8));
    for (let j = 0; j < c.nLayers; j += step) {
      this.profileAxes.appendChild(svg("text", { x: x(j), y: height - bottom + 13, "text-anchor": "middle", class: "tw-tick" })).textContent = String(j);
    }
    this.profileAxes.appendChild(svg("text", { x: width - right, y: height - 3, "text-anchor": "end", class: "tw-tick" })).textContent = "layer";
    const points: string[] = [];
    for (let j = 0; j < c.nLayers; j++) {
      const v = crossAt(c, l, j);
      if (Number.isFinite(v)) points.push(`${x(j).toFixed(1)},${y(v).toFixed(1)}`);
    }
    this.profile.setAttribute("points", points.join(" "));
    this.profile.dataset.layer = String(l);
    this.profileMark.setAttribute("cx", String(x(l)));
    this.profileMark.setAttribute("cy", String(y(Number.isFinite(crossAt(c, l, l)) ? crossAt(c, l, l) : 1)));
  }

  destroy(): void {
    this.listeners.dispose();
    for (const item of this.destroyables.splice(0)) item.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<CrossLayerState>) => mount(model, el, () => new CrossLayerViewUI(model, el)),
};
