// Ablation view: what removing heads, values or regions did to the prediction
// at one query (a tw.Ablation, tealeaves_widgets/widgets/ablation.py).
//
// - The prompt as a strip of tokens, t (the query read) and t-1 marked; the
//   positions a condition touches are marked while its row is pointed at.
// - A table, one row per condition, sortable by a click on a column header:
//   the predicted token and its probability, the change of the baseline top
//   token's log-probability and of its centred logit, KL, and the tokens whose
//   logit rose and fell most, each cell coloured by its signed change on the
//   theme's diverging palette (one scale for the whole table).
// - The knockout panel, for conditions that knock out one region each: the
//   base run's cooking curves at the query beside, per region, its attention
//   mass at the selected layer and the change of the top token's log-prob
//   when it is knocked out (attention next to causal effect).
// - A click on a row opens the explorer of that condition's run under the
//   table, sharing the view's layer, query, head and region. The run comes
//   from synced state (`runs`), or, when it was over the budget, from the
//   kernel (`detail`); an exported page without it says so.
//
// Token text is set with textContent only.

import {
  type Ablation,
  FIRST_DESCENDING,
  type SortKey,
  changeCells,
  changeScale,
  decodeAblation,
  isSortKey,
  knockoutRows,
  rowOrder,
  signed,
  tokenText,
} from "./ablation_wire";
import { type Palette, divergingIndex, divergingPalette } from "./colour";
import { LayerSlider, ModelSelect } from "./controls";
import { CurvesPanel, format } from "./curves";
import { type ExplorerState, ExplorerView } from "./explorer";
import { displayText } from "./heatmap";
import { showToken } from "./lens";
import { Listeners } from "./listeners";
import { type AnyModel, type Callback, type RenderProps, h, mount, showError, showTip } from "./model";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { ThemeTracker, markDark } from "./theme";
import { type Payload, decodePayload } from "./wire";

/** `selected` of the unablated run's row (AblationView.BASELINE in Python). */
export const BASELINE = "(baseline)";

export interface RunDetail {
  condition: number;
  payload: unknown;
}

export interface AblationState extends ExplorerState {
  ablation: unknown;
  runs: unknown[];
  detail: RunDetail | null;
  selected: string | null;
  sort: SortKey;
  descending: boolean;
  changes: number;
}

/** The model the embedded explorer sees: the view's model with another run as
 * its payload. Its selection is the view's own (the same layer, query, head,
 * region...); its requests for per-head rows name the condition (`run`), and
 * only the replies to them reach it. */
export class RunModel implements AnyModel<ExplorerState> {
  private wrapped = new Map<Callback, Callback>();

  constructor(
    private parent: AnyModel<AblationState>,
    private payload: unknown,
    readonly run: number | null,
  ) {}

  get<K extends keyof ExplorerState>(key: K): ExplorerState[K] {
    return key === "payload" ? (this.payload as ExplorerState[K]) : this.parent.get(key);
  }

  set<K extends keyof ExplorerState>(key: K, value: ExplorerState[K]): void {
    if (key !== "payload") this.parent.set(key, value as AblationState[K]);
  }

  save_changes(): void {
    this.parent.save_changes();
  }

  on(event: string, callback: Callback): void {
    if (event === "change:payload") return; // this run's payload never changes
    let target = callback;
    if (event === "msg:custom") {
      target = (content: unknown, ...rest: unknown[]) => {
        if (this.mine(content)) callback(content, ...rest);
      };
      this.wrapped.set(callback, target);
    }
    this.parent.on(event, target);
  }

  off(event?: string | null, callback?: Callback | null): void {
    const target = callback ? (this.wrapped.get(callback) ?? callback) : callback;
    if (callback) this.wrapped.delete(callback);
    this.parent.off(event, target);
  }

  send(content: unknown, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void {
    const tagged = this.run === null || content === null || typeof content !== "object" ? content : { ...content, run: this.run };
    this.parent.send(tagged, callbacks, buffers);
  }

  /** A head_rows reply for another run is not this explorer's. */
  private mine(content: unknown): boolean {
    if (content === null || typeof content !== "object") return true;
    const message = content as { kind?: unknown; run?: unknown };
    if (message.kind !== "head_rows") return true;
    return (typeof message.run === "number" ? message.run : null) === this.run;
  }
}

const CHANGE_CHOICES = [1, 3, 5, 10, 20];

interface Column {
  key: SortKey | null;
  title: string;
  help: string;
  span?: number;
}

export class AblationViewUI {
  readonly root: HTMLDivElement;
  readonly a: Ablation;
  /** The base run (the view's payload). */
  readonly p: Payload;
  readonly curves: CurvesPanel | null = null;
  explorer: ExplorerView | null = null;
  private strip!: HTMLDivElement;
  private tokens: HTMLSpanElement[] = [];
  private table!: HTMLTableElement;
  private headRow!: HTMLTableRowElement;
  private body!: HTMLTableSectionElement;
  private rows = new Map<string, HTMLTableRowElement>();
  private knockoutBody: HTMLTableSectionElement | null = null;
  private knockoutTitle: HTMLSpanElement | null = null;
  private massHeader: HTMLTableCellElement | null = null;
  private explorerBox!: HTMLDivElement;
  private explorerTitle!: HTMLSpanElement;
  private explorerBody!: HTMLDivElement;
  /** The condition the explorer box is for ("" when closed). */
  private shown: string | null = null;
  private unmarkExplorer = () => {};
  private tip!: HTMLDivElement;
  private readonly painted = new ThemeTracker();
  private palette: Palette = divergingPalette([255, 255, 255], [31, 35, 40]);
  private atQuery: number;
  private selects: { destroy(): void }[] = [];
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<AblationState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    const a = (this.a = decodeAblation(model.get("ablation")));
    const p = (this.p = decodePayload(model.get("payload")));
    this.atQuery = Math.max(p.queryNames.indexOf(a.at), 0);
    this.root = h("div", "tw-root tw-ablation-view");
    addStyle(this.root);
    const top = showToken(tokenText(a, a.baseTop), a.baseTop);
    this.root.appendChild(
      h(
        "div",
        "tw-diff-title",
        `Ablation at query "${a.at}" (t = ${a.position}): the baseline predicts ${top} (p ${format(a.baseProb)}) \u2014 ` +
          `${a.conditions.length} condition${a.conditions.length === 1 ? "" : "s"} \u2014 ${a.modelId}`,
      ),
    );
    this.buildControls();
    this.buildStrip();
    this.buildTable();
    const rows = knockoutRows(a);
    if (rows.length) this.curves = this.buildKnockout();
    this.buildExplorerBox();
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    this.listen();
    this.renderTable();
    this.updateRegion();
    this.updateKnockout();
    this.showSelected();
    this.scrollOnceLaidOut();
  }

  /** t is near the end of most prompts: show it once the strip has a size. */
  private scrollOnceLaidOut(): void {
    if (this.scrollStripToQuery() || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(() => {
      if (this.scrollStripToQuery()) observer.disconnect();
    });
    observer.observe(this.strip);
    this.listeners.add(() => observer.disconnect());
  }

  // -- building ------------------------------------------------------------------

  private buildControls(): void {
    const bar = this.root.appendChild(h("div", "tw-controls"));
    // the layer of the knockout panel's masses and of the explorer
    const slider = new LayerSlider(this.model, this.p.nLayers);
    bar.appendChild(slider.root);
    this.selects.push(slider);
    const k = this.a.k;
    const choices = [...new Set([...CHANGE_CHOICES.filter((n) => n <= k), k, this.model.get("changes")])]
      .filter((n) => n >= 1 && n <= k)
      .sort((x, y) => x - y);
    const select = new ModelSelect(
      this.model,
      "changes",
      "tokens that rose and fell",
      "tw-changes-select",
      choices.map((n) => [n, String(n)] as [number, string]),
    );
    bar.appendChild(select.root);
    this.selects.push(select);
    bar.appendChild(h("span", "tw-bar-label", "click a column to sort, a row to open its run in the explorer"));
    bar.appendChild(downloadButton(this.root, "ablation"));
  }

  private buildStrip(): void {
    const a = this.a;
    const p = this.p;
    const panel = this.root.appendChild(h("div", "tw-panel tw-strip-panel"));
    const header = panel.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Prompt"));
    header.appendChild(h("span", "tw-mark-t", "t"));
    header.append(" the query read");
    if (a.position > 0) {
      header.appendChild(h("span", "tw-mark-t1", "t\u22121"));
      header.append(" the token before it");
    }
    header.appendChild(h("span", "tw-mark-touched", "touched"));
    header.append(" by the condition pointed at");
    this.strip = panel.appendChild(h("div", "tw-strip"));
    for (let i = 0; i < p.nTokens; i++) {
      const gap = p.gaps.get(i);
      if (gap) this.strip.append(gap);
      const span = this.strip.appendChild(h("span", "tw-tok", displayText(p.tokens[i])));
      span.dataset.i = String(i);
      if (i === a.position) span.classList.add("tw-t");
      if (i === a.position - 1) span.classList.add("tw-t1");
      this.tokens.push(span);
    }
    const tail = p.gaps.get(p.nTokens);
    if (tail) this.strip.append(tail);
    this.listeners.on(this.strip, "mouseover", (event: MouseEvent) => {
      const target = (event.target as HTMLElement).closest?.(".tw-tok") as HTMLElement | null;
      if (target) this.tokenTip(target);
    });
    this.listeners.on(this.strip, "mouseleave", () => (this.tip.style.display = "none"));
  }

  private tokenTip(target: HTMLElement): void {
    const i = Number(target.dataset.i);
    const p = this.p;
    const region = p.tokenRegion[i] >= 0 ? p.regions[p.tokenRegion[i]].name : "(none)";
    const lines: [string, string][] = [
      ["token", JSON.stringify(p.tokens[i])],
      ["index", String(i)],
      ["region", region],
    ];
    if (i === this.a.position) lines.push(["", "t: the query the ablation reads"]);
    if (i === this.a.position - 1) lines.push(["", "t\u22121"]);
    showTip(this.tip, this.root, target, lines);
  }

  /** Scroll the strip so that t is in view (the strip, positioned, is the
   * tokens' offsetParent). Returns false while the strip is not laid out. */
  private scrollStripToQuery(): boolean {
    const span = this.tokens[this.a.position];
    if (!span || this.strip.clientHeight === 0) return false;
    const bottom = span.offsetTop + span.offsetHeight;
    if (bottom > this.strip.clientHeight) this.strip.scrollTop = bottom - this.strip.clientHeight / 2;
    return true;
  }

  private columns(): Column[] {
    const k = this.k;
    const top = showToken(tokenText(this.a, this.a.baseTop), this.a.baseTop);
    return [
      { key: "", title: "#", help: "The conditions in the order given (click: back to it)" },
      { key: "condition", title: "condition", help: "Its name and what it removes" },
      { key: null, title: "predicts", help: "The top next token under the condition (in red where it is not the baseline's)" },
      { key: "predicted_prob", title: "p", help: "Its probability" },
      { key: "delta_logprob", title: `\u0394\u00a0log\u00a0p ${top.replace(/ /g, "\u00a0")}`, help: `Change of the log-probability of the baseline's top token ${top}` },
      {
        key: "delta_centered",
        title: "\u0394 centred",
        help: "Change of that token's logit minus the mean change over the vocabulary (a shift shared by every token, which softmax ignores, removed)",
      },
      { key: "kl", title: "KL", help: "KL(baseline \u2016 condition) of the next-token distributions, in nats" },
      { key: "rose", title: "logit rose most", help: "The tokens whose logit rose most (sorts by the largest rise)", span: k },
      { key: "fell", title: "logit fell most", help: "The tokens whose logit fell most (sorts by the largest fall)", span: k },
    ];
  }

  private buildTable(): void {
    const panel = this.root.appendChild(h("div", "tw-panel tw-ablation-panel"));
    const scroll = panel.appendChild(h("div", "tw-ablation-scroll"));
    this.table = scroll.appendChild(h("table", "tw-lens-table tw-ablation-table"));
    this.headRow = this.table.appendChild(h("thead")).appendChild(h("tr"));
    this.body = this.table.appendChild(h("tbody"));
    this.listeners.on(this.headRow, "click", (event: MouseEvent) => {
      const th = (event.target as HTMLElement).closest("th") as HTMLTableCellElement | null;
      const key = th?.dataset.sort;
      if (key === undefined || !isSortKey(key)) return;
      this.sortBy(key);
    });
    const rowOf = (event: Event) => (event.target as HTMLElement).closest?.("tr[data-condition]") as HTMLTableRowElement | null;
    this.listeners.on(this.body, "click", (event: MouseEvent) => {
      const row = rowOf(event);
      if (row) this.toggle(row.dataset.condition!);
    });
    this.listeners.on(this.body, "keydown", (event: KeyboardEvent) => {
      const row = rowOf(event);
      if (row && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        this.toggle(row.dataset.condition!);
      }
    });
    this.listeners.on(this.body, "mouseover", (event: MouseEvent) => {
      const row = rowOf(event);
      this.markTouched(row ? row.dataset.condition! : null);
    });
    this.listeners.on(this.body, "mouseleave", () => this.markTouched(null));
  }

  private buildKnockout(): CurvesPanel {
    const a = this.a;
    const section = this.root.appendChild(h("div", "tw-panels tw-knockout-section"));
    const curves = new CurvesPanel(this.model, this.p, () => this.atQuery, () => this.head);
    const title = curves.root.querySelector(".tw-panel-header b");
    if (title) title.textContent = "Baseline cooking curves";
    section.appendChild(curves.root);
    const panel = section.appendChild(h("div", "tw-panel tw-knockout"));
    const header = panel.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Region knockout"));
    this.knockoutTitle = header.appendChild(h("span"));
    const table = panel.appendChild(h("table", "tw-lens-table tw-knockout-table"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    const top = showToken(tokenText(a, a.baseTop), a.baseTop);
    head.appendChild(h("th", "", "region"));
    this.massHeader = head.appendChild(h("th", "", "attention"));
    this.massHeader.title = "The region's attention mass at the query, at the selected layer, as the curves draw it";
    head.appendChild(h("th", "", `\u0394 log p ${top} knocked out`)).title =
      `Change of the log-probability of the baseline's top token ${top} when the region is knocked out`;
    head.appendChild(h("th", "", "top prediction"));
    this.knockoutBody = table.appendChild(h("tbody"));
    const rows = knockoutRows(a);
    let vmax = 0;
    for (const row of rows) vmax = Math.max(vmax, Math.abs(a.deltaLogprob[row.condition]) || 0);
    for (const row of rows) {
      const c = row.condition;
      const condition = a.conditions[c];
      const region = this.p.regions.find((r) => r.name === row.region);
      const tr = this.knockoutBody.appendChild(h("tr"));
      tr.dataset.condition = condition.name;
      tr.tabIndex = 0;
      tr.title = `${condition.description}: click to open its run in the explorer`;
      const name = tr.appendChild(h("td", "tw-ko-region"));
      const swatch = name.appendChild(h("span", "tw-swatch"));
      if (region) swatch.style.backgroundColor = region.color;
      name.append(condition.name);
      // a condition not named after its region says which region, and how
      if (condition.name !== row.region) name.appendChild(h("div", "tw-cond-desc", condition.description));
      const mass = tr.appendChild(h("td", "tw-ko-mass"));
      const bar = mass.appendChild(h("span", "tw-hbar"));
      const fill = bar.appendChild(h("span", "tw-hbar-fill"));
      if (region) fill.style.backgroundColor = region.color;
      mass.appendChild(h("span", "tw-num tw-ko-mass-value"));
      const effect = tr.appendChild(h("td", "tw-ko-effect"));
      const value = a.deltaLogprob[c];
      const dbar = effect.appendChild(h("span", "tw-dbar"));
      const dfill = dbar.appendChild(h("span", "tw-dbar-fill"));
      const width = vmax > 0 && Number.isFinite(value) ? (50 * Math.abs(value)) / vmax : 0;
      dfill.style.width = `${width}%`;
      dfill.style.left = value < 0 ? `${50 - width}%` : "50%";
      dfill.dataset.sign = value < 0 ? "-" : "+";
      const number = effect.appendChild(h("span", "tw-num tw-ko-effect-value", signed(value)));
      number.dataset.value = String(value);
      const predicted = a.predicted[c];
      const changed = predicted !== a.baseTop;
      const topCell = tr.appendChild(h("td", changed ? "tw-ko-top tw-changed" : "tw-ko-top"));
      if (changed) {
        topCell.append("\u2192 ");
        topCell.appendChild(h("span", "tw-lens-text", showToken(tokenText(a, predicted), predicted)));
      } else {
        topCell.append("same");
      }
    }
    const pick = (event: Event) => (event.target as HTMLElement).closest?.("tr[data-condition]") as HTMLTableRowElement | null;
    this.listeners.on(this.knockoutBody, "click", (event: MouseEvent) => {
      const row = pick(event);
      if (row) this.toggle(row.dataset.condition!);
    });
    this.listeners.on(this.knockoutBody, "keydown", (event: KeyboardEvent) => {
      const row = pick(event);
      if (row && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        this.toggle(row.dataset.condition!);
      }
    });
    this.listeners.on(this.knockoutBody, "mouseover", (event: MouseEvent) => {
      const row = pick(event);
      this.markTouched(row ? row.dataset.condition! : null);
    });
    this.listeners.on(this.knockoutBody, "mouseleave", () => this.markTouched(null));
    this.listeners.add(() => curves.destroy());
    return curves;
  }

  private buildExplorerBox(): void {
    this.explorerBox = this.root.appendChild(h("div", "tw-panel tw-ablation-explorer"));
    const header = this.explorerBox.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Explorer"));
    this.explorerTitle = header.appendChild(h("span", "tw-explorer-title"));
    const close = header.appendChild(h("button", "tw-close", "\u00d7 close"));
    close.type = "button";
    close.title = "Close the explorer";
    this.listeners.on(close, "click", () => this.select(null));
    this.explorerBody = this.explorerBox.appendChild(h("div", "tw-explorer-body"));
    this.explorerBox.style.display = "none";
  }

  // -- state ---------------------------------------------------------------------

  private get head(): number | null {
    const head = this.model.get("head");
    return head === null || head === undefined || head < 0 || head >= this.p.nHeads ? null : head;
  }

  /** Change cells shown per side. */
  get k(): number {
    const k = this.model.get("changes") | 0;
    return Math.min(Math.max(k, 1), this.a.k);
  }

  get sortKey(): SortKey {
    const key = this.model.get("sort");
    return isSortKey(key) ? key : "";
  }

  /** Condition indices in the order the table shows them. */
  get order(): number[] {
    return rowOrder(this.a, this.sortKey, !!this.model.get("descending"));
  }

  private sortBy(key: SortKey): void {
    const descending = key === this.sortKey ? !this.model.get("descending") : FIRST_DESCENDING[key];
    this.model.set("sort", key);
    this.model.set("descending", descending);
    this.model.save_changes();
  }

  private toggle(name: string): void {
    this.select(this.model.get("selected") === name ? null : name);
  }

  private select(name: string | null): void {
    this.model.set("selected", name);
    this.model.save_changes();
  }

  private listen(): void {
    for (const key of ["sort", "descending", "changes"]) this.listeners.onModel(`change:${key}`, () => this.renderTable());
    this.listeners.onModel("change:selected", () => this.showSelected());
    this.listeners.onModel("change:detail", () => this.showSelected());
    this.listeners.onModel("change:region", () => this.updateRegion());
    for (const key of ["layer", "normalize", "hidden", "head"]) this.listeners.onModel(`change:${key}`, () => this.updateKnockout());
    // the palette follows the theme: JupyterLab switching it, or the view first laid out in the page
    this.listeners.onThemeOrLayout(this.root, () => this.paintCells());
  }

  // -- the table -----------------------------------------------------------------

  private renderTable(): void {
    const k = this.k;
    const sortKey = this.sortKey;
    const descending = !!this.model.get("descending");
    this.headRow.replaceChildren();
    for (const column of this.columns()) {
      const th = this.headRow.appendChild(h("th", column.key === null ? "" : "tw-sortable", column.title));
      th.title = column.help;
      if (column.span) th.colSpan = column.span;
      if (column.key === null) continue;
      th.dataset.sort = column.key;
      if (column.key === sortKey) {
        th.classList.add("tw-sorted");
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        th.appendChild(h("span", "tw-sort-mark", descending ? "\u00a0\u25bc" : "\u00a0\u25b2"));
      }
    }
    this.body.replaceChildren();
    this.rows.clear();
    this.body.appendChild(this.baselineRow(k));
    for (const c of this.order) this.body.appendChild(this.conditionRow(c, k));
    this.markSelected();
    this.paintCells(true);
  }

  private baselineRow(k: number): HTMLTableRowElement {
    const a = this.a;
    const tr = h("tr", "tw-baseline");
    tr.dataset.condition = BASELINE;
    tr.tabIndex = 0;
    tr.title = "The unablated run: click to open it in the explorer";
    tr.appendChild(h("td", "tw-num", "\u2013"));
    const name = tr.appendChild(h("td", "tw-cond"));
    name.appendChild(h("div", "tw-cond-name", "baseline"));
    name.appendChild(h("div", "tw-cond-desc", "no intervention"));
    tr.appendChild(h("td", "tw-pred")).appendChild(h("span", "tw-lens-text", showToken(tokenText(a, a.baseTop), a.baseTop)));
    tr.appendChild(h("td", "tw-num tw-prob", format(a.baseProb)));
    for (let i = 0; i < 3; i++) tr.appendChild(h("td", "tw-num", "\u2013"));
    const rest = tr.appendChild(h("td", "tw-cond-desc", "the logit changes are against this run"));
    rest.colSpan = 2 * k;
    this.rows.set(BASELINE, tr);
    return tr;
  }

  private conditionRow(c: number, k: number): HTMLTableRowElement {
    const a = this.a;
    const condition = a.conditions[c];
    const tr = h("tr");
    tr.dataset.condition = condition.name;
    tr.tabIndex = 0;
    tr.appendChild(h("td", "tw-num", String(c + 1)));
    const name = tr.appendChild(h("td", "tw-cond"));
    name.appendChild(h("div", "tw-cond-name", condition.name));
    if (condition.description !== condition.name) name.appendChild(h("div", "tw-cond-desc", condition.description));
    const predicted = a.predicted[c];
    const pred = tr.appendChild(h("td", predicted === a.baseTop ? "tw-pred" : "tw-pred tw-changed"));
    pred.appendChild(h("span", "tw-lens-text", showToken(tokenText(a, predicted), predicted)));
    if (predicted !== a.baseTop) pred.title = "The top prediction changed";
    tr.appendChild(h("td", "tw-num tw-prob", format(a.predictedProb[c])));
    const number = (className: string, value: number, text: string) => {
      const td = tr.appendChild(h("td", `tw-num ${className}`, text));
      td.dataset.value = String(value);
    };
    number("tw-dlogp", a.deltaLogprob[c], signed(a.deltaLogprob[c]));
    number("tw-dcentred", a.deltaCentered[c], signed(a.deltaCentered[c]));
    number("tw-kl", a.kl[c], format(a.kl[c]));
    for (const side of ["rose", "fell"] as const) {
      changeCells(a, c, side, k).forEach((cell, j) => {
        const td = tr.appendChild(h("td", `tw-change tw-${side}`));
        td.dataset.value = String(cell.value);
        td.dataset.token = String(cell.id);
        td.dataset.rank = String(j + 1);
        td.title = `${showToken(cell.text, cell.id)} (id ${cell.id}): logit ${signed(cell.value)}`;
        td.appendChild(h("div", "tw-change-token", showToken(cell.text, cell.id)));
        td.appendChild(h("div", "tw-change-value", signed(cell.value)));
      });
    }
    this.rows.set(condition.name, tr);
    return tr;
  }

  /** Colour the change cells from the theme's diverging palette (`force`:
   * even when the theme did not change, e.g. new cells). */
  private paintCells(force = false): void {
    const theme = this.painted.next(this.table, force, (theme) => {
      this.palette = divergingPalette(theme.background, theme.text);
    });
    if (!theme) return;
    const vmax = changeScale(this.a, this.k);
    for (const td of Array.from(this.body.querySelectorAll<HTMLTableCellElement>("td.tw-change"))) {
      const index = divergingIndex(Number(td.dataset.value), vmax);
      td.style.backgroundColor = index < 0 ? "" : this.palette.colours[index];
      td.style.color = index < 0 ? "" : this.palette.text[index];
    }
    // the knockout bars: the palette's two ends
    const ends = [this.palette.colours[0], this.palette.colours[this.palette.colours.length - 1]];
    for (const fill of Array.from(this.root.querySelectorAll<HTMLElement>(".tw-dbar-fill"))) {
      fill.style.backgroundColor = fill.dataset.sign === "-" ? ends[0] : ends[1];
    }
  }

  private markSelected(): void {
    const selected = this.model.get("selected");
    for (const [name, tr] of this.rows) {
      tr.classList.toggle("tw-current", name === selected);
      tr.setAttribute("aria-selected", String(name === selected));
    }
    for (const tr of Array.from(this.knockoutBody?.querySelectorAll<HTMLTableRowElement>("tr") ?? [])) {
      tr.classList.toggle("tw-current", tr.dataset.condition === selected);
    }
  }

  // -- the strip -----------------------------------------------------------------

  /** Mark the positions condition `name` touches (null: none). */
  private markTouched(name: string | null): void {
    const condition = this.a.conditions.find((c) => c.name === name);
    const touched = new Set(condition ? Array.from(condition.positions) : []);
    this.tokens.forEach((span, i) => span.classList.toggle("tw-touched", touched.has(i)));
  }

  /** Highlight the selected region's tokens (picked in the curves' legend). */
  private updateRegion(): void {
    const name = this.model.get("region");
    const region = this.p.regions.find((r) => r.name === name);
    const inside = new Set(region ? Array.from(region.tokenIndices) : []);
    this.strip.classList.toggle("tw-region-mode", !!region);
    if (region) this.strip.style.setProperty("--tw-region", region.color);
    this.tokens.forEach((span, i) => span.classList.toggle("tw-in-region", inside.has(i)));
  }

  // -- the knockout panel ----------------------------------------------------------

  /** The attention column at the selected layer, as the curves draw it. */
  private updateKnockout(): void {
    const curves = this.curves;
    if (!curves || !this.knockoutBody) return;
    const p = this.p;
    const layer = Math.min(Math.max(this.model.get("layer") | 0, 0), p.nLayers - 1);
    const mode = this.model.get("normalize") ?? "raw";
    const head = this.head;
    this.knockoutTitle!.textContent = ` at "${this.a.at}": attention at layer ${layer} (${head === null ? "head average" : `head ${head}`}) beside the causal effect`;
    this.massHeader!.textContent = `attention (${mode}), layer ${layer}`;
    const R = p.regions.length;
    let max = 0;
    for (let l = 0; l < p.nLayers; l++) for (let r = 0; r < R; r++) if (Number.isFinite(curves.value(l, r))) max = Math.max(max, curves.value(l, r));
    for (const tr of Array.from(this.knockoutBody.querySelectorAll<HTMLTableRowElement>("tr"))) {
      const condition = this.a.conditions.find((c) => c.name === tr.dataset.condition);
      const r = p.regions.findIndex((region) => region.name === condition?.knockout);
      const value = r >= 0 ? curves.value(layer, r) : NaN;
      const fill = tr.querySelector<HTMLElement>(".tw-hbar-fill")!;
      fill.style.width = `${Number.isFinite(value) && max > 0 ? (100 * value) / max : 0}%`;
      const text = tr.querySelector<HTMLElement>(".tw-ko-mass-value")!;
      text.textContent = Number.isFinite(value) ? format(value) : "hidden";
      text.dataset.value = String(value);
    }
  }

  // -- the explorer -----------------------------------------------------------------

  /** The payload of the run of row `name`, or null when it is not here. */
  private runPayload(name: string): { payload: unknown; run: number | null } | null {
    if (name === BASELINE) return { payload: this.model.get("payload"), run: null };
    const c = this.a.conditions.findIndex((condition) => condition.name === name);
    if (c < 0) return null;
    const embedded = (this.model.get("runs") ?? [])[c];
    if (embedded) return { payload: embedded, run: c };
    const detail = this.model.get("detail");
    if (detail && detail.condition === c && detail.payload) return { payload: detail.payload, run: c };
    return null;
  }

  private closeExplorer(): void {
    this.unmarkExplorer();
    this.unmarkExplorer = () => {};
    this.explorer?.destroy();
    this.explorer = null;
    this.explorerBody.replaceChildren();
  }

  /** Open the explorer of the selected row's run (or close it). */
  private showSelected(): void {
    this.markSelected();
    const name = this.model.get("selected");
    if (name === this.shown && (this.explorer || name === null)) return;
    this.closeExplorer();
    this.shown = name;
    if (name === null || name === undefined) {
      this.explorerBox.style.display = "none";
      return;
    }
    this.explorerBox.style.display = "";
    const condition = this.a.conditions.find((c) => c.name === name);
    this.explorerTitle.textContent =
      name === BASELINE ? " the unablated run" : ` the run under "${name}"${condition ? ` \u2014 ${condition.description}` : ""}`;
    const found = this.runPayload(name);
    if (!found) {
      const budget = this.a.budget.maxBytes.toLocaleString("en");
      this.explorerBody.appendChild(
        h(
          "div",
          "tw-status tw-not-embedded",
          `The run of "${name}" is not in this page: the runs' payloads were over the budget ` +
            `(AblationOptions(max_bytes=${budget})). A live kernel sends it now; an exported page cannot. ` +
            `Export with a larger max_bytes, or show tw.Explorer(ablation.runs[${JSON.stringify(name)}]) in its own cell.`,
        ),
      );
      return;
    }
    try {
      const explorer = new ExplorerView(new RunModel(this.model, found.payload, found.run), this.explorerBody);
      this.explorer = explorer;
      this.unmarkExplorer = markDark(explorer.heatmap.root);
    } catch (error) {
      showError(this.explorerBody, error);
    }
  }

  destroy(): void {
    this.closeExplorer();
    this.listeners.dispose();
    for (const select of this.selects) select.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<AblationState>) => mount(model, el, () => new AblationViewUI(model, el)),
};
