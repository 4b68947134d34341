// Colour scale of the heatmap: a weight becomes an index 0..255 into a lookup
// table of CSS colours, so a redraw only assigns precomputed strings.

export type Scale = "linear" | "log" | "layer";
export const SCALES: Scale[] = ["linear", "log", "layer"];
export const SCALE_LABELS: Record<Scale, string> = {
  linear: "linear",
  log: "log (4 decades)",
  layer: "per-layer normalised",
};

/** Decades below the maximum that the log scale shows. */
export const LOG_DECADES = 4;

// Sequential, light to dark (close to matplotlib's YlOrRd), white at 0.
const ANCHORS: [number, number, number][] = [
  [255, 255, 255],
  [255, 237, 160],
  [254, 178, 76],
  [240, 59, 32],
  [128, 0, 38],
];

function interpolate(t: number): [number, number, number] {
  const x = t * (ANCHORS.length - 1);
  const i = Math.min(Math.floor(x), ANCHORS.length - 2);
  const f = x - i;
  const [a, b] = [ANCHORS[i], ANCHORS[i + 1]];
  return [0, 1, 2].map((c) => Math.round(a[c] + f * (b[c] - a[c]))) as [number, number, number];
}

/** 256 CSS colours, and whether each needs light text on top. */
export const COLOURS: string[] = [];
export const DARK: boolean[] = [];
for (let i = 0; i < 256; i++) {
  const [r, g, b] = interpolate(i / 255);
  COLOURS.push(`rgb(${r}, ${g}, ${b})`);
  DARK.push(0.299 * r + 0.587 * g + 0.114 * b < 140);
}

/** Largest weight over tokens not masked out of the scale. */
export function maxUnmasked(row: Float32Array, masked: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < row.length; i++) if (!masked[i] && row[i] > max) max = row[i];
  return max;
}

/**
 * Colour index of each weight: 0 for 0 and for masked tokens, 255 at `vmax`
 * (clipped above). Linear, or log over LOG_DECADES decades below vmax.
 */
export function colourIndices(row: Float32Array, masked: Uint8Array, vmax: number, log: boolean, out: Uint8Array): Uint8Array {
  if (!(vmax > 0)) return out.fill(0);
  if (log) {
    const top = Math.log10(vmax);
    const per = 255 / LOG_DECADES;
    for (let i = 0; i < row.length; i++) {
      const w = row[i];
      if (masked[i] || !(w > 0)) {
        out[i] = 0;
        continue;
      }
      const v = (LOG_DECADES + Math.log10(w) - top) * per;
      out[i] = v <= 1 ? 1 : v >= 255 ? 255 : Math.round(v);
    }
  } else {
    const per = 255 / vmax;
    for (let i = 0; i < row.length; i++) {
      const v = row[i] * per;
      out[i] = masked[i] ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}

/** Rank of row[index] within the row, 1 = largest (ties share the best rank). */
export function rankOf(row: Float32Array, index: number): number {
  const w = row[index];
  let rank = 1;
  for (let i = 0; i < row.length; i++) if (row[i] > w) rank++;
  return rank;
}

// Diverging, for signed changes: blue (less) through white (0) to red (more),
// close to ColorBrewer's RdBu reversed. Index DIVERGING_CENTRE is white.
const DIVERGING_ANCHORS: [number, number, number][] = [
  [33, 102, 172],
  [103, 169, 207],
  [209, 229, 240],
  [255, 255, 255],
  [253, 219, 199],
  [239, 138, 98],
  [178, 24, 43],
];

/** 255 CSS colours from -vmax (0) through 0 (DIVERGING_CENTRE) to +vmax (254). */
export const DIVERGING: string[] = [];
export const DIVERGING_DARK: boolean[] = [];
export const DIVERGING_CENTRE = 127;
for (let i = 0; i < 2 * DIVERGING_CENTRE + 1; i++) {
  const x = (i / (2 * DIVERGING_CENTRE)) * (DIVERGING_ANCHORS.length - 1);
  const k = Math.min(Math.floor(x), DIVERGING_ANCHORS.length - 2);
  const f = x - k;
  const [a, b] = [DIVERGING_ANCHORS[k], DIVERGING_ANCHORS[k + 1]];
  const [r, g, bl] = [0, 1, 2].map((c) => Math.round(a[c] + f * (b[c] - a[c])));
  DIVERGING.push(`rgb(${r}, ${g}, ${bl})`);
  DIVERGING_DARK.push(0.299 * r + 0.587 * g + 0.114 * bl < 140);
}

/** Index into DIVERGING of a signed value on a scale symmetric around 0
 * (clipped at +-vmax); -1 for NaN, the centre when vmax is not positive. */
export function divergingIndex(value: number, vmax: number): number {
  if (Number.isNaN(value)) return -1;
  if (!(vmax > 0)) return DIVERGING_CENTRE;
  const t = Math.max(-1, Math.min(1, value / vmax));
  return Math.round(DIVERGING_CENTRE + t * DIVERGING_CENTRE);
}
