/**
 * A pool's calls to the primary that wait for an answer (subscribe,
 * unsubscribe, the whole program's topology and metrics): each gets a
 * number, and the primary's `reply` with that number settles it.
 *
 * @module
 */
import type { PrimaryLink } from "../bus/bus.ts";
import { deserializeError } from "../errors.ts";
import type { MetricsSnapshot } from "../metrics_snapshot.ts";
import type { Topology } from "../service_context.ts";
import type { FromPool, ToPool } from "./protocol.ts";

type Reply = Extract<ToPool, { kind: "reply" }>;
type Pending = { resolve(value: unknown): void; reject(error: Error): void };

/** The calls of one pool that wait for the primary's reply. */
export class PrimaryCalls {
  #pending = new Map<number, Pending>();
  #next = 0;
  #send: (message: FromPool) => void;

  /** @param send Posts a message to the primary. */
  constructor(send: (message: FromPool) => void) {
    this.#send = send;
  }

  /** What the bus calls the primary for. */
  link(): PrimaryLink {
    return {
      subscribe: async (entry) => {
        await this.#call({ mf: 1, kind: "subscribe", request: 0, entry });
      },
      unsubscribe: async (ids) => {
        await this.#call({ mf: 1, kind: "unsubscribe", request: 0, ids });
      },
      topology: async () =>
        await this.#call({
          mf: 1,
          kind: "topology-request",
          request: 0,
        }) as Topology,
      metrics: async () =>
        await this.#call({
          mf: 1,
          kind: "metrics-request",
          request: 0,
        }) as MetricsSnapshot,
    };
  }

  /** Settles the call a reply answers (an unknown number is ignored). */
  settle(reply: Reply): void {
    const pending = this.#pending.get(reply.request);
    if (pending === undefined) return;
    this.#pending.delete(reply.request);
    if (reply.error !== undefined) {
      pending.reject(deserializeError(reply.error));
    } else pending.resolve(reply.value);
  }

  /** Rejects every call still waiting: the pool has stopped. */
  rejectAll(reason: string): void {
    for (const pending of this.#pending.values()) {
      pending.reject(new Error(reason));
    }
    this.#pending.clear();
  }

  #call(message: FromPool & { request: number }): Promise<unknown> {
    message.request = ++this.#next;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#pending.set(message.request, { resolve, reject });
    this.#send(message);
    return promise;
  }
}
