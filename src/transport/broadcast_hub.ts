import {
  createSharedCredits,
  leave,
  type SharedCredits,
} from "./broadcast_credits.ts";
import type { TransportHub, TransportSetup } from "./transport.ts";

/**
 * The primary's half of the BroadcastChannel carrier: one channel name and
 * one block of shared credits per run. A pool that goes down leaves the
 * credits, so no sender waits for it.
 *
 * @example
 * ```ts
 * import { BroadcastHub } from "./broadcast_hub.ts";
 * import assert from "node:assert/strict";
 *
 * const hub = new BroadcastHub("run-1", 2);
 * const { setup } = hub.connect();
 * assert.equal(setup.kind, "broadcast");
 * hub.disconnect(0);
 * ```
 */
export class BroadcastHub implements TransportHub {
  #name: string;
  #credits: SharedCredits;

  /**
   * @param runId Names the run's channel.
   * @param pools The number of pools.
   */
  constructor(runId: string, pools: number) {
    this.#name = `magic-foundation:${runId}`;
    this.#credits = createSharedCredits(pools);
  }

  connect(): { setup: TransportSetup; transfer: Transferable[] } {
    return {
      setup: { kind: "broadcast", name: this.#name, credits: this.#credits },
      transfer: [],
    };
  }

  disconnect(index: number): void {
    leave(this.#credits, index);
  }
}
