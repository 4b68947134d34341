// Previous-token test view (a tw.PrevTokenTest,
// tealeaves_widgets/widgets/prev_token.py): the head's redundancy with the
// values at t-k for every offset k as bars with +-1 sd of the residual
// effect (a previous-token head peaks at k = 1), and for the offset picked
// (a click on its bar) the per-layer table of the four pairs of passes, the
// normalised inner product or the cosine, mean +- sd over the texts.

import { ModelSelect } from "./controls";
import { format, svg } from "./curves";
import { type AnyModel, type RenderProps, h, mount } from "./model";
import { MEASURES, type Measure, type PrevTokenTest, cell, decodePrevToken, peak } from "./prev_token_wire";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";

export interface PrevTokenState {
  payload: unknown;
  offset: number;
  measure: Measure;
}

const MEASURE_LABELS: Record<Measure, string> = {
  inner: "normalised inner product \u27e8x, y\u27e9/|x|\u00b2",
  cos: "cosine",
};
const CHART = { width: 300, height: 180, left: 40, right: 10, top: 12, bottom: 30 };

export class PrevTokenViewUI {
  readonly root: HTMLDivElement;
  readonly t: PrevTokenTest;
  private bars: SVGRectElement[] = [];
  private caption!: HTMLSpanElement;
  private head!: HTMLTableRowElement;
  private scroll!: HTMLDivElement;
  private body!: HTMLTableSectionElement;
  private selects: { destroy(): void }[] = [];
  private cleanups: (() => void)[] = [];

  constructor(
    private model: AnyModel<PrevTokenState>,
    el: HTMLElement,
  ) {
    const t = (this.t = decodePrevToken(model.get("payload")));
    this.root = h("div", "tw-root tw-prev-token-view");
    addStyle(this.root);
    const values = t.valueHeads === null ? `every head of layer ${t.layer}` : `heads ${t.valueHeads.join(", ")} of layer ${t.layer}`;
    const best = peak(t);
    const verdict = best < 0 ? "" : ` \u2014 redundancy peaks at k = ${t.offsets[best]}${t.offsets[best] === 1 ? " (as a previous-token head's does)" : ""}`;
    this.root.appendChild(
      h("div", "tw-diff-title", `Previous-token test of head L${t.layer}H${t.head} over ${t.nTexts} positions; B zeroes the values at t\u2212k of ${values}${verdict} \u2014 ${t.modelId}`),
    );
    const bar = this.root.appendChild(h("div", "tw-controls"));
    const select = new ModelSelect(model, "measure", "table", "tw-measure-select", MEASURES.map((m) => [m, MEASURE_LABELS[m]] as [Measure, string]));
    bar.appendChild(select.root);
    this.selects.push(select);
    bar.appendChild(h("span", "tw-bar-label", "click a bar to show its offset's table"));
    bar.appendChild(downloadButton(this.root, "prev-token"));
    const body = this.root.appendChild(h("div", "tw-panels"));
    this.buildChart(body);
    this.buildTable(body);
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    for (const key of ["offset", "measure"]) this.onModel(`change:${key}`, () => this.update());
    this.update();
    this.scrollOnceLaidOut();
  }

  /** Open the table at the head's layer (the layers before it read 1). */
  private scrollOnceLaidOut(): void {
    const scrolled = () => {
      const row = this.body.rows[this.t.layer];
      if (!row || this.scroll.clientHeight === 0) return false;
      this.scroll.scrollTop = Math.max(0, row.offsetTop - this.head.offsetHeight);
      return true;
    };
    if (scrolled() || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(() => {
      if (scrolled()) observer.disconnect();
    });
    observer.observe(this.scroll);
    this.cleanups.push(() => observer.disconnect());
  }

  /** Index of the selected offset (the first when the synced one is unknown). */
  get k(): number {
    return Math.max(this.t.offsets.indexOf(this.model.get("offset")), 0);
  }

  get measure(): Measure {
    const value = this.model.get("measure");
    return MEASURES.includes(value) ? value : "inner";
  }

  private buildChart(parent: HTMLElement): void {
    const t = this.t;
    const panel = parent.appendChild(h("div", "tw-panel tw-sweep"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Redundancy"));
    header.append(" 1 \u2212 |AB \u2212 B| / |A \u2212 base| by offset k");
    const { width, height, left, right, top, bottom } = CHART;
    const chart = panel.appendChild(svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "tw-chart tw-sweep-chart" }));
    let low = 0;
    let high = 1;
    t.redundancy.forEach((v, k) => {
      const sd = t.residualEffectSd[k];
      if (!Number.isFinite(v)) return;
      low = Math.min(low, v - (Number.isFinite(sd) ? sd : 0));
      high = Math.max(high, v + (Number.isFinite(sd) ? sd : 0));
    });
    const y = (v: number) => height - bottom - ((v - low) / (high - low)) * (height - top - bottom);
    const slot = (width - left - right) / Math.max(t.offsets.length, 1);
    // the axis labels 0 and the ends; an end too close to 0 to be read apart is left unlabelled
    const ticks = [0, ...[low, high].filter((v) => v !== 0 && Math.abs(y(v) - y(0)) >= 14)];
    for (const v of ticks) {
      chart.appendChild(svg("line", { x1: left - 3, x2: width - right, y1: y(v), y2: y(v), stroke: "#eee", class: v === 0 ? "tw-zero" : "tw-grid" }));
      chart.appendChild(svg("text", { x: left - 5, y: y(v) + 4, "text-anchor": "end", class: "tw-tick" })).textContent = format(v);
    }
    t.offsets.forEach((offset, k) => {
      const v = t.redundancy[k];
      const x = left + k * slot + slot * 0.15;
      const w = slot * 0.7;
      const y0 = y(0);
      const y1 = Number.isFinite(v) ? y(v) : y0;
      const rect = chart.appendChild(
        svg("rect", { x, y: Math.min(y0, y1), width: w, height: Math.max(Math.abs(y1 - y0), 0.5), class: "tw-sweep-bar" }),
      );
      rect.dataset.offset = String(offset);
      rect.dataset.value = String(v);
      rect.appendChild(svg("title")).textContent = `k = ${offset}: redundancy ${format(v)} (sd of the residual effect ${format(t.residualEffectSd[k])})`;
      this.bars.push(rect);
      const sd = t.residualEffectSd[k];
      if (Number.isFinite(v) && Number.isFinite(sd)) {
        const cx = x + w / 2;
        chart.appendChild(svg("line", { x1: cx, x2: cx, y1: y(v - sd), y2: y(v + sd), class: "tw-axis tw-error-bar" }));
      }
      chart.appendChild(svg("text", { x: x + w / 2, y: height - bottom + 13, "text-anchor": "middle", class: "tw-tick" })).textContent = String(offset);
    });
    chart.appendChild(svg("text", { x: width - right, y: height - 3, "text-anchor": "end", class: "tw-tick" })).textContent = "offset k";
    const click = (event: MouseEvent) => {
      const rect = (event.target as Element).closest?.("rect[data-offset]") as SVGRectElement | null;
      if (!rect) return;
      this.model.set("offset", Number(rect.dataset.offset));
      this.model.save_changes();
    };
    chart.addEventListener("click", click);
    this.cleanups.push(() => chart.removeEventListener("click", click));
    panel.appendChild(
      h(
        "div",
        "tw-overview-note",
        "1: removing the head changes nothing once the values at t\u2212k are gone (it carries only what sits there); 0: its effect is the same without them. Bars: mean over the positions; lines: \u00b11 sd of the residual effect.",
      ),
    );
  }

  private buildTable(parent: HTMLElement): void {
    const panel = parent.appendChild(h("div", "tw-panel tw-prev-table"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Per layer"));
    this.caption = header.appendChild(h("span"));
    const scroll = (this.scroll = panel.appendChild(h("div", "tw-lens-scroll")));
    const table = scroll.appendChild(h("table", "tw-lens-table tw-pairs-table"));
    this.head = table.appendChild(h("thead")).appendChild(h("tr"));
    this.body = table.appendChild(h("tbody"));
  }

  private onModel(event: string, handler: () => void): void {
    this.model.on(event, handler);
    this.cleanups.push(() => this.model.off(event, handler));
  }

  update(): void {
    const t = this.t;
    const k = this.k;
    const measure = this.measure;
    this.bars.forEach((bar, i) => bar.classList.toggle("tw-selected", i === k));
    this.caption.textContent = ` attention output at t, mean \u00b1 sd over the positions, B and A+B at k = ${t.offsets[k]} (${MEASURE_LABELS[measure]}; 1: unchanged)`;
    this.head.replaceChildren(h("th", "", "layer"));
    for (const pair of t.pairs) this.head.appendChild(h("th", "", pair));
    this.body.replaceChildren();
    for (let l = 0; l < t.nLayers; l++) {
      // layers before the head's see none of its removal: every pair reads 1 there
      const tr = this.body.appendChild(h("tr", l === t.layer ? "tw-current" : l < t.layer ? "tw-before" : ""));
      tr.appendChild(h("td", "tw-num", String(l)));
      t.pairs.forEach((_, p) => {
        const [mean, sd] = cell(t, measure, k, p, l);
        const td = tr.appendChild(h("td", "tw-num", `${format(mean)} \u00b1 ${format(sd)}`));
        td.dataset.value = String(mean);
      });
    }
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    for (const select of this.selects) select.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<PrevTokenState>) => mount(model, el, () => new PrevTokenViewUI(model, el)),
};
