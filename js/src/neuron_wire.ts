// Decoders of the neuron payloads written by tealeaves_widgets/widgets/neurons.py
// (a tw.NeuronActivations and a tw.NeuronComparison), kept free of the DOM:
// both become one `NeuronMatrix`, rows = neurons, columns = tokens or prompts.

import type { NeuronComparePayload, NeuronsPayload } from "./schema.gen";
import { WireError, type WireArray, checkSchema, decodeArray, decodeFloat } from "./wire";

export interface NeuronColumn {
  /** The label shown (a token's text or a prompt's label), always as text. */
  label: string;
  /** Token position (the tokens view) or the number of positions averaged (comparison). */
  position: number;
  /** Whether the column entered the ranking and the colour scale. */
  scored: boolean;
}

export interface NeuronMatrix {
  kind: "neurons" | "neuron_compare";
  modelId: string;
  layer: number;
  source: string;
  rule: string;
  note: string;
  positionsLabel: string;
  nNeurons: number;
  neurons: Int32Array; // (k,)
  /** (k,) the score that ranked each row: sd over positions, or spread over prompts. */
  score: Float32Array;
  columns: NeuronColumn[];
  values: Float32Array; // (k, column)
  vmax: number;
}

function int32(array: WireArray, what: string): Int32Array {
  if (array?.dtype !== "int32") throw new WireError(`${what}: expected int32, got ${array?.dtype}.`);
  return decodeArray(array as WireArray & { dtype: "int32" }, what);
}

function sized<T extends { length: number }>(values: T, length: number, what: string): T {
  if (values.length !== length) throw new WireError(`${what}: expected ${length} values, got ${values.length}.`);
  return values;
}

export function decodeNeurons(value: unknown): NeuronMatrix {
  const raw = checkSchema<NeuronsPayload | NeuronComparePayload>(value);
  if (raw.kind === "neurons") {
    const neurons = int32(raw.neurons, "neurons");
    const positions = int32(raw.positions, "positions");
    const T = positions.length;
    if (raw.scored?.dtype !== "uint8") throw new WireError(`scored: expected uint8, got ${raw.scored?.dtype}.`);
    const scored = sized(decodeArray(raw.scored as WireArray & { dtype: "uint8" }, "scored"), T, "scored");
    sized(raw.tokens, T, "tokens");
    return {
      kind: "neurons",
      modelId: raw.model.model_id,
      layer: raw.layer,
      source: raw.source,
      rule: raw.rule,
      note: raw.note,
      positionsLabel: raw.positions_label,
      nNeurons: raw.n_neurons,
      neurons,
      score: sized(decodeFloat(raw.sd, "sd"), neurons.length, "sd"),
      columns: Array.from(positions, (position, i) => ({ label: raw.tokens[i], position, scored: scored[i] !== 0 })),
      values: sized(decodeFloat(raw.values, "values"), neurons.length * T, "values"),
      vmax: raw.vmax,
    };
  }
  if (raw.kind === "neuron_compare") {
    const neurons = int32(raw.neurons, "neurons");
    const P = raw.labels.length;
    sized(raw.n_positions, P, "n_positions");
    return {
      kind: "neuron_compare",
      modelId: raw.model.model_id,
      layer: raw.layer,
      source: raw.source,
      rule: raw.rule,
      note: raw.note,
      positionsLabel: raw.positions_label,
      nNeurons: raw.n_neurons,
      neurons,
      score: sized(decodeFloat(raw.spread, "spread"), neurons.length, "spread"),
      columns: raw.labels.map((label, i) => ({ label, position: raw.n_positions[i], scored: true })),
      values: sized(decodeFloat(raw.means, "means"), neurons.length * P, "means"),
      vmax: raw.vmax,
    };
  }
  throw new WireError(`Expected a neurons or neuron comparison payload, got ${String((raw as { kind: unknown }).kind)}.`);
}

/** The value of row r (a neuron's rank), column c. */
export function valueAt(m: NeuronMatrix, r: number, c: number): number {
  return m.values[r * m.columns.length + c];
}
