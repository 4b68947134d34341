// Conversation snapshots view (a tw.Snapshots,
// tealeaves_widgets/widgets/snapshots.py): a message x reference heatmap of
// one metric (cosine, MAE, top-1% Jaccard) for one source, raw or centred,
// averaged over the layers or at one layer; the user and assistant averages
// per reference; lines per source over the message index; and each message's
// metric by layer, collapsed. Every number comes from the payload (computed
// in Python for every source, centring and metric), so the controls work in
// an exported page with no kernel. Message text is set with textContent.

import { type Palette, divergingIndex, divergingPalette, heatPalette } from "./colour";
import { ModelSelect } from "./controls";
import { format, svg } from "./curves";
import { Listeners } from "./listeners";
import { type AnyModel, type RenderProps, h, mount, showTip } from "./model";
import { downloadButton } from "./snapshot";
import {
  METRICS,
  type Metric,
  type Selection,
  type Snapshots,
  blockValues,
  cell,
  closest,
  decodeSnapshots,
  extent,
  heatValues,
  higherIsCloser,
  roleCell,
  score,
} from "./snapshots_wire";
import { addStyle } from "./style";
import { ThemeTracker } from "./theme";

export interface SnapshotsState {
  payload: unknown;
  source: string;
  metric: Metric;
  center: boolean;
  layer: number | null;
}

export const METRIC_LABELS: Record<Metric, string> = {
  cosine: "cosine",
  mae: "MAE (mean |a \u2212 b|)",
  jaccard: "top-1% Jaccard",
};
const METRIC_SHORT: Record<Metric, string> = { cosine: "cosine", mae: "MAE", jaccard: "Jaccard" };
const SOURCE_LABELS: Record<string, string> = {
  hidden_in: "hidden_in (block input)",
  hidden_out: "hidden_out (block output)",
  attn_out: "attn_out (attention output)",
  mlp_out: "mlp_out (MLP output)",
};
const ROLE_LETTERS: Record<string, string> = { system: "S", user: "U", assistant: "A" };
const LINES = { width: 260, height: 150, left: 40, right: 8, top: 8, bottom: 30 };
const LAYERS = { width: 420, height: 170, left: 44, right: 10, top: 10, bottom: 28 };

interface Chart {
  root: SVGSVGElement;
  x: (i: number) => number;
  y: (v: number) => number;
}

/** Axes of a small line chart: y ticks at the range's ends and middle, x ticks labelled by `xLabel`. */
function axes(spec: typeof LINES, n: number, range: [number, number], xLabel: (i: number) => string, xTitle: string, className: string): Chart {
  const { width, height, left, right, top, bottom } = spec;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: `tw-chart ${className}` });
  const [low, high] = range;
  const x = (i: number) => left + (n > 1 ? i / (n - 1) : 0.5) * (width - left - right);
  const y = (v: number) => height - bottom - ((v - low) / (high - low)) * (height - top - bottom);
  for (const t of [0, 0.5, 1]) {
    const v = low + t * (high - low);
    root.appendChild(svg("line", { x1: left - 3, x2: width - right, y1: y(v), y2: y(v), class: "tw-grid" }));
    root.appendChild(svg("text", { x: left - 5, y: y(v) + 4, "text-anchor": "end", class: "tw-tick" })).textContent = format(v);
  }
  if (low < 0 && high > 0) root.appendChild(svg("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), class: "tw-zero" }));
  root.appendChild(svg("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, class: "tw-axis" }));
  const step = Math.max(1, Math.ceil(n / 10));
  for (let i = 0; i < n; i += step) {
    root.appendChild(svg("text", { x: x(i), y: height - bottom + 12, "text-anchor": "middle", class: "tw-tick" })).textContent = xLabel(i);
  }
  root.appendChild(svg("text", { x: width - right, y: height - 3, "text-anchor": "end", class: "tw-tick" })).textContent = xTitle;
  return { root, x, y };
}

/** A range that shows a flat line and leaves a margin. */
function padded(range: [number, number] | null): [number, number] {
  if (!range) return [0, 1];
  const [low, high] = range;
  if (!(high > low)) return [low - 0.5, high + 0.5];
  const margin = 0.05 * (high - low);
  return [low - margin, high + margin];
}

export class SnapshotsViewUI {
  readonly root: HTMLDivElement;
  readonly s: Snapshots;
  private shown!: HTMLDivElement;
  private note!: HTMLDivElement;
  private heatCaption!: HTMLSpanElement;
  private cells: HTMLTableCellElement[] = []; // message-major
  private rowHeads: HTMLTableCellElement[] = [];
  private legend!: HTMLDivElement;
  private roleCaption!: HTMLSpanElement;
  private roleCells: HTMLTableCellElement[] = []; // (reference, [user, assistant, difference])
  private linesCaption!: HTMLSpanElement;
  private lineBoxes: HTMLDivElement[] = [];
  private details: HTMLDetailsElement[] = [];
  private summaries: HTMLSpanElement[] = [];
  private tip!: HTMLDivElement;
  private readonly painted = new ThemeTracker();
  private heat: Palette = heatPalette([255, 255, 255], [31, 35, 40]);
  private diverging: Palette = divergingPalette([255, 255, 255], [31, 35, 40]);
  private selects: { destroy(): void }[] = [];
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<SnapshotsState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    const s = (this.s = decodeSnapshots(model.get("payload")));
    this.root = h("div", "tw-root tw-snapshots-view");
    addStyle(this.root);
    const how = s.singlePass ? "one pass" : "one pass per message";
    this.root.appendChild(
      h(
        "div",
        "tw-diff-title",
        `Conversation snapshots \u2014 ${s.messages.length} messages \u00d7 ${s.references.length} references, states read at ${s.readout} (${how}), ${s.nLayers} layers \u2014 ${s.modelId}`,
      ),
    );
    const bar = this.root.appendChild(h("div", "tw-controls"));
    const add = <K extends keyof SnapshotsState>(key: K, label: string, className: string, choices: [SnapshotsState[K], string][]) => {
      const select = new ModelSelect(model, key, label, className, choices);
      bar.appendChild(select.root);
      this.selects.push(select);
    };
    add("source", "source", "tw-source-select", s.sources.map((name) => [name, SOURCE_LABELS[name] ?? name]));
    add("metric", "metric", "tw-metric-select", METRICS.filter((m) => s.metrics.includes(m)).map((m) => [m, METRIC_LABELS[m]]));
    add("center", "states", "tw-center-select", [
      [false, "raw"],
      [true, "centred (per-layer mean subtracted)"],
    ]);
    const layers: [number | null, string][] = [[null, "mean over the layers"]];
    for (let l = 0; l < s.nLayers; l++) layers.push([l, `layer ${l}`]);
    add("layer", "layer", "tw-layer-select", layers);
    bar.appendChild(downloadButton(this.root, () => `snapshots-${this.sel.centred ? "centred" : "raw"}-${this.metric}`));
    this.shown = this.root.appendChild(h("div", "tw-snap-shown"));
    this.note = this.root.appendChild(h("div", "tw-overview-note tw-snap-note"));
    if (s.references.length === 0) {
      this.root.appendChild(
        h("div", "tw-status", "These snapshots have no references: pass references={label: messages} to model.conversation_snapshots to compare each message with them."),
      );
    }
    const top = this.root.appendChild(h("div", "tw-panels"));
    this.buildHeatmap(top);
    this.buildRoles(top);
    this.buildLines(this.root.appendChild(h("div", "tw-panels")));
    this.buildDetails(this.root);
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    for (const key of ["source", "metric", "center", "layer"]) this.listeners.onModel(`change:${key}`, () => this.update());
    this.listeners.onThemeOrLayout(this.root, () => this.paint());
    this.update();
  }

  // -- the selection -------------------------------------------------------------

  get metric(): Metric {
    const value = this.model.get("metric");
    return METRICS.includes(value) ? value : "cosine";
  }

  get sel(): Selection {
    const s = this.s;
    const source = Math.max(s.sources.indexOf(this.model.get("source")), 0);
    const layer = this.model.get("layer");
    const valid = typeof layer === "number" && layer >= 0 && layer < s.nLayers;
    return { source, centred: !!this.model.get("center"), metric: Math.max(s.metrics.indexOf(this.metric), 0), layer: valid ? layer : null };
  }

  private where(sel: Selection): string {
    return sel.layer === null ? `mean over the ${this.s.nLayers} layers` : `layer ${sel.layer}`;
  }

  // -- building ------------------------------------------------------------------

  private buildHeatmap(parent: HTMLElement): void {
    const s = this.s;
    const panel = parent.appendChild(h("div", "tw-panel tw-snap-heat-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Messages \u00d7 references"));
    this.heatCaption = header.appendChild(h("span"));
    const scroll = panel.appendChild(h("div", "tw-snap-scroll"));
    const table = scroll.appendChild(h("table", "tw-snap-heat"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    head.appendChild(h("th", "", "message"));
    for (const ref of s.references) head.appendChild(this.referenceLabel("th", ref.label, ref.color));
    const body = table.appendChild(h("tbody"));
    s.messages.forEach((message, m) => {
      const tr = body.appendChild(h("tr"));
      tr.dataset.message = String(m);
      const th = tr.appendChild(h("th", "tw-snap-msg"));
      th.appendChild(h("span", "tw-snap-index", `#${m}`));
      th.appendChild(h("span", `tw-snap-role tw-role-${message.role}`, message.role));
      th.appendChild(h("span", "tw-snap-preview", message.preview));
      th.title = message.content;
      this.rowHeads.push(th);
      s.references.forEach((_, r) => {
        const td = tr.appendChild(h("td", "tw-snap-cell tw-num"));
        td.dataset.message = String(m);
        td.dataset.reference = s.references[r].label;
        this.cells.push(td);
      });
    });
    this.listeners.on(table, "mouseover", (event: MouseEvent) => {
      const td = (event.target as HTMLElement).closest?.("td.tw-snap-cell") as HTMLTableCellElement | null;
      if (td) this.cellTip(td);
    });
    this.listeners.on(table, "mouseleave", () => (this.tip.style.display = "none"));
    // a click on a row opens its message's layer chart
    this.listeners.on(table, "click", (event: MouseEvent) => {
      const tr = (event.target as HTMLElement).closest?.("tr[data-message]") as HTMLTableRowElement | null;
      if (!tr) return;
      const details = this.details[Number(tr.dataset.message)];
      if (!details) return;
      details.open = true;
      details.scrollIntoView?.({ block: "nearest" });
    });
    this.legend = panel.appendChild(h("div", "tw-legend tw-snap-legend"));
  }

  private referenceLabel<K extends "th" | "td" | "span">(tag: K, label: string, colour: string): HTMLElementTagNameMap[K] {
    const node = h(tag, "tw-snap-ref");
    node.appendChild(h("span", "tw-swatch")).style.backgroundColor = colour;
    node.append(label);
    return node;
  }

  private cellTip(td: HTMLTableCellElement): void {
    const s = this.s;
    const sel = this.sel;
    const m = Number(td.dataset.message);
    const r = s.references.findIndex((ref) => ref.label === td.dataset.reference);
    const message = s.messages[m];
    const best = closest(s, sel, m);
    showTip(this.tip, this.root, td, [
      ["message", `#${m} ${message.role} (token ${message.position}): ${message.preview}`],
      ["reference", s.references[r].label],
      [`${this.sel.centred ? "centred" : "raw"} ${METRIC_SHORT[this.metric]}`, `${format(cell(s, sel, m, r))} (${this.where(sel)})`],
      ["closest", best < 0 ? "\u2013" : s.references[best].label],
    ]);
  }

  private buildRoles(parent: HTMLElement): void {
    const s = this.s;
    const panel = parent.appendChild(h("div", "tw-panel tw-snap-roles"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "User vs assistant"));
    this.roleCaption = header.appendChild(h("span"));
    const table = panel.appendChild(h("table", "tw-lens-table tw-snap-role-table"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    head.appendChild(h("th", "", "reference"));
    const counts = s.roles.map((role) => s.messages.filter((m) => m.role === role).length);
    s.roles.forEach((role, i) => head.appendChild(h("th", "tw-num", `${role} (${counts[i]})`)));
    head.appendChild(h("th", "tw-num", s.roles.length === 2 ? `${s.roles[1]} \u2212 ${s.roles[0]}` : "difference"));
    const body = table.appendChild(h("tbody"));
    s.references.forEach((ref) => {
      const tr = body.appendChild(h("tr"));
      tr.dataset.reference = ref.label;
      tr.appendChild(this.referenceLabel("td", ref.label, ref.color));
      for (let i = 0; i <= s.roles.length; i++) {
        const td = tr.appendChild(h("td", "tw-num"));
        td.dataset.role = i < s.roles.length ? s.roles[i] : "difference";
        this.roleCells.push(td);
      }
    });
    panel.appendChild(h("div", "tw-overview-note", "The mean of the heatmap's values over the messages of each role (the system message counts in neither)."));
  }

  private buildLines(parent: HTMLElement): void {
    const s = this.s;
    const panel = parent.appendChild(h("div", "tw-panel tw-snap-lines"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Over the conversation"));
    this.linesCaption = header.appendChild(h("span"));
    const legend = panel.appendChild(h("div", "tw-legend"));
    for (const ref of s.references) legend.appendChild(this.referenceLabel("span", ref.label, ref.color)).classList.add("tw-chip");
    const grid = panel.appendChild(h("div", "tw-snap-line-grid"));
    s.sources.forEach((source) => {
      const box = grid.appendChild(h("div", "tw-snap-line-box"));
      box.dataset.source = source;
      box.title = `show ${source} in the heatmap`;
      this.lineBoxes.push(box);
      this.listeners.on(box, "click", () => {
        this.model.set("source", source);
        this.model.save_changes();
      });
    });
  }

  private buildDetails(parent: HTMLElement): void {
    const s = this.s;
    const section = parent.appendChild(h("div", "tw-panel tw-snap-details"));
    const header = section.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Each message by layer"));
    header.append(" click to open; one line per reference");
    s.messages.forEach((message, m) => {
      const details = section.appendChild(h("details", "tw-snap-detail"));
      details.dataset.message = String(m);
      const summary = details.appendChild(h("summary"));
      summary.appendChild(h("span", "tw-snap-index", `#${m}`));
      summary.appendChild(h("span", `tw-snap-role tw-role-${message.role}`, message.role));
      summary.appendChild(h("span", "tw-snap-preview", message.preview));
      this.summaries.push(summary.appendChild(h("span", "tw-snap-closest")));
      this.details.push(details);
      this.listeners.on(details, "toggle", () => details.open && this.drawLayers(m));
    });
  }

  // -- drawing -------------------------------------------------------------------

  update(): void {
    const s = this.s;
    const sel = this.sel;
    const metric = this.metric;
    const state = sel.centred ? "centred" : "raw";
    const source = s.sources[sel.source];
    const values = heatValues(s, sel);
    const range = extent(values);
    const span = range ? `; the table spans ${format(range[0])} to ${format(range[1])}` : "";
    this.shown.replaceChildren(h("b", "", `Shown: ${state} ${METRIC_LABELS[metric]}`), ` of ${source}, ${this.where(sel)}${span}.`);
    this.shown.dataset.state = state;
    this.note.textContent = sel.centred
      ? `Centred: the mean over all ${s.messages.length} snapshots and ${s.references.length} references is subtracted from every state, per source and layer, before comparing, so what every state shares drops out.`
      : `Raw states: a few massive dimensions dominate the residual stream, so every state looks like every reference (raw cosines are nearly flat); choose "centred" to see what differs.`;
    const closer = higherIsCloser(metric) ? "higher is closer" : "lower is closer";
    this.heatCaption.textContent = ` ${state} ${METRIC_SHORT[metric]} (${this.where(sel)}); ${closer}, the closest reference of each message is framed`;
    this.roleCaption.textContent = ` ${state} ${METRIC_SHORT[metric]}, ${this.where(sel)}`;
    this.linesCaption.textContent = ` ${state} ${METRIC_SHORT[metric]} per source (${this.where(sel)}) by message (S system, U user, A assistant); click a chart to show its source`;
    s.messages.forEach((_, m) => {
      const best = closest(s, sel, m);
      s.references.forEach((_, r) => {
        const td = this.cells[m * s.references.length + r];
        const v = cell(s, sel, m, r);
        td.textContent = format(v);
        td.dataset.value = String(v);
        td.classList.toggle("tw-best", r === best);
      });
      this.summaries[m].textContent = best < 0 ? "" : `closest: ${s.references[best].label} (${format(cell(s, sel, m, best))})`;
    });
    s.references.forEach((_, r) => {
      const row = this.roleCells.slice(r * (s.roles.length + 1), (r + 1) * (s.roles.length + 1));
      const means = s.roles.map((_, i) => roleCell(s, sel, i, r));
      means.forEach((v, i) => {
        row[i].textContent = format(v);
        row[i].dataset.value = String(v);
      });
      const difference = means.length === 2 ? means[1] - means[0] : NaN;
      row[s.roles.length].textContent = format(difference);
      row[s.roles.length].dataset.value = String(difference);
    });
    this.drawLines(sel);
    this.details.forEach((details, m) => details.open && this.drawLayers(m));
    this.paint(true);
  }

  /** The colour scale of the heatmap: cosine on a fixed diverging -1..1 (so
   * a flat table reads flat), Jaccard on 0..1, MAE on 0..its largest value
   * for this source and centring at any layer. */
  private scale(): { low: number; high: number; diverging: boolean } {
    const metric = this.metric;
    if (metric === "cosine") return { low: -1, high: 1, diverging: true };
    if (metric === "jaccard") return { low: 0, high: 1, diverging: false };
    const range = extent(blockValues(this.s, this.sel));
    return { low: 0, high: range && range[1] > 0 ? range[1] : 1, diverging: false };
  }

  /** Colour the cells (`force`: even when the theme did not change). */
  paint(force = false): void {
    const theme = this.painted.next(this.root, force, (theme) => {
      this.heat = heatPalette(theme.background, theme.text);
      this.diverging = divergingPalette(theme.background, theme.text);
    });
    if (!theme) return;
    const { low, high, diverging } = this.scale();
    const palette = diverging ? this.diverging : this.heat;
    for (const td of this.cells) {
      const v = Number(td.dataset.value);
      let index = -1;
      if (Number.isFinite(v)) index = diverging ? divergingIndex(v, high) : Math.round(255 * Math.min(Math.max((v - low) / (high - low), 0), 1));
      const painted = index >= 0 && (diverging || index > 0);
      td.style.backgroundColor = painted ? palette.colours[index] : "";
      td.style.color = painted ? palette.text[index] : "";
    }
    this.legend.replaceChildren();
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `${palette.colours[Math.round(t * (palette.colours.length - 1))]} ${Math.round(t * 100)}%`);
    this.legend.appendChild(h("span", "tw-bar-label", format(diverging ? -high : low)));
    this.legend.appendChild(h("span", "tw-bar")).style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    this.legend.appendChild(h("span", "tw-bar-label", format(high)));
    const why =
      this.metric === "cosine"
        ? "a fixed scale, \u22121 to 1: a flat table reads flat"
        : this.metric === "jaccard"
          ? "0 (no top-1% dimension shared) to 1 (the same ones)"
          : `0 to the largest MAE of this source (${this.sel.centred ? "centred" : "raw"}) at any layer`;
    this.legend.appendChild(h("span", "tw-bar-label tw-scale-note", why));
  }

  private drawLines(sel: Selection): void {
    const s = this.s;
    const metric = this.metric;
    const all: number[] = [];
    s.sources.forEach((_, source) => all.push(...heatValues(s, sel, source)));
    const range = padded(extent(all));
    const role = (m: number) => `${m}${ROLE_LETTERS[s.messages[m].role] ?? ""}`;
    s.sources.forEach((source, k) => {
      const box = this.lineBoxes[k];
      box.classList.toggle("tw-selected", k === sel.source);
      const title = h("div", "tw-region-title", source);
      const chart = axes(LINES, s.messages.length, range, role, "message", "tw-snap-line-chart");
      s.references.forEach((ref, r) => {
        const points: string[] = [];
        for (let m = 0; m < s.messages.length; m++) {
          const v = cell(s, sel, m, r, k);
          if (!Number.isFinite(v)) continue;
          points.push(`${chart.x(m).toFixed(1)},${chart.y(v).toFixed(1)}`);
          const dot = chart.root.appendChild(svg("circle", { cx: chart.x(m), cy: chart.y(v), r: 2.2, class: "tw-snap-dot" }));
          dot.style.fill = ref.color;
          dot.dataset.message = String(m);
          dot.dataset.reference = ref.label;
          dot.dataset.value = String(v);
          dot.appendChild(svg("title")).textContent = `${source}, #${m} ${s.messages[m].role} vs ${ref.label}: ${format(v)}`;
        }
        const line = chart.root.appendChild(svg("polyline", { points: points.join(" "), fill: "none", "stroke-width": 1.6, class: "tw-line" }));
        line.style.stroke = ref.color;
        line.dataset.reference = ref.label;
      });
      chart.root.setAttribute("aria-label", `${METRIC_SHORT[metric]} of ${source} by message`);
      box.replaceChildren(title, chart.root);
    });
  }

  private drawLayers(m: number): void {
    const s = this.s;
    const sel = this.sel;
    const details = this.details[m];
    details.querySelector("svg")?.remove();
    const chart = axes(LAYERS, s.nLayers, padded(extent(blockValues(s, sel))), String, "layer", "tw-snap-layer-chart");
    if (sel.layer !== null) {
      const x = chart.x(sel.layer);
      chart.root.appendChild(svg("line", { x1: x, x2: x, y1: LAYERS.top, y2: LAYERS.height - LAYERS.bottom, class: "tw-cursor" }));
    }
    s.references.forEach((ref, r) => {
      const points: string[] = [];
      for (let l = 0; l < s.nLayers; l++) {
        const v = score(s, sel, m, r, l);
        if (!Number.isFinite(v)) continue;
        points.push(`${chart.x(l).toFixed(1)},${chart.y(v).toFixed(1)}`);
        const dot = chart.root.appendChild(svg("circle", { cx: chart.x(l), cy: chart.y(v), r: 2, class: "tw-snap-dot" }));
        dot.style.fill = ref.color;
        dot.dataset.layer = String(l);
        dot.dataset.reference = ref.label;
        dot.dataset.value = String(v);
        dot.appendChild(svg("title")).textContent = `layer ${l}, ${ref.label}: ${format(v)}`;
      }
      const line = chart.root.appendChild(svg("polyline", { points: points.join(" "), fill: "none", "stroke-width": 1.6, class: "tw-line" }));
      line.style.stroke = ref.color;
      line.dataset.reference = ref.label;
    });
    details.appendChild(chart.root);
  }

  destroy(): void {
    this.listeners.dispose();
    for (const select of this.selects) select.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<SnapshotsState>) => mount(model, el, () => new SnapshotsViewUI(model, el)),
};
