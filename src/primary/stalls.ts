/**
 * Stall detection: every pool's worker writes a heartbeat into shared
 * memory as its event loop turns; a pool silent for longer than the stall
 * threshold is stalled (a handler blocking synchronously), and calls that
 * allow it stop waiting for it.
 *
 * @module
 */
import { silentFor } from "../pool/heartbeat.ts";
import type { Logger } from "../logger.ts";
import type { PoolHandle } from "./pool_handle.ts";

/** How often the heartbeats are read, in ms. */
const STALL_CHECK_MS = 250;

/** Watches the pools' heartbeats while the program runs. */
export class StallWatch {
  readonly #pools: readonly PoolHandle[];
  readonly #heartbeats: Float64Array;
  readonly #threshold: number;
  readonly #log: Logger;
  readonly #stalled: (index: number) => void;
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param stalled Called when pool `index` begins to stall.
   */
  constructor(
    pools: readonly PoolHandle[],
    heartbeats: Float64Array,
    threshold: number,
    log: Logger,
    stalled: (index: number) => void,
  ) {
    this.#pools = pools;
    this.#heartbeats = heartbeats;
    this.#threshold = threshold;
    this.#log = log;
    this.#stalled = stalled;
  }

  /** Begins to read the heartbeats. */
  start(): void {
    this.#timer = setInterval(() => this.#check(), STALL_CHECK_MS);
  }

  /** Stops reading them. */
  stop(): void {
    clearInterval(this.#timer);
  }

  #check(): void {
    const now = Date.now();
    const threshold = this.#threshold;
    for (const pool of this.#pools) {
      if (!pool.live) {
        pool.stalledSince = 0;
        continue;
      }
      const silent = silentFor(this.#heartbeats, pool.index, now);
      if (silent === undefined) continue;
      const last = now - silent;
      if (pool.stalledSince === 0 && silent > threshold) {
        pool.stalledSince = last;
        pool.stalls++;
        this.#log.warn(
          `Pool "${pool.name}" is stalled: its event loop has not turned for ${silent} ms (a handler blocking synchronously?)`,
        );
        this.#stalled(pool.index);
      } else if (pool.stalledSince !== 0 && silent <= threshold) {
        this.#log.info(
          `Pool "${pool.name}" recovered after a stall of ${
            last - pool.stalledSince
          } ms`,
        );
        pool.stalledSince = 0;
      }
    }
  }
}
