import type { Scheduler } from "../scheduler.ts";
import { decodeBatch, encodeBatch, type EncodedBatch } from "./codec.ts";
import { Outbox } from "./outbox.ts";
import type { ReceivedBatch, WireMessage } from "./transport.ts";

/**
 * Batches a sender may have unacknowledged on one link. 64 batches of up to
 * 1,000 messages keep both threads busy (the bare MessagePort yardstick in
 * `bench/bus_bench.ts` uses the same window); with the byte bound of a
 * batch, at most 64 MiB are in flight per link.
 */
export const WINDOW = 64;

/**
 * One pool's end of a `MessageChannel` to one other pool. Both directions
 * share the port: batches are objects, acknowledgements are numbers (how many
 * batches were routed), sent at most once per task.
 *
 * Flow control is this link's alone: when the peer stops acknowledging, only
 * what is sent to it waits.
 */
export class PortLink {
  /** The peer pool's index. */
  readonly peer: number;
  #port: MessagePort;
  #outbox: Outbox<WireMessage>;
  #inFlight = 0;
  #sent = 0;
  #acked = 0;
  #writable: Array<() => void> = [];
  #ackWaiters: Array<{ upTo: number; resolve: () => void }> = [];
  #acks = 0;
  #held = 0;
  #closed = false;

  /**
   * @param peer The peer pool's index.
   * @param port This pool's end of the channel.
   * @param scheduler The pool's scheduler (batches leave on its turns).
   * @param receive Called with each batch the peer sends.
   */
  constructor(
    peer: number,
    port: MessagePort,
    scheduler: Scheduler,
    receive: (batch: ReceivedBatch) => void,
  ) {
    this.peer = peer;
    this.#port = port;
    this.#outbox = new Outbox<WireMessage>(
      {
        trySend: (items, start, end) => this.#trySend(items, start, end),
        idle: () => this.#inFlight === 0,
        whenWritable: () => this.#whenWritable(),
      },
      scheduler,
      (message) => message.size,
    );
    port.onmessage = (event: MessageEvent<EncodedBatch | number>) => {
      const message = event.data;
      if (typeof message === "number") this.#acknowledged(message);
      else this.#receive(message, receive);
    };
  }

  /** Queues a message; returns a promise when publishers should wait. */
  push(message: WireMessage): Promise<void> | undefined {
    this.#outbox.push(message);
    return this.#outbox.full ? this.#outbox.whenSpace() : undefined;
  }

  /** Whether anything is queued or unacknowledged. */
  busy(): boolean {
    return this.#outbox.size > 0 || this.#inFlight > 0;
  }

  /** Batches received from the peer and not acknowledged yet. */
  get held(): number {
    return this.#held;
  }

  /** Resolves once everything queued so far has been acknowledged. */
  async flush(): Promise<void> {
    await this.#outbox.flush();
    if (this.#closed || this.#acked >= this.#sent) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#ackWaiters.push({ upTo: this.#sent, resolve });
    await promise;
  }

  /** Closes the port; returns the messages that were never sent. */
  close(): WireMessage[] {
    if (this.#closed) return [];
    this.#closed = true;
    this.#port.close();
    const unsent = this.#outbox.close();
    release(this.#writable);
    for (const waiter of this.#ackWaiters.splice(0)) waiter.resolve();
    return unsent;
  }

  #trySend(items: readonly WireMessage[], start: number, end: number): boolean {
    if (this.#closed) return true;
    if (this.#inFlight >= WINDOW) return false;
    this.#inFlight++;
    this.#sent++;
    this.#port.postMessage(encodeBatch(items, start, end));
    return true;
  }

  #whenWritable(): Promise<void> {
    if (this.#inFlight < WINDOW || this.#closed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#writable.push(resolve);
    return promise;
  }

  #acknowledged(count: number): void {
    this.#inFlight -= count;
    this.#acked += count;
    // Wake the outbox when half the window is free, not at every batch: one
    // wake-up then sends many batches.
    if (this.#inFlight <= WINDOW / 2) release(this.#writable);
    if (this.#ackWaiters.length > 0) {
      this.#ackWaiters = this.#ackWaiters.filter((waiter) => {
        if (waiter.upTo > this.#acked) return true;
        waiter.resolve();
        return false;
      });
    }
  }

  #receive(
    batch: EncodedBatch,
    receive: (batch: ReceivedBatch) => void,
  ): void {
    const { data, runs } = decodeBatch(batch);
    let acked = false;
    this.#held++;
    receive({
      sender: this.peer,
      data,
      runs,
      ack: () => {
        if (acked || this.#closed) return;
        acked = true;
        this.#held--;
        // Acknowledgements of one task go back as one message.
        if (this.#acks++ === 0) queueMicrotask(() => this.#sendAcks());
      },
    });
  }

  #sendAcks(): void {
    const count = this.#acks;
    this.#acks = 0;
    if (!this.#closed && count > 0) this.#port.postMessage(count);
  }
}

function release(waiters: Array<() => void>): void {
  for (const resolve of waiters.splice(0)) resolve();
}
