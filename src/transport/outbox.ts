import { releaseAll } from "../_util/waiters.ts";
import type { Scheduler } from "../scheduler.ts";

/** Messages per batch. */
export const BATCH_MESSAGES = 1000;
/**
 * Bytes per batch (as `size` estimates them): a run of large messages never
 * becomes one huge message on the carrier, whose serialized and
 * deserialized copies would all be alive at once (100 messages of 512 KiB in
 * one BroadcastChannel message peaked at 1.8 GB here). 16 KiB, not more:
 * Deno hands a BroadcastChannel message to each pool as an array of 8 bytes
 * per byte, a large object in fresh pages once the message passes ~16 KB
 * (seen with `perf`). With 16 KiB instead of 1 MiB the 1M-message load test
 * (both transports) took 23–25 s of CPU instead of 26–33 s, and the
 * broadcast flow to four pools went from 0.78× to 0.98× of the bare channel
 * (bus bench row 2; row 1, ports, the same within the noise).
 */
export const BATCH_BYTES = 16 * 1024;
/** Messages an outbox holds unsent before publishers wait. */
const LIMIT_MESSAGES = 2 * BATCH_MESSAGES;
/** Bytes an outbox holds unsent before publishers wait. */
const LIMIT_BYTES = 4 * 1024 * 1024;

/** Where an outbox's batches go. */
export interface BatchSink<T> {
  /** Sends `items[start..end)` as one batch; `false` when flow control says wait. */
  trySend(items: readonly T[], start: number, end: number): boolean;
  /**
   * Whether an item queued into an empty outbox may go at once, alone (the
   * sink has little or nothing unacknowledged).
   */
  idle(): boolean;
  /** Resolves when `trySend` may succeed again. */
  whenWritable(): Promise<void>;
}

/**
 * What a pool has queued for one sink and not sent yet. When the sink is
 * idle (see `BatchSink.idle`) and the flow is sparse, an item queued into an
 * empty outbox leaves at once (latency); the rest of a turn is
 * coalesced into batches, bounded by count and by bytes, sent at the next
 * macrotask (throughput); when the sink says wait, sending waits for it.
 *
 * The flow is dense while the last batch coalesced over a turn held more
 * than one item: items keep coming turn after turn, and sending the first
 * of each turn alone would only add a post (on both threads) per turn. 50
 * WebSocket echo connections to a consumer in another pool sent 0.09
 * batches a round trip each way with the first of each turn at once, 0.035
 * without (bench/websocket_bench.ts' setup, under load). It is sparse again
 * as soon as such a batch holds one item.
 *
 * @example Items of one turn leave as one batch
 * ```ts
 * import { Outbox } from "./outbox.ts";
 * import { Scheduler } from "../scheduler.ts";
 * import assert from "node:assert/strict";
 *
 * const scheduler = new Scheduler();
 * const sent: number[][] = [];
 * const outbox = new Outbox<number>({
 *   trySend: (items, start, end) => (sent.push(items.slice(start, end)), true),
 *   idle: () => false,
 *   whenWritable: () => Promise.resolve(),
 * }, scheduler, () => 8);
 * outbox.push(1);
 * outbox.push(2);
 * await outbox.flush();
 * assert.deepEqual(sent, [[1, 2]]);
 * scheduler.close();
 * ```
 */
export class Outbox<T> {
  #sink: BatchSink<T>;
  #scheduler: Scheduler;
  #sizeOf: (item: T) => number;
  #batchBytes: number;
  #items: T[] = [];
  #head = 0;
  #bytes = 0;
  /** The one promise every publisher waiting for space shares. */
  #space: PromiseWithResolvers<void> | undefined;
  #emptyWaiters: Array<() => void> = [];
  #scheduled = false;
  /** The last batch coalesced over a turn held more than one item. */
  #dense = false;
  #waiting = false;
  #closed = false;

  /**
   * @param sink Where batches go.
   * @param scheduler Defers sending to the next macrotask.
   * @param sizeOf About how many bytes an item holds.
   * @param batchBytes Bytes per batch (as `sizeOf` counts them).
   */
  constructor(
    sink: BatchSink<T>,
    scheduler: Scheduler,
    sizeOf: (item: T) => number,
    batchBytes: number = BATCH_BYTES,
  ) {
    this.#sink = sink;
    this.#scheduler = scheduler;
    this.#sizeOf = sizeOf;
    this.#batchBytes = batchBytes;
  }

  /** Items not sent yet. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Whether publishers should wait (see {@linkcode Outbox.whenSpace}). */
  get full(): boolean {
    return this.size >= LIMIT_MESSAGES || this.#bytes >= LIMIT_BYTES;
  }

  /** Queues an item. */
  push(item: T): void {
    if (this.#closed) return;
    this.#items.push(item);
    this.#bytes += this.#sizeOf(item);
    if (this.#scheduled || this.#waiting) return;
    if (this.size === 1 && !this.#dense && this.#sink.idle()) {
      this.#send();
      return;
    }
    this.#scheduled = true;
    this.#scheduler.defer(this.#sendCoalesced);
  }

  /** Sends what a turn queued, and notes whether the flow is dense. */
  #sendCoalesced = (): void => {
    this.#dense = this.size > 1;
    this.#send();
  };

  /**
   * Resolves once the outbox is below its limits (one promise shared by
   * every caller while it is full, so a sender that pushes on regardless
   * costs nothing more per message).
   */
  whenSpace(): Promise<void> {
    if (!this.full || this.#closed) return Promise.resolve();
    return (this.#space ??= Promise.withResolvers<void>()).promise;
  }

  #releaseSpace(): void {
    const space = this.#space;
    this.#space = undefined;
    space?.resolve();
  }

  /** Resolves once everything queued so far has been handed to the sink. */
  flush(): Promise<void> {
    if (this.size === 0 || this.#closed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#emptyWaiters.push(resolve);
    if (!this.#scheduled && !this.#waiting) this.#send();
    return promise;
  }

  /** Stops sending, releases every waiter and returns what was unsent. */
  close(): T[] {
    this.#closed = true;
    const rest = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#releaseSpace();
    releaseAll(this.#emptyWaiters);
    return rest;
  }

  #send(): void {
    this.#scheduled = false;
    if (this.#closed) return;
    const items = this.#items;
    let head = this.#head;
    while (head < items.length) {
      let end = head;
      let bytes = 0;
      const last = Math.min(items.length, head + BATCH_MESSAGES);
      // Each item's size read once: a batch of small messages is long.
      let size = this.#sizeOf(items[end]!);
      do {
        bytes += size;
        end++;
        if (end === last) break;
        size = this.#sizeOf(items[end]!);
      } while (bytes + size <= this.#batchBytes);
      if (!this.#sink.trySend(items, head, end)) {
        this.#waiting = true;
        this.#sink.whenWritable().then(() => {
          this.#waiting = false;
          this.#send();
        });
        break;
      }
      this.#bytes -= bytes;
      head = end;
    }
    if (head === items.length) {
      this.#items = [];
      this.#head = 0;
      this.#bytes = 0;
    } else if (head > BATCH_MESSAGES && head * 2 > items.length) {
      this.#items = items.slice(head);
      this.#head = 0;
    } else {
      this.#head = head;
    }
    if (!this.full) this.#releaseSpace();
    if (this.size === 0) releaseAll(this.#emptyWaiters);
  }
}
