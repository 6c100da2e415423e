/**
 * Each pool's heartbeat in shared memory: the pool writes `Date.now()` at
 * every housekeeping turn, the primary reads it to find a pool whose event
 * loop is blocked (a stall), without asking the pool anything.
 *
 * @example
 * ```ts
 * import { beat, createHeartbeats, silentFor } from "./heartbeat.ts";
 * import assert from "node:assert/strict";
 *
 * const heartbeats = createHeartbeats(2);
 * assert.equal(silentFor(heartbeats, 0, 1000), undefined);
 * beat(heartbeats, 0, 900);
 * assert.equal(silentFor(heartbeats, 0, 1000), 100);
 * ```
 */

/** Allocates the heartbeats of `pools` pools (0: not beating yet). */
export function createHeartbeats(pools: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(8 * pools));
}

/** Pool `index` is alive at `now`. */
export function beat(
  heartbeats: Float64Array,
  index: number,
  now: number = Date.now(),
): void {
  heartbeats[index] = now;
}

/** How long pool `index` has been silent at `now`; `undefined` before its first beat. */
export function silentFor(
  heartbeats: Float64Array,
  index: number,
  now: number = Date.now(),
): number | undefined {
  const last = heartbeats[index] ?? 0;
  return last === 0 ? undefined : now - last;
}

/** Forgets pool `index`'s beats (its worker was replaced). */
export function resetHeartbeat(heartbeats: Float64Array, index: number): void {
  heartbeats[index] = 0;
}
