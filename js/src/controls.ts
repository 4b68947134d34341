// The query and head selectors of a panel shown alone (CurvesView, LensView);
// in the explorer, the heatmap's control bar holds them.

import { type AnyModel, h } from "./model";
import type { Payload } from "./wire";

export interface SelectionState {
  layer: number;
  query: string;
  head: number | null;
}

function option(value: string, text: string): HTMLOptionElement {
  const node = h("option", "", text);
  node.value = value;
  return node;
}

/** A bar with a query selector, optionally a head selector, and the layer
 * selected, all synced with the model. */
export class SelectionBar {
  readonly root: HTMLDivElement;
  private querySelect: HTMLSelectElement;
  private headSelect: HTMLSelectElement | null = null;
  private layerLabel: HTMLSpanElement;
  private cleanups: (() => void)[] = [];

  constructor(
    private model: AnyModel<SelectionState>,
    private p: Payload,
    withHead: boolean,
  ) {
    this.root = h("div", "tw-controls");
    const query = this.root.appendChild(h("label", "", "query "));
    this.querySelect = query.appendChild(h("select", "tw-query-select"));
    for (const q of p.queries) this.querySelect.appendChild(option(q.name, `${q.name} @${q.pos} ${JSON.stringify(p.tokens[q.pos] ?? "")}`));
    this.listen(this.querySelect, () => this.set("query", this.querySelect.value));
    if (withHead) {
      const head = this.root.appendChild(h("label", "", "head "));
      const select = (this.headSelect = head.appendChild(h("select", "tw-head-select")));
      select.appendChild(option("avg", "average"));
      for (let i = 0; i < p.nHeads; i++) select.appendChild(option(String(i), `head ${i}`));
      this.listen(select, () => this.set("head", select.value === "avg" ? null : Number(select.value)));
    }
    this.layerLabel = this.root.appendChild(h("span", "tw-layer-label"));
    for (const name of ["change:query", "change:head", "change:layer"]) {
      const handler = () => this.sync();
      model.on(name, handler);
      this.cleanups.push(() => model.off(name, handler));
    }
    this.sync();
  }

  /** Index of the selected query (the payload's default when unknown). */
  get query(): number {
    const index = this.p.queries.findIndex((q) => q.name === this.model.get("query"));
    return index >= 0 ? index : this.p.defaultQuery;
  }

  get head(): number | null {
    const head = this.model.get("head");
    return head === null || head === undefined || head < 0 || head >= this.p.nHeads ? null : head;
  }

  private set<K extends keyof SelectionState>(key: K, value: SelectionState[K]): void {
    this.model.set(key, value);
    this.model.save_changes();
  }

  private listen(target: HTMLElement, handler: () => void): void {
    target.addEventListener("change", handler);
    this.cleanups.push(() => target.removeEventListener("change", handler));
  }

  private sync(): void {
    this.querySelect.value = this.p.queries[this.query].name;
    if (this.headSelect) this.headSelect.value = this.head === null ? "avg" : String(this.head);
    const layer = Math.min(Math.max(this.model.get("layer") | 0, 0), this.p.nLayers - 1);
    this.layerLabel.textContent = `layer ${layer} / ${this.p.nLayers - 1}`;
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}
