// Decoder of the conversation snapshots payload written by
// tealeaves_widgets/widgets/snapshots.py, kept free of the DOM. Every number
// was computed in Python (Snapshots.scores, message_table, role_means) for
// every source, centring and metric; this module only indexes them.

import type { SnapshotMessage, SnapshotReference, SnapshotsPayload as SnapshotsWire } from "./schema.gen";
import { WireError, type WireArray, checkSchema, decodeFloat } from "./wire";

/** The metrics, as SnapshotsView.metric. */
export type Metric = "cosine" | "mae" | "jaccard";
export const METRICS: Metric[] = ["cosine", "mae", "jaccard"];

export interface Snapshots {
  modelId: string;
  readout: string;
  singlePass: boolean;
  nLayers: number;
  sources: string[];
  metrics: string[];
  roles: string[];
  messages: SnapshotMessage[];
  references: SnapshotReference[];
  scores: Float32Array; // (source, centring, metric, message, reference, layer)
  layerMean: Float32Array; // (source, centring, metric, message, reference)
  roleLayers: Float32Array; // (source, centring, metric, role, reference, layer)
  roleMean: Float32Array; // (source, centring, metric, role, reference)
}

/** What is shown: indices into the payload's axes; layer null = the mean over the layers. */
export interface Selection {
  source: number;
  centred: boolean;
  metric: number;
  layer: number | null;
}

export function decodeSnapshots(value: unknown): Snapshots {
  const raw = checkSchema<SnapshotsWire>(value);
  if (raw.kind !== "snapshots") throw new WireError(`Expected a conversation snapshots payload, got ${String(raw.kind)}.`);
  if (raw.centrings.length !== 2) throw new WireError(`Expected the centrings raw and centred, got [${raw.centrings}].`);
  const lead = raw.sources.length * 2 * raw.metrics.length;
  const M = raw.messages.length;
  const R = raw.references.length;
  const L = raw.n_layers;
  const floats = (array: WireArray, what: string, length: number) => {
    const out = decodeFloat(array, what);
    if (out.length !== length) throw new WireError(`${what}: expected ${length} values, got [${array.shape}].`);
    return out;
  };
  return {
    modelId: raw.model.model_id,
    readout: raw.readout,
    singlePass: raw.single_pass,
    nLayers: L,
    sources: raw.sources,
    metrics: raw.metrics,
    roles: raw.roles,
    messages: raw.messages,
    references: raw.references,
    scores: floats(raw.scores, "scores", lead * M * R * L),
    layerMean: floats(raw.layer_mean, "layer_mean", lead * M * R),
    roleLayers: floats(raw.role_layers, "role_layers", lead * raw.roles.length * R * L),
    roleMean: floats(raw.role_mean, "role_mean", lead * raw.roles.length * R),
  };
}

/** Offset of the (source, centring, metric) block, counted in blocks. */
function block(s: Snapshots, sel: Selection, source = sel.source): number {
  return (source * 2 + (sel.centred ? 1 : 0)) * s.metrics.length + sel.metric;
}

/** The metric of message m against reference r at `layer`. */
export function score(s: Snapshots, sel: Selection, m: number, r: number, layer: number, source = sel.source): number {
  const R = s.references.length;
  return s.scores[((block(s, sel, source) * s.messages.length + m) * R + r) * s.nLayers + layer];
}

/** The heatmap's cell: the mean over the layers, or the value at the selected layer. */
export function cell(s: Snapshots, sel: Selection, m: number, r: number, source = sel.source): number {
  if (sel.layer !== null) return score(s, sel, m, r, sel.layer, source);
  return s.layerMean[(block(s, sel, source) * s.messages.length + m) * s.references.length + r];
}

/** The average over the messages of role index `role`, as `cell`. */
export function roleCell(s: Snapshots, sel: Selection, role: number, r: number): number {
  const R = s.references.length;
  const base = block(s, sel) * s.roles.length + role;
  if (sel.layer !== null) return s.roleLayers[(base * R + r) * s.nLayers + sel.layer];
  return s.roleMean[base * R + r];
}

/** Is a larger value closer (cosine, Jaccard), or a smaller one (MAE)? */
export function higherIsCloser(metric: string): boolean {
  return metric !== "mae";
}

/** The reference each message is closest to (-1 when none is finite), as `cell`. */
export function closest(s: Snapshots, sel: Selection, m: number): number {
  const up = higherIsCloser(s.metrics[sel.metric]);
  let best = -1;
  for (let r = 0; r < s.references.length; r++) {
    const v = cell(s, sel, m, r);
    if (!Number.isFinite(v)) continue;
    if (best < 0 || (up ? v > cell(s, sel, m, best) : v < cell(s, sel, m, best))) best = r;
  }
  return best;
}

/** [min, max] of the finite values of `values` (null when none is). */
export function extent(values: Iterable<number>): [number, number] | null {
  let low = Infinity;
  let high = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    low = Math.min(low, v);
    high = Math.max(high, v);
  }
  return low <= high ? [low, high] : null;
}

/** Every value of the heatmap for this selection, message-major. */
export function heatValues(s: Snapshots, sel: Selection, source = sel.source): number[] {
  const out: number[] = [];
  for (let m = 0; m < s.messages.length; m++) for (let r = 0; r < s.references.length; r++) out.push(cell(s, sel, m, r, source));
  return out;
}

/** Every per-layer score of one source, centring and metric (for a fixed colour range). */
export function blockValues(s: Snapshots, sel: Selection): Float32Array {
  const size = s.messages.length * s.references.length * s.nLayers;
  const start = block(s, sel) * size;
  return s.scores.subarray(start, start + size);
}
