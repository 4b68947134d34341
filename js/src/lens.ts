// Logit-lens panel: per layer, the most probable next tokens at the selected
// query, entropy, KL to the final layer and the rank of each tracked token.
// The row of the selected layer is highlighted; clicking a row selects it.

import type { AnyModel } from "./model";
import { h } from "./model";
import type { Payload } from "./wire";

export interface LensState {
  layer: number;
  query: string;
}

export const LENS_COLUMNS = 3;

/** Token text made visible: quotes around it, escapes for line breaks and tabs. */
export function showToken(text: string | undefined, id: number): string {
  if (text === undefined) return `<id ${id}>`;
  return JSON.stringify(text);
}

function percent(p: number): string {
  return p >= 0.1 ? `${(100 * p).toFixed(0)}%` : p >= 0.001 ? `${(100 * p).toFixed(1)}%` : `${(100 * p).toExponential(0)}%`;
}

export class LensPanel {
  readonly root: HTMLDivElement;
  private scroller: HTMLDivElement;
  private body: HTMLTableSectionElement;
  private rows: HTMLTableRowElement[] = [];
  private current = -1;
  private cleanups: (() => void)[] = [];

  constructor(
    private model: AnyModel<LensState>,
    private p: Payload,
    private queryIndex: () => number,
  ) {
    this.root = h("div", "tw-panel tw-lens");
    const header = this.root.appendChild(h("div", "tw-panel-header"));
    header.appendChild(h("b", "", "Logit lens"));
    header.append(" next-token predictions read from each layer");
    this.scroller = this.root.appendChild(h("div", "tw-lens-scroll"));
    const table = this.scroller.appendChild(h("table", "tw-lens-table"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    const k = Math.min(LENS_COLUMNS, p.lens.k);
    const titles = ["layer", ...Array.from({ length: k }, (_, j) => `top ${j + 1}`), "entropy", "KL"];
    for (const title of titles) head.appendChild(h("th", "", title));
    for (const token of p.lens.trackedTokens) head.appendChild(h("th", "", `rank ${JSON.stringify(token)}`));
    this.body = table.appendChild(h("tbody"));
    const onRow = (event: Event) => {
      const row = (event.target as HTMLElement).closest("tr");
      const layer = row ? this.rows.indexOf(row as HTMLTableRowElement) : -1;
      if (layer >= 0) {
        this.model.set("layer", layer);
        this.model.save_changes();
      }
    };
    this.body.addEventListener("click", onRow);
    this.cleanups.push(() => this.body.removeEventListener("click", onRow));
    const rebuild = () => this.build();
    const moved = () => this.highlight();
    model.on("change:query", rebuild);
    model.on("change:layer", moved);
    this.cleanups.push(() => model.off("change:query", rebuild), () => model.off("change:layer", moved));
    this.build();
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }

  /** Rows for the selected query. */
  build(): void {
    const { lens, nLayers, nQueries } = this.p;
    const q = this.queryIndex();
    const k = Math.min(LENS_COLUMNS, lens.k);
    const T = lens.trackedTokens.length;
    this.rows = [];
    this.current = -1;
    if (this.p.pending) {
      // the lens reads every layer's residual at once, after the pass
      const text = this.p.pending.stopped
        ? "The capture stopped before the logit lens was read."
        : "The logit lens is read when the last layer is computed\u2026";
      const cell = h("td", "tw-lens-wait", text);
      cell.colSpan = 3 + k + T;
      const row = h("tr");
      row.appendChild(cell);
      this.body.replaceChildren(row);
      return;
    }
    const fragment = document.createDocumentFragment();
    for (let layer = 0; layer < nLayers; layer++) {
      const row = fragment.appendChild(h("tr"));
      row.appendChild(h("td", "tw-num", String(layer)));
      for (let j = 0; j < k; j++) {
        const at = (layer * nQueries + q) * lens.k + j;
        const id = lens.topIds[at];
        const prob = lens.topProbs[at];
        const cell = row.appendChild(h("td", "tw-lens-token"));
        cell.appendChild(h("span", "tw-lens-text", showToken(lens.vocab.get(id), id)));
        cell.appendChild(h("span", "tw-lens-p", ` ${percent(prob)}`));
        cell.style.backgroundColor = `rgba(31, 111, 235, ${(0.55 * Math.min(1, prob)).toFixed(3)})`;
        cell.title = `id ${id}, p = ${prob.toPrecision(3)}`;
      }
      const at = layer * nQueries + q;
      row.appendChild(h("td", "tw-num", lens.entropy[at].toFixed(2)));
      row.appendChild(h("td", "tw-num", lens.klToFinal[at].toFixed(2)));
      for (let t = 0; t < T; t++) {
        const rank = lens.trackedRanks[at * T + t];
        const cell = row.appendChild(h("td", "tw-num", String(rank)));
        cell.title = `p = ${lens.trackedProbs[at * T + t].toPrecision(3)}`;
        if (rank === 1) cell.classList.add("tw-top");
      }
      this.rows.push(row);
    }
    this.body.replaceChildren(fragment);
    this.highlight();
  }

  private highlight(): void {
    const layer = Math.min(Math.max(this.model.get("layer") | 0, 0), this.p.nLayers - 1);
    if (layer === this.current || !this.rows.length) return;
    this.rows[this.current]?.classList.remove("tw-current");
    const row = this.rows[layer];
    row.classList.add("tw-current");
    this.current = layer;
    this.reveal(row, 3);
  }

  /** Keep the row in view inside the panel only (never scroll the notebook);
   * a panel not laid out yet is retried on the next frames. */
  private reveal(row: HTMLTableRowElement, tries: number): void {
    const height = this.scroller.clientHeight;
    if (!height) {
      if (tries > 0 && typeof requestAnimationFrame !== "undefined") requestAnimationFrame(() => this.reveal(row, tries - 1));
      return;
    }
    const top = row.offsetTop;
    if (top < this.scroller.scrollTop + 20 || top + row.offsetHeight > this.scroller.scrollTop + height) {
      this.scroller.scrollTop = Math.max(0, top - height / 2);
    }
  }
}
