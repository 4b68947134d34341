// Decoder of the head gates payload written by
// tealeaves_widgets/widgets/head_gates.py, and the arithmetic of its view
// kept free of the DOM: a head's gate in a phase, the labels' counts, and
// where each phase's loss curve lies on the chart's step axis.

import type { HeadGatesPayload as HeadGatesWire } from "./schema.gen";
import { WireError, type WireArray, checkSchema, decodeArray, decodeFloat } from "./wire";

/** What the grid shows, as HeadGatesView.phase: a phase's gates or the label. */
export type GridPhase = "plain" | "retention" | "removal" | "label";
export const GRID_PHASES: GridPhase[] = ["plain", "retention", "removal", "label"];

/** What each label means, as core/head_gates.py defines the taxonomy. */
export const LABEL_HELP: Record<string, string> = {
  facilitating: "still open under removal, which pushes every gate shut: the task needs it",
  interfering: "shut even under retention, which pushes every gate open: it hurts the task",
  irrelevant: "open under retention and shut under removal: either will do",
};

export interface HeadGates {
  modelId: string;
  nLayers: number;
  nHeads: number;
  phases: string[];
  /** (phase, layer, head) gate values. */
  gates: Float32Array;
  labelNames: string[];
  /** (layer, head) index into labelNames. */
  labels: Uint8Array;
  /** Per phase, (step,) the task loss. */
  losses: Float32Array[];
  baseLoss: number;
  strength: number;
  threshold: number;
}

export function decodeHeadGates(value: unknown): HeadGates {
  const raw = checkSchema<HeadGatesWire>(value);
  if (raw.kind !== "head_gates") throw new WireError(`Expected a head gates payload, got ${String(raw.kind)}.`);
  const { n_layers: L, n_heads: H } = raw;
  const P = raw.phases.length;
  const gates = decodeFloat(raw.gates, "gates");
  if (gates.length !== P * L * H) throw new WireError(`gates: expected (${P}, ${L}, ${H}), got [${raw.gates.shape}].`);
  if (raw.labels?.dtype !== "uint8") throw new WireError(`labels: expected uint8, got ${raw.labels?.dtype}.`);
  const labels = decodeArray(raw.labels as WireArray & { dtype: "uint8" }, "labels");
  if (labels.length !== L * H) throw new WireError(`labels: expected (${L}, ${H}), got [${raw.labels.shape}].`);
  if (raw.losses.length !== P) throw new WireError(`losses: expected ${P} curves, got ${raw.losses.length}.`);
  return {
    modelId: raw.model.model_id,
    nLayers: L,
    nHeads: H,
    phases: raw.phases,
    gates,
    labelNames: raw.label_names,
    labels,
    losses: raw.losses.map((curve, p) => decodeFloat(curve, `losses[${raw.phases[p]}]`)),
    baseLoss: raw.base_loss,
    strength: raw.strength,
    threshold: raw.threshold,
  };
}

/** Gate of head (layer, head) at the end of phase `phase` (its name). */
export function gate(g: HeadGates, phase: string, layer: number, head: number): number {
  const p = g.phases.indexOf(phase);
  if (p < 0) return NaN;
  return g.gates[(p * g.nLayers + layer) * g.nHeads + head];
}

export function label(g: HeadGates, layer: number, head: number): string {
  return g.labelNames[g.labels[layer * g.nHeads + head]] ?? "?";
}

/** How many heads carry each label. */
export function labelCounts(g: HeadGates): number[] {
  const counts = g.labelNames.map(() => 0);
  for (const l of g.labels) if (l < counts.length) counts[l]++;
  return counts;
}

/** First step of each phase's curve on the chart: retention and removal
 * both start where the plain fit ended (the paper's phases 2 and 3 branch
 * from it). */
export function phaseStart(g: HeadGates, p: number): number {
  return g.phases[p] === "plain" ? 0 : (g.losses[g.phases.indexOf("plain")]?.length ?? 0);
}

/** Steps on the chart's axis: the plain fit, then the longest branch. */
export function totalSteps(g: HeadGates): number {
  let steps = 0;
  g.losses.forEach((curve, p) => (steps = Math.max(steps, phaseStart(g, p) + curve.length)));
  return steps;
}
