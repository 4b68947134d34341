// Cooking curves: attention mass the query gives each region, per layer, as a
// light SVG line chart with a cursor at the selected layer. The payload holds
// raw masses; normalisation happens here, with Run.curves' definitions.

import { fitWidth, heightFor, nearestCurve } from "./fit";
import { Listeners } from "./listeners";
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
  /** What the curves leave out (Python's `exclude`); absent reads as "auto". */
  exclude?: ExcludeSpec;
}

/** The synced `exclude` value, as Run.curves(exclude=...) takes it: "auto",
 * null (nothing), "first" (the first token) or a region's name, or a list of those. */
export type ExcludeSpec = string | string[] | null;

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

/** (layer,) attention on the first token at one query, head-averaged or one head. */
export function firstMasses(p: Payload, query: number, head: number | null): Float64Array {
  const out = new Float64Array(p.nLayers);
  for (let l = 0; l < p.nLayers; l++) {
    out[l] = head === null ? p.firstToken[l * p.nQueries + query] : p.firstTokenHeads[(l * p.nHeads + head) * p.nQueries + query];
  }
  return out;
}

/** What is removed before normalising (core.masses.Exclusion): the first
 * token and/or regions, by name. */
export interface Exclusion {
  first: boolean;
  regions: string[];
}

/** What each normalisation excludes by default, as Python's exclude="auto":
 * the first token for "share", nothing otherwise. */
export function defaultExclusion(mode: Normalize): Exclusion {
  return { first: mode === "share", regions: [] };
}

/** The exclusion `spec` means under `mode` (core.masses.resolve_exclusion):
 * "auto" (or no value) is the first token for "share" and nothing otherwise;
 * "first" names the first token even when a region is called so. */
export function resolveExclusion(spec: ExcludeSpec | undefined, mode: Normalize): Exclusion {
  if (spec === undefined || spec === "auto") return defaultExclusion(mode);
  if (spec === null) return { first: false, regions: [] };
  const items = typeof spec === "string" ? [spec] : spec;
  return { first: items.includes("first"), regions: items.filter((item) => item !== "first") };
}

/** "first token", "first token and rules", or "nothing" (Exclusion.describe). */
export function describeExclusion(exclusion: Exclusion): string {
  const parts = [...(exclusion.first ? ["first token"] : []), ...exclusion.regions];
  if (!parts.length) return "nothing";
  return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

/** The region tree of a payload's regions (core.masses.tree_parents): each
 * region's parent is its enclosing user region, else (a top-level user
 * region) its built-in section; the sections are the roots, at depth 0. */
export interface RegionTree {
  parent: number[];
  depth: number[];
  size: number[];
  /** True where the region holds the first token (position 0). */
  holdsFirst: boolean[];
}

export function regionTree(regions: { name: string; section: string; parent: string | null; builtin: boolean; tokenIndices: ArrayLike<number> }[]): RegionTree {
  const index = new Map(regions.map((r, i) => [r.name, i]));
  const parent = regions.map((r) => {
    if (r.parent !== null && r.parent !== r.name && index.has(r.parent)) return index.get(r.parent)!;
    if (!r.builtin && r.section !== r.name && index.has(r.section)) return index.get(r.section)!;
    return -1;
  });
  const depth = parent.map((_, r) => {
    let d = 0;
    for (let at = parent[r]; at >= 0; at = parent[at]) {
      if (++d > regions.length) throw new Error(`The regions' parents form a cycle through ${regions[r].name}.`);
    }
    return d;
  });
  const holdsFirst = regions.map((r) => Array.prototype.includes.call(r.tokenIndices, 0) as boolean);
  return { parent, depth, size: regions.map((r) => r.tokenIndices.length), holdsFirst };
}

/** Which tokens each region keeps under `exclusion`, as masses and counts:
 * excluded regions (and what they hold) lose everything; an ancestor loses
 * the excluded region's part; the region holding the first token loses it. */
function keptParts(tree: RegionTree, names: string[], exclusion: Exclusion): { inside: boolean[]; maximal: number[]; firstFree: boolean } {
  const R = tree.parent.length;
  const named = names.map((n) => exclusion.regions.includes(n));
  const inside = new Array<boolean>(R).fill(false); // the region lies in an excluded region
  for (let r = 0; r < R; r++) for (let at = r; at >= 0 && !inside[r]; at = tree.parent[at]) inside[r] = named[at];
  const maximal = [];
  for (let r = 0; r < R; r++) if (named[r] && (tree.parent[r] < 0 || !inside[tree.parent[r]])) maximal.push(r);
  // the first token, unless an excluded region removes it already
  const firstFree = exclusion.first && !maximal.some((e) => tree.holdsFirst[e]);
  return { inside, maximal, firstFree };
}

/**
 * (layer,) attention on the excluded tokens, a fraction of the whole row, as
 * Run.excluded_mass: each outermost excluded region's mass (a region inside
 * another excluded one is in it already), plus the first token's unless one
 * of them holds it. `mass` and `first` as for `normalize`.
 */
export function excludedMasses(
  mass: Float64Array,
  first: Float64Array,
  nLayers: number,
  regions: { name: string }[],
  tree: RegionTree,
  exclusion: Exclusion,
): Float64Array {
  const R = regions.length;
  const { maximal, firstFree } = keptParts(
    tree,
    regions.map((r) => r.name),
    exclusion,
  );
  const out = new Float64Array(nLayers);
  for (let l = 0; l < nLayers; l++) {
    let total = firstFree ? first[l] : 0;
    for (const e of maximal) total += mass[l * R + e];
    out[l] = total;
  }
  return out;
}

function isAncestorOrSelf(tree: RegionTree, ancestor: number, r: number): boolean {
  for (let at = r; at >= 0; at = tree.parent[at]) if (at === ancestor) return true;
  return false;
}

/** A mass left after subtracting parts of `whole`, with the float32 rounding of
 * the payload's masses removed: what is within 1e-6 of `whole` of nothing (or
 * below it) is nothing. Python sums the tokens themselves and gets 0 exactly. */
function clean(part: number, whole: number): number {
  return part <= 1e-6 * Math.abs(whole) ? 0 : part;
}

/** Per region: True where its "share" column counts only its own tokens (at `level`). */
export function ownRegions(tree: RegionTree, level = Infinity): boolean[] {
  return tree.parent.map((_, r) => tree.depth[r] < level && tree.parent.some((p) => p === r));
}

/**
 * Normalise a (layer, region) table of raw region masses as Run.curves does
 * (core.masses): remove the excluded tokens (`exclusion`, default as Python's
 * "auto"; `first` is the first token's attention per layer), then "raw" (the
 * mass, over the kept total when something is excluded), "share" (over the
 * partition at `level`: each token once, in its innermost region, a parent
 * counting its own tokens; a row sums to 1), "per-region" (min-max per region
 * across layers) or "density" (per kept token). Regions without a value (all
 * tokens excluded, below the share level) are NaN, and so are columns not in
 * `keep` (hidden curves; they do not change the others).
 */
export function normalize(
  mass: Float64Array,
  first: Float64Array,
  nLayers: number,
  regions: { name: string }[],
  tree: RegionTree,
  mode: Normalize,
  exclusion: Exclusion = defaultExclusion(mode),
  level = Infinity,
  keep: boolean[] | null = null,
): Float64Array {
  const R = regions.length;
  const names = regions.map((r) => r.name);
  const { inside, maximal, firstFree } = keptParts(tree, names, exclusion);
  const excluded = exclusion.first || exclusion.regions.length > 0;
  // kept token counts, and which regions have a value at all
  const keptSize = tree.size.map((size, r) => {
    if (inside[r]) return 0;
    let out = size;
    for (const e of maximal) if (isAncestorOrSelf(tree, r, e)) out -= tree.size[e];
    return out - (firstFree && tree.holdsFirst[r] ? 1 : 0);
  });
  const share = mode === "share";
  const valued = keptSize.map((n, r) => n > 0 && (!share || tree.depth[r] <= level));
  const own = ownRegions(tree, level);
  const roots = tree.parent.map((p, r) => (p < 0 ? r : -1)).filter((r) => r >= 0);
  const out = new Float64Array(nLayers * R).fill(NaN);
  const kept = new Float64Array(R);
  for (let l = 0; l < nLayers; l++) {
    for (let r = 0; r < R; r++) {
      if (inside[r]) {
        kept[r] = 0;
        continue;
      }
      let m = mass[l * R + r];
      for (const e of maximal) if (isAncestorOrSelf(tree, r, e)) m -= mass[l * R + e];
      if (firstFree && tree.holdsFirst[r]) m -= first[l];
      kept[r] = clean(m, mass[l * R + r]);
    }
    if (share) {
      const counted = new Float64Array(R);
      let total = 0;
      for (let r = 0; r < R; r++) {
        if (!valued[r]) continue;
        let m = kept[r];
        if (own[r]) for (let c = 0; c < R; c++) if (tree.parent[c] === r) m -= kept[c];
        counted[r] = clean(m, kept[r]);
        total += counted[r];
      }
      for (let r = 0; r < R; r++) if (valued[r]) out[l * R + r] = total > 0 ? counted[r] / total : 0;
      continue;
    }
    let total = 0;
    for (const r of roots) total += kept[r];
    for (let r = 0; r < R; r++) {
      if (!valued[r]) continue;
      const value = excluded ? (total > 0 ? kept[r] / total : 0) : kept[r];
      out[l * R + r] = mode === "density" ? value / keptSize[r] : value;
    }
  }
  if (mode === "per-region") {
    for (let r = 0; r < R; r++) {
      if (!valued[r]) continue;
      let low = Infinity;
      let high = -Infinity;
      for (let l = 0; l < nLayers; l++) {
        low = Math.min(low, out[l * R + r]);
        high = Math.max(high, out[l * R + r]);
      }
      for (let l = 0; l < nLayers; l++) out[l * R + r] = high > low ? (out[l * R + r] - low) / (high - low) : 0;
    }
  }
  if (keep) for (let r = 0; r < R; r++) if (!keep[r]) for (let l = 0; l < nLayers; l++) out[l * R + r] = NaN;
  return out;
}

/**
 * The values the curves panel draws for one query and head under `mode`
 * (exclusion as Python's "auto"), (layer, region) row-major: normalised over
 * the layers computed so far, NaN for the layers still to come and for
 * columns not in `keep`. The overview's layer x region matrix shows the same.
 */
export function curveValues(
  p: Payload,
  query: number,
  head: number | null,
  mode: Normalize,
  tree: RegionTree,
  keep: boolean[] | null = null,
  exclusion: Exclusion = defaultExclusion(mode),
): Float64Array {
  const R = p.regions.length;
  // while a capture runs, only the layers computed so far are drawn and normalised
  const done = layersDone(p);
  const mass = rawMasses(p, query, head).subarray(0, done * R);
  const first = firstMasses(p, query, head).subarray(0, done);
  const values = new Float64Array(p.nLayers * R).fill(NaN);
  values.set(normalize(mass, first, done, p.regions, tree, mode, exclusion, Infinity, keep));
  return values;
}

/** The normalisation a model selects ("raw" when it holds none we know). */
export function normalizationOf(value: unknown, fallback: Normalize = "raw"): Normalize {
  return NORMALIZATIONS.includes(value as Normalize) ? (value as Normalize) : fallback;
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
  private excludeSelect: HTMLSelectElement;
  /** The excluded tokens' attention per layer (first: the first token's), at the query and head drawn. */
  private excluded: { mass: Float64Array; first: Float64Array; regions: boolean; sinkOut: boolean } = { mass: new Float64Array(0), first: new Float64Array(0), regions: false, sinkOut: false };
  private chips: HTMLSpanElement[] = [];
  private boxes: HTMLInputElement[] = [];
  private picks: HTMLButtonElement[] = [];
  private values: Float64Array = new Float64Array(0);
  private yMax = 1;
  private tree: RegionTree;
  private own: boolean[];
  private names: Text[] = [];
  private note: HTMLSpanElement;
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<CurvesState>,
    private p: Payload,
    private queryIndex: () => number,
    private headIndex: () => number | null,
  ) {
    this.listeners = new Listeners(model);
    this.root = h("div", "tw-panel tw-curves");
    const header = this.root.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Cooking curves"));
    const label = header.appendChild(h("label", "", " normalise "));
    this.select = label.appendChild(h("select", "tw-normalize-select"));
    for (const mode of NORMALIZATIONS) this.select.appendChild(option(mode, mode));
    const excludeLabel = header.appendChild(h("label", "", " exclude "));
    this.excludeSelect = excludeLabel.appendChild(h("select", "tw-exclude-select"));
    this.excludeSelect.title = 'Tokens left out before normalising, as run.curves(exclude=...): what is left is renormalised; "auto" leaves out the first token (the attention sink) in "share" and nothing otherwise';
    this.buildExcludeOptions();
    this.note = header.appendChild(h("span", "tw-exclusion-note"));
    this.note.title = "The attention the excluded tokens get at the layer shown, a fraction of the whole row (run.excluded_mass); sink: the first token's";
    this.tree = regionTree(p.regions);
    this.own = ownRegions(this.tree);
    this.chart = this.root.appendChild(svg("svg", { height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "tw-chart" }));
    this.axes = this.chart.appendChild(svg("g", { class: "tw-axes" }));
    this.buildAxes();
    for (const region of p.regions) {
      const line = this.chart.appendChild(svg("polyline", { fill: "none", stroke: region.color, "stroke-width": LINE_WIDTH, class: "tw-line" }));
      line.appendChild(svg("title")).textContent = region.name;
      this.lines.push(line);
    }
    this.cursor = this.chart.appendChild(svg("line", { y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom, stroke: "#1f6feb", "stroke-width": 1.5, class: "tw-cursor" }));
    this.listeners.add(fitWidth(this.chart, (width) => this.layout(width)));
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
      this.names.push(pick.appendChild(document.createTextNode(region.name)));
      this.listeners.on(box, "change", () => this.setHidden(r, !box.checked));
      this.listeners.on(chip, "mouseenter", () => this.hover(r));
      this.listeners.on(chip, "mouseleave", () => this.hover(-1));
      this.listeners.on(pick, "click", () => {
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

  private listen(): void {
    this.listeners.on(this.select, "change", () => {
      this.model.set("normalize", this.select.value as Normalize);
      this.model.save_changes();
    });
    this.listeners.on(this.excludeSelect, "change", () => {
      this.model.set("exclude", JSON.parse(this.excludeSelect.value) as ExcludeSpec);
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
    this.listeners.on(this.chart, "pointerdown", (event: PointerEvent) => this.setLayer(at(event).layer));
    this.listeners.on(this.chart, "pointermove", (event: PointerEvent) => {
      const { layer, y } = at(event);
      if (event.buttons & 1) return this.setLayer(layer);
      // with many regions, the curve under the pointer is drawn bold and read first
      const hidden = this.hidden;
      const R = this.p.regions.length;
      this.hover(nearestCurve(R, layer, y, (r, l) => (hidden[r] ? NaN : this.y(this.values[l * R + r]))));
      this.showReadout(layer);
    });
    this.listeners.on(this.chart, "pointerleave", () => {
      this.hover(-1);
      this.showReadout(this.layer);
    });
    for (const name of ["change:query", "change:head", "change:normalize", "change:exclude", "change:hidden", "change:region"]) {
      this.listeners.onModel(name, () => this.update());
    }
    this.listeners.onModel("change:layer", () => this.moveCursor());
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
    this.listeners.dispose();
  }

  /** Recompute the curves (query, head, normalisation, hidden or selected
   * regions changed, or a running capture sent more layers). */
  update(): void {
    const p = this.p;
    const mode = normalizationOf(this.model.get("normalize"));
    this.select.value = mode;
    const hidden = this.hidden;
    const keep = hidden.map((hide) => !hide);
    const R = p.regions.length;
    const done = layersDone(p);
    const query = this.queryIndex();
    const head = this.headIndex();
    const mass = rawMasses(p, query, head).subarray(0, done * R);
    const first = firstMasses(p, query, head).subarray(0, done);
    const spec = this.model.get("exclude");
    const exclusion = resolveExclusion(spec, mode);
    this.showExclude(spec, mode);
    this.values = curveValues(p, query, head, mode, this.tree, keep, exclusion);
    this.excluded = {
      mass: excludedMasses(mass, first, done, p.regions, this.tree, exclusion),
      first,
      regions: exclusion.regions.length > 0,
      // the first token is left out by name or in an excluded region (the template holds it)
      sinkOut: exclusion.first || p.regions.some((r, i) => this.tree.holdsFirst[i] && exclusion.regions.includes(r.name)),
    };
    this.labelRegions(mode, hidden);
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

  /** In "share" a parent counts its own tokens only: its name says so. A
   * region whose tokens are all excluded has no curve: its entry is dimmed. */
  private labelRegions(mode: Normalize, hidden: boolean[]): void {
    const R = this.p.regions.length;
    const done = layersDone(this.p);
    this.p.regions.forEach((region, r) => {
      const label = mode === "share" && this.own[r] ? `${region.name} (own)` : region.name;
      if (this.names[r].data !== label) this.names[r].data = label;
      this.lines[r].firstChild!.textContent = label;
      let valued = done === 0 || hidden[r]; // a hidden curve is NaN too
      for (let l = 0; l < done && !valued; l++) valued = !Number.isNaN(this.values[l * R + r]);
      this.chips[r].classList.toggle("tw-no-value", !valued);
      this.picks[r].title = valued
        ? "Select this region: its tokens are highlighted in the heatmap (click again to clear)"
        : "No curve: every token of this region is excluded (or below the share level). Select it to highlight its tokens";
    });
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

  /** The choices of the exclude selector: "auto" (what it means is said for
   * the normalisation shown), the first token, nothing, each region. */
  private buildExcludeOptions(): void {
    const select = this.excludeSelect;
    select.replaceChildren(option('"auto"', "auto"), option('"first"', "first token"), option("null", "nothing"));
    const group = select.appendChild(h("optgroup"));
    group.label = "a region";
    // a region called "first" cannot be named: exclude="first" is the first token
    for (const region of this.p.regions) if (region.name !== "first" && region.name !== "auto") group.appendChild(option(JSON.stringify(region.name), region.name));
  }

  /** Select the synced `exclude` value (one set in Python that no choice
   * names, e.g. ["first", "rules"], gets a choice of its own). */
  private showExclude(spec: ExcludeSpec | undefined, mode: Normalize): void {
    const select = this.excludeSelect;
    select.options[0].textContent = `auto (${describeExclusion(defaultExclusion(mode))})`;
    const value = JSON.stringify(spec === undefined ? "auto" : Array.isArray(spec) && spec.length === 1 ? spec[0] : spec);
    const other = select.querySelector<HTMLOptionElement>(".tw-exclude-other");
    if (other && other.value !== value) other.remove();
    if (!Array.from(select.options).some((o) => o.value === value)) {
      select.appendChild(option(value, describeExclusion(resolveExclusion(spec, mode)))).className = "tw-exclude-other";
    }
    select.value = value;
  }

  /** The excluded mass at `layer`, on its own: "sink 0.712" (the first token's
   * attention) when only the first token is left out, "excluded 0.744 · sink
   * 0.712" when regions are, and "not excluded" after the sink when it is counted. */
  private showExcluded(layer: number): void {
    const { mass, first, regions, sinkOut } = this.excluded;
    const at = (values: Float64Array) => (layer < values.length ? format(values[layer]) : "\u2013");
    const sink = `sink ${at(first)}${sinkOut ? "" : ", not excluded"}`;
    const text = regions ? `excluded ${at(mass)} \u00b7 ${sink}` : sink;
    if (this.note.textContent !== text) this.note.textContent = text;
  }

  private showReadout(layer: number): void {
    const R = this.p.regions.length;
    this.showExcluded(layer);
    if (layer >= layersDone(this.p)) {
      this.readout.textContent = `layer ${layer}: not computed yet`;
      return;
    }
    const hidden = this.hidden;
    // the curve under the pointer first
    const order = this.p.regions.map((_, r) => r);
    if (this.hovered >= 0) order.sort((a, b) => Number(b === this.hovered) - Number(a === this.hovered));
    const parts = order
      // a region without a value (its tokens excluded, as run.curves leaves its column out) is not read
      .map((r) => (hidden[r] || Number.isNaN(this.values[layer * R + r]) ? "" : `${this.names[r].data} ${format(this.values[layer * R + r])}`))
      .filter(Boolean);
    this.readout.textContent = `layer ${layer}: ${parts.join(" \u00b7 ")}`;
  }

  /** Normalised value drawn for (layer, region), for tests and tools. */
  value(layer: number, region: number): number {
    return this.values[layer * this.p.regions.length + region];
  }
}
