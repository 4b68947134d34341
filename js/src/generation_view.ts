// Generation view (a tw.Generation, tealeaves_widgets/widgets/generation.py):
// the steps of a captured generation above the explorer of its run. The
// generated text as token chips shaded by the chosen token's probability, a
// chart of p(chosen) and the entropy per step, and a step x rank table of the
// top-k probabilities. A click on a chip, a point or a row sets the synced
// `query` to that step, so the heatmap, curves and lens below show it.

import { format, svg } from "./curves";
import { type ExplorerState, ExplorerView } from "./explorer";
import { type Generation, decodeGeneration, stepOf, visible } from "./generation_wire";
import { type AnyModel, type RenderProps, h, mount } from "./model";

export interface GenerationState extends ExplorerState {
  generation: unknown;
}

const CHART = { width: 560, height: 150, left: 36, right: 40, top: 10, bottom: 26 };

/** Background of a cell or chip of probability p: the accent colour, more opaque when surer. */
function shade(p: number): string {
  const alpha = Number.isFinite(p) ? Math.max(0, Math.min(1, p)) * 0.55 : 0;
  return `rgba(31, 111, 235, ${alpha.toFixed(3)})`;
}

export class GenerationPanel {
  readonly root: HTMLDivElement;
  readonly g: Generation;
  private chips: HTMLSpanElement[] = [];
  private points: SVGCircleElement[] = [];
  private rows: HTMLTableRowElement[] = [];
  private cleanups: (() => void)[] = [];

  constructor(private model: AnyModel<GenerationState>) {
    const g = (this.g = decodeGeneration(model.get("generation")));
    this.root = h("div", "tw-generation");
    const stop = g.stopReason === "eos" ? "stopped at an end-of-sequence token" : "stopped at max_new_tokens";
    this.root.appendChild(
      h("div", "tw-diff-title", `Generation: ${g.nSteps} steps (${g.sampling}; ${stop}) after a ${g.promptLength}-token prompt \u2014 ${g.modelId}`),
    );
    this.root.appendChild(
      h("div", "tw-overview-note", "Click a token, a point or a row: that step becomes the query of the views below (what it attended to, how its prediction formed). Shade: probability of the chosen token."),
    );
    this.buildChips();
    const panels = this.root.appendChild(h("div", "tw-panels"));
    this.buildChart(panels);
    this.buildTable(panels);
    const clicked = (event: Event) => {
      const target = (event.target as Element).closest?.("[data-step]") as HTMLElement | SVGElement | null;
      if (!target || !this.root.contains(target)) return;
      const step = Number(target.getAttribute("data-step"));
      if (!(step >= 0 && step < g.nSteps)) return;
      this.model.set("query", g.queries[step]);
      this.model.save_changes();
    };
    this.root.addEventListener("click", clicked);
    this.cleanups.push(() => this.root.removeEventListener("click", clicked));
    const changed = () => this.update();
    model.on("change:query", changed);
    this.cleanups.push(() => model.off("change:query", changed));
    this.update();
  }

  private p(step: number): number {
    return Math.exp(this.g.logprobs[step]);
  }

  private buildChips(): void {
    const g = this.g;
    const text = this.root.appendChild(h("div", "tw-gen-text"));
    for (let i = 0; i < g.nSteps; i++) {
      const chip = text.appendChild(h("span", "tw-gen-chip", visible(g.tokens[i])));
      chip.dataset.step = String(i);
      chip.style.background = shade(this.p(i));
      const argmax = g.argmax[i] === g.tokens[i] ? "" : `; argmax ${JSON.stringify(g.argmax[i])}`;
      chip.title = `step ${i}: ${JSON.stringify(g.tokens[i])} p = ${format(this.p(i))}${argmax}; entropy ${format(g.entropy[i])} nats`;
      this.chips.push(chip);
    }
  }

  private buildChart(parent: HTMLElement): void {
    const g = this.g;
    const panel = parent.appendChild(h("div", "tw-panel tw-gen-chart-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Per step"));
    header.append(" p(chosen token) (dots, left axis) and entropy in nats (line, right axis)");
    const { width, height, left, right, top, bottom } = CHART;
    const chart = panel.appendChild(svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "tw-chart tw-gen-chart" }));
    const n = Math.max(g.nSteps, 1);
    const x = (i: number) => left + ((i + 0.5) / n) * (width - left - right);
    const y = (p: number) => height - bottom - p * (height - top - bottom);
    let hmax = 0;
    for (const e of g.entropy) if (Number.isFinite(e)) hmax = Math.max(hmax, e);
    hmax = hmax > 0 ? hmax : 1;
    for (const v of [0, 0.5, 1]) {
      chart.appendChild(svg("line", { x1: left - 3, x2: width - right, y1: y(v), y2: y(v), class: "tw-grid", stroke: "#eee" }));
      chart.appendChild(svg("text", { x: left - 5, y: y(v) + 4, "text-anchor": "end", class: "tw-tick" })).textContent = format(v);
      chart.appendChild(svg("text", { x: width - right + 5, y: y(v) + 4, "text-anchor": "start", class: "tw-tick" })).textContent = format(v * hmax);
    }
    const line = Array.from(g.entropy, (e, i) => `${x(i).toFixed(1)},${y(Number.isFinite(e) ? e / hmax : 0).toFixed(1)}`).join(" ");
    chart.appendChild(svg("polyline", { points: line, fill: "none", class: "tw-gen-entropy" }));
    for (let i = 0; i < g.nSteps; i++) {
      const dot = chart.appendChild(svg("circle", { cx: x(i), cy: y(this.p(i)), r: 3.5, class: "tw-gen-point" }));
      dot.setAttribute("data-step", String(i));
      dot.appendChild(svg("title")).textContent = `step ${i} ${JSON.stringify(g.tokens[i])}: p = ${format(this.p(i))}, entropy ${format(g.entropy[i])}`;
      this.points.push(dot);
    }
    chart.appendChild(svg("text", { x: width - right, y: height - 4, "text-anchor": "end", class: "tw-tick" })).textContent = `step (0..${g.nSteps - 1})`;
  }

  private buildTable(parent: HTMLElement): void {
    const g = this.g;
    const panel = parent.appendChild(h("div", "tw-panel tw-gen-table-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", `Top ${g.k}`));
    header.append(" next-token probabilities per step (the model's own distribution, before any sampling warp); outlined: the token chosen");
    const scroll = panel.appendChild(h("div", "tw-lens-scroll tw-gen-scroll"));
    const table = scroll.appendChild(h("table", "tw-lens-table tw-gen-table"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    head.appendChild(h("th", "", "step"));
    for (let r = 1; r <= g.k; r++) head.appendChild(h("th", "", `#${r}`));
    const body = table.appendChild(h("tbody"));
    for (let i = 0; i < g.nSteps; i++) {
      const tr = body.appendChild(h("tr"));
      tr.dataset.step = String(i);
      tr.appendChild(h("td", "tw-num", String(i)));
      for (let r = 0; r < g.k; r++) {
        const token = g.topTokens[i * g.k + r];
        const p = Math.exp(g.topLogprobs[i * g.k + r]);
        const td = tr.appendChild(h("td", token === g.tokens[i] ? "tw-gen-cell tw-gen-chosen" : "tw-gen-cell"));
        td.appendChild(h("span", "tw-gen-token", visible(token)));
        td.appendChild(h("span", "tw-gen-prob", format(p)));
        td.style.background = shade(p);
        td.dataset.value = String(p);
      }
      this.rows.push(tr);
    }
  }

  /** Mark the step the explorer shows. */
  update(): void {
    const step = stepOf(this.g, this.model.get("query"));
    this.chips.forEach((chip, i) => chip.classList.toggle("tw-selected", i === step));
    this.points.forEach((dot, i) => dot.classList.toggle("tw-selected", i === step));
    this.rows.forEach((row, i) => row.classList.toggle("tw-current", i === step));
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

const STYLE = `
.tw-generation { margin-bottom: 10px; border-bottom: 1px solid var(--tw-border); padding-bottom: 8px; }
.tw-gen-text { font: 13px/1.9 ui-monospace, SFMono-Regular, Menlo, monospace; margin: 6px 0; white-space: normal; }
.tw-gen-chip { display: inline-block; padding: 0 3px; margin: 1px; border-radius: 3px; cursor: pointer; border: 1px solid var(--tw-border); color: var(--tw-fg-strong); white-space: pre; }
.tw-gen-chip.tw-selected { outline: 2px solid var(--tw-accent); }
.tw-gen-point { fill: var(--tw-accent); cursor: pointer; }
.tw-gen-point.tw-selected { stroke: var(--tw-fg-strong); stroke-width: 2; r: 5.5; }
.tw-gen-entropy { stroke: var(--tw-fg-muted); stroke-width: 1.2; stroke-dasharray: 3 2; }
.tw-gen-scroll { max-height: 260px; overflow: auto; }
.tw-gen-table tr { cursor: pointer; }
.tw-gen-cell { white-space: nowrap; font-size: 11px; }
.tw-gen-cell .tw-gen-token { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; margin-right: 4px; color: var(--tw-fg-strong); }
.tw-gen-cell .tw-gen-prob { color: var(--tw-fg-muted); }
.tw-gen-chosen { outline: 2px solid var(--tw-accent); outline-offset: -2px; }
`;

export default {
  render: ({ model, el }: RenderProps<GenerationState>) =>
    mount(model, el, () => {
      const explorer = new ExplorerView(model, el);
      const panel = new GenerationPanel(model);
      const style = document.createElement("style");
      style.textContent = STYLE;
      panel.root.prepend(style);
      explorer.heatmap.root.prepend(panel.root);
      Object.defineProperty(explorer.heatmap.root, "tealeavesGeneration", { value: panel, configurable: true });
      return {
        destroy() {
          panel.destroy();
          explorer.destroy();
        },
      };
    }),
};
