import type { MessageHandler, MessageMeta } from "../types.ts";
import type { Scheduler } from "../pool/scheduler.ts";

/** A message waiting in a subscription's buffer. */
export interface Delivery {
  data: unknown;
  meta: MessageMeta;
}

/** What a subscription needs from its pool. */
export interface SubscriptionHost {
  readonly scheduler: Scheduler;
  /** Called when a handler throws or rejects. */
  handlerFailed(
    subscription: LocalSubscription,
    error: unknown,
    meta: MessageMeta,
  ): void;
}

/**
 * One subscription inside a pool: a bounded buffer and the loop that feeds
 * the handler, at most `concurrency` messages at a time, in order.
 */
export class LocalSubscription {
  readonly id: string;
  readonly service: string;
  readonly queue: string;
  readonly group: string | undefined;
  readonly handler: MessageHandler<never>;
  readonly concurrency: number;
  readonly capacity: number;
  /** Messages handed to the handler so far. */
  delivered = 0;
  /** The most messages that ever waited. */
  highWater = 0;
  closed = false;

  #host: SubscriptionHost;
  /** Data and meta of each waiting message, side by side (no object per message). */
  #items: unknown[] = [];
  /** Where the next message's data is in `#items`. */
  #head = 0;
  #running = 0;
  #spaceWaiters: Array<() => void> = [];
  #idleWaiters: Array<() => void> = [];
  #lowWater: number;
  /** `delivered` at the last `stalled()` call that saw progress, and when. */
  #stall = { delivered: 0, since: 0, reported: false };

  constructor(
    host: SubscriptionHost,
    id: string,
    service: string,
    queue: string,
    handler: MessageHandler<never>,
    options: {
      group?: string | undefined;
      concurrency: number;
      capacity: number;
    },
  ) {
    this.#host = host;
    this.id = id;
    this.service = service;
    this.queue = queue;
    this.handler = handler;
    this.group = options.group;
    this.concurrency = options.concurrency;
    this.capacity = options.capacity;
    this.#lowWater = options.capacity -
      Math.max(1, Math.floor(options.capacity / 4));
  }

  /** Messages waiting for the handler. */
  get size(): number {
    return (this.#items.length - this.#head) >> 1;
  }

  /** How many more messages fit before the buffer is full (0 when full). */
  get room(): number {
    return Math.max(0, this.capacity - this.size);
  }

  /** Whether the buffer is at capacity. */
  get full(): boolean {
    return this.size >= this.capacity;
  }

  /** Messages being handled now. */
  get active(): number {
    return this.#running;
  }

  /** Publishers waiting for space in this buffer. */
  get waiting(): number {
    return this.#spaceWaiters.length;
  }

  /** Resolves when the buffer has room (at once if it has). */
  whenSpace(): Promise<void> {
    if (!this.full || this.closed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#spaceWaiters.push(resolve);
    return promise;
  }

  /** Resolves when nothing is buffered or running. */
  whenIdle(): Promise<void> {
    if ((this.size === 0 && this.#running === 0) || this.closed) {
      return Promise.resolve();
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#idleWaiters.push(resolve);
    return promise;
  }

  /** Queues a message; callers check `full` first (reassigned group messages may exceed it). */
  push(data: unknown, meta: MessageMeta): void {
    if (this.closed) return;
    this.#items.push(data, meta);
    const size = this.size;
    if (size > this.highWater) this.highWater = size;
    if (this.#running < this.concurrency) {
      this.#running++;
      queueMicrotask(() => this.#pump());
    }
  }

  /** Stops delivery and returns what was still buffered. */
  close(): Delivery[] {
    this.closed = true;
    const rest: Delivery[] = [];
    for (let i = this.#head; i < this.#items.length; i += 2) {
      rest.push({
        data: this.#items[i],
        meta: this.#items[i + 1] as MessageMeta,
      });
    }
    this.#items = [];
    this.#head = 0;
    this.#release(this.#spaceWaiters);
    this.#release(this.#idleWaiters);
    return rest;
  }

  /** Drops the first message of the buffer (the pump has read it). */
  #advance(): void {
    const head = this.#head;
    this.#items[head] = this.#items[head + 1] = undefined;
    this.#head = head + 2;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 2048 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    // Waiters resume once a quarter of the buffer is free, not at every
    // slot: one wake-up then moves many messages instead of one.
    if (this.#spaceWaiters.length > 0 && this.size <= this.#lowWater) {
      this.#release(this.#spaceWaiters);
    }
  }

  async #pump(): Promise<void> {
    const scheduler = this.#host.scheduler;
    const handler = this.handler as MessageHandler<unknown>;
    try {
      while (!this.closed && this.#head < this.#items.length) {
        const data = this.#items[this.#head];
        const meta = this.#items[this.#head + 1] as MessageMeta;
        this.#advance();
        this.delivered++;
        try {
          const result = handler(data, meta);
          if (result instanceof Promise) await result;
        } catch (error) {
          this.#host.handlerFailed(this, error, meta);
        }
        if (scheduler.tick()) await scheduler.yield();
      }
    } finally {
      this.#running--;
      if (this.#running === 0 && this.size === 0) {
        this.#release(this.#idleWaiters);
      }
    }
  }

  /**
   * Called periodically (at `now`): `true`, once per stall, when messages
   * have been waiting and no handler has started for `after` ms or more.
   * Costs nothing per message: it compares `delivered` between calls.
   */
  stalled(now: number, after: number): boolean {
    if (this.size === 0 || this.delivered !== this.#stall.delivered) {
      this.#stall = { delivered: this.delivered, since: now, reported: false };
      return false;
    }
    if (this.#stall.reported || now - this.#stall.since < after) return false;
    this.#stall.reported = true;
    return true;
  }

  #release(waiters: Array<() => void>): void {
    const list = waiters.splice(0);
    for (const resolve of list) resolve();
  }
}
