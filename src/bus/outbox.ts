import type { Scheduler } from "../pool/scheduler.ts";
import type { Transport, WireMessage } from "./transport.ts";

/** Messages per channel batch. */
const BATCH = 1000;
/** Messages a pool may hold unsent before publishers wait. */
const LIMIT = 2 * BATCH;

/**
 * What a pool has published for the other pools and not sent yet. With
 * nothing in flight the first message leaves at once (latency); the rest of
 * a turn is coalesced into batches sent at the next macrotask (throughput);
 * when the transport has no credit left, sending waits for it.
 */
export class Outbox {
  #transport: Transport;
  #scheduler: Scheduler;
  #messages: WireMessage[] = [];
  #spaceWaiters: Array<() => void> = [];
  #emptyWaiters: Array<() => void> = [];
  #scheduled = false;
  #waitingForCredits = false;

  constructor(transport: Transport, scheduler: Scheduler) {
    this.#transport = transport;
    this.#scheduler = scheduler;
  }

  /** Messages not sent yet. */
  get size(): number {
    return this.#messages.length;
  }

  /** Whether publishers should wait (see {@linkcode Outbox.whenSpace}). */
  get full(): boolean {
    return this.#messages.length >= LIMIT;
  }

  /** Queues a message for the other pools. */
  push(message: WireMessage): void {
    this.#messages.push(message);
    if (this.#scheduled || this.#waitingForCredits) return;
    if (this.#messages.length === 1 && this.#transport.idle()) {
      this.#send();
      return;
    }
    this.#scheduled = true;
    this.#scheduler.defer(() => this.#send());
  }

  /** Resolves once the outbox is below its limit. */
  whenSpace(): Promise<void> {
    if (!this.full) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#spaceWaiters.push(resolve);
    return promise;
  }

  /** Resolves once everything queued so far has been sent. */
  flush(): Promise<void> {
    if (this.#messages.length === 0) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#emptyWaiters.push(resolve);
    if (!this.#scheduled && !this.#waitingForCredits) this.#send();
    return promise;
  }

  /** Releases every waiter (the pool is stopping). */
  close(): void {
    release(this.#spaceWaiters);
    release(this.#emptyWaiters);
  }

  #send(): void {
    this.#scheduled = false;
    while (this.#messages.length > 0) {
      const batch = this.#messages.length <= BATCH
        ? this.#messages
        : this.#messages.slice(0, BATCH);
      if (!this.#transport.trySend(batch)) {
        this.#waitingForCredits = true;
        this.#transport.whenWritable(250).then(() => {
          this.#waitingForCredits = false;
          this.#send();
        });
        break;
      }
      this.#messages = batch === this.#messages
        ? []
        : this.#messages.slice(BATCH);
    }
    if (!this.full) release(this.#spaceWaiters);
    if (this.#messages.length === 0) release(this.#emptyWaiters);
  }
}

function release(waiters: Array<() => void>): void {
  for (const resolve of waiters.splice(0)) resolve();
}
