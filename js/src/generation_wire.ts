// Decoder of the generation payload written by
// tealeaves_widgets/widgets/generation.py, kept free of the DOM.

import type { GenerationPayload as GenerationWire } from "./schema.gen";
import { WireError, type WireArray, checkSchema, decodeFloat } from "./wire";

export interface Generation {
  modelId: string;
  promptLength: number;
  nSteps: number;
  k: number;
  queries: string[]; // (step,) the run's query of each step
  tokens: string[]; // (step,)
  logprobs: Float32Array; // (step,)
  argmax: string[]; // (step,)
  entropy: Float32Array; // (step,)
  topTokens: string[]; // (step * k,)
  topLogprobs: Float32Array; // (step, k)
  stopReason: string;
  sampling: string;
}

export function decodeGeneration(value: unknown): Generation {
  const raw = checkSchema<GenerationWire>(value);
  if (raw.kind !== "generation") throw new WireError(`Expected a generation payload, got ${String(raw.kind)}.`);
  const n = raw.n_steps;
  const floats = (array: WireArray, what: string, length: number) => {
    const out = decodeFloat(array, what);
    if (out.length !== length) throw new WireError(`${what}: expected ${length} values, got [${array.shape}].`);
    return out;
  };
  const strings = (list: string[], what: string, length: number) => {
    if (!Array.isArray(list) || list.length !== length) throw new WireError(`${what}: expected ${length} strings, got ${Array.isArray(list) ? list.length : typeof list}.`);
    return list;
  };
  return {
    modelId: raw.model.model_id,
    promptLength: raw.prompt_length,
    nSteps: n,
    k: raw.k,
    queries: strings(raw.queries, "queries", n),
    tokens: strings(raw.tokens, "tokens", n),
    logprobs: floats(raw.logprobs, "logprobs", n),
    argmax: strings(raw.argmax, "argmax", n),
    entropy: floats(raw.entropy, "entropy", n),
    topTokens: strings(raw.top_tokens, "top_tokens", n * raw.k),
    topLogprobs: floats(raw.top_logprobs, "top_logprobs", n * raw.k),
    stopReason: raw.stop_reason,
    sampling: raw.sampling,
  };
}

/** The step whose query is `query`, or -1. */
export function stepOf(g: Generation, query: unknown): number {
  return typeof query === "string" ? g.queries.indexOf(query) : -1;
}

/** A token's text made visible: spaces as a middle dot, line breaks as a return sign. */
export function visible(token: string): string {
  return token.replace(/ /g, "\u00b7").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5") || "\u2205";
}
