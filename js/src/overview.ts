// Overview of a long prompt beside the heatmap's text. At 2,000 tokens the
// text box shows a fifth of the prompt; three small panels say where to look:
//
// - a layer x token map above the text (a canvas: one row per layer, one
//   column per token, or per bucket of tokens when they outnumber the pixels),
//   in the heatmap's colours and scale; the layer shown and the tokens in view
//   are marked; a click goes to that layer and scrolls the text to the
//   column's most attended token;
// - a layer x region matrix (SVG): each cell the region's attention at that
//   layer, normalised as the cooking curves are; a click goes to the layer,
//   selects the region and scrolls to its most attended token there;
// - the most attended tokens at the layer shown, ranked, with weight,
//   position and region; tokens masked out of the colour scale (the first
//   one, the attention sink, by default) are left out and the list says so;
//   a click scrolls to the token.
//
// The map and the matrix depend on the selection (query, head, scale, masks,
// normalisation), not on the layer: they are computed once per selection. A
// layer change moves two markers and ranks the row the heatmap just drew.

import { type AnyScale, type Palette, colourIndices, formatWeight, maxUnmasked, scaleRange, spansAllLayers } from "./colour";
import { type Exclusion, type Normalize, type RegionTree, curveValues, describeExclusion, defaultExclusion, format, regionTree, svg } from "./curves";
import { fitWidth } from "./fit";
import { h } from "./model";
import { parseColour } from "./theme";
import { type Payload, attentionRow, layersDone } from "./wire";

/** What the overview reads from the heatmap it sits in, and asks it to do. */
export interface OverviewHost {
  readonly p: Payload;
  readonly layer: number;
  readonly query: number;
  /** The selected head (the region masses of every head are in the payload). */
  readonly head: number | null;
  /** The head whose rows the heatmap draws: null (the average) while a head's rows are awaited. */
  readonly drawnHead: number | null;
  readonly region: number;
  readonly scale: AnyScale;
  readonly normalize: Normalize;
  /** What the curves leave out (the explorer's exclude; the default for a heatmap alone). */
  readonly exclusion: Exclusion;
  /** Whether the cooking curves are on the page (the explorer): the matrix says it follows them. */
  readonly withCurves: boolean;
  /** 1 for tokens left out of the colour scale (the first token, the template). */
  readonly masked: Uint8Array;
  readonly maskSink: boolean;
  readonly maskTemplate: boolean;
  readonly palette: Palette;
  setLayer(layer: number): void;
  /** Select region `r` (never clears it). */
  selectRegion(r: number): void;
  /** Scroll the text box to token `i` and mark it. */
  revealToken(i: number): void;
}

/** How many tokens the ranked list shows. */
export const TOP_K = 10;

// -- computations (pure, tested on their own) ----------------------------------

/** The column of the layer x token map that holds token `i`. */
export function columnOf(i: number, nTokens: number, cols: number): number {
  return Math.floor((i * cols) / nTokens);
}

/** The first token of column `col`. */
export function firstOfColumn(col: number, nTokens: number, cols: number): number {
  return Math.ceil((col * nTokens) / cols);
}

/** Columns of the map on `width` CSS px: one per token, or one per pixel when
 * the tokens outnumber them (each then holds ceil or floor of T / width tokens). */
export function columnsFor(nTokens: number, width: number): number {
  return Math.max(1, Math.min(nTokens, Math.floor(width)));
}

/** The layer x token map of one selection, (layer, column) row-major. */
export interface TokenGrid {
  cols: number;
  /** Colour index (as the heatmap computes it) of the column's darkest token. */
  index: Uint8Array;
  /** The column's most attended token not masked, -1 where none has weight. */
  hottest: Int32Array;
}

/**
 * The heatmap's colour index of every token at every layer computed, on the
 * heatmap's scale (per layer, or over all layers), reduced to `cols` columns:
 * a column takes its darkest token's colour, so one hot token in a bucket
 * stays visible. A head whose rows are not loaded draws the average, as the
 * heatmap does.
 */
export function tokenGrid(p: Payload, query: number, head: number | null, scale: AnyScale, masked: Uint8Array, cols: number): TokenGrid {
  const T = p.nTokens;
  const L = p.nLayers;
  const done = layersDone(p);
  const row = new Float32Array(T);
  const scratch = new Float32Array(T);
  const indices = new Uint8Array(T);
  const index = new Uint8Array(L * cols);
  const hottest = new Int32Array(L * cols).fill(-1);
  const limit = p.queries[query].pos + 1;
  const load = (layer: number) => attentionRow(p, layer, query, head, row) || attentionRow(p, layer, query, null, row);
  let allLayersMax = 0;
  if (spansAllLayers(scale)) {
    for (let layer = 0; layer < done; layer++) {
      load(layer);
      allLayersMax = Math.max(allLayersMax, maxUnmasked(row, masked));
    }
  }
  for (let layer = 0; layer < done; layer++) {
    load(layer);
    colourIndices(row, masked, scaleRange(scale, row, masked, limit, allLayersMax, scratch), indices, scratch);
    const base = layer * cols;
    for (let i = 0; i < T; i++) {
      if (masked[i] || !(row[i] > 0)) continue;
      const cell = base + Math.floor((i * cols) / T);
      if (indices[i] > index[cell]) index[cell] = indices[i];
      const best = hottest[cell];
      if (best < 0 || row[i] > row[best]) hottest[cell] = i;
    }
  }
  return { cols, index, hottest };
}

/** The `k` largest weights of `row` among tokens before `limit` (the query's
 * position + 1) and not masked: their tokens, by weight, ties by position. */
export function topTokens(row: Float32Array, masked: Uint8Array, limit: number, k: number): number[] {
  const top: number[] = [];
  const end = Math.min(limit, row.length);
  for (let i = 0; i < end; i++) {
    const w = row[i];
    if (masked[i] || !(w > 0)) continue;
    if (top.length === k) {
      if (w <= row[top[k - 1]]) continue;
      top.pop();
    }
    let at = top.length;
    while (at > 0 && row[top[at - 1]] < w) at--;
    top.splice(at, 0, i);
  }
  return top;
}

/** Region `r`'s most attended token in `row` (masked ones left out), else its first. */
export function hottestIn(tokens: ArrayLike<number>, row: Float32Array, masked: Uint8Array): number {
  let best = -1;
  let first = Infinity;
  for (let j = 0; j < tokens.length; j++) {
    const i = tokens[j];
    first = Math.min(first, i);
    if (!masked[i] && row[i] > 0 && (best < 0 || row[i] > row[best])) best = i;
  }
  return best >= 0 ? best : Number.isFinite(first) ? first : -1;
}

/** The first token of a region, -1 when it has none. */
export function firstToken(tokens: ArrayLike<number>): number {
  let first = -1;
  for (let j = 0; j < tokens.length; j++) if (first < 0 || tokens[j] < first) first = tokens[j];
  return first;
}

/** The first and last token whose line lies (partly) inside the scroll box,
 * by binary searches over the tokens' offsets (they grow with the index). */
export function visibleTokens(box: HTMLElement, spans: HTMLElement[]): [number, number] {
  const top = box.scrollTop;
  const bottom = top + box.clientHeight;
  // the first index where `test` holds (it holds from some index on)
  const search = (test: (span: HTMLElement) => boolean) => {
    let a = 0;
    let b = spans.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (test(spans[m])) b = m;
      else a = m + 1;
    }
    return a;
  };
  const first = Math.min(search((span) => span.offsetTop + span.offsetHeight > top), spans.length - 1);
  const end = search((span) => span.offsetTop >= bottom);
  return [first, Math.max(first, end - 1)];
}

/** What the matrix's values are, in words. */
export function describeNormalization(mode: Normalize, exclusion: Exclusion = defaultExclusion(mode)): string {
  const excluded = exclusion.first || exclusion.regions.length ? `, ${describeExclusion(exclusion)} excluded` : "";
  const what: Record<Normalize, string> = {
    raw: "attention mass",
    share: "share of the attention",
    "per-region": "each region scaled to its own min\u2013max over the layers",
    density: "attention per token",
  };
  return `${what[mode]}${excluded}`;
}

/** "rgb(r, g, b)" palette entries as bytes for an ImageData, index 0 transparent. */
function paletteBytes(palette: Palette): Uint8ClampedArray<ArrayBuffer> {
  const bytes = new Uint8ClampedArray(palette.colours.length * 4);
  palette.colours.forEach((colour, i) => {
    const rgb = parseColour(colour) ?? [0, 0, 0];
    bytes.set([...rgb, i === 0 ? 0 : 255], i * 4);
  });
  return bytes;
}

function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}

/** JSON.stringify of a token, cut to `n` characters with an ellipsis. */
function quoted(token: string, n = 24): string {
  const text = JSON.stringify(token);
  return text.length > n ? `${text.slice(0, n - 1)}\u2026` : text;
}

// -- the layer x token map ----------------------------------------------------------

/** Width of the map before it is laid out (and in jsdom). */
const MAP_WIDTH = 600;

class TokenMap {
  readonly root: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private box: HTMLDivElement;
  private ribbon: HTMLCanvasElement;
  private marker: HTMLDivElement;
  private band: HTMLDivElement;
  private queryMark: HTMLDivElement;
  private caption: HTMLSpanElement;
  private readout: HTMLSpanElement;
  readonly rowHeight: number;
  grid: TokenGrid | null = null;
  private colours: Uint8ClampedArray<ArrayBuffer> = new Uint8ClampedArray(0);
  private cleanups: (() => void)[] = [];

  constructor(
    private host: OverviewHost,
    private onResize: () => void,
  ) {
    const p = host.p;
    this.root = h("div", "tw-minimap");
    const head = this.root.appendChild(h("div", "tw-minimap-head"));
    head.appendChild(h("b", "", "Layers \u00d7 tokens"));
    this.caption = head.appendChild(h("span"));
    this.readout = head.appendChild(h("span", "tw-minimap-readout"));
    this.box = this.root.appendChild(h("div", "tw-minimap-box"));
    this.box.title = "Click: go to that layer and scroll the text to the most attended token there";
    this.rowHeight = clamp(Math.floor(120 / p.nLayers), 3, 10);
    this.canvas = this.box.appendChild(h("canvas", "tw-minimap-canvas"));
    this.canvas.style.height = `${p.nLayers * this.rowHeight}px`;
    this.ribbon = this.box.appendChild(h("canvas", "tw-minimap-ribbon"));
    this.ribbon.setAttribute("aria-hidden", "true");
    this.band = this.box.appendChild(h("div", "tw-minimap-view"));
    this.queryMark = this.box.appendChild(h("div", "tw-minimap-query"));
    this.marker = this.box.appendChild(h("div", "tw-minimap-layer"));
    this.marker.style.height = `${this.rowHeight}px`;
    this.on(this.box, "pointerdown", (event: PointerEvent) => this.click(event));
    this.on(this.box, "pointermove", (event: PointerEvent) => this.hover(event));
    this.on(this.box, "pointerleave", () => setText(this.readout, ""));
    if (typeof ResizeObserver !== "undefined") {
      let width = -1;
      const observer = new ResizeObserver(() => {
        const now = this.box.clientWidth;
        if (now === width || now === 0) return;
        width = now;
        if (this.grid && columnsFor(p.nTokens, now) !== this.grid.cols) this.onResize();
      });
      observer.observe(this.box);
      this.cleanups.push(() => observer.disconnect());
    }
  }

  private on<E extends Event>(target: EventTarget, type: string, handler: (event: E) => void): void {
    target.addEventListener(type, handler as EventListener);
    this.cleanups.push(() => target.removeEventListener(type, handler as EventListener));
  }

  /** Columns at the map's width now. */
  get columns(): number {
    return columnsFor(this.host.p.nTokens, this.box.clientWidth || MAP_WIDTH);
  }

  /** Draw a new selection's grid. */
  show(grid: TokenGrid, palette: Palette): void {
    this.grid = grid;
    this.colours = paletteBytes(palette);
    this.paint();
    this.paintRibbon();
    const p = this.host.p;
    const query = p.queries[this.host.query].pos;
    this.queryMark.style.left = `${(100 * columnOf(query, p.nTokens, grid.cols)) / grid.cols}%`;
    this.queryMark.style.width = `max(2px, ${100 / grid.cols}%)`;
    this.queryMark.title = `the query, token ${query}`;
    const per = p.nTokens / grid.cols;
    setText(
      this.caption,
      `layer 0 at the top; ${per <= 1 ? "one column per token" : `one column per ${per < 10 ? per.toFixed(1) : Math.round(per)} tokens (the darkest)`}; click to jump`,
    );
  }

  /** The palette changed (a theme switch): the same grid in its colours. */
  recolour(palette: Palette): void {
    this.colours = paletteBytes(palette);
    this.paint();
  }

  private paint(): void {
    const grid = this.grid;
    if (!grid) return;
    const L = this.host.p.nLayers;
    const canvas = this.canvas;
    if (canvas.width !== grid.cols) canvas.width = grid.cols;
    if (canvas.height !== L) canvas.height = L;
    const context = canvas.getContext("2d");
    if (!context) return;
    const image = context.createImageData(grid.cols, L);
    const data = image.data;
    const colours = this.colours;
    for (let cell = 0; cell < grid.index.length; cell++) {
      const c = grid.index[cell] * 4;
      data[cell * 4] = colours[c];
      data[cell * 4 + 1] = colours[c + 1];
      data[cell * 4 + 2] = colours[c + 2];
      data[cell * 4 + 3] = colours[c + 3];
    }
    context.putImageData(image, 0, 0);
  }

  /** Under the map, each column in its first token's region colour. */
  private paintRibbon(): void {
    const grid = this.grid!;
    const p = this.host.p;
    const canvas = this.ribbon;
    canvas.width = grid.cols;
    canvas.height = 1;
    const context = canvas.getContext("2d");
    if (!context) return;
    context.clearRect(0, 0, grid.cols, 1);
    for (let col = 0; col < grid.cols; col++) {
      const region = p.tokenRegion[Math.min(firstOfColumn(col, p.nTokens, grid.cols), p.nTokens - 1)];
      if (region < 0) continue;
      context.fillStyle = p.regions[region].color;
      context.fillRect(col, 0, 1, 1);
    }
  }

  /** Mark the layer shown (moved, not repainted: the marker is a layer of its own). */
  showLayer(layer: number): void {
    const move = `translateY(${layer * this.rowHeight}px)`;
    if (this.marker.style.transform !== move) this.marker.style.transform = move;
  }

  /** Mark the tokens in view in the text box. */
  showVisible(first: number, last: number): void {
    const grid = this.grid;
    if (!grid) return;
    const T = this.host.p.nTokens;
    const left = columnOf(first, T, grid.cols);
    const right = columnOf(last, T, grid.cols) + 1;
    this.band.style.left = `${(100 * left) / grid.cols}%`;
    this.band.style.width = `${(100 * (right - left)) / grid.cols}%`;
    this.band.title = `tokens ${first}\u2013${last} are in view`;
  }

  /** The layer and token under a pointer event (the column's most attended token). */
  at(event: { clientX: number; clientY: number }): { layer: number; token: number; col: number } | null {
    const grid = this.grid;
    if (!grid) return null;
    const p = this.host.p;
    const box = this.canvas.getBoundingClientRect();
    const width = box.width || this.box.clientWidth || MAP_WIDTH;
    const height = box.height || p.nLayers * this.rowHeight;
    const layer = clamp(Math.floor(((event.clientY - box.top) / height) * p.nLayers), 0, p.nLayers - 1);
    const col = clamp(Math.floor(((event.clientX - box.left) / width) * grid.cols), 0, grid.cols - 1);
    const hot = grid.hottest[layer * grid.cols + col];
    return { layer, col, token: hot >= 0 ? hot : Math.min(firstOfColumn(col, p.nTokens, grid.cols), p.nTokens - 1) };
  }

  private click(event: PointerEvent): void {
    const spot = this.at(event);
    if (!spot) return;
    this.host.setLayer(spot.layer);
    this.host.revealToken(spot.token);
  }

  private hover(event: PointerEvent): void {
    const spot = this.at(event);
    if (!spot) return;
    const p = this.host.p;
    const first = firstOfColumn(spot.col, p.nTokens, this.grid!.cols);
    const last = Math.max(first, firstOfColumn(spot.col + 1, p.nTokens, this.grid!.cols) - 1);
    const tokens = first === last ? `token ${first}` : `tokens ${first}\u2013${last}`;
    setText(this.readout, `layer ${spot.layer} \u00b7 ${tokens} \u00b7 ${quoted(p.tokens[spot.token] ?? "", 18)} @${spot.token}`);
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

// -- the layer x region matrix --------------------------------------------------------

const MATRIX_WIDTH = 270;
const MATRIX_MARGIN = { left: 24, right: 4, bottom: 4 };
/** Widest a region's column gets (few regions make a narrow matrix, not a wide one). */
const MAX_CELL = 44;
/** Characters of a region's name in the matrix's header. */
const NAME_CHARS = 14;

class RegionMatrix {
  readonly root: HTMLDivElement;
  readonly chart: SVGSVGElement;
  private note: HTMLDivElement;
  private readout: HTMLDivElement;
  private cells: SVGRectElement[] = [];
  private names: SVGTextElement[] = [];
  private swatches: SVGRectElement[] = [];
  private ticks: SVGTextElement[] = [];
  private frame: SVGRectElement;
  private cursor: SVGRectElement;
  private column: SVGRectElement;
  private width = MATRIX_WIDTH;
  private top: number;
  readonly rowHeight: number;
  private cellWidth = 0;
  values: Float64Array = new Float64Array(0);
  private shades: Uint8Array = new Uint8Array(0);
  private cleanups: (() => void)[] = [];

  constructor(
    private host: OverviewHost,
    private pick: (layer: number, region: number) => void,
  ) {
    const p = host.p;
    const R = p.regions.length;
    this.root = h("div", "tw-panel tw-matrix-panel");
    const header = this.root.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Regions \u00d7 layers"));
    this.note = this.root.appendChild(h("div", "tw-overview-note"));
    this.rowHeight = clamp(Math.floor(180 / p.nLayers), 4, 14);
    const longest = Math.min(NAME_CHARS, Math.max(1, ...p.regions.map((r) => r.name.length)));
    this.top = clamp(6 * longest + 12, 30, 96);
    this.chart = this.root.appendChild(svg("svg", { class: "tw-matrix", role: "img" }));
    this.chart.appendChild(svg("title")).textContent = "Attention per region (columns) and layer (rows); click a cell to go there";
    p.regions.forEach((region, r) => {
      const name = this.chart.appendChild(svg("text", { class: "tw-matrix-name" }));
      name.textContent = region.name.length > NAME_CHARS ? `${region.name.slice(0, NAME_CHARS - 1)}\u2026` : region.name;
      name.appendChild(svg("title")).textContent = region.parent ? `${region.name} (in ${region.parent})` : region.name;
      this.names.push(name);
      this.swatches.push(this.chart.appendChild(svg("rect", { fill: region.color, height: 3 })));
    });
    for (let layer = 0; layer < p.nLayers; layer++) {
      for (let r = 0; r < R; r++) this.cells.push(this.chart.appendChild(svg("rect", { class: "tw-matrix-cell", height: this.rowHeight })));
    }
    this.frame = this.chart.appendChild(svg("rect", { class: "tw-matrix-frame" }));
    this.column = this.chart.appendChild(svg("rect", { class: "tw-matrix-column" }));
    this.cursor = this.chart.appendChild(svg("rect", { class: "tw-matrix-cursor", height: this.rowHeight }));
    this.readout = this.root.appendChild(h("div", "tw-matrix-readout"));
    this.on(this.chart, "pointerdown", (event: PointerEvent) => this.click(event));
    this.on(this.chart, "pointermove", (event: PointerEvent) => this.hover(event));
    this.on(this.chart, "pointerleave", () => this.showReadout(-1, -1));
    this.cleanups.push(fitWidth(this.chart, (width) => this.layout(width)));
    this.layout(MATRIX_WIDTH);
  }

  private on<E extends Event>(target: EventTarget, type: string, handler: (event: E) => void): void {
    target.addEventListener(type, handler as EventListener);
    this.cleanups.push(() => target.removeEventListener(type, handler as EventListener));
  }

  /** Lay the cells out `width` px wide. */
  layout(width: number): void {
    const p = this.host.p;
    const R = p.regions.length;
    this.width = width;
    this.cellWidth = Math.min(MAX_CELL, (width - MATRIX_MARGIN.left - MATRIX_MARGIN.right) / Math.max(R, 1));
    const height = this.top + p.nLayers * this.rowHeight + MATRIX_MARGIN.bottom;
    this.chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    this.chart.setAttribute("height", String(height));
    const w = this.cellWidth;
    const left = MATRIX_MARGIN.left;
    p.regions.forEach((_, r) => {
      const x = left + (r + 0.5) * w + 3.5;
      const y = this.top - 6;
      this.names[r].setAttribute("x", x.toFixed(1));
      this.names[r].setAttribute("y", y.toFixed(1));
      this.names[r].setAttribute("transform", `rotate(-90 ${x.toFixed(1)} ${y.toFixed(1)})`);
      this.swatches[r].setAttribute("x", (left + r * w + 1).toFixed(1));
      this.swatches[r].setAttribute("y", String(this.top - 4));
      this.swatches[r].setAttribute("width", Math.max(1, w - 2).toFixed(1));
    });
    for (let layer = 0; layer < p.nLayers; layer++) {
      for (let r = 0; r < R; r++) {
        const cell = this.cells[layer * R + r];
        cell.setAttribute("x", (left + r * w).toFixed(1));
        cell.setAttribute("y", String(this.top + layer * this.rowHeight));
        cell.setAttribute("width", (w + 0.3).toFixed(1)); // no hairline gaps between cells
      }
    }
    for (const tick of this.ticks) tick.remove();
    // a layer number every ~14 px
    const step = Math.max(1, Math.ceil(14 / this.rowHeight));
    this.ticks = [];
    for (let layer = 0; layer < p.nLayers; layer += step) {
      const tick = this.chart.appendChild(
        svg("text", { x: left - 4, y: this.top + (layer + 0.5) * this.rowHeight + 3.5, "text-anchor": "end", class: "tw-tick" }),
      );
      tick.textContent = String(layer);
      this.ticks.push(tick);
    }
    const frame = { x: left, y: this.top, width: R * w, height: p.nLayers * this.rowHeight };
    for (const [key, value] of Object.entries(frame)) this.frame.setAttribute(key, value.toFixed(1));
    this.cursor.setAttribute("x", (left - 2).toFixed(1));
    this.cursor.setAttribute("width", (R * w + 4).toFixed(1));
    this.showLayer(this.host.layer);
    this.showRegion(this.host.region);
  }

  /** New values (a new selection, or more layers of a running capture). */
  show(values: Float64Array, palette: Palette, mode: Normalize): void {
    this.values = values;
    let max = 0;
    for (const v of values) if (Number.isFinite(v) && v > max) max = v;
    this.shades = new Uint8Array(values.length);
    values.forEach((v, i) => (this.shades[i] = Number.isFinite(v) && v > 0 && max > 0 ? Math.max(1, Math.round((255 * v) / max)) : 0));
    this.recolour(palette, values);
    const source = this.host.withCurves ? "as the cooking curves" : `as run.curves(normalize="${mode}")`;
    setText(this.note, `${describeNormalization(mode, this.host.exclusion)}, ${source}; darkest ${format(max)}`);
    this.showReadout(-1, -1);
  }

  recolour(palette: Palette, values = this.values): void {
    this.cells.forEach((cell, i) => {
      const fill = Number.isFinite(values[i]) ? palette.colours[this.shades[i]] : "none";
      if (cell.getAttribute("fill") !== fill) cell.setAttribute("fill", fill);
    });
  }

  showLayer(layer: number): void {
    const y = String(this.top + layer * this.rowHeight);
    if (this.cursor.getAttribute("y") !== y) this.cursor.setAttribute("y", y);
  }

  showRegion(r: number): void {
    this.names.forEach((name, i) => name.classList.toggle("tw-selected", i === r));
    this.column.style.display = r >= 0 ? "" : "none";
    if (r < 0) return;
    const L = this.host.p.nLayers;
    this.column.setAttribute("x", (MATRIX_MARGIN.left + r * this.cellWidth).toFixed(1));
    this.column.setAttribute("y", String(this.top - 4));
    this.column.setAttribute("width", this.cellWidth.toFixed(1));
    this.column.setAttribute("height", String(L * this.rowHeight + 4));
  }

  /** The layer and region under a point (region -1 left of the cells; layer -1 in the header). */
  at(event: { clientX: number; clientY: number }): { layer: number; region: number } {
    const p = this.host.p;
    const box = this.chart.getBoundingClientRect();
    const scale = box.width ? this.width / box.width : 1;
    const x = (event.clientX - box.left) * scale;
    const y = (event.clientY - box.top) * scale;
    const r = Math.floor((x - MATRIX_MARGIN.left) / this.cellWidth);
    const layer = y < this.top ? -1 : clamp(Math.floor((y - this.top) / this.rowHeight), 0, p.nLayers - 1);
    return { layer, region: r >= 0 && r < p.regions.length ? r : -1 };
  }

  private click(event: PointerEvent): void {
    const { layer, region } = this.at(event);
    if (region < 0) {
      if (layer >= 0) this.host.setLayer(layer);
      return;
    }
    // a region's name (above the cells): that region at the layer shown
    this.pick(layer >= 0 ? layer : this.host.layer, region);
  }

  private hover(event: PointerEvent): void {
    const { layer, region } = this.at(event);
    this.showReadout(layer, region);
  }

  private showReadout(layer: number, region: number): void {
    const p = this.host.p;
    if (region < 0) {
      setText(this.readout, "click a cell: go to its layer and region");
      return;
    }
    const name = p.regions[region].name;
    if (layer < 0) {
      setText(this.readout, `${name}: click to select it and scroll to it`);
      return;
    }
    const value = this.values[layer * p.regions.length + region];
    setText(this.readout, `layer ${layer} \u00b7 ${name} ${layer >= layersDone(p) ? "not computed yet" : format(value)}`);
  }

  /** The value shown for (layer, region), for tests and tools. */
  value(layer: number, region: number): number {
    return this.values[layer * this.host.p.regions.length + region];
  }

  /** The palette index of a cell, for tests and tools. */
  shade(layer: number, region: number): number {
    return this.shades[layer * this.host.p.regions.length + region];
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

// -- the most attended tokens ----------------------------------------------------------

interface TopRow {
  item: HTMLLIElement;
  bar: HTMLSpanElement;
  rank: HTMLSpanElement;
  weight: HTMLSpanElement;
  token: HTMLSpanElement;
  pos: HTMLSpanElement;
  swatch: HTMLSpanElement;
  region: HTMLSpanElement;
}

class TopTokens {
  readonly root: HTMLDivElement;
  private title: HTMLElement;
  private note: HTMLDivElement;
  private rows: TopRow[] = [];
  /** The tokens listed, most attended first. */
  shown: number[] = [];
  private cleanups: (() => void)[] = [];

  constructor(private host: OverviewHost) {
    this.root = h("div", "tw-panel tw-top-panel");
    const header = this.root.appendChild(h("div", "tw-panel-header"));
    this.title = header.appendChild(h("b", "", "Most attended"));
    this.note = this.root.appendChild(h("div", "tw-overview-note tw-top-note"));
    const list = this.root.appendChild(h("ol", "tw-top-list"));
    for (let k = 0; k < TOP_K; k++) {
      const item = list.appendChild(h("li"));
      item.tabIndex = 0;
      item.setAttribute("role", "button");
      const row: TopRow = {
        item,
        bar: item.appendChild(h("span", "tw-top-bar")),
        rank: item.appendChild(h("span", "tw-num tw-top-rank", String(k + 1))),
        weight: item.appendChild(h("span", "tw-num tw-top-weight")),
        token: item.appendChild(h("span", "tw-top-token")),
        pos: item.appendChild(h("span", "tw-num tw-top-pos")),
        swatch: h("span", "tw-swatch"),
        region: h("span", "tw-top-region"),
      };
      row.region.appendChild(row.swatch);
      row.region.appendChild(document.createTextNode(""));
      item.appendChild(row.region);
      this.rows.push(row);
    }
    const reveal = (event: Event) => {
      const item = (event.target as HTMLElement).closest?.("li") as HTMLLIElement | null;
      if (!item || item.dataset.pos === undefined) return;
      if (event instanceof KeyboardEvent && event.key !== "Enter" && event.key !== " ") return;
      this.host.revealToken(Number(item.dataset.pos));
    };
    list.addEventListener("click", reveal);
    list.addEventListener("keydown", reveal);
    this.cleanups.push(
      () => list.removeEventListener("click", reveal),
      () => list.removeEventListener("keydown", reveal),
    );
  }

  /** Rank `row`, the layer's row the heatmap drew. */
  show(row: Float32Array, layer: number): void {
    const host = this.host;
    const p = host.p;
    const computed = layer < layersDone(p);
    const limit = computed ? p.queries[host.query].pos + 1 : 0;
    const top = (this.shown = topTokens(row, host.masked, limit, TOP_K));
    setText(this.title, `Most attended at layer ${layer}`);
    setText(this.note, computed ? this.describeMask(row, layer) : `Layer ${layer} is not computed yet.`);
    const most = top.length ? row[top[0]] : 0;
    this.rows.forEach((r, k) => {
      const i = top[k];
      const on = i !== undefined;
      r.item.style.visibility = on ? "" : "hidden";
      if (!on) {
        delete r.item.dataset.pos;
        return;
      }
      const weight = row[i];
      r.item.dataset.pos = String(i);
      r.item.dataset.weight = String(weight);
      const region = p.tokenRegion[i];
      setText(r.weight, formatWeight(weight));
      setText(r.token, quoted(p.tokens[i] ?? ""));
      setText(r.pos, `@${i}`);
      const name = region >= 0 ? p.regions[region].name : "\u2013";
      const label = r.region.lastChild as Text;
      if (label.data !== name) label.data = name;
      const colour = region >= 0 ? p.regions[region].color : "transparent";
      if (r.swatch.style.backgroundColor !== colour) r.swatch.style.backgroundColor = colour;
      const width = `${((100 * weight) / most).toFixed(1)}%`;
      if (r.bar.style.width !== width) r.bar.style.width = width;
      r.item.title = `token ${i} ${JSON.stringify(p.tokens[i] ?? "")}, weight ${formatWeight(weight)}, region ${name}: click to scroll to it`;
    });
  }

  /** Whether the first token (the sink) and the template are in the list. */
  private describeMask(row: Float32Array, layer: number): string {
    const host = this.host;
    const parts: string[] = [];
    if (host.maskSink && host.p.nTokens > 0) {
      parts.push(`first token (the sink) left out, ${formatWeight(row[0])} at layer ${layer}, as "mask first token" is on`);
    } else {
      parts.push('first token included ("mask first token" is off)');
    }
    if (host.maskTemplate) parts.push("template tokens left out");
    return `${parts.join("; ")}.`;
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

// -- the three together -------------------------------------------------------------------

/**
 * The overview of a heatmap: the map goes above the text box (into `main`,
 * before `text`), the matrix and the ranked list into `side`.
 */
export class Overview {
  readonly map: TokenMap;
  readonly matrix: RegionMatrix;
  readonly top: TopTokens;
  private tree: RegionTree;
  private enabled = true;
  /** The selection changed while hidden: compute it when shown again. */
  private stale = true;
  private lastRow: Float32Array | null = null;
  private frame = 0;
  private cleanups: (() => void)[] = [];

  constructor(
    private host: OverviewHost,
    main: HTMLElement,
    private text: HTMLElement,
    side: HTMLElement,
    private spans: HTMLElement[],
  ) {
    this.tree = regionTree(host.p.regions);
    this.map = new TokenMap(host, () => this.reselect());
    this.matrix = new RegionMatrix(host, (layer, region) => this.pick(layer, region));
    this.top = new TopTokens(host);
    main.insertBefore(this.map.root, text);
    side.append(this.matrix.root, this.top.root);
    const scrolled = () => {
      if (this.frame || typeof requestAnimationFrame === "undefined") return;
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.showVisible();
      });
    };
    text.addEventListener("scroll", scrolled, { passive: true });
    this.cleanups.push(() => text.removeEventListener("scroll", scrolled));
  }

  get shown(): boolean {
    return this.enabled;
  }

  /** Show or hide the overview; hidden, it computes nothing. */
  setEnabled(on: boolean): void {
    const was = this.enabled;
    this.enabled = on;
    if (!on || was) return;
    // hidden, it followed nothing: the selection and the layer may have changed
    if (this.stale) this.reselect();
    if (this.lastRow) this.showLayer(this.lastRow);
  }

  /** The selection changed (query, head, scale, masks, more layers): compute
   * the map and the matrix again. */
  reselect(): void {
    this.stale = true;
    if (!this.enabled) return;
    const host = this.host;
    const grid = tokenGrid(host.p, host.query, host.drawnHead, host.scale, host.masked, this.map.columns);
    this.map.show(grid, host.palette);
    this.updateMatrix();
    this.stale = false;
    this.showVisible();
  }

  /** The curves' normalisation changed: only the matrix depends on it. */
  updateMatrix(): void {
    if (!this.enabled) {
      this.stale = true;
      return;
    }
    const host = this.host;
    this.matrix.show(curveValues(host.p, host.query, host.head, host.normalize, this.tree, null, host.exclusion), host.palette, host.normalize);
  }

  /** The theme's palette changed. */
  recolour(): void {
    if (!this.enabled || this.stale) return;
    this.map.recolour(this.host.palette);
    this.matrix.recolour(this.host.palette);
  }

  /** The heatmap drew layer `layer` from `row`: move the markers, rank the row. */
  showLayer(row: Float32Array): void {
    this.lastRow = row;
    if (!this.enabled) return;
    if (this.stale) this.reselect();
    const layer = this.host.layer;
    this.map.showLayer(layer);
    this.matrix.showLayer(layer);
    this.top.show(row, layer);
  }

  showRegion(r: number): void {
    this.matrix.showRegion(r);
  }

  /** Mark the tokens in view on the map. */
  showVisible(): void {
    if (!this.enabled || !this.spans.length || !this.text.clientHeight) return;
    const [first, last] = visibleTokens(this.text, this.spans);
    this.map.showVisible(first, last);
  }

  /** Go to `layer`, select region `r` and scroll to its most attended token there. */
  pick(layer: number, r: number): void {
    this.host.setLayer(layer); // the heatmap redraws: lastRow is this layer's
    this.host.selectRegion(r);
    const token = this.hottestOf(r);
    if (token >= 0) this.host.revealToken(token);
  }

  /** Region `r`'s most attended token at the layer shown (its first when none has weight). */
  hottestOf(r: number): number {
    const row = this.lastRow;
    const tokens = this.host.p.regions[r].tokenIndices;
    return row ? hottestIn(tokens, row, this.host.masked) : firstToken(tokens);
  }

  destroy(): void {
    if (this.frame && typeof cancelAnimationFrame !== "undefined") cancelAnimationFrame(this.frame);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.map.destroy();
    this.matrix.destroy();
    this.top.destroy();
  }
}
