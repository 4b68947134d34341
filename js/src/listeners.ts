// The listeners a view adds (to the DOM, to its model, to the page's theme and
// layout), kept together so that the view's destroy() undoes them all at once.

import type { Callback } from "./model";
import { watchTheme } from "./theme";

/** The part of a model that a view listens to. */
interface Listenable {
  on(event: string, callback: Callback): void;
  off(event?: string | null, callback?: Callback | null): void;
}

/** The cleanups of one view: each listener it adds is removed by dispose(),
 * in the order added. */
export class Listeners {
  private cleanups: (() => void)[] = [];

  constructor(private readonly model: Listenable) {}

  /** `target.addEventListener(type, handler)`, removed on dispose(). */
  on(target: EventTarget, type: string, handler: (event: any) => void): void {
    target.addEventListener(type, handler);
    this.cleanups.push(() => target.removeEventListener(type, handler));
  }

  /** `model.on(event, handler)`, removed (model.off) on dispose(). */
  onModel(event: string, handler: () => void): void {
    this.model.on(event, handler);
    this.cleanups.push(() => this.model.off(event, handler));
  }

  /** Cleanups to run on dispose() (an observer's disconnect, a child's destroy). */
  add(...cleanups: (() => void)[]): void {
    this.cleanups.push(...cleanups);
  }

  /** Call `repaint` when the page may have changed theme (watchTheme) and when
   * `el` is resized: a view is built before it is on the page, so its theme is
   * known only once it is laid out (the first resize). */
  onThemeOrLayout(el: Element, repaint: () => void): void {
    this.cleanups.push(watchTheme(repaint));
    if (typeof ResizeObserver !== "undefined") {
      const observer = new ResizeObserver(() => repaint());
      observer.observe(el);
      this.cleanups.push(() => observer.disconnect());
    }
  }

  /** Remove every listener added so far (and run the other cleanups). */
  dispose(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}
