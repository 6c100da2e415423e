import { StateError, TimeoutError } from "../errors.ts";
import { matchesQueue } from "../queue_name.ts";
import type { MessageMeta } from "../service_context.ts";

/**
 * A message the test bed received: its data and its `meta`.
 *
 * @example Read the headers of what a service published
 * ```ts
 * import { Service, type ServiceContext } from "@magic/foundation";
 * import { type Received, startServices } from "@magic/foundation/testing";
 * import assert from "node:assert/strict";
 *
 * class Stamper extends Service {
 *   override run(ctx: ServiceContext): Promise<void> {
 *     return ctx.publish("q://stamped", 1, { headers: { by: ctx.service } });
 *   }
 * }
 *
 * await using bed = await startServices({
 *   pools: { app: [new Stamper("stamper")] },
 *   watch: ["q://stamped"],
 * });
 * const message: Received<number> = await bed.next<number>("q://stamped");
 * assert.equal(message.data, 1);
 * assert.deepEqual(message.meta.headers, { by: "stamper" });
 * ```
 */
export interface Received<T = unknown> {
  /** The data, as the bus copied it for the bed's subscription. */
  readonly data: T;
  /** The message's `meta` (queue, publisher, `replyTo`, headers, …). */
  readonly meta: MessageMeta;
}

/**
 * Options of `next` and `take`.
 *
 * @example Take what one pool published, leave the rest
 * ```ts
 * import { Service, type ServiceContext } from "@magic/foundation";
 * import { startServices } from "@magic/foundation/testing";
 * import assert from "node:assert/strict";
 *
 * class Announcer extends Service {
 *   override run(ctx: ServiceContext): Promise<void> {
 *     return ctx.publish("q://up", ctx.pool);
 *   }
 * }
 *
 * await using bed = await startServices({
 *   pools: { a: [new Announcer("x")], b: [new Announcer("x")] },
 *   watch: ["q://up"],
 * });
 * const fromB = await bed.next<string>("q://up", {
 *   where: (m) => m.meta.from.pool === "b",
 *   timeout: 1000,
 * });
 * assert.equal(fromB.data, "b");
 * assert.equal((await bed.next<string>("q://up")).data, "a");
 * ```
 */
export interface TakeOptions<T = unknown> {
  /** How long to wait, in ms. Default: the bed's `timeout`. */
  timeout?: number;
  /** Takes only the messages that pass; the others stay for later calls. */
  where?: (message: Received<T>) => boolean;
}

interface Waiter {
  queue: string;
  count: number;
  where: (message: Received) => boolean;
  got: Received[];
  resolve(messages: Received[]): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * What one subscription of the test bed received, in order: every message
 * stays in `seen`; `take` hands each one out once.
 */
export class Inbox {
  /** The queue or pattern subscribed to. */
  readonly pattern: string;
  /** Every message received, taken or not, in order. */
  readonly seen: Received[] = [];
  #taken = new WeakSet<Received>();
  #waiters: Waiter[] = [];

  constructor(pattern: string) {
    this.pattern = pattern;
  }

  /** Adds a message; the oldest waiter that wants it takes it. */
  push(message: Received): void {
    this.seen.push(message);
    for (const waiter of this.#waiters) {
      if (!this.#fits(waiter, message)) continue;
      this.#taken.add(message);
      waiter.got.push(message);
      if (waiter.got.length === waiter.count) this.#settle(waiter);
      return;
    }
  }

  /**
   * Resolves with the next `count` messages on `queue` (this inbox's pattern,
   * or a queue it covers) that were not taken yet, oldest first.
   */
  take(
    queue: string,
    count: number,
    timeout: number,
    where: (message: Received) => boolean,
    context: () => string,
  ): Promise<Received[]> {
    const { promise, resolve, reject } = Promise.withResolvers<Received[]>();
    const waiter: Waiter = {
      queue,
      count,
      where,
      got: [],
      resolve,
      reject,
      timer: undefined as unknown as ReturnType<typeof setTimeout>,
    };
    for (const message of this.seen) {
      if (waiter.got.length === count) break;
      if (!this.#fits(waiter, message)) continue;
      this.#taken.add(message);
      waiter.got.push(message);
    }
    if (waiter.got.length === count) return Promise.resolve(waiter.got);
    waiter.timer = setTimeout(() => {
      this.#release(waiter);
      reject(new TimeoutError(this.#timeoutMessage(waiter, timeout, context)));
    }, timeout);
    this.#waiters.push(waiter);
    return promise;
  }

  /** Fails every waiter: the bed stopped. */
  close(): void {
    for (const waiter of [...this.#waiters]) {
      this.#release(waiter);
      waiter.reject(
        new StateError(
          `Cannot take from "${waiter.queue}": the test bed stopped`,
        ),
      );
    }
  }

  #fits(waiter: Waiter, message: Received): boolean {
    if (this.#taken.has(message)) return false;
    if (
      waiter.queue !== this.pattern &&
      !matchesQueue(waiter.queue, message.meta.queue)
    ) return false;
    return waiter.where(message);
  }

  #settle(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    this.#waiters = this.#waiters.filter((w) => w !== waiter);
    waiter.resolve(waiter.got);
  }

  /** Gives back what a waiter that failed had taken. */
  #release(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    this.#waiters = this.#waiters.filter((w) => w !== waiter);
    for (const message of waiter.got) this.#taken.delete(message);
  }

  #timeoutMessage(
    waiter: Waiter,
    timeout: number,
    context: () => string,
  ): string {
    const what = waiter.count === 1 ? "a message" : `${waiter.count} messages`;
    const onQueue = this.seen.filter((m) =>
      waiter.queue === this.pattern || matchesQueue(waiter.queue, m.meta.queue)
    );
    const untaken = onQueue.filter((m) => !this.#taken.has(m));
    const got = waiter.count === 1 ? "" : `, got ${waiter.got.length}`;
    const seen = onQueue.length === 0
      ? "nothing arrived on it"
      : `${onQueue.length} arrived on it, ${untaken.length} not taken: ${
        preview(untaken.length > 0 ? untaken : onQueue)
      }`;
    return `Timed out after ${timeout} ms waiting for ${what} on "${waiter.queue}"${got}: ${seen}${context()}`;
  }
}

/** A short text of a few messages, for an error. */
export function preview(messages: readonly Received[]): string {
  const shown = messages.slice(-3).map((m) => {
    let text: string;
    try {
      text = JSON.stringify(m.data) ?? String(m.data);
    } catch {
      text = String(m.data);
    }
    if (text.length > 80) text = `${text.slice(0, 77)}...`;
    return `${m.meta.queue} ${text}`;
  });
  const more = messages.length > 3
    ? `… ${messages.length - 3} more, then `
    : "";
  return `${more}${shown.join("; ")}`;
}
