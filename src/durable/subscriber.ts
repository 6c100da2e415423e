/**
 * A durable subscription inside a pool: runs the handler on what its
 * consumer delivers, at most `concurrency` at a time, and settles each
 * message: acknowledged when the handler resolves; when it throws, retried
 * after the backoff, or, at the last attempt, moved to its `dlq://` queue
 * (stored there first, then acknowledged: a failed move retries instead).
 *
 * @module
 */
import { errorMessage } from "../_util/error_text.ts";
import { releaseAll } from "../_util/waiters.ts";
import type { DurableMetrics } from "../metrics_snapshot.ts";
import type {
  MessageHandler,
  MessageMeta,
  TopologyEntry,
} from "../service_context.ts";
import type { DurableCarrier } from "./carrier.ts";
import { deadLetterQueue } from "./patterns.ts";
import type { DeliveredMessage, Settlement } from "./protocol.ts";

/** The retry policy of durable subscriptions. */
export interface RetryPolicy {
  maxDeliver: number;
  /** The wait before redelivery n + 1 is `backoff[n - 1]` (the last for later ones). */
  backoff: readonly number[];
}

/** What a durable subscriber needs from its pool. */
export interface SubscriberHost {
  readonly carrier: DurableCarrier;
  readonly policy: RetryPolicy;
  /** Reports a handler's throw, as for any subscription. */
  handlerFailed(service: string, error: unknown, meta: MessageMeta): void;
}

/**
 * The wait before the next delivery after attempt `attempt` failed: the
 * backoff entry, with jitter (between half and all of it).
 *
 * @example
 * ```ts
 * import { retryDelay } from "./subscriber.ts";
 * import assert from "node:assert/strict";
 *
 * const delay = retryDelay([100, 1000], 5);
 * assert.ok(delay >= 500 && delay <= 1000);
 * ```
 */
export function retryDelay(
  backoff: readonly number[],
  attempt: number,
): number {
  const base = backoff[Math.min(attempt, backoff.length) - 1] ?? 0;
  return Math.round(base / 2 + Math.random() * base / 2);
}

/**
 * The headers a message carries on its `dlq://` queue, besides its own.
 *
 * @example
 * ```ts
 * import { DEAD_LETTER_HEADERS } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEAD_LETTER_HEADERS.attempts, "Mf-Dlq-Attempts");
 * ```
 */
export const DEAD_LETTER_HEADERS = {
  /** The last error's message. */
  error: "Mf-Dlq-Error",
  /** How many deliveries failed. */
  attempts: "Mf-Dlq-Attempts",
  /** The queue it was published on. */
  queue: "Mf-Dlq-Queue",
  /** The service whose handler failed. */
  service: "Mf-Dlq-Service",
} as const;

/** One durable subscription of a pool. */
export class DurableSubscriber {
  readonly id: string;
  readonly service: string;
  readonly queue: string;
  readonly group: string | undefined;
  readonly concurrency: number;
  #host: SubscriberHost;
  readonly handler: MessageHandler<unknown>;
  #waiting: DeliveredMessage[] = [];
  #running = 0;
  #stopped = false;
  #idleWaiters: Array<() => void> = [];
  #highWater = 0;
  #counts = { delivered: 0, acknowledged: 0, redelivered: 0, deadLettered: 0 };

  constructor(
    host: SubscriberHost,
    id: string,
    service: string,
    queue: string,
    handler: MessageHandler<unknown>,
    options: { group: string | undefined; concurrency: number },
  ) {
    this.#host = host;
    this.id = id;
    this.service = service;
    this.queue = queue;
    this.handler = handler;
    this.group = options.group;
    this.concurrency = options.concurrency;
  }

  /** Messages delivered and not yet started. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Handlers running now. */
  get running(): number {
    return this.#running;
  }

  /** Its counters, as in {@linkcode DurableMetrics}. */
  metrics(pool: string): DurableMetrics {
    const counts = this.#counts;
    const metrics: DurableMetrics = {
      pool,
      service: this.service,
      queue: this.queue,
      ...counts,
      // Running counts until settled (the handler's slot frees a moment later).
      inFlight: this.#waiting.length + counts.delivered - counts.acknowledged -
        counts.redelivered - counts.deadLettered,
    };
    if (this.group !== undefined) metrics.group = this.group;
    return metrics;
  }

  /** Its entry in the topology. */
  topologyEntry(): TopologyEntry {
    return {
      service: this.service,
      group: this.group,
      buffered: this.#waiting.length,
      highWater: this.#highWater,
      delivered: this.#counts.delivered,
      durable: true,
    };
  }

  /** Takes delivered messages. */
  receive(messages: DeliveredMessage[]): void {
    if (this.#stopped) return;
    this.#waiting.push(...messages);
    this.#highWater = Math.max(this.#highWater, this.#waiting.length);
    this.#start();
  }

  /** Starts no more handlers; what waits stays stored (pending). */
  stop(): void {
    this.#stopped = true;
    this.#waiting = [];
    if (this.#running === 0) releaseAll(this.#idleWaiters);
  }

  /** Resolves when no handler runs. */
  whenIdle(): Promise<void> {
    if (this.#running === 0 && this.#waiting.length === 0) {
      return Promise.resolve();
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#idleWaiters.push(resolve);
    return promise;
  }

  #start(): void {
    while (
      !this.#stopped && this.#running < this.concurrency &&
      this.#waiting.length > 0
    ) {
      this.#running++;
      void this.#handle(this.#waiting.shift()!).finally(() => {
        this.#running--;
        this.#start();
        if (this.#running === 0 && this.#waiting.length === 0) {
          releaseAll(this.#idleWaiters);
        }
      });
    }
  }

  async #handle(message: DeliveredMessage): Promise<void> {
    const meta: MessageMeta = {
      queue: message.queue,
      from: Object.freeze({ pool: message.pool, service: message.service }),
      publishedAt: message.publishedAt,
      delivery: Object.freeze({
        id: `${message.stream}#${message.seq}`,
        attempt: message.attempt,
      }),
    };
    if (message.replyTo !== undefined) meta.replyTo = message.replyTo;
    if (message.headers !== undefined) {
      meta.headers = Object.freeze(message.headers);
    }
    Object.freeze(meta);
    this.#counts.delivered++;
    let settlement: Settlement;
    try {
      await this.handler(message.data, meta);
      settlement = { seq: message.seq, outcome: "ack" };
    } catch (error) {
      this.#host.handlerFailed(this.service, error, meta);
      settlement = await this.#afterFailure(message, error);
    }
    const counts = this.#counts;
    if (settlement.outcome === "ack") counts.acknowledged++;
    else if (settlement.outcome === "retry") counts.redelivered++;
    else counts.deadLettered++;
    this.#host.carrier.settle(this.id, [settlement]);
  }

  async #afterFailure(
    message: DeliveredMessage,
    error: unknown,
  ): Promise<Settlement> {
    const { policy, carrier } = this.#host;
    const retry: Settlement = {
      seq: message.seq,
      outcome: "retry",
      delay: retryDelay(policy.backoff, message.attempt),
    };
    if (message.attempt < policy.maxDeliver) return retry;
    try {
      await carrier.publish({
        queue: deadLetterQueue(message.queue),
        pool: message.pool,
        service: message.service,
        publishedAt: message.publishedAt,
        replyTo: message.replyTo,
        headers: {
          ...message.headers,
          [DEAD_LETTER_HEADERS.error]: errorMessage(error),
          [DEAD_LETTER_HEADERS.attempts]: String(message.attempt),
          [DEAD_LETTER_HEADERS.queue]: message.queue,
          [DEAD_LETTER_HEADERS.service]: this.service,
        },
        // A move repeated after a crash is a duplicate within the window.
        id: `dead-letter:${message.stream}#${message.seq}`,
        data: message.data,
      });
      return { seq: message.seq, outcome: "dead-lettered" };
    } catch {
      return retry;
    }
  }
}
