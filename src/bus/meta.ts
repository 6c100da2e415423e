import type { Envelope } from "../transport/transport.ts";
import type { MessageMeta, MessageOrigin } from "../service_context.ts";

/**
 * Builds the `meta` of delivered messages: one frozen object shared by
 * every subscription that receives a message, and by the messages of a run,
 * which share every field (`from` and `headers` frozen too).
 *
 * @example
 * ```ts
 * import { MetaFactory } from "./meta.ts";
 * import assert from "node:assert/strict";
 *
 * const metas = new MetaFactory(["a", "b"]);
 * const meta = metas.of({ queue: "q://x", service: "S", publishedAt: 1 }, 1);
 * assert.deepEqual(meta.from, { pool: "b", service: "S" });
 * assert.ok(Object.isFrozen(meta));
 * ```
 */
export class MetaFactory {
  #pools: readonly string[];
  /** `meta.from` objects, frozen and shared: pool index → service → origin. */
  #origins: Array<Map<string, MessageOrigin>> = [];
  /** `meta.from` of messages from other processes: pool and service → origin. */
  #named = new Map<string, MessageOrigin>();

  /** @param pools The pools' names, by index. */
  constructor(pools: readonly string[]) {
    this.#pools = pools;
  }

  /** The name of pool `index`. */
  poolName(index: number): string {
    return this.#pools[index] ?? String(index);
  }

  /** The index of the pool named `name` (-1 when there is none). */
  poolIndex(name: string): number {
    return this.#pools.indexOf(name);
  }

  /**
   * The frozen meta of a message sent by pool `sender` (or by the publisher
   * its address names, when another pool handed it on).
   */
  of(envelope: Envelope, sender: number): MessageMeta {
    const origin = envelope.to?.publisher ?? sender;
    const services = this.#origins[origin] ??= new Map();
    let from = services.get(envelope.service);
    if (from === undefined) {
      from = Object.freeze({
        pool: this.poolName(origin),
        service: envelope.service,
      });
      services.set(envelope.service, from);
    }
    return this.#meta(envelope, from);
  }

  /**
   * The frozen meta of a message from pool `pool` of another process (its
   * `from` shared, as far as a bounded cache keeps it).
   */
  named(envelope: Envelope, pool: string): MessageMeta {
    const key = `${pool}\u0000${envelope.service}`;
    let from = this.#named.get(key);
    if (from === undefined) {
      if (this.#named.size >= 4096) this.#named.clear();
      from = Object.freeze({ pool, service: envelope.service });
      this.#named.set(key, from);
    }
    return this.#meta(envelope, from);
  }

  #meta(envelope: Envelope, from: MessageOrigin): MessageMeta {
    const meta: MessageMeta = {
      queue: envelope.queue,
      from,
      publishedAt: envelope.publishedAt,
    };
    if (envelope.replyTo !== undefined) meta.replyTo = envelope.replyTo;
    if (envelope.headers !== undefined) {
      meta.headers = Object.freeze(envelope.headers);
    }
    return Object.freeze(meta);
  }
}
