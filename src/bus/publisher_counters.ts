import type { PublisherMetrics } from "../metrics_snapshot.ts";

/**
 * What one service of this pool published that reached one pattern's
 * subscriptions (in any pool). A plain number field: counting a message
 * allocates nothing.
 */
export class PatternCounter {
  /** The pattern (or exact name) subscribed to, never a concrete queue it matched. */
  readonly queue: string;
  /** Messages published that reached the pattern. */
  published = 0;

  constructor(queue: string) {
    this.queue = queue;
  }
}

/**
 * What one service of this pool published: every message, and per pattern
 * reached. A route keeps the service's counters it needs (see
 * `Routes.countPublish`), so a message costs additions only.
 */
export class PublisherCounters {
  readonly service: string;
  /** Every message the service published, replies included. */
  published = 0;
  /** Per pattern reached; a pattern goes when no pool subscribes to it. */
  readonly patterns = new Map<string, PatternCounter>();

  constructor(service: string) {
    this.service = service;
  }

  /** The counter of `pattern` (made when missing). */
  pattern(pattern: string): PatternCounter {
    let counter = this.patterns.get(pattern);
    if (counter === undefined) {
      this.patterns.set(pattern, counter = new PatternCounter(pattern));
    }
    return counter;
  }

  /** The counters as plain data. */
  snapshot(pool: string): PublisherMetrics {
    return {
      pool,
      service: this.service,
      published: this.published,
      patterns: [...this.patterns.values()].map((p) => ({
        queue: p.queue,
        published: p.published,
      })),
    };
  }
}

/**
 * The publishers' counters of one pool, by service. A pattern's counters go
 * when no pool subscribes to it any more, so per-session queues leave
 * nothing behind; a service's total stays for as long as the worker runs.
 */
export class PublisherTally {
  #byService = new Map<string, PublisherCounters>();

  /** The counters of `service` (made when missing). */
  of(service: string): PublisherCounters {
    let counters = this.#byService.get(service);
    if (counters === undefined) {
      this.#byService.set(service, counters = new PublisherCounters(service));
    }
    return counters;
  }

  /** Forgets the counters of `pattern` (no pool subscribes to it any more). */
  drop(pattern: string): void {
    for (const counters of this.#byService.values()) {
      counters.patterns.delete(pattern);
    }
  }

  /** Forgets every counter. */
  clear(): void {
    this.#byService.clear();
  }

  /** Every counter as plain data. */
  snapshot(pool: string): PublisherMetrics[] {
    return [...this.#byService.values()].map((c) => c.snapshot(pool));
  }
}
