// Charts as wide as their panel. An SVG chart is styled `width: 100%`; when
// its width changes (the panel, the notebook or the window was resized) the
// chart lays itself out again at that width, with a viewBox of the same size,
// so lines and text keep their size instead of being stretched.

/** Call `layout(width)` with the chart's width in CSS px now (when it is laid
 * out) and whenever it changes. Returns the cleanup. Without ResizeObserver
 * (jsdom) the chart keeps the size it was built with. */
export function fitWidth(chart: SVGSVGElement, layout: (width: number) => void): () => void {
  if (typeof ResizeObserver === "undefined") return () => {};
  let last = -1;
  const observer = new ResizeObserver(() => {
    const width = Math.round(chart.getBoundingClientRect().width);
    if (width <= 0 || width === last) return; // hidden, or only the height changed
    last = width;
    layout(width);
  });
  observer.observe(chart);
  return () => observer.disconnect();
}

/** A chart's height for `width`: `ratio` of it, within [min, max]. */
export function heightFor(width: number, ratio: number, min: number, max: number): number {
  return Math.round(Math.min(max, Math.max(min, width * ratio)));
}

/** Index of the curve nearest to `y` at `layer` (within `within` px), or -1.
 * `yOf(curve, layer)` is the curve's y there, NaN where it has none. */
export function nearestCurve(n: number, layer: number, y: number, yOf: (curve: number, layer: number) => number, within = 14): number {
  let best = -1;
  let distance = within;
  for (let c = 0; c < n; c++) {
    const d = Math.abs(yOf(c, layer) - y);
    if (d <= distance) [best, distance] = [c, d];
  }
  return best;
}
