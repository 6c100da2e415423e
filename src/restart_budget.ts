/**
 * The restart budget and its backoff, one helper for both supervisors: the
 * pool runner restarting a service, and the primary restarting a pool's
 * worker.
 *
 * @module
 */

/** The limits of a restart budget: a service's restart settings. */
export interface RestartLimits {
  /** The most restarts allowed within `restartWindow`. */
  maxRestarts: number;
  /** The window, in ms, in which restarts are counted. */
  restartWindow: number;
  /** Delay before the first restart, in ms; doubles each time. */
  backoffInitial: number;
  /** The longest delay between restarts, in ms. */
  backoffMax: number;
}

/**
 * Counts restarts within a sliding window and says how long to wait before
 * the next one: `backoffInitial`, doubled for each restart still in the
 * window, at most `backoffMax`; none once `maxRestarts` are in the window.
 *
 * @example Backoff doubles, then the budget is spent
 * ```ts
 * import { RestartBudget } from "./restart_budget.ts";
 * import assert from "node:assert/strict";
 *
 * const limits = {
 *   maxRestarts: 3,
 *   restartWindow: 60_000,
 *   backoffInitial: 100,
 *   backoffMax: 250,
 * };
 * const budget = new RestartBudget();
 * assert.equal(budget.take(limits, 0), 100);
 * assert.equal(budget.take(limits, 1), 200);
 * assert.equal(budget.take(limits, 2), 250);
 * assert.equal(budget.take(limits, 3), undefined);
 * assert.equal(budget.used, 3);
 * assert.equal(budget.take(limits, 60_002), 100); // all three left the window
 * ```
 */
export class RestartBudget {
  #times: number[] = [];

  /** The restarts in the window, as of the last {@linkcode RestartBudget.take}. */
  get used(): number {
    return this.#times.length;
  }

  /**
   * Takes one restart from the budget.
   *
   * @param limits The budget and backoff settings.
   * @param now The time, in ms since the epoch.
   * @returns The delay before the restart, in ms, or `undefined` when
   * `maxRestarts` restarts are already in the window (none is taken).
   */
  take(limits: RestartLimits, now: number = Date.now()): number | undefined {
    this.#times = this.#times.filter((t) => now - t < limits.restartWindow);
    if (this.#times.length >= limits.maxRestarts) return undefined;
    const delay = Math.min(
      limits.backoffMax,
      limits.backoffInitial * 2 ** this.#times.length,
    );
    this.#times.push(now);
    return delay;
  }
}
