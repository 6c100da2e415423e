import type { PublisherMetrics } from "../types.ts";

/**
 * What one service of this pool published that reached one pattern's
 * subscriptions (in any pool). A plain number field: counting a message
 * allocates nothing.
 */
export class PublisherCounters {
  readonly service: string;
  /** The pattern (or exact name) subscribed to, never a concrete queue it matched. */
  readonly queue: string;
  /** Messages published that reached the pattern. */
  sent = 0;

  constructor(service: string, queue: string) {
    this.service = service;
    this.queue = queue;
  }

  /** The counter as plain data. */
  snapshot(pool: string): PublisherMetrics {
    return { pool, service: this.service, queue: this.queue, sent: this.sent };
  }
}

const NONE: readonly PublisherCounters[] = Object.freeze([]);

/**
 * The publishers' counters of one pool, by pattern and service. A route
 * finds the counters of one publishing service once and keeps them (see
 * `Routes.countPublish`); a pattern's counters go when no pool subscribes
 * to it any more, so per-session queues leave nothing behind.
 */
export class PublisherTally {
  #byPattern = new Map<string, Map<string, PublisherCounters>>();

  /** The counters of `service` for each of `patterns` (made when missing). */
  countersFor(
    service: string,
    patterns: readonly string[],
  ): readonly PublisherCounters[] {
    if (patterns.length === 0) return NONE;
    return patterns.map((pattern) => {
      let services = this.#byPattern.get(pattern);
      if (services === undefined) {
        this.#byPattern.set(pattern, services = new Map());
      }
      let counters = services.get(service);
      if (counters === undefined) {
        services.set(
          service,
          counters = new PublisherCounters(service, pattern),
        );
      }
      return counters;
    });
  }

  /** Forgets the counters of `pattern` (no pool subscribes to it any more). */
  drop(pattern: string): void {
    this.#byPattern.delete(pattern);
  }

  /** Forgets every counter. */
  clear(): void {
    this.#byPattern.clear();
  }

  /** Every counter as plain data. */
  snapshot(pool: string): PublisherMetrics[] {
    const out: PublisherMetrics[] = [];
    for (const services of this.#byPattern.values()) {
      for (const counters of services.values()) {
        out.push(counters.snapshot(pool));
      }
    }
    return out;
  }
}
