// Head grid view (a tw.HeadGrid, tealeaves_widgets/widgets/head_grid.py):
// every head of one layer as a small (query x key) heatmap, and the head
// picked (a click on its thumbnail) enlarged with token labels on its axes;
// hovering the large map shows the query token, the key token and the weight.
//
// The maps are canvases painted from a colour lookup table (putImageData).
// The thumbnails are pooled in the browser as core/head_grid.py pools
// (head_grid_wire.ts). Colour scales run from 0 (the background) to each
// head's largest weight: "sqrt" (the default) by the square root of the
// weight, so the weights beside the first-token sink stay visible; "no-first"
// linear with the first key column left out of the range (said under the
// map); "linear" plain. Token text is only ever set as textContent.

import { type Palette, formatWeight, heatPalette } from "./colour";
import { ModelSelect } from "./controls";
import {
  GRID_SCALES,
  type GridScale,
  type HeadGrid,
  blockText,
  blockTokens,
  decodeHeadGrid,
  factorFor,
  gridIndices,
  headMatrix,
  poolMatrix,
  scaleTop,
  tokenLabel,
} from "./head_grid_wire";
import { Listeners } from "./listeners";
import { type AnyModel, type RenderProps, h, mount } from "./model";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { ThemeTracker, parseColour } from "./theme";

export interface HeadGridState {
  payload: unknown;
  head: number;
  scale: GridScale;
}

const SCALE_LABELS: Record<GridScale, string> = {
  sqrt: "\u221a weight, 0 to the head's max",
  "no-first": "linear, first key column left out",
  linear: "linear, 0 to the head's max",
};
/** Said under every scale: what the range leaves out. */
const FIRST_ROW = "The range leaves out the first query row (it can attend only to itself).";
/** Most blocks per side of a thumbnail (pooled further above it). */
export const THUMB_BLOCKS = 96;
const THUMB_PX = 96;
/** Side of the large map on the page, in CSS pixels. */
export const LARGE_PX = 520;
/** Least room, in CSS pixels, an axis label needs. */
const LABEL_PX = 12;

const GRID_CSS = `
.tw-head-grid-body { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
.tw-head-thumbs { display: grid; grid-template-columns: repeat(auto-fill, minmax(${THUMB_PX + 8}px, 1fr)); gap: 6px; max-width: ${3 * (THUMB_PX + 14)}px; flex: 0 1 auto; }
.tw-head-thumb { display: flex; flex-direction: column; align-items: center; gap: 2px; padding: 3px; border: 1px solid var(--tw-border); border-radius: 4px; background: none; color: inherit; font: inherit; cursor: pointer; }
.tw-head-thumb:hover { border-color: var(--tw-fg-muted); }
.tw-head-thumb.tw-selected { border-color: var(--tw-accent); box-shadow: 0 0 0 1px var(--tw-accent); }
.tw-head-thumb canvas { width: ${THUMB_PX}px; height: ${THUMB_PX}px; image-rendering: pixelated; border: 1px solid var(--tw-border); }
.tw-head-thumb span { font-size: 11px; color: var(--tw-fg-muted); font-variant-numeric: tabular-nums; }
.tw-head-large-panel { flex: 0 1 auto; }
.tw-head-large { display: grid; grid-template-columns: auto ${LARGE_PX}px; grid-template-rows: auto ${LARGE_PX}px; }
.tw-head-corner { font-size: 10px; color: var(--tw-fg-muted); align-self: end; justify-self: end; padding: 0 4px 4px 0; text-align: right; }
.tw-head-keys { position: relative; height: 72px; }
.tw-head-queries { position: relative; width: 92px; }
.tw-head-label { position: absolute; font-size: 10px; line-height: 1; white-space: pre; color: var(--tw-fg); font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.tw-head-queries .tw-head-label { right: 4px; transform: translateY(-50%); }
.tw-head-keys .tw-head-label { bottom: 4px; writing-mode: vertical-rl; transform: translateX(-50%) rotate(180deg); }
.tw-head-canvas { width: ${LARGE_PX}px; height: ${LARGE_PX}px; border: 1px solid var(--tw-border-strong); box-sizing: border-box; cursor: crosshair; }
.tw-head-canvas.tw-upscaled { image-rendering: pixelated; }
.tw-head-legend { margin-top: 6px; }
.tw-head-note { max-width: ${LARGE_PX + 92}px; }
`;

/** Palette entries as RGBA bytes; index 0 (no weight) transparent. */
function paletteBytes(palette: Palette): Uint8ClampedArray<ArrayBuffer> {
  const bytes = new Uint8ClampedArray(palette.colours.length * 4);
  palette.colours.forEach((colour, i) => {
    const rgb = parseColour(colour) ?? [0, 0, 0];
    bytes.set([...rgb, i === 0 ? 0 : 255], i * 4);
  });
  return bytes;
}

/** Paint `indices` (side x side) on `canvas` through the RGBA table `colours`. */
function paintCanvas(canvas: HTMLCanvasElement, indices: Uint8Array, side: number, colours: Uint8ClampedArray): void {
  if (canvas.width !== side) canvas.width = side;
  if (canvas.height !== side) canvas.height = side;
  const context = canvas.getContext("2d");
  if (!context) return; // no canvas (jsdom): the indices stay for inspection
  const image = context.createImageData(side, side);
  const data = image.data;
  for (let k = 0; k < indices.length; k++) {
    const c = indices[k] * 4;
    data[k * 4] = colours[c];
    data[k * 4 + 1] = colours[c + 1];
    data[k * 4 + 2] = colours[c + 2];
    data[k * 4 + 3] = colours[c + 3];
  }
  context.putImageData(image, 0, 0);
}

interface Thumb {
  button: HTMLButtonElement;
  canvas: HTMLCanvasElement;
  side: number;
  values: Float32Array;
  indices: Uint8Array;
}

export class HeadGridViewUI {
  readonly root: HTMLDivElement;
  readonly g: HeadGrid;
  readonly thumbs: Thumb[] = [];
  /** The palette indices last computed for the large map (size x size). */
  largeIndices: Uint8Array;
  private large!: HTMLCanvasElement;
  private title!: HTMLElement;
  private queries!: HTMLDivElement;
  private keys!: HTMLDivElement;
  private legend!: HTMLDivElement;
  private note!: HTMLDivElement;
  private tip!: HTMLDivElement;
  private readonly painted = new ThemeTracker();
  private colours: Uint8ClampedArray;
  private palette: Palette;
  private destroyables: { destroy(): void }[] = [];
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<HeadGridState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    const g = (this.g = decodeHeadGrid(model.get("payload")));
    this.palette = heatPalette([255, 255, 255], [31, 35, 40]);
    this.colours = paletteBytes(this.palette);
    this.largeIndices = new Uint8Array(g.size * g.size);
    this.root = h("div", "tw-root tw-head-grid-view");
    addStyle(this.root);
    this.root.appendChild(h("style")).textContent = GRID_CSS;
    const layers = g.nLayers === null ? "" : ` of ${g.nLayers}`;
    const blocks = g.pool === 1 ? `${g.nTokens} tokens` : `${g.nTokens} tokens in blocks of ${g.pool} (${g.size} \u00d7 ${g.size})`;
    this.root.appendChild(h("div", "tw-diff-title", `Layer ${g.layer}${layers}: ${g.nHeads} heads, query rows \u00d7 key columns, ${blocks} \u2014 ${g.modelId}`));
    const bar = this.root.appendChild(h("div", "tw-controls"));
    const select = new ModelSelect(model, "scale", "colours", "tw-scale-select", GRID_SCALES.map((s) => [s, SCALE_LABELS[s]] as [GridScale, string]));
    bar.appendChild(select.root);
    this.destroyables.push(select);
    bar.appendChild(h("span", "tw-bar-label", "click a head to enlarge it; hover the large map for the tokens and the weight"));
    bar.appendChild(downloadButton(this.root, () => `head-grid-L${g.layer}H${this.head}`));
    const body = this.root.appendChild(h("div", "tw-head-grid-body"));
    this.buildThumbs(body);
    this.buildLarge(body);
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    this.listeners.onModel("change:head", () => this.showHead());
    this.listeners.onModel("change:scale", () => this.paint(true));
    this.listeners.onThemeOrLayout(this.root, () => this.paint());
    this.paint(true);
  }

  get head(): number {
    const head = this.model.get("head") | 0;
    return head >= 0 && head < this.g.nHeads ? head : 0;
  }

  get scale(): GridScale {
    const value = this.model.get("scale");
    return GRID_SCALES.includes(value) ? value : "sqrt";
  }

  /** "H4" or "H4 (KV 1)" under grouped-query attention. */
  headName(head: number): string {
    const { nHeads, nKvHeads } = this.g;
    if (nKvHeads === null || nKvHeads === nHeads || nKvHeads <= 0) return `H${head}`;
    return `H${head} (KV ${Math.floor(head / (nHeads / nKvHeads))})`;
  }

  private buildThumbs(parent: HTMLElement): void {
    const g = this.g;
    const panel = parent.appendChild(h("div", "tw-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Heads"));
    const factor = factorFor(g.size, THUMB_BLOCKS);
    const tokensPerCell = g.pool * factor;
    header.append(tokensPerCell === 1 ? " one cell per token" : ` one cell per ${tokensPerCell} tokens`);
    const grid = panel.appendChild(h("div", "tw-head-thumbs"));
    for (let head = 0; head < g.nHeads; head++) {
      const { side, values } = poolMatrix(headMatrix(g, head), g.size, factor, g.nTokens, g.pool);
      const button = grid.appendChild(h("button", "tw-head-thumb"));
      button.type = "button";
      button.dataset.head = String(head);
      button.title = `Enlarge head ${head}`;
      const canvas = button.appendChild(h("canvas"));
      canvas.width = side;
      canvas.height = side;
      button.appendChild(h("span", "", this.headName(head)));
      this.thumbs.push({ button, canvas, side, values, indices: new Uint8Array(side * side) });
    }
    this.listeners.on(grid, "click", (event: MouseEvent) => {
      const button = (event.target as HTMLElement).closest?.("button.tw-head-thumb") as HTMLButtonElement | null;
      if (!button) return;
      this.model.set("head", Number(button.dataset.head));
      this.model.save_changes();
    });
  }

  private buildLarge(parent: HTMLElement): void {
    const g = this.g;
    const panel = parent.appendChild(h("div", "tw-panel tw-head-large-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    this.title = header.appendChild(h("b", "tw-head-title"));
    header.append(" rows: queries, columns: keys");
    const grid = panel.appendChild(h("div", "tw-head-large"));
    grid.appendChild(h("div", "tw-head-corner", "query \u2193 key \u2192"));
    this.keys = grid.appendChild(h("div", "tw-head-keys"));
    this.queries = grid.appendChild(h("div", "tw-head-queries"));
    this.large = grid.appendChild(h("canvas", `tw-head-canvas${g.size < LARGE_PX ? " tw-upscaled" : ""}`));
    this.large.width = g.size;
    this.large.height = g.size;
    this.buildLabels();
    this.legend = panel.appendChild(h("div", "tw-legend tw-scale tw-head-legend"));
    this.note = panel.appendChild(h("div", "tw-overview-note tw-head-note"));
    this.listeners.on(this.large, "mousemove", (event: MouseEvent) => this.hover(event));
    this.listeners.on(this.large, "mouseleave", () => (this.tip.style.display = "none"));
  }

  /** Token labels on both axes: every block when they fit, else every k-th. */
  private buildLabels(): void {
    const g = this.g;
    const cell = LARGE_PX / g.size;
    const every = Math.max(1, Math.ceil(LABEL_PX / cell));
    for (let b = 0; b < g.size; b += every) {
      const [start] = blockTokens(g.nTokens, g.pool, b);
      const text = g.pool > 1 ? String(start) : every > 1 ? `${start} ${tokenLabel(g.tokens[start], 9)}` : tokenLabel(g.tokens[start]);
      const title = blockText(g, g.pool, b);
      const centre = `${((b + 0.5) * cell).toFixed(1)}px`;
      const row = this.queries.appendChild(h("div", "tw-head-label", text));
      row.style.top = centre;
      row.title = `query ${title}`;
      const column = this.keys.appendChild(h("div", "tw-head-label", text));
      column.style.left = centre;
      column.title = `key ${title}`;
    }
  }

  /** The block (row or column) under a point of the large map. */
  private blockAt(offset: number, extent: number): number {
    return Math.min(this.g.size - 1, Math.max(0, Math.floor((offset / Math.max(extent, 1)) * this.g.size)));
  }

  private hover(event: MouseEvent): void {
    const g = this.g;
    // the image fills the content box, inside the border
    const canvas = this.large;
    const box = canvas.getBoundingClientRect();
    const i = this.blockAt(event.clientY - box.top - canvas.clientTop, canvas.clientHeight || box.height);
    const j = this.blockAt(event.clientX - box.left - canvas.clientLeft, canvas.clientWidth || box.width);
    const w = headMatrix(g, this.head)[i * g.size + j];
    const after = blockTokens(g.nTokens, g.pool, j)[0] > blockTokens(g.nTokens, g.pool, i)[1] - 1;
    const lines: [string, string][] = [
      [g.pool > 1 ? "queries" : "query", blockText(g, g.pool, i)],
      [g.pool > 1 ? "keys" : "key", blockText(g, g.pool, j)],
      ["weight", after ? "\u2014 (the key comes after the query: masked)" : formatWeight(w)],
    ];
    if (g.pool > 1 && !after) lines.push(["", "pooled: mean over the queries of the summed weight on the keys"]);
    this.tip.replaceChildren();
    for (const [key, value] of lines) {
      const line = this.tip.appendChild(h("div"));
      if (key) line.appendChild(h("b", "", `${key}: `));
      line.append(value); // text, never markup
    }
    const root = this.root.getBoundingClientRect();
    this.tip.style.left = `${event.clientX - root.left + 14}px`;
    this.tip.style.top = `${event.clientY - root.top + 14}px`;
    this.tip.style.display = "block";
    this.tip.dataset.query = String(i);
    this.tip.dataset.key = String(j);
  }

  /** Recolour everything on the scale shown (`force`: even when the theme did not change). */
  paint(force = false): void {
    const theme = this.painted.next(this.root, force, (theme) => {
      this.palette = heatPalette(theme.background, theme.text);
      this.colours = paletteBytes(this.palette);
    });
    if (!theme) return;
    const scale = this.scale;
    for (const thumb of this.thumbs) {
      gridIndices(thumb.values, thumb.side, scale, thumb.indices);
      paintCanvas(thumb.canvas, thumb.indices, thumb.side, this.colours);
    }
    this.showHead();
  }

  /** Draw the head picked large, mark its thumbnail, and say how it is coloured. */
  showHead(): void {
    const g = this.g;
    const head = this.head;
    const scale = this.scale;
    const matrix = headMatrix(g, head);
    gridIndices(matrix, g.size, scale, this.largeIndices);
    paintCanvas(this.large, this.largeIndices, g.size, this.colours);
    this.large.dataset.head = String(head);
    this.thumbs.forEach((thumb, k) => thumb.button.classList.toggle("tw-selected", k === head));
    this.title.textContent = `Head ${head}${this.headName(head).slice(`H${head}`.length)} of layer ${g.layer}`;
    this.drawLegend(matrix, scale);
  }

  private drawLegend(matrix: Float32Array, scale: GridScale): void {
    const g = this.g;
    const top = scaleTop(matrix, g.size, scale);
    const colours = this.palette.colours;
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `${colours[Math.max(1, Math.round(t * 255))]} ${Math.round(t * 100)}%`);
    this.legend.replaceChildren();
    this.legend.appendChild(h("span", "tw-bar-label", "0"));
    const bar = this.legend.appendChild(h("span", "tw-bar"));
    bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    this.legend.appendChild(h("span", "tw-bar-label", formatWeight(top)));
    if (scale === "sqrt") this.legend.appendChild(h("span", "tw-bar-label", `(\u221a: the middle colour is ${formatWeight(top / 4)})`));
    let first = 0;
    for (let i = 0; i < g.size; i++) first += matrix[i * g.size];
    first /= g.size;
    const column = g.pool > 1 ? `first key column (tokens 0\u2013${g.pool - 1})` : "first token's column";
    const sink = `On average a query puts ${formatWeight(first)} of its weight on the ${column}.`;
    const notes: Record<GridScale, string> = {
      sqrt: `Colour by the square root of the weight, so the weights beside the first-token sink stay visible. ${sink}`,
      "no-first": `The ${column} is left out of the colour range; its cells are clipped at the darkest colour. ${sink}`,
      linear: `Linear: a strong first-token sink leaves the rest of the map faint. ${sink}`,
    };
    const pooled = g.pool > 1 ? ` Blocks of ${g.pool} tokens: a cell is the mean over its queries of the summed weight on its keys, so rows still sum to 1.` : "";
    this.note.textContent = `${notes[scale]} ${FIRST_ROW}${pooled}`;
  }

  destroy(): void {
    this.listeners.dispose();
    for (const item of this.destroyables.splice(0)) item.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<HeadGridState>) => mount(model, el, () => new HeadGridViewUI(model, el)),
};
