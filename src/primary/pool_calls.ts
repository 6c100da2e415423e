/**
 * Calls from the primary to several pools at once: each call has a number,
 * goes to every live pool but one, and resolves with their answers once
 * every pool it waits for has answered, stalled (when allowed) or died.
 *
 * @module
 */
import type { ToPool } from "../pool/protocol.ts";
import type { PoolHandle } from "./pool_handle.ts";

/** Whether a call still waits for a pool that stalls. */
export type StalledPools = "wait-for-stalled" | "skip-stalled";

/** Answers the primary waits for, from several pools. */
interface PendingAnswers {
  waiting: Set<number>;
  parts: unknown[];
  resolve(parts: unknown[]): void;
  stalled: StalledPools;
}

/** The primary's calls to the pools that are waiting for answers. */
export class PoolCalls {
  readonly #pools: readonly PoolHandle[];
  /** Messages sent to several pools, waiting for each one's answer. */
  #pending = new Map<number, PendingAnswers>();
  #nextId = 0;

  constructor(pools: readonly PoolHandle[]) {
    this.#pools = pools;
  }

  /**
   * Sends a message to every live pool but `except`; resolves with their
   * answers (with `"skip-stalled"`, without those of stalled pools).
   */
  ask(
    message: (id: number) => ToPool,
    except?: number,
    stalled: StalledPools = "wait-for-stalled",
  ): Promise<unknown[]> {
    const id = ++this.#nextId;
    const waiting = new Set<number>();
    for (const pool of this.#pools) {
      if (pool.index === except || !pool.live) continue;
      pool.send(message(id));
      if (stalled === "wait-for-stalled" || pool.stalledSince === 0) {
        waiting.add(pool.index);
      }
    }
    if (waiting.size === 0) return Promise.resolve([]);
    const { promise, resolve } = Promise.withResolvers<unknown[]>();
    this.#pending.set(id, { waiting, parts: [], resolve, stalled });
    return promise;
  }

  /** Asks every live pool but `except` for its `kind` of answer. */
  gather(
    kind: "topology" | "flush" | "drain",
    except?: number,
  ): Promise<unknown[]> {
    return this.ask((request) => ({ mf: 1, kind, request }), except);
  }

  /** Records pool `pool`'s answer to call `id`. */
  settle(id: number, pool: number, part?: unknown): void {
    const entry = this.#pending.get(id);
    if (entry === undefined || !entry.waiting.delete(pool)) return;
    if (part !== undefined) entry.parts.push(part);
    if (entry.waiting.size > 0) return;
    this.#pending.delete(id);
    entry.resolve(entry.parts);
  }

  /** Pool `index` died: no call waits for it any more. */
  poolGone(index: number): void {
    for (const id of [...this.#pending.keys()]) this.settle(id, index);
  }

  /** Stops waiting for stalled pool `index` where that is allowed. */
  skipStalled(index: number): void {
    for (const [id, entry] of this.#pending) {
      if (entry.stalled === "skip-stalled") this.settle(id, index);
    }
  }
}
