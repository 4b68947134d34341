// Custom messages between the kernel and a view (schema in
// tealeaves_widgets/widgets/schema.py). Every message carries {v, kind, id};
// a request that fails in the kernel is answered with an "error" reply of the
// same id, which the view shows instead of waiting for a timeout.

import { type ErrorReply, type HeadRowsReply, type LayersMessage, MESSAGE_VERSION, type QueryAtReply } from "./schema.gen";

export { MESSAGE_VERSION };
export type KernelMessage = HeadRowsReply | QueryAtReply | LayersMessage | ErrorReply;

const KINDS = new Set(["head_rows", "query_at", "layers", "error"]);

/** `content` as a message of ours that this page reads, else null (a message of
 * another widget, or of another version: the caller says so). */
export function readMessage(content: unknown): KernelMessage | null {
  if (content === null || typeof content !== "object") return null;
  const message = content as { v?: unknown; kind?: unknown; id?: unknown };
  if (typeof message.kind !== "string" || !KINDS.has(message.kind)) return null;
  if (message.v !== MESSAGE_VERSION || typeof message.id !== "number") return null;
  return content as KernelMessage;
}

/** Numbers the requests of one view, so each reply finds its request. */
export class RequestIds {
  private next = 1;

  take(): number {
    return this.next++;
  }
}
