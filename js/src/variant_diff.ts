// Variant diff: a Comparison in one view.
//
// - the prompt kept whole, one text in order: shared tokens once, the
//   baseline's deleted tokens struck through (<del>) and the variant's inserted
//   ones marked (<ins>) inline, each token shaded by the change of the
//   attention it gets at the selected layer and query (diverging scale,
//   symmetric around 0), or by its own attention;
// - cooking curves, one small chart per region, every variant overlaid
//   (baseline dashed; the band is the interval of the mean with RunSets),
//   saying what the masses leave out (the first token by default);
// - each variant's sink (the first token's attention) and excluded mass at
//   the selected layer, on their own;
// - the delta table (Comparison.deltas at the query, the rows of the selected
//   layer or its band; rows whose `significant` flag is set highlighted, rows
//   flagged `sink_reassigned` marked "sink" and hatched) and the tracked
//   tokens (Comparison.lens_deltas).
// One layer slider and query selector drive all of it, as in the explorer.

import { BandChart, type Series, baselineName, variantChip, variantColour } from "./bands";
import { divergingIndex, divergingPalette, heatPalette } from "./colour";
import { LayerSlider, ModelSelect } from "./controls";
import {
  type Alignment,
  type DiffPayload,
  type DiffRun,
  type Grid,
  OP_DELETE,
  OP_EQUAL,
  OP_INSERT,
  attentionRow,
  decodeDiff,
  tokenShades,
} from "./compare_wire";
import { format } from "./curves";
import { displayText } from "./heatmap";
import { Listeners } from "./listeners";
import { type AnyModel, type RenderProps, h, mount, queryIndex, showTip } from "./model";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { type Theme, readTheme, sameTheme } from "./theme";

export interface DiffState {
  payload: unknown;
  layer: number;
  query: string;
  variant: string;
  case: number;
  hidden: string[];
  scale: "linear" | "layer";
  token_colour: "delta" | "attention";
  mask_sink: boolean;
}

function percent(value: number): string {
  return Number.isFinite(value) ? `${value >= 0 ? "+" : ""}${(100 * value).toFixed(1)}%` : "\u2013";
}

function signed(value: number): string {
  if (!Number.isFinite(value)) return "\u2013";
  return (value > 0 ? "+" : "") + format(value);
}

function cell(row: HTMLTableRowElement, text: string, className = ""): HTMLTableCellElement {
  return row.appendChild(h("td", className, text));
}

interface Side {
  run: DiffRun;
  spans: HTMLSpanElement[]; // by token position (absent positions stay undefined)
  values: Float64Array; // shade per position, NaN for none
}

/** A token of the text: its span and its positions in the baseline (`b`) and
 * the variant (`v`), -1 where it is not there (inserted, deleted). */
interface Cell {
  span: HTMLSpanElement;
  b: number;
  v: number;
}

export class VariantDiffView {
  readonly root: HTMLDivElement;
  readonly p: DiffPayload;
  private slider: LayerSlider;
  private selects: { destroy(): void }[] = [];
  private maskBox!: HTMLInputElement;
  private tokenBox!: HTMLDivElement;
  private scaleBar!: HTMLSpanElement;
  private scaleLow!: HTMLSpanElement;
  private scaleHigh!: HTMLSpanElement;
  private scaleNote!: HTMLSpanElement;
  private tip!: HTMLDivElement;
  private left: Side | null = null;
  private right: Side | null = null;
  private alignment: Alignment | null = null;
  private cells: Cell[] = [];
  private sinkLine!: HTMLDivElement;
  private vmax = 0;
  private theme: Theme | null = null;
  private charts: BandChart[] = [];
  private chartBoxes: HTMLDivElement[] = [];
  private chartTitles: Text[] = [];
  private regionBoxes: HTMLInputElement[] = [];
  private tableBody!: HTMLTableSectionElement;
  private tableTitle!: HTMLSpanElement;
  private lensBody: HTMLTableSectionElement | null = null;
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<DiffState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    this.p = decodeDiff(model.get("payload"));
    this.root = h("div", "tw-root tw-diff-view");
    addStyle(this.root);
    this.root.appendChild(h("div", "tw-diff-title", this.title()));
    const bar = this.root.appendChild(h("div", "tw-controls"));
    this.slider = new LayerSlider(model, this.p.nLayers);
    bar.appendChild(this.slider.root);
    this.buildSelects(bar);
    bar.appendChild(downloadButton(this.root, "diff"));
    this.buildScaleLegend();
    this.tokenBox = this.root.appendChild(h("div", "tw-text tw-diff"));
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    const panels = this.root.appendChild(h("div", "tw-panels"));
    panels.appendChild(this.buildCurves());
    panels.appendChild(this.buildTable());
    if (this.p.lens && this.p.trackedTokens.length) panels.appendChild(this.buildLens());
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    this.listen();
    this.buildTokens();
    this.updateCurves();
    this.updateTables();
  }

  // -- selection -----------------------------------------------------------------

  get layer(): number {
    return this.slider.layer;
  }

  get query(): number {
    return queryIndex(this.p.queries, this.model.get("query"), this.p.defaultQuery);
  }

  /** Index of the variant set against the baseline (>= 1). */
  get variant(): number {
    const index = this.p.variants.indexOf(this.model.get("variant"));
    return index >= 1 ? index : 1;
  }

  /** Index into payload.cases of the case shown. */
  get caseIndex(): number {
    const index = this.p.cases.findIndex((c) => c.case === this.model.get("case"));
    return Math.max(index, 0);
  }

  private get hidden(): boolean[] {
    const names = new Set(this.model.get("hidden") ?? []);
    return this.p.regions.map((r) => names.has(r.name));
  }

  private title(): string {
    const p = this.p;
    const sides = p.variants.map((name, v) => `${baselineName(name, v)}${p.sets[v] ? " [RunSet]" : ""}`);
    return `Comparing ${sides.join(" \u00b7 ")} \u2014 ${p.modelId}, attention mass normalize=${p.options.normalize}, ${this.excludedWords()}`;
  }

  /** "first token excluded" or "nothing excluded": what the masses leave out. */
  private excludedWords(): string {
    return `${this.p.options.excluded} excluded`;
  }

  // -- building --------------------------------------------------------------------

  private buildSelects(bar: HTMLElement): void {
    const p = this.p;
    const add = <K extends keyof DiffState>(key: K, label: string, className: string, choices: [DiffState[K], string][]) => {
      const select = new ModelSelect(this.model, key, label, className, choices);
      bar.appendChild(select.root);
      this.selects.push(select);
    };
    add("query", "query", "tw-query-select", p.queries.map((q) => [q, q]));
    if (p.variants.length > 2) add("variant", "variant", "tw-variant-select", p.variants.slice(1).map((v) => [v, v]));
    if (p.sets.some(Boolean)) {
      add("case", "case", "tw-case-select", p.cases.map((c) => [c.case, p.caseLabels[c.case] ?? `case ${c.case}`]));
    }
    add("token_colour", "shade", "tw-colour-select", [
      ["delta", "change of attention"],
      ["attention", "attention (each side)"],
    ]);
    add("scale", "scale", "tw-scale-select", [
      ["linear", "fixed over layers"],
      ["layer", "per layer"],
    ]);
    const mask = bar.appendChild(h("label"));
    this.maskBox = mask.appendChild(h("input", "tw-mask-sink"));
    this.maskBox.type = "checkbox";
    mask.append("mask first token");
    mask.title = "Leave the first token (the attention sink) out of the colour scale";
  }

  private buildScaleLegend(): void {
    const legend = this.root.appendChild(h("div", "tw-legend"));
    const scale = legend.appendChild(h("span", "tw-chip"));
    this.scaleLow = scale.appendChild(h("span", "tw-bar-label"));
    this.scaleBar = scale.appendChild(h("span", "tw-bar"));
    this.scaleHigh = scale.appendChild(h("span", "tw-bar-label"));
    this.scaleNote = legend.appendChild(h("span", "tw-bar-label"));
    const del = legend.appendChild(h("span", "tw-chip"));
    del.appendChild(h("del", "tw-del-run")).appendChild(h("span", "tw-tok tw-del", "deleted"));
    const ins = legend.appendChild(h("span", "tw-chip"));
    ins.appendChild(h("ins", "tw-ins-run")).appendChild(h("span", "tw-tok tw-ins", "inserted"));
  }

  private buildCurves(): HTMLDivElement {
    const p = this.p;
    const panel = h("div", "tw-panel tw-diff-curves");
    const header = panel.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Cooking curves"));
    header.append(` attention mass per region (${p.options.normalize}, ${this.excludedWords()})`);
    const variants = panel.appendChild(h("div", "tw-legend"));
    p.variants.forEach((name, v) => variants.appendChild(variantChip(name, v)));
    if (p.sets.some(Boolean)) variants.appendChild(h("span", "tw-bar-label", `bands: ${Math.round(p.options.level * 100)}% ${p.options.interval} interval of the mean`));
    const regions = panel.appendChild(h("div", "tw-legend"));
    const grid = panel.appendChild(h("div", "tw-chart-grid"));
    p.regions.forEach((region, r) => {
      const chip = regions.appendChild(h("label", "tw-chip tw-curve-chip"));
      const box = chip.appendChild(h("input", "tw-visible"));
      box.type = "checkbox";
      box.title = `Show or hide the chart of ${region.name}`;
      chip.appendChild(h("span", "tw-swatch")).style.backgroundColor = region.color;
      chip.append(region.name);
      this.listeners.on(box, "change", () => this.setHidden(r, !box.checked));
      this.regionBoxes.push(box);
      const box2 = grid.appendChild(h("div", "tw-region-chart"));
      const title = box2.appendChild(h("div", "tw-region-title"));
      title.appendChild(h("span", "tw-swatch")).style.backgroundColor = region.color;
      this.chartTitles.push(title.appendChild(document.createTextNode(region.name)));
      const chart = new BandChart(p.nLayers, { width: 250, height: 140 }, (layer) => this.setLayer(layer));
      box2.appendChild(chart.root);
      this.charts.push(chart);
      this.chartBoxes.push(box2);
    });
    return panel;
  }

  private buildTable(): HTMLDivElement {
    const panel = h("div", "tw-panel tw-diff-table");
    const header = panel.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Deltas"));
    this.tableTitle = header.appendChild(h("span"));
    this.sinkLine = panel.appendChild(h("div", "tw-sink-line"));
    this.sinkLine.title =
      "Attention on the first token (the attention sink) and on the excluded tokens at this layer, a fraction of the whole row (Comparison.excluded_mass); the masses in the table are fractions of the rest";
    const scroll = panel.appendChild(h("div", "tw-lens-scroll"));
    const table = scroll.appendChild(h("table", "tw-lens-table tw-delta-table"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    const level = `${Math.round(this.p.options.level * 100)}% interval`;
    for (const name of ["variant", "region", "layer", "baseline", "mass", "\u0394", level, "rel.", "n", "flag"]) head.appendChild(h("th", "", name));
    this.tableBody = table.appendChild(h("tbody"));
    const minEffect = String(this.p.options.minEffect);
    panel.appendChild(
      h("div", "tw-bar-label tw-table-note", `* significant (highlighted): the interval of \u0394 excludes 0 and |\u0394| \u2265 ${minEffect}; sink (hatched): mostly the sink's attention moving or a second sink (sink_reassigned), not a reading of the region; ~ within twice the seed noise`),
    );
    return panel;
  }

  private buildLens(): HTMLDivElement {
    const panel = h("div", "tw-panel tw-diff-lens");
    const header = panel.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Tracked tokens"));
    header.append(" logit-lens rank and probability");
    const table = panel.appendChild(h("table", "tw-lens-table tw-tracked-table"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    for (const name of ["token", "variant", "layer", "median rank", "\u0394median", "p", "\u0394p"]) head.appendChild(h("th", "", name));
    this.lensBody = table.appendChild(h("tbody"));
    return panel;
  }

  // -- events ------------------------------------------------------------------------

  private listen(): void {
    this.listeners.on(this.maskBox, "change", () => {
      this.model.set("mask_sink", this.maskBox.checked);
      this.model.save_changes();
    });
    this.listeners.on(this.tokenBox, "mouseover", (e: MouseEvent) => this.showTip(e));
    this.listeners.on(this.tokenBox, "mouseleave", () => (this.tip.style.display = "none"));
    // the theme is known once the view is in the page (the first layout), and may change
    const themed = () => {
      if (!sameTheme(this.theme, readTheme(this.tokenBox))) this.paint();
    };
    this.listeners.onThemeOrLayout(this.tokenBox, themed);
    this.listeners.onModel("change:layer", () => {
      this.paint(); // the sink line too
      for (const chart of this.charts) chart.setLayer(this.layer);
      this.updateTables();
    });
    this.listeners.onModel("change:query", () => {
      this.markQueries();
      this.rescale(); // the sink line too
      this.updateCurves();
      this.updateTables();
    });
    for (const key of ["variant", "case"]) this.listeners.onModel(`change:${key}`, () => this.buildTokens());
    for (const key of ["scale", "token_colour", "mask_sink"]) this.listeners.onModel(`change:${key}`, () => this.rescale());
    this.listeners.onModel("change:hidden", () => {
      this.updateCurves();
      this.updateTables();
    });
  }

  private setLayer(layer: number): void {
    if (layer === this.layer) return;
    this.model.set("layer", layer);
    this.model.save_changes();
  }

  private setHidden(r: number, hide: boolean): void {
    const hidden = this.hidden;
    hidden[r] = hide;
    this.model.set("hidden", this.p.regions.filter((_, i) => hidden[i]).map((region) => region.name));
    this.model.save_changes();
  }

  destroy(): void {
    this.listeners.dispose();
    for (const select of this.selects) select.destroy();
    for (const chart of this.charts) chart.destroy();
    this.slider.destroy();
  }

  // -- tokens ------------------------------------------------------------------------

  /**
   * (Re)build the prompt for the selected variant and case as one text, in
   * order: a shared token once, the baseline's deleted tokens struck through
   * (<del>) where they were, the variant's inserted ones marked (<ins>) where
   * they are. Text a tokenizer left between tokens comes from the variant (the
   * baseline's for deleted tokens, or where the variant has none).
   */
  private buildTokens(): void {
    const p = this.p;
    const entry = p.cases[this.caseIndex];
    const v = this.variant;
    const alignment = entry.alignments[v];
    if (!alignment) throw new Error(`No alignment for variant ${p.variants[v]}.`);
    this.alignment = alignment;
    const base = p.runs[entry.runs[0]];
    const other = p.runs[entry.runs[v]];
    this.left = { run: base, spans: new Array(base.nTokens), values: new Float64Array(base.nTokens) };
    this.right = { run: other, spans: new Array(other.nTokens), values: new Float64Array(other.nTokens) };
    this.cells = [];
    const box = this.tokenBox;
    box.replaceChildren();
    let inserted = 0;
    let deleted = 0;
    for (const op of alignment.op) {
      if (op === OP_INSERT) inserted++;
      else if (op === OP_DELETE) deleted++;
    }
    const head = box.appendChild(h("div", "tw-diff-head"));
    head.appendChild(h("span", "tw-diff-cell", `${baselineName(p.variants[0], 0)}: ${base.nTokens} tokens, ${deleted} deleted (struck through)`));
    head.appendChild(h("span", "tw-diff-cell", `${p.variants[v]}: ${other.nTokens} tokens, ${inserted} inserted (underlined)`));
    const text = box.appendChild(h("div", "tw-diff-body"));
    // consecutive deleted (or inserted) tokens share one <del> (<ins>)
    let change: HTMLElement | null = null;
    let changeOp = -1;
    for (let s = 0; s < alignment.op.length; s++) {
      const op = alignment.op[s];
      const b = op === OP_INSERT ? -1 : alignment.baselinePos[s];
      const w = op === OP_DELETE ? -1 : alignment.variantPos[s];
      let target: HTMLElement = text;
      if (op === OP_EQUAL) change = null;
      else {
        if (!change || changeOp !== op) {
          change = text.appendChild(op === OP_DELETE ? h("del", "tw-del-run") : h("ins", "tw-ins-run"));
          changeOp = op;
        }
        target = change;
      }
      const gap = (w >= 0 ? other.gaps.get(w) : undefined) ?? (b >= 0 ? base.gaps.get(b) : undefined);
      if (gap) target.append(gap);
      const source = w >= 0 ? other : base;
      const token = source.tokens[w >= 0 ? w : b];
      const kind = op === OP_DELETE ? "tw-tok tw-del" : op === OP_INSERT ? "tw-tok tw-ins" : "tw-tok";
      const span = target.appendChild(h("span", kind, displayText(token)));
      if (token === "") span.classList.add("tw-empty");
      span.dataset.side = op === OP_DELETE ? "b" : op === OP_INSERT ? "v" : "bv";
      if (b >= 0) span.dataset.b = String(b);
      if (w >= 0) span.dataset.v = String(w);
      const region = source.tokenRegion[w >= 0 ? w : b];
      if (region >= 0) span.style.borderBottomColor = this.p.regions[region].color;
      if (b >= 0) this.left.spans[b] = span;
      if (w >= 0) this.right.spans[w] = span;
      this.cells.push({ span, b, v: w });
    }
    const tail = other.gaps.get(other.nTokens) ?? base.gaps.get(base.nTokens);
    if (tail) text.append(tail);
    this.markQueries();
    this.rescale();
  }

  /** Mark each side's query token, what comes after it, and the masked first token. */
  private markQueries(): void {
    if (!this.left || !this.right) return;
    const q = this.query;
    const queryB = this.left.run.queryPos[q];
    const queryV = this.right.run.queryPos[q];
    const mask = !!this.model.get("mask_sink");
    for (const { span, b, v } of this.cells) {
      span.classList.toggle("tw-future", (b < 0 || b > queryB) && (v < 0 || v > queryV));
      span.classList.toggle("tw-query", (b >= 0 && b === queryB) || (v >= 0 && v === queryV));
      span.classList.toggle("tw-masked", mask && (b === 0 || v === 0));
    }
  }

  /** Fill both sides' shades at `layer` (delta or own attention). */
  private shadesAt(layer: number): void {
    const { left, right, alignment } = this;
    if (!left || !right || !alignment) return;
    const Q = this.p.queries.length;
    const base = attentionRow(left.run, Q, layer, this.query);
    const other = attentionRow(right.run, Q, layer, this.query);
    if (this.model.get("token_colour") === "attention") {
      left.values.set(base);
      right.values.set(other);
    } else {
      const shades = tokenShades(alignment, base, other);
      left.values.set(shades.left);
      right.values.set(shades.right);
    }
  }

  /** What a token of the text is shaded by: the change (the same on both
   * sides for a shared token) or, by attention, the variant's own (the
   * baseline's for a deleted token). */
  private cellValue(cell: Cell): number {
    return cell.v >= 0 ? this.right!.values[cell.v] : this.left!.values[cell.b];
  }

  private largest(): number {
    const skipFirst = !!this.model.get("mask_sink");
    let max = 0;
    for (const cell of this.cells) {
      if (skipFirst && (cell.b === 0 || cell.v === 0)) continue;
      const v = Math.abs(this.cellValue(cell));
      if (v > max) max = v;
    }
    return max;
  }

  /** The scale's maximum for the selection: over every layer, or none (per layer). */
  private rescale(): void {
    if (!this.left) return;
    this.markQueries();
    this.maskBox.checked = !!this.model.get("mask_sink");
    let vmax = 0;
    if (this.model.get("scale") !== "layer") {
      for (let layer = 0; layer < this.p.nLayers; layer++) {
        this.shadesAt(layer);
        vmax = Math.max(vmax, this.largest());
      }
    }
    this.vmax = vmax;
    this.paint();
  }

  /** Shade every token for the current layer. */
  paint(): void {
    if (!this.left || !this.right) return;
    this.shadesAt(this.layer);
    const delta = this.model.get("token_colour") !== "attention";
    const vmax = this.model.get("scale") === "layer" ? this.largest() : this.vmax;
    // the palettes of the page's theme (light or dark), read at each repaint
    const theme = (this.theme = readTheme(this.tokenBox));
    const palette = delta ? divergingPalette(theme.background, theme.text) : heatPalette(theme.background, theme.text);
    const centre = delta ? divergingIndex(0, 1) : 0;
    for (const cell of this.cells) {
      const value = this.cellValue(cell);
      let index = -1;
      if (delta) index = divergingIndex(value, vmax);
      else if (Number.isFinite(value) && vmax > 0) index = Math.min(255, Math.round((Math.max(value, 0) / vmax) * 255));
      cell.span.style.backgroundColor = index >= 0 && index !== centre ? palette.colours[index] : "";
      cell.span.style.color = index >= 0 ? palette.text[index] : "";
    }
    const stops = (delta ? [0, 64, 127, 190, 254] : [0, 64, 128, 192, 255]).map((i) => palette.colours[i]);
    this.scaleBar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    this.scaleLow.textContent = delta ? `\u2212${format(vmax)}` : "0";
    this.scaleHigh.textContent = delta ? `+${format(vmax)}` : format(vmax);
    this.scaleNote.textContent = delta
      ? `attention in ${this.p.variants[this.variant]} minus baseline at layer ${this.layer} (deleted: minus its baseline attention; inserted: its attention)`
      : `attention at layer ${this.layer} (the variant's; a deleted token's in the baseline)`;
    this.updateSink();
  }

  /** Value a token is shaded by (for tests and tools): side "b" or "v". */
  shadeOf(side: "b" | "v", pos: number): number {
    return (side === "b" ? this.left : this.right)!.values[pos];
  }

  /** The tokens of the text in order: their text and what they are ("equal",
   * "delete", "insert"), for tests and tools. */
  textCells(): { text: string; op: "equal" | "delete" | "insert"; b: number; v: number }[] {
    return this.cells.map(({ span, b, v }) => ({ text: span.textContent ?? "", op: b < 0 ? "insert" : v < 0 ? "delete" : "equal", b, v }));
  }

  private showTip(event: MouseEvent): void {
    const target = (event.target as HTMLElement).closest?.(".tw-tok") as HTMLElement | null;
    if (!target || target.dataset.side === undefined || !this.left || !this.right) return;
    const b = target.dataset.b === undefined ? -1 : Number(target.dataset.b);
    const v = target.dataset.v === undefined ? -1 : Number(target.dataset.v);
    const Q = this.p.queries.length;
    const baseName = baselineName(this.p.variants[0], 0);
    const variantName = this.p.variants[this.variant];
    const attention = (side: Side, i: number) => format(attentionRow(side.run, Q, this.layer, this.query)[i]);
    const lines: [string, string][] = [["token", JSON.stringify((v >= 0 ? this.right : this.left).run.tokens[v >= 0 ? v : b])]];
    if (b >= 0) lines.push([baseName, `position ${b}, attention ${attention(this.left, b)}`]);
    if (v >= 0) lines.push([variantName, `position ${v}, attention ${attention(this.right, v)}`]);
    if (v < 0) lines.push(["", `deleted: not in ${variantName}`]);
    else if (b < 0) lines.push(["", "inserted: not in the baseline"]);
    else lines.push(["change", signed(this.right.values[v] - (this.model.get("token_colour") === "attention" ? this.left.values[b] : 0))]);
    showTip(this.tip, this.root, target, lines);
  }

  // -- curves and tables ----------------------------------------------------------------

  private updateCurves(): void {
    const p = this.p;
    const q = this.query;
    const hidden = this.hidden;
    const { mass, mass_low: low, mass_high: high } = p.curves;
    p.regions.forEach((region, r) => {
      this.regionBoxes[r].checked = !hidden[r];
      this.chartBoxes[r].style.display = hidden[r] ? "none" : "";
      if (hidden[r]) return;
      const series: Series[] = p.variants.map((name, v) => {
        const pick = (grid: typeof mass) => Float64Array.from({ length: p.nLayers }, (_, l) => grid.get(v, q, l, r));
        return { label: `${name}: ${p.regionLabels[r] ?? region.name}`, color: variantColour(v), values: pick(mass), low: pick(low), high: pick(high), dashed: v === 0 };
      });
      // as cmp.deltas labels it ("(own)"); a region whose tokens are all excluded has no curve
      const none = series.every((line) => Array.prototype.every.call(line.values, Number.isNaN));
      this.chartTitles[r].data = `${p.regionLabels[r] ?? region.name}${none ? " \u2014 no value (excluded)" : ""}`;
      this.charts[r].draw(series);
      this.charts[r].setLayer(this.layer);
    });
  }

  /** Each variant's sink (the first token's attention) at the layer shown,
   * and the excluded tokens' attention when more than the first token is
   * excluded: means over units, fractions of the whole row, so a delta can be
   * read against the attention that moved in or out of the sink. */
  private updateSink(): void {
    const { sink, options, variants, sets } = this.p;
    if (!sink || !this.sinkLine) return;
    const q = this.query;
    const layer = this.layer;
    const list = (grid: Grid) =>
      variants
        .map((name, v) => {
          const value = grid.get(v, q, layer);
          return `${baselineName(name, v)} ${format(value)}${v > 0 ? ` (${signed(value - grid.get(0, q, layer))})` : ""}`;
        })
        .join(" \u00b7 ");
    const at = `at layer ${layer}${sets.some(Boolean) ? ", mean over cases" : ""}`;
    const counted = options.firstExcluded ? "excluded" : "counted in the masses";
    const more = options.excluded !== "nothing" && options.excluded !== "first token";
    const text = more
      ? `${at}: excluded (${options.excluded}) ${list(sink.excluded)}; sink (first token) ${list(sink.first)}, ${counted}`
      : `sink (first token) ${at}: ${list(sink.first)}, ${counted}`;
    if (this.sinkLine.textContent !== text) this.sinkLine.textContent = text;
  }

  /** Row indices (layers or bands) shown at the current layer: those whose
   * layers include it, else every row. */
  rowsAtLayer(): number[] {
    const at = this.p.rows.flatMap((row, k) => (row.layers.includes(this.layer) ? [k] : []));
    return at.length ? at : this.p.rows.map((_, k) => k);
  }

  private rowLabel(k: number): string {
    const row = this.p.rows[k];
    if (typeof row.label === "number") return String(row.label);
    const first = row.layers[0];
    const last = row.layers[row.layers.length - 1];
    return `${row.label} (${first}\u2013${last})`;
  }

  private updateTables(): void {
    const p = this.p;
    const q = this.query;
    const rows = this.rowsAtLayer();
    const hidden = this.hidden;
    const t = p.table;
    this.tableTitle.textContent = ` query ${p.queries[q]}, ${rows.length === 1 ? `layer ${this.rowLabel(rows[0])}` : `${rows.length} rows`}`;
    this.tableBody.replaceChildren();
    for (let v = 1; v < p.variants.length; v++) {
      for (let r = 0; r < p.regions.length; r++) {
        if (hidden[r]) continue;
        for (const k of rows) {
          const mass = t.mass.get(v, q, r, k);
          const base = t.mass.get(0, q, r, k);
          if (Number.isNaN(mass) && Number.isNaN(base)) continue;
          const significant = t.significant.get(v, q, r, k) === 1;
          const quiet = t.above_noise.get(v, q, r, k) === 0;
          const sink = t.sink_reassigned?.get(v, q, r, k) === 1;
          const tr = this.tableBody.appendChild(h("tr", [significant ? "tw-significant" : "", sink ? "tw-sink-flag" : ""].join(" ").trim()));
          cell(tr, p.variants[v]);
          cell(tr, p.regionLabels[r] ?? p.regions[r].name);
          cell(tr, this.rowLabel(k), "tw-num");
          cell(tr, format(base), "tw-num");
          cell(tr, format(mass), "tw-num");
          cell(tr, signed(t.delta.get(v, q, r, k)) + (significant ? " *" : "") + (quiet ? " ~" : ""), "tw-num tw-delta");
          const low = t.delta_low.get(v, q, r, k);
          const high = t.delta_high.get(v, q, r, k);
          cell(tr, Number.isNaN(low) ? "\u2013" : `[${signed(low)}, ${signed(high)}]`, "tw-num");
          cell(tr, percent(t.rel_change.get(v, q, r, k)), "tw-num");
          cell(tr, String(t.n.get(v, q, r, k)), "tw-num");
          const flag = cell(tr, sink ? "sink" : "", "tw-flag");
          if (sink) flag.title = `Mostly the sink's attention moving, or one token acting as a second sink: the first token's attention changed by ${signed(t.sink_shift.get(v, q, r, k))}, the region's own by ${signed(t.row_delta?.get(v, q, r, k) ?? NaN)}. Read the tokens before taking this as a finding.`;
        }
      }
    }
    this.updateLens(q, rows);
  }

  private updateLens(q: number, rows: number[]): void {
    const p = this.p;
    const lens = p.lens;
    if (!lens || !this.lensBody) return;
    this.lensBody.replaceChildren();
    p.trackedTokens.forEach((token, t) => {
      for (let v = 0; v < p.variants.length; v++) {
        for (const k of rows) {
          const significant = v > 0 && lens.significant.get(v, q, t, k) === 1;
          const tr = this.lensBody!.appendChild(h("tr", significant ? "tw-significant" : ""));
          cell(tr, JSON.stringify(token), "tw-lens-text");
          cell(tr, baselineName(p.variants[v], v));
          cell(tr, this.rowLabel(k), "tw-num");
          // ranks are skewed (a few cases rank thousands deep): the median, not the mean
          const median = lens.rank_median.get(v, q, t, k);
          cell(tr, format(median).replace(/\.000$/, ""), "tw-num");
          cell(tr, v === 0 ? "" : signed(median - lens.rank_median.get(0, q, t, k)).replace(/\.000$/, ""), "tw-num");
          cell(tr, format(lens.prob.get(v, q, t, k)), "tw-num");
          cell(tr, v === 0 ? "" : signed(lens.prob_delta.get(v, q, t, k)) + (significant ? " *" : ""), "tw-num");
        }
      }
    });
  }
}

export default {
  render: ({ model, el }: RenderProps<DiffState>) => mount(model, el, () => new VariantDiffView(model, el)),
};
