// The theme a view is drawn in: its background and text colours as computed
// from the page's CSS (JupyterLab's --jp-* variables, or style.ts's fallbacks
// on a plain page), and a watch for JupyterLab switching themes.

import { type RGB, isDark } from "./colour";

export interface Theme {
  background: RGB;
  text: RGB;
  dark: boolean;
}

const WHITE: RGB = [255, 255, 255];
const INK: RGB = [31, 35, 40];

/** "rgb(r, g, b)", "rgba(r, g, b, a)" or "#rgb"/"#rrggbb" as RGB; null for
 * anything else and for a fully transparent colour. */
export function parseColour(text: string | null | undefined): RGB | null {
  if (!text) return null;
  const value = text.trim().toLowerCase();
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/.exec(value);
  if (hex) {
    const digits = hex[1].length === 3 ? [...hex[1]].map((d) => d + d) : hex[1].match(/../g)!;
    return digits.map((d) => parseInt(d, 16)) as RGB;
  }
  const fn = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)$/.exec(value);
  if (!fn) return null;
  if (fn[4] !== undefined && parseFloat(fn[4]) === 0) return null;
  return [fn[1], fn[2], fn[3]].map((v) => Math.round(Number(v))) as RGB;
}

/** The colours `el` is drawn in: its background (the first opaque one up the
 * tree, white when none) and its text colour. A light theme when nothing is
 * computed (an element not in a page yet, jsdom). */
export function readTheme(el: Element): Theme {
  let background: RGB | null = null;
  let text: RGB | null = null;
  if (typeof getComputedStyle === "function" && el.isConnected) {
    text = parseColour(getComputedStyle(el).color);
    for (let node: Element | null = el; node && !background; node = node.parentElement) {
      background = parseColour(getComputedStyle(node).backgroundColor);
    }
  }
  background ??= WHITE;
  text ??= isDark(background) ? WHITE : INK;
  return { background, text, dark: isDark(background) };
}

export function sameTheme(a: Theme | null, b: Theme): boolean {
  return !!a && a.background.join() === b.background.join() && a.text.join() === b.text.join();
}

/** The theme a view last painted in, so that it repaints only when the theme
 * changes and rebuilds its palettes only then. */
export class ThemeTracker {
  private last: Theme | null = null;

  /** The theme to paint `el` in, or null when `force` is false and it is the
   * one painted last (nothing to repaint). `rebuild` (the view's palettes) is
   * called first when the theme changed. */
  next(el: Element, force: boolean, rebuild: (theme: Theme) => void): Theme | null {
    const theme = readTheme(el);
    const same = sameTheme(this.last, theme);
    if (!force && same) return null;
    if (!same) {
      this.last = theme;
      rebuild(theme);
    }
    return theme;
  }
}

/** Call `onChange` when the page may have changed theme: JupyterLab sets
 * data-jp-theme-* on <body> after loading a theme's CSS. Returns the cleanup. */
export function watchTheme(onChange: () => void): () => void {
  if (typeof MutationObserver === "undefined" || typeof document === "undefined") return () => {};
  const observer = new MutationObserver(() => onChange());
  const attributeFilter = ["data-jp-theme-light", "data-jp-theme-name", "class", "style"];
  for (const node of [document.documentElement, document.body]) {
    if (node) observer.observe(node, { attributes: true, attributeFilter });
  }
  return () => observer.disconnect();
}

/** Keep `.tw-dark` on a view's root (so native controls take `color-scheme:
 * dark`, style.ts) in step with the theme: once the view is laid out in the
 * page, and when JupyterLab switches themes. Returns the cleanup. */
export function markDark(root: HTMLElement): () => void {
  const update = () => root.classList.toggle("tw-dark", readTheme(root).dark);
  update();
  const unwatch = watchTheme(update);
  if (typeof ResizeObserver === "undefined") return unwatch;
  const observer = new ResizeObserver(update);
  observer.observe(root);
  return () => {
    unwatch();
    observer.disconnect();
  };
}
