// Click a token to make it the query.
//
// A token that is a query already is selected at once. Any other position is
// asked of the kernel ("query_at" request): with the model that captured the
// run, it computes the position's rows and lens (one decode step on the kept
// KV cache) and answers with them; the view appends the query to its payload
// (wire.ts appendQuery) and selects it. Without a model the kernel answers
// with an error, and with no kernel at all (an exported page) nothing
// answers: either way the view says that the position was not captured and
// which queries were.

import { MESSAGE_VERSION, type RequestIds } from "./messages";
import type { ErrorReply, QueryAtReply, QueryAtRequest } from "./schema.gen";
import { type Payload, appendQuery } from "./wire";

/** How long a click waits for the kernel before saying that none answered. */
export const QUERY_REQUEST_TIMEOUT_MS = 4000;

/** What the controller needs from its view. */
export interface QueryHost {
  readonly p: Payload;
  /** Send a request to the kernel (throws or does nothing with no kernel). */
  send(request: QueryAtRequest): void;
  /** Make `name` the selected query (synced with the kernel). */
  select(name: string): void;
  /** Query row `index` was appended to the payload: show it in the menus. */
  added(index: number): void;
  setStatus(text: string): void;
}

/** What a view says about a position that is not one of its queries. */
export function notCaptured(p: Payload, pos: number): string {
  const token = JSON.stringify(p.tokens[pos] ?? "");
  const names = p.queries.map((q) => `${q.name} (@${q.pos})`).join(", ");
  return `Position ${pos} ${token} was not captured; captured queries: ${names}.`;
}

/** How the kernel computed a new query, in words. */
export function describeReply(reply: QueryAtReply): string {
  const took = reply.seconds < 1 ? `${Math.round(reply.seconds * 1000)} ms` : `${reply.seconds.toFixed(1)} s`;
  const how =
    reply.method === "cache"
      ? `one decode step on the kept KV cache, ${took}`
      : `a forward pass of the prompt, ${took}${reply.note ? `: ${reply.note}` : ""}`;
  return `Query "${reply.name}" (position ${reply.pos}) added (${how}).`;
}

export class QueryClicks {
  /** Request id -> clicked position, while unanswered. */
  private waiting = new Map<number, number>();
  /** Id of the newest click's request: only its answer changes the selection. */
  private latest = -1;

  constructor(
    private host: QueryHost,
    private ids: RequestIds,
  ) {}

  /** Whether a request for a clicked position is unanswered. */
  get busy(): boolean {
    return this.waiting.size > 0;
  }

  /** Token `pos` was clicked. */
  click(pos: number): void {
    const p = this.host.p;
    const existing = p.queries.find((q) => q.pos === pos);
    if (existing) {
      this.latest = -1;
      this.host.select(existing.name);
      return;
    }
    if (p.pending) {
      this.host.setStatus(`${notCaptured(p, pos)} The capture is still running: click it again when it ends.`);
      return;
    }
    const id = this.ids.take();
    this.waiting.set(id, pos);
    this.latest = id;
    this.host.setStatus(`${notCaptured(p, pos)} Asking the kernel to compute it\u2026`);
    try {
      this.host.send({ v: MESSAGE_VERSION, kind: "query_at", id, pos });
    } catch {
      // no kernel (an exported page): the timeout below says so
    }
    setTimeout(() => {
      if (!this.waiting.has(id) || id !== this.latest) return;
      this.host.setStatus(
        `${notCaptured(this.host.p, pos)} No kernel answered: this page has only the captured queries ` +
          `(an exported page, or a kernel that is busy or gone).`,
      );
    }, QUERY_REQUEST_TIMEOUT_MS);
  }

  /** A "query_at" reply or an error reply: true when it was about a clicked
   * position. A reply's query is appended even when another view of the same
   * widget asked for it (the selection is shared); the newest click selects it. */
  receive(message: QueryAtReply | ErrorReply, buffers: (DataView | ArrayBuffer)[]): boolean {
    if (message.kind === "error") {
      if (message.request !== "query_at") return false;
      const pos = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (pos !== undefined && message.id === this.latest) {
        this.host.setStatus(`${notCaptured(this.host.p, pos)} The kernel could not compute it: ${message.message}`);
      }
      return true;
    }
    const asked = this.waiting.delete(message.id) && message.id === this.latest;
    let index: number;
    try {
      index = appendQuery(this.host.p, message, buffers);
    } catch (error) {
      if (asked) this.host.setStatus(error instanceof Error ? error.message : String(error));
      return true;
    }
    this.host.added(index);
    if (asked) {
      this.latest = -1;
      this.host.select(message.name);
      this.host.setStatus(describeReply(message));
    }
    return true;
  }
}
