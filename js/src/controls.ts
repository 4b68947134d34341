// The query and head selectors of a panel shown alone (CurvesView, LensView);
// in the explorer, the heatmap's control bar holds them.

import { type AnyModel, h, option, queryIndex } from "./model";
import type { Payload } from "./wire";

export interface SelectionState {
  layer: number;
  query: string;
  head: number | null;
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
    return queryIndex(this.p.queryNames, this.model.get("query"), this.p.defaultQuery);
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

const PLAY_INTERVAL_MS = 350;

/** The explorer's layer control for views without a heatmap: a play button,
 * a range slider (class tw-layer) and "layer k / N-1", synced as `layer`. */
export class LayerSlider {
  readonly root: HTMLLabelElement;
  readonly slider: HTMLInputElement;
  private label: HTMLSpanElement;
  private play: HTMLButtonElement;
  private timer: ReturnType<typeof setInterval> | null = null;
  private cleanups: (() => void)[] = [];

  constructor(
    private model: AnyModel<{ layer: number }>,
    private nLayers: number,
  ) {
    this.root = h("label");
    this.play = this.root.appendChild(h("button", "tw-play", "\u25b6"));
    this.play.type = "button";
    this.play.title = "Play through the layers";
    this.slider = this.root.appendChild(h("input", "tw-layer"));
    this.slider.type = "range";
    this.slider.min = "0";
    this.slider.max = String(nLayers - 1);
    this.slider.step = "1";
    this.slider.setAttribute("aria-label", "layer");
    this.label = this.root.appendChild(h("span", "tw-layer-label"));
    const input = () => this.set(Number(this.slider.value));
    const click = () => (this.timer ? this.stop() : this.start());
    this.slider.addEventListener("input", input);
    this.play.addEventListener("click", click);
    const changed = () => this.sync();
    model.on("change:layer", changed);
    this.cleanups.push(
      () => this.slider.removeEventListener("input", input),
      () => this.play.removeEventListener("click", click),
      () => model.off("change:layer", changed),
    );
    this.sync();
  }

  /** The selected layer, clamped to the runs' layers. */
  get layer(): number {
    return Math.min(Math.max(this.model.get("layer") | 0, 0), this.nLayers - 1);
  }

  private set(layer: number): void {
    this.model.set("layer", layer);
    this.model.save_changes();
  }

  private start(): void {
    if (this.layer >= this.nLayers - 1) this.set(0);
    this.play.textContent = "\u23f8";
    this.timer = setInterval(() => (this.layer >= this.nLayers - 1 ? this.stop() : this.set(this.layer + 1)), PLAY_INTERVAL_MS);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.play.textContent = "\u25b6";
  }

  sync(): void {
    this.slider.value = String(this.layer);
    this.label.textContent = `layer ${this.layer} / ${this.nLayers - 1}`;
  }

  destroy(): void {
    this.stop();
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

/** A labelled <select> bound to one key of the model, in both directions. */
export class ModelSelect<State, K extends keyof State> {
  readonly root: HTMLLabelElement;
  readonly select: HTMLSelectElement;
  private cleanups: (() => void)[] = [];

  constructor(
    model: AnyModel<State>,
    key: K,
    label: string,
    className: string,
    choices: [State[K], string][],
  ) {
    this.root = h("label", "", `${label} `);
    this.select = this.root.appendChild(h("select", className));
    // a string value is its option's value (so a test can pick it by name)
    const keys = choices.map(([value], i) => (typeof value === "string" ? value : `#${i}`));
    choices.forEach(([, text], i) => this.select.appendChild(option(keys[i], text)));
    const change = () => {
      model.set(key, choices[keys.indexOf(this.select.value)][0]);
      model.save_changes();
    };
    const sync = () => {
      const index = choices.findIndex(([value]) => value === model.get(key));
      this.select.value = keys[Math.max(index, 0)];
    };
    this.select.addEventListener("change", change);
    model.on(`change:${String(key)}`, sync);
    this.cleanups.push(
      () => this.select.removeEventListener("change", change),
      () => model.off(`change:${String(key)}`, sync),
    );
    sync();
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}
