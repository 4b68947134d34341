// The golden fixtures Python writes (tests/helpers/golden.py): each payload as
// JSON with its binary buffers in base64, and what Python decodes from it.

import ablationPayload from "./golden/ablation_payload.json";
import aggregatePayload from "./golden/aggregate_payload.json";
import aggregateSinglePayload from "./golden/aggregate_single_payload.json";
import attributionPayload from "./golden/attribution_payload.json";
import crossLayerPayload from "./golden/cross_layer_payload.json";
import curvesPayload from "./golden/curves_payload.json";
import diffPayload from "./golden/diff_payload.json";
import diffSetsPayload from "./golden/diff_sets_payload.json";
import errorReply from "./golden/error_reply.json";
import generationPayload from "./golden/generation_payload.json";
import headAtlasPayload from "./golden/head_atlas_payload.json";
import headGatesPayload from "./golden/head_gates_payload.json";
import headGridPayload from "./golden/head_grid_payload.json";
import headRowsReply from "./golden/head_rows_reply.json";
import queryAtReply from "./golden/query_at_reply.json";
import neuronComparePayload from "./golden/neuron_compare_payload.json";
import neuronsPayload from "./golden/neurons_payload.json";
import prevTokenPayload from "./golden/prev_token_payload.json";
import residualPayload from "./golden/residual_payload.json";
import runPayload from "./golden/run_payload.json";
import snapshotsPayload from "./golden/snapshots_payload.json";

const FIXTURES = {
  ablation_payload: ablationPayload,
  aggregate_payload: aggregatePayload,
  aggregate_single_payload: aggregateSinglePayload,
  attribution_payload: attributionPayload,
  cross_layer_payload: crossLayerPayload,
  curves_payload: curvesPayload,
  diff_payload: diffPayload,
  diff_sets_payload: diffSetsPayload,
  error_reply: errorReply,
  generation_payload: generationPayload,
  head_atlas_payload: headAtlasPayload,
  head_gates_payload: headGatesPayload,
  head_grid_payload: headGridPayload,
  head_rows_reply: headRowsReply,
  query_at_reply: queryAtReply,
  neuron_compare_payload: neuronComparePayload,
  neurons_payload: neuronsPayload,
  prev_token_payload: prevTokenPayload,
  residual_payload: residualPayload,
  run_payload: runPayload,
  snapshots_payload: snapshotsPayload,
} as const;

/** A copy of `value` with every {"$bytes": base64} as a DataView (what anywidget delivers). */
function revive(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revive);
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    if (typeof record.$bytes === "string") {
      const bytes = Uint8Array.from(atob(record.$bytes), (c) => c.charCodeAt(0));
      return new DataView(bytes.buffer);
    }
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, revive(v)]));
  }
  return value;
}

/** One fixture: its payload as the browser receives it, and Python's decoded values. */
export function fixture(name: keyof typeof FIXTURES): { payload: any; expect: Record<string, any> } {
  const document = FIXTURES[name] as { payload: unknown; expect: unknown };
  return { payload: revive(document.payload), expect: document.expect as Record<string, any> };
}

/** Typed array values as numbers, NaN as null (as the fixtures write them). */
export function values(array: ArrayLike<number>): (number | null)[] {
  return Array.from(array, (v) => (Number.isNaN(v) ? null : v));
}
