import { releaseAll } from "../_util/waiters.ts";
import type { MessageHandler, MessageMeta } from "../service_context.ts";
import type { Scheduler } from "../scheduler.ts";
import type { Hold } from "./batch_hold.ts";
import type { SubscriptionCounters } from "./counters.ts";
import { PairQueue } from "./pair_queue.ts";
import { snapshot } from "../_util/snapshot.ts";
import type { MessageTracing } from "./tracing.ts";

/** A message waiting in a subscription's buffer. */
export interface Delivery {
  data: unknown;
  meta: MessageMeta;
}

/** Messages of one run waiting behind a full buffer: `data[next..end)`. */
interface Segment {
  data: unknown[];
  next: number;
  end: number;
  meta: MessageMeta;
  hold: Hold;
}

/** What a subscription needs from its pool. */
export interface SubscriptionHost {
  readonly scheduler: Scheduler;
  /**
   * Every how many handler calls one is timed into the counters' histogram
   * (0: none; the first call is one of them). Timing costs
   * two `performance.now()` calls, about 0.2 µs: 30% of the same-pool
   * throughput if every call were timed (bench row 7).
   */
  readonly timeEvery: number;
  /** The pool's spans, when OpenTelemetry is on (decided once, at start). */
  readonly tracing: MessageTracing | undefined;
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
 *
 * Messages from other pools that find the buffer full wait behind it, in
 * order, holding their batch's credit (see {@linkcode BatchHold}); so a full
 * subscription slows its senders down without holding up the pool's other
 * subscriptions.
 */
export class LocalSubscription {
  /** Its number (its id in the subscription table). */
  readonly id: number;
  readonly service: string;
  readonly queue: string;
  readonly group: string | undefined;
  readonly handler: MessageHandler<never>;
  readonly concurrency: number;
  readonly capacity: number;
  /** The counters this subscription adds to (shared with earlier ones to the same pattern). */
  readonly counters: SubscriptionCounters;
  /** Messages handed to the handler so far. */
  delivered = 0;
  /** The most messages that ever waited. */
  highWater = 0;
  closed = false;

  #host: SubscriptionHost;
  /** Data and meta of each waiting message. */
  #items = new PairQueue<unknown, MessageMeta>();
  #running = 0;
  #spaceWaiters: Array<() => void> = [];
  #idleWaiters: Array<() => void> = [];
  #lowWater: number;
  /** Messages from other pools waiting behind the full buffer, in order. */
  #overflow: Array<Segment | undefined> = [];
  #overflowHead = 0;
  /** `delivered` at the last `stalled()` call that saw progress, and when. */
  #stall = { delivered: 0, since: 0, reported: false };
  /** Handler calls until the next timed one; 0: none is timed. */
  #untilTimed: number;

  constructor(
    host: SubscriptionHost,
    id: number,
    service: string,
    queue: string,
    handler: MessageHandler<never>,
    options: {
      group?: string | undefined;
      concurrency: number;
      capacity: number;
      counters: SubscriptionCounters;
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
    this.counters = options.counters;
    this.#untilTimed = host.timeEvery === 0 ? 0 : 1;
    this.#lowWater = options.capacity -
      Math.max(1, Math.floor(options.capacity / 4));
  }

  /** Messages waiting for the handler. */
  get size(): number {
    return this.#items.length;
  }

  /** Messages from other pools waiting behind the full buffer. */
  get overflowed(): number {
    let count = 0;
    for (let i = this.#overflowHead; i < this.#overflow.length; i++) {
      const segment = this.#overflow[i]!;
      count += segment.end - segment.next;
    }
    return count;
  }

  /** Whether the buffer is at capacity. */
  get full(): boolean {
    return this.size >= this.capacity;
  }

  /** Messages being handled now. */
  get active(): number {
    return this.#running;
  }

  /**
   * Whether a message offered now goes straight into the buffer (or is
   * ignored, once closed): nothing waits behind it and it has room.
   */
  get takesNow(): boolean {
    return this.closed ||
      (this.#overflowHead === this.#overflow.length &&
        this.size < this.capacity);
  }

  /**
   * How many messages offered now go straight into the buffer (any number,
   * once closed: they are ignored).
   */
  get room(): number {
    if (this.closed) return Infinity;
    if (this.#overflowHead !== this.#overflow.length) return 0;
    return Math.max(0, this.capacity - this.size);
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
    this.counters.routed++;
    this.#items.push(data, meta);
    const size = this.size;
    if (size > this.highWater) this.highWater = size;
    if (this.#running < this.concurrency) {
      this.#running++;
      queueMicrotask(() => this.#pump());
    }
  }

  /**
   * Queues `data[start..end)`, messages from another pool sharing `meta`:
   * into the buffer as far as it has room and nothing waits behind it, the
   * rest behind it, holding `hold`. With `"copy"`, each message is
   * snapshotted first (another subscription takes the originals); with
   * `"take-originals"`, they are this subscription's alone, so the rest
   * waits in `data` itself.
   */
  offer(
    data: unknown[],
    start: number,
    end: number,
    meta: MessageMeta,
    hold: Hold,
    ownership: "copy" | "take-originals",
  ): void {
    const copy = ownership === "copy";
    if (this.closed) return;
    let next = start;
    if (this.#overflowHead === this.#overflow.length) {
      const stop = Math.min(end, next + this.capacity - this.size);
      for (; next < stop; next++) {
        this.push(copy ? snapshot(data[next]) : data[next], meta);
      }
    }
    if (next >= end) return;
    this.counters.routed += end - next;
    let rest = data;
    if (copy) {
      rest = [];
      for (; next < end; next++) rest.push(snapshot(data[next]));
      next = 0;
      end = rest.length;
    }
    hold.take();
    this.#overflow.push({ data: rest, next, end, meta, hold });
  }

  /** Stops delivery and returns what was still buffered or waiting behind. */
  close(): Delivery[] {
    this.closed = true;
    const rest: Delivery[] = this.#items.drain().map(([data, meta]) => ({
      data,
      meta,
    }));
    for (let i = this.#overflowHead; i < this.#overflow.length; i++) {
      const segment = this.#overflow[i]!;
      for (let j = segment.next; j < segment.end; j++) {
        rest.push({ data: segment.data[j], meta: segment.meta });
      }
      segment.hold.release();
    }
    this.#overflow = [];
    this.#overflowHead = 0;
    releaseAll(this.#spaceWaiters);
    releaseAll(this.#idleWaiters);
    return rest;
  }

  /** Drops the first message of the buffer (the pump has read it). */
  #advance(): void {
    this.#items.shift();
    // Waiting messages, then waiting publishers, move in once a quarter of
    // the buffer is free, not at every slot: one wake-up then moves many
    // messages instead of one.
    if (this.size > this.#lowWater) return;
    if (this.#overflowHead < this.#overflow.length) this.#refill();
    else if (this.#spaceWaiters.length > 0) releaseAll(this.#spaceWaiters);
  }

  /** Moves messages waiting behind the buffer into it while it has room. */
  #refill(): void {
    const overflow = this.#overflow;
    let head = this.#overflowHead;
    while (head < overflow.length && this.size < this.capacity) {
      const segment = overflow[head]!;
      const stop = Math.min(
        segment.end,
        segment.next + this.capacity - this.size,
      );
      for (; segment.next < stop; segment.next++) {
        this.#items.push(segment.data[segment.next], segment.meta);
      }
      if (segment.next < segment.end) break;
      overflow[head++] = undefined;
      segment.hold.release();
    }
    if (head === overflow.length) {
      this.#overflow = [];
      this.#overflowHead = 0;
    } else {
      this.#overflowHead = head;
    }
  }

  async #pump(): Promise<void> {
    const scheduler = this.#host.scheduler;
    const handler = this.handler as MessageHandler<unknown>;
    const counters = this.counters;
    const every = this.#host.timeEvery;
    const tracing = this.#host.tracing;
    try {
      while (!this.closed && this.#items.length > 0) {
        const data = this.#items.firstA();
        const meta = this.#items.firstB();
        this.#advance();
        this.delivered++;
        counters.delivered++;
        // Calls 1, 1 + every, 1 + 2 × every, … are timed (none when 0): a
        // countdown, cheaper than a modulo per message.
        let timed = false;
        if (this.#untilTimed > 0 && --this.#untilTimed === 0) {
          this.#untilTimed = every;
          timed = true;
        }
        const started = timed ? performance.now() : 0;
        try {
          const result = tracing === undefined
            ? handler(data, meta)
            : tracing.process(this, handler, data, meta);
          if (result instanceof Promise) await result;
        } catch (error) {
          counters.errors++;
          this.#host.handlerFailed(this, error, meta);
        }
        counters.handled++;
        if (timed) counters.observe(performance.now() - started);
        if (scheduler.tick()) await scheduler.yield();
      }
    } finally {
      this.#running--;
      if (this.#running === 0 && this.size === 0) {
        releaseAll(this.#idleWaiters);
      }
    }
  }

  /**
   * Whether it is stuck now: the last {@linkcode LocalSubscription.stalled}
   * call reported it, and since then nothing was delivered while messages
   * still wait. Read for the metrics; costs nothing per message.
   */
  get stuck(): boolean {
    return this.#stall.reported && this.size > 0 &&
      this.delivered === this.#stall.delivered;
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
}
