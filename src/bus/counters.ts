import type {
  HandlerTiming,
  HistogramSnapshot,
  SubscriptionMetrics,
} from "../metrics_snapshot.ts";

/**
 * Upper bounds of the handler-time buckets, in seconds: fixed, so that a
 * snapshot allocates nothing per message and series of every pool add up.
 */
export const HANDLER_BUCKETS: readonly number[] = Object.freeze([
  0.00001,
  0.00005,
  0.0001,
  0.0005,
  0.001,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
]);

/** With `handlerTiming: "sampled"`, one handler call in this many is timed. */
export const SAMPLE_EVERY = 32;

/** How often handler calls are timed: every `n`th (0: never). */
export function timingInterval(timing: HandlerTiming): number {
  return timing === "every" ? 1 : timing === "off" ? 0 : SAMPLE_EVERY;
}

/** The `handlerTiming` option, checked (`where` starts the error message). */
export function checkHandlerTiming(
  where: string,
  option: unknown,
): HandlerTiming {
  if (option === undefined) return "sampled";
  if (option === "sampled" || option === "every" || option === "off") {
    return option;
  }
  throw new TypeError(
    `${where}: handlerTiming must be "sampled", "every" or "off", got ${
      JSON.stringify(option)
    }`,
  );
}

/**
 * The counters of one service's subscriptions to one pattern (and group) in
 * one pool. Plain number fields and one typed array: counting a message
 * allocates nothing. They are shared by the service's live subscriptions to
 * that pattern, and dropped with the last of them: a service that subscribes
 * to a queue per session leaves no counters behind.
 */
export class SubscriptionCounters {
  readonly service: string;
  readonly queue: string;
  readonly group: string | undefined;
  /** Messages routed to the subscription. */
  routed = 0;
  /** Messages handed to the handler (calls started). */
  delivered = 0;
  /** Handler calls that finished, every one (timed or not). */
  handled = 0;
  /** Handler calls that threw or rejected. */
  errors = 0;
  /** Handler time: observations per bucket (not cumulative), the last one past every bound. */
  readonly buckets = new Float64Array(HANDLER_BUCKETS.length + 1);
  /** Sum of the handler times, in ms. */
  sumMs = 0;
  /** The live subscriptions counting here. */
  live = 0;

  constructor(service: string, queue: string, group: string | undefined) {
    this.service = service;
    this.queue = queue;
    this.group = group;
  }

  /** Records one handler call that took `ms` milliseconds. */
  observe(ms: number): void {
    this.sumMs += ms;
    const seconds = ms / 1000;
    let i = 0;
    const bounds = HANDLER_BUCKETS;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.buckets[i] = this.buckets[i]! + 1;
  }

  /** The counters as plain data, with `buffered` and `stuck` as given. */
  snapshot(
    pool: string,
    buffered: number,
    stuck: boolean,
  ): SubscriptionMetrics {
    return {
      pool,
      service: this.service,
      queue: this.queue,
      group: this.group,
      routed: this.routed,
      delivered: this.delivered,
      handled: this.handled,
      buffered,
      handlerErrors: this.errors,
      stuck,
      handlerSeconds: this.#histogram(),
    };
  }

  #histogram(): HistogramSnapshot {
    const cumulative: number[] = [];
    let count = 0;
    for (let i = 0; i < HANDLER_BUCKETS.length; i++) {
      count += this.buckets[i]!;
      cumulative.push(count);
    }
    count += this.buckets[HANDLER_BUCKETS.length]!;
    return {
      bounds: [...HANDLER_BUCKETS],
      cumulative,
      count,
      sum: this.sumMs / 1000,
    };
  }
}

/** The key of one service's subscriptions to one pattern and group. */
export function countersKey(
  service: string,
  queue: string,
  group: string | undefined,
): string {
  return `${service}\u0000${queue}\u0000${group ?? ""}`;
}
