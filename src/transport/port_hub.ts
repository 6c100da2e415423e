import type { PostToPool, TransportHub, TransportSetup } from "./transport.ts";

/**
 * The primary's half of the MessagePort mesh. Each pair of pools gets one
 * `MessageChannel`, made when the later of the two is ready: the new pool
 * gets its ends in its setup, each peer that is up gets the other end in a
 * `peer-up` update. A pool that goes down is announced with `peer-down`, and
 * its peers close their ends.
 *
 * @example Two pools
 * ```ts
 * import { PortHub } from "./port_hub.ts";
 * import assert from "node:assert/strict";
 *
 * const updates: string[] = [];
 * const hub = new PortHub((index, update, transfer) => {
 *   updates.push(`${index}:${update.kind}:${update.peer}`);
 *   for (const port of transfer) (port as MessagePort).close();
 * });
 * const first = hub.connect(0);
 * assert.deepEqual(first.transfer, []);
 * const second = hub.connect(1);
 * assert.equal(second.transfer.length, 1);
 * hub.disconnect(1);
 * assert.deepEqual(updates, ["0:peer-up:1", "0:peer-down:1"]);
 * for (const port of second.transfer) (port as MessagePort).close();
 * ```
 */
export class PortHub implements TransportHub {
  #post: PostToPool;
  #up = new Set<number>();

  /** @param post Sends an update to a live pool's worker. */
  constructor(post: PostToPool) {
    this.#post = post;
  }

  connect(index: number): { setup: TransportSetup; transfer: Transferable[] } {
    this.#up.delete(index);
    const peers: Array<[number, MessagePort]> = [];
    for (const peer of this.#up) {
      const { port1, port2 } = new MessageChannel();
      peers.push([peer, port1]);
      this.#post(peer, { kind: "peer-up", peer: index, port: port2 }, [port2]);
    }
    this.#up.add(index);
    return {
      setup: { kind: "ports", peers },
      transfer: peers.map(([, port]) => port),
    };
  }

  disconnect(index: number): void {
    if (!this.#up.delete(index)) return;
    for (const peer of this.#up) {
      this.#post(peer, { kind: "peer-down", peer: index }, []);
    }
  }
}
