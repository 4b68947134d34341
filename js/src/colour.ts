// Colour scale of the heatmap: a weight becomes an index 0..255 into a
// palette of CSS colours, so a redraw only assigns precomputed strings.
//
// The default scale, "log-layer", is logarithmic and set per layer: a weight
// at or below the layer's median (over the tokens the query can see, masked
// ones left out) gets the faintest colour, the layer's maximum the darkest,
// and the decades between are spread over the palette (at least 1, at most
// 6). Attention is heavy-tailed and its spread grows with the prompt's length:
// on the quickstart at the old default (linear over all layers) 89-98% of the
// tokens stayed under 5% of the colour range; a fixed number of decades below
// the maximum reads at 100 tokens but not at 2,000 (3 decades: 1-2% of the
// tokens above 5% of the range at T=2000), and the other way round (5
// decades: nearly every token dark at T=100). Anchoring the bottom at the
// median keeps about 40% of the tokens visibly shaded at every layer and any
// length, while the few most attended stay the darkest.
// `python benchmarks/heatmap_scales.py` measures every scale here, including
// the trial ones the menu does not offer.
//
// The palette follows the theme: on a light background, light yellow to dark
// red; on a dark one the same hues from the background up to light yellow, so
// more attention always stands out more. Each shade says whether the token's
// text keeps the theme's colour or takes the other one, whichever contrasts
// more.

/** Scales offered in the menu, the default first. */
export type Scale = "log-layer" | "linear" | "log" | "layer";
export const SCALES: Scale[] = ["log-layer", "linear", "log", "layer"];
export const DEFAULT_SCALE: Scale = "log-layer";
export const SCALE_LABELS: Record<Scale, string> = {
  "log-layer": "log, layer median to max",
  linear: "linear, all layers",
  log: "log (4 decades), all layers",
  layer: "linear, per layer",
};

/** Scales measured by benchmarks/heatmap_scales.py against the menu's ones;
 * a tool can show them (`HeatmapView.setScale`), the menu does not offer them. */
export type TrialScale = "log3-layer" | "log5-layer" | "p99-layer" | "p90-layer" | "rank-layer";
export const TRIAL_SCALES: TrialScale[] = ["log3-layer", "log5-layer", "p99-layer", "p90-layer", "rank-layer"];
export type AnyScale = Scale | TrialScale;

export function isScale(value: unknown): value is AnyScale {
  return (SCALES as unknown[]).includes(value) || (TRIAL_SCALES as unknown[]).includes(value);
}

/** Decades below the maximum over all layers that the "log" scale shows. */
export const LOG_DECADES = 4;
/** Decades the "log-layer" scale spans at least and at most (its bottom is the
 * layer's median, moved into this range when it lies outside). */
export const LAYER_LOG_DECADES = { min: 1, max: 6 };

/** How one layer's weights map to colour indices: linearly from 0 (index 0)
 * to `high` (255), logarithmically from `low` (1) to `high` (255), or by rank. */
export interface ScaleRange {
  kind: "linear" | "log" | "rank";
  low: number;
  high: number;
  /** By rank: how many weights the scratch array holds, sorted. */
  n?: number;
}

/** Does the scale span every layer (its range is computed once per selection)? */
export function spansAllLayers(scale: AnyScale): boolean {
  return scale === "linear" || scale === "log";
}

/** Largest weight over tokens not masked out of the scale. */
export function maxUnmasked(row: Float32Array, masked: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < row.length; i++) if (!masked[i] && row[i] > max) max = row[i];
  return max;
}

/** Copy the weights the scale is computed from (tokens before `limit`, the
 * query's own position + 1, not masked) into `out`; returns how many. */
export function scaleWeights(row: Float32Array, masked: Uint8Array, limit: number, out: Float32Array): number {
  let n = 0;
  const end = Math.min(limit, row.length);
  for (let i = 0; i < end; i++) if (!masked[i]) out[n++] = row[i];
  return n;
}

/** The k-th smallest of values[0..n) (reorders them; Hoare's quickselect). */
function select(values: Float32Array, n: number, k: number): number {
  let left = 0;
  let right = n - 1;
  while (left < right) {
    const pivot = values[(left + right) >> 1];
    let i = left;
    let j = right;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i++] = values[j];
        values[j--] = t;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return values[k];
  }
  return values[k];
}

/** The q-quantile of values[0..n) as numpy's default (linear) method
 * computes it; reorders the values. NaN when n is 0. */
export function quantile(values: Float32Array, n: number, q: number): number {
  if (n <= 0) return NaN;
  const h = (n - 1) * q;
  const below = Math.floor(h);
  const lower = select(values, n, below);
  if (h === below) return lower;
  // the next order statistic is the smallest value above position `below`
  let upper = Infinity;
  for (let i = below + 1; i < n; i++) if (values[i] < upper) upper = values[i];
  return lower + (h - below) * (upper - lower);
}

/**
 * The range of `scale` for one layer's `row`. `limit` is the query's
 * position + 1 (later tokens have no weight); `allLayersMax` is the maximum
 * over every layer, used by the scales that span all layers; `scratch` has
 * room for the row.
 */
export function scaleRange(
  scale: AnyScale,
  row: Float32Array,
  masked: Uint8Array,
  limit: number,
  allLayersMax: number,
  scratch: Float32Array,
): ScaleRange {
  if (scale === "linear") return { kind: "linear", low: 0, high: allLayersMax };
  if (scale === "log") return { kind: "log", low: allLayersMax / 10 ** LOG_DECADES, high: allLayersMax };
  const n = scaleWeights(row, masked, limit, scratch);
  let max = 0;
  for (let i = 0; i < n; i++) if (scratch[i] > max) max = scratch[i];
  switch (scale) {
    case "layer":
      return { kind: "linear", low: 0, high: max };
    case "rank-layer":
      scratch.subarray(0, n).sort();
      return { kind: "rank", low: 0, high: max, n };
    case "log3-layer":
      return { kind: "log", low: max / 1e3, high: max };
    case "log5-layer":
      return { kind: "log", low: max / 1e5, high: max };
    case "p99-layer":
    case "p90-layer":
      return { kind: "linear", low: 0, high: quantile(scratch, n, scale === "p99-layer" ? 0.99 : 0.9) };
    default: {
      const median = quantile(scratch, n, 0.5);
      const low = Math.max(Math.min(median, max / 10 ** LAYER_LOG_DECADES.min), max / 10 ** LAYER_LOG_DECADES.max);
      return { kind: "log", low, high: max };
    }
  }
}

/**
 * Colour index of each weight under `range`: 0 for masked tokens and for
 * weights of 0 (nothing is painted), 255 at `range.high` (clipped above).
 * On a log scale a positive weight at or below `range.low` gets 1, the
 * faintest shade. By rank, a weight's index is its place among the scale's
 * weights, which `scaleRange` left sorted in `scratch`.
 */
export function colourIndices(row: Float32Array, masked: Uint8Array, range: ScaleRange, out: Uint8Array, scratch?: Float32Array): Uint8Array {
  const { kind, low, high } = range;
  const n = range.n ?? 0;
  if (!(high > 0)) return out.fill(0);
  if (kind === "log") {
    const bottom = Math.log10(low);
    const per = 255 / Math.max(Math.log10(high) - bottom, 1e-6);
    for (let i = 0; i < row.length; i++) {
      const w = row[i];
      if (masked[i] || !(w > 0)) {
        out[i] = 0;
        continue;
      }
      const v = (Math.log10(w) - bottom) * per;
      out[i] = v <= 1 ? 1 : v >= 255 ? 255 : Math.round(v);
    }
  } else if (kind === "rank" && scratch && n > 0) {
    const sorted = scratch;
    for (let i = 0; i < row.length; i++) {
      const w = row[i];
      if (masked[i] || !(w > 0)) {
        out[i] = 0;
        continue;
      }
      // how many of the scale's weights are <= w
      let a = 0;
      let b = n;
      while (a < b) {
        const m = (a + b) >> 1;
        if (sorted[m] <= w) a = m + 1;
        else b = m;
      }
      out[i] = Math.max(1, Math.round((255 * a) / n));
    }
  } else {
    const per = 255 / high;
    for (let i = 0; i < row.length; i++) {
      const v = row[i] * per;
      out[i] = masked[i] ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}

/** A weight as the legend and the tooltip print it. */
export function formatWeight(w: number): string {
  if (w === 0) return "0";
  return w >= 0.001 ? w.toFixed(4) : w.toExponential(2);
}

/** How the scale maps, for the legend: what the palette's ends are and what
 * is left out. The static figure's colour bar says the same
 * (tealeaves_widgets/core/heatmap_scale.py, HEATMAP_SCALE_TEXT). */
export const SCALE_TEXT: Record<AnyScale, string> = {
  "log-layer": "log, this layer's median to its max",
  linear: "linear, 0 to the max over all layers",
  log: `log, ${LOG_DECADES} decades below the max over all layers`,
  layer: "linear, 0 to this layer's max",
  "log3-layer": "log, 3 decades below this layer's max",
  "log5-layer": "log, 5 decades below this layer's max",
  "p99-layer": "linear, 0 to this layer's 99th percentile",
  "p90-layer": "linear, 0 to this layer's 90th percentile",
  "rank-layer": "rank within this layer",
};

/** "log, this layer's median to its max (2.3 decades); first token masked". */
export function describeScale(scale: AnyScale, range: ScaleRange, maskSink: boolean, maskTemplate: boolean): string {
  let text = SCALE_TEXT[scale];
  if (range.kind === "log" && range.high > 0 && range.low > 0 && scale === "log-layer") {
    text += ` (${Math.log10(range.high / range.low).toFixed(1)} decades)`;
  }
  const masks = [maskTemplate ? "template" : "", maskSink ? "first token" : ""].filter(Boolean);
  return masks.length ? `${text}; ${masks.join(" and ")} masked` : text;
}

// -- palettes --------------------------------------------------------------------

export type RGB = [number, number, number];

/** Light yellow to dark red (close to matplotlib's YlOrRd), after the background. */
const HEAT_ANCHORS: RGB[] = [
  [255, 237, 160],
  [254, 178, 76],
  [240, 59, 32],
  [128, 0, 38],
];

function channel(c: number): number {
  const s = c / 255;
  return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
}

/** WCAG relative luminance of an sRGB colour, 0 (black) to 1 (white). */
export function luminance([r, g, b]: RGB): number {
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}

/** WCAG contrast ratio of two colours, 1 to 21. */
export function contrast(a: RGB, b: RGB): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

function ramp(anchors: RGB[], t: number): RGB {
  const x = t * (anchors.length - 1);
  const i = Math.min(Math.floor(x), anchors.length - 2);
  const f = x - i;
  const [a, b] = [anchors[i], anchors[i + 1]];
  return [0, 1, 2].map((c) => Math.round(a[c] + f * (b[c] - a[c]))) as RGB;
}

export function css([r, g, b]: RGB): string {
  return `rgb(${r}, ${g}, ${b})`;
}

/** Text colours a shade may take instead of the theme's; one of them
 * contrasts at least 4.58:1 with any colour. */
const INKS: RGB[] = [
  [255, 255, 255],
  [0, 0, 0],
];

export interface Palette {
  /** Drawn on a dark background (the theme's). */
  dark: boolean;
  /** CSS colours; index 0 is the background (never painted). */
  colours: string[];
  /** Text colour on each shade: "" keeps the theme's where it contrasts
   * 4.5:1 or more with the shade, else white or black, whichever contrasts more. */
  text: string[];
}

/** A palette of `size` shades through `anchors` (the first is the
 * background), with the text colour each shade needs when the theme's is `text`. */
function makePalette(anchors: RGB[], text: RGB, dark: boolean, size = 256): Palette {
  const colours: string[] = [];
  const inks: string[] = [];
  for (let i = 0; i < size; i++) {
    const shade = ramp(anchors, i / (size - 1));
    colours.push(css(shade));
    // the theme's colour where it reads (WCAG AA, 4.5:1), else the better of white and black
    let best = contrast(shade, text);
    let ink = "";
    if (best < 4.5) {
      for (const other of INKS) {
        const c = contrast(shade, other);
        if (c > best) [best, ink] = [c, css(other)];
      }
    }
    inks.push(ink);
  }
  return { dark, colours, text: inks };
}

/** Is a background this colour a dark theme's? */
export function isDark(background: RGB): boolean {
  return luminance(background) < 0.2;
}

/** The heatmap's palette on this background, with text of colour `text`:
 * from the background to dark red on a light theme, to light yellow on a dark one. */
export function heatPalette(background: RGB, text: RGB): Palette {
  const dark = isDark(background);
  const anchors = dark ? [background, ...HEAT_ANCHORS.slice().reverse()] : [background, ...HEAT_ANCHORS];
  return makePalette(anchors, text, dark);
}

/** The light palette on white (the colours of a plain page). */
export const LIGHT_PALETTE = heatPalette([255, 255, 255], [31, 35, 40]);
export const COLOURS: string[] = LIGHT_PALETTE.colours;
/** Whether each light shade needs light text on top. */
export const DARK: boolean[] = LIGHT_PALETTE.text.map((ink) => ink === "rgb(255, 255, 255)");

/** Rank of row[index] within the row, 1 = largest (ties share the best rank). */
export function rankOf(row: Float32Array, index: number): number {
  const w = row[index];
  let rank = 1;
  for (let i = 0; i < row.length; i++) if (row[i] > w) rank++;
  return rank;
}

// Diverging, for signed changes: blue (less) through the background (0) to red
// (more), close to ColorBrewer's RdBu reversed on a light theme; on a dark one
// the shades grow lighter away from the dark centre. Index DIVERGING_CENTRE is
// the background.
const DIVERGING_LIGHT: RGB[] = [
  [33, 102, 172],
  [103, 169, 207],
  [209, 229, 240],
  [255, 255, 255],
  [253, 219, 199],
  [239, 138, 98],
  [178, 24, 43],
];
const DIVERGING_DARK_ANCHORS: RGB[] = [
  [146, 197, 222],
  [67, 147, 195],
  [33, 82, 140],
  [0, 0, 0],
  [140, 30, 40],
  [214, 96, 77],
  [244, 165, 130],
];
export const DIVERGING_CENTRE = 127;

/** 255 colours from -vmax (0) through 0 (DIVERGING_CENTRE, the background) to +vmax (254). */
export function divergingPalette(background: RGB, text: RGB): Palette {
  const dark = isDark(background);
  const anchors = (dark ? DIVERGING_DARK_ANCHORS : DIVERGING_LIGHT).slice();
  anchors[3] = background;
  return makePalette(anchors, text, dark, 2 * DIVERGING_CENTRE + 1);
}

const DIVERGING_ON_WHITE = divergingPalette([255, 255, 255], [31, 35, 40]);
/** The diverging colours of a plain (light) page. */
export const DIVERGING: string[] = DIVERGING_ON_WHITE.colours;
export const DIVERGING_DARK: boolean[] = DIVERGING_ON_WHITE.text.map((ink) => ink === "rgb(255, 255, 255)");

/** Index into DIVERGING of a signed value on a scale symmetric around 0
 * (clipped at +-vmax); -1 for NaN, the centre when vmax is not positive. */
export function divergingIndex(value: number, vmax: number): number {
  if (Number.isNaN(value)) return -1;
  if (!(vmax > 0)) return DIVERGING_CENTRE;
  const t = Math.max(-1, Math.min(1, value / vmax));
  return Math.round(DIVERGING_CENTRE + t * DIVERGING_CENTRE);
}
