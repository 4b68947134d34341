// The part of anywidget's model that the views use, typed by their state, and the
// DOM helpers every view shares.

import { markDark } from "./theme";

export type Callback = (...args: any[]) => void;

export interface AnyModel<State> {
  get<K extends keyof State>(key: K): State[K];
  set<K extends keyof State>(key: K, value: State[K]): void;
  save_changes(): void;
  on(event: string, callback: Callback): void;
  off(event?: string | null, callback?: Callback | null): void;
  send(content: unknown, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
}

export interface RenderProps<State> {
  model: AnyModel<State>;
  el: HTMLElement;
}

/** Show an error inside the widget instead of leaving a blank cell. */
export function showError(el: HTMLElement, error: unknown): void {
  const box = document.createElement("div");
  box.className = "tw-error";
  box.setAttribute("role", "alert");
  const message = error instanceof Error ? error.message : String(error);
  box.textContent = `tealeaves-widgets could not draw this view. ${message}`;
  box.style.cssText =
    "border:1px solid #d33;background:#fff4f4;color:#900;padding:8px 10px;font:13px/1.4 system-ui,sans-serif;white-space:pre-wrap";
  el.replaceChildren(box);
  console.error("tealeaves-widgets:", error);
}

/** Row of the selected query among `names`: the synced name, else the
 * payload's default (the kernel's rule, `tealeaves_widgets.core.selection`:
 * "final" when present, else the first). */
export function queryIndex(names: readonly string[], selected: unknown, fallback: number): number {
  const index = typeof selected === "string" ? names.indexOf(selected) : -1;
  return index >= 0 ? index : fallback;
}

/** Create an element with a class and optional text (always textContent). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, className = "", text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An <option> of a <select>: its value and the text shown. */
export function option(value: string, text: string): HTMLOptionElement {
  const node = h("option", "", text);
  node.value = value;
  return node;
}

/** Fill the tooltip `tip` with "key: value" lines (a line with an empty key is
 * the value alone) and show it under `target`, placed within `root`. */
export function showTip(tip: HTMLElement, root: HTMLElement, target: HTMLElement, lines: [string, string][]): void {
  tip.replaceChildren();
  for (const [key, value] of lines) {
    const line = tip.appendChild(h("div"));
    if (key) line.appendChild(h("b", "", `${key}: `));
    line.append(value);
  }
  const box = root.getBoundingClientRect();
  const at = target.getBoundingClientRect();
  tip.style.left = `${Math.max(0, at.left - box.left)}px`;
  tip.style.top = `${at.bottom - box.top + 4}px`;
  tip.style.display = "block";
}

/**
 * Build a view into `el`, rebuild it when the payload changes, and show any
 * error inside the widget. Returns anywidget's cleanup function.
 */
export function mount<State extends { payload: unknown }>(
  model: AnyModel<State>,
  el: HTMLElement,
  build: () => { destroy(): void },
): () => void {
  let view: { destroy(): void } | null = null;
  let unmark = () => {};
  const draw = () => {
    view?.destroy();
    unmark();
    view = null;
    try {
      view = build();
      const root = el.firstElementChild;
      if (root instanceof HTMLElement && root.classList.contains("tw-root")) unmark = markDark(root);
    } catch (error) {
      showError(el, error);
    }
  };
  draw();
  model.on("change:payload", draw);
  return () => {
    model.off("change:payload", draw);
    unmark();
    view?.destroy();
  };
}
