// A stand-in for anywidget's model: get/set with synchronous change events,
// as Backbone fires them, and a record of what was saved and sent.

import type { AnyModel, Callback } from "../src/model";

export class FakeModel<State extends object> implements AnyModel<State> {
  saved: Partial<State>[] = [];
  sent: unknown[] = [];
  private pending: Partial<State> = {};
  private listeners = new Map<string, Set<Callback>>();

  constructor(private state: State) {}

  get<K extends keyof State>(key: K): State[K] {
    return this.state[key];
  }

  set<K extends keyof State>(key: K, value: State[K]): void {
    if (this.state[key] === value) return;
    this.state[key] = value;
    this.pending[key] = value;
    this.emit(`change:${String(key)}`);
  }

  save_changes(): void {
    this.saved.push(this.pending);
    this.pending = {};
  }

  on(event: string, callback: Callback): void {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)!.add(callback);
  }

  off(event?: string | null, callback?: Callback | null): void {
    if (event && callback) this.listeners.get(event)?.delete(callback);
  }

  send(content: unknown): void {
    this.sent.push(content);
  }

  emit(event: string, ...args: unknown[]): void {
    for (const callback of this.listeners.get(event) ?? []) callback(...args);
  }

  listenerCount(): number {
    return [...this.listeners.values()].reduce((n, s) => n + s.size, 0);
  }
}
