// Head gates view: fitted Causal Head Gating gates (a tw.HeadGates,
// tealeaves_widgets/widgets/head_gates.py) as a layer x head grid, one phase
// at a time (plain, retention, removal: the gate's value on the heatmap's
// palette, shut = the background, open = the darkest shade) or the taxonomy
// the last two give (facilitating, interfering, irrelevant), with the legend
// of the taxonomy and, beside the grid, the task loss of each phase per
// update step. Hovering a cell shows the head's gate in all three phases.

import { css, contrast, divergingPalette, heatPalette, type Palette, type RGB } from "./colour";
import { ModelSelect } from "./controls";
import { format, svg } from "./curves";
import {
  GRID_PHASES,
  type GridPhase,
  type HeadGates,
  LABEL_HELP,
  decodeHeadGates,
  gate,
  label,
  labelCounts,
  phaseStart,
  totalSteps,
} from "./head_gates_wire";
import { Listeners } from "./listeners";
import { type AnyModel, type RenderProps, h, mount, showTip } from "./model";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { type Theme, ThemeTracker } from "./theme";

export interface HeadGatesState {
  payload: unknown;
  phase: GridPhase;
}

const PHASE_LABELS: Record<GridPhase, string> = {
  plain: "plain fit: gates",
  retention: "retention: gates",
  removal: "removal: gates",
  label: "label (taxonomy)",
};
/** Line colours of the phases' loss curves (theme variables, style.ts). */
const PHASE_COLOURS: Record<string, string> = {
  plain: "var(--tw-fg-muted)",
  retention: "var(--tw-accent)",
  removal: "var(--tw-del)",
};
const CHART = { width: 300, height: 170, left: 46, right: 10, top: 10, bottom: 28 };

/** Colours of the labels on a theme: facilitating and interfering at the
 * diverging palette's two ends, irrelevant a faint grey. */
export function labelColours(theme: Theme): Record<string, { background: string; text: string }> {
  const diverging = divergingPalette(theme.background, theme.text);
  const ends = [diverging.colours[0], diverging.colours[diverging.colours.length - 1]];
  const inks = [diverging.text[0], diverging.text[diverging.text.length - 1]];
  const grey: RGB = theme.dark ? [70, 70, 70] : [222, 222, 222];
  const greyInk = contrast(grey, theme.text) >= 4.5 ? "" : css(theme.dark ? [255, 255, 255] : [0, 0, 0]);
  return {
    facilitating: { background: ends[0], text: inks[0] },
    interfering: { background: ends[1], text: inks[1] },
    irrelevant: { background: css(grey), text: greyInk },
  };
}

const LETTERS: Record<string, string> = { facilitating: "F", interfering: "I", irrelevant: "" };

export class HeadGatesViewUI {
  readonly root: HTMLDivElement;
  readonly g: HeadGates;
  private cells: HTMLTableCellElement[] = []; // (layer, head) order
  private legend!: HTMLDivElement;
  private chart!: SVGSVGElement;
  private lines = new Map<string, SVGPolylineElement>();
  private tip!: HTMLDivElement;
  private readonly painted = new ThemeTracker();
  private heat: Palette = heatPalette([255, 255, 255], [31, 35, 40]);
  private labels = labelColours({ background: [255, 255, 255], text: [31, 35, 40], dark: false });
  private selects: { destroy(): void }[] = [];
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<HeadGatesState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    const g = (this.g = decodeHeadGates(model.get("payload")));
    this.root = h("div", "tw-root tw-head-gates-view");
    addStyle(this.root);
    const counts = labelCounts(g);
    const words = g.labelNames.map((name, i) => `${counts[i]} ${name}`).join(", ");
    const plain = g.losses[g.phases.indexOf("plain")];
    const fitted = plain && plain.length ? `, ${format(plain[plain.length - 1])} after the plain fit` : "";
    this.root.appendChild(
      h(
        "div",
        "tw-diff-title",
        `Causal Head Gating \u2014 ${g.nLayers} layers \u00d7 ${g.nHeads} heads: ${words} \u2014 task loss ${format(g.baseLoss)} with every gate open${fitted} \u2014 \u03bb = ${g.strength}, threshold ${g.threshold} \u2014 ${g.modelId}`,
      ),
    );
    const bar = this.root.appendChild(h("div", "tw-controls"));
    const select = new ModelSelect(model, "phase", "show", "tw-phase-select", GRID_PHASES.map((p) => [p, PHASE_LABELS[p]] as [GridPhase, string]));
    bar.appendChild(select.root);
    this.selects.push(select);
    bar.appendChild(h("span", "tw-bar-label", "hover a cell for the head's gate in every phase"));
    bar.appendChild(downloadButton(this.root, "head-gates"));
    this.legend = this.root.appendChild(h("div", "tw-legend tw-gates-legend"));
    const body = this.root.appendChild(h("div", "tw-panels tw-gates-body"));
    this.buildGrid(body);
    this.buildChart(body);
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    this.listeners.onModel("change:phase", () => this.paint(true));
    this.listeners.onThemeOrLayout(this.root, () => this.paint());
    this.paint(true);
  }

  get phase(): GridPhase {
    const value = this.model.get("phase");
    return GRID_PHASES.includes(value) ? value : "label";
  }

  // -- building ------------------------------------------------------------------

  private buildGrid(parent: HTMLElement): void {
    const g = this.g;
    const panel = parent.appendChild(h("div", "tw-panel tw-gates-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Heads"));
    header.append(" layer \u2192, head \u2193");
    const scroll = panel.appendChild(h("div", "tw-gates-scroll"));
    const table = scroll.appendChild(h("table", "tw-gates-grid"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    head.appendChild(h("th", "", ""));
    for (let layer = 0; layer < g.nLayers; layer++) head.appendChild(h("th", "tw-gates-layer", String(layer)));
    const body = table.appendChild(h("tbody"));
    const rows: HTMLTableRowElement[] = [];
    for (let head_ = 0; head_ < g.nHeads; head_++) {
      const tr = body.appendChild(h("tr"));
      tr.appendChild(h("th", "tw-gates-head", `h${head_}`));
      rows.push(tr);
    }
    this.cells = new Array(g.nLayers * g.nHeads);
    for (let layer = 0; layer < g.nLayers; layer++) {
      for (let head_ = 0; head_ < g.nHeads; head_++) {
        const td = rows[head_].appendChild(h("td", "tw-gate"));
        td.dataset.layer = String(layer);
        td.dataset.head = String(head_);
        this.cells[layer * g.nHeads + head_] = td;
      }
    }
    this.listeners.on(table, "mouseover", (event: MouseEvent) => {
      const td = (event.target as HTMLElement).closest?.("td.tw-gate") as HTMLTableCellElement | null;
      if (td) this.cellTip(td);
    });
    this.listeners.on(table, "mouseleave", () => (this.tip.style.display = "none"));
  }

  private cellTip(td: HTMLTableCellElement): void {
    const g = this.g;
    const layer = Number(td.dataset.layer);
    const head = Number(td.dataset.head);
    const name = label(g, layer, head);
    showTip(this.tip, this.root, td, [
      ["head", `layer ${layer}, head ${head}`],
      ...g.phases.map((phase) => [phase, format(gate(g, phase, layer, head))] as [string, string]),
      ["label", `${name}: ${LABEL_HELP[name] ?? ""}`],
    ]);
  }

  private buildChart(parent: HTMLElement): void {
    const g = this.g;
    const panel = parent.appendChild(h("div", "tw-panel tw-gates-loss"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Task loss"));
    header.append(" per update step");
    const { width, height, left, right, top, bottom } = CHART;
    this.chart = panel.appendChild(svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "tw-chart tw-loss-chart" }));
    const steps = Math.max(totalSteps(g), 1);
    let low = g.baseLoss;
    let high = g.baseLoss;
    for (const curve of g.losses) {
      for (const v of curve) {
        if (!Number.isFinite(v)) continue;
        low = Math.min(low, v);
        high = Math.max(high, v);
      }
    }
    if (!(high > low)) [low, high] = [low - 0.5, high + 0.5];
    const x = (step: number) => left + (step / Math.max(steps - 1, 1)) * (width - left - right);
    const y = (v: number) => height - bottom - ((v - low) / (high - low)) * (height - top - bottom);
    const axes = this.chart.appendChild(svg("g"));
    for (const t of [0, 0.5, 1]) {
      const v = low + t * (high - low);
      axes.appendChild(svg("line", { x1: left - 3, x2: width - right, y1: y(v), y2: y(v), stroke: "#eee", class: "tw-grid" }));
      axes.appendChild(svg("text", { x: left - 5, y: y(v) + 4, "text-anchor": "end", class: "tw-tick" })).textContent = format(v);
    }
    axes.appendChild(svg("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, stroke: "#999", class: "tw-axis" }));
    axes.appendChild(svg("line", { x1: left, x2: left, y1: top, y2: height - bottom, stroke: "#999", class: "tw-axis" }));
    const tickStep = Math.max(1, Math.ceil((steps - 1) / 5));
    for (let step = 0; step < steps; step += tickStep) {
      axes.appendChild(svg("text", { x: x(step), y: height - bottom + 13, "text-anchor": "middle", class: "tw-tick" })).textContent = String(step);
    }
    axes.appendChild(svg("text", { x: width - right, y: height - 3, "text-anchor": "end", class: "tw-tick" })).textContent = "step";
    const base = this.chart.appendChild(
      svg("line", { x1: left, x2: width - right, y1: y(g.baseLoss), y2: y(g.baseLoss), "stroke-dasharray": "4 3", class: "tw-zero tw-base-loss" }),
    );
    base.appendChild(svg("title")).textContent = `every gate open: ${format(g.baseLoss)}`;
    g.phases.forEach((phase, p) => {
      const curve = g.losses[p];
      const start = phaseStart(g, p);
      const points: string[] = [];
      // a branch starts from the plain fit's last point, so the chart shows where it left
      const plain = g.losses[g.phases.indexOf("plain")];
      if (start > 0 && plain?.length && Number.isFinite(plain[plain.length - 1])) {
        points.push(`${x(start - 1).toFixed(1)},${y(plain[plain.length - 1]).toFixed(1)}`);
      }
      curve.forEach((v, i) => {
        if (Number.isFinite(v)) points.push(`${x(start + i).toFixed(1)},${y(v).toFixed(1)}`);
      });
      const line = this.chart.appendChild(svg("polyline", { points: points.join(" "), fill: "none", "stroke-width": 1.8, class: "tw-line tw-loss-line" }));
      line.style.stroke = PHASE_COLOURS[phase] ?? "currentColor";
      line.dataset.phase = phase;
      const last = curve.length ? format(curve[curve.length - 1]) : "\u2013";
      line.appendChild(svg("title")).textContent = `${phase}: ${curve.length} steps, last ${last}`;
      this.lines.set(phase, line);
    });
    const legend = panel.appendChild(h("div", "tw-legend tw-loss-legend"));
    g.phases.forEach((phase, p) => {
      const chip = legend.appendChild(h("span", "tw-chip"));
      chip.appendChild(h("span", "tw-swatch")).style.backgroundColor = PHASE_COLOURS[phase] ?? "currentColor";
      const curve = g.losses[p];
      chip.append(`${phase} ${curve.length ? format(curve[curve.length - 1]) : "\u2013"}`);
    });
    const chip = legend.appendChild(h("span", "tw-chip"));
    chip.appendChild(h("span", "tw-swatch tw-dashed")).style.color = "var(--tw-axis)";
    chip.append(`all open ${format(g.baseLoss)}`);
    panel.appendChild(
      h(
        "div",
        "tw-overview-note",
        `The loss is the targets' mean negative log-likelihood, without the regularisation: retention (+\u03bb\u00b7mean(1\u2212g)) and removal (+\u03bb\u00b7mean(g)) both start where the plain fit ended.`,
      ),
    );
  }

  // -- drawing -------------------------------------------------------------------

  /** Colour the cells for the phase shown (`force`: even when the theme did not change). */
  paint(force = false): void {
    const theme = this.painted.next(this.root, force, (theme) => {
      this.heat = heatPalette(theme.background, theme.text);
      this.labels = labelColours(theme);
    });
    if (!theme) return;
    const g = this.g;
    const phase = this.phase;
    for (let layer = 0; layer < g.nLayers; layer++) {
      for (let head = 0; head < g.nHeads; head++) {
        const td = this.cells[layer * g.nHeads + head];
        const name = label(g, layer, head);
        td.dataset.label = name;
        if (phase === "label") {
          const colour = this.labels[name] ?? { background: "", text: "" };
          td.style.backgroundColor = colour.background;
          td.style.color = colour.text;
          td.textContent = LETTERS[name] ?? "";
          td.dataset.value = name;
        } else {
          const value = gate(g, phase, layer, head);
          const index = Number.isFinite(value) ? Math.round(255 * Math.min(Math.max(value, 0), 1)) : 0;
          td.style.backgroundColor = index > 0 ? this.heat.colours[index] : "";
          td.style.color = "";
          td.textContent = "";
          td.dataset.value = String(value);
        }
      }
    }
    for (const [name, line] of this.lines) {
      line.classList.toggle("tw-hot", name === phase);
      line.classList.toggle("tw-dim", phase !== "label" && name !== phase);
    }
    this.drawLegend(phase);
  }

  private drawLegend(phase: GridPhase): void {
    const g = this.g;
    this.legend.replaceChildren();
    if (phase === "label") {
      const counts = labelCounts(g);
      g.labelNames.forEach((name, i) => {
        const chip = this.legend.appendChild(h("span", "tw-chip tw-label-chip"));
        chip.title = LABEL_HELP[name] ?? "";
        const swatch = chip.appendChild(h("span", "tw-gate-swatch", LETTERS[name] ?? ""));
        swatch.style.backgroundColor = this.labels[name]?.background ?? "";
        swatch.style.color = this.labels[name]?.text ?? "";
        chip.appendChild(h("b", "", `${name} (${counts[i]})`));
        chip.append(`: ${LABEL_HELP[name] ?? ""}`);
      });
      return;
    }
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `${this.heat.colours[Math.max(0, Math.round(t * 255))]} ${Math.round(t * 100)}%`);
    this.legend.appendChild(h("span", "tw-bar-label", "0 shut"));
    const bar = this.legend.appendChild(h("span", "tw-bar"));
    bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    this.legend.appendChild(h("span", "tw-bar-label", "1 open"));
    const help =
      phase === "plain"
        ? "the gates after the plain fit (the loss alone, from gates near 1)"
        : phase === "retention"
          ? `after retention (every gate pushed open): a gate under ${g.threshold} marks an interfering head`
          : `after removal (every gate pushed shut): a gate at ${g.threshold} or more marks a facilitating head`;
    this.legend.appendChild(h("span", "tw-bar-label tw-scale-note", help));
  }

  destroy(): void {
    this.listeners.dispose();
    for (const select of this.selects) select.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<HeadGatesState>) => mount(model, el, () => new HeadGatesViewUI(model, el)),
};
