// Token heatmap: the prompt as flowing text, each token's background coloured
// by the attention the selected query pays it at the selected layer.
//
// Spans are built once and keep the text; a layer change recomputes one row
// of colour indices and repaints the backgrounds on a canvas behind the text
// (see backdrop.ts). Only spans whose text must turn light or dark are touched.
// The palette follows the page's theme (colour.ts, theme.ts). Beside the text,
// the overview (overview.ts) maps a long prompt: layers x tokens, layers x
// regions, and the most attended tokens at the layer shown.

import { Backdrop } from "./backdrop";
import {
  type AnyScale,
  DEFAULT_SCALE,
  LIGHT_PALETTE,
  type Palette,
  SCALES,
  SCALE_LABELS,
  type ScaleRange,
  colourIndices,
  describeScale,
  formatWeight,
  heatPalette,
  isScale,
  maxUnmasked,
  rankOf,
  scaleRange,
  spansAllLayers,
} from "./colour";
import { MESSAGE_VERSION, RequestIds, readMessage } from "./messages";
import { type ExcludeSpec, type Normalize, normalizationOf, resolveExclusion } from "./curves";
import { type AnyModel, type RenderProps, h, mount, option, queryIndex, showTip } from "./model";
import { Overview, firstToken } from "./overview";
import { QueryClicks } from "./query_click";
import type { HeadRowsRequest } from "./schema.gen";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { type Theme, readTheme, sameTheme, watchTheme } from "./theme";
import { type Payload, WireError, attentionRow, decodeHeadRows, decodePayload, layersDone } from "./wire";

export interface HeatmapState {
  payload: unknown;
  layer: number;
  query: string;
  head: number | null;
  scale: AnyScale;
  mask_template: boolean;
  mask_sink: boolean;
  region: string | null;
  /** Show the overview beside the text (absent: shown). */
  overview?: boolean;
  /** The cooking curves' normalisation, which the overview's matrix follows
   * (the explorer has it; a heatmap alone shows "share"). */
  normalize?: Normalize;
  /** The curves' exclusion, which the matrix follows too (the explorer has it). */
  exclude?: ExcludeSpec;
}

const PLAY_INTERVAL_MS = 350;
const HEAD_REQUEST_TIMEOUT_MS = 4000;
/** How long a token scrolled to stays marked. */
const FLASH_MS = 1600;

/** What a token shows: newlines get a visible mark and stay line breaks. */
export function displayText(token: string): string {
  if (token === "") return "\u2205";
  return token.replace(/\n/g, "\u21b5\n");
}

function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export class HeatmapView {
  readonly root: HTMLDivElement;
  readonly p: Payload;
  private spans: HTMLSpanElement[] = [];
  private row: Float32Array;
  private indices: Uint8Array;
  private shown: Int16Array; // colour index drawn per token, -1 = not yet drawn
  private backdrop!: Backdrop;
  private masked: Uint8Array;
  private scratch: Float32Array; // the weights a layer's scale is computed from
  private vmax = 0; // maximum over all layers, for the scales that span them
  private range: ScaleRange = { kind: "linear", low: 0, high: 0 };
  private theme: Theme | null = null;
  private palette: Palette = LIGHT_PALETTE;
  /** Set by the explorer while it moves the layer along with a running capture. */
  following = false;
  private rowLoaded = true;
  /** Query row -> id of the request for its per-head rows still unanswered. */
  private pending = new Map<number, number>();
  private requestIds = new RequestIds();
  /** Clicked tokens becoming queries (query_click.ts). */
  readonly clicks: QueryClicks;
  private timer: ReturnType<typeof setInterval> | null = null;
  private flashTimer: ReturnType<typeof setTimeout> | null = null;
  private cleanups: (() => void)[] = [];
  /** The map, the matrix and the ranked list beside the text. */
  overview!: Overview;
  /** The token last scrolled to (a click on a region, the map, the matrix, the list), -1 before any. */
  revealed = -1;

  // controls
  private slider!: HTMLInputElement;
  private layerLabel!: HTMLSpanElement;
  private playButton!: HTMLButtonElement;
  private querySelect!: HTMLSelectElement;
  private headSelect!: HTMLSelectElement;
  private scaleSelect!: HTMLSelectElement;
  private maskTemplate!: HTMLInputElement;
  private maskSink!: HTMLInputElement;
  private overviewBox!: HTMLInputElement;
  private reader!: HTMLDivElement;
  private barMax!: HTMLSpanElement;
  private barMin!: HTMLSpanElement;
  private bar!: HTMLSpanElement;
  private scaleNote!: HTMLSpanElement;
  private status!: HTMLDivElement;
  private progress!: HTMLDivElement;
  private regionChips: HTMLButtonElement[] = [];
  private text!: HTMLDivElement;
  private tip!: HTMLDivElement;

  constructor(
    private model: AnyModel<HeatmapState>,
    el: HTMLElement,
  ) {
    this.p = decodePayload(model.get("payload"));
    this.clicks = new QueryClicks(
      {
        p: this.p,
        send: (request) => this.model.send(request),
        select: (name) => this.set("query", name),
        added: () => this.fillQueries(),
        setStatus: (text) => this.setStatus(text),
      },
      this.requestIds,
    );
    const T = this.p.nTokens;
    this.row = new Float32Array(T);
    this.indices = new Uint8Array(T);
    this.shown = new Int16Array(T).fill(-1);
    this.masked = new Uint8Array(T);
    this.scratch = new Float32Array(T);
    this.root = h("div", "tw-root tw-heatmap");
    addStyle(this.root);
    this.buildControls();
    this.progress = this.root.appendChild(h("div", "tw-progress"));
    this.buildLegend();
    this.status = this.root.appendChild(h("div", "tw-status"));
    this.buildText();
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    el.replaceChildren(this.root);
    this.applyTheme();
    // a resize (the first layout too) re-measures the tokens; the theme may be known only then
    const repaint = () => {
      if (this.applyTheme()) this.redraw();
      else this.backdrop.paint(this.shown, this.palette.colours);
      this.overview.showVisible();
    };
    this.cleanups.push(this.backdrop.watch(repaint));
    this.cleanups.push(watchTheme(() => this.applyTheme() && this.redraw()));
    this.listen();
    this.syncControls();
    this.updateQueryMarks();
    this.updateOverview();
    this.updateMask();
    this.updateRegion();
    this.updateProgress();
  }

  // -- state -----------------------------------------------------------------

  get layer(): number {
    return Math.min(Math.max(this.model.get("layer") | 0, 0), this.p.nLayers - 1);
  }

  get query(): number {
    return queryIndex(this.p.queryNames, this.model.get("query"), this.p.defaultQuery);
  }

  get head(): number | null {
    const head = this.model.get("head");
    return head === null || head === undefined || head < 0 || head >= this.p.nHeads ? null : head;
  }

  /** Index of the selected region, -1 for none. */
  get region(): number {
    const name = this.model.get("region");
    return name === null || name === undefined ? -1 : this.p.regions.findIndex((r) => r.name === name);
  }

  get scale(): AnyScale {
    const scale = this.model.get("scale");
    return isScale(scale) ? scale : DEFAULT_SCALE;
  }

  /** The curves' normalisation in the explorer; "share" for a heatmap alone. */
  get normalize(): Normalize {
    return normalizationOf(this.model.get("normalize"), "share");
  }

  /** Show `scale`, one of the menu's or a trial one (for tools such as
   * benchmarks/heatmap_scales.py; a trial scale is not saved to the kernel). */
  setScale(scale: AnyScale): void {
    this.model.set("scale", scale);
    if ((SCALES as AnyScale[]).includes(scale)) this.model.save_changes();
  }

  private set<K extends keyof HeatmapState>(key: K, value: HeatmapState[K]): void {
    this.model.set(key, value);
    this.model.save_changes();
  }

  // -- building ----------------------------------------------------------------

  private buildControls(): void {
    const p = this.p;
    const bar = this.root.appendChild(h("div", "tw-controls"));

    const layer = bar.appendChild(h("label"));
    this.playButton = layer.appendChild(h("button", "tw-play", "\u25b6"));
    this.playButton.type = "button";
    this.playButton.title = "Play through the layers";
    this.slider = layer.appendChild(h("input", "tw-layer"));
    this.slider.type = "range";
    this.slider.min = "0";
    this.slider.max = String(p.nLayers - 1);
    this.slider.step = "1";
    this.slider.setAttribute("aria-label", "layer");
    this.layerLabel = layer.appendChild(h("span", "tw-layer-label"));

    const query = bar.appendChild(h("label", "", "query "));
    this.querySelect = query.appendChild(h("select", "tw-query-select"));
    this.querySelect.title = "Or click a token to make it the query";
    this.fillQueries();

    const head = bar.appendChild(h("label", "", "head "));
    this.headSelect = head.appendChild(h("select", "tw-head-select"));
    this.headSelect.appendChild(option("avg", "average"));
    for (let i = 0; i < p.nHeads; i++) this.headSelect.appendChild(option(String(i), `head ${i}`));

    const scale = bar.appendChild(h("label", "", "scale "));
    this.scaleSelect = scale.appendChild(h("select", "tw-scale-select"));
    for (const s of SCALES) this.scaleSelect.appendChild(option(s, SCALE_LABELS[s]));

    const maskTemplate = bar.appendChild(h("label", "", ""));
    this.maskTemplate = maskTemplate.appendChild(h("input", "tw-mask-template"));
    this.maskTemplate.type = "checkbox";
    maskTemplate.append("mask template");
    const maskSink = bar.appendChild(h("label", "", ""));
    this.maskSink = maskSink.appendChild(h("input", "tw-mask-sink"));
    this.maskSink.type = "checkbox";
    maskSink.append("mask first token");
    maskSink.title = "Leave the first token (the attention sink) out of the colour scale";
    // a display option, not part of the selection: the snapshot's caption leaves it out
    const overview = bar.appendChild(h("label", "tw-view-option", ""));
    this.overviewBox = overview.appendChild(h("input", "tw-overview-toggle"));
    this.overviewBox.type = "checkbox";
    overview.append("overview");
    overview.title = "Show the layer \u00d7 token map, the layer \u00d7 region matrix and the most attended tokens beside the text";
    // in the explorer this root holds the curves and the lens too: all are saved
    bar.appendChild(downloadButton(this.root, () => (this.root.querySelector(".tw-panels") ? "explorer" : "heatmap")));
  }

  /** One option per query of the payload (clicked tokens add queries). */
  private fillQueries(): void {
    const p = this.p;
    if (this.querySelect.options.length === p.nQueries) return;
    this.querySelect.replaceChildren(
      ...p.queries.map((q) => option(q.name, `${q.name} @${q.pos} ${JSON.stringify(p.tokens[q.pos] ?? "")}`)),
    );
    if (this.querySelect.isConnected) this.querySelect.value = p.queries[this.query].name;
  }

  private buildLegend(): void {
    const legend = this.root.appendChild(h("div", "tw-legend"));
    for (const region of this.p.regions) {
      const chip = legend.appendChild(h("button", "tw-chip tw-pick"));
      chip.type = "button";
      chip.title = "Highlight this region's tokens (click again to clear)";
      const swatch = chip.appendChild(h("span", "tw-swatch"));
      swatch.style.backgroundColor = region.color;
      chip.append(region.parent ? `${region.name} (in ${region.parent})` : region.name);
      this.regionChips.push(chip);
    }
    const scale = legend.appendChild(h("span", "tw-chip tw-scale"));
    this.barMin = scale.appendChild(h("span", "tw-bar-label", "0"));
    this.bar = scale.appendChild(h("span", "tw-bar"));
    this.barMax = scale.appendChild(h("span", "tw-bar-label"));
    this.scaleNote = scale.appendChild(h("span", "tw-bar-label tw-scale-note"));
  }

  /** Read the page's theme; when it changed, take its palette and decide
   * every token's text colour again. Returns whether it changed. */
  private applyTheme(): boolean {
    const theme = readTheme(this.text); // the tokens' own colours
    if (sameTheme(this.theme, theme)) return false;
    this.theme = theme;
    this.palette = heatPalette(theme.background, theme.text);
    this.bar.style.background = `linear-gradient(to right, ${[0, 64, 128, 192, 255].map((i) => this.palette.colours[i]).join(", ")})`;
    for (const span of this.spans) if (span.style.color) span.style.color = "";
    this.shown.fill(-1);
    this.overview.recolour();
    return true;
  }

  private buildText(): void {
    const p = this.p;
    this.reader = this.root.appendChild(h("div", "tw-reader"));
    const main = this.reader.appendChild(h("div", "tw-reader-main"));
    const side = this.reader.appendChild(h("div", "tw-side"));
    this.text = main.appendChild(h("div", "tw-text"));
    const fragment = document.createDocumentFragment();
    for (let i = 0; i < p.nTokens; i++) {
      const gap = p.gaps.get(i);
      if (gap) fragment.append(gap);
      const span = h("span", "tw-tok", displayText(p.tokens[i]));
      if (p.tokens[i] === "") span.classList.add("tw-empty");
      span.dataset.i = String(i);
      const region = p.tokenRegion[i];
      if (region >= 0) span.style.borderBottomColor = p.regions[region].color;
      fragment.appendChild(span);
      this.spans.push(span);
    }
    const tail = p.gaps.get(p.nTokens);
    if (tail) fragment.append(tail);
    this.text.appendChild(fragment);
    this.backdrop = new Backdrop(this.text, this.spans);
    const view = this;
    this.overview = new Overview(
      {
        p,
        get layer() {
          return view.layer;
        },
        get query() {
          return view.query;
        },
        get head() {
          return view.head;
        },
        get drawnHead() {
          return view.rowLoaded ? view.head : null;
        },
        get region() {
          return view.region;
        },
        get scale() {
          return view.scale;
        },
        get normalize() {
          return view.normalize;
        },
        get exclusion() {
          return resolveExclusion(view.model.get("exclude"), view.normalize);
        },
        get withCurves() {
          return view.model.get("normalize") !== undefined;
        },
        get masked() {
          return view.masked;
        },
        get maskSink() {
          return !!view.model.get("mask_sink");
        },
        get maskTemplate() {
          return !!view.model.get("mask_template");
        },
        get palette() {
          return view.palette;
        },
        setLayer: (layer) => {
          if (layer !== this.layer) this.set("layer", layer);
        },
        selectRegion: (r) => {
          if (r !== this.region) this.set("region", p.regions[r].name);
        },
        revealToken: (i) => this.revealToken(i),
      },
      main,
      this.text,
      side,
      this.spans,
    );
  }

  // -- events -----------------------------------------------------------------

  private on<E extends Event>(target: EventTarget, type: string, handler: (event: E) => void): void {
    target.addEventListener(type, handler as EventListener);
    this.cleanups.push(() => target.removeEventListener(type, handler as EventListener));
  }

  private listen(): void {
    // the model's change event (fired synchronously by set) does the redraw
    this.on(this.slider, "input", () => this.set("layer", Number(this.slider.value)));
    this.on(this.playButton, "click", () => (this.timer ? this.stop() : this.play()));
    this.on(this.querySelect, "change", () => this.set("query", this.querySelect.value));
    this.on(this.headSelect, "change", () => {
      const value = this.headSelect.value;
      this.set("head", value === "avg" ? null : Number(value));
    });
    this.on(this.scaleSelect, "change", () => this.set("scale", this.scaleSelect.value as AnyScale));
    this.on(this.maskTemplate, "change", () => this.set("mask_template", this.maskTemplate.checked));
    this.on(this.maskSink, "change", () => this.set("mask_sink", this.maskSink.checked));
    this.on(this.overviewBox, "change", () => this.set("overview", this.overviewBox.checked));
    this.regionChips.forEach((chip, r) => this.on(chip, "click", () => this.pickRegion(r)));
    this.on<MouseEvent>(this.text, "mouseover", (e) => this.showTip(e));
    this.on<MouseEvent>(this.text, "mouseleave", () => (this.tip.style.display = "none"));
    this.on<MouseEvent>(this.text, "click", (e) => this.clickToken(e));

    const onModel = (event: string, handler: (...args: any[]) => void) => {
      this.model.on(event, handler);
      this.cleanups.push(() => this.model.off(event, handler));
    };
    onModel("change:layer", () => {
      this.syncControls();
      this.redraw();
      if (this.p.pending) this.updateProgress();
    });
    onModel("change:query", () => {
      this.syncControls();
      this.updateQueryMarks();
      this.rescale();
    });
    onModel("change:head", () => {
      this.syncControls();
      this.rescale();
    });
    onModel("change:scale", () => {
      this.syncControls();
      this.rescale();
    });
    onModel("change:region", () => {
      this.updateRegion();
      // a region selected anywhere (its name in a legend, the matrix, Python): scroll to its first token
      const r = this.region;
      if (r >= 0) {
        const first = firstToken(this.p.regions[r].tokenIndices);
        if (first >= 0) this.revealToken(first);
      }
    });
    onModel("change:normalize", () => this.overview.updateMatrix());
    onModel("change:exclude", () => this.overview.updateMatrix());
    onModel("change:overview", () => this.updateOverview());
    onModel("change:mask_template", () => this.updateMask());
    onModel("change:mask_sink", () => this.updateMask());
    onModel("msg:custom", (content: unknown, buffers: (DataView | ArrayBuffer)[]) => this.receive(content, buffers ?? []));
  }

  destroy(): void {
    this.stop();
    if (this.flashTimer) clearTimeout(this.flashTimer);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.overview.destroy();
  }

  private play(): void {
    if (this.layer >= this.p.nLayers - 1) this.set("layer", 0);
    this.playButton.textContent = "\u23f8";
    this.timer = setInterval(() => {
      if (this.layer >= this.p.nLayers - 1) return this.stop();
      this.set("layer", this.layer + 1);
    }, PLAY_INTERVAL_MS);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.playButton.textContent = "\u25b6";
  }

  /** Select region `r` (its tokens are highlighted and the text scrolls to its
   * first one), or clear the selection when it is already selected. */
  pickRegion(r: number): void {
    this.set("region", this.region === r ? null : this.p.regions[r].name);
  }

  /** Scroll the text box (never the page) so token `i` is in view, a third
   * from its top when it was not, and mark it for a moment. */
  revealToken(i: number): void {
    const span = this.spans[i];
    if (!span) return;
    this.revealed = i;
    const box = this.text;
    const top = span.offsetTop;
    if (top < box.scrollTop || top + span.offsetHeight > box.scrollTop + box.clientHeight) {
      box.scrollTop = Math.max(0, top - box.clientHeight / 3);
    }
    for (const other of this.text.querySelectorAll(".tw-flash")) other.classList.remove("tw-flash");
    span.classList.add("tw-flash");
    if (this.flashTimer) clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => span.classList.remove("tw-flash"), FLASH_MS);
  }

  /** Show or hide the overview (synced as `overview`). */
  private updateOverview(): void {
    const on = this.model.get("overview") !== false;
    this.overviewBox.checked = on;
    this.reader.classList.toggle("tw-overview-off", !on);
    this.overview.setEnabled(on);
  }

  private syncControls(): void {
    this.slider.value = String(this.layer);
    setText(this.layerLabel, `layer ${this.layer} / ${this.p.nLayers - 1}`);
    this.querySelect.value = this.p.queries[this.query].name;
    this.headSelect.value = this.head === null ? "avg" : String(this.head);
    this.headSelect.disabled = this.p.pending !== null;
    this.headSelect.title = this.p.pending ? "Per-head rows arrive when the capture ends" : "";
    this.scaleSelect.value = this.scale;
    this.maskTemplate.checked = !!this.model.get("mask_template");
    this.maskSink.checked = !!this.model.get("mask_sink");
  }

  // -- drawing ----------------------------------------------------------------

  private updateQueryMarks(): void {
    const pos = this.p.queries[this.query].pos;
    for (let i = 0; i < this.spans.length; i++) {
      this.spans[i].classList.toggle("tw-future", i > pos);
      this.spans[i].classList.toggle("tw-query", i === pos);
    }
  }

  /** Highlight the selected region's tokens and dim the others' text (the
   * colours behind them stay, so the attention remains readable). */
  private updateRegion(): void {
    const r = this.region;
    const inside = new Uint8Array(this.spans.length);
    if (r >= 0) for (const i of this.p.regions[r].tokenIndices) inside[i] = 1;
    this.text.classList.toggle("tw-region-mode", r >= 0);
    if (r >= 0) this.text.style.setProperty("--tw-region", this.p.regions[r].color);
    for (let i = 0; i < this.spans.length; i++) this.spans[i].classList.toggle("tw-in-region", inside[i] === 1);
    this.regionChips.forEach((chip, i) => chip.classList.toggle("tw-selected", i === r));
    this.overview.showRegion(r);
  }

  /** "computing: layer k / N" while a capture streams its layers in. */
  private updateProgress(): void {
    const pending = this.p.pending;
    this.progress.replaceChildren();
    this.progress.style.display = pending ? "" : "none";
    if (!pending) return;
    const bar = this.progress.appendChild(h("progress"));
    bar.max = pending.total;
    bar.value = pending.done;
    const text = pending.stopped
      ? `the capture stopped after ${pending.done} of ${pending.total} layers (${pending.stopped})`
      : pending.done >= pending.total
        ? `all ${pending.total} layers computed, reading the logit lens\u2026`
        : `computing: layer ${pending.done}/${pending.total}`;
    this.progress.append(` ${text}`);
    if (this.following && !pending.stopped) this.progress.append(" (showing the newest layer)");
    else if (this.layer >= layersDone(this.p)) this.progress.append(` (layer ${this.layer} not computed yet)`);
  }

  /** A message under the controls (cleared by the next selection change). */
  setStatus(text: string): void {
    this.status.textContent = text;
  }

  /** New data arrived (layers of a running capture): rescale and redraw. */
  refresh(): void {
    this.rescale();
    this.updateProgress();
  }

  private updateMask(): void {
    this.syncControls();
    this.masked.fill(0);
    if (this.model.get("mask_template")) {
      for (const region of this.p.regions) {
        if (region.section === "template") for (const i of region.tokenIndices) this.masked[i] = 1;
      }
    }
    if (this.model.get("mask_sink") && this.p.nTokens) this.masked[0] = 1;
    for (let i = 0; i < this.spans.length; i++) this.spans[i].classList.toggle("tw-masked", this.masked[i] === 1);
    this.rescale();
  }

  /** The selection changed: the maximum over all layers for the scales that span them. */
  private rescale(): void {
    this.rowLoaded = attentionRow(this.p, 0, this.query, this.head, this.row);
    this.requestHeads();
    let vmax = 0;
    if (this.rowLoaded && spansAllLayers(this.scale)) {
      for (let layer = 0; layer < this.p.nLayers; layer++) {
        attentionRow(this.p, layer, this.query, this.head, this.row);
        vmax = Math.max(vmax, maxUnmasked(this.row, this.masked));
      }
    }
    this.vmax = vmax;
    this.overview.reselect();
    this.redraw();
  }

  /** Recolour the tokens for the current layer. The hot path of the slider. */
  redraw(): void {
    const head = this.rowLoaded ? this.head : null;
    attentionRow(this.p, this.layer, this.query, head, this.row);
    // rows not loaded (a head's, awaited from the kernel): the head average, scaled by this layer
    const allLayersMax = this.rowLoaded ? this.vmax : maxUnmasked(this.row, this.masked);
    const limit = this.p.queries[this.query].pos + 1;
    const range = (this.range = scaleRange(this.scale, this.row, this.masked, limit, allLayersMax, this.scratch));
    colourIndices(this.row, this.masked, range, this.indices, this.scratch);
    const { spans, indices, shown } = this;
    const ink = this.palette.text;
    for (let i = 0; i < spans.length; i++) {
      const index = indices[i];
      const before = shown[i];
      if (before >= 0 && ink[index] === ink[before]) {
        shown[i] = index;
        continue;
      }
      if (before >= 0 || ink[index]) spans[i].style.color = ink[index];
      shown[i] = index;
    }
    this.backdrop.paint(shown, this.palette.colours);
    const rank = range.kind === "rank";
    // text set only when it changes: each change costs a layout of the view
    setText(this.barMax, rank ? "most" : formatWeight(range.high));
    setText(this.barMin, rank ? "least" : range.kind === "log" ? formatWeight(range.low) : "0");
    setText(this.scaleNote, describeScale(this.scale, range, !!this.model.get("mask_sink"), !!this.model.get("mask_template")));
    setText(this.layerLabel, `layer ${this.layer} / ${this.p.nLayers - 1}`);
    this.overview.showLayer(this.row);
  }

  /** CSS colour drawn behind token `i` (for tests and tools). */
  colourOf(i: number): string {
    return this.palette.colours[Math.max(0, this.shown[i])];
  }

  /** Palette index drawn behind token `i`, 0 for none (for tests and tools). */
  indexOf(i: number): number {
    return Math.max(0, this.shown[i]);
  }

  /** The palette in use, and the range of the scale at the layer shown (for tests and tools). */
  get drawn(): { palette: Palette; range: ScaleRange } {
    return { palette: this.palette, range: this.range };
  }

  /** A click on a token (not the end of a text selection) makes it the query. */
  private clickToken(event: MouseEvent): void {
    const target = (event.target as HTMLElement).closest?.(".tw-tok") as HTMLElement | null;
    if (!target || target.dataset.i === undefined) return;
    const selection = typeof window.getSelection === "function" ? window.getSelection() : null;
    if (selection && !selection.isCollapsed && selection.toString()) return;
    this.clicks.click(Number(target.dataset.i));
  }

  private showTip(event: MouseEvent): void {
    const target = (event.target as HTMLElement).closest?.(".tw-tok") as HTMLElement | null;
    if (!target || target.dataset.i === undefined) return;
    const i = Number(target.dataset.i);
    const p = this.p;
    const region = p.tokenRegion[i] >= 0 ? p.regions[p.tokenRegion[i]].name : "(none)";
    const weight = this.row[i];
    const lines: [string, string][] = [
      ["token", JSON.stringify(p.tokens[i])],
      ["id", String(p.tokenIds[i])],
      ["index", String(i)],
      ["region", region],
      ["weight", formatWeight(weight)],
      ["rank", `${rankOf(this.row, i)} of ${p.queries[this.query].pos + 1}`],
    ];
    if (this.masked[i]) lines.push(["scale", "masked out of the colour scale"]);
    const query = p.queries.find((q) => q.pos === i);
    lines.push(["click", query ? `select query "${query.name}"` : "make it the query"]);
    showTip(this.tip, this.root, target, lines);
  }

  // -- per-head rows beyond the payload -----------------------------------------

  private requestHeads(): void {
    const query = this.query;
    if (this.rowLoaded || this.head === null || this.p.pending) {
      this.status.textContent = "";
      return;
    }
    this.status.textContent = `Loading the per-head rows of query "${this.p.queries[query].name}" from the kernel\u2026`;
    if (this.pending.has(query)) return;
    const request: HeadRowsRequest = { v: MESSAGE_VERSION, kind: "head_rows", id: this.requestIds.take(), query };
    this.pending.set(query, request.id);
    try {
      this.model.send(request);
    } catch {
      // no kernel (an exported page): the timeout below explains
    }
    setTimeout(() => {
      if (this.pending.get(query) !== request.id) return;
      this.pending.delete(query);
      if (query === this.query && !this.p.heads[query]) {
        this.status.textContent =
          `The per-head rows of query "${this.p.queries[query].name}" are not in this page (they were over ` +
          `the payload budget) and no kernel answered; showing the head average.`;
      }
    }, HEAD_REQUEST_TIMEOUT_MS);
  }

  /** A reply of the kernel: per-head rows, or the error of a request of ours. */
  receive(content: unknown, buffers: (DataView | ArrayBuffer)[]): void {
    const message = readMessage(content);
    if (message === null || message.kind === "layers") return;
    if (message.kind === "query_at" || (message.kind === "error" && message.request === "query_at")) {
      this.clicks.receive(message, buffers);
      return;
    }
    const query = [...this.pending].find(([, id]) => id === message.id)?.[0];
    if (message.kind === "error") {
      if (query === undefined) return; // another view's request
      this.pending.delete(query);
      this.status.textContent = `The kernel could not send the per-head rows of query "${this.p.queries[query].name}": ${message.message}`;
      return;
    }
    try {
      const rows = { ...message.rows, data: buffers[message.rows.buffer] };
      this.p.heads[message.query] = decodeHeadRows({ encoding: message.encoding, rows }, this.p.nLayers, this.p.nHeads, "head_rows");
    } catch (error) {
      this.status.textContent = error instanceof WireError ? error.message : String(error);
      return;
    }
    this.pending.delete(message.query);
    if (message.query === this.query) this.rescale();
  }
}

export default { render: ({ model, el }: RenderProps<HeatmapState>) => mount(model, el, () => new HeatmapView(model, el)) };
