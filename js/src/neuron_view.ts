// Neuron views (tealeaves_widgets/widgets/neurons.py): the most variable
// neurons of a layer (a tw.NeuronActivations) as a neurons x tokens heatmap,
// and the neurons whose mean differs most across prompts (a
// tw.NeuronComparison) as a neurons x prompts heatmap. One entry serves both
// (the payload's kind picks the captions).
//
// The map is one canvas pixel per cell, scaled up by CSS, coloured from the
// theme's diverging palette centred at 0 and spanning -vmax..vmax (vmax: the
// largest |value| over the scored columns, so a first-token sink left out
// of the ranking saturates rather than washing out the rest; its column label
// is struck through). Row labels: neuron index and score; column labels: the
// token text or prompt label, always as textContent. Hover a cell for its
// value; click a row to mark its neuron (synced as `neuron`).

import { type Palette, divergingIndex, divergingPalette } from "./colour";
import { format } from "./curves";
import { Listeners } from "./listeners";
import { type AnyModel, type RenderProps, h, mount, showTip } from "./model";
import { type NeuronMatrix, decodeNeurons, valueAt } from "./neuron_wire";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { ThemeTracker, parseColour } from "./theme";

export interface NeuronState {
  payload: unknown;
  neuron: number;
}

const SOURCE_TEXT: Record<string, string> = {
  mlp_act: "MLP activations (the down projection's input)",
  hidden_out: "residual stream after the block",
};
const ROW_HEIGHT = 14;
const LABEL_EVERY_PX = 11;

const CSS = `
.tw-neuron-scroll { overflow: auto; max-height: 640px; max-width: 100%; border: 1px solid var(--tw-border); }
.tw-neuron-grid { display: grid; grid-template-columns: auto auto; align-items: start; width: max-content; }
.tw-neuron-corner { font-size: 10px; color: var(--tw-fg-muted); padding: 2px 6px; align-self: end; }
.tw-neuron-cols { position: relative; height: 84px; }
.tw-neuron-col { position: absolute; bottom: 2px; font: 10px/1 ui-monospace, SFMono-Regular, Menlo, monospace; color: var(--tw-fg);
  writing-mode: vertical-rl; transform: rotate(180deg); white-space: pre; overflow: hidden; max-height: 80px; text-align: left; }
.tw-neuron-col.tw-unscored { color: var(--tw-fg-muted); text-decoration: line-through; }
.tw-neuron-rows { display: flex; flex-direction: column; }
.tw-neuron-row { font: 10px/${ROW_HEIGHT}px ui-monospace, SFMono-Regular, Menlo, monospace; height: ${ROW_HEIGHT}px; padding: 0 6px;
  color: var(--tw-fg); white-space: nowrap; cursor: pointer; text-align: right; font-variant-numeric: tabular-nums; }
.tw-neuron-row .tw-neuron-score { color: var(--tw-fg-muted); margin-left: 6px; }
.tw-neuron-row.tw-selected { font-weight: 700; outline: 1px solid var(--tw-accent); }
.tw-neuron-map { position: relative; }
.tw-neuron-canvas { display: block; image-rendering: pixelated; cursor: crosshair; }
.tw-neuron-cursor, .tw-neuron-mark { position: absolute; pointer-events: none; box-sizing: border-box; display: none; }
.tw-neuron-cursor { outline: 1px solid var(--tw-fg); }
.tw-neuron-mark { left: 0; outline: 2px solid var(--tw-accent); }
`;

/** How wide a column is drawn: wide enough to hover, narrow enough that a
 * long prompt stays a few screens wide. */
export function columnWidth(nColumns: number, compare: boolean): number {
  if (compare) return Math.max(24, Math.min(64, Math.floor(720 / Math.max(nColumns, 1))));
  return Math.max(3, Math.min(16, Math.floor(960 / Math.max(nColumns, 1))));
}

/** Palette index of every cell (row-major), as `divergingIndex` on -vmax..vmax (-1: NaN). */
export function cellIndices(m: NeuronMatrix): Int16Array {
  const out = new Int16Array(m.values.length);
  for (let i = 0; i < m.values.length; i++) out[i] = divergingIndex(m.values[i], m.vmax);
  return out;
}

/** A token as one visible line: white space shown as the symbols used elsewhere. */
export function tokenLabel(token: string): string {
  return token.replace(/ /g, "\u00b7").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5") || "\u2205";
}

export class NeuronViewUI {
  readonly root: HTMLDivElement;
  readonly m: NeuronMatrix;
  readonly cellWidth: number;
  readonly indices: Int16Array;
  private canvas!: HTMLCanvasElement;
  private cursor!: HTMLDivElement;
  private mark!: HTMLDivElement;
  private rows: HTMLDivElement[] = [];
  private legend!: HTMLDivElement;
  private tip!: HTMLDivElement;
  private palette: Palette = divergingPalette([255, 255, 255], [31, 35, 40]);
  private readonly painted = new ThemeTracker();
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<NeuronState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    const m = (this.m = decodeNeurons(model.get("payload")));
    const compare = m.kind === "neuron_compare";
    this.cellWidth = columnWidth(m.columns.length, compare);
    this.indices = cellIndices(m);
    this.root = h("div", `tw-root tw-neuron-view${compare ? " tw-neuron-compare" : ""}`);
    addStyle(this.root);
    this.root.appendChild(h("style", "", CSS));
    const what = SOURCE_TEXT[m.source] ?? m.source;
    const where = m.positionsLabel === "all" ? "all tokens" : m.positionsLabel;
    const title = compare
      ? `Neurons across ${m.columns.length} prompts \u2014 layer ${m.layer} ${m.source} (${what}); mean over ${m.positionsLabel === "all" ? "each prompt's tokens" : `each prompt's ${where}`}; ${m.rule} \u2014 ${m.modelId}`
      : `Neurons \u00d7 tokens \u2014 layer ${m.layer} ${m.source} (${what}) over ${where}; ${m.rule} \u2014 ${m.modelId}`;
    this.root.appendChild(h("div", "tw-diff-title", title));
    const bar = this.root.appendChild(h("div", "tw-controls"));
    this.legend = bar.appendChild(h("div", "tw-legend tw-scale tw-neuron-legend"));
    bar.appendChild(downloadButton(this.root, compare ? "neuron-compare" : "neurons"));
    if (m.note) this.root.appendChild(h("div", "tw-overview-note tw-neuron-note", m.note));
    this.buildMap();
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    this.listeners.onModel("change:neuron", () => this.showMark());
    this.listeners.onThemeOrLayout(this.root, () => this.paint());
    this.paint(true);
    this.showMark();
  }

  private buildMap(): void {
    const m = this.m;
    const cw = this.cellWidth;
    const width = m.columns.length * cw;
    const scroll = this.root.appendChild(h("div", "tw-neuron-scroll"));
    const grid = scroll.appendChild(h("div", "tw-neuron-grid"));
    grid.appendChild(h("div", "tw-neuron-corner", m.kind === "neuron_compare" ? "neuron  spread" : "neuron  sd"));
    const cols = grid.appendChild(h("div", "tw-neuron-cols"));
    cols.style.width = `${width}px`;
    const every = Math.max(1, Math.ceil(LABEL_EVERY_PX / cw));
    m.columns.forEach((column, c) => {
      if (c % every !== 0) return;
      const label = cols.appendChild(h("div", `tw-neuron-col${column.scored ? "" : " tw-unscored"}`, m.kind === "neuron_compare" ? column.label : tokenLabel(column.label)));
      label.style.left = `${c * cw + Math.max(0, (cw - 11) / 2)}px`;
      label.dataset.col = String(c);
      label.title = m.kind === "neuron_compare" ? `${column.label}: mean over ${column.position} positions` : `position ${column.position}${column.scored ? "" : " (not scored)"}`;
    });
    const rows = grid.appendChild(h("div", "tw-neuron-rows"));
    m.neurons.forEach((neuron, r) => {
      const row = rows.appendChild(h("div", "tw-neuron-row", `n${neuron}`));
      row.appendChild(h("span", "tw-neuron-score", format(m.score[r])));
      row.dataset.neuron = String(neuron);
      row.dataset.rank = String(r);
      this.rows.push(row);
    });
    this.listeners.on(rows, "click", (event: MouseEvent) => {
      const row = (event.target as HTMLElement).closest?.(".tw-neuron-row") as HTMLElement | null;
      if (!row) return;
      const neuron = Number(row.dataset.neuron);
      this.model.set("neuron", this.model.get("neuron") === neuron ? -1 : neuron);
      this.model.save_changes();
    });
    const map = grid.appendChild(h("div", "tw-neuron-map"));
    const canvas = (this.canvas = map.appendChild(h("canvas", "tw-neuron-canvas")));
    canvas.width = Math.max(1, m.columns.length);
    canvas.height = Math.max(1, m.neurons.length);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${m.neurons.length * ROW_HEIGHT}px`;
    this.cursor = map.appendChild(h("div", "tw-neuron-cursor"));
    this.cursor.style.width = `${cw}px`;
    this.cursor.style.height = `${ROW_HEIGHT}px`;
    this.mark = map.appendChild(h("div", "tw-neuron-mark"));
    this.mark.style.width = `${width}px`;
    this.mark.style.height = `${ROW_HEIGHT}px`;
    this.listeners.on(canvas, "mousemove", (event: MouseEvent) => {
      const box = canvas.getBoundingClientRect();
      this.hover(Math.floor((event.clientY - box.top) / ROW_HEIGHT), Math.floor((event.clientX - box.left) / cw));
    });
    this.listeners.on(canvas, "mouseleave", () => this.hover(-1, -1));
    this.listeners.on(canvas, "click", (event: MouseEvent) => {
      const box = canvas.getBoundingClientRect();
      const r = Math.floor((event.clientY - box.top) / ROW_HEIGHT);
      if (r < 0 || r >= m.neurons.length) return;
      this.model.set("neuron", m.neurons[r]);
      this.model.save_changes();
    });
  }

  /** Lines of the tooltip of cell (r, c). */
  describe(r: number, c: number): [string, string][] {
    const m = this.m;
    const column = m.columns[c];
    const lines: [string, string][] = [["neuron", `${m.neurons[r]} (${m.kind === "neuron_compare" ? "spread" : "sd"} ${format(m.score[r])})`]];
    if (m.kind === "neuron_compare") {
      lines.push(["prompt", column.label], ["mean", `${format(valueAt(m, r, c))} over ${column.position} positions`]);
    } else {
      lines.push(["token", `${JSON.stringify(column.label)} @${column.position}${column.scored ? "" : " (not scored)"}`], ["value", format(valueAt(m, r, c))]);
    }
    return lines;
  }

  /** Frame cell (r, c) and show its value; out of range hides both. */
  hover(r: number, c: number): void {
    const m = this.m;
    if (r < 0 || c < 0 || r >= m.neurons.length || c >= m.columns.length) {
      this.cursor.style.display = "none";
      this.tip.style.display = "none";
      return;
    }
    this.cursor.style.left = `${c * this.cellWidth}px`;
    this.cursor.style.top = `${r * ROW_HEIGHT}px`;
    this.cursor.style.display = "block";
    this.cursor.dataset.row = String(r);
    this.cursor.dataset.col = String(c);
    showTip(this.tip, this.root, this.cursor, this.describe(r, c));
  }

  /** Outline the marked neuron's row. */
  showMark(): void {
    const r = this.m.neurons.indexOf(this.model.get("neuron"));
    this.rows.forEach((row, i) => row.classList.toggle("tw-selected", i === r));
    this.mark.style.display = r < 0 ? "none" : "block";
    this.mark.style.top = `${Math.max(r, 0) * ROW_HEIGHT}px`;
  }

  /** Colour the cells from the theme's palette (`force`: even when the theme did not change). */
  paint(force = false): void {
    const theme = this.painted.next(this.root, force, (theme) => {
      this.palette = divergingPalette(theme.background, theme.text);
    });
    if (!theme) return;
    this.drawLegend();
    const context = this.canvas.getContext?.("2d");
    if (!context) return; // no canvas (a DOM without one): the cells stay unpainted
    const rgb = this.palette.colours.map((colour) => parseColour(colour) ?? [0, 0, 0]);
    const image = context.createImageData(this.canvas.width, this.canvas.height);
    const data = image.data;
    for (let i = 0; i < this.indices.length; i++) {
      const index = this.indices[i];
      const [red, green, blue] = index < 0 ? [128, 128, 128] : rgb[index];
      data.set([red, green, blue, 255], i * 4);
    }
    context.putImageData(image, 0, 0);
  }

  /** The CSS colour of cell (r, c) (for tests and tools). */
  colourAt(r: number, c: number): string {
    const index = this.indices[r * this.m.columns.length + c];
    return index < 0 ? "rgb(128, 128, 128)" : this.palette.colours[index];
  }

  private drawLegend(): void {
    const colours = this.palette.colours;
    const last = colours.length - 1;
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `${colours[Math.round(t * last)]} ${Math.round(t * 100)}%`);
    this.legend.replaceChildren();
    this.legend.appendChild(h("span", "tw-bar-label", format(-this.m.vmax)));
    const bar = this.legend.appendChild(h("span", "tw-bar"));
    bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    this.legend.appendChild(h("span", "tw-bar-label", format(this.m.vmax)));
    const scope = this.m.kind === "neuron_compare" ? "the largest |mean|" : "the largest |value| over the scored columns";
    this.legend.appendChild(h("span", "tw-bar-label tw-scale-note", `0 = background; \u00b1${format(this.m.vmax)} = ${scope}`));
  }

  destroy(): void {
    this.listeners.dispose();
  }
}

export default {
  render: ({ model, el }: RenderProps<NeuronState>) => mount(model, el, () => new NeuronViewUI(model, el)),
};
