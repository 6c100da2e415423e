import type { UnsentCount } from "./transport.ts";

/**
 * Counts messages a transport gave up on, by receiving pool and queue, so
 * that none is lost silently.
 *
 * @example
 * ```ts
 * import { UnsentTally } from "./unsent.ts";
 * import assert from "node:assert/strict";
 *
 * const tally = new UnsentTally();
 * tally.add(2, "q://a", 1);
 * tally.add(2, "q://a", 2);
 * assert.deepEqual(tally.take(), [{ to: 2, queue: "q://a", count: 3 }]);
 * assert.deepEqual(tally.take(), []);
 * ```
 */
export class UnsentTally {
  #counts = new Map<number, Map<string, number>>();

  /** Counts `count` messages on `queue` that did not reach pool `to`. */
  add(to: number, queue: string, count: number): void {
    let queues = this.#counts.get(to);
    if (queues === undefined) this.#counts.set(to, queues = new Map());
    queues.set(queue, (queues.get(queue) ?? 0) + count);
  }

  /** Returns the counts so far and starts again from zero. */
  take(): UnsentCount[] {
    const counts: UnsentCount[] = [];
    for (const [to, queues] of this.#counts) {
      for (const [queue, count] of queues) counts.push({ to, queue, count });
    }
    this.#counts.clear();
    return counts;
  }
}
