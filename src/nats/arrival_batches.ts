/**
 * What arrives from NATS in one read of a connection, gathered per interest
 * and handed to the bus at once: the client calls a subscription back once
 * per message, all of one read in one go, so a microtask after the first
 * message runs once the read is done. The bus then looks the subscriptions
 * up and makes a meta once per run of alike messages, and a message that
 * waits behind a full buffer waits with its run, not alone.
 *
 * @module
 */
import type {
  RemoteBatch,
  RemoteInterest,
  RemoteRun,
} from "../transport/remote.ts";

/** One message, as the carrier read it. */
export interface Arrival {
  queue: string;
  data: unknown;
  /** Its size as it arrived, in bytes. */
  size: number;
  /** The publishing service (`""` when unknown). */
  service: string;
  /** The publisher's pool, when the message names it. */
  pool: string | undefined;
  replyTo: string | undefined;
  headers: Record<string, string> | undefined;
}

/**
 * Gathers arrivals per interest until the end of the read.
 *
 * @example One read, two messages alike: one batch of one run
 * ```ts
 * import { ArrivalBatches } from "./arrival_batches.ts";
 * import type { RemoteBatch } from "../transport/remote.ts";
 * import assert from "node:assert/strict";
 *
 * const batches: RemoteBatch[] = [];
 * const gather = new ArrivalBatches((_interest, batch) => batches.push(batch));
 * const interest = { pattern: "q://orders" };
 * for (const id of [1, 2]) {
 *   gather.add(interest, {
 *     queue: "q://orders",
 *     data: { id },
 *     size: 8,
 *     service: "Api",
 *     pool: "web",
 *     replyTo: undefined,
 *     headers: undefined,
 *   });
 * }
 * await Promise.resolve();
 * assert.equal(batches.length, 1);
 * assert.deepEqual(batches[0]!.data, [{ id: 1 }, { id: 2 }]);
 * assert.equal(batches[0]!.runs.length, 1);
 * ```
 */
export class ArrivalBatches {
  #deliver: (interest: RemoteInterest, batch: RemoteBatch) => void;
  /** The batches of this read, in the order of their first message. */
  #filling = new Map<RemoteInterest, RemoteBatch>();
  /** When this read's first message arrived (`Date.now()`). */
  #now = 0;

  /** @param deliver Takes each interest's batch at the end of a read. */
  constructor(deliver: (interest: RemoteInterest, batch: RemoteBatch) => void) {
    this.#deliver = deliver;
  }

  /** Adds a message for `interest`; delivered at the end of the read. */
  add(interest: RemoteInterest, arrival: Arrival): void {
    if (this.#filling.size === 0) {
      this.#now = Date.now();
      queueMicrotask(() => this.#flush());
    }
    let batch = this.#filling.get(interest);
    if (batch === undefined) {
      batch = { data: [], sizes: [], runs: [] };
      this.#filling.set(interest, batch);
    }
    const { data, runs } = batch;
    data.push(arrival.data);
    batch.sizes.push(arrival.size);
    const last = runs.length === 0 ? undefined : runs[runs.length - 1]!;
    if (last !== undefined && alike(last, arrival)) {
      last.end = data.length;
      return;
    }
    const run: RemoteRun = {
      envelope: {
        queue: arrival.queue,
        service: arrival.service,
        publishedAt: this.#now,
      },
      pool: arrival.pool,
      end: data.length,
    };
    if (arrival.replyTo !== undefined) run.envelope.replyTo = arrival.replyTo;
    if (arrival.headers !== undefined) run.envelope.headers = arrival.headers;
    runs.push(run);
  }

  #flush(): void {
    const filling = this.#filling;
    this.#filling = new Map();
    for (const [interest, batch] of filling) this.#deliver(interest, batch);
  }
}

/** Whether `arrival` can join `run`: same queue and publisher, nothing of its own. */
function alike(run: RemoteRun, arrival: Arrival): boolean {
  const { envelope } = run;
  return arrival.replyTo === undefined && arrival.headers === undefined &&
    envelope.replyTo === undefined && envelope.headers === undefined &&
    envelope.queue === arrival.queue &&
    envelope.service === arrival.service && run.pool === arrival.pool;
}
