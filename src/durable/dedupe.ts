/**
 * The dedupe window of a stream: the publish ids seen within the last
 * `window` ms, as JetStream's `Nats-Msg-Id` and `duplicate_window`.
 *
 * @module
 */

/**
 * Remembers ids for `window` ms from when their message was stored.
 *
 * @example
 * ```ts
 * import { DedupeWindow } from "./dedupe.ts";
 * import assert from "node:assert/strict";
 *
 * const ids = new DedupeWindow(1000);
 * ids.add("a", 0);
 * assert.equal(ids.has("a", 999), true);
 * assert.equal(ids.has("a", 1000), false);
 * ```
 */
export class DedupeWindow {
  readonly window: number;
  /** id → when it was stored, in insertion (and so time) order. */
  #seen = new Map<string, number>();

  /** @param window How long an id is remembered, in ms (0: none is). */
  constructor(window: number) {
    this.window = window;
  }

  /** Whether `id` was stored within the window before `now`. */
  has(id: string, now: number): boolean {
    this.#expire(now);
    return this.#seen.has(id);
  }

  /** Remembers `id`, stored at `at`. */
  add(id: string, at: number): void {
    if (this.window === 0) return;
    this.#seen.delete(id);
    this.#seen.set(id, at);
  }

  /** Forgets the ids older than the window. */
  #expire(now: number): void {
    for (const [id, at] of this.#seen) {
      if (now - at < this.window) return;
      this.#seen.delete(id);
    }
  }
}
